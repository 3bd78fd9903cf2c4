/* sio: the Socket.IO adapter of the load generator (peer.h), for bench/sio/server.js. Every
 * connection is Engine.IO v4 straight over WebSocket (GET /socket.io/?EIO=4&transport=websocket,
 * no long-polling first), carrying Socket.IO v5 packets as text frames, one packet a frame.
 *
 * Handshake: the server's open packet "0{...}", our connect to the main namespace "40", its
 * answer "40{"sid":...}". A publisher is then ready; a subscriber emits
 * 420["sub",[t,...]] (an event with ack id 0) and is ready on the ack 430[...], which the server
 * sends after joining the topics' rooms. Messages arrive as 42["m",t,"<data>"]. A publish is
 * 42<id>["pub",t,"<data>"] and the server's ack 43<id>[] is the publish's ack. Pings ("2") are
 * answered with pongs ("3"). Topic i is the number i (the server names its room "i").
 *
 * The read path matches the fixed prefix the server's encoder writes for "m" and reads the topic
 * number after it; the whole packet goes to the generator (the stamp is in its data string). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer.h"
#include "wsc.h"

#define SIO_PATH "/socket.io/?EIO=4&transport=websocket"
#define SIO_MSG "42[\"m\","

enum sio_phase { SIO_UPGRADE, SIO_OPEN, SIO_CONNECT, SIO_SUBSCRIBE, SIO_READY };

struct sio {
    enum sio_phase phase;
    uint32_t *topics, n; /* subscriber: what to subscribe to (copied) */
    uint64_t next_id;    /* publisher: the next ack id */
    uint32_t acks;       /* publisher: acks read in this input() call */
};

static long sio_bad(struct peer_conn *c, const char *what, const uint8_t *p, size_t n)
{
    fprintf(stderr, "nudge-bench: socketio %s %d: %s: %.*s\n",
            c->role == PEER_SUB ? "subscriber" : "publisher", c->idx, what,
            (int)(n > 200 ? 200 : n), p);
    return -EPROTO;
}

static int sio_send_subs(struct peer_conn *c, struct sio *s)
{
    struct pbuf b = {0};
    int rc = pbuf_printf(&b, "420[\"sub\",[");
    for (uint32_t i = 0; i < s->n && rc == 0; i++)
        rc = pbuf_printf(&b, i ? ",%u" : "%u", s->topics[i]);
    if (rc == 0) rc = pbuf_printf(&b, "]]");
    if (rc == 0) rc = wsc_frame(&c->out, WSC_TEXT, b.p, b.len);
    pbuf_free(&b);
    return rc;
}

/* One Engine.IO packet (one whole text frame); it is used entirely. */
static long sio_parse(struct peer_conn *c, const uint8_t *p, size_t n, const struct peer_events *ev)
{
    struct sio *s = c->st;
    const size_t ml = sizeof(SIO_MSG) - 1;
    if (n > ml && !memcmp(p, SIO_MSG, ml) && s->phase == SIO_READY) {
        const uint8_t *d = p + ml, *e = p + n;
        uint32_t t = 0;
        int digits = 0;
        while (d < e && *d >= '0' && *d <= '9' && digits < 10) {
            t = t * 10 + (uint32_t)(*d++ - '0');
            digits++;
        }
        if (!digits || d >= e || *d != ',') return sio_bad(c, "a message without a topic", p, n);
        ev->message(c, t, p, n, 1, 0);
        return (long)n;
    }
    if (n == 1 && p[0] == '2') { /* Engine.IO ping */
        int rc = wsc_frame(&c->out, WSC_TEXT, "3", 1);
        return rc < 0 ? rc : (long)n;
    }
    if (n >= 2 && p[0] == '4' && p[1] == '3') { /* an ack: 43<id>[...] */
        if (c->role == PEER_PUB) {
            s->acks++;
        } else if (s->phase == SIO_SUBSCRIBE && n >= 3 && p[2] == '0') {
            s->phase = SIO_READY;
            ev->ready(c);
        } else {
            return sio_bad(c, "an unexpected ack", p, n);
        }
        return (long)n;
    }
    if (n >= 1 && p[0] == '0' && s->phase == SIO_OPEN) { /* Engine.IO open */
        s->phase = SIO_CONNECT;
        int rc = wsc_frame(&c->out, WSC_TEXT, "40", 2);
        return rc < 0 ? rc : (long)n;
    }
    if (n >= 2 && p[0] == '4' && p[1] == '0' && s->phase == SIO_CONNECT) { /* connected */
        if (c->role == PEER_PUB) {
            s->phase = SIO_READY;
            ev->ready(c);
            return (long)n;
        }
        s->phase = SIO_SUBSCRIBE;
        int rc = sio_send_subs(c, s);
        return rc < 0 ? rc : (long)n;
    }
    if (n == 1 && p[0] == '3') return (long)n; /* a pong */
    return sio_bad(c, "an unexpected packet", p, n);
}

static long sio_input(struct peer_conn *c, const uint8_t *p, size_t n, const struct peer_events *ev)
{
    struct sio *s = c->st;
    size_t off = 0;
    if (s->phase == SIO_UPGRADE) {
        long h = wsc_upgraded(p, n, "socketio", c->idx);
        if (h <= 0) return h;
        off = (size_t)h;
        s->phase = SIO_OPEN;
    }
    s->acks = 0;
    long used = wsc_input(c, p + off, n - off, ev, sio_parse, NULL);
    if (s->acks && ev->acked) ev->acked(c, s->acks, 0);
    return used < 0 ? used : (long)off + used;
}

/* 42<id>["pub",<topic>,"<data>"] in one text frame per topic (the data is the stamp: plain
 * ASCII, nothing to escape). */
static int sio_publish(struct peer_conn *c, const uint32_t *topics, uint32_t n, const uint8_t *data,
                       size_t len)
{
    struct sio *s = c->st;
    for (uint32_t i = 0; i < n; i++) {
        char h[64];
        int hl = snprintf(h, sizeof(h), "42%llu[\"pub\",%u,\"", (unsigned long long)s->next_id++,
                          topics[i]);
        size_t total = (size_t)hl + len + 2;
        /* the frame header, then its payload in three pieces */
        int rc = wsc_frame_head(&c->out, WSC_TEXT, total);
        if (rc == 0) rc = pbuf_put(&c->out, h, (size_t)hl);
        if (rc == 0) rc = pbuf_put(&c->out, data, len);
        if (rc == 0) rc = pbuf_put(&c->out, "\"]", 2);
        if (rc < 0) return rc;
    }
    return 0;
}

static int sio_open(struct peer_conn *c, const struct peer_sub *sub)
{
    struct sio *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    c->st = s;
    int port = c->t->pub_port;
    if (c->role == PEER_SUB) {
        if (!sub || !sub->n) return -EINVAL;
        s->topics = malloc(sub->n * sizeof(*s->topics));
        if (!s->topics) return -ENOMEM;
        memcpy(s->topics, sub->topics, sub->n * sizeof(*s->topics));
        s->n = sub->n;
        port = c->t->sub_port;
    }
    return wsc_upgrade(&c->out, c->t->host, port, SIO_PATH, NULL);
}

static void sio_close(struct peer_conn *c)
{
    struct sio *s = c->st;
    if (!s) return;
    free(s->topics);
    free(s);
    c->st = NULL;
}

const struct peer_ops peer_socketio = {
    .name = "socketio",
    .has_acks = 1,
    .has_resume = 0,
    .sub_websocket = 1,
    .open = sio_open,
    .input = sio_input,
    .publish = sio_publish,
    .close = sio_close,
};
