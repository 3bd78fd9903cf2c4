/* Unit tests for libnudge (clients/c/nudge.c) without a broker.
 *
 * Each test starts a fake broker: a thread with a listening socket on 127.0.0.1:0 that accepts
 * one connection and runs a scripted conversation written with the real codec (pub_encode_* /
 * pub_frame_next / pub_decode). Criterion asserts only work on the test's own thread, so the
 * script records its first failure in struct fake and the test checks it after joining. Every
 * wait on both sides is bounded. */
#include <criterion/criterion.h>

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "nudge.h"
#include "pub.h"
#include "wire.h"

#define FAKE_WAIT_MS 5000
#define FAKE_EPOCH "0123456789abcdef"

struct fake;
typedef void (*fake_script)(struct fake *f, int fd);

struct fake {
    int lfd;
    uint16_t port;
    pthread_t thread;
    fake_script script;
    struct wire_limits lim; /* announced in welcome */
    struct wire_buf in;     /* bytes read from the client, not yet consumed */
    uint8_t *body;          /* last frame body returned by fake_recv (owned here) */
    int failed;
    char why[512];
    uint64_t ival; /* scratch for scripts (e.g. how many frames to expect) */
};

static void fake_fail(struct fake *f, const char *fmt, ...)
{
    if (f->failed) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->why, sizeof f->why, fmt, ap);
    va_end(ap);
    f->failed = 1;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int fake_send_buf(struct fake *f, int fd, struct wire_buf *b)
{
    size_t off = 0;
    while (off < b->len) {
        ssize_t n = send(fd, b->data + off, b->len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            fake_fail(f, "fake: send failed: %s", strerror(errno));
            wire_buf_free(b);
            return -1;
        }
        off += (size_t)n;
    }
    wire_buf_free(b);
    return 0;
}

/* Read one frame from the client and decode it into *m (caller clears). 0, or -1 on EOF /
 * timeout / garbage (recorded as a failure unless quiet). */
static int fake_recv(struct fake *f, int fd, struct pub_msg *m, int quiet)
{
    int64_t deadline = mono_ms() + FAKE_WAIT_MS;
    for (;;) {
        const uint8_t *body;
        uint32_t blen;
        size_t used;
        int rc = pub_frame_next(f->in.data, f->in.len, WIRE_FRAME_MAX, &body, &blen, &used);
        if (rc == WIRE_OK) {
            free(f->body);
            f->body = malloc(blen);
            memcpy(f->body, body, blen);
            memmove(f->in.data, f->in.data + used, f->in.len - used);
            f->in.len -= used;
            struct wire_limits lim = {WIRE_FRAME_MAX, WIRE_TOPIC_LEN_MAX, WIRE_DATA_MAX,
                                      WIRE_TOPICS_MAX};
            rc = pub_decode(f->body, blen, &lim, m);
            if (rc != WIRE_OK) {
                fake_fail(f, "fake: client frame does not decode (%d)", rc);
                return -1;
            }
            return 0;
        }
        if (rc != WIRE_EAGAIN) {
            fake_fail(f, "fake: bad frame from client (%d)", rc);
            return -1;
        }
        int left = (int)(deadline - mono_ms());
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, left) <= 0) {
            if (!quiet) fake_fail(f, "fake: timed out waiting for a client frame");
            return -1;
        }
        wire_buf_reserve(&f->in, 65536);
        ssize_t n = recv(fd, f->in.data + f->in.len, f->in.cap - f->in.len, 0);
        if (n <= 0) {
            if (!quiet) fake_fail(f, "fake: client closed before sending a frame");
            return -1;
        }
        f->in.len += (size_t)n;
    }
}

/* Expect a frame of the given type; returns 0 and leaves it in *m (caller clears). */
static int fake_expect(struct fake *f, int fd, enum pub_type type, struct pub_msg *m)
{
    if (fake_recv(f, fd, m, 0) != 0) return -1;
    if (m->type != type) {
        fake_fail(f, "fake: expected message type %d, got %d", (int)type, (int)m->type);
        pub_msg_clear(m);
        return -1;
    }
    return 0;
}

static int fake_handshake(struct fake *f, int fd)
{
    struct pub_msg m;
    if (fake_expect(f, fd, PUB_HELLO, &m) != 0) return -1;
    pub_msg_clear(&m);
    struct wire_buf b = {0};
    pub_encode_welcome(&b, WIRE_VERSION, FAKE_EPOCH, "fake/0", &f->lim);
    return fake_send_buf(f, fd, &b);
}

