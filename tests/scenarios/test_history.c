/* History and resume with "replay":"all" (docs/guarantees.md §Resume, §History): a subscriber
 * that comes back with (epoch, last seq) per topic and asks for every missed hint gets, after
 * "subscribed", either the replay of every hint it missed — in order, with their data, then live
 * hints with no gap and no duplicate at the boundary even while publishes keep coming — or one
 * "reset" saying why not: "ahead" (its position is past the topic's seq), "evicted" (some missed
 * hint is no longer kept: by count, age or bytes). A position equal to the current seq gets nothing
 * but live hints. The history's bounds hold in /stats. The default resume (one catch-up hint per
 * changed topic) is test_catchup.c's. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "nudge.h"
#include "subcheck.h"
#include "wsc.h"

/* ---- helpers ------------------------------------------------------------------------------- */

/* Publish one hint to topic with data {"i":<the seq it is expected to get>}; returns the seq,
 * which must be want. */
static uint64_t pub_seq(nudge_client_t *c, const char *topic, uint64_t want)
{
    char data[48];
    snprintf(data, sizeof data, "{\"i\":%llu}", (unsigned long long)want);
    const char *t[1] = {topic};
    uint64_t seq = 0;
    int rc = nudge_publish(c, t, 1, data, &seq);
    cr_assert_eq(rc, NUDGE_OK, "publish to %s: %s (%s)", topic, nudge_strerror(rc),
                 nudge_last_error(c));
    cr_assert_eq(seq, want, "publish to %s: seq %llu, want %llu", topic, (unsigned long long)seq,
                 (unsigned long long)want);
    return seq;
}

/* Subscribe to one topic resuming at pos (pos < 0: no resume). */
static void resume1(struct wsc *w, const char *topic, int64_t pos)
{
    const char *t[1] = {topic};
    int64_t p[1] = {pos};
    subcheck_send_sub_mode(w, w->next_id++, t, 1, pos >= 0 ? w->epoch : NULL, p, 1);
}

static json_t *stats(const struct nudged *d)
{
    json_t *st = nudged_stats(d);
    cr_assert_not_null(st, "GET /stats failed");
    return st;
}

/* ---- replay -------------------------------------------------------------------------------- */

