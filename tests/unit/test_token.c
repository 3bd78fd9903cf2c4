/* Unit tests of the JWT verifier (broker/session/token.c) against tokens minted by a second
 * implementation (tests/support/jwt.c): every success path (HS256/384/512, rotation, RS256,
 * ES256), every refusal mode with the reason it must give (alg none, algorithm confusion, bad
 * and truncated signatures, time claims around the leeway, audience, issuer, malformed and
 * oversized tokens, claim rules), what key loading refuses, and verification from several
 * threads at once. Keys are generated at test time in a mkdtemp directory, removed by fini. */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jwt.h"
#include "token.h"

/* ---- helpers ------------------------------------------------------------------------------ */

#define NOW 1700000000LL
#define LEEWAY 30
static const char S1[] = "first-test-only-secret-0123456789abcdef";
static const char S2[] = "second-test-only-secret-0123456789abcdef";

static char dir[64];
static struct token_keys *keys;
static struct token_rules rules = {.aud = NULL, .iss = NULL, .leeway_s = LEEWAY};

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static void setup(void)
{
    strcpy(dir, "/tmp/nudge-token-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(token_keys_new(&keys), 0);
}

static void teardown(void)
{
    token_keys_free(keys);
    if (dir[0]) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(token, .init = setup, .fini = teardown);

/* <dir>/<name><ext> in a static buffer (one at a time). */
static const char *path(const char *name, const char *ext)
{
    static char p[256];
    snprintf(p, sizeof(p), "%s/%s%s", dir, name, ext);
    return p;
}

/* Generate a key pair and put its public half in the keyring; returns the private key's path
 * (static storage, one at a time). */
static const char *add_keypair(const char *name, const char *kind)
{
    char err[256] = "";
    cr_assert_eq(jwt_keygen(dir, name, kind), 0);
    cr_assert_eq(token_keys_add_pem(keys, path(name, ".pub"), err, sizeof(err)), 0, "%s", err);
    return path(name, ".key");
}

static void add_secret(const char *s)
{
    char err[256] = "";
    cr_assert_eq(token_keys_add_secret(keys, (const uint8_t *)s, strlen(s), err, sizeof(err)), 0,
                 "%s", err);
}

static char *mint(const char *alg, const char *key, const char *header, const char *claims)
{
    size_t keylen = key ? strlen(key) : 0;
    char *t = jwt_mint(alg, key, keylen, header, claims);
    cr_assert_not_null(t);
    return t;
}

static int verify(const char *tok, struct token_claims *c)
{
    return token_verify(keys, &rules, tok, strlen(tok), NOW, c);
}

/* verify, then check that the result is err, and that a refusal left nothing to clear. */
static void expect(const char *tok, int err)
{
    struct token_claims c;
    int rc = verify(tok, &c);
    cr_expect_eq(rc, err, "got %d (%s), want %d (%s) for %s", rc, token_err_name(rc), err,
                 token_err_name(err), tok);
    if (rc == 0)
        token_claims_clear(&c);
    else
        cr_expect_null(c.store);
}

/* An HS256 token signed with S1 over the given claims, checked for err. */
static void expect_hs(const char *claims, int err)
{
    char *t = mint("HS256", S1, NULL, claims);
    expect(t, err);
    free(t);
}

/* The decoded signature of tok into sig (room for 1024 bytes); returns its length. */
static size_t decode_sig(const char *tok, unsigned char *sig)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const char *dot = strrchr(tok, '.');
    cr_assert_not_null(dot);
    size_t n = strlen(dot + 1), o = 0;
    uint32_t acc = 0;
    int bits = 0;
    cr_assert(n * 3 / 4 <= 1024);
    for (size_t i = 0; i < n; i++) {
        acc = acc << 6 | (uint32_t)(strchr(abc, dot[1 + i]) - abc);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            sig[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return o;
}

static char *with_sig(const char *tok, const void *sig, size_t n);

/* The token tok with its signature's decoded bit `bit` flipped (malloc'd). */
static char *flip_sig_bit(const char *tok, size_t bit)
{
    unsigned char sig[1024];
    size_t n = decode_sig(tok, sig);
    cr_assert(bit / 8 < n);
    sig[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    return with_sig(tok, sig, n);
}

/* The token tok with its signature part replaced by the base64url of sig[0..n). */
static char *with_sig(const char *tok, const void *sig, size_t n)
{
    const char *dot = strrchr(tok, '.');
    char *s = jwt_b64url(sig, n);
    size_t head = (size_t)(dot + 1 - tok);
    char *out = malloc(head + strlen(s) + 1);
    memcpy(out, tok, head);
    strcpy(out + head, s);
    free(s);
    return out;
}

#define CLAIMS "{\"sub\":\"42\",\"exp\":1700003600}"

/* ---- success paths ------------------------------------------------------------------------ */

Test(token, an_hs256_token_verifies_and_yields_its_claims)
{
    add_secret(S1);
    char *t = mint("HS256", S1, NULL,
                   "{\"sub\":\"user-42\",\"exp\":1700003600,\"topics\":[\"family:7:*\","
                   "\"role:operator:**\"]}");
    struct token_claims c;
    cr_assert_eq(verify(t, &c), 0);
    cr_expect_str_eq(c.sub, "user-42");
    cr_expect_eq(c.sub_len, 7);
    cr_expect_eq(c.exp, 1700003600);
    cr_assert_eq(c.ntopics, 2);
    cr_expect_str_eq(c.topics[0], "family:7:*");
    cr_expect_eq(c.topic_len[0], 10);
    cr_expect_str_eq(c.topics[1], "role:operator:**");
    cr_expect_eq(c.topic_len[1], 16);
    token_claims_clear(&c);
    cr_expect_null(c.store);
    free(t);
}

Test(token, a_token_without_topics_verifies_with_none)
{
    add_secret(S1);
    char *t = mint("HS256", S1, NULL, CLAIMS);
    struct token_claims c;
    cr_assert_eq(verify(t, &c), 0);
    cr_expect_eq(c.ntopics, 0);
    cr_expect_str_eq(c.sub, "42");
    token_claims_clear(&c);
    free(t);
}

Test(token, hs384_and_hs512_tokens_verify)
{
    add_secret(S1);
    char *a = mint("HS384", S1, NULL, CLAIMS), *b = mint("HS512", S1, NULL, CLAIMS);
    expect(a, 0);
    expect(b, 0);
    free(a);
    free(b);
}

Test(token, an_hs256_token_signed_with_the_second_secret_verifies)
{
    add_secret(S1);
    add_secret(S2);
    char *t = mint("HS256", S2, NULL, CLAIMS);
    expect(t, 0);
    free(t);
}

Test(token, an_hs256_token_signed_with_an_unknown_secret_is_refused)
{
    add_secret(S1);
    char *t = mint("HS256", S2, NULL, CLAIMS);
    expect(t, TOKEN_ESIG);
    free(t);
}

Test(token, an_rs256_token_verifies_with_either_of_two_keys)
{
    char k1[256], k2[256];
    strcpy(k1, add_keypair("rsa1", "rsa"));
    strcpy(k2, add_keypair("rsa2", "rsa"));
    char *a = mint("RS256", k1, NULL, CLAIMS), *b = mint("RS256", k2, NULL, CLAIMS);
    expect(a, 0);
    expect(b, 0);
    free(a);
    free(b);
}

Test(token, an_es256_token_verifies)
{
    char k[256];
    strcpy(k, add_keypair("ec", "ec"));
    char *t = mint("ES256", k, NULL, CLAIMS);
    expect(t, 0);
    free(t);
}

Test(token, a_typ_of_lowercase_jwt_is_accepted)
{
    add_secret(S1);
    char *t = mint("HS256", S1, "{\"alg\":\"HS256\",\"typ\":\"jwt\"}", CLAIMS);
    expect(t, 0);
    free(t);
    t = mint("HS256", S1, "{\"alg\":\"HS256\"}", CLAIMS);
    expect(t, 0);
    free(t);
}

/* ---- algorithms --------------------------------------------------------------------------- */

Test(token, alg_none_is_refused)
{
    add_secret(S1);
    add_keypair("rsa", "rsa");
    char *t = mint("none", NULL, NULL, CLAIMS);
    expect(t, TOKEN_EALG);
    free(t);
    /* "none" with a signature attached, too */
    char *u = mint("none", NULL, NULL, CLAIMS), *v = with_sig(u, "x", 1);
    expect(v, TOKEN_EALG);
    free(u);
    free(v);
}

Test(token, a_missing_or_unknown_or_miscased_alg_is_refused)
{
    add_secret(S1);
    const char *headers[] = {"{\"typ\":\"JWT\"}",   "{\"alg\":\"hs256\"}", "{\"alg\":\"HS257\"}",
                             "{\"alg\":\"PS256\"}", "{\"alg\":256}",       "{\"alg\":null}"};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *t = mint("HS256", S1, headers[i], CLAIMS); /* a good HS256 MAC */
        expect(t, TOKEN_EALG);
        free(t);
    }
}

Test(token, an_hs256_token_whose_secret_is_the_rsa_public_key_pem_is_refused)
{
    add_keypair("rsa", "rsa");
    size_t n = 0;
    char *pem = jwt_read_file(path("rsa", ".pub"), &n);
    cr_assert_not_null(pem);
    char *t = jwt_mint("HS256", pem, n, NULL, CLAIMS);
    cr_assert_not_null(t);
    expect(t, TOKEN_EALG);
    free(t);
    free(pem);
}

Test(token, an_es256_token_checked_when_only_an_rsa_key_is_configured_is_refused_with_token_ealg)
{
    add_keypair("rsa", "rsa");
    cr_assert_eq(jwt_keygen(dir, "ec", "ec"), 0);
    char *t = mint("ES256", path("ec", ".key"), NULL, CLAIMS);
    expect(t, TOKEN_EALG);
    free(t);
}

Test(token, an_hs_token_checked_when_no_secret_is_configured_is_refused_with_token_ealg)
{
    add_keypair("ec", "ec");
    char *t = mint("HS256", S1, NULL, CLAIMS);
    expect(t, TOKEN_EALG);
    free(t);
}

Test(token, an_rs256_token_signed_by_an_unknown_key_is_refused)
{
    add_keypair("rsa", "rsa");
    cr_assert_eq(jwt_keygen(dir, "other", "rsa"), 0);
    char *t = mint("RS256", path("other", ".key"), NULL, CLAIMS);
    expect(t, TOKEN_ESIG);
    free(t);
}

/* ---- signatures --------------------------------------------------------------------------- */

Test(token, a_token_with_one_flipped_signature_bit_is_refused)
{
    add_secret(S1);
    char k1[256], k2[256];
    strcpy(k1, add_keypair("rsa", "rsa"));
    strcpy(k2, add_keypair("ec", "ec"));
    const char *alg[] = {"HS256", "HS512", "RS256", "ES256"};
    const char *key[] = {S1, S1, k1, k2};
    size_t bits[] = {0, 7, 100, 255}; /* first byte, a high bit, middle, last byte of HS256 */
    for (size_t a = 0; a < 4; a++) {
        char *t = mint(alg[a], key[a], NULL, CLAIMS);
        expect(t, 0);
        for (size_t b = 0; b < 4; b++) {
            char *f = flip_sig_bit(t, bits[b]);
            expect(f, TOKEN_ESIG);
            free(f);
        }
        free(t);
    }
}

Test(token, a_truncated_or_extended_hmac_is_refused)
{
    add_secret(S1);
    char *t = mint("HS256", S1, NULL, CLAIMS);
    unsigned char mac[1024];
    cr_assert_eq(decode_sig(t, mac), 32);
    mac[32] = 0;
    /* the true MAC cut short (a comparison over the shorter length would accept it), the true
     * MAC with a byte appended, and no MAC at all */
    size_t lens[] = {31, 30, 1, 33, 0};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char *u = with_sig(t, mac, lens[i]);
        expect(u, TOKEN_ESIG);
        free(u);
    }
    char *same = with_sig(t, mac, 32);
    expect(same, 0);
    free(same);
    free(t);
}

Test(token, an_es256_signature_in_der_form_is_refused)
{
    char k[256];
    strcpy(k, add_keypair("ec", "ec"));
    char *t = mint("ES256", k, NULL, CLAIMS);
    /* a DER ECDSA-Sig-Value is 70-72 bytes: a JWS verifier must not accept that form */
    unsigned char der[72];
    memset(der, 0x30, sizeof(der));
    char *d = with_sig(t, der, 71);
    expect(d, TOKEN_ESIG);
    free(d);
    free(t);
}

/* ---- time --------------------------------------------------------------------------------- */

Test(token, expired_beyond_the_leeway_is_refused_and_within_it_accepted)
{
    add_secret(S1);
    char c[128];
    snprintf(c, sizeof(c), "{\"sub\":\"42\",\"exp\":%lld}", NOW - LEEWAY);
    expect_hs(c, TOKEN_EEXPIRED); /* now >= exp + leeway */
    snprintf(c, sizeof(c), "{\"sub\":\"42\",\"exp\":%lld}", NOW - LEEWAY + 1);
    expect_hs(c, 0);
    snprintf(c, sizeof(c), "{\"sub\":\"42\",\"exp\":%lld.5}", NOW - LEEWAY - 1);
    expect_hs(c, TOKEN_EEXPIRED);
    snprintf(c, sizeof(c), "{\"sub\":\"42\",\"exp\":%lld.5}", NOW - LEEWAY);
    expect_hs(c, 0); /* a real exp: now < exp + leeway by half a second */
    expect_hs("{\"sub\":\"42\",\"exp\":-9223372036854775808}", TOKEN_EEXPIRED);
    expect_hs("{\"sub\":\"42\",\"exp\":9223372036854775807}", 0); /* no overflow adding leeway */
}

Test(token, a_missing_or_mistyped_exp_is_refused)
{
    add_secret(S1);
    expect_hs("{\"sub\":\"42\"}", TOKEN_ECLAIMS);
    expect_hs("{\"sub\":\"42\",\"exp\":\"1700003600\"}", TOKEN_ECLAIMS);
    expect_hs("{\"sub\":\"42\",\"exp\":null}", TOKEN_ECLAIMS);
    expect_hs("{\"sub\":\"42\",\"exp\":true}", TOKEN_ECLAIMS);
    expect_hs("{\"sub\":\"42\",\"exp\":1e300}", TOKEN_ECLAIMS); /* no date is that far */
}

Test(token, nbf_in_the_future_beyond_the_leeway_is_refused_and_within_it_accepted)
{
    add_secret(S1);
    char c[128];
    snprintf(c, sizeof(c), "{\"sub\":\"42\",\"exp\":1700003600,\"nbf\":%lld}", NOW + LEEWAY + 1);
    expect_hs(c, TOKEN_ENOTYET);
    snprintf(c, sizeof(c), "{\"sub\":\"42\",\"exp\":1700003600,\"nbf\":%lld}", NOW + LEEWAY);
    expect_hs(c, 0);
    snprintf(c, sizeof(c), "{\"sub\":\"42\",\"exp\":1700003600,\"nbf\":%lld.5}", NOW + LEEWAY);
    expect_hs(c, TOKEN_ENOTYET);
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"nbf\":\"0\"}", TOKEN_ECLAIMS);
}

Test(token, iat_in_the_future_beyond_the_leeway_is_refused_and_within_it_accepted)
{
    add_secret(S1);
    char c[128];
    snprintf(c, sizeof(c), "{\"sub\":\"42\",\"exp\":1700003600,\"iat\":%lld}", NOW + LEEWAY + 1);
    expect_hs(c, TOKEN_ENOTYET);
    snprintf(c, sizeof(c), "{\"sub\":\"42\",\"exp\":1700003600,\"iat\":%lld}", NOW + LEEWAY);
    expect_hs(c, 0);
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"iat\":[]}", TOKEN_ECLAIMS);
}

