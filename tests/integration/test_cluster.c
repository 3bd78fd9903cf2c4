/* A cluster of nudged nodes on one real redis-server (docs/cluster.md): publish on any node,
 * subscribe on any node, resume on a node that was not up when the hints were published, and
 * what a node does when the channel did not carry a change or Redis dropped it. Every node and
 * Redis are started here on free loopback ports and stopped by PID. */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "redisd.h"
#include "relay.h"
#include "subcheck.h"
#include "wsc.h"

#define NODES 3

static struct redisd srv;

static void stop_redis(void)
{
    redisd_stop(&srv, 0);
}

static void start_redis(void)
{
    cr_assert_eq(redisd_start(&srv, 0), 0, "redis-server did not start");
}

/* A node on srv, with extra args (NULL-terminated, at most 8). */
static void start_node(struct nudged *d, const char *const *extra)
{
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%u", srv.port);
    const char *args[16] = {"--engine", url, "--redis-timeout", "500", "--memory"};
    int n = 5;
    for (int i = 0; extra && extra[i] && n < 15; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    memset(d, 0, sizeof(*d));
    subcheck_start(d, args);
}

static redisReply *redis_cmd(redisContext *rc, int argc, const char **argv)
{
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
    cr_assert_not_null(r, "redis: %s", rc->errstr);
    return r;
}

/* Publish to topic straight into Redis with the publish script, on a channel no node listens
 * to: Redis's record moves, and no node hears of it (a change the channel did not carry). */
static long long publish_unheard(const char *epoch, const char *topic)
{
    redisContext *rc = redisd_connect(&srv);
    cr_assert_not_null(rc);
    char ke[256], kg[256], kf[256], km[256], kx[256];
    relay_key(ke, sizeof ke, "nudge", "epoch", NULL, 0);
    relay_key(kg, sizeof kg, "nudge", "gpos", NULL, 0);
    relay_key(kf, sizeof kf, "nudge", "floor", NULL, 0);
    relay_key(km, sizeof km, "nudge", "m", topic, strlen(topic));
    relay_key(kx, sizeof kx, "nudge", "x", topic, strlen(topic));
    const char *argv[] = {
        "EVAL", relay_publish_lua, "5",      ke, kg, kf, km, kx, epoch, topic, "", "", "64",
        "300",  "604800",          "nowhere"};
    redisReply *r = redis_cmd(rc, 16, argv);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "publish script: %s", r->str ? r->str : "?");
    long long seq = r->element[0]->integer;
    freeReplyObject(r);
    redisFree(rc);
    return seq;
}

static void publish_one(nudge_client_t *c, const char *topic, const char *data, uint64_t *seq)
{
    const char *t[1] = {topic};
    cr_assert_eq(nudge_publish(c, t, 1, data, seq), NUDGE_OK);
}

static void open_sub(struct wsc *w, const struct nudged *d, const char *topic, uint64_t want)
{
    const char *t[1] = {topic};
    cr_assert_eq(wsc_open(w, d->ws_port, SUB_PROTO_JSON), WSC_OK);
    subcheck_send_sub(w, 1, t, 1, NULL, NULL);
    subcheck_expect_subscribed(w, topic, want);
}

/* Publish one change to topic once the node takes publishes again (within 10 s); its seq. */
static uint64_t publish_when_back(nudge_client_t *c, const char *topic)
{
    const char *t[1] = {topic};
    uint64_t seq = 0;
    for (int i = 0; i < 200 && seq == 0; i++)
        if (nudge_publish(c, t, 1, NULL, &seq) != NUDGE_OK) sleep_ms(50);
    return seq;
}

/* SAVE (a snapshot of Redis now), when save, then restart Redis on its port: what it has after
 * is the snapshot, or nothing. */
static void restart_redis(int save)
{
    if (save) {
        redisContext *rc = redisd_connect(&srv);
        cr_assert_not_null(rc);
        redisReply *r = redisCommand(rc, "SAVE");
        cr_assert(r && r->type == REDIS_REPLY_STATUS);
        freeReplyObject(r);
        redisFree(rc);
    }
    uint16_t port = srv.port;
    cr_assert_eq(redisd_stop(&srv, 1), 0); /* --save '': nothing written at shutdown */
    cr_assert_eq(redisd_start(&srv, port), 0, "redis-server did not start again");
}

/* w's node adopted a new epoch: w is closed with 1012 (within 15 s); it connects again to port,
 * finds another epoch than old, and its resume of topic from pos gets reset "epoch" at cur (the
 * topic's seq in the new epoch). */
