/* metrics: the registry (see metrics.h). The table below is the single list of what the broker
 * measures; /stats, /metrics and the docs' list are all rendered from it, so adding a metric is
 * adding a slot and a row.
 *
 * Histograms keep per-bucket counts (not cumulative) so an observation writes two slots; the
 * renderer accumulates. Sums are integers in raw units (ms) and are printed in base units
 * (seconds) by moving the decimal point, so the output is exact and needs no floating point. */
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "wire.h"

static const uint64_t latency_bounds_ms[METRICS_LATENCY_BOUNDS] = {
    1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000};

const struct metrics_hist metrics_latency = {latency_bounds_ms, METRICS_LATENCY_BOUNDS, 1000};

#define C METRICS_COUNTER
#define G METRICS_GAUGE
#define H METRICS_HISTOGRAM
#define T(k) "transport=\"" k "\""
#define L(k) "limit=\"" k "\""

static const struct metrics_desc rows[] = {
    {"nudge_connections", G, "", "Open connections by transport (an admin request counts itself)",
     T("pub"), "connections.pub", METRICS_CONNS_PUB, NULL},
    {"nudge_connections", G, "", NULL, T("ws"), "connections.ws", METRICS_CONNS_WS, NULL},
    {"nudge_connections", G, "", NULL, T("admin"), "connections.admin", METRICS_CONNS_ADMIN, NULL},
    {"nudge_connections", G, "", NULL, T("http"), "connections.http", METRICS_CONNS_HTTP, NULL},
    {"nudge_websocket_handshakes", G, "",
     "WebSocket sockets accepted whose upgrade is not done yet (they count in --max-conns)", NULL,
     "connections.ws_pending", METRICS_WS_PENDING, NULL},
    {"nudge_connections_accepted_total", C, "", "Connections accepted since start, by transport",
     T("pub"), "accepted.pub", METRICS_ACCEPTED_PUB, NULL},
    {"nudge_connections_accepted_total", C, "", NULL, T("ws"), "accepted.ws", METRICS_ACCEPTED_WS,
     NULL},
    {"nudge_connections_accepted_total", C, "", NULL, T("admin"), "accepted.admin",
     METRICS_ACCEPTED_ADMIN, NULL},
    {"nudge_connections_accepted_total", C, "", NULL, T("http"), "accepted.http",
     METRICS_ACCEPTED_HTTP, NULL},
    {"nudge_subscriptions", G, "", "Topic subscriptions over all WebSocket connections", NULL,
     "subscriptions", METRICS_SUBSCRIPTIONS, NULL},
    {"nudge_topics", G, "",
     "Topics the broker knows now (subscribed, with history left, or in a coalescing window)", NULL,
     "topics", METRICS_TOPICS, NULL},
    {"nudge_topics_refused_total", C, "",
     "Publishes and subscriptions refused because --max-topics-total topics were known", NULL,
     "topics_refused", METRICS_TOPICS_REFUSED, NULL},
    {"nudge_tls_handshake_failures_total", C, "",
     "TLS handshakes that failed on the publisher listeners (plain text, untrusted or bad peers)",
     NULL, "tls_handshake_failures", METRICS_TLS_FAILURES, NULL},
    {"nudge_publishes_total", C, "", "Publish messages accepted", NULL, "publishes",
     METRICS_PUBLISHES, NULL},
    {"nudge_hints_total", C, "", "Topic-publishes: the sum of topic counts of accepted publishes",
     NULL, "hints", METRICS_HINTS, NULL},
    {"nudge_deliveries_total", C, "", "Hints queued to subscribers", NULL, "deliveries",
     METRICS_DELIVERIES, NULL},
    {"nudge_received_bytes_total", C, "bytes",
     "Bytes read from publishers (frames) and WebSocket subscribers (message payloads)", NULL,
     "bytes_in", METRICS_BYTES_IN, NULL},
    {"nudge_sent_bytes_total", C, "bytes",
     "Bytes written to publishers (frames) and WebSocket subscribers (frames)", NULL, "bytes_out",
     METRICS_BYTES_OUT, NULL},
    {"nudge_errors_total", C, "", "Error messages sent plus connections closed for protocol faults",
     NULL, "errors", METRICS_ERRORS, NULL},
    {"nudge_slow_closes_total", C, "", "Subscribers closed with 4001 (queue past its hard limit)",
     NULL, "slow_closes", METRICS_SLOW_CLOSES, NULL},
    {"nudge_coalesced_hints_total", C, "",
     "Hints merged into one already waiting (in a congested queue or a window)", NULL, "coalesced",
     METRICS_COALESCED, NULL},
    {"nudge_replayed_hints_total", C, "",
     "Hints replayed one by one from history to resuming subscribers (replay all)", NULL,
     "replayed", METRICS_REPLAYED, NULL},
    {"nudge_catchup_hints_total", C, "",
     "Catch-up hints sent on resume: one per changed topic, standing for every missed change", NULL,
     "caught_up", METRICS_CAUGHT_UP, NULL},
    {"nudge_resets_total", C, "", "Reset messages sent (resume impossible)", NULL, "resets",
     METRICS_RESETS, NULL},
    {"nudge_subscription_bytes", G, "bytes",
     "Memory charged to connections for their subscriptions and patterns (--max-sub-bytes each)",
     NULL, "abuse.sub_bytes", METRICS_SUB_BYTES, NULL},
    {"nudge_limit_hits_total", C, "",
     "Requests or connections refused by an abuse limit (docs/operations.md Abuse limits), by "
     "limit",
     L("sub_bytes"), "abuse.refused.sub_bytes", METRICS_LIMIT_SUB_BYTES, NULL},
    {"nudge_limit_hits_total", C, "", NULL, L("replay"), "abuse.refused.replay",
     METRICS_LIMIT_REPLAY, NULL},
    {"nudge_limit_hits_total", C, "", NULL, L("pattern"), "abuse.refused.pattern",
     METRICS_LIMIT_PATTERN, NULL},
    {"nudge_limit_hits_total", C, "", NULL, L("sub_rate"), "abuse.refused.sub_rate",
     METRICS_LIMIT_SUB_RATE, NULL},
    {"nudge_limit_hits_total", C, "", NULL, L("msg_rate"), "abuse.refused.msg_rate",
     METRICS_LIMIT_MSG_RATE, NULL},
    {"nudge_limit_hits_total", C, "", NULL, L("rate_close"), "abuse.refused.rate_close",
     METRICS_LIMIT_RATE_CLOSES, NULL},
    {"nudge_limit_hits_total", C, "", NULL, L("ip_conns"), "abuse.refused.ip_conns",
     METRICS_LIMIT_IP, NULL},
    {"nudge_limit_hits_total", C, "", NULL, L("origin"), "abuse.refused.origin",
     METRICS_LIMIT_ORIGIN, NULL},
    {"nudge_limit_hits_total", C, "", NULL, L("admin"), "abuse.refused.admin", METRICS_LIMIT_ADMIN,
     NULL},
    {"nudge_limit_hits_total", C, "", NULL, L("deadline"), "abuse.refused.deadline",
     METRICS_LIMIT_HELLO, NULL},
    {"nudge_malloc_trims_total", C, "",
     "Times freed subscription memory was handed back to the OS (malloc_trim)", NULL,
     "abuse.malloc_trims", METRICS_MALLOC_TRIMS, NULL},
    {"nudge_queued_messages", G, "", "Entries waiting in all connection output queues now", NULL,
     "queued", METRICS_QUEUED, NULL},
    {"nudge_history_entries", G, "", "Hints held in history now", NULL, "history.entries",
     METRICS_HIST_ENTRIES, NULL},
    {"nudge_history_bytes", G, "bytes", "Memory history accounts for now", NULL, "history.bytes",
     METRICS_HIST_BYTES, NULL},
    {"nudge_history_evicted_total", C, "", "Hints dropped from history by its bounds", NULL,
     "history.evicted", METRICS_HIST_EVICTED, NULL},
    {"nudge_disk_bytes", G, "bytes", "Journal files in the data directory now (0 with --memory)",
     NULL, "disk.bytes", METRICS_DISK_BYTES, NULL},
    {"nudge_disk_refused_total", C, "",
     "Publishes refused by the store: disk full, --disk-max, or a failed disk (code 15)", NULL,
     "disk.refused", METRICS_DISK_REFUSED, NULL},
    {"nudge_global_position", G, "",
     "Publishes stored in this epoch (topic-publishes): the position wildcard resumes count from",
     NULL, "gpos", METRICS_GPOS, NULL},
    {"nudge_positions", G, "", "Topic positions remembered now (held, or within the horizon)", NULL,
     "positions.kept", METRICS_POSITIONS, NULL},
    {"nudge_positions_forgotten_total", C, "",
     "Topic positions forgotten (past the horizon, or over --max-positions)", NULL,
     "positions.forgotten", METRICS_POSITIONS_FORGOTTEN, NULL},
    {"nudge_publish_delivery_seconds", H, "seconds",
     "Time from a publish to the write of its hint to a WebSocket subscriber (wall clock, ms "
     "resolution; one observation per hint frame written; history replays of hints published "
     "before the subscriber connected are not observed)",
     NULL, NULL, METRICS_LATENCY, &metrics_latency},
    {"nudge_workers", G, "", "Worker threads (--workers), each with its own event loop", NULL,
     "workers", METRICS_WORKERS, NULL},
    {"nudge_auth_refused_total", C, "",
     "Credentials refused, by reason: subscriber tokens (malformed, too_big, alg, signature, "
     "expired, not_yet_valid, audience, issuer, claims), a hello without a required token, a "
     "publisher API key, an admin bearer token, a token of a revoked user",
     "reason=\"malformed\"", "auth.refused.malformed", METRICS_AUTH_REFUSED + 0, NULL},
    {"nudge_auth_refused_total", C, "", NULL, "reason=\"too_big\"", "auth.refused.too_big",
     METRICS_AUTH_REFUSED + 1, NULL},
    {"nudge_auth_refused_total", C, "", NULL, "reason=\"alg\"", "auth.refused.alg",
     METRICS_AUTH_REFUSED + 2, NULL},
    {"nudge_auth_refused_total", C, "", NULL, "reason=\"signature\"", "auth.refused.signature",
     METRICS_AUTH_REFUSED + 3, NULL},
    {"nudge_auth_refused_total", C, "", NULL, "reason=\"expired\"", "auth.refused.expired",
     METRICS_AUTH_REFUSED + 4, NULL},
    {"nudge_auth_refused_total", C, "", NULL, "reason=\"not_yet_valid\"",
     "auth.refused.not_yet_valid", METRICS_AUTH_REFUSED + 5, NULL},
    {"nudge_auth_refused_total", C, "", NULL, "reason=\"audience\"", "auth.refused.audience",
     METRICS_AUTH_REFUSED + 6, NULL},
    {"nudge_auth_refused_total", C, "", NULL, "reason=\"issuer\"", "auth.refused.issuer",
     METRICS_AUTH_REFUSED + 7, NULL},
    {"nudge_auth_refused_total", C, "", NULL, "reason=\"claims\"", "auth.refused.claims",
     METRICS_AUTH_REFUSED + 8, NULL},
    {"nudge_auth_refused_total", C, "", NULL, "reason=\"token_required\"",
     "auth.refused.token_required", METRICS_AUTH_TOKEN_REQUIRED, NULL},
    {"nudge_auth_refused_total", C, "", NULL, "reason=\"api_key\"", "auth.refused.api_key",
     METRICS_AUTH_API_KEY, NULL},
    {"nudge_auth_refused_total", C, "", NULL, "reason=\"admin_token\"", "auth.refused.admin_token",
     METRICS_AUTH_ADMIN_TOKEN, NULL},
    {"nudge_auth_refused_total", C, "", NULL, "reason=\"revoked\"", "auth.refused.revoked",
     METRICS_AUTH_REVOKED, NULL},
    {"nudge_auth_forbidden_total", C, "",
     "Subscriptions and publishes refused because the credentials do not allow the topic (code 17)",
     NULL, "auth.forbidden", METRICS_AUTH_FORBIDDEN, NULL},
    {"nudge_auth_expired_total", C, "",
     "Subscribers closed with 4002: their token expired without a refresh", NULL, "auth.expired",
     METRICS_AUTH_EXPIRED, NULL},
    {"nudge_auth_refreshes_total", C, "", "Token refreshes on live connections, by result",
     "result=\"ok\"", "auth.refreshed", METRICS_AUTH_REFRESHED, NULL},
    {"nudge_auth_refreshes_total", C, "", NULL, "result=\"refused\"", "auth.refresh_refused",
     METRICS_AUTH_REFRESH_REFUSED, NULL},
    {"nudge_auth_rate_limited_total", C, "",
     "Publishes refused by their API key's rate (--pub-rate, rate= in --pub-keys; code 19)", NULL,
     "auth.rate_limited", METRICS_AUTH_RATE_LIMITED, NULL},
    {"nudge_reloads_total", C, "",
     "Configuration reloads (SIGHUP), by result: refused ones left the running configuration "
     "as it was",
     "result=\"ok\"", "reloads.ok", METRICS_RELOADS_OK, NULL},
    {"nudge_reloads_total", C, "", NULL, "result=\"refused\"", "reloads.refused",
     METRICS_RELOADS_FAILED, NULL},
    {"nudge_auth_revoked_users", G, "",
     "Users whose tokens issued before their revocation are refused (POST "
     "/users/USER/disconnect; kept --revoke-keep seconds)",
     NULL, "auth.revoked_users", METRICS_AUTH_REVOKED_USERS, NULL},
    {"nudge_engine_up", G, "",
     "1 while the engine takes publishes: always with --engine local; a cluster node while it is "
     "connected to Redis and synchronised",
     NULL, "cluster.up", METRICS_ENGINE_UP, NULL},
    {"nudge_cluster_hints_total", C, "",
     "Hints a cluster node learnt from the cluster's channel, by origin: other nodes' publishes, "
     "and its own",
     "from=\"remote\"", "cluster.remote", METRICS_CLUSTER_REMOTE, NULL},
    {"nudge_cluster_hints_total", C, "", NULL, "from=\"own\"", "cluster.own", METRICS_CLUSTER_OWN,
     NULL},
    {"nudge_cluster_publish_failures_total", C, "",
     "Publishes a cluster node could not complete: Redis unreachable, refused or too slow "
     "(--redis-timeout); the publisher got code 15",
     NULL, "cluster.failed", METRICS_CLUSTER_FAILED, NULL},
    {"nudge_cluster_syncs_total", C, "",
     "Synchronisations with Redis (at start, after the connection was lost, after a gap)", NULL,
     "cluster.syncs", METRICS_CLUSTER_SYNCS, NULL},
    {"nudge_cluster_gaps_total", C, "",
     "Jumps in the global position seen on the cluster's channel (each starts a synchronisation)",
     NULL, "cluster.gaps", METRICS_CLUSTER_GAPS, NULL},
    {"nudge_cluster_epochs_total", C, "",
     "New epochs a cluster node adopted (Redis lost its data, or came back from older data): "
     "every subscriber was closed and reset",
     NULL, "cluster.epochs", METRICS_CLUSTER_EPOCHS, NULL},
    {"nudge_cluster_pending_publishes", G, "",
     "Publishes of a cluster node waiting for their hint to come back from Redis", NULL,
     "cluster.pending", METRICS_CLUSTER_PENDING, NULL},
    {"nudge_log_suppressed_total", C, "",
     "Warn lines of connection-level events (docs/operations.md Logs) dropped by the log rate "
     "limit (--log-rate), by event",
     "event=\"auth_failed\"", "log.suppressed.auth_failed", METRICS_LOG_SUPPRESSED + 0, NULL},
    {"nudge_log_suppressed_total", C, "", NULL, "event=\"slow_consumer\"",
     "log.suppressed.slow_consumer", METRICS_LOG_SUPPRESSED + 1, NULL},
    {"nudge_log_suppressed_total", C, "", NULL, "event=\"rate_limited\"",
     "log.suppressed.rate_limited", METRICS_LOG_SUPPRESSED + 2, NULL},
    {"nudge_log_suppressed_total", C, "", NULL, "event=\"out_of_memory\"",
     "log.suppressed.out_of_memory", METRICS_LOG_SUPPRESSED + 3, NULL},
    {"nudge_log_suppressed_total", C, "", NULL, "event=\"max_conns\"", "log.suppressed.max_conns",
     METRICS_LOG_SUPPRESSED + 4, NULL},
    {"nudge_log_suppressed_total", C, "", NULL, "event=\"max_conns_per_ip\"",
     "log.suppressed.max_conns_per_ip", METRICS_LOG_SUPPRESSED + 5, NULL},
    {"nudge_log_suppressed_total", C, "", NULL, "event=\"origin_refused\"",
     "log.suppressed.origin_refused", METRICS_LOG_SUPPRESSED + 6, NULL},
    {"nudge_log_suppressed_total", C, "", NULL, "event=\"handshake_timeout\"",
     "log.suppressed.handshake_timeout", METRICS_LOG_SUPPRESSED + 7, NULL},
    {"nudge_log_suppressed_total", C, "", NULL, "event=\"too_large\"", "log.suppressed.too_large",
     METRICS_LOG_SUPPRESSED + 8, NULL},
};

