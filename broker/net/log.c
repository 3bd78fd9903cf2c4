/* log: records are built in a stack buffer (LOG_LINE_MAX) and written with one write(2) under
 * one mutex, so a line is never interleaved with another thread's and a partial write is
 * finished before anyone else writes. stdout is kept for the ready line.
 *
 * The buffer keeps LINE_RESERVE bytes free while values go in, so whatever a value holds the
 * record can still be closed (quote, brace, newline): a cut line is still one line and valid
 * JSON. Escaping works unit by unit (one ASCII byte, one well-formed UTF-8 sequence, or one bad
 * byte as \ufffd) and stops before a unit that would not fit.
 *
 * The event limiter is a GCRA per kind (a token bucket as one "theoretical arrival time"):
 * a line is allowed when now >= tat - tau, and then tat = max(tat, now) + T, with T = 1 s /
 * rate and tau = (burst - 1) T. All kinds share one mutex: events are rare next to the data
 * path, and even a flood of them costs an uncontended lock each. */
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "metrics.h"

_Static_assert(LOG_EV_COUNT == METRICS_LOG_EVENTS, "metrics.h: one slot per log event kind");

#define LINE_RESERVE 16 /* closing quote, brace, newline */
#define FIELD_ROOM 80   /* a key's punctuation and a number, a peer or a value's start */
#define NS 1000000000ull

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const format_names[] = {"text", "logfmt", "json"};

static atomic_int cur_level = LOG_INFO;
static atomic_int cur_format = LOG_TEXT;
static atomic_int out_fd = 2;
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) return i;
    return -1;
}

int log_format_parse(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(s, format_names[i]) == 0) return i;
    return -1;
}

const char *log_level_name(int level)
{
    return level_names[level < 0 || level > 3 ? 0 : level];
}

void log_set_level(int level)
{
    atomic_store_explicit(&cur_level, level, memory_order_relaxed);
}

int log_level(void)
{
    return atomic_load_explicit(&cur_level, memory_order_relaxed);
}

void log_set_format(int format)
{
    atomic_store_explicit(&cur_format, format, memory_order_relaxed);
}

int log_format(void)
{
    return atomic_load_explicit(&cur_format, memory_order_relaxed);
}

void log_set_fd(int fd)
{
    atomic_store(&out_fd, fd);
}

/* ---- building a line ------------------------------------------------------------------------ */

struct line {
    char b[LOG_LINE_MAX];
    size_t n;
    int fmt;
    int full; /* a field did not fit: the ones after it are left out too */
};

/* Append raw bytes if they fit (keeping the reserve unless closing); 0 or -1. */
static int put(struct line *l, const char *s, size_t len, int closing)
{
    size_t cap = sizeof(l->b) - (closing ? 0 : LINE_RESERVE);
    if (l->n + len > cap) return -1;
    memcpy(l->b + l->n, s, len);
    l->n += len;
    return 0;
}

static int puts_(struct line *l, const char *s)
{
    return put(l, s, strlen(s), 0);
}

/* Length of the well-formed UTF-8 sequence at p[0..len) (2..4), or 0 when the byte at p does
 * not start one (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF). */
static size_t utf8_seq(const unsigned char *p, size_t len)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if (len < n || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return n;
}

/* Escape s[0..len) into l: control characters, DEL and bad UTF-8 always; '"' and '\' when
 * quoted (inside a JSON or logfmt string). Stops at the first unit that does not fit. */
static void put_escaped(struct line *l, const char *s, size_t len, int quoted)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        unsigned char c = p[i];
        char esc[8];
        const char *u = esc;
        size_t ulen = 1;
        if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            ulen = 2;
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            ulen = 6;
        } else if (quoted && (c == '"' || c == '\\')) {
            esc[0] = '\\';
            esc[1] = (char)c;
            ulen = 2;
        } else if (c < 0x80) {
            u = (const char *)p + i;
        } else if ((ulen = utf8_seq(p + i, len - i)) > 0) {
            u = (const char *)p + i;
            if (put(l, u, ulen, 0) < 0) return;
            i += ulen;
            continue;
        } else {
            u = "\\ufffd";
            ulen = 6;
        }
        if (put(l, u, ulen, 0) < 0) return;
        i++;
    }
}

/* logfmt and text: a value is quoted when it is empty or holds anything but plain printable
 * ASCII other than '=', '"' and '\'. */
static int needs_quotes(const char *s, size_t len)
{
    if (len == 0) return 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || c == '=' || c == '"' || c == '\\') return 1;
    }
    return 0;
}

static void put_str_value(struct line *l, const char *s, size_t len)
{
    int q = l->fmt == LOG_JSON || needs_quotes(s, len);
    if (q && put(l, "\"", 1, 0) < 0) return;
    put_escaped(l, s, len, q);
    if (q) put(l, "\"", 1, 1);
}

