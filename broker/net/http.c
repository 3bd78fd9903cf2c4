/* http: HTTP publishers over libuv TCP, modelled on tcp.c (the publisher transport). Each
 * connection is a hub connection of role CONN_PUB with c->http set, so the session answers its
 * publishes with JSON bodies (protocol/hpub.h) and the connection counts in --max-conns and
 * --max-conns-per-ip like any publisher.
 *
 * One request at a time. Bytes read are appended to the connection's `in`; the head is judged
 * by hreq.c (picohttpparser) once complete, the body waited for, the request run, and only once
 * its answer is queued is the next head looked at. A persisted store answers later (the session
 * then calls op_flush): meanwhile the connection is not read. So pipelined requests are answered
 * strictly in order, and a burst of them can never make the loop spin: every pass over `in`
 * consumes a whole request or stops reading until something (a completion, a write, more bytes)
 * changes. `in` is bounded: nothing more is read while it holds a head and a body's worth
 * (8 KiB + --http-max-body), nor while the answers not yet written pass WQ_HIGH (a client that
 * pipelines without reading is not read either).
 *
 * Deadlines (one uv_timer per connection, re-armed lazily as in tcp.c): a request must be whole
 * (head and body) within --http-timeout of its first byte, and the first one must start within
 * --http-timeout of connecting: a client trickling a head (slowloris) is answered 408 and closed
 * then, whatever the others do. Between requests a kept-alive connection may stay silent for
 * --pub-idle. The timer never fires while the store holds the request's publish.
 *
 * Closing. A client that half-closes (sends its requests, then FIN) gets every answer, then the
 * close. A connection the broker closes after an answer (Connection: close, 413, a bad head)
 * may still have unread bytes in the kernel, and closing such a socket sends a reset that can
 * destroy the answer in flight: on plain TCP the broker sends FIN first and drops what still
 * comes until the client's EOF or LINGER_MS (the lingering close of HTTP servers).
 *
 * Drain (op_finish, docs/operations.md §Stop): a connection between requests is closed at once
 * (lingering, as above); one in the middle of a request gets that request completed and
 * answered with Connection: close, and nothing after it is read.
 *
 * TLS (http in --tls-listeners): as in tcp.c, memory BIOs; plaintext goes through `in` alike. */
#include "http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hpub.h"
#include "hreq.h"
#include "listen.h"
#include "port.h"
#include "log.h"
#include "server.h"
#include "tls.h"

#define READ_BUF (64 * 1024)
#define WQ_HIGH (256 * 1024)
#define WQ_LOW (64 * 1024)
#define LINGER_MS 1000 /* a closing connection's unread bytes are drained this long at most */

struct http {
    struct port p; /* first: the port frees the transport */
    uint8_t rbuf[READ_BUF];
};

enum hstate {
    H_HEAD, /* waiting for a complete head */
    H_BODY, /* head judged (req), waiting for the body */
    H_WAIT, /* the publish is with the store: the answer comes through op_flush */
};

struct hconn {
    uv_tcp_t h;
    uv_timer_t timer; /* request and idle deadlines */
    struct conn c;
    struct conn_pub pub; /* c.pub */
    struct http *t;
    struct wire_buf in;   /* bytes read and not consumed: the current request at the front */
    struct wire_buf resp; /* answers not yet handed to libuv */
    struct ssl_st *ssl;   /* TLS state, NULL on a plain listener */
    struct hreq req;      /* the current request's head, once judged */
    enum hstate state;
    uint64_t opened_ms;
    uint64_t active_ms; /* last byte read or answer written */
    uint64_t req_ms;    /* first byte of the current request; 0 = none started */
    int open_handles;
    int closing;
    int close_after_write;
    int eof;      /* the peer closed its side: answer what came, then close */
    int draining; /* lingering close: FIN sent, reading and dropping until EOF or LINGER_MS */
    uint64_t drain_ms;
    uv_shutdown_t shut;
    int reading;
    int continued; /* "100 Continue" sent for the current request */
    int served;    /* requests answered so far */
    int finishing; /* drain: the request in progress is the last (op_finish) */
    struct peer_key peer;
};

