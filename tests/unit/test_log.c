/* log (broker/net/log.h): the three formats write one line per record whatever the values hold
 * — quotes, backslashes, newlines, control characters, bytes that are not UTF-8 — and JSON
 * lines parse with jansson back to the values given (bad bytes as U+FFFD); logfmt lines parse
 * back the same with a logfmt reader; the event limiter lets a burst through, drops the rest,
 * counts them and says so once a second; the level is one process-wide switch. Lines are
 * captured from a pipe (log_set_fd); the limiter runs on a fake clock (log_set_clock). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

static int rd = -1;

static void capture(void)
{
    int p[2];
    cr_assert_eq(pipe2(p, O_NONBLOCK), 0);
    rd = p[0];
    log_set_fd(p[1]);
    log_set_level(LOG_DEBUG);
}

/* Everything written so far (malloc'd, NUL-terminated). */
static char *captured(void)
{
    size_t cap = 1 << 20, n = 0;
    char *b = malloc(cap);
    ssize_t r;
    while ((r = read(rd, b + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    b[n] = '\0';
    return b;
}

static size_t count(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

TestSuite(log, .init = capture);

/* What a peer may send us, and what JSON and logfmt must give back (bad bytes as U+FFFD). */
static const char hostile[] = "a \"quoted\" \\back\\ slash\nnew line\r\ttab \x1b[31mred\x7f"
                              " bad:\xff\xfe cut:\xe2\x82 overlong:\xc0\xaf surrogate:\xed\xa0\x80"
                              " ok:\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 key=value";
static const char decoded[] = "a \"quoted\" \\back\\ slash\nnew line\r\ttab \x1b[31mred\x7f"
                              " bad:\xef\xbf\xbd\xef\xbf\xbd cut:\xef\xbf\xbd\xef\xbf\xbd"
                              " overlong:\xef\xbf\xbd\xef\xbf\xbd"
                              " surrogate:\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                              " ok:\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 key=value";

static void write_hostile(void)
{
    LOGKV(LOG_WARN, "origin \"refused\"\n", LOG_S("conn", "1a"),
          LOG_B("origin", hostile, sizeof(hostile) - 1), LOG_N("limit", -42), LOG_S("empty", ""),
          LOG_B("nul", "a\0b", 3));
}

Test(log, json_lines_parse_back_to_the_values_whatever_bytes_they_held)
{
    log_set_format(LOG_JSON);
    write_hostile();
    char *out = captured();
    cr_assert_eq(count(out, "\n"), 1, "one line: %s", out);
    json_error_t e;
    json_t *o = json_loads(out, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &e);
    cr_assert_not_null(o, "not JSON (%s): %s", e.text, out);
    cr_expect_str_eq(json_string_value(json_object_get(o, "level")), "warn");
    cr_expect_str_eq(json_string_value(json_object_get(o, "msg")), "origin \"refused\"\n");
    cr_expect_str_eq(json_string_value(json_object_get(o, "conn")), "1a");
    json_t *origin = json_object_get(o, "origin");
    cr_assert(json_is_string(origin));
    cr_expect_eq(json_string_length(origin), sizeof(decoded) - 1);
    cr_expect_eq(memcmp(json_string_value(origin), decoded, sizeof(decoded) - 1), 0, "origin: %s",
                 json_string_value(origin));
    cr_expect(json_is_integer(json_object_get(o, "limit")), "numbers are bare");
    cr_expect_eq(json_integer_value(json_object_get(o, "limit")), -42);
    cr_expect_str_eq(json_string_value(json_object_get(o, "empty")), "");
    json_t *nul = json_object_get(o, "nul");
    cr_expect_eq(json_string_length(nul), 3);
    cr_expect_eq(memcmp(json_string_value(nul), "a\0b", 3), 0);
    const char *ts = json_string_value(json_object_get(o, "ts"));
    cr_assert_not_null(ts);
    cr_expect_eq(strlen(ts), 24, "ts %s", ts); /* 2026-12-02T08:00:00.123Z */
    cr_expect_eq(ts[23], 'Z');
    for (const char *p = out; *p; p++)
        cr_expect((unsigned char)*p >= 0x20 || *p == '\n', "raw control byte %02x", *p);
    json_decref(o);
    free(out);
}

/* A logfmt reader: key=value or key="escaped value" pairs (the escapes log.c writes). Returns
 * the decoded value of key (malloc'd; *len its length) or NULL. */
static char *logfmt_get(const char *line, const char *key, size_t *len)
{
    const char *p = line;
    while (*p && *p != '\n') {
        while (*p == ' ')
            p++;
        const char *k = p;
        while (*p && *p != '=' && *p != ' ' && *p != '\n')
            p++;
        size_t klen = (size_t)(p - k);
        if (*p != '=') return NULL;
        p++;
        char *v = malloc(strlen(p) + 1);
        size_t n = 0;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p != '\\') {
                    v[n++] = *p;
                    continue;
                }
                p++;
                if (*p == 'n')
                    v[n++] = '\n';
                else if (*p == 'r')
                    v[n++] = '\r';
                else if (*p == 't')
                    v[n++] = '\t';
                else if (*p == 'u') {
                    unsigned c;
                    sscanf(p + 1, "%4x", &c);
                    p += 4;
                    if (c == 0xfffd) {
                        memcpy(v + n, "\xef\xbf\xbd", 3);
                        n += 3;
                    } else
                        v[n++] = (char)c;
                } else
                    v[n++] = *p;
            }
            if (*p == '"') p++;
        } else {
            while (*p && *p != ' ' && *p != '\n')
                v[n++] = *p++;
        }
        v[n] = '\0';
        if (klen == strlen(key) && !strncmp(k, key, klen)) {
            if (len) *len = n;
            return v;
        }
        free(v);
    }
    return NULL;
}

Test(log, logfmt_lines_read_back_to_the_values_whatever_bytes_they_held)
{
    log_set_format(LOG_LOGFMT);
    write_hostile();
    char *out = captured();
    cr_assert_eq(count(out, "\n"), 1, "one line: %s", out);
    cr_expect_eq(strncmp(out, "ts=", 3), 0, "%s", out);
    cr_expect(strstr(out, " level=warn msg=\"origin \\\"refused\\\"\\n\" conn=1a "), "%s", out);
    size_t n;
    char *v = logfmt_get(out, "origin", &n);
    cr_assert_not_null(v, "%s", out);
    cr_expect_eq(n, sizeof(decoded) - 1);
    cr_expect_eq(memcmp(v, decoded, n), 0, "origin: %s", v);
    free(v);
    v = logfmt_get(out, "limit", NULL);
    cr_expect_str_eq(v, "-42");
    free(v);
    v = logfmt_get(out, "empty", NULL);
    cr_expect_str_eq(v, "");
    free(v);
    cr_expect(strstr(out, " empty=\"\" "), "an empty value is quoted: %s", out);
    for (const char *p = out; *p; p++) /* well-formed UTF-8 stays as it is */
        cr_expect(((unsigned char)*p >= 0x20 && *p != 0x7f) || *p == '\n',
                  "raw control byte %02x in logfmt", (unsigned char)*p);
    free(out);
}

Test(log, text_keeps_the_human_head_and_escapes_what_would_break_the_line)
{
    log_set_format(LOG_TEXT);
    log_emit(LOG_INFO, "epoch %s, pid %d", "abc", 7);
    write_hostile();
    char *out = captured();
    cr_assert_eq(count(out, "\n"), 2, "two lines: %s", out);
    cr_expect(strstr(out, "Z nudged info: epoch abc, pid 7\n"), "%s", out);
    cr_expect(strstr(out, "Z nudged warn: origin \"refused\"\\n conn=1a origin=\"a \\\"quoted"),
              "%s", out);
    cr_expect(!strchr(out, '\x1b') && !strchr(out, '\r') && !strchr(out, '\t'), "%s", out);
    free(out);
}

Test(log, a_value_past_its_bound_is_cut_and_the_line_stays_one_valid_json_object)
{
    log_set_format(LOG_JSON);
    static char big[4 * LOG_LINE_MAX];
    memset(big, '\x01', sizeof(big)); /* six bytes each once escaped */
    LOGKV(LOG_WARN, "big", LOG_B("a", big, sizeof(big)), LOG_B("b", big, sizeof(big)),
          LOG_B("c", big, sizeof(big)), LOG_B("d", big, sizeof(big)), LOG_N("n", 1));
    char *out = captured();
    cr_assert_eq(count(out, "\n"), 1);
    cr_expect_leq(strlen(out), LOG_LINE_MAX);
    json_t *o = json_loads(out, 0, NULL);
    cr_assert_not_null(o, "%s", out);
    cr_expect_eq(json_string_length(json_object_get(o, "a")), LOG_VALUE_MAX);
    json_decref(o);
    free(out);
}

Test(log, formats_and_levels_parse_by_name)
{
    cr_expect_eq(log_format_parse("text"), LOG_TEXT);
    cr_expect_eq(log_format_parse("logfmt"), LOG_LOGFMT);
    cr_expect_eq(log_format_parse("json"), LOG_JSON);
    cr_expect_eq(log_format_parse("JSON"), -1);
    cr_expect_eq(log_level_parse("warn"), LOG_WARN);
    cr_expect_eq(log_level_parse("verbose"), -1);
}

Test(log, the_level_is_one_switch_for_every_caller)
{
    log_set_format(LOG_LOGFMT);
    log_set_level(LOG_WARN);
    LOGF(LOG_INFO, "not this");
    LOGKV(LOG_INFO, "nor this", LOG_N("n", 1));
    LOGF(LOG_WARN, "this");
    log_set_level(LOG_ERROR);
    LOG_EVENT(LOG_EV_AUTH, LOG_S("conn", "1"));
    cr_expect_eq(log_suppressed(LOG_EV_AUTH), 0, "an event under the level is not suppressed");
    log_set_level(LOG_DEBUG);
    LOGF(LOG_DEBUG, "and this");
    char *out = captured();
    cr_expect_eq(count(out, "\n"), 2, "%s", out);
    cr_expect(strstr(out, "msg=this\n") && strstr(out, "msg=\"and this\"\n"), "%s", out);
    free(out);
}

static uint64_t fake_ns;
static uint64_t fake_clock(void)
{
    return fake_ns;
}

Test(log, events_pass_in_a_burst_then_at_the_rate_and_the_dropped_are_counted_and_noted)
{
    log_set_format(LOG_JSON);
    log_set_clock(fake_clock);
    log_set_rate(10); /* bursts of 50 */
    fake_ns = 1000000000000ull;
    for (int i = 0; i < 1000; i++)
        LOG_EVENT(LOG_EV_AUTH, LOG_S("conn", "1a"), LOG_S("reason", "signature"));
    LOG_EVENT(LOG_EV_SLOW, LOG_S("conn", "2b")); /* another kind has its own bucket */
    char *out = captured();
    cr_expect_eq(count(out, "\"event\":\"auth_failed\""), 50, "the burst");
    cr_expect_eq(count(out, "\"event\":\"slow_consumer\""), 1);
    cr_expect_eq(count(out, "suppressed"), 0, "no note before a second has passed");
    cr_expect_eq(log_suppressed(LOG_EV_AUTH), 950);
    cr_expect_eq(log_suppressed(LOG_EV_SLOW), 0);
    free(out);

    fake_ns += 100000000; /* 0.1 s: one more token */
    LOG_EVENT(LOG_EV_AUTH, LOG_S("conn", "1a"));
    LOG_EVENT(LOG_EV_AUTH, LOG_S("conn", "1a"));
    out = captured();
    cr_expect_eq(count(out, "\"event\":\"auth_failed\""), 1, "%s", out);
    cr_expect_eq(log_suppressed(LOG_EV_AUTH), 951);
    free(out);

    log_tick(); /* 0.1 s since the first drop: too early */
    out = captured();
    cr_expect_str_eq(out, "");
    free(out);

    fake_ns += 1000000000;
    log_tick();
    log_tick(); /* one note for the lot */
    out = captured();
    cr_expect_eq(count(out, "\n"), 1, "%s", out);
    json_t *o = json_loads(out, 0, NULL);
    cr_assert_not_null(o, "%s", out);
    cr_expect_str_eq(json_string_value(json_object_get(o, "msg")), "log lines suppressed");
    cr_expect_str_eq(json_string_value(json_object_get(o, "event")), "auth_failed");
    cr_expect_str_eq(json_string_value(json_object_get(o, "level")), "warn");
    cr_expect_eq(json_integer_value(json_object_get(o, "suppressed")), 951);
    cr_expect_eq(json_integer_value(json_object_get(o, "seconds")), 2);
    json_decref(o);
    free(out);

    /* A quiet while later the bucket is full again. */
    fake_ns += 10000000000ull;
    for (int i = 0; i < 60; i++)
        LOG_EVENT(LOG_EV_AUTH, LOG_S("conn", "1a"));
    out = captured();
    cr_expect_eq(count(out, "\"event\":\"auth_failed\""), 50);
    free(out);
    cr_expect_eq(log_suppressed(LOG_EV_AUTH), 961);
}

Test(log, a_flood_gets_its_note_with_the_next_event_too)
{
    log_set_format(LOG_LOGFMT);
    log_set_clock(fake_clock);
    log_set_rate(1); /* bursts of 5 */
    fake_ns = 5000000000ull;
    for (int i = 0; i < 8; i++)
        LOG_EVENT(LOG_EV_CONNS, LOG_N("limit", 3));
    fake_ns += 2000000000ull;
    LOG_EVENT(LOG_EV_CONNS, LOG_N("limit", 3));
    char *out = captured();
    cr_expect_eq(count(out, "event=max_conns limit=3"), 6, "%s", out);
    cr_expect(strstr(out, "msg=\"log lines suppressed\" event=max_conns suppressed=3 seconds=2\n"),
              "%s", out);
    cr_expect_lt(strstr(out, "suppressed=3"), strrchr(strstr(out, "suppressed=3"), 'Z'),
                 "the note comes before the event that brought it");
    free(out);
}

Test(log, rate_zero_lets_every_event_through)
{
    log_set_format(LOG_LOGFMT);
    log_set_rate(0);
    for (int i = 0; i < 300; i++)
        LOG_EVENT(LOG_EV_TIMEOUT, LOG_S("what", "x"));
    char *out = captured();
    cr_expect_eq(count(out, "event=handshake_timeout"), 300);
    cr_expect_eq(log_suppressed(LOG_EV_TIMEOUT), 0);
    free(out);
}

Test(log, a_peer_field_is_the_sockets_remote_address)
{
    log_set_format(LOG_LOGFMT);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(l, 1), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &al), 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
    int s = accept(l, NULL, NULL);
    struct sockaddr_in me;
    socklen_t ml = sizeof(me);
    getsockname(c, (struct sockaddr *)&me, &ml);
    LOGKV(LOG_WARN, "p", LOG_PEER(s), LOG_PEER(-1));
    char *out = captured(), want[64];
    snprintf(want, sizeof want, " peer=127.0.0.1:%u peer=-\n", ntohs(me.sin_port));
    cr_expect(strstr(out, want), "want '%s' in %s", want, out);
    free(out);
    close(s);
    close(c);
    close(l);
}

