/* rate: the busiest topics by publish rate, kept up to date as topics are published, so that an
 * operator's "top topics" costs O(RATE_TOP_MAX log RATE_TOP_MAX) whatever the number of topics,
 * and a publish O(log RATE_TOP_MAX) at most.
 *
 * Each topic's rate is an exponentially decayed count of its publishes with time constant
 * RATE_WINDOW_S: a steady rate r reads r, a burst of n publishes reads n / RATE_WINDOW_S at
 * once and decays by e every RATE_WINDOW_S seconds. The count is kept in the forward-decay
 * form (Cormode et al.): s = sum of exp((t_i - L) / window) for a landmark time L, so a
 * publish only adds to s, and two topics' order by s never changes with time. That is what lets
 * a min-heap of the RATE_TOP_MAX largest s be exact: s only grows, a topic outside the heap
 * enters it when its s passes the heap's smallest, so every topic outside holds at most the
 * smallest s inside. (A topic forgotten while in the heap leaves a slot that the next topic
 * published fills, which may not be the largest outside: the last places are then approximate
 * until they turn over.) The landmark moves forward every RATE_RELAND_S seconds so that s stays
 * within a double's range: the heap's members are rescaled then, the others when next
 * published.
 *
 * Not thread-safe: the engine calls it under its lock. No allocation. */
#ifndef NUDGE_RATE_H
#define NUDGE_RATE_H

#include <stdint.h>

#define RATE_WINDOW_S 10  /* time constant of the decayed rate, seconds */
#define RATE_TOP_MAX 1000 /* topics tracked in the heap: the most a "top" can list */
#define RATE_RELAND_S 600 /* landmark moved at least this long after the last move */

/* Embedded in a topic (zeroed = never published). */
struct rate_node {
    double s;         /* forward-decayed count relative to land_ms */
    uint64_t land_ms; /* the landmark s is relative to */
    uint32_t slot;    /* 1 + its index in the heap, 0 when not in it */
};

struct rate_top {
    struct rate_node *heap[RATE_TOP_MAX]; /* min-heap by s; nodes are the caller's */
    uint32_t n;
    uint64_t land_ms; /* current landmark (ms, the caller's monotonic clock) */
};

/* Start empty with landmark now_ms. */
void rate_init(struct rate_top *r, uint64_t now_ms);
/* One publish of n's topic at now_ms. */
void rate_hit(struct rate_top *r, struct rate_node *n, uint64_t now_ms);
/* n's topic is being freed: take it out of the heap. */
void rate_forget(struct rate_top *r, struct rate_node *n);
/* n's publishes per second at now_ms. */
double rate_of(const struct rate_top *r, const struct rate_node *n, uint64_t now_ms);
/* The at most max busiest nodes, busiest first, into out; returns how many. Nodes stay the
 * caller's. O(n log n) over the heap's n <= RATE_TOP_MAX. */
uint32_t rate_top(const struct rate_top *r, struct rate_node **out, uint32_t max);

#endif
