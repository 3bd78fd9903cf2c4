/* wire: what both nudge protocols share. Normative text: docs/protocol.md.
 *
 * Design:
 * - Decoding msgpack goes through struct wire__rd, a cursor that reads one header at a time and
 *   checks every length against the bytes that remain. It never allocates, so a declared count
 *   costs nothing until its elements are really there; skipping a value keeps one counter of
 *   values still to skip instead of recursing, so nesting depth is irrelevant to skipping.
 * - Data values ("data") are walked recursively with depth <= WIRE_DATA_DEPTH, which bounds the
 *   C stack. One walker both checks (wire_data_check) and converts to JSON (wire_data_to_json),
 *   so the two can never disagree about what is acceptable.
 * - JSON is written by hand (not through a jansson tree): hints are encoded on the broker's hot
 *   path, and one escaper for every string keeps the output byte-for-byte predictable. Every
 *   string written is valid UTF-8 (invalid input bytes become U+FFFD) because a WebSocket text
 *   frame with bad UTF-8 makes the browser drop the connection. JSON is parsed with jansson.
 * - Encoding msgpack uses msgpack-c's packer writing straight into a struct wire_buf.
 */
#include "wire.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#define WIRE_DATA_DEPTH 32 /* containers nested in one data value (docs/protocol.md §Data) */

int wire_code_of(int err)
{
    switch (err) {
    case WIRE_EMALFORMED:
        return WIRE_C_BAD_FRAME;
    case WIRE_ETYPE:
        return WIRE_C_UNKNOWN_TYPE;
    case WIRE_EFIELD:
        return WIRE_C_BAD_FIELD;
    case WIRE_ETOOBIG:
        return WIRE_C_TOO_LARGE;
    case WIRE_ETOPIC:
        return WIRE_C_BAD_TOPIC;
    case WIRE_EDATA:
        return WIRE_C_BAD_DATA;
    case WIRE_ETOOMANY:
        return WIRE_C_TOO_MANY_TOPICS;
    default:
        return WIRE_C_INTERNAL;
    }
}

const char *wire_code_name(int code)
{
    static const char *const names[] = {
        [WIRE_C_BAD_FRAME] = "bad_frame",
        [WIRE_C_UNKNOWN_TYPE] = "unknown_type",
        [WIRE_C_BAD_FIELD] = "bad_field",
        [WIRE_C_TOO_LARGE] = "too_large",
        [WIRE_C_BAD_TOPIC] = "bad_topic",
        [WIRE_C_BAD_DATA] = "bad_data",
        [WIRE_C_TOO_MANY_TOPICS] = "too_many_topics",
        [WIRE_C_BAD_VERSION] = "bad_version",
        [WIRE_C_HELLO_REQUIRED] = "hello_required",
        [WIRE_C_TOO_MANY_SUBS] = "too_many_subs",
        [WIRE_C_NOT_SUBSCRIBED] = "not_subscribed",
        [WIRE_C_UNEXPECTED] = "unexpected",
        [WIRE_C_INTERNAL] = "internal",
        [WIRE_C_LIMIT] = "limit",
        [WIRE_C_STORAGE] = "storage",
        [WIRE_C_UNAUTHORIZED] = "unauthorized",
        [WIRE_C_FORBIDDEN] = "forbidden",
        [WIRE_C_TOKEN_EXPIRED] = "token_expired",
        [WIRE_C_RATE_LIMITED] = "rate_limited",
        [WIRE_C_OVER_BUDGET] = "over_budget",
    };
    if (code < 1 || (size_t)code >= sizeof names / sizeof names[0]) return "unknown";
    return names[code];
}

void wire_limits_default(struct wire_limits *l)
{
    l->max_frame = 65536;
    l->max_topic = 256;
    l->max_data = 1024;
    l->max_topics = 64;
}

static uint32_t clamp(uint32_t v, uint32_t hi)
{
    return v < 1 ? 1 : v > hi ? hi : v;
}

void wire_limits_clamp(struct wire_limits *l)
{
    l->max_frame = clamp(l->max_frame, WIRE_FRAME_MAX);
    l->max_topic = clamp(l->max_topic, WIRE_TOPIC_LEN_MAX);
    l->max_data = clamp(l->max_data, WIRE_DATA_MAX);
    l->max_topics = clamp(l->max_topics, WIRE_TOPICS_MAX);
}

/* ---- wire_buf -------------------------------------------------------------------------------- */

int wire_buf_reserve(struct wire_buf *b, size_t extra)
{
    if (extra <= b->cap - b->len) return WIRE_OK;
    if (extra > SIZE_MAX / 2 - b->len) return WIRE_ENOMEM;
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d) return WIRE_ENOMEM;
    b->data = d;
    b->cap = cap;
    return WIRE_OK;
}

