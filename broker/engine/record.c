/* record: see record.h. Decoders check everything a corrupt-but-checksummed payload could get
 * wrong (the journal's CRC catches torn writes, not a payload written by a buggy or future
 * version), so that recovery builds only states the store could have reached. */
#include "record.h"

#include <errno.h>
#include <string.h>

#include "wire.h"

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

size_t record_topic_size(const struct record_topic *r)
{
    return RECORD_TOPIC_HDR + (size_t)r->name_len + (r->flags & RECORD_HINT ? r->data_len : 0);
}

void record_topic_encode(const struct record_topic *r, uint8_t *out)
{
    out[0] = RECORD_VERSION;
    out[1] = r->flags;
    put16(out + 2, (uint16_t)r->name_len);
    put64(out + 4, r->seq);
    put64(out + 12, r->base);
    put64(out + 20, r->gpos);
    put64(out + 28, r->time_ms);
    memcpy(out + RECORD_TOPIC_HDR, r->name, r->name_len);
    if ((r->flags & RECORD_HINT) && r->data_len)
        memcpy(out + RECORD_TOPIC_HDR + r->name_len, r->data, r->data_len);
}

int record_topic_decode(const uint8_t *p, size_t len, struct record_topic *r)
{
    if (len < RECORD_TOPIC_HDR || p[0] != RECORD_VERSION || (p[1] & ~RECORD_HINT)) return -EINVAL;
    r->flags = p[1];
    r->name_len = get16(p + 2);
    r->seq = get64(p + 4);
    r->base = get64(p + 12);
    r->gpos = get64(p + 20);
    r->time_ms = get64(p + 28);
    if (r->name_len == 0 || r->name_len > WIRE_TOPIC_LEN_MAX ||
        r->name_len > len - RECORD_TOPIC_HDR || r->base > r->seq)
        return -EINVAL;
    r->name = (const char *)p + RECORD_TOPIC_HDR;
    size_t rest = len - RECORD_TOPIC_HDR - r->name_len;
    if (rest > WIRE_DATA_MAX || (rest && !(r->flags & RECORD_HINT))) return -EINVAL;
    r->data = rest ? p + RECORD_TOPIC_HDR + r->name_len : NULL;
    r->data_len = (uint32_t)rest;
    return 0;
}

void record_floor_encode(const struct record_floor *f, uint8_t out[RECORD_FLOOR_SIZE])
{
    memset(out, 0, 8);
    out[0] = RECORD_VERSION;
    put64(out + 8, f->floor);
    put64(out + 16, f->gpos);
    put64(out + 24, f->forgot);
}

int record_floor_decode(const uint8_t *p, size_t len, struct record_floor *f)
{
    static const uint8_t zero[7];
    if (len != RECORD_FLOOR_SIZE || p[0] != RECORD_VERSION || memcmp(p + 1, zero, 7))
        return -EINVAL;
    f->floor = get64(p + 8);
    f->gpos = get64(p + 16);
    f->forgot = get64(p + 24);
    return 0;
}
