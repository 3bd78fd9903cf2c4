/* token: see token.h. A token is checked in a fixed order, each step refusing with its own
 * reason: size, shape (three base64url parts, all decoded before anything is trusted), header
 * (a JSON object naming an algorithm of a configured key kind), signature (every key of that
 * kind is tried: rotation), then claims (exp, nbf, iat, iss, aud, sub, topics). The claims JSON is
 * parsed only once the signature verified, so jansson sees unauthenticated bytes only in the
 * header. Decoding goes into one stack buffer of TOKEN_LEN_MAX bytes (decoded parts are shorter
 * than their text); the claims' strings are copied into one allocation owned by the claims.
 *
 * Keys are immutable after loading; verification touches only its own stack, its own jansson
 * values and OpenSSL contexts it creates, so concurrent token_verify calls share nothing
 * mutable (OpenSSL 3 allows concurrent read-only use of one EVP_PKEY). */
#include "token.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#define PEM_FILE_MAX (64 * 1024) /* a public key PEM is a few hundred bytes */
#define RSA_BITS_MIN 2048
#define ES256_SIG_LEN 64 /* r||s, 32 bytes each (RFC 7518 section 3.4) */

enum pem_kind { PEM_RSA, PEM_EC };

struct token_keys {
    uint32_t nsecrets, npems;
    uint8_t *secret[TOKEN_SECRETS_MAX];
    size_t secret_len[TOKEN_SECRETS_MAX];
    EVP_PKEY *pem[TOKEN_PEMS_MAX];
    enum pem_kind pem_kind[TOKEN_PEMS_MAX];
};

int token_keys_new(struct token_keys **out)
{
    *out = calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

void token_keys_free(struct token_keys *k)
{
    if (!k) return;
    for (uint32_t i = 0; i < k->nsecrets; i++) {
        OPENSSL_cleanse(k->secret[i], k->secret_len[i]);
        free(k->secret[i]);
    }
    for (uint32_t i = 0; i < k->npems; i++)
        EVP_PKEY_free(k->pem[i]);
    free(k);
}

uint32_t token_keys_count(const struct token_keys *k)
{
    return k->nsecrets + k->npems;
}

int token_keys_add_secret(struct token_keys *k, const uint8_t *secret, size_t len, char *err,
                          size_t errlen)
{
    if (len < TOKEN_SECRET_MIN) {
        snprintf(err, errlen, "token secret is %zu bytes; at least %d are required", len,
                 TOKEN_SECRET_MIN);
        return -EINVAL;
    }
    if (k->nsecrets == TOKEN_SECRETS_MAX) {
        snprintf(err, errlen, "more than %d token secrets", TOKEN_SECRETS_MAX);
        return -ENOSPC;
    }
    uint8_t *p = malloc(len);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    memcpy(p, secret, len);
    k->secret[k->nsecrets] = p;
    k->secret_len[k->nsecrets] = len;
    k->nsecrets++;
    return 0;
}

/* The whole file at path, NUL-terminated, in a malloc'd buffer; a negative errno on failure. */
static int read_pem(const char *path, char **out, size_t *outlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -errno;
    char *buf = malloc(PEM_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, PEM_FILE_MAX + 1, f);
    int rc = ferror(f) ? -EIO : n > PEM_FILE_MAX ? -EFBIG : 0;
    fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *outlen = n;
    return 0;
}

int token_keys_add_pem(struct token_keys *k, const char *path, char *err, size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;
    int rc;

    if (k->npems == TOKEN_PEMS_MAX) {
        snprintf(err, errlen, "%s: more than %d token public keys", path, TOKEN_PEMS_MAX);
        return -ENOSPC;
    }
    rc = read_pem(path, &text, &len);
    if (rc) {
        snprintf(err, errlen, "%s: %s", path,
                 rc == -EFBIG ? "larger than a public key file can be" : strerror(-rc));
        return rc;
    }
    /* Any private key block refuses the file: the broker only verifies, and a signing key on
     * its disk is one more secret to lose. */
    if (strstr(text, "PRIVATE KEY-----")) {
        snprintf(err, errlen,
                 "%s: holds a private key; give the broker only the public key "
                 "(openssl pkey -pubout)",
                 path);
        rc = -EINVAL;
        goto out;
    }
    if (!strstr(text, "-----BEGIN PUBLIC KEY-----")) {
        snprintf(err, errlen, "%s: not a PEM public key (-----BEGIN PUBLIC KEY-----)", path);
        rc = -EINVAL;
        goto out;
    }
    bio = BIO_new_mem_buf(text, (int)len);
    if (!bio) {
        rc = -ENOMEM;
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (!pkey) {
        snprintf(err, errlen, "%s: the public key does not parse", path);
        rc = -EINVAL;
        goto out;
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        int bits = EVP_PKEY_get_bits(pkey);
        if (bits < RSA_BITS_MIN) {
            snprintf(err, errlen, "%s: RSA key of %d bits; at least %d are required", path, bits,
                     RSA_BITS_MIN);
            rc = -EINVAL;
            goto out;
        }
        k->pem_kind[k->npems] = PEM_RSA;
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        char group[64] = "";
        size_t glen = 0;
        if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                            &glen) ||
            OBJ_txt2nid(group) != NID_X9_62_prime256v1) {
            snprintf(err, errlen, "%s: EC key on curve %s; ES256 needs P-256", path,
                     group[0] ? group : "(unnamed)");
            rc = -EINVAL;
            goto out;
        }
        k->pem_kind[k->npems] = PEM_EC;
    } else {
        snprintf(err, errlen, "%s: neither an RSA nor an EC public key", path);
        rc = -EINVAL;
        goto out;
    }
    k->pem[k->npems++] = pkey;
    pkey = NULL;
    rc = 0;
out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    free(text);
    ERR_clear_error();
    return rc;
}

