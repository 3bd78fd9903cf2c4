/* nws: the nudge adapter of the load generator (peer.h). Subscribers speak WebSocket with the
 * JSON (nudge.json.v1) or msgpack (nudge.msgpack.v1) subprotocol through a hand-rolled client
 * (frames masked with a zero mask, as bench.c's); publishers speak the TCP publisher protocol
 * (length-prefixed msgpack, docs/protocol.md §Publisher protocol).
 *
 * The subscriber read path is the generator's hot loop (it must absorb ~2M hints/s on one
 * core), so a hint is not decoded: a scan reads its topic, seq and "n" where the broker's
 * encoder puts them (JSON: fixed key order; msgpack: a walk over a flat map of strings and
 * integers) and anything that does not look exactly like that goes through sub_decode, as do
 * the few other messages (welcome, subscribed, reset, error). Acks take the same kind of shortcut.
 * Topic i is "bench:i". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"
#include "pub.h"
#include "sub.h"
#include "wire.h"
#include "wsc.h"

#define NWS_PREFIX "bench:"
#define NWS_SUB_CHUNK 64 /* topics per sub message: the broker's default max_topics */

enum nws_phase { NWS_UPGRADE, NWS_OPEN, NWS_READY };

struct nws {
    enum nws_phase phase;
    enum sub_fmt fmt;
    uint32_t *topics, n; /* subscriber: what it subscribes to (copied) */
    uint64_t *seqs;      /* resume positions or NULL */
    uint64_t epoch;      /* of those positions */
    uint64_t epoch_now;  /* from welcome */
    uint32_t subscribed; /* subscribed answers seen */
    uint64_t next_id;    /* publisher: next publish id */
};

/* ---- small helpers ------------------------------------------------------------------------ */

static int nws_topic(const uint8_t *p, size_t n, uint32_t *t)
{
    size_t k = sizeof(NWS_PREFIX) - 1;
    if (n <= k || n > k + 10 || memcmp(p, NWS_PREFIX, k) != 0) return -1;
    uint64_t v = 0;
    for (size_t i = k; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    if (v > UINT32_MAX) return -1;
    *t = (uint32_t)v;
    return 0;
}

static int nws_put_wire(struct pbuf *out, int ws_op, struct wire_buf *b)
{
    int rc =
        ws_op ? wsc_frame(out, (uint8_t)ws_op, b->data, b->len) : pbuf_put(out, b->data, b->len);
    wire_buf_reset(b);
    return rc;
}

static uint64_t nws_hex64(const char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n && i < 16; i++) {
        char c = p[i];
        v = v << 4 | (uint64_t)(c >= 'a' ? c - 'a' + 10 : c >= 'A' ? c - 'A' + 10 : c - '0');
    }
    return v;
}

/* The fields the fast paths want from a flat msgpack map. */
struct mpf {
    const uint8_t *type, *topic;
    size_t type_len, topic_len;
    uint64_t seq, n, last; /* "seq", "n", the last element of "seqs" */
    int has_seq;
};

static int mp_uint(const uint8_t **pp, const uint8_t *end, uint64_t *v)
{
    const uint8_t *p = *pp;
    if (p >= end) return -1;
    uint8_t c = *p++;
    size_t k;
    if (c <= 0x7f) {
        *v = c;
        *pp = p;
        return 0;
    }
    if (c == 0xcc)
        k = 1;
    else if (c == 0xcd)
        k = 2;
    else if (c == 0xce)
        k = 4;
    else if (c == 0xcf)
        k = 8;
    else
        return -1;
    if ((size_t)(end - p) < k) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < k; i++)
        x = x << 8 | p[i];
    *v = x;
    *pp = p + k;
    return 0;
}

