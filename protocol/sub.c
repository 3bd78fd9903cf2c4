/* sub: the subscriber protocol codec (docs/protocol.md §Subscriber protocol).
 *
 * One message shape, two encodings. Decoding reads fields through a small "source" that is
 * either a jansson object (JSON text frames) or the offsets wire__rd_fields recorded in a msgpack
 * map (binary frames), so the rules for every field are written once and cannot drift apart
 * between the formats. Encoding likewise goes through an emitter that writes JSON text or
 * msgpack; the JSON comma logic only needs the previous byte: a member or element follows '{'
 * or '[' directly and anything else after a comma.
 *
 * Ownership: a msgpack message points into the caller's payload and owns nothing. A JSON message
 * owns a struct sub_priv (in m->priv): the jansson tree its strings point into, and the msgpack
 * form of "data" (converted once so consumers see one representation). sub_msg_clear frees it.
 * Invariant: on any decode error nothing is left allocated and *out is zeroed.
 */
#include "sub.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

enum {
    K_TYPE,
    K_V,
    K_CLIENT,
    K_TOKEN,
    K_ID,
    K_TOPICS,
    K_RESUME,
    K_TOPIC,
    K_SEQ,
    K_DATA,
    K_COUNT,
    K_OWN,
    K_REASON,
    K_CODE,
    K_MSG,
    K_CONN,
    K_EPOCH,
    K_SERVER,
    K_G,
    K_EXP,
    K_N
};

static const char *const keys[K_N] = {
    "type", "v",   "client", "token", "id",  "topics", "resume", "topic",  "seq", "data",
    "n",    "own", "reason", "code",  "msg", "conn",   "epoch",  "server", "g",   "exp",
};

static const struct {
    const char *name;
    enum sub_type type;
} types[] = {
    {"hello", SUB_HELLO},         {"welcome", SUB_WELCOME},
    {"sub", SUB_SUBSCRIBE},       {"subscribed", SUB_SUBSCRIBED},
    {"unsub", SUB_UNSUBSCRIBE},   {"unsubscribed", SUB_UNSUBSCRIBED},
    {"hint", SUB_HINT},           {"reset", SUB_RESET},
    {"error", SUB_ERROR},         {"ping", SUB_PING},
    {"pong", SUB_PONG},           {"refresh", SUB_REFRESH},
    {"refreshed", SUB_REFRESHED},
};

struct sub_priv {
    json_t *root;
    struct wire_buf data;
};

/* ---- decoding: field access over either format ----------------------------------------------- */

struct src {
    enum sub_fmt fmt;
    json_t *obj;      /* SUB_JSON */
    const uint8_t *p; /* SUB_MSGPACK */
    size_t len;
    size_t offs[K_N];
};

static json_t *jget(const struct src *s, int k)
{
    return json_object_get(s->obj, keys[k]);
}

static int has(const struct src *s, int k)
{
    return s->fmt == SUB_MSGPACK ? s->offs[k] != 0 : jget(s, k) != NULL;
}

static struct wire__rd at(const struct src *s, int k)
{
    struct wire__rd r = {s->p, s->len, s->offs[k]};
    return r;
}

/* JSON numbers: integers only; a real (1.0, 1e3) is not an id. */
static int jv_uint(const json_t *v, uint64_t max, uint64_t *out)
{
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return WIRE_EFIELD;
    *out = (uint64_t)json_integer_value(v);
    return WIRE_OK;
}

static int jv_str(const json_t *v, struct wire_str *out)
{
    if (!json_is_string(v) || json_string_length(v) > UINT32_MAX) return WIRE_EFIELD;
    out->p = json_string_value(v);
    out->len = (uint32_t)json_string_length(v);
    return WIRE_OK;
}

static int get_uint(const struct src *s, int k, uint64_t max, uint64_t *out)
{
    if (!has(s, k)) return WIRE_EFIELD;
    if (s->fmt != SUB_MSGPACK) return jv_uint(jget(s, k), max, out);
    struct wire__rd r = at(s, k);
    return wire__rd_uint(&r, max, out);
}

