/* redis: see redis.h. Everything hiredis touches runs on the link's thread; other threads only
 * queue publishes (under `lock`) and wake it through `async`. hiredis contexts are freed only
 * from the async or timer callbacks, never from inside one of hiredis's own callbacks (which
 * only ask for it: want_drop), so no context is freed under its own feet.
 *
 * One connection lifetime is a session: connect both, load the publish script and adopt (or
 * set) the epoch on the command connection, subscribe on the other, then synchronise (SCAN the
 * records, the range script for each, pipelined; the state script last: replies come in order,
 * so when it answers every record was read). A gap the store saw, or an allocation that failed
 * on the way, asks for another synchronisation on the same connections. */
#include "redis.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uv.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#include <hiredis/adapters/libuv.h>
#pragma GCC diagnostic pop

#include "log.h"

#define KEY_MAX (RELAY_PREFIX_MAX + 16 + WIRE_TOPIC_LEN_MAX)
#define SCAN_COUNT "512"
#define INFLIGHT_MAX 65536 /* publishes sent and not answered; more fail at once (-EIO) */

/* A publish queued by a worker for the link's thread. */
struct out {
    struct out *next;
    uint64_t req;
    uint64_t sent_ms;
    uint32_t tlen, dlen, olen;
    char buf[]; /* topic, data, origin */
};

struct redis {
    struct redis_config cfg;
    struct store *s;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t timer;
    pthread_mutex_t lock; /* queue, stop, resync */
    struct out *qhead, *qtail;
    uint32_t queued;
    int stop;
    int resync;
    char retire[17]; /* an epoch to retire (link_retire), or "" */
    _Atomic int up;  /* both connections up and subscribed: publishes are taken */

    /* the link's thread only */
    redisAsyncContext *cmd, *sub;
    int live;      /* a session is under way (connections opened, not dropped yet) */
    int want_drop; /* a hiredis callback saw the session fail */
    int scripted;  /* the publish script is loaded and the epoch known */
    int subscribed;
    int syncing;
    uint64_t retry_at; /* loop time of the next connection attempt */
    uint32_t backoff_ms;
    uint64_t session_at; /* loop time the session began */
    char sha[41];
    /* Redis's epoch when this session began: publishes carry it. The store adopts it from the
     * synchronisation's start, queued before any message of the session. */
    char sess_epoch[17];
    struct out *ihead, *itail; /* publishes sent, not answered: their replies come in order */
    _Atomic uint32_t inflight; /* written by the link's thread only; /stats reads it */
    char k_epoch[KEY_MAX], k_gpos[KEY_MAX], k_floor[KEY_MAX], k_hints[KEY_MAX], m_pat[KEY_MAX];
    size_t m_len; /* strlen of the record keys' prefix "PREFIX{n}:m:" */
    char stream_ttl[16], record_ttl[16], per_topic[16];
    int logged_down;
};

int redis_prefix_ok(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > RELAY_PREFIX_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
              (p[i] >= '0' && p[i] <= '9') || p[i] == '_' || p[i] == '.' || p[i] == '-'))
            return 0;
    return 1;
}

int redis_parse_url(const char *url, struct redis_config *cfg)
{
    const char *s = url;
    if (strncmp(s, "redis://", 8)) return -EINVAL;
    s += 8;
    const char *host = s, *hend, *colon;
    if (*s == '[') {
        host = s + 1;
        if (!(hend = strchr(host, ']'))) return -EINVAL;
        colon = hend[1] == ':' ? hend + 1 : NULL;
        if (hend[1] && !colon) return -EINVAL;
    } else {
        colon = strrchr(s, ':');
        hend = colon ? colon : s + strlen(s);
    }
    size_t hl = (size_t)(hend - host);
    if (hl == 0 || hl >= sizeof(cfg->host)) return -EINVAL;
    unsigned long port = 6379;
    if (colon) {
        char *end;
        port = strtoul(colon + 1, &end, 10);
        if (colon[1] == '\0' || *end || port == 0 || port > 65535) return -EINVAL;
    }
    memcpy(cfg->host, host, hl);
    cfg->host[hl] = '\0';
    cfg->port = (uint16_t)port;
    return 0;
}

