/* auth: the namespace rules without a broker — which pattern covers which subscription, what a
 * grant may read, publisher keys and the admin token, and what the configuration refuses. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "grant.h"
#include "harness.h"
#include "jwt.h"

static int covers(const char *outer, const char *inner)
{
    return auth_covers(outer, strlen(outer), inner, strlen(inner));
}

Test(auth, a_pattern_covers_exactly_the_subscriptions_whose_topics_it_all_matches)
{
    static const struct {
        const char *outer, *inner;
        int want;
    } cases[] = {
        {"feed:*", "feed:1", 1},
        {"feed:*", "feed:*", 1},
        {"feed:*", "feed:", 1},
        {"feed:*", "feed", 0},
        {"feed:*", "feed:1:2", 0},
        {"feed:*", "feed:**", 0},
        {"feed:**", "feed:1:2", 1},
        {"feed:**", "feed:*", 1},
        {"feed:**", "feed:*:x", 1},
        {"feed:**", "feed:**", 1},
        {"feed:**", "feed", 0},
        {"feed:**", "**", 0},
        {"feed:**", "*:1", 0},
        {"**", "**", 1},
        {"**", "anything:at:all", 1},
        {"**", "*", 1},
        {"family:7:*", "family:7:photos", 1},
        {"family:7:*", "family:*:photos", 0},
        {"family:7:*", "family:8:photos", 0},
        {"family:7:*", "family:7:*", 1},
        {"family:7:*", "family:7:**", 0},
        {"user:42", "user:42", 1},
        {"user:42", "user:4", 0},
        {"user:42", "user:420", 0},
        {"user:42", "user:*", 0},
        {"user:42:**", "user:42:doc:1", 1},
        {"user:42:**", "user:42", 0},
        {"user:42:**", "user:42:*", 1},
        {"a:*:c", "a:b:c", 1},
        {"a:*:c", "a:*:c", 1},
        {"a:*:c", "a:*:*", 0},
        {"*", "x", 1},
        {"*", "x:y", 0},
        {"*", "", 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        cr_expect_eq(covers(cases[i].outer, cases[i].inner), cases[i].want,
                     "'%s' covers '%s': want %d", cases[i].outer, cases[i].inner, cases[i].want);
}

/* ---- a loaded configuration ---- */

static char dir[64];

