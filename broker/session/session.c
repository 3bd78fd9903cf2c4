/* session: see session.h. Every frame decodes into the session's scratch (struct pub_msg or
 * struct sub_msg, ~10 KB each with their fixed topic arrays), which is cleared after use: the
 * msgpack paths allocate nothing per frame; JSON subscriber messages allocate inside jansson.
 * Errors that only concern one request are answered and the connection stays; a stream that can
 * no longer be framed or decoded is answered and closed. */
#include "session.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hpub.h"
#include "match.h"
#include "subs.h"

static const struct wire_limits *limits(const struct session *s)
{
    return &s->engine->cfg.lim;
}

/* ---- publishers -------------------------------------------------------------------------- */

/* Credentials refused: the transport logs it (conn_ops.refused), with the peer it knows. */
static void refused(struct conn *c, const char *why)
{
    if (c->ops && c->ops->refused) c->ops->refused(c, auth_refusal_name(why), why);
}

static void pub_error(struct session *s, struct conn *c, uint64_t id, int code, const char *msg)
{
    stat_add(&s->hub->st.errors, 1);
    if (c->pub->http) {
        c->pub->code = code;
        hpub_encode_error(&c->pub->out, code, msg);
    } else {
        pub_encode_error(&c->pub->out, id, code, msg);
    }
}

static void pub_ack(struct conn *c, uint64_t id, const uint64_t *seqs, uint32_t n)
{
    if (c->pub->http) {
        c->pub->code = 0;
        hpub_encode_ack(&c->pub->out, seqs, n);
    } else {
        pub_encode_ack(&c->pub->out, id, seqs, n);
    }
}

void session_pub_stream_error(struct session *s, struct conn *c, int err)
{
    char msg[96];
    if (err == WIRE_ETOOBIG)
        snprintf(msg, sizeof(msg), "frame longer than max_frame (%u bytes)", limits(s)->max_frame);
    else
        snprintf(msg, sizeof(msg), "invalid frame length");
    pub_error(s, c, 0, wire_code_of(err), msg);
    hub_conn_reply(s->hub, c);
}

/* One publish on its way through the engine and the store: its ack is owed to c. */
struct pubreq {
    struct hub_job job; /* posted back to this session's hub when completed on another thread */
    struct engine_pub p;
    struct session *s;
    struct conn *c; /* NULL once the connection is gone */
    struct pubreq *cprev, *cnext;
    uint64_t id;
    int in_call;     /* 1: engine_publish is running (a completion now is on this thread); 2: it
                        completed inside the call */
    char origin[24]; /* a copy: the frame it came in is gone by the time a store completes */
};

#define SPARE_MAX 64

static struct pubreq *req_get(struct session *s)
{
    struct pubreq *r = s->spare;
    if (r) {
        s->spare = r->cnext;
        s->nspare--;
        return r;
    }
    return malloc(sizeof(*r));
}

static void req_put(struct session *s, struct pubreq *r)
{
    if (s->nspare >= SPARE_MAX) {
        free(r);
        return;
    }
    r->cnext = s->spare;
    s->spare = r;
    s->nspare++;
}

static void req_unlink(struct pubreq *r)
{
    struct conn *c = r->c;
    if (!c) return;
    if (r->cprev)
        r->cprev->cnext = r->cnext;
    else
        c->pub->pubs = r->cnext;
    if (r->cnext) r->cnext->cprev = r->cprev;
    c->pub->npubs--;
    r->c = NULL;
}

/* The store completed r: ack (or refuse) on its connection, if still there. */
static void req_done(struct pubreq *r)
{
    struct session *s = r->s;
    struct conn *c = r->c;
    struct engine_pub *p = &r->p;
    if (c && !c->closing) {
        if (p->err == -ENOSPC)
            pub_error(s, c, r->id, WIRE_C_STORAGE,
                      "the broker could not store the publish: disk full or --disk-max reached");
        else if (p->err == -EIO || p->err == -EINVAL)
            pub_error(s, c, r->id, WIRE_C_STORAGE,
                      engine_lags(s->engine)
                          ? "the cluster's Redis did not take the publish (unreachable or too slow)"
                          : "the broker's data directory failed");
        else if (p->err)
            pub_error(s, c, r->id, WIRE_C_INTERNAL, "out of memory");
        else
            pub_ack(c, r->id, p->seqs, p->ntopics);
    }
    req_unlink(r);
    if (c) hub_conn_reply(s->hub, c);
    req_put(s, r);
}

