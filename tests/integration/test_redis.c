/* The Redis engine's scripts (protocol/relay.c) against a real redis-server (Debian's, started on
 * a free loopback port by tests/support/redisd.c): numbering, the epoch check, the floor, the
 * stream and the channel, and what a Redis that lost its data does to them. */
#include <criterion/criterion.h>

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redisd.h"
#include "relay.h"

static struct redisd srv;
static redisContext *rc;

static void fini(void)
{
    if (rc) redisFree(rc);
    rc = NULL;
    redisd_stop(&srv, 0);
}

static void start(void)
{
    cr_assert_eq(redisd_start(&srv, 0), 0, "redis-server did not start");
    rc = redisd_connect(&srv);
    cr_assert_not_null(rc);
}

TestSuite(redis, .fini = fini, .timeout = 60);

#define PREFIX "t"
#define EPOCH "00000000000000e1"

static void key(char *out, const char *kind, const char *topic)
{
    cr_assert_gt(relay_key(out, 256, PREFIX, kind, topic, topic ? strlen(topic) : 0), 0);
}

static redisReply *cmd_argv(int argc, const char **argv)
{
    redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
    cr_assert_not_null(r, "redis: %s", rc->errstr);
    return r;
}

/* EVAL the epoch script; returns the epoch now (static buffer). */
static const char *epoch_script(const char *candidate)
{
    static char now[32];
    char k[256];
    key(k, "epoch", NULL);
    const char *argv[] = {"EVAL", relay_epoch_lua, "1", k, candidate};
    redisReply *r = cmd_argv(5, argv);
    cr_assert_eq(r->type, REDIS_REPLY_STRING, "epoch script: %s", r->str ? r->str : "?");
    snprintf(now, sizeof(now), "%s", r->str);
    freeReplyObject(r);
    return now;
}

struct pubres {
    long long seq, gpos, time_ms, base;
    char err[64]; /* the error reply, "" when it published */
};

static struct pubres publish(const char *epoch, const char *topic, const char *data,
                             size_t data_len, const char *per_topic)
{
    char ke[256], kg[256], kf[256], km[256], kx[256];
    key(ke, "epoch", NULL), key(kg, "gpos", NULL), key(kf, "floor", NULL);
    key(km, "m", topic), key(kx, "x", topic);
    const char *argv[] = {"EVAL",    relay_publish_lua,
                          "5",       ke,
                          kg,        kf,
                          km,        kx,
                          epoch,     topic,
                          data,      "node1:7",
                          per_topic, "300",
                          "604800",  PREFIX "{n}:hints"};
    size_t lens[16];
    for (int i = 0; i < 16; i++)
        lens[i] = strlen(argv[i]);
    lens[10] = data_len;
    redisReply *r = redisCommandArgv(rc, 16, argv, lens);
    cr_assert_not_null(r, "redis: %s", rc->errstr);
    struct pubres p = {0};
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(p.err, sizeof(p.err), "%s", r->str);
    } else {
        cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
        cr_assert_eq(r->elements, 4);
        p.seq = r->element[0]->integer, p.gpos = r->element[1]->integer;
        p.time_ms = r->element[2]->integer, p.base = r->element[3]->integer;
    }
    freeReplyObject(r);
    return p;
}

Test(redis, publish_numbers_each_topic_from_1_and_every_publish_in_one_global_order)
{
    start();
    cr_assert_str_eq(epoch_script(EPOCH), EPOCH);
    struct pubres a1 = publish(EPOCH, "project:17", "", 0, "64");
    struct pubres a2 = publish(EPOCH, "project:17", "", 0, "64");
    struct pubres b1 = publish(EPOCH, "user:42", "", 0, "64");
    cr_assert_str_empty(a1.err, "%s", a1.err);
    cr_expect_eq(a1.seq, 1);
    cr_expect_eq(a2.seq, 2);
    cr_expect_eq(a1.base, 0);
    cr_expect_eq(a1.gpos, 1);
    cr_expect_eq(a2.gpos, 2);
    cr_expect_eq(b1.gpos, 3);
    /* user:42 is created at the floor, the highest seq given so far (2): never a seq twice */
    cr_expect_eq(b1.base, 2);
    cr_expect_eq(b1.seq, 3);
    cr_expect_gt(a1.time_ms, 1600000000000LL, "Redis's wall clock, in ms");
    cr_expect_geq(a2.time_ms, a1.time_ms);
}

Test(redis, publish_refuses_an_epoch_not_its_own_and_changes_nothing)
{
    start();
    struct pubres p = publish(EPOCH, "a", "", 0, "64");
    cr_expect_str_eq(p.err, "NUDGE_EPOCH ", "no epoch yet: refused, got '%s'", p.err);
    epoch_script(EPOCH);
    cr_assert_str_eq(epoch_script("00000000000000e2"), EPOCH, "the first node's epoch stays");
    p = publish("00000000000000e2", "a", "", 0, "64");
    cr_expect_str_eq(p.err, "NUDGE_EPOCH " EPOCH);
    const char *argv[] = {"DBSIZE"};
    redisReply *r = cmd_argv(1, argv);
    cr_expect_eq(r->integer, 1, "only the epoch key exists");
    freeReplyObject(r);
    p = publish(EPOCH, "a", "", 0, "64");
    cr_expect_eq(p.seq, 1);
}

