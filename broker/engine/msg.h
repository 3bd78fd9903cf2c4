/* msg: an immutable, reference-counted byte buffer. A hint is encoded once per publish and per
 * wire format; every recipient's queue holds a reference, never a copy (docs/architecture.md). */
#ifndef NUDGE_MSG_H
#define NUDGE_MSG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct msg {
    _Atomic uint32_t refs;
    uint32_t len;
    uint8_t data[];
};

/* New message of len bytes (uninitialised) with one reference owned by the caller; NULL on OOM. */
struct msg *msg_new(size_t len);
/* New message holding a copy of p[0..len); one reference owned by the caller; NULL on OOM. */
struct msg *msg_copy(const void *p, size_t len);
/* Take one more reference; returns m. */
struct msg *msg_ref(struct msg *m);
/* Drop one reference; the last one frees. NULL is fine. */
void msg_unref(struct msg *m);

#endif
