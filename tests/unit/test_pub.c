/* Unit tests for protocol/pub.c: framing, decoding of every malformed-input class, and
 * encode -> decode round trips of every publisher message (docs/protocol.md §Publisher). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pub.h"

static struct wire_buf body; /* what the decoded message points into */
static struct pub_msg msg;
static struct wire_buf out;

static void teardown(void)
{
    pub_msg_clear(&msg);
    wire_buf_free(&body);
    wire_buf_free(&out);
}

TestSuite(pub, .fini = teardown);

static struct wire_limits lim(void)
{
    struct wire_limits l;
    wire_limits_default(&l);
    return l;
}

static size_t unhex(const char *s, uint8_t *o)
{
    size_t n = 0;
    unsigned v;
    for (; *s; s++) {
        if (*s == ' ') continue;
        cr_assert(sscanf(s, "%2x", &v) == 1);
        o[n++] = (uint8_t)v;
        s++;
    }
    return n;
}

/* Decode a body given as JSON (converted to msgpack the way a client would pack it). */
static int dec_json_lim(const char *json, const struct wire_limits *l)
{
    wire_buf_reset(&body);
    cr_assert_eq(wire_json_to_data(json, strlen(json), &body), 0, "bad test JSON: %s", json);
    return pub_decode(body.data, body.len, l, &msg);
}

static int dec_json(const char *json)
{
    struct wire_limits l = lim();
    return dec_json_lim(json, &l);
}

static int dec_hex(const char *hex)
{
    struct wire_limits l = lim();
    wire_buf_reset(&body);
    wire_buf_reserve(&body, strlen(hex));
    body.len = unhex(hex, body.data);
    return pub_decode(body.data, body.len, &l, &msg);
}

/* Decode the single frame in out (as produced by an encoder). */
static int dec_out(void)
{
    const uint8_t *b;
    uint32_t n;
    size_t used;
    struct wire_limits l = lim();
    cr_assert_eq(pub_frame_next(out.data, out.len, l.max_frame, &b, &n, &used), 0);
    cr_assert_eq(used, out.len, "exactly one frame");
    return pub_decode(b, n, &l, &msg);
}

static int str_is(struct wire_str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

/* ---- framing ---- */

Test(pub, frame_next_waits_for_the_whole_length_prefix)
{
    const uint8_t p[] = {0, 0, 0, 1, 0x80};
    const uint8_t *b;
    uint32_t n;
    size_t used;
    for (size_t len = 0; len < 4; len++)
        cr_assert_eq(pub_frame_next(p, len, 65536, &b, &n, &used), WIRE_EAGAIN);
}

Test(pub, frame_next_waits_for_a_truncated_body)
{
    const uint8_t p[] = {0, 0, 0, 3, 0x81, 0xa0};
    const uint8_t *b;
    uint32_t n;
    size_t used;
    cr_assert_eq(pub_frame_next(p, 4, 65536, &b, &n, &used), WIRE_EAGAIN);
    cr_assert_eq(pub_frame_next(p, sizeof p, 65536, &b, &n, &used), WIRE_EAGAIN);
}

Test(pub, frame_next_rejects_a_zero_length_frame)
{
    const uint8_t p[] = {0, 0, 0, 0, 0x80};
    const uint8_t *b;
    uint32_t n;
    size_t used;
    cr_assert_eq(pub_frame_next(p, sizeof p, 65536, &b, &n, &used), WIRE_EMALFORMED);
}

Test(pub, rejects_frame_longer_than_max_frame_as_soon_as_the_prefix_arrives)
{
    const uint8_t big[] = {0, 1, 0, 1}; /* 65537 */
    const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff};
    const uint8_t *b;
    uint32_t n;
    size_t used;
    cr_assert_eq(pub_frame_next(big, 4, 65536, &b, &n, &used), WIRE_ETOOBIG);
    cr_assert_eq(pub_frame_next(huge, 4, 65536, &b, &n, &used), WIRE_ETOOBIG);
    cr_assert_eq(pub_frame_next(big, 4, 65537, &b, &n, &used), WIRE_EAGAIN,
                 "at the limit: wait for the body");
}

