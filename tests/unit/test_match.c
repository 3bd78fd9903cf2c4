/* Unit tests for broker/match.c: pattern classification, the matching rules of "*" and "**",
 * empty segments, overlapping patterns, pruning, a reference-model check against match_one and
 * the cost of a lookup among many patterns. */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

/* Subs are small integers disguised as pointers; the callback records them. */
#define SUB(i) ((void *)(uintptr_t)(i))

struct hits {
    uintptr_t *v;
    size_t n, cap;
};

static void record(void *sub, void *arg)
{
    struct hits *h = arg;
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->v = realloc(h->v, h->cap * sizeof(*h->v));
        cr_assert(h->v);
    }
    h->v[h->n++] = (uintptr_t)sub;
}

static int cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* The subs match_each calls for topic, sorted; h->v is freed by the caller. */
static struct hits each(const struct match *m, const char *topic)
{
    struct hits h = {0};
    match_each(m, topic, strlen(topic), record, &h);
    if (h.n) qsort(h.v, h.n, sizeof(*h.v), cmp_uptr);
    return h;
}

static int kind(const char *s)
{
    return match_kind(s, strlen(s));
}

static int one(const char *pat, const char *topic)
{
    return match_one(pat, strlen(pat), topic, strlen(topic));
}

static int add(struct match *m, const char *pat, uintptr_t sub)
{
    return match_add(m, pat, strlen(pat), SUB(sub));
}

static int rm(struct match *m, const char *pat, uintptr_t sub)
{
    return match_remove(m, pat, strlen(pat), SUB(sub));
}

