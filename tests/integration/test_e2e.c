/* End-to-end: the real nudged, the C client publishing, hand-made WebSocket subscribers
 * receiving. What must hold (docs/protocol.md §Subscriber protocol, §Sequence numbers):
 * every subscriber gets exactly the hints of its topics, per topic in publish order, seqs
 * contiguous from 1 on a fresh topic and equal to those the publisher's acks returned, data
 * intact in both formats (JSON text frames and msgpack binary frames). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "nudge.h"
#include "subcheck.h"
#include "wire.h"
#include "wsc.h"

#define NTOPICS 3
#define NSUBS 50
#define NPUB 1000
#define BATCH 50

static const char *const topics[NTOPICS] = {"e2e/alpha", "e2e.beta", "e2e:gamma-é"};

/* What the test published to one topic, indexed by seq - 1. */
struct expect {
    size_t n;
    char *data[NPUB]; /* JSON text or NULL; owned */
};

struct sub {
    struct wsc w;
    unsigned mask;          /* bit t: subscribed to topics[t] */
    uint64_t next[NTOPICS]; /* next seq expected per topic */
    size_t got;
    char fail[256]; /* first failure seen, "" = none */
};

static uint32_t rng_state = 12345u;
static uint32_t rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

static int topic_index(struct wire_str t)
{
    for (int i = 0; i < NTOPICS; i++)
        if (wstr_eq(t, topics[i])) return i;
    return -1;
}

/* 1 when the msgpack data equals the JSON text (both NULL = equal). */
static int data_equal(const uint8_t *mp, size_t mp_len, const char *json)
{
    if (!mp || !json) return !mp && !json;
    struct wire_buf b = {0};
    if (wire_data_to_json(mp, mp_len, &b) != 0) {
        wire_buf_free(&b);
        return 0;
    }
    json_t *got = json_loadb((const char *)b.data, b.len, JSON_DECODE_ANY, NULL);
    json_t *want = json_loads(json, JSON_DECODE_ANY, NULL);
    int eq = got && want && json_equal(got, want);
    json_decref(got);
    json_decref(want);
    wire_buf_free(&b);
    return eq;
}

/* Check one received message against what was published; records the first failure. */
static void check_msg(struct sub *s, int idx, const struct sub_msg *m, struct expect *ex)
{
    if (s->fail[0]) return;
    if (m->type != SUB_HINT) {
        snprintf(s->fail, sizeof s->fail, "sub %d: message type %d, not a hint", idx, (int)m->type);
        return;
    }
    int t = topic_index(m->topic);
    if (t < 0 || !(s->mask & (1u << t))) {
        snprintf(s->fail, sizeof s->fail, "sub %d: hint for topic '%.*s' it did not subscribe", idx,
                 (int)m->topic.len, m->topic.p);
        return;
    }
    if (m->seq != s->next[t]) {
        snprintf(s->fail, sizeof s->fail, "sub %d topic %s: got seq %llu, expected %llu", idx,
                 topics[t], (unsigned long long)m->seq, (unsigned long long)s->next[t]);
        return;
    }
    if (m->seq > ex[t].n) {
        snprintf(s->fail, sizeof s->fail, "sub %d topic %s: seq %llu never published", idx,
                 topics[t], (unsigned long long)m->seq);
        return;
    }
    if (m->count > 1 || m->own) {
        snprintf(s->fail, sizeof s->fail, "sub %d: hint seq %llu has n=%u own=%d", idx,
                 (unsigned long long)m->seq, m->count, m->own);
        return;
    }
    const char *want = ex[t].data[m->seq - 1];
    if (!data_equal(m->data, m->data_len, want)) {
        snprintf(s->fail, sizeof s->fail, "sub %d topic %s seq %llu: data differs (want %s)", idx,
                 topics[t], (unsigned long long)m->seq, want ? want : "none");
        return;
    }
    s->next[t]++;
    s->got++;
}

/* Read everything available from every subscriber, waiting up to wait_ms for the first bytes.
 * Returns the number of messages read. */
static size_t drain(struct sub *subs, size_t n, struct expect *ex, int wait_ms)
{
    struct pollfd pfd[NSUBS];
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        pfd[i].fd = subs[i].w.fd;
        pfd[i].events = POLLIN;
        pfd[i].revents = 0;
    }
    if (poll(pfd, (nfds_t)n, wait_ms) <= 0) return 0;
    for (size_t i = 0; i < n; i++) {
        if (!pfd[i].revents) continue;
        for (;;) {
            struct sub_msg m;
            int rc = wsc_recv_msg(&subs[i].w, &m, 0);
            if (rc == WSC_TIMEOUT) break;
            if (rc != WSC_OK) {
                if (!subs[i].fail[0])
                    snprintf(subs[i].fail, sizeof subs[i].fail,
                             "sub %zu: receive failed (%d, close code %u)", i, rc,
                             subs[i].w.close_code);
                pfd[i].fd = -1;
                break;
            }
            check_msg(&subs[i], (int)i, &m, ex);
            sub_msg_clear(&m);
            total++;
        }
    }
    return total;
}