/* ---- base64url --------------------------------------------------------------------------- */

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1; /* '=', '+', '/', whitespace and everything else */
}

/* Decode the unpadded base64url text s[0..n) into out (room for n bytes at least); *outlen gets
 * the decoded length. Refuses a length that is 1 mod 4 and non-zero unused trailing bits, so
 * each byte string has exactly one accepted text. Returns 0 or -1. */
static int b64url_decode(const char *s, size_t n, uint8_t *out, size_t *outlen)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    if (n % 4 == 1) return -1;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) return -1; /* leftover bits (2 or 4) must be zero */
    *outlen = o;
    return 0;
}

/* ---- signatures -------------------------------------------------------------------------- */

enum alg { ALG_HS256, ALG_HS384, ALG_HS512, ALG_RS256, ALG_ES256 };

static const struct {
    const char *name;
    enum alg alg;
} algs[] = {
    {"HS256", ALG_HS256}, {"HS384", ALG_HS384}, {"HS512", ALG_HS512},
    {"RS256", ALG_RS256}, {"ES256", ALG_ES256},
};

static const EVP_MD *alg_md(enum alg a)
{
    switch (a) {
    case ALG_HS384:
        return EVP_sha384();
    case ALG_HS512:
        return EVP_sha512();
    default:
        return EVP_sha256();
    }
}

/* Whether a key of a's kind is configured. */
static int have_kind(const struct token_keys *k, enum alg a)
{
    if (a == ALG_HS256 || a == ALG_HS384 || a == ALG_HS512) return k->nsecrets > 0;
    for (uint32_t i = 0; i < k->npems; i++)
        if (k->pem_kind[i] == (a == ALG_RS256 ? PEM_RSA : PEM_EC)) return 1;
    return 0;
}

/* 0 when one of the secrets' HMACs equals sig; every secret is computed and compared over the
 * full length, so timing says nothing about how much of a MAC matched nor which key did. */
