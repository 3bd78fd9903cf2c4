/* Unit tests for protocol/sub.c: decoding of JSON and msgpack subscriber messages (every
 * malformed-input class), encoders' exact JSON, and round trips of every message in both
 * formats (docs/protocol.md §Subscriber protocol). */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sub.h"

static struct sub_msg msg;
static struct wire_buf in, out;

static void teardown(void)
{
    sub_msg_clear(&msg);
    wire_buf_free(&in);
    wire_buf_free(&out);
}

TestSuite(sub, .fini = teardown);

static struct wire_limits lim(void)
{
    struct wire_limits l;
    wire_limits_default(&l);
    return l;
}

static int json_lim(const char *text, const struct wire_limits *l)
{
    sub_msg_clear(&msg);
    return sub_decode(SUB_JSON, (const uint8_t *)text, strlen(text), l, &msg);
}

static int json(const char *text)
{
    struct wire_limits l = lim();
    return json_lim(text, &l);
}

/* The same message as msgpack: the JSON converted the way a msgpack client would pack it. */
static int mp(const char *text)
{
    struct wire_limits l = lim();
    sub_msg_clear(&msg);
    wire_buf_reset(&in);
    cr_assert_eq(wire_json_to_data(text, strlen(text), &in), 0, "bad test JSON %s", text);
    return sub_decode(SUB_MSGPACK, in.data, in.len, &l, &msg);
}

/* Both formats must agree. */
static int both(const char *text)
{
    int a = mp(text);
    int b = json(text);
    cr_assert_eq(a, b, "msgpack %d vs JSON %d for %s", a, b, text);
    return b;
}

static int hex(const char *h)
{
    unsigned v;
    sub_msg_clear(&msg);
    wire_buf_reset(&in);
    for (; *h; h++) {
        if (*h == ' ') continue;
        cr_assert(sscanf(h, "%2x", &v) == 1);
        uint8_t b = (uint8_t)v;
        wire_buf_append(&in, &b, 1);
        h++;
    }
    return sub_decode(SUB_MSGPACK, in.data, in.len, NULL, &msg);
}