static void expect_new_epoch(struct wsc *w, uint16_t port, const char *old, const char *topic,
                             int64_t pos, uint64_t cur)
{
    int64_t until = now_ms() + 15000;
    while (!w->closed && now_ms() < until)
        wsc_recv(w, 200);
    cr_assert(w->closed, "the subscriber was not closed");
    cr_assert_eq(w->close_code, 1012, "close code %u", w->close_code);
    wsc_free(w, 1);
    cr_assert_eq(wsc_open(w, port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_str_neq(w->epoch, old, "a new epoch");
    const char *t[1] = {topic};
    int64_t p[1] = {pos};
    subcheck_send_sub(w, 1, t, 1, old, p);
    subcheck_expect_subscribed(w, topic, cur);
    subcheck_expect_reset(w, topic, cur, "epoch");
}

/* Redis and one node a with a subscriber w of "t" (confirmed at 0). */
static void one_node(struct nudged *a, struct wsc *w)
{
    start_redis();
    start_node(a, NULL);
    open_sub(w, a, "t", 0);
}

static void one_node_done(struct nudged *a, struct wsc *w)
{
    wsc_close(w, 1000);
    cr_assert_eq(nudged_stop(a), 0);
}

TestSuite(cluster, .fini = stop_redis, .timeout = 60);

Test(cluster, a_hint_published_on_one_node_reaches_every_node_with_the_seq_in_its_ack)
{
    start_redis();
    struct nudged d[NODES];
    for (int i = 0; i < NODES; i++)
        start_node(&d[i], NULL);
    struct wsc w[NODES];
    for (int i = 0; i < NODES; i++)
        open_sub(&w[i], &d[i], "project:17", 0);
    nudge_client_t *c = subcheck_publisher(&d[0], "cluster-test");
    cr_assert_str_eq(nudge_epoch(c), w[1].epoch, "one epoch for every node");
    uint64_t seq = 0;
    publish_one(c, "project:17", "{\"i\":1}", &seq);
    cr_assert_eq(seq, 1, "the seq Redis gave");
    for (int i = 0; i < NODES; i++)
        subcheck_expect_hint_data(&w[i], "project:17", 1);
    /* the publishing node's subscriber got it once, from the channel like the others */
    subcheck_expect_silence(&w[0], 200, "one hint per publish");
    json_t *st = nudged_stats(&d[1]);
    cr_expect_eq(stats_int(st, "cluster.remote"), 1);
    cr_expect_eq(stats_int(st, "cluster.up"), 1);
    json_decref(st);
    nudge_close(c);
    for (int i = 0; i < NODES; i++) {
        wsc_close(&w[i], 1000);
        cr_assert_eq(nudged_stop(&d[i]), 0);
    }
}

/* A publish's origin may name a connection on another node: that node marks the hint own for
 * it, or gives it nothing with skip_origin; its other subscribers get the hint as usual. */
Test(cluster, origin_and_skip_origin_reach_the_connection_on_another_node)
{
    start_redis();
    struct nudged a, b;
    start_node(&a, NULL);
    start_node(&b, NULL);
    struct wsc me, other;
    open_sub(&me, &b, "t", 0);
    open_sub(&other, &b, "t", 0);
    nudge_client_t *c = subcheck_publisher(&a, "cluster-test");
    const char *t[1] = {"t"};
    struct nudge_pub p = {.topics = t, .ntopics = 1, .origin = me.conn_id};
    cr_assert_eq(nudge_publish_ex(c, &p, NULL), NUDGE_OK);
    subcheck_expect_hint_own(&me, "t", 1, 1);
    subcheck_expect_hint_own(&other, "t", 1, 0);
    p.skip_origin = 1;
    cr_assert_eq(nudge_publish_ex(c, &p, NULL), NUDGE_OK);
    subcheck_expect_hint_own(&other, "t", 2, 0);
    subcheck_expect_silence(&me, 300, "skip_origin: its own change is not sent to it");
    wsc_close(&me, 1000);
    wsc_close(&other, 1000);
    nudge_close(c);
    cr_assert_eq(nudged_stop(&b), 0);
    cr_assert_eq(nudged_stop(&a), 0);
}

/* A client coming from a node that already delivered seq N may reach a node that has not read
 * N from the channel yet: its position is confirmed, not reset "ahead", and the hints up to it
 * are not sent twice. Here the node never hears N (published on a channel no node listens to). */
Test(cluster, a_resume_ahead_of_a_node_that_lags_is_confirmed_not_reset)
{
    start_redis();
    struct nudged a;
    start_node(&a, NULL);
    nudge_client_t *c = subcheck_publisher(&a, "cluster-test");
    publish_one(c, "t", NULL, NULL);
    cr_assert_eq(publish_unheard(nudge_epoch(c), "t"), 2);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, a.ws_port, SUB_PROTO_JSON), WSC_OK);
    const char *t[1] = {"t"};
    int64_t pos[1] = {2};
    subcheck_send_sub(&w, 1, t, 1, w.epoch, pos);
    subcheck_expect_subscribed(&w, "t", 2);
    subcheck_expect_silence(&w, 200, "no reset, nothing sent again");
    publish_one(c, "t", NULL, NULL); /* seq 3: the node sees the gap, synchronises */
    struct sub_msg m;
    subcheck_expect_type(&w, SUB_HINT, &m, "the next hint");
    cr_assert(m.seq == 3 && m.count == 1, "seq %llu n %u", (unsigned long long)m.seq, m.count);
    sub_msg_clear(&m);
    subcheck_expect_silence(&w, 300, "seq 2 is not sent: the client had it");
    nudge_close(c);
    one_node_done(&a, &w);
}

