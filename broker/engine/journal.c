/* journal: segment log with group commit (contract and file format in journal.h).
 *
 * Appenders copy framed records into `fill` under the mutex; the commit thread swaps `fill` with
 * an empty buffer, writes it with pwrite outside the mutex, fdatasyncs (per mode), then advances
 * `done` and calls notify. In BATCH mode the wait before a commit is proportional to the size of
 * the one before (up to batch_ms at group_full records): a fixed interval made every publish wait
 * ~2 ms even at a few a second, where one fdatasync (~0.3 ms here) is all durability needs. A
 * buffer is a list of chunks, each a run of bytes for one segment at one offset, because a batch
 * may cross into the next segment. The thread writes segments in order and fdatasyncs a segment
 * before writing the next one, so a segment with a later segment on disk is complete (recovery and
 * scan rely on it), in every mode.
 *
 * Segments are pre-zeroed by writing zeros (fallocate leaves unwritten extents, which make every
 * fdatasync commit metadata: RESEARCH.md d) so that a commit syncs data only. The thread creates
 * the next segment ahead of need (from when the current one is half full) as a temporary file,
 * 1 MiB per loop turn between commits (a 64 MiB zeroing never stalls commits), with writeback
 * started per step, then fdatasync, rename, fsync of the directory. Appends switch segments only
 * into a finished one; when none exists and creation failed (full disk, max_bytes), the append
 * that needs it gets -ENOSPC synchronously, with nothing written.
 *
 * Recovery trusts nothing after the first bad thing: a record with an out-of-bounds length or a
 * wrong CRC, non-zero bytes after the end of data (a torn write: pages reach the disk in any
 * order), a bad header or size, a missing segment. It zeros the rest of that segment and
 * deletes later ones, so later appends cannot be followed by stale bytes that would parse.
 *
 * CRC-32C is done here by hand (slicing-by-8, ~40 lines): no new dependency for that, and the
 * fuzz target builds this file alone. */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "stat.h"

enum {
    HDR = 32,             /* segment header; the first record starts here */
    FRAME = 9,            /* len, crc, type */
    NW = 4,               /* segments the thread holds open for writing */
    ZSTEP = 1 << 20,      /* bytes zeroed per creation step */
    ZBUF = 64 << 10,      /* a zero buffer, repeated by pwritev */
    SCAN_WIN = 256 << 10, /* scan read window */
};
static const size_t BUF_MAX = 16u << 20; /* appends wait while this much is unwritten */
static const uint64_t RETRY_NS = 100000000ull;
static const char MAGIC[8] = "NUDGEJ1";
static const uint8_t zeros[ZBUF];

/* ---- CRC-32C ------------------------------------------------------------------------------ */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

uint32_t journal_crc32c(uint32_t crc, const void *buf, size_t n)
{
    const uint8_t *p = buf;
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t lo = get32(p) ^ crc, hi = get32(p + 4);
        crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
              crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
              crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
    }
    while (n--)
        crc = crc_tab[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* CRC of a frame at f (len word at f[0], type and payload from f[8]). */
static uint32_t frame_crc(const uint8_t *f, uint32_t len)
{
    return journal_crc32c(journal_crc32c(0, f, 4), f + 8, len);
}

/* ---- state -------------------------------------------------------------------------------- */

struct chunk {
    uint64_t seg, off; /* where in which segment */
    size_t start, len; /* bytes of the buffer */
};

struct jbuf {
    uint8_t *p;
    size_t len, cap;
    struct chunk *ch;
    size_t nch, chcap;
    size_t nrec; /* records in it */
};

struct wseg {
    uint64_t num, size;
    int fd;
};

struct journal {
    struct journal_config cfg;
    char *dir;
    int dirfd, lockfd;
    int was_clean;
    void (*notify)(void *);
    void *notify_arg;
    pthread_t thread;
    int started;

    pthread_mutex_t mu;
    pthread_cond_t wake; /* the commit thread waits here */
    pthread_cond_t room; /* appenders wait here */
    /* under mu */
    struct jbuf fill, spare;
    uint64_t aseg, aoff, asize; /* where the next append goes */
    uint64_t ready, ready_size; /* a finished segment after aseg, or 0 */
    int need_next;              /* an append waits for `ready` */
    int create_err;             /* the last creation failed (-ENOSPC) */
    int retry;                  /* since then an append was refused: try again */
    uint64_t last_try;          /* when creation last failed (monotonic ns) */
    uint64_t first;             /* the oldest segment on disk */
    int stop, failed;

    /* commit thread (and open/close, when it does not run) */
    struct wseg w[NW]; /* w[0]: the segment being written; then later ones, `ready` last */
    size_t nw;
    struct {
        int fd; /* -1: not creating */
        uint64_t num, size, zeroed;
    } mk;
    uint64_t last_commit;
    size_t last_nrec; /* records in the last commit */

    /* owner's thread: scan */
    int sfd;
    uint64_t sseg, ssize;
    uint8_t *sbuf;
    size_t scap;
    uint64_t sbase, slen;

    _Atomic uint64_t done;
    struct {
        stat_t segments, bytes_on_disk, appends, bytes_appended, syncs, sync_ns_max, cut_bytes,
            failed;
    } st;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void wait_until(pthread_cond_t *c, pthread_mutex_t *m, uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull)};
    pthread_cond_timedwait(c, m, &ts);
}

