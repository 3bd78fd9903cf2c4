/* top: `nudge top` — a live view of one broker, like top(1), from its admin endpoint.
 *
 * Every --interval it GETs /stats (counters and gauges) and /topics?top=N (the busiest topics;
 * a broker without it answers 404, shown as "not available", and is asked again each time), keeps
 * the previous /stats to turn counters into rates (delta / elapsed; none across a restart, seen
 * as a new epoch or a smaller uptime), and draws one frame: home the cursor, write each line cut
 * to the terminal's width (character by character, so a wide line never wraps and scrolls),
 * clear to the end of the line and of the screen. Nothing scrolls; a frame replaces the last.
 *
 * Terminal: no curses. The alternate screen, a hidden cursor and non-canonical no-echo input
 * (termios) while it runs; ISIG stays on so Ctrl-C is SIGINT. Signals (INT, TERM, HUP: quit;
 * WINCH: resize; TSTP: restore, stop, redraw on return) are blocked except inside ppoll, so none
 * falls between a check and the wait. Every way out restores the terminal (atexit as well).
 * When stdout is not a terminal, or with --once, it prints one frame (two samples --interval
 * apart, for the rates) without escapes and exits: 0, or 1 when the broker did not answer. */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

enum {
    TOP_ROWS_MAX = 200,      /* lines of one frame */
    TOP_LINE_MAX = 512,      /* bytes of one line before it is cut to the width */
    TOP_FETCH_MS = 1500,     /* one admin request at most */
    TOP_TOPICS_MAX = 100,    /* asked of /topics */
    TOP_DEFAULT_MS = 2000,   /* --interval */
    TOP_DEFAULT_WIDTH = 80,  /* when the width is not known */
    TOP_DEFAULT_HEIGHT = 24, /* when the height is not known */
};

static const char USAGE_TOP[] =
    "Usage: nudge top [--admin HOST:PORT] [--token-file FILE] [--interval SEC] [--once]\n"
    "\n"
    "A live view of a broker, refreshed in place like top(1): publish and delivery rates,\n"
    "connections, the busiest topics, slow consumers, coalescing and resets, from the admin\n"
    "endpoint (GET /stats and GET /topics). q or Ctrl-C quits; space refreshes now. When the\n"
    "broker does not answer the view says so and keeps trying. Lines are cut to the terminal's\n"
    "width. docs/operations.md (nudge top) says what each figure means.\n"
    "\n"
    "Options:\n"
    "  --admin HOST:PORT  admin address ([v6]:PORT for IPv6; --addr is the same)\n"
    "                     (default $NUDGE_ADMIN, else 127.0.0.1:7402)\n"
    "  --token-file FILE  the admin token, when the broker wants one\n"
    "                     (default $NUDGE_ADMIN_TOKEN)\n"
    "  --interval SEC     seconds between refreshes (default 2; rates are over this span)\n"
    "  --once             print one view (two samples SEC apart) and exit; the default when\n"
    "                     stdout is not a terminal\n"
    "  -h, --help         show this help\n"
    "\n"
    "Exit status: 0 (q, Ctrl-C, or --once with an answer), 1 (--once and the broker did not\n"
    "answer), 2 usage error.\n";

/* One look at the broker. */
struct top_sample {
    int ok;         /* /stats answered 200 with JSON */
    int64_t at_ms;  /* monotonic time of the answer */
    time_t wall;    /* and wall-clock time */
    json_t *stats;  /* /stats, or NULL */
    json_t *topics; /* /topics' "topics" array (a reference into topics_doc), or NULL */
    json_t *topics_doc;
    double window_s;   /* /topics' window_s */
    int topics_status; /* HTTP status of /topics, or -1 when it did not answer */
    int stats_status;  /* HTTP status of a /stats that failed (401: a token is wanted), or -1 */
    char err[320];     /* why /stats gave nothing (ok == 0) */
};

struct top {
    const char *addr;
    char *token;
    int interval_ms;
    int width, height;
    int tty;
    struct top_sample prev, cur;
    struct top_sample last_ok; /* the newest answered sample, shown while unreachable */
    char lines[TOP_ROWS_MAX][TOP_LINE_MAX];
    int nlines;
};

/* ---- terminal ----------------------------------------------------------------------------- */

