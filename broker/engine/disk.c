/* disk: the persistence half of the store (store_disk_open; store.c is the other half, the
 * records and bounds in memory; disk.h is what the two share).
 *
 * Disk. Every publish is one journal record (record.h: topic, seq, base, gpos, time, data),
 * encoded with the seq and gpos it will get and appended before anything is assigned: the
 * journal says synchronously whether it took it, so a refused append takes nothing. A taken one
 * advances the topic's assigned seq (aseq) and waits in the pending FIFO; the journal's thread
 * only wakes the owner, and poll, on the owner's thread, completes what journal_done() passed,
 * in order: the completed seq (what ops->seq says, what the engine confirms) moves, the hint
 * joins history, done runs. A record's journal position is kept per topic (jpos: its newest
 * record), which is all compaction needs to know what is live. Closing, forgetting and eviction
 * write nothing: recovery replays records (the newest per topic wins), and the floor and gpos
 * counter are written (a floor record) before compaction drops a segment that may hold what
 * raised them. The epoch lives in the EPOCH file; see disk_open for when it changes. */
#include "disk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "record.h"

/* Compaction (disk): scanned per evict call, framed bytes; four times as much while the files
 * are past three quarters of --disk-max. */
static const size_t COMPACT_BUDGET = 4u << 20;
/* Journal bytes a position is taken to need (its newest record: frame, header, name, a little
 * data), for the estimate of what is live. */
static const uint64_t POSITION_BYTES = 128;

void store_disk_default(struct store_disk *d)
{
    memset(d, 0, sizeof(*d));
    d->sync = JOURNAL_SYNC_BATCH;
    d->batch_ms = 2;
    d->segment_bytes = 64ull << 20;
    d->max_bytes = 1ull << 30;
}

static int rbuf_reserve(struct smem *m, size_t n)
{
    if (n <= m->rbuf_cap) return 0;
    size_t cap = m->rbuf_cap ? m->rbuf_cap : 4096;
    while (cap < n)
        cap *= 2;
    uint8_t *p = realloc(m->rbuf, cap);
    if (!p) return -ENOMEM;
    m->rbuf = p, m->rbuf_cap = cap;
    return 0;
}

/* Room for one more pending append. */
static int pq_reserve(struct smem *m)
{
    if (m->pq_len < m->pq_cap) return 0;
    size_t cap = m->pq_cap ? m->pq_cap * 2 : 256;
    struct pend *q = malloc(cap * sizeof(*q));
    if (!q) return -ENOMEM;
    for (size_t i = 0; i < m->pq_len; i++)
        q[i] = m->pq[(m->pq_head + i) % m->pq_cap];
    free(m->pq);
    m->pq = q, m->pq_cap = cap, m->pq_head = 0;
    return 0;
}

static struct pend pq_pop(struct smem *m)
{
    struct pend p = m->pq[m->pq_head];
    m->pq_head = (m->pq_head + 1) % m->pq_cap;
    m->pq_len--;
    return p;
}

void disk_append(struct smem *m, struct store_topic *t, struct hint *h, struct hent *e,
                 store_done_fn *done, void *arg)
{
    struct store *s = &m->base;
    uint64_t now = s->wall_ms();
    struct record_topic r = {
        .flags = RECORD_HINT,
        .name = t->name,
        .name_len = t->node.len,
        .seq = t->aseq + 1,
        .base = t->base,
        .gpos = m->agpos + 1,
        .time_ms = now,
        .data = h->data,
        .data_len = h->data_len,
    };
    size_t n = record_topic_size(&r);
    journal_pos pos = 0;
    int err;
    /* Nothing is assigned before the journal took the record: a refused append leaves no gap
     * and cannot be overtaken by a later one of the same topic. */
    if (n > JOURNAL_RECORD_MAX || t->node.len > WIRE_TOPIC_LEN_MAX)
        err = -EINVAL; /* data near WIRE_DATA_MAX, or a segment too small for it */
    else if ((err = pq_reserve(m)) == 0 && (err = rbuf_reserve(m, n)) == 0) {
        record_topic_encode(&r, m->rbuf);
        err = journal_append(m->j, RECORD_TOPIC, m->rbuf, (uint32_t)n, &pos);
    }
    if (err < 0) {
        free(e);
        s->st.disk_failed++;
        done(arg, h, err);
        return;
    }
    h->seq = ++t->aseq;
    h->gpos = ++m->agpos;
    h->time_ms = now;
    t->jpos = pos;
    m->pq[(m->pq_head + m->pq_len++) % m->pq_cap] =
        (struct pend){pos, hint_ref(h), t, e, done, arg};
}

