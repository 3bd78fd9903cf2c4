/* libnudge's fail-open outbox (nudge_outbox_*, clients/c/outbox.c) against the real nudged:
 * a broker that is down, full, stalled (SIGSTOP) or refusing never makes a publish fail or
 * stall past its timeouts; what waited is published when the broker is back; one log line per
 * outage start and end. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cert.h"
#include "harness.h"
#include "nudge.h"

struct logcap {
    int down, back, refused, other;
    char last[400];
};

static void capture(void *arg, const char *line)
{
    struct logcap *l = arg;
    if (strstr(line, "unreachable"))
        l->down++;
    else if (strstr(line, " back after "))
        l->back++;
    else if (strstr(line, "refused"))
        l->refused++;
    else
        l->other++;
    snprintf(l->last, sizeof l->last, "%s", line);
}

/* nudged in memory, one worker, publishers on 127.0.0.1:pub (0: any port). */
static void start_on(struct nudged *d, uint16_t pub, const char *keys)
{
    char bin[512], addr[32];
    cr_assert_eq(nudge_bin_path("nudged", bin, sizeof bin), 0);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)pub);
    const char *args[] = {
        "--pub",       addr,       "--ws",      "127.0.0.1:0", "--admin",
        "127.0.0.1:0", "--memory", "--workers", "1",           keys ? "--pub-keys" : NULL,
        keys,          NULL};
    cr_assert_eq(nudged_start_ex(d, bin, 0, args), 0, "nudged starts on %s", addr);
}

static nudge_outbox_t *outbox(uint16_t port, struct logcap *l, size_t max, int ack_ms,
                              const char *key)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
    struct nudge_outbox_opts o = {.conn = {.timeout_ms = 300, .api_key = key},
                                  .ack_timeout_ms = ack_ms,
                                  .buffer_max = max,
                                  .log = capture,
                                  .log_arg = l};
    nudge_outbox_t *ob = NULL;
    cr_assert_eq(nudge_outbox_new(addr, &o, &ob), NUDGE_OK);
    return ob;
}

static int64_t publish_one(nudge_outbox_t *ob, const char *topic, uint64_t *seq)
{
    const char *t[] = {topic};
    struct nudge_pub p = {.topics = t, .ntopics = 1, .data_json = "{\"k\":1}"};
    int64_t t0 = now_ms();
    *seq = 99;
    cr_assert_eq(nudge_outbox_publish(ob, &p, seq), NUDGE_OK,
                 "a publish never fails for the broker");
    return now_ms() - t0;
}

/* The port of a broker that was started and stopped again: nothing listens there now. */
static uint16_t dead_port(void)
{
    struct nudged d = {0};
    start_on(&d, 0, NULL);
    uint16_t port = d.pub_port;
    nudged_stop(&d);
    return port;
}

/* Publish until one is acknowledged (the outbox retries connecting on a backoff), up to 5 s. */
static uint64_t publish_until_acked(nudge_outbox_t *ob, const char *topic)
{
    uint64_t seq = 0;
    for (int64_t end = now_ms() + 5000; now_ms() < end; sleep_ms(50)) {
        if (nudge_outbox_flush(ob) != NUDGE_OK) continue;
        publish_one(ob, topic, &seq);
        if (seq) return seq;
    }
    return 0;
}

