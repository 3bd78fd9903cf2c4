/* hub: one worker's connections and everything per connection — subscriptions, the wildcard
 * trie, outbound queues, coalescing for congested connections, and the batched flush. A hub
 * receives released hints from the engine (as one of its sinks) and fans them out to its own
 * connections; it answers subscriptions with `subscribed`, replay or `reset` (the delivery
 * contract, docs/guarantees.md). Decoding requests and speaking to publishers is the session's
 * job (session.h); writing bytes is the transport's (through struct conn_ops).
 *
 * One hub per worker thread; a hub is only ever touched by its own thread. No libuv, no lws:
 * the time is passed in by the caller. */
#ifndef NUDGE_HUB_H
#define NUDGE_HUB_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "engine.h"
#include "metrics.h"
#include "stat.h"
#include "subs.h"
#include "wire.h"

struct match;
struct hub_job;

struct hub_config {
    uint32_t max_subs;      /* subscriptions per connection; default 1024 */
    uint64_t max_sub_bytes; /* memory of one connection's subscriptions and patterns as the hub
                               and the match trie allocate it (hub.c sub_cost); 0 = no bound;
                               default 1 MiB */
    uint64_t replay_rate;   /* bytes per second of catch-up and replay one connection's own
                               subscribe-with-resume requests may cause (a bucket of as many
                               bytes); a resume past it is refused (over_budget); 0 = no bound;
                               default 256 KiB */
    uint32_t sub_rate;      /* topics and patterns one connection may subscribe per second, in a
                               bucket of max_subs (a reconnect resubscribes all at once); past it
                               rate_limited; 0 = no bound; default 100 */
    uint32_t msg_rate;      /* messages one WebSocket connection may send per second, in a bucket of
                               2 x msg_rate; past it the message is dropped unread (rate_limited); 0 =
                               no bound; default 100 */
    uint32_t max_pattern_segments; /* segments of a pattern ("**" included); 0 = no bound;
                                      default 16 */
    uint32_t max_pattern_stars;    /* "*" segments of a pattern ("**" not counted); 0 = no
                                      bound; default 3. With both, the trie nodes one publish
                                      visits are at most sum over L <= segments of the ways to
                                      put <= stars stars in L segments: 3,212 (match.h) */
    uint32_t max_queue; /* queue entries per connection before hints coalesce; default 1024.
                           Hard limit max_queue + max_subs, then the connection is closed. */
};

/* Counters of one hub, written only by its thread, read by any (stat.h). */
struct hub_stats {
    stat_t conns[CONN_ROLES];    /* open now */
    stat_t accepted[CONN_ROLES]; /* since start */
    stat_t deliveries;           /* hints queued to subscribers */
    stat_t bytes_in, bytes_out;  /* counted by the transports (hub_count_bytes) */
    stat_t errors;               /* error messages sent + connections closed for faults */
    stat_t slow_closes;          /* subscribers closed because their queue hit its hard limit */
    stat_t coalesced;            /* hints merged into one already waiting in a queue */
    stat_t replayed;             /* hints replayed from history on resume ("replay":"all") */
    stat_t caught_up;            /* catch-up hints: one per changed topic on resume */
    stat_t resets;               /* reset messages sent */
    stat_t subs;                 /* subscriptions, all connections */
    stat_t queued;               /* entries waiting in queues, all connections */
};

typedef void hub_job_fn(void *arg, struct hub_job *j);
/* Work another thread hands to a hub's thread (hub_post), e.g. a publish the store completed
 * on another thread, whose ack belongs to a connection of this hub. Embedded by its owner. */
struct hub_job {
    struct hub_job *next;
    hub_job_fn *fn; /* run instead of the hub's job function (hub_post_fn), or NULL */
};

/* A released hint waiting for its hub's thread. */
struct hub_in {
    struct hint *h; /* a reference */
    uint32_t count;
    uint8_t skip_origin;
    uint8_t origin_len;
    char origin[24];
};

struct hub {
    struct hub_config cfg;
    struct engine *engine;
    struct table topics; /* struct htopic: topics followed exactly on this hub */
    struct match *match; /* wildcard subscriptions */
    struct hub_stats st;
    struct metrics_shard metrics; /* latency histogram and other shard slots (metrics.h) */
    struct hintbag bag;           /* hint releases of the flush pass in progress */
    uint64_t stamp;               /* fan-out stamp (one delivery per publish per connection) */
    uint64_t freed;               /* subscription bytes freed since the last malloc_trim */
    uint64_t replay_bytes;        /* bytes queued by the resume being answered (limit.h) */
    struct conn *conns;           /* every open connection */
    struct conn *dirty;           /* connections with queued output */
    struct wire_buf tmp;          /* scratch for encoding */
    /* Inbox: hints released by the engine (on any thread, under the engine lock, so in seq
     * order per topic) wait here until the hub's thread drains them (hub_drain). */
    pthread_mutex_t in_lock;
    struct hub_in *in, *in_spare;
    uint32_t in_len, in_cap, spare_cap;
    uint32_t in_lost; /* hints the inbox had no memory for; hub_drain adds them to st.errors */
    struct hub_job *jobs, *jobs_tail; /* posted work (under in_lock), run by hub_drain */
    hub_job_fn *job_fn;
    void *job_arg;
    pthread_t owner; /* the hub's thread (hub_own) */
    int owned;
    void (*wake)(void *arg); /* ask the hub's thread to drain soon (e.g. uv_async_send) */
    void *wake_arg;
    struct hub_job epoch_job; /* hub_epoch's, posted at most once at a time */
    _Atomic int epoch_posted;
};

