/* subcheck: the checks the scenario and integration tests share (see subcheck.h). They were
 * copies of one another in each test file; keeping one copy keeps the failure messages and the
 * strictness of a check the same wherever it is used. Each check asserts in the order the
 * copies did, so the first failure a test reports is the one it reported before. */
#include "subcheck.h"

#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "wire.h"

void subcheck_start(struct nudged *d, const char *const *args)
{
    cr_assert_eq(nudged_start(d, args), 0, "nudged did not start");
}

void subcheck_probe(struct nudged *d)
{
    char why[256];
    cr_expect_eq(nudged_probe(d, 5000, why, sizeof why), 0, "broker no longer serves: %s", why);
}

nudge_client_t *subcheck_publisher(const struct nudged *d, const char *name)
{
    nudge_client_t *c;
    char addr[64];
    struct nudge_opts o = {.client_name = name, .timeout_ms = 10000};
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)d->pub_port);
    cr_assert_eq(nudge_connect(addr, name ? &o : NULL, &c), NUDGE_OK, "publisher connect");
    return c;
}

int subcheck_small_rcvbuf_socket(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    int sz = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

void subcheck_send_sub_mode(struct wsc *w, uint64_t id, const char *const *topics, uint32_t n,
                            const char *epoch, const int64_t *pos, int replay_all)
{
    struct wire_str t[16];
    uint8_t has[16] = {0};
    uint64_t seqs[16] = {0};
    cr_assert_leq(n, 16);
    for (uint32_t i = 0; i < n; i++) {
        t[i] = (struct wire_str){topics[i], (uint32_t)strlen(topics[i])};
        if (pos && pos[i] >= 0) {
            has[i] = 1;
            seqs[i] = (uint64_t)pos[i];
        }
    }
    struct wire_buf b = {0};
    cr_assert_eq(sub_encode_subscribe(w->fmt, &b, id, t, n, epoch, epoch ? has : NULL,
                                      epoch ? seqs : NULL, replay_all),
                 0);
    cr_assert_eq(wsc_send_msg(w, b.data, b.len), WSC_OK);
    wire_buf_free(&b);
}

void subcheck_send_sub(struct wsc *w, uint64_t id, const char *const *topics, uint32_t n,
                       const char *epoch, const int64_t *pos)
{
    subcheck_send_sub_mode(w, id, topics, n, epoch, pos, 0);
}

const char *subcheck_type_name(enum sub_type t)
{
    static const char *const names[] = {"?",          "hello", "welcome",      "sub",
                                        "subscribed", "unsub", "unsubscribed", "hint",
                                        "reset",      "error", "ping",         "pong"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

int subcheck_data_is_seq(const struct sub_msg *m)
{
    char want[48];
    snprintf(want, sizeof want, "{\"i\":%llu}", (unsigned long long)m->seq);
    if (!m->data) return 0;
    struct wire_buf b = {0};
    int ok = wire_data_to_json(m->data, m->data_len, &b) == 0 && b.len == strlen(want) &&
             memcmp(b.data, want, b.len) == 0;
    wire_buf_free(&b);
    return ok;
}

void subcheck_expect_type(struct wsc *w, enum sub_type want, struct sub_msg *m, const char *what)
{
    int rc = wsc_recv_msg(w, m, 5000);
    cr_assert_eq(rc, WSC_OK, "%s: no message (rc %d)", what, rc);
    cr_assert_eq(m->type, want, "%s: got %s (topic '%.*s' seq %llu code %d '%.*s'), want %s", what,
                 subcheck_type_name(m->type), (int)m->topic.len, m->topic.p ? m->topic.p : "",
                 (unsigned long long)m->seq, (int)m->code, (int)m->msg.len,
                 m->msg.p ? m->msg.p : "", subcheck_type_name(want));
}

/* The hint checks of both public variants: own < 0 leaves the own flag unchecked, data 1 checks
 * the data is {"i":seq}. */
static void expect_hint(struct wsc *w, const char *topic, uint64_t seq, int own, int data)
{
    struct sub_msg m;
    char what[160];
    snprintf(what, sizeof what, "hint %s seq %llu", topic, (unsigned long long)seq);
    subcheck_expect_type(w, SUB_HINT, &m, what);
    cr_assert(wstr_eq(m.topic, topic), "%s: got topic '%.*s' seq %llu", what, (int)m.topic.len,
              m.topic.p, (unsigned long long)m.seq);
    cr_assert_eq(m.seq, seq, "%s: got seq %llu", what, (unsigned long long)m.seq);
    cr_assert_leq(m.count, 1, "%s: coalesced (n %u)", what, m.count);
    if (own >= 0) cr_assert_eq(m.own, own, "%s: own %d", what, m.own);
    if (data) cr_assert(subcheck_data_is_seq(&m), "%s: data lost or not its own", what);
    sub_msg_clear(&m);
}

void subcheck_expect_hint_own(struct wsc *w, const char *topic, uint64_t seq, int own)
{
    expect_hint(w, topic, seq, own, 0);
}

void subcheck_expect_hint_data(struct wsc *w, const char *topic, uint64_t seq)
{
    expect_hint(w, topic, seq, -1, 1);
}

void subcheck_expect_hint_n(struct wsc *w, const char *topic, uint64_t seq, uint32_t n, int data)
{
    struct sub_msg m;
    char what[160];
    snprintf(what, sizeof what, "hint %s seq %llu n %u", topic, (unsigned long long)seq, n);
    subcheck_expect_type(w, SUB_HINT, &m, what);
    cr_assert(wstr_eq(m.topic, topic) && m.seq == seq && (m.count ? m.count : 1) == n,
              "%s: got '%.*s' seq %llu n %u", what, (int)m.topic.len, m.topic.p,
              (unsigned long long)m.seq, m.count);
    if (data) cr_assert(subcheck_data_is_seq(&m), "%s: not the newest change's data", what);
    sub_msg_clear(&m);
}

void subcheck_expect_subscribed(struct wsc *w, const char *topic, uint64_t seq)
{
    struct sub_msg m;
    char what[160];
    snprintf(what, sizeof what, "subscribed %s seq %llu", topic, (unsigned long long)seq);
    subcheck_expect_type(w, SUB_SUBSCRIBED, &m, what);
    cr_assert(wstr_eq(m.topic, topic) && m.seq == seq, "%s: got '%.*s' seq %llu", what,
              (int)m.topic.len, m.topic.p, (unsigned long long)m.seq);
    sub_msg_clear(&m);
}

void subcheck_expect_reset(struct wsc *w, const char *topic, uint64_t seq, const char *reason)
{
    struct sub_msg m;
    char what[160];
    snprintf(what, sizeof what, "reset %s seq %llu \"%s\"", topic, (unsigned long long)seq, reason);
    subcheck_expect_type(w, SUB_RESET, &m, what);
    cr_assert(wstr_eq(m.topic, topic) && m.seq == seq && wstr_eq(m.reason, reason),
              "%s: got '%.*s' seq %llu '%.*s'", what, (int)m.topic.len, m.topic.p,
              (unsigned long long)m.seq, (int)m.reason.len, m.reason.p);
    sub_msg_clear(&m);
}

void subcheck_expect_silence(struct wsc *w, int ms, const char *what)
{
    struct sub_msg m;
    int rc = wsc_recv_msg(w, &m, ms);
    if (rc == WSC_OK) {
        cr_assert_fail("%s: got %s topic '%.*s' seq %llu", what, subcheck_type_name(m.type),
                       (int)m.topic.len, m.topic.p ? m.topic.p : "", (unsigned long long)m.seq);
    }
    cr_assert_eq(rc, WSC_TIMEOUT, "%s: rc %d", what, rc);
}
