/* The `nudge` CLI against the real nudged: `nudge sub` (JSON and msgpack) receives exactly the
 * hints `nudge pub` published, in order, one compact JSON line each; `nudge stats` prints the
 * broker's /stats; usage errors exit 2, runtime errors exit 1 with a "nudge: ..." message.
 *
 * Binaries come from $NUDGE_BIN (default build/asan). Long-running `nudge sub` processes are
 * spawned here with pipes (run_cmd only runs to completion); every wait is bounded and only the
 * PIDs started here are signalled. Each test starts its own broker on ephemeral ports. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "wire.h"

#define CMD_TIMEOUT_MS 15000

/* ---- a spawned `nudge sub` ---------------------------------------------------------------- */

struct proc {
    pid_t pid;
    int out_fd, err_fd; /* -1 once EOF */
    struct wire_buf out, err;
    int reaped, status;
};

static void cli_path(char *buf, size_t cap)
{
    cr_assert_eq(nudge_bin_path("nudge", buf, cap), 0);
}

static void proc_spawn(struct proc *p, const char *const *argv)
{
    int outp[2], errp[2];
    memset(p, 0, sizeof *p);
    cr_assert_eq(pipe2(outp, O_CLOEXEC), 0);
    cr_assert_eq(pipe2(errp, O_CLOEXEC), 0);
    pid_t parent = getpid();
    fflush(NULL);
    p->pid = fork();
    cr_assert(p->pid >= 0);
    if (p->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        dup2(outp[1], 1);
        dup2(errp[1], 2);
        execv(argv[0], (char *const *)argv);
        dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(outp[1]);
    close(errp[1]);
    p->out_fd = outp[0];
    p->err_fd = errp[0];
}

static size_t count_substr(const struct wire_buf *b, const char *needle)
{
    size_t n = 0, nl = strlen(needle);
    for (size_t i = 0; i + nl <= b->len; i++)
        if (memcmp(b->data + i, needle, nl) == 0) n++;
    return n;
}

/* Read stdout/stderr until `until` returns 1, both pipes close, or timeout_ms passes.
 * Returns 1 when the condition held. */
static int proc_pump(struct proc *p, int (*until)(const struct proc *, const void *),
                     const void *arg, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        if (until && until(p, arg)) return 1;
        if (p->out_fd < 0 && p->err_fd < 0) return 0;
        int64_t left = end - now_ms();
        if (left <= 0) return 0;
        struct pollfd pfd[2];
        struct wire_buf *bufs[2];
        int *fds[2];
        nfds_t n = 0;
        if (p->out_fd >= 0) {
            pfd[n] = (struct pollfd){.fd = p->out_fd, .events = POLLIN};
            bufs[n] = &p->out;
            fds[n++] = &p->out_fd;
        }
        if (p->err_fd >= 0) {
            pfd[n] = (struct pollfd){.fd = p->err_fd, .events = POLLIN};
            bufs[n] = &p->err;
            fds[n++] = &p->err_fd;
        }
        int r = poll(pfd, n, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        for (nfds_t i = 0; i < n; i++) {
            if (!pfd[i].revents) continue;
            cr_assert_eq(wire_buf_reserve(bufs[i], 4096), 0);
            ssize_t got = read(*fds[i], bufs[i]->data + bufs[i]->len, 4096);
            if (got > 0) {
                bufs[i]->len += (size_t)got;
            } else if (got == 0 || errno != EINTR) {
                close(*fds[i]);
                *fds[i] = -1;
            }
        }
    }
}

struct needle {
    const char *s;
    size_t times;
};

static int err_has(const struct proc *p, const void *arg)
{
    const struct needle *nd = arg;
    return count_substr(&p->err, nd->s) >= nd->times;
}

/* Wait for the process to end (pipes drained), up to timeout_ms; then SIGKILL it. Returns the
 * exit status, 128+signal, or -1 when it had to be killed. */
static int proc_wait(struct proc *p, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    proc_pump(p, NULL, NULL, timeout_ms);
    while (!p->reaped) {
        pid_t r = waitpid(p->pid, &p->status, WNOHANG);
        if (r == p->pid) {
            p->reaped = 1;
            break;
        }
        if (now_ms() >= end) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &p->status, 0);
            p->reaped = 1;
            return -1;
        }
        sleep_ms(10);
    }
    if (WIFEXITED(p->status)) return WEXITSTATUS(p->status);
    return 128 + WTERMSIG(p->status);
}

