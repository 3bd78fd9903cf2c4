/* watch: a WebSocket subscriber on libwebsockets' client API and its own default (poll) event
 * loop, for `nudge sub` and `nudge tail`.
 *
 * Flow: connect (subprotocol nudge.json.v1, or nudge.msgpack.v1) → on ESTABLISHED queue hello
 * and sub (encoded with sub_encode_*) → write them one per WRITEABLE → every received message is
 * reassembled from its fragments, decoded with sub_decode and dispatched: hints and resets to
 * the caller's on_msg, "welcome"/"subscribed"/"error" to stderr, broker pings get a pong.
 *
 * Positions (for reconnect): per exact topic the last seq the broker gave us (subscribed, hint,
 * reset), per pattern the global position (subscribed, reset, and the "g" of the pongs that
 * answer the pings we send every WATCH_PING_US while patterns are held). A lost connection is
 * retried with backoff (WATCH_RETRY_MIN_MS doubling to WATCH_RETRY_MAX_MS) and its sub carries
 * "resume" with those positions and the epoch they belong to; a ping right after it marks where
 * the catch-up ends (the broker sends catch-up before anything newer, and answers in order).
 *
 * Ending: watch_finish, --timeout, SIGINT/SIGTERM → close with 1000 and leave the loop once lws
 * reports it closed (or after a 1 s grace period). All state lives in the caller's struct watch;
 * the only globals are what the signal handler needs. */
#include "watch.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum {
    WATCH_CLOSE_GRACE_US = 1000000, /* wait this long for the close handshake */
    WATCH_RETRY_MIN_MS = 250,
    WATCH_RETRY_MAX_MS = 5000,
    WATCH_PING_US = 1000000, /* while patterns are held and reconnect is on: learn "g" */
};

static volatile sig_atomic_t watch_interrupted;
static struct lws_context *watch_ctx_for_signal;

static void watch__on_signal(int sig)
{
    (void)sig;
    watch_interrupted = 1;
    if (watch_ctx_for_signal) lws_cancel_service(watch_ctx_for_signal); /* wake lws's poll */
}

static void watch__log(int level, const char *line)
{
    (void)level;
    fprintf(stderr, "nudge: lws: %s", line);
}

static void watch__grace_over(lws_sorted_usec_list_t *sul)
{
    struct watch *w = lws_container_of(sul, struct watch, sul_grace);
    w->done = 1;
}

void watch_finish(struct watch *w, int code)
{
    if (w->done || w->closing) return;
    w->exit_code = code;
    if (w->wsi) {
        w->closing = 1;
        lws_callback_on_writable(w->wsi);
        lws_sul_schedule(w->ctx, 0, &w->sul_grace, watch__grace_over, WATCH_CLOSE_GRACE_US);
    } else {
        w->done = 1;
    }
}

static void watch__timeout(lws_sorted_usec_list_t *sul)
{
    struct watch *w = lws_container_of(sul, struct watch, sul_timeout);
    if (w->on_timeout)
        w->on_timeout(w);
    else
        watch_finish(w, CLI_OK);
}

/* Queue one outgoing message; encode() appends it after LWS_PRE bytes of headroom. */
static struct wire_buf *watch__tx_slot(struct watch *w)
{
    if (w->txlen == WATCH_TXQ) return NULL;
    struct wire_buf *b = &w->txq[(w->txhead + w->txlen) % WATCH_TXQ];
    wire_buf_reset(b);
    if (wire_buf_reserve(b, LWS_PRE + 64) != 0) return NULL;
    memset(b->data, 0, LWS_PRE);
    b->len = LWS_PRE;
    return b;
}

static void watch__tx_commit(struct watch *w)
{
    w->txlen++;
    if (w->wsi) lws_callback_on_writable(w->wsi);
}

static int watch__has_positions(const struct watch *w)
{
    for (uint32_t i = 0; i < w->ntopics; i++)
        if (w->has_pos[i]) return 1;
    return 0;
}

static int watch__queue_ping(struct watch *w, uint64_t id)
{
    struct wire_buf *b = watch__tx_slot(w);
    if (!b || sub_encode_ping(w->fmt, b, 1, id) != 0) return -1;
    watch__tx_commit(w);
    return 0;
}

