/* libnudge — blocking C client for the nudged publisher protocol (docs/protocol.md §Publisher
 * protocol; API in nudge.h, guide in docs/clients.md).
 *
 * Design. One client = one non-blocking TCP socket driven with poll(), so every blocking call
 * is bounded by a deadline (now + timeout_ms) and EINTR, partial writes and partial reads are
 * handled in two places only (client__write_some, client__read_some). Every byte on the wire
 * goes through the protocol codec (pub_encode_* out, pub_frame_next + pub_decode in).
 *
 * Buffers and invariants:
 *   - out: encoded frames not yet written; out_off is how much of it the kernel took. A frame
 *     is either fully queued or not queued at all, so a timeout never leaves half a frame
 *     behind: the rest is written by the next flush. The stream therefore stays in sync after
 *     a timeout.
 *   - in: bytes read and not yet consumed, starting at in_off. Answers are taken out of it by
 *     request id (client__take): nudge_publish() and nudge_ping() look for their own answer and
 *     leave acks of pipelined requests where they are for nudge_recv_ack(), which takes the
 *     oldest one. While flushing we also read, so a broker that writes acks while we write
 *     publishes can never deadlock against us.
 *   - abandoned: ids of nudge_publish()/nudge_ping() calls that timed out. Their late answers
 *     are dropped when they arrive instead of surfacing in nudge_recv_ack().
 *   - dead: set once the stream is unusable (EOF, socket error, undecodable bytes, an "error"
 *     without id). Every later call returns NUDGE_EIO; last_error keeps the cause.
 *
 * Limits: publishes are checked locally against the broker's welcome limits (max_frame,
 * max_topics, max_data, max_topic) so an oversize publish fails with NUDGE_EINVAL before it is
 * sent. A broker that announces no max_topic leaves the protocol ceiling (WIRE_TOPIC_LEN_MAX).
 *
 * TLS (opts->tls): OpenSSL on the same non-blocking socket, through a BIO of our own that
 * sends with MSG_NOSIGNAL; the handshake is bounded by the connect deadline and verifies the
 * broker's certificate (cafile, else the system's store) and name (server_name, else the host
 * connected to; an IP address is checked against the certificate's IP SANs). The TLS read
 * drains OpenSSL completely, so poll() on the socket never waits while plaintext is buffered. */
#include "nudge.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "pub.h"
#include "version.h"
#include "wire.h"

#ifdef MSG_NOSIGNAL
#define CLIENT_SEND_FLAGS MSG_NOSIGNAL
#else
#define CLIENT_SEND_FLAGS 0
#endif

enum {
    CLIENT_DEFAULT_TIMEOUT_MS = 5000,
    CLIENT_FLUSH_AT = 64 * 1024,   /* nudge_send() flushes before queueing past this */
    CLIENT_READ_CHUNK = 64 * 1024, /* bytes asked of recv() at once */
    CLIENT_ABANDONED_MAX = 32,     /* timed-out requests whose answers we still expect */
    CLIENT_ERR_LEN = 256,
};

static const char CLIENT_DEFAULT_ADDR[] = "127.0.0.1:7400";
static const char CLIENT_DEFAULT_PORT[] = "7400";

struct nudge_client {
    int fd;
    SSL_CTX *ssl_ctx; /* TLS only (opts->tls), else NULL */
    SSL *ssl;
    BIO_METHOD *bio_meth;
    int timeout_ms;
    int dead;         /* stream unusable: every call returns NUDGE_EIO */
    int eof;          /* peer closed its side; frames already in `in` are still served */
    uint64_t next_id; /* next request id (starts at 1) */
    size_t npending;  /* nudge_send() requests not yet answered through nudge_recv_ack() */
    struct wire_limits send_lim; /* from welcome: checked before anything is queued */
    struct wire_limits recv_lim; /* hard ceilings: what we accept from the broker */
    struct wire_buf out;
    size_t out_off;
    struct wire_buf in;
    size_t in_off;
    struct wire_buf scratch; /* encoded data of the publish being queued */
    uint64_t abandoned[CLIENT_ABANDONED_MAX];
    size_t nabandoned;
    int last_code;
    char epoch[72];
    char server[72];
    char err[CLIENT_ERR_LEN];
};

/* ---- small helpers ------------------------------------------------------------------------ */

static int64_t client__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t client__deadline(const struct nudge_client *c)
{
    return client__now_ms() + c->timeout_ms;
}

/* Milliseconds left until deadline, clamped to [0, INT_MAX-ish] for poll(). */
static int client__remaining(int64_t deadline)
{
    int64_t left = deadline - client__now_ms();
    if (left < 0) return 0;
    if (left > 0x7fffffff) return 0x7fffffff;
    return (int)left;
}

static void client__vseterr(char *buf, size_t cap, const char *fmt, va_list ap)
{
    vsnprintf(buf, cap, fmt, ap);
}