static uint64_t align8(uint64_t n)
{
    return (n + 7) & ~(uint64_t)7;
}

static journal_pos mkpos(uint64_t seg, uint64_t off)
{
    return seg << 32 | off;
}

static void seg_name(char *out, size_t cap, uint64_t num, const char *suffix)
{
    snprintf(out, cap, "%016llx.seg%s", (unsigned long long)num, suffix);
}

static void stat_max(stat_t *s, uint64_t v)
{
    if (v > stat_get(s)) atomic_store_explicit(s, v, memory_order_relaxed);
}

static int err_of(int e)
{
    return e == EDQUOT ? -ENOSPC : -e;
}

static int pwrite_full(int fd, const void *p, size_t n, uint64_t off)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = pwrite(fd, b, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? -errno : -EIO;
        b += w, n -= (size_t)w, off += (uint64_t)w;
    }
    return 0;
}

static int pread_full(int fd, void *p, size_t n, uint64_t off)
{
    uint8_t *b = p;
    while (n) {
        ssize_t r = pread(fd, b, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r < 0 ? -errno : -EIO;
        b += r, n -= (size_t)r, off += (uint64_t)r;
    }
    return 0;
}

/* Zeros over [off, off + n) of fd. */
static int write_zeros(int fd, uint64_t off, uint64_t n)
{
    struct iovec iov[ZSTEP / ZBUF];
    for (size_t i = 0; i < ZSTEP / ZBUF; i++)
        iov[i] = (struct iovec){(void *)zeros, ZBUF};
    while (n) {
        uint64_t step = n < ZSTEP ? n : ZSTEP;
        int cnt = (int)((step + ZBUF - 1) / ZBUF);
        iov[cnt - 1].iov_len = (size_t)(step - (uint64_t)(cnt - 1) * ZBUF);
        ssize_t w = pwritev(fd, iov, cnt, (off_t)off);
        iov[cnt - 1].iov_len = ZBUF;
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? -errno : -EIO;
        off += (uint64_t)w, n -= (uint64_t)w;
    }
    return 0;
}

static int timed_sync(struct journal *j, int fd)
{
    uint64_t t0 = now_ns();
    int r = fdatasync(fd) ? -errno : 0;
    stat_add(&j->st.syncs, 1);
    stat_max(&j->st.sync_ns_max, now_ns() - t0);
    return r;
}

static void header_encode(uint8_t h[HDR], uint64_t num, uint64_t size)
{
    memset(h, 0, HDR);
    memcpy(h, MAGIC, 8);
    put64(h + 8, num);
    put64(h + 16, size);
    put32(h + 24, journal_crc32c(0, h, 24));
}

/* The segment size a header announces, or 0 when the header is not a valid one for num. */
static uint64_t header_check(const uint8_t h[HDR], uint64_t num)
{
    uint64_t size = get64(h + 16);
    if (memcmp(h, MAGIC, 8) || get64(h + 8) != num || get32(h + 24) != journal_crc32c(0, h, 24))
        return 0;
    if (size < JOURNAL_SEGMENT_MIN || size > JOURNAL_SEGMENT_MAX || size % 8) return 0;
    return size;
}

/* ---- segment creation (one step at a time) ------------------------------------------------ */

static void mk_abort(struct journal *j)
{
    char tmp[48];
    seg_name(tmp, sizeof(tmp), j->mk.num, ".tmp");
    close(j->mk.fd);
    unlinkat(j->dirfd, tmp, 0);
    j->mk.fd = -1;
}

/* Start creating segment num, or zero the next ZSTEP of it, or finish it. Returns 0 while in
 * progress, 1 when the segment is in place (j->w gets it), or a negative errno (the temporary
 * file is gone then). Called without the mutex. */
static int mk_step(struct journal *j, uint64_t num)
{
    char tmp[48], name[48];
    seg_name(tmp, sizeof(tmp), num, ".tmp");
    int r;
    if (j->mk.fd < 0) {
        uint8_t h[HDR];
        j->mk.fd = openat(j->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (j->mk.fd < 0) return err_of(errno);
        j->mk.num = num;
        j->mk.size = j->cfg.segment_bytes;
        header_encode(h, num, j->mk.size);
        if ((r = pwrite_full(j->mk.fd, h, HDR, 0)) < 0) goto fail;
        j->mk.zeroed = HDR;
        return 0;
    }
    if (j->mk.zeroed < j->mk.size) {
        uint64_t at = j->mk.zeroed, n = j->mk.size - at < ZSTEP ? j->mk.size - at : ZSTEP;
        if ((r = write_zeros(j->mk.fd, at, n)) < 0) goto fail;
        j->mk.zeroed += n;
        /* Start writeback of this step and wait for the previous one, so that the final
         * fdatasync has little left to do; a hint to the kernel, errors come from fdatasync. */
        sync_file_range(j->mk.fd, (off_t)at, (off_t)n, SYNC_FILE_RANGE_WRITE);
        if (at > ZSTEP)
            sync_file_range(j->mk.fd, (off_t)(at - ZSTEP), ZSTEP,
                            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                                SYNC_FILE_RANGE_WAIT_AFTER);
        return 0;
    }
    seg_name(name, sizeof(name), num, "");
    if (fdatasync(j->mk.fd) || renameat(j->dirfd, tmp, j->dirfd, name)) {
        r = -errno;
        goto fail;
    }
    if (fsync(j->dirfd)) {
        r = -errno;
        unlinkat(j->dirfd, name, 0);
        goto fail;
    }
    j->w[j->nw++] = (struct wseg){num, j->mk.size, j->mk.fd};
    j->mk.fd = -1;
    return 1;
fail:
    mk_abort(j);
    return err_of(-r);
}

/* ---- commit thread ------------------------------------------------------------------------ */

/* Fail-stop, under the mutex: the first failure is logged, every later append gets -EIO. */
static void fail_locked(struct journal *j, uint64_t seg, const char *what, int err)
{
    if (!j->failed) {
        fprintf(stderr, "nudged: journal: %s/%016llx.seg: %s failed: %s\n", j->dir,
                (unsigned long long)seg, what, strerror(-err));
        j->failed = 1;
        stat_add(&j->st.failed, 1);
    }
    pthread_cond_broadcast(&j->room);
}

/* Write one buffer: its chunks in order, sealing (fdatasync, close) each segment the batch
 * leaves, then a sync of the last one per mode. *end is the position after its last byte. */
static int write_batch(struct journal *j, const struct jbuf *b, uint64_t *seg, uint64_t *end,
                       const char **what)
{
    int r;
    for (size_t i = 0; i < b->nch; i++) {
        const struct chunk *c = &b->ch[i];
        while (j->w[0].num != c->seg) {
            if (j->nw < 2) return -EIO; /* a chunk for a segment not open: cannot happen */
            *seg = j->w[0].num;
            *what = "fdatasync";
            if ((r = timed_sync(j, j->w[0].fd)) < 0) return r;
            close(j->w[0].fd);
            memmove(&j->w[0], &j->w[1], (j->nw - 1) * sizeof(j->w[0]));
            j->nw--;
        }
        *seg = c->seg;
        *what = "write";
        if ((r = pwrite_full(j->w[0].fd, b->p + c->start, c->len, c->off)) < 0) return r;
        *end = mkpos(c->seg, c->off + c->len);
    }
    *what = "fdatasync";
    if (j->cfg.sync != JOURNAL_SYNC_OS && (r = timed_sync(j, j->w[0].fd)) < 0) return r;
    return 0;
}

/* BATCH: how long after the last commit ended the next may start. The wait grows with the
 * last commit's size, so a light load commits at once (latency of one fdatasync) and a heavy
 * one gathers for the whole batch_ms (fewer syncs and wake-ups per record). */
static uint64_t group_wait(const struct journal_config *c, size_t last_nrec)
{
    size_t full = c->group_full ? c->group_full : JOURNAL_GROUP_FULL;
    size_t n = last_nrec < full ? last_nrec : full;
    return (uint64_t)c->batch_ms * 1000000ull * n / full;
}

static void *commit_main(void *arg)
{
    struct journal *j = arg;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        if (j->failed) {
            if (j->stop) break;
            pthread_cond_wait(&j->wake, &j->mu);
            continue;
        }
        uint64_t now = now_ns();
        /* Creation: ahead of need, one step per turn. */
        int want =
            !j->ready && j->nw < NW && (j->mk.fd >= 0 || j->need_next || j->aoff >= j->asize / 2);
        if (want && j->create_err && j->mk.fd < 0) want = j->retry && now >= j->last_try + RETRY_NS;
        if (want && j->stop && !j->need_next) want = 0;
        if (want) {
            uint64_t num = j->aseg + 1;
            if (j->mk.fd < 0 && j->cfg.max_bytes &&
                stat_get(&j->st.bytes_on_disk) + j->cfg.segment_bytes > j->cfg.max_bytes) {
                j->create_err = -ENOSPC;
                j->retry = 0;
                j->last_try = now;
                pthread_cond_broadcast(&j->room);
                continue;
            }
            if (j->mk.fd < 0) {
                stat_add(&j->st.segments, 1);
                stat_add(&j->st.bytes_on_disk, j->cfg.segment_bytes);
            }
            pthread_mutex_unlock(&j->mu);
            int r = mk_step(j, num);
            pthread_mutex_lock(&j->mu);
            if (r == 1) {
                j->ready = num;
                j->ready_size = j->w[j->nw - 1].size;
                j->create_err = 0;
                pthread_cond_broadcast(&j->room);
            } else if (r < 0) {
                stat_sub(&j->st.segments, 1);
                stat_sub(&j->st.bytes_on_disk, j->cfg.segment_bytes);
                if (r == -ENOSPC) {
                    j->create_err = r;
                    j->retry = 0;
                    j->last_try = now_ns();
                    pthread_cond_broadcast(&j->room);
                } else {
                    fail_locked(j, num, "creating the segment", r);
                    continue;
                }
            }
        }
        if (j->fill.len) {
            uint64_t due = j->last_commit + group_wait(&j->cfg, j->last_nrec);
            if (j->cfg.sync == JOURNAL_SYNC_BATCH && !j->stop && now < due) {
                if (!want) wait_until(&j->wake, &j->mu, due);
                continue;
            }
            struct jbuf b = j->fill;
            j->fill = j->spare;
            pthread_mutex_unlock(&j->mu);
            uint64_t seg = 0, end = 0;
            const char *what = "";
            int r = write_batch(j, &b, &seg, &end, &what);
            pthread_mutex_lock(&j->mu);
            j->last_nrec = b.nrec;
            b.len = b.nch = b.nrec = 0;
            j->spare = b;
            j->last_commit = now_ns();
            pthread_cond_broadcast(&j->room);
            if (r < 0) {
                fail_locked(j, seg, what, r);
                continue;
            }
            atomic_store_explicit(&j->done, end, memory_order_release);
            if (j->notify) {
                pthread_mutex_unlock(&j->mu);
                j->notify(j->notify_arg);
                pthread_mutex_lock(&j->mu);
            }
            continue;
        }
        if (want) continue;
        if (j->stop) break;
        if (j->create_err && j->retry && !j->ready)
            wait_until(&j->wake, &j->mu, j->last_try + RETRY_NS);
        else
            pthread_cond_wait(&j->wake, &j->mu);
    }
    int failed = j->failed;
    pthread_mutex_unlock(&j->mu);
    if (j->mk.fd >= 0) mk_abort(j);
    if (!failed && j->cfg.sync == JOURNAL_SYNC_OS) {
        int r = timed_sync(j, j->w[0].fd);
        if (r < 0) {
            pthread_mutex_lock(&j->mu);
            fail_locked(j, j->w[0].num, "fdatasync", r);
            pthread_mutex_unlock(&j->mu);
        }
    }
    return NULL;
}

/* ---- append ------------------------------------------------------------------------------- */

static int buf_reserve(struct jbuf *b, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64 << 10;
        while (cap < b->len + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) return -ENOMEM;
        b->p = p, b->cap = cap;
    }
    if (b->nch == b->chcap) {
        size_t cap = b->chcap ? b->chcap * 2 : 4;
        struct chunk *c = realloc(b->ch, cap * sizeof(*c));
        if (!c) return -ENOMEM;
        b->ch = c, b->chcap = cap;
    }
    return 0;
}