static int get_u32(const struct src *s, int k, uint32_t *out)
{
    uint64_t v;
    int rc = get_uint(s, k, UINT32_MAX, &v);
    if (!rc) *out = (uint32_t)v;
    return rc;
}

static int get_id(const struct src *s, struct sub_msg *m)
{
    int rc = get_uint(s, K_ID, WIRE_SEQ_MAX, &m->id);
    m->has_id = rc == WIRE_OK;
    return rc;
}

static int opt_id(const struct src *s, struct sub_msg *m)
{
    return has(s, K_ID) ? get_id(s, m) : WIRE_OK;
}

static int get_str(const struct src *s, int k, struct wire_str *out)
{
    if (!has(s, k)) return WIRE_EFIELD;
    if (s->fmt != SUB_MSGPACK) return jv_str(jget(s, k), out);
    struct wire__rd r = at(s, k);
    return wire__rd_str(&r, out);
}

static int opt_str(const struct src *s, int k, struct wire_str *out)
{
    return has(s, k) ? get_str(s, k, out) : WIRE_OK;
}

static int opt_bool(const struct src *s, int k, int *out)
{
    if (!has(s, k)) return WIRE_OK;
    if (s->fmt != SUB_MSGPACK) {
        json_t *v = jget(s, k);
        if (!json_is_boolean(v)) return WIRE_EFIELD;
        *out = json_is_true(v);
        return WIRE_OK;
    }
    struct wire__rd r = at(s, k);
    struct wire__val v;
    if (wire__rd_val(&r, &v) || v.kind != WIRE__BOOL) return WIRE_EFIELD;
    *out = (int)v.u;
    return WIRE_OK;
}

static int get_topics(const struct src *s, const struct wire_limits *lim, struct sub_msg *m)
{
    uint64_t n;
    struct wire__rd r = at(s, K_TOPICS);
    json_t *arr = NULL;
    if (!has(s, K_TOPICS)) return WIRE_EFIELD;
    if (s->fmt == SUB_MSGPACK) {
        struct wire__val v;
        if (wire__rd_val(&r, &v) || v.kind != WIRE__ARRAY) return WIRE_EFIELD;
        n = v.u;
    } else {
        arr = jget(s, K_TOPICS);
        if (!json_is_array(arr)) return WIRE_EFIELD;
        n = json_array_size(arr);
    }
    if (n == 0) return WIRE_EFIELD;
    if (n > lim->max_topics || n > WIRE_TOPICS_MAX) return WIRE_ETOOMANY;
    m->ntopics = (uint32_t)n;
    for (uint32_t i = 0; i < m->ntopics; i++) {
        int rc =
            arr ? jv_str(json_array_get(arr, i), &m->topics[i]) : wire__rd_str(&r, &m->topics[i]);
        if (rc) return rc;
    }
    return WIRE_OK;
}

/* resume.seqs names topics of this very message: mark every topics[i] equal to key. */
static int match_seq(struct sub_msg *m, const char *key, size_t klen, uint64_t seq)
{
    int found = 0;
    for (uint32_t i = 0; i < m->ntopics; i++) {
        if (m->topics[i].len == klen && memcmp(m->topics[i].p, key, klen) == 0) {
            m->has_seq[i] = 1;
            m->seqs[i] = seq;
            found = 1;
        }
    }
    return found ? WIRE_OK : WIRE_EFIELD;
}

/* resume.replay: "changes" (the default) or "all". */
static int set_replay(struct sub_msg *m, const char *p, size_t n)
{
    if (n == 7 && memcmp(p, "changes", 7) == 0) return WIRE_OK;
    if (n != 3 || memcmp(p, "all", 3) != 0) return WIRE_EFIELD;
    m->replay_all = 1;
    return WIRE_OK;
}

