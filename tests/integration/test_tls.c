/* TLS on the publisher and WebSocket listeners (--tls-cert/--tls-key, docs/operations.md §TLS):
 * libnudge and the CLI publish over TLS, the test WebSocket client receives over wss; clients
 * that do not trust the certificate are refused; plain text on a TLS port and handshakes that
 * never finish are dropped without disturbing anyone else; bad files refuse to start.
 *
 * Each test makes its own self-signed certificate (tests/support/cert.h) in a temporary
 * directory and removes it at the end; no key is ever committed. */
#include <criterion/criterion.h>
#include <openssl/ssl.h>
#include <signal.h>

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cert.h"
#include "harness.h"
#include "nudge.h"
#include "subcheck.h"
#include "wsc.h"

TestSuite(tls, .timeout = 60);

static void start_tls(struct nudged *d, struct cert *c, const char *const *more)
{
    const char *args[16] = {"--tls-cert", c->cert, "--tls-key", c->key};
    size_t n = 4;
    for (size_t i = 0; more && more[i] && n < 15; i++)
        args[n++] = more[i];
    args[n] = NULL;
    cr_assert_eq(nudged_start(d, args), 0, "nudged did not start with TLS");
}

static int publish_tls(const struct nudged *d, const char *cafile, const char *name,
                       const char *topic, uint64_t *seq, char *err, size_t cap)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", d->pub_port);
    struct nudge_opts o = {.client_name = "tls-test",
                           .timeout_ms = 5000,
                           .tls = 1,
                           .cafile = cafile,
                           .server_name = name};
    nudge_client_t *c = NULL;
    int rc = nudge_connect_ex(addr, &o, &c, err, cap);
    if (rc != NUDGE_OK) return rc;
    const char *t[] = {topic};
    rc = nudge_publish(c, t, 1, "{\"by\":7}", seq);
    if (rc != NUDGE_OK) snprintf(err, cap, "%s", nudge_last_error(c));
    nudge_close(c);
    return rc;
}

/* A wss subscriber to topic (JSON), hello and subscribe done. */
static void wss_sub(struct wsc *w, const struct nudged *d, const struct cert *c, const char *topic)
{
    char err[128];
    cr_assert_eq(wsc_connect_tls(w, d->ws_port, c->cert, SUB_PROTO_JSON, err, sizeof err), 0,
                 "wss connect: %s", err);
    cr_assert_eq(wsc_hello(w), 0);
    cr_assert_eq(wsc_subscribe_v(w, topic, NULL), 0);
}

static void expect_hint(struct wsc *w, const char *topic, uint64_t seq)
{
    struct sub_msg m;
    cr_assert_eq(wsc_expect(w, SUB_HINT, &m, 5000), 0, "no hint over wss");
    cr_expect(wstr_eq(m.topic, topic));
    cr_expect_eq(m.seq, seq);
    sub_msg_clear(&m);
}

Test(tls, a_libnudge_publish_over_tls_reaches_a_wss_subscriber)
{
    struct cert c;
    struct nudged d = {0};
    cr_assert_eq(cert_make(&c), 0);
    start_tls(&d, &c, NULL);
    struct wsc w;
    wss_sub(&w, &d, &c, "tls:e2e");
    uint64_t seq = 0;
    char err[256] = "";
    cr_assert_eq(publish_tls(&d, c.cert, NULL, "tls:e2e", &seq, err, sizeof err), NUDGE_OK, "%s",
                 err);
    cr_expect_eq(seq, 1);
    expect_hint(&w, "tls:e2e", 1);
    /* the name check: "localhost" is in the certificate too */
    cr_assert_eq(publish_tls(&d, c.cert, "localhost", "tls:e2e", &seq, err, sizeof err), NUDGE_OK,
                 "%s", err);
    expect_hint(&w, "tls:e2e", 2);
    json_t *st = nudged_stats(&d);
    cr_assert(st);
    cr_expect(json_is_true(json_object_get(json_object_get(st, "tls"), "ws")));
    cr_expect(json_is_true(json_object_get(json_object_get(st, "tls"), "pub")));
    cr_expect_eq(stats_int(st, "tls_handshake_failures"), 0);
    json_decref(st);
    wsc_close(&w, 2000);
    cr_expect_eq(nudged_stop(&d), 0);
    cert_remove(&c);
}

