/* admin: a deliberately tiny HTTP/1.1 server for operators. It reads one request head (at most
 * 8 KiB, within 2 s), answers from the request line alone and closes the connection: no
 * keep-alive, no request bodies, nothing that could be pipelined — so it cannot inherit the
 * lws 4.1.6 HTTP stall (shared/NOTES.md) and a slow client costs one timer. Most answers are
 * made at once on worker 0 (under the engine lock for topics); those about connections on
 * other workers wait for every worker to answer a job posted to its hub (see "questions to
 * every worker" below).
 * At most ADMIN_CONNS_MAX requests at once; when full, a new connection takes the place of the
 * oldest one still silent (no complete head yet), so idle sockets cannot hold the port: 64 of
 * them used to keep /stats unanswered until their 5 s timeout (#14). The head is parsed by
 * picohttpparser (broker/vendor/), as the HTTP publish endpoint's is (hreq.c). */
#include "admin.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cluster.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "picohttpparser.h"
#include "server.h"
#include "worker.h"

#define HEAD_MAX 8192
#define HEADERS_MAX 32
#define HEAD_TIMEOUT_MS 2000 /* a request head must be complete this long after connecting */
#define ADMIN_CONNS_MAX 16   /* concurrent admin requests; not counted in --max-conns */
#define ADMIN_TOP_DEFAULT 10 /* GET /topics without top= */
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
    struct ureq *ureq; /* a question to every worker being answered (users), or NULL */
    uint64_t ureq_ms;  /* when it was asked */
    size_t len;
    char head[HEAD_MAX];
};

