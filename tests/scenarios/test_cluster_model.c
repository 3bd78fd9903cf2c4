/* The delivery contract across a cluster (docs/cluster.md, docs/guarantees.md): a seeded random
 * walk over three nudged nodes on one real redis-server, behind HAProxy started from the
 * deployment's own configuration (broker/dist/cluster/haproxy.cfg, tests/support/lb.c).
 *
 * NC WebSocket clients and a publisher reach the nodes only through HAProxy's round robin, so a
 * client that reconnects usually lands on another node, and resumes there from the positions
 * it knows (a third of the resumes ask for "replay":"all"). Each step publishes (one to three
 * topics), lets a client read what is there, drops a client (clean or abrupt), or brings one
 * back with resume. Twice per walk a node is killed with SIGKILL (the one with the most
 * subscribers; its clients see their connection end and come back through HAProxy to the
 * others; a publish on its way fails and is sent again, so a topic may move by a seq nobody was
 * acked for), and started again, on the same
 * ports, some steps later.
 *
 * The model knows, per client and topic, the last seq the client knows, and checks every
 * message as it arrives:
 *   - "subscribed" confirms at least the client's position (a node never says it is behind);
 *   - a hint is newer than what the client knows (no duplicate, nothing out of order), and its
 *     "n" is exactly the seqs since (no gap: a catch-up says how much it stands for, a replayed
 *     or live hint is the next seq);
 *   - no reset (the epoch is Redis's and outlives every node) but "evicted" for a "replay":"all"
 *     of more than history keeps; no error; a close only from a killed node.
 * At the end every client is back and reads until it knows each topic's seq in Redis: no silent
 * staleness anywhere. NUDGE_CLUSTER_SEED and NUDGE_CLUSTER_STEPS choose the walk; the seed is
 * printed. */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lb.h"
#include "redisd.h"
#include "relay.h"
#include "subcheck.h"
#include "wsc.h"

#define NN LB_NODES
#define NT 5
#define NC 8
#define HIST 64 /* --hist-per-topic's default */

struct client {
    struct wsc w;
    int up;
    int ever; /* subscribed once: it has positions */
    uint64_t known[NT];
    int replay;    /* its last resume asked for "replay":"all" */
    int confirmed; /* "subscribed" messages read */
    uint64_t hints, catchups, replays, evicted;
};

static struct redisd srv;
static struct lb lb;
static struct nudged node[NN];
static uint16_t ws_port[NN], pub_port[NN], admin_port[NN];
static struct client cl[NC];
static nudge_client_t *pub;
static char epoch[32];
static uint64_t rng;
static uint64_t acked[NT];
static uint64_t n_pub, n_kill, n_reconnect, n_closed_by_kill, n_retried;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static const char *topic(int i)
{
    static const char *t[NT] = {"m:0", "m:1", "m:2", "m:3", "m:4"};
    return t[i];
}

static int topic_index(struct wire_str s)
{
    for (int i = 0; i < NT; i++)
        if (wstr_eq(s, topic(i))) return i;
    return -1;
}

static void fini(void)
{
    for (int i = 0; i < NC; i++)
        if (cl[i].up) wsc_free(&cl[i].w, 1);
    if (pub) nudge_close(pub);
    pub = NULL;
    lb_stop(&lb);
    for (int i = 0; i < NN; i++)
        if (node[i].pid) nudged_kill(&node[i]);
    redisd_stop(&srv, 0);
}

static void start_node(int i, int fixed)
{
    char url[64], pubs[32], wss[32], adm[32];
    snprintf(url, sizeof url, "redis://127.0.0.1:%u", srv.port);
    snprintf(pubs, sizeof pubs, "127.0.0.1:%u", fixed ? pub_port[i] : 0);
    snprintf(wss, sizeof wss, "127.0.0.1:%u", fixed ? ws_port[i] : 0);
    snprintf(adm, sizeof adm, "127.0.0.1:%u", fixed ? admin_port[i] : 0);
    char bin[256];
    cr_assert_eq(nudge_bin_path("nudged", bin, sizeof bin), 0);
    const char *args[] = {"--engine", url,
                          "--memory", "--redis-timeout",
                          "1000",     "--pub",
                          pubs,       "--ws",
                          wss,        "--admin",
                          adm,        "--http",
                          "off",      "--drain-window",
                          "0",        NULL};
    memset(&node[i], 0, sizeof node[i]);
    cr_assert_eq(nudged_start_ex(&node[i], bin, 0, args), 0, "node %d did not start", i);
    ws_port[i] = node[i].ws_port, pub_port[i] = node[i].pub_port;
    admin_port[i] = node[i].admin_port;
}

