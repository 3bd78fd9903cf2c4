/* ws: WebSocket subscribers on libwebsockets 4.1 running inside the server's libuv loop.
 *
 * Accept: lws does not listen (CONTEXT_PORT_NO_LISTEN). The listening socket is made by listen.c
 * and watched with a uv_poll; each accepted fd is adopted into lws's default vhost. That keeps
 * one accept design for every transport and lets several workers share a port later
 * (SO_REUSEPORT), which lws's own listener cannot do (shared/NOTES.md).
 *
 * Write path: the hub queues payload references on struct conn; hub_flush() calls op_flush()
 * once per loop turn, which frames every queued payload by hand (server frames are unmasked, so
 * a frame is a 2-10 byte header and the payload) into one batch buffer and hands the batch to
 * lws_write(LWS_WRITE_RAW) directly — not from WRITEABLE. Only after a partial write (lws keeps
 * the tail) do we ask for WRITEABLE, and we never write while that tail is pending. This is the
 * path measured at ~3M deliveries/s per core versus ~67k for one frame per WRITEABLE.
 *
 * Liveness: a connection is pinged once it has shown no sign of life for ws_ping seconds and is
 * dropped ws_ping / 3 seconds later (1 s for a ws_ping under 6) without one. A sign of life is a
 * pong, or — since a congested subscriber's ping waits behind its backlog in the socket buffer
 * (--ws-sndbuf, or megabytes autotuned), and a phone that reads, only slowly, must not be dropped
 * for being slow (docs/guarantees.md §Coalescing) — its TCP acknowledging more of a backlog:
 * a peer's TCP acknowledges only what its application made room for. Traffic from the peer does
 * not count. A sweep does all of it: each round, every ws_ping / 6 seconds, visits every
 * connection (sock_progress, then a ping or a drop when due), so the deadlines are met within
 * a round. The sweep is sliced: every SWEEP_SLICE_MS it visits the next share of the
 * connections (a cursor into the hub's list), so that no loop turn stalls on 10,000 getsockopt
 * calls at once (18 ms at 10,000 connections, a latency spike every round, #18).
 *
 * lws's own ping ("validity") is off: lws 4.1 keeps each connection's ping timer in one sorted
 * list and inserts by walking it from the head, so every connect, ping and pong cost O(open
 * connections) — a third of the broker's CPU in a reconnect storm of 10,000, and ~2 x N^2 list
 * steps every ws_ping seconds once N are open (#18).
 *
 * HTTP: lws 4.1.6's HTTP server can be stalled by pipelined requests with bodies, so a request
 * that is not a WebSocket upgrade gets a fixed 426 answer written straight to the socket and the
 * connection is dropped before lws reads any body. A CONNECT request never reaches the HTTP
 * callbacks: lws 4.1.6 turns it into a raw socket (lws_handshake_server -> lws_http_to_fallback,
 * which also clears the handshake timeout), so the raw callbacks refuse it the same way.
 *
 * Handshake deadline: lws's own timeouts are cleared on some paths (CONNECT above), so every
 * adopted socket is on our list (struct pend, in accept order = deadline order, one uv_timer)
 * from accept until its upgrade is done, and is killed at --hello-timeout. Pending sockets count
 * in --max-conns (server->ws_pending).
 *
 * TLS (--tls-cert with ws in --tls-listeners): lws's own OpenSSL support loads the files into
 * the default vhost; the context is then made with CONTEXT_PORT_NO_LISTEN_SERVER, since lws
 * 4.1.6 leaves a vhost of a CONTEXT_PORT_NO_LISTEN context in plain mode whatever it is given,
 * and adopted sockets do the TLS handshake inside the pending window above. The direct batched
 * write is the same: lws_write(LWS_WRITE_RAW) encrypts, and a write OpenSSL could not finish is
 * a partial write lws keeps, as on plain TCP. The 426 answer is not sent on TLS (it would be
 * plaintext inside the TLS stream): such a connection is just closed.
 *
 * Memory: an idle subscriber is what there are most of, ~2 KiB each (docs/bench.md §Memory per
 * connection). lws's rx buffer is 128 bytes (longer messages come in pieces, joined in a buffer
 * freed once whole), struct wsconn is held to a 304-byte chunk, the struct pend goes at the
 * upgrade, and the sweep frees the queue ring of a connection with nothing queued. */
#include "ws.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"
#include "server.h"
#include "sock.h"
#include "tls.h"

#define BATCH_MAX (64 * 1024) /* bytes per lws_write; also the protocols' tx_packet_size */
#define SWEEP_SLICE_MS 50     /* the liveness sweep visits a share of the connections this often */

