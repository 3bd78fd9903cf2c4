/* core: the data path. A publish frame is decoded, every topic name is validated before anything
 * changes (a publish is all or nothing), then for each topic a hint object is made, the history
 * store assigns its seq and keeps it, and — unless a coalescing window holds it back — it is
 * fanned out: exact subscribers from the topic's list, wildcard subscribers from the match trie,
 * each connection at most once per publish. Queues hold references; the hint's payload is
 * encoded once per wire format. Connections with output are put on the dirty list and the event
 * loop calls core_flush() once per turn ("before sleep", as Redis does), so a burst of publishes
 * read in one go leaves as one batched write per subscriber.
 *
 * Delivery contract (docs/guarantees.md): per connection and topic, hints arrive in seq order
 * with no duplicate; a hint without "n" is exactly the next seq; a coalesced hint ("n" > 1)
 * stands for every seq up to its own; a reset stands for everything up to its seq. A congested
 * connection coalesces instead of growing; a subscribe with a position is replayed from history
 * or reset, within the same loop turn, so nothing can fall between replay and live. */
#include "core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"
#include "pub.h"
#include "sub.h"

#define CLOSE_SLOW 4001

void core_config_default(struct core_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    wire_limits_default(&cfg->lim);
    cfg->max_subs = 1024;
    cfg->max_queue = 1024;
    hist_config_default(&cfg->hist);
}

int core_window_parse(const char *s, struct core_window *w)
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

int core_init(struct core *core, const struct core_config *cfg, const uint8_t seed[24])
{
    memset(core, 0, sizeof(*core));
    core->cfg = *cfg;
    wire_limits_clamp(&core->cfg.lim);
    if (core->cfg.max_queue < 8) core->cfg.max_queue = 8;
    if (core->cfg.max_subs < 1) core->cfg.max_subs = 1;
    uint64_t k0, k1, e;
    memcpy(&k0, seed, 8);
    memcpy(&k1, seed + 8, 8);
    memcpy(&e, seed + 16, 8);
    snprintf(core->epoch, sizeof(core->epoch), "%016llx", (unsigned long long)e);
    /* Connection ids (welcome.conn, matched by a publish's origin) start at a random point of
     * the 64-bit space, not at 1: a backend may still hold an id from before a restart, and it
     * must name no connection of this start (or skip_origin would drop another subscriber's
     * hint). splitmix64 of the epoch: as random, but not the epoch itself. With several
     * workers: this one base plus one shared atomic counter. */
    uint64_t z = e + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    core->id_base = z ^ (z >> 31);
    if (topics_init(&core->topics, k0, k1) < 0) return -ENOMEM;
    core->hist = hist_mem_new(&core->cfg.hist);
    core->match = match_new();
    if (!core->hist || !core->match) {
        core_close(core);
        return -ENOMEM;
    }
    return 0;
}

void core_close(struct core *core)
{
    for (struct topic *tp = core->windows; tp; tp = tp->win_next) {
        hint_unref(tp->win_hint);
        tp->win_hint = NULL;
    }
    core->windows = NULL;
    if (core->hist) core->hist->ops->free(core->hist);
    if (core->match) match_free(core->match);
    topics_free(&core->topics);
    wire_buf_free(&core->tmp);
    core->hist = NULL;
    core->match = NULL;
}

/* Find or create a topic; a new one takes its coalescing window from the configured patterns. */
static struct topic *get_topic(struct core *core, const char *name, size_t len)
{
    size_t before = core->topics.count;
    struct topic *tp = topic_get(&core->topics, name, len);
    if (tp && core->topics.count != before) {
        for (uint32_t i = 0; i < core->cfg.nwindows; i++) {
            const struct core_window *w = &core->cfg.windows[i];
            if (match_one(w->pattern, strlen(w->pattern), name, len) == 1) {
                tp->window_ms = w->ms;
                break;
            }
        }
    }
    return tp;
}

/* A topic that never had a publish keeps nothing worth remembering once unsubscribed. */
static void maybe_drop_topic(struct core *core, struct topic *tp)
{
    if (tp->nsubs == 0 && tp->seq == 0 && !tp->win_listed) topic_remove(&core->topics, tp);
}

