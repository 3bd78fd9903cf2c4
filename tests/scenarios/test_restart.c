/* Restart without the data (docs/guarantees.md §Durability): a broker that comes back with
 * --memory or another data directory is a new epoch (test_durable.c: the same directory keeps
 * it). A client that resumes with the old epoch and its positions gets,
 * for every topic, "subscribed" with the new broker's seq and then one reset "epoch" at that
 * seq — whatever its old position (below, equal to or above the new seq) — never silence; then
 * live hints continue from there. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "nudge.h"
#include "subcheck.h"
#include "wsc.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static void pub_n(nudge_client_t *c, const char *topic, int n, uint64_t first)
{
    const char *t[1] = {topic};
    for (int i = 0; i < n; i++) {
        uint64_t seq = 0;
        int rc = nudge_publish(c, t, 1, "{\"by\":\"restart\"}", &seq);
        cr_assert_eq(rc, NUDGE_OK, "publish to %s: %s", topic, nudge_strerror(rc));
        cr_assert_eq(seq, first + (uint64_t)i, "%s: seq %llu, want %llu", topic,
                     (unsigned long long)seq, (unsigned long long)(first + (uint64_t)i));
    }
}

/* The next message must be of type want about topic with seq. */
static void expect_msg(struct wsc *w, enum sub_type want, const char *topic, uint64_t seq,
                       const char *reason)
{
    struct sub_msg m;
    int rc = wsc_recv_msg(w, &m, 5000);
    cr_assert_eq(rc, WSC_OK, "waiting for %s %s seq %llu: rc %d — silence is not allowed",
                 subcheck_type_name(want), topic, (unsigned long long)seq, rc);
    cr_assert_eq(m.type, want, "got %s '%.*s' seq %llu, want %s %s seq %llu",
                 subcheck_type_name(m.type), (int)m.topic.len, m.topic.p ? m.topic.p : "",
                 (unsigned long long)m.seq, subcheck_type_name(want), topic,
                 (unsigned long long)seq);
    cr_assert(wstr_eq(m.topic, topic), "%s: topic '%.*s', want %s", subcheck_type_name(want),
              (int)m.topic.len, m.topic.p, topic);
    cr_assert_eq(m.seq, seq, "%s %s: seq %llu, want %llu", subcheck_type_name(want), topic,
                 (unsigned long long)m.seq, (unsigned long long)seq);
    if (reason)
        cr_assert(wstr_eq(m.reason, reason), "reset %s: reason '%.*s', want %s", topic,
                  (int)m.reason.len, m.reason.p, reason);
    if (want == SUB_HINT) cr_assert_leq(m.count, 1, "hint %s coalesced", topic);
    sub_msg_clear(&m);
}

static void expect_silence(struct wsc *w, int ms)
{
    struct sub_msg m;
    int rc = wsc_recv_msg(w, &m, ms);
    if (rc == WSC_OK)
        cr_assert_fail("unexpected %s '%.*s' seq %llu", subcheck_type_name(m.type),
                       (int)m.topic.len, m.topic.p ? m.topic.p : "", (unsigned long long)m.seq);
}

/* ---- tests --------------------------------------------------------------------------------- */

#define NT 4
static const char *const topics[NT] = {"project:17", "user:42", "doc:9", "quiet:1"};

