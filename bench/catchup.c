/* nudge-bench catchup: what a subscriber that was away is sent when it comes back. One
 * WebSocket client follows T topics and notes each topic's seq from its `subscribed`, then
 * disconnects; a publisher (libnudge, pipelined) sends P publishes round-robin over the topics and
 * notes the newest seq of each from the acks; then the client reconnects and resumes all T from
 * its positions ("replay":"changes", the default, or "all" with --replay-all), and reads until
 * every topic is caught up: `subscribed` seen and either a hint carrying the topic's newest seq or
 * a `reset`. It counts every WebSocket frame it receives on that second connection (header and
 * payload bytes, by message type) and times it from connect() to the last topic caught up.
 *
 * The client here is a plain blocking socket (one connection; every read bounded by poll and the
 * deadline), unlike the epoll swarm of bench.c.
 *
 *   nudge-bench catchup --ws 127.0.0.1:7401 --pub 127.0.0.1:7400 [--topics T] [--publishes P]
 *                       [--window W] [--chunk C] [--replay-all] [--msgpack] [--timeout SEC]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "nudge.h"
#include "sub.h"
#include "wire.h"

#define CU_PREFIX "catchup:"

struct cu_opts {
    char ws_host[64], pub_addr[128];
    int ws_port;
    int topics, window, chunk, replay_all, msgpack, timeout_s;
    long publishes;
};

/* One client connection: a receive buffer holding [off, len) unread, frames counted from the
 * end of the 101 head on. */
struct cu_conn {
    int fd;
    size_t off, len;
    long bytes, frames; /* received after the upgrade: every frame, header included */
    long sent;          /* bytes of frames sent after the upgrade */
    uint8_t buf[1 << 16];
};

/* Counts of the resume connection, by what it received. */
struct cu_count {
    long subscribed, hints, covered, coalesced, resets, other;
    long hint_bytes, reset_bytes;
};

static int cu_wait(int fd, double deadline)
{
    for (;;) {
        double left = deadline - now_s();
        if (left <= 0) return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)(left * 1000) + 1);
        if (n > 0) return 0;
        if (n < 0 && errno != EINTR) return -1;
    }
}

/* Read more into c->buf (moving the unread part to the front first). 0, or -1 on end, error or
 * deadline. */
static int cu_fill(struct cu_conn *c, double deadline)
{
    if (c->off) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    if (c->len == sizeof(c->buf)) return -1;
    if (cu_wait(c->fd, deadline) < 0) return -1;
    ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (r <= 0) return -1;
    c->len += (size_t)r;
    return 0;
}

static int cu_open(const struct cu_opts *o, struct cu_conn *c, double deadline)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->ws_port)};
    c->off = c->len = 0;
    c->bytes = c->frames = c->sent = 0;
    if (inet_pton(AF_INET, o->ws_host, &sa.sin_addr) != 1) return -1;
    if ((c->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0) return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) return -1;
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
                     o->ws_host, o->ws_port, o->msgpack ? SUB_PROTO_MSGPACK : SUB_PROTO_JSON);
    if (send_all(c->fd, req, (size_t)n) < 0) return -1;
    uint8_t *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (cu_fill(c, deadline) < 0) return -1;
    if (c->len < 12 || memcmp(c->buf, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "nudge-bench catchup: upgrade refused: %.*s\n", (int)(end - c->buf),
                c->buf);
        return -1;
    }
    c->off = (size_t)(end - c->buf) + 4;
    return 0;
}

static int cu_send(const struct cu_opts *o, struct cu_conn *c, const struct wire_buf *b)
{
    c->sent += (long)b->len + (b->len < 126 ? 6 : 8);
    return send_frame(c->fd, o->msgpack ? 0x2 : 0x1, b->data, b->len);
}

/* The next data frame's payload (pings answered, pongs skipped). *fbytes = the frame's size on
 * the wire. 0, or -1 on close, error or deadline. */
