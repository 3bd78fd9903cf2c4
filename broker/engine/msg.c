/* msg: refcounted immutable bytes. The count is atomic: one encoded payload is shared by queues
 * on every worker thread. A reference is taken with a relaxed increment (the taker already holds
 * one); the last release is acquire-release so the freeing thread sees every write made before
 * other threads let go. */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

struct msg *msg_new(size_t len)
{
    if (len > UINT32_MAX) return NULL;
    struct msg *m = malloc(sizeof(*m) + len);
    if (!m) return NULL;
    atomic_init(&m->refs, 1);
    m->len = (uint32_t)len;
    return m;
}

struct msg *msg_copy(const void *p, size_t len)
{
    struct msg *m = msg_new(len);
    if (m && len) memcpy(m->data, p, len);
    return m;
}

struct msg *msg_ref(struct msg *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void msg_unref(struct msg *m)
{
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) free(m);
}
