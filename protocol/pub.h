/* pub: the publisher protocol (TCP). A stream of frames, each a 4-byte big-endian body length
 * followed by that many bytes holding exactly one msgpack map with a "type" key. Encoders append
 * whole frames (prefix included) to a wire_buf; the decoder takes one frame body. Both
 * directions are here so the broker, the C client and the fuzzers share one codec.
 * Normative text: docs/protocol.md §Publisher protocol. */
#ifndef NUDGE_PUB_H
#define NUDGE_PUB_H

#include "wire.h"

#define PUB_PREFIX 4 /* bytes of the length prefix */

enum pub_type {
    PUB_HELLO = 1, /* client -> broker: {"type":"hello","v":1,"client"?:str,"auth"?:str} */
    PUB_WELCOME,   /* broker -> client: {"type":"welcome","v":1,"epoch":str,"server":str,
                                         "max_frame":int,"max_topics":int,"max_data":int,
                                         "max_topic"?:int} */
    PUB_PUBLISH,   /* client -> broker: {"type":"pub","id":int,"topics":[str..],"data"?:any,
                                         "origin"?:str,"skip_origin"?:bool} */
    PUB_ACK,       /* broker -> client: {"type":"ack","id":int,"seqs":[int..]} */
    PUB_ERROR,     /* broker -> client: {"type":"error","id"?:int,"code":int,"msg":str} */
    PUB_PING,      /* either way:       {"type":"ping","id":int} */
    PUB_PONG,      /* either way:       {"type":"pong","id":int} */
};

/* A decoded message. Every wire_str and the data pointer point into the frame body passed to
 * pub_decode or into storage owned by the message: valid until pub_msg_clear. Fields not
 * carried by the message's type are zero. */
struct pub_msg {
    enum pub_type type;
    uint64_t id;            /* publish, ack, ping, pong; error: 0 when absent */
    uint32_t version;       /* hello, welcome */
    struct wire_str client; /* hello: optional client name */
    const uint8_t *auth;    /* hello: raw msgpack of "auth" (reserved for credentials), or NULL */
    size_t auth_len;
    uint32_t ntopics; /* publish */
    struct wire_str topics[WIRE_TOPICS_MAX];
    const uint8_t *data; /* publish: raw msgpack of "data" (checked by wire_data_check) or NULL */
    size_t data_len;
    struct wire_str origin; /* publish: optional origin connection id (len 0 = absent) */
    int skip_origin;        /* publish: "skip_origin":true — the origin gets no hint at all */
    uint32_t nseqs;         /* ack */
    uint64_t seqs[WIRE_TOPICS_MAX];
    int32_t code;                             /* error */
    struct wire_str msg;                      /* error */
    struct wire_str epoch, server;            /* welcome */
    uint32_t max_frame, max_topics, max_data; /* welcome */
    uint32_t max_topic; /* welcome: longest topic name in bytes; 0 = not announced */
    void *priv;         /* decoder-owned storage, released by pub_msg_clear */
};

/* Find the next complete frame at the start of p[0..len). On WIRE_OK, *body and *body_len give the
 * frame body (pointing into p) and *consumed the bytes to drop (prefix + body). WIRE_EAGAIN when
 * more bytes are needed; WIRE_ETOOBIG when the declared length exceeds max_frame;
 * WIRE_EMALFORMED for a zero length. Never reads past len. */
int pub_frame_next(const uint8_t *p, size_t len, uint32_t max_frame, const uint8_t **body,
                   uint32_t *body_len, size_t *consumed);

/* Decode one frame body into *out (which it overwrites). Validates structure, field types and
 * sizes against lim: topic count (WIRE_ETOOMANY), data via wire_data_check (WIRE_EDATA).
 * Topic names are NOT validated here (the caller uses wire_topic_check and reports which topic
 * is bad). On error *out holds nothing to clear and every field is zero except id, which keeps
 * the request's "id" when it could be read (so the error reply can name the request). Returns 0
 * or a negative wire_err. */
int pub_decode(const uint8_t *body, size_t len, const struct wire_limits *lim, struct pub_msg *out);
/* Release what pub_decode kept. Safe on a zeroed or already-cleared message. */
void pub_msg_clear(struct pub_msg *m);

/* Encoders: append one complete frame to out. Strings are copied. Return 0 or WIRE_ENOMEM. */
int pub_encode_hello(struct wire_buf *out, uint32_t version, const char *client);
/* hello with an API key as "auth" (key NULL: none, as pub_encode_hello). */
int pub_encode_hello_key(struct wire_buf *out, uint32_t version, const char *client,
                         const char *key);
int pub_encode_welcome(struct wire_buf *out, uint32_t version, const char *epoch,
                       const char *server, const struct wire_limits *lim);
/* data: raw msgpack value or NULL; origin: NULL for none. */
int pub_encode_publish(struct wire_buf *out, uint64_t id, const struct wire_str *topics,
                       uint32_t ntopics, const uint8_t *data, size_t data_len, const char *origin);
/* pub_encode_publish plus "skip_origin":true when skip_origin is nonzero. */
int pub_encode_publish_ex(struct wire_buf *out, uint64_t id, const struct wire_str *topics,
                          uint32_t ntopics, const uint8_t *data, size_t data_len,
                          const char *origin, int skip_origin);
int pub_encode_ack(struct wire_buf *out, uint64_t id, const uint64_t *seqs, uint32_t nseqs);
/* id 0 = no "id" key (error not tied to a request). */
int pub_encode_error(struct wire_buf *out, uint64_t id, int32_t code, const char *msg);
int pub_encode_ping(struct wire_buf *out, uint64_t id);
int pub_encode_pong(struct wire_buf *out, uint64_t id);
/* Encode any decoded message m (as pub_decode left it) back into one frame appended to out: the
 * inverse of pub_decode, for tools that convert or forward messages and for round-trip checks.
 * hello's reserved "auth" is not carried. Returns 0, WIRE_ETYPE or WIRE_ENOMEM. */
int pub_encode_msg(struct wire_buf *out, const struct pub_msg *m);

#endif
