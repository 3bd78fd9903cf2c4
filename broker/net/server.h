/* server: one worker's context — its event loop, the engine it publishes into, its hub and
 * session, and its transports. Transports get a pointer to it; main.c owns it. (Several workers
 * = several of these, one per thread, sharing one engine.) */
#ifndef NUDGE_SERVER_H
#define NUDGE_SERVER_H

#include <uv.h>

#include "config.h"
#include "engine.h"
#include "hub.h"
#include "session.h"

struct tcp;
struct ws;
struct admin;

struct server {
    uv_loop_t *loop;
    struct engine *engine;
    struct hub hub;
    struct session session;
    struct config cfg;
    struct tcp *tcp;
    struct ws *ws;
    struct admin *admin;
    uint64_t start_ms; /* uv_now() at start, for uptime */
    int stopping;
};

/* Open publisher and subscriber connections (for --max-conns). The admin endpoint has its own
 * small cap (admin.c) so that /stats still answers when the broker is full. */
static inline uint64_t server_conns(const struct server *s)
{
    return s->hub.st.conns[CONN_PUB] + s->hub.st.conns[CONN_SUB];
}

#endif
