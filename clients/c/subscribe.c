/* subscribe: `nudge sub` — a WebSocket subscriber on libwebsockets' client API and its own
 * default (poll) event loop.
 *
 * Flow: connect (subprotocol nudge.json.v1, or nudge.msgpack.v1 with --msgpack) → on
 * ESTABLISHED queue hello and sub (encoded with sub_encode_*) → write them one per WRITEABLE →
 * every received message is reassembled from its fragments, decoded with sub_decode and
 * dispatched: hints are re-encoded as compact JSON with sub_encode_hint(SUB_JSON) and printed as
 * one line each (so both formats print identical lines), "subscribed"/"reset"/"error" go to
 * stderr, broker pings get a pong.
 *
 * Ending: --count reached, --timeout, SIGINT/SIGTERM → we close the WebSocket with 1000 and
 * leave the loop once lws reports it closed (or after a 1 s grace period). The broker closing
 * or the connection failing → exit 1 with the close code and reason. All state lives in one
 * struct watch on main's stack; the only globals are what the signal handler needs. */
#include "cli.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "sub.h"
#include "wire.h"

static const char CLI_SUB_URL[] = "ws://127.0.0.1:7401/";
enum {
    WATCH_TXQ = 16,                 /* outgoing messages waiting for WRITEABLE */
    WATCH_CLOSE_GRACE_US = 1000000, /* wait this long for the close handshake */
};

static const char USAGE_SUB[] =
    "Usage: nudge sub [--url ws://HOST:PORT/] [--msgpack] [--count N] [--timeout SEC]\n"
    "                 [--token-file FILE] [--tls] [--cafile PATH] TOPIC...\n"
    "\n"
    "Subscribe to every TOPIC over WebSocket and print each hint as one line of compact JSON\n"
    "on stdout, e.g. {\"type\":\"hint\",\"topic\":\"project:17\",\"seq\":3,\"data\":{\"by\":42}}.\n"
    "The connection id (\"nudge: connected conn=ID epoch=E\", for nudge pub --origin),\n"
    "confirmations (\"nudge: subscribed TOPIC seq=N\") and errors go to stderr.\n"
    "\n"
    "Options:\n"
    "  --url URL      broker WebSocket URL, ws:// or wss://\n"
    "                 (default $NUDGE_URL, else ws://127.0.0.1:7401/)\n"
    "  --msgpack      use binary msgpack frames (subprotocol nudge.msgpack.v1) instead of\n"
    "                 JSON text (nudge.json.v1); the output is the same JSON\n"
    "  --count N      exit 0 after N hints\n"
    "  --timeout SEC  stop after SEC seconds: exit 1 if --count was not reached, else 0\n"
    "  --token-file FILE  the subscriber token (a JWT), when the broker wants one\n"
    "                 (default $NUDGE_TOKEN)\n"
    "  --tls          speak TLS (as a wss:// URL does); the broker's certificate and the\n"
    "                 URL's host name are always verified\n"
    "  --cafile PATH  PEM file of the CAs (or the self-signed certificate) to trust;\n"
    "                 implies --tls (default: the system's trust store)\n"
    "  -h, --help     show this help\n"
    "\n"
    "Exits 1 when the connection fails or the broker closes it, 0 on Ctrl-C.\n"
    "\n"
    "Example:\n"
    "  $ nudge sub --count 1 project:17\n"
    "  nudge: connected conn=7 epoch=5f0c2a9e7b1d4c38\n"
    "  nudge: subscribed project:17 seq=41\n"
    "  {\"type\":\"hint\",\"topic\":\"project:17\",\"seq\":42,\"data\":{\"by\":42}}\n";