Test(pub, frame_next_returns_each_body_of_back_to_back_frames)
{
    cr_assert_eq(pub_encode_ping(&out, 1), 0);
    cr_assert_eq(pub_encode_pong(&out, 2), 0);
    const uint8_t *b;
    uint32_t n;
    size_t used;
    cr_assert_eq(pub_frame_next(out.data, out.len, 65536, &b, &n, &used), 0);
    cr_assert_eq(b, out.data + 4);
    cr_assert_eq(used, 4 + (size_t)n);
    cr_assert_eq(pub_decode(b, n, NULL, &msg), 0);
    cr_assert_eq(msg.type, PUB_PING);
    cr_assert_eq(pub_frame_next(out.data + used, out.len - used, 65536, &b, &n, &used), 0);
    cr_assert_eq(pub_decode(b, n, NULL, &msg), 0);
    cr_assert_eq(msg.type, PUB_PONG);
    cr_assert_eq(msg.id, 2);
}

/* ---- malformed bodies ---- */

Test(pub, rejects_a_body_that_is_not_msgpack)
{
    cr_assert_eq(dec_hex("c1"), WIRE_EMALFORMED, "reserved byte");
    cr_assert_eq(dec_hex("81 a4 74 79 70 65 c1"), WIRE_EMALFORMED);
    cr_assert_eq(pub_decode(NULL, 0, NULL, &msg), WIRE_EMALFORMED, "empty body");
}

Test(pub, rejects_msgpack_that_is_not_a_map)
{
    cr_assert_eq(dec_hex("91 a3 70 75 62"), WIRE_EMALFORMED, "array");
    cr_assert_eq(dec_hex("a3 70 75 62"), WIRE_EMALFORMED, "str");
    cr_assert_eq(dec_hex("07"), WIRE_EMALFORMED, "int");
    cr_assert_eq(dec_hex("c0"), WIRE_EMALFORMED, "nil");
}

Test(pub, rejects_a_truncated_map)
{
    cr_assert_eq(dec_hex("82 a4 74 79 70 65 a4 70 69 6e 67"), WIRE_EMALFORMED, "missing pair");
    cr_assert_eq(dec_hex("81 a4 74 79 70 65 a4 70 69 6e"), WIRE_EMALFORMED, "short str");
    cr_assert_eq(dec_hex("de 00 01"), WIRE_EMALFORMED);
    cr_assert_eq(dec_hex("df ff ff ff ff"), WIRE_EMALFORMED, "huge declared map");
}

Test(pub, rejects_trailing_bytes_after_the_map)
{
    cr_assert_eq(dec_json("{\"type\":\"ping\",\"id\":1}"), 0);
    wire_buf_append(&body, "\xc0", 1);
    cr_assert_eq(pub_decode(body.data, body.len, NULL, &msg), WIRE_EMALFORMED);
}

Test(pub, rejects_keys_that_are_not_strings)
{
    cr_assert_eq(dec_hex("82 a4 74 79 70 65 a4 70 69 6e 67 01 01"), WIRE_EMALFORMED);
    cr_assert_eq(dec_hex("81 c4 04 74 79 70 65 a4 70 69 6e 67"), WIRE_EMALFORMED, "bin key");
}

Test(pub, rejects_a_map_without_type)
{
    cr_assert_eq(dec_json("{\"id\":1}"), WIRE_ETYPE);
    cr_assert_eq(dec_json("{}"), WIRE_ETYPE);
}

Test(pub, rejects_an_unknown_or_mistyped_type)
{
    cr_assert_eq(dec_json("{\"type\":\"subscribe\",\"id\":1}"), WIRE_ETYPE);
    cr_assert_eq(dec_json("{\"type\":\"PING\",\"id\":1}"), WIRE_ETYPE, "case matters");
    cr_assert_eq(dec_json("{\"type\":\"\",\"id\":1}"), WIRE_ETYPE);
    cr_assert_eq(dec_json("{\"type\":1,\"id\":1}"), WIRE_ETYPE);
    cr_assert_eq(dec_hex("81 a4 74 79 70 65 c4 04 70 69 6e 67"), WIRE_ETYPE, "bin type");
}

Test(pub, rejects_a_body_longer_than_max_frame)
{
    struct wire_limits l = lim();
    l.max_frame = 8;
    cr_assert_eq(dec_json_lim("{\"type\":\"ping\",\"id\":1}", &l), WIRE_ETOOBIG);
}

/* ---- field types ---- */