Test(tls, the_cli_publishes_with_tls_and_cafile)
{
    struct cert c;
    struct nudged d = {0};
    cr_assert_eq(cert_make(&c), 0);
    start_tls(&d, &c, NULL);
    struct wsc w;
    wss_sub(&w, &d, &c, "tls:cli");
    char bin[512], addr[32];
    cr_assert_eq(nudge_bin_path("nudge", bin, sizeof bin), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", d.pub_port);
    const char *argv[] = {bin, "pub", "--addr", addr, "--tls", "--cafile", c.cert, "tls:cli", NULL};
    char *out = NULL, *err = NULL;
    int rc = run_cmd(argv, NULL, &out, &err, 15000);
    cr_expect_eq(rc, 0, "nudge pub --tls: %s", err ? err : "");
    cr_expect_str_eq(out ? out : "", "tls:cli 1\n");
    free(out);
    free(err);
    expect_hint(&w, "tls:cli", 1);
    /* without --tls the TLS port only closes the connection */
    const char *plain[] = {bin, "pub", "--addr", addr, "tls:cli", NULL};
    rc = run_cmd(plain, NULL, NULL, &err, 15000);
    cr_expect_eq(rc, 1, "plain nudge pub on the TLS port: %s", err ? err : "");
    free(err);
    wsc_close(&w, 2000);
    cr_expect_eq(nudged_stop(&d), 0);
    cert_remove(&c);
}

Test(tls, the_cli_subscribes_over_wss_with_cafile)
{
    struct cert c;
    struct nudged d = {0};
    cr_assert_eq(cert_make(&c), 0);
    start_tls(&d, &c, NULL);
    char bin[512], url[64];
    cr_assert_eq(nudge_bin_path("nudge", bin, sizeof bin), 0);
    snprintf(url, sizeof url, "wss://localhost:%u/", d.ws_port);
    /* the CLI subscribes in a child; a publish is made once its subscription exists */
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        for (int i = 0; i < 100; i++) {
            json_t *st = nudged_stats(&d);
            int64_t subs = st ? stats_int(st, "subscriptions") : -1;
            json_decref(st);
            if (subs == 1) break;
            sleep_ms(50);
        }
        uint64_t seq;
        char err[256];
        _exit(publish_tls(&d, c.cert, NULL, "tls:sub", &seq, err, sizeof err) == 0 ? 0 : 1);
    }
    const char *argv[] = {bin,       "sub", "--url",     url,  "--cafile", c.cert,
                          "--count", "1",   "--timeout", "10", "tls:sub",  NULL};
    char *out = NULL, *err = NULL;
    int rc = run_cmd(argv, NULL, &out, &err, 15000);
    int st = 0;
    waitpid(pid, &st, 0);
    cr_expect_eq(rc, 0, "nudge sub --cafile: %s", err ? err : "");
    cr_expect(out && strstr(out, "\"topic\":\"tls:sub\""), "no hint line: %s", out ? out : "");
    free(out);
    free(err);
    /* not trusting the certificate: refused */
    const char *untrusting[] = {bin, "sub", "--url", url, "--timeout", "5", "tls:sub", NULL};
    rc = run_cmd(untrusting, NULL, NULL, &err, 15000);
    cr_expect_eq(rc, 1, "nudge sub without --cafile: %s", err ? err : "");
    free(err);
    cr_expect_eq(nudged_stop(&d), 0);
    cert_remove(&c);
}

