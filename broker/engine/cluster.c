/* cluster: see cluster.h. The memory store (store.c) with the numbering moved out to Redis.
 *
 * Appends wait in a FIFO (pq) in request order. Redis runs one connection's scripts in order and
 * publishes each on the channel as it runs it, so this node's messages come back in request
 * order too: a message with request number r completes the waiting append r, and the appends
 * before it, whose messages can no longer come, fail. A script that failed says so on the
 * command connection (cluster_failed); its append fails once it reaches the head.
 *
 * A synchronisation (at start, after the link was lost, after a gap) reads every record while
 * the channel is already subscribed, so a publish is either in a record read after it or
 * arrives as a message: both are applied, in either order, and the second is a duplicate (the
 * topic's last global position is already at or past it). The changed list stays sorted by
 * global position only for live messages: records read at a synchronisation go to its head,
 * and a wildcard resume from before the synchronisation ended is reset (forgot_gpos). */
#include "cluster.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "disk.h"
#include "relay.h"
#include "table.h"

enum in_kind { IN_MSG, IN_SYNC, IN_REC, IN_SYNCED, IN_FAILED, IN_DOWN };

/* One thing the link read, queued for poll. */
struct in {
    struct in *next;
    enum in_kind kind;
    uint64_t a, b, c; /* REC: base, seq, gpos; SYNCED: gpos, floor; FAILED: req, -err */
    char epoch[17];   /* SYNC, SYNCED, FAILED */
    uint32_t nmsgs;   /* REC: stream messages after the topic name */
    size_t len;       /* MSG: its bytes; REC: the topic name's */
    uint8_t data[];   /* MSG: the message; REC: the name, then nmsgs x (u32 length, bytes) */
};

struct cpend {
    uint64_t req;
    struct hint *h; /* a reference of ours */
    struct store_topic *t;
    struct hent *e; /* its history entry (NULL: per_topic 0) */
    store_done_fn *done;
    void *arg;
    int err; /* < 0: its script failed; completes with it once at the head */
};

struct epoch_str {
    struct epoch_str *next;
    char s[17];
};

struct cluster {
    struct cluster_link link;
    struct epoch_str *epochs; /* epochs adopted after the first (freed with the store) */
    uint64_t node;
    uint64_t next_req;
    struct cpend *pq; /* ring */
    size_t cap, head, len;
    pthread_mutex_t lock; /* the inbound queue: the link's thread and poll */
    struct in *ihead, *itail;
    int syncing;
    int ready;
    int closing;           /* shutdown: what arrives is dropped (poll with wait ran) */
    uint64_t chan_gpos;    /* the newest global position seen (channel or synchronisation) */
    uint64_t forgot_saved; /* forgot_gpos before a synchronisation set it to "everything" */
    struct cluster_stats st;
};

/* ---- from the link's thread --------------------------------------------------------------- */

static struct cluster *of(struct store *s)
{
    return ((struct smem *)s)->c;
}

static void push(struct store *s, struct in *in)
{
    struct cluster *c = of(s);
    in->next = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->itail)
        c->itail->next = in;
    else
        c->ihead = in;
    c->itail = in;
    pthread_mutex_unlock(&c->lock);
    if (s->wake) s->wake(s->wake_arg);
}

static struct in *in_new(enum in_kind kind, size_t extra)
{
    struct in *in = calloc(1, sizeof(*in) + extra);
    if (in) in->kind = kind;
    return in;
}

/* Out of memory on the link's thread: what was read is lost, so the node asks for a new
 * synchronisation (it is never silently behind). */
static void lost(struct store *s)
{
    struct cluster *c = of(s);
    c->link.resync(c->link.arg);
}

void cluster_msg(struct store *s, const uint8_t *p, size_t n)
{
    struct in *in = in_new(IN_MSG, n);
    if (!in) return lost(s);
    memcpy(in->data, p, n);
    in->len = n;
    push(s, in);
}

void cluster_sync_begin(struct store *s, const char *epoch)
{
    struct in *in = in_new(IN_SYNC, 0);
    if (!in) return lost(s);
    snprintf(in->epoch, sizeof(in->epoch), "%s", epoch);
    push(s, in);
}

