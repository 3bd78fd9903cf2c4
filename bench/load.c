/* nudge-bench load: the load generator. One thread, one epoll: S subscribers and N publishers
 * of one system under test (an adapter of peer.h: nudged, Redis, NATS, Mosquitto, Socket.IO),
 * so every system is driven and measured by the same code. The adapter turns intentions into
 * bytes and bytes into events; everything else is here: sockets, the open-loop schedule, counts,
 * latency, the broker's CPU and memory from /proc.
 *
 * Open loop: publish i of a step is due at t0 + i/R; each loop turn sends everything due (so a
 * slow broker never lowers the offered rate: its backlog shows as latency) and records how far
 * behind its schedule the generator itself was. Each publish carries a 64-byte stamp (peer.h:
 * send time and index); a subscriber reads latency from it on receipt.
 *
 * Accounting, per step: expected = for each publish, the subscribers of its topic. Each (topic,
 * subscriber) pair keeps a position: with a system that numbers its messages (nudge's seq) a
 * message whose seq is at or below the position is a duplicate, otherwise it covers `covers`
 * publishes (a coalesced hint: n, of which n-1 are counted as coalesced) and moves the position;
 * a system without seqs is checked by stamp index, per publisher connection (each publisher's
 * messages arrive in order). A reset covers up to its seq and is counted apart. lost = expected
 * - covered - reset-covered. A step is sustained when lost = dup = 0, p99 <= --p99-bound and the
 * generator kept its schedule (lag <= --max-lag).
 *
 * Reads go through one shared buffer (a connection keeps only its unconsumed tail), so 19,000
 * idle sockets cost little memory here; the clock is read once per recv(), not per message.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "hist.h"
#include "peer.h"

#define L_PENDING_MAX 256 /* connections between connect() and ready at once */
#define L_RBUF (256 * 1024)
#define L_RATES_MAX 32
#define L_PUBS_MAX 64

enum scen { S_BROADCAST, S_PERUSER, S_HOT, S_STORM, S_CATCHUP, S_IDLE };
static const char *const scen_names[] = {"broadcast",       "per-user", "hot-topic",
                                         "reconnect-storm", "catch-up", "idle"};

struct lopts {
    const struct peer_ops *ops;
    const char *system, *json;
    enum scen scen;
    struct peer_target t;
    int subs, topics, sub_topics, pubs, broker_pid, until_fail, timeout_s;
    double rates[L_RATES_MAX];
    int nrates;
    double duration, drain_timeout, p99_bound_ms, max_lag_ms;
    long burst, publishes;
    uint64_t seed;
};

enum lstate { L_IDLE, L_CONNECTING, L_OPEN, L_READY };

/* A (topic, subscriber) pair: the subscriber's position in the topic. */
struct slot {
    uint64_t pos;   /* last seq covered (systems with seqs) */
    uint64_t *last; /* systems without: 1 + last stamp index seen, per publisher (lazy) */
    int done;       /* reached the catch-up target */
};

struct lconn {
    struct peer_conn pc;
    int fd;
    enum lstate state;
    int want_out; /* EPOLLOUT registered */
    uint8_t *tail;
    size_t tail_len, tail_cap;
    /* subscribers */
    int sub;
    uint32_t k, first; /* follows topics first, first+1, ... (k of them, mod T) */
    struct slot *slots;
    uint32_t done; /* slots at their target */
    int resuming;  /* subscribed with positions: ignore position() */
    int catching;  /* counts towards a catch-up */
    long bytes;    /* read since the last connect */
    /* publishers: topics of the publishes awaiting their ack, FIFO */
    uint32_t *fifo;
    size_t fcap, fhead, fcount;
};

struct step {
    double rate;
    uint64_t expected, frames, covered, dup, resets, reset_covered, published, acked, stray;
    uint64_t reads; /* recv() calls that brought subscriber bytes: frames/reads ~ the broker's
                       frames per send() */
    uint64_t lag_max_ns;
    double t0, t_pub_end, t_last, t_end;
    struct hist lat;
};

struct gen {
    struct lopts o;
    int ep;
    struct lconn *subs, *pubs;
    uint32_t *subs_of;   /* subscribers per topic */
    uint64_t *topic_seq; /* newest acked seq per topic */
    uint64_t *target;    /* catch-up target per topic */
    uint64_t *pubs_t;    /* publishes per topic (catch-up coverage) */
    uint64_t *cov_t;     /* covered per topic */
    uint64_t epoch;
    struct lconn **queue; /* to connect, in order */
    size_t nqueue, qnext;
    int pending, ready_subs, ready_pubs, failed, caught;
    uint64_t now_ns;
    uint64_t index; /* next publish index, over the whole run */
    uint64_t rng;
    /* schedule */
    int sched_on;
    double sched_rate;
    uint64_t sched_t0, sched_sent, sched_total;
    struct step st;
    uint8_t *rbuf;
    struct peer_events ev;
};

static struct gen *G; /* the callbacks' way back (peer_events carry no argument to them) */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* ---- /proc -------------------------------------------------------------------------------- */

/* VmRSS and VmHWM of pid in kB; 0 or -1. */
static int mem_read(int pid, long *rss, long *hwm)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    *rss = *hwm = 0;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmRSS:", 6)) *rss = atol(line + 6);
        if (!strncmp(line, "VmHWM:", 6)) *hwm = atol(line + 6);
    }
    fclose(f);
    return 0;
}

static double broker_cpu_s(int pid)
{
    static struct cpu c;
    if (!pid || cpu_read(pid, &c) < 0) return 0;
    return (double)c.total / (double)sysconf(_SC_CLK_TCK);
}

/* ---- connections -------------------------------------------------------------------------- */

static struct slot *slot_of(struct lconn *c, uint32_t topic)
{
    uint32_t T = (uint32_t)G->o.topics;
    if (topic >= T) return NULL;
    uint32_t j = (topic + T - c->first) % T;
    return j < c->k ? &c->slots[j] : NULL;
}

