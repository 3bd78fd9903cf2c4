/* conn: what the core knows of a client connection, whatever its transport. A transport embeds
 * (or allocates) a struct conn, fills in the ops table and calls the core on every message; the
 * core answers by queueing entries on the connection and asking the transport, through ops, to
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
#include "msg.h"
#include "sub.h"

struct conn;
struct sub;
struct topic;

enum conn_kind { CONN_PUB = 0, CONN_WS = 1, CONN_ADMIN = 2, CONN_KINDS };

struct conn_ops {
    /* Write as much of the queue as the socket takes now (conn_payload/conn_pop); called by the
     * core's flush pass, once per loop turn, for connections with queued output. */
    void (*flush)(struct conn *c);
    /* Close the connection with a WebSocket-style close code and reason (static storage). The
     * transport later calls core_conn_gone(). Called at most once per connection. */
    void (*close)(struct conn *c, int code, const char *reason);
};

/* One queued item: a control message of its own, or a hint covering `count` changes. */
struct qent {
    struct msg *m;  /* reference, or NULL for a hint */
    struct hint *h; /* reference, or NULL for a message */
    uint32_t count; /* hint: seqs covered, (h->seq - count, h->seq]; > 1 = coalesced ("n") */
    uint8_t own;    /* hint: the recipient caused the change */
};

struct pslot {
    const struct topic *tp; /* NULL = empty slot */
    uint64_t pos;           /* absolute queue position of tp's newest queued hint */
};

struct conn {
    const struct conn_ops *ops;
    void *io; /* the transport's state for this connection */
    enum conn_kind kind;
    enum sub_fmt fmt; /* WebSocket subscribers: JSON or msgpack */
    int hello;        /* handshake done */
    int closing;      /* close requested: no more output is queued */
    int congested;    /* set by the transport while the socket does not take all we write */
    uint64_t id;
    char name[24]; /* id as sent in welcome ("conn") and matched by publish "origin" */
    /* Outbound queue: ring of entries, power-of-two capacity, absolute positions. */
    struct qent *q;
    uint32_t qcap, qlen;
    uint64_t qhead;   /* absolute position of the oldest entry */
    uint32_t qctl;    /* control messages queued */
    struct pslot *pm; /* topic -> newest queued hint position (coalescing index) */
    uint32_t pm_cap, pm_used;
    struct sub *subs; /* this connection's subscriptions (topic.h) */
    uint32_t nsubs;
    uint64_t stamp;           /* core's fan-out stamp: one delivery per publish per connection */
    struct conn *prev, *next; /* core's list of all connections */
    struct conn *dirty_prev, *dirty_next; /* core's list of connections with output to flush */
    int dirty;
};

/* Append a control message (takes the caller's reference). Returns 0 or -ENOMEM (the reference
 * is dropped). */
int conn_push_msg(struct conn *c, struct msg *m);
/* Queue hint h (the queue takes a reference of its own) covering the count seqs up to its own.
 * With coalesce, a newer h replaces a hint of the same topic still queued, which then covers
 * every seq from the older one's first up to h's. Returns 0 when appended, 1 when merged,
 * -ENOMEM. */
int conn_push_hint(struct conn *c, struct hint *h, uint32_t count, int own, int coalesce);
/* The i-th oldest entry (still owned by the queue), or NULL. */
const struct qent *conn_peek(const struct conn *c, uint32_t i);
/* The bytes to write for the i-th entry in c->fmt: owned by the entry or, for a coalesced/own
 * variant, by tmp (valid until tmp is next used). NULL on OOM. */
const uint8_t *conn_payload(struct conn *c, uint32_t i, struct wire_buf *tmp, size_t *len);
/* Drop the oldest n entries. */
void conn_pop(struct conn *c, uint32_t n);
/* Drop every entry and free the queue's memory. */
void conn_queue_free(struct conn *c);

#endif