static int journal_failed(const struct smem *m)
{
    struct journal_stats js;
    journal_stats(m->j, &js);
    return js.failed != 0;
}

/* Complete one pending append: on disk (err 0), or lost with a failed journal. */
static void complete(struct smem *m, struct pend *p, int err)
{
    struct store_topic *t = p->t;
    if (err == 0) {
        t->seq = p->h->seq;
        m->base.st.gpos = p->h->gpos;
        store__changed_at(m, t, p->h->gpos);
        if (p->e) store__retain(m, t, p->e, p->h);
    } else {
        /* Every later pending append fails too (done no longer advances): their seqs and
         * gposes are given back. */
        free(p->e);
        t->aseq = t->seq;
        m->agpos = m->base.st.gpos;
        m->base.st.disk_failed++;
    }
    p->done(p->arg, p->h, err);
    hint_unref(p->h);
}

void disk_poll(struct smem *m, int wait)
{
    if (wait && m->pq_len) {
        journal_pos last = m->pq[(m->pq_head + m->pq_len - 1) % m->pq_cap].pos;
        struct timespec ms = {0, 1000000};
        while (journal_done(m->j) <= last && !journal_failed(m))
            nanosleep(&ms, NULL);
    }
    /* done callbacks may reach the store again (the engine closes a topic): pop first. */
    journal_pos done = journal_done(m->j);
    while (m->pq_len && m->pq[m->pq_head].pos < done) {
        struct pend p = pq_pop(m);
        complete(m, &p, 0);
    }
    if (m->pq_len && journal_failed(m)) {
        done = journal_done(m->j); /* final now */
        while (m->pq_len) {
            struct pend p = pq_pop(m);
            complete(m, &p, p.pos < done ? 0 : -EIO);
        }
    }
}

/* From evict: a failed journal does not notify, so the owner is woken to fail what waits. */
void disk_check_failed(struct smem *m)
{
    if (m->pq_len && m->base.wake && journal_failed(m)) m->base.wake(m->base.wake_arg);
}

/* The journal's notify, on its thread: wake the owner, touch nothing else. */
static void on_commit(void *arg)
{
    struct smem *m = arg;
    if (m->base.wake) m->base.wake(m->base.wake_arg);
}

/* ---- disk: compaction --------------------------------------------------------------------- */

/* Whether a pass should start: there are closed segments, and either the files pass half of
 * --disk-max, or they hold more than four times what is live (an estimate: the newest record of
 * every position) plus two segments. Each pass then at least halves the garbage, so a
 * live byte is copied about twice in its life. */
static int want_compaction(const struct smem *m, const struct journal_stats *js)
{
    if (js->segments < 3) return 0; /* the one appended to, and maybe one created ahead */
    if (m->d.max_bytes && js->bytes_on_disk > m->d.max_bytes / 2) return 1;
    uint64_t live = m->base.st.positions * POSITION_BYTES;
    return js->bytes_on_disk > 4 * live + 2 * m->d.segment_bytes;
}

/* journal_scan callback: copy a record that is still its topic's newest (with its data while
 * the hint is retained or not completed yet, else as a position), unless the topic is closed
 * past the horizon: then it is forgotten here and the floor record covers it. */
