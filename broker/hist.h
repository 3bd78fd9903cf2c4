/* hist: the history store — recent hints per topic, so that a reconnecting subscriber can be
 * replayed what it missed. An interface (struct hist_ops) with one implementation here, in
 * memory; a persistent store or a cluster engine (Redis Streams) is another implementation of
 * the same table. The store also assigns sequences: in cluster mode the shared engine decides a
 * topic's next seq, so the core never increments seqs itself. */
#ifndef NUDGE_HIST_H
#define NUDGE_HIST_H

#include <stddef.h>
#include <stdint.h>

#include "hint.h"

struct topic;
struct hist;

struct hist_config {
    uint32_t per_topic;  /* hints kept per topic; default 64; 0 = keep none */
    uint64_t max_bytes;  /* all topics; default 64 MiB */
    uint64_t max_age_ms; /* default 300 s */
};

struct hist_stats {
    uint64_t entries;
    uint64_t bytes;
    uint64_t evicted;
};

struct hist_ops {
    /* Assign hn->seq (the topic's next sequence, also stored in hn->tp->seq) and retain hn
     * (the store takes its own reference). Returns 0 or a negative errno; on error no seq was
     * assigned. */
    int (*append)(struct hist *h, struct hint *hn);
    /* Oldest retained seq of tp, or 0 when none is retained. */
    uint64_t (*oldest)(const struct hist *h, const struct topic *tp);
    /* Call fn for every retained hint of tp with seq > after, oldest first. The hint stays owned
     * by the store (take a reference to keep it). */
    void (*since)(struct hist *h, const struct topic *tp, uint64_t after,
                  void (*fn)(void *arg, struct hint *hn), void *arg);
    /* Drop what is older than the age bound at now_ms. */
    void (*evict)(struct hist *h, uint64_t now_ms);
    /* Drop everything retained for tp (the topic is going away). */
    void (*forget)(struct hist *h, struct topic *tp);
    /* Drop everything and free the store. */
    void (*free)(struct hist *h);
};

struct hist {
    const struct hist_ops *ops;
    struct hist_config cfg;
    struct hist_stats st;
};

void hist_config_default(struct hist_config *cfg);
/* The in-memory store; owned by the caller (free with h->ops->free). NULL on OOM. */
struct hist *hist_mem_new(const struct hist_config *cfg);

/* Whether every hint of tp after `after` is retained (nothing missed is lost): true when after
 * equals the current seq, or when the oldest retained seq is <= after + 1. */
int hist_complete(const struct hist *h, const struct topic *tp, uint64_t after);

#endif
