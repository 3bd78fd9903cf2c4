/* msg: refcounted immutable bytes. Single-threaded per worker today; when several workers share
 * one encoded hint the count becomes atomic here and nowhere else. */
#include "msg.h"

#include <stdlib.h>
#include <string.h>

struct msg *msg_new(size_t len)
{
    if (len > UINT32_MAX) return NULL;
    struct msg *m = malloc(sizeof(*m) + len);
    if (!m) return NULL;
    m->refs = 1;
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
    m->refs++;
    return m;
}

void msg_unref(struct msg *m)
{
    if (m && --m->refs == 0) free(m);
}