/* ---- any thread ---------------------------------------------------------------------------- */

static int link_publish(void *arg, uint64_t req, const char *topic, size_t tlen,
                        const uint8_t *data, size_t dlen, const char *origin, size_t olen)
{
    struct redis *r = arg;
    if (!atomic_load_explicit(&r->up, memory_order_acquire)) return -EIO;
    struct out *o = malloc(sizeof(*o) + tlen + dlen + olen);
    if (!o) return -ENOMEM;
    o->next = NULL;
    o->req = req;
    o->tlen = (uint32_t)tlen, o->dlen = (uint32_t)dlen, o->olen = (uint32_t)olen;
    memcpy(o->buf, topic, tlen);
    if (dlen) memcpy(o->buf + tlen, data, dlen);
    memcpy(o->buf + tlen + dlen, origin, olen);
    pthread_mutex_lock(&r->lock);
    int wake = r->qhead == NULL;
    if (r->qtail)
        r->qtail->next = o;
    else
        r->qhead = o;
    r->qtail = o;
    r->queued++;
    pthread_mutex_unlock(&r->lock);
    if (wake) uv_async_send(&r->async);
    return 0;
}

static void link_retire(void *arg, const char *epoch)
{
    struct redis *r = arg;
    pthread_mutex_lock(&r->lock);
    snprintf(r->retire, sizeof(r->retire), "%s", epoch);
    pthread_mutex_unlock(&r->lock);
    uv_async_send(&r->async);
}

static void link_resync(void *arg)
{
    struct redis *r = arg;
    pthread_mutex_lock(&r->lock);
    r->resync = 1;
    pthread_mutex_unlock(&r->lock);
    uv_async_send(&r->async);
}

uint32_t redis_inflight(const struct redis *r)
{
    return atomic_load_explicit(&r->inflight, memory_order_relaxed);
}

int redis_up(const struct redis *r)
{
    return atomic_load_explicit(&r->up, memory_order_acquire);
}

struct redis *redis_new(const struct redis_config *cfg, struct cluster_link *link)
{
    struct redis *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->cfg = *cfg;
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r);
        return NULL;
    }
    const char *p = cfg->prefix;
    relay_key(r->k_epoch, KEY_MAX, p, "epoch", NULL, 0);
    relay_key(r->k_gpos, KEY_MAX, p, "gpos", NULL, 0);
    relay_key(r->k_floor, KEY_MAX, p, "floor", NULL, 0);
    relay_key(r->k_hints, KEY_MAX, p, "hints", NULL, 0);
    r->m_len = (size_t)relay_key(r->m_pat, KEY_MAX, p, "m", "", 0);
    snprintf(r->m_pat + r->m_len, KEY_MAX - r->m_len, "*");
    snprintf(r->stream_ttl, sizeof(r->stream_ttl), "%u", cfg->hist_age_s ? cfg->hist_age_s : 1);
    snprintf(r->record_ttl, sizeof(r->record_ttl), "%u", cfg->horizon_s ? cfg->horizon_s : 1);
    snprintf(r->per_topic, sizeof(r->per_topic), "%u", cfg->per_topic);
    *link = (struct cluster_link){
        .publish = link_publish, .resync = link_resync, .retire = link_retire, .arg = r};
    return r;
}

/* ---- the link's thread --------------------------------------------------------------------- */

static void fail_out(struct redis *r, struct out *o, int err, const char *epoch_now)
{
    cluster_failed(r->s, o->req, err, epoch_now);
    free(o);
}

/* The session failed (or the link stops): close both connections, tell the store, and try
 * again after the backoff. Never called from inside a hiredis callback. */
