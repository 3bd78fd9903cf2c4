/* Catch-up by changed topic (docs/guarantees.md §Subscribe and resume): a client that resumes
 * from (epoch, seq) gets, per topic that moved on, exactly one hint — the newest seq, "n" =
 * everything it missed, the newest data — and nothing for the topics that did not change; what
 * it costs is O(changed topics), never O(missed hints). "replay":"all" asks for the old
 * behaviour (every missed hint, one by one) per sub message. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "subcheck.h"
#include "wsc.h"

#define NTOP 96    /* topics the client follows */
#define CHANGED 40 /* of which the first CHANGED move on while it is away */
#define ROUNDS 50  /* publishes to each changed topic while it is away */

static void topic_name(char *buf, size_t len, int i)
{
    snprintf(buf, len, "item:%d", i);
}

/* One publish naming topics [from, to) with data {"i":round}. */
static void publish_range(nudge_client_t *c, int from, int to, int round)
{
    static char names[64][32];
    const char *t[64];
    for (int i = from; i < to; i++) {
        topic_name(names[i - from], sizeof names[0], i);
        t[i - from] = names[i - from];
    }
    char data[32];
    snprintf(data, sizeof data, "{\"i\":%d}", round);
    cr_assert_eq(nudge_publish(c, t, (size_t)(to - from), data, NULL), NUDGE_OK);
}

/* Subscribe to every topic in messages of 16, resuming at pos (pos < 0: fresh), replay mode as
 * given; reads nothing. */
static void sub_all(struct wsc *w, int64_t pos, int replay_all)
{
    static char names[NTOP][32];
    const char *t[16];
    int64_t p[16];
    for (int i = 0; i < NTOP; i += 16) {
        for (int k = 0; k < 16; k++) {
            topic_name(names[i + k], sizeof names[0], i + k);
            t[k] = names[i + k];
            p[k] = pos;
        }
        subcheck_send_sub_mode(w, (uint64_t)(i + 1), t, 16, pos >= 0 ? w->epoch : NULL, p,
                               replay_all);
    }
}

