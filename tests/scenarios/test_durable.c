/* Catch-up that outlives the broker (docs/guarantees.md §Durability): positions, the epoch, the
 * global position and history live in --data-dir, so after a clean restart and after kill -9 a
 * resume gets one hint per changed topic (no reset, no gap, no duplicate), a wildcard resume
 * lists exactly the topics changed under it, a corrupt tail is cut (a position past it gets
 * "ahead"), a position older than the horizon gets "horizon", and a full data directory refuses
 * publishes with code 15 while the broker goes on serving. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "subcheck.h"
#include "wsc.h"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/nudge-durable-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void cleanup(void)
{
    if (dir[0]) {
        umount2(dir, MNT_DETACH); /* the full-disk test mounts a tmpfs here */
        nudged_rm_dir(dir);
        dir[0] = '\0';
    }
}

TestSuite(durable, .fini = cleanup);

static void start_in(struct nudged *d, const char *const *more)
{
    const char *args[16] = {"--data-dir", dir};
    size_t n = 2;
    for (size_t i = 0; more && more[i] && n < 15; i++)
        args[n++] = more[i];
    args[n] = NULL;
    subcheck_start(d, args);
}

/* Publish to topic with data {"i":want}; the seq must be want. */
static void pub_seq(nudge_client_t *c, const char *topic, uint64_t want)
{
    char data[48];
    snprintf(data, sizeof data, "{\"i\":%llu}", (unsigned long long)want);
    const char *t[1] = {topic};
    uint64_t seq = 0;
    int rc = nudge_publish(c, t, 1, data, &seq);
    cr_assert_eq(rc, NUDGE_OK, "publish %s: %s (%s)", topic, nudge_strerror(rc),
                 nudge_last_error(c));
    cr_assert_eq(seq, want, "publish %s: seq %llu, want %llu", topic, (unsigned long long)seq,
                 (unsigned long long)want);
}

#define NT 4
static const char *const topics[NT] = {"doc:a", "doc:b", "doc:c", "doc:d"};

Test(durable, a_resume_after_a_clean_restart_and_after_kill_9_gets_one_hint_per_changed_topic,
     .timeout = 60)
{
    make_dir();
    struct nudged d;
    start_in(&d, NULL);
    nudge_client_t *c = subcheck_publisher(&d, "durable-test");
    char epoch[32];
    snprintf(epoch, sizeof epoch, "%s", nudge_epoch(c));
    for (uint64_t s = 1; s <= 3; s++)
        pub_seq(c, "doc:a", s);
    for (uint64_t s = 1; s <= 2; s++)
        pub_seq(c, "doc:b", s);
    pub_seq(c, "doc:c", 1);
    int64_t pos[NT] = {3, 2, 1, 0};
    for (int round = 0; round < 2; round++) {
        nudge_close(c);
        if (round == 0)
            cr_assert_eq(nudged_stop(&d), 0, "clean stop");
        else
            cr_assert_eq(nudged_kill(&d), 0, "kill -9");
        start_in(&d, NULL);
        c = subcheck_publisher(&d, "durable-test");
        cr_assert_str_eq(nudge_epoch(c), epoch, "round %d: the epoch survives", round);
        json_t *st = nudged_stats(&d);
        cr_assert_not_null(st);
        cr_expect_eq(json_is_true(json_object_get(json_object_get(st, "disk"), "new_epoch")), 0);
        cr_expect_geq(stats_int(st, "disk.recovered"), 3);
        json_decref(st);
        /* While the client is away: doc:a once, doc:c twice; doc:b and doc:d stay. */
        uint64_t a = (uint64_t)pos[0], b = (uint64_t)pos[1], cc = (uint64_t)pos[2];
        pub_seq(c, "doc:a", a + 1);
        pub_seq(c, "doc:c", cc + 1);
        pub_seq(c, "doc:c", cc + 2);

        struct wsc w;
        cr_assert_eq(wsc_open(&w, d.ws_port, round ? SUB_PROTO_MSGPACK : SUB_PROTO_JSON), WSC_OK);
        subcheck_send_sub(&w, 1, topics, NT, epoch, pos);
        subcheck_expect_subscribed(&w, "doc:a", a + 1);
        subcheck_expect_hint_n(&w, "doc:a", a + 1, 1, 1);
        subcheck_expect_subscribed(&w, "doc:b", b);
        subcheck_expect_subscribed(&w, "doc:c", cc + 2);
        subcheck_expect_hint_n(&w, "doc:c", cc + 2, 2, 1);
        subcheck_expect_subscribed(&w, "doc:d", 0);
        subcheck_expect_silence(&w, 200, "nothing for the topics that did not change");
        /* Live from there. */
        pub_seq(c, "doc:b", b + 1);
        subcheck_expect_hint_n(&w, "doc:b", b + 1, 1, 1);
        st = nudged_stats(&d);
        cr_expect_eq(stats_int(st, "resets"), 0);
        json_decref(st);
        wsc_close(&w, 1000);
        pos[0] = (int64_t)a + 1;
        pos[1] = (int64_t)b + 1;
        pos[2] = (int64_t)cc + 2;
    }
    nudge_close(c);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(durable, a_wildcard_resume_after_kill_9_lists_exactly_the_topics_changed_under_it,
     .timeout = 60)
{
    make_dir();
    struct nudged d;
    start_in(&d, NULL);
    nudge_client_t *c = subcheck_publisher(&d, "durable-test");
    char epoch[32];
    snprintf(epoch, sizeof epoch, "%s", nudge_epoch(c));
    pub_seq(c, "p:1", 1);
    pub_seq(c, "p:2", 1);
    pub_seq(c, "q:1", 1);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    uint64_t g = 0;
    const char *pat[1] = {"p:*"};
    cr_assert_eq(wsc_subscribe(&w, pat, 1, &g), WSC_OK);
    cr_assert_eq(g, 3, "subscribed at the global position");
    wsc_free(&w, 1);
    nudge_close(c);
    cr_assert_eq(nudged_kill(&d), 0);

    start_in(&d, NULL);
    c = subcheck_publisher(&d, "durable-test");
    cr_assert_str_eq(nudge_epoch(c), epoch);
    pub_seq(c, "p:2", 2);   /* 4 */
    pub_seq(c, "q:1", 2);   /* 5: not under p:* */
    pub_seq(c, "p:new", 1); /* 6: never heard of */
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_MSGPACK), WSC_OK);
    int64_t p[1] = {(int64_t)g};
    subcheck_send_sub(&w, 1, pat, 1, epoch, p);
    subcheck_expect_subscribed(&w, "p:*", 6);
    subcheck_expect_hint_n(&w, "p:2", 2, 2, 1);
    subcheck_expect_hint_n(&w, "p:new", 1, 1, 1);
    subcheck_expect_silence(&w, 200, "p:1 did not change; q:1 is not under p:*");
    wsc_close(&w, 1000);
    nudge_close(c);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* The newest segment file of dir (NULL when none). Static storage. */
