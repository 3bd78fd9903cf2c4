/* core: the broker's state for one worker and the data path of every message — decode, topic
 * lookup, sequence assignment, fan-out into per-connection queues, flush. Transports (tcp.c,
 * ws.c, admin.c) feed it bytes and write what it queues; it knows nothing of libuv or
 * libwebsockets. All state hangs off struct core: no globals. */
#ifndef NUDGE_CORE_H
#define NUDGE_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "hist.h"
#include "topic.h"
#include "wire.h"

#define NUDGE_VERSION "0.1.0"
#define CORE_WINDOWS_MAX 16

struct match;

/* A coalescing window: topics matching pattern deliver at most one hint per ms (the first at
 * once, the newest of each window at its end). */
struct core_window {
    char pattern[256];
    uint32_t ms;
};

struct core_config {
    struct wire_limits lim;
    uint32_t max_subs;  /* subscriptions per connection; default 1024 */
    uint32_t max_queue; /* queue entries per connection before hints coalesce; default 1024.
                           Hard limit max_queue + max_subs, then the connection is closed. */
    struct hist_config hist;
    struct core_window windows[CORE_WINDOWS_MAX];
    uint32_t nwindows;
};

struct core_stats {
    uint64_t conns[CONN_KINDS];    /* open now */
    uint64_t accepted[CONN_KINDS]; /* since start */
    uint64_t publishes;            /* publish messages accepted */
    uint64_t hints;                /* topic-publishes: sum of topics over accepted publishes */
    uint64_t deliveries;           /* hints queued to subscribers */
    uint64_t bytes_in, bytes_out;  /* publisher + WebSocket traffic (transports count) */
    uint64_t errors;               /* error messages sent + connections closed for faults */
    uint64_t slow_closes;          /* subscribers closed because their queue hit its hard limit */
    uint64_t coalesced;            /* hints merged into one already waiting (queue or window) */
    uint64_t replayed;             /* hints replayed from history on resume */
    uint64_t resets;               /* reset messages sent */
};

struct core {
    struct core_config cfg;
    struct topics topics;
    struct hist *hist;   /* history store (and sequence assigner) */
    struct match *match; /* wildcard subscriptions */
    struct core_stats st;
    uint64_t nsubs;        /* subscriptions, all connections */
    uint64_t next_id;      /* connection ids: id_base + next_id */
    uint64_t id_base;      /* random per start: ids never repeat across restarts */
    uint64_t stamp;        /* fan-out stamp (one delivery per publish per connection) */
    uint64_t ord;          /* publish ordinal: +1 per topic-publish (hint.ord, topic.ord) */
    uint64_t pat_live;     /* ordinal at which the newest pattern subscription went live */
    uint64_t now_ms;       /* loop time, set by the transports before calling in */
    char epoch[17];        /* 16 hex chars, random per start */
    struct conn *conns;    /* every open connection */
    struct conn *dirty;    /* connections with queued output */
    struct topic *windows; /* topics with an open coalescing window */
    struct wire_buf tmp;   /* scratch for encoding */
};

/* Fill cfg with the documented defaults. */
void core_config_default(struct core_config *cfg);
/* Parse "PATTERN=MS" into w. Returns 0 or -EINVAL. */
int core_window_parse(const char *s, struct core_window *w);
/* Initialise. seed: 24 random bytes (hash key, then epoch). Returns 0 or -ENOMEM. */
int core_init(struct core *core, const struct core_config *cfg, const uint8_t seed[24]);
/* Free topics and subscriptions. Every connection must be gone first (core_conn_gone). */
void core_close(struct core *core);

/* A transport accepted a connection: c (owned by the transport, zeroed by it) joins the core. */
void core_conn_open(struct core *core, struct conn *c, enum conn_kind kind,
                    const struct conn_ops *ops, void *io);
/* The transport's connection is gone: drop its subscriptions and queue. c is not freed. */
void core_conn_gone(struct core *core, struct conn *c);

/* Publisher: handle one frame body; reply frames are appended to out. Returns 0, or -EPROTO
 * when the connection must be closed once out is written. */
int core_pub_frame(struct core *core, struct conn *c, const uint8_t *body, size_t len,
                   struct wire_buf *out);
/* Publisher: the frame stream itself is broken (err from pub_frame_next); appends the error
 * frame to out. The caller closes after writing it. */
void core_pub_stream_error(struct core *core, struct conn *c, int err, struct wire_buf *out);

/* WebSocket: handle one complete message (binary: the frame opcode was binary). */
void core_ws_message(struct core *core, struct conn *c, const uint8_t *p, size_t len, int binary);

/* Ask every connection with queued output to write it (call once per loop turn). */
void core_flush(struct core *core);
/* Timers: close due coalescing windows and age out history, at loop time now_ms. Returns how
 * many ms until it wants to run again (10 when windows are configured, else 1000). */
uint64_t core_tick(struct core *core, uint64_t now_ms);
/* Hints waiting in queues, over all connections. */
uint64_t core_queued(const struct core *core);
/* Close every connection with code/reason (shutdown). */
void core_close_all(struct core *core, int code, const char *reason);

#endif
