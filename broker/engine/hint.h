/* hint: one change of one topic — name, seq, time, optional data — as an immutable,
 * reference-counted object shared by the store and by subscriber queues on every worker. It is
 * built by the engine, stamped by the store (seq, time), then sealed: its plain payload is
 * encoded once per wire format before anyone else sees it, so a hint fanned out to 10,000
 * subscribers on four threads is encoded exactly twice (JSON and msgpack), and no thread ever
 * writes to a shared hint. The count is atomic (see msg.c). */
#ifndef NUDGE_HINT_H
#define NUDGE_HINT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "sub.h"

struct hint {
    _Atomic uint32_t refs;
    uint32_t data_len;  /* 0 = no data */
    uint64_t seq;       /* the topic's sequence, set by the store's append */
    uint64_t time_ms;   /* wall-clock ms of the publish, set by the store's append */
    uint64_t gpos;      /* global position: the store's count of publishes in this epoch,
                           set by its append (wildcard resume) */
    uint64_t thash;     /* hash of the topic name under the process key (table_hash) */
    uint64_t ordinal;   /* the engine's order of all publishes (struct engine.ordinal), set before
                           sealing */
    struct msg *enc[2]; /* plain payload (count 1, not own) per enum sub_fmt, set by hint_seal */
    const char *topic;  /* NUL-terminated, topic_len bytes, inside this allocation */
    uint32_t topic_len;
    uint8_t data[]; /* raw msgpack value (data_len bytes), then the topic name */
};

/* New hint for topic[0..tlen) with a copy of data (may be NULL); one reference owned by the
 * caller. NULL on OOM. */
struct hint *hint_new(const char *topic, size_t tlen, uint64_t thash, const uint8_t *data,
                      size_t len);
/* Encode the plain payload in every format (tmp is scratch). Call once, after the store set
 * seq and time and before the hint is shared. Returns 0 or -ENOMEM. */
int hint_seal(struct hint *h, struct wire_buf *tmp);
struct hint *hint_ref(struct hint *h);
/* Drop one reference; the last one frees the hint and its payloads. NULL is fine. */
void hint_unref(struct hint *h);
/* Drop n references at once (one atomic operation). */
void hint_unref_n(struct hint *h, uint32_t n);

/* Releases of hint references gathered by one thread and applied per hint: a flush pass over
 * 10,000 queues drops one reference of the same hint 10,000 times, one atomic each otherwise.
 * Direct-mapped by pointer: a colliding hint applies the previous one's count. Owned by its
 * thread; hintbag_apply before the bag is dropped. */
#define HINTBAG_SLOTS 64
struct hintbag {
    struct hint *h[HINTBAG_SLOTS];
    uint32_t n[HINTBAG_SLOTS];
    int active; /* 0: releases go straight to hint_unref */
};
static inline void hintbag_put(struct hintbag *b, struct hint *h)
{
    size_t i = ((uintptr_t)h >> 6) & (HINTBAG_SLOTS - 1);
    if (b->h[i] == h) {
        b->n[i]++;
        return;
    }
    if (b->h[i]) hint_unref_n(b->h[i], b->n[i]);
    b->h[i] = h;
    b->n[i] = 1;
}
/* Apply every gathered release and empty the bag. */
void hintbag_apply(struct hintbag *b);
/* The sealed plain payload for format f; owned by the hint (valid while the caller holds a
 * reference to h). NULL when the hint was not sealed. */
static inline const struct msg *hint_payload(const struct hint *h, enum sub_fmt f)
{
    return h->enc[f];
}
/* Encode a variant (coalesced count > 1 and/or own) into out (appended). Returns 0 or < 0. */
int hint_encode(const struct hint *h, enum sub_fmt f, uint32_t count, int own,
                struct wire_buf *out);
/* Whether a and b are hints of the same topic. */
static inline int hint_same_topic(const struct hint *a, const struct hint *b)
{
    return a->thash == b->thash && a->topic_len == b->topic_len &&
           __builtin_memcmp(a->topic, b->topic, a->topic_len) == 0;
}
/* Bytes this hint accounts for in history memory. */
size_t hint_size(const struct hint *h);

#endif