Test(pub, rejects_missing_required_fields)
{
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"topics\":[\"a\"]}"), WIRE_EFIELD, "no id");
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":1}"), WIRE_EFIELD, "no topics");
    cr_assert_eq(dec_json("{\"type\":\"hello\"}"), WIRE_EFIELD, "no v");
    cr_assert_eq(dec_json("{\"type\":\"ping\"}"), WIRE_EFIELD, "no id");
    cr_assert_eq(dec_json("{\"type\":\"ack\",\"id\":1}"), WIRE_EFIELD, "no seqs");
    cr_assert_eq(dec_json("{\"type\":\"error\",\"code\":3}"), WIRE_EFIELD, "no msg");
    cr_assert_eq(dec_json("{\"type\":\"error\",\"msg\":\"x\"}"), WIRE_EFIELD, "no code");
    cr_assert_eq(dec_json("{\"type\":\"welcome\",\"v\":1,\"epoch\":\"e\",\"server\":\"s\","
                          "\"max_frame\":1,\"max_topics\":1}"),
                 WIRE_EFIELD, "no max_data");
}

Test(pub, rejects_fields_of_the_wrong_type)
{
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":\"1\",\"topics\":[\"a\"]}"), WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":1.0,\"topics\":[\"a\"]}"), WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":-1,\"topics\":[\"a\"]}"), WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":null,\"topics\":[\"a\"]}"), WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":1,\"topics\":\"a\"}"), WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":1,\"topics\":[\"a\",2]}"), WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":1,\"topics\":[\"a\"],\"origin\":7}"),
                 WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"hello\",\"v\":\"1\"}"), WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"hello\",\"v\":4294967296}"), WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"hello\",\"v\":1,\"client\":[]}"), WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"ack\",\"id\":1,\"seqs\":[1,\"2\"]}"), WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"ack\",\"id\":1,\"seqs\":{}}"), WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"error\",\"code\":\"bad\",\"msg\":\"x\"}"), WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"error\",\"code\":-1,\"msg\":\"x\"}"), WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"error\",\"code\":3,\"msg\":false}"), WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"error\",\"id\":\"7\",\"code\":3,\"msg\":\"x\"}"),
                 WIRE_EFIELD);
    cr_assert_eq(dec_json("{\"type\":\"welcome\",\"v\":1,\"epoch\":5,\"server\":\"s\","
                          "\"max_frame\":1,\"max_topics\":1,\"max_data\":1}"),
                 WIRE_EFIELD);
}

Test(pub, accepts_ids_up_to_2_53_minus_1_and_rejects_larger)
{
    cr_assert_eq(dec_json("{\"type\":\"ping\",\"id\":9007199254740991}"), 0);
    cr_assert_eq(msg.id, 9007199254740991ull);
    cr_assert_eq(dec_json("{\"type\":\"ping\",\"id\":9007199254740992}"), WIRE_EFIELD);
    cr_assert_eq(dec_hex("82 a4 74 79 70 65 a4 70 69 6e 67 a2 69 64 cf ff ff ff ff ff ff ff ff"),
                 WIRE_EFIELD, "uint64 max");
    cr_assert_eq(dec_json("{\"type\":\"ack\",\"id\":1,\"seqs\":[9007199254740992]}"), WIRE_EFIELD,
                 "seqs too");
}

Test(pub, accepts_non_negative_ids_in_signed_int_formats)
{
    /* {"type":"ping","id":int8 5} */
    cr_assert_eq(dec_hex("82 a4 74 79 70 65 a4 70 69 6e 67 a2 69 64 d0 05"), 0);
    cr_assert_eq(msg.id, 5);
    cr_assert_eq(dec_hex("82 a4 74 79 70 65 a4 70 69 6e 67 a2 69 64 d0 fb"), WIRE_EFIELD, "-5");
    cr_assert_eq(dec_hex("82 a4 74 79 70 65 a4 70 69 6e 67 a2 69 64 ca 40 a0 00 00"), WIRE_EFIELD,
                 "float 5.0");
}

/* ---- publish topics and data ---- */

Test(pub, rejects_a_publish_with_an_empty_topic_list)
{
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":1,\"topics\":[]}"), WIRE_EFIELD);
}

Test(pub, rejects_more_topics_than_max_topics)
{
    struct wire_limits l = lim();
    l.max_topics = 2;
    cr_assert_eq(dec_json_lim("{\"type\":\"pub\",\"id\":1,\"topics\":[\"a\",\"b\"]}", &l), 0);
    cr_assert_eq(dec_json_lim("{\"type\":\"pub\",\"id\":1,\"topics\":[\"a\",\"b\",\"c\"]}", &l),
                 WIRE_ETOOMANY);
    l.max_topics = UINT32_MAX; /* unclamped limits still stop at the storage size */
    char json[4096] = "{\"type\":\"pub\",\"id\":1,\"topics\":[\"a\"";
    for (int i = 1; i < WIRE_TOPICS_MAX + 1; i++)
        strcat(json, ",\"a\"");
    strcat(json, "]}");
    cr_assert_eq(dec_json_lim(json, &l), WIRE_ETOOMANY);
}

