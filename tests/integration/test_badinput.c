/* Bad input, one test per class: what the broker answers (docs/protocol.md §Errors, §Limits),
 * whether the offending connection stays usable or is closed, and — every time — that the
 * broker still serves a fresh subscriber and publisher afterwards (nudged_probe) and exits 0
 * under ASan (no leak on any error path). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "nudge.h"
#include "pub.h"
#include "sub.h"
#include "subcheck.h"
#include "wire.h"
#include "wsc.h"

/* ---- helpers ------------------------------------------------------------------------------- */

static void probe_and_stop(struct nudged *d)
{
    subcheck_probe(d);
    cr_assert_eq(nudged_stop(d), 0, "nudged did not exit 0 (leak or crash?)");
}

/* Tiny msgpack writer, so tests can build maps the codec would never produce. */
static void mp_byte(struct wire_buf *b, uint8_t v)
{
    cr_assert_eq(wire_buf_append(b, &v, 1), 0);
}
static void mp_str(struct wire_buf *b, const char *s)
{
    size_t n = strlen(s);
    cr_assert(n < 256);
    if (n < 32) {
        mp_byte(b, (uint8_t)(0xa0 | n));
    } else {
        mp_byte(b, 0xd9);
        mp_byte(b, (uint8_t)n);
    }
    cr_assert_eq(wire_buf_append(b, s, n), 0);
}
static void mp_uint(struct wire_buf *b, uint8_t v)
{
    cr_assert(v < 128);
    mp_byte(b, v);
}

/* Prefix body with its 4-byte big-endian length. */
static void frame_of(struct wire_buf *out, const void *body, size_t n)
{
    uint8_t h[4] = {(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    cr_assert_eq(wire_buf_append(out, h, 4), 0);
    cr_assert_eq(wire_buf_append(out, body, n), 0);
}

static void pub_open(struct pubraw *p, const struct nudged *d)
{
    cr_assert_eq(pubraw_connect(p, d->pub_port, 1), PUBRAW_OK, "raw publisher connect+hello");
}

/* The next frame from the broker must be an error with this code (and this id when id != 0). */
static void expect_pub_error(struct pubraw *p, int code, uint64_t id, const char *what)
{
    struct pub_msg m;
    int rc = pubraw_recv(p, &m, 5000);
    cr_assert_eq(rc, PUBRAW_OK, "%s: no answer (%d)", what, rc);
    cr_assert_eq(m.type, PUB_ERROR, "%s: got message type %d, expected an error", what,
                 (int)m.type);
    cr_expect_eq(m.code, code, "%s: error code %d (%.*s), expected %d (%s)", what, m.code,
                 (int)m.msg.len, m.msg.p, code, wire_code_name(code));
    if (id)
        cr_expect_eq(m.id, id, "%s: error carries id %llu, expected %llu", what,
                     (unsigned long long)m.id, (unsigned long long)id);
    cr_expect(m.msg.len > 0, "%s: error without msg", what);
    pub_msg_clear(&m);
}

static void expect_pub_closed(struct pubraw *p, const char *what)
{
    struct pub_msg m;
    int rc = pubraw_recv(p, &m, 5000);
    if (rc == PUBRAW_OK) pub_msg_clear(&m);
    cr_expect_eq(rc, PUBRAW_EOF, "%s: connection not closed (got %d, type %d)", what, rc,
                 rc == PUBRAW_OK ? (int)m.type : 0);
}

/* A valid publish on the same connection is acked with one seq. */
static void expect_pub_usable(struct pubraw *p, uint64_t id, const char *what)
{
    const char *t[1] = {"still/usable"};
    cr_assert_eq(pubraw_publish(p, id, t, 1, NULL, 0), PUBRAW_OK);
    struct pub_msg m;
    int rc = pubraw_recv(p, &m, 5000);
    cr_assert_eq(rc, PUBRAW_OK, "%s: no ack for a valid publish afterwards (%d)", what, rc);
    cr_expect(m.type == PUB_ACK && m.id == id && m.nseqs == 1,
              "%s: valid publish afterwards got type %d id %llu code %d", what, (int)m.type,
              (unsigned long long)m.id, m.code);
    pub_msg_clear(&m);
}

static void ws_open(struct wsc *w, const struct nudged *d, const char *proto)
{
    cr_assert_eq(wsc_open(w, d->ws_port, proto), WSC_OK, "WebSocket connect+hello");
}

/* The next message must be an error with this code; returns nothing, checks id if has_id. */
static void expect_ws_error(struct wsc *w, int code, int has_id, uint64_t id, const char *what)
{
    struct sub_msg m;
    int rc = wsc_recv_msg(w, &m, 5000);
    cr_assert_eq(rc, WSC_OK, "%s: no answer (%d, close code %u)", what, rc, w->close_code);
    cr_assert_eq(m.type, SUB_ERROR, "%s: got type %d, expected an error", what, (int)m.type);
    cr_expect_eq(m.code, code, "%s: error code %d (%.*s), expected %d (%s)", what, m.code,
                 (int)m.msg.len, m.msg.p, code, wire_code_name(code));
    if (has_id)
        cr_expect(m.has_id && m.id == id, "%s: error id %llu (has_id %d), expected %llu", what,
                  (unsigned long long)m.id, m.has_id, (unsigned long long)id);
    sub_msg_clear(&m);
}

/* The connection still works: a subscribe is answered. */
static void expect_ws_usable(struct wsc *w, const char *what)
{
    static unsigned n;
    char topic[64];
    snprintf(topic, sizeof topic, "usable/%u", n++);
    const char *t[1] = {topic};
    int rc = wsc_subscribe(w, t, 1, NULL);
    cr_expect_eq(rc, WSC_OK, "%s: connection unusable afterwards (%d, error %d, close %u)", what,
                 rc, w->last_error, w->close_code);
}

/* A close frame with this code arrives (messages queued before it are skipped). */
static void expect_ws_close(struct wsc *w, uint16_t code, const char *what)
{
    int64_t end = now_ms() + 5000;
    int rc;
    do {
        rc = wsc_recv(w, (int)(end - now_ms() > 0 ? end - now_ms() : 0));
    } while (rc == WSC_OK && now_ms() < end); /* messages queued before the close */
    cr_expect_eq(rc, WSC_CLOSED, "%s: expected close %u, got rc %d", what, code, rc);
    if (rc == WSC_CLOSED)
        cr_expect_eq(w->close_code, code, "%s: close code %u (%s), expected %u", what,
                     w->close_code, w->close_reason, code);
}

/* ---- publisher protocol -------------------------------------------------------------------- */

Test(badinput, pub_truncated_frame_then_close_leaves_broker_serving)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct pubraw p;
    pub_open(&p, &d);
    /* A 100-byte frame announced, 10 bytes of it sent, then the publisher leaves. */
    uint8_t part[14] = {0, 0, 0, 100, 0x82, 0xa4, 't', 'y', 'p', 'e', 0xa3, 'p', 'u', 'b'};
    cr_assert_eq(pubraw_send(&p, part, sizeof part), PUBRAW_OK);
    sleep_ms(50);
    pubraw_close(&p, 0);
    cr_expect_eq(nudged_wait_stat(&d, "connections.pub", 0, 5000), 0,
                 "publisher connection not released");
    probe_and_stop(&d);
}

Test(badinput, pub_not_msgpack_gets_bad_frame_and_is_closed)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct pubraw p;
    pub_open(&p, &d);
    struct wire_buf f = {0};
    frame_of(&f, "\xc1\xc1\xc1\xc1", 4); /* 0xc1 is never valid msgpack */
    cr_assert_eq(pubraw_send(&p, f.data, f.len), PUBRAW_OK);
    expect_pub_error(&p, WIRE_C_BAD_FRAME, 0, "not msgpack");
    expect_pub_closed(&p, "not msgpack");
    pubraw_close(&p, 0);

    /* Valid msgpack that is not a map: same class. */
    pub_open(&p, &d);
    wire_buf_reset(&f);
    frame_of(&f, "\x93\x01\x02\x03", 4); /* [1,2,3] */
    cr_assert_eq(pubraw_send(&p, f.data, f.len), PUBRAW_OK);
    expect_pub_error(&p, WIRE_C_BAD_FRAME, 0, "msgpack array");
    expect_pub_closed(&p, "msgpack array");
    pubraw_close(&p, 0);

    /* A zero length prefix. */
    pub_open(&p, &d);
    cr_assert_eq(pubraw_send(&p, "\0\0\0\0", 4), PUBRAW_OK);
    expect_pub_error(&p, WIRE_C_BAD_FRAME, 0, "zero-length frame");
    expect_pub_closed(&p, "zero-length frame");
    pubraw_close(&p, 0);
    wire_buf_free(&f);
    probe_and_stop(&d);
}

