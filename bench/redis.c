/* redis: the Redis pub/sub adapter of the load generator (peer.h), RESP2 by hand. Redis speaks
 * no WebSocket, so its subscribers are plain TCP connections (cheaper for a broker than
 * WebSocket: no framing, no masking; docs/performance.md says so beside its figures).
 *
 * Subscriber: one SUBSCRIBE with every channel; ready once a "subscribe" reply has come for
 * each. Publisher: a PING first (ready on its +PONG), then PUBLISH channel data, whose integer
 * reply (the number of receivers) is the ack. Topic i is the channel "bench:i".
 *
 * The read path is the generator's hot loop: a pushed message is matched against the fixed
 * bytes Redis writes ("*3\r\n$7\r\nmessage\r\n") and its two bulk strings are read in place;
 * the data handed to the generator is the payload alone. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"
#include "wsc.h"

#define RDS_PREFIX "bench:"
#define RDS_LINE_MAX 65536 /* an incomplete reply longer than this is an error */

struct rds {
    uint32_t want; /* subscriber: subscribe replies still to come */
    int ready;
};

/* "<c><integer>\r\n" at *pp: 1 and *v (pp moved past it), 0 when incomplete, -1 when not. */
static int rds_num(const uint8_t **pp, const uint8_t *end, uint8_t c, long long *v)
{
    const uint8_t *p = *pp;
    if (p >= end) return 0;
    if (*p != c) return -1;
    p++;
    int neg = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    long long x = 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9' && digits < 18) {
        x = x * 10 + (*p++ - '0');
        digits++;
    }
    if (end - p < 2) return 0;
    if (!digits || p[0] != '\r' || p[1] != '\n') return -1;
    *v = neg ? -x : x;
    *pp = p + 2;
    return 1;
}

/* A bulk string "$len\r\n<bytes>\r\n" at *pp: 1 with s, len; 0 incomplete; -1 malformed. */
static int rds_bulk(const uint8_t **pp, const uint8_t *end, const uint8_t **s, size_t *len)
{
    const uint8_t *p = *pp;
    long long l;
    int r = rds_num(&p, end, '$', &l);
    if (r <= 0) return r;
    if (l < 0) return -1;
    if ((size_t)(end - p) < (size_t)l + 2) return 0;
    if (p[l] != '\r' || p[l + 1] != '\n') return -1;
    *s = p;
    *len = (size_t)l;
    *pp = p + l + 2;
    return 1;
}

static int rds_topic(const uint8_t *p, size_t n, uint32_t *t)
{
    size_t k = sizeof(RDS_PREFIX) - 1;
    if (n <= k || memcmp(p, RDS_PREFIX, k) != 0) return -1;
    return wsc_u32(p + k, n - k, t);
}

/* An error reply ("-ERR ...\r\n") at p: print it. */
static long rds_error(struct peer_conn *c, const uint8_t *p, size_t n)
{
    const uint8_t *e = memchr(p, '\r', n);
    if (!e && n < RDS_LINE_MAX) return 0;
    fprintf(stderr, "nudge-bench: redis %s %d: %.*s\n",
            c->role == PEER_SUB ? "subscriber" : "publisher", c->idx, e ? (int)(e - p) : 200, p);
    return -EPROTO;
}

static long rds_sub_input(struct peer_conn *c, struct rds *s, const uint8_t *p, size_t n,
                          const struct peer_events *ev)
{
    static const char msg[] = "*3\r\n$7\r\nmessage\r\n";
    const size_t ml = sizeof(msg) - 1;
    const uint8_t *end = p + n, *q = p;
    while (q < end) {
        const uint8_t *r = q, *ch, *data;
        size_t chl, dl;
        int rc;
        if ((size_t)(end - r) >= ml && !memcmp(r, msg, ml)) {
            r += ml;
            if ((rc = rds_bulk(&r, end, &ch, &chl)) <= 0) goto partial;
            if ((rc = rds_bulk(&r, end, &data, &dl)) <= 0) goto partial;
            uint32_t t;
            if (rds_topic(ch, chl, &t) < 0) goto bad;
            ev->message(c, t, data, dl, 1, 0);
            q = r;
            continue;
        }
        if (*r == '-') {
            long e = rds_error(c, r, (size_t)(end - r));
            if (e == 0) break;
            return e;
        }
        /* anything else must be a subscribe confirmation: *3 $9 subscribe $ channel :count */
        long long k, count;
        const uint8_t *kind;
        size_t kl;
        if ((rc = rds_num(&r, end, '*', &k)) <= 0) goto partial;
        if (k != 3) goto bad;
        if ((rc = rds_bulk(&r, end, &kind, &kl)) <= 0) goto partial;
        if ((rc = rds_bulk(&r, end, &ch, &chl)) <= 0) goto partial;
        if ((rc = rds_num(&r, end, ':', &count)) <= 0) goto partial;
        if (kl != 9 || memcmp(kind, "subscribe", 9) != 0) goto bad;
        q = r;
        if (s->want && --s->want == 0 && !s->ready) {
            s->ready = 1;
            ev->ready(c);
        }
        continue;
    partial:
        if (rc < 0) goto bad;
        if (end - q > RDS_LINE_MAX) goto bad;
        break;
    }
    return (long)(q - p);
bad:
    fprintf(stderr, "nudge-bench: redis subscriber %d: unexpected reply %.*s\n", c->idx,
            (int)(end - q > 120 ? 120 : end - q), q);
    return -EPROTO;
}

