/* Survival: peers that vanish mid-frame, a subscriber that never reads while others are flooded,
 * a thousand connect/disconnect cycles, and SIGTERM with subscribers attached. After each, the
 * broker still serves fresh clients (nudged_probe), its connection counts are back to baseline,
 * and it exits 0 under ASan (nothing leaked on any of these paths). */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "nudge.h"
#include "subcheck.h"
#include "pub.h"
#include "wsc.h"

static void abort_fd(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
}

/* ---- vanishing peers ----------------------------------------------------------------------- */

Test(survival, publisher_vanishing_mid_frame_leaves_broker_serving)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, NULL), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&w, "half", NULL), WSC_OK);

    /* A complete publish frame to cut in pieces. */
    struct wire_buf f = {0};
    struct wire_str t = {"half", 4};
    const uint8_t data[3] = {0xa2, 'h', 'i'};
    cr_assert_eq(pub_encode_publish(&f, 1, &t, 1, data, sizeof data, NULL), 0);

    struct pubraw p;
    /* Two bytes of the length prefix, then FIN. */
    cr_assert_eq(pubraw_connect(&p, d.pub_port, 1), PUBRAW_OK);
    cr_assert_eq(pubraw_send(&p, f.data, 2), PUBRAW_OK);
    pubraw_close(&p, 0);
    /* Prefix and half the body, then RST. */
    cr_assert_eq(pubraw_connect(&p, d.pub_port, 1), PUBRAW_OK);
    cr_assert_eq(pubraw_send(&p, f.data, f.len / 2 + 2), PUBRAW_OK);
    sleep_ms(20);
    pubraw_close(&p, 1);
    /* All but the last byte, then FIN. */
    cr_assert_eq(pubraw_connect(&p, d.pub_port, 1), PUBRAW_OK);
    cr_assert_eq(pubraw_send(&p, f.data, f.len - 1), PUBRAW_OK);
    pubraw_close(&p, 0);
    /* Half a hello, before any handshake, then RST. */
    struct wire_buf h = {0};
    cr_assert_eq(pub_encode_hello(&h, 1, "x"), 0);
    cr_assert_eq(pubraw_connect(&p, d.pub_port, 0), PUBRAW_OK);
    cr_assert_eq(pubraw_send(&p, h.data, h.len / 2), PUBRAW_OK);
    pubraw_close(&p, 1);
    wire_buf_free(&h);

    cr_expect_eq(nudged_wait_stat(&d, "connections.pub", 0, 5000), 0,
                 "publisher connections not released");
    /* No partial publish was applied: nothing arrived, and the next publish is seq 1. */
    struct sub_msg m;
    cr_expect_eq(wsc_recv_msg(&w, &m, 200), WSC_TIMEOUT, "a partial publish was delivered");
    cr_assert_eq(pubraw_connect(&p, d.pub_port, 1), PUBRAW_OK);
    cr_assert_eq(pubraw_send(&p, f.data, f.len), PUBRAW_OK);
    struct pub_msg a;
    cr_assert_eq(pubraw_recv(&p, &a, 5000), PUBRAW_OK);
    cr_expect(a.type == PUB_ACK && a.nseqs == 1 && a.seqs[0] == 1,
              "whole publish: type %d seq %llu", (int)a.type, (unsigned long long)a.seqs[0]);
    pub_msg_clear(&a);
    cr_assert_eq(wsc_recv_msg(&w, &m, 5000), WSC_OK);
    cr_expect(m.type == SUB_HINT && m.seq == 1);
    sub_msg_clear(&m);
    pubraw_close(&p, 0);
    wire_buf_free(&f);
    wsc_close(&w, 1000);
    subcheck_probe(&d);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(survival, websocket_peer_vanishing_mid_frame_leaves_broker_serving)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w;

    /* Half an upgrade request, then FIN. */
    int fd = tcp_connect(d.ws_port);
    cr_assert(fd >= 0);
    const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConn";
    cr_assert_eq(send_all(fd, req, sizeof req - 1), 0);
    close(fd);

    /* After hello: one byte of a frame header, then FIN. */
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_send_raw(&w, "\x81", 1), WSC_OK);
    wsc_free(&w, 0);

    /* A header announcing 100 masked bytes, the mask and 50 of them, then RST. */
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    uint8_t part[2 + 4 + 50];
    part[0] = 0x81;
    part[1] = 0x80 | 100;
    memset(part + 2, 0x5a, sizeof part - 2);
    cr_assert_eq(wsc_send_raw(&w, part, sizeof part), WSC_OK);
    sleep_ms(20);
    wsc_free(&w, 1);

    /* A 64-bit length header cut after 5 of its 8 length bytes, then FIN. */
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    cr_assert_eq(wsc_send_raw(&w, "\x82\xff\x00\x00\x00\x00\x00", 7), WSC_OK);
    wsc_free(&w, 0);

    /* The first fragment of a message, then RST. */
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_send_frame_ex(&w, 0x01, "{\"type\":", 8, 1), WSC_OK);
    sleep_ms(20);
    wsc_free(&w, 1);

    /* A subscriber with hints in flight that resets the connection without reading them. */
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&w, "inflight", NULL), WSC_OK);
    nudge_client_t *c = subcheck_publisher(&d, "survival");
    const char *t[1] = {"inflight"};
    for (int i = 0; i < 200; i++) {
        struct nudge_pub pb = {t, 1, "{\"pad\":\"0123456789012345678901234567890123456789\"}", NULL,
                               0};
        cr_assert_eq(nudge_send(c, &pb, NULL), NUDGE_OK);
    }
    cr_assert_eq(nudge_flush(c), NUDGE_OK);
    wsc_free(&w, 1);
    for (int i = 0; i < 200; i++)
        cr_assert_eq(nudge_recv_ack(c, NULL, NULL, 0, NULL), NUDGE_OK, "ack %d", i);
    nudge_close(c);

    cr_expect_eq(nudged_wait_stat(&d, "connections.ws", 0, 5000), 0,
                 "WebSocket connections not released");
    cr_expect_eq(nudged_wait_stat(&d, "subscriptions", 0, 5000), 0, "subscriptions not released");
    subcheck_probe(&d);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- slow consumers ------------------------------------------------------------------------ */

