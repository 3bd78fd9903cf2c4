/* libnudge — publish cache-invalidation hints to a nudged broker from C.
 *
 * One nudge_client_t is one TCP connection speaking the publisher protocol (docs/protocol.md).
 * Calls block up to the client's timeout. A handle is not thread-safe: use one per thread.
 * Two styles:
 *   - nudge_publish(): send one publish and wait for its ack (simple, one round trip each);
 *   - nudge_send() + nudge_recv_ack(): pipelined; sends are buffered and flushed when the buffer
 *     fills or when nudge_recv_ack()/nudge_flush() is called; acks arrive in send order.
 * Errors are negative enum nudge_err values; nudge_last_error() has the detail. */
#ifndef NUDGE_H
#define NUDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct nudge_client nudge_client_t;

enum nudge_err {
    NUDGE_OK = 0,
    NUDGE_EINVAL = -1,   /* bad argument: address, topic, data JSON */
    NUDGE_ECONNECT = -2, /* could not resolve or connect */
    NUDGE_EIO = -3,      /* connection lost or socket error */
    NUDGE_ETIMEOUT = -4, /* no answer within the timeout */
    NUDGE_EPROTO = -5,   /* broker sent something undecodable or unexpected */
    NUDGE_EBROKER = -6,  /* broker answered with an error: nudge_last_code()/nudge_last_error() */
    NUDGE_ENOMEM = -7,
    NUDGE_ETLS = -8, /* TLS: handshake failed, certificate or name not trusted, bad cafile */
};

struct nudge_opts {
    const char *client_name; /* sent in hello; NULL = "libnudge" */
    int timeout_ms;          /* per blocking call; <= 0 = 5000 */
    const char *api_key;     /* sent in hello as "auth" when the broker wants keys; NULL = none */
    /* TLS (a broker started with --tls-cert): the broker's certificate is always verified, and
     * its name: server_name if set, else the host of the address (an IP address must be in the
     * certificate's IP SANs). cafile: PEM file of trusted CAs (or the self-signed certificate);
     * NULL = the system's store. Strings are only read during nudge_connect. */
    int tls;
    const char *cafile;
    const char *server_name;
};

/* One publish. data_json is a JSON value (e.g. "{\"by\":42}") converted to msgpack, or NULL;
 * origin is the WebSocket connection id that caused the change, or NULL: that connection's hint
 * is marked "own", or, with skip_origin, not sent to it at all. Pointers are only read during
 * the call. */
struct nudge_pub {
    const char *const *topics;
    size_t ntopics;
    const char *data_json;
    const char *origin;
    int skip_origin;
};

/* Connect to addr ("host:port"; NULL = "127.0.0.1:7400") and do the hello/welcome handshake.
 * opts may be NULL. On success *out is a new client owned by the caller (free with
 * nudge_close). */
int nudge_connect(const char *addr, const struct nudge_opts *opts, nudge_client_t **out);
/* Same; on failure (*out = NULL) also writes the detail ("cannot connect to 127.0.0.1:7400:
 * Connection refused") into errbuf[0..errcap), NUL-terminated, truncated. errbuf may be NULL.
 * nudge_connect() has no client to report on, so this is how callers say why it failed. */
int nudge_connect_ex(const char *addr, const struct nudge_opts *opts, nudge_client_t **out,
                     char *errbuf, size_t errcap);
/* Close the connection and free the client. NULL is fine. */
void nudge_close(nudge_client_t *c);

/* The broker's epoch from welcome (16 hex chars). Owned by the client. */
const char *nudge_epoch(const nudge_client_t *c);

/* Publish to topics[0..n) with optional data (JSON text or NULL) and wait for the ack.
 * seqs_out (room for n, may be NULL) receives the sequence assigned to each topic. */
int nudge_publish(nudge_client_t *c, const char *const *topics, size_t n, const char *data_json,
                  uint64_t *seqs_out);
/* Same with every option. */
int nudge_publish_ex(nudge_client_t *c, const struct nudge_pub *p, uint64_t *seqs_out);

/* Pipelined: queue one publish without waiting. *id_out (may be NULL) gets its request id. */
int nudge_send(nudge_client_t *c, const struct nudge_pub *p, uint64_t *id_out);
/* Write everything queued. */
int nudge_flush(nudge_client_t *c);
/* Flush, then wait for the next ack. *id_out gets its request id, seqs_out[0..*n_out) its seqs
 * (at most cap are stored). A broker error for a request returns NUDGE_EBROKER with *id_out set. */
