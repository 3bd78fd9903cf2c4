/* core: the data path. A publish frame is decoded, every topic name is validated before anything
 * changes (a publish is all or nothing), then each topic gets its next sequence and, if anyone
 * listens, one hint payload per wire format is encoded once and a reference is queued on every
 * subscriber. Queued connections are put on the dirty list; the event loop calls core_flush()
 * once per turn ("before sleep", as Redis does), so a burst of publishes read in one go leaves
 * as one batched write per subscriber.
 *
 * Invariants: a topic's seq grows by exactly one per accepted publish naming it; a connection
 * marked closing gets no more output; a full queue closes the subscriber (4001) rather than
 * dropping a hint silently. */
#include "core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pub.h"
#include "sub.h"

#define CLOSE_SLOW 4001

void core_config_default(struct core_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    wire_limits_default(&cfg->lim);
    cfg->max_subs = 1024;
    cfg->max_queue = 1024;
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
    return topics_init(&core->topics, k0, k1);
}

void core_close(struct core *core)
{
    topics_free(&core->topics);
    wire_buf_free(&core->tmp);
}

void core_conn_open(struct core *core, struct conn *c, enum conn_kind kind,
                    const struct conn_ops *ops, void *io)
{
    c->ops = ops;
    c->io = io;
    c->kind = kind;
    c->id = ++core->next_id;
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
    if (c->dirty_prev) c->dirty_prev->dirty_next = c->dirty_next;
    else core->dirty = c->dirty_next;
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

void core_conn_gone(struct core *core, struct conn *c)
{
    if (!c->ops) return; /* never opened */
    while (c->subs) {
        struct topic *tp = c->subs->topic;
        topic_unsubscribe(c->subs, &c->subs);
        core->nsubs--;
        if (tp->nsubs == 0 && tp->seq == 0) topic_remove(&core->topics, tp);
    }
    c->nsubs = 0;
    dirty_remove(core, c);
    conn_queue_free(c);
    if (c->prev) c->prev->next = c->next;
    else if (core->conns == c) core->conns = c->next;
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

/* Queue m (taking the caller's reference) on c; a full queue closes c as a slow consumer. */
static void push(struct core *core, struct conn *c, struct msg *m)
{
    if (c->closing) {
        msg_unref(m);
        return;
    }
    if (c->qlen >= core->cfg.max_queue) {
        /* A burst read in one go can fill a healthy subscriber's queue before the loop's flush
         * pass: write now, and call it slow only if the socket cannot take it. */
        dirty_remove(core, c);
        c->ops->flush(c);
        if (c->closing) {
            msg_unref(m);
            return;
        }
    }
    int rc = conn_push(c, m, core->cfg.max_queue);
    if (rc == -ENOBUFS) {
        core->st.slow_closes++;
        conn_close(core, c, CLOSE_SLOW, "slow consumer: outbound queue full");
        return;
    }
    if (rc < 0) {
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
    push(core, c, m);
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
    for (struct conn *c = core->conns; c; c = c->next) conn_close(core, c, code, reason);
}

/* ---- publishers ------------------------------------------------------------------------- */

static void pub_error(struct core *core, struct wire_buf *out, uint64_t id, int code,
                      const char *fmt, const char *detail)
{
    char msg[160];
    snprintf(msg, sizeof(msg), fmt, detail ? detail : "");
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
    core->st.errors++;
    pub_encode_error(out, 0, wire_code_of(err), msg);
}

/* Encode the hint for tp/seq in format f into a new message; NULL on failure. */
static struct msg *encode_hint(struct core *core, enum sub_fmt f, const struct topic *tp,
                               uint64_t seq, const struct pub_msg *pm, int own)
{
    struct sub_hint h = {
        .topic = {tp->name, tp->len},
        .seq = seq,
        .data = pm->data,
        .data_len = pm->data_len,
        .count = 1,
        .own = own,
    };
    wire_buf_reset(&core->tmp);
    if (sub_encode_hint(f, &core->tmp, &h) < 0) return NULL;
    return msg_copy(core->tmp.data, core->tmp.len);
}

static int is_origin(const struct conn *c, const struct pub_msg *pm)
{
    return pm->origin.len && pm->origin.len == strlen(c->name) &&
           memcmp(pm->origin.p, c->name, pm->origin.len) == 0;
}

static void fan_out(struct core *core, struct topic *tp, uint64_t seq, const struct pub_msg *pm)
{
    struct msg *enc[2] = {NULL, NULL}; /* one payload per wire format, encoded on first use */
    for (struct sub *s = tp->subs; s; s = s->tnext) {
        struct conn *c = s->conn;
        if (c->closing) continue;
        enum sub_fmt f = c->fmt;
        struct msg *m;
        if (is_origin(c, pm)) { /* the connection that caused the change: its own copy */
            m = encode_hint(core, f, tp, seq, pm, 1);
        } else {
            if (!enc[f]) enc[f] = encode_hint(core, f, tp, seq, pm, 0);
            m = enc[f] ? msg_ref(enc[f]) : NULL;
        }
        if (!m) {
            conn_close(core, c, 1011, "out of memory");
            continue;
        }
        core->st.deliveries++;
        push(core, c, m);
    }
    msg_unref(enc[0]);
    msg_unref(enc[1]);
}

static int on_publish(struct core *core, struct conn *c, const struct pub_msg *pm,
                      struct wire_buf *out)
{
    uint64_t seqs[WIRE_TOPICS_MAX];
    char detail[48];
    if (pm->ntopics == 0) {
        pub_error(core, out, pm->id, WIRE_C_BAD_FIELD, "publish needs at least one topic%s", "");
        return 0;
    }
    for (uint32_t i = 0; i < pm->ntopics; i++) {
        if (wire_topic_check(pm->topics[i].p, pm->topics[i].len, &core->cfg.lim) < 0) {
            snprintf(detail, sizeof(detail), "%u", i);
            pub_error(core, out, pm->id, WIRE_C_BAD_TOPIC,
                      "topic %s: empty, too long, bad UTF-8, or holds a space, control char or '*'",
                      detail);
            return 0;
        }
    }
    for (uint32_t i = 0; i < pm->ntopics; i++) {
        struct topic *tp = topic_get(&core->topics, pm->topics[i].p, pm->topics[i].len);
        if (!tp) {
            pub_error(core, out, pm->id, WIRE_C_INTERNAL, "out of memory%s", "");
            return 0; /* topics before i were published: the ack is lost, not the hints */
        }
        seqs[i] = ++tp->seq;
        core->st.hints++;
        if (tp->nsubs) fan_out(core, tp, seqs[i], pm);
    }
    core->st.publishes++;
    (void)c;
    pub_encode_ack(out, pm->id, seqs, pm->ntopics);
    return 0;
}

int core_pub_frame(struct core *core, struct conn *c, const uint8_t *body, size_t len,
                   struct wire_buf *out)
{
    struct pub_msg *pm = malloc(sizeof(*pm)); /* ~10 KB: keep it off the loop's stack */
    int rc = 0;
    if (!pm) {
        pub_error(core, out, 0, WIRE_C_INTERNAL, "out of memory%s", "");
        return -EPROTO;
    }
    memset(pm, 0, sizeof(*pm));
    int err = pub_decode(body, len, &core->cfg.lim, pm);
    if (err < 0) {
        uint64_t id = pm->id; /* the decoder keeps the id when it got that far */
        pub_error(core, out, id, wire_code_of(err), "%s", wire_code_name(wire_code_of(err)));
        if (err == WIRE_EMALFORMED) rc = -EPROTO; /* undecodable: the peer is broken */
        goto out;
    }
    if (!c->hello && pm->type != PUB_HELLO) {
        pub_error(core, out, pm->id, WIRE_C_HELLO_REQUIRED, "send hello first%s", "");
        goto clear;
    }
    switch (pm->type) {
    case PUB_HELLO:
        if (c->hello) {
            pub_error(core, out, 0, WIRE_C_UNEXPECTED, "hello already done%s", "");
        } else if (pm->version != WIRE_VERSION) {
            pub_error(core, out, 0, WIRE_C_BAD_VERSION, "protocol version 1 only%s", "");
        } else {
            c->hello = 1;
            pub_encode_welcome(out, WIRE_VERSION, core->epoch, "nudged/" NUDGE_VERSION,
                               &core->cfg.lim);
        }
        break;
    case PUB_PUBLISH:
        rc = on_publish(core, c, pm, out);
        break;
    case PUB_PING:
        pub_encode_pong(out, pm->id);
        break;
    case PUB_PONG:
        break;
    default:
        pub_error(core, out, pm->id, WIRE_C_UNEXPECTED, "message not accepted from publishers%s",
                  "");
    }
clear:
    pub_msg_clear(pm);
out:
    free(pm);
    return rc;
}

/* ---- WebSocket subscribers --------------------------------------------------------------- */

static void ws_error(struct core *core, struct conn *c, const struct sub_msg *sm,
                     struct wire_str topic, int code, const char *msg)
{
    core->st.errors++;
    wire_buf_reset(&core->tmp);
    if (sub_encode_error(c->fmt, &core->tmp, sm ? sm->has_id : 0, sm ? sm->id : 0, topic, code,
                         msg) == 0)
        push_tmp(core, c);
}

static const struct wire_str no_topic = {NULL, 0};

static void on_subscribe(struct core *core, struct conn *c, const struct sub_msg *sm)
{
    if (sm->ntopics == 0) {
        ws_error(core, c, sm, no_topic, WIRE_C_BAD_FIELD, "sub needs at least one topic");
        return;
    }
    for (uint32_t i = 0; i < sm->ntopics && !c->closing; i++) {
        struct wire_str t = sm->topics[i];
        if (wire_topic_check(t.p, t.len, &core->cfg.lim) < 0) {
            ws_error(core, c, sm, t, WIRE_C_BAD_TOPIC,
                     "topic empty, too long, bad UTF-8, or holds a space, control char or '*'");
            continue;
        }
        struct topic *tp = topic_find(&core->topics, t.p, t.len);
        if (!tp || !topic_sub_of(c->subs, tp)) {
            if (c->nsubs >= core->cfg.max_subs) {
                ws_error(core, c, sm, t, WIRE_C_TOO_MANY_SUBS,
                         "subscriptions per connection over max_subs");
                continue;
            }
            if (!tp) tp = topic_get(&core->topics, t.p, t.len);
            if (!tp || !topic_subscribe(tp, c, &c->subs)) {
                if (tp && tp->nsubs == 0 && tp->seq == 0) topic_remove(&core->topics, tp);
                ws_error(core, c, sm, t, WIRE_C_INTERNAL, "out of memory");
                continue;
            }
            c->nsubs++;
            core->nsubs++;
        }
        wire_buf_reset(&core->tmp);
        if (sub_encode_subscribed(c->fmt, &core->tmp, sm->id, t, tp->seq) == 0) push_tmp(core, c);
    }
}

static void on_unsubscribe(struct core *core, struct conn *c, const struct sub_msg *sm)
{
    if (sm->ntopics == 0)
        ws_error(core, c, sm, no_topic, WIRE_C_BAD_FIELD, "unsub needs at least one topic");
    for (uint32_t i = 0; i < sm->ntopics && !c->closing; i++) {
        struct wire_str t = sm->topics[i];
        struct topic *tp = topic_find(&core->topics, t.p, t.len);
        struct sub *s = tp ? topic_sub_of(c->subs, tp) : NULL;
        if (!s) {
            ws_error(core, c, sm, t, WIRE_C_NOT_SUBSCRIBED, "not subscribed to this topic");
            continue;
        }
        topic_unsubscribe(s, &c->subs);
        c->nsubs--;
        core->nsubs--;
        if (tp->nsubs == 0 && tp->seq == 0) topic_remove(&core->topics, tp);
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
