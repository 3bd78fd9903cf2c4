/* topic: chained hash table keyed with SipHash-2-4 (subscribers choose topic names, so the hash
 * must not be predictable), doubled when the load factor passes 1. Subscriptions are intrusive
 * doubly linked nodes shared by two lists — the topic's and the connection's — so unsubscribe and
 * connection close are O(1) per subscription. */
#include "topic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

uint64_t topic_hash(uint64_t k0, uint64_t k1, const void *p, size_t len)
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

int topics_init(struct topics *t, uint64_t k0, uint64_t k1)
{
    memset(t, 0, sizeof(*t));
    t->nbuckets = 64;
    t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
    if (!t->buckets) return -ENOMEM;
    t->k0 = k0;
    t->k1 = k1;
    return 0;
}

void topics_free(struct topics *t)
{
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct topic *tp = t->buckets ? t->buckets[i] : NULL;
        while (tp) {
            struct topic *next = tp->hnext;
            struct sub *s = tp->subs;
            while (s) {
                struct sub *sn = s->tnext;
                free(s);
                s = sn;
            }
            free(tp);
            tp = next;
        }
    }
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}

struct topic *topic_find(const struct topics *t, const char *name, size_t len)
{
    uint64_t h = topic_hash(t->k0, t->k1, name, len);
    for (struct topic *tp = t->buckets[h & (t->nbuckets - 1)]; tp; tp = tp->hnext)
        if (tp->hash == h && tp->len == len && memcmp(tp->name, name, len) == 0) return tp;
    return NULL;
}

static void grow(struct topics *t)
{
    size_t n = t->nbuckets * 2;
    struct topic **nb = calloc(n, sizeof(*nb));
    if (!nb) return; /* keep the old table: slower chains, still correct */
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct topic *tp = t->buckets[i];
        while (tp) {
            struct topic *next = tp->hnext;
            tp->hnext = nb[tp->hash & (n - 1)];
            nb[tp->hash & (n - 1)] = tp;
            tp = next;
        }
    }
    free(t->buckets);
    t->buckets = nb;
    t->nbuckets = n;
}

struct topic *topic_get(struct topics *t, const char *name, size_t len)
{
    struct topic *tp = topic_find(t, name, len);
    if (tp) return tp;
    tp = calloc(1, sizeof(*tp) + len + 1);
    if (!tp) return NULL;
    tp->hash = topic_hash(t->k0, t->k1, name, len);
    tp->len = (uint32_t)len;
    memcpy(tp->name, name, len);
    if (t->count >= t->nbuckets) grow(t);
    size_t b = tp->hash & (t->nbuckets - 1);
    tp->hnext = t->buckets[b];
    t->buckets[b] = tp;
    t->count++;
    return tp;
}

void topic_remove(struct topics *t, struct topic *tp)
{
    struct topic **pp = &t->buckets[tp->hash & (t->nbuckets - 1)];
    while (*pp && *pp != tp)
        pp = &(*pp)->hnext;
    if (!*pp) return;
    *pp = tp->hnext;
    t->count--;
    free(tp);
}

struct sub *topic_subscribe(struct topic *tp, struct conn *conn, struct sub **head)
{
    struct sub *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->topic = tp;
    s->conn = conn;
    s->tnext = tp->subs;
    if (tp->subs) tp->subs->tprev = s;
    tp->subs = s;
    tp->nsubs++;
    s->cnext = *head;
    if (*head) (*head)->cprev = s;
    *head = s;
    return s;
}

struct sub *topic_subscribe_pattern(const char *pat, size_t len, struct conn *conn,
                                    struct sub **head)
{
    struct sub *s = calloc(1, sizeof(*s));
    char *p = malloc(len + 1);
    if (!s || !p) {
        free(s);
        free(p);
        return NULL;
    }
    memcpy(p, pat, len);
    p[len] = '\0';
    s->pat = p;
    s->patlen = (uint32_t)len;
    s->conn = conn;
    s->cnext = *head;
    if (*head) (*head)->cprev = s;
    *head = s;
    return s;
}

struct sub *topic_sub_pattern(struct sub *head, const char *pat, size_t len)
{
    for (struct sub *s = head; s; s = s->cnext)
        if (s->pat && s->patlen == len && memcmp(s->pat, pat, len) == 0) return s;
    return NULL;
}

void topic_unsubscribe(struct sub *s, struct sub **head)
{
    struct topic *tp = s->topic;
    if (tp) {
        if (s->tprev)
            s->tprev->tnext = s->tnext;
        else
            tp->subs = s->tnext;
        if (s->tnext) s->tnext->tprev = s->tprev;
        tp->nsubs--;
    }
    if (s->cprev)
        s->cprev->cnext = s->cnext;
    else
        *head = s->cnext;
    if (s->cnext) s->cnext->cprev = s->cprev;
    free(s->pat);
    free(s);
}

struct sub *topic_sub_of(struct sub *head, const struct topic *tp)
{
    /* Linear in the connection's subscriptions (bounded by --max-subs); a per-connection index
     * can replace it if profiles ever show it. */
    for (struct sub *s = head; s; s = s->cnext)
        if (s->topic == tp) return s;
    return NULL;
}