void core_conn_open(struct core *core, struct conn *c, enum conn_kind kind,
                    const struct conn_ops *ops, void *io)
{
    c->ops = ops;
    c->io = io;
    c->kind = kind;
    c->id = core->id_base + ++core->next_id; /* unique across restarts: see core_init */
    snprintf(c->name, sizeof(c->name), "%llx", (unsigned long long)c->id);
    c->next = core->conns;
    if (core->conns) core->conns->prev = c;
    core->conns = c;
    core->st.conns[kind]++;
    core->st.accepted[kind]++;
}

static void dirty_remove(struct core *core, struct conn *c)
{
    if (!c->dirty) return;
    if (c->dirty_prev)
        c->dirty_prev->dirty_next = c->dirty_next;
    else
        core->dirty = c->dirty_next;
    if (c->dirty_next) c->dirty_next->dirty_prev = c->dirty_prev;
    c->dirty_prev = c->dirty_next = NULL;
    c->dirty = 0;
}

static void dirty_add(struct core *core, struct conn *c)
{
    if (c->dirty) return;
    c->dirty = 1;
    c->dirty_prev = NULL;
    c->dirty_next = core->dirty;
    if (core->dirty) core->dirty->dirty_prev = c;
    core->dirty = c;
}

static void drop_sub(struct core *core, struct conn *c, struct sub *s)
{
    struct topic *tp = s->topic;
    if (s->pat) match_remove(core->match, s->pat, s->patlen, s);
    topic_unsubscribe(s, &c->subs);
    c->nsubs--;
    core->nsubs--;
    if (tp) maybe_drop_topic(core, tp);
}

void core_conn_gone(struct core *core, struct conn *c)
{
    if (!c->ops) return; /* never opened */
    while (c->subs)
        drop_sub(core, c, c->subs);
    dirty_remove(core, c);
    conn_queue_free(c);
    if (c->prev)
        c->prev->next = c->next;
    else if (core->conns == c)
        core->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    c->prev = c->next = NULL;
    core->st.conns[c->kind]--;
    c->ops = NULL;
}

static void conn_close(struct core *core, struct conn *c, int code, const char *reason)
{
    if (c->closing) return;
    c->closing = 1;
    dirty_remove(core, c);
    conn_queue_free(c);
    c->ops->close(c, code, reason);
}

/* Queue a control message (taking the caller's reference). A client that does not read the
 * answers to its own requests is closed once max_queue of them wait. */
static void push_msg(struct core *core, struct conn *c, struct msg *m)
{
    if (c->closing) {
        msg_unref(m);
        return;
    }
    if (c->qctl >= core->cfg.max_queue) {
        msg_unref(m);
        core->st.slow_closes++;
        conn_close(core, c, CLOSE_SLOW, "slow consumer: replies not read");
        return;
    }
    if (conn_push_msg(c, m) < 0) {
        conn_close(core, c, 1011, "out of memory");
        return;
    }
    dirty_add(core, c);
}

/* Queue the payload in core->tmp as a message of its own for c. */
static void push_tmp(struct core *core, struct conn *c)
{
    struct msg *m = msg_copy(core->tmp.data, core->tmp.len);
    if (!m) {
        conn_close(core, c, 1011, "out of memory");
        return;
    }
    push_msg(core, c, m);
}

/* Queue hint h for c. A connection whose socket keeps up never coalesces (each hint goes out as
 * itself); once the transport reports congestion, or max_queue entries wait even after a direct
 * flush, hints of a topic already waiting merge into that entry. */
static void push_hint(struct core *core, struct conn *c, struct hint *h, uint32_t count, int own)
{
    uint32_t max = core->cfg.max_queue;
    if (c->closing) return;
    if (!c->congested && c->qlen >= max) {
        /* A burst read in one go can fill a healthy queue before the loop's flush pass. */
        dirty_remove(core, c);
        c->ops->flush(c);
        if (c->closing) return;
    }
    int coalesce = c->congested || c->qlen >= max;
    int rc = conn_push_hint(c, h, count, own, coalesce);
    if (rc < 0) {
        conn_close(core, c, 1011, "out of memory");
        return;
    }
    if (rc == 1) core->st.coalesced++;
    if (c->qlen > max + core->cfg.max_subs) {
        /* Only wildcards over more topics than max_subs get here: one entry per topic. */
        core->st.slow_closes++;
        conn_close(core, c, CLOSE_SLOW, "slow consumer: outbound queue full");
        return;
    }
    dirty_add(core, c);
}

