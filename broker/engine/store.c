/* store: the in-memory store. Each record (struct store_topic) keeps its hints in a FIFO of
 * entries, oldest first; every entry is also on one global FIFO in append order. The three
 * bounds then cost O(1) per eviction: the per-topic count drops its topic's head; the byte and
 * age bounds drop the global head, which is also the head of its own topic because both lists
 * are in append order.
 *
 * A record outlives the engine's hold on it: positions outlive history. A closed record (no hint
 * retained, nobody holding it) goes to the tail of the closed FIFO, in close order, and is
 * forgotten — raising the floor above its seq — once it has been closed for the horizon, or when
 * more than max_positions records are kept (oldest closed first). Close order is not
 * last-publish order, but a record closed at C was last published at or before C, so it is kept
 * at least the horizon after its last publish. */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "table.h"

struct hent {
    struct hint *h;
    struct store_topic *t;
    struct hent *tnext;         /* topic's FIFO */
    struct hent *gprev, *gnext; /* global FIFO */
};

struct store_topic {
    struct tnode node;
    void *owner; /* NULL while closed */
    uint64_t seq;
    uint64_t base;                     /* the floor when the record was created */
    uint64_t closed_ms;                /* wall clock of the close, while closed */
    struct store_topic *cprev, *cnext; /* closed FIFO */
    uint64_t last_gpos;                /* global position of its newest publish; 0 = none */
    struct store_topic *lprev, *lnext; /* changed list, by last_gpos */
    struct hent *head, *tail;
    uint32_t count;
    char name[];
};

struct smem {
    struct store base;
    struct table topics;
    struct hent *ghead, *gtail;
    struct store_topic *chead, *ctail; /* closed records, oldest close first */
    struct store_topic *lhead, *ltail; /* published records, by last_gpos (oldest first) */
    uint64_t floor; /* every seq given out so far to a topic since forgotten is <= floor */
};

void store_config_default(struct store_config *cfg)
{
    cfg->per_topic = 64;
    cfg->max_bytes = 64u << 20;
    cfg->max_age_ms = 300000;
    cfg->horizon_ms = 7ull * 24 * 3600 * 1000;
    cfg->max_positions = 1000000;
}

uint64_t store_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void gunlink(struct smem *m, struct hent *e)
{
    if (e->gprev)
        e->gprev->gnext = e->gnext;
    else
        m->ghead = e->gnext;
    if (e->gnext)
        e->gnext->gprev = e->gprev;
    else
        m->gtail = e->gprev;
}

/* Remove the oldest retained hint of t; tell the owner when t has nothing left. */
static void drop_head(struct smem *m, struct store_topic *t, int notify)
{
    struct hent *e = t->head;
    if (!e) return;
    t->head = e->tnext;
    if (!t->head) t->tail = NULL;
    t->count--;
    gunlink(m, e);
    m->base.st.entries--;
    m->base.st.bytes -= hint_size(e->h);
    hint_unref(e->h);
    free(e);
    if (notify && t->count == 0 && m->base.emptied) m->base.emptied(m->base.emptied_arg, t->owner);
}

static void cunlink(struct smem *m, struct store_topic *t)
{
    if (t->cprev)
        t->cprev->cnext = t->cnext;
    else
        m->chead = t->cnext;
    if (t->cnext)
        t->cnext->cprev = t->cprev;
    else
        m->ctail = t->cprev;
    t->cprev = t->cnext = NULL;
}

static void lunlink(struct smem *m, struct store_topic *t)
{
    if (!t->last_gpos) return;
    if (t->lprev)
        t->lprev->lnext = t->lnext;
    else
        m->lhead = t->lnext;
    if (t->lnext)
        t->lnext->lprev = t->lprev;
    else
        m->ltail = t->lprev;
    t->lprev = t->lnext = NULL;
}

/* t's newest publish is gpos: t moves to the end of the changed list. */
static void changed_at(struct smem *m, struct store_topic *t, uint64_t gpos)
{
    lunlink(m, t);
    t->last_gpos = gpos;
    t->lprev = m->ltail;
    if (m->ltail)
        m->ltail->lnext = t;
    else
        m->lhead = t;
    m->ltail = t;
}

