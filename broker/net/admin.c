/* admin: a deliberately tiny HTTP/1.1 server for operators. It reads one request head (at most
 * 8 KiB, within 2 s), answers from the request line alone and closes the connection: no
 * keep-alive, no request bodies, nothing that could be pipelined — so it cannot inherit the
 * lws 4.1.6 HTTP stall (shared/NOTES.md) and a slow client costs one timer.
 * At most ADMIN_CONNS_MAX requests at once; when full, a new connection takes the place of the
 * oldest one still silent (no complete head yet), so idle sockets cannot hold the port: 64 of
 * them used to keep /stats unanswered until their 5 s timeout (#14). The head is parsed by
 * picohttpparser (broker/vendor/), as the HTTP publish endpoint's is (hreq.c). */
#include "admin.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "picohttpparser.h"
#include "server.h"

#define HEAD_MAX 8192
#define HEADERS_MAX 32
#define HEAD_TIMEOUT_MS 2000 /* a request head must be complete this long after connecting */
#define ADMIN_CONNS_MAX 16   /* concurrent admin requests; not counted in --max-conns */
#define ADMIN_PROM_TYPE "text/plain; version=0.0.4; charset=utf-8" /* exposition format */

struct admin {
    struct server *srv;
    struct listener listener;
    int listening;
    int stopping;
    uint64_t nconns;    /* aconns not yet freed */
    uint64_t open;      /* requests being served (for /stats and the cap) */
    uint64_t accepted;  /* since start */
    struct aconn *list; /* every aconn not yet closing */
};

struct aconn {
    uv_tcp_t h;
    uv_timer_t timer;
    uv_write_t wreq;
    struct admin *a;
    struct aconn *prev, *next; /* admin's list */
    int counted;
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
    wire_buf_free(&ac->resp);
    free(ac);
    a->nconns--;
    maybe_free(a);
}

static void aconn_close(struct aconn *ac)
{
    if (ac->closing) return;
    ac->closing = 1;
    struct admin *a = ac->a;
    if (ac->counted) a->open--;
    if (ac->prev)
        ac->prev->next = ac->next;
    else if (a->list == ac)
        a->list = ac->next;
    if (ac->next) ac->next->prev = ac->prev;
    uv_close((uv_handle_t *)&ac->timer, on_aconn_handle_closed);
    uv_close((uv_handle_t *)&ac->h, on_aconn_handle_closed);
}

static int set_u64(json_t *o, const char *k, uint64_t v)
{
    return json_object_set_new(o, k, json_integer((json_int_t)v));
}

/* The registry's values (metrics.h): each worker's hub counters and latency shard summed, the
 * engine's figures as of one moment (under its lock), the admin endpoint's own. */
