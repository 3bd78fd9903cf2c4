/* Unit tests of the engine's publish/subscribe API (broker/engine/engine.c), with no transport
 * and no hub: a sink records what the engine releases. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine.h"

#define MAXGOT 64

struct got {
    struct hint *h[MAXGOT];
    uint32_t count[MAXGOT];
    char origin[MAXGOT][24];
    int skip[MAXGOT];
    uint32_t n;
};

static struct engine e;
static struct got got;

static void sink(void *arg, struct hint *h, uint32_t count, struct wire_str origin, int skip)
{
    struct got *g = arg;
    cr_assert_lt(g->n, MAXGOT);
    g->h[g->n] = hint_ref(h);
    g->count[g->n] = count;
    snprintf(g->origin[g->n], sizeof(g->origin[0]), "%.*s", (int)origin.len,
             origin.p ? origin.p : "");
    g->skip[g->n] = skip;
    g->n++;
}

static void start(const struct engine_config *cfg)
{
    uint8_t seed[32];
    for (int i = 0; i < 32; i++)
        seed[i] = (uint8_t)(i * 7 + 1);
    cr_assert_eq(engine_init(&e, cfg, seed), 0);
    struct engine_sink s = {.deliver = sink, .arg = &got};
    cr_assert_eq(engine_add_sink(&e, &s), 0);
}

static void setup(void)
{
    memset(&got, 0, sizeof(got));
    struct engine_config cfg;
    engine_config_default(&cfg);
    start(&cfg);
}

static void teardown(void)
{
    for (uint32_t i = 0; i < got.n; i++)
        hint_unref(got.h[i]);
    engine_close(&e);
}

TestSuite(engine, .init = setup, .fini = teardown);

struct done {
    int calls;
    struct engine_pub *p;
};

static void on_done(void *arg, struct engine_pub *p)
{
    struct done *d = arg;
    d->calls++;
    d->p = p;
}

/* Publish topics (NULL-terminated) with data; returns engine_publish's code. */
static int publish(struct engine_pub *p, uint64_t now, const char *const *topics, const char *data)
{
    static struct wire_str names[WIRE_TOPICS_MAX];
    uint32_t n = 0;
    for (; topics[n]; n++)
        names[n] = (struct wire_str){topics[n], (uint32_t)strlen(topics[n])};
    memset(p, 0, sizeof(*p));
    p->topics = names;
    p->ntopics = n;
    p->data = (const uint8_t *)data;
    p->data_len = data ? (uint32_t)strlen(data) : 0;
    struct done d = {0};
    int rc = engine_publish(&e, p, now, on_done, &d);
    if (rc == 0) cr_assert_eq(d.calls, 1, "the memory store completes before publish returns");
    if (rc != 0) cr_assert_eq(d.calls, 0, "a refused publish never calls back");
    return rc;
}

static uint64_t pub1(const char *topic, uint64_t now)
{
    struct engine_pub p;
    const char *t[] = {topic, NULL};
    cr_assert_eq(publish(&p, now, t, NULL), 0);
    return p.seqs[0];
}

Test(engine, publish_assigns_per_topic_seqs_and_releases_sealed_hints_to_every_sink)
{
    struct engine_pub p;
    const char *t[] = {"a", "b", "a2", NULL};
    cr_assert_eq(publish(&p, 0, t, "\xa1x"), 0); /* msgpack "x" */
    cr_expect_eq(p.seqs[0], 1);
    cr_expect_eq(p.seqs[1], 1);
    cr_expect_eq(pub1("a", 0), 2);
    cr_assert_eq(got.n, 4);
    struct hint *h = got.h[0];
    cr_expect_str_eq(h->topic, "a");
    cr_expect_eq(h->seq, 1);
    cr_expect_gt(h->time_ms, 1700000000000ull, "stamped with the wall clock by the store");
    const struct msg *js = hint_payload(h, SUB_JSON), *mp = hint_payload(h, SUB_MSGPACK);
    cr_assert(js && mp, "sealed in both formats before anyone sees it");
    const char *want = "{\"type\":\"hint\",\"topic\":\"a\",\"seq\":1,\"data\":\"x\"}";
    cr_expect_eq(js->len, strlen(want));
    cr_expect(memcmp(js->data, want, js->len) == 0, "%.*s", (int)js->len, js->data);
    cr_expect_eq(e.st.publishes, 2);
    cr_expect_eq(e.st.hints, 4);
}