static void proc_free(struct proc *p)
{
    if (p->pid > 0 && !p->reaped) {
        kill(p->pid, SIGKILL);
        waitpid(p->pid, &p->status, 0);
        p->reaped = 1;
    }
    if (p->out_fd >= 0) close(p->out_fd);
    if (p->err_fd >= 0) close(p->err_fd);
    wire_buf_free(&p->out);
    wire_buf_free(&p->err);
}

/* The buffer as a C string (NUL added after len) for messages and string compares. */
static const char *text(struct wire_buf *b)
{
    wire_buf_reserve(b, 1);
    b->data[b->len] = '\0';
    return (const char *)b->data;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void start(struct nudged *d)
{
    cr_assert_eq(nudged_start(d, NULL), 0, "nudged did not start");
}

static void stop(struct nudged *d)
{
    cr_assert_eq(nudged_stop(d), 0, "nudged did not exit 0 (leak or crash?)");
}

static void addr_of(uint16_t port, char *buf, size_t cap)
{
    snprintf(buf, cap, "127.0.0.1:%u", (unsigned)port);
}

/* A loopback port with nothing listening (bound, then closed). */
static uint16_t dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    return ntohs(sa.sin_port);
}

/* Run `nudge pub --addr A --data D TOPIC...` and return its exit status; stdout in *out. */
static int run_pub(const struct nudged *d, const char *data, const char *const *topics, size_t n,
                   char **out, char **err)
{
    char bin[512], addr[64];
    cli_path(bin, sizeof bin);
    addr_of(d->pub_port, addr, sizeof addr);
    const char *argv[16] = {bin, "pub", "--addr", addr};
    size_t k = 4;
    if (data) {
        argv[k++] = "--data";
        argv[k++] = data;
    }
    for (size_t i = 0; i < n && k < 15; i++)
        argv[k++] = topics[i];
    argv[k] = NULL;
    return run_cmd(argv, NULL, out, err, CMD_TIMEOUT_MS);
}

/* The whole scenario: sub to topicA+topicB, three pubs to topicA, three exact lines. */
static void sub_sees_three_hints(const char *mode_flag)
{
    struct nudged d = {0};
    start(&d);
    char bin[512], url[64];
    cli_path(bin, sizeof bin);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", (unsigned)d.ws_port);
    const char *argv[12] = {bin, "sub", "--url", url, "--count", "3", "--timeout", "20"};
    size_t k = 8;
    if (mode_flag) argv[k++] = mode_flag;
    argv[k++] = "topicA";
    argv[k++] = "topicB";
    argv[k] = NULL;

    struct proc p;
    proc_spawn(&p, argv);
    struct needle nd = {"nudge: subscribed ", 2};
    int ok = proc_pump(&p, err_has, &nd, 10000);
    cr_assert(ok, "sub never confirmed both topics; stderr: %s", text(&p.err));
    cr_assert_eq(count_substr(&p.err, "nudge: subscribed topicA seq=0"), 1, "%s", text(&p.err));
    cr_assert_eq(count_substr(&p.err, "nudge: subscribed topicB seq=0"), 1, "%s", text(&p.err));

    const char *t[] = {"topicA"};
    for (int i = 1; i <= 3; i++) {
        char *out = NULL, *err = NULL, want[64];
        int rc = run_pub(&d, "{\"by\":1}", t, 1, &out, &err);
        cr_assert_eq(rc, 0, "pub %d exited %d: %s", i, rc, err ? err : "");
        snprintf(want, sizeof want, "topicA %d\n", i);
        cr_assert_str_eq(out, want);
        free(out);
        free(err);
    }
    int rc = proc_wait(&p, 10000);
    cr_assert_eq(rc, 0, "sub exited %d; stderr: %s", rc, text(&p.err));
    cr_assert_str_eq(text(&p.out),
                     "{\"type\":\"hint\",\"topic\":\"topicA\",\"seq\":1,\"data\":{\"by\":1}}\n"
                     "{\"type\":\"hint\",\"topic\":\"topicA\",\"seq\":2,\"data\":{\"by\":1}}\n"
                     "{\"type\":\"hint\",\"topic\":\"topicA\",\"seq\":3,\"data\":{\"by\":1}}\n");
    proc_free(&p);
    stop(&d);
}