struct watch {
    struct lws_context *ctx;
    struct lws *wsi;
    enum sub_fmt fmt;
    const char *url;
    char *token;        /* sent in hello, or NULL */
    const char *cafile; /* --cafile, or NULL */
    int tls;            /* --tls or --cafile */
    char *const *topics;
    uint32_t ntopics;
    long count;     /* 0 = no limit */
    long seen;      /* hints printed */
    int timeout_ms; /* 0 = none */
    struct wire_limits lim;
    struct wire_buf rx;             /* message being reassembled */
    struct wire_buf txq[WATCH_TXQ]; /* each: LWS_PRE bytes of headroom + payload */
    unsigned txhead, txlen;
    uint32_t answered, subscribed; /* per-topic answers to our sub */
    int closing;                   /* we asked lws to close; waiting for CLOSED */
    int done;                      /* leave the service loop */
    int exit_code;
    int peer_closed; /* close frame received: code/reason valid */
    unsigned close_code;
    char close_reason[124];
    lws_sorted_usec_list_t sul_timeout, sul_grace;
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

/* Finish with exit code `code`: close gracefully when connected, else stop at once. */
static void watch__finish(struct watch *w, int code)
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
    if (w->count && w->seen < w->count) {
        cli_err("timed out after %ld of %ld hints", w->seen, w->count);
        watch__finish(w, CLI_FAIL);
    } else {
        watch__finish(w, CLI_OK);
    }
}

/* Queue one outgoing message; encode() appended it after LWS_PRE bytes of headroom. */
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

static int watch__queue_hello_and_sub(struct watch *w)
{
    struct wire_str topics[WIRE_TOPICS_MAX];
    for (uint32_t i = 0; i < w->ntopics; i++) {
        topics[i].p = w->topics[i];
        topics[i].len = (uint32_t)strlen(w->topics[i]);
    }
    struct wire_buf *b = watch__tx_slot(w);
    if (!b || sub_encode_hello_token(w->fmt, b, WIRE_VERSION, "nudge-cli", w->token) != 0)
        return -1;
    watch__tx_commit(w);
    b = watch__tx_slot(w);
    if (!b || sub_encode_subscribe(w->fmt, b, 1, topics, w->ntopics, NULL, NULL, NULL, 0) != 0)
        return -1;
    watch__tx_commit(w);
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

static void watch__print_hint(struct watch *w, const struct sub_msg *m)
{
    struct sub_hint h = {.topic = m->topic,
                         .seq = m->seq,
                         .data = m->data,
                         .data_len = m->data_len,
                         .count = m->count,
                         .own = m->own};
    struct wire_buf out = {0};
    if (sub_encode_hint(SUB_JSON, &out, &h) != 0) {
        cli_err("error: cannot re-encode a hint for %.*s", (int)m->topic.len, m->topic.p);
        wire_buf_free(&out);
        return;
    }
    fwrite(out.data, 1, out.len, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    wire_buf_free(&out);
    w->seen++;
    if (w->count && w->seen >= w->count) watch__finish(w, CLI_OK);
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
    case SUB_SUBSCRIBED:
        fprintf(stderr, "nudge: subscribed %.*s seq=%" PRIu64 "\n", (int)m.topic.len, m.topic.p,
                m.seq);
        w->answered++;
        w->subscribed++;
        break;
    case SUB_HINT:
        watch__print_hint(w, &m);
        break;
    case SUB_RESET:
        fprintf(stderr, "nudge: reset %.*s seq=%" PRIu64 " (%.*s)\n", (int)m.topic.len, m.topic.p,
                m.seq, (int)m.reason.len, m.reason.p);
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
                watch__finish(w, CLI_FAIL); /* the whole subscribe was refused */
        }
        break;
    case SUB_PING: {
        struct wire_buf *b = watch__tx_slot(w);
        if (b && sub_encode_pong(w->fmt, b, m.has_id, m.id) == 0) watch__tx_commit(w);
        break;
    }
    case SUB_WELCOME: /* the conn id is what `nudge pub --origin` takes */
        fprintf(stderr, "nudge: connected conn=%.*s epoch=%.*s\n", (int)m.conn.len, m.conn.p,
                (int)m.epoch.len, m.epoch.p);
        break;
    default: /* pong, unsubscribed: nothing to show */
        break;
    }
    if (m.type == SUB_ERROR && w->answered == w->ntopics && w->subscribed == 0) {
        cli_err("no topic could be subscribed");
        watch__finish(w, CLI_FAIL);
    }
    sub_msg_clear(&m);
}

