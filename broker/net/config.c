/* config: the broker's settings from four sources, each overriding the one before: built-in
 * defaults, a config file (--config FILE or NUDGE_CONFIG), NUDGE_* environment variables and
 * command-line flags. Every source is turned into one list of flags, in that order, and read by
 * one parser, so a setting means the same and is checked the same wherever it comes from: a
 * later value of a single setting wins; a list setting (--public, --coalesce, ...) given by a
 * source replaces the lists of the sources before it. Every limit is a flag documented in
 * --help, docs/protocol.md §Limits and docs/operations.md. Numbers are parsed strictly: "10k"
 * is an error, not 10. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "listen.h"
#include "log.h"
#include "tls.h"

void config_default(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->pub, sizeof(cfg->pub), "127.0.0.1:7400");
    snprintf(cfg->ws, sizeof(cfg->ws), "127.0.0.1:7401");
    snprintf(cfg->admin, sizeof(cfg->admin), "127.0.0.1:7402");
    snprintf(cfg->http, sizeof(cfg->http), "127.0.0.1:7403");
    cfg->http_max_body = 65536;
    cfg->http_timeout_ms = 5000;
    engine_config_default(&cfg->engine);
    hub_config_default(&cfg->hub);
    cfg->max_conns = 10000;
    cfg->max_conns_per_ip = 1024;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->workers = ncpu < 1 ? 1 : ncpu > NUDGE_WORKERS_MAX ? NUDGE_WORKERS_MAX : (uint32_t)ncpu;
    cfg->hello_timeout_ms = 10000;
    cfg->pub_idle_ms = 120000;
    cfg->ws_ping = 30;
    cfg->ws_sndbuf = 131072;
    cfg->drain_window_ms = 10000;
    cfg->drain_deadline_ms = 30000;
    cfg->log_level = LOG_INFO;
    cfg->log_rate = LOG_RATE_DEFAULT;
    store_disk_default(&cfg->disk);
    snprintf(cfg->redis.prefix, sizeof(cfg->redis.prefix), "%s", RELAY_PREFIX_DEFAULT);
    cfg->redis.timeout_ms = 2000;
    auth_config_default(&cfg->auth);
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "nudge-data");
}

static void usage(FILE *out)
{
    fputs("usage: nudged [options]\n"
          "\n"
          "nudge broker: publishers send hints over TCP, subscribers receive them over WebSocket.\n"
          "Prints 'nudged ready pub=HOST:PORT ws=HOST:PORT admin=HOST:PORT http=HOST:PORT'\n"
          "once listening (without http= when --http is off).\n"
          "\n"
          "Settings come from, each overriding the one before: built-in defaults, a config\n"
          "file, NUDGE_* environment variables, these flags (docs/operations.md\n"
          "§Configuration). A file has one 'name value' line per setting, the name being a\n"
          "flag below without its '--' (max-conns 20000); NUDGE_MAX_CONNS=20000 likewise.\n"
          "  --config FILE       read settings from FILE (default $NUDGE_CONFIG, else none)\n"
          "  --check-config FILE  check FILE (with the environment and the other flags) as a\n"
          "                      start would, print 'FILE: configuration ok' and exit 0, or\n"
          "                      the first problem with its FILE:LINE and exit 2\n"
          "\n"
          "listeners (HOST:PORT, [v6addr]:PORT; port 0 = ephemeral):\n"
          "  --pub ADDR          publisher TCP protocol        (default 127.0.0.1:7400)\n"
          "  --ws ADDR           WebSocket subscribers         (default 127.0.0.1:7401)\n"
          "  --admin ADDR        admin HTTP: GET /stats        (default 127.0.0.1:7402)\n"
          "  --http ADDR         HTTP publish: POST /publish   (default 127.0.0.1:7403)\n"
          "                      'off' (or '') = no HTTP publish listener\n"
          "TLS (docs/operations.md §TLS; the admin listener stays plain HTTP):\n"
          "  --tls-cert PATH     PEM certificate (chain) for the TLS listeners\n"
          "  --tls-key PATH      PEM private key of that certificate (both or neither)\n"
          "  --tls-listeners L   which listeners speak TLS: a comma-separated set of\n"
          "                      ws, pub and http                      (default ws,pub,http)\n"
          "limits:\n"
          "  --max-frame N       bytes per publisher frame / WebSocket message (default 65536)\n"
          "  --max-topic N       bytes per topic name                        (default 256)\n"
          "  --max-data N        bytes of msgpack data per hint              (default 1024)\n"
          "  --max-topics N      topics per publish/sub/unsub message        (default 64)\n"
          "  --max-subs N        subscriptions per connection                (default 1024)\n"
          "  --max-queue N       queued messages per subscriber before its hints\n"
          "                      coalesce; closed (4001) past N + max-subs   (default 1024)\n"
          "  --max-topics-total N  topics the broker knows at once (published, subscribed\n"
          "                      or in history); past it publishes and subscriptions that\n"
          "                      add a topic are refused (code 14)          (default 1000000)\n"
          "  --http-max-body N   bytes of one HTTP publish body; past it 413 and close\n"
          "                                                                  (default 65536)\n"
          "  --max-conns N       open publisher (TCP, HTTP) + WebSocket connections, handshakes\n"
          "                      in progress included                        (default 10000)\n"
          "abuse limits (docs/operations.md §Abuse limits; 0 = no bound):\n"
          "  --max-conns-per-ip N  open publisher + WebSocket connections from one\n"
          "                      address; more are refused (WebSocket: HTTP 429)\n"
          "                                                                  (default 1024)\n"
          "  --allow-origin ORIGIN  browsers' WebSocket upgrades must come from this Origin\n"
          "                      (scheme://host[:port]; repeatable, 16 at most); others\n"
          "                      get HTTP 403; none given: any origin         (default none)\n"
          "  --max-sub-bytes N   memory of one connection's subscriptions and patterns\n"
          "                      (a pattern costs per segment); past it code 20\n"
          "                                                                  (default 1048576)\n"
          "  --replay-rate N     bytes/s of catch-up and replay one connection's resumes\n"
          "                      may cause; a resume past it gets code 20    (default 262144)\n"
          "  --sub-rate N        topics a connection may subscribe per second (bursts\n"
          "                      of --max-subs); past it code 19, then close 4008 (default 100)\n"
          "  --msg-rate N        messages a WebSocket connection may send per second\n"
          "                      (bursts of 2N); past it code 19, then close 4008 (default 100)\n"
          "  --max-pattern-segments N  segments in a wildcard pattern; more: code 5\n"
          "                                                                  (default 16)\n"
          "  --max-pattern-stars N  '*' segments in a pattern ('**' not counted); more:\n"
          "                      code 5                                      (default 3)\n"
          "timeouts:\n"
          "  --hello-timeout MS  a WebSocket upgrade, or a publisher's hello, must be done\n"
          "                      within MS of connecting, or the connection is closed;\n"
          "                      a WebSocket's hello within MS of its upgrade (1008)\n"
          "                                                                  (default 10000)\n"
          "  --pub-idle MS       a publisher that sends nothing (ping to stay) or stays in\n"
          "                      the middle of a frame for MS is dropped; 0 = never; also\n"
          "                      how long a kept-alive HTTP publisher may stay silent\n"
          "                                                                  (default 120000)\n"
          "  --http-timeout MS   an HTTP publish request (head and body) must arrive within\n"
          "                      MS of its first byte, the first one within MS of\n"
          "                      connecting; else 408 and close              (default 5000)\n"
          "  --drain-window MS   SIGTERM: WebSockets get their close (1012, reconnect now)\n"
          "                      spread over MS; 0 = all at once             (default 10000)\n"
          "  --drain-deadline MS SIGTERM: what is still open MS after is cut and nudged\n"
          "                      exits 0; at least --drain-window            (default 30000)\n"
          "history (replay on resume; docs/guarantees.md):\n"
          "  --hist-per-topic N  hints kept per topic; 0 = none              (default 64)\n"
          "  --hist-bytes N      bytes kept over all topics                  (default 67108864)\n"
          "  --hist-age SEC      seconds a hint is kept                      (default 300)\n"
          "positions (catch-up on resume: one hint per changed topic):\n"
          "  --horizon SEC       a topic's position is remembered SEC s after its last\n"
          "                      publish or subscriber; older resumes get a reset\n"
          "                                                                  (default 604800)\n"
          "  --max-positions N   topic positions remembered at most (oldest forgotten\n"
          "                      first)                                      (default 1000000)\n"
          "cluster (docs/cluster.md):\n"
          "  --engine URL        local: this process numbers hints (default); redis://HOST:PORT:\n"
          "                      a node of a cluster on that Redis (no --data-dir then)\n"
          "  --redis-prefix P    the cluster's keys and channel start with P   (default nudge)\n"
          "  --redis-timeout MS  a publish Redis leaves unanswered MS ms drops the\n"
          "                      connection (publishes fail until it is back) (default 2000)\n"
          "persistence (docs/guarantees.md §Durability):\n"
          "  --data-dir DIR      where positions, the epoch and history are kept across\n"
          "                      restarts (created if missing; one broker per directory)\n"
          "                                                                  (default nudge-data)\n"
          "  --memory            keep nothing on disk: a restart is a new epoch\n"
          "  --fsync MODE        batch: acks and hints wait for a group commit (that waits\n"
          "                      up to --fsync-ms, more as the load grows); always: for a\n"
          "                      commit as soon as possible;\n"
          "                      os: for the write only (a machine crash is a new epoch)\n"
          "                                                                  (default batch)\n"
          "  --fsync-ms MS       batch: the longest a commit waits for more, 1..1000 (default 2)\n"
          "  --disk-max BYTES    journal files at most; publishes fail (code 15) past it\n"
          "                                                                  (default 1073741824)\n"
          "  --disk-segment BYTES  journal segment size (default 67108864)\n"
          "coalescing:\n"
          "  --coalesce PAT=MS   topics matching PAT (wildcards allowed) deliver at most one\n"
          "                      hint per MS milliseconds, the newest always (repeatable)\n"
          "threads:\n"
          "  --workers N         worker threads sharing the ports, 1..64 (default: one per\n"
          "                      online CPU)\n"
          "security (docs/security.md; without any of these: development mode, loopback only):\n"
          "  --token-secret-file FILE  an HS256/384/512 secret (>= 32 bytes) for subscriber\n"
          "                      tokens; repeat for rotation (at most 4)\n"
          "  --token-public-key FILE  an RSA (RS256) or P-256 (ES256) public key, PEM\n"
          "                      (repeatable, at most 4)\n"
          "  --token-aud S       tokens must carry this audience (\"aud\")\n"
          "  --token-iss S       tokens must come from this issuer (\"iss\")\n"
          "  --token-leeway SEC  clock skew allowed on exp/nbf/iat, 0..600    (default 5)\n"
          "  --public PATTERN    topics any token holder reads (repeatable, at most 64)\n"
          "  --anonymous PATTERN topics connections without a token read (repeatable)\n"
          "  --pub-keys FILE     publisher API keys, a line each:\n"
          "                      NAME SECRET [rate=N] [PATTERN...]\n"
          "  --pub-rate N        publishes a second per key without rate=; 0 = unbounded\n"
          "                                                                  (default 0)\n"
          "  --admin-token-file FILE  /stats and /metrics want 'Authorization: Bearer' it\n"
          "  --revoke-keep SEC   a user's revocation (POST /users/USER/disconnect) is kept\n"
          "                      SEC s: the longest life of a token, 60..2592000 (default 86400)\n"
          "other:\n"
          "  --ws-ping SEC       ping a subscriber after SEC s with no sign of life (no\n"
          "                      pong, no bytes of its backlog read); drop it SEC/3\n"
          "                      (at least 1) s later without one            (default 30)\n"
          "  --ws-sndbuf BYTES   kernel send buffer of each WebSocket (SO_SNDBUF, which\n"
          "                      Linux doubles): what a slow reader can have waiting\n"
          "                      before its hints are coalesced; 0 = the kernel's\n"
          "                      autotuning (megabytes)                      (default 131072)\n"
          "  --log-level LEVEL   error, warn, info or debug                  (default info)\n"
          "  --log-format F      text, logfmt or json (one object a line)    (default text)\n"
          "  --log-rate N        warn lines a second per kind of connection event (bursts\n"
          "                      of 5N; the rest counted); 0 = no limit      (default 10)\n"
          "  -h, --help          this text\n"
          "  -V, --version       print the version\n",
          out);
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *v)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-') return -1;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end || x < min || x > max) return -1;
    *v = (uint32_t)x;
    return 0;
}

/* The flags argv[1..argc) (strings kept, not copied: auth_config points into them). *at is the
 * index of the flag being read when an error is returned (0 for a check over several flags). */