static int verify_hmac(const struct token_keys *k, enum alg a, const uint8_t *msg, size_t n,
                       const uint8_t *sig, size_t siglen)
{
    const EVP_MD *md = alg_md(a);
    int ok = 0;
    if (siglen != (size_t)EVP_MD_get_size(md)) return TOKEN_ESIG;
    for (uint32_t i = 0; i < k->nsecrets; i++) {
        uint8_t mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        if (!HMAC(md, k->secret[i], (int)k->secret_len[i], msg, n, mac, &maclen)) {
            ERR_clear_error();
            return TOKEN_ENOMEM;
        }
        ok |= maclen == siglen && CRYPTO_memcmp(mac, sig, siglen) == 0;
        OPENSSL_cleanse(mac, sizeof(mac));
    }
    return ok ? 0 : TOKEN_ESIG;
}

/* 1 when pkey's signature der over msg verifies with SHA-256, 0 when not, -1 on allocation
 * failure. */
static int verify_pkey(EVP_PKEY *pkey, const uint8_t *msg, size_t n, const uint8_t *der,
                       size_t derlen)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) return -1;
    int ok = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
             EVP_DigestVerify(ctx, der, derlen, msg, n) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error();
    return ok;
}

/* The JWS r||s form of an ES256 signature as the DER ECDSA-Sig-Value OpenSSL verifies, in der
 * (room for 80 bytes: 2 + 2 * (2 + 33)). Returns its length, or 0 on failure. */
static size_t es256_der(const uint8_t *rs, uint8_t *der)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, 32, NULL), *s = BN_bin2bn(rs + 32, 32, NULL);
    size_t len = 0;
    if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
        r = s = NULL; /* owned by es now */
        int need = i2d_ECDSA_SIG(es, NULL);
        if (need > 0 && need <= 80) {
            unsigned char *p = der;
            len = (size_t)i2d_ECDSA_SIG(es, &p);
        }
    }
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return len;
}

static int verify_pub(const struct token_keys *k, enum alg a, const uint8_t *msg, size_t n,
                      const uint8_t *sig, size_t siglen)
{
    enum pem_kind want = a == ALG_RS256 ? PEM_RSA : PEM_EC;
    uint8_t der[80];
    size_t derlen = siglen;
    const uint8_t *s = sig;
    if (a == ALG_ES256) {
        if (siglen != ES256_SIG_LEN) return TOKEN_ESIG;
        derlen = es256_der(sig, der);
        if (!derlen) return TOKEN_ENOMEM;
        s = der;
    }
    for (uint32_t i = 0; i < k->npems; i++) {
        if (k->pem_kind[i] != want) continue;
        /* RS256 signatures are exactly the modulus' length (RFC 8017 section 8.2.2). */
        if (a == ALG_RS256 && siglen != (size_t)EVP_PKEY_get_size(k->pem[i])) continue;
        int ok = verify_pkey(k->pem[i], msg, n, s, derlen);
        if (ok < 0) return TOKEN_ENOMEM;
        if (ok) return 0;
    }
    return TOKEN_ESIG;
}

/* ---- claims ------------------------------------------------------------------------------ */

/* A NumericDate (RFC 7519 section 2) as whole seconds in *out, rounded up: for an integer time
 * t, t >= x exactly when t >= ceil(x), and t < x exactly when t < ceil(x), so comparisons with
 * the rounded value decide as the exact one would. Reals beyond +-2^53 are refused (no JSON
 * number that large is a date). Returns 0, or -1 when v is not a usable number. */
static int numeric_date(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (!json_is_real(v)) return -1;
    double d = json_real_value(v);
    if (!isfinite(d) || d > 9007199254740992.0 || d < -9007199254740992.0) return -1;
    *out = (int64_t)ceil(d);
    return 0;
}

/* a + b without overflow, saturating at INT64_MAX (b is a leeway, never negative). */
static int64_t add_sat(int64_t a, uint32_t b)
{
    return a > INT64_MAX - (int64_t)b ? INT64_MAX : a + (int64_t)b;
}

