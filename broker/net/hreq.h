/* hreq: the HTTP publish endpoint's request heads, judged without I/O (picohttpparser underneath,
 * broker/vendor/). What a head asks for — a publish, or which error to answer and whether to
 * close after it — is decided here, so the transport (http.c) only moves bytes, and the fuzzer
 * (tests/fuzz/fuzz_hreq.c) can feed it anything. docs/protocol.md §HTTP publish. */
#ifndef NUDGE_HREQ_H
#define NUDGE_HREQ_H

#include <stddef.h>
#include <stdint.h>

#define HREQ_HEAD_MAX (8 * 1024) /* bytes of a request line and its headers */
#define HREQ_HEADERS_MAX 32      /* header lines in one request */

/* What one request head asks for. */
struct hreq {
    int status;      /* 0: a publish to run; else the HTTP status of the error to answer */
    int close;       /* close the connection after the answer */
    int expect;      /* "Expect: 100-continue" was sent */
    size_t head_len; /* bytes of the head (request line, headers, blank line) */
    size_t body_len; /* Content-Length (0 when absent) */
    size_t auth_off; /* the bearer key is p[auth_off .. auth_off + auth_len), when has_auth */
    size_t auth_len;
    int has_auth;
    const char *why; /* the error's message (static storage) */
};

/* Judge the head at the start of p[0..len), for bodies of at most max_body bytes. Returns 1 with
 * *r filled when the head is complete (the request is r->head_len + r->body_len bytes; r->status
 * 0 = POST /publish with Content-Type application/json and a Content-Length), 0 when more bytes
 * are needed (len < HREQ_HEAD_MAX), or -1 with r->status (400, 431) and r->close when these bytes
 * can never start a valid head. With status 413, 411 or 505 r->close is set: the body is not
 * read. Never reads past len. */
int hreq_parse(const uint8_t *p, size_t len, size_t max_body, struct hreq *r);

#endif