static void conn_watch(struct lconn *c, int out)
{
    if (c->want_out == out) return;
    struct epoll_event e = {.events = EPOLLIN | (out ? EPOLLOUT : 0u), .data.ptr = c};
    epoll_ctl(G->ep, EPOLL_CTL_MOD, c->fd, &e);
    c->want_out = out;
}

static void conn_fail(struct lconn *c, const char *why)
{
    if (!G->failed)
        fprintf(stderr, "nudge-bench load: %s %d: %s\n",
                c->pc.role == PEER_SUB ? "subscriber" : "publisher", c->pc.idx, why);
    G->failed = 1;
}

/* Send what the adapter queued; watch for writability while some is left. */
static void conn_flush(struct lconn *c)
{
    struct pbuf *b = &c->pc.out;
    size_t off = 0;
    while (off < b->len) {
        ssize_t w = send(c->fd, b->p + off, b->len - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) break;
            conn_fail(c, strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    if (off) {
        memmove(b->p, b->p + off, b->len - off);
        b->len -= off;
    }
    conn_watch(c, b->len > 0);
}

/* Close without a word (a storm's drop, or the end): the adapter frees its state. */
static void conn_drop(struct lconn *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    if (c->pc.st) G->o.ops->close(&c->pc);
    c->pc.out.len = 0;
    c->tail_len = 0;
    c->want_out = 0;
    if (c->state != L_READY && c->state != L_IDLE) G->pending--;
    if (c->state == L_READY) {
        if (c->pc.role == PEER_SUB)
            G->ready_subs--;
        else
            G->ready_pubs--;
    }
    c->state = L_IDLE;
}

static int conn_start(struct lconn *c)
{
    int port = c->pc.role == PEER_SUB ? G->o.t.sub_port : G->o.t.pub_port;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, G->o.t.host, &sa.sin_addr) != 1) return -EINVAL;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) return -errno;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
        return -errno;
    c->state = L_CONNECTING;
    c->bytes = 0;
    c->want_out = 1;
    G->pending++;
    struct epoll_event e = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    return epoll_ctl(G->ep, EPOLL_CTL_ADD, c->fd, &e) < 0 ? -errno : 0;
}

/* Connected: the adapter says hello (and, for a subscriber, what to subscribe to). */
static void conn_open(struct lconn *c)
{
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err) {
        conn_fail(c, strerror(err ? err : errno));
        return;
    }
    c->state = L_OPEN;
    struct peer_sub s = {0}, *sp = NULL;
    uint32_t *topics = NULL;
    uint64_t *seqs = NULL;
    if (c->pc.role == PEER_SUB) {
        topics = malloc(c->k * sizeof(*topics));
        seqs = c->resuming ? malloc(c->k * sizeof(*seqs)) : NULL;
        if (!topics || (c->resuming && !seqs)) {
            conn_fail(c, "out of memory");
            goto out;
        }
        for (uint32_t j = 0; j < c->k; j++) {
            topics[j] = (c->first + j) % (uint32_t)G->o.topics;
            if (seqs) seqs[j] = c->slots[j].pos;
        }
        s = (struct peer_sub){.topics = topics, .n = c->k, .seqs = seqs, .epoch = G->epoch};
        sp = &s;
    }
    int rc = G->o.ops->open(&c->pc, sp);
    if (rc < 0)
        conn_fail(c, strerror(-rc));
    else
        conn_flush(c);
out:
    free(topics);
    free(seqs);
}

static void conn_read(struct lconn *c)
{
    for (int round = 0; round < 4 && c->fd >= 0; round++) {
        uint8_t *b = G->rbuf;
        size_t have = c->tail_len;
        if (have >= L_RBUF / 2) {
            conn_fail(c, "a message larger than the read buffer");
            return;
        }
        if (have) memcpy(b, c->tail, have);
        ssize_t r = recv(c->fd, b + have, L_RBUF - have, 0);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            conn_fail(c, strerror(errno));
            return;
        }
        if (r == 0) {
            conn_fail(c, "closed by the peer");
            return;
        }
        G->now_ns = now_ns();
        c->bytes += r;
        if (c->pc.role == PEER_SUB) G->st.reads++;
        size_t n = have + (size_t)r;
        long used = G->o.ops->input(&c->pc, b, n, &G->ev);
        if (used < 0) {
            conn_fail(c, strerror((int)-used));
            return;
        }
        size_t left = n - (size_t)used;
        if (left > c->tail_cap) {
            uint8_t *t = realloc(c->tail, left);
            if (!t) {
                conn_fail(c, "out of memory");
                return;
            }
            c->tail = t;
            c->tail_cap = left;
        }
        if (left) memmove(c->tail, b + used, left);
        c->tail_len = left;
        if (c->pc.out.len) conn_flush(c);
        if ((size_t)r < L_RBUF - have) return;
    }
}

/* ---- events from the adapter -------------------------------------------------------------- */

static void slot_reached(struct lconn *c, struct slot *s, uint32_t topic)
{
    if (!c->catching || s->done || s->pos < G->target[topic]) return;
    s->done = 1;
    if (++c->done == c->k && c->state == L_READY) {
        c->catching = 0;
        G->caught++;
    }
}

static void ev_ready(struct peer_conn *pc)
{
    struct lconn *c = pc->user;
    c->state = L_READY;
    G->pending--;
    if (pc->role == PEER_PUB) {
        G->ready_pubs++;
        return;
    }
    G->ready_subs++;
    if (c->catching && c->done == c->k) {
        c->catching = 0;
        G->caught++;
    }
}