/* Policy (docs/architecture.md §Per-connection queue, docs/guarantees.md §Coalescing): a
 * subscriber whose socket does not keep up is not closed; once --max-queue entries wait, the
 * hints of a topic already queued merge into that entry ("n" = changes covered). Only a queue
 * that still outgrows max_queue + max_subs entries (wildcards over many topics) is closed with
 * 4001. */

#define FLOOD_N 20000
#define FLOOD_BATCH 32

/* Read hints of one topic from w until its seq reaches want (bounded). Each hint must be the
 * next seq (individually, when exact is 1) or cover a jump with "n". Returns the last seq. */
static uint64_t catch_up(struct wsc *w, uint64_t have, uint64_t want, int exact, const char *who)
{
    int64_t deadline = now_ms() + 10000;
    while (have < want) {
        int64_t left = deadline - now_ms();
        struct sub_msg m;
        int rc = wsc_recv_msg(w, &m, left > 0 ? (int)left : 0);
        cr_assert_eq(rc, WSC_OK, "%s: stuck at seq %llu of %llu (rc %d, close %u)", who,
                     (unsigned long long)have, (unsigned long long)want, rc, w->close_code);
        cr_assert_eq(m.type, SUB_HINT, "%s: got type %d", who, (int)m.type);
        uint32_t n = m.count ? m.count : 1;
        if (exact)
            cr_assert_eq(n, 1, "%s: a subscriber that keeps up got a coalesced hint (n %u)", who,
                         n);
        cr_assert_eq(m.seq, have + n, "%s: seq %llu (n %u) after %llu: gap or duplicate", who,
                     (unsigned long long)m.seq, n, (unsigned long long)have);
        cr_assert(m.data != NULL && m.data_len > 800, "%s: hint data lost", who);
        have = m.seq;
        sub_msg_clear(&m);
    }
    return have;
}

