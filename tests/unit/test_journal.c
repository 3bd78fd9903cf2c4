/* Unit tests of the segment log (broker/engine/journal.c): replay after reopen across segments,
 * survival of done records when the process dies, cutting torn and corrupt tails for good, the
 * directory lock, the max_bytes bound and a real full disk (a 1 MiB tmpfs), what each sync mode
 * does, and scanning closed segments for compaction. Each test works in its own mkdtemp
 * directory under /tmp and removes it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#include "journal.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

/* The test's directory, removed (and unmounted) by the suite's fini even when the test fails. */
static char dir_buf[64];
static int dir_mounted;

static char *tmpdir(void)
{
    strcpy(dir_buf, "/tmp/nudge-journal-XXXXXX");
    cr_assert_not_null(mkdtemp(dir_buf));
    return dir_buf;
}

static void cleanup(void)
{
    if (dir_mounted) umount2(dir_buf, MNT_DETACH);
    if (dir_buf[0]) nftw(dir_buf, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(journal, .fini = cleanup);

static struct journal_config config(const char *dir, uint64_t seg, enum journal_sync sync)
{
    struct journal_config c;
    journal_config_default(&c);
    c.dir = dir;
    c.segment_bytes = seg;
    c.sync = sync;
    return c;
}

/* Record i of a test: a type, a length (some empty) and bytes derived from i. */
static uint8_t rec_type(uint32_t i)
{
    return (uint8_t)(1 + i % 255);
}

static uint32_t rec_len(uint32_t i, uint32_t base)
{
    return i % 11 == 0 ? 0 : base + (i * 37) % 97;
}

static void rec_fill(uint8_t *p, uint32_t i, uint32_t len)
{
    for (uint32_t k = 0; k < len; k++)
        p[k] = (uint8_t)(i * 131 + k * 7 + 1);
}

struct seen {
    size_t n, cap;
    journal_pos *pos;
    uint8_t *type;
    uint32_t *len;
    uint8_t **data;
};

static void seen_fn(void *arg, journal_pos pos, uint8_t type, const uint8_t *p, uint32_t len)
{
    struct seen *s = arg;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->pos = realloc(s->pos, s->cap * sizeof(*s->pos));
        s->type = realloc(s->type, s->cap);
        s->len = realloc(s->len, s->cap * sizeof(*s->len));
        s->data = realloc(s->data, s->cap * sizeof(*s->data));
    }
    s->pos[s->n] = pos;
    s->type[s->n] = type;
    s->len[s->n] = len;
    s->data[s->n] = malloc(len + 1);
    memcpy(s->data[s->n], p, len);
    s->n++;
}

static void seen_free(struct seen *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->data[i]);
    free(s->pos), free(s->type), free(s->len), free(s->data);
    memset(s, 0, sizeof(*s));
}

/* Record k of s is test record i (base length `base`). */
static void expect_rec(const struct seen *s, size_t k, uint32_t i, uint32_t base)
{
    uint8_t want[1024];
    uint32_t len = rec_len(i, base);
    rec_fill(want, i, len);
    cr_assert_eq(s->type[k], rec_type(i), "record %zu: type", k);
    cr_assert_eq(s->len[k], len, "record %zu: len %u, want %u", k, s->len[k], len);
    cr_assert(memcmp(s->data[k], want, len) == 0, "record %zu: payload", k);
}