static void ev_message(struct peer_conn *pc, uint32_t topic, const uint8_t *msg, size_t len,
                       uint64_t covers, uint64_t seq)
{
    struct lconn *c = pc->user;
    struct step *st = &G->st;
    st->frames++;
    st->t_last = (double)G->now_ns / 1e9;
    uint64_t ns, idx;
    int stamped = peer_unstamp(msg, len, &ns, &idx) == 0;
    if (stamped && ns <= G->now_ns) hist_add(&st->lat, G->now_ns - ns);
    struct slot *s = slot_of(c, topic);
    if (!s) {
        st->stray++;
        return;
    }
    if (seq) {
        if (seq <= s->pos) {
            st->dup++;
            return;
        }
        s->pos = seq;
    } else if (stamped) {
        if (!s->last && !(s->last = calloc((size_t)G->o.pubs, sizeof(*s->last)))) return;
        uint64_t *l = &s->last[idx % (uint64_t)G->o.pubs];
        if (idx + 1 <= *l) {
            st->dup++;
            return;
        }
        *l = idx + 1;
    }
    st->covered += covers;
    G->cov_t[topic] += covers;
    slot_reached(c, s, topic);
}

static void ev_reset(struct peer_conn *pc, uint32_t topic, uint64_t seq)
{
    struct lconn *c = pc->user;
    struct slot *s = slot_of(c, topic);
    G->st.resets++;
    if (!s) return;
    if (seq > s->pos) {
        G->st.reset_covered += seq - s->pos;
        G->cov_t[topic] += seq - s->pos;
    }
    s->pos = seq;
    slot_reached(c, s, topic);
}

static void ev_position(struct peer_conn *pc, uint32_t topic, uint64_t seq, uint64_t epoch)
{
    struct lconn *c = pc->user;
    G->epoch = epoch;
    struct slot *s = slot_of(c, topic);
    if (s && !c->resuming) s->pos = seq;
}

static void ev_acked(struct peer_conn *pc, uint32_t n, uint64_t seq)
{
    struct lconn *c = pc->user;
    G->st.acked += n;
    for (uint32_t i = 0; i < n && c->fcount; i++) {
        uint32_t t = c->fifo[c->fhead];
        c->fhead = (c->fhead + 1) % c->fcap;
        c->fcount--;
        if (i + 1 == n && seq > G->topic_seq[t]) G->topic_seq[t] = seq;
    }
}

/* ---- publishing --------------------------------------------------------------------------- */

static uint32_t pick_topic(uint64_t i)
{
    if (G->o.scen == S_PERUSER) return (uint32_t)(rng_next(&G->rng) % (uint64_t)G->o.topics);
    return (uint32_t)(i % (uint64_t)G->o.topics);
}

static int publish_one(uint64_t now)
{
    uint64_t i = G->index++;
    struct lconn *c = &G->pubs[i % (uint64_t)G->o.pubs];
    uint32_t t = pick_topic(i);
    uint8_t stamp[PEER_PAYLOAD];
    peer_stamp(stamp, now, i);
    int rc = G->o.ops->publish(&c->pc, &t, 1, stamp, sizeof(stamp));
    if (rc < 0) return rc;
    if (c->fcount == c->fcap) {
        size_t cap = c->fcap ? c->fcap * 2 : 1024;
        uint32_t *f = malloc(cap * sizeof(*f));
        if (!f) return -ENOMEM;
        for (size_t j = 0; j < c->fcount; j++)
            f[j] = c->fifo[(c->fhead + j) % c->fcap];
        free(c->fifo);
        c->fifo = f;
        c->fcap = cap;
        c->fhead = 0;
    }
    c->fifo[(c->fhead + c->fcount++) % c->fcap] = t;
    G->st.published++;
    G->st.expected += G->subs_of[t];
    G->pubs_t[t]++;
    return 0;
}

/* Send every publish due by now (open loop), then flush the publishers. */
static void publish_due(void)
{
    if (!G->sched_on) return;
    uint64_t now = now_ns();
    double el = (double)(now - G->sched_t0) / 1e9;
    uint64_t due = isinf(G->sched_rate) ? G->sched_total : (uint64_t)(el * G->sched_rate) + 1;
    if (due > G->sched_total) due = G->sched_total;
    if (G->sched_sent >= due) return;
    if (!isinf(G->sched_rate)) {
        uint64_t at = G->sched_t0 + (uint64_t)((double)G->sched_sent / G->sched_rate * 1e9);
        if (now > at && now - at > G->st.lag_max_ns) G->st.lag_max_ns = now - at;
    }
    while (G->sched_sent < due) {
        if (publish_one(now) < 0) {
            conn_fail(&G->pubs[0], "cannot queue a publish");
            break;
        }
        G->sched_sent++;
    }
    for (int k = 0; k < G->o.pubs; k++)
        if (G->pubs[k].pc.out.len) conn_flush(&G->pubs[k]);
    if (G->sched_sent >= G->sched_total) {
        G->sched_on = 0;
        G->st.t_pub_end = (double)now / 1e9;
    }
}

static void sched_start(double rate, uint64_t total)
{
    G->sched_on = 1;
    G->sched_rate = rate;
    G->sched_t0 = now_ns();
    G->sched_sent = 0;
    G->sched_total = total;
}

/* ---- the loop ----------------------------------------------------------------------------- */

static void queue_connect(struct lconn *c)
{
    G->queue[G->nqueue++] = c;
}

