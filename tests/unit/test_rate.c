/* Unit tests of the busiest-topics tracker (broker/engine/rate.c): its top is exact against a
 * brute-force count, forgotten topics leave it, and rates read right across landmark moves. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rate.h"

enum { N = 3000 };

static struct rate_node nodes[N];
static struct rate_top r;

static size_t index_of(const struct rate_node *n)
{
    return (size_t)(n - nodes);
}

Test(rate, the_top_is_exact_for_more_topics_than_it_tracks)
{
    memset(nodes, 0, sizeof nodes);
    rate_init(&r, 1000000);
    /* Topic i is published i % 97 + (i * 7919) % 13 times, interleaved, all within 1 ms. */
    int hits[N];
    for (int i = 0; i < N; i++)
        hits[i] = i % 97 + (i * 7919) % 13;
    for (int round = 0; round < 120; round++)
        for (int i = 0; i < N; i++)
            if (hits[i] > round) rate_hit(&r, &nodes[i], 1000000);
    struct rate_node *top[RATE_TOP_MAX];
    uint32_t k = rate_top(&r, top, 50);
    cr_assert_eq(k, 50);
    for (uint32_t i = 0; i < k; i++) {
        /* Its count is at least that of every topic not listed before it. */
        int mine = hits[index_of(top[i])], above = 0;
        for (int j = 0; j < N; j++)
            above += hits[j] > mine;
        cr_expect(above <= (int)i, "place %u has %d hits but %d topics have more", i, mine, above);
        cr_expect(fabs(rate_of(&r, top[i], 1000000) - mine / 10.0) < 1e-9, "rate of %d hits", mine);
    }
}

Test(rate, a_forgotten_topic_leaves_the_top_and_the_next_one_takes_its_place)
{
    memset(nodes, 0, sizeof nodes);
    rate_init(&r, 0);
    for (int i = 0; i < 10; i++)
        for (int h = 0; h <= i; h++)
            rate_hit(&r, &nodes[i], 5000);
    rate_forget(&r, &nodes[9]);
    cr_expect_eq(nodes[9].slot, 0);
    struct rate_node *top[RATE_TOP_MAX];
    uint32_t k = rate_top(&r, top, 3);
    cr_assert_eq(k, 3);
    cr_expect_eq(index_of(top[0]), 8);
    cr_expect_eq(index_of(top[1]), 7);
    cr_expect_eq(index_of(top[2]), 6);
    cr_expect_eq(rate_top(&r, top, RATE_TOP_MAX), 9);
}

Test(rate, a_steady_rate_reads_itself_and_decays_across_landmark_moves)
{
    memset(nodes, 0, sizeof nodes);
    rate_init(&r, 0);
    /* 5 a second for 30 minutes: three landmark moves on the way. */
    uint64_t t = 0;
    for (; t < 30 * 60 * 1000; t += 200) {
        rate_hit(&r, &nodes[0], t);
        if (t % 1000 == 0) rate_hit(&r, &nodes[1], t); /* 1 a second */
    }
    cr_expect(r.land_ms > 0, "the landmark moved");
    double a = rate_of(&r, &nodes[0], t), b = rate_of(&r, &nodes[1], t);
    cr_expect(fabs(a - 5) < 0.3, "5/s reads %.3f", a);
    cr_expect(fabs(b - 1) < 0.1, "1/s reads %.3f", b);
    /* Quiet for one window: down by e. */
    double later = rate_of(&r, &nodes[0], t + RATE_WINDOW_S * 1000);
    cr_expect(fabs(later - a / exp(1)) < 1e-6, "%.3f after a quiet window", later);
    struct rate_node *top[2];
    cr_assert_eq(rate_top(&r, top, 2), 2);
    cr_expect_eq(top[0], &nodes[0]);
    /* A topic last published before the moves, published again, is relanded first. */
    rate_hit(&r, &nodes[2], 0);
    memset(&nodes[3], 0, sizeof nodes[3]);
    rate_hit(&r, &nodes[3], t);
    rate_hit(&r, &nodes[2], t);
    cr_expect(fabs(rate_of(&r, &nodes[2], t) - rate_of(&r, &nodes[3], t)) < 1e-9,
              "an old publish weighs nothing now");
}