static void admin_values(const struct server *srv, uint64_t v[METRICS_SLOTS])
{
    const struct broker *b = srv->broker;
    const struct metrics_shard *shards[NUDGE_WORKERS_MAX];
    for (uint32_t i = 0; i < b->nworkers; i++)
        shards[i] = &server_of(b, i)->hub.metrics;
    metrics_sum(shards, b->nworkers, v);
    for (uint32_t i = 0; i < b->nworkers; i++) {
        const struct server *w = server_of(b, i);
        const struct hub_stats *st = &w->hub.st;
        v[METRICS_CONNS_PUB] += stat_get(&st->conns[CONN_PUB]);
        v[METRICS_CONNS_WS] += stat_get(&st->conns[CONN_SUB]);
        v[METRICS_ACCEPTED_PUB] += stat_get(&st->accepted[CONN_PUB]);
        v[METRICS_ACCEPTED_WS] += stat_get(&st->accepted[CONN_SUB]);
        v[METRICS_DELIVERIES] += stat_get(&st->deliveries);
        v[METRICS_BYTES_IN] += stat_get(&st->bytes_in);
        v[METRICS_BYTES_OUT] += stat_get(&st->bytes_out);
        v[METRICS_ERRORS] += stat_get(&st->errors);
        v[METRICS_SLOW_CLOSES] += stat_get(&st->slow_closes);
        v[METRICS_COALESCED] += stat_get(&st->coalesced);
        v[METRICS_REPLAYED] += stat_get(&st->replayed);
        v[METRICS_CAUGHT_UP] += stat_get(&st->caught_up);
        v[METRICS_RESETS] += stat_get(&st->resets);
        v[METRICS_SUBSCRIPTIONS] += stat_get(&st->subs);
        v[METRICS_QUEUED] += stat_get(&st->queued);
        v[METRICS_WS_PENDING] += stat_get(&w->ws_pending);
        v[METRICS_TLS_FAILURES] += stat_get(&w->tls_failures);
        v[METRICS_CONNS_HTTP] += stat_get(&w->http_conns);
        v[METRICS_ACCEPTED_HTTP] += stat_get(&w->http_accepted);
    }
    /* HTTP publishers are hub publishers too: pub counts the TCP ones only. (Read without a
     * lock while workers run: never let a race show a wrapped gauge.) */
    v[METRICS_CONNS_PUB] -=
        v[METRICS_CONNS_HTTP] < v[METRICS_CONNS_PUB] ? v[METRICS_CONNS_HTTP] : v[METRICS_CONNS_PUB];
    v[METRICS_ACCEPTED_PUB] -= v[METRICS_ACCEPTED_HTTP] < v[METRICS_ACCEPTED_PUB]
                                   ? v[METRICS_ACCEPTED_HTTP]
                                   : v[METRICS_ACCEPTED_PUB];
    v[METRICS_CONNS_ADMIN] = srv->admin ? srv->admin->open : 0;
    v[METRICS_ACCEPTED_ADMIN] = srv->admin ? srv->admin->accepted : 0;
    v[METRICS_WORKERS] = b->nworkers;
    const struct auth_stats *as = &b->auth_st;
    for (int e = -TOKEN_EMALFORMED; e <= -TOKEN_ECLAIMS; e++)
        v[METRICS_AUTH_REFUSED + e - 1] = stat_get(&as->token_refused[e]);
    v[METRICS_AUTH_TOKEN_REQUIRED] = stat_get(&as->token_required);
    v[METRICS_AUTH_API_KEY] = stat_get(&as->pub_refused);
    v[METRICS_AUTH_ADMIN_TOKEN] = stat_get(&as->admin_refused);
    v[METRICS_AUTH_FORBIDDEN] = stat_get(&as->forbidden);
    v[METRICS_AUTH_EXPIRED] = stat_get(&as->expired);
    v[METRICS_AUTH_REFRESHED] = stat_get(&as->refreshed);
    v[METRICS_AUTH_REFRESH_REFUSED] = stat_get(&as->refresh_refused);
    v[METRICS_AUTH_RATE_LIMITED] = stat_get(&as->rate_limited);
    v[METRICS_RELOADS_OK] = stat_get(&b->reloads_ok);
    v[METRICS_RELOADS_FAILED] = stat_get(&b->reloads_failed);
    struct engine *e = srv->engine;
    engine_lock(e);
    v[METRICS_PUBLISHES] += e->st.publishes;
    v[METRICS_HINTS] += e->st.hints;
    v[METRICS_COALESCED] += e->st.coalesced;
    v[METRICS_TOPICS_REFUSED] = e->st.refused;
    v[METRICS_TOPICS] = e->topics.count;
    v[METRICS_HIST_ENTRIES] = e->store->st.entries;
    v[METRICS_HIST_BYTES] = e->store->st.bytes;
    v[METRICS_HIST_EVICTED] = e->store->st.evicted;
    v[METRICS_POSITIONS] = e->store->st.positions;
    v[METRICS_GPOS] = e->store->st.gpos;
    v[METRICS_DISK_BYTES] = e->store->st.disk_bytes;
    v[METRICS_DISK_REFUSED] = e->store->st.disk_failed;
    v[METRICS_POSITIONS_FORGOTTEN] = e->store->st.forgotten;
    engine_unlock(e);
}

