/* hub: fan-out and the per-connection side of the delivery contract. A released hint (from the
 * engine, sealed) goes to the topic's exact subscribers here and to the wildcard subscriptions
 * whose pattern matches, each connection at most once per publish. Queues hold references; the
 * payload was encoded once for the whole process. Connections with output are put on the dirty
 * list and the event loop calls hub_flush() once per turn ("before sleep", as Redis does), so a
 * burst of publishes read in one go leaves as one batched write per subscriber.
 *
 * Delivery contract (docs/guarantees.md): per connection and topic, hints arrive in seq order
 * with no duplicate; a hint without "n" is exactly the next seq; a coalesced hint ("n" > 1)
 * stands for every seq up to its own; a reset stands for everything up to its seq. A congested
 * connection coalesces instead of growing. A subscribe with a position gets one hint for each
 * changed topic, its newest seq standing for everything missed (or, when asked, the missed hints
 * replayed one by one from the store, bounded above by the position it confirmed), or a reset;
 * the subscription goes live at that position within the same call; the engine hands every hub
 * a topic's hints in seq order, so hints at or below the live position are dropped for it and
 * newer ones delivered: nothing
 * falls between replay and live, nothing is delivered twice. */
#include "hub.h"

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"
#include "sub.h"

#define CLOSE_SLOW 4001
/* Freed subscription memory past which the hub hands free pages back to the OS (malloc_trim):
 * glibc keeps what a worker thread's arena freed, so 8 hostile connections' 180 MB of pattern
 * nodes stayed resident after they closed (#14). Trimming walks the arenas: not per free. */
#define TRIM_BYTES (4u << 20)

void hub_config_default(struct hub_config *cfg)
{
    cfg->max_subs = 1024;
    cfg->max_sub_bytes = 1u << 20;
    cfg->replay_rate = 256u << 10;
    cfg->sub_rate = 100;
    cfg->msg_rate = 100;
    cfg->max_pattern_segments = 16;
    cfg->max_pattern_stars = 3;
    cfg->max_queue = 1024;
}

int hub_init(struct hub *hub, const struct hub_config *cfg, struct engine *engine)
{
    memset(hub, 0, sizeof(*hub));
    hub->cfg = *cfg;
    if (hub->cfg.max_queue < 8) hub->cfg.max_queue = 8;
    if (hub->cfg.max_subs < 1) hub->cfg.max_subs = 1;
    hub->engine = engine;
    if (pthread_mutex_init(&hub->in_lock, NULL) != 0) return -ENOMEM;
    if (table_init(&hub->topics, engine->topics.k0, engine->topics.k1) < 0) {
        pthread_mutex_destroy(&hub->in_lock);
        return -ENOMEM;
    }
    if (!(hub->match = match_new())) {
        table_free(&hub->topics);
        pthread_mutex_destroy(&hub->in_lock);
        return -ENOMEM;
    }
    hub->owner = pthread_self();
    hub->owned = 1;
    engine_lock(engine);
    struct engine_sink s = {.deliver = hub_deliver, .epoch = hub_epoch, .arg = hub};
    int rc = engine_add_sink(engine, &s);
    engine_unlock(engine);
    if (rc < 0) {
        hub_close(hub);
        return rc;
    }
    return 0;
}

static void free_htopic(void *arg, struct tnode *n)
{
    struct hub *hub = arg;
    struct htopic *ht = (struct htopic *)n;
    atomic_fetch_sub_explicit(&ht->et->subscribers, ht->nsubs, memory_order_relaxed);
    while (ht->subs) {
        struct sub *s = ht->subs;
        ht->subs = s->tnext;
        free(s);
    }
    engine_release(hub->engine, ht->et);
    free(ht);
}

void hub_close(struct hub *hub)
{
    if (hub->match) match_free(hub->match);
    hub->match = NULL;
    engine_lock(hub->engine);
    table_drain(&hub->topics, free_htopic, hub);
    engine_unlock(hub->engine);
    table_free(&hub->topics);
    wire_buf_free(&hub->tmp);
    for (uint32_t i = 0; i < hub->in_len; i++)
        hint_unref(hub->in[i].h);
    free(hub->in);
    free(hub->in_spare);
    hub->in = hub->in_spare = NULL;
    hub->in_len = hub->in_cap = hub->spare_cap = 0;
    pthread_mutex_destroy(&hub->in_lock);
}

void hub_own(struct hub *hub, void (*wake)(void *arg), void *arg)
{
    pthread_mutex_lock(&hub->in_lock);
    hub->owner = pthread_self();
    hub->owned = 1;
    hub->wake = wake;
    hub->wake_arg = arg;
    pthread_mutex_unlock(&hub->in_lock);
}

uint64_t hub_pattern_mark(struct hub *hub)
{
    engine_lock(hub->engine);
    hub_drain(hub);
    uint64_t g = engine_safe_gpos(hub->engine);
    engine_unlock(hub->engine);
    return g;
}

int hub_has_pattern(const struct conn *c)
{
    for (const struct sub *s = c->subs; s; s = s->cnext)
        if (s->pat) return 1;
    return 0;
}

struct followers {
    uint64_t stamp;
    uint32_t n;
};