struct wreq {
    uv_write_t req;
    uint8_t *data; /* owned: freed when the write completes */
};

static void on_hconn_closed(uv_handle_t *h)
{
    struct hconn *hc = h->data;
    struct http *t = hc->t;
    if (--hc->open_handles) return;
    struct server *srv = t->p.srv;
    peers_remove(&srv->broker->peers, &hc->peer);
    session_pub_gone(&srv->session, &hc->c);
    session_conn_gone(&srv->session, &hc->c);
    hub_conn_gone(&srv->hub, &hc->c);
    stat_sub(&srv->http_conns, 1);
    wire_buf_free(&hc->in);
    wire_buf_free(&hc->resp);
    tls_conn_free(hc->ssl);
    free(hc);
    port_conn_freed(&t->p);
}

static void hconn_close(struct hconn *hc)
{
    if (hc->closing) return;
    hc->closing = 1;
    uv_close((uv_handle_t *)&hc->timer, on_hconn_closed);
    uv_close((uv_handle_t *)&hc->h, on_hconn_closed);
}

/* The socket, for the peer address in log lines (-1 once closed). */
static int fd_of(const struct hconn *hc)
{
    uv_os_fd_t fd = -1;
    return uv_fileno((const uv_handle_t *)&hc->h, &fd) == 0 ? fd : -1;
}

static size_t queued(const struct hconn *hc)
{
    return hc->resp.len + uv_stream_get_write_queue_size((const uv_stream_t *)&hc->h);
}

/* ---- deadlines ------------------------------------------------------------------------------ */

/* The next deadline of hc from now (ms), or 0 when one has passed (*why says which). */
static uint64_t next_deadline(const struct hconn *hc, uint64_t now, const char **why)
{
    const struct config *cfg = &hc->t->p.srv->cfg;
    uint64_t due = UINT64_MAX;
    if (hc->draining) {
        *why = "lingering close done";
        return hc->drain_ms + LINGER_MS > now ? hc->drain_ms + LINGER_MS - now : 0;
    }
    if (hc->state == H_WAIT) return UINT64_MAX; /* the store has it: its completion comes */
    if (hc->req_ms) {
        due = hc->req_ms + cfg->http_timeout_ms;
        *why = "request not complete within --http-timeout";
    } else if (!hc->served) {
        due = hc->opened_ms + cfg->http_timeout_ms;
        *why = "no request within --http-timeout of connecting";
    }
    if (cfg->pub_idle_ms && hc->active_ms + cfg->pub_idle_ms < due) {
        due = hc->active_ms + cfg->pub_idle_ms;
        *why = "idle for --pub-idle";
    }
    if (due == UINT64_MAX) return UINT64_MAX;
    return due > now ? due - now : 0;
}

static void on_deadline(uv_timer_t *timer);

static void arm(struct hconn *hc, uint64_t now)
{
    const char *why;
    uint64_t left = next_deadline(hc, now, &why);
    if (left != UINT64_MAX) uv_timer_start(&hc->timer, on_deadline, left, 0);
}

static void on_deadline(uv_timer_t *timer)
{
    struct hconn *hc = timer->data;
    struct server *srv = hc->t->p.srv;
    const char *why = "";
    uint64_t left = next_deadline(hc, uv_now(srv->loop), &why);
    if (left == UINT64_MAX || hc->closing) return;
    if (left > 0) {
        uv_timer_start(timer, on_deadline, left, 0);
        return;
    }
    if (hc->draining) {
        hconn_close(hc);
        return;
    }
    if (strncmp(why, "idle", 4) == 0) /* between requests: a client that went quiet */
        LOGF(LOG_DEBUG, "http publisher %s dropped: %s", hc->c.name, why);
    else /* a request (or the first) too slow to come: slowloris, or a broken client */
        LOG_EVENT(LOG_EV_TIMEOUT, LOG_S("conn", hc->c.name), LOG_PEER(fd_of(hc)),
                  LOG_S("transport", "http"), LOG_S("what", why),
                  LOG_N("timeout_ms", srv->cfg.http_timeout_ms));
    metrics_add(&srv->hub.metrics, METRICS_LIMIT_HELLO, 1);
    if (hc->req_ms && !hc->ssl) { /* best effort: say why, without waiting for the peer */
        static const char t408[] = "HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n"
                                   "Connection: close\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)t408, sizeof(t408) - 1);
        if (uv_stream_get_write_queue_size((uv_stream_t *)&hc->h) == 0)
            (void)uv_try_write((uv_stream_t *)&hc->h, &b, 1);
    }
    hconn_close(hc);
}

