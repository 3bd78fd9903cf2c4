/* nats: the NATS core adapter of the load generator (peer.h). Subscribers speak NATS over
 * WebSocket (the browser's transport, as nudge's subscribers do: nats-server's `websocket` block,
 * no TLS, no compression), publishers NATS over TCP.
 *
 * Both send CONNECT {"verbose":false,"pedantic":false} (no +OK per command), a subscriber its
 * SUB subject sid lines, then PING: the PONG that answers it comes after the server has handled
 * everything before it, so it marks ready (NATS confirms subscriptions no other way). The
 * server's INFO is read and ignored; its PINGs are answered. Core NATS has no publish ack
 * (has_acks 0): PUB subject n, payload. Topic i is the subject "bench.i".
 *
 * Over WebSocket the server's frames are one byte stream (an op may span frames, a frame may
 * hold several ops), so the protocol parser runs over wsc_input's stream, in place whenever an
 * op lies whole inside one frame. A message's MSG line is read from both ends: the subject after
 * "MSG ", the byte count after the last space. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"
#include "wsc.h"

#define NATS_PREFIX "bench."
#define NATS_LINE_MAX 4096
#define NATS_CONNECT "CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"nudge-bench\"}\r\n"

struct nats {
    int ws;       /* this connection speaks WebSocket */
    int upgraded; /* ws: the 101 has come */
    int ready;
    struct pbuf hello;    /* ws: what to send once upgraded */
    struct wsc_stream rx; /* ws: the byte stream in the frames */
};

/* Queue protocol bytes, in a frame when over WebSocket. */
static int nats_put(struct peer_conn *c, const void *p, size_t n)
{
    struct nats *s = c->st;
    return s->ws ? wsc_frame(&c->out, WSC_BINARY, p, n) : pbuf_put(&c->out, p, n);
}

static int nats_topic(const uint8_t *p, size_t n, uint32_t *t)
{
    size_t k = sizeof(NATS_PREFIX) - 1;
    if (n <= k || memcmp(p, NATS_PREFIX, k) != 0) return -1;
    return wsc_u32(p + k, n - k, t);
}

static long nats_bad(struct peer_conn *c, const uint8_t *p, size_t n)
{
    fprintf(stderr, "nudge-bench: nats %s %d: %.*s\n",
            c->role == PEER_SUB ? "subscriber" : "publisher", c->idx, (int)(n > 200 ? 200 : n), p);
    return -EPROTO;
}

/* Parse complete ops from the front of p[0..n); the bytes used. */
static long nats_parse(struct peer_conn *c, const uint8_t *p, size_t n,
                       const struct peer_events *ev)
{
    struct nats *s = c->st;
    size_t off = 0;
    while (off < n) {
        const uint8_t *l = p + off;
        size_t avail = n - off;
        const uint8_t *nl = memchr(l, '\n', avail < NATS_LINE_MAX ? avail : NATS_LINE_MAX);
        if (!nl) {
            if (avail >= NATS_LINE_MAX) return nats_bad(c, l, avail);
            break;
        }
        size_t ll = (size_t)(nl - l); /* the line without its \n */
        if (ll && l[ll - 1] == '\r') ll--;
        size_t adv = (size_t)(nl - l) + 1;
        if (ll > 4 && !memcmp(l, "MSG ", 4)) {
            const uint8_t *subj = l + 4, *se = memchr(subj, ' ', ll - 4);
            const uint8_t *sp = l + ll;
            while (sp > subj && sp[-1] != ' ')
                sp--;
            uint32_t t, bytes;
            if (!se || sp <= se || nats_topic(subj, (size_t)(se - subj), &t) < 0 ||
                wsc_u32(sp, (size_t)(l + ll - sp), &bytes) < 0)
                return nats_bad(c, l, ll);
            if (avail - adv < (size_t)bytes + 2) break;
            ev->message(c, t, l + adv, bytes, 1, 0);
            off += adv + bytes + 2;
            continue;
        }
        if (ll == 4 && !memcmp(l, "PING", 4)) {
            int rc = nats_put(c, "PONG\r\n", 6);
            if (rc < 0) return rc;
        } else if (ll == 4 && !memcmp(l, "PONG", 4)) {
            if (!s->ready) {
                s->ready = 1;
                ev->ready(c);
            }
        } else if (ll >= 4 && !memcmp(l, "-ERR", 4)) {
            return nats_bad(c, l, ll);
        } else if (!(ll >= 5 && !memcmp(l, "INFO ", 5)) && !(ll == 3 && !memcmp(l, "+OK", 3))) {
            return nats_bad(c, l, ll);
        }
        off += adv;
    }
    return (long)off;
}

static long nats_input(struct peer_conn *c, const uint8_t *p, size_t n,
                       const struct peer_events *ev)
{
    struct nats *s = c->st;
    if (!s->ws) return nats_parse(c, p, n, ev);
    size_t off = 0;
    if (!s->upgraded) {
        long h = wsc_upgraded(p, n, "nats subscriber", c->idx);
        if (h <= 0) return h;
        off = (size_t)h;
        s->upgraded = 1;
        int rc = wsc_frame(&c->out, WSC_BINARY, s->hello.p, s->hello.len);
        pbuf_free(&s->hello);
        if (rc < 0) return rc;
    }
    long used = wsc_input(c, p + off, n - off, ev, nats_parse, &s->rx);
    return used < 0 ? used : (long)off + used;
}

static int nats_publish(struct peer_conn *c, const uint32_t *topics, uint32_t n,
                        const uint8_t *data, size_t len)
{
    for (uint32_t i = 0; i < n; i++) {
        char h[64];
        int hl = snprintf(h, sizeof(h), "PUB " NATS_PREFIX "%u %zu\r\n", topics[i], len);
        int rc = pbuf_put(&c->out, h, (size_t)hl); /* publishers speak TCP */
        if (rc == 0) rc = pbuf_put(&c->out, data, len);
        if (rc == 0) rc = pbuf_put(&c->out, "\r\n", 2);
        if (rc < 0) return rc;
    }
    return 0;
}

static int nats_open(struct peer_conn *c, const struct peer_sub *sub)
{
    struct nats *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    c->st = s;
    if (c->role == PEER_PUB) return pbuf_printf(&c->out, "%sPING\r\n", NATS_CONNECT);
    if (!sub || !sub->n) return -EINVAL;
    s->ws = 1;
    int rc = pbuf_printf(&s->hello, "%s", NATS_CONNECT);
    for (uint32_t i = 0; i < sub->n && rc == 0; i++)
        rc = pbuf_printf(&s->hello, "SUB " NATS_PREFIX "%u %u\r\n", sub->topics[i], i + 1);
    if (rc == 0) rc = pbuf_printf(&s->hello, "PING\r\n");
    if (rc == 0) rc = wsc_upgrade(&c->out, c->t->host, c->t->sub_port, "/", NULL);
    return rc;
}

static void nats_close(struct peer_conn *c)
{
    struct nats *s = c->st;
    if (!s) return;
    pbuf_free(&s->hello);
    wsc_stream_free(&s->rx);
    free(s);
    c->st = NULL;
}

const struct peer_ops peer_nats = {
    .name = "nats",
    .has_acks = 0,
    .has_resume = 0,
    .sub_websocket = 1,
    .open = nats_open,
    .input = nats_input,
    .publish = nats_publish,
    .close = nats_close,
};
