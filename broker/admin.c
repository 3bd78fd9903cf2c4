/* admin: a deliberately tiny HTTP/1.1 server for operators. It reads one request head (at most
 * 8 KiB, within 5 s), answers from the request line alone and closes the connection: no
 * keep-alive, no request bodies, nothing that could be pipelined — so it cannot inherit the
 * lws 4.1.6 HTTP stall (shared/NOTES.md) and a slow client costs one timer. */
#include "admin.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "server.h"

#define HEAD_MAX 8192
#define HEAD_TIMEOUT_MS 5000
#define ADMIN_CONNS_MAX 64 /* concurrent admin requests; not counted in --max-conns */
#define ADMIN_PROM_TYPE "text/plain; version=0.0.4; charset=utf-8" /* exposition format */

struct admin {
    struct server *srv;
    uv_tcp_t listener;
    int listening;
    int stopping;
    uint64_t nconns;
};

struct aconn {
    uv_tcp_t h;
    uv_timer_t timer;
    uv_write_t wreq;
    struct conn c;
    struct admin *a;
    struct wire_buf resp;
    int closing;
    int open_handles;
    int answered;
    size_t len;
    char head[HEAD_MAX];
};

static void maybe_free(struct admin *a)
{
    if (a->stopping && !a->listening && a->nconns == 0) free(a);
}

static void on_aconn_handle_closed(uv_handle_t *h)
{
    struct aconn *ac = h->data;
    if (--ac->open_handles) return;
    struct admin *a = ac->a;
    core_conn_gone(&a->srv->core, &ac->c);
    wire_buf_free(&ac->resp);
    free(ac);
    a->nconns--;
    maybe_free(a);
}

static void aconn_close(struct aconn *ac)
{
    if (ac->closing) return;
    ac->closing = 1;
    uv_close((uv_handle_t *)&ac->timer, on_aconn_handle_closed);
    uv_close((uv_handle_t *)&ac->h, on_aconn_handle_closed);
}

static void op_flush(struct conn *c)
{
    (void)c;
}

static void op_close(struct conn *c, int code, const char *reason)
{
    (void)code;
    (void)reason;
    aconn_close(c->io);
}

static const struct conn_ops admin_ops = {.flush = op_flush, .close = op_close};

static int set_u64(json_t *o, const char *k, uint64_t v)
{
    return json_object_set_new(o, k, json_integer((json_int_t)v));
}

/* The registry's values for srv: the worker shards summed, plus what struct core_stats still
 * counts (this adapter goes once the core bumps shard slots itself), plus the read-time gauges
 * the engine owns. */
static void admin_values(const struct server *srv, uint64_t v[METRICS_SLOTS])
{
    const struct core *core = &srv->core;
    const struct core_stats *st = &core->st;
    const struct metrics_shard *shards[1] = {&srv->metrics};
    metrics_sum(shards, 1, v);
    static const enum metrics_slot conns[CONN_KINDS] = {METRICS_CONNS_PUB, METRICS_CONNS_WS,
                                                        METRICS_CONNS_ADMIN};
    static const enum metrics_slot acc[CONN_KINDS] = {METRICS_ACCEPTED_PUB, METRICS_ACCEPTED_WS,
                                                      METRICS_ACCEPTED_ADMIN};
    for (int k = 0; k < CONN_KINDS; k++) {
        v[conns[k]] += st->conns[k];
        v[acc[k]] += st->accepted[k];
    }
    v[METRICS_PUBLISHES] += st->publishes;
    v[METRICS_HINTS] += st->hints;
    v[METRICS_DELIVERIES] += st->deliveries;
    v[METRICS_BYTES_IN] += st->bytes_in;
    v[METRICS_BYTES_OUT] += st->bytes_out;
    v[METRICS_ERRORS] += st->errors;
    v[METRICS_SLOW_CLOSES] += st->slow_closes;
    v[METRICS_COALESCED] += st->coalesced;
    v[METRICS_REPLAYED] += st->replayed;
    v[METRICS_RESETS] += st->resets;
    v[METRICS_SUBSCRIPTIONS] = core->nsubs;
    v[METRICS_TOPICS] = core->topics.count;
    v[METRICS_QUEUED] = core_queued(core);
    v[METRICS_HIST_ENTRIES] = core->hist->st.entries;
    v[METRICS_HIST_BYTES] = core->hist->st.bytes;
    v[METRICS_HIST_EVICTED] = core->hist->st.evicted;
}

int admin_stats_json(const struct server *srv, struct wire_buf *out)
{
    const struct core *core = &srv->core;
    uint64_t v[METRICS_SLOTS];
    admin_values(srv, v);
    json_t *o = json_object(), *lim = json_object();
    int rc = -ENOMEM;
    if (!o || !lim) goto out;
    uint64_t now = uv_now(srv->loop);
    json_object_set_new(o, "uptime_s", json_real((double)(now - srv->start_ms) / 1000.0));
    json_object_set_new(o, "epoch", json_string(core->epoch));
    json_object_set_new(o, "version", json_string(NUDGE_VERSION));
    if ((rc = metrics_render_json(&metrics_table, v, o)) < 0) goto out;
    rc = -ENOMEM;
    json_t *hist = json_object_get(o, "history"); /* entries, bytes, evicted: from the table */
    if (hist) {
        set_u64(hist, "per_topic", core->cfg.hist.per_topic);
        set_u64(hist, "max_bytes", core->cfg.hist.max_bytes);
        set_u64(hist, "max_age_s", core->cfg.hist.max_age_ms / 1000);
    }
    set_u64(lim, "max_frame", core->cfg.lim.max_frame);
    set_u64(lim, "max_topic", core->cfg.lim.max_topic);
    set_u64(lim, "max_data", core->cfg.lim.max_data);
    set_u64(lim, "max_topics", core->cfg.lim.max_topics);
    set_u64(lim, "max_subs", core->cfg.max_subs);
    set_u64(lim, "max_queue", core->cfg.max_queue);
    set_u64(lim, "max_conns", srv->cfg.max_conns);
    json_object_set(o, "limits", lim);
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (!text) goto out;
    rc = wire_buf_append(out, text, strlen(text));
    free(text);
out:
    json_decref(lim);
    json_decref(o);
    return rc;
}

