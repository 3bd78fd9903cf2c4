/* mqtt: the MQTT 3.1.1 adapter of the load generator (peer.h), for Mosquitto. Subscribers speak
 * MQTT over WebSocket (subprotocol "mqtt", masked client frames: the browser's transport, as
 * nudge's subscribers), publishers MQTT over plain TCP.
 *
 * Both open with CONNECT (clean session, an empty client id: the broker assigns one, so runs and
 * reconnects never collide), wait for CONNACK; a subscriber then sends one SUBSCRIBE at QoS 0
 * with all its topics and is ready on the SUBACK (every return code must grant QoS 0); a
 * publisher is ready on the CONNACK. Publishes are QoS 0: MQTT acknowledges nothing at QoS 0
 * (has_acks 0). Topic i is "bench/i".
 *
 * Keepalive: CONNECT asks for MQTT_KEEPALIVE s and the adapter sends a PINGREQ when half of it
 * has passed since its last packet. The adapter has no timer (peer.h gives it none), so it looks
 * at the clock when it reads or publishes: a connection idle for 1.5 keepalives (15 minutes, far
 * beyond a benchmark step) would be dropped by the broker.
 *
 * Over WebSocket the server's frames are one byte stream (wsc_input's stream): Mosquitto writes
 * a packet per frame, so the parser runs in place on each frame's payload. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "peer.h"
#include "wsc.h"

#define MQTT_PREFIX "bench/"
#define MQTT_KEEPALIVE 600 /* s */
#define MQTT_PACKET_MAX (1u << 20)

struct mqtt {
    int ws;       /* this connection speaks WebSocket */
    int upgraded; /* ws: the 101 has come */
    int ready;
    uint8_t *sub; /* subscriber: its SUBSCRIBE packet, sent after the CONNACK */
    size_t sub_len;
    time_t last_tx;       /* CLOCK_MONOTONIC_COARSE s of the last packet sent */
    struct wsc_stream rx; /* ws: the byte stream in the frames */
};

/* CONNECT: protocol "MQTT" level 4, clean session, keepalive, an empty client id. */
static const uint8_t mqtt_connect[] = {
    0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, MQTT_KEEPALIVE >> 8, MQTT_KEEPALIVE & 0xff, 0, 0};

static time_t mqtt_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return ts.tv_sec;
}

/* Queue a packet, in a frame when over WebSocket. */
static int mqtt_put(struct peer_conn *c, const void *p, size_t n)
{
    struct mqtt *s = c->st;
    s->last_tx = mqtt_now();
    return s->ws ? wsc_frame(&c->out, WSC_BINARY, p, n) : pbuf_put(&c->out, p, n);
}

static int mqtt_keepalive(struct peer_conn *c)
{
    struct mqtt *s = c->st;
    if (mqtt_now() - s->last_tx < MQTT_KEEPALIVE / 2) return 0;
    static const uint8_t ping[] = {0xc0, 0x00};
    return mqtt_put(c, ping, sizeof(ping));
}

/* The remaining length n in MQTT's varint at p; the bytes it took. */
static size_t mqtt_len_put(uint8_t *p, size_t n)
{
    size_t k = 0;
    do {
        uint8_t b = (uint8_t)(n & 0x7f);
        n >>= 7;
        p[k++] = (uint8_t)(b | (n ? 0x80 : 0));
    } while (n);
    return k;
}

static int mqtt_topic(const uint8_t *p, size_t n, uint32_t *t)
{
    size_t k = sizeof(MQTT_PREFIX) - 1;
    if (n <= k || memcmp(p, MQTT_PREFIX, k) != 0) return -1;
    return wsc_u32(p + k, n - k, t);
}

static long mqtt_bad(struct peer_conn *c, const char *what, unsigned v)
{
    fprintf(stderr, "nudge-bench: mqtt %s %d: %s (%u)\n",
            c->role == PEER_SUB ? "subscriber" : "publisher", c->idx, what, v);
    return -EPROTO;
}

/* Parse complete packets from the front of p[0..n); the bytes used. */
static long mqtt_parse(struct peer_conn *c, const uint8_t *p, size_t n,
                       const struct peer_events *ev)
{
    struct mqtt *s = c->st;
    size_t off = 0;
    while (n - off >= 2) {
        const uint8_t *f = p + off;
        size_t avail = n - off, rl = 0, hl = 1;
        int shift = 0;
        for (;;) {
            if (hl >= avail) return (long)off; /* the length is not all here */
            uint8_t b = f[hl++];
            rl |= (size_t)(b & 0x7f) << shift;
            if (!(b & 0x80)) break;
            shift += 7;
            if (shift > 21) return mqtt_bad(c, "a bad remaining length", 0);
        }
        if (rl > MQTT_PACKET_MAX) return mqtt_bad(c, "a packet too large", (unsigned)rl);
        if (avail - hl < rl) break;
        const uint8_t *v = f + hl;
        off += hl + rl;
        switch (f[0] >> 4) {
        case 3: { /* PUBLISH */
            if (rl < 2) return mqtt_bad(c, "a short PUBLISH", (unsigned)rl);
            size_t tl = (size_t)v[0] << 8 | v[1], skip = 2 + tl + (((f[0] >> 1) & 3) ? 2 : 0);
            uint32_t t;
            if (skip > rl || mqtt_topic(v + 2, tl, &t) < 0)
                return mqtt_bad(c, "a PUBLISH to an unknown topic", (unsigned)tl);
            ev->message(c, t, v + skip, rl - skip, 1, 0);
            break;
        }
        case 2: /* CONNACK */
            if (rl != 2 || v[1] != 0) return mqtt_bad(c, "CONNACK refused", rl == 2 ? v[1] : 0);
            if (c->role == PEER_PUB) {
                if (!s->ready) {
                    s->ready = 1;
                    ev->ready(c);
                }
            } else if (s->sub) {
                int rc = mqtt_put(c, s->sub, s->sub_len);
                free(s->sub);
                s->sub = NULL;
                if (rc < 0) return rc;
            }
            break;
        case 9: /* SUBACK */
            for (size_t i = 2; i < rl; i++)
                if (v[i] != 0) return mqtt_bad(c, "SUBACK refused a topic", v[i]);
            if (!s->ready) {
                s->ready = 1;
                ev->ready(c);
            }
            break;
        case 13: /* PINGRESP */
            break;
        default:
            return mqtt_bad(c, "an unexpected packet", f[0]);
        }
    }
    return (long)off;
}

