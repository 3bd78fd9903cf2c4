/* Unit tests of the revocation table (broker/session/revoke.c): older tokens of a revoked user
 * are refused and newer ones not, entries expire after keep_s, a full table refuses. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "revoke.h"

static struct revoke r;

static void setup(void)
{
    cr_assert_eq(revoke_init(&r, 3600), 0);
}

static void teardown(void)
{
    revoke_free(&r);
}

TestSuite(revoke, .init = setup, .fini = teardown);

Test(revoke, refuses_a_users_tokens_issued_before_the_moment_and_no_others)
{
    int64_t b = 0;
    cr_expect_eq(revoke_check(&r, "u1", 2, 1, 999, 1000, &b), 0, "nobody revoked yet");
    cr_assert_eq(revoke_add(&r, "u1", 2, 1000, 1000), 0);
    cr_expect_eq(revoke_check(&r, "u1", 2, 1, 999, 1001, &b), 1, "issued before");
    cr_expect_eq(b, 1000);
    cr_expect_eq(revoke_check(&r, "u1", 2, 0, 0, 1001, &b), 1, "no iat: cannot be newer");
    cr_expect_eq(revoke_check(&r, "u1", 2, 1, 1000, 1001, &b), 0, "issued in that second");
    cr_expect_eq(revoke_check(&r, "u1", 2, 1, 1005, 1006, &b), 0, "issued after");
    cr_expect_eq(revoke_check(&r, "u10", 3, 1, 999, 1001, &b), 0, "another user");
    cr_expect_eq(revoke_check(&r, "u", 1, 1, 999, 1001, &b), 0, "a prefix");
    /* Revoked again later: the later moment counts, and the entry lives on from then. */
    cr_assert_eq(revoke_add(&r, "u1", 2, 2000, 2000), 0);
    cr_expect_eq(revoke_count(&r), 1);
    cr_expect_eq(revoke_check(&r, "u1", 2, 1, 1500, 2001, &b), 1);
    cr_expect_eq(revoke_check(&r, "u1", 2, 1, 1500, 2000 + 3599, &b), 1, "kept keep_s");
    cr_expect_eq(revoke_check(&r, "u1", 2, 1, 1500, 2000 + 3600, &b), 0, "then forgotten");
    cr_expect_eq(revoke_count(&r), 0);
}

Test(revoke, a_full_table_refuses_a_new_user_until_entries_expire)
{
    char name[16];
    for (int i = 0; i < REVOKE_MAX; i++) {
        int n = snprintf(name, sizeof name, "user%d", i);
        cr_assert_eq(revoke_add(&r, name, (size_t)n, 100 + i / 1000, 100 + i / 1000), 0);
    }
    cr_expect_eq(revoke_add(&r, "late", 4, 200, 200), -ENOSPC);
    cr_expect_eq(revoke_add(&r, "user7", 5, 200, 200), 0, "a user already in it is updated");
    int64_t b = 0;
    cr_expect_eq(revoke_check(&r, "user70000", 9, 1, 0, 200, &b), 0);
    cr_expect_eq(revoke_check(&r, "user65535", 9, 1, 0, 200, &b), 1);
    /* The first thousand (revoked at 100) expire at 100 + 3600: room again. */
    cr_expect_eq(revoke_add(&r, "late", 4, 3700, 3700), 0);
    cr_expect_eq(revoke_check(&r, "user1", 5, 1, 0, 3700, &b), 0, "expired");
    cr_expect_eq(revoke_check(&r, "user7", 5, 1, 0, 3700, &b), 1, "renewed at 200");
}