int journal_append(struct journal *j, uint8_t type, const void *p, uint32_t len, journal_pos *pos)
{
    if (!type || len > JOURNAL_RECORD_MAX || len > j->cfg.segment_bytes - HDR - FRAME)
        return -EINVAL;
    uint64_t need = align8(FRAME + (uint64_t)len);
    int r = 0;
    pthread_mutex_lock(&j->mu);
    for (;;) {
        if (j->failed) {
            r = -EIO;
            goto out;
        }
        if (j->fill.len && j->fill.len + need > BUF_MAX) {
            pthread_cond_wait(&j->room, &j->mu);
            continue;
        }
        if (j->aoff + need <= j->asize) break;
        if (j->ready) { /* switch to the pre-created segment */
            j->aseg = j->ready, j->asize = j->ready_size, j->aoff = HDR;
            j->ready = 0;
            j->need_next = 0;
            pthread_cond_signal(&j->wake); /* start on the one after */
            continue;
        }
        if (j->create_err) {
            j->retry = 1;
            j->need_next = 0;
            pthread_cond_signal(&j->wake);
            r = -ENOSPC;
            goto out;
        }
        j->need_next = 1;
        pthread_cond_signal(&j->wake);
        pthread_cond_wait(&j->room, &j->mu);
    }
    struct jbuf *b = &j->fill;
    if ((r = buf_reserve(b, need)) < 0) goto out;
    int was_empty = b->len == 0;
    struct chunk *c = b->nch ? &b->ch[b->nch - 1] : NULL;
    if (!c || c->seg != j->aseg) {
        c = &b->ch[b->nch++];
        *c = (struct chunk){j->aseg, j->aoff, b->len, 0};
    }
    uint8_t *f = b->p + b->len;
    put32(f, len + 1);
    f[8] = type;
    if (len) memcpy(f + FRAME, p, len);
    memset(f + FRAME + len, 0, need - FRAME - len);
    put32(f + 4, frame_crc(f, len + 1));
    b->len += need;
    b->nrec++;
    c->len += need;
    *pos = mkpos(j->aseg, j->aoff);
    uint64_t half = j->asize / 2;
    int crossed = j->aoff < half && j->aoff + need >= half;
    j->aoff += need;
    stat_add(&j->st.appends, 1);
    stat_add(&j->st.bytes_appended, need);
    if (was_empty || (crossed && !j->ready)) pthread_cond_signal(&j->wake);
out:
    pthread_mutex_unlock(&j->mu);
    return r;
}