static void on_job(void *arg, struct hub_job *j)
{
    (void)arg;
    req_done((struct pubreq *)j);
}

static int64_t wall_s(void)
{
    return (int64_t)(store_wall_ms() / 1000);
}

int session_init(struct session *s, struct hub *hub, struct auth *auth)
{
    memset(s, 0, sizeof(*s));
    s->hub = hub;
    s->engine = hub->engine;
    s->auth = auth;
    s->now_s = wall_s;
    hub_on_job(hub, on_job, s);
    return 0;
}

void session_close(struct session *s)
{
    hub_drain(s->hub); /* completions posted after the loop ended: their connections are gone */
    while (s->spare) {
        struct pubreq *r = s->spare;
        s->spare = r->cnext;
        free(r);
    }
    s->nspare = 0;
    wire_buf_free(&s->tmp);
}

/* engine_pub_fn: on this thread within engine_publish (memory store), or on whichever thread
 * polled the store (a persisted store): then the connection's own thread takes it over. */
static void published(void *arg, struct engine_pub *p)
{
    struct pubreq *r = arg;
    (void)p;
    if (r->in_call)
        r->in_call = 2; /* on_publish finishes it once the engine returned */
    else
        hub_post(r->s->hub, &r->job);
}

void session_pub_gone(struct session *s, struct conn *c)
{
    (void)s;
    while (c->pub->pubs)
        req_unlink(c->pub->pubs);
}

static void on_publish(struct session *s, struct conn *c, const struct pub_msg *pm, uint64_t now)
{
    char msg[128];
    if (!auth_pub_allow(s->auth, c->pub->key, now * 1000000)) {
        snprintf(msg, sizeof(msg), "over the publish rate of API key %.40s (%u a second)",
                 c->pub->key->name, c->pub->key->rate);
        pub_error(s, c, pm->id, WIRE_C_RATE_LIMITED, msg);
        return;
    }
    for (uint32_t i = 0; i < pm->ntopics; i++)
        if (!auth_can_publish(c->pub->key, pm->topics[i].p, pm->topics[i].len)) {
            stat_add(&s->auth->st->forbidden, 1);
            snprintf(msg, sizeof(msg), "topic %u: outside the patterns of this API key (%.40s)",
                     (unsigned)i, c->pub->key->name);
            pub_error(s, c, pm->id, WIRE_C_FORBIDDEN, msg);
            return;
        }
    struct pubreq *r = req_get(s);
    if (!r) {
        pub_error(s, c, pm->id, WIRE_C_INTERNAL, "out of memory");
        return;
    }
    struct engine_pub *p = &r->p;
    p->topics = pm->topics;
    p->ntopics = pm->ntopics;
    p->data = pm->data;
    p->data_len = (uint32_t)pm->data_len;
    /* An origin longer than any connection id names none: the same as no origin. */
    p->origin = (struct wire_str){r->origin, 0};
    if (pm->origin.len && pm->origin.len < sizeof(r->origin)) {
        memcpy(r->origin, pm->origin.p, pm->origin.len);
        p->origin.len = pm->origin.len;
    }
    p->skip_origin = pm->skip_origin;
    r->s = s;
    r->id = pm->id;
    r->c = c;
    r->cprev = NULL;
    r->cnext = c->pub->pubs;
    if (c->pub->pubs) c->pub->pubs->cprev = r;
    c->pub->pubs = r;
    c->pub->npubs++;
    /* The topics and data are copied into hints inside engine_publish; the context (with the
     * origin) lives until the store completes. in_call is read by a completion under the
     * engine lock, so it is set and cleared under it. */
    engine_lock(s->engine);
    r->in_call = 1;
    int rc = engine_publish(s->engine, p, now, published, r);
    int done_now = r->in_call == 2;
    r->in_call = 0;
    engine_unlock(s->engine);
    if (rc == 0) {
        if (done_now) req_done(r); /* else the completion's, later */
        return;
    }
    req_unlink(r);
    req_put(s, r);
    if (rc == -EINVAL && pm->ntopics == 0) {
        pub_error(s, c, pm->id, WIRE_C_BAD_FIELD, "publish needs at least one topic");
    } else if (rc == -EINVAL) {
        snprintf(msg, sizeof(msg),
                 "topic %u: empty, too long, bad UTF-8, or holds a space, control char or '*'",
                 (unsigned)p->seqs[0]);
        pub_error(s, c, pm->id, WIRE_C_BAD_TOPIC, msg);
    } else if (rc == -ENOSPC) {
        pub_error(s, c, pm->id, WIRE_C_LIMIT,
                  "the broker knows too many topics (--max-topics-total)");
    } else {
        pub_error(s, c, pm->id, WIRE_C_INTERNAL, "out of memory");
    }
}