#define PER_NODE 200

Test(cluster, publishes_to_one_topic_from_three_nodes_are_numbered_once_in_one_order)
{
    start_redis();
    struct nudged d[NODES];
    struct wsc w[NODES];
    nudge_client_t *c[NODES];
    for (int i = 0; i < NODES; i++) {
        start_node(&d[i], NULL);
        open_sub(&w[i], &d[i], "feed", 0);
        c[i] = subcheck_publisher(&d[i], "cluster-test");
    }
    /* Pipelined from the three nodes at once, interleaved. */
    static uint8_t acked[NODES * PER_NODE + 1];
    memset(acked, 0, sizeof acked);
    const char *t[1] = {"feed"};
    struct nudge_pub p = {.topics = t, .ntopics = 1};
    for (int k = 0; k < PER_NODE; k++)
        for (int i = 0; i < NODES; i++)
            cr_assert_eq(nudge_send(c[i], &p, NULL), NUDGE_OK);
    for (int i = 0; i < NODES; i++) {
        for (int k = 0; k < PER_NODE; k++) {
            uint64_t id, seq;
            size_t n;
            cr_assert_eq(nudge_recv_ack(c[i], &id, &seq, 1, &n), NUDGE_OK);
            cr_assert(seq >= 1 && seq <= NODES * PER_NODE, "seq %llu", (unsigned long long)seq);
            cr_assert_eq(acked[seq]++, 0, "seq %llu given twice", (unsigned long long)seq);
        }
    }
    /* Every node's subscriber sees 1..600 in order, each once. */
    for (int i = 0; i < NODES; i++) {
        uint64_t next = 1;
        while (next <= NODES * PER_NODE) {
            struct sub_msg m;
            subcheck_expect_type(&w[i], SUB_HINT, &m, "hint");
            cr_assert(m.seq == next && m.count == 1, "node %d: seq %llu n %u after %llu", i,
                      (unsigned long long)m.seq, m.count, (unsigned long long)next - 1);
            next = m.seq + 1;
            sub_msg_clear(&m);
        }
        subcheck_expect_silence(&w[i], 100, "nothing after the last");
    }
    for (int i = 0; i < NODES; i++) {
        nudge_close(c[i]);
        wsc_close(&w[i], 1000);
        cr_assert_eq(nudged_stop(&d[i]), 0);
    }
}

Test(cluster, a_node_started_after_the_publishes_resumes_a_client_with_replay_or_catch_up)
{
    start_redis();
    struct nudged a, b;
    start_node(&a, NULL);
    nudge_client_t *c = subcheck_publisher(&a, "cluster-test");
    char data[32];
    for (int i = 1; i <= 10; i++) {
        snprintf(data, sizeof data, "{\"i\":%d}", i);
        uint64_t seq;
        publish_one(c, "doc:1", data, &seq);
        cr_assert_eq(seq, (uint64_t)i);
    }
    /* doc:2's record starts at the floor, the highest seq given so far: 10 */
    uint64_t seq2 = 0;
    publish_one(c, "doc:2", "{\"i\":11}", &seq2);
    cr_assert_eq(seq2, 11);
    const char *epoch = nudge_epoch(c);
    /* b was not up for any of it: it read every record and stream when it started. */
    start_node(&b, NULL);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, b.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_str_eq(w.epoch, epoch);
    const char *t1[1] = {"doc:1"}, *t2[1] = {"doc:2"};
    int64_t pos[1] = {4};
    subcheck_send_sub_mode(&w, 1, t1, 1, epoch, pos, 1);
    subcheck_expect_subscribed(&w, "doc:1", 10);
    for (uint64_t s = 5; s <= 10; s++)
        subcheck_expect_hint_data(&w, "doc:1", s);
    pos[0] = 10; /* what a client subscribed before its first publish holds */
    subcheck_send_sub_mode(&w, 2, t2, 1, epoch, pos, 0);
    subcheck_expect_subscribed(&w, "doc:2", 11);
    subcheck_expect_hint_n(&w, "doc:2", 11, 1, 1);
    subcheck_expect_silence(&w, 200, "replay and catch-up only");
    /* and live from there: a publish on a reaches b's client */
    publish_one(c, "doc:1", "{\"i\":11}", NULL);
    subcheck_expect_hint_data(&w, "doc:1", 11);
    wsc_close(&w, 1000);
    nudge_close(c);
    cr_assert_eq(nudged_stop(&b), 0);
    cr_assert_eq(nudged_stop(&a), 0);
}