/* ---- audience and issuer ------------------------------------------------------------------ */

Test(token, a_wrong_or_missing_aud_is_refused_when_an_audience_is_configured)
{
    add_secret(S1);
    rules.aud = "nudge";
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"aud\":\"other\"}", TOKEN_EAUD);
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"aud\":\"Nudge\"}", TOKEN_EAUD);
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"aud\":[\"a\",\"b\"]}", TOKEN_EAUD);
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"aud\":[]}", TOKEN_EAUD);
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"aud\":7}", TOKEN_EAUD);
    expect_hs(CLAIMS, TOKEN_EAUD);
}

Test(token, an_aud_string_or_array_containing_the_audience_is_accepted)
{
    add_secret(S1);
    rules.aud = "nudge";
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"aud\":\"nudge\"}", 0);
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"aud\":[\"api\",\"nudge\"]}", 0);
    rules.aud = NULL; /* not configured: not checked */
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"aud\":\"other\"}", 0);
}

Test(token, a_wrong_or_missing_iss_is_refused_when_an_issuer_is_configured)
{
    add_secret(S1);
    rules.iss = "https://app.example";
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"iss\":\"https://evil.example\"}", TOKEN_EISS);
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"iss\":[\"https://app.example\"]}", TOKEN_EISS);
    expect_hs(CLAIMS, TOKEN_EISS);
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"iss\":\"https://app.example\"}", 0);
}