void core_flush(struct core *core)
{
    struct conn *c;
    while ((c = core->dirty)) {
        dirty_remove(core, c);
        if (!c->closing && c->qlen) c->ops->flush(c);
    }
}

void core_close_all(struct core *core, int code, const char *reason)
{
    for (struct conn *c = core->conns; c; c = c->next)
        conn_close(core, c, code, reason);
}

uint64_t core_queued(const struct core *core)
{
    uint64_t n = 0;
    for (const struct conn *c = core->conns; c; c = c->next)
        n += c->qlen;
    return n;
}

/* ---- fan-out ----------------------------------------------------------------------------- */

struct fan {
    struct core *core;
    struct hint *h;
    uint32_t count;
    struct wire_str origin; /* len 0 = none */
    int skip_origin;
    uint64_t stamp;
};

/* count: how many seqs the hint advances c's position by ("n", docs/protocol.md §hint). */
static void deliver(struct fan *f, struct conn *c, uint32_t count)
{
    int own = f->origin.len && f->origin.len == strlen(c->name) &&
              memcmp(f->origin.p, c->name, f->origin.len) == 0;
    /* f->origin is the newest publish's. A hint standing for several publishes for c is no
     * one's own; one standing for that publish alone (also a window hint for a connection that
     * had the window's other publishes) keeps its origin rules. */
    if (count > 1) own = 0;
    if (own && f->skip_origin) return;
    f->core->st.deliveries++;
    push_hint(f->core, c, f->h, count, own);
}

static void on_match(void *subp, void *arg)
{
    struct sub *s = subp;
    struct fan *f = arg;
    struct conn *c = s->conn;
    if (c->stamp == f->stamp || c->closing) return;
    /* A pattern stands for the publishes after it went live. A window's held publishes are all
     * newer or all older than it (release()), so the newest one decides: older, and the
     * subscription (a fresh start) already includes them — no hint. Another pattern of c may
     * still qualify, so the stamp is not taken. The hint's count then is exactly what c was
     * not given: every publish it stands for is newer than the pattern. */
    if (f->h->ord <= s->live) return;
    c->stamp = f->stamp;
    deliver(f, c, f->count);
}

static void fan_out(struct core *core, struct topic *tp, struct hint *h, uint32_t count,
                    struct wire_str origin, int skip_origin)
{
    struct fan f = {core, h, count, origin, skip_origin, ++core->stamp};
    /* Exact subscriptions first: they carry the connection's position for the topic, and a
     * connection that also matches through a wildcard must not get the hint twice. */
    for (struct sub *s = tp->subs; s; s = s->tnext) {
        struct conn *c = s->conn;
        c->stamp = f.stamp;
        if (c->closing || h->seq <= s->since) continue;
        /* "n" counts from this connection's position, not the publishes a window held: a sub
         * made during the window was confirmed at a seq past some of them. */
        deliver(&f, c, (uint32_t)(h->seq - s->since));
        s->since = h->seq; /* what this connection has been given (or skipped as its own) */
    }
    if (match_count(core->match)) match_each(core->match, tp->name, tp->len, on_match, &f);
}

/* Fan out what tp's window holds (the newest held hint, standing for win_count publishes),
 * with the origin rules of the publish when it held just one. The window stays open. */
static void win_flush(struct core *core, struct topic *tp)
{
    struct hint *h = tp->win_hint;
    uint32_t n = tp->win_count;
    struct wire_str origin = {tp->win_origin, tp->win_origin_len}; /* the newest's: deliver() */
    int skip = tp->win_skip_origin;
    tp->win_hint = NULL;
    tp->win_count = 0;
    tp->win_origin_len = 0;
    fan_out(core, tp, h, n, origin, skip);
    hint_unref(h);
}

