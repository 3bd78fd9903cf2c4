/* nudge-bench: fan-out throughput and cost of a running nudged. N WebSocket subscribers spread
 * over T topics (hand-rolled client on epoll: the bench must hold thousands of sockets cheaply
 * and only counts frames), one publisher thread using libnudge with a pipelining window. Reports
 * publishes/s and deliveries/s from the first publish to the last hint received and, given the
 * broker's pid, the CPU time the broker used over that same interval (utime+stime of every
 * thread, from /proc) and its cost in CPU-seconds per million deliveries.
 *
 * Setup is pipelined: sockets connect non-blocking, at most PENDING_MAX in handshake at once
 * (more would overflow the listen backlog and stall in SYN retries), each sends hello and
 * subscribe as soon as its 101 arrives. Subscribers answer WebSocket pings (the broker drops a
 * peer silent for 40 s) and count hints by frame; a coalesced hint ("n" > 1, only when the
 * broker found the socket congested) is counted once as a frame and for its n in "covered", and
 * the run passes when covered == expected.
 *
 * --pubs N publisher threads (a connection each) deal the publishes round-robin; --multi K puts
 * K topics in each publish; --subs 0 measures publishers alone. Each ack's latency (from
 * nudge_send to the ack) is kept, and p50/p99/max/mean reported. `nudge-bench catchup` is
 * another benchmark (catchup.c): what a resuming subscriber is sent.
 *
 *   nudge-bench --ws 127.0.0.1:7401 --pub 127.0.0.1:7400 [--subs N] [--topics T]
 *               [--publishes P] [--window W] [--pubs N] [--multi K] [--msgpack]
 *               [--timeout SEC] [--broker-pid PID] [--cafile PEM]
 *   nudge-bench catchup ... (catchup.c)
 *
 * --cafile PEM: TLS on both ports (a broker with --tls-cert), trusting PEM. Subscribers do their
 * TLS handshake one at a time during setup (blocking, bounded), then read through OpenSSL,
 * draining what it buffers before going back to epoll; their writes (hello, sub, pongs) go
 * through the SSL of their fd (bench_ssl below), so send_all keeps one signature.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "bench.h"
#include "nudge.h"
#include "sub.h"
#include "wire.h"

#define PENDING_MAX 256 /* subscribers between connect() and subscribed at once */
#define PUBS_MAX 64     /* publisher threads */

struct opts {
    char ws_host[64], pub_addr[128];
    int ws_port;
    int subs, topics, window, msgpack, timeout_s, broker_pid;
    int pubs;  /* publisher connections (threads), publishes dealt round-robin */
    int multi; /* topics per publish */
    long publishes;
    double rate;        /* publishes/s over all publishers, open loop; 0 = as fast as acks allow */
    const char *cafile; /* TLS when set */
};

/* TLS subscribers: the SSL of each fd (NULL = plain), and the context they share. */
#define BENCH_FDS 65536
static SSL *bench_ssl[BENCH_FDS];
static SSL_CTX *bench_ctx;

enum bstate { B_IDLE, B_CONNECTING, B_UPGRADING, B_SUBSCRIBING, B_READY };

struct bsub {
    int fd;
    int idx;
    enum bstate state;
    int acks;     /* welcome + subscribed frames seen */
    long frames;  /* hint frames */
    long covered; /* publishes those frames stand for (n of a coalesced hint) */
    size_t len;
    uint8_t buf[16384];
};

struct pubarg {
    const struct opts *o;
    int k; /* this publisher sends publishes k, k + pubs, ... */
    double t_start, t_end;
    float *lat; /* ack latency of each publish, µs (owned, freed by main) */
    long nlat;
    int rc;
};

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime+stime (fields 14 and 15) of a /proc stat file, in clock ticks; -1 if unreadable. */
static long long stat_ticks(const char *path)
{
    char line[1024];
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = '\0';
    const char *p = strrchr(line, ')'); /* the command name may hold spaces */
    if (!p) return -1;
    unsigned long long ut = 0, st = 0;
    /* after ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime
     * stime */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (long long)(ut + st);
}

int cpu_read(int pid, struct cpu *c)
{
    char path[64];
    c->n = 0;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if ((c->total = stat_ticks(path)) < 0) return -1;
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d) return 0;
    struct dirent *de;
    while ((de = readdir(d)) && c->n < THREADS_MAX) {
        if (de->d_name[0] == '.') continue;
        char tp[300];
        snprintf(tp, sizeof(tp), "/proc/%d/task/%s/stat", pid, de->d_name);
        long long t = stat_ticks(tp);
        if (t < 0) continue;
        c->tid[c->n] = atoi(de->d_name);
        c->ticks[c->n++] = t;
    }
    closedir(d);
    return 0;
}