static struct termios top_saved_tio;
static int top_tio_saved, top_screen_on;
static volatile sig_atomic_t top_quit, top_winch, top_tstp;

static void top__on_signal(int sig)
{
    if (sig == SIGWINCH)
        top_winch = 1;
    else if (sig == SIGTSTP)
        top_tstp = 1;
    else
        top_quit = 1;
}

/* Leave the alternate screen, show the cursor, give the terminal its settings back. Safe to
 * call twice. */
static void top__restore(void)
{
    if (top_screen_on) {
        static const char seq[] = "\x1b[?25h\x1b[?1049l";
        ssize_t n = write(STDOUT_FILENO, seq, sizeof seq - 1);
        (void)n;
        top_screen_on = 0;
    }
    if (top_tio_saved) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &top_saved_tio);
        top_tio_saved = 0;
    }
}

/* Non-canonical, no echo, signals kept (Ctrl-C stays SIGINT); the alternate screen. */
static void top__raw(void)
{
    struct termios t;
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &top_saved_tio) == 0) {
        t = top_saved_tio;
        t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
        t.c_cc[VMIN] = 0;
        t.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &t) == 0) top_tio_saved = 1;
    }
    static const char seq[] = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J";
    ssize_t n = write(STDOUT_FILENO, seq, sizeof seq - 1);
    (void)n;
    top_screen_on = 1;
}

static void top__size(struct top *t)
{
    struct winsize ws;
    t->width = TOP_DEFAULT_WIDTH;
    t->height = TOP_DEFAULT_HEIGHT;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
        t->width = ws.ws_col;
        t->height = ws.ws_row;
    } else { /* not a terminal: $COLUMNS if set, else whole lines */
        const char *c = getenv("COLUMNS");
        long v;
        t->width = TOP_LINE_MAX;
        if (c && cli_parse_count(c, TOP_LINE_MAX, &v) == 0) t->width = (int)v;
    }
}

/* ---- sampling ----------------------------------------------------------------------------- */

static int64_t top__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void top__sample_clear(struct top_sample *s)
{
    json_decref(s->stats);
    json_decref(s->topics_doc);
    memset(s, 0, sizeof *s);
}

static void top__sample_copy(struct top_sample *dst, const struct top_sample *src)
{
    top__sample_clear(dst);
    *dst = *src;
    json_incref(dst->stats);
    json_incref(dst->topics_doc);
}

/* GET path as JSON: 0 with *doc, or -1 with err set; *status gets the HTTP status or -1. */
static int top__get_json(struct top *t, const char *path, json_t **doc, int *status, char *err,
                         size_t cap)
{
    struct cli_http res;
    *doc = NULL;
    *status = -1;
    if (cli_admin_get(t->addr, path, t->token, TOP_FETCH_MS, &res, err, cap) != 0) return -1;
    *status = res.status;
    if (res.status != 200) {
        snprintf(err, cap, "GET %s: %s", path, res.line);
        free(res.body);
        return -1;
    }
    json_error_t je;
    *doc = json_loadb(res.body, res.len, 0, &je);
    free(res.body);
    if (!*doc) {
        snprintf(err, cap, "GET %s: not JSON (%s)", path, je.text);
        return -1;
    }
    return 0;
}

static void top__fetch(struct top *t, int want_topics)
{
    struct top_sample *s = &t->cur;
    top__sample_clear(s);
    int status;
    char err[320];
    if (top__get_json(t, "/stats", &s->stats, &status, s->err, sizeof s->err) != 0) {
        s->stats_status = status;
        s->at_ms = top__now_ms();
        s->wall = time(NULL);
        return;
    }
    s->ok = 1;
    s->at_ms = top__now_ms();
    s->wall = time(NULL);
    s->topics_status = -1;
    if (!want_topics) return;
    char path[64];
    snprintf(path, sizeof path, "/topics?top=%d", TOP_TOPICS_MAX);
    if (top__get_json(t, path, &s->topics_doc, &s->topics_status, err, sizeof err) == 0) {
        json_t *arr = json_object_get(s->topics_doc, "topics");
        s->topics = json_is_array(arr) ? arr : NULL;
        s->window_s = json_number_value(json_object_get(s->topics_doc, "window_s"));
    }
}

