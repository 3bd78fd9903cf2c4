/* Abuse limits (issue #14 point 8): what one hostile, anonymous client could make the broker
 * spend — memory for subscriptions, replay bytes, matching time, connections, admin slots — is
 * bounded, and each bound, when hit, gives its documented error or close code and a counter.
 * Every test starts the real nudged, measures with bounded loops, and checks that fresh clients
 * are still served. */
#include <criterion/criterion.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "listen.h"
#include "nudge.h"
#include "subcheck.h"
#include "wsc.h"

/* ---- exposed listeners --------------------------------------------------------------------- */

Test(listen_loopback, tells_loopback_addresses_from_the_rest)
{
    cr_assert_eq(listen_is_loopback("127.0.0.1:7401"), 1);
    cr_assert_eq(listen_is_loopback("127.3.4.5:0"), 1);
    cr_assert_eq(listen_is_loopback("[::1]:7401"), 1);
    cr_assert_eq(listen_is_loopback("::1"), 1);
    cr_assert_eq(listen_is_loopback("localhost:7401"), 1);
    cr_assert_eq(listen_is_loopback("[::ffff:127.0.0.1]:1"), 1);
    cr_assert_eq(listen_is_loopback("0.0.0.0:7401"), 0);
    cr_assert_eq(listen_is_loopback("[::]:7401"), 0);
    cr_assert_eq(listen_is_loopback("10.1.2.3:7401"), 0);
    cr_assert_eq(listen_is_loopback("[2001:db8::1]:7401"), 0);
    cr_assert_eq(listen_is_loopback("garbage"), -1);
    cr_assert_eq(listen_is_loopback(""), -1);
}

Test(listen_loopback, a_listener_on_every_address_is_announced_loudly_at_start, .timeout = 30)
{
    struct nudged d = {0};
    /* Off loopback, the admin port needs its token (docs/security.md). */
    char tok[] = "/tmp/nudge-admin-token-XXXXXX";
    int fd = mkstemp(tok);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "admin-token-0123456789", 22), 22);
    close(fd);
    const char *args[] = {"--admin", "0.0.0.0:0", "--log-level", "error", "--admin-token-file",
                          tok,       NULL};
    int rc = nudged_start(&d, args);
    unlink(tok);
    cr_assert_eq(rc, 0);
    cr_assert(nudged_wait_log(&d, "NOT loopback", 2000), "no warning for an admin port on 0.0.0.0");
    cr_assert_eq(nudged_log_count(&d, "NOT loopback", NULL), 1, "one line per exposed listener");
    cr_assert_eq(nudged_stop(&d), 0);

    struct nudged q = {0};
    cr_assert_eq(nudged_start(&q, NULL), 0);
    sleep_ms(200);
    cr_assert_eq(nudged_log_count(&q, "NOT loopback", NULL), 0, "loopback listeners are quiet");
    cr_assert_eq(nudged_stop(&q), 0);
}

/* ---- subscription memory ------------------------------------------------------------------- */

/* A pattern of nseg one-byte segments ending in "*", its first segment unique to i. */
static void long_pattern(char *buf, size_t cap, unsigned i, unsigned nseg)
{
    size_t n = (size_t)snprintf(buf, cap, "%x", i);
    for (unsigned k = 1; k + 1 < nseg && n + 2 < cap; k++)
        n += (size_t)snprintf(buf + n, cap - n, ":a");
    snprintf(buf + n, cap - n, ":*");
}