__attribute__((format(printf, 3, 4))) static int client__fail(struct nudge_client *c, int err,
                                                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    client__vseterr(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    if (err != NUDGE_EBROKER) c->last_code = 0;
    return err;
}

/* Mark the stream unusable and fail with NUDGE_EIO (or the given err for this one call). */
__attribute__((format(printf, 3, 4))) static int client__kill(struct nudge_client *c, int err,
                                                              const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    client__vseterr(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    if (err != NUDGE_EBROKER) c->last_code = 0;
    c->dead = 1;
    return err;
}

static int client__check_usable(struct nudge_client *c)
{
    if (c->dead) {
        c->last_code = 0;
        return NUDGE_EIO; /* err still says why the connection died */
    }
    return NUDGE_OK;
}

static int client__from_wire(int werr)
{
    return werr == WIRE_ENOMEM ? NUDGE_ENOMEM : NUDGE_EINVAL;
}

/* Printable, bounded copy of a topic for error messages (escapes control bytes and quotes). */
static void client__quote(char *dst, size_t cap, const char *p, size_t len)
{
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (j + 8 >= cap) {
            memcpy(dst + j, "...", 3);
            j += 3;
            break;
        }
        if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\')
            j += (size_t)snprintf(dst + j, cap - j, "\\x%02x", ch);
        else
            dst[j++] = (char)ch;
    }
    dst[j] = '\0';
}

/* Why wire_topic_check() rejected a topic, in words. */
static const char *client__topic_reason(const char *p, size_t len, const struct wire_limits *lim)
{
    if (len == 0) return "empty";
    if (len > lim->max_topic) return "too long";
    if (!wire_utf8_valid(p, len)) return "not valid UTF-8";
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == ' ') return "contains a space";
        if (ch < 0x20 || ch == 0x7f) return "contains a control character";
        if (ch == '*') return "contains '*' (reserved for patterns)";
    }
    return "invalid";
}

/* ---- addresses and connect ---------------------------------------------------------------- */

/* Split "host:port", "[v6]:port" or "host" into host/port buffers. 0 or -1. */
static int client__split_addr(const char *addr, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *h, *p;
    size_t hlen;
    if (addr[0] == '[') {
        const char *close = strchr(addr, ']');
        if (!close) return -1;
        h = addr + 1;
        hlen = (size_t)(close - h);
        if (close[1] == '\0')
            p = CLIENT_DEFAULT_PORT;
        else if (close[1] == ':')
            p = close + 2;
        else
            return -1;
    } else {
        const char *colon = strrchr(addr, ':');
        if (colon && strchr(addr, ':') != colon) return -1; /* bare IPv6 needs brackets */
        h = addr;
        hlen = colon ? (size_t)(colon - addr) : strlen(addr);
        p = colon ? colon + 1 : CLIENT_DEFAULT_PORT;
    }
    if (hlen == 0 || hlen >= hcap || *p == '\0' || strlen(p) >= pcap) return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return -1;
    long pn = strtol(p, NULL, 10);
    if (pn < 1 || pn > 65535) return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    snprintf(port, pcap, "%s", p);
    return 0;
}

static int client__set_flags(int fd)
{
    int one = 1;
    int fl = fcntl(fd, F_GETFL, 0);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
    /* Publishes are small and latency-sensitive: no Nagle. Failure is harmless. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef SO_NOSIGPIPE
    (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    return 0;
}

/* Non-blocking connect to one resolved address, bounded by deadline. Returns fd or -errno. */
static int client__connect_one(const struct addrinfo *ai, int64_t deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) return -errno;
    if (client__set_flags(fd) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) return fd;
    if (errno != EINPROGRESS && errno != EINTR) {
        int e = errno;
        close(fd);
        return -e;
    }
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int n = poll(&pfd, 1, client__remaining(deadline));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0) {
            close(fd);
            return -ETIMEDOUT;
        }
        break;
    }
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) soerr = errno;
    if (soerr != 0) {
        close(fd);
        return -soerr;
    }
    return fd;
}

/* ---- TLS (opts->tls) ----------------------------------------------------------------------- */

/* OpenSSL's socket BIO writes with write(), which raises SIGPIPE on a closed peer; a library
 * must not change the process's signals, so the TLS records go through send(MSG_NOSIGNAL). */
static int client__bio_write(BIO *b, const char *p, int n)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t r = send(fd, p, (size_t)n, CLIENT_SEND_FLAGS);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_write(b);
    return (int)r;
}

