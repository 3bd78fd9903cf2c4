/* wsc: a hand-made blocking WebSocket client for tests (RFC 6455, client side).
 *
 * Deliberately small and explicit: the handshake is written and parsed by hand, frames are built
 * by hand, so a test can send anything at all. Receiving keeps a byte buffer (w->in) and parses
 * whole frames out of it; a message is returned only once complete. Timeouts are absolute per
 * call: no call blocks longer than its timeout_ms (plus one send).
 *
 * TLS (wsc_connect_tls): OpenSSL on the same socket, made non-blocking so every wait is still a
 * poll() with the call's deadline; fill() reads what OpenSSL already holds before polling. */
#include "wsc.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
static const int handshake_timeout_ms = 5000;
static const int helper_timeout_ms = 5000;

int wstr_eq(struct wire_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.p, c, n) == 0);
}

static void wstr_copy(char *dst, size_t cap, struct wire_str s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n) memcpy(dst, s.p, n);
    dst[n] = '\0';
}

/* base64(SHA1(key + GUID)) into out (>= 29 bytes). */
static int accept_of(const char *key, char *out)
{
    char cat[128];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = snprintf(cat, sizeof cat, "%s%s", key, ws_guid);
    if (n < 0 || (size_t)n >= sizeof cat) return -1;
    if (EVP_Digest(cat, (size_t)n, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20) return -1;
    EVP_EncodeBlock((unsigned char *)out, md, 20);
    return 0;
}

/* Value of header name in the response head (NUL-terminated), copied into val. 0 or -1. */
static int header_value(const char *head, const char *name, char *val, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            const char *e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
                len--;
            if (len >= cap) len = cap - 1;
            memcpy(val, v, len);
            val[len] = '\0';
            return 0;
        }
    }
    return -1;
}

/* Read more bytes into w->in, waiting until deadline (absolute ms). WSC_OK when bytes arrived,
 * WSC_TIMEOUT, or WSC_EOF. */
static int fill(struct wsc *w, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left < 0) left = 0;
        struct pollfd pfd = {w->fd, POLLIN, 0};
        int r = w->ssl && SSL_pending(w->ssl) > 0 ? 1 : poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return WSC_EIO;
        if (r == 0) return WSC_TIMEOUT;
        if (wire_buf_reserve(&w->in, 65536) != 0) return WSC_EIO;
        if (w->ssl) {
            int got = SSL_read(w->ssl, w->in.data + w->in.len, 65536);
            if (got > 0) {
                w->in.len += (size_t)got;
                return WSC_OK;
            }
            int e = SSL_get_error(w->ssl, got);
            ERR_clear_error();
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;
            w->closed = 1;
            return WSC_EOF;
        }
        ssize_t got = recv(w->fd, w->in.data + w->in.len, 65536, MSG_DONTWAIT);
        if (got == 0) {
            w->closed = 1;
            return WSC_EOF;
        }
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) continue;
            w->closed = 1;
            return WSC_EOF;
        }
        w->in.len += (size_t)got;
        return WSC_OK;
    }
}

int wsc_connect_ex(struct wsc *w, uint16_t port, const char *path, const char *subprotocol,
                   int *http_status)
{
    int fd = tcp_connect(port);
    if (fd < 0) {
        memset(w, 0, sizeof *w);
        w->fd = -1;
        if (http_status) *http_status = 0;
        return WSC_EIO;
    }
    return wsc_handshake(w, fd, port, path, subprotocol, http_status);
}

static int upgrade(struct wsc *w, uint16_t port, const char *path, const char *subprotocol,
                   int *http_status);

int wsc_handshake(struct wsc *w, int fd, uint16_t port, const char *path, const char *subprotocol,
                  int *http_status)
{
    memset(w, 0, sizeof *w);
    w->fd = fd;
    return upgrade(w, port, path, subprotocol, http_status);
}

/* Wait for fd to be ready for what OpenSSL asked (e), until deadline. 1 ready, 0 not. */
static int tls_wait(struct wsc *w, int e, int64_t deadline)
{
    short ev = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
    if (!ev) return 0;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) return 0;
        struct pollfd pfd = {w->fd, ev, 0};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        return r > 0;
    }
}

