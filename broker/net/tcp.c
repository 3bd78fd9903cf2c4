/* tcp: publishers over libuv TCP. Reads land in one 64 KiB buffer per transport (the loop is
 * single-threaded and each read is consumed before the next); complete frames are handed to the
 * session straight from it, and only a partial tail is copied into the connection's own buffer.
 * The replies to every frame of one read (acks, errors) leave in one uv_write. A publisher that
 * stops reading its acks is not read either once 1 MiB of replies is pending: backpressure
 * instead of unbounded memory. A broken frame stream (bad length, undecodable body) gets an error
 * frame and the connection is closed once that frame is written.
 *
 * Deadlines (one uv_timer per publisher, re-armed lazily rather than on every read): hello within
 * --hello-timeout of connecting; then no more than --pub-idle without any progress (a byte read,
 * a reply written), and no frame left half-received for longer than that either, so a silent or
 * trickling peer cannot hold a --max-conns slot forever. docs/operations.md, docs/protocol.md.
 *
 * TLS (--tls-cert with pub in --tls-listeners): each connection carries an SSL on memory BIOs
 * (tls.c). A read is fed to it and decrypted back into the same 64 KiB buffer, which then goes
 * through the same frame decoder; replies are encrypted and what OpenSSL produced leaves in one
 * uv_write, so the backpressure above bounds ciphertext too. The handshake must finish before
 * the hello, so --hello-timeout is its deadline; a failed handshake (its alert is sent) closes
 * the connection and counts in tls_handshake_failures. Without TLS nothing of this runs. */
#include "tcp.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "listen.h"
#include "port.h"
#include "log.h"
#include "pub.h"
#include "server.h"
#include "tls.h"

#define READ_BUF (64 * 1024)
#define WQ_HIGH (1024 * 1024)
#define WQ_LOW (256 * 1024)
#define LINGER_MS 1000         /* drain: after FIN, unread bytes are dropped this long at most */
#define DEADLINE_RECHECK_MS 10 /* a deadline passed with bytes unread: judge again after them */

struct tcp {
    struct port p; /* first: the port frees the transport */
    uint8_t rbuf[READ_BUF];
};

struct pconn {
    uv_tcp_t h;
    uv_timer_t timer; /* hello and idle deadlines */
    struct conn c;
    struct conn_pub pub; /* c.pub */
    struct tcp *t;
    struct wire_buf in; /* partial frame carried over between reads */
    struct ssl_st *ssl; /* TLS state, NULL on a plain listener */
    uint64_t opened_ms;
    uint64_t active_ms;      /* last byte read or reply written */
    uint64_t frame_start_ms; /* first byte of the frame in `in` */
    int open_handles;
    int closing;
    int close_after_write;
    int reading;
    int finishing; /* drain: answer what was read, then close (op_finish) */
    int lingering; /* FIN sent: reading and dropping until EOF or LINGER_MS */
    uv_shutdown_t shut;
    struct peer_key peer; /* counted in the broker's peers (--max-conns-per-ip) */
};

struct wreq {
    uv_write_t req;
    uint8_t *data; /* owned: freed when the write completes */
};

static void on_pconn_closed(uv_handle_t *h)
{
    struct pconn *pc = h->data;
    struct tcp *t = pc->t;
    if (--pc->open_handles) return;
    peers_remove(&t->p.srv->broker->peers, &pc->peer);
    session_pub_gone(&t->p.srv->session, &pc->c);
    session_conn_gone(&t->p.srv->session, &pc->c);
    hub_conn_gone(&t->p.srv->hub, &pc->c);
    wire_buf_free(&pc->in);
    tls_conn_free(pc->ssl);
    free(pc);
    port_conn_freed(&t->p);
}

static void pconn_close(struct pconn *pc)
{
    if (pc->closing) return;
    pc->closing = 1;
    uv_close((uv_handle_t *)&pc->timer, on_pconn_closed);
    uv_close((uv_handle_t *)&pc->h, on_pconn_closed);
}

static void send_out(struct pconn *pc);

