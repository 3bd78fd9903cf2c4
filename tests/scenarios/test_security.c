/* Security end to end (docs/security.md): a real nudged with token keys, public and anonymous
 * patterns, publisher API keys and an admin token; real WebSocket clients and libnudge. User A
 * never hears user B by any route, every token refusal says why (and never echoes the token),
 * refresh keeps a connection and expiry closes it with 4002, publisher keys are scoped, the
 * admin endpoint wants its bearer token, and a listener others could reach refuses to start
 * without its secrets. Suite reload: a SIGHUP rotates all of it on a running broker. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "jwt.h"
#include "subcheck.h"
#include "wsc.h"

#define S1 "first-hs-secret-for-tests-only-0123456789"
#define S2 "second-hs-secret-for-tests-only-0123456789"
#define KEY_ALL "all-topics-key-0123456789"
#define KEY_BILLING "billing-key-0123456789"
#define ADMIN "admin-token-for-tests-0123456789"

static char dir[64];
static char path_s1[128], path_s2[128], path_rsa[128], path_ec[128], path_keys[128],
    path_admin[128], priv_rsa[128], priv_ec[128];

static void write_file(char *path, const char *name, const char *text)
{
    snprintf(path, 128, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/nudge-security-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    write_file(path_s1, "s1", S1 "\n");
    write_file(path_s2, "s2", S2);
    write_file(path_keys, "keys",
               "all " KEY_ALL "\n"
               "billing " KEY_BILLING " invoice:** user:*\n");
    write_file(path_admin, "admin", ADMIN "\n");
    cr_assert_eq(jwt_keygen(dir, "rsa", "rsa"), 0);
    cr_assert_eq(jwt_keygen(dir, "ec", "ec"), 0);
    harness_admin_token = ADMIN;
    snprintf(path_rsa, sizeof path_rsa, "%s/rsa.pub", dir);
    snprintf(path_ec, sizeof path_ec, "%s/ec.pub", dir);
    snprintf(priv_rsa, sizeof priv_rsa, "%s/rsa.key", dir);
    snprintf(priv_ec, sizeof priv_ec, "%s/ec.key", dir);
}

static void teardown(void)
{
    harness_admin_token = NULL;
    nudged_rm_dir(dir);
}

TestSuite(security, .init = setup, .fini = teardown);

/* A broker with every secret configured, plus more args (NULL-terminated, or NULL). */
static void start(struct nudged *d, const char *const *more)
{
    const char *args[48] = {"--token-secret-file",
                            path_s1,
                            "--token-secret-file",
                            path_s2,
                            "--token-public-key",
                            path_rsa,
                            "--token-public-key",
                            path_ec,
                            "--token-aud",
                            "app",
                            "--token-iss",
                            "backend",
                            "--token-leeway",
                            "0",
                            "--public",
                            "feed:*",
                            "--public",
                            "project:**",
                            "--anonymous",
                            "feed:public:*",
                            "--pub-keys",
                            path_keys,
                            "--admin-token-file",
                            path_admin};
    size_t n = 24;
    for (size_t i = 0; more && more[i] && n < 47; i++)
        args[n++] = more[i];
    args[n] = NULL;
    subcheck_start(d, args);
}

/* An HS256 token from S1 for sub, expiring in exp_in seconds, with extra claims (",..." JSON
 * members, or ""). Caller frees. */
static char *token_for(const char *sub, long exp_in, const char *extra)
{
    char claims[1024];
    snprintf(claims, sizeof claims,
             "{\"sub\":\"%s\",\"exp\":%lld,\"aud\":\"app\",\"iss\":\"backend\"%s}", sub,
             (long long)time(NULL) + exp_in, extra);
    char *t = jwt_mint("HS256", S1, strlen(S1), NULL, claims);
    cr_assert_not_null(t);
    return t;
}

/* Send hello (with token, or none) and return the reply's type; *m holds it (caller clears). */
static enum sub_type hello(struct wsc *w, const char *token, struct sub_msg *m)
{
    size_t n = (token ? strlen(token) : 0) + 64;
    char *buf = malloc(n);
    cr_assert_not_null(buf);
    if (token)
        snprintf(buf, n, "{\"type\":\"hello\",\"v\":1,\"token\":\"%s\"}", token);
    else
        snprintf(buf, n, "{\"type\":\"hello\",\"v\":1}");
    cr_assert_eq(wsc_send_text(w, buf), 0);
    free(buf);
    int rc = wsc_recv_msg(w, m, 5000);
    cr_assert_eq(rc, WSC_OK, "no answer to hello: %d", rc);
    if (m->type == SUB_WELCOME) {
        snprintf(w->conn_id, sizeof w->conn_id, "%.*s", (int)m->conn.len, m->conn.p);
        snprintf(w->epoch, sizeof w->epoch, "%.*s", (int)m->epoch.len, m->epoch.p);
    }
    return m->type;
}

/* A subscriber connected with token (NULL: anonymous); asserts welcome. */
static void open_as(struct wsc *w, const struct nudged *d, const char *token)
{
    cr_assert_eq(wsc_connect(w, d->ws_port, NULL), 0);
    struct sub_msg m;
    enum sub_type t = hello(w, token, &m);
    cr_assert_eq(t, SUB_WELCOME, "hello refused: code %d %.*s", m.code, (int)m.msg.len,
                 m.msg.p ? m.msg.p : "");
    sub_msg_clear(&m);
}

/* Subscribe to one topic or pattern; returns 0 when subscribed, else the error code (and the
 * error names the topic). */