int wsc_connect_tls(struct wsc *w, uint16_t port, const char *cafile, const char *subprotocol,
                    char *err, size_t errcap)
{
    return wsc_handshake_tls(w, tcp_connect(port), port, cafile, subprotocol, err, errcap);
}

int wsc_handshake_tls(struct wsc *w, int fd, uint16_t port, const char *cafile,
                      const char *subprotocol, char *err, size_t errcap)
{
    memset(w, 0, sizeof *w);
    w->fd = fd;
    if (err && errcap) err[0] = '\0';
    if (w->fd < 0) goto fail;
    int fl = fcntl(w->fd, F_GETFL, 0);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    w->ssl_ctx = ctx;
    if (fl < 0 || fcntl(w->fd, F_SETFL, fl | O_NONBLOCK) < 0 || !ctx) goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cafile ? SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1
               : SSL_CTX_set_default_verify_paths(ctx) != 1)
        goto fail;
    if (!(w->ssl = SSL_new(ctx)) || SSL_set_fd(w->ssl, w->fd) != 1) goto fail;
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(w->ssl), "127.0.0.1");
    int64_t deadline = now_ms() + handshake_timeout_ms;
    for (;;) {
        int r = SSL_connect(w->ssl);
        if (r == 1) break;
        int e = SSL_get_error(w->ssl, r);
        if (tls_wait(w, e, deadline)) continue;
        if (err && errcap) {
            long v = SSL_get_verify_result(w->ssl);
            snprintf(err, errcap, "%s",
                     v != X509_V_OK ? X509_verify_cert_error_string(v) : "handshake failed");
        }
        goto fail;
    }
    return upgrade(w, port, "/", subprotocol, NULL);
fail:
    ERR_clear_error();
    wsc_free(w, 0);
    return WSC_EIO;
}

static int upgrade(struct wsc *w, uint16_t port, const char *path, const char *subprotocol,
                   int *http_status)
{
    w->auto_pong = 1;
    w->next_id = 1;
    wire_limits_default(&w->lim);
    w->lim.max_frame = WIRE_FRAME_MAX;
    w->lim.max_topics = WIRE_TOPICS_MAX;
    w->lim.max_data = WIRE_DATA_MAX;
    w->lim.max_topic = WIRE_TOPIC_LEN_MAX;
    if (http_status) *http_status = 0;

    unsigned char raw[16];
    char key[32], want[32];
    if (RAND_bytes(raw, sizeof raw) != 1)
        for (size_t i = 0; i < sizeof raw; i++)
            raw[i] = (unsigned char)rand();
    EVP_EncodeBlock((unsigned char *)key, raw, sizeof raw);
    if (accept_of(key, want) != 0) goto fail;
    char req[1024];
    char proto_hdr[128] = "";
    if (subprotocol)
        snprintf(proto_hdr, sizeof proto_hdr, "Sec-WebSocket-Protocol: %s\r\n", subprotocol);
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     path ? path : "/", (unsigned)port, key, proto_hdr);
    if (n < 0 || (size_t)n >= sizeof req || wsc_send_raw(w, req, (size_t)n) != 0) goto fail;

    int64_t deadline = now_ms() + handshake_timeout_ms;
    char *end = NULL;
    while (!end) {
        if (fill(w, deadline) != WSC_OK) goto fail;
        if (wire_buf_reserve(&w->in, 1) != 0) goto fail;
        w->in.data[w->in.len] = '\0';
        end = strstr((char *)w->in.data, "\r\n\r\n");
        if (!end && w->in.len > 16384) goto fail;
    }
    size_t head_len = (size_t)(end - (char *)w->in.data) + 4;
    char *head = malloc(head_len + 1);
    if (!head) goto fail;
    memcpy(head, w->in.data, head_len);
    head[head_len] = '\0';
    memmove(w->in.data, w->in.data + head_len, w->in.len - head_len);
    w->in.len -= head_len;

    int status = 0;
    sscanf(head, "HTTP/1.%*d %d", &status);
    if (http_status) *http_status = status;
    char got[128];
    int ok = status == 101 && header_value(head, "Sec-WebSocket-Accept", got, sizeof got) == 0 &&
             strcmp(got, want) == 0;
    if (ok && header_value(head, "Sec-WebSocket-Protocol", got, sizeof got) == 0) {
        size_t gl = strlen(got) < sizeof w->protocol - 1 ? strlen(got) : sizeof w->protocol - 1;
        memcpy(w->protocol, got, gl);
        w->protocol[gl] = '\0';
        if (!subprotocol || strcmp(got, subprotocol) != 0)
            ok = 0; /* server picked something not offered */
    }
    free(head);
    if (!ok) goto fail;
    w->fmt = strcmp(w->protocol, SUB_PROTO_MSGPACK) == 0 ? SUB_MSGPACK : SUB_JSON;
    return WSC_OK;
