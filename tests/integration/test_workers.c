/* Several workers: connections spread over worker threads (SO_REUSEPORT), one engine orders
 * every topic, each hub gets hints through its inbox. These tests start nudged with an explicit
 * --workers and check what only threads can break: publishers and subscribers on different
 * workers, a resume racing publishes made on other workers, /stats summing the workers, the
 * shared ports, and the topic table's lifecycle and bound (which every worker shares). */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "nudge.h"
#include "subcheck.h"
#include "wsc.h"

TestSuite(workers, .timeout = 60);

struct pubjob {
    const struct nudged *d;
    const char *topic;
    int count;
    int pace; /* sleep 1 ms after every `pace` publishes (0 = full speed) */
    int failed;
};

/* A publisher thread: count publishes to one topic, each waiting for its ack. */
static void *publish_n(void *arg)
{
    struct pubjob *j = arg;
    nudge_client_t *c = NULL;
    struct nudge_opts o = {.client_name = "workers-test", .timeout_ms = 10000};
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", j->d->pub_port);
    if (nudge_connect(addr, &o, &c) != 0) {
        j->failed = 1;
        return NULL;
    }
    const char *t[] = {j->topic};
    for (int i = 0; i < j->count; i++) {
        uint64_t seq;
        if (nudge_publish(c, t, 1, NULL, &seq) != 0) {
            j->failed = 1;
            break;
        }
        if (j->pace && i % j->pace == 0) sleep_ms(1);
    }
    nudge_close(c);
    return NULL;
}

