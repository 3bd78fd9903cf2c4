/* libFuzzer target for the JWT verifier (broker/session/token.c). The first input byte picks the
 * mode, the rest is the token:
 *  - bit 0 clear: the rest is verified as it is (signatures will almost never verify, so this
 *    explores sizes, shapes, base64url and the header);
 *  - bit 0 set: the rest is the header's JSON, a NUL byte, and the claims' JSON; the target
 *    base64url-encodes both and appends a valid MAC with the fixed test-only secret below
 *    (HS256, HS384 or HS512 by bits 1-2), so the fuzzer mutates JSON, not base64, and the
 *    claims' checks are reached;
 *  - bit 3 set: an audience ("nudge") and an issuer ("app") are configured.
 * The keyring also holds a P-256 and an RSA-2048 public key generated at start, so RS256 and
 * ES256 tokens reach OpenSSL. Checked: the result is one of the enum token_err values or 0; a
 * refusal leaves nothing to clear; verifying twice gives the same answer; accepted claims obey
 * every rule in token.h; an accepted token is refused as expired at exp + leeway. ASan's leak
 * check covers every path. Self-contained: the Makefile's fuzz rule links protocol/ only, so
 * token.c is included here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "../../broker/session/token.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_token: %s:%d: %s\n", __FILE__, __LINE__, #cond);                 \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Test-only: the seed corpus's valid tokens are signed with it. Never a real secret. */
static const char fuzz_secret[] = "nudge-fuzz-only-secret-not-for-production-use";
#define NOW 1700000000LL
#define LEEWAY 30

static struct token_keys *keys;

static void add_generated(const char *dir, const char *alg, const void *arg)
{
    EVP_PKEY *p = strcmp(alg, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                          : EVP_PKEY_Q_keygen(NULL, NULL, "EC", (const char *)arg);
    char path[256], err[256];
    snprintf(path, sizeof(path), "%s/%s.pub", dir, alg);
    FILE *f = fopen(path, "w");
    CHECK(p && f && PEM_write_PUBKEY(f, p));
    fclose(f);
    CHECK(token_keys_add_pem(keys, path, err, sizeof(err)) == 0);
    unlink(path);
    EVP_PKEY_free(p);
}

static void init(void)
{
    char err[256], dir[] = "/tmp/nudge-fuzz-token-XXXXXX";
    CHECK(token_keys_new(&keys) == 0);
    CHECK(token_keys_add_secret(keys, (const uint8_t *)fuzz_secret, strlen(fuzz_secret), err,
                                sizeof(err)) == 0);
    CHECK(mkdtemp(dir));
    add_generated(dir, "RSA", NULL);
    add_generated(dir, "EC", "P-256");
    rmdir(dir);
}

static size_t b64url(const uint8_t *p, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = abc[(acc >> bits) & 63];
        }
    }
    if (bits) out[o++] = abc[(acc << (6 - bits)) & 63];
    return o;
}

static void check_claims_obey_rules(const struct token_claims *c)
{
    CHECK(c->sub_len >= 1 && c->sub_len <= TOKEN_SUB_MAX && strlen(c->sub) == c->sub_len);
    for (uint32_t i = 0; i < c->sub_len; i++) {
        unsigned char ch = (unsigned char)c->sub[i];
        CHECK(ch != ':' && ch != '*' && ch != ' ' && ch >= 0x20 && ch != 0x7f);
    }
    CHECK(c->ntopics <= TOKEN_TOPICS_MAX);
    CHECK((c->ntopics == 0) == (c->store == NULL));
    for (uint32_t i = 0; i < c->ntopics; i++)
        CHECK(c->topic_len[i] >= 1 && c->topic_len[i] <= TOKEN_TOPIC_MAX &&
              strlen(c->topics[i]) == c->topic_len[i]);
    CHECK(NOW < add_sat(c->exp, LEEWAY));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char tok[(TOKEN_LEN_MAX + 64) / 3 * 4 + 256];
    if (!keys) init();
    if (size < 1 || size - 1 > TOKEN_LEN_MAX + 64) return 0;
    uint8_t mode = data[0];
    const uint8_t *p = data + 1;
    size_t len = size - 1;
    if (mode & 1) {
        static const char *const mds[] = {"SHA256", "SHA384", "SHA512"};
        uint8_t mac[EVP_MAX_MD_SIZE];
        unsigned int maclen = 0;
        const EVP_MD *md = EVP_get_digestbyname(mds[(mode >> 1 & 3) % 3]);
        const uint8_t *nul = memchr(p, 0, len);
        size_t hn = nul ? (size_t)(nul - p) : len;
        size_t n = b64url(p, hn, tok);
        tok[n++] = '.';
        if (nul) n += b64url(nul + 1, len - hn - 1, tok + n);
        CHECK(
            HMAC(md, fuzz_secret, (int)strlen(fuzz_secret), (const uint8_t *)tok, n, mac, &maclen));
        tok[n++] = '.';
        n += b64url(mac, maclen, tok + n);
        len = n;
    } else {
        memcpy(tok, p, len);
    }
    struct token_rules rules = {.leeway_s = LEEWAY};
    if (mode & 8) {
        rules.aud = "nudge";
        rules.iss = "app";
    }

    struct token_claims c, again;
    int rc = token_verify(keys, &rules, tok, len, NOW, &c);
    CHECK(rc <= 0 && rc >= -TOKEN_NERR);
    CHECK(strcmp(token_err_name(rc), "unknown") != 0 || rc == 0);
    if (rc) {
        CHECK(c.store == NULL && c.ntopics == 0);
        CHECK(token_verify(keys, &rules, tok, len, NOW, &again) == rc);
        return 0;
    }
    check_claims_obey_rules(&c);
    CHECK(token_verify(keys, &rules, tok, len, NOW, &again) == 0);
    CHECK(again.exp == c.exp && again.ntopics == c.ntopics && strcmp(again.sub, c.sub) == 0);
    token_claims_clear(&again);
    if (c.exp <= INT64_MAX - LEEWAY)
        CHECK(token_verify(keys, &rules, tok, len, c.exp + LEEWAY, &again) == TOKEN_EEXPIRED);
    token_claims_clear(&c);
    return 0;
}