static int fake_ack(struct fake *f, int fd, uint64_t id, const uint64_t *seqs, uint32_t n)
{
    struct wire_buf b = {0};
    pub_encode_ack(&b, id, seqs, n);
    return fake_send_buf(f, fd, &b);
}

static int fake_error(struct fake *f, int fd, uint64_t id, int32_t code, const char *msg)
{
    struct wire_buf b = {0};
    pub_encode_error(&b, id, code, msg);
    return fake_send_buf(f, fd, &b);
}

/* Wait (bounded) until the client closes its end. */
static void fake_wait_close(int fd)
{
    char buf[4096];
    int64_t deadline = mono_ms() + FAKE_WAIT_MS;
    for (;;) {
        int left = (int)(deadline - mono_ms());
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, left) <= 0) return;
        if (recv(fd, buf, sizeof buf, 0) <= 0) return;
    }
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    struct pollfd pfd = {.fd = f->lfd, .events = POLLIN};
    if (poll(&pfd, 1, FAKE_WAIT_MS) <= 0) {
        fake_fail(f, "fake: no client connected");
        return NULL;
    }
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0) {
        fake_fail(f, "fake: accept: %s", strerror(errno));
        return NULL;
    }
    f->script(f, fd);
    close(fd);
    return NULL;
}

static void fake_start(struct fake *f, fake_script script)
{
    memset(f, 0, sizeof *f);
    wire_limits_default(&f->lim);
    f->script = script;
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(f->lfd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) == 0);
    cr_assert(listen(f->lfd, 4) == 0);
    socklen_t sl = sizeof sa;
    cr_assert(getsockname(f->lfd, (struct sockaddr *)&sa, &sl) == 0);
    f->port = ntohs(sa.sin_port);
}

static void fake_run(struct fake *f)
{
    cr_assert(pthread_create(&f->thread, NULL, fake_main, f) == 0);
}

static void fake_addr(const struct fake *f, char *buf, size_t cap)
{
    snprintf(buf, cap, "127.0.0.1:%u", (unsigned)f->port);
}

/* Join the script thread and report its first failure. */
static void fake_finish(struct fake *f)
{
    pthread_join(f->thread, NULL);
    close(f->lfd);
    wire_buf_free(&f->in);
    free(f->body);
    cr_assert(!f->failed, "%s", f->why);
}

static nudge_client_t *connect_fake(struct fake *f, int timeout_ms)
{
    char addr[64];
    nudge_client_t *c = NULL;
    struct nudge_opts o = {.client_name = "unit", .timeout_ms = timeout_ms};
    fake_addr(f, addr, sizeof addr);
    char err[256];
    int rc = nudge_connect_ex(addr, &o, &c, err, sizeof err);
    cr_assert_eq(rc, NUDGE_OK, "connect: %s (%s)", nudge_strerror(rc), err);
    cr_assert_not_null(c);
    return c;
}

/* ---- scripts ------------------------------------------------------------------------------ */

static void script_handshake_only(struct fake *f, int fd)
{
    struct pub_msg m;
    if (fake_expect(f, fd, PUB_HELLO, &m) != 0) return;
    if (m.version != WIRE_VERSION) fake_fail(f, "hello v=%u", m.version);
    if (m.client.len != 4 || memcmp(m.client.p, "unit", 4) != 0)
        fake_fail(f, "hello client name is \"%.*s\"", (int)m.client.len, m.client.p);
    pub_msg_clear(&m);
    struct wire_buf b = {0};
    pub_encode_welcome(&b, WIRE_VERSION, FAKE_EPOCH, "fake/0", &f->lim);
    fake_send_buf(f, fd, &b);
    fake_wait_close(fd);
}

static void script_ack_two_topics(struct fake *f, int fd)
{
    struct pub_msg m;
    if (fake_handshake(f, fd) != 0 || fake_expect(f, fd, PUB_PUBLISH, &m) != 0) return;
    if (m.id != 1) fake_fail(f, "first publish has id %llu", (unsigned long long)m.id);
    if (m.ntopics != 2 || m.topics[0].len != 10 || memcmp(m.topics[0].p, "project:17", 10) ||
        m.topics[1].len != 6 || memcmp(m.topics[1].p, "user:5", 6))
        fake_fail(f, "publish topics wrong (%u)", m.ntopics);
    struct wire_buf js = {0};
    if (!m.data || wire_data_to_json(m.data, m.data_len, &js) != 0 || js.len != 9 ||
        memcmp(js.data, "{\"by\":42}", 9) != 0)
        fake_fail(f, "publish data is not {\"by\":42}");
    wire_buf_free(&js);
    if (m.origin.len != 3 || memcmp(m.origin.p, "c-7", 3) != 0) fake_fail(f, "origin missing");
    pub_msg_clear(&m);
    fake_ack(f, fd, 1, (const uint64_t[]){41, 3}, 2);
    fake_wait_close(fd);
}