struct ws {
    struct server *srv;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    struct listener listener;
    int listening;
    struct pend *pend_head, *pend_tail; /* oldest first */
    uv_timer_t pend_timer;
    void *loops[1];
    struct lws_protocols protocols[3];
    uint8_t *batch; /* LWS_PRE headroom + batch_cap bytes */
    size_t batch_cap;
    lws_retry_bo_t idle; /* all zero: lws's own ping is off (top of file); lws keeps a pointer */
    uint64_t ping_ms, hup_ms; /* ping after this long without a sign of life, drop after that */
    uv_timer_t sweep;         /* liveness sweep (see the top of this file) */
    uint64_t sweep_ms;        /* a whole round of the sweep: every connection once */
    struct conn *sweep_next;  /* the next WebSocket the sweep visits, in the hub's list, or NULL */
    SSL_CTX *client_ctx;      /* TLS only: an empty client context given to lws (see ws_start) */
    SSL_CTX *server_ctx;      /* TLS only: the vhost's context, lws's (ws_reload_tls) */
    int sweeping;
};

/* An adopted socket, from accept until its upgrade is done (or lws frees it first); lws's opaque
 * user data points here meanwhile. On the pending list until ESTABLISHED, which moves its slot in
 * the broker's per-address count into the struct wsconn and frees it: an open connection keeps
 * no struct pend. */
struct pend {
    struct lws *wsi;
    uint64_t deadline;
    struct pend *prev, *next; /* on ws->pend_*, unless killed or done */
    int killed;
    int done; /* upgraded: no longer pending */
    struct peer_key peer;
};

/* Per-connection state: lws allocates it zeroed (per_session_data_size) and frees it after
 * LWS_CALLBACK_WSI_DESTROY; we release what it points to in CLOSED and WSI_DESTROY. One per open
 * WebSocket, so it is kept small (docs/bench.md §Memory per connection; tests/unit/test_conn.c
 * holds it to a budget): loop times in 32 bits (only differences of less than 49 days are
 * taken), flags in bytes. */
struct wsconn {
    struct conn c;
    struct lws *wsi;
    struct ws *w;
    struct wire_buf *rx; /* message being joined from pieces, or NULL (freed once whole) */
    const char *close_reason;
    uint64_t open_ms;     /* wall clock at ESTABLISHED (latency metric: replays are older; the
                             hello deadline) */
    uint32_t acked;       /* the socket's tcpi_bytes_acked at the last sweep (low 32 bits) */
    uint32_t heard_ms;    /* loop time (low 32 bits) of the last sign of life (top of file) */
    struct peer_key peer; /* its slot in the per-address count while peer.valid (moved here
                             from its struct pend at ESTABLISHED, given back at WSI_DESTROY) */
    uint16_t close_code;  /* close requested with this code */
    uint8_t rx_binary;
    uint8_t established;
    uint8_t blocked;  /* lws holds part of a write: wait for WRITEABLE */
    uint8_t ping_out; /* a ping was sent since heard_ms */
};

static const char http_refusal[] = "HTTP/1.1 426 Upgrade Required\r\n"
                                   "Connection: close\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Content-Type: text/plain\r\n"
                                   "Content-Length: 52\r\n"
                                   "\r\n"
                                   "nudged: this port speaks WebSocket only (see docs)\r\n";

/* Refusals written at accept, before lws reads the request: the client's upgrade is answered
 * with a status it can act on, and nothing it sends is read. */
static const char http_too_many[] = "HTTP/1.1 429 Too Many Requests\r\n"
                                    "Connection: close\r\n"
                                    "Content-Type: text/plain\r\n"
                                    "Content-Length: 48\r\n"
                                    "\r\n"
                                    "nudged: too many connections from your address\r\n";

static const char http_forbidden[] = "HTTP/1.1 403 Forbidden\r\n"
                                     "Connection: close\r\n"
                                     "Content-Type: text/plain\r\n"
                                     "Content-Length: 45\r\n"
                                     "\r\n"
                                     "nudged: this Origin may not use this broker\r\n";

static void send_refusal(int fd, const char *p, size_t n)
{
    /* Best effort, non-blocking: a fresh socket's send buffer takes it. */
    ssize_t r = send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)r;
}

