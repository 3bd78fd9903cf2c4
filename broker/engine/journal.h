/* journal: an append-only log of opaque typed records in pre-zeroed segment files, committed in
 * groups by its own thread and replayed at open. It knows nothing of topics or hints: the owner
 * (the disk store) gives it records and learns, through journal_done(), which of them are on
 * disk. The owner compacts by scanning closed segments (journal_scan), re-appending what is still
 * live, and dropping the old segments (journal_drop_before).
 *
 * Files in the directory: NNNNNNNNNNNNNNNN.seg (16 hex digits, the segment number, from 1), each
 * a 32-byte header and records, pre-zeroed to its full size; LOCK (flock'ed while open); CLEAN
 * (present only between a clean close and the next open). Record frame, little-endian, padded
 * with zeros to a multiple of 8 bytes:
 *   [u32 len = 1 + payload length][u32 crc32c over (len, type, payload)][u8 type][payload]
 * A zero len word ends the data of a segment. What each sync mode promises: enum journal_sync. */
#ifndef NUDGE_JOURNAL_H
#define NUDGE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

/* payload bytes (a store record: its header, a topic name and WIRE_DATA_MAX of data fit); also:
 * len <= segment_bytes - 41 */
#define JOURNAL_RECORD_MAX ((1u << 20) + 4096)
#define JOURNAL_SEGMENT_MIN (64ull << 10) /* segment_bytes bounds; a multiple of 4 KiB */
#define JOURNAL_SEGMENT_MAX (1ull << 30)

enum journal_sync {
    JOURNAL_SYNC_BATCH = 0, /* pwrite + fdatasync; a commit waits up to batch_ms for more
                               records, in proportion to the size of the last one (group
                               commit that adapts to the load) */
    JOURNAL_SYNC_ALWAYS,    /* pwrite + fdatasync as soon as data waits (what arrives during a
                               sync goes in the next one) */
    JOURNAL_SYNC_OS,        /* pwrite as soon as data waits; fdatasync only when a segment is
                               full and at close: survives the process, not the machine */
};

struct journal_config {
    const char *dir;        /* data directory; created (one level, mode 0700) if missing; the
                               journal keeps its own copy of the path */
    uint64_t segment_bytes; /* default 64 MiB; JOURNAL_SEGMENT_MIN..MAX, a multiple of 4 KiB;
                               only new segments take a changed value */
    uint64_t max_bytes;     /* bound on all segment files together; 0 = none, else at least two
                               segments */
    enum journal_sync sync; /* default BATCH */
    uint32_t batch_ms;      /* BATCH: the longest wait between commits (default 2) */
    uint32_t group_full;    /* BATCH: a commit after one of n records waits
                               batch_ms * min(n, group_full) / group_full after it; default
                               JOURNAL_GROUP_FULL; 1: always the whole batch_ms; 0: default */
};
#define JOURNAL_GROUP_FULL 128

struct journal;

/* (segment number << 32) | byte offset of the record in its segment: increases with every
 * append, also across segments and restarts. 0 is never a record's position. */
typedef uint64_t journal_pos;

/* A record handed back (recovery, scan). p is valid only during the call. */
typedef void journal_record_fn(void *arg, journal_pos pos, uint8_t type, const uint8_t *p,
                               uint32_t len);

void journal_config_default(struct journal_config *c);

/* Lock the directory (a second open of it, from this process or another, gets -EBUSY), recover
 * (call fn, if not NULL, for every valid record in append order; cut a torn or corrupt tail:
 * one line on stderr, see journal_stats' cut_bytes), then start the commit thread. notify(arg),
 * if not NULL, is called FROM THE COMMIT THREAD each time journal_done() advanced, without any
 * journal lock held (the owner wakes its loop). On success *out is the caller's until
 * journal_close. Returns 0 or -EINVAL (config), -EBUSY, -EACCES, -ENOSPC (no room for the
 * first segment), -EIO, -ENOMEM, or another negative errno of the directory. */
int journal_open(const struct journal_config *c, journal_record_fn *fn, void *fn_arg,
                 void (*notify)(void *arg), void *notify_arg, struct journal **out);

