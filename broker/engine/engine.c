/* engine: see engine.h. A publish is checked whole before anything changes (every topic name
 * valid, the topic bound not passed), then each topic's hint is built, stamped and retained by
 * the store, sealed (payload encoded per format), and released: straight to every sink, or held
 * by the topic's coalescing window, which lets the first hint of a quiet topic out at once and
 * the newest of each window at its end (with the count it stands for).
 *
 * Topic lifecycle: a topic is freed when nothing holds it — no subscription, no publish in
 * flight, no open window, no retained history. The store forgets its position then, and a topic
 * created again starts above every seq given out in this epoch (the store's floor), so no seq
 * repeats within an epoch and a client resuming from an old position gets a replay or a reset. */
#include "engine.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <time.h>

#include "cluster.h"
#include "match.h"

void engine_config_default(struct engine_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    wire_limits_default(&cfg->lim);
    store_config_default(&cfg->hist);
    cfg->max_topics = 1000000;
}

int engine_window_parse(const char *s, struct engine_window *w)
{
    const char *eq = strrchr(s, '=');
    if (!eq || eq == s || (size_t)(eq - s) >= sizeof(w->pattern)) return -EINVAL;
    char *end;
    unsigned long ms = strtoul(eq + 1, &end, 10);
    if (*end || eq[1] == '\0' || ms == 0 || ms > 3600000) return -EINVAL;
    memcpy(w->pattern, s, (size_t)(eq - s));
    w->pattern[eq - s] = '\0';
    if (match_one(w->pattern, strlen(w->pattern), "", 0) < 0) return -EINVAL;
    w->ms = (uint32_t)ms;
    return 0;
}

static void on_emptied(void *arg, void *owner);
static void on_arrived(void *arg, const struct store_arrival *a);
static void on_reset(void *arg);

static void store_wake(void *arg)
{
    struct engine *e = arg;
    pthread_mutex_lock(&e->wake_lock);
    if (e->wake) e->wake(e->wake_arg);
    pthread_mutex_unlock(&e->wake_lock);
}

/* Common part; d and link NULL = the memory store. */
static int init(struct engine *e, const struct engine_config *cfg, const uint8_t seed[32],
                const struct store_disk *d, const struct cluster_link *link)
{
    memset(e, 0, sizeof(*e));
    e->cfg = *cfg;
    wire_limits_clamp(&e->cfg.lim);
    if (e->cfg.max_topics < 1) e->cfg.max_topics = 1;
    uint64_t k0, k1, ep, base;
    memcpy(&k0, seed, 8);
    memcpy(&k1, seed + 8, 8);
    memcpy(&ep, seed + 16, 8);
    memcpy(&base, seed + 24, 8);
    /* Connection ids start at a random point of the 64-bit space, not at 1: a backend may
     * still hold an id from before a restart, and it must name no connection of this start (or
     * skip_origin would drop another subscriber's hint). */
    e->id_base = base;
    atomic_init(&e->next_id, 0);
    int rc = -ENOMEM;
    if (pthread_mutex_init(&e->lock, NULL) != 0) return -ENOMEM;
    if (pthread_mutex_init(&e->wake_lock, NULL) != 0) goto fail_lock;
    if (table_init(&e->topics, k0, k1) < 0) goto fail_wake;
    rate_init(&e->rates, 0);
    if (d) {
        rc = store_disk_open(&e->cfg.hist, d, ep, k0, k1, &e->store);
    } else if (link) {
        e->store = store_cluster_new(&e->cfg.hist, link, ep, k0, k1); /* ep: the node's id */
        rc = e->store ? 0 : -ENOMEM;
    } else {
        e->store = store_mem_new(&e->cfg.hist, ep, k0, k1);
        rc = e->store ? 0 : -ENOMEM;
    }
    if (rc < 0) {
        e->store = NULL;
        table_free(&e->topics);
        goto fail_wake;
    }
    e->store->emptied = on_emptied;
    e->store->emptied_arg = e;
    e->store->wake = store_wake;
    e->store->wake_arg = e;
    e->store->arrived = on_arrived;
    e->store->arrived_arg = e;
    e->store->reset = on_reset;
    e->store->reset_arg = e;
    return 0;
fail_wake:
    pthread_mutex_destroy(&e->wake_lock);
fail_lock:
    pthread_mutex_destroy(&e->lock);
    return rc;
}

int engine_init(struct engine *e, const struct engine_config *cfg, const uint8_t seed[32])
{
    return init(e, cfg, seed, NULL, NULL);
}

