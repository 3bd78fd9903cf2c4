/* redis: the link from a cluster node to Redis (docs/cluster.md): struct cluster_link over
 * hiredis and its libuv adapter, on a thread and loop of its own, so that no worker's loop ever
 * waits on Redis. Two connections: one sends the publish script (pipelined, never waiting for a
 * reply before the next) and the reads of a synchronisation; the other is subscribed to the
 * cluster's channel and hands every message to the cluster store.
 *
 * When either connection is lost, or a publish goes unanswered for --redis-timeout, both are
 * closed, the store is told (its publishes on their way fail: the publishers retry), and the
 * link reconnects with a backoff of 100 ms doubling to 2 s. Each connection subscribes first,
 * then reads every record (a synchronisation), so nothing published while it was away is
 * missed: the store sends catch-up hints for what moved. */
#ifndef NUDGE_REDIS_H
#define NUDGE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include "cluster.h"
#include "relay.h"

struct redis_config {
    char host[256];
    uint16_t port;
    char prefix[RELAY_PREFIX_MAX + 1]; /* --redis-prefix; default "nudge" */
    uint32_t timeout_ms;               /* --redis-timeout; default 2000 */
    uint32_t per_topic;                /* stream entries kept per topic (--hist-per-topic) */
    uint32_t hist_age_s;               /* the stream's TTL (--hist-age) */
    uint32_t horizon_s;                /* the record's TTL (--horizon) */
};

/* Parse "redis://HOST:PORT" (PORT defaults to 6379; HOST may be [v6]) into cfg. Returns 0 or
 * -EINVAL. */
int redis_parse_url(const char *url, struct redis_config *cfg);
/* Whether prefix is usable: 1..RELAY_PREFIX_MAX of [A-Za-z0-9_.-] (it is part of a SCAN
 * pattern). */
int redis_prefix_ok(const char *prefix);

struct redis;
/* A link (not started), and the hooks store_cluster_new takes (*link). Owned by the caller
 * (redis_free). NULL on OOM. */
struct redis *redis_new(const struct redis_config *cfg, struct cluster_link *link);
/* Start the link's thread feeding store s (a cluster store made with this link's hooks): it
 * connects and synchronises, then keeps doing so. Returns 0 or a negative errno. */
int redis_start(struct redis *r, struct store *s);
/* Stop the thread (bounded: connections are closed, not drained) and join it: the store hears
 * nothing more after this returns. Then free. Either is a no-op on NULL. */
void redis_stop(struct redis *r);
void redis_free(struct redis *r);
/* Publishes sent to Redis and not answered yet (any thread): more than one at a time is the
 * pipelining. */
uint32_t redis_inflight(const struct redis *r);
/* Whether both connections are up and subscribed (any thread). */
int redis_up(const struct redis *r);

#endif