static int parse_flags(struct config *cfg, int argc, char **argv, FILE *out, int *at, char *err,
                       size_t errlen)
{
    uint32_t hist_age = (uint32_t)(cfg->engine.hist.max_age_ms / 1000);
    uint32_t horizon = (uint32_t)(cfg->engine.hist.horizon_ms / 1000);
    unsigned tls_listeners = CONFIG_TLS_WS | CONFIG_TLS_PUB | CONFIG_TLS_HTTP,
             tls_listeners_given = 0;
    struct {
        const char *name;
        uint32_t *v;
        uint32_t min, max;
    } nums[] = {
        {"--max-frame", &cfg->engine.lim.max_frame, 64, WIRE_FRAME_MAX},
        {"--max-topic", &cfg->engine.lim.max_topic, 1, WIRE_TOPIC_LEN_MAX},
        {"--max-data", &cfg->engine.lim.max_data, 1, WIRE_DATA_MAX},
        {"--max-topics", &cfg->engine.lim.max_topics, 1, WIRE_TOPICS_MAX},
        {"--max-subs", &cfg->hub.max_subs, 1, 1u << 20},
        {"--max-queue", &cfg->hub.max_queue, 8, 1u << 24},
        {"--max-conns", &cfg->max_conns, 1, 1u << 24},
        {"--max-conns-per-ip", &cfg->max_conns_per_ip, 0, 1u << 24},
        {"--sub-rate", &cfg->hub.sub_rate, 0, 1u << 24},
        {"--msg-rate", &cfg->hub.msg_rate, 0, 1u << 24},
        {"--max-pattern-segments", &cfg->hub.max_pattern_segments, 0, WIRE_TOPIC_LEN_MAX},
        {"--max-pattern-stars", &cfg->hub.max_pattern_stars, 0, WIRE_TOPIC_LEN_MAX},
        {"--max-topics-total", &cfg->engine.max_topics, 1, UINT32_MAX},
        {"--workers", &cfg->workers, 1, NUDGE_WORKERS_MAX},
        {"--hello-timeout", &cfg->hello_timeout_ms, 50, 3600000},
        {"--pub-idle", &cfg->pub_idle_ms, 0, 86400000},
        {"--http-max-body", &cfg->http_max_body, 64, WIRE_FRAME_MAX},
        {"--http-timeout", &cfg->http_timeout_ms, 50, 3600000},
        {"--hist-per-topic", &cfg->engine.hist.per_topic, 0, 1u << 20},
        {"--hist-age", &hist_age, 1, 7u * 24 * 3600},
        {"--horizon", &horizon, 1, 366u * 24 * 3600},
        {"--max-positions", &cfg->engine.hist.max_positions, 1, UINT32_MAX},
        {"--ws-ping", &cfg->ws_ping, 1, 3600},
        {"--ws-sndbuf", &cfg->ws_sndbuf, 0, 64u << 20},
        {"--fsync-ms", &cfg->disk.batch_ms, 1, 1000},
        {"--drain-window", &cfg->drain_window_ms, 0, 3600000},
        {"--drain-deadline", &cfg->drain_deadline_ms, 0, 3600000},
        {"--log-rate", &cfg->log_rate, 0, 1000000},
        {"--redis-timeout", &cfg->redis.timeout_ms, 100, 600000},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        *at = i;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(out);
            return 1;
        }
        if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
            fprintf(out, "nudged %s\n", NUDGE_VERSION);
            return 1;
        }
        char *addr = !strcmp(a, "--pub")     ? cfg->pub
                     : !strcmp(a, "--ws")    ? cfg->ws
                     : !strcmp(a, "--admin") ? cfg->admin
                     : !strcmp(a, "--http")  ? cfg->http
                                             : NULL;
        if (addr == cfg->http) cfg->http_given = 1;
        if (addr == cfg->http && v && (!*v || !strcmp(v, "off"))) {
            cfg->http[0] = '\0';
            i++;
            continue;
        }
        if (addr) {
            char host[256];
            unsigned port;
            if (!v || strlen(v) >= sizeof(cfg->pub) ||
                listen_parse(v, host, sizeof(host), &port) < 0) {
                snprintf(err, errlen, "%s wants HOST:PORT, got '%s'", a, v ? v : "");
                return -1;
            }
            snprintf(addr, sizeof(cfg->pub), "%s", v);
            i++;
            continue;
        }
        if (!strcmp(a, "--data-dir")) {
            if (!v || !*v || strlen(v) >= sizeof(cfg->data_dir)) {
                snprintf(err, errlen, "--data-dir wants a directory");
                return -1;
            }
            snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", v);
            cfg->data_dir_given = 1;
            i++;
            continue;
        }
        if (!strcmp(a, "--engine")) {
            if (v && !strcmp(v, "local")) {
                cfg->cluster = 0;
            } else if (v && redis_parse_url(v, &cfg->redis) == 0) {
                cfg->cluster = 1;
            } else {
                snprintf(err, errlen, "--engine wants local or redis://HOST[:PORT], got '%s'",
                         v ? v : "");
                return -1;
            }
            i++;
            continue;
        }
        if (!strcmp(a, "--redis-prefix")) {
            if (!v || !redis_prefix_ok(v)) {
                snprintf(err, errlen, "--redis-prefix wants 1..%d of A-Z a-z 0-9 _ . -, got '%s'",
                         RELAY_PREFIX_MAX, v ? v : "");
                return -1;
            }
            snprintf(cfg->redis.prefix, sizeof(cfg->redis.prefix), "%s", v);
            i++;
            continue;
        }
        if (!strcmp(a, "--tls-cert") || !strcmp(a, "--tls-key")) {
            char *dst = !strcmp(a, "--tls-cert") ? cfg->tls_cert : cfg->tls_key;
            if (!v || !*v || strlen(v) >= sizeof(cfg->tls_cert)) {
                snprintf(err, errlen, "%s wants a file path", a);
                return -1;
            }
            snprintf(dst, sizeof(cfg->tls_cert), "%s", v);
            i++;
            continue;
        }
        if (!strcmp(a, "--tls-listeners")) {
            unsigned l = 0;
            for (const char *s = v; s && *s;) {
                size_t n = strcspn(s, ",");
                unsigned one = n == 2 && !strncmp(s, "ws", 2)     ? CONFIG_TLS_WS
                               : n == 3 && !strncmp(s, "pub", 3)  ? CONFIG_TLS_PUB
                               : n == 4 && !strncmp(s, "http", 4) ? CONFIG_TLS_HTTP
                                                                  : 0;
                if (!one) {
                    l = 0;
                    break;
                }
                l |= one;
                s += n + (s[n] == ',');
            }
            if (!l) {
                snprintf(err, errlen,
                         "--tls-listeners wants a comma-separated set of ws, pub, http");
                return -1;
            }
            tls_listeners = l;
            tls_listeners_given = 1;
            i++;
            continue;
        }
        if (!strcmp(a, "--memory")) {
            cfg->data_dir[0] = '\0';
            continue;
        }
        if (!strcmp(a, "--fsync")) {
            if (v && !strcmp(v, "batch"))
                cfg->disk.sync = JOURNAL_SYNC_BATCH;
            else if (v && !strcmp(v, "always"))
                cfg->disk.sync = JOURNAL_SYNC_ALWAYS;
            else if (v && !strcmp(v, "os"))
                cfg->disk.sync = JOURNAL_SYNC_OS;
            else {
                snprintf(err, errlen, "--fsync wants batch, always or os");
                return -1;
            }
            i++;
            continue;
        }
        if (!strcmp(a, "--disk-max") || !strcmp(a, "--disk-segment")) {
            int seg = !strcmp(a, "--disk-segment");
            char *end;
            errno = 0;
            unsigned long long x = v && *v != '-' ? strtoull(v, &end, 10) : 0;
            unsigned long long lo = seg ? JOURNAL_SEGMENT_MIN : 0;
            unsigned long long hi = seg ? JOURNAL_SEGMENT_MAX : UINT64_MAX;
            if (!v || errno || *end || !*v || x < lo || x > hi || (seg && x % 4096)) {
                snprintf(err, errlen,
                         seg ? "--disk-segment wants a multiple of 4096 in [65536, 1073741824]"
                             : "--disk-max wants a byte count (0 = no bound)");
                return -1;
            }
            if (seg)
                cfg->disk.segment_bytes = x;
            else
                cfg->disk.max_bytes = x;
            i++;
            continue;
        }
        if (!strcmp(a, "--hist-bytes")) {
            char *end;
            errno = 0;
            unsigned long long x = v && *v != '-' ? strtoull(v, &end, 10) : 0;
            if (!v || errno || *end || !*v || x < 1024) {
                snprintf(err, errlen, "--hist-bytes wants an integer >= 1024");
                return -1;
            }
            cfg->engine.hist.max_bytes = x;
            i++;
            continue;
        }
        uint64_t *bytes = !strcmp(a, "--max-sub-bytes") ? &cfg->hub.max_sub_bytes
                          : !strcmp(a, "--replay-rate") ? &cfg->hub.replay_rate
                                                        : NULL;
        if (bytes) {
            char *end;
            errno = 0;
            unsigned long long x = v && *v != '-' ? strtoull(v, &end, 10) : 0;
            if (!v || errno || *end || !*v || (x && x < 1024)) {
                snprintf(err, errlen, "%s wants 0 (no bound) or a byte count >= 1024", a);
                return -1;
            }
            *bytes = x;
            i++;
            continue;
        }
        if (!strcmp(a, "--allow-origin")) {
            if (cfg->nallow_origin >= CONFIG_ORIGINS_MAX || !v || !*v ||
                strlen(v) >= CONFIG_ORIGIN_LEN || strchr(v, ' ')) {
                snprintf(err, errlen,
                         "--allow-origin wants an origin such as https://app.example.com (at "
                         "most %d of them), got '%s'",
                         CONFIG_ORIGINS_MAX, v ? v : "");
                return -1;
            }
            snprintf(cfg->allow_origin[cfg->nallow_origin++], CONFIG_ORIGIN_LEN, "%s", v);
            i++;
            continue;
        }
        if (!strcmp(a, "--coalesce")) {
            if (cfg->engine.nwindows >= ENGINE_WINDOWS_MAX || !v ||
                engine_window_parse(v, &cfg->engine.windows[cfg->engine.nwindows]) < 0) {
                snprintf(
                    err, errlen,
                    "--coalesce wants PATTERN=MS (MS 1..3600000, at most %d of them), got '%s'",
                    ENGINE_WINDOWS_MAX, v ? v : "");
                return -1;
            }
            cfg->engine.nwindows++;
            i++;
            continue;
        }
        int ar = auth_config_flag(&cfg->auth, argc, argv, &i, err, errlen);
        if (ar < 0) return -1;
        if (ar > 0) continue;
        if (!strcmp(a, "--log-level")) {
            int l = v ? log_level_parse(v) : -1;
            if (l < 0) {
                snprintf(err, errlen, "--log-level wants error, warn, info or debug");
                return -1;
            }
            cfg->log_level = l;
            i++;
            continue;
        }
        if (!strcmp(a, "--log-format")) {
            int f = v ? log_format_parse(v) : -1;
            if (f < 0) {
                snprintf(err, errlen, "--log-format wants text, logfmt or json");
                return -1;
            }
            cfg->log_format = f;
            i++;
            continue;
        }
        size_t k;
        for (k = 0; k < sizeof(nums) / sizeof(nums[0]); k++)
            if (!strcmp(a, nums[k].name)) break;
        if (k == sizeof(nums) / sizeof(nums[0])) {
            snprintf(err, errlen, "unknown option '%s' (see --help)", a);
            return -1;
        }
        if (parse_u32(v, nums[k].min, nums[k].max, nums[k].v) < 0) {
            snprintf(err, errlen, "%s wants an integer in [%u, %u], got '%s'", a, nums[k].min,
                     nums[k].max, v ? v : "");
            return -1;
        }
        i++;
    }
    *at = 0;
    cfg->engine.hist.max_age_ms = (uint64_t)hist_age * 1000;
    cfg->engine.hist.horizon_ms = (uint64_t)horizon * 1000;
    if (cfg->cluster) {
        /* Redis keeps the positions: a node has nothing of its own to keep on disk. */
        if (cfg->data_dir_given) {
            snprintf(err, errlen,
                     "--data-dir is not used with --engine redis:// (Redis keeps "
                     "the positions; see docs/cluster.md)");
            return -1;
        }
        cfg->data_dir[0] = '\0';
        cfg->redis.per_topic = cfg->engine.hist.per_topic;
        cfg->redis.hist_age_s = hist_age;
        cfg->redis.horizon_s = horizon;
    }
    /* TLS: both files or neither, and a broker that cannot use them does not start. */
    if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together (got only %s)",
                 cfg->tls_cert[0] ? "--tls-cert" : "--tls-key");
        return -1;
    }
    if (tls_listeners_given && !cfg->tls_cert[0]) {
        snprintf(err, errlen, "--tls-listeners needs --tls-cert and --tls-key");
        return -1;
    }
    cfg->tls = cfg->tls_cert[0] ? tls_listeners : 0;
    if (cfg->tls && tls_check(cfg->tls_cert, cfg->tls_key, err, errlen) < 0) return -1;
    /* Every publish is one record of a segment: the largest must fit one. */
    uint64_t record = (uint64_t)cfg->engine.lim.max_data + cfg->engine.lim.max_topic + 128;
    if (cfg->data_dir[0] && cfg->disk.segment_bytes < record + 64) {
        snprintf(err, errlen, "--disk-segment %llu cannot hold a publish of --max-data %u",
                 (unsigned long long)cfg->disk.segment_bytes, cfg->engine.lim.max_data);
        return -1;
    }
    if (cfg->disk.max_bytes && cfg->disk.max_bytes < 2 * cfg->disk.segment_bytes) {
        snprintf(err, errlen, "--disk-max must be 0 or at least two segments (2 x %llu)",
                 (unsigned long long)cfg->disk.segment_bytes);
        return -1;
    }
    if (cfg->drain_deadline_ms < cfg->drain_window_ms) {
        snprintf(err, errlen, "--drain-deadline %u is shorter than --drain-window %u",
                 cfg->drain_deadline_ms, cfg->drain_window_ms);
        return -1;
    }
    return 0;
}

