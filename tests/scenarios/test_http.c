/* The HTTP publish endpoint (docs/protocol.md §HTTP publish), end to end against the real nudged
 * over raw loopback sockets (no curl: a fresh machine may not have it): publishes reach
 * WebSocket subscribers with their data and "own"; seqs are the TCP protocol's; each error has
 * its status and code; API keys are checked on every request; keep-alive, pipelining (answered
 * in order, the broker idle afterwards), bodies over the limit, clients that vanish mid-body and
 * a slowloris that holds nobody up. The harness's brokers keep a data directory, so most
 * publishes here are answered by the store's completion (the asynchronous path); one test runs
 * --memory (answered within the call). */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "wsc.h"

#define KEY_ALL "http-all-key-0123456789"
#define KEY_INVOICE "http-invoice-key-0123456789"
#define KEY_CAPPED "http-capped-key-0123456789"

/* A client connection with the bytes received and not yet consumed. */
struct hcli {
    int fd;
    char buf[1 << 17];
    size_t len;
};

/* One response. */
struct resp {
    int status;
    char head[2048]; /* status line and headers, NUL-terminated */
    char body[4096]; /* NUL-terminated (truncated past its size) */
    size_t body_len;
};

static void hcli_open(struct hcli *c, const struct nudged *d)
{
    c->fd = tcp_connect(d->http_port);
    c->len = 0;
    cr_assert_geq(c->fd, 0, "connect to the http port %u", d->http_port);
}

static void hcli_close(struct hcli *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

/* Read one response within timeout_ms. 0, -1 (timeout) or -2 (EOF before a whole response). */
static int hcli_read(struct hcli *c, struct resp *r, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        char *eoh = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (eoh) {
            size_t hl = (size_t)(eoh - c->buf) + 4, cl = 0;
            size_t copy = hl - 4 < sizeof r->head - 1 ? hl - 4 : sizeof r->head - 1;
            memcpy(r->head, c->buf, copy);
            r->head[copy] = '\0';
            const char *l = strcasestr(r->head, "\r\ncontent-length:");
            if (l) cl = strtoul(l + 17, NULL, 10);
            if (c->len >= hl + cl) {
                r->status = 0;
                sscanf(r->head, "HTTP/1.%*d %d", &r->status);
                size_t b = cl < sizeof r->body - 1 ? cl : sizeof r->body - 1;
                memcpy(r->body, c->buf + hl, b);
                r->body[b] = '\0';
                r->body_len = cl;
                memmove(c->buf, c->buf + hl + cl, c->len - hl - cl);
                c->len -= hl + cl;
                return 0;
            }
        }
        int64_t left = end - now_ms();
        if (left <= 0) return -1;
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, (int)left) <= 0) continue;
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (n <= 0) return -2;
        c->len += (size_t)n;
    }
}

/* Append one POST /publish with body and extra header lines (each ending in \r\n, or "") to out
 * (room for cap bytes). Returns its length. */
