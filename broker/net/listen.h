/* listen: make a listening socket from "HOST:PORT" ("[::1]:0" for IPv6; port 0 = ephemeral).
 * One accept design for every transport: the socket is made by hand, then handed to libuv
 * (uv_tcp_open) or watched with uv_poll for libwebsockets' adoption. SO_REUSEPORT is asked for
 * only when several workers of one process will share the port (share != 0): set by default it
 * would let a second nudged start on a port already in use and silently take half its
 * connections. */
#ifndef NUDGE_LISTEN_H
#define NUDGE_LISTEN_H

#include <stddef.h>

/* Parse "HOST:PORT" into host (NUL-terminated, brackets stripped) and port. 0 or -EINVAL. */
int listen_parse(const char *addr, char *host, size_t hostlen, unsigned *port);
/* Open, bind and listen (non-blocking, close-on-exec). On success *fd is the socket (owned by
 * the caller) and bound holds "HOST:PORT" with the real port. Returns 0 or -errno. */
int listen_open(const char *addr, int backlog, int share, int *fd, char *bound, size_t boundlen);
/* n listening sockets on one address for n workers (SO_REUSEPORT when n > 1). The address is
 * first bound without SO_REUSEPORT, so a port that anything else holds — another nudged
 * included — fails loudly; port 0 is resolved once and shared. fds[0..n) are owned by the
 * caller. Returns 0 or -errno (nothing left open). */
int listen_open_group(const char *addr, int backlog, int n, int *fds, char *bound, size_t boundlen);

#endif
