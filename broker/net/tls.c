/* tls: see tls.h. Memory BIOs keep OpenSSL away from the socket: the transport feeds it what
 * libuv read and writes what it produced, so a TLS connection never blocks the loop and the
 * publisher path's backpressure (libuv's write queue) also bounds the encrypted output. The
 * read side is bounded by the transport: it feeds at most one read (64 KiB) before draining the
 * plaintext. Renegotiation is off (a peer could otherwise make us work for free) and no session
 * tickets are issued (no resumption state to rotate); record buffers are released between
 * records, as libwebsockets does for wss: an idle TLS publisher holds ~17 KiB instead of ~31. */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static void last_error(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    if (e)
        ERR_error_string_n(e, buf, cap);
    else
        snprintf(buf, cap, "unknown error");
    ERR_clear_error();
}

static int readable(const char *what, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s %s: cannot read: %s", what, path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}

int tls_ctx_new(const char *cert, const char *key, SSL_CTX **out, char *err, size_t errlen)
{
    char why[200];
    *out = NULL;
    if (readable("--tls-cert", cert, err, errlen) < 0 ||
        readable("--tls-key", key, err, errlen) < 0)
        return -1;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "TLS: out of memory");
        return -1;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* an idle publisher keeps no record buffers */
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        last_error(why, sizeof(why));
        snprintf(err, errlen, "--tls-cert %s: not a usable PEM certificate (%s)", cert, why);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            snprintf(err, errlen, "--tls-key %s does not match the certificate in --tls-cert %s",
                     key, cert);
            goto fail;
        }
        last_error(why, sizeof(why));
        snprintf(err, errlen, "--tls-key %s: not a usable PEM private key for --tls-cert %s (%s)",
                 key, cert, why);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        snprintf(err, errlen, "--tls-key %s does not match the certificate in --tls-cert %s", key,
                 cert);
        goto fail;
    }
    *out = ctx;
    return 0;
fail:
    SSL_CTX_free(ctx);
    return -1;
}

void tls_ctx_free(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx);
}

int tls_check(const char *cert, const char *key, char *err, size_t errlen)
{
    SSL_CTX *ctx;
    if (tls_ctx_new(cert, key, &ctx, err, errlen) < 0) return -1;
    SSL_CTX_free(ctx);
    return 0;
}

SSL *tls_conn_new(SSL_CTX *ctx)
{
    SSL *ssl = SSL_new(ctx);
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    if (!ssl || !rb || !wb) {
        SSL_free(ssl);
        BIO_free(rb);
        BIO_free(wb);
        return NULL;
    }
    /* an empty read BIO says "retry", not "end of file" */
    BIO_set_mem_eof_return(rb, -1);
    SSL_set_bio(ssl, rb, wb); /* ssl owns both now */
    SSL_set_accept_state(ssl);
    return ssl;
}

void tls_conn_free(SSL *ssl)
{
    SSL_free(ssl);
}

int tls_conn_feed(SSL *ssl, const uint8_t *p, size_t n)
{
    if (n > (size_t)INT32_MAX) return TLS_FAIL;
    return BIO_write(SSL_get_rbio(ssl), p, (int)n) == (int)n ? TLS_OK : TLS_FAIL;
}

int tls_conn_read(SSL *ssl, uint8_t *buf, size_t cap, size_t *got, int *handshake)
{
    *got = 0;
    *handshake = 0;
    while (*got < cap) {
        size_t n = 0;
        int was_ready = SSL_is_init_finished(ssl);
        if (SSL_read_ex(ssl, buf + *got, cap - *got, &n) == 1) {
            *got += n;
            continue;
        }
        int e = SSL_get_error(ssl, 0);
        if (e == SSL_ERROR_WANT_READ) return TLS_WANT;
        /* WANT_WRITE cannot happen on a memory BIO; anything else ends the connection. */
        *handshake = !was_ready && !SSL_is_init_finished(ssl);
        ERR_clear_error();
        return TLS_FAIL;
    }
    return TLS_OK;
}

int tls_conn_write(SSL *ssl, const uint8_t *p, size_t n)
{
    if (!SSL_is_init_finished(ssl)) return TLS_WANT;
    size_t done = 0;
    if (n && SSL_write_ex(ssl, p, n, &done) != 1) { /* a memory BIO takes everything */
        ERR_clear_error();
        return TLS_FAIL;
    }
    return TLS_OK;
}

int tls_conn_take(SSL *ssl, uint8_t **out, size_t *n)
{
    BIO *wb = SSL_get_wbio(ssl);
    size_t pending = BIO_ctrl_pending(wb);
    *out = NULL;
    *n = 0;
    if (!pending) return TLS_OK;
    uint8_t *b = malloc(pending);
    if (!b) return TLS_FAIL;
    int r = BIO_read(wb, b, (int)pending);
    if (r <= 0) {
        free(b);
        return TLS_OK;
    }
    *out = b;
    *n = (size_t)r;
    return TLS_OK;
}

int tls_conn_ready(SSL *ssl)
{
    return SSL_is_init_finished(ssl);
}
