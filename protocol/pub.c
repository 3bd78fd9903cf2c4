/* pub: the publisher protocol codec (docs/protocol.md §Publisher protocol).
 *
 * Decoding is zero-copy: every wire_str and the data/auth spans point into the frame body, so a
 * decoded message owns nothing (priv stays NULL) and is valid while the body is. The body is
 * read once by wire__rd_fields, which checks the whole map's structure and records where each
 * known key's value starts (the last duplicate wins); the fields the message's type needs are
 * then read from those offsets, in the order the header lists them, so the first error reported
 * for a given body is deterministic. Keys the type does not use are ignored whatever their value
 * (forward compatibility).
 *
 * Encoding appends a 4-byte placeholder, packs the map with msgpack-c straight into the buffer,
 * then patches the length. Pack errors are OR-ed together and checked once; on any error the
 * buffer is cut back to where it was, so a caller never sees half a frame.
 */
#include "pub.h"

#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

enum {
    K_TYPE,
    K_V,
    K_CLIENT,
    K_AUTH,
    K_ID,
    K_TOPICS,
    K_DATA,
    K_ORIGIN,
    K_SEQS,
    K_CODE,
    K_MSG,
    K_EPOCH,
    K_SERVER,
    K_MAX_FRAME,
    K_MAX_TOPICS,
    K_MAX_DATA,
    K_SKIP_ORIGIN,
    K_MAX_TOPIC,
    K_N
};

static const char *const keys[K_N] = {
    "type",   "v",         "client",     "auth",     "id",          "topics",
    "data",   "origin",    "seqs",       "code",     "msg",         "epoch",
    "server", "max_frame", "max_topics", "max_data", "skip_origin", "max_topic",
};

static const struct {
    const char *name;
    enum pub_type type;
} types[] = {
    {"hello", PUB_HELLO}, {"welcome", PUB_WELCOME}, {"pub", PUB_PUBLISH}, {"ack", PUB_ACK},
    {"error", PUB_ERROR}, {"ping", PUB_PING},       {"pong", PUB_PONG},
};

int pub_frame_next(const uint8_t *p, size_t len, uint32_t max_frame, const uint8_t **body,
                   uint32_t *body_len, size_t *consumed)
{
    if (len < PUB_PREFIX) return WIRE_EAGAIN;
    uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    /* Judge the prefix before the body arrives: the broker can refuse at once. */
    if (n == 0) return WIRE_EMALFORMED;
    if (n > max_frame) return WIRE_ETOOBIG;
    if (len - PUB_PREFIX < n) return WIRE_EAGAIN;
    *body = p + PUB_PREFIX;
    *body_len = n;
    *consumed = PUB_PREFIX + (size_t)n;
    return WIRE_OK;
}

/* ---- decoding -------------------------------------------------------------------------------- */

struct dec {
    const uint8_t *body;
    size_t len;
    size_t offs[K_N];
};

static struct wire__rd at(const struct dec *d, int k)
{
    struct wire__rd r = {d->body, d->len, d->offs[k]};
    return r;
}

static int req_uint(const struct dec *d, int k, uint64_t max, uint64_t *out)
{
    if (!d->offs[k]) return WIRE_EFIELD;
    struct wire__rd r = at(d, k);
    return wire__rd_uint(&r, max, out);
}

static int req_u32(const struct dec *d, int k, uint32_t *out)
{
    uint64_t v;
    int rc = req_uint(d, k, UINT32_MAX, &v);
    if (!rc) *out = (uint32_t)v;
    return rc;
}

static int req_str(const struct dec *d, int k, struct wire_str *out)
{
    if (!d->offs[k]) return WIRE_EFIELD;
    struct wire__rd r = at(d, k);
    return wire__rd_str(&r, out);
}

static int opt_str(const struct dec *d, int k, struct wire_str *out)
{
    return d->offs[k] ? req_str(d, k, out) : WIRE_OK;
}

/* Span of the value at key k (already known to be well-formed). */
static void span(const struct dec *d, int k, const uint8_t **p, size_t *n)
{
    struct wire__rd r = at(d, k);
    (void)wire__rd_skip(&r);
    *p = d->body + d->offs[k];
    *n = r.off - d->offs[k];
}