static long mqtt_input(struct peer_conn *c, const uint8_t *p, size_t n,
                       const struct peer_events *ev)
{
    struct mqtt *s = c->st;
    int rc = mqtt_keepalive(c);
    if (rc < 0) return rc;
    if (!s->ws) return mqtt_parse(c, p, n, ev);
    size_t off = 0;
    if (!s->upgraded) {
        long h = wsc_upgraded(p, n, "mqtt subscriber", c->idx);
        if (h <= 0) return h;
        off = (size_t)h;
        s->upgraded = 1;
        rc = mqtt_put(c, mqtt_connect, sizeof(mqtt_connect));
        if (rc < 0) return rc;
    }
    long used = wsc_input(c, p + off, n - off, ev, mqtt_parse, &s->rx);
    return used < 0 ? used : (long)off + used;
}

/* PUBLISH at QoS 0 per topic, in place (this runs at the offered rate); publishers speak TCP.
 * A publish is a packet, so it keeps the connection alive by itself. */
static int mqtt_publish(struct peer_conn *c, const uint32_t *topics, uint32_t n,
                        const uint8_t *data, size_t len)
{
    struct mqtt *s = c->st;
    int rc = 0;
    s->last_tx = mqtt_now();
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        char name[32];
        int tl = snprintf(name, sizeof(name), MQTT_PREFIX "%u", topics[i]);
        uint8_t h[48];
        h[0] = 0x30;
        size_t hl = 1 + mqtt_len_put(h + 1, 2 + (size_t)tl + len);
        h[hl++] = 0;
        h[hl++] = (uint8_t)tl;
        memcpy(h + hl, name, (size_t)tl);
        hl += (size_t)tl;
        rc = pbuf_put(&c->out, h, hl);
        if (rc == 0) rc = pbuf_put(&c->out, data, len);
    }
    return rc;
}

static int mqtt_open(struct peer_conn *c, const struct peer_sub *sub)
{
    struct mqtt *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    c->st = s;
    s->last_tx = mqtt_now();
    if (c->role == PEER_PUB) {
        return pbuf_put(&c->out, mqtt_connect, sizeof(mqtt_connect));
    }
    if (!sub || !sub->n) return -EINVAL;
    const char *tcp = getenv("NUDGE_BENCH_MQTT_TCP"); /* set and not "0": subscribers over TCP */
    s->ws = !tcp || !*tcp || !strcmp(tcp, "0");
    /* SUBSCRIBE: packet id 1, then per topic its length, name and QoS 0 */
    size_t rl = 2;
    for (uint32_t i = 0; i < sub->n; i++)
        rl += 2 + (size_t)snprintf(NULL, 0, MQTT_PREFIX "%u", sub->topics[i]) + 1;
    s->sub = malloc(rl + 5);
    if (!s->sub) return -ENOMEM;
    uint8_t *q = s->sub;
    *q++ = 0x82;
    q += mqtt_len_put(q, rl);
    *q++ = 0;
    *q++ = 1;
    for (uint32_t i = 0; i < sub->n; i++) {
        char name[32];
        int tl = snprintf(name, sizeof(name), MQTT_PREFIX "%u", sub->topics[i]);
        *q++ = 0;
        *q++ = (uint8_t)tl;
        memcpy(q, name, (size_t)tl);
        q += tl;
        *q++ = 0;
    }
    s->sub_len = (size_t)(q - s->sub);
    if (!s->ws) {
        int rc = pbuf_put(&c->out, mqtt_connect, sizeof(mqtt_connect));
        return rc;
    }
    return wsc_upgrade(&c->out, c->t->host, c->t->sub_port, "/mqtt", "mqtt");
}

static void mqtt_close(struct peer_conn *c)
{
    struct mqtt *s = c->st;
    if (!s) return;
    free(s->sub);
    wsc_stream_free(&s->rx);
    free(s);
    c->st = NULL;
}

const struct peer_ops peer_mqtt = {
    .name = "mqtt",
    .has_acks = 0,
    .has_resume = 0,
    .sub_websocket = 1,
    .open = mqtt_open,
    .input = mqtt_input,
    .publish = mqtt_publish,
    .close = mqtt_close,
};
