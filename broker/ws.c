/* ws: WebSocket subscribers on libwebsockets 4.1 running inside the server's libuv loop.
 *
 * Accept: lws does not listen (CONTEXT_PORT_NO_LISTEN). The listening socket is made by listen.c
 * and watched with a uv_poll; each accepted fd is adopted into lws's default vhost. That keeps
 * one accept design for every transport and lets several workers share a port later
 * (SO_REUSEPORT), which lws's own listener cannot do (shared/NOTES.md).
 *
 * Write path: the core queues payload references on struct conn; core_flush() calls op_flush()
 * once per loop turn, which frames every queued payload by hand (server frames are unmasked, so
 * a frame is a 2-10 byte header and the payload) into one batch buffer and hands the batch to
 * lws_write(LWS_WRITE_RAW) directly — not from WRITEABLE. Only after a partial write (lws keeps
 * the tail) do we ask for WRITEABLE, and we never write while that tail is pending. This is the
 * path measured at ~3M deliveries/s per core versus ~67k for one frame per WRITEABLE.
 *
 * HTTP: lws 4.1.6's HTTP server can be stalled by pipelined requests with bodies, so a request
 * that is not a WebSocket upgrade gets a fixed 426 answer written straight to the socket and the
 * connection is dropped before lws reads any body. */
#include "ws.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"
#include "server.h"

#define BATCH_MAX (64 * 1024) /* bytes per lws_write; also the protocols' tx_packet_size */
#define ACCEPTS_PER_WAKE 64

struct ws {
    struct server *srv;
    struct lws_context *ctx;
    struct lws_vhost *vh;
    uv_poll_t lpoll;
    int lfd;
    int polling;
    void *loops[1];
    struct lws_protocols protocols[3];
    uint8_t *batch; /* LWS_PRE headroom + batch_cap bytes */
    size_t batch_cap;
};

/* Per-connection state: lws allocates it zeroed (per_session_data_size) and frees it after
 * LWS_CALLBACK_CLOSED; we release what it points to in CLOSED. */
struct wsconn {
    struct conn c;
    struct lws *wsi;
    struct ws *w;
    struct wire_buf rx; /* message being reassembled from fragments */
    int rx_binary;
    int established;
    int blocked;      /* lws holds part of a write: wait for WRITEABLE */
    int close_code;   /* close requested with this code */
    uint64_t open_ms; /* loop time at ESTABLISHED (latency metric: replays are older) */
    const char *close_reason;
};

/* Ping a connection silent for 30 s; drop it when nothing came back for 40 s: a phone that left
 * the network must not hold a subscription (and its queue) forever. */
static const lws_retry_bo_t idle_policy = {
    .secs_since_valid_ping = 30,
    .secs_since_valid_hangup = 40,
};

static const char http_refusal[] = "HTTP/1.1 426 Upgrade Required\r\n"
                                   "Connection: close\r\n"
                                   "Upgrade: websocket\r\n"
                                   "Content-Type: text/plain\r\n"
                                   "Content-Length: 52\r\n"
                                   "\r\n"
                                   "nudged: this port speaks WebSocket only (see docs)\r\n";

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
    struct core *core = &w->srv->core;
    if (!wc->established || wc->blocked || wc->close_code || lws_partial_buffered(wc->wsi)) return;
    int binary = c->fmt == SUB_MSGPACK;
    while (c->qlen) {
        size_t n = 0;
        uint32_t k = 0;
        for (; k < c->qlen; k++) {
            size_t plen;
            const uint8_t *p = conn_payload(c, k, &core->tmp, &plen);
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
        metrics_observe_written(&w->srv->metrics, c, k, wc->open_ms, uv_now(w->srv->loop));
        int rc = lws_write(wc->wsi, w->batch + LWS_PRE, n, LWS_WRITE_RAW);
        conn_pop(c, k);
        if (rc < 0) {
            kill_conn(wc);
            return;
        }
        core->st.bytes_out += n;
        if (lws_partial_buffered(wc->wsi)) {
            /* lws keeps the tail; until it is out, the core coalesces what it queues here */
            wc->blocked = 1;
            c->congested = 1;
            lws_callback_on_writable(wc->wsi);
            return;
        }
    }
}

static void op_close(struct conn *c, int code, const char *reason)
{
    struct wsconn *wc = c->io;
    if (wc->close_code) return;
    wc->close_code = code;
    wc->close_reason = reason;
    if (wc->blocked || lws_partial_buffered(wc->wsi))
        kill_conn(wc); /* the peer is not reading: a close frame could not reach it anyway */
    else
        lws_callback_on_writable(wc->wsi);
}

static const struct conn_ops ws_ops = {.flush = op_flush, .close = op_close};

static void refuse_http(struct lws *wsi)
{
    /* Best effort, non-blocking: the answer fits any fresh socket's send buffer. */
    ssize_t r = send(lws_get_socket_fd(wsi), http_refusal, sizeof(http_refusal) - 1,
                     MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)r;
}

static void deliver(struct wsconn *wc, const uint8_t *p, size_t len, int binary)
{
    core_ws_message(&wc->w->srv->core, &wc->c, p, len, binary);
}