/* ---- tests -------------------------------------------------------------------------------- */

Test(cli, sub_prints_each_published_hint_as_one_json_line, .timeout = 90)
{
    sub_sees_three_hints(NULL);
}

Test(cli, sub_in_msgpack_mode_prints_the_same_json_lines, .timeout = 90)
{
    sub_sees_three_hints("--msgpack");
}

Test(cli, sub_marks_hints_published_with_its_conn_as_origin_own, .timeout = 60)
{
    struct nudged d = {0};
    start(&d);
    char bin[512], url[64], addr[64];
    cli_path(bin, sizeof bin);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", (unsigned)d.ws_port);
    addr_of(d.pub_port, addr, sizeof addr);
    const char *argv[] = {bin, "sub", "--url", url, "--count", "1", "--timeout", "20", "o", NULL};
    struct proc p;
    proc_spawn(&p, argv);
    struct needle nd = {"nudge: subscribed o", 1};
    cr_assert(proc_pump(&p, err_has, &nd, 10000), "%s", text(&p.err));
    char conn[64] = "";
    const char *at = strstr(text(&p.err), "nudge: connected conn=");
    cr_assert_not_null(at, "no conn id on stderr: %s", text(&p.err));
    cr_assert_eq(sscanf(at, "nudge: connected conn=%63s", conn), 1);

    const char *pargv[] = {bin, "pub", "--addr", addr, "--origin", conn, "o", NULL};
    char *out = NULL, *err = NULL;
    cr_assert_eq(run_cmd(pargv, NULL, &out, &err, CMD_TIMEOUT_MS), 0, "%s", err);
    cr_assert_str_eq(out, "o 1\n");
    free(out);
    free(err);
    int rc = proc_wait(&p, 10000);
    cr_assert_eq(rc, 0, "sub exited %d: %s", rc, text(&p.err));
    cr_assert_str_eq(text(&p.out), "{\"type\":\"hint\",\"topic\":\"o\",\"seq\":1,\"own\":true}\n");
    proc_free(&p);
    stop(&d);
}

Test(cli, sub_accepts_a_wildcard_pattern_and_prints_matching_hints, .timeout = 60)
{
    struct nudged d = {0};
    start(&d);
    char bin[512], url[64], addr[64];
    cli_path(bin, sizeof bin);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", (unsigned)d.ws_port);
    addr_of(d.pub_port, addr, sizeof addr);
    const char *argv[] = {bin, "sub", "--url", url, "--count", "1", "--timeout", "20", "w:*", NULL};
    struct proc p;
    proc_spawn(&p, argv);
    struct needle nd = {"nudge: subscribed w:*", 1};
    cr_assert(proc_pump(&p, err_has, &nd, 10000), "%s", text(&p.err));
    const char *pargv[] = {bin, "pub", "--addr", addr, "w:1:deep", "w:2", NULL};
    char *out = NULL, *err = NULL;
    cr_assert_eq(run_cmd(pargv, NULL, &out, &err, CMD_TIMEOUT_MS), 0, "%s", err);
    free(out);
    free(err);
    int rc = proc_wait(&p, 10000);
    cr_assert_eq(rc, 0, "sub exited %d: %s", rc, text(&p.err));
    /* w:1:deep has two segments after "w": '*' matches exactly one, so only w:2 arrives. */
    cr_assert_str_eq(text(&p.out), "{\"type\":\"hint\",\"topic\":\"w:2\",\"seq\":1}\n");
    proc_free(&p);
    stop(&d);
}

