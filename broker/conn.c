/* conn: the per-connection outbound queue. A ring of msg references: pushing a hint to a
 * subscriber costs one pointer store and one refcount increment, never a copy of the bytes. */
#include "conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int conn_push(struct conn *c, struct msg *m, uint32_t max)
{
    if (c->qlen >= max) {
        msg_unref(m);
        return -ENOBUFS;
    }
    if (c->qlen == c->qcap) {
        uint32_t ncap = c->qcap ? c->qcap * 2 : 8;
        if (ncap > max) ncap = max;
        struct msg **nq = malloc(sizeof(*nq) * ncap);
        if (!nq) {
            msg_unref(m);
            return -ENOMEM;
        }
        for (uint32_t i = 0; i < c->qlen; i++) nq[i] = c->q[(c->qhead + i) % c->qcap];
        free(c->q);
        c->q = nq;
        c->qcap = ncap;
        c->qhead = 0;
    }
    c->q[(c->qhead + c->qlen) % c->qcap] = m;
    c->qlen++;
    c->qbytes += m->len;
    return 0;
}

struct msg *conn_peek(const struct conn *c, uint32_t i)
{
    if (i >= c->qlen) return NULL;
    return c->q[(c->qhead + i) % c->qcap];
}

void conn_pop(struct conn *c, uint32_t n)
{
    while (n-- && c->qlen) {
        struct msg *m = c->q[c->qhead];
        c->qbytes -= m->len;
        msg_unref(m);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
    }
    if (c->qlen == 0) c->qhead = 0;
}

void conn_queue_free(struct conn *c)
{
    conn_pop(c, c->qlen);
    free(c->q);
    c->q = NULL;
    c->qcap = c->qhead = c->qlen = 0;
    c->qbytes = 0;
}