Test(badinput, pub_oversized_length_prefix_gets_too_large_and_is_closed)
{
    struct nudged d;
    const char *args[] = {"--max-frame", "4096", NULL};
    subcheck_start(&d, args);
    struct pubraw p;
    pub_open(&p, &d);
    cr_assert_eq(pubraw_send(&p, "\x7f\xff\xff\xff", 4), PUBRAW_OK); /* 2 GiB announced */
    expect_pub_error(&p, WIRE_C_TOO_LARGE, 0, "2 GiB prefix");
    expect_pub_closed(&p, "2 GiB prefix");
    pubraw_close(&p, 0);

    /* One byte over --max-frame, body actually sent. */
    pub_open(&p, &d);
    size_t n = 4097;
    uint8_t *big = calloc(1, n + 4);
    cr_assert_not_null(big);
    big[2] = (uint8_t)(n >> 8);
    big[3] = (uint8_t)n;
    cr_assert_eq(pubraw_send(&p, big, 4), PUBRAW_OK);
    (void)pubraw_send(&p, big + 4, n); /* the broker may already have closed */
    free(big);
    expect_pub_error(&p, WIRE_C_TOO_LARGE, 0, "max_frame + 1");
    expect_pub_closed(&p, "max_frame + 1");
    pubraw_close(&p, 0);
    probe_and_stop(&d);
}

Test(badinput, pub_unknown_type_gets_error_and_connection_stays_usable)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct pubraw p;
    pub_open(&p, &d);
    struct wire_buf body = {0}, f = {0};
    mp_byte(&body, 0x82);
    mp_str(&body, "type");
    mp_str(&body, "bogus");
    mp_str(&body, "id");
    mp_uint(&body, 5);
    frame_of(&f, body.data, body.len);
    cr_assert_eq(pubraw_send(&p, f.data, f.len), PUBRAW_OK);
    expect_pub_error(&p, WIRE_C_UNKNOWN_TYPE, 0, "unknown type");
    expect_pub_usable(&p, 6, "unknown type");

    /* A map without "type". */
    wire_buf_reset(&body);
    wire_buf_reset(&f);
    mp_byte(&body, 0x81);
    mp_str(&body, "id");
    mp_uint(&body, 7);
    frame_of(&f, body.data, body.len);
    cr_assert_eq(pubraw_send(&p, f.data, f.len), PUBRAW_OK);
    expect_pub_error(&p, WIRE_C_UNKNOWN_TYPE, 0, "missing type");
    expect_pub_usable(&p, 8, "missing type");

    /* A publish whose "topics" is not an array: bad_field, still usable. */
    wire_buf_reset(&body);
    wire_buf_reset(&f);
    mp_byte(&body, 0x83);
    mp_str(&body, "type");
    mp_str(&body, "pub");
    mp_str(&body, "id");
    mp_uint(&body, 9);
    mp_str(&body, "topics");
    mp_str(&body, "not-an-array");
    frame_of(&f, body.data, body.len);
    cr_assert_eq(pubraw_send(&p, f.data, f.len), PUBRAW_OK);
    expect_pub_error(&p, WIRE_C_BAD_FIELD, 0, "topics not an array");
    expect_pub_usable(&p, 10, "topics not an array");

    wire_buf_free(&body);
    wire_buf_free(&f);
    pubraw_close(&p, 0);
    probe_and_stop(&d);
}

