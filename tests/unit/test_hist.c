/* Unit tests of the in-memory history store (broker/hist.c): sequence assignment and the three
 * bounds (per topic, bytes, age), with completeness as the core asks it on resume. */
#include <criterion/criterion.h>
#include <string.h>

#include "hist.h"
#include "topic.h"

static struct topics reg;

static void setup(void)
{
    cr_assert_eq(topics_init(&reg, 1, 2), 0);
}

static void teardown(void)
{
    topics_free(&reg);
}

static struct hist *mem(uint32_t per_topic, uint64_t max_bytes, uint64_t max_age_ms)
{
    struct hist_config cfg = {per_topic, max_bytes, max_age_ms};
    struct hist *h = hist_mem_new(&cfg);
    cr_assert_not_null(h);
    return h;
}

static uint64_t append(struct hist *h, struct topic *tp, size_t data_len, uint64_t now)
{
    uint8_t data[512];
    memset(data, 0xa0, sizeof(data)); /* fixstr headers: content is irrelevant here */
    struct hint *hn = hint_new(tp, data_len ? data : NULL, data_len, now);
    cr_assert_not_null(hn);
    cr_assert_eq(h->ops->append(h, hn), 0);
    uint64_t seq = hn->seq;
    hint_unref(hn);
    return seq;
}

static void collect(void *arg, struct hint *hn)
{
    uint64_t *out = arg;
    out[++out[0]] = hn->seq;
}

TestSuite(hist, .init = setup, .fini = teardown);

Test(hist, assigns_consecutive_seqs_per_topic_from_one)
{
    struct hist *h = mem(64, 1u << 20, 60000);
    struct topic *a = topic_get(&reg, "a", 1), *b = topic_get(&reg, "b", 1);
    cr_expect_eq(append(h, a, 0, 0), 1);
    cr_expect_eq(append(h, a, 0, 0), 2);
    cr_expect_eq(append(h, b, 0, 0), 1);
    cr_expect_eq(append(h, a, 0, 0), 3);
    cr_expect_eq(a->seq, 3);
    cr_expect_eq(b->seq, 1);
    h->ops->free(h);
}

Test(hist, replays_missed_hints_in_order)
{
    struct hist *h = mem(64, 1u << 20, 60000);
    struct topic *a = topic_get(&reg, "a", 1);
    for (int i = 0; i < 10; i++) append(h, a, 4, 0);
    uint64_t got[16] = {0};
    cr_assert(hist_complete(h, a, 6));
    h->ops->since(h, a, 6, collect, got);
    cr_assert_eq(got[0], 4);
    for (uint64_t i = 1; i <= 4; i++) cr_expect_eq(got[i], 6 + i);
    h->ops->free(h);
}

Test(hist, per_topic_bound_evicts_the_oldest_and_breaks_completeness)
{
    struct hist *h = mem(4, 1u << 20, 60000);
    struct topic *a = topic_get(&reg, "a", 1);
    for (int i = 0; i < 10; i++) append(h, a, 0, 0);
    cr_expect_eq(h->ops->oldest(h, a), 7);
    cr_expect_eq(h->st.entries, 4);
    cr_expect_eq(h->st.evicted, 6);
    cr_expect(hist_complete(h, a, 6), "6 -> 7..10 are all retained");
    cr_expect(!hist_complete(h, a, 5), "seq 6 was evicted");
    cr_expect(hist_complete(h, a, 10), "nothing missed");
    cr_expect(!hist_complete(h, a, 11), "a position ahead is never complete");
    h->ops->free(h);
}

Test(hist, byte_bound_drops_oldest_hints_across_topics)
{
    struct hist *h = mem(64, 4096, 60000);
    struct topic *a = topic_get(&reg, "a", 1), *b = topic_get(&reg, "b", 1);
    for (int i = 0; i < 20; i++) append(h, i % 2 ? b : a, 500, 0);
    cr_expect_leq(h->st.bytes, 4096);
    cr_expect_gt(h->st.evicted, 0);
    /* The survivors are the newest, in order, for both topics. */
    cr_expect_eq(a->h_tail->seq, 10);
    cr_expect_eq(b->h_tail->seq, 10);
    cr_expect_gt(h->ops->oldest(h, a), 1);
    h->ops->free(h);
}

Test(hist, age_bound_evicts_only_what_is_older)
{
    struct hist *h = mem(64, 1u << 20, 1000);
    struct topic *a = topic_get(&reg, "a", 1);
    append(h, a, 0, 0);
    append(h, a, 0, 700);
    append(h, a, 0, 1500);
    h->ops->evict(h, 1600);
    cr_expect_eq(h->ops->oldest(h, a), 2, "only the hint of t=0 is older than 1 s at t=1600");
    h->ops->evict(h, 5000);
    cr_expect_eq(h->ops->oldest(h, a), 0);
    cr_expect_eq(h->st.entries, 0);
    cr_expect_eq(h->st.bytes, 0);
    cr_expect(!hist_complete(h, a, 1));
    cr_expect(hist_complete(h, a, 3));
    h->ops->free(h);
}

Test(hist, zero_per_topic_keeps_nothing_but_still_assigns_seqs)
{
    struct hist *h = mem(0, 1u << 20, 60000);
    struct topic *a = topic_get(&reg, "a", 1);
    cr_expect_eq(append(h, a, 0, 0), 1);
    cr_expect_eq(append(h, a, 0, 0), 2);
    cr_expect_eq(h->st.entries, 0);
    cr_expect(!hist_complete(h, a, 1));
    h->ops->free(h);
}
