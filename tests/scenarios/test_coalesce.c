/* Coalescing (docs/guarantees.md §Coalescing): a subscriber whose socket does not keep up gets
 * the hints of one topic merged into one queued entry (newest seq, "n" = changes covered), so
 * the broker's memory per connection is bounded by its number of topics, never by the publish
 * rate, and the connection is not closed; a subscriber that keeps up gets every hint as itself.
 * Coalescing windows (--coalesce PATTERN=MS) cap the hint rate of matching topics and always
 * deliver the newest publish; other topics are not touched.
 *
 * Contract checked on every hint: seq > the last seq known for the topic; without "n" it is
 * exactly the next one; with "n" it is at least 2. At the end every subscriber knows the final
 * seq of each topic (no silent gap). */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "nudge.h"
#include "subcheck.h"
#include "wsc.h"

/* ---- helpers ------------------------------------------------------------------------------- */

/* A WebSocket subscriber that said hello; small = a 4 KiB receive buffer set before connect, so
 * the broker's writes stall as soon as the client stops reading. */
static void open_sub(struct wsc *w, uint16_t port, const char *proto, int small)
{
    if (!small) {
        cr_assert_eq(wsc_open(w, port, proto), WSC_OK, "subscriber connect");
        return;
    }
    int fd = subcheck_small_rcvbuf_socket(port);
    cr_assert_eq(wsc_handshake(w, fd, port, "/", proto, NULL), WSC_OK);
    cr_assert_eq(wsc_hello(w), WSC_OK);
}

/* What one subscriber knows of one topic, checked hint by hint against the contract. */
struct track {
    uint64_t last;      /* last seq known (subscribed, hint) */
    uint64_t hints;     /* hints received */
    uint64_t coalesced; /* of which with "n" > 1 */
    uint64_t changes;   /* sum of n */
};

/* Apply hint m; on a contract violation write why and return -1. */
static int track_hint(struct track *t, const struct sub_msg *m, char *why, size_t cap)
{
    uint32_t n = m->count ? m->count : 1;
    if (m->seq <= t->last) {
        snprintf(why, cap, "seq %llu after %llu: duplicate or out of order",
                 (unsigned long long)m->seq, (unsigned long long)t->last);
        return -1;
    }
    if (n == 1 && m->seq != t->last + 1) {
        snprintf(why, cap, "seq %llu without \"n\" after %llu: silent gap",
                 (unsigned long long)m->seq, (unsigned long long)t->last);
        t->last = m->seq; /* go on from here: report each gap once */
        t->hints++;
        return -1;
    }
    t->last = m->seq;
    t->hints++;
    t->coalesced += n > 1;
    t->changes += n;
    return 0;
}

/* JSON data of about `bytes` bytes of msgpack: {"pad":"aaaa..."}. Caller frees. */
static char *pad_json(size_t bytes)
{
    char *s = malloc(bytes + 16);
    cr_assert_not_null(s);
    size_t n = (size_t)sprintf(s, "{\"pad\":\"");
    for (size_t i = 0; i < bytes - 10; i++)
        s[n++] = (char)('a' + i % 26);
    strcpy(s + n, "\"}");
    return s;
}

/* ---- congestion ---------------------------------------------------------------------------- */

#define FLOOD_N 20000
#define FLOOD_BATCH 32
#define FLOOD_TOPICS 3
#define FLOOD_QUEUE 64

static const char *const flood_topics[FLOOD_TOPICS] = {"flood:a", "flood:b", "flood:c"};

static int flood_index(struct wire_str t)
{
    for (int i = 0; i < FLOOD_TOPICS; i++)
        if (wstr_eq(t, flood_topics[i])) return i;
    return -1;
}