static int watch__callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    (void)user;
    struct watch *w = lws_context_user(lws_get_context(wsi));
    if (!w) return lws_callback_http_dummy(wsi, reason, user, in, len);

    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        cli_err("cannot connect to %s: %s", w->url, in ? (const char *)in : "connection failed");
        w->wsi = NULL;
        w->exit_code = CLI_FAIL;
        w->done = 1;
        break;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        w->wsi = wsi;
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
            watch__finish(w, CLI_FAIL);
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
        }
        break;
    case LWS_CALLBACK_CLIENT_CLOSED:
        w->wsi = NULL;
        if (!w->closing) {
            if (w->peer_closed && w->close_code)
                cli_err("connection closed by broker (code %u%s%s)", w->close_code,
                        w->close_reason[0] ? ": " : "", w->close_reason);
            else if (w->peer_closed)
                cli_err("connection closed by broker");
            else
                cli_err("connection lost (closed without a close frame)");
            w->exit_code = CLI_FAIL;
        }
        w->done = 1;
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

/* Split ws[s]://authority/path into pieces for lws (host without brackets). 0 or -1. */
static int watch__parse_url(const char *url, int *tls, char *host, size_t hcap, int *port,
                            char *authority, size_t acap, const char **path)
{
    const char *p;
    if (strncmp(url, "ws://", 5) == 0) {
        *tls = 0;
        p = url + 5;
    } else if (strncmp(url, "wss://", 6) == 0) {
        *tls = 1;
        p = url + 6;
    } else {
        return -1;
    }
    const char *slash = strchr(p, '/');
    size_t alen = slash ? (size_t)(slash - p) : strlen(p);
    *path = slash ? slash : "/";
    if (alen == 0 || alen >= acap) return -1;
    memcpy(authority, p, alen);
    authority[alen] = '\0';
    const char *h = authority, *portp = NULL;
    size_t hlen;
    if (authority[0] == '[') {
        const char *e = strchr(authority, ']');
        if (!e) return -1;
        h = authority + 1;
        hlen = (size_t)(e - h);
        if (e[1] == ':')
            portp = e + 2;
        else if (e[1] != '\0')
            return -1;
    } else {
        const char *colon = strchr(authority, ':');
        hlen = colon ? (size_t)(colon - authority) : alen;
        portp = colon ? colon + 1 : NULL;
    }
    if (hlen == 0 || hlen >= hcap) return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = *tls ? 443 : 80;
    if (portp) {
        long v;
        if (cli_parse_count(portp, 65535, &v) != 0) return -1;
        *port = (int)v;
    }
    return 0;
}