static int watch__queue_hello_and_sub(struct watch *w)
{
    struct wire_str topics[WIRE_TOPICS_MAX];
    for (uint32_t i = 0; i < w->ntopics; i++) {
        topics[i].p = w->topics[i];
        topics[i].len = (uint32_t)strlen(w->topics[i]);
    }
    int resume = w->reconnect && w->pos_epoch[0] && watch__has_positions(w);
    struct wire_buf *b = watch__tx_slot(w);
    if (!b || sub_encode_hello_token(w->fmt, b, WIRE_VERSION, "nudge-cli", w->token) != 0)
        return -1;
    watch__tx_commit(w);
    b = watch__tx_slot(w);
    if (!b || sub_encode_subscribe(w->fmt, b, 1, topics, w->ntopics, resume ? w->pos_epoch : NULL,
                                   resume ? w->has_pos : NULL, resume ? w->pos : NULL, 0) != 0)
        return -1;
    watch__tx_commit(w);
    if (resume) {
        uint32_t n = 0;
        for (uint32_t i = 0; i < w->ntopics; i++)
            n += w->has_pos[i];
        fprintf(stderr, "nudge: resuming %" PRIu32 " of %" PRIu32 " topics from epoch %s\n", n,
                w->ntopics, w->pos_epoch);
        w->catching_up = 1;
        w->catchup_id = ++w->next_id;
        if (watch__queue_ping(w, w->catchup_id) != 0) return -1;
    }
    return 0;
}

static int watch__write_next(struct watch *w, struct lws *wsi)
{
    if (w->closing) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"bye", 3);
        return -1; /* lws sends the close frame and ends the connection */
    }
    if (w->txlen == 0) return 0;
    struct wire_buf *b = &w->txq[w->txhead];
    size_t n = b->len - LWS_PRE;
    enum lws_write_protocol kind = w->fmt == SUB_MSGPACK ? LWS_WRITE_BINARY : LWS_WRITE_TEXT;
    int wrote = lws_write(wsi, b->data + LWS_PRE, n, kind);
    w->txhead = (w->txhead + 1) % WATCH_TXQ;
    w->txlen--;
    if (wrote < (int)n) {
        cli_err("error: WebSocket write failed");
        w->exit_code = CLI_FAIL;
        w->done = 1;
        return -1;
    }
    if (w->txlen) lws_callback_on_writable(wsi);
    return 0;
}

/* Index of the topic or pattern we subscribed that is exactly t, or -1. */
static int watch__find(const struct watch *w, struct wire_str t)
{
    for (uint32_t i = 0; i < w->ntopics; i++)
        if (strlen(w->topics[i]) == t.len && memcmp(w->topics[i], t.p, t.len) == 0) return (int)i;
    return -1;
}

static void watch__set_pos(struct watch *w, struct wire_str t, uint64_t seq)
{
    int i = watch__find(w, t);
    if (i < 0) return; /* a topic only a pattern brings: the pattern's global position covers it */
    w->pos[i] = seq;
    w->has_pos[i] = 1;
}

static void watch__ping_tick(lws_sorted_usec_list_t *sul)
{
    struct watch *w = lws_container_of(sul, struct watch, sul_ping);
    if (w->wsi && !w->closing && w->txlen < WATCH_TXQ / 2) watch__queue_ping(w, ++w->next_id);
    lws_sul_schedule(w->ctx, 0, &w->sul_ping, watch__ping_tick, WATCH_PING_US);
}

