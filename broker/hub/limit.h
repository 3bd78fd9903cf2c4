/* limit: what one connection may make the broker spend, per connection — bytes of subscription
 * state, bytes of replay per second, subscriptions per second, messages per second — as token
 * buckets and a byte count embedded in struct conn (conn.h). The hub and the transports ask
 * before doing the work; a refusal is an `error` (rate_limited 19 / over_budget 20) for that
 * request, and a client that keeps sending past a rate is closed with LIMIT_CLOSE_RATE
 * (docs/protocol.md, docs/operations.md §Abuse limits).
 *
 * A bucket holds up to `burst` tokens and refills at `rate` per second; a request takes its cost.
 * A request is allowed while the bucket is not empty and may take it below zero (a replay's
 * bytes are only known once made): the debt is paid back by the refill before the next one.
 * Time comes from CLOCK_MONOTONIC_COARSE (a vDSO read, no syscall). No I/O, no globals. */
#ifndef NUDGE_LIMIT_H
#define NUDGE_LIMIT_H

#include <stdint.h>

/* WebSocket close code for a connection that keeps going past a rate limit. */
#define LIMIT_CLOSE_RATE 4008

struct limit_bucket {
    int64_t milli;  /* tokens x 1000 (fractions of a token accrue between requests) */
    uint64_t at_ms; /* when milli was last brought up to date; 0 = never used (full) */
};

/* A connection's state for every per-connection limit; zeroed with the connection. */
struct conn_limits {
    uint64_t sub_bytes;         /* what its subscriptions and patterns cost now (hub.c) */
    struct limit_bucket replay; /* bytes of catch-up / replay caused by its own requests */
    struct limit_bucket subs;   /* subscribe requests (one per topic) */
    struct limit_bucket msgs;   /* messages received */
};

/* Milliseconds from a monotonic clock (coarse: a few ms of resolution is plenty here). */
uint64_t limit_now_ms(void);

/* Refill b (rate per second, at most burst) to now_ms, then: when rate is 0 the limit is off
 * and 1 is returned; when the bucket holds at least one token, take cost (it may go below zero)
 * and return 1; else return 0 and take nothing. */
int limit_take(struct limit_bucket *b, uint64_t rate, uint64_t burst, uint64_t cost,
               uint64_t now_ms);
/* Take cost from b without asking (cost known after the fact: the bytes a replay made). */
void limit_charge(struct limit_bucket *b, uint64_t cost);
/* A refused request counts as debt up to the burst below zero, so a client that keeps sending
 * past its rate goes further into the red; 1 once the bucket is burst tokens in debt (time to
 * close the connection), else 0. Call after limit_take returned 0. */
int limit_overdrawn(struct limit_bucket *b, uint64_t burst);

#endif