static int sub_one(struct wsc *w, const char *topic)
{
    const char *t[1] = {topic};
    uint64_t id = w->next_id++;
    cr_assert_eq(wsc_send_sub(w, id, t, 1), 0);
    struct sub_msg m;
    int rc = wsc_recv_msg(w, &m, 5000);
    cr_assert_eq(rc, WSC_OK, "no answer to sub %s: %d", topic, rc);
    int out = 0;
    if (m.type == SUB_ERROR) {
        out = m.code;
        cr_expect(wstr_eq(m.topic, topic), "error names %.*s, not %s", (int)m.topic.len,
                  m.topic.p ? m.topic.p : "", topic);
    } else {
        cr_assert_eq(m.type, SUB_SUBSCRIBED, "sub %s: got %s", topic, subcheck_type_name(m.type));
    }
    sub_msg_clear(&m);
    return out;
}

static nudge_client_t *publisher(const struct nudged *d, const char *key, int *err)
{
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", d->pub_port);
    struct nudge_opts o = {.client_name = "security-test", .timeout_ms = 5000, .api_key = key};
    nudge_client_t *c = NULL;
    int rc = nudge_connect(addr, &o, &c);
    if (err) *err = rc;
    return rc == NUDGE_OK ? c : NULL;
}

static uint64_t pub1(nudge_client_t *c, const char *topic)
{
    const char *t[1] = {topic};
    uint64_t seq = 0;
    int rc = nudge_publish(c, t, 1, NULL, &seq);
    cr_assert_eq(rc, NUDGE_OK, "publish %s: %s (%s)", topic, nudge_strerror(rc),
                 nudge_last_error(c));
    return seq;
}