/* ---- malformed and oversized -------------------------------------------------------------- */

Test(token, a_token_of_two_or_four_parts_is_refused_as_malformed)
{
    add_secret(S1);
    char *t = mint("HS256", S1, NULL, CLAIMS);
    char *two = strdup(t);
    *strrchr(two, '.') = '\0';
    expect(two, TOKEN_EMALFORMED);
    char *four = malloc(strlen(t) + 3);
    sprintf(four, "%s.x", t);
    expect(four, TOKEN_EMALFORMED);
    sprintf(four, "%s.", t);
    expect(four, TOKEN_EMALFORMED);
    expect("", TOKEN_EMALFORMED);
    expect("..", TOKEN_EMALFORMED);
    free(two);
    free(four);
    free(t);
}

Test(token, bad_base64url_is_refused_as_malformed)
{
    add_secret(S1);
    /* six '~' and six '?' encode to a '-' and a '_' whatever their alignment */
    char *t = mint("HS256", S1, NULL,
                   "{\"sub\":\"42\",\"exp\":1700003600,\"x\":\"~~~~~~\x3f\x3f\x3f\x3f\x3f\x3f\"}");
    expect(t, 0);
    /* base64url's '-' and '_' as base64's '+' and '/' are refused */
    cr_assert(strchr(t, '-') && strchr(t, '_'));
    char *b = strdup(t);
    for (char *p = b; *p; p++)
        if (*p == '_')
            *p = '/';
        else if (*p == '-')
            *p = '+';
    expect(b, TOKEN_EMALFORMED);
    free(b);

    size_t n = strlen(t);
    char *m = malloc(n + 8);
    const char *inserts[] = {"=", " ", "\n", "%"};
    for (size_t i = 0; i < 4; i++) {
        /* in the middle of the header */
        memcpy(m, t, 4);
        strcpy(m + 4, inserts[i]);
        strcat(m, t + 4);
        expect(m, TOKEN_EMALFORMED);
    }
    /* padding at the end of the signature */
    sprintf(m, "%s=", t);
    expect(m, TOKEN_EMALFORMED);
    free(m);
    free(t);
}

