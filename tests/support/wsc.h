/* wsc: a small blocking WebSocket client for tests, written by hand on a plain socket so a test
 * can misbehave on purpose (malformed frames, raw bytes, never reading, vanishing mid-frame).
 *
 * Client frames are masked as RFC 6455 requires (wsc_send_frame_ex can send them unmasked).
 * Receiving reassembles fragmented messages, answers server pings with pongs, ignores pongs
 * (counted in pongs_seen) and returns a close frame as WSC_CLOSED with its code in close_code.
 * Every receive takes a timeout; timeout 0 only looks at bytes already available, so a test can
 * poll() many wsc fds and drain the readable ones. */
#ifndef NUDGE_TEST_WSC_H
#define NUDGE_TEST_WSC_H

#include <stddef.h>
#include <stdint.h>

#include "sub.h"
#include "wire.h"

enum wsc_op {
    WSC_OP_CONT = 0x0,
    WSC_OP_TEXT = 0x1,
    WSC_OP_BINARY = 0x2,
    WSC_OP_CLOSE = 0x8,
    WSC_OP_PING = 0x9,
    WSC_OP_PONG = 0xA,
};

enum wsc_rc {
    WSC_OK = 0,
    WSC_TIMEOUT = -1,
    WSC_CLOSED = -2,     /* a close frame arrived: code in close_code (1005 when it carried none) */
    WSC_EOF = -3,        /* TCP connection ended without a close frame (or was reset) */
    WSC_EPROTO = -4,     /* server bytes broke RFC 6455, or a message did not decode */
    WSC_EIO = -5,        /* socket error / handshake failure */
    WSC_UNEXPECTED = -6, /* a valid message of an unexpected type (helpers) */
};

struct wsc {
    int fd;
    struct ssl_st *ssl;         /* TLS (wsc_connect_tls) or NULL */
    struct ssl_ctx_st *ssl_ctx; /* owned with ssl */
    enum sub_fmt fmt;           /* SUB_MSGPACK when "nudge.msgpack.v1" was negotiated */
    char protocol[32];          /* Sec-WebSocket-Protocol the server chose ("" = none) */
    struct wire_buf in;         /* received bytes not yet parsed */
    struct wire_buf msg;        /* payload of the last message returned by wsc_recv (owned) */
    int msg_op;                 /* its opcode (WSC_OP_TEXT / BINARY / CLOSE) */
    uint16_t close_code;        /* from the server's close frame */
    char close_reason[128];
    int closed;     /* 1 once a close frame or EOF was seen */
    int sent_close; /* 1 once we sent a close frame */
    int auto_pong;  /* answer pings (default 1) */
    unsigned pings_seen, pongs_seen;
    uint64_t next_id;       /* request ids for sub/unsub helpers (starts at 1) */
    char conn_id[64];       /* from welcome */
    char epoch[32];         /* from welcome */
    struct wire_limits lim; /* for sub_decode (WIRE_FRAME_MAX etc.) */
    int32_t last_error;     /* code of the last "error" a helper received (0 = none) */
    char last_error_topic[128];
};

/* Connect to ws://127.0.0.1:port/ offering subprotocol (NULL = none offered), check the 101 and
 * Sec-WebSocket-Accept. *w is overwritten. Returns 0 or WSC_EIO (w->fd closed). */
int wsc_connect(struct wsc *w, uint16_t port, const char *subprotocol);
/* wss://127.0.0.1:port/: TLS handshake verifying the broker's certificate against cafile
 * (NULL = the system's store) and the IP 127.0.0.1, then the upgrade as wsc_connect. Returns 0
 * or WSC_EIO (why in err, e.g. the certificate verification error; err may be NULL). */
int wsc_connect_tls(struct wsc *w, uint16_t port, const char *cafile, const char *subprotocol,
                    char *err, size_t errcap);
/* Same on an fd the caller connected (taken over, closed on failure too; -1 fails). */
int wsc_handshake_tls(struct wsc *w, int fd, uint16_t port, const char *cafile,
                      const char *subprotocol, char *err, size_t errcap);
