/* crowd: idle subscribed WebSocket connections in bulk (crowd.h).
 *
 * A small state machine per connection on one epoll: connect -> upgrade request -> 101 ->
 * hello + sub in one write -> "subscribed" -> idle. Client frames are masked with an all-zero
 * key (RFC 6455 wants a mask, not a secret one), so payloads go out as they are. Received
 * frames are parsed only as far as needed: text payloads are searched for the message type,
 * pings are answered, a close or EOF ends the connection. */
#include "crowd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { C_NONE = 0, C_CONNECTING, C_UPGRADE, C_SUBBING, C_IDLE, C_DEAD };

struct crowd_conn {
    int fd;
    uint8_t state;
    uint16_t len; /* unparsed bytes in buf */
    unsigned char buf[1024];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_kill(struct crowd *cr, struct crowd_conn *c)
{
    if (c->fd >= 0) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        epoll_ctl(cr->ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = C_DEAD;
}

/* A masked (all-zero key) final frame of opcode op around p[0..n) appended to out at *at. */
static int frame(char *out, size_t cap, size_t *at, int op, const char *p, size_t n)
{
    size_t h = n < 126 ? 6 : 8;
    if (*at + h + n > cap || n > 0xffff) return -1;
    unsigned char *o = (unsigned char *)out + *at;
    o[0] = (unsigned char)(0x80 | op);
    if (n < 126) {
        o[1] = (unsigned char)(0x80 | n);
    } else {
        o[1] = 0x80 | 126;
        o[2] = (unsigned char)(n >> 8);
        o[3] = (unsigned char)n;
    }
    memset(o + h - 4, 0, 4);
    memcpy(o + h, p, n);
    *at += h + n;
    return 0;
}

static int send_all(int fd, const char *p, size_t n)
{
    /* A fresh socket's send buffer takes a few hundred bytes: a short write is a failure. */
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    return w == (ssize_t)n ? 0 : -1;
}

static int send_sub(const struct crowd_opts *o, uint32_t i, int fd)
{
    char topic[96], msg[9000], out[9200];
    if (o->topic)
        snprintf(topic, sizeof topic, "%s", o->topic);
    else
        snprintf(topic, sizeof topic, "%s%u",
                 o->topic_prefix ? o->topic_prefix : "t:", o->first + i);
    const char *tok = o->token ? o->token(o->first + i, o->token_arg) : NULL;
    size_t at = 0;
    int n = tok ? snprintf(msg, sizeof msg, "{\"type\":\"hello\",\"v\":1,\"token\":\"%s\"}", tok)
                : snprintf(msg, sizeof msg, "{\"type\":\"hello\",\"v\":1}");
    if (n < 0 || (size_t)n >= sizeof msg || frame(out, sizeof out, &at, 1, msg, (size_t)n) < 0)
        return -1;
    if (o->resume_epoch && o->resume_epoch[0])
        n = snprintf(msg, sizeof msg,
                     "{\"type\":\"sub\",\"id\":1,\"topics\":[\"%s\"],\"resume\":{\"epoch\":\"%s\","
                     "\"seqs\":{\"%s\":%llu}}}",
                     topic, o->resume_epoch, topic, (unsigned long long)o->resume_seq);
    else
        n = snprintf(msg, sizeof msg, "{\"type\":\"sub\",\"id\":1,\"topics\":[\"%s\"]}", topic);
    if (n < 0 || (size_t)n >= sizeof msg || frame(out, sizeof out, &at, 1, msg, (size_t)n) < 0)
        return -1;
    return send_all(fd, out, at);
}

/* Parse what c->buf holds. Returns 1 when "subscribed" was seen, 0 to go on, -1 to drop. */
static int parse(struct crowd *cr, const struct crowd_opts *o, uint32_t i, struct crowd_conn *c)
{
    int got = 0;
    if (c->state == C_UPGRADE) {
        unsigned char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end) return c->len == sizeof c->buf ? -1 : 0;
        if (c->len < 12 || memcmp(c->buf, "HTTP/1.1 101", 12) != 0) return -1;
        size_t used = (size_t)(end + 4 - c->buf);
        memmove(c->buf, c->buf + used, c->len - used);
        c->len = (uint16_t)(c->len - used);
        if (!o || send_sub(o, i, c->fd) < 0) return -1;
        c->state = C_SUBBING;
    }
    for (;;) {
        if (c->len < 2) break;
        unsigned char *b = c->buf;
        uint64_t plen = b[1] & 0x7f;
        size_t h = 2;
        if (plen == 126) {
            if (c->len < 4) break;
            plen = (uint64_t)b[2] << 8 | b[3];
            h = 4;
        } else if (plen == 127) {
            return -1; /* nothing this big is expected here */
        }
        if (h + plen > sizeof c->buf) return -1;
        if (c->len < h + plen) break;
        int op = b[0] & 0x0f;
        const char *p = (const char *)b + h;
        if (op == 8) return -1;
        if (op == 9) { /* ping: pong with the same payload */
            char out[140];
            size_t at = 0;
            if (frame(out, sizeof out, &at, 10, p, (size_t)plen) < 0 ||
                send_all(c->fd, out, at) < 0)
                return -1;
            cr->pings++;
        } else if (op == 1 && c->state == C_SUBBING) {
            if (memmem(p, plen, "\"type\":\"subscribed\"", 19))
                got = 1;
            else if (memmem(p, plen, "\"type\":\"error\"", 14))
                return -1;
        }
        memmove(c->buf, c->buf + h + plen, c->len - h - plen);
        c->len = (uint16_t)(c->len - h - plen);
    }
    return got;
}

/* Read what is there. Returns as parse, or -1 on EOF/error. */
static int on_readable(struct crowd *cr, const struct crowd_opts *o, uint32_t i,
                       struct crowd_conn *c)
{
    for (int k = 0; k < 16; k++) {
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, MSG_DONTWAIT);
        if (r == 0) return -1;
        if (r < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        c->len = (uint16_t)(c->len + r);
        int rc = parse(cr, o, i, c);
        if (rc != 0) return rc;
    }
    return 0;
}

static int conn_start(struct crowd *cr, const struct crowd_opts *o, uint32_t i)
{
    struct crowd_conn *c = &cr->c[i];
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(o->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    c->state = C_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u32 = i};
    if (epoll_ctl(cr->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

static int on_connected(struct crowd *cr, const struct crowd_opts *o, uint32_t i,
                        struct crowd_conn *c)
{
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) return -1;
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: nudge.json.v1\r\n\r\n",
                     o->port);
    if (n < 0 || (size_t)n >= sizeof req || send_all(c->fd, req, (size_t)n) < 0) return -1;
    c->state = C_UPGRADE;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    return epoll_ctl(cr->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

uint32_t crowd_open(struct crowd *cr, const struct crowd_opts *o)
{
    memset(cr, 0, sizeof *cr);
    cr->ep = epoll_create1(EPOLL_CLOEXEC);
    cr->c = calloc(o->n ? o->n : 1, sizeof *cr->c);
    if (cr->ep < 0 || !cr->c) return 0;
    cr->n = o->n;
    for (uint32_t i = 0; i < o->n; i++)
        cr->c[i].fd = -1;
    uint32_t window = o->window ? o->window : 256, next = 0, inflight = 0;
    int64_t deadline = now_ms() + (o->timeout_ms ? o->timeout_ms : 60000);
    struct epoll_event evs[256];
    while ((next < o->n || inflight) && now_ms() < deadline) {
        while (next < o->n && inflight < window) {
            if (conn_start(cr, o, next) < 0)
                cr->failed++;
            else
                inflight++;
            next++;
        }
        int k = epoll_wait(cr->ep, evs, 256, 100);
        for (int e = 0; e < k; e++) {
            uint32_t i = evs[e].data.u32;
            struct crowd_conn *c = &cr->c[i];
            if (c->state == C_DEAD || c->fd < 0) continue;
            int rc;
            if (c->state == C_CONNECTING)
                rc = (evs[e].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) ? on_connected(cr, o, i, c)
                                                                        : 0;
            else
                rc = on_readable(cr, o, i, c);
            int was_pending = c->state != C_IDLE;
            if (rc < 0) {
                conn_kill(cr, c);
                if (was_pending) {
                    cr->failed++;
                    inflight--;
                }
            } else if (rc == 1 && was_pending) {
                c->state = C_IDLE;
                cr->ready++;
                inflight--;
            }
        }
    }
    for (uint32_t i = 0; i < o->n; i++) /* out of time: what is not subscribed goes */
        if (cr->c[i].state != C_IDLE && cr->c[i].state != C_DEAD && cr->c[i].state != C_NONE) {
            conn_kill(cr, &cr->c[i]);
            cr->failed++;
        }
    cr->failed += o->n - next;
    return cr->ready;
}

uint32_t crowd_serve(struct crowd *cr, int ms)
{
    uint32_t gone = 0;
    if (!cr->c) return 0;
    int64_t deadline = now_ms() + ms;
    struct epoll_event evs[256];
    for (int64_t left; (left = deadline - now_ms()) > 0;) {
        int k = epoll_wait(cr->ep, evs, 256, (int)(left < 100 ? left : 100));
        for (int e = 0; e < k; e++) {
            struct crowd_conn *c = &cr->c[evs[e].data.u32];
            if (c->fd < 0) continue;
            if (on_readable(cr, NULL, evs[e].data.u32, c) < 0) {
                conn_kill(cr, c);
                if (cr->ready) cr->ready--;
                gone++;
            }
        }
    }
    return gone;
}

void crowd_close(struct crowd *cr)
{
    if (cr->c)
        for (uint32_t i = 0; i < cr->n; i++)
            if (cr->c[i].fd >= 0) conn_kill(cr, &cr->c[i]);
    free(cr->c);
    cr->c = NULL;
    if (cr->ep > 0) close(cr->ep);
    cr->ep = -1;
    cr->n = 0;
}