Test(token, base64url_with_nonzero_trailing_bits_is_refused_as_malformed)
{
    add_secret(S1);
    char *t = mint("HS256", S1, NULL, CLAIMS);
    /* A 32-byte MAC is 43 characters whose last one carries 2 unused bits: 'A' -> 'B' changes
     * only those, so the decoded bytes are the same and only the text differs. */
    char *last = t + strlen(t) - 1;
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(abc, *last) - abc);
    cr_assert_eq(v & 3, 0);
    *last = abc[v | 1];
    expect(t, TOKEN_EMALFORMED);
    free(t);
}

Test(token, a_header_or_claims_that_are_not_json_objects_are_refused_as_malformed)
{
    add_secret(S1);
    const char *headers[] = {"[\"HS256\"]", "\"HS256\"", "{\"alg\":\"HS256\"", "",
                             "{\"alg\":\"HS256\"} x"};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *t = mint("HS256", S1, headers[i], CLAIMS);
        expect(t, TOKEN_EMALFORMED);
        free(t);
    }
    const char *claims[] = {"[1]", "42", "{\"sub\":\"42\"", "", "not json"};
    for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++)
        expect_hs(claims[i], TOKEN_EMALFORMED); /* correctly signed, still malformed */
}

Test(token, duplicate_keys_in_header_or_claims_are_refused_as_malformed)
{
    add_secret(S1);
    char *t = mint("HS256", S1, "{\"alg\":\"none\",\"alg\":\"HS256\"}", CLAIMS);
    expect(t, TOKEN_EMALFORMED);
    free(t);
    expect_hs("{\"sub\":\"42\",\"sub\":\"43\",\"exp\":1700003600}", TOKEN_EMALFORMED);
}