Test(history, missed_hints_are_replayed_in_order_with_their_data_then_live)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    nudge_client_t *c = subcheck_publisher(&d, "history-test");
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    char epoch[32];
    snprintf(epoch, sizeof epoch, "%s", w.epoch);
    cr_assert_eq(strlen(epoch), 16);
    const char *topics[3] = {"doc:1", "doc:2", "doc:3"};
    subcheck_send_sub_mode(&w, 1, topics, 3, NULL, NULL, 1);
    for (int i = 0; i < 3; i++)
        subcheck_expect_subscribed(&w, topics[i], 0);
    for (uint64_t s = 1; s <= 3; s++)
        pub_seq(c, "doc:1", s);
    for (uint64_t s = 1; s <= 3; s++)
        subcheck_expect_hint_data(&w, "doc:1", s);
    wsc_free(&w, 1); /* the phone goes through a tunnel */

    for (uint64_t s = 4; s <= 10; s++)
        pub_seq(c, "doc:1", s);
    for (uint64_t s = 1; s <= 2; s++)
        pub_seq(c, "doc:2", s);
    for (uint64_t s = 1; s <= 5; s++)
        pub_seq(c, "doc:3", s);

    /* Back, in msgpack this time: resume doc:1 at 3 and doc:2 at 0; doc:3 has no position. */
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    cr_assert_str_eq(w.epoch, epoch, "same broker, same epoch");
    int64_t pos[3] = {3, 0, -1};
    subcheck_send_sub_mode(&w, 2, topics, 3, epoch, pos, 1);
    subcheck_expect_subscribed(&w, "doc:1", 10);
    for (uint64_t s = 4; s <= 10; s++)
        subcheck_expect_hint_data(&w, "doc:1", s);
    subcheck_expect_subscribed(&w, "doc:2", 2);
    for (uint64_t s = 1; s <= 2; s++)
        subcheck_expect_hint_data(&w, "doc:2", s);
    subcheck_expect_subscribed(&w, "doc:3", 5); /* no position: no replay, no reset */
    pub_seq(c, "doc:1", 11);
    pub_seq(c, "doc:3", 6);
    subcheck_expect_hint_data(&w, "doc:1", 11);
    subcheck_expect_hint_data(&w, "doc:3", 6);
    /* Subscribing again to a topic already subscribed only re-confirms: no replay. */
    int64_t again[1] = {0};
    subcheck_send_sub_mode(&w, 3, topics, 1, epoch, again, 1);
    subcheck_expect_subscribed(&w, "doc:1", 11);
    subcheck_expect_silence(&w, 200, "a re-subscribe must not replay");

    json_t *st = stats(&d);
    cr_expect_eq(stats_int(st, "replayed"), 9);
    cr_expect_eq(stats_int(st, "resets"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(st, "epoch")), epoch);
    json_decref(st);
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(history, a_position_equal_to_the_current_seq_gets_nothing_but_live_hints)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    nudge_client_t *c = subcheck_publisher(&d, "history-test");
    for (uint64_t s = 1; s <= 5; s++)
        pub_seq(c, "doc:eq", s);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    resume1(&w, "doc:eq", 5);
    subcheck_expect_subscribed(&w, "doc:eq", 5);
    subcheck_expect_silence(&w, 200, "nothing was missed");
    pub_seq(c, "doc:eq", 6);
    subcheck_expect_hint_data(&w, "doc:eq", 6);
    /* A topic never published, resumed at 0: nothing either. */
    resume1(&w, "doc:never", 0);
    subcheck_expect_subscribed(&w, "doc:never", 0);
    subcheck_expect_silence(&w, 200, "nothing was missed");
    json_t *st = stats(&d);
    cr_expect_eq(stats_int(st, "replayed"), 0);
    cr_expect_eq(stats_int(st, "resets"), 0);
    json_decref(st);
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(history, a_position_ahead_of_the_topic_gets_reset_ahead)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    nudge_client_t *c = subcheck_publisher(&d, "history-test");
    for (uint64_t s = 1; s <= 5; s++)
        pub_seq(c, "doc:ahead", s);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    resume1(&w, "doc:ahead", 9);
    subcheck_expect_subscribed(&w, "doc:ahead", 5);
    subcheck_expect_reset(&w, "doc:ahead", 5, "ahead");
    pub_seq(c, "doc:ahead", 6);
    subcheck_expect_hint_data(&w, "doc:ahead", 6);
    /* Ahead on a topic that was never published. */
    resume1(&w, "doc:new", 1);
    subcheck_expect_subscribed(&w, "doc:new", 0);
    subcheck_expect_reset(&w, "doc:new", 0, "ahead");
    pub_seq(c, "doc:new", 1);
    subcheck_expect_hint_data(&w, "doc:new", 1);
    subcheck_expect_silence(&w, 200, "nothing more");
    json_t *st = stats(&d);
    cr_expect_eq(stats_int(st, "resets"), 2);
    json_decref(st);
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- replay while publishing ------------------------------------------------------------------
 */

#define LOAD_N 3000
#define LOAD_RESUMERS 6

struct loader {
    uint16_t port;
    _Atomic uint64_t acked; /* last seq acked for "live:1" */
    _Atomic int done;
    int err;
};

static void *load_main(void *arg)
{
    struct loader *L = arg;
    char addr[64];
    nudge_client_t *c = NULL;
    struct nudge_opts o = {.client_name = "history-load", .timeout_ms = 10000};
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)L->port);
    if (nudge_connect(addr, &o, &c) != NUDGE_OK) {
        L->err = 1;
        atomic_store(&L->done, 1);
        return NULL;
    }
    const char *t[1] = {"live:1"};
    for (int base = 0; base < LOAD_N && !L->err; base += 10) {
        char data[10][48];
        for (int k = 0; k < 10; k++) {
            snprintf(data[k], sizeof data[k], "{\"i\":%d}", base + k + 1);
            struct nudge_pub pb = {t, 1, data[k], NULL, 0};
            if (nudge_send(c, &pb, NULL) != NUDGE_OK) L->err = 2;
        }
        for (int k = 0; k < 10 && !L->err; k++) {
            uint64_t seq = 0;
            size_t n = 0;
            if (nudge_recv_ack(c, NULL, &seq, 1, &n) != NUDGE_OK || seq != (uint64_t)(base + k + 1))
                L->err = 3;
            else
                atomic_store(&L->acked, seq);
        }
        sleep_ms(4); /* ~1.2 s of load, so every resume lands while it goes on */
    }
    nudge_close(c);
    atomic_store(&L->done, 1);
    return NULL;
}

struct resumer {
    struct wsc w;
    int64_t pos;    /* resume position sent, -1 = not yet connected */
    uint64_t cur;   /* subscribed seq */
    uint64_t last;  /* last seq known */
    int subscribed; /* "subscribed" received */
    uint64_t hints;
};