/* Acks every publish as soon as it arrives, with seq = id * 10, until the client closes. */
static void script_ack_each(struct fake *f, int fd)
{
    struct pub_msg m;
    if (fake_handshake(f, fd) != 0) return;
    uint64_t want = 1;
    while (fake_recv(f, fd, &m, 1) == 0) {
        if (m.type != PUB_PUBLISH) {
            fake_fail(f, "expected publish, got type %d", (int)m.type);
            pub_msg_clear(&m);
            return;
        }
        if (m.id != want)
            fake_fail(f, "publish id %llu, expected %llu", (unsigned long long)m.id,
                      (unsigned long long)want);
        want++;
        uint64_t seq = m.id * 10;
        pub_msg_clear(&m);
        if (fake_ack(f, fd, want - 1, &seq, 1) != 0) return;
    }
    f->ival = want - 1;
}

/* Reads three publishes before answering any, then acks them in order. */
static void script_batch_of_three(struct fake *f, int fd)
{
    struct pub_msg m;
    if (fake_handshake(f, fd) != 0) return;
    for (uint64_t i = 1; i <= 3; i++) {
        if (fake_expect(f, fd, PUB_PUBLISH, &m) != 0) return;
        if (m.id != i)
            fake_fail(f, "publish %llu has id %llu", (unsigned long long)i,
                      (unsigned long long)m.id);
        pub_msg_clear(&m);
    }
    for (uint64_t i = 1; i <= 3; i++) {
        uint64_t seq = 100 + i;
        fake_ack(f, fd, i, &seq, 1);
    }
    fake_wait_close(fd);
}

static void script_reject_then_accept(struct fake *f, int fd)
{
    struct pub_msg m;
    if (fake_handshake(f, fd) != 0 || fake_expect(f, fd, PUB_PUBLISH, &m) != 0) return;
    pub_msg_clear(&m);
    fake_error(f, fd, 1, WIRE_C_BAD_TOPIC, "topic 1 is not allowed here");
    if (fake_expect(f, fd, PUB_PUBLISH, &m) != 0) return;
    if (m.id != 2) fake_fail(f, "second publish has id %llu", (unsigned long long)m.id);
    pub_msg_clear(&m);
    fake_ack(f, fd, 2, (const uint64_t[]){8}, 1);
    fake_wait_close(fd);
}

static void script_error_without_id(struct fake *f, int fd)
{
    struct pub_msg m;
    if (fake_handshake(f, fd) != 0 || fake_expect(f, fd, PUB_PUBLISH, &m) != 0) return;
    pub_msg_clear(&m);
    fake_error(f, fd, 0, WIRE_C_INTERNAL, "shutting down");
    fake_wait_close(fd);
}

static void script_close_mid_frame(struct fake *f, int fd)
{
    struct pub_msg m;
    if (fake_handshake(f, fd) != 0 || fake_expect(f, fd, PUB_PUBLISH, &m) != 0) return;
    pub_msg_clear(&m);
    struct wire_buf b = {0};
    pub_encode_ack(&b, 1, (const uint64_t[]){1}, 1);
    b.len = 7; /* length prefix + 3 bytes of a longer body */
    fake_send_buf(f, fd, &b);
}

static void script_silent(struct fake *f, int fd)
{
    struct pub_msg m;
    if (fake_handshake(f, fd) != 0 || fake_expect(f, fd, PUB_PUBLISH, &m) != 0) return;
    pub_msg_clear(&m);
    fake_wait_close(fd);
}

/* The first frame after the handshake must be a ping with id 1: nothing was sent before. */
static void script_expect_ping_first(struct fake *f, int fd)
{
    struct pub_msg m;
    if (fake_handshake(f, fd) != 0 || fake_expect(f, fd, PUB_PING, &m) != 0) return;
    if (m.id != 1) fake_fail(f, "ping has id %llu, expected 1", (unsigned long long)m.id);
    struct wire_buf b = {0};
    pub_encode_pong(&b, m.id);
    pub_msg_clear(&m);
    fake_send_buf(f, fd, &b);
    fake_wait_close(fd);
}