/* Read w's hints until every topic reaches want[] (bounded by timeout_ms), checking each one. */
static void read_until(struct wsc *w, struct track *tr, const uint64_t *want, int timeout_ms,
                       int individually, const char *who)
{
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int done = 1;
        for (int i = 0; i < FLOOD_TOPICS; i++)
            done &= tr[i].last >= want[i];
        if (done) return;
        int64_t left = deadline - now_ms();
        struct sub_msg m;
        int rc = wsc_recv_msg(w, &m, left > 0 ? (int)left : 0);
        cr_assert_eq(rc, WSC_OK,
                     "%s: stuck at seqs %llu/%llu/%llu of %llu/%llu/%llu (rc %d, close %u)", who,
                     (unsigned long long)tr[0].last, (unsigned long long)tr[1].last,
                     (unsigned long long)tr[2].last, (unsigned long long)want[0],
                     (unsigned long long)want[1], (unsigned long long)want[2], rc, w->close_code);
        cr_assert_eq(m.type, SUB_HINT, "%s: got message type %d", who, (int)m.type);
        int ti = flood_index(m.topic);
        cr_assert(ti >= 0, "%s: hint for a topic it did not subscribe to", who);
        char why[160];
        cr_assert_eq(track_hint(&tr[ti], &m, why, sizeof why), 0, "%s, topic %s: %s", who,
                     flood_topics[ti], why);
        if (individually)
            cr_assert(m.count <= 1,
                      "%s: a subscriber that keeps up got a coalesced hint "
                      "(seq %llu, n %u)",
                      who, (unsigned long long)m.seq, m.count);
        cr_assert(m.data != NULL && m.data_len > 800, "%s: hint data lost", who);
        sub_msg_clear(&m);
    }
}

