/* table: a chained hash table of intrusive nodes keyed by name, hashed with SipHash-2-4 under a
 * random per-process key (clients choose topic names; a predictable hash would let them build
 * collision chains). Used by the engine (topics), the memory store (histories) and the hubs
 * (subscribed topics). Growth is incremental: when the load passes 1 a table twice the size is
 * allocated and every later operation moves a few buckets across, so no call pays an O(n)
 * rehash on a loop thread. Not thread-safe: each table has one owner. */
#ifndef NUDGE_TABLE_H
#define NUDGE_TABLE_H

#include <stddef.h>
#include <stdint.h>

/* Embedded in the caller's struct; name points at the caller's NUL-terminated copy. */
struct tnode {
    struct tnode *next;
    uint64_t hash;
    const char *name;
    uint32_t len;
};

struct table {
    struct tnode **b; /* current buckets (power of two) */
    size_t nb;
    struct tnode **old; /* buckets being moved into b, or NULL */
    size_t nold;
    size_t moved; /* old buckets [0, moved) are empty */
    size_t count;
    uint64_t k0, k1;
};

/* Initialise an empty table keyed with (k0, k1). Returns 0 or -ENOMEM. */
int table_init(struct table *t, uint64_t k0, uint64_t k1);
/* Free the bucket arrays. Nodes belong to the caller: drain them first (table_drain). */
void table_free(struct table *t);
/* SipHash-2-4 of p[0..len) under the table's key. */
uint64_t table_hash(const struct table *t, const void *p, size_t len);
/* The node named name (hash from table_hash), or NULL. */
struct tnode *table_find(struct table *t, const char *name, size_t len, uint64_t hash);
/* Insert n (n->hash, n->name, n->len set; the name must not be present). The table keeps the
 * pointer until table_remove; the caller owns n. */
void table_add(struct table *t, struct tnode *n);
/* Unlink n (which must be in the table). */
void table_remove(struct table *t, struct tnode *n);
/* Unlink every node, calling fn on each after it is unlinked (fn may free it). */
void table_drain(struct table *t, void (*fn)(void *arg, struct tnode *n), void *arg);

/* SipHash-2-4 of p[0..len) under (k0, k1). */
uint64_t siphash(uint64_t k0, uint64_t k1, const void *p, size_t len);

#endif
