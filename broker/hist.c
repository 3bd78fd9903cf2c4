/* hist: the in-memory history store. Every retained hint is on two lists: its topic's FIFO
 * (topic->h_head/h_tail, oldest first, linked through hint->hnext) and one global FIFO in append
 * order (gprev/gnext). The three bounds then cost O(1) per eviction: the per-topic count drops its
 * topic's head; the byte and age bounds drop the global head, which is also the head of its own
 * topic because both lists are in append order. */
#include "hist.h"

#include <errno.h>
#include <stdlib.h>

#include "topic.h"

struct hmem {
    struct hist base;
    struct hint *ghead, *gtail;
};

void hist_config_default(struct hist_config *cfg)
{
    cfg->per_topic = 64;
    cfg->max_bytes = 64u << 20;
    cfg->max_age_ms = 300000;
}

static void gunlink(struct hmem *m, struct hint *hn)
{
    if (hn->gprev)
        hn->gprev->gnext = hn->gnext;
    else
        m->ghead = hn->gnext;
    if (hn->gnext)
        hn->gnext->gprev = hn->gprev;
    else
        m->gtail = hn->gprev;
    hn->gprev = hn->gnext = NULL;
}

/* Remove the oldest retained hint of tp. */
static void drop_topic_head(struct hmem *m, struct topic *tp)
{
    struct hint *hn = tp->h_head;
    if (!hn) return;
    tp->h_head = hn->hnext;
    if (!tp->h_head) tp->h_tail = NULL;
    tp->h_count--;
    hn->hnext = NULL;
    gunlink(m, hn);
    m->base.st.entries--;
    m->base.st.bytes -= hint_size(hn);
    hint_unref(hn);
}

static int mem_append(struct hist *h, struct hint *hn)
{
    struct hmem *m = (struct hmem *)h;
    struct topic *tp = hn->tp;
    hn->seq = ++tp->seq;
    if (h->cfg.per_topic == 0) return 0;
    hint_ref(hn);
    hn->hnext = NULL;
    if (tp->h_tail)
        tp->h_tail->hnext = hn;
    else
        tp->h_head = hn;
    tp->h_tail = hn;
    tp->h_count++;
    hn->gnext = NULL;
    hn->gprev = m->gtail;
    if (m->gtail)
        m->gtail->gnext = hn;
    else
        m->ghead = hn;
    m->gtail = hn;
    h->st.entries++;
    h->st.bytes += hint_size(hn);
    while (tp->h_count > h->cfg.per_topic) {
        drop_topic_head(m, tp);
        h->st.evicted++;
    }
    while (h->st.bytes > h->cfg.max_bytes && m->ghead) {
        drop_topic_head(m, m->ghead->tp);
        h->st.evicted++;
    }
    return 0;
}

static uint64_t mem_oldest(const struct hist *h, const struct topic *tp)
{
    (void)h;
    return tp->h_head ? tp->h_head->seq : 0;
}

static void mem_since(struct hist *h, const struct topic *tp, uint64_t after,
                      void (*fn)(void *arg, struct hint *hn), void *arg)
{
    (void)h;
    for (struct hint *hn = tp->h_head; hn; hn = hn->hnext)
        if (hn->seq > after) fn(arg, hn);
}

static void mem_evict(struct hist *h, uint64_t now_ms)
{
    struct hmem *m = (struct hmem *)h;
    while (m->ghead && now_ms - m->ghead->time_ms > h->cfg.max_age_ms) {
        drop_topic_head(m, m->ghead->tp);
        h->st.evicted++;
    }
}

static void mem_forget(struct hist *h, struct topic *tp)
{
    while (tp->h_head)
        drop_topic_head((struct hmem *)h, tp);
}

static void mem_free(struct hist *h)
{
    struct hmem *m = (struct hmem *)h;
    while (m->ghead)
        drop_topic_head(m, m->ghead->tp);
    free(m);
}

static const struct hist_ops mem_ops = {
    .append = mem_append,
    .oldest = mem_oldest,
    .since = mem_since,
    .evict = mem_evict,
    .forget = mem_forget,
    .free = mem_free,
};

struct hist *hist_mem_new(const struct hist_config *cfg)
{
    struct hmem *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    m->base.ops = &mem_ops;
    m->base.cfg = *cfg;
    return &m->base;
}

int hist_complete(const struct hist *h, const struct topic *tp, uint64_t after)
{
    if (after >= tp->seq) return after == tp->seq;
    uint64_t oldest = h->ops->oldest(h, tp);
    return oldest != 0 && oldest <= after + 1;
}