Test(badinput, pub_bad_topics_get_bad_topic_and_connection_stays_usable)
{
    struct nudged d;
    const char *args[] = {"--max-topic", "32", NULL};
    subcheck_start(&d, args);
    struct pubraw p;
    pub_open(&p, &d);
    const char *bad[] = {
        "",           /* empty */
        "with space", /* space */
        "bad\xff\xfe"
        "utf8", /* invalid UTF-8 */
        "over\xc0\xaf"
        "flow", /* overlong encoding of '/' */
        "ctl\x01"
        "char",                               /* control char */
        "wild*card",                          /* '*' is reserved */
        "x123456789012345678901234567890123", /* 34 bytes > --max-topic 32 */
    };
    uint64_t id = 100;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++, id++) {
        const char *t[2] = {"fine", bad[i]};
        char what[64];
        snprintf(what, sizeof what, "bad topic #%zu", i);
        cr_assert_eq(pubraw_publish(&p, id, t, 2, NULL, 0), PUBRAW_OK);
        expect_pub_error(&p, WIRE_C_BAD_TOPIC, id, what);
    }
    /* Nothing of a rejected publish was applied: "fine" is still at seq 0, so this is seq 1. */
    const char *t[1] = {"fine"};
    cr_assert_eq(pubraw_publish(&p, id, t, 1, NULL, 0), PUBRAW_OK);
    struct pub_msg m;
    cr_assert_eq(pubraw_recv(&p, &m, 5000), PUBRAW_OK);
    cr_expect(m.type == PUB_ACK && m.id == id && m.nseqs == 1 && m.seqs[0] == 1,
              "after rejected publishes: type %d id %llu seq %llu (expected ack seq 1)",
              (int)m.type, (unsigned long long)m.id, (unsigned long long)m.seqs[0]);
    pub_msg_clear(&m);
    /* A 32-byte topic (at the limit) and UTF-8 beyond ASCII are fine. */
    const char *good[2] = {"x1234567890123456789012345678901", "caf\xc3\xa9/\xe2\x9c\x93"};
    cr_assert_eq(pubraw_publish(&p, id + 1, good, 2, NULL, 0), PUBRAW_OK);
    cr_assert_eq(pubraw_recv(&p, &m, 5000), PUBRAW_OK);
    cr_expect(m.type == PUB_ACK && m.nseqs == 2, "topics at the limit: type %d code %d",
              (int)m.type, m.code);
    pub_msg_clear(&m);
    pubraw_close(&p, 0);
    probe_and_stop(&d);
}

Test(badinput, pub_data_too_large_or_not_json_gets_bad_data)
{
    struct nudged d;
    const char *args[] = {"--max-data", "100", NULL};
    subcheck_start(&d, args);
    struct pubraw p;
    pub_open(&p, &d);
    const char *t[1] = {"data"};

    /* 200-char string: msgpack 202 bytes > --max-data 100. */
    char json[256];
    json[0] = '"';
    memset(json + 1, 'x', 200);
    json[201] = '"';
    json[202] = '\0';
    struct wire_buf data = {0};
    cr_assert_eq(wire_json_to_data(json, strlen(json), &data), 0);
    cr_assert_eq(pubraw_publish(&p, 1, t, 1, data.data, data.len), PUBRAW_OK);
    expect_pub_error(&p, WIRE_C_BAD_DATA, 1, "data over --max-data");
    expect_pub_usable(&p, 2, "data over --max-data");

    /* bin is not representable in JSON. */
    const uint8_t bin[5] = {0xc4, 0x03, 'a', 'b', 'c'};
    cr_assert_eq(pubraw_publish(&p, 3, t, 1, bin, sizeof bin), PUBRAW_OK);
    expect_pub_error(&p, WIRE_C_BAD_DATA, 3, "bin data");
    expect_pub_usable(&p, 4, "bin data");

    /* NaN is not representable in JSON either. */
    const uint8_t nan[9] = {0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(pubraw_publish(&p, 5, t, 1, nan, sizeof nan), PUBRAW_OK);
    expect_pub_error(&p, WIRE_C_BAD_DATA, 5, "NaN data");
    expect_pub_usable(&p, 6, "NaN data");

    /* Exactly at the limit is fine: 98 chars -> 100 bytes of msgpack. */
    json[99] = '"';
    json[100] = '\0';
    wire_buf_reset(&data);
    cr_assert_eq(wire_json_to_data(json, strlen(json), &data), 0);
    cr_assert_eq(data.len, 100);
    cr_assert_eq(pubraw_publish(&p, 7, t, 1, data.data, data.len), PUBRAW_OK);
    struct pub_msg m;
    cr_assert_eq(pubraw_recv(&p, &m, 5000), PUBRAW_OK);
    cr_expect(m.type == PUB_ACK && m.id == 7, "data at the limit: type %d code %d", (int)m.type,
              m.code);
    pub_msg_clear(&m);
    wire_buf_free(&data);
    pubraw_close(&p, 0);
    probe_and_stop(&d);
}

Test(badinput, pub_too_many_topics_gets_too_many_topics)
{
    struct nudged d;
    const char *args[] = {"--max-topics", "4", NULL};
    subcheck_start(&d, args);
    struct pubraw p;
    pub_open(&p, &d);
    const char *five[5] = {"t1", "t2", "t3", "t4", "t5"};
    cr_assert_eq(pubraw_publish(&p, 11, five, 5, NULL, 0), PUBRAW_OK);
    expect_pub_error(&p, WIRE_C_TOO_MANY_TOPICS, 11, "5 topics with --max-topics 4");
    cr_assert_eq(pubraw_publish(&p, 12, five, 4, NULL, 0), PUBRAW_OK);
    struct pub_msg m;
    cr_assert_eq(pubraw_recv(&p, &m, 5000), PUBRAW_OK);
    cr_expect(m.type == PUB_ACK && m.id == 12 && m.nseqs == 4, "4 topics: type %d code %d",
              (int)m.type, m.code);
    pub_msg_clear(&m);
    pubraw_close(&p, 0);
    probe_and_stop(&d);
}

Test(badinput, pub_garbage_before_hello_is_refused)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct pubraw p;
    cr_assert_eq(pubraw_connect(&p, d.pub_port, 0), PUBRAW_OK);
    /* An HTTP request on the publisher port: "GET " read as a 1.19 GB length prefix. */
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(pubraw_send(&p, req, sizeof req - 1), PUBRAW_OK);
    struct pub_msg m;
    int rc = pubraw_recv(&p, &m, 5000);
    if (rc == PUBRAW_OK) {
        cr_expect_eq(m.type, PUB_ERROR);
        pub_msg_clear(&m);
        rc = pubraw_recv(&p, &m, 5000);
    }
    cr_expect_eq(rc, PUBRAW_EOF, "HTTP on the publisher port: connection not closed (%d)", rc);
    pubraw_close(&p, 0);
    probe_and_stop(&d);
}

