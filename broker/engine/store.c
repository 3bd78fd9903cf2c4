/* store: positions and history in memory, optionally persisted to a journal (store_disk_open):
 * one implementation of the store, so positions, history, the floor and the horizon are decided
 * in one place whether or not they are also on disk.
 *
 * Memory. Each record (struct store_topic) keeps its hints in a FIFO of entries, oldest first;
 * every entry is also on one global FIFO in append order. The three bounds then cost O(1) per
 * eviction: the per-topic count drops its topic's head; the byte and age bounds drop the global
 * head, which is also the head of its own topic because both lists are in append order.
 *
 * A record outlives the engine's hold on it: positions outlive history. A closed record (nobody
 * holding it) goes to the tail of the closed FIFO, in close order, and is forgotten — raising
 * the floor above its seq — once it has been closed for the horizon, or when more than
 * max_positions records are kept (oldest closed first). Close order is not last-publish order,
 * but a record closed at C was last published at or before C, so it is kept at least the
 * horizon after its last publish. Only recovered records are closed with history retained
 * (until the engine opens them, or age or the bounds drop it).
 *
 * The persistence half (the journal under these records, recovery, compaction) is disk.c; disk.h
 * is what the two halves share. */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "disk.h"
#include "table.h"

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

uint64_t store__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
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

/* Remove the oldest retained hint of t; tell its owner when t is held and has nothing left (a
 * recovered record may be closed with history: nobody to tell then). */
void store__drop_head(struct smem *m, struct store_topic *t, int notify)
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
    if (notify && t->count == 0 && !t->closed && m->base.emptied)
        m->base.emptied(m->base.emptied_arg, t->owner);
}

/* Retain h (a new reference) in t's history with the entry e, then apply the count and byte
 * bounds (never dropping h itself). */
void store__retain(struct smem *m, struct store_topic *t, struct hent *e, struct hint *h)
{
    struct store *s = &m->base;
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
        store__drop_head(m, t, 0);
        s->st.evicted++;
    }
    while (s->st.bytes > s->cfg.max_bytes && m->ghead && m->ghead != e) {
        store__drop_head(m, m->ghead->t, 1);
        s->st.evicted++;
    }
}