static int mp_str(const uint8_t **pp, const uint8_t *end, const uint8_t **s, size_t *len)
{
    const uint8_t *p = *pp;
    if (p >= end) return -1;
    uint8_t c = *p++;
    size_t l;
    if ((c & 0xe0) == 0xa0) {
        l = c & 0x1f;
    } else if (c == 0xd9 && p < end) {
        l = *p++;
    } else if (c == 0xda && end - p >= 2) {
        l = (size_t)p[0] << 8 | p[1];
        p += 2;
    } else {
        return -1;
    }
    if ((size_t)(end - p) < l) return -1;
    *s = p;
    *len = l;
    *pp = p + l;
    return 0;
}

/* Walk a map of string keys whose values are strings, unsigned integers, booleans or an array
 * of unsigned integers; -1 on anything else (the caller decodes properly then). */
static int mp_fields(const uint8_t *p, size_t n, struct mpf *f)
{
    const uint8_t *end = p + n;
    memset(f, 0, sizeof(*f));
    if (!n || (p[0] & 0xf0) != 0x80) return -1;
    unsigned pairs = p[0] & 0x0f;
    p++;
    for (unsigned i = 0; i < pairs; i++) {
        const uint8_t *k;
        size_t kl;
        if (mp_str(&p, end, &k, &kl) < 0 || p >= end) return -1;
        uint8_t c = *p;
        if ((c & 0xe0) == 0xa0 || c == 0xd9 || c == 0xda) {
            const uint8_t *s;
            size_t sl;
            if (mp_str(&p, end, &s, &sl) < 0) return -1;
            if (kl == 4 && !memcmp(k, "type", 4)) {
                f->type = s;
                f->type_len = sl;
            } else if (kl == 5 && !memcmp(k, "topic", 5)) {
                f->topic = s;
                f->topic_len = sl;
            }
        } else if (c == 0xc2 || c == 0xc3) {
            p++;
        } else if ((c & 0xf0) == 0x90) {
            unsigned m = c & 0x0f;
            p++;
            for (unsigned j = 0; j < m; j++)
                if (mp_uint(&p, end, &f->last) < 0) return -1;
        } else {
            uint64_t v;
            if (mp_uint(&p, end, &v) < 0) return -1;
            if (kl == 3 && !memcmp(k, "seq", 3)) {
                f->seq = v;
                f->has_seq = 1;
            } else if (kl == 1 && k[0] == 'n') {
                f->n = v;
            }
        }
    }
    return p == end ? 0 : -1;
}

static uint64_t dec(const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    while (p < end && *p >= '0' && *p <= '9')
        v = v * 10 + (uint64_t)(*p++ - '0');
    *pp = p;
    return v;
}

enum nws_kind { NWS_OTHER, NWS_HINT, NWS_SUBSCRIBED };

/* A hint's or a subscribed's topic, seq (and a hint's covers) without decoding it; NWS_OTHER
 * when the message must be decoded. JSON: the broker's encoder writes "type" first; the other
 * keys are found by their text ("n" comes after "data", whose stamp holds no quote). */