static void count_follower(void *subp, void *arg)
{
    struct conn *c = ((struct sub *)subp)->conn;
    struct followers *f = arg;
    if (c->stamp == f->stamp || c->closing) return;
    c->stamp = f->stamp; /* a fresh stamp: fan-out compares stamps for equality only */
    f->n++;
}

uint32_t hub_pattern_followers(struct hub *hub, const char *topic, size_t len)
{
    struct followers f = {++hub->stamp, 0};
    if (match_count(hub->match)) match_each(hub->match, topic, len, count_follower, &f);
    return f.n;
}

void hub_on_job(struct hub *hub, hub_job_fn *fn, void *arg)
{
    hub->job_fn = fn;
    hub->job_arg = arg;
}

void hub_post(struct hub *hub, struct hub_job *j)
{
    hub_post_fn(hub, j, NULL);
}

static void epoch_job(void *arg, struct hub_job *j)
{
    struct hub *hub = (struct hub *)(void *)((char *)j - offsetof(struct hub, epoch_job));
    (void)arg;
    atomic_store_explicit(&hub->epoch_posted, 0, memory_order_relaxed);
    for (struct conn *c = hub->conns; c; c = c->next)
        if (c->role == CONN_SUB && !c->closing)
            hub_conn_close(hub, c, 1012, "the epoch changed: reconnect and resume");
}

void hub_epoch(void *arg)
{
    struct hub *hub = arg;
    if (!atomic_exchange_explicit(&hub->epoch_posted, 1, memory_order_relaxed))
        hub_post_fn(hub, &hub->epoch_job, epoch_job);
}

void hub_post_fn(struct hub *hub, struct hub_job *j, hub_job_fn *fn)
{
    j->next = NULL;
    j->fn = fn;
    pthread_mutex_lock(&hub->in_lock);
    int wake = !hub->jobs && hub->in_len == 0 &&
               !(hub->owned && pthread_equal(hub->owner, pthread_self()));
    if (hub->jobs_tail)
        hub->jobs_tail->next = j;
    else
        hub->jobs = j;
    hub->jobs_tail = j;
    if (wake && hub->wake) hub->wake(hub->wake_arg);
    pthread_mutex_unlock(&hub->in_lock);
}

void hub_conn_open(struct hub *hub, struct conn *c, enum conn_role role, const struct conn_ops *ops,
                   void *io)
{
    c->ops = ops;
    c->io = io;
    c->role = role;
    c->qtotal = &hub->st.queued;
    c->bag = &hub->bag;
    c->name_len = (uint8_t)snprintf(c->name, sizeof(c->name), "%llx",
                                    (unsigned long long)engine_conn_id(hub->engine));
    c->next = hub->conns;
    if (hub->conns) hub->conns->prev = c;
    hub->conns = c;
    stat_add(&hub->st.conns[role], 1);
    stat_add(&hub->st.accepted[role], 1);
}

static void dirty_remove(struct hub *hub, struct conn *c)
{
    if (!c->dirty) return;
    if (c->dirty_prev)
        c->dirty_prev->dirty_next = c->dirty_next;
    else
        hub->dirty = c->dirty_next;
    if (c->dirty_next) c->dirty_next->dirty_prev = c->dirty_prev;
    c->dirty_prev = c->dirty_next = NULL;
    c->dirty = 0;
}

static void dirty_add(struct hub *hub, struct conn *c)
{
    if (c->dirty) return;
    c->dirty = 1;
    c->dirty_prev = NULL;
    c->dirty_next = hub->dirty;
    if (hub->dirty) hub->dirty->dirty_prev = c;
    hub->dirty = c;
}

/* glibc's chunk for a request of n bytes: rounded to 16 with its header. */
static uint64_t chunk(uint64_t n)
{
    return (n + 8 + 15) & ~(uint64_t)15;
}

/* What one subscription costs the broker at most, in bytes, as allocated: the struct sub; for an
 * exact topic the hub's and the engine's topic records with the name twice and their table
 * slots (charged even when shared: what this subscription may add); for a pattern its copy and
 * its path in the match trie (match_cost: per segment, not per byte). */
static uint64_t sub_cost(int pattern, struct wire_str t)
{
    uint64_t c = chunk(sizeof(struct sub));
    if (pattern) return c + chunk(t.len + 1) + match_cost(t.p, t.len);
    return c + chunk(sizeof(struct htopic) + t.len + 1) + chunk(sizeof(struct etopic) + t.len + 1) +
           4 * sizeof(void *);
}

/* The last exact subscriber of a topic on this hub lets go of it (and of the engine's topic). */
static void drop_sub(struct hub *hub, struct conn *c, struct sub *s)
{
    struct htopic *ht = s->topic;
    c->lim.sub_bytes -= s->cost;
    metrics_sub(&hub->metrics, METRICS_SUB_BYTES, s->cost);
    hub->freed += s->cost;
    if (s->pat) match_remove(hub->match, s->pat, s->patlen, s);
    if (ht) atomic_fetch_sub_explicit(&ht->et->subscribers, 1, memory_order_relaxed);
    sub_remove(s, &c->subs);
    c->nsubs--;
    stat_sub(&hub->st.subs, 1);
    if (ht && ht->nsubs == 0) {
        engine_lock(hub->engine);
        engine_release(hub->engine, ht->et);
        engine_unlock(hub->engine);
        htopic_free(&hub->topics, ht);
    }
}