Test(tls, a_client_that_does_not_trust_the_certificate_is_refused)
{
    struct cert c;
    struct nudged d = {0};
    cr_assert_eq(cert_make(&c), 0);
    start_tls(&d, &c, NULL);
    uint64_t seq;
    char err[256] = "";
    /* no cafile: the system's store does not know a self-signed certificate */
    cr_expect_eq(publish_tls(&d, NULL, NULL, "tls:x", &seq, err, sizeof err), NUDGE_ETLS);
    cr_expect(strstr(err, "self-signed"), "error says why: %s", err);
    /* trusted certificate, wrong name */
    cr_expect_eq(publish_tls(&d, c.cert, "example.com", "tls:x", &seq, err, sizeof err),
                 NUDGE_ETLS);
    cr_expect(strstr(err, "mismatch"), "error says why: %s", err);
    struct wsc w;
    cr_expect_eq(wsc_connect_tls(&w, d.ws_port, NULL, SUB_PROTO_JSON, err, sizeof err), WSC_EIO);
    cr_expect(strstr(err, "self-signed"), "wss refusal says why: %s", err);
    /* the refused handshakes count on the publisher port (the client's alert ends them) */
    cr_expect_geq(nudged_wait_stat(&d, "tls_handshake_failures", 2, 3000), 2);
    cr_expect_eq(publish_tls(&d, c.cert, NULL, "tls:x", &seq, err, sizeof err), NUDGE_OK, "%s",
                 err);
    cr_expect_eq(nudged_stop(&d), 0);
    cert_remove(&c);
}

Test(tls, plain_text_on_the_tls_ports_is_closed_and_the_broker_keeps_serving)
{
    struct cert c;
    struct nudged d = {0};
    cr_assert_eq(cert_make(&c), 0);
    start_tls(&d, &c, NULL);
    struct wsc w;
    wss_sub(&w, &d, &c, "tls:plain");
    /* a plain publisher's hello gets no welcome: the connection is closed */
    struct pubraw p;
    cr_expect_neq(pubraw_connect(&p, d.pub_port, 1), 0);
    pubraw_close(&p, 0);
    int fd = tcp_connect(d.pub_port);
    cr_assert(fd >= 0);
    cr_assert_eq(send_all(fd, "\x00\x00\x00\x05hello", 9), 0);
    cr_expect_eq(wait_closed(fd, 3000), 1, "plain bytes on the TLS publisher port left open");
    close(fd);
    /* a plain WebSocket upgrade on the wss port: no 101, closed */
    struct wsc plain;
    int status = -1;
    cr_expect_eq(wsc_connect_ex(&plain, d.ws_port, "/", SUB_PROTO_JSON, &status), WSC_EIO);
    cr_expect_neq(status, 101);
    cr_expect_geq(nudged_wait_stat(&d, "tls_handshake_failures", 2, 3000), 2);
    /* everyone else is still served */
    uint64_t seq;
    char err[256] = "";
    cr_assert_eq(publish_tls(&d, c.cert, NULL, "tls:plain", &seq, err, sizeof err), NUDGE_OK, "%s",
                 err);
    expect_hint(&w, "tls:plain", 1);
    wsc_close(&w, 2000);
    cr_expect_eq(nudged_stop(&d), 0);
    cert_remove(&c);
}

Test(tls, a_handshake_that_never_completes_is_dropped_by_the_hello_timeout)
{
    struct cert c;
    struct nudged d = {0};
    cr_assert_eq(cert_make(&c), 0);
    const char *more[] = {"--hello-timeout", "300", NULL};
    start_tls(&d, &c, more);
    /* the first bytes of a TLS record (handshake, TLS 1.0 record version), then silence */
    static const char start[] = "\x16\x03\x01\x02\x00\x01";
    int fds[2] = {tcp_connect(d.pub_port), tcp_connect(d.ws_port)};
    int64_t t0 = now_ms();
    for (int i = 0; i < 2; i++) {
        cr_assert(fds[i] >= 0);
        cr_assert_eq(send_all(fds[i], start, sizeof start - 1), 0);
    }
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(wait_closed(fds[i], 5000), 1, "%s handshake not dropped", i ? "ws" : "pub");
        close(fds[i]);
    }
    cr_expect_geq(now_ms() - t0, 250, "dropped before --hello-timeout");
    cr_expect_eq(nudged_wait_stat(&d, "connections.ws_pending", 0, 3000), 0);
    cr_expect_eq(nudged_wait_stat(&d, "connections.pub", 0, 3000), 0);
    cr_expect_eq(nudged_stop(&d), 0);
    cert_remove(&c);
}

