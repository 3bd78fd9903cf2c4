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

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "engine.h"
#include "subs.h"
#include "wire.h"

struct match;

struct hub_config {
    uint32_t max_subs;  /* subscriptions per connection; default 1024 */
    uint32_t max_queue; /* queue entries per connection before hints coalesce; default 1024.
                           Hard limit max_queue + max_subs, then the connection is closed. */
};

/* Counters of one hub, written only by its thread. */
struct hub_stats {
    uint64_t conns[CONN_ROLES];    /* open now */
    uint64_t accepted[CONN_ROLES]; /* since start */
    uint64_t deliveries;           /* hints queued to subscribers */
    uint64_t bytes_in, bytes_out;  /* counted by the transports (hub_count_bytes) */
    uint64_t errors;               /* error messages sent + connections closed for faults */
    uint64_t slow_closes;          /* subscribers closed because their queue hit its hard limit */
    uint64_t coalesced;            /* hints merged into one already waiting in a queue */
    uint64_t replayed;             /* hints replayed from history on resume */
    uint64_t resets;               /* reset messages sent */
};

struct hub {
    struct hub_config cfg;
    struct engine *engine;
    struct table topics; /* struct htopic: topics followed exactly on this hub */
    struct match *match; /* wildcard subscriptions */
    struct hub_stats st;
    uint64_t nsubs;      /* subscriptions, all connections */
    uint64_t stamp;      /* fan-out stamp (one delivery per publish per connection) */
    struct conn *conns;  /* every open connection */
    struct conn *dirty;  /* connections with queued output */
    struct wire_buf tmp; /* scratch for encoding */
};

/* A decoded subscription request for one topic or pattern. */
struct hub_sub {
    int has_id;
    uint64_t id;
    struct wire_str topic;
    int has_pos; /* resume from pos within epoch */
    uint64_t pos;
    struct wire_str epoch;
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
/* Unsubscribe c from one topic or pattern: queues `unsubscribed` or an error. */
void hub_unsubscribe(struct hub *hub, struct conn *c, int has_id, uint64_t id,
                     struct wire_str topic);

/* Engine sink: fan hint h out to this hub's subscribers. */
void hub_deliver(void *hub, struct hint *h, uint32_t count, struct wire_str origin,
                 int skip_origin);
/* Ask every connection with queued output to write it (call once per loop turn). */
void hub_flush(struct hub *hub);
/* Hints waiting in queues, over all connections. */
uint64_t hub_queued(const struct hub *hub);
/* Close every connection with code/reason (shutdown). */
void hub_close_all(struct hub *hub, int code, const char *reason);
/* Transports count their traffic here. */
static inline void hub_count_bytes(struct hub *hub, uint64_t in, uint64_t out)
{
    hub->st.bytes_in += in;
    hub->st.bytes_out += out;
}

#endif
