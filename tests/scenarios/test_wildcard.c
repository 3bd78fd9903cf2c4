/* Wildcard subscriptions (docs/guarantees.md §Wildcards): patterns of ':'-separated segments,
 * '*' as a whole segment matches exactly one segment, '**' as the last segment matches one or
 * more. Hints of matching topics arrive under their own names, once per publish per connection
 * however many of its subscriptions match; a pattern cannot be resumed (reset "wildcard");
 * malformed patterns are bad_topic. Also here: one user on two devices (two connections on the
 * same topic) gets every hint on both. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "nudge.h"
#include "subcheck.h"
#include "wsc.h"

/* ---- helpers ------------------------------------------------------------------------------- */

/* Publish to the NULL-terminated topics with optional origin; returns the first topic's seq. */
static uint64_t pub_v(nudge_client_t *c, const char *origin, ...)
{
    const char *t[16];
    size_t n = 0;
    va_list ap;
    va_start(ap, origin);
    const char *s;
    while ((s = va_arg(ap, const char *)) && n < 16)
        t[n++] = s;
    va_end(ap);
    uint64_t seqs[16];
    struct nudge_pub pb = {t, n, NULL, origin, 0};
    int rc = nudge_publish_ex(c, &pb, seqs);
    cr_assert_eq(rc, NUDGE_OK, "publish to %s: %s (%s)", t[0], nudge_strerror(rc),
                 nudge_last_error(c));
    return seqs[0];
}

/* The broker's global position (/stats gpos): a pattern is subscribed at it. */
static uint64_t gpos(const struct nudged *d)
{
    json_t *st = nudged_stats(d);
    cr_assert_not_null(st);
    int64_t g = stats_int(st, "gpos");
    json_decref(st);
    cr_assert_geq(g, 0);
    return (uint64_t)g;
}

/* Subscribe to one topic and return its subscribed seq. */
static uint64_t sub1(struct wsc *w, const char *topic)
{
    uint64_t seq = 0;
    const char *t[1] = {topic};
    int rc = wsc_subscribe(w, t, 1, &seq);
    cr_assert_eq(rc, WSC_OK, "subscribe %s: rc %d (error %d)", topic, rc, w->last_error);
    return seq;
}

/* ---- matching ------------------------------------------------------------------------------ */