Test(sub_budget, long_patterns_hit_the_memory_budget_with_over_budget_and_the_connection_stays,
     .timeout = 60)
{
    struct nudged d = {0};
    /* the attack of #14 (127 segments): the budget alone, past the pattern shape limit; one
     * sub message per pattern: the rates are not what this test is about */
    const char *args[] = {
        "--max-pattern-segments", "0", "--msg-rate", "0", "--sub-rate", "0", NULL};
    cr_assert_eq(nudged_start(&d, args), 0);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, NULL), WSC_OK);
    /* The attack of #14: 1,024 distinct patterns of 127 segments (254 bytes) cost 21.8 MiB. */
    char pat[300];
    unsigned ok = 0, refused = 0;
    for (unsigned i = 0; i < 1024; i++) {
        long_pattern(pat, sizeof pat, i, 127);
        const char *t[] = {pat};
        int rc = wsc_subscribe(&w, t, 1, NULL);
        if (rc == WSC_OK) {
            ok++;
            continue;
        }
        cr_assert_eq(rc, WSC_UNEXPECTED, "pattern %u: %d", i, rc);
        cr_assert_eq(w.last_error, 20, "over_budget expected, got code %d", w.last_error);
        refused++;
    }
    cr_assert_gt(ok, 0);
    cr_assert_lt(ok, 100, "%u patterns of 127 segments fit in 1 MiB", ok);
    cr_assert_eq(ok + refused, 1024);
    /* The connection stays and a plain topic still fits (exact topics are cheap). */
    cr_assert_eq(wsc_subscribe_v(&w, "small:topic", NULL), WSC_OK);
    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st);
    int64_t bytes = stats_int(st, "abuse.sub_bytes");
    cr_assert_gt(bytes, 0);
    cr_assert_leq(bytes, 1 << 20, "charged %lld bytes, over the 1 MiB default", (long long)bytes);
    cr_assert_eq(stats_int(st, "abuse.refused.sub_bytes"), refused);
    json_decref(st);
    wsc_close(&w, 2000);
    cr_assert_eq(nudged_wait_stat(&d, "abuse.sub_bytes", 0, 5000), 0, "charge not given back");
    char why[256];
    cr_assert_eq(nudged_probe(&d, 5000, why, sizeof why), 0, "%s", why);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(sub_budget, max_subs_plain_topics_fit_the_default_budget, .timeout = 60)
{
    struct nudged d = {0};
    cr_assert_eq(nudged_start(&d, NULL), 0);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, NULL), WSC_OK);
    /* 1,024 (--max-subs) topics of 200 bytes, 64 per sub message */
    static char names[64][256];
    const char *t[64];
    for (unsigned b = 0; b < 16; b++) {
        for (unsigned k = 0; k < 64; k++) {
            int n = snprintf(names[k], sizeof names[k], "tenant:%04u:", b * 64 + k);
            memset(names[k] + n, 'x', 200 - (size_t)n);
            names[k][200] = '\0';
            t[k] = names[k];
        }
        cr_assert_eq(wsc_subscribe(&w, t, 64, NULL), WSC_OK, "block %u: code %d", b, w.last_error);
    }
    /* and realistic patterns alongside: a 16-segment one and short ones are not refused */
    cr_assert_eq(nudged_wait_stat(&d, "subscriptions", 1024, 5000), 1024);
    wsc_close(&w, 2000);
    struct wsc p;
    cr_assert_eq(wsc_open(&p, d.ws_port, NULL), WSC_OK);
    cr_assert_eq(
        wsc_subscribe_v(&p, "project:*", "org:3:**", "a:b:c:d:e:f:g:h:i:j:k:l:m:n:o:*", NULL),
        WSC_OK);
    wsc_close(&p, 2000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(sub_budget, the_budget_is_a_flag_zero_lifts_it_and_freed_memory_is_trimmed, .timeout = 60)
{
    struct nudged d = {0};
    const char *args[] = {"--max-sub-bytes", "4096", NULL};
    const char *off[] = {"--max-sub-bytes",
                         "0",
                         "--max-pattern-segments",
                         "0",
                         "--msg-rate",
                         "0",
                         "--sub-rate",
                         "0",
                         NULL};
    cr_assert_eq(nudged_start(&d, args), 0);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, NULL), WSC_OK);
    char pat[300];
    long_pattern(pat, sizeof pat, 1, 16);
    const char *t[] = {pat};
    cr_assert_eq(wsc_subscribe(&w, t, 1, NULL), WSC_OK, "a 16-segment pattern fits 4 KiB");
    long_pattern(pat, sizeof pat, 2, 16);
    cr_assert_eq(wsc_subscribe(&w, t, 1, NULL), WSC_UNEXPECTED);
    cr_assert_eq(w.last_error, 20);
    wsc_close(&w, 2000);
    cr_assert_eq(nudged_stop(&d), 0);

    cr_assert_eq(nudged_start(&d, off), 0);
    cr_assert_eq(wsc_open(&w, d.ws_port, NULL), WSC_OK);
    for (unsigned i = 0; i < 200; i++) {
        long_pattern(pat, sizeof pat, i, 127);
        cr_assert_eq(wsc_subscribe(&w, t, 1, NULL), WSC_OK, "pattern %u", i);
    }
    cr_assert_gt(nudged_wait_stat(&d, "abuse.sub_bytes", -2, 100), 4 << 20);
    /* What they held goes back to the OS once they are gone (glibc kept it: #14). */
    wsc_close(&w, 2000);
    cr_assert_eq(nudged_wait_stat(&d, "abuse.malloc_trims", 1, 5000), 1);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- replay budget ------------------------------------------------------------------------- */