int session_pub_frame(struct session *s, struct conn *c, const uint8_t *body, size_t len,
                      uint64_t now_ms)
{
    struct pub_msg *pm = &s->pm;
    int rc = 0;
    int err = pub_decode(body, len, limits(s), pm);
    if (err < 0) {
        int code = wire_code_of(err);
        pub_error(s, c, pm->id, code, wire_code_name(code)); /* id when decoded that far */
        if (err == WIRE_EMALFORMED) rc = -EPROTO;            /* undecodable: the peer is broken */
        goto out;
    }
    if (!c->hello && pm->type != PUB_HELLO) {
        pub_error(s, c, pm->id, WIRE_C_HELLO_REQUIRED, "send hello first");
        goto out;
    }
    switch (pm->type) {
    case PUB_HELLO:
        if (c->hello) {
            pub_error(s, c, 0, WIRE_C_UNEXPECTED, "hello already done");
        } else if (pm->version != WIRE_VERSION) {
            pub_error(s, c, 0, WIRE_C_BAD_VERSION, "protocol version 1 only");
        } else {
            const char *why = "credentials refused";
            int code = auth_pub_hello(s->auth, pm->auth, pm->auth_len, &c->pub->key, &why);
            if (code) {
                refused(c, why);
                pub_error(s, c, 0, code, why);
                rc = -EPROTO;
                break;
            }
            c->hello = 1;
            pub_encode_welcome(&c->pub->out, WIRE_VERSION, engine_epoch(s->engine),
                               "nudged/" NUDGE_VERSION, limits(s));
        }
        break;
    case PUB_PUBLISH:
        on_publish(s, c, pm, now_ms);
        break;
    case PUB_PING:
        pub_encode_pong(&c->pub->out, pm->id);
        break;
    case PUB_PONG:
        break;
    default:
        pub_error(s, c, pm->id, WIRE_C_UNEXPECTED, "message not accepted from publishers");
    }
out:
    pub_msg_clear(pm);
    hub_conn_reply(s->hub, c);
    return rc;
}

void session_pub_http(struct session *s, struct conn *c, const char *key, size_t key_len,
                      const uint8_t *body, size_t len, uint64_t now_ms)
{
    struct pub_msg *pm = &s->pm;
    const char *why = "credentials refused";
    int code = auth_pub_key(s->auth, key, key_len, &c->pub->key, &why);
    if (code) {
        refused(c, why);
        pub_error(s, c, 0, code,
                  key ? why : "this broker requires an API key: Authorization: Bearer KEY");
        goto out;
    }
    int err = hpub_decode(body, len, limits(s), pm);
    if (err < 0) {
        char msg[128];
        code = wire_code_of(err);
        if (err == WIRE_EMALFORMED)
            snprintf(msg, sizeof(msg), "the body is not a JSON object (in UTF-8)");
        else if (err == WIRE_EFIELD)
            snprintf(msg, sizeof(msg),
                     "\"topics\" must be a non-empty array of strings, "
                     "\"origin\" a string, \"skip_origin\" a boolean");
        else if (err == WIRE_ETOOMANY)
            snprintf(msg, sizeof(msg), "more than max_topics (%u) topics", limits(s)->max_topics);
        else if (err == WIRE_EDATA)
            snprintf(msg, sizeof(msg), "data over max_data (%u bytes as msgpack)",
                     limits(s)->max_data);
        else
            snprintf(msg, sizeof(msg), "%s", wire_code_name(code));
        pub_error(s, c, 0, code, msg);
        goto out;
    }
    on_publish(s, c, pm, now_ms);
    hpub_msg_clear(pm);
out:
    hub_conn_reply(s->hub, c);
}