Test(log, every_event_kind_has_its_suppressed_series_in_metrics)
{
    for (int e = 0; e < LOG_EV_COUNT; e++) {
        char label[64];
        snprintf(label, sizeof label, "event=\"%s\"", log_event_name((enum log_event)e));
        int found = 0;
        for (size_t i = 0; i < metrics_table.nrows; i++) {
            const struct metrics_desc *r = &metrics_table.rows[i];
            if (!strcmp(r->name, "nudge_log_suppressed_total") && r->labels &&
                !strcmp(r->labels, label))
                found = r->slot == (uint32_t)(METRICS_LOG_SUPPRESSED + e);
        }
        cr_expect(found, "no nudge_log_suppressed_total{%s} at its slot", label);
    }
}

/* Lines longer than a pipe writes atomically (PIPE_BUF, 4 KiB), from several threads at once:
 * each arrives whole (one write under the log's mutex), none is cut into another. */
struct writer {
    int id;
};

static void *write_lines(void *arg)
{
    const struct writer *w = arg;
    char fill[LOG_VALUE_MAX]; /* ten of them: a line of ~5.3 KB */
    memset(fill, 'a' + w->id, sizeof(fill));
#define F(k) LOG_B(k, fill, sizeof(fill))
    for (int i = 0; i < 200; i++)
        LOGKV(LOG_INFO, "line", LOG_N("writer", w->id), LOG_N("i", i), F("f0"), F("f1"), F("f2"),
              F("f3"), F("f4"), F("f5"), F("f6"), F("f7"), F("f8"), F("f9"));
#undef F
    return NULL;
}

