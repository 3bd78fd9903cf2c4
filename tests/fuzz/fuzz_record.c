/* libFuzzer target for broker/engine/record.c, the disk store's record payloads as recovery
 * decodes them. The first byte picks the decoder (bit 0: floor, else topic), the rest is the
 * payload. A payload that decodes must be one the encoder writes: encoding the decoded record
 * gives back the same bytes, and every field is within the bounds record.h states. Self-contained:
 * the Makefile's fuzz rule links protocol/ only, so record.c is included here. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../broker/engine/record.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_record: %s:%d: %s\n", __FILE__, __LINE__, #cond);                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    if (data[0] & 1) {
        struct record_floor f;
        if (record_floor_decode(p, len, &f) < 0) return 0;
        uint8_t out[RECORD_FLOOR_SIZE];
        record_floor_encode(&f, out);
        CHECK(len == RECORD_FLOOR_SIZE && memcmp(out, p, len) == 0);
        return 0;
    }
    struct record_topic r;
    if (record_topic_decode(p, len, &r) < 0) return 0;
    CHECK(r.name_len >= 1 && r.name_len <= WIRE_TOPIC_LEN_MAX);
    CHECK(r.base <= r.seq);
    CHECK(r.data_len <= WIRE_DATA_MAX);
    CHECK(r.data_len == 0 || (r.flags & RECORD_HINT));
    CHECK((const uint8_t *)r.name >= p && (const uint8_t *)r.name + r.name_len <= p + len);
    CHECK(!r.data_len || (r.data >= p && r.data + r.data_len == p + len));
    size_t n = record_topic_size(&r);
    CHECK(n == len);
    uint8_t *out = malloc(n);
    CHECK(out);
    record_topic_encode(&r, out);
    CHECK(memcmp(out, p, n) == 0);
    free(out);
    return 0;
}
