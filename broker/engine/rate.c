/* rate: see rate.h. A node's s is relative to its own land_ms; it is brought to the current
 * landmark (multiplied by exp((its landmark - current) / window)) whenever it is touched, and
 * every heap member always is relative to the current one, so the heap compares like with
 * like. */
#include "rate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double window_ms = RATE_WINDOW_S * 1000.0;

void rate_init(struct rate_top *r, uint64_t now_ms)
{
    memset(r, 0, sizeof(*r));
    r->land_ms = now_ms;
}

/* Signed a - b in ms as a double: clocks of different threads' loops may be a tick apart. */
static double diff_ms(uint64_t a, uint64_t b)
{
    return a >= b ? (double)(a - b) : -(double)(b - a);
}

/* Bring n's s to landmark land. */
static void reland(struct rate_node *n, uint64_t land)
{
    if (n->land_ms == land) return;
    n->s *= exp(diff_ms(n->land_ms, land) / window_ms);
    n->land_ms = land;
}

static void place(struct rate_top *r, uint32_t i, struct rate_node *n)
{
    r->heap[i] = n;
    n->slot = i + 1;
}

static void sift_up(struct rate_top *r, uint32_t i)
{
    struct rate_node *n = r->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (r->heap[p]->s <= n->s) break;
        place(r, i, r->heap[p]);
        i = p;
    }
    place(r, i, n);
}

static void sift_down(struct rate_top *r, uint32_t i)
{
    struct rate_node *n = r->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= r->n) break;
        if (c + 1 < r->n && r->heap[c + 1]->s < r->heap[c]->s) c++;
        if (n->s <= r->heap[c]->s) break;
        place(r, i, r->heap[c]);
        i = c;
    }
    place(r, i, n);
}

void rate_hit(struct rate_top *r, struct rate_node *n, uint64_t now_ms)
{
    if (now_ms > r->land_ms && now_ms - r->land_ms >= (uint64_t)RATE_RELAND_S * 1000) {
        /* Uniform rescale: the heap's order is unchanged. */
        for (uint32_t i = 0; i < r->n; i++)
            reland(r->heap[i], now_ms);
        r->land_ms = now_ms;
    }
    reland(n, r->land_ms);
    n->s += exp(diff_ms(now_ms, r->land_ms) / window_ms);
    if (n->slot) {
        sift_down(r, n->slot - 1); /* its key grew */
    } else if (r->n < RATE_TOP_MAX) {
        r->heap[r->n++] = n;
        sift_up(r, r->n - 1);
    } else if (n->s > r->heap[0]->s) {
        r->heap[0]->slot = 0;
        place(r, 0, n);
        sift_down(r, 0);
    }
}

void rate_forget(struct rate_top *r, struct rate_node *n)
{
    if (!n->slot) return;
    uint32_t i = n->slot - 1;
    n->slot = 0;
    struct rate_node *last = r->heap[--r->n];
    if (i == r->n) return;
    place(r, i, last);
    sift_down(r, i);
    sift_up(r, last->slot - 1);
}

double rate_of(const struct rate_top *r, const struct rate_node *n, uint64_t now_ms)
{
    (void)r;
    if (n->s == 0) return 0;
    return n->s * exp(-diff_ms(now_ms, n->land_ms) / window_ms) / RATE_WINDOW_S;
}

static int by_s_desc(const void *a, const void *b)
{
    double x = (*(struct rate_node *const *)a)->s, y = (*(struct rate_node *const *)b)->s;
    return x < y ? 1 : x > y ? -1 : 0;
}

uint32_t rate_top(const struct rate_top *r, struct rate_node **out, uint32_t max)
{
    struct rate_node *all[RATE_TOP_MAX];
    memcpy(all, r->heap, r->n * sizeof(all[0]));
    qsort(all, r->n, sizeof(all[0]), by_s_desc);
    uint32_t k = r->n < max ? r->n : max;
    memcpy(out, all, k * sizeof(out[0]));
    return k;
}