/* Give freed memory back to the OS once enough subscription memory was freed (TRIM_BYTES). */
static void maybe_trim(struct hub *hub)
{
    if (hub->freed < TRIM_BYTES) return;
    hub->freed = 0;
    malloc_trim(0);
    metrics_add(&hub->metrics, METRICS_MALLOC_TRIMS, 1);
}

void hub_conn_gone(struct hub *hub, struct conn *c)
{
    if (!c->ops) return; /* never opened */
    while (c->subs)
        drop_sub(hub, c, c->subs);
    maybe_trim(hub);
    dirty_remove(hub, c);
    conn_queue_free(c);
    if (c->prev)
        c->prev->next = c->next;
    else if (hub->conns == c)
        hub->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    stat_sub(&hub->st.conns[c->role], 1);
    c->ops = NULL;
}

void hub_conn_close(struct hub *hub, struct conn *c, int code, const char *reason)
{
    if (c->closing) return;
    c->closing = 1;
    dirty_remove(hub, c);
    conn_queue_free(c);
    c->ops->close(c, code, reason);
}

/* Queue a control message (taking the caller's reference). A client that does not read the
 * answers to its own requests is closed once max_queue of them wait. */
static void push_msg(struct hub *hub, struct conn *c, struct msg *m)
{
    if (c->closing) {
        msg_unref(m);
        return;
    }
    if (c->qctl >= hub->cfg.max_queue) {
        msg_unref(m);
        stat_add(&hub->st.slow_closes, 1);
        hub_conn_close(hub, c, CLOSE_SLOW, "slow consumer: replies not read");
        return;
    }
    if (conn_push_msg(c, m) < 0) {
        hub_conn_close(hub, c, 1011, "out of memory");
        return;
    }
    dirty_add(hub, c);
}

void hub_push_bytes(struct hub *hub, struct conn *c, const uint8_t *p, size_t len)
{
    if (c->closing) return;
    struct msg *m = msg_copy(p, len);
    if (!m) {
        hub_conn_close(hub, c, 1011, "out of memory");
        return;
    }
    push_msg(hub, c, m);
}

/* Queue the payload in hub->tmp as a message of its own for c. */
static void push_tmp(struct hub *hub, struct conn *c)
{
    hub_push_bytes(hub, c, hub->tmp.data, hub->tmp.len);
}

void hub_conn_reply(struct hub *hub, struct conn *c)
{
    if (!c->closing && c->pub && c->pub->out.len) dirty_add(hub, c);
}

void hub_error(struct hub *hub, struct conn *c, int has_id, uint64_t id, struct wire_str topic,
               int code, const char *msg)
{
    stat_add(&hub->st.errors, 1);
    wire_buf_reset(&hub->tmp);
    if (sub_encode_error(c->fmt, &hub->tmp, has_id, id, topic, code, msg) == 0) push_tmp(hub, c);
}

/* Queue hint h for c. A connection whose socket keeps up never coalesces (each hint goes out as
 * itself); once the transport reports congestion, or max_queue entries wait even after a direct
 * flush, hints of a topic already waiting merge into that entry. */
static void push_hint(struct hub *hub, struct conn *c, struct hint *h, uint32_t count, int own,
                      uint32_t *budget)
{
    uint32_t max = hub->cfg.max_queue;
    if (c->closing) return;
    if (!c->congested && c->qlen >= max) {
        /* A burst read in one go can fill a healthy queue before the loop's flush pass. */
        dirty_remove(hub, c);
        c->ops->flush(c);
        if (c->closing) return;
    }
    int coalesce = c->congested || c->qlen >= max;
    int rc = conn_push_hint_budget(c, h, count, own, coalesce, budget);
    if (rc < 0) {
        hub_conn_close(hub, c, 1011, "out of memory");
        return;
    }
    if (rc == 1) stat_add(&hub->st.coalesced, 1);
    if (c->qlen > max + hub->cfg.max_subs) {
        /* Only wildcards over more topics than max_subs get here: one entry per topic. */
        stat_add(&hub->st.slow_closes, 1);
        hub_conn_close(hub, c, CLOSE_SLOW, "slow consumer: outbound queue full");
        return;
    }
    dirty_add(hub, c);
}

void hub_flush(struct hub *hub)
{
    struct conn *c;
    /* Every queue written in this pass drops its references to the same few hints: gather the
     * releases and apply one atomic per hint at the end. */
    hub->bag.active = 1;
    while ((c = hub->dirty)) {
        dirty_remove(hub, c);
        if (!c->closing && (c->qlen || (c->pub && c->pub->out.len))) c->ops->flush(c);
    }
    hub->bag.active = 0;
    hintbag_apply(&hub->bag);
}

void hub_close_all(struct hub *hub, int code, const char *reason)
{
    for (struct conn *c = hub->conns; c; c = c->next)
        hub_conn_close(hub, c, code, reason);
}

void hub_finish_pubs(struct hub *hub)
{
    struct conn *next;
    for (struct conn *c = hub->conns; c; c = next) {
        next = c->next; /* a finish may close c at once */
        if (c->role != CONN_PUB || c->closing) continue;
        if (c->ops->finish)
            c->ops->finish(c);
        else
            hub_conn_close(hub, c, 1001, "broker shutting down");
    }
}

/* ---- fan-out ----------------------------------------------------------------------------- */