/* "\"abc...\"": a JSON string of n letters (n + 3 bytes of msgpack). Caller frees. */
static char *pad_string(size_t n)
{
    char *s = malloc(n + 3);
    cr_assert_not_null(s);
    s[0] = '"';
    for (size_t i = 1; i <= n; i++)
        s[i] = (char)('a' + i % 26);
    s[n + 1] = '"';
    s[n + 2] = '\0';
    return s;
}

/* Publish n hints with data to topic, pipelined in batches; after each batch the keeper (may be
 * NULL) reads up to the acked seq. Returns the last acked seq. */
static uint64_t flood(nudge_client_t *c, const char *topic, int n, const char *data,
                      struct wsc *keeper, uint64_t *keeper_seq)
{
    const char *t[1] = {topic};
    uint64_t acked = 0;
    for (int base = 0; base < n; base += FLOOD_BATCH) {
        int k, batch = n - base < FLOOD_BATCH ? n - base : FLOOD_BATCH;
        for (k = 0; k < batch; k++) {
            struct nudge_pub pb = {t, 1, data, NULL, 0};
            cr_assert_eq(nudge_send(c, &pb, NULL), NUDGE_OK);
        }
        for (k = 0; k < batch; k++) {
            uint64_t seq = 0;
            size_t got = 0;
            int rc = nudge_recv_ack(c, NULL, &seq, 1, &got);
            cr_assert_eq(rc, NUDGE_OK, "ack of publish %d: %s (%s)", base + k, nudge_strerror(rc),
                         nudge_last_error(c));
            cr_assert_eq(seq, acked + 1);
            acked = seq;
        }
        if (keeper) *keeper_seq = catch_up(keeper, *keeper_seq, acked, 1, "normal subscriber");
    }
    return acked;
}