/* Could others reach a listener on addr? (An address that does not resolve is left to its
 * bind, which fails with its own message.) */
static int exposed(const char *addr)
{
    return listen_is_loopback(addr) == 0;
}

int config_exposure(const struct config *cfg, const struct auth *a, int warn, char *err,
                    size_t errlen)
{
    if (exposed(cfg->ws) && a->subs_open) {
        snprintf(err, errlen,
                 "--ws %s is not a loopback address, and subscribers are not authenticated: "
                 "configure --token-secret-file or --token-public-key (and --public/--anonymous "
                 "patterns) first",
                 cfg->ws);
        return -1;
    }
    if (exposed(cfg->pub) && a->pubs_open) {
        snprintf(err, errlen,
                 "--pub %s is not a loopback address, and publishers are not authenticated: "
                 "configure --pub-keys first",
                 cfg->pub);
        return -1;
    }
    if (cfg->http[0] && exposed(cfg->http) && a->pubs_open) {
        snprintf(err, errlen,
                 "--http %s is not a loopback address, and publishers are not authenticated: "
                 "configure --pub-keys first",
                 cfg->http);
        return -1;
    }
    if (exposed(cfg->admin) && !a->admin_required) {
        snprintf(err, errlen,
                 "--admin %s is not a loopback address: configure --admin-token-file first",
                 cfg->admin);
        return -1;
    }
    if (a->subs_open && warn)
        LOGF(LOG_WARN, "DEVELOPMENT MODE: any WebSocket client may read every topic (no "
                       "--token-secret-file, --token-public-key or --anonymous); docs/security.md");
    if (a->pubs_open && warn)
        LOGF(LOG_WARN,
             "DEVELOPMENT MODE: any publisher may publish to every topic (no --pub-keys)");
    return 0;
}