/* Publish one hint of tp: straight out, or held by the topic's coalescing window. */
static void release(struct core *core, struct topic *tp, struct hint *h, struct wire_str origin,
                    int skip_origin)
{
    if (tp->window_ms) {
        /* Invariant: no pattern went live between two publishes a window holds, so a pattern
         * gets all of them (counted exactly by win_count) or none (made after them: its fresh
         * start includes them). A pattern subscribed since the newest held publish splits the
         * window: what it held goes out now, this publish starts a new hold. Costs one extra
         * hint per pattern subscription made while a window holds publishes. (Threads: the
         * engine reads pat_live, which hubs raise when a pattern goes live.) */
        if (tp->win_hint && core->pat_live >= tp->win_hint->ord) win_flush(core, tp);
        if (core->now_ms < tp->win_until) {
            if (tp->win_hint) core->st.coalesced++;
            hint_unref(tp->win_hint);
            tp->win_hint = hint_ref(h);
            /* The newest held publish's origin: its rules apply where the released hint stands
             * for it alone (deliver()). */
            tp->win_origin_len = 0;
            tp->win_count++;
            if (origin.len && origin.len < sizeof(tp->win_origin)) {
                memcpy(tp->win_origin, origin.p, origin.len);
                tp->win_origin_len = (uint8_t)origin.len;
                tp->win_skip_origin = (uint8_t)skip_origin;
            }
            return;
        }
        tp->win_until = core->now_ms + tp->window_ms;
        if (!tp->win_listed) {
            tp->win_listed = 1;
            tp->win_next = core->windows;
            core->windows = tp;
        }
        if (tp->win_hint) {
            /* The window ended but the tick has not run yet: this hint absorbs the held ones,
             * or their seqs would be skipped without a coalesced hint saying so. */
            uint32_t n = tp->win_count + 1;
            hint_unref(tp->win_hint);
            tp->win_hint = NULL;
            tp->win_count = 0;
            tp->win_origin_len = 0;
            core->st.coalesced++;
            fan_out(core, tp, h, n, origin, skip_origin); /* origin: see deliver() */
            return;
        }
    }
    fan_out(core, tp, h, 1, origin, skip_origin);
}

uint64_t core_tick(struct core *core, uint64_t now_ms)
{
    core->now_ms = now_ms;
    struct topic **pp = &core->windows;
    while (*pp) {
        struct topic *tp = *pp;
        if (tp->win_until > now_ms) {
            pp = &tp->win_next;
            continue;
        }
        if (tp->win_hint) { /* the newest of the window always goes out */
            tp->win_until = now_ms + tp->window_ms;
            win_flush(core, tp);
            pp = &tp->win_next;
            continue;
        }
        *pp = tp->win_next; /* quiet for a whole window: close it */
        tp->win_listed = 0;
        tp->win_next = NULL;
    }
    core->hist->ops->evict(core->hist, now_ms);
    /* Windows must close on time even when the last tick saw none open. */
    return core->cfg.nwindows ? 10 : 1000;
}

/* ---- publishers ------------------------------------------------------------------------- */

static void pub_error(struct core *core, struct wire_buf *out, uint64_t id, int code,
                      const char *msg)
{
    core->st.errors++;
    pub_encode_error(out, id, code, msg);
}

void core_pub_stream_error(struct core *core, struct conn *c, int err, struct wire_buf *out)
{
    (void)c;
    char msg[96];
    if (err == WIRE_ETOOBIG)
        snprintf(msg, sizeof(msg), "frame longer than max_frame (%u bytes)",
                 core->cfg.lim.max_frame);
    else
        snprintf(msg, sizeof(msg), "invalid frame length");
    pub_error(core, out, 0, wire_code_of(err), msg);
}

static void on_publish(struct core *core, const struct pub_msg *pm, struct wire_buf *out)
{
    uint64_t seqs[WIRE_TOPICS_MAX];
    char msg[96];
    if (pm->ntopics == 0) {
        pub_error(core, out, pm->id, WIRE_C_BAD_FIELD, "publish needs at least one topic");
        return;
    }
    for (uint32_t i = 0; i < pm->ntopics; i++) {
        if (wire_topic_check(pm->topics[i].p, pm->topics[i].len, &core->cfg.lim) < 0) {
            snprintf(msg, sizeof(msg),
                     "topic %u: empty, too long, bad UTF-8, or holds a space, control char or '*'",
                     i);
            pub_error(core, out, pm->id, WIRE_C_BAD_TOPIC, msg);
            return;
        }
    }
    for (uint32_t i = 0; i < pm->ntopics; i++) {
        struct topic *tp = get_topic(core, pm->topics[i].p, pm->topics[i].len);
        struct hint *h = tp ? hint_new(tp, pm->data, pm->data_len, core->now_ms) : NULL;
        if (!h || core->hist->ops->append(core->hist, h) < 0) {
            hint_unref(h);
            if (tp) maybe_drop_topic(core, tp);
            /* Topics before i were published; the publisher retries the whole message and the
             * subscribers see a second change, which is harmless for an invalidation. */
            pub_error(core, out, pm->id, WIRE_C_INTERNAL, "out of memory");
            return;
        }
        seqs[i] = h->seq;
        /* The ordinal orders publishes of all topics, and pattern subscriptions among them
         * (sub.live): a pattern stands for the publishes after it went live. Assigned with the
         * seq (the future engine: under its lock). */
        h->ord = tp->ord = ++core->ord;
        core->st.hints++;
        release(core, tp, h, pm->origin, pm->skip_origin);
        hint_unref(h);
    }
    core->st.publishes++;
    pub_encode_ack(out, pm->id, seqs, pm->ntopics);
}