static long rds_pub_input(struct peer_conn *c, struct rds *s, const uint8_t *p, size_t n,
                          const struct peer_events *ev)
{
    const uint8_t *end = p + n, *q = p;
    uint32_t acks = 0;
    long rc = 0;
    while (q < end) {
        if (*q == ':') {
            long long v;
            int r = rds_num(&q, end, ':', &v);
            if (r == 0) break;
            if (r < 0) goto bad;
            acks++;
            continue;
        }
        if (*q == '+') {
            if (end - q < 7) break;
            if (memcmp(q, "+PONG\r\n", 7) != 0) goto bad;
            q += 7;
            if (!s->ready) {
                s->ready = 1;
                ev->ready(c);
            }
            continue;
        }
        if (*q == '-') {
            rc = rds_error(c, q, (size_t)(end - q));
            if (rc == 0) break;
            return rc;
        }
        goto bad;
    }
    if (acks && ev->acked) ev->acked(c, acks, 0);
    return (long)(q - p);
bad:
    fprintf(stderr, "nudge-bench: redis publisher %d: unexpected reply %.*s\n", c->idx,
            (int)(end - q > 120 ? 120 : end - q), q);
    return -EPROTO;
}

static long rds_input(struct peer_conn *c, const uint8_t *p, size_t n, const struct peer_events *ev)
{
    struct rds *s = c->st;
    return c->role == PEER_SUB ? rds_sub_input(c, s, p, n, ev) : rds_pub_input(c, s, p, n, ev);
}

/* Decimal digits of v into b (no NUL); their count. */
static size_t rds_dec(char *b, uint64_t v)
{
    char t[20];
    size_t n = 0;
    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        b[i] = t[n - 1 - i];
    return n;
}

/* *3 $7 PUBLISH $<l> bench:<i> $<len> <data>, per topic; built in place (this runs at the
 * offered rate). */
static int rds_publish(struct peer_conn *c, const uint32_t *topics, uint32_t n, const uint8_t *data,
                       size_t len)
{
    for (uint32_t i = 0; i < n; i++) {
        char h[96], name[32];
        size_t nl = sizeof(RDS_PREFIX) - 1, hl = 0;
        memcpy(name, RDS_PREFIX, nl);
        nl += rds_dec(name + nl, topics[i]);
        static const char cmd[] = "*3\r\n$7\r\nPUBLISH\r\n$";
        memcpy(h, cmd, sizeof(cmd) - 1);
        hl = sizeof(cmd) - 1;
        hl += rds_dec(h + hl, nl);
        h[hl++] = '\r';
        h[hl++] = '\n';
        memcpy(h + hl, name, nl);
        hl += nl;
        memcpy(h + hl, "\r\n$", 3);
        hl += 3;
        hl += rds_dec(h + hl, len);
        h[hl++] = '\r';
        h[hl++] = '\n';
        int rc = pbuf_put(&c->out, h, hl);
        if (rc == 0) rc = pbuf_put(&c->out, data, len);
        if (rc == 0) rc = pbuf_put(&c->out, "\r\n", 2);
        if (rc < 0) return rc;
    }
    return 0;
}

static int rds_open(struct peer_conn *c, const struct peer_sub *sub)
{
    struct rds *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    c->st = s;
    if (c->role == PEER_PUB) return pbuf_put(&c->out, "*1\r\n$4\r\nPING\r\n", 14);
    if (!sub || !sub->n) return -EINVAL;
    s->want = sub->n;
    int rc = pbuf_printf(&c->out, "*%u\r\n$9\r\nSUBSCRIBE\r\n", sub->n + 1);
    for (uint32_t i = 0; i < sub->n && rc == 0; i++) {
        char name[32];
        int l = snprintf(name, sizeof(name), RDS_PREFIX "%u", sub->topics[i]);
        rc = pbuf_printf(&c->out, "$%d\r\n%s\r\n", l, name);
    }
    return rc;
}

static void rds_close(struct peer_conn *c)
{
    free(c->st);
    c->st = NULL;
}

const struct peer_ops peer_redis = {
    .name = "redis",
    .has_acks = 1,
    .has_resume = 0,
    .sub_websocket = 0,
    .open = rds_open,
    .input = rds_input,
    .publish = rds_publish,
    .close = rds_close,
};