struct fan {
    struct hub *hub;
    struct hint *h;
    uint32_t count;
    struct wire_str origin; /* len 0 = none */
    int skip_origin;
    uint64_t stamp;
    uint32_t budget; /* references to h taken for the exact subscribers, not yet queued */
};

/* count: how many seqs the hint advances c's position by ("n", docs/protocol.md §hint). */
static void deliver(struct fan *f, struct conn *c, uint32_t count)
{
    int own = f->origin.len && f->origin.len == c->name_len &&
              memcmp(f->origin.p, c->name, f->origin.len) == 0;
    /* f->origin is the newest publish's. A hint standing for several publishes for c is no
     * one's own; one standing for that publish alone (also a window hint for a connection that
     * had the window's other publishes) keeps its origin rules. */
    if (count > 1) own = 0;
    if (own && f->skip_origin) return;
    stat_add(&f->hub->st.deliveries, 1);
    push_hint(f->hub, c, f->h, count, own, &f->budget);
}

static void on_match(void *subp, void *arg)
{
    struct sub *s = subp;
    struct fan *f = arg;
    struct conn *c = s->conn;
    if (c->stamp == f->stamp || c->closing) return;
    /* A pattern stands for the publishes after it went live. A window's held publishes are all
     * newer or all older than it (engine_pattern_live), so the newest one decides: older, and
     * the subscription (a fresh start) already includes them — no hint. Another pattern of c
     * may still qualify, so the stamp is not taken. The hint's count then is exactly what c was
     * not given: every publish it stands for is newer than the pattern. */
    if (f->h->ordinal <= s->live) return;
    c->stamp = f->stamp;
    deliver(f, c, f->count);
}

static void fan_out(struct hub *hub, struct hint *h, uint32_t count, struct wire_str origin,
                    int skip_origin)
{
    struct fan f = {hub, h, count, origin, skip_origin, ++hub->stamp, 0};
    /* Exact subscriptions first: they carry the connection's position for the topic, and a
     * connection that also matches through a wildcard must not get the hint twice. */
    struct htopic *ht = htopic_find(&hub->topics, h->topic, h->topic_len, h->thash);
    if (ht && ht->nsubs > 1) {
        /* One atomic add for every queue of this walk instead of one per subscriber (the
         * increments were a quarter of a broadcast's cost); what is left is given back below.
         * Taken before the walk, so a queue freed during it never drops a reference not yet
         * counted. */
        f.budget = ht->nsubs;
        atomic_fetch_add_explicit(&h->refs, f.budget, memory_order_relaxed);
    }
    for (struct sub *s = ht ? ht->subs : NULL; s; s = s->tnext) {
        struct conn *c = s->conn;
        c->stamp = f.stamp;
        if (c->closing || h->seq <= s->since) continue;
        /* "n" counts from this connection's position, not the publishes a window held: a sub
         * made during the window was confirmed at a seq past some of them. */
        deliver(&f, c, (uint32_t)(h->seq - s->since));
        s->since = h->seq; /* what this connection has been given (or skipped as its own) */
    }
    /* The inbox still holds its own reference: giving back the unused ones never frees h. */
    if (f.budget) atomic_fetch_sub_explicit(&h->refs, f.budget, memory_order_relaxed);
    f.budget = 0;
    if (match_count(hub->match)) match_each(hub->match, h->topic, h->topic_len, on_match, &f);
}

void hub_deliver(void *arg, struct hint *h, uint32_t count, struct wire_str origin, int skip_origin)
{
    struct hub *hub = arg;
    int wake = 0;
    pthread_mutex_lock(&hub->in_lock);
    if (hub->in_len == hub->in_cap) {
        uint32_t ncap = hub->in_cap ? hub->in_cap * 2 : 256;
        struct hub_in *n = realloc(hub->in, sizeof(*n) * ncap);
        if (!n) { /* cannot queue: the hint is lost for this hub, say so in its errors */
            /* Counted under the lock and added to st.errors by the hub's thread: a stat has
             * one writer (stat.h), and this runs on whichever thread published. */
            hub->in_lost++;
            pthread_mutex_unlock(&hub->in_lock);
            return;
        }
        hub->in = n;
        hub->in_cap = ncap;
    }
    struct hub_in *e = &hub->in[hub->in_len++];
    e->h = hint_ref(h);
    e->count = count;
    e->skip_origin = (uint8_t)skip_origin;
    e->origin_len = origin.len < sizeof(e->origin) ? (uint8_t)origin.len : 0;
    if (e->origin_len) memcpy(e->origin, origin.p, e->origin_len);
    wake = hub->in_len == 1 && !hub->jobs &&
           !(hub->owned && pthread_equal(hub->owner, pthread_self()));
    /* Woken under the lock: hub_own(NULL) then guarantees no wake reaches a closed handle. */
    if (wake && hub->wake) hub->wake(hub->wake_arg);
    pthread_mutex_unlock(&hub->in_lock);
}