/* ---- output --------------------------------------------------------------------------------- */

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

static void on_shut(uv_shutdown_t *req, int status)
{
    struct hconn *hc = req->data;
    if (hc->closing) return;
    if (status < 0) {
        hconn_close(hc);
        return;
    }
    if (!hc->reading) uv_read_start((uv_stream_t *)&hc->h, on_alloc, on_read);
    hc->reading = 1;
}

/* The last answer is written: close. A socket closed with unread bytes (a body the broker did
 * not read, pipelined requests after a Connection: close) is reset, and a reset can destroy the
 * answer before the client reads it; so, on plain TCP, send FIN first and read and drop what
 * still comes, until the client's EOF or LINGER_MS (as HTTP servers' lingering close). */
static void close_after_answer(struct hconn *hc)
{
    if (hc->closing || hc->draining) return;
    if (hc->ssl || hc->eof) {
        hconn_close(hc);
        return;
    }
    hc->draining = 1;
    hc->drain_ms = uv_now(hc->t->p.srv->loop);
    hc->shut.data = hc;
    if (uv_shutdown(&hc->shut, (uv_stream_t *)&hc->h, on_shut) < 0) {
        hconn_close(hc);
        return;
    }
    arm(hc, hc->drain_ms);
}

static void advance(struct hconn *hc, uint64_t now);
static void maybe_read(struct hconn *hc);

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    uv_stream_t *s = req->handle;
    struct hconn *hc = s->data;
    free(w->data);
    free(w);
    if (hc->closing) return;
    hc->active_ms = uv_now(hc->t->p.srv->loop);
    if (status < 0) {
        hconn_close(hc);
        return;
    }
    if (hc->close_after_write) {
        if (uv_stream_get_write_queue_size(s) == 0) close_after_answer(hc);
        return;
    }
    if (queued(hc) < WQ_LOW) advance(hc, hc->active_ms); /* requests held back by output */
}

/* Hand data[0..len) (malloc'd; libuv owns it from now on) to the socket. */
static void write_bytes(struct hconn *hc, uint8_t *data, size_t len)
{
    struct wreq *w = malloc(sizeof(*w));
    if (!w) {
        free(data);
        hconn_close(hc);
        return;
    }
    w->data = data;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&hc->h, &b, 1, on_written) < 0) {
        free(w->data);
        free(w);
        hconn_close(hc);
    }
}

/* Send the queued answers (all of them in one write), encrypted under TLS. */
static void send_out(struct hconn *hc)
{
    struct wire_buf *out = &hc->resp;
    if (hc->closing) return;
    if (hc->ssl) {
        if (out->len) {
            int rc = tls_conn_write(hc->ssl, out->data, out->len);
            if (rc == TLS_FAIL) {
                hconn_close(hc);
                return;
            }
            if (rc == TLS_OK) {
                hub_count_bytes(&hc->t->p.srv->hub, 0, out->len);
                wire_buf_reset(out);
            }
        }
        uint8_t *data;
        size_t n;
        if (tls_conn_take(hc->ssl, &data, &n) < 0) {
            hconn_close(hc);
            return;
        }
        if (n) write_bytes(hc, data, n);
        return;
    }
    if (out->len == 0) return;
    uint8_t *data = out->data;
    size_t len = out->len;
    hub_count_bytes(&hc->t->p.srv->hub, 0, len);
    out->data = NULL;
    out->len = out->cap = 0;
    write_bytes(hc, data, len);
}