Test(survival, never_reading_subscriber_is_coalesced_not_closed_while_a_normal_one_gets_every_hint,
     .timeout = 120)
{
    struct nudged d;
    const char *args[] = {"--max-queue", "64", NULL};
    subcheck_start(&d, args);

    struct wsc slow, normal;
    int fd = subcheck_small_rcvbuf_socket(d.ws_port);
    cr_assert_eq(wsc_handshake(&slow, fd, d.ws_port, "/", SUB_PROTO_JSON, NULL), WSC_OK);
    cr_assert_eq(wsc_hello(&slow), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&slow, "flood", NULL), WSC_OK);
    cr_assert_eq(wsc_open(&normal, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&normal, "flood", NULL), WSC_OK);

    char *data = pad_string(900); /* 903 bytes of msgpack: under --max-data 1024 */
    nudge_client_t *c = subcheck_publisher(&d, "survival");
    uint64_t have = 0;
    int64_t t0 = now_ms();
    uint64_t acked = flood(c, "flood", FLOOD_N, data, &normal, &have);
    cr_log_info("survival: %d hints of 903 bytes through in %lld ms", FLOOD_N,
                (long long)(now_ms() - t0));
    cr_expect_eq(have, FLOOD_N);
    cr_expect_eq(acked, FLOOD_N);

    /* The never-reader is still connected, its queue bounded, nobody closed as slow. */
    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st);
    int64_t queued = stats_int(st, "queued");
    cr_expect_eq(stats_int(st, "slow_closes"), 0, "a subscriber was closed as slow");
    cr_expect_eq(stats_int(st, "connections.ws"), 2);
    cr_expect_gt(stats_int(st, "coalesced"), 0, "the never-reader's hints were never coalesced");
    cr_expect_leq(queued, 64 + 1, "queued %lld with --max-queue 64 and one topic",
                  (long long)queued);
    cr_expect_eq(stats_int(st, "publishes"), FLOOD_N);
    json_decref(st);

    /* Reading now: a valid stream up to the final seq, some of it coalesced, then nothing. */
    int64_t t1 = now_ms();
    uint64_t slow_seq = catch_up(&slow, 0, FLOOD_N, 0, "never-reader");
    cr_expect_eq(slow_seq, FLOOD_N);
    struct sub_msg m;
    cr_expect_eq(wsc_recv_msg(&slow, &m, 300), WSC_TIMEOUT,
                 "more after the final seq (or a close)");
    cr_log_info("survival: never-reader caught up to seq %llu in %lld ms",
                (unsigned long long)slow_seq, (long long)(now_ms() - t1));

    nudge_close(c);
    free(data);
    wsc_close(&slow, 1000);
    wsc_close(&normal, 1000);
    subcheck_probe(&d);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(survival, never_reading_wildcard_subscriber_over_too_many_topics_is_closed_with_4001,
     .timeout = 120)
{
    /* --max-queue 8 --max-subs 1: one wildcard subscription; once the never-reader's socket is
     * full, every distinct topic it matches takes one more queue entry, and past 8 + 1 entries it
     * must be closed with 4001 — and released at once, not pinned by its unread bytes. */
    struct nudged d;
    const char *args[] = {"--max-queue", "8", "--max-subs", "1", NULL};
    subcheck_start(&d, args);

    struct wsc slow, normal;
    int fd = subcheck_small_rcvbuf_socket(d.ws_port);
    cr_assert_eq(wsc_handshake(&slow, fd, d.ws_port, "/", SUB_PROTO_JSON, NULL), WSC_OK);
    cr_assert_eq(wsc_hello(&slow), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&slow, "w:*", NULL), WSC_OK, "wildcard subscribe (error %d)",
                 slow.last_error);
    cr_assert_eq(wsc_open(&normal, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&normal, "w:big", NULL), WSC_OK);

    /* Fill the never-reader's socket: ~9 MB of hints on one topic. */
    char *data = pad_string(900);
    nudge_client_t *c = subcheck_publisher(&d, "survival");
    uint64_t have = 0;
    flood(c, "w:big", 10000, data, &normal, &have);
    cr_expect_eq(have, 10000);
    cr_expect_eq(nudged_wait_stat(&d, "slow_closes", 0, 100), 0,
                 "closed as slow while only one topic was queued");

    /* Now 50 distinct topics, one hint each. */
    for (int i = 0; i < 50; i++) {
        char topic[16];
        snprintf(topic, sizeof topic, "w:%d", i);
        const char *t[1] = {topic};
        cr_assert_eq(nudge_publish(c, t, 1, NULL, NULL), NUDGE_OK);
    }
    int64_t t0 = now_ms();
    int64_t sc = nudged_wait_stat(&d, "slow_closes", 1, 5000);
    cr_expect_eq(sc, 1, "the never-reader was not closed as slow (slow_closes %lld)",
                 (long long)sc);
    int64_t ws = nudged_wait_stat(&d, "connections.ws", 1, 5000);
    cr_expect_eq(ws, 1,
                 "the closed slow consumer still holds its connection %lld ms later "
                 "(connections.ws %lld): its unread bytes pin it",
                 (long long)(now_ms() - t0), (long long)ws);

    /* What it reads: a valid stream, then close 4001 (or the end of the connection). */
    uint64_t big = 0, others = 0;
    int rc;
    int64_t deadline = now_ms() + 20000;
    for (;;) {
        struct sub_msg m;
        int64_t left = deadline - now_ms();
        rc = wsc_recv_msg(&slow, &m, left > 0 ? (int)left : 0);
        if (rc != WSC_OK) break;
        cr_assert_eq(m.type, SUB_HINT, "never-reader: got type %d", (int)m.type);
        uint32_t n = m.count ? m.count : 1;
        if (wstr_eq(m.topic, "w:big")) {
            cr_assert_eq(m.seq, big + n, "never-reader w:big: seq %llu (n %u) after %llu",
                         (unsigned long long)m.seq, n, (unsigned long long)big);
            big = m.seq;
        } else {
            cr_assert(m.seq == 1 && n == 1, "never-reader %.*s: seq %llu n %u", (int)m.topic.len,
                      m.topic.p, (unsigned long long)m.seq, n);
            others++;
        }
        sub_msg_clear(&m);
    }
    cr_expect(rc == WSC_EOF || (rc == WSC_CLOSED && slow.close_code == 4001),
              "never-reader: after %llu w:big seqs and %llu other hints: rc %d close %u "
              "(want close 4001 or EOF)",
              (unsigned long long)big, (unsigned long long)others, rc, slow.close_code);
    cr_expect_lt(others, 50, "the never-reader got every distinct topic: it was not cut off");
    cr_log_info("survival: wildcard never-reader read w:big up to %llu and %llu other hints, "
                "then %s %u",
                (unsigned long long)big, (unsigned long long)others,
                rc == WSC_CLOSED ? "close" : "rc", rc == WSC_CLOSED ? slow.close_code : 0);

    nudge_close(c);
    free(data);
    wsc_free(&slow, 0);
    wsc_close(&normal, 1000);
    subcheck_probe(&d);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- churn --------------------------------------------------------------------------------- */

