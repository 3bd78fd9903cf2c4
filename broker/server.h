/* server: one worker's context — its event loop, its core and its transports. Transports get a
 * pointer to it; main.c owns it. (Several workers later = several of these, one per thread.) */
#ifndef NUDGE_SERVER_H
#define NUDGE_SERVER_H

#include <uv.h>

#include "config.h"
#include "core.h"
#include "metrics.h"

struct tcp;
struct ws;
struct admin;

struct server {
    uv_loop_t *loop;
    struct core core;
    struct metrics_shard metrics; /* this worker's shard (metrics.h): written on its loop only */
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
    return s->core.st.conns[CONN_PUB] + s->core.st.conns[CONN_WS];
}

#endif