double own_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    SSL *ssl = fd >= 0 && fd < BENCH_FDS ? bench_ssl[fd] : NULL;
    while (n && ssl) {
        size_t w = 0;
        if (SSL_write_ex(ssl, b, n, &w) == 1) {
            b += w;
            n -= w;
            continue;
        }
        int e = SSL_get_error(ssl, 0);
        if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) return -1;
        usleep(100);
    }
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

int send_frame(int fd, uint8_t opcode, const uint8_t *p, size_t n)
{
    uint8_t h[14];
    size_t hl = 0;
    h[hl++] = (uint8_t)(0x80 | opcode);
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
    return n ? send_all(fd, p, n) : 0;
}

/* Publishes a hint frame stands for: its "n", 1 when absent. The cheap test (JSON: the key's
 * text; msgpack: the fixstr "n" among the last bytes) runs on every frame, the decode only on
 * a candidate. */
static long hint_count(const struct opts *o, const uint8_t *p, size_t n)
{
    int maybe;
    if (!o->msgpack) {
        maybe = memmem(p, n, "\"n\":", 4) != NULL;
    } else {
        size_t from = n > 8 ? n - 8 : 0;
        maybe = memmem(p + from, n - from, "\xa1n", 2) != NULL;
    }
    if (!maybe) return 1;
    struct wire_limits lim;
    wire_limits_default(&lim);
    struct sub_msg m;
    if (sub_decode(o->msgpack ? SUB_MSGPACK : SUB_JSON, p, n, &lim, &m) < 0) return 1;
    long c = m.type == SUB_HINT && m.count > 1 ? m.count : 1;
    sub_msg_clear(&m);
    return c;
}

/* Consume complete server frames in s->buf, keep the tail. Returns -1 when the broker closed
 * the connection or sent something else than welcome then subscribed first. */
static int eat_frames(const struct opts *o, struct bsub *s)
{
    size_t off = 0;
    int rc = 0;
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
                return 0;
            }
            break;
        }
        const uint8_t *p = f + hl;
        switch (f[0] & 0x0f) {
        case 0x9: /* ping: answer with its payload */
            if (send_frame(s->fd, 0xA, p, plen) < 0) rc = -1;
            break;
        case 0x8:
            fprintf(stderr, "nudge-bench: subscriber %d closed by the broker: %d %.*s\n", s->idx,
                    plen >= 2 ? (p[0] << 8) | p[1] : 0, plen > 2 ? (int)plen - 2 : 0, p + 2);
            rc = -1;
            break;
        case 0xA:
            break;
        default:
            if (s->acks < 2) {
                struct wire_limits lim;
                wire_limits_default(&lim);
                struct sub_msg m;
                int ok = sub_decode(o->msgpack ? SUB_MSGPACK : SUB_JSON, p, plen, &lim, &m) == 0;
                if (ok) {
                    ok = m.type == (s->acks == 0 ? SUB_WELCOME : SUB_SUBSCRIBED);
                    sub_msg_clear(&m);
                }
                if (!ok) {
                    fprintf(stderr, "nudge-bench: subscriber %d: unexpected reply %.*s\n", s->idx,
                            (int)plen, p);
                    rc = -1;
                }
                s->acks++;
            } else {
                s->frames++;
                s->covered += hint_count(o, p, plen);
            }
        }
        off += hl + plen;
    }
    memmove(s->buf, s->buf + off, s->len - off);
    s->len -= off;
    return rc;
}

/* Publish i goes to topics (i * multi + j) % T for j < multi. Ack latency: from nudge_send()
 * (the publish may then wait in libnudge's buffer until the window fills or an ack is awaited)
 * to its ack; acks come in send order, so a ring of send times indexed by count suffices. */
