/* Threads: a broker with four workers under traffic that crosses them all at once — publishers on
 * several connections (so on several workers, the kernel spreading each port's connections over
 * the workers' sockets), subscribers of exact topics and of patterns on the others, a connection
 * that subscribes, resumes and unsubscribes while hints flow, /stats read all the while, and a
 * shutdown in the middle of a flood. Every publish reaches the engine, and so every hub's inbox,
 * from whichever worker read it; subscribes drain their hub's inbox under the engine lock.
 *
 * These tests are the driver of the ThreadSanitizer step of `make test` (docs/operations.md): most
 * other tests do one thing at a time, and a data race needs two threads touching the same memory
 * close together. Under ASan they check the delivery contract with every worker busy: per
 * connection and topic, seqs only grow, and a hint stands for exactly the seqs since the previous
 * one (seq = previous + n, "n" absent meaning 1); at the end every subscriber has the final seq
 * of each of its topics.
 *
 * Test-side threads never call cr_assert: each writes what went wrong into its own struct, and
 * the test's thread asserts after joining it. */
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "nudge.h"
#include "subcheck.h"
#include "wsc.h"

#define NTOPICS 8 /* t:0..t:5 plain, hot:0 and hot:1 under a coalescing window */
#define NPLAIN 6
#define NPUBS 4
#define NEXACT 6      /* subscribers of every topic */
#define NPATTERN 2    /* subscribers of "t:*" and of "**" */
#define PUBLISHES 400 /* per publisher, two topics each */

static const char *const topics[NTOPICS] = {"t:0", "t:1", "t:2",   "t:3",
                                            "t:4", "t:5", "hot:0", "hot:1"};
static const char *const args[] = {"--workers", "4", "--coalesce", "hot:*=20", NULL};

/* cr_assert that first shows the end of the broker's log when it fails: a broker that died of a
 * sanitizer report (the TSan step of make test halts on the first) explains the failure there.
 * cond is evaluated twice: no side effects. */
#define check(d, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) nudged_dump_log((d), 8000);                                                   \
        cr_assert((cond), __VA_ARGS__);                                                            \
    } while (0)

static int topic_index(struct wire_str t)
{
    for (int i = 0; i < NTOPICS; i++)
        if (wstr_eq(t, topics[i])) return i;
    return -1;
}

/* ---- publishers ---------------------------------------------------------------------------- */

struct pubth {
    pthread_t th;
    const struct nudged *d;
    int index;
    int count; /* publishes to make; 0 = until *stop */
    const atomic_int *stop;
    uint64_t last[NTOPICS]; /* highest seq acked per topic */
    atomic_int done;        /* publishes acked (read by the test's thread while it runs) */
    char why[256];          /* first failure, "" = none */
};

/* Publish to one plain topic and one windowed topic per request, rotating, every third with
 * data; a stop request or a lost connection ends the loop (the caller decides if that is ok). */
static void *publisher(void *arg)
{
    struct pubth *p = arg;
    char addr[64], name[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)p->d->pub_port);
    snprintf(name, sizeof name, "threads-pub-%d", p->index);
    struct nudge_opts o = {.client_name = name, .timeout_ms = 20000};
    nudge_client_t *c = NULL;
    int rc = nudge_connect_ex(addr, &o, &c, p->why, sizeof p->why);
    if (rc != NUDGE_OK) return NULL;
    for (int i = 0; p->count == 0 || i < p->count; i++) {
        if (atomic_load(p->stop)) break;
        int a = (i + p->index) % NPLAIN, b = NPLAIN + (i + p->index) % 2;
        const char *ts[2] = {topics[a], topics[b]};
        uint64_t seqs[2] = {0, 0};
        rc = nudge_publish(c, ts, 2, i % 3 == 0 ? "{\"by\":7,\"why\":\"edit\"}" : NULL, seqs);
        if (rc != NUDGE_OK) {
            snprintf(p->why, sizeof p->why, "publish %d: %s: %s", i, nudge_strerror(rc),
                     nudge_last_error(c));
            break;
        }
        if (seqs[0] > p->last[a]) p->last[a] = seqs[0];
        if (seqs[1] > p->last[b]) p->last[b] = seqs[1];
        atomic_fetch_add(&p->done, 1);
    }
    nudge_close(c);
    return NULL;
}