journal_pos journal_done(const struct journal *j)
{
    return atomic_load_explicit(&((struct journal *)j)->done, memory_order_acquire);
}

int journal_was_clean(const struct journal *j)
{
    return j->was_clean;
}

void journal_stats(const struct journal *j, struct journal_stats *out)
{
    out->segments = stat_get(&j->st.segments);
    out->bytes_on_disk = stat_get(&j->st.bytes_on_disk);
    out->appends = stat_get(&j->st.appends);
    out->bytes_appended = stat_get(&j->st.bytes_appended);
    out->syncs = stat_get(&j->st.syncs);
    out->sync_ns_max = stat_get(&j->st.sync_ns_max);
    out->cut_bytes = stat_get(&j->st.cut_bytes);
    out->failed = stat_get(&j->st.failed);
}

/* ---- recovery ----------------------------------------------------------------------------- */

static int all_zero(const uint8_t *p, uint64_t n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, (size_t)n - 1) == 0);
}

/* Walk the records of segment `num` mapped at m (size bytes), calling fn for the valid ones.
 * Returns the end of valid data; *bad is set when what follows is not the zero tail. */
static uint64_t seg_walk(const uint8_t *m, uint64_t size, uint64_t num, journal_record_fn *fn,
                         void *arg, int *bad)
{
    uint64_t off = HDR;
    *bad = 0;
    while (off + 8 <= size) {
        uint32_t len = get32(m + off);
        if (!len) break;
        if (len > JOURNAL_RECORD_MAX + 1 || len > size - off - 8 || !m[off + 8] ||
            get32(m + off + 4) != frame_crc(m + off, len)) {
            *bad = 1;
            return off;
        }
        if (fn) fn(arg, mkpos(num, off), m[off + 8], m + off + FRAME, len - 1);
        off += align8(8 + (uint64_t)len);
    }
    if (!all_zero(m + off, size - off)) *bad = 1;
    return off;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Segment numbers in the directory, sorted; leftover temporary files are removed. */
static int list_segments(struct journal *j, uint64_t **out, size_t *n)
{
    int fd = dup(j->dirfd);
    if (fd < 0) return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    rewinddir(d);
    uint64_t *v = NULL;
    size_t cnt = 0, cap = 0;
    int r = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *s = e->d_name;
        size_t l = strlen(s), k = 0;
        while (k < 16 && ((s[k] >= '0' && s[k] <= '9') || (s[k] >= 'a' && s[k] <= 'f')))
            k++;
        if (k != 16 || strncmp(s + 16, ".seg", 4)) continue;
        if (l == 24 && !strcmp(s + 20, ".tmp")) {
            unlinkat(j->dirfd, s, 0);
            continue;
        }
        if (l != 20) continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nv = realloc(v, cap * sizeof(*v));
            if (!nv) {
                r = -ENOMEM;
                break;
            }
            v = nv;
        }
        v[cnt++] = strtoull(s, NULL, 16);
    }
    closedir(d);
    if (r < 0) {
        free(v);
        return r;
    }
    if (cnt) qsort(v, cnt, sizeof(*v), cmp_u64);
    *out = v, *n = cnt;
    return 0;
}

