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
/* New connections use the certificate cert and key key (port_tls_reload). 0 or -1 with err. */
int tcp_reload_tls(struct tcp *t, const char *cert, const char *key, char *err, size_t errlen);

#endif