/* ---- sources: the config file, the environment and the command line ------------------------ */

enum { K_VALUE = 1, K_BOOL = 2, K_LIST = 4, K_PATH = 8 };

/* Every setting, as its flag without "--": how it is written in a file (`max-conns 20000`) and
 * in the environment (NUDGE_MAX_CONNS). K_PATH values in a file are relative to the file's
 * directory. tests/unit/test_config.c checks that every flag of --help is here. */
static const struct {
    const char *name;
    unsigned kind;
} known[] = {
    {"pub", K_VALUE},
    {"ws", K_VALUE},
    {"admin", K_VALUE},
    {"http", K_VALUE},
    {"tls-cert", K_VALUE | K_PATH},
    {"tls-key", K_VALUE | K_PATH},
    {"tls-listeners", K_VALUE},
    {"max-frame", K_VALUE},
    {"max-topic", K_VALUE},
    {"max-data", K_VALUE},
    {"max-topics", K_VALUE},
    {"max-subs", K_VALUE},
    {"max-queue", K_VALUE},
    {"max-topics-total", K_VALUE},
    {"http-max-body", K_VALUE},
    {"max-conns", K_VALUE},
    {"max-conns-per-ip", K_VALUE},
    {"allow-origin", K_VALUE | K_LIST},
    {"max-sub-bytes", K_VALUE},
    {"replay-rate", K_VALUE},
    {"sub-rate", K_VALUE},
    {"msg-rate", K_VALUE},
    {"max-pattern-segments", K_VALUE},
    {"max-pattern-stars", K_VALUE},
    {"hello-timeout", K_VALUE},
    {"pub-idle", K_VALUE},
    {"http-timeout", K_VALUE},
    {"hist-per-topic", K_VALUE},
    {"hist-bytes", K_VALUE},
    {"hist-age", K_VALUE},
    {"horizon", K_VALUE},
    {"max-positions", K_VALUE},
    {"data-dir", K_VALUE | K_PATH},
    {"memory", K_BOOL},
    {"engine", K_VALUE},
    {"redis-prefix", K_VALUE},
    {"redis-timeout", K_VALUE},
    {"fsync", K_VALUE},
    {"fsync-ms", K_VALUE},
    {"disk-max", K_VALUE},
    {"disk-segment", K_VALUE},
    {"coalesce", K_VALUE | K_LIST},
    {"workers", K_VALUE},
    {"token-secret-file", K_VALUE | K_LIST | K_PATH},
    {"token-public-key", K_VALUE | K_LIST | K_PATH},
    {"token-aud", K_VALUE},
    {"token-iss", K_VALUE},
    {"token-leeway", K_VALUE},
    {"public", K_VALUE | K_LIST},
    {"anonymous", K_VALUE | K_LIST},
    {"pub-keys", K_VALUE | K_PATH},
    {"pub-rate", K_VALUE},
    {"admin-token-file", K_VALUE | K_PATH},
    {"ws-ping", K_VALUE},
    {"ws-sndbuf", K_VALUE},
    {"log-level", K_VALUE},
    {"log-format", K_VALUE},
    {"log-rate", K_VALUE},
    {"drain-window", K_VALUE},
    {"drain-deadline", K_VALUE},
    {"revoke-keep", K_VALUE},
};
#define NKNOWN (sizeof(known) / sizeof(known[0]))

