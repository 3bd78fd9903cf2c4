/* jwt: mints JSON Web Tokens for tests (OpenSSL), including wrong ones: any header and claims
 * JSON, any alg string, a signature made with any key. Keys are generated at test time and
 * written as PEM files; nothing secret is committed. */
#ifndef NUDGE_TEST_JWT_H
#define NUDGE_TEST_JWT_H

#include <stddef.h>

/* Generate a key pair of kind "rsa" (2048 bits) or "ec" (P-256) and write it as PEM files
 * <dir>/<name>.key (private, PKCS#8) and <dir>/<name>.pub (public, SubjectPublicKeyInfo). Also
 * "rsa1024" and "ec384" (P-384): keys the verifier must refuse. Returns 0 or -1. */
int jwt_keygen(const char *dir, const char *name, const char *kind);

/* A compact token with the header {"alg":alg,"typ":"JWT"} (or header_json when not NULL,
 * verbatim) and the claims claims_json (verbatim), signed:
 *  - alg HS256/HS384/HS512: HMAC with key/keylen as the secret (any bytes, e.g. a PEM file's);
 *  - alg RS256/ES256: with the private key in the PEM file whose path is key (keylen ignored);
 *    ES256 signatures in the JWS r||s form;
 *  - alg "none" or any other: an empty signature.
 * Returns a malloc'd NUL-terminated string (free it), or NULL on failure. */
char *jwt_mint(const char *alg, const void *key, size_t keylen, const char *header_json,
               const char *claims_json);

/* data[0..len) in unpadded base64url: a malloc'd NUL-terminated string (free it), NULL on
 * failure. */
char *jwt_b64url(const void *data, size_t len);

/* Read a whole file into a malloc'd NUL-terminated buffer; *len gets its size. NULL on error. */
char *jwt_read_file(const char *path, size_t *len);

#endif
