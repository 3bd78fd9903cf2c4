/* nudge-bench: fan-out throughput of a running nudged. N WebSocket subscribers spread over T
 * topics (hand-rolled client on epoll: the bench must hold thousands of sockets cheaply and only
 * counts frames), one publisher thread using libnudge with a pipelining window. Reports
 * publishes/s and deliveries/s from the first publish to the last hint received.
 *
 *   nudge-bench --ws 127.0.0.1:7401 --pub 127.0.0.1:7400 [--subs N] [--topics T]
 *               [--publishes P] [--window W] [--msgpack] [--timeout SEC]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nudge.h"
#include "sub.h"
#include "wire.h"

struct opts {
    char ws_host[64], pub_addr[128];
    int ws_port;
    int subs, topics, window, msgpack, timeout_s;
    long publishes;
};

struct bsub {
    int fd;
    int upgraded;
    int acks; /* welcome + subscribed frames seen */
    long hints;
    size_t len;
    uint8_t buf[16384];
};

struct pubarg {
    const struct opts *o;
    double t_start, t_end;
    int rc;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                usleep(100);
                continue;
            }
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* One masked client frame (mask 0: the payload is sent as is, which RFC 6455 allows). */
static int send_frame(int fd, int binary, const uint8_t *p, size_t n)
{
    uint8_t h[14];
    size_t hl = 0;
    h[hl++] = binary ? 0x82 : 0x81;
    if (n < 126) {
        h[hl++] = (uint8_t)(0x80 | n);
    } else {
        h[hl++] = 0x80 | 126;
        h[hl++] = (uint8_t)(n >> 8);
        h[hl++] = (uint8_t)n;
    }
    memset(h + hl, 0, 4);
    hl += 4;
    if (send_all(fd, h, hl) < 0) return -1;
    return send_all(fd, p, n);
}

/* Count complete server frames in s->buf, keep the tail. */
static void eat_frames(struct bsub *s)
{
    size_t off = 0;
    while (s->len - off >= 2) {
        const uint8_t *f = s->buf + off;
        size_t plen = f[1] & 0x7f, hl = 2;
        if (plen == 126) {
            if (s->len - off < 4) break;
            plen = ((size_t)f[2] << 8) | f[3];
            hl = 4;
        } else if (plen == 127) {
            if (s->len - off < 10) break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | f[2 + i];
            hl = 10;
        }
        if (s->len - off < hl + plen) {
            if (hl + plen > sizeof(s->buf)) { /* larger than our buffer: skip it */
                s->len = 0;
                return;
            }
            break;
        }
        if (s->acks < 2)
            s->acks++;
        else
            s->hints++;
        off += hl + plen;
    }
    memmove(s->buf, s->buf + off, s->len - off);
    s->len -= off;
}

static void *publisher(void *arg)
{
    struct pubarg *pa = arg;
    const struct opts *o = pa->o;
    nudge_client_t *c;
    struct nudge_opts no = {.client_name = "nudge-bench", .timeout_ms = o->timeout_s * 1000};
    if ((pa->rc = nudge_connect(o->pub_addr, &no, &c)) < 0) return NULL;
    char topic[32];
    const char *tp[1] = {topic};
    struct nudge_pub p = {.topics = tp, .ntopics = 1};
    long inflight = 0;
    pa->t_start = now_s();
    for (long i = 0; i < o->publishes; i++) {
        snprintf(topic, sizeof(topic), "bench:%ld", i % o->topics);
        if ((pa->rc = nudge_send(c, &p, NULL)) < 0) break;
        if (++inflight >= o->window) {
            uint64_t id, seq;
            size_t n;
            if ((pa->rc = nudge_recv_ack(c, &id, &seq, 1, &n)) < 0) break;
            inflight--;
        }
    }
    while (pa->rc >= 0 && inflight > 0) {
        uint64_t id, seq;
        size_t n;
        if ((pa->rc = nudge_recv_ack(c, &id, &seq, 1, &n)) < 0) break;
        inflight--;
    }
    pa->t_end = now_s();
    nudge_close(c);
    return NULL;
}

static void usage(void)
{
    fputs("usage: nudge-bench --ws HOST:PORT --pub HOST:PORT [--subs N] [--topics T]\n"
          "                   [--publishes P] [--window W] [--msgpack] [--timeout SEC]\n"
          "Defaults: 1000 subscribers, 10 topics, 100000 publishes, window 256, JSON, 60 s.\n",
          stderr);
}

static int parse(struct opts *o, int argc, char **argv)
{
    *o = (struct opts){
        .subs = 1000, .topics = 10, .publishes = 100000, .window = 256, .timeout_s = 60};
    const char *ws = "127.0.0.1:7401";
    snprintf(o->pub_addr, sizeof(o->pub_addr), "127.0.0.1:7400");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
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
        else if (!strcmp(a, "--subs"))
            o->subs = atoi(v);
        else if (!strcmp(a, "--topics"))
            o->topics = atoi(v);
        else if (!strcmp(a, "--publishes"))
            o->publishes = atol(v);
        else if (!strcmp(a, "--window"))
            o->window = atoi(v);
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
    if (o->subs < 1 || o->topics < 1 || o->publishes < 1 || o->window < 1 || o->timeout_s < 1)
        return -1;
    return 0;
}