void cluster_record(struct store *s, const char *topic, size_t tlen, uint64_t base, uint64_t seq,
                    uint64_t gpos, const uint8_t *const *msgs, const size_t *lens, size_t nmsgs)
{
    size_t extra = tlen;
    for (size_t i = 0; i < nmsgs; i++)
        extra += 4 + lens[i];
    struct in *in = in_new(IN_REC, extra);
    if (!in) return lost(s);
    memcpy(in->data, topic, tlen);
    in->len = tlen;
    in->a = base, in->b = seq, in->c = gpos;
    in->nmsgs = (uint32_t)nmsgs;
    uint8_t *o = in->data + tlen;
    for (size_t i = 0; i < nmsgs; i++) {
        uint32_t l = (uint32_t)lens[i];
        memcpy(o, &l, 4);
        memcpy(o + 4, msgs[i], l);
        o += 4 + l;
    }
    push(s, in);
}

void cluster_synced(struct store *s, const char *epoch, uint64_t gpos, uint64_t floor)
{
    struct in *in = in_new(IN_SYNCED, 0);
    if (!in) return lost(s);
    snprintf(in->epoch, sizeof(in->epoch), "%s", epoch);
    in->a = gpos, in->b = floor;
    push(s, in);
}

void cluster_failed(struct store *s, uint64_t req, int err, const char *epoch_now)
{
    struct in *in = in_new(IN_FAILED, 0);
    if (!in) return lost(s);
    in->a = req, in->b = (uint64_t)-err;
    snprintf(in->epoch, sizeof(in->epoch), "%s", epoch_now ? epoch_now : "");
    push(s, in);
}

void cluster_down(struct store *s)
{
    struct in *in = in_new(IN_DOWN, 0);
    if (in) push(s, in);
    /* without memory the next synchronisation's IN_SYNC still resets the state */
}

/* ---- appends ------------------------------------------------------------------------------ */

static int pq_grow(struct cluster *c)
{
    if (c->len < c->cap) return 0;
    size_t cap = c->cap ? c->cap * 2 : 64;
    struct cpend *q = malloc(cap * sizeof(*q));
    if (!q) return -ENOMEM;
    for (size_t i = 0; i < c->len; i++)
        q[i] = c->pq[(c->head + i) % c->cap];
    free(c->pq);
    c->pq = q;
    c->cap = cap;
    c->head = 0;
    return 0;
}

static struct cpend pq_pop(struct cluster *c)
{
    struct cpend p = c->pq[c->head];
    c->head = (c->head + 1) % c->cap;
    c->len--;
    c->st.pending = c->len;
    return p;
}

void cluster__append(struct smem *m, struct store_topic *t, struct hint *h, struct hent *e,
                     store_done_fn *done, void *arg)
{
    struct cluster *c = m->c;
    int rc = -EIO;
    if (!c->ready || c->closing || (rc = pq_grow(c)) < 0) goto fail;
    char origin[RELAY_ORIGIN_MAX + 1];
    uint64_t req = c->next_req + 1;
    /* The connection that caused it travels along: it may be on another node (own, skip). */
    const char *conn = m->base.pub_origin;
    size_t conn_len = conn && m->base.pub_origin_len <= RELAY_CONN_MAX ? m->base.pub_origin_len : 0;
    int olen = relay_origin(origin, sizeof(origin), c->node, req,
                            conn_len && m->base.pub_skip_origin, conn, conn_len);
    rc = c->link.publish(c->link.arg, req, h->topic, h->topic_len, h->data_len ? h->data : NULL,
                         h->data_len, origin, (size_t)olen);
    if (rc < 0) goto fail;
    c->next_req = req;
    c->pq[(c->head + c->len++) % c->cap] =
        (struct cpend){.req = req, .h = hint_ref(h), .t = t, .e = e, .done = done, .arg = arg};
    c->st.pending = c->len;
    return;
fail:
    free(e);
    c->st.failed++;
    done(arg, h, rc);
}

static void fail_one(struct cluster *c, struct cpend *p, int err)
{
    free(p->e);
    c->st.failed++;
    p->done(p->arg, p->h, err);
    hint_unref(p->h);
}

/* Complete the failed appends at the head (their messages will not come). */
static void fail_head(struct cluster *c)
{
    while (c->len && c->pq[c->head].err < 0) {
        struct cpend p = pq_pop(c);
        fail_one(c, &p, p.err);
    }
}

static void fail_all(struct cluster *c, int err)
{
    while (c->len) {
        struct cpend p = pq_pop(c);
        fail_one(c, &p, err);
    }
}

/* ---- applying what arrived ---------------------------------------------------------------- */