static int known_find(const char *name, size_t len)
{
    for (size_t k = 0; k < NKNOWN; k++)
        if (strlen(known[k].name) == len && !memcmp(known[k].name, name, len)) return (int)k;
    return -1;
}

int config_known(const char *name)
{
    return known_find(name, strlen(name)) >= 0;
}

enum { SRC_FILE = 0, SRC_ENV = 1, SRC_ARGS = 2 };

struct item {
    int k;              /* index in known[], or -1 (a command-line flag the parser judges) */
    int src;            /* SRC_*: a list given by a later source replaces an earlier one's */
    char *flag, *value; /* value NULL for a boolean or a flag without one */
    const char *where;  /* "FILE:LINE", "NUDGE_X", or NULL (command line) */
};

struct items {
    struct item *v;
    size_t n, cap;
};

/* A copy of s[0..n) that lives as long as cfg (config_free). NULL when out of memory. */
static char *keep(struct config *cfg, const char *s, size_t n)
{
    struct config_blk *b = malloc(sizeof(*b) + n + 1);
    if (!b) return NULL;
    memcpy(b->data, s, n);
    b->data[n] = '\0';
    b->next = cfg->kept;
    cfg->kept = b;
    return b->data;
}

static int add(struct items *L, struct item it)
{
    if (L->n == L->cap) {
        size_t cap = L->cap ? 2 * L->cap : 64;
        struct item *v = realloc(L->v, cap * sizeof(*v));
        if (!v) return -1;
        L->v = v;
        L->cap = cap;
    }
    L->v[L->n++] = it;
    return 0;
}