/* ---- subscribers ------------------------------------------------------------------------- */

static const struct wire_str no_topic = {NULL, 0};

static void sub_error(struct session *s, struct conn *c, const struct sub_msg *sm, int code,
                      const char *msg)
{
    hub_error(s->hub, c, sm ? sm->has_id : 0, sm ? sm->id : 0, no_topic, code, msg);
}

/* Refused by the namespace rules (docs/security.md). An invalid name is left to the hub, whose
 * bad_topic says more. */
static int forbidden(struct session *s, struct conn *c, const struct sub_msg *sm, uint32_t i)
{
    struct wire_str t = sm->topics[i];
    if (match_kind(t.p, t.len) < 0 || auth_can_read(s->auth, c->grant, t.p, t.len)) return 0;
    stat_add(&s->auth->st->forbidden, 1);
    hub_error(s->hub, c, sm->has_id, sm->id, t, WIRE_C_FORBIDDEN,
              c->grant->kind == AUTH_ANON
                  ? "not a public topic: anonymous connections read the --anonymous patterns"
                  : "this token does not allow this topic or pattern");
    return 1;
}

static void on_subscribe(struct session *s, struct conn *c, const struct sub_msg *sm)
{
    if (sm->ntopics == 0) {
        sub_error(s, c, sm, WIRE_C_BAD_FIELD, "sub needs at least one topic");
        return;
    }
    for (uint32_t i = 0; i < sm->ntopics && !c->closing; i++) {
        if (forbidden(s, c, sm, i)) continue;
        struct hub_sub r = {.has_id = sm->has_id,
                            .id = sm->id,
                            .topic = sm->topics[i],
                            .has_pos = sm->has_seq[i],
                            .pos = sm->seqs[i],
                            .epoch = sm->epoch,
                            .replay_all = sm->replay_all};
        hub_subscribe(s->hub, c, &r);
    }
}

static void on_unsubscribe(struct session *s, struct conn *c, const struct sub_msg *sm)
{
    if (sm->ntopics == 0) sub_error(s, c, sm, WIRE_C_BAD_FIELD, "unsub needs at least one topic");
    for (uint32_t i = 0; i < sm->ntopics && !c->closing; i++)
        hub_unsubscribe(s->hub, c, sm->has_id, sm->id, sm->topics[i]);
}

/* ---- credentials over a connection's life ---------------------------------------------------- */

/* c holds a new grant: session_expire must look again by its expiry. */
static void grant_note(struct session *s, const struct conn *c)
{
    const struct auth_grant *g = c->grant;
    if (g->kind == AUTH_USER && (s->next_exp == 0 || g->exp < s->next_exp)) s->next_exp = g->exp;
}

void session_conn_gone(struct session *s, struct conn *c)
{
    (void)s;
    if (!c->grant) return;
    auth_grant_free(c->grant);
    c->grant = NULL;
}

/* Send what is queued (the error explaining the close) before closing: a close drops the
 * queue. */
static void end_conn(struct session *s, struct conn *c, int code, const char *reason)
{
    c->ops->flush(c);
    hub_conn_close(s->hub, c, code, reason);
}

uint32_t session_expire(struct session *s)
{
    int64_t now = s->now_s(), leeway = s->auth->rules.leeway_s;
    if (s->next_exp == 0 || s->next_exp + leeway > now) return 0; /* nothing due yet */
    /* Walk every connection (grants keep no list, to stay small): only when one may be due,
     * which at most once a second (worker.c) costs a pass over this worker's connections. */
    uint32_t n = 0;
    int64_t next = 0;
    for (struct conn *c = s->hub->conns, *nc; c; c = nc) {
        nc = c->next;
        const struct auth_grant *g = c->grant;
        if (c->role != CONN_SUB || !g || g->kind != AUTH_USER || c->closing) continue;
        if (g->exp + leeway > now) {
            if (next == 0 || g->exp < next) next = g->exp;
            continue;
        }
        hub_error(s->hub, c, 0, 0, no_topic, WIRE_C_TOKEN_EXPIRED,
                  "the token expired: get a new one, then reconnect and resume");
        stat_add(&s->auth->st->expired, 1);
        end_conn(s, c, 4002, "token expired");
        n++;
    }
    s->next_exp = next;
    return n;
}