static int get_resume_json(json_t *res, struct sub_msg *m)
{
    json_t *seqs = json_object_get(res, "seqs");
    json_t *replay = json_object_get(res, "replay");
    const char *key;
    size_t klen;
    json_t *v;
    uint64_t seq;
    int rc;
    if (!json_is_object(res) || !json_is_object(seqs)) return WIRE_EFIELD;
    if ((rc = jv_str(json_object_get(res, "epoch"), &m->epoch))) return rc;
    if (replay) {
        struct wire_str r;
        if ((rc = jv_str(replay, &r)) || (rc = set_replay(m, r.p, r.len))) return rc;
    }
    json_object_keylen_foreach(seqs, key, klen, v)
    {
        if ((rc = jv_uint(v, WIRE_SEQ_MAX, &seq)) || (rc = match_seq(m, key, klen, seq))) return rc;
    }
    return WIRE_OK;
}

static int get_resume_mp(const struct src *s, struct sub_msg *m)
{
    static const char *const rkeys[] = {"epoch", "seqs", "replay"};
    size_t offs[3];
    struct wire__rd r = at(s, K_RESUME);
    struct wire__val v, k;
    uint64_t seq;
    int rc;
    if (wire__rd_fields(&r, rkeys, 3, offs) || !offs[0] || !offs[1]) return WIRE_EFIELD;
    r.off = offs[0];
    if ((rc = wire__rd_str(&r, &m->epoch))) return rc;
    if (offs[2]) {
        struct wire_str rs;
        r.off = offs[2];
        if ((rc = wire__rd_str(&r, &rs)) || (rc = set_replay(m, rs.p, rs.len))) return rc;
    }
    r.off = offs[1];
    if (wire__rd_val(&r, &v) || v.kind != WIRE__MAP) return WIRE_EFIELD;
    for (uint64_t i = 0; i < v.u; i++) {
        if (wire__rd_val(&r, &k) || k.kind != WIRE__STR) return WIRE_EFIELD;
        if ((rc = wire__rd_uint(&r, WIRE_SEQ_MAX, &seq)) ||
            (rc = match_seq(m, (const char *)k.s, k.n, seq)))
            return rc;
    }
    return WIRE_OK;
}

static int get_data(const struct src *s, const struct wire_limits *lim, struct sub_msg *m)
{
    int rc;
    if (!has(s, K_DATA)) return WIRE_OK;
    if (s->fmt == SUB_MSGPACK) {
        struct wire__rd r = at(s, K_DATA);
        (void)wire__rd_skip(&r); /* the whole map was checked by wire__rd_fields */
        m->data = s->p + s->offs[K_DATA];
        m->data_len = r.off - s->offs[K_DATA];
    } else {
        struct sub_priv *pv = m->priv;
        if ((rc = wire__json_pack(jget(s, K_DATA), &pv->data))) return rc;
        m->data = pv->data.data;
        m->data_len = pv->data.len;
    }
    rc = wire_data_check(m->data, m->data_len, lim);
    return rc == WIRE_EMALFORMED ? WIRE_EDATA : rc;
}