Test(pub, leaves_topic_names_to_the_caller)
{
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":1,\"topics\":[\"a b\",\"\",\"x*\"]}"), 0);
    cr_assert_eq(msg.ntopics, 3);
    cr_assert(str_is(msg.topics[0], "a b"));
    cr_assert_eq(msg.topics[1].len, 0);
}

Test(pub, points_data_at_the_raw_msgpack_value_in_the_body)
{
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":9,\"topics\":[\"doc:1\"],"
                          "\"data\":{\"rev\":3,\"by\":[\"ann\"]},\"origin\":\"c7\"}"),
                 0);
    cr_assert_eq(msg.type, PUB_PUBLISH);
    cr_assert_eq(msg.id, 9);
    cr_assert(str_is(msg.origin, "c7"));
    struct wire_buf want = {0};
    const char *dj = "{\"rev\":3,\"by\":[\"ann\"]}";
    wire_json_to_data(dj, strlen(dj), &want);
    cr_assert_eq(msg.data_len, want.len);
    cr_assert(memcmp(msg.data, want.data, want.len) == 0);
    cr_assert(msg.data >= body.data && msg.data + msg.data_len <= body.data + body.len,
              "zero-copy: data points into the body");
    wire_buf_free(&want);
}

Test(pub, treats_null_data_as_present)
{
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":1,\"topics\":[\"a\"],\"data\":null}"), 0);
    cr_assert_eq(msg.data_len, 1);
    cr_assert_eq(msg.data[0], 0xc0);
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":1,\"topics\":[\"a\"]}"), 0);
    cr_assert_null(msg.data);
}

Test(pub, rejects_data_larger_than_max_data)
{
    struct wire_limits l = lim();
    l.max_data = 8;
    cr_assert_eq(
        dec_json_lim("{\"type\":\"pub\",\"id\":1,\"topics\":[\"a\"],\"data\":\"1234567\"}", &l), 0,
        "8 bytes");
    cr_assert_eq(
        dec_json_lim("{\"type\":\"pub\",\"id\":1,\"topics\":[\"a\"],\"data\":\"12345678\"}", &l),
        WIRE_EDATA);
}