Test(tls, bad_cert_or_key_files_refuse_to_start_naming_the_file)
{
    struct cert c;
    cr_assert_eq(cert_make(&c), 0);
    char bin[512], missing[160];
    cr_assert_eq(nudge_bin_path("nudged", bin, sizeof bin), 0);
    snprintf(missing, sizeof missing, "%s/missing.pem", c.dir);
    struct {
        const char *cert, *key, *says;
    } cases[] = {
        {missing, c.key, missing},           /* unreadable certificate */
        {c.cert, missing, missing},          /* unreadable key */
        {c.key, c.key, c.key},               /* a key where the certificate should be */
        {c.cert, c.other, "does not match"}, /* key of another certificate */
        {c.cert, NULL, "--tls-key"},         /* only one of the two */
        {NULL, NULL, "--tls-cert"},          /* --tls-listeners alone */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *argv[] = {bin,
                              "--memory",
                              "--pub",
                              "127.0.0.1:0",
                              "--ws",
                              "127.0.0.1:0",
                              "--admin",
                              "127.0.0.1:0",
                              cases[i].cert ? "--tls-cert" : "--tls-listeners",
                              cases[i].cert ? cases[i].cert : "ws",
                              cases[i].key ? "--tls-key" : NULL,
                              cases[i].key,
                              NULL};
        char *err = NULL;
        int rc = run_cmd(argv, NULL, NULL, &err, 15000);
        cr_expect_eq(rc, 2, "case %zu: exit %d (%s)", i, rc, err ? err : "");
        cr_expect(err && strstr(err, cases[i].says), "case %zu: message %s", i, err ? err : "");
        free(err);
    }
    cert_remove(&c);
}

Test(tls, four_workers_serve_tls_on_both_ports)
{
    struct cert c;
    struct nudged d = {0};
    cr_assert_eq(cert_make(&c), 0);
    const char *more[] = {"--workers", "4", NULL};
    start_tls(&d, &c, more);
    enum { NSUB = 8, NPUB = 6 };
    struct wsc w[NSUB];
    for (int i = 0; i < NSUB; i++)
        wss_sub(&w[i], &d, &c, "tls:many");
    for (int k = 1; k <= NPUB; k++) { /* a new connection each: they spread over the workers */
        uint64_t seq = 0;
        char err[256] = "";
        cr_assert_eq(publish_tls(&d, c.cert, NULL, "tls:many", &seq, err, sizeof err), NUDGE_OK,
                     "%s", err);
        cr_assert_eq(seq, (uint64_t)k);
    }
    for (int i = 0; i < NSUB; i++) {
        for (int k = 1; k <= NPUB; k++)
            expect_hint(&w[i], "tls:many", (uint64_t)k);
        wsc_close(&w[i], 2000);
    }
    cr_expect_eq(nudged_stop(&d), 0);
    cert_remove(&c);
}

Test(tls, tls_listeners_pub_leaves_the_websocket_port_plain)
{
    struct cert c;
    struct nudged d = {0};
    cr_assert_eq(cert_make(&c), 0);
    const char *more[] = {"--tls-listeners", "pub", NULL};
    start_tls(&d, &c, more);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), 0, "plain ws refused");
    cr_assert_eq(wsc_subscribe_v(&w, "tls:half", NULL), 0);
    uint64_t seq;
    char err[256] = "";
    cr_assert_eq(publish_tls(&d, c.cert, NULL, "tls:half", &seq, err, sizeof err), NUDGE_OK, "%s",
                 err);
    expect_hint(&w, "tls:half", 1);
    json_t *st = nudged_stats(&d);
    cr_assert(st);
    cr_expect(json_is_false(json_object_get(json_object_get(st, "tls"), "ws")));
    cr_expect(json_is_true(json_object_get(json_object_get(st, "tls"), "pub")));
    json_decref(st);
    wsc_close(&w, 2000);
    cr_expect_eq(nudged_stop(&d), 0);
    cert_remove(&c);
}

/* The batched direct write over TLS: a wss subscriber that stops reading makes lws keep part of
 * a write (OpenSSL could not finish it), the hub coalesces behind it, and once it reads again it
 * gets every change (the hints' counts add up), while a reading subscriber is not held back. */