static void script_small_limits(struct fake *f, int fd)
{
    f->lim.max_topics = 2;
    f->lim.max_data = 16;
    f->lim.max_frame = 120;
    f->lim.max_topic = 100;
    script_expect_ping_first(f, fd);
}

/* Publish 1 pipelined, then a ping: answer ack 1, then pong 2. */
static void script_ack_then_pong(struct fake *f, int fd)
{
    struct pub_msg m;
    if (fake_handshake(f, fd) != 0 || fake_expect(f, fd, PUB_PUBLISH, &m) != 0) return;
    pub_msg_clear(&m);
    if (fake_expect(f, fd, PUB_PING, &m) != 0) return;
    uint64_t pid = m.id;
    pub_msg_clear(&m);
    fake_ack(f, fd, 1, (const uint64_t[]){5}, 1);
    struct wire_buf b = {0};
    pub_encode_pong(&b, pid);
    fake_send_buf(f, fd, &b);
    fake_wait_close(fd);
}

/* Publishes 1 and 2 arrive; both are acked in order (seqs 5 and 6). */
static void script_ack_two_in_order(struct fake *f, int fd)
{
    struct pub_msg m;
    if (fake_handshake(f, fd) != 0) return;
    for (uint64_t i = 1; i <= 2; i++) {
        if (fake_expect(f, fd, PUB_PUBLISH, &m) != 0) return;
        pub_msg_clear(&m);
    }
    struct wire_buf b = {0};
    pub_encode_ack(&b, 1, (const uint64_t[]){5}, 1);
    pub_encode_ack(&b, 2, (const uint64_t[]){6}, 1);
    fake_send_buf(f, fd, &b); /* one write: both acks arrive together */
    fake_wait_close(fd);
}

/* Answer publish 1 only after the client gave up on it; then answer publish 2 at once. */
static void script_late_ack(struct fake *f, int fd)
{
    struct pub_msg m;
    if (fake_handshake(f, fd) != 0 || fake_expect(f, fd, PUB_PUBLISH, &m) != 0) return;
    pub_msg_clear(&m);
    nap_ms(400);
    fake_ack(f, fd, 1, (const uint64_t[]){111}, 1);
    if (fake_expect(f, fd, PUB_PUBLISH, &m) != 0) return;
    uint64_t id = m.id;
    pub_msg_clear(&m);
    fake_ack(f, fd, id, (const uint64_t[]){222}, 1);
    fake_wait_close(fd);
}

static void script_close_after_welcome(struct fake *f, int fd)
{
    fake_handshake(f, fd);
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg); /* RST: writes then hit EPIPE */
}

static void script_mute_after_hello(struct fake *f, int fd)
{
    struct pub_msg m;
    if (fake_expect(f, fd, PUB_HELLO, &m) != 0) return;
    pub_msg_clear(&m);
    fake_wait_close(fd);
}

static void script_reject_hello(struct fake *f, int fd)
{
    struct pub_msg m;
    if (fake_expect(f, fd, PUB_HELLO, &m) != 0) return;
    pub_msg_clear(&m);
    fake_error(f, fd, 0, WIRE_C_BAD_VERSION, "version 1 not supported");
    fake_wait_close(fd);
}

/* ---- tests -------------------------------------------------------------------------------- */

Test(client, completes_handshake_and_reports_broker_epoch)
{
    struct fake f;
    fake_start(&f, script_handshake_only);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 2000);
    cr_assert_str_eq(nudge_epoch(c), FAKE_EPOCH);
    nudge_close(c);
    fake_finish(&f);
}

Test(client, returns_one_seq_per_topic_from_ack)
{
    struct fake f;
    fake_start(&f, script_ack_two_topics);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 2000);
    const char *topics[] = {"project:17", "user:5"};
    struct nudge_pub p = {
        .topics = topics, .ntopics = 2, .data_json = "{ \"by\" : 42 }", .origin = "c-7"};
    uint64_t seqs[2] = {0, 0};
    int rc = nudge_publish_ex(c, &p, seqs);
    cr_assert_eq(rc, NUDGE_OK, "%s", nudge_last_error(c));
    cr_assert_eq(seqs[0], 41);
    cr_assert_eq(seqs[1], 3);
    cr_assert_eq(nudge_last_code(c), 0);
    nudge_close(c);
    fake_finish(&f);
}

