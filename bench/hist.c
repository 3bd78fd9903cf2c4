/* hist: a log-bucket histogram of latencies (any unsigned values; the generator's are ns). Values
 * below 16 have a bucket each; above, every power of two is split into 16 linear sub-buckets, so
 * a bucket is at most 1/16 of its value wide (a quantile read from it is within ~3 %, its
 * middle being returned) and 1,024 counters cover the whole uint64_t range: adding is a
 * count-leading-zeros and an increment, cheap enough for every delivery. */
#include "hist.h"

#include <math.h>

void hist_add(struct hist *h, uint64_t v)
{
    unsigned idx;
    if (v < 16) {
        idx = (unsigned)v;
    } else {
        unsigned e = 63u - (unsigned)__builtin_clzll(v);
        idx = (e - 3) * 16 + (unsigned)((v >> (e - 4)) & 15);
    }
    h->b[idx]++;
    h->n++;
    if (v > h->max) h->max = v;
}

static uint64_t hist_low(unsigned idx)
{
    if (idx < 16) return idx;
    unsigned e = idx / 16 + 3, sub = idx % 16;
    if (e > 63) return UINT64_MAX;
    return (1ull << e) | ((uint64_t)sub << (e - 4));
}

uint64_t hist_q(const struct hist *h, double q)
{
    if (!h->n) return 0;
    uint64_t want = (uint64_t)ceil(q * (double)h->n), seen = 0;
    if (want < 1) want = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t lo = hist_low(i), hi = i + 1 < HIST_BUCKETS ? hist_low(i + 1) : lo;
            uint64_t mid = lo + (hi - lo) / 2;
            return mid < h->max ? mid : h->max;
        }
    }
    return h->max;
}