int admin_metrics_text(const struct server *srv, struct wire_buf *out)
{
    uint64_t v[METRICS_SLOTS];
    admin_values(srv, v);
    return metrics_render_prom(&metrics_table, v, out);
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    aconn_close(req->data);
}

static void respond(struct aconn *ac, int status, const char *reason, const char *ctype,
                    const struct wire_buf *body)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, reason, ctype, body->len);
    ac->answered = 1;
    uv_read_stop((uv_stream_t *)&ac->h);
    uv_timer_stop(&ac->timer);
    if (n < 0 || wire_buf_append(&ac->resp, head, (size_t)n) < 0 ||
        wire_buf_append(&ac->resp, body->data, body->len) < 0) {
        aconn_close(ac);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)ac->resp.data, (unsigned)ac->resp.len);
    ac->wreq.data = ac;
    if (uv_write(&ac->wreq, (uv_stream_t *)&ac->h, &b, 1, on_written) < 0) aconn_close(ac);
}

static void respond_text(struct aconn *ac, int status, const char *reason, const char *text)
{
    struct wire_buf body = {0};
    wire_buf_append(&body, text, strlen(text));
    respond(ac, status, reason, "text/plain", &body);
    wire_buf_free(&body);
}

static void handle(struct aconn *ac)
{
    char method[16], path[256];
    if (sscanf(ac->head, "%15s %255s HTTP/1.", method, path) != 2) {
        respond_text(ac, 400, "Bad Request", "bad request line\n");
        return;
    }
    char *q = strchr(path, '?');
    if (q) *q = '\0';
    int metrics = strcmp(path, "/metrics") == 0;
    if (!metrics && strcmp(path, "/stats") != 0) {
        respond_text(ac, 404, "Not Found", "not found: try GET /stats or GET /metrics\n");
        return;
    }
    if (strcmp(method, "GET") != 0) {
        respond_text(ac, 405, "Method Not Allowed", "GET only\n");
        return;
    }
    struct wire_buf body = {0};
    int rc = metrics ? admin_metrics_text(ac->a->srv, &body) : admin_stats_json(ac->a->srv, &body);
    if (rc < 0 || (!metrics && wire_buf_append(&body, "\n", 1) < 0)) {
        wire_buf_free(&body);
        respond_text(ac, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    respond(ac, 200, "OK", metrics ? ADMIN_PROM_TYPE : "application/json", &body);
    wire_buf_free(&body);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct aconn *ac = h->data;
    (void)suggested;
    *buf = uv_buf_init(ac->head + ac->len, (unsigned)(HEAD_MAX - 1 - ac->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct aconn *ac = s->data;
    (void)buf;
    if (nread < 0) {
        aconn_close(ac);
        return;
    }
    if (ac->answered) return;
    ac->len += (size_t)nread;
    ac->head[ac->len] = '\0';
    if (strstr(ac->head, "\r\n\r\n") || strstr(ac->head, "\n\n")) {
        handle(ac);
    } else if (ac->len >= HEAD_MAX - 1) {
        respond_text(ac, 431, "Request Header Fields Too Large", "request head over 8 KiB\n");
    }
}

static void on_timeout(uv_timer_t *t)
{
    aconn_close(t->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct admin *a = server->data;
    struct server *srv = a->srv;
    if (status < 0) return;
    struct aconn *ac = calloc(1, sizeof(*ac));
    if (!ac) return;
    ac->a = a;
    uv_tcp_init(srv->loop, &ac->h);
    uv_timer_init(srv->loop, &ac->timer);
    ac->h.data = ac->timer.data = ac;
    ac->open_handles = 2;
    a->nconns++;
    if (uv_accept(server, (uv_stream_t *)&ac->h) < 0 || a->stopping ||
        srv->core.st.conns[CONN_ADMIN] >= ADMIN_CONNS_MAX) {
        aconn_close(ac);
        return;
    }
    core_conn_open(&srv->core, &ac->c, CONN_ADMIN, &admin_ops, ac);
    uv_timer_start(&ac->timer, on_timeout, HEAD_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&ac->h, on_alloc, on_read);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct admin *a = h->data;
    a->listening = 0;
    maybe_free(a);
}

int admin_start(struct server *srv, const char *addr, struct admin **out, char *bound,
                size_t boundlen)
{
    int fd, rc;
    if ((rc = listen_open(addr, 64, 0, &fd, bound, boundlen)) < 0) return rc;
    struct admin *a = calloc(1, sizeof(*a));
    if (!a) {
        close(fd);
        return -ENOMEM;
    }
    a->srv = srv;
    uv_tcp_init(srv->loop, &a->listener);
    a->listener.data = a;
    a->listening = 1;
    if ((rc = uv_tcp_open(&a->listener, fd)) < 0 ||
        (rc = uv_listen((uv_stream_t *)&a->listener, 64, on_connection)) < 0) {
        a->stopping = 1;
        uv_close((uv_handle_t *)&a->listener, on_listener_closed);
        return rc;
    }
    *out = a;
    return 0;
}

void admin_stop(struct admin *a)
{
    if (!a || a->stopping) return;
    a->stopping = 1;
    uv_close((uv_handle_t *)&a->listener, on_listener_closed);
}