static journal_pos append_rec(struct journal *j, uint32_t i, uint32_t base)
{
    uint8_t p[1024];
    uint32_t len = rec_len(i, base);
    rec_fill(p, i, len);
    journal_pos pos = 0;
    int r = journal_append(j, rec_type(i), p, len, &pos);
    cr_assert_eq(r, 0, "append %u: %d", i, r);
    return pos;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Wait (at most 10 s) until every record before and at pos is done. */
static int wait_done(struct journal *j, journal_pos pos)
{
    for (int i = 0; i < 10000; i++) {
        if (journal_done(j) > pos) return 0;
        sleep_ms(1);
    }
    return -1;
}

static struct journal *open_ok(const struct journal_config *c, struct seen *s)
{
    struct journal *j = NULL;
    int r = journal_open(c, s ? seen_fn : NULL, s, NULL, NULL, &j);
    cr_assert_eq(r, 0, "journal_open: %d", r);
    return j;
}

static void seg_path(char *out, size_t cap, const char *dir, journal_pos pos)
{
    snprintf(out, cap, "%s/%016llx.seg", dir, (unsigned long long)(pos >> 32));
}

static void poke(const char *file, uint64_t off, const void *p, size_t n)
{
    int fd = open(file, O_WRONLY);
    cr_assert_geq(fd, 0, "open %s", file);
    cr_assert_eq(pwrite(fd, p, n, (off_t)off), (ssize_t)n);
    close(fd);
}

/* ---- tests -------------------------------------------------------------------------------- */

Test(journal, computes_the_standard_crc32c)
{
    cr_assert_eq(journal_crc32c(0, "123456789", 9), 0xe3069283u);
    /* in two pieces and unaligned, the same */
    char buf[16] = "x123456789";
    cr_assert_eq(journal_crc32c(journal_crc32c(0, buf + 1, 4), buf + 5, 5), 0xe3069283u);
}

Test(journal, rejects_bad_types_lengths_and_configs)
{
    char *d = tmpdir();
    struct journal_config c = config(d, 64 << 10, JOURNAL_SYNC_OS);
    struct journal *j = open_ok(&c, NULL);
    journal_pos pos;
    uint8_t b[8] = {0};
    cr_assert_eq(journal_append(j, 0, b, 1, &pos), -EINVAL);
    cr_assert_eq(journal_append(j, 1, b, (64 << 10) - 40, &pos), -EINVAL);
    cr_assert_eq(journal_append(j, 1, NULL, 0, &pos), 0);
    journal_close(j);
    struct journal_config bad = config(d, 1000, JOURNAL_SYNC_OS);
    cr_assert_eq(journal_open(&bad, NULL, NULL, NULL, NULL, &j), -EINVAL);
    bad = config(d, 64 << 10, JOURNAL_SYNC_OS);
    bad.max_bytes = 64 << 10;
    cr_assert_eq(journal_open(&bad, NULL, NULL, NULL, NULL, &j), -EINVAL);
}

Test(journal, replays_appended_records_in_order_across_segments_after_reopen)
{
    char *d = tmpdir();
    struct journal_config c = config(d, 64 << 10, JOURNAL_SYNC_BATCH);
    struct journal *j = open_ok(&c, NULL);
    cr_assert_eq(journal_was_clean(j), 1, "a new directory counts as clean");
    enum { N = 3000 };
    journal_pos last = 0;
    for (uint32_t i = 0; i < N; i++) {
        journal_pos p = append_rec(j, i, 100);
        cr_assert_gt(p, last, "positions increase");
        last = p;
    }
    cr_assert_gt(last >> 32, 5, "the records span several segments");
    journal_close(j);

    struct seen s = {0};
    j = open_ok(&c, &s);
    cr_assert_eq(journal_was_clean(j), 1);
    cr_assert_eq(s.n, N);
    for (uint32_t i = 0; i < N; i++)
        expect_rec(&s, i, i, 100);
    cr_assert_eq(s.pos[N - 1], last);
    struct journal_stats st;
    journal_stats(j, &st);
    cr_assert_eq(st.cut_bytes, 0);
    journal_close(j);
    seen_free(&s);
}

Test(journal, keeps_done_records_when_the_process_dies_without_closing)
{
    char *d = tmpdir();
    struct journal_config c = config(d, 64 << 10, JOURNAL_SYNC_BATCH);
    enum { N = 2000 };
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        struct journal *j = NULL;
        if (journal_open(&c, NULL, NULL, NULL, NULL, &j)) _exit(2);
        journal_pos last = 0;
        for (uint32_t i = 0; i < N; i++) {
            uint8_t p[1024];
            uint32_t len = rec_len(i, 50);
            rec_fill(p, i, len);
            if (journal_append(j, rec_type(i), p, len, &last)) _exit(3);
        }
        for (int i = 0; i < 10000 && journal_done(j) <= last; i++)
            sleep_ms(1);
        if (journal_done(j) <= last) _exit(4);
        raise(SIGKILL);
        _exit(5);
    }
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %#x", status);

    struct seen s = {0};
    struct journal *j = open_ok(&c, &s);
    cr_assert_eq(journal_was_clean(j), 0, "killed: not clean");
    cr_assert_eq(s.n, N);
    for (uint32_t i = 0; i < N; i++)
        expect_rec(&s, i, i, 50);
    journal_close(j);
    j = open_ok(&c, NULL);
    cr_assert_eq(journal_was_clean(j), 1, "closed: clean");
    journal_close(j);
    seen_free(&s);
}