fail:
    wsc_free(w, 0);
    return WSC_EIO;
}

int wsc_connect(struct wsc *w, uint16_t port, const char *subprotocol)
{
    return wsc_connect_ex(w, port, "/", subprotocol, NULL);
}

void wsc_free(struct wsc *w, int abort)
{
    if (w->fd >= 0) {
        if (abort) {
            struct linger lg = {1, 0};
            setsockopt(w->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(w->fd);
    }
    w->fd = -1;
    SSL_free(w->ssl);
    SSL_CTX_free(w->ssl_ctx);
    w->ssl = NULL;
    w->ssl_ctx = NULL;
    wire_buf_free(&w->in);
    wire_buf_free(&w->msg);
}

void wsc_close(struct wsc *w, int timeout_ms)
{
    if (w->fd >= 0 && !w->closed) {
        if (!w->sent_close) wsc_send_close(w, 1000, NULL);
        int64_t deadline = now_ms() + timeout_ms;
        while (!w->closed && now_ms() < deadline) {
            int rc = wsc_recv(w, (int)(deadline - now_ms()));
            if (rc == WSC_CLOSED || rc == WSC_EOF || rc == WSC_EIO || rc == WSC_TIMEOUT ||
                rc == WSC_EPROTO)
                break;
        }
    }
    wsc_free(w, 0);
}

/* ---- sending ------------------------------------------------------------------------------- */

int wsc_send_raw(struct wsc *w, const void *p, size_t n)
{
    if (w->fd < 0) return WSC_EIO;
    if (w->ssl) { /* non-blocking: wait for room, at most handshake_timeout_ms in all */
        int64_t deadline = now_ms() + handshake_timeout_ms;
        const uint8_t *b = p;
        while (n > 0) {
            size_t done = 0;
            if (SSL_write_ex(w->ssl, b, n, &done) == 1) {
                b += done;
                n -= done;
                continue;
            }
            int e = SSL_get_error(w->ssl, 0);
            ERR_clear_error();
            if (!tls_wait(w, e, deadline)) return WSC_EIO;
        }
        return WSC_OK;
    }
    return send_all(w->fd, p, n) == 0 ? WSC_OK : WSC_EIO;
}

int wsc_send_frame_ex(struct wsc *w, uint8_t fin_op, const void *p, size_t n, int mask)
{
    uint8_t *f = malloc(n + 14);
    if (!f) return WSC_EIO;
    size_t h = 0;
    f[h++] = fin_op;
    uint8_t mbit = mask ? 0x80 : 0;
    if (n < 126) {
        f[h++] = (uint8_t)(mbit | n);
    } else if (n <= 0xffff) {
        f[h++] = mbit | 126;
        f[h++] = (uint8_t)(n >> 8);
        f[h++] = (uint8_t)n;
    } else {
        f[h++] = mbit | 127;
        for (int i = 7; i >= 0; i--)
            f[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    uint8_t mk[4] = {0, 0, 0, 0};
    if (mask) {
        if (RAND_bytes(mk, 4) != 1)
            for (int i = 0; i < 4; i++)
                mk[i] = (uint8_t)rand();
        memcpy(f + h, mk, 4);
        h += 4;
    }
    const uint8_t *src = p;
    for (size_t i = 0; i < n; i++)
        f[h + i] = (uint8_t)(src[i] ^ mk[i & 3]);
    int rc = wsc_send_raw(w, f, h + n);
    free(f);
    return rc;
}

int wsc_send_frame(struct wsc *w, int op, const void *p, size_t n)
{
    return wsc_send_frame_ex(w, (uint8_t)(0x80 | (op & 0x0f)), p, n, 1);
}

int wsc_send_text(struct wsc *w, const char *s)
{
    return wsc_send_frame(w, WSC_OP_TEXT, s, strlen(s));
}

int wsc_send_binary(struct wsc *w, const void *p, size_t n)
{
    return wsc_send_frame(w, WSC_OP_BINARY, p, n);
}

int wsc_send_ping(struct wsc *w, const void *p, size_t n)
{
    return wsc_send_frame(w, WSC_OP_PING, p, n);
}

int wsc_send_close(struct wsc *w, uint16_t code, const char *reason)
{
    uint8_t b[125];
    size_t n = 0;
    if (code) {
        b[n++] = (uint8_t)(code >> 8);
        b[n++] = (uint8_t)code;
        if (reason) {
            size_t rl = strlen(reason);
            if (rl > sizeof b - 2) rl = sizeof b - 2;
            memcpy(b + n, reason, rl);
            n += rl;
        }
    }
    w->sent_close = 1;
    return wsc_send_frame(w, WSC_OP_CLOSE, b, n);
}

int wsc_send_msg(struct wsc *w, const void *p, size_t n)
{
    return wsc_send_frame(w, w->fmt == SUB_MSGPACK ? WSC_OP_BINARY : WSC_OP_TEXT, p, n);
}

/* ---- receiving ----------------------------------------------------------------------------- */

/* Parse one frame at the start of w->in. Returns 1 with fields set, 0 when incomplete,
 * WSC_EPROTO when malformed. The payload is copied (and unmasked) into *pl (malloc'd). */
static int parse_frame(struct wsc *w, int *fin, int *op, uint8_t **pl, size_t *pln)
{
    const uint8_t *b = w->in.data;
    size_t n = w->in.len;
    if (n < 2) return 0;
    *fin = (b[0] & 0x80) != 0;
    *op = b[0] & 0x0f;
    if (b[0] & 0x70) return WSC_EPROTO; /* no extensions negotiated */
    int masked = (b[1] & 0x80) != 0;
    uint64_t len = b[1] & 0x7f;
    size_t h = 2;
    if (len == 126) {
        if (n < 4) return 0;
        len = ((uint64_t)b[2] << 8) | b[3];
        h = 4;
    } else if (len == 127) {
        if (n < 10) return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | b[2 + i];
        h = 10;
    }
    if (len > WIRE_FRAME_MAX + 1024u) return WSC_EPROTO;
    uint8_t mk[4] = {0, 0, 0, 0};
    if (masked) {
        if (n < h + 4) return 0;
        memcpy(mk, b + h, 4);
        h += 4;
    }
    if (n < h + len) return 0;
    *pl = malloc(len ? (size_t)len : 1);
    if (!*pl) return WSC_EIO;
    for (size_t i = 0; i < len; i++)
        (*pl)[i] = (uint8_t)(b[h + i] ^ mk[i & 3]);
    *pln = (size_t)len;
    memmove(w->in.data, w->in.data + h + len, n - h - (size_t)len);
    w->in.len -= h + (size_t)len;
    return 1;
}

int wsc_recv(struct wsc *w, int timeout_ms)
{
    int64_t deadline = now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    int in_msg = 0;
    wire_buf_reset(&w->msg);
    if (w->fd < 0) return WSC_EIO;
    for (;;) {
        int fin = 0, op = 0;
        uint8_t *pl = NULL;
        size_t pln = 0;
        int r = parse_frame(w, &fin, &op, &pl, &pln);
        if (r < 0) return r;
        if (r == 0) {
            /* The frame in the buffer may belong to a message being reassembled: the deadline
             * still bounds it. */
            int fr = fill(w, deadline);
            if (fr == WSC_EOF) return WSC_EOF;
            if (fr != WSC_OK) return fr;
            continue;
        }
        int rc = 1; /* 1 = keep going */
        switch (op) {
        case WSC_OP_PING:
            w->pings_seen++;
            if (w->auto_pong && !w->sent_close) wsc_send_frame(w, WSC_OP_PONG, pl, pln);
            break;
        case WSC_OP_PONG:
            w->pongs_seen++;
            break;
        case WSC_OP_CLOSE:
            w->closed = 1;
            w->close_code = 1005;
            w->close_reason[0] = '\0';
            if (pln >= 2) {
                w->close_code = (uint16_t)((pl[0] << 8) | pl[1]);
                size_t rl =
                    pln - 2 < sizeof w->close_reason - 1 ? pln - 2 : sizeof w->close_reason - 1;
                memcpy(w->close_reason, pl + 2, rl);
                w->close_reason[rl] = '\0';
            }
            wire_buf_reset(&w->msg);
            wire_buf_append(&w->msg, pl, pln);
            w->msg_op = WSC_OP_CLOSE;
            if (!w->sent_close) {
                uint8_t echo[2] = {pl && pln >= 2 ? pl[0] : 0x03, pl && pln >= 2 ? pl[1] : 0xe8};
                w->sent_close = 1;
                wsc_send_frame(w, WSC_OP_CLOSE, echo, 2);
            }
            rc = WSC_CLOSED;
            break;
        case WSC_OP_TEXT:
        case WSC_OP_BINARY:
            if (in_msg) {
                rc = WSC_EPROTO;
                break;
            }
            wire_buf_reset(&w->msg);
            w->msg_op = op;
            if (wire_buf_append(&w->msg, pl, pln) != 0) {
                rc = WSC_EIO;
                break;
            }
            in_msg = 1;
            if (fin) rc = WSC_OK;
            break;
        case WSC_OP_CONT:
            if (!in_msg) {
                rc = WSC_EPROTO;
                break;
            }
            if (wire_buf_append(&w->msg, pl, pln) != 0) {
                rc = WSC_EIO;
                break;
            }
            if (fin) rc = WSC_OK;
            break;
        default:
            rc = WSC_EPROTO;
        }
        free(pl);
        if (rc != 1) return rc;
    }
}

int wsc_recv_msg(struct wsc *w, struct sub_msg *out, int timeout_ms)
{
    memset(out, 0, sizeof *out);
    int rc = wsc_recv(w, timeout_ms);
    if (rc != WSC_OK) return rc;
    enum sub_fmt f = w->msg_op == WSC_OP_BINARY ? SUB_MSGPACK : SUB_JSON;
    if (f != w->fmt) return WSC_EPROTO; /* JSON must come in text frames, msgpack in binary ones */
    if (sub_decode(f, w->msg.data ? w->msg.data : (const uint8_t *)"", w->msg.len, &w->lim, out) !=
        0) {
        memset(out, 0, sizeof *out);
        return WSC_EPROTO;
    }
    return WSC_OK;
}

int wsc_expect(struct wsc *w, enum sub_type want, struct sub_msg *out, int timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - now_ms();
        int rc = wsc_recv_msg(w, out, left > 0 ? (int)left : 0);
        if (rc != WSC_OK) return rc;
        if (out->type == want) return WSC_OK;
        sub_msg_clear(out);
    }
}

/* ---- protocol helpers ---------------------------------------------------------------------- */

static void note_error(struct wsc *w, const struct sub_msg *m)
{
    w->last_error = m->code;
    wstr_copy(w->last_error_topic, sizeof w->last_error_topic, m->topic);
}

int wsc_hello(struct wsc *w)
{
    struct wire_buf b = {0};
    if (sub_encode_hello(w->fmt, &b, WIRE_VERSION, "nudge-tests") != 0) {
        wire_buf_free(&b);
        return WSC_EIO;
    }
    int rc = wsc_send_msg(w, b.data, b.len);
    wire_buf_free(&b);
    if (rc != WSC_OK) return rc;
    struct sub_msg m;
    rc = wsc_recv_msg(w, &m, helper_timeout_ms);
    if (rc != WSC_OK) return rc;
    if (m.type == SUB_WELCOME) {
        wstr_copy(w->conn_id, sizeof w->conn_id, m.conn);
        wstr_copy(w->epoch, sizeof w->epoch, m.epoch);
    } else {
        if (m.type == SUB_ERROR) note_error(w, &m);
        rc = WSC_UNEXPECTED;
    }
    sub_msg_clear(&m);
    return rc;
}

int wsc_open(struct wsc *w, uint16_t port, const char *subprotocol)
{
    int rc = wsc_connect(w, port, subprotocol);
    if (rc != WSC_OK) return rc;
    rc = wsc_hello(w);
    if (rc != WSC_OK) wsc_free(w, 0);
    return rc;
}

int wsc_send_sub(struct wsc *w, uint64_t id, const char *const *topics, size_t n)
{
    struct wire_str ts[WIRE_TOPICS_MAX];
    if (n > WIRE_TOPICS_MAX) return WSC_EIO;
    for (size_t i = 0; i < n; i++) {
        ts[i].p = topics[i];
        ts[i].len = (uint32_t)strlen(topics[i]);
    }
    struct wire_buf b = {0};
    int rc = sub_encode_subscribe(w->fmt, &b, id, ts, (uint32_t)n, NULL, NULL, NULL, 0);
    if (rc == 0)
        rc = wsc_send_msg(w, b.data, b.len);
    else
        rc = WSC_EIO;
    wire_buf_free(&b);
    return rc;
}

/* Wait for one reply of type want per topic to request id. */
static int await_per_topic(struct wsc *w, uint64_t id, enum sub_type want,
                           const char *const *topics, size_t n, uint64_t *seqs_out)
{
    int64_t deadline = now_ms() + helper_timeout_ms;
    uint8_t *seen = calloc(n ? n : 1, 1);
    size_t got = 0;
    int rc = WSC_OK;
    if (!seen) return WSC_EIO;
    w->last_error = 0;
    while (got < n) {
        int64_t left = deadline - now_ms();
        struct sub_msg m;
        rc = wsc_recv_msg(w, &m, left > 0 ? (int)left : 0);
        if (rc != WSC_OK) break;
        if (m.type == SUB_PONG) {
            sub_msg_clear(&m);
            continue;
        }
        if (m.type == SUB_ERROR) {
            note_error(w, &m);
            sub_msg_clear(&m);
            rc = WSC_UNEXPECTED;
            break;
        }
        if (m.type != want || !m.has_id || m.id != id) {
            sub_msg_clear(&m);
            rc = WSC_UNEXPECTED;
            break;
        }
        size_t i;
        for (i = 0; i < n; i++)
            if (!seen[i] && wstr_eq(m.topic, topics[i])) break;
        if (i == n) {
            sub_msg_clear(&m);
            rc = WSC_UNEXPECTED;
            break;
        }
        seen[i] = 1;
        if (seqs_out) seqs_out[i] = m.seq;
        got++;
        sub_msg_clear(&m);
    }
    free(seen);
    return rc;
}

int wsc_subscribe(struct wsc *w, const char *const *topics, size_t n, uint64_t *seqs_out)
{
    uint64_t id = w->next_id++;
    int rc = wsc_send_sub(w, id, topics, n);
    if (rc != WSC_OK) return rc;
    return await_per_topic(w, id, SUB_SUBSCRIBED, topics, n, seqs_out);
}

int wsc_subscribe_v(struct wsc *w, ...)
{
    const char *topics[64];
    size_t n = 0;
    va_list ap;
    va_start(ap, w);
    const char *t;
    while ((t = va_arg(ap, const char *)) != NULL && n < 64)
        topics[n++] = t;
    va_end(ap);
    return wsc_subscribe(w, topics, n, NULL);
}

int wsc_unsubscribe(struct wsc *w, const char *const *topics, size_t n)
{
    struct wire_str ts[WIRE_TOPICS_MAX];
    if (n > WIRE_TOPICS_MAX) return WSC_EIO;
    for (size_t i = 0; i < n; i++) {
        ts[i].p = topics[i];
        ts[i].len = (uint32_t)strlen(topics[i]);
    }
    uint64_t id = w->next_id++;
    struct wire_buf b = {0};
    int rc = sub_encode_unsubscribe(w->fmt, &b, id, ts, (uint32_t)n);
    if (rc == 0)
        rc = wsc_send_msg(w, b.data, b.len);
    else
        rc = WSC_EIO;
    wire_buf_free(&b);
    if (rc != WSC_OK) return rc;
    return await_per_topic(w, id, SUB_UNSUBSCRIBED, topics, n, NULL);
}