static int client__bio_read(BIO *b, char *p, int n)
{
    int fd = (int)(intptr_t)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t r = recv(fd, p, (size_t)n, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_read(b);
    return (int)r;
}

static long client__bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int client__is_ip(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* Handshake on c->fd, verifying the broker's certificate against cafile (or the system's
 * store) and its name (server_name, else the host connected to). */
static int client__wait(struct nudge_client *c, short events, int64_t deadline, short *revents);

static int client__tls_start(struct nudge_client *c, const char *host,
                             const struct nudge_opts *opts, int64_t deadline)
{
    char why[160];
    const char *name = opts->server_name ? opts->server_name : host;
    SSL_CTX *ctx = c->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return client__fail(c, NUDGE_ENOMEM, "out of memory (TLS)");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* a broker closes without close_notify: that is an end of stream, not an error */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (opts->cafile) {
        if (SSL_CTX_load_verify_locations(ctx, opts->cafile, NULL) != 1) {
            ERR_clear_error();
            return client__fail(c, NUDGE_ETLS, "cannot load CA file %.200s", opts->cafile);
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        ERR_clear_error();
    }
    c->bio_meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "nudge socket");
    if (!c->bio_meth || !(c->ssl = SSL_new(ctx)))
        return client__fail(c, NUDGE_ENOMEM, "out of memory (TLS)");
    BIO_meth_set_write(c->bio_meth, client__bio_write);
    BIO_meth_set_read(c->bio_meth, client__bio_read);
    BIO_meth_set_ctrl(c->bio_meth, client__bio_ctrl);
    BIO *bio = BIO_new(c->bio_meth);
    if (!bio) return client__fail(c, NUDGE_ENOMEM, "out of memory (TLS)");
    BIO_set_data(bio, (void *)(intptr_t)c->fd);
    BIO_set_init(bio, 1);
    SSL_set_bio(c->ssl, bio, bio); /* c->ssl owns it */
    if (client__is_ip(name)) {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), name);
    } else {
        SSL_set_tlsext_host_name(c->ssl, name);
        SSL_set1_host(c->ssl, name);
    }
    for (;;) {
        int r = SSL_connect(c->ssl);
        if (r == 1) return NUDGE_OK;
        int e = SSL_get_error(c->ssl, r);
        short ev = 0, want = e == SSL_ERROR_WANT_READ    ? POLLIN
                             : e == SSL_ERROR_WANT_WRITE ? POLLOUT
                                                         : 0;
        if (want) {
            int n = client__wait(c, want, deadline, &ev);
            if (n < 0) return n;
            if (n == 0) return client__fail(c, NUDGE_ETIMEOUT, "timed out in the TLS handshake");
            continue;
        }
        long v = SSL_get_verify_result(c->ssl);
        if (v != X509_V_OK) {
            ERR_clear_error();
            return client__fail(c, NUDGE_ETLS, "TLS: certificate of %.100s not accepted: %s", name,
                                X509_verify_cert_error_string(v));
        }
        unsigned long ec = ERR_get_error();
        if (ec)
            ERR_error_string_n(ec, why, sizeof why);
        else
            snprintf(why, sizeof why, "%s", errno ? strerror(errno) : "connection closed");
        ERR_clear_error();
        return client__fail(c, NUDGE_ETLS, "TLS handshake with %.100s failed: %s", name, why);
    }
}

/* client__read_some for TLS: drain every decrypted byte, so that nothing waits inside OpenSSL
 * while poll() waits on the socket. */
static int client__tls_read(struct nudge_client *c)
{
    int got = 0;
    for (;;) {
        if (wire_buf_reserve(&c->in, 16384) != 0)
            return client__fail(c, NUDGE_ENOMEM, "out of memory (receive buffer)");
        size_t n = 0;
        errno = 0;
        if (SSL_read_ex(c->ssl, c->in.data + c->in.len, c->in.cap - c->in.len, &n) == 1) {
            c->in.len += n;
            got = 1;
            continue;
        }
        int e = SSL_get_error(c->ssl, 0);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return got;
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0)) {
            ERR_clear_error();
            c->eof = 1;
            return got;
        }
        unsigned long ec = ERR_get_error();
        char why[160];
        if (ec)
            ERR_error_string_n(ec, why, sizeof why);
        else
            snprintf(why, sizeof why, "%s", strerror(errno));
        ERR_clear_error();
        return client__kill(c, NUDGE_EIO, "connection lost: TLS: %s", why);
    }
}

/* client__write_some for TLS. */
static int client__tls_write(struct nudge_client *c)
{
    while (c->out_off < c->out.len) {
        size_t n = 0;
        errno = 0;
        if (SSL_write_ex(c->ssl, c->out.data + c->out_off, c->out.len - c->out_off, &n) == 1) {
            c->out_off += n;
            continue;
        }
        int e = SSL_get_error(c->ssl, 0);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) return 0;
        unsigned long ec = ERR_get_error();
        char why[160];
        if (ec)
            ERR_error_string_n(ec, why, sizeof why);
        else
            snprintf(why, sizeof why, "%s", errno ? strerror(errno) : "connection closed");
        ERR_clear_error();
        return client__kill(c, NUDGE_EIO, "connection lost: TLS: %s", why);
    }
    wire_buf_reset(&c->out);
    c->out_off = 0;
    return 0;
}

/* ---- raw I/O ------------------------------------------------------------------------------ */

/* Read what the socket has now (non-blocking). 1 = got bytes, 0 = nothing yet (EAGAIN),
 * sets c->eof on orderly close; <0 = fatal (connection marked dead). */