void hub_drain(struct hub *hub)
{
    for (;;) {
        pthread_mutex_lock(&hub->in_lock);
        struct hub_in *batch = hub->in;
        uint32_t n = hub->in_len, cap = hub->in_cap;
        hub->in = hub->in_spare;
        hub->in_cap = hub->spare_cap;
        hub->in_len = 0;
        uint32_t lost = hub->in_lost;
        hub->in_lost = 0;
        struct hub_job *jobs = hub->jobs;
        hub->jobs = hub->jobs_tail = NULL;
        pthread_mutex_unlock(&hub->in_lock);
        if (lost) stat_add(&hub->st.errors, lost);
        for (uint32_t i = 0; i < n; i++) {
            struct hub_in *e = &batch[i];
            struct wire_str origin = {e->origin, e->origin_len};
            fan_out(hub, e->h, e->count, origin, e->skip_origin);
            hint_unref(e->h);
        }
        hub->in_spare = batch; /* only this thread swaps: the spare is ours between swaps */
        hub->spare_cap = cap;
        int had_jobs = jobs != NULL;
        while (jobs) {
            struct hub_job *j = jobs;
            jobs = j->next;
            (j->fn ? j->fn : hub->job_fn)(hub->job_arg, j);
        }
        if (n == 0 && !had_jobs) return;
    }
}

/* ---- subscriptions ----------------------------------------------------------------------- */

static void send_reset(struct hub *hub, struct conn *c, struct wire_str t, uint64_t seq,
                       const char *reason)
{
    stat_add(&hub->st.resets, 1);
    wire_buf_reset(&hub->tmp);
    if (sub_encode_reset(c->fmt, &hub->tmp, t, seq, reason) == 0) push_tmp(hub, c);
}

static void send_subscribed(struct hub *hub, struct conn *c, const struct hub_sub *r, uint64_t cur)
{
    wire_buf_reset(&hub->tmp);
    if (sub_encode_subscribed(c->fmt, &hub->tmp, r->id, r->topic, cur) == 0) push_tmp(hub, c);
}

/* What a hint queued by a resume costs to send: its encoded payload in c's format (a frame
 * header aside), or an estimate when it was not sealed. Summed into hub->replay_bytes. */
static void count_replay(struct hub *hub, const struct conn *c, const struct hint *h)
{
    const struct msg *m = hint_payload(h, c->fmt);
    hub->replay_bytes += m ? m->len : (uint64_t)h->data_len + h->topic_len + 48;
}

struct replay {
    struct hub *hub;
    struct conn *c;
    uint64_t prev; /* the seq the client has before the next replayed hint */
};

static void on_replay(void *arg, struct hint *h)
{
    struct replay *r = arg;
    stat_add(&r->hub->st.replayed, 1);
    count_replay(r->hub, r->c, h);
    /* 1 but for a cluster topic's first hint after a position below its record (cluster.c) */
    uint64_t n = h->seq - r->prev;
    push_hint(r->hub, r->c, h, n > 1 && n <= UINT32_MAX ? (uint32_t)n : 1, 0, NULL);
    r->prev = h->seq;
}

/* The topic changed n times since the client's position: one hint, the newest seq standing for
 * all n (with the newest data when history still holds it). Costs O(1) whatever n is. */
static void catch_up(struct hub *hub, struct conn *c, struct etopic *et, uint32_t n)
{
    struct hint *h = engine_newest(hub->engine, et);
    if (!h) {
        hub_conn_close(hub, c, 1011, "out of memory");
        return;
    }
    stat_add(&hub->st.caught_up, 1);
    count_replay(hub, c, h);
    push_hint(hub, c, h, n, 0, NULL);
    hint_unref(h);
}

/* A wildcard resume: one catch-up hint per topic under the pattern changed since the position. */
struct pcatch {
    struct hub *hub;
    struct conn *c;
    const struct sub *s; /* the pattern being resumed */
    int oom;
};

static void on_change(void *arg, const struct store_change *ch)
{
    struct pcatch *pc = arg;
    struct hub *hub = pc->hub;
    struct conn *c = pc->c;
    if (pc->oom || match_one(pc->s->pat, pc->s->patlen, ch->name, ch->len) != 1) return;
    /* Already given to this connection: by an exact subscription (confirmed at a seq at least
     * this one), or by another pattern live or caught up since before this change. */
    struct htopic *ht = htopic_find(&hub->topics, ch->name, ch->len, ch->hash);
    if (ht && sub_of(c->subs, ht)) return;
    for (const struct sub *o = c->subs; o; o = o->cnext)
        if (o != pc->s && o->pat && o->covered < ch->gpos &&
            match_one(o->pat, o->patlen, ch->name, ch->len) == 1)
            return;
    struct hint *h = engine_change_hint(hub->engine, ch);
    if (!h) {
        pc->oom = 1;
        return;
    }
    /* The connection knew nothing of the topic since the position: n counts every change the
     * broker remembers of it (from its base), the newest data when history holds it. */
    uint64_t n = ch->seq - ch->base;
    stat_add(&hub->st.caught_up, 1);
    count_replay(hub, c, h);
    push_hint(hub, c, h, n == 0 ? 1 : n > UINT32_MAX ? UINT32_MAX : (uint32_t)n, 0, NULL);
    hint_unref(h);
}

static void pattern_catch_up(struct hub *hub, struct conn *c, struct sub *s, struct wire_str t,
                             uint64_t pos, uint64_t cur)
{
    struct engine *e = hub->engine;
    const char *why = engine_gpos_check(e, pos);
    if (why) {
        send_reset(hub, c, t, cur, why);
        return;
    }
    struct pcatch pc = {hub, c, s, 0};
    engine_changed(e, pos, on_change, &pc);
    s->covered = pos;
    if (pc.oom) hub_conn_close(hub, c, 1011, "out of memory");
}