Test(token, a_crit_header_or_a_typ_other_than_jwt_is_refused_as_malformed)
{
    add_secret(S1);
    const char *headers[] = {"{\"alg\":\"HS256\",\"crit\":[\"exp\"]}",
                             "{\"alg\":\"HS256\",\"typ\":\"JOSE+JSON\"}",
                             "{\"alg\":\"HS256\",\"typ\":1}"};
    for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
        char *t = mint("HS256", S1, headers[i], CLAIMS);
        expect(t, TOKEN_EMALFORMED);
        free(t);
    }
}

/* A validly signed HS256 token of exactly n bytes (padding a claim), or NULL if none exists. */
static char *token_of_len(size_t n)
{
    char *claims = malloc(n + 64);
    for (size_t fill = n * 3 / 4 - 120; fill < n; fill++) {
        sprintf(claims, "{\"sub\":\"42\",\"exp\":1700003600,\"x\":\"%0*d\"}", (int)fill, 0);
        char *t = mint("HS256", S1, NULL, claims);
        size_t l = strlen(t);
        if (l == n) {
            free(claims);
            return t;
        }
        free(t);
        if (l > n) break;
    }
    free(claims);
    return NULL;
}

Test(token, a_token_longer_than_token_len_max_is_refused_and_one_of_exactly_it_accepted)
{
    add_secret(S1);
    char *t = token_of_len(TOKEN_LEN_MAX);
    cr_assert_not_null(t, "no token of exactly TOKEN_LEN_MAX bytes");
    expect(t, 0);
    free(t);
    t = token_of_len(TOKEN_LEN_MAX + 1);
    if (!t) t = token_of_len(TOKEN_LEN_MAX + 2);
    cr_assert_not_null(t);
    expect(t, TOKEN_ETOOBIG);
    /* checked before anything else: garbage of that size is too big, not malformed */
    memset(t, '!', strlen(t));
    expect(t, TOKEN_ETOOBIG);
    free(t);
}

