/* GET /metrics on the admin port (docs/operations.md §GET /metrics): the Prometheus text carries
 * the same figures as /stats (both come from one table), the publish -> write latency histogram
 * counts every hint written live and leaves out history replayed to a resuming subscriber,
 * a hint held by a coalescing window shows its wait, and `promtool check metrics` accepts the
 * output. promtool comes from Debian's prometheus package (make deps-test installs it); without
 * it the test fails, it does not skip. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "metrics.h"
#include "nudge.h"
#include "subcheck.h"
#include "wsc.h"

#define LAT "nudge_publish_delivery_seconds"

static char *get_metrics(const struct nudged *d)
{
    int status = 0;
    char *body = http_get(d->admin_port, "/metrics", &status);
    cr_assert_not_null(body, "GET /metrics failed");
    cr_assert_eq(status, 200, "GET /metrics: status %d", status);
    return body;
}

/* The value of the sample whose name and labels are exactly series ("nudge_topics",
 * "nudge_connections{transport=\"ws\"}"), or -1 when absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        if (strncmp(l, series, n) == 0 && l[n] == ' ') return strtod(l + n + 1, NULL);
    }
    return -1;
}

static double bucket(const char *text, const char *le)
{
    char s[128];
    snprintf(s, sizeof s, LAT "_bucket{le=\"%s\"}", le);
    return sample(text, s);
}

/* Receive exactly n hints on w (then nothing more within 200 ms). */
static void expect_hints(struct wsc *w, int n, const char *who)
{
    for (int i = 0; i < n; i++) {
        struct sub_msg m;
        int rc = wsc_recv_msg(w, &m, 5000);
        cr_assert_eq(rc, WSC_OK, "%s: hint %d of %d missing (%d)", who, i + 1, n, rc);
        cr_assert_eq(m.type, SUB_HINT, "%s: got type %d", who, (int)m.type);
        sub_msg_clear(&m);
    }
    struct sub_msg m;
    cr_expect_eq(wsc_recv_msg(w, &m, 200), WSC_TIMEOUT, "%s: more than %d hints", who, n);
}