/* A number at a dotted path of a stats object, or -1 when absent. */
static double top__num(const json_t *o, const char *path)
{
    char key[64];
    const char *p = path;
    while (o) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n >= sizeof key) return -1;
        memcpy(key, p, n);
        key[n] = '\0';
        o = json_object_get(o, key);
        if (!dot) break;
        p = dot + 1;
    }
    return json_is_number(o) ? json_number_value(o) : -1;
}

/* Whether prev and cur are of one broker run, so counters can be subtracted. */
static int top__same_run(const struct top_sample *a, const struct top_sample *b)
{
    if (!a->ok || !b->ok || b->at_ms <= a->at_ms) return 0;
    const char *ea = json_string_value(json_object_get(a->stats, "epoch"));
    const char *eb = json_string_value(json_object_get(b->stats, "epoch"));
    if (!ea || !eb || strcmp(ea, eb) != 0) return 0;
    return top__num(b->stats, "uptime_s") >= top__num(a->stats, "uptime_s");
}

/* Per-second rate of counter path between prev and cur, or -1 when it cannot be told. */
static double top__rate(const struct top *t, const char *path)
{
    if (!top__same_run(&t->prev, &t->cur)) return -1;
    double a = top__num(t->prev.stats, path), b = top__num(t->cur.stats, path);
    if (a < 0 || b < a) return -1;
    return (b - a) * 1000.0 / (double)(t->cur.at_ms - t->prev.at_ms);
}

/* ---- drawing ------------------------------------------------------------------------------ */

static void top__line(struct top *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void top__line(struct top *t, const char *fmt, ...)
{
    if (t->nlines == TOP_ROWS_MAX) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->lines[t->nlines++], TOP_LINE_MAX, fmt, ap);
    va_end(ap);
}

/* "12.5/s", "250/s", "-" (unknown). */
static const char *top__fmt_rate(double r, char *buf, size_t cap)
{
    if (r < 0)
        snprintf(buf, cap, "-/s");
    else if (r < 100)
        snprintf(buf, cap, "%.1f/s", r);
    else
        snprintf(buf, cap, "%.0f/s", r);
    return buf;
}

/* Bytes per second with a binary unit. */
static const char *top__fmt_bytes(double r, char *buf, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB"};
    if (r < 0) {
        snprintf(buf, cap, "-/s");
        return buf;
    }
    int u = 0;
    while (r >= 1024 && u < 3) {
        r /= 1024;
        u++;
    }
    snprintf(buf, cap, u ? "%.1f %s/s" : "%.0f %s/s", r, unit[u]);
    return buf;
}

static const char *top__fmt_uptime(double s, char *buf, size_t cap)
{
    long v = s < 0 ? 0 : (long)s;
    if (v < 3600)
        snprintf(buf, cap, "%ldm%02lds", v / 60, v % 60);
    else if (v < 86400)
        snprintf(buf, cap, "%ldh%02ldm", v / 3600, v / 60 % 60);
    else
        snprintf(buf, cap, "%ldd%02ldh", v / 86400, v / 3600 % 24);
    return buf;
}

/* An integer figure, "-" when absent. */
static const char *top__fmt_int(const json_t *st, const char *path, char *buf, size_t cap)
{
    double v = top__num(st, path);
    if (v < 0)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.0f", v);
    return buf;
}

