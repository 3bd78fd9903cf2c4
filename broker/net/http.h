/* http: the HTTP publish endpoint — POST /publish with a JSON body, over libuv TCP (optionally
 * TLS), HTTP/1.1 with keep-alive and pipelining (docs/protocol.md §HTTP publish). */
#ifndef NUDGE_HTTP_H
#define NUDGE_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct http;

/* Accept HTTP publishers on the listening socket fd (taken over, closed on failure); *out is
 * owned by the server until http_stop. Returns 0 or a negative uv error. */
int http_start(struct server *srv, int fd, struct http **out);
/* Stop listening; the connections are the hub's (closed by hub_close_all). h frees itself once
 * every handle has closed (the loop must keep running until then). NULL is a no-op. */
void http_stop(struct http *h);
/* New connections use the certificate cert and key key (port_tls_reload). 0 or -1 with err. */
int http_reload_tls(struct http *t, const char *cert, const char *key, char *err, size_t errlen);

#endif
