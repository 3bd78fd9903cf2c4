/* engine: what is global per topic, one per process — the topic table, each topic's position
 * and history (through a store), coalescing windows, the epoch, connection ids. Publishing takes
 * decoded values (topic names, data, origin) and completes through a callback that may run
 * later, so a store that must wait fits without changing callers. Released hints go to sinks,
 * one per hub, already sealed (encoded once for the whole process).
 *
 * The engine knows no transport, no wire format beyond hint payloads, no event loop: time is
 * passed in. It is not internally locked: with several worker threads its caller serialises
 * calls (one lock around engine calls; sinks are called with it held, so every hub receives a
 * topic's hints in seq order — the property exact resume relies on, docs/architecture.md). */
#ifndef NUDGE_ENGINE_H
#define NUDGE_ENGINE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hint.h"
#include "rate.h"
#include "store.h"
#include "table.h"
#include "version.h"
#include "wire.h"

#define ENGINE_WINDOWS_MAX 16
#define ENGINE_SINKS_MAX 64

/* A coalescing window: topics matching pattern deliver at most one hint per ms (the first at
 * once, the newest of each window at its end). */
struct engine_window {
    char pattern[256];
    uint32_t ms;
};

struct engine_config {
    struct wire_limits lim;
    struct store_config hist;
    struct engine_window windows[ENGINE_WINDOWS_MAX];
    uint32_t nwindows;
    uint32_t max_topics; /* known topics (published, subscribed or retained); default 1,000,000 */
};

struct engine_stats {
    uint64_t publishes; /* publish requests completed */
    uint64_t hints;     /* topic-publishes: sum of topics over completed publishes */
    uint64_t coalesced; /* publishes merged into one a window already held */
    uint64_t refused;   /* publishes and subscriptions refused for max_topics */
};

/* Where released hints go (one per hub). deliver gets a reference it must take to keep h. */
struct engine_sink {
    void (*deliver)(void *arg, struct hint *h, uint32_t count, struct wire_str origin,
                    int skip_origin);
    /* The epoch changed (a cluster whose Redis lost its data): every position the sink's
     * subscribers hold is void. Engine lock held; may be NULL. */
    void (*epoch)(void *arg);
    void *arg;
};

/* One known topic: held while subscribed, while a publish to it is in flight, while a window is
 * open, and while the store retains hints of it; freed when none of these is true. */
struct etopic {
    struct tnode node;
    struct store_topic *st;
    uint32_t holds;
    uint64_t
        ordinal; /* of its last publish (struct engine.ordinal); 0 = none since it was created */
    uint32_t window_ms;
    uint32_t win_count;      /* publishes waiting in the window */
    uint64_t win_until;      /* window open until this time (ms, caller's clock) */
    struct hint *win_hint;   /* newest waiting hint (a reference), or NULL */
    uint64_t win_first_gpos; /* global position of the oldest publish the window holds */
    char win_origin[24];     /* origin of the held publish while it is the only one */
    uint8_t win_origin_len;
    uint8_t win_skip_origin;
    uint8_t win_listed;
    uint8_t dead; /* freed once the store's callbacks return */
    struct etopic *win_next;
    struct rate_node rate;        /* its publish rate (engine_top) */
    _Atomic uint32_t subscribers; /* exact subscriptions to it over every hub, counted by the
                                     hubs (atomic: a hub drops one without the lock) */
    char name[];
};

struct engine_pub;
typedef void engine_pub_fn(void *arg, struct engine_pub *p);

/* One publish request, owned by the caller until its callback ran. */
struct engine_pub {
    const struct wire_str *topics; /* ntopics names, checked with wire_topic_check */
    uint32_t ntopics;
    const uint8_t *data; /* msgpack value or NULL */
    uint32_t data_len;
    struct wire_str origin; /* connection id of the publish's cause, or empty */
    int skip_origin;
    uint64_t seqs[WIRE_TOPICS_MAX]; /* out: the seq given to each topic */
    int err;                        /* out: 0, or -ENOMEM when a topic failed (those before it
                                       were published) */
    /* engine's */
    struct engine *e;
    engine_pub_fn *done;
    void *arg;
    uint64_t now_ms;
    uint32_t pending;
    struct engine__part {
        struct engine_pub *p;
        struct etopic *t;
    } parts[WIRE_TOPICS_MAX];
};

