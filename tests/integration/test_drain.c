/* Drain on SIGTERM (docs/operations.md §Stop): the listeners close at once, /readyz answers 503
 * while the admin port stays open, WebSockets get 1012 spread over --drain-window while a
 * publisher under load is still served, every publish acked before the end is in the journal,
 * and the process exits 0 before --drain-deadline; on the restarted broker (same data
 * directory) every subscriber resumes with no seq lost. A client that holds its connection
 * open does not hold the exit past the deadline, and a second signal cuts the drain short. */
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "nudge.h"
#include "subcheck.h"
#include "wsc.h"

enum { N = 16, WINDOW = 600, DEADLINE = 3000 };

struct load {
    nudge_client_t *c;
    atomic_int stop;
    atomic_ullong acked; /* highest seq acked */
    atomic_int published;
};

/* Publish to "load" back to back (one round trip each) until the broker closes the connection
 * or the test says stop. */
static void *publish_loop(void *arg)
{
    struct load *l = arg;
    const char *t[1] = {"load"};
    while (!atomic_load(&l->stop)) {
        uint64_t seq = 0;
        if (nudge_publish(l->c, t, 1, NULL, &seq) != NUDGE_OK) break;
        atomic_store(&l->acked, seq);
        atomic_fetch_add(&l->published, 1);
        usleep(2000);
    }
    return NULL;
}

/* What one subscriber saw: seqs covered by its hints (a catch-up hint covers n). */
struct seen {
    uint8_t got[4096];
    uint64_t last;
    int code;         /* close code, -1 = ended without one, 0 = open */
    int64_t close_ms; /* after the signal */
};

static void note_hint(struct seen *s, const struct sub_msg *m)
{
    uint32_t n = m->count ? m->count : 1;
    for (uint64_t q = m->seq - n + 1; q <= m->seq; q++)
        if (q < sizeof(s->got)) s->got[q] = 1;
    if (m->seq > s->last) s->last = m->seq;
}