int admin_stats_json(const struct server *srv, struct wire_buf *out)
{
    const struct engine *e = srv->engine;
    const struct hub *hub = &srv->hub;
    const struct store *store = e->store;
    uint64_t v[METRICS_SLOTS];
    admin_values(srv, v);
    json_t *o = json_object(), *lim = json_object();
    int rc = -ENOMEM;
    if (!o || !lim) goto out;
    uint64_t now = uv_now(srv->loop);
    json_object_set_new(o, "uptime_s", json_real((double)(now - srv->start_ms) / 1000.0));
    json_object_set_new(o, "epoch", json_string(engine_epoch(e)));
    json_object_set_new(o, "version", json_string(NUDGE_VERSION));
    if ((rc = metrics_render_json(&metrics_table, v, o)) < 0) goto out;
    rc = -ENOMEM;
    /* How the kernel spread connections over the workers (SO_REUSEPORT hashes each one). */
    json_t *pw = json_array();
    for (uint32_t i = 0; pw && i < srv->broker->nworkers; i++) {
        const struct hub_stats *hs = &server_of(srv->broker, i)->hub.st;
        json_t *wo = json_object();
        if (!wo) break;
        set_u64(wo, "pub", stat_get(&hs->conns[CONN_PUB]));
        set_u64(wo, "ws", stat_get(&hs->conns[CONN_SUB]));
        json_array_append_new(pw, wo);
    }
    if (pw) json_object_set_new(o, "per_worker", pw);
    json_t *hist = json_object_get(o, "history"); /* entries, bytes, evicted: from the table */
    if (hist) {
        set_u64(hist, "per_topic", store->cfg.per_topic);
        set_u64(hist, "max_bytes", store->cfg.max_bytes);
        set_u64(hist, "max_age_s", store->cfg.max_age_ms / 1000);
    }
    json_t *disk = json_object_get(o, "disk"); /* bytes, refused: from the table */
    if (disk) {
        const struct store_stats *ss = &store->st;
        json_object_set_new(disk, "dir", json_string(srv->cfg.data_dir));
        json_object_set_new(disk, "fsync",
                            json_string(!srv->cfg.data_dir[0]                       ? "memory"
                                        : srv->cfg.disk.sync == JOURNAL_SYNC_ALWAYS ? "always"
                                        : srv->cfg.disk.sync == JOURNAL_SYNC_OS     ? "os"
                                                                                    : "batch"));
        set_u64(disk, "max_bytes", srv->cfg.data_dir[0] ? srv->cfg.disk.max_bytes : 0);
        set_u64(disk, "recovered", ss->recovered);
        set_u64(disk, "recovery_ms", ss->recovery_ms);
        set_u64(disk, "cut_bytes", ss->cut_bytes);
        json_object_set_new(disk, "new_epoch", json_boolean(ss->new_epoch));
    }
    json_t *pos = json_object_get(o, "positions"); /* kept, forgotten: from the table */
    if (pos) {
        set_u64(pos, "horizon_s", store->cfg.horizon_ms / 1000);
        set_u64(pos, "max", store->cfg.max_positions);
    }
    set_u64(lim, "max_frame", e->cfg.lim.max_frame);
    set_u64(lim, "max_topic", e->cfg.lim.max_topic);
    set_u64(lim, "max_data", e->cfg.lim.max_data);
    set_u64(lim, "max_topics", e->cfg.lim.max_topics);
    set_u64(lim, "max_subs", hub->cfg.max_subs);
    set_u64(lim, "max_queue", hub->cfg.max_queue);
    set_u64(lim, "max_conns", srv->cfg.max_conns);
    set_u64(lim, "max_topics_total", e->cfg.max_topics);
    set_u64(lim, "max_conns_per_ip", srv->cfg.max_conns_per_ip);
    set_u64(lim, "max_sub_bytes", hub->cfg.max_sub_bytes);
    set_u64(lim, "replay_rate", hub->cfg.replay_rate);
    set_u64(lim, "sub_rate", hub->cfg.sub_rate);
    set_u64(lim, "msg_rate", hub->cfg.msg_rate);
    set_u64(lim, "max_pattern_segments", hub->cfg.max_pattern_segments);
    set_u64(lim, "max_pattern_stars", hub->cfg.max_pattern_stars);
    json_object_set(o, "limits", lim);
    json_t *tls = json_object(); /* which listeners speak TLS */
    if (tls) {
        json_object_set_new(tls, "ws", json_boolean(srv->cfg.tls & CONFIG_TLS_WS));
        json_object_set_new(tls, "pub", json_boolean(srv->cfg.tls & CONFIG_TLS_PUB));
        json_object_set_new(tls, "http", json_boolean(srv->cfg.tls & CONFIG_TLS_HTTP));
        json_object_set_new(o, "tls", tls);
    }
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

/* The value of the request's Authorization header (trimmed), or NULL. */
static const char *authorization(const struct phr_header *h, size_t nh, size_t *len)
{
    for (size_t i = 0; i < nh; i++) {
        if (!h[i].name || h[i].name_len != 13 || strncasecmp(h[i].name, "authorization", 13))
            continue;
        const char *v = h[i].value, *e = v + h[i].value_len;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *len = (size_t)(e - v);
        return v;
    }
    return NULL;
}

/* Answer the request whose head picohttpparser split (pointers into ac->head). */
static void handle(struct aconn *ac, const char *method, size_t mlen, const char *path, size_t plen,
                   const struct phr_header *h, size_t nh)
{
    const char *q = memchr(path, '?', plen);
    if (q) plen = (size_t)(q - path);
#define IS(lit) (plen == sizeof(lit) - 1 && memcmp(path, lit, sizeof(lit) - 1) == 0)
    int metrics = IS("/metrics"), health = IS("/healthz"), ready = IS("/readyz");
    if (!metrics && !health && !ready && !IS("/stats")) {
        respond_text(ac, 404, "Not Found",
                     "not found: try GET /stats, /metrics, /healthz or /readyz\n");
        return;
    }
#undef IS
    if (mlen != 3 || memcmp(method, "GET", 3) != 0) {
        respond_text(ac, 405, "Method Not Allowed", "GET only\n");
        return;
    }
    size_t alen = 0;
    const char *av = authorization(h, nh, &alen);
    if (!auth_admin_ok(ac->a->srv->broker->auth, av, alen)) {
        respond_text(ac, 401, "Unauthorized",
                     "unauthorized: send 'Authorization: Bearer <admin token>' "
                     "(--admin-token-file)\n");
        return;
    }
    /* healthz: the main loop answered, so the process is alive. readyz: and it takes new
     * connections, which it stops doing once SIGTERM or SIGINT began the shutdown. */
    if (health) {
        respond_text(ac, 200, "OK", "ok\n");
        return;
    }
    if (ready) {
        if (ac->a->srv->stopping || ac->a->stopping)
            respond_text(ac, 503, "Service Unavailable", "stopping\n");
        else
            respond_text(ac, 200, "OK", "ready\n");
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
    const char *method, *path;
    size_t mlen, plen, nh = HEADERS_MAX;
    struct phr_header h[HEADERS_MAX];
    int minor;
    int rc = phr_parse_request(ac->head, ac->len, &method, &mlen, &path, &plen, &minor, h, &nh, 0);
    if (rc > 0)
        handle(ac, method, mlen, path, plen, h, nh);
    else if (rc == -1)
        respond_text(ac, 400, "Bad Request", "bad request head\n");
    else if (ac->len >= HEAD_MAX - 1)
        respond_text(ac, 431, "Request Header Fields Too Large", "request head over 8 KiB\n");
}

static void on_timeout(uv_timer_t *t)
{
    aconn_close(t->data);
}

/* Full: close the oldest connection that has not sent its request head (the list is newest
 * first). 0 when every slot is answering, which takes no longer than a write. */
static int evict_silent(struct admin *a)
{
    struct aconn *old = NULL;
    for (struct aconn *ac = a->list; ac; ac = ac->next)
        if (ac->counted && !ac->answered) old = ac;
    if (!old) return 0;
    aconn_close(old);
    return 1;
}

static void on_connection(void *data, int fd)
{
    struct admin *a = data;
    struct server *srv = a->srv;
    if (a->stopping) {
        close(fd);
        return;
    }
    if (a->open >= ADMIN_CONNS_MAX) {
        metrics_add(&srv->hub.metrics, METRICS_LIMIT_ADMIN, 1);
        if (!evict_silent(a)) {
            close(fd);
            return;
        }
    }
    struct aconn *ac = calloc(1, sizeof(*ac));
    if (!ac) {
        close(fd);
        return;
    }
    ac->a = a;
    uv_tcp_init(srv->loop, &ac->h);
    uv_timer_init(srv->loop, &ac->timer);
    ac->h.data = ac->timer.data = ac;
    ac->open_handles = 2;
    a->nconns++;
    ac->next = a->list;
    if (a->list) a->list->prev = ac;
    a->list = ac;
    if (uv_tcp_open(&ac->h, fd) < 0) {
        close(fd);
        aconn_close(ac);
        return;
    }
    ac->counted = 1;
    a->open++;
    a->accepted++;
    uv_timer_start(&ac->timer, on_timeout, HEAD_TIMEOUT_MS, 0);
    uv_read_start((uv_stream_t *)&ac->h, on_alloc, on_read);
}

static void on_listener_closed(struct listener *l)
{
    struct admin *a = l->data;
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
    if ((rc = listen_watch(&a->listener, srv->loop, fd, "admin", srv->cfg.log_level, on_connection,
                           a)) < 0) {
        close(fd);
        free(a);
        return rc;
    }
    a->listening = 1;
    *out = a;
    return 0;
}

void admin_stop(struct admin *a)
{
    if (!a || a->stopping) return;
    a->stopping = 1;
    while (a->list)
        aconn_close(a->list);
    listen_close(&a->listener, on_listener_closed);
}