static int on_receive(struct wsconn *wc, const uint8_t *in, size_t len)
{
    struct ws *w = wc->w;
    struct core *core = &w->srv->core;
    core->now_ms = uv_now(w->srv->loop);
    core->st.bytes_in += len;
    if (wc->close_code) return 0;
    int final = lws_is_final_fragment(wc->wsi);
    if (wc->rx.len == 0) wc->rx_binary = lws_frame_is_binary(wc->wsi);
    if (wc->rx.len + len > core->cfg.lim.max_frame) {
        core->st.errors++;
        lws_close_reason(wc->wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                         (unsigned char *)"message over max_frame", 22);
        return -1;
    }
    if (final && wc->rx.len == 0) { /* whole message in one piece: no copy */
        deliver(wc, in, len, wc->rx_binary);
        return 0;
    }
    if (wire_buf_append(&wc->rx, in, len) < 0) return -1;
    if (final) {
        deliver(wc, wc->rx.data, wc->rx.len, wc->rx_binary);
        wire_buf_reset(&wc->rx);
        if (wc->rx.cap > 4096) wire_buf_free(&wc->rx); /* don't keep a big buffer per idle conn */
    }
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct wsconn *wc = user;
    struct ws *w = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
    case LWS_CALLBACK_HTTP:
        refuse_http(wsi);
        return -1;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        if (w->srv->stopping || server_conns(w->srv) >= w->srv->cfg.max_conns) {
            LOGF(w->srv->cfg.log_level, LOG_WARN, "WebSocket refused: %s",
                 w->srv->stopping ? "shutting down" : "--max-conns reached");
            return -1;
        }
        return 0;
    case LWS_CALLBACK_ESTABLISHED:
        memset(wc, 0, sizeof(*wc));
        wc->wsi = wsi;
        wc->w = w;
        wc->established = 1;
        wc->open_ms = uv_now(w->srv->loop);
        /* lws copies the protocols array into the vhost: compare ids, not pointers */
        wc->c.fmt = lws_get_protocol(wsi)->id == 1 ? SUB_MSGPACK : SUB_JSON;
        core_conn_open(&w->srv->core, &wc->c, CONN_WS, &ws_ops, wc);
        return 0;
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
            if (lws_write(wsi, f, 4 + rl, LWS_WRITE_RAW) > 0) w->srv->core.st.bytes_out += 4 + rl;
            return -1;
        }
        op_flush(&wc->c);
        return 0;
    case LWS_CALLBACK_CLOSED:
        if (wc && wc->established) {
            core_conn_gone(&w->srv->core, &wc->c);
            wire_buf_free(&wc->rx);
            wc->established = 0;
        }
        return 0;
    default:
        return 0;
    }
}

static void on_accept(uv_poll_t *p, int status, int events)
{
    struct ws *w = p->data;
    (void)events;
    if (status < 0) return;
    for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
        int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                LOGF(w->srv->cfg.log_level, LOG_WARN, "ws accept: %s", strerror(errno));
            return;
        }
        if (w->srv->stopping || server_conns(w->srv) >= w->srv->cfg.max_conns) {
            close(fd);
            continue;
        }
        if (!lws_adopt_socket_vhost(w->vh, fd))
            LOGF(w->srv->cfg.log_level, LOG_WARN, "ws: lws could not adopt a connection");
    }
}

static void lws_log(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    log_emit(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws: %.*s", (int)n, line);
}

int ws_start(struct server *srv, const char *addr, struct ws **out, char *bound, size_t boundlen)
{
    int fd, rc;
    if ((rc = listen_open(addr, 511, 0, &fd, bound, boundlen)) < 0) return rc;
    struct ws *w = calloc(1, sizeof(*w));
    if (!w) {
        close(fd);
        return -ENOMEM;
    }
    w->srv = srv;
    w->lfd = fd;
    w->loops[0] = srv->loop;
    w->batch_cap = BATCH_MAX;
    w->batch = malloc(LWS_PRE + w->batch_cap);
    const char *names[2] = {SUB_PROTO_JSON, SUB_PROTO_MSGPACK};
    for (int i = 0; i < 2; i++) {
        w->protocols[i].name = names[i];
        w->protocols[i].callback = callback;
        w->protocols[i].per_session_data_size = sizeof(struct wsconn);
        w->protocols[i].rx_buffer_size = 512; /* ~2 KB RSS per idle connection (NOTES) */
        w->protocols[i].id = (unsigned)i;
        w->protocols[i].tx_packet_size = BATCH_MAX;
    }
    lws_set_log_level(srv->cfg.log_level >= LOG_DEBUG ? (LLL_ERR | LLL_WARN) : LLL_ERR, lws_log);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = w->protocols;
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.foreign_loops = w->loops;
    info.user = w;
    info.timeout_secs = 10; /* handshake and close must finish within this */
    info.retry_and_idle_policy = &idle_policy;
    info.max_http_header_data = 4096;
    if (!w->batch || !(w->ctx = lws_create_context(&info)) ||
        !(w->vh = lws_get_vhost_by_name(w->ctx, "default"))) {
        rc = -ENOMEM;
        goto fail;
    }
    uv_poll_init(srv->loop, &w->lpoll, fd);
    w->lpoll.data = w;
    uv_poll_start(&w->lpoll, UV_READABLE, on_accept);
    w->polling = 1;
    *out = w;
    return 0;
fail:
    if (w->ctx) {
        lws_context_destroy(w->ctx);
        lws_context_destroy(w->ctx);
    }
    close(fd);
    free(w->batch);
    free(w);
    return rc;
}

static void on_lpoll_closed(uv_handle_t *h)
{
    struct ws *w = h->data;
    close(w->lfd);
    w->lfd = -1;
}

void ws_stop_listening(struct ws *w)
{
    if (!w || !w->polling) return;
    w->polling = 0;
    uv_poll_stop(&w->lpoll);
    uv_close((uv_handle_t *)&w->lpoll, on_lpoll_closed);
}

void ws_destroy(struct ws *w)
{
    if (!w) return;
    ws_stop_listening(w);
    lws_context_destroy(w->ctx);
}

void ws_free(struct ws *w)
{
    if (!w) return;
    lws_context_destroy(w->ctx);
    free(w->batch);
    free(w);
}