static int str_is(struct wire_str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

static void out_is(const char *want)
{
    cr_assert_eq(out.len, strlen(want), "got %.*s", (int)out.len, (const char *)out.data);
    cr_assert(memcmp(out.data, want, out.len) == 0, "got %.*s want %s", (int)out.len,
              (const char *)out.data, want);
}

/* Decode what the encoder wrote to out in format f. */
static void dec_out(enum sub_fmt f)
{
    sub_msg_clear(&msg);
    cr_assert_eq(sub_decode(f, out.data, out.len, NULL, &msg), 0, "decoding %.*s", (int)out.len,
                 (const char *)out.data);
}

/* ---- malformed input ---- */

Test(sub, rejects_bad_json)
{
    static const char *bad[] = {"",
                                "{",
                                "{\"type\":\"ping\"",
                                "{\"type\":ping}",
                                "{\"type\":\"ping\",}",
                                "{'type':'ping'}",
                                "{\"type\":\"ping\"} x",
                                "{\"type\":\"\\ud800\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(json(bad[i]), WIRE_EMALFORMED, "'%s'", bad[i]);
}

Test(sub, rejects_json_that_is_not_an_object)
{
    cr_assert_eq(json("[\"ping\"]"), WIRE_EMALFORMED);
    cr_assert_eq(json("\"ping\""), WIRE_EMALFORMED);
    cr_assert_eq(json("1"), WIRE_EMALFORMED);
    cr_assert_eq(json("null"), WIRE_EMALFORMED);
}

Test(sub, rejects_json_text_that_is_not_utf8)
{
    cr_assert_eq(json("{\"type\":\"ping\",\"x\":\"\xff\"}"), WIRE_EMALFORMED);
    cr_assert_eq(json("{\"type\":\"ping\",\"x\":\"\xc0\xaf\"}"), WIRE_EMALFORMED, "overlong");
    cr_assert_eq(json("{\"type\":\"ping\",\"x\":\"\xed\xa0\x80\"}"), WIRE_EMALFORMED, "surrogate");
}

Test(sub, rejects_payloads_longer_than_max_frame)
{
    struct wire_limits l = lim();
    l.max_frame = 10;
    cr_assert_eq(json_lim("{\"type\":\"ping\"}", &l), WIRE_ETOOBIG);
}

Test(sub, rejects_msgpack_that_is_not_one_map)
{
    cr_assert_eq(hex(""), WIRE_EMALFORMED, "empty");
    cr_assert_eq(hex("c1"), WIRE_EMALFORMED, "not msgpack");
    cr_assert_eq(hex("91 a4 70 69 6e 67"), WIRE_EMALFORMED, "array");
    cr_assert_eq(hex("81 a4 74 79 70 65"), WIRE_EMALFORMED, "truncated");
    cr_assert_eq(hex("81 a4 74 79 70 65 a4 70 69 6e 67 c0"), WIRE_EMALFORMED, "trailing");
    cr_assert_eq(hex("81 01 a4 70 69 6e 67"), WIRE_EMALFORMED, "int key");
}

Test(sub, rejects_a_missing_or_unknown_type)
{
    cr_assert_eq(both("{\"id\":1}"), WIRE_ETYPE);
    cr_assert_eq(both("{\"type\":\"publish\"}"), WIRE_ETYPE);
    cr_assert_eq(both("{\"type\":7}"), WIRE_ETYPE);
    cr_assert_eq(both("{\"type\":null}"), WIRE_ETYPE);
}

Test(sub, rejects_ids_that_are_not_non_negative_integers)
{
    static const char *bad[] = {"1.5", "-1", "\"7\"", "7.0", "1e2", "true", "null", "[1]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"type\":\"sub\",\"id\":%s,\"topics\":[\"a\"]}", bad[i]);
        cr_assert_eq(both(text), WIRE_EFIELD, "%s", text);
    }
}

Test(sub, accepts_ids_up_to_2_53_minus_1_and_rejects_larger)
{
    cr_assert_eq(both("{\"type\":\"ping\",\"id\":9007199254740991}"), 0);
    cr_assert_eq(msg.id, 9007199254740991ull);
    cr_assert(msg.has_id);
    cr_assert_eq(both("{\"type\":\"ping\",\"id\":9007199254740992}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"ping\",\"id\":9223372036854775807}"), WIRE_EFIELD);
    cr_assert_eq(hex("82 a4 74 79 70 65 a4 70 69 6e 67 a2 69 64 cf ff ff ff ff ff ff ff ff"),
                 WIRE_EFIELD);
}

Test(sub, rejects_json_integers_beyond_64_bits_as_bad_fields)
{
    cr_assert_eq(json("{\"type\":\"ping\",\"id\":18446744073709551616}"), WIRE_EFIELD);
    cr_assert_eq(json("{\"type\":\"ping\",\"id\":9223372036854775808}"), WIRE_EFIELD);
    cr_assert_eq(json("{\"type\":\"ping\",\"id\":-99999999999999999999}"), WIRE_EFIELD);
}

Test(sub, rejects_fields_of_the_wrong_type)
{
    cr_assert_eq(both("{\"type\":\"hello\",\"v\":\"1\"}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"hello\",\"v\":1,\"token\":5}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"hello\",\"v\":1,\"client\":{}}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"sub\",\"id\":1,\"topics\":\"a\"}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"sub\",\"id\":1,\"topics\":[\"a\",null]}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"unsub\",\"id\":1,\"topics\":[1]}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"hint\",\"topic\":\"a\",\"seq\":\"1\"}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"hint\",\"topic\":1,\"seq\":1}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"hint\",\"topic\":\"a\",\"seq\":1,\"own\":1}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"hint\",\"topic\":\"a\",\"seq\":1,\"n\":0}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"hint\",\"topic\":\"a\",\"seq\":1,\"n\":4294967296}"),
                 WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"reset\",\"topic\":\"a\",\"seq\":1,\"reason\":2}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"error\",\"code\":1.0,\"msg\":\"x\"}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"error\",\"topic\":[],\"code\":1,\"msg\":\"x\"}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"ping\",\"id\":\"x\"}"), WIRE_EFIELD);
}

Test(sub, rejects_missing_required_fields)
{
    cr_assert_eq(both("{\"type\":\"hello\"}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"welcome\",\"v\":1,\"conn\":\"c\",\"epoch\":\"e\"}"),
                 WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"sub\",\"topics\":[\"a\"]}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"sub\",\"id\":1}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"subscribed\",\"id\":1,\"topic\":\"a\"}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"unsubscribed\",\"id\":1}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"hint\",\"seq\":1}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"reset\",\"topic\":\"a\",\"seq\":1}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"error\",\"code\":1}"), WIRE_EFIELD);
}