Test(survival, thousand_connect_disconnect_cycles_leave_connections_at_baseline, .timeout = 120)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    /* One steady subscriber sees every publish made by the churning publishers. */
    struct wsc steady;
    cr_assert_eq(wsc_open(&steady, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&steady, "churn", NULL), WSC_OK);

    struct wire_buf pubf = {0};
    struct wire_str t = {"churn", 5};
    cr_assert_eq(pub_encode_publish(&pubf, 1, &t, 1, NULL, 0, NULL), 0);
    const char half_upgrade[] = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: web";
    int publishes = 0, orc;
    int64_t t0 = now_ms();
    for (int i = 0; i < 1000; i++) {
        struct wsc w;
        struct pubraw p;
        int fd;
        switch (i % 5) {
        case 0: /* full WebSocket session, polite close */
            orc = wsc_open(&w, d.ws_port, i % 2 ? SUB_PROTO_MSGPACK : NULL);
            cr_assert_eq(orc, WSC_OK, "cycle %d: wsc_open rc %d", i, orc);
            /* "churn" last: its hints (publishes of earlier cycles still completing) may follow
             * its "subscribed" at once, and wsc_subscribe wants nothing between replies. */
            cr_assert_eq(wsc_subscribe_v(&w, "other", "churn", NULL), WSC_OK, "cycle %d", i);
            wsc_close(&w, 1000);
            break;
        case 1: /* upgraded, then reset */
            cr_assert_eq(wsc_connect(&w, d.ws_port, NULL), WSC_OK, "cycle %d", i);
            if (i % 3 == 0) wsc_send_text(&w, "{\"type\":\"hello\",\"v\":1}");
            wsc_free(&w, 1);
            break;
        case 2: /* publisher: hello, one publish, close without waiting for the ack */
            cr_assert_eq(pubraw_connect(&p, d.pub_port, 1), PUBRAW_OK, "cycle %d", i);
            cr_assert_eq(pubraw_send(&p, pubf.data, pubf.len), PUBRAW_OK);
            publishes++;
            pubraw_close(&p, 0);
            break;
        case 3: /* TCP connect to the publisher port, reset at once */
            fd = tcp_connect(d.pub_port);
            cr_assert(fd >= 0, "cycle %d", i);
            abort_fd(fd);
            break;
        default: /* half an upgrade request, then FIN */
            fd = tcp_connect(d.ws_port);
            cr_assert(fd >= 0, "cycle %d", i);
            send_all(fd, half_upgrade, sizeof half_upgrade - 1);
            close(fd);
        }
    }
    cr_log_info("survival: 1000 connect/disconnect cycles in %lld ms", (long long)(now_ms() - t0));
    wire_buf_free(&pubf);

    cr_expect_eq(nudged_wait_stat(&d, "connections.ws", 1, 10000), 1,
                 "ws connections not back to baseline (1: the steady subscriber)");
    cr_expect_eq(nudged_wait_stat(&d, "connections.pub", 0, 10000), 0,
                 "pub connections not back to baseline");
    cr_expect_eq(nudged_wait_stat(&d, "subscriptions", 1, 5000), 1,
                 "subscriptions not back to baseline");
    /* A publish completes once the store has it on disk: the last ones may still be on their
     * way when the connections are already gone. */
    cr_expect_eq(nudged_wait_stat(&d, "publishes", publishes, 10000), publishes,
                 "publishes sent before close were not all completed");
    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st);
    cr_expect_geq(stats_int(st, "accepted.ws"), 401, "accepted.ws %lld",
                  (long long)stats_int(st, "accepted.ws"));
    cr_expect_geq(stats_int(st, "accepted.pub"), 200, "accepted.pub %lld",
                  (long long)stats_int(st, "accepted.pub"));
    cr_expect_eq(stats_int(st, "publishes"), publishes, "publishes %lld of %d sent before close",
                 (long long)stats_int(st, "publishes"), publishes);
    json_decref(st);

    /* The steady subscriber got every publish, in order. */
    for (int i = 1; i <= publishes; i++) {
        struct sub_msg m;
        int rc = wsc_recv_msg(&steady, &m, 5000);
        cr_assert_eq(rc, WSC_OK, "steady subscriber: hint %d of %d missing (%d)", i, publishes, rc);
        cr_assert(m.type == SUB_HINT && m.seq == (uint64_t)i, "steady: type %d seq %llu, want %d",
                  (int)m.type, (unsigned long long)m.seq, i);
        sub_msg_clear(&m);
    }
    wsc_close(&steady, 1000);
    subcheck_probe(&d);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- shutdown ------------------------------------------------------------------------------ */