/* Read every readable subscriber once (at most 20 ms of waiting). */
static int pump(struct wsc *w, struct seen *s, int n, int64_t t0)
{
    struct pollfd p[N];
    int open = 0;
    for (int i = 0; i < n; i++) {
        p[i].fd = s[i].code ? -1 : w[i].fd;
        p[i].events = POLLIN;
        open += !s[i].code;
    }
    if (!open) return 0;
    poll(p, (nfds_t)n, 20);
    for (int i = 0; i < n; i++) {
        if (s[i].code || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        for (;;) {
            struct sub_msg m;
            int rc = wsc_recv_msg(&w[i], &m, 0);
            if (rc == WSC_OK) {
                if (m.type == SUB_HINT) note_hint(&s[i], &m);
                sub_msg_clear(&m);
                continue;
            }
            if (rc == WSC_TIMEOUT) break;
            s[i].code = rc == WSC_CLOSED ? w[i].close_code : -1;
            s[i].close_ms = now_ms() - t0;
            break;
        }
    }
    return open;
}

static void make_dir_path(char *buf, size_t cap, const char *what)
{
    snprintf(buf, cap, "/tmp/nudge-test-%d-%s.data", (int)getpid(), what);
    nudged_rm_dir(buf);
}

Test(drain, under_load_spreads_1012_over_the_window_and_clients_resume_on_the_restarted_broker,
     .timeout = 60)
{
    char dir[128];
    make_dir_path(dir, sizeof dir, "drain");
    const char *args[] = {"--data-dir", dir, "--drain-window", "600", "--drain-deadline",
                          "3000",       NULL};
    struct nudged d;
    subcheck_start(&d, args);
    struct wsc w[N];
    struct seen s[N];
    memset(s, 0, sizeof s);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(wsc_open(&w[i], d.ws_port, SUB_PROTO_JSON), WSC_OK);
        cr_assert_eq(wsc_subscribe_v(&w[i], "load", NULL), WSC_OK);
    }
    char epoch[32];
    snprintf(epoch, sizeof epoch, "%s", w[0].epoch);

    struct load l = {.c = subcheck_publisher(&d, "load")};
    atomic_init(&l.stop, 0);
    atomic_init(&l.acked, 0);
    atomic_init(&l.published, 0);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, publish_loop, &l), 0);
    int64_t until = now_ms() + 300;
    while (now_ms() < until)
        pump(w, s, N, now_ms());
    int before = atomic_load(&l.published);
    cr_assert_gt(before, 5, "the load is running (%d publishes)", before);

    int64_t t0 = now_ms();
    cr_assert_eq(nudged_signal(&d, SIGTERM), 0);
    /* New connections are refused at once (every listener closed)... */
    int refused = 0;
    while (!refused && now_ms() - t0 < 200) {
        int fd = tcp_connect(d.ws_port);
        if (fd < 0)
            refused = 1;
        else
            close(fd);
        if (!refused) sleep_ms(5);
    }
    int pfd = tcp_connect(d.pub_port);
    int64_t refused_ms = now_ms() - t0;
    cr_expect(refused, "the WebSocket port still accepted 200 ms after SIGTERM");
    cr_expect_lt(pfd, 0, "the publisher port still accepted %lld ms after SIGTERM",
                 (long long)refused_ms);
    if (pfd >= 0) close(pfd);
    /* ...while the admin port stays open and says not ready (a balancer takes the node out). */
    int status = 0;
    char *body = http_get(d.admin_port, "/readyz", &status);
    cr_expect_eq(status, 503, "/readyz during the drain: %d %s", status, body ? body : "(none)");
    free(body);
    body = http_get(d.admin_port, "/healthz", &status);
    cr_expect_eq(status, 200, "/healthz during the drain: %d", status);
    free(body);

    while (now_ms() - t0 < WINDOW + 2000 && pump(w, s, N, t0))
        ;
    int st = nudged_wait(&d, DEADLINE + 2000);
    int64_t took = now_ms() - t0;
    atomic_store(&l.stop, 1);
    pthread_join(th, NULL);
    nudge_close(l.c);
    cr_assert_eq(st, 0, "nudged exited with %d after SIGTERM", st);
    cr_expect_lt(took, DEADLINE, "exit %lld ms after SIGTERM, past --drain-deadline",
                 (long long)took);

    int early = 0;
    int64_t last_close = 0;
    for (int i = 0; i < N; i++) {
        cr_expect_eq(s[i].code, 1012, "subscriber %d: close code %d", i, s[i].code);
        if (s[i].close_ms < 100) early++;
        if (s[i].close_ms > last_close) last_close = s[i].close_ms;
    }
    cr_expect_lt(early, N / 2, "%d of %d closes in the first 100 ms: not spread", early, N);
    cr_expect_gt(last_close, WINDOW / 2, "the last close at %lld ms: not spread over %d ms",
                 (long long)last_close, WINDOW);
    cr_expect_lt(last_close, WINDOW + 500, "the last close at %lld ms, past the window",
                 (long long)last_close);
    uint64_t acked = atomic_load(&l.acked);
    int during = atomic_load(&l.published) - before;
    cr_expect_gt(during, 0, "publishes were served during the window");
    /* Hints kept flowing to the subscribers not closed yet. */
    uint64_t best = 0;
    for (int i = 0; i < N; i++)
        if (s[i].last > best) best = s[i].last;
    cr_expect_gt(best, (uint64_t)before, "no hint reached a subscriber during the window");

    /* The restarted broker (same data directory, new ports): every acked publish is in the
     * journal (seqs go on from the last ack), and each subscriber resumes from what it saw. */
    struct nudged d2;
    subcheck_start(&d2, args);
    const char *topics[1] = {"load"};
    for (int i = 0; i < N; i++) {
        wsc_free(&w[i], 0);
        cr_assert_eq(wsc_open(&w[i], d2.ws_port, SUB_PROTO_JSON), WSC_OK);
        cr_assert_str_eq(w[i].epoch, epoch, "a new epoch after a clean restart");
        int64_t pos = (int64_t)s[i].last;
        subcheck_send_sub(&w[i], 1, topics, 1, epoch, &pos);
        struct sub_msg m;
        subcheck_expect_type(&w[i], SUB_SUBSCRIBED, &m, "subscribed after the restart");
        cr_assert_eq(m.seq, acked, "subscriber %d: seq %llu after the restart, last ack %llu", i,
                     (unsigned long long)m.seq, (unsigned long long)acked);
        sub_msg_clear(&m);
        if (s[i].last < acked) {
            subcheck_expect_type(&w[i], SUB_HINT, &m, "the catch-up hint");
            note_hint(&s[i], &m);
            sub_msg_clear(&m);
        }
        for (uint64_t q = 1; q <= acked && q < sizeof(s[i].got); q++)
            cr_assert(s[i].got[q], "subscriber %d: seq %llu of %llu lost", i, (unsigned long long)q,
                      (unsigned long long)acked);
        wsc_close(&w[i], 1000);
    }
    cr_assert_eq(nudged_stop(&d2), 0);
    nudged_rm_dir(dir);
}

