/* Unit tests of the persisted store (store_disk_open, broker/engine/disk.c over store.c):
 * positions, the epoch, bases, the floor, the global position and history coming back after a clean
 * close and after the process is killed; completions only after the journal's commit, in append
 * order; a corrupt tail cut; when continuity is lost (no EPOCH file, --fsync os across a reboot);
 * compaction keeping the files bounded without losing a position or lowering the floor; disk
 * full and --disk-max; start-up time. Each test works in its own mkdtemp directory under /tmp
 * and removes it. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "table.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static char dir_buf[64];
static int dir_mounted;
static pid_t child_pid;

static char *tmpdir(void)
{
    strcpy(dir_buf, "/tmp/nudge-disk-XXXXXX");
    cr_assert_not_null(mkdtemp(dir_buf));
    return dir_buf;
}

static void cleanup(void)
{
    if (child_pid > 0) {
        kill(child_pid, SIGKILL);
        waitpid(child_pid, NULL, 0);
    }
    if (dir_mounted) umount2(dir_buf, MNT_DETACH);
    if (dir_buf[0]) nftw(dir_buf, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(disk, .fini = cleanup);

static uint64_t fake_now = 1000;
static uint64_t fake_clock(void)
{
    return fake_now;
}

#define HORIZON 3600000
#define SEG (64u << 10)

static atomic_int wakes;
static void on_wake(void *arg)
{
    (void)arg;
    atomic_fetch_add(&wakes, 1);
}

static struct store_config config(void)
{
    struct store_config c;
    store_config_default(&c);
    c.horizon_ms = HORIZON;
    c.max_age_ms = 10ull * HORIZON;
    return c;
}

static struct store_disk disk_of(const char *dir, enum journal_sync sync)
{
    struct store_disk d;
    store_disk_default(&d);
    d.dir = dir;
    d.sync = sync;
    d.batch_ms = 1;
    d.segment_bytes = SEG;
    d.max_bytes = 0;
    return d;
}

static struct store *open_with(const struct store_config *c, const struct store_disk *d, uint64_t e)
{
    struct store *s = NULL;
    int r = store_disk_open(c, d, e, 1, 2, &s);
    cr_assert_eq(r, 0, "store_disk_open: %d", r);
    s->wall_ms = fake_clock;
    s->wake = on_wake;
    return s;
}

static struct store *open_dir(const char *dir, uint64_t e)
{
    struct store_config c = config();
    struct store_disk d = disk_of(dir, JOURNAL_SYNC_BATCH);
    return open_with(&c, &d, e);
}

static int owner_dummy;

static struct store_topic *topic(struct store *s, const char *name)
{
    size_t len = strlen(name);
    struct store_topic *t = s->ops->open(s, name, len, siphash(1, 2, name, len), &owner_dummy);
    cr_assert_not_null(t);
    return t;
}

struct ev {
    int called, err;
    uint64_t seq, gpos, order;
};
static uint64_t done_order;

static void on_done(void *arg, struct hint *h, int err)
{
    struct ev *e = arg;
    e->called++;
    e->err = err;
    e->order = ++done_order;
    if (!err) e->seq = h->seq, e->gpos = h->gpos;
}

/* Append a hint of t with data (a msgpack str of n 'x', n < 32) without waiting. */
static void append_async(struct store *s, struct store_topic *t, const char *name, int n,
                         struct ev *ev)
{
    uint8_t data[32];
    data[0] = (uint8_t)(0xa0 | n);
    memset(data + 1, 'x', (size_t)n);
    struct hint *h = hint_new(name, strlen(name), siphash(1, 2, name, strlen(name)),
                              n ? data : NULL, n ? (size_t)n + 1 : 0);
    cr_assert_not_null(h);
    s->ops->append(s, t, h, on_done, ev);
    hint_unref(h);
}

