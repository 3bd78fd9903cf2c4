/* The operator's introspection requests on the admin port (docs/operations.md §Admin requests):
 * the busiest topics, one topic's state, a user's connections over every worker, and
 * disconnecting a user with the revocation of the tokens issued before. Against the real
 * nudged; every figure is one the test caused itself. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "jwt.h"
#include "nudge.h"
#include "subcheck.h"
#include "wsc.h"

#define ADMIN "admin-token-for-the-admin-tests-0123456789"

/* method path on d's admin port (with the bearer token when token is set); the JSON body
 * parsed (NULL when it is not JSON) and the status in *status. */
static json_t *admin_req(const struct nudged *d, const char *method, const char *path,
                         const char *token, int *status)
{
    char req[2048];
    int n = snprintf(
        req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\n%s%s%sConnection: close\r\n\r\n", method,
        path, token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "");
    cr_assert(n > 0 && (size_t)n < sizeof req);
    size_t len = 0;
    char *r = http_raw(d->admin_port, req, (size_t)n, &len, 10000);
    cr_assert_not_null(r, "%s %s: no answer", method, path);
    *status = 0;
    sscanf(r, "HTTP/1.1 %d", status);
    const char *body = strstr(r, "\r\n\r\n");
    json_t *j = body ? json_loads(body + 4, 0, NULL) : NULL;
    free(r);
    return j;
}

/* GET path with the token, which must answer 200 with JSON. */
static json_t *get_ok(const struct nudged *d, const char *path, const char *token)
{
    int status = 0;
    json_t *j = admin_req(d, "GET", path, token, &status);
    cr_assert_eq(status, 200, "GET %s: %d", path, status);
    cr_assert_not_null(j, "GET %s: not JSON", path);
    return j;
}

/* Publish topic n times (acked one by one). */
static void pub_n(nudge_client_t *c, const char *topic, int n)
{
    const char *t[1] = {topic};
    for (int i = 0; i < n; i++) {
        int rc = nudge_publish(c, t, 1, NULL, NULL);
        cr_assert_eq(rc, NUDGE_OK, "publish %s: %s", topic, nudge_strerror(rc));
    }
}

static const json_t *topic_at(const json_t *top, size_t i)
{
    return json_array_get(json_object_get(top, "topics"), i);
}