/* One complete message from the broker. */
static void watch__dispatch(struct watch *w, const uint8_t *p, size_t len)
{
    struct sub_msg m;
    int rc = sub_decode(w->fmt, p, len, &w->lim, &m);
    if (rc != WIRE_OK) {
        cli_err("error: undecodable message from broker (%s), ignored",
                wire_code_name(wire_code_of(rc)));
        return;
    }
    switch (m.type) {
    case SUB_SUBSCRIBED: {
        fprintf(stderr, "nudge: subscribed %.*s seq=%" PRIu64 "\n", (int)m.topic.len, m.topic.p,
                m.seq);
        w->answered++;
        w->subscribed++;
        /* With a resume the catch-up (or reset) that follows gives the position; without, the
         * answer is where we start. */
        int i = watch__find(w, m.topic);
        if (i >= 0 && !(w->catching_up && w->has_pos[i])) watch__set_pos(w, m.topic, m.seq);
        break;
    }
    case SUB_HINT:
        watch__set_pos(w, m.topic, m.seq);
        if (w->on_msg) w->on_msg(w, &m);
        break;
    case SUB_RESET:
        watch__set_pos(w, m.topic, m.seq);
        if (w->on_msg) w->on_msg(w, &m);
        break;
    case SUB_ERROR:
        fprintf(stderr, "nudge: error %s: %.*s", wire_code_name(m.code), (int)m.msg.len,
                m.msg.p ? m.msg.p : "");
        if (m.topic.len) fprintf(stderr, " (topic %.*s)", (int)m.topic.len, m.topic.p);
        fputc('\n', stderr);
        if (m.has_id && m.id == 1) {
            if (m.topic.len)
                w->answered++;
            else
                watch_finish(w, CLI_FAIL); /* the whole subscribe was refused */
        }
        break;
    case SUB_PING: {
        struct wire_buf *b = watch__tx_slot(w);
        if (b && sub_encode_pong(w->fmt, b, m.has_id, m.id) == 0) watch__tx_commit(w);
        break;
    }
    case SUB_PONG:
        if (m.has_g) /* where our patterns are caught up to, once what came before is read */
            for (uint32_t i = 0; i < w->ntopics; i++)
                if (w->is_pattern[i] && w->has_pos[i]) w->pos[i] = m.g;
        if (w->catching_up && m.has_id && m.id == w->catchup_id) {
            w->catching_up = 0;
            fprintf(stderr, "nudge: caught up; live from here\n");
        }
        break;
    case SUB_WELCOME: /* the conn id is what `nudge pub --origin` takes */
        fprintf(stderr, "nudge: %s conn=%.*s epoch=%.*s\n",
                w->connected_once ? "reconnected" : "connected", (int)m.conn.len, m.conn.p,
                (int)m.epoch.len, m.epoch.p);
        w->connected_once = 1;
        w->retry_ms = 0;
        if (!watch__has_positions(w) && m.epoch.len < sizeof w->pos_epoch) {
            memcpy(w->pos_epoch, m.epoch.p, m.epoch.len);
            w->pos_epoch[m.epoch.len] = '\0';
        } else if (w->pos_epoch[0] && (m.epoch.len != strlen(w->pos_epoch) ||
                                       memcmp(m.epoch.p, w->pos_epoch, m.epoch.len) != 0)) {
            fprintf(stderr, "nudge: the broker's epoch changed (was %s): expect resets\n",
                    w->pos_epoch);
            if (m.epoch.len < sizeof w->pos_epoch) {
                /* Positions named by the resets that follow are in the new epoch. */
                memcpy(w->pos_epoch, m.epoch.p, m.epoch.len);
                w->pos_epoch[m.epoch.len] = '\0';
            }
        }
        break;
    default: /* unsubscribed: nothing to show */
        break;
    }
    if (m.type == SUB_ERROR && w->answered == w->ntopics && w->subscribed == 0) {
        cli_err("no topic could be subscribed");
        watch_finish(w, CLI_FAIL);
    }
    sub_msg_clear(&m);
}

static void watch__connect(struct watch *w);

static void watch__retry(lws_sorted_usec_list_t *sul)
{
    struct watch *w = lws_container_of(sul, struct watch, sul_retry);
    if (!w->done) watch__connect(w);
}

/* The connection failed or ended without our asking: end (sub) or try again (tail). */
static void watch__lost(struct watch *w, const char *what)
{
    w->wsi = NULL;
    w->catching_up = 0;
    if (!w->reconnect || watch_interrupted) {
        cli_err("%s", what);
        w->exit_code = CLI_FAIL;
        w->done = 1;
        return;
    }
    w->retry_ms = w->retry_ms ? w->retry_ms * 2 : WATCH_RETRY_MIN_MS;
    if (w->retry_ms > WATCH_RETRY_MAX_MS) w->retry_ms = WATCH_RETRY_MAX_MS;
    cli_err("%s; reconnecting in %.2g s", what, w->retry_ms / 1000.0);
    w->retry_pending = 1;
    lws_sul_schedule(w->ctx, 0, &w->sul_retry, watch__retry, (lws_usec_t)w->retry_ms * 1000);
}