static int client__read_some(struct nudge_client *c)
{
    if (c->eof) return 0;
    if (c->ssl) return client__tls_read(c);
    /* Compact once the consumed prefix dominates, so `in` does not grow without bound. */
    if (c->in_off > 0 && c->in_off >= c->in.len / 2) {
        memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in_off = 0;
    }
    if (wire_buf_reserve(&c->in, CLIENT_READ_CHUNK) != 0)
        return client__fail(c, NUDGE_ENOMEM, "out of memory (receive buffer)");
    for (;;) {
        ssize_t n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
        if (n > 0) {
            c->in.len += (size_t)n;
            return 1;
        }
        if (n == 0) {
            c->eof = 1;
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        return client__kill(c, NUDGE_EIO, "connection lost: recv: %s", strerror(errno));
    }
}

/* Write what the kernel takes now. 0 = ok (maybe partial), <0 = fatal. */
static int client__write_some(struct nudge_client *c)
{
    if (c->ssl) return client__tls_write(c);
    while (c->out_off < c->out.len) {
        ssize_t n =
            send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, CLIENT_SEND_FLAGS);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
        return client__kill(c, NUDGE_EIO, "connection lost: send: %s",
                            n < 0 ? strerror(errno) : "wrote nothing");
    }
    wire_buf_reset(&c->out);
    c->out_off = 0;
    return 0;
}

/* Wait until fd is ready for `events` or the deadline passes. 1 ready, 0 timeout, <0 fatal. */
static int client__wait(struct nudge_client *c, short events, int64_t deadline, short *revents)
{
    for (;;) {
        struct pollfd pfd = {.fd = c->fd, .events = events};
        int n = poll(&pfd, 1, client__remaining(deadline));
        if (n < 0 && errno == EINTR) {
            if (client__remaining(deadline) == 0) return 0;
            continue;
        }
        if (n < 0) return client__kill(c, NUDGE_EIO, "poll: %s", strerror(errno));
        *revents = pfd.revents;
        return n;
    }
}

/* Write everything queued, reading incoming bytes meanwhile. */
static int client__flush(struct nudge_client *c, int64_t deadline)
{
    int rc = client__write_some(c);
    while (rc == 0 && c->out_off < c->out.len) {
        short ev = 0;
        short want = (short)(POLLOUT | (c->eof ? 0 : POLLIN));
        int n = client__wait(c, want, deadline, &ev);
        if (n < 0) return n;
        if (n == 0)
            return client__fail(c, NUDGE_ETIMEOUT, "timed out writing to broker (%zu bytes queued)",
                                c->out.len - c->out_off);
        if (ev & POLLIN) {
            rc = client__read_some(c);
            if (rc < 0) return rc;
        }
        rc = client__write_some(c); /* also reports POLLERR/POLLHUP as a send error */
    }
    return rc;
}

/* ---- taking answers out of the input buffer ----------------------------------------------- */

enum client_want {
    WANT_WELCOME, /* the first frame, during nudge_connect */
    WANT_ID,      /* ack/error (or pong when ping) with a given id */
    WANT_NEXT,    /* oldest ack/error with an id: nudge_recv_ack */
};

static int client__is_abandoned(struct nudge_client *c, uint64_t id, int remove)
{
    for (size_t i = 0; i < c->nabandoned; i++) {
        if (c->abandoned[i] != id) continue;
        if (remove) c->abandoned[i] = c->abandoned[--c->nabandoned];
        return 1;
    }
    return 0;
}

/* Remove frame [off, off+len) from `in`: the head is consumed by moving in_off (the common,
 * in-order case costs nothing); a frame further in is cut out. Returns where the frame that
 * followed it starts now. */
static size_t client__drop_frame(struct nudge_client *c, size_t off, size_t len)
{
    if (off == c->in_off) {
        c->in_off += len;
        if (c->in_off == c->in.len) c->in_off = c->in.len = 0;
        return c->in_off;
    }
    memmove(c->in.data + off, c->in.data + off + len, c->in.len - off - len);
    c->in.len -= len;
    return off;
}

/* A frame taken out of `in`. msg points into `body` (a copy) when the frame was not at the
 * head of `in`; at the head it points into `in` itself, which is consumed (head_len bytes)
 * only by client__frame_free, so nothing may read into `in` while the frame is held. */
struct client_frame {
    struct nudge_client *c;
    uint8_t *body;
    size_t head_len;
    struct pub_msg msg;
};

static void client__frame_free(struct client_frame *f)
{
    pub_msg_clear(&f->msg);
    free(f->body);
    f->body = NULL;
    if (f->head_len) (void)client__drop_frame(f->c, f->c->in_off, f->head_len);
    f->head_len = 0;
}

/* Look through the complete frames in `in` for the one `want` asks for and hand it over in *f
 * (caller frees with client__frame_free). Frames that belong to someone else stay; late
 * answers nobody waits for and broker pings (answered here) are removed.
 * Returns 1 found, 0 need more bytes, <0 fatal. */