static int watch__run(struct watch *w)
{
    char host[256], authority[300];
    const char *path;
    int tls = 0, port = 0;
    if (watch__parse_url(w->url, &tls, host, sizeof host, &port, authority, sizeof authority,
                         &path) != 0)
        return cli_usage_err("sub", "bad URL \"%s\" (want ws://HOST:PORT/PATH)", w->url);
    tls |= w->tls;

    lws_set_log_level(LLL_ERR, watch__log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = watch_protocols;
    info.user = w;
    info.gid = -1;
    info.uid = -1;
    info.fd_limit_per_thread = 1 + 1 + 1;
    if (tls) info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
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

    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = w->ctx;
    ci.address = host;
    ci.port = port;
    ci.path = path;
    ci.host = authority;
    ci.protocol = w->fmt == SUB_MSGPACK ? SUB_PROTO_MSGPACK : SUB_PROTO_JSON;
    ci.local_protocol_name = watch_protocols[0].name;
    ci.ssl_connection = tls ? LCCSCF_USE_SSL : 0;
    ci.pwsi = &w->wsi;
    w->exit_code = CLI_OK;
    if (!lws_client_connect_via_info(&ci) && !w->done) {
        cli_err("cannot connect to %s", w->url);
        w->exit_code = CLI_FAIL;
        w->done = 1;
    }
    /* pwsi is filled in at once; only count the connection as up once ESTABLISHED. */
    if (!w->done) w->wsi = NULL;

    int interrupted_seen = 0;
    while (!w->done) {
        if (watch_interrupted && !interrupted_seen) {
            interrupted_seen = 1;
            watch__finish(w, CLI_OK);
            if (w->done) break;
        }
        if (lws_service(w->ctx, 0) < 0) break;
    }
    watch_ctx_for_signal = NULL;
    lws_sul_cancel(&w->sul_timeout);
    lws_sul_cancel(&w->sul_grace);
    lws_context_destroy(w->ctx);
    w->ctx = NULL;
    return w->exit_code;
}

int cli_sub(int argc, char **argv)
{
    struct watch w;
    const char *count = NULL, *tmo = NULL, *token_file = NULL;
    int timeout_ms = 0, opts_done = 0, r;

    memset(&w, 0, sizeof w);
    w.url = cli_env_or("NUDGE_URL", CLI_SUB_URL);
    w.fmt = SUB_JSON;
    w.lim = (struct wire_limits){.max_frame = WIRE_FRAME_MAX,
                                 .max_topic = WIRE_TOPIC_LEN_MAX,
                                 .max_data = WIRE_DATA_MAX,
                                 .max_topics = WIRE_TOPICS_MAX};
    /* Topics are moved to the front of argv as they are found. */
    char **topics = argv + 1;
    uint32_t ntopics = 0;
    for (int i = 1; i < argc;) {
        const char *a = argv[i];
        if (!opts_done && cli_is_help(a)) {
            fputs(USAGE_SUB, stdout);
            return CLI_OK;
        }
        if (!opts_done && strcmp(a, "--") == 0) {
            opts_done = 1;
            i++;
            continue;
        }
        if (!opts_done && strcmp(a, "--tls") == 0) {
            w.tls = 1;
            i++;
            continue;
        }
        if (!opts_done && strcmp(a, "--msgpack") == 0) {
            w.fmt = SUB_MSGPACK;
            i++;
            continue;
        }
        if (!opts_done && a[0] == '-' && a[1] != '\0') {
            if ((r = cli_opt("sub", argc, argv, &i, "--url", &w.url)) ||
                (r = cli_opt("sub", argc, argv, &i, "--count", &count)) ||
                (r = cli_opt("sub", argc, argv, &i, "--token-file", &token_file)) ||
                (r = cli_opt("sub", argc, argv, &i, "--timeout", &tmo)) ||
                (r = cli_opt("sub", argc, argv, &i, "--cafile", &w.cafile))) {
                if (r < 0) return CLI_USAGE;
                continue;
            }
            return cli_usage_err("sub", "unknown option %s", a);
        }
        if (cli_check_topic("sub", a) != 0) return CLI_USAGE;
        if (ntopics == WIRE_TOPICS_MAX)
            return cli_usage_err("sub", "too many topics (at most %d)", WIRE_TOPICS_MAX);
        topics[ntopics++] = argv[i++];
    }
    if (ntopics == 0) return cli_usage_err("sub", "no TOPIC given");
    if (count && cli_parse_count(count, 1L << 40, &w.count) != 0)
        return cli_usage_err("sub", "--count wants a positive integer, not \"%s\"", count);
    if (tmo && cli_parse_seconds(tmo, &timeout_ms) != 0)
        return cli_usage_err("sub", "--timeout wants a positive number of seconds, not \"%s\"",
                             tmo);
    w.topics = topics;
    w.ntopics = ntopics;
    if (w.cafile) w.tls = 1;
    int terr = 0;
    w.token = cli_secret("sub", token_file, "NUDGE_TOKEN", &terr);
    if (terr) return CLI_USAGE;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = watch__on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    w.timeout_ms = timeout_ms;
    int code = watch__run(&w);
    for (unsigned k = 0; k < WATCH_TXQ; k++)
        wire_buf_free(&w.txq[k]);
    wire_buf_free(&w.rx);
    free(w.token);
    return code;
}