Test(badinput, pub_publish_before_hello_gets_hello_required_and_stays_open)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct pubraw p;
    cr_assert_eq(pubraw_connect(&p, d.pub_port, 0), PUBRAW_OK);
    const char *t[1] = {"early"};
    cr_assert_eq(pubraw_publish(&p, 21, t, 1, NULL, 0), PUBRAW_OK);
    expect_pub_error(&p, WIRE_C_HELLO_REQUIRED, 21, "publish before hello");
    /* The connection stays open: hello, then the same publish succeeds with seq 1. */
    struct wire_buf h = {0};
    cr_assert_eq(pub_encode_hello(&h, WIRE_VERSION, "late"), 0);
    cr_assert_eq(pubraw_send(&p, h.data, h.len), PUBRAW_OK);
    wire_buf_free(&h);
    struct pub_msg m;
    cr_assert_eq(pubraw_recv(&p, &m, 5000), PUBRAW_OK, "no welcome after hello_required");
    cr_expect_eq(m.type, PUB_WELCOME);
    pub_msg_clear(&m);
    cr_assert_eq(pubraw_publish(&p, 22, t, 1, NULL, 0), PUBRAW_OK);
    cr_assert_eq(pubraw_recv(&p, &m, 5000), PUBRAW_OK);
    cr_expect(m.type == PUB_ACK && m.id == 22 && m.seqs[0] == 1,
              "publish after late hello: type %d id %llu seq %llu", (int)m.type,
              (unsigned long long)m.id, (unsigned long long)m.seqs[0]);
    pub_msg_clear(&m);
    /* A second hello: unexpected, still open. */
    cr_assert_eq(pub_encode_hello(&h, WIRE_VERSION, "again"), 0);
    cr_assert_eq(pubraw_send(&p, h.data, h.len), PUBRAW_OK);
    wire_buf_free(&h);
    expect_pub_error(&p, WIRE_C_UNEXPECTED, 0, "second hello");
    expect_pub_usable(&p, 23, "second hello");
    pubraw_close(&p, 0);
    probe_and_stop(&d);
}

/* ---- subscriber protocol ------------------------------------------------------------------- */

Test(badinput, ws_bad_json_gets_bad_frame_and_stays_usable)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w;
    ws_open(&w, &d, SUB_PROTO_JSON);
    const char *bad[] = {"{not json", "{\"type\":\"sub\",", "", "{\"type\":\"ping\"} trailing"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "bad JSON #%zu", i);
        cr_assert_eq(wsc_send_text(&w, bad[i]), WSC_OK);
        expect_ws_error(&w, WIRE_C_BAD_FRAME, 0, 0, what);
    }
    expect_ws_usable(&w, "bad JSON");
    wsc_close(&w, 1000);
    probe_and_stop(&d);
}

Test(badinput, ws_json_not_an_object_gets_bad_frame_and_stays_usable)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w;
    ws_open(&w, &d, NULL);
    const char *bad[] = {"[1,2,3]", "42", "\"hello\"", "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(wsc_send_text(&w, bad[i]), WSC_OK);
        expect_ws_error(&w, WIRE_C_BAD_FRAME, 0, 0, bad[i]);
    }
    expect_ws_usable(&w, "JSON not an object");
    /* msgpack connection: a binary frame that is not a map. */
    struct wsc b;
    ws_open(&b, &d, SUB_PROTO_MSGPACK);
    cr_assert_eq(wsc_send_binary(&b, "\x93\x01\x02\x03", 4), WSC_OK);
    expect_ws_error(&b, WIRE_C_BAD_FRAME, 0, 0, "msgpack array");
    cr_assert_eq(wsc_send_binary(&b, "\xc1", 1), WSC_OK);
    expect_ws_error(&b, WIRE_C_BAD_FRAME, 0, 0, "msgpack 0xc1");
    expect_ws_usable(&b, "msgpack not a map");
    wsc_close(&w, 1000);
    wsc_close(&b, 1000);
    probe_and_stop(&d);
}