static void top__build(struct top *t)
{
    const struct top_sample *s = t->cur.ok ? &t->cur : &t->last_ok;
    const json_t *st = s->stats;
    char a[32], b[32], c[32], d[32], e[32], f[32], when[16];
    struct tm tm;
    time_t now = time(NULL);
    localtime_r(&now, &tm);
    strftime(when, sizeof when, "%H:%M:%S", &tm);
    t->nlines = 0;
    if (st) {
        const char *ver = json_string_value(json_object_get(st, "version"));
        const char *ep = json_string_value(json_object_get(st, "epoch"));
        top__line(t, "nudge top - %s - nudged %s, up %s, epoch %s - %s", t->addr, ver ? ver : "?",
                  top__fmt_uptime(top__num(st, "uptime_s"), a, sizeof a), ep ? ep : "?", when);
    } else {
        top__line(t, "nudge top - %s - %s", t->addr, when);
    }
    if (!t->cur.ok) {
        char as_of[16] = "";
        if (t->last_ok.ok) {
            localtime_r(&t->last_ok.wall, &tm);
            strftime(as_of, sizeof as_of, "%H:%M:%S", &tm);
        }
        top__line(t, "%s%s%s%s: %s; retrying every %g s",
                  t->cur.stats_status > 0 ? "NO STATS" : "BROKER NOT ANSWERING",
                  as_of[0] ? " (figures as of " : "", as_of, as_of[0] ? ")" : "", t->cur.err,
                  t->interval_ms / 1000.0);
    } else if (t->tty) {
        top__line(t, "every %g s; q quits, space refreshes", t->interval_ms / 1000.0);
    }
    if (!st) return;
    int live = t->cur.ok; /* rates only from two answers in a row */
#define RATE(path) (live ? top__rate(t, path) : -1)
    top__line(t, "%s", "");
    top__line(t, "Rates        publishes %s  hints %s  deliveries %s  in %s  out %s",
              top__fmt_rate(RATE("publishes"), a, sizeof a),
              top__fmt_rate(RATE("hints"), b, sizeof b),
              top__fmt_rate(RATE("deliveries"), c, sizeof c),
              top__fmt_bytes(RATE("bytes_in"), d, sizeof d),
              top__fmt_bytes(RATE("bytes_out"), e, sizeof e));
    top__line(t, "Totals       publishes %s  hints %s  deliveries %s",
              top__fmt_int(st, "publishes", a, sizeof a), top__fmt_int(st, "hints", b, sizeof b),
              top__fmt_int(st, "deliveries", c, sizeof c));
    top__line(t, "Connections  ws %s  pub %s  http %s  admin %s  handshaking %s",
              top__fmt_int(st, "connections.ws", a, sizeof a),
              top__fmt_int(st, "connections.pub", b, sizeof b),
              top__fmt_int(st, "connections.http", c, sizeof c),
              top__fmt_int(st, "connections.admin", d, sizeof d),
              top__fmt_int(st, "connections.ws_pending", e, sizeof e));
    top__line(t, "Subscribed   subscriptions %s  topics %s  workers %s",
              top__fmt_int(st, "subscriptions", a, sizeof a),
              top__fmt_int(st, "topics", b, sizeof b), top__fmt_int(st, "workers", c, sizeof c));
    top__line(t, "Slow         queued %s  slow closes %s (%s)  errors %s (%s)",
              top__fmt_int(st, "queued", a, sizeof a), top__fmt_int(st, "slow_closes", b, sizeof b),
              top__fmt_rate(RATE("slow_closes"), c, sizeof c),
              top__fmt_int(st, "errors", d, sizeof d), top__fmt_rate(RATE("errors"), e, sizeof e));
    top__line(t, "Coalescing   coalesced %s  total %s",
              top__fmt_rate(RATE("coalesced"), a, sizeof a),
              top__fmt_int(st, "coalesced", b, sizeof b));
    top__line(t, "Resets       resets %s  total %s  catch-up %s  replayed %s",
              top__fmt_rate(RATE("resets"), a, sizeof a), top__fmt_int(st, "resets", b, sizeof b),
              top__fmt_rate(RATE("caught_up"), c, sizeof c),
              top__fmt_rate(RATE("replayed"), f, sizeof f));
#undef RATE
    top__line(t, "%s", "");
    if (!s->topics) {
        if (s->topics_status == 404)
            top__line(t, "Top topics   not available (this broker has no GET /topics)");
        else if (s->topics_status > 0)
            top__line(t, "Top topics   not available (GET /topics answered %d)", s->topics_status);
        else
            top__line(t, "Top topics   not available (GET /topics did not answer)");
        return;
    }
    /* The topic column takes what the numbers leave. */
    size_t n = json_array_size(s->topics), longest = 12;
    for (size_t i = 0; i < n; i++) {
        const char *nm = json_string_value(json_object_get(json_array_get(s->topics, i), "topic"));
        if (nm && strlen(nm) > longest) longest = strlen(nm);
    }
    int tw = t->width - (9 + 1 + 10 + 1 + 5) - 1;
    if (tw > (int)longest) tw = (int)longest;
    if (tw < 12) tw = 12;
    if (tw > TOP_LINE_MAX - 64) tw = TOP_LINE_MAX - 64;
    top__line(t, "%-*s %9s %10s %5s", tw, "TOPIC", "RATE/S", "SEQ", "SUBS");
    if (n == 0) top__line(t, "(no topic published in the last %g s)", s->window_s);
    for (size_t i = 0; i < n && t->nlines < t->height && t->nlines < TOP_ROWS_MAX; i++) {
        const json_t *o = json_array_get(s->topics, i);
        const char *name = json_string_value(json_object_get(o, "topic"));
        double rate = json_number_value(json_object_get(o, "rate"));
        json_int_t seq = json_integer_value(json_object_get(o, "seq"));
        json_int_t subs = json_integer_value(json_object_get(o, "subscribers"));
        /* Cut the name to its column, marking the cut with '~'. */
        char nm[TOP_LINE_MAX];
        size_t len = name ? strlen(name) : 0;
        if ((int)len > tw) {
            snprintf(nm, sizeof nm, "%.*s~", tw - 1, name);
        } else {
            snprintf(nm, sizeof nm, "%s", name ? name : "?");
        }
        top__line(t, "%-*s %9.2f %10" PRId64 " %5" PRId64, tw, nm, rate, (int64_t)seq,
                  (int64_t)subs);
    }
}

