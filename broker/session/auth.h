/* auth: who may do what (docs/security.md). Subscribers present a JWT (token.h) in hello, or
 * nothing (anonymous); publishers an API key; operators an admin bearer token. From the
 * broker's configuration this module builds one read-only struct auth, shared by every worker;
 * each authenticated connection gets a struct auth_grant, its own, checked on every
 * subscription and publish.
 *
 * Reading. Topics whose first segment is "user" are private: "user:<sub>" and everything below
 * it belong to the connection whose token says that sub, and to no other credential (public and
 * anonymous patterns, and a token's "topics", may not reach into "user:"). Any other topic is
 * readable when a pattern the connection holds covers it: the anonymous patterns for everyone,
 * the public patterns and the token's "topics" for a token holder. A wildcard subscription is
 * accepted only when one such pattern covers every topic it could ever match (it is refused,
 * not filtered per delivery: what was accepted never needs rechecking and a pattern costs
 * nothing per hint). Resume and replay run through the same subscription, so the same rule.
 *
 * Development mode: with no token key and no anonymous pattern configured, every subscriber
 * reads every topic; with no publisher key, every publisher publishes. */
#ifndef NUDGE_AUTH_H
#define NUDGE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "revoke.h"
#include "stat.h"
#include "token.h"
#include "wire.h"

#define AUTH_FILES_MAX 4      /* --token-secret-file, --token-public-key: each */
#define AUTH_PATTERNS_MAX 64  /* --public, --anonymous: each */
#define AUTH_KEYS_MAX 64      /* publisher keys in --pub-keys */
#define AUTH_KEY_PATTERNS 16  /* patterns of one publisher key */
#define AUTH_SECRET_MIN 16    /* bytes of a publisher key or the admin token */
#define AUTH_LEEWAY_DEFAULT 5 /* seconds of clock skew allowed on exp/nbf/iat */

/* What the operator configured: flags as given (pointers into argv or static storage). */
struct auth_config {
    const char *secret_files[AUTH_FILES_MAX]; /* --token-secret-file: one HS secret per file */
    uint32_t nsecret_files;
    const char *pem_files[AUTH_FILES_MAX]; /* --token-public-key: RS256/ES256 public keys */
    uint32_t npem_files;
    const char *aud, *iss;                  /* --token-aud, --token-iss; NULL = not checked */
    uint32_t leeway_s;                      /* --token-leeway */
    const char *publics[AUTH_PATTERNS_MAX]; /* --public: read by any token holder */
    uint32_t npublics;
    const char *anons[AUTH_PATTERNS_MAX]; /* --anonymous: read by every connection */
    uint32_t nanons;
    const char *pub_keys_file;    /* --pub-keys: "NAME SECRET [rate=N] [PATTERN ...]" per line */
    uint32_t pub_rate;            /* --pub-rate: publishes/s per key without its own rate=; 0 =
                                     unbounded */
    const char *admin_token_file; /* --admin-token-file */
    uint32_t revoke_keep_s;       /* --revoke-keep: seconds a revocation is kept (revoke.h) */
};

void auth_config_default(struct auth_config *c);
/* The whole file at path, at most max bytes, in a malloc'd NUL-terminated buffer (the caller
 * frees it) of *len bytes; NULL with a message naming path in err. */
char *auth_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);
/* If argv[*i] is one of auth's flags, consume it (and its value: *i advances) and return 1; 0
 * when it is not; -1 with a message in err when its value is missing or out of range. */
int auth_config_flag(struct auth_config *c, int argc, char **argv, int *i, char *err,
                     size_t errlen);

/* A publisher API key (from --pub-keys). */
struct auth_key {
    char name[64];
    uint8_t hash[32];                  /* SHA-256 of the secret: compared in constant time */
    uint32_t rate;                     /* publishes per second (and burst), 0 = unbounded */
    _Atomic uint64_t tat;              /* with a rate: the GCRA's theoretical arrival time, ns */
    uint32_t npatterns;                /* 0 = any topic */
    char *patterns[AUTH_KEY_PATTERNS]; /* owned by struct auth */
    uint32_t pattern_len[AUTH_KEY_PATTERNS]; /* strlen of each: checked on every publish */
};

/* Refusal counters (/stats "auth", /metrics). */
struct auth_stats {
    stat_t token_refused[TOKEN_NERR + 1]; /* [-err]: token_err_name(-i) */
    stat_t token_required;  /* hello without a token where anonymous reading is not configured */
    stat_t forbidden;       /* subscriptions and publishes refused by the namespace rules */
    stat_t pub_refused;     /* publisher hellos with a missing or unknown key */
    stat_t rate_limited;    /* publishes refused by their key's rate */
    stat_t admin_refused;   /* admin requests without the bearer token */
    stat_t expired;         /* connections closed with 4002 */
    stat_t refreshed;       /* tokens refreshed on a live connection */
    stat_t refresh_refused; /* refreshes refused (then closed with 4003) */
    stat_t revoked;         /* tokens refused because their user was revoked (any thread: added
                               with an atomic read-modify-write) */
};

