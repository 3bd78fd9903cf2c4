/* auth: see auth.h. Everything here is decided by comparing a subscription with a handful of
 * patterns, segment by segment (auth_covers): no pattern is ever expanded into topics, so a check
 * costs O(patterns held x segments) and nothing per delivered hint. Secrets are compared as
 * SHA-256 digests with CRYPTO_memcmp: the time taken says nothing of how much of a guess was
 * right, nor of its length. */
#include "auth.h"

#include <errno.h>
#include <stdatomic.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "match.h"

#define FILE_MAX 65536

void auth_config_default(struct auth_config *c)
{
    memset(c, 0, sizeof(*c));
    c->leeway_s = AUTH_LEEWAY_DEFAULT;
    c->revoke_keep_s = REVOKE_KEEP_DEFAULT;
}

/* A repeatable flag's next place in its list, or NULL (with err) when the list is full. */
static const char **list_slot(const char *flag, const char **list, uint32_t *n, uint32_t max,
                              char *err, size_t errlen)
{
    if (*n < max) return &list[(*n)++];
    snprintf(err, errlen, "%s: at most %u of them", flag, max);
    return NULL;
}

/* A flag taking an integer in [0, max]. Returns 1, or -1 with err. */
static int num_flag(const char *flag, const char *v, unsigned long max, uint32_t *out, int *i,
                    char *err, size_t errlen)
{
    char *end;
    errno = 0;
    unsigned long x = v && *v && *v != '-' ? strtoul(v, &end, 10) : 0;
    if (!v || !*v || *v == '-' || errno || *end || x > max) {
        snprintf(err, errlen, "%s wants an integer in [0, %lu]", flag, max);
        return -1;
    }
    *out = (uint32_t)x;
    (*i)++;
    return 1;
}

int auth_config_flag(struct auth_config *c, int argc, char **argv, int *i, char *err, size_t errlen)
{
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    const char **slot;
    if (!strcmp(a, "--token-leeway")) return num_flag(a, v, 600, &c->leeway_s, i, err, errlen);
    if (!strcmp(a, "--pub-rate")) return num_flag(a, v, 100000000, &c->pub_rate, i, err, errlen);
    if (!strcmp(a, "--revoke-keep")) {
        int rc = num_flag(a, v, REVOKE_KEEP_MAX, &c->revoke_keep_s, i, err, errlen);
        if (rc == 1 && c->revoke_keep_s < 60) {
            snprintf(err, errlen, "%s wants an integer in [60, %u]", a, REVOKE_KEEP_MAX);
            return -1;
        }
        return rc;
    }
    if (!strcmp(a, "--token-secret-file"))
        slot = list_slot(a, c->secret_files, &c->nsecret_files, AUTH_FILES_MAX, err, errlen);
    else if (!strcmp(a, "--token-public-key"))
        slot = list_slot(a, c->pem_files, &c->npem_files, AUTH_FILES_MAX, err, errlen);
    else if (!strcmp(a, "--public"))
        slot = list_slot(a, c->publics, &c->npublics, AUTH_PATTERNS_MAX, err, errlen);
    else if (!strcmp(a, "--anonymous"))
        slot = list_slot(a, c->anons, &c->nanons, AUTH_PATTERNS_MAX, err, errlen);
    else if (!strcmp(a, "--token-aud"))
        slot = &c->aud;
    else if (!strcmp(a, "--token-iss"))
        slot = &c->iss;
    else if (!strcmp(a, "--pub-keys"))
        slot = &c->pub_keys_file;
    else if (!strcmp(a, "--admin-token-file"))
        slot = &c->admin_token_file;
    else
        return 0;
    if (!slot) return -1;
    if (!v || !*v) {
        snprintf(err, errlen, "%s wants a value", a);
        return -1;
    }
    *slot = v;
    (*i)++;
    return 1;
}

