/* match: a trie over topic segments. Each node stands for a pattern prefix and holds
 *   - its literal children in a small chained hash table keyed by segment bytes, hashed with
 *     SipHash under a random per-registry key (subscribers choose segments: no flooding);
 *   - its "*" child, kept apart so that a topic segment follows at most two edges per node;
 *   - here: the subs whose pattern ends at this node;
 *   - rest: the subs whose pattern is this prefix followed by a final "**".
 * match_each follows, for each topic segment, the literal edge and the "*" edge of every node
 * it reached, and collects `rest` of every node passed with at least one segment still to come,
 * and `here` of the nodes reached when the topic ends. The walk is iterative (parent pointers,
 * the segment bounds re-derived from the topic on the way up): no recursion and no allocation,
 * however deep the trie.
 * Invariants: every node but the root leads to at least one registered pair (here, rest, star
 * or a literal child is non-empty), so memory follows the live patterns; removal prunes
 * bottom-up to keep it so. A (pattern, sub) pair is registered at most once. A node's table
 * is resized incrementally, as table.c does: a new array takes over and every insert or removal
 * moves MOVE_STEP buckets of the old one, so a node with 100,000 children never pauses a loop for
 * a full rehash; load stays within [1/4, 1] outside a move. Freed when its last child goes. */
#include "match.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "table.h"

/* A sub list: a small array; order does not matter, so removal swaps in the last entry. */
struct subv {
    void **v;
    size_t n, cap;
};

struct node {
    struct node *parent; /* NULL for the root */
    struct node *hnext;  /* chain in the parent's table */
    struct node *star;   /* the "*" child */
    struct node **tab;   /* literal children; ntab buckets (a power of two) or NULL */
    size_t ntab, nkids;
    struct node **old;  /* buckets being moved into tab, or NULL */
    size_t nold, moved; /* old buckets [0, moved) are empty */
    struct subv here, rest;
    uint64_t hash; /* of seg, under the registry's key; unused for "*" nodes and the root */
    size_t len;
    char seg[]; /* len bytes, no NUL: the literal segment leading here */
};

struct match {
    struct node *root;
    size_t count; /* registered pairs */
    size_t nodes; /* allocated nodes, root included */
    uint64_t k0, k1;
};

enum { TAB_MIN = 4, MOVE_STEP = 4 };

/* ---- segments ----------------------------------------------------------------------------- */

/* End of the segment starting at pos: the index of the next ':' or len. */
static size_t seg_end(const char *s, size_t len, size_t pos)
{
    const char *c = pos < len ? memchr(s + pos, ':', len - pos) : NULL;
    return c ? (size_t)(c - s) : len;
}

/* Start of the segment ending at end (end is a ':' index or len). */
static size_t seg_start(const char *s, size_t end)
{
    while (end > 0 && s[end - 1] != ':')
        end--;
    return end;
}

static int is_star(const char *p, size_t n)
{
    return n == 1 && p[0] == '*';
}

static int is_rest(const char *p, size_t n)
{
    return n == 2 && p[0] == '*' && p[1] == '*';
}

int match_kind(const char *s, size_t len)
{
    if (!memchr(s, '*', len)) return 0;
    for (size_t pos = 0;; pos++) {
        size_t end = seg_end(s, len, pos);
        const char *p = s + pos;
        size_t n = end - pos;
        if (memchr(p, '*', n) && !is_star(p, n) && !(is_rest(p, n) && end == len)) return -1;
        if (end == len) return 1;
        pos = end;
    }
}

int match_one(const char *pat, size_t plen, const char *topic, size_t tlen)
{
    if (match_kind(pat, plen) < 0) return -1;
    /* Both strings have at least one segment; step through them in lockstep. */
    for (size_t pp = 0, tp = 0;; pp++, tp++) {
        size_t pe = seg_end(pat, plen, pp), te = seg_end(topic, tlen, tp);
        if (is_rest(pat + pp, pe - pp)) return 1; /* last by validity; tp's segment exists */
        if (!is_star(pat + pp, pe - pp) &&
            (pe - pp != te - tp || memcmp(pat + pp, topic + tp, pe - pp) != 0))
            return 0;
        if (pe == plen || te == tlen) return pe == plen && te == tlen;
        pp = pe;
        tp = te;
    }
}

