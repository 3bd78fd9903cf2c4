/* Unit tests of the in-memory store (broker/engine/store.c): sequence assignment, the three
 * bounds (per topic, bytes, age), completeness as the hub asks it on resume, positions that
 * outlive history (the horizon, max_positions), and the floor that keeps a forgotten topic's
 * seqs from repeating. */
#include <criterion/criterion.h>
#include <string.h>

#include "store.h"
#include "table.h"

static uint64_t fake_now;
static uint64_t fake_clock(void)
{
    return fake_now;
}

#define HORIZON 3600000

static struct store *mem_n(uint32_t per_topic, uint64_t max_bytes, uint64_t max_age_ms,
                           uint32_t max_positions)
{
    struct store_config cfg = {per_topic, max_bytes, max_age_ms, HORIZON, max_positions};
    struct store *s = store_mem_new(&cfg, 0x1234, 1, 2);
    cr_assert_not_null(s);
    s->wall_ms = fake_clock;
    fake_now = 0;
    return s;
}

static struct store *mem(uint32_t per_topic, uint64_t max_bytes, uint64_t max_age_ms)
{
    return mem_n(per_topic, max_bytes, max_age_ms, 1000);
}

static struct store_topic *topic(struct store *s, const char *name)
{
    size_t len = strlen(name);
    struct store_topic *t = s->ops->open(s, name, len, siphash(1, 2, name, len), NULL);
    cr_assert_not_null(t);
    return t;
}

static void done(void *arg, struct hint *h, int err)
{
    cr_assert_eq(err, 0);
    *(uint64_t *)arg = h->seq;
}

static uint64_t append_at(struct store *s, struct store_topic *t, size_t data_len, uint64_t now)
{
    uint8_t data[512];
    memset(data, 0xa0, sizeof(data)); /* fixstr headers: content is irrelevant here */
    struct hint *hn = hint_new("x", 1, 0, data_len ? data : NULL, data_len);
    cr_assert_not_null(hn);
    uint64_t seq = 0;
    fake_now = now;
    s->ops->append(s, t, hn, done, &seq);
    cr_assert_neq(seq, 0, "the memory store completes at once");
    hint_unref(hn);
    return seq;
}

static void collect(void *arg, struct hint *hn)
{
    uint64_t *out = arg;
    out[++out[0]] = hn->seq;
}

TestSuite(store);

Test(store, assigns_consecutive_seqs_per_topic_from_one)
{
    struct store *h = mem(64, 1u << 20, 60000);
    struct store_topic *a = topic(h, "a"), *b = topic(h, "b");
    cr_expect_eq(append_at(h, a, 0, 0), 1);
    cr_expect_eq(append_at(h, a, 0, 0), 2);
    cr_expect_eq(append_at(h, b, 0, 0), 1);
    cr_expect_eq(append_at(h, a, 0, 0), 3);
    cr_expect_eq(h->ops->seq(h, a), 3);
    cr_expect_eq(h->ops->seq(h, b), 1);
    h->ops->free(h);
}

Test(store, stamps_each_hint_with_the_wall_clock)
{
    struct store *h = mem(64, 1u << 20, 60000);
    struct store_topic *a = topic(h, "a");
    append_at(h, a, 0, 12345);
    struct hint *hn = hint_new("a", 1, 0, NULL, 0);
    uint64_t seq = 0;
    fake_now = 777;
    h->ops->append(h, a, hn, done, &seq);
    cr_expect_eq(hn->time_ms, 777);
    hint_unref(hn);
    h->wall_ms = store_wall_ms;
    cr_expect_gt(store_wall_ms(), 1700000000000ull, "CLOCK_REALTIME in ms");
    h->ops->free(h);
}

Test(store, replays_missed_hints_in_order_and_never_past_upto)
{
    struct store *h = mem(64, 1u << 20, 60000);
    struct store_topic *a = topic(h, "a");
    for (int i = 0; i < 10; i++)
        append_at(h, a, 4, 0);
    uint64_t got[16] = {0};
    cr_assert(store_complete(h, a, 6));
    h->ops->since(h, a, 6, 10, collect, got);
    cr_assert_eq(got[0], 4);
    for (uint64_t i = 1; i <= 4; i++)
        cr_expect_eq(got[i], 6 + i);
    memset(got, 0, sizeof(got));
    h->ops->since(h, a, 6, 8, collect, got);
    cr_assert_eq(got[0], 2, "only 7 and 8: later seqs arrive live");
    h->ops->free(h);
}

Test(store, per_topic_bound_evicts_the_oldest_and_breaks_completeness)
{
    struct store *h = mem(4, 1u << 20, 60000);
    struct store_topic *a = topic(h, "a");
    for (int i = 0; i < 10; i++)
        append_at(h, a, 0, 0);
    cr_expect_eq(h->ops->oldest(h, a), 7);
    cr_expect_eq(h->st.entries, 4);
    cr_expect_eq(h->st.evicted, 6);
    cr_expect(store_complete(h, a, 6), "6 -> 7..10 are all retained");
    cr_expect(!store_complete(h, a, 5), "seq 6 was evicted");
    cr_expect(store_complete(h, a, 10), "nothing missed");
    cr_expect(!store_complete(h, a, 11), "a position ahead is never complete");
    h->ops->free(h);
}

static int emptied_calls;
static void on_emptied(void *arg, void *owner)
{
    (void)arg;
    (void)owner;
    emptied_calls++;
}