#undef C
#undef G
#undef H
#undef T
#undef L

const struct metrics_table metrics_table = {rows, sizeof(rows) / sizeof(rows[0]), METRICS_SLOTS};

/* ---- shards -------------------------------------------------------------------------------- */

void metrics_observe(struct metrics_shard *s, uint32_t first, const struct metrics_hist *h,
                     uint64_t raw)
{
    uint32_t b = 0;
    while (b < h->nbounds && raw > h->bounds[b])
        b++;
    metrics_add(s, (enum metrics_slot)(first + b), 1);
    metrics_add(s, (enum metrics_slot)(first + h->nbounds + 1), raw);
}

void metrics_observe_written(struct metrics_shard *s, const struct conn *c, uint32_t n,
                             uint64_t since_ms, uint64_t now_ms)
{
    /* Count into locals and touch the shard once per batch: a batch is mostly hints of one
     * loop turn, so the bucket of the previous entry is usually the bucket of this one. */
    const struct metrics_hist *h = &metrics_latency;
    uint64_t cnt[METRICS_LATENCY_BOUNDS + 1] = {0}, sum = 0, last_t = UINT64_MAX;
    uint32_t b = 0, seen = 0;
    for (uint32_t i = 0; i < n; i++) {
        const struct qent *e = conn_peek(c, i);
        if (!e || !e->h || e->h->time_ms < since_ms) continue;
        uint64_t t = e->h->time_ms, age = now_ms > t ? now_ms - t : 0;
        if (t != last_t) {
            for (b = 0; b < h->nbounds && age > h->bounds[b]; b++)
                ;
            last_t = t;
        }
        cnt[b]++;
        sum += age;
        seen++;
    }
    if (!seen) return;
    for (b = 0; b <= h->nbounds; b++)
        if (cnt[b]) metrics_add(s, (enum metrics_slot)(METRICS_LATENCY + b), cnt[b]);
    metrics_add(s, (enum metrics_slot)(METRICS_LATENCY + h->nbounds + 1), sum);
}