/* Same with a path and the HTTP status seen (may be NULL; 0 when none was read). */
int wsc_connect_ex(struct wsc *w, uint16_t port, const char *path, const char *subprotocol,
                   int *http_status);
/* Same on an fd the caller already connected (e.g. with a small SO_RCVBUF); *w takes it over
 * (closed on failure too). */
int wsc_handshake(struct wsc *w, int fd, uint16_t port, const char *path, const char *subprotocol,
                  int *http_status);
/* Close the socket without any WebSocket close handshake (abort 1 = RST), free buffers. Safe
 * to call twice. */
void wsc_free(struct wsc *w, int abort);
/* Polite close: send close 1000, wait up to timeout_ms for the server's close / EOF, free. */
void wsc_close(struct wsc *w, int timeout_ms);

/* Send one frame: fin_op is the first header byte (e.g. 0x81 = FIN|text; 0x01 = text, no FIN),
 * masked when mask is 1. Returns 0 or WSC_EIO. */
int wsc_send_frame_ex(struct wsc *w, uint8_t fin_op, const void *p, size_t n, int mask);
/* Send one final masked frame with opcode op. */
int wsc_send_frame(struct wsc *w, int op, const void *p, size_t n);
int wsc_send_text(struct wsc *w, const char *s);
int wsc_send_binary(struct wsc *w, const void *p, size_t n);
int wsc_send_ping(struct wsc *w, const void *p, size_t n);
/* code 0 = empty close payload. */
int wsc_send_close(struct wsc *w, uint16_t code, const char *reason);
/* Raw bytes as they are (no framing). */
int wsc_send_raw(struct wsc *w, const void *p, size_t n);
/* Send a message payload in the connection's format (text frame for JSON, binary for msgpack). */
int wsc_send_msg(struct wsc *w, const void *p, size_t n);

/* Receive one complete text/binary message (or a close). On WSC_OK, w->msg holds the payload and
 * w->msg_op its opcode; valid until the next receive. */
int wsc_recv(struct wsc *w, int timeout_ms);
/* wsc_recv + sub_decode in the connection's format. The caller calls sub_msg_clear(out) after
 * WSC_OK. *out refers to w->msg: valid until the next receive. */
int wsc_recv_msg(struct wsc *w, struct sub_msg *out, int timeout_ms);

/* hello / welcome (fills conn_id, epoch). Returns 0, a wsc_rc, or WSC_UNEXPECTED (the reply was
 * not welcome; an error's code is in w->last_error). */
int wsc_hello(struct wsc *w);
/* Connect + hello in one call. */
int wsc_open(struct wsc *w, uint16_t port, const char *subprotocol);
/* Subscribe to topics[0..n) in one "sub" and wait (5 s) for one "subscribed" per topic (hints
 * arriving meanwhile are a WSC_UNEXPECTED failure). seqs_out (room for n, may be NULL) gets the
 * current seq of each topic. Returns 0, a wsc_rc, or WSC_UNEXPECTED when an error came back
 * (w->last_error, w->last_error_topic). */
int wsc_subscribe(struct wsc *w, const char *const *topics, size_t n, uint64_t *seqs_out);
/* NULL-terminated list of topic strings. */
int wsc_subscribe_v(struct wsc *w, ...);
/* Unsubscribe and wait for one "unsubscribed" per topic. */
int wsc_unsubscribe(struct wsc *w, const char *const *topics, size_t n);
/* Send {"type":"sub","id":id,"topics":[...]} without waiting (for error tests). */
int wsc_send_sub(struct wsc *w, uint64_t id, const char *const *topics, size_t n);

/* Receive until a message of type want arrives (others are dropped, pings answered). Returns 0 with
 * *out filled (caller clears), or a wsc_rc. */
int wsc_expect(struct wsc *w, enum sub_type want, struct sub_msg *out, int timeout_ms);

/* Compare a wire_str with a C string: 1 when equal. */
int wstr_eq(struct wire_str s, const char *c);

#endif
