/* admin: the operator's HTTP endpoint (GET /stats, /metrics, /healthz, /readyz, /topics,
 * /topics/NAME, /users/USER/connections; POST /users/USER/disconnect: docs/operations.md §Admin
 * requests), served on worker 0's loop on a plain libuv TCP handle. */
#ifndef NUDGE_ADMIN_H
#define NUDGE_ADMIN_H

#include <stddef.h>

struct server;
struct admin;
struct wire_buf;

/* Listen on addr; *out owned by the server until admin_stop. Returns 0 or -errno. */
int admin_start(struct server *srv, const char *addr, struct admin **out, char *bound,
                size_t boundlen);
/* Stop listening; a frees itself once its handles have closed. Connections are closed through
 * admin_stop as well (admin requests are not hub connections). */
void admin_stop(struct admin *a);
/* Append the /stats JSON document for srv to out. Returns 0 or -ENOMEM. */
int admin_stats_json(const struct server *srv, struct wire_buf *out);
/* Append the GET /metrics document for srv (Prometheus text format 0.0.4, metrics.h) to out.
 * Returns 0 or -ENOMEM. */
int admin_metrics_text(const struct server *srv, struct wire_buf *out);

#endif