/* Cut from segment v[i] at off (off == 0: the whole segment) to the end of the journal. */
static int cut(struct journal *j, const uint64_t *v, size_t i, size_t n, int fd, const uint8_t *m,
               uint64_t size, uint64_t off, const char *why)
{
    char name[48];
    uint64_t bytes = 0;
    int r = 0;
    if (off) {
        uint64_t last = size; /* zero up to the last non-zero byte */
        while (last > off && !m[last - 1])
            last--;
        bytes = last - off;
        if ((r = write_zeros(fd, off, bytes)) < 0 || (fdatasync(fd) && (r = -errno))) return r;
    }
    for (size_t k = off ? i + 1 : i; k < n; k++) {
        struct stat sb;
        seg_name(name, sizeof(name), v[k], "");
        if (fstatat(j->dirfd, name, &sb, 0) == 0) bytes += (uint64_t)sb.st_size;
        if (unlinkat(j->dirfd, name, 0) && errno != ENOENT) return -errno;
    }
    if (n > i + 1 || !off) {
        if (fsync(j->dirfd)) return -errno;
    }
    seg_name(name, sizeof(name), v[i], "");
    fprintf(stderr,
            "nudged: journal: %s/%s offset %llu: %s, cut %llu bytes (and %zu later segments)\n",
            j->dir, name, (unsigned long long)off, why, (unsigned long long)bytes, n - i - 1);
    stat_add(&j->st.cut_bytes, bytes);
    return 0;
}

