/* cli: the `nudge` command — entry point, shared helpers and `nudge pub`.
 *
 * Conventions for every subcommand: results on stdout, diagnostics on stderr as "nudge: ...",
 * exit 0 on success, 1 on runtime errors (connection, broker, timeout), 2 on usage errors. Each
 * subcommand parses its own options (--name VALUE or --name=VALUE, "--" ends options) so that
 * `nudge SUB --help` is always specific. Topics are checked locally with the protocol codec so a
 * typo is a usage error, not a round trip. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nudge.h"
#include "wire.h"

static const char CLI_PUB_ADDR[] = "127.0.0.1:7400";

static const char USAGE_MAIN[] =
    "Usage: nudge COMMAND [OPTIONS] [ARGS]\n"
    "\n"
    "Talk to a nudged broker: publish cache-invalidation hints, watch them, read stats.\n"
    "\n"
    "Commands:\n"
    "  pub     publish one change to one or more topics (publisher TCP port)\n"
    "  sub     subscribe over WebSocket and print each hint as one JSON line\n"
    "  tail    live tap: print the hints published to matching topics, human-readable;\n"
    "          reconnects and resumes when the broker restarts\n"
    "  stats   print the broker's /stats (admin HTTP port)\n"
    "  top     live view of the broker like top(1): rates, connections, top topics, slow\n"
    "          consumers, coalescing, resets (admin HTTP port); q quits\n"
    "\n"
    "Options:\n"
    "  -h, --help     show this help (nudge COMMAND --help for a command)\n"
    "  -V, --version  print the version\n"
    "\n"
    "Environment: NUDGE_ADDR (pub), NUDGE_URL (sub, tail), NUDGE_ADMIN (stats, top) replace the\n"
    "default addresses. Exit status: 0 success, 1 runtime error, 2 usage error.\n";

static const char USAGE_PUB[] =
    "Usage: nudge pub [--addr HOST:PORT] [--data JSON] [--origin CONNID [--skip-origin]]\n"
    "                 [--key-file FILE] [--timeout SEC] [--tls [--cafile PATH]\n"
    "                 [--server-name NAME]] TOPIC...\n"
    "\n"
    "Publish one change to every TOPIC and print the sequence number the broker assigned to\n"
    "each, one \"TOPIC SEQ\" line per topic.\n"
    "\n"
    "Options:\n"
    "  --addr HOST:PORT  broker publisher address ([v6]:PORT for IPv6)\n"
    "                    (default $NUDGE_ADDR, else 127.0.0.1:7400)\n"
    "  --data JSON       JSON value attached to the hint, e.g. '{\"by\":42}'\n"
    "  --origin CONNID   WebSocket connection id that caused the change (its hint is\n"
    "                    marked \"own\")\n"
    "  --skip-origin     send the origin connection no hint at all for this change\n"
    "  --key-file FILE   the publisher API key, when the broker wants one\n"
    "                    (default $NUDGE_API_KEY)\n"
    "  --timeout SEC     connect and ack timeout in seconds (default 5)\n"
    "  --tls             speak TLS (a broker started with --tls-cert); the broker's\n"
    "                    certificate and name are always verified\n"
    "  --cafile PATH     PEM file of the CAs (or the self-signed certificate) to trust;\n"
    "                    implies --tls (default: the system's trust store)\n"
    "  --server-name NAME  name the certificate must carry (default: the host of --addr)\n"
    "  -h, --help        show this help\n"
    "\n"
    "Example:\n"
    "  $ nudge pub --data '{\"by\":42}' project:17 user:5\n"
    "  project:17 42\n"
    "  user:5 7\n";

/* ---- shared helpers ----------------------------------------------------------------------- */

void cli_err(const char *fmt, ...)
{
    va_list ap;
    fputs("nudge: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_err(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fputs("nudge: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (cmd)
        fprintf(stderr, "\nTry 'nudge %s --help'.\n", cmd);
    else
        fputs("\nTry 'nudge --help'.\n", stderr);
    return CLI_USAGE;
}

int cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name, const char **val)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        (*i)++;
        return 1;
    }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) {
        cli_usage_err(cmd, "option %s needs a value", name);
        return -1;
    }
    *val = argv[*i + 1];
    *i += 2;
    return 1;
}

int cli_parse_seconds(const char *s, int *ms_out)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(d > 0) || d > 86400.0 * 365) return -1;
    double ms = d * 1000.0;
    *ms_out = ms < 1.0 ? 1 : (int)ms;
    return 0;
}

int cli_parse_count(const char *s, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < 1 || v > max) return -1;
    *out = v;
    return 0;
}

