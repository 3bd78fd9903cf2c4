/* token: verifies subscriber tokens, JSON Web Tokens in JWS compact form (RFC 7519, RFC 7515):
 * base64url(header).base64url(claims).base64url(signature). Signatures through OpenSSL: HS256,
 * HS384 and HS512 with shared secrets, RS256 (RSA PKCS#1 v1.5) and ES256 (P-256, the JWS raw
 * r||s form) with public keys from PEM files. Claims through jansson.
 *
 * The algorithm is never chosen by the token alone: a key is tried only for the algorithms of
 * its own kind (a secret for HS*, an RSA key for RS256, a P-256 key for ES256), so "alg":"none"
 * and algorithm confusion (an HS token "signed" with a public key's bytes) have no key to pass.
 * MACs are compared in constant time (CRYPTO_memcmp). Refusals name their reason, never the
 * token.
 *
 * Keys are loaded once before the workers start and only read afterwards: token_verify may run
 * on several threads at once with one struct token_keys. */
#ifndef NUDGE_TOKEN_H
#define NUDGE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_SECRETS_MAX 4 /* HS secrets held at once (rotation: old and new, and spares) */
#define TOKEN_PEMS_MAX 4    /* public keys held at once */
#define TOKEN_SECRET_MIN 32 /* bytes; shorter HS secrets are refused at load */
#define TOKEN_LEN_MAX 8192  /* bytes of a compact token; longer is TOKEN_ETOOBIG */
#define TOKEN_SUB_MAX 128   /* bytes of "sub" */
#define TOKEN_TOPICS_MAX 64 /* patterns in "topics" */
#define TOKEN_TOPIC_MAX 256 /* bytes of one pattern in "topics" */

/* Why a token was refused. Each has a stable name (token_err_name, a /stats counter key) and a
 * message (token_err_text) that does not echo the token. TOKEN_EMALFORMED also covers base64url
 * with padding, '+', '/', whitespace or non-zero trailing bits, duplicate JSON keys, a "crit"
 * header and a "typ" other than "JWT" (any case). */
enum token_err {
    TOKEN_EMALFORMED =
        -1, /* not three base64url parts, bad base64url, header/claims not JSON objects */
    TOKEN_ETOOBIG = -2,  /* longer than TOKEN_LEN_MAX */
    TOKEN_EALG = -3,     /* "alg" missing, "none", unknown, or no key of its kind configured */
    TOKEN_ESIG = -4,     /* no configured key of the token's kind verifies the signature */
    TOKEN_EEXPIRED = -5, /* now >= exp + leeway */
    TOKEN_ENOTYET = -6,  /* now + leeway < nbf, or now + leeway < iat */
    TOKEN_EAUD = -7,     /* an audience is configured and "aud" (string or array) lacks it */
    TOKEN_EISS = -8,     /* an issuer is configured and "iss" differs */
    TOKEN_ECLAIMS = -9,  /* "sub" or "exp" missing or mistyped, "sub" empty, longer than
                            TOKEN_SUB_MAX or holding ':', '*', a space or a control char,
                            "topics" not an array of 1..TOKEN_TOPIC_MAX-byte strings or more
                            than TOKEN_TOPICS_MAX of them */
    TOKEN_ENOMEM = -10,
};
#define TOKEN_NERR 10

/* The keyring. Opaque. */
struct token_keys;

/* A new empty keyring in *out (owned by the caller: token_keys_free). Returns 0 or -ENOMEM. */
int token_keys_new(struct token_keys **out);
void token_keys_free(struct token_keys *k);
/* Add an HS secret (copied). Returns 0, -EINVAL (shorter than TOKEN_SECRET_MIN) or -ENOSPC (over
 * TOKEN_SECRETS_MAX) with a message in err. */
int token_keys_add_secret(struct token_keys *k, const uint8_t *secret, size_t len, char *err,
                          size_t errlen);
/* Add the public key in the PEM file at path: an RSA key (2048 bits or more) verifies RS256, a
 * P-256 EC key ES256. A private key file is refused (the broker needs no signing key). Returns
 * 0, or a negative errno with a message naming the file in err. */
int token_keys_add_pem(struct token_keys *k, const char *path, char *err, size_t errlen);
/* Number of keys of any kind: 0 means tokens cannot be verified at all. */
uint32_t token_keys_count(const struct token_keys *k);

/* What is checked besides the signature. */
struct token_rules {
    const char *aud;   /* NULL: "aud" not checked */
    const char *iss;   /* NULL: "iss" not checked */
    uint32_t leeway_s; /* clock skew allowed on exp, nbf and iat */
};

/* A verified token's claims. topics[i] point into storage owned by the claims. */
struct token_claims {
    char sub[TOKEN_SUB_MAX + 1]; /* NUL-terminated */
    uint32_t sub_len;
    int64_t exp; /* seconds since the epoch */
    int64_t iat; /* "iat" when has_iat (revocation: auth.h) */
    int has_iat;
    uint32_t ntopics;
    const char *topics[TOKEN_TOPICS_MAX]; /* NUL-terminated, unvalidated as patterns */
    uint32_t topic_len[TOKEN_TOPICS_MAX];
    char *store; /* owned: released by token_claims_clear */
};

/* Verify the compact token tok (len bytes, not NUL-terminated) at now_s (seconds since the
 * epoch) against keys and rules. On success fills *out (token_claims_clear it) and returns 0;
 * otherwise returns a negative enum token_err and *out holds nothing to clear. */
int token_verify(const struct token_keys *k, const struct token_rules *r, const char *tok,
                 size_t len, int64_t now_s, struct token_claims *out);
void token_claims_clear(struct token_claims *c);

/* "malformed", "too_big", "alg", "signature", "expired", "not_yet_valid", "audience", "issuer",
 * "claims", "nomem"; "unknown" for others. Static storage. */
const char *token_err_name(int err);
/* A sentence for the error message sent to the client ("token signature does not verify").
 * Static storage. */
const char *token_err_text(int err);

#endif