int core_pub_frame(struct core *core, struct conn *c, const uint8_t *body, size_t len,
                   struct wire_buf *out)
{
    struct pub_msg *pm = malloc(sizeof(*pm)); /* ~10 KB: keep it off the loop's stack */
    int rc = 0;
    if (!pm) {
        pub_error(core, out, 0, WIRE_C_INTERNAL, "out of memory");
        return -EPROTO;
    }
    memset(pm, 0, sizeof(*pm));
    int err = pub_decode(body, len, &core->cfg.lim, pm);
    if (err < 0) {
        int code = wire_code_of(err);
        pub_error(core, out, pm->id, code, wire_code_name(code)); /* id when decoded that far */
        if (err == WIRE_EMALFORMED) rc = -EPROTO; /* undecodable: the peer is broken */
        goto out;
    }
    if (!c->hello && pm->type != PUB_HELLO) {
        pub_error(core, out, pm->id, WIRE_C_HELLO_REQUIRED, "send hello first");
        goto clear;
    }
    switch (pm->type) {
    case PUB_HELLO:
        if (c->hello) {
            pub_error(core, out, 0, WIRE_C_UNEXPECTED, "hello already done");
        } else if (pm->version != WIRE_VERSION) {
            pub_error(core, out, 0, WIRE_C_BAD_VERSION, "protocol version 1 only");
        } else {
            c->hello = 1;
            pub_encode_welcome(out, WIRE_VERSION, core->epoch, "nudged/" NUDGE_VERSION,
                               &core->cfg.lim);
        }
        break;
    case PUB_PUBLISH:
        on_publish(core, pm, out);
        break;
    case PUB_PING:
        pub_encode_pong(out, pm->id);
        break;
    case PUB_PONG:
        break;
    default:
        pub_error(core, out, pm->id, WIRE_C_UNEXPECTED, "message not accepted from publishers");
    }
clear:
    pub_msg_clear(pm);
out:
    free(pm);
    return rc;
}

/* ---- WebSocket subscribers --------------------------------------------------------------- */

static const struct wire_str no_topic = {NULL, 0};

static void ws_error(struct core *core, struct conn *c, const struct sub_msg *sm,
                     struct wire_str topic, int code, const char *msg)
{
    core->st.errors++;
    wire_buf_reset(&core->tmp);
    if (sub_encode_error(c->fmt, &core->tmp, sm ? sm->has_id : 0, sm ? sm->id : 0, topic, code,
                         msg) == 0)
        push_tmp(core, c);
}

static void send_reset(struct core *core, struct conn *c, struct wire_str t, uint64_t seq,
                       const char *reason)
{
    core->st.resets++;
    wire_buf_reset(&core->tmp);
    if (sub_encode_reset(c->fmt, &core->tmp, t, seq, reason) == 0) push_tmp(core, c);
}

struct replay {
    struct core *core;
    struct conn *c;
};

static void on_replay(void *arg, struct hint *h)
{
    struct replay *r = arg;
    r->core->st.replayed++;
    push_hint(r->core, r->c, h, 1, 0);
}

/* 1 = valid pattern, 0 = plain topic, -1 = invalid. Patterns obey the topic rules, with '*'
 * allowed only as a whole segment or a final "**". */
static int classify(struct core *core, struct wire_str t)
{
    char buf[WIRE_TOPIC_LEN_MAX];
    if (t.len == 0 || t.len > core->cfg.lim.max_topic || t.len > sizeof(buf)) return -1;
    int kind = match_kind(t.p, t.len);
    if (kind < 0) return -1;
    memcpy(buf, t.p, t.len);
    for (uint32_t i = 0; i < t.len; i++)
        if (buf[i] == '*') buf[i] = 'x';
    return wire_topic_check(buf, t.len, &core->cfg.lim) < 0 ? -1 : kind;
}