Test(journal, cuts_a_corrupt_last_record_and_never_resurrects_it)
{
    char *d = tmpdir();
    struct journal_config c = config(d, 64 << 10, JOURNAL_SYNC_ALWAYS);
    struct journal *j = open_ok(&c, NULL);
    enum { N = 101 };
    journal_pos last = 0;
    for (uint32_t i = 0; i < N; i++)
        last = append_rec(j, i, 20);
    journal_close(j);

    char file[512];
    seg_path(file, sizeof(file), d, last);
    uint8_t x = 0x5a; /* a payload byte of the last record (i = 100: len > 0) */
    poke(file, (last & 0xffffffffu) + 9 + 3, &x, 1);

    struct seen s = {0};
    j = open_ok(&c, &s);
    struct journal_stats st;
    journal_stats(j, &st);
    cr_assert_gt(st.cut_bytes, 0);
    cr_assert_eq(s.n, N - 1, "the bad record is never reported");
    for (uint32_t i = 0; i < N - 1; i++)
        expect_rec(&s, i, i, 20);
    for (uint32_t i = 1000; i < 1005; i++)
        append_rec(j, i, 20);
    journal_close(j);
    seen_free(&s);

    j = open_ok(&c, &s);
    journal_stats(j, &st);
    cr_assert_eq(st.cut_bytes, 0, "the cut was made for good");
    cr_assert_eq(s.n, N - 1 + 5);
    for (uint32_t i = 0; i < 5; i++)
        expect_rec(&s, N - 1 + i, 1000 + i, 20);
    journal_close(j);
    seen_free(&s);
}

Test(journal, cuts_garbage_after_the_last_record_so_a_stale_frame_cannot_follow_new_ones)
{
    char *d = tmpdir();
    struct journal_config c = config(d, 64 << 10, JOURNAL_SYNC_ALWAYS);
    struct journal *j = open_ok(&c, NULL);
    enum { N = 50 };
    journal_pos first = 0, last = 0;
    for (uint32_t i = 0; i < N; i++) {
        last = append_rec(j, i, 20);
        if (!i) first = last;
    }
    cr_assert_eq(wait_done(j, last), 0);
    journal_pos end = journal_done(j);
    journal_close(j);

    /* A torn write: a whole valid frame (a copy of record 0's) reached the disk 4 KiB
     * past the end of data, the bytes between did not. */
    char file[512];
    seg_path(file, sizeof(file), d, last);
    int fd = open(file, O_RDONLY);
    uint8_t frame[64];
    cr_assert_eq(pread(fd, frame, sizeof(frame), (off_t)(first & 0xffffffffu)), 64);
    close(fd);
    uint32_t flen = (uint32_t)frame[0] | (uint32_t)frame[1] << 8;
    uint32_t fsize = (8 + flen + 7) & ~7u;
    uint64_t gap_at = ((end & 0xffffffffu) + 4096) & ~(uint64_t)7;
    poke(file, gap_at, frame, fsize);

    struct seen s = {0};
    j = open_ok(&c, &s);
    struct journal_stats st;
    journal_stats(j, &st);
    cr_assert_gt(st.cut_bytes, 0);
    cr_assert_eq(s.n, N);
    seen_free(&s);
    /* One record that ends exactly where the stale frame was. */
    uint64_t fill = gap_at - (end & 0xffffffffu);
    static uint8_t big[8192];
    memset(big, 0x33, sizeof(big));
    journal_pos pos;
    cr_assert_eq(journal_append(j, 7, big, (uint32_t)(fill - 9), &pos), 0);
    cr_assert_eq(pos, end);
    journal_close(j);

    j = open_ok(&c, &s);
    journal_stats(j, &st);
    cr_assert_eq(st.cut_bytes, 0);
    cr_assert_eq(s.n, N + 1, "no stale frame after the new record (%zu records)", s.n);
    cr_assert_eq(s.type[N], 7);
    journal_close(j);
    seen_free(&s);
}