/* h (stamped) is t's newest change: the record follows it, h is retained through e. */
static void apply(struct smem *m, struct store_topic *t, struct hint *h, struct hent *e)
{
    struct store *s = &m->base;
    /* The first publish this node sees of a topic it did not know: Redis created the record at
     * its floor, so the seqs below this one were never the topic's (replay from below is whole). */
    if (!t->last_gpos && t->seq == 0 && h->seq > 1) t->base = h->seq - 1;
    t->seq = t->aseq = h->seq;
    if (h->seq > m->floor) m->floor = h->seq;
    if (h->gpos > s->st.gpos) s->st.gpos = m->agpos = h->gpos;
    store__changed_at(m, t, h->gpos);
    if (e) store__retain(m, t, e, h);
}

static struct hent *new_entry(struct smem *m)
{
    return m->base.cfg.per_topic ? malloc(sizeof(struct hent)) : NULL;
}

/* t goes to the head of the changed list with global position gpos (a record read at a
 * synchronisation: older than forgot_gpos once it ends, so the list's order past that holds). */
static void changed_at_head(struct smem *m, struct store_topic *t, uint64_t gpos)
{
    store__changed_at(m, t, gpos); /* unlinks it if linked, links it at the tail */
    if (m->lhead == t) return;
    m->ltail = t->lprev;
    m->ltail->lnext = NULL;
    t->lprev = NULL;
    t->lnext = m->lhead;
    m->lhead->lprev = t;
    m->lhead = t;
}

/* Retain the stream messages of record `in` in t that are older than what t retains (all of
 * them after rec_apply emptied it), oldest first; keep: the engine's hint of the newest, retained
 * in its place. Messages that do not decode, or are of another topic or epoch, are skipped and
 * counted. */
static void rec_history(struct smem *m, struct store_topic *t, const struct in *in,
                        struct hint *keep)
{
    struct cluster *c = m->c;
    struct hent *first = t->head; /* what came live first: the stream's older entries go before */
    uint64_t first_seq = first ? first->h->seq : UINT64_MAX, last = 0;
    const uint8_t *p = in->data + in->len;
    for (uint32_t i = 0; i < in->nmsgs; i++) {
        uint32_t l;
        memcpy(&l, p, 4);
        struct relay_msg msg;
        int ok = relay_decode(p + 4, l, &msg) == 0 && msg.topic_len == in->len &&
                 !memcmp(msg.topic, in->data, in->len) &&
                 !strcmp(msg.epoch, store_epoch(&m->base)) && msg.seq <= in->b && msg.seq > last;
        p += 4 + l;
        if (!ok) {
            c->st.bad++;
            continue;
        }
        last = msg.seq;
        if (msg.seq >= first_seq || (keep && msg.seq == keep->seq)) break;
        struct hent *e = new_entry(m);
        struct hint *h =
            e ? hint_new(t->name, t->node.len, t->node.hash, msg.data, msg.data_len) : NULL;
        if (!h) {
            free(e);
            continue;
        }
        h->seq = msg.seq, h->gpos = msg.gpos, h->time_ms = msg.time_ms;
        store__retain_before(m, t, first, e, h);
        e->recovered = 1; /* sealed when first handed out */
        hint_unref(h);
    }
    if (keep) {
        struct hent *e = new_entry(m);
        if (e) store__retain(m, t, e, keep);
    }
}

/* Record `in` is ahead of t: t takes its position, and its history is the stream's (what t
 * retained may not join it: the messages between were not seen here). */
static void rec_apply(struct smem *m, struct store_topic *t, const struct in *in, struct hint *h)
{
    struct store *s = &m->base;
    while (t->head)
        store__drop_head(m, t, 0);
    if (t->seq == t->base && in->a > t->base) t->base = in->a; /* nothing seen here: Redis's */
    t->seq = t->aseq = in->b;
    if (in->b > m->floor) m->floor = in->b;
    if (in->c > s->st.gpos) s->st.gpos = m->agpos = in->c;
    changed_at_head(m, t, in->c);
    rec_history(m, t, in, h);
}

/* Data of the newest stream message of `in` when it is the record's seq (the catch-up hint
 * then carries it), else none. */