Test(badinput, ws_unknown_or_missing_type_gets_unknown_type_and_stays_usable)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w;
    ws_open(&w, &d, SUB_PROTO_JSON);
    cr_assert_eq(wsc_send_text(&w, "{\"type\":\"bogus\",\"id\":3}"), WSC_OK);
    expect_ws_error(&w, WIRE_C_UNKNOWN_TYPE, 0, 0, "unknown type");
    cr_assert_eq(wsc_send_text(&w, "{\"id\":4,\"topics\":[\"a\"]}"), WSC_OK);
    expect_ws_error(&w, WIRE_C_UNKNOWN_TYPE, 0, 0, "missing type");
    cr_assert_eq(wsc_send_text(&w, "{\"type\":42}"), WSC_OK);
    expect_ws_error(&w, WIRE_C_UNKNOWN_TYPE, 0, 0, "type not a string");
    /* A broker->client type sent by the client: valid message, wrong direction. */
    cr_assert_eq(wsc_send_text(&w, "{\"type\":\"hint\",\"topic\":\"a\",\"seq\":1}"), WSC_OK);
    struct sub_msg m;
    cr_assert_eq(wsc_recv_msg(&w, &m, 5000), WSC_OK);
    cr_expect(m.type == SUB_ERROR && (m.code == WIRE_C_UNEXPECTED || m.code == WIRE_C_UNKNOWN_TYPE),
              "client-sent hint: type %d code %d", (int)m.type, m.code);
    sub_msg_clear(&m);
    /* sub with a bad field: bad_field. */
    cr_assert_eq(wsc_send_text(&w, "{\"type\":\"sub\",\"id\":5,\"topics\":\"a\"}"), WSC_OK);
    expect_ws_error(&w, WIRE_C_BAD_FIELD, 0, 0, "topics not an array");
    expect_ws_usable(&w, "unknown type");
    wsc_close(&w, 1000);
    probe_and_stop(&d);
}

Test(badinput, ws_message_of_the_other_kind_gets_bad_frame_and_stays_usable)
{
    /* docs/protocol.md §Connection, subprotocol and frames: a binary message on a JSON
     * connection, or text on a msgpack one, gets bad_frame and the connection stays open. */
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc j, b;
    ws_open(&j, &d, SUB_PROTO_JSON);
    ws_open(&b, &d, SUB_PROTO_MSGPACK);
    struct wire_buf mp = {0};
    cr_assert_eq(sub_encode_ping(SUB_MSGPACK, &mp, 1, 5), 0);
    cr_assert_eq(wsc_send_binary(&j, mp.data, mp.len), WSC_OK);
    expect_ws_error(&j, WIRE_C_BAD_FRAME, 0, 0, "binary message on a JSON connection");
    cr_assert_eq(wsc_send_text(&b, "{\"type\":\"ping\",\"id\":6}"), WSC_OK);
    expect_ws_error(&b, WIRE_C_BAD_FRAME, 0, 0, "text message on a msgpack connection");
    wire_buf_free(&mp);
    expect_ws_usable(&j, "binary on JSON");
    expect_ws_usable(&b, "text on msgpack");
    wsc_close(&j, 1000);
    wsc_close(&b, 1000);
    probe_and_stop(&d);
}

Test(badinput, ws_invalid_utf8_text_frame_is_closed_with_1007)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w;
    ws_open(&w, &d, SUB_PROTO_JSON);
    cr_assert_eq(wsc_send_text(&w, "{\"type\":\"sub\",\"id\":1,\"topics\":[\"\xff\xfe\"]}"),
                 WSC_OK);
    expect_ws_close(&w, 1007, "invalid UTF-8 in a text frame");
    wsc_free(&w, 0);

    /* Invalid UTF-8 split across two fragments, the second one completing a valid char
     * would be fine; here the second breaks it. */
    ws_open(&w, &d, SUB_PROTO_JSON);
    const char *frag = "{\"type\":\"ping\",\"x\":\"\xe2\x9c";
    cr_assert_eq(wsc_send_frame_ex(&w, 0x01, frag, strlen(frag), 1), WSC_OK);
    cr_assert_eq(wsc_send_frame_ex(&w, 0x80, "A\"}", 3, 1), WSC_OK);
    expect_ws_close(&w, 1007, "invalid UTF-8 across fragments");
    wsc_free(&w, 0);
    probe_and_stop(&d);
}