/* An HTTP publish whose body never comes (with a long --http-timeout) keeps its connection in
 * the drain: the deadline cuts it, and the exit is 0. */
Test(drain, a_connection_that_never_finishes_does_not_hold_the_exit_past_the_deadline,
     .timeout = 30)
{
    const char *args[] = {"--drain-window", "200", "--drain-deadline", "800", "--http-timeout",
                          "60000",          NULL};
    struct nudged d;
    subcheck_start(&d, args);
    struct wsc w; /* a subscriber that never answers the close */
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    int fd = tcp_connect(d.http_port);
    cr_assert_geq(fd, 0);
    static const char head[] = "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: "
                               "application/json\r\nContent-Length: 100\r\n\r\n{\"topics\":";
    cr_assert_eq(send_all(fd, head, sizeof head - 1), 0);
    sleep_ms(100);
    int64_t t0 = now_ms();
    cr_assert_eq(nudged_signal(&d, SIGTERM), 0);
    /* (the log goes with the process: read it before the exit is collected) */
    int cut = nudged_wait_log(&d, "--drain-deadline after", 5000);
    int st = nudged_wait(&d, 10000);
    int64_t took = now_ms() - t0;
    cr_assert_eq(st, 0, "nudged exited with %d", st);
    cr_expect(cut, "the cut is logged");
    cr_expect_geq(took, 700, "exit after %lld ms: the request in progress was not waited for",
                  (long long)took);
    cr_expect_lt(took, 2000, "exit %lld ms after SIGTERM, --drain-deadline is 800",
                 (long long)took);
    close(fd);
    wsc_free(&w, 0);
}

/* A second SIGTERM during the drain ends it at once. */
Test(drain, a_second_signal_cuts_the_drain_short, .timeout = 30)
{
    const char *args[] = {"--drain-window", "5000", "--drain-deadline", "20000", NULL};
    struct nudged d;
    subcheck_start(&d, args);
    struct wsc w[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(wsc_open(&w[i], d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(nudged_signal(&d, SIGTERM), 0);
    cr_assert(nudged_wait_log(&d, "draining", 2000));
    sleep_ms(200);
    cr_assert(nudged_alive(&d), "the drain of a 5 s window ended at once");
    int64_t t0 = now_ms();
    cr_assert_eq(nudged_signal(&d, SIGTERM), 0);
    int st = nudged_wait(&d, 10000);
    int64_t took = now_ms() - t0;
    cr_assert_eq(st, 0, "nudged exited with %d after the second signal", st);
    cr_expect_lt(took, 1000, "exit %lld ms after the second signal", (long long)took);
    for (int i = 0; i < 4; i++)
        wsc_free(&w[i], 0);
}

/* A burst of publishes with the store when the drain begins (--fsync always: each commit waits
 * for the disk): every one the broker read is acked before the connection closes, and the
 * journal holds exactly those (the restarted broker's seq is the last ack's). */
Test(drain, every_publish_read_before_the_stop_is_acked_and_in_the_journal, .timeout = 60)
{
    char dir[128];
    make_dir_path(dir, sizeof dir, "burst");
    const char *args[] = {"--data-dir", dir, "--fsync", "always", "--drain-window", "0", NULL};
    struct nudged d;
    subcheck_start(&d, args);
    struct pubraw p;
    cr_assert_eq(pubraw_connect(&p, d.pub_port, 1), PUBRAW_OK);
    const char *t[1] = {"burst"};
    enum { BURST = 3000 };
    for (uint64_t id = 1; id <= BURST; id++)
        cr_assert_eq(pubraw_publish(&p, id, t, 1, NULL, 0), PUBRAW_OK);
    cr_assert_eq(nudged_signal(&d, SIGTERM), 0);
    uint64_t acks = 0;
    for (;;) {
        struct pub_msg m;
        int rc = pubraw_recv(&p, &m, 5000);
        if (rc == PUBRAW_EOF) break;
        cr_assert_eq(rc, PUBRAW_OK, "receive: %d after %llu acks", rc, (unsigned long long)acks);
        cr_assert_eq(m.type, PUB_ACK, "type %d after %llu acks", (int)m.type,
                     (unsigned long long)acks);
        cr_assert_eq(m.seqs[0], acks + 1, "ack %llu has seq %llu", (unsigned long long)acks + 1,
                     (unsigned long long)m.seqs[0]);
        acks++;
        pub_msg_clear(&m);
    }
    pubraw_close(&p, 0);
    cr_assert_eq(nudged_wait(&d, 10000), 0);
    cr_assert_gt(acks, 0);
    struct nudged d2;
    subcheck_start(&d2, args);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d2.ws_port, SUB_PROTO_JSON), WSC_OK);
    uint64_t seq = 0;
    const char *topics[1] = {"burst"};
    cr_assert_eq(wsc_subscribe(&w, topics, 1, &seq), WSC_OK);
    cr_expect_eq(seq, acks, "the journal has %llu publishes, %llu were acked",
                 (unsigned long long)seq, (unsigned long long)acks);
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d2), 0);
    nudged_rm_dir(dir);
}