static int sub_ok(const char *s, size_t n)
{
    if (n == 0 || n > TOKEN_SUB_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ':' || c == '*' || c == ' ' || c < 0x20 || c == 0x7f) return 0;
    }
    return 1;
}

static int aud_ok(const json_t *aud, const char *want)
{
    if (json_is_string(aud)) return strcmp(json_string_value(aud), want) == 0;
    if (!json_is_array(aud)) return 0;
    size_t i;
    const json_t *v;
    json_array_foreach(aud, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0) return 1;
    }
    return 0;
}

static int check_claims(const json_t *c, const struct token_rules *r, int64_t now,
                        struct token_claims *out)
{
    int64_t exp, t;
    const json_t *v = json_object_get(c, "exp");
    if (!v || numeric_date(v, &exp)) return TOKEN_ECLAIMS;
    if (now >= add_sat(exp, r->leeway_s)) return TOKEN_EEXPIRED;
    /* now + leeway < nbf, written so that neither side can overflow */
    if ((v = json_object_get(c, "nbf"))) {
        if (numeric_date(v, &t)) return TOKEN_ECLAIMS;
        if (add_sat(now, r->leeway_s) < t) return TOKEN_ENOTYET;
    }
    int64_t iat = 0;
    int has_iat = 0;
    if ((v = json_object_get(c, "iat"))) {
        if (numeric_date(v, &t)) return TOKEN_ECLAIMS;
        if (add_sat(now, r->leeway_s) < t) return TOKEN_ENOTYET;
        iat = t;
        has_iat = 1;
    }
    if (r->iss) {
        v = json_object_get(c, "iss");
        if (!json_is_string(v) || strcmp(json_string_value(v), r->iss) != 0) return TOKEN_EISS;
    }
    if (r->aud && !aud_ok(json_object_get(c, "aud"), r->aud)) return TOKEN_EAUD;

    v = json_object_get(c, "sub");
    if (!json_is_string(v)) return TOKEN_ECLAIMS;
    size_t sublen = json_string_length(v);
    if (!sub_ok(json_string_value(v), sublen)) return TOKEN_ECLAIMS;

    const json_t *topics = json_object_get(c, "topics");
    size_t ntopics = 0, total = 0;
    if (topics) {
        if (!json_is_array(topics)) return TOKEN_ECLAIMS;
        ntopics = json_array_size(topics);
        if (ntopics > TOKEN_TOPICS_MAX) return TOKEN_ECLAIMS;
        for (size_t i = 0; i < ntopics; i++) {
            const json_t *p = json_array_get(topics, i);
            if (!json_is_string(p)) return TOKEN_ECLAIMS;
            size_t n = json_string_length(p);
            if (n == 0 || n > TOKEN_TOPIC_MAX) return TOKEN_ECLAIMS;
            total += n + 1;
        }
    }

    memset(out, 0, sizeof(*out));
    if (total) {
        out->store = malloc(total);
        if (!out->store) return TOKEN_ENOMEM;
        char *w = out->store;
        for (size_t i = 0; i < ntopics; i++) {
            const json_t *p = json_array_get(topics, i);
            size_t n = json_string_length(p);
            memcpy(w, json_string_value(p), n + 1);
            out->topics[i] = w;
            out->topic_len[i] = (uint32_t)n;
            w += n + 1;
        }
    }
    out->ntopics = (uint32_t)ntopics;
    memcpy(out->sub, json_string_value(v), sublen + 1);
    out->sub_len = (uint32_t)sublen;
    out->exp = exp;
    out->iat = iat;
    out->has_iat = has_iat;
    return 0;
}

/* ---- verify ------------------------------------------------------------------------------ */