Test(engine, a_publish_with_a_bad_topic_changes_nothing)
{
    struct engine_pub p;
    const char *t[] = {"ok", "bad topic", NULL};
    cr_expect_eq(publish(&p, 0, t, NULL), -EINVAL);
    cr_expect_eq(p.seqs[0], 1, "index of the bad topic");
    cr_expect_eq(got.n, 0);
    cr_expect_eq(e.topics.count, 0);
    const char *none[] = {NULL};
    cr_expect_eq(publish(&p, 0, none, NULL), -EINVAL);
    cr_expect_eq(pub1("ok", 0), 1, "ok was never published");
}

Test(engine, origin_and_skip_origin_reach_the_sinks)
{
    struct engine_pub p;
    const char *t[] = {"a", NULL};
    static struct wire_str name = {"a", 1};
    memset(&p, 0, sizeof(p));
    p.topics = &name;
    p.ntopics = 1;
    p.origin = (struct wire_str){"7f", 2};
    p.skip_origin = 1;
    struct done d = {0};
    cr_assert_eq(engine_publish(&e, &p, 0, on_done, &d), 0);
    (void)t;
    cr_assert_eq(got.n, 1);
    cr_expect_str_eq(got.origin[0], "7f");
    cr_expect_eq(got.skip[0], 1);
}

Test(engine, a_topic_nothing_holds_is_freed_but_its_position_outlives_it)
{
    engine_close(&e);
    struct engine_config cfg;
    engine_config_default(&cfg);
    cfg.hist.per_topic = 0; /* nothing retained: nothing holds a published topic */
    start(&cfg);
    cr_expect_eq(pub1("a", 0), 1);
    cr_expect_eq(e.topics.count, 0, "freed once nothing holds it");
    cr_expect_eq(pub1("a", 0), 2, "the store kept its position");
    cr_expect_eq(e.store->st.positions, 1);
    struct etopic *t;
    cr_assert_eq(engine_hold(&e, "b", 1, engine_hash(&e, "b", 1), &t), 0);
    cr_expect_eq(engine_seq(&e, t), 0, "nothing was forgotten: a new topic starts at 0");
    engine_release(&e, t);
    cr_assert_eq(engine_hold(&e, "a", 1, engine_hash(&e, "a", 1), &t), 0);
    cr_expect_eq(engine_seq(&e, t), 2);
    struct hint *h = engine_newest(&e, t);
    cr_assert_not_null(h, "a position without history still gives a catch-up hint");
    cr_expect_eq(h->seq, 2);
    cr_expect_eq(h->data_len, 0, "history let the data go");
    cr_expect_not_null(hint_payload(h, SUB_JSON), "sealed");
    hint_unref(h);
    engine_release(&e, t);
}

Test(engine, a_position_past_the_horizon_is_forgotten_and_restarts_above_the_floor)
{
    engine_close(&e);
    struct engine_config cfg;
    engine_config_default(&cfg);
    cfg.hist.per_topic = 0;
    cfg.hist.horizon_ms = 1;
    start(&cfg);
    cr_expect_eq(pub1("a", 0), 1);
    cr_expect_eq(pub1("a", 0), 2);
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    engine_tick(&e, 0);
    cr_expect_eq(e.store->st.positions, 0, "forgotten past the horizon");
    struct etopic *t;
    cr_assert_eq(engine_hold(&e, "b", 1, engine_hash(&e, "b", 1), &t), 0);
    cr_expect_eq(engine_seq(&e, t), 2, "a new topic starts at the floor");
    cr_expect_eq(engine_base(&e, t), 2, "resumes from below 2 are older than the horizon");
    cr_expect_null(engine_newest(&e, t), "no change since its base");
    cr_expect_eq(pub1("b", 0), 3);
    engine_release(&e, t);
}