Test(outbox,
     a_broker_that_is_down_costs_the_app_nothing_and_what_waited_is_published_when_it_is_back,
     .timeout = 60)
{
    struct nudged d = {0};
    uint16_t port = dead_port();
    struct logcap l = {0};
    nudge_outbox_t *ob = outbox(port, &l, 0, 1000, NULL);
    uint64_t seq;
    for (int i = 0; i < 3; i++) {
        int64_t ms = publish_one(ob, "doc:1", &seq);
        cr_expect_eq(seq, 0, "not acknowledged: seq 0");
        cr_expect_lt(ms, 400, "publish %d returned after %lld ms with the broker down", i,
                     (long long)ms);
    }
    struct nudge_outbox_stats st;
    nudge_outbox_stats(ob, &st);
    cr_expect_eq(st.buffered, 3);
    cr_expect_eq(st.outages, 1);
    cr_expect_eq(l.down, 1, "one log line for the outage, not one per publish (%d)", l.down);
    cr_expect_eq(l.back, 0);

    start_on(&d, port, NULL); /* a new broker on the same port: seqs start at 1 */
    seq = publish_until_acked(ob, "doc:1");
    cr_expect_eq(seq, 4, "the three that waited went first: this one is the 4th (got %llu)",
                 (unsigned long long)seq);
    nudge_outbox_stats(ob, &st);
    cr_expect_eq(st.buffered, 0);
    cr_expect_eq(st.acked, 4);
    cr_expect_eq(st.dropped, 0);
    cr_expect_eq(l.down, 1);
    cr_expect_eq(l.back, 1, "one line when it ends: %s", l.last);
    cr_expect(strstr(l.last, "3 publishes flushed") || strstr(l.last, "4 publishes flushed"), "%s",
              l.last);
    nudge_outbox_close(ob);
    nudged_stop(&d);
}

Test(outbox, a_full_buffer_drops_the_oldest_and_counts_them, .timeout = 60)
{
    struct nudged d = {0};
    uint16_t port = dead_port();
    struct logcap l = {0};
    nudge_outbox_t *ob = outbox(port, &l, 5, 1000, NULL);
    char topic[16];
    uint64_t seq;
    for (int i = 0; i < 8; i++) {
        snprintf(topic, sizeof topic, "t:%d", i);
        publish_one(ob, topic, &seq);
    }
    struct nudge_outbox_stats st;
    nudge_outbox_stats(ob, &st);
    cr_expect_eq(st.buffered, 5);
    cr_expect_eq(st.dropped, 3);

    start_on(&d, port, NULL);
    int rc = NUDGE_ECONNECT;
    for (int64_t end = now_ms() + 5000; rc != NUDGE_OK && now_ms() < end; sleep_ms(50))
        rc = nudge_outbox_flush(ob);
    cr_assert_eq(rc, NUDGE_OK, "flushed once the broker is back");
    /* The oldest three never reached the broker: their next seq is 1; the other five's is 2. */
    nudge_client_t *c = NULL;
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)port);
    cr_assert_eq(nudge_connect(addr, NULL, &c), NUDGE_OK);
    for (int i = 0; i < 8; i++) {
        snprintf(topic, sizeof topic, "t:%d", i);
        const char *t[] = {topic};
        cr_assert_eq(nudge_publish(c, t, 1, NULL, &seq), NUDGE_OK);
        cr_expect_eq(seq, i < 3 ? 1u : 2u, "%s: seq %llu", topic, (unsigned long long)seq);
    }
    nudge_close(c);
    nudge_outbox_close(ob);
    nudged_stop(&d);
}

Test(outbox, a_stalled_broker_costs_at_most_the_ack_timeout_and_gets_everything_after_it_resumes,
     .timeout = 60)
{
    struct nudged d = {0};
    start_on(&d, 0, NULL);
    struct logcap l = {0};
    nudge_outbox_t *ob = outbox(d.pub_port, &l, 0, 300, NULL);
    uint64_t seq, seqs[3];
    publish_one(ob, "job:1", &seq);
    cr_assert_eq(seq, 1);

    cr_assert_eq(nudged_signal(&d, SIGSTOP), 0);
    int64_t ms[3];
    for (int i = 0; i < 3; i++)
        ms[i] = publish_one(ob, "job:1", &seqs[i]);
    nudged_signal(&d, SIGCONT); /* before any assertion can end the test */
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(seqs[i], 0);
        cr_expect_lt(ms[i], 1000, "publish %d during the stall took %lld ms (ack timeout 300)", i,
                     (long long)ms[i]);
    }
    cr_expect_eq(l.down, 1, "one log line for the stall (%d)", l.down);

    seq = publish_until_acked(ob, "job:1");
    /* At least once: the publish written before the stall was noticed may be processed by the
     * broker and sent again by the outbox. Nothing is lost. */
    cr_expect_geq(seq, 5, "1 + 3 during the stall + this one: seq %llu", (unsigned long long)seq);
    cr_expect_eq(l.back, 1);
    struct nudge_outbox_stats st;
    nudge_outbox_stats(ob, &st);
    cr_expect_eq(st.buffered, 0);
    nudge_outbox_close(ob);
    nudged_stop(&d);
}