static void start_publishers(struct pubth *p, const struct nudged *d, int count,
                             const atomic_int *stop)
{
    for (int i = 0; i < NPUBS; i++) {
        p[i] = (struct pubth){.d = d, .index = i, .count = count, .stop = stop};
        atomic_init(&p[i].done, 0);
        cr_assert_eq(pthread_create(&p[i].th, NULL, publisher, &p[i]), 0);
    }
}

/* ---- what a connection knows of each topic ------------------------------------------------- */

struct track {
    uint64_t last[NTOPICS]; /* the connection's position per topic */
    int fresh[NTOPICS];     /* 1: the next hint is the first of a pattern (any n) */
    uint64_t hints;
};

/* Apply hint m; on a contract violation write why and return -1. */
static int track_hint(struct track *t, const struct sub_msg *m, const char *who, char *why,
                      size_t cap)
{
    int i = topic_index(m->topic);
    uint64_t n = m->count ? m->count : 1;
    if (i < 0) {
        snprintf(why, cap, "%s: hint of unknown topic %.*s", who, (int)m->topic.len, m->topic.p);
        return -1;
    }
    if (m->seq <= t->last[i] || (!t->fresh[i] && m->seq != t->last[i] + n)) {
        snprintf(why, cap, "%s: %s seq %llu n %llu after %llu: %s", who, topics[i],
                 (unsigned long long)m->seq, (unsigned long long)n, (unsigned long long)t->last[i],
                 m->seq <= t->last[i] ? "duplicate or out of order" : "gap or overlap");
        return -1;
    }
    t->last[i] = m->seq;
    t->fresh[i] = 0;
    t->hints++;
    return 0;
}

/* ---- /stats, read all the while ------------------------------------------------------------ */

struct statsth {
    pthread_t th;
    const struct nudged *d;
    const atomic_int *stop;
    int reads;
    char why[256];
};

static void *stats_reader(void *arg)
{
    struct statsth *s = arg;
    int64_t last = 0;
    while (!atomic_load(s->stop)) {
        json_t *st = nudged_stats(s->d);
        if (!st) {
            snprintf(s->why, sizeof s->why, "/stats did not answer");
            return NULL;
        }
        int64_t w = stats_int(st, "workers"), p = stats_int(st, "publishes");
        json_decref(st);
        if (w != 4 || p < last) {
            snprintf(s->why, sizeof s->why, "/stats: workers %lld, publishes %lld after %lld",
                     (long long)w, (long long)p, (long long)last);
            return NULL;
        }
        last = p;
        s->reads++;
        sleep_ms(5);
    }
    return NULL;
}

/* ---- a connection that subscribes, resumes and unsubscribes while hints flow ---------------- */

struct churnth {
    pthread_t th;
    const struct nudged *d;
    const atomic_int *stop;
    int rounds;
    uint64_t replayed, resets;
    char why[256];
};

static int send_req(struct wsc *w, int unsub, uint64_t id, const char *topic, const char *epoch,
                    uint64_t pos)
{
    struct wire_str t = {topic, (uint32_t)strlen(topic)};
    uint8_t has = 1;
    struct wire_buf b = {0};
    int rc = unsub ? sub_encode_unsubscribe(w->fmt, &b, id, &t, 1)
                   : sub_encode_subscribe(w->fmt, &b, id, &t, 1, epoch, epoch ? &has : NULL,
                                          epoch ? &pos : NULL, 0);
    if (rc == 0) rc = wsc_send_msg(w, b.data, b.len);
    wire_buf_free(&b);
    return rc;
}

/* Receive on w, applying every message to t, until the reply of type want to request id (then
 * *seq = its seq) or, with want 0, for ms milliseconds. gone[i]: topic i was unsubscribed, a hint
 * of it is a violation. Returns 0, or -1 with why written. */
