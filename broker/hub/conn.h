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

struct conn {
    const struct conn_ops *ops;
    void *io; /* the transport's state for this connection */
    enum conn_role role;
    enum sub_fmt fmt; /* subscribers: JSON or msgpack */
    int hello;        /* handshake done */
    int closing;      /* close requested: no more output is queued */
    int congested;    /* set by the transport while the socket does not take all we write */
    uint64_t id;
    char name[24]; /* id as sent in welcome ("conn") and matched by publish "origin" */
    uint32_t name_len;
    struct wire_buf out; /* publishers: reply frames not yet handed to the transport */
    int http;            /* publishers over HTTP (broker/net/http.c): replies in out are JSON
                            answers (protocol/hpub.h), one per request, not frames */
    int32_t code;        /* HTTP publishers: wire code of the latest answer in out, 0 = ok */
    /* Outbound queue: ring of entries, power-of-two capacity, absolute positions. */
    struct qent *q;
    uint32_t qcap, qlen;
    uint64_t qhead;      /* absolute position of the oldest entry */
    uint32_t qctl;       /* control messages queued */
    stat_t *qtotal;      /* the hub's count of queued entries (kept in step with qlen), or NULL */
    struct hintbag *bag; /* the hub's gathered hint releases (hint.h), or NULL */
    struct pslot *pm;    /* topic -> newest queued hint position (coalescing index) */
    uint32_t pm_cap, pm_used;
    struct conn_limits lim; /* abuse limits: subscription bytes, rate buckets (limit.h) */
    struct sub *subs;       /* this connection's subscriptions (topic.h) */
    uint32_t nsubs;
    uint64_t stamp;           /* hub's fan-out stamp: one delivery per publish per connection */
    struct conn *prev, *next; /* hub's list of all connections */
    struct conn *dirty_prev, *dirty_next; /* hub's list of connections with output to flush */
    int dirty;
    struct pubreq *pubs; /* publishers: publishes in flight, owned by the session (session.c) */
    uint32_t npubs;
    struct auth_grant *grant; /* subscribers: what it may read (session.c, auth.h), or NULL */
    struct auth_key *key;     /* publishers: its API key (shared, rate state atomic), NULL when keys
                                 are not required */
    uint64_t open_ms; /* wall clock (ms since the epoch) when the transport opened it, or 0 */
    char peer[64];    /* the client's "address:port" ("[v6]:port") as the transport saw it, or "" */
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

#endif