static int client__scan(struct nudge_client *c, enum client_want want, int is_ping, uint64_t id,
                        struct client_frame *f)
{
    size_t off = c->in_off;
    struct pub_msg *m = &f->msg;
    while (off < c->in.len) {
        const uint8_t *body;
        uint32_t body_len;
        size_t used;
        int rc = pub_frame_next(c->in.data + off, c->in.len - off, c->recv_lim.max_frame, &body,
                                &body_len, &used);
        if (rc == WIRE_EAGAIN) return 0;
        if (rc != WIRE_OK)
            return client__kill(c, NUDGE_EPROTO, "bad frame from broker: %s",
                                rc == WIRE_ETOOBIG ? "length over the limit" : "zero length");
        rc = pub_decode(body, body_len, &c->recv_lim, m);
        if (rc != WIRE_OK)
            return client__kill(c, NUDGE_EPROTO, "undecodable message from broker (%s)",
                                wire_code_name(wire_code_of(rc)));
        int take = 0, drop = 0;
        if (want == WANT_WELCOME) {
            take = 1; /* the first frame must be welcome (or an error); checked by caller */
        } else if (m->type == PUB_ERROR && m->id == 0) {
            take = 1; /* connection-level error: always surfaces, then the stream is dead */
        } else if (m->type == PUB_ACK || m->type == PUB_ERROR) {
            if (want == WANT_ID && m->id == id)
                take = 1;
            else if (client__is_abandoned(c, m->id, 1))
                drop = 1;
            else if (want == WANT_NEXT)
                take = 1;
        } else if (m->type == PUB_PONG) {
            if (want == WANT_ID && is_ping && m->id == id) {
                take = 1;
            } else { /* late pong of a timed-out ping: forget it */
                (void)client__is_abandoned(c, m->id, 1);
                drop = 1;
            }
        } else if (m->type == PUB_PING) {
            /* The broker checking on us: answer, then forget the frame. */
            uint64_t pid = m->id;
            pub_msg_clear(m);
            off = client__drop_frame(c, off, used);
            if (pub_encode_pong(&c->out, pid) != 0)
                return client__fail(c, NUDGE_ENOMEM, "out of memory (pong)");
            rc = client__write_some(c);
            if (rc < 0) return rc;
            continue;
        } else {
            int t = (int)m->type;
            pub_msg_clear(m);
            return client__kill(c, NUDGE_EPROTO, "unexpected message type %d from broker", t);
        }
        if (take && off == c->in_off) { /* in order: decode in place, consume when freed */
            f->c = c;
            f->head_len = used;
            return 1;
        }
        pub_msg_clear(m);
        if (drop) {
            off = client__drop_frame(c, off, used);
            continue;
        }
        if (!take) {
            off += used;
            continue;
        }
        /* Out of order: copy the body out, decode the copy, cut the frame out of `in`. */
        f->body = malloc(body_len);
        if (!f->body) return client__fail(c, NUDGE_ENOMEM, "out of memory (frame)");
        memcpy(f->body, body, body_len);
        (void)client__drop_frame(c, off, used);
        rc = pub_decode(f->body, body_len, &c->recv_lim, m);
        if (rc != WIRE_OK) { /* decoded fine a moment ago; only ENOMEM can differ */
            free(f->body);
            f->body = NULL;
            return client__fail(c, NUDGE_ENOMEM, "out of memory (decode)");
        }
        return 1;
    }
    return 0;
}

/* Wait for the answer `want` asks for, reading as needed, until the deadline. */
static int client__take(struct nudge_client *c, enum client_want want, int is_ping, uint64_t id,
                        int64_t deadline, struct client_frame *f)
{
    f->c = NULL; /* msg is written by pub_decode; only cleared once a decode succeeded */
    f->body = NULL;
    f->head_len = 0;
    for (;;) {
        int rc = client__scan(c, want, is_ping, id, f);
        if (rc != 0) return rc < 0 ? rc : NUDGE_OK;
        if (c->eof) {
            int partial = c->in.len > c->in_off;
            return client__kill(c, NUDGE_EIO, "connection closed by broker%s",
                                partial ? " in the middle of a frame" : "");
        }
        short ev = 0;
        int n = client__wait(c, POLLIN, deadline, &ev);
        if (n < 0) return n;
        if (n == 0) return client__fail(c, NUDGE_ETIMEOUT, "timed out waiting for the broker");
        rc = client__read_some(c);
        if (rc < 0) return rc;
    }
}

/* Turn a taken "error" frame into NUDGE_EBROKER; an error without id also kills the stream. */
static int client__broker_error(struct nudge_client *c, const struct pub_msg *m)
{
    int code = m->code;
    int len = m->msg.len > 200 ? 200 : (int)m->msg.len;
    c->last_code = code;
    snprintf(c->err, sizeof c->err, "%s: %.*s", wire_code_name(code), len,
             m->msg.p ? m->msg.p : "");
    if (m->id == 0) c->dead = 1;
    return NUDGE_EBROKER;
}

/* Remember a request whose answer nobody will wait for. */
static void client__abandon(struct nudge_client *c, uint64_t id)
{
    if (c->nabandoned == CLIENT_ABANDONED_MAX) {
        /* The broker has not answered 32 requests: treat the connection as gone. */
        c->dead = 1;
        snprintf(c->err, sizeof c->err, "broker stopped answering (%d requests timed out)",
                 CLIENT_ABANDONED_MAX);
        return;
    }
    c->abandoned[c->nabandoned++] = id;
}