Test(pub, rejects_data_that_json_cannot_carry)
{
    /* {"type":"pub","id":1,"topics":["a"],"data":X} with X spliced in as hex */
    const char *pre = "84 a4 74 79 70 65 a3 70 75 62 a2 69 64 01 a6 74 6f 70 69 63 73 91 a1 61 "
                      "a4 64 61 74 61 ";
    static const char *bad[] = {
        "c4 02 00 01",                /* bin */
        "d4 01 00",                   /* fixext */
        "c7 01 07 00",                /* ext 8 */
        "81 01 c0",                   /* int key */
        "cb 7f f8 00 00 00 00 00 00", /* NaN */
        "cb 7f f0 00 00 00 00 00 00", /* Inf */
        "a1 ff",                      /* bad UTF-8 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char hex[256];
        snprintf(hex, sizeof hex, "%s%s", pre, bad[i]);
        cr_assert_eq(dec_hex(hex), WIRE_EDATA, "case %zu", i);
    }
}

/* A publish whose data is `depth` nested arrays. */
static int dec_nested(int depth)
{
    char json[512] = "{\"type\":\"pub\",\"id\":1,\"topics\":[\"a\"],\"data\":";
    char *p = json + strlen(json);
    for (int i = 0; i < depth; i++)
        *p++ = '[';
    for (int i = 0; i < depth; i++)
        *p++ = ']';
    strcpy(p, "}");
    return dec_json(json);
}

Test(pub, rejects_data_nested_deeper_than_32)
{
    cr_assert_eq(dec_nested(32), 0);
    cr_assert_eq(dec_nested(33), WIRE_EDATA);
    cr_assert_eq(dec_nested(200), WIRE_EDATA);
}

Test(pub, ignores_unknown_keys_whatever_their_value)
{
    /* {"type":"ping","x":bin,"id":3,"y":ext} */
    cr_assert_eq(dec_hex("84 a4 74 79 70 65 a4 70 69 6e 67 a1 78 c4 01 00 a2 69 64 03 "
                         "a1 79 d4 01 00"),
                 0);
    cr_assert_eq(msg.id, 3);
    cr_assert_eq(dec_json("{\"type\":\"ping\",\"id\":3,\"topics\":\"not used by ping\"}"), 0);
}

Test(pub, lets_the_last_duplicate_key_win)
{
    cr_assert_eq(dec_hex("83 a4 74 79 70 65 a4 70 69 6e 67 a2 69 64 01 a2 69 64 02"), 0);
    cr_assert_eq(msg.id, 2);
}

Test(pub, keeps_hello_auth_as_raw_msgpack)
{
    cr_assert_eq(dec_json("{\"type\":\"hello\",\"v\":1,\"client\":\"cli\",\"auth\":[\"k\",1]}"), 0);
    cr_assert_eq(msg.version, 1);
    cr_assert(str_is(msg.client, "cli"));
    cr_assert_eq(msg.auth_len, 4);
    cr_assert(memcmp(msg.auth, "\x92\xa1k\x01", 4) == 0);
}

/* ---- round trips ---- */

Test(pub, round_trips_hello)
{
    cr_assert_eq(pub_encode_hello(&out, 1, "backend/2"), 0);
    cr_assert_eq(dec_out(), 0);
    cr_assert_eq(msg.type, PUB_HELLO);
    cr_assert_eq(msg.version, 1);
    cr_assert(str_is(msg.client, "backend/2"));
    cr_assert_null(msg.auth);
    wire_buf_reset(&out);
    cr_assert_eq(pub_encode_hello(&out, 7, NULL), 0);
    cr_assert_eq(dec_out(), 0);
    cr_assert_eq(msg.version, 7);
    cr_assert_eq(msg.client.len, 0);
}

Test(pub, round_trips_welcome_with_the_broker_limits)
{
    struct wire_limits l = {1000, 10, 100, 5};
    cr_assert_eq(pub_encode_welcome(&out, 1, "0123456789abcdef", "nudged/0.1", &l), 0);
    cr_assert_eq(dec_out(), 0);
    cr_assert_eq(msg.type, PUB_WELCOME);
    cr_assert(str_is(msg.epoch, "0123456789abcdef"));
    cr_assert(str_is(msg.server, "nudged/0.1"));
    cr_assert_eq(msg.max_frame, 1000);
    cr_assert_eq(msg.max_topics, 5);
    cr_assert_eq(msg.max_data, 100);
}

Test(pub, round_trips_publish_with_and_without_data_and_origin)
{
    struct wire_str t[] = {{"project:17", 10}, {"user:42", 7}};
    const uint8_t data[] = {0x81, 0xa1, 'k', 0x2a};
    cr_assert_eq(pub_encode_publish(&out, 12, t, 2, data, sizeof data, "c-1"), 0);
    cr_assert_eq(dec_out(), 0);
    cr_assert_eq(msg.type, PUB_PUBLISH);
    cr_assert_eq(msg.id, 12);
    cr_assert_eq(msg.ntopics, 2);
    cr_assert(str_is(msg.topics[0], "project:17"));
    cr_assert(str_is(msg.topics[1], "user:42"));
    cr_assert_eq(msg.data_len, sizeof data);
    cr_assert(memcmp(msg.data, data, sizeof data) == 0);
    cr_assert(str_is(msg.origin, "c-1"));
    wire_buf_reset(&out);
    cr_assert_eq(pub_encode_publish(&out, 13, t, 1, NULL, 0, NULL), 0);
    cr_assert_eq(dec_out(), 0);
    cr_assert_eq(msg.ntopics, 1);
    cr_assert_null(msg.data);
    cr_assert_eq(msg.origin.len, 0);
}

Test(pub, round_trips_ack)
{
    const uint64_t seqs[] = {1, 200, 70000, 9007199254740991ull};
    cr_assert_eq(pub_encode_ack(&out, 5, seqs, 4), 0);
    cr_assert_eq(dec_out(), 0);
    cr_assert_eq(msg.type, PUB_ACK);
    cr_assert_eq(msg.id, 5);
    cr_assert_eq(msg.nseqs, 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(msg.seqs[i], seqs[i]);
}

Test(pub, round_trips_error_with_and_without_id)
{
    cr_assert_eq(pub_encode_error(&out, 4, WIRE_C_BAD_TOPIC, "bad topic \"a b\""), 0);
    cr_assert_eq(dec_out(), 0);
    cr_assert_eq(msg.type, PUB_ERROR);
    cr_assert_eq(msg.id, 4);
    cr_assert_eq(msg.code, WIRE_C_BAD_TOPIC);
    cr_assert(str_is(msg.msg, "bad topic \"a b\""));
    wire_buf_reset(&out);
    cr_assert_eq(pub_encode_error(&out, 0, WIRE_C_TOO_LARGE, "frame too large"), 0);
    cr_assert(memmem(out.data, out.len, "\xa2id", 3) == NULL, "no id key");
    cr_assert_eq(dec_out(), 0);
    cr_assert_eq(msg.id, 0);
    cr_assert_eq(msg.code, WIRE_C_TOO_LARGE);
}

Test(pub, round_trips_ping_and_pong)
{
    cr_assert_eq(pub_encode_ping(&out, 300), 0);
    cr_assert_eq(dec_out(), 0);
    cr_assert_eq(msg.type, PUB_PING);
    cr_assert_eq(msg.id, 300);
    wire_buf_reset(&out);
    cr_assert_eq(pub_encode_pong(&out, 300), 0);
    cr_assert_eq(dec_out(), 0);
    cr_assert_eq(msg.type, PUB_PONG);
    cr_assert_eq(msg.id, 300);
}

Test(pub, encoders_append_after_what_the_buffer_holds)
{
    wire_buf_append(&out, "xy", 2);
    cr_assert_eq(pub_encode_ping(&out, 1), 0);
    cr_assert(memcmp(out.data, "xy\0\0\0\x0f", 6) == 0, "length patched after the old bytes");
    cr_assert_eq(out.len, 2 + 4 + 15);
}

Test(pub, encodes_ints_in_their_smallest_unsigned_form)
{
    cr_assert_eq(pub_encode_ping(&out, 127), 0);
    cr_assert_eq(out.data[out.len - 1], 0x7f);
    wire_buf_reset(&out);
    cr_assert_eq(pub_encode_ping(&out, 128), 0);
    cr_assert(memcmp(out.data + out.len - 2, "\xcc\x80", 2) == 0);
    wire_buf_reset(&out);
    cr_assert_eq(pub_encode_ping(&out, 65536), 0);
    cr_assert(memcmp(out.data + out.len - 5, "\xce\x00\x01\x00\x00", 5) == 0);
}

Test(pub, msg_clear_is_safe_on_zeroed_and_cleared_messages)
{
    struct pub_msg *m = calloc(1, sizeof *m);
    pub_msg_clear(m);
    pub_msg_clear(m);
    free(m);
}

Test(pub, keeps_the_request_id_when_decoding_fails_later)
{
    struct wire_limits l = lim();
    l.max_topics = 1;
    cr_assert_eq(dec_json_lim("{\"type\":\"pub\",\"topics\":[\"a\",\"b\"],\"id\":41}", &l),
                 WIRE_ETOOMANY);
    cr_assert_eq(msg.id, 41);
    cr_assert_eq(msg.ntopics, 0, "nothing else is kept");
    cr_assert_eq(dec_json("{\"type\":\"nope\",\"id\":42}"), WIRE_ETYPE);
    cr_assert_eq(msg.id, 42);
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":-1,\"topics\":[\"a\"]}"), WIRE_EFIELD);
    cr_assert_eq(msg.id, 0, "an unreadable id is not kept");
}

Test(pub, round_trips_skip_origin_and_rejects_it_when_not_a_bool)
{
    struct wire_str t = {"doc:9", 5};
    cr_assert_eq(pub_encode_publish_ex(&out, 3, &t, 1, NULL, 0, "1f", 1), 0);
    cr_assert_eq(dec_out(), 0);
    cr_assert(str_is(msg.origin, "1f"));
    cr_assert_eq(msg.skip_origin, 1);
    wire_buf_reset(&out);
    cr_assert_eq(pub_encode_publish_ex(&out, 3, &t, 1, NULL, 0, "1f", 0), 0);
    cr_assert(memmem(out.data, out.len, "skip_origin", 11) == NULL, "false is not written");
    cr_assert_eq(dec_out(), 0);
    cr_assert_eq(msg.skip_origin, 0);
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":1,\"topics\":[\"a\"],\"skip_origin\":false}"),
                 0);
    cr_assert_eq(msg.skip_origin, 0);
    cr_assert_eq(dec_json("{\"type\":\"pub\",\"id\":1,\"topics\":[\"a\"],\"skip_origin\":1}"),
                 WIRE_EFIELD);
}