int wire_buf_append(struct wire_buf *b, const void *p, size_t n)
{
    if (n == 0) return WIRE_OK;
    if (wire_buf_reserve(b, n)) return WIRE_ENOMEM;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return WIRE_OK;
}

void wire_buf_reset(struct wire_buf *b)
{
    b->len = 0;
}

void wire_buf_free(struct wire_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int wire__buf_write(void *buf, const char *p, size_t n)
{
    return wire_buf_append(buf, p, n) ? -1 : 0;
}

/* ---- UTF-8 and topics ------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence starting at p (avail bytes available), or 0 if invalid.
 * RFC 3629: shortest form only, no surrogates (U+D800..DFFF), nothing above U+10FFFF. */
static size_t utf8_seq(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 1;
        cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 2;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3;
        cp = c & 0x07;
    } else {
        return 0; /* continuation byte, 0xc0/0xc1 (always overlong) or 0xf5.. */
    }
    if (avail - 1 < n) return 0;
    for (size_t k = 1; k <= n; k++) {
        if ((p[k] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (p[k] & 0x3fu);
    }
    if (n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) return 0;
    if (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) return 0;
    return n + 1;
}

int wire_utf8_valid(const char *p, size_t len)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    while (i < len) {
        size_t k = utf8_seq(s + i, len - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

int wire_topic_check(const char *p, size_t len, const struct wire_limits *lim)
{
    uint32_t max = lim ? lim->max_topic : 256;
    if (max > WIRE_TOPIC_LEN_MAX) max = WIRE_TOPIC_LEN_MAX;
    if (len == 0 || len > max) return WIRE_ETOPIC;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c == 0x7f || c == ' ' || c == '*') return WIRE_ETOPIC;
    }
    return wire_utf8_valid(p, len) ? WIRE_OK : WIRE_ETOPIC;
}

/* ---- msgpack reader -------------------------------------------------------------------------- */

static int rd_be(struct wire__rd *r, size_t n, uint64_t *out)
{
    if (r->len - r->off < n) return WIRE_EMALFORMED;
    uint64_t v = 0;
    for (size_t k = 0; k < n; k++)
        v = v << 8 | r->p[r->off + k];
    r->off += n;
    *out = v;
    return WIRE_OK;
}

/* Payload of n bytes for str/bin/ext. */
static int rd_payload(struct wire__rd *r, uint64_t n, struct wire__val *v)
{
    if (n > r->len - r->off) return WIRE_EMALFORMED;
    v->s = r->p + r->off;
    v->n = (uint32_t)n; /* n came from at most 32 bits */
    r->off += (size_t)n;
    return WIRE_OK;
}

static void set_signed(struct wire__val *v, int64_t i)
{
    if (i >= 0) {
        v->kind = WIRE__UINT;
        v->u = (uint64_t)i;
    } else {
        v->kind = WIRE__INT;
        v->i = i;
    }
}

int wire__rd_val(struct wire__rd *r, struct wire__val *v)
{
    memset(v, 0, sizeof *v);
    if (r->off >= r->len) return WIRE_EMALFORMED;
    unsigned c = r->p[r->off++];
    uint64_t x;

    if (c <= 0x7f) {
        v->kind = WIRE__UINT;
        v->u = c;
        return WIRE_OK;
    }
    if (c >= 0xe0) {
        v->kind = WIRE__INT;
        v->i = (int64_t)c - 256;
        return WIRE_OK;
    }
    if (c <= 0x8f) {
        v->kind = WIRE__MAP;
        v->u = c & 0x0f;
        return WIRE_OK;
    }
    if (c <= 0x9f) {
        v->kind = WIRE__ARRAY;
        v->u = c & 0x0f;
        return WIRE_OK;
    }
    if (c <= 0xbf) {
        v->kind = WIRE__STR;
        return rd_payload(r, c & 0x1f, v);
    }
    switch (c) {
    case 0xc0:
        v->kind = WIRE__NIL;
        return WIRE_OK;
    case 0xc2:
    case 0xc3:
        v->kind = WIRE__BOOL;
        v->u = c & 1;
        return WIRE_OK;
    case 0xc4: /* bin 8/16/32 */
    case 0xc5:
    case 0xc6:
        v->kind = WIRE__BIN;
        if (rd_be(r, (size_t)1 << (c - 0xc4), &x)) return WIRE_EMALFORMED;
        return rd_payload(r, x, v);
    case 0xc7: /* ext 8/16/32: length, type byte, payload */
    case 0xc8:
    case 0xc9:
        v->kind = WIRE__EXT;
        if (rd_be(r, (size_t)1 << (c - 0xc7), &x)) return WIRE_EMALFORMED;
        if (r->off >= r->len) return WIRE_EMALFORMED;
        r->off++;
        return rd_payload(r, x, v);
    case 0xca: {
        if (rd_be(r, 4, &x)) return WIRE_EMALFORMED;
        uint32_t b32 = (uint32_t)x;
        float f;
        memcpy(&f, &b32, sizeof f);
        v->kind = WIRE__FLOAT;
        v->f = f;
        v->f32 = 1;
        return WIRE_OK;
    }
    case 0xcb: {
        if (rd_be(r, 8, &x)) return WIRE_EMALFORMED;
        double d;
        memcpy(&d, &x, sizeof d);
        v->kind = WIRE__FLOAT;
        v->f = d;
        return WIRE_OK;
    }
    case 0xcc: /* uint 8/16/32/64 */
    case 0xcd:
    case 0xce:
    case 0xcf:
        if (rd_be(r, (size_t)1 << (c - 0xcc), &x)) return WIRE_EMALFORMED;
        v->kind = WIRE__UINT;
        v->u = x;
        return WIRE_OK;
    case 0xd0:
        if (rd_be(r, 1, &x)) return WIRE_EMALFORMED;
        set_signed(v, (int8_t)(uint8_t)x);
        return WIRE_OK;
    case 0xd1:
        if (rd_be(r, 2, &x)) return WIRE_EMALFORMED;
        set_signed(v, (int16_t)(uint16_t)x);
        return WIRE_OK;
    case 0xd2:
        if (rd_be(r, 4, &x)) return WIRE_EMALFORMED;
        set_signed(v, (int32_t)(uint32_t)x);
        return WIRE_OK;
    case 0xd3: {
        if (rd_be(r, 8, &x)) return WIRE_EMALFORMED;
        int64_t i;
        memcpy(&i, &x, sizeof i); /* two's complement reinterpretation without UB */
        set_signed(v, i);
        return WIRE_OK;
    }
    case 0xd4: /* fixext 1/2/4/8/16: type byte + payload */
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
        v->kind = WIRE__EXT;
        if (r->off >= r->len) return WIRE_EMALFORMED;
        r->off++;
        return rd_payload(r, (uint64_t)1 << (c - 0xd4), v);
    case 0xd9: /* str 8/16/32 */
    case 0xda:
    case 0xdb:
        v->kind = WIRE__STR;
        if (rd_be(r, (size_t)1 << (c - 0xd9), &x)) return WIRE_EMALFORMED;
        return rd_payload(r, x, v);
    case 0xdc: /* array 16/32 */
    case 0xdd:
        v->kind = WIRE__ARRAY;
        return rd_be(r, (size_t)2 << (c - 0xdc), &v->u);
    case 0xde: /* map 16/32 */
    case 0xdf:
        v->kind = WIRE__MAP;
        return rd_be(r, (size_t)2 << (c - 0xde), &v->u);
    default: /* 0xc1: never used */
        return WIRE_EMALFORMED;
    }
}

int wire__rd_skip(struct wire__rd *r)
{
    /* Values still to skip. Each costs at least one byte, so more pending values than bytes
     * left is already a truncation; checking that also keeps pending far from overflow. */
    uint64_t pending = 1;
    struct wire__val v;
    while (pending) {
        if (pending > r->len - r->off) return WIRE_EMALFORMED;
        if (wire__rd_val(r, &v)) return WIRE_EMALFORMED;
        pending--;
        if (v.kind == WIRE__ARRAY)
            pending += v.u;
        else if (v.kind == WIRE__MAP)
            pending += 2 * v.u;
    }
    return WIRE_OK;
}

int wire__rd_fields(struct wire__rd *r, const char *const *names, size_t n, size_t *offs)
{
    struct wire__val v, k;
    for (size_t i = 0; i < n; i++)
        offs[i] = 0;
    if (wire__rd_val(r, &v) || v.kind != WIRE__MAP) return WIRE_EMALFORMED;
    for (uint64_t pair = 0; pair < v.u; pair++) {
        if (wire__rd_val(r, &k) || k.kind != WIRE__STR) return WIRE_EMALFORMED;
        for (size_t i = 0; i < n; i++) {
            if (strlen(names[i]) == k.n && memcmp(names[i], k.s, k.n) == 0) {
                offs[i] = r->off;
                break;
            }
        }
        if (wire__rd_skip(r)) return WIRE_EMALFORMED;
    }
    return WIRE_OK;
}

int wire__rd_uint(struct wire__rd *r, uint64_t max, uint64_t *out)
{
    struct wire__val v;
    if (wire__rd_val(r, &v) || v.kind != WIRE__UINT || v.u > max) return WIRE_EFIELD;
    *out = v.u;
    return WIRE_OK;
}

int wire__rd_str(struct wire__rd *r, struct wire_str *s)
{
    struct wire__val v;
    if (wire__rd_val(r, &v) || v.kind != WIRE__STR) return WIRE_EFIELD;
    s->p = (const char *)v.s;
    s->len = v.n;
    return WIRE_OK;
}

/* ---- JSON writing ---------------------------------------------------------------------------- */

int wire__json_str(struct wire_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    int e = 0;
    size_t run = 0; /* start of the bytes not yet written that need no escaping */

    e |= wire_buf_reserve(b, n + 2);
    e |= wire_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        char esc[6];
        size_t elen = 0;
        size_t k = 1;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            elen = 2;
        } else if (c < 0x20) {
            static const char shortf[] = "\b\f\n\r\t";
            static const char letter[] = "bfnrt";
            const char *sf = c ? memchr(shortf, (int)c, 5) : NULL;
            esc[0] = '\\';
            if (sf) {
                esc[1] = letter[sf - shortf];
                elen = 2;
            } else {
                memcpy(esc + 1, "u00", 3);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                elen = 6;
            }
        } else if (c >= 0x80) {
            k = utf8_seq(p + i, n - i);
            if (k == 0) {
                memcpy(esc, "\xef\xbf\xbd", 3); /* U+FFFD replaces one invalid byte */
                elen = 3;
                k = 1;
            }
        }
        if (elen) {
            e |= wire_buf_append(b, p + run, i - run);
            e |= wire_buf_append(b, esc, elen);
            run = i + k;
        }
        i += k;
    }
    e |= wire_buf_append(b, p + run, n - run);
    e |= wire_buf_append(b, "\"", 1);
    return e ? WIRE_ENOMEM : WIRE_OK;
}