Test(wildcard, star_matches_exactly_one_segment)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(sub1(&w, "project:*"), 0, "a pattern is subscribed at the global position: 0");
    nudge_client_t *c = subcheck_publisher(&d, "wildcard-test");
    cr_assert_eq(pub_v(c, NULL, "project:17", NULL), 1);
    cr_assert_eq(pub_v(c, NULL, "project:17:tasks", NULL), 1);
    cr_assert_eq(pub_v(c, NULL, "user:1", NULL), 1);
    cr_assert_eq(pub_v(c, NULL, "project", NULL), 1);
    cr_assert_eq(pub_v(c, NULL, "projects:1", NULL), 1);
    cr_assert_eq(pub_v(c, NULL, "project:18", NULL), 1);
    cr_assert_eq(pub_v(c, NULL, "project:17", NULL), 2);
    subcheck_expect_hint_own(&w, "project:17", 1, 0);
    subcheck_expect_hint_own(&w, "project:18", 1, 0);
    subcheck_expect_hint_own(&w, "project:17", 2, 0);
    subcheck_expect_silence(&w, 300,
                            "project:* must not match project:17:tasks, user:1, project, "
                            "projects:1");
    /* '*' in the middle: exactly one segment there. */
    cr_assert_eq(sub1(&w, "org:*:board"), gpos(&d), "a pattern's seq is the global position");
    pub_v(c, NULL, "org:3:board", "org:3:board:9", "org:board", "org:3:4:board", NULL);
    subcheck_expect_hint_own(&w, "org:3:board", 1, 0);
    subcheck_expect_silence(&w, 300, "org:*:board must match org:3:board only");
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(wildcard, double_star_matches_one_or_more_trailing_segments)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    cr_assert_eq(sub1(&w, "org:**"), 0);
    nudge_client_t *c = subcheck_publisher(&d, "wildcard-test");
    pub_v(c, NULL, "org:1", NULL);
    pub_v(c, NULL, "org:1:board:9", NULL);
    pub_v(c, NULL, "org", NULL);
    pub_v(c, NULL, "orgs:1", NULL);
    pub_v(c, NULL, "x:org:1", NULL);
    pub_v(c, NULL, "org:1:a:b:c:d:e", NULL);
    pub_v(c, NULL, "org:1", NULL);
    subcheck_expect_hint_own(&w, "org:1", 1, 0);
    subcheck_expect_hint_own(&w, "org:1:board:9", 1, 0);
    subcheck_expect_hint_own(&w, "org:1:a:b:c:d:e", 1, 0);
    subcheck_expect_hint_own(&w, "org:1", 2, 0);
    subcheck_expect_silence(&w, 300, "org:** must not match org, orgs:1, x:org:1");
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(wildcard, overlapping_exact_and_wildcard_subscriptions_get_each_publish_once)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    nudge_client_t *c = subcheck_publisher(&d, "wildcard-test");
    pub_v(c, NULL, "project:17", NULL); /* seq 1 before anyone listens */
    cr_assert_eq(sub1(&w, "project:*"), gpos(&d));
    cr_assert_eq(sub1(&w, "project:**"), gpos(&d));
    cr_assert_eq(sub1(&w, "project:17"), 1);
    cr_assert_eq(sub1(&w, "*:17"), gpos(&d));
    for (uint64_t i = 2; i <= 6; i++) {
        cr_assert_eq(pub_v(c, NULL, "project:17", NULL), i);
        subcheck_expect_hint_own(&w, "project:17", i, 0);
    }
    /* One publish naming two topics the connection matches through different subscriptions. */
    cr_assert_eq(pub_v(c, NULL, "project:17", "project:18", NULL), 7);
    subcheck_expect_hint_own(&w, "project:17", 7, 0);
    subcheck_expect_hint_own(&w, "project:18", 1, 0);
    /* A topic named twice in one publish is two changes: two hints, not a duplicate. */
    cr_assert_eq(pub_v(c, NULL, "project:18", "project:18", NULL), 2);
    subcheck_expect_hint_own(&w, "project:18", 2, 0);
    subcheck_expect_hint_own(&w, "project:18", 3, 0);
    subcheck_expect_silence(&w, 300, "each publish once per connection");
    /* Dropping the exact subscription keeps the wildcard ones delivering, still once. */
    const char *t[1] = {"project:17"};
    cr_assert_eq(wsc_unsubscribe(&w, t, 1), WSC_OK);
    cr_assert_eq(pub_v(c, NULL, "project:17", NULL), 8);
    subcheck_expect_hint_own(&w, "project:17", 8, 0);
    subcheck_expect_silence(&w, 300, "each publish once per connection");
    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st);
    cr_expect_eq(stats_int(st, "subscriptions"), 3);
    json_decref(st);
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(wildcard, unsubscribing_the_pattern_stops_delivery)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(sub1(&w, "project:*"), gpos(&d));
    cr_assert_eq(sub1(&w, "user:42"), 0);
    nudge_client_t *c = subcheck_publisher(&d, "wildcard-test");
    pub_v(c, NULL, "project:1", NULL);
    subcheck_expect_hint_own(&w, "project:1", 1, 0);
    const char *t[1] = {"project:*"};
    cr_assert_eq(wsc_unsubscribe(&w, t, 1), WSC_OK);
    pub_v(c, NULL, "project:1", NULL);
    pub_v(c, NULL, "project:2", NULL);
    pub_v(c, NULL, "user:42", NULL);
    subcheck_expect_hint_own(&w, "user:42", 1, 0); /* the other subscription still delivers */
    subcheck_expect_silence(&w, 300, "no hint of project:* after unsubscribed");
    /* Unsubscribing it again: not_subscribed. */
    cr_assert_eq(wsc_unsubscribe(&w, t, 1), WSC_UNEXPECTED);
    cr_expect_eq(w.last_error, WIRE_C_NOT_SUBSCRIBED);
    /* Subscribing again: live from now on, nothing from while it was away. */
    cr_assert_eq(sub1(&w, "project:*"), gpos(&d));
    pub_v(c, NULL, "project:2", NULL);
    subcheck_expect_hint_own(&w, "project:2", 2, 0);
    subcheck_expect_silence(&w, 200, "only live hints after re-subscribing a pattern");
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(wildcard, malformed_patterns_get_bad_topic_and_the_rest_of_the_sub_still_works)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    static const char *const topics[] = {"pro*",  "a:**:b", "a:*b",  "*x:1",
                                         "a:***", "ok:*",   "a b:*", "ok:**"};
    static const int bad[] = {1, 1, 1, 1, 1, 0, 1, 0};
    enum { N = sizeof topics / sizeof topics[0] };
    subcheck_send_sub(&w, 5, topics, N, NULL, NULL);
    for (int i = 0; i < N; i++) {
        struct sub_msg m;
        char what[64];
        snprintf(what, sizeof what, "reply for '%s'", topics[i]);
        subcheck_expect_type(&w, bad[i] ? SUB_ERROR : SUB_SUBSCRIBED, &m, what);
        cr_assert(wstr_eq(m.topic, topics[i]), "%s: topic '%.*s'", what, (int)m.topic.len,
                  m.topic.p);
        cr_assert_eq(m.id, 5);
        if (bad[i])
            cr_assert_eq(m.code, WIRE_C_BAD_TOPIC, "%s: code %d", what, m.code);
        else
            cr_assert_eq(m.seq, 0);
        sub_msg_clear(&m);
    }
    /* Publishers cannot publish to a pattern. */
    nudge_client_t *c = subcheck_publisher(&d, "wildcard-test");
    const char *pt[1] = {"ok:*"};
    struct pubraw p;
    cr_assert_eq(pubraw_connect(&p, d.pub_port, 1), PUBRAW_OK);
    cr_assert_eq(pubraw_publish(&p, 1, pt, 1, NULL, 0), PUBRAW_OK);
    struct pub_msg a;
    cr_assert_eq(pubraw_recv(&p, &a, 5000), PUBRAW_OK);
    cr_expect(a.type == PUB_ERROR && a.code == WIRE_C_BAD_TOPIC && a.id == 1,
              "publish to a pattern: type %d code %d", (int)a.type, a.code);
    pub_msg_clear(&a);
    pubraw_close(&p, 0);
    pub_v(c, NULL, "ok:1", NULL);
    subcheck_expect_hint_own(&w, "ok:1", 1, 0);
    subcheck_expect_silence(&w, 200, "one hint for ok:1 although ok:* and ok:** both match");
    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st);
    cr_expect_eq(stats_int(st, "subscriptions"), 2);
    json_decref(st);
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* Resume sub of the pattern (and optional exact topic) at pos/epoch; checks the subscribed
 * replies (the pattern's at the global position want_g). */
static void resume_pattern(struct wsc *w, const char *pattern, const char *epoch, int64_t pos,
                           uint64_t want_g)
{
    const char *t[1] = {pattern};
    int64_t p[1] = {pos};
    subcheck_send_sub(w, w->next_id++, t, 1, epoch, p);
    struct sub_msg m;
    subcheck_expect_type(w, SUB_SUBSCRIBED, &m, "subscribed to the pattern");
    cr_assert(wstr_eq(m.topic, pattern));
    cr_assert_eq(m.seq, want_g, "the pattern's subscribed seq is the global position");
    sub_msg_clear(&m);
}

Test(wildcard, resuming_a_pattern_gets_one_hint_per_topic_changed_under_it_since_its_position)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    nudge_client_t *c = subcheck_publisher(&d, "wildcard-test");
    for (int i = 0; i < 3; i++)
        pub_v(c, NULL, "project:1", NULL);
    pub_v(c, NULL, "other:1", NULL); /* global position 4 */
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    cr_assert_eq(sub1(&w, "project:*"), 4, "subscribed at the global position");
    /* A ping tells how far the patterns are caught up. */
    struct sub_msg m;
    struct wire_buf b = {0};
    cr_assert_eq(sub_encode_ping(SUB_MSGPACK, &b, 1, 7), 0);
    cr_assert_eq(wsc_send_msg(&w, b.data, b.len), WSC_OK);
    wire_buf_free(&b);
    subcheck_expect_type(&w, SUB_PONG, &m, "pong");
    cr_assert(m.has_g && m.g == 4 && m.id == 7, "pong g %llu", (unsigned long long)m.g);
    sub_msg_clear(&m);
    wsc_free(&w, 1); /* gone */

    pub_v(c, NULL, "project:1", NULL);       /* 5: seq 4 */
    pub_v(c, NULL, "project:2", NULL);       /* 6: a topic the client never heard of */
    pub_v(c, NULL, "other:1", NULL);         /* 7: not under the pattern */
    pub_v(c, NULL, "project:3", NULL);       /* 8 */
    pub_v(c, NULL, "project:3", NULL);       /* 9 */
    pub_v(c, NULL, "project:1:tasks", NULL); /* 10: '*' is one segment */
    cr_assert_eq(gpos(&d), 10);

    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    char epoch[32];
    snprintf(epoch, sizeof epoch, "%s", w.epoch);
    resume_pattern(&w, "project:*", epoch, 4, 10);
    /* In order of change; n counts every change the broker remembers of the topic. */
    subcheck_expect_hint_n(&w, "project:1", 4, 4, 0);
    subcheck_expect_hint_n(&w, "project:2", 1, 1, 0);
    subcheck_expect_hint_n(&w, "project:3", 2, 2, 0);
    subcheck_expect_silence(&w, 200, "one hint per changed topic under the pattern, no more");
    /* Live from there, once each. */
    pub_v(c, NULL, "project:2", NULL);
    subcheck_expect_hint_n(&w, "project:2", 2, 1, 0);
    wsc_close(&w, 1000);

    /* Up to date: nothing. Ahead: reset "ahead". Another epoch: reset "epoch". */
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    resume_pattern(&w, "project:*", epoch, 11, 11);
    subcheck_expect_silence(&w, 200, "nothing changed since 11");
    resume_pattern(&w, "other:*", epoch, 12, 11);
    subcheck_expect_reset(&w, "other:*", 11, "ahead");
    resume_pattern(&w, "org:**", "0123456789abcdef", 3, 11);
    subcheck_expect_reset(&w, "org:**", 11, "epoch");
    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st);
    cr_expect_eq(stats_int(st, "resets"), 2);
    cr_expect_eq(stats_int(st, "caught_up"), 3);
    json_decref(st);
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(wildcard, an_exact_topic_resumed_with_a_pattern_that_caught_it_up_is_not_repeated)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    nudge_client_t *c = subcheck_publisher(&d, "wildcard-test");
    for (int i = 0; i < 3; i++)
        pub_v(c, NULL, "project:1", NULL);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    /* The pattern from global position 1 catches project:1 up to 3; the exact resume of
     * project:1 from 1 that follows in the same sub only confirms it. */
    const char *topics[2] = {"project:*", "project:1"};
    int64_t pos[2] = {1, 1};
    subcheck_send_sub(&w, 9, topics, 2, w.epoch, pos);
    struct sub_msg m;
    subcheck_expect_type(&w, SUB_SUBSCRIBED, &m, "subscribed project:*");
    cr_assert_eq(m.seq, 3);
    sub_msg_clear(&m);
    subcheck_expect_hint_n(&w, "project:1", 3, 3, 0);
    subcheck_expect_type(&w, SUB_SUBSCRIBED, &m, "subscribed project:1");
    cr_assert_eq(m.seq, 3, "confirmed at what the pattern's catch-up gave");
    sub_msg_clear(&m);
    subcheck_expect_silence(&w, 200, "no second catch-up of project:1");
    pub_v(c, NULL, "project:1", NULL);
    subcheck_expect_hint_n(&w, "project:1", 4, 1, 0);
    subcheck_expect_silence(&w, 200, "each live hint once");
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- one user, two devices ----------------------------------------------------------------- */