Test(cli, pub_prints_one_seq_per_topic_in_order, .timeout = 60)
{
    struct nudged d = {0};
    start(&d);
    const char *t[] = {"project:17", "user:5"};
    char *out = NULL, *err = NULL;
    cr_assert_eq(run_pub(&d, NULL, t, 1, &out, &err), 0, "%s", err);
    cr_assert_str_eq(out, "project:17 1\n");
    free(out);
    free(err);
    cr_assert_eq(run_pub(&d, "[1,\"x\",null]", t, 2, &out, &err), 0, "%s", err);
    cr_assert_str_eq(out, "project:17 2\nuser:5 1\n");
    cr_assert_str_eq(err, "");
    free(out);
    free(err);
    stop(&d);
}

Test(cli, pub_uses_nudge_addr_from_the_environment, .timeout = 60)
{
    struct nudged d = {0};
    start(&d);
    char bin[512], addr[64];
    cli_path(bin, sizeof bin);
    addr_of(d.pub_port, addr, sizeof addr);
    setenv("NUDGE_ADDR", addr, 1);
    const char *argv[] = {bin, "pub", "env:topic", NULL};
    char *out = NULL, *err = NULL;
    int rc = run_cmd(argv, NULL, &out, &err, CMD_TIMEOUT_MS);
    unsetenv("NUDGE_ADDR");
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(out, "env:topic 1\n");
    free(out);
    free(err);
    stop(&d);
}

Test(cli, pub_refuses_a_topic_over_the_announced_max_topic_and_exits_1, .timeout = 60)
{
    struct nudged d = {0};
    start(&d);
    /* Valid for the protocol (<= 1024 bytes) but over the broker's default max_topic (256),
     * which welcome announces: refused before it is sent. */
    char longt[600];
    memset(longt, 'x', sizeof longt - 1);
    longt[sizeof longt - 1] = '\0';
    const char *t[] = {longt};
    char *out = NULL, *err = NULL;
    int rc = run_pub(&d, NULL, t, 1, &out, &err);
    cr_assert_eq(rc, 1, "exit %d, stderr: %s", rc, err);
    cr_assert_str_eq(out, "");
    cr_assert(strstr(err, "too long"), "%s", err);
    free(out);
    free(err);
    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st);
    cr_expect_eq(json_integer_value(json_object_get(st, "errors")), 0,
                 "the broker never saw the publish");
    json_decref(st);
    stop(&d);
}

Test(cli, stats_prints_indented_json_with_publishes, .timeout = 60)
{
    struct nudged d = {0};
    start(&d);
    const char *t[] = {"s"};
    char *out = NULL, *err = NULL;
    cr_assert_eq(run_pub(&d, NULL, t, 1, &out, &err), 0, "%s", err);
    free(out);
    free(err);

    char bin[512], addr[64];
    cli_path(bin, sizeof bin);
    addr_of(d.admin_port, addr, sizeof addr);
    const char *argv[] = {bin, "stats", "--addr", addr, NULL};
    cr_assert_eq(run_cmd(argv, NULL, &out, &err, CMD_TIMEOUT_MS), 0, "%s", err);
    cr_assert(strncmp(out, "{\n  \"", 5) == 0, "not indented by 2: %s", out);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    cr_assert_not_null(j, "stdout is not JSON (%s): %s", je.text, out);
    cr_assert_eq(stats_int(j, "publishes"), 1, "%s", out);
    json_decref(j);
    free(out);
    free(err);

    const char *argv2[] = {bin, "stats", "--json", "--addr", addr, NULL};
    cr_assert_eq(run_cmd(argv2, NULL, &out, &err, CMD_TIMEOUT_MS), 0, "%s", err);
    size_t len = strlen(out);
    cr_assert(len > 2 && out[0] == '{' && out[len - 1] == '\n', "%s", out);
    cr_assert(strchr(out, '\n') == out + len - 1, "not one line: %s", out);
    cr_assert(strstr(out, "\"publishes\":1"), "%s", out);
    free(out);
    free(err);
    stop(&d);
}

