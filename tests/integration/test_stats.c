/* GET /stats on the admin port (docs/operations.md §GET /stats): every figure must match what the
 * test itself did to a fresh broker — connections by transport, accepted counts, subscriptions,
 * topics, publishes, hints, deliveries, errors, bytes, uptime, identity. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "nudge.h"
#include "subcheck.h"
#include "wsc.h"

static json_t *stats(const struct nudged *d)
{
    json_t *j = nudged_stats(d);
    cr_assert_not_null(j, "GET /stats failed or was not JSON");
    return j;
}

/* stats_int of a fresh /stats. */
static int64_t stat_now(const struct nudged *d, const char *path)
{
    json_t *j = stats(d);
    int64_t v = stats_int(j, path);
    json_decref(j);
    return v;
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

Test(stats, fresh_broker_reports_zeroes_and_its_identity)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    json_t *j = stats(&d);
    const char *fields[] = {"connections.pub", "connections.ws", "accepted.pub", "accepted.ws",
                            "subscriptions",   "topics",         "publishes",    "hints",
                            "deliveries",      "errors",         "slow_closes"};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        cr_expect_eq(stats_int(j, fields[i]), 0, "fresh broker: %s = %lld", fields[i],
                     (long long)stats_int(j, fields[i]));
    cr_expect_eq(stats_int(j, "connections.admin"), 1, "the /stats request itself is counted");
    cr_expect_eq(stats_int(j, "accepted.admin"), 1);
    cr_expect(json_is_number(json_object_get(j, "uptime_s")), "uptime_s is not a number");
    cr_expect(json_is_integer(json_object_get(j, "bytes_in")));
    cr_expect(json_is_integer(json_object_get(j, "bytes_out")));
    const char *epoch = json_string_value(json_object_get(j, "epoch"));
    cr_assert_not_null(epoch);
    cr_expect(strlen(epoch) == 16 && strspn(epoch, "0123456789abcdef") == 16, "epoch '%s'", epoch);
    const char *version = json_string_value(json_object_get(j, "version"));
    cr_assert_not_null(version);
    cr_expect(strlen(version) > 0);

    /* The WebSocket welcome tells the same story. */
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, NULL), WSC_OK);
    cr_expect_str_eq(w.epoch, epoch);
    wsc_close(&w, 1000);
    nudge_client_t *c = subcheck_publisher(&d, NULL);
    cr_expect_str_eq(nudge_epoch(c), epoch);
    nudge_close(c);
    json_decref(j);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(stats, uptime_increases_and_limits_reflect_the_flags)
{
    struct nudged d;
    const char *args[] = {"--max-queue", "77", "--max-subs", "33", NULL};
    subcheck_start(&d, args);
    json_t *a = stats(&d);
    sleep_ms(1100);
    json_t *b = stats(&d);
    double ua = json_number_value(json_object_get(a, "uptime_s"));
    double ub = json_number_value(json_object_get(b, "uptime_s"));
    cr_expect(ua >= 0 && ua < 30, "uptime_s %.3f right after start", ua);
    cr_expect(ub - ua >= 1.0 && ub - ua < 5.0, "uptime_s went %.3f -> %.3f over 1.1 s", ua, ub);
    cr_expect_eq(stats_int(b, "accepted.admin"), 2);
    cr_expect_eq(stats_int(b, "limits.max_queue"), 77, "limits.max_queue = %lld",
                 (long long)stats_int(b, "limits.max_queue"));
    cr_expect_eq(stats_int(b, "limits.max_subs"), 33, "limits.max_subs = %lld",
                 (long long)stats_int(b, "limits.max_subs"));
    cr_expect_eq(stats_int(b, "limits.max_frame"), 65536, "default max_frame");
    json_decref(a);
    json_decref(b);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(stats, healthz_and_readyz_answer_ok_and_ready_and_other_paths_404)
{
    struct nudged d = {0};
    cr_assert_eq(nudged_start(&d, NULL), 0);
    const char *paths[] = {"/healthz", "/readyz", "/readyz?verbose=1", "/health"};
    const int want[] = {200, 200, 200, 404};
    const char *text[] = {"ok\n", "ready\n", "ready\n", NULL};
    for (int i = 0; i < 4; i++) {
        int status = 0;
        char *body = http_get(d.admin_port, paths[i], &status);
        cr_assert_not_null(body, "%s answered", paths[i]);
        cr_expect_eq(status, want[i], "%s: %d", paths[i], status);
        if (text[i])
            cr_expect_str_eq(body, text[i], "%s", paths[i]);
        else
            cr_expect(strstr(body, "/healthz") && strstr(body, "/readyz"), "%s", body);
        free(body);
    }
    nudged_stop(&d);
}

Test(stats, counts_connections_by_transport_and_releases_them)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w[3];
    cr_assert_eq(wsc_open(&w[0], d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_open(&w[1], d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    cr_assert_eq(wsc_connect(&w[2], d.ws_port, NULL), WSC_OK); /* upgraded, no hello yet */
    nudge_client_t *p1 = subcheck_publisher(&d, NULL), *p2 = subcheck_publisher(&d, NULL);
    struct pubraw raw;
    cr_assert_eq(pubraw_connect(&raw, d.pub_port, 0), PUBRAW_OK); /* TCP only, no hello */

    cr_expect_eq(nudged_wait_stat(&d, "connections.ws", 3, 5000), 3);
    cr_expect_eq(nudged_wait_stat(&d, "connections.pub", 3, 5000), 3);
    json_t *j = stats(&d);
    cr_expect_eq(stats_int(j, "accepted.ws"), 3);
    cr_expect_eq(stats_int(j, "accepted.pub"), 3);
    cr_expect_eq(stats_int(j, "connections.admin"), 1);
    int64_t adm = stats_int(j, "accepted.admin");
    cr_expect(adm >= 3, "accepted.admin %lld after at least 3 requests", (long long)adm);
    json_decref(j);

    /* Leave: politely, abruptly, and by closing TCP without any handshake. */
    wsc_close(&w[0], 1000);
    wsc_free(&w[1], 1);
    wsc_free(&w[2], 0);
    nudge_close(p1);
    nudge_close(p2);
    pubraw_close(&raw, 1);
    cr_expect_eq(nudged_wait_stat(&d, "connections.ws", 0, 5000), 0, "ws connections not released");
    cr_expect_eq(nudged_wait_stat(&d, "connections.pub", 0, 5000), 0,
                 "pub connections not released");
    j = stats(&d);
    cr_expect_eq(stats_int(j, "accepted.ws"), 3, "accepted counts never go down");
    cr_expect_eq(stats_int(j, "accepted.pub"), 3);
    cr_expect(stats_int(j, "accepted.admin") > adm);
    cr_expect_eq(stats_int(j, "errors"), 0, "nobody misbehaved: errors %lld",
                 (long long)stats_int(j, "errors"));
    json_decref(j);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(stats, counts_publishes_hints_deliveries_subscriptions_and_topics)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc s1, s2, s3;
    cr_assert_eq(wsc_open(&s1, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_open(&s2, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    cr_assert_eq(wsc_open(&s3, d.ws_port, NULL), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&s1, "a", "b", NULL), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&s2, "a", NULL), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&s3, "c", NULL), WSC_OK);

    json_t *j = stats(&d);
    cr_expect_eq(stats_int(j, "subscriptions"), 4);
    cr_expect_eq(stats_int(j, "topics"), 3, "subscribed topics a, b, c are known");
    cr_expect_eq(stats_int(j, "publishes"), 0);
    int64_t out0 = stats_int(j, "bytes_out"), in0 = stats_int(j, "bytes_in");
    cr_expect(in0 > 0, "bytes_in %lld after 3 hellos and 3 subs", (long long)in0);
    cr_expect(out0 > 0, "bytes_out %lld after 3 welcomes and 4 subscribed", (long long)out0);
    json_decref(j);

    nudge_client_t *p1 = subcheck_publisher(&d, NULL), *p2 = subcheck_publisher(&d, NULL);
    const char *ta[1] = {"a"}, *tab[2] = {"a", "b"}, *td[1] = {"d"};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(nudge_publish(p1, ta, 1, "{\"n\":1}", NULL), NUDGE_OK);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(nudge_publish(p2, tab, 2, NULL, NULL), NUDGE_OK);
    cr_assert_eq(nudge_publish(p1, td, 1, NULL, NULL), NUDGE_OK);
    /* A rejected publish changes none of the publish counters (sent raw: libnudge checks topics
     * itself). */
    struct pubraw raw;
    cr_assert_eq(pubraw_connect(&raw, d.pub_port, 1), PUBRAW_OK);
    const char *bad[2] = {"a", "bad topic"};
    cr_assert_eq(pubraw_publish(&raw, 1, bad, 2, NULL, 0), PUBRAW_OK);
    struct pub_msg pm;
    cr_assert_eq(pubraw_recv(&raw, &pm, 5000), PUBRAW_OK);
    cr_expect(pm.type == PUB_ERROR && pm.code == WIRE_C_BAD_TOPIC);
    pub_msg_clear(&pm);
    pubraw_close(&raw, 0);

    expect_hints(&s1, 9, "s1 (a, b)");
    expect_hints(&s2, 7, "s2 (a)");
    expect_hints(&s3, 0, "s3 (c)");

    j = stats(&d);
    cr_expect_eq(stats_int(j, "publishes"), 8, "publishes %lld",
                 (long long)stats_int(j, "publishes"));
    cr_expect_eq(stats_int(j, "hints"), 10, "hints %lld (5 + 2x2 + 1)",
                 (long long)stats_int(j, "hints"));
    cr_expect_eq(stats_int(j, "deliveries"), 16, "deliveries %lld (a: 7 x 2, b: 2 x 1)",
                 (long long)stats_int(j, "deliveries"));
    cr_expect_eq(stats_int(j, "topics"), 4, "topics %lld (a, b, c, d)",
                 (long long)stats_int(j, "topics"));
    cr_expect_eq(stats_int(j, "subscriptions"), 4);
    cr_expect_eq(stats_int(j, "errors"), 1, "errors %lld (one bad_topic)",
                 (long long)stats_int(j, "errors"));
    cr_expect(stats_int(j, "bytes_out") > out0 + 16 * 20, "bytes_out %lld -> %lld for 16 hints",
              (long long)out0, (long long)stats_int(j, "bytes_out"));
    cr_expect(stats_int(j, "bytes_in") > in0, "bytes_in did not grow with 9 publishes");
    json_decref(j);

    /* Unsubscribing and leaving release subscriptions. */
    const char *ub[1] = {"b"};
    cr_assert_eq(wsc_unsubscribe(&s1, ub, 1), WSC_OK);
    cr_expect_eq(stat_now(&d, "subscriptions"), 3);
    wsc_close(&s2, 1000);
    cr_expect_eq(nudged_wait_stat(&d, "subscriptions", 2, 5000), 2,
                 "a closed connection's subscriptions are released");
    wsc_free(&s3, 1);
    cr_expect_eq(nudged_wait_stat(&d, "subscriptions", 1, 5000), 1,
                 "an aborted connection's subscriptions are released");

    nudge_close(p1);
    nudge_close(p2);
    wsc_close(&s1, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(stats, counts_errors_for_bad_messages_and_protocol_faults)
{
    struct nudged d;
    const char *args[] = {"--max-frame", "256", NULL};
    subcheck_start(&d, args);
    cr_expect_eq(stat_now(&d, "errors"), 0);

    /* A WebSocket message that is not JSON: one error message, connection stays. */
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_send_text(&w, "{oops"), WSC_OK);
    struct sub_msg m;
    cr_assert_eq(wsc_recv_msg(&w, &m, 5000), WSC_OK);
    cr_expect(m.type == SUB_ERROR && m.code == WIRE_C_BAD_FRAME);
    sub_msg_clear(&m);
    cr_expect_eq(stat_now(&d, "errors"), 1, "after one bad WebSocket message");

    /* A publish with a bad topic: one error message. */
    struct pubraw p;
    cr_assert_eq(pubraw_connect(&p, d.pub_port, 1), PUBRAW_OK);
    const char *t[1] = {"no spaces allowed"};
    cr_assert_eq(pubraw_publish(&p, 1, t, 1, NULL, 0), PUBRAW_OK);
    struct pub_msg pm;
    cr_assert_eq(pubraw_recv(&p, &pm, 5000), PUBRAW_OK);
    cr_expect(pm.type == PUB_ERROR && pm.code == WIRE_C_BAD_TOPIC);
    pub_msg_clear(&pm);
    cr_expect_eq(stat_now(&d, "errors"), 2, "after one bad topic");

    /* A WebSocket message over --max-frame: closed with 1009, a protocol fault. */
    char big[400];
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[0] = '{';
    big[sizeof big - 2] = '}';
    cr_assert_eq(wsc_send_text(&w, big), WSC_OK);
    cr_expect_eq(wsc_recv(&w, 5000), WSC_CLOSED);
    cr_expect_eq(w.close_code, 1009);
    cr_expect_eq(nudged_wait_stat(&d, "errors", 3, 3000), 3, "after one oversized message");

    json_t *j = stats(&d);
    cr_expect_eq(stats_int(j, "slow_closes"), 0);
    cr_expect_eq(stats_int(j, "publishes"), 0);
    json_decref(j);
    wsc_free(&w, 0);
    pubraw_close(&p, 0);
    cr_assert_eq(nudged_stop(&d), 0);
}