Test(client, numbers_requests_from_one_upward)
{
    struct fake f;
    fake_start(&f, script_ack_each);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 2000);
    const char *t[] = {"a"};
    for (uint64_t i = 1; i <= 5; i++) {
        uint64_t seq = 0;
        cr_assert_eq(nudge_publish(c, t, 1, NULL, &seq), NUDGE_OK, "%s", nudge_last_error(c));
        cr_assert_eq(seq, i * 10);
    }
    nudge_close(c);
    fake_finish(&f);
    cr_assert_eq(f.ival, 5);
}

Test(client, returns_pipelined_acks_in_send_order)
{
    struct fake f;
    fake_start(&f, script_batch_of_three);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 2000);
    const char *t[] = {"x"};
    struct nudge_pub p = {.topics = t, .ntopics = 1};
    for (uint64_t i = 1; i <= 3; i++) {
        uint64_t id = 0;
        cr_assert_eq(nudge_send(c, &p, &id), NUDGE_OK);
        cr_assert_eq(id, i);
    }
    for (uint64_t i = 1; i <= 3; i++) {
        uint64_t id = 0, seq = 0;
        size_t n = 0;
        cr_assert_eq(nudge_recv_ack(c, &id, &seq, 1, &n), NUDGE_OK, "%s", nudge_last_error(c));
        cr_assert_eq(id, i);
        cr_assert_eq(n, 1);
        cr_assert_eq(seq, 100 + i);
    }
    nudge_close(c);
    fake_finish(&f);
}

Test(client, pipelines_thousands_of_publishes_without_deadlock)
{
    struct fake f;
    fake_start(&f, script_ack_each);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 5000);
    const char *t[] = {"some:fairly:long:topic:name:to:fill:the:socket:buffers:quickly"};
    struct nudge_pub p = {.topics = t, .ntopics = 1, .data_json = "{\"by\":12345}"};
    enum { N = 20000 };
    for (int i = 0; i < N; i++)
        cr_assert_eq(nudge_send(c, &p, NULL), NUDGE_OK, "send %d: %s", i, nudge_last_error(c));
    for (uint64_t i = 1; i <= N; i++) {
        uint64_t id = 0, seq = 0;
        cr_assert_eq(nudge_recv_ack(c, &id, &seq, 1, NULL), NUDGE_OK, "%s", nudge_last_error(c));
        cr_assert_eq(id, i);
        cr_assert_eq(seq, i * 10);
    }
    nudge_close(c);
    fake_finish(&f);
    cr_assert_eq(f.ival, N);
}

Test(client, returns_broker_error_code_for_rejected_publish)
{
    struct fake f;
    fake_start(&f, script_reject_then_accept);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 2000);
    const char *t[] = {"secret:1"};
    uint64_t seq = 0;
    cr_assert_eq(nudge_publish(c, t, 1, NULL, &seq), NUDGE_EBROKER);
    cr_assert_eq(nudge_last_code(c), WIRE_C_BAD_TOPIC);
    cr_assert_str_eq(nudge_last_error(c), "bad_topic: topic 1 is not allowed here");
    /* A rejected request leaves the connection usable. */
    cr_assert_eq(nudge_publish(c, t, 1, NULL, &seq), NUDGE_OK, "%s", nudge_last_error(c));
    cr_assert_eq(seq, 8);
    cr_assert_eq(nudge_last_code(c), 0);
    nudge_close(c);
    fake_finish(&f);
}

Test(client, reports_pipelined_broker_error_with_its_request_id)
{
    struct fake f;
    fake_start(&f, script_reject_then_accept);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 2000);
    const char *t[] = {"secret:1"};
    struct nudge_pub p = {.topics = t, .ntopics = 1};
    cr_assert_eq(nudge_send(c, &p, NULL), NUDGE_OK);
    uint64_t id = 99;
    cr_assert_eq(nudge_recv_ack(c, &id, NULL, 0, NULL), NUDGE_EBROKER);
    cr_assert_eq(id, 1);
    cr_assert_eq(nudge_last_code(c), WIRE_C_BAD_TOPIC);
    cr_assert_eq(nudge_send(c, &p, NULL), NUDGE_OK);
    uint64_t seq = 0;
    size_t n = 0;
    cr_assert_eq(nudge_recv_ack(c, &id, &seq, 1, &n), NUDGE_OK);
    cr_assert_eq(id, 2);
    cr_assert_eq(seq, 8);
    nudge_close(c);
    fake_finish(&f);
}

