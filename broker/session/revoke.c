/* revoke: see revoke.h. Entries sit in a hash table keyed by the user (SipHash under a random
 * key: users are names an attacker may choose) and on a list in the order they were last
 * revoked, which is also the order they expire in (every entry is kept the same keep_s), so
 * expiry only ever looks at the head. */
#include "revoke.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct revoke_entry {
    struct tnode node;
    struct revoke_entry *prev, *next; /* revocation order */
    int64_t before_s;                 /* tokens issued before this are refused */
    int64_t until_s;                  /* kept until then */
    char name[];
};

int revoke_init(struct revoke *r, int64_t keep_s)
{
    memset(r, 0, sizeof(*r));
    uint64_t k[2] = {0, 0};
    if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k)) {
        /* No randomness at start: a fixed key only makes chains guessable, not wrong. */
        k[0] = (uint64_t)(uintptr_t)r;
        k[1] = 0x9e3779b97f4a7c15ull;
    }
    if (pthread_mutex_init(&r->lock, NULL) != 0) return -ENOMEM;
    if (table_init(&r->users, k[0], k[1]) < 0) {
        pthread_mutex_destroy(&r->lock);
        return -ENOMEM;
    }
    r->keep_s = keep_s;
    r->ready = 1;
    return 0;
}

static void unlink_entry(struct revoke *r, struct revoke_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        r->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        r->tail = e->prev;
    e->prev = e->next = NULL;
}

static void append(struct revoke *r, struct revoke_entry *e)
{
    e->next = NULL;
    e->prev = r->tail;
    if (r->tail)
        r->tail->next = e;
    else
        r->head = e;
    r->tail = e;
}

static void drop(struct revoke *r, struct revoke_entry *e)
{
    unlink_entry(r, e);
    table_remove(&r->users, &e->node);
    r->n--;
    free(e);
}

/* Drop the entries whose time is up (lock held). */
static void expire(struct revoke *r, int64_t now_s)
{
    while (r->head && r->head->until_s <= now_s)
        drop(r, r->head);
}

void revoke_free(struct revoke *r)
{
    if (!r->ready) return;
    while (r->head)
        drop(r, r->head);
    table_free(&r->users);
    pthread_mutex_destroy(&r->lock);
    r->ready = 0;
}

int revoke_add(struct revoke *r, const char *user, size_t len, int64_t before_s, int64_t now_s)
{
    int rc = 0;
    pthread_mutex_lock(&r->lock);
    expire(r, now_s);
    uint64_t hash = table_hash(&r->users, user, len);
    struct revoke_entry *e = (struct revoke_entry *)table_find(&r->users, user, len, hash);
    if (e) {
        unlink_entry(r, e);
    } else if (r->n >= REVOKE_MAX) {
        rc = -ENOSPC;
        goto out;
    } else if (!(e = calloc(1, sizeof(*e) + len + 1))) {
        rc = -ENOMEM;
        goto out;
    } else {
        memcpy(e->name, user, len);
        e->node = (struct tnode){.hash = hash, .name = e->name, .len = (uint32_t)len};
        e->before_s = before_s;
        table_add(&r->users, &e->node);
        r->n++;
    }
    if (before_s > e->before_s) e->before_s = before_s;
    e->until_s = now_s + r->keep_s;
    append(r, e);
out:
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int revoke_check(struct revoke *r, const char *user, size_t len, int has_iat, int64_t iat,
                 int64_t now_s, int64_t *before_s)
{
    if (!r->ready) return 0;
    int refused = 0;
    pthread_mutex_lock(&r->lock);
    if (r->n) { /* the common case: nobody revoked, no hash */
        expire(r, now_s);
        struct revoke_entry *e = (struct revoke_entry *)table_find(
            &r->users, user, len, table_hash(&r->users, user, len));
        if (e && (!has_iat || iat < e->before_s)) {
            refused = 1;
            *before_s = e->before_s;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return refused;
}

void revoke_set_keep(struct revoke *r, int64_t keep_s)
{
    pthread_mutex_lock(&r->lock);
    r->keep_s = keep_s;
    pthread_mutex_unlock(&r->lock);
}

uint32_t revoke_count(struct revoke *r)
{
    if (!r->ready) return 0;
    pthread_mutex_lock(&r->lock);
    uint32_t n = r->n;
    pthread_mutex_unlock(&r->lock);
    return n;
}