int cli_check_topic(const char *cmd, const char *topic)
{
    /* The broker's own topic-length limit is not announced: check against the protocol's
     * ceiling here and let the broker refine it. Subscriptions may be wildcard patterns ('*' as
     * a whole segment, a final '**'): their '*' are checked as ordinary characters here and the
     * broker judges the pattern (an invalid one gets a bad_topic error per topic). */
    struct wire_limits lim;
    wire_limits_default(&lim);
    lim.max_topic = WIRE_TOPIC_LEN_MAX;
    size_t len = strlen(topic);
    int is_sub = strcmp(cmd, "sub") == 0 || strcmp(cmd, "tail") == 0;
    char buf[WIRE_TOPIC_LEN_MAX];
    const char *p = topic;
    int pattern_ok = 1;
    if (is_sub && len <= sizeof(buf)) {
        memcpy(buf, topic, len);
        size_t seg = 0; /* start of the current ':' segment */
        for (size_t i = 0; i <= len; i++) {
            if (i < len && topic[i] != ':') continue;
            const char *sg = topic + seg;
            size_t sl = i - seg;
            if (memchr(sg, '*', sl) && !(sl == 1 || (sl == 2 && sg[1] == '*' && i == len)))
                pattern_ok = 0; /* '*' only as a whole segment, '**' only at the end */
            seg = i + 1;
        }
        for (size_t i = 0; i < len; i++)
            if (buf[i] == '*') buf[i] = 'x';
        p = buf;
    }
    if (pattern_ok && wire_topic_check(p, len, &lim) == WIRE_OK) return 0;
    cli_usage_err(cmd,
                  is_sub ? "invalid topic \"%.80s\" (1..%d bytes of UTF-8, no spaces or control "
                           "characters; '*' only in wildcard patterns)"
                         : "invalid topic \"%.80s\" (1..%d bytes of UTF-8, no spaces, control "
                           "characters or '*')",
                  topic, WIRE_TOPIC_LEN_MAX);
    return -1;
}

char *cli_secret(const char *cmd, const char *file, const char *env, int *err)
{
    *err = 0;
    if (!file) {
        const char *v = getenv(env);
        return v && *v ? strdup(v) : NULL;
    }
    FILE *f = fopen(file, "rb");
    char buf[8193];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (!f || ferror(f) || n == sizeof buf || n == 0) {
        cli_err("%s: %s: %s", cmd, file,
                !f       ? strerror(errno)
                : n == 0 ? "empty"
                         : "cannot be read or over 8 KiB");
        if (f) fclose(f);
        *err = 1;
        return NULL;
    }
    fclose(f);
    if (buf[n - 1] == '\n') n--;
    if (n && buf[n - 1] == '\r') n--;
    buf[n] = '\0';
    char *out = strdup(buf);
    if (!out) *err = 1;
    return out;
}

const char *cli_env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v && *v ? v : def;
}

/* ---- nudge pub ---------------------------------------------------------------------------- */

