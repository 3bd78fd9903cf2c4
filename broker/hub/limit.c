/* limit: token buckets in thousandths of a token, refilled lazily on each request from the
 * elapsed time, so an idle connection costs nothing and a bucket needs no timer. A bucket never
 * used (at_ms 0) is full. */
#include "limit.h"

#include <time.h>

uint64_t limit_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + 1; /* never 0 */
}

static void refill(struct limit_bucket *b, uint64_t rate, uint64_t burst, uint64_t now_ms)
{
    int64_t cap =
        (int64_t)(burst > (uint64_t)INT64_MAX / 2000 ? (uint64_t)INT64_MAX / 2000 : burst) * 1000;
    if (b->at_ms == 0) {
        b->milli = cap;
    } else if (now_ms > b->at_ms) {
        uint64_t dt = now_ms - b->at_ms;
        /* rate tokens/s = rate milli-tokens/ms */
        uint64_t add =
            dt > (uint64_t)INT64_MAX / (rate ? rate : 1) ? (uint64_t)INT64_MAX / 2 : dt * rate;
        b->milli = add >= (uint64_t)(cap - b->milli) ? cap : b->milli + (int64_t)add;
    }
    b->at_ms = now_ms;
}

int limit_take(struct limit_bucket *b, uint64_t rate, uint64_t burst, uint64_t cost,
               uint64_t now_ms)
{
    if (rate == 0) return 1;
    refill(b, rate, burst ? burst : rate, now_ms);
    if (b->milli < 1000) return 0;
    limit_charge(b, cost);
    return 1;
}

void limit_charge(struct limit_bucket *b, uint64_t cost)
{
    int64_t c = cost > (uint64_t)INT64_MAX / 4000 ? INT64_MAX / 4 : (int64_t)cost * 1000;
    b->milli = b->milli < INT64_MIN / 4 + c ? INT64_MIN / 4 : b->milli - c;
}

int limit_overdrawn(struct limit_bucket *b, uint64_t burst)
{
    int64_t floor =
        -(int64_t)(burst > (uint64_t)INT64_MAX / 4000 ? (uint64_t)INT64_MAX / 4000 : burst) * 1000;
    if (b->milli > floor) b->milli -= 1000;
    return b->milli <= floor;
}
