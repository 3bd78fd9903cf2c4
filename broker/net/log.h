/* log: the broker's log, one line per record on stderr (fd 2), in one of three formats chosen
 * by --log-format (docs/operations.md §Logs):
 *
 *   text    2026-12-02T08:00:00.123Z nudged warn: auth failed conn=1a peer=10.0.0.5:5555 ...
 *   logfmt  ts=2026-12-02T08:00:00.123Z level=warn msg="auth failed" event=auth_failed conn=1a ...
 *   json    {"ts":"2026-12-02T08:00:00.123Z","level":"warn","msg":"auth failed",...}
 *
 * A record is a message and, optionally, fields (key, value). Keys are static identifiers
 * ([a-z_]); values may be any bytes — a peer's Origin header, say — and are escaped so that one
 * record is always one line and, in JSON, valid UTF-8: control characters as \n, \t, \u001b...,
 * '"' and '\' as \" and \\, and each byte that is not part of well-formed UTF-8 as \ufffd (as
 * Go's encoding/json and go-logfmt do). logfmt and text quote a value that is empty or holds a
 * space, '=', '"', '\' or anything escaped. A value longer than LOG_VALUE_MAX bytes (a message:
 * LOG_MSG_MAX) is cut there; a line never passes LOG_LINE_MAX bytes and is written with one
 * write(2) under a mutex, so lines from worker threads never interleave.
 *
 * The level and the format are process-wide (atomics): log_set_level may be called from any
 * thread at any time (SIGHUP reload); callers check LOG_ON before formatting.
 *
 * Connection-level events an operator may alert on (enum log_event: auth failures, closes and
 * refusals the broker decides) are logged at warn with log_event, which rate-limits each kind
 * on its own: a token bucket of --log-rate lines a second (default 10) with bursts of 5 times
 * that. Lines over the rate are dropped and counted (log_suppressed, /metrics
 * nudge_log_suppressed_total{event=...}); at most once a second per kind, the next event of
 * that kind or log_tick says how many went: "log lines suppressed" event=... suppressed=N
 * seconds=S. */
#ifndef NUDGE_LOG_H
#define NUDGE_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
enum log_format { LOG_TEXT = 0, LOG_LOGFMT = 1, LOG_JSON = 2 };

#define LOG_VALUE_MAX 512 /* bytes of one field's value kept; the rest is cut */
#define LOG_MSG_MAX 1024  /* bytes of one message kept */
#define LOG_LINE_MAX 8192 /* bytes of one line, newline included */
#define LOG_RATE_DEFAULT 10

/* Parse "error|warn|info|debug"; -1 when unknown. */
int log_level_parse(const char *s);
/* Parse "text|logfmt|json"; -1 when unknown. */
int log_format_parse(const char *s);
const char *log_level_name(int level);

/* The process-wide level (default info) and format (default text); any thread. */
void log_set_level(int level);
int log_level(void);
void log_set_format(int format);
int log_format(void);
/* Where lines go (default 2). Tests point it at a pipe or a file. */
void log_set_fd(int fd);

#define LOG_ON(lvl) ((lvl) <= log_level())

/* One field. Build with LOG_S (a NUL-terminated string), LOG_B (len bytes, maybe not text),
 * LOG_N (a number: bare in JSON) or LOG_PEER (the peer address of connected socket fd, as
 * "1.2.3.4:5555" or "[::1]:5555", looked up only when the line is written; "-" when unknown).
 * Values are borrowed for the call only. */