/* "--name" for known[k], kept in cfg. */
static char *flag_of(struct config *cfg, int k)
{
    char buf[64];
    snprintf(buf, sizeof(buf), "--%s", known[k].name);
    return keep(cfg, buf, strlen(buf));
}

/* A boolean's value: 1, 0, or -1 when it is neither. */
static int truth(const char *v)
{
    static const char *const yes[] = {"1", "yes", "true", "on"}, *const no[] = {"0", "no", "false",
                                                                                "off"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i])) return 1;
        if (!strcasecmp(v, no[i])) return 0;
    }
    return -1;
}

/* One setting (known[k], value v[0..vlen)) from the file or the environment, at where. */
static int add_setting(struct config *cfg, struct items *L, int k, int src, const char *v,
                       size_t vlen, const char *dir, const char *where, char *err, size_t errlen)
{
    struct item it = {.k = k, .src = src, .where = where};
    if (known[k].kind & K_BOOL) {
        char b[8];
        int t = -1;
        if (vlen == 0)
            t = 1;
        else if (vlen < sizeof(b)) {
            memcpy(b, v, vlen);
            b[vlen] = '\0';
            t = truth(b);
        }
        if (t < 0) {
            snprintf(err, errlen, "%s: %s wants yes or no (or no value)", where, known[k].name);
            return -1;
        }
        if (!t) return 0;
    } else if (vlen == 0) {
        snprintf(err, errlen, "%s: %s wants a value", where, known[k].name);
        return -1;
    } else if ((known[k].kind & K_PATH) && dir && v[0] != '/') {
        size_t dl = strlen(dir);
        char *p = malloc(dl + 1 + vlen);
        if (!p) goto oom;
        memcpy(p, dir, dl);
        p[dl] = '/';
        memcpy(p + dl + 1, v, vlen);
        it.value = keep(cfg, p, dl + 1 + vlen);
        free(p);
        if (!it.value) goto oom;
    } else if (!(it.value = keep(cfg, v, vlen)))
        goto oom;
    if (!(it.flag = flag_of(cfg, k)) || add(L, it) < 0) goto oom;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

#define CONFIG_FILE_MAX (1u << 20)

/* The settings of file: `key value` a line; blank lines and `#` comments (a line's, or after a
 * blank) are skipped; a value may be in double quotes (kept as written inside them). */
static int read_config_file(struct config *cfg, struct items *L, const char *file, char *err,
                            size_t errlen)
{
    size_t n;
    char *buf = auth_read_file(file, CONFIG_FILE_MAX, &n, err, errlen);
    if (!buf) return -1;
    /* the file's directory, for relative paths in it */
    const char *slash = strrchr(file, '/');
    char *dir = slash ? keep(cfg, file, (size_t)(slash - file) + (slash == file)) : NULL;
    int rc = 0, line = 0;
    for (char *p = buf, *nl; p && *p && rc == 0; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        char *end = nl ? nl : p + strlen(p);
        line++;
        char where[64 + 4096];
        snprintf(where, sizeof(where), "%s:%d", file, line);
        if (memchr(p, '\0', (size_t)(end - p))) break; /* a NUL ends the text */
        while (p < end && isspace((unsigned char)*p))
            p++;
        /* a comment: the rest of the line from a '#' at its start or after a blank */
        for (char *c = p; c < end; c++)
            if (*c == '#' && (c == p || isspace((unsigned char)c[-1]))) {
                end = c;
                break;
            }
        while (end > p && isspace((unsigned char)end[-1]))
            end--;
        if (p == end) continue;
        char *key = p;
        while (p < end && !isspace((unsigned char)*p) && *p != '=')
            p++;
        size_t klen = (size_t)(p - key);
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (p < end && *p == '=') {
            p++;
            while (p < end && isspace((unsigned char)*p))
                p++;
        }
        if (end - p >= 2 && *p == '"' && end[-1] == '"') {
            p++;
            end--;
        }
        const char *w = keep(cfg, where, strlen(where));
        if (klen > 2 && key[0] == '-' && key[1] == '-') {
            key += 2;
            klen -= 2;
        }
        int k = known_find(key, klen);
        if (!w) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        } else if (k < 0) {
            snprintf(err, errlen,
                     "%s: unknown setting '%.*s' (the settings are nudged's flags "
                     "without --: see nudged --help)",
                     where, (int)(klen > 64 ? 64 : klen), key);
            rc = -1;
        } else
            rc = add_setting(cfg, L, k, SRC_FILE, p, (size_t)(end - p), dir, w, err, errlen);
    }
    free(buf);
    return rc;
}