int wire__json_uint(struct wire_buf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
    return wire_buf_append(b, tmp, (size_t)n);
}

static int jw_int(struct wire_buf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    return wire_buf_append(b, tmp, (size_t)n);
}

/* Shortest decimal that reads back as the same value (as a float when f32), always with a '.'
 * or an exponent so that a JSON reader sees a real, not an integer. */
static int jw_double(struct wire_buf *b, double d, int f32)
{
    char tmp[40];
    int n = 0;
    for (int prec = f32 ? 6 : 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp - 2, "%.*g", prec, d);
        if (f32 ? strtof(tmp, NULL) == (float)d : strtod(tmp, NULL) == d) break;
    }
    int real = 0;
    for (int i = 0; i < n; i++) {
        if (tmp[i] == ',') /* a locale's decimal comma */
            tmp[i] = '.';
        if (tmp[i] == '.' || tmp[i] == 'e') real = 1;
    }
    if (!real) {
        memcpy(tmp + n, ".0", 2);
        n += 2;
    }
    return wire_buf_append(b, tmp, (size_t)n);
}

/* ---- data values ----------------------------------------------------------------------------- */

/* Walk one data value, appending its JSON to out when out != NULL. depth = containers already
 * open around this value. Returns 0, WIRE_EDATA, WIRE_EMALFORMED or WIRE_ENOMEM. */
