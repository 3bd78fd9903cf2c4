/* libFuzzer target for the publisher codec: the input is a byte stream of frames.
 *
 * Every complete frame goes through pub_decode; what decodes is checked the way the broker uses
 * it (topics through wire_topic_check, data through wire_data_check and wire_data_to_json, and
 * the JSON back through wire_json_to_data), then re-encoded and decoded again: the second
 * encoding must equal the first byte for byte (encode . decode is a fixpoint after one round).
 * When the input does not start with a complete frame it is also decoded whole as a body, so the
 * fuzzer reaches the decoder without having to discover the length prefix first. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Does this msgpack value hold an integer JSON parsers cannot (above INT64_MAX)? Headers are
 * read in sequence: children follow their container, so no recursion is needed. */
static int has_huge_uint(const uint8_t *p, size_t len)
{
    struct wire__rd r = {p, len, 0};
    struct wire__val v;
    while (r.off < len && wire__rd_val(&r, &v) == 0)
        if (v.kind == WIRE__UINT && v.u > INT64_MAX) return 1;
    return 0;
}

static void check_data(const uint8_t *d, size_t n, const struct wire_limits *lim)
{
    struct wire_buf j1 = {0}, d2 = {0}, j2 = {0}, d3 = {0}, j3 = {0};
    CHECK(wire_data_check(d, n, lim) == 0);
    CHECK(wire_data_to_json(d, n, &j1) == 0);
    CHECK(wire_utf8_valid((const char *)j1.data, j1.len));
    int rc = wire_json_to_data((const char *)j1.data, j1.len, &d2);
    if (rc) {
        CHECK(rc == WIRE_EMALFORMED && has_huge_uint(d, n));
        goto out;
    }
    /* After one trip through JSON every number is an int64 or a float64: stable from then on. */
    CHECK(wire_data_to_json(d2.data, d2.len, &j2) == 0);
    CHECK(wire_json_to_data((const char *)j2.data, j2.len, &d3) == 0);
    CHECK(wire_data_to_json(d3.data, d3.len, &j3) == 0);
    CHECK(j2.len == j3.len && memcmp(j2.data, j3.data, j2.len) == 0);
out:
    wire_buf_free(&j1);
    wire_buf_free(&d2);
    wire_buf_free(&j2);
    wire_buf_free(&d3);
    wire_buf_free(&j3);
}

static struct pub_msg m1, m2;

static void check_body(const uint8_t *body, size_t len)
{
    struct wire_limits lim, big;
    wire_limits_default(&lim);
    big = lim;
    big.max_frame = WIRE_FRAME_MAX; /* re-encoding may grow a little (non-minimal ints) */

    int rc = pub_decode(body, len, &lim, &m1);
    CHECK(rc <= 0 && rc >= WIRE_ENOMEM && rc != WIRE_EAGAIN);
    if (rc) {
        CHECK(m1.priv == NULL && m1.ntopics == 0 && m1.data == NULL);
        return;
    }
    CHECK(m1.ntopics <= lim.max_topics && m1.nseqs <= WIRE_TOPICS_MAX);
    CHECK(m1.id <= WIRE_SEQ_MAX);
    for (uint32_t i = 0; i < m1.ntopics; i++)
        (void)wire_topic_check(m1.topics[i].p, m1.topics[i].len, &lim);
    if (m1.data) check_data(m1.data, m1.data_len, &lim);
    if (m1.auth) CHECK(m1.auth >= body && m1.auth + m1.auth_len <= body + len);

    struct wire_buf e1 = {0}, e2 = {0};
    CHECK(pub_encode_msg(&e1, &m1) == 0);
    const uint8_t *b;
    uint32_t n;
    size_t used;
    CHECK(pub_frame_next(e1.data, e1.len, big.max_frame, &b, &n, &used) == 0);
    CHECK(used == e1.len);
    CHECK(pub_decode(b, n, &big, &m2) == 0);
    CHECK(m2.type == m1.type && m2.id == m1.id && m2.ntopics == m1.ntopics &&
          m2.nseqs == m1.nseqs && m2.data_len == m1.data_len && m2.code == m1.code &&
          m2.skip_origin == m1.skip_origin);
    for (uint32_t i = 0; i < m1.ntopics; i++)
        CHECK(m2.topics[i].len == m1.topics[i].len &&
              memcmp(m2.topics[i].p, m1.topics[i].p, m1.topics[i].len) == 0);
    if (m1.data) CHECK(memcmp(m2.data, m1.data, m1.data_len) == 0);
    CHECK(pub_encode_msg(&e2, &m2) == 0);
    CHECK(e1.len == e2.len && memcmp(e1.data, e2.data, e1.len) == 0);
    pub_msg_clear(&m2);
    pub_msg_clear(&m1);
    wire_buf_free(&e1);
    wire_buf_free(&e2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_limits lim;
    wire_limits_default(&lim);
    size_t off = 0;
    while (off < size) {
        const uint8_t *body;
        uint32_t n;
        size_t used;
        int rc = pub_frame_next(data + off, size - off, lim.max_frame, &body, &n, &used);
        if (rc) {
            CHECK(rc == WIRE_EAGAIN || rc == WIRE_ETOOBIG || rc == WIRE_EMALFORMED);
            if (off == 0) check_body(data, size);
            break;
        }
        CHECK(n > 0 && n <= lim.max_frame && used == PUB_PREFIX + (size_t)n && used <= size - off &&
              body == data + off + PUB_PREFIX);
        check_body(body, n);
        off += used;
    }
    return 0;
}
