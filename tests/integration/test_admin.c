/* The operator's introspection requests on the admin port (docs/operations.md §Admin requests):
 * the busiest topics, one topic's state, a user's connections over every worker, and
 * disconnecting a user with the revocation of the tokens issued before. Against the real
 * nudged; every figure is one the test caused itself. */
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
        cr_expect(rate > seqs[i] / 10.0 * 0.5 && rate <= seqs[i] / 10.0 + 0.01,
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
    const char *t[1] = {"doc:1/\xc3\xa4"}, *pat[1] = {"doc:*"};
    cr_assert_eq(wsc_subscribe(&w[0], t, 1, NULL), 0);
    cr_assert_eq(wsc_subscribe(&w[1], t, 1, NULL), 0);
    cr_assert_eq(wsc_subscribe(&w[2], pat, 1, NULL), 0);
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
    double rate = json_number_value(json_object_get(j, "rate"));
    cr_expect(rate > 0.4 && rate <= 0.81, "rate %.3f after 8 publishes", rate);
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

Test(admin, every_introspection_request_wants_the_admin_token)
{
    struct nudged d = {0};
    start_guarded(&d, NULL);
    const char *paths[] = {"/topics", "/topics?top=3", "/topics/doc:1"};
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