Test(badinput, ws_message_over_max_frame_is_closed_with_1009)
{
    /* Documented behaviour (docs/protocol.md §Limits, broker/ws.c): a WebSocket message over
     * --max-frame closes the connection with 1009; the broker does not buffer it. */
    struct nudged d;
    const char *args[] = {"--max-frame", "1024", NULL};
    subcheck_start(&d, args);
    struct wsc w;
    ws_open(&w, &d, SUB_PROTO_JSON);
    char *big = malloc(2048);
    cr_assert_not_null(big);
    int n = snprintf(big, 2048, "{\"type\":\"ping\",\"id\":1,\"pad\":\"");
    memset(big + n, 'p', 2000 - (size_t)n);
    memcpy(big + 2000, "\"}", 3);
    cr_assert_eq(wsc_send_text(&w, big), WSC_OK);
    expect_ws_close(&w, 1009, "2002-byte message with --max-frame 1024");
    wsc_free(&w, 0);

    /* The same size in fragments of 200 bytes: still over the limit. */
    ws_open(&w, &d, SUB_PROTO_JSON);
    size_t len = strlen(big);
    for (size_t off = 0; off < len; off += 200) {
        size_t k = len - off < 200 ? len - off : 200;
        uint8_t op =
            (uint8_t)((off == 0 ? WSC_OP_TEXT : WSC_OP_CONT) | (off + k == len ? 0x80 : 0));
        if (wsc_send_frame_ex(&w, op, big + off, k, 1) != WSC_OK) break; /* closed already */
    }
    expect_ws_close(&w, 1009, "fragmented message over --max-frame");
    wsc_free(&w, 0);

    /* Under the limit is fine: a 1000-byte message. */
    ws_open(&w, &d, SUB_PROTO_JSON);
    memcpy(big + 990, "\"}", 3);
    cr_assert_eq(wsc_send_text(&w, big), WSC_OK);
    struct sub_msg m;
    cr_assert_eq(wsc_recv_msg(&w, &m, 5000), WSC_OK, "992-byte ping not answered");
    cr_expect(m.type == SUB_PONG && m.id == 1, "992-byte ping: got type %d", (int)m.type);
    sub_msg_clear(&m);
    wsc_close(&w, 1000);
    free(big);
    probe_and_stop(&d);
}

Test(badinput, ws_bad_topics_in_subscribe_get_per_topic_errors)
{
    struct nudged d;
    const char *args[] = {"--max-topic", "32", NULL};
    subcheck_start(&d, args);
    struct wsc w;
    ws_open(&w, &d, SUB_PROTO_JSON);
    cr_assert_eq(wsc_send_text(&w, "{\"type\":\"sub\",\"id\":7,\"topics\":[\"ok1\",\"\","
                                   "\"bad topic\",\"star*\",\"ok2\",\"tab\\there\","
                                   "\"x123456789012345678901234567890123\"]}"),
                 WSC_OK);
    int subscribed = 0, errors = 0, named = 0;
    for (int i = 0; i < 7; i++) {
        struct sub_msg m;
        int rc = wsc_recv_msg(&w, &m, 5000);
        cr_assert_eq(rc, WSC_OK, "reply %d of 7 missing (%d)", i, rc);
        cr_expect(m.has_id && m.id == 7, "reply %d: id %llu", i, (unsigned long long)m.id);
        if (m.type == SUB_SUBSCRIBED) {
            cr_expect(wstr_eq(m.topic, "ok1") || wstr_eq(m.topic, "ok2"), "subscribed to '%.*s'",
                      (int)m.topic.len, m.topic.p);
            subscribed++;
        } else if (m.type == SUB_ERROR) {
            cr_expect_eq(m.code, WIRE_C_BAD_TOPIC, "per-topic error code %d", m.code);
            named += wstr_eq(m.topic, "bad topic") || wstr_eq(m.topic, "star*") ||
                     wstr_eq(m.topic, "tab\there") ||
                     wstr_eq(m.topic, "x123456789012345678901234567890123");
            errors++;
        } else {
            cr_expect(0, "unexpected reply type %d", (int)m.type);
        }
        sub_msg_clear(&m);
    }
    cr_expect_eq(subscribed, 2);
    cr_expect_eq(errors, 5);
    cr_expect_eq(named, 4, "per-topic errors name their topic: %d of 4 did", named);

    /* msgpack connection: a topic that is not UTF-8 at all. */
    struct wsc b;
    ws_open(&b, &d, SUB_PROTO_MSGPACK);
    const char *t[2] = {"\xff\xfe", "ok3"};
    cr_assert_eq(wsc_send_sub(&b, 9, t, 2), WSC_OK);
    int ok3 = 0, bad = 0;
    for (int i = 0; i < 2; i++) {
        struct sub_msg m;
        int rc = wsc_recv_msg(&b, &m, 5000);
        cr_assert_eq(rc, WSC_OK, "msgpack reply %d missing or undecodable (%d)", i, rc);
        if (m.type == SUB_SUBSCRIBED && wstr_eq(m.topic, "ok3"))
            ok3++;
        else if (m.type == SUB_ERROR && m.code == WIRE_C_BAD_TOPIC && m.id == 9)
            bad++;
        sub_msg_clear(&m);
    }
    cr_expect(ok3 == 1 && bad == 1, "invalid UTF-8 topic: ok3 %d, bad_topic %d", ok3, bad);

    /* The good subscriptions work. */
    nudge_client_t *c = subcheck_publisher(&d, NULL);
    const char *pt[1] = {"ok2"};
    cr_assert_eq(nudge_publish(c, pt, 1, NULL, NULL), NUDGE_OK);
    struct sub_msg m;
    cr_assert_eq(wsc_recv_msg(&w, &m, 5000), WSC_OK);
    cr_expect(m.type == SUB_HINT && wstr_eq(m.topic, "ok2"));
    sub_msg_clear(&m);
    nudge_close(c);
    wsc_close(&w, 1000);
    wsc_close(&b, 1000);
    probe_and_stop(&d);
}

