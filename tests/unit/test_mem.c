/* Memory per idle connection, in bytes, by struct (issue #18 point 5; docs/bench.md §Memory per
 * connection has the whole account, lws's part included). An idle WebSocket subscriber costs the
 * broker: lws's own per-connection allocations (fixed by the library), our struct wsconn (which
 * embeds struct conn), its token grant and one struct sub per subscription. These budgets are
 * what keeps the release figure at or under 2 KiB: glibc rounds a request of n bytes up to a
 * chunk of (n + 8) rounded to 16, so a struct that grows past a budget here costs 16 bytes more
 * per connection at once. tests/integration/test_memory.c checks the whole with the real
 * broker. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "conn.h"
#include "grant.h"
#include "harness.h"
#include "jwt.h"
#include "subs.h"
#include "ws.h"

TestSuite(mem);

/* glibc's chunk for a request of n bytes (as hub.c's sub_cost counts it) */
static size_t chunk(size_t n)
{
    return (n + 8 + 15) & ~(size_t)15;
}

Test(mem, the_per_connection_structs_stay_within_their_budgets)
{
    /* struct conn: every connection's hub state; 400 bytes before issue #18 */
    cr_expect_leq(sizeof(struct conn), 224, "struct conn is %zu bytes", sizeof(struct conn));
    /* struct wsconn, lws's per_session_data: one glibc chunk of 304 (was 480) */
    cr_expect_leq(chunk(ws_conn_size()), 304, "struct wsconn is %zu bytes", ws_conn_size());
    /* one per subscription: a chunk of 96 */
    cr_expect_leq(chunk(sizeof(struct sub)), 96, "struct sub is %zu bytes", sizeof(struct sub));
    /* a token grant is this header plus its sub and topics (was 976 bytes whatever the token) */
    cr_expect_leq(sizeof(struct auth_grant), 24, "struct auth_grant is %zu bytes",
                  sizeof(struct auth_grant));
}

#define SECRET "0123456789abcdef0123456789abcdef-test-only"

static struct auth_grant *grant_for(struct auth *a, const char *sub, const char *topics)
{
    return grant_mint(a, SECRET, sub, topics);
}

Test(mem, a_token_grant_is_sized_to_its_claims)
{
    char dir[64], path[128];
    snprintf(dir, sizeof dir, "/tmp/nudge-mem-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/s", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(SECRET "\n", f);
    fclose(f);
    struct auth_config c;
    struct auth a;
    char err[256];
    auth_config_default(&c);
    c.secret_files[c.nsecret_files++] = path;
    cr_assert_eq(auth_load(&a, &c, err, sizeof err), 0, "%s", err);

    struct auth_grant *g = grant_for(&a, "42", NULL);
    cr_expect_eq(g->kind, AUTH_USER);
    cr_expect_str_eq(g->sub, "42");
    cr_expect_eq(g->ntopics, 0);
    /* the struct and "42\0": one chunk of 32 or 48 bytes, not a kilobyte */
    cr_expect_leq(malloc_usable_size(g), chunk(sizeof(*g) + 3) - 8);
    auth_grant_free(g);

    g = grant_for(&a, "7", "[\"family:7:*\",\"project:**\"]");
    cr_assert_eq(g->ntopics, 2);
    size_t len;
    const char *t = auth_grant_topic(g, 0, &len);
    cr_expect_eq(len, 10);
    cr_expect_str_eq(t, "family:7:*");
    t = auth_grant_topic(g, 1, &len);
    cr_expect_eq(len, 10);
    cr_expect_str_eq(t, "project:**");
    cr_expect(auth_can_read(&a, g, "family:7:x", 10));
    cr_expect(auth_can_read(&a, g, "user:7", 6));
    cr_expect(!auth_can_read(&a, g, "family:8:x", 10));
    auth_grant_free(g);
    auth_free(&a);
    nudged_rm_dir(dir);
}

Test(mem, an_idle_queue_is_freed_by_a_trim_and_grows_again)
{
    struct conn c = {0};
    struct msg *m = msg_copy((const uint8_t *)"welcome", 7);
    cr_assert_not_null(m);
    cr_assert_eq(conn_push_msg(&c, m), 0);
    cr_expect_eq(c.qcap, 2, "a connection's handshake queues two replies: the ring starts at 2");
    conn_queue_trim(&c); /* not empty: kept */
    cr_expect_not_null(c.q);
    conn_pop(&c, 1);
    conn_queue_trim(&c);
    cr_expect_null(c.q);
    cr_expect_eq(c.qcap, 0);
    m = msg_copy((const uint8_t *)"hint", 4);
    cr_assert_eq(conn_push_msg(&c, m), 0);
    cr_expect_eq(c.qlen, 1);
    const struct qent *e = conn_peek(&c, 0);
    cr_assert_not_null(e);
    cr_expect_eq(e->m->len, 4);
    conn_queue_free(&c);
}
