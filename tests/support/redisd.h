/* redisd: start and stop a real redis-server (Debian's) for tests, on 127.0.0.1 and a free port,
 * with no persistence and its own temporary directory; and a blocking hiredis connection to it.
 *
 * Only the PID started here is signalled. The server gets PR_SET_PDEATHSIG=SIGKILL, so a test
 * process that dies does not leave it behind. Every wait is bounded. */
#ifndef NUDGE_TEST_REDISD_H
#define NUDGE_TEST_REDISD_H

#include <stdint.h>
#include <sys/types.h>

struct redisContext;

struct redisd {
    pid_t pid; /* 0 when not running */
    uint16_t port;
    char dir[64]; /* its working directory (removed by redisd_stop) */
    char log[96]; /* its log file, inside dir */
};

/* Start redis-server on a free port (port 0) or on the given one (a restart on the same
 * address). Waits up to 10 s until it answers PING. Returns 0, or -1 (nothing left running). */
int redisd_start(struct redisd *r, uint16_t port);
/* SIGTERM, wait up to 10 s (then SIGKILL). keep_dir 1 keeps its directory (for a restart).
 * Returns 0, or -1 when it was not running. */
int redisd_stop(struct redisd *r, int keep_dir);
/* A loopback TCP port free now (bound to port 0, then closed: another process may take it
 * before the caller binds it, so a start on it must be retried on failure), or 0. */
uint16_t redisd_free_port(void);
/* A blocking connection with a 5 s timeout, or NULL. The caller frees it with redisFree. */
struct redisContext *redisd_connect(const struct redisd *r);

#endif