/* Append and wait for the completion; returns the seq (0 on failure, *err set). */
static uint64_t append_wait(struct store *s, struct store_topic *t, const char *name, int n,
                            int *err)
{
    struct ev ev = {0};
    append_async(s, t, name, n, &ev);
    s->ops->poll(s, 1);
    cr_assert_eq(ev.called, 1);
    if (err)
        *err = ev.err;
    else
        cr_assert_eq(ev.err, 0, "append: %d", ev.err);
    return ev.err ? 0 : ev.seq;
}

static void collect(void *arg, struct hint *h)
{
    struct hint **out = arg;
    while (*out)
        out++;
    *out = h;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The newest segment file of dir and its size. */
static void newest_segment(const char *dir, char *out, size_t cap)
{
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    char best[300] = "";
    struct dirent *e;
    while ((e = readdir(d)))
        if (strlen(e->d_name) == 20 && !strcmp(e->d_name + 16, ".seg") &&
            strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof(best), "%s", e->d_name);
    closedir(d);
    cr_assert(best[0], "a segment in %s", dir);
    snprintf(out, cap, "%s/%s", dir, best);
}

/* ---- tests -------------------------------------------------------------------------------- */

Test(disk, a_new_directory_starts_a_new_epoch_from_the_random_bytes)
{
    char *d = tmpdir();
    struct store *s = open_dir(d, 0xabc);
    cr_expect_eq(s->st.new_epoch, 1);
    cr_expect_str_eq(s->epoch, "0000000000000abc");
    cr_expect_eq(s->st.recovered, 0);
    s->ops->free(s);
}

Test(disk, positions_epoch_base_gpos_and_history_with_data_come_back_after_a_clean_reopen)
{
    char *d = tmpdir();
    struct store *s = open_dir(d, 0x1111);
    struct store_topic *a = topic(s, "a"), *b = topic(s, "b"), *c = topic(s, "c");
    for (int i = 0; i < 3; i++)
        append_wait(s, a, "a", 5 + i, NULL);
    append_wait(s, b, "b", 0, NULL);
    append_wait(s, b, "b", 1, NULL);
    for (int i = 0; i < 5; i++)
        append_wait(s, c, "c", 0, NULL);
    s->ops->close(s, c); /* forgotten past the horizon: the floor rises to 5 */
    fake_now += HORIZON + 1;
    s->ops->evict(s, fake_now);
    cr_assert_eq(s->st.forgotten, 1);
    struct store_topic *e = topic(s, "e"); /* created above the floor */
    cr_assert_eq(s->ops->base(s, e), 5);
    cr_assert_eq(append_wait(s, e, "e", 2, NULL), 6);
    s->ops->close(s, b);
    s->ops->free(s);

    s = open_dir(d, 0x2222);
    cr_expect_eq(s->st.new_epoch, 0);
    cr_expect_str_eq(s->epoch, "0000000000001111", "the directory's epoch, not the new bytes");
    cr_expect_eq(s->st.gpos, 11);
    a = topic(s, "a");
    b = topic(s, "b");
    e = topic(s, "e");
    cr_expect_eq(s->ops->seq(s, a), 3);
    cr_expect_eq(s->ops->seq(s, b), 2);
    cr_expect_eq(s->ops->seq(s, e), 6);
    cr_expect_eq(s->ops->base(s, e), 5);
    cr_expect_eq(s->ops->base(s, a), 0);
    c = topic(s, "c");
    cr_expect_geq(s->ops->seq(s, c), 5, "a forgotten topic never repeats a seq");
    struct hint *got[8] = {0};
    s->ops->since(s, a, 0, 3, collect, got);
    cr_assert_not_null(got[2]);
    cr_assert_null(got[3]);
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(got[i]->seq, (uint64_t)i + 1);
        cr_expect_eq(got[i]->gpos, (uint64_t)i + 1);
        cr_expect_eq(got[i]->data_len, 6u + (uint32_t)i);
        cr_expect_eq(got[i]->data[1], 'x');
        cr_expect_str_eq(got[i]->topic, "a");
        cr_expect_eq(got[i]->thash, siphash(1, 2, "a", 1));
        cr_expect_not_null(hint_payload(got[i], SUB_JSON), "handed out sealed");
        cr_expect_not_null(hint_payload(got[i], SUB_MSGPACK));
    }
    cr_expect(store_complete(s, a, 0), "history from seq 1 is retained");
    cr_expect_eq(append_wait(s, a, "a", 0, NULL), 4);
    struct store_topic *f = topic(s, "f");
    struct ev ev = {0};
    append_async(s, f, "f", 0, &ev);
    s->ops->poll(s, 1);
    cr_expect_eq(ev.gpos, 13, "the global position goes on");
    s->ops->free(s);
}