/* Assert that topic calls exactly the n subs in want (sorted ascending). */
static void expect_subs(const struct match *m, const char *topic, const uintptr_t *want, size_t n)
{
    struct hits h = each(m, topic);
    cr_assert_eq(h.n, n, "topic '%s': %zu calls, want %zu", topic, h.n, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(h.v[i], want[i], "topic '%s': call %zu is sub %zu, want %zu", topic, i,
                     (size_t)h.v[i], (size_t)want[i]);
    free(h.v);
}

#define EXPECT(m, topic, ...)                                                                      \
    do {                                                                                           \
        const uintptr_t want_[] = {0, __VA_ARGS__};                                                \
        expect_subs(m, topic, want_ + 1, sizeof(want_) / sizeof(want_[0]) - 1);                    \
    } while (0)

/* ---- classification ------------------------------------------------------------------------ */

Test(match, plain_topics_are_kind_zero)
{
    cr_expect_eq(kind("project:17"), 0);
    cr_expect_eq(kind("a::b"), 0);
    cr_expect_eq(kind(":"), 0);
    cr_expect_eq(kind(""), 0);
}

Test(match, whole_star_segments_and_a_final_double_star_make_a_pattern)
{
    const char *ok[] = {
        "*",    "**", "project:*", "project:**", "*:b", "a:*:b", "*:*", "org:*:project:**",
        "*:**", ":*", "*:",        "a::*",       "**",  "*::**"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        cr_expect_eq(kind(ok[i]), 1, "'%s'", ok[i]);
}

Test(match, stars_inside_a_segment_or_a_double_star_before_the_end_are_invalid)
{
    const char *bad[] = {"pro*", "*a",    "a*:b",   "a:*b", "a:**:b", "***",
                         "**:a", "a:***", "*:**:*", "**:",  "a:b*",   "x:*y:z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(kind(bad[i]), -1, "'%s'", bad[i]);
        cr_expect_eq(one(bad[i], "anything"), -1, "'%s'", bad[i]);
    }
}

Test(match, add_refuses_invalid_patterns_and_plain_topics)
{
    struct match *m = match_new();
    cr_assert(m);
    const char *bad[] = {"pro*", "a:**:b", "***", "*a", "project:17", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(add(m, bad[i], 1), -EINVAL, "'%s'", bad[i]);
    cr_expect_eq(match_count(m), 0);
    cr_expect_eq(match__nodes(m), 1, "a refused add leaves no node behind");
    cr_expect_eq(rm(m, "pro*", 1), -ENOENT);
    match_free(m);
}

/* ---- the rules, pattern by pattern --------------------------------------------------------- */

Test(match, star_matches_exactly_one_segment)
{
    cr_expect_eq(one("project:*", "project:17"), 1);
    cr_expect_eq(one("project:*", "project"), 0, "not zero segments");
    cr_expect_eq(one("project:*", "project:17:tasks"), 0, "not two segments");
    cr_expect_eq(one("*", "x"), 1);
    cr_expect_eq(one("*", "x:y"), 0);
    cr_expect_eq(one("*:b", "a:b"), 1);
    cr_expect_eq(one("*:b", "a:c"), 0);
    cr_expect_eq(one("*:b", "b"), 0);
    cr_expect_eq(one("a:*:c", "a:c"), 0);
}

Test(match, star_matches_an_empty_segment)
{
    cr_expect_eq(one("project:*", "project:"), 1);
    cr_expect_eq(one("a:*:b", "a::b"), 1);
    cr_expect_eq(one("*", ""), 1, "the empty topic is one empty segment");
    cr_expect_eq(one("*:*", ":"), 1);
    cr_expect_eq(one(":*", ":x"), 1);
    cr_expect_eq(one("*:", "x:"), 1);
    cr_expect_eq(one("*:", "x"), 0);
}

Test(match, empty_segments_count_as_segments)
{
    cr_expect_eq(one("a:*", "a::b"), 0, "a::b has three segments");
    cr_expect_eq(one("a:**", "a::b"), 1);
    cr_expect_eq(one("a:*:*", "a::b"), 1);
    cr_expect_eq(one("a:*:b", "a:b"), 0);
    cr_expect_eq(one("a::*", "a::b"), 1);
    cr_expect_eq(one("a::*", "a:b"), 0);
}

Test(match, double_star_needs_at_least_one_segment)
{
    cr_expect_eq(one("project:**", "project:17"), 1);
    cr_expect_eq(one("project:**", "project:17:tasks"), 1);
    cr_expect_eq(one("project:**", "project:"), 1);
    cr_expect_eq(one("project:**", "project"), 0);
    cr_expect_eq(one("project:**", "projects:1"), 0);
    cr_expect_eq(one("a:*:**", "a:b"), 0);
    cr_expect_eq(one("a:*:**", "a:b:c"), 1);
}

Test(match, double_star_alone_matches_every_topic)
{
    const char *topics[] = {"", "x", ":", "a::b", "org:5:project:17:tasks", "**", "*"};
    struct match *m = match_new();
    cr_assert(m);
    cr_assert_eq(add(m, "**", 7), 0);
    for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
        cr_expect_eq(one("**", topics[i]), 1, "'%s'", topics[i]);
        EXPECT(m, topics[i], 7);
    }
    match_free(m);
}

Test(match, mixed_patterns_match_segment_by_segment)
{
    cr_expect_eq(one("org:*:project:**", "org:5:project:17"), 1);
    cr_expect_eq(one("org:*:project:**", "org:5:project:17:tasks"), 1);
    cr_expect_eq(one("org:*:project:**", "org:5:project"), 0);
    cr_expect_eq(one("org:*:project:**", "org:5:team:17"), 0);
    cr_expect_eq(one("org:*:project:**", "org::project:"), 1);
}

Test(match, plain_topics_given_to_match_one_match_only_themselves)
{
    cr_expect_eq(one("a:b", "a:b"), 1);
    cr_expect_eq(one("a:b", "a:b:c"), 0);
    cr_expect_eq(one("a:b", "a"), 0);
    cr_expect_eq(one("", ""), 1);
    cr_expect_eq(one("", ":"), 0);
}

Test(match, a_star_in_a_topic_is_only_an_ordinary_byte)
{
    struct match *m = match_new();
    cr_assert(m);
    cr_assert_eq(add(m, "a:*", 1), 0);
    cr_assert_eq(add(m, "*:b", 2), 0);
    EXPECT(m, "a:*", 1);
    EXPECT(m, "*:*", );
    EXPECT(m, "*:b", 2);
    cr_expect_eq(one("a:*", "*:*"), 0);
    match_free(m);
}

/* ---- registry ------------------------------------------------------------------------------ */

Test(match, overlapping_patterns_call_back_once_per_matching_pattern)
{
    struct match *m = match_new();
    cr_assert(m);
    cr_assert_eq(add(m, "a:*", 1), 0);
    cr_assert_eq(add(m, "a:**", 2), 0);
    cr_assert_eq(add(m, "*:b", 3), 0);
    cr_assert_eq(add(m, "a:b", 4), -EINVAL, "a plain topic is not a pattern");
    cr_assert_eq(add(m, "*:*", 4), 0);
    cr_assert_eq(add(m, "**", 5), 0);
    cr_assert_eq(match_count(m), 5);
    EXPECT(m, "a:b", 1, 2, 3, 4, 5);
    EXPECT(m, "a:c", 1, 2, 4, 5);
    EXPECT(m, "x:b", 3, 4, 5);
    EXPECT(m, "a:b:c", 2, 5);
    EXPECT(m, "a", 5);
    EXPECT(m, "a:", 1, 2, 4, 5);
    match_free(m);
}

Test(match, the_same_sub_under_two_matching_patterns_is_called_twice)
{
    struct match *m = match_new();
    cr_assert(m);
    cr_assert_eq(add(m, "project:*", 9), 0);
    cr_assert_eq(add(m, "project:**", 9), 0);
    cr_assert_eq(add(m, "*:17", 9), 0);
    EXPECT(m, "project:17", 9, 9, 9);
    EXPECT(m, "project:18", 9, 9);
    EXPECT(m, "project:17:tasks", 9);
    cr_assert_eq(rm(m, "project:**", 9), 0);
    EXPECT(m, "project:17", 9, 9);
    match_free(m);
}

Test(match, the_same_sub_cannot_be_added_twice_under_one_pattern)
{
    struct match *m = match_new();
    cr_assert(m);
    cr_assert_eq(add(m, "a:*", 1), 0);
    cr_expect_eq(add(m, "a:*", 1), -EEXIST);
    cr_expect_eq(add(m, "a:*", 2), 0);
    cr_expect_eq(match_count(m), 2);
    EXPECT(m, "a:x", 1, 2);
    match_free(m);
}

Test(match, many_subs_under_one_pattern_are_all_called)
{
    struct match *m = match_new();
    cr_assert(m);
    for (uintptr_t i = 1; i <= 1000; i++)
        cr_assert_eq(add(m, "feed:**", i), 0);
    struct hits h = each(m, "feed:1:2");
    cr_assert_eq(h.n, 1000);
    for (size_t i = 0; i < h.n; i++)
        cr_assert_eq(h.v[i], i + 1);
    free(h.v);
    for (uintptr_t i = 1; i <= 1000; i += 2)
        cr_assert_eq(rm(m, "feed:**", i), 0);
    h = each(m, "feed:x");
    cr_assert_eq(h.n, 500);
    for (size_t i = 0; i < h.n; i++)
        cr_assert_eq(h.v[i], 2 * (i + 1));
    free(h.v);
    match_free(m);
}

Test(match, deep_topics_of_200_segments_match)
{
    char topic[2000], pat_star[2000], pat_rest[2000];
    size_t t = 0, s = 0, r = 0;
    for (int i = 0; i < 200; i++) {
        t += (size_t)snprintf(topic + t, sizeof(topic) - t, "%s%d", i ? ":" : "", i);
        /* every odd segment a star; the rest pattern stops after 150 segments */
        if (i % 2)
            s += (size_t)snprintf(pat_star + s, sizeof(pat_star) - s, ":*");
        else
            s += (size_t)snprintf(pat_star + s, sizeof(pat_star) - s, "%s%d", i ? ":" : "", i);
        if (i < 150)
            r += (size_t)snprintf(pat_rest + r, sizeof(pat_rest) - r, "%s%d", i ? ":" : "", i);
    }
    snprintf(pat_rest + r, sizeof(pat_rest) - r, ":**");
    cr_assert_eq(kind(pat_star), 1);
    cr_assert_eq(kind(pat_rest), 1);
    cr_expect_eq(one(pat_star, topic), 1);
    cr_expect_eq(one(pat_rest, topic), 1);

    struct match *m = match_new();
    cr_assert(m);
    cr_assert_eq(add(m, pat_star, 1), 0);
    cr_assert_eq(add(m, pat_rest, 2), 0);
    EXPECT(m, topic, 1, 2);
    topic[t - 1] = 'x'; /* last segment "199" -> "19x": the star still takes it */
    EXPECT(m, topic, 1, 2);
    topic[0] = 'y'; /* first segment differs: neither */
    EXPECT(m, topic, );
    cr_assert_eq(rm(m, pat_star, 1), 0);
    cr_assert_eq(rm(m, pat_rest, 2), 0);
    cr_expect_eq(match__nodes(m), 1);
    match_free(m);
}

Test(match, long_segments_are_compared_in_full)
{
    enum { L = 5000 };
    char *pat = malloc(L + 3), *topic = malloc(L + 3);
    cr_assert(pat && topic);
    memset(pat, 'k', L);
    memcpy(pat + L, ":*", 2);
    memset(topic, 'k', L);
    memcpy(topic + L, ":v", 2);
    struct match *m = match_new();
    cr_assert(m);
    cr_assert_eq(match_add(m, pat, L + 2, SUB(1)), 0);
    struct hits h = {0};
    match_each(m, topic, L + 2, record, &h);
    cr_expect_eq(h.n, 1);
    cr_expect_eq(match_one(pat, L + 2, topic, L + 2), 1);
    topic[L - 1] = 'j'; /* differs only in the last byte of the long segment */
    h.n = 0;
    match_each(m, topic, L + 2, record, &h);
    cr_expect_eq(h.n, 0);
    cr_expect_eq(match_one(pat, L + 2, topic, L + 2), 0);
    h.n = 0;
    match_each(m, topic, L - 1, record, &h); /* a proper prefix */
    cr_expect_eq(h.n, 0);
    free(h.v);
    free(pat);
    free(topic);
    match_free(m);
}

Test(match, remove_of_an_unregistered_pair_is_enoent)
{
    struct match *m = match_new();
    cr_assert(m);
    cr_assert_eq(add(m, "a:*", 1), 0);
    cr_expect_eq(rm(m, "a:*", 2), -ENOENT);
    cr_expect_eq(rm(m, "a:**", 1), -ENOENT);
    cr_expect_eq(rm(m, "b:*", 1), -ENOENT);
    cr_expect_eq(rm(m, "a:*:*", 1), -ENOENT);
    cr_expect_eq(rm(m, "a", 1), -ENOENT);
    cr_expect_eq(match_count(m), 1);
    cr_expect_eq(rm(m, "a:*", 1), 0);
    cr_expect_eq(rm(m, "a:*", 1), -ENOENT);
    match_free(m);
}

Test(match, removing_everything_prunes_every_node)
{
    const char *pats[] = {"a:*",       "a:**", "*:b",      "*:*", "**", "org:*:project:**",
                          "a:b:c:d:*", "a::*", "x:*:y:*:z"};
    size_t n = sizeof(pats) / sizeof(pats[0]);
    struct match *m = match_new();
    cr_assert(m);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(add(m, pats[i], 1), 0);
        cr_assert_eq(add(m, pats[i], 2), 0);
    }
    cr_assert_eq(match_count(m), 2 * n);
    cr_assert_gt(match__nodes(m), 10);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(rm(m, pats[i], 1), 0);
    for (size_t i = n; i-- > 0;)
        cr_assert_eq(rm(m, pats[i], 2), 0);
    cr_expect_eq(match_count(m), 0);
    cr_expect_eq(match__nodes(m), 1, "only the root is left");
    EXPECT(m, "a:b", );
    EXPECT(m, "org:1:project:2:x", );
    /* and the registry is as good as new */
    cr_assert_eq(add(m, "a:*", 3), 0);
    EXPECT(m, "a:b", 3);
    match_free(m);
}

Test(match, removing_one_pattern_keeps_the_patterns_sharing_its_prefix)
{
    struct match *m = match_new();
    cr_assert(m);
    cr_assert_eq(add(m, "a:*:c", 1), 0);
    cr_assert_eq(add(m, "a:*", 2), 0);
    cr_assert_eq(add(m, "a:*:**", 3), 0);
    size_t nodes = match__nodes(m);
    cr_assert_eq(rm(m, "a:*:c", 1), 0);
    cr_expect_eq(match__nodes(m), nodes - 1, "only the 'c' node goes");
    EXPECT(m, "a:b", 2);
    EXPECT(m, "a:b:c", 3);
    cr_assert_eq(rm(m, "a:*", 2), 0);
    cr_expect_eq(match__nodes(m), nodes - 1, "the star node still carries a:*:**");
    EXPECT(m, "a:b:c", 3);
    match_free(m);
}

/* ---- reference model ----------------------------------------------------------------------- */

/* xorshift64*: a fixed seed makes a failure reproducible. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

/* Segments from a small alphabet, so that random patterns and topics meet often. */
static const char *const SEGS[] = {"a", "b", "c", "", "abc", "17"};
enum { NSEGS = sizeof(SEGS) / sizeof(SEGS[0]) };

static void rnd_topic(uint64_t *s, char *out, size_t cap)
{
    size_t n = 1 + rnd(s) % 5, o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ":" : "", SEGS[rnd(s) % NSEGS]);
}