static int churn_recv(struct churnth *ch, struct wsc *w, struct track *t, const int *gone,
                      enum sub_type want, uint64_t id, uint64_t *seq, int ms)
{
    int64_t end = now_ms() + (want ? 20000 : ms);
    for (;;) {
        int64_t left = end - now_ms();
        if (left <= 0) {
            if (!want) return 0;
            snprintf(ch->why, sizeof ch->why, "churn: no reply to request %llu",
                     (unsigned long long)id);
            return -1;
        }
        struct sub_msg m;
        int rc = wsc_recv_msg(w, &m, (int)left);
        if (rc == WSC_TIMEOUT) continue;
        if (rc != WSC_OK) {
            snprintf(ch->why, sizeof ch->why, "churn: receive failed (%d, close %u %s)", rc,
                     (unsigned)w->close_code, w->close_reason);
            return -1;
        }
        int bad = 0, i = topic_index(m.topic);
        if (m.type == SUB_HINT) {
            if (i >= 0 && gone[i]) {
                snprintf(ch->why, sizeof ch->why, "churn: hint of %s after unsubscribed",
                         topics[i]);
                bad = 1;
            } else {
                bad = track_hint(t, &m, "churn", ch->why, sizeof ch->why) < 0;
            }
        } else if (m.type == SUB_RESET && i >= 0) {
            t->last[i] = m.seq; /* stands for everything up to its seq */
            ch->resets++;
        } else if (m.type == want && m.has_id && m.id == id) {
            *seq = m.seq;
            sub_msg_clear(&m);
            return 0;
        } else if (m.type != SUB_PONG) {
            snprintf(ch->why, sizeof ch->why, "churn: unexpected %s", subcheck_type_name(m.type));
            bad = 1;
        }
        sub_msg_clear(&m);
        if (bad) return -1;
    }
}

/* Round after round: resume t:0 from the position it left off at (a replay or a reset, then
 * live), take the pattern hot:* and drop it again, drop t:0. */
static void *churner(void *arg)
{
    struct churnth *ch = arg;
    struct wsc w;
    struct track t = {0};
    int gone[NTOPICS] = {0};
    uint64_t id = 1, seq;
    if (wsc_open(&w, ch->d->ws_port, SUB_PROTO_MSGPACK) != WSC_OK) {
        snprintf(ch->why, sizeof ch->why, "churn: connect failed");
        return NULL;
    }
    for (int i = 0; i < NTOPICS; i++)
        gone[i] = 1;
    int first = 1;
    while (!atomic_load(ch->stop)) {
        /* t:0, fresh the first time, then resumed from where this connection left it. */
        uint64_t pos = t.last[0];
        if (send_req(&w, 0, id, "t:0", first ? NULL : w.epoch, pos) != 0) goto io;
        gone[0] = 0;
        if (churn_recv(ch, &w, &t, gone, SUB_SUBSCRIBED, id++, &seq, 0) < 0) goto out;
        if (first) t.last[0] = seq;
        if (!first && seq > pos) ch->replayed += seq - pos;
        first = 0;
        if (churn_recv(ch, &w, &t, gone, 0, 0, &seq, 15) < 0) goto out;
        /* hot:*: a pattern's first hint of each topic counts from when it went live. */
        if (send_req(&w, 0, id, "hot:*", NULL, 0) != 0) goto io;
        gone[6] = gone[7] = 0;
        t.fresh[6] = t.fresh[7] = 1;
        t.last[6] = t.last[7] = 0;
        if (churn_recv(ch, &w, &t, gone, SUB_SUBSCRIBED, id++, &seq, 0) < 0) goto out;
        if (churn_recv(ch, &w, &t, gone, 0, 0, &seq, 15) < 0) goto out;
        if (send_req(&w, 1, id, "hot:*", NULL, 0) != 0) goto io;
        if (churn_recv(ch, &w, &t, gone, SUB_UNSUBSCRIBED, id++, &seq, 0) < 0) goto out;
        gone[6] = gone[7] = 1;
        if (send_req(&w, 1, id, "t:0", NULL, 0) != 0) goto io;
        if (churn_recv(ch, &w, &t, gone, SUB_UNSUBSCRIBED, id++, &seq, 0) < 0) goto out;
        gone[0] = 1;
        ch->rounds++;
    }
    goto out;
io:
    snprintf(ch->why, sizeof ch->why, "churn: send failed");
out:
    wsc_free(&w, 0);
    return NULL;
}

/* ---- subscribers read by the test's thread ------------------------------------------------- */

struct subr {
    struct wsc w;
    struct track t;
    const char *pattern; /* NULL: every topic exactly */
    int covers[NTOPICS];
};