Test(journal, cuts_from_a_segment_with_a_bad_header)
{
    char *d = tmpdir();
    struct journal_config c = config(d, 64 << 10, JOURNAL_SYNC_OS);
    struct journal *j = open_ok(&c, NULL);
    journal_pos last = 0;
    uint32_t n1 = 0;
    for (uint32_t i = 0; (last >> 32) < 3; i++) {
        last = append_rec(j, i, 300);
        if ((last >> 32) == 1) n1 = i + 1;
    }
    journal_close(j);
    char file[512];
    seg_path(file, sizeof(file), d, 2ull << 32);
    poke(file, 0, "X", 1);

    struct seen s = {0};
    j = open_ok(&c, &s);
    struct journal_stats st;
    journal_stats(j, &st);
    cr_assert_eq(s.n, n1, "only segment 1 survives (%zu records, want %u)", s.n, n1);
    cr_assert_geq(st.cut_bytes, 64 << 10);
    cr_assert_eq(access(file, F_OK), -1, "segment 2 is deleted");
    journal_close(j);
    seen_free(&s);
}

Test(journal, refuses_a_second_open_of_the_same_directory)
{
    char *d = tmpdir();
    struct journal_config c = config(d, 64 << 10, JOURNAL_SYNC_OS);
    struct journal *j = open_ok(&c, NULL), *j2 = NULL;
    cr_assert_eq(journal_open(&c, NULL, NULL, NULL, NULL, &j2), -EBUSY);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) _exit(journal_open(&c, NULL, NULL, NULL, NULL, &j2) == -EBUSY ? 0 : 1);
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "another process gets -EBUSY");
    journal_close(j);
    j = open_ok(&c, NULL); /* unlocked by close */
    journal_close(j);
}

Test(journal, refuses_appends_past_max_bytes_until_old_segments_are_dropped)
{
    char *d = tmpdir();
    struct journal_config c = config(d, 64 << 10, JOURNAL_SYNC_BATCH);
    c.max_bytes = 4 * (64 << 10);
    struct journal *j = open_ok(&c, NULL);
    uint8_t p[1000];
    memset(p, 1, sizeof(p));
    journal_pos pos = 0, last = 0;
    int r = 0, n = 0;
    for (; n < 10000; n++) {
        if ((r = journal_append(j, 1, p, sizeof(p), &pos))) break;
        last = pos;
    }
    cr_assert_eq(r, -ENOSPC, "append %d: %d", n, r);
    cr_assert_gt(n, 200);
    cr_assert_lt(n, 270, "4 segments of 64 KiB hold about 250 records of 1 KiB: %d", n);
    cr_assert_eq(journal_append(j, 1, p, sizeof(p), &pos), -ENOSPC, "still full");
    struct journal_stats st;
    journal_stats(j, &st);
    cr_assert_leq(st.bytes_on_disk, c.max_bytes);
    cr_assert_eq(st.failed, 0);
    cr_assert_eq(wait_done(j, last), 0);
    int dropped = journal_drop_before(j, journal_done(j));
    cr_assert_eq(dropped, 3, "the three closed segments: %d", dropped);
    for (int i = 0; i < 100; i++)
        cr_assert_eq(journal_append(j, 1, p, sizeof(p), &pos), 0, "append %d after the drop", i);
    journal_close(j);
}

Test(journal, reports_enospc_on_a_full_disk_and_keeps_done_records)
{
    char *d = tmpdir();
    if (mount("tmpfs", d, "tmpfs", 0, "size=1m,mode=0700"))
        cr_skip("cannot mount a 1 MiB tmpfs: %s", strerror(errno));
    dir_mounted = 1;
    struct journal_config c = config(d, 256 << 10, JOURNAL_SYNC_BATCH);
    struct journal *j = open_ok(&c, NULL);
    journal_pos last = 0, pos;
    int r = 0;
    uint32_t n = 0;
    for (; n < 100000; n++) {
        uint8_t p[1024];
        uint32_t len = rec_len(n, 600);
        rec_fill(p, n, len);
        if ((r = journal_append(j, rec_type(n), p, len, &pos))) break;
        last = pos;
    }
    cr_assert_eq(r, -ENOSPC, "append %u: %d", n, r);
    cr_assert_gt(n, 500);
    cr_assert_eq(wait_done(j, last), 0);
    struct journal_stats st;
    journal_stats(j, &st);
    cr_assert_eq(st.failed, 0);
    journal_close(j);

    struct seen s = {0};
    j = open_ok(&c, &s);
    cr_assert_eq(s.n, n);
    for (uint32_t i = 0; i < n; i++)
        expect_rec(&s, i, i, 600);
    journal_close(j);
    seen_free(&s);
}