Test(sub, rejects_a_subscribe_with_no_topics)
{
    cr_assert_eq(both("{\"type\":\"sub\",\"id\":1,\"topics\":[]}"), WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"unsub\",\"id\":1,\"topics\":[]}"), WIRE_EFIELD);
}

Test(sub, rejects_more_topics_than_max_topics)
{
    struct wire_limits l = lim();
    l.max_topics = 1;
    cr_assert_eq(json_lim("{\"type\":\"sub\",\"id\":1,\"topics\":[\"a\"]}", &l), 0);
    cr_assert_eq(json_lim("{\"type\":\"sub\",\"id\":1,\"topics\":[\"a\",\"b\"]}", &l),
                 WIRE_ETOOMANY);
    cr_assert_eq(json_lim("{\"type\":\"unsub\",\"id\":1,\"topics\":[\"a\",\"b\"]}", &l),
                 WIRE_ETOOMANY);
    char text[1024] = "{\"type\":\"sub\",\"id\":1,\"topics\":[\"a\"";
    for (int i = 0; i < 64; i++)
        strcat(text, ",\"a\"");
    strcat(text, "]}");
    cr_assert_eq(both(text), WIRE_ETOOMANY, "65 topics over the default 64");
}

Test(sub, leaves_topic_names_to_the_caller)
{
    cr_assert_eq(both("{\"type\":\"sub\",\"id\":1,\"topics\":[\"a b\",\"*\",\"\"]}"), 0);
    cr_assert_eq(msg.ntopics, 3);
    cr_assert(str_is(msg.topics[1], "*"));
}

Test(sub, ignores_unknown_keys)
{
    cr_assert_eq(both("{\"type\":\"ping\",\"future\":{\"x\":[1,2]},\"id\":4}"), 0);
    cr_assert_eq(msg.id, 4);
    cr_assert_eq(hex("82 a4 74 79 70 65 a4 70 69 6e 67 a1 78 c4 01 00"), 0, "bin in unknown key");
}

Test(sub, lets_the_last_duplicate_key_win)
{
    cr_assert_eq(json("{\"type\":\"ping\",\"id\":1,\"id\":2}"), 0);
    cr_assert_eq(msg.id, 2);
    cr_assert_eq(hex("83 a4 74 79 70 65 a4 70 69 6e 67 a2 69 64 01 a2 69 64 02"), 0);
    cr_assert_eq(msg.id, 2);
}

/* ---- subscribe resume ---- */

Test(sub, decodes_resume_seqs_aligned_with_topics)
{
    const char *text = "{\"type\":\"sub\",\"id\":7,\"topics\":[\"a\",\"b\",\"c\"],"
                       "\"resume\":{\"epoch\":\"00ff00ff00ff00ff\",\"seqs\":{\"c\":9,\"a\":3}}}";
    for (int f = 0; f < 2; f++) {
        cr_assert_eq(f ? mp(text) : json(text), 0);
        cr_assert(str_is(msg.epoch, "00ff00ff00ff00ff"));
        cr_assert(msg.has_seq[0] && !msg.has_seq[1] && msg.has_seq[2]);
        cr_assert_eq(msg.seqs[0], 3);
        cr_assert_eq(msg.seqs[2], 9);
    }
}

Test(sub, rejects_resume_seqs_for_topics_not_in_the_message)
{
    cr_assert_eq(both("{\"type\":\"sub\",\"id\":7,\"topics\":[\"a\"],"
                      "\"resume\":{\"epoch\":\"e\",\"seqs\":{\"b\":1}}}"),
                 WIRE_EFIELD);
}