int engine_init_disk(struct engine *e, const struct engine_config *cfg, const uint8_t seed[32],
                     const struct store_disk *d)
{
    return init(e, cfg, seed, d, NULL);
}

int engine_init_cluster(struct engine *e, const struct engine_config *cfg, const uint8_t seed[32],
                        const struct cluster_link *link)
{
    return init(e, cfg, seed, NULL, link);
}

void engine_on_wake(struct engine *e, void (*wake)(void *arg), void *arg)
{
    pthread_mutex_lock(&e->wake_lock);
    e->wake = wake;
    e->wake_arg = arg;
    pthread_mutex_unlock(&e->wake_lock);
}

void engine_poll(struct engine *e, int wait)
{
    e->store->ops->poll(e->store, wait);
}

static void free_topic(void *arg, struct tnode *n)
{
    struct engine *e = arg;
    struct etopic *t = (struct etopic *)n;
    hint_unref(t->win_hint);
    e->store->ops->close(e->store, t->st);
    free(t);
}

void engine_close(struct engine *e)
{
    if (!e->store) return;
    table_drain(&e->topics, free_topic, e);
    table_free(&e->topics);
    e->store->ops->poll(e->store, 1); /* nothing may still be on its way */
    e->store->ops->free(e->store);
    e->store = NULL;
    e->windows = NULL;
    wire_buf_free(&e->tmp);
    pthread_mutex_destroy(&e->wake_lock);
    pthread_mutex_destroy(&e->lock);
}

int engine_add_sink(struct engine *e, const struct engine_sink *s)
{
    if (e->nsinks >= ENGINE_SINKS_MAX) return -ENOSPC;
    e->sinks[e->nsinks++] = *s;
    return 0;
}

uint64_t engine_conn_id(struct engine *e)
{
    return e->id_base + atomic_fetch_add_explicit(&e->next_id, 1, memory_order_relaxed) + 1;
}

/* ---- topics ------------------------------------------------------------------------------ */

static struct etopic *find(struct engine *e, const char *name, size_t len, uint64_t hash)
{
    return (struct etopic *)table_find(&e->topics, name, len, hash);
}

/* A new topic takes its coalescing window from the configured patterns. NULL on OOM. */
static struct etopic *create(struct engine *e, const char *name, size_t len, uint64_t hash)
{
    struct etopic *t = calloc(1, sizeof(*t) + len + 1);
    if (!t) return NULL;
    memcpy(t->name, name, len);
    t->node = (struct tnode){.hash = hash, .name = t->name, .len = (uint32_t)len};
    if (!(t->st = e->store->ops->open(e->store, name, len, hash, t))) {
        free(t);
        return NULL;
    }
    for (uint32_t i = 0; i < e->cfg.nwindows; i++) {
        const struct engine_window *w = &e->cfg.windows[i];
        if (match_one(w->pattern, strlen(w->pattern), name, len) == 1) {
            t->window_ms = w->ms;
            break;
        }
    }
    table_add(&e->topics, &t->node);
    return t;
}

/* Free t when nothing holds it any more. */
static void maybe_free(struct engine *e, struct etopic *t)
{
    if (t->holds || t->win_listed || e->store->ops->oldest(e->store, t->st)) return;
    rate_forget(&e->rates, &t->rate);
    table_remove(&e->topics, &t->node);
    e->store->ops->close(e->store, t->st);
    free(t);
}

static void on_emptied(void *arg, void *owner)
{
    maybe_free(arg, owner);
}

int engine_hold(struct engine *e, const char *name, size_t len, uint64_t hash, struct etopic **out)
{
    struct etopic *t = find(e, name, len, hash);
    if (!t) {
        if (e->topics.count >= e->cfg.max_topics) {
            e->st.refused++;
            return -ENOSPC;
        }
        if (!(t = create(e, name, len, hash))) return -ENOMEM;
    }
    t->holds++;
    *out = t;
    return 0;
}

void engine_release(struct engine *e, struct etopic *t)
{
    t->holds--;
    maybe_free(e, t);
}

struct etopic *engine_find(struct engine *e, const char *name, size_t len)
{
    return find(e, name, len, engine_hash(e, name, len));
}

uint32_t engine_top(struct engine *e, struct etopic **out, uint32_t max)
{
    struct rate_node *n[RATE_TOP_MAX];
    uint32_t k = rate_top(&e->rates, n, max < RATE_TOP_MAX ? max : RATE_TOP_MAX);
    for (uint32_t i = 0; i < k; i++)
        out[i] = (struct etopic *)((char *)n[i] - offsetof(struct etopic, rate));
    return k;
}