Test(cluster, a_change_the_channel_did_not_carry_is_caught_up_once_the_gap_is_seen)
{
    start_redis();
    struct nudged a, b;
    start_node(&a, NULL);
    start_node(&b, NULL);
    struct wsc w;
    open_sub(&w, &b, "quiet", 0);
    cr_assert_eq(wsc_send_text(&w, "{\"type\":\"sub\",\"id\":2,\"topics\":[\"loud\"]}"), 0);
    subcheck_expect_subscribed(&w, "loud", 0);
    nudge_client_t *c = subcheck_publisher(&a, "cluster-test");
    publish_one(c, "loud", NULL, NULL);
    subcheck_expect_hint_n(&w, "loud", 1, 1, 0);
    cr_assert_eq(publish_unheard(nudge_epoch(c), "quiet"), 2, "quiet starts at the floor");
    subcheck_expect_silence(&w, 200, "nobody heard it yet");
    /* the next publish's global position is two past the last one b saw */
    publish_one(c, "loud", NULL, NULL);
    subcheck_expect_hint_n(&w, "loud", 2, 1, 0);
    struct sub_msg m;
    subcheck_expect_type(&w, SUB_HINT, &m, "the catch-up of quiet");
    cr_assert(wstr_eq(m.topic, "quiet") && m.seq == 2, "%.*s seq %llu", (int)m.topic.len, m.topic.p,
              (unsigned long long)m.seq);
    sub_msg_clear(&m);
    json_t *st = nudged_stats(&b);
    cr_expect_eq(stats_int(st, "cluster.gaps"), 1);
    cr_expect_geq(stats_int(st, "cluster.caught_up"), 1);
    json_decref(st);
    wsc_close(&w, 1000);
    nudge_close(c);
    cr_assert_eq(nudged_stop(&b), 0);
    cr_assert_eq(nudged_stop(&a), 0);
}

Test(cluster, nodes_whose_redis_connections_were_cut_synchronise_again_and_catch_up)
{
    struct nudged a;
    struct wsc w;
    one_node(&a, &w);
    nudge_client_t *c = subcheck_publisher(&a, "cluster-test");
    publish_one(c, "t", NULL, NULL);
    subcheck_expect_hint_n(&w, "t", 1, 1, 0);
    char epoch[17];
    snprintf(epoch, sizeof epoch, "%s", nudge_epoch(c));
    /* While the node is cut off, t moves twice; then the node reconnects. */
    redisContext *rc = redisd_connect(&srv);
    cr_assert_not_null(rc);
    const char *kill_pubsub[] = {"CLIENT", "KILL", "TYPE", "pubsub"};
    freeReplyObject(redis_cmd(rc, 4, kill_pubsub));
    publish_unheard(epoch, "t");
    publish_unheard(epoch, "t");
    struct sub_msg m;
    subcheck_expect_type(&w, SUB_HINT, &m, "the catch-up after the reconnection");
    cr_assert(wstr_eq(m.topic, "t") && m.seq == 3 && m.count == 2, "seq %llu n %u",
              (unsigned long long)m.seq, m.count);
    sub_msg_clear(&m);
    /* and publishing works again */
    cr_assert_eq(publish_when_back(c, "t"), 4);
    subcheck_expect_hint_n(&w, "t", 4, 1, 0);
    json_t *st = nudged_stats(&a);
    cr_expect_geq(stats_int(st, "cluster.syncs"), 2);
    json_decref(st);
    redisFree(rc);
    nudge_close(c);
    one_node_done(&a, &w);
}

/* A node keeping one position forgets t1 when t2 comes; Redis still holds t1's record. A
 * subscriber to t1 on that node must get t1's next hint, whose seq Redis gives from its record. */