static int cu_next(struct cu_conn *c, double deadline, const uint8_t **p, size_t *plen,
                   size_t *fbytes)
{
    for (;;) {
        size_t avail = c->len - c->off;
        const uint8_t *f = c->buf + c->off;
        size_t hl = 2, n = avail >= 2 ? f[1] & 0x7f : 0;
        int whole = avail >= 2;
        if (whole && n == 126) {
            whole = avail >= 4;
            hl = 4;
            n = whole ? ((size_t)f[2] << 8) | f[3] : 0;
        } else if (whole && n == 127) {
            whole = avail >= 10;
            hl = 10;
            n = 0;
            for (int i = 0; whole && i < 8; i++)
                n = (n << 8) | f[2 + i];
        }
        if (whole && hl + n > sizeof(c->buf)) return -1; /* larger than any nudge message */
        if (!whole || avail < hl + n) {
            if (cu_fill(c, deadline) < 0) return -1;
            continue;
        }
        c->off += hl + n;
        c->bytes += (long)(hl + n);
        c->frames++;
        switch (f[0] & 0x0f) {
        case 0x9:
            if (send_frame(c->fd, 0xA, f + hl, n) < 0) return -1;
            continue;
        case 0xA:
            continue;
        case 0x8:
            fprintf(stderr, "nudge-bench catchup: closed by the broker: %d %.*s\n",
                    n >= 2 ? (f[hl] << 8) | f[hl + 1] : 0, n > 2 ? (int)n - 2 : 0, f + hl + 2);
            return -1;
        default:
            *p = f + hl;
            *plen = n;
            *fbytes = hl + n;
            return 0;
        }
    }
}

static void cu_close(struct cu_conn *c)
{
    if (c->fd < 0) return;
    const uint8_t bye[2] = {0x03, 0xe8}; /* 1000 */
    send_frame(c->fd, 0x8, bye, sizeof(bye));
    close(c->fd);
    c->fd = -1;
}

/* Topic index of "catchup:N", -1 for anything else. */
static int cu_index(const struct cu_opts *o, struct wire_str t)
{
    size_t pl = sizeof(CU_PREFIX) - 1;
    if (t.len <= pl || t.len > pl + 9 || memcmp(t.p, CU_PREFIX, pl) != 0) return -1;
    int v = 0;
    for (size_t i = pl; i < t.len; i++) {
        if (t.p[i] < '0' || t.p[i] > '9') return -1;
        v = v * 10 + (t.p[i] - '0');
    }
    return v < o->topics ? v : -1;
}

/* Subscribe to every topic in chunks of o->chunk, with resume positions when epoch != NULL. */
static int cu_subscribe(const struct cu_opts *o, struct cu_conn *c, char (*names)[32],
                        const char *epoch, const uint64_t *seqs)
{
    struct wire_str *t = calloc((size_t)o->chunk, sizeof(*t));
    uint8_t *has = calloc((size_t)o->chunk, 1);
    struct wire_buf b = {0};
    int rc = t && has ? 0 : -1;
    for (int i = 0; rc == 0 && i < o->topics; i += o->chunk) {
        int n = o->topics - i < o->chunk ? o->topics - i : o->chunk;
        for (int j = 0; j < n; j++) {
            t[j] = (struct wire_str){names[i + j], (uint32_t)strlen(names[i + j])};
            has[j] = 1;
        }
        wire_buf_reset(&b);
        rc = sub_encode_subscribe(o->msgpack ? SUB_MSGPACK : SUB_JSON, &b, (uint64_t)i + 1, t,
                                  (uint32_t)n, epoch, epoch ? has : NULL, epoch ? seqs + i : NULL,
                                  o->replay_all);
        rc = rc < 0 ? rc : cu_send(o, c, &b);
    }
    wire_buf_free(&b);
    free(has);
    free(t);
    return rc < 0 ? -1 : 0;
}

/* Decode the next message of c. 0 or -1 (with a line on stderr). */
static int cu_msg(const struct cu_opts *o, struct cu_conn *c, double deadline, struct sub_msg *m,
                  size_t *fbytes)
{
    const uint8_t *p;
    size_t n;
    if (cu_next(c, deadline, &p, &n, fbytes) < 0) {
        fprintf(stderr, "nudge-bench catchup: connection lost or timed out\n");
        return -1;
    }
    struct wire_limits lim;
    wire_limits_default(&lim);
    if (sub_decode(o->msgpack ? SUB_MSGPACK : SUB_JSON, p, n, &lim, m) < 0) {
        fprintf(stderr, "nudge-bench catchup: undecodable message %.*s\n", (int)n, p);
        return -1;
    }
    if (m->type == SUB_ERROR) {
        fprintf(stderr, "nudge-bench catchup: error %d %.*s\n", m->code, (int)m->msg.len, m->msg.p);
        sub_msg_clear(m);
        return -1;
    }
    return 0;
}

