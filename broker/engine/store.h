/* store: where topic positions and history live. An interface (struct store_ops) with one
 * implementation here: positions and history in memory, optionally persisted to a journal in a
 * data directory (store_disk_open) so that they outlive restarts, or numbered by Redis for a node
 * of a cluster (cluster.h: the same in-memory records, fed by the cluster's channel). The store
 * owns what must be true across the whole deployment: each topic's sequence (append assigns it),
 * the epoch those sequences belong to, and the wall-clock time of each hint. Append completes
 * through a callback so that a store which must wait (a group commit to disk, a round trip to
 * Redis) fits without changing callers; the memory store completes at once.
 *
 * The engine calls a store from one thread at a time (under its own lock once there are
 * several workers). Per-topic state lives in the store's own records (struct store_topic), which
 * the engine opens when a topic becomes active and closes when it forgets it. */
#ifndef NUDGE_STORE_H
#define NUDGE_STORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hint.h"
#include "journal.h"

#define STORE_EVICT_BUDGET 65536 /* hints and positions dropped per evict call at most */

struct store;
struct store_topic; /* the store's record of one topic (opaque) */

struct store_config {
    uint32_t per_topic;     /* hints kept per topic; default 64; 0 = keep none */
    uint64_t max_bytes;     /* all topics; default 64 MiB */
    uint64_t max_age_ms;    /* default 300 s */
    uint64_t horizon_ms;    /* a topic's position is kept this long after the engine last held
                               it (its last publish or subscriber); default 7 days */
    uint32_t max_positions; /* positions kept at most (held or not); default 1,000,000 */
};

/* Persistence: where and how the store writes itself (docs/guarantees.md §Durability). */
struct store_disk {
    const char *dir;        /* data directory (created if missing; the store keeps a copy) */
    enum journal_sync sync; /* --fsync: batch (default), always or os */
    uint32_t batch_ms;      /* batch: the longest wait between commits; default 2 */
    uint32_t group_full;    /* batch: commit size that waits the whole batch_ms (journal.h);
                               0: JOURNAL_GROUP_FULL */
    uint64_t segment_bytes; /* journal segment size; default 64 MiB */
    uint64_t max_bytes;     /* --disk-max: the journal's files at most (publishes fail with
                               -ENOSPC past it); default 1 GiB; 0 = no bound */
};

struct store_stats {
    uint64_t entries;
    uint64_t bytes;
    uint64_t evicted;
    uint64_t topics;      /* records open */
    uint64_t positions;   /* records kept (open, or closed within the horizon) */
    uint64_t forgotten;   /* positions forgotten (horizon or max_positions) */
    uint64_t gpos;        /* the global position: publishes completed in this epoch */
    uint64_t forgot_gpos; /* newest change of a forgotten topic: changes after a position below
                             it cannot all be listed (a wildcard resume from it is reset) */
    /* persisted stores only */
    uint64_t disk_bytes;  /* journal files on disk now */
    uint64_t disk_failed; /* appends refused: disk full, --disk-max, or a failed journal */
    uint64_t recovered;   /* topics recovered at open */
    uint64_t recovery_ms; /* time the open took */
    uint64_t cut_bytes;   /* corrupt or torn tail cut at open */
    uint8_t new_epoch;    /* 1: the open started a new epoch (new directory, or
                             continuity lost: then every resume gets reset "epoch") */
};

typedef void store_done_fn(void *arg, struct hint *h, int err);

/* One topic that changed (store_ops.changed). Valid during the call only. */
struct store_change {
    const char *name;
    uint32_t len;
    uint64_t hash;
    uint64_t seq;        /* its last completed seq */
    uint64_t base;       /* the seq its record started from */
    uint64_t gpos;       /* the global position of that publish */
    struct hint *newest; /* the retained hint of seq, or NULL (the store's reference) */
};

/* A change learnt from elsewhere (a cluster store: another node's publish, or a topic found ahead
 * of what this node had seen): the engine holds the topic, builds the hint and gives both to
 * store_ops.adopt, then releases the hint like one of its own. Valid during the call only. */
