/* Liveness (docs/guarantees.md §What is not guaranteed, §Coalescing): the broker pings a
 * subscriber that shows no sign of life and drops it when no answer comes, but a slow subscriber
 * that keeps reading its backlog is never dropped for being slow, even when the ping waits
 * behind that backlog for longer than the broker waits for an answer.
 *
 * Both tests run the broker with --ws-ping 1 (ping after 1 s without a sign of life, drop 1 s
 * later), so what takes 30 s + 10 s by default takes seconds here. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "nudge.h"
#include "subcheck.h"
#include "wsc.h"

#define BIG_N 48        /* big hints in the backlog */
#define BIG_LEN 40000   /* bytes of each one's data */
#define READ_GAP_MS 100 /* the slow reader takes one message per READ_GAP_MS */

static const char *const topic[1] = {"alive:t"};

/* --ws-sndbuf 0: the kernel's autotuning lets the megabytes of backlog these tests need wait in
 * the socket (with the default bound most of it would be merged at once). */
static void start(struct nudged *d)
{
    const char *args[] = {"--ws-ping", "1",           "--max-data", "65536", "--max-frame",
                          "131072",    "--ws-sndbuf", "0",          NULL};
    subcheck_start(d, args);
}

/* A JSON subscriber to topic with a 4 KiB receive buffer: the backlog stays on the broker's side
 * (in its socket send buffer, which the kernel lets grow to megabytes). */
static void open_small(struct wsc *w, const struct nudged *d)
{
    int fd = subcheck_small_rcvbuf_socket(d->ws_port);
    cr_assert_eq(wsc_handshake(w, fd, d->ws_port, "/", SUB_PROTO_JSON, NULL), WSC_OK);
    cr_assert_eq(wsc_hello(w), WSC_OK);
    cr_assert_eq(wsc_subscribe(w, topic, 1, NULL), WSC_OK);
}

/* Publish n hints to topic (big ones: BIG_LEN bytes of data each), each acked. */
static void publish(nudge_client_t *p, int n, int big)
{
    char *data = malloc(BIG_LEN + 3);
    cr_assert_not_null(data);
    if (big) {
        data[0] = '"';
        memset(data + 1, 'x', BIG_LEN);
        data[BIG_LEN + 1] = '"';
        data[BIG_LEN + 2] = '\0';
    } else {
        strcpy(data, "{\"small\":1}");
    }
    for (int i = 0; i < n; i++) {
        struct nudge_pub pb = {topic, 1, data, NULL, 0};
        cr_assert_eq(nudge_send(p, &pb, NULL), NUDGE_OK, "%s", nudge_last_error(p));
        uint64_t seq;
        size_t ns = 0;
        cr_assert_eq(nudge_recv_ack(p, NULL, &seq, 1, &ns), NUDGE_OK, "%s", nudge_last_error(p));
    }
    free(data);
}

/* Read w's hints of topic, one per READ_GAP_MS, until seq want: checks order and gaps. Returns
 * how long it took (ms). Any end of the connection fails the test. */
static int64_t read_slowly_until(struct wsc *w, uint64_t want, uint64_t last)
{
    int64_t t0 = now_ms(), deadline = t0 + 60000;
    while (last < want) {
        struct sub_msg m;
        int64_t left = deadline - now_ms();
        int rc = wsc_recv_msg(w, &m, left > 0 ? (int)left : 0);
        cr_assert_eq(rc, WSC_OK,
                     "the slow reader lost its connection after %lld ms at seq %llu of %llu (rc "
                     "%d, close code %u, %u pings seen): dropped for being slow",
                     (long long)(now_ms() - t0), (unsigned long long)last, (unsigned long long)want,
                     rc, w->close_code, w->pings_seen);
        cr_assert_eq(m.type, SUB_HINT, "got a %s", subcheck_type_name(m.type));
        cr_assert(m.seq > last && (m.count > 1 || m.seq == last + 1),
                  "hint seq %llu (n %u) after %llu", (unsigned long long)m.seq, m.count,
                  (unsigned long long)last);
        last = m.seq;
        sub_msg_clear(&m);
        sleep_ms(READ_GAP_MS);
    }
    return now_ms() - t0;
}

Test(alive, a_subscriber_reading_its_backlog_slower_than_the_ping_timeout_is_not_dropped,
     .timeout = 90)
{
    struct nudged d;
    start(&d);
    nudge_client_t *p = subcheck_publisher(&d, "alive");
    struct wsc w;
    open_small(&w, &d);

    publish(p, BIG_N, 1);
    int64_t took = read_slowly_until(&w, BIG_N, 0);
    /* The premise: the backlog outlived ping + drop (2 s) by far, so without proof of life
     * from the reading the broker would have dropped this subscriber. */
    cr_assert_gt(took, 3000, "the backlog drained in %lld ms: too fast to test anything",
                 (long long)took);

    /* Still subscribed and served; idle now, it answers the broker's pings (wsc does). */
    struct sub_msg m;
    publish(p, 1, 0);
    subcheck_expect_type(&w, SUB_HINT, &m, "a live hint after the backlog");
    cr_assert_eq(m.seq, BIG_N + 1);
    sub_msg_clear(&m);
    unsigned pings = w.pings_seen;
    subcheck_expect_silence(&w, 2500, "an idle subscriber");
    cr_assert_gt(w.pings_seen, pings, "the broker never pinged the idle subscriber");
    publish(p, 1, 0);
    cr_assert_eq(wsc_expect(&w, SUB_HINT, &m, 5000), WSC_OK,
                 "the idle subscriber that answers pings was dropped (close code %u)",
                 w.close_code);
    cr_assert_eq(m.seq, BIG_N + 2);
    sub_msg_clear(&m);
    json_t *st = nudged_stats(&d);
    cr_assert_eq(stats_int(st, "slow_closes"), 0);
    json_decref(st);

    wsc_close(&w, 500);
    nudge_close(p);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(alive, a_subscriber_that_stops_reading_is_still_dropped_after_the_ping_timeout, .timeout = 90)
{
    struct nudged d;
    start(&d);
    nudge_client_t *p = subcheck_publisher(&d, "alive");
    struct wsc w;
    open_small(&w, &d);
    cr_assert_eq(nudged_wait_stat(&d, "connections.ws", 1, 5000), 1);

    /* A backlog it never reads: nothing moves, so nothing proves it alive. */
    publish(p, BIG_N, 1);
    int64_t t0 = now_ms();
    int64_t n = nudged_wait_stat(&d, "connections.ws", 0, 15000);
    cr_assert_eq(n, 0,
                 "a subscriber that reads nothing was kept for %lld ms (ping 1 s, drop 1 s "
                 "later)",
                 (long long)(now_ms() - t0));

    wsc_free(&w, 1);
    nudge_close(p);
    cr_assert_eq(nudged_stop(&d), 0);
}