static int dec_fields(const struct src *s, const struct wire_limits *lim, struct sub_msg *m)
{
    int rc;
    uint64_t v;
    switch (m->type) {
    case SUB_HELLO:
        if ((rc = get_u32(s, K_V, &m->version)) || (rc = opt_str(s, K_CLIENT, &m->client)))
            return rc;
        return opt_str(s, K_TOKEN, &m->token);
    case SUB_WELCOME:
        if ((rc = get_u32(s, K_V, &m->version)) || (rc = get_str(s, K_CONN, &m->conn)) ||
            (rc = get_str(s, K_EPOCH, &m->epoch)))
            return rc;
        return get_str(s, K_SERVER, &m->server);
    case SUB_SUBSCRIBE:
        if ((rc = get_id(s, m)) || (rc = get_topics(s, lim, m))) return rc;
        if (!has(s, K_RESUME)) return WIRE_OK;
        return s->fmt == SUB_MSGPACK ? get_resume_mp(s, m) : get_resume_json(jget(s, K_RESUME), m);
    case SUB_SUBSCRIBED:
        if ((rc = get_id(s, m)) || (rc = get_str(s, K_TOPIC, &m->topic))) return rc;
        return get_uint(s, K_SEQ, WIRE_SEQ_MAX, &m->seq);
    case SUB_UNSUBSCRIBE:
        if ((rc = get_id(s, m))) return rc;
        return get_topics(s, lim, m);
    case SUB_UNSUBSCRIBED:
        if ((rc = get_id(s, m))) return rc;
        return get_str(s, K_TOPIC, &m->topic);
    case SUB_HINT:
        if ((rc = get_str(s, K_TOPIC, &m->topic)) ||
            (rc = get_uint(s, K_SEQ, WIRE_SEQ_MAX, &m->seq)) || (rc = get_data(s, lim, m)))
            return rc;
        m->count = 1;
        if (has(s, K_COUNT)) {
            if ((rc = get_uint(s, K_COUNT, UINT32_MAX, &v))) return rc;
            if (v == 0) return WIRE_EFIELD;
            m->count = (uint32_t)v;
        }
        return opt_bool(s, K_OWN, &m->own);
    case SUB_RESET:
        if ((rc = get_str(s, K_TOPIC, &m->topic)) ||
            (rc = get_uint(s, K_SEQ, WIRE_SEQ_MAX, &m->seq)))
            return rc;
        return get_str(s, K_REASON, &m->reason);
    case SUB_ERROR:
        if ((rc = opt_id(s, m)) || (rc = opt_str(s, K_TOPIC, &m->topic)) ||
            (rc = get_uint(s, K_CODE, INT32_MAX, &v)))
            return rc;
        m->code = (int32_t)v;
        return get_str(s, K_MSG, &m->msg);
    case SUB_PING:
        return opt_id(s, m);
    case SUB_PONG:
        if ((rc = opt_id(s, m))) return rc;
        if (!has(s, K_G)) return WIRE_OK;
        m->has_g = 1;
        return get_uint(s, K_G, WIRE_SEQ_MAX, &m->g);
    case SUB_REFRESH:
        if ((rc = opt_id(s, m))) return rc;
        return get_str(s, K_TOKEN, &m->token);
    case SUB_REFRESHED:
        if ((rc = opt_id(s, m))) return rc;
        return get_uint(s, K_EXP, WIRE_SEQ_MAX, &m->exp);
    }
    return WIRE_ETYPE;
}

/* Parse JSON text into s->obj, owned by a new struct sub_priv in m->priv. */
static int load_json(const uint8_t *p, size_t len, struct src *s, struct sub_msg *m)
{
    json_error_t err;
    /* WebSocket text frames must be UTF-8; jansson checks too, but the rule is ours. */
    if (!wire_utf8_valid((const char *)p, len)) return WIRE_EMALFORMED;
    json_t *root = json_loadb((const char *)p, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!root) {
        switch (json_error_code(&err)) {
        case json_error_numeric_overflow: /* an integer past int64: beyond 2^53-1 anyway */
            return WIRE_EFIELD;
        case json_error_out_of_memory:
            return WIRE_ENOMEM;
        default:
            return WIRE_EMALFORMED;
        }
    }
    struct sub_priv *pv = calloc(1, sizeof *pv);
    if (!pv) {
        json_decref(root);
        return WIRE_ENOMEM;
    }
    pv->root = root;
    m->priv = pv;
    if (!json_is_object(root)) return WIRE_EMALFORMED;
    s->obj = root;
    return WIRE_OK;
}

int sub_decode(enum sub_fmt fmt, const uint8_t *p, size_t len, const struct wire_limits *lim,
               struct sub_msg *out)
{
    struct wire_limits def;
    struct src s;
    struct wire_str t;
    int rc;
    if (!lim) {
        wire_limits_default(&def);
        lim = &def;
    }
    memset(out, 0, sizeof *out);
    memset(&s, 0, sizeof s);
    s.fmt = fmt == SUB_MSGPACK ? SUB_MSGPACK : SUB_JSON;
    if (len > lim->max_frame || len > WIRE_FRAME_MAX) return WIRE_ETOOBIG;

