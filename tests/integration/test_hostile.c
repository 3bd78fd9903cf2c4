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
__attribute__((unused)) static int closed_within(int fd, int timeout_ms, int *got)
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
    const char *args[] = {NULL, "--hello-timeout", "30000", NULL};
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