static void carry(void *arg, journal_pos pos, uint8_t type, const uint8_t *p, uint32_t len)
{
    struct smem *m = arg;
    if ((pos >> 32) >= m->cend) return; /* written after the pass started: the next pass */
    if (!m->cseg) m->cseg = pos >> 32;
    struct record_topic r;
    if (type != RECORD_TOPIC || record_topic_decode(p, len, &r) < 0) return;
    uint64_t hash = table_hash(&m->topics, r.name, r.name_len);
    struct store_topic *t = (struct store_topic *)table_find(&m->topics, r.name, r.name_len, hash);
    if (t && t->jpos != pos) return; /* a newer record exists (it covers this one) */
    if (t && t->closed && m->cnow > t->closed_ms &&
        m->cnow - t->closed_ms > m->base.cfg.horizon_ms) {
        store__forget(m, t);
        t = NULL;
    }
    if (!t) { /* forgotten: the floor (and gpos counter) must outlive this record */
        m->cneed = 1;
        return;
    }
    int data = (r.flags & RECORD_HINT) && (r.seq > t->seq || (t->tail && t->tail->h->seq == r.seq));
    if ((r.flags & RECORD_HINT) && !data) {
        r.flags = 0;
        r.data = NULL;
        r.data_len = 0;
        size_t n = record_topic_size(&r);
        if (rbuf_reserve(m, n) < 0) {
            if (!m->cfail) m->cfail = pos;
            return;
        }
        record_topic_encode(&r, m->rbuf);
        p = m->rbuf;
        len = (uint32_t)n;
    }
    journal_pos np;
    if (journal_append(m->j, RECORD_TOPIC, p, len, &np) < 0) {
        if (!m->cfail) m->cfail = pos;
        return;
    }
    t->jpos = np;
    m->clast = np;
}

static void compact_log(struct smem *m, const char *what, int err)
{
    if (m->failed_logged) return;
    m->failed_logged = 1;
    fprintf(stderr, "nudged: store: %s: compaction: %s: %s (retried at later ticks)\n", m->dir,
            what, strerror(-err));
}

/* One bounded step of compaction, from evict: drop what the previous step carried once its
 * copies are done, then scan on. */
void disk_compact(struct smem *m, uint64_t now_ms)
{
    struct journal_stats js;
    journal_stats(m->j, &js);
    m->base.st.disk_bytes = js.bytes_on_disk;
    if (js.failed) return;
    if (m->cdrop) {
        if (m->clast && journal_done(m->j) <= m->clast) return; /* copies not on disk yet */
        int n = journal_drop_before(m->j, m->cdrop);
        if (n < 0) {
            compact_log(m, "deleting a segment", n);
            m->cactive = 0;
        }
        m->cseg = m->cdrop >> 32;
        m->cdrop = m->clast = 0;
        journal_stats(m->j, &js);
        m->base.st.disk_bytes = js.bytes_on_disk;
    }
    if (!m->cactive) {
        if (!want_compaction(m, &js)) return;
        m->cactive = 1;
        m->cend = journal_done(m->j) >> 32;
        m->cnext = 0;
        m->cseg = 0;
        m->cneed = 0;
    }
    size_t budget = COMPACT_BUDGET;
    if (m->d.max_bytes && js.bytes_on_disk > m->d.max_bytes / 4 * 3) budget *= 4;
    m->cnow = now_ms;
    m->cfail = 0;
    journal_pos next = 0;
    int r = journal_scan(m->j, m->cnext, budget, carry, m, &next);
    if (r < 0) {
        compact_log(m, "reading a segment", r);
        m->cactive = 0;
        return;
    }
    if (m->cfail) { /* no room for a copy: keep that segment, end the pass, try later */
        next = m->cfail;
        r = 1;
    }
    if (next > m->cend << 32) {
        next = m->cend << 32;
        r = 1;
    }
    m->cnext = next;
    if (r == 1) m->cactive = 0;
    if (!m->cseg || (next >> 32) <= m->cseg) return;
    /* Segments [cseg, next >> 32) are carried. The floor and the gpos counter go with them when
     * they held a forgotten topic's record (or the newest floor record): written only then, so
     * that a journal refusing appends (-ENOSPC) can still drop segments that hold no live
     * record. A forgotten topic's record is the only one whose seq or gpos is not covered by a
     * record that stays: any other is its topic's newest (copied) or older than it. */
    if (m->cneed || (m->fpos && (m->fpos >> 32) < (next >> 32))) {
        uint8_t b[RECORD_FLOOR_SIZE];
        record_floor_encode(&(struct record_floor){m->floor, m->agpos, m->base.st.forgot_gpos}, b);
        journal_pos pos;
        if (journal_append(m->j, RECORD_FLOOR, b, sizeof(b), &pos) < 0) {
            m->cactive = 0;
            return;
        }
        m->fpos = m->clast = pos;
        m->cneed = 0;
    }
    m->cdrop = next;
}