Test(wildcard, one_user_on_web_and_phone_gets_every_hint_on_both)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc web, phone;
    cr_assert_eq(wsc_open(&web, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_open(&phone, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    cr_assert_eq(sub1(&web, "user:42"), 0);
    cr_assert_eq(sub1(&phone, "user:42"), 0);
    cr_assert_eq(sub1(&phone, "user:*"), 0); /* the phone also watches every user */
    nudge_client_t *c = subcheck_publisher(&d, "wildcard-test");
    for (uint64_t i = 1; i <= 20; i++) {
        /* every third change is made from the web tab: it says so with origin */
        const char *origin = i % 3 == 0 ? web.conn_id : NULL;
        cr_assert_eq(pub_v(c, origin, "user:42", NULL), i);
    }
    for (uint64_t i = 1; i <= 20; i++) {
        subcheck_expect_hint_own(&web, "user:42", i, i % 3 == 0);
        subcheck_expect_hint_own(&phone, "user:42", i, 0);
    }
    subcheck_expect_silence(&web, 200, "web: nothing more");
    subcheck_expect_silence(&phone, 100, "phone: nothing more");
    nudge_close(c);
    wsc_close(&web, 1000);
    wsc_close(&phone, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(wildcard, the_device_that_made_a_change_can_skip_its_own_hint)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc web, phone;
    cr_assert_eq(wsc_open(&web, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_open(&phone, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    cr_assert_eq(sub1(&web, "user:42"), 0);
    cr_assert_eq(sub1(&web, "user:*"), 0); /* matching twice changes nothing */
    cr_assert_eq(sub1(&phone, "user:42"), 0);
    nudge_client_t *c = subcheck_publisher(&d, "wildcard-test");
    const char *t[1] = {"user:42"};
    /* seq 1: from the web, skip_origin; seq 2: from the web, own; seq 3: from elsewhere. */
    struct nudge_pub p1 = {t, 1, "{\"by\":\"web\"}", web.conn_id, 1};
    struct nudge_pub p2 = {t, 1, NULL, web.conn_id, 0};
    struct nudge_pub p3 = {t, 1, NULL, NULL, 0};
    uint64_t s[3];
    cr_assert_eq(nudge_publish_ex(c, &p1, &s[0]), NUDGE_OK);
    cr_assert_eq(nudge_publish_ex(c, &p2, &s[1]), NUDGE_OK);
    cr_assert_eq(nudge_publish_ex(c, &p3, &s[2]), NUDGE_OK);
    cr_assert(s[0] == 1 && s[1] == 2 && s[2] == 3);
    /* The web tab knows seq 1 (it made that change): its next hint is 2, without "n". */
    subcheck_expect_hint_own(&web, "user:42", 2, 1);
    subcheck_expect_hint_own(&web, "user:42", 3, 0);
    subcheck_expect_silence(&web, 200, "web: nothing more");
    for (uint64_t i = 1; i <= 3; i++)
        subcheck_expect_hint_own(&phone, "user:42", i, 0);
    subcheck_expect_silence(&phone, 100, "phone: nothing more");
    nudge_close(c);
    wsc_close(&web, 1000);
    wsc_close(&phone, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}