/* Receive whatever is there (timeout_ms for the first message), counting errors with code. */
static void drain_count(struct wsc *w, int timeout_ms, int code, unsigned *n)
{
    struct sub_msg m;
    while (wsc_recv_msg(w, &m, timeout_ms) == WSC_OK) {
        if (m.type == SUB_ERROR && m.code == code) (*n)++;
        sub_msg_clear(&m);
        timeout_ms = 0;
    }
}

Test(replay_budget, a_stream_of_resumes_cannot_make_the_broker_write_more_than_its_budget,
     .timeout = 60)
{
    struct nudged d = {0};
    const char *args[] = {"--msg-rate", "0", "--sub-rate", "0", NULL};
    cr_assert_eq(nudged_start(&d, args), 0);
    nudge_client_t *pub = subcheck_publisher(&d, "replayer");
    char data[1024];
    int n = snprintf(data, sizeof data, "{\"pad\":\"");
    memset(data + n, 'x', 900);
    snprintf(data + n + 900, sizeof data - (size_t)n - 900, "\"}");
    const char *topic[] = {"r:t"};
    for (int i = 0; i < 64; i++)
        cr_assert_eq(nudge_publish(pub, topic, 1, data, NULL), 0);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, NULL), WSC_OK);
    json_t *st = nudged_stats(&d);
    int64_t out0 = stats_int(st, "bytes_out");
    json_decref(st);

    /* #14's attack: sub with resume from 0, replay all, then unsub, over and over; each round
     * trip of ~150 bytes asks for 64 hints of ~950 bytes (60 KB). */
    int64_t t0 = now_ms();
    unsigned refused = 0;
    const int64_t pos[] = {0};
    for (uint64_t i = 1; i <= 200; i++) {
        subcheck_send_sub_mode(&w, i, topic, 1, w.epoch, pos, 1);
        char unsub[96];
        snprintf(unsub, sizeof unsub, "{\"type\":\"unsub\",\"id\":%llu,\"topics\":[\"r:t\"]}",
                 (unsigned long long)i);
        cr_assert_eq(wsc_send_text(&w, unsub), 0);
        drain_count(&w, 0, 20, &refused);
    }
    int64_t secs_x1000 = now_ms() - t0;
    drain_count(&w, 1000, 20, &refused);
    st = nudged_stats(&d);
    int64_t wrote = stats_int(st, "bytes_out") - out0;
    int64_t hits = stats_int(st, "abuse.refused.replay");
    json_decref(st);
    /* The bound (docs/operations.md §Abuse limits): one bucket (256 KiB), one replay's overdraft
     * (64 hints), the refill over the time taken, and the control replies (~100 B each). */
    int64_t bound = 262144 + 64 * 1000 + 262144 * (secs_x1000 + 1000) / 1000 + 400 * 120;
    cr_assert_leq(wrote, bound,
                  "the broker wrote %lld bytes for 200 resumes in %lld ms (bound %lld)",
                  (long long)wrote, (long long)secs_x1000, (long long)bound);
    cr_assert_gt(refused, 0, "no over_budget error");
    cr_assert_geq(hits, refused); /* some may still be on their way */
    /* The connection stays and, once the bucket refilled, resumes again. */
    sleep_ms(1100);
    subcheck_send_sub_mode(&w, 999, topic, 1, w.epoch, pos, 1);
    struct sub_msg m;
    cr_assert_eq(wsc_expect(&w, SUB_SUBSCRIBED, &m, 5000), 0);
    sub_msg_clear(&m);
    cr_assert_eq(wsc_expect(&w, SUB_HINT, &m, 5000), 0);
    sub_msg_clear(&m);
    wsc_close(&w, 2000);
    nudge_close(pub);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- pattern shape ------------------------------------------------------------------------- */

