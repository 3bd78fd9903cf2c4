/* record: the disk store's records, as payloads of journal records (journal.h: the journal frames
 * and checksums them; this is what is inside). Little-endian, each payload starting with its
 * format version. Pure functions over buffers: no I/O, no allocation (the libFuzzer target
 * tests/fuzz/fuzz_record.c feeds arbitrary payloads to the decoders).
 *
 * RECORD_TOPIC (journal type 1), 36 bytes then the name then the data:
 *   [u8 version = 1][u8 flags][u16 name_len][u64 seq][u64 base][u64 gpos][u64 time_ms]
 *   [name: name_len bytes][data: the rest]
 *   flags bit 0 (RECORD_HINT): a publish, retained in history as a hint carrying data (which
 *   may be empty); clear: a position only (compaction carried it after history let the hint go),
 *   with no data. Every other flag bit is reserved (0).
 * RECORD_FLOOR (journal type 2), 32 bytes:
 *   [u8 version = 1][7 zero bytes][u64 floor][u64 gpos][u64 forgot]
 *   the store's floor, global position counter and forgot_gpos (the newest change of a
 *   forgotten topic) when written: none goes lower at recovery once the records that raised
 *   them are compacted away. */
#ifndef NUDGE_RECORD_H
#define NUDGE_RECORD_H

#include <stddef.h>
#include <stdint.h>

enum record_type {
    RECORD_TOPIC = 1,
    RECORD_FLOOR = 2,
};

#define RECORD_VERSION 1
#define RECORD_HINT 1u      /* struct record_topic.flags */
#define RECORD_TOPIC_HDR 36 /* bytes before the name */
#define RECORD_FLOOR_SIZE 32

/* One topic's state after a publish (or a position carried by compaction). */
struct record_topic {
    uint8_t flags;       /* RECORD_HINT or 0 */
    const char *name;    /* name_len bytes, not NUL-terminated */
    uint32_t name_len;   /* 1..WIRE_TOPIC_LEN_MAX */
    uint64_t seq;        /* the topic's seq after this publish; base <= seq */
    uint64_t base;       /* the seq its record started from (store.h base) */
    uint64_t gpos;       /* the global position of the publish */
    uint64_t time_ms;    /* wall clock of the publish */
    const uint8_t *data; /* data_len bytes (RECORD_HINT only) */
    uint32_t data_len;   /* <= WIRE_DATA_MAX */
};

struct record_floor {
    uint64_t floor;
    uint64_t gpos;
    uint64_t forgot; /* store_stats.forgot_gpos */
};

/* Bytes record_topic_encode writes for r. */
size_t record_topic_size(const struct record_topic *r);
/* Write r into out (record_topic_size(r) bytes, the caller's). */
void record_topic_encode(const struct record_topic *r, uint8_t *out);
/* Decode p[0..len) into *r, whose name and data then point into p. Returns 0, or -EINVAL for a
 * payload that is not a valid version-1 topic record (short, a reserved flag, name empty or too
 * long, data on a position, base > seq, data too large). */
int record_topic_decode(const uint8_t *p, size_t len, struct record_topic *r);

void record_floor_encode(const struct record_floor *f, uint8_t out[RECORD_FLOOR_SIZE]);
/* Returns 0 or -EINVAL (wrong size or version, non-zero padding). */
int record_floor_decode(const uint8_t *p, size_t len, struct record_floor *f);

#endif