double engine_rate(const struct engine *e, const struct etopic *t, uint64_t now_ms)
{
    return rate_of(&e->rates, &t->rate, now_ms);
}

static void add_hist(void *arg, struct hint *x)
{
    struct engine_hist *h = arg;
    if (!h->hints++) {
        h->first_seq = x->seq;
        h->oldest_ms = x->time_ms;
    }
    h->last_seq = x->seq;
    h->bytes += hint_size(x);
}

void engine_history(struct engine *e, const struct etopic *t, struct engine_hist *h)
{
    memset(h, 0, sizeof(*h));
    uint64_t oldest = e->store->ops->oldest(e->store, t->st);
    if (oldest) e->store->ops->since(e->store, t->st, oldest - 1, engine_seq(e, t), add_hist, h);
}

uint64_t engine_seq(const struct engine *e, const struct etopic *t)
{
    return e->store->ops->seq(e->store, t->st);
}

uint64_t engine_released(const struct engine *e, const struct etopic *t)
{
    return engine_seq(e, t) - (t->win_hint ? t->win_count : 0);
}

void engine_pattern_live(struct engine *e, uint64_t *live)
{
    *live = e->pat_live = e->ordinal;
}

uint64_t engine_base(const struct engine *e, const struct etopic *t)
{
    return e->store->ops->base(e->store, t->st);
}

static void take_newest(void *arg, struct hint *h)
{
    struct hint **out = arg;
    *out = h;
}

/* A sealed hint without data for a change history no longer holds: the position is all that
 * is left of it. One reference owned by the caller; NULL on OOM. */
static struct hint *bare_hint(struct engine *e, const char *name, size_t len, uint64_t hash,
                              uint64_t seq, uint64_t gpos, uint64_t ordinal)
{
    struct hint *h = hint_new(name, len, hash, NULL, 0);
    if (!h) return NULL;
    h->seq = seq;
    h->gpos = gpos;
    h->ordinal = ordinal;
    if (hint_seal(h, &e->tmp) < 0) {
        hint_unref(h);
        return NULL;
    }
    return h;
}

struct hint *engine_newest(struct engine *e, struct etopic *t)
{
    uint64_t cur = engine_seq(e, t);
    if (cur <= engine_base(e, t)) return NULL;
    struct hint *h = NULL;
    e->store->ops->since(e->store, t->st, cur - 1, cur, take_newest, &h);
    if (h) return hint_ref(h);
    return bare_hint(e, t->name, t->node.len, t->node.hash, cur, engine_last_gpos(e, t),
                     t->ordinal);
}

uint64_t engine_last_gpos(const struct engine *e, const struct etopic *t)
{
    return e->store->ops->last_gpos(e->store, t->st);
}

uint64_t engine_safe_gpos(const struct engine *e)
{
    uint64_t g = e->store->st.gpos;
    for (const struct etopic *t = e->windows; t; t = t->win_next)
        if (t->win_hint && t->win_first_gpos - 1 < g) g = t->win_first_gpos - 1;
    return g;
}

const char *engine_gpos_check(const struct engine *e, uint64_t g)
{
    if (g > e->store->st.gpos) return "ahead";
    if (g < e->store->st.forgot_gpos) return "horizon";
    return NULL;
}

void engine_changed(struct engine *e, uint64_t after,
                    void (*fn)(void *arg, const struct store_change *c), void *arg)
{
    e->store->ops->changed(e->store, after, fn, arg);
}

struct hint *engine_change_hint(struct engine *e, const struct store_change *c)
{
    if (c->newest) return hint_ref(c->newest);
    return bare_hint(e, c->name, c->len, c->hash, c->seq, c->gpos, 0);
}

int engine_complete(const struct engine *e, const struct etopic *t, uint64_t after)
{
    return store_complete(e->store, t->st, after);
}

void engine_replay(struct engine *e, const struct etopic *t, uint64_t after, uint64_t upto,
                   void (*fn)(void *arg, struct hint *h), void *arg)
{
    e->store->ops->since(e->store, t->st, after, upto, fn, arg);
}

/* ---- release ------------------------------------------------------------------------------ */

static void fan_out(struct engine *e, struct hint *h, uint32_t count, struct wire_str origin,
                    int skip_origin)
{
    for (uint32_t i = 0; i < e->nsinks; i++)
        e->sinks[i].deliver(e->sinks[i].arg, h, count, origin, skip_origin);
}

