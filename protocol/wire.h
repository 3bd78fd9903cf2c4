/* wire: what both nudge protocols share — limits, error codes, a growable byte buffer, string
 * slices and the validation of topic names and data values. Pure functions over memory: no
 * sockets, no libuv, no libwebsockets. Normative text: docs/protocol.md. */
#ifndef NUDGE_WIRE_H
#define NUDGE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION 1

/* Hard ceilings: configurable limits (struct wire_limits) are clamped to these. */
#define WIRE_TOPICS_MAX 256           /* topics in one message */
#define WIRE_FRAME_MAX (16u << 20)    /* bytes in one frame body / WebSocket message */
#define WIRE_TOPIC_LEN_MAX 1024       /* bytes in one topic name */
#define WIRE_DATA_MAX (1u << 20)      /* bytes of one msgpack-encoded data value */
#define WIRE_SEQ_MAX 9007199254740991 /* 2^53 - 1: seqs and ids stay exact in JavaScript */

/* Return codes of every protocol/ function: 0 or one of these. */
enum wire_err {
    WIRE_OK = 0,
    WIRE_EAGAIN = -1,     /* frame incomplete: feed more bytes */
    WIRE_EMALFORMED = -2, /* not decodable (bad msgpack/JSON, not a map, trailing bytes) */
    WIRE_ETYPE = -3,      /* "type" missing or unknown */
    WIRE_EFIELD = -4,     /* a field is missing, of the wrong type or out of range */
    WIRE_ETOOBIG = -5,    /* frame or message larger than the limit */
    WIRE_ETOPIC = -6,     /* topic empty, too long, bad UTF-8, control/space chars, '*' */
    WIRE_EDATA = -7,      /* data too large or not representable in JSON */
    WIRE_ETOOMANY = -8,   /* more topics in one message than the limit */
    WIRE_ENOMEM = -9,
};

/* Error codes carried on the wire in "error" messages (docs/protocol.md §Errors). Stable
 * numbers: clients switch on them. */
enum wire_code {
    WIRE_C_BAD_FRAME = 1,       /* undecodable frame/message */
    WIRE_C_UNKNOWN_TYPE = 2,    /* "type" missing or unknown */
    WIRE_C_BAD_FIELD = 3,       /* field missing, mistyped or out of range */
    WIRE_C_TOO_LARGE = 4,       /* frame/message over max_frame */
    WIRE_C_BAD_TOPIC = 5,       /* invalid topic name */
    WIRE_C_BAD_DATA = 6,        /* data over max_data or not JSON-representable */
    WIRE_C_TOO_MANY_TOPICS = 7, /* over max_topics in one message */
    WIRE_C_BAD_VERSION = 8,     /* unsupported protocol version */
    WIRE_C_HELLO_REQUIRED = 9,  /* first message must be hello */
    WIRE_C_TOO_MANY_SUBS = 10,  /* connection over max_subs */
    WIRE_C_NOT_SUBSCRIBED = 11, /* unsubscribe of a topic not subscribed */
    WIRE_C_UNEXPECTED = 12,     /* valid message, wrong direction or state (e.g. second hello) */
    WIRE_C_INTERNAL = 13,       /* broker-side failure (out of memory, shutting down) */
    WIRE_C_LIMIT = 14,          /* a broker-wide bound was reached (--max-topics-total) */
    WIRE_C_STORAGE = 15, /* the publish could not be stored (disk full, --disk-max, disk failure) */
    WIRE_C_UNAUTHORIZED = 16,  /* credentials missing, malformed, forged, expired or refused */
    WIRE_C_FORBIDDEN = 17,     /* the credentials do not allow this topic or pattern */
    WIRE_C_TOKEN_EXPIRED = 18, /* the connection's token lapsed without a refresh (then close) */
    WIRE_C_RATE_LIMITED = 19,  /* a per-connection or per-key rate was exceeded */
    WIRE_C_OVER_BUDGET = 20,   /* a per-connection memory or replay budget was exceeded */
};

/* Map a decode/validation error to its wire code; returns WIRE_C_INTERNAL for others. */
int wire_code_of(int err);
/* Stable lowercase name of a wire code ("bad_topic"); "unknown" for others. Static storage. */
const char *wire_code_name(int code);

struct wire_limits {
    uint32_t max_frame;  /* bytes of one TCP frame body or one WebSocket message; default 65536 */
    uint32_t max_topic;  /* bytes of one topic name; default 256 */
    uint32_t max_data;   /* bytes of one msgpack-encoded data value; default 1024 */
    uint32_t max_topics; /* topics in one publish/subscribe/unsubscribe; default 64 */
};

/* Fill *l with the documented defaults. */
void wire_limits_default(struct wire_limits *l);
/* Clamp every limit into [1, hard ceiling]. */
void wire_limits_clamp(struct wire_limits *l);

/* A byte slice; not NUL-terminated; points into memory owned by someone else (named where used). */
struct wire_str {
    const char *p;
    uint32_t len;
};

/* Growable byte buffer. Zero-initialise to start; the buffer owns data until wire_buf_free. */
struct wire_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};
int wire_buf_reserve(struct wire_buf *b, size_t extra); /* ensure cap >= len + extra */
int wire_buf_append(struct wire_buf *b, const void *p, size_t n);
void wire_buf_reset(struct wire_buf *b); /* len = 0, keeps the allocation */
void wire_buf_free(struct wire_buf *b);  /* frees data, zeroes the struct */