static int dec_topics(const struct dec *d, const struct wire_limits *lim, struct pub_msg *m)
{
    struct wire__val v;
    if (!d->offs[K_TOPICS]) return WIRE_EFIELD;
    struct wire__rd r = at(d, K_TOPICS);
    if (wire__rd_val(&r, &v) || v.kind != WIRE__ARRAY || v.u == 0) return WIRE_EFIELD;
    if (v.u > lim->max_topics || v.u > WIRE_TOPICS_MAX) return WIRE_ETOOMANY;
    m->ntopics = (uint32_t)v.u;
    for (uint32_t i = 0; i < m->ntopics; i++)
        if (wire__rd_str(&r, &m->topics[i])) return WIRE_EFIELD;
    return WIRE_OK;
}

/* The ack mirrors a publish the broker accepted under its own limits, which the client may not
 * know: bound it by the storage in struct pub_msg only. */
static int dec_seqs(const struct dec *d, struct pub_msg *m)
{
    struct wire__val v;
    if (!d->offs[K_SEQS]) return WIRE_EFIELD;
    struct wire__rd r = at(d, K_SEQS);
    if (wire__rd_val(&r, &v) || v.kind != WIRE__ARRAY) return WIRE_EFIELD;
    if (v.u > WIRE_TOPICS_MAX) return WIRE_ETOOMANY;
    m->nseqs = (uint32_t)v.u;
    for (uint32_t i = 0; i < m->nseqs; i++)
        if (wire__rd_uint(&r, WIRE_SEQ_MAX, &m->seqs[i])) return WIRE_EFIELD;
    return WIRE_OK;
}

static int dec_fields(const struct dec *d, const struct wire_limits *lim, struct pub_msg *m)
{
    int rc = WIRE_OK;
    uint64_t v;
    switch (m->type) {
    case PUB_HELLO:
        if ((rc = req_u32(d, K_V, &m->version)) || (rc = opt_str(d, K_CLIENT, &m->client)))
            return rc;
        if (d->offs[K_AUTH]) span(d, K_AUTH, &m->auth, &m->auth_len);
        return WIRE_OK;
    case PUB_WELCOME:
        if ((rc = req_u32(d, K_V, &m->version)) || (rc = req_str(d, K_EPOCH, &m->epoch)) ||
            (rc = req_str(d, K_SERVER, &m->server)) ||
            (rc = req_u32(d, K_MAX_FRAME, &m->max_frame)) ||
            (rc = req_u32(d, K_MAX_TOPICS, &m->max_topics)) ||
            (rc = req_u32(d, K_MAX_DATA, &m->max_data)))
            return rc;
        /* Optional: brokers before 0.1.0's final protocol did not send it (0 = unknown). */
        if (d->offs[K_MAX_TOPIC] && (rc = req_u32(d, K_MAX_TOPIC, &m->max_topic))) return rc;
        return WIRE_OK;
    case PUB_PUBLISH:
        if ((rc = req_uint(d, K_ID, WIRE_SEQ_MAX, &m->id)) || (rc = dec_topics(d, lim, m)))
            return rc;
        if (d->offs[K_DATA]) {
            span(d, K_DATA, &m->data, &m->data_len);
            if ((rc = wire_data_check(m->data, m->data_len, lim)))
                return rc == WIRE_EMALFORMED ? WIRE_EDATA : rc;
        }
        if (d->offs[K_SKIP_ORIGIN]) {
            struct wire__rd r = at(d, K_SKIP_ORIGIN);
            struct wire__val b;
            if (wire__rd_val(&r, &b) || b.kind != WIRE__BOOL) return WIRE_EFIELD;
            m->skip_origin = (int)b.u;
        }
        return opt_str(d, K_ORIGIN, &m->origin);
    case PUB_ACK:
        if ((rc = req_uint(d, K_ID, WIRE_SEQ_MAX, &m->id))) return rc;
        return dec_seqs(d, m);
    case PUB_ERROR:
        if (d->offs[K_ID] && (rc = req_uint(d, K_ID, WIRE_SEQ_MAX, &m->id))) return rc;
        if ((rc = req_uint(d, K_CODE, INT32_MAX, &v))) return rc;
        m->code = (int32_t)v;
        return req_str(d, K_MSG, &m->msg);
    case PUB_PING:
    case PUB_PONG:
        return req_uint(d, K_ID, WIRE_SEQ_MAX, &m->id);
    }
    return WIRE_ETYPE;
}

