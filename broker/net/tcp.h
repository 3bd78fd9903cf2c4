/* tcp: the publisher transport — length-prefixed msgpack frames over libuv TCP. */
#ifndef NUDGE_TCP_H
#define NUDGE_TCP_H

#include <stddef.h>

struct server;
struct tcp;

/* Accept publishers on the listening socket fd (taken over, closed on failure); *out is owned
 * by the server until tcp_stop. Returns 0 or a negative uv error. */
int tcp_start(struct server *srv, int fd, struct tcp **out);
/* Stop listening and close every publisher connection; t frees itself once every handle has
 * closed (the loop must keep running until then). */
void tcp_stop(struct tcp *t);

#endif
