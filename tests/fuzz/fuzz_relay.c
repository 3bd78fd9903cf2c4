/* libFuzzer target for protocol/relay.c: the message a publish relays to every node through
 * Redis, as a node decodes it from the channel or a stream entry (anything that can write to
 * Redis can write there). A message that decodes must have every field within the bounds relay.h
 * states, pointing inside the input, and an origin that parses must write back the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_relay: %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int inside(const void *q, size_t n, const uint8_t *p, size_t len)
{
    const uint8_t *b = q;
    return b >= p && b + n <= p + len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct relay_msg m;
    if (relay_decode(data, size, &m) < 0) return 0;
    CHECK(m.topic_len >= 1 && m.topic_len <= WIRE_TOPIC_LEN_MAX);
    CHECK(inside(m.topic, m.topic_len, data, size));
    CHECK(wire_topic_check(m.topic, m.topic_len, NULL) == 0 || m.topic_len > 256);
    CHECK(strlen(m.epoch) == 16);
    CHECK(m.seq >= 1 && m.gpos >= 1);
    CHECK(m.data_len <= WIRE_DATA_MAX);
    CHECK(!m.data == !m.data_len);
    CHECK(!m.data || inside(m.data, m.data_len, data, size));
    CHECK(m.origin_len <= RELAY_ORIGIN_MAX);
    CHECK(!m.origin_len || inside(m.origin, m.origin_len, data, size));
    /* The origin names the node and request a node matches its own publishes by. */
    uint64_t node, req;
    int skip;
    const char *conn;
    size_t conn_len;
    if (relay_origin_parse(m.origin, m.origin_len, &node, &req, &skip, &conn, &conn_len) == 0) {
        CHECK(conn_len <= RELAY_CONN_MAX && (skip == 0 || skip == 1));
        CHECK(inside(conn, conn_len, data, size) || conn_len == 0);
        char back[RELAY_ORIGIN_MAX + 1];
        CHECK(relay_origin(back, sizeof back, node, req, skip, conn, conn_len) ==
              (int)m.origin_len);
        CHECK(memcmp(back, m.origin, m.origin_len) == 0);
    }
    return 0;
}
