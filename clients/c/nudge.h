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

/* Detail of the last error on c ("bad_topic: topic 2 contains a space"); owned by c. */
const char *nudge_last_error(const nudge_client_t *c);
/* Wire error code (docs/protocol.md §Errors) of the last NUDGE_EBROKER, else 0. */
int nudge_last_code(const nudge_client_t *c);
/* Static text for an enum nudge_err value. */
const char *nudge_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