/* Run the loop until done() says so (1), the deadline (s, monotonic) or a failure. */
static int run_until(int (*done)(void), double deadline)
{
    struct epoll_event evs[256];
    while (!G->failed) {
        while (G->qnext < G->nqueue && G->pending < L_PENDING_MAX) {
            struct lconn *c = G->queue[G->qnext++];
            int rc = conn_start(c);
            if (rc < 0) {
                conn_fail(c, strerror(-rc));
                break;
            }
            if ((G->qnext & 15) == 0) publish_due(); /* a connect() can take ms in a storm */
        }
        if (G->qnext == G->nqueue) G->qnext = G->nqueue = 0;
        publish_due();
        if (done && done()) return 0;
        double now = now_s();
        if (now >= deadline) return -ETIMEDOUT;
        int wait = G->sched_on ? 1 : 10;
        int n = epoll_wait(G->ep, evs, 256, wait);
        for (int i = 0; i < n && !G->failed; i++) {
            struct lconn *c = evs[i].data.ptr;
            if (c->fd < 0) continue;
            if (c->state == L_CONNECTING) {
                conn_open(c);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) conn_read(c);
            if (c->fd >= 0 && (evs[i].events & EPOLLOUT)) conn_flush(c);
            if ((i & 63) == 63) publish_due();
        }
    }
    return -EIO;
}

static int all_ready(void)
{
    return G->ready_subs == G->o.subs && G->nqueue == 0 &&
           (G->o.scen == S_IDLE || G->ready_pubs == G->o.pubs);
}
static int pubs_ready(void)
{
    return G->ready_pubs == G->o.pubs;
}
static int drained(void)
{
    struct step *st = &G->st;
    return !G->sched_on && st->covered + st->reset_covered >= st->expected &&
           (!G->o.ops->has_acks || st->acked >= st->published);
}
static int acks_in(void)
{
    return !G->sched_on && (!G->o.ops->has_acks || G->st.acked >= G->st.published);
}
static int all_caught(void)
{
    return G->caught == G->o.subs;
}
static int never(void)
{
    return 0;
}

/* ---- results ------------------------------------------------------------------------------ */

struct result {
    const char *note;
    double broker_cpu, gen_cpu, rate_achieved, dps, span, storm_s, drop_s;
    long rss, hwm, rss0;
    uint64_t lost;
    int sustained;
    long bytes_max, bytes_avg;
    uint32_t topics_full;
};

static void result_print(FILE *js, const struct step *st, const struct result *r, int first)
{
    const struct lopts *o = &G->o;
    double us = 1e3;
    uint64_t p50 = hist_q(&st->lat, .5), p90 = hist_q(&st->lat, .9), p99 = hist_q(&st->lat, .99),
             p999 = hist_q(&st->lat, .999);
    uint64_t coalesced = st->covered > st->frames - st->dup - st->stray
                             ? st->covered - (st->frames - st->dup - st->stray)
                             : 0;
    double cpm = st->frames ? r->broker_cpu / ((double)st->frames / 1e6) : 0;
    if (first)
        printf(
            "%-8s %-15s %6s %6s %9s %9s %10s %8s %8s %8s %8s %9s %7s %5s %9s %6s %7s %7s %8s %s\n",
            "system", "scenario", "subs", "topics", "offered", "achieved", "deliv/s", "p50ms",
            "p90ms", "p99ms", "p999ms", "max_ms", "lost", "dup", "coalesced", "resets", "cpu_s",
            "s/Mdel", "rss_MB", "ok");
    char offered[24];
    if (isinf(st->rate))
        snprintf(offered, sizeof(offered), "burst");
    else
        snprintf(offered, sizeof(offered), "%.0f", st->rate);
    printf("%-8s %-15s %6d %6d %9s %9.0f %10.0f %8.2f %8.2f %8.2f %8.2f %9.2f %7llu %5llu %9llu "
           "%6llu %7.2f %7.3f %8.1f %s\n",
           o->system, scen_names[o->scen], o->subs, o->topics, offered, r->rate_achieved, r->dps,
           (double)p50 / 1e6, (double)p90 / 1e6, (double)p99 / 1e6, (double)p999 / 1e6,
           (double)st->lat.max / 1e6, (unsigned long long)r->lost, (unsigned long long)st->dup,
           (unsigned long long)coalesced, (unsigned long long)st->resets, r->broker_cpu, cpm,
           (double)r->rss / 1024, r->sustained ? "yes" : "NO");
    printf("  expected=%llu delivered=%llu frames=%llu reset_covered=%llu published=%llu "
           "acked=%llu lag_max_ms=%.1f span_s=%.2f gen_cpu_s=%.2f gen_us_per_frame=%.3f",
           (unsigned long long)st->expected, (unsigned long long)st->covered,
           (unsigned long long)st->frames, (unsigned long long)st->reset_covered,
           (unsigned long long)st->published, (unsigned long long)st->acked,
           (double)st->lag_max_ns / 1e6, r->span, r->gen_cpu,
           st->frames ? r->gen_cpu * 1e6 / (double)st->frames : 0.0);
    printf(" frames_per_read=%.1f", st->reads ? (double)st->frames / (double)st->reads : 0.0);
    if (st->stray) printf(" stray=%llu", (unsigned long long)st->stray);
    if (r->note) printf(" %s", r->note);
    printf("\n");
    if (!js) return;
    fprintf(js,
            "{\"system\":\"%s\",\"scenario\":\"%s\",\"subs\":%d,\"topics\":%d,\"pubs\":%d,"
            "\"rate_offered\":%.0f,\"rate_achieved\":%.0f,\"deliveries_per_s\":%.0f,"
            "\"lat_p50_us\":%.0f,\"lat_p90_us\":%.0f,\"lat_p99_us\":%.0f,\"lat_p999_us\":%.0f,"
            "\"lat_max_us\":%.0f,\"expected\":%llu,\"delivered\":%llu,\"frames\":%llu,"
            "\"lost\":%llu,\"dup\":%llu,\"coalesced\":%llu,\"resets\":%llu,"
            "\"reset_covered\":%llu,\"published\":%llu,\"lag_max_ms\":%.2f,"
            "\"broker_cpu_s\":%.3f,\"cpu_per_M_deliveries\":%.4f,\"gen_cpu_s\":%.3f,"
            "\"rss_kb\":%ld,\"hwm_kb\":%ld,\"span_s\":%.3f,\"frames_per_read\":%.2f",
            o->system, scen_names[o->scen], o->subs, o->topics, o->pubs,
            isinf(st->rate) ? 0.0 : st->rate, r->rate_achieved, r->dps, (double)p50 / us,
            (double)p90 / us, (double)p99 / us, (double)p999 / us, (double)st->lat.max / us,
            (unsigned long long)st->expected, (unsigned long long)st->covered,
            (unsigned long long)st->frames, (unsigned long long)r->lost,
            (unsigned long long)st->dup, (unsigned long long)coalesced,
            (unsigned long long)st->resets, (unsigned long long)st->reset_covered,
            (unsigned long long)st->published, (double)st->lag_max_ns / 1e6, r->broker_cpu, cpm,
            r->gen_cpu, r->rss, r->hwm, r->span,
            st->reads ? (double)st->frames / (double)st->reads : 0.0);
    if (o->scen == S_STORM || o->scen == S_CATCHUP)
        fprintf(js, ",\"resume_s\":%.3f,\"drop_s\":%.3f", r->storm_s, r->drop_s);
    if (o->scen == S_CATCHUP)
        fprintf(js, ",\"bytes_per_client\":%ld,\"bytes_max\":%ld,\"topics_covered\":%u",
                r->bytes_avg, r->bytes_max, r->topics_full);
    if (o->scen == S_IDLE)
        fprintf(js, ",\"rss_before_kb\":%ld,\"rss_per_conn_b\":%.0f", r->rss0,
                o->subs ? (double)(r->rss - r->rss0) * 1024 / o->subs : 0.0);
    fprintf(js, ",\"sustained\":%s}\n", r->sustained ? "true" : "false");
    fflush(js);
}