enum log_kind { LOG_F_STR, LOG_F_NUM, LOG_F_PEER };
struct log_field {
    const char *key;
    enum log_kind kind;
    const char *s; /* LOG_F_STR */
    size_t len;
    long long n; /* LOG_F_NUM; LOG_F_PEER: the fd */
};
static inline struct log_field log_field_str(const char *k, const char *v)
{
    return (struct log_field){k, LOG_F_STR, v ? v : "", v ? strlen(v) : 0, 0};
}
#define LOG_S(k, v) log_field_str((k), (v))
#define LOG_B(k, p, l) ((struct log_field){(k), LOG_F_STR, (const char *)(p), (l), 0})
#define LOG_N(k, v) ((struct log_field){(k), LOG_F_NUM, NULL, 0, (long long)(v)})
#define LOG_PEER(fd) ((struct log_field){"peer", LOG_F_PEER, NULL, 0, (long long)(fd)})

/* Write one record at level, its message from fmt (no level check). */
void log_emit(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write one record at level with message msg and fields f[0..n) (no level check). */
void log_kv(int level, const char *msg, const struct log_field *f, size_t n);

#define LOGF(lvl, ...)                                                                             \
    do {                                                                                           \
        if (LOG_ON(lvl)) log_emit(lvl, __VA_ARGS__);                                               \
    } while (0)
#define LOGKV(lvl, msg, ...)                                                                       \
    do {                                                                                           \
        if (LOG_ON(lvl)) {                                                                         \
            const struct log_field log_f_[] = {__VA_ARGS__};                                       \
            log_kv(lvl, msg, log_f_, sizeof(log_f_) / sizeof(log_f_[0]));                          \
        }                                                                                          \
    } while (0)

/* ---- connection-level events (warn, rate-limited per kind) ------------------------------- */

/* Each kind has a name (the "event" field, the label of nudge_log_suppressed_total) and a fixed
 * message; docs/operations.md §Logs lists them with their fields. Keep in step with
 * METRICS_LOG_EVENTS and metrics.c's rows (a test checks). */
enum log_event {
    LOG_EV_AUTH,      /* auth_failed: a token, API key or admin token refused */
    LOG_EV_SLOW,      /* slow_consumer: a subscriber closed with 4001 */
    LOG_EV_RATE,      /* rate_limited: a subscriber closed with 4008 */
    LOG_EV_NOMEM,     /* out_of_memory: a subscriber closed with 1011 */
    LOG_EV_CONNS,     /* max_conns: a connection refused at accept, --max-conns reached */
    LOG_EV_CONNS_IP,  /* max_conns_per_ip: refused at accept, --max-conns-per-ip reached */
    LOG_EV_ORIGIN,    /* origin_refused: a WebSocket upgrade refused by --allow-origin */
    LOG_EV_TIMEOUT,   /* handshake_timeout: no upgrade, hello or request in time */
    LOG_EV_TOO_LARGE, /* too_large: a message, frame, request head or body over its limit */
    LOG_EV_COUNT
};

const char *log_event_name(enum log_event ev);
const char *log_event_msg(enum log_event ev);
/* Log event ev at warn with fields f[0..n) (an "event" field is put first), unless the level
 * is under warn or ev's bucket is empty (then it is counted as suppressed). Any thread. */
void log_event(enum log_event ev, const struct log_field *f, size_t n);
#define LOG_EVENT(ev, ...)                                                                         \
    do {                                                                                           \
        const struct log_field log_f_[] = {__VA_ARGS__};                                           \
        log_event(ev, log_f_, sizeof(log_f_) / sizeof(log_f_[0]));                                 \
    } while (0)
/* Lines of kind ev dropped by the rate limit since start. Any thread. */
uint64_t log_suppressed(enum log_event ev);
/* Say, for each kind whose lines were dropped and whose last such note is a second old, how
 * many (worker 0 calls it from its tick, so the note comes even when the flood stops). */
void log_tick(void);
/* Lines a second per kind (bursts of 5 x rate); 0 = no limit. Resets the buckets. Call before
 * the workers start (tests: any time). */
void log_set_rate(uint32_t per_sec);
/* Tests: the limiter's clock (monotonic ns); NULL = CLOCK_MONOTONIC. */
void log_set_clock(uint64_t (*now_ns)(void));

#endif