/* The child appends and completes 10 topics x 50 (each seq the one after the last), tells the
 * parent the epoch, then keeps appending to "busy" until it is killed. */
static void child_run(const char *d, int fd, enum journal_sync sync)
{
    struct store_config c = config();
    struct store_disk dk = disk_of(d, sync);
    struct store *s = NULL;
    if (store_disk_open(&c, &dk, 0x77, 1, 2, &s)) _exit(2);
    s->wall_ms = fake_clock;
    char name[16];
    for (int k = 0; k < 10; k++) {
        snprintf(name, sizeof(name), "t%d", k);
        size_t len = strlen(name);
        struct store_topic *t = s->ops->open(s, name, len, siphash(1, 2, name, len), &owner_dummy);
        uint64_t seq0 = s->ops->seq(s, t);
        for (int i = 0; i < 50; i++) {
            struct ev ev = {0};
            append_async(s, t, name, 3, &ev);
            s->ops->poll(s, 1);
            if (ev.err || ev.seq != seq0 + (uint64_t)i + 1) _exit(3);
        }
    }
    if (write(fd, s->epoch, 16) != 16) _exit(4);
    struct store_topic *t = s->ops->open(s, "busy", 4, siphash(1, 2, "busy", 4), &owner_dummy);
    static struct ev evs[1 << 16];
    for (size_t i = 0;; i++) {
        append_async(s, t, "busy", 1, &evs[i % (1 << 16)]);
        if (i % 64 == 0) s->ops->poll(s, 0);
    }
}

/* Start child_run, wait (10 s at most) for its epoch, kill it; returns the epoch. */
static void run_and_kill(const char *d, enum journal_sync sync, char epoch[17])
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    child_pid = fork();
    cr_assert_geq(child_pid, 0);
    if (child_pid == 0) {
        close(p[0]);
        child_run(d, p[1], sync);
        _exit(0);
    }
    close(p[1]);
    struct pollfd pf = {p[0], POLLIN, 0};
    cr_assert_eq(poll(&pf, 1, 20000), 1, "the child reports within 20 s");
    cr_assert_eq(read(p[0], epoch, 16), 16, "the child completed its appends");
    epoch[16] = '\0';
    close(p[0]);
    sleep_ms(50); /* let it append to "busy" */
    kill(child_pid, SIGKILL);
    int st;
    waitpid(child_pid, &st, 0);
    child_pid = 0;
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %x", st);
}

Test(disk, every_completed_seq_comes_back_after_kill_9_and_none_repeats)
{
    char *d = tmpdir();
    char epoch[17];
    run_and_kill(d, JOURNAL_SYNC_BATCH, epoch);
    struct store *s = open_dir(d, 0x99);
    cr_expect_eq(s->st.new_epoch, 0);
    cr_expect_str_eq(s->epoch, epoch);
    cr_expect_geq(s->st.recovered, 10);
    char name[16];
    for (int k = 0; k < 10; k++) {
        snprintf(name, sizeof(name), "t%d", k);
        struct store_topic *t = topic(s, name);
        cr_expect_eq(s->ops->seq(s, t), 50, "%s", name);
        struct hint *got[65] = {0};
        s->ops->since(s, t, 0, 50, collect, got);
        cr_expect_eq(got[49] ? got[49]->seq : 0, 50, "%s: its history too", name);
    }
    struct store_topic *busy = topic(s, "busy");
    uint64_t seq = s->ops->seq(s, busy);
    cr_expect_eq(append_wait(s, busy, "busy", 0, NULL), seq + 1, "no seq given twice");
    cr_expect_gt(s->st.gpos, 500);
    s->ops->free(s);
}