static void drop(struct redis *r, const char *why)
{
    if (!r->live) return;
    r->live = 0;
    r->want_drop = 0;
    atomic_store_explicit(&r->up, 0, memory_order_release);
    redisAsyncContext *a = r->cmd, *b = r->sub;
    r->cmd = r->sub = NULL;
    if (a) redisAsyncFree(a); /* pending reply callbacks run with NULL */
    if (b) redisAsyncFree(b);
    while (r->ihead) {
        struct out *o = r->ihead;
        r->ihead = o->next;
        free(o); /* the store fails them all below */
    }
    r->itail = NULL;
    atomic_store_explicit(&r->inflight, 0, memory_order_relaxed);
    r->scripted = r->subscribed = r->syncing = 0;
    cluster_down(r->s);
    if (!r->logged_down && why) {
        LOGF(LOG_WARN, "redis %s:%u: %s; publishes fail until it is back (retrying)", r->cfg.host,
             r->cfg.port, why);
        r->logged_down = 1;
    }
    r->retry_at = uv_now(&r->loop) + r->backoff_ms;
    r->backoff_ms = r->backoff_ms ? (r->backoff_ms * 2 > 2000 ? 2000 : r->backoff_ms * 2) : 100;
}

static void want_drop(struct redis *r)
{
    r->want_drop = 1;
    uv_async_send(&r->async);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    (void)status;
    if (r->cmd == ac) r->cmd = NULL;
    if (r->sub == ac) r->sub = NULL;
    if (r->live) want_drop(r);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct redis *r = ac->data;
    if (status == REDIS_OK) return;
    /* hiredis frees a context whose connect failed, without its disconnect callback */
    if (r->cmd == ac) r->cmd = NULL;
    if (r->sub == ac) r->sub = NULL;
    if (r->live) want_drop(r);
}

static void start_sync(struct redis *r);

/* The state script answered: every record was read. */
static void on_state(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis *r = ac->data;
    redisReply *x = reply;
    (void)priv;
    if (!x) return;
    if (x->type != REDIS_REPLY_ARRAY || x->elements != 3 ||
        x->element[0]->type != REDIS_REPLY_STRING || x->element[1]->type != REDIS_REPLY_INTEGER ||
        x->element[2]->type != REDIS_REPLY_INTEGER) {
        want_drop(r);
        return;
    }
    r->syncing = 0;
    cluster_synced(r->s, x->element[0]->str, (uint64_t)x->element[1]->integer,
                   (uint64_t)x->element[2]->integer);
    if (r->logged_down)
        LOGF(LOG_INFO, "redis %s:%u: connected and synchronised", r->cfg.host, r->cfg.port);
    r->logged_down = 0;
    r->backoff_ms = 0;
}

/* The range script's reply for one record: [epoch, known, base, seq, gpos, [messages]]. */
static void on_range(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis *r = ac->data;
    redisReply *x = reply;
    char *topic = priv;
    if (!x) {
        free(topic);
        return;
    }
    if (x->type == REDIS_REPLY_ARRAY && x->elements == 6 &&
        x->element[1]->type == REDIS_REPLY_INTEGER && x->element[1]->integer == 1 &&
        x->element[5]->type == REDIS_REPLY_ARRAY) {
        redisReply *m = x->element[5];
        size_t n = m->elements;
        const uint8_t *msgs[n ? n : 1];
        size_t lens[n ? n : 1];
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            if (m->element[i]->type == REDIS_REPLY_STRING) {
                msgs[k] = (const uint8_t *)m->element[i]->str;
                lens[k++] = m->element[i]->len;
            }
        int ok = 1;
        uint64_t v[3];
        for (int i = 0; i < 3; i++) {
            ok &= x->element[2 + i]->type == REDIS_REPLY_INTEGER && x->element[2 + i]->integer >= 0;
            v[i] = ok ? (uint64_t)x->element[2 + i]->integer : 0;
        }
        if (ok) cluster_record(r->s, topic, strlen(topic), v[0], v[1], v[2], msgs, lens, k);
    }
    free(topic);
}