Test(sub, rejects_malformed_resume)
{
    cr_assert_eq(both("{\"type\":\"sub\",\"id\":7,\"topics\":[\"a\"],\"resume\":[]}"), WIRE_EFIELD);
    cr_assert_eq(
        both("{\"type\":\"sub\",\"id\":7,\"topics\":[\"a\"],\"resume\":{\"seqs\":{\"a\":1}}}"),
        WIRE_EFIELD, "no epoch");
    cr_assert_eq(
        both("{\"type\":\"sub\",\"id\":7,\"topics\":[\"a\"],\"resume\":{\"epoch\":\"e\"}}"),
        WIRE_EFIELD, "no seqs");
    cr_assert_eq(both("{\"type\":\"sub\",\"id\":7,\"topics\":[\"a\"],"
                      "\"resume\":{\"epoch\":1,\"seqs\":{}}}"),
                 WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"sub\",\"id\":7,\"topics\":[\"a\"],"
                      "\"resume\":{\"epoch\":\"e\",\"seqs\":{\"a\":-1}}}"),
                 WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"sub\",\"id\":7,\"topics\":[\"a\"],"
                      "\"resume\":{\"epoch\":\"e\",\"seqs\":{\"a\":1.5}}}"),
                 WIRE_EFIELD);
    cr_assert_eq(both("{\"type\":\"sub\",\"id\":7,\"topics\":[\"a\"],"
                      "\"resume\":{\"epoch\":\"e\",\"seqs\":[1]}}"),
                 WIRE_EFIELD);
}

/* ---- hint data ---- */

Test(sub, converts_json_hint_data_to_msgpack)
{
    const char *d = "{\"rev\":3,\"by\":\"ann\",\"f\":0.5,\"t\":[true,null]}";
    char text[256];
    snprintf(text, sizeof text, "{\"type\":\"hint\",\"topic\":\"doc:1\",\"seq\":4,\"data\":%s}", d);
    cr_assert_eq(json(text), 0);
    struct wire_buf want = {0};
    wire_json_to_data(d, strlen(d), &want);
    cr_assert_eq(msg.data_len, want.len);
    cr_assert(memcmp(msg.data, want.data, want.len) == 0);
    cr_assert_eq(msg.count, 1, "n absent means 1");
    cr_assert_eq(msg.own, 0);
    cr_assert_eq(mp(text), 0);
    cr_assert(memcmp(msg.data, want.data, want.len) == 0, "msgpack form: the raw value");
    wire_buf_free(&want);
}

Test(sub, keeps_nul_characters_in_json_data_strings)
{
    cr_assert_eq(json("{\"type\":\"hint\",\"topic\":\"a\",\"seq\":1,\"data\":\"x\\u0000y\"}"), 0);
    cr_assert_eq(msg.data_len, 4);
    cr_assert(memcmp(msg.data, "\xa3x\0y", 4) == 0);
}

Test(sub, rejects_hint_data_larger_than_max_data_or_too_deep)
{
    struct wire_limits l = lim();
    l.max_data = 4;
    cr_assert_eq(json_lim("{\"type\":\"hint\",\"topic\":\"a\",\"seq\":1,\"data\":\"abc\"}", &l), 0);
    cr_assert_eq(json_lim("{\"type\":\"hint\",\"topic\":\"a\",\"seq\":1,\"data\":\"abcd\"}", &l),
                 WIRE_EDATA);
    char text[256] = "{\"type\":\"hint\",\"topic\":\"a\",\"seq\":1,\"data\":";
    for (int i = 0; i < 33; i++)
        strcat(text, "[");
    for (int i = 0; i < 33; i++)
        strcat(text, "]");
    strcat(text, "}");
    cr_assert_eq(both(text), WIRE_EDATA);
}

Test(sub, rejects_msgpack_hint_data_json_cannot_carry)
{
    /* {"type":"hint","topic":"a","seq":1,"data":bin} */
    cr_assert_eq(hex("84 a4 74 79 70 65 a4 68 69 6e 74 a5 74 6f 70 69 63 a1 61 a3 73 65 71 01 "
                     "a4 64 61 74 61 c4 01 00"),
                 WIRE_EDATA);
}

/* ---- encoders: exact JSON ---- */

Test(sub, encodes_compact_json_with_keys_in_the_documented_order)
{
    struct wire_str t = {"doc:1", 5};
    cr_assert_eq(sub_encode_subscribed(SUB_JSON, &out, 3, t, 10), 0);
    out_is("{\"type\":\"subscribed\",\"id\":3,\"topic\":\"doc:1\",\"seq\":10}");
    wire_buf_reset(&out);
    cr_assert_eq(sub_encode_reset(SUB_JSON, &out, t, 0, "epoch"), 0);
    out_is("{\"type\":\"reset\",\"topic\":\"doc:1\",\"seq\":0,\"reason\":\"epoch\"}");
}

