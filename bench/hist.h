/* hist: the load generator's latency histogram (log buckets, 16 per power of two). */
#ifndef HIST_H
#define HIST_H

#include <stdint.h>

#define HIST_BUCKETS (64 * 16)

/* Zero-initialise to start (no allocation). */
struct hist {
    uint64_t b[HIST_BUCKETS];
    uint64_t n, max; /* values added, the largest exactly */
};

void hist_add(struct hist *h, uint64_t v);
/* The q-quantile (0 < q <= 1): the middle of the bucket holding it, at most the max; 0 when
 * empty. */
uint64_t hist_q(const struct hist *h, double q);

#endif