static size_t expected_for(const struct sub *s, const struct expect *ex)
{
    size_t n = 0;
    for (int t = 0; t < NTOPICS; t++)
        if (s->mask & (1u << t)) n += ex[t].n;
    return n;
}

Test(e2e, fifty_subscribers_receive_exactly_their_topics_in_order, .timeout = 120)
{
    struct nudged d;
    subcheck_start(&d, NULL);

    static struct sub subs[NSUBS];
    static struct expect ex[NTOPICS];
    memset(subs, 0, sizeof subs);
    memset(ex, 0, sizeof ex);

    /* Subscribers: every non-empty subset of the 3 topics, cycling; formats alternate between
     * msgpack, JSON by name and JSON by default (no subprotocol offered). */
    for (int i = 0; i < NSUBS; i++) {
        const char *proto = i % 3 == 0 ? SUB_PROTO_MSGPACK : i % 3 == 1 ? SUB_PROTO_JSON : NULL;
        cr_assert_eq(wsc_open(&subs[i].w, d.ws_port, proto), WSC_OK, "subscriber %d: open", i);
        cr_assert_eq(subs[i].w.fmt, i % 3 == 0 ? SUB_MSGPACK : SUB_JSON,
                     "subscriber %d: negotiated format", i);
        subs[i].mask = (unsigned)(i % 7) + 1;
        const char *mine[NTOPICS];
        uint64_t seqs[NTOPICS];
        size_t k = 0;
        for (int t = 0; t < NTOPICS; t++)
            if (subs[i].mask & (1u << t)) mine[k++] = topics[t];
        cr_assert_eq(wsc_subscribe(&subs[i].w, mine, k, seqs), WSC_OK,
                     "subscriber %d: subscribe (error %d)", i, subs[i].w.last_error);
        for (size_t j = 0; j < k; j++)
            cr_assert_eq(seqs[j], 0, "subscriber %d: fresh topic %s has seq %llu", i, mine[j],
                         (unsigned long long)seqs[j]);
        for (int t = 0; t < NTOPICS; t++)
            subs[i].next[t] = 1;
    }

    nudge_client_t *c = subcheck_publisher(&d, NULL);

    /* Publish in pipelined batches; between batches, drain every subscriber so no outbound
     * queue grows anywhere near --max-queue. */
    int sent_topic[NPUB];
    for (int base = 0; base < NPUB; base += BATCH) {
        uint64_t ids[BATCH];
        for (int k = 0; k < BATCH; k++) {
            int i = base + k;
            int t = (int)(rng() % NTOPICS);
            char *data = NULL;
            switch (rng() % 4) {
            case 0:
                break; /* no data */
            case 1:
                if (asprintf(&data, "{\"i\":%d,\"by\":\"user-%u\"}", i, rng() % 1000) < 0)
                    data = NULL;
                break;
            case 2:
                if (asprintf(&data, "[%d,true,null,\"ünï✓\",{\"n\":[1,2,3]}]", i) < 0) data = NULL;
                break;
            default:
                if (asprintf(&data, "%d", i) < 0) data = NULL;
            }
            const char *tp[1] = {topics[t]};
            struct nudge_pub p = {tp, 1, data, NULL, 0};
            cr_assert_eq(nudge_send(c, &p, &ids[k]), NUDGE_OK, "nudge_send %d: %s", i,
                         nudge_last_error(c));
            sent_topic[i] = t;
            ex[t].data[ex[t].n++] = data;
        }
        /* Acks come in send order; seqs per topic must be contiguous from 1. */
        size_t seen[NTOPICS] = {0};
        for (int t = 0; t < NTOPICS; t++)
            for (int i = 0; i < base; i++)
                seen[t] += sent_topic[i] == t;
        for (int k = 0; k < BATCH; k++) {
            uint64_t id, seq = 0;
            size_t n = 0;
            int rc = nudge_recv_ack(c, &id, &seq, 1, &n);
            cr_assert_eq(rc, NUDGE_OK, "ack %d: %s (%s)", base + k, nudge_strerror(rc),
                         nudge_last_error(c));
            cr_assert_eq(id, ids[k], "ack out of order: got id %llu, want %llu",
                         (unsigned long long)id, (unsigned long long)ids[k]);
            cr_assert_eq(n, 1);
            int t = sent_topic[base + k];
            seen[t]++;
            cr_assert_eq(seq, seen[t], "publish %d to %s: ack seq %llu, expected %zu", base + k,
                         topics[t], (unsigned long long)seq, seen[t]);
        }
        while (drain(subs, NSUBS, ex, 0) > 0) {
        }
    }

    /* Everything is acked: drain until every subscriber has all it should (bounded). */
    int64_t deadline = now_ms() + 30000;
    for (;;) {
        size_t missing = 0;
        for (int i = 0; i < NSUBS; i++)
            if (!subs[i].fail[0]) missing += expected_for(&subs[i], ex) - subs[i].got;
        if (missing == 0 || now_ms() > deadline) break;
        drain(subs, NSUBS, ex, 200);
    }
    /* Nothing extra may follow: a short grace period for duplicates or strays. */
    drain(subs, NSUBS, ex, 300);
    while (drain(subs, NSUBS, ex, 0) > 0) {
    }

    size_t total = 0;
    for (int i = 0; i < NSUBS; i++) {
        cr_expect_str_empty(subs[i].fail, "%s", subs[i].fail);
        cr_expect_eq(subs[i].got, expected_for(&subs[i], ex),
                     "subscriber %d (topics mask %u): got %zu hints, expected %zu", i, subs[i].mask,
                     subs[i].got, expected_for(&subs[i], ex));
        for (int t = 0; t < NTOPICS; t++)
            if (subs[i].mask & (1u << t))
                cr_expect_eq(subs[i].next[t], ex[t].n + 1,
                             "subscriber %d topic %s: stopped at %llu of %zu", i, topics[t],
                             (unsigned long long)subs[i].next[t] - 1, ex[t].n);
        total += subs[i].got;
    }
    cr_log_info("e2e: %d publishes, %zu/%zu/%zu per topic, %zu deliveries checked", NPUB, ex[0].n,
                ex[1].n, ex[2].n, total);

    for (int i = 0; i < NSUBS; i++)
        wsc_close(&subs[i].w, 1000);
    nudge_close(c);
    for (int t = 0; t < NTOPICS; t++)
        for (size_t i = 0; i < ex[t].n; i++)
            free(ex[t].data[i]);
    cr_assert_eq(nudged_stop(&d), 0, "nudged did not exit 0 (leak or crash?)");
}