Test(sub, encodes_hint_n_own_and_data_only_when_they_say_something)
{
    struct sub_hint h = {{"doc:1", 5}, 8, NULL, 0, 1, 0};
    cr_assert_eq(sub_encode_hint(SUB_JSON, &out, &h), 0);
    out_is("{\"type\":\"hint\",\"topic\":\"doc:1\",\"seq\":8}");
    wire_buf_reset(&out);
    h.count = 0;
    cr_assert_eq(sub_encode_hint(SUB_JSON, &out, &h), 0);
    out_is("{\"type\":\"hint\",\"topic\":\"doc:1\",\"seq\":8}");
    wire_buf_reset(&out);
    const uint8_t data[] = {0x92, 0xcb, 0x3f, 0xb9, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9a, 0xc0};
    h = (struct sub_hint){{"doc:1", 5}, 8, data, sizeof data, 3, 1};
    cr_assert_eq(sub_encode_hint(SUB_JSON, &out, &h), 0);
    out_is("{\"type\":\"hint\",\"topic\":\"doc:1\",\"seq\":8,\"data\":[0.1,null],\"n\":3,"
           "\"own\":true}");
}

Test(sub, encodes_error_id_and_topic_only_when_present)
{
    struct wire_str none = {NULL, 0};
    cr_assert_eq(sub_encode_error(SUB_JSON, &out, 0, 0, none, 9, "send hello first"), 0);
    out_is("{\"type\":\"error\",\"code\":9,\"msg\":\"send hello first\"}");
    wire_buf_reset(&out);
    struct wire_str t = {"a b", 3};
    cr_assert_eq(sub_encode_error(SUB_JSON, &out, 1, 0, t, 5, "bad topic"), 0);
    out_is("{\"type\":\"error\",\"id\":0,\"topic\":\"a b\",\"code\":5,\"msg\":\"bad topic\"}");
}

Test(sub, encodes_ping_with_and_without_id)
{
    cr_assert_eq(sub_encode_ping(SUB_JSON, &out, 0, 0), 0);
    out_is("{\"type\":\"ping\"}");
    wire_buf_reset(&out);
    cr_assert_eq(sub_encode_pong(SUB_JSON, &out, 1, 5), 0);
    out_is("{\"type\":\"pong\",\"id\":5}");
}

Test(sub, keeps_json_output_valid_utf8_when_echoing_a_bad_topic)
{
    struct wire_str t = {"a\xff\x01\"", 4};
    cr_assert_eq(sub_encode_error(SUB_JSON, &out, 1, 2, t, 5, "bad topic"), 0);
    out_is("{\"type\":\"error\",\"id\":2,\"topic\":\"a\xef\xbf\xbd\\u0001\\\"\",\"code\":5,"
           "\"msg\":\"bad topic\"}");
    cr_assert(wire_utf8_valid((const char *)out.data, out.len));
    dec_out(SUB_JSON);
}

Test(sub, encoders_leave_the_buffer_unchanged_on_bad_data)
{
    const uint8_t bin[] = {0xc4, 0x01, 0x00};
    struct sub_hint h = {{"a", 1}, 1, bin, sizeof bin, 1, 0};
    wire_buf_append(&out, "keep", 4);
    cr_assert_eq(sub_encode_hint(SUB_JSON, &out, &h), WIRE_EDATA);
    cr_assert_eq(out.len, 4);
}

/* ---- round trips in both formats ---- */

static const enum sub_fmt fmts[] = {SUB_JSON, SUB_MSGPACK};

Test(sub, round_trips_hello)
{
    for (int i = 0; i < 2; i++) {
        wire_buf_reset(&out);
        cr_assert_eq(sub_encode_hello(fmts[i], &out, 1, "web/1.0"), 0);
        dec_out(fmts[i]);
        cr_assert_eq(msg.type, SUB_HELLO);
        cr_assert_eq(msg.version, 1);
        cr_assert(str_is(msg.client, "web/1.0"));
        cr_assert_eq(msg.token.len, 0);
    }
}

Test(sub, round_trips_welcome)
{
    for (int i = 0; i < 2; i++) {
        wire_buf_reset(&out);
        cr_assert_eq(sub_encode_welcome(fmts[i], &out, 1, "c42", "0123456789abcdef", "nudged"), 0);
        dec_out(fmts[i]);
        cr_assert_eq(msg.type, SUB_WELCOME);
        cr_assert(str_is(msg.conn, "c42"));
        cr_assert(str_is(msg.epoch, "0123456789abcdef"));
        cr_assert(str_is(msg.server, "nudged"));
    }
}