Test(badinput, ws_subscribe_flood_beyond_max_subs_gets_too_many_subs_for_the_excess)
{
    struct nudged d;
    const char *args[] = {"--max-subs", "10", NULL};
    subcheck_start(&d, args);
    struct wsc w;
    ws_open(&w, &d, SUB_PROTO_JSON);
    const char *first[8] = {"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"};
    cr_assert_eq(wsc_subscribe(&w, first, 8, NULL), WSC_OK);
    const char *more[5] = {"s8", "s9", "s10", "s11", "s12"};
    cr_assert_eq(wsc_send_sub(&w, 50, more, 5), WSC_OK);
    int okn = 0, errn = 0;
    for (int i = 0; i < 5; i++) {
        struct sub_msg m;
        cr_assert_eq(wsc_recv_msg(&w, &m, 5000), WSC_OK, "reply %d of 5 missing", i);
        if (m.type == SUB_SUBSCRIBED) {
            cr_expect(wstr_eq(m.topic, "s8") || wstr_eq(m.topic, "s9"),
                      "subscribed beyond --max-subs: '%.*s'", (int)m.topic.len, m.topic.p);
            okn++;
        } else if (m.type == SUB_ERROR) {
            cr_expect_eq(m.code, WIRE_C_TOO_MANY_SUBS, "error code %d", m.code);
            errn++;
        }
        sub_msg_clear(&m);
    }
    cr_expect_eq(okn, 2, "subscribed %d of the 2 that fit", okn);
    cr_expect_eq(errn, 3, "too_many_subs for %d of the 3 excess", errn);

    /* Earlier subscriptions still work; the refused ones get nothing. */
    nudge_client_t *c = subcheck_publisher(&d, NULL);
    const char *pt[3] = {"s0", "s11", "s9"};
    cr_assert_eq(nudge_publish(c, pt, 3, NULL, NULL), NUDGE_OK);
    int got0 = 0, got9 = 0;
    for (int i = 0; i < 2; i++) {
        struct sub_msg m;
        cr_assert_eq(wsc_recv_msg(&w, &m, 5000), WSC_OK);
        got0 += m.type == SUB_HINT && wstr_eq(m.topic, "s0");
        got9 += m.type == SUB_HINT && wstr_eq(m.topic, "s9");
        sub_msg_clear(&m);
    }
    cr_expect(got0 == 1 && got9 == 1);
    struct sub_msg m;
    cr_expect_eq(wsc_recv_msg(&w, &m, 300), WSC_TIMEOUT, "hint for a refused subscription");
    /* Unsubscribing frees room. */
    const char *drop[1] = {"s0"};
    cr_assert_eq(wsc_unsubscribe(&w, drop, 1), WSC_OK);
    const char *again[1] = {"s12"};
    cr_expect_eq(wsc_subscribe(&w, again, 1, NULL), WSC_OK, "no room after unsubscribe (%d)",
                 w.last_error);
    nudge_close(c);
    wsc_close(&w, 1000);
    probe_and_stop(&d);
}

Test(badinput, ws_sub_before_hello_gets_hello_required)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w;
    cr_assert_eq(wsc_connect(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    const char *t[1] = {"early"};
    cr_assert_eq(wsc_send_sub(&w, 1, t, 1), WSC_OK);
    struct sub_msg m;
    int rc = wsc_recv_msg(&w, &m, 5000);
    cr_assert_eq(rc, WSC_OK, "no answer to sub before hello (%d, close %u)", rc, w.close_code);
    cr_expect(m.type == SUB_ERROR && m.code == WIRE_C_HELLO_REQUIRED,
              "sub before hello: type %d code %d", (int)m.type, m.code);
    sub_msg_clear(&m);
    wsc_free(&w, 0);

    /* A wrong version in hello: bad_version. */
    cr_assert_eq(wsc_connect(&w, d.ws_port, SUB_PROTO_JSON), WSC_OK);
    cr_assert_eq(wsc_send_text(&w, "{\"type\":\"hello\",\"v\":99}"), WSC_OK);
    rc = wsc_recv_msg(&w, &m, 5000);
    cr_assert_eq(rc, WSC_OK, "no answer to hello v99 (%d, close %u)", rc, w.close_code);
    cr_expect(m.type == SUB_ERROR && m.code == WIRE_C_BAD_VERSION, "hello v99: type %d code %d",
              (int)m.type, m.code);
    sub_msg_clear(&m);
    wsc_free(&w, 0);

    /* A second hello: unexpected. */
    ws_open(&w, &d, SUB_PROTO_JSON);
    cr_assert_eq(wsc_send_text(&w, "{\"type\":\"hello\",\"v\":1}"), WSC_OK);
    expect_ws_error(&w, WIRE_C_UNEXPECTED, 0, 0, "second hello");
    /* Unsubscribing a topic never subscribed: not_subscribed. */
    cr_assert_eq(wsc_send_text(&w, "{\"type\":\"unsub\",\"id\":4,\"topics\":[\"never\"]}"), WSC_OK);
    expect_ws_error(&w, WIRE_C_NOT_SUBSCRIBED, 1, 4, "unsub of a topic never subscribed");
    expect_ws_usable(&w, "after second hello");
    wsc_close(&w, 1000);
    probe_and_stop(&d);
}

Test(badinput, ws_unmasked_client_frame_is_tolerated_and_harms_no_one)
{
    /* RFC 6455 §5.1 says a server MUST close on an unmasked client frame; libwebsockets 4.1.6
     * does not check the mask bit and gives the application no way to see it. Masking protects
     * intermediaries from cache poisoning, not the server, so nudged documents the exception
     * (docs/protocol.md §WebSocket close codes) and this test pins what matters: the frame is
     * either refused with 1002 or handled like a masked one, the connection stays consistent,
     * and other clients are unaffected. */
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w;
    ws_open(&w, &d, SUB_PROTO_JSON);
    cr_assert_eq(wsc_send_frame_ex(&w, 0x81, "{\"type\":\"ping\",\"id\":5}", 22, 0), WSC_OK);
    int rc = wsc_recv(&w, 5000);
    if (rc == WSC_CLOSED) {
        cr_expect_eq(w.close_code, 1002, "unmasked frame: close code %u", w.close_code);
    } else {
        cr_assert_eq(rc, WSC_OK, "unmasked frame: neither closed nor answered (rc %d)", rc);
        cr_expect(w.msg.len >= 14 && memcmp(w.msg.data, "{\"type\":\"pong\"", 14) == 0,
                  "unmasked ping answered with '%.*s'", (int)w.msg.len, (const char *)w.msg.data);
        expect_ws_usable(&w, "after an unmasked frame");
    }
    wsc_free(&w, 0);
    probe_and_stop(&d);
}

Test(badinput, ws_reserved_opcode_is_closed_with_1002)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    struct wsc w;
    ws_open(&w, &d, SUB_PROTO_JSON);
    cr_assert_eq(wsc_send_frame_ex(&w, 0x83, "x", 1, 1), WSC_OK); /* opcode 3 is reserved */
    int rc = wsc_recv(&w, 5000);
    cr_expect(rc == WSC_CLOSED || rc == WSC_EOF, "opcode 3: connection not closed (%d)", rc);
    if (rc == WSC_CLOSED) cr_expect_eq(w.close_code, 1002, "opcode 3: close code %u", w.close_code);
    wsc_free(&w, 0);

    /* A continuation frame with no message started. */
    ws_open(&w, &d, SUB_PROTO_JSON);
    cr_assert_eq(wsc_send_frame_ex(&w, 0x80, "{}", 2, 1), WSC_OK);
    rc = wsc_recv(&w, 5000);
    cr_expect(rc == WSC_CLOSED || rc == WSC_EOF, "stray continuation: not closed (%d)", rc);
    if (rc == WSC_CLOSED)
        cr_expect_eq(w.close_code, 1002, "stray continuation: close code %u", w.close_code);
    wsc_free(&w, 0);
    probe_and_stop(&d);
}

