/* subscribe: `nudge sub` — subscribe over WebSocket (watch.c) and print each hint as one line
 * of compact JSON, re-encoded with sub_encode_hint(SUB_JSON) so that JSON and msgpack
 * connections print identical lines; resets go to stderr with the connection's story.
 *
 * Ending: --count reached (exit 0), --timeout (exit 1 if --count was not reached), Ctrl-C (0),
 * a failed or lost connection (1: sub never reconnects; `nudge tail` does). */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sub.h"
#include "watch.h"
#include "wire.h"

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

struct subprint {
    long count; /* 0 = no limit */
    long seen;  /* hints printed */
};

static void sub__on_timeout(struct watch *w)
{
    struct subprint *sp = w->user;
    if (sp->count && sp->seen < sp->count) {
        cli_err("timed out after %ld of %ld hints", sp->seen, sp->count);
        watch_finish(w, CLI_FAIL);
    } else {
        watch_finish(w, CLI_OK);
    }
}

static void sub__on_msg(struct watch *w, const struct sub_msg *m)
{
    struct subprint *sp = w->user;
    if (m->type == SUB_RESET) {
        fprintf(stderr, "nudge: reset %.*s seq=%" PRIu64 " (%.*s)\n", (int)m->topic.len, m->topic.p,
                m->seq, (int)m->reason.len, m->reason.p);
        return;
    }
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
    sp->seen++;
    if (sp->count && sp->seen >= sp->count) watch_finish(w, CLI_OK);
}

int cli_sub(int argc, char **argv)
{
    struct watch w;
    struct subprint sp = {0};
    const char *count = NULL, *tmo = NULL, *token_file = NULL;
    int timeout_ms = 0, opts_done = 0, r;

    memset(&w, 0, sizeof w);
    w.cmd = "sub";
    w.url = cli_env_or("NUDGE_URL", WATCH_URL);
    w.fmt = SUB_JSON;
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
    if (count && cli_parse_count(count, 1L << 40, &sp.count) != 0)
        return cli_usage_err("sub", "--count wants a positive integer, not \"%s\"", count);
    if (tmo && cli_parse_seconds(tmo, &timeout_ms) != 0)
        return cli_usage_err("sub", "--timeout wants a positive number of seconds, not \"%s\"",
                             tmo);
    w.topics = topics;
    w.ntopics = ntopics;
    if (w.cafile) w.tls = 1;
    int terr = 0;
    char *token = cli_secret("sub", token_file, "NUDGE_TOKEN", &terr);
    if (terr) return CLI_USAGE;
    w.token = token;
    w.timeout_ms = timeout_ms;
    w.on_msg = sub__on_msg;
    w.on_timeout = sub__on_timeout;
    w.user = &sp;
    int code = watch_run(&w);
    free(token);
    return code;
}