/* The key of a field (keys are static identifiers: never escaped). */
static void put_key(struct line *l, const char *k)
{
    if (l->fmt == LOG_JSON) {
        puts_(l, ",\"");
        puts_(l, k);
        puts_(l, "\":");
    } else {
        puts_(l, " ");
        puts_(l, k);
        puts_(l, "=");
    }
}

/* "1.2.3.4:5555", "[::1]:5555" (IPv4-mapped addresses as IPv4), or "-". */
static void peer_text(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char ip[INET6_ADDRSTRLEN];
    snprintf(out, cap, "-");
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
        if (inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip)))
            snprintf(out, cap, "%s:%u", ip, ntohs(s4->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
            if (inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip, sizeof(ip)))
                snprintf(out, cap, "%s:%u", ip, ntohs(s6->sin6_port));
        } else if (inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip))) {
            snprintf(out, cap, "[%s]:%u", ip, ntohs(s6->sin6_port));
        }
    }
}

static void put_field(struct line *l, const struct log_field *f)
{
    char tmp[INET6_ADDRSTRLEN + 16];
    /* Room for the key and a short value or a value's first unit, or no field at all: a field
     * is never left without its value. */
    if (l->full || l->n + strlen(f->key) + FIELD_ROOM > sizeof(l->b) - LINE_RESERVE) {
        l->full = 1; /* no more fields */
        return;
    }
    put_key(l, f->key);
    switch (f->kind) {
    case LOG_F_NUM:
        snprintf(tmp, sizeof(tmp), "%lld", f->n);
        puts_(l, tmp);
        break;
    case LOG_F_PEER:
        peer_text((int)f->n, tmp, sizeof(tmp));
        put_str_value(l, tmp, strlen(tmp));
        break;
    default:
        put_str_value(l, f->s ? f->s : "",
                      !f->s                    ? 0
                      : f->len > LOG_VALUE_MAX ? LOG_VALUE_MAX
                                               : f->len);
    }
}

static void write_line(const char *p, size_t n)
{
    int fd = atomic_load(&out_fd);
    pthread_mutex_lock(&write_lock);
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break; /* nowhere to log to: nothing better to do */
        p += w;
        n -= (size_t)w;
    }
    pthread_mutex_unlock(&write_lock);
}

/* One record: the head (time, level, message), then fields; event names a kind (its "event"
 * field comes first, except in text where the message says it), or NULL. */
static void record(int level, const char *msg, size_t msg_len, const char *event,
                   const struct log_field *f, size_t n)
{
    struct line l;
    struct timespec ts;
    struct tm tm;
    char t[96]; /* 24 used; room for what gcc thinks an int may print */
    l.n = 0;
    l.full = 0;
    l.fmt = log_format();
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(t, sizeof(t), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    const char *lv = log_level_name(level);
    if (msg_len > LOG_MSG_MAX) msg_len = LOG_MSG_MAX;
    if (l.fmt == LOG_JSON) {
        puts_(&l, "{\"ts\":\"");
        puts_(&l, t);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, lv);
        puts_(&l, "\",\"msg\":");
        put_str_value(&l, msg, msg_len);
    } else if (l.fmt == LOG_LOGFMT) {
        puts_(&l, "ts=");
        puts_(&l, t);
        puts_(&l, " level=");
        puts_(&l, lv);
        puts_(&l, " msg=");
        put_str_value(&l, msg, msg_len);
    } else {
        puts_(&l, t);
        puts_(&l, " nudged ");
        puts_(&l, lv);
        puts_(&l, ": ");
        put_escaped(&l, msg, msg_len, 0);
    }
    if (event && l.fmt != LOG_TEXT) {
        struct log_field ef = LOG_S("event", event);
        put_field(&l, &ef);
    }
    for (size_t i = 0; i < n; i++)
        put_field(&l, &f[i]);
    if (l.fmt == LOG_JSON) put(&l, "}", 1, 1);
    put(&l, "\n", 1, 1);
    write_line(l.b, l.n);
}