static void rnd_pattern(uint64_t *s, char *out, size_t cap)
{
    for (;;) {
        size_t n = 1 + rnd(s) % 5, o = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t r = rnd(s) % 10;
            const char *seg = r < 3 ? "*" : (r == 3 && i == n - 1) ? "**" : SEGS[r % NSEGS];
            o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ":" : "", seg);
        }
        if (kind(out) == 1) return;
    }
}

struct pair {
    char pat[64];
    uintptr_t sub;
};

Test(match, random_adds_and_removes_agree_with_match_one)
{
    enum { OPS = 10000, SUBS = 50 };
    struct pair *model = calloc(OPS, sizeof(*model));
    uintptr_t *want = calloc(OPS, sizeof(*want));
    cr_assert(model && want);
    size_t nmodel = 0, checks = 0;
    uint64_t seed = 0x6e75646765ULL; /* "nudge" */
    struct match *m = match_new();
    cr_assert(m);

    for (size_t op = 0; op < OPS; op++) {
        if (nmodel > 0 && rnd(&seed) % 3 == 0) {
            size_t i = rnd(&seed) % nmodel;
            cr_assert_eq(rm(m, model[i].pat, model[i].sub), 0, "remove %s", model[i].pat);
            model[i] = model[--nmodel];
        } else {
            struct pair p;
            rnd_pattern(&seed, p.pat, sizeof(p.pat));
            p.sub = 1 + rnd(&seed) % SUBS;
            int dup = 0;
            for (size_t i = 0; i < nmodel && !dup; i++)
                dup = model[i].sub == p.sub && strcmp(model[i].pat, p.pat) == 0;
            cr_assert_eq(add(m, p.pat, p.sub), dup ? -EEXIST : 0, "add %s", p.pat);
            if (!dup) model[nmodel++] = p;
        }
        cr_assert_eq(match_count(m), nmodel);
        if (op % 100 != 99) continue;
        for (int t = 0; t < 20; t++) {
            char topic[64];
            rnd_topic(&seed, topic, sizeof(topic));
            size_t nwant = 0;
            for (size_t i = 0; i < nmodel; i++)
                if (one(model[i].pat, topic) == 1) want[nwant++] = model[i].sub;
            qsort(want, nwant, sizeof(*want), cmp_uptr);
            expect_subs(m, topic, want, nwant);
            checks++;
        }
    }
    while (nmodel > 0) {
        nmodel--;
        cr_assert_eq(rm(m, model[nmodel].pat, model[nmodel].sub), 0);
    }
    cr_expect_eq(match_count(m), 0);
    cr_expect_eq(match__nodes(m), 1);
    cr_expect_eq(checks, OPS / 100 * 20);
    free(model);
    free(want);
    match_free(m);
}

