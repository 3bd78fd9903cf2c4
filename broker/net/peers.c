/* peers: see peers.h. 1,024 buckets at first, doubled when entries outnumber them (all at once:
 * at most --max-conns entries, so a rehash is bounded and rare). */
#include "peers.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "table.h"

struct peer {
    struct peer *next;
    uint64_t hash;
    uint32_t count;
    uint8_t a[16];
};

enum { PEERS_BUCKETS_MIN = 1024 };

void peers_key(int fd, struct peer_key *k)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    memset(k, 0, sizeof(*k));
    if (getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) return;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
        k->a[10] = k->a[11] = 0xff;
        memcpy(k->a + 12, &s4->sin_addr, 4);
        k->valid = 1;
    } else if (ss.ss_family == AF_INET6) {
        memcpy(k->a, &((const struct sockaddr_in6 *)&ss)->sin6_addr, 16);
        k->valid = 1;
    }
}

static struct peer **slot(struct peers *p, const uint8_t *a, uint64_t h)
{
    struct peer **pp = &p->b[h & (p->nb - 1)];
    while (*pp && memcmp((*pp)->a, a, 16) != 0)
        pp = &(*pp)->next;
    return pp;
}

static int grow(struct peers *p)
{
    size_t nb = p->nb ? p->nb * 2 : PEERS_BUCKETS_MIN;
    struct peer **b = calloc(nb, sizeof(*b));
    if (!b) return -ENOMEM;
    if (!p->b) {
        uint64_t k[2] = {0, 0};
        if (getrandom(k, sizeof(k), 0) != (ssize_t)sizeof(k)) k[0] = (uint64_t)(uintptr_t)b;
        p->k0 = k[0];
        p->k1 = k[1];
    }
    for (size_t i = 0; i < p->nb; i++) {
        struct peer *e = p->b[i];
        while (e) {
            struct peer *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(p->b);
    p->b = b;
    p->nb = nb;
    return 0;
}

int peers_add(struct peers *p, const struct peer_key *k, uint32_t max)
{
    if (!k->valid) return 0;
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    if ((!p->b || p->n >= p->nb) && grow(p) < 0 && !p->b) {
        rc = -ENOMEM;
        goto out;
    }
    uint64_t h = siphash(p->k0, p->k1, k->a, 16);
    struct peer **pp = slot(p, k->a, h);
    if (*pp) {
        if (max && (*pp)->count >= max)
            rc = -EBUSY;
        else
            (*pp)->count++;
        goto out;
    }
    struct peer *e = calloc(1, sizeof(*e));
    if (!e) {
        rc = -ENOMEM;
        goto out;
    }
    e->hash = h;
    e->count = 1;
    memcpy(e->a, k->a, 16);
    *pp = e;
    p->n++;
out:
    pthread_mutex_unlock(&p->lock);
    return rc;
}

void peers_remove(struct peers *p, const struct peer_key *k)
{
    if (!k->valid) return;
    pthread_mutex_lock(&p->lock);
    if (p->b) {
        struct peer **pp = slot(p, k->a, siphash(p->k0, p->k1, k->a, 16));
        struct peer *e = *pp;
        if (e && --e->count == 0) {
            *pp = e->next;
            free(e);
            if (--p->n == 0) { /* empty: hold nothing (see peers.h) */
                free(p->b);
                p->b = NULL;
                p->nb = 0;
            }
        }
    }
    pthread_mutex_unlock(&p->lock);
}

uint32_t peers_count(struct peers *p, const struct peer_key *k)
{
    uint32_t n = 0;
    if (!k->valid) return 0;
    pthread_mutex_lock(&p->lock);
    if (p->b) {
        struct peer *e = *slot(p, k->a, siphash(p->k0, p->k1, k->a, 16));
        n = e ? e->count : 0;
    }
    pthread_mutex_unlock(&p->lock);
    return n;
}