Test(pattern_shape, patterns_past_the_segment_or_star_bound_are_bad_topic_and_counted,
     .timeout = 30)
{
    struct nudged d = {0};
    cr_assert_eq(nudged_start(&d, NULL), 0);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, NULL), WSC_OK);
    /* within: 16 segments, 3 stars, and a "**" tail that adds no walk */
    cr_assert_eq(wsc_subscribe_v(&w, "a:*:b:*:c:*:d:e:f:g:h:i:j:k:l:m", "a:*:*:*:**", NULL),
                 WSC_OK);
    const char *four[] = {"*:*:*:*"};
    cr_assert_eq(wsc_subscribe(&w, four, 1, NULL), WSC_UNEXPECTED);
    cr_assert_eq(w.last_error, 5, "code %d", w.last_error);
    const char *seventeen[] = {"a:b:c:d:e:f:g:h:i:j:k:l:m:n:o:p:*"};
    cr_assert_eq(wsc_subscribe(&w, seventeen, 1, NULL), WSC_UNEXPECTED);
    cr_assert_eq(w.last_error, 5, "code %d", w.last_error);
    /* a plain topic of many segments is not a pattern: not bounded here */
    cr_assert_eq(wsc_subscribe_v(&w, "a:b:c:d:e:f:g:h:i:j:k:l:m:n:o:p:q:r", NULL), WSC_OK);
    cr_assert_eq(nudged_wait_stat(&d, "abuse.refused.pattern", 2, 5000), 2);
    wsc_close(&w, 2000);
    cr_assert_eq(nudged_stop(&d), 0);

    const char *off[] = {"--max-pattern-segments", "0", "--max-pattern-stars", "0", NULL};
    cr_assert_eq(nudged_start(&d, off), 0);
    cr_assert_eq(wsc_open(&w, d.ws_port, NULL), WSC_OK);
    cr_assert_eq(wsc_subscribe(&w, four, 1, NULL), WSC_OK);
    cr_assert_eq(wsc_subscribe(&w, seventeen, 1, NULL), WSC_OK);
    wsc_close(&w, 2000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- connections per address --------------------------------------------------------------- */

Test(ip_conns, connections_past_the_per_address_limit_are_refused_and_slots_come_back,
     .timeout = 60)
{
    struct nudged d = {0};
    const char *args[] = {"--max-conns-per-ip", "4", NULL};
    cr_assert_eq(nudged_start(&d, args), 0);
    struct wsc w[4];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(wsc_open(&w[i], d.ws_port, NULL), WSC_OK, "conn %d", i);
    /* a socket still in its handshake holds a slot too */
    int raw = tcp_connect(d.ws_port);
    cr_assert_geq(raw, 0);
    sleep_ms(100);
    struct wsc x;
    int status = 0;
    cr_assert_eq(wsc_connect_ex(&x, d.ws_port, "/", NULL, &status), WSC_EIO);
    cr_assert_eq(status, 429, "HTTP status %d", status);
    /* publishers count in the same limit: refused at once (closed) */
    struct pubraw pr;
    int fd = tcp_connect(d.pub_port);
    cr_assert_geq(fd, 0);
    cr_assert_eq(wait_closed(fd, 3000), 1, "a publisher past the limit stays connected");
    close(fd);
    cr_assert_eq(nudged_wait_stat(&d, "abuse.refused.ip_conns", 2, 5000), 2);
    /* a slot comes back when a connection goes, handshake or not */
    close(raw);
    int64_t end = now_ms() + 5000, rc = -1;
    while (now_ms() < end && (rc = wsc_open(&w[3], d.ws_port, NULL)) != WSC_OK)
        sleep_ms(50);
    cr_assert_eq(rc, WSC_OK, "the closed socket's slot did not come back");
    wsc_close(&w[0], 2000);
    end = now_ms() + 5000;
    while (now_ms() < end && (rc = pubraw_connect(&pr, d.pub_port, 1)) != PUBRAW_OK)
        sleep_ms(50);
    cr_assert_eq(rc, PUBRAW_OK, "the closed WebSocket's slot did not come back");
    pubraw_close(&pr, 0);
    for (int i = 1; i < 4; i++)
        wsc_close(&w[i], 2000);
    char why[256];
    cr_assert_eq(nudged_probe(&d, 5000, why, sizeof why), 0, "%s", why);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- rates --------------------------------------------------------------------------------- */

/* Send n pings; count the pongs and the rate_limited errors that come back, until the connection
 * closes (returns its close code) or nothing more arrives (returns 0). */
static int ping_flood(struct wsc *w, unsigned n, unsigned *pongs, unsigned *limited)
{
    for (unsigned i = 0; i < n; i++)
        if (wsc_send_text(w, "{\"type\":\"ping\"}") != 0) break;
    struct sub_msg m;
    int rc;
    while ((rc = wsc_recv_msg(w, &m, 500)) == WSC_OK) {
        if (m.type == SUB_PONG) (*pongs)++;
        if (m.type == SUB_ERROR && m.code == 19) (*limited)++;
        sub_msg_clear(&m);
    }
    return rc == WSC_CLOSED ? w->close_code : 0;
}

Test(rates, messages_past_the_rate_are_dropped_with_rate_limited_then_the_connection_is_closed,
     .timeout = 60)
{
    struct nudged d = {0};
    const char *args[] = {"--msg-rate", "10", NULL};
    cr_assert_eq(nudged_start(&d, args), 0);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, NULL), WSC_OK); /* hello: 1 message of the 20 */
    unsigned pongs = 0, limited = 0;
    cr_assert_eq(ping_flood(&w, 25, &pongs, &limited), 0, "closed after 25 messages");
    cr_assert_geq(pongs, 18, "%u pongs", pongs);
    cr_assert_leq(pongs, 21, "%u pongs: the burst is 2 x 10", pongs);
    cr_assert_geq(limited, 4, "%u rate_limited", limited);
    /* keeping on: closed with 4008 once the debt reaches a bucket */
    int code = ping_flood(&w, 100, &pongs, &limited);
    cr_assert_eq(code, 4008, "close code %d", code);
    cr_assert(nudged_wait_log(&d, "warn: rate limit closed conn=", 2000),
              "the close is not logged");
    json_t *st = nudged_stats(&d);
    cr_assert_geq(stats_int(st, "abuse.refused.msg_rate"), limited);
    cr_assert_eq(stats_int(st, "abuse.refused.rate_close"), 1);
    json_decref(st);
    wsc_free(&w, 0);
    /* a polite client is untouched */
    struct wsc p;
    cr_assert_eq(wsc_open(&p, d.ws_port, NULL), WSC_OK);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(wsc_subscribe_v(&p, "calm", NULL), WSC_OK);
    wsc_close(&p, 2000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(rates, subscriptions_past_the_rate_get_rate_limited_then_the_connection_is_closed,
     .timeout = 60)
{
    struct nudged d = {0};
    const char *args[] = {"--sub-rate", "2", "--max-subs", "8", "--msg-rate", "0", NULL};
    cr_assert_eq(nudged_start(&d, args), 0);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, NULL), WSC_OK);
    const char *t[] = {"churn"};
    /* a burst of --max-subs: a reconnect resubscribes everything at once */
    for (int i = 0; i < 8; i++) {
        cr_assert_eq(wsc_subscribe(&w, t, 1, NULL), WSC_OK, "sub %d", i);
        cr_assert_eq(wsc_unsubscribe(&w, t, 1), WSC_OK, "unsub %d", i);
    }
    cr_assert_eq(wsc_subscribe(&w, t, 1, NULL), WSC_UNEXPECTED);
    cr_assert_eq(w.last_error, 19, "code %d", w.last_error);
    /* churning on: closed with 4008 */
    int code = 0;
    for (uint64_t i = 100; i < 200 && !code; i++) {
        wsc_send_sub(&w, i, t, 1);
        struct sub_msg m;
        int rc;
        while ((rc = wsc_recv_msg(&w, &m, 200)) == WSC_OK)
            sub_msg_clear(&m);
        if (rc == WSC_CLOSED) code = w.close_code;
    }
    cr_assert_eq(code, 4008, "close code %d", code);
    cr_assert_geq(nudged_wait_stat(&d, "abuse.refused.sub_rate", 9, 5000), 9);
    wsc_free(&w, 0);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- Origin allow-list --------------------------------------------------------------------- */

/* The HTTP status a WebSocket upgrade with this Origin header (NULL: none) gets. */
static int upgrade_status(uint16_t port, const char *origin)
{
    char req[512], hdr[300] = "";
    if (origin) snprintf(hdr, sizeof hdr, "Origin: %s\r\n", origin);
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n%s\r\n",
                     hdr);
    size_t len = 0;
    char *resp = http_raw(port, req, (size_t)n, &len, 1000);
    int status = -1;
    if (resp && len > 12 && !strncmp(resp, "HTTP/1.1 ", 9)) status = atoi(resp + 9);
    free(resp);
    return status;
}

