/* hint: see hint.h. The cached payloads are the common case (count 1, not own); a coalesced or
 * own variant is rare (a slow or originating connection) and encoded per connection on demand. */
#include "hint.h"

#include <stdlib.h>
#include <string.h>

#include "topic.h"

struct hint *hint_new(struct topic *tp, const uint8_t *data, size_t len, uint64_t now_ms)
{
    if (len > UINT32_MAX) return NULL;
    struct hint *h = calloc(1, sizeof(*h) + len);
    if (!h) return NULL;
    h->refs = 1;
    h->tp = tp;
    h->time_ms = now_ms;
    h->data_len = (uint32_t)len;
    if (data && len) memcpy(h->data, data, len);
    return h;
}

struct hint *hint_ref(struct hint *h)
{
    h->refs++;
    return h;
}

void hint_unref(struct hint *h)
{
    if (!h || --h->refs) return;
    msg_unref(h->enc[0]);
    msg_unref(h->enc[1]);
    free(h);
}

int hint_encode(const struct hint *h, enum sub_fmt f, uint32_t count, int own, struct wire_buf *out)
{
    struct sub_hint sh = {
        .topic = {h->tp->name, h->tp->len},
        .seq = h->seq,
        .data = h->data_len ? h->data : NULL,
        .data_len = h->data_len,
        .count = count,
        .own = own,
    };
    return sub_encode_hint(f, out, &sh);
}

struct msg *hint_payload(struct hint *h, enum sub_fmt f, struct wire_buf *tmp)
{
    if (h->enc[f]) return h->enc[f];
    wire_buf_reset(tmp);
    if (hint_encode(h, f, 1, 0, tmp) < 0) return NULL;
    h->enc[f] = msg_copy(tmp->data, tmp->len);
    return h->enc[f];
}

size_t hint_size(const struct hint *h)
{
    return sizeof(*h) + h->data_len;
}