static void ureq_release(struct ureq *u);

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
    if (ac->ureq) ureq_release(ac->ureq); /* the workers' answers are no longer awaited */
    ac->ureq = NULL;
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
    v[METRICS_AUTH_REVOKED] = stat_get(&as->revoked);
    v[METRICS_AUTH_REVOKED_USERS] = revoke_count(&srv->broker->revoked);
    for (int e = 0; e < LOG_EV_COUNT; e++)
        v[METRICS_LOG_SUPPRESSED + e] = log_suppressed((enum log_event)e);
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
    v[METRICS_ENGINE_UP] = 1;
    if (srv->cfg.cluster) {
        struct cluster_stats cs;
        cluster_stats(e->store, &cs);
        v[METRICS_ENGINE_UP] = (uint64_t)cs.up;
        v[METRICS_CLUSTER_REMOTE] = cs.remote;
        v[METRICS_CLUSTER_OWN] = cs.own;
        v[METRICS_CLUSTER_FAILED] = cs.failed;
        v[METRICS_CLUSTER_SYNCS] = cs.syncs;
        v[METRICS_CLUSTER_GAPS] = cs.gaps;
        v[METRICS_CLUSTER_EPOCHS] = cs.epochs;
        v[METRICS_CLUSTER_PENDING] = cs.pending;
    }
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
    /* up, remote, own, failed, syncs, gaps, epochs, pending: from the table */
    json_t *cl = json_object_get(o, "cluster");
    if (cl) {
        char url[300] = "local";
        if (srv->cfg.cluster)
            snprintf(url, sizeof url, "redis://%s:%u", srv->cfg.redis.host, srv->cfg.redis.port);
        json_object_set_new(cl, "engine", json_string(url));
    }
    if (cl && srv->cfg.cluster) { /* docs/cluster.md */
        struct cluster_stats cs;
        engine_lock(srv->engine);
        cluster_stats(srv->engine->store, &cs);
        engine_unlock(srv->engine);
        json_object_set_new(cl, "prefix", json_string(srv->cfg.redis.prefix));
        set_u64(cl, "behind", cs.behind);
        set_u64(cl, "dups", cs.dups);
        set_u64(cl, "bad", cs.bad);
        set_u64(cl, "records", cs.records);
        set_u64(cl, "caught_up", cs.caught_up);
        if (srv->broker->redis) set_u64(cl, "in_flight", redis_inflight(srv->broker->redis));
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

/* ---- JSON endpoints ---------------------------------------------------------------------- */

/* Answer with o as the JSON body (o is decref'd). */
static void respond_json(struct aconn *ac, int status, const char *reason, json_t *o)
{
    char *text =
        o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(o);
    struct wire_buf body = {0};
    if (!text || wire_buf_append(&body, text, strlen(text)) < 0 ||
        wire_buf_append(&body, "\n", 1) < 0) {
        free(text);
        wire_buf_free(&body);
        respond_text(ac, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    free(text);
    respond(ac, status, reason, "application/json", &body);
    wire_buf_free(&body);
}

/* {"error": msg} with status. */
static void respond_error(struct aconn *ac, int status, const char *reason, const char *msg)
{
    respond_json(ac, status, reason, json_pack("{s:s}", "error", msg));
}

/* The value of key in query q[0..len) ("a=1&b=2"), raw; NULL when absent. */
static const char *query_value(const char *q, size_t len, const char *key, size_t *vlen)
{
    size_t klen = strlen(key);
    for (const char *p = q, *end = q + len; p && p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *e = amp ? amp : end;
        if ((size_t)(e - p) > klen && p[klen] == '=' && memcmp(p, key, klen) == 0) {
            *vlen = (size_t)(e - p) - klen - 1;
            return p + klen + 1;
        }
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}

/* Rates are shown to the thousandth; a topic whose rate rounds to 0 is left out of the top. */
static double rate_shown(double r)
{
    return round(r * 1000.0) / 1000.0;
}

/* GET /topics?top=N: the busiest topics by publish rate (engine_top: the engine keeps them in
 * order as it publishes, so this costs O(N) under the lock, not O(topics)). */
static void get_topics(struct aconn *ac, const char *q, size_t qlen)
{
    struct server *srv = ac->a->srv;
    uint32_t top = ADMIN_TOP_DEFAULT;
    size_t vlen = 0;
    const char *v = q ? query_value(q, qlen, "top", &vlen) : NULL;
    if (v) {
        char buf[16];
        unsigned long x = 0;
        if (vlen && vlen < sizeof(buf) && v[0] >= '0' && v[0] <= '9') {
            memcpy(buf, v, vlen);
            buf[vlen] = '\0';
            char *end;
            x = strtoul(buf, &end, 10);
            if (*end) x = 0;
        }
        if (x < 1 || x > RATE_TOP_MAX) {
            respond_error(ac, 400, "Bad Request", "top must be an integer from 1 to 1000");
            return;
        }
        top = (uint32_t)x;
    }
    json_t *o = json_object(), *list = json_array();
    if (!o || !list) {
        json_decref(o);
        json_decref(list);
        respond_text(ac, 500, "Internal Server Error", "out of memory\n");
        return;
    }
    json_object_set_new(o, "window_s", json_integer(RATE_WINDOW_S));
    json_object_set_new(o, "topics", list);
    struct etopic *t[RATE_TOP_MAX];
    struct engine *e = srv->engine;
    uv_update_time(srv->loop); /* publishes on other workers stamped their loop's time */
    uint64_t now = uv_now(srv->loop);
    engine_lock(e);
    uint32_t n = engine_top(e, t, top);
    for (uint32_t i = 0; i < n; i++) {
        double r = rate_shown(engine_rate(e, t[i], now));
        if (r <= 0) continue;
        json_array_append_new(
            list,
            json_pack("{s:s%,s:f,s:I,s:I}", "topic", t[i]->name, (size_t)t[i]->node.len, "rate", r,
                      "seq", (json_int_t)engine_seq(e, t[i]), "subscribers",
                      (json_int_t)atomic_load_explicit(&t[i]->subscribers, memory_order_relaxed)));
    }
    engine_unlock(e);
    respond_json(ac, 200, "OK", o);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode in[0..len) into out (cap bytes, NUL-terminated). Returns the decoded length,
 * or -1 for a bad escape, a NUL, or more than cap - 1 bytes. */
static int pct_decode(const char *in, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            int hi = i + 2 < len ? hexval(in[i + 1]) : -1, lo = hi >= 0 ? hexval(in[i + 2]) : -1;
            if (lo < 0) return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (c == 0 || n + 1 >= cap) return -1;
        out[n++] = (char)c;
    }
    out[n] = '\0';
    return (int)n;
}

/* ---- questions to every worker --------------------------------------------------------- */

/* A user's connections, and a topic's pattern subscribers, live on every worker's hub, which
 * only its own thread may touch. So the request posts one job to each hub (hub_post_fn: the
 * hub's thread runs it between loop turns, as it runs a publish the store completed elsewhere),
 * each job fills its own slot and counts down `pending` (release), and the request's timer looks
 * at `pending` every UREQ_POLL_MS (acquire) and answers once it is 0. Polling instead of a
 * wake-up posted back to worker 0: a job may run after worker 0's loop ended (in worker_free's
 * last drain, at shutdown), and then nothing of the admin may be touched. So a struct ureq
 * belongs to nobody in particular: one reference for the request, one per job, the last one
 * frees it. Jobs only read what was set before they were posted and write their own slot. */
#define UREQ_POLL_MS 1
#define UREQ_WAIT_MS 5000 /* a worker that has not answered by then: 503 */

enum ureq_kind {
    UREQ_USER,   /* GET /users/USER/connections */
    UREQ_REVOKE, /* POST /users/USER/disconnect */
    UREQ_TOPIC,  /* GET /topics/NAME: its pattern subscribers */
};

struct ujob {
    struct hub_job job;
    struct ureq *u;
    struct session_uconn *conns; /* users: found on this worker (realloc'd, owned) */
    uint32_t n;                  /* users: conns; topic: pattern followers */
    int err;
};

struct ureq {
    _Atomic uint32_t refs;
    _Atomic uint32_t pending; /* jobs not done */
    enum ureq_kind kind;
    int64_t before_s; /* revoke: tokens issued before this are refused */
    json_t *doc;      /* topic: the answer but for the workers' part (worker 0's only) */
    uint32_t nworkers;
    size_t len;
    char name[WIRE_TOPIC_LEN_MAX + 1]; /* the user or the topic */
    struct ujob jobs[];                /* one per worker, by index */
};

static void ureq_unref(struct ureq *u)
{
    if (atomic_fetch_sub_explicit(&u->refs, 1, memory_order_acq_rel) != 1) return;
    for (uint32_t i = 0; i < u->nworkers; i++)
        free(u->jobs[i].conns);
    /* doc: dropped by worker 0 before its reference (ureq_release), never by a job */
    free(u);
}

/* Worker 0 lets go of u. */
static void ureq_release(struct ureq *u)
{
    json_decref(u->doc);
    u->doc = NULL;
    ureq_unref(u);
}

/* On worker i's thread (arg: its session). */
static void on_ujob(void *arg, struct hub_job *j)
{
    struct session *s = arg;
    struct ujob *uj = (struct ujob *)j;
    struct ureq *u = uj->u;
    if (u->kind == UREQ_TOPIC)
        uj->n = hub_pattern_followers(s->hub, u->name, u->len);
    else
        uj->err = session_user(s, u->name, u->len, u->kind == UREQ_REVOKE, &uj->conns, &uj->n);
    atomic_fetch_sub_explicit(&u->pending, 1, memory_order_release);
    ureq_unref(u);
}

static void ureq_answer(struct aconn *ac, struct ureq *u)
{
    if (u->kind == UREQ_TOPIC) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < u->nworkers; i++)
            n += u->jobs[i].n;
        json_t *o = u->doc;
        u->doc = NULL;
        json_object_set_new(o, "pattern_subscribers", json_integer(n));
        respond_json(ac, 200, "OK", o);
        return;
    }
    json_t *list = json_array();
    uint32_t n = 0;
    int err = 0;
    for (uint32_t i = 0; list && i < u->nworkers; i++) {
        const struct ujob *uj = &u->jobs[i];
        err |= uj->err;
        for (uint32_t k = 0; k < uj->n; k++, n++) {
            const struct session_uconn *c = &uj->conns[k];
            json_array_append_new(list,
                                  json_pack("{s:s,s:i,s:s,s:I,s:i}", "id", c->id, "worker", (int)i,
                                            "peer", c->peer, "since_ms", (json_int_t)c->since_ms,
                                            "subscriptions", (int)c->subs));
        }
    }
    json_t *o;
    if (u->kind == UREQ_REVOKE) {
        json_decref(list);
        o = json_pack("{s:s%,s:i,s:I}", "user", u->name, u->len, "closed", (int)n, "revoked_before",
                      (json_int_t)u->before_s);
        LOGF(LOG_INFO,
             "admin: user %s disconnected (%u connections closed); its tokens issued before "
             "%lld refused for %lld s",
             u->name, n, (long long)u->before_s, (long long)ac->a->srv->broker->revoked.keep_s);
    } else {
        o = list ? json_pack("{s:s%,s:o}", "user", u->name, u->len, "connections", list) : NULL;
    }
    if (err) {
        json_decref(o);
        respond_error(ac, 500, "Internal Server Error", "out of memory");
    } else {
        respond_json(ac, 200, "OK", o);
    }
}

static void on_ureq_tick(uv_timer_t *t)
{
    struct aconn *ac = t->data;
    struct ureq *u = ac->ureq;
    if (!u) return;
    int done = atomic_load_explicit(&u->pending, memory_order_acquire) == 0;
    if (!done && uv_now(ac->a->srv->loop) - ac->ureq_ms < UREQ_WAIT_MS) return;
    ac->ureq = NULL; /* ours now: respond() may close ac (and stops the timer) */
    if (done)
        ureq_answer(ac, u);
    else
        respond_error(ac, 503, "Service Unavailable",
                      "a worker did not answer within 5 s (the broker is overloaded or stopping)");
    ureq_release(u);
}

/* Ask every worker about name[0..len) (decoded); the answer comes from on_ureq_tick. doc (topic)
 * is taken over. */
static void ask_workers(struct aconn *ac, enum ureq_kind kind, const char *name, size_t len,
                        int64_t before_s, json_t *doc)
{
    struct server *srv = ac->a->srv;
    struct broker *b = srv->broker;
    struct ureq *u = calloc(1, sizeof(*u) + b->nworkers * sizeof(u->jobs[0]));
    if (!u || len >= sizeof(u->name)) {
        free(u);
        json_decref(doc);
        respond_error(ac, 500, "Internal Server Error", "out of memory");
        return;
    }
    atomic_init(&u->refs, b->nworkers + 1);
    atomic_init(&u->pending, b->nworkers);
    u->kind = kind;
    u->before_s = before_s;
    u->doc = doc;
    u->nworkers = b->nworkers;
    memcpy(u->name, name, len);
    u->len = len;
    ac->ureq = u;
    ac->ureq_ms = uv_now(srv->loop);
    uv_timer_start(&ac->timer, on_ureq_tick, UREQ_POLL_MS, UREQ_POLL_MS);
    for (uint32_t i = 0; i < b->nworkers; i++) {
        u->jobs[i].u = u;
        hub_post_fn(&worker_server(b->workers[i])->hub, &u->jobs[i].job, on_ujob);
    }
}

/* GET /topics/NAME: one topic's position, subscribers, rate and history window (under the
 * engine lock), then its pattern subscribers (from every worker). */
static void get_topic(struct aconn *ac, const char *raw, size_t rawlen)
{
    struct server *srv = ac->a->srv;
    struct engine *e = srv->engine;
    char name[WIRE_TOPIC_LEN_MAX + 1];
    int len = pct_decode(raw, rawlen, name, sizeof(name));
    if (len <= 0 || (uint32_t)len > e->cfg.lim.max_topic) {
        respond_error(ac, 400, "Bad Request",
                      "the topic name (percent-encoded after /topics/) is empty, too long or "
                      "badly encoded");
        return;
    }
    uv_update_time(srv->loop); /* as in get_topics */
    uint64_t now = uv_now(srv->loop), wall = store_wall_ms();
    engine_lock(e);
    struct etopic *t = engine_find(e, name, (size_t)len);
    if (!t) {
        engine_unlock(e);
        respond_error(ac, 404, "Not Found",
                      "unknown topic: the broker holds nothing of it now (no subscriber, no "
                      "history, no publish in flight)");
        return;
    }
    struct engine_hist h;
    engine_history(e, t, &h);
    json_t *o = json_pack(
        "{s:s%,s:s,s:I,s:I,s:i,s:f,s:{s:I,s:I,s:I,s:I,s:I}}", "topic", name, (size_t)len, "epoch",
        engine_epoch(e), "seq", (json_int_t)engine_seq(e, t), "subscribers",
        (json_int_t)atomic_load_explicit(&t->subscribers, memory_order_relaxed),
        "pattern_subscribers", 0 /* the workers' count, set by ureq_answer */, "rate",
        rate_shown(engine_rate(e, t, now)), "history", "hints", (json_int_t)h.hints, "first_seq",
        (json_int_t)h.first_seq, "last_seq", (json_int_t)h.last_seq, "bytes", (json_int_t)h.bytes,
        "oldest_age_ms", (json_int_t)(h.hints && wall > h.oldest_ms ? wall - h.oldest_ms : 0));
    engine_unlock(e);
    if (!o) {
        respond_error(ac, 500, "Internal Server Error", "out of memory");
        return;
    }
    ask_workers(ac, UREQ_TOPIC, name, (size_t)len, 0, o); /* + pattern_subscribers */
}

/* /users/USER/connections and /users/USER/disconnect. */
static void user_request(struct aconn *ac, const char *raw, size_t rawlen, int revoke)
{
    char user[TOKEN_SUB_MAX + 1];
    int len = pct_decode(raw, rawlen, user, sizeof(user));
    if (len <= 0) {
        respond_error(ac, 400, "Bad Request",
                      "the user (a token's sub, percent-encoded after /users/) is empty, longer "
                      "than 128 bytes or badly encoded");
        return;
    }
    int64_t now_s = (int64_t)(store_wall_ms() / 1000);
    if (revoke) {
        /* Refused from now on, before any connection is closed: a client reconnecting at once
         * with its old token meets the refusal on whichever worker it lands. */
        int rc = auth_revoke(ac->a->srv->broker->auth, user, (size_t)len, now_s, now_s);
        if (rc == -ENOSPC) {
            respond_error(ac, 503, "Service Unavailable",
                          "the revocation table is full (65536 users revoked within "
                          "--revoke-keep): nothing was done");
            return;
        }
        if (rc < 0) {
            respond_error(ac, 500, "Internal Server Error", "out of memory");
            return;
        }
    }
    ask_workers(ac, revoke ? UREQ_REVOKE : UREQ_USER, user, (size_t)len, now_s, NULL);
}

/* ---- routing ----------------------------------------------------------------------------- */

enum route {
    ROUTE_NONE,
    ROUTE_STATS,
    ROUTE_METRICS,
    ROUTE_HEALTH,
    ROUTE_READY,
    ROUTE_TOPICS,
    ROUTE_TOPIC,
    ROUTE_USER_CONNS,
    ROUTE_USER_DISCONNECT,
};

/* Whether p[0..n) ends with lit; then *n is cut before it. */
static int cut_suffix(const char *p, size_t *n, const char *lit)
{
    size_t l = strlen(lit);
    if (*n < l || memcmp(p + *n - l, lit, l) != 0) return 0;
    *n -= l;
    return 1;
}

/* The route of path[0..plen); *arg[0..*alen) the raw (encoded) name in it, for those that
 * have one. */
static enum route route_of(const char *path, size_t plen, const char **arg, size_t *alen)
{
    static const char topics[] = "/topics/";
    if (plen > sizeof(topics) - 1 && memcmp(path, topics, sizeof(topics) - 1) == 0) {
        *arg = path + sizeof(topics) - 1;
        *alen = plen - (sizeof(topics) - 1);
        return ROUTE_TOPIC;
    }
    static const char users[] = "/users/";
    if (plen > sizeof(users) - 1 && memcmp(path, users, sizeof(users) - 1) == 0) {
        size_t n = plen - (sizeof(users) - 1);
        *arg = path + sizeof(users) - 1;
        enum route r = cut_suffix(*arg, &n, "/connections")  ? ROUTE_USER_CONNS
                       : cut_suffix(*arg, &n, "/disconnect") ? ROUTE_USER_DISCONNECT
                                                             : ROUTE_NONE;
        *alen = n;
        if (r != ROUTE_NONE && n > 0) return r;
    }
#define IS(lit) (plen == sizeof(lit) - 1 && memcmp(path, lit, sizeof(lit) - 1) == 0)
    if (IS("/stats")) return ROUTE_STATS;
    if (IS("/metrics")) return ROUTE_METRICS;
    if (IS("/healthz")) return ROUTE_HEALTH;
    if (IS("/readyz")) return ROUTE_READY;
    if (IS("/topics")) return ROUTE_TOPICS;
#undef IS
    return ROUTE_NONE;
}

/* Answer the request whose head picohttpparser split (pointers into ac->head). */
static void handle(struct aconn *ac, const char *method, size_t mlen, const char *path, size_t plen,
                   const struct phr_header *h, size_t nh)
{
    const char *query = NULL;
    size_t qlen = 0;
    const char *q = memchr(path, '?', plen);
    if (q) {
        query = q + 1;
        qlen = plen - (size_t)(query - path);
        plen = (size_t)(q - path);
    }
    const char *arg = NULL;
    size_t alen_arg = 0;
    enum route r = route_of(path, plen, &arg, &alen_arg);
    int json = r >= ROUTE_TOPICS, post = r == ROUTE_USER_DISCONNECT;
    if (r == ROUTE_NONE) {
        respond_text(ac, 404, "Not Found",
                     "not found: try GET /stats, /metrics, /healthz, /readyz, /topics, "
                     "/topics/NAME, /users/USER/connections or POST /users/USER/disconnect\n");
        return;
    }
    if (post ? mlen != 4 || memcmp(method, "POST", 4) != 0
             : mlen != 3 || memcmp(method, "GET", 3) != 0) {
        if (json)
            respond_error(ac, 405, "Method Not Allowed", post ? "POST only" : "GET only");
        else
            respond_text(ac, 405, "Method Not Allowed", "GET only\n");
        return;
    }
    size_t alen = 0;
    const char *av = authorization(h, nh, &alen);
    if (!auth_admin_ok(ac->a->srv->broker->auth, av, alen)) {
        uv_os_fd_t fd = -1;
        uv_fileno((uv_handle_t *)&ac->h, &fd);
        LOG_EVENT(LOG_EV_AUTH, LOG_PEER(fd), LOG_S("transport", "admin"),
                  LOG_S("reason", "admin_token"),
                  LOG_S("detail", av ? "wrong admin token" : "no admin token"));
        const char *msg = "unauthorized: send 'Authorization: Bearer <admin token>' "
                          "(--admin-token-file)";
        if (json)
            respond_error(ac, 401, "Unauthorized", msg);
        else
            respond_text(ac, 401, "Unauthorized",
                         "unauthorized: send 'Authorization: Bearer <admin token>' "
                         "(--admin-token-file)\n");
        return;
    }
    switch (r) {
    case ROUTE_HEALTH:
        /* The main loop answered, so the process is alive. */
        respond_text(ac, 200, "OK", "ok\n");
        return;
    case ROUTE_READY:
        /* And it takes new connections, which it stops doing once SIGTERM or SIGINT began the
         * shutdown. */
        if (ac->a->srv->stopping || ac->a->stopping)
            respond_text(ac, 503, "Service Unavailable", "stopping\n");
        else if (ac->a->srv->broker->redis && !redis_up(ac->a->srv->broker->redis))
            /* a cluster node without Redis: its subscribers would hear nothing from the others */
            respond_text(ac, 503, "Service Unavailable", "redis unreachable\n");
        else
            respond_text(ac, 200, "OK", "ready\n");
        return;
    case ROUTE_TOPICS:
        get_topics(ac, query, qlen);
        return;
    case ROUTE_TOPIC:
        get_topic(ac, arg, alen_arg);
        return;
    case ROUTE_USER_CONNS:
    case ROUTE_USER_DISCONNECT:
        user_request(ac, arg, alen_arg, post);
        return;
    default:
        break;
    }
    int metrics = r == ROUTE_METRICS;
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
    if (ac->answered || ac->ureq) return; /* a body, or more: not read */
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
        if (ac->counted && !ac->answered && !ac->ureq) old = ac;
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
    if ((rc = listen_watch(&a->listener, srv->loop, fd, "admin", on_connection, a)) < 0) {
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