static void *drain(void *arg)
{
    FILE *f = fdopen(*(int *)arg, "r");
    char *line = NULL;
    size_t cap = 0, *bad = calloc(1, sizeof(size_t) * 2);
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        bad[1]++;
        if (!o) {
            bad[0]++;
            continue;
        }
        const char *fill = json_string_value(json_object_get(o, "f9"));
        int w = (int)json_integer_value(json_object_get(o, "writer"));
        if (!fill || strlen(fill) != LOG_VALUE_MAX) bad[0]++;
        for (size_t i = 0; fill && fill[i]; i++)
            if (fill[i] != 'a' + w) {
                bad[0]++;
                break;
            }
        json_decref(o);
    }
    free(line);
    fclose(f);
    return bad;
}

Test(log, lines_from_threads_never_interleave)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    log_set_fd(p[1]);
    log_set_format(LOG_JSON);
    pthread_t r, t[4];
    struct writer w[4];
    cr_assert_eq(pthread_create(&r, NULL, drain, &p[0]), 0);
    for (int i = 0; i < 4; i++) {
        w[i].id = i;
        cr_assert_eq(pthread_create(&t[i], NULL, write_lines, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    close(p[1]);
    size_t *bad;
    pthread_join(r, (void **)&bad);
    cr_expect_eq(bad[1], 800, "lines read: %zu", bad[1]);
    cr_expect_eq(bad[0], 0, "%zu lines broken", bad[0]);
    free(bad);
}