static void on_scan(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis *r = ac->data;
    redisReply *x = reply;
    (void)priv;
    if (!x) return;
    if (x->type != REDIS_REPLY_ARRAY || x->elements != 2 ||
        x->element[0]->type != REDIS_REPLY_STRING || x->element[1]->type != REDIS_REPLY_ARRAY) {
        LOGF(LOG_WARN, "redis: SCAN failed: %s", x->type == REDIS_REPLY_ERROR ? x->str : "?");
        want_drop(r);
        return;
    }
    redisReply *keys = x->element[1];
    char kx[KEY_MAX];
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *k = keys->element[i];
        if (k->type != REDIS_REPLY_STRING || k->len <= r->m_len || k->len - r->m_len >= KEY_MAX)
            continue;
        const char *topic = k->str + r->m_len;
        size_t tl = k->len - r->m_len;
        char *t = malloc(tl + 1);
        if (!t || relay_key(kx, KEY_MAX, r->cfg.prefix, "x", topic, tl) < 0) {
            free(t);
            link_resync(r);
            continue;
        }
        memcpy(t, topic, tl);
        t[tl] = '\0';
        const char *argv[] = {"EVAL", relay_range_lua, "3", r->k_epoch, k->str, kx,
                              "0",    r->per_topic};
        size_t lens[] = {4, strlen(relay_range_lua), 1, strlen(r->k_epoch), k->len, strlen(kx),
                         1, strlen(r->per_topic)};
        if (redisAsyncCommandArgv(ac, on_range, t, 8, argv, lens) != REDIS_OK) free(t);
    }
    const char *cursor = x->element[0]->str;
    if (strcmp(cursor, "0")) {
        redisAsyncCommand(ac, on_scan, NULL, "SCAN %s MATCH %s COUNT " SCAN_COUNT, cursor,
                          r->m_pat);
        return;
    }
    const char *argv[] = {"EVAL", relay_state_lua, "3", r->k_epoch, r->k_gpos, r->k_floor};
    redisAsyncCommandArgv(ac, on_state, NULL, 6, argv, NULL);
}

static void start_sync(struct redis *r)
{
    if (!r->cmd || !r->subscribed || r->syncing) return;
    r->syncing = 1;
    cluster_sync_begin(r->s, r->sess_epoch);
    redisAsyncCommand(r->cmd, on_scan, NULL, "SCAN 0 MATCH %s COUNT " SCAN_COUNT, r->m_pat);
}

/* The subscription's callback: its confirmation, then every message. */
static void on_message(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis *r = ac->data;
    redisReply *x = reply;
    (void)priv;
    if (!x || x->type != REDIS_REPLY_ARRAY || x->elements != 3 ||
        x->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (!strcmp(x->element[0]->str, "message") && x->element[2]->type == REDIS_REPLY_STRING) {
        cluster_msg(r->s, (const uint8_t *)x->element[2]->str, x->element[2]->len);
        return;
    }
    if (!strcmp(x->element[0]->str, "subscribe") && !r->subscribed) {
        r->subscribed = 1;
        if (r->scripted) atomic_store_explicit(&r->up, 1, memory_order_release);
        start_sync(r);
    }
}

static void subscribe(struct redis *r)
{
    if (r->sub && r->scripted)
        redisAsyncCommand(r->sub, on_message, NULL, "SUBSCRIBE %s", r->k_hints);
}

static void on_epoch(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis *r = ac->data;
    redisReply *x = reply;
    (void)priv;
    if (!x) return;
    if (x->type != REDIS_REPLY_STRING || x->len != 16) {
        LOGF(LOG_WARN, "redis: the epoch script failed: %s",
             x->type == REDIS_REPLY_ERROR ? x->str : "not an epoch");
        want_drop(r);
        return;
    }
    memcpy(r->sess_epoch, x->str, 16);
    r->sess_epoch[16] = '\0';
    r->scripted = 1; /* Redis has an epoch now; the node's is the one its first sync saw */
    subscribe(r);
}

static void on_load(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis *r = ac->data;
    redisReply *x = reply;
    (void)priv;
    if (!x) return;
    if (x->type != REDIS_REPLY_STRING || x->len != 40) {
        LOGF(LOG_WARN, "redis: SCRIPT LOAD failed: %s",
             x->type == REDIS_REPLY_ERROR ? x->str : "no sha");
        want_drop(r);
        return;
    }
    memcpy(r->sha, x->str, 40);
    r->sha[40] = '\0';
}

/* A new random epoch (16 hex characters) for the epoch and retire scripts to set. */
static void fresh_epoch(char out[17])
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) seed = uv_hrtime();
    snprintf(out, 17, "%016llx", (unsigned long long)seed);
}