static enum nws_kind nws_scan(enum sub_fmt fmt, const uint8_t *p, size_t n, uint32_t *topic,
                              uint64_t *seq, uint64_t *covers)
{
    enum nws_kind k;
    if (fmt == SUB_MSGPACK) {
        struct mpf f;
        if (mp_fields(p, n, &f) < 0 || !f.has_seq || !f.topic ||
            nws_topic(f.topic, f.topic_len, topic) < 0)
            return NWS_OTHER;
        if (f.type_len == 4 && !memcmp(f.type, "hint", 4))
            k = NWS_HINT;
        else if (f.type_len == 10 && !memcmp(f.type, "subscribed", 10))
            k = NWS_SUBSCRIBED;
        else
            return NWS_OTHER;
        *seq = f.seq;
        *covers = f.n > 1 ? f.n : 1;
        return k;
    }
    static const char th[] = "{\"type\":\"hint\",", ts[] = "{\"type\":\"subscribed\",";
    static const char tk[] = "\"topic\":\"" NWS_PREFIX, sk[] = "\"seq\":";
    if (n > sizeof(th) - 1 && !memcmp(p, th, sizeof(th) - 1))
        k = NWS_HINT;
    else if (n > sizeof(ts) - 1 && !memcmp(p, ts, sizeof(ts) - 1))
        k = NWS_SUBSCRIBED;
    else
        return NWS_OTHER;
    const uint8_t *end = p + n, *q = memmem(p, n, tk, sizeof(tk) - 1), *d0;
    if (!q) return NWS_OTHER;
    q += sizeof(tk) - 1;
    d0 = q;
    uint64_t t = dec(&q, end);
    if (q == d0 || q - d0 > 10 || t > UINT32_MAX || q >= end || *q != '"') return NWS_OTHER;
    q = memmem(p, n, sk, sizeof(sk) - 1);
    if (!q) return NWS_OTHER;
    q += sizeof(sk) - 1;
    d0 = q;
    *seq = dec(&q, end);
    if (q == d0) return NWS_OTHER;
    *topic = (uint32_t)t;
    uint64_t c = 1;
    const uint8_t *nk = k == NWS_HINT ? memmem(q, (size_t)(end - q), "\"n\":", 4) : NULL;
    if (nk) {
        nk += 4;
        c = dec(&nk, end);
    }
    *covers = c > 1 ? c : 1;
    return k;
}

/* ---- subscribers -------------------------------------------------------------------------- */

static int nws_send_subs(struct peer_conn *c, struct nws *s)
{
    struct wire_buf b = {0};
    int op = s->fmt == SUB_MSGPACK ? 0x2 : 0x1, rc = sub_encode_hello(s->fmt, &b, 1, "nudge-bench");
    rc = rc < 0 ? rc : nws_put_wire(&c->out, op, &b);
    char epoch[17];
    snprintf(epoch, sizeof(epoch), "%016llx", (unsigned long long)s->epoch);
    for (uint32_t i = 0; rc >= 0 && i < s->n; i += NWS_SUB_CHUNK) {
        uint32_t k = s->n - i < NWS_SUB_CHUNK ? s->n - i : NWS_SUB_CHUNK;
        char names[NWS_SUB_CHUNK][24];
        struct wire_str ts[NWS_SUB_CHUNK];
        uint8_t has[NWS_SUB_CHUNK];
        int any = 0;
        for (uint32_t j = 0; j < k; j++) {
            int l = snprintf(names[j], sizeof(names[j]), NWS_PREFIX "%u", s->topics[i + j]);
            ts[j] = (struct wire_str){names[j], (uint32_t)l};
            has[j] = s->seqs && s->seqs[i + j] != 0;
            any |= has[j];
        }
        rc = sub_encode_subscribe(s->fmt, &b, 1 + i / NWS_SUB_CHUNK, ts, k, any ? epoch : NULL,
                                  any ? has : NULL, any ? s->seqs + i : NULL, 0);
        rc = rc < 0 ? rc : nws_put_wire(&c->out, op, &b);
    }
    wire_buf_free(&b);
    return rc < 0 ? -ENOMEM : 0;
}

static void nws_subscribed(struct peer_conn *c, struct nws *s, uint32_t t, uint64_t seq,
                           const struct peer_events *ev)
{
    if (ev->position) ev->position(c, t, seq, s->epoch_now);
    if (++s->subscribed == s->n) {
        s->phase = NWS_READY;
        if (ev->ready) ev->ready(c);
    }
}