/* Forget a closed record: the floor rises above its seq, and a wildcard resume from before its
 * last change can no longer be answered by changes (st.forgot_gpos). */
static void forget(struct smem *m, struct store_topic *t)
{
    cunlink(m, t);
    lunlink(m, t);
    if (t->last_gpos > m->base.st.forgot_gpos) m->base.st.forgot_gpos = t->last_gpos;
    if (t->seq > m->floor) m->floor = t->seq;
    table_remove(&m->topics, &t->node);
    m->base.st.positions--;
    m->base.st.forgotten++;
    free(t);
}

/* Keep at most max_positions - room records, forgetting the oldest closed ones first. */
static void trim(struct smem *m, uint64_t room)
{
    while (m->base.st.positions + room > m->base.cfg.max_positions && m->chead)
        forget(m, m->chead);
}

static struct store_topic *mem_open(struct store *s, const char *name, size_t len, uint64_t hash,
                                    void *owner)
{
    struct smem *m = (struct smem *)s;
    struct tnode *n = table_find(&m->topics, name, len, hash);
    if (n) {
        struct store_topic *t = (struct store_topic *)n;
        if (!t->owner) {
            cunlink(m, t);
            s->st.topics++;
        }
        t->owner = owner;
        return t;
    }
    trim(m, 1); /* first: the new record starts above what this forgets */
    struct store_topic *t = calloc(1, sizeof(*t) + len + 1);
    if (!t) return NULL;
    memcpy(t->name, name, len);
    t->node = (struct tnode){.hash = hash, .name = t->name, .len = (uint32_t)len};
    t->owner = owner;
    t->seq = t->base = m->floor;
    table_add(&m->topics, &t->node);
    s->st.topics++;
    s->st.positions++;
    return t;
}

static void mem_close(struct store *s, struct store_topic *t)
{
    struct smem *m = (struct smem *)s;
    while (t->head)
        drop_head(m, t, 0);
    t->owner = NULL;
    t->closed_ms = s->wall_ms();
    t->cprev = m->ctail;
    if (m->ctail)
        m->ctail->cnext = t;
    else
        m->chead = t;
    m->ctail = t;
    s->st.topics--;
    trim(m, 0);
}

static void mem_append(struct store *s, struct store_topic *t, struct hint *h, store_done_fn *done,
                       void *arg)
{
    struct smem *m = (struct smem *)s;
    struct hent *e = NULL;
    if (s->cfg.per_topic && !(e = malloc(sizeof(*e)))) {
        done(arg, h, -ENOMEM);
        return;
    }
    h->seq = ++t->seq;
    h->gpos = ++s->st.gpos;
    changed_at(m, t, h->gpos);
    h->time_ms = s->wall_ms();
    if (e) {
        *e = (struct hent){.h = hint_ref(h), .t = t, .gprev = m->gtail};
        if (t->tail)
            t->tail->tnext = e;
        else
            t->head = e;
        t->tail = e;
        t->count++;
        if (m->gtail)
            m->gtail->gnext = e;
        else
            m->ghead = e;
        m->gtail = e;
        s->st.entries++;
        s->st.bytes += hint_size(h);
        while (t->count > s->cfg.per_topic) {
            drop_head(m, t, 0);
            s->st.evicted++;
        }
        while (s->st.bytes > s->cfg.max_bytes && m->ghead && m->ghead != e) {
            drop_head(m, m->ghead->t, 1);
            s->st.evicted++;
        }
    }
    done(arg, h, 0);
}

static uint64_t mem_seq(const struct store *s, const struct store_topic *t)
{
    (void)s;
    return t->seq;
}

static uint64_t mem_last_gpos(const struct store *s, const struct store_topic *t)
{
    (void)s;
    return t->last_gpos;
}

static uint64_t mem_base(const struct store *s, const struct store_topic *t)
{
    (void)s;
    return t->base;
}

static uint64_t mem_oldest(const struct store *s, const struct store_topic *t)
{
    (void)s;
    return t->head ? t->head->h->seq : 0;
}