int pub_decode(const uint8_t *body, size_t len, const struct wire_limits *lim, struct pub_msg *out)
{
    struct wire_limits def;
    if (!lim) {
        wire_limits_default(&def);
        lim = &def;
    }
    memset(out, 0, sizeof *out);
    if (len > lim->max_frame || len > WIRE_FRAME_MAX) return WIRE_ETOOBIG;

    struct dec d = {body, len, {0}};
    struct wire__rd r = {body, len, 0};
    if (len == 0 || wire__rd_fields(&r, keys, K_N, d.offs) || r.off != len) return WIRE_EMALFORMED;

    struct wire_str t;
    if (!d.offs[K_TYPE] || req_str(&d, K_TYPE, &t)) return WIRE_ETYPE;
    int rc = WIRE_ETYPE;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strlen(types[i].name) == t.len && memcmp(types[i].name, t.p, t.len) == 0) {
            out->type = types[i].type;
            rc = dec_fields(&d, lim, out);
            break;
        }
    }
    if (rc) {
        /* Keep only the request id, when it is readable, so the error can name the request. */
        uint64_t id = 0;
        if (d.offs[K_ID] && req_uint(&d, K_ID, WIRE_SEQ_MAX, &id)) id = 0;
        memset(out, 0, sizeof *out);
        out->id = id;
    }
    return rc;
}

void pub_msg_clear(struct pub_msg *m)
{
    /* Decoding keeps nothing today (priv stays NULL); free it anyway so the contract holds if
     * a later version of the decoder starts to own storage. */
    free(m->priv);
    m->priv = NULL;
}

/* ---- encoding -------------------------------------------------------------------------------- */

struct enc {
    struct wire_buf *out;
    size_t start;
    msgpack_packer pk;
    int err;
};

static void enc_begin(struct enc *e, struct wire_buf *out, size_t npairs, const char *type)
{
    static const uint8_t zero[PUB_PREFIX];
    e->out = out;
    e->start = out->len;
    e->err = wire_buf_append(out, zero, sizeof zero);
    msgpack_packer_init(&e->pk, out, wire__buf_write);
    e->err |= msgpack_pack_map(&e->pk, npairs);
    e->err |= msgpack_pack_str_with_body(&e->pk, "type", 4);
    e->err |= msgpack_pack_str_with_body(&e->pk, type, strlen(type));
}

static void enc_key(struct enc *e, const char *k)
{
    e->err |= msgpack_pack_str_with_body(&e->pk, k, strlen(k));
}

static void enc_str(struct enc *e, const char *k, const char *s, size_t n)
{
    enc_key(e, k);
    e->err |= msgpack_pack_str_with_body(&e->pk, s, n);
}

static void enc_uint(struct enc *e, const char *k, uint64_t v)
{
    enc_key(e, k);
    e->err |= msgpack_pack_uint64(&e->pk, v);
}

static int enc_end(struct enc *e)
{
    size_t body = e->out->len - e->start - PUB_PREFIX;
    if (e->err || body > UINT32_MAX) {
        e->out->len = e->start;
        return WIRE_ENOMEM;
    }
    uint8_t *p = e->out->data + e->start;
    p[0] = (uint8_t)(body >> 24);
    p[1] = (uint8_t)(body >> 16);
    p[2] = (uint8_t)(body >> 8);
    p[3] = (uint8_t)body;
    return WIRE_OK;
}

int pub_encode_hello(struct wire_buf *out, uint32_t version, const char *client)
{
    return pub_encode_hello_key(out, version, client, NULL);
}

int pub_encode_hello_key(struct wire_buf *out, uint32_t version, const char *client,
                         const char *key)
{
    struct enc e;
    enc_begin(&e, out, (size_t)(2 + (client != NULL) + (key != NULL)), "hello");
    enc_uint(&e, "v", version);
    if (client) enc_str(&e, "client", client, strlen(client));
    if (key) enc_str(&e, "auth", key, strlen(key));
    return enc_end(&e);
}

int pub_encode_welcome(struct wire_buf *out, uint32_t version, const char *epoch,
                       const char *server, const struct wire_limits *lim)
{
    struct enc e;
    enc_begin(&e, out, 8, "welcome");
    enc_uint(&e, "v", version);
    enc_str(&e, "epoch", epoch, strlen(epoch));
    enc_str(&e, "server", server, strlen(server));
    enc_uint(&e, "max_frame", lim->max_frame);
    enc_uint(&e, "max_topics", lim->max_topics);
    enc_uint(&e, "max_data", lim->max_data);
    enc_uint(&e, "max_topic", lim->max_topic);
    return enc_end(&e);
}