static const char *write_file(const char *name, const char *text)
{
    static char path[8][128];
    static int k;
    char *p = path[k++ % 8];
    snprintf(p, 128, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/nudge-auth-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    nudged_rm_dir(dir);
}

#define SECRET "0123456789abcdef0123456789abcdef-test-only"

static void load_ok(struct auth *a, struct auth_config *c)
{
    char err[512];
    int rc = auth_load(a, c, err, sizeof(err));
    cr_assert_eq(rc, 0, "auth_load: %s", err);
}

static struct auth_grant *grant_for(struct auth *a, const char *sub, const char *topics)
{
    return grant_mint(a, SECRET, sub, topics);
}

static int reads(struct auth *a, struct auth_grant *g, const char *s)
{
    return auth_can_read(a, g, s, strlen(s));
}

Test(auth, a_user_reads_its_own_namespace_and_nobody_elses_by_any_pattern, .init = setup,
     .fini = teardown)
{
    struct auth_config c;
    struct auth a;
    auth_config_default(&c);
    c.secret_files[c.nsecret_files++] = write_file("s", SECRET "\n");
    c.publics[c.npublics++] = "feed:*";
    c.publics[c.npublics++] = "project:**";
    load_ok(&a, &c);
    struct auth_grant *g = grant_for(&a, "42", "[\"family:7:*\"]");
    const char *yes[] = {"user:42",         "user:42:doc:1", "user:42:*",         "user:42:**",
                         "feed:1",          "feed:*",        "project:3:board:9", "project:**",
                         "family:7:photos", "family:7:*"};
    const char *no[] = {"user:43",    "user:4",     "user:420", "user:*",  "user:**",
                        "**",         "*:42",       "*",        "*:*",     "user:43:**",
                        "family:8:x", "family:*:x", "feed:1:2", "feed:**", "other"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        cr_expect(reads(&a, g, yes[i]), "user 42 should read %s", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        cr_expect(!reads(&a, g, no[i]), "user 42 must not read %s", no[i]);
    auth_grant_free(g);
    auth_free(&a);
}

Test(auth, an_anonymous_connection_reads_only_the_anonymous_patterns, .init = setup,
     .fini = teardown)
{
    struct auth_config c;
    struct auth a;
    auth_config_default(&c);
    c.secret_files[c.nsecret_files++] = write_file("s", SECRET);
    c.publics[c.npublics++] = "project:*";
    c.anons[c.nanons++] = "feed:public:*";
    load_ok(&a, &c);
    struct auth_grant *g = NULL;
    const char *why = "";
    cr_assert_eq(auth_sub_hello(&a, (struct wire_str){NULL, 0}, time(NULL), &g, &why), 0);
    cr_assert_eq(g->kind, AUTH_ANON);
    cr_expect(reads(&a, g, "feed:public:1"));
    cr_expect(reads(&a, g, "feed:public:*"));
    cr_expect(!reads(&a, g, "feed:private:1"));
    cr_expect(!reads(&a, g, "project:1"), "public patterns are for token holders");
    cr_expect(!reads(&a, g, "user:1"));
    cr_expect(!reads(&a, g, "**"));
    auth_grant_free(g);
    struct auth_grant *u = grant_for(&a, "7", NULL);
    cr_expect(reads(&a, u, "feed:public:1"), "token holders read the anonymous patterns too");
    cr_expect(reads(&a, u, "project:1"));
    auth_grant_free(u);
    auth_free(&a);
}

Test(auth, without_token_keys_or_anonymous_patterns_everything_is_open, .init = setup,
     .fini = teardown)
{
    struct auth_config c;
    struct auth a;
    auth_config_default(&c);
    load_ok(&a, &c);
    cr_assert(a.subs_open && a.pubs_open && !a.admin_required);
    struct auth_grant *g = NULL;
    const char *why = "";
    cr_assert_eq(auth_sub_hello(&a, (struct wire_str){"x", 1}, time(NULL), &g, &why), 0);
    cr_expect(reads(&a, g, "user:1"));
    cr_expect(reads(&a, g, "**"));
    auth_free(&a);
}

Test(auth, a_broker_with_token_keys_and_no_anonymous_patterns_requires_a_token, .init = setup,
     .fini = teardown)
{
    struct auth_config c;
    struct auth a;
    auth_config_default(&c);
    c.secret_files[c.nsecret_files++] = write_file("s", SECRET);
    load_ok(&a, &c);
    struct auth_grant *g = NULL;
    const char *why = "";
    cr_assert_eq(auth_sub_hello(&a, (struct wire_str){NULL, 0}, time(NULL), &g, &why),
                 WIRE_C_UNAUTHORIZED);
    cr_expect(strstr(why, "requires a token"), "%s", why);
    cr_expect_eq(stat_get(&a.st->token_required), 1);
    auth_free(&a);
}

Test(auth, public_anonymous_and_token_patterns_may_not_reach_into_user, .init = setup,
     .fini = teardown)
{
    const char *bad[] = {"user:*", "**", "*:1", "user:42", "feed:pro*"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct auth_config c;
        struct auth a;
        char err[512];
        auth_config_default(&c);
        c.secret_files[c.nsecret_files++] = write_file("s", SECRET);
        c.publics[c.npublics++] = bad[i];
        cr_expect_eq(auth_load(&a, &c, err, sizeof(err)), -1, "--public %s accepted", bad[i]);
        cr_expect(strstr(err, "--public"), "%s", err);
        auth_free(&a);
    }
    struct auth_config c;
    struct auth a;
    auth_config_default(&c);
    c.secret_files[c.nsecret_files++] = write_file("s", SECRET);
    load_ok(&a, &c);
    char *tok = jwt_mint("HS256", SECRET, strlen(SECRET), NULL,
                         "{\"sub\":\"1\",\"exp\":9999999999,\"topics\":[\"user:*\"]}");
    struct auth_grant *g = NULL;
    const char *why = "";
    struct wire_str t = {tok, (uint32_t)strlen(tok)};
    cr_expect_eq(auth_sub_hello(&a, t, time(NULL), &g, &why), WIRE_C_UNAUTHORIZED);
    cr_expect(strstr(why, "user:"), "%s", why);
    free(tok);
    auth_free(&a);
}

Test(auth, publisher_keys_are_found_by_secret_and_scoped_by_their_patterns, .init = setup,
     .fini = teardown)
{
    struct auth_config c;
    struct auth a;
    auth_config_default(&c);
    c.pub_keys_file = write_file("keys", "# billing may only touch invoices\n"
                                         "billing  billing-secret-0123456789 invoice:** user:*\n"
                                         "\n"
                                         "admin    admin-secret-0123456789abc\n");
    load_ok(&a, &c);
    cr_assert_eq(a.npub_keys, 2);
    cr_assert(!a.pubs_open);
    struct auth_key *k = NULL;
    const char *why = "";
    uint8_t mp[64];
    mp[0] = 0xa0 | 26;
    memcpy(mp + 1, "billing-secret-0123456789x", 26);
    cr_expect_eq(auth_pub_hello(&a, mp, 27, &k, &why), WIRE_C_UNAUTHORIZED, "unknown key");
    mp[0] = 0xa0 | 25;
    cr_assert_eq(auth_pub_hello(&a, mp, 26, &k, &why), 0, "%s", why);
    cr_assert_str_eq(k->name, "billing");
    cr_expect(auth_can_publish(k, "invoice:7", 9));
    cr_expect(auth_can_publish(k, "user:42", 7));
    cr_expect(!auth_can_publish(k, "project:1", 9));
    cr_expect(!auth_can_publish(k, "user:42:x", 9));
    cr_expect_eq(auth_pub_hello(&a, NULL, 0, &k, &why), WIRE_C_UNAUTHORIZED, "no key");
    cr_expect(strstr(why, "requires an API key"), "%s", why);
    cr_expect_eq(stat_get(&a.st->pub_refused), 2);
    auth_free(&a);
}

Test(auth, a_short_publisher_secret_or_a_bad_line_is_refused_at_load_naming_the_line, .init = setup,
     .fini = teardown)
{
    const char *files[] = {"k short\n", "lonely\n", "k long-enough-secret-123 pro*\n", "# only\n"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        struct auth_config c;
        struct auth a;
        char err[512];
        auth_config_default(&c);
        c.pub_keys_file = write_file("keys", files[i]);
        cr_expect_eq(auth_load(&a, &c, err, sizeof(err)), -1, "accepted: %s", files[i]);
        cr_expect(strstr(err, "keys"), "%s", err);
        cr_expect(!strstr(err, "long-enough-secret"), "the secret is echoed: %s", err);
        auth_free(&a);
    }
}

Test(auth, the_admin_token_is_checked_as_a_bearer_token, .init = setup, .fini = teardown)
{
    struct auth_config c;
    struct auth a;
    auth_config_default(&c);
    c.admin_token_file = write_file("admin", "admin-token-0123456789\n");
    load_ok(&a, &c);
    const char *good = "Bearer admin-token-0123456789";
    cr_expect(auth_admin_ok(&a, good, strlen(good)));
    cr_expect(!auth_admin_ok(&a, NULL, 0));
    cr_expect(!auth_admin_ok(&a, "Bearer admin-token-012345678", 28));
    cr_expect(!auth_admin_ok(&a, "Basic admin-token-0123456789", 28));
    cr_expect_eq(stat_get(&a.st->admin_refused), 3);
    auth_free(&a);
}

Test(auth, a_keys_rate_allows_a_second_of_burst_then_one_publish_per_interval, .init = setup,
     .fini = teardown)
{
    struct auth_config c;
    struct auth a;
    auth_config_default(&c);
    c.pub_rate = 1000; /* for keys without their own rate= */
    c.pub_keys_file = write_file("keys", "slow slow-secret-0123456789 rate=4 feed:*\n"
                                         "fast fast-secret-0123456789\n");
    load_ok(&a, &c);
    struct auth_key *slow = &a.pub_keys[0], *fast = &a.pub_keys[1];
    cr_assert_eq(slow->rate, 4);
    cr_assert_eq(fast->rate, 1000);
    cr_assert_eq(slow->npatterns, 1, "rate= is not a pattern");
    uint64_t t = 5000000000ull; /* ns */
    for (int i = 0; i < 4; i++)
        cr_expect(auth_pub_allow(&a, slow, t), "burst publish %d", i);
    cr_expect(!auth_pub_allow(&a, slow, t), "the fifth within the same instant");
    cr_expect(!auth_pub_allow(&a, slow, t + 200000000ull), "a fifth of a second later: not yet");
    cr_expect(auth_pub_allow(&a, slow, t + 250000000ull), "a quarter second later: one more");
    cr_expect(!auth_pub_allow(&a, slow, t + 260000000ull));
    cr_expect(auth_pub_allow(&a, slow, t + 10000000000ull), "ten seconds later");
    cr_expect_eq(stat_get(&a.st->rate_limited), 3);
    for (int i = 0; i < 1000; i++)
        cr_expect(auth_pub_allow(&a, fast, t), "fast %d", i);
    cr_expect(!auth_pub_allow(&a, fast, t));
    cr_expect(auth_pub_allow(&a, NULL, t), "no key (development mode): no rate");
    auth_free(&a);
}

/* The log names each refusal (auth_refusal_name): every why these functions set has a name,
 * none falls back to "refused". */
Test(auth, every_refusal_has_a_reason_name_for_the_log, .init = setup, .fini = teardown)
{
    struct auth_config c;
    struct auth a;
    auth_config_default(&c);
    c.secret_files[c.nsecret_files++] = write_file("s", SECRET);
    c.pub_keys_file = write_file("keys", "k key-secret-0123456789\n");
    load_ok(&a, &c);
    struct auth_grant *g = NULL;
    struct auth_key *k = NULL;
    const char *why = "";
    int64_t now = time(NULL);
    cr_assert_eq(auth_sub_hello(&a, (struct wire_str){NULL, 0}, now, &g, &why), 16);
    cr_expect_str_eq(auth_refusal_name(why), "token_required");
    char *forged = jwt_mint("HS256", "not-the-secret-0123456789abcdef0123", 35, NULL,
                            "{\"sub\":\"1\",\"exp\":9999999999}");
    cr_assert_eq(
        auth_sub_hello(&a, (struct wire_str){forged, (uint32_t)strlen(forged)}, now, &g, &why), 16);
    cr_expect_str_eq(auth_refusal_name(why), "signature");
    char *reach = jwt_mint("HS256", SECRET, strlen(SECRET), NULL,
                           "{\"sub\":\"1\",\"exp\":9999999999,\"topics\":[\"user:*\"]}");
    cr_assert_eq(
        auth_sub_hello(&a, (struct wire_str){reach, (uint32_t)strlen(reach)}, now, &g, &why), 16);
    cr_expect_str_eq(auth_refusal_name(why), "claims");
    struct auth_grant *mine = grant_for(&a, "1", NULL);
    char *other =
        jwt_mint("HS256", SECRET, strlen(SECRET), NULL, "{\"sub\":\"2\",\"exp\":9999999999}");
    cr_assert_eq(
        auth_refresh(&a, mine, (struct wire_str){other, (uint32_t)strlen(other)}, now, &g, &why),
        16);
    cr_expect_str_eq(auth_refusal_name(why), "sub_changed");
    uint8_t notstr = 0x01;
    cr_assert_eq(auth_pub_hello(&a, &notstr, 1, &k, &why), 16);
    cr_expect_str_eq(auth_refusal_name(why), "api_key");
    cr_assert_eq(auth_pub_hello(&a, NULL, 0, &k, &why), 16);
    cr_expect_str_eq(auth_refusal_name(why), "api_key");
    cr_assert_eq(auth_pub_key(&a, "wrong", 5, &k, &why), 16);
    cr_expect_str_eq(auth_refusal_name(why), "api_key");
    cr_assert_eq(auth_pub_key(&a, NULL, 0, &k, &why), 16);
    cr_expect_str_eq(auth_refusal_name(why), "api_key");
    cr_expect_str_eq(auth_refusal_name("something else"), "refused");
    auth_grant_free(mine);
    free(forged);
    free(reach);
    free(other);
    auth_free(&a);

    /* Anonymous reading and no token keys: a token cannot be checked. */
    auth_config_default(&c);
    c.anons[c.nanons++] = "news:*";
    load_ok(&a, &c);
    cr_assert_eq(auth_sub_hello(&a, (struct wire_str){"x.y.z", 5}, now, &g, &why), 16);
    cr_expect_str_eq(auth_refusal_name(why), "alg");
    auth_free(&a);
}