Test(restart, resuming_after_a_kill_gets_reset_epoch_for_every_topic_then_live_hints, .timeout = 60)
{
    struct nudged a;
    subcheck_start(&a, NULL);
    nudge_client_t *c = subcheck_publisher(&a, "restart-test");
    char old_epoch[32];
    snprintf(old_epoch, sizeof old_epoch, "%s", nudge_epoch(c));
    pub_n(c, "project:17", 5, 1);
    pub_n(c, "user:42", 3, 1);
    pub_n(c, "doc:9", 1, 1);

    /* Two clients (JSON and msgpack) follow all four topics and know their positions. */
    struct wsc w[2];
    int64_t pos[NT];
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(wsc_open(&w[k], a.ws_port, k ? SUB_PROTO_MSGPACK : SUB_PROTO_JSON), WSC_OK);
        cr_assert_str_eq(w[k].epoch, old_epoch);
        uint64_t seqs[NT];
        cr_assert_eq(wsc_subscribe(&w[k], topics, NT, seqs), WSC_OK);
        for (int i = 0; i < NT; i++)
            pos[i] = (int64_t)seqs[i];
    }
    cr_assert(pos[0] == 5 && pos[1] == 3 && pos[2] == 1 && pos[3] == 0);
    json_t *st = nudged_stats(&a);
    cr_assert_not_null(st);
    cr_assert_str_eq(json_string_value(json_object_get(st, "epoch")), old_epoch);
    json_decref(st);

    /* The broker dies; a new one takes over (other ports: the clients are told where). */
    cr_assert_eq(nudged_kill(&a), 0);
    nudge_close(c);
    struct nudged b;
    subcheck_start(&b, NULL);
    c = subcheck_publisher(&b, "restart-test");
    cr_assert_str_neq(nudge_epoch(c), old_epoch, "a restart must be a new epoch");
    /* Before the clients are back, the new broker already has some changes. */
    pub_n(c, "project:17", 2, 1); /* new seq 2 < old position 5: still "epoch", not "ahead" */
    pub_n(c, "doc:9", 1, 1);      /* new seq 1 == old position 1: still "epoch", not nothing */
    /* user:42 and quiet:1 are at 0 on the new broker. */
    static const uint64_t cur[NT] = {2, 0, 1, 0};

    for (int k = 0; k < 2; k++) {
        struct sub_msg m;
        int rc = wsc_recv_msg(&w[k], &m, 2000);
        cr_assert(rc == WSC_EOF || rc == WSC_CLOSED || rc == WSC_EIO,
                  "client %d: the killed broker's connection did not end (rc %d)", k, rc);
        wsc_free(&w[k], 0);
        cr_assert_eq(wsc_open(&w[k], b.ws_port, k ? SUB_PROTO_MSGPACK : SUB_PROTO_JSON), WSC_OK);
        cr_assert_str_neq(w[k].epoch, old_epoch);
        cr_assert_str_eq(w[k].epoch, nudge_epoch(c));
        subcheck_send_sub(&w[k], 1, topics, NT, old_epoch, pos);
        for (int i = 0; i < NT; i++) {
            expect_msg(&w[k], SUB_SUBSCRIBED, topics[i], cur[i], NULL);
            expect_msg(&w[k], SUB_RESET, topics[i], cur[i], "epoch");
        }
        expect_silence(&w[k], 100);
    }

    /* Live from the reset's seq on. */
    pub_n(c, "project:17", 1, 3);
    pub_n(c, "user:42", 2, 1);
    pub_n(c, "quiet:1", 1, 1);
    for (int k = 0; k < 2; k++) {
        expect_msg(&w[k], SUB_HINT, "project:17", 3, NULL);
        expect_msg(&w[k], SUB_HINT, "user:42", 1, NULL);
        expect_msg(&w[k], SUB_HINT, "user:42", 2, NULL);
        expect_msg(&w[k], SUB_HINT, "quiet:1", 1, NULL);
        expect_silence(&w[k], 100);
    }
    st = nudged_stats(&b);
    cr_assert_not_null(st);
    cr_expect_eq(stats_int(st, "resets"), 2 * NT);
    cr_expect_eq(stats_int(st, "replayed"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(st, "epoch")), nudge_epoch(c));
    json_decref(st);

    /* A client that knew the new epoch all along resumes normally (a catch-up, not a reset). */
    struct wsc x;
    cr_assert_eq(wsc_open(&x, b.ws_port, NULL), WSC_OK);
    const char *t1[1] = {"project:17"};
    int64_t p1[1] = {1};
    subcheck_send_sub(&x, 1, t1, 1, x.epoch, p1);
    expect_msg(&x, SUB_SUBSCRIBED, "project:17", 3, NULL);
    struct sub_msg m;
    cr_assert_eq(wsc_recv_msg(&x, &m, 5000), WSC_OK);
    cr_assert(m.type == SUB_HINT && wstr_eq(m.topic, "project:17") && m.seq == 3 && m.count == 2,
              "want one catch-up hint project:17 seq 3 n 2, got %s seq %llu n %u",
              subcheck_type_name(m.type), (unsigned long long)m.seq, m.count);
    sub_msg_clear(&m);
    expect_silence(&x, 100);

    nudge_close(c);
    for (int k = 0; k < 2; k++)
        wsc_close(&w[k], 1000);
    wsc_close(&x, 1000);
    cr_assert_eq(nudged_stop(&b), 0);
}

Test(restart, every_start_is_a_new_epoch_and_seqs_start_again_at_one)
{
    char epochs[3][32];
    for (int i = 0; i < 3; i++) {
        struct nudged d;
        const char *mem[] = {"--memory", NULL}; /* nothing kept: test_durable.c keeps it */
        subcheck_start(&d, mem);
        nudge_client_t *c = subcheck_publisher(&d, "restart-test");
        snprintf(epochs[i], sizeof epochs[i], "%s", nudge_epoch(c));
        cr_assert_eq(strlen(epochs[i]), 16, "epoch '%s' is not 16 hex chars", epochs[i]);
        cr_assert_eq(strspn(epochs[i], "0123456789abcdef"), 16, "epoch '%s'", epochs[i]);
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(epochs[i], epochs[j]);
        pub_n(c, "project:17", 2, 1);
        nudge_close(c);
        cr_assert_eq(nudged_stop(&d), 0);
    }
}
