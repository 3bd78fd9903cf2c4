/* subs: a hub's subscriptions — the topics its connections follow (a table from name to struct
 * htopic, keyed like the engine's) and the links between topics and connections. A hint reaching
 * the hub finds its topic's subscribers in O(1); they hang off the topic in a doubly linked
 * list, so fan-out costs O(subscribers) and a topic nobody here follows costs one lookup. */
#ifndef NUDGE_SUBS_H
#define NUDGE_SUBS_H

#include <stddef.h>
#include <stdint.h>

#include "table.h"

struct conn;
struct etopic;

/* One subscription: connection `conn` follows `topic` (exact), or the wildcard pattern `pat`
 * (topic NULL; registered in the hub's match registry). Linked into the connection's list and,
 * when exact, the topic's list; owned by the hub (freed by sub_remove). */
struct sub {
    struct htopic *topic;
    struct conn *conn;
    struct sub *tprev, *tnext; /* topic's subscribers */
    struct sub *cprev, *cnext; /* connection's subscriptions */
    uint64_t since;            /* exact: the connection knows the topic up to this seq */
    uint64_t live;             /* pattern: live for hints with a larger ordinal (hint.h) */
    uint64_t covered;          /* pattern: the connection has, for every matching topic, its
                                  newest change with a global position > covered (a catch-up
                                  from its resume position, then live hints) */
    uint32_t patlen;
    uint32_t cost; /* bytes charged to the connection's budget for it (hub.c, limit.h) */
    char *pat;     /* wildcard pattern (owned), or NULL */
};

/* A topic followed on this hub: holds the engine's topic (et) while it has subscribers. */
struct htopic {
    struct tnode node;
    struct etopic *et;
    struct sub *subs;
    uint32_t nsubs;
    char name[];
};

/* Look up a topic; NULL when absent. */
struct htopic *htopic_find(struct table *t, const char *name, size_t len, uint64_t hash);
/* Create (no subscribers) for engine topic et, owned by table t. NULL on OOM. */
struct htopic *htopic_new(struct table *t, const char *name, size_t len, uint64_t hash,
                          struct etopic *et);
/* Remove and free a topic without subscribers (the caller releases ht->et first). */
void htopic_free(struct table *t, struct htopic *ht);

/* Link conn to ht; *head is the connection's subscription list. Returns the new sub (owned by
 * the hub) or NULL on OOM. Caller checks for duplicates with sub_of. */
struct sub *sub_add(struct htopic *ht, struct conn *conn, struct sub **head);
/* A wildcard subscription of conn to pattern pat (copied) on the connection's list only; the
 * caller registers it with the match registry. NULL on OOM. */
struct sub *sub_add_pattern(const char *pat, size_t len, struct conn *conn, struct sub **head);
/* Unlink and free s (exact or pattern); *head is the connection's list. The topic is kept. */
void sub_remove(struct sub *s, struct sub **head);
/* The exact subscription of the connection to ht, or NULL. */
struct sub *sub_of(struct sub *head, const struct htopic *ht);
/* The pattern subscription of the connection to pat, or NULL. */
struct sub *sub_pattern(struct sub *head, const char *pat, size_t len);

#endif