static void open_subscribers(struct subr *s, int n, const struct nudged *d)
{
    for (int k = 0; k < n; k++) {
        cr_assert_eq(wsc_open(&s[k].w, d->ws_port, k % 2 ? SUB_PROTO_MSGPACK : SUB_PROTO_JSON),
                     WSC_OK, "subscriber %d connect", k);
        if (k >= NEXACT) {
            s[k].pattern = k == NEXACT ? "t:*" : "**";
            uint64_t seq;
            cr_assert_eq(wsc_subscribe(&s[k].w, &s[k].pattern, 1, &seq), WSC_OK);
            for (int i = 0; i < NTOPICS; i++)
                s[k].covers[i] = k == NEXACT ? i < NPLAIN : 1;
            continue;
        }
        uint64_t seqs[NTOPICS];
        cr_assert_eq(wsc_subscribe(&s[k].w, topics, NTOPICS, seqs), WSC_OK);
        for (int i = 0; i < NTOPICS; i++) {
            cr_assert_eq(seqs[i], 0, "fresh topic %s subscribed at 0", topics[i]);
            s[k].covers[i] = 1;
        }
    }
}

/* Read whatever the subscribers have (up to wait_ms for the first bytes), checking every hint. */
static void read_subscribers(const struct nudged *d, struct subr *s, int n, int wait_ms)
{
    struct pollfd pf[NEXACT + NPATTERN];
    for (int k = 0; k < n; k++)
        pf[k] = (struct pollfd){.fd = s[k].w.fd, .events = POLLIN};
    poll(pf, (nfds_t)n, wait_ms);
    for (int k = 0; k < n; k++) {
        struct sub_msg m;
        int rc;
        while ((rc = wsc_recv_msg(&s[k].w, &m, 0)) == WSC_OK) {
            char why[256] = "", who[32];
            snprintf(who, sizeof who, "subscriber %d (%s)", k,
                     s[k].pattern ? s[k].pattern : "exact");
            if (m.type == SUB_HINT)
                track_hint(&s[k].t, &m, who, why, sizeof why);
            else if (m.type != SUB_PONG)
                snprintf(why, sizeof why, "%s: unexpected %s", who, subcheck_type_name(m.type));
            sub_msg_clear(&m);
            check(d, !why[0], "%s", why);
        }
        check(d, rc == WSC_TIMEOUT, "subscriber %d: receive failed (%d, close %u %s)", k, rc,
              (unsigned)s[k].w.close_code, s[k].w.close_reason);
    }
}

/* Whether every subscriber has the final seq of each topic it covers. */
static int all_caught_up(const struct subr *s, int n, const uint64_t *final)
{
    for (int k = 0; k < n; k++)
        for (int i = 0; i < NTOPICS; i++)
            if (s[k].covers[i] && s[k].t.last[i] != final[i]) return 0;
    return 1;
}

/* ---- tests --------------------------------------------------------------------------------- */