/* ---- public API --------------------------------------------------------------------------- */

const char *nudge_strerror(int err)
{
    switch (err) {
    case NUDGE_OK:
        return "ok";
    case NUDGE_EINVAL:
        return "invalid argument";
    case NUDGE_ECONNECT:
        return "cannot connect";
    case NUDGE_EIO:
        return "connection lost";
    case NUDGE_ETIMEOUT:
        return "timed out";
    case NUDGE_EPROTO:
        return "protocol error";
    case NUDGE_EBROKER:
        return "broker error";
    case NUDGE_ENOMEM:
        return "out of memory";
    case NUDGE_ETLS:
        return "TLS failure";
    default:
        return "unknown error";
    }
}

const char *nudge_version(void)
{
    return NUDGE_VERSION;
}

const char *nudge_last_error(const nudge_client_t *c)
{
    if (!c) return "no client";
    return c->err;
}

int nudge_last_code(const nudge_client_t *c)
{
    return c ? c->last_code : 0;
}

const char *nudge_epoch(const nudge_client_t *c)
{
    return c ? c->epoch : "";
}

void nudge_close(nudge_client_t *c)
{
    if (!c) return;
    SSL_free(c->ssl); /* frees its BIO */
    SSL_CTX_free(c->ssl_ctx);
    BIO_meth_free(c->bio_meth);
    if (c->fd >= 0) close(c->fd);
    wire_buf_free(&c->out);
    wire_buf_free(&c->in);
    wire_buf_free(&c->scratch);
    free(c);
}

static void client__copy_str(char *dst, size_t cap, struct wire_str s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n) memcpy(dst, s.p, n);
    dst[n] = '\0';
}

/* Send hello, wait for welcome, adopt its limits. */
static int client__handshake(struct nudge_client *c, const char *name, const char *key,
                             int64_t deadline)
{
    if (pub_encode_hello_key(&c->out, WIRE_VERSION, name, key) != 0)
        return client__fail(c, NUDGE_ENOMEM, "out of memory (hello)");
    int rc = client__flush(c, deadline);
    if (rc < 0) return rc;
    struct client_frame f;
    rc = client__take(c, WANT_WELCOME, 0, 0, deadline, &f);
    if (rc < 0) return rc;
    if (f.msg.type == PUB_ERROR) {
        rc = client__broker_error(c, &f.msg);
        c->dead = 1;
    } else if (f.msg.type != PUB_WELCOME) {
        rc = client__kill(c, NUDGE_EPROTO, "broker answered hello with message type %d",
                          (int)f.msg.type);
    } else {
        client__copy_str(c->epoch, sizeof c->epoch, f.msg.epoch);
        client__copy_str(c->server, sizeof c->server, f.msg.server);
        /* 0 = not announced: keep the protocol ceilings. */
        if (f.msg.max_frame) c->send_lim.max_frame = f.msg.max_frame;
        if (f.msg.max_topics) c->send_lim.max_topics = f.msg.max_topics;
        if (f.msg.max_data) c->send_lim.max_data = f.msg.max_data;
        if (f.msg.max_topic) c->send_lim.max_topic = f.msg.max_topic;
        wire_limits_clamp(&c->send_lim);
        rc = NUDGE_OK;
    }
    client__frame_free(&f);
    return rc;
}

int nudge_connect_ex(const char *addr, const struct nudge_opts *opts, nudge_client_t **out,
                     char *errbuf, size_t errcap)
{
    char host[256], port[16];
    struct nudge_client *c;
    struct addrinfo hints, *res = NULL;
    int rc, last = 0;

    if (out) *out = NULL;
    if (errbuf && errcap) errbuf[0] = '\0';
    if (!out) return NUDGE_EINVAL;
    c = calloc(1, sizeof *c);
    if (!c) {
        if (errbuf && errcap) snprintf(errbuf, errcap, "out of memory");
        return NUDGE_ENOMEM;
    }
    c->fd = -1;
    c->next_id = 1;
    c->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS;
    c->send_lim = (struct wire_limits){.max_frame = WIRE_FRAME_MAX,
                                       .max_topic = WIRE_TOPIC_LEN_MAX,
                                       .max_data = WIRE_DATA_MAX,
                                       .max_topics = WIRE_TOPICS_MAX};
    c->recv_lim = c->send_lim;
    int64_t deadline = client__deadline(c);

    if (!addr) addr = CLIENT_DEFAULT_ADDR;
    if (client__split_addr(addr, host, sizeof host, port, sizeof port) != 0) {
        rc = client__fail(c, NUDGE_EINVAL, "bad address \"%.100s\" (want host:port or [v6]:port)",
                          addr);
        goto out;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV; /* no AI_ADDRCONFIG: it hides ::1 on IPv4-only hosts */
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        rc = client__fail(c, NUDGE_ECONNECT, "cannot resolve %.100s: %s", host, gai_strerror(gai));
        goto out;
    }
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = client__connect_one(ai, deadline);
        if (fd >= 0) {
            c->fd = fd;
            break;
        }
        last = -fd;
        if (client__remaining(deadline) == 0) break;
    }
    if (c->fd < 0) {
        rc = client__fail(c, NUDGE_ECONNECT, "cannot connect to %.100s: %s", addr,
                          last == ETIMEDOUT ? "timed out" : strerror(last));
        goto out;
    }
    if (opts && opts->tls && (rc = client__tls_start(c, host, opts, deadline)) != NUDGE_OK)
        goto out;
    rc = client__handshake(c, opts && opts->client_name ? opts->client_name : "libnudge",
                           opts ? opts->api_key : NULL, deadline);
