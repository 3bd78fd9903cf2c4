/* Unit tests of the keyed hash table (broker/engine/table.c): lookups stay exact while the table
 * grows, and growth is incremental — no single operation moves more than a few buckets. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

struct item {
    struct tnode node;
    char name[16];
};

enum { N = 100000 };

static struct item *items;
static struct table t;

static void setup(void)
{
    items = calloc(N, sizeof(*items));
    cr_assert_not_null(items);
    cr_assert_eq(table_init(&t, 11, 22), 0);
    for (int i = 0; i < N; i++) {
        int len = snprintf(items[i].name, sizeof(items[i].name), "user:%d", i);
        items[i].node = (struct tnode){.name = items[i].name,
                                       .len = (uint32_t)len,
                                       .hash = table_hash(&t, items[i].name, (size_t)len)};
    }
}

static void teardown(void)
{
    table_free(&t);
    free(items);
}

TestSuite(table, .init = setup, .fini = teardown);

static struct tnode *find(int i)
{
    return table_find(&t, items[i].name, items[i].node.len, items[i].node.hash);
}

Test(table, grows_a_few_buckets_at_a_time_and_finds_everything_meanwhile)
{
    size_t growths = 0, max_moved = 0;
    for (int i = 0; i < N; i++) {
        size_t before = t.old ? t.moved : 0, had_old = t.old != NULL;
        table_add(&t, &items[i].node);
        if (!had_old && t.old) growths++;
        if (had_old) {
            size_t now = t.old ? t.moved : t.nold;
            size_t moved = t.old ? now - before : 0;
            if (moved > max_moved) max_moved = moved;
        }
        if (i % 997 == 0) /* a sample, including every state of a move in progress */
            for (int j = 0; j <= i; j += 101)
                cr_assert_eq(find(j), &items[j].node, "item %d lost after %d adds", j, i + 1);
    }
    cr_expect_eq(t.count, N);
    cr_expect_geq(growths, 10, "64 buckets grew to >= 65536 in steps");
    cr_expect_leq(max_moved, 4, "one add moved %zu buckets: not incremental", max_moved);
    for (int i = 0; i < N; i++)
        cr_assert_eq(find(i), &items[i].node);
    char miss[] = "user:x";
    cr_expect_null(table_find(&t, miss, strlen(miss), table_hash(&t, miss, strlen(miss))));
}

Test(table, removes_while_a_move_is_in_progress)
{
    for (int i = 0; i < 5000; i++)
        table_add(&t, &items[i].node);
    /* Drive the table into a move, then remove half while it runs. */
    int i = 5000;
    while (!t.old)
        table_add(&t, &items[i++].node);
    for (int j = 0; j < i; j += 2)
        table_remove(&t, &items[j].node);
    for (int j = 0; j < i; j++)
        cr_assert_eq(find(j), j % 2 ? &items[j].node : NULL, "item %d", j);
    cr_expect_eq(t.count, (size_t)(i / 2));
}

static int drained;
static void count(void *arg, struct tnode *n)
{
    (void)arg;
    (void)n;
    drained++;
}

Test(table, drain_unlinks_every_node_once)
{
    for (int i = 0; i < 3000; i++)
        table_add(&t, &items[i].node);
    drained = 0;
    table_drain(&t, count, NULL);
    cr_expect_eq(drained, 3000);
    cr_expect_eq(t.count, 0);
    cr_expect_null(find(5));
}