static int connect_sub(const struct opts *o, struct bsub *s, int idx)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->ws_port)};
    if (inet_pton(AF_INET, o->ws_host, &sa.sin_addr) != 1) return -1;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) return -1;
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
                     o->ws_host, o->ws_port, o->msgpack ? SUB_PROTO_MSGPACK : SUB_PROTO_JSON);
    if (send_all(s->fd, req, (size_t)n) < 0) return -1;
    /* Read the 101 head byte by byte up to the blank line (setup only, not measured). */
    char head[1024];
    size_t hl = 0;
    while (hl < sizeof(head) - 1) {
        ssize_t r = recv(s->fd, head + hl, 1, 0);
        if (r <= 0) return -1;
        hl++;
        if (hl >= 4 && !memcmp(head + hl - 4, "\r\n\r\n", 4)) break;
    }
    head[hl] = '\0';
    if (strncmp(head, "HTTP/1.1 101", 12) != 0) return -1;
    enum sub_fmt f = o->msgpack ? SUB_MSGPACK : SUB_JSON;
    struct wire_buf b = {0};
    char topic[32];
    snprintf(topic, sizeof(topic), "bench:%d", idx % o->topics);
    struct wire_str t = {topic, (uint32_t)strlen(topic)};
    int rc = sub_encode_hello(f, &b, 1, "nudge-bench");
    rc = rc < 0 ? rc : send_frame(s->fd, o->msgpack, b.data, b.len);
    wire_buf_reset(&b);
    rc = rc < 0 ? rc : sub_encode_subscribe(f, &b, 1, &t, 1, NULL, NULL, NULL);
    rc = rc < 0 ? rc : send_frame(s->fd, o->msgpack, b.data, b.len);
    wire_buf_free(&b);
    s->upgraded = 1;
    return rc < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse(&o, argc, argv) < 0) {
        usage();
        return 2;
    }
    struct bsub *subs = calloc((size_t)o.subs, sizeof(*subs));
    int ep = epoll_create1(0);
    if (!subs || ep < 0) return 1;
    for (int i = 0; i < o.subs; i++) {
        if (connect_sub(&o, &subs[i], i) < 0) {
            fprintf(stderr, "nudge-bench: subscriber %d could not connect: %s\n", i,
                    strerror(errno));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &subs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, subs[i].fd, &ev);
    }
    long ready = 0;
    /* Expected deliveries: each publish goes to topic i % T, reaching its subscribers. */
    long expected = 0;
    for (int t = 0; t < o.topics; t++) {
        long pubs = o.publishes / o.topics + (t < o.publishes % o.topics ? 1 : 0);
        long subs_t = o.subs / o.topics + (t < o.subs % o.topics ? 1 : 0);
        expected += pubs * subs_t;
    }
    struct epoll_event evs[256];
    double deadline = now_s() + o.timeout_s;
    long got = 0;
    pthread_t th;
    struct pubarg pa = {.o = &o};
    int started = 0;
    double t_last = 0;
    while (now_s() < deadline) {
        if (!started && ready == o.subs) {
            pthread_create(&th, NULL, publisher, &pa);
            started = 1;
        }
        if (started && got >= expected) break;
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            struct bsub *s = evs[i].data.ptr;
            ssize_t r = recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len, 0);
            if (r <= 0) {
                fprintf(stderr, "nudge-bench: a subscriber was disconnected\n");
                deadline = 0;
                break;
            }
            s->len += (size_t)r;
            int was = s->acks;
            long before = s->hints;
            eat_frames(s);
            if (was < 2 && s->acks == 2) ready++;
            got += s->hints - before;
            if (s->hints != before) t_last = now_s();
        }
    }
    if (started) pthread_join(th, NULL);
    for (int i = 0; i < o.subs; i++)
        close(subs[i].fd);
    free(subs);
    close(ep);
    if (!started || pa.rc < 0) {
        fprintf(stderr, "nudge-bench: publisher failed: %s\n",
                started ? nudge_strerror(pa.rc) : "subscribers not ready in time");
        return 1;
    }
    double span = (t_last > pa.t_start ? t_last : pa.t_end) - pa.t_start;
    if (span <= 0) span = 1e-9;
    printf("subs=%d topics=%d publishes=%ld format=%s deliveries=%ld/%ld time=%.3fs "
           "publishes/s=%.0f deliveries/s=%.0f\n",
           o.subs, o.topics, o.publishes, o.msgpack ? "msgpack" : "json", got, expected, span,
           (double)o.publishes / span, (double)got / span);
    return got == expected ? 0 : 1;
}
