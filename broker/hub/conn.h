/* conn: what a hub knows of a client connection, whatever its transport. A transport embeds
 * a struct conn, fills in the ops table and hands every message to its session; the session and
 * the hub answer by queueing entries on the connection and asking the transport, through ops, to
 * write or to close. Nothing here knows libuv or libwebsockets (Redis's ConnectionType idea).
 *
 * The outbound queue holds references, never copies: control messages (struct msg) and hints
 * (struct hint, whose payload is encoded once per format and shared). When the connection is
 * congested the queue coalesces: a new hint for a topic that already has a hint waiting replaces
 * it and adds to its count, so a slow subscriber's queue is bounded by its number of topics, not
 * by the publish rate. */
#ifndef NUDGE_CONN_H
#define NUDGE_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "hint.h"
#include "limit.h"
#include "msg.h"
#include "stat.h"
#include "sub.h"

struct conn;
struct sub;

/* What a connection does, not how it is carried. */
enum conn_role { CONN_PUB = 0, CONN_SUB = 1, CONN_ROLES };

struct conn_ops {
    /* Write as much of the queue (conn_payload/conn_pop) and of `out` as the socket takes now;
     * called by the hub's flush pass, once per loop turn, for connections with output. */
    void (*flush)(struct conn *c);
    /* Close the connection with a WebSocket-style close code and reason (static storage). The
     * transport later calls hub_conn_gone(). Called at most once per connection. */
    void (*close)(struct conn *c, int code, const char *reason);
    /* Publishers, at a drain (docs/operations.md §Stop): read nothing more, answer what was
     * read (acks of publishes still with the store included), then close. NULL = close. */
    void (*finish)(struct conn *c);
    /* Optional (NULL: nothing): the session refused this connection's credentials — a hello's
     * token or API key, a refresh, an HTTP request's key — for reason (a stable name: a reason
     * of nudge_auth_refused_total, auth_refusal_name) and why (static text, never the
     * credential). The transport logs it with what it knows of the peer. */
    void (*refused)(struct conn *c, const char *reason, const char *why);
    /* Optional (NULL: unknown): the client's "address:port" ("[v6]:port") into peer (cap
     * bytes, NUL-terminated; "" when unknown) and the wall clock (ms since the epoch) when the
     * transport opened it into *open_ms (0 when unknown). Asked when an operator lists a user's
     * connections — rarely — so the transport reads or keeps them, not struct conn. */
    void (*describe)(struct conn *c, char *peer, size_t cap, uint64_t *open_ms);
};

/* One queued item: a control message of its own, or a hint covering `count` changes. */
struct qent {
    struct msg *m;  /* reference, or NULL for a hint */
    struct hint *h; /* reference, or NULL for a message */
    uint32_t count; /* hint: seqs covered, (h->seq - count, h->seq]; > 1 = coalesced ("n") */
    uint8_t own;    /* hint: the recipient caused the change */
};

struct pslot {
    uint64_t thash; /* topic hash of the hint at pos (struct hint.thash) */
    uint64_t pos;   /* absolute queue position of that topic's newest queued hint */
    int used;
};

struct pubreq;
struct auth_grant;
struct auth_key;

/* A publisher's own state, embedded in its transport's struct (tcp.c, http.c) and reached through
 * conn.pub: subscribers, the many, carry none of it. */
struct conn_pub {
    struct wire_buf out; /* reply frames not yet handed to the transport */
    struct pubreq *pubs; /* publishes in flight, owned by the session (session.c) */
    uint32_t npubs;
    int32_t code;         /* HTTP publishers: wire code of the latest answer in out, 0 = ok */
    struct auth_key *key; /* its API key (shared, rate state atomic), NULL when keys are not
                             required */
    uint8_t http;         /* publishers over HTTP (broker/net/http.c): replies in out are JSON
                             answers (protocol/hpub.h), one per request, not frames */
};