Test(admin, top_topics_come_busiest_first_with_their_rate_seq_and_subscribers)
{
    struct nudged d = {0};
    subcheck_start(&d, NULL);
    /* Two subscribers of t:b (maybe on two workers), one of t:c through a pattern only. */
    struct wsc w[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(wsc_open(&w[i], d.ws_port, NULL), WSC_OK);
    const char *b[1] = {"t:b"}, *pat[1] = {"t:*"};
    cr_assert_eq(wsc_subscribe(&w[0], b, 1, NULL), 0);
    cr_assert_eq(wsc_subscribe(&w[1], b, 1, NULL), 0);
    cr_assert_eq(wsc_subscribe(&w[2], pat, 1, NULL), 0);
    nudge_client_t *p = subcheck_publisher(&d, NULL);
    pub_n(p, "t:a", 30);
    pub_n(p, "t:b", 20);
    pub_n(p, "t:c", 10);

    json_t *j = get_ok(&d, "/topics", NULL);
    cr_expect_eq(json_integer_value(json_object_get(j, "window_s")), 10);
    cr_assert_eq(json_array_size(json_object_get(j, "topics")), 3, "three topics published");
    const char *names[] = {"t:a", "t:b", "t:c"};
    const int seqs[] = {30, 20, 10}, subs[] = {0, 2, 0};
    double prev = 1e9;
    for (size_t i = 0; i < 3; i++) {
        const json_t *t = topic_at(j, i);
        cr_expect_str_eq(json_string_value(json_object_get(t, "topic")), names[i], "place %zu", i);
        double rate = json_number_value(json_object_get(t, "rate"));
        /* n publishes in the last seconds: about n / 10 a second, a little less as it decays. */
        cr_expect(rate > seqs[i] / 10.0 * 0.5 && rate <= seqs[i] / 10.0 * 1.01 + 0.001,
                  "%s: rate %.3f after %d publishes", names[i], rate, seqs[i]);
        cr_expect(rate < prev, "%s: rate %.3f not below the one before", names[i], rate);
        prev = rate;
        cr_expect_eq(json_integer_value(json_object_get(t, "seq")), seqs[i], "%s seq", names[i]);
        cr_expect_eq(json_integer_value(json_object_get(t, "subscribers")), subs[i],
                     "%s: exact subscribers", names[i]);
    }
    json_decref(j);

    j = get_ok(&d, "/topics?top=2", NULL);
    cr_expect_eq(json_array_size(json_object_get(j, "topics")), 2);
    cr_expect_str_eq(json_string_value(json_object_get(topic_at(j, 1), "topic")), "t:b");
    json_decref(j);

    /* Now t:c is the busiest. */
    pub_n(p, "t:c", 60);
    j = get_ok(&d, "/topics?top=1", NULL);
    cr_expect_str_eq(json_string_value(json_object_get(topic_at(j, 0), "topic")), "t:c");
    cr_expect_eq(json_integer_value(json_object_get(topic_at(j, 0), "seq")), 70);
    json_decref(j);

    /* One subscriber of t:b leaves. */
    wsc_close(&w[0], 1000);
    int64_t deadline = now_ms() + 5000;
    int64_t n = -1;
    do {
        j = get_ok(&d, "/topics", NULL);
        for (size_t i = 0; i < json_array_size(json_object_get(j, "topics")); i++)
            if (!strcmp(json_string_value(json_object_get(topic_at(j, i), "topic")), "t:b"))
                n = json_integer_value(json_object_get(topic_at(j, i), "subscribers"));
        json_decref(j);
    } while (n != 1 && now_ms() < deadline && (sleep_ms(20), 1));
    cr_expect_eq(n, 1, "t:b subscribers after one left: %lld", (long long)n);

    const char *bad[] = {"/topics?top=0", "/topics?top=1001", "/topics?top=x", "/topics?top="};
    for (int i = 0; i < 4; i++) {
        int status = 0;
        j = admin_req(&d, "GET", bad[i], NULL, &status);
        cr_expect_eq(status, 400, "%s: %d", bad[i], status);
        cr_expect(j && json_is_string(json_object_get(j, "error")), "%s: a JSON error", bad[i]);
        json_decref(j);
    }
    int status = 0;
    j = admin_req(&d, "POST", "/topics", NULL, &status);
    cr_expect_eq(status, 405);
    json_decref(j);
    nudge_close(p);
    wsc_close(&w[1], 1000);
    wsc_close(&w[2], 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(admin, a_topic_shows_its_seq_subscribers_rate_and_history_window)
{
    struct nudged d = {0};
    const char *args[] = {"--hist-per-topic", "5", NULL};
    subcheck_start(&d, args);
    struct wsc w[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(wsc_open(&w[i], d.ws_port, NULL), WSC_OK);
    const char *t[1] = {"doc:1/\xc3\xa4"}, *pat[2] = {"doc:*", "**"}, *other[1] = {"x:*"};
    cr_assert_eq(wsc_subscribe(&w[0], t, 1, NULL), 0);
    cr_assert_eq(wsc_subscribe(&w[1], t, 1, NULL), 0);
    cr_assert_eq(wsc_subscribe(&w[1], pat + 1, 1, NULL), 0); /* exact and pattern: both counts */
    cr_assert_eq(wsc_subscribe(&w[2], pat, 2, NULL), 0);     /* two patterns: counted once */
    cr_assert_eq(wsc_subscribe(&w[0], other, 1, NULL), 0);   /* no match */
    nudge_client_t *p = subcheck_publisher(&d, NULL);
    for (int i = 1; i <= 8; i++) {
        char data[32];
        snprintf(data, sizeof data, "{\"i\":%d}", i);
        cr_assert_eq(nudge_publish(p, t, 1, data, NULL), NUDGE_OK);
        if (i == 4) sleep_ms(300); /* seqs 4..8 kept: the oldest is 300 ms old at least */
    }
    int64_t before = now_ms();
    json_t *j = get_ok(&d, "/topics/doc%3A1%2F%C3%a4", NULL);
    int64_t took = now_ms() - before;
    cr_expect_str_eq(json_string_value(json_object_get(j, "topic")), "doc:1/\xc3\xa4");
    cr_expect_str_eq(json_string_value(json_object_get(j, "epoch")), w[0].epoch);
    cr_expect_eq(json_integer_value(json_object_get(j, "seq")), 8);
    cr_expect_eq(json_integer_value(json_object_get(j, "subscribers")), 2, "exact subscribers");
    cr_expect_eq(json_integer_value(json_object_get(j, "pattern_subscribers")), 2,
                 "pattern subscribers: doc:* and **, once each connection");
    double rate = json_number_value(json_object_get(j, "rate"));
    cr_expect(rate > 0.4 && rate <= 0.8 * 1.01 + 0.001, "rate %.3f after 8 publishes", rate);
    const json_t *h = json_object_get(j, "history");
    cr_assert_not_null(h);
    cr_expect_eq(json_integer_value(json_object_get(h, "hints")), 5, "--hist-per-topic 5");
    cr_expect_eq(json_integer_value(json_object_get(h, "first_seq")), 4);
    cr_expect_eq(json_integer_value(json_object_get(h, "last_seq")), 8);
    json_int_t bytes = json_integer_value(json_object_get(h, "bytes"));
    cr_expect(bytes > 5 * (json_int_t)strlen(t[0]) && bytes < 5 * 1024, "bytes %lld",
              (long long)bytes);
    json_int_t age = json_integer_value(json_object_get(h, "oldest_age_ms"));
    cr_expect(age >= 290 && age < 10000 + took, "oldest_age_ms %lld", (long long)age);
    json_decref(j);

    /* Plain names need no escaping; a name unknown to the broker is 404, a bad escape 400. */
    const char *t2[1] = {"doc:2"};
    cr_assert_eq(nudge_publish(p, t2, 1, NULL, NULL), NUDGE_OK);
    j = get_ok(&d, "/topics/doc:2", NULL);
    cr_expect_eq(json_integer_value(json_object_get(j, "seq")), 1);
    cr_expect_eq(json_integer_value(json_object_get(j, "subscribers")), 0);
    cr_expect_eq(json_integer_value(json_object_get(j, "pattern_subscribers")), 2);
    char *text = json_dumps(j, JSON_PRESERVE_ORDER | JSON_COMPACT);
    cr_expect(text && strstr(text, "\"subscribers\":0,\"pattern_subscribers\":2,\"rate\""), "%s",
              text);
    free(text);
    json_decref(j);
    const char *paths[] = {"/topics/doc:3", "/topics/doc%3", "/topics/doc%00", "/topics/%zz"};
    const int want[] = {404, 400, 400, 400};
    for (int i = 0; i < 4; i++) {
        int status = 0;
        j = admin_req(&d, "GET", paths[i], NULL, &status);
        cr_expect_eq(status, want[i], "%s: %d", paths[i], status);
        cr_expect(j && json_is_string(json_object_get(j, "error")), "%s: a JSON error", paths[i]);
        json_decref(j);
    }
    nudge_close(p);
    for (int i = 0; i < 3; i++)
        wsc_close(&w[i], 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* A broker with an admin token (and token keys when secret is set). */
static char tmpdir[64], admin_path[128];

static void write_file(char *path, size_t cap, const char *name, const char *text)
{
    snprintf(path, cap, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static void start_guarded(struct nudged *d, const char *const *more)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nudge-admin-%d", (int)getpid());
    mkdir(tmpdir, 0700);
    write_file(admin_path, sizeof admin_path, "admin", ADMIN "\n");
    const char *args[32] = {"--admin-token-file", admin_path};
    int n = 2;
    for (int i = 0; more && more[i] && n < 31; i++)
        args[n++] = more[i];
    args[n] = NULL;
    subcheck_start(d, args);
}

/* Stop d, which must exit 0, and remove the files start_guarded wrote. */
static void stop_guarded(struct nudged *d)
{
    cr_expect_eq(nudged_stop(d), 0);
    nudged_rm_dir(tmpdir);
}

/* A broker with the admin token, token secret SECRET, --workers 2 (whatever NUDGE_WORKERS
 * says) and more args. */
#define SECRET "hs-secret-for-the-admin-tests-0123456789abcdef"
static char secret_path[128];

static void start_tokens(struct nudged *d, const char *const *more)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/nudge-admin-%d", (int)getpid());
    mkdir(tmpdir, 0700);
    write_file(secret_path, sizeof secret_path, "secret", SECRET "\n");
    const char *args[32] = {"--token-secret-file", secret_path, "--workers", "2"};
    int n = 4;
    for (int i = 0; more && more[i] && n < 31; i++)
        args[n++] = more[i];
    args[n] = NULL;
    start_guarded(d, args);
}

/* A token for sub, valid 10 minutes, issued iat_ago seconds ago (-1: no iat). Caller frees. */
static char *token(const char *sub, long iat_ago)
{
    char claims[256];
    long long now = (long long)time(NULL);
    if (iat_ago < 0)
        snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"exp\":%lld}", sub, now + 600);
    else
        snprintf(claims, sizeof claims, "{\"sub\":\"%s\",\"exp\":%lld,\"iat\":%lld}", sub,
                 now + 600, now - iat_ago);
    char *t = jwt_mint("HS256", SECRET, strlen(SECRET), NULL, claims);
    cr_assert_not_null(t);
    return t;
}

/* Say hello with tok on a fresh connection; the answer's type, *m holds it (caller clears). */
static enum sub_type hello_with(struct wsc *w, const struct nudged *d, const char *tok,
                                struct sub_msg *m)
{
    cr_assert_eq(wsc_connect(w, d->ws_port, NULL), 0);
    char buf[2048];
    snprintf(buf, sizeof buf, "{\"type\":\"hello\",\"v\":1,\"token\":\"%s\"}", tok);
    cr_assert_eq(wsc_send_text(w, buf), 0);
    int rc = wsc_recv_msg(w, m, 5000);
    cr_assert_eq(rc, WSC_OK, "no answer to hello: %d", rc);
    if (m->type == SUB_WELCOME)
        snprintf(w->conn_id, sizeof w->conn_id, "%.*s", (int)m->conn.len, m->conn.p);
    return m->type;
}

/* A connection of tok's user; asserts the welcome. */
static void open_with(struct wsc *w, const struct nudged *d, const char *tok)
{
    struct sub_msg m;
    enum sub_type t = hello_with(w, d, tok, &m);
    cr_assert_eq(t, SUB_WELCOME, "hello refused: %d %.*s", m.code, (int)m.msg.len,
                 m.msg.p ? m.msg.p : "");
    sub_msg_clear(&m);
}

/* Open connections of tok's user into w[0..) until both workers hold one (/stats per_worker),
 * at least min and at most max of them. Returns how many. */
static int open_on_both_workers(struct wsc *w, const struct nudged *d, const char *tok, int min,
                                int max)
{
    int n = 0;
    for (;;) {
        open_with(&w[n++], d, tok);
        json_t *st = get_ok(d, "/stats", ADMIN);
        const json_t *pw = json_object_get(st, "per_worker");
        int both = json_array_size(pw) == 2 &&
                   json_integer_value(json_object_get(json_array_get(pw, 0), "ws")) > 0 &&
                   json_integer_value(json_object_get(json_array_get(pw, 1), "ws")) > 0;
        json_decref(st);
        if ((both && n >= min) || n == max) break;
    }
    return n;
}

/* The local port of w's socket. */
static unsigned local_port(const struct wsc *w)
{
    struct sockaddr_in a;
    socklen_t l = sizeof a;
    cr_assert_eq(getsockname(w->fd, (struct sockaddr *)&a, &l), 0);
    return ntohs(a.sin_port);
}

Test(admin, a_users_connections_are_listed_over_every_worker)
{
    struct nudged d = {0};
    start_tokens(&d, NULL);
    int64_t t0 = (int64_t)time(NULL) * 1000;
    char *t1 = token("u1", 0), *t2 = token("u2", 0);
    struct wsc w[16], other;
    int n = open_on_both_workers(w, &d, t1, 3, 16);
    cr_assert(n < 16, "16 connections, all on one worker");
    open_with(&other, &d, t2);
    const char *topics[2] = {"user:u1:a", "user:u1:b"};
    cr_assert_eq(wsc_subscribe(&w[0], topics, 2, NULL), 0);

    json_t *j = get_ok(&d, "/users/u1/connections", ADMIN);
    cr_expect_str_eq(json_string_value(json_object_get(j, "user")), "u1");
    const json_t *list = json_object_get(j, "connections");
    cr_assert_eq(json_array_size(list), (size_t)n, "%d connections of u1 listed", n);
    int seen_worker[2] = {0, 0};
    int64_t t1ms = (int64_t)time(NULL) * 1000 + 1000;
    for (int i = 0; i < n; i++) {
        const json_t *c = NULL;
        for (size_t k = 0; k < json_array_size(list); k++)
            if (!strcmp(json_string_value(json_object_get(json_array_get(list, k), "id")),
                        w[i].conn_id))
                c = json_array_get(list, k);
        cr_assert_not_null(c, "connection %s (its welcome's conn) is listed", w[i].conn_id);
        json_int_t wk = json_integer_value(json_object_get(c, "worker"));
        cr_assert(wk == 0 || wk == 1, "worker %lld", (long long)wk);
        seen_worker[wk] = 1;
        char peer[32];
        snprintf(peer, sizeof peer, "127.0.0.1:%u", local_port(&w[i]));
        cr_expect_str_eq(json_string_value(json_object_get(c, "peer")), peer);
        json_int_t since = json_integer_value(json_object_get(c, "since_ms"));
        cr_expect(since >= t0 - 1000 && since <= t1ms, "since_ms %lld", (long long)since);
        cr_expect_eq(json_integer_value(json_object_get(c, "subscriptions")), i == 0 ? 2 : 0);
    }
    cr_expect(seen_worker[0] && seen_worker[1], "connections on both workers listed");
    json_decref(j);

    j = get_ok(&d, "/users/u2/connections", ADMIN);
    list = json_object_get(j, "connections");
    cr_assert_eq(json_array_size(list), 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "id")),
                     other.conn_id);
    json_decref(j);
    j = get_ok(&d, "/users/nobody/connections", ADMIN);
    cr_expect_eq(json_array_size(json_object_get(j, "connections")), 0);
    json_decref(j);

    /* Gone connections are gone from the list. */
    wsc_close(&w[0], 1000);
    int64_t deadline = now_ms() + 5000;
    size_t left = 0;
    do {
        j = get_ok(&d, "/users/u1/connections", ADMIN);
        left = json_array_size(json_object_get(j, "connections"));
        json_decref(j);
    } while (left != (size_t)n - 1 && now_ms() < deadline && (sleep_ms(20), 1));
    cr_expect_eq(left, (size_t)n - 1);

    int status = 0;
    j = admin_req(&d, "POST", "/users/u1/connections", ADMIN, &status);
    cr_expect_eq(status, 405);
    json_decref(j);
    j = admin_req(&d, "GET", "/users/%zz/connections", ADMIN, &status);
    cr_expect_eq(status, 400);
    json_decref(j);
    for (int i = 1; i < n; i++)
        wsc_close(&w[i], 1000);
    wsc_close(&other, 1000);
    free(t1);
    free(t2);
    stop_guarded(&d);
}

Test(admin, every_introspection_request_wants_the_admin_token)
{
    struct nudged d = {0};
    start_guarded(&d, NULL);
    const char *paths[] = {"/topics", "/topics?top=3", "/topics/doc:1", "/users/u1/connections"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        int status = 0;
        json_t *j = admin_req(&d, "GET", paths[i], NULL, &status);
        cr_expect_eq(status, 401, "GET %s without the token: %d", paths[i], status);
        cr_expect(j && strstr(json_string_value(json_object_get(j, "error")), "Bearer"),
                  "GET %s: a JSON error naming the header", paths[i]);
        json_decref(j);
        j = admin_req(&d, "GET", paths[i], "wrong-token-0123456789", &status);
        cr_expect_eq(status, 401, "GET %s with a wrong token: %d", paths[i], status);
        json_decref(j);
        j = admin_req(&d, "GET", paths[i], ADMIN, &status);
        cr_expect(status == 200 || status == 404, "GET %s with the token: %d", paths[i], status);
        json_decref(j);
    }
    stop_guarded(&d);
}

/* The next messages on w are `error` unauthorized, then the close code, within 5 s. */
static void expect_revoked_close(struct wsc *w, int code)
{
    struct sub_msg m;
    int rc = wsc_recv_msg(w, &m, 5000);
    cr_assert_eq(rc, WSC_OK, "%s: no error before the close (%d)", w->conn_id, rc);
    cr_expect_eq(m.type, SUB_ERROR, "%s: type %s", w->conn_id, subcheck_type_name(m.type));
    cr_expect_eq(m.code, WIRE_C_UNAUTHORIZED, "%s: code %d", w->conn_id, m.code);
    sub_msg_clear(&m);
    rc = wsc_recv_msg(w, &m, 5000);
    cr_assert_eq(rc, WSC_CLOSED, "%s: closed (%d)", w->conn_id, rc);
    cr_expect_eq(w->close_code, code, "%s: close code %u", w->conn_id, w->close_code);
}

Test(admin, disconnecting_a_user_closes_its_connections_with_4010_and_refuses_its_older_tokens)
{
    struct nudged d = {0};
    start_tokens(&d, NULL);
    char *old = token("u1", 10), *other = token("u2", 10);
    struct wsc w[16], w2;
    int n = open_on_both_workers(w, &d, old, 2, 16);
    cr_assert(n < 16, "16 connections, all on one worker");
    open_with(&w2, &d, other);
    const char *mine[1] = {"user:u1:a"};
    cr_assert_eq(wsc_subscribe(&w[0], mine, 1, NULL), 0);

    int status = 0;
    json_t *j = admin_req(&d, "GET", "/users/u1/disconnect", ADMIN, &status);
    cr_expect_eq(status, 405, "GET disconnect: %d", status);
    json_decref(j);
    j = admin_req(&d, "POST", "/users/u1/disconnect", NULL, &status);
    cr_expect_eq(status, 401, "POST disconnect without the admin token: %d", status);
    json_decref(j);
    /* Nothing happened without the token. */
    j = get_ok(&d, "/users/u1/connections", ADMIN);
    cr_assert_eq(json_array_size(json_object_get(j, "connections")), (size_t)n);
    json_decref(j);

    int64_t before = (int64_t)time(NULL);
    j = admin_req(&d, "POST", "/users/u1/disconnect", ADMIN, &status);
    int64_t after = (int64_t)time(NULL);
    cr_assert_eq(status, 200, "POST disconnect: %d", status);
    cr_assert_not_null(j);
    cr_expect_str_eq(json_string_value(json_object_get(j, "user")), "u1");
    cr_expect_eq(json_integer_value(json_object_get(j, "closed")), n, "closed %lld of %d",
                 (long long)json_integer_value(json_object_get(j, "closed")), n);
    json_int_t cut = json_integer_value(json_object_get(j, "revoked_before"));
    cr_expect(cut >= before && cut <= after, "revoked_before %lld", (long long)cut);
    json_decref(j);
    for (int i = 0; i < n; i++)
        expect_revoked_close(&w[i], 4010);

    /* The other user is untouched. */
    const char *theirs[1] = {"user:u2:a"};
    cr_expect_eq(wsc_subscribe(&w2, theirs, 1, NULL), 0, "u2 still served");

    /* The old token, and one without "iat", are refused at hello (16, the connection stays at
     * hello); a token issued since is welcome. */
    char *no_iat = token("u1", -1);
    const char *refused[2] = {old, no_iat};
    for (int i = 0; i < 2; i++) {
        struct wsc r;
        struct sub_msg m;
        enum sub_type t = hello_with(&r, &d, refused[i], &m);
        cr_expect_eq(t, SUB_ERROR, "token %d: %s", i, subcheck_type_name(t));
        cr_expect_eq(m.code, WIRE_C_UNAUTHORIZED);
        cr_expect(m.msg.p && memmem(m.msg.p, m.msg.len, "revoked", 7), "token %d: %.*s", i,
                  (int)m.msg.len, m.msg.p ? m.msg.p : "");
        sub_msg_clear(&m);
        wsc_close(&r, 1000);
    }
    while ((int64_t)time(NULL) < cut) /* the broker's second may be ahead of ours */
        sleep_ms(50);
    char *fresh = token("u1", 0);
    struct wsc again;
    open_with(&again, &d, fresh);
    j = get_ok(&d, "/users/u1/connections", ADMIN);
    const json_t *list = json_object_get(j, "connections");
    cr_assert_eq(json_array_size(list), 1, "only the new connection");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "id")),
                     again.conn_id);
    json_decref(j);
    /* A refresh back to the old token is refused too (4003). */
    char buf[2048];
    snprintf(buf, sizeof buf, "{\"type\":\"refresh\",\"id\":1,\"token\":\"%s\"}", old);
    cr_assert_eq(wsc_send_text(&again, buf), 0);
    expect_revoked_close(&again, 4003);

    j = get_ok(&d, "/stats", ADMIN);
    cr_expect_eq(stats_int(j, "auth.refused.revoked"), 3, "three tokens refused as revoked");
    cr_expect_eq(stats_int(j, "auth.revoked_users"), 1);
    json_decref(j);

    for (int i = 0; i < n; i++)
        wsc_free(&w[i], 0);
    wsc_free(&again, 0);
    wsc_close(&w2, 1000);
    free(old);
    free(other);
    free(no_iat);
    free(fresh);
    stop_guarded(&d);
}
