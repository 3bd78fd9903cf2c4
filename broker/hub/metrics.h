/* metrics: one table of the broker's counters, gauges and histograms, from which both GET /stats
 * (JSON) and GET /metrics (Prometheus text format 0.0.4) are rendered, and the per-worker shards
 * that hold their values.
 *
 * A shard is an array of 64-bit slots written only by the thread that owns it (a worker), with a
 * relaxed atomic load and store: no lock and no read-modify-write on the hot path. Any thread may
 * read a shard with relaxed loads; readers sum the shards slot by slot (metrics_sum), so a
 * per-shard gauge may wrap below zero (a connection closed by another worker than the one that
 * opened it) and the sum is still right in modulo-2^64 arithmetic. Values a shard cannot hold
 * (topics, history size: owned by the engine) are "read-time" slots the caller fills in after
 * metrics_sum and before rendering.
 *
 * Nothing here knows libuv or libwebsockets. */
#ifndef NUDGE_METRICS_H
#define NUDGE_METRICS_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "stat.h"

struct conn;
struct wire_buf;

enum metrics_type { METRICS_COUNTER, METRICS_GAUGE, METRICS_HISTOGRAM };

/* Histogram shape: observations are integers in raw units (milliseconds, say); scale raw units
 * make one base unit (1000: ms -> seconds), a power of ten so rendering is exact. A histogram
 * takes nbounds + 2 slots from its first: one count per bucket (not cumulative; the last bucket
 * is +Inf), then the sum of observations in raw units. */
struct metrics_hist {
    const uint64_t *bounds; /* ascending upper bounds ("le"), raw units; +Inf is implied */
    uint32_t nbounds;
    uint32_t scale;
};

/* One series. Rows of the same family (same name: label variants) are adjacent in the table;
 * the first row's type, unit and help speak for the family. */
struct metrics_desc {
    const char *name; /* sample name, Prometheus style: counters end in _total, units are
                         base units and come before _total (nudge_received_bytes_total) */
    enum metrics_type type;
    const char *unit;   /* "bytes", "seconds", or "" (a count) */
    const char *help;   /* one line; no backslash, no newline, no '|' (it goes into docs) */
    const char *labels; /* this series' label pairs, e.g. "transport=\"pub\"", or NULL */
    const char *json;   /* dotted path of the field in /stats ("connections.pub"), or NULL */
    uint32_t slot;      /* first slot */
    const struct metrics_hist *hist; /* histograms only */
};

struct metrics_table {
    const struct metrics_desc *rows;
    size_t nrows;
    size_t nslots; /* a value array for this table has nslots entries */
};

/* ---- the broker's table -------------------------------------------------------------------- */

/* Publish -> write latency buckets, in ms: 1 ms .. 10 s. */
#define METRICS_LATENCY_BOUNDS 12
/* Kinds of connection-level log events (broker/net/log.h enum log_event; log.c checks). */
#define METRICS_LOG_EVENTS 9

