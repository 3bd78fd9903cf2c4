/* libFuzzer target for the HTTP publish endpoint's request heads (broker/net/hreq.c over the
 * vendored picohttpparser). The first two input bytes pick the body limit (64..65599), the rest
 * is what a client sent. Checked: the result is -1, 0 or 1; 0 only while fewer than
 * HREQ_HEAD_MAX bytes came; -1 always with a 400 or 431 and close; 1 with a head inside the
 * input and within HREQ_HEAD_MAX, a bearer key inside the head, a publish (status 0) only for a
 * body within the limit; the verdict on a complete head does not change when more bytes follow
 * it (pipelining: the next request cannot change this one); and the transport's use of it,
 * consuming request after request from one buffer as http.c does, always moves forward.
 * Self-contained: the Makefile's fuzz rule links protocol/ only, so hreq.c and picohttpparser.c
 * are included here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../broker/net/hreq.c"
#include "../../broker/vendor/picohttpparser.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void one(const uint8_t *p, size_t len, size_t max_body, struct hreq *r, int *rc)
{
    *rc = hreq_parse(p, len, max_body, r);
    CHECK(*rc >= -1 && *rc <= 1);
    if (*rc == 0) CHECK(len < HREQ_HEAD_MAX);
    if (*rc < 0) CHECK((r->status == 400 || r->status == 431) && r->close);
    if (*rc == 1) {
        CHECK(r->head_len > 0 && r->head_len <= len && r->head_len <= HREQ_HEAD_MAX);
        if (r->has_auth) CHECK(r->auth_off + r->auth_len <= r->head_len);
        if (r->status == 0) CHECK(r->body_len <= max_body);
        if (r->body_len > max_body) CHECK(r->status == 413 && r->close);
        CHECK(r->why || r->status == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t max_body = 64 + ((size_t)data[0] << 8 | data[1]);
    const uint8_t *p = data + 2;
    size_t len = size - 2;
    /* A copy of exactly len bytes, so ASan sees any read past the end. */
    uint8_t *buf = malloc(len ? len : 1);
    CHECK(buf);
    memcpy(buf, p, len);
    struct hreq r, r2;
    int rc, rc2;
    one(buf, len, max_body, &r, &rc);
    if (rc == 1) { /* the head alone gives the same verdict */
        uint8_t *head = malloc(r.head_len);
        CHECK(head);
        memcpy(head, buf, r.head_len);
        one(head, r.head_len, max_body, &r2, &rc2);
        CHECK(rc2 == 1 && r2.status == r.status && r2.close == r.close &&
              r2.body_len == r.body_len && r2.head_len == r.head_len && r2.has_auth == r.has_auth &&
              r2.auth_len == r.auth_len);
        free(head);
    }
    /* Request after request, as http.c consumes them. */
    size_t off = 0;
    for (int n = 0; n < 64 && off < len; n++) {
        one(buf + off, len - off, max_body, &r, &rc);
        if (rc <= 0 ||
            (r.close && r.status && r.status != 404 && r.status != 405 && r.status != 415))
            break;
        size_t used = r.head_len + r.body_len;
        if (used > len - off) break; /* the body is still to come */
        CHECK(used > 0);
        off += used;
    }
    free(buf);
    return 0;
}