char *auth_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int bad = !buf || ferror(f);
    fclose(f);
    if (bad || n > max) {
        if (bad)
            snprintf(err, errlen, "%s: cannot be read", path);
        else
            snprintf(err, errlen, "%s: larger than %zu KiB", path, max / 1024);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* A secret file holds the secret alone; one trailing newline (an editor's) is not part of it. */
static void trim_newline(char *s, size_t *len)
{
    if (*len && s[*len - 1] == '\n') (*len)--;
    if (*len && s[*len - 1] == '\r') (*len)--;
    s[*len] = '\0';
}

static void digest(const void *p, size_t len, uint8_t out[32])
{
    SHA256(p, len, out);
}

/* Does p[0..len) reach into the private namespace: could it match a "user:..." topic? */
static int reaches_user(const char *p, size_t len)
{
    size_t seg = 0;
    while (seg < len && p[seg] != ':')
        seg++;
    if (seg == 4 && !memcmp(p, "user", 4)) return 1;
    if (seg == 1 && p[0] == '*') return 1;
    return seg == 2 && !memcmp(p, "**", 2);
}

/* A topic or pattern by the topic rules, '*' allowed as a whole segment or a final "**". */
static int pattern_valid(const char *p, size_t len)
{
    if (len == 0 || len > WIRE_TOPIC_LEN_MAX || match_kind(p, len) < 0) return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)p[i] <= 0x20 || p[i] == 0x7f) return 0;
    return wire_utf8_valid(p, len);
}

/* A pattern that grants reading: valid, and no reach into "user:". */
static int pattern_ok(const char *p, size_t len)
{
    return pattern_valid(p, len) && !reaches_user(p, len);
}

static char **copy_patterns(const char *const *src, uint32_t n, const char *flag, char *err,
                            size_t errlen)
{
    char **out = calloc(n ? n : 1, sizeof(*out));
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (!pattern_ok(src[i], strlen(src[i]))) {
            snprintf(err, errlen,
                     "%s '%s': not a valid topic or pattern, or reaches into the private "
                     "\"user:\" namespace (only a user's own token reads user:<sub>)",
                     flag, src[i]);
            for (uint32_t k = 0; k < i; k++)
                free(out[k]);
            free(out);
            return NULL;
        }
        if (!(out[i] = strdup(src[i]))) {
            snprintf(err, errlen, "out of memory");
            for (uint32_t k = 0; k < i; k++)
                free(out[k]);
            free(out);
            return NULL;
        }
    }
    return out;
}