/* One whole message that the fast path did not take. */
static long nws_sub_msg(struct peer_conn *c, struct nws *s, const uint8_t *p, size_t n,
                        const struct peer_events *ev)
{
    struct wire_limits lim;
    wire_limits_default(&lim);
    lim.max_frame = UINT32_MAX;
    struct sub_msg m;
    if (sub_decode(s->fmt, p, n, &lim, &m) < 0) {
        fprintf(stderr, "nudge-bench: subscriber %d: cannot decode %.*s\n", c->idx,
                (int)(n > 200 ? 200 : n), p);
        return -EPROTO;
    }
    long rc = 0;
    uint32_t t = 0;
    int has_topic = m.topic.len && nws_topic((const uint8_t *)m.topic.p, m.topic.len, &t) == 0;
    switch (m.type) {
    case SUB_WELCOME:
        s->epoch_now = nws_hex64(m.epoch.p, m.epoch.len);
        break;
    case SUB_SUBSCRIBED:
        if (!has_topic) goto bad;
        nws_subscribed(c, s, t, m.seq, ev);
        break;
    case SUB_HINT:
        if (!has_topic) goto bad;
        if (ev->message) ev->message(c, t, p, n, m.count > 1 ? m.count : 1, m.seq);
        break;
    case SUB_RESET:
        if (!has_topic) goto bad;
        if (ev->reset) ev->reset(c, t, m.seq);
        break;
    case SUB_PING: {
        struct wire_buf b = {0};
        rc = sub_encode_pong(s->fmt, &b, m.has_id, m.id);
        rc = rc < 0 ? rc : nws_put_wire(&c->out, s->fmt == SUB_MSGPACK ? 2 : 1, &b);
        wire_buf_free(&b);
        break;
    }
    case SUB_ERROR:
        fprintf(stderr, "nudge-bench: subscriber %d: error %d %.*s (topic %.*s)\n", c->idx, m.code,
                (int)m.msg.len, m.msg.p, (int)m.topic.len, m.topic.p);
        rc = -EPROTO;
        break;
    default:
        break;
    }
    sub_msg_clear(&m);
    return rc;
bad:
    fprintf(stderr, "nudge-bench: subscriber %d: unknown topic in %.*s\n", c->idx,
            (int)(n > 200 ? 200 : n), p);
    sub_msg_clear(&m);
    return -EPROTO;
}

/* NUDGE_BENCH_DECODE=1: decode every hint fully (sub_decode), the cost a real client pays. */
static int nws_decode_all = -1;
static struct wire_limits nws_lim;

/* One whole data frame from the broker (wsc_input's parse: nudged does not fragment). */
static long nws_sub_frame(struct peer_conn *c, const uint8_t *m, size_t plen,
                          const struct peer_events *ev)
{
    struct nws *s = c->st;
    uint32_t t;
    uint64_t seq, covers;
    enum nws_kind k = nws_scan(s->fmt, m, plen, &t, &seq, &covers);
    if (k == NWS_HINT) {
        if (nws_decode_all) { /* a client that parses every hint, as an app would */
            struct sub_msg dm;
            if (sub_decode(s->fmt, m, plen, &nws_lim, &dm) == 0) sub_msg_clear(&dm);
        }
        ev->message(c, t, m, plen, covers, seq);
    } else if (k == NWS_SUBSCRIBED && s->phase == NWS_OPEN) { /* a catch-up: 1,000s of them */
        nws_subscribed(c, s, t, seq, ev);
    } else {
        long rc = nws_sub_msg(c, s, m, plen, ev);
        if (rc < 0) return rc;
    }
    return (long)plen;
}

static long nws_sub_input(struct peer_conn *c, struct nws *s, const uint8_t *p, size_t n,
                          const struct peer_events *ev)
{
    long off = 0;
    if (s->phase == NWS_UPGRADE) {
        if ((off = wsc_upgraded(p, n, "subscriber", c->idx)) <= 0) return off;
        s->phase = NWS_OPEN;
        int rc = nws_send_subs(c, s);
        if (rc < 0) return rc;
    }
    long rc = wsc_input(c, p + off, n - (size_t)off, ev, nws_sub_frame, NULL);
    return rc < 0 ? rc : off + rc;
}

/* ---- publishers --------------------------------------------------------------------------- */