static int cu_welcome(const struct cu_opts *o, struct cu_conn *c, double deadline, char *epoch)
{
    struct wire_buf b = {0};
    int rc = sub_encode_hello(o->msgpack ? SUB_MSGPACK : SUB_JSON, &b, 1, "nudge-bench");
    rc = rc < 0 ? -1 : cu_send(o, c, &b);
    wire_buf_free(&b);
    struct sub_msg m;
    size_t fb;
    if (rc < 0 || cu_msg(o, c, deadline, &m, &fb) < 0) return -1;
    rc = m.type == SUB_WELCOME && m.epoch.len < 32 ? 0 : -1;
    if (rc == 0) {
        memcpy(epoch, m.epoch.p, m.epoch.len);
        epoch[m.epoch.len] = '\0';
    }
    sub_msg_clear(&m);
    return rc;
}

/* Publish P round-robin over the topics; target[t] = the newest seq of topic t. */
static int cu_publish(const struct cu_opts *o, char (*names)[32], uint64_t *target)
{
    nudge_client_t *c;
    struct nudge_opts no = {.client_name = "nudge-bench", .timeout_ms = o->timeout_s * 1000};
    int rc = nudge_connect(o->pub_addr, &no, &c);
    if (rc < 0) return rc;
    const char *tp[1];
    struct nudge_pub p = {.topics = tp, .ntopics = 1};
    long inflight = 0, acked = 0;
    for (long i = 0; rc >= 0 && i < o->publishes; i++) {
        tp[0] = names[i % o->topics];
        if ((rc = nudge_send(c, &p, NULL)) < 0) break;
        if (++inflight >= o->window) {
            uint64_t id, seq;
            size_t n;
            if ((rc = nudge_recv_ack(c, &id, &seq, 1, &n)) < 0) break;
            target[acked++ % o->topics] = seq;
            inflight--;
        }
    }
    while (rc >= 0 && inflight > 0) {
        uint64_t id, seq;
        size_t n;
        if ((rc = nudge_recv_ack(c, &id, &seq, 1, &n)) < 0) break;
        target[acked++ % o->topics] = seq;
        inflight--;
    }
    if (rc < 0) fprintf(stderr, "nudge-bench catchup: publish: %s\n", nudge_last_error(c));
    nudge_close(c);
    return rc;
}

static int cu_parse(struct cu_opts *o, int argc, char **argv)
{
    *o = (struct cu_opts){
        .topics = 1000, .publishes = 100000, .window = 4096, .chunk = 64, .timeout_s = 120};
    const char *ws = "127.0.0.1:7401";
    snprintf(o->pub_addr, sizeof(o->pub_addr), "127.0.0.1:7400");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--replay-all")) {
            o->replay_all = 1;
            continue;
        }
        if (!strcmp(a, "--msgpack")) {
            o->msgpack = 1;
            continue;
        }
        if (!v) return -1;
        i++;
        if (!strcmp(a, "--ws"))
            ws = v;
        else if (!strcmp(a, "--pub"))
            snprintf(o->pub_addr, sizeof(o->pub_addr), "%s", v);
        else if (!strcmp(a, "--topics"))
            o->topics = atoi(v);
        else if (!strcmp(a, "--publishes"))
            o->publishes = atol(v);
        else if (!strcmp(a, "--window"))
            o->window = atoi(v);
        else if (!strcmp(a, "--chunk"))
            o->chunk = atoi(v);
        else if (!strcmp(a, "--timeout"))
            o->timeout_s = atoi(v);
        else
            return -1;
    }
    const char *colon = strrchr(ws, ':');
    if (!colon || (size_t)(colon - ws) >= sizeof(o->ws_host)) return -1;
    memcpy(o->ws_host, ws, (size_t)(colon - ws));
    o->ws_host[colon - ws] = '\0';
    o->ws_port = atoi(colon + 1);
    if (o->topics < 1 || o->topics > 1000000 || o->publishes < 0 || o->window < 1 || o->chunk < 1 ||
        o->chunk > WIRE_TOPICS_MAX || o->timeout_s < 1)
        return -1;
    return 0;
}

