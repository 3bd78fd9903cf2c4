/* jwt: see jwt.h. Deliberately independent of broker/session/token.c (its own base64url, its own
 * ES256 conversion, the other direction), so the verifier is checked against a second
 * implementation rather than against itself. */
#include "jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

int jwt_keygen(const char *dir, const char *name, const char *kind)
{
    EVP_PKEY *pkey = NULL;
    if (strcmp(kind, "rsa") == 0)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    else if (strcmp(kind, "rsa1024") == 0)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    else if (strcmp(kind, "ec") == 0)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    else if (strcmp(kind, "ec384") == 0)
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    if (!pkey) return -1;

    char path[4096];
    int rc = -1;
    FILE *f = NULL;
    snprintf(path, sizeof(path), "%s/%s.key", dir, name);
    if (!(f = fopen(path, "w")) || !PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL))
        goto out;
    fclose(f);
    snprintf(path, sizeof(path), "%s/%s.pub", dir, name);
    if (!(f = fopen(path, "w")) || !PEM_write_PUBKEY(f, pkey)) goto out;
    rc = 0;
out:
    if (f) fclose(f);
    EVP_PKEY_free(pkey);
    return rc;
}

char *jwt_b64url(const void *data, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = data;
    char *out = malloc(len / 3 * 4 + 5), *w = out;
    if (!out) return NULL;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        *w++ = abc[v >> 18 & 63];
        *w++ = abc[v >> 12 & 63];
        *w++ = abc[v >> 6 & 63];
        *w++ = abc[v & 63];
    }
    if (len - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        *w++ = abc[v >> 18 & 63];
        *w++ = abc[v >> 12 & 63];
    } else if (len - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        *w++ = abc[v >> 18 & 63];
        *w++ = abc[v >> 12 & 63];
        *w++ = abc[v >> 6 & 63];
    }
    *w = '\0';
    return out;
}

/* The signature of msg by the private key in the PEM file at path, with SHA-256; ES256 in the
 * JWS r||s form when the key is EC. */
static unsigned char *sign_pkey(const char *path, const char *msg, size_t *siglen)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    EVP_PKEY *pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!pkey) return NULL;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *sig = NULL, *out = NULL;
    size_t n = 0;
    if (!ctx || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, NULL, &n, (const unsigned char *)msg, strlen(msg)) != 1 ||
        !(sig = malloc(n)) ||
        EVP_DigestSign(ctx, sig, &n, (const unsigned char *)msg, strlen(msg)) != 1)
        goto out;
    if (EVP_PKEY_is_a(pkey, "EC")) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
        unsigned char *rs = malloc(64);
        if (es && rs && BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32) == 32 &&
            BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32) == 32) {
            out = rs;
            *siglen = 64;
        } else {
            free(rs);
        }
        ECDSA_SIG_free(es);
    } else {
        out = sig;
        sig = NULL;
        *siglen = n;
    }
out:
    free(sig);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return out;
}

char *jwt_mint(const char *alg, const void *key, size_t keylen, const char *header_json,
               const char *claims_json)
{
    char hbuf[256];
    if (!header_json) {
        snprintf(hbuf, sizeof(hbuf), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
        header_json = hbuf;
    }
    char *h = jwt_b64url(header_json, strlen(header_json));
    char *c = jwt_b64url(claims_json, strlen(claims_json));
    char *msg = NULL, *s = NULL, *tok = NULL;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    if (!h || !c || !(msg = malloc(strlen(h) + strlen(c) + 2))) goto out;
    sprintf(msg, "%s.%s", h, c);

    const EVP_MD *md = strcmp(alg, "HS256") == 0   ? EVP_sha256()
                       : strcmp(alg, "HS384") == 0 ? EVP_sha384()
                       : strcmp(alg, "HS512") == 0 ? EVP_sha512()
                                                   : NULL;
    if (md) {
        unsigned int n = 0;
        if (!(sig = malloc(EVP_MAX_MD_SIZE)) ||
            !HMAC(md, key, (int)keylen, (const unsigned char *)msg, strlen(msg), sig, &n))
            goto out;
        siglen = n;
    } else if (strcmp(alg, "RS256") == 0 || strcmp(alg, "ES256") == 0) {
        if (!(sig = sign_pkey(key, msg, &siglen))) goto out;
    }
    if (!(s = jwt_b64url(sig ? sig : (const unsigned char *)"", siglen))) goto out;
    if ((tok = malloc(strlen(msg) + strlen(s) + 2))) sprintf(tok, "%s.%s", msg, s);
out:
    free(h);
    free(c);
    free(msg);
    free(sig);
    free(s);
    return tok;
}

char *jwt_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    long n;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1))) {
        if (fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = '\0';
            *len = (size_t)n;
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    return buf;
}