    if (s.fmt == SUB_JSON) {
        if ((rc = load_json(p, len, &s, out))) goto fail;
    } else {
        struct wire__rd r = {p, len, 0};
        s.p = p;
        s.len = len;
        if (len == 0 || wire__rd_fields(&r, keys, K_N, s.offs) || r.off != len)
            return WIRE_EMALFORMED;
    }

    rc = WIRE_ETYPE;
    if (!has(&s, K_TYPE) || get_str(&s, K_TYPE, &t)) goto fail;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strlen(types[i].name) == t.len && memcmp(types[i].name, t.p, t.len) == 0) {
            out->type = types[i].type;
            rc = dec_fields(&s, lim, out);
            break;
        }
    }
    if (rc) goto fail;
    return WIRE_OK;
fail:;
    /* Keep only the request id, when it is readable, so the error can name the request. */
    uint64_t id = 0;
    int has_id = (s.obj || s.p) && has(&s, K_ID) && !get_uint(&s, K_ID, WIRE_SEQ_MAX, &id);
    sub_msg_clear(out);
    memset(out, 0, sizeof *out);
    out->has_id = has_id;
    out->id = has_id ? id : 0;
    return rc;
}

void sub_msg_clear(struct sub_msg *m)
{
    struct sub_priv *pv = m->priv;
    if (!pv) return;
    json_decref(pv->root);
    wire_buf_free(&pv->data);
    free(pv);
    m->priv = NULL;
}

/* ---- encoding -------------------------------------------------------------------------------- */

struct em {
    enum sub_fmt f;
    struct wire_buf *b;
    size_t start;
    msgpack_packer pk;
    int err; /* first error; later writes are wasted but harmless: the buffer is cut back */
};

static void em_rc(struct em *e, int rc)
{
    if (rc && !e->err) e->err = rc;
}

/* msgpack-c reports any failure as -1: our write callback only fails for lack of memory. */
static void em_pk(struct em *e, int rc)
{
    em_rc(e, rc ? WIRE_ENOMEM : WIRE_OK);
}

static void em_raw(struct em *e, const char *s)
{
    em_rc(e, wire_buf_append(e->b, s, strlen(s)));
}

/* JSON: a comma unless this member/element is the first in its container. */
static void em_sep(struct em *e)
{
    if (e->b->len > e->start) {
        uint8_t last = e->b->data[e->b->len - 1];
        if (last != '{' && last != '[') em_raw(e, ",");
    }
}

static void em_str(struct em *e, const char *s, size_t n)
{
    if (e->f == SUB_MSGPACK)
        em_pk(e, msgpack_pack_str_with_body(&e->pk, s, n));
    else
        em_rc(e, wire__json_str(e->b, s, n));
}

static void em_key_n(struct em *e, const char *k, size_t n)
{
    if (e->f == SUB_MSGPACK) {
        em_str(e, k, n);
        return;
    }
    em_sep(e);
    em_str(e, k, n);
    em_raw(e, ":");
}

static void em_key(struct em *e, const char *k)
{
    em_key_n(e, k, strlen(k));
}

static void em_map(struct em *e, size_t npairs)
{
    if (e->f == SUB_MSGPACK)
        em_pk(e, msgpack_pack_map(&e->pk, npairs));
    else
        em_raw(e, "{");
}

static void em_array(struct em *e, size_t n)
{
    if (e->f == SUB_MSGPACK)
        em_pk(e, msgpack_pack_array(&e->pk, n));
    else
        em_raw(e, "[");
}

static void em_close(struct em *e, const char *c)
{
    if (e->f != SUB_MSGPACK) em_raw(e, c);
}

static void em_elem_str(struct em *e, const char *s, size_t n)
{
    if (e->f != SUB_MSGPACK) em_sep(e);
    em_str(e, s, n);
}