/* Sync modes: each notify checks that a sync came before it (BATCH, ALWAYS). */
static struct journal *mode_j;
static atomic_int notifies, unsynced;

static void mode_notify(void *arg)
{
    (void)arg;
    struct journal_stats st;
    int k = atomic_fetch_add(&notifies, 1) + 1;
    journal_stats(mode_j, &st);
    if (st.syncs < (uint64_t)k) atomic_fetch_add(&unsynced, 1);
}

static void run_mode(enum journal_sync mode, uint32_t batch_ms)
{
    char *d = tmpdir();
    struct journal_config c = config(d, 64 << 10, mode);
    c.batch_ms = batch_ms;
    c.group_full = 1; /* every commit waits the whole batch_ms after the last */
    atomic_store(&notifies, 0);
    atomic_store(&unsynced, 0);
    cr_assert_eq(journal_open(&c, NULL, NULL, mode_notify, NULL, &mode_j), 0);
    struct journal *j = mode_j;
    journal_pos last = 0;
    for (uint32_t i = 0; i < 100; i++)
        last = append_rec(j, i, 50);
    cr_assert_eq(wait_done(j, last), 0);
    struct journal_stats st;
    journal_stats(j, &st);
    if (mode == JOURNAL_SYNC_OS) {
        cr_assert_eq(st.syncs, 0, "OS mode: written, not synced");
    } else {
        cr_assert_gt(st.syncs, 0);
        cr_assert_eq(atomic_load(&unsynced), 0, "done advanced before a sync");
    }
    cr_assert_gt(atomic_load(&notifies), 0);
    if (mode == JOURNAL_SYNC_BATCH) {
        /* The last commit was just now: the next waits for batch_ms (1 s) to gather more. */
        journal_pos p = append_rec(j, 1000, 50);
        sleep_ms(200);
        cr_assert_leq(journal_done(j), p, "BATCH committed before batch_ms");
        cr_assert_eq(wait_done(j, p), 0);
    }
    journal_close(j);
}

Test(journal, os_mode_advances_done_without_syncing)
{
    run_mode(JOURNAL_SYNC_OS, 2);
}

Test(journal, always_mode_syncs_before_done_advances)
{
    run_mode(JOURNAL_SYNC_ALWAYS, 1000);
}