Test(tls, a_congested_wss_subscriber_is_coalesced_and_catches_up)
{
    struct cert c;
    struct nudged d = {0};
    cr_assert_eq(cert_make(&c), 0);
    const char *more[] = {"--max-queue", "8", NULL};
    start_tls(&d, &c, more);
    char err[256] = "";
    struct wsc slow, fast;
    /* the slow one's window stays small, so the broker's writes stall as soon as it stops */
    int fd = subcheck_small_rcvbuf_socket(d.ws_port);
    cr_assert_eq(wsc_handshake_tls(&slow, fd, d.ws_port, c.cert, SUB_PROTO_JSON, err, sizeof err),
                 0, "%s", err);
    cr_assert_eq(wsc_hello(&slow), 0);
    cr_assert_eq(wsc_subscribe_v(&slow, "tls:slow", NULL), 0);
    wss_sub(&fast, &d, &c, "tls:slow");
    char addr[32], data[1024];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", d.pub_port);
    data[0] = '"';
    memset(data + 1, 'x', 900);
    snprintf(data + 901, sizeof data - 901, "\"");
    struct nudge_opts o = {.timeout_ms = 10000, .tls = 1, .cafile = c.cert};
    nudge_client_t *p = NULL;
    cr_assert_eq(nudge_connect_ex(addr, &o, &p, err, sizeof err), NUDGE_OK, "%s", err);
    enum { N = 3000 };
    const char *t[] = {"tls:slow"};
    struct nudge_pub pb = {.topics = t, .ntopics = 1, .data_json = data};
    uint64_t fast_n = 0, fast_seq = 0;
    for (int i = 0; i < N; i++) {
        cr_assert_eq(nudge_send(p, &pb, NULL), NUDGE_OK, "%s", nudge_last_error(p));
        if (i % 64 == 63 || i == N - 1) { /* collect acks, and let the fast one read */
            while (1) {
                uint64_t id, seq;
                size_t n;
                int rc = nudge_recv_ack(p, &id, &seq, 1, &n);
                if (rc == NUDGE_EINVAL) break; /* none pending */
                cr_assert_eq(rc, NUDGE_OK, "%s", nudge_last_error(p));
            }
            struct sub_msg m;
            while (wsc_recv_msg(&fast, &m, 0) == WSC_OK) {
                if (m.type == SUB_HINT) {
                    fast_n += m.count;
                    fast_seq = m.seq;
                }
                sub_msg_clear(&m);
            }
        }
    }
    nudge_close(p);
    json_t *st = nudged_stats(&d);
    cr_assert(st);
    cr_expect_gt(stats_int(st, "coalesced"), 0, "the slow subscriber was never congested");
    json_decref(st);
    /* It reads again, as a phone back in coverage would. Its 4 KiB receive buffer, kept, would
     * leave loopback TCP (MSS ~64 KiB) sending it a few KiB per delayed ACK or window probe: the
     * megabytes already in the broker's socket buffer could take minutes (measured: 186 KB in
     * 20 s), which is TCP's pace, not the broker's. */
    int big = 4 << 20;
    setsockopt(slow.fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    uint64_t slow_n = 0, slow_seq = 0;
    int64_t until = now_ms() + 20000;
    while ((slow_seq < N || fast_seq < N) && now_ms() < until) {
        struct sub_msg m;
        struct wsc *w[2] = {&slow, &fast};
        for (int k = 0; k < 2; k++) {
            while (wsc_recv_msg(w[k], &m, 50) == WSC_OK) {
                if (m.type == SUB_HINT) {
                    *(k ? &fast_n : &slow_n) += m.count;
                    *(k ? &fast_seq : &slow_seq) = m.seq;
                }
                sub_msg_clear(&m);
            }
        }
    }
    cr_expect_eq(slow_seq, N, "slow subscriber last seq %llu n %llu, fast %llu n %llu",
                 (unsigned long long)slow_seq, (unsigned long long)slow_n,
                 (unsigned long long)fast_seq, (unsigned long long)fast_n);
    cr_expect_eq(slow_n, N, "slow subscriber's hints cover every change");
    cr_expect_eq(fast_seq, N, "fast subscriber's last seq");
    cr_expect_eq(fast_n, N, "fast subscriber's hints cover every change");
    wsc_close(&slow, 2000);
    wsc_close(&fast, 2000);
    cr_expect_eq(nudged_stop(&d), 0);
    cert_remove(&c);
}

/* Two POSTs with bodies in one TLS write on the wss port: lws 4.1.6's HTTP server would loop at
 * 100 % CPU on that in plain text (shared/NOTES.md); over TLS the same refusal must hold: the
 * connection is closed, the broker does not spin, and others are served. */
Test(tls, pipelined_posts_over_tls_on_the_wss_port_are_closed_without_a_stall)
{
    struct cert c;
    struct nudged d = {0};
    cr_assert_eq(cert_make(&c), 0);
    start_tls(&d, &c, NULL);
    int fd = tcp_connect(d.ws_port);
    cr_assert(fd >= 0);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv); /* bounds the blocking TLS calls */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    cr_assert(ctx && SSL_CTX_load_verify_locations(ctx, c.cert, NULL) == 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(ctx);
    cr_assert(ssl && SSL_set_fd(ssl, fd) == 1);
    cr_assert_eq(SSL_connect(ssl), 1, "TLS handshake with the wss port");
    const char two[] = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                       "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nworld";
    cr_assert_eq(SSL_write(ssl, two, (int)sizeof two - 1), (int)sizeof two - 1);
    char buf[512];
    int64_t t0 = now_ms();
    int n;
    while ((n = SSL_read(ssl, buf, sizeof buf)) > 0 && now_ms() - t0 < 3000) {
    }
    cr_expect_leq(n, 0, "the connection stayed open");
    cr_expect_lt(now_ms() - t0, 3000, "not closed within 3 s");
    int64_t cpu0 = nudged_cpu_ms(&d), w0 = now_ms();
    struct wsc w;
    wss_sub(&w, &d, &c, "tls:post");
    uint64_t seq;
    char err[256] = "";
    cr_assert_eq(publish_tls(&d, c.cert, NULL, "tls:post", &seq, err, sizeof err), NUDGE_OK, "%s",
                 err);
    expect_hint(&w, "tls:post", 1);
    sleep_ms(500);
    int64_t cpu = nudged_cpu_ms(&d) - cpu0, wall = now_ms() - w0;
    cr_expect_lt(cpu, wall / 2, "broker burnt %lld ms CPU in %lld ms", (long long)cpu,
                 (long long)wall);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    wsc_close(&w, 2000);
    cr_expect_eq(nudged_stop(&d), 0);
    cert_remove(&c);
}

/* Send req over ssl and read until the peer closes or want bytes of body have come. Returns the
 * bytes read into buf (NUL-terminated). */
static size_t https_exchange(SSL *ssl, const char *req, char *buf, size_t cap)
{
    cr_assert_eq(SSL_write(ssl, req, (int)strlen(req)), (int)strlen(req));
    size_t n = 0;
    int64_t t0 = now_ms();
    while (n + 1 < cap && now_ms() - t0 < 3000) {
        int got = SSL_read(ssl, buf + n, (int)(cap - 1 - n));
        if (got <= 0) break;
        n += (size_t)got;
        buf[n] = '\0';
        if (strstr(buf, "}}") || strstr(buf, "]}")) break; /* one JSON answer is whole */
    }
    buf[n] = '\0';
    return n;
}

Test(tls, the_http_publish_port_speaks_https_and_refuses_plain_text)
{
    struct cert c;
    struct nudged d = {0};
    cr_assert_eq(cert_make(&c), 0);
    start_tls(&d, &c, NULL);
    cr_assert_neq(d.http_port, 0);
    struct wsc w;
    wss_sub(&w, &d, &c, "tls:http");
    int fd = tcp_connect(d.http_port);
    cr_assert(fd >= 0);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    cr_assert(ctx && SSL_CTX_load_verify_locations(ctx, c.cert, NULL) == 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL *ssl = SSL_new(ctx);
    cr_assert(ssl && SSL_set_fd(ssl, fd) == 1);
    cr_assert_eq(SSL_connect(ssl), 1, "TLS handshake with the http port");
    const char req[] = "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 23\r\n\r\n{\"topics\":[\"tls:http\"]}";
    char buf[2048];
    https_exchange(ssl, req, buf, sizeof buf);
    cr_expect(strncmp(buf, "HTTP/1.1 200 ", 13) == 0 && strstr(buf, "{\"seqs\":[1]}"), "%s", buf);
    https_exchange(ssl, req, buf, sizeof buf); /* kept alive, over TLS */
    cr_expect(strstr(buf, "{\"seqs\":[2]}"), "%s", buf);
    expect_hint(&w, "tls:http", 1);
    expect_hint(&w, "tls:http", 2);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    /* plain text on the TLS port: closed, not answered as HTTP */
    size_t n = 0;
    char *resp = http_raw(d.http_port, req, sizeof req - 1, &n, 3000);
    cr_assert_not_null(resp);
    cr_expect(strstr(resp, "seqs") == NULL, "a plain request was served: %s", resp);
    free(resp);
    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st);
    cr_expect_geq(stats_int(st, "tls_handshake_failures"), 1);
    cr_expect(json_is_true(json_object_get(json_object_get(st, "tls"), "http")));
    json_decref(st);
    wsc_close(&w, 2000);
    cr_expect_eq(nudged_stop(&d), 0);
    cert_remove(&c);
}

Test(tls, tls_listeners_without_http_leaves_the_http_port_plain)
{
    struct cert c;
    struct nudged d = {0};
    cr_assert_eq(cert_make(&c), 0);
    const char *more[] = {"--tls-listeners", "ws,pub", NULL};
    start_tls(&d, &c, more);
    const char req[] = "POST /publish HTTP/1.1\r\nContent-Type: application/json\r\n"
                       "Content-Length: 17\r\nConnection: close\r\n\r\n{\"topics\":[\"pl\"]}";
    char *resp = http_raw(d.http_port, req, sizeof req - 1, NULL, 3000);
    cr_assert_not_null(resp);
    cr_expect(strstr(resp, "{\"seqs\":[1]}"), "%s", resp);
    free(resp);
    cr_expect_eq(nudged_stop(&d), 0);
    cert_remove(&c);
}

/* Copy file from to file to (replacing it, as a certificate renewal does). */
static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    cr_assert(in && out, "%s -> %s", from, to);
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        cr_assert_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
}

