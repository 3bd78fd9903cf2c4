/* ws: the WebSocket subscriber transport — libwebsockets on the server's libuv loop. */
#ifndef NUDGE_WS_H
#define NUDGE_WS_H

#include <stddef.h>

struct server;
struct ws;

/* Create the lws context on srv->loop and accept on the listening socket fd (taken over,
 * closed on failure); *out is owned by the server (free with ws_free after the loop has
 * stopped). Returns 0 or -errno. */
int ws_start(struct server *srv, int fd, struct ws **out);
/* Stop accepting new connections (existing ones stay until closed). */
void ws_stop_listening(struct ws *w);
/* New WebSocket connections use the certificate cert and key key; open ones keep theirs. 0, or
 * -1 with err. */
int ws_reload_tls(struct ws *w, const char *cert, const char *key, char *err, size_t errlen);
/* First half of lws's two-call shutdown on a foreign loop: lws starts closing its handles. */
void ws_destroy(struct ws *w);
/* Second half, once uv_run has returned: frees the context and w. */
void ws_free(struct ws *w);
/* Bytes of our own state lws allocates per WebSocket (its per_session_data_size: struct wsconn,
 * which embeds struct conn). Held to a budget by tests/unit/test_mem.c. */
size_t ws_conn_size(void);

#endif