static void connect_pub(void)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", lb.pub_port);
    struct nudge_opts o = {.client_name = "cluster-model", .timeout_ms = 5000};
    for (int i = 0; i < 100; i++) {
        if (nudge_connect(addr, &o, &pub) == NUDGE_OK) return;
        sleep_ms(50);
    }
    cr_assert_fail("the publisher cannot reach any node through HAProxy");
}

/* One publish to topics ts[0..n), acked (sent again through HAProxy when its node died). */
static void publish(const int *ts, int n)
{
    const char *names[3];
    for (int i = 0; i < n; i++)
        names[i] = topic(ts[i]);
    uint64_t seqs[3];
    for (int tries = 0;; tries++) {
        if (nudge_publish(pub, names, (size_t)n, NULL, seqs) == NUDGE_OK) break;
        cr_assert_lt(tries, 20, "a publish kept failing");
        n_retried++;
        nudge_close(pub);
        pub = NULL;
        sleep_ms(100);
        connect_pub();
    }
    for (int i = 0; i < n; i++)
        if (seqs[i] > acked[ts[i]]) acked[ts[i]] = seqs[i];
    n_pub++;
}

static void down(struct client *c)
{
    wsc_free(&c->w, 1);
    c->up = 0;
}

/* Check one message of client k. Returns 0, or -1 when its connection ended (a killed node). */
static int check(int k, int rc, struct sub_msg *m)
{
    struct client *c = &cl[k];
    if (rc == WSC_EOF || rc == WSC_CLOSED || rc == WSC_EIO) {
        cr_assert(rc != WSC_CLOSED || c->w.close_code == 1012 || c->w.close_code == 1006,
                  "client %d closed with %u %s", k, c->w.close_code, c->w.close_reason);
        n_closed_by_kill++;
        down(c);
        return -1;
    }
    cr_assert_eq(rc, WSC_OK, "client %d: receive failed (%d)", k, rc);
    int t = topic_index(m->topic);
    switch (m->type) {
    case SUB_SUBSCRIBED:
        cr_assert_geq(t, 0);
        cr_assert_geq(m->seq, c->known[t], "client %d %s: subscribed at %llu, it knew %llu", k,
                      topic(t), (unsigned long long)m->seq, (unsigned long long)c->known[t]);
        if (!c->ever) c->known[t] = m->seq; /* a fresh start includes everything before */
        c->confirmed++;
        break;
    case SUB_HINT:
        cr_assert_geq(t, 0);
        cr_assert_gt(m->seq, c->known[t], "client %d %s: hint %llu again (it knew %llu)", k,
                     topic(t), (unsigned long long)m->seq, (unsigned long long)c->known[t]);
        cr_assert_eq(m->count, m->seq - c->known[t],
                     "client %d %s: hint %llu n %u after %llu: a gap or an overlap", k, topic(t),
                     (unsigned long long)m->seq, m->count, (unsigned long long)c->known[t]);
        if (m->count > 1) c->catchups++;
        c->known[t] = m->seq;
        c->hints++;
        break;
    case SUB_RESET:
        /* "replay":"all" of more than history keeps (--hist-per-topic 64, Redis's MAXLEN too) */
        cr_assert_geq(t, 0);
        cr_assert(c->replay && wstr_eq(m->reason, "evicted") && m->seq - c->known[t] > HIST,
                  "client %d %s: reset %.*s at %llu, it knew %llu (replay all %d)", k, topic(t),
                  (int)m->reason.len, m->reason.p, (unsigned long long)m->seq,
                  (unsigned long long)c->known[t], c->replay);
        c->known[t] = m->seq;
        c->evicted++;
        break;
    default:
        cr_assert_fail("client %d: unexpected %s (%.*s %.*s)", k, subcheck_type_name(m->type),
                       (int)m->topic.len, m->topic.p, (int)m->reason.len, m->reason.p);
    }
    sub_msg_clear(m);
    return 0;
}

