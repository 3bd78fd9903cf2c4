/* tail: `nudge tail PATTERN...` — a live tap of the hints published to matching topics, for
 * debugging an app: one human-readable line per hint or reset on stdout (local time, topic,
 * seq, what kind, data), or with --json the broker's message as one JSON line.
 *
 * The WebSocket side is watch.c with reconnect on: when the broker goes away tail says so,
 * retries with backoff and resumes from the positions it saw (exact topics: their last seq;
 * patterns: the global position of the last pong), so the missed changes come back as catch-up
 * hints (tagged "catch-up"), or as resets when the broker cannot bring it up to date. */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sub.h"
#include "watch.h"
#include "wire.h"

static const char USAGE_TAIL[] =
    "Usage: nudge tail [--url ws://HOST:PORT/] [--json] [--token-file FILE] [--tls]\n"
    "                  [--cafile PATH] [--timeout SEC] PATTERN...\n"
    "\n"
    "Print the hints published to topics matching any PATTERN, live, one line each: local\n"
    "time, topic, seq, and what the hint carries (n=N for a coalesced hint standing for N\n"
    "changes, own, data). PATTERN is a topic or a wildcard pattern ('*' one segment, a final\n"
    "'**' any number): quote it for the shell. Resets (the broker cannot bring a topic up to\n"
    "date: refetch it) are printed as RESET lines. When the connection is lost, tail says so on\n"
    "stderr, reconnects and resumes from what it saw: the changes it missed meanwhile arrive\n"
    "as catch-up hints, tagged catch-up.\n"
    "\n"
    "Options:\n"
    "  --url URL      broker WebSocket URL, ws:// or wss://\n"
    "                 (default $NUDGE_URL, else ws://127.0.0.1:7401/)\n"
    "  --json         print each hint and reset as the broker sent it, one compact JSON\n"
    "                 line (catch-up ones with \"catchup\":true added)\n"
    "  --token-file FILE  the subscriber token (a JWT), when the broker wants one\n"
    "                 (default $NUDGE_TOKEN)\n"
    "  --tls          speak TLS (as a wss:// URL does)\n"
    "  --cafile PATH  PEM file of the CAs to trust; implies --tls\n"
    "  --timeout SEC  stop after SEC seconds (default: run until Ctrl-C)\n"
    "  -h, --help     show this help\n"
    "\n"
    "Exits 0 on Ctrl-C or --timeout, 2 on a usage error.\n"
    "\n"
    "Example:\n"
    "  $ nudge tail 'project:*' user:5\n"
    "  nudge: connected conn=7 epoch=5f0c2a9e7b1d4c38\n"
    "  nudge: subscribed project:* seq=1041\n"
    "  nudge: subscribed user:5 seq=7\n"
    "  14:03:07.123 project:17 seq=42 data={\"by\":42}\n"
    "  14:03:07.480 project:9 seq=3 n=2 own\n";

struct tailprint {
    int json;
};

/* "HH:MM:SS.mmm" local time. */
static void tail__now(char *buf, size_t cap)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03ld", ts.tv_nsec / 1000000);
}

static void tail__json(struct watch *w, const struct sub_msg *m)
{
    struct wire_buf out = {0};
    if (sub_encode_msg(SUB_JSON, &out, m) != 0 || out.len < 2) {
        cli_err("error: cannot re-encode a message for %.*s", (int)m->topic.len, m->topic.p);
        wire_buf_free(&out);
        return;
    }
    /* The encoder writes one object: splice the flag in before its closing brace. */
    if (w->catching_up) {
        fwrite(out.data, 1, out.len - 1, stdout);
        fputs(",\"catchup\":true}", stdout);
    } else {
        fwrite(out.data, 1, out.len, stdout);
    }
    fputc('\n', stdout);
    wire_buf_free(&out);
}