/* Read what r has, checking: subscribed first, then every seq after pos exactly once, in order,
 * each with its own data. */
static void resumer_read(struct resumer *r, int i, int timeout_ms)
{
    struct sub_msg m;
    while (wsc_recv_msg(&r->w, &m, timeout_ms) == WSC_OK) {
        if (!r->subscribed) {
            cr_assert_eq(m.type, SUB_SUBSCRIBED, "resumer %d: %s before subscribed", i,
                         subcheck_type_name(m.type));
            cr_assert_geq(m.seq, (uint64_t)r->pos, "resumer %d: subscribed %llu < position %lld", i,
                          (unsigned long long)m.seq, (long long)r->pos);
            r->subscribed = 1;
            r->cur = m.seq;
            r->last = (uint64_t)r->pos;
        } else {
            cr_assert_eq(m.type, SUB_HINT, "resumer %d: got %s", i, subcheck_type_name(m.type));
            cr_assert_eq(m.seq, r->last + 1,
                         "resumer %d (resumed at %lld, subscribed at %llu): seq %llu after %llu "
                         "(n %u)",
                         i, (long long)r->pos, (unsigned long long)r->cur,
                         (unsigned long long)m.seq, (unsigned long long)r->last, m.count);
            cr_assert_leq(m.count, 1, "resumer %d: coalesced", i);
            cr_assert(subcheck_data_is_seq(&m), "resumer %d: seq %llu carries the wrong data", i,
                      (unsigned long long)m.seq);
            r->last = m.seq;
            r->hints++;
        }
        sub_msg_clear(&m);
        timeout_ms = 0;
    }
}