void store__retain_before(struct smem *m, struct store_topic *t, struct hent *before,
                          struct hent *e, struct hint *h)
{
    if (!before) {
        store__retain(m, t, e, h);
        return;
    }
    struct store *s = &m->base;
    *e = (struct hent){
        .h = hint_ref(h), .t = t, .tnext = before, .gprev = before->gprev, .gnext = before};
    struct hent **pp = &t->head;
    while (*pp != before)
        pp = &(*pp)->tnext;
    *pp = e;
    if (before->gprev)
        before->gprev->gnext = e;
    else
        m->ghead = e;
    before->gprev = e;
    t->count++;
    s->st.entries++;
    s->st.bytes += hint_size(h);
    while (t->count > s->cfg.per_topic) { /* the oldest go: those just put in front */
        store__drop_head(m, t, 0);
        s->st.evicted++;
    }
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
void store__changed_at(struct smem *m, struct store_topic *t, uint64_t gpos)
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

void store__clink(struct smem *m, struct store_topic *t)
{
    t->closed = 1;
    t->cprev = m->ctail;
    t->cnext = NULL;
    if (m->ctail)
        m->ctail->cnext = t;
    else
        m->chead = t;
    m->ctail = t;
}

/* Forget a closed record: the floor rises above its seq, and a wildcard resume from before its
 * last change can no longer be answered by changes (st.forgot_gpos). */
void store__forget(struct smem *m, struct store_topic *t)
{
    while (t->head) /* a recovered record is closed with its history */
        store__drop_head(m, t, 0);
    cunlink(m, t);
    lunlink(m, t);
    if (t->last_gpos > m->base.st.forgot_gpos) m->base.st.forgot_gpos = t->last_gpos;
    if (t->aseq > m->floor) m->floor = t->aseq;
    table_remove(&m->topics, &t->node);
    m->base.st.positions--;
    m->base.st.forgotten++;
    free(t);
}

/* Keep at most max_positions - room records, forgetting the oldest closed ones first. */
void store__trim(struct smem *m, uint64_t room)
{
    while (m->base.st.positions + room > m->base.cfg.max_positions && m->chead)
        store__forget(m, m->chead);
}

/* A new record for name (not present), at the floor, not on any list. NULL on OOM. */
struct store_topic *store__topic_new(struct smem *m, const char *name, size_t len, uint64_t hash)
{
    struct store_topic *t = calloc(1, sizeof(*t) + len + 1);
    if (!t) return NULL;
    memcpy(t->name, name, len);
    t->node = (struct tnode){.hash = hash, .name = t->name, .len = (uint32_t)len};
    /* A cluster node's new record starts at 0, not at its floor: Redis numbers the topic, and may
     * still hold a record this node forgot, below the node's floor. A subscriber told 0 gets the
     * next hint with n = its seq (never one at or below what it was told, which it would drop),
     * and a resume from a position the node does not know is "ahead" (reset). */
    t->seq = t->aseq = t->base = m->c ? 0 : m->floor;
    table_add(&m->topics, &t->node);
    m->base.st.positions++;
    return t;
}

static struct store_topic *mem_open(struct store *s, const char *name, size_t len, uint64_t hash,
                                    void *owner)
{
    struct smem *m = (struct smem *)s;
    struct tnode *n = table_find(&m->topics, name, len, hash);
    if (n) {
        struct store_topic *t = (struct store_topic *)n;
        if (t->closed) {
            cunlink(m, t);
            t->closed = 0;
            s->st.topics++;
        }
        t->owner = owner;
        return t;
    }
    store__trim(m, 1); /* first: the new record starts above what this forgets */
    struct store_topic *t = store__topic_new(m, name, len, hash);
    if (!t) return NULL;
    t->owner = owner;
    s->st.topics++;
    return t;
}

static void mem_close(struct store *s, struct store_topic *t)
{
    struct smem *m = (struct smem *)s;
    while (t->head)
        store__drop_head(m, t, 0);
    t->owner = NULL;
    t->closed_ms = s->wall_ms();
    store__clink(m, t);
    s->st.topics--;
    store__trim(m, 0);
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
    if (m->j) {
        disk_append(m, t, h, e, done, arg);
        return;
    }
    if (m->c) {
        cluster__append(m, t, h, e, done, arg);
        return;
    }
    h->seq = t->seq = ++t->aseq;
    h->gpos = s->st.gpos = ++m->agpos;
    store__changed_at(m, t, h->gpos);
    h->time_ms = s->wall_ms();
    if (e) store__retain(m, t, e, h);
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

/* Seal a recovered hint the first time it is handed out (nobody else holds it before: the
 * engine's appended hints are sealed by the engine). Returns 0 or -ENOMEM. */
int store__seal(struct smem *m, struct hint *h)
{
    if (h->enc[0] && h->enc[1]) return 0;
    if (hint_seal(h, &m->tmp) == 0) return 0;
    for (int f = 0; f < 2; f++) {
        msg_unref(h->enc[f]);
        h->enc[f] = NULL;
    }
    return -ENOMEM;
}

static void mem_since(struct store *s, const struct store_topic *t, uint64_t after, uint64_t upto,
                      void (*fn)(void *arg, struct hint *h), void *arg)
{
    struct smem *m = (struct smem *)s;
    for (struct hent *e = t->head; e; e = e->tnext)
        if (e->h->seq > after && e->h->seq <= upto && (!e->recovered || store__seal(m, e->h) == 0))
            fn(arg, e->h);
}

static void mem_evict(struct store *s, uint64_t now_ms)
{
    struct smem *m = (struct smem *)s;
    /* Bounded per call so that a mass expiry is spread over ticks instead of pausing a loop. */
    uint32_t budget = STORE_EVICT_BUDGET;
    while (budget && m->ghead && now_ms > m->ghead->h->time_ms &&
           now_ms - m->ghead->h->time_ms > s->cfg.max_age_ms) {
        store__drop_head(m, m->ghead->t, 1);
        s->st.evicted++;
        budget--;
    }
    while (budget && m->chead && now_ms > m->chead->closed_ms &&
           now_ms - m->chead->closed_ms > s->cfg.horizon_ms) {
        store__forget(m, m->chead);
        budget--;
    }
    if (m->j) {
        disk_check_failed(m);
        disk_compact(m, now_ms);
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
                                 .newest = NULL};
        struct hent *e = t->tail;
        if (e && e->h->seq == t->seq && (!e->recovered || store__seal(m, e->h) == 0))
            c.newest = e->h;
        fn(arg, &c);
    }
}

static void mem_poll(struct store *s, int wait)
{
    struct smem *m = (struct smem *)s;
    if (m->j) disk_poll(m, wait); /* in memory every append completed in its call */
    if (m->c) cluster__poll(m, wait);
}

static void close_one(void *arg, struct tnode *n)
{
    struct smem *m = arg;
    struct store_topic *t = (struct store_topic *)n;
    while (t->head)
        store__drop_head(m, t, 0);
    free(t);
}

void store__reset(struct smem *m)
{
    while (m->chead) /* nobody holds them */
        store__forget(m, m->chead);
    for (struct store_topic *t = m->lhead, *next; t; t = next) {
        next = t->lnext;
        while (t->head)
            store__drop_head(m, t, 0);
        t->seq = t->aseq = t->base = 0;
        t->last_gpos = 0;
        t->lprev = t->lnext = NULL;
    }
    m->lhead = m->ltail = NULL;
    m->floor = m->agpos = 0;
    m->base.st.gpos = 0;
    m->base.st.forgot_gpos = 0;
}

/* Drop every record and hint (the lists go with them). */
void store__drop_all(struct smem *m)
{
    table_drain(&m->topics, close_one, m);
    m->chead = m->ctail = NULL;
    m->ghead = m->gtail = NULL;
    m->lhead = m->ltail = NULL;
    m->floor = m->agpos = 0;
    m->base.st.positions = m->base.st.topics = m->base.st.gpos = 0;
    m->base.st.forgot_gpos = 0;
}

void store__free(struct store *s)
{
    struct smem *m = (struct smem *)s;
    disk_free(m);
    cluster__free(m);
    store__drop_all(m);
    table_free(&m->topics);
    wire_buf_free(&m->tmp);
    free(m);
}

/* The memory store's ops; the cluster store's are the same with adopt. */
#define MEM_OPS                                                                                    \
    .open = mem_open, .close = mem_close, .append = mem_append, .seq = mem_seq, .base = mem_base,  \
    .last_gpos = mem_last_gpos, .oldest = mem_oldest, .since = mem_since, .evict = mem_evict,      \
    .poll = mem_poll, .changed = mem_changed, .free = store__free
static const struct store_ops mem_ops = {MEM_OPS};
static const struct store_ops cluster_ops = {MEM_OPS, .adopt = cluster__adopt};

void store__cluster_ops(struct smem *m)
{
    m->base.ops = &cluster_ops;
}

struct smem *store__smem_new(const struct store_config *cfg, uint64_t e, uint64_t k0, uint64_t k1)
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
    atomic_init(&m->base.epoch_now, m->base.epoch);
    return m;
}

struct store *store_mem_new(const struct store_config *cfg, uint64_t e, uint64_t k0, uint64_t k1)
{
    struct smem *m = store__smem_new(cfg, e, k0, k1);
    return m ? &m->base : NULL;
}

int store_complete(const struct store *s, const struct store_topic *t, uint64_t after)
{
    uint64_t cur = s->ops->seq(s, t);
    if (after >= cur) return after == cur;
    /* A cluster node: seqs up to the base were never this topic's (cluster.c) */
    uint64_t base = s->ops->base(s, t);
    if (s->ops->adopt && after < base) after = base;
    uint64_t oldest = s->ops->oldest(s, t);
    return oldest != 0 && oldest <= after + 1;
}

/* ---- disk: append and completion ---------------------------------------------------------- */