/* Replay every segment; leaves the last one (its fd in w[0]) where appends continue. */
static int recover(struct journal *j, journal_record_fn *fn, void *arg, uint64_t *next_num)
{
    uint64_t *v = NULL;
    size_t n = 0;
    int r = list_segments(j, &v, &n), keep = -1;
    if (r < 0) return r;
    *next_num = n ? v[0] : 1;
    j->was_clean = j->was_clean || n == 0;
    for (size_t i = 0; i < n; i++) {
        char name[48];
        uint8_t h[HDR];
        struct stat sb;
        uint64_t size = 0;
        seg_name(name, sizeof(name), v[i], "");
        int fd = openat(j->dirfd, name, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            r = -errno;
            goto out;
        }
        const char *why = NULL;
        if (v[i] == 0 || v[i] >= UINT32_MAX)
            why = "bad segment number";
        else if (i && v[i] != v[i - 1] + 1)
            why = "segment missing before it";
        else if (fstat(fd, &sb) || (uint64_t)sb.st_size < HDR || pread_full(fd, h, HDR, 0) ||
                 !(size = header_check(h, v[i])) || (uint64_t)sb.st_size != size)
            why = "bad segment header or size";
        if (why) {
            close(fd);
            if ((r = cut(j, v, i, n, -1, NULL, 0, 0, why)) < 0) goto out;
            break;
        }
        uint8_t *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            r = -errno;
            close(fd);
            goto out;
        }
        int bad;
        uint64_t end = seg_walk(m, size, v[i], fn, arg, &bad);
        if (bad)
            r = cut(j, v, i, n, fd, m, size, end,
                    get32(m + end) ? "corrupt record" : "data after the end");
        munmap(m, (size_t)size);
        if (r < 0) {
            close(fd);
            goto out;
        }
        if (keep >= 0) close(keep);
        keep = fd;
        j->aseg = v[i], j->aoff = end, j->asize = size;
        stat_add(&j->st.segments, 1);
        stat_add(&j->st.bytes_on_disk, size);
        if (!j->first) j->first = v[i];
        if (bad) break;
    }
    if (keep >= 0) {
        j->w[0] = (struct wseg){j->aseg, j->asize, keep};
        j->nw = 1;
        keep = -1;
    }