struct engine {
    pthread_mutex_t lock; /* held by the caller around every call below (engine_lock) */
    struct engine_config cfg;
    struct table topics;
    struct store *store;
    struct engine_sink sinks[ENGINE_SINKS_MAX];
    uint32_t nsinks;
    struct etopic *windows; /* topics with an open window */
    struct wire_buf tmp;    /* scratch for sealing hints */
    struct engine_stats st;
    _Atomic uint64_t next_id; /* connection ids */
    uint64_t id_base;
    uint64_t ordinal;          /* hints stamped so far: the process-wide order of publishes */
    uint64_t pat_live;         /* ordinal at which the newest pattern subscription went live */
    struct rate_top rates;     /* the busiest topics (engine_top) */
    pthread_mutex_t wake_lock; /* guards wake/wake_arg against the store's thread */
    void (*wake)(void *arg);
    void *wake_arg;
};

/* Fill cfg with the documented defaults. */
void engine_config_default(struct engine_config *cfg);
/* Parse "PATTERN=MS" into w. Returns 0 or -EINVAL. */
int engine_window_parse(const char *s, struct engine_window *w);
/* Initialise with the in-memory store. seed: 32 random bytes (hash key, epoch, id base).
 * Returns 0 or -ENOMEM. */
int engine_init(struct engine *e, const struct engine_config *cfg, const uint8_t seed[32]);
/* Initialise with the store persisted in d->dir (store_disk_open; the epoch is the
 * directory's). Returns 0 or the store's negative errno (-EBUSY: another broker holds it). */
int engine_init_disk(struct engine *e, const struct engine_config *cfg, const uint8_t seed[32],
                     const struct store_disk *d);
struct cluster_link;
/* Initialise as a node of a cluster (cluster.h: positions numbered by Redis through link,
 * copied). The epoch is known once the store's first synchronisation was applied
 * (cluster_ready(e->store), run by engine_poll): wait for it before serving clients. Returns 0
 * or -ENOMEM. */
int engine_init_cluster(struct engine *e, const struct engine_config *cfg, const uint8_t seed[32],
                        const struct cluster_link *link);
/* The store's wake hook (store.h): called from its thread when engine_poll has work. Set before
 * the first publish; NULL to stop (then no call reaches a closed handle once this returns). */
void engine_on_wake(struct engine *e, void (*wake)(void *arg), void *arg);
/* Run the store's finished appends: their publishes are released and completed (lock held);
 * with wait, first wait for every append so far (shutdown, once no thread publishes). */
void engine_poll(struct engine *e, int wait);
/* Free topics, windows and the store. Every hold must be released first. */
void engine_close(struct engine *e);
/* Serialise engine calls between worker threads: every function below (but engine_epoch,
 * engine_hash and engine_conn_id) must be called with the lock held. Sinks run with it held. */
static inline void engine_lock(struct engine *e)
{
    pthread_mutex_lock(&e->lock);
}
static inline void engine_unlock(struct engine *e)
{
    pthread_mutex_unlock(&e->lock);
}
/* Add a sink (a hub). Returns 0 or -ENOSPC. */
int engine_add_sink(struct engine *e, const struct engine_sink *s);

/* The epoch of every seq now (the store's; any thread). */
static inline const char *engine_epoch(const struct engine *e)
{
    return store_epoch(e->store);
}
/* Whether this engine's positions may lag others' (a cluster node learns the hints from a
 * channel: a client coming from another node may know a seq this node has not seen yet). */
static inline int engine_lags(const struct engine *e)
{
    return e->store->ops->adopt != NULL;
}
/* Hash of a topic name under the process key (the key of every topic table and hint). */
static inline uint64_t engine_hash(const struct engine *e, const char *name, size_t len)
{
    return table_hash(&e->topics, name, len);
}
/* A new connection id, unique in this process (any thread). */
uint64_t engine_conn_id(struct engine *e);

/* Publish p (fields above set by the caller) at time now_ms (caller's monotonic clock, for
 * windows). Returns 0 when accepted: done(arg, p) runs once every topic is stored — before
 * engine_publish returns with the memory store, later with others; p must stay valid until
 * then. Returns without calling done: -EINVAL (no topics, or topic p->seqs[0] invalid, index in
 * p->seqs[0]), -ENOSPC (max_topics would be passed: nothing published). */
int engine_publish(struct engine *e, struct engine_pub *p, uint64_t now_ms, engine_pub_fn *done,
                   void *arg);