/* 1 = valid pattern, 0 = plain topic, -1 = invalid. Patterns obey the topic rules, with '*'
 * allowed only as a whole segment or a final "**". */
static int classify(const struct hub *hub, struct wire_str t)
{
    const struct wire_limits *lim = &hub->engine->cfg.lim;
    char buf[WIRE_TOPIC_LEN_MAX];
    if (t.len == 0 || t.len > lim->max_topic || t.len > sizeof(buf)) return -1;
    int kind = match_kind(t.p, t.len);
    if (kind < 0) return -1;
    memcpy(buf, t.p, t.len);
    for (uint32_t i = 0; i < t.len; i++)
        if (buf[i] == '*') buf[i] = 'x';
    return wire_topic_check(buf, t.len, lim) < 0 ? -1 : kind;
}

/* Whether c already follows topic t through a pattern that has brought it something of t: a
 * matching pattern of c went live before t's last publish, which c has then been queued (the
 * inbox was drained under the engine lock) or which a coalescing window holds for it. Then *pos
 * is the last seq of t c has been given: t's seq less what a window still holds (a window's
 * held publishes are all newer than the pattern, engine_pattern_live). 0 when no pattern of c
 * matches t or t had no publish since the earliest matching one went live: c has nothing of t
 * yet. A matching pattern's catch-up (wildcard resume) brought t too when t changed after the
 * resume position: then c was given t's seq. Linear in c's subscriptions (bounded by max_subs);
 * only exact subs of new topics pay it. Engine lock held. */
static int pattern_position(const struct hub *hub, const struct conn *c, const struct htopic *ht,
                            uint64_t *pos)
{
    uint64_t live = UINT64_MAX, covered = UINT64_MAX;
    for (const struct sub *s = c->subs; s; s = s->cnext) {
        if (!s->pat || match_one(s->pat, s->patlen, ht->name, ht->node.len) != 1) continue;
        if (s->live < live) live = s->live;
        if (s->covered < covered) covered = s->covered;
    }
    if (live == UINT64_MAX) return 0;
    /* Brought live (a publish after the pattern went live), or by the pattern's catch-up (a
     * change after its resume position). */
    if (ht->et->ordinal > live) {
        *pos = engine_released(hub->engine, ht->et);
        return 1;
    }
    if (engine_last_gpos(hub->engine, ht->et) > covered) {
        /* The catch-up's hint carried the seq of then, which is still the topic's: it has not
         * been published since (what a window still holds included). */
        *pos = engine_seq(hub->engine, ht->et);
        return 1;
    }
    return 0;
}

/* A request over a rate: counted, and a connection a whole bucket in debt is closed (4008). */
static void rate_refused(struct hub *hub, struct conn *c, struct limit_bucket *b, uint64_t burst,
                         enum metrics_slot slot)
{
    metrics_add(&hub->metrics, slot, 1);
    if (limit_overdrawn(b, burst)) {
        metrics_add(&hub->metrics, METRICS_LIMIT_RATE_CLOSES, 1);
        hub_conn_close(hub, c, LIMIT_CLOSE_RATE, "rate limit: too many requests");
    }
}

int hub_limit_message(struct hub *hub, struct conn *c)
{
    uint64_t burst = 2 * (uint64_t)hub->cfg.msg_rate;
    if (c->closing) return -1;
    if (limit_take(&c->lim.msgs, hub->cfg.msg_rate, burst, 1, limit_now_ms())) return 0;
    rate_refused(hub, c, &c->lim.msgs, burst, METRICS_LIMIT_MSG_RATE);
    if (!c->closing)
        hub_error(hub, c, 0, 0, (struct wire_str){NULL, 0}, WIRE_C_RATE_LIMITED,
                  "messages over --msg-rate: dropped unread");
    return -1;
}

/* A publish walks every trie path its topic matches: one per way the registered patterns put
 * '*' in its segments. Bounding a pattern's segments and stars bounds that walk for any topic,
 * whatever patterns all connections hold (16k patterns matching one topic made a publish cost
 * 11x, #14); "**" adds no path (its subs hang on the nodes already on the walk). */
static int pattern_shape_ok(const struct hub *hub, struct wire_str t)
{
    uint32_t segs = 1, stars = 0;
    for (uint32_t i = 0; i < t.len; i++) {
        if (t.p[i] == ':') segs++;
        /* a '*' segment: a lone '*' between separators (match_kind vetted the rest) */
        if (t.p[i] == '*' && (i == 0 || t.p[i - 1] == ':') && (i + 1 == t.len || t.p[i + 1] == ':'))
            stars++;
    }
    return (!hub->cfg.max_pattern_segments || segs <= hub->cfg.max_pattern_segments) &&
           (!hub->cfg.max_pattern_stars || stars <= hub->cfg.max_pattern_stars);
}

static int epoch_ok(const struct hub *hub, struct wire_str epoch)
{
    const char *mine = engine_epoch(hub->engine);
    return epoch.len == strlen(mine) && memcmp(epoch.p, mine, epoch.len) == 0;
}