/* ---- sub lists ---------------------------------------------------------------------------- */

static ptrdiff_t subv_find(const struct subv *l, const void *sub)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i] == sub) return (ptrdiff_t)i;
    return -1;
}

static int subv_push(struct subv *l, void *sub)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 2;
        void **v = realloc(l->v, cap * sizeof(*v));
        if (!v) return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = sub;
    return 0;
}

static void subv_del(struct subv *l, size_t i)
{
    l->v[i] = l->v[--l->n];
    if (l->n == 0) {
        free(l->v);
        l->v = NULL;
        l->cap = 0;
    } else if (l->cap > 8 && l->n < l->cap / 4) {
        /* Give memory back when a crowd unsubscribes; halving keeps push amortised O(1). */
        void **v = realloc(l->v, (l->cap / 2) * sizeof(*v));
        if (v) {
            l->v = v;
            l->cap /= 2;
        }
    }
}

/* ---- nodes and their child tables --------------------------------------------------------- */

static struct node *node_new(struct match *m, struct node *parent, const char *seg, size_t len,
                             uint64_t hash)
{
    struct node *n = calloc(1, sizeof(*n) + len);
    if (!n) return NULL;
    n->parent = parent;
    n->hash = hash;
    n->len = len;
    if (len) memcpy(n->seg, seg, len);
    m->nodes++;
    return n;
}

static void node_free(struct match *m, struct node *n)
{
    free(n->here.v);
    free(n->rest.v);
    free(n->tab);
    free(n->old);
    free(n);
    m->nodes--;
}

static int node_empty(const struct node *n)
{
    return !n->star && n->nkids == 0 && n->here.n == 0 && n->rest.n == 0;
}

static uint64_t seg_hash(const struct match *m, const char *seg, size_t len)
{
    return siphash(m->k0, m->k1, seg, len);
}

/* The chain a child with hash h is on: in the old array while its bucket has not moved yet. */
static struct node **chain(const struct node *n, uint64_t h)
{
    if (n->old) {
        size_t i = h & (n->nold - 1);
        if (i >= n->moved) return &n->old[i];
    }
    return &n->tab[h & (n->ntab - 1)];
}

/* The literal child of n for seg, or NULL. *visits counts the chain entries compared. */
static struct node *kid_find(const struct node *n, const char *seg, size_t len, uint64_t h,
                             size_t *visits)
{
    if (!n->tab) return NULL;
    for (struct node *c = *chain(n, h); c; c = c->hnext) {
        (*visits)++;
        if (c->hash == h && c->len == len && memcmp(c->seg, seg, len) == 0) return c;
    }
    return NULL;
}

/* Move up to k old buckets into tab; drop the old array once it is empty. */
static void tab_move(struct node *n, size_t k)
{
    if (!n->old) return;
    while (k-- && n->moved < n->nold) {
        struct node *c = n->old[n->moved];
        while (c) {
            struct node *next = c->hnext;
            struct node **b = &n->tab[c->hash & (n->ntab - 1)];
            c->hnext = *b;
            *b = c;
            c = next;
        }
        n->old[n->moved++] = NULL;
    }
    if (n->moved == n->nold) {
        free(n->old);
        n->old = NULL;
        n->nold = n->moved = 0;
    }
}

/* Start moving n's children into an array of ntab buckets. On OOM the old array stays: longer
 * chains, still correct. */
static void tab_resize(struct node *n, size_t ntab)
{
    struct node **tab = calloc(ntab, sizeof(*tab));
    if (!tab) return;
    n->old = n->tab;
    n->nold = n->ntab;
    n->moved = 0;
    n->tab = tab;
    n->ntab = ntab;
    tab_move(n, MOVE_STEP);
}