/* ---- cost ---------------------------------------------------------------------------------- */

Test(match, a_lookup_among_100000_patterns_visits_only_its_own_path)
{
    enum { N = 100000 };
    struct match *m = match_new();
    cr_assert(m);
    char pat[32];
    for (uintptr_t i = 0; i < N; i++) {
        snprintf(pat, sizeof(pat), "user:%zu:*", (size_t)i);
        cr_assert_eq(add(m, pat, i + 1), 0);
    }
    cr_assert_eq(match_count(m), N);
    struct hits h = {0};
    size_t visits = match__each_visits(m, "user:5:x", 8, record, &h);
    cr_expect_eq(h.n, 1);
    cr_expect_eq(h.v[0], 6, "user:5:* belongs to sub 6");
    /* 4 nodes (root, "user", "5", its "*") plus the hash-chain entries compared on the way:
     * 6 or 7 typically, 11 in the worst of 6000 random keys; 16 would take a chain of ~11 at
     * load <= 1. Linear cost would be 100,000. */
    cr_expect_leq(visits, 16, "visits: %zu", visits);
    cr_log_info("match_each(user:5:x) among %d patterns: %zu visits", N, visits);
    h.n = 0;
    visits = match__each_visits(m, "user:100000:x", 13, record, &h);
    cr_expect_eq(h.n, 0);
    cr_expect_leq(visits, 16, "a miss is as cheap: %zu", visits);
    free(h.v);
    for (uintptr_t i = 0; i < N; i++) {
        snprintf(pat, sizeof(pat), "user:%zu:*", (size_t)i);
        cr_assert_eq(rm(m, pat, i + 1), 0);
    }
    cr_expect_eq(match__nodes(m), 1);
    match_free(m);
}

