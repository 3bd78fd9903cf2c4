/* Unit tests of the per-connection queue (broker/hub/conn.c): order, growth, and coalescing that
 * keeps one entry per topic with the newest seq and the summed count. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "conn.h"
#include "table.h"

TestSuite(conn);

static struct hint *mk(const char *topic, uint64_t seq)
{
    size_t len = strlen(topic);
    struct hint *h = hint_new(topic, len, siphash(3, 4, topic, len), NULL, 0);
    cr_assert_not_null(h);
    h->seq = seq;
    return h;
}

static void push(struct conn *c, const char *topic, uint64_t seq, int coalesce)
{
    struct hint *h = mk(topic, seq);
    cr_assert_geq(conn_push_hint(c, h, 1, 0, coalesce), 0);
    hint_unref(h);
}

Test(conn, keeps_every_hint_in_order_when_not_coalescing)
{
    struct conn c = {0};
    for (uint64_t i = 1; i <= 100; i++)
        push(&c, "a", i, 0);
    cr_assert_eq(c.qlen, 100);
    for (uint32_t i = 0; i < 100; i++) {
        const struct qent *e = conn_peek(&c, i);
        cr_expect_eq(e->h->seq, i + 1);
        cr_expect_eq(e->count, 1);
    }
    conn_queue_free(&c);
}

Test(conn, coalesces_to_one_entry_per_topic_with_newest_seq_and_summed_count)
{
    struct conn c = {0};
    for (uint64_t i = 1; i <= 1000; i++) {
        push(&c, "a", i, 1);
        push(&c, "b", i, 1);
    }
    cr_assert_eq(c.qlen, 2, "a slow connection costs one entry per topic");
    const struct qent *a = conn_peek(&c, 0), *b = conn_peek(&c, 1);
    cr_expect_eq(a->h->seq, 1000);
    cr_expect_eq(a->count, 1000);
    cr_expect_eq(b->h->seq, 1000);
    cr_expect_eq(b->count, 1000);
    conn_queue_free(&c);
}

Test(conn, a_hint_written_out_is_not_merged_into)
{
    struct conn c = {0};
    push(&c, "a", 1, 1);
    conn_pop(&c, 1); /* written */
    push(&c, "a", 2, 1);
    push(&c, "a", 3, 1);
    cr_assert_eq(c.qlen, 1);
    const struct qent *e = conn_peek(&c, 0);
    cr_expect_eq(e->h->seq, 3);
    cr_expect_eq(e->count, 2, "covers 2 and 3 only: 1 was already delivered");
    conn_queue_free(&c);
}

/* n = seq - the connection's position: a seq the connection never got a hint for (its own
 * skip_origin publish) inside the merged range is counted, as a window hint would count it. */
Test(conn, a_merged_hint_covers_every_seq_from_the_first_entrys_position_up_to_its_own)
{
    struct conn c = {0};
    push(&c, "a", 4, 1); /* position 3 */
    push(&c, "a", 6, 1); /* 5 was skipped as the connection's own */
    struct hint *h = mk("a", 9);
    cr_assert_eq(conn_push_hint(&c, h, 3, 0, 1), 1); /* a window hint for 7..9 */
    hint_unref(h);
    cr_assert_eq(c.qlen, 1);
    cr_expect_eq(conn_peek(&c, 0)->h->seq, 9);
    cr_expect_eq(conn_peek(&c, 0)->count, 6, "stands for 4..9 after position 3");
    conn_queue_free(&c);
}

Test(conn, a_control_message_is_a_barrier_no_hint_merges_across)
{
    struct conn c = {0};
    push(&c, "a", 1, 1);
    struct msg *m = msg_copy("x", 1);
    cr_assert_eq(conn_push_msg(&c, m), 0);
    push(&c, "a", 2, 1);
    push(&c, "a", 3, 1);
    cr_assert_eq(c.qlen, 3, "hint, message, then the later hints merged among themselves");
    cr_expect_eq(conn_peek(&c, 0)->h->seq, 1);
    cr_expect_not_null(conn_peek(&c, 1)->m);
    cr_expect_eq(conn_peek(&c, 2)->h->seq, 3);
    cr_expect_eq(conn_peek(&c, 2)->count, 2);
    cr_expect_eq(c.qctl, 1);
    conn_queue_free(&c);
}

Test(conn, coalesced_payload_says_n_and_plain_payload_is_shared)
{
    struct conn c = {.fmt = SUB_JSON};
    struct wire_buf tmp = {0};
    push(&c, "t", 1, 0);
    push(&c, "u", 5, 1);
    push(&c, "u", 6, 1);
    size_t len;
    const uint8_t *p = conn_payload(&c, 0, &tmp, &len);
    cr_assert_not_null(p);
    cr_expect_eq(len, strlen("{\"type\":\"hint\",\"topic\":\"t\",\"seq\":1}"));
    cr_expect(memcmp(p, "{\"type\":\"hint\",\"topic\":\"t\",\"seq\":1}", len) == 0);
    p = conn_payload(&c, 1, &tmp, &len);
    cr_assert_not_null(p);
    cr_expect(memmem(p, len, "\"seq\":6", 7) && memmem(p, len, "\"n\":2", 5), "%.*s", (int)len,
              (const char *)p);
    wire_buf_free(&tmp);
    conn_queue_free(&c);
}

Test(conn, the_index_survives_ring_growth_and_wraparound)
{
    struct conn c = {0};
    char name[16];
    for (int round = 0; round < 5; round++) {
        for (int t = 0; t < 50; t++) {
            snprintf(name, sizeof(name), "t%d", t);
            push(&c, name, (uint64_t)round + 1, 1);
        }
        conn_pop(&c, 25); /* half written: the rest must still coalesce */
    }
    /* Every topic appears at most once among the waiting entries. */
    for (uint32_t i = 0; i < c.qlen; i++)
        for (uint32_t j = i + 1; j < c.qlen; j++)
            cr_assert(!hint_same_topic(conn_peek(&c, i)->h, conn_peek(&c, j)->h),
                      "entries %u and %u", i, j);
    conn_queue_free(&c);
}