/* Buckets are cumulative and end at +Inf == _count. Returns _count. */
static double check_histogram_shape(const char *text)
{
    static const char *const les[] = {"0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                      "0.5",   "1",     "2.5",  "5",     "10",   "+Inf"};
    double last = 0;
    for (size_t i = 0; i < sizeof les / sizeof les[0]; i++) {
        double b = bucket(text, les[i]);
        cr_assert_geq(b, last, "bucket le=%s is %g after %g: not cumulative", les[i], b, last);
        last = b;
    }
    double count = sample(text, LAT "_count");
    cr_expect_eq(last, count, "+Inf bucket %g != _count %g", last, count);
    cr_expect_geq(sample(text, LAT "_sum"), 0);
    return count;
}

Test(metrics, carries_the_stats_figures_and_times_every_delivery)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc s1, s2;
    cr_assert_eq(wsc_open(&s1, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_open(&s2, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&s1, "a", "b", NULL), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&s2, "a", NULL), WSC_OK);
    nudge_client_t *p = subcheck_publisher(&d, NULL);
    const char *ta[1] = {"a"}, *tab[2] = {"a", "b"};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(nudge_publish(p, ta, 1, "{\"n\":1}", NULL), NUDGE_OK);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(nudge_publish(p, tab, 2, NULL, NULL), NUDGE_OK);
    expect_hints(&s1, 9, "s1 (a, b)");
    expect_hints(&s2, 7, "s2 (a)");

    char *text = get_metrics(&d);
    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st);
    cr_expect_eq(sample(text, "nudge_publishes_total"), 7);
    cr_expect_eq(sample(text, "nudge_hints_total"), 9);
    cr_expect_eq(sample(text, "nudge_deliveries_total"), 16, "a: 7 x 2, b: 2 x 1");
    cr_expect_eq(sample(text, "nudge_connections{transport=\"ws\"}"), 2);
    cr_expect_eq(sample(text, "nudge_subscriptions"), 3);
    cr_expect_eq(sample(text, "nudge_topics"), 2);
    cr_assert_eq(sample(text, "nudge_coalesced_hints_total"), 0, "setup: nothing may coalesce");
    cr_expect_eq(check_histogram_shape(text), 16,
                 "latency _count %g: one observation per hint written (16 deliveries)",
                 sample(text, LAT "_count"));
    cr_expect_gt(sample(text, "nudge_received_bytes_total"), 0);

    /* Every counter and gauge equals its /stats field, but the admin ones (this request). */
    for (size_t i = 0; i < metrics_table.nrows; i++) {
        const struct metrics_desc *r = &metrics_table.rows[i];
        if (!r->json || strstr(r->json, "admin")) continue;
        char series[160];
        snprintf(series, sizeof series, "%s%s%s%s", r->name, r->labels ? "{" : "",
                 r->labels ? r->labels : "", r->labels ? "}" : "");
        double m = sample(text, series);
        cr_expect_eq(m, (double)stats_int(st, r->json), "%s = %g but /stats %s = %lld", series, m,
                     r->json, (long long)stats_int(st, r->json));
    }
    json_decref(st);
    free(text);
    nudge_close(p);
    wsc_close(&s1, 1000);
    wsc_close(&s2, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(metrics, leaves_out_history_replayed_to_a_resuming_subscriber)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    nudge_client_t *p = subcheck_publisher(&d, NULL);
    const char *t[1] = {"r"};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(nudge_publish(p, t, 1, NULL, NULL), NUDGE_OK);
    sleep_ms(20); /* the subscriber connects on a later loop tick than the publishes */
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    int64_t pos[1] = {0};
    subcheck_send_sub_mode(&w, 1, t, 1, w.epoch, pos, 1);
    struct sub_msg m;
    subcheck_expect_type(&w, SUB_SUBSCRIBED, &m, "subscribed r");
    sub_msg_clear(&m);
    expect_hints(&w, 3, "replay of r 1..3");
    char *text = get_metrics(&d);
    cr_expect_eq(sample(text, "nudge_replayed_hints_total"), 3);
    cr_expect_eq(check_histogram_shape(text), 0, "replayed hints were timed: _count %g",
                 sample(text, LAT "_count"));
    free(text);

    cr_assert_eq(nudge_publish(p, t, 1, NULL, NULL), NUDGE_OK);
    expect_hints(&w, 1, "live r 4");
    text = get_metrics(&d);
    cr_expect_eq(check_histogram_shape(text), 1, "the live hint was not timed");
    free(text);
    nudge_close(p);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(metrics, a_hint_held_by_a_coalescing_window_shows_its_wait)
{
    struct nudged d;
    /* A window of a second: the second publish (after the first's ack) still falls in it on a
     * busy machine, and the first hint goes out in far less than half of it. */
    const char *args[] = {"--coalesce", "slow:*=1000", NULL};
    subcheck_start(&d, args);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&w, "slow:x", NULL), WSC_OK);
    nudge_client_t *p = subcheck_publisher(&d, NULL);
    const char *t[1] = {"slow:x"};
    /* The first goes out at once; the second waits for the window's end, ~1 s. */
    cr_assert_eq(nudge_publish(p, t, 1, NULL, NULL), NUDGE_OK);
    cr_assert_eq(nudge_publish(p, t, 1, NULL, NULL), NUDGE_OK);
    expect_hints(&w, 2, "slow:x");
    char *text = get_metrics(&d);
    cr_expect_eq(check_histogram_shape(text), 2);
    cr_expect_eq(bucket(text, "0.5"), 1, "one hint went out at once, one waited > 500 ms: %g",
                 bucket(text, "0.5"));
    cr_expect_eq(bucket(text, "5"), 2, "the held hint waited over 5 s?");
    double sum = sample(text, LAT "_sum");
    cr_expect(sum >= 0.9 && sum < 5, "_sum %g s, want about 1", sum);
    free(text);
    nudge_close(p);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* promtool's path: the first "promtool" on $PATH, else /usr/bin/promtool. */