static int data_walk(struct wire__rd *r, struct wire_buf *out, int depth)
{
    struct wire__val v;
    int rc;
    if (wire__rd_val(r, &v)) return WIRE_EMALFORMED;
    switch (v.kind) {
    case WIRE__NIL:
        return out ? wire_buf_append(out, "null", 4) : WIRE_OK;
    case WIRE__BOOL:
        return out ? wire_buf_append(out, v.u ? "true" : "false", v.u ? 4 : 5) : WIRE_OK;
    case WIRE__UINT:
        return out ? wire__json_uint(out, v.u) : WIRE_OK;
    case WIRE__INT:
        return out ? jw_int(out, v.i) : WIRE_OK;
    case WIRE__FLOAT:
        if (!isfinite(v.f)) return WIRE_EDATA;
        return out ? jw_double(out, v.f, v.f32) : WIRE_OK;
    case WIRE__STR:
        if (!wire_utf8_valid((const char *)v.s, v.n)) return WIRE_EDATA;
        return out ? wire__json_str(out, (const char *)v.s, v.n) : WIRE_OK;
    case WIRE__BIN:
    case WIRE__EXT:
        return WIRE_EDATA;
    case WIRE__ARRAY:
    case WIRE__MAP:
        break;
    }
    if (depth >= WIRE_DATA_DEPTH) return WIRE_EDATA;
    int map = v.kind == WIRE__MAP;
    if (out && wire_buf_append(out, map ? "{" : "[", 1)) return WIRE_ENOMEM;
    for (uint64_t i = 0; i < v.u; i++) {
        if (out && i && wire_buf_append(out, ",", 1)) return WIRE_ENOMEM;
        if (map) {
            struct wire__val k;
            if (wire__rd_val(r, &k)) return WIRE_EMALFORMED;
            /* No NUL in keys: JSON could say "\u0000" but jansson and most C JSON libraries
             * cannot hold such a key, and every hint must decode wherever it is delivered. */
            if (k.kind != WIRE__STR || !wire_utf8_valid((const char *)k.s, k.n) ||
                memchr(k.s, 0, k.n))
                return WIRE_EDATA;
            if (out &&
                (wire__json_str(out, (const char *)k.s, k.n) || wire_buf_append(out, ":", 1)))
                return WIRE_ENOMEM;
        }
        if ((rc = data_walk(r, out, depth + 1))) return rc;
    }
    if (out && wire_buf_append(out, map ? "}" : "]", 1)) return WIRE_ENOMEM;
    return WIRE_OK;
}