static long nws_pub_input(struct peer_conn *c, struct nws *s, const uint8_t *p, size_t n,
                          const struct peer_events *ev)
{
    size_t off = 0;
    for (;;) {
        const uint8_t *body;
        uint32_t bl;
        size_t used;
        int r = pub_frame_next(p + off, n - off, UINT32_MAX, &body, &bl, &used);
        if (r == WIRE_EAGAIN) break;
        if (r < 0) return -EPROTO;
        off += used;
        struct mpf f;
        if (mp_fields(body, bl, &f) == 0 && f.type_len == 3 && !memcmp(f.type, "ack", 3)) {
            if (ev->acked) ev->acked(c, 1, f.last);
            continue;
        }
        struct wire_limits lim;
        wire_limits_default(&lim);
        lim.max_frame = UINT32_MAX;
        struct pub_msg m;
        if (pub_decode(body, bl, &lim, &m) < 0) {
            fprintf(stderr, "nudge-bench: publisher %d: cannot decode a frame\n", c->idx);
            return -EPROTO;
        }
        long rc = 0;
        switch (m.type) {
        case PUB_WELCOME:
            if (s->phase != NWS_READY) {
                s->phase = NWS_READY;
                if (ev->ready) ev->ready(c);
            }
            break;
        case PUB_ACK:
            if (ev->acked) ev->acked(c, 1, m.nseqs ? m.seqs[m.nseqs - 1] : 0);
            break;
        case PUB_PING: {
            struct wire_buf b = {0};
            rc = pub_encode_pong(&b, m.id);
            rc = rc < 0 ? rc : nws_put_wire(&c->out, 0, &b);
            wire_buf_free(&b);
            break;
        }
        case PUB_ERROR:
            fprintf(stderr, "nudge-bench: publisher %d: error %d %.*s\n", c->idx, m.code,
                    (int)m.msg.len, m.msg.p);
            rc = -EPROTO;
            break;
        default:
            break;
        }
        pub_msg_clear(&m);
        if (rc < 0) return rc;
    }
    return (long)off;
}

static void mp_put_uint(uint8_t **pp, uint64_t v)
{
    uint8_t *p = *pp;
    if (v <= 0x7f) {
        *p++ = (uint8_t)v;
    } else if (v <= 0xffff) {
        *p++ = 0xcd;
        *p++ = (uint8_t)(v >> 8);
        *p++ = (uint8_t)v;
    } else if (v <= 0xffffffffu) {
        *p++ = 0xce;
        for (int i = 3; i >= 0; i--)
            *p++ = (uint8_t)(v >> (8 * i));
    } else {
        *p++ = 0xcf;
        for (int i = 7; i >= 0; i--)
            *p++ = (uint8_t)(v >> (8 * i));
    }
    *pp = p;
}

/* {"type":"pub","id":N,"topics":[...],"data":"<stamp>"}, encoded in place: this runs once per
 * publish at the offered rate. */