void metrics_sum(const struct metrics_shard *const *shards, size_t n, uint64_t v[METRICS_SLOTS])
{
    memset(v, 0, sizeof(uint64_t) * METRICS_SLOTS);
    for (size_t k = 0; k < n; k++)
        for (size_t i = 0; i < METRICS_SHARD_SLOTS; i++)
            v[i] += stat_get(&shards[k]->v[i]);
}

/* ---- rendering ----------------------------------------------------------------------------- */

static int put(struct wire_buf *out, const char *s)
{
    return wire_buf_append(out, s, strlen(s));
}

static int putf_u64(struct wire_buf *out, uint64_t x)
{
    char num[24];
    int len = snprintf(num, sizeof(num), "%llu", (unsigned long long)x);
    return wire_buf_append(out, num, (size_t)len);
}

/* x / scale in decimal, exactly, without trailing zeros ("0.025", "1", "2.5"). scale is a power
 * of ten. */
static int put_scaled(struct wire_buf *out, uint64_t x, uint32_t scale)
{
    char num[48];
    int len = snprintf(num, sizeof(num), "%llu", (unsigned long long)(x / scale));
    if (scale > 1) {
        int digits = 0;
        for (uint32_t s = scale; s > 1; s /= 10)
            digits++;
        len += snprintf(num + len, sizeof(num) - (size_t)len, ".%0*llu", digits,
                        (unsigned long long)(x % scale));
        while (num[len - 1] == '0')
            len--;
        if (num[len - 1] == '.') len--;
    }
    return wire_buf_append(out, num, (size_t)len);
}