int cli_pub(int argc, char **argv)
{
    const char *addr = cli_env_or("NUDGE_ADDR", CLI_PUB_ADDR);
    const char *data = NULL, *origin = NULL, *tmo = NULL, *key_file = NULL, *cafile = NULL,
               *server_name = NULL;
    char *key = NULL;
    int skip_origin = 0, tls = 0;
    const char **topics = NULL;
    size_t ntopics = 0;
    int timeout_ms = 5000;
    int i = 1, rc = CLI_USAGE, r;
    int opts_done = 0;

    topics = calloc((size_t)argc, sizeof *topics);
    if (!topics) {
        cli_err("out of memory");
        return CLI_FAIL;
    }
    while (i < argc) {
        const char *a = argv[i];
        if (!opts_done && cli_is_help(a)) {
            fputs(USAGE_PUB, stdout);
            rc = CLI_OK;
            goto out;
        }
        if (!opts_done && strcmp(a, "--") == 0) {
            opts_done = 1;
            i++;
            continue;
        }
        if (!opts_done && strcmp(a, "--skip-origin") == 0) {
            skip_origin = 1;
            i++;
            continue;
        }
        if (!opts_done && strcmp(a, "--tls") == 0) {
            tls = 1;
            i++;
            continue;
        }
        if (!opts_done && a[0] == '-' && a[1] != '\0') {
            if ((r = cli_opt("pub", argc, argv, &i, "--addr", &addr)) ||
                (r = cli_opt("pub", argc, argv, &i, "--data", &data)) ||
                (r = cli_opt("pub", argc, argv, &i, "--origin", &origin)) ||
                (r = cli_opt("pub", argc, argv, &i, "--key-file", &key_file)) ||
                (r = cli_opt("pub", argc, argv, &i, "--timeout", &tmo)) ||
                (r = cli_opt("pub", argc, argv, &i, "--cafile", &cafile)) ||
                (r = cli_opt("pub", argc, argv, &i, "--server-name", &server_name))) {
                if (r < 0) goto out;
                continue;
            }
            cli_usage_err("pub", "unknown option %s", a);
            goto out;
        }
        if (cli_check_topic("pub", a) != 0) goto out;
        topics[ntopics++] = a;
        i++;
    }
    if (ntopics == 0) {
        cli_usage_err("pub", "no TOPIC given");
        goto out;
    }
    if (ntopics > WIRE_TOPICS_MAX) {
        cli_usage_err("pub", "too many topics (%zu; at most %d)", ntopics, WIRE_TOPICS_MAX);
        goto out;
    }
    if (tmo && cli_parse_seconds(tmo, &timeout_ms) != 0) {
        cli_usage_err("pub", "--timeout wants a positive number of seconds, not \"%s\"", tmo);
        goto out;
    }
    if (data) {
        struct wire_buf b = {0};
        int bad = wire_json_to_data(data, strlen(data), &b) != WIRE_OK;
        wire_buf_free(&b);
        if (bad) {
            cli_usage_err("pub", "--data is not valid JSON: %.80s", data);
            goto out;
        }
    }
    if (skip_origin && !origin) {
        cli_usage_err("pub", "--skip-origin needs --origin");
        goto out;
    }
    if (origin && *origin == '\0') {
        cli_usage_err("pub", "--origin is empty");
        goto out;
    }

    int kerr = 0;
    key = cli_secret("pub", key_file, "NUDGE_API_KEY", &kerr);
    if (kerr) goto out;
    rc = CLI_FAIL;
    nudge_client_t *c = NULL;
    char err[256];
    struct nudge_opts o = {.client_name = "nudge-cli",
                           .timeout_ms = timeout_ms,
                           .api_key = key,
                           .tls = tls || cafile || server_name,
                           .cafile = cafile,
                           .server_name = server_name};
    r = nudge_connect_ex(addr, &o, &c, err, sizeof err);
    if (r != NUDGE_OK) {
        cli_err("%s", err[0] ? err : nudge_strerror(r));
        if (r == NUDGE_EINVAL) rc = CLI_USAGE;
        goto out;
    }
    uint64_t *seqs = calloc(ntopics, sizeof *seqs);
    if (!seqs) {
        cli_err("out of memory");
        nudge_close(c);
        goto out;
    }
    struct nudge_pub p = {.topics = topics,
                          .ntopics = ntopics,
                          .data_json = data,
                          .origin = origin,
                          .skip_origin = skip_origin};
    r = nudge_publish_ex(c, &p, seqs);
    if (r == NUDGE_OK) {
        for (size_t k = 0; k < ntopics; k++)
            printf("%s %" PRIu64 "\n", topics[k], seqs[k]);
        rc = fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
    } else if (r == NUDGE_EBROKER) {
        cli_err("broker rejected the publish: %s", nudge_last_error(c));
    } else if (r == NUDGE_EINVAL) { /* over a limit the broker announced */
        cli_err("%s", nudge_last_error(c));
    } else {
        cli_err("publish failed: %s (%s)", nudge_last_error(c), nudge_strerror(r));
    }
    free(seqs);
    nudge_close(c);
out:
    free(key);
    free(topics);
    return rc;
}

/* ---- main --------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    if (argc < 2) return cli_usage_err(NULL, "no command given");
    const char *cmd = argv[1];
    if (cli_is_help(cmd) || strcmp(cmd, "help") == 0) {
        fputs(USAGE_MAIN, stdout);
        return CLI_OK;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("nudge %s\n", CLI_VERSION);
        return CLI_OK;
    }
    if (strcmp(cmd, "pub") == 0) return cli_pub(argc - 1, argv + 1);
    if (strcmp(cmd, "sub") == 0) return cli_sub(argc - 1, argv + 1);
    if (strcmp(cmd, "tail") == 0) return cli_tail(argc - 1, argv + 1);
    if (strcmp(cmd, "stats") == 0) return cli_stats(argc - 1, argv + 1);
    if (strcmp(cmd, "top") == 0) return cli_top(argc - 1, argv + 1);
    if (cmd[0] == '-') return cli_usage_err(NULL, "unknown option %s", cmd);
    return cli_usage_err(NULL, "unknown command \"%s\"", cmd);
}