/* Hold topic name (hash: engine_hash), creating it when unknown, for a subscription. Returns 0
 * with *out set, -ENOSPC (max_topics) or -ENOMEM. Release with engine_release. */
int engine_hold(struct engine *e, const char *name, size_t len, uint64_t hash, struct etopic **out);
void engine_release(struct engine *e, struct etopic *t);
/* The topic's current position (seqs held by a window included). */
uint64_t engine_seq(const struct engine *e, const struct etopic *t);
/* The topic's position less what a coalescing window still holds: the newest seq every
 * follower has been released. */
uint64_t engine_released(const struct engine *e, const struct etopic *t);
/* A pattern subscription goes live now: *live = the current ordinal (hints with a larger one
 * are its), and windows holding older publishes release them before holding newer ones, so a
 * window's hint stands for publishes all before or all after any pattern. */
void engine_pattern_live(struct engine *e, uint64_t *live);
/* The seq t's position started from when it was last created (store_ops.base): a resume
 * position below it is older than what the broker remembers of t (the horizon). */
uint64_t engine_base(const struct engine *e, const struct etopic *t);
/* A hint standing for t's newest change (seq = engine_seq): the retained one, with its data, or
 * a new sealed hint without data when history no longer holds it. One reference owned by the
 * caller. NULL on OOM, or when t has no change since its base. */
struct hint *engine_newest(struct engine *e, struct etopic *t);
/* The global position of t's newest publish (0: none remembered). */
uint64_t engine_last_gpos(const struct engine *e, const struct etopic *t);
/* The global position every hub has been released everything up to: the store's completed
 * position, less publishes a coalescing window still holds. A connection given all its hub
 * received up to now has everything up to it (wildcard resume positions). */
uint64_t engine_safe_gpos(const struct engine *e);
/* Whether a wildcard resume from global position g can be answered by listing changes: g is
 * neither ahead of the store nor older than a forgotten topic's last change. 0 when it can,
 * else the reset reason ("ahead", "horizon"). */
const char *engine_gpos_check(const struct engine *e, uint64_t g);
/* Call fn for each topic changed after global position `after` (store_ops.changed). */
void engine_changed(struct engine *e, uint64_t after,
                    void (*fn)(void *arg, const struct store_change *c), void *arg);
/* A hint for change c: its retained hint, or a new sealed one without data. One reference
 * owned by the caller; NULL on OOM. */
struct hint *engine_change_hint(struct engine *e, const struct store_change *c);
/* Whether every seq after `after` is retained for replay (store_complete). */
int engine_complete(const struct engine *e, const struct etopic *t, uint64_t after);
/* Call fn for each retained hint with after < seq <= upto, oldest first (references stay the
 * store's). */
void engine_replay(struct engine *e, const struct etopic *t, uint64_t after, uint64_t upto,
                   void (*fn)(void *arg, struct hint *h), void *arg);

/* The topic named name (any thread's: lock held), or NULL when the engine does not know it now
 * (no subscriber, no history, nothing in flight: its position may still be remembered). */
struct etopic *engine_find(struct engine *e, const char *name, size_t len);
/* The at most max busiest topics by publish rate, busiest first, into out (the engine's topics,
 * valid while the lock is held); returns how many. O(RATE_TOP_MAX log RATE_TOP_MAX). */
uint32_t engine_top(struct engine *e, struct etopic **out, uint32_t max);
/* t's publishes per second at now_ms (the publishers' clock: uv_now), decayed over
 * RATE_WINDOW_S (rate.h). */
double engine_rate(const struct engine *e, const struct etopic *t, uint64_t now_ms);

/* What history holds of a topic now (engine_history); zeros when nothing. */
struct engine_hist {
    uint32_t hints;     /* retained hints */
    uint64_t first_seq; /* the oldest one's seq */
    uint64_t last_seq;  /* the newest one's */
    uint64_t bytes;     /* memory they account for (hint_size, as --hist-bytes counts) */
    uint64_t oldest_ms; /* the oldest one's wall-clock time (ms since the epoch) */
};
/* Fill h for t: O(hints retained), at most --hist-per-topic. */
void engine_history(struct engine *e, const struct etopic *t, struct engine_hist *h);

/* Close due windows (at now_ms, caller's clock) and age out history (wall clock). Returns the
 * ms until it wants to run again (10 when windows are configured, else 1000). */
uint64_t engine_tick(struct engine *e, uint64_t now_ms);

#endif