/* What a node receives on the channel, and what the topic's stream keeps, is one message:
 * decoded, it carries everything the node fans out. */
Test(redis, the_channel_and_the_stream_carry_the_same_message)
{
    start();
    epoch_script(EPOCH);
    redisContext *sub = redisd_connect(&srv);
    cr_assert_not_null(sub);
    redisReply *r = redisCommand(sub, "SUBSCRIBE %s", PREFIX "{n}:hints");
    cr_assert_not_null(r);
    freeReplyObject(r);
    const char data[] = "\x82\xa2id\x11\xa1z\x00"; /* {"id":17,"z":0}: a NUL inside */
    struct pubres p = publish(EPOCH, "project:17", data, sizeof(data) - 1, "64");
    cr_assert_str_empty(p.err, "%s", p.err);

    cr_assert_eq(redisGetReply(sub, (void **)&r), REDIS_OK);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY);
    cr_assert_eq(r->elements, 3);
    cr_assert_str_eq(r->element[0]->str, "message");
    struct relay_msg m;
    cr_assert_eq(relay_decode((const uint8_t *)r->element[2]->str, r->element[2]->len, &m), 0);
    cr_expect_eq(m.topic_len, 10);
    cr_expect(!memcmp(m.topic, "project:17", 10));
    cr_expect_str_eq(m.epoch, EPOCH);
    cr_expect_eq(m.seq, 1);
    cr_expect_eq(m.gpos, (uint64_t)p.gpos);
    cr_expect_eq(m.time_ms, (uint64_t)p.time_ms);
    cr_expect_eq(m.data_len, sizeof(data) - 1);
    cr_expect(!memcmp(m.data, data, sizeof(data) - 1));
    cr_expect_eq(m.origin_len, 7);
    char live[256];
    cr_assert_lt(r->element[2]->len, sizeof(live));
    memcpy(live, r->element[2]->str, r->element[2]->len);
    size_t live_len = r->element[2]->len;
    freeReplyObject(r);
    redisFree(sub);

    char kx[256];
    key(kx, "x", "project:17");
    const char *argv[] = {"XRANGE", kx, "-", "+"};
    r = cmd_argv(4, argv);
    cr_assert_eq(r->elements, 1);
    redisReply *e = r->element[0];
    cr_expect_str_eq(e->element[0]->str, "1-0", "the entry's ID is the seq");
    cr_assert_eq(e->element[1]->elements, 2);
    cr_expect_str_eq(e->element[1]->element[0]->str, "m");
    cr_expect_eq(e->element[1]->element[1]->len, live_len);
    cr_expect(!memcmp(e->element[1]->element[1]->str, live, live_len));
    freeReplyObject(r);
}

Test(redis, the_stream_keeps_the_newest_per_topic_entries_and_expires)
{
    start();
    epoch_script(EPOCH);
    for (int i = 0; i < 10; i++)
        cr_assert_str_empty(publish(EPOCH, "feed", "", 0, "4").err);
    char kx[256], km[256];
    key(kx, "x", "feed"), key(km, "m", "feed");
    const char *range[] = {"XRANGE", kx, "-", "+"};
    redisReply *r = cmd_argv(4, range);
    cr_assert_eq(r->elements, 4);
    cr_expect_str_eq(r->element[0]->element[0]->str, "7-0");
    cr_expect_str_eq(r->element[3]->element[0]->str, "10-0");
    freeReplyObject(r);
    const char *ttl_x[] = {"TTL", kx}, *ttl_m[] = {"TTL", km};
    r = cmd_argv(2, ttl_x);
    cr_expect(r->integer > 0 && r->integer <= 300, "stream TTL %lld", r->integer);
    freeReplyObject(r);
    r = cmd_argv(2, ttl_m);
    cr_expect(r->integer > 300 && r->integer <= 604800, "record TTL %lld", r->integer);
    freeReplyObject(r);
    /* per_topic 0: a position only, no stream */
    cr_assert_str_empty(publish(EPOCH, "quiet", "", 0, "0").err);
    char kq[256];
    key(kq, "x", "quiet");
    const char *exists[] = {"EXISTS", kq};
    r = cmd_argv(2, exists);
    cr_expect_eq(r->integer, 0);
    freeReplyObject(r);
}

/* A topic whose record expired (the horizon) starts again above every seq given out in the
 * epoch, and its old stream is dropped: a client that held seq 5 is reset, never overlapped. */