static redisAsyncContext *open_one(struct redis *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->cfg.host, r->cfg.port);
    if (!ac) return NULL;
    if (ac->err || redisLibuvAttach(ac, &r->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = r;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

static void connect_now(struct redis *r)
{
    r->live = 1;
    r->session_at = uv_now(&r->loop);
    r->cmd = open_one(r);
    r->sub = open_one(r);
    if (!r->cmd || !r->sub) {
        drop(r, "cannot connect");
        return;
    }
    char fresh[17];
    fresh_epoch(fresh);
    redisAsyncCommand(r->cmd, on_load, NULL, "SCRIPT LOAD %s", relay_publish_lua);
    const char *argv[] = {"EVAL", relay_epoch_lua, "1", r->k_epoch, fresh};
    redisAsyncCommandArgv(r->cmd, on_epoch, NULL, 5, argv, NULL);
}

/* A publish's reply: [seq, gpos, time, base] (its message completes it), or an error. */
static void on_publish(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis *r = ac->data;
    redisReply *x = reply;
    (void)priv;
    struct out *o = r->ihead;
    if (!o) return; /* dropped: the store failed it */
    r->ihead = o->next;
    if (!r->ihead) r->itail = NULL;
    atomic_fetch_sub_explicit(&r->inflight, 1, memory_order_relaxed);
    if (!x) {
        free(o);
        return;
    }
    if (x->type == REDIS_REPLY_ERROR) {
        if (!strncmp(x->str, "NUDGE_EPOCH", 11)) {
            fail_out(r, o, -ESTALE, x->len > 12 ? x->str + 12 : "");
            return;
        }
        if (!strncmp(x->str, "NOSCRIPT", 8)) /* flushed: load it again */
            redisAsyncCommand(ac, on_load, NULL, "SCRIPT LOAD %s", relay_publish_lua);
        LOGF(LOG_WARN, "redis: a publish failed: %s", x->str);
        fail_out(r, o, -EIO, NULL);
        return;
    }
    free(o);
}

static void send_one(struct redis *r, struct out *o)
{
    char km[KEY_MAX], kx[KEY_MAX];
    const char *topic = o->buf;
    if (!r->cmd || !r->scripted || !r->sha[0] ||
        atomic_load_explicit(&r->inflight, memory_order_relaxed) >= INFLIGHT_MAX ||
        relay_key(km, KEY_MAX, r->cfg.prefix, "m", topic, o->tlen) < 0 ||
        relay_key(kx, KEY_MAX, r->cfg.prefix, "x", topic, o->tlen) < 0) {
        fail_out(r, o, -EIO, NULL);
        return;
    }
    const char *argv[] = {"EVALSHA",
                          r->sha,
                          "5",
                          r->k_epoch,
                          r->k_gpos,
                          r->k_floor,
                          km,
                          kx,
                          r->sess_epoch,
                          topic,
                          o->buf + o->tlen,
                          o->buf + o->tlen + o->dlen,
                          r->per_topic,
                          r->stream_ttl,
                          r->record_ttl,
                          r->k_hints};
    size_t lens[16];
    for (int i = 0; i < 16; i++) /* the topic, data and origin are not NUL-terminated */
        lens[i] = i == 9 ? o->tlen : i == 10 ? o->dlen : i == 11 ? o->olen : strlen(argv[i]);
    if (redisAsyncCommandArgv(r->cmd, on_publish, NULL, 16, argv, lens) != REDIS_OK) {
        fail_out(r, o, -EIO, NULL);
        return;
    }
    o->sent_ms = uv_now(&r->loop);
    o->next = NULL;
    if (r->itail)
        r->itail->next = o;
    else
        r->ihead = o;
    r->itail = o;
    atomic_fetch_add_explicit(&r->inflight, 1, memory_order_relaxed);
}

/* The retire script answered: synchronise again from the start (the epoch script adopts the new
 * epoch, and so does every other node, when it sees it). */
static void on_retired(redisAsyncContext *ac, void *reply, void *priv)
{
    struct redis *r = ac->data;
    (void)priv;
    if (reply) link_resync(r);
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

static void on_async(uv_async_t *a)
{
    struct redis *r = a->data;
    pthread_mutex_lock(&r->lock);
    struct out *q = r->qhead;
    r->qhead = r->qtail = NULL;
    r->queued = 0;
    int stop = r->stop, resync = r->resync;
    r->resync = 0;
    char retire[17];
    snprintf(retire, sizeof(retire), "%s", r->retire);
    r->retire[0] = '\0';
    pthread_mutex_unlock(&r->lock);
    for (struct out *o = q, *next; o; o = next) {
        next = o->next;
        if (stop)
            fail_out(r, o, -EIO, NULL);
        else
            send_one(r, o);
    }
    if (r->want_drop || stop) drop(r, stop ? NULL : "connection lost");
    if (stop) {
        uv_close((uv_handle_t *)&r->async, on_closed);
        uv_close((uv_handle_t *)&r->timer, on_closed);
        return;
    }
    if (retire[0] && r->live && r->cmd) {
        char fresh[17];
        fresh_epoch(fresh);
        const char *argv[] = {"EVAL", relay_retire_lua, "1", r->k_epoch, retire, fresh};
        redisAsyncCommandArgv(r->cmd, on_retired, NULL, 6, argv, NULL);
    } else if (retire[0]) {
        resync = 1; /* not connected: the next session finds Redis behind again */
    }
    if (resync && r->live) {
        /* again from the start, so that the epoch script runs too (Redis may have a new one) */
        LOGF(LOG_INFO, "redis %s:%u: synchronising again", r->cfg.host, r->cfg.port);
        drop(r, NULL);
        r->retry_at = uv_now(&r->loop);
        r->backoff_ms = 0;
    }
}

static void on_timer(uv_timer_t *t)
{
    struct redis *r = t->data;
    uint64_t now = uv_now(&r->loop);
    if (r->want_drop) drop(r, "connection lost");
    if (r->live && r->ihead && now - r->ihead->sent_ms > r->cfg.timeout_ms) {
        LOGF(LOG_WARN, "redis %s:%u: no answer in %u ms", r->cfg.host, r->cfg.port,
             r->cfg.timeout_ms);
        r->logged_down = 1;
        drop(r, NULL);
    }
    if (r->live && !r->subscribed && now - r->session_at > r->cfg.timeout_ms + 1000)
        drop(r, "no answer to the first commands");
    if (!r->live && now >= r->retry_at) connect_now(r);
}

static void run(void *arg)
{
    struct redis *r = arg;
    uv_run(&r->loop, UV_RUN_DEFAULT);
}

int redis_start(struct redis *r, struct store *s)
{
    r->s = s;
    int rc = uv_loop_init(&r->loop);
    if (rc < 0) return rc;
    uv_async_init(&r->loop, &r->async, on_async);
    uv_timer_init(&r->loop, &r->timer);
    r->async.data = r->timer.data = r;
    connect_now(r);
    uv_timer_start(&r->timer, on_timer, 50, 50);
    if ((rc = uv_thread_create(&r->thread, run, r)) < 0) {
        drop(r, NULL);
        uv_close((uv_handle_t *)&r->async, on_closed);
        uv_close((uv_handle_t *)&r->timer, on_closed);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
        return rc;
    }
    return 0;
}

void redis_stop(struct redis *r)
{
    if (!r || !r->s) return;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_mutex_unlock(&r->lock);
    uv_async_send(&r->async);
    uv_thread_join(&r->thread);
    uv_loop_close(&r->loop);
    r->s = NULL;
}

void redis_free(struct redis *r)
{
    if (!r) return;
    for (struct out *o = r->qhead, *next; o; o = next) {
        next = o->next;
        free(o);
    }
    pthread_mutex_destroy(&r->lock);
    free(r);
}
