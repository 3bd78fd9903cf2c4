/* Unit tests for protocol/relay.c: the key names of the Redis engine and the decoder of the
 * message every publish relays to every node (built here with msgpack-c, as Redis's cmsgpack
 * packs it: Lua strings as str). The script itself runs against a real Redis in
 * tests/integration/test_redis.c. */
#include <criterion/criterion.h>

#include <msgpack.h>
#include <string.h>

#include "relay.h"

struct fields {
    int n;             /* array length (8) */
    uint64_t version;  /* 1 */
    const char *topic; /* NULL: an int instead of a str */
    const char *epoch;
    int64_t seq, gpos, time_ms;
    const char *data;
    size_t data_len;
    int data_bin; /* data as msgpack bin instead of str */
    const char *origin;
};

static struct fields good(void)
{
    return (struct fields){8,
                           1,
                           "project:17",
                           "5f0c2a9e7b1d4c38",
                           18,
                           1234,
                           1764672000000,
                           "\x81\xa1"
                           "a\x01",
                           4,
                           0,
                           "n1:1f"};
}

static msgpack_sbuffer sb;

static void pack(const struct fields *f)
{
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, (size_t)f->n);
    msgpack_pack_uint64(&pk, f->version);
    if (f->topic) {
        msgpack_pack_str(&pk, strlen(f->topic));
        msgpack_pack_str_body(&pk, f->topic, strlen(f->topic));
    } else {
        msgpack_pack_int(&pk, 7);
    }
    msgpack_pack_str(&pk, strlen(f->epoch));
    msgpack_pack_str_body(&pk, f->epoch, strlen(f->epoch));
    msgpack_pack_int64(&pk, f->seq);
    msgpack_pack_int64(&pk, f->gpos);
    msgpack_pack_int64(&pk, f->time_ms);
    if (f->data_bin) {
        msgpack_pack_bin(&pk, f->data_len);
        msgpack_pack_bin_body(&pk, f->data, f->data_len);
    } else {
        msgpack_pack_str(&pk, f->data_len);
        msgpack_pack_str_body(&pk, f->data, f->data_len);
    }
    if (f->n > 7) {
        msgpack_pack_str(&pk, strlen(f->origin));
        msgpack_pack_str_body(&pk, f->origin, strlen(f->origin));
    }
}

static int decode(const struct fields *f, struct relay_msg *m)
{
    pack(f);
    return relay_decode((const uint8_t *)sb.data, sb.size, m);
}

static void fini(void)
{
    msgpack_sbuffer_destroy(&sb);
}

TestSuite(relay, .init = NULL, .fini = fini);

Test(relay, decodes_every_field_pointing_into_the_buffer)
{
    struct fields f = good();
    struct relay_msg m;
    cr_assert_eq(decode(&f, &m), 0);
    cr_assert_eq(m.topic_len, 10);
    cr_assert(!memcmp(m.topic, "project:17", 10));
    cr_assert(m.topic >= sb.data && m.topic < sb.data + sb.size);
    cr_assert_str_eq(m.epoch, "5f0c2a9e7b1d4c38");
    cr_assert_eq(m.seq, 18);
    cr_assert_eq(m.gpos, 1234);
    cr_assert_eq(m.time_ms, 1764672000000ull);
    cr_assert_eq(m.data_len, 4);
    cr_assert(!memcmp(m.data,
                      "\x81\xa1"
                      "a\x01",
                      4));
    cr_assert_eq(m.origin_len, 5);
    cr_assert(!memcmp(m.origin, "n1:1f", 5));
}

Test(relay, empty_data_is_none_and_bin_data_is_accepted)
{
    struct fields f = good();
    f.data = "", f.data_len = 0, f.origin = "";
    struct relay_msg m;
    cr_assert_eq(decode(&f, &m), 0);
    cr_assert_null(m.data);
    cr_assert_eq(m.origin_len, 0);
    f = good();
    f.data_bin = 1;
    cr_assert_eq(decode(&f, &m), 0);
    cr_assert_eq(m.data_len, 4);
}

Test(relay, refuses_each_malformed_field)
{
    struct relay_msg m;
    struct fields f;
    f = good(), f.version = 2;
    cr_expect_eq(decode(&f, &m), WIRE_EFIELD, "another version");
    f = good(), f.n = 7;
    cr_expect_eq(decode(&f, &m), WIRE_EMALFORMED, "an array of 7");
    f = good(), f.topic = NULL;
    cr_expect_eq(decode(&f, &m), WIRE_EFIELD, "topic not a str");
    f = good(), f.topic = "";
    cr_expect_eq(decode(&f, &m), WIRE_ETOPIC, "empty topic");
    f = good(), f.topic = "a b";
    cr_expect_eq(decode(&f, &m), WIRE_ETOPIC, "a space in the topic");
    f = good(), f.epoch = "5F0C2A9E7B1D4C38";
    cr_expect_eq(decode(&f, &m), WIRE_EFIELD, "upper-case epoch");
    f = good(), f.epoch = "5f0c2a9e7b1d4c3";
    cr_expect_eq(decode(&f, &m), WIRE_EFIELD, "15 characters");
    f = good(), f.seq = 0;
    cr_expect_eq(decode(&f, &m), WIRE_EFIELD, "seq 0");
    f = good(), f.gpos = 0;
    cr_expect_eq(decode(&f, &m), WIRE_EFIELD, "gpos 0");
    f = good(), f.seq = -1;
    cr_expect_eq(decode(&f, &m), WIRE_EFIELD, "negative seq");
    f = good(), f.data = "\xc1", f.data_len = 1;
    cr_expect_eq(decode(&f, &m), WIRE_EDATA, "data not MessagePack");
    f = good(), f.data = "\x01\x02", f.data_len = 2;
    cr_expect_eq(decode(&f, &m), WIRE_EDATA, "two values as data");
    char origin[RELAY_ORIGIN_MAX + 2];
    memset(origin, 'o', sizeof(origin) - 1);
    origin[sizeof(origin) - 1] = '\0';
    f = good(), f.origin = origin;
    cr_expect_eq(decode(&f, &m), WIRE_EFIELD, "origin too long");
}