/* Read from fd until EOF (or timeout_ms): the bytes, NUL-terminated, in buf. 1 when EOF came. */
static int read_to_eof(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t len = 0;
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(end - now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0) break;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0) {
            buf[len] = '\0';
            return 1;
        }
        len += (size_t)n;
        if (len == cap - 1) break;
    }
    buf[len] = '\0';
    return 0;
}

/* HTTP publishers at a drain: a request in progress is completed and answered with Connection:
 * close, then the connection closes; an idle kept-alive connection is closed. */
Test(drain, http_request_in_progress_is_answered_with_connection_close, .timeout = 30)
{
    const char *args[] = {"--drain-window", "0", NULL};
    struct nudged d;
    subcheck_start(&d, args);
    static const char body[] = "{\"topics\":[\"h\"]}";
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     "application/json\r\nContent-Length: %zu\r\n\r\n",
                     sizeof body - 1);
    int idle = tcp_connect(d.http_port), busy = tcp_connect(d.http_port);
    cr_assert(idle >= 0 && busy >= 0);
    /* The idle one has had an answer already (kept alive); the busy one sends half a request. */
    char whole[1024], resp[4096];
    int wn = snprintf(whole, sizeof whole, "%s%s", req, body);
    cr_assert_eq(send_all(idle, whole, (size_t)wn), 0);
    struct pollfd p = {.fd = idle, .events = POLLIN};
    cr_assert_eq(poll(&p, 1, 5000), 1);
    ssize_t got = recv(idle, resp, sizeof resp - 1, 0);
    cr_assert_gt(got, 0);
    resp[got] = '\0';
    cr_assert(strstr(resp, "200") && !strstr(resp, "Connection: close"), "%s", resp);
    cr_assert_eq(send_all(busy, req, (size_t)n), 0);
    cr_assert_eq(send_all(busy, body, 5), 0);
    sleep_ms(100);
    cr_assert_eq(nudged_signal(&d, SIGTERM), 0);
    cr_expect(wait_closed(idle, 3000), "the idle kept-alive connection stayed open");
    sleep_ms(100);
    cr_assert_eq(send_all(busy, body + 5, sizeof body - 1 - 5), 0);
    int eof = read_to_eof(busy, resp, sizeof resp, 5000);
    cr_expect(strstr(resp, "HTTP/1.1 200") != NULL, "the request in progress: '%s'", resp);
    cr_expect(strstr(resp, "Connection: close") != NULL, "no Connection: close in '%s'", resp);
    cr_expect(eof, "the connection stayed open after its last answer");
    cr_assert_eq(nudged_wait(&d, 10000), 0);
    close(idle);
    close(busy);
}
