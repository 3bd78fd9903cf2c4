/* Unit tests of hint reference counting (broker/engine/hint.c) and its batched forms: a bag of
 * gathered releases (hintbag) and a queue that draws its references from a caller's budget
 * (conn_push_hint_budget). ASan checks that the last release frees and nothing is freed early. */
#include <criterion/criterion.h>
#include <string.h>

#include "conn.h"
#include "hint.h"
#include "table.h"

TestSuite(hint);

static struct hint *mk(const char *topic, uint64_t seq)
{
    size_t len = strlen(topic);
    struct hint *h = hint_new(topic, len, siphash(5, 6, topic, len), NULL, 0);
    cr_assert_not_null(h);
    h->seq = seq;
    return h;
}

static uint32_t refs(struct hint *h)
{
    return atomic_load(&h->refs);
}

Test(hint, a_bag_holds_releases_until_applied_then_frees_on_the_last)
{
    struct hintbag bag;
    memset(&bag, 0, sizeof(bag));
    bag.active = 1;
    struct hint *a = mk("a", 1), *b = mk("b", 1);
    for (int i = 0; i < 1000; i++) {
        hint_ref(a);
        hint_ref(b);
    }
    for (int i = 0; i < 1000; i++) {
        hintbag_put(&bag, a);
        hintbag_put(&bag, b);
    }
    /* Either still gathered, or applied early when the other hint took its slot: never lost. */
    uint32_t ra = refs(a), rb = refs(b);
    cr_expect(ra >= 1 && ra <= 1001 && rb >= 1 && rb <= 1001, "refs %u %u", ra, rb);
    hintbag_apply(&bag);
    cr_expect_eq(refs(a), 1);
    cr_expect_eq(refs(b), 1);
    for (size_t i = 0; i < HINTBAG_SLOTS; i++)
        cr_expect_null(bag.h[i]);
    hint_unref(a); /* the last: freed (ASan reports a leak otherwise) */
    hint_unref(b);
}

Test(hint, a_colliding_hint_applies_the_previous_ones_count)
{
    struct hintbag bag;
    memset(&bag, 0, sizeof(bag));
    bag.active = 1;
    struct hint *h[200];
    for (int i = 0; i < 200; i++) {
        h[i] = mk("t", (uint64_t)i);
        hint_ref(h[i]);
        hintbag_put(&bag, h[i]); /* 200 hints over 64 slots: collisions apply early */
    }
    hintbag_apply(&bag);
    for (int i = 0; i < 200; i++) {
        cr_expect_eq(refs(h[i]), 1, "hint %d", i);
        hint_unref(h[i]);
    }
}

Test(hint, a_queue_draws_its_references_from_the_budget_first)
{
    struct conn c = {0};
    struct hint *h = mk("a", 1);
    uint32_t budget = 3;
    atomic_fetch_add(&h->refs, budget); /* taken up front, as a fan-out does */
    cr_assert_eq(conn_push_hint_budget(&c, h, 1, 0, 0, &budget), 0);
    cr_expect_eq(budget, 2);
    cr_expect_eq(refs(h), 4, "no new reference: one of the budget's was used");
    struct conn d = {0};
    uint32_t none = 0;
    cr_assert_eq(conn_push_hint_budget(&d, h, 1, 0, 0, &none), 0);
    cr_expect_eq(refs(h), 5, "an empty budget takes a reference of its own");
    hint_unref_n(h, budget); /* give back the unused ones */
    cr_expect_eq(refs(h), 3);
    conn_queue_free(&c);
    conn_queue_free(&d);
    cr_expect_eq(refs(h), 1);
    hint_unref(h);
}

Test(hint, a_queue_pops_into_the_bag_while_it_is_active)
{
    struct hintbag bag;
    memset(&bag, 0, sizeof(bag));
    struct conn c = {0};
    c.bag = &bag;
    struct hint *h = mk("a", 1);
    cr_assert_eq(conn_push_hint(&c, h, 1, 0, 0), 0);
    cr_expect_eq(refs(h), 2);
    bag.active = 1;
    conn_pop(&c, 1);
    cr_expect_eq(refs(h), 2, "gathered, not applied yet");
    bag.active = 0;
    hintbag_apply(&bag);
    cr_expect_eq(refs(h), 1);
    cr_assert_eq(conn_push_hint(&c, h, 1, 0, 0), 0);
    conn_pop(&c, 1); /* inactive: released at once */
    cr_expect_eq(refs(h), 1);
    conn_queue_free(&c);
    hint_unref(h);
}