/* The hub's topic for name, created (holding the engine's topic) when absent. */
static int get_htopic(struct hub *hub, struct wire_str t, struct htopic **out)
{
    uint64_t hash = engine_hash(hub->engine, t.p, t.len);
    struct htopic *ht = htopic_find(&hub->topics, t.p, t.len, hash);
    if (!ht) {
        struct etopic *et; /* engine lock held by the caller */
        int rc = engine_hold(hub->engine, t.p, t.len, hash, &et);
        if (rc < 0) return rc;
        if (!(ht = htopic_new(&hub->topics, t.p, t.len, hash, et))) {
            engine_release(hub->engine, et);
            return -ENOMEM;
        }
    }
    *out = ht;
    return 0;
}

void hub_subscribe(struct hub *hub, struct conn *c, const struct hub_sub *r)
{
    struct wire_str t = r->topic;
    if (c->closing) return;
    int kind = classify(hub, t);
    if (kind < 0) {
        hub_error(hub, c, r->has_id, r->id, t, WIRE_C_BAD_TOPIC,
                  "topic empty, too long, bad UTF-8, holds a space or control char, or uses '*' "
                  "other than as a whole segment or a final '**'");
        return;
    }
    if (kind && !pattern_shape_ok(hub, t)) {
        metrics_add(&hub->metrics, METRICS_LIMIT_PATTERN, 1);
        hub_error(hub, c, r->has_id, r->id, t, WIRE_C_BAD_TOPIC,
                  "pattern has more segments than --max-pattern-segments or more '*' than "
                  "--max-pattern-stars");
        return;
    }
    struct htopic *ht =
        kind ? NULL : htopic_find(&hub->topics, t.p, t.len, engine_hash(hub->engine, t.p, t.len));
    struct sub *s = kind ? sub_pattern(c->subs, t.p, t.len) : (ht ? sub_of(c->subs, ht) : NULL);
    if (s) {
        /* Already subscribed: confirm again with what this connection has been given so far —
         * not the topic's seq, which may include hints a window still holds for it. */
        send_subscribed(hub, c, r, ht ? s->since : 0);
        return;
    }
    if (c->nsubs >= hub->cfg.max_subs) {
        hub_error(hub, c, r->has_id, r->id, t, WIRE_C_TOO_MANY_SUBS,
                  "subscriptions per connection over max_subs");
        return;
    }
    /* A resume may queue up to a topic's history (replay all) or a hint per changed topic under
     * a pattern: the connection's replay bucket must not be empty. Refused, not deferred: the
     * client may resume again later (docs/operations.md §Abuse limits). */
    uint64_t now = limit_now_ms();
    if (r->has_pos &&
        !limit_take(&c->lim.replay, hub->cfg.replay_rate, hub->cfg.replay_rate, 0, now)) {
        metrics_add(&hub->metrics, METRICS_LIMIT_REPLAY, 1);
        hub_error(hub, c, r->has_id, r->id, t, WIRE_C_OVER_BUDGET,
                  "replay budget of this connection spent (--replay-rate): resume later");
        return;
    }
    if (!limit_take(&c->lim.subs, hub->cfg.sub_rate, hub->cfg.max_subs, 1, now)) {
        rate_refused(hub, c, &c->lim.subs, hub->cfg.max_subs, METRICS_LIMIT_SUB_RATE);
        if (!c->closing)
            hub_error(hub, c, r->has_id, r->id, t, WIRE_C_RATE_LIMITED,
                      "subscriptions over --sub-rate: try again later");
        return;
    }
    uint64_t cost = sub_cost(kind, t);
    if (hub->cfg.max_sub_bytes && c->lim.sub_bytes + cost > hub->cfg.max_sub_bytes) {
        metrics_add(&hub->metrics, METRICS_LIMIT_SUB_BYTES, 1);
        hub_error(hub, c, r->has_id, r->id, t, WIRE_C_OVER_BUDGET,
                  "subscription memory of this connection over --max-sub-bytes (patterns cost "
                  "per segment)");
        return;
    }
    /* Under the engine lock from here: the position confirmed, the replay bounded by it and the
     * live point are one step for every other thread's publishes (docs/architecture.md). */
    struct engine *e = hub->engine;
    int rc = 0;
    engine_lock(e);
    /* Every hint released before this moment reaches this hub's connections first, so the
     * position below is what they have been given, whichever thread published. */
    hub_drain(hub);
    if (c->closing) {
        engine_unlock(e);
        return;
    }
    if (kind) {
        s = sub_add_pattern(t.p, t.len, c, &c->subs);
        if (s && match_add(hub->match, t.p, t.len, s) < 0) {
            sub_remove(s, &c->subs);
            s = NULL;
        }
    } else if ((rc = get_htopic(hub, t, &ht)) == 0) {
        s = sub_add(ht, c, &c->subs);
        if (!s && ht->nsubs == 0) {
            engine_release(e, ht->et);
            htopic_free(&hub->topics, ht);
        }
    }
    if (s && ht) atomic_fetch_add_explicit(&ht->et->subscribers, 1, memory_order_relaxed);
    if (!s) {
        engine_unlock(e);
        if (rc == -ENOSPC)
            hub_error(hub, c, r->has_id, r->id, t, WIRE_C_LIMIT,
                      "the broker knows too many topics (--max-topics-total)");
        else
            hub_error(hub, c, r->has_id, r->id, t, WIRE_C_INTERNAL, "out of memory");
        return;
    }
    c->nsubs++;
    stat_add(&hub->st.subs, 1);
    s->cost = (uint32_t)cost;
    c->lim.sub_bytes += cost;
    metrics_add(&hub->metrics, METRICS_SUB_BYTES, cost);
    uint64_t given;
    if (!kind && pattern_position(hub, c, ht, &given)) {
        /* The connection already follows the topic through a pattern that brought it hints of
         * it: the exact sub takes over from there, as a re-subscribe does — confirmed at what
         * the connection was given, no replay (it would repeat those hints, out of order) and
         * no reset, whatever the resume position; what a window holds follows as usual. */
        s->since = given;
        send_subscribed(hub, c, r, given);
        engine_unlock(e);
        return;
    }
    /* A pattern's position is global: what every hub has been released (windows excepted). */
    uint64_t cur = ht ? engine_seq(e, ht->et) : engine_safe_gpos(e);
    /* A cluster node may lag the channel by a moment behind the node the client came from: a
     * position ahead in this epoch is the client's, confirmed as it is, and the hints up to it
     * are not sent again (a single broker has no such lag: there it is a reset). */
    if (!kind && r->has_pos && r->pos > cur && engine_lags(e) && epoch_ok(hub, r->epoch)) {
        s->since = r->pos;
        send_subscribed(hub, c, r, r->pos);
        engine_unlock(e);
        return;
    }
    if (kind) s->covered = e->store->st.gpos; /* its live hints: every change after this */
    send_subscribed(hub, c, r, cur);
    hub->replay_bytes = 0;
    if (r->has_pos) {
        uint64_t pos = r->pos;
        if (!epoch_ok(hub, r->epoch))
            send_reset(hub, c, t, cur, "epoch");
        else if (kind)
            pattern_catch_up(hub, c, s, t, pos, cur);
        else if (pos > cur)
            send_reset(hub, c, t, cur, "ahead");
        else if (pos == cur)
            ; /* nothing missed */
        else if (r->replay_all) {
            if (!engine_complete(e, ht->et, pos)) {
                send_reset(hub, c, t, cur, "evicted");
            } else {
                struct replay rp = {hub, c, pos};
                engine_replay(e, ht->et, pos, cur, on_replay, &rp);
            }
        } else if ((pos < engine_base(e, ht->et) && !engine_lags(e)) || cur - pos > UINT32_MAX)
            /* Older than what the broker remembers. Not on a cluster node: Redis numbers a topic
             * above every seq given before in the epoch, so a catch-up from any older position
             * counts every change since, and a node's base may be above a position it confirmed
             * itself (a topic it did not know, cluster.c). */
            send_reset(hub, c, t, cur, "horizon");
        else
            catch_up(hub, c, ht->et, (uint32_t)(cur - pos));
    }
    if (hub->replay_bytes) limit_charge(&c->lim.replay, hub->replay_bytes);
    /* Live from here: anything newer, nothing older. */
    if (ht)
        s->since = cur;
    else
        engine_pattern_live(e, &s->live);
    engine_unlock(e);
}

