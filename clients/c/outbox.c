/* outbox — fail-open publishing over libnudge (API and contract in nudge.h, guide in
 * docs/clients.md §Fail open).
 *
 * Design. The outbox keeps every publish it was given until the broker acknowledged it: a FIFO
 * of owned copies, bounded by buffer_max (the oldest dropped past it). A call first makes sure
 * there is a connection (at most one connect attempt per backoff step while the broker is down,
 * so an outage costs a request nothing more than a failed connect now and then, and usually
 * nothing at all), then pipelines every waiting publish with nudge_send() and takes their acks
 * in order with nudge_recv_ack(), all within the one ack timeout of the call. Any failure of the
 * connection (refused, reset, a stalled broker's timeout) closes it: what was not acknowledged is
 * sent again on the next connection, so a publish can arrive twice across an outage but is
 * never lost while it is in the buffer (a hint is an invalidation: twice is harmless, never is
 * not). Between calls no publish is in flight, so the FIFO and the connection's acks always
 * agree. */
#include "nudge.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

enum {
    OUTBOX_CONNECT_MS = 1000,
    OUTBOX_ACK_MS = 2000,
    OUTBOX_MAX = 10000,
    OUTBOX_BACKOFF_MIN_MS = 100,
    OUTBOX_BACKOFF_MAX_MS = 5000,
};

struct item {
    struct item *next;
    char **topics;
    size_t ntopics;
    char *data_json;
    char *origin;
    int skip_origin;
    uint64_t id; /* request id on the current connection; 0 = not sent on it */
};

struct nudge_outbox {
    char *addr;
    struct nudge_opts conn; /* its strings owned (copies) */
    int ack_ms;
    size_t max;
    void (*log)(void *arg, const char *line);
    void *log_arg;
    nudge_client_t *c; /* NULL while disconnected */
    struct item *head, *tail;
    size_t n;
    int connected_once;
    int backoff_ms;
    int64_t retry_at;      /* no connect attempt before this (monotonic ms) */
    int down;              /* in an outage: its start was logged, its end not yet */
    int64_t down_since;    /* when it started */
    uint64_t down_dropped; /* st.dropped when it started */
    uint64_t down_acked;   /* st.acked when it started */
    int64_t refusal_logged;
    uint32_t rng;
    struct nudge_outbox_stats st;
};