/* ---- claims ------------------------------------------------------------------------------- */

Test(token, a_sub_with_a_colon_is_refused)
{
    add_secret(S1);
    expect_hs("{\"sub\":\"4:2\",\"exp\":1700003600}", TOKEN_ECLAIMS);
}

Test(token, a_sub_empty_too_long_mistyped_or_holding_star_space_or_control_is_refused)
{
    add_secret(S1);
    const char *subs[] = {"\"\"",         "\"a*\"", "\"a b\"", "\"a\\tb\"",
                          "\"a\\u007f\"", "42",     "null",    "[\"42\"]"};
    char c[512];
    for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++) {
        snprintf(c, sizeof(c), "{\"sub\":%s,\"exp\":1700003600}", subs[i]);
        expect_hs(c, TOKEN_ECLAIMS);
    }
    expect_hs("{\"exp\":1700003600}", TOKEN_ECLAIMS);
    snprintf(c, sizeof(c), "{\"sub\":\"%0*d\",\"exp\":1700003600}", TOKEN_SUB_MAX + 1, 0);
    expect_hs(c, TOKEN_ECLAIMS);
    snprintf(c, sizeof(c), "{\"sub\":\"%0*d\",\"exp\":1700003600}", TOKEN_SUB_MAX, 0);
    expect_hs(c, 0);
    expect_hs("{\"sub\":\"j\\u00f6rg@example.com\",\"exp\":1700003600}", 0); /* UTF-8 is fine */
}

/* Claims with n topics of len bytes each. */
static char *topics_claims(size_t n, size_t len)
{
    char *c = malloc(64 + n * (len + 3)), *w = c;
    w += sprintf(w, "{\"sub\":\"42\",\"exp\":1700003600,\"topics\":[");
    for (size_t i = 0; i < n; i++) {
        *w++ = i ? ',' : '"';
        if (i) *w++ = '"';
        memset(w, 'a', len);
        w += len;
        *w++ = '"';
    }
    strcpy(w, "]}");
    return c;
}