static void step_reset(double rate)
{
    memset(&G->st, 0, sizeof(G->st));
    G->st.rate = rate;
    memset(G->pubs_t, 0, (size_t)G->o.topics * sizeof(*G->pubs_t));
    memset(G->cov_t, 0, (size_t)G->o.topics * sizeof(*G->cov_t));
}

/* Close a step: counts, CPU over [cpu0, now], memory; sustained or not. */
static void step_finish(struct result *r, double cpu0, double gen0)
{
    struct step *st = &G->st;
    st->t_end = now_s();
    r->broker_cpu = broker_cpu_s(G->o.broker_pid) - cpu0;
    r->gen_cpu = own_cpu_s() - gen0;
    if (G->o.broker_pid) mem_read(G->o.broker_pid, &r->rss, &r->hwm);
    uint64_t got = st->covered + st->reset_covered;
    r->lost = st->expected > got ? st->expected - got : 0;
    double pub_span = (st->t_pub_end > st->t0 ? st->t_pub_end : st->t_end) - st->t0;
    r->rate_achieved = pub_span > 0 ? (double)st->published / pub_span : 0;
    if (isinf(st->rate)) r->rate_achieved = 0;
    r->span = (st->t_last > st->t0 ? st->t_last : st->t_end) - st->t0;
    r->dps = r->span > 0 ? (double)st->frames / r->span : 0;
    r->sustained = !G->failed && r->lost == 0 && st->dup == 0 &&
                   (double)hist_q(&st->lat, .99) <= G->o.p99_bound_ms * 1e6 &&
                   (isinf(st->rate) || (double)st->lag_max_ns <= G->o.max_lag_ms * 1e6);
}

/* ---- scenarios ---------------------------------------------------------------------------- */

static int setup_pubs(double deadline)
{
    for (int k = 0; k < G->o.pubs; k++)
        queue_connect(&G->pubs[k]);
    return run_until(pubs_ready, deadline);
}

static int setup_subs(double deadline)
{
    for (int i = 0; i < G->o.subs; i++)
        queue_connect(&G->subs[i]);
    return run_until(all_ready, deadline);
}

/* One publish to every topic, so that every position is above 0 (peer.h: a resume position of
 * 0 means none) before the subscribers note theirs. */
static int warm_up(double deadline)
{
    step_reset(INFINITY);
    sched_start(INFINITY, (uint64_t)G->o.topics);
    G->index = 0;
    return run_until(acks_in, deadline);
}

/* Drop every subscriber and reconnect it with its positions; targets: the topics' newest acked
 * seqs now. */
static void storm(void)
{
    memcpy(G->target, G->topic_seq, (size_t)G->o.topics * sizeof(*G->target));
    G->caught = 0;
    for (int i = 0; i < G->o.subs; i++) {
        struct lconn *c = &G->subs[i];
        conn_drop(c);
        if ((i & 255) == 255) publish_due(); /* closing 10,000 sockets takes ~0.1 s */
        c->resuming = 1;
        c->catching = 1;
        c->done = 0;
        for (uint32_t j = 0; j < c->k; j++) {
            c->slots[j].done = 0;
            slot_reached(c, &c->slots[j], (c->first + j) % (uint32_t)G->o.topics);
        }
    }
    for (int i = 0; i < G->o.subs; i++)
        queue_connect(&G->subs[i]);
}