static void rec_newest(const struct in *in, struct store_arrival *a)
{
    const uint8_t *p = in->data + in->len, *last = NULL;
    uint32_t l = 0, lastl = 0;
    for (uint32_t i = 0; i < in->nmsgs; i++) {
        memcpy(&l, p, 4);
        last = p + 4, lastl = l;
        p += 4 + l;
    }
    struct relay_msg msg;
    if (last && relay_decode(last, lastl, &msg) == 0 && msg.seq == in->b) {
        a->data = msg.data;
        a->data_len = msg.data_len;
    }
}

/* What adopt is given as the arrival's ctx. */
struct actx {
    const struct relay_msg *msg; /* a message, or */
    const struct in *rec;        /* a record found ahead */
    int recorded;                /* set by adopt: t has the change (now or before) */
};

int cluster__adopt(struct store *s, struct store_topic *t, struct hint *h,
                   const struct store_arrival *a)
{
    struct smem *m = (struct smem *)s;
    struct actx *x = a->ctx;
    x->recorded = 1;
    if (x->rec) {
        if (t->last_gpos >= x->rec->c && t->seq >= x->rec->b) return 1;
        h->seq = x->rec->b, h->gpos = x->rec->c, h->time_ms = s->wall_ms();
        rec_apply(m, t, x->rec, h);
        return 0;
    }
    if (t->last_gpos >= x->msg->gpos) return 1;
    struct hent *e = NULL;
    if (s->cfg.per_topic && !(e = malloc(sizeof(*e)))) {
        x->recorded = 0;
        return -ENOMEM;
    }
    h->seq = x->msg->seq, h->gpos = x->msg->gpos, h->time_ms = x->msg->time_ms;
    apply(m, t, h, e);
    return 0;
}

static struct store_topic *find(struct smem *m, const char *name, size_t len, uint64_t hash)
{
    return (struct store_topic *)table_find(&m->topics, name, len, hash);
}

/* Hand a to the engine (store.arrived), which records it through adopt. When it could not (out
 * of memory for the topic or its hint), the node would stay behind silently: a synchronisation
 * brings it back. */
static void arrive(struct smem *m, struct store_arrival *a)
{
    struct actx *x = a->ctx;
    m->base.arrived(m->base.arrived_arg, a);
    if (x->recorded) return;
    m->c->st.bad++;
    m->c->link.resync(m->c->link.arg);
}

static void on_msg(struct smem *m, const struct in *in)
{
    struct cluster *c = m->c;
    struct store *s = &m->base;
    struct relay_msg msg;
    if (relay_decode(in->data, in->len, &msg) < 0) {
        c->st.bad++;
        return;
    }
    /* Before the first synchronisation ends too: a publish after its topic's record was read
     * (or to a topic with none yet) is known from its message only. */
    if (strcmp(msg.epoch, store_epoch(s))) {
        /* Redis lost its data and another node set a new epoch: synchronise, which adopts it. */
        c->st.bad++;
        c->link.resync(c->link.arg);
        return;
    }
    if (!c->syncing && msg.gpos > c->chan_gpos + 1) {
        c->st.gaps++;
        c->link.resync(c->link.arg); /* what was skipped is found by the synchronisation */
    }
    if (msg.gpos > c->chan_gpos) c->chan_gpos = msg.gpos;
    uint64_t node = 0, req = 0;
    int skip = 0;
    const char *conn = "";
    size_t conn_len = 0;
    /* Not a node's origin (anything can write to the channel): no connection, not ours. */
    int parsed =
        relay_origin_parse(msg.origin, msg.origin_len, &node, &req, &skip, &conn, &conn_len) == 0;
    int mine = parsed && node == c->node;
    if (mine) {
        while (c->len && c->pq[c->head].req < req) {
            struct cpend p = pq_pop(c);
            fail_one(c, &p, p.err < 0 ? p.err : -EIO);
        }
        if (c->len && c->pq[c->head].req == req) {
            struct cpend p = pq_pop(c);
            p.h->seq = msg.seq, p.h->gpos = msg.gpos, p.h->time_ms = msg.time_ms;
            apply(m, p.t, p.h, p.e);
            c->st.own++;
            p.done(p.arg, p.h, 0);
            hint_unref(p.h);
            fail_head(c);
            return;
        }
        /* its append was already failed (the link dropped): a publish all the same */
    }
    uint64_t hash = table_hash(&m->topics, msg.topic, msg.topic_len);
    struct store_topic *t = find(m, msg.topic, msg.topic_len, hash);
    if (t && t->last_gpos >= msg.gpos) {
        c->st.dups++;
        return;
    }
    struct actx x = {.msg = &msg};
    struct store_arrival a = {.name = msg.topic,
                              .len = msg.topic_len,
                              .hash = hash,
                              .data = msg.data,
                              .data_len = msg.data_len,
                              .origin = "",
                              .count = 1,
                              .ctx = &x};
    if (parsed) { /* a node's origin: the connection behind the publish, and skip_origin */
        a.origin = conn;
        a.origin_len = (uint32_t)conn_len;
        a.skip_origin = skip;
    }
    c->st.remote++;
    arrive(m, &a);
}

