/* revoke: users whose tokens issued before a moment are refused — what POST
 * /users/USER/disconnect leaves behind so that a ban or a password change really ends the old
 * tokens, not only the connections open at that moment (docs/security.md §Revocation).
 *
 * A bounded table in memory: at most REVOKE_MAX users, each kept keep_s seconds (--revoke-keep)
 * after its revocation, long enough for every token issued before it to have expired when tokens
 * live no longer than that. A full table refuses a new revocation (the caller says so) rather than
 * forget an older one early. Nothing is written to disk: a restarted broker has forgotten every
 * revocation. One mutex: revocations come from the admin endpoint (worker 0), checks from every
 * token hello and refresh on any worker; both are O(1) (a hash table, and expiry from the head
 * of a list in revocation order). */
#ifndef NUDGE_REVOKE_H
#define NUDGE_REVOKE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "table.h"

#define REVOKE_MAX 65536          /* users revoked at once */
#define REVOKE_KEEP_DEFAULT 86400 /* seconds an entry is kept (--revoke-keep) */
#define REVOKE_KEEP_MAX 2592000   /* 30 days */

struct revoke_entry;

struct revoke {
    pthread_mutex_t lock;
    struct table users;               /* struct revoke_entry by sub */
    struct revoke_entry *head, *tail; /* in revocation order: the oldest expires first */
    uint32_t n;
    int64_t keep_s;
    int ready;
};

/* Start empty, entries kept keep_s seconds. Returns 0 or -ENOMEM. */
int revoke_init(struct revoke *r, int64_t keep_s);
/* Free every entry (no other thread may use r any more). A zeroed r is fine. */
void revoke_free(struct revoke *r);
/* Refuse user[0..len)'s tokens issued before before_s (seconds since the epoch, the broker's
 * clock), from now_s for keep_s seconds. A user revoked again keeps the later moment and is kept
 * keep_s from now. Returns 0, -ENOSPC (REVOKE_MAX users revoked within keep_s: nothing done) or
 * -ENOMEM. */
int revoke_add(struct revoke *r, const char *user, size_t len, int64_t before_s, int64_t now_s);
/* Whether a token of user[0..len) issued at iat (has_iat 0: no "iat" claim, which cannot show it
 * is newer) is revoked at now_s: 1 (refuse it, *before_s says from when) or 0. */
int revoke_check(struct revoke *r, const char *user, size_t len, int has_iat, int64_t iat,
                 int64_t now_s, int64_t *before_s);
/* Keep revocations made from now on keep_s seconds (a reload of --revoke-keep); entries
 * already in the table keep their end (one that would now end before an older one ends with it:
 * kept longer, never shorter). */
void revoke_set_keep(struct revoke *r, int64_t keep_s);
/* Users revoked now (for /stats). */
uint32_t revoke_count(struct revoke *r);

#endif