static int run_steps(FILE *js)
{
    const struct lopts *o = &G->o;
    int rc = 0, all_ok = 1;
    for (int k = 0; k < o->nrates && !G->failed; k++) {
        struct result r = {0};
        step_reset(o->rates[k]);
        double cpu0 = broker_cpu_s(o->broker_pid), gen0 = own_cpu_s();
        G->st.t0 = now_s();
        uint64_t total = (uint64_t)(o->rates[k] * o->duration);
        if (o->scen == S_HOT) total = (uint64_t)o->burst;
        sched_start(o->rates[k], total ? total : 1);
        double until = G->st.t0 + (isinf(o->rates[k]) ? 0 : o->duration);
        if (o->scen == S_STORM) {
            double at = G->st.t0 + o->duration / 3;
            run_until(never, at);
            if (G->failed) break;
            double t_drop = now_s();
            storm();
            r.drop_s = now_s() - t_drop;
            rc = run_until(all_caught, t_drop + o->duration + o->drain_timeout);
            r.storm_s = now_s() - t_drop;
            if (rc < 0) r.note = "not every subscriber caught up";
        }
        run_until(never, until);
        rc = run_until(drained, now_s() + o->drain_timeout);
        step_finish(&r, cpu0, gen0);
        char note[96];
        if (o->scen == S_STORM) {
            snprintf(note, sizeof(note),
                     "resubscribed_and_caught_up_s=%.3f%s (closing took %.3f s)", r.storm_s,
                     G->caught == o->subs ? "" : " (not all)", r.drop_s);
            r.note = note;
            /* the storm's question is "all back, nothing missed": its latency and the
             * generator's lag while reconnecting S sockets are reported, not judged */
            r.sustained = !G->failed && r.lost == 0 && G->st.dup == 0 && G->caught == o->subs;
        }
        if (o->scen == S_HOT) r.sustained = r.lost == 0 && G->st.dup == 0 && !G->failed;
        result_print(js, &G->st, &r, k == 0);
        all_ok &= r.sustained;
        if (o->until_fail && !r.sustained) break;
    }
    return G->failed ? -EIO : o->until_fail ? 0 : all_ok ? 0 : -EAGAIN;
}

static int scen_catchup(FILE *js)
{
    const struct lopts *o = &G->o;
    struct result r = {0};
    /* the subscribers have noted their positions: away they go */
    for (int i = 0; i < o->subs; i++)
        conn_drop(&G->subs[i]);
    step_reset(INFINITY);
    double cpu0 = broker_cpu_s(o->broker_pid), gen0 = own_cpu_s();
    G->st.t0 = now_s();
    sched_start(INFINITY, (uint64_t)o->publishes);
    if (run_until(acks_in, now_s() + o->timeout_s) < 0) return -EIO;
    double t_back = now_s();
    storm();
    int rc = run_until(all_caught, t_back + o->timeout_s);
    r.storm_s = now_s() - t_back;
    run_until(drained, now_s() + o->drain_timeout);
    step_finish(&r, cpu0, gen0);
    long sum = 0;
    for (int i = 0; i < o->subs; i++) {
        sum += G->subs[i].bytes;
        if (G->subs[i].bytes > r.bytes_max) r.bytes_max = G->subs[i].bytes;
    }
    r.bytes_avg = o->subs ? sum / o->subs : 0;
    for (int t = 0; t < o->topics; t++)
        r.topics_full += G->cov_t[t] >= G->pubs_t[t] * G->subs_of[t];
    char note[160];
    snprintf(note, sizeof(note),
             "resume_s=%.3f bytes_per_client=%ld bytes_max=%ld topics_covered=%u/%d", r.storm_s,
             r.bytes_avg, r.bytes_max, r.topics_full, o->topics);
    r.note = note;
    r.sustained = rc == 0 && r.lost == 0 && G->st.dup == 0 && !G->failed &&
                  r.topics_full == (uint32_t)o->topics;
    result_print(js, &G->st, &r, 1);
    return r.sustained ? 0 : -EAGAIN;
}

static int scen_idle(FILE *js, long rss0)
{
    const struct lopts *o = &G->o;
    struct result r = {.rss0 = rss0};
    step_reset(0);
    double cpu0 = broker_cpu_s(o->broker_pid), gen0 = own_cpu_s();
    G->st.t0 = now_s();
    run_until(never, now_s() + o->duration);
    step_finish(&r, cpu0, gen0);
    char note[128];
    snprintf(note, sizeof(note), "rss_before_kb=%ld rss_kb=%ld rss_per_conn_bytes=%.0f", rss0,
             r.rss, o->subs ? (double)(r.rss - rss0) * 1024 / o->subs : 0.0);
    r.note = note;
    r.sustained = !G->failed && G->ready_subs == o->subs;
    result_print(js, &G->st, &r, 1);
    return r.sustained ? 0 : -EAGAIN;
}

/* ---- options ------------------------------------------------------------------------------ */

static void usage(void)
{
    fputs(
        "usage: nudge-bench load [--system NAME] [--scenario NAME] --sub HOST:PORT --pub "
        "HOST:PORT\n"
        "                        [options]\n"
        "Drives one system under test (one adapter of bench/peer.h) with S subscribers and N\n"
        "publishers from one thread, publishing open loop, and prints a table (and JSON lines).\n"
        "\n"
        "  --system NAME        nudge (default), redis, nats, mqtt, socketio (those linked in)\n"
        "  --scenario NAME      broadcast (default): S subscribers on one topic (or T, --topics)\n"
        "                       per-user: S subscribers each on its own topic; each publish goes\n"
        "                         to a random subscriber's topic (--seed)\n"
        "                       hot-topic: a burst of --burst B publishes at once to one topic\n"
        "                       reconnect-storm: S subscribers over T topics, publishes at "
        "--rate;\n"
        "                         a third into --duration all drop and resume from their "
        "positions\n"
        "                       catch-up: S subscribers note positions, leave, --publishes P go\n"
        "                         round-robin over T topics, they come back resuming\n"
        "                       idle: S subscribed connections held --duration s: broker RSS\n"
        "  --sub HOST:PORT      where subscribers connect (127.0.0.1:7401)\n"
        "  --pub HOST:PORT      where publishers connect (127.0.0.1:7400)\n"
        "  --subs S             subscribers (1000)\n"
        "  --topics T           topics (broadcast, hot-topic, idle: 1; per-user: S;\n"
        "                       reconnect-storm: 10; catch-up: 100)\n"
        "  --sub-topics K       topics per subscriber: subscriber i follows i..i+K-1 mod T\n"
        "                       (1; catch-up: T, at most 1024)\n"
        "  --pubs N             publisher connections, publishes dealt round-robin (1)\n"
        "  --rate R             publishes/s, open loop (10000)\n"
        "  --rates R1,R2,...    steps on the same connections, each --duration s\n"
        "  --duration SEC       seconds per step, or idle's hold (3)\n"
        "  --drain-timeout SEC  after a step, wait at most this for stragglers (5)\n"
        "  --until-fail         stop after the first step that is not sustained\n"
        "  --p99-bound MS       sustained needs p99 latency <= MS (50)\n"
        "  --max-lag MS         sustained needs the generator <= MS behind its schedule (50)\n"
        "  --burst B            hot-topic: publishes in the burst (10000)\n"
        "  --publishes P        catch-up: publishes while away (100000)\n"
        "  --seed N             per-user's random topics (1)\n"
        "  --msgpack            nudge: the msgpack subprotocol (JSON by default)\n"
        "  --auth KEY           nudge: publisher key\n"
        "  --broker-pid PID     report the broker's CPU seconds (all threads) and RSS, VmHWM\n"
        "  --json FILE          also write one JSON object per step to FILE\n"
        "  --timeout SEC        connecting everyone, catch-up (60)\n"
        "A step is sustained when lost = dup = 0, p99 <= --p99-bound and the schedule held.\n"
        "Exit status 0 when every step was sustained (with --until-fail: when the run worked).\n"
        "See docs/bench.md, \"The load generator\".\n",
        stderr);
}