/* Queue one answer: the status line, headers, and body[0..len) (JSON). */
static void answer(struct hconn *hc, int status, int code, const uint8_t *body, size_t len)
{
    char head[320];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%s%s%s%s\r\n",
                     status, hpub_reason(status), len,
                     code == WIRE_C_UNAUTHORIZED ? "WWW-Authenticate: Bearer\r\n" : "",
                     code == WIRE_C_RATE_LIMITED ? "Retry-After: 1\r\n" : "",
                     status == 405 ? "Allow: POST\r\n" : "",
                     hc->req.close || hc->finishing ? "Connection: close\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head) || wire_buf_append(&hc->resp, head, (size_t)n) < 0 ||
        wire_buf_append(&hc->resp, body, len) < 0) {
        hconn_close(hc);
        return;
    }
    if (hc->req.close || hc->finishing) hc->close_after_write = 1;
}

/* Answer an error the transport decided (the head's), with a JSON error body as the session's. */
static void answer_error(struct hconn *hc, int status, const char *why)
{
    struct wire_buf b = {0};
    int code = status == 413 || status == 431   ? WIRE_C_TOO_LARGE
               : status == 404 || status == 405 ? WIRE_C_UNEXPECTED
                                                : WIRE_C_BAD_FRAME;
    stat_add(&hc->t->p.srv->hub.st.errors, 1);
    if (status == 413 || status == 431)
        LOG_EVENT(LOG_EV_TOO_LARGE, LOG_S("conn", hc->c.name), LOG_PEER(fd_of(hc)),
                  LOG_S("transport", "http"), LOG_S("what", status == 413 ? "body" : "head"),
                  LOG_N("limit", status == 413 ? hc->t->p.srv->cfg.http_max_body : HREQ_HEAD_MAX));
    if (hpub_encode_error(&b, code, why) < 0) {
        hconn_close(hc);
        return;
    }
    answer(hc, status, code, b.data, b.len);
    wire_buf_free(&b);
}

/* The session's answer is in pub.out (JSON, its code in pub.code): frame it, and drop the request
 * from `in`. */
static void finish_request(struct hconn *hc, uint64_t now)
{
    if (hc->state == H_WAIT || hc->req.status == 0)
        answer(hc, hpub_status(hc->pub.code), hc->pub.code, hc->pub.out.data, hc->pub.out.len);
    wire_buf_reset(&hc->pub.out);
    size_t used = hc->req.head_len + hc->req.body_len;
    memmove(hc->in.data, hc->in.data + used, hc->in.len - used);
    hc->in.len -= used;
    hc->state = H_HEAD;
    hc->continued = 0;
    hc->served++;
    hc->req_ms = hc->in.len ? now : 0; /* a pipelined request's clock starts now */
    if (hc->req_ms) arm(hc, now);
}

/* Run the request whose head and body are in `in`. */
static void run_request(struct hconn *hc, uint64_t now)
{
    struct server *srv = hc->t->p.srv;
    const struct hreq *r = &hc->req;
    if (r->status) {
        answer_error(hc, r->status, r->why);
        finish_request(hc, now);
        return;
    }
    const char *key = r->has_auth ? (const char *)hc->in.data + r->auth_off : NULL;
    hc->pub.code = 0;
    session_pub_http(&srv->session, &hc->c, key, r->auth_len, hc->in.data + r->head_len,
                     r->body_len, now);
    if (hc->pub.npubs) {
        hc->state = H_WAIT; /* the store answers later: op_flush */
        return;
    }
    finish_request(hc, now);
}

/* Work through `in`: one request at a time, each answered before the next head is looked at;
 * stop when more bytes are needed, the store holds a publish, or output is backed up. */