static void read_some(int k, int ms)
{
    struct client *c = &cl[k];
    while (c->up) {
        struct sub_msg m;
        int rc = wsc_recv_msg(&c->w, &m, ms);
        if (rc == WSC_TIMEOUT) return;
        if (check(k, rc, &m) < 0) return;
        ms = 0;
    }
}

static void bring_back(int k)
{
    struct client *c = &cl[k];
    int rc = WSC_EIO;
    for (int i = 0; i < 100 && rc != WSC_OK; i++) {
        rc = wsc_open(&c->w, lb.ws_port, i % 2 ? SUB_PROTO_MSGPACK : SUB_PROTO_JSON);
        if (rc != WSC_OK) {
            wsc_free(&c->w, 1);
            sleep_ms(50);
        }
    }
    cr_assert_eq(rc, WSC_OK, "client %d cannot reach any node through HAProxy", k);
    cr_assert_str_eq(c->w.epoch, epoch, "every node has Redis's epoch");
    c->up = 1;
    n_reconnect++;
    const char *t[NT];
    int64_t pos[NT];
    for (int i = 0; i < NT; i++) {
        t[i] = topic(i);
        pos[i] = (int64_t)c->known[i];
    }
    int replay = rnd(3) == 0;
    c->replay = replay;
    if (replay) c->replays++;
    subcheck_send_sub_mode(&c->w, 1, t, NT, c->ever ? epoch : NULL, c->ever ? pos : NULL, replay);
}

/* Redis's seq of topic i: what every client must know in the end. */
static uint64_t redis_seq(int i)
{
    redisContext *rc = redisd_connect(&srv);
    cr_assert_not_null(rc);
    char k[128];
    relay_key(k, sizeof k, "nudge", "m", topic(i), strlen(topic(i)));
    redisReply *r = redisCommand(rc, "HGET %s s", k);
    uint64_t s = r && r->type == REDIS_REPLY_STRING ? strtoull(r->str, NULL, 10) : 0;
    if (r) freeReplyObject(r);
    redisFree(rc);
    return s;
}