Test(store, byte_bound_drops_oldest_hints_across_topics)
{
    struct store *h = mem(64, 4096, 60000);
    struct store_topic *a = topic(h, "a"), *b = topic(h, "b");
    for (int i = 0; i < 20; i++)
        append_at(h, i % 2 ? b : a, 500, 0);
    cr_expect_leq(h->st.bytes, 4096);
    cr_expect_gt(h->st.evicted, 0);
    /* The survivors are the newest, in order, for both topics. */
    uint64_t got[32] = {0};
    h->ops->since(h, a, 0, 100, collect, got);
    cr_expect_eq(got[got[0]], 10);
    memset(got, 0, sizeof(got));
    h->ops->since(h, b, 0, 100, collect, got);
    cr_expect_eq(got[got[0]], 10);
    cr_expect_gt(h->ops->oldest(h, a), 1);
    h->ops->free(h);
}

Test(store, age_bound_evicts_only_what_is_older_and_says_when_a_topic_is_empty)
{
    struct store *h = mem(64, 1u << 20, 1000);
    h->emptied = on_emptied;
    emptied_calls = 0;
    struct store_topic *a = topic(h, "a");
    append_at(h, a, 0, 0);
    append_at(h, a, 0, 700);
    append_at(h, a, 0, 1500);
    h->ops->evict(h, 1600);
    cr_expect_eq(h->ops->oldest(h, a), 2, "only the hint of t=0 is older than 1 s at t=1600");
    cr_expect_eq(emptied_calls, 0);
    h->ops->evict(h, 5000);
    cr_expect_eq(h->ops->oldest(h, a), 0);
    cr_expect_eq(emptied_calls, 1);
    cr_expect_eq(h->st.entries, 0);
    cr_expect_eq(h->st.bytes, 0);
    cr_expect(!store_complete(h, a, 1));
    cr_expect(store_complete(h, a, 3));
    h->ops->free(h);
}

Test(store, zero_per_topic_keeps_nothing_but_still_assigns_seqs)
{
    struct store *h = mem(0, 1u << 20, 60000);
    struct store_topic *a = topic(h, "a");
    cr_expect_eq(append_at(h, a, 0, 0), 1);
    cr_expect_eq(append_at(h, a, 0, 0), 2);
    cr_expect_eq(h->st.entries, 0);
    cr_expect(!store_complete(h, a, 1));
    h->ops->free(h);
}

Test(store, a_closed_topic_keeps_its_position_within_the_horizon)
{
    struct store *h = mem(64, 1u << 20, 60000);
    struct store_topic *a = topic(h, "a");
    for (int i = 0; i < 5; i++)
        append_at(h, a, 0, 0);
    h->ops->close(h, a); /* history dropped, position kept */
    cr_expect_eq(h->st.topics, 0);
    cr_expect_eq(h->st.positions, 1);
    cr_expect_eq(h->st.entries, 0);
    fake_now = HORIZON; /* not past it yet */
    h->ops->evict(h, fake_now);
    a = topic(h, "a");
    cr_expect_eq(h->ops->seq(h, a), 5, "the position outlived the history");
    cr_expect_eq(h->ops->base(h, a), 0);
    cr_expect_eq(h->st.forgotten, 0);
    cr_expect_eq(append_at(h, a, 0, HORIZON), 6);
    h->ops->free(h);
}

Test(store, a_forgotten_topic_opened_again_never_repeats_a_seq)
{
    struct store *h = mem(64, 1u << 20, 60000);
    struct store_topic *a = topic(h, "a");
    for (int i = 0; i < 5; i++)
        append_at(h, a, 0, 0);
    h->ops->close(h, a);
    fake_now = HORIZON + 1;
    h->ops->evict(h, fake_now);
    cr_expect_eq(h->st.positions, 0, "forgotten past the horizon");
    cr_expect_eq(h->st.forgotten, 1);
    a = topic(h, "a");
    cr_expect_eq(h->ops->seq(h, a), 5, "starts at the floor: the highest seq forgotten");
    cr_expect_eq(h->ops->base(h, a), 5, "positions below 5 are from before it was forgotten");
    cr_expect_eq(append_at(h, a, 0, fake_now), 6);
    struct store_topic *b = topic(h, "b");
    cr_expect_eq(append_at(h, b, 0, fake_now), 6,
                 "any topic new after a forget starts above the floor");
    cr_expect(!store_complete(h, a, 2), "a client at 2 from before is reset, not overlapped");
    h->ops->free(h);
}

Test(store, a_held_topic_is_never_forgotten_however_old)
{
    struct store *h = mem(0, 1u << 20, 60000);
    struct store_topic *a = topic(h, "a");
    append_at(h, a, 0, 0);
    h->ops->evict(h, 10ull * HORIZON);
    cr_expect_eq(h->st.forgotten, 0);
    cr_expect_eq(h->ops->seq(h, a), 1);
    h->ops->free(h);
}

Test(store, max_positions_forgets_the_oldest_closed_position_first)
{
    struct store *h = mem_n(64, 1u << 20, 60000, 2);
    struct store_topic *a = topic(h, "a"), *b = topic(h, "b");
    append_at(h, a, 0, 0);
    append_at(h, b, 0, 0);
    append_at(h, b, 0, 0);
    h->ops->close(h, a);
    h->ops->close(h, b);
    struct store_topic *c = topic(h, "c"); /* a third position: the oldest closed one goes */
    cr_expect_eq(h->st.positions, 2);
    cr_expect_eq(h->st.forgotten, 1);
    cr_expect_eq(h->ops->seq(h, c), 1, "starts at the floor, a's seq");
    b = topic(h, "b");
    cr_expect_eq(h->ops->seq(h, b), 2, "b, closed later, is still remembered");
    cr_expect_eq(h->ops->base(h, b), 0);
    h->ops->free(h);
}