Test(client, treats_error_without_id_as_a_dead_connection)
{
    struct fake f;
    fake_start(&f, script_error_without_id);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 2000);
    const char *t[] = {"a"};
    cr_assert_eq(nudge_publish(c, t, 1, NULL, NULL), NUDGE_EBROKER);
    cr_assert_eq(nudge_last_code(c), WIRE_C_INTERNAL);
    cr_assert_str_eq(nudge_last_error(c), "internal: shutting down");
    cr_assert_eq(nudge_publish(c, t, 1, NULL, NULL), NUDGE_EIO);
    cr_assert_eq(nudge_ping(c), NUDGE_EIO);
    nudge_close(c);
    fake_finish(&f);
}

Test(client, returns_eio_when_connection_closes_mid_frame)
{
    struct fake f;
    fake_start(&f, script_close_mid_frame);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 2000);
    const char *t[] = {"a"};
    cr_assert_eq(nudge_publish(c, t, 1, NULL, NULL), NUDGE_EIO);
    cr_assert(strstr(nudge_last_error(c), "middle of a frame"), "%s", nudge_last_error(c));
    cr_assert_eq(nudge_publish(c, t, 1, NULL, NULL), NUDGE_EIO);
    nudge_close(c);
    fake_finish(&f);
}

Test(client, times_out_when_the_broker_does_not_answer)
{
    struct fake f;
    fake_start(&f, script_silent);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 200);
    const char *t[] = {"a"};
    int64_t t0 = mono_ms();
    cr_assert_eq(nudge_publish(c, t, 1, NULL, NULL), NUDGE_ETIMEOUT);
    int64_t took = mono_ms() - t0;
    cr_assert(took >= 150 && took < 2000, "took %lld ms", (long long)took);
    nudge_close(c);
    fake_finish(&f);
}

Test(client, drops_the_late_ack_of_a_timed_out_publish)
{
    struct fake f;
    fake_start(&f, script_late_ack);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 200);
    const char *t[] = {"a"};
    uint64_t seq = 0;
    cr_assert_eq(nudge_publish(c, t, 1, NULL, &seq), NUDGE_ETIMEOUT);
    nap_ms(300); /* the late ack for request 1 arrives meanwhile */
    cr_assert_eq(nudge_publish(c, t, 1, NULL, &seq), NUDGE_OK, "%s", nudge_last_error(c));
    cr_assert_eq(seq, 222);
    nudge_close(c);
    fake_finish(&f);
}

Test(client, answers_ping_while_pipelined_acks_wait)
{
    struct fake f;
    fake_start(&f, script_ack_then_pong);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 2000);
    const char *t[] = {"a"};
    struct nudge_pub p = {.topics = t, .ntopics = 1};
    cr_assert_eq(nudge_send(c, &p, NULL), NUDGE_OK);
    cr_assert_eq(nudge_ping(c), NUDGE_OK, "%s", nudge_last_error(c));
    uint64_t id = 0, seq = 0;
    cr_assert_eq(nudge_recv_ack(c, &id, &seq, 1, NULL), NUDGE_OK, "%s", nudge_last_error(c));
    cr_assert_eq(id, 1);
    cr_assert_eq(seq, 5);
    nudge_close(c);
    fake_finish(&f);
}

Test(client, publish_takes_its_own_ack_and_leaves_pipelined_ones)
{
    struct fake f;
    fake_start(&f, script_ack_two_in_order);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 2000);
    const char *t[] = {"a"};
    struct nudge_pub p = {.topics = t, .ntopics = 1};
    uint64_t id = 0, seq = 0;
    cr_assert_eq(nudge_send(c, &p, &id), NUDGE_OK);
    cr_assert_eq(id, 1);
    cr_assert_eq(nudge_publish(c, t, 1, NULL, &seq), NUDGE_OK, "%s", nudge_last_error(c));
    cr_assert_eq(seq, 6);
    cr_assert_eq(nudge_recv_ack(c, &id, &seq, 1, NULL), NUDGE_OK, "%s", nudge_last_error(c));
    cr_assert_eq(id, 1);
    cr_assert_eq(seq, 5);
    nudge_close(c);
    fake_finish(&f);
}