/* A decoded subscription request for one topic or pattern. */
struct hub_sub {
    int has_id;
    uint64_t id;
    struct wire_str topic;
    int has_pos; /* resume from pos within epoch */
    uint64_t pos;
    struct wire_str epoch;
    int replay_all; /* every missed hint from history, one by one (else one per changed topic) */
};

/* Fill cfg with the documented defaults. */
void hub_config_default(struct hub_config *cfg);
/* Initialise and register as a sink of engine (which must outlive the hub). Returns 0 or
 * -ENOMEM / -ENOSPC. */
int hub_init(struct hub *hub, const struct hub_config *cfg, struct engine *engine);
/* Free subscriptions and topics. Every connection must be gone first (hub_conn_gone). */
void hub_close(struct hub *hub);

/* A transport accepted a connection: c (owned by the transport, zeroed by it) joins the hub and
 * gets a process-unique id. */
void hub_conn_open(struct hub *hub, struct conn *c, enum conn_role role, const struct conn_ops *ops,
                   void *io);
/* The transport's connection is gone: drop its subscriptions and queue. c is not freed. */
void hub_conn_gone(struct hub *hub, struct conn *c);
/* Ask c's transport to close it with code/reason (static storage); no more output is queued. */
void hub_conn_close(struct hub *hub, struct conn *c, int code, const char *reason);

/* Queue bytes p[0..len) as a control message of their own for c (copied). */
void hub_push_bytes(struct hub *hub, struct conn *c, const uint8_t *p, size_t len);
/* Queue an `error` for c in its format (id when has_id; topic may be empty). */
void hub_error(struct hub *hub, struct conn *c, int has_id, uint64_t id, struct wire_str topic,
               int code, const char *msg);
/* Publishers: reply bytes were appended to c->out; have the transport write them. */
void hub_conn_reply(struct hub *hub, struct conn *c);

/* Subscribe c to one topic or pattern: queues `subscribed` (or an error), then a replay or a
 * `reset` when a position was given; live hints follow with nothing lost or doubled. */
void hub_subscribe(struct hub *hub, struct conn *c, const struct hub_sub *req);
/* A transport received a message from subscriber c: 0 to hand it to the session, -1 when it is
 * over --msg-rate (dropped unread: an `error` rate_limited is queued, or, once c is a whole
 * bucket in debt, c is closed with LIMIT_CLOSE_RATE). */
int hub_limit_message(struct hub *hub, struct conn *c);
/* Unsubscribe c from one topic or pattern: queues `unsubscribed` or an error. */
void hub_unsubscribe(struct hub *hub, struct conn *c, int has_id, uint64_t id,
                     struct wire_str topic);

/* The calling thread is the hub's own from now on; wake(arg) will be called (from other threads,
 * with an inbox lock held: it must only signal) when hints arrive for it. wake NULL: no more
 * wakes (before the waking handle is closed). */
void hub_own(struct hub *hub, void (*wake)(void *arg), void *arg);
/* The global position c's pattern subscriptions are caught up to once what is queued for it now
 * is written: every released hint is drained into the queues first (engine lock taken). A
 * client resumes its patterns from the last one it read ("g" in pong). */
uint64_t hub_pattern_mark(struct hub *hub);
/* How many of this hub's connections follow topic[0..len) through a wildcard pattern (each
 * counted once, however many of its patterns match; one with an exact subscription too is
 * counted). One walk of the match trie, as a publish makes. The hub's thread. */
uint32_t hub_pattern_followers(struct hub *hub, const char *topic, size_t len);
/* Whether c has a pattern subscription. */
int hub_has_pattern(const struct conn *c);
/* Jobs posted to this hub are run by fn(arg, job) on the hub's thread (in hub_drain, in post
 * order). Set once, before any post. */
void hub_on_job(struct hub *hub, hub_job_fn *fn, void *arg);
/* Hand j to the hub's thread (any thread; j stays the caller's to free in fn). Wakes the hub
 * as hub_deliver does. */
void hub_post(struct hub *hub, struct hub_job *j);
/* The same, run by fn(arg given to hub_on_job, j) instead of the hub's job function: work of
 * another kind for the hub's thread (e.g. the admin endpoint's questions about its
 * connections). */
void hub_post_fn(struct hub *hub, struct hub_job *j, hub_job_fn *fn);
/* Engine sink (any thread, engine lock held): queue hint h for this hub's thread. */
void hub_deliver(void *hub, struct hint *h, uint32_t count, struct wire_str origin,
                 int skip_origin);
/* Engine sink (any thread, engine lock held): the epoch changed, so every subscriber's position
 * is void: the hub's thread closes its WebSockets with 1012, and their resume (the old epoch)
 * gets a reset "epoch". Publishers stay. */
void hub_epoch(void *hub);
/* Fan every hint in the inbox out to this hub's subscribers (the hub's thread; call before
 * hub_flush each loop turn and when woken). */
void hub_drain(struct hub *hub);
/* Ask every connection with queued output to write it (call once per loop turn). */
void hub_flush(struct hub *hub);
/* Close every connection with code/reason (shutdown). */
void hub_close_all(struct hub *hub, int code, const char *reason);
/* Drain: every publisher connection finishes (conn_ops.finish: what it sent is answered, then
 * it closes); subscribers are left open. */
void hub_finish_pubs(struct hub *hub);
/* Transports count their traffic here. */
static inline void hub_count_bytes(struct hub *hub, uint64_t in, uint64_t out)
{
    if (in) stat_add(&hub->st.bytes_in, in);
    if (out) stat_add(&hub->st.bytes_out, out);
}

#endif