/* NUDGE_<NAME> for every known setting in envp; a list's values are separated by blanks (no
 * topic, pattern or origin has one). Other NUDGE_* variables (the command-line tool's
 * NUDGE_ADDR, ...) are not settings: they are left alone, and noted to `notes` when given. */
static int read_env(struct config *cfg, struct items *L, char **envp, FILE *notes, char *err,
                    size_t errlen)
{
    for (char **e = envp; e && *e; e++) {
        if (strncmp(*e, "NUDGE_", 6)) continue;
        const char *name = *e + 6, *eq = strchr(name, '=');
        if (!eq || eq == name || eq - name >= 64 || !strncmp(name, "CONFIG=", 7)) continue;
        char flag[64];
        size_t len = (size_t)(eq - name);
        for (size_t i = 0; i < len; i++)
            flag[i] = name[i] == '_' ? '-' : (char)tolower((unsigned char)name[i]);
        int k = known_find(flag, len);
        if (k < 0) {
            if (notes)
                fprintf(notes, "note: %.*s is not a nudged setting (ignored)\n", (int)len + 6, *e);
            continue;
        }
        const char *where = keep(cfg, *e, (size_t)(eq - *e));
        if (!where) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        const char *v = eq + 1;
        if (!(known[k].kind & K_LIST)) {
            if (add_setting(cfg, L, k, SRC_ENV, v, strlen(v), NULL, where, err, errlen) < 0)
                return -1;
            continue;
        }
        for (const char *p = v; *p;) {
            while (*p && isspace((unsigned char)*p))
                p++;
            size_t n = 0;
            while (p[n] && !isspace((unsigned char)p[n]))
                n++;
            if (n && add_setting(cfg, L, k, SRC_ENV, p, n, NULL, where, err, errlen) < 0) return -1;
            p += n;
        }
    }
    return 0;
}