static void em_uint(struct em *e, uint64_t v)
{
    if (e->f == SUB_MSGPACK)
        em_pk(e, msgpack_pack_uint64(&e->pk, v));
    else
        em_rc(e, wire__json_uint(e->b, v));
}

static void em_kstr(struct em *e, const char *k, const char *s, size_t n)
{
    em_key(e, k);
    em_str(e, s, n);
}

static void em_kcstr(struct em *e, const char *k, const char *s)
{
    em_kstr(e, k, s, strlen(s));
}

static void em_kuint(struct em *e, const char *k, uint64_t v)
{
    em_key(e, k);
    em_uint(e, v);
}

static void em_begin(struct em *e, enum sub_fmt f, struct wire_buf *b, size_t npairs,
                     const char *type)
{
    e->f = f == SUB_MSGPACK ? SUB_MSGPACK : SUB_JSON;
    e->b = b;
    e->start = b->len;
    e->err = WIRE_OK;
    msgpack_packer_init(&e->pk, b, wire__buf_write);
    em_map(e, npairs);
    em_kcstr(e, "type", type);
}

static int em_end(struct em *e)
{
    em_close(e, "}");
    if (e->err) e->b->len = e->start;
    return e->err;
}

int sub_encode_hello(enum sub_fmt f, struct wire_buf *out, uint32_t version, const char *client)
{
    return sub_encode_hello_token(f, out, version, client, NULL);
}

int sub_encode_hello_token(enum sub_fmt f, struct wire_buf *out, uint32_t version,
                           const char *client, const char *token)
{
    struct em e;
    em_begin(&e, f, out, (size_t)(2 + (client != NULL) + (token != NULL)), "hello");
    em_kuint(&e, "v", version);
    if (client) em_kcstr(&e, "client", client);
    if (token) em_kcstr(&e, "token", token);
    return em_end(&e);
}

int sub_encode_refresh(enum sub_fmt f, struct wire_buf *out, int has_id, uint64_t id,
                       const char *token)
{
    struct em e;
    em_begin(&e, f, out, (size_t)(2 + (has_id != 0)), "refresh");
    if (has_id) em_kuint(&e, "id", id);
    em_kcstr(&e, "token", token);
    return em_end(&e);
}

int sub_encode_refreshed(enum sub_fmt f, struct wire_buf *out, int has_id, uint64_t id,
                         uint64_t exp)
{
    struct em e;
    em_begin(&e, f, out, (size_t)(2 + (has_id != 0)), "refreshed");
    if (has_id) em_kuint(&e, "id", id);
    em_kuint(&e, "exp", exp);
    return em_end(&e);
}

int sub_encode_welcome(enum sub_fmt f, struct wire_buf *out, uint32_t version, const char *conn,
                       const char *epoch, const char *server)
{
    struct em e;
    em_begin(&e, f, out, 5, "welcome");
    em_kuint(&e, "v", version);
    em_kcstr(&e, "conn", conn);
    em_kcstr(&e, "epoch", epoch);
    em_kcstr(&e, "server", server);
    return em_end(&e);
}

static void em_topics(struct em *e, const struct wire_str *topics, uint32_t ntopics)
{
    em_key(e, "topics");
    em_array(e, ntopics);
    for (uint32_t i = 0; i < ntopics; i++)
        em_elem_str(e, topics[i].p, topics[i].len);
    em_close(e, "]");
}

