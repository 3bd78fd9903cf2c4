/* peer: how the load generator (load.c) speaks to one system under test: nudged, Redis pub/sub,
 * NATS, Mosquitto (MQTT over WebSocket) or a Socket.IO server. The generator owns the sockets,
 * epoll, timing, the open-loop schedule and every count; an adapter only turns intentions into
 * bytes (c->out) and received bytes into events (struct peer_events), so a new system is one .c
 * file and every system is measured by the same code.
 *
 * Payloads: the generator makes every publish's data a 64-byte ASCII string that starts with
 * PEER_MARK followed by the send time and the publish's index (peer_stamp); no topic name and no
 * protocol byte of any adapter contains PEER_MARK, so an adapter may hand the generator the
 * whole received message (its framing included) and the generator finds the stamp with memchr.
 * An adapter must carry the payload bytes unchanged (inside a JSON string for nudge and
 * Socket.IO: the stamp is plain ASCII and needs no escaping).
 *
 * Topics are numbered 0..T-1; each adapter names topic i in its own system's syntax
 * ("bench:i" for nudge, "bench.i" for NATS, "bench/i" for MQTT...) and maps names back to
 * numbers when a message arrives. */
#ifndef PEER_H
#define PEER_H

#include <stddef.h>
#include <stdint.h>

#define PEER_MARK '~'
#define PEER_PAYLOAD 64 /* bytes of data per publish (the stamp, padded) */

/* Growable byte buffer. */
struct pbuf {
    uint8_t *p;
    size_t len, cap;
};
/* Append n bytes; 0 or -ENOMEM. */
int pbuf_put(struct pbuf *b, const void *p, size_t n);
/* Append printf-formatted text; 0 or -ENOMEM. */
int pbuf_printf(struct pbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pbuf_free(struct pbuf *b);

/* Write the PEER_PAYLOAD-byte stamp for publish `index` sent at `ns` (CLOCK_MONOTONIC) into
 * out[PEER_PAYLOAD] (no NUL). */
void peer_stamp(uint8_t *out, uint64_t ns, uint64_t index);
/* Find a stamp in p[0..n) and read it back; 0, or -1 when there is none. */
int peer_unstamp(const uint8_t *p, size_t n, uint64_t *ns, uint64_t *index);

/* Where the system under test listens and how to talk to it. */
struct peer_target {
    char host[64];
    int sub_port;     /* subscribers connect here (a WebSocket port for nudge, MQTT, Socket.IO) */
    int pub_port;     /* publishers connect here (may equal sub_port) */
    int msgpack;      /* nudge only: the msgpack subprotocol instead of JSON */
    const char *auth; /* nudge only: a publisher key, or NULL */
};

enum peer_role { PEER_SUB, PEER_PUB };

/* One connection, as the generator sees it. The adapter appends what it wants sent to out (the
 * generator writes it, in order, whenever the socket takes it) and keeps its own state in st. */
struct peer_conn {
    enum peer_role role;
    const struct peer_target *t;
    int idx;         /* the generator's number for this connection (messages, logs) */
    struct pbuf out; /* to send; the generator consumes it from the front */
    void *st;        /* the adapter's, freed by its close() */
    void *user;      /* the generator's */
};

/* What an adapter reports while it reads. */
struct peer_events {
    /* A subscriber's subscriptions are all confirmed (or, for a system without confirmations,
     * the adapter's own round trip after them has come back); a publisher may publish. */
    void (*ready)(struct peer_conn *c);
    /* A message for topic arrived; msg[0..len) contains the stamp somewhere. `covers` is how
     * many publishes it stands for (a nudge hint coalesced with "n" covers n; 1 otherwise) and
     * `seq` the system's sequence for it (0 when the system has none). */
    void (*message)(struct peer_conn *c, uint32_t topic, const uint8_t *msg, size_t len,
                    uint64_t covers, uint64_t seq);
    /* The system said topic's history could not be replayed (nudge `reset`). */
    void (*reset)(struct peer_conn *c, uint32_t topic, uint64_t seq);
    /* A subscriber got its subscription's current position (nudge `subscribed`), for resume. */
    void (*position)(struct peer_conn *c, uint32_t topic, uint64_t seq, uint64_t epoch);
    /* n publishes were acknowledged by the system (first-in first-out), seq of the last. */
    void (*acked)(struct peer_conn *c, uint32_t n, uint64_t seq);
    void *arg;
};

struct peer_sub {
    const uint32_t *topics; /* the topic numbers to subscribe to */
    uint32_t n;
    const uint64_t *seqs; /* resume positions, one per topic (0 = none), or NULL: no resume */
    uint64_t epoch;       /* the epoch those positions are in (nudge) */
};

struct peer_ops {
    const char *name;  /* "nudge", "redis", "nats", "mqtt", "socketio" */
    int has_acks;      /* publishes are acknowledged (acked() comes) */
    int has_resume;    /* subscribe with positions is understood (peer_sub.seqs) */
    int sub_websocket; /* subscribers speak WebSocket (the browser's transport) */
    /* A TCP connection to t (sub_port or pub_port by c->role) is up: set up c->st and queue
     * the opening bytes (WebSocket upgrade, CONNECT, hello...). For a subscriber, s says what
     * to subscribe to (the adapter copies what it keeps). 0 or a negative errno. */
    int (*open)(struct peer_conn *c, const struct peer_sub *s);
    /* Bytes arrived. The adapter consumes complete messages from the front of p[0..n) and
     * returns how many bytes it used (the generator keeps the rest and calls again with more),
     * calling ev for what they mean and queuing any answers (pongs) to c->out; a negative
     * errno ends the connection (the adapter prints why to stderr). */
    long (*input)(struct peer_conn *c, const uint8_t *p, size_t n, const struct peer_events *ev);
    /* Queue one publish of data[0..len) to topics[0..n) on a publisher connection. A system
     * without multi-topic publishes queues n publishes. 0 or a negative errno. */
    int (*publish)(struct peer_conn *c, const uint32_t *topics, uint32_t n, const uint8_t *data,
                   size_t len);
    /* Free c->st (not c). */
    void (*close)(struct peer_conn *c);
};

/* The adapters, by name; NULL if unknown. */
const struct peer_ops *peer_find(const char *name);

#endif