Test(token, too_many_topics_are_refused)
{
    add_secret(S1);
    char *c = topics_claims(TOKEN_TOPICS_MAX + 1, 4);
    expect_hs(c, TOKEN_ECLAIMS);
    free(c);
    c = topics_claims(TOKEN_TOPICS_MAX, 4);
    expect_hs(c, 0);
    free(c);
}

Test(token, a_topic_too_long_empty_or_not_a_string_is_refused)
{
    add_secret(S1);
    char *c = topics_claims(1, TOKEN_TOPIC_MAX + 1);
    expect_hs(c, TOKEN_ECLAIMS);
    free(c);
    c = topics_claims(2, TOKEN_TOPIC_MAX);
    expect_hs(c, 0);
    free(c);
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"topics\":[\"\"]}", TOKEN_ECLAIMS);
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"topics\":[\"a\",7]}", TOKEN_ECLAIMS);
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"topics\":\"a:*\"}", TOKEN_ECLAIMS);
    expect_hs("{\"sub\":\"42\",\"exp\":1700003600,\"topics\":[]}", 0);
}

/* ---- loading keys ------------------------------------------------------------------------- */

Test(token, a_short_hs_secret_is_refused_at_load)
{
    char err[256] = "";
    uint8_t s[TOKEN_SECRET_MIN] = {1};
    cr_expect_eq(token_keys_add_secret(keys, s, TOKEN_SECRET_MIN - 1, err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "32"), "%s", err);
    cr_expect_eq(token_keys_count(keys), 0);
    cr_expect_eq(token_keys_add_secret(keys, s, TOKEN_SECRET_MIN, err, sizeof(err)), 0);
    cr_expect_eq(token_keys_count(keys), 1);
}

Test(token, a_secret_past_token_secrets_max_is_refused_at_load)
{
    char err[256] = "";
    for (int i = 0; i < TOKEN_SECRETS_MAX; i++)
        add_secret(S1);
    cr_expect_eq(token_keys_add_secret(keys, (const uint8_t *)S2, strlen(S2), err, sizeof(err)),
                 -ENOSPC);
}

Test(token, a_private_key_pem_is_refused_at_load)
{
    char err[512] = "";
    cr_assert_eq(jwt_keygen(dir, "rsa", "rsa"), 0);
    cr_assert_eq(jwt_keygen(dir, "ec", "ec"), 0);
    cr_expect_eq(token_keys_add_pem(keys, path("rsa", ".key"), err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "private key"), "%s", err);
    cr_expect(strstr(err, path("rsa", ".key")), "names the file: %s", err);
    cr_expect_eq(token_keys_add_pem(keys, path("ec", ".key"), err, sizeof(err)), -EINVAL);
    /* a file holding the public key and, after it, the private one */
    size_t a, b;
    char *pub = jwt_read_file(path("rsa", ".pub"), &a),
         *key = jwt_read_file(path("rsa", ".key"), &b);
    FILE *f = fopen(path("both", ".pem"), "w");
    fwrite(pub, 1, a, f);
    fwrite(key, 1, b, f);
    fclose(f);
    cr_expect_eq(token_keys_add_pem(keys, path("both", ".pem"), err, sizeof(err)), -EINVAL);
    cr_expect_eq(token_keys_count(keys), 0);
    free(pub);
    free(key);
}

Test(token, a_short_rsa_key_or_a_non_p256_ec_key_is_refused_at_load)
{
    char err[512] = "";
    cr_assert_eq(jwt_keygen(dir, "small", "rsa1024"), 0);
    cr_assert_eq(jwt_keygen(dir, "p384", "ec384"), 0);
    cr_expect_eq(token_keys_add_pem(keys, path("small", ".pub"), err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "1024"), "%s", err);
    cr_expect_eq(token_keys_add_pem(keys, path("p384", ".pub"), err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "P-256"), "%s", err);
    cr_expect_eq(token_keys_count(keys), 0);
}