/* Fan out what t's window holds (the newest held hint, standing for win_count publishes), with
 * the newest publish's origin rules (a hub applies them where the hint stands for that publish
 * alone). The window stays open. */
static void win_flush(struct engine *e, struct etopic *t)
{
    struct hint *h = t->win_hint;
    uint32_t n = t->win_count;
    struct wire_str origin = {t->win_origin, t->win_origin_len};
    int skip = t->win_skip_origin;
    t->win_hint = NULL;
    t->win_count = 0;
    t->win_origin_len = 0;
    fan_out(e, h, n, origin, skip);
    hint_unref(h);
}

/* Release one hint of t: straight out, or held by the topic's coalescing window. */
static void release(struct engine *e, struct etopic *t, struct hint *h, uint32_t count,
                    struct wire_str origin, int skip_origin, uint64_t now)
{
    if (t->window_ms) {
        /* Invariant: no pattern went live between two publishes a window holds, so a pattern
         * gets all of them (counted exactly) or none (made after them: its fresh start includes
         * them). A pattern subscribed since the newest held publish splits the window: what it
         * held goes out now, this publish starts a new hold. Costs one extra hint per pattern
         * subscription made while a window holds publishes. */
        if (t->win_hint && e->pat_live >= t->win_hint->ordinal) win_flush(e, t);
        if (now < t->win_until) {
            if (t->win_hint) e->st.coalesced++;
            if (!t->win_hint) t->win_first_gpos = h->gpos;
            hint_unref(t->win_hint);
            t->win_hint = hint_ref(h);
            t->win_count += count;
            /* The newest held publish's origin (see win_flush). */
            t->win_origin_len = 0;
            if (origin.len && origin.len < sizeof(t->win_origin)) {
                memcpy(t->win_origin, origin.p, origin.len);
                t->win_origin_len = (uint8_t)origin.len;
                t->win_skip_origin = (uint8_t)skip_origin;
            }
            return;
        }
        t->win_until = now + t->window_ms;
        if (!t->win_listed) {
            t->win_listed = 1;
            t->win_next = e->windows;
            e->windows = t;
        }
        if (t->win_hint) {
            /* The window ended but the tick has not run yet: this hint absorbs the held ones,
             * or their seqs would be skipped without a coalesced hint saying so. */
            uint32_t n = t->win_count + count;
            hint_unref(t->win_hint);
            t->win_hint = NULL;
            t->win_count = 0;
            t->win_origin_len = 0;
            e->st.coalesced++;
            fan_out(e, h, n, origin, skip_origin);
            return;
        }
    }
    fan_out(e, h, count, origin, skip_origin);
}

uint64_t engine_tick(struct engine *e, uint64_t now_ms)
{
    struct etopic **pp = &e->windows;
    while (*pp) {
        struct etopic *t = *pp;
        if (t->win_until > now_ms) {
            pp = &t->win_next;
            continue;
        }
        if (t->win_hint) { /* the newest of the window always goes out */
            t->win_until = now_ms + t->window_ms;
            win_flush(e, t);
            pp = &t->win_next;
            continue;
        }
        *pp = t->win_next; /* quiet for a whole window: close it */
        t->win_listed = 0;
        t->win_next = NULL;
        maybe_free(e, t);
    }
    e->store->ops->evict(e->store, e->store->wall_ms());
    /* Windows must close on time even when the last tick saw none open. */
    return e->cfg.nwindows ? 10 : 1000;
}

/* ---- publish ------------------------------------------------------------------------------ */

static void appended(void *arg, struct hint *h, int err)
{
    struct engine__part *part = arg;
    struct engine_pub *p = part->p;
    struct engine *e = p->e;
    struct etopic *t = part->t;
    if (err == 0) h->ordinal = t->ordinal = ++e->ordinal;
    if (err == 0 && hint_seal(h, &e->tmp) < 0) err = -ENOMEM;
    if (err < 0) {
        /* Topics before this one were published; the publisher retries the whole message and
         * subscribers see a second change, which is harmless for an invalidation. */
        if (!p->err) p->err = err;
    } else {
        p->seqs[part - p->parts] = h->seq;
        e->st.hints++;
        rate_hit(&e->rates, &t->rate, p->now_ms);
        release(e, t, h, 1, p->origin, p->skip_origin, p->now_ms);
    }
    hint_unref(h);
    t->holds--;
    maybe_free(e, t);
    if (--p->pending == 0) {
        if (!p->err) e->st.publishes++;
        p->done(p->arg, p);
    }
}

