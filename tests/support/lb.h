/* lb: HAProxy (Debian's) in front of three nudged nodes for tests, started from the deployment's
 * own configuration, broker/dist/cluster/haproxy.cfg, with its @...@ ports filled in: one
 * frontend for WebSocket clients and one for publishers, each on a free loopback port, round
 * robin over the nodes, a node that refuses a connection skipped (retries, redispatch, checks
 * every 500 ms).
 *
 * Only the PID started here is signalled; HAProxy gets PR_SET_PDEATHSIG=SIGKILL. Every wait is
 * bounded. Tests run from the repository's root (the configuration's path is relative). */
#ifndef NUDGE_TEST_LB_H
#define NUDGE_TEST_LB_H

#include <stdint.h>
#include <sys/types.h>

#define LB_NODES 3

struct lb {
    pid_t pid;
    uint16_t ws_port, pub_port; /* the frontends */
    char dir[64];               /* its configuration and log */
};

/* Start HAProxy over the nodes' WebSocket and publisher ports. Waits up to 10 s until both
 * frontends accept connections. Returns 0, or -1 (nothing left running). */
int lb_start(struct lb *l, const uint16_t ws[LB_NODES], const uint16_t pub[LB_NODES]);
/* SIGTERM, wait up to 5 s (then SIGKILL); its directory is removed. */
void lb_stop(struct lb *l);

#endif
