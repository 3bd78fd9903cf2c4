/* The broker's log end to end (docs/operations.md §Logs): a real nudged with --log-format json
 * or logfmt writes every line of its stderr in that format; a forged token is one warn line with
 * the connection id (the one a welcome later names) and the peer address; a burst of forged
 * tokens is held to the rate limit's burst, and the rest are counted in one "suppressed" line
 * and in /stats (log.suppressed.auth_failed, the /metrics nudge_log_suppressed_total). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "jwt.h"
#include "wsc.h"

#define SECRET "log-test-hs-secret-0123456789abcdef0123"
#define KEY "log-test-api-key-0123456789"

static char dir[64], secret_path[128], keys_path[128];

static void write_file(char *path, const char *name, const char *text)
{
    snprintf(path, 128, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/nudge-logs-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    write_file(secret_path, "secret", SECRET "\n");
    write_file(keys_path, "keys", "app " KEY "\n");
}

static void teardown(void)
{
    nudged_rm_dir(dir);
}

TestSuite(logs, .init = setup, .fini = teardown);

static void start(struct nudged *d, const char *format, const char *rate)
{
    const char *args[] = {
        "--log-format", format,     "--token-secret-file",      secret_path, "--pub-keys",
        keys_path,      "--memory", rate ? "--log-rate" : NULL, rate,        NULL};
    cr_assert_eq(nudged_start(d, args), 0, "nudged did not start");
}

/* The broker's stderr so far, as lines (malloc'd array of malloc'd strings, NULL-terminated). */
static char **log_lines(const struct nudged *d, size_t *n_out)
{
    FILE *f = fopen(d->err_path, "r");
    cr_assert_not_null(f);
    size_t n = 0, cap = 64;
    char **v = malloc(cap * sizeof(*v));
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0) {
        if (n + 2 > cap) v = realloc(v, (cap *= 2) * sizeof(*v));
        v[n++] = strdup(line);
    }
    free(line);
    fclose(f);
    v[n] = NULL;
    if (n_out) *n_out = n;
    return v;
}

static void free_lines(char **v)
{
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

/* "127.0.0.1:<our port>" for a connected socket. */
static void local_addr(int fd, char *buf, size_t cap)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    snprintf(buf, cap, "127.0.0.1:%u", ntohs(a.sin_port));
}

static char *forged_token(void)
{
    char *t = jwt_mint("HS256", "not-the-secret-0123456789abcdef0123", 35, NULL,
                       "{\"sub\":\"mallory\",\"exp\":9999999999}");
    cr_assert_not_null(t);
    return t;
}

/* Say hello with token; returns the answer's type (the welcome's conn id lands in w). */
static enum sub_type hello(struct wsc *w, const char *token)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "{\"type\":\"hello\",\"v\":1,\"token\":\"%s\"}", token);
    cr_assert_eq(wsc_send_text(w, buf), 0);
    struct sub_msg m;
    int rc = wsc_recv_msg(w, &m, 5000);
    cr_assert_eq(rc, WSC_OK, "no answer to hello: %d", rc);
    enum sub_type t = m.type;
    if (t == SUB_WELCOME)
        snprintf(w->conn_id, sizeof w->conn_id, "%.*s", (int)m.conn.len, m.conn.p);
    sub_msg_clear(&m);
    return t;
}

static char *good_token(void)
{
    char *t =
        jwt_mint("HS256", SECRET, strlen(SECRET), NULL, "{\"sub\":\"ok\",\"exp\":9999999999}");
    cr_assert_not_null(t);
    return t;
}