struct store_arrival {
    const char *name;
    uint32_t len;
    uint64_t hash;
    const uint8_t *data; /* NULL: none */
    uint32_t data_len;
    const char *origin; /* the connection that caused it (may be empty) */
    uint32_t origin_len;
    int skip_origin;
    uint32_t count; /* publishes the hint stands for: 1, or a catch-up's seq distance */
    void *ctx;      /* the store's, for adopt */
};

struct store_ops {
    /* The record of topic name[0..len) (hash: table_hash under the process key), created when
     * unknown. owner is passed back by the emptied callback. The caller holds the record until
     * close. NULL on OOM. */
    struct store_topic *(*open)(struct store *s, const char *name, size_t len, uint64_t hash,
                                void *owner);
    /* The engine no longer holds the topic (it has no retained hint then). Its position is kept
     * for the horizon; a topic forgotten and opened again later starts above every seq given out
     * before in this epoch (the floor, which is its base), so a client resuming from a position
     * older than that is reset, never silently overlapped. */
    void (*close)(struct store *s, struct store_topic *t);
    /* Stamp h (seq = the topic's next, gpos = the next global position, time_ms = wall clock),
     * retain it (the store takes its own reference), then call done(arg, h, 0): at once in
     * memory, from poll once it is on disk when persisted. Completions come in append order. On
     * failure done(arg, h, err < 0): -ENOSPC (disk full or --disk-max), -EIO (the journal
     * failed), -ENOMEM, -EINVAL (persisted: the hint does not fit one journal record, i.e. data
     * near WIRE_DATA_MAX or larger than a segment); no seq is then taken from the topic. A
     * refusal known at once (all but -EIO) calls done from append itself. */
    void (*append)(struct store *s, struct store_topic *t, struct hint *h, store_done_fn *done,
                   void *arg);
    /* The topic's last completed seq (its floor when none was completed yet): appends still on
     * their way to disk are not counted. */
    uint64_t (*seq)(const struct store *s, const struct store_topic *t);
    /* The seq t's record started from (the floor when it was created): positions below it are
     * from before the topic was last forgotten. */
    uint64_t (*base)(const struct store *s, const struct store_topic *t);
    /* The global position of t's newest completed publish; 0 when none is remembered. */
    uint64_t (*last_gpos)(const struct store *s, const struct store_topic *t);
    /* Oldest retained seq of t, or 0 when none is retained. */
    uint64_t (*oldest)(const struct store *s, const struct store_topic *t);
    /* Call fn for every retained hint of t with after < seq <= upto, oldest first. The hint stays
     * owned by the store (take a reference to keep it). Hints are handed out sealed: one
     * recovered from disk is sealed here the first time (skipped if that fails for memory). */
    void (*since)(struct store *s, const struct store_topic *t, uint64_t after, uint64_t upto,
                  void (*fn)(void *arg, struct hint *h), void *arg);
    /* Drop history older than the age bound and positions past the horizon, at wall-clock
     * now_ms: at most STORE_EVICT_BUDGET of them per call (the rest at the next). A persisted
     * store also compacts its journal here, one bounded step per call (a few MiB read), and
     * calls wake when its journal failed with appends waiting (poll then fails them). */
    void (*evict)(struct store *s, uint64_t now_ms);
    /* Call fn for every topic whose newest completed publish has a global position > after, in
     * increasing order of it: O(topics changed since), whatever the number of topics. */
    void (*changed)(struct store *s, uint64_t after,
                    void (*fn)(void *arg, const struct store_change *c), void *arg);
    /* Run the completions (done callbacks) of appends whose commit finished, in append order;
     * with wait, first wait until every append made so far has finished (shutdown). Called by
     * the engine, under its lock, when the store's wake hook fired. Once the journal failed,
     * the appends still waiting complete with -EIO. Nothing to do in memory. */
    void (*poll)(struct store *s, int wait);
    /* Cluster store only (NULL otherwise): record arrival a, with h built for it by the engine
     * (h is stamped here: seq, gpos, time), as t's newest change, retaining h. Returns 0; 1
     * when t has already seen it (nothing changed, h is not to be released); -ENOMEM. */
    int (*adopt)(struct store *s, struct store_topic *t, struct hint *h,
                 const struct store_arrival *a);
    /* Close every record, drop everything and free the store (a persisted store writes what it
     * holds and closes its journal cleanly: every append must have completed, poll(s, 1)). */
    void (*free)(struct store *s);
};