static const char *type_name(enum metrics_type t)
{
    return t == METRICS_COUNTER ? "counter" : t == METRICS_GAUGE ? "gauge" : "histogram";
}

/* A family's first row: the first row, or one whose name differs from the row before. */
static int family_start(const struct metrics_table *t, size_t i)
{
    return i == 0 || strcmp(t->rows[i].name, t->rows[i - 1].name) != 0;
}

/* name{labels} or name{labels,extra} or name: the sample's name and label set. */
static int put_series(struct wire_buf *out, const char *name, const char *suffix,
                      const char *labels, const char *extra)
{
    int rc = put(out, name);
    if (!rc) rc = put(out, suffix);
    if (!rc && (labels || extra)) {
        rc = put(out, "{");
        if (!rc && labels) rc = put(out, labels);
        if (!rc && labels && extra) rc = put(out, ",");
        if (!rc && extra) rc = put(out, extra);
        if (!rc) rc = put(out, "}");
    }
    return rc ? rc : put(out, " ");
}

static int render_hist(const struct metrics_desc *d, const uint64_t *v, struct wire_buf *out)
{
    const struct metrics_hist *h = d->hist;
    uint64_t cum = 0;
    int rc = 0;
    for (uint32_t b = 0; b <= h->nbounds && !rc; b++) {
        char le[64] = "le=\"+Inf\"";
        if (b < h->nbounds) {
            struct wire_buf tmp = {0};
            rc = put_scaled(&tmp, h->bounds[b], h->scale);
            if (!rc) snprintf(le, sizeof(le), "le=\"%.*s\"", (int)tmp.len, (char *)tmp.data);
            wire_buf_free(&tmp);
        }
        cum += v[d->slot + b];
        if (!rc) rc = put_series(out, d->name, "_bucket", d->labels, le);
        if (!rc) rc = putf_u64(out, cum);
        if (!rc) rc = put(out, "\n");
    }
    if (!rc) rc = put_series(out, d->name, "_sum", d->labels, NULL);
    if (!rc) rc = put_scaled(out, v[d->slot + h->nbounds + 1], h->scale);
    if (!rc) rc = put(out, "\n");
    if (!rc) rc = put_series(out, d->name, "_count", d->labels, NULL);
    if (!rc) rc = putf_u64(out, cum);
    if (!rc) rc = put(out, "\n");
    return rc;
}