static void tail__on_msg(struct watch *w, const struct sub_msg *m)
{
    const struct tailprint *tp = w->user;
    if (tp->json) {
        tail__json(w, m);
        fflush(stdout);
        return;
    }
    char when[32];
    tail__now(when, sizeof when);
    if (m->type == SUB_RESET) {
        printf("%s RESET %.*s seq=%" PRIu64 " reason=%.*s%s: refetch it\n", when, (int)m->topic.len,
               m->topic.p, m->seq, (int)m->reason.len, m->reason.p,
               w->catching_up ? " (catch-up)" : "");
        fflush(stdout);
        return;
    }
    printf("%s %.*s seq=%" PRIu64, when, (int)m->topic.len, m->topic.p, m->seq);
    if (m->count > 1) printf(" n=%" PRIu32, m->count);
    if (w->catching_up) fputs(" catch-up", stdout);
    if (m->own) fputs(" own", stdout);
    if (m->data) {
        struct wire_buf out = {0};
        if (wire_data_to_json(m->data, m->data_len, &out) == 0)
            printf(" data=%.*s", (int)out.len, (const char *)out.data);
        wire_buf_free(&out);
    }
    fputc('\n', stdout);
    fflush(stdout);
}

int cli_tail(int argc, char **argv)
{
    struct watch w;
    struct tailprint tp = {0};
    const char *token_file = NULL, *tmo = NULL;
    int opts_done = 0, r, timeout_ms = 0;

    memset(&w, 0, sizeof w);
    w.cmd = "tail";
    w.url = cli_env_or("NUDGE_URL", WATCH_URL);
    w.fmt = SUB_JSON;
    w.reconnect = 1;
    char **topics = argv + 1; /* patterns are moved to the front of argv as they are found */
    uint32_t ntopics = 0;
    for (int i = 1; i < argc;) {
        const char *a = argv[i];
        if (!opts_done && cli_is_help(a)) {
            fputs(USAGE_TAIL, stdout);
            return CLI_OK;
        }
        if (!opts_done && strcmp(a, "--") == 0) {
            opts_done = 1;
            i++;
            continue;
        }
        if (!opts_done && strcmp(a, "--json") == 0) {
            tp.json = 1;
            i++;
            continue;
        }
        if (!opts_done && strcmp(a, "--tls") == 0) {
            w.tls = 1;
            i++;
            continue;
        }
        if (!opts_done && a[0] == '-' && a[1] != '\0') {
            if ((r = cli_opt("tail", argc, argv, &i, "--url", &w.url)) ||
                (r = cli_opt("tail", argc, argv, &i, "--token-file", &token_file)) ||
                (r = cli_opt("tail", argc, argv, &i, "--timeout", &tmo)) ||
                (r = cli_opt("tail", argc, argv, &i, "--cafile", &w.cafile))) {
                if (r < 0) return CLI_USAGE;
                continue;
            }
            return cli_usage_err("tail", "unknown option %s", a);
        }
        if (cli_check_topic("tail", a) != 0) return CLI_USAGE;
        if (ntopics == WIRE_TOPICS_MAX)
            return cli_usage_err("tail", "too many patterns (at most %d)", WIRE_TOPICS_MAX);
        topics[ntopics++] = argv[i++];
    }
    if (ntopics == 0) return cli_usage_err("tail", "no PATTERN given");
    if (tmo && cli_parse_seconds(tmo, &timeout_ms) != 0)
        return cli_usage_err("tail", "--timeout wants a positive number of seconds, not \"%s\"",
                             tmo);
    w.topics = topics;
    w.ntopics = ntopics;
    w.timeout_ms = timeout_ms;
    if (w.cafile) w.tls = 1;
    int terr = 0;
    char *token = cli_secret("tail", token_file, "NUDGE_TOKEN", &terr);
    if (terr) return CLI_USAGE;
    w.token = token;
    w.on_msg = tail__on_msg;
    w.user = &tp;
    int code = watch_run(&w);
    free(token);
    return code;
}