int pub_encode_publish_ex(struct wire_buf *out, uint64_t id, const struct wire_str *topics,
                          uint32_t ntopics, const uint8_t *data, size_t data_len,
                          const char *origin, int skip_origin)
{
    struct enc e;
    enc_begin(&e, out, (size_t)(3 + (data != NULL) + (origin != NULL) + (skip_origin != 0)), "pub");
    enc_uint(&e, "id", id);
    enc_key(&e, "topics");
    e.err |= msgpack_pack_array(&e.pk, ntopics);
    for (uint32_t i = 0; i < ntopics; i++)
        e.err |= msgpack_pack_str_with_body(&e.pk, topics[i].p, topics[i].len);
    if (data) {
        enc_key(&e, "data");
        e.err |= wire_buf_append(out, data, data_len); /* already msgpack: copied verbatim */
    }
    if (origin) enc_str(&e, "origin", origin, strlen(origin));
    if (skip_origin) {
        enc_key(&e, "skip_origin");
        e.err |= msgpack_pack_true(&e.pk);
    }
    return enc_end(&e);
}

int pub_encode_publish(struct wire_buf *out, uint64_t id, const struct wire_str *topics,
                       uint32_t ntopics, const uint8_t *data, size_t data_len, const char *origin)
{
    return pub_encode_publish_ex(out, id, topics, ntopics, data, data_len, origin, 0);
}

int pub_encode_ack(struct wire_buf *out, uint64_t id, const uint64_t *seqs, uint32_t nseqs)
{
    struct enc e;
    enc_begin(&e, out, 3, "ack");
    enc_uint(&e, "id", id);
    enc_key(&e, "seqs");
    e.err |= msgpack_pack_array(&e.pk, nseqs);
    for (uint32_t i = 0; i < nseqs; i++)
        e.err |= msgpack_pack_uint64(&e.pk, seqs[i]);
    return enc_end(&e);
}

int pub_encode_error(struct wire_buf *out, uint64_t id, int32_t code, const char *msg)
{
    struct enc e;
    enc_begin(&e, out, id ? 4 : 3, "error");
    if (id) enc_uint(&e, "id", id);
    enc_key(&e, "code");
    e.err |= msgpack_pack_int32(&e.pk, code);
    enc_str(&e, "msg", msg, strlen(msg));
    return enc_end(&e);
}

int pub_encode_ping(struct wire_buf *out, uint64_t id)
{
    struct enc e;
    enc_begin(&e, out, 2, "ping");
    enc_uint(&e, "id", id);
    return enc_end(&e);
}

int pub_encode_pong(struct wire_buf *out, uint64_t id)
{
    struct enc e;
    enc_begin(&e, out, 2, "pong");
    enc_uint(&e, "id", id);
    return enc_end(&e);
}

int pub_encode_msg(struct wire_buf *out, const struct pub_msg *m)
{
    int ok = 1, rc = WIRE_ETYPE;
    char *a = NULL, *b = NULL;
    switch (m->type) {
    case PUB_HELLO:
        a = wire__strdup(m->client, &ok);
        if (ok) rc = pub_encode_hello(out, m->version, a);
        break;
    case PUB_WELCOME: {
        struct wire_limits l = {m->max_frame, m->max_topic, m->max_data, m->max_topics};
        a = wire__strdup(m->epoch, &ok);
        b = wire__strdup(m->server, &ok);
        if (ok) rc = pub_encode_welcome(out, m->version, a ? a : "", b ? b : "", &l);
        break;
    }
    case PUB_PUBLISH:
        a = wire__strdup(m->origin, &ok);
        if (ok)
            rc = pub_encode_publish_ex(out, m->id, m->topics, m->ntopics, m->data, m->data_len, a,
                                       m->skip_origin);
        break;
    case PUB_ACK:
        rc = pub_encode_ack(out, m->id, m->seqs, m->nseqs);
        break;
    case PUB_ERROR:
        a = wire__strdup(m->msg, &ok);
        if (ok) rc = pub_encode_error(out, m->id, m->code, a ? a : "");
        break;
    case PUB_PING:
        rc = pub_encode_ping(out, m->id);
        break;
    case PUB_PONG:
        rc = pub_encode_pong(out, m->id);
        break;
    }
    free(a);
    free(b);
    return ok ? rc : WIRE_ENOMEM;
}