static int addr(const char *v, char *host, size_t hn, int *port)
{
    const char *c = strrchr(v, ':');
    if (!c || (size_t)(c - v) >= hn) return -1;
    memcpy(host, v, (size_t)(c - v));
    host[c - v] = '\0';
    *port = atoi(c + 1);
    return *port > 0 && *port < 65536 ? 0 : -1;
}

static int parse(struct lopts *o, int argc, char **argv)
{
    *o = (struct lopts){.system = "nudge",
                        .subs = 1000,
                        .topics = -1,
                        .sub_topics = -1,
                        .pubs = 1,
                        .timeout_s = 60,
                        .duration = 3,
                        .drain_timeout = 5,
                        .p99_bound_ms = 50,
                        .max_lag_ms = 50,
                        .burst = 10000,
                        .publishes = 100000,
                        .seed = 1};
    const char *sub = "127.0.0.1:7401", *pub = "127.0.0.1:7400", *scen = "broadcast";
    double rate = 10000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return 1;
        if (!strcmp(a, "--msgpack")) {
            o->t.msgpack = 1;
            continue;
        }
        if (!strcmp(a, "--until-fail")) {
            o->until_fail = 1;
            continue;
        }
        if (!v) return -1;
        i++;
        if (!strcmp(a, "--system"))
            o->system = v;
        else if (!strcmp(a, "--scenario"))
            scen = v;
        else if (!strcmp(a, "--sub"))
            sub = v;
        else if (!strcmp(a, "--pub"))
            pub = v;
        else if (!strcmp(a, "--subs"))
            o->subs = atoi(v);
        else if (!strcmp(a, "--topics"))
            o->topics = atoi(v);
        else if (!strcmp(a, "--sub-topics"))
            o->sub_topics = atoi(v);
        else if (!strcmp(a, "--pubs"))
            o->pubs = atoi(v);
        else if (!strcmp(a, "--rate"))
            rate = atof(v);
        else if (!strcmp(a, "--rates")) {
            char *e;
            const char *p = v;
            while (*p && o->nrates < L_RATES_MAX) {
                o->rates[o->nrates++] = strtod(p, &e);
                if (e == p) return -1;
                p = *e == ',' ? e + 1 : e;
            }
        } else if (!strcmp(a, "--duration"))
            o->duration = atof(v);
        else if (!strcmp(a, "--drain-timeout"))
            o->drain_timeout = atof(v);
        else if (!strcmp(a, "--p99-bound"))
            o->p99_bound_ms = atof(v);
        else if (!strcmp(a, "--max-lag"))
            o->max_lag_ms = atof(v);
        else if (!strcmp(a, "--burst"))
            o->burst = atol(v);
        else if (!strcmp(a, "--publishes"))
            o->publishes = atol(v);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--auth"))
            o->t.auth = v;
        else if (!strcmp(a, "--broker-pid"))
            o->broker_pid = atoi(v);
        else if (!strcmp(a, "--json"))
            o->json = v;
        else if (!strcmp(a, "--timeout"))
            o->timeout_s = atoi(v);
        else
            return -1;
    }
    int s;
    for (s = 0; s <= S_IDLE && strcmp(scen, scen_names[s]); s++)
        ;
    if (s > S_IDLE) {
        fprintf(stderr, "nudge-bench load: unknown scenario %s\n", scen);
        return -1;
    }
    o->scen = (enum scen)s;
    if (!(o->ops = peer_find(o->system))) {
        fprintf(stderr, "nudge-bench load: unknown system %s (not linked in?)\n", o->system);
        return -1;
    }
    if (addr(sub, o->t.host, sizeof(o->t.host), &o->t.sub_port) < 0) return -1;
    char ph[64];
    if (addr(pub, ph, sizeof(ph), &o->t.pub_port) < 0) return -1;
    if (o->topics < 0)
        o->topics = o->scen == S_PERUSER   ? o->subs
                    : o->scen == S_STORM   ? 10
                    : o->scen == S_CATCHUP ? 100
                                           : 1;
    if (o->sub_topics < 0) o->sub_topics = o->scen == S_CATCHUP ? o->topics : 1;
    if (o->sub_topics > o->topics) o->sub_topics = o->topics;
    if (!o->nrates) o->rates[o->nrates++] = o->scen == S_HOT ? INFINITY : rate;
    if (o->scen == S_HOT || o->scen == S_CATCHUP || o->scen == S_IDLE) o->nrates = 1;
    if (o->scen == S_HOT) o->rates[0] = INFINITY;
    if ((o->scen == S_STORM || o->scen == S_CATCHUP) && !o->ops->has_resume) {
        fprintf(stderr, "nudge-bench load: %s cannot resume: no %s\n", o->system, scen);
        return -1;
    }
    if (o->subs < (o->scen == S_IDLE ? 1 : 0) || o->topics < 1 || o->sub_topics < 1 ||
        o->sub_topics > 1024 || o->pubs < 1 || o->pubs > L_PUBS_MAX || o->duration <= 0 ||
        o->drain_timeout < 0 || o->burst < 1 || o->publishes < 1 || o->timeout_s < 1 ||
        o->subs + o->pubs > 19500)
        return -1;
    for (int k = 0; k < o->nrates; k++)
        if (!(o->rates[k] > 0)) return -1;
    return 0;
}