Test(relay, refuses_truncated_and_trailing_bytes)
{
    struct fields f = good();
    struct relay_msg m;
    pack(&f);
    for (size_t n = 0; n < sb.size; n++)
        cr_expect_lt(relay_decode((const uint8_t *)sb.data, n, &m), 0, "%zu of %zu bytes", n,
                     sb.size);
    uint8_t more[256];
    cr_assert_lt(sb.size + 1, sizeof(more));
    memcpy(more, sb.data, sb.size);
    more[sb.size] = 0xc0;
    cr_expect_eq(relay_decode(more, sb.size + 1, &m), WIRE_EMALFORMED, "a nil after it");
}

Test(relay, keys_share_one_hash_tag_and_carry_the_topic_verbatim)
{
    char k[64];
    cr_assert_eq(relay_key(k, sizeof(k), "nudge", "epoch", NULL, 0), 14);
    cr_assert_str_eq(k, "nudge{n}:epoch");
    cr_assert_eq(relay_key(k, sizeof(k), "nudge", "m", "a}b{", 4), 15);
    cr_assert_str_eq(k, "nudge{n}:m:a}b{");
    cr_assert_gt(relay_key(k, sizeof(k), "app1", "x", "user:42", 7), 0);
    cr_assert_str_eq(k, "app1{n}:x:user:42");
    cr_assert_gt(relay_key(k, sizeof(k), "nudge", "gpos", NULL, 0), 0);
    cr_assert_gt(relay_key(k, sizeof(k), "nudge", "floor", NULL, 0), 0);
}

Test(relay, refuses_keys_that_do_not_fit_or_make_no_sense)
{
    char k[16];
    cr_expect_eq(relay_key(k, sizeof(k), "nudge", "m", "project:17", 10), WIRE_ETOOBIG);
    cr_expect_eq(relay_key(k, 14, "nudge", "epoch", NULL, 0), WIRE_ETOOBIG, "no room for NUL");
    cr_expect_eq(relay_key(k, sizeof(k), "nudge", "y", "a", 1), WIRE_EFIELD);
    cr_expect_eq(relay_key(k, sizeof(k), "", "epoch", NULL, 0), WIRE_EFIELD);
    cr_expect_eq(relay_key(k, sizeof(k), "a{b", "epoch", NULL, 0), WIRE_EFIELD);
}

Test(relay, an_origin_names_the_node_and_request_and_parses_back)
{
    char o[RELAY_ORIGIN_MAX + 1];
    int n = relay_origin(o, sizeof o, 0x0123456789abcdefULL, 42, 1, "conn7", 5);
    cr_assert_eq(n, RELAY_ORIGIN_HEAD + 5);
    cr_assert_str_eq(o, "0123456789abcdef000000000000002a1conn7");
    uint64_t node, req;
    int skip;
    const char *conn;
    size_t cl;
    cr_assert_eq(relay_origin_parse(o, (size_t)n, &node, &req, &skip, &conn, &cl), WIRE_OK);
    cr_assert(node == 0x0123456789abcdefULL && req == 42 && skip == 1);
    cr_assert(cl == 5 && !memcmp(conn, "conn7", 5));
    cr_assert_eq(relay_origin(o, sizeof o, 1, 2, 0, NULL, 0), RELAY_ORIGIN_HEAD, "no connection");
    cr_assert_eq(relay_origin(o, RELAY_ORIGIN_HEAD, 1, 2, 0, NULL, 0), WIRE_ETOOBIG, "no room");
}

Test(relay, an_origin_that_is_not_one_is_refused)
{
    uint64_t node, req;
    int skip;
    const char *conn;
    size_t cl;
    const char *bad[] = {
        "",                                  /* empty: another publisher's, not a node's */
        "0123456789abcdef000000000000002a",  /* no skip flag */
        "0123456789ABCDEF000000000000002a0", /* upper case */
        "0123456789abcdef000000000000002a2", /* skip neither 0 nor 1 */
        "0123456789abcdef00000000000000-a0", /* not hex */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(relay_origin_parse(bad[i], strlen(bad[i]), &node, &req, &skip, &conn, &cl),
                     WIRE_EFIELD, "'%s'", bad[i]);
    char big[RELAY_ORIGIN_MAX + 2];
    memset(big, '0', sizeof big);
    cr_expect_eq(relay_origin_parse(big, sizeof big, &node, &req, &skip, &conn, &cl), WIRE_EFIELD,
                 "longer than RELAY_ORIGIN_MAX");
}
