/* Unit tests for protocol/wire.c: limits, error codes, buffers, UTF-8 and topic validation,
 * data checks and the msgpack <-> JSON conversions (docs/protocol.md §Topics, §Data). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/* Hex ("c3 a9" or "c3a9") to bytes; returns the count. */
static size_t unhex(const char *s, uint8_t *out)
{
    size_t n = 0;
    while (*s) {
        if (*s == ' ' || *s == '\n') {
            s++;
            continue;
        }
        unsigned v;
        cr_assert(sscanf(s, "%2x", &v) == 1, "bad hex at '%s'", s);
        out[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

static struct wire_limits lim(void)
{
    struct wire_limits l;
    wire_limits_default(&l);
    return l;
}

static int topic(const char *s)
{
    struct wire_limits l = lim();
    return wire_topic_check(s, strlen(s), &l);
}

static int data_hex(const char *hex)
{
    uint8_t b[256];
    struct wire_limits l = lim();
    size_t n = unhex(hex, b);
    return wire_data_check(b, n, &l);
}

/* msgpack bytes of a JSON value, converted back to JSON text. */
static char *json_via_msgpack(const char *json)
{
    struct wire_buf mp = {0}, out = {0};
    cr_assert_eq(wire_json_to_data(json, strlen(json), &mp), 0, "json_to_data %s", json);
    struct wire_limits l = lim();
    cr_assert_eq(wire_data_check(mp.data, mp.len, &l), 0, "data_check %s", json);
    cr_assert_eq(wire_data_to_json(mp.data, mp.len, &out), 0);
    char *s = strndup((const char *)out.data, out.len);
    wire_buf_free(&mp);
    wire_buf_free(&out);
    return s;
}

static char *json_of_hex(const char *hex)
{
    uint8_t b[256];
    size_t n = unhex(hex, b);
    struct wire_buf out = {0};
    cr_assert_eq(wire_data_to_json(b, n, &out), 0, "data_to_json %s", hex);
    char *s = strndup((const char *)out.data, out.len);
    wire_buf_free(&out);
    return s;
}

static void expect_msgpack(const char *json, const char *hex)
{
    uint8_t want[256];
    size_t n = unhex(hex, want);
    struct wire_buf mp = {0};
    cr_assert_eq(wire_json_to_data(json, strlen(json), &mp), 0, "%s", json);
    cr_assert_eq(mp.len, n, "%s: %zu bytes, want %zu", json, mp.len, n);
    cr_assert(memcmp(mp.data, want, n) == 0, "%s: bytes differ", json);
    wire_buf_free(&mp);
}

/* ---- limits and codes ---- */

Test(wire, limits_default_to_the_documented_values)
{
    struct wire_limits l = lim();
    cr_assert_eq(l.max_frame, 65536);
    cr_assert_eq(l.max_topic, 256);
    cr_assert_eq(l.max_data, 1024);
    cr_assert_eq(l.max_topics, 64);
}

Test(wire, limits_clamp_into_one_and_the_hard_ceilings)
{
    struct wire_limits l = {0, 0, 0, 0};
    wire_limits_clamp(&l);
    cr_assert(l.max_frame == 1 && l.max_topic == 1 && l.max_data == 1 && l.max_topics == 1);
    l = (struct wire_limits){UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX};
    wire_limits_clamp(&l);
    cr_assert_eq(l.max_frame, WIRE_FRAME_MAX);
    cr_assert_eq(l.max_topic, WIRE_TOPIC_LEN_MAX);
    cr_assert_eq(l.max_data, WIRE_DATA_MAX);
    cr_assert_eq(l.max_topics, WIRE_TOPICS_MAX);
    l = lim();
    wire_limits_clamp(&l);
    cr_assert_eq(l.max_frame, 65536, "values in range are kept");
}

Test(wire, code_names_are_the_documented_strings)
{
    static const char *want[] = {
        NULL,           "bad_frame",      "unknown_type",  "bad_field",
        "too_large",    "bad_topic",      "bad_data",      "too_many_topics",
        "bad_version",  "hello_required", "too_many_subs", "not_subscribed",
        "unexpected",   "internal",       "limit",         "storage",
        "unauthorized", "forbidden",      "token_expired", "rate_limited",
        "over_budget"};
    for (int c = 1; c <= 20; c++)
        cr_assert_str_eq(wire_code_name(c), want[c]);
    cr_assert_str_eq(wire_code_name(0), "unknown");
    cr_assert_str_eq(wire_code_name(21), "unknown");
    cr_assert_str_eq(wire_code_name(-3), "unknown");
}

Test(wire, code_of_maps_each_decode_error_to_its_wire_code)
{
    cr_assert_eq(wire_code_of(WIRE_EMALFORMED), WIRE_C_BAD_FRAME);
    cr_assert_eq(wire_code_of(WIRE_ETYPE), WIRE_C_UNKNOWN_TYPE);
    cr_assert_eq(wire_code_of(WIRE_EFIELD), WIRE_C_BAD_FIELD);
    cr_assert_eq(wire_code_of(WIRE_ETOOBIG), WIRE_C_TOO_LARGE);
    cr_assert_eq(wire_code_of(WIRE_ETOPIC), WIRE_C_BAD_TOPIC);
    cr_assert_eq(wire_code_of(WIRE_EDATA), WIRE_C_BAD_DATA);
    cr_assert_eq(wire_code_of(WIRE_ETOOMANY), WIRE_C_TOO_MANY_TOPICS);
    cr_assert_eq(wire_code_of(WIRE_ENOMEM), WIRE_C_INTERNAL);
    cr_assert_eq(wire_code_of(WIRE_EAGAIN), WIRE_C_INTERNAL);
    cr_assert_eq(wire_code_of(0), WIRE_C_INTERNAL);
}

/* ---- wire_buf ---- */

Test(wire, buf_appends_grow_the_buffer_and_keep_the_bytes)
{
    struct wire_buf b = {0};
    for (int i = 0; i < 1000; i++)
        cr_assert_eq(wire_buf_append(&b, "abc", 3), 0);
    cr_assert_eq(b.len, 3000);
    cr_assert_geq(b.cap, 3000);
    cr_assert(memcmp(b.data + 2997, "abc", 3) == 0);
    cr_assert_eq(wire_buf_append(&b, NULL, 0), 0, "appending nothing is fine");
    wire_buf_free(&b);
}

Test(wire, buf_reset_keeps_the_allocation_and_free_zeroes_the_struct)
{
    struct wire_buf b = {0};
    wire_buf_append(&b, "hello", 5);
    uint8_t *d = b.data;
    wire_buf_reset(&b);
    cr_assert_eq(b.len, 0);
    cr_assert_eq(b.data, d);
    wire_buf_free(&b);
    cr_assert(b.data == NULL && b.len == 0 && b.cap == 0);
    wire_buf_free(&b); /* twice is harmless */
}

Test(wire, buf_reserve_refuses_sizes_that_would_overflow)
{
    struct wire_buf b = {0};
    wire_buf_append(&b, "x", 1);
    cr_assert_eq(wire_buf_reserve(&b, SIZE_MAX), WIRE_ENOMEM);
    cr_assert_eq(b.len, 1);
    wire_buf_free(&b);
}

/* ---- topics and UTF-8 ---- */

Test(wire, topic_check_accepts_conventional_names)
{
    cr_assert_eq(topic("project:17"), 0);
    cr_assert_eq(topic("user:42"), 0);
    cr_assert_eq(topic("a"), 0);
    cr_assert_eq(topic("org:3/board:9#cards"), 0);
}

Test(wire, topic_check_accepts_valid_multibyte_utf8)
{
    cr_assert_eq(topic("caf\xc3\xa9"), 0);              /* 2-byte */
    cr_assert_eq(topic("\xe6\x97\xa5\xe6\x9c\xac"), 0); /* 3-byte */
    cr_assert_eq(topic("room:\xf0\x9f\x98\x80"), 0);    /* 4-byte */
    cr_assert_eq(topic("\xf4\x8f\xbf\xbf"), 0);         /* U+10FFFF */
    cr_assert_eq(topic("\xc2\x80"), 0, "U+0080 is not an ASCII control char");
}

Test(wire, topic_check_rejects_the_empty_topic)
{
    cr_assert_eq(topic(""), WIRE_ETOPIC);
}

Test(wire, topic_check_rejects_topics_longer_than_max_topic)
{
    struct wire_limits l = lim();
    char buf[WIRE_TOPIC_LEN_MAX + 2];
    memset(buf, 'a', sizeof buf);
    cr_assert_eq(wire_topic_check(buf, 256, &l), 0);
    cr_assert_eq(wire_topic_check(buf, 257, &l), WIRE_ETOPIC);
    l.max_topic = 4;
    cr_assert_eq(wire_topic_check(buf, 4, &l), 0);
    cr_assert_eq(wire_topic_check(buf, 5, &l), WIRE_ETOPIC);
    l.max_topic = UINT32_MAX; /* unclamped limits still stop at the hard ceiling */
    cr_assert_eq(wire_topic_check(buf, WIRE_TOPIC_LEN_MAX, &l), 0);
    cr_assert_eq(wire_topic_check(buf, WIRE_TOPIC_LEN_MAX + 1, &l), WIRE_ETOPIC);
}

Test(wire, topic_check_rejects_ascii_control_chars)
{
    cr_assert_eq(topic("a\x01"), WIRE_ETOPIC);
    cr_assert_eq(topic("a\tb"), WIRE_ETOPIC);
    cr_assert_eq(topic("a\nb"), WIRE_ETOPIC);
    cr_assert_eq(topic("a\x1f"), WIRE_ETOPIC);
    cr_assert_eq(topic("a\x7f"), WIRE_ETOPIC);
    struct wire_limits l = lim();
    cr_assert_eq(wire_topic_check("a\0b", 3, &l), WIRE_ETOPIC, "NUL inside the length");
}

Test(wire, topic_check_rejects_space_and_star)
{
    cr_assert_eq(topic("a b"), WIRE_ETOPIC);
    cr_assert_eq(topic(" "), WIRE_ETOPIC);
    cr_assert_eq(topic("project:*"), WIRE_ETOPIC);
    cr_assert_eq(topic("*"), WIRE_ETOPIC);
}

Test(wire, topic_check_rejects_invalid_utf8)
{
    cr_assert_eq(topic("a\x80"), WIRE_ETOPIC, "lone continuation byte");
    cr_assert_eq(topic("a\xc3"), WIRE_ETOPIC, "truncated sequence");
    cr_assert_eq(topic("\xe6\x97"), WIRE_ETOPIC, "truncated 3-byte sequence");
    cr_assert_eq(topic("\xc3\x28"), WIRE_ETOPIC, "bad continuation");
    cr_assert_eq(topic("\xff"), WIRE_ETOPIC);
    cr_assert_eq(topic("\xfe"), WIRE_ETOPIC);
}

Test(wire, topic_check_rejects_overlong_utf8)
{
    cr_assert_eq(topic("\xc0\xaf"), WIRE_ETOPIC, "overlong '/'");
    cr_assert_eq(topic("\xc1\xbf"), WIRE_ETOPIC);
    cr_assert_eq(topic("\xe0\x80\xaf"), WIRE_ETOPIC);
    cr_assert_eq(topic("\xe0\x9f\xbf"), WIRE_ETOPIC, "U+07FF in 3 bytes");
    cr_assert_eq(topic("\xf0\x80\x80\xaf"), WIRE_ETOPIC);
    cr_assert_eq(topic("\xf0\x8f\xbf\xbf"), WIRE_ETOPIC, "U+FFFF in 4 bytes");
    cr_assert_eq(topic("\xc0\x80"), WIRE_ETOPIC, "modified-UTF-8 NUL");
}

Test(wire, topic_check_rejects_utf16_surrogates)
{
    cr_assert_eq(topic("\xed\xa0\x80"), WIRE_ETOPIC, "U+D800");
    cr_assert_eq(topic("\xed\xbf\xbf"), WIRE_ETOPIC, "U+DFFF");
    cr_assert_eq(topic("\xed\xa0\xbd\xed\xb8\x80"), WIRE_ETOPIC, "CESU-8 pair");
}

Test(wire, topic_check_rejects_code_points_above_10ffff)
{
    cr_assert_eq(topic("\xf4\x90\x80\x80"), WIRE_ETOPIC);
    cr_assert_eq(topic("\xf5\x80\x80\x80"), WIRE_ETOPIC);
    cr_assert_eq(topic("\xf8\x88\x80\x80\x80"), WIRE_ETOPIC);
}

Test(wire, utf8_valid_accepts_the_boundaries_of_each_sequence_length)
{
    static const char *ok[] = {
        "\x7f",         "\xc2\x80",     "\xdf\xbf",         "\xe0\xa0\x80",     "\xed\x9f\xbf",
        "\xee\x80\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", ""};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_assert(wire_utf8_valid(ok[i], strlen(ok[i])), "case %zu", i);
    cr_assert(wire_utf8_valid("\0", 1), "NUL is valid UTF-8");
}

/* ---- data check ---- */

Test(wire, data_check_accepts_every_json_kind)
{
    cr_assert_eq(data_hex("c0"), 0, "nil");
    cr_assert_eq(data_hex("c3"), 0, "true");
    cr_assert_eq(data_hex("c2"), 0, "false");
    cr_assert_eq(data_hex("7f"), 0, "positive fixint");
    cr_assert_eq(data_hex("e0"), 0, "negative fixint");
    cr_assert_eq(data_hex("cf ff ff ff ff ff ff ff ff"), 0, "uint64 max");
    cr_assert_eq(data_hex("d3 80 00 00 00 00 00 00 00"), 0, "int64 min");
    cr_assert_eq(data_hex("ca 3f 80 00 00"), 0, "float32 1.0");
    cr_assert_eq(data_hex("cb 3f f8 00 00 00 00 00 00"), 0, "float64 1.5");
    cr_assert_eq(data_hex("a3 61 62 63"), 0, "str");
    cr_assert_eq(data_hex("92 01 a1 61"), 0, "array");
    cr_assert_eq(data_hex("81 a1 6b 90"), 0, "map with str key");
    cr_assert_eq(data_hex("80"), 0, "empty map");
}

Test(wire, data_check_rejects_bin_and_ext)
{
    cr_assert_eq(data_hex("c4 01 00"), WIRE_EDATA, "bin 8");
    cr_assert_eq(data_hex("c5 00 01 00"), WIRE_EDATA, "bin 16");
    cr_assert_eq(data_hex("d4 01 00"), WIRE_EDATA, "fixext 1");
    cr_assert_eq(data_hex("c7 01 05 00"), WIRE_EDATA, "ext 8");
    cr_assert_eq(data_hex("d6 ff 00 00 00 00"), WIRE_EDATA, "timestamp ext");
    cr_assert_eq(data_hex("91 c4 00"), WIRE_EDATA, "bin inside an array");
    cr_assert_eq(data_hex("81 a1 61 d4 01 00"), WIRE_EDATA, "ext as a map value");
}

Test(wire, data_check_rejects_maps_with_non_string_keys)
{
    cr_assert_eq(data_hex("81 01 02"), WIRE_EDATA, "int key");
    cr_assert_eq(data_hex("81 c0 02"), WIRE_EDATA, "nil key");
    cr_assert_eq(data_hex("81 90 02"), WIRE_EDATA, "array key");
    cr_assert_eq(data_hex("81 c4 01 61 02"), WIRE_EDATA, "bin key");
    cr_assert_eq(data_hex("81 a2 61 00 02"), WIRE_EDATA, "NUL in a key");
    cr_assert_eq(data_hex("81 a1 61 a2 61 00"), 0, "NUL in a string value is fine");
}

Test(wire, data_check_rejects_nan_and_infinities)
{
    cr_assert_eq(data_hex("cb 7f f8 00 00 00 00 00 00"), WIRE_EDATA, "NaN");
    cr_assert_eq(data_hex("cb 7f f0 00 00 00 00 00 00"), WIRE_EDATA, "+Inf");
    cr_assert_eq(data_hex("cb ff f0 00 00 00 00 00 00"), WIRE_EDATA, "-Inf");
    cr_assert_eq(data_hex("ca 7f c0 00 00"), WIRE_EDATA, "float32 NaN");
    cr_assert_eq(data_hex("ca 7f 80 00 00"), WIRE_EDATA, "float32 Inf");
    cr_assert_eq(data_hex("91 cb 7f f8 00 00 00 00 00 00"), WIRE_EDATA, "nested NaN");
}

Test(wire, data_check_rejects_strings_that_are_not_utf8)
{
    cr_assert_eq(data_hex("a1 ff"), WIRE_EDATA);
    cr_assert_eq(data_hex("81 a1 ff 01"), WIRE_EDATA, "bad key");
    cr_assert_eq(data_hex("a3 ed a0 80"), WIRE_EDATA, "surrogate");
}

Test(wire, data_check_rejects_data_larger_than_max_data)
{
    struct wire_limits l = lim();
    uint8_t *b = malloc(2000);
    /* str 16 of n-3 bytes: a value of exactly n bytes */
    for (size_t n = 1023; n <= 1025; n++) {
        b[0] = 0xda;
        b[1] = (uint8_t)((n - 3) >> 8);
        b[2] = (uint8_t)(n - 3);
        memset(b + 3, 'x', n - 3);
        cr_assert_eq(wire_data_check(b, n, &l), n <= 1024 ? 0 : WIRE_EDATA, "n=%zu", n);
    }
    l.max_data = 3;
    cr_assert_eq(wire_data_check((const uint8_t *)"\x92\x01\x02", 3, &l), 0);
    cr_assert_eq(wire_data_check((const uint8_t *)"\x93\x01\x02\x03", 4, &l), WIRE_EDATA);
    free(b);
}

Test(wire, data_check_accepts_32_nested_containers_and_rejects_33)
{
    struct wire_limits l = lim();
    uint8_t b[40];
    memset(b, 0x91, sizeof b); /* [[[...]]] */
    b[31] = 0x90;              /* 32 containers: 31 x [x] around one [] */
    cr_assert_eq(wire_data_check(b, 32, &l), 0);
    b[31] = 0x91;
    b[32] = 0x90; /* 33 containers */
    cr_assert_eq(wire_data_check(b, 33, &l), WIRE_EDATA);
    /* maps count too: {"":{"":...null}} */
    uint8_t m[80];
    size_t n = 0;
    for (int i = 0; i < 33; i++) {
        m[n++] = 0x81;
        m[n++] = 0xa0;
    }
    m[n++] = 0xc0;
    cr_assert_eq(wire_data_check(m, n, &l), WIRE_EDATA, "33 nested maps");
    cr_assert_eq(wire_data_check(m + 2, n - 2, &l), 0, "32 nested maps");
}

Test(wire, data_check_rejects_truncated_trailing_and_reserved_bytes_as_malformed)
{
    cr_assert_eq(data_hex("92 01"), WIRE_EMALFORMED, "truncated array");
    cr_assert_eq(data_hex("a3 61"), WIRE_EMALFORMED, "truncated str");
    cr_assert_eq(data_hex("cd 01"), WIRE_EMALFORMED, "truncated uint16");
    cr_assert_eq(data_hex("01 02"), WIRE_EMALFORMED, "two values");
    cr_assert_eq(data_hex("c1"), WIRE_EMALFORMED, "reserved 0xc1");
    cr_assert_eq(data_hex(""), WIRE_EMALFORMED, "nothing");
}

Test(wire, data_check_does_not_trust_declared_counts)
{
    /* array 32 declaring 4 billion elements in a 5-byte value: refused at once, no allocation */
    cr_assert_eq(data_hex("dd ff ff ff ff"), WIRE_EMALFORMED);
    cr_assert_eq(data_hex("df ff ff ff ff"), WIRE_EMALFORMED);
    cr_assert_eq(data_hex("db ff ff ff ff 61"), WIRE_EMALFORMED);
}

Test(wire, skipping_a_value_needs_no_recursion_however_deep)
{
    size_t n = 100000;
    uint8_t *b = malloc(n);
    memset(b, 0x91, n - 1);
    b[n - 1] = 0xc0;
    struct wire__rd r = {b, n, 0};
    cr_assert_eq(wire__rd_skip(&r), 0);
    cr_assert_eq(r.off, n);
    r.off = 0;
    r.len = n - 1;
    cr_assert_eq(wire__rd_skip(&r), WIRE_EMALFORMED);
    free(b);
}

/* ---- msgpack -> JSON ---- */

Test(wire, data_to_json_converts_nested_maps_and_arrays)
{
    char *s = json_of_hex("82 a2 62 79 a3 61 6e 6e a1 78 93 01 80 91 c0");
    cr_assert_str_eq(s, "{\"by\":\"ann\",\"x\":[1,{},[null]]}");
    free(s);
    s = json_of_hex("94 c3 c2 e0 cf ff ff ff ff ff ff ff ff");
    cr_assert_str_eq(s, "[true,false,-32,18446744073709551615]");
    free(s);
    s = json_of_hex("d3 80 00 00 00 00 00 00 00");
    cr_assert_str_eq(s, "-9223372036854775808");
    free(s);
}

Test(wire, data_to_json_keeps_duplicate_keys_and_their_order)
{
    char *s = json_of_hex("82 a1 62 01 a1 62 02");
    cr_assert_str_eq(s, "{\"b\":1,\"b\":2}");
    free(s);
}

Test(wire, data_to_json_writes_the_shortest_float_that_reads_back)
{
    static const struct {
        const char *hex, *json;
    } cases[] = {
        {"cb 3f b9 99 99 99 99 99 9a", "0.1"},
        {"cb 3f f0 00 00 00 00 00 00", "1.0"},
        {"cb 80 00 00 00 00 00 00 00", "-0.0"},
        {"cb 3f f8 00 00 00 00 00 00", "1.5"},
        {"cb 7e 37 e4 3c 88 00 75 9c", "1e+300"},
        {"cb 40 09 21 fb 54 44 2d 18", "3.141592653589793"},
        {"cb 3f d5 55 55 55 55 55 55", "0.3333333333333333"},
        {"ca 3d cc cc cd", "0.1"}, /* float32 0.1f: shortest as a float */
        {"ca 3f 00 00 00", "0.5"},
        {"ca 4b 80 00 00", "16777216.0"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = json_of_hex(cases[i].hex);
        cr_assert_str_eq(s, cases[i].json, "case %zu", i);
        free(s);
    }
}

Test(wire, data_to_json_escapes_strings)
{
    char *s = json_of_hex("a8 22 5c 2f 0a 09 01 1f 7f");
    cr_assert_str_eq(s, "\"\\\"\\\\/\\n\\t\\u0001\\u001f\x7f\"");
    free(s);
    s = json_of_hex("a4 08 0c 0d 00");
    cr_assert_str_eq(s, "\"\\b\\f\\r\\u0000\"");
    free(s);
    /* non-ASCII passes through as UTF-8, U+2028 included */
    s = json_of_hex("a8 63 61 66 c3 a9 e2 80 a8");
    cr_assert_str_eq(s, "\"caf\xc3\xa9\xe2\x80\xa8\"");
    free(s);
}

Test(wire, data_to_json_leaves_the_output_unchanged_on_error)
{
    struct wire_buf out = {0};
    wire_buf_append(&out, "keep", 4);
    uint8_t b[16];
    size_t n = unhex("93 01 02 c4 00", b);
    cr_assert_eq(wire_data_to_json(b, n, &out), WIRE_EDATA);
    cr_assert_eq(out.len, 4);
    n = unhex("93 01 02", b);
    cr_assert_eq(wire_data_to_json(b, n, &out), WIRE_EMALFORMED);
    cr_assert_eq(out.len, 4);
    wire_buf_free(&out);
}

/* ---- JSON -> msgpack ---- */

Test(wire, json_to_data_packs_each_kind_in_its_smallest_form)
{
    expect_msgpack("null", "c0");
    expect_msgpack("true", "c3");
    expect_msgpack("false", "c2");
    expect_msgpack("0", "00");
    expect_msgpack("127", "7f");
    expect_msgpack("128", "cc 80");
    expect_msgpack("65536", "ce 00 01 00 00");
    expect_msgpack("9007199254740991", "cf 00 1f ff ff ff ff ff ff");
    expect_msgpack("-1", "ff");
    expect_msgpack("-33", "d0 df");
    expect_msgpack("1.5", "cb 3f f8 00 00 00 00 00 00");
    expect_msgpack("1e3", "cb 40 8f 40 00 00 00 00 00");
    expect_msgpack("\"ab\"", "a2 61 62");
    expect_msgpack("[]", "90");
    expect_msgpack("{}", "80");
}

Test(wire, json_to_data_keeps_key_order_and_nesting)
{
    expect_msgpack("{\"z\":1,\"a\":[true,{\"m\":null}]}", "82 a1 7a 01 a1 61 92 c3 81 a1 6d c0");
}

Test(wire, json_to_data_turns_unicode_escapes_into_utf8)
{
    expect_msgpack("\"\\u00e9\"", "a2 c3 a9");
    expect_msgpack("\"\\ud83d\\ude00\"", "a4 f0 9f 98 80");
    expect_msgpack("\"a\\u0000b\"", "a3 61 00 62");
    expect_msgpack("\"\\\"\\\\\\/\\n\"", "a4 22 5c 2f 0a");
}

Test(wire, json_to_data_rejects_text_that_is_not_one_json_value)
{
    static const char *bad[] = {"",     " ",           "{",   "[1,]", "{\"a\"}", "nul",     "1 2",
                                "{} x", "\"\\ud800\"", "'a'", "NaN",  "[1]]",    "\"\xff\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct wire_buf out = {0};
        cr_assert_eq(wire_json_to_data(bad[i], strlen(bad[i]), &out), WIRE_EMALFORMED,
                     "'%s' should be rejected", bad[i]);
        cr_assert_eq(out.len, 0);
        wire_buf_free(&out);
    }
}

Test(wire, json_round_trips_through_msgpack_unchanged)
{
    static const char *cases[] = {
        "{\"by\":\"ann\",\"rev\":12,\"tags\":[\"a\",\"b\"],\"ok\":true,\"x\":null}",
        "[1,-2,3.25,\"\\u0001\",{\"k\":{\"k\":{}}}]",
        "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"",
        "-9223372036854775808",
        "9223372036854775807",
        "0.1",
        "1e+300",
        "[]",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *s = json_via_msgpack(cases[i]);
        cr_assert_str_eq(s, cases[i]);
        free(s);
    }
}