void log_emit(int level, const char *fmt, ...)
{
    char msg[LOG_MSG_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    record(level, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1, NULL, NULL, 0);
}

void log_kv(int level, const char *msg, const struct log_field *f, size_t n)
{
    record(level, msg, strlen(msg), NULL, f, n);
}

/* ---- events --------------------------------------------------------------------------------- */

static const struct {
    const char *name, *msg;
} events[LOG_EV_COUNT] = {
    [LOG_EV_AUTH] = {"auth_failed", "auth failed"},
    [LOG_EV_SLOW] = {"slow_consumer", "slow consumer closed"},
    [LOG_EV_RATE] = {"rate_limited", "rate limit closed"},
    [LOG_EV_NOMEM] = {"out_of_memory", "closed: out of memory"},
    [LOG_EV_CONNS] = {"max_conns", "connection refused: --max-conns"},
    [LOG_EV_CONNS_IP] = {"max_conns_per_ip", "connection refused: --max-conns-per-ip"},
    [LOG_EV_ORIGIN] = {"origin_refused", "WebSocket refused: Origin not allowed"},
    [LOG_EV_TIMEOUT] = {"handshake_timeout", "handshake timeout"},
    [LOG_EV_TOO_LARGE] = {"too_large", "too large"},
};

struct bucket {
    uint64_t tat;        /* GCRA: the bucket is empty until then */
    uint64_t dropped;    /* lines dropped since the last note */
    uint64_t first_drop; /* when the first of them was */
    uint64_t total;      /* lines dropped since start */
};

static pthread_mutex_t limit_lock = PTHREAD_MUTEX_INITIALIZER;
static struct bucket buckets[LOG_EV_COUNT];
static uint64_t interval_ns = NS / LOG_RATE_DEFAULT;                           /* T; 0 = no limit */
static uint64_t tau_ns = (5 * LOG_RATE_DEFAULT - 1) * (NS / LOG_RATE_DEFAULT); /* (burst-1) T */
static uint64_t (*clock_fn)(void);

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

const char *log_event_name(enum log_event ev)
{
    return ev < LOG_EV_COUNT ? events[ev].name : "unknown";
}

const char *log_event_msg(enum log_event ev)
{
    return ev < LOG_EV_COUNT ? events[ev].msg : "unknown";
}

void log_set_rate(uint32_t per_sec)
{
    pthread_mutex_lock(&limit_lock);
    interval_ns = per_sec ? NS / per_sec : 0;
    tau_ns = per_sec ? (5ull * per_sec - 1) * interval_ns : 0;
    for (int i = 0; i < LOG_EV_COUNT; i++) {
        uint64_t total = buckets[i].total;
        memset(&buckets[i], 0, sizeof(buckets[i]));
        buckets[i].total = total;
    }
    pthread_mutex_unlock(&limit_lock);
}

void log_set_clock(uint64_t (*now_ns)(void))
{
    clock_fn = now_ns;
}

/* Under limit_lock: the note owed for b at now, if one is (*secs set), else 0. A note covers at
 * least a second of drops, so there is at most one a second per kind. */
static uint64_t take_note(struct bucket *b, uint64_t now, uint64_t *secs)
{
    if (!b->dropped || now - b->first_drop < NS) return 0;
    uint64_t n = b->dropped;
    *secs = (now - b->first_drop + NS - 1) / NS;
    b->dropped = 0;
    return n;
}

static void note(enum log_event ev, uint64_t n, uint64_t secs)
{
    struct log_field f[] = {LOG_N("suppressed", n), LOG_N("seconds", secs)};
    char msg[96];
    int len = snprintf(msg, sizeof(msg), "log lines suppressed");
    if (log_format() == LOG_TEXT) /* text has no event field: the message names it */
        len = snprintf(msg, sizeof(msg), "log lines suppressed: '%s'", events[ev].msg);
    record(LOG_WARN, msg, (size_t)len, events[ev].name, f, 2);
}

void log_event(enum log_event ev, const struct log_field *f, size_t n)
{
    if (ev >= LOG_EV_COUNT || !LOG_ON(LOG_WARN)) return;
    uint64_t now = clock_fn ? clock_fn() : mono_ns(), secs = 0, noted;
    int allow = 1;
    pthread_mutex_lock(&limit_lock);
    struct bucket *b = &buckets[ev];
    if (interval_ns) {
        if (b->tat > tau_ns && now < b->tat - tau_ns) {
            allow = 0;
            if (b->dropped++ == 0) b->first_drop = now;
            b->total++;
        } else {
            b->tat = (b->tat > now ? b->tat : now) + interval_ns;
        }
    }
    noted = take_note(b, now, &secs);
    pthread_mutex_unlock(&limit_lock);
    if (noted) note(ev, noted, secs);
    if (allow) record(LOG_WARN, events[ev].msg, strlen(events[ev].msg), events[ev].name, f, n);
}

uint64_t log_suppressed(enum log_event ev)
{
    if (ev >= LOG_EV_COUNT) return 0;
    pthread_mutex_lock(&limit_lock);
    uint64_t n = buckets[ev].total;
    pthread_mutex_unlock(&limit_lock);
    return n;
}

void log_tick(void)
{
    uint64_t now = clock_fn ? clock_fn() : mono_ns();
    for (int i = 0; i < LOG_EV_COUNT; i++) {
        uint64_t secs = 0;
        pthread_mutex_lock(&limit_lock);
        uint64_t n = take_note(&buckets[i], now, &secs);
        pthread_mutex_unlock(&limit_lock);
        if (n && LOG_ON(LOG_WARN)) note((enum log_event)i, n, secs);
    }
}