static void advance(struct hconn *hc, uint64_t now)
{
    struct server *srv = hc->t->p.srv;
    size_t max_body = srv->cfg.http_max_body;
    int need_bytes = 0; /* stopped for want of input (not for the store or for output) */
    while (!hc->closing && !hc->close_after_write && hc->state != H_WAIT && queued(hc) < WQ_HIGH) {
        if (hc->state == H_HEAD) {
            need_bytes = 1;
            if (hc->in.len == 0) break;
            int rc = hreq_parse(hc->in.data, hc->in.len, max_body, &hc->req);
            if (rc == 0) break;
            need_bytes = 0;
            if (rc < 0) {
                answer_error(hc, hc->req.status, hc->req.why);
                break;
            }
            if (hc->req.close && hc->req.status && hc->req.status != 404 && hc->req.status != 405 &&
                hc->req.status != 415) {
                answer_error(hc, hc->req.status, hc->req.why); /* the body is never read */
                break;
            }
            hc->state = H_BODY;
        }
        if (hc->in.len < hc->req.head_len + hc->req.body_len) {
            need_bytes = 1;
            if (hc->req.expect && !hc->continued && !hc->eof) {
                static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
                hc->continued = 1;
                if (wire_buf_append(&hc->resp, cont, sizeof(cont) - 1) < 0) hconn_close(hc);
            }
            break;
        }
        run_request(hc, now);
        need_bytes = 0;
    }
    if (hc->closing) return;
    /* The peer sent all it will: once what it sent is answered, close (a half-sent request is
     * dropped). */
    if (hc->eof && need_bytes) hc->close_after_write = 1;
    send_out(hc);
    if (hc->closing) return;
    if (hc->close_after_write && uv_stream_get_write_queue_size((uv_stream_t *)&hc->h) == 0)
        close_after_answer(hc); /* nothing left to write (e.g. a TLS failure without an alert) */
    else
        maybe_read(hc);
}

/* Read while there is room for the current request and the answers are being taken. */
static void maybe_read(struct hconn *hc)
{
    size_t room = HREQ_HEAD_MAX + hc->t->p.srv->cfg.http_max_body;
    int want = !hc->closing && !hc->close_after_write && !hc->eof && hc->state != H_WAIT &&
               queued(hc) < WQ_HIGH && hc->in.len < room;
    if (want && !hc->reading)
        uv_read_start((uv_stream_t *)&hc->h, on_alloc, on_read);
    else if (!want && hc->reading && !hc->closing)
        uv_read_stop((uv_stream_t *)&hc->h);
    hc->reading = want;
}

/* ---- hub hooks ------------------------------------------------------------------------------ */

static void op_flush(struct conn *c)
{
    struct hconn *hc = c->io;
    if (hc->closing) return;
    uint64_t now = uv_now(hc->t->p.srv->loop);
    if (hc->state == H_WAIT && hc->pub.npubs == 0) { /* the store completed the publish */
        finish_request(hc, now);
        advance(hc, now); /* the pipelined requests behind it */
        return;
    }
    send_out(hc);
}

static void op_close(struct conn *c, int code, const char *reason)
{
    (void)code;
    (void)reason;
    hconn_close(c->io);
}

static void op_finish(struct conn *c)
{
    struct hconn *hc = c->io;
    if (hc->closing || hc->finishing) return;
    hc->finishing = 1;
    if (hc->close_after_write || hc->state != H_HEAD || hc->in.len) return; /* one in progress */
    hc->close_after_write = 1;
    maybe_read(hc);
    if (queued(hc) == 0) close_after_answer(hc); /* else once the answers are written */
}

static void op_refused(struct conn *c, const char *reason, const char *why)
{
    LOG_EVENT(LOG_EV_AUTH, LOG_S("conn", c->name), LOG_PEER(fd_of(c->io)),
              LOG_S("transport", "http"), LOG_S("reason", reason), LOG_S("detail", why));
}

static const struct conn_ops http_ops = {
    .flush = op_flush, .close = op_close, .finish = op_finish, .refused = op_refused};

/* ---- input ---------------------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct hconn *hc = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)hc->t->rbuf, READ_BUF);
}

static int take(struct hconn *hc, const uint8_t *p, size_t len, uint64_t now)
{
    if (hc->state == H_HEAD && hc->in.len == 0 && len) {
        hc->req_ms = now; /* a request starts: its deadline is earlier than the idle one */
        arm(hc, now);
    }
    return wire_buf_append(&hc->in, p, len);
}