/* Unsubscribe c from what its grant no longer reads under s->auth (a refresh's new token, a
 * reload's new rules), each with the request's id when has_id. Returns 0, or -ENOMEM (c was
 * closed with 1011). */
static int drop_unreadable(struct session *s, struct conn *c, int has_id, uint64_t id)
{
    /* Names first, then unsubscribe: dropping a subscription frees the name it holds. */
    char *drop = NULL;
    size_t ndrop = 0, used = 0;
    for (struct sub *x = c->subs; x; x = x->cnext) {
        const char *name = x->pat ? x->pat : x->topic->name;
        size_t len = x->pat ? x->patlen : x->topic->node.len;
        if (auth_can_read(s->auth, c->grant, name, len)) continue;
        char *nd = realloc(drop, used + len + 1);
        if (!nd) {
            free(drop);
            hub_conn_close(s->hub, c, 1011, "out of memory");
            return -ENOMEM;
        }
        drop = nd;
        memcpy(drop + used, name, len);
        drop[used + len] = '\0';
        used += len + 1;
        ndrop++;
    }
    for (size_t i = 0, off = 0; i < ndrop && !c->closing; i++) {
        struct wire_str t = {drop + off, (uint32_t)strlen(drop + off)};
        hub_unsubscribe(s->hub, c, has_id, id, t);
        off += t.len + 1;
    }
    free(drop);
    return 0;
}

int session_user(struct session *s, const char *user, size_t len, int revoke,
                 struct session_uconn **out, uint32_t *n)
{
    int rc = 0;
    uint32_t cap = *n;
    for (struct conn *c = s->hub->conns, *next; c; c = next) {
        next = c->next;
        const struct auth_grant *g = c->grant;
        if (c->role != CONN_SUB || !g || g->kind != AUTH_USER || c->closing || g->sub_len != len ||
            memcmp(g->sub, user, len))
            continue;
        if (rc == 0 && *n == cap) {
            uint32_t ncap = cap ? 2 * cap : 8;
            struct session_uconn *m = realloc(*out, ncap * sizeof(*m));
            if (m) {
                *out = m;
                cap = ncap;
            } else {
                rc = -ENOMEM;
            }
        }
        if (rc == 0) {
            struct session_uconn *u = &(*out)[(*n)++];
            memset(u, 0, sizeof(*u));
            memcpy(u->id, c->name, c->name_len < sizeof(u->id) ? c->name_len : sizeof(u->id) - 1);
            if (c->ops->describe) c->ops->describe(c, u->peer, sizeof(u->peer), &u->since_ms);
            u->subs = c->nsubs;
        }
        if (revoke) {
            hub_error(s->hub, c, 0, 0, no_topic, WIRE_C_UNAUTHORIZED,
                      "the operator revoked this user's tokens: get a new token, then reconnect");
            end_conn(s, c, SESSION_CLOSE_REVOKED, "revoked");
        }
    }
    return rc;
}

/* A fresh token on a live connection: the same sub, a later (or equal) expiry; subscriptions
 * the new token no longer allows are dropped (unsubscribed, with the refresh's id). */
static void on_refresh(struct session *s, struct conn *c, const struct sub_msg *sm)
{
    struct auth_grant *old = c->grant, *g = NULL;
    if (old->kind != AUTH_USER) {
        sub_error(s, c, sm, WIRE_C_UNEXPECTED,
                  old->kind == AUTH_OPEN ? "this broker takes no tokens: nothing to refresh"
                                         : "an anonymous connection has no token to refresh");
        return;
    }
    const char *why = "credentials refused";
    int code = auth_refresh(s->auth, old, sm->token, s->now_s(), &g, &why);
    if (code) {
        refused(c, why);
        sub_error(s, c, sm, code, why);
        end_conn(s, c, 4003, "token refresh refused");
        return;
    }
    c->grant = g;
    grant_note(s, c);
    auth_grant_free(old);
    if (drop_unreadable(s, c, sm->has_id, sm->id) < 0) return;
    wire_buf_reset(&s->tmp);
    if (sub_encode_refreshed(c->fmt, &s->tmp, sm->has_id, sm->id, (uint64_t)g->exp) == 0)
        hub_push_bytes(s->hub, c, s->tmp.data, s->tmp.len);
}