int nudge_recv_ack(nudge_client_t *c, uint64_t *id_out, uint64_t *seqs_out, size_t cap,
                   size_t *n_out);

/* Round trip: ping, wait for pong. */
int nudge_ping(nudge_client_t *c);
/* Change the timeout of c's later blocking calls (<= 0: 5000 ms). */
void nudge_set_timeout(nudge_client_t *c, int timeout_ms);

/* Detail of the last error on c ("bad_topic: topic 2 contains a space"); owned by c. */
const char *nudge_last_error(const nudge_client_t *c);
/* Wire error code (docs/protocol.md §Errors) of the last NUDGE_EBROKER, else 0. */
int nudge_last_code(const nudge_client_t *c);
/* Static text for an enum nudge_err value. */
const char *nudge_strerror(int err);
/* The library's version ("0.1.0"), the same nudged and the nudge command print; static. */
const char *nudge_version(void);

/* ---- Fail-open publishing (outbox.c; docs/clients.md §Fail open) ---------------------------
 * For app backends: a publish must never fail or stall the app's request because the broker is
 * down, stalled or restarting. A nudge_outbox_t holds a connection it makes and remakes itself
 * (backoff 100 ms .. 5 s with jitter) and a bounded buffer of publishes not yet acknowledged:
 * while the broker is unreachable they wait there (the oldest dropped past buffer_max, counted)
 * and go out, in order, when a later call finds the broker back. One log line when an outage
 * starts and one when it ends, never one per publish. Blocking and single-threaded like the
 * rest of libnudge: the buffer is flushed by the next nudge_outbox_publish() or
 * nudge_outbox_flush() call. Not thread-safe: one per thread, or a lock around it. */
typedef struct nudge_outbox nudge_outbox_t;

struct nudge_outbox_opts {
    struct nudge_opts conn; /* as for nudge_connect; conn.timeout_ms is the connect timeout
                               (default 1000 ms) */
    int ack_timeout_ms;     /* how long a publish waits for its ack; <= 0: 2000 */
    size_t buffer_max;      /* publishes held while unacknowledged; 0: 10000 */
    /* One line per outage start and end, and per refusal (at most one a second); NULL: written
     * to stderr as "nudge: ...". line is only valid during the call. */
    void (*log)(void *arg, const char *line);
    void *log_arg;
};

struct nudge_outbox_stats {
    uint64_t sent;       /* publishes written to a broker (a resend after an outage counts again) */
    uint64_t acked;      /* publishes the broker acknowledged */
    uint64_t buffered;   /* now waiting: not yet acknowledged */
    uint64_t dropped;    /* pushed out of a full buffer: never published */
    uint64_t refused;    /* answered with an error by the broker (forbidden, bad topic, ...) */
    uint64_t reconnects; /* connections made after the first */
    uint64_t outages;    /* times the broker became unreachable */
};

/* A new outbox for addr (NULL = "127.0.0.1:7400"); connects at once but succeeds whether or not
 * the broker answers. Strings in opts are copied. *out is owned by the caller (free with
 * nudge_outbox_close). Returns 0, NUDGE_EINVAL (bad address or arguments) or NUDGE_ENOMEM. */
int nudge_outbox_new(const char *addr, const struct nudge_outbox_opts *opts, nudge_outbox_t **out);
/* Publish p (copied). Sends what the buffer holds first, then p, and waits up to the ack timeout
 * for p's ack: seqs_out[0..p->ntopics) (may be NULL) get its seqs. When the broker is
 * unreachable or too slow, or refused p, it returns 0 all the same with seqs_out all 0 (a seq is
 * never 0): p waits in the buffer (or, refused, is dropped, logged and counted). Only a bad
 * publish (no topics, a bad topic or data JSON: NUDGE_EINVAL) or NUDGE_ENOMEM is an error. */
int nudge_outbox_publish(nudge_outbox_t *o, const struct nudge_pub *p, uint64_t *seqs_out);
/* Try to send what the buffer holds now (waits up to the ack timeout). Returns 0, or
 * NUDGE_ECONNECT / NUDGE_ETIMEOUT / NUDGE_EIO when publishes are still waiting. */
int nudge_outbox_flush(nudge_outbox_t *o);
/* Counters now. */
void nudge_outbox_stats(const nudge_outbox_t *o, struct nudge_outbox_stats *out);
/* Flush for up to the ack timeout, then close and free. NULL is fine. */
void nudge_outbox_close(nudge_outbox_t *o);

#ifdef __cplusplus
}
#endif
#endif