static size_t post_req(char *out, size_t cap, const char *body, const char *extra)
{
    int n = snprintf(out, cap,
                     "POST /publish HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                     "\r\n%sContent-Length: %zu\r\n\r\n%s",
                     extra, strlen(body), body);
    cr_assert(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

/* Send one publish on c and read its answer (5 s). */
static void post(struct hcli *c, const char *body, const char *extra, struct resp *r)
{
    char req[8192];
    size_t n = post_req(req, sizeof req, body, extra);
    cr_assert_eq(send_all(c->fd, req, n), 0);
    cr_assert_eq(hcli_read(c, r, 5000), 0, "no answer to %s", body);
}

/* The broker with the harness's defaults plus extra (NULL-terminated, may be NULL). */
static void start(struct nudged *d, const char *const *extra)
{
    cr_assert_eq(nudged_start(d, extra), 0);
    cr_assert_neq(d->http_port, 0, "no http= in the ready line: %s", d->ready_line);
}

static void expect_error(const struct resp *r, int status, int code)
{
    char want[32];
    snprintf(want, sizeof want, "\"code\":%d,", code);
    cr_expect_eq(r->status, status, "status %d, want %d: %s", r->status, status, r->body);
    cr_expect(strstr(r->body, want), "want code %d: %s", code, r->body);
}

Test(http, a_publish_reaches_a_subscriber_with_its_data_and_own_for_its_origin)
{
    struct nudged d;
    start(&d, NULL);
    struct wsc w, other;
    cr_assert_eq(wsc_open(&w, d.ws_port, NULL), 0);
    cr_assert_eq(wsc_open(&other, d.ws_port, NULL), 0);
    cr_assert_eq(wsc_subscribe_v(&w, "doc:1", "doc:2", NULL), 0);
    cr_assert_eq(wsc_subscribe_v(&other, "doc:1", NULL), 0);
    struct hcli c;
    hcli_open(&c, &d);
    char body[256];
    snprintf(body, sizeof body,
             "{\"topics\":[\"doc:1\",\"doc:2\"],\"data\":{\"by\":7},\"origin\":\"%s\"}", w.conn_id);
    struct resp r;
    post(&c, body, "", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(r.body, "{\"seqs\":[1,1]}");
    cr_expect(strcasestr(r.head, "content-type: application/json"), "%s", r.head);
    struct sub_msg m;
    cr_assert_eq(wsc_expect(&w, SUB_HINT, &m, 5000), 0);
    cr_expect(wstr_eq(m.topic, "doc:1") && m.seq == 1 && m.own, "the origin's hint says own");
    struct wire_buf js = {0};
    cr_assert_not_null(m.data);
    cr_assert_eq(wire_data_to_json(m.data, m.data_len, &js), 0);
    cr_expect(js.len == 8 && memcmp(js.data, "{\"by\":7}", 8) == 0, "data %.*s", (int)js.len,
              (const char *)js.data);
    wire_buf_free(&js);
    sub_msg_clear(&m);
    cr_assert_eq(wsc_expect(&other, SUB_HINT, &m, 5000), 0);
    cr_expect(wstr_eq(m.topic, "doc:1") && m.seq == 1 && !m.own, "others' hints do not");
    sub_msg_clear(&m);
    /* The TCP protocol's seqs: one sequence per topic, whichever transport published. */
    struct pubraw p;
    cr_assert_eq(pubraw_connect(&p, d.pub_port, 1), 0);
    const char *t1[] = {"doc:1"};
    cr_assert_eq(pubraw_publish(&p, 5, t1, 1, NULL, 0), 0);
    struct pub_msg ack;
    cr_assert_eq(pubraw_recv(&p, &ack, 5000), 0);
    cr_expect(ack.type == PUB_ACK && ack.nseqs == 1 && ack.seqs[0] == 2, "TCP ack seq 2");
    pub_msg_clear(&ack);
    post(&c, "{\"topics\":[\"doc:2\",\"doc:1\"],\"skip_origin\":true}", "", &r);
    cr_expect_str_eq(r.body, "{\"seqs\":[2,3]}", "in topic order, after the TCP publish");
    pubraw_close(&p, 0);
    hcli_close(&c);
    wsc_close(&w, 2000);
    wsc_close(&other, 2000);
    cr_expect_eq(nudged_stop(&d), 0);
}

Test(http, each_bad_request_gets_its_status_and_code_and_the_connection_goes_on)
{
    struct nudged d;
    const char *extra[] = {"--max-data", "64", NULL};
    start(&d, extra);
    struct hcli c;
    hcli_open(&c, &d);
    struct resp r;
    post(&c, "{\"topics\":[\"a\"", "", &r);
    expect_error(&r, 400, 1); /* not JSON: bad_frame */
    post(&c, "[\"a\"]", "", &r);
    expect_error(&r, 400, 1); /* not an object */
    post(&c, "{\"data\":1}", "", &r);
    expect_error(&r, 400, 3); /* no topics: bad_field */
    post(&c, "{\"topics\":[\"a\",7]}", "", &r);
    expect_error(&r, 400, 3);
    post(&c, "{\"topics\":[\"a b\"]}", "", &r);
    expect_error(&r, 400, 5); /* bad_topic */
    post(&c,
         "{\"topics\":[\"a\"],\"data\":\"0123456789012345678901234567890123456789"
         "0123456789012345678901234567890123456789\"}",
         "", &r);
    expect_error(&r, 400, 6); /* over --max-data: bad_data */
    post(&c, "{\"topics\":[\"a\"],\"skip_origin\":\"yes\"}", "", &r);
    expect_error(&r, 400, 3);
    /* the wrong media type: 415 */
    char req[1024];
    const char *body = "{\"topics\":[\"a\"]}";
    int n = snprintf(req, sizeof req,
                     "POST /publish HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: %zu"
                     "\r\n\r\n%s",
                     strlen(body), body);
    cr_assert_eq(send_all(c.fd, req, (size_t)n), 0);
    cr_assert_eq(hcli_read(&c, &r, 5000), 0);
    cr_expect_eq(r.status, 415, "%s", r.head);
    /* another method: 405 with Allow; another path: 404 */
    n = snprintf(req, sizeof req, "GET /publish HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert_eq(send_all(c.fd, req, (size_t)n), 0);
    cr_assert_eq(hcli_read(&c, &r, 5000), 0);
    cr_expect_eq(r.status, 405);
    cr_expect(strcasestr(r.head, "\r\nallow: POST"), "%s", r.head);
    n = snprintf(req, sizeof req, "POST /stats HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
    cr_assert_eq(send_all(c.fd, req, (size_t)n), 0);
    cr_assert_eq(hcli_read(&c, &r, 5000), 0);
    cr_expect_eq(r.status, 404);
    /* after all that, on the same connection: a publish */
    post(&c, "{\"topics\":[\"a\"]}", "", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(r.body, "{\"seqs\":[1]}");
    hcli_close(&c);
    cr_expect_eq(nudged_stop(&d), 0);
}

Test(http, a_body_over_the_limit_gets_413_and_the_connection_closes)
{
    struct nudged d;
    const char *extra[] = {"--http-max-body", "1024", NULL};
    start(&d, extra);
    struct hcli c;
    hcli_open(&c, &d);
    /* Only the head is sent: the broker judges the length before any of the body comes. */
    const char *head = "POST /publish HTTP/1.1\r\nContent-Type: application/json\r\n"
                       "Content-Length: 5000\r\n\r\n";
    cr_assert_eq(send_all(c.fd, head, strlen(head)), 0);
    struct resp r;
    cr_assert_eq(hcli_read(&c, &r, 5000), 0);
    expect_error(&r, 413, 4);
    cr_expect(strcasestr(r.head, "connection: close"), "%s", r.head);
    cr_expect(wait_closed(c.fd, 3000), "the connection stays open after 413");
    hcli_close(&c);
    /* and chunked bodies are refused the same way (411) */
    hcli_open(&c, &d);
    const char *chunked = "POST /publish HTTP/1.1\r\nContent-Type: application/json\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n10\r\n";
    cr_assert_eq(send_all(c.fd, chunked, strlen(chunked)), 0);
    cr_assert_eq(hcli_read(&c, &r, 5000), 0);
    cr_expect_eq(r.status, 411, "%s", r.head);
    cr_expect(wait_closed(c.fd, 3000), "the connection stays open after 411");
    hcli_close(&c);
    /* and a head over 8 KiB (431) */
    hcli_open(&c, &d);
    char big[10000];
    int n = snprintf(big, sizeof big, "POST /publish HTTP/1.1\r\nX-Pad: ");
    memset(big + n, 'a', sizeof big - (size_t)n);
    cr_assert_eq(send_all(c.fd, big, sizeof big), 0);
    cr_assert_eq(hcli_read(&c, &r, 5000), 0);
    cr_expect_eq(r.status, 431, "%s", r.head);
    cr_expect(wait_closed(c.fd, 3000), "the connection stays open after 431");
    hcli_close(&c);
    cr_expect_eq(nudged_stop(&d), 0);
}

Test(http, api_keys_are_checked_on_every_request)
{
    char dir[] = "/tmp/nudge-http-XXXXXX", keys[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(keys, sizeof keys, "%s/keys", dir);
    FILE *f = fopen(keys, "w");
    cr_assert_not_null(f);
    fputs("all " KEY_ALL "\ninvoice " KEY_INVOICE " invoice:**\ncapped " KEY_CAPPED " rate=2\n", f);
    fclose(f);
    struct nudged d;
    const char *extra[] = {"--pub-keys", keys, NULL};
    start(&d, extra);
    struct hcli c;
    hcli_open(&c, &d);
    struct resp r;
    const char *body = "{\"topics\":[\"invoice:7\"]}";
    post(&c, body, "", &r);
    expect_error(&r, 401, 16);
    cr_expect(strcasestr(r.head, "\r\nwww-authenticate: bearer"), "%s", r.head);
    post(&c, body, "Authorization: Bearer not-a-key-0123456789\r\n", &r);
    expect_error(&r, 401, 16);
    post(&c, body, "Authorization: Basic " KEY_ALL "\r\n", &r);
    expect_error(&r, 401, 16);
    post(&c, body, "Authorization: Bearer " KEY_ALL "\r\n", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    post(&c, body, "authorization: bearer " KEY_INVOICE "\r\n", &r);
    cr_expect_eq(r.status, 200, "a key inside its patterns: %s", r.body);
    post(&c, "{\"topics\":[\"invoice:7\",\"order:1\"]}",
         "Authorization: Bearer " KEY_INVOICE "\r\n", &r);
    expect_error(&r, 403, 17);
    /* rate=2: a burst of 2 a second, then 429 with Retry-After */
    int limited = 0;
    for (int i = 0; i < 6 && !limited; i++) {
        post(&c, body, "Authorization: Bearer " KEY_CAPPED "\r\n", &r);
        if (r.status == 429) {
            limited = 1;
            expect_error(&r, 429, 19);
            cr_expect(strcasestr(r.head, "\r\nretry-after: 1"), "%s", r.head);
        } else {
            cr_expect_eq(r.status, 200, "%s", r.body);
        }
    }
    cr_expect(limited, "six publishes at once never hit rate=2");
    /* a refusal never closed the connection */
    post(&c, body, "Authorization: Bearer " KEY_ALL "\r\n", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    hcli_close(&c);
    cr_expect_eq(nudged_stop(&d), 0);
    nudged_rm_dir(dir);
}

/* The CPU time the broker uses over the next ms milliseconds. */
static int64_t cpu_over(const struct nudged *d, int ms)
{
    int64_t c0 = nudged_cpu_ms(d);
    sleep_ms(ms);
    int64_t c1 = nudged_cpu_ms(d);
    cr_assert(c0 >= 0 && c1 >= 0);
    return c1 - c0;
}

Test(http, pipelined_requests_with_bodies_are_answered_in_order_and_the_broker_stays_idle)
{
    struct nudged d;
    start(&d, NULL);
    enum { N = 40 };
    static char reqs[N * 256 + 512];
    size_t len = 0;
    for (int i = 0; i < N; i++)
        len +=
            post_req(reqs + len, sizeof reqs - len, "{\"topics\":[\"pipe:1\"],\"data\":[1,2]}", "");
    /* then the head and half the body of one more: it must wait, not spin */
    const char *part = "POST /publish HTTP/1.1\r\nContent-Type: application/json\r\n"
                       "Content-Length: 21\r\n\r\n{\"topics\":";
    memcpy(reqs + len, part, strlen(part));
    len += strlen(part);
    struct hcli c;
    hcli_open(&c, &d);
    cr_assert_eq(send_all(c.fd, reqs, len), 0, "one write");
    for (int i = 0; i < N; i++) {
        struct resp r;
        cr_assert_eq(hcli_read(&c, &r, 5000), 0, "answer %d of %d", i + 1, N);
        char want[32];
        snprintf(want, sizeof want, "{\"seqs\":[%d]}", i + 1);
        cr_assert_str_eq(r.body, want, "answer %d out of order", i + 1);
    }
    int64_t cpu = cpu_over(&d, 1000);
    cr_log_info("http: broker CPU %lld ms over 1 s after %d pipelined publishes", (long long)cpu,
                N);
    cr_expect_lt(cpu, 150, "the broker used %lld ms CPU in 1 s with a request half-read",
                 (long long)cpu);
    /* the rest of the last body: answered */
    cr_assert_eq(send_all(c.fd, "[\"pipe:2\"]}", 11), 0);
    struct resp r;
    cr_assert_eq(hcli_read(&c, &r, 5000), 0);
    cr_expect_str_eq(r.body, "{\"seqs\":[1]}");
    hcli_close(&c);
    cr_expect_eq(nudged_stop(&d), 0);
}

Test(http, keep_alive_serves_several_requests_on_one_connection_until_close)
{
    struct nudged d;
    const char *extra[] = {"--memory", NULL}; /* answered within the call, not by the store */
    start(&d, extra);
    struct hcli c;
    hcli_open(&c, &d);
    struct resp r;
    for (int i = 1; i <= 5; i++) {
        post(&c, "{\"topics\":[\"ka\"]}", "", &r);
        char want[32];
        snprintf(want, sizeof want, "{\"seqs\":[%d]}", i);
        cr_expect_str_eq(r.body, want);
        cr_expect(!strcasestr(r.head, "connection: close"), "%s", r.head);
    }
    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st);
    cr_expect_eq(stats_int(st, "connections.http"), 1);
    cr_expect_eq(stats_int(st, "accepted.http"), 1, "five requests, one connection");
    cr_expect_eq(stats_int(st, "connections.pub"), 0, "HTTP publishers are not TCP ones");
    json_decref(st);
    post(&c, "{\"topics\":[\"ka\"]}", "Connection: close\r\n", &r);
    cr_expect_str_eq(r.body, "{\"seqs\":[6]}");
    cr_expect(strcasestr(r.head, "connection: close"), "%s", r.head);
    cr_expect(wait_closed(c.fd, 3000), "Connection: close was not honoured");
    hcli_close(&c);
    /* HTTP/1.0 closes unless asked to keep alive */
    hcli_open(&c, &d);
    const char *body = "{\"topics\":[\"ka\"]}";
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST /publish HTTP/1.0\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     strlen(body), body);
    cr_assert_eq(send_all(c.fd, req, (size_t)n), 0);
    cr_assert_eq(hcli_read(&c, &r, 5000), 0);
    cr_expect_str_eq(r.body, "{\"seqs\":[7]}");
    cr_expect(wait_closed(c.fd, 3000), "HTTP/1.0 without keep-alive stayed open");
    hcli_close(&c);
    cr_expect_eq(nudged_wait_stat(&d, "connections.http", 0, 3000), 0);
    cr_expect_eq(nudged_stop(&d), 0);
}

Test(http, a_slowloris_client_holds_nobody_up_and_is_closed_at_the_request_deadline)
{
    struct nudged d;
    /* one worker: the slow client and the others share one loop */
    const char *extra[] = {"--workers", "1", "--http-timeout", "1500", NULL};
    start(&d, extra);
    struct hcli slow, fast;
    hcli_open(&slow, &d);
    hcli_open(&fast, &d);
    const char *head =
        "POST /publish HTTP/1.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 20\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    /* A first request, whole: from now on only the request deadline can close it (the idle
     * one is --pub-idle, 120 s). */
    struct resp r0;
    post(&slow, "{\"topics\":[\"slow\"]}", "", &r0);
    cr_assert_eq(r0.status, 200);
    int64_t t0 = now_ms(), closed_at = 0, worst = 0;
    int publishes = 0;
    for (size_t i = 0; i < strlen(head) && now_ms() - t0 < 4000; i++) {
        if (send(slow.fd, head + i, 1, MSG_NOSIGNAL) != 1) break;
        if (i % 3 == 0) { /* someone else publishes meanwhile */
            struct resp r;
            int64_t p0 = now_ms();
            post(&fast, "{\"topics\":[\"busy\"]}", "", &r);
            int64_t took = now_ms() - p0;
            worst = took > worst ? took : worst;
            cr_expect_eq(r.status, 200);
            publishes++;
        }
        struct pollfd p = {slow.fd, POLLIN, 0};
        if (poll(&p, 1, 100) > 0) {
            closed_at = now_ms();
            break;
        }
    }
    if (!closed_at && wait_closed(slow.fd, 3000)) closed_at = now_ms();
    cr_log_info("http: slowloris closed after %lld ms; %d publishes meanwhile, slowest %lld ms",
                (long long)(closed_at - t0), publishes, (long long)worst);
    cr_expect_gt(publishes, 3);
    cr_expect_lt(worst, 200, "a publish took %lld ms next to a slowloris", (long long)worst);
    cr_assert_neq(closed_at, 0, "the slowloris was never closed");
    cr_expect(closed_at - t0 >= 1300 && closed_at - t0 < 3000,
              "closed after %lld ms, the deadline is 1500", (long long)(closed_at - t0));
    struct resp r;
    int rc = hcli_read(&slow, &r, 1000);
    if (rc == 0) cr_expect_eq(r.status, 408);
    hcli_close(&slow);
    /* a connection that never sends anything goes at the same deadline */
    struct hcli idle;
    hcli_open(&idle, &d);
    int64_t i0 = now_ms();
    cr_expect(wait_closed(idle.fd, 4000), "a silent connection was kept");
    cr_expect_geq(now_ms() - i0, 1300);
    hcli_close(&idle);
    hcli_close(&fast);
    cr_expect_eq(nudged_stop(&d), 0);
}

Test(http, a_client_closing_mid_body_does_no_harm)
{
    struct nudged d;
    start(&d, NULL);
    for (int abort_it = 0; abort_it < 2; abort_it++) {
        struct hcli c;
        hcli_open(&c, &d);
        const char *part = "POST /publish HTTP/1.1\r\nContent-Type: application/json\r\n"
                           "Content-Length: 100\r\n\r\n{\"topics\":[\"gone\"]";
        cr_assert_eq(send_all(c.fd, part, strlen(part)), 0);
        sleep_ms(50);
        if (abort_it) {
            struct linger l = {1, 0};
            setsockopt(c.fd, SOL_SOCKET, SO_LINGER, &l, sizeof l); /* RST */
        }
        hcli_close(&c);
    }
    cr_expect_eq(nudged_wait_stat(&d, "connections.http", 0, 3000), 0);
    struct hcli c;
    hcli_open(&c, &d);
    struct resp r;
    post(&c, "{\"topics\":[\"gone\"]}", "", &r);
    cr_expect_str_eq(r.body, "{\"seqs\":[1]}", "the half-sent publish must not have happened");
    hcli_close(&c);
    cr_expect_eq(nudged_stop(&d), 0);
}

Test(http, off_means_no_listener_and_a_reachable_one_needs_keys)
{
    struct nudged d;
    const char *extra[] = {"--http", "off", NULL};
    cr_assert_eq(nudged_start(&d, extra), 0);
    cr_expect_eq(d.http_port, 0);
    cr_expect(!strstr(d.ready_line, "http="), "%s", d.ready_line);
    cr_expect_eq(nudged_stop(&d), 0);
    char bin[512];
    cr_assert_eq(nudge_bin_path("nudged", bin, sizeof bin), 0);
    const char *argv[] = {bin,       "--memory",    "--pub",  "127.0.0.1:0", "--ws", "127.0.0.1:0",
                          "--admin", "127.0.0.1:0", "--http", "0.0.0.0:0",   NULL};
    char *out = NULL, *err = NULL;
    int rc = run_cmd(argv, NULL, &out, &err, 10000);
    cr_expect_eq(rc, 2, "exit %d: %s", rc, err ? err : "");
    cr_expect(err && strstr(err, "--http") && strstr(err, "--pub-keys"), "%s", err ? err : "");
    free(out);
    free(err);
}

Test(http, a_client_that_half_closes_gets_every_answer_then_eof)
{
    struct nudged d;
    start(&d, NULL);
    struct hcli c;
    hcli_open(&c, &d);
    char reqs[1024];
    size_t n = post_req(reqs, sizeof reqs, "{\"topics\":[\"half\"]}", "");
    n += post_req(reqs + n, sizeof reqs - n, "{\"topics\":[\"half\"]}", "");
    cr_assert_eq(send_all(c.fd, reqs, n), 0);
    shutdown(c.fd, SHUT_WR); /* as `printf ... | nc -N` does */
    struct resp r;
    cr_assert_eq(hcli_read(&c, &r, 5000), 0, "no first answer after a half-close");
    cr_expect_str_eq(r.body, "{\"seqs\":[1]}");
    cr_assert_eq(hcli_read(&c, &r, 5000), 0, "no second answer after a half-close");
    cr_expect_str_eq(r.body, "{\"seqs\":[2]}");
    cr_expect(wait_closed(c.fd, 3000), "not closed once everything was answered");
    hcli_close(&c);
    cr_expect_eq(nudged_stop(&d), 0);
}

Test(http, a_busy_default_port_is_skipped_with_a_warning_but_a_given_one_fails_loudly)
{
    /* Hold 127.0.0.1:7403 (or find it held already). */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(7403)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int held = bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 1) == 0;
    cr_assert(held || errno == EADDRINUSE, "cannot hold port 7403: %s", strerror(errno));
    char bin[512];
    cr_assert_eq(nudge_bin_path("nudged", bin, sizeof bin), 0);
    /* An older launcher: --pub, --ws and --admin only. */
    const char *args[] = {"--pub",       "127.0.0.1:0", "--ws",      "127.0.0.1:0", "--admin",
                          "127.0.0.1:0", "--memory",    "--workers", "2",           NULL};
    struct nudged d;
    cr_assert_eq(nudged_start_ex(&d, bin, 0, args), 0, "a busy default http port stopped nudged");
    cr_expect_eq(d.http_port, 0);
    cr_expect(!strstr(d.ready_line, "http="), "%s", d.ready_line);
    cr_expect(nudged_wait_log(&d, "HTTP publish listener not started", 2000));
    cr_expect_eq(nudged_stop(&d), 0);
    /* Asked for explicitly: exit 1 naming the flag. */
    const char *argv[] = {bin,       "--pub",       "127.0.0.1:0", "--ws",           "127.0.0.1:0",
                          "--admin", "127.0.0.1:0", "--http",      "127.0.0.1:7403", "--memory",
                          NULL};
    char *out = NULL, *err = NULL;
    int rc = run_cmd(argv, NULL, &out, &err, 10000);
    cr_expect_eq(rc, 1, "exit %d: %s", rc, err ? err : "");
    cr_expect(err && strstr(err, "--http"), "%s", err ? err : "");
    free(out);
    free(err);
    close(fd);
}