static const char *newest_segment(void)
{
    static char path[256];
    char pattern[128];
    snprintf(pattern, sizeof pattern, "%s/*.seg", dir);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0 || g.gl_pathc == 0) return NULL;
    snprintf(path, sizeof path, "%s", g.gl_pathv[g.gl_pathc - 1]); /* sorted: hex numbers */
    globfree(&g);
    return path;
}

Test(durable, a_corrupt_tail_is_cut_with_a_log_line_and_a_position_past_it_gets_reset_ahead,
     .timeout = 60)
{
    make_dir();
    struct nudged d;
    start_in(&d, NULL);
    nudge_client_t *c = subcheck_publisher(&d, "durable-test");
    char epoch[32];
    snprintf(epoch, sizeof epoch, "%s", nudge_epoch(c));
    for (uint64_t s = 1; s <= 3; s++)
        pub_seq(c, "doc:t", s);
    nudge_close(c);
    cr_assert_eq(nudged_kill(&d), 0);

    /* Flip the last non-zero byte of the journal: inside its last record (doc:t 3). */
    const char *seg = newest_segment();
    cr_assert_not_null(seg);
    int fd = open(seg, O_RDWR);
    cr_assert(fd >= 0);
    struct stat sb;
    cr_assert_eq(fstat(fd, &sb), 0);
    uint8_t *buf = malloc((size_t)sb.st_size);
    cr_assert_eq(pread(fd, buf, (size_t)sb.st_size, 0), sb.st_size);
    off_t last = sb.st_size - 1;
    while (last > 0 && buf[last] == 0)
        last--;
    buf[last] ^= 0x5a;
    cr_assert_eq(pwrite(fd, &buf[last], 1, last), 1);
    free(buf);
    close(fd);

    start_in(&d, NULL);
    cr_expect_geq(nudged_log_count(&d, "corrupt", NULL), 1, "the cut is logged");
    c = subcheck_publisher(&d, "durable-test");
    cr_assert_str_eq(nudge_epoch(c), epoch, "a cut tail is not a new epoch");
    json_t *st = nudged_stats(&d);
    cr_expect_gt(stats_int(st, "disk.cut_bytes"), 0);
    json_decref(st);
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    const char *t[2] = {"doc:t", "doc:t2"};
    int64_t pos[2] = {3, -1};
    subcheck_send_sub(&w, 1, t, 1, epoch, pos);
    subcheck_expect_subscribed(&w, "doc:t", 2);
    subcheck_expect_reset(&w, "doc:t", 2, "ahead");
    /* and the topic goes on from the recovered end, never repeating a seq a client kept */
    pub_seq(c, "doc:t", 3);
    subcheck_expect_hint_n(&w, "doc:t", 3, 1, 1);
    wsc_close(&w, 1000);
    nudge_close(c);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(durable, a_position_older_than_the_horizon_is_reset_after_a_restart, .timeout = 60)
{
    make_dir();
    struct nudged d;
    start_in(&d, NULL);
    nudge_client_t *c = subcheck_publisher(&d, "durable-test");
    char epoch[32];
    snprintf(epoch, sizeof epoch, "%s", nudge_epoch(c));
    pub_seq(c, "old:1", 1);
    pub_seq(c, "old:1", 2);
    nudge_close(c);
    cr_assert_eq(nudged_stop(&d), 0);
    const char *more[] = {"--horizon", "1", NULL};
    start_in(&d, more);
    cr_assert_eq(nudged_wait_stat(&d, "positions.forgotten", 1, 8000), 1,
                 "the recovered position was not forgotten past the horizon");
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_str_eq(w.epoch, epoch);
    const char *t[1] = {"old:1"};
    int64_t pos[1] = {1};
    subcheck_send_sub(&w, 1, t, 1, epoch, pos);
    subcheck_expect_subscribed(&w, "old:1", 2);
    subcheck_expect_reset(&w, "old:1", 2, "horizon");
    wsc_close(&w, 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(durable, a_full_data_directory_refuses_publishes_with_code_15_and_keeps_serving, .timeout = 60)
{
    make_dir();
    if (mount("tmpfs", dir, "tmpfs", 0, "size=1m") != 0) {
        cr_skip_test("cannot mount a tmpfs (not root?)");
        return;
    }
    struct nudged d;
    const char *more[] = {"--disk-segment", "65536", "--disk-max", "0", NULL};
    start_in(&d, more);
    nudge_client_t *c = subcheck_publisher(&d, "durable-test");
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    const char *pat[1] = {"big:*"};
    cr_assert_eq(wsc_subscribe(&w, pat, 1, NULL), WSC_OK);
    /* Distinct topics: each one's newest record stays live, so compaction cannot make room. */
    char data[1000], name[32];
    int refused = 0, stored = 0;
    for (int i = 0; i < 5000 && !refused; i++) {
        snprintf(data, sizeof data, "{\"pad\":\"%0900d\"}", i);
        snprintf(name, sizeof name, "big:%d", i);
        const char *t[1] = {name};
        int rc = nudge_publish(c, t, 1, data, NULL);
        if (rc == NUDGE_EBROKER) {
            cr_assert_eq(nudge_last_code(c), 15, "code %d: %s", nudge_last_code(c),
                         nudge_last_error(c));
            refused = 1;
        } else {
            cr_assert_eq(rc, NUDGE_OK, "%s", nudge_last_error(c));
            stored++;
        }
    }
    cr_assert(refused, "1 MiB never filled up");
    cr_assert_gt(stored, 10);
    /* Still serving: the subscriber got a hint of every stored publish, and a resume works. */
    struct sub_msg m;
    int got = 0;
    while (got < stored && wsc_recv_msg(&w, &m, 5000) == WSC_OK) {
        got += m.type == SUB_HINT;
        sub_msg_clear(&m);
    }
    cr_assert_eq(got, stored);
    struct wsc w2;
    cr_assert_eq(wsc_open(&w2, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    const char *t0[1] = {"big:0"};
    int64_t pos[1] = {0};
    subcheck_send_sub(&w2, 1, t0, 1, w2.epoch, pos);
    subcheck_expect_type(&w2, SUB_SUBSCRIBED, &m, "subscribed");
    cr_assert_eq(m.seq, 1);
    sub_msg_clear(&m);
    subcheck_expect_type(&w2, SUB_HINT, &m, "catch-up");
    cr_assert_eq(m.seq, 1);
    sub_msg_clear(&m);
    json_t *st = nudged_stats(&d);
    cr_expect_gt(stats_int(st, "disk.refused"), 0);
    json_decref(st);
    wsc_close(&w, 1000);
    wsc_close(&w2, 1000);
    nudge_close(c);
    cr_assert_eq(nudged_stop(&d), 0);
}