Test(outbox, a_refused_publish_is_logged_and_counted_not_returned_as_the_apps_error, .timeout = 60)
{
    char keys[] = "/tmp/nudge-outbox-keys-XXXXXX";
    int fd = mkstemp(keys);
    cr_assert_geq(fd, 0);
    const char line[] = "app 0123456789abcdef0123 app:**\n";
    cr_assert_eq(write(fd, line, sizeof line - 1), (ssize_t)(sizeof line - 1));
    close(fd);
    struct nudged d = {0};
    start_on(&d, 0, keys);
    struct logcap l = {0};
    nudge_outbox_t *ob = outbox(d.pub_port, &l, 0, 1000, "0123456789abcdef0123");
    uint64_t seq;
    publish_one(ob, "other:1", &seq);
    cr_expect_eq(seq, 0);
    publish_one(ob, "app:1", &seq);
    cr_expect_eq(seq, 1, "the next publish is not held up by the refused one");
    struct nudge_outbox_stats st;
    nudge_outbox_stats(ob, &st);
    cr_expect_eq(st.refused, 1);
    cr_expect_eq(st.buffered, 0);
    cr_expect_eq(l.refused, 1, "%s", l.last);
    cr_expect_eq(l.down, 0);

    /* A bad publish is the app's bug: an error at once, nothing buffered. */
    const char *bad[] = {"has space"};
    struct nudge_pub p = {.topics = bad, .ntopics = 1};
    cr_expect_eq(nudge_outbox_publish(ob, &p, NULL), NUDGE_EINVAL);
    const char *ok[] = {"app:2"};
    p = (struct nudge_pub){.topics = ok, .ntopics = 1, .data_json = "{not json"};
    cr_expect_eq(nudge_outbox_publish(ob, &p, NULL), NUDGE_EINVAL);
    p = (struct nudge_pub){.topics = ok, .ntopics = 0};
    cr_expect_eq(nudge_outbox_publish(ob, &p, NULL), NUDGE_EINVAL);
    nudge_outbox_stats(ob, &st);
    cr_expect_eq(st.buffered, 0);
    nudge_outbox_close(ob);
    nudged_stop(&d);
    unlink(keys);
}

Test(outbox,
     over_tls_it_publishes_with_the_trusted_certificate_and_treats_an_untrusted_one_as_an_outage,
     .timeout = 60)
{
    struct cert crt, other;
    cr_assert_eq(cert_make(&crt), 0);
    cr_assert_eq(cert_make(&other), 0);
    const char *args[] = {"--memory", "--tls-cert", crt.cert, "--tls-key", crt.key, NULL};
    struct nudged d = {0};
    cr_assert_eq(nudged_start(&d, args), 0);
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)d.pub_port);
    uint64_t seq;
    for (int trusted = 1; trusted >= 0; trusted--) {
        struct logcap l = {0};
        struct nudge_outbox_opts o = {
            .conn = {.timeout_ms = 1000, .tls = 1, .cafile = trusted ? crt.cert : other.cert},
            .ack_timeout_ms = 1000,
            .log = capture,
            .log_arg = &l};
        nudge_outbox_t *ob = NULL;
        cr_assert_eq(nudge_outbox_new(addr, &o, &ob), NUDGE_OK);
        publish_one(ob, "tls:1", &seq);
        struct nudge_outbox_stats st;
        nudge_outbox_stats(ob, &st);
        if (trusted) {
            cr_expect_eq(seq, 1, "published over TLS");
            cr_expect_eq(l.down, 0);
        } else {
            cr_expect_eq(seq, 0, "an untrusted broker gets nothing");
            cr_expect_eq(st.buffered, 1);
            cr_expect_eq(l.down, 1, "the failed verification is an outage: %s", l.last);
            cr_expect(strstr(l.last, "certificate") || strstr(l.last, "TLS") ||
                          strstr(l.last, "verify"),
                      "the log says why: %s", l.last);
        }
        nudge_outbox_close(ob);
    }
    nudged_stop(&d);
    cert_remove(&crt);
    cert_remove(&other);
}