struct auth {
    struct token_keys *keys; /* owned */
    struct token_rules rules;
    char **publics; /* owned copies */
    uint32_t npublics;
    char **anons;
    uint32_t nanons;
    struct auth_key *pub_keys; /* owned */
    uint32_t npub_keys;
    uint8_t admin_hash[32];
    int admin_required;     /* an admin token is configured */
    int subs_open;          /* development mode for subscribers */
    int pubs_open;          /* development mode for publishers */
    struct revoke *revoked; /* users whose older tokens are refused (POST
                               /users/USER/disconnect): &own_revoked after auth_load; the broker
                               points it at a table that outlives a reload */
    struct revoke own_revoked;
    struct auth_stats *st; /* &own_st after auth_load; the broker points it at counters that
                              outlive a reload (one struct auth per configuration) */
    struct auth_stats own_st;
};

/* Build a from c: reads every file, checks every pattern. Returns 0, or -1 with a message in err
 * that names the flag or file and never prints a secret. a is then auth_free'd by the caller
 * either way. */
int auth_load(struct auth *a, const struct auth_config *c, char *err, size_t errlen);
void auth_free(struct auth *a);

enum auth_kind { AUTH_OPEN = 0, AUTH_ANON, AUTH_USER };

/* What one subscriber connection may read. Token holders' grants are allocated (auth_grant_free);
 * the open and anonymous grants are static and shared. A token grant is one allocation sized to
 * its claims: this header, the sub, then the "topics" patterns (read with auth_grant_topic). It
 * lives as long as its connection and a connection's memory is budgeted (docs/bench.md §Memory
 * per connection), so it holds no more: no copy of the token's other claims, no list links (the
 * session walks its hub's connections). */
struct auth_grant {
    enum auth_kind kind;
    uint32_t sub_len; /* AUTH_USER: the token's "sub" */
    int64_t exp;      /* token expiry, seconds since the epoch; 0 for open and anonymous */
    uint32_t ntopics; /* AUTH_USER: the token's "topics" patterns */
    char sub[];       /* sub_len bytes and a NUL; then the topics (auth.c) */
};

/* The i-th (< g->ntopics) "topics" pattern of a token grant, NUL-terminated; *len its length. */
const char *auth_grant_topic(const struct auth_grant *g, uint32_t i, size_t *len);

/* Refuse, from now_s on, the tokens of user[0..len) issued before before_s (iat < before_s, or
 * no iat): at every hello and refresh on any thread, for --revoke-keep seconds (revoke.h). The
 * connections already open are the caller's to close. Returns 0, -ENOSPC (the table is full) or
 * -ENOMEM. */
int auth_revoke(struct auth *a, const char *user, size_t len, int64_t before_s, int64_t now_s);

/* Subscriber hello: decide from token (len 0 = none) at now_s. Returns 0 with *out (static for
 * open/anonymous, else allocated) or a WIRE_C_* code with *why (static, never the token). */
int auth_sub_hello(struct auth *a, struct wire_str token, int64_t now_s, struct auth_grant **out,
                   const char **why);
/* A refresh on a connection holding g: the new token must verify and name the same sub.
 * Returns 0 with *out (allocated) or a WIRE_C_* code with *why. */
int auth_refresh(struct auth *a, const struct auth_grant *g, struct wire_str token, int64_t now_s,
                 struct auth_grant **out, const char **why);
void auth_grant_free(struct auth_grant *g);
/* May grant g subscribe to s[0..len) (a topic or a valid pattern)? 1 or 0. */
int auth_can_read(const struct auth *a, const struct auth_grant *g, const char *s, size_t len);

/* Publisher hello: raw msgpack of "auth" (NULL = none). Returns 0 with *out (NULL in
 * development mode: everything allowed) or WIRE_C_UNAUTHORIZED with *why. */
int auth_pub_hello(struct auth *a, const uint8_t *msgpack, size_t len, struct auth_key **out,
                   const char **why);
/* The same for a key given as text, key[0..len) (NULL = none): an HTTP publish's bearer key
 * (broker/net/http.c), checked on every request. */
int auth_pub_key(struct auth *a, const char *key, size_t len, struct auth_key **out,
                 const char **why);
/* The key of a with k's name and secret (k from another struct auth, before a reload), or NULL
 * when a has no such key. */
struct auth_key *auth_key_same(struct auth *a, const struct auth_key *k);
/* May key k (NULL: open) publish once more at now_ns (monotonic)? Keys with a rate allow `rate`
 * publishes a second with bursts of up to `rate` (a GCRA on one atomic word: any thread, no
 * lock). 1, or 0 (counted in a->st->rate_limited). */
int auth_pub_allow(struct auth *a, struct auth_key *k, uint64_t now_ns);
/* May key k (NULL: open) publish to topic t[0..len)? 1 or 0. */
int auth_can_publish(const struct auth_key *k, const char *t, size_t len);

/* The stable name of a refusal from its why (as set by auth_sub_hello, auth_refresh,
 * auth_pub_hello, auth_pub_key): a reason of /metrics nudge_auth_refused_total (token errors by
 * token_err_name, "token_required", "api_key"), "sub_changed" for a refresh naming another
 * sub, "nomem", or "refused" for a text it does not know. For logs. */
const char *auth_refusal_name(const char *why);

/* Admin request: v[0..len) is the Authorization header's value (NULL when absent). 1 when no
 * admin token is configured or v is "Bearer <token>" with the right token; else 0 (counted). */
int auth_admin_ok(struct auth *a, const char *v, size_t len);

/* Does pattern outer cover every topic that inner (a topic or a pattern) could match? Both must
 * be valid (match_kind >= 0). 1 or 0. */
int auth_covers(const char *outer, size_t olen, const char *inner, size_t ilen);

#endif