Test(cluster, a_topic_the_node_forgot_but_redis_kept_still_reaches_its_new_subscribers)
{
    start_redis();
    struct nudged a;
    start_node(&a, (const char *const[]){"--max-positions", "1", "--hist-per-topic", "0", NULL});
    nudge_client_t *c = subcheck_publisher(&a, "cluster-test");
    uint64_t s1 = 0, s2 = 0;
    publish_one(c, "t1", NULL, &s1);
    publish_one(c, "t2", NULL, &s2);
    cr_assert(s1 == 1 && s2 == 2, "t1 %llu t2 %llu", (unsigned long long)s1,
              (unsigned long long)s2);
    json_t *st = nudged_stats(&a);
    cr_assert_geq(stats_int(st, "positions.forgotten"), 1, "t1 was forgotten by the node");
    json_decref(st);
    struct wsc w;
    open_sub(&w, &a, "t1", 0);
    publish_one(c, "t1", NULL, &s1);
    cr_assert_eq(s1, 2, "Redis numbers t1 from its record");
    subcheck_expect_hint_n(&w, "t1", 2, 2, 0);
    nudge_close(c);
    one_node_done(&a, &w);
}

Test(cluster, a_publish_fails_while_redis_does_not_answer_and_works_once_it_does)
{
    start_redis();
    struct nudged a;
    start_node(&a, NULL);
    nudge_client_t *c = subcheck_publisher(&a, "cluster-test");
    publish_one(c, "t", NULL, NULL);
    cr_assert_eq(kill(srv.pid, SIGSTOP), 0);
    const char *t[1] = {"t"};
    int64_t t0 = now_ms();
    int rc = nudge_publish(c, t, 1, NULL, NULL);
    int64_t took = now_ms() - t0;
    int status = 0;
    char *body = http_get(a.admin_port, "/readyz", &status);
    cr_assert_eq(kill(srv.pid, SIGCONT), 0);
    cr_assert_eq(rc, NUDGE_EBROKER, "a publish Redis did not answer fails (rc %d)", rc);
    cr_expect_eq(nudge_last_code(c), WIRE_C_STORAGE, "code %d", nudge_last_code(c));
    cr_expect_eq(status, 503, "/readyz while Redis does not answer: %d %s", status,
                 body ? body : "");
    cr_expect(body && strstr(body, "redis unreachable"));
    free(body);
    cr_assert_lt(took, 3000, "within --redis-timeout and a little (%lld ms)", (long long)took);
    cr_assert_geq(publish_when_back(c, "t"), 2, "publishing works again once Redis answers");
    body = http_get(a.admin_port, "/readyz", &status);
    cr_expect_eq(status, 200, "/readyz once Redis is back: %d", status);
    free(body);
    nudge_close(c);
    cr_assert_eq(nudged_stop(&a), 0);
}

/* A Redis restarted without its data has no epoch: the first node back sets a new one and every
 * node adopts it. Positions of the old epoch are void: subscribers are closed with 1012 and
 * their resume gets a reset "epoch"; publishing goes on in the new epoch. Never silence. */
Test(cluster, after_redis_lost_its_data_the_nodes_adopt_a_new_epoch_and_reset_subscribers)
{
    start_redis();
    struct nudged a, b;
    start_node(&a, NULL);
    start_node(&b, NULL);
    struct wsc w;
    open_sub(&w, &b, "t", 0);
    char old[32];
    snprintf(old, sizeof old, "%s", w.epoch);
    nudge_client_t *c = subcheck_publisher(&a, "cluster-test");
    publish_one(c, "t", NULL, NULL);
    publish_one(c, "t", NULL, NULL);
    subcheck_expect_hint_n(&w, "t", 1, 1, 0);
    subcheck_expect_hint_n(&w, "t", 2, 1, 0);
    restart_redis(0);
    /* b's subscriber is closed once b adopted the new epoch */
    expect_new_epoch(&w, b.ws_port, old, "t", 2, 0);
    /* a publishes again once it adopted the epoch too: numbering starts again */
    cr_assert_eq(publish_when_back(c, "t"), 1, "the new epoch numbers t from 1");
    subcheck_expect_hint_n(&w, "t", 1, 1, 0);
    json_t *st = nudged_stats(&b);
    cr_expect_eq(stats_int(st, "cluster.epochs"), 1);
    json_decref(st);
    wsc_close(&w, 1000);
    nudge_close(c);
    cr_assert_eq(nudged_stop(&b), 0);
    cr_assert_eq(nudged_stop(&a), 0);
}

/* Per node efficiency: a publish costs one script call in Redis and one message per node, however
 * many subscribers the nodes have (they fan out locally), and a node sends its publishes without
 * waiting for each reply (pipelined: many on their way at once). */
#define SUBS_PER_NODE 20
#define BATCH 100

static long long info_field(redisContext *rc, const char *section, const char *field)
{
    redisReply *r = redisCommand(rc, "INFO %s", section);
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    const char *p = strstr(r->str, field);
    long long v = p ? strtoll(p + strlen(field), NULL, 10) : -1;
    freeReplyObject(r);
    return v;
}

