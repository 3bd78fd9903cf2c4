/* conn: the per-connection outbound queue. A ring of entries addressed by absolute position
 * (pos & (cap - 1)), so an index from topic to "position of its newest queued hint" stays valid
 * across pops and growth without being updated: an index slot is live only while its position is
 * still in [qhead, qhead + qlen) and holds a hint of that topic. The index is only written while
 * coalescing and is dropped whenever the queue empties, so it never outgrows the queue's topics. */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct qent *at(const struct conn *c, uint64_t pos)
{
    return &c->q[pos & (c->qcap - 1)];
}

static int grow(struct conn *c)
{
    /* Start small: a connection's handshake queues two replies (welcome, subscribed), and the
     * ring of a connection that is idle afterwards is kept until conn_queue_trim. */
    uint32_t ncap = c->qcap ? c->qcap * 2 : 2;
    struct qent *nq = malloc(sizeof(*nq) * ncap);
    if (!nq) return -ENOMEM;
    for (uint64_t p = c->qhead; p < c->qhead + c->qlen; p++)
        nq[p & (ncap - 1)] = *at(c, p);
    free(c->q);
    c->q = nq;
    c->qcap = ncap;
    return 0;
}

int conn_push_msg(struct conn *c, struct msg *m)
{
    if (c->qlen == c->qcap && grow(c) < 0) {
        msg_unref(m);
        return -ENOMEM;
    }
    *at(c, c->qhead + c->qlen) = (struct qent){.m = m};
    c->qlen++;
    if (c->qtotal) stat_add(c->qtotal, 1);
    c->qctl++;
    /* A control message is a barrier: no later hint may merge into one queued before it (a
     * reset or subscribed must not be overtaken by a newer hint of its topic). */
    if (c->pm_used) {
        memset(c->pm, 0, sizeof(*c->pm) * c->pm_cap);
        c->pm_used = 0;
    }
    return 0;
}

/* Whether pos still holds a queued hint of h's topic. */
static int live(const struct conn *c, uint64_t pos, const struct hint *h)
{
    if (pos < c->qhead || pos >= c->qhead + c->qlen) return 0;
    const struct qent *e = at(c, pos);
    return e->h && hint_same_topic(e->h, h);
}

/* The slot for h's topic: the one holding its hash and either stale or live for that topic (a
 * stale slot is reused), else the first empty one. */
static size_t slot_of(const struct conn *c, const struct pslot *pm, uint32_t cap,
                      const struct hint *h)
{
    size_t i = (size_t)h->thash & (cap - 1);
    while (pm[i].used) {
        if (pm[i].thash == h->thash) {
            const struct qent *e =
                pm[i].pos >= c->qhead && pm[i].pos < c->qhead + c->qlen ? at(c, pm[i].pos) : NULL;
            if (!e || !e->h || hint_same_topic(e->h, h)) return i;
        }
        i = (i + 1) & (cap - 1);
    }
    return i;
}

/* Record pos as the newest queued hint of h's topic; rebuilds the index (live slots only) when
 * half full. */
static void index_put(struct conn *c, const struct hint *h, uint64_t pos)
{
    if ((c->pm_used + 1) * 2 > c->pm_cap) {
        uint32_t ncap = c->pm_cap ? c->pm_cap : 16;
        while ((c->pm_used + 1) * 2 > ncap)
            ncap *= 2;
        struct pslot *npm = calloc(ncap, sizeof(*npm));
        if (!npm) return; /* no index: this hint just won't be coalesced into */
        uint32_t used = 0;
        for (uint32_t i = 0; i < c->pm_cap; i++) {
            if (!c->pm[i].used || c->pm[i].pos < c->qhead || c->pm[i].pos >= c->qhead + c->qlen)
                continue;
            const struct qent *e = at(c, c->pm[i].pos);
            if (!e->h || e->h->thash != c->pm[i].thash) continue;
            npm[slot_of(c, npm, ncap, e->h)] = c->pm[i];
            used++;
        }
        free(c->pm);
        c->pm = npm;
        c->pm_cap = ncap;
        c->pm_used = used;
    }
    size_t i = slot_of(c, c->pm, c->pm_cap, h);
    if (!c->pm[i].used) c->pm_used++;
    c->pm[i] = (struct pslot){.thash = h->thash, .pos = pos, .used = 1};
}