out:
    if (res) freeaddrinfo(res);
    if (rc != NUDGE_OK) {
        if (errbuf && errcap) snprintf(errbuf, errcap, "%s", c->err);
        nudge_close(c);
        return rc;
    }
    *out = c;
    return NUDGE_OK;
}

int nudge_connect(const char *addr, const struct nudge_opts *opts, nudge_client_t **out)
{
    return nudge_connect_ex(addr, opts, out, NULL, 0);
}

/* Validate p against the broker's limits and append its frame to `out`. On error nothing is
 * queued and no id is used. */
static int client__queue(struct nudge_client *c, const struct nudge_pub *p, uint64_t *id_out)
{
    struct wire_str topics[WIRE_TOPICS_MAX];
    const struct wire_limits *lim = &c->send_lim;
    char q[80];

    if (!p || (p->ntopics > 0 && !p->topics))
        return client__fail(c, NUDGE_EINVAL, "publish without topics");
    if (p->ntopics == 0) return client__fail(c, NUDGE_EINVAL, "publish without topics");
    if (p->ntopics > lim->max_topics)
        return client__fail(c, NUDGE_EINVAL, "too many topics: %zu (broker max_topics is %u)",
                            p->ntopics, lim->max_topics);
    for (size_t i = 0; i < p->ntopics; i++) {
        const char *t = p->topics[i];
        if (!t) return client__fail(c, NUDGE_EINVAL, "topic %zu is NULL", i + 1);
        size_t len = strlen(t);
        if (wire_topic_check(t, len, lim) != WIRE_OK) {
            client__quote(q, sizeof q, t, len);
            return client__fail(c, NUDGE_EINVAL, "bad topic %zu \"%s\": %s", i + 1, q,
                                client__topic_reason(t, len, lim));
        }
        topics[i].p = t;
        topics[i].len = (uint32_t)len;
    }
    wire_buf_reset(&c->scratch);
    if (p->data_json) {
        int rc = wire_json_to_data(p->data_json, strlen(p->data_json), &c->scratch);
        if (rc != WIRE_OK) return client__fail(c, client__from_wire(rc), "data is not valid JSON");
        if (c->scratch.len > lim->max_data)
            return client__fail(c, NUDGE_EINVAL,
                                "data is %zu bytes as msgpack (broker max_data is %u)",
                                c->scratch.len, lim->max_data);
        rc = wire_data_check(c->scratch.data, c->scratch.len, lim);
        if (rc != WIRE_OK)
            return client__fail(c, client__from_wire(rc), "data not accepted: %s",
                                wire_code_name(wire_code_of(rc)));
    }
    if (p->origin) {
        size_t olen = strlen(p->origin);
        if (olen == 0 || !wire_utf8_valid(p->origin, olen))
            return client__fail(c, NUDGE_EINVAL, "bad origin (want a connection id)");
    }
    size_t before = c->out.len;
    uint64_t id = c->next_id;
    int rc = pub_encode_publish_ex(
        &c->out, id, topics, (uint32_t)p->ntopics, p->data_json ? c->scratch.data : NULL,
        p->data_json ? c->scratch.len : 0, p->origin, p->origin && p->skip_origin);
    if (rc != WIRE_OK) {
        c->out.len = before;
        return client__fail(c, NUDGE_ENOMEM, "out of memory (encode)");
    }
    size_t body = c->out.len - before - PUB_PREFIX;
    if (body > lim->max_frame) {
        c->out.len = before;
        return client__fail(c, NUDGE_EINVAL, "publish is %zu bytes (broker max_frame is %u)", body,
                            lim->max_frame);
    }
    c->next_id++;
    if (id_out) *id_out = id;
    return NUDGE_OK;
}

int nudge_send(nudge_client_t *c, const struct nudge_pub *p, uint64_t *id_out)
{
    if (!c) return NUDGE_EINVAL;
    int rc = client__check_usable(c);
    if (rc < 0) return rc;
    if (c->out.len - c->out_off >= CLIENT_FLUSH_AT) {
        rc = client__flush(c, client__deadline(c));
        if (rc < 0) return rc;
    }
    rc = client__queue(c, p, id_out);
    if (rc < 0) return rc;
    c->npending++;
    return NUDGE_OK;
}

int nudge_flush(nudge_client_t *c)
{
    if (!c) return NUDGE_EINVAL;
    int rc = client__check_usable(c);
    if (rc < 0) return rc;
    return client__flush(c, client__deadline(c));
}