void session_reload(struct session *s, struct auth *a)
{
    s->auth = a;
    for (struct conn *c = s->hub->conns, *next; c; c = next) {
        next = c->next;
        if (c->closing || !c->hello) continue;
        if (c->role == CONN_PUB) {
            /* HTTP publishers present their key with every request */
            if (c->pub->http || a->pubs_open) {
                c->pub->key = NULL;
                continue;
            }
            struct auth_key *k = c->pub->key ? auth_key_same(a, c->pub->key) : NULL;
            if (k) {
                atomic_store(&k->tat, atomic_load(&c->pub->key->tat)); /* its rate goes on */
                c->pub->key = k;
                continue;
            }
            pub_error(s, c, 0, WIRE_C_UNAUTHORIZED,
                      c->pub->key ? "the publisher key was withdrawn"
                                  : "this broker now wants an API key");
            end_conn(s, c, 1008, "unauthorized");
            continue;
        }
        if (!c->grant) continue;
        if (c->grant->kind == AUTH_OPEN && !a->subs_open) {
            hub_error(s->hub, c, 0, 0, no_topic, WIRE_C_UNAUTHORIZED,
                      "this broker now wants a token: get one, then reconnect and resume");
            end_conn(s, c, 4003, "unauthorized");
            continue;
        }
        drop_unreadable(s, c, 0, 0);
    }
}

void session_sub_message(struct session *s, struct conn *c, const uint8_t *p, size_t len,
                         int binary, uint64_t now_ms)
{
    (void)now_ms;
    if (c->closing) return;
    if (binary != (c->fmt == SUB_MSGPACK)) {
        sub_error(s, c, NULL, WIRE_C_BAD_FRAME,
                  c->fmt == SUB_MSGPACK ? "this connection speaks msgpack: send binary frames"
                                        : "this connection speaks JSON: send text frames");
        return;
    }
    struct sub_msg *sm = &s->sm;
    int err = sub_decode(c->fmt, p, len, limits(s), sm);
    if (err < 0) {
        int code = wire_code_of(err);
        sub_error(s, c, sm, code, wire_code_name(code)); /* sm keeps the request's id */
        return;
    }
    if (!c->hello && sm->type != SUB_HELLO) {
        sub_error(s, c, sm, WIRE_C_HELLO_REQUIRED, "send hello first");
        goto out;
    }
    switch (sm->type) {
    case SUB_HELLO:
        if (c->hello) {
            sub_error(s, c, sm, WIRE_C_UNEXPECTED, "hello already done");
        } else if (sm->version != WIRE_VERSION) {
            sub_error(s, c, sm, WIRE_C_BAD_VERSION, "protocol version 1 only");
        } else {
            const char *why = "credentials refused";
            int code = auth_sub_hello(s->auth, sm->token, s->now_s(), &c->grant, &why);
            if (code) { /* the client may say hello again with other credentials */
                refused(c, why);
                sub_error(s, c, sm, code, why);
                break;
            }
            grant_note(s, c);
            c->hello = 1;
            wire_buf_reset(&s->tmp);
            if (sub_encode_welcome(c->fmt, &s->tmp, WIRE_VERSION, c->name, engine_epoch(s->engine),
                                   "nudged/" NUDGE_VERSION) == 0)
                hub_push_bytes(s->hub, c, s->tmp.data, s->tmp.len);
        }
        break;
    case SUB_SUBSCRIBE:
        on_subscribe(s, c, sm);
        break;
    case SUB_UNSUBSCRIBE:
        on_unsubscribe(s, c, sm);
        break;
    case SUB_PING:
        wire_buf_reset(&s->tmp);
        /* With patterns, the pong says how far they are caught up: it is queued after every
         * hint released so far, and no hint is ever merged past it. */
        if ((hub_has_pattern(c)
                 ? sub_encode_pong_g(c->fmt, &s->tmp, sm->has_id, sm->id, hub_pattern_mark(s->hub))
                 : sub_encode_pong(c->fmt, &s->tmp, sm->has_id, sm->id)) == 0)
            hub_push_bytes(s->hub, c, s->tmp.data, s->tmp.len);
        break;
    case SUB_PONG:
        break;
    case SUB_REFRESH:
        on_refresh(s, c, sm);
        break;
    default:
        sub_error(s, c, sm, WIRE_C_UNEXPECTED, "message not accepted from clients");
    }
out:
    sub_msg_clear(sm);
}
