/* hreq: see hreq.h. picohttpparser splits the head (it never allocates and never reads past the
 * buffer); this file applies the endpoint's rules to what it found, in a fixed order: errors
 * that make the rest of the stream unreadable first (they close: a bad head, an unknown HTTP
 * version, a chunked body, a body over the limit), then what only concerns this request (path,
 * method, media type: answered, and the connection goes on once the body has been read and
 * dropped). Chunked bodies are refused (411) rather than decoded: every client this endpoint is
 * for (curl, serverless runtimes, webhook senders) sends Content-Length for a small JSON body,
 * and a body that is one length known up front is what lets the limit be judged on the head. */
#include "hreq.h"

#include <string.h>

#include "picohttpparser.h"

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Case-insensitive: is s[0..n) exactly lit? */
static int ieq(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    if (n != m) return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lit[i]) return 0;
    return 1;
}

/* Case-insensitive: does s[0..n) start with lit? */
static int iprefix(const char *s, size_t n, const char *lit)
{
    size_t m = strlen(lit);
    return n >= m && ieq(s, m, lit);
}

/* Does the comma-separated list s[0..n) hold token tok (case-insensitive)? */
static int has_token(const char *s, size_t n, const char *tok)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
            i++;
        size_t b = i;
        while (i < n && s[i] != ',')
            i++;
        size_t e = i;
        while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t'))
            e--;
        if (e > b && ieq(s + b, e - b, tok)) return 1;
    }
    return 0;
}

/* Content-Length: decimal digits only, at most 15 of them (no sign, no overflow). */
static int parse_length(const char *s, size_t n, size_t *out)
{
    size_t v = 0;
    if (n == 0 || n > 15) return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (size_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int fail(struct hreq *r, int status, const char *why)
{
    r->status = status;
    r->close = 1;
    r->why = why;
    return -1;
}

int hreq_parse(const uint8_t *p, size_t len, size_t max_body, struct hreq *r)
{
    const char *method, *path;
    size_t method_len, path_len, nh = HREQ_HEADERS_MAX;
    struct phr_header h[HREQ_HEADERS_MAX];
    int minor;
    memset(r, 0, sizeof(*r));
    size_t scan = len < HREQ_HEAD_MAX ? len : HREQ_HEAD_MAX;
    int rc = phr_parse_request((const char *)p, scan, &method, &method_len, &path, &path_len,
                               &minor, h, &nh, 0);
    if (rc == -2) {
        if (len < HREQ_HEAD_MAX) return 0;
        return fail(r, 431, "the request head is over 8 KiB");
    }
    if (rc < 0) return fail(r, 400, "malformed request head (or more than 32 headers)");
    r->head_len = (size_t)rc;
    if (minor != 0 && minor != 1) {
        r->status = 505;
        r->close = 1;
        r->why = "HTTP/1.1 or HTTP/1.0 only";
        return 1;
    }
    int conn_close = 0, conn_keep = 0, te = 0, has_len = 0, json = 0;
    size_t clen = 0;
    for (size_t i = 0; i < nh; i++) {
        const char *n = h[i].name, *v = h[i].value;
        size_t nl = h[i].name_len, vl = h[i].value_len;
        if (!n) return fail(r, 400, "folded header lines are not accepted");
        if (ieq(n, nl, "content-length")) {
            size_t x;
            if (parse_length(v, vl, &x) < 0 || (has_len && x != clen))
                return fail(r, 400, "bad Content-Length");
            clen = x;
            has_len = 1;
        } else if (ieq(n, nl, "transfer-encoding")) {
            te = 1;
        } else if (ieq(n, nl, "content-type")) {
            json = iprefix(v, vl, "application/json") &&
                   (vl == 16 || v[16] == ';' || v[16] == ' ' || v[16] == '\t');
        } else if (ieq(n, nl, "authorization")) {
            if (iprefix(v, vl, "bearer ")) {
                size_t o = 7;
                while (o < vl && (v[o] == ' ' || v[o] == '\t'))
                    o++;
                r->has_auth = 1;
                r->auth_off = (size_t)(v + o - (const char *)p);
                r->auth_len = vl - o;
            }
        } else if (ieq(n, nl, "connection")) {
            conn_close |= has_token(v, vl, "close");
            conn_keep |= has_token(v, vl, "keep-alive");
        } else if (ieq(n, nl, "expect")) {
            r->expect = ieq(v, vl, "100-continue");
        }
    }
    r->close = minor == 0 ? !conn_keep : conn_close;
    r->body_len = clen;
    if (te) {
        r->status = 411;
        r->close = 1;
        r->why = "chunked (Transfer-Encoding) bodies are not accepted: send Content-Length";
        return 1;
    }
    if (clen > max_body) {
        r->status = 413;
        r->close = 1;
        r->why = "the body is over --http-max-body";
        return 1;
    }
    const char *q = memchr(path, '?', path_len);
    if (q) path_len = (size_t)(q - path);
    if (path_len != 8 || memcmp(path, "/publish", 8) != 0) {
        r->status = 404;
        r->why = "not found: the endpoint is POST /publish";
    } else if (method_len != 4 || memcmp(method, "POST", 4) != 0) {
        r->status = 405;
        r->why = "POST /publish only";
    } else if (!has_len) {
        r->status = 411;
        r->close = 1;
        r->why = "POST /publish needs Content-Length";
    } else if (!json) {
        r->status = 415;
        r->why = "the body must be Content-Type: application/json";
    }
    return 1;
}