/* The socket, for the peer address in log lines (-1 once closed). */
static int fd_of(const struct pconn *pc)
{
    uv_os_fd_t fd = -1;
    return uv_fileno((const uv_handle_t *)&pc->h, &fd) == 0 ? fd : -1;
}

/* The next deadline of pc from now (ms), or 0 when one has passed (*why says which). */
static uint64_t next_deadline(const struct pconn *pc, uint64_t now, const char **why)
{
    const struct config *cfg = &pc->t->p.srv->cfg;
    uint64_t due = UINT64_MAX;
    if (!pc->c.hello) {
        due = pc->opened_ms + cfg->hello_timeout_ms;
        *why = "no hello within --hello-timeout";
    }
    if (cfg->pub_idle_ms) {
        uint64_t idle = pc->active_ms + cfg->pub_idle_ms;
        if (idle < due) {
            due = idle;
            *why = "idle for --pub-idle";
        }
        if (pc->in.len && pc->frame_start_ms + cfg->pub_idle_ms < due) {
            due = pc->frame_start_ms + cfg->pub_idle_ms;
            *why = "frame not completed within --pub-idle";
        }
    }
    if (due == UINT64_MAX) return UINT64_MAX;
    return due > now ? due - now : 0;
}

static void on_deadline(uv_timer_t *timer)
{
    struct pconn *pc = timer->data;
    struct server *srv = pc->t->p.srv;
    const char *why = "";
    if (pc->lingering) { /* LINGER_MS passed without the publisher's EOF */
        pconn_close(pc);
        return;
    }
    uint64_t left = next_deadline(pc, uv_now(srv->loop), &why);
    if (left == UINT64_MAX || pc->closing) return;
    if (left > 0) {
        uv_timer_start(timer, on_deadline, left, 0);
        return;
    }
    /* Timers run before this turn's reads: bytes that came in time but wait in the socket
     * because the loop was late (a busy broker, a sanitizer build) are progress not yet seen.
     * Read them first (this turn's poll does), then judge again. */
    int pending = 0, fd = fd_of(pc);
    if (pc->reading && fd >= 0 && ioctl(fd, FIONREAD, &pending) == 0 && pending > 0) {
        uv_timer_start(timer, on_deadline, DEADLINE_RECHECK_MS, 0);
        return;
    }
    /* A publisher that did its hello is a real client: say why it goes. One that never did is
     * a handshake timeout (a warn event). */
    if (pc->c.hello)
        LOGF(LOG_INFO, "publisher %s dropped: %s", pc->c.name, why);
    else
        LOG_EVENT(LOG_EV_TIMEOUT, LOG_S("conn", pc->c.name), LOG_PEER(fd_of(pc)),
                  LOG_S("transport", "pub"), LOG_S("what", why),
                  LOG_N("timeout_ms", srv->cfg.hello_timeout_ms));
    metrics_add(&srv->hub.metrics, METRICS_LIMIT_HELLO, 1);
    pconn_close(pc);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* Read again once neither the replies waiting to be written nor the publishes waiting for the
 * store hold it back. */
static void maybe_resume(struct pconn *pc)
{
    if (pc->reading || pc->closing || pc->close_after_write || pc->finishing ||
        pc->pub.npubs >= SESSION_PUBS_LOW ||
        uv_stream_get_write_queue_size((uv_stream_t *)&pc->h) >= WQ_LOW)
        return;
    uv_read_start((uv_stream_t *)&pc->h, on_alloc, on_read);
    pc->reading = 1;
}

static void on_shut(uv_shutdown_t *req, int status)
{
    struct pconn *pc = req->data;
    if (pc->closing) return;
    if (status < 0) {
        pconn_close(pc);
        return;
    }
    uv_read_start((uv_stream_t *)&pc->h, on_alloc, on_read); /* on_read drops what comes */
    pc->reading = 1;
}

/* Drain: once nothing read is left unanswered or unwritten, FIN and linger (top of file). */
static void maybe_finish(struct pconn *pc)
{
    if (!pc->finishing || pc->lingering || pc->closing || pc->pub.npubs || pc->pub.out.len ||
        uv_stream_get_write_queue_size((uv_stream_t *)&pc->h))
        return;
    pc->lingering = 1;
    pc->shut.data = pc;
    if (uv_shutdown(&pc->shut, (uv_stream_t *)&pc->h, on_shut) < 0) {
        pconn_close(pc);
        return;
    }
    uv_timer_start(&pc->timer, on_deadline, LINGER_MS, 0);
}

static void op_finish(struct conn *c)
{
    struct pconn *pc = c->io;
    if (pc->finishing || pc->closing) return;
    pc->finishing = 1;
    if (!c->hello) { /* nothing it sent was a publish */
        pconn_close(pc);
        return;
    }
    if (pc->reading) uv_read_stop((uv_stream_t *)&pc->h);
    pc->reading = 0;
    if (pc->close_after_write) return; /* already closing once its replies are out */
    send_out(pc);
    maybe_finish(pc);
}

static void op_flush(struct conn *c)
{
    struct pconn *pc = c->io;
    send_out(pc); /* replies completed after their read (a store that commits later) */
    maybe_resume(pc);
    maybe_finish(pc);
}

static void op_close(struct conn *c, int code, const char *reason)
{
    (void)code;
    (void)reason;
    pconn_close(c->io);
}

static void op_refused(struct conn *c, const char *reason, const char *why)
{
    LOG_EVENT(LOG_EV_AUTH, LOG_S("conn", c->name), LOG_PEER(fd_of(c->io)),
              LOG_S("transport", "pub"), LOG_S("reason", reason), LOG_S("detail", why));
}

static const struct conn_ops pub_ops = {
    .flush = op_flush, .close = op_close, .finish = op_finish, .refused = op_refused};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct pconn *pc = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)pc->t->rbuf, READ_BUF);
}

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    uv_stream_t *s = req->handle;
    struct pconn *pc = s->data;
    free(w->data);
    free(w);
    if (pc->closing) return;
    pc->active_ms = uv_now(pc->t->p.srv->loop);
    if (status < 0 || (pc->close_after_write && uv_stream_get_write_queue_size(s) == 0)) {
        pconn_close(pc);
        return;
    }
    maybe_resume(pc);
    maybe_finish(pc);
}

