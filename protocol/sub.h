/* sub: the subscriber protocol (WebSocket). One message per WebSocket message: a JSON object in
 * a text frame (default) or the same object as a msgpack map in a binary frame when the client
 * negotiated the "nudge.msgpack.v1" subprotocol ("nudge.json.v1" or none = JSON). Every message
 * has a "type" key. This module encodes and decodes message payloads only; WebSocket framing is
 * the transport's job. Normative text: docs/protocol.md §Subscriber protocol. */
#ifndef NUDGE_SUB_H
#define NUDGE_SUB_H

#include "wire.h"

#define SUB_PROTO_JSON "nudge.json.v1"
#define SUB_PROTO_MSGPACK "nudge.msgpack.v1"

enum sub_fmt { SUB_JSON = 0, SUB_MSGPACK = 1 };

enum sub_type {
    SUB_HELLO = 1,    /* c->b {"type":"hello","v":1,"client"?:str,"token"?:str} */
    SUB_WELCOME,      /* b->c {"type":"welcome","v":1,"conn":str,"epoch":str,"server":str} */
    SUB_SUBSCRIBE,    /* c->b {"type":"sub","id":int,"topics":[str..],
                               "resume"?:{"epoch":str,"seqs":{topic:int,..},
                                          "replay"?:"changes"|"all"}} */
    SUB_SUBSCRIBED,   /* b->c {"type":"subscribed","id":int,"topic":str,"seq":int} one per topic */
    SUB_UNSUBSCRIBE,  /* c->b {"type":"unsub","id":int,"topics":[str..]} */
    SUB_UNSUBSCRIBED, /* b->c {"type":"unsubscribed","id":int,"topic":str} one per topic */
    SUB_HINT,      /* b->c {"type":"hint","topic":str,"seq":int,"data"?:any,"n"?:int,"own"?:true} */
    SUB_RESET,     /* b->c {"type":"reset","topic":str,"seq":int,"reason":str} */
    SUB_ERROR,     /* b->c {"type":"error","id"?:int,"topic"?:str,"code":int,"msg":str} */
    SUB_PING,      /* either way {"type":"ping","id"?:int} */
    SUB_PONG,      /* either way {"type":"pong","id"?:int,"g"?:int} (g: broker -> client, the
                      global position its patterns are caught up to) */
    SUB_REFRESH,   /* c->b {"type":"refresh","id"?:int,"token":str} a fresh token, same sub */
    SUB_REFRESHED, /* b->c {"type":"refreshed","id"?:int,"exp":int} the new token's expiry */
};

/* A decoded message. wire_str fields point into the input or into storage owned by the message
 * (jansson tree / msgpack zone): valid until sub_msg_clear. Fields not carried are zero. */
struct sub_msg {
    enum sub_type type;
    uint64_t id;
    int has_id;
    uint32_t version;       /* hello, welcome */
    struct wire_str client; /* hello */
    struct wire_str token;  /* hello (optional), refresh (required): the subscriber's token */
    uint64_t exp;           /* refreshed: the token's expiry, seconds since the epoch */
    uint32_t ntopics;       /* sub, unsub */
    struct wire_str topics[WIRE_TOPICS_MAX];
    struct wire_str epoch;            /* sub: resume.epoch; welcome: epoch */
    uint8_t has_seq[WIRE_TOPICS_MAX]; /* sub: 1 when resume.seqs names topics[i] */
    uint64_t seqs[WIRE_TOPICS_MAX];   /* sub: resume.seqs[topics[i]] */
    int replay_all;        /* sub: resume.replay is "all" (every missed hint, one by one), not the
                              default "changes" (one hint per changed topic) */
    struct wire_str topic; /* subscribed, unsubscribed, hint, reset, error */
    uint64_t seq;          /* subscribed, hint, reset */
    const uint8_t *data;   /* hint: raw msgpack of "data" (converted from JSON for SUB_JSON),
                              or NULL */
    size_t data_len;
    uint32_t count;               /* hint: "n" (changes covered), 1 when absent */
    int own;                      /* hint: "own" */
    struct wire_str reason;       /* reset */
    int32_t code;                 /* error */
    struct wire_str msg;          /* error */
    struct wire_str conn, server; /* welcome */
    int has_g;                    /* pong: "g" present */
    uint64_t g;                   /* pong: global position */
    void *priv;                   /* decoder-owned storage, released by sub_msg_clear */
};

