/* hint: one change of one topic — topic, seq, optional data — as a reference-counted object
 * shared by the history store and every subscriber queue it is delivered to. Its wire payload is
 * encoded lazily, once per format, and cached: a hint fanned out to 10,000 JSON subscribers and
 * replayed later from history is encoded exactly once. */
#ifndef NUDGE_HINT_H
#define NUDGE_HINT_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "sub.h"

struct topic;

struct hint {
    uint32_t refs;
    uint32_t data_len;  /* 0 = no data */
    struct topic *tp;   /* topics that ever had a hint are never freed before the core */
    uint64_t seq;       /* set by the history store when appended */
    uint64_t ord;       /* publish ordinal (core.c): one per topic-publish, in publish order */
    uint64_t time_ms;   /* when it was published (loop time) */
    struct msg *enc[2]; /* cached payload per enum sub_fmt, count 1, not own */
    struct hint *hnext; /* history store's links (hist.c) */
    struct hint *gprev, *gnext;
    uint8_t data[]; /* raw msgpack value, data_len bytes */
};

/* New hint for tp with a copy of data (may be NULL); one reference owned by the caller. */
struct hint *hint_new(struct topic *tp, const uint8_t *data, size_t len, uint64_t now_ms);
struct hint *hint_ref(struct hint *h);
/* Drop one reference; the last one frees the hint and its cached payloads. NULL is fine. */
void hint_unref(struct hint *h);
/* The payload for format f with count 1 and not own, encoded on first use; owned by the hint
 * (valid while the caller holds a reference to h). NULL on OOM. */
struct msg *hint_payload(struct hint *h, enum sub_fmt f, struct wire_buf *tmp);
/* Encode a variant (coalesced count > 1 and/or own) into out (appended). Returns 0 or < 0. */
int hint_encode(const struct hint *h, enum sub_fmt f, uint32_t count, int own,
                struct wire_buf *out);
/* Bytes this hint accounts for in history memory. */
size_t hint_size(const struct hint *h);

#endif