Test(workers, publishers_on_every_worker_reach_subscribers_on_every_worker)
{
    struct nudged d;
    const char *args[] = {"--workers", "4", NULL};
    subcheck_start(&d, args);
    enum { NSUB = 12, NPUB = 8, EACH = 150 };
    struct wsc w[NSUB];
    for (int i = 0; i < NSUB; i++) {
        cr_assert_eq(wsc_open(&w[i], d.ws_port, i % 2 ? SUB_PROTO_MSGPACK : SUB_PROTO_JSON),
                     WSC_OK);
        cr_assert_eq(wsc_subscribe_v(&w[i], "spread:t", NULL), 0);
    }
    json_t *st0 = nudged_stats(&d);
    json_t *pw = json_object_get(st0, "per_worker");
    cr_assert(json_is_array(pw) && json_array_size(pw) == 4);
    int64_t ws_sum = 0, busy = 0;
    for (size_t i = 0; i < 4; i++) {
        int64_t n = json_integer_value(json_object_get(json_array_get(pw, i), "ws"));
        ws_sum += n;
        busy += n > 0;
    }
    json_decref(st0);
    cr_expect_eq(ws_sum, NSUB, "per_worker adds up to the subscribers");
    cr_expect_geq(busy, 2, "%d subscribers all landed on one worker", NSUB);
    pthread_t th[NPUB];
    struct pubjob jobs[NPUB];
    for (int i = 0; i < NPUB; i++) {
        jobs[i] = (struct pubjob){&d, "spread:t", EACH, 0, 0};
        pthread_create(&th[i], NULL, publish_n, &jobs[i]);
    }
    for (int i = 0; i < NPUB; i++) {
        pthread_join(th[i], NULL);
        cr_assert(!jobs[i].failed, "publisher %d failed", i);
    }
    /* Every subscriber sees 1..NPUB*EACH in order, nothing doubled, nothing skipped (a
     * coalesced hint may stand for several: its seq - n is the previous one). */
    for (int i = 0; i < NSUB; i++) {
        uint64_t last = 0;
        while (last < NPUB * EACH) {
            struct sub_msg m;
            cr_assert_eq(wsc_recv_msg(&w[i], &m, 5000), WSC_OK, "subscriber %d stuck at %llu", i,
                         (unsigned long long)last);
            cr_assert_eq(m.type, SUB_HINT);
            uint32_t n = m.count ? m.count : 1;
            cr_assert_eq(m.seq - n, last, "subscriber %d: seq %llu n %u after %llu", i,
                         (unsigned long long)m.seq, n, (unsigned long long)last);
            last = m.seq;
            sub_msg_clear(&m);
        }
        wsc_close(&w[i], 1000);
    }
    json_t *st = nudged_stats(&d);
    cr_expect_eq(stats_int(st, "workers"), 4);

    cr_expect_eq(stats_int(st, "publishes"), NPUB * EACH);
    cr_expect_eq(stats_int(st, "accepted.ws"), NSUB);
    cr_expect_geq(stats_int(st, "accepted.pub"), NPUB);
    json_decref(st);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* One "sub" with resume from pos; returns the CUR of its "subscribed" and checks what follows
 * (replay, then live) as it arrives, advancing *last, until stop_at is reached or 300 ms of
 * silence. */
static void follow(struct wsc *w, const char *topic, uint64_t *last, uint64_t stop_at)
{
    int64_t pos = (int64_t)*last;
    const char *t[] = {topic};
    subcheck_send_sub(w, 1, t, 1, w->epoch, &pos);
    struct sub_msg m;
    subcheck_expect_type(w, SUB_SUBSCRIBED, &m, "subscribed");
    uint64_t cur = m.seq;
    sub_msg_clear(&m);
    cr_assert_geq(cur, *last, "subscribed %llu behind the position %llu", (unsigned long long)cur,
                  (unsigned long long)*last);
    while (*last < stop_at) {
        int rc = wsc_recv_msg(w, &m, 300);
        if (rc == WSC_TIMEOUT) break;
        cr_assert_eq(rc, WSC_OK);
        cr_assert_eq(m.type, SUB_HINT, "got %s", subcheck_type_name(m.type));
        uint32_t n = m.count ? m.count : 1;
        cr_assert_eq(m.seq - n, *last, "seq %llu n %u after %llu (CUR %llu): gap or duplicate",
                     (unsigned long long)m.seq, n, (unsigned long long)*last,
                     (unsigned long long)cur);
        *last = m.seq;
        sub_msg_clear(&m);
        if (*last >= cur + 20) break; /* live for a while: leave and come back */
    }
    /* Leave; hints that were on their way before "unsubscribed" still count. */
    cr_assert_eq(wsc_send_msg(w, "{\"type\":\"unsub\",\"id\":2,\"topics\":[\"race:t\"]}",
                              strlen("{\"type\":\"unsub\",\"id\":2,\"topics\":[\"race:t\"]}")),
                 WSC_OK);
    for (;;) {
        cr_assert_eq(wsc_recv_msg(w, &m, 5000), WSC_OK);
        enum sub_type type = m.type;
        if (type == SUB_HINT) {
            uint32_t n = m.count ? m.count : 1;
            cr_assert_eq(m.seq - n, *last, "seq %llu n %u after %llu before unsubscribed",
                         (unsigned long long)m.seq, n, (unsigned long long)*last);
            *last = m.seq;
        }
        sub_msg_clear(&m);
        if (type == SUB_UNSUBSCRIBED) break;
        cr_assert_eq(type, SUB_HINT);
    }
}

Test(workers, resume_is_exact_while_other_workers_publish)
{
    struct nudged d;
    /* --msg-rate 0: the subscriber leaves and comes back every 20 hints, well over 100 sub and
     * unsub messages a second once hints arrive without delay (TCP_NODELAY); not a rate test. */
    const char *args[] = {"--workers", "4", "--hist-per-topic", "100000", "--msg-rate", "0", NULL};
    subcheck_start(&d, args);
    enum { NPUB = 4, EACH = 1500 };
    pthread_t th[NPUB];
    struct pubjob jobs[NPUB];
    for (int i = 0; i < NPUB; i++) {
        jobs[i] = (struct pubjob){&d, "race:t", EACH, 3, 0}; /* paced: the subscriber keeps up */
        pthread_create(&th[i], NULL, publish_n, &jobs[i]);
    }
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    uint64_t last = 0;
    int rounds = 0;
    int64_t end = now_ms() + 30000;
    while (last < NPUB * EACH && now_ms() < end) {
        follow(&w, "race:t", &last, NPUB * EACH);
        rounds++;
    }
    for (int i = 0; i < NPUB; i++) {
        pthread_join(th[i], NULL);
        cr_assert(!jobs[i].failed, "publisher %d failed", i);
    }
    follow(&w, "race:t", &last, NPUB * EACH); /* whatever is left */
    cr_expect_eq(last, NPUB * EACH, "caught up to %llu only", (unsigned long long)last);
    cr_expect_geq(rounds, 3, "the subscriber resumed %d times only: the race was not exercised",
                  rounds);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(workers, a_second_broker_on_the_same_ports_fails_loudly)
{
    struct nudged a, b;
    const char *args[] = {"--workers", "2", NULL};
    subcheck_start(&a, args);
    char pub[32], ws[32];
    snprintf(pub, sizeof pub, "127.0.0.1:%u", a.pub_port);
    snprintf(ws, sizeof ws, "127.0.0.1:%u", a.ws_port);
    const char *args2[] = {"--pub",       pub,         "--ws", "127.0.0.1:0", "--admin",
                           "127.0.0.1:0", "--workers", "2",    NULL};
    char bin[512];
    cr_assert_eq(nudge_bin_path("nudged", bin, sizeof bin), 0);
    cr_assert_neq(nudged_start_ex(&b, bin, 0, args2), 0,
                  "a second nudged started on a publisher port in use (SO_REUSEPORT)");
    const char *args3[] = {"--pub",       "127.0.0.1:0", "--ws", ws,  "--admin",
                           "127.0.0.1:0", "--workers",   "2",    NULL};
    cr_assert_neq(nudged_start_ex(&b, bin, 0, args3), 0,
                  "a second nudged started on a WebSocket port in use (SO_REUSEPORT)");
    subcheck_probe(&a);
    cr_assert_eq(nudged_stop(&a), 0);
}

TestSuite(topics, .timeout = 60);

Test(topics, a_publish_past_max_topics_total_is_refused_whole_with_code_14)
{
    struct nudged d;
    const char *args[] = {"--max-topics-total", "3", NULL};
    subcheck_start(&d, args);
    nudge_client_t *c = subcheck_publisher(&d, "topics-test");
    const char *ab[] = {"lim:a", "lim:b"};
    uint64_t seqs[4];
    cr_assert_eq(nudge_publish(c, ab, 2, NULL, seqs), 0);
    const char *bcd[] = {"lim:b", "lim:c", "lim:d"};
    cr_assert_eq(nudge_publish(c, bcd, 3, NULL, seqs), NUDGE_EBROKER);
    cr_expect_eq(nudge_last_code(c), 14, "%s", nudge_last_error(c));
    cr_expect(strstr(nudge_last_error(c), "max-topics-total") != NULL, "%s", nudge_last_error(c));
    const char *b[] = {"lim:b"};
    cr_assert_eq(nudge_publish(c, b, 1, NULL, seqs), 0);
    cr_expect_eq(seqs[0], 2, "nothing of the refused publish was applied");
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    const char *c1[] = {"lim:c"};
    cr_assert_eq(wsc_subscribe(&w, c1, 1, NULL), 0, "the third topic fits");
    const char *e1[] = {"lim:e"};
    cr_assert_eq(wsc_subscribe(&w, e1, 1, NULL), WSC_UNEXPECTED);
    cr_expect_eq(w.last_error, 14);
    json_t *st = nudged_stats(&d);
    cr_expect_eq(stats_int(st, "topics"), 3);
    cr_expect_eq(stats_int(st, "topics_refused"), 2);
    cr_expect_eq(stats_int(st, "limits.max_topics_total"), 3);
    json_decref(st);
    wsc_close(&w, 1000);
    nudge_close(c);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* Publish once to 200 topics and twice to user:0, then subscribe to user:held. */
static nudge_client_t *publish_200(struct nudged *d, struct wsc *w)
{
    nudge_client_t *c = subcheck_publisher(d, "topics-test");
    char name[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "user:%d", i);
        const char *t[] = {name};
        cr_assert_eq(nudge_publish(c, t, 1, NULL, NULL), 0);
    }
    const char *kept[] = {"user:0"};
    uint64_t seq;
    cr_assert_eq(nudge_publish(c, kept, 1, NULL, &seq), 0);
    cr_expect_eq(seq, 2);
    cr_assert_eq(wsc_open(w, d->ws_port, SUB_PROTO_JSON), WSC_OK);
    const char *held[] = {"user:held"};
    cr_assert_eq(wsc_subscribe(w, held, 1, NULL), 0);
    json_t *st = nudged_stats(d);
    cr_expect_eq(stats_int(st, "topics"), 201, "history holds the published topics");
    json_decref(st);
    return c;
}

Test(topics, topics_nothing_holds_are_freed_but_their_positions_are_kept)
{
    struct nudged d;
    const char *args[] = {"--hist-age", "1", NULL};
    subcheck_start(&d, args);
    struct wsc w;
    nudge_client_t *c = publish_200(&d, &w);
    /* Once their history ages out, only the subscribed topic is left in the engine... */
    cr_assert_eq(nudged_wait_stat(&d, "topics", 1, 6000), 1, "idle topics were not freed");
    json_t *st = nudged_stats(&d);
    cr_expect_eq(stats_int(st, "positions.kept"), 201, "...but every position is remembered");
    cr_expect_eq(stats_int(st, "positions.forgotten"), 0);
    cr_expect_eq(stats_int(st, "positions.horizon_s"), 7 * 24 * 3600);
    json_decref(st);
    /* user:0 goes on from its position, and a client at 1 gets one catch-up hint (no data:
     * history let it go), not a reset. */
    const char *kept[] = {"user:0"};
    uint64_t seq;
    cr_assert_eq(nudge_publish(c, kept, 1, NULL, &seq), 0);
    cr_expect_eq(seq, 3);
    nudged_wait_stat(&d, "history.entries", 0, 6000);
    int64_t pos = 1;
    subcheck_send_sub(&w, 7, kept, 1, w.epoch, &pos);
    struct sub_msg m;
    subcheck_expect_type(&w, SUB_SUBSCRIBED, &m, "subscribed");
    cr_expect_eq(m.seq, 3);
    sub_msg_clear(&m);
    subcheck_expect_type(&w, SUB_HINT, &m, "catch-up hint");
    cr_expect(m.seq == 3 && m.count == 2 && !m.data, "catch-up seq %llu n %u data %p",
              (unsigned long long)m.seq, m.count, (const void *)m.data);
    sub_msg_clear(&m);
    wsc_close(&w, 1000);
    nudge_close(c);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(topics, positions_past_the_horizon_are_forgotten_and_never_repeat_a_seq)
{
    struct nudged d;
    const char *args[] = {"--hist-age", "1", "--horizon", "1", NULL};
    subcheck_start(&d, args);
    struct wsc w;
    nudge_client_t *c = publish_200(&d, &w);
    cr_assert_eq(nudged_wait_stat(&d, "positions.kept", 1, 8000), 1,
                 "positions past the horizon were not forgotten");
    /* user:0 comes back above every seq given out before: a resume from 1 is reset, not
     * matched against a new seq 2. */
    const char *kept[] = {"user:0"};
    uint64_t seq;
    cr_assert_eq(nudge_publish(c, kept, 1, NULL, &seq), 0);
    cr_expect_gt(seq, 2, "a forgotten topic restarted at %llu", (unsigned long long)seq);
    int64_t pos = 1;
    subcheck_send_sub(&w, 7, kept, 1, w.epoch, &pos);
    struct sub_msg m;
    subcheck_expect_type(&w, SUB_SUBSCRIBED, &m, "subscribed");
    cr_expect_eq(m.seq, seq);
    sub_msg_clear(&m);
    subcheck_expect_type(&w, SUB_RESET, &m, "reset");
    cr_expect(wstr_eq(m.reason, "horizon"), "reason %.*s", (int)m.reason.len, m.reason.p);
    sub_msg_clear(&m);
    json_t *st = nudged_stats(&d);
    cr_expect_geq(stats_int(st, "positions.forgotten"), 200);
    json_decref(st);
    wsc_close(&w, 1000);
    nudge_close(c);
    cr_assert_eq(nudged_stop(&d), 0);
}