/* Hand data[0..len) (malloc'd; libuv owns it from now on) to the socket and apply backpressure. */
static void write_bytes(struct pconn *pc, uint8_t *data, size_t len)
{
    struct wreq *w = malloc(sizeof(*w));
    if (!w) {
        free(data);
        pconn_close(pc);
        return;
    }
    w->data = data;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&pc->h, &b, 1, on_written) < 0) {
        free(w->data);
        free(w);
        pconn_close(pc);
        return;
    }
    if (pc->reading && uv_stream_get_write_queue_size((uv_stream_t *)&pc->h) > WQ_HIGH) {
        uv_read_stop((uv_stream_t *)&pc->h);
        pc->reading = 0;
    }
}

/* TLS: encrypt the replies (kept until the handshake is done) and send whatever OpenSSL has
 * produced, handshake records and alerts included. */
static void send_tls(struct pconn *pc)
{
    struct wire_buf *out = &pc->pub.out;
    if (pc->closing) return;
    if (out->len) {
        int rc = tls_conn_write(pc->ssl, out->data, out->len);
        if (rc == TLS_FAIL) {
            pconn_close(pc);
            return;
        }
        if (rc == TLS_OK) {
            hub_count_bytes(&pc->t->p.srv->hub, 0, out->len);
            wire_buf_reset(out);
            if (out->cap > READ_BUF) wire_buf_free(out); /* a burst's buffer is not kept */
        }
    }
    uint8_t *data;
    size_t n;
    if (tls_conn_take(pc->ssl, &data, &n) < 0) {
        pconn_close(pc);
        return;
    }
    if (n) write_bytes(pc, data, n);
}