static int watch__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    (void)user;
    struct watch *w = lws_context_user(lws_get_context(wsi));
    if (!w) return lws_callback_http_dummy(wsi, reason, user, in, len);
    char what[400];

    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        snprintf(what, sizeof what, "cannot connect to %s: %s", w->url,
                 in ? (const char *)in : "connection failed");
        watch__lost(w, what);
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        w->wsi = wsi;
        w->txhead = w->txlen = 0;
        w->answered = w->subscribed = 0;
        w->peer_closed = 0;
        w->close_code = 0;
        w->close_reason[0] = '\0';
        wire_buf_reset(&w->rx);
        if (watch__queue_hello_and_sub(w) != 0) {
            cli_err("error: cannot encode the subscribe request");
            w->exit_code = CLI_FAIL;
            w->done = 1;
            return -1;
        }
        break;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return watch__write_next(w, wsi);
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (w->rx.len + len > w->lim.max_frame) {
            cli_err("error: message from broker larger than %u bytes", w->lim.max_frame);
            watch_finish(w, CLI_FAIL);
            wire_buf_reset(&w->rx);
            break;
        }
        if (wire_buf_append(&w->rx, in, len) != 0) {
            cli_err("out of memory");
            w->exit_code = CLI_FAIL;
            w->done = 1;
            return -1;
        }
        if (lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0) {
            if (!w->closing) watch__dispatch(w, w->rx.data, w->rx.len);
            wire_buf_reset(&w->rx);
        }
        break;
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        w->peer_closed = 1;
        if (len >= 2) {
            const unsigned char *b = in;
            size_t rl = len - 2 < sizeof w->close_reason - 1 ? len - 2 : sizeof w->close_reason - 1;
            w->close_code = (unsigned)b[0] << 8 | b[1];
            memcpy(w->close_reason, b + 2, rl);
            w->close_reason[rl] = '\0';
            /* lws 4.1's client parser rewrites the codes 1012-1015 to 1002 before we see them
             * (later lws versions do not): the broker's drain close says what it was. */
            if (w->close_code == 1002 && !strncmp(w->close_reason, "broker restarting", 17))
                w->close_code = 1012;
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (w->closing) {
            w->wsi = NULL;
            w->done = 1;
            break;
        }
        if (w->peer_closed && w->close_code)
            snprintf(what, sizeof what, "connection closed by broker (code %u%s%s)", w->close_code,
                     w->close_reason[0] ? ": " : "", w->close_reason);
        else if (w->peer_closed)
            snprintf(what, sizeof what, "connection closed by broker");
        else
            snprintf(what, sizeof what, "connection lost (closed without a close frame)");
        watch__lost(w, what);
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols watch_protocols[] = {
    {"nudge-cli", watch__callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Split ws[s]://authority/path into w's pieces for lws (host without brackets). 0 or -1. */
static int watch__parse_url(struct watch *w)
{
    const char *p, *url = w->url;
    if (strncmp(url, "ws://", 5) == 0) {
        w->use_tls = 0;
        p = url + 5;
    } else if (strncmp(url, "wss://", 6) == 0) {
        w->use_tls = 1;
        p = url + 6;
    } else {
        return -1;
    }
    const char *slash = strchr(p, '/');
    size_t alen = slash ? (size_t)(slash - p) : strlen(p);
    w->path = slash ? slash : "/";
    if (alen == 0 || alen >= sizeof w->authority) return -1;
    memcpy(w->authority, p, alen);
    w->authority[alen] = '\0';
    const char *h = w->authority, *portp = NULL;
    size_t hlen;
    if (w->authority[0] == '[') {
        const char *e = strchr(w->authority, ']');
        if (!e) return -1;
        h = w->authority + 1;
        hlen = (size_t)(e - h);
        if (e[1] == ':')
            portp = e + 2;
        else if (e[1] != '\0')
            return -1;
    } else {
        const char *colon = strchr(w->authority, ':');
        hlen = colon ? (size_t)(colon - w->authority) : alen;
        portp = colon ? colon + 1 : NULL;
    }
    if (hlen == 0 || hlen >= sizeof w->host) return -1;
    memcpy(w->host, h, hlen);
    w->host[hlen] = '\0';
    w->port = w->use_tls ? 443 : 80;
    if (portp) {
        long v;
        if (cli_parse_count(portp, 65535, &v) != 0) return -1;
        w->port = (int)v;
    }
    w->use_tls |= w->tls;
    return 0;
}

static void watch__connect(struct watch *w)
{
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = w->ctx;
    ci.address = w->host;
    ci.port = w->port;
    ci.path = w->path;
    ci.host = w->authority;
    ci.protocol = w->fmt == SUB_MSGPACK ? SUB_PROTO_MSGPACK : SUB_PROTO_JSON;
    ci.local_protocol_name = watch_protocols[0].name;
    ci.ssl_connection = w->use_tls ? LCCSCF_USE_SSL : 0;
    /* The connection counts as up only once ESTABLISHED sets w->wsi; a NULL here may or may not
     * have gone through CONNECTION_ERROR already, and watch__lost twice only reschedules. */
    w->retry_pending = 0;
    if (!lws_client_connect_via_info(&ci) && !w->done && !w->retry_pending) {
        char what[400];
        snprintf(what, sizeof what, "cannot connect to %s", w->url);
        watch__lost(w, what);
    }
}

int watch_run(struct watch *w)
{
    if (watch__parse_url(w) != 0)
        return cli_usage_err(w->cmd, "bad URL \"%s\" (want ws://HOST:PORT/PATH)", w->url);
    w->lim = (struct wire_limits){.max_frame = WIRE_FRAME_MAX,
                                  .max_topic = WIRE_TOPIC_LEN_MAX,
                                  .max_data = WIRE_DATA_MAX,
                                  .max_topics = WIRE_TOPICS_MAX};
    int patterns = 0;
    for (uint32_t i = 0; i < w->ntopics; i++) {
        w->is_pattern[i] = strchr(w->topics[i], '*') ? 1 : 0;
        patterns |= w->is_pattern[i];
    }
    w->next_id = 1;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = watch__on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    lws_set_log_level(LLL_ERR, watch__log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = watch_protocols;
    info.user = w;
    info.gid = -1;
    info.uid = -1;
    info.fd_limit_per_thread = 1 + 1 + 1;
    if (w->use_tls) info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.client_ssl_ca_filepath = w->cafile;
    w->ctx = lws_create_context(&info);
    if (!w->ctx) {
        cli_err("cannot create the WebSocket context");
        return CLI_FAIL;
    }
    watch_ctx_for_signal = w->ctx;
    if (w->timeout_ms > 0)
        lws_sul_schedule(w->ctx, 0, &w->sul_timeout, watch__timeout,
                         (lws_usec_t)w->timeout_ms * 1000);
    if (w->reconnect && patterns)
        lws_sul_schedule(w->ctx, 0, &w->sul_ping, watch__ping_tick, WATCH_PING_US);
    w->exit_code = CLI_OK;
    watch__connect(w);

    int interrupted_seen = 0;
    while (!w->done) {
        if (watch_interrupted && !interrupted_seen) {
            interrupted_seen = 1;
            watch_finish(w, CLI_OK);
            if (w->done) break;
        }
        if (lws_service(w->ctx, 0) < 0) break;
    }
    watch_ctx_for_signal = NULL;
    lws_sul_cancel(&w->sul_timeout);
    lws_sul_cancel(&w->sul_grace);
    lws_sul_cancel(&w->sul_retry);
    lws_sul_cancel(&w->sul_ping);
    lws_context_destroy(w->ctx);
    w->ctx = NULL;
    for (unsigned k = 0; k < WATCH_TXQ; k++)
        wire_buf_free(&w->txq[k]);
    wire_buf_free(&w->rx);
    return w->exit_code;
}