Test(e2e, multi_topic_publish_gets_one_seq_per_topic_and_one_hint_each, .timeout = 60)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc a, b;
    cr_assert_eq(wsc_open(&a, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_open(&b, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&a, "m/x", "m/y", NULL), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&b, "m/y", NULL), WSC_OK);

    nudge_client_t *c = subcheck_publisher(&d, NULL);
    const char *one[1] = {"m/y"};
    uint64_t s1 = 0;
    cr_assert_eq(nudge_publish(c, one, 1, NULL, &s1), NUDGE_OK);
    cr_assert_eq(s1, 1);
    const char *both[3] = {"m/x", "m/y", "m/z"};
    uint64_t seqs[3] = {0, 0, 0};
    cr_assert_eq(nudge_publish(c, both, 3, "{\"k\":\"v\"}", seqs), NUDGE_OK, "%s",
                 nudge_last_error(c));
    cr_assert_eq(seqs[0], 1, "m/x seq %llu", (unsigned long long)seqs[0]);
    cr_assert_eq(seqs[1], 2, "m/y seq %llu", (unsigned long long)seqs[1]);
    cr_assert_eq(seqs[2], 1, "m/z seq %llu", (unsigned long long)seqs[2]);

    /* a: m/y seq 1, then m/x seq 1 and m/y seq 2 (order between topics is not promised). */
    int seen_x = 0, seen_y1 = 0, seen_y2 = 0;
    for (int i = 0; i < 3; i++) {
        struct sub_msg m;
        cr_assert_eq(wsc_recv_msg(&a, &m, 5000), WSC_OK, "a: hint %d", i);
        cr_assert_eq(m.type, SUB_HINT);
        if (wstr_eq(m.topic, "m/x")) {
            cr_expect_eq(m.seq, 1);
            cr_expect(data_equal(m.data, m.data_len, "{\"k\":\"v\"}"));
            seen_x++;
        } else if (wstr_eq(m.topic, "m/y") && m.seq == 1) {
            cr_expect(m.data == NULL, "first m/y publish had no data");
            cr_expect_eq(seen_y2, 0, "m/y seq 2 arrived before seq 1");
            seen_y1++;
        } else if (wstr_eq(m.topic, "m/y") && m.seq == 2) {
            seen_y2++;
        } else {
            cr_expect(0, "a: unexpected hint %.*s seq %llu", (int)m.topic.len, m.topic.p,
                      (unsigned long long)m.seq);
        }
        sub_msg_clear(&m);
    }
    cr_expect(seen_x == 1 && seen_y1 == 1 && seen_y2 == 1);
    for (uint64_t want = 1; want <= 2; want++) {
        struct sub_msg m;
        cr_assert_eq(wsc_recv_msg(&b, &m, 5000), WSC_OK);
        cr_expect(m.type == SUB_HINT && wstr_eq(m.topic, "m/y") && m.seq == want);
        sub_msg_clear(&m);
    }
    struct sub_msg m;
    cr_expect_eq(wsc_recv_msg(&a, &m, 200), WSC_TIMEOUT, "a got an extra message");
    cr_expect_eq(wsc_recv_msg(&b, &m, 200), WSC_TIMEOUT, "b got an extra message");

    nudge_close(c);
    wsc_close(&a, 1000);
    wsc_close(&b, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(e2e, late_subscriber_sees_current_seq_then_only_new_hints, .timeout = 60)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    nudge_client_t *c = subcheck_publisher(&d, NULL);
    const char *tp[1] = {"late"};
    for (int i = 1; i <= 5; i++) {
        uint64_t s = 0;
        cr_assert_eq(nudge_publish(c, tp, 1, NULL, &s), NUDGE_OK);
        cr_assert_eq(s, (uint64_t)i);
    }
    struct wsc w;
    uint64_t cur = 0;
    cr_assert_eq(wsc_open(&w, d.ws_port, NULL), WSC_OK);
    cr_assert_eq(wsc_subscribe(&w, tp, 1, &cur), WSC_OK);
    cr_assert_eq(cur, 5, "subscribed.seq is %llu, expected the current seq 5",
                 (unsigned long long)cur);
    uint64_t s = 0;
    cr_assert_eq(nudge_publish(c, tp, 1, "\"six\"", &s), NUDGE_OK);
    cr_assert_eq(s, 6);
    struct sub_msg m;
    cr_assert_eq(wsc_recv_msg(&w, &m, 5000), WSC_OK);
    cr_expect(m.type == SUB_HINT && m.seq == 6, "got type %d seq %llu", (int)m.type,
              (unsigned long long)m.seq);
    cr_expect(data_equal(m.data, m.data_len, "\"six\""));
    sub_msg_clear(&m);

    /* After unsubscribing, nothing more arrives. */
    cr_assert_eq(wsc_unsubscribe(&w, tp, 1), WSC_OK, "unsubscribe (error %d)", w.last_error);
    cr_assert_eq(nudge_publish(c, tp, 1, NULL, &s), NUDGE_OK);
    cr_expect_eq(wsc_recv_msg(&w, &m, 300), WSC_TIMEOUT, "hint after unsubscribe");

    nudge_close(c);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(e2e, welcome_and_ping_answer_in_both_formats, .timeout = 60)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    nudge_client_t *c = subcheck_publisher(&d, NULL);
    const char *epoch = nudge_epoch(c);
    cr_assert_eq(strlen(epoch), 16, "publisher epoch '%s'", epoch);
    cr_assert_eq(strspn(epoch, "0123456789abcdef"), 16, "epoch '%s' is not 16 hex", epoch);

    const char *protos[2] = {SUB_PROTO_JSON, SUB_PROTO_MSGPACK};
    char conn0[64] = "";
    for (int i = 0; i < 2; i++) {
        struct wsc w;
        cr_assert_eq(wsc_connect(&w, d.ws_port, protos[i]), WSC_OK);
        cr_assert_str_eq(w.protocol, protos[i], "server chose subprotocol '%s'", w.protocol);
        struct wire_buf b = {0};
        cr_assert_eq(sub_encode_hello(w.fmt, &b, 1, "e2e"), 0);
        cr_assert_eq(wsc_send_msg(&w, b.data, b.len), WSC_OK);
        wire_buf_free(&b);
        struct sub_msg m;
        cr_assert_eq(wsc_recv_msg(&w, &m, 5000), WSC_OK);
        cr_assert_eq(m.type, SUB_WELCOME, "got type %d", (int)m.type);
        cr_expect_eq(m.version, 1);
        cr_expect(wstr_eq(m.epoch, epoch), "ws epoch %.*s != publisher epoch %s", (int)m.epoch.len,
                  m.epoch.p, epoch);
        cr_expect(m.conn.len > 0, "empty conn id");
        cr_expect(m.server.len > 7 && memcmp(m.server.p, "nudged/", 7) == 0, "server '%.*s'",
                  (int)m.server.len, m.server.p);
        if (i == 0)
            snprintf(conn0, sizeof conn0, "%.*s", (int)m.conn.len, m.conn.p);
        else
            cr_expect(!wstr_eq(m.conn, conn0), "two connections share conn id %s", conn0);
        sub_msg_clear(&m);

        /* Protocol-level ping → pong with the same id. */
        cr_assert_eq(sub_encode_ping(w.fmt, &b, 1, 77), 0);
        cr_assert_eq(wsc_send_msg(&w, b.data, b.len), WSC_OK);
        wire_buf_free(&b);
        cr_assert_eq(wsc_recv_msg(&w, &m, 5000), WSC_OK);
        cr_expect(m.type == SUB_PONG && m.has_id && m.id == 77, "ping: got type %d id %llu",
                  (int)m.type, (unsigned long long)m.id);
        sub_msg_clear(&m);

        /* WebSocket-level ping frame → pong frame. */
        unsigned before = w.pongs_seen;
        cr_assert_eq(wsc_send_ping(&w, "abc", 3), WSC_OK);
        int rc = wsc_recv(&w, 500); /* the pong is consumed and counted; nothing else comes */
        cr_expect_eq(rc, WSC_TIMEOUT);
        cr_expect_eq(w.pongs_seen, before + 1, "no pong frame for a ping frame");
        wsc_close(&w, 1000);
    }
    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st);
    cr_expect_str_eq(json_string_value(json_object_get(st, "epoch")), epoch);
    json_decref(st);
    nudge_close(c);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(e2e, hint_marks_own_only_for_the_origin_connection, .timeout = 60)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc a, b;
    cr_assert_eq(wsc_open(&a, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_open(&b, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&a, "own", NULL), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&b, "own", NULL), WSC_OK);
    nudge_client_t *c = subcheck_publisher(&d, NULL);
    const char *tp[1] = {"own"};
    struct nudge_pub p = {tp, 1, NULL, a.conn_id, 0};
    uint64_t seq = 0;
    cr_assert_eq(nudge_publish_ex(c, &p, &seq), NUDGE_OK, "%s", nudge_last_error(c));
    struct sub_msg m;
    cr_assert_eq(wsc_recv_msg(&a, &m, 5000), WSC_OK);
    cr_expect(m.type == SUB_HINT && m.own, "origin connection: own=%d", m.own);
    sub_msg_clear(&m);
    cr_assert_eq(wsc_recv_msg(&b, &m, 5000), WSC_OK);
    cr_expect(m.type == SUB_HINT && !m.own, "other connection: own=%d", m.own);
    sub_msg_clear(&m);
    nudge_close(c);
    wsc_close(&a, 1000);
    wsc_close(&b, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(e2e, skip_origin_leaves_out_only_the_origin_connection, .timeout = 60)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc a, b;
    cr_assert_eq(wsc_open(&a, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_open(&b, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&a, "skip", NULL), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&b, "skip", NULL), WSC_OK);
    nudge_client_t *c = subcheck_publisher(&d, NULL);
    const char *tp[1] = {"skip"};
    struct nudge_pub p = {tp, 1, NULL, a.conn_id, 1};
    uint64_t seq = 0;
    cr_assert_eq(nudge_publish_ex(c, &p, &seq), NUDGE_OK, "%s", nudge_last_error(c));
    p.skip_origin = 0;
    p.origin = NULL;
    cr_assert_eq(nudge_publish_ex(c, &p, &seq), NUDGE_OK, "%s", nudge_last_error(c));
    struct sub_msg m;
    /* The origin sees only the second change (its own first one was left out on purpose). */
    cr_assert_eq(wsc_recv_msg(&a, &m, 5000), WSC_OK);
    cr_expect(m.type == SUB_HINT && m.seq == 2 && !m.own, "origin got seq %llu own=%d",
              (unsigned long long)m.seq, m.own);
    sub_msg_clear(&m);
    for (uint64_t want = 1; want <= 2; want++) {
        cr_assert_eq(wsc_recv_msg(&b, &m, 5000), WSC_OK);
        cr_expect(m.type == SUB_HINT && m.seq == want, "other connection got seq %llu, want %llu",
                  (unsigned long long)m.seq, (unsigned long long)want);
        sub_msg_clear(&m);
    }
    nudge_close(c);
    wsc_close(&a, 1000);
    wsc_close(&b, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}
