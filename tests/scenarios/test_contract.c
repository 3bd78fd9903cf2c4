/* The delivery contract (docs/guarantees.md) where subscriptions overlap in time and in scope:
 * an exact subscription of a topic the connection already follows through a pattern, pattern
 * and exact subscriptions made while a coalescing window holds publishes, and publish origins
 * that outlive a broker restart. Each case was found by an independent client written from the
 * docs alone; each is reproduced here deterministically, message by message.
 *
 * Every check reads the next message and says what it must be: a hint without "n" is exactly the
 * next seq the connection has, a hint with "n" stands for the n seqs after it (n = seq minus the
 * connection's position), and nothing may come twice. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "nudge.h"
#include "subcheck.h"
#include "wsc.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static uint64_t pub1(nudge_client_t *c, const char *topic, const char *origin, int skip)
{
    const char *t[1] = {topic};
    struct nudge_pub p = {t, 1, NULL, origin, skip};
    uint64_t seq = 0;
    int rc = nudge_publish_ex(c, &p, &seq);
    cr_assert_eq(rc, NUDGE_OK, "publish to %s: %s (%s)", topic, nudge_strerror(rc),
                 nudge_last_error(c));
    return seq;
}

/* ---- (d) origins across a restart ---------------------------------------------------------- */

/* A backend may still hold the conn id of a subscriber of the broker's previous life. It must
 * not name a connection of the new one: that subscriber's hint would be marked own or, with
 * skip_origin, silently dropped. */
Test(contract, a_conn_id_from_before_a_restart_names_no_connection_after_it, .timeout = 60)
{
    char old_ids[3][64];
    struct nudged a;
    subcheck_start(&a, NULL);
    for (int i = 0; i < 3; i++) {
        struct wsc x;
        cr_assert_eq(wsc_open(&x, a.ws_port, SUB_PROTO_JSON), WSC_OK);
        snprintf(old_ids[i], sizeof old_ids[i], "%s", x.conn_id);
        cr_assert(strlen(x.conn_id) > 0 && strlen(x.conn_id) <= 16, "conn id '%s'", x.conn_id);
        wsc_close(&x, 1000);
    }
    cr_assert_eq(nudged_kill(&a), 0);

    struct nudged b;
    subcheck_start(&b, NULL);
    struct wsc w[3];
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(wsc_open(&w[i], b.ws_port, i % 2 ? SUB_PROTO_MSGPACK : SUB_PROTO_JSON),
                     WSC_OK);
        for (int j = 0; j < 3; j++)
            cr_assert_str_neq(w[i].conn_id, old_ids[j], "conn id '%s' given again after a restart",
                              w[i].conn_id);
        for (int j = 0; j < i; j++)
            cr_assert_str_neq(w[i].conn_id, w[j].conn_id);
        cr_assert_eq(wsc_subscribe_v(&w[i], "doc:9", NULL), WSC_OK);
    }
    nudge_client_t *c = subcheck_publisher(&b, "contract-test");
    pub1(c, "doc:9", NULL, 0);
    pub1(c, "doc:9", NULL, 0);
    for (int j = 0; j < 3; j++)
        pub1(c, "doc:9", old_ids[j], 1); /* stale origins: 3, 4, 5 */
    pub1(c, "doc:9", w[1].conn_id, 1);   /* 6: skipped by w[1] only */
    for (int i = 0; i < 3; i++) {
        for (uint64_t s = 1; s <= 5; s++)
            subcheck_expect_hint_own(&w[i], "doc:9", s, 0);
        if (i != 1) subcheck_expect_hint_own(&w[i], "doc:9", 6, 0);
        subcheck_expect_silence(&w[i], 100, "nothing more");
    }
    nudge_close(c);
    for (int i = 0; i < 3; i++)
        wsc_close(&w[i], 1000);
    cr_assert_eq(nudged_stop(&b), 0);
}
