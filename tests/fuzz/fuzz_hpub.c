/* libFuzzer target for the HTTP publish endpoint's bodies (protocol/hpub.c). The input is one
 * request body. Checked: the result is 0 or a decode error other than WIRE_EAGAIN; a refusal
 * leaves nothing to clear; an accepted body has 1..max_topics topics, data (when present) that
 * passes wire_data_check and converts to JSON, and re-encoded as a TCP publish frame it decodes
 * to the same message (the HTTP body and the TCP frame mean the same publish). The answers'
 * encoders are fed the input too: an error message made of arbitrary bytes must still give a
 * valid JSON object. ASan's leak check covers the jansson tree each decode keeps. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hpub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static struct pub_msg m, back;

static int str_eq(struct wire_str a, struct wire_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

static void answers(const uint8_t *data, size_t size)
{
    struct wire_buf out = {0};
    char msg[256];
    size_t n = size < sizeof(msg) - 1 ? size : sizeof(msg) - 1;
    memcpy(msg, data, n);
    msg[n] = '\0';
    CHECK(hpub_encode_error(&out, size ? data[0] : 0, msg) == 0);
    json_error_t err;
    json_t *v = json_loadb((const char *)out.data, out.len, 0, &err);
    CHECK(v && json_is_object(json_object_get(v, "error")));
    json_decref(v);
    CHECK(hpub_status(size ? data[0] : 0) >= 200);
    wire_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct wire_limits lim;
    wire_limits_default(&lim);
    answers(data, size);
    int rc = hpub_decode(data, size, &lim, &m);
    CHECK(rc <= 0 && rc >= WIRE_ENOMEM && rc != WIRE_EAGAIN);
    if (rc) {
        CHECK(m.priv == NULL && m.ntopics == 0 && m.data == NULL);
        return 0;
    }
    CHECK(m.type == PUB_PUBLISH && m.ntopics >= 1 && m.ntopics <= lim.max_topics);
    for (uint32_t i = 0; i < m.ntopics; i++)
        (void)wire_topic_check(m.topics[i].p, m.topics[i].len, &lim);
    if (m.data) {
        struct wire_buf j = {0};
        CHECK(wire_data_check(m.data, m.data_len, &lim) == 0);
        CHECK(wire_data_to_json(m.data, m.data_len, &j) == 0);
        wire_buf_free(&j);
    }
    /* The same publish as a TCP frame (an origin with a NUL byte cannot be carried by the
     * encoder's C string: skip those). */
    if (!memchr(m.origin.p ? m.origin.p : "", 0, m.origin.len)) {
        char origin[1024];
        const char *o = NULL;
        if (m.origin.len && m.origin.len < sizeof(origin)) {
            memcpy(origin, m.origin.p, m.origin.len);
            origin[m.origin.len] = '\0';
            o = origin;
        }
        if (!m.origin.len || o) {
            struct wire_buf f = {0};
            struct wire_limits big = lim;
            big.max_frame = WIRE_FRAME_MAX;
            CHECK(pub_encode_publish_ex(&f, 1, m.topics, m.ntopics, m.data, m.data_len, o,
                                        o && m.skip_origin) == 0);
            CHECK(pub_decode(f.data + PUB_PREFIX, f.len - PUB_PREFIX, &big, &back) == 0);
            CHECK(back.ntopics == m.ntopics && back.data_len == m.data_len);
            for (uint32_t i = 0; i < m.ntopics; i++)
                CHECK(str_eq(back.topics[i], m.topics[i]));
            CHECK(!m.data || memcmp(back.data, m.data, m.data_len) == 0);
            CHECK(str_eq(back.origin, m.origin));
            pub_msg_clear(&back);
            wire_buf_free(&f);
        }
    }
    hpub_msg_clear(&m);
    return 0;
}