Test(cluster_model,
     clients_moving_between_nodes_and_a_node_killed_never_see_a_gap_a_duplicate_or_silence,
     .fini = fini, .timeout = 240)
{
    const char *env = getenv("NUDGE_CLUSTER_SEED");
    rng = env && strcmp(env, "random") ? strtoull(env, NULL, 10) : 1;
    if (env && !strcmp(env, "random")) rng = (uint64_t)now_ms();
    if (!rng) rng = 1;
    uint64_t seed = rng;
    env = getenv("NUDGE_CLUSTER_STEPS");
    int steps = env ? atoi(env) : 1000;
    fprintf(stderr, "cluster_model: seed %llu, %d steps (NUDGE_CLUSTER_SEED=%llu to repeat)\n",
            (unsigned long long)seed, steps, (unsigned long long)seed);

    cr_assert_eq(redisd_start(&srv, 0), 0, "redis-server did not start");
    for (int i = 0; i < NN; i++)
        start_node(i, 0);
    cr_assert_eq(lb_start(&lb, ws_port, pub_port), 0, "haproxy did not start");
    connect_pub();
    snprintf(epoch, sizeof epoch, "%s", nudge_epoch(pub));
    for (int k = 0; k < NC; k++) {
        bring_back(k);
        cl[k].ever = 0;
    }
    for (int k = 0; k < NC; k++) {
        int64_t until = now_ms() + 5000;
        while (cl[k].up && cl[k].confirmed < NT && now_ms() < until)
            read_some(k, 100); /* NT subscribed */
        cr_assert_eq(cl[k].confirmed, NT, "client %d: every topic confirmed", k);
        cl[k].ever = 1;
    }

    int dead = -1, revive_at = 0;
    int kill_at[2] = {steps / 4 + (int)rnd((uint32_t)steps / 4),
                      steps * 5 / 8 + (int)rnd((uint32_t)steps / 4)};
    for (int s = 0; s < steps; s++) {
        if (dead < 0 && (s == kill_at[0] || s == kill_at[1])) {
            /* the node with the most subscribers, so that the kill ends some connections */
            int64_t most = -1;
            for (int i = 0; i < NN; i++) {
                json_t *st = nudged_stats(&node[i]);
                int64_t ws = stats_int(st, "connections.ws");
                json_decref(st);
                if (ws > most) most = ws, dead = i;
            }
            cr_assert_eq(nudged_kill(&node[dead]), 0);
            node[dead].pid = 0;
            for (int k = 0; k < NC; k++) /* every client notices soon */
                read_some(k, 20);
            n_kill++;
            revive_at = s + 10 + (int)rnd(30);
        } else if (dead >= 0 && s >= revive_at) {
            start_node(dead, 1);
            dead = -1;
        }
        uint32_t r = rnd(100);
        if (r < 40) {
            int ts[3], n = 1 + (int)rnd(3);
            for (int i = 0; i < n; i++)
                ts[i] = (int)rnd(NT);
            publish(ts, n);
        } else if (r < 70) {
            int k = (int)rnd(NC);
            read_some(k, 5);
        } else if (r < 82) {
            int k = (int)rnd(NC);
            if (cl[k].up) {
                if (rnd(2))
                    wsc_close(&cl[k].w, 200);
                else
                    wsc_free(&cl[k].w, 1);
                cl[k].up = 0;
            }
        } else {
            int k = (int)rnd(NC);
            if (!cl[k].up) bring_back(k);
        }
    }
    if (dead >= 0) start_node(dead, 1);

    /* Everyone back, everyone reads until it knows every topic's seq in Redis. */
    uint64_t final[NT];
    for (int i = 0; i < NT; i++) {
        final[i] = redis_seq(i);
        cr_assert_geq(final[i], acked[i]);
    }
    for (int k = 0; k < NC; k++) {
        int64_t until = now_ms() + 20000;
        for (;;) {
            if (!cl[k].up) bring_back(k);
            int behind = 0;
            for (int i = 0; i < NT; i++)
                behind |= cl[k].known[i] < final[i];
            if (!behind) break;
            cr_assert_lt(now_ms(), until, "client %d is silently stale", k);
            read_some(k, 100);
        }
        for (int i = 0; i < NT; i++)
            cr_assert_eq(cl[k].known[i], final[i], "client %d %s: %llu, Redis %llu", k, topic(i),
                         (unsigned long long)cl[k].known[i], (unsigned long long) final[i]);
    }
    uint64_t hints = 0, catchups = 0, replays = 0;
    for (int k = 0; k < NC; k++) {
        hints += cl[k].hints, catchups += cl[k].catchups, replays += cl[k].replays;
        cr_assert(cl[k].w.closed == 0, "client %d", k);
    }
    fprintf(stderr,
            "cluster_model: seed %llu: %d steps, %llu publishes (%llu sent again), %llu kill -9, "
            "%llu reconnections (%llu ended by a kill), %llu hints checked, %llu catch-ups, %llu "
            "resumes with replay all\n",
            (unsigned long long)seed, steps, (unsigned long long)n_pub,
            (unsigned long long)n_retried, (unsigned long long)n_kill,
            (unsigned long long)n_reconnect, (unsigned long long)n_closed_by_kill,
            (unsigned long long)hints, (unsigned long long)catchups, (unsigned long long)replays);
    cr_assert_eq(n_kill, 2, "two nodes were killed");
    cr_assert_gt(n_closed_by_kill, 0, "a kill ended some connections");
    cr_assert_gt(catchups, 0, "resumes caught up");
    for (int i = 0; i < NN; i++) {
        json_t *st = nudged_stats(&node[i]);
        cr_expect_eq(stats_int(st, "cluster.up"), 1, "node %d", i);
        json_decref(st);
    }
}