Test(sub, round_trips_subscribe_with_resume)
{
    struct wire_str t[] = {{"project:17", 10}, {"user:42", 7}};
    const uint8_t has[] = {0, 1};
    const uint64_t seqs[] = {0, 77};
    for (int i = 0; i < 2; i++) {
        wire_buf_reset(&out);
        cr_assert_eq(sub_encode_subscribe(fmts[i], &out, 9, t, 2, "e1", has, seqs, 0), 0);
        dec_out(fmts[i]);
        cr_assert_eq(msg.type, SUB_SUBSCRIBE);
        cr_assert_eq(msg.id, 9);
        cr_assert(msg.has_id);
        cr_assert_eq(msg.ntopics, 2);
        cr_assert(str_is(msg.topics[1], "user:42"));
        cr_assert(str_is(msg.epoch, "e1"));
        cr_assert(!msg.has_seq[0] && msg.has_seq[1]);
        cr_assert_eq(msg.seqs[1], 77);
        wire_buf_reset(&out);
        cr_assert_eq(sub_encode_subscribe(fmts[i], &out, 9, t, 1, NULL, NULL, NULL, 0), 0);
        dec_out(fmts[i]);
        cr_assert_null(msg.epoch.p, "no resume");
        cr_assert_eq(msg.ntopics, 1);
    }
}

Test(sub, round_trips_the_replay_mode_of_a_resume)
{
    struct wire_str t[] = {{"a", 1}};
    const uint8_t has[] = {1};
    const uint64_t seqs[] = {5};
    for (int i = 0; i < 2; i++) {
        for (int all = 0; all < 2; all++) {
            wire_buf_reset(&out);
            cr_assert_eq(sub_encode_subscribe(fmts[i], &out, 1, t, 1, "e1", has, seqs, all), 0);
            dec_out(fmts[i]);
            cr_assert_eq(msg.replay_all, all);
        }
    }
    /* msgpack, all = 1: {"type":"sub","id":1,"topics":["a"],
     *                    "resume":{"epoch":"e1","replay":"all","seqs":{"a":5}}} */
    out_is("\x84\xa4type\xa3sub\xa2id\x01\xa6topics\x91\xa1"
           "a"
           "\xa6resume\x83\xa5"
           "epoch\xa2"
           "e1"
           "\xa6replay\xa3"
           "all"
           "\xa4seqs\x81\xa1"
           "a"
           "\x05");
}

Test(sub, accepts_replay_changes_and_rejects_any_other_replay_mode)
{
    cr_assert_eq(json("{\"type\":\"sub\",\"id\":1,\"topics\":[\"a\"],\"resume\":{\"epoch\":"
                      "\"e\",\"seqs\":{},\"replay\":\"changes\"}}"),
                 0);
    cr_assert_eq(msg.replay_all, 0);
    cr_assert_eq(json("{\"type\":\"sub\",\"id\":1,\"topics\":[\"a\"],\"resume\":{\"epoch\":"
                      "\"e\",\"seqs\":{},\"replay\":\"every\"}}"),
                 WIRE_EFIELD);
    cr_assert_eq(json("{\"type\":\"sub\",\"id\":1,\"topics\":[\"a\"],\"resume\":{\"epoch\":"
                      "\"e\",\"seqs\":{},\"replay\":1}}"),
                 WIRE_EFIELD);
}

Test(sub, round_trips_subscribed_unsubscribe_and_unsubscribed)
{
    struct wire_str t[] = {{"a", 1}, {"b", 1}};
    for (int i = 0; i < 2; i++) {
        wire_buf_reset(&out);
        cr_assert_eq(sub_encode_subscribed(fmts[i], &out, 2, t[0], 1234567), 0);
        dec_out(fmts[i]);
        cr_assert_eq(msg.type, SUB_SUBSCRIBED);
        cr_assert_eq(msg.seq, 1234567);
        cr_assert(str_is(msg.topic, "a"));
        wire_buf_reset(&out);
        cr_assert_eq(sub_encode_unsubscribe(fmts[i], &out, 3, t, 2), 0);
        dec_out(fmts[i]);
        cr_assert_eq(msg.type, SUB_UNSUBSCRIBE);
        cr_assert_eq(msg.ntopics, 2);
        wire_buf_reset(&out);
        cr_assert_eq(sub_encode_unsubscribed(fmts[i], &out, 3, t[1]), 0);
        dec_out(fmts[i]);
        cr_assert_eq(msg.type, SUB_UNSUBSCRIBED);
        cr_assert_eq(msg.id, 3);
        cr_assert(str_is(msg.topic, "b"));
    }
}