int metrics_render_prom(const struct metrics_table *t, const uint64_t *v, struct wire_buf *out)
{
    int rc = 0;
    for (size_t i = 0; i < t->nrows && !rc; i++) {
        const struct metrics_desc *d = &t->rows[i];
        if (family_start(t, i)) {
            rc = put(out, "# HELP ");
            if (!rc) rc = put(out, d->name);
            if (!rc) rc = put(out, " ");
            if (!rc) rc = put(out, d->help ? d->help : "");
            if (!rc) rc = put(out, "\n# TYPE ");
            if (!rc) rc = put(out, d->name);
            if (!rc) rc = put(out, " ");
            if (!rc) rc = put(out, type_name(d->type));
            if (!rc) rc = put(out, "\n");
        }
        if (rc) break;
        if (d->type == METRICS_HISTOGRAM) {
            rc = render_hist(d, v, out);
        } else {
            rc = put_series(out, d->name, "", d->labels, NULL);
            if (!rc) rc = putf_u64(out, v[d->slot]);
            if (!rc) rc = put(out, "\n");
        }
    }
    return rc;
}

int metrics_render_json(const struct metrics_table *t, const uint64_t *v, json_t *obj)
{
    for (size_t i = 0; i < t->nrows; i++) {
        const struct metrics_desc *d = &t->rows[i];
        if (!d->json || d->type == METRICS_HISTOGRAM) continue;
        json_t *o = obj;
        const char *p = d->json, *dot;
        while ((dot = strchr(p, '.'))) {
            char key[64];
            size_t n = (size_t)(dot - p);
            if (n >= sizeof(key)) return -EINVAL;
            memcpy(key, p, n);
            key[n] = '\0';
            json_t *sub = json_object_get(o, key);
            if (!sub) {
                sub = json_object();
                if (!sub || json_object_set_new(o, key, sub) < 0) return -ENOMEM;
            } else if (!json_is_object(sub)) {
                return -EINVAL;
            }
            o = sub;
            p = dot + 1;
        }
        if (json_object_set_new(o, p, json_integer((json_int_t)v[d->slot])) < 0) return -ENOMEM;
    }
    return 0;
}