/* Append line cut to width characters (UTF-8 sequences kept whole) to out. Returns the number
 * of characters written. */
static int top__cut(const char *line, int width, char *out, size_t cap, size_t *len)
{
    int cols = 0;
    const unsigned char *p = (const unsigned char *)line;
    while (*p && cols < width) {
        size_t n = 1;
        if (*p >= 0xf0)
            n = 4;
        else if (*p >= 0xe0)
            n = 3;
        else if (*p >= 0xc0)
            n = 2;
        if (*p < 0x20 || *p == 0x7f) { /* never send a control character to the terminal */
            if (*len + 1 < cap) out[(*len)++] = '?';
            p++;
            cols++;
            continue;
        }
        size_t k = 0;
        while (k < n && p[k])
            k++;
        if (*len + k >= cap) break;
        memcpy(out + *len, p, k);
        *len += k;
        p += k;
        cols++;
    }
    return cols;
}

static void top__draw(struct top *t)
{
    static char out[TOP_ROWS_MAX * (TOP_LINE_MAX + 16) + 64];
    size_t len = 0;
    int rows = t->tty ? t->height : t->nlines;
    if (rows > t->nlines && !t->tty) rows = t->nlines;
    if (t->tty) {
        memcpy(out, "\x1b[H", 3);
        len = 3;
    }
    for (int r = 0; r < rows && r < t->nlines; r++) {
        int cols = top__cut(t->lines[r], t->width, out, sizeof out - 16, &len);
        /* A full line leaves the cursor in the last column: erasing there would take the last
         * character, and a newline is not needed to stay on the screen's last row. */
        if (t->tty && cols < t->width) {
            memcpy(out + len, "\x1b[K", 3);
            len += 3;
        }
        if (!t->tty || r + 1 < rows) {
            if (t->tty) out[len++] = '\r';
            out[len++] = '\n';
        }
    }
    if (t->tty) {
        memcpy(out + len, "\x1b[J", 3);
        len += 3;
    }
    for (size_t off = 0; off < len;) {
        ssize_t n = write(STDOUT_FILENO, out + off, len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += (size_t)n;
    }
}

/* ---- the loop ----------------------------------------------------------------------------- */

static void top__refresh(struct top *t)
{
    top__sample_copy(&t->prev, &t->cur);
    top__fetch(t, 1);
    if (t->cur.ok) top__sample_copy(&t->last_ok, &t->cur);
    top__build(t);
    top__draw(t);
}

static int top__once(struct top *t)
{
    top__fetch(t, 0);
    if (!t->cur.ok) {
        cli_err("top: %s", t->cur.err);
        return CLI_FAIL;
    }
    struct timespec ts = {.tv_sec = t->interval_ms / 1000,
                          .tv_nsec = (long)(t->interval_ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !top_quit) {
    }
    top__sample_copy(&t->prev, &t->cur);
    top__fetch(t, 1);
    if (!t->cur.ok) {
        cli_err("top: %s", t->cur.err);
        return CLI_FAIL;
    }
    top__build(t);
    top__draw(t);
    return CLI_OK;
}

static int top__live(struct top *t)
{
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGWINCH);
    sigaddset(&block, SIGTSTP);
    sigprocmask(SIG_BLOCK, &block, &old);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = top__on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    sigaction(SIGTSTP, &sa, NULL);
    atexit(top__restore);

    top__raw();
    top__size(t);
    int keys_tty = isatty(STDIN_FILENO);
    int64_t next = 0;
    while (!top_quit) {
        int64_t now = top__now_ms();
        if (now >= next) {
            top__refresh(t);
            next = top__now_ms() + t->interval_ms;
            continue;
        }
        int64_t left = next - now;
        struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (long)(left % 1000) * 1000000};
        /* Keys only from a terminal: stdin from /dev/null or a pipe would read as EOF at once. */
        struct pollfd pfd = {.fd = keys_tty ? STDIN_FILENO : -1, .events = POLLIN};
        int r = ppoll(&pfd, 1, &ts, &old);
        if (top_quit) break;
        if (top_tstp) { /* Ctrl-Z: give the terminal back while stopped */
            top_tstp = 0;
            top__restore();
            kill(getpid(), SIGSTOP);
            top__raw();
            top_winch = 1;
        }
        if (top_winch) {
            top_winch = 0;
            top__size(t);
            top__build(t);
            top__draw(t);
        }
        if (r > 0 && (pfd.revents & POLLIN)) {
            char keys[64];
            ssize_t n = read(STDIN_FILENO, keys, sizeof keys);
            if (n == 0) break; /* the terminal went away */
            for (ssize_t i = 0; i < n; i++) {
                if (keys[i] == 'q' || keys[i] == 'Q' || keys[i] == 3 /* ^C without ISIG */)
                    top_quit = 1;
                else if (keys[i] == ' ')
                    next = 0;
            }
        } else if (r > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))) {
            break;
        }
    }
    top__restore();
    sigprocmask(SIG_SETMASK, &old, NULL);
    return CLI_OK;
}