Test(origin, browsers_from_an_origin_not_on_the_allow_list_get_403, .timeout = 30)
{
    struct nudged d = {0};
    const char *args[] = {"--allow-origin", "https://app.example.com", "--allow-origin",
                          "http://localhost:3000", NULL};
    cr_assert_eq(nudged_start(&d, args), 0);
    cr_assert_eq(upgrade_status(d.ws_port, "https://app.example.com"), 101);
    cr_assert_eq(upgrade_status(d.ws_port, "HTTPS://APP.example.com"), 101);
    cr_assert_eq(upgrade_status(d.ws_port, "http://localhost:3000"), 101);
    cr_assert_eq(upgrade_status(d.ws_port, "https://evil.example"), 403);
    cr_assert_eq(upgrade_status(d.ws_port, "https://app.example.com.evil.net"), 403);
    cr_assert_eq(upgrade_status(d.ws_port, "null"), 403);
    cr_assert_eq(upgrade_status(d.ws_port, NULL), 101, "no Origin: not a browser");
    cr_assert_eq(nudged_wait_stat(&d, "abuse.refused.origin", 3, 5000), 3);
    char why[256];
    cr_assert_eq(nudged_probe(&d, 5000, why, sizeof why), 0, "%s", why);
    cr_assert_eq(nudged_stop(&d), 0);

    cr_assert_eq(nudged_start(&d, NULL), 0);
    cr_assert_eq(upgrade_status(d.ws_port, "https://evil.example"), 101, "no list: any origin");
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- admin port ---------------------------------------------------------------------------- */

Test(admin_slots, stats_answers_while_64_idle_connections_are_open, .timeout = 60)
{
    struct nudged d = {0};
    cr_assert_eq(nudged_start(&d, NULL), 0);
    int idle[64];
    for (int i = 0; i < 64; i++) {
        idle[i] = tcp_connect(d.admin_port);
        cr_assert_geq(idle[i], 0, "idle %d", i);
    }
    sleep_ms(200); /* all accepted */
    for (int k = 0; k < 3; k++) {
        int64_t t0 = now_ms();
        int status = 0;
        char *body = http_get(d.admin_port, "/stats", &status);
        cr_assert_not_null(body, "/stats unanswered with 64 idle admin connections");
        cr_assert_eq(status, 200);
        cr_assert_lt(now_ms() - t0, 1000, "/stats took %lld ms", (long long)(now_ms() - t0));
        free(body);
    }
    json_t *st = nudged_stats(&d);
    cr_assert_geq(stats_int(st, "abuse.refused.admin"), 48);
    cr_assert_leq(stats_int(st, "connections.admin"), 16);
    json_decref(st);
    /* idle ones are dropped by the 2 s head timeout anyway */
    int closed = 0;
    for (int i = 0; i < 64; i++) {
        closed += wait_closed(idle[i], 4000);
        close(idle[i]);
    }
    cr_assert_eq(closed, 64);
    cr_assert_eq(nudged_stop(&d), 0);
}
