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
    CHECK(sub_encode_msg(f, &e1, &m1) == 0);
    if (f == SUB_JSON) CHECK(wire_utf8_valid((const char *)e1.data, e1.len));
    CHECK(sub_decode(f, e1.data, e1.len, &big, &m2) == 0);
    CHECK(m2.type == m1.type && m2.id == m1.id && m2.has_id == m1.has_id &&
          m2.ntopics == m1.ntopics && m2.seq == m1.seq && m2.count == m1.count &&
          m2.own == m1.own && m2.data_len == m1.data_len && m2.code == m1.code);
    if (m1.data) CHECK(memcmp(m2.data, m1.data, m1.data_len) == 0);
    CHECK(sub_encode_msg(f, &e2, &m2) == 0);
    same(&e1, &e2);
    sub_msg_clear(&m2);

    /* Through the other format and back. */
    rc = sub_encode_msg(other, &x, &m1);
    if (rc == 0) {
        if (other == SUB_JSON) CHECK(wire_utf8_valid((const char *)x.data, x.len));
        rc = sub_decode(other, x.data, x.len, &big, &m2);
        if (f == SUB_JSON) {
            CHECK(rc == 0);
            CHECK(sub_encode_msg(f, &back, &m2) == 0);
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
