/* libFuzzer target for the subscriber codec. The first input byte picks the format (even: JSON
 * text, odd: msgpack), the rest is one WebSocket message payload.
 *
 * What decodes is re-encoded in its own format and decoded again; the second encoding must equal
 * the first byte for byte. A message decoded from JSON must also survive a trip through msgpack
 * and come back as the same JSON text. A message decoded from msgpack is sent through JSON too;
 * that may legitimately fail only where JSON is narrower (integers past int64 -> bad_field,
 * float32 data growing past max_data as float64 -> bad_data). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char *cstr(struct wire_str s)
{
    return s.p ? strndup(s.p, s.len) : NULL;
}

static int encode(enum sub_fmt f, const struct sub_msg *m, struct wire_buf *out)
{
    char *a = NULL, *b = NULL, *c = NULL;
    int rc = -1;
    switch (m->type) {
    case SUB_HELLO:
        a = cstr(m->client);
        rc = sub_encode_hello(f, out, m->version, a);
        break;
    case SUB_WELCOME:
        a = cstr(m->conn);
        b = cstr(m->epoch);
        c = cstr(m->server);
        rc = sub_encode_welcome(f, out, m->version, a, b, c);
        break;
    case SUB_SUBSCRIBE:
        a = cstr(m->epoch);
        rc = sub_encode_subscribe(f, out, m->id, m->topics, m->ntopics, a, m->has_seq, m->seqs);
        break;
    case SUB_SUBSCRIBED:
        rc = sub_encode_subscribed(f, out, m->id, m->topic, m->seq);
        break;
    case SUB_UNSUBSCRIBE:
        rc = sub_encode_unsubscribe(f, out, m->id, m->topics, m->ntopics);
        break;
    case SUB_UNSUBSCRIBED:
        rc = sub_encode_unsubscribed(f, out, m->id, m->topic);
        break;
    case SUB_HINT: {
        struct sub_hint h = {m->topic, m->seq, m->data, m->data_len, m->count, m->own};
        rc = sub_encode_hint(f, out, &h);
        break;
    }
    case SUB_RESET:
        a = cstr(m->reason);
        rc = sub_encode_reset(f, out, m->topic, m->seq, a);
        break;
    case SUB_ERROR:
        a = cstr(m->msg);
        rc = sub_encode_error(f, out, m->has_id, m->id, m->topic, m->code, a);
        break;
    case SUB_PING:
        rc = sub_encode_ping(f, out, m->has_id, m->id);
        break;
    case SUB_PONG:
        rc = sub_encode_pong(f, out, m->has_id, m->id);
        break;
    }
    free(a);
    free(b);
    free(c);
    return rc;
}

static struct sub_msg m1, m2;

static void same(const struct wire_buf *a, const struct wire_buf *b)
{
    CHECK(a->len == b->len && memcmp(a->data, b->data, a->len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    enum sub_fmt f = (data[0] & 1) ? SUB_MSGPACK : SUB_JSON;
    enum sub_fmt other = f == SUB_JSON ? SUB_MSGPACK : SUB_JSON;
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    struct wire_limits lim, big;
    wire_limits_default(&lim);
    big = lim;
    big.max_frame = WIRE_FRAME_MAX; /* re-encodings may be a little longer than the input */

    int rc = sub_decode(f, p, len, &lim, &m1);
    CHECK(rc <= 0 && rc >= WIRE_ENOMEM && rc != WIRE_EAGAIN);
    if (rc) {
        CHECK(m1.priv == NULL && m1.ntopics == 0 && m1.data == NULL);
        return 0;
    }
    CHECK(m1.ntopics <= lim.max_topics && m1.id <= WIRE_SEQ_MAX && m1.seq <= WIRE_SEQ_MAX);
    for (uint32_t i = 0; i < m1.ntopics; i++)
        (void)wire_topic_check(m1.topics[i].p, m1.topics[i].len, &lim);
    if (m1.topic.len) (void)wire_topic_check(m1.topic.p, m1.topic.len, &lim);
    if (m1.data) {
        struct wire_buf j = {0};
        CHECK(wire_data_check(m1.data, m1.data_len, &lim) == 0);
        CHECK(wire_data_to_json(m1.data, m1.data_len, &j) == 0);
        wire_buf_free(&j);
    }

    /* Same format: encode . decode is a fixpoint after one round. */
    struct wire_buf e1 = {0}, e2 = {0}, x = {0}, back = {0};
    CHECK(encode(f, &m1, &e1) == 0);
    if (f == SUB_JSON) CHECK(wire_utf8_valid((const char *)e1.data, e1.len));
    CHECK(sub_decode(f, e1.data, e1.len, &big, &m2) == 0);
    CHECK(m2.type == m1.type && m2.id == m1.id && m2.has_id == m1.has_id &&
          m2.ntopics == m1.ntopics && m2.seq == m1.seq && m2.count == m1.count &&
          m2.own == m1.own && m2.data_len == m1.data_len && m2.code == m1.code);
    if (m1.data) CHECK(memcmp(m2.data, m1.data, m1.data_len) == 0);
    CHECK(encode(f, &m2, &e2) == 0);
    same(&e1, &e2);
    sub_msg_clear(&m2);

    /* Through the other format and back. */
    rc = encode(other, &m1, &x);
    if (rc == 0) {
        if (other == SUB_JSON) CHECK(wire_utf8_valid((const char *)x.data, x.len));
        rc = sub_decode(other, x.data, x.len, &big, &m2);
        if (f == SUB_JSON) {
            CHECK(rc == 0);
            CHECK(encode(f, &m2, &back) == 0);
            same(&e1, &back);
        } else {
            CHECK(rc == 0 || rc == WIRE_EFIELD || rc == WIRE_EDATA);
        }
        sub_msg_clear(&m2);
    }
    sub_msg_clear(&m1);
    wire_buf_free(&e1);
    wire_buf_free(&e2);
    wire_buf_free(&x);
    wire_buf_free(&back);
    return 0;
}