/* A change learnt by a cluster store (another node's publish, or a catch-up): held, recorded by
 * the store, released like a publish of this node. The topic bound is not applied: the
 * publishing node applied its own, and a change must reach the subscribers. Windows take the
 * monotonic clock (what the workers' loops pass as now). */
static void on_arrived(void *arg, const struct store_arrival *a)
{
    struct engine *e = arg;
    struct etopic *t = find(e, a->name, a->len, a->hash);
    if (!t && !(t = create(e, a->name, a->len, a->hash))) return;
    t->holds++;
    struct hint *h = hint_new(t->name, t->node.len, t->node.hash, a->data, a->data_len);
    if (h && e->store->ops->adopt(e->store, t->st, h, a) == 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        h->ordinal = t->ordinal = ++e->ordinal;
        if (hint_seal(h, &e->tmp) == 0) {
            e->st.hints++;
            rate_hit(&e->rates, &t->rate, now);
            release(e, t, h, a->count, (struct wire_str){a->origin, a->origin_len}, a->skip_origin,
                    now);
        }
    }
    hint_unref(h);
    t->holds--;
    maybe_free(e, t);
}

/* A new epoch: what windows hold is of the old one (never released), and every sink is told. */
static void on_reset(void *arg)
{
    struct engine *e = arg;
    for (struct etopic *t = e->windows; t; t = t->win_next) {
        hint_unref(t->win_hint);
        t->win_hint = NULL;
        t->win_count = 0;
        t->win_origin_len = 0;
    }
    for (uint32_t i = 0; i < e->nsinks; i++)
        if (e->sinks[i].epoch) e->sinks[i].epoch(e->sinks[i].arg);
}

int engine_publish(struct engine *e, struct engine_pub *p, uint64_t now_ms, engine_pub_fn *done,
                   void *arg)
{
    if (p->ntopics == 0 || p->ntopics > WIRE_TOPICS_MAX) {
        p->seqs[0] = 0;
        return -EINVAL;
    }
    uint64_t missing = 0;
    for (uint32_t i = 0; i < p->ntopics; i++) {
        const struct wire_str *n = &p->topics[i];
        if (wire_topic_check(n->p, n->len, &e->cfg.lim) < 0) {
            p->seqs[0] = i;
            return -EINVAL;
        }
        p->parts[i].t = find(e, n->p, n->len, engine_hash(e, n->p, n->len));
        if (!p->parts[i].t) missing++;
    }
    if (missing && e->topics.count + missing > e->cfg.max_topics) {
        e->st.refused++;
        return -ENOSPC;
    }
    p->e = e;
    p->done = done;
    p->arg = arg;
    p->now_ms = now_ms;
    p->err = 0;
    /* Hold every topic first: a store that completes at once must not free a topic that a
     * later part of this publish still names. */
    uint32_t n = 0;
    for (; n < p->ntopics; n++) {
        const struct wire_str *name = &p->topics[n];
        uint64_t hash = engine_hash(e, name->p, name->len);
        struct etopic *t = p->parts[n].t;
        if (!t) t = find(e, name->p, name->len, hash); /* named twice in this publish */
        if (!t && !(t = create(e, name->p, name->len, hash))) break;
        t->holds++;
        p->parts[n] = (struct engine__part){.p = p, .t = t};
    }
    if (n < p->ntopics) { /* out of memory before anything was published */
        while (n--)
            engine_release(e, p->parts[n].t);
        return -ENOMEM;
    }
    p->pending = p->ntopics + 1; /* +1: done runs only after the loop below */
    e->store->pub_origin = p->origin.p;
    e->store->pub_origin_len = p->origin.len;
    e->store->pub_skip_origin = p->skip_origin;
    for (uint32_t i = 0; i < p->ntopics; i++) {
        struct etopic *t = p->parts[i].t;
        struct hint *h =
            hint_new(t->name, t->node.len, t->node.hash, p->data, p->data ? p->data_len : 0);
        if (!h) {
            appended(&p->parts[i], NULL, -ENOMEM);
            continue;
        }
        e->store->ops->append(e->store, t->st, h, appended, &p->parts[i]);
    }
    e->store->pub_origin = NULL;
    e->store->pub_origin_len = 0;
    if (--p->pending == 0) {
        if (!p->err) e->st.publishes++;
        done(arg, p);
    }
    return 0;
}