Test(history, resume_while_publishing_has_no_gap_and_no_duplicate_at_the_replay_live_boundary,
     .timeout = 60)
{
    struct nudged d;
    const char *args[] = {"--hist-per-topic", "100000", NULL};
    subcheck_start(&d, args);
    struct loader L = {.port = d.pub_port};
    atomic_init(&L.acked, 0);
    atomic_init(&L.done, 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, load_main, &L), 0);

    struct resumer r[LOAD_RESUMERS];
    memset(r, 0, sizeof r);
    for (int i = 0; i < LOAD_RESUMERS; i++)
        r[i].pos = -1;
    char epoch[32] = "";
    int next = 0;
    int64_t deadline = now_ms() + 40000;
    while (now_ms() < deadline) {
        uint64_t acked = atomic_load(&L.acked);
        int done = atomic_load(&L.done);
        /* Spread the resumes over the load: the i-th once i/6 of it is acked. */
        if (next < LOAD_RESUMERS && (done || acked >= (uint64_t)(next + 1) * LOAD_N / 8)) {
            struct resumer *x = &r[next];
            cr_assert_eq(wsc_open(&x->w, d.ws_port, next % 2 ? SUB_PROTO_MSGPACK : NULL), WSC_OK);
            if (!epoch[0]) snprintf(epoch, sizeof epoch, "%s", x->w.epoch);
            /* Missed between 1 and ~60 hints: well inside history. */
            uint64_t back = 1 + (uint64_t)next * 11;
            x->pos = (int64_t)(acked > back ? acked - back : 0);
            resume1(&x->w, "live:1", x->pos);
            next++;
        }
        for (int i = 0; i < next; i++)
            resumer_read(&r[i], i, 0);
        if (done && next == LOAD_RESUMERS) {
            int all = 1;
            for (int i = 0; i < next; i++)
                all &= r[i].last == (uint64_t)LOAD_N;
            if (all) break;
        }
        sleep_ms(1);
    }
    pthread_join(th, NULL);
    cr_assert_eq(L.err, 0, "publisher thread failed (%d)", L.err);
    uint64_t replayed_min = UINT64_MAX;
    for (int i = 0; i < LOAD_RESUMERS; i++) {
        resumer_read(&r[i], i, 0);
        cr_expect_eq(r[i].last, (uint64_t)LOAD_N,
                     "resumer %d (resumed at %lld, subscribed at %llu) ends at %llu", i,
                     (long long)r[i].pos, (unsigned long long)r[i].cur,
                     (unsigned long long)r[i].last);
        uint64_t rep = r[i].cur - (uint64_t)r[i].pos;
        if (rep < replayed_min) replayed_min = rep;
        cr_log_info("resumer %d: resumed at %lld while publishing, subscribed at %llu (%llu "
                    "replayed), %llu hints",
                    i, (long long)r[i].pos, (unsigned long long)r[i].cur, (unsigned long long)rep,
                    (unsigned long long)r[i].hints);
    }
    json_t *st = stats(&d);
    cr_expect_gt(stats_int(st, "replayed"), 0, "nothing was replayed: the test proved nothing");
    cr_expect_eq(stats_int(st, "resets"), 0);
    json_decref(st);
    for (int i = 0; i < LOAD_RESUMERS; i++)
        wsc_close(&r[i].w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- eviction -------------------------------------------------------------------------------- */

Test(history, more_missed_than_kept_per_topic_gets_reset_evicted)
{
    struct nudged d;
    const char *args[] = {"--hist-per-topic", "4", NULL};
    subcheck_start(&d, args);
    nudge_client_t *c = subcheck_publisher(&d, "history-test");
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    resume1(&w, "doc:n", -1);
    subcheck_expect_subscribed(&w, "doc:n", 0);
    for (uint64_t s = 1; s <= 2; s++)
        pub_seq(c, "doc:n", s);
    for (uint64_t s = 1; s <= 2; s++)
        subcheck_expect_hint_data(&w, "doc:n", s);
    wsc_free(&w, 0);
    for (uint64_t s = 3; s <= 12; s++)
        pub_seq(c, "doc:n", s); /* missed 10; 9..12 kept */
    for (uint64_t s = 1; s <= 3; s++)
        pub_seq(c, "doc:other", s);

    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    resume1(&w, "doc:n", 2);
    subcheck_expect_subscribed(&w, "doc:n", 12);
    subcheck_expect_reset(&w, "doc:n", 12, "evicted");
    pub_seq(c, "doc:n", 13);
    subcheck_expect_hint_data(&w, "doc:n", 13);
    wsc_close(&w, 1000);
    /* The edges: 10..13 are kept now, 11..14 after one more; then position 10 is replayable, 9
     * is not. */
    pub_seq(c, "doc:n", 14); /* keeps 11..14 */
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    resume1(&w, "doc:n", 10);
    subcheck_expect_subscribed(&w, "doc:n", 14);
    for (uint64_t s = 11; s <= 14; s++)
        subcheck_expect_hint_data(&w, "doc:n", s);
    const char *t[1] = {"doc:n"};
    cr_assert_eq(wsc_unsubscribe(&w, t, 1), WSC_OK);
    resume1(&w, "doc:n", 9);
    subcheck_expect_subscribed(&w, "doc:n", 14);
    subcheck_expect_reset(&w, "doc:n", 14, "evicted");
    subcheck_expect_silence(&w, 200, "a reset and nothing else");

    json_t *st = stats(&d);
    json_t *h = json_object_get(st, "history");
    cr_assert_not_null(h, "/stats has no history object");
    cr_expect_eq(stats_int(st, "history.entries"), 4 + 3, "entries: 4 of doc:n, 3 of doc:other");
    cr_expect_eq(stats_int(st, "history.evicted"), 10);
    cr_expect_eq(stats_int(st, "history.per_topic"), 4);
    cr_expect_eq(stats_int(st, "resets"), 2);
    cr_expect_eq(stats_int(st, "replayed"), 4);
    json_decref(st);
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(history, no_history_means_any_miss_gets_reset_evicted)
{
    struct nudged d;
    const char *args[] = {"--hist-per-topic", "0", NULL};
    subcheck_start(&d, args);
    nudge_client_t *c = subcheck_publisher(&d, "history-test");
    for (uint64_t s = 1; s <= 3; s++)
        pub_seq(c, "doc:z", s);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    resume1(&w, "doc:z", 2);
    subcheck_expect_subscribed(&w, "doc:z", 3);
    subcheck_expect_reset(&w, "doc:z", 3, "evicted");
    /* Nothing retained, but the position is: a topic never published is at 0, and a resume
     * from 0 has nothing to replay. */
    resume1(&w, "doc:y", 0);
    subcheck_expect_subscribed(&w, "doc:y", 0);
    subcheck_expect_silence(&w, 200, "nothing more");
    json_t *st = stats(&d);
    cr_expect_eq(stats_int(st, "history.entries"), 0);
    cr_expect_eq(stats_int(st, "history.bytes"), 0);
    json_decref(st);
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(history, hints_older_than_the_age_bound_are_evicted, .timeout = 30)
{
    struct nudged d;
    const char *args[] = {"--hist-age", "1", NULL};
    subcheck_start(&d, args);
    nudge_client_t *c = subcheck_publisher(&d, "history-test");
    for (uint64_t s = 1; s <= 3; s++)
        pub_seq(c, "doc:old", s);
    json_t *st = stats(&d);
    cr_expect_eq(stats_int(st, "history.entries"), 3);
    cr_expect_eq(stats_int(st, "history.max_age_s"), 1);
    json_decref(st);
    sleep_ms(2500);
    cr_expect_eq(nudged_wait_stat(&d, "history.entries", 0, 3000), 0,
                 "hints older than --hist-age still kept");
    pub_seq(c, "doc:old", 4);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    resume1(&w, "doc:old", 1);
    subcheck_expect_subscribed(&w, "doc:old", 4);
    subcheck_expect_reset(&w, "doc:old", 4, "evicted");
    /* A fresh miss is still replayed. */
    const char *t[1] = {"doc:old"};
    cr_assert_eq(wsc_unsubscribe(&w, t, 1), WSC_OK);
    resume1(&w, "doc:old", 3);
    subcheck_expect_subscribed(&w, "doc:old", 4);
    subcheck_expect_hint_data(&w, "doc:old", 4);
    subcheck_expect_silence(&w, 200, "nothing more");
    st = stats(&d);
    cr_expect_eq(stats_int(st, "history.evicted"), 3);
    json_decref(st);
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(history, the_byte_bound_evicts_oldest_first_across_topics)
{
    struct nudged d;
    const char *args[] = {"--hist-bytes", "4096", NULL};
    subcheck_start(&d, args);
    nudge_client_t *c = subcheck_publisher(&d, "history-test");
    /* ~500 bytes of data per hint: at most 8 fit in 4096 bytes. */
    char data[600];
    int n0 = snprintf(data, sizeof data, "{\"pad\":\"");
    memset(data + n0, 'x', 490);
    memcpy(data + n0 + 490, "\"}", 3);
    const char *ta[1] = {"big:a"}, *tb[1] = {"big:b"};
    for (int i = 0; i < 20; i++) {
        cr_assert_eq(nudge_publish(c, ta, 1, data, NULL), NUDGE_OK);
        json_t *st = stats(&d);
        int64_t bytes = stats_int(st, "history.bytes"), entries = stats_int(st, "history.entries");
        json_decref(st);
        cr_assert_leq(bytes, 4096, "history.bytes %lld over --hist-bytes", (long long)bytes);
        cr_assert_leq(entries, 8, "history.entries %lld", (long long)entries);
    }
    json_t *st = stats(&d);
    int64_t kept = stats_int(st, "history.entries");
    cr_expect_eq(stats_int(st, "history.max_bytes"), 4096);
    cr_expect_eq(stats_int(st, "history.evicted"), 20 - kept);
    json_decref(st);
    cr_assert_gt(kept, 0, "nothing kept at all");
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    /* The newest `kept` seqs are replayable, older positions are not. */
    resume1(&w, "big:a", 20 - kept);
    subcheck_expect_subscribed(&w, "big:a", 20);
    for (int64_t s = 20 - kept + 1; s <= 20; s++) {
        struct sub_msg m;
        subcheck_expect_type(&w, SUB_HINT, &m, "replay under the byte bound");
        cr_assert_eq(m.seq, (uint64_t)s);
        cr_assert(m.data && m.data_len > 490, "replayed data lost");
        sub_msg_clear(&m);
    }
    const char *t[1] = {"big:a"};
    cr_assert_eq(wsc_unsubscribe(&w, t, 1), WSC_OK);
    resume1(&w, "big:a", 20 - kept - 1);
    subcheck_expect_subscribed(&w, "big:a", 20);
    subcheck_expect_reset(&w, "big:a", 20, "evicted");
    /* Another topic's publishes push big:a's hints out: the bound is global. */
    for (int i = 0; i < 20; i++)
        cr_assert_eq(nudge_publish(c, tb, 1, data, NULL), NUDGE_OK);
    cr_assert_eq(wsc_unsubscribe(&w, t, 1), WSC_OK);
    resume1(&w, "big:a", 19);
    subcheck_expect_subscribed(&w, "big:a", 20);
    subcheck_expect_reset(&w, "big:a", 20, "evicted");
    st = stats(&d);
    cr_expect_leq(stats_int(st, "history.bytes"), 4096);
    cr_expect_eq(stats_int(st, "history.entries"), kept, "8 of ~500 bytes of big:b now");
    json_decref(st);
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}