static int kid_insert(struct node *n, struct node *c)
{
    if (!n->tab) {
        n->tab = calloc(TAB_MIN, sizeof(*n->tab));
        if (!n->tab) return -ENOMEM;
        n->ntab = TAB_MIN;
    } else {
        tab_move(n, MOVE_STEP);
        if (!n->old && n->nkids >= n->ntab) tab_resize(n, n->ntab * 2);
    }
    struct node **b = chain(n, c->hash);
    c->hnext = *b;
    *b = c;
    n->nkids++;
    return 0;
}

static void kid_unlink(struct node *n, struct node *c)
{
    tab_move(n, MOVE_STEP);
    struct node **pp = chain(n, c->hash);
    while (*pp != c)
        pp = &(*pp)->hnext;
    *pp = c->hnext;
    n->nkids--;
    if (n->nkids == 0) {
        free(n->tab);
        free(n->old);
        n->tab = n->old = NULL;
        n->ntab = n->nold = n->moved = 0;
    } else if (!n->old && n->ntab > TAB_MIN && n->nkids < n->ntab / 4) {
        tab_resize(n, n->ntab / 2); /* load stays within [1/4, 1]: no thrashing at the edges */
    }
}

/* Free n and its ancestors while they lead nowhere (the invariant at the top). */
static void prune(struct match *m, struct node *n)
{
    while (n->parent && node_empty(n)) {
        struct node *p = n->parent;
        if (p->star == n)
            p->star = NULL;
        else
            kid_unlink(p, n);
        node_free(m, n);
        n = p;
    }
}

/* ---- registry ----------------------------------------------------------------------------- */

