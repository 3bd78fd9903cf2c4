/* Hostile and careless peers that cost the broker descriptors or attention: running out of
 * descriptors (every listener pauses and says so once, no spinning), requests on the WebSocket
 * port that are not upgrades (CONNECT, unknown methods, silence, half a head), publishers that
 * never say hello or go quiet, and the log line of a slow-consumer close. Each test ends with the
 * broker serving fresh clients and exiting 0 under ASan. */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "nudge.h"
#include "pub.h"
#include "subcheck.h"
#include "wsc.h"

#define FILLERS_MAX 256

/* Read what is there within timeout_ms (the bytes are dropped). 1 when the peer closed, 0 when
 * it is still open; *got is set when any byte arrived. */
static int closed_within(int fd, int timeout_ms, int *got)
{
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        int64_t left = end - now_ms();
        if (left < 0) return 0;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0) continue;
        char buf[512];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return 1;
        if (got) *got = 1;
    }
}

/* ---- out of descriptors -------------------------------------------------------------------- */

Test(descriptors, running_out_pauses_every_listener_without_spinning_and_resumes, .timeout = 90)
{
    /* 64 descriptors: a few dozen sockets exhaust it. The silent fillers on the WebSocket port
     * would be closed by the handshake timeout: set it longer than the test's measuring. */
    struct nudged d;
    const char *args[] = {"--hello-timeout", "30000", NULL};
    cr_assert_eq(nudged_start_nofile(&d, args, 64), 0);

    /* Clients that were there before: they must keep being served. */
    struct wsc sub;
    cr_assert_eq(wsc_open(&sub, d.ws_port, NULL), WSC_OK);
    cr_assert_eq(wsc_subscribe_v(&sub, "fd/t", NULL), WSC_OK);
    nudge_client_t *pub = subcheck_publisher(&d, "before");

    /* Fill the broker's descriptor table with idle sockets on the WebSocket port; the extra ones
     * wait in the listen backlog. */
    int fill[FILLERS_MAX], nfill = 0;
    for (; nfill < 80; nfill++) {
        fill[nfill] = tcp_connect(d.ws_port);
        cr_assert_geq(fill[nfill], 0, "filler %d", nfill);
    }
    cr_assert(nudged_wait_log(&d, "out of file descriptors", 5000),
              "no 'out of file descriptors' warning after 80 idle WebSocket sockets");
    /* The publisher and admin listeners run into the same wall. */
    struct pubraw pr;
    cr_assert_eq(pubraw_connect(&pr, d.pub_port, 0), PUBRAW_OK);
    struct wire_buf hello = {0};
    cr_assert_eq(pub_encode_hello(&hello, WIRE_VERSION, "late"), 0);
    cr_assert_eq(pubraw_send(&pr, hello.data, hello.len), PUBRAW_OK);
    wire_buf_free(&hello);
    int admfd = tcp_connect(d.admin_port);
    cr_assert_geq(admfd, 0);
    static const char get[] = "GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    cr_assert_eq(send_all(admfd, get, sizeof get - 1), 0);
    sleep_ms(300);

    /* Paused, not spinning: CPU and log stay flat while the table is full. */
    size_t bytes0, bytes1;
    nudged_log_count(&d, "", &bytes0);
    int64_t cpu0 = nudged_cpu_ms(&d), t0 = now_ms();
    sleep_ms(1500);
    int64_t cpu1 = nudged_cpu_ms(&d), t1 = now_ms();
    nudged_log_count(&d, "", &bytes1);
    cr_assert(cpu0 >= 0 && cpu1 >= 0);
    cr_log_info("descriptors: %lld ms CPU in %lld ms while out of descriptors; log grew %zu bytes",
                (long long)(cpu1 - cpu0), (long long)(t1 - t0), bytes1 - bytes0);
    cr_expect_lt(cpu1 - cpu0, 200, "broker used %lld ms CPU in %lld ms while out of descriptors",
                 (long long)(cpu1 - cpu0), (long long)(t1 - t0));
    cr_expect_lt(bytes1 - bytes0, 1024, "stderr grew %zu bytes in 1.5 s", bytes1 - bytes0);
    static const char *const names[] = {"ws: out of file descriptors",
                                        "pub: out of file descriptors",
                                        "admin: out of file descriptors"};
    for (int i = 0; i < 3; i++)
        cr_expect_eq(nudged_log_count(&d, names[i], NULL), 1, "want one '%s' line, got %zu",
                     names[i], nudged_log_count(&d, names[i], NULL));

    /* Existing clients are still served. */
    const char *t[] = {"fd/t"};
    cr_expect_eq(nudge_publish(pub, t, 1, NULL, NULL), NUDGE_OK, "%s", nudge_last_error(pub));
    struct sub_msg m;
    cr_assert_eq(wsc_expect(&sub, SUB_HINT, &m, 5000), WSC_OK, "existing subscriber got no hint");
    cr_expect_eq(m.seq, 1);
    sub_msg_clear(&m);

    /* Free the descriptors: what waited in the backlogs is served, and fresh clients get in. */
    for (int i = 0; i < nfill; i++)
        close(fill[i]);
    struct pub_msg pm;
    int rc = pubraw_recv(&pr, &pm, 5000);
    cr_expect_eq(rc, PUBRAW_OK,
                 "a publisher that connected while the broker was full got no welcome (%d)", rc);
    if (rc == PUBRAW_OK) {
        cr_expect_eq(pm.type, PUB_WELCOME);
        pub_msg_clear(&pm);
    }
    pubraw_close(&pr, 0);
    char resp[256] = "";
    size_t rl = 0;
    int64_t end = now_ms() + 5000;
    while (rl < sizeof resp - 1 && now_ms() < end) {
        struct pollfd p = {.fd = admfd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t n = recv(admfd, resp + rl, sizeof resp - 1 - rl, 0);
        if (n <= 0) break;
        rl += (size_t)n;
    }
    resp[rl] = '\0';
    cr_expect(strncmp(resp, "HTTP/1.1 200", 12) == 0,
              "an admin request made while the broker was full: '%.40s'", resp);
    close(admfd);
    cr_expect(nudged_wait_log(&d, "accepting again", 5000), "no 'accepting again' line");
    subcheck_probe(&d);
    json_t *st = nudged_stats(&d);
    cr_expect_not_null(st, "/stats after the descriptors came back");
    json_decref(st);

    nudge_close(pub);
    wsc_close(&sub, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- requests on the WebSocket port that are not upgrades ---------------------------------- */

Test(handshake, every_non_upgrade_request_is_answered_or_closed_within_the_hello_timeout,
     .timeout = 60)
{
    /* --hello-timeout 500: lws's own 10 s handshake timeout does not cover CONNECT (lws 4.1.6
     * makes it a raw socket), so only a deadline of ours closes all of these in time. */
    struct nudged d;
    const char *args[] = {"--hello-timeout", "500", NULL};
    subcheck_start(&d, args);
    static const struct {
        const char *what;
        const char *bytes;
        size_t len;
        int answered; /* 1: must get our 426 first; 2: any HTTP answer (lws's own 403) */
    } cases[] = {
        {"CONNECT", "CONNECT x:1 HTTP/1.1\r\nHost: x:1\r\n\r\n", 0, 1},
        {"GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0, 1},
        {"POST", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 0, 1},
        {"OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 0, 2},
        {"unknown method", "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 0, 0},
        {"not HTTP", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11, 0},
        {"half a head", "GET / HTTP/1.1\r\nHost: x\r\nUpgra", 0, 0},
        {"silence", "", 0, 0},
    };
    enum { N = sizeof cases / sizeof cases[0] };
    int fds[N];
    int64_t t0 = now_ms();
    for (int i = 0; i < N; i++) {
        fds[i] = tcp_connect(d.ws_port);
        cr_assert_geq(fds[i], 0);
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].bytes);
        if (len) cr_assert_eq(send_all(fds[i], cases[i].bytes, len), 0);
    }
    for (int i = 0; i < N; i++) {
        char resp[512];
        size_t rl = 0;
        int closed = 0;
        int64_t end = t0 + 3000;
        while (!closed && now_ms() < end) {
            struct pollfd p = {.fd = fds[i], .events = POLLIN};
            if (poll(&p, 1, 50) <= 0) continue;
            ssize_t n = recv(fds[i], resp + rl, sizeof resp - 1 - rl, 0);
            if (n <= 0)
                closed = 1;
            else
                rl += (size_t)n;
        }
        resp[rl] = '\0';
        cr_expect(closed, "%s: still open %lld ms after connecting (--hello-timeout 500)",
                  cases[i].what, (long long)(now_ms() - t0));
        const char *want = cases[i].answered == 1 ? "HTTP/1.1 426" : "HTTP/1.";
        if (cases[i].answered)
            cr_expect(strncmp(resp, want, strlen(want)) == 0, "%s: answer '%.40s'", cases[i].what,
                      resp);
        close(fds[i]);
    }
    cr_expect_eq(nudged_wait_stat(&d, "connections.ws_pending", 0, 3000), 0);
    subcheck_probe(&d);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(handshake, sockets_still_in_their_handshake_count_against_max_conns, .timeout = 60)
{
    struct nudged d;
    const char *args[] = {"--max-conns", "3", "--hello-timeout", "1500", NULL};
    subcheck_start(&d, args);
    int silent[3];
    for (int i = 0; i < 3; i++)
        cr_assert_geq(silent[i] = tcp_connect(d.ws_port), 0);
    cr_expect_eq(nudged_wait_stat(&d, "connections.ws_pending", 3, 3000), 3);
    /* Full: a fourth socket is closed at once, a real WebSocket client is refused. */
    int extra = tcp_connect(d.ws_port);
    cr_assert_geq(extra, 0);
    cr_expect(closed_within(extra, 1000, NULL), "a 4th socket was kept past --max-conns 3");
    close(extra);
    struct wsc w;
    cr_expect_neq(wsc_connect(&w, d.ws_port, NULL), WSC_OK, "upgrade accepted past --max-conns");
    /* The silent ones go at the deadline, then there is room again. */
    for (int i = 0; i < 3; i++) {
        cr_expect(closed_within(silent[i], 5000, NULL), "silent socket %d kept", i);
        close(silent[i]);
    }
    cr_expect_eq(nudged_wait_stat(&d, "connections.ws_pending", 0, 3000), 0);
    cr_assert_eq(wsc_open(&w, d.ws_port, NULL), WSC_OK, "no room after the deadline");
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(handshake, a_websocket_that_never_says_hello_is_closed_with_1008, .timeout = 30)
{
    struct nudged d;
    /* --ws-ping 3: the sweep that checks the deadline runs every 0.5 s */
    const char *args[] = {"--hello-timeout", "600", "--ws-ping", "3", NULL};
    subcheck_start(&d, args);
    struct wsc quiet, polite;
    cr_assert_eq(wsc_connect(&quiet, d.ws_port, NULL), WSC_OK);
    cr_assert_eq(wsc_open(&polite, d.ws_port, NULL), WSC_OK);
    int64_t t0 = now_ms();
    struct sub_msg m;
    int rc = wsc_recv_msg(&quiet, &m, 5000);
    cr_assert_eq(rc, WSC_CLOSED, "no hello, still open after 5 s (%d)", rc);
    cr_expect_eq(quiet.close_code, 1008);
    cr_expect_geq(now_ms() - t0, 400, "closed before --hello-timeout");
    wsc_free(&quiet, 0);
    cr_expect_eq(nudged_wait_stat(&d, "abuse.refused.deadline", 1, 3000), 1);
    /* The one that said hello stays. */
    cr_assert_eq(wsc_subscribe_v(&polite, "still:here", NULL), WSC_OK);
    wsc_close(&polite, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- publisher deadlines ------------------------------------------------------------------- */

static const char *const pub_args[] = {"--hello-timeout", "300", "--pub-idle", "600", NULL};

Test(publisher_deadlines, a_publisher_that_never_says_hello_is_dropped, .timeout = 30)
{
    struct nudged d;
    subcheck_start(&d, pub_args);
    struct pubraw p;
    cr_assert_eq(pubraw_connect(&p, d.pub_port, 0), PUBRAW_OK);
    int64_t t0 = now_ms();
    cr_expect(closed_within(p.fd, 3000, NULL), "no hello, still connected after 3 s");
    int64_t took = now_ms() - t0;
    cr_expect_geq(took, 250, "dropped after %lld ms, before --hello-timeout 300", (long long)took);
    pubraw_close(&p, 0);
    cr_expect_eq(nudged_wait_stat(&d, "connections.pub", 0, 3000), 0);
    cr_expect_eq(nudged_wait_stat(&d, "abuse.refused.deadline", 1, 3000), 1);
    subcheck_probe(&d);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(publisher_deadlines, a_publisher_silent_or_trickling_in_the_middle_of_a_frame_is_dropped,
     .timeout = 30)
{
    struct nudged d;
    subcheck_start(&d, pub_args);
    struct pubraw silent, trickle;
    cr_assert_eq(pubraw_connect(&silent, d.pub_port, 1), PUBRAW_OK);
    cr_assert_eq(pubraw_connect(&trickle, d.pub_port, 1), PUBRAW_OK);
    /* A frame header announcing 1000 bytes, then 3 of them. */
    static const uint8_t head[] = {0, 0, 0x03, 0xe8, 0x84, 0xa4, 't'};
    cr_assert_eq(pubraw_send(&silent, head, sizeof head), PUBRAW_OK);
    cr_assert_eq(pubraw_send(&trickle, head, sizeof head), PUBRAW_OK);
    int64_t t0 = now_ms();
    int silent_closed = 0, trickle_closed = 0;
    while (now_ms() - t0 < 4000 && !(silent_closed && trickle_closed)) {
        /* One more byte every 100 ms: never idle, but the frame never completes. */
        if (!trickle_closed && send(trickle.fd, "x", 1, MSG_NOSIGNAL) != 1) trickle_closed = 1;
        if (!trickle_closed) trickle_closed = closed_within(trickle.fd, 50, NULL);
        if (!silent_closed) silent_closed = closed_within(silent.fd, 50, NULL);
    }
    cr_expect(silent_closed, "a publisher silent mid-frame was kept past --pub-idle 600");
    cr_expect(trickle_closed, "a publisher trickling one frame was kept past --pub-idle 600");
    pubraw_close(&silent, 0);
    pubraw_close(&trickle, 0);
    cr_expect_eq(nudged_wait_stat(&d, "connections.pub", 0, 3000), 0);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(publisher_deadlines, publishers_that_ping_or_publish_stay_and_an_idle_one_learns_why,
     .timeout = 30)
{
    struct nudged d;
    subcheck_start(&d, pub_args);
    nudge_client_t *pinger = subcheck_publisher(&d, "pinger");
    nudge_client_t *active = subcheck_publisher(&d, "active");
    nudge_client_t *idle = subcheck_publisher(&d, "idle");
    const char *t[] = {"deadline/t"};
    for (int i = 0; i < 15; i++) { /* 1.5 s: 2.5 times --pub-idle */
        cr_assert_eq(nudge_ping(pinger), NUDGE_OK, "ping %d: %s", i, nudge_last_error(pinger));
        cr_assert_eq(nudge_publish(active, t, 1, NULL, NULL), NUDGE_OK, "publish %d: %s", i,
                     nudge_last_error(active));
        sleep_ms(100);
    }
    cr_expect_eq(nudge_publish(pinger, t, 1, NULL, NULL), NUDGE_OK, "%s", nudge_last_error(pinger));
    /* libnudge does not reconnect: an idle client's next call fails and says so. */
    int rc = nudge_publish(idle, t, 1, NULL, NULL);
    cr_expect_eq(rc, NUDGE_EIO, "idle publisher: rc %d", rc);
    cr_expect(strstr(nudge_last_error(idle), "closed by broker"), "idle publisher: '%s'",
              nudge_last_error(idle));
    cr_expect_eq(nudged_wait_stat(&d, "connections.pub", 2, 3000), 2);
    cr_expect(nudged_wait_log(&d, "dropped: idle for --pub-idle", 3000), "no log line");
    nudge_close(pinger);
    nudge_close(active);
    nudge_close(idle);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* ---- the log of a slow-consumer close ------------------------------------------------------ */

Test(slow_log, a_slow_consumer_close_is_logged_as_a_warning_with_its_id_and_reason, .timeout = 60)
{
    /* A subscriber that sends pings and never reads the pongs: once its socket is full, its
     * replies queue up and past --max-queue 8 it is closed with 4001 (core.c push_msg). Without
     * --msg-rate: the broker reads a subscriber 144 bytes a loop turn (lws reads at most its rx
     * buffer, ws.c), and the rate limit's close (4008) would otherwise race the full socket. */
    struct nudged d;
    const char *args[] = {"--max-queue", "8", "--msg-rate", "0", NULL};
    subcheck_start(&d, args);
    struct wsc w;
    int fd = subcheck_small_rcvbuf_socket(d.ws_port);
    cr_assert_eq(wsc_handshake(&w, fd, d.ws_port, "/", SUB_PROTO_JSON, NULL), WSC_OK);
    cr_assert_eq(wsc_hello(&w), WSC_OK);
    static const char ping[] = "{\"type\":\"ping\",\"id\":1}";
    int64_t end = now_ms() + 30000;
    while (nudged_wait_stat(&d, "slow_closes", 1, 0) != 1 && now_ms() < end) {
        for (int i = 0; i < 2000; i++)
            if (wsc_send_text(&w, ping) != WSC_OK) break;
    }
    cr_assert_eq(nudged_wait_stat(&d, "slow_closes", 1, 3000), 1, "no slow-consumer close");
    char want[128];
    snprintf(want, sizeof want, "warn: slow consumer closed conn=%s peer=127.0.0.1:", w.conn_id);
    cr_expect(nudged_wait_log(&d, want, 3000), "no log line '%s'", want);
    cr_expect(nudged_wait_log(&d, "transport=ws code=4001 reason=\"slow consumer:", 3000),
              "the line has no close code and reason");
    wsc_free(&w, 1);
    subcheck_probe(&d);
    cr_assert_eq(nudged_stop(&d), 0);
}
