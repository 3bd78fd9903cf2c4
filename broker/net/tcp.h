/* tcp: the publisher transport — length-prefixed msgpack frames over libuv TCP. */
#ifndef NUDGE_TCP_H
#define NUDGE_TCP_H

#include <stddef.h>

struct server;
struct tcp;

/* Listen on addr; *out (owned by the server until tcp_stop) and bound ("HOST:PORT").
 * Returns 0 or -errno. */
int tcp_start(struct server *srv, const char *addr, struct tcp **out, char *bound, size_t boundlen);
/* Stop listening and close every publisher connection; t frees itself once every handle has
 * closed (the loop must keep running until then). */
void tcp_stop(struct tcp *t);

#endif