static size_t frame_header(uint8_t *h, int binary, size_t len)
{
    h[0] = binary ? 0x82 : 0x81;
    if (len < 126) {
        h[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

static int batch_fit(struct ws *w, size_t need)
{
    if (need <= w->batch_cap) return 0;
    uint8_t *nb = realloc(w->batch, LWS_PRE + need);
    if (!nb) return -ENOMEM;
    w->batch = nb;
    w->batch_cap = need;
    return 0;
}

/* Drop the connection now, whatever lws still holds for it. lws would otherwise wait to flush a
 * partial write first — forever, for a peer that never reads — so the socket is reset (linger 0)
 * and shut down, which fails the pending write and makes lws close at once. */
static void kill_conn(struct wsconn *wc)
{
    int fd = lws_get_socket_fd(wc->wsi);
    if (fd >= 0) {
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        shutdown(fd, SHUT_RDWR);
    }
    lws_set_timeout(wc->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void op_flush(struct conn *c)
{
    struct wsconn *wc = c->io;
    struct ws *w = wc->w;
    struct hub *hub = &w->srv->hub;
    if (!wc->established || wc->blocked || wc->close_code || lws_partial_buffered(wc->wsi)) return;
    int binary = c->fmt == SUB_MSGPACK;
    while (c->qlen) {
        size_t n = 0;
        uint32_t k = 0;
        for (; k < c->qlen; k++) {
            size_t plen;
            const uint8_t *p = conn_payload(c, k, &hub->tmp, &plen);
            if (!p) {
                kill_conn(wc);
                return;
            }
            size_t need = 10 + plen;
            if (n + need > BATCH_MAX && n > 0) break;
            if (batch_fit(w, n + need) < 0) {
                kill_conn(wc);
                return;
            }
            n += frame_header(w->batch + LWS_PRE + n, binary, plen);
            memcpy(w->batch + LWS_PRE + n, p, plen);
            n += plen;
        }
        metrics_observe_written(&w->srv->hub.metrics, c, k, wc->open_ms, store_wall_ms());
        int rc = lws_write(wc->wsi, w->batch + LWS_PRE, n, LWS_WRITE_RAW);
        conn_pop(c, k);
        if (rc < 0) {
            kill_conn(wc);
            return;
        }
        hub_count_bytes(hub, 0, n);
        if (lws_partial_buffered(wc->wsi)) {
            /* lws keeps the tail; until it is out, the hub coalesces what it queues here */
            wc->blocked = 1;
            c->congested = 1;
            lws_callback_on_writable(wc->wsi);
            return;
        }
    }
}

/* "address:port" ("[v6]:port") of fd's peer into out, or "" (GET /users/USER/connections). */
static void peer_name(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "";
    out[0] = '\0';
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(out, cap, "%s:%u", host, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(out, cap, "[%s]:%u", host, ntohs(a->sin6_port));
    }
}

/* Closes the broker decides on (slow consumer 4001, out of memory 1011, rate limit 4008) are an
 * operator's business: a warn event each, with the connection id, the peer and the reason
 * (rate-limited per kind by log.c, so a mass disconnect cannot flood the log). */
static void log_close(struct wsconn *wc, int code, const char *reason)
{
    enum log_event ev = code == 4001               ? LOG_EV_SLOW
                        : code == LIMIT_CLOSE_RATE ? LOG_EV_RATE
                        : code == 1011             ? LOG_EV_NOMEM
                                                   : LOG_EV_COUNT;
    if (ev == LOG_EV_COUNT) return;
    LOG_EVENT(ev, LOG_S("conn", wc->c.name), LOG_PEER(lws_get_socket_fd(wc->wsi)),
              LOG_S("transport", "ws"), LOG_N("code", code), LOG_S("reason", reason));
}

static void op_refused(struct conn *c, const char *reason, const char *why)
{
    struct wsconn *wc = c->io;
    LOG_EVENT(LOG_EV_AUTH, LOG_S("conn", c->name), LOG_PEER(lws_get_socket_fd(wc->wsi)),
              LOG_S("transport", "ws"), LOG_S("reason", reason), LOG_S("detail", why));
}

static void op_close(struct conn *c, int code, const char *reason)
{
    struct wsconn *wc = c->io;
    if (wc->close_code) return;
    log_close(wc, code, reason);
    wc->close_code = (uint16_t)code;
    wc->close_reason = reason;
    if (wc->blocked || lws_partial_buffered(wc->wsi))
        kill_conn(wc); /* the peer is not reading: a close frame could not reach it anyway */
    else
        lws_callback_on_writable(wc->wsi);
}

static void op_describe(struct conn *c, char *peer, size_t cap, uint64_t *open_ms)
{
    struct wsconn *wc = c->io;
    peer_name(lws_get_socket_fd(wc->wsi), peer, cap);
    *open_ms = wc->open_ms;
}

static const struct conn_ops ws_ops = {
    .flush = op_flush, .close = op_close, .refused = op_refused, .describe = op_describe};

static void pend_unlink(struct ws *w, struct pend *p)
{
    if (p->killed) return;
    if (p->prev)
        p->prev->next = p->next;
    else
        w->pend_head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        w->pend_tail = p->prev;
    p->prev = p->next = NULL;
}

/* The upgrade finished or the socket is gone: it no longer counts as pending. */
static void pend_done(struct ws *w, struct pend *p)
{
    if (p->done) return;
    p->done = 1;
    pend_unlink(w, p);
    p->killed = 1; /* off the list for good: pend_unlink is a no-op from now on */
    stat_sub(&w->srv->ws_pending, 1);
}

/* lws frees the wsi: give back its slot in the per-address count, held by its struct pend
 * until the upgrade, by its struct wsconn (user, when lws allocated one) after. */
static void pend_destroy(struct ws *w, struct lws *wsi, struct wsconn *wc)
{
    struct pend *p = lws_get_opaque_user_data(wsi);
    if (wc && wc->peer.valid) {
        peers_remove(&w->srv->broker->peers, &wc->peer);
        wc->peer.valid = 0;
    }
    if (!p) return;
    lws_set_opaque_user_data(wsi, NULL);
    pend_done(w, p);
    peers_remove(&w->srv->broker->peers, &p->peer);
    free(p);
}

static void on_pend_timer(uv_timer_t *t)
{
    struct ws *w = t->data;
    uint64_t now = uv_now(w->srv->loop);
    struct pend *p;
    while ((p = w->pend_head) && p->deadline <= now) {
        pend_unlink(w, p);
        p->killed = 1; /* still counted until lws frees the wsi (WSI_DESTROY) */
        metrics_add(&w->srv->hub.metrics, METRICS_LIMIT_HELLO, 1);
        int fd = lws_get_socket_fd(p->wsi);
        LOG_EVENT(LOG_EV_TIMEOUT, LOG_PEER(fd), LOG_S("transport", "ws"),
                  LOG_S("what", "WebSocket upgrade not done within --hello-timeout"),
                  LOG_N("timeout_ms", w->srv->cfg.hello_timeout_ms));
        if (fd >= 0) shutdown(fd, SHUT_RDWR);
        lws_set_timeout(p->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    }
    if (p) uv_timer_start(t, on_pend_timer, p->deadline - now, 0);
}

static void pend_add(struct ws *w, struct lws *wsi, struct pend *p)
{
    p->wsi = wsi;
    p->deadline = uv_now(w->srv->loop) + w->srv->cfg.hello_timeout_ms;
    p->prev = w->pend_tail;
    if (w->pend_tail)
        w->pend_tail->next = p;
    else
        w->pend_head = p;
    w->pend_tail = p;
    lws_set_opaque_user_data(wsi, p);
    stat_add(&w->srv->ws_pending, 1);
    if (!uv_is_active((uv_handle_t *)&w->pend_timer))
        uv_timer_start(&w->pend_timer, on_pend_timer, w->srv->cfg.hello_timeout_ms, 0);
}

/* Liveness sweep, per connection (top of file): a peer that acknowledged more of a backlog
 * since the last sweep is reading it, so its ping (queued behind the backlog) cannot be answered
 * in time and need not be; a quiet one is pinged, then dropped. */
static void sweep_conn(struct wsconn *wc)
{
    struct server *srv = wc->w->srv;
    conn_queue_trim(&wc->c); /* nothing queued: an idle connection keeps no ring */
    /* An upgraded connection that never says hello holds a descriptor and a slot for nothing:
     * it goes like a handshake that never ends (checked here, every --ws-ping / 6 s). */
    uint64_t wall = store_wall_ms(); /* a clock stepped back only delays this */
    if (!wc->c.hello && !wc->c.closing && wall > wc->open_ms &&
        wall - wc->open_ms >= srv->cfg.hello_timeout_ms) {
        metrics_add(&srv->hub.metrics, METRICS_LIMIT_HELLO, 1);
        LOG_EVENT(LOG_EV_TIMEOUT, LOG_S("conn", wc->c.name), LOG_PEER(lws_get_socket_fd(wc->wsi)),
                  LOG_S("transport", "ws"), LOG_S("what", "no hello within --hello-timeout"),
                  LOG_N("timeout_ms", srv->cfg.hello_timeout_ms));
        hub_conn_close(&srv->hub, &wc->c, 1008, "no hello within --hello-timeout");
        return;
    }
    struct ws *w = wc->w;
    uint64_t acked, now = uv_now(srv->loop);
    int waiting, fd = lws_get_socket_fd(wc->wsi);
    if (fd >= 0 && sock_progress(fd, &acked, &waiting) == 0) {
        /* acked only grows: a change of its low 32 bits is progress */
        if ((waiting || wc->blocked) && (uint32_t)acked != wc->acked) {
            wc->heard_ms = (uint32_t)now; /* it is reading its backlog */
            wc->ping_out = 0;
        }
        wc->acked = (uint32_t)acked;
    }
    uint32_t quiet = (uint32_t)now - wc->heard_ms; /* wraps every 49 days: harmless */
    if (quiet >= w->hup_ms) {
        kill_conn(wc); /* no close frame: a peer that answers nothing would not read it */
        return;
    }
    if (quiet < w->ping_ms || wc->ping_out || wc->close_code) return;
    /* Behind a backlog the ping would wait anyway: the backlog's progress speaks for it. */
    if (wc->blocked || lws_partial_buffered(wc->wsi)) return;
    /* With a payload: lws 4.1 passes a pong to LWS_CALLBACK_RECEIVE_PONG only when it carries
     * one, and the peer must echo the ping's (RFC 6455 §5.5.3). */
    uint8_t *f = w->batch + LWS_PRE;
    f[0] = 0x89; /* FIN + ping */
    f[1] = 0x01;
    f[2] = 'n';
    if (lws_write(wc->wsi, f, 3, LWS_WRITE_RAW) < 0) {
        kill_conn(wc);
        return;
    }
    wc->ping_out = 1;
    if (lws_partial_buffered(wc->wsi)) {
        wc->blocked = 1;
        wc->c.congested = 1;
        lws_callback_on_writable(wc->wsi);
    }
}

/* c, or the first WebSocket after it in the hub's list, or NULL. The cursor rests only on
 * WebSockets: only this file frees them, and LWS_CALLBACK_CLOSED moves the cursor off one first. */
static struct conn *next_ws(struct conn *c)
{
    while (c && c->ops != &ws_ops)
        c = c->next;
    return c;
}

static void on_sweep(uv_timer_t *t)
{
    struct ws *w = t->data;
    struct hub *hub = &w->srv->hub;
    /* This slice's share of a round: every connection once per sweep_ms. Connections opened
     * meanwhile join the list's head and wait for the next round. */
    uint64_t n = stat_get(&hub->st.conns[CONN_SUB]), slices = w->sweep_ms / SWEEP_SLICE_MS;
    uint64_t quota = slices ? n / slices + 1 : n + 1;
    if (!w->sweep_next) w->sweep_next = next_ws(hub->conns);
    while (w->sweep_next && quota--) {
        struct wsconn *wc = w->sweep_next->io;
        w->sweep_next = next_ws(w->sweep_next->next);
        if (wc->established) sweep_conn(wc); /* may close it: never frees it here */
    }
}

/* --allow-origin: a browser always sends Origin with a WebSocket upgrade, so a page of another
 * site (cross-site WebSocket hijacking) is refused; a client without Origin is not a browser
 * and gets in (the allow-list is no authentication: tokens are). Compared case-insensitively
 * (scheme and host are), exactly otherwise: "https://app.example.com" does not admit
 * "https://app.example.com.evil.net". No list: any origin, as before. */
static int origin_allowed(const struct config *cfg, struct lws *wsi)
{
    if (cfg->nallow_origin == 0) return 1;
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    if (n <= 0) return 1;
    char o[CONFIG_ORIGIN_LEN];
    if (n >= (int)sizeof(o) || lws_hdr_copy(wsi, o, sizeof(o), WSI_TOKEN_ORIGIN) != n) return 0;
    for (uint32_t i = 0; i < cfg->nallow_origin; i++)
        if (strcasecmp(o, cfg->allow_origin[i]) == 0) return 1;
    return 0;
}

/* The refused Origin is the peer's bytes: logged as they came (log.c escapes them and cuts them
 * at LOG_VALUE_MAX). */
static void log_origin(struct lws *wsi)
{
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    char *o = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (o) n = lws_hdr_copy(wsi, o, n + 1, WSI_TOKEN_ORIGIN);
    LOG_EVENT(LOG_EV_ORIGIN, LOG_PEER(lws_get_socket_fd(wsi)), LOG_S("transport", "ws"),
              LOG_B("origin", o ? o : "", o && n > 0 ? (size_t)n : 0));
    free(o);
}

static void refuse_http(struct lws *wsi)
{
    if (lws_is_ssl(wsi)) return;
    /* Best effort, non-blocking: the answer fits any fresh socket's send buffer. */
    ssize_t r = send(lws_get_socket_fd(wsi), http_refusal, sizeof(http_refusal) - 1,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)r;
}

static void deliver(struct wsconn *wc, const uint8_t *p, size_t len, int binary)
{
    struct server *srv = wc->w->srv;
    if (hub_limit_message(&srv->hub, &wc->c) < 0) return; /* over --msg-rate */
    session_sub_message(&srv->session, &wc->c, p, len, binary, uv_now(srv->loop));
}

static void rx_free(struct wsconn *wc)
{
    if (!wc->rx) return;
    wire_buf_free(wc->rx);
    free(wc->rx);
    wc->rx = NULL;
}

static int on_receive(struct wsconn *wc, const uint8_t *in, size_t len)
{
    struct ws *w = wc->w;
    struct server *srv = w->srv;
    hub_count_bytes(&srv->hub, len, 0);
    if (wc->close_code) return 0;
    int final = lws_is_final_fragment(wc->wsi);
    size_t have = wc->rx ? wc->rx->len : 0;
    if (have == 0) wc->rx_binary = (uint8_t)lws_frame_is_binary(wc->wsi);
    if (have + len > srv->engine->cfg.lim.max_frame) {
        stat_add(&srv->hub.st.errors, 1);
        LOG_EVENT(LOG_EV_TOO_LARGE, LOG_S("conn", wc->c.name), LOG_PEER(lws_get_socket_fd(wc->wsi)),
                  LOG_S("transport", "ws"), LOG_S("what", "message"),
                  LOG_N("limit", srv->engine->cfg.lim.max_frame));
        lws_close_reason(wc->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                         (unsigned char *)"message over max_frame", 22);
        return -1;
    }
    if (final && have == 0) { /* whole message in one piece: no copy */
        deliver(wc, in, len, wc->rx_binary);
        return 0;
    }
    if (!wc->rx && !(wc->rx = calloc(1, sizeof(*wc->rx)))) return -1;
    if (wire_buf_append(wc->rx, in, len) < 0) return -1;
    if (final) {
        deliver(wc, wc->rx->data, wc->rx->len, wc->rx_binary);
        rx_free(wc); /* an idle connection keeps no buffer (messages are rare) */
    }
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct wsconn *wc = user;
    struct ws *w = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
        /* user is the vhost's SSL_CTX here: TLS 1.2 at least, no renegotiation */
        w->server_ctx = (SSL_CTX *)user; /* for ws_reload_tls */
        SSL_CTX_set_min_proto_version((SSL_CTX *)user, TLS1_2_VERSION);
        SSL_CTX_set_options((SSL_CTX *)user, SSL_OP_NO_RENEGOTIATION);
        return 0;
    case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
    case LWS_CALLBACK_HTTP:
    case LWS_CALLBACK_RAW_ADOPT: /* CONNECT: lws made it a raw socket (see top) */
        refuse_http(wsi);
        return -1;
    case LWS_CALLBACK_RAW_RX:
        return -1;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        /* --max-conns was checked at accept, this socket already counted as pending. */
        if (w->srv->stopping) {
            LOGF(LOG_INFO, "WebSocket refused: shutting down");
            return -1;
        }
        if (!origin_allowed(&w->srv->cfg, wsi)) {
            metrics_add(&w->srv->hub.metrics, METRICS_LIMIT_ORIGIN, 1);
            log_origin(wsi);
            send_refusal(lws_get_socket_fd(wsi), http_forbidden, sizeof(http_forbidden) - 1);
            return -1;
        }
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        pend_destroy(w, wsi, wc);
        return 0;
    case LWS_CALLBACK_ESTABLISHED: {
        struct pend *p = lws_get_opaque_user_data(wsi);
        memset(wc, 0, sizeof(*wc));
        if (p) { /* the peer's slot moves here; the struct pend goes */
            pend_done(w, p);
            wc->peer = p->peer; /* valid: counted */
            lws_set_opaque_user_data(wsi, NULL);
            free(p);
        }
        wc->wsi = wsi;
        wc->w = w;
        wc->established = 1;
        wc->open_ms = store_wall_ms();
        wc->heard_ms = (uint32_t)uv_now(w->srv->loop);
        /* lws copies the protocols array into the vhost: compare ids, not pointers */
        wc->c.fmt = lws_get_protocol(wsi)->id == 1 ? SUB_MSGPACK : SUB_JSON;
        hub_conn_open(&w->srv->hub, &wc->c, CONN_SUB, &ws_ops, wc);
        return 0;
    }
    case LWS_CALLBACK_RECEIVE:
        return wc && wc->established ? on_receive(wc, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!wc || !wc->established) return 0;
        wc->blocked = 0;
        wc->c.congested = 0;
        if (wc->close_code) {
            /* Our writes are raw, so lws does not frame a close for us on return -1 (the peer
             * would see 1006): write the close frame ourselves, then let lws drop the socket. */
            const char *r = wc->close_reason ? wc->close_reason : "";
            size_t rl = strlen(r) > 120 ? 120 : strlen(r);
            uint8_t *f = w->batch + LWS_PRE;
            f[0] = 0x88;
            f[1] = (uint8_t)(2 + rl);
            f[2] = (uint8_t)(wc->close_code >> 8);
            f[3] = (uint8_t)wc->close_code;
            memcpy(f + 4, r, rl);
            if (lws_write(wsi, f, 4 + rl, LWS_WRITE_RAW) > 0)
                hub_count_bytes(&w->srv->hub, 0, 4 + rl);
            return -1;
        }
        op_flush(&wc->c);
        return 0;
    case LWS_CALLBACK_RECEIVE_PONG:
        if (wc && wc->established) {
            wc->heard_ms = (uint32_t)uv_now(w->srv->loop);
            wc->ping_out = 0;
        }
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (wc && wc->established) {
            if (w->sweep_next == &wc->c) w->sweep_next = next_ws(wc->c.next);
            session_conn_gone(&w->srv->session, &wc->c);
            hub_conn_gone(&w->srv->hub, &wc->c);
            rx_free(wc);
            wc->established = 0;
        }
        return 0;
    default:
        return 0;
    }
}

static void on_accept(void *data, int fd)
{
    struct ws *w = data;
    struct server *srv = w->srv;
    if (srv->stopping || server_conns(srv) >= srv->cfg.max_conns) {
        if (!srv->stopping)
            LOG_EVENT(LOG_EV_CONNS, LOG_PEER(fd), LOG_S("transport", "ws"),
                      LOG_N("limit", srv->cfg.max_conns));
        close(fd);
        return;
    }
    struct pend *p = calloc(1, sizeof(*p));
    if (!p) { /* cannot track it: do not keep it either */
        close(fd);
        return;
    }
    peers_key(fd, &p->peer);
    int prc = peers_add(&srv->broker->peers, &p->peer, srv->cfg.max_conns_per_ip);
    if (prc == -EBUSY) {
        metrics_add(&srv->hub.metrics, METRICS_LIMIT_IP, 1);
        LOG_EVENT(LOG_EV_CONNS_IP, LOG_PEER(fd), LOG_S("transport", "ws"),
                  LOG_N("limit", srv->cfg.max_conns_per_ip));
        send_refusal(fd, http_too_many, sizeof(http_too_many) - 1);
        close(fd);
        free(p);
        return;
    }
    if (prc < 0) p->peer.valid = 0; /* not counted (no memory): let it in, never uncount it */
    /* The kernel autotunes a send buffer to megabytes, and a slow reader would get all of that
     * as stale hints, one by one, before the hub sees congestion and coalesces: bound it. */
    int sndbuf = (int)srv->cfg.ws_sndbuf;
    if (sndbuf) (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    struct lws *wsi = lws_adopt_socket_vhost(w->vh, fd);
    if (!wsi) {
        LOGF(LOG_WARN, "ws: lws could not adopt a connection");
        peers_remove(&srv->broker->peers, &p->peer);
        free(p);
    } else {
        pend_add(w, wsi, p);
    }
}

static void lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    log_emit(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws: %.*s", (int)n, line);
}

int ws_start(struct server *srv, int fd, struct ws **out)
{
    int rc;
    struct ws *w = calloc(1, sizeof(*w));
    if (!w) {
        close(fd);
        return -ENOMEM;
    }
    w->srv = srv;
    w->loops[0] = srv->loop;
    w->batch_cap = BATCH_MAX;
    w->batch = malloc(LWS_PRE + w->batch_cap);
    const char *names[2] = {SUB_PROTO_JSON, SUB_PROTO_MSGPACK};
    for (int i = 0; i < 2; i++) {
        w->protocols[i].name = names[i];
        w->protocols[i].callback = callback;
        w->protocols[i].per_session_data_size = sizeof(struct wsconn);
        /* lws keeps a buffer of this size (+ LWS_PRE + 4) per connection for its whole life and
         * hands a longer message over in pieces of it, which on_receive joins (and frees once
         * whole). 128 holds any control frame's payload (<= 125, which lws wants in one piece)
         * and most sub messages; a hello with a token comes in a few pieces. */
        w->protocols[i].rx_buffer_size = 128;
        w->protocols[i].id = (unsigned)i;
        w->protocols[i].tx_packet_size = BATCH_MAX;
    }
    /* lws keeps its log level and emitter in process globals that every worker's lws reads:
     * set them once, on worker 0, which starts before any other worker's thread exists. */
    if (srv->index == 0)
        lws_set_log_level(log_level() >= LOG_DEBUG ? (LLL_ERR | LLL_WARN) : LLL_ERR, lws_log);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = w->protocols;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.foreign_loops = w->loops;
    info.user = w;
    info.timeout_secs = 10; /* handshake and close must finish within this */
    /* a phone that left the network must not hold a subscription (and its queue) forever: the
     * sweep pings and drops (top of file); lws's own validity timers stay off (hangup 0) */
    uint32_t ping = srv->cfg.ws_ping ? srv->cfg.ws_ping : 30;
    w->ping_ms = (uint64_t)ping * 1000;
    w->hup_ms = w->ping_ms + (ping >= 6 ? ping / 3 : 1) * 1000ull;
    memset(&w->idle, 0, sizeof(w->idle));
    info.retry_and_idle_policy = &w->idle;
    info.max_http_header_data = 4096;
    if (srv->cfg.tls & CONFIG_TLS_WS) {
        info.port = CONTEXT_PORT_NO_LISTEN_SERVER; /* see the top of this file */
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = srv->cfg.tls_cert;
        info.ssl_private_key_filepath = srv->cfg.tls_key;
        /* Without a client context of ours, lws makes one per vhost and loads the system's
         * CA bundle into it (~0.5 MB per worker, which it does not free with several contexts
         * in one process): we never connect out, so give it an empty one. */
        if (!(w->client_ctx = SSL_CTX_new(TLS_client_method()))) {
            rc = -ENOMEM;
            goto fail;
        }
        info.provided_client_ssl_ctx = w->client_ctx;
    }
    if (!w->batch || !(w->ctx = lws_create_context(&info)) ||
        !(w->vh = lws_get_vhost_by_name(w->ctx, "default"))) {
        rc = -ENOMEM;
        goto fail;
    }
    listen_share(&w->listener, &srv->broker->ws_listen);
    if ((rc = listen_watch(&w->listener, srv->loop, fd, "ws", on_accept, w)) < 0) goto fail;
    w->listening = 1;
    /* Only now, with nothing left to fail: a handle on the loop cannot be freed without a close
     * callback. Nothing is accepted before uv_run, so the timer is ready before any pend_add. */
    uv_timer_init(srv->loop, &w->pend_timer); /* closed in ws_destroy */
    w->pend_timer.data = w;
    w->sweep_ms = (uint64_t)ping * 1000 / 6;
    uint64_t every = w->sweep_ms < SWEEP_SLICE_MS ? w->sweep_ms : SWEEP_SLICE_MS;
    uv_timer_init(srv->loop, &w->sweep);
    w->sweep.data = w;
    uv_timer_start(&w->sweep, on_sweep, every, every);
    w->sweeping = 1;
    *out = w;
    return 0;
fail:
    if (w->ctx) {
        lws_context_destroy(w->ctx);
        lws_context_destroy(w->ctx);
    }
    close(fd);
    SSL_CTX_free(w->client_ctx);
    free(w->batch);
    free(w);
    return rc;
}

int ws_reload_tls(struct ws *w, const char *cert, const char *key, char *err, size_t errlen)
{
    if (!w || !w->server_ctx) return 0;
    /* Check the pair in a context of our own first: the vhost's must never be left half
     * changed. On this worker's thread, the only one that uses its context; an SSL copies the
     * certificate and key when it is made, so open connections keep theirs. */
    if (tls_check(cert, key, err, errlen) < 0) return -1;
    if (SSL_CTX_use_certificate_chain_file(w->server_ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(w->server_ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(w->server_ctx) != 1) {
        snprintf(err, errlen, "%s / %s: cannot be loaded for the WebSocket listener", cert, key);
        return -1;
    }
    return 0;
}

void ws_stop_listening(struct ws *w)
{
    if (!w || !w->listening) return;
    w->listening = 0;
    listen_close(&w->listener, NULL);
}

void ws_destroy(struct ws *w)
{
    if (!w) return;
    ws_stop_listening(w);
    uv_close((uv_handle_t *)&w->pend_timer, NULL);
    if (w->sweeping) {
        w->sweeping = 0;
        uv_timer_stop(&w->sweep);
        uv_close((uv_handle_t *)&w->sweep, NULL);
    }
    lws_context_destroy(w->ctx);
}

void ws_free(struct ws *w)
{
    if (!w) return;
    lws_context_destroy(w->ctx);
    SSL_CTX_free(w->client_ctx);
    free(w->batch);
    free(w);
}

size_t ws_conn_size(void)
{
    return sizeof(struct wsconn);
}
