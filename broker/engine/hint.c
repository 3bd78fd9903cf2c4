/* hint: see hint.h. The sealed payloads are the common case (count 1, not own); a coalesced or
 * own variant is rare (a slow or originating connection) and encoded per connection on demand
 * from the immutable fields. */
#include "hint.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct hint *hint_new(const char *topic, size_t tlen, uint64_t thash, const uint8_t *data,
                      size_t len)
{
    if (len > UINT32_MAX || tlen > UINT32_MAX) return NULL;
    struct hint *h = calloc(1, sizeof(*h) + len + tlen + 1);
    if (!h) return NULL;
    atomic_init(&h->refs, 1);
    h->data_len = (uint32_t)len;
    if (data && len) memcpy(h->data, data, len);
    char *name = (char *)h->data + len;
    memcpy(name, topic, tlen);
    name[tlen] = '\0';
    h->topic = name;
    h->topic_len = (uint32_t)tlen;
    h->thash = thash;
    return h;
}

int hint_seal(struct hint *h, struct wire_buf *tmp)
{
    for (int f = 0; f < 2; f++) {
        wire_buf_reset(tmp);
        if (hint_encode(h, (enum sub_fmt)f, 1, 0, tmp) < 0) return -ENOMEM;
        if (!(h->enc[f] = msg_copy(tmp->data, tmp->len))) return -ENOMEM;
    }
    return 0;
}

struct hint *hint_ref(struct hint *h)
{
    atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
    return h;
}

void hint_unref_n(struct hint *h, uint32_t n)
{
    if (!h || !n || atomic_fetch_sub_explicit(&h->refs, n, memory_order_acq_rel) != n) return;
    msg_unref(h->enc[0]);
    msg_unref(h->enc[1]);
    free(h);
}

void hint_unref(struct hint *h)
{
    hint_unref_n(h, 1);
}

void hintbag_apply(struct hintbag *b)
{
    for (size_t i = 0; i < HINTBAG_SLOTS; i++) {
        if (!b->h[i]) continue;
        hint_unref_n(b->h[i], b->n[i]);
        b->h[i] = NULL;
        b->n[i] = 0;
    }
}

int hint_encode(const struct hint *h, enum sub_fmt f, uint32_t count, int own, struct wire_buf *out)
{
    struct sub_hint sh = {
        .topic = {h->topic, h->topic_len},
        .seq = h->seq,
        .data = h->data_len ? h->data : NULL,
        .data_len = h->data_len,
        .count = count,
        .own = own,
    };
    return sub_encode_hint(f, out, &sh);
}

size_t hint_size(const struct hint *h)
{
    return sizeof(*h) + h->data_len + h->topic_len + 1;
}