Test(threads, hints_published_on_every_worker_reach_every_subscriber_in_order)
{
    struct nudged d;
    subcheck_start(&d, args);
    struct subr subs[NEXACT + NPATTERN];
    memset(subs, 0, sizeof subs);
    int nsubs = NEXACT + NPATTERN;
    open_subscribers(subs, nsubs, &d);
    /* The kernel hashes each connection to a worker: with 8 of them, all on one worker has odds
     * of 1 in 16,384, and would leave nothing crossing threads but the publishers. */
    json_t *js = nudged_stats(&d);
    cr_assert_not_null(js);
    json_t *pw = json_object_get(js, "per_worker");
    int busy = 0;
    for (size_t i = 0; i < json_array_size(pw); i++)
        busy += stats_int(json_array_get(pw, i), "ws") > 0;
    json_decref(js);
    cr_assert_geq(busy, 2, "subscribers on %d of 4 workers", busy);

    atomic_int stop_side, no_stop;
    atomic_init(&stop_side, 0);
    atomic_init(&no_stop, 0);
    struct statsth st = {.d = &d, .stop = &stop_side};
    struct churnth ch = {.d = &d, .stop = &stop_side};
    cr_assert_eq(pthread_create(&st.th, NULL, stats_reader, &st), 0);
    cr_assert_eq(pthread_create(&ch.th, NULL, churner, &ch), 0);
    struct pubth pubs[NPUBS];
    start_publishers(pubs, &d, PUBLISHES, &no_stop);

    /* Read while they publish: a subscriber that stops reading would only make the broker
     * coalesce for it, and the point is hints crossing threads as they are made. */
    uint64_t final[NTOPICS] = {0};
    int finished = 0;
    for (int i = 0; i < NPUBS; i++) {
        while (pthread_tryjoin_np(pubs[i].th, NULL) != 0)
            read_subscribers(&d, subs, nsubs, 10);
        check(&d, !pubs[i].why[0], "publisher %d: %s", i, pubs[i].why);
        check(&d, atomic_load(&pubs[i].done) == PUBLISHES, "publisher %d: %d acked", i,
              atomic_load(&pubs[i].done));
        for (int t = 0; t < NTOPICS; t++)
            if (pubs[i].last[t] > final[t]) final[t] = pubs[i].last[t];
        finished++;
    }
    cr_assert_eq(finished, NPUBS);
    /* Two topics per publish: the plain ones share NPUBS * PUBLISHES seqs, so do the hot ones. */
    uint64_t plain = 0, hot = 0;
    for (int t = 0; t < NTOPICS; t++)
        *(t < NPLAIN ? &plain : &hot) += final[t];
    cr_assert_eq(plain, NPUBS * PUBLISHES, "every plain publish got its own seq");
    cr_assert_eq(hot, NPUBS * PUBLISHES, "every windowed publish got its own seq");

    int64_t end = now_ms() + 30000;
    while (!all_caught_up(subs, nsubs, final) && now_ms() < end)
        read_subscribers(&d, subs, nsubs, 20);
    for (int k = 0; k < nsubs; k++)
        for (int t = 0; t < NTOPICS; t++)
            cr_assert(!subs[k].covers[t] || subs[k].t.last[t] == final[t],
                      "subscriber %d has %s at %llu, final %llu", k, topics[t],
                      (unsigned long long)subs[k].t.last[t], (unsigned long long) final[t]);

    atomic_store(&stop_side, 1);
    pthread_join(st.th, NULL);
    pthread_join(ch.th, NULL);
    check(&d, !st.why[0], "%s", st.why);
    check(&d, !ch.why[0], "%s", ch.why);
    cr_assert_gt(st.reads, 0, "/stats was read while hints flowed");
    cr_assert_gt(ch.rounds, 0, "the churning connection went round at least once");
    cr_log_info("threads: %d /stats reads, %d churn rounds (%llu replayed, %llu resets)", st.reads,
                ch.rounds, (unsigned long long)ch.replayed, (unsigned long long)ch.resets);
    for (int k = 0; k < nsubs; k++)
        wsc_free(&subs[k].w, 0);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(threads, a_broker_stopped_in_the_middle_of_a_flood_exits_cleanly)
{
    struct nudged d;
    subcheck_start(&d, args);
    /* Half read, half never read (small receive buffers: their queues fill and coalesce). */
    struct wsc readers[4], stuck[4];
    for (int k = 0; k < 4; k++) {
        cr_assert_eq(wsc_open(&readers[k], d.ws_port, k % 2 ? SUB_PROTO_MSGPACK : SUB_PROTO_JSON),
                     WSC_OK);
        cr_assert_eq(wsc_subscribe_v(&readers[k], k % 2 ? "**" : "t:0", "t:1", "hot:0", NULL),
                     WSC_OK);
        int fd = subcheck_small_rcvbuf_socket(d.ws_port);
        cr_assert_eq(wsc_handshake(&stuck[k], fd, d.ws_port, "/", SUB_PROTO_JSON, NULL), WSC_OK);
        cr_assert_eq(wsc_hello(&stuck[k]), WSC_OK);
        cr_assert_eq(wsc_subscribe_v(&stuck[k], "t:0", "t:2", "hot:*", NULL), WSC_OK);
    }
    atomic_int stop;
    atomic_init(&stop, 0);
    struct pubth pubs[NPUBS];
    start_publishers(pubs, &d, 0, &stop);
    /* Until a good flood is under way (bounded), reading half the subscribers. */
    int64_t end = now_ms() + 20000;
    while (now_ms() < end) {
        for (int k = 0; k < 4; k++) {
            struct sub_msg m;
            while (wsc_recv_msg(&readers[k], &m, 0) == WSC_OK)
                sub_msg_clear(&m);
        }
        int done = 0;
        for (int i = 0; i < NPUBS; i++)
            done += atomic_load(&pubs[i].done);
        if (done >= 400) break;
        sleep_ms(10);
    }
    cr_assert_eq(nudged_signal(&d, SIGTERM), 0);
    int rc = nudged_wait(&d, 30000);
    atomic_store(&stop, 1);
    for (int i = 0; i < NPUBS; i++)
        pthread_join(pubs[i].th, NULL);
    for (int k = 0; k < 4; k++) {
        wsc_free(&readers[k], 0);
        wsc_free(&stuck[k], 0);
    }
    cr_assert_eq(rc, 0, "nudged exits 0 when stopped mid-flood (got %d)", rc);
}