static void *publisher(void *arg)
{
    struct pubarg *pa = arg;
    const struct opts *o = pa->o;
    nudge_client_t *c;
    struct nudge_opts no = {.client_name = "nudge-bench",
                            .timeout_ms = o->timeout_s * 1000,
                            .tls = o->cafile != NULL,
                            .cafile = o->cafile};
    double *sent = calloc((size_t)o->window, sizeof(*sent));
    pa->lat = calloc((size_t)(o->publishes / o->pubs + 1), sizeof(*pa->lat));
    if (!sent || !pa->lat) {
        pa->rc = NUDGE_ENOMEM;
        free(sent);
        return NULL;
    }
    if ((pa->rc = nudge_connect(o->pub_addr, &no, &c)) < 0) {
        free(sent);
        return NULL;
    }
    char names[WIRE_TOPICS_MAX][32];
    const char *tp[WIRE_TOPICS_MAX];
    for (int j = 0; j < o->multi; j++)
        tp[j] = names[j];
    struct nudge_pub p = {.topics = tp, .ntopics = (size_t)o->multi};
    long inflight = 0, nsent = 0;
    pa->t_start = now_s();
    for (long i = pa->k; i < o->publishes; i += o->pubs) {
        if (o->rate > 0) {
            /* open loop: publish i is due at t_start + i / rate, whatever the broker does */
            double due = pa->t_start + (double)i / o->rate, wait = due - now_s();
            if (wait > 0) {
                if ((pa->rc = nudge_flush(c)) < 0) break;
                struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
                nanosleep(&ts, NULL);
            }
        }
        for (int j = 0; j < o->multi; j++)
            snprintf(names[j], sizeof(names[j]), "bench:%ld", (i * o->multi + j) % o->topics);
        sent[nsent++ % o->window] = now_s();
        if ((pa->rc = nudge_send(c, &p, NULL)) < 0) break;
        if (++inflight >= o->window) {
            uint64_t id, seq;
            size_t n;
            if ((pa->rc = nudge_recv_ack(c, &id, &seq, 1, &n)) < 0) break;
            pa->lat[pa->nlat] = (float)((now_s() - sent[pa->nlat % o->window]) * 1e6);
            pa->nlat++;
            inflight--;
        }
    }
    while (pa->rc >= 0 && inflight > 0) {
        uint64_t id, seq;
        size_t n;
        if ((pa->rc = nudge_recv_ack(c, &id, &seq, 1, &n)) < 0) break;
        pa->lat[pa->nlat] = (float)((now_s() - sent[pa->nlat % o->window]) * 1e6);
        pa->nlat++;
        inflight--;
    }
    pa->t_end = now_s();
    nudge_close(c);
    free(sent);
    return NULL;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Ack latency over every publisher: p50, p99, max and mean in µs, printed on the result line. */
static void print_latency(struct pubarg *pa, int n)
{
    long total = 0;
    for (int k = 0; k < n; k++)
        total += pa[k].nlat;
    float *all = malloc((size_t)(total ? total : 1) * sizeof(*all));
    if (!all || !total) {
        free(all);
        return;
    }
    long m = 0;
    double sum = 0;
    for (int k = 0; k < n; k++)
        for (long i = 0; i < pa[k].nlat; i++) {
            all[m++] = pa[k].lat[i];
            sum += pa[k].lat[i];
        }
    qsort(all, (size_t)total, sizeof(*all), cmp_float);
    printf(" ack_p50_us=%.0f ack_p99_us=%.0f ack_max_us=%.0f ack_mean_us=%.0f", all[total / 2],
           all[(long)((double)total * 0.99)], all[total - 1], sum / (double)total);
    free(all);
}

static void usage(void)
{
    fputs("usage: nudge-bench --ws HOST:PORT --pub HOST:PORT [--subs N] [--topics T]\n"
          "                   [--publishes P] [--window W] [--pubs N] [--multi K] [--msgpack]\n"
          "                   [--rate R] [--timeout SEC] [--broker-pid PID]\n"
          "       nudge-bench catchup --help\n"
          "       nudge-bench --version\n"
          "Defaults: 1000 subscribers, 10 topics, 100000 publishes, window 256, 1 publisher,\n"
          "1 topic per publish, JSON, 60 s. --subs 0: publishers only.\n"
          "--pubs N: N publisher connections, each with its own window, publishes dealt\n"
          "round-robin. --multi K: K topics per publish (publish i: topics i*K .. i*K+K-1 mod T).\n"
          "--broker-pid: also report the broker's CPU time over the measured interval.\n"
          "--rate R: open loop, R publishes/s over all publishers (publish i is due at i/R s,\n"
          "whatever the broker does); lag_ms= is how long after the last publish was due the\n"
          "last hint arrived.\n"
          "--cafile PEM: TLS on both ports (broker started with --tls-cert), trusting PEM.\n",
          stderr);
}

static int parse(struct opts *o, int argc, char **argv)
{
    *o = (struct opts){.subs = 1000,
                       .topics = 10,
                       .publishes = 100000,
                       .window = 256,
                       .timeout_s = 60,
                       .pubs = 1,
                       .multi = 1};
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
        else if (!strcmp(a, "--broker-pid"))
            o->broker_pid = atoi(v);
        else if (!strcmp(a, "--rate"))
            o->rate = atof(v);
        else if (!strcmp(a, "--pubs"))
            o->pubs = atoi(v);
        else if (!strcmp(a, "--multi"))
            o->multi = atoi(v);
        else if (!strcmp(a, "--cafile"))
            o->cafile = v;
        else
            return -1;
    }
    const char *colon = strrchr(ws, ':');
    if (!colon || (size_t)(colon - ws) >= sizeof(o->ws_host)) return -1;
    memcpy(o->ws_host, ws, (size_t)(colon - ws));
    o->ws_host[colon - ws] = '\0';
    o->ws_port = atoi(colon + 1);
    if (o->subs < 0 || o->topics < 1 || o->publishes < 1 || o->window < 1 || o->timeout_s < 1 ||
        o->broker_pid < 0 || o->pubs < 1 || o->pubs > PUBS_MAX || o->multi < 1 ||
        o->multi > WIRE_TOPICS_MAX || o->multi > o->topics)
        return -1;
    return 0;
}