static const char *promtool_path(char *buf, size_t cap)
{
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s", path ? path : "/usr/bin");
    for (char *save = NULL, *dir = strtok_r(dirs, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save)) {
        snprintf(buf, cap, "%s/promtool", dir);
        if (access(buf, X_OK) == 0) return buf;
    }
    snprintf(buf, cap, "/usr/bin/promtool");
    return access(buf, X_OK) == 0 ? buf : NULL;
}

Test(metrics, output_passes_promtool_check_metrics)
{
    char tool[512];
    cr_assert_not_null(promtool_path(tool, sizeof tool),
                       "promtool not found: install Debian's prometheus package "
                       "(`make deps-test` as root does; see the Makefile)");
    struct nudged d;
    const char *args[] = {"--coalesce", "slow:*=50", NULL};
    subcheck_start(&d, args);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&w, "slow:x", "plain", NULL), WSC_OK);
    nudge_client_t *p = subcheck_publisher(&d, NULL);
    const char *t[2] = {"slow:x", "plain"};
    for (int i = 0; i < 3; i++)
        cr_assert_eq(nudge_publish(p, t, 2, NULL, NULL), NUDGE_OK);
    sleep_ms(200);
    char *text = get_metrics(&d);
    cr_expect_gt(sample(text, LAT "_count"), 0, "some latency observed before the check");

    const char *argv[] = {tool, "check", "metrics", NULL};
    char *out = NULL, *err = NULL;
    int rc = run_cmd(argv, text, &out, &err, 20000);
    cr_expect_eq(rc, 0, "promtool check metrics exit %d:\n%s%s\n--- input:\n%s", rc, out ? out : "",
                 err ? err : "", text);
    free(out);
    free(err);
    free(text);

    /* And the header a scraper needs to pick the 0.0.4 text parser. */
    const char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char *resp = http_raw(d.admin_port, req, sizeof req - 1, NULL, 5000);
    cr_assert_not_null(resp);
    cr_expect_not_null(strstr(resp, "\r\nContent-Type: text/plain; version=0.0.4"), "%.300s", resp);
    free(resp);
    nudge_close(p);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(metrics, the_sample_alert_rules_pass_promtool_and_name_only_exported_metrics)
{
    char tool[512];
    cr_assert_not_null(promtool_path(tool, sizeof tool), "promtool not found");
    const char *rules = "broker/dist/alerts.yml";
    const char *argv[] = {tool, "check", "rules", rules, NULL};
    char *out = NULL, *err = NULL;
    int rc = run_cmd(argv, NULL, &out, &err, 20000);
    cr_expect_eq(rc, 0, "promtool check rules exit %d:\n%s%s", rc, out ? out : "", err ? err : "");
    free(out);
    free(err);
    FILE *f = fopen(rules, "r");
    cr_assert_not_null(f, "%s (tests run from the repository's top)", rules);
    char text[16384];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    struct nudged d;
    subcheck_start(&d, NULL);
    char *metrics = get_metrics(&d);
    int named = 0;
    for (char *p = text; (p = strstr(p, "nudge_"));) {
        size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyz_");
        char name[128], want[160];
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        p += len;
        const char *suffixes[] = {"_bucket", "_sum", "_count"};
        for (int i = 0; i < 3; i++) {
            size_t sl = strlen(suffixes[i]), nl = strlen(name);
            if (nl > sl && !strcmp(name + nl - sl, suffixes[i])) name[nl - sl] = '\0';
        }
        snprintf(want, sizeof want, "# TYPE %s ", name);
        cr_expect(strstr(metrics, want), "alerts.yml names %s, which /metrics does not have", name);
        named++;
    }
    cr_expect_geq(named, 10, "read the rules' metric names");
    free(metrics);
    cr_assert_eq(nudged_stop(&d), 0);
}