Test(tls, a_sighup_loads_a_renewed_certificate_for_new_connections_and_keeps_the_open_ones)
{
    struct cert a, b;
    cr_assert_eq(cert_make(&a), 0);
    cr_assert_eq(cert_make(&b), 0);
    char live_cert[160], live_key[160];
    snprintf(live_cert, sizeof live_cert, "%s/live-cert.pem", a.dir);
    snprintf(live_key, sizeof live_key, "%s/live-key.pem", a.dir);
    copy_file(a.cert, live_cert);
    copy_file(a.key, live_key);
    struct nudged d = {0};
    const char *args[] = {"--tls-cert", live_cert, "--tls-key", live_key, NULL};
    cr_assert_eq(nudged_start(&d, args), 0);
    struct wsc old;
    wss_sub(&old, &d, &a, "tls:renew");
    /* the renewal: new files at the same paths, then SIGHUP */
    copy_file(b.cert, live_cert);
    copy_file(b.key, live_key);
    cr_assert_eq(nudged_signal(&d, SIGHUP), 0);
    cr_assert_eq(nudged_wait_stat(&d, "reloads.ok", 1, 10000), 1);
    uint64_t seq = 0;
    char err[256] = "";
    for (int i = 0; i < 6; i++) { /* new connections, over every worker */
        cr_expect_eq(publish_tls(&d, a.cert, NULL, "tls:renew", &seq, err, sizeof err), NUDGE_ETLS,
                     "the old certificate is no longer served (%d)", i);
        cr_assert_eq(publish_tls(&d, b.cert, NULL, "tls:renew", &seq, err, sizeof err), NUDGE_OK,
                     "the renewed one is (%d): %s", i, err);
        expect_hint(&old, "tls:renew", seq); /* the open connection kept its TLS session */
        struct wsc w;
        cr_expect_eq(wsc_connect_tls(&w, d.ws_port, b.cert, SUB_PROTO_JSON, err, sizeof err), 0,
                     "wss with the renewed certificate (%d): %s", i, err);
        wsc_free(&w, 1);
    }
    wsc_close(&old, 2000);
    cr_expect_eq(nudged_stop(&d), 0);
    unlink(live_cert);
    unlink(live_key);
    cert_remove(&a);
    cert_remove(&b);
}