struct store {
    const struct store_ops *ops;
    struct store_config cfg;
    struct store_stats st;
    char epoch[17]; /* 16 hex chars: the sequences' epoch (read it with store_epoch) */
    /* The epoch now: epoch above, or (a cluster store whose Redis lost its data) a newer one,
     * swapped while other threads may read it; a replaced string lives as long as the store. */
    _Atomic(const char *) epoch_now;
    /* Called when a topic's last retained hint is dropped (the engine may then forget it). */
    void (*emptied)(void *arg, void *owner);
    void *emptied_arg;
    uint64_t (*wall_ms)(
        void); /* the clock that stamps hints; store_wall_ms unless a test sets it */
    /* Called from the store's own thread (any thread) when poll has completions to run; set by
     * the owner before the first append. NULL for a store that completes at once. */
    void (*wake)(void *arg);
    void *wake_arg;
    /* The publish being appended (set by the engine around its append calls, for a store that
     * relays it to other nodes): the connection that caused it and skip_origin. */
    const char *pub_origin;
    uint32_t pub_origin_len;
    int pub_skip_origin;
    /* Cluster store: called from poll for each change learnt from elsewhere (set by the owner
     * before the first poll). */
    void (*arrived)(void *arg, const struct store_arrival *a);
    void *arrived_arg;
    /* Cluster store: called from poll when the epoch changed (every position and hint was
     * dropped; what subscribers were told is void). */
    void (*reset)(void *arg);
    void *reset_arg;
};

/* The epoch of every seq the store gives now (any thread). */
static inline const char *store_epoch(const struct store *s)
{
    return atomic_load_explicit(&s->epoch_now, memory_order_acquire);
}

void store_config_default(struct store_config *cfg);
/* The in-memory store: epoch from the 8 random bytes e, table key (k0, k1). Owned by the caller
 * (free with s->ops->free). NULL on OOM. */
struct store *store_mem_new(const struct store_config *cfg, uint64_t e, uint64_t k0, uint64_t k1);

/* The store persisted in d->dir (created if missing): positions, the epoch, the floor and the
 * history's hints are recovered from it (a torn or corrupt tail cut, with one line on stderr),
 * and every append is written to it before it completes. The epoch is the directory's own (its
 * EPOCH file); a new one is chosen from e only when the directory is new or continuity is lost
 * (st.new_epoch; one line on stderr): segments without a readable EPOCH file, or a previous run
 * with --fsync os that stopped uncleanly before the machine rebooted (boot id from
 * /proc/sys/kernel/random/boot_id; the environment variable NUDGE_BOOT_ID replaces it, for
 * tests). Recovered records are closed (nobody holds them), kept for the horizon from their
 * last publish, with their retained hints. Blocks for the recovery (a second or two per million
 * topics). On success *out is the caller's (free with ops->free). Returns 0 or a negative errno:
 * -EBUSY (another nudged holds the directory), -EACCES, -ENOSPC, -EIO, -ENOMEM, -EINVAL. */
int store_disk_open(const struct store_config *cfg, const struct store_disk *d, uint64_t e,
                    uint64_t k0, uint64_t k1, struct store **out);
void store_disk_default(struct store_disk *d);

/* Whether every hint of t after `after` is retained (nothing missed is lost): true when after
 * equals the current seq, or when the oldest retained seq is <= after + 1 (a cluster store:
 * <= max(after, base) + 1, seqs up to its base were never the topic's). */
int store_complete(const struct store *s, const struct store_topic *t, uint64_t after);
/* Wall-clock milliseconds (CLOCK_REALTIME). */
uint64_t store_wall_ms(void);

#endif