Test(disk, seq_does_not_count_an_append_until_poll_completes_it)
{
    char *d = tmpdir();
    struct store_config c = config();
    struct store_disk dk = disk_of(d, JOURNAL_SYNC_BATCH);
    dk.batch_ms = 1000; /* the next commit is at least 1 s after the first one */
    dk.group_full = 1;
    struct store *s = open_with(&c, &dk, 1);
    struct store_topic *a = topic(s, "a");
    cr_assert_eq(append_wait(s, a, "a", 0, NULL), 1);
    atomic_store(&wakes, 0);
    struct ev ev = {0};
    append_async(s, a, "a", 1, &ev);
    cr_expect_eq(ev.called, 0, "done is not called inside append");
    s->ops->poll(s, 0);
    cr_expect_eq(ev.called, 0, "nor by a poll before the commit");
    cr_expect_eq(s->ops->seq(s, a), 1, "not on disk: not counted");
    cr_expect_eq(s->ops->oldest(s, a), 1);
    for (int i = 0; i < 5000 && !atomic_load(&wakes); i++)
        sleep_ms(1);
    cr_assert_gt(atomic_load(&wakes), 0, "the journal's commit wakes the owner");
    cr_expect_eq(s->ops->seq(s, a), 1, "still not counted before poll");
    cr_expect_eq(ev.called, 0);
    s->ops->poll(s, 0);
    cr_expect_eq(ev.called, 1);
    cr_expect_eq(ev.seq, 2);
    cr_expect_eq(s->ops->seq(s, a), 2);
    s->ops->free(s);
}

Test(disk, poll_with_wait_completes_everything_in_append_order)
{
    char *d = tmpdir();
    struct store *s = open_dir(d, 1);
    struct store_topic *t[3] = {topic(s, "a"), topic(s, "b"), topic(s, "c")};
    static struct ev ev[3000];
    memset(ev, 0, sizeof(ev));
    done_order = 0;
    for (int i = 0; i < 3000; i++)
        append_async(s, t[i % 3], i % 3 == 0 ? "a" : i % 3 == 1 ? "b" : "c", i % 20, &ev[i]);
    s->ops->poll(s, 1);
    for (int i = 0; i < 3000; i++) {
        cr_assert_eq(ev[i].called, 1, "append %d completed once", i);
        cr_assert_eq(ev[i].err, 0);
        cr_assert_eq(ev[i].order, (uint64_t)i + 1, "append %d completed in order", i);
        cr_assert_eq(ev[i].seq, (uint64_t)i / 3 + 1);
        cr_assert_eq(ev[i].gpos, (uint64_t)i + 1);
    }
    for (int k = 0; k < 3; k++)
        cr_expect_eq(s->ops->seq(s, t[k]), 1000);
    cr_expect_eq(s->st.gpos, 3000);
    s->ops->free(s);
}