Test(security, user_a_never_hears_user_b_through_exact_or_wildcard_subscriptions)
{
    struct nudged d = {0};
    start(&d, NULL);
    char *ta = token_for("alice", 600, "");
    struct wsc a;
    open_as(&a, &d, ta);
    cr_expect_eq(sub_one(&a, "user:alice"), 0);
    cr_expect_eq(sub_one(&a, "user:alice:**"), 0);
    const char *refused[] = {"user:bob", "user:bob:inbox", "user:*",     "user:**",
                             "**",       "*:bob",          "*",          "user:bob:**",
                             "*:*",      "user:alic",      "user:alice2"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        cr_expect_eq(sub_one(&a, refused[i]), 17, "%s: want forbidden (17)", refused[i]);
    cr_expect_eq(sub_one(&a, "user:b*"), 5, "a partial wildcard is no pattern at all");
    nudge_client_t *p = publisher(&d, KEY_ALL, NULL);
    cr_assert_not_null(p);
    pub1(p, "user:bob");
    pub1(p, "user:bob:inbox");
    pub1(p, "user:alice2");
    subcheck_expect_silence(&a, 300, "alice after bob's publishes");
    uint64_t seq = pub1(p, "user:alice:inbox");
    subcheck_expect_hint_own(&a, "user:alice:inbox", seq, 0);
    json_t *st = nudged_stats(&d);
    cr_expect_geq(stats_int(st, "auth.forbidden"), 11);
    json_decref(st);
    nudge_close(p);
    wsc_close(&a, 2000);
    free(ta);
    nudged_stop(&d);
}

Test(security, a_resume_or_replay_of_another_users_topic_is_refused_and_delivers_nothing)
{
    struct nudged d = {0};
    start(&d, NULL);
    nudge_client_t *p = publisher(&d, KEY_ALL, NULL);
    cr_assert_not_null(p);
    for (int i = 0; i < 3; i++)
        pub1(p, "user:bob");
    char *ta = token_for("alice", 600, "");
    struct wsc a;
    open_as(&a, &d, ta);
    const char *t[2] = {"user:bob", "user:*"};
    int64_t pos[2] = {0, 0};
    for (int mode = 0; mode < 2; mode++) {
        subcheck_send_sub_mode(&a, 9, t, 2, a.epoch, pos, mode);
        for (int k = 0; k < 2; k++) {
            struct sub_msg m;
            subcheck_expect_type(&a, SUB_ERROR, &m, "forbidden resume");
            cr_expect_eq(m.code, 17);
            cr_expect(wstr_eq(m.topic, t[k]));
            sub_msg_clear(&m);
        }
        subcheck_expect_silence(&a, 300, "after the refused resume");
    }
    nudge_close(p);
    wsc_close(&a, 2000);
    free(ta);
    nudged_stop(&d);
}

Test(security, anonymous_connections_read_only_the_anonymous_patterns)
{
    struct nudged d = {0};
    start(&d, NULL);
    struct wsc w;
    open_as(&w, &d, NULL);
    cr_expect_eq(sub_one(&w, "feed:public:1"), 0);
    cr_expect_eq(sub_one(&w, "feed:public:*"), 0);
    cr_expect_eq(sub_one(&w, "feed:1"), 17, "public patterns are for token holders");
    cr_expect_eq(sub_one(&w, "project:1"), 17);
    cr_expect_eq(sub_one(&w, "user:1"), 17);
    cr_expect_eq(sub_one(&w, "**"), 17);
    wsc_close(&w, 2000);
    nudged_stop(&d);
}

Test(security, a_token_holder_reads_public_patterns_and_its_group_patterns_only)
{
    struct nudged d = {0};
    start(&d, NULL);
    char *t = token_for("carol", 600, ",\"topics\":[\"family:7:*\",\"role:operator:**\"]");
    struct wsc w;
    open_as(&w, &d, t);
    const char *yes[] = {"feed:1",          "feed:*",     "project:3:board:9",
                         "family:7:photos", "family:7:*", "role:operator:alerts:eu",
                         "feed:public:1"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        cr_expect_eq(sub_one(&w, yes[i]), 0, "%s", yes[i]);
    const char *no[] = {"family:8:photos", "family:*:photos", "family:7:a:b",
                        "role:admin:x",    "feed:1:2",        "other"};
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        cr_expect_eq(sub_one(&w, no[i]), 17, "%s", no[i]);
    wsc_close(&w, 2000);
    free(t);
    nudged_stop(&d);
}

/* Every refusal at hello: code 16, a reason, never the token, a counter; the connection stays
 * and may say hello again. */
Test(security, every_bad_token_is_refused_at_hello_with_its_reason_and_counter)
{
    struct nudged d = {0};
    start(&d, NULL);
    long now = (long)time(NULL);
    char c_ok[256], c_exp[256], c_nbf[256], c_iat[256], c_aud[256], c_iss[256], c_colon[256],
        c_nosub[256];
    const char *aud = "\"aud\":\"app\",\"iss\":\"backend\"";
    snprintf(c_ok, sizeof c_ok, "{\"sub\":\"dave\",\"exp\":%ld,%s}", now + 600, aud);
    snprintf(c_exp, sizeof c_exp, "{\"sub\":\"dave\",\"exp\":%ld,%s}", now - 5, aud);
    snprintf(c_nbf, sizeof c_nbf, "{\"sub\":\"dave\",\"exp\":%ld,\"nbf\":%ld,%s}", now + 600,
             now + 300, aud);
    snprintf(c_iat, sizeof c_iat, "{\"sub\":\"dave\",\"exp\":%ld,\"iat\":%ld,%s}", now + 600,
             now + 300, aud);
    snprintf(c_aud, sizeof c_aud,
             "{\"sub\":\"dave\",\"exp\":%ld,\"aud\":\"other\",\"iss\":\"backend\"}", now + 600);
    snprintf(c_iss, sizeof c_iss, "{\"sub\":\"dave\",\"exp\":%ld,\"aud\":\"app\",\"iss\":\"evil\"}",
             now + 600);
    snprintf(c_colon, sizeof c_colon, "{\"sub\":\"dave:x\",\"exp\":%ld,%s}", now + 600, aud);
    snprintf(c_nosub, sizeof c_nosub, "{\"exp\":%ld,%s}", now + 600, aud);
    size_t publen = 0;
    char *pubpem = jwt_read_file(path_rsa, &publen);
    cr_assert_not_null(pubpem);
    char *big = malloc(9001);
    memset(big, 'a', 9000);
    big[9000] = '\0';
    big[100] = '.';
    big[200] = '.';
    struct {
        const char *what;
        char *tok;
        const char *stat;
    } cases[] = {
        {"alg none", jwt_mint("none", NULL, 0, NULL, c_ok), "auth.refused.alg"},
        {"alg confusion", jwt_mint("HS256", pubpem, publen, NULL, c_ok), "auth.refused.signature"},
        {"unknown secret", jwt_mint("HS256", "not-the-secret-0123456789abcdef0123", 35, NULL, c_ok),
         "auth.refused.signature"},
        {"HS512 of a secret of the wrong kind", jwt_mint("HS512", "x", 1, NULL, c_ok),
         "auth.refused.signature"},
        {"expired", jwt_mint("HS256", S1, strlen(S1), NULL, c_exp), "auth.refused.expired"},
        {"nbf ahead", jwt_mint("HS256", S1, strlen(S1), NULL, c_nbf), "auth.refused.not_yet_valid"},
        {"iat ahead", jwt_mint("HS256", S1, strlen(S1), NULL, c_iat), "auth.refused.not_yet_valid"},
        {"wrong aud", jwt_mint("HS256", S1, strlen(S1), NULL, c_aud), "auth.refused.audience"},
        {"wrong iss", jwt_mint("HS256", S1, strlen(S1), NULL, c_iss), "auth.refused.issuer"},
        {"sub with a colon", jwt_mint("HS256", S1, strlen(S1), NULL, c_colon),
         "auth.refused.claims"},
        {"no sub", jwt_mint("HS256", S1, strlen(S1), NULL, c_nosub), "auth.refused.claims"},
        {"malformed", strdup("not-a-token"), "auth.refused.malformed"},
        {"oversized", big, "auth.refused.too_big"},
    };
    size_t n = sizeof(cases) / sizeof(cases[0]);
    struct wsc w;
    cr_assert_eq(wsc_connect(&w, d.ws_port, NULL), 0);
    for (size_t i = 0; i < n; i++) {
        cr_assert_not_null(cases[i].tok, "%s: minting failed", cases[i].what);
        json_t *st = nudged_stats(&d);
        int64_t before = stats_int(st, cases[i].stat);
        json_decref(st);
        struct sub_msg m;
        enum sub_type t = hello(&w, cases[i].tok, &m);
        cr_expect_eq(t, SUB_ERROR, "%s: accepted", cases[i].what);
        cr_expect_eq(m.code, 16, "%s: code %d", cases[i].what, m.code);
        cr_expect_gt(m.msg.len, 5, "%s: no reason", cases[i].what);
        /* The reason never carries the token, nor its signature. */
        const char *sig = strrchr(cases[i].tok, '.');
        if (sig && strlen(sig) > 8)
            cr_expect(!memmem(m.msg.p, m.msg.len, sig + 1, 8), "%s: echoed", cases[i].what);
        sub_msg_clear(&m);
        cr_expect_eq(nudged_wait_stat(&d, cases[i].stat, before + 1, 3000), before + 1,
                     "%s: %s not counted", cases[i].what, cases[i].stat);
    }
    /* Still open, and a good token is accepted on the same connection. */
    char *good = jwt_mint("HS256", S1, strlen(S1), NULL, c_ok);
    struct sub_msg m;
    cr_expect_eq(hello(&w, good, &m), SUB_WELCOME);
    sub_msg_clear(&m);
    for (size_t i = 0; i < n; i++)
        free(cases[i].tok);
    free(good);
    free(pubpem);
    wsc_close(&w, 2000);
    nudged_stop(&d);
}

Test(security, rs256_es256_and_the_second_hs_secret_are_all_accepted)
{
    struct nudged d = {0};
    start(&d, NULL);
    char claims[256];
    snprintf(claims, sizeof claims,
             "{\"sub\":\"erin\",\"exp\":%lld,\"aud\":[\"x\",\"app\"],\"iss\":\"backend\"}",
             (long long)time(NULL) + 600);
    char *toks[3] = {jwt_mint("RS256", priv_rsa, 0, NULL, claims),
                     jwt_mint("ES256", priv_ec, 0, NULL, claims),
                     jwt_mint("HS256", S2, strlen(S2), NULL, claims)};
    for (int i = 0; i < 3; i++) {
        cr_assert_not_null(toks[i]);
        struct wsc w;
        open_as(&w, &d, toks[i]);
        cr_expect_eq(sub_one(&w, "user:erin"), 0);
        wsc_close(&w, 2000);
        free(toks[i]);
    }
    nudged_stop(&d);
}

Test(security, without_a_refresh_an_expired_token_gets_error_18_then_close_4002)
{
    struct nudged d = {0};
    start(&d, NULL);
    char *t = token_for("frank", 2, "");
    struct wsc w;
    open_as(&w, &d, t);
    cr_expect_eq(sub_one(&w, "user:frank"), 0);
    struct sub_msg m;
    int rc = wsc_recv_msg(&w, &m, 6000);
    cr_assert_eq(rc, WSC_OK, "no error before the close: %d", rc);
    cr_expect_eq(m.type, SUB_ERROR);
    cr_expect_eq(m.code, 18);
    sub_msg_clear(&m);
    rc = wsc_recv_msg(&w, &m, 3000);
    cr_assert_eq(rc, WSC_CLOSED, "want a close, got %d", rc);
    cr_expect_eq(w.close_code, 4002);
    cr_expect_eq(nudged_wait_stat(&d, "auth.expired", 1, 3000), 1);
    wsc_free(&w, 0);
    free(t);
    nudged_stop(&d);
}

Test(security, a_refresh_keeps_the_connection_and_its_subscriptions_past_the_old_expiry)
{
    struct nudged d = {0};
    start(&d, NULL);
    char *t1 = token_for("gina", 2, ""), *t2 = token_for("gina", 600, "");
    struct wsc w;
    open_as(&w, &d, t1);
    cr_expect_eq(sub_one(&w, "user:gina"), 0);
    cr_expect_eq(sub_one(&w, "feed:*"), 0);
    char buf[1024];
    snprintf(buf, sizeof buf, "{\"type\":\"refresh\",\"id\":5,\"token\":\"%s\"}", t2);
    cr_assert_eq(wsc_send_text(&w, buf), 0);
    struct sub_msg m;
    subcheck_expect_type(&w, SUB_REFRESHED, &m, "refreshed");
    cr_expect_eq(m.id, 5);
    cr_expect_geq((long long)m.exp, (long long)time(NULL) + 500);
    sub_msg_clear(&m);
    subcheck_expect_silence(&w, 3500, "past the first token's expiry");
    nudge_client_t *p = publisher(&d, KEY_ALL, NULL);
    cr_assert_not_null(p);
    uint64_t s1 = pub1(p, "user:gina");
    subcheck_expect_hint_own(&w, "user:gina", s1, 0);
    uint64_t s2 = pub1(p, "feed:9");
    subcheck_expect_hint_own(&w, "feed:9", s2, 0);
    cr_expect_eq(nudged_wait_stat(&d, "auth.refreshed", 1, 3000), 1);
    nudge_close(p);
    wsc_close(&w, 2000);
    free(t1);
    free(t2);
    nudged_stop(&d);
}

Test(security, a_refresh_that_no_longer_grants_a_pattern_unsubscribes_what_it_covered)
{
    struct nudged d = {0};
    start(&d, NULL);
    char *t1 = token_for("hank", 600, ",\"topics\":[\"family:7:*\"]");
    char *t2 = token_for("hank", 900, "");
    struct wsc w;
    open_as(&w, &d, t1);
    cr_expect_eq(sub_one(&w, "family:7:*"), 0);
    cr_expect_eq(sub_one(&w, "family:7:photos"), 0);
    cr_expect_eq(sub_one(&w, "user:hank"), 0);
    char buf[1024];
    snprintf(buf, sizeof buf, "{\"type\":\"refresh\",\"id\":6,\"token\":\"%s\"}", t2);
    cr_assert_eq(wsc_send_text(&w, buf), 0);
    int gone = 0;
    for (int i = 0; i < 3; i++) {
        struct sub_msg m;
        cr_assert_eq(wsc_recv_msg(&w, &m, 5000), WSC_OK);
        if (m.type == SUB_UNSUBSCRIBED) {
            cr_expect(wstr_eq(m.topic, "family:7:*") || wstr_eq(m.topic, "family:7:photos"));
            cr_expect_eq(m.id, 6);
            gone++;
        } else {
            cr_expect_eq(m.type, SUB_REFRESHED, "got %s", subcheck_type_name(m.type));
            i = 3;
        }
        sub_msg_clear(&m);
    }
    cr_expect_eq(gone, 2);
    nudge_client_t *p = publisher(&d, KEY_ALL, NULL);
    pub1(p, "family:7:photos");
    subcheck_expect_silence(&w, 300, "after the pattern was dropped");
    nudge_close(p);
    wsc_close(&w, 2000);
    free(t1);
    free(t2);
    nudged_stop(&d);
}

Test(security, a_token_for_another_user_refreshed_onto_a_connection_closes_it_with_4003)
{
    struct nudged d = {0};
    start(&d, NULL);
    char *tb = token_for("bob", 600, ""), *ta = token_for("alice", 600, "");
    struct wsc w;
    open_as(&w, &d, tb);
    cr_expect_eq(sub_one(&w, "user:bob"), 0);
    char buf[1024];
    snprintf(buf, sizeof buf, "{\"type\":\"refresh\",\"token\":\"%s\"}", ta);
    cr_assert_eq(wsc_send_text(&w, buf), 0);
    struct sub_msg m;
    subcheck_expect_type(&w, SUB_ERROR, &m, "refused refresh");
    cr_expect_eq(m.code, 16);
    cr_expect(memmem(m.msg.p, m.msg.len, "same sub", 8), "%.*s", (int)m.msg.len, m.msg.p);
    sub_msg_clear(&m);
    int rc = wsc_recv_msg(&w, &m, 3000);
    cr_assert_eq(rc, WSC_CLOSED, "want a close, got %d", rc);
    cr_expect_eq(w.close_code, 4003);
    cr_expect_eq(nudged_wait_stat(&d, "auth.refresh_refused", 1, 3000), 1);
    wsc_free(&w, 0);
    free(ta);
    free(tb);
    nudged_stop(&d);
}

Test(security, publishers_need_a_known_key_and_a_scoped_key_stays_inside_its_patterns)
{
    struct nudged d = {0};
    start(&d, NULL);
    int err = 0;
    cr_expect_null(publisher(&d, NULL, &err), "no key accepted");
    cr_expect_eq(err, NUDGE_EBROKER);
    cr_expect_null(publisher(&d, "wrong-key-0123456789", &err), "unknown key accepted");
    cr_expect_eq(err, NUDGE_EBROKER);
    cr_expect_eq(nudged_wait_stat(&d, "auth.refused.api_key", 2, 3000), 2);
    char *t = token_for("ivy", 600, "");
    struct wsc w;
    open_as(&w, &d, t);
    cr_expect_eq(sub_one(&w, "project:1"), 0);
    nudge_client_t *b = publisher(&d, KEY_BILLING, NULL);
    cr_assert_not_null(b);
    const char *out[2] = {"invoice:1", "project:1"};
    uint64_t seqs[2];
    int rc = nudge_publish(b, out, 2, NULL, seqs);
    cr_expect_eq(rc, NUDGE_EBROKER);
    cr_expect_eq(nudge_last_code(b), 17, "%s", nudge_last_error(b));
    subcheck_expect_silence(&w, 300, "a refused publish delivers nothing");
    cr_expect_eq(pub1(b, "invoice:1"), 1, "nothing of the refused publish was applied");
    pub1(b, "user:ivy");
    nudge_client_t *all = publisher(&d, KEY_ALL, NULL);
    cr_assert_not_null(all);
    uint64_t s = pub1(all, "project:1");
    subcheck_expect_hint_own(&w, "project:1", s, 0);
    nudge_close(all);
    nudge_close(b);
    wsc_close(&w, 2000);
    free(t);
    nudged_stop(&d);
}

Test(security, a_publisher_learns_nothing_of_a_connection_from_its_origin)
{
    struct nudged d = {0};
    start(&d, NULL);
    char *t = token_for("jay", 600, "");
    struct wsc w;
    open_as(&w, &d, t);
    nudge_client_t *b = publisher(&d, KEY_BILLING, NULL);
    cr_assert_not_null(b);
    /* The same publish with the origin of a live connection, of none, and skipping either:
     * every answer is an ack with the next seq, nothing else. */
    const char *origins[4] = {w.conn_id, "zzzz", w.conn_id, "zzzz"};
    for (int i = 0; i < 4; i++) {
        const char *tp[1] = {"invoice:9"};
        struct nudge_pub pb = {
            .topics = tp, .ntopics = 1, .origin = origins[i], .skip_origin = i >= 2};
        uint64_t seq = 0;
        int rc = nudge_publish_ex(b, &pb, &seq);
        cr_expect_eq(rc, NUDGE_OK, "%s", nudge_last_error(b));
        cr_expect_eq(seq, (uint64_t)i + 1);
    }
    nudge_close(b);
    wsc_close(&w, 2000);
    free(t);
    nudged_stop(&d);
}

Test(security, the_admin_endpoint_wants_its_bearer_token)
{
    struct nudged d = {0};
    start(&d, NULL);
    int status = 0;
    harness_admin_token = NULL;
    const char *paths[] = {"/stats", "/metrics", "/healthz", "/readyz"};
    for (int i = 0; i < 4; i++) {
        char *body = http_get(d.admin_port, paths[i], &status);
        cr_expect_eq(status, 401, "%s without the token: %d", paths[i], status);
        free(body);
    }
    harness_admin_token = ADMIN;
    char *ok = http_get(d.admin_port, "/readyz", &status);
    cr_expect_eq(status, 200, "/readyz with the token: %d", status);
    free(ok);
    const char *reqs[] = {
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-token-0123456789\r\n\r\n",
        "GET /stats HTTP/1.1\r\nHost: x\r\nauthorization:   Bearer " ADMIN "  \r\n\r\n",
        "GET /metrics HTTP/1.1\r\nAuthorization: Bearer " ADMIN "\r\n\r\n"};
    int want[] = {401, 200, 200};
    for (int i = 0; i < 3; i++) {
        size_t len = 0;
        char *r = http_raw(d.admin_port, reqs[i], strlen(reqs[i]), &len, 3000);
        cr_assert_not_null(r);
        char line[32];
        snprintf(line, sizeof line, "HTTP/1.1 %d", want[i]);
        cr_expect(!strncmp(r, line, strlen(line)), "request %d: %.40s", i, r);
        free(r);
    }
    nudged_stop(&d);
}

static void refuses_to_start(const char *const *args, const char *needle)
{
    char bin[256];
    cr_assert_eq(nudge_bin_path("nudged", bin, sizeof bin), 0);
    const char *argv[24] = {bin};
    size_t n = 1;
    for (size_t i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    char *out = NULL, *err = NULL;
    int rc = run_cmd(argv, NULL, &out, &err, 10000);
    cr_expect_eq(rc, 2, "exit %d, stderr: %s", rc, err ? err : "");
    cr_expect(err && strstr(err, needle), "stderr lacks '%s': %s", needle, err ? err : "");
    free(out);
    free(err);
}

Test(security, a_listener_others_can_reach_refuses_to_start_without_its_secrets)
{
    const char *ws[] = {"--memory",    "--ws",    "0.0.0.0:0",   "--pub",
                        "127.0.0.1:0", "--admin", "127.0.0.1:0", NULL};
    refuses_to_start(ws, "--token-secret-file");
    const char *pub[] = {"--memory",    "--pub",   "[::]:0",      "--ws",
                         "127.0.0.1:0", "--admin", "127.0.0.1:0", NULL};
    refuses_to_start(pub, "--pub-keys");
    const char *adm[] = {"--memory",    "--admin", "0.0.0.0:0",   "--ws",
                         "127.0.0.1:0", "--pub",   "127.0.0.1:0", NULL};
    refuses_to_start(adm, "--admin-token-file");
    const char *bad[] = {"--memory", "--token-secret-file", path_s1, "--public", "user:*", NULL};
    refuses_to_start(bad, "user:");
}

Test(security, with_its_secrets_a_broker_listens_on_every_address_and_says_so)
{
    struct nudged d = {0};
    const char *more[] = {"--ws", "0.0.0.0:0", "--pub", "0.0.0.0:0", "--admin", "0.0.0.0:0", NULL};
    start(&d, more);
    cr_expect(nudged_wait_log(&d, "NOT loopback", 3000));
    char *t = token_for("kim", 600, "");
    struct wsc w;
    open_as(&w, &d, t);
    wsc_close(&w, 2000);
    free(t);
    nudged_stop(&d);
}

Test(security, with_no_secrets_the_broker_says_it_is_in_development_mode)
{
    struct nudged d = {0};
    subcheck_start(&d, NULL);
    cr_expect(nudged_wait_log(&d, "DEVELOPMENT MODE: any WebSocket client", 3000));
    cr_expect(nudged_wait_log(&d, "DEVELOPMENT MODE: any publisher", 3000));
    struct wsc w;
    cr_assert_eq(wsc_open(&w, d.ws_port, NULL), 0);
    cr_expect_eq(sub_one(&w, "user:anyone"), 0);
    wsc_close(&w, 2000);
    nudged_stop(&d);
}

/* The CLI with its credentials: nudge pub --key-file, nudge sub --token-file, nudge stats
 * --token-file; each refused without them. */
Test(security, the_cli_publishes_subscribes_and_reads_stats_with_credential_files)
{
    struct nudged d = {0};
    start(&d, NULL);
    char bin[256], pubaddr[32], url[64], admaddr[32], keyfile[128], tokfile[128], admfile[128];
    cr_assert_eq(nudge_bin_path("nudge", bin, sizeof bin), 0);
    snprintf(pubaddr, sizeof pubaddr, "127.0.0.1:%u", d.pub_port);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", d.ws_port);
    snprintf(admaddr, sizeof admaddr, "127.0.0.1:%u", d.admin_port);
    write_file(keyfile, "cli-key", KEY_BILLING "\n");
    char *t = token_for("lee", 600, "");
    write_file(tokfile, "cli-token", t);
    free(t);
    snprintf(admfile, sizeof admfile, "%s", path_admin);
    char *out = NULL, *err = NULL;
    const char *nokey[] = {bin, "pub", "--addr", pubaddr, "invoice:1", NULL};
    cr_expect_eq(run_cmd(nokey, NULL, &out, &err, 10000), 1);
    cr_expect(err && strstr(err, "API key"), "%s", err ? err : "");
    free(out);
    free(err);
    const char *pub[] = {bin, "pub", "--addr", pubaddr, "--key-file", keyfile, "invoice:1", NULL};
    cr_expect_eq(run_cmd(pub, NULL, &out, &err, 10000), 0, "%s", err ? err : "");
    cr_expect(out && strstr(out, "invoice:1 1"), "%s", out ? out : "");
    free(out);
    free(err);
    const char *outside[] = {bin,          "pub",   "--addr",    pubaddr,
                             "--key-file", keyfile, "project:1", NULL};
    cr_expect_eq(run_cmd(outside, NULL, &out, &err, 10000), 1);
    cr_expect(err && strstr(err, "forbidden"), "%s", err ? err : "");
    free(out);
    free(err);
    /* sub: the token names lee; user:lee is subscribed, user:kim refused. */
    const char *sub[] = {bin,         "sub", "--url",   url, "--token-file", tokfile,
                         "--timeout", "1",   "--count", "1", "user:lee",     NULL};
    int rc = run_cmd(sub, NULL, &out, &err, 10000);
    cr_expect(err && strstr(err, "subscribed user:lee"), "exit %d: %s", rc, err ? err : "");
    free(out);
    free(err);
    const char *stats[] = {bin, "stats", "--addr", admaddr, "--json", NULL};
    cr_expect_eq(run_cmd(stats, NULL, &out, &err, 10000), 1);
    cr_expect(err && strstr(err, "401"), "%s", err ? err : "");
    free(out);
    free(err);
    const char *stats2[] = {bin,      "stats",        "--addr", admaddr,
                            "--json", "--token-file", admfile,  NULL};
    cr_expect_eq(run_cmd(stats2, NULL, &out, &err, 10000), 0, "%s", err ? err : "");
    cr_expect(out && strstr(out, "\"auth\""), "%.200s", out ? out : "");
    free(out);
    free(err);
    nudged_stop(&d);
}

Test(security, a_key_over_its_publish_rate_gets_code_19_and_nothing_is_applied)
{
    char keys[128];
    write_file(keys, "rate-keys", "capped capped-key-0123456789 rate=3\n");
    struct nudged d = {0};
    const char *more[] = {"--pub-keys", keys, NULL};
    start(&d, more); /* the later --pub-keys wins */
    nudge_client_t *p = publisher(&d, "capped-key-0123456789", NULL);
    cr_assert_not_null(p);
    int ok = 0, limited = 0;
    int64_t t0 = now_ms();
    for (int i = 0; i < 10; i++) {
        const char *t[1] = {"feed:rate"};
        uint64_t seq = 0;
        int rc = nudge_publish(p, t, 1, NULL, &seq);
        if (rc == NUDGE_OK) {
            ok++;
            cr_expect_eq(seq, (uint64_t)ok, "refused publishes take no seq");
        } else {
            cr_expect_eq(rc, NUDGE_EBROKER);
            cr_expect_eq(nudge_last_code(p), 19, "%s", nudge_last_error(p));
            limited++;
        }
    }
    int64_t ms = now_ms() - t0;
    cr_expect_geq(ok, 3, "the burst");
    cr_expect_leq(ok, 3 + 1 + (int)(ms * 3 / 1000), "%d accepted in %lld ms", ok, (long long)ms);
    cr_expect_gt(limited, 0);
    cr_expect_eq(nudged_wait_stat(&d, "auth.rate_limited", limited, 3000), limited);
    sleep_ms(400);
    pub1(p, "feed:rate");
    nudge_close(p);
    nudged_stop(&d);
}

/* ---- SIGHUP reload (docs/operations.md §Reload) ------------------------------------------- */

TestSuite(reload, .init = setup, .fini = teardown);

/* The config file the reload tests start from and rewrite: dir/n.conf. */
static void write_conf(char *path, const char *text)
{
    write_file(path, "n.conf", text);
}

/* SIGHUP d, then wait until /stats counts `want` reloads with that result ("ok", "refused"). */
static void sighup(struct nudged *d, const char *result, int64_t want)
{
    char path[32];
    snprintf(path, sizeof path, "reloads.%s", result);
    cr_assert_eq(nudged_signal(d, SIGHUP), 0);
    cr_assert_eq(nudged_wait_stat(d, path, want, 10000), want, "no %s reload counted", result);
}

/* A hello with token on a new connection: its reply type (the connection is closed). */
static enum sub_type hello_type(const struct nudged *d, const char *token)
{
    struct wsc w;
    struct sub_msg m;
    cr_assert_eq(wsc_connect(&w, d->ws_port, NULL), 0);
    enum sub_type t = hello(&w, token, &m);
    sub_msg_clear(&m);
    wsc_free(&w, 1);
    return t;
}

/* A token signed with secret (S1 or S2) for sub. Caller frees. */
static char *token_with(const char *secret, const char *sub)
{
    char claims[256];
    snprintf(claims, sizeof claims,
             "{\"sub\":\"%s\",\"exp\":%lld,\"aud\":\"app\",\"iss\":\"backend\"}", sub,
             (long long)time(NULL) + 600);
    char *t = jwt_mint("HS256", secret, strlen(secret), NULL, claims);
    cr_assert_not_null(t);
    return t;
}

Test(reload, a_sighup_rotates_secrets_and_applies_new_limits_keeping_every_connection,
     .timeout = 90)
{
    char conf[128];
    write_conf(conf, "token-secret-file s1\n"
                     "token-aud app\n"
                     "token-iss backend\n"
                     "public feed:*\n"
                     "anonymous feed:public:*\n"
                     "max-subs 10\n"
                     "pub-keys keys\n"
                     "admin-token-file admin\n");
    struct nudged d = {0};
    const char *args[] = {"--config", conf, NULL};
    subcheck_start(&d, args);
    char *t1 = token_with(S1, "alice"), *t2 = token_with(S2, "bob");
    cr_expect_eq(hello_type(&d, t2), SUB_ERROR, "S2 is not configured yet");
    /* live connections made under the old configuration */
    struct wsc a;
    open_as(&a, &d, t1);
    cr_assert_eq(sub_one(&a, "feed:x"), 0);
    cr_expect_eq(sub_one(&a, "news:1"), 17, "news:* is not public yet");
    nudge_client_t *p = publisher(&d, KEY_ALL, NULL);
    cr_assert_not_null(p);

    write_conf(conf, "token-secret-file s2   # S1 retired\n"
                     "token-aud app\n"
                     "token-iss backend\n"
                     "public feed:*\n"
                     "public news:*\n"
                     "anonymous feed:public:*\n"
                     "max-subs 2\n"
                     "pub-keys keys\n"
                     "admin-token-file admin\n");
    sighup(&d, "ok", 1);
    cr_expect(nudged_log_count(&d, "SIGHUP: reloaded", NULL) >= 1);
    /* the old connections are still there, and still hear and publish */
    uint64_t seq = pub1(p, "feed:x");
    struct sub_msg m;
    cr_assert_eq(wsc_expect(&a, SUB_HINT, &m, 5000), WSC_OK, "alice's connection was kept");
    cr_expect(wstr_eq(m.topic, "feed:x"));
    cr_expect_eq(m.seq, seq);
    sub_msg_clear(&m);
    /* new connections, spread over every worker: the new secret only */
    for (int i = 0; i < 8; i++) {
        cr_expect_eq(hello_type(&d, t1), SUB_ERROR, "S1 was retired (connection %d)", i);
        cr_expect_eq(hello_type(&d, t2), SUB_WELCOME, "S2 is configured (connection %d)", i);
    }
    /* the new limits and patterns, on new connections */
    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st);
    cr_expect_eq(stats_int(st, "limits.max_subs"), 2);
    json_decref(st);
    struct wsc b;
    open_as(&b, &d, t2);
    cr_expect_eq(sub_one(&b, "news:1"), 0, "news:* is public now");
    cr_expect_eq(sub_one(&b, "feed:y"), 0);
    cr_expect_neq(sub_one(&b, "feed:z"), 0, "max-subs 2");
    wsc_free(&b, 1);
    wsc_free(&a, 1);
    nudge_close(p);
    free(t1);
    free(t2);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(reload, a_configuration_that_does_not_load_is_refused_and_the_running_one_stays, .timeout = 90)
{
    char conf[128];
    write_conf(conf, "token-secret-file s1\n"
                     "token-aud app\n"
                     "token-iss backend\n"
                     "max-subs 10\n"
                     "admin-token-file admin\n");
    struct nudged d = {0};
    const char *args[] = {"--config", conf, NULL};
    subcheck_start(&d, args);
    char *t1 = token_with(S1, "alice");
    struct wsc a;
    open_as(&a, &d, t1);
    write_conf(conf, "token-secret-file s1\nmax-subs lots\n");
    sighup(&d, "refused", 1);
    char want[256];
    snprintf(want, sizeof want, "reload refused, the running configuration stays: %s:2:", conf);
    cr_expect(nudged_wait_log(&d, want, 5000), "the log names the file and line");
    write_conf(conf, "token-secret-file no-such-secret\n");
    sighup(&d, "refused", 2);
    cr_expect(nudged_wait_log(&d, "no-such-secret", 5000));
    /* nothing changed */
    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st);
    cr_expect_eq(stats_int(st, "limits.max_subs"), 10);
    cr_expect_eq(stats_int(st, "reloads.ok"), 0);
    json_decref(st);
    cr_expect_eq(hello_type(&d, t1), SUB_WELCOME);
    cr_expect_eq(sub_one(&a, "user:alice"), 0, "the old connection works");
    wsc_free(&a, 1);
    free(t1);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(reload,
     a_reload_closes_publishers_whose_key_was_withdrawn_and_drops_what_may_no_longer_be_read,
     .timeout = 90)
{
    char conf[128], keys2[128];
    write_file(keys2, "keys2", "all " KEY_ALL "\n");
    write_conf(conf, "pub-keys keys\n"
                     "anonymous feed:public:*\n"
                     "admin-token-file admin\n");
    struct nudged d = {0};
    const char *args[] = {"--config", conf, NULL};
    subcheck_start(&d, args);
    nudge_client_t *all = publisher(&d, KEY_ALL, NULL), *billing = publisher(&d, KEY_BILLING, NULL);
    cr_assert(all && billing);
    pub1(billing, "invoice:1");
    struct wsc an;
    open_as(&an, &d, NULL);
    cr_assert_eq(sub_one(&an, "feed:public:1"), 0);

    write_conf(conf, "pub-keys keys2\nadmin-token-file admin\n");
    sighup(&d, "ok", 1);
    /* the anonymous reader's subscription is dropped: it hears it */
    struct sub_msg m;
    cr_assert_eq(wsc_expect(&an, SUB_UNSUBSCRIBED, &m, 5000), WSC_OK);
    cr_expect(wstr_eq(m.topic, "feed:public:1"));
    sub_msg_clear(&m);
    /* the billing key is gone: its publisher is told and closed; the other goes on */
    const char *t[1] = {"invoice:2"};
    uint64_t seq;
    cr_expect_neq(nudge_publish(billing, t, 1, NULL, &seq), NUDGE_OK);
    pub1(all, "invoice:3");
    int err = 0;
    cr_expect_null(publisher(&d, KEY_BILLING, &err), "a withdrawn key is refused");
    wsc_free(&an, 1);
    nudge_close(all);
    nudge_close(billing);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(reload, revocations_outlive_a_reload, .timeout = 60)
{
    char conf[128];
    write_conf(conf, "token-secret-file s1\n"
                     "token-aud app\n"
                     "token-iss backend\n"
                     "admin-token-file admin\n");
    struct nudged d = {0};
    const char *args[] = {"--config", conf, NULL};
    subcheck_start(&d, args);
    char claims[256];
    snprintf(claims, sizeof claims,
             "{\"sub\":\"mallory\",\"exp\":%lld,\"iat\":%lld,\"aud\":\"app\",\"iss\":\"backend\"}",
             (long long)time(NULL) + 600, (long long)time(NULL) - 5);
    char *old = jwt_mint("HS256", S1, strlen(S1), NULL, claims);
    cr_assert_not_null(old);
    cr_assert_eq(hello_type(&d, old), SUB_WELCOME);
    const char req[] = "POST /users/mallory/disconnect HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer " ADMIN "\r\nContent-Length: 0\r\n\r\n";
    char *resp = http_raw(d.admin_port, req, sizeof req - 1, NULL, 5000);
    cr_assert(resp && strstr(resp, " 200 "), "%s", resp ? resp : "no answer");
    free(resp);
    cr_expect_eq(hello_type(&d, old), SUB_ERROR, "revoked");
    sighup(&d, "ok", 1);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(hello_type(&d, old), SUB_ERROR, "still revoked after the reload (%d)", i);
    free(old);
    cr_assert_eq(nudged_stop(&d), 0);
}