out:
    if (keep >= 0) close(keep);
    free(v);
    return r;
}

/* ---- open / close ------------------------------------------------------------------------- */

void journal_config_default(struct journal_config *c)
{
    *c = (struct journal_config){NULL, 64ull << 20, 0, JOURNAL_SYNC_BATCH, 2, JOURNAL_GROUP_FULL};
}

static void journal_free(struct journal *j)
{
    for (size_t i = 0; i < j->nw; i++)
        close(j->w[i].fd);
    if (j->sfd >= 0) close(j->sfd);
    if (j->lockfd >= 0) close(j->lockfd);
    if (j->dirfd >= 0) close(j->dirfd);
    free(j->fill.p);
    free(j->fill.ch);
    free(j->spare.p);
    free(j->spare.ch);
    free(j->sbuf);
    free(j->dir);
    free(j);
}

int journal_open(const struct journal_config *c, journal_record_fn *fn, void *fn_arg,
                 void (*notify)(void *arg), void *notify_arg, struct journal **out)
{
    if (!c->dir || c->segment_bytes < JOURNAL_SEGMENT_MIN ||
        c->segment_bytes > JOURNAL_SEGMENT_MAX || c->segment_bytes % 4096 ||
        (c->max_bytes && c->max_bytes < 2 * c->segment_bytes) || c->sync > JOURNAL_SYNC_OS)
        return -EINVAL;
    struct journal *j = calloc(1, sizeof(*j));
    if (!j) return -ENOMEM;
    j->cfg = *c;
    j->dirfd = j->lockfd = j->sfd = j->mk.fd = -1;
    j->notify = notify, j->notify_arg = notify_arg;
    int r = 0, inited = 0;
    if (!(j->dir = strdup(c->dir))) {
        r = -ENOMEM;
        goto fail;
    }
    j->cfg.dir = j->dir;
    if (mkdir(j->dir, 0700) && errno != EEXIST) {
        r = -errno;
        goto fail;
    }
    if ((j->dirfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
        (j->lockfd = openat(j->dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        r = -errno;
        goto fail;
    }
    if (flock(j->lockfd, LOCK_EX | LOCK_NB)) {
        r = errno == EWOULDBLOCK ? -EBUSY : -errno;
        goto fail;
    }
    j->was_clean = faccessat(j->dirfd, "CLEAN", F_OK, 0) == 0;
    if (j->was_clean && (unlinkat(j->dirfd, "CLEAN", 0) || fsync(j->dirfd))) {
        r = -errno;
        goto fail;
    }
    uint64_t next_num;
    if ((r = recover(j, fn, fn_arg, &next_num)) < 0) goto fail;
    if (!j->nw) { /* an empty journal (or all of it was cut): its first segment */
        while ((r = mk_step(j, next_num)) == 0)
            ;
        if (r < 0) goto fail;
        j->aseg = j->first = next_num, j->aoff = HDR, j->asize = j->w[0].size;
        stat_add(&j->st.segments, 1);
        stat_add(&j->st.bytes_on_disk, j->asize);
    }
    atomic_store(&j->done, mkpos(j->aseg, j->aoff));
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->wake, &ca);
    pthread_cond_init(&j->room, &ca);
    pthread_condattr_destroy(&ca);
    inited = 1;
    if ((r = -pthread_create(&j->thread, NULL, commit_main, j)) < 0) goto fail;
    *out = j;
    return 0;
fail:
    if (inited) {
        pthread_mutex_destroy(&j->mu);
        pthread_cond_destroy(&j->wake);
        pthread_cond_destroy(&j->room);
    }
    journal_free(j);
    return r;
}

void journal_close(struct journal *j)
{
    pthread_mutex_lock(&j->mu);
    j->stop = 1;
    pthread_cond_signal(&j->wake);
    pthread_mutex_unlock(&j->mu);
    pthread_join(j->thread, NULL);
    if (!j->failed) {
        int fd = openat(j->dirfd, "CLEAN", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
            fsync(j->dirfd);
        }
    }
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->wake);
    pthread_cond_destroy(&j->room);
    journal_free(j);
}

/* ---- scan and drop (owner's thread) ------------------------------------------------------- */

/* Make bytes [off, off + n) of the scanned segment readable at j->sbuf + (off - sbase). */
static int scan_window(struct journal *j, uint64_t off, uint64_t n)
{
    if (off >= j->sbase && off + n <= j->sbase + j->slen) return 0;
    uint64_t want = n > SCAN_WIN ? n : SCAN_WIN;
    if (want > j->ssize - off) want = j->ssize - off;
    if (want > j->scap) {
        uint8_t *p = realloc(j->sbuf, (size_t)want);
        if (!p) return -ENOMEM;
        j->sbuf = p, j->scap = (size_t)want;
    }
    j->slen = 0;
    int r = pread_full(j->sfd, j->sbuf, (size_t)want, off);
    if (r < 0) return r;
    j->sbase = off, j->slen = want;
    return 0;
}

static int scan_open(struct journal *j, uint64_t seg)
{
    char name[48];
    uint8_t h[HDR];
    if (j->sfd >= 0 && j->sseg == seg) return 0;
    if (j->sfd >= 0) close(j->sfd);
    j->slen = 0;
    seg_name(name, sizeof(name), seg, "");
    if ((j->sfd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC)) < 0) return -errno;
    j->sseg = seg;
    int r = pread_full(j->sfd, h, HDR, 0);
    if (r == 0 && !(j->ssize = header_check(h, seg))) r = -EIO;
    if (r < 0) {
        close(j->sfd);
        j->sfd = -1;
    }
    return r;
}

