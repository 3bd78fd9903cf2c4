/* listen: make a listening socket from "HOST:PORT" ("[::1]:0" for IPv6; port 0 = ephemeral).
 * One accept design for every transport: the socket is made by hand (SO_REUSEADDR,
 * SO_REUSEPORT so that later several workers can each own one on the same port), then handed to
 * libuv (uv_tcp_open) or watched with uv_poll for libwebsockets' adoption. */
#ifndef NUDGE_LISTEN_H
#define NUDGE_LISTEN_H

#include <stddef.h>

/* Parse "HOST:PORT" into host (NUL-terminated, brackets stripped) and port. 0 or -EINVAL. */
int listen_parse(const char *addr, char *host, size_t hostlen, unsigned *port);
/* Open, bind and listen (non-blocking, close-on-exec). On success *fd is the socket (owned by
 * the caller) and bound holds "HOST:PORT" with the real port. Returns 0 or -errno. */
int listen_open(const char *addr, int backlog, int *fd, char *bound, size_t boundlen);

#endif