/* TLS: feed the ciphertext, then decrypt into the read buffer and append the plaintext. */
static int take_tls(struct hconn *hc, const uint8_t *p, size_t len, uint64_t now)
{
    struct http *t = hc->t;
    if (tls_conn_feed(hc->ssl, p, len) < 0) return -1;
    for (;;) {
        size_t got;
        int handshake;
        int rc = tls_conn_read(hc->ssl, t->rbuf, READ_BUF, &got, &handshake);
        hub_count_bytes(&t->p.srv->hub, got, 0);
        if (got && take(hc, t->rbuf, got, now) < 0) return -1;
        if (rc == TLS_WANT) return 0;
        if (rc == TLS_FAIL) {
            if (handshake) stat_add(&t->p.srv->tls_failures, 1);
            LOGF(LOG_DEBUG, "http publisher %s: TLS %s failed", hc->c.name,
                 handshake ? "handshake" : "record");
            hc->close_after_write = 1; /* once the alert OpenSSL queued, if any, is out */
            return 0;
        }
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct hconn *hc = s->data;
    struct server *srv = hc->t->p.srv;
    if (hc->draining) { /* lingering close: drop what comes until EOF */
        if (nread < 0) hconn_close(hc);
        return;
    }
    if (nread == UV_EOF && !hc->ssl && !hc->eof) { /* half-closed: answer what came first */
        hc->eof = 1;
        uv_read_stop(s);
        hc->reading = 0;
        advance(hc, uv_now(srv->loop));
        return;
    }
    if (nread < 0) {
        if (nread != UV_EOF)
            LOGF(LOG_DEBUG, "http publisher %s: read: %s", hc->c.name, uv_strerror((int)nread));
        hconn_close(hc);
        return;
    }
    if (nread == 0 || hc->close_after_write) return;
    uint64_t now = hc->active_ms = uv_now(srv->loop);
    int rc;
    if (hc->ssl) {
        rc = take_tls(hc, (const uint8_t *)buf->base, (size_t)nread, now);
    } else {
        hub_count_bytes(&srv->hub, (uint64_t)nread, 0);
        rc = take(hc, (const uint8_t *)buf->base, (size_t)nread, now);
    }
    if (rc < 0) {
        hconn_close(hc);
        return;
    }
    advance(hc, now);
}

/* ---- accepting ------------------------------------------------------------------------------ */

static void on_connection(void *data, int fd)
{
    struct http *t = data;
    struct server *srv = t->p.srv;
    if (t->p.stopping) {
        close(fd);
        return;
    }
    struct peer_key peer;
    if (!server_admit(srv, fd, "http", &peer)) {
        close(fd);
        return;
    }
    struct hconn *hc = calloc(1, sizeof(*hc));
    if (!hc) {
        peers_remove(&srv->broker->peers, &peer);
        close(fd);
        return;
    }
    hc->peer = peer;
    hc->t = t;
    uv_tcp_init(srv->loop, &hc->h);
    uv_timer_init(srv->loop, &hc->timer);
    hc->h.data = hc->timer.data = hc;
    hc->open_handles = 2;
    t->p.nconns++;
    hc->c.pub = &hc->pub;
    hub_conn_open(&srv->hub, &hc->c, CONN_PUB, &http_ops, hc);
    hc->pub.http = 1;
    hc->c.hello = 1; /* each request carries its credentials */
    stat_add(&srv->http_conns, 1);
    stat_add(&srv->http_accepted, 1);
    if (uv_tcp_open(&hc->h, fd) < 0) {
        close(fd);
        hconn_close(hc);
        return;
    }
    uv_tcp_nodelay(&hc->h, 1);
    if (t->p.tls && !(hc->ssl = tls_conn_new(t->p.tls))) {
        hconn_close(hc);
        return;
    }
    hc->opened_ms = hc->active_ms = uv_now(srv->loop);
    arm(hc, hc->opened_ms);
    maybe_read(hc);
}

int http_start(struct server *srv, int fd, struct http **out)
{
    struct http *t = calloc(1, sizeof(*t));
    if (!t) {
        close(fd);
        return -ENOMEM;
    }
    int rc = port_start(&t->p, srv, fd, srv->cfg.tls & CONFIG_TLS_HTTP, &srv->broker->http_listen,
                        "http", on_connection);
    if (rc < 0) {
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int http_reload_tls(struct http *t, const char *cert, const char *key, char *err, size_t errlen)
{
    return t ? port_tls_reload(&t->p, cert, key, err, errlen) : 0;
}

void http_stop(struct http *t)
{
    if (t) port_stop(&t->p);
}