Test(engine, the_newest_hint_is_the_retained_one_with_its_data)
{
    cr_expect_eq(pub1("a", 0), 1);
    struct engine_pub p;
    const char *t1[] = {"a", NULL};
    cr_assert_eq(publish(&p, 0, t1, "\xa1y"), 0);
    struct etopic *t;
    cr_assert_eq(engine_hold(&e, "a", 1, engine_hash(&e, "a", 1), &t), 0);
    struct hint *h = engine_newest(&e, t);
    cr_assert_not_null(h);
    cr_expect_eq(h->seq, 2);
    cr_expect_eq(h->data_len, 2);
    cr_expect_eq(h->data[1], 'y');
    hint_unref(h);
    engine_release(&e, t);
}

Test(engine, retained_history_holds_a_topic_until_it_ages_out)
{
    cr_expect_eq(pub1("a", 0), 1);
    cr_expect_eq(e.topics.count, 1);
    cr_expect_eq(e.store->st.entries, 1);
    engine_close(&e);
    struct engine_config cfg;
    engine_config_default(&cfg);
    cfg.hist.max_age_ms = 1;
    start(&cfg);
    cr_expect_eq(pub1("a", 0), 1);
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    engine_tick(&e, 0);
    cr_expect_eq(e.store->st.entries, 0);
    cr_expect_eq(e.topics.count, 0, "history gone, nothing else holds it: forgotten");
}

Test(engine, max_topics_refuses_a_publish_whole_and_a_new_subscription)
{
    engine_close(&e);
    struct engine_config cfg;
    engine_config_default(&cfg);
    cfg.max_topics = 2;
    start(&cfg);
    cr_expect_eq(pub1("a", 0), 1);
    struct engine_pub p;
    const char *t[] = {"a", "b", "c", NULL};
    cr_expect_eq(publish(&p, 0, t, NULL), -ENOSPC);
    cr_expect_eq(got.n, 1, "nothing of the refused publish was released");
    cr_expect_eq(e.st.refused, 1);
    const char *t2[] = {"a", "b", NULL};
    cr_expect_eq(publish(&p, 0, t2, NULL), 0);
    cr_expect_eq(p.seqs[0], 2);
    struct etopic *et;
    cr_expect_eq(engine_hold(&e, "z", 1, engine_hash(&e, "z", 1), &et), -ENOSPC);
    cr_expect_eq(engine_hold(&e, "a", 1, engine_hash(&e, "a", 1), &et), 0, "known: fine");
    engine_release(&e, et);
}

static void collect(void *arg, struct hint *h)
{
    uint64_t *out = arg;
    out[++out[0]] = h->seq;
}

Test(engine, replay_is_bounded_by_the_position_the_subscriber_was_given)
{
    for (int i = 0; i < 6; i++)
        pub1("a", 0);
    struct etopic *t;
    cr_assert_eq(engine_hold(&e, "a", 1, engine_hash(&e, "a", 1), &t), 0);
    cr_expect_eq(engine_seq(&e, t), 6);
    cr_expect(engine_complete(&e, t, 2));
    uint64_t seen[16] = {0};
    engine_replay(&e, t, 2, 4, collect, seen);
    cr_expect_eq(seen[0], 2);
    cr_expect_eq(seen[1], 3);
    cr_expect_eq(seen[2], 4);
    engine_release(&e, t);
}