Test(logs, a_forged_token_is_one_json_warn_line_with_the_connection_id_and_the_peer, .timeout = 30)
{
    struct nudged d = {0};
    start(&d, "json", NULL);
    struct wsc w;
    cr_assert_eq(wsc_connect(&w, d.ws_port, NULL), 0);
    char peer[64];
    local_addr(w.fd, peer, sizeof peer);
    char *bad = forged_token(), *good = good_token();
    cr_assert_eq(hello(&w, bad), SUB_ERROR);
    cr_assert(nudged_wait_log(&d, "\"event\":\"auth_failed\"", 3000), "no auth_failed line");
    /* the same connection, now with a good token: its welcome names the id the line gave */
    cr_assert_eq(hello(&w, good), SUB_WELCOME);

    size_t n;
    char **lines = log_lines(&d, &n);
    cr_assert_geq(n, 2, "the start-up lines and the event");
    json_t *ev = NULL;
    for (size_t i = 0; i < n; i++) {
        json_error_t e;
        json_t *o = json_loads(lines[i], 0, &e);
        cr_assert_not_null(o, "line %zu is not JSON (%s): %s", i, e.text, lines[i]);
        cr_expect(json_is_string(json_object_get(o, "ts")) &&
                      json_is_string(json_object_get(o, "level")) &&
                      json_is_string(json_object_get(o, "msg")),
                  "line %zu lacks ts, level or msg: %s", i, lines[i]);
        const char *event = json_string_value(json_object_get(o, "event"));
        if (event && !strcmp(event, "auth_failed") && !ev)
            ev = o;
        else
            json_decref(o);
    }
    cr_assert_not_null(ev);
    cr_expect_str_eq(json_string_value(json_object_get(ev, "level")), "warn");
    cr_expect_str_eq(json_string_value(json_object_get(ev, "msg")), "auth failed");
    cr_expect_str_eq(json_string_value(json_object_get(ev, "conn")), w.conn_id);
    cr_expect_str_eq(json_string_value(json_object_get(ev, "peer")), peer);
    cr_expect_str_eq(json_string_value(json_object_get(ev, "transport")), "ws");
    cr_expect_str_eq(json_string_value(json_object_get(ev, "reason")), "signature");
    const char *detail = json_string_value(json_object_get(ev, "detail"));
    cr_expect(detail && strstr(detail, "signature"), "detail: %s", detail);
    /* never the credential */
    for (size_t i = 0; i < n; i++)
        cr_expect(!strstr(lines[i], strrchr(bad, '.') + 1), "the token's signature was logged");
    json_decref(ev);
    free_lines(lines);
    free(bad);
    free(good);
    wsc_close(&w, 2000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* A logfmt value: key=value or key="..." (no escapes needed for what this test reads). */
static int logfmt_value(const char *line, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, " %s=", key);
    const char *p = strstr(line, pat);
    if (!p) return -1;
    p += strlen(pat);
    size_t n = *p == '"' ? strcspn(++p, "\"") : strcspn(p, " \n");
    if (n >= cap) return -1;
    memcpy(out, p, n);
    out[n] = '\0';
    return 0;
}

Test(logs, a_forged_token_and_a_wrong_api_key_are_logfmt_warn_lines_with_conn_and_peer,
     .timeout = 30)
{
    struct nudged d = {0};
    start(&d, "logfmt", NULL);
    struct wsc w;
    cr_assert_eq(wsc_connect(&w, d.ws_port, NULL), 0);
    char wpeer[64], ppeer[64], v[128];
    local_addr(w.fd, wpeer, sizeof wpeer);
    char *bad = forged_token();
    cr_assert_eq(hello(&w, bad), SUB_ERROR);
    struct pubraw pr;
    cr_assert_eq(pubraw_connect(&pr, d.pub_port, 0), PUBRAW_OK);
    local_addr(pr.fd, ppeer, sizeof ppeer);
    struct wire_buf hb = {0};
    cr_assert_eq(pub_encode_hello_key(&hb, WIRE_VERSION, "t", "wrong-key-0123456789"), 0);
    cr_assert_eq(pubraw_send(&pr, hb.data, hb.len), PUBRAW_OK);
    wire_buf_free(&hb);
    cr_assert(nudged_wait_log(&d, "transport=pub", 3000), "no line for the publisher");
    cr_assert(nudged_wait_log(&d, "transport=ws", 3000), "no line for the subscriber");

    char **lines = log_lines(&d, NULL);
    int seen_ws = 0, seen_pub = 0;
    for (size_t i = 0; lines[i]; i++) {
        const char *l = lines[i];
        cr_expect_eq(strncmp(l, "ts=", 3), 0, "not logfmt: %s", l);
        cr_expect(strstr(l, " level=") && strstr(l, " msg="), "not logfmt: %s", l);
        if (!strstr(l, " event=auth_failed ")) continue;
        cr_expect(strstr(l, " level=warn msg=\"auth failed\" event=auth_failed conn="), "%s", l);
        cr_assert_eq(logfmt_value(l, "conn", v, sizeof v), 0, "%s", l);
        cr_expect_gt(strlen(v), 0);
        cr_assert_eq(logfmt_value(l, "transport", v, sizeof v), 0, "%s", l);
        int ws = !strcmp(v, "ws");
        seen_ws += ws;
        seen_pub += !ws;
        cr_assert_eq(logfmt_value(l, "peer", v, sizeof v), 0, "%s", l);
        cr_expect_str_eq(v, ws ? wpeer : ppeer, "%s", l);
        cr_assert_eq(logfmt_value(l, "reason", v, sizeof v), 0, "%s", l);
        cr_expect_str_eq(v, ws ? "signature" : "api_key", "%s", l);
    }
    cr_expect_eq(seen_ws, 1);
    cr_expect_eq(seen_pub, 1);
    free_lines(lines);
    free(bad);
    pubraw_close(&pr, 0);
    wsc_close(&w, 2000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* 1000 connections with forged tokens at once: the log takes the burst (50 lines with the
 * default --log-rate 10) and a few more as the bucket refills, then says how many it dropped;
 * every refusal is accounted for in lines or in the count. */
Test(logs, a_burst_of_forged_tokens_is_held_to_the_rate_limit_and_the_rest_counted, .timeout = 90)
{
    struct nudged d = {0};
    start(&d, "json", NULL);
    char *bad = forged_token();
    char msg[1024];
    snprintf(msg, sizeof msg, "{\"type\":\"hello\",\"v\":1,\"token\":\"%s\"}", bad);
    const int total = 1000;
    int64_t t0 = now_ms();
    for (int i = 0; i < total; i++) {
        struct wsc w;
        cr_assert_eq(wsc_connect(&w, d.ws_port, NULL), 0, "connection %d", i);
        cr_assert_eq(wsc_send_text(&w, msg), 0);
        struct sub_msg m;
        cr_assert_eq(wsc_recv_msg(&w, &m, 5000), WSC_OK, "connection %d: no answer", i);
        cr_assert_eq(m.type, SUB_ERROR);
        sub_msg_clear(&m);
        wsc_free(&w, 1);
    }
    int64_t secs = (now_ms() - t0) / 1000 + 1;
    cr_log_info("logs: %d forged hellos in %lld ms", total, (long long)(now_ms() - t0));
    cr_assert(nudged_wait_log(&d, "\"msg\":\"log lines suppressed\"", 4000),
              "no line says how many were suppressed");
    json_t *st = nudged_stats(&d);
    int64_t suppressed = stats_int(st, "log.suppressed.auth_failed");
    json_decref(st);

    char **lines = log_lines(&d, NULL);
    int64_t logged = 0, noted = 0;
    for (size_t i = 0; lines[i]; i++) {
        json_t *o = json_loads(lines[i], 0, NULL);
        cr_assert_not_null(o, "not JSON: %s", lines[i]);
        const char *event = json_string_value(json_object_get(o, "event"));
        const char *m = json_string_value(json_object_get(o, "msg"));
        if (event && !strcmp(event, "auth_failed")) {
            if (!strcmp(m, "auth failed")) logged++;
            if (!strcmp(m, "log lines suppressed"))
                noted += json_integer_value(json_object_get(o, "suppressed"));
        }
        json_decref(o);
    }
    free_lines(lines);
    cr_log_info("logs: %lld lines, %lld suppressed (%lld noted)", (long long)logged,
                (long long)suppressed, (long long)noted);
    cr_expect_geq(logged, 50, "the burst is logged");
    cr_expect_leq(logged, 50 + 10 * secs + 1, "%lld lines in %lld s: past the rate",
                  (long long)logged, (long long)secs);
    cr_expect_eq(logged + suppressed, total, "every refusal is logged or counted");
    cr_expect_leq(noted, suppressed);
    cr_expect_gt(noted, 0);
    free(bad);
    cr_assert_eq(nudged_stop(&d), 0);
}