static void count_call(void *sub, void *arg)
{
    (void)sub;
    (*(size_t *)arg)++;
}

/* The hub's default pattern shape (--max-pattern-segments 16, --max-pattern-stars 3) bounds what
 * one publish walks, whatever patterns are registered: every pattern of that shape matching a
 * 16-segment topic registered at once — 696 of 16 segments and 2,515 "prefix:**" — walks 3,212
 * trie nodes (the prefixes of at most 3 stars), plus one chain entry compared per literal edge. */
Test(match, every_pattern_of_the_default_shape_matching_a_topic_costs_a_bounded_walk)
{
    struct match *m = match_new();
    char pat[64];
    size_t npat = 0;
    for (unsigned len = 1; len <= 16; len++) {
        for (unsigned bits = 0; bits < (1u << len); bits++) {
            if (__builtin_popcount(bits) > 3) continue;
            size_t n = 0;
            for (unsigned k = 0; k < len; k++)
                n += (size_t)snprintf(pat + n, sizeof pat - n, "%s%s", k ? ":" : "",
                                      bits >> (len - 1 - k) & 1 ? "*" : "s");
            if (len == 16) { /* full length: a pattern of its own when it has a star */
                if (bits) cr_assert_eq(match_add(m, pat, n, (void *)(uintptr_t)(npat++ + 1)), 0);
            }
            if (len < 16) { /* prefix:** */
                snprintf(pat + n, sizeof pat - n, ":**");
                cr_assert_eq(match_add(m, pat, n + 3, (void *)(uintptr_t)(npat++ + 1)), 0);
            }
        }
    }
    cr_assert_eq(npat, 696 + 2515);
    const char *topic = "s:s:s:s:s:s:s:s:s:s:s:s:s:s:s:s";
    size_t calls = 0;
    size_t visits = match__each_visits(m, topic, strlen(topic), count_call, &calls);
    cr_assert_eq(calls, npat, "every pattern matches");
    cr_assert_leq(visits, 2 * 3213, "walk touched %zu nodes and chain entries", visits);
    match_free(m);
}