void config_free(struct config *cfg)
{
    for (struct config_blk *b = cfg->kept, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    cfg->kept = NULL;
}

int config_parse(struct config *cfg, int argc, char **argv, char **envp, FILE *out, char *err,
                 size_t errlen)
{
    const char *file = NULL;
    struct items L = {0};
    int rc = -1;
    /* --help and --version answer whatever else is wrong; --config and --check-config name the
     * file, wherever they are */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help") || !strcmp(a, "-V") ||
            !strcmp(a, "--version")) {
            int at;
            char *one[] = {argv[0], argv[i]};
            return parse_flags(cfg, 2, one, out, &at, err, errlen);
        }
        if (!strcmp(a, "--config") || !strcmp(a, "--check-config")) {
            if (i + 1 >= argc || !argv[i + 1][0]) {
                snprintf(err, errlen, "%s wants a file", a);
                return -1;
            }
            if (a[2] == 'c' && a[3] == 'h') cfg->check_only = 1;
            file = argv[++i];
        } else if (a[0] == '-' && a[1] == '-' && strcmp(a, "--memory") && i + 1 < argc)
            i++; /* its value, which may look like anything */
    }
    for (char **e = envp; !file && e && *e; e++)
        if (!strncmp(*e, "NUDGE_CONFIG=", 13) && (*e)[13]) file = *e + 13;
    if (file) {
        snprintf(cfg->file, sizeof(cfg->file), "%s", file);
        if (read_config_file(cfg, &L, file, err, errlen) < 0) goto out;
    }
    if (read_env(cfg, &L, envp, cfg->check_only ? stderr : NULL, err, errlen) < 0) goto out;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config") || !strcmp(a, "--check-config")) {
            i++;
            continue;
        }
        int k = a[0] == '-' && a[1] == '-' ? known_find(a + 2, strlen(a + 2)) : -1;
        struct item it = {.k = k, .src = SRC_ARGS, .flag = argv[i]};
        if ((k < 0 || !(known[k].kind & K_BOOL)) && i + 1 < argc) it.value = argv[++i];
        if (add(&L, it) < 0) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
    }
    /* A later value of a setting replaces an earlier one, which is not read at all (a bad
     * value a flag overrides stops nothing); a list given by a later source replaces what
     * earlier sources listed. */
    for (size_t i = 0; i < L.n; i++) {
        int k = L.v[i].k;
        if (k < 0) continue;
        for (size_t j = i + 1; j < L.n; j++)
            if (L.v[j].k == k && (!(known[k].kind & K_LIST) || L.v[j].src > L.v[i].src)) {
                L.v[i].k = -2; /* dropped */
                break;
            }
    }
    size_t n = 1;
    char **av = calloc(2 * L.n + 1, sizeof(*av));
    const char **where = calloc(2 * L.n + 1, sizeof(*where));
    if (!av || !where) {
        free(av);
        free((void *)where);
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    av[0] = argc ? argv[0] : "nudged";
    for (size_t i = 0; i < L.n; i++) {
        if (L.v[i].k == -2) continue;
        where[n] = L.v[i].where;
        av[n++] = L.v[i].flag;
        if (L.v[i].value) {
            where[n] = L.v[i].where;
            av[n++] = L.v[i].value;
        }
    }
    char msg[1024];
    int at = 0;
    rc = parse_flags(cfg, (int)n, av, out, &at, msg, sizeof(msg));
    if (rc < 0) {
        if (at > 0 && (size_t)at < n && where[at])
            snprintf(err, errlen, "%s: %s", where[at], msg);
        else
            snprintf(err, errlen, "%s", msg);
    }
    free(av);
    free((void *)where);
out:
    free(L.v);
    return rc;
}
