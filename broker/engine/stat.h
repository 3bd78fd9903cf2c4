/* stat: counters and gauges written by one thread and read by any (the admin endpoint sums the
 * workers'). A single writer needs no read-modify-write: a relaxed load and store compile to a
 * plain add on x86 and are still data-race free for ThreadSanitizer. Readers see each value
 * whole, possibly a moment old. */
#ifndef NUDGE_STAT_H
#define NUDGE_STAT_H

#include <stdatomic.h>
#include <stdint.h>

typedef _Atomic uint64_t stat_t;

static inline void stat_add(stat_t *s, uint64_t n)
{
    atomic_store_explicit(s, atomic_load_explicit(s, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline void stat_sub(stat_t *s, uint64_t n)
{
    atomic_store_explicit(s, atomic_load_explicit(s, memory_order_relaxed) - n,
                          memory_order_relaxed);
}

static inline uint64_t stat_get(const stat_t *s)
{
    return atomic_load_explicit(s, memory_order_relaxed);
}

#endif