Test(redis, a_topic_whose_record_expired_starts_above_every_seq_given)
{
    start();
    epoch_script(EPOCH);
    for (int i = 0; i < 5; i++)
        publish(EPOCH, "a", "", 0, "64");
    char km[256], kx[256];
    key(km, "m", "a"), key(kx, "x", "a");
    const char *del[] = {"DEL", km};
    freeReplyObject(cmd_argv(2, del));
    struct pubres p = publish(EPOCH, "a", "", 0, "64");
    cr_expect_eq(p.base, 5);
    cr_expect_eq(p.seq, 6);
    const char *len[] = {"XLEN", kx};
    redisReply *r = cmd_argv(2, len);
    cr_expect_eq(r->integer, 1, "the stream holds only what came after");
    freeReplyObject(r);
}

/* Redis restarted without persistence: the epoch is gone, every node's publish is refused until
 * it adopts the new one, and the first node to ask sets it. */
Test(redis, a_redis_that_lost_its_data_gets_a_new_epoch_and_refuses_the_old)
{
    start();
    epoch_script(EPOCH);
    publish(EPOCH, "a", "", 0, "64");
    uint16_t port = srv.port;
    redisFree(rc);
    rc = NULL;
    redisd_stop(&srv, 1);
    cr_assert_eq(redisd_start(&srv, port), 0, "restart on port %u", port);
    rc = redisd_connect(&srv);
    cr_assert_not_null(rc);
    struct pubres p = publish(EPOCH, "a", "", 0, "64");
    cr_expect_str_eq(p.err, "NUDGE_EPOCH ");
    cr_assert_str_eq(epoch_script("00000000000000e2"), "00000000000000e2");
    p = publish("00000000000000e2", "a", "", 0, "64");
    cr_expect_eq(p.seq, 1);
}

struct range {
    char epoch[32];
    long long known, base, seq, gpos;
    uint64_t seqs[16]; /* of the entries, decoded */
    size_t n;
};

static struct range range(const char *topic, long long after, int count)
{
    char ke[256], km[256], kx[256], a[32], c[16];
    key(ke, "epoch", NULL), key(km, "m", topic), key(kx, "x", topic);
    snprintf(a, sizeof(a), "%lld", after);
    snprintf(c, sizeof(c), "%d", count);
    const char *argv[] = {"EVAL", relay_range_lua, "3", ke, km, kx, a, c};
    redisReply *r = cmd_argv(8, argv);
    cr_assert_eq(r->type, REDIS_REPLY_ARRAY, "range script: %s", r->str ? r->str : "?");
    cr_assert_eq(r->elements, 6);
    struct range g = {0};
    snprintf(g.epoch, sizeof(g.epoch), "%s", r->element[0]->str);
    g.known = r->element[1]->integer, g.base = r->element[2]->integer;
    g.seq = r->element[3]->integer, g.gpos = r->element[4]->integer;
    redisReply *m = r->element[5];
    cr_assert_eq(m->type, REDIS_REPLY_ARRAY);
    cr_assert_leq(m->elements, 16);
    for (size_t i = 0; i < m->elements; i++) {
        struct relay_msg msg;
        cr_assert_eq(relay_decode((const uint8_t *)m->element[i]->str, m->element[i]->len, &msg), 0,
                     "entry %zu", i);
        cr_assert_eq(msg.topic_len, strlen(topic));
        g.seqs[g.n++] = msg.seq;
    }
    freeReplyObject(r);
    return g;
}

/* What a node reads to resume a client from Redis: the record and the entries after its seq,
 * from which it can tell whether the stream still covers the gap. */
Test(redis, the_range_script_reads_the_record_and_the_entries_after_a_seq)
{
    start();
    epoch_script(EPOCH);
    for (int i = 0; i < 10; i++)
        cr_assert_str_empty(publish(EPOCH, "feed", "", 0, "4").err);
    struct range g = range("feed", 8, 100);
    cr_expect_str_eq(g.epoch, EPOCH);
    cr_expect_eq(g.known, 1);
    cr_expect_eq(g.base, 0);
    cr_expect_eq(g.seq, 10);
    cr_expect_eq(g.gpos, 10);
    cr_assert_eq(g.n, 2, "after 8: 9 and 10");
    cr_expect_eq(g.seqs[0], 9);
    cr_expect_eq(g.seqs[1], 10);
    /* after 2: the stream keeps 7..10 only, so the gap 3..10 is not covered */
    g = range("feed", 2, 100);
    cr_assert_eq(g.n, 4);
    cr_expect_eq(g.seqs[0], 7, "the first entry shows the gap is not covered");
    g = range("feed", 6, 2);
    cr_assert_eq(g.n, 2, "count bounds the reply");
    cr_expect_eq(g.seqs[0], 7);
    cr_expect_eq(g.seqs[1], 8);
    g = range("feed", 10, 100);
    cr_expect_eq(g.n, 0, "up to date: nothing");
    g = range("nothing:here", 0, 100);
    cr_expect_eq(g.known, 0);
    cr_expect_eq(g.n, 0);
    cr_expect_str_eq(g.epoch, EPOCH);
}