Test(coalesce, stalled_subscriber_is_coalesced_not_closed_and_queues_stay_bounded, .timeout = 120)
{
    struct nudged d;
    const char *args[] = {"--max-queue", "64", NULL};
    subcheck_start(&d, args);

    struct wsc stalled, normal;
    open_sub(&stalled, d.ws_port, SUB_PROTO_JSON, 1);
    uint64_t s0[FLOOD_TOPICS], n0[FLOOD_TOPICS];
    cr_assert_eq(wsc_subscribe(&stalled, flood_topics, FLOOD_TOPICS, s0), WSC_OK);
    open_sub(&normal, d.ws_port, SUB_PROTO_MSGPACK, 0);
    cr_assert_eq(wsc_subscribe(&normal, flood_topics, FLOOD_TOPICS, n0), WSC_OK);
    struct track ts[FLOOD_TOPICS] = {{0}}, tn[FLOOD_TOPICS] = {{0}};
    uint64_t acked[FLOOD_TOPICS] = {0};
    for (int i = 0; i < FLOOD_TOPICS; i++) {
        cr_assert_eq(s0[i], 0);
        cr_assert_eq(n0[i], 0);
    }

    char *data = pad_json(900);
    nudge_client_t *c = subcheck_publisher(&d, "coalesce-test");
    int64_t max_queued = 0, polls = 0, t0 = now_ms();
    for (int base = 0; base < FLOOD_N; base += FLOOD_BATCH) {
        for (int k = 0; k < FLOOD_BATCH; k++) {
            const char *t[1] = {flood_topics[(base + k) % FLOOD_TOPICS]};
            struct nudge_pub pb = {t, 1, data, NULL, 0};
            cr_assert_eq(nudge_send(c, &pb, NULL), NUDGE_OK);
        }
        for (int k = 0; k < FLOOD_BATCH; k++) {
            uint64_t seq = 0;
            size_t n = 0;
            int rc = nudge_recv_ack(c, NULL, &seq, 1, &n);
            cr_assert_eq(rc, NUDGE_OK, "ack of publish %d: %s (%s)", base + k, nudge_strerror(rc),
                         nudge_last_error(c));
            int ti = (base + k) % FLOOD_TOPICS;
            cr_assert_eq(seq, acked[ti] + 1, "topic %s: ack seq %llu after %llu", flood_topics[ti],
                         (unsigned long long)seq, (unsigned long long)acked[ti]);
            acked[ti] = seq;
        }
        /* The normal subscriber keeps up: never more than one batch behind. */
        read_until(&normal, tn, acked, 10000, 1, "normal subscriber");
        if ((base / FLOOD_BATCH) % 25 == 0) {
            json_t *st = nudged_stats(&d);
            cr_assert_not_null(st);
            int64_t q = stats_int(st, "queued"), sc = stats_int(st, "slow_closes");
            int64_t ws = stats_int(st, "connections.ws");
            json_decref(st);
            polls++;
            if (q > max_queued) max_queued = q;
            /* Per connection: max_queue entries, plus one per topic once coalescing. */
            cr_assert_leq(q, 2 * (FLOOD_QUEUE + FLOOD_TOPICS), "queued %lld after %d publishes",
                          (long long)q, base + FLOOD_BATCH);
            cr_assert_eq(sc, 0,
                         "a subscriber was closed as slow (slow_closes %lld) after %d "
                         "publishes: coalescing must replace the close",
                         (long long)sc, base + FLOOD_BATCH);
            cr_assert_eq(ws, 2, "connections.ws %lld after %d publishes", (long long)ws,
                         base + FLOOD_BATCH);
        }
    }
    int64_t took = now_ms() - t0;

    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st);
    int64_t coalesced = stats_int(st, "coalesced"), queued = stats_int(st, "queued");
    cr_expect_gt(coalesced, 0, "/stats coalesced is 0: the stalled subscriber never coalesced");
    cr_expect_eq(stats_int(st, "slow_closes"), 0);
    cr_expect_eq(stats_int(st, "connections.ws"), 2);
    cr_expect_leq(queued, FLOOD_QUEUE + FLOOD_TOPICS, "queued %lld at rest", (long long)queued);
    json_decref(st);

    /* Now the stalled subscriber reads: a valid stream up to the final seqs, some coalesced. */
    int64_t t1 = now_ms();
    read_until(&stalled, ts, acked, 30000, 0, "stalled subscriber");
    uint64_t hints = 0, merged = 0;
    for (int i = 0; i < FLOOD_TOPICS; i++) {
        cr_expect_eq(ts[i].last, acked[i]);
        hints += ts[i].hints;
        merged += ts[i].coalesced;
    }
    cr_expect_gt(merged, 0, "the stalled subscriber got no hint with \"n\" > 1");
    /* Nothing more may follow: no hint beyond the final seqs, no close. */
    struct sub_msg m;
    cr_expect_eq(wsc_recv_msg(&stalled, &m, 200), WSC_TIMEOUT, "more after the final seqs");
    fprintf(stderr,
            "coalesce: %d publishes of ~900 bytes in %lld ms; /stats queued max %lld over %lld "
            "polls, coalesced %lld; stalled subscriber caught up with %llu hints (%llu "
            "coalesced) in %lld ms\n",
            FLOOD_N, (long long)took, (long long)max_queued, (long long)polls, (long long)coalesced,
            (unsigned long long)hints, (unsigned long long)merged, (long long)(now_ms() - t1));

    nudge_close(c);
    free(data);
    wsc_close(&stalled, 1000);
    wsc_close(&normal, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* --ws-sndbuf bounds what waits in the kernel for a reader that stopped: once that much is
 * queued the broker sees congestion and merges the rest. A reader coming back then gets a few
 * hundred KiB of individual hints and merged ones, not the megabytes the kernel's autotuning lets
 * wait on loopback (~2.8 MB measured), each a stale hint of its own. */
Test(coalesce, a_stopped_reader_has_at_most_about_ws_sndbuf_waiting_before_hints_merge,
     .timeout = 120)
{
    enum { N = 4096, BATCH = 64 };
    struct nudged d;
    const char *args[] = {"--ws-sndbuf", "65536", NULL};
    subcheck_start(&d, args);
    struct wsc slow;
    open_sub(&slow, d.ws_port, SUB_PROTO_JSON, 1);
    const char *topic[1] = {"big"};
    uint64_t s0;
    cr_assert_eq(wsc_subscribe(&slow, topic, 1, &s0), WSC_OK);
    char *data = pad_json(900);
    nudge_client_t *c = subcheck_publisher(&d, "sndbuf-test");
    for (int base = 0; base < N; base += BATCH) {
        for (int k = 0; k < BATCH; k++) {
            struct nudge_pub pb = {topic, 1, data, NULL, 0};
            cr_assert_eq(nudge_send(c, &pb, NULL), NUDGE_OK);
        }
        for (int k = 0; k < BATCH; k++) {
            size_t n = 0;
            uint64_t seq = 0;
            cr_assert_eq(nudge_recv_ack(c, NULL, &seq, 1, &n), NUDGE_OK, "%s", nudge_last_error(c));
        }
    }
    /* It reads again, with a normal receive buffer (a 4 KiB one drains at TCP's probe pace). */
    int big = 4 << 20;
    setsockopt(slow.fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    struct track t = {0};
    int64_t deadline = now_ms() + 30000;
    while (t.last < N) {
        struct sub_msg m;
        int64_t left = deadline - now_ms();
        int rc = wsc_recv_msg(&slow, &m, left > 0 ? (int)left : 0);
        cr_assert_eq(rc, WSC_OK, "stuck at seq %llu of %d (rc %d)", (unsigned long long)t.last, N,
                     rc);
        cr_assert_eq(m.type, SUB_HINT);
        char why[160];
        cr_assert_eq(track_hint(&t, &m, why, sizeof why), 0, "%s", why);
        sub_msg_clear(&m);
    }
    cr_expect_eq(t.changes, N, "the hints' counts add up to %llu, not every publish (last %llu)",
                 (unsigned long long)t.changes, (unsigned long long)t.last);
    cr_expect_gt(t.coalesced, 0, "nothing was merged");
    /* 64 KiB (doubled by Linux) in the kernel, one batch of up to 64 KiB kept by lws, 4 KiB
     * in the reader's buffer: about 210 hints of ~950 bytes; autotuned, about 3,000. */
    cr_expect_lt(t.hints, 600, "%llu hints one by one before they merged",
                 (unsigned long long)t.hints);
    fprintf(stderr,
            "coalesce: --ws-sndbuf 65536: a reader back after %d publishes got %llu hints "
            "(%llu merged)\n",
            N, (unsigned long long)t.hints, (unsigned long long)t.coalesced);
    nudge_close(c);
    free(data);
    wsc_close(&slow, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- windows ------------------------------------------------------------------------------- */

#define PACED_N 1000

/* Publish PACED_N hints to topic at about one per millisecond (pipelined, acks read as they
 * come), while sub reads its hints for the topic into tr. Returns the final acked seq. */
static uint64_t paced_publish(nudge_client_t *c, const char *topic, struct wsc *sub,
                              struct track *tr, int *violations)
{
    const char *t[1] = {topic};
    uint64_t acked = 0;
    int64_t t0 = now_ms();
    for (int i = 0; i < PACED_N; i += 10) {
        int64_t due = t0 + i;
        while (now_ms() < due)
            sleep_ms(1);
        for (int k = 0; k < 10; k++) {
            char data[32];
            snprintf(data, sizeof data, "{\"i\":%d}", i + k + 1);
            struct nudge_pub pb = {t, 1, data, NULL, 0};
            cr_assert_eq(nudge_send(c, &pb, NULL), NUDGE_OK);
        }
        for (int k = 0; k < 10; k++) {
            uint64_t seq = 0;
            size_t n = 0;
            cr_assert_eq(nudge_recv_ack(c, NULL, &seq, 1, &n), NUDGE_OK);
            cr_assert_eq(seq, acked + 1);
            acked = seq;
        }
        /* Read what arrived so far (without waiting). */
        struct sub_msg m;
        while (wsc_recv_msg(sub, &m, 0) == WSC_OK) {
            char why[160];
            cr_assert_eq(m.type, SUB_HINT, "got message type %d", (int)m.type);
            cr_assert(wstr_eq(m.topic, topic));
            cr_expect(subcheck_data_is_seq(&m), "%s: hint seq %llu does not carry the newest data",
                      topic, (unsigned long long)m.seq);
            if (track_hint(tr, &m, why, sizeof why) < 0) {
                (*violations)++;
                cr_log_error("%s: %s", topic, why);
            }
            sub_msg_clear(&m);
        }
    }
    int64_t took = now_ms() - t0;
    cr_expect_leq(took, 3000, "publishing %d hints to %s took %lld ms", PACED_N, topic,
                  (long long)took);
    return acked;
}

/* Read until tr reaches want or timeout_ms passes. */
static void drain_topic(struct wsc *sub, const char *topic, struct track *tr, uint64_t want,
                        int timeout_ms, int *violations)
{
    int64_t deadline = now_ms() + timeout_ms;
    while (tr->last < want) {
        int64_t left = deadline - now_ms();
        struct sub_msg m;
        int rc = wsc_recv_msg(sub, &m, left > 0 ? (int)left : 0);
        cr_assert_eq(rc, WSC_OK,
                     "%s: stuck at seq %llu of %llu (rc %d): the last publish was "
                     "not delivered",
                     topic, (unsigned long long)tr->last, (unsigned long long)want, rc);
        cr_assert_eq(m.type, SUB_HINT);
        cr_assert(wstr_eq(m.topic, topic));
        cr_expect(subcheck_data_is_seq(&m), "%s: hint seq %llu does not carry the newest data",
                  topic, (unsigned long long)m.seq);
        char why[160];
        if (track_hint(tr, &m, why, sizeof why) < 0) {
            (*violations)++;
            cr_log_error("%s: %s", topic, why);
        }
        sub_msg_clear(&m);
    }
}

Test(coalesce, window_delivers_about_ten_hints_a_second_and_always_the_last_publish, .timeout = 60)
{
    struct nudged d;
    const char *args[] = {"--coalesce", "hot:*=100", NULL};
    subcheck_start(&d, args);
    struct wsc hot, cold;
    open_sub(&hot, d.ws_port, SUB_PROTO_JSON, 0);
    cr_assert_eq(wsc_subscribe_v(&hot, "hot:1", NULL), WSC_OK);
    open_sub(&cold, d.ws_port, SUB_PROTO_MSGPACK, 0);
    cr_assert_eq(wsc_subscribe_v(&cold, "cold:1", NULL), WSC_OK);
    nudge_client_t *c = subcheck_publisher(&d, "coalesce-test");

    struct track th = {0}, tc = {0};
    int vh = 0, vc = 0;
    int64_t t0 = now_ms();
    uint64_t hot_final = paced_publish(c, "hot:1", &hot, &th, &vh);
    int64_t hot_ms = now_ms() - t0;
    drain_topic(&hot, "hot:1", &th, hot_final, 3000, &vh);
    /* The window closes quietly: nothing follows the final seq. */
    struct sub_msg m;
    cr_expect_eq(wsc_recv_msg(&hot, &m, 300), WSC_TIMEOUT, "a hint after the final seq");

    uint64_t cold_final = paced_publish(c, "cold:1", &cold, &tc, &vc);
    drain_topic(&cold, "cold:1", &tc, cold_final, 5000, &vc);

    fprintf(stderr,
            "coalesce: window hot:*=100: %d publishes in %lld ms -> %llu hints (%llu with n, "
            "changes %llu); cold:1 -> %llu hints\n",
            PACED_N, (long long)hot_ms, (unsigned long long)th.hints,
            (unsigned long long)th.coalesced, (unsigned long long)th.changes,
            (unsigned long long)tc.hints);
    cr_expect_eq(vh, 0, "hot:1: %d contract violations (see log)", vh);
    cr_expect_eq(vc, 0, "cold:1: %d contract violations (see log)", vc);
    cr_expect_eq(hot_final, PACED_N);
    cr_expect_eq(th.last, hot_final, "the last publish to hot:1 was not delivered");
    /* ~1 s of publishing with a 100 ms window: the first at once, then one per window. */
    uint64_t cap = 2 + (uint64_t)(hot_ms / 100) + 2;
    cr_expect(th.hints >= 5 && th.hints <= (cap > 15 ? cap : 15),
              "hot:1: %llu hints for %d publishes in %lld ms (want 5..~15)",
              (unsigned long long)th.hints, PACED_N, (long long)hot_ms);
    cr_expect_geq(th.coalesced, 1, "hot:1: no hint with \"n\" among %llu",
                  (unsigned long long)th.hints);
    cr_expect(th.hints == 0 || th.changes >= th.hints, "hot:1: n values sum to %llu",
              (unsigned long long)th.changes);
    /* The topic outside the pattern is delivered one by one. */
    cr_expect_eq(cold_final, PACED_N);
    cr_expect_eq(tc.hints, cold_final, "cold:1: %llu hints for %llu publishes",
                 (unsigned long long)tc.hints, (unsigned long long)cold_final);
    cr_expect_eq(tc.coalesced, 0, "cold:1: %llu coalesced hints", (unsigned long long)tc.coalesced);

    nudge_close(c);
    wsc_close(&hot, 1000);
    wsc_close(&cold, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- control messages and coalescing ------------------------------------------------------- */

/* Publish n hints with big data to topic (pipelined), so that a non-reading subscriber's socket
 * fills and the broker coalesces. Returns the last seq. */
static uint64_t big_burst(nudge_client_t *c, const char *topic, int n, const char *data)
{
    const char *t[1] = {topic};
    uint64_t seq = 0;
    for (int b = 0; b < n; b += 8) {
        int k = n - b < 8 ? n - b : 8;
        for (int i = 0; i < k; i++) {
            struct nudge_pub pb = {t, 1, data, NULL, 0};
            cr_assert_eq(nudge_send(c, &pb, NULL), NUDGE_OK);
        }
        for (int i = 0; i < k; i++) {
            size_t got = 0;
            cr_assert_eq(nudge_recv_ack(c, NULL, &seq, 1, &got), NUDGE_OK);
        }
    }
    return seq;
}

/* Read w, subscribed to topic at seq 0, until quiet for 300 ms (bounded), applying the contract
 * for the topic: "unsubscribed" forgets it, "subscribed" sets the last seq known — or, when the
 * new subscription resumed at resume_pos (>= 0), the replay must follow from there. Returns the
 * last seq known (0 = none). */
static uint64_t read_topic_until_quiet(struct wsc *w, const char *topic, int64_t resume_pos,
                                       int *violations)
{
    struct track tr = {0};
    int known = 1;
    int64_t deadline = now_ms() + 20000;
    while (now_ms() < deadline) {
        struct sub_msg m;
        int rc = wsc_recv_msg(w, &m, 300);
        if (rc == WSC_TIMEOUT) break;
        cr_assert_eq(rc, WSC_OK, "connection ended: rc %d close %u", rc, w->close_code);
        cr_assert(wstr_eq(m.topic, topic), "message for '%.*s'", (int)m.topic.len, m.topic.p);
        char why[160];
        switch (m.type) {
        case SUB_HINT:
            cr_assert(known, "hint seq %llu while not subscribed", (unsigned long long)m.seq);
            if (track_hint(&tr, &m, why, sizeof why) < 0) {
                (*violations)++;
                cr_log_error("%s: %s", topic, why);
            }
            break;
        case SUB_UNSUBSCRIBED:
            known = 0;
            break;
        case SUB_SUBSCRIBED:
            known = 1;
            tr.last = m.seq;
            if (resume_pos >= 0 && (uint64_t)resume_pos < m.seq) tr.last = (uint64_t)resume_pos;
            break;
        case SUB_RESET:
            cr_assert(known);
            cr_assert_geq(m.seq, tr.last);
            tr.last = m.seq;
            break;
        default:
            cr_assert_fail("unexpected message type %d", (int)m.type);
        }
        sub_msg_clear(&m);
    }
    return known ? tr.last : 0;
}

/* A congested subscriber that unsubscribes and subscribes again (with or without a resume
 * position) must get the hints of its new subscription: a hint coalesced into an entry queued
 * before "unsubscribed" belongs to the old subscription, so it would be lost. */
static void resubscribe_while_congested(int resume)
{
    struct nudged d;
    const char *args[] = {"--max-queue", "16",     "--max-data", "65536",
                          "--max-frame", "131072", NULL};
    subcheck_start(&d, args);
    struct wsc w;
    open_sub(&w, d.ws_port, SUB_PROTO_JSON, 1);
    cr_assert_eq(wsc_subscribe_v(&w, "re:1", NULL), WSC_OK);
    char *big = pad_json(60000);
    nudge_client_t *c = subcheck_publisher(&d, "coalesce-test");
    uint64_t seq = 0;
    int64_t coalesced = 0;
    for (int round = 0; round < 10 && coalesced == 0; round++) {
        seq = big_burst(c, "re:1", 40, big);
        json_t *st = nudged_stats(&d);
        cr_assert_not_null(st);
        coalesced = stats_int(st, "coalesced");
        json_decref(st);
    }
    cr_assert_gt(coalesced, 0, "the subscriber never became congested");
    /* Unsubscribe and subscribe again while the queue still holds a hint of the topic. */
    const char *t[1] = {"re:1"};
    struct wire_buf b = {0};
    struct wire_str ws = {"re:1", 4};
    cr_assert_eq(sub_encode_unsubscribe(w.fmt, &b, 100, &ws, 1), 0);
    cr_assert_eq(wsc_send_msg(&w, b.data, b.len), WSC_OK);
    wire_buf_reset(&b);
    uint8_t has = 1;
    uint64_t pos = seq - 2; /* missed two: both in history */
    cr_assert_eq(sub_encode_subscribe(w.fmt, &b, 101, &ws, 1, resume ? w.epoch : NULL,
                                      resume ? &has : NULL, resume ? &pos : NULL, 0),
                 0);
    cr_assert_eq(wsc_send_msg(&w, b.data, b.len), WSC_OK);
    wire_buf_free(&b);
    sleep_ms(200);
    /* One more change after the new subscription. */
    uint64_t last = 0;
    cr_assert_eq(nudge_publish(c, t, 1, "{\"i\":1}", &last), NUDGE_OK);
    int violations = 0;
    uint64_t known = read_topic_until_quiet(&w, "re:1", resume ? (int64_t)pos : -1, &violations);
    cr_expect_eq(violations, 0, "%d contract violations (see log)", violations);
    cr_expect_eq(known, last,
                 "after unsub + sub%s while congested the subscriber knows seq %llu, the topic "
                 "is at %llu: silent loss",
                 resume ? " with resume" : "", (unsigned long long)known, (unsigned long long)last);
    free(big);
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(coalesce, resubscribing_while_congested_loses_no_live_hint, .timeout = 60)
{
    resubscribe_while_congested(0);
}

Test(coalesce, resubscribing_with_resume_while_congested_loses_no_replayed_hint, .timeout = 60)
{
    resubscribe_while_congested(1);
}

/* A window that held exactly one publish releases a hint standing for that publish alone: the
 * origin rules apply to it as to any other hint ("own" for the origin, nothing at all for the
 * origin with skip_origin). */
Test(coalesce, a_window_keeps_the_origin_rules_of_the_publish_it_held, .timeout = 30)
{
    struct nudged d;
    const char *args[] = {"--coalesce", "hot:*=200", NULL};
    subcheck_start(&d, args);
    struct wsc me, other;
    open_sub(&me, d.ws_port, SUB_PROTO_JSON, 0);
    open_sub(&other, d.ws_port, SUB_PROTO_MSGPACK, 0);
    cr_assert_eq(wsc_subscribe_v(&me, "hot:1", NULL), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&other, "hot:1", NULL), WSC_OK);
    nudge_client_t *c = subcheck_publisher(&d, "coalesce-test");
    const char *t[1] = {"hot:1"};
    struct nudge_pub plain = {t, 1, NULL, NULL, 0};
    struct nudge_pub own = {t, 1, NULL, me.conn_id, 0};
    struct nudge_pub skip = {t, 1, NULL, me.conn_id, 1};
    uint64_t seq;
    /* Window 1: seq 1 opens it (out at once), seq 2 (own) is held alone. */
    cr_assert_eq(nudge_publish_ex(c, &plain, &seq), NUDGE_OK);
    cr_assert_eq(nudge_publish_ex(c, &own, &seq), NUDGE_OK);
    cr_assert_eq(seq, 2);
    sleep_ms(700); /* the window ends with seq 2, the next one closes quietly */
    /* Window 2: seq 3 opens it, seq 4 (skip_origin) is held alone. */
    cr_assert_eq(nudge_publish_ex(c, &plain, &seq), NUDGE_OK);
    cr_assert_eq(nudge_publish_ex(c, &skip, &seq), NUDGE_OK);
    cr_assert_eq(seq, 4);
    sleep_ms(700);
    cr_assert_eq(nudge_publish_ex(c, &plain, &seq), NUDGE_OK); /* seq 5, out at once */

    struct sub_msg m;
    uint64_t want_other[] = {1, 2, 3, 4, 5};
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(wsc_recv_msg(&other, &m, 3000), WSC_OK, "other: hint %d missing", i);
        cr_expect(m.type == SUB_HINT && m.seq == want_other[i] && m.count <= 1 && !m.own,
                  "other: got type %d seq %llu n %u own %d, want seq %llu", (int)m.type,
                  (unsigned long long)m.seq, m.count, m.own, (unsigned long long)want_other[i]);
        sub_msg_clear(&m);
    }
    /* The origin: 1, 2 (own), 3, then 5 — seq 4 was its own skip_origin change. */
    static const struct {
        uint64_t seq;
        int own;
    } want_me[] = {{1, 0}, {2, 1}, {3, 0}, {5, 0}};
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(wsc_recv_msg(&me, &m, 3000), WSC_OK, "origin: hint %d missing", i);
        cr_expect(m.type == SUB_HINT && m.seq == want_me[i].seq && m.count <= 1 &&
                      m.own == want_me[i].own,
                  "origin: got seq %llu n %u own %d, want seq %llu own %d (a window released "
                  "the held publish without its origin rules)",
                  (unsigned long long)m.seq, m.count, m.own, (unsigned long long)want_me[i].seq,
                  want_me[i].own);
        sub_msg_clear(&m);
    }
    nudge_close(c);
    wsc_close(&me, 1000);
    wsc_close(&other, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* Re-subscribing to a topic already subscribed only re-confirms it; the seq it confirms must
 * not run ahead of what the connection was sent, or the hint a window still holds would look
 * like a duplicate (seq <= the confirmed one) to a client, and the changes it stands for would
 * be lost. */
Test(coalesce, a_re_subscribe_during_a_window_confirms_only_what_was_delivered, .timeout = 30)
{
    struct nudged d;
    const char *args[] = {"--coalesce", "hot:*=300", NULL};
    subcheck_start(&d, args);
    struct wsc w;
    open_sub(&w, d.ws_port, SUB_PROTO_JSON, 0);
    cr_assert_eq(wsc_subscribe_v(&w, "hot:1", NULL), WSC_OK);
    nudge_client_t *c = subcheck_publisher(&d, "coalesce-test");
    const char *t[1] = {"hot:1"};
    uint64_t seq;
    for (int i = 0; i < 3; i++)
        cr_assert_eq(nudge_publish(c, t, 1, NULL, &seq), NUDGE_OK);
    cr_assert_eq(seq, 3); /* seq 1 went out, 2 and 3 are held */
    struct sub_msg m;
    cr_assert_eq(wsc_recv_msg(&w, &m, 2000), WSC_OK);
    cr_assert(m.type == SUB_HINT && m.seq == 1, "type %d seq %llu", (int)m.type,
              (unsigned long long)m.seq);
    sub_msg_clear(&m);
    cr_assert_eq(wsc_send_sub(&w, 50, t, 1), WSC_OK);
    /* Read until the window has released what it held (300 ms), and a little more. */
    uint64_t last = 1;
    int64_t deadline = now_ms() + 1000;
    int violations = 0, hints = 0;
    while (now_ms() < deadline) {
        if (wsc_recv_msg(&w, &m, 100) != WSC_OK) continue;
        hints += m.type == SUB_HINT;
        if (m.type == SUB_SUBSCRIBED) {
            if (m.seq > last) {
                violations++;
                cr_log_error("re-subscribe confirmed seq %llu, but the connection was sent only "
                             "up to %llu (the rest is held by the window)",
                             (unsigned long long)m.seq, (unsigned long long)last);
            }
            if (m.seq > last) last = m.seq; /* what a client takes as known */
        } else if (m.type == SUB_HINT) {
            if (m.seq <= last) {
                violations++;
                cr_log_error("hint seq %llu (n %u) after the connection knew %llu: a client drops "
                             "it as a duplicate and loses the changes it stands for",
                             (unsigned long long)m.seq, m.count, (unsigned long long)last);
            } else {
                last = m.seq;
            }
        }
        sub_msg_clear(&m);
    }
    cr_expect_eq(violations, 0, "%d violations (see log)", violations);
    cr_expect_eq(hints, 1, "%d hints after the re-subscribe, want the window's one", hints);
    cr_expect_eq(last, 3);
    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}
