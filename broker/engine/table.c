/* table: see table.h. Incremental growth follows Redis's dict: while `old` is set, lookups look
 * in both arrays and every add/remove/find moves MOVE_STEP old buckets into the new array, so
 * the move finishes long before the new array fills (it has twice the buckets). */
#include "table.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MOVE_STEP 4

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                   \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = ROTL(v1, 13);                                                                         \
        v1 ^= v0;                                                                                  \
        v0 = ROTL(v0, 32);                                                                         \
        v2 += v3;                                                                                  \
        v3 = ROTL(v3, 16);                                                                         \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = ROTL(v3, 21);                                                                         \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = ROTL(v1, 17);                                                                         \
        v1 ^= v2;                                                                                  \
        v2 = ROTL(v2, 32);                                                                         \
    } while (0)

uint64_t siphash(uint64_t k0, uint64_t k1, const void *p, size_t len)
{
    const uint8_t *in = p;
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0, v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0, v3 = 0x7465646279746573ULL ^ k1;
    uint64_t b = ((uint64_t)len) << 56;
    size_t i, full = len & ~(size_t)7;
    for (i = 0; i < full; i += 8) {
        uint64_t m;
        memcpy(&m, in + i, 8); /* little-endian hosts; the value only needs to be stable here */
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    for (size_t j = 0; j < (len & 7); j++)
        b |= ((uint64_t)in[i + j]) << (8 * j);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

int table_init(struct table *t, uint64_t k0, uint64_t k1)
{
    memset(t, 0, sizeof(*t));
    t->nb = 64;
    t->b = calloc(t->nb, sizeof(*t->b));
    if (!t->b) return -ENOMEM;
    t->k0 = k0;
    t->k1 = k1;
    return 0;
}

void table_free(struct table *t)
{
    free(t->b);
    free(t->old);
    t->b = t->old = NULL;
    t->nb = t->nold = t->count = t->moved = 0;
}

uint64_t table_hash(const struct table *t, const void *p, size_t len)
{
    return siphash(t->k0, t->k1, p, len);
}

/* Move up to n old buckets into the new array; drop the old array once it is empty. */
static void move_some(struct table *t, size_t n)
{
    if (!t->old) return;
    while (n-- && t->moved < t->nold) {
        struct tnode *e = t->old[t->moved];
        while (e) {
            struct tnode *next = e->next;
            size_t i = e->hash & (t->nb - 1);
            e->next = t->b[i];
            t->b[i] = e;
            e = next;
        }
        t->old[t->moved++] = NULL;
    }
    if (t->moved == t->nold) {
        free(t->old);
        t->old = NULL;
        t->nold = t->moved = 0;
    }
}

static struct tnode **slot(struct table *t, uint64_t hash)
{
    if (t->old) {
        size_t i = hash & (t->nold - 1);
        if (i >= t->moved) return &t->old[i];
    }
    return &t->b[hash & (t->nb - 1)];
}

struct tnode *table_find(struct table *t, const char *name, size_t len, uint64_t hash)
{
    move_some(t, MOVE_STEP);
    for (struct tnode *e = *slot(t, hash); e; e = e->next)
        if (e->hash == hash && e->len == len && memcmp(e->name, name, len) == 0) return e;
    return NULL;
}

void table_add(struct table *t, struct tnode *n)
{
    move_some(t, MOVE_STEP);
    if (!t->old && t->count >= t->nb) {
        struct tnode **nb = calloc(t->nb * 2, sizeof(*nb));
        if (nb) { /* without memory, keep the old array: longer chains, still correct */
            t->old = t->b;
            t->nold = t->nb;
            t->moved = 0;
            t->b = nb;
            t->nb *= 2;
        }
    }
    struct tnode **s = slot(t, n->hash);
    n->next = *s;
    *s = n;
    t->count++;
}

void table_remove(struct table *t, struct tnode *n)
{
    move_some(t, MOVE_STEP);
    struct tnode **pp = slot(t, n->hash);
    while (*pp && *pp != n)
        pp = &(*pp)->next;
    if (!*pp) return;
    *pp = n->next;
    n->next = NULL;
    t->count--;
}

static void drain(struct tnode **b, size_t n, void (*fn)(void *arg, struct tnode *n), void *arg)
{
    for (size_t i = 0; b && i < n; i++) {
        struct tnode *e = b[i];
        b[i] = NULL;
        while (e) {
            struct tnode *next = e->next;
            e->next = NULL;
            fn(arg, e);
            e = next;
        }
    }
}

void table_drain(struct table *t, void (*fn)(void *arg, struct tnode *n), void *arg)
{
    drain(t->old, t->nold, fn, arg);
    drain(t->b, t->nb, fn, arg);
    t->count = 0;
}
