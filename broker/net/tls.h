/* tls: OpenSSL for the broker's listeners. The certificate and key are loaded and checked once
 * at start (tls_check, from config_parse); the publisher transport runs each connection through
 * memory BIOs (tls_conn_*) so libuv keeps doing the socket I/O; the WebSocket transport lets
 * libwebsockets load the same files (ws.c). TLS 1.2 is the minimum. */
#ifndef NUDGE_TLS_H
#define NUDGE_TLS_H

#include <stddef.h>
#include <stdint.h>

struct ssl_ctx_st;
struct ssl_st;

enum tls_rc {
    TLS_OK = 0,
    TLS_WANT = -1, /* needs more bytes from the peer */
    TLS_FAIL = -2, /* handshake or record failure: the connection is over */
};

/* A server context for cert/key (PEM paths). On success *out is owned by the caller (free with
 * tls_ctx_free). Returns 0, or -1 with a message naming the file at fault in err. */
int tls_ctx_new(const char *cert, const char *key, struct ssl_ctx_st **out, char *err,
                size_t errlen);
void tls_ctx_free(struct ssl_ctx_st *ctx);
/* tls_ctx_new + tls_ctx_free: can the broker start with these files? 0 or -1 with err. */
int tls_check(const char *cert, const char *key, char *err, size_t errlen);

/* A server-side connection on two memory BIOs (bytes in: tls_conn_feed; bytes out:
 * tls_conn_take). Owned by the caller (tls_conn_free). NULL when out of memory. */
struct ssl_st *tls_conn_new(struct ssl_ctx_st *ctx);
void tls_conn_free(struct ssl_st *ssl);
/* Hand n bytes read from the socket to OpenSSL (copied). 0 or TLS_FAIL (out of memory). */
int tls_conn_feed(struct ssl_st *ssl, const uint8_t *p, size_t n);
/* Decrypt into buf[0..cap): *got bytes of plaintext (0 when none yet). Returns TLS_OK when the
 * caller should call again (buf was filled), TLS_WANT when everything fed so far is consumed,
 * TLS_FAIL on a failure (a handshake failure sets *handshake to 1). */
int tls_conn_read(struct ssl_st *ssl, uint8_t *buf, size_t cap, size_t *got, int *handshake);
/* Encrypt n bytes of plaintext. Before the handshake has finished nothing is written and
 * TLS_WANT is returned (the caller keeps the bytes). 0, TLS_WANT or TLS_FAIL. */
int tls_conn_write(struct ssl_st *ssl, const uint8_t *p, size_t n);
/* Bytes OpenSSL wants sent (handshake, alerts, records): *out is malloc'd (caller frees) with
 * *n bytes, or NULL with *n = 0 when there are none. 0 or TLS_FAIL (out of memory). */
int tls_conn_take(struct ssl_st *ssl, uint8_t **out, size_t *n);
/* 1 once the handshake is complete. */
int tls_conn_ready(struct ssl_st *ssl);

#endif