/* Topic validation. A topic is 1..max_topic bytes of valid UTF-8 with no ASCII control chars
 * (< 0x20, 0x7f), no space, and no '*' (reserved for wildcard patterns). Returns 0 or
 * WIRE_ETOPIC. */
int wire_topic_check(const char *p, size_t len, const struct wire_limits *lim);

/* UTF-8 validation (RFC 3629: no overlongs, no surrogates, max U+10FFFF). 1 if valid. */
int wire_utf8_valid(const char *p, size_t len);

/* Data validation: p/len must be exactly one msgpack value, len <= max_data, and representable
 * in JSON: nil, bool, int, finite float, str (valid UTF-8), array, map with str keys (no NUL
 * in keys); no bin, no ext; nesting depth <= 32. Returns 0, WIRE_EDATA or WIRE_EMALFORMED. */
int wire_data_check(const uint8_t *p, size_t len, const struct wire_limits *lim);

/* Convert one msgpack data value (already accepted by wire_data_check) to compact JSON text
 * appended to out (no NUL). Returns 0 or a negative wire_err. */
int wire_data_to_json(const uint8_t *p, size_t len, struct wire_buf *out);

/* Convert JSON text (one value) to msgpack appended to out; for the CLI's --data and for tests.
 * Integers stay integers, other numbers become float64. Returns 0, WIRE_EMALFORMED or
 * WIRE_ENOMEM. */
int wire_json_to_data(const char *json, size_t len, struct wire_buf *out);

/* ---- Internal to protocol/ -------------------------------------------------------------------
 * Double-underscore names (uv__ style) are shared by wire.c, pub.c, sub.c, hpub.c and relay.c only;
 * they are not part of the API and other modules must not call them. */

/* A bounds-checked msgpack reader over p[0..len) starting at off. It never allocates and never
 * reads past len. (msgpack-c's unpacker allocates count * sizeof(msgpack_object) as soon as it
 * sees an array header, so a 5-byte frame could ask for ~100 GB; and its nesting limit would
 * turn deep data into a parse error.) */
struct wire__rd {
    const uint8_t *p;
    size_t len;
    size_t off;
};

enum wire__kind {
    WIRE__NIL,
    WIRE__BOOL,
    WIRE__UINT, /* any msgpack int format holding a value >= 0 */
    WIRE__INT,  /* any msgpack int format holding a value < 0 */
    WIRE__FLOAT,
    WIRE__STR,
    WIRE__BIN,
    WIRE__EXT,
    WIRE__ARRAY,
    WIRE__MAP,
};

/* One msgpack header. For STR/BIN/EXT the payload is s[0..n) (inside the reader's input). */
struct wire__val {
    enum wire__kind kind;
    uint64_t u;       /* UINT value; BOOL 0/1; ARRAY element count; MAP pair count */
    int64_t i;        /* INT value */
    double f;         /* FLOAT value */
    int f32;          /* FLOAT was a float32 */
    const uint8_t *s; /* STR/BIN/EXT payload */
    uint32_t n;       /* STR/BIN/EXT payload length */
};

/* Read one header (and the payload of str/bin/ext). 0 or WIRE_EMALFORMED. */
int wire__rd_val(struct wire__rd *r, struct wire__val *v);
/* Skip one complete value, however nested. 0 or WIRE_EMALFORMED. */
int wire__rd_skip(struct wire__rd *r);
/* Read one map whose keys are all str. For each names[i] found, offs[i] is the offset of its
 * value (last one wins); 0 when absent (a value never sits at offset 0: the map header precedes
 * it). Leaves r after the map. 0 or WIRE_EMALFORMED (not a map, non-str key, truncated). */
int wire__rd_fields(struct wire__rd *r, const char *const *names, size_t n, size_t *offs);
/* Read an int in [0, max]. 0 or WIRE_EFIELD. */
int wire__rd_uint(struct wire__rd *r, uint64_t max, uint64_t *out);
/* Read a str; *s points into the reader's input. 0 or WIRE_EFIELD. */
int wire__rd_str(struct wire__rd *r, struct wire_str *s);

/* msgpack_packer_write callback appending to a struct wire_buf. */
int wire__buf_write(void *buf, const char *p, size_t n);
/* A malloc'd NUL-terminated copy of s for the encoders' const char * parameters (caller frees);
 * NULL when s.p is NULL. *ok is cleared when the copy could not be made. */
char *wire__strdup(struct wire_str s, int *ok);
/* Append s[0..n) as a quoted JSON string. Output is always valid UTF-8: an invalid input byte
 * becomes U+FFFD. 0 or WIRE_ENOMEM. */
int wire__json_str(struct wire_buf *b, const char *s, size_t n);
/* Append v in decimal. 0 or WIRE_ENOMEM. */
int wire__json_uint(struct wire_buf *b, uint64_t v);
/* Append the msgpack form of a jansson value (struct json_t, opaque here). 0 or WIRE_ENOMEM. */
struct json_t;
int wire__json_pack(const struct json_t *v, struct wire_buf *out);

#endif