static int sub_connect(const struct opts *o, int ep, struct bsub *s)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->ws_port)};
    if (inet_pton(AF_INET, o->ws_host, &sa.sin_addr) != 1) return -1;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (s->fd < 0) return -1;
    if (connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) return -1;
    s->state = B_CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = s};
    return epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev);
}

/* TLS handshake on a connected non-blocking socket, waiting up to 5 s. 0 or -1. */
static int sub_tls(struct bsub *s)
{
    SSL *ssl = SSL_new(bench_ctx);
    if (!ssl || s->fd >= BENCH_FDS || SSL_set_fd(ssl, s->fd) != 1) {
        SSL_free(ssl);
        return -1;
    }
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1");
    bench_ssl[s->fd] = ssl;
    double until = now_s() + 5;
    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1) return 0;
        int e = SSL_get_error(ssl, r);
        if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) || now_s() > until) {
            ERR_print_errors_fp(stderr);
            return -1;
        }
        struct pollfd pfd = {s->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, 0};
        poll(&pfd, 1, 100);
    }
}

/* Read what there is into s->buf: recv, or through OpenSSL. Like recv(). */
static ssize_t sub_read(struct bsub *s)
{
    SSL *ssl = bench_ssl[s->fd];
    if (!ssl) return recv(s->fd, s->buf + s->len, sizeof(s->buf) - s->len, 0);
    size_t got = 0;
    if (SSL_read_ex(ssl, s->buf + s->len, sizeof(s->buf) - s->len, &got) == 1) return (ssize_t)got;
    int e = SSL_get_error(ssl, 0);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    return e == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

/* Connected: send the upgrade request, then wait for input only. */
static int sub_upgrade(const struct opts *o, int ep, struct bsub *s)
{
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
        errno = err ? err : errno;
        return -1;
    }
    if (o->cafile && sub_tls(s) < 0) {
        errno = EPROTO;
        return -1;
    }
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET / HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: %s\r\n\r\n",
                     o->ws_host, o->ws_port, o->msgpack ? SUB_PROTO_MSGPACK : SUB_PROTO_JSON);
    if (send_all(s->fd, req, (size_t)n) < 0) return -1;
    s->state = B_UPGRADING;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
    return epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
}