Test(engine, a_window_lets_the_first_out_and_the_newest_at_its_end_with_its_count)
{
    engine_close(&e);
    struct engine_config cfg;
    engine_config_default(&cfg);
    cr_assert_eq(engine_window_parse("w:*=100", &cfg.windows[0]), 0);
    cfg.nwindows = 1;
    start(&cfg);
    pub1("w:1", 1000);
    cr_assert_eq(got.n, 1, "the first goes out at once");
    pub1("w:1", 1010);
    pub1("w:1", 1020);
    pub1("w:1", 1030);
    cr_expect_eq(got.n, 1, "held by the window");
    engine_tick(&e, 1050);
    cr_expect_eq(got.n, 1);
    engine_tick(&e, 1100);
    cr_assert_eq(got.n, 2);
    cr_expect_eq(got.h[1]->seq, 4);
    cr_expect_eq(got.count[1], 3, "stands for the three held publishes");
    cr_expect_eq(e.st.coalesced, 2);
    engine_tick(&e, 1200); /* quiet for a window: closed */
    cr_expect_eq(e.windows, NULL);
}

Test(engine, connection_ids_are_unique)
{
    uint64_t a = engine_conn_id(&e), b = engine_conn_id(&e);
    cr_expect_neq(a, b);
}

/* ---- a store that completes later ---------------------------------------------------------- */

/* The memory store's ops with every append's completion held until poll: what a persisted store
 * does (its commit thread finishes appends; the engine runs them from engine_poll). */
static const struct store_ops *real_ops;
static struct store_ops defer_ops;
static struct held {
    struct hint *h;
    store_done_fn *done;
    void *arg;
    int err;
} held[16];
static int nheld, wakes;

static void hold(void *arg, struct hint *h, int err)
{
    struct held *x = arg;
    x->h = hint_ref(h);
    x->err = err;
}

static void defer_append(struct store *s, struct store_topic *t, struct hint *h,
                         store_done_fn *done, void *arg)
{
    cr_assert_lt(nheld, 16);
    struct held *x = &held[nheld++];
    x->done = done;
    x->arg = arg;
    real_ops->append(s, t, h, hold, x);
    s->wake(s->wake_arg);
}

static void defer_poll(struct store *s, int wait)
{
    (void)s;
    (void)wait;
    for (int i = 0; i < nheld; i++) {
        held[i].done(held[i].arg, held[i].h, held[i].err);
        hint_unref(held[i].h);
    }
    nheld = 0;
}

static void count_wake(void *arg)
{
    (void)arg;
    wakes++;
}

Test(engine, a_store_that_completes_later_releases_and_acks_at_poll_in_order)
{
    real_ops = e.store->ops;
    defer_ops = *real_ops;
    defer_ops.append = defer_append;
    defer_ops.poll = defer_poll;
    e.store->ops = &defer_ops;
    nheld = wakes = 0;
    engine_on_wake(&e, count_wake, NULL);
    static struct wire_str names[2] = {{"a", 1}, {"b", 1}};
    struct engine_pub p1, p2;
    memset(&p1, 0, sizeof(p1));
    memset(&p2, 0, sizeof(p2));
    p1.topics = names;
    p1.ntopics = 2;
    p2.topics = names;
    p2.ntopics = 1;
    struct done d1 = {0}, d2 = {0};
    cr_assert_eq(engine_publish(&e, &p1, 0, on_done, &d1), 0);
    cr_assert_eq(engine_publish(&e, &p2, 0, on_done, &d2), 0);
    cr_expect_eq(d1.calls + d2.calls, 0, "nothing completes before the store says so");
    cr_expect_eq(got.n, 0, "nothing is released before it is stored");
    cr_expect_eq(wakes, 3, "the store's wake reaches the engine's owner");
    cr_expect_eq(e.topics.count, 2, "topics in flight are held");
    engine_poll(&e, 0);
    cr_expect_eq(d1.calls, 1);
    cr_expect_eq(d2.calls, 1);
    cr_expect(p1.seqs[0] == 1 && p1.seqs[1] == 1 && p2.seqs[0] == 2);
    cr_assert_eq(got.n, 3);
    cr_expect(got.h[0]->seq == 1 && got.h[2]->seq == 2 && hint_same_topic(got.h[0], got.h[2]),
              "released in append order");
    cr_expect_eq(e.st.publishes, 2);
    engine_on_wake(&e, NULL, NULL);
    e.store->ops = real_ops;
}