/* Hand the connection's reply bytes to libuv (which then owns them) and apply backpressure. */
static void send_out(struct pconn *pc)
{
    struct server *srv = pc->t->p.srv;
    struct wire_buf *out = &pc->pub.out;
    if (pc->ssl) {
        send_tls(pc);
        return;
    }
    if (out->len == 0 || pc->closing) return;
    hub_count_bytes(&srv->hub, 0, out->len);
    uv_stream_t *s = (uv_stream_t *)&pc->h;
    if (!pc->close_after_write && uv_stream_get_write_queue_size(s) == 0) {
        /* Most turns' acks fit the socket at once: written here they need no request, no
         * callback and no copy, and libuv does not re-arm the descriptor (every completed
         * uv_write costs an epoll_ctl on the next turn). What did not fit goes the long way. */
        uv_buf_t b = uv_buf_init((char *)out->data, (unsigned)out->len);
        int n = uv_try_write(s, &b, 1);
        if (n > 0) {
            pc->active_ms = uv_now(srv->loop);
            if ((size_t)n == out->len) {
                wire_buf_reset(out);
                if (out->cap > READ_BUF) wire_buf_free(out); /* a burst's buffer is not kept */
                return;
            }
            memmove(out->data, out->data + n, out->len - (size_t)n);
            out->len -= (size_t)n;
        }
    }
    uint8_t *data = out->data;
    size_t len = out->len;
    out->data = NULL;
    out->len = out->cap = 0;
    write_bytes(pc, data, len);
}

/* Run the frames in p[0..len) (plaintext: the read buffer, or TLS's output in it) through the
 * session; a partial frame at the end is kept in pc->in. */
static void consume(struct pconn *pc, const uint8_t *p, size_t len, uint64_t now)
{
    struct server *srv = pc->t->p.srv;
    struct session *ss = &srv->session;
    uv_stream_t *s = (uv_stream_t *)&pc->h;
    size_t had_tail = pc->in.len, off = 0;
    if (pc->in.len) { /* finish the frame carried over from the previous read */
        if (wire_buf_append(&pc->in, p, len) < 0) {
            pconn_close(pc);
            return;
        }
        p = pc->in.data;
        len = pc->in.len;
    }
    int fatal = 0;
    while (off < len) {
        const uint8_t *body;
        uint32_t blen;
        size_t used;
        int rc =
            pub_frame_next(p + off, len - off, srv->engine->cfg.lim.max_frame, &body, &blen, &used);
        if (rc == WIRE_EAGAIN) break;
        if (rc < 0) {
            if (rc == WIRE_ETOOBIG)
                LOG_EVENT(LOG_EV_TOO_LARGE, LOG_S("conn", pc->c.name), LOG_PEER(fd_of(pc)),
                          LOG_S("transport", "pub"), LOG_S("what", "frame"),
                          LOG_N("limit", srv->engine->cfg.lim.max_frame));
            session_pub_stream_error(ss, &pc->c, rc);
            fatal = 1;
            break;
        }
        off += used;
        if (session_pub_frame(ss, &pc->c, body, blen, now) < 0) {
            fatal = 1;
            break;
        }
    }
    if (fatal) {
        stat_add(&srv->hub.st.errors, 1);
        pc->close_after_write = 1;
        uv_read_stop(s);
        pc->reading = 0;
        wire_buf_reset(&pc->in);
    } else if (p == pc->in.data) { /* keep the unconsumed tail at the front */
        memmove(pc->in.data, pc->in.data + off, len - off);
        pc->in.len = len - off;
    } else if (off < len && wire_buf_append(&pc->in, p + off, len - off) < 0) {
        fatal = 1;
        pc->close_after_write = 1;
    }
    if (!fatal && pc->reading && pc->pub.npubs >= SESSION_PUBS_HIGH) {
        /* The store is behind this publisher: stop reading it until acks catch up. */
        uv_read_stop(s);
        pc->reading = 0;
    }
    /* A new frame started in this read: its clock starts now. */
    if (pc->in.len && (!had_tail || off > 0)) pc->frame_start_ms = now;
}

/* TLS: feed the ciphertext, then decrypt into the read buffer (free again: the BIO copied it)
 * and consume. */