int cli_top(int argc, char **argv)
{
    struct top *t = calloc(1, sizeof *t);
    if (!t) {
        cli_err("out of memory");
        return CLI_FAIL;
    }
    const char *tfile = NULL, *ival = NULL;
    int once = 0, r, rc = CLI_USAGE;
    t->addr = cli_env_or("NUDGE_ADMIN", CLI_ADMIN_ADDR);
    t->interval_ms = TOP_DEFAULT_MS;
    for (int i = 1; i < argc;) {
        if (cli_is_help(argv[i])) {
            fputs(USAGE_TOP, stdout);
            rc = CLI_OK;
            goto out;
        }
        if (strcmp(argv[i], "--once") == 0) {
            once = 1;
            i++;
            continue;
        }
        if ((r = cli_opt("top", argc, argv, &i, "--admin", &t->addr)) ||
            (r = cli_opt("top", argc, argv, &i, "--addr", &t->addr)) ||
            (r = cli_opt("top", argc, argv, &i, "--token-file", &tfile)) ||
            (r = cli_opt("top", argc, argv, &i, "--interval", &ival))) {
            if (r < 0) goto out;
            continue;
        }
        if (argv[i][0] == '-') {
            cli_usage_err("top", "unknown option %s", argv[i]);
            goto out;
        }
        cli_usage_err("top", "unexpected argument \"%s\"", argv[i]);
        goto out;
    }
    if (ival && (cli_parse_seconds(ival, &t->interval_ms) != 0 || t->interval_ms < 100)) {
        cli_usage_err("top", "--interval wants a number of seconds >= 0.1, not \"%s\"", ival);
        goto out;
    }
    if (cli_addr_check(t->addr) != 0) {
        cli_usage_err("top", "bad address \"%s\" (want HOST:PORT or [v6]:PORT)", t->addr);
        goto out;
    }
    int terr = 0;
    t->token = cli_secret("top", tfile, "NUDGE_ADMIN_TOKEN", &terr);
    if (terr) goto out;
    signal(SIGPIPE, SIG_IGN);
    t->tty = !once && isatty(STDOUT_FILENO);
    if (t->tty) {
        rc = top__live(t);
    } else {
        top__size(t);
        t->height = TOP_ROWS_MAX;
        rc = top__once(t);
    }
out:
    top__sample_clear(&t->prev);
    top__sample_clear(&t->cur);
    top__sample_clear(&t->last_ok);
    free(t->token);
    free(t);
    return rc;
}