/* --pub-keys: "NAME SECRET [PATTERN ...]" per line; '#' starts a comment line. */
static int load_pub_keys(struct auth *a, const char *path, uint32_t rate, char *err, size_t errlen)
{
    size_t len;
    char *buf = auth_read_file(path, FILE_MAX, &len, err, errlen);
    if (!buf) return -1;
    if (!(a->pub_keys = calloc(AUTH_KEYS_MAX, sizeof(*a->pub_keys)))) {
        free(buf);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = 0, line = 0;
    char *save = NULL;
    for (char *l = strtok_r(buf, "\n", &save); l && rc == 0; l = strtok_r(NULL, "\n", &save)) {
        line++;
        char *wsave = NULL, *w[3 + AUTH_KEY_PATTERNS + 1]; /* name secret rate= patterns, 1 more */
        int nw = 0;
        for (char *t = strtok_r(l, " \t\r", &wsave); t; t = strtok_r(NULL, " \t\r", &wsave)) {
            if (nw == 0 && t[0] == '#') break;
            if (nw < (int)(sizeof(w) / sizeof(w[0]))) w[nw] = t;
            nw++;
        }
        if (nw == 0) continue;
        const char *why = NULL;
        if (nw < 2)
            why = "wants NAME SECRET [PATTERN ...]";
        else if (nw > 2 + AUTH_KEY_PATTERNS + (nw > 2 && !strncmp(w[2], "rate=", 5)))
            why = "more than 16 patterns";
        else if (strlen(w[0]) >= sizeof(a->pub_keys[0].name))
            why = "name longer than 63 bytes";
        else if (strlen(w[1]) < AUTH_SECRET_MIN)
            why = "secret shorter than 16 bytes";
        else if (a->npub_keys >= AUTH_KEYS_MAX)
            why = "more than 64 keys";
        if (why) {
            snprintf(err, errlen, "%s line %d: %s", path, line, why);
            rc = -1;
            break;
        }
        struct auth_key *k = &a->pub_keys[a->npub_keys++];
        snprintf(k->name, sizeof(k->name), "%s", w[0]);
        digest(w[1], strlen(w[1]), k->hash);
        k->rate = rate;
        int first = 2;
        if (nw > 2 && !strncmp(w[2], "rate=", 5)) {
            char *end;
            errno = 0;
            unsigned long x = strtoul(w[2] + 5, &end, 10);
            if (!w[2][5] || w[2][5] == '-' || errno || *end || x > 100000000) {
                snprintf(err, errlen, "%s line %d: rate= wants publishes per second", path, line);
                rc = -1;
                break;
            }
            k->rate = (uint32_t)x;
            first = 3;
        }
        for (int p = first; p < nw; p++) {
            if (!pattern_valid(w[p], strlen(w[p]))) { /* publishing to user: topics is fine */
                snprintf(err, errlen, "%s line %d: pattern %d is not a valid topic or pattern",
                         path, line, p - first + 1);
                rc = -1;
                break;
            }
            k->pattern_len[k->npatterns] = (uint32_t)strlen(w[p]);
            if (!(k->patterns[k->npatterns++] = strdup(w[p]))) {
                snprintf(err, errlen, "out of memory");
                rc = -1;
                break;
            }
        }
    }
    if (rc == 0 && a->npub_keys == 0) {
        snprintf(err, errlen, "%s: no key in it", path);
        rc = -1;
    }
    OPENSSL_cleanse(buf, len);
    free(buf);
    return rc;
}

int auth_load(struct auth *a, const struct auth_config *c, char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    a->st = &a->own_st;
    a->revoked = &a->own_revoked;
    if (token_keys_new(&a->keys) < 0 || revoke_init(&a->own_revoked, c->revoke_keep_s) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < c->nsecret_files; i++) {
        size_t len;
        char *s = auth_read_file(c->secret_files[i], FILE_MAX, &len, err, errlen);
        if (!s) return -1;
        trim_newline(s, &len);
        char kerr[160];
        int rc = token_keys_add_secret(a->keys, (const uint8_t *)s, len, kerr, sizeof(kerr));
        OPENSSL_cleanse(s, len);
        free(s);
        if (rc < 0) {
            snprintf(err, errlen, "--token-secret-file %s: %s", c->secret_files[i], kerr);
            return -1;
        }
    }
    for (uint32_t i = 0; i < c->npem_files; i++) {
        char kerr[256];
        if (token_keys_add_pem(a->keys, c->pem_files[i], kerr, sizeof(kerr)) < 0) {
            snprintf(err, errlen, "--token-public-key: %s", kerr);
            return -1;
        }
    }
    a->rules.aud = c->aud;
    a->rules.iss = c->iss;
    a->rules.leeway_s = c->leeway_s;
    if (!(a->publics = copy_patterns(c->publics, c->npublics, "--public", err, errlen))) return -1;
    a->npublics = c->npublics;
    if (!(a->anons = copy_patterns(c->anons, c->nanons, "--anonymous", err, errlen))) return -1;
    a->nanons = c->nanons;
    if (c->npublics && token_keys_count(a->keys) == 0) {
        snprintf(err, errlen,
                 "--public needs token keys (--token-secret-file or "
                 "--token-public-key): public topics are for token holders");
        return -1;
    }
    if (c->pub_keys_file && load_pub_keys(a, c->pub_keys_file, c->pub_rate, err, errlen) < 0)
        return -1;
    if (c->admin_token_file) {
        size_t len;
        char *s = auth_read_file(c->admin_token_file, FILE_MAX, &len, err, errlen);
        if (!s) return -1;
        trim_newline(s, &len);
        int shortish = len < AUTH_SECRET_MIN || memchr(s, ' ', len) != NULL;
        digest(s, len, a->admin_hash);
        OPENSSL_cleanse(s, len);
        free(s);
        if (shortish) {
            snprintf(err, errlen,
                     "--admin-token-file %s: the token must be at least 16 bytes, no spaces",
                     c->admin_token_file);
            return -1;
        }
        a->admin_required = 1;
    }
    a->subs_open = token_keys_count(a->keys) == 0 && a->nanons == 0;
    a->pubs_open = a->npub_keys == 0;
    return 0;
}

void auth_free(struct auth *a)
{
    token_keys_free(a->keys);
    for (uint32_t i = 0; a->publics && i < a->npublics; i++)
        free(a->publics[i]);
    free(a->publics);
    for (uint32_t i = 0; a->anons && i < a->nanons; i++)
        free(a->anons[i]);
    free(a->anons);
    for (uint32_t i = 0; a->pub_keys && i < a->npub_keys; i++)
        for (uint32_t p = 0; p < a->pub_keys[i].npatterns; p++)
            free(a->pub_keys[i].patterns[p]);
    free(a->pub_keys);
    revoke_free(&a->own_revoked);
    memset(a, 0, sizeof(*a));
}

/* ---- patterns ---------------------------------------------------------------------------- */

/* The segment of s[0..len) starting at *off: [*off, end). Advances *off past its ':'. Returns 0
 * when no segment is left. */
static int next_seg(const char *s, size_t len, size_t *off, const char **seg, size_t *slen)
{
    if (*off > len) return 0;
    size_t e = *off;
    while (e < len && s[e] != ':')
        e++;
    *seg = s + *off;
    *slen = e - *off;
    *off = e + 1;
    return 1;
}

static int is(const char *seg, size_t n, const char *lit)
{
    return n == strlen(lit) && !memcmp(seg, lit, n);
}

int auth_covers(const char *outer, size_t olen, const char *inner, size_t ilen)
{
    size_t oo = 0, io = 0;
    const char *os, *is_;
    size_t on, in;
    for (;;) {
        int ho = next_seg(outer, olen, &oo, &os, &on);
        int hi = next_seg(inner, ilen, &io, &is_, &in);
        if (ho && oo > olen && is(os, on, "**")) return hi; /* one or more remaining: any */
        if (!ho || !hi) return !ho && !hi;
        if (is(is_, in, "**")) return 0; /* inner goes on without bound, outer does not */
        if (is(os, on, "*")) continue;   /* one segment, whatever inner has there */
        if (is(is_, in, "*") || on != in || memcmp(os, is_, on)) return 0;
    }
}

/* ---- subscribers ------------------------------------------------------------------------- */

static struct auth_grant open_grant = {.kind = AUTH_OPEN};
static struct auth_grant anon_grant = {.kind = AUTH_ANON};

/* Check a verified token's claims against the namespace rules; 0 or a refusal. */
static int claims_ok(const struct token_claims *cl, const char **why)
{
    for (uint32_t i = 0; i < cl->ntopics; i++) {
        const char *t = cl->topics[i];
        size_t n = cl->topic_len[i];
        if (!pattern_ok(t, n)) {
            *why = "token \"topics\" holds an invalid pattern or one reaching into \"user:\"";
            return WIRE_C_UNAUTHORIZED;
        }
    }
    return 0;
}

/* The grant for verified claims cl, in one allocation: the struct and its sub, then each of the
 * "topics" as a byte of length (patterns are at most TOKEN_TOPIC_MAX = 256 bytes: stored minus
 * one) and its NUL-terminated text. NULL on OOM. */
static struct auth_grant *grant_new(const struct token_claims *cl)
{
    size_t n = cl->ntopics, bytes = sizeof(struct auth_grant) + cl->sub_len + 1;
    for (size_t i = 0; i < n; i++)
        bytes += 1 + cl->topic_len[i] + 1;
    struct auth_grant *g = malloc(bytes);
    if (!g) return NULL;
    memset(g, 0, sizeof(*g));
    g->kind = AUTH_USER;
    g->sub_len = cl->sub_len;
    g->exp = cl->exp;
    g->ntopics = (uint32_t)n;
    memcpy(g->sub, cl->sub, cl->sub_len);
    g->sub[cl->sub_len] = '\0';
    char *p = g->sub + cl->sub_len + 1;
    for (size_t i = 0; i < n; i++) {
        *p++ = (char)(uint8_t)(cl->topic_len[i] - 1); /* 1..TOKEN_TOPIC_MAX (token.h) */
        memcpy(p, cl->topics[i], cl->topic_len[i]);
        p[cl->topic_len[i]] = '\0';
        p += cl->topic_len[i] + 1;
    }
    return g;
}

const char *auth_grant_topic(const struct auth_grant *g, uint32_t i, size_t *len)
{
    const char *p = g->sub + g->sub_len + 1;
    for (;;) {
        size_t n = (size_t)(uint8_t)*p + 1;
        if (i-- == 0) {
            *len = n;
            return p + 1;
        }
        p += 1 + n + 1;
    }
}

static int verify(struct auth *a, struct wire_str token, int64_t now_s, struct auth_grant **out,
                  const char **why)
{
    struct token_claims cl; /* ~1 KB, only while verifying */
    int rc = token_verify(a->keys, &a->rules, token.p, token.len, now_s, &cl);
    if (rc < 0) {
        stat_add(&a->st->token_refused[rc < -TOKEN_NERR ? 0 : -rc], 1);
        *why = token_err_text(rc);
        return rc == TOKEN_ENOMEM ? WIRE_C_INTERNAL : WIRE_C_UNAUTHORIZED;
    }
    if ((rc = claims_ok(&cl, why)) != 0) {
        stat_add(&a->st->token_refused[-TOKEN_ECLAIMS], 1);
        token_claims_clear(&cl);
        return rc;
    }
    int64_t before;
    if (revoke_check(a->revoked, cl.sub, cl.sub_len, cl.has_iat, cl.iat, now_s, &before)) {
        atomic_fetch_add_explicit(&a->st->revoked, 1, memory_order_relaxed);
        token_claims_clear(&cl);
        *why = "the operator revoked this user's tokens issued before a moment (\"iat\"): get a "
               "new token";
        return WIRE_C_UNAUTHORIZED;
    }
    struct auth_grant *g = grant_new(&cl);
    token_claims_clear(&cl);
    if (!g) {
        *why = "out of memory";
        return WIRE_C_INTERNAL;
    }
    *out = g;
    return 0;
}

int auth_revoke(struct auth *a, const char *user, size_t len, int64_t before_s, int64_t now_s)
{
    return revoke_add(a->revoked, user, len, before_s, now_s);
}

int auth_sub_hello(struct auth *a, struct wire_str token, int64_t now_s, struct auth_grant **out,
                   const char **why)
{
    if (a->subs_open) {
        *out = &open_grant;
        return 0;
    }
    if (token.len == 0) {
        if (a->nanons) {
            *out = &anon_grant;
            return 0;
        }
        stat_add(&a->st->token_required, 1);
        *why = "this broker requires a token in hello";
        return WIRE_C_UNAUTHORIZED;
    }
    if (token_keys_count(a->keys) == 0) {
        stat_add(&a->st->token_refused[-TOKEN_EALG], 1);
        *why = "this broker has no token keys: connect without a token";
        return WIRE_C_UNAUTHORIZED;
    }
    return verify(a, token, now_s, out, why);
}

int auth_refresh(struct auth *a, const struct auth_grant *g, struct wire_str token, int64_t now_s,
                 struct auth_grant **out, const char **why)
{
    struct auth_grant *n = NULL;
    int rc = verify(a, token, now_s, &n, why);
    if (rc == 0 && (n->sub_len != g->sub_len || memcmp(n->sub, g->sub, n->sub_len))) {
        auth_grant_free(n);
        *why = "a refresh must carry a token for the same sub";
        rc = WIRE_C_UNAUTHORIZED;
    }
    if (rc) {
        stat_add(&a->st->refresh_refused, 1);
        return rc;
    }
    stat_add(&a->st->refreshed, 1);
    *out = n;
    return 0;
}

void auth_grant_free(struct auth_grant *g)
{
    if (!g || g == &open_grant || g == &anon_grant) return;
    free(g);
}

static int any_covers(char *const *pats, uint32_t n, const char *s, size_t len)
{
    for (uint32_t i = 0; i < n; i++)
        if (auth_covers(pats[i], strlen(pats[i]), s, len)) return 1;
    return 0;
}

int auth_can_read(const struct auth *a, const struct auth_grant *g, const char *s, size_t len)
{
    if (g->kind == AUTH_OPEN) return 1;
    if (any_covers(a->anons, a->nanons, s, len)) return 1;
    if (g->kind != AUTH_USER) return 0;
    /* The user's own namespace: "user:<sub>" and "user:<sub>:**". */
    char own[5 + TOKEN_SUB_MAX + 3];
    int n = snprintf(own, sizeof(own), "user:%s:**", g->sub);
    if (auth_covers(own, (size_t)n, s, len) || auth_covers(own, (size_t)n - 3, s, len)) return 1;
    if (any_covers(a->publics, a->npublics, s, len)) return 1;
    const char *t = g->sub + g->sub_len + 1; /* the topics, in turn (grant_new) */
    for (uint32_t i = 0; i < g->ntopics; i++) {
        size_t tl = (size_t)(uint8_t)*t + 1;
        if (auth_covers(t + 1, tl, s, len)) return 1;
        t += 1 + tl + 1;
    }
    return 0;
}

/* ---- publishers and operators ------------------------------------------------------------ */

struct auth_key *auth_key_same(struct auth *a, const struct auth_key *k)
{
    for (uint32_t i = 0; i < a->npub_keys; i++)
        if (!strcmp(a->pub_keys[i].name, k->name) &&
            CRYPTO_memcmp(a->pub_keys[i].hash, k->hash, sizeof(k->hash)) == 0)
            return &a->pub_keys[i];
    return NULL;
}

int auth_pub_key(struct auth *a, const char *key, size_t len, struct auth_key **out,
                 const char **why)
{
    *out = NULL;
    if (a->pubs_open) return 0;
    if (!key) {
        stat_add(&a->st->pub_refused, 1);
        *why = "this broker requires an API key";
        return WIRE_C_UNAUTHORIZED;
    }
    uint8_t h[32];
    digest(key, len, h);
    struct auth_key *found = NULL;
    for (uint32_t i = 0; i < a->npub_keys; i++) /* every key, whichever matches */
        if (CRYPTO_memcmp(h, a->pub_keys[i].hash, sizeof(h)) == 0) found = &a->pub_keys[i];
    if (!found) {
        stat_add(&a->st->pub_refused, 1);
        *why = "unknown API key";
        return WIRE_C_UNAUTHORIZED;
    }
    *out = found;
    return 0;
}

int auth_pub_hello(struct auth *a, const uint8_t *msgpack, size_t len, struct auth_key **out,
                   const char **why)
{
    *out = NULL;
    if (a->pubs_open) return 0;
    struct wire__rd r = {msgpack, len, 0};
    struct wire_str key = {NULL, 0};
    if (!msgpack || wire__rd_str(&r, &key) < 0 || r.off != len) {
        stat_add(&a->st->pub_refused, 1);
        *why = msgpack ? "\"auth\" must be the API key as a string"
                       : "this broker requires an API key in hello (\"auth\")";
        return WIRE_C_UNAUTHORIZED;
    }
    return auth_pub_key(a, key.p, key.len, out, why);
}

/* GCRA: each publish moves the key's theoretical arrival time (TAT) on by 1/rate s; one is
 * refused when that would put the TAT more than a second (the burst) ahead of now. */
int auth_pub_allow(struct auth *a, struct auth_key *k, uint64_t now_ns)
{
    if (!k || !k->rate) return 1;
    uint64_t step = 1000000000ull / k->rate, burst = 1000000000ull;
    uint64_t tat = atomic_load_explicit(&k->tat, memory_order_relaxed), next;
    do {
        next = (tat > now_ns ? tat : now_ns) + step;
        if (next - now_ns > burst) {
            stat_add(&a->st->rate_limited, 1);
            return 0;
        }
    } while (!atomic_compare_exchange_weak_explicit(&k->tat, &tat, next, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 1;
}

int auth_can_publish(const struct auth_key *k, const char *t, size_t len)
{
    if (!k || k->npatterns == 0) return 1;
    for (uint32_t i = 0; i < k->npatterns; i++)
        if (auth_covers(k->patterns[i], k->pattern_len[i], t, len)) return 1;
    return 0;
}

int auth_admin_ok(struct auth *a, const char *v, size_t len)
{
    if (!a->admin_required) return 1;
    uint8_t h[32];
    int ok = v && len > 7 && !strncasecmp(v, "Bearer ", 7);
    if (ok) {
        digest(v + 7, len - 7, h);
        ok = CRYPTO_memcmp(h, a->admin_hash, sizeof(h)) == 0;
    }
    if (!ok) stat_add(&a->st->admin_refused, 1);
    return ok;
}

/* The texts this file's refusals set (above) and their names; a token error's text comes from
 * token_err_text. test_auth checks every refusal maps to a name. */
const char *auth_refusal_name(const char *why)
{
    static const struct {
        const char *why, *name;
    } own[] = {
        {"this broker requires a token in hello", "token_required"},
        {"this broker has no token keys: connect without a token", "alg"},
        {"token \"topics\" holds an invalid pattern or one reaching into \"user:\"", "claims"},
        {"a refresh must carry a token for the same sub", "sub_changed"},
        {"this broker requires an API key", "api_key"},
        {"unknown API key", "api_key"},
        {"\"auth\" must be the API key as a string", "api_key"},
        {"this broker requires an API key in hello (\"auth\")", "api_key"},
        {"out of memory", "nomem"},
    };
    if (!why) return "refused";
    for (int e = -1; e >= -TOKEN_NERR; e--)
        if (strcmp(why, token_err_text(e)) == 0) return token_err_name(e);
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if (strcmp(why, own[i].why) == 0) return own[i].name;
    return "refused";
}