static void on_rec(struct smem *m, const struct in *in)
{
    struct cluster *c = m->c;
    struct store *s = &m->base;
    const char *name = (const char *)in->data;
    if (in->b == 0 || in->c == 0) return;
    c->st.records++;
    uint64_t hash = table_hash(&m->topics, name, in->len);
    struct store_topic *t = find(m, name, in->len, hash);
    if (t && t->last_gpos >= in->c && t->seq >= in->b) {
        /* Seen live already, maybe only its newest hints: the older ones come from the stream. */
        rec_history(m, t, in, NULL);
        return;
    }
    if (!c->ready && (!t || !t->owner)) {
        /* The first synchronisation: nobody to tell, the record is kept closed. */
        if (!t) {
            store__trim(m, 1);
            if (!(t = store__topic_new(m, name, in->len, hash))) return;
            t->base = t->seq = t->aseq = in->a;
            t->closed_ms = s->wall_ms();
            store__clink(m, t);
        }
        rec_apply(m, t, in, NULL);
        return;
    }
    /* The node was not listening when it moved: a catch-up hint for what was missed. */
    struct actx x = {.rec = in};
    struct store_arrival a = {.name = name,
                              .len = (uint32_t)in->len,
                              .hash = hash,
                              .origin = "",
                              .count = t && in->b > t->seq && in->b - t->seq < UINT32_MAX
                                           ? (uint32_t)(in->b - t->seq)
                                           : 1,
                              .ctx = &x};
    rec_newest(in, &a);
    c->st.caught_up++;
    arrive(m, &a);
}

static void on_synced(struct smem *m, const struct in *in)
{
    struct cluster *c = m->c;
    struct store *s = &m->base;
    if (strlen(in->epoch) != 16) { /* Redis lost the epoch during the reads: again */
        c->link.resync(c->link.arg);
        return;
    }
    if (!c->ready) {
        snprintf(s->epoch, sizeof(s->epoch), "%s", in->epoch);
        c->ready = 1;
    } else if (strcmp(in->epoch, store_epoch(s))) { /* it changed during the reads: again */
        c->link.resync(c->link.arg);
        return;
    } else if (in->a < c->chan_gpos) {
        /* Redis is behind what this node saw: it came back from older data, and would give
         * seqs again that clients already hold. Its positions are not the epoch's any more. */
        fprintf(stderr,
                "nudged: cluster: Redis's global position %llu is behind the %llu this node saw "
                "(restored from older data?): retiring epoch %s\n",
                (unsigned long long)in->a, (unsigned long long)c->chan_gpos, store_epoch(s));
        c->st.behind++;
        c->link.retire(c->link.arg, store_epoch(s));
        return;
    }
    if (in->a > s->st.gpos) s->st.gpos = m->agpos = in->a;
    if (in->a > c->chan_gpos) c->chan_gpos = in->a;
    if (in->b > m->floor) m->floor = in->b;
    /* Changes before this point are not all in order on the changed list. */
    s->st.forgot_gpos = c->forgot_saved > s->st.gpos ? s->st.gpos : c->forgot_saved;
    if (in->a > s->st.forgot_gpos) s->st.forgot_gpos = in->a;
    c->syncing = 0;
    c->st.up = 1;
    c->st.syncs++;
}

/* Redis lost its data and has a new epoch (the first node back set it): every position and hint
 * of the old one goes, and the engine tells the hubs (their subscribers reconnect, and their
 * resume with the old epoch gets a reset). The old epoch's string stays readable: another
 * thread may have just loaded it. */