/* Decode one message payload of the given format into *out (which it overwrites). Validates
 * structure, types and sizes (len <= max_frame, topic count <= max_topics, ids/seqs
 * <= WIRE_SEQ_MAX, resume.seqs keys must be among topics); JSON text must be valid UTF-8. Topic
 * names are NOT validated (the caller answers per topic). On error *out holds nothing to
 * clear and every field is zero except has_id/id, which keep the request's "id" when it could be
 * read. Returns 0 or a negative wire_err. */
int sub_decode(enum sub_fmt fmt, const uint8_t *p, size_t len, const struct wire_limits *lim,
               struct sub_msg *out);
void sub_msg_clear(struct sub_msg *m);

/* Hint fields for sub_encode_hint. data is raw msgpack already accepted by wire_data_check,
 * or NULL. count > 1 marks a coalesced hint ("n"); own marks the recipient as the origin. */
struct sub_hint {
    struct wire_str topic;
    uint64_t seq;
    const uint8_t *data;
    size_t data_len;
    uint32_t count;
    int own;
};

/* Encoders: append one message payload (JSON text without NUL, or msgpack) to out. Strings are
 * copied. Return 0 or a negative wire_err. */
int sub_encode_hello(enum sub_fmt f, struct wire_buf *out, uint32_t version, const char *client);
/* hello with a token (NULL = none, as sub_encode_hello). */
int sub_encode_hello_token(enum sub_fmt f, struct wire_buf *out, uint32_t version,
                           const char *client, const char *token);
int sub_encode_refresh(enum sub_fmt f, struct wire_buf *out, int has_id, uint64_t id,
                       const char *token);
int sub_encode_refreshed(enum sub_fmt f, struct wire_buf *out, int has_id, uint64_t id,
                         uint64_t exp);
int sub_encode_welcome(enum sub_fmt f, struct wire_buf *out, uint32_t version, const char *conn,
                       const char *epoch, const char *server);
/* resume_epoch NULL = no "resume" key; has_seq/seqs may be NULL when resume_epoch is NULL.
 * replay_all adds "replay":"all" to the resume (ignored without one). */
int sub_encode_subscribe(enum sub_fmt f, struct wire_buf *out, uint64_t id,
                         const struct wire_str *topics, uint32_t ntopics, const char *resume_epoch,
                         const uint8_t *has_seq, const uint64_t *seqs, int replay_all);
int sub_encode_subscribed(enum sub_fmt f, struct wire_buf *out, uint64_t id, struct wire_str topic,
                          uint64_t seq);
int sub_encode_unsubscribe(enum sub_fmt f, struct wire_buf *out, uint64_t id,
                           const struct wire_str *topics, uint32_t ntopics);
int sub_encode_unsubscribed(enum sub_fmt f, struct wire_buf *out, uint64_t id,
                            struct wire_str topic);
int sub_encode_hint(enum sub_fmt f, struct wire_buf *out, const struct sub_hint *h);
int sub_encode_reset(enum sub_fmt f, struct wire_buf *out, struct wire_str topic, uint64_t seq,
                     const char *reason);
/* has_id 0 = no "id"; topic.len 0 = no "topic". */
int sub_encode_error(enum sub_fmt f, struct wire_buf *out, int has_id, uint64_t id,
                     struct wire_str topic, int32_t code, const char *msg);
int sub_encode_ping(enum sub_fmt f, struct wire_buf *out, int has_id, uint64_t id);
int sub_encode_pong(enum sub_fmt f, struct wire_buf *out, int has_id, uint64_t id);
/* A pong carrying the global position g (to a connection with pattern subscriptions). */
int sub_encode_pong_g(enum sub_fmt f, struct wire_buf *out, int has_id, uint64_t id, uint64_t g);
/* Encode any decoded message m (as sub_decode left it) in format f, appended to out: the inverse
 * of sub_decode, so a message read in one format can be written in the other (the CLI prints
 * msgpack hints as JSON this way). Returns 0, WIRE_ETYPE or WIRE_ENOMEM. */
int sub_encode_msg(enum sub_fmt f, struct wire_buf *out, const struct sub_msg *m);

#endif