static int64_t outbox__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void outbox__log(struct nudge_outbox *o, const char *fmt, ...)
{
    char line[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (o->log)
        o->log(o->log_arg, line);
    else
        fprintf(stderr, "nudge: %s\n", line);
}

static char *outbox__dup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void outbox__item_free(struct item *it)
{
    for (size_t i = 0; i < it->ntopics; i++)
        free(it->topics[i]);
    free(it->topics);
    free(it->data_json);
    free(it->origin);
    free(it);
}

static void outbox__pop(struct nudge_outbox *o)
{
    struct item *it = o->head;
    o->head = it->next;
    if (!o->head) o->tail = NULL;
    o->n--;
    outbox__item_free(it);
}

/* The connection failed (why): close it, start an outage if none is on, and wait a backoff
 * step (doubling, with jitter in its upper half) before the next attempt. */
static void outbox__lost(struct nudge_outbox *o, const char *reason)
{
    char why[256];
    snprintf(why, sizeof why, "%s", reason); /* it may be the closing client's own text */
    if (o->c) {
        nudge_close(o->c);
        o->c = NULL;
    }
    for (struct item *it = o->head; it; it = it->next)
        it->id = 0; /* to be sent again */
    int64_t now = outbox__now_ms();
    if (!o->down) {
        o->down = 1;
        o->down_since = now;
        o->down_dropped = o->st.dropped;
        o->down_acked = o->st.acked;
        o->st.outages++;
        outbox__log(o, "broker %s unreachable (%s); buffering up to %zu publishes", o->addr, why,
                    o->max);
    }
    o->backoff_ms = o->backoff_ms ? o->backoff_ms * 2 : OUTBOX_BACKOFF_MIN_MS;
    if (o->backoff_ms > OUTBOX_BACKOFF_MAX_MS) o->backoff_ms = OUTBOX_BACKOFF_MAX_MS;
    o->rng = o->rng * 1103515245u + 12345u;
    int half = o->backoff_ms / 2;
    o->retry_at = now + half + (int)((o->rng >> 8) % (uint32_t)(half + 1));
}

static int outbox__connect(struct nudge_outbox *o)
{
    if (o->c) return NUDGE_OK;
    if (outbox__now_ms() < o->retry_at) return NUDGE_ECONNECT;
    char why[256];
    int rc = nudge_connect_ex(o->addr, &o->conn, &o->c, why, sizeof why);
    if (rc != NUDGE_OK) {
        outbox__lost(o, why);
        return rc == NUDGE_EBROKER ? NUDGE_ECONNECT : rc;
    }
    nudge_set_timeout(o->c, o->ack_ms);
    if (o->connected_once) o->st.reconnects++;
    o->connected_once = 1;
    return NUDGE_OK;
}

static void outbox__refused(struct nudge_outbox *o, const char *why)
{
    o->st.refused++;
    int64_t now = outbox__now_ms();
    if (now - o->refusal_logged >= 1000 || !o->refusal_logged) {
        o->refusal_logged = now;
        outbox__log(o, "publish refused by broker %s: %s (%llu refused so far)", o->addr, why,
                    (unsigned long long)o->st.refused);
    }
}

/* Send everything waiting and take the acks, within ack_ms. seqs_out gets the ack of `want`
 * (the item last queued, or NULL for a flush). Returns 0 when the buffer is empty. */
static int outbox__pump(struct nudge_outbox *o, const struct item *want, uint64_t *seqs_out)
{
    int rc = outbox__connect(o);
    if (rc < 0) return rc;
    int64_t deadline = outbox__now_ms() + o->ack_ms;
    for (struct item *it = o->head; it; it = it->next) {
        if (it->id) continue;
        struct nudge_pub p = {.topics = (const char *const *)it->topics,
                              .ntopics = it->ntopics,
                              .data_json = it->data_json,
                              .origin = it->origin,
                              .skip_origin = it->skip_origin};
        rc = nudge_send(o->c, &p, &it->id);
        if (rc == NUDGE_EINVAL) { /* over this broker's announced limits: it never will be */
            it->id = UINT64_MAX;  /* answered below as refused */
            continue;
        }
        if (rc < 0) {
            outbox__lost(o, nudge_last_error(o->c));
            return rc;
        }
        o->st.sent++;
    }
    while (o->head) {
        struct item *it = o->head;
        const int is_want = it == want;
        if (it->id == UINT64_MAX) {
            outbox__refused(o, "over the broker's limits");
            outbox__pop(o);
            continue;
        }
        int left = (int)(deadline - outbox__now_ms());
        nudge_set_timeout(o->c, left > 0 ? left : 1);
        uint64_t id, seqs[64];
        size_t n = 0;
        rc = nudge_recv_ack(o->c, &id, seqs, 64, &n);
        if (rc == NUDGE_EBROKER && id) {
            outbox__refused(o, nudge_last_error(o->c));
        } else if (rc < 0) {
            outbox__lost(o, rc == NUDGE_ETIMEOUT ? "no ack within the ack timeout"
                                                 : nudge_last_error(o->c));
            return rc;
        } else {
            o->st.acked++;
            if (is_want && seqs_out)
                for (size_t i = 0; i < it->ntopics; i++)
                    seqs_out[i] = i < n && i < 64 ? seqs[i] : 0;
        }
        outbox__pop(o);
    }
    nudge_set_timeout(o->c, o->ack_ms);
    o->backoff_ms = 0;
    if (o->down) {
        o->down = 0;
        outbox__log(o, "broker %s back after %.1f s; %llu publishes flushed, %llu dropped", o->addr,
                    (double)(outbox__now_ms() - o->down_since) / 1000.0,
                    (unsigned long long)(o->st.acked - o->down_acked),
                    (unsigned long long)(o->st.dropped - o->down_dropped));
    }
    return NUDGE_OK;
}

int nudge_outbox_new(const char *addr, const struct nudge_outbox_opts *opts, nudge_outbox_t **out)
{
    if (!out) return NUDGE_EINVAL;
    *out = NULL;
    struct nudge_outbox *o = calloc(1, sizeof *o);
    if (!o) return NUDGE_ENOMEM;
    const struct nudge_opts *c = opts ? &opts->conn : NULL;
    o->addr = strdup(addr ? addr : "127.0.0.1:7400");
    o->conn.client_name = outbox__dup(c ? c->client_name : NULL);
    o->conn.api_key = outbox__dup(c ? c->api_key : NULL);
    o->conn.cafile = outbox__dup(c ? c->cafile : NULL);
    o->conn.server_name = outbox__dup(c ? c->server_name : NULL);
    o->conn.tls = c ? c->tls : 0;
    o->conn.timeout_ms = c && c->timeout_ms > 0 ? c->timeout_ms : OUTBOX_CONNECT_MS;
    o->ack_ms = opts && opts->ack_timeout_ms > 0 ? opts->ack_timeout_ms : OUTBOX_ACK_MS;
    o->max = opts && opts->buffer_max ? opts->buffer_max : OUTBOX_MAX;
    o->log = opts ? opts->log : NULL;
    o->log_arg = opts ? opts->log_arg : NULL;
    o->rng = (uint32_t)outbox__now_ms() ^ (uint32_t)getpid();
    if (!o->addr || (c && c->client_name && !o->conn.client_name) ||
        (c && c->api_key && !o->conn.api_key) || (c && c->cafile && !o->conn.cafile) ||
        (c && c->server_name && !o->conn.server_name)) {
        nudge_outbox_close(o);
        return NUDGE_ENOMEM;
    }
    /* A bad address is the app's bug, and says so now; an unreachable broker is not. */
    char why[256];
    int rc = nudge_connect_ex(o->addr, &o->conn, &o->c, why, sizeof why);
    if (rc == NUDGE_EINVAL) {
        nudge_outbox_close(o);
        return rc;
    }
    if (rc == NUDGE_OK) {
        nudge_set_timeout(o->c, o->ack_ms);
        o->connected_once = 1;
    } else {
        outbox__lost(o, why);
    }
    *out = o;
    return NUDGE_OK;
}

/* Check p as the broker would (protocol ceilings: the broker's own limits are checked again at
 * send) and copy it. */
static int outbox__copy(const struct nudge_pub *p, struct item **out)
{
    static const struct wire_limits lim = {.max_frame = WIRE_FRAME_MAX,
                                           .max_topic = WIRE_TOPIC_LEN_MAX,
                                           .max_data = WIRE_DATA_MAX,
                                           .max_topics = WIRE_TOPICS_MAX};
    if (!p || !p->topics || p->ntopics == 0 || p->ntopics > lim.max_topics) return NUDGE_EINVAL;
    for (size_t i = 0; i < p->ntopics; i++)
        if (!p->topics[i] || wire_topic_check(p->topics[i], strlen(p->topics[i]), &lim) != WIRE_OK)
            return NUDGE_EINVAL;
    if (p->data_json) {
        struct wire_buf b = {0};
        int rc = wire_json_to_data(p->data_json, strlen(p->data_json), &b);
        wire_buf_free(&b);
        if (rc != WIRE_OK) return rc == WIRE_ENOMEM ? NUDGE_ENOMEM : NUDGE_EINVAL;
    }
    struct item *it = calloc(1, sizeof *it);
    if (!it) return NUDGE_ENOMEM;
    it->topics = calloc(p->ntopics, sizeof *it->topics);
    int bad = !it->topics;
    for (size_t i = 0; !bad && i < p->ntopics; i++, it->ntopics++)
        bad = !(it->topics[i] = strdup(p->topics[i]));
    it->data_json = outbox__dup(p->data_json);
    it->origin = outbox__dup(p->origin);
    it->skip_origin = p->skip_origin;
    if (bad || (p->data_json && !it->data_json) || (p->origin && !it->origin)) {
        outbox__item_free(it);
        return NUDGE_ENOMEM;
    }
    *out = it;
    return NUDGE_OK;
}

int nudge_outbox_publish(nudge_outbox_t *o, const struct nudge_pub *p, uint64_t *seqs_out)
{
    if (!o) return NUDGE_EINVAL;
    struct item *it;
    int rc = outbox__copy(p, &it);
    if (rc < 0) return rc;
    if (seqs_out) memset(seqs_out, 0, p->ntopics * sizeof *seqs_out);
    if (o->n == o->max) { /* full: the oldest goes (never in flight between calls) */
        outbox__pop(o);
        o->st.dropped++;
    }
    if (o->tail)
        o->tail->next = it;
    else
        o->head = it;
    o->tail = it;
    o->n++;
    (void)outbox__pump(o, it, seqs_out); /* a broker problem is not the app's error */
    return NUDGE_OK;
}

int nudge_outbox_flush(nudge_outbox_t *o)
{
    if (!o) return NUDGE_EINVAL;
    if (!o->head) return NUDGE_OK;
    return outbox__pump(o, NULL, NULL);
}

void nudge_outbox_stats(const nudge_outbox_t *o, struct nudge_outbox_stats *out)
{
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!o) return;
    *out = o->st;
    out->buffered = o->n;
}

void nudge_outbox_close(nudge_outbox_t *o)
{
    if (!o) return;
    if (o->head && o->addr) {
        o->retry_at = 0; /* one last attempt, whatever the backoff */
        (void)outbox__pump(o, NULL, NULL);
    }
    while (o->head)
        outbox__pop(o);
    nudge_close(o->c);
    free(o->addr);
    free((char *)o->conn.client_name);
    free((char *)o->conn.api_key);
    free((char *)o->conn.cafile);
    free((char *)o->conn.server_name);
    free(o);
}
