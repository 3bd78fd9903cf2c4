/* conn: what the core knows of a client connection, whatever its transport. A transport embeds
 * (or allocates) a struct conn, fills in the ops table and calls the core on every message; the
 * core answers by queueing msgs on the connection and asking the transport, through ops, to
 * write or to close. Nothing here knows libuv or libwebsockets (Redis's ConnectionType idea). */
#ifndef NUDGE_CONN_H
#define NUDGE_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "sub.h"

struct conn;
struct sub;

enum conn_kind { CONN_PUB = 0, CONN_WS = 1, CONN_ADMIN = 2, CONN_KINDS };

struct conn_ops {
    /* Write as much of the queue as the socket takes now (conn_peek/conn_pop); called by the
     * core's flush pass, once per loop turn, for connections with queued output. */
    void (*flush)(struct conn *c);
    /* Close the connection with a WebSocket-style close code and reason (static storage). The
     * transport later calls core_conn_gone(). Called at most once per connection. */
    void (*close)(struct conn *c, int code, const char *reason);
};

struct conn {
    const struct conn_ops *ops;
    void *io; /* the transport's state for this connection */
    enum conn_kind kind;
    enum sub_fmt fmt;  /* WebSocket subscribers: JSON or msgpack */
    int hello;         /* handshake done */
    int closing;       /* close requested: no more output is queued */
    uint64_t id;
    char name[24];     /* id as sent in welcome ("conn") and matched by publish "origin" */
    /* Outbound queue: ring of msg references, grown by doubling up to the core's max_queue. */
    struct msg **q;
    uint32_t qhead, qlen, qcap;
    size_t qbytes;
    struct sub *subs; /* this connection's subscriptions (topic.h) */
    uint32_t nsubs;
    struct conn *prev, *next;   /* core's list of all connections */
    struct conn *dirty_prev, *dirty_next; /* core's list of connections with output to flush */
    int dirty;
};

/* Append a reference to m (the queue takes the caller's reference). Returns 0, or -ENOBUFS
 * when the queue already holds max messages (the reference is dropped), -ENOMEM on OOM. */
int conn_push(struct conn *c, struct msg *m, uint32_t max);
/* The oldest queued message (still owned by the queue), or NULL. */
struct msg *conn_peek(const struct conn *c, uint32_t i);
/* Drop the oldest n messages from the queue. */
void conn_pop(struct conn *c, uint32_t n);
/* Drop every queued message and free the ring. */
void conn_queue_free(struct conn *c);

#endif