/* Copy one record (type 1..255, len <= JOURNAL_RECORD_MAX and <= segment_bytes - 41) into the
 * journal's buffer and set *pos. Thread-safe (an internal mutex). Does not touch the disk: the
 * commit thread writes the buffer. It waits only when the appenders outrun the disk: while
 * 16 MiB are already waiting to be written, or when a segment is full and the thread has not
 * finished pre-creating the next one (it starts when the current one is half full).
 * Returns 0, or:
 *   -EINVAL  bad type or len;
 *   -ENOSPC  the record needs a new segment and there is no room for one: max_bytes would be
 *            passed, or the file system is full. Nothing was written; the journal stays usable
 *            and a later append may succeed once space is reclaimed (journal_drop_before, or
 *            space freed outside: creation is retried at most every 100 ms while asked for);
 *   -ENOMEM  the buffer could not grow;
 *   -EIO     the journal failed (a write or sync error; logged once): fail-stop, every later
 *            append gets -EIO and journal_done() no longer advances. */
int journal_append(struct journal *j, uint8_t type, const void *p, uint32_t len, journal_pos *pos);

/* Every record with pos < journal_done(j) is done: written with pwrite (OS mode), or written
 * and fdatasync'ed (BATCH, ALWAYS). Monotonic; any thread. Right after open it is the position
 * the next append would get at the earliest (everything recovered is done). */
journal_pos journal_done(const struct journal *j);

/* 1 when the previous close of this directory was clean (journal_close ran to its end) or the
 * directory held no segment; 0 after a crash, a kill or a failed journal. */
int journal_was_clean(const struct journal *j);

/* Read records of closed segments, oldest first, from `from` (0, or a position before the
 * oldest segment: from the oldest record; else a position returned by append, recovery or a
 * previous scan). A segment is closed once every record of it is written (done) and appends
 * have moved past it; it never changes again. fn may call journal_append (compaction
 * re-appends what is still live). Calls fn for records totalling at most `budget` framed bytes
 * (always at least one record when one is left), on the caller's thread with pread: appends and
 * commits go on meanwhile. Returns:
 *   0  stopped on the budget: *next is the position of the next record to read;
 *   1  caught up: every closed segment was read; *next = (first segment not closed << 32) | 32,
 *      the position of the first record of the oldest segment still open. Passing *next to
 *      journal_drop_before drops exactly the segments read. Call again later to continue;
 *   <0 an error reading a file (-EIO, -ENOMEM ...); *next is where to retry.
 * A record that fails its CRC here (the disk changed after open) ends its segment for the scan:
 * logged once, counted in cut_bytes. Call journal_scan and journal_drop_before from one thread
 * (the owner's), not concurrently with each other or with journal_close. */
int journal_scan(struct journal *j, journal_pos from, size_t budget, journal_record_fn *fn,
                 void *arg, journal_pos *next);

/* Delete every closed segment numbered below pos >> 32 (all of its records are before pos),
 * oldest first; never the segment appends go to, nor one with records not yet written. Frees
 * room for new segments (an -ENOSPC journal may take appends again). Returns the number of
 * segments deleted, or a negative errno when the first deletion failed. */
int journal_drop_before(struct journal *j, journal_pos pos);

struct journal_stats {
    uint64_t segments;       /* files, including a pre-created one */
    uint64_t bytes_on_disk;  /* their sizes, summed */
    uint64_t appends;        /* records appended since open */
    uint64_t bytes_appended; /* framed bytes (header, payload, padding) since open */
    uint64_t syncs;          /* fdatasync calls on segments for commits and segment switches */
    uint64_t sync_ns_max;    /* the slowest of them */
    uint64_t cut_bytes;      /* discarded at open (torn or corrupt tail) or skipped by a scan */
    uint64_t failed;         /* 1 once the journal failed (every append -EIO) */
};
/* Any thread; each value whole, possibly a moment old. */
void journal_stats(const struct journal *j, struct journal_stats *out);

/* Write and fdatasync everything appended, stop the thread, mark the directory clean (not if the
 * journal failed), unlock it and free j. No append may run concurrently with or after it. */
void journal_close(struct journal *j);

/* CRC-32C (Castagnoli) of p[0..n), continuing from crc (0 to start). */
uint32_t journal_crc32c(uint32_t crc, const void *p, size_t n);

#endif