/* ---- disk: recovery ----------------------------------------------------------------------- */

static void rec_topic(struct smem *m, journal_pos pos, const uint8_t *p, uint32_t len)
{
    struct record_topic r;
    if (record_topic_decode(p, len, &r) < 0) {
        m->bad_records++;
        return;
    }
    uint64_t hash = table_hash(&m->topics, r.name, r.name_len);
    struct store_topic *t = (struct store_topic *)table_find(&m->topics, r.name, r.name_len, hash);
    if (r.gpos > m->agpos) m->agpos = r.gpos;
    if (!t) {
        if (m->nrec == m->rec_cap) {
            size_t cap = m->rec_cap ? m->rec_cap * 2 : 1024;
            struct store_topic **v = realloc(m->rec, cap * sizeof(*v));
            if (!v) goto oom;
            m->rec = v, m->rec_cap = cap;
        }
        if (!(t = store__topic_new(m, r.name, r.name_len, hash))) goto oom;
        t->seq = t->aseq = t->base = r.base;
        m->rec[m->nrec++] = t;
    }
    /* Records of a topic come in seq order (compaction copies only the newest), so a lower seq
     * is unexpected; a higher base is the topic forgotten and created again. */
    if (r.seq < t->aseq) return;
    if (r.base != t->base) {
        while (t->head)
            store__drop_head(m, t, 0);
        t->base = r.base;
    }
    t->seq = t->aseq = r.seq;
    t->last_gpos = r.gpos; /* linked on the changed list by rec_finish */
    t->jpos = pos;
    t->closed_ms = r.time_ms;
    if (!(r.flags & RECORD_HINT) || !m->base.cfg.per_topic || (t->tail && t->tail->h->seq >= r.seq))
        return;
    struct hint *h = hint_new(r.name, r.name_len, hash, r.data, r.data_len);
    struct hent *e = malloc(sizeof(*e));
    if (!h || !e) {
        hint_unref(h);
        free(e);
        goto oom;
    }
    h->seq = r.seq;
    h->gpos = r.gpos;
    h->time_ms = r.time_ms;
    store__retain(m, t, e, h);
    e->recovered = 1; /* sealed when first handed out (store__seal) */
    hint_unref(h);
    return;
oom:
    m->rec_err = -ENOMEM;
}

static void on_record(void *arg, journal_pos pos, uint8_t type, const uint8_t *p, uint32_t len)
{
    struct smem *m = arg;
    struct record_floor f;
    m->records++;
    if (m->rec_err) return;
    if (type == RECORD_TOPIC)
        rec_topic(m, pos, p, len);
    else if (type == RECORD_FLOOR && record_floor_decode(p, len, &f) == 0) {
        m->fpos = pos;
        if (f.floor > m->floor) m->floor = f.floor;
        if (f.gpos > m->agpos) m->agpos = f.gpos;
        if (f.forgot > m->base.st.forgot_gpos) m->base.st.forgot_gpos = f.forgot;
    } else
        m->bad_records++;
}

static int by_gpos(const void *a, const void *b)
{
    const struct store_topic *x = *(struct store_topic *const *)a;
    const struct store_topic *y = *(struct store_topic *const *)b;
    return x->last_gpos < y->last_gpos ? -1 : x->last_gpos > y->last_gpos;
}

static int by_last_publish(const void *a, const void *b)
{
    const struct store_topic *x = *(struct store_topic *const *)a;
    const struct store_topic *y = *(struct store_topic *const *)b;
    if (x->closed_ms != y->closed_ms) return x->closed_ms < y->closed_ms ? -1 : 1;
    return x->jpos < y->jpos ? -1 : x->jpos > y->jpos;
}

/* Recovered records are closed (nobody holds them yet), on the closed FIFO by last publish, so
 * that the horizon counts from it. */