Test(sub, round_trips_hint_with_data)
{
    const char *d = "{\"title\":\"caf\xc3\xa9\",\"n\":[1,-1,2.5],\"ok\":false}";
    struct wire_buf data = {0};
    wire_json_to_data(d, strlen(d), &data);
    struct sub_hint h = {{"doc:9", 5}, 41, data.data, data.len, 5, 1};
    for (int i = 0; i < 2; i++) {
        wire_buf_reset(&out);
        cr_assert_eq(sub_encode_hint(fmts[i], &out, &h), 0);
        dec_out(fmts[i]);
        cr_assert_eq(msg.type, SUB_HINT);
        cr_assert(str_is(msg.topic, "doc:9"));
        cr_assert_eq(msg.seq, 41);
        cr_assert_eq(msg.count, 5);
        cr_assert_eq(msg.own, 1);
        cr_assert_eq(msg.data_len, data.len);
        cr_assert(memcmp(msg.data, data.data, data.len) == 0);
    }
    wire_buf_free(&data);
}

Test(sub, round_trips_reset_error_ping_and_pong)
{
    struct wire_str t = {"x", 1};
    for (int i = 0; i < 2; i++) {
        wire_buf_reset(&out);
        cr_assert_eq(sub_encode_reset(fmts[i], &out, t, 12, "epoch"), 0);
        dec_out(fmts[i]);
        cr_assert_eq(msg.type, SUB_RESET);
        cr_assert_eq(msg.seq, 12);
        cr_assert(str_is(msg.reason, "epoch"));
        wire_buf_reset(&out);
        cr_assert_eq(sub_encode_error(fmts[i], &out, 1, 6, t, 11, "not subscribed"), 0);
        dec_out(fmts[i]);
        cr_assert_eq(msg.type, SUB_ERROR);
        cr_assert(msg.has_id);
        cr_assert_eq(msg.id, 6);
        cr_assert_eq(msg.code, 11);
        cr_assert(str_is(msg.topic, "x"));
        cr_assert(str_is(msg.msg, "not subscribed"));
        wire_buf_reset(&out);
        cr_assert_eq(sub_encode_ping(fmts[i], &out, 0, 0), 0);
        dec_out(fmts[i]);
        cr_assert_eq(msg.type, SUB_PING);
        cr_assert(!msg.has_id);
        wire_buf_reset(&out);
        cr_assert_eq(sub_encode_pong(fmts[i], &out, 1, 99), 0);
        dec_out(fmts[i]);
        cr_assert_eq(msg.type, SUB_PONG);
        cr_assert(msg.has_id);
        cr_assert_eq(msg.id, 99);
    }
}

Test(sub, msg_clear_is_safe_twice_and_on_zeroed_messages)
{
    struct sub_msg *m = calloc(1, sizeof *m);
    sub_msg_clear(m);
    cr_assert_eq(sub_decode(SUB_JSON, (const uint8_t *)"{\"type\":\"ping\"}", 15, NULL, m), 0);
    sub_msg_clear(m);
    sub_msg_clear(m);
    free(m);
}

Test(sub, leaves_nothing_to_clear_after_an_error)
{
    struct sub_msg *m = calloc(1, sizeof *m);
    cr_assert_eq(sub_decode(SUB_JSON, (const uint8_t *)"[1]", 3, NULL, m), WIRE_EMALFORMED);
    cr_assert_null(m->priv);
    cr_assert_eq(sub_decode(SUB_JSON, (const uint8_t *)"{\"type\":\"x\"}", 12, NULL, m),
                 WIRE_ETYPE);
    cr_assert_null(m->priv);
    free(m);
}

Test(sub, keeps_the_request_id_when_decoding_fails_later)
{
    cr_assert_eq(both("{\"type\":\"sub\",\"id\":8,\"topics\":[]}"), WIRE_EFIELD);
    cr_assert(msg.has_id);
    cr_assert_eq(msg.id, 8);
    cr_assert_null(msg.priv);
    cr_assert_eq(both("{\"type\":\"sub\",\"id\":\"8\",\"topics\":[\"a\"]}"), WIRE_EFIELD);
    cr_assert(!msg.has_id);
    cr_assert_eq(json("[1]"), WIRE_EMALFORMED);
    cr_assert(!msg.has_id);
}
