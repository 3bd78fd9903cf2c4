/* topic: the topic registry — a keyed hash table from topic name to struct topic, and the
 * subscription links between topics and connections. A publish to a topic looks it up in O(1);
 * its subscribers hang off the topic in a doubly linked list, so fan-out costs O(subscribers)
 * and a topic nobody listens to costs one lookup and one increment. */
#ifndef NUDGE_TOPIC_H
#define NUDGE_TOPIC_H

#include <stddef.h>
#include <stdint.h>

struct conn;
struct topic;
struct hint;

/* One subscription: connection `conn` listens to `topic` (exact), or to the wildcard pattern
 * `pat` (topic NULL; registered in the core's match registry). Linked into the connection's list
 * and, when exact, the topic's list; owned by the registry (freed by topic_unsubscribe). */
struct sub {
    struct topic *topic;
    struct conn *conn;
    struct sub *tprev, *tnext; /* topic's subscribers */
    struct sub *cprev, *cnext; /* connection's subscriptions */
    uint64_t since;            /* exact: the connection knows the topic up to this seq */
    uint64_t live;             /* pattern: publishes with an ordinal above this reach it */
    uint32_t patlen;
    char *pat; /* wildcard pattern (owned), or NULL */
};

struct topic {
    struct topic *hnext; /* hash chain */
    uint64_t hash;
    uint64_t seq; /* last sequence assigned (by the history store); 0 = never published */
    uint64_t ord; /* publish ordinal of its last publish (core.c); 0 = never published */
    struct sub *subs;
    uint32_t nsubs;
    uint32_t len;
    /* History store's per-topic slot (hist.c), oldest first. */
    struct hint *h_head, *h_tail;
    uint32_t h_count;
    /* Coalescing window (core.c): hints published inside an open window wait in win_hint. */
    uint32_t window_ms;
    uint32_t win_count;    /* publishes waiting in the window */
    uint64_t win_until;    /* window open until this loop time */
    struct hint *win_hint; /* newest waiting hint (a reference), or NULL */
    char win_origin[24];   /* origin of the held publish while it is the only one */
    uint8_t win_origin_len;
    uint8_t win_skip_origin;
    struct topic *win_next; /* core's list of topics with an open window */
    int win_listed;
    char name[]; /* NUL-terminated copy, len bytes */
};

struct topics {
    struct topic **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    uint64_t k0, k1; /* SipHash key, random per process: no hash flooding by chosen names */
};

/* Initialise an empty registry keyed with (k0, k1). Returns 0 or -ENOMEM. */
int topics_init(struct topics *t, uint64_t k0, uint64_t k1);
/* Free every topic and subscription. Connections are not touched. */
void topics_free(struct topics *t);

/* Look up a topic; NULL when absent. */
struct topic *topic_find(const struct topics *t, const char *name, size_t len);
/* Look up or create (seq 0, no subscribers). The registry owns the topic. NULL on OOM. */
struct topic *topic_get(struct topics *t, const char *name, size_t len);
/* Remove and free a topic that has no subscribers. */
void topic_remove(struct topics *t, struct topic *tp);

/* Link conn to tp; *head is the connection's subscription list. Returns the new sub (owned by
 * the registry) or NULL on OOM. Caller checks for duplicates with topic_sub_of. */
struct sub *topic_subscribe(struct topic *tp, struct conn *conn, struct sub **head);
/* A wildcard subscription of conn to pattern pat (copied) on the connection's list only; the
 * caller registers it with the match registry. NULL on OOM. */
struct sub *topic_subscribe_pattern(const char *pat, size_t len, struct conn *conn,
                                    struct sub **head);
/* Unlink and free s (exact or pattern); *head is the connection's list. The topic is kept. */
void topic_unsubscribe(struct sub *s, struct sub **head);
/* The exact subscription of the connection to tp, or NULL. */
struct sub *topic_sub_of(struct sub *head, const struct topic *tp);
/* The pattern subscription of the connection to pat, or NULL. */
struct sub *topic_sub_pattern(struct sub *head, const char *pat, size_t len);

/* SipHash-2-4 of p[0..len) under (k0, k1). */
uint64_t topic_hash(uint64_t k0, uint64_t k1, const void *p, size_t len);

#endif
