/* libFuzzer target for broker/engine/match.c. The input is up to 32 '\n'-separated lines; each line
 * is both a candidate pattern and a topic. Every line is classified by match_kind and by a
 * reference (split into segments first, then compared, a different algorithm from match.c's);
 * valid patterns are registered twice (under their own sub and under one shared sub); then
 * every line, as a topic, must call back exactly the subs that the reference and match_one
 * say. Half the pairs are removed and the check repeated; then, for even-sized inputs, removing
 * the rest must leave only the root node (odd-sized ones free the populated registry instead);
 * ASan's leak check covers both. Self-contained: the Makefile's fuzz rule links protocol/ only,
 * so the broker sources are included here. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../broker/engine/match.c"
#include "../../broker/engine/table.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_match: %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

enum { MAX_LINES = 32, SHARED = MAX_LINES + 1 };

struct line {
    const char *p;
    size_t len;
    const char **seg; /* segment starts */
    size_t *seglen;
    size_t nseg;
    int kind;
    int own, shared; /* registered under sub i+1 / under SHARED */
};

static int split(struct line *l)
{
    size_t cap = 1;
    for (size_t i = 0; i < l->len; i++)
        cap += l->p[i] == ':';
    l->seg = malloc(cap * sizeof(*l->seg));
    l->seglen = malloc(cap * sizeof(*l->seglen));
    if (!l->seg || !l->seglen) return -1;
    size_t start = 0;
    l->nseg = 0;
    for (size_t i = 0; i <= l->len; i++) {
        if (i == l->len || l->p[i] == ':') {
            l->seg[l->nseg] = l->p + start;
            l->seglen[l->nseg++] = i - start;
            start = i + 1;
        }
    }
    return 0;
}

static int seg_is(const struct line *l, size_t i, const char *s)
{
    return l->seglen[i] == strlen(s) && memcmp(l->seg[i], s, l->seglen[i]) == 0;
}

static int ref_kind(const struct line *l)
{
    int stars = 0;
    for (size_t i = 0; i < l->nseg; i++) {
        if (!memchr(l->seg[i], '*', l->seglen[i])) continue;
        stars = 1;
        if (!seg_is(l, i, "*") && !(seg_is(l, i, "**") && i == l->nseg - 1)) return -1;
    }
    return stars;
}

/* Pattern p (valid or plain) against topic t, segment arrays in hand. */
static int ref_match(const struct line *p, const struct line *t)
{
    for (size_t i = 0;; i++) {
        if (i == p->nseg) return i == t->nseg;
        if (seg_is(p, i, "**")) return t->nseg > i;
        if (i == t->nseg) return 0;
        if (seg_is(p, i, "*")) continue;
        if (p->seglen[i] != t->seglen[i] || memcmp(p->seg[i], t->seg[i], p->seglen[i]) != 0)
            return 0;
    }
}

static void count_hit(void *sub, void *arg)
{
    size_t *hits = arg;
    uintptr_t id = (uintptr_t)sub;
    CHECK(id >= 1 && id <= SHARED);
    hits[id]++;
}

static void check_all(const struct match *m, const struct line *lines, size_t n)
{
    for (size_t t = 0; t < n; t++) {
        size_t hits[SHARED + 1] = {0}, want_shared = 0, total = 0;
        match_each(m, lines[t].p, lines[t].len, count_hit, hits);
        for (size_t i = 0; i < n; i++) {
            int want = lines[i].kind >= 0 && ref_match(&lines[i], &lines[t]);
            int one = match_one(lines[i].p, lines[i].len, lines[t].p, lines[t].len);
            CHECK(one == (lines[i].kind < 0 ? -1 : want));
            CHECK(hits[i + 1] == (size_t)(lines[i].own && want));
            want_shared += (size_t)(lines[i].shared && want);
            total += hits[i + 1];
        }
        CHECK(hits[SHARED] == want_shared);
        CHECK(total + want_shared <= match_count(m));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct line lines[MAX_LINES];
    size_t n = 0, pairs = 0;
    const char *p = size ? (const char *)data : "", *end = p + size;
    memset(lines, 0, sizeof(lines));
    while (n < MAX_LINES) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        lines[n].p = p;
        lines[n].len = (size_t)((nl ? nl : end) - p);
        n++;
        if (!nl) break;
        p = nl + 1;
    }

    struct match *m = match_new();
    CHECK(m);
    for (size_t i = 0; i < n; i++) {
        struct line *l = &lines[i];
        CHECK(split(l) == 0);
        l->kind = match_kind(l->p, l->len);
        CHECK(l->kind == ref_kind(l));
        /* a valid pattern (or a plain topic) matches itself read as a topic */
        CHECK(match_one(l->p, l->len, l->p, l->len) == (l->kind < 0 ? -1 : 1));
        void *own = (void *)(uintptr_t)(i + 1), *shared = (void *)(uintptr_t)SHARED;
        if (l->kind != 1) {
            CHECK(match_add(m, l->p, l->len, own) == -EINVAL);
            CHECK(match_remove(m, l->p, l->len, own) == -ENOENT);
            continue;
        }
        CHECK(match_add(m, l->p, l->len, own) == 0);
        CHECK(match_add(m, l->p, l->len, own) == -EEXIST);
        l->own = 1;
        int dup = 0; /* the shared sub is already under an identical earlier line */
        for (size_t j = 0; j < i && !dup; j++)
            dup = lines[j].shared && lines[j].len == l->len && !memcmp(lines[j].p, l->p, l->len);
        CHECK(match_add(m, l->p, l->len, shared) == (dup ? -EEXIST : 0));
        l->shared = !dup;
        pairs += 1 + (size_t)l->shared;
    }
    CHECK(match_count(m) == pairs);
    check_all(m, lines, n);

    /* Remove every other pair, check again, then remove the rest. */
    for (size_t i = 0; i < n; i += 2) {
        struct line *l = &lines[i];
        if (l->own) CHECK(match_remove(m, l->p, l->len, (void *)(uintptr_t)(i + 1)) == 0);
        if (l->shared) CHECK(match_remove(m, l->p, l->len, (void *)(uintptr_t)SHARED) == 0);
        if (l->own) CHECK(match_remove(m, l->p, l->len, (void *)(uintptr_t)(i + 1)) == -ENOENT);
        pairs -= (size_t)l->own + (size_t)l->shared;
        l->own = l->shared = 0;
    }
    CHECK(match_count(m) == pairs);
    check_all(m, lines, n);
    if (size & 1) goto out; /* match_free of a populated trie, under the leak checker */
    for (size_t i = 1; i < n; i += 2) {
        struct line *l = &lines[i];
        if (l->own) CHECK(match_remove(m, l->p, l->len, (void *)(uintptr_t)(i + 1)) == 0);
        if (l->shared) CHECK(match_remove(m, l->p, l->len, (void *)(uintptr_t)SHARED) == 0);
    }
    CHECK(match_count(m) == 0);
    CHECK(match__nodes(m) == 1);
out:
    match_free(m);
    for (size_t i = 0; i < n; i++) {
        free(lines[i].seg);
        free(lines[i].seglen);
    }
    return 0;
}