Test(catchup, a_client_back_after_many_publishes_gets_one_hint_per_changed_topic_only,
     .timeout = 60)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    nudge_client_t *c = subcheck_publisher(&d, "catchup-test");
    /* Everything at 1 first: the client's position. */
    publish_range(c, 0, 48, 1);
    publish_range(c, 48, NTOP, 1);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    sub_all(&w, -1, 0);
    struct sub_msg m;
    for (int i = 0; i < NTOP; i++) {
        subcheck_expect_type(&w, SUB_SUBSCRIBED, &m, "subscribed");
        cr_assert_eq(m.seq, 1);
        sub_msg_clear(&m);
    }
    wsc_free(&w, 1); /* the app goes to the background */

    for (int r = 2; r <= ROUNDS + 1; r++)
        publish_range(c, 0, CHANGED, r);
    json_t *st = nudged_stats(&d);
    int64_t out0 = stats_int(st, "bytes_out");
    json_decref(st);

    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    sub_all(&w, 1, 0);
    int hints = 0;
    char want[32];
    for (int i = 0; i < NTOP; i++) {
        topic_name(want, sizeof want, i);
        subcheck_expect_type(&w, SUB_SUBSCRIBED, &m, "subscribed");
        cr_assert(wstr_eq(m.topic, want));
        uint64_t cur = m.seq;
        sub_msg_clear(&m);
        if (i >= CHANGED) {
            cr_assert_eq(cur, 1, "%s did not change", want);
            continue; /* nothing follows: the next message is the next topic's subscribed */
        }
        cr_assert_eq(cur, ROUNDS + 1);
        subcheck_expect_type(&w, SUB_HINT, &m, "catch-up hint");
        cr_assert(wstr_eq(m.topic, want), "hint for '%.*s', want %s", (int)m.topic.len, m.topic.p,
                  want);
        cr_assert_eq(m.seq, ROUNDS + 1);
        cr_assert_eq(m.count, ROUNDS, "n = every change missed");
        cr_assert(subcheck_data_is_seq(&m), "the newest publish's data");
        sub_msg_clear(&m);
        hints++;
    }
    subcheck_expect_silence(&w, 200, "one hint per changed topic, nothing else");
    cr_assert_eq(hints, CHANGED);
    st = nudged_stats(&d);
    int64_t sent = stats_int(st, "bytes_out") - out0;
    cr_expect_eq(stats_int(st, "caught_up"), CHANGED);
    cr_expect_eq(stats_int(st, "replayed"), 0);
    cr_expect_eq(stats_int(st, "resets"), 0);
    json_decref(st);
    /* ~96 subscribed + 40 hints of ~60 bytes, not 2,000 replayed hints (~120 KB). */
    cr_expect_lt(sent, 16 * 1024, "catch-up wrote %lld bytes", (long long)sent);
    fprintf(stderr, "catchup: %d changed topics of %d, %d missed publishes each: %lld bytes\n",
            CHANGED, NTOP, ROUNDS, (long long)sent);
    wsc_close(&w, 1000);
    nudge_close(c);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(catchup, replay_all_is_asked_per_sub_message_and_gets_every_missed_hint_one_by_one)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    nudge_client_t *c = subcheck_publisher(&d, "catchup-test");
    const char *ab[2] = {"a", "b"};
    for (int r = 1; r <= 4; r++) {
        char data[32];
        snprintf(data, sizeof data, "{\"i\":%d}", r);
        cr_assert_eq(nudge_publish(c, ab, 2, data, NULL), NUDGE_OK);
    }
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    int64_t pos[1] = {1};
    subcheck_send_sub_mode(&w, 1, ab, 1, w.epoch, pos, 1);     /* a: every hint */
    subcheck_send_sub_mode(&w, 2, ab + 1, 1, w.epoch, pos, 0); /* b: the default */
    struct sub_msg m;
    subcheck_expect_type(&w, SUB_SUBSCRIBED, &m, "subscribed a");
    sub_msg_clear(&m);
    for (uint64_t s = 2; s <= 4; s++)
        subcheck_expect_hint_data(&w, "a", s);
    subcheck_expect_type(&w, SUB_SUBSCRIBED, &m, "subscribed b");
    sub_msg_clear(&m);
    subcheck_expect_type(&w, SUB_HINT, &m, "catch-up b");
    cr_assert(wstr_eq(m.topic, "b") && m.seq == 4 && m.count == 3 && subcheck_data_is_seq(&m),
              "b: seq %llu n %u", (unsigned long long)m.seq, m.count);
    sub_msg_clear(&m);
    subcheck_expect_silence(&w, 200, "nothing more");
    json_t *st = nudged_stats(&d);
    cr_expect_eq(stats_int(st, "replayed"), 3);
    cr_expect_eq(stats_int(st, "caught_up"), 1);
    json_decref(st);
    wsc_close(&w, 1000);
    nudge_close(c);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(catchup, a_bad_replay_mode_is_refused_with_bad_field)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    char msg[160];
    snprintf(msg, sizeof msg,
             "{\"type\":\"sub\",\"id\":3,\"topics\":[\"a\"],\"resume\":{\"epoch\":\"%s\","
             "\"seqs\":{\"a\":0},\"replay\":\"some\"}}",
             w.epoch);
    cr_assert_eq(wsc_send_msg(&w, msg, strlen(msg)), WSC_OK);
    struct sub_msg m;
    subcheck_expect_type(&w, SUB_ERROR, &m, "error");
    cr_expect_eq(m.code, WIRE_C_BAD_FIELD);
    cr_expect(m.has_id && m.id == 3, "error %d \"%.*s\" has_id %d id %llu", m.code, (int)m.msg.len,
              m.msg.p, m.has_id, (unsigned long long)m.id);
    sub_msg_clear(&m);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}