static void consume_tls(struct pconn *pc, const uint8_t *p, size_t len, uint64_t now)
{
    struct tcp *t = pc->t;
    if (tls_conn_feed(pc->ssl, p, len) < 0) {
        pconn_close(pc);
        return;
    }
    for (;;) {
        size_t got;
        int handshake;
        int rc = tls_conn_read(pc->ssl, t->rbuf, READ_BUF, &got, &handshake);
        hub_count_bytes(&t->p.srv->hub, got, 0); /* frames' bytes, as on plain TCP */
        if (got) consume(pc, t->rbuf, got, now);
        if (pc->closing || pc->close_after_write || rc == TLS_WANT) return;
        if (rc == TLS_FAIL) {
            if (handshake) stat_add(&t->p.srv->tls_failures, 1);
            LOGF(LOG_DEBUG, "publisher %s: TLS %s failed", pc->c.name,
                 handshake ? "handshake" : "record");
            pc->close_after_write = 1; /* once the alert OpenSSL queued, if any, is out */
            uv_read_stop((uv_stream_t *)&pc->h);
            pc->reading = 0;
            return;
        }
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct pconn *pc = s->data;
    struct server *srv = pc->t->p.srv;
    if (nread < 0) {
        if (nread != UV_EOF)
            LOGF(LOG_DEBUG, "publisher %s: read: %s", pc->c.name, uv_strerror((int)nread));
        pconn_close(pc);
        return;
    }
    if (nread == 0 || pc->close_after_write || pc->lingering) return;
    if (!pc->ssl) hub_count_bytes(&srv->hub, (uint64_t)nread, 0);
    uint64_t now = pc->active_ms = uv_now(srv->loop);
    if (pc->ssl)
        consume_tls(pc, (const uint8_t *)buf->base, (size_t)nread, now);
    else
        consume(pc, (const uint8_t *)buf->base, (size_t)nread, now);
    if (pc->closing) return;
    send_out(pc); /* every reply of this read in one write */
    if (pc->close_after_write && !pc->closing &&
        uv_stream_get_write_queue_size((uv_stream_t *)&pc->h) == 0)
        pconn_close(pc);
}

static void on_connection(void *data, int fd)
{
    struct tcp *t = data;
    struct server *srv = t->p.srv;
    if (t->p.stopping) {
        close(fd);
        return;
    }
    struct peer_key peer;
    if (!server_admit(srv, fd, "pub", &peer)) {
        close(fd);
        return;
    }
    struct pconn *pc = calloc(1, sizeof(*pc));
    if (!pc) {
        peers_remove(&srv->broker->peers, &peer);
        close(fd);
        return;
    }
    pc->peer = peer;
    pc->t = t;
    uv_tcp_init(srv->loop, &pc->h);
    uv_timer_init(srv->loop, &pc->timer);
    pc->h.data = pc->timer.data = pc;
    pc->open_handles = 2;
    t->p.nconns++;
    if (uv_tcp_open(&pc->h, fd) < 0) {
        close(fd);
        pconn_close(pc);
        return;
    }
    uv_tcp_nodelay(&pc->h, 1);
    if (t->p.tls && !(pc->ssl = tls_conn_new(t->p.tls))) {
        pconn_close(pc);
        return;
    }
    pc->c.pub = &pc->pub;
    hub_conn_open(&srv->hub, &pc->c, CONN_PUB, &pub_ops, pc);
    pc->opened_ms = pc->active_ms = uv_now(srv->loop);
    const char *why;
    uint64_t first = next_deadline(pc, pc->opened_ms, &why);
    if (first != UINT64_MAX) uv_timer_start(&pc->timer, on_deadline, first, 0);
    pc->reading = 1;
    uv_read_start((uv_stream_t *)&pc->h, on_alloc, on_read);
}

int tcp_start(struct server *srv, int fd, struct tcp **out)
{
    struct tcp *t = calloc(1, sizeof(*t));
    if (!t) {
        close(fd);
        return -ENOMEM;
    }
    int rc = port_start(&t->p, srv, fd, srv->cfg.tls & CONFIG_TLS_PUB, &srv->broker->pub_listen,
                        "pub", on_connection);
    if (rc < 0) {
        free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int tcp_reload_tls(struct tcp *t, const char *cert, const char *key, char *err, size_t errlen)
{
    return t ? port_tls_reload(&t->p, cert, key, err, errlen) : 0;
}

void tcp_stop(struct tcp *t)
{
    if (t) port_stop(&t->p);
}