/* The 101 head is in s->buf: drop it, send hello and subscribe. 1 = not all there yet. */
static int sub_subscribe(const struct opts *o, struct bsub *s)
{
    uint8_t *end = memmem(s->buf, s->len, "\r\n\r\n", 4);
    if (!end) return s->len < sizeof(s->buf) ? 1 : -1;
    if (s->len < 12 || memcmp(s->buf, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "nudge-bench: subscriber %d: upgrade refused: %.*s\n", s->idx,
                (int)(end - s->buf), s->buf);
        return -1;
    }
    size_t head = (size_t)(end - s->buf) + 4;
    memmove(s->buf, s->buf + head, s->len - head);
    s->len -= head;
    enum sub_fmt f = o->msgpack ? SUB_MSGPACK : SUB_JSON;
    uint8_t op = o->msgpack ? 0x2 : 0x1;
    struct wire_buf b = {0};
    char topic[32];
    snprintf(topic, sizeof(topic), "bench:%d", s->idx % o->topics);
    struct wire_str t = {topic, (uint32_t)strlen(topic)};
    int rc = sub_encode_hello(f, &b, 1, "nudge-bench");
    rc = rc < 0 ? rc : send_frame(s->fd, op, b.data, b.len);
    wire_buf_reset(&b);
    rc = rc < 0 ? rc : sub_encode_subscribe(f, &b, 1, &t, 1, NULL, NULL, NULL, 0);
    rc = rc < 0 ? rc : send_frame(s->fd, op, b.data, b.len);
    wire_buf_free(&b);
    s->state = B_SUBSCRIBING;
    return rc < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "catchup")) return catchup_main(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "load")) return load_main(argc - 1, argv + 1);
    if (argc > 1 && (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))) {
        printf("nudge-bench %s\n", nudge_version());
        return 0;
    }
    struct opts o;
    if (parse(&o, argc, argv) < 0) {
        usage();
        return 2;
    }
    if (o.cafile) {
        bench_ctx = SSL_CTX_new(TLS_client_method());
        if (!bench_ctx || SSL_CTX_load_verify_locations(bench_ctx, o.cafile, NULL) != 1) {
            fprintf(stderr, "nudge-bench: cannot load --cafile %s\n", o.cafile);
            return 1;
        }
        SSL_CTX_set_verify(bench_ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_set_options(bench_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
        SSL_CTX_set_mode(bench_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
    }
    struct bsub *subs = calloc((size_t)(o.subs ? o.subs : 1), sizeof(*subs));
    int ep = epoll_create1(0);
    if (!subs || ep < 0) return 1;
    for (int i = 0; i < o.subs; i++) {
        subs[i].fd = -1;
        subs[i].idx = i;
    }
    /* Expected deliveries: publish i goes to topics i * K + j (j < K) mod T, reaching their
     * subscribers: the topic-publishes 0 .. P*K-1 run round-robin over the topics. */
    long expected = 0, tpubs = o.publishes * o.multi;
    for (int t = 0; t < o.topics; t++) {
        long pubs = tpubs / o.topics + (t < tpubs % o.topics ? 1 : 0);
        long subs_t = o.subs / o.topics + (t < o.subs % o.topics ? 1 : 0);
        expected += pubs * subs_t;
    }
    struct epoll_event evs[256];
    double deadline = now_s() + o.timeout_s, t_last = 0, t_setup = now_s();
    long frames = 0, covered = 0;
    int next = 0, pending = 0, ready = 0, started = 0, failed = 0;
    pthread_t th[PUBS_MAX];
    struct pubarg pa[PUBS_MAX];
    for (int k = 0; k < o.pubs; k++)
        pa[k] = (struct pubarg){.o = &o, .k = k};
    static struct cpu c0, c1;
    double own0 = 0, own1 = 0, t_c0 = 0, t_c1 = 0;
    while (!failed && now_s() < deadline) {
        while (next < o.subs && pending < PENDING_MAX) {
            if (sub_connect(&o, ep, &subs[next]) < 0) {
                fprintf(stderr, "nudge-bench: subscriber %d could not connect: %s\n", next,
                        strerror(errno));
                failed = 1;
                break;
            }
            next++;
            pending++;
        }
        if (!started && ready == o.subs) {
            t_setup = now_s() - t_setup;
            if (o.broker_pid && cpu_read(o.broker_pid, &c0) < 0) {
                fprintf(stderr, "nudge-bench: cannot read /proc/%d/stat\n", o.broker_pid);
                failed = 1;
                break;
            }
            own0 = own_cpu_s();
            t_c0 = now_s();
            for (int k = 0; k < o.pubs; k++)
                pthread_create(&th[k], NULL, publisher, &pa[k]);
            started = 1;
        }
        if (started && !o.subs) break; /* publishers only: their threads time themselves */
        if (started && covered >= expected) break;
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n && !failed; i++) {
            struct bsub *s = evs[i].data.ptr;
            if (s->state == B_CONNECTING) {
                if (sub_upgrade(&o, ep, s) < 0) {
                    fprintf(stderr, "nudge-bench: subscriber %d could not connect: %s\n", s->idx,
                            strerror(errno));
                    failed = 1;
                }
                continue;
            }
            /* TLS: OpenSSL may hold more than one read took (epoll cannot see it) */
            SSL *ssl = bench_ssl[s->fd];
            do {
                ssize_t r = sub_read(s);
                if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
                if (r <= 0) {
                    fprintf(stderr, "nudge-bench: subscriber %d was disconnected: %s\n", s->idx,
                            r < 0 ? strerror(errno) : "end of stream");
                    failed = 1;
                    break;
                }
                s->len += (size_t)r;
                if (s->state == B_UPGRADING) {
                    int rc = sub_subscribe(&o, s);
                    if (rc < 0) failed = 1;
                    if (rc != 0) continue;
                }
                int was = s->acks;
                long before = s->covered, fbefore = s->frames;
                if (eat_frames(&o, s) < 0) failed = 1;
                if (was < 2 && s->acks >= 2) {
                    s->state = B_READY;
                    ready++;
                    pending--;
                }
                covered += s->covered - before;
                frames += s->frames - fbefore;
                if (s->covered != before) t_last = now_s();
            } while (!failed && ssl && SSL_pending(ssl) > 0);
        }
    }
    if (started) {
        if (o.broker_pid) cpu_read(o.broker_pid, &c1);
        own1 = own_cpu_s();
        t_c1 = now_s();
    }
    double t_start = 0, t_end = 0;
    int prc = 0;
    for (int k = 0; started && k < o.pubs; k++) {
        pthread_join(th[k], NULL);
        if (pa[k].rc < 0 && !prc) prc = pa[k].rc;
        if (k == 0 || pa[k].t_start < t_start) t_start = pa[k].t_start;
        if (pa[k].t_end > t_end) t_end = pa[k].t_end;
    }
    if (started && !o.subs) { /* the interval is the publishers' */
        if (o.broker_pid) cpu_read(o.broker_pid, &c1);
        own1 = own_cpu_s();
        t_c1 = now_s();
    }
    for (int i = 0; i < o.subs; i++)
        if (subs[i].fd >= 0) {
            if (subs[i].fd < BENCH_FDS) SSL_free(bench_ssl[subs[i].fd]);
            close(subs[i].fd);
        }
    SSL_CTX_free(bench_ctx);
    free(subs);
    close(ep);
    if (!started || prc < 0) {
        for (int k = 0; k < o.pubs; k++)
            free(pa[k].lat);
        fprintf(stderr, "nudge-bench: %s\n",
                started  ? nudge_strerror(prc)
                : failed ? "setup failed"
                         : "subscribers not ready in time");
        return 1;
    }
    double span = (o.subs && t_last > t_start ? t_last : t_end) - t_start;
    if (span <= 0) span = 1e-9;
    printf("subs=%d topics=%d publishes=%ld format=%s deliveries=%ld/%ld time=%.3fs "
           "publishes/s=%.0f deliveries/s=%.0f",
           o.subs, o.topics, o.publishes, o.msgpack ? "msgpack" : "json", covered, expected, span,
           (double)o.publishes / span, (double)frames / span);
    if (frames != covered) printf(" coalesced_frames=%ld", frames);
    if (o.rate > 0 && o.subs)
        printf(" rate=%.0f lag_ms=%.0f", o.rate,
               (t_last - (t_start + (double)(o.publishes - 1) / o.rate)) * 1e3);
    if (o.pubs > 1 || o.multi > 1)
        printf(" pubs=%d multi=%d window=%d topic_publishes/s=%.0f", o.pubs, o.multi, o.window,
               (double)tpubs / span);
    print_latency(pa, o.pubs);
    for (int k = 0; k < o.pubs; k++)
        free(pa[k].lat);
    if (o.broker_pid) {
        double tick = (double)sysconf(_SC_CLK_TCK);
        double cpu = (double)(c1.total - c0.total) / tick;
        printf(" broker_cpu=%.2fs cpu_s_per_M=%.3f threads=", cpu,
               frames ? cpu / ((double)frames / 1e6) : 0.0);
        int first = 1;
        for (int i = 0; i < c1.n; i++) {
            long long d = c1.ticks[i];
            for (int j = 0; j < c0.n; j++)
                if (c0.tid[j] == c1.tid[i]) d -= c0.ticks[j];
            if (d == 0) continue; /* idle threads (lws, libuv pool) say nothing */
            printf("%s%.2f", first ? "" : "+", (double)d / tick);
            first = 0;
        }
        if (first) printf("0");
    }
    printf(" bench_cpu=%.2fs wall=%.2fs setup=%.1fs\n", own1 - own0, t_c1 - t_c0, t_setup);
    return covered == expected && !failed ? 0 : 1;
}