Test(token, a_missing_or_garbage_pem_file_is_refused_at_load_naming_it)
{
    char err[512] = "";
    cr_expect_eq(token_keys_add_pem(keys, path("absent", ".pub"), err, sizeof(err)), -ENOENT);
    cr_expect(strstr(err, path("absent", ".pub")), "%s", err);
    FILE *f = fopen(path("junk", ".pub"), "w");
    fputs("-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n", f);
    fclose(f);
    cr_expect_eq(token_keys_add_pem(keys, path("junk", ".pub"), err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, path("junk", ".pub")), "%s", err);
    cr_expect_eq(token_keys_count(keys), 0);
}

/* ---- errors ------------------------------------------------------------------------------- */

Test(token, the_error_names_are_stable_and_the_texts_never_contain_the_token)
{
    static const char *names[] = {"malformed",     "too_big",  "alg",    "signature", "expired",
                                  "not_yet_valid", "audience", "issuer", "claims",    "nomem"};
    for (int e = 1; e <= TOKEN_NERR; e++) {
        cr_expect_str_eq(token_err_name(-e), names[e - 1]);
        cr_expect(strlen(token_err_text(-e)) > 0);
    }
    cr_expect_str_eq(token_err_name(0), "unknown");
    cr_expect_str_eq(token_err_name(-TOKEN_NERR - 1), "unknown");

    /* Every refusal of a token made of recognisable pieces: no piece of 6 characters or more of
     * the token appears in its error's name or text. */
    add_secret(S1);
    rules.aud = "nudge";
    rules.iss = "issuer";
    const char *claims[] = {
        "{\"sub\":\"JWTSUBJECT\",\"exp\":1,\"aud\":\"nudge\",\"iss\":\"issuer\"}",
        "{\"sub\":\"JWT:SUBJECT\",\"exp\":1800000000,\"aud\":\"nudge\",\"iss\":\"issuer\"}",
        "{\"sub\":\"JWTSUBJECT\",\"exp\":1800000000,\"aud\":\"AUDIENCE\"}",
        "{\"sub\":\"JWTSUBJECT\",\"exp\":1800000000,\"aud\":\"nudge\",\"iss\":\"ISSUER\"}",
        "{\"sub\":\"JWTSUBJECT\",\"exp\":1800000000,\"nbf\":1800000000}",
    };
    for (size_t i = 0; i < sizeof(claims) / sizeof(claims[0]); i++) {
        char *t = mint("HS256", S1, NULL, claims[i]);
        struct token_claims c;
        int rc = verify(t, &c);
        cr_assert_lt(rc, 0);
        const char *msgs[] = {token_err_name(rc), token_err_text(rc)};
        for (size_t m = 0; m < 2; m++)
            for (size_t o = 0; o + 6 <= strlen(t); o++) {
                char piece[7];
                memcpy(piece, t + o, 6);
                piece[6] = '\0';
                cr_expect_null(strstr(msgs[m], piece), "%s holds %s", msgs[m], piece);
            }
        free(t);
    }
}

/* ---- threads ------------------------------------------------------------------------------ */

struct job {
    char *tok[3];
    int bad;
};

static void *verify_many(void *arg)
{
    struct job *j = arg;
    for (int i = 0; i < 60; i++) {
        struct token_claims c;
        if (token_verify(keys, &rules, j->tok[i % 3], strlen(j->tok[i % 3]), NOW, &c) != 0)
            j->bad++;
        else
            token_claims_clear(&c);
    }
    return NULL;
}

Test(token, one_keyring_verifies_on_four_threads_at_once)
{
    add_secret(S1);
    char k1[256], k2[256];
    strcpy(k1, add_keypair("rsa", "rsa"));
    strcpy(k2, add_keypair("ec", "ec"));
    const char *claims = "{\"sub\":\"42\",\"exp\":1700003600,\"topics\":[\"a:*\",\"b:**\"]}";
    struct job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] =
            (struct job){.tok = {mint("HS256", S1, NULL, claims), mint("RS256", k1, NULL, claims),
                                 mint("ES256", k2, NULL, claims)}};
        cr_assert_eq(pthread_create(&th[i], NULL, verify_many, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(jobs[i].bad, 0);
        for (int t = 0; t < 3; t++)
            free(jobs[i].tok[t]);
    }
}