int sub_encode_subscribe(enum sub_fmt f, struct wire_buf *out, uint64_t id,
                         const struct wire_str *topics, uint32_t ntopics, const char *resume_epoch,
                         const uint8_t *has_seq, const uint64_t *seqs, int replay_all)
{
    struct em e;
    em_begin(&e, f, out, resume_epoch ? 4 : 3, "sub");
    em_kuint(&e, "id", id);
    em_topics(&e, topics, ntopics);
    if (resume_epoch) {
        uint32_t nseqs = 0;
        for (uint32_t i = 0; has_seq && seqs && i < ntopics; i++)
            nseqs += has_seq[i] != 0;
        em_key(&e, "resume");
        em_map(&e, replay_all ? 3 : 2);
        em_kcstr(&e, "epoch", resume_epoch);
        if (replay_all) em_kcstr(&e, "replay", "all");
        em_key(&e, "seqs");
        em_map(&e, nseqs);
        for (uint32_t i = 0; has_seq && seqs && i < ntopics; i++) {
            if (has_seq[i]) {
                em_key_n(&e, topics[i].p, topics[i].len);
                em_uint(&e, seqs[i]);
            }
        }
        em_close(&e, "}");
        em_close(&e, "}");
    }
    return em_end(&e);
}

int sub_encode_subscribed(enum sub_fmt f, struct wire_buf *out, uint64_t id, struct wire_str topic,
                          uint64_t seq)
{
    struct em e;
    em_begin(&e, f, out, 4, "subscribed");
    em_kuint(&e, "id", id);
    em_kstr(&e, "topic", topic.p, topic.len);
    em_kuint(&e, "seq", seq);
    return em_end(&e);
}

int sub_encode_unsubscribe(enum sub_fmt f, struct wire_buf *out, uint64_t id,
                           const struct wire_str *topics, uint32_t ntopics)
{
    struct em e;
    em_begin(&e, f, out, 3, "unsub");
    em_kuint(&e, "id", id);
    em_topics(&e, topics, ntopics);
    return em_end(&e);
}

int sub_encode_unsubscribed(enum sub_fmt f, struct wire_buf *out, uint64_t id,
                            struct wire_str topic)
{
    struct em e;
    em_begin(&e, f, out, 3, "unsubscribed");
    em_kuint(&e, "id", id);
    em_kstr(&e, "topic", topic.p, topic.len);
    return em_end(&e);
}

int sub_encode_hint(enum sub_fmt f, struct wire_buf *out, const struct sub_hint *h)
{
    struct em e;
    em_begin(&e, f, out, (size_t)(3 + (h->data != NULL) + (h->count > 1) + (h->own != 0)), "hint");
    em_kstr(&e, "topic", h->topic.p, h->topic.len);
    em_kuint(&e, "seq", h->seq);
    if (h->data) {
        em_key(&e, "data");
        if (e.f == SUB_MSGPACK)
            em_rc(&e, wire_buf_append(out, h->data, h->data_len));
        else
            em_rc(&e, wire_data_to_json(h->data, h->data_len, out));
    }
    if (h->count > 1) em_kuint(&e, "n", h->count);
    if (h->own) {
        em_key(&e, "own");
        if (e.f == SUB_MSGPACK)
            em_pk(&e, msgpack_pack_true(&e.pk));
        else
            em_raw(&e, "true");
    }
    return em_end(&e);
}

int sub_encode_reset(enum sub_fmt f, struct wire_buf *out, struct wire_str topic, uint64_t seq,
                     const char *reason)
{
    struct em e;
    em_begin(&e, f, out, 4, "reset");
    em_kstr(&e, "topic", topic.p, topic.len);
    em_kuint(&e, "seq", seq);
    em_kcstr(&e, "reason", reason);
    return em_end(&e);
}

int sub_encode_error(enum sub_fmt f, struct wire_buf *out, int has_id, uint64_t id,
                     struct wire_str topic, int32_t code, const char *msg)
{
    struct em e;
    em_begin(&e, f, out, (size_t)(3 + (has_id != 0) + (topic.len > 0)), "error");
    if (has_id) em_kuint(&e, "id", id);
    if (topic.len > 0) em_kstr(&e, "topic", topic.p, topic.len);
    em_key(&e, "code");
    if (e.f == SUB_MSGPACK) {
        em_pk(&e, msgpack_pack_int32(&e.pk, code));
    } else {
        char tmp[16];
        int n = snprintf(tmp, sizeof tmp, "%d", (int)code);
        em_rc(&e, wire_buf_append(out, tmp, (size_t)n));
    }
    em_kcstr(&e, "msg", msg);
    return em_end(&e);
}