/* An exact subscription of c ends while a pattern of c matches its topic: the pattern takes
 * over from what the exact one gave. A pattern skips the publishes made before it went live (a
 * fresh start includes them), so when a window still holds such publishes, which the exact
 * subscription has not given yet, they would be skipped silently: give them now, as one hint
 * from the connection's position. Engine lock taken. */
static void hand_over(struct hub *hub, struct conn *c, struct sub *s)
{
    struct htopic *ht = s->topic;
    uint64_t live = UINT64_MAX;
    for (const struct sub *o = c->subs; o; o = o->cnext)
        if (o->pat && o->live < live && match_one(o->pat, o->patlen, ht->name, ht->node.len) == 1)
            live = o->live;
    if (live == UINT64_MAX) return;
    struct engine *e = hub->engine;
    engine_lock(e);
    hub_drain(hub); /* what was released reached the exact subscription first */
    struct etopic *et = ht->et;
    uint64_t cur = engine_seq(e, et);
    if (!c->closing && cur > s->since && et->win_hint && et->win_hint->ordinal <= live &&
        cur - s->since <= UINT32_MAX) {
        struct hint *h = engine_newest(e, et);
        if (h) {
            push_hint(hub, c, h, (uint32_t)(cur - s->since), 0, NULL);
            s->since = cur;
            hint_unref(h);
        } else {
            hub_conn_close(hub, c, 1011, "out of memory");
        }
    }
    engine_unlock(e);
}

void hub_unsubscribe(struct hub *hub, struct conn *c, int has_id, uint64_t id, struct wire_str t)
{
    if (c->closing) return;
    struct sub *s = sub_pattern(c->subs, t.p, t.len);
    if (!s) {
        struct htopic *ht =
            htopic_find(&hub->topics, t.p, t.len, engine_hash(hub->engine, t.p, t.len));
        s = ht ? sub_of(c->subs, ht) : NULL;
    }
    if (!s) {
        hub_error(hub, c, has_id, id, t, WIRE_C_NOT_SUBSCRIBED, "not subscribed to this topic");
        return;
    }
    if (!s->pat) hand_over(hub, c, s);
    if (c->closing) return;
    drop_sub(hub, c, s);
    maybe_trim(hub);
    wire_buf_reset(&hub->tmp);
    if (sub_encode_unsubscribed(c->fmt, &hub->tmp, id, t) == 0) push_tmp(hub, c);
}