/* Whether c already follows tp through a pattern that has brought it something of tp: a
 * matching pattern of c went live before tp's last publish, which c has then been sent (it is in
 * c's queue, ahead of any reply queued now) or which a coalescing window holds for it. Then *pos
 * is the last seq of tp c has been given: tp's seq less what a window still holds (a window's
 * held publishes are all newer than the pattern, see release()). 0 when no pattern of c matches
 * tp or tp had no publish since the earliest matching one went live: c has nothing of tp yet.
 * Linear in c's subscriptions (bounded by max_subs); only exact subs of new topics pay it. */
static int pattern_position(const struct conn *c, const struct topic *tp, uint64_t *pos)
{
    uint64_t live = UINT64_MAX;
    for (const struct sub *s = c->subs; s; s = s->cnext)
        if (s->pat && s->live < live && match_one(s->pat, s->patlen, tp->name, tp->len) == 1)
            live = s->live;
    if (live == UINT64_MAX || tp->ord <= live) return 0;
    *pos = tp->seq - (tp->win_hint ? tp->win_count : 0);
    return 1;
}

static int resume_epoch_ok(const struct core *core, const struct sub_msg *sm)
{
    return sm->epoch.len == strlen(core->epoch) &&
           memcmp(sm->epoch.p, core->epoch, sm->epoch.len) == 0;
}

static void subscribe_one(struct core *core, struct conn *c, const struct sub_msg *sm, uint32_t i)
{
    struct wire_str t = sm->topics[i];
    int kind = classify(core, t);
    if (kind < 0) {
        ws_error(core, c, sm, t, WIRE_C_BAD_TOPIC,
                 "topic empty, too long, bad UTF-8, holds a space or control char, or uses '*' "
                 "other than as a whole segment or a final '**'");
        return;
    }
    struct topic *tp = kind ? NULL : topic_find(&core->topics, t.p, t.len);
    struct sub *s =
        kind ? topic_sub_pattern(c->subs, t.p, t.len) : (tp ? topic_sub_of(c->subs, tp) : NULL);
    if (s) {
        /* Already subscribed: confirm again with what this connection has been given so far —
         * not the topic's seq, which may include hints a window still holds for it. */
        wire_buf_reset(&core->tmp);
        if (sub_encode_subscribed(c->fmt, &core->tmp, sm->id, t, tp ? s->since : 0) == 0)
            push_tmp(core, c);
        return;
    }
    if (c->nsubs >= core->cfg.max_subs) {
        ws_error(core, c, sm, t, WIRE_C_TOO_MANY_SUBS,
                 "subscriptions per connection over max_subs");
        return;
    }
    if (kind) {
        s = topic_subscribe_pattern(t.p, t.len, c, &c->subs);
        if (s && match_add(core->match, t.p, t.len, s) < 0) {
            topic_unsubscribe(s, &c->subs);
            s = NULL;
        }
    } else {
        if (!tp) tp = get_topic(core, t.p, t.len);
        s = tp ? topic_subscribe(tp, c, &c->subs) : NULL;
        if (!s && tp) maybe_drop_topic(core, tp);
    }
    if (!s) {
        ws_error(core, c, sm, t, WIRE_C_INTERNAL, "out of memory");
        return;
    }
    c->nsubs++;
    core->nsubs++;
    uint64_t given;
    if (!kind && pattern_position(c, tp, &given)) {
        /* The connection already follows tp through a pattern that brought it hints of tp: the
         * exact sub takes over from there, as a re-subscribe does — confirmed at what the
         * connection was given, no replay (it would repeat those hints, out of order) and no
         * reset, whatever the resume position; what a window holds follows as usual. */
        s->since = given;
        wire_buf_reset(&core->tmp);
        if (sub_encode_subscribed(c->fmt, &core->tmp, sm->id, t, given) == 0) push_tmp(core, c);
        return;
    }
    if (kind) /* the pattern stands for publishes from here on */
        s->live = core->pat_live = core->ord;
    uint64_t cur = tp ? tp->seq : 0;
    wire_buf_reset(&core->tmp);
    if (sub_encode_subscribed(c->fmt, &core->tmp, sm->id, t, cur) == 0) push_tmp(core, c);
    if (sm->has_seq[i]) {
        uint64_t pos = sm->seqs[i];
        if (kind)
            send_reset(core, c, t, 0, "wildcard"); /* no single position covers a pattern */
        else if (!resume_epoch_ok(core, sm))
            send_reset(core, c, t, cur, "epoch");
        else if (pos > cur)
            send_reset(core, c, t, cur, "ahead");
        else if (!hist_complete(core->hist, tp, pos))
            send_reset(core, c, t, cur, "evicted");
        else if (pos < cur) {
            struct replay r = {core, c};
            core->hist->ops->since(core->hist, tp, pos, on_replay, &r);
        }
    }
    if (tp) s->since = cur; /* live from here: anything newer, nothing older */
}

