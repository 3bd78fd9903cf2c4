/* disk: what the two halves of the store share — store.c (records, history, bounds, in memory)
 * and disk.c (the same records persisted to a journal: store_disk_open). Private to them: the
 * store's public contract is store.h. store__ functions are store.c's, disk_ functions disk.c's;
 * all run on the thread that owns the store (the engine's lock held), like store_ops. */
#ifndef NUDGE_DISK_H
#define NUDGE_DISK_H

#include <stddef.h>
#include <stdint.h>

#include "journal.h"
#include "store.h"
#include "table.h"

struct hent {
    struct hint *h;
    struct store_topic *t;
    struct hent *tnext;         /* topic's FIFO */
    struct hent *gprev, *gnext; /* global FIFO */
    int recovered;              /* h was built at recovery: sealed at its first since */
};

struct store_topic {
    struct tnode node;
    void *owner;
    int closed;         /* on the closed FIFO: nobody holds it */
    uint64_t seq;       /* the last completed seq */
    uint64_t aseq;      /* the last assigned seq: > seq while appends are on their way to disk */
    uint64_t base;      /* the floor when the record was created */
    uint64_t closed_ms; /* wall clock of the close, while closed (recovered: last publish) */
    journal_pos jpos;   /* its newest record in the journal; 0: none */
    struct store_topic *cprev, *cnext; /* closed FIFO */
    uint64_t last_gpos;                /* global position of its newest publish; 0 = none */
    struct store_topic *lprev, *lnext; /* changed list, by last_gpos */
    struct hent *head, *tail;
    uint32_t count;
    char name[];
};

/* An append taken by the journal, waiting for journal_done() to pass pos. */
struct pend {
    journal_pos pos;
    struct hint *h; /* a reference of ours */
    struct store_topic *t;
    struct hent *e; /* its history entry, allocated up front (NULL: per_topic 0) */
    store_done_fn *done;
    void *arg;
};

struct smem {
    struct store base;
    struct table topics;
    struct hent *ghead, *gtail;
    struct store_topic *chead, *ctail; /* closed records, oldest close first */
    struct store_topic *lhead, *ltail; /* published records, by last_gpos (oldest first) */
    uint64_t floor;      /* every seq given out so far to a topic since forgotten is <= floor */
    uint64_t agpos;      /* the last assigned global position (st.gpos: the last completed) */
    struct wire_buf tmp; /* sealing recovered hints */

    /* cluster only (cluster.c): NULL otherwise */
    struct cluster *c;

    /* disk only */
    struct journal *j;
    struct store_disk d;
    char *dir;
    struct pend *pq; /* ring of pending appends */
    size_t pq_cap, pq_head, pq_len;
    uint8_t *rbuf; /* encoding scratch */
    size_t rbuf_cap;
    int failed_logged;
    /* recovery */
    struct store_topic **rec;
    size_t nrec, rec_cap, records, bad_records;
    int rec_err;
    /* compaction */
    int cactive;       /* a pass is under way */
    uint64_t cend;     /* it covers segments below this one (closed when it started) */
    uint64_t cseg;     /* the oldest segment not dropped yet, as the pass saw it (0: unknown) */
    journal_pos cnext; /* where the scan goes on */
    journal_pos clast; /* the last record written for the pass (copies, floor): a drop waits
                          for it to be done */
    journal_pos cdrop; /* drop the segments before this once clast is done; 0: none */
    journal_pos cfail; /* the first record a copy of which failed in this scan call; 0: none */
    int cneed;         /* the pass met records of forgotten topics: a floor record must
                          outlive the drop */
    journal_pos fpos;  /* the newest floor record; 0: none */
    uint64_t cnow;
};

/* ---- store.c ---- */
uint64_t store__mono_ms(void);
/* Drop the oldest retained hint of t; with notify, tell the owner when t has none left. */
void store__drop_head(struct smem *m, struct store_topic *t, int notify);
/* Retain h (a reference of its own) in t's history through entry e (taken over), within the
 * bounds. */
void store__retain(struct smem *m, struct store_topic *t, struct hent *e, struct hint *h);
/* Retain h in t's history through entry e just before entry `before` of t, older than it (a
 * cluster node reading a topic's stream after some of its hints came live); NULL: at the end,
 * as store__retain. The global list keeps its head the head of its own topic. */
void store__retain_before(struct smem *m, struct store_topic *t, struct hent *before,
                          struct hent *e, struct hint *h);
/* t's newest publish has global position gpos: t moves to the end of the changed list. */
void store__changed_at(struct smem *m, struct store_topic *t, uint64_t gpos);
/* Put t (nobody holds it) at the tail of the closed FIFO. */
void store__clink(struct smem *m, struct store_topic *t);
/* Forget closed record t (freed): the floor rises above its seq. */
void store__forget(struct smem *m, struct store_topic *t);
/* Keep at most max_positions - room records, forgetting the oldest closed ones first. */
void store__trim(struct smem *m, uint64_t room);
/* A new record for name (hash under the store's key) at the floor, in the table. NULL on OOM. */
struct store_topic *store__topic_new(struct smem *m, const char *name, size_t len, uint64_t hash);
/* Seal h (a recovered hint) if it is not yet. 0 or -ENOMEM. */
int store__seal(struct smem *m, struct hint *h);
/* A new epoch for records the engine may hold: every closed record is forgotten, every open one
 * is back at 0 without history, the lists, floor and global position are empty. */
void store__reset(struct smem *m);
/* Drop every record and hint; positions, floor and global position back to 0. */
void store__drop_all(struct smem *m);
/* ops->free. */
void store__free(struct store *s);
/* A memory store (disk fields zero). NULL on OOM. */
struct smem *store__smem_new(const struct store_config *cfg, uint64_t e, uint64_t k0, uint64_t k1);

/* ---- cluster.c (m->c set) ---- */
/* Send h's publish to Redis, to complete when its message comes back (or call done with the
 * error). */
void cluster__append(struct smem *m, struct store_topic *t, struct hint *h, struct hent *e,
                     store_done_fn *done, void *arg);
/* Apply what the link queued; with wait, first wait (bounded) for every publish on its way. */
void cluster__poll(struct smem *m, int wait);
/* Free the cluster half (queues, pending publishes failed). */
void cluster__free(struct smem *m);
/* store_ops.adopt. */
int cluster__adopt(struct store *s, struct store_topic *t, struct hint *h,
                   const struct store_arrival *a);
/* store.c: give m the cluster store's ops (the memory store's, with adopt). */
void store__cluster_ops(struct smem *m);
/* ---- disk.c (m->j set) ---- */
/* Write h's publish record and queue it to complete in poll (or call done with the error). */
void disk_append(struct smem *m, struct store_topic *t, struct hint *h, struct hent *e,
                 store_done_fn *done, void *arg);
/* Complete what the journal has done, in order; with wait, everything appended first. */
void disk_poll(struct smem *m, int wait);
/* A failed journal with appends waiting: wake the owner so that poll fails them. */
void disk_check_failed(struct smem *m);
/* One bounded compaction step (evict, every second). */
void disk_compact(struct smem *m, uint64_t now_ms);
/* Close the journal (cleanly) and free the disk half. NULL journal: nothing. */
void disk_free(struct smem *m);

#endif