/* One connection: embedded in the transport's own state (ws.c's struct wsconn, tcp.c, http.c),
 * so its size is paid once per open connection. Idle WebSocket subscribers are the many: the
 * fields are ordered for the fan-out (the first 64 bytes are what a delivery touches), kept
 * narrow, and what only publishers need is in struct conn_pub. tests/unit/test_conn.c holds the
 * size to a budget; docs/bench.md §Memory per connection has the figures. */
struct conn {
    /* fan-out: a delivery reads and writes these */
    uint64_t stamp; /* hub's fan-out stamp: one delivery per publish per connection */
    /* Outbound queue: ring of entries, power-of-two capacity, absolute positions. */
    struct qent *q;
    uint64_t qhead; /* absolute position of the oldest entry */
    uint32_t qcap, qlen;
    stat_t *qtotal;      /* the hub's count of queued entries (kept in step with qlen), or NULL */
    struct hintbag *bag; /* the hub's gathered hint releases (hint.h), or NULL */
    struct pslot *pm;    /* topic -> newest queued hint position (coalescing index) */
    uint32_t pm_cap, pm_used;
    uint8_t closing;   /* close requested: no more output is queued */
    uint8_t congested; /* set by the transport while the socket does not take all we write */
    uint8_t dirty;     /* on the hub's dirty list */
    uint8_t hello;     /* handshake done */
    uint32_t qctl;     /* control messages queued */
    struct conn *dirty_prev, *dirty_next; /* hub's list of connections with output to flush */
    const struct conn_ops *ops;
    void *io; /* the transport's state for this connection */
    enum conn_role role : 8;
    enum sub_fmt fmt : 8; /* subscribers: JSON or msgpack */
    uint8_t name_len;
    char name[17]; /* id as sent in welcome ("conn", 16 hex digits at most, NUL-terminated) and
                      matched by publish "origin" */
    uint32_t nsubs;
    struct conn *prev, *next; /* hub's list of all connections */
    struct sub *subs;         /* this connection's subscriptions (topic.h) */
    struct conn_limits lim;   /* abuse limits: subscription bytes, rate buckets (limit.h) */
    struct auth_grant *grant; /* subscribers: what it may read (session.c, auth.h), or NULL */
    struct conn_pub *pub;     /* publishers: their state (set by the transport), else NULL */
};

/* Append a control message (takes the caller's reference). Returns 0 or -ENOMEM (the reference
 * is dropped). */
int conn_push_msg(struct conn *c, struct msg *m);
/* Queue hint h (the queue takes a reference of its own) covering the count seqs up to its own.
 * With coalesce, a newer h replaces a hint of the same topic still queued, which then covers
 * every seq from the older one's first up to h's. Returns 0 when appended, 1 when merged,
 * -ENOMEM. */
int conn_push_hint(struct conn *c, struct hint *h, uint32_t count, int own, int coalesce);
/* The same, drawing the queue's reference from *budget — references to h the caller already
 * took, one atomic add for a whole fan-out instead of one per subscriber — while any are left
 * (*budget is decremented for each used). */
int conn_push_hint_budget(struct conn *c, struct hint *h, uint32_t count, int own, int coalesce,
                          uint32_t *budget);
/* The i-th oldest entry (still owned by the queue), or NULL. */
const struct qent *conn_peek(const struct conn *c, uint32_t i);
/* The bytes to write for the i-th entry in c->fmt: owned by the entry (a sealed hint's payload)
 * or, for a coalesced/own variant or an unsealed hint, by tmp (valid until tmp is next used).
 * NULL on OOM. */
const uint8_t *conn_payload(struct conn *c, uint32_t i, struct wire_buf *tmp, size_t *len);
/* Drop the oldest n entries. */
void conn_pop(struct conn *c, uint32_t n);
/* Drop every entry, the pending replies, and free the queue's memory. */
void conn_queue_free(struct conn *c);
/* An idle connection's queue: when nothing is queued, free the ring and the coalescing index
 * (the next push allocates them again). Called by transports every few seconds, not per
 * write, so a busy connection keeps its ring and an idle one costs none (docs/bench.md §Memory
 * per connection). */
void conn_queue_trim(struct conn *c);

#endif