static void rec_finish(struct smem *m)
{
    /* The changed list, by the global position of each topic's newest publish. */
    if (m->nrec) qsort(m->rec, m->nrec, sizeof(*m->rec), by_gpos);
    for (size_t i = 0; i < m->nrec; i++) {
        struct store_topic *t = m->rec[i];
        uint64_t g = t->last_gpos;
        t->last_gpos = 0; /* not linked yet */
        if (g) store__changed_at(m, t, g);
    }
    if (m->nrec) qsort(m->rec, m->nrec, sizeof(*m->rec), by_last_publish);
    for (size_t i = 0; i < m->nrec; i++)
        store__clink(m, m->rec[i]);
    m->base.st.recovered = m->nrec;
    m->base.st.gpos = m->agpos;
    free(m->rec);
    m->rec = NULL;
    m->nrec = m->rec_cap = 0;
    store__trim(m, 0);
    if (m->bad_records)
        fprintf(stderr, "nudged: store: %s: %zu records not understood, skipped\n", m->dir,
                m->bad_records);
}

/* ---- disk: the EPOCH file ----------------------------------------------------------------- */

static const char *const SYNC_NAME[] = {"batch", "always", "os"};

struct epoch_file {
    char epoch[17];
    int sync; /* enum journal_sync */
    char boot[64];
};

/* The boot id of this machine's current boot; NUDGE_BOOT_ID overrides it (for tests). */
static void boot_id(char out[64])
{
    const char *env = getenv("NUDGE_BOOT_ID");
    snprintf(out, 64, "unknown");
    if (env && *env) {
        snprintf(out, 64, "%s", env);
        return;
    }
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
    if (!f) return;
    if (fgets(out, 64, f)) out[strcspn(out, "\n")] = '\0';
    if (!out[0]) snprintf(out, 64, "unknown");
    fclose(f);
}

/* 1: read; 0: no file; -1: unreadable. */
static int epoch_read(int dirfd, struct epoch_file *ef)
{
    char buf[256], sync[16];
    int fd = openat(dirfd, "EPOCH", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    int end = 0;
    if (sscanf(buf, "nudge-store 1\nepoch %16[0-9a-f]\nsync %15[a-z]\nboot %63[^\n]\n%n", ef->epoch,
               sync, ef->boot, &end) != 3 ||
        end != n || strlen(ef->epoch) != 16)
        return -1;
    for (ef->sync = 0; ef->sync < 3 && strcmp(sync, SYNC_NAME[ef->sync]); ef->sync++)
        ;
    return ef->sync < 3 ? 1 : -1;
}

/* Replace the EPOCH file atomically: a temporary file, fsync, rename, fsync of the directory. */
static int epoch_write(int dirfd, const struct epoch_file *ef)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf), "nudge-store 1\nepoch %s\nsync %s\nboot %s\n", ef->epoch,
                     SYNC_NAME[ef->sync], ef->boot);
    int fd = openat(dirfd, "EPOCH.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    int r = 0;
    if (write(fd, buf, (size_t)n) != n)
        r = errno ? -errno : -EIO;
    else if (fsync(fd))
        r = -errno;
    close(fd);
    if (r == 0 && renameat(dirfd, "EPOCH.tmp", dirfd, "EPOCH")) r = -errno;
    if (r == 0 && fsync(dirfd)) r = -errno;
    if (r < 0) unlinkat(dirfd, "EPOCH.tmp", 0);
    return r == -EDQUOT ? -ENOSPC : r;
}

/* Delete the journal's segments and CLEAN mark (journal.h: the files it keeps). */
static int discard_segments(int dirfd)
{
    int fd = dup(dirfd);
    DIR *d = fd < 0 ? NULL : fdopendir(fd);
    if (!d) {
        int r = -errno;
        if (fd >= 0) close(fd);
        return r;
    }
    rewinddir(d);
    int r = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l >= 4 && !strcmp(de->d_name + l - 4, ".seg") && unlinkat(dirfd, de->d_name, 0))
            r = -errno;
    }
    closedir(d);
    if (unlinkat(dirfd, "CLEAN", 0) && errno != ENOENT) r = -errno;
    if (fsync(dirfd) && !r) r = -errno;
    return r;
}

/* ---- disk: open and free ------------------------------------------------------------------ */

/* Open steps, in order: lock and recover (journal_open, records replayed into RAM through
 * on_record); decide continuity from the EPOCH file left by the previous run; if it is lost,
 * drop what was recovered, close the journal, delete its segments and open it again empty (a
 * second nudged starting on the same directory in that instant could get -EBUSY: harmless);
 * write the EPOCH file for this run; close the recovered records. Continuity is lost when the
 * journal holds records but no readable EPOCH file says whose they are, or when the previous run
 * wrote with --fsync os, stopped uncleanly, and the machine has booted since: its page cache,
 * which held what it called done, is gone, and positions confirmed to clients may be missing. */