static int encode_ping(enum sub_fmt f, struct wire_buf *out, const char *type, int has_id,
                       uint64_t id)
{
    struct em e;
    em_begin(&e, f, out, (size_t)(1 + (has_id != 0)), type);
    if (has_id) em_kuint(&e, "id", id);
    return em_end(&e);
}

int sub_encode_ping(enum sub_fmt f, struct wire_buf *out, int has_id, uint64_t id)
{
    return encode_ping(f, out, "ping", has_id, id);
}

int sub_encode_pong(enum sub_fmt f, struct wire_buf *out, int has_id, uint64_t id)
{
    return encode_ping(f, out, "pong", has_id, id);
}

int sub_encode_pong_g(enum sub_fmt f, struct wire_buf *out, int has_id, uint64_t id, uint64_t g)
{
    struct em e;
    em_begin(&e, f, out, (size_t)(2 + (has_id != 0)), "pong");
    if (has_id) em_kuint(&e, "id", id);
    em_kuint(&e, "g", g);
    return em_end(&e);
}

int sub_encode_msg(enum sub_fmt f, struct wire_buf *out, const struct sub_msg *m)
{
    int ok = 1, rc = WIRE_ETYPE;
    char *a = NULL, *b = NULL, *c = NULL;
    switch (m->type) {
    case SUB_HELLO:
        a = wire__strdup(m->client, &ok);
        b = wire__strdup(m->token, &ok);
        if (ok) rc = sub_encode_hello_token(f, out, m->version, a, b);
        break;
    case SUB_WELCOME:
        a = wire__strdup(m->conn, &ok);
        b = wire__strdup(m->epoch, &ok);
        c = wire__strdup(m->server, &ok);
        if (ok) rc = sub_encode_welcome(f, out, m->version, a ? a : "", b ? b : "", c ? c : "");
        break;
    case SUB_SUBSCRIBE:
        a = wire__strdup(m->epoch, &ok);
        if (ok)
            rc = sub_encode_subscribe(f, out, m->id, m->topics, m->ntopics, a, m->has_seq, m->seqs,
                                      m->replay_all);
        break;
    case SUB_SUBSCRIBED:
        rc = sub_encode_subscribed(f, out, m->id, m->topic, m->seq);
        break;
    case SUB_UNSUBSCRIBE:
        rc = sub_encode_unsubscribe(f, out, m->id, m->topics, m->ntopics);
        break;
    case SUB_UNSUBSCRIBED:
        rc = sub_encode_unsubscribed(f, out, m->id, m->topic);
        break;
    case SUB_HINT: {
        struct sub_hint h = {m->topic, m->seq, m->data, m->data_len, m->count, m->own};
        rc = sub_encode_hint(f, out, &h);
        break;
    }
    case SUB_RESET:
        a = wire__strdup(m->reason, &ok);
        if (ok) rc = sub_encode_reset(f, out, m->topic, m->seq, a ? a : "");
        break;
    case SUB_ERROR:
        a = wire__strdup(m->msg, &ok);
        if (ok) rc = sub_encode_error(f, out, m->has_id, m->id, m->topic, m->code, a ? a : "");
        break;
    case SUB_PING:
        rc = sub_encode_ping(f, out, m->has_id, m->id);
        break;
    case SUB_PONG:
        rc = m->has_g ? sub_encode_pong_g(f, out, m->has_id, m->id, m->g)
                      : sub_encode_pong(f, out, m->has_id, m->id);
        break;
    case SUB_REFRESH:
        a = wire__strdup(m->token, &ok);
        if (ok) rc = sub_encode_refresh(f, out, m->has_id, m->id, a ? a : "");
        break;
    case SUB_REFRESHED:
        rc = sub_encode_refreshed(f, out, m->has_id, m->id, m->exp);
        break;
    }
    free(a);
    free(b);
    free(c);
    return ok ? rc : WIRE_ENOMEM;
}