/* ---- HTTP on the WebSocket and admin ports ------------------------------------------------- */

Test(badinput, ws_port_plain_http_get_gets_short_error_and_is_closed)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    int64_t t0 = now_ms();
    size_t n = 0;
    char *resp = http_raw(d.ws_port, req, sizeof req - 1, &n, 5000);
    int64_t took = now_ms() - t0;
    cr_assert_not_null(resp);
    int status = 0;
    sscanf(resp, "HTTP/1.%*d %d", &status);
    cr_expect(status >= 400 && status < 500, "plain GET on the ws port: status %d ('%.60s')",
              status, resp);
    cr_expect(n < 1024, "answer is not short: %zu bytes", n);
    cr_expect(took < 3000, "connection not closed by the broker (%lld ms)", (long long)took);
    free(resp);

    /* A request with a body, then silence: still answered and closed. */
    const char post[] = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcd";
    t0 = now_ms();
    resp = http_raw(d.ws_port, post, sizeof post - 1, &n, 5000);
    took = now_ms() - t0;
    cr_assert_not_null(resp);
    cr_expect(strncmp(resp, "HTTP/1.1 4", 10) == 0, "POST on the ws port: '%.60s'", resp);
    cr_expect(took < 3000, "POST: connection not closed (%lld ms)", (long long)took);
    free(resp);
    probe_and_stop(&d);
}

/* CPU seconds (user + system) the broker used so far, from /proc. */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long ut = 0, st = 0;
    /* fields after ")": state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Two POSTs with bodies in one write: lws 4.1.6 loops at 100% CPU on that (shared/NOTES.md). The
 * attacker keeps the socket open; within 2 s another subscriber must connect, subscribe and
 * receive a hint, and the broker must not be spinning. */
static void check_pipelined_posts(struct nudged *d, uint16_t port, const char *what)
{
    const char two[] = "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                       "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nworld";
    int fd = tcp_connect(port);
    cr_assert(fd >= 0);
    cr_assert_eq(send_all(fd, two, sizeof two - 1), 0);
    sleep_ms(100);
    double cpu0 = cpu_seconds(d->pid);
    int64_t t0 = now_ms();
    char why[256];
    int rc = nudged_probe(d, 2000, why, sizeof why);
    int64_t took = now_ms() - t0;
    cr_expect_eq(rc, 0, "%s: broker stalled after two pipelined POSTs: %s", what, why);
    cr_expect(took <= 2000, "%s: serving a fresh client took %lld ms", what, (long long)took);
    sleep_ms(500);
    double cpu1 = cpu_seconds(d->pid);
    int64_t wall = now_ms() - t0;
    cr_expect(cpu1 - cpu0 < 0.5 * (double)wall / 1000.0,
              "%s: broker burnt %.2f s CPU in %.2f s after two pipelined POSTs", what, cpu1 - cpu0,
              (double)wall / 1000.0);
    close(fd);
}

Test(badinput, ws_port_two_pipelined_posts_do_not_stall_the_broker)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    check_pipelined_posts(&d, d.ws_port, "ws port");
    probe_and_stop(&d);
}

Test(badinput, admin_port_two_pipelined_posts_do_not_stall_the_broker)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    check_pipelined_posts(&d, d.admin_port, "admin port");
    json_t *st = nudged_stats(&d);
    cr_expect_not_null(st, "/stats unavailable after pipelined POSTs on the admin port");
    json_decref(st);
    probe_and_stop(&d);
}

Test(badinput, admin_port_unknown_path_gets_404_and_stats_still_works)
{
    struct nudged d;
    subcheck_start(&d, NULL);
    int status = 0;
    char *body = http_get(d.admin_port, "/nope", &status);
    cr_expect_eq(status, 404, "GET /nope: status %d", status);
    free(body);
    const char junk[] = "\x16\x03\x01\x02\x00garbage that is not HTTP\r\n\r\n";
    size_t n;
    char *resp = http_raw(d.admin_port, junk, sizeof junk - 1, &n, 3000);
    free(resp);
    body = http_get(d.admin_port, "/stats", &status);
    cr_expect_eq(status, 200);
    free(body);
    probe_and_stop(&d);
}