static void seed_key(struct match *m)
{
    uint64_t k[2];
    ssize_t r;
    do
        r = getrandom(k, sizeof(k), 0);
    while (r < 0 && errno == EINTR);
    if (r != (ssize_t)sizeof(k)) {
        /* Only without getrandom (nudged itself refuses to start then): a weaker key from the
         * clock and ASLR beats a constant one. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        k[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)m;
        k[1] = siphash(k[0], (uint64_t)(uintptr_t)&ts, &k[0], sizeof(k[0]));
    }
    m->k0 = k[0];
    m->k1 = k[1];
}

struct match *match_new(void)
{
    struct match *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->root = node_new(m, NULL, NULL, 0, 0);
    if (!m->root) {
        free(m);
        return NULL;
    }
    seed_key(m);
    return m;
}

void match_free(struct match *m)
{
    if (!m) return;
    /* Flatten the trie into a work list threaded through hnext (no recursion, no allocation):
     * each node popped pushes its children, then goes. O(nodes + buckets). */
    struct node *todo = m->root;
    while (todo) {
        struct node *n = todo;
        todo = n->hnext;
        if (n->star) {
            n->star->hnext = todo;
            todo = n->star;
        }
        for (int a = 0; a < 2; a++) {
            struct node **tab = a ? n->old : n->tab;
            size_t ntab = a ? n->nold : n->ntab;
            for (size_t i = 0; tab && i < ntab; i++) {
                struct node *c = tab[i];
                while (c) {
                    struct node *next = c->hnext;
                    c->hnext = todo;
                    todo = c;
                    c = next;
                }
            }
        }
        node_free(m, n);
    }
    free(m);
}

/* glibc's malloc rounds a request up to 16 bytes and adds an 8-byte header (16 on the whole):
 * what a chunk of n bytes really takes. */
static size_t chunk(size_t n)
{
    return (n + 8 + 15) & ~(size_t)15;
}

size_t match_segments(const char *s, size_t len)
{
    size_t n = 1;
    for (const char *p = s, *end = s + len; (p = memchr(p, ':', (size_t)(end - p))) != NULL; p++)
        n++;
    return n;
}

size_t match_cost(const char *pat, size_t len)
{
    size_t segs = match_segments(pat, len);
    /* Per segment: the node with its bytes (at most the pattern's length over all of them), the
     * parent's child table at its smallest; then the list holding the sub (grown to 2). */
    return segs * (chunk(sizeof(struct node)) + chunk(TAB_MIN * sizeof(struct node *))) + len +
           chunk(2 * sizeof(void *));
}

size_t match_count(const struct match *m)
{
    return m->count;
}

size_t match__nodes(const struct match *m)
{
    return m->nodes;
}

/* The sub list a valid pattern ends in, creating the missing nodes when create is set; *at is
 * the node holding it. NULL when the path is missing (create unset) or on OOM (create set), with
 * *at the deepest node reached, for the caller to prune what this call made. */
static struct subv *pattern_list(struct match *m, const char *pat, size_t len, int create,
                                 struct node **at)
{
    struct node *n = m->root;
    struct subv *list = NULL;
    size_t unused = 0;
    for (size_t pos = 0;; pos++) {
        size_t end = seg_end(pat, len, pos);
        const char *p = pat + pos;
        size_t sl = end - pos;
        if (is_rest(p, sl)) {
            list = &n->rest;
            break;
        }
        struct node *c;
        if (is_star(p, sl)) {
            c = n->star;
            if (!c && create && (c = node_new(m, n, NULL, 0, 0)) != NULL) n->star = c;
        } else {
            uint64_t h = seg_hash(m, p, sl);
            c = kid_find(n, p, sl, h, &unused);
            if (!c && create && (c = node_new(m, n, p, sl, h)) != NULL && kid_insert(n, c)) {
                node_free(m, c);
                c = NULL;
            }
        }
        if (!c) break;
        n = c;
        if (end == len) {
            list = &n->here;
            break;
        }
        pos = end;
    }
    *at = n;
    return list;
}

int match_add(struct match *m, const char *pat, size_t len, void *sub)
{
    if (match_kind(pat, len) != 1) return -EINVAL;
    struct node *n;
    struct subv *l = pattern_list(m, pat, len, 1, &n);
    int err = 0;
    if (!l)
        err = -ENOMEM;
    else if (subv_find(l, sub) >= 0)
        err = -EEXIST;
    else if (subv_push(l, sub))
        err = -ENOMEM;
    if (err) {
        prune(m, n); /* drop the nodes this call made for nothing */
        return err;
    }
    m->count++;
    return 0;
}

int match_remove(struct match *m, const char *pat, size_t len, void *sub)
{
    if (match_kind(pat, len) != 1) return -ENOENT; /* never registered: match_add refuses it */
    struct node *n;
    struct subv *l = pattern_list(m, pat, len, 0, &n);
    ptrdiff_t i = l ? subv_find(l, sub) : -1;
    if (i < 0) return -ENOENT;
    subv_del(l, (size_t)i);
    m->count--;
    prune(m, n);
    return 0;
}

/* ---- lookup ------------------------------------------------------------------------------- */

static void emit(const struct subv *l, void (*fn)(void *sub, void *arg), void *arg)
{
    for (size_t i = 0; i < l->n; i++)
        fn(l->v[i], arg);
}

size_t match__each_visits(const struct match *m, const char *topic, size_t len,
                          void (*fn)(void *sub, void *arg), void *arg)
{
    /* Depth-first over the matching paths. n was just entered with pos the start of the next
     * topic segment to consume; pos == len + 1 means the topic is used up. */
    const struct node *root = m->root, *n = root;
    size_t pos = 0, visits = 0;
    for (;;) {
        const struct node *next = NULL;
        size_t end = len;
        visits++;
        if (pos > len) {
            emit(&n->here, fn, arg);
        } else {
            emit(&n->rest, fn, arg); /* "**" here: at least one segment remains */
            end = seg_end(topic, len, pos);
            next =
                kid_find(n, topic + pos, end - pos, seg_hash(m, topic + pos, end - pos), &visits);
            if (!next) next = n->star;
        }
        /* Nothing below: climb until an ancestor has a "*" child not yet tried, i.e. we come up
         * from its literal child. */
        while (!next) {
            if (n == root) return visits;
            const struct node *from = n;
            n = n->parent;
            end = pos - 1;
            pos = seg_start(topic, end);
            if (n->star && from != n->star) next = n->star;
        }
        n = next;
        pos = end + 1;
    }
}

void match_each(const struct match *m, const char *topic, size_t len,
                void (*fn)(void *sub, void *arg), void *arg)
{
    (void)match__each_visits(m, topic, len, fn, arg);
}