Test(client, rejects_invalid_topics_before_sending)
{
    struct fake f;
    fake_start(&f, script_expect_ping_first);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 2000);
    const char *bad[][1] = {{"has space"}, {""}, {"wild*"}, {"tab\tx"}, {"\xff\xfe"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(nudge_publish(c, bad[i], 1, NULL, NULL), NUDGE_EINVAL, "topic %zu", i);
        cr_assert(strstr(nudge_last_error(c), "bad topic 1"), "%s", nudge_last_error(c));
    }
    const char *two[] = {"ok", "not ok"};
    cr_assert_eq(nudge_publish(c, two, 2, NULL, NULL), NUDGE_EINVAL);
    cr_assert(strstr(nudge_last_error(c), "bad topic 2 \"not ok\": contains a space"), "%s",
              nudge_last_error(c));
    cr_assert_eq(nudge_publish(c, two, 0, NULL, NULL), NUDGE_EINVAL);
    /* Nothing went out and no id was used: the fake sees ping id 1 next. */
    cr_assert_eq(nudge_ping(c), NUDGE_OK, "%s", nudge_last_error(c));
    nudge_close(c);
    fake_finish(&f);
}

Test(client, rejects_bad_data_json_before_sending)
{
    struct fake f;
    fake_start(&f, script_expect_ping_first);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 2000);
    const char *t[] = {"a"};
    const char *bad[] = {"{", "{\"by\":}", "nope", "[1,2", "{\"a\":1} trailing"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(nudge_publish(c, t, 1, bad[i], NULL), NUDGE_EINVAL, "data %s", bad[i]);
        cr_assert(strstr(nudge_last_error(c), "JSON"), "%s", nudge_last_error(c));
    }
    cr_assert_eq(nudge_ping(c), NUDGE_OK, "%s", nudge_last_error(c));
    nudge_close(c);
    fake_finish(&f);
}

Test(client, rejects_publishes_over_the_broker_limits)
{
    struct fake f;
    fake_start(&f, script_small_limits);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 2000);
    const char *three[] = {"a", "b", "c"};
    cr_assert_eq(nudge_publish(c, three, 3, NULL, NULL), NUDGE_EINVAL);
    cr_assert(strstr(nudge_last_error(c), "max_topics is 2"), "%s", nudge_last_error(c));
    cr_assert_eq(nudge_publish(c, three, 1, "\"0123456789abcdefghij\"", NULL), NUDGE_EINVAL);
    cr_assert(strstr(nudge_last_error(c), "max_data is 16"), "%s", nudge_last_error(c));
    char big[101];
    memset(big, 't', 100);
    big[100] = '\0';
    const char *bigt[] = {big, big};
    cr_assert_eq(nudge_publish(c, bigt, 2, NULL, NULL), NUDGE_EINVAL);
    cr_assert(strstr(nudge_last_error(c), "max_frame is 120"), "%s", nudge_last_error(c));
    char longer[102];
    memset(longer, 't', 101);
    longer[101] = '\0';
    const char *longt[] = {longer};
    cr_assert_eq(nudge_publish(c, longt, 1, NULL, NULL), NUDGE_EINVAL);
    cr_assert(strstr(nudge_last_error(c), "too long"), "announced max_topic 100: %s",
              nudge_last_error(c));
    cr_assert_eq(nudge_ping(c), NUDGE_OK, "%s", nudge_last_error(c));
    nudge_close(c);
    fake_finish(&f);
}

Test(client, survives_a_reset_connection_without_sigpipe)
{
    signal(SIGPIPE, SIG_DFL); /* a write to a dead socket must not kill us */
    struct fake f;
    fake_start(&f, script_close_after_welcome);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 2000);
    fake_finish(&f); /* the fake has reset the connection */
    nap_ms(50);
    const char *t[] = {"a"};
    struct nudge_pub p = {.topics = t, .ntopics = 1};
    int rc = NUDGE_OK;
    for (int i = 0; i < 100 && rc == NUDGE_OK; i++) {
        rc = nudge_send(c, &p, NULL);
        if (rc == NUDGE_OK) rc = nudge_flush(c);
    }
    if (rc == NUDGE_OK) rc = nudge_recv_ack(c, NULL, NULL, 0, NULL);
    cr_assert_eq(rc, NUDGE_EIO, "got %s: %s", nudge_strerror(rc), nudge_last_error(c));
    cr_assert_eq(nudge_publish(c, t, 1, NULL, NULL), NUDGE_EIO);
    nudge_close(c);
}