/* Copy an ack's seqs out (at most cap) and report how many it carried. */
static void client__copy_seqs(const struct pub_msg *m, uint64_t *seqs_out, size_t cap,
                              size_t *n_out)
{
    size_t n = m->nseqs;
    if (seqs_out)
        for (size_t i = 0; i < n && i < cap; i++)
            seqs_out[i] = m->seqs[i];
    if (n_out) *n_out = n;
}

int nudge_recv_ack(nudge_client_t *c, uint64_t *id_out, uint64_t *seqs_out, size_t cap,
                   size_t *n_out)
{
    if (id_out) *id_out = 0;
    if (n_out) *n_out = 0;
    if (!c) return NUDGE_EINVAL;
    int rc = client__check_usable(c);
    if (rc < 0) return rc;
    if (c->npending == 0)
        return client__fail(c, NUDGE_EINVAL, "no publish pending (nudge_send first)");
    int64_t deadline = client__deadline(c);
    rc = client__flush(c, deadline);
    if (rc < 0) return rc;
    struct client_frame f;
    rc = client__take(c, WANT_NEXT, 0, 0, deadline, &f);
    if (rc < 0) return rc;
    const struct pub_msg *m = &f.msg;
    if (m->id >= c->next_id) {
        rc = client__kill(c, NUDGE_EPROTO, "answer for unknown request id %llu",
                          (unsigned long long)m->id);
    } else {
        if (m->id) c->npending--;
        if (id_out) *id_out = m->id;
        if (m->type == PUB_ERROR) {
            rc = client__broker_error(c, m);
        } else {
            client__copy_seqs(m, seqs_out, cap, n_out);
            c->last_code = 0;
            rc = NUDGE_OK;
        }
    }
    client__frame_free(&f);
    return rc;
}

int nudge_publish_ex(nudge_client_t *c, const struct nudge_pub *p, uint64_t *seqs_out)
{
    uint64_t id;
    if (!c) return NUDGE_EINVAL;
    int rc = client__check_usable(c);
    if (rc < 0) return rc;
    int64_t deadline = client__deadline(c);
    rc = client__queue(c, p, &id);
    if (rc < 0) return rc;
    rc = client__flush(c, deadline);
    if (rc < 0) {
        /* The frame stays queued (never half-sent): its answer will come after a later flush. */
        if (rc == NUDGE_ETIMEOUT) client__abandon(c, id);
        return rc;
    }
    struct client_frame f;
    rc = client__take(c, WANT_ID, 0, id, deadline, &f);
    if (rc < 0) {
        if (rc == NUDGE_ETIMEOUT) client__abandon(c, id);
        return rc;
    }
    const struct pub_msg *m = &f.msg;
    if (m->type == PUB_ERROR) {
        rc = client__broker_error(c, m);
    } else if (m->nseqs != p->ntopics) {
        rc = client__fail(c, NUDGE_EPROTO, "ack for request %llu has %u seqs, expected %zu",
                          (unsigned long long)id, m->nseqs, p->ntopics);
    } else {
        client__copy_seqs(m, seqs_out, p->ntopics, NULL);
        c->last_code = 0;
        rc = NUDGE_OK;
    }
    client__frame_free(&f);
    return rc;
}

int nudge_publish(nudge_client_t *c, const char *const *topics, size_t n, const char *data_json,
                  uint64_t *seqs_out)
{
    struct nudge_pub p = {.topics = topics, .ntopics = n, .data_json = data_json};
    return nudge_publish_ex(c, &p, seqs_out);
}

void nudge_set_timeout(nudge_client_t *c, int timeout_ms)
{
    if (c) c->timeout_ms = timeout_ms > 0 ? timeout_ms : CLIENT_DEFAULT_TIMEOUT_MS;
}

int nudge_ping(nudge_client_t *c)
{
    if (!c) return NUDGE_EINVAL;
    int rc = client__check_usable(c);
    if (rc < 0) return rc;
    int64_t deadline = client__deadline(c);
    uint64_t id = c->next_id++;
    if (pub_encode_ping(&c->out, id) != 0)
        return client__fail(c, NUDGE_ENOMEM, "out of memory (ping)");
    rc = client__flush(c, deadline);
    if (rc < 0) {
        if (rc == NUDGE_ETIMEOUT) client__abandon(c, id);
        return rc;
    }
    struct client_frame f;
    rc = client__take(c, WANT_ID, 1, id, deadline, &f);
    if (rc < 0) {
        if (rc == NUDGE_ETIMEOUT) client__abandon(c, id);
        return rc;
    }
    if (f.msg.type == PUB_ERROR) {
        rc = client__broker_error(c, &f.msg);
    } else if (f.msg.type != PUB_PONG) {
        rc = client__fail(c, NUDGE_EPROTO, "broker answered ping %llu with message type %d",
                          (unsigned long long)id, (int)f.msg.type);
    } else {
        c->last_code = 0;
        rc = NUDGE_OK;
    }
    client__frame_free(&f);
    return rc;
}