/* A reference to h: one of the caller's pre-taken ones when it has some left (*budget), else
 * an atomic increment of its own. */
static struct hint *take_ref(struct hint *h, uint32_t *budget)
{
    if (budget && *budget) {
        (*budget)--;
        return h;
    }
    return hint_ref(h);
}

int conn_push_hint(struct conn *c, struct hint *h, uint32_t count, int own, int coalesce)
{
    return conn_push_hint_budget(c, h, count, own, coalesce, NULL);
}

int conn_push_hint_budget(struct conn *c, struct hint *h, uint32_t count, int own, int coalesce,
                          uint32_t *budget)
{
    if (coalesce && c->pm_cap) {
        size_t i = slot_of(c, c->pm, c->pm_cap, h);
        if (c->pm[i].used && live(c, c->pm[i].pos, h)) {
            struct qent *e = at(c, c->pm[i].pos);
            if (h->seq > e->h->seq) { /* never let an older hint replace a newer one */
                /* The entry stands for the seqs after (its seq - its count): the merged one for
                 * all of them up to h's, the connection's own skip_origin seqs in between
                 * included ("n" = seq - the connection's position, docs/protocol.md §hint). */
                e->count = (uint32_t)(h->seq - (e->h->seq - e->count));
                hint_unref(e->h);
                e->h = take_ref(h, budget);
                e->own = (uint8_t)(e->own && own);
            }
            return 1;
        }
    }
    if (c->qlen == c->qcap && grow(c) < 0) return -ENOMEM;
    uint64_t pos = c->qhead + c->qlen;
    *at(c, pos) = (struct qent){.h = take_ref(h, budget), .count = count, .own = (uint8_t)own};
    c->qlen++;
    if (c->qtotal) stat_add(c->qtotal, 1);
    if (coalesce) index_put(c, h, pos);
    return 0;
}

const struct qent *conn_peek(const struct conn *c, uint32_t i)
{
    return i < c->qlen ? at(c, c->qhead + i) : NULL;
}

const uint8_t *conn_payload(struct conn *c, uint32_t i, struct wire_buf *tmp, size_t *len)
{
    const struct qent *e = conn_peek(c, i);
    if (!e) return NULL;
    if (e->m) {
        *len = e->m->len;
        return e->m->data;
    }
    const struct msg *m = e->count <= 1 && !e->own ? hint_payload(e->h, c->fmt) : NULL;
    if (m) {
        *len = m->len;
        return m->data;
    }
    wire_buf_reset(tmp);
    if (hint_encode(e->h, c->fmt, e->count, e->own, tmp) < 0) return NULL;
    *len = tmp->len;
    return tmp->data;
}

void conn_pop(struct conn *c, uint32_t n)
{
    while (n-- && c->qlen) {
        struct qent *e = at(c, c->qhead);
        if (e->m) c->qctl--;
        msg_unref(e->m);
        if (e->h && c->bag && c->bag->active)
            hintbag_put(c->bag, e->h);
        else
            hint_unref(e->h);
        c->qhead++;
        c->qlen--;
        if (c->qtotal) stat_sub(c->qtotal, 1);
    }
    if (c->qlen == 0 && c->pm_used) { /* every index slot is stale now */
        memset(c->pm, 0, sizeof(*c->pm) * c->pm_cap);
        c->pm_used = 0;
    }
}

void conn_queue_free(struct conn *c)
{
    conn_pop(c, c->qlen);
    if (c->pub) wire_buf_free(&c->pub->out);
    free(c->q);
    free(c->pm);
    c->q = NULL;
    c->pm = NULL;
    c->qcap = c->qlen = c->qctl = c->pm_cap = c->pm_used = 0;
}

void conn_queue_trim(struct conn *c)
{
    if (c->qlen) return;
    free(c->q);
    free(c->pm);
    c->q = NULL;
    c->pm = NULL;
    c->qcap = c->pm_cap = c->pm_used = 0;
}