int wire_data_check(const uint8_t *p, size_t len, const struct wire_limits *lim)
{
    uint32_t max = lim ? lim->max_data : 1024;
    if (max > WIRE_DATA_MAX) max = WIRE_DATA_MAX;
    if (len > max) return WIRE_EDATA;
    struct wire__rd r = {p, len, 0};
    int rc = data_walk(&r, NULL, 0);
    if (rc) return rc;
    return r.off == len ? WIRE_OK : WIRE_EMALFORMED;
}

int wire_data_to_json(const uint8_t *p, size_t len, struct wire_buf *out)
{
    size_t start = out->len;
    struct wire__rd r = {p, len, 0};
    int rc = data_walk(&r, out, 0);
    if (!rc && r.off != len) rc = WIRE_EMALFORMED;
    if (rc) out->len = start; /* never leave half a value behind */
    return rc;
}

/* ---- JSON to msgpack ------------------------------------------------------------------------- */

/* Recursion is bounded by jansson's parser depth (JSON_PARSER_MAX_DEPTH, 2048). */
static int pack_json(msgpack_packer *pk, const json_t *v)
{
    int e = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        /* jansson iterates objects in insertion order, which keeps the sender's key order. */
        e |= msgpack_pack_map(pk, json_object_size(v));
        for (void *it = json_object_iter((json_t *)v); it && !e;
             it = json_object_iter_next((json_t *)v, it)) {
            size_t klen = json_object_iter_key_len(it);
            e |= msgpack_pack_str(pk, klen);
            e |= msgpack_pack_str_body(pk, json_object_iter_key(it), klen);
            e |= pack_json(pk, json_object_iter_value(it));
        }
        break;
    }
    case JSON_ARRAY:
        e |= msgpack_pack_array(pk, json_array_size(v));
        for (size_t i = 0; i < json_array_size(v) && !e; i++)
            e |= pack_json(pk, json_array_get(v, i));
        break;
    case JSON_STRING:
        e |= msgpack_pack_str(pk, json_string_length(v));
        e |= msgpack_pack_str_body(pk, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        e |= msgpack_pack_int64(pk, json_integer_value(v));
        break;
    case JSON_REAL:
        e |= msgpack_pack_double(pk, json_real_value(v));
        break;
    case JSON_TRUE:
        e |= msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        e |= msgpack_pack_false(pk);
        break;
    case JSON_NULL:
        e |= msgpack_pack_nil(pk);
        break;
    }
    return e ? WIRE_ENOMEM : WIRE_OK;
}

int wire__json_pack(const struct json_t *v, struct wire_buf *out)
{
    size_t start = out->len;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, wire__buf_write);
    int rc = pack_json(&pk, v);
    if (rc) out->len = start;
    return rc;
}

int wire_json_to_data(const char *json, size_t len, struct wire_buf *out)
{
    json_error_t err;
    json_t *root = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!root) return WIRE_EMALFORMED;
    int rc = wire__json_pack(root, out);
    json_decref(root);
    return rc;
}

char *wire__strdup(struct wire_str s, int *ok)
{
    if (!s.p) return NULL;
    char *c = malloc((size_t)s.len + 1);
    if (!c) {
        *ok = 0;
        return NULL;
    }
    memcpy(c, s.p, s.len);
    c[s.len] = '\0';
    return c;
}