/* The /stats path(s) of the family starting at row i: "publishes", or "accepted.{pub,ws}" for a
 * labelled family whose paths share a prefix, or "-". */
static int put_json_paths(struct wire_buf *out, const struct metrics_table *t, size_t i)
{
    const struct metrics_desc *d = &t->rows[i];
    if (!d->json) return put(out, "-");
    const char *dot = strrchr(d->json, '.');
    size_t pre = dot ? (size_t)(dot - d->json) + 1 : 0;
    size_t j = i + 1;
    while (j < t->nrows && !family_start(t, j))
        j++;
    int rc = put(out, "`");
    if (j == i + 1 || !dot) {
        if (!rc) rc = put(out, d->json);
        return rc ? rc : put(out, "`");
    }
    if (!rc) rc = wire_buf_append(out, d->json, pre);
    for (size_t k = i; k < j && !rc; k++) {
        rc = put(out, k == i ? "{" : ",");
        if (!rc) rc = put(out, t->rows[k].json + pre);
    }
    return rc ? rc : put(out, "}`");
}

int metrics_render_md(const struct metrics_table *t, struct wire_buf *out)
{
    int rc = put(out, "| metric | type | unit | /stats | help |\n|---|---|---|---|---|\n");
    for (size_t i = 0; i < t->nrows && !rc; i++) {
        const struct metrics_desc *d = &t->rows[i];
        if (!family_start(t, i)) continue;
        rc = put(out, "| `");
        if (!rc) rc = put(out, d->name);
        if (!rc && d->labels) {
            /* the label key, from the first row's pairs: {transport} */
            const char *eq = strchr(d->labels, '=');
            rc = put(out, "{");
            if (!rc) rc = wire_buf_append(out, d->labels, eq ? (size_t)(eq - d->labels) : 0);
            if (!rc) rc = put(out, "}");
        }
        if (!rc) rc = put(out, "` | ");
        if (!rc) rc = put(out, type_name(d->type));
        if (!rc) rc = put(out, " | ");
        if (!rc) rc = put(out, *d->unit ? d->unit : "-");
        if (!rc) rc = put(out, " | ");
        if (!rc) rc = put_json_paths(out, t, i);
        if (!rc) rc = put(out, " | ");
        if (!rc) rc = put(out, d->help ? d->help : "");
        if (!rc) rc = put(out, " |\n");
    }
    return rc;
}