Test(disk, a_corrupt_last_record_is_cut_and_the_topic_keeps_the_seq_before)
{
    char *d = tmpdir();
    struct store *s = open_dir(d, 0x5);
    struct store_topic *a = topic(s, "a");
    for (int i = 0; i < 5; i++)
        append_wait(s, a, "a", 10, NULL);
    s->ops->free(s);
    /* Walk the newest segment's frames to its last record; flip a byte of its payload. */
    char seg[512];
    newest_segment(d, seg, sizeof(seg));
    int fd = open(seg, O_RDWR);
    cr_assert_geq(fd, 0);
    uint64_t off = 32, last = 0;
    for (;;) {
        uint32_t len;
        cr_assert_eq(pread(fd, &len, 4, (off_t)off), 4);
        if (!len) break;
        last = off;
        off += (8 + (uint64_t)len + 7) & ~7ull;
    }
    cr_assert_gt(last, 0);
    uint8_t b;
    cr_assert_eq(pread(fd, &b, 1, (off_t)(last + 20)), 1);
    b ^= 0x40;
    cr_assert_eq(pwrite(fd, &b, 1, (off_t)(last + 20)), 1);
    close(fd);

    s = open_dir(d, 0x6);
    cr_expect_gt(s->st.cut_bytes, 0);
    cr_expect_eq(s->st.new_epoch, 0);
    cr_expect_str_eq(s->epoch, "0000000000000005");
    a = topic(s, "a");
    cr_expect_eq(s->ops->seq(s, a), 4, "the record before the cut one");
    cr_expect_eq(append_wait(s, a, "a", 0, NULL), 5);
    s->ops->free(s);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

Test(disk, segments_without_a_readable_epoch_file_start_a_new_epoch_with_nothing)
{
    char *d = tmpdir();
    char p[128];
    snprintf(p, sizeof(p), "%s/EPOCH", d);
    for (int round = 0; round < 2; round++) {
        struct store *s = open_dir(d, 0x10 + (uint64_t)round);
        struct store_topic *a = topic(s, "a");
        append_wait(s, a, "a", 1, NULL);
        append_wait(s, a, "a", 1, NULL);
        s->ops->free(s);
        if (round == 0)
            cr_assert_eq(unlink(p), 0);
        else
            write_file(d, "EPOCH", "nudge-store 1\nepoch zz\n");
        s = open_dir(d, 0x20 + (uint64_t)round);
        cr_expect_eq(s->st.new_epoch, 1, "round %d", round);
        cr_expect_eq(s->st.recovered, 0);
        cr_expect_eq(s->st.gpos, 0);
        char want[17];
        snprintf(want, sizeof(want), "%016x", 0x20 + round);
        cr_expect_str_eq(s->epoch, want);
        a = topic(s, "a");
        cr_expect_eq(s->ops->seq(s, a), 0);
        s->ops->free(s);
        s = open_dir(d, 0x30);
        cr_expect_eq(s->st.recovered, 0, "the old segments are gone for good");
        cr_expect_str_eq(s->epoch, want, "and the new epoch is kept");
        s->ops->free(s);
    }
}

Test(disk, fsync_os_an_unclean_stop_and_a_new_boot_start_a_new_epoch)
{
    char *d = tmpdir();
    char epoch[17];
    setenv("NUDGE_BOOT_ID", "boot-a", 1);
    run_and_kill(d, JOURNAL_SYNC_OS, epoch);
    /* Same boot: the page cache survived the process. */
    struct store_config c = config();
    struct store_disk dk = disk_of(d, JOURNAL_SYNC_OS);
    struct store *s = open_with(&c, &dk, 0x42);
    cr_expect_eq(s->st.new_epoch, 0);
    cr_expect_str_eq(s->epoch, epoch);
    cr_expect_geq(s->st.recovered, 10);
    s->ops->free(s);
    /* A clean close then a reboot: everything was synced. */
    setenv("NUDGE_BOOT_ID", "boot-b", 1);
    s = open_with(&c, &dk, 0x43);
    cr_expect_eq(s->st.new_epoch, 0);
    cr_expect_str_eq(s->epoch, epoch);
    s->ops->free(s);
    /* An unclean stop in OS mode, then a reboot. */
    run_and_kill(d, JOURNAL_SYNC_OS, epoch);
    setenv("NUDGE_BOOT_ID", "boot-c", 1);
    s = open_with(&c, &dk, 0x44);
    unsetenv("NUDGE_BOOT_ID");
    cr_expect_eq(s->st.new_epoch, 1);
    cr_expect_str_eq(s->epoch, "0000000000000044");
    cr_expect_eq(s->st.recovered, 0);
    s->ops->free(s);
}

Test(disk, fsync_batch_keeps_the_epoch_across_an_unclean_stop_and_a_new_boot)
{
    char *d = tmpdir();
    char epoch[17];
    setenv("NUDGE_BOOT_ID", "boot-a", 1);
    run_and_kill(d, JOURNAL_SYNC_BATCH, epoch);
    setenv("NUDGE_BOOT_ID", "boot-b", 1);
    struct store *s = open_dir(d, 0x45);
    unsetenv("NUDGE_BOOT_ID");
    cr_expect_eq(s->st.new_epoch, 0, "batch syncs before done: the reboot lost nothing");
    cr_expect_str_eq(s->epoch, epoch);
    s->ops->free(s);
}

Test(disk, compaction_keeps_the_files_bounded_and_every_position_and_the_floor)
{
    char *d = tmpdir();
    struct store *s = open_dir(d, 0x7);
    /* "old" is published 7 times, closed, and forgotten past the horizon. */
    struct store_topic *old = topic(s, "old");
    for (int i = 0; i < 7; i++)
        append_wait(s, old, "old", 0, NULL);
    s->ops->close(s, old);
    enum { N = 16, ROUNDS = 2000 };
    struct store_topic *t[N];
    char names[N][16];
    for (int k = 0; k < N; k++) {
        snprintf(names[k], sizeof(names[k]), "k%d", k);
        t[k] = topic(s, names[k]);
    }
    static struct ev ev[N];
    uint64_t peak = 0, appended = 0;
    for (int r = 0; r < ROUNDS; r++) {
        for (int k = 0; k < N; k++)
            append_async(s, t[k], names[k], 30, &ev[k]);
        appended += N;
        if (r % 50 == 49) {
            s->ops->poll(s, 1);
            fake_now += r == 49 ? HORIZON + 1 : 1000;
            s->ops->evict(s, fake_now);
            if (s->st.disk_bytes > peak) peak = s->st.disk_bytes;
        }
    }
    s->ops->poll(s, 1);
    for (int i = 0; i < 5; i++) { /* let the last pass finish its drop */
        sleep_ms(5);
        fake_now += 1000;
        s->ops->evict(s, fake_now);
    }
    cr_assert_eq(s->st.forgotten, 1);
    uint64_t total = appended * 80; /* at least: each record has 36 + name + 31 data bytes */
    cr_log_info("compaction: %llu bytes of records appended, %llu on disk at the peak, %llu at "
                "the end",
                (unsigned long long)total, (unsigned long long)peak,
                (unsigned long long)s->st.disk_bytes);
    fprintf(stderr,
            "disk: compaction: >= %llu bytes appended, peak %llu bytes on disk, %llu at the end\n",
            (unsigned long long)total, (unsigned long long)peak,
            (unsigned long long)s->st.disk_bytes);
    cr_expect_gt(total, 30 * SEG, "enough to need compaction");
    cr_expect_leq(peak, 8 * SEG, "the files stay bounded: %llu", (unsigned long long)peak);
    s->ops->free(s);

    s = open_dir(d, 0x8);
    cr_expect_eq(s->st.new_epoch, 0);
    for (int k = 0; k < N; k++) {
        struct store_topic *x = topic(s, names[k]);
        cr_expect_eq(s->ops->seq(s, x), ROUNDS, "%s", names[k]);
        struct hint *got[70] = {0};
        s->ops->since(s, x, ROUNDS - 1, ROUNDS, collect, got);
        cr_expect(got[0] && got[0]->data_len == 31, "%s: the newest hint with its data", names[k]);
    }
    cr_expect_eq(s->st.gpos, 7 + appended, "the global position");
    old = topic(s, "old");
    cr_expect_eq(s->ops->seq(s, old), 7, "forgotten: it starts at the floor, which came back");
    cr_expect_eq(s->ops->base(s, old), 7, "not its own record: that was compacted away");
    s->ops->free(s);
}

Test(disk, disk_max_refuses_appends_with_enospc_until_compaction_makes_room)
{
    char *d = tmpdir();
    struct store_config c = config();
    struct store_disk dk = disk_of(d, JOURNAL_SYNC_BATCH);
    dk.max_bytes = 4 * SEG;
    struct store *s = open_with(&c, &dk, 0x9);
    struct store_topic *a = topic(s, "a");
    uint64_t ok = 0;
    int err = 0;
    for (int i = 0; i < 100000 && !err; i++)
        if (append_wait(s, a, "a", 30, &err)) ok++;
    cr_assert_eq(err, -ENOSPC);
    cr_assert_gt(ok, 100);
    cr_expect_eq(s->st.disk_failed, 1);
    cr_expect_eq(s->ops->seq(s, a), ok, "the refused append took no seq");
    cr_expect_eq(s->st.gpos, ok);
    struct hint *got[70] = {0};
    s->ops->since(s, a, ok - 1, ok, collect, got);
    cr_expect(got[0] && got[0]->seq == ok, "history is still served");
    for (int i = 0; i < 10 && err; i++) { /* compaction frees segments */
        fake_now += 1000;
        s->ops->evict(s, fake_now);
        sleep_ms(20);
        s->ops->evict(s, fake_now);
        append_wait(s, a, "a", 30, &err); /* the size refused: no room left in a segment */
    }
    cr_expect_eq(err, 0, "appends succeed again after compaction");
    cr_expect_eq(s->ops->seq(s, a), ok + 1, "and take the next seq");
    s->ops->free(s);
    s = open_with(&c, &dk, 0xa);
    a = topic(s, "a");
    cr_expect_eq(s->ops->seq(s, a), ok + 1);
    s->ops->free(s);
}

Test(disk, a_full_file_system_refuses_appends_with_enospc_and_keeps_what_was_done)
{
    char *d = tmpdir();
    if (mount("tmpfs", d, "tmpfs", 0, "size=1m,mode=0700"))
        cr_skip("cannot mount a 1 MiB tmpfs: %s", strerror(errno));
    dir_mounted = 1;
    struct store *s = open_dir(d, 0xb);
    struct store_topic *a = topic(s, "a"), *b = topic(s, "b");
    uint64_t ok = 0;
    int err = 0;
    for (int i = 0; i < 100000 && !err; i++)
        if (append_wait(s, i % 2 ? b : a, i % 2 ? "b" : "a", 30, &err)) ok++;
    cr_assert_eq(err, -ENOSPC);
    cr_assert_gt(ok, 1000);
    cr_expect_geq(s->st.disk_failed, 1);
    uint64_t sa = s->ops->seq(s, a), sb = s->ops->seq(s, b);
    cr_expect_eq(sa + sb, ok);
    s->ops->free(s);
    s = open_dir(d, 0xc);
    cr_expect_eq(s->st.new_epoch, 0);
    a = topic(s, "a");
    b = topic(s, "b");
    cr_expect_eq(s->ops->seq(s, a), sa);
    cr_expect_eq(s->ops->seq(s, b), sb);
    s->ops->free(s);
}

Test(disk, starts_up_with_100k_topics_within_a_generous_bound)
{
    const char *env = getenv("NUDGE_DISK_TOPICS"); /* a one-off run with more */
    uint32_t n = env ? (uint32_t)strtoul(env, NULL, 10) : 100000;
    char *d = tmpdir();
    struct store_config c = config();
    c.max_positions = n + 1;
    struct store_disk dk = disk_of(d, JOURNAL_SYNC_OS);
    dk.segment_bytes = 16u << 20;
    struct store *s = open_with(&c, &dk, 0xd);
    static struct ev ev;
    char name[32];
    for (uint32_t i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "topic/%u", i);
        size_t len = strlen(name);
        struct store_topic *t = s->ops->open(s, name, len, siphash(1, 2, name, len), &owner_dummy);
        append_async(s, t, name, 8, &ev);
        if (i % 4096 == 4095) s->ops->poll(s, 1);
    }
    s->ops->poll(s, 1);
    s->ops->free(s);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    s = open_with(&c, &dk, 0xe);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    fprintf(stderr, "disk: start-up with %u topics: %.0f ms (recovery_ms %llu, %llu bytes)\n", n,
            ms, (unsigned long long)s->st.recovery_ms, (unsigned long long)s->st.disk_bytes);
    cr_expect_eq(s->st.recovered, n);
    cr_expect_eq(s->st.positions, n);
    cr_expect_lt(ms, 20000.0, "start-up took %.0f ms", ms);
    snprintf(name, sizeof(name), "topic/%u", n - 1);
    struct store_topic *t = topic(s, name);
    cr_expect_eq(s->ops->seq(s, t), 1);
    s->ops->free(s);
}
