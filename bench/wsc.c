/* wsc: a WebSocket client for the peers' adapters (wsc.h). It is as small as the load generator
 * allows: the key is fixed (the generator does not check Sec-WebSocket-Accept: every peer here
 * is a local process we started), client frames carry a zero mask (valid per RFC 6455 §5.3, the
 * server still unmasks), and server frames are parsed in place, with no copy unless a stream
 * packet spans two frames (wsc_input's rest). Extensions are never offered, so no frame is
 * compressed and RSV bits must be zero. */
#include "wsc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define WSC_HEAD_MAX 8192

int wsc_upgrade(struct pbuf *out, const char *host, int port, const char *path, const char *proto)
{
    return pbuf_printf(out,
                       "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                       "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
                       path, host, port, proto ? "Sec-WebSocket-Protocol: " : "",
                       proto ? proto : "", proto ? "\r\n" : "");
}

long wsc_upgraded(const uint8_t *p, size_t n, const char *who, int idx)
{
    const uint8_t *e = memmem(p, n, "\r\n\r\n", 4);
    if (!e) {
        if (n <= WSC_HEAD_MAX) return 0;
        fprintf(stderr, "nudge-bench: %s %d: an upgrade answer over %d bytes\n", who, idx,
                WSC_HEAD_MAX);
        return -EPROTO;
    }
    if (n < 12 || (memcmp(p, "HTTP/1.1 101", 12) != 0 && memcmp(p, "HTTP/1.0 101", 12) != 0)) {
        fprintf(stderr, "nudge-bench: %s %d: upgrade refused: %.*s\n", who, idx,
                (int)(e - p > 300 ? 300 : e - p), p);
        return -EPROTO;
    }
    return (long)(e - p) + 4;
}

int wsc_frame_head(struct pbuf *out, uint8_t op, size_t n)
{
    uint8_t h[14];
    size_t hl = 0;
    h[hl++] = (uint8_t)(0x80 | op);
    if (n < 126) {
        h[hl++] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        h[hl++] = 0x80 | 126;
        h[hl++] = (uint8_t)(n >> 8);
        h[hl++] = (uint8_t)n;
    } else {
        h[hl++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[hl++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    memset(h + hl, 0, 4);
    hl += 4;
    return pbuf_put(out, h, hl);
}

int wsc_frame(struct pbuf *out, uint8_t op, const void *p, size_t n)
{
    int rc = wsc_frame_head(out, op, n);
    return rc < 0 ? rc : pbuf_put(out, p, n);
}

/* Payload bytes of a stream: parsed in place when nothing is pending (the usual case: whole
 * packets in one frame), else joined to what is. */
static long wsc_feed(struct peer_conn *c, const uint8_t *m, size_t len,
                     const struct peer_events *ev, wsc_parse_fn parse, struct pbuf *rest)
{
    if (rest->len == 0) {
        long used = parse(c, m, len, ev);
        if (used < 0) return used;
        return (size_t)used < len ? pbuf_put(rest, m + used, len - (size_t)used) : 0;
    }
    int rc = pbuf_put(rest, m, len);
    if (rc < 0) return rc;
    long used = parse(c, rest->p, rest->len, ev);
    if (used < 0) return used;
    memmove(rest->p, rest->p + used, rest->len - (size_t)used);
    rest->len -= (size_t)used;
    return 0;
}

long wsc_input(struct peer_conn *c, const uint8_t *p, size_t n, const struct peer_events *ev,
               wsc_parse_fn parse, struct wsc_stream *stream)
{
    size_t off = 0;
    if (stream && stream->left) { /* the rest of a data frame begun in an earlier read */
        size_t k = n < stream->left ? n : stream->left;
        long rc = wsc_feed(c, p, k, ev, parse, &stream->rest);
        if (rc < 0) return rc;
        stream->left -= k;
        off = k;
    }
    while (n - off >= 2) {
        const uint8_t *f = p + off;
        size_t avail = n - off, plen = f[1] & 0x7f, hl = 2;
        uint8_t op = f[0] & 0x0f;
        if (f[1] & 0x80 || f[0] & 0x70) {
            fprintf(stderr, "nudge-bench: connection %d: a masked or extended server frame\n",
                    c->idx);
            return -EPROTO;
        }
        if (plen == 126) {
            if (avail < 4) break;
            plen = (size_t)f[2] << 8 | f[3];
            hl = 4;
        } else if (plen == 127) {
            if (avail < 10) break;
            uint64_t v = 0;
            for (int i = 0; i < 8; i++)
                v = v << 8 | f[2 + i];
            if (v > ((uint64_t)1 << 40)) return -EMSGSIZE;
            plen = (size_t)v;
            hl = 10;
        }
        int data = op == 0x0 || op == WSC_TEXT || op == WSC_BINARY;
        if (avail - hl < plen) {
            if (!stream || !data) break; /* a whole message, or a control frame: wait for it */
            size_t have = avail - hl;    /* a stream takes what there is of the frame */
            long rc = wsc_feed(c, f + hl, have, ev, parse, &stream->rest);
            if (rc < 0) return rc;
            stream->left = plen - have;
            return (long)n;
        }
        const uint8_t *m = f + hl;
        off += hl + plen;
        long rc = 0;
        if (data && stream) {
            rc = wsc_feed(c, m, plen, ev, parse, &stream->rest);
        } else if (data) {
            if (!(f[0] & 0x80) || op == 0) {
                fprintf(stderr, "nudge-bench: connection %d: a fragmented message\n", c->idx);
                return -EPROTO;
            }
            rc = parse(c, m, plen, ev);
            if (rc >= 0 && (size_t)rc != plen) rc = -EPROTO;
        } else if (op == 0x8) {
            fprintf(stderr, "nudge-bench: connection %d closed by the server: %d %.*s\n", c->idx,
                    plen >= 2 ? (m[0] << 8) | m[1] : 0, plen > 2 ? (int)plen - 2 : 0, m + 2);
            return -ECONNRESET;
        } else if (op == 0x9) {
            rc = wsc_frame(&c->out, 0xA, m, plen);
        } /* else a pong */
        if (rc < 0) return rc;
    }
    return (long)off;
}

void wsc_stream_free(struct wsc_stream *s)
{
    pbuf_free(&s->rest);
    s->left = 0;
}

int wsc_u32(const uint8_t *p, size_t n, uint32_t *v)
{
    if (n == 0 || n > 10) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        x = x * 10 + (uint64_t)(p[i] - '0');
    }
    if (x > UINT32_MAX) return -1;
    *v = (uint32_t)x;
    return 0;
}