Test(client, refuses_recv_ack_with_nothing_pending)
{
    struct fake f;
    fake_start(&f, script_handshake_only);
    fake_run(&f);
    nudge_client_t *c = connect_fake(&f, 2000);
    cr_assert_eq(nudge_recv_ack(c, NULL, NULL, 0, NULL), NUDGE_EINVAL);
    nudge_close(c);
    fake_finish(&f);
}

Test(client, reports_a_rejected_hello_as_broker_error)
{
    struct fake f;
    fake_start(&f, script_reject_hello);
    fake_run(&f);
    char addr[64], err[256];
    fake_addr(&f, addr, sizeof addr);
    nudge_client_t *c = (nudge_client_t *)&f; /* must be reset to NULL */
    cr_assert_eq(nudge_connect_ex(addr, NULL, &c, err, sizeof err), NUDGE_EBROKER);
    cr_assert_null(c);
    cr_assert_str_eq(err, "bad_version: version 1 not supported");
    fake_finish(&f);
}

Test(client, times_out_a_handshake_the_broker_never_answers)
{
    struct fake f;
    fake_start(&f, script_mute_after_hello);
    fake_run(&f);
    char addr[64], err[256];
    fake_addr(&f, addr, sizeof addr);
    nudge_client_t *c = NULL;
    struct nudge_opts o = {.timeout_ms = 200};
    int64_t t0 = mono_ms();
    cr_assert_eq(nudge_connect_ex(addr, &o, &c, err, sizeof err), NUDGE_ETIMEOUT, "%s", err);
    cr_assert(mono_ms() - t0 < 2000);
    cr_assert_null(c);
    fake_finish(&f);
}

Test(client, rejects_malformed_addresses)
{
    const char *bad[] = {"[::1",       "[::1]x", "::1:7400",  "host:",  ":7400",
                         "host:99999", "host:0", "host:12ab", "[]:7400"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nudge_client_t *c = NULL;
        char err[256];
        cr_assert_eq(nudge_connect_ex(bad[i], NULL, &c, err, sizeof err), NUDGE_EINVAL, "%s",
                     bad[i]);
        cr_assert_null(c);
        cr_assert(strstr(err, "bad address"), "%s", err);
    }
}

Test(client, fails_to_connect_to_a_closed_port)
{
    /* Bind a port, then close it: nothing listens there now. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    char addr[64], err[256];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    nudge_client_t *c = NULL;
    cr_assert_eq(nudge_connect_ex(addr, NULL, &c, err, sizeof err), NUDGE_ECONNECT);
    cr_assert(strstr(err, "Connection refused"), "%s", err);
    cr_assert_eq(nudge_connect(addr, NULL, &c), NUDGE_ECONNECT);
    cr_assert_null(c);
}

Test(client, fails_to_resolve_an_unknown_host)
{
    nudge_client_t *c = NULL;
    char err[256];
    int rc = nudge_connect_ex("no-such-host.invalid:7400", NULL, &c, err, sizeof err);
    cr_assert_eq(rc, NUDGE_ECONNECT, "%s: %s", nudge_strerror(rc), err);
    cr_assert_null(c);
}

Test(client, connects_over_ipv6_loopback_with_brackets)
{
    int lfd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (lfd >= 0) close(lfd);
        cr_skip_test("no IPv6 loopback here");
    }
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    listen(lfd, 1);
    struct fake f;
    fake_start(&f, script_handshake_only);
    close(f.lfd);
    f.lfd = lfd;
    f.port = ntohs(sa.sin6_port);
    fake_run(&f);
    char addr[64];
    snprintf(addr, sizeof addr, "[::1]:%u", (unsigned)f.port);
    nudge_client_t *c = NULL;
    struct nudge_opts o = {.client_name = "unit", .timeout_ms = 2000};
    cr_assert_eq(nudge_connect(addr, &o, &c), NUDGE_OK);
    cr_assert_str_eq(nudge_epoch(c), FAKE_EPOCH);
    nudge_close(c);
    fake_finish(&f);
}

Test(client, names_every_error_code)
{
    for (int e = NUDGE_ENOMEM; e <= NUDGE_OK; e++)
        cr_assert_str_neq(nudge_strerror(e), "unknown error", "%d", e);
    cr_assert_str_eq(nudge_strerror(42), "unknown error");
    cr_assert_str_eq(nudge_last_error(NULL), "no client");
    nudge_close(NULL);
}