static void on_subscribe(struct core *core, struct conn *c, const struct sub_msg *sm)
{
    if (sm->ntopics == 0) {
        ws_error(core, c, sm, no_topic, WIRE_C_BAD_FIELD, "sub needs at least one topic");
        return;
    }
    for (uint32_t i = 0; i < sm->ntopics && !c->closing; i++)
        subscribe_one(core, c, sm, i);
}

static void on_unsubscribe(struct core *core, struct conn *c, const struct sub_msg *sm)
{
    if (sm->ntopics == 0)
        ws_error(core, c, sm, no_topic, WIRE_C_BAD_FIELD, "unsub needs at least one topic");
    for (uint32_t i = 0; i < sm->ntopics && !c->closing; i++) {
        struct wire_str t = sm->topics[i];
        struct sub *s = topic_sub_pattern(c->subs, t.p, t.len);
        if (!s) {
            struct topic *tp = topic_find(&core->topics, t.p, t.len);
            s = tp ? topic_sub_of(c->subs, tp) : NULL;
        }
        if (!s) {
            ws_error(core, c, sm, t, WIRE_C_NOT_SUBSCRIBED, "not subscribed to this topic");
            continue;
        }
        drop_sub(core, c, s);
        wire_buf_reset(&core->tmp);
        if (sub_encode_unsubscribed(c->fmt, &core->tmp, sm->id, t) == 0) push_tmp(core, c);
    }
}

void core_ws_message(struct core *core, struct conn *c, const uint8_t *p, size_t len, int binary)
{
    if (c->closing) return;
    if (binary != (c->fmt == SUB_MSGPACK)) {
        ws_error(core, c, NULL, no_topic, WIRE_C_BAD_FRAME,
                 c->fmt == SUB_MSGPACK ? "this connection speaks msgpack: send binary frames"
                                       : "this connection speaks JSON: send text frames");
        return;
    }
    struct sub_msg *sm = malloc(sizeof(*sm));
    if (!sm) {
        conn_close(core, c, 1011, "out of memory");
        return;
    }
    memset(sm, 0, sizeof(*sm));
    int err = sub_decode(c->fmt, p, len, &core->cfg.lim, sm);
    if (err < 0) {
        int code = wire_code_of(err);
        ws_error(core, c, NULL, no_topic, code, wire_code_name(code));
        free(sm);
        return;
    }
    if (!c->hello && sm->type != SUB_HELLO) {
        ws_error(core, c, sm, no_topic, WIRE_C_HELLO_REQUIRED, "send hello first");
        goto out;
    }
    switch (sm->type) {
    case SUB_HELLO:
        if (c->hello) {
            ws_error(core, c, sm, no_topic, WIRE_C_UNEXPECTED, "hello already done");
        } else if (sm->version != WIRE_VERSION) {
            ws_error(core, c, sm, no_topic, WIRE_C_BAD_VERSION, "protocol version 1 only");
        } else {
            c->hello = 1;
            wire_buf_reset(&core->tmp);
            if (sub_encode_welcome(c->fmt, &core->tmp, WIRE_VERSION, c->name, core->epoch,
                                   "nudged/" NUDGE_VERSION) == 0)
                push_tmp(core, c);
        }
        break;
    case SUB_SUBSCRIBE:
        on_subscribe(core, c, sm);
        break;
    case SUB_UNSUBSCRIBE:
        on_unsubscribe(core, c, sm);
        break;
    case SUB_PING:
        wire_buf_reset(&core->tmp);
        if (sub_encode_pong(c->fmt, &core->tmp, sm->has_id, sm->id) == 0) push_tmp(core, c);
        break;
    case SUB_PONG:
        break;
    default:
        ws_error(core, c, sm, no_topic, WIRE_C_UNEXPECTED, "message not accepted from clients");
    }
out:
    sub_msg_clear(sm);
    free(sm);
}