Test(cluster, a_publish_is_one_redis_call_and_one_message_per_node_and_publishes_are_pipelined)
{
    start_redis();
    struct nudged d[NODES];
    static struct wsc w[NODES][SUBS_PER_NODE];
    for (int i = 0; i < NODES; i++) {
        start_node(&d[i], NULL);
        for (int k = 0; k < SUBS_PER_NODE; k++)
            open_sub(&w[i][k], &d[i], "t", 0);
    }
    redisContext *rc = redisd_connect(&srv);
    cr_assert_not_null(rc);
    redisReply *r = redisCommand(rc, "PUBSUB NUMSUB nudge{n}:hints");
    cr_assert(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
    cr_assert_eq(r->element[1]->integer, NODES, "one subscription per node, not per client");
    freeReplyObject(r);
    freeReplyObject(redisCommand(rc, "CONFIG RESETSTAT"));
    nudge_client_t *c = subcheck_publisher(&d[0], "cluster-test");
    /* Redis pauses every client for 300 ms (less than the nodes' --redis-timeout 500): the
     * node's publishes pile up on their way. */
    freeReplyObject(redisCommand(rc, "CLIENT PAUSE 300 ALL"));
    const char *t[1] = {"t"};
    struct nudge_pub p = {.topics = t, .ntopics = 1};
    for (int k = 0; k < BATCH; k++)
        cr_assert_eq(nudge_send(c, &p, NULL), NUDGE_OK);
    cr_assert_eq(nudge_flush(c), NUDGE_OK);
    int64_t most = 0, until = now_ms() + 250;
    while (now_ms() < until && most < BATCH) {
        json_t *st = nudged_stats(&d[0]);
        int64_t pend = stats_int(st, "cluster.in_flight");
        json_decref(st);
        if (pend > most) most = pend;
        sleep_ms(5);
    }
    cr_assert_eq(most, BATCH, "all %d publishes sent to Redis at once (saw %lld)", BATCH,
                 (long long)most);
    for (int k = 0; k < BATCH; k++) {
        uint64_t id, seq;
        size_t n;
        cr_assert_eq(nudge_recv_ack(c, &id, &seq, 1, &n), NUDGE_OK);
    }
    for (int i = 0; i < NODES; i++)
        for (int k = 0; k < SUBS_PER_NODE; k++) {
            uint64_t got = 0;
            while (got < BATCH) {
                struct sub_msg m;
                subcheck_expect_type(&w[i][k], SUB_HINT, &m, "hint");
                got = m.seq;
                sub_msg_clear(&m);
            }
        }
    /* one script call per publish, one message out per node */
    long long evalsha = 0;
    r = redisCommand(rc, "INFO commandstats");
    cr_assert(r && r->type == REDIS_REPLY_STRING);
    const char *e = strstr(r->str, "cmdstat_evalsha:calls=");
    if (e) evalsha = strtoll(e + strlen("cmdstat_evalsha:calls="), NULL, 10);
    freeReplyObject(r);
    cr_assert_eq(evalsha, BATCH, "publish script calls");
    for (int i = 0; i < NODES; i++) {
        json_t *st = nudged_stats(&d[i]);
        cr_expect_eq(stats_int(st, "cluster.remote") + stats_int(st, "cluster.own"), BATCH,
                     "node %d read each publish once", i);
        json_decref(st);
    }
    long long out = info_field(rc, "stats", "total_net_output_bytes:");
    fprintf(stderr,
            "cluster: %d publishes to %d subscribers on %d nodes: %lld script calls, "
            "%lld bytes out of Redis (%lld per publish)\n",
            BATCH, NODES * SUBS_PER_NODE, NODES, evalsha, out, out / BATCH);
    cr_expect_lt(out / BATCH, 2000, "Redis sends each publish to each node once, not per client");
    redisFree(rc);
    nudge_close(c);
    for (int i = 0; i < NODES; i++) {
        for (int k = 0; k < SUBS_PER_NODE; k++)
            wsc_close(&w[i][k], 1000);
        cr_assert_eq(nudged_stop(&d[i]), 0);
    }
}

/* A node that stops reading (SIGSTOP: a stalled machine) does not slow the others: Redis drops
 * its subscription once its output passes the pubsub limit, the others publish and deliver as
 * usual, and the stalled node, back, synchronises and catches its subscribers up. */
#define FLOOD 8000 /* ~8 MB of messages: more than the kernel buffers a stopped reader */

Test(cluster, a_stalled_node_does_not_stall_the_others_and_catches_up_when_back)
{
    start_redis();
    redisContext *rc = redisd_connect(&srv);
    cr_assert_not_null(rc);
    redisReply *r =
        redisCommand(rc, "CONFIG SET client-output-buffer-limit %s", "pubsub 65536 32768 1");
    cr_assert(r && r->type == REDIS_REPLY_STATUS, "CONFIG SET: %s", r && r->str ? r->str : "?");
    freeReplyObject(r);
    struct nudged a, b;
    start_node(&a, NULL);
    start_node(&b, NULL);
    struct wsc wa, wb;
    open_sub(&wa, &a, "t", 0);
    open_sub(&wb, &b, "t", 0);
    cr_assert_eq(kill(b.pid, SIGSTOP), 0);
    nudge_client_t *c = subcheck_publisher(&a, "cluster-test");
    const char *t[1] = {"t"};
    char data[1000];
    snprintf(data, sizeof data, "{\"pad\":\"%0900d\"}", 0);
    struct nudge_pub p = {.topics = t, .ntopics = 1, .data_json = data};
    int64_t t0 = now_ms();
    for (int k = 0; k < FLOOD; k++)
        cr_assert_eq(nudge_send(c, &p, NULL), NUDGE_OK);
    for (int k = 0; k < FLOOD; k++) {
        uint64_t id, seq;
        size_t n;
        cr_assert_eq(nudge_recv_ack(c, &id, &seq, 1, &n), NUDGE_OK, "publish %d", k);
    }
    uint64_t got = 0;
    while (got < FLOOD) {
        struct sub_msg m;
        subcheck_expect_type(&wa, SUB_HINT, &m, "a's hint");
        got = m.seq;
        sub_msg_clear(&m);
    }
    int64_t took = now_ms() - t0;
    cr_assert_eq(kill(b.pid, SIGCONT), 0);
    got = 0;
    while (got < FLOOD) {
        struct sub_msg m;
        subcheck_expect_type(&wb, SUB_HINT, &m, "b's hint");
        cr_assert_gt(m.seq, got);
        got = m.seq;
        sub_msg_clear(&m);
    }
    json_t *st = nudged_stats(&b);
    int64_t syncs = stats_int(st, "cluster.syncs");
    json_decref(st);
    fprintf(stderr,
            "cluster: %d publishes while a node was stopped: %lld ms on the others; the "
            "stopped node synchronised %lld times\n",
            FLOOD, (long long)took, (long long)syncs);
    cr_expect_geq(syncs, 2, "Redis dropped the stalled node's subscription: it synchronised again");
    redisFree(rc);
    nudge_close(c);
    wsc_close(&wa, 1000);
    wsc_close(&wb, 1000);
    cr_assert_eq(nudged_stop(&b), 0);
    cr_assert_eq(nudged_stop(&a), 0);
}

/* Redis restarted with its data (here a SAVE before the stop): the epoch and every position are
 * the same, the nodes reconnect, and nothing is reset or sent again. */
Test(cluster, after_redis_restarted_with_its_data_nothing_is_reset)
{
    struct nudged a;
    struct wsc w;
    one_node(&a, &w);
    nudge_client_t *c = subcheck_publisher(&a, "cluster-test");
    publish_one(c, "t", NULL, NULL);
    subcheck_expect_hint_n(&w, "t", 1, 1, 0);
    restart_redis(1);
    cr_assert_eq(publish_when_back(c, "t"), 2, "t goes on from its seq in the saved data");
    subcheck_expect_hint_n(&w, "t", 2, 1, 0);
    subcheck_expect_silence(&w, 200, "no reset, nothing again");
    json_t *st = nudged_stats(&a);
    cr_expect_eq(stats_int(st, "cluster.epochs"), 0);
    cr_expect_geq(stats_int(st, "cluster.syncs"), 2);
    json_decref(st);
    nudge_close(c);
    one_node_done(&a, &w);
}

/* Redis back from older data (a snapshot taken before the last publishes, or a failover to a
 * replica that missed them) would give seqs again that clients already hold. The node sees
 * Redis's global position behind what it saw, and retires the epoch: its subscribers are closed
 * with 1012 and reset on resume, and publishing goes on in a new epoch. */
Test(cluster, after_redis_came_back_with_older_data_the_nodes_retire_the_epoch)
{
    struct nudged a;
    struct wsc w;
    one_node(&a, &w);
    char old[32];
    snprintf(old, sizeof old, "%s", w.epoch);
    nudge_client_t *c = subcheck_publisher(&a, "cluster-test");
    publish_one(c, "t", NULL, NULL);
    redisContext *rc = redisd_connect(&srv);
    cr_assert_not_null(rc);
    redisReply *r = redisCommand(rc, "SAVE");
    cr_assert(r && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(rc);
    publish_one(c, "t", NULL, NULL);
    publish_one(c, "t", NULL, NULL); /* seq 3: not in the snapshot */
    for (uint64_t s = 1; s <= 3; s++)
        subcheck_expect_hint_n(&w, "t", s, 1, 0);
    restart_redis(0);                                /* back at the snapshot: seq 1 */
    expect_new_epoch(&w, a.ws_port, old, "t", 3, 1); /* the snapshot's t, under the new epoch */
    json_t *st = nudged_stats(&a);
    cr_expect_eq(stats_int(st, "cluster.behind"), 1);
    cr_expect_eq(stats_int(st, "cluster.epochs"), 1);
    json_decref(st);
    nudge_close(c);
    one_node_done(&a, &w);
}

/* A node that starts while hints are published reads the records and hears the channel at once:
 * a publish after its record was read (or to a topic that had none yet) arrives as a message,
 * and counts. Each publish names a topic of its own, so a message the node dropped would be a
 * position it never learns. */
#define DURING 3000

Test(cluster, a_node_started_while_hints_are_published_misses_none)
{
    start_redis();
    struct nudged a, b;
    start_node(&a, NULL);
    nudge_client_t *c = subcheck_publisher(&a, "cluster-test");
    static char names[DURING][16];
    for (int k = 0; k < DURING; k++) {
        snprintf(names[k], sizeof names[k], "t:%d", k);
        const char *t[1] = {names[k]};
        struct nudge_pub p = {.topics = t, .ntopics = 1};
        cr_assert_eq(nudge_send(c, &p, NULL), NUDGE_OK);
    }
    cr_assert_eq(nudge_flush(c), NUDGE_OK);
    start_node(&b, NULL); /* while a works through them */
    for (int k = 0; k < DURING; k++) {
        uint64_t id, seq;
        size_t n;
        cr_assert_eq(nudge_recv_ack(c, &id, &seq, 1, &n), NUDGE_OK);
    }
    int64_t kept = 0, until = now_ms() + 5000;
    while (kept < DURING && now_ms() < until) {
        json_t *st = nudged_stats(&b);
        kept = stats_int(st, "positions.kept");
        json_decref(st);
        if (kept < DURING) sleep_ms(50);
    }
    cr_assert_eq(kept, DURING, "b knows every topic published while it started");
    nudge_close(c);
    cr_assert_eq(nudged_stop(&b), 0);
    cr_assert_eq(nudged_stop(&a), 0);
}

/* Anything that can write to Redis can write to the channel: a message whose origin is not a
 * node's (here one that starts like one) is still a hint, with no origin, and nothing else. */
Test(cluster, a_message_whose_origin_is_not_a_nodes_is_a_hint_without_origin)
{
    struct nudged a;
    struct wsc w;
    one_node(&a, &w);
    redisContext *rc = redisd_connect(&srv);
    cr_assert_not_null(rc);
    const char *lua = "return redis.call('PUBLISH', KEYS[1], cmsgpack.pack({1, 't', ARGV[1], 1, "
                      "1, 0, '', '0123456789abcdefNOT-A-REQUEST-NUMBER'}))";
    redisReply *r = redisCommand(rc, "EVAL %s 1 nudge{n}:hints %s", lua, w.epoch);
    cr_assert(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1, "published to the node");
    freeReplyObject(r);
    redisFree(rc);
    subcheck_expect_hint_own(&w, "t", 1, 0);
    one_node_done(&a, &w);
}

Test(cluster, a_node_that_cannot_reach_redis_does_not_start)
{
    start_redis();
    uint16_t port = srv.port;
    redisd_stop(&srv, 0);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%u", port);
    struct nudged d;
    memset(&d, 0, sizeof d);
    const char *args[] = {"--engine", url, "--redis-timeout", "100", "--memory", NULL};
    cr_assert_neq(nudged_start(&d, args), 0, "no ready line without Redis");
}

Test(cluster, engine_flags_are_checked)
{
    char bin[256];
    cr_assert_eq(nudge_bin_path("nudged", bin, sizeof bin), 0);
    struct {
        const char *args[3];
        const char *says;
    } bad[] = {
        {{"--engine", "mysql://x", NULL}, "--engine wants local or redis://HOST[:PORT]"},
        {{"--engine", "redis://127.0.0.1:0", NULL}, "--engine wants"},
        {{"--redis-prefix", "a{b}", NULL}, "--redis-prefix wants"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[8] = {bin};
        int n = 1;
        for (int k = 0; bad[i].args[k]; k++)
            argv[n++] = bad[i].args[k];
        argv[n] = NULL;
        char *out = NULL, *err = NULL;
        int status = run_cmd(argv, NULL, &out, &err, 10000);
        cr_expect_eq(status, 2, "%s: exit %d", bad[i].args[1], status);
        cr_expect(err && strstr(err, bad[i].says), "%s: stderr '%s'", bad[i].args[1],
                  err ? err : "");
        free(out);
        free(err);
    }
}