Test(survival, sigterm_closes_subscribers_with_1012_and_exits_zero)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    enum { N = 6 };
    struct wsc w[N];
    for (int i = 0; i < N; i++) {
        const char *proto = i % 3 == 0 ? SUB_PROTO_MSGPACK : i % 3 == 1 ? SUB_PROTO_JSON : NULL;
        if (i == N - 1) {
            cr_assert_eq(wsc_connect(&w[i], d.ws_port, proto), WSC_OK); /* no hello yet */
            continue;
        }
        cr_assert_eq(wsc_open(&w[i], d.ws_port, proto), WSC_OK);
        cr_assert_eq(wsc_subscribe_v(&w[i], "bye", NULL), WSC_OK);
    }
    /* A subscriber that never reads, with hints queued for it. */
    struct wsc stuck;
    int fd = subcheck_small_rcvbuf_socket(d.ws_port);
    cr_assert_eq(wsc_handshake(&stuck, fd, d.ws_port, "/", NULL, NULL), WSC_OK);
    cr_assert_eq(wsc_hello(&stuck), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&stuck, "bye", NULL), WSC_OK);
    nudge_client_t *c = subcheck_publisher(&d, "survival");
    const char *t[1] = {"bye"};
    char pad[600];
    int pn = snprintf(pad, sizeof pad, "{\"pad\":\"");
    memset(pad + pn, '.', 500);
    memcpy(pad + pn + 500, "\"}", 3);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(nudge_publish(c, t, 1, pad, NULL), NUDGE_OK);

    int64_t t0 = now_ms();
    cr_assert_eq(nudged_signal(&d, SIGTERM), 0);
    /* Read while it shuts down, so the close handshakes can complete. */
    int code[N] = {0}, done = 0;
    int64_t deadline = now_ms() + 10000;
    while (done < N && now_ms() < deadline) {
        for (int i = 0; i < N; i++) {
            if (code[i]) continue;
            int rc = wsc_recv(&w[i], 20);
            if (rc == WSC_CLOSED) {
                code[i] = w[i].close_code;
                done++;
            } else if (rc == WSC_EOF || rc == WSC_EIO || rc == WSC_EPROTO) {
                code[i] = -1;
                done++;
            }
        }
    }
    int st = nudged_wait(&d, 15000);
    int64_t took = now_ms() - t0;
    cr_assert_eq(st, 0, "nudged exited with %d after SIGTERM (leak or crash?)", st);
    cr_expect_lt(took, 5000, "shutdown took %lld ms (--drain-window 0: every close at once)",
                 (long long)took);
    for (int i = 0; i < N; i++)
        cr_expect_eq(code[i], 1012, "subscriber %d: close code %d (-1 = no close frame)", i,
                     code[i]);
    /* The publisher's connection is gone too. */
    cr_expect_neq(nudge_ping(c), NUDGE_OK, "publisher still answered after shutdown");
    nudge_close(c);
    for (int i = 0; i < N; i++)
        wsc_free(&w[i], 0);
    wsc_free(&stuck, 0);
}