static void new_epoch(struct smem *m, const char *epoch)
{
    struct cluster *c = m->c;
    struct epoch_str *e = malloc(sizeof(*e));
    if (!e) { /* keep the old one: publishes fail (NUDGE_EPOCH) and this is tried again */
        c->link.resync(c->link.arg);
        return;
    }
    fprintf(stderr,
            "nudged: cluster: Redis's epoch is now %s, not %s (it lost its data): every "
            "position starts again, and subscribers are reset\n",
            epoch, store_epoch(&m->base));
    snprintf(e->s, sizeof(e->s), "%s", epoch);
    e->next = c->epochs;
    c->epochs = e;
    fail_all(c, -EIO);
    store__reset(m);
    c->chan_gpos = 0;
    c->forgot_saved = 0;
    atomic_store_explicit(&m->base.epoch_now, e->s, memory_order_release);
    c->st.epochs++;
    if (m->base.reset) m->base.reset(m->base.reset_arg);
}

static void on_in(struct smem *m, const struct in *in)
{
    struct cluster *c = m->c;
    switch (in->kind) {
    case IN_MSG:
        on_msg(m, in);
        break;
    case IN_SYNC:
        /* The records' streams are read under it (checked again when the reads end). */
        if (!c->ready)
            snprintf(m->base.epoch, sizeof(m->base.epoch), "%s", in->epoch);
        else if (strlen(in->epoch) == 16 && strcmp(in->epoch, store_epoch(&m->base)))
            new_epoch(m, in->epoch);
        if (!c->syncing) c->forgot_saved = m->base.st.forgot_gpos;
        c->syncing = 1;
        c->st.records = 0;
        /* A wildcard resume is answered from an ordered changed list: reset it meanwhile. */
        m->base.st.forgot_gpos = UINT64_MAX;
        break;
    case IN_REC:
        on_rec(m, in);
        break;
    case IN_SYNCED:
        on_synced(m, in);
        break;
    case IN_FAILED:
        for (size_t i = 0; i < c->len; i++) {
            struct cpend *p = &c->pq[(c->head + i) % c->cap];
            if (p->req == in->a) p->err = -(int)in->b;
        }
        fail_head(c);
        if (in->b == ESTALE) c->link.resync(c->link.arg); /* adopts Redis's new epoch */
        break;
    case IN_DOWN:
        c->st.up = 0;
        fail_all(c, -EIO);
        break;
    }
}

void cluster__poll(struct smem *m, int wait)
{
    struct cluster *c = m->c;
    /* Shutdown: what is on its way gets a bounded while to come back, then fails. */
    for (int i = 0; wait && c->len && i < 2000; i++) {
        pthread_mutex_lock(&c->lock);
        int empty = c->ihead == NULL;
        pthread_mutex_unlock(&c->lock);
        if (empty) nanosleep(&(struct timespec){0, 1000000}, NULL);
        cluster__poll(m, 0);
    }
    if (wait) {
        /* From here on nothing is applied: the hubs the engine releases to are going away. */
        fail_all(c, -EIO);
        c->closing = 1;
    }
    pthread_mutex_lock(&c->lock);
    struct in *in = c->ihead;
    c->ihead = c->itail = NULL;
    pthread_mutex_unlock(&c->lock);
    while (in) {
        struct in *next = in->next;
        if (!c->closing) on_in(m, in);
        free(in);
        in = next;
    }
}

void cluster__free(struct smem *m)
{
    struct cluster *c = m->c;
    if (!c) return;
    while (c->len) { /* none after poll(s, 1), which the engine runs first */
        struct cpend p = pq_pop(c);
        free(p.e);
        hint_unref(p.h);
    }
    for (struct in *in = c->ihead, *next; in; in = next) {
        next = in->next;
        free(in);
    }
    free(c->pq);
    for (struct epoch_str *e = c->epochs, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
    m->c = NULL;
}

/* ---- owner's side ------------------------------------------------------------------------- */

struct store *store_cluster_new(const struct store_config *cfg, const struct cluster_link *link,
                                uint64_t node, uint64_t k0, uint64_t k1)
{
    struct smem *m = store__smem_new(cfg, 0, k0, k1);
    if (!m) return NULL;
    struct cluster *c = calloc(1, sizeof(*c));
    if (!c || pthread_mutex_init(&c->lock, NULL) != 0) {
        free(c);
        store__free(&m->base);
        return NULL;
    }
    c->link = *link;
    c->node = node;
    m->c = c;
    m->base.epoch[0] = '\0'; /* Redis's, at the first synchronisation */
    store__cluster_ops(m);
    return &m->base;
}

int cluster_ready(const struct store *s)
{
    return ((const struct smem *)s)->c->ready;
}

void cluster_stats(const struct store *s, struct cluster_stats *out)
{
    *out = ((const struct smem *)s)->c->st;
}