int load_main(int argc, char **argv)
{
    static struct gen g;
    G = &g;
    int prc = parse(&g.o, argc, argv);
    if (prc) {
        usage();
        return prc > 0 ? 0 : 2;
    }
    struct lopts *o = &g.o;
    g.rng = o->seed;
    g.ev = (struct peer_events){.ready = ev_ready,
                                .message = ev_message,
                                .reset = ev_reset,
                                .position = ev_position,
                                .acked = ev_acked};
    size_t T = (size_t)o->topics, S = (size_t)o->subs;
    g.ep = epoll_create1(0);
    g.rbuf = malloc(L_RBUF);
    g.subs = calloc(S ? S : 1, sizeof(*g.subs));
    g.pubs = calloc((size_t)o->pubs, sizeof(*g.pubs));
    g.subs_of = calloc(T, sizeof(*g.subs_of));
    g.topic_seq = calloc(T, sizeof(uint64_t));
    g.target = calloc(T, sizeof(uint64_t));
    g.pubs_t = calloc(T, sizeof(uint64_t));
    g.cov_t = calloc(T, sizeof(uint64_t));
    g.queue = calloc(S + (size_t)o->pubs, sizeof(*g.queue));
    FILE *js = o->json ? fopen(o->json, "a") : NULL;
    int rc = 1;
    if (g.ep < 0 || !g.rbuf || !g.subs || !g.pubs || !g.subs_of || !g.topic_seq || !g.target ||
        !g.pubs_t || !g.cov_t || !g.queue || (o->json && !js)) {
        fprintf(stderr, "nudge-bench load: out of memory (or cannot open --json)\n");
        goto out;
    }
    for (size_t i = 0; i < S; i++) {
        struct lconn *c = &g.subs[i];
        c->fd = -1;
        c->pc = (struct peer_conn){.role = PEER_SUB, .t = &o->t, .idx = (int)i, .user = c};
        c->k = (uint32_t)o->sub_topics;
        c->first = (uint32_t)(i % T);
        c->slots = calloc(c->k, sizeof(*c->slots));
        if (!c->slots) goto out;
        for (uint32_t j = 0; j < c->k; j++)
            g.subs_of[(c->first + j) % T]++;
    }
    for (int k = 0; k < o->pubs; k++) {
        struct lconn *c = &g.pubs[k];
        c->fd = -1;
        c->pc = (struct peer_conn){.role = PEER_PUB, .t = &o->t, .idx = k, .user = c};
    }
    long rss0 = 0, hwm0 = 0;
    if (o->broker_pid && mem_read(o->broker_pid, &rss0, &hwm0) < 0) {
        fprintf(stderr, "nudge-bench load: cannot read /proc/%d/status\n", o->broker_pid);
        goto out;
    }
    double deadline = now_s() + o->timeout_s, t_setup = now_s();
    int err = 0;
    if (o->scen != S_IDLE) err = setup_pubs(deadline);
    if (!err && (o->scen == S_STORM || o->scen == S_CATCHUP)) err = warm_up(deadline);
    if (!err) err = setup_subs(deadline);
    if (err) {
        fprintf(stderr,
                "nudge-bench load: setup failed: %d/%d subscribers, %d/%d publishers "
                "ready\n",
                g.ready_subs, o->subs, g.ready_pubs, o->scen == S_IDLE ? 0 : o->pubs);
        goto out;
    }
    fprintf(stderr, "nudge-bench load: %d subscribers, %d publishers ready in %.1f s\n", o->subs,
            o->scen == S_IDLE ? 0 : o->pubs, now_s() - t_setup);
    if (o->scen == S_CATCHUP)
        err = scen_catchup(js);
    else if (o->scen == S_IDLE)
        err = scen_idle(js, rss0);
    else
        err = run_steps(js);
    rc = err == -EIO ? 1 : err < 0 ? 3 : 0;
    if (err == -EAGAIN) rc = 3;
out:
    for (size_t i = 0; g.subs && i < S; i++) {
        conn_drop(&g.subs[i]);
        for (uint32_t j = 0; g.subs[i].slots && j < g.subs[i].k; j++)
            free(g.subs[i].slots[j].last);
        free(g.subs[i].slots);
        free(g.subs[i].tail);
        pbuf_free(&g.subs[i].pc.out);
    }
    for (int k = 0; g.pubs && k < o->pubs; k++) {
        conn_drop(&g.pubs[k]);
        free(g.pubs[k].tail);
        free(g.pubs[k].fifo);
        pbuf_free(&g.pubs[k].pc.out);
    }
    if (js) fclose(js);
    if (g.ep >= 0) close(g.ep);
    free(g.rbuf);
    free(g.subs);
    free(g.pubs);
    free(g.subs_of);
    free(g.topic_seq);
    free(g.target);
    free(g.pubs_t);
    free(g.cov_t);
    free(g.queue);
    return rc;
}