int store_disk_open(const struct store_config *cfg, const struct store_disk *d, uint64_t e,
                    uint64_t k0, uint64_t k1, struct store **out)
{
    *out = NULL;
    if (!d->dir || !d->dir[0] || d->sync > JOURNAL_SYNC_OS) return -EINVAL;
    uint64_t t0 = store__mono_ms();
    int r = 0, dirfd = -1;
    struct smem *m = store__smem_new(cfg, e, k0, k1);
    if (!m) return -ENOMEM;
    m->d = *d;
    if (!(m->dir = strdup(d->dir))) {
        r = -ENOMEM;
        goto fail;
    }
    m->d.dir = m->dir;
    struct journal_config jc;
    journal_config_default(&jc);
    jc.dir = m->dir;
    jc.segment_bytes = d->segment_bytes;
    jc.max_bytes = d->max_bytes;
    jc.sync = d->sync;
    jc.batch_ms = d->batch_ms;
    jc.group_full = d->group_full;
    if ((mkdir(m->dir, 0700) && errno != EEXIST) ||
        (dirfd = open(m->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        r = -errno;
        goto fail;
    }
    struct epoch_file prev = {0}, now = {0};
    int have = epoch_read(dirfd, &prev);
    if ((r = journal_open(&jc, on_record, m, on_commit, m, &m->j)) < 0) goto fail;
    if ((r = m->rec_err) < 0) goto fail;
    boot_id(now.boot);
    int unclean_os = have > 0 && prev.sync == JOURNAL_SYNC_OS && !journal_was_clean(m->j);
    const char *lost = NULL;
    if (have <= 0 && m->records)
        lost = have < 0 ? "its EPOCH file is unreadable" : "it has no EPOCH file";
    else if (unclean_os && strcmp(prev.boot, now.boot))
        lost = "the machine restarted after an unclean stop with --fsync os";
    if (lost) {
        fprintf(stderr,
                "nudged: store: %s: continuity lost (%s): a new epoch, %zu journal records "
                "discarded\n",
                m->dir, lost, m->records);
        store__drop_all(m);
        m->records = m->bad_records = 0;
        for (size_t i = 0; i < m->nrec; i++) /* freed by store__drop_all */
            m->rec[i] = NULL;
        m->nrec = 0;
        journal_close(m->j);
        m->j = NULL;
        if ((r = discard_segments(dirfd)) < 0 ||
            (r = journal_open(&jc, NULL, NULL, on_commit, m, &m->j)) < 0)
            goto fail;
        have = 0;
    } else if (unclean_os && syncfs(dirfd)) {
        /* Same boot: what the previous run left in the page cache is what this one builds on
         * and will confirm; make it durable before a later run could be told otherwise. */
        r = -errno;
        goto fail;
    }
    if (have > 0)
        memcpy(m->base.epoch, prev.epoch, sizeof(m->base.epoch));
    else
        m->base.st.new_epoch = 1;
    memcpy(now.epoch, m->base.epoch, sizeof(now.epoch));
    now.sync = (int)d->sync;
    if ((r = epoch_write(dirfd, &now)) < 0) goto fail;
    m->base.st.evicted = 0; /* what recovery passed over is not history evicted */
    rec_finish(m);
    struct journal_stats js;
    journal_stats(m->j, &js);
    m->base.st.cut_bytes = js.cut_bytes;
    m->base.st.disk_bytes = js.bytes_on_disk;
    m->base.st.recovery_ms = store__mono_ms() - t0;
    close(dirfd);
    *out = &m->base;
    return 0;
fail:
    if (dirfd >= 0) close(dirfd);
    free(m->rec);
    m->rec = NULL;
    store__free(&m->base);
    return r;
}

void disk_free(struct smem *m)
{
    while (m->pq_len) { /* the owner polled with wait before: nothing is expected here */
        struct pend p = pq_pop(m);
        free(p.e);
        hint_unref(p.h);
    }
    if (m->j) journal_close(m->j);
    m->j = NULL;
    free(m->pq);
    free(m->rbuf);
    free(m->dir);
}