int catchup_main(int argc, char **argv)
{
    struct cu_opts o;
    if (cu_parse(&o, argc, argv) < 0) {
        fputs("usage: nudge-bench catchup --ws HOST:PORT --pub HOST:PORT [--topics T]\n"
              "                           [--publishes P] [--window W] [--chunk C]\n"
              "                           [--replay-all] [--msgpack] [--timeout SEC]\n"
              "Follow T topics (default 1000), disconnect, publish P (default 100000) round-robin\n"
              "over them, resume all T (C topics per sub message, default 64; \"replay\":\"all\"\n"
              "with --replay-all) and count what the broker sends until every topic is caught\n"
              "up. Window W (default 4096) for the publisher. Timeout 120 s.\n",
              stderr);
        return 2;
    }
    char(*names)[32] = calloc((size_t)o.topics, sizeof(*names));
    uint64_t *pos = calloc((size_t)o.topics, sizeof(*pos));
    uint64_t *target = calloc((size_t)o.topics, sizeof(*target));
    uint8_t *subd = calloc((size_t)o.topics, 1), *reached = calloc((size_t)o.topics, 1);
    struct cu_conn *c = malloc(sizeof(*c));
    struct cu_count k = {0};
    int rc = 1;
    char epoch[32], epoch2[32];
    double deadline = now_s() + o.timeout_s, t_pub = 0, t0 = 0, t_done = 0;
    if (!names || !pos || !target || !subd || !reached || !c) goto out;
    c->fd = -1;
    for (int i = 0; i < o.topics; i++)
        snprintf(names[i], sizeof(names[i]), CU_PREFIX "%d", i);

    /* 1. follow every topic, note its seq */
    if (cu_open(&o, c, deadline) < 0 || cu_welcome(&o, c, deadline, epoch) < 0 ||
        cu_subscribe(&o, c, names, NULL, NULL) < 0) {
        fprintf(stderr, "nudge-bench catchup: could not subscribe\n");
        goto out;
    }
    for (int seen = 0; seen < o.topics;) {
        struct sub_msg m;
        size_t fb;
        if (cu_msg(&o, c, deadline, &m, &fb) < 0) goto out;
        int t = m.type == SUB_SUBSCRIBED ? cu_index(&o, m.topic) : -1;
        if (t >= 0 && !subd[t]) {
            subd[t] = 1;
            pos[t] = target[t] = m.seq;
            seen++;
        }
        sub_msg_clear(&m);
    }
    cu_close(c);
    memset(subd, 0, (size_t)o.topics);

    /* 2. publish while it is away */
    t_pub = now_s();
    if (cu_publish(&o, names, target) < 0) goto out;
    t_pub = now_s() - t_pub;

    /* 3. resume every topic; done when each is subscribed and has its newest seq or a reset */
    t0 = now_s();
    if (cu_open(&o, c, deadline) < 0 || cu_welcome(&o, c, deadline, epoch2) < 0) goto out;
    if (strcmp(epoch, epoch2) != 0)
        fprintf(stderr, "nudge-bench catchup: the epoch changed (%s, now %s)\n", epoch, epoch2);
    if (cu_subscribe(&o, c, names, epoch, pos) < 0) goto out;
    for (int done = 0; done < o.topics;) {
        struct sub_msg m;
        size_t fb;
        if (cu_msg(&o, c, deadline, &m, &fb) < 0) goto out;
        int t = cu_index(&o, m.topic), was = t >= 0 && subd[t] && reached[t];
        switch (m.type) {
        case SUB_SUBSCRIBED:
            k.subscribed++;
            if (t >= 0) subd[t] = 1;
            if (t >= 0 && target[t] == pos[t]) reached[t] = 1; /* nothing to catch up */
            break;
        case SUB_HINT:
            k.hints++;
            k.covered += m.count;
            k.coalesced += m.count > 1;
            k.hint_bytes += (long)fb;
            if (t >= 0 && m.seq >= target[t]) reached[t] = 1;
            break;
        case SUB_RESET:
            k.resets++;
            k.reset_bytes += (long)fb;
            if (t >= 0) reached[t] = 1;
            break;
        default:
            k.other++;
        }
        if (t >= 0 && !was && subd[t] && reached[t]) done++;
        sub_msg_clear(&m);
    }
    t_done = now_s();
    printf("catchup replay=%s topics=%d publishes=%ld format=%s bytes=%ld frames=%ld "
           "subscribed=%ld hints=%ld covered=%ld coalesced_hints=%ld hint_bytes=%ld resets=%ld "
           "reset_bytes=%ld other=%ld sent=%ld catchup_ms=%.1f publish_s=%.2f\n",
           o.replay_all ? "all" : "changes", o.topics, o.publishes, o.msgpack ? "msgpack" : "json",
           c->bytes, c->frames, k.subscribed, k.hints, k.covered, k.coalesced, k.hint_bytes,
           k.resets, k.reset_bytes, k.other, c->sent, (t_done - t0) * 1e3, t_pub);
    rc = 0;
out:
    if (c) cu_close(c);
    free(c);
    free(reached);
    free(subd);
    free(target);
    free(pos);
    free(names);
    return rc;
}