static void mem_since(struct store *s, const struct store_topic *t, uint64_t after, uint64_t upto,
                      void (*fn)(void *arg, struct hint *h), void *arg)
{
    (void)s;
    for (struct hent *e = t->head; e; e = e->tnext)
        if (e->h->seq > after && e->h->seq <= upto) fn(arg, e->h);
}

static void mem_evict(struct store *s, uint64_t now_ms)
{
    struct smem *m = (struct smem *)s;
    /* Bounded per call so that a mass expiry is spread over ticks instead of pausing a loop. */
    uint32_t budget = STORE_EVICT_BUDGET;
    while (budget && m->ghead && now_ms > m->ghead->h->time_ms &&
           now_ms - m->ghead->h->time_ms > s->cfg.max_age_ms) {
        drop_head(m, m->ghead->t, 1);
        s->st.evicted++;
        budget--;
    }
    while (budget && m->chead && now_ms > m->chead->closed_ms &&
           now_ms - m->chead->closed_ms > s->cfg.horizon_ms) {
        forget(m, m->chead);
        budget--;
    }
}

static void mem_changed(struct store *s, uint64_t after,
                        void (*fn)(void *arg, const struct store_change *c), void *arg)
{
    struct smem *m = (struct smem *)s;
    struct store_topic *t = m->ltail;
    /* Back to the first change after `after`: O(changes since), not O(topics). */
    while (t && t->lprev && t->lprev->last_gpos > after)
        t = t->lprev;
    for (; t && t->last_gpos > after; t = t->lnext) {
        struct store_change c = {.name = t->name,
                                 .len = t->node.len,
                                 .hash = t->node.hash,
                                 .seq = t->seq,
                                 .base = t->base,
                                 .gpos = t->last_gpos,
                                 .newest =
                                     t->tail && t->tail->h->seq == t->seq ? t->tail->h : NULL};
        fn(arg, &c);
    }
}

static void mem_poll(struct store *s, int wait)
{
    (void)s;
    (void)wait; /* every append completed in its call */
}

static void close_one(void *arg, struct tnode *n)
{
    struct smem *m = arg;
    struct store_topic *t = (struct store_topic *)n;
    while (t->head)
        drop_head(m, t, 0);
    free(t);
}

static void mem_free(struct store *s)
{
    struct smem *m = (struct smem *)s;
    table_drain(&m->topics, close_one, m);
    table_free(&m->topics);
    free(m);
}

static const struct store_ops mem_ops = {
    .open = mem_open,
    .close = mem_close,
    .append = mem_append,
    .seq = mem_seq,
    .base = mem_base,
    .last_gpos = mem_last_gpos,
    .oldest = mem_oldest,
    .since = mem_since,
    .evict = mem_evict,
    .poll = mem_poll,
    .changed = mem_changed,
    .free = mem_free,
};

struct store *store_mem_new(const struct store_config *cfg, uint64_t e, uint64_t k0, uint64_t k1)
{
    struct smem *m = calloc(1, sizeof(*m));
    if (!m) return NULL;
    if (table_init(&m->topics, k0, k1) < 0) {
        free(m);
        return NULL;
    }
    m->base.ops = &mem_ops;
    m->base.cfg = *cfg;
    m->base.wall_ms = store_wall_ms;
    snprintf(m->base.epoch, sizeof(m->base.epoch), "%016llx", (unsigned long long)e);
    return &m->base;
}

int store_complete(const struct store *s, const struct store_topic *t, uint64_t after)
{
    uint64_t cur = s->ops->seq(s, t);
    if (after >= cur) return after == cur;
    uint64_t oldest = s->ops->oldest(s, t);
    return oldest != 0 && oldest <= after + 1;
}

void store_disk_default(struct store_disk *d)
{
    memset(d, 0, sizeof(*d));
    d->sync = JOURNAL_SYNC_BATCH;
    d->batch_ms = 2;
    d->segment_bytes = 64ull << 20;
    d->max_bytes = 1ull << 30;
}

int store_disk_open(const struct store_config *cfg, const struct store_disk *d, uint64_t e,
                    uint64_t k0, uint64_t k1, struct store **out)
{
    (void)cfg;
    (void)d;
    (void)e;
    (void)k0;
    (void)k1;
    *out = NULL;
    return -ENOSYS; /* not built yet */
}