/* The header's algorithm, or a refusal. */
static int check_header(const uint8_t *h, size_t n, const struct token_keys *k, enum alg *alg)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)h, n, JSON_REJECT_DUPLICATES, &jerr);
    int rc = TOKEN_EMALFORMED;
    if (!json_is_object(j)) goto out;
    /* "crit" names extensions the verifier must understand (RFC 7515 section 4.1.11); it
     * understands none. */
    if (json_object_get(j, "crit")) goto out;
    const json_t *typ = json_object_get(j, "typ");
    if (typ && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT") != 0)) goto out;
    rc = TOKEN_EALG;
    const json_t *a = json_object_get(j, "alg");
    if (!json_is_string(a)) goto out;
    for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
        /* exact, case-sensitive: RFC 7515 section 4.1.1 */
        if (strcmp(json_string_value(a), algs[i].name) == 0 && have_kind(k, algs[i].alg)) {
            *alg = algs[i].alg;
            rc = 0;
            break;
        }
    }
out:
    json_decref(j);
    return rc;
}

int token_verify(const struct token_keys *k, const struct token_rules *r, const char *tok,
                 size_t len, int64_t now_s, struct token_claims *out)
{
    uint8_t buf[TOKEN_LEN_MAX]; /* the three parts decoded, one after the other */
    size_t hlen, clen, slen;
    enum alg alg = ALG_HS256;
    memset(out, 0, sizeof(*out));
    if (len > TOKEN_LEN_MAX) return TOKEN_ETOOBIG;
    if (!tok || len == 0) return TOKEN_EMALFORMED;

    const char *d1 = memchr(tok, '.', len);
    if (!d1) return TOKEN_EMALFORMED;
    const char *d2 = memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - tok));
    if (!d2 || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - tok))) return TOKEN_EMALFORMED;
    size_t hn = (size_t)(d1 - tok), cn = (size_t)(d2 - d1 - 1), sn = len - (size_t)(d2 + 1 - tok);

    uint8_t *h = buf;
    if (b64url_decode(tok, hn, h, &hlen)) return TOKEN_EMALFORMED;
    uint8_t *c = h + hlen;
    if (b64url_decode(d1 + 1, cn, c, &clen)) return TOKEN_EMALFORMED;
    uint8_t *s = c + clen;
    if (b64url_decode(d2 + 1, sn, s, &slen)) return TOKEN_EMALFORMED;

    int rc = check_header(h, hlen, k, &alg);
    if (rc) return rc;

    const uint8_t *msg = (const uint8_t *)tok;
    size_t msglen = (size_t)(d2 - tok);
    if (alg == ALG_RS256 || alg == ALG_ES256)
        rc = verify_pub(k, alg, msg, msglen, s, slen);
    else
        rc = verify_hmac(k, alg, msg, msglen, s, slen);
    if (rc) return rc;

    json_error_t jerr;
    json_t *claims = json_loadb((const char *)c, clen, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(claims))
        rc = TOKEN_EMALFORMED;
    else
        rc = check_claims(claims, r, now_s, out);
    json_decref(claims);
    if (rc) memset(out, 0, sizeof(*out));
    return rc;
}

void token_claims_clear(struct token_claims *c)
{
    free(c->store);
    memset(c, 0, sizeof(*c));
}

/* ---- errors ------------------------------------------------------------------------------ */

static const struct {
    const char *name, *text;
} errs[TOKEN_NERR] = {
    {"malformed", "token is not a well-formed JWT (three base64url parts, JSON objects)"},
    {"too_big", "token is longer than the broker accepts"},
    {"alg", "token algorithm is missing, not allowed, or has no configured key"},
    {"signature", "token signature does not verify"},
    {"expired", "token has expired"},
    {"not_yet_valid", "token is not valid yet (nbf or iat in the future)"},
    {"audience", "token audience does not match"},
    {"issuer", "token issuer does not match"},
    {"claims", "token claims are missing or invalid (sub, exp, topics)"},
    {"nomem", "out of memory while verifying the token"},
};

const char *token_err_name(int err)
{
    return err < 0 && err >= -TOKEN_NERR ? errs[-err - 1].name : "unknown";
}

const char *token_err_text(int err)
{
    return err < 0 && err >= -TOKEN_NERR ? errs[-err - 1].text : "token refused";
}
