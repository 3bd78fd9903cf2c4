/* peer: what every adapter and the generator share (peer.h): a growable buffer, the payload
 * stamp, and the table of adapters. Adapters are weak references, so a build without one of
 * them (bench/redis.c not written yet, say) links and peer_find() says it does not know it.
 *
 * The stamp is plain ASCII so that it survives every system's payload handling unchanged (in a
 * JSON string, an MQTT payload, a RESP bulk string): PEER_MARK, 16 hex digits of the send time
 * (ns, CLOCK_MONOTONIC), 16 hex digits of the publish's index, then '.' up to PEER_PAYLOAD. */
#include "peer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* (the attribute leads, so that it applies to every declarator, not only the last) */
extern __attribute__((weak)) const struct peer_ops peer_nudge, peer_redis, peer_nats, peer_mqtt,
    peer_socketio;

static int pbuf_grow(struct pbuf *b, size_t n)
{
    if (b->cap - b->len >= n) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int pbuf_put(struct pbuf *b, const void *p, size_t n)
{
    if (pbuf_grow(b, n) < 0) return -ENOMEM;
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

int pbuf_printf(struct pbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || pbuf_grow(b, (size_t)n + 1) < 0) return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void pbuf_free(struct pbuf *b)
{
    free(b->p);
    *b = (struct pbuf){0};
}

static const char hexd[] = "0123456789abcdef";

void peer_stamp(uint8_t *out, uint64_t ns, uint64_t index)
{
    out[0] = PEER_MARK;
    for (int i = 0; i < 16; i++) {
        out[1 + i] = (uint8_t)hexd[(ns >> (60 - 4 * i)) & 0xf];
        out[17 + i] = (uint8_t)hexd[(index >> (60 - 4 * i)) & 0xf];
    }
    memset(out + 33, '.', PEER_PAYLOAD - 33);
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

int peer_unstamp(const uint8_t *p, size_t n, uint64_t *ns, uint64_t *index)
{
    const uint8_t *m = memchr(p, PEER_MARK, n);
    if (!m || (size_t)(p + n - m) < 33) return -1;
    uint64_t a = 0, b = 0;
    for (int i = 0; i < 16; i++) {
        int x = hexval(m[1 + i]), y = hexval(m[17 + i]);
        if (x < 0 || y < 0) return -1;
        a = a << 4 | (uint64_t)x;
        b = b << 4 | (uint64_t)y;
    }
    *ns = a;
    *index = b;
    return 0;
}

const struct peer_ops *peer_find(const char *name)
{
    const struct peer_ops *all[] = {&peer_nudge, &peer_redis, &peer_nats, &peer_mqtt,
                                    &peer_socketio};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i] && !strcmp(all[i]->name, name)) return all[i];
    return NULL;
}