Test(cli, stats_reports_a_non_200_status_and_exits_1, .timeout = 60)
{
    struct nudged d = {0};
    start(&d);
    char bin[512], addr[64];
    cli_path(bin, sizeof bin);
    addr_of(d.ws_port, addr, sizeof addr); /* the WebSocket port refuses plain GETs */
    const char *argv[] = {bin, "stats", "--addr", addr, NULL};
    char *out = NULL, *err = NULL;
    int rc = run_cmd(argv, NULL, &out, &err, CMD_TIMEOUT_MS);
    cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "nudge: stats: HTTP/1."), "%s", err);
    free(out);
    free(err);
    stop(&d);
}

Test(cli, bad_usage_exits_with_status_2, .timeout = 60)
{
    char bin[512];
    cli_path(bin, sizeof bin);
    const char *cases[][8] = {
        {bin, NULL},
        {bin, "frobnicate", NULL},
        {bin, "--bogus", NULL},
        {bin, "pub", NULL},
        {bin, "pub", "--bogus", "t", NULL},
        {bin, "pub", "has space", NULL},
        {bin, "pub", "--data", "{nope", "t", NULL},
        {bin, "pub", "--addr", NULL},
        {bin, "pub", "--addr", "::1:7400", "t", NULL},
        {bin, "sub", NULL},
        {bin, "sub", "--count", "0", "t", NULL},
        {bin, "sub", "--timeout", "-1", "t", NULL},
        {bin, "sub", "--url", "http://127.0.0.1:1/", "t", NULL},
        {bin, "sub", "wild*", NULL},
        {bin, "stats", "extra", NULL},
        {bin, "stats", "--addr", "nocolon", NULL},
        {bin, "tail", NULL},
        {bin, "tail", "--url", "http://127.0.0.1:1/", "t", NULL},
        {bin, "tail", "bad topic", NULL},
        {bin, "top", "extra", NULL},
        {bin, "top", "--interval", "0", NULL},
        {bin, "top", "--admin", "nocolon", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL, *err = NULL;
        int rc = run_cmd(cases[i], NULL, &out, &err, CMD_TIMEOUT_MS);
        cr_expect_eq(rc, 2, "case %zu (%s %s) exited %d: %s", i, cases[i][1] ? cases[i][1] : "",
                     cases[i][1] && cases[i][2] ? cases[i][2] : "", rc, err);
        cr_expect(strncmp(err, "nudge: ", 7) == 0, "case %zu: stderr %s", i, err);
        cr_expect_str_eq(out, "", "case %zu", i);
        free(out);
        free(err);
    }
}

Test(cli, help_and_version_exit_0, .timeout = 60)
{
    char bin[512];
    cli_path(bin, sizeof bin);
    const char *cases[][4] = {{bin, "--help", NULL},         {bin, "pub", "--help", NULL},
                              {bin, "sub", "-h", NULL},      {bin, "stats", "--help", NULL},
                              {bin, "tail", "--help", NULL}, {bin, "top", "-h", NULL},
                              {bin, "--version", NULL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL, *err = NULL;
        cr_expect_eq(run_cmd(cases[i], NULL, &out, &err, CMD_TIMEOUT_MS), 0, "case %zu", i);
        if (strcmp(cases[i][1], "--version") != 0)
            cr_expect(strncmp(out, "Usage: nudge", 12) == 0, "case %zu: %s", i, out);
        else
            cr_expect_str_eq(out, "nudge 0.1.0\n");
        free(out);
        free(err);
    }
}

Test(cli, unreachable_broker_exits_1_with_a_message, .timeout = 60)
{
    char bin[512], addr[64], url[96];
    cli_path(bin, sizeof bin);
    uint16_t port = dead_port();
    addr_of(port, addr, sizeof addr);
    snprintf(url, sizeof url, "ws://%s/", addr);
    const char *cases[][8] = {
        {bin, "pub", "--addr", addr, "t", NULL},
        {bin, "sub", "--url", url, "--timeout", "10", "t", NULL},
        {bin, "stats", "--addr", addr, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL, *err = NULL;
        int rc = run_cmd(cases[i], NULL, &out, &err, CMD_TIMEOUT_MS);
        cr_expect_eq(rc, 1, "%s exited %d: %s", cases[i][1], rc, err);
        cr_expect(strstr(err, "nudge: ") && strstr(err, "connect"), "%s: %s", cases[i][1], err);
        cr_expect_str_eq(out, "");
        free(out);
        free(err);
    }
}

Test(cli, sub_exits_1_when_the_timeout_ends_before_the_count, .timeout = 60)
{
    struct nudged d = {0};
    start(&d);
    char bin[512], url[64];
    cli_path(bin, sizeof bin);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", (unsigned)d.ws_port);
    const char *argv[] = {bin, "sub", "--url", url, "--count", "2", "--timeout", "0.5", "q", NULL};
    char *out = NULL, *err = NULL;
    int rc = run_cmd(argv, NULL, &out, &err, CMD_TIMEOUT_MS);
    cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "timed out after 0 of 2 hints"), "%s", err);
    free(out);
    free(err);
    const char *argv2[] = {bin, "sub", "--url", url, "--timeout", "0.5", "q", NULL};
    rc = run_cmd(argv2, NULL, &out, &err, CMD_TIMEOUT_MS);
    cr_assert_eq(rc, 0, "without --count a timeout is a normal end; exit %d: %s", rc, err);
    free(out);
    free(err);
    stop(&d);
}

Test(cli, sub_exits_0_on_sigint, .timeout = 60)
{
    struct nudged d = {0};
    start(&d);
    char bin[512], url[64];
    cli_path(bin, sizeof bin);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", (unsigned)d.ws_port);
    const char *argv[] = {bin, "sub", "--url", url, "i", NULL};
    struct proc p;
    proc_spawn(&p, argv);
    struct needle nd = {"nudge: subscribed i", 1};
    cr_assert(proc_pump(&p, err_has, &nd, 10000), "%s", text(&p.err));
    kill(p.pid, SIGINT);
    int rc = proc_wait(&p, 10000);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, text(&p.err));
    proc_free(&p);
    stop(&d);
}

Test(cli, sub_exits_1_when_the_broker_goes_away, .timeout = 60)
{
    struct nudged d = {0};
    start(&d);
    char bin[512], url[64];
    cli_path(bin, sizeof bin);
    snprintf(url, sizeof url, "ws://127.0.0.1:%u/", (unsigned)d.ws_port);
    const char *argv[] = {bin, "sub", "--url", url, "g", NULL};
    struct proc p;
    proc_spawn(&p, argv);
    struct needle nd = {"nudge: subscribed g", 1};
    cr_assert(proc_pump(&p, err_has, &nd, 10000), "%s", text(&p.err));
    stop(&d);
    int rc = proc_wait(&p, 10000);
    cr_assert_eq(rc, 1, "exit %d: %s", rc, text(&p.err));
    cr_assert(strstr(text(&p.err), "nudge: connection"), "%s", text(&p.err));
    proc_free(&p);
}