Test(journal, batch_mode_syncs_before_done_advances_and_waits_batch_ms_between_commits)
{
    run_mode(JOURNAL_SYNC_BATCH, 1000);
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The group commit adapts to the load: after a commit of one record (of the default 128 that
 * wait the whole interval) the next waits 1/128 of batch_ms, not all of it. */
Test(journal, batch_mode_commits_at_once_after_a_light_commit)
{
    char *d = tmpdir();
    struct journal_config c = config(d, 64 << 10, JOURNAL_SYNC_BATCH);
    c.batch_ms = 1000;
    struct journal *j = NULL;
    cr_assert_eq(journal_open(&c, NULL, NULL, NULL, NULL, &j), 0);
    cr_assert_eq(wait_done(j, append_rec(j, 0, 50)), 0);
    double t0 = mono_ms();
    cr_assert_eq(wait_done(j, append_rec(j, 1, 50)), 0);
    double took = mono_ms() - t0;
    cr_assert_lt(took, 500.0, "a light load waited %.1f ms of the 1000 ms interval", took);
    journal_close(j);
}

/* ... and the wait grows with the last commit's size: with group_full 2, a commit of one record
 * makes the next wait half of batch_ms, a commit of two the whole of it. Lower bounds only: a
 * commit can be late on a busy machine, never early. */
Test(journal, batch_mode_waits_in_proportion_to_the_last_commit)
{
    char *d = tmpdir();
    struct journal_config c = config(d, 64 << 10, JOURNAL_SYNC_BATCH);
    c.batch_ms = 1000;
    c.group_full = 2;
    struct journal *j = NULL;
    cr_assert_eq(journal_open(&c, NULL, NULL, NULL, NULL, &j), 0);
    cr_assert_eq(wait_done(j, append_rec(j, 0, 50)), 0); /* the first commits at once */
    double t0 = mono_ms();
    append_rec(j, 1, 50);
    journal_pos p = append_rec(j, 2, 50); /* both wait ~500 ms: one commit of two */
    cr_assert_eq(wait_done(j, p), 0);
    double took = mono_ms() - t0;
    cr_assert_geq(took, 450.0, "after a commit of 1 of 2: waited only %.1f ms", took);
    p = append_rec(j, 3, 50);
    sleep_ms(600);
    cr_assert_leq(journal_done(j), p, "after a full commit the next waits the whole 1000 ms");
    cr_assert_eq(wait_done(j, p), 0);
    journal_close(j);
}

/* Scan: the records of closed segments, in order, in budget-sized calls, while fn re-appends. */
struct scan_ctx {
    struct seen s;
    uint64_t bytes; /* framed bytes of this call */
    struct journal *j;
    int reappend;
};

static void scan_fn(void *arg, journal_pos pos, uint8_t type, const uint8_t *p, uint32_t len)
{
    struct scan_ctx *x = arg;
    seen_fn(&x->s, pos, type, p, len);
    x->bytes += (9 + len + 7) & ~7u;
    journal_pos np;
    if (x->reappend) journal_append(x->j, type, p, len, &np);
}

static uint64_t appends_of(struct journal *j)
{
    struct journal_stats st;
    journal_stats(j, &st);
    return st.appends;
}

Test(journal, scans_closed_segments_in_order_within_the_budget)
{
    char *d = tmpdir();
    struct journal_config c = config(d, 64 << 10, JOURNAL_SYNC_OS);
    struct journal *j = open_ok(&c, NULL);
    enum { N = 2000 };
    journal_pos pos[N];
    for (uint32_t i = 0; i < N; i++)
        pos[i] = append_rec(j, i, 150);
    cr_assert_eq(wait_done(j, pos[N - 1]), 0);
    uint64_t open_seg = pos[N - 1] >> 32;
    cr_assert_geq(open_seg, 4);

    struct scan_ctx x = {.j = j};
    journal_pos from = 0, next = 0;
    int r, calls = 0;
    while ((r = journal_scan(j, from, 4096, scan_fn, &x, &next)) == 0) {
        cr_assert_leq(x.bytes, 4096, "call %d read %llu bytes", calls, (unsigned long long)x.bytes);
        cr_assert_gt(x.bytes, 0);
        cr_assert_gt(next, from);
        x.bytes = 0;
        from = next;
        cr_assert_lt(++calls, 10000);
    }
    cr_assert_eq(r, 1);
    cr_assert_gt(calls, 10);
    /* Exactly the records of the segments before the open one. */
    size_t want = 0;
    while (want < N && (pos[want] >> 32) < open_seg)
        want++;
    cr_assert_eq(x.s.n, want, "%zu records scanned, %zu in closed segments", x.s.n, want);
    for (size_t i = 0; i < want; i++) {
        cr_assert_eq(x.s.pos[i], pos[i]);
        expect_rec(&x.s, i, (uint32_t)i, 150);
    }
    cr_assert_eq(next, open_seg << 32 | 32);
    journal_pos caught_up = next;

    /* A budget smaller than one record still reads one record per call. */
    struct scan_ctx y = {.j = j};
    cr_assert_eq(journal_scan(j, 0, 1, scan_fn, &y, &next), 0);
    cr_assert_eq(y.s.n, 1);
    cr_assert_eq(next, pos[1]);

    /* fn may append (compaction re-appends what is live): one call's worth. */
    struct scan_ctx z = {.j = j, .reappend = 1};
    cr_assert_eq(journal_scan(j, 0, 4096, scan_fn, &z, &next), 0);
    size_t k = z.s.n;
    cr_assert_gt(k, 5);
    cr_assert_eq(appends_of(j), N + k);

    struct journal_stats before, after;
    journal_stats(j, &before);
    cr_assert_eq(journal_drop_before(j, caught_up), (int)(open_seg - 1));
    journal_stats(j, &after);
    cr_assert_eq(after.segments, before.segments - (open_seg - 1));
    journal_close(j);

    /* After the drop, a reopen replays the open segment: the tail of the originals, then the
     * re-appended copies. */
    struct seen s = {0};
    j = open_ok(&c, &s);
    cr_assert_eq(s.n, (N - want) + k);
    for (size_t i = 0; i < N - want; i++)
        expect_rec(&s, i, (uint32_t)(want + i), 150);
    for (size_t i = 0; i < k; i++)
        expect_rec(&s, N - want + i, (uint32_t)i, 150);
    journal_close(j);
    seen_free(&s);
    seen_free(&x.s);
    seen_free(&y.s);
    seen_free(&z.s);
}