static int nws_publish(struct peer_conn *c, const uint32_t *topics, uint32_t n, const uint8_t *data,
                       size_t len)
{
    struct nws *s = c->st;
    if (n == 0 || n > 0xffff || len > 0xffff) return -EINVAL;
    size_t need = 64 + (size_t)n * 20 + len;
    if (c->out.cap - c->out.len < need) {
        size_t cap = c->out.cap ? c->out.cap : 256;
        while (cap - c->out.len < need)
            cap *= 2;
        uint8_t *np = realloc(c->out.p, cap);
        if (!np) return -ENOMEM;
        c->out.p = np;
        c->out.cap = cap;
    }
    uint8_t *start = c->out.p + c->out.len, *q = start + PUB_PREFIX;
    static const uint8_t head[] = {0x84, 0xa4, 't', 'y',  'p', 'e', 0xa3,
                                   'p',  'u',  'b', 0xa2, 'i', 'd'};
    memcpy(q, head, sizeof(head));
    q += sizeof(head);
    mp_put_uint(&q, ++s->next_id);
    static const uint8_t tk[] = {0xa6, 't', 'o', 'p', 'i', 'c', 's'};
    memcpy(q, tk, sizeof(tk));
    q += sizeof(tk);
    if (n < 16) {
        *q++ = (uint8_t)(0x90 | n);
    } else {
        *q++ = 0xdc;
        *q++ = (uint8_t)(n >> 8);
        *q++ = (uint8_t)n;
    }
    for (uint32_t i = 0; i < n; i++) {
        char name[24];
        int l = snprintf(name, sizeof(name), NWS_PREFIX "%u", topics[i]);
        *q++ = (uint8_t)(0xa0 | l);
        memcpy(q, name, (size_t)l);
        q += l;
    }
    static const uint8_t dk[] = {0xa4, 'd', 'a', 't', 'a'};
    memcpy(q, dk, sizeof(dk));
    q += sizeof(dk);
    if (len < 32) {
        *q++ = (uint8_t)(0xa0 | len);
    } else if (len < 256) {
        *q++ = 0xd9;
        *q++ = (uint8_t)len;
    } else {
        *q++ = 0xda;
        *q++ = (uint8_t)(len >> 8);
        *q++ = (uint8_t)len;
    }
    memcpy(q, data, len);
    q += len;
    size_t body = (size_t)(q - start) - PUB_PREFIX;
    for (int i = 0; i < 4; i++)
        start[i] = (uint8_t)(body >> (24 - 8 * i));
    c->out.len += (size_t)(q - start);
    return 0;
}

/* ---- the adapter -------------------------------------------------------------------------- */

static int nws_open(struct peer_conn *c, const struct peer_sub *sub)
{
    struct nws *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    c->st = s;
    s->fmt = c->t->msgpack ? SUB_MSGPACK : SUB_JSON;
    if (c->role == PEER_PUB) {
        struct wire_buf b = {0};
        int rc = pub_encode_hello_key(&b, 1, "nudge-bench", c->t->auth);
        rc = rc < 0 ? -ENOMEM : nws_put_wire(&c->out, 0, &b);
        wire_buf_free(&b);
        return rc;
    }
    if (!sub || !sub->n) return -EINVAL;
    s->n = sub->n;
    s->topics = malloc(sub->n * sizeof(*s->topics));
    if (!s->topics) return -ENOMEM;
    memcpy(s->topics, sub->topics, sub->n * sizeof(*s->topics));
    if (sub->seqs) {
        s->seqs = malloc(sub->n * sizeof(*s->seqs));
        if (!s->seqs) return -ENOMEM;
        memcpy(s->seqs, sub->seqs, sub->n * sizeof(*s->seqs));
        s->epoch = sub->epoch;
    }
    return wsc_upgrade(&c->out, c->t->host, c->t->sub_port, "/",
                       c->t->msgpack ? SUB_PROTO_MSGPACK : SUB_PROTO_JSON);
}

static long nws_input(struct peer_conn *c, const uint8_t *p, size_t n, const struct peer_events *ev)
{
    struct nws *s = c->st;
    if (nws_decode_all < 0) {
        const char *e = getenv("NUDGE_BENCH_DECODE");
        nws_decode_all = e && *e == '1';
        wire_limits_default(&nws_lim);
    }
    return c->role == PEER_SUB ? nws_sub_input(c, s, p, n, ev) : nws_pub_input(c, s, p, n, ev);
}

static void nws_close(struct peer_conn *c)
{
    struct nws *s = c->st;
    if (!s) return;
    free(s->topics);
    free(s->seqs);
    free(s);
    c->st = NULL;
}

const struct peer_ops peer_nudge = {
    .name = "nudge",
    .has_acks = 1,
    .has_resume = 1,
    .sub_websocket = 1,
    .open = nws_open,
    .input = nws_input,
    .publish = nws_publish,
    .close = nws_close,
};