enum metrics_slot {
    /* Per-shard slots: written by the shard's owner. */
    METRICS_CONNS_PUB,
    METRICS_CONNS_WS,
    METRICS_CONNS_ADMIN,
    METRICS_ACCEPTED_PUB,
    METRICS_ACCEPTED_WS,
    METRICS_ACCEPTED_ADMIN,
    METRICS_PUBLISHES,
    METRICS_HINTS,
    METRICS_DELIVERIES,
    METRICS_BYTES_IN,
    METRICS_BYTES_OUT,
    METRICS_ERRORS,
    METRICS_SLOW_CLOSES,
    METRICS_COALESCED,
    METRICS_REPLAYED,
    METRICS_CAUGHT_UP,
    METRICS_RESETS,
    METRICS_SUB_BYTES,       /* gauge: subscription memory charged to connections (limit.h) */
    METRICS_LIMIT_SUB_BYTES, /* refusals per abuse limit (docs/operations.md §Abuse limits) */
    METRICS_LIMIT_REPLAY,
    METRICS_LIMIT_PATTERN,
    METRICS_LIMIT_SUB_RATE,
    METRICS_LIMIT_MSG_RATE,
    METRICS_LIMIT_RATE_CLOSES,
    METRICS_LIMIT_IP,
    METRICS_LIMIT_ORIGIN,
    METRICS_LIMIT_ADMIN,
    METRICS_LIMIT_HELLO, /* connections closed by a deadline: --hello-timeout, --pub-idle */
    METRICS_MALLOC_TRIMS,
    METRICS_LATENCY, /* histogram: METRICS_LATENCY_BOUNDS + 2 slots */
    METRICS_SHARD_SLOTS = METRICS_LATENCY + METRICS_LATENCY_BOUNDS + 2,
    /* Read-time slots: filled by the caller before rendering. */
    METRICS_SUBSCRIPTIONS = METRICS_SHARD_SLOTS,
    METRICS_TOPICS,
    METRICS_QUEUED,
    METRICS_HIST_ENTRIES,
    METRICS_HIST_BYTES,
    METRICS_HIST_EVICTED,
    METRICS_DISK_BYTES,
    METRICS_DISK_REFUSED,
    METRICS_GPOS,
    METRICS_POSITIONS,
    METRICS_POSITIONS_FORGOTTEN,
    METRICS_WS_PENDING,
    METRICS_WORKERS,
    METRICS_TOPICS_REFUSED,
    /* credentials refused, one slot per reason (metrics.c's rows, in this order): the 9 token
     * errors TOKEN_EMALFORMED..TOKEN_ECLAIMS (token.h), then these four */
    METRICS_AUTH_REFUSED,
    METRICS_AUTH_TOKEN_REQUIRED = METRICS_AUTH_REFUSED + 9,
    METRICS_AUTH_API_KEY,
    METRICS_AUTH_ADMIN_TOKEN,
    METRICS_AUTH_REVOKED, /* tokens of a revoked user (POST /users/USER/disconnect) */
    METRICS_AUTH_FORBIDDEN,
    METRICS_AUTH_EXPIRED,
    METRICS_AUTH_REFRESHED,
    METRICS_AUTH_REFRESH_REFUSED,
    METRICS_AUTH_RATE_LIMITED,
    METRICS_TLS_FAILURES,
    METRICS_CONNS_HTTP, /* HTTP publishers (broker/net/http.c): not in METRICS_CONNS_PUB */
    METRICS_ACCEPTED_HTTP,
    METRICS_RELOADS_OK, /* SIGHUP reloads (broker/net/reload.c) */
    METRICS_RELOADS_FAILED,
    METRICS_AUTH_REVOKED_USERS, /* users whose older tokens are refused now */
    /* the engine (a cluster node's: docs/cluster.md) */
    METRICS_ENGINE_UP,
    METRICS_CLUSTER_REMOTE,
    METRICS_CLUSTER_OWN,
    METRICS_CLUSTER_FAILED,
    METRICS_CLUSTER_SYNCS,
    METRICS_CLUSTER_GAPS,
    METRICS_CLUSTER_EPOCHS,
    METRICS_CLUSTER_PENDING,
    /* warn lines the log's rate limit dropped, one slot per event kind in log.h's order */
    METRICS_LOG_SUPPRESSED,
    METRICS_SLOTS = METRICS_LOG_SUPPRESSED + METRICS_LOG_EVENTS
};

/* The broker's metrics (docs/operations.md §Metrics lists them; a test keeps the two equal). */
extern const struct metrics_table metrics_table;
extern const struct metrics_hist metrics_latency;

/* ---- shards -------------------------------------------------------------------------------- */

/* One worker's values. Zero-initialise (static, calloc or = {0}); owned by its worker. */
struct metrics_shard {
    stat_t v[METRICS_SHARD_SLOTS];
};

/* Add n to slot i. Owner thread only: a relaxed load and store, no lock, no RMW. */
static inline void metrics_add(struct metrics_shard *s, enum metrics_slot i, uint64_t n)
{
    stat_add(&s->v[i], n);
}

/* Subtract n from gauge slot i (owner thread only). */
static inline void metrics_sub(struct metrics_shard *s, enum metrics_slot i, uint64_t n)
{
    stat_sub(&s->v[i], n);
}

/* Record one observation of raw units in the histogram of shape h at slot first (owner thread
 * only): a linear search over h's bounds, two slot writes. */
void metrics_observe(struct metrics_shard *s, uint32_t first, const struct metrics_hist *h,
                     uint64_t raw);

/* A transport writes the first n entries of c's queue at loop time now_ms: observe the
 * publish -> write latency of each hint among them that was published at or after since_ms
 * (the connection's start: older hints are history replayed on resume, whose age is the
 * subscriber's absence, not the broker's latency). Control messages are skipped. Call it just
 * before the write (the entries are still in cache then); it touches the shard once per call. */
void metrics_observe_written(struct metrics_shard *s, const struct conn *c, uint32_t n,
                             uint64_t since_ms, uint64_t now_ms);

/* v[0..METRICS_SLOTS) = the slot-wise sum of shards[0..n) (relaxed loads, any thread); the
 * read-time slots are set to 0 for the caller to fill in. */
void metrics_sum(const struct metrics_shard *const *shards, size_t n, uint64_t v[METRICS_SLOTS]);

/* ---- renderers (any table, v has t->nslots entries) ---------------------------------------- */

/* Append the Prometheus text exposition (format 0.0.4) of t with values v to out: # HELP and
 * # TYPE once per family, histograms as cumulative _bucket{le=...}, _sum and _count in base
 * units. Returns 0 or -ENOMEM. */
int metrics_render_prom(const struct metrics_table *t, const uint64_t *v, struct wire_buf *out);
/* Set every row with a json path as an integer at that dotted path in obj, creating nested
 * objects as needed, in table order (histograms have no json path). Returns 0 or -ENOMEM. */
int metrics_render_json(const struct metrics_table *t, const uint64_t *v, json_t *obj);
/* Append t's families as a Markdown table (name, type, unit, /stats path, help) to out: the list in
 * docs/operations.md §Metrics. Returns 0 or -ENOMEM. */
int metrics_render_md(const struct metrics_table *t, struct wire_buf *out);

#endif