int journal_scan(struct journal *j, journal_pos from, size_t budget, journal_record_fn *fn,
                 void *arg, journal_pos *next)
{
    uint64_t closed = journal_done(j) >> 32, used = 0;
    pthread_mutex_lock(&j->mu);
    uint64_t first = j->first;
    pthread_mutex_unlock(&j->mu);
    uint64_t seg = from >> 32, off = from & 0xffffffffu;
    if (seg < first) seg = first, off = HDR;
    if (off < HDR) off = HDR;
    int r;
    for (; seg < closed; seg++, off = HDR) {
        *next = mkpos(seg, off);
        if ((r = scan_open(j, seg)) < 0) return r;
        while (off + 8 <= j->ssize) {
            if ((r = scan_window(j, off, 8)) < 0) return r;
            uint32_t len = get32(j->sbuf + (off - j->sbase));
            if (!len) break;
            int bad = len > JOURNAL_RECORD_MAX + 1 || len > j->ssize - off - 8;
            if (!bad) {
                if ((r = scan_window(j, off, 8 + (uint64_t)len)) < 0) return r;
                const uint8_t *f = j->sbuf + (off - j->sbase);
                bad = !f[8] || get32(f + 4) != frame_crc(f, len);
            }
            if (bad) {
                fprintf(stderr,
                        "nudged: journal: %s/%016llx.seg offset %llu: corrupt record in a closed "
                        "segment, skipped %llu bytes\n",
                        j->dir, (unsigned long long)seg, (unsigned long long)off,
                        (unsigned long long)(j->ssize - off));
                stat_add(&j->st.cut_bytes, j->ssize - off);
                break;
            }
            uint64_t rs = align8(8 + (uint64_t)len);
            if (used && used + rs > budget) {
                *next = mkpos(seg, off);
                return 0;
            }
            /* fn may append: copy nothing, but do not keep pointers across the call. */
            const uint8_t *f = j->sbuf + (off - j->sbase);
            if (fn) fn(arg, mkpos(seg, off), f[8], f + FRAME, len - 1);
            used += rs;
            off += rs;
        }
    }
    *next = mkpos(seg, HDR);
    return 1;
}

int journal_drop_before(struct journal *j, journal_pos pos)
{
    uint64_t limit = pos >> 32, closed = journal_done(j) >> 32;
    if (limit > closed) limit = closed;
    pthread_mutex_lock(&j->mu);
    uint64_t seg = j->first;
    pthread_mutex_unlock(&j->mu);
    int n = 0, r = 0;
    uint64_t bytes = 0;
    for (; seg < limit; seg++) {
        char name[48];
        struct stat sb;
        seg_name(name, sizeof(name), seg, "");
        if (fstatat(j->dirfd, name, &sb, 0)) {
            r = -errno;
            break;
        }
        if (unlinkat(j->dirfd, name, 0)) {
            r = -errno;
            break;
        }
        bytes += (uint64_t)sb.st_size;
        n++;
    }
    if (!n) return r;
    if (j->sfd >= 0 && j->sseg < seg) {
        close(j->sfd);
        j->sfd = -1;
    }
    fsync(j->dirfd);
    pthread_mutex_lock(&j->mu);
    j->first = seg;
    stat_sub(&j->st.segments, (uint64_t)n);
    stat_sub(&j->st.bytes_on_disk, bytes);
    j->create_err = 0; /* room was made: try again at once */
    pthread_cond_signal(&j->wake);
    pthread_mutex_unlock(&j->mu);
    return n;
}
