/* harness: the real nudged under test, and blocking helpers around it.
 *
 * Design: the broker runs as a child process with stdout and stderr redirected to files in /tmp
 * (a file never fills up and blocks the broker the way an undrained pipe would); nudged_start()
 * polls the stdout file for the ready line. The child gets PR_SET_PDEATHSIG=SIGKILL so it dies
 * with the test process. Every wait is bounded; only our own child PID is ever signalled. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nudge.h"
#include "wsc.h"

static const int start_timeout_ms = 15000;
static const int stop_timeout_ms = 15000;

/* ---- time ---------------------------------------------------------------------------------- */

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* ---- binaries ------------------------------------------------------------------------------ */

const char *nudge_bin_dir(void)
{
    const char *e = getenv("NUDGE_BIN");
    return (e && *e) ? e : "build/asan";
}

int nudge_bin_path(const char *name, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s", nudge_bin_dir(), name);
    return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

/* ---- process control ----------------------------------------------------------------------- */

/* Reap d->pid without blocking. 1 when it has exited (status recorded), else 0. */
static int try_reap(struct nudged *d)
{
    if (d->reaped) return 1;
    int st;
    pid_t r = waitpid(d->pid, &st, WNOHANG);
    if (r == d->pid) {
        d->reaped = 1;
        d->wstatus = st;
        return 1;
    }
    if (r == -1 && errno == ECHILD) {
        d->reaped = 1;
        d->wstatus = -1;
        return 1;
    }
    return 0;
}

/* Wait up to timeout_ms for the child to exit. 1 when reaped. */
static int reap_within(struct nudged *d, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    while (!try_reap(d)) {
        if (now_ms() >= end) return 0;
        sleep_ms(5);
    }
    return 1;
}

static int status_of(int wstatus)
{
    if (wstatus == -1) return -1;
    if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
    return -1;
}

/* Parse "nudged ready pub=H:P ws=H:P admin=H:P[ http=H:P]" into d's ports. 0 or -1. */
static int parse_ready(struct nudged *d, const char *line)
{
    const char *keys[4] = {" pub=", " ws=", " admin=", " http="};
    uint16_t *ports[4] = {&d->pub_port, &d->ws_port, &d->admin_port, &d->http_port};
    if (strncmp(line, "nudged ready", 12) != 0) return -1;
    for (int i = 0; i < 4; i++) {
        const char *k = strstr(line, keys[i]);
        if (!k && i == 3) break; /* --http off */
        if (!k) return -1;
        k += strlen(keys[i]);
        const char *sp = k;
        while (*sp && *sp != ' ' && *sp != '\n')
            sp++;
        const char *colon = NULL;
        for (const char *q = k; q < sp; q++)
            if (*q == ':') colon = q;
        if (!colon) return -1;
        long v = strtol(colon + 1, NULL, 10);
        if (v <= 0 || v > 65535) return -1;
        *ports[i] = (uint16_t)v;
    }
    return 0;
}

/* Look for the ready line in the stdout file. 1 found, 0 not yet. */
static int scan_ready(struct nudged *d)
{
    FILE *f = fopen(d->out_path, "r");
    if (!f) return 0;
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        if (n == 0 || line[n - 1] != '\n') break; /* partial line: wait for the rest */
        line[n - 1] = '\0';
        if (strncmp(line, "nudged ready", 12) == 0 && parse_ready(d, line) == 0) {
            size_t cl = n - 1 < sizeof d->ready_line - 1 ? n - 1 : sizeof d->ready_line - 1;
            memcpy(d->ready_line, line, cl);
            d->ready_line[cl] = '\0';
            found = 1;
            break;
        }
    }
    fclose(f);
    return found;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void nudged_rm_dir(const char *dir)
{
    if (dir && dir[0]) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* The harness's own data directory goes with the broker. */
static void drop_data_dir(struct nudged *d)
{
    nudged_rm_dir(d->data_dir);
    d->data_dir[0] = '\0';
}

/* nofile > 0: the child's RLIMIT_NOFILE, soft and hard (nudged raises soft to hard at start). */
static int start_common(struct nudged *d, const char *binary, int with_defaults,
                        const char *const *extra_args, unsigned nofile)
{
    static unsigned counter;
    memset(d, 0, sizeof *d);
    signal(SIGPIPE, SIG_IGN);

    unsigned k = counter++;
    snprintf(d->out_path, sizeof d->out_path, "/tmp/nudge-test-%d-%u.out", (int)getpid(), k);
    snprintf(d->err_path, sizeof d->err_path, "/tmp/nudge-test-%d-%u.err", (int)getpid(), k);

    const char *argv[64];
    size_t n = 0;
    argv[n++] = binary;
    if (with_defaults) {
        argv[n++] = "--pub";
        argv[n++] = "127.0.0.1:0";
        argv[n++] = "--ws";
        argv[n++] = "127.0.0.1:0";
        argv[n++] = "--admin";
        argv[n++] = "127.0.0.1:0";
        argv[n++] = "--http";
        argv[n++] = "127.0.0.1:0";
    }
    /* make test runs every suite with NUDGE_WORKERS=1 and =4; a test's own --workers (later on
     * the command line) wins. */
    const char *workers = getenv("NUDGE_WORKERS");
    if (with_defaults && workers && *workers) {
        argv[n++] = "--workers";
        argv[n++] = workers;
    }
    int own_dir = 1, own_window = 1;
    for (size_t i = 0; extra_args && extra_args[i]; i++) {
        if (!strcmp(extra_args[i], "--data-dir") || !strcmp(extra_args[i], "--memory")) own_dir = 0;
        if (!strcmp(extra_args[i], "--drain-window")) own_window = 0;
    }
    if (own_window) { /* a stop closes the WebSockets at once unless the test asks otherwise */
        argv[n++] = "--drain-window";
        argv[n++] = "0";
    }
    if (own_dir) {
        /* Every broker gets a fresh data directory of its own (the default, nudge-data, would be
         * shared by every test and locked by the first). */
        snprintf(d->data_dir, sizeof d->data_dir, "/tmp/nudge-test-%d-%u.data", (int)getpid(), k);
        nudged_rm_dir(d->data_dir);
        argv[n++] = "--data-dir";
        argv[n++] = d->data_dir;
        const char *fsync_mode = getenv("NUDGE_FSYNC");
        if (fsync_mode && *fsync_mode) {
            argv[n++] = "--fsync";
            argv[n++] = fsync_mode;
        }
    }
    for (size_t i = 0; extra_args && extra_args[i]; i++) {
        if (n >= 63) return -1;
        argv[n++] = extra_args[i];
    }
    argv[n] = NULL;

    int outfd = open(d->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int errfd = open(d->err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (outfd < 0 || errfd < 0) {
        if (outfd >= 0) close(outfd);
        if (errfd >= 0) close(errfd);
        return -1;
    }
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(outfd);
        close(errfd);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        signal(SIGPIPE, SIG_DFL);
        dup2(outfd, 1);
        dup2(errfd, 2);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        /* The broker must not hold the test runner's descriptors (Criterion's IPC sockets, other
         * tests' sockets): only 0, 1 and 2 cross the exec. */
        close_range(3, ~0U, 0);
        if (nofile) {
            struct rlimit rl = {.rlim_cur = nofile, .rlim_max = nofile};
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0) _exit(126);
        }
        execv(binary, (char *const *)argv);
        dprintf(2, "harness: exec %s: %s\n", binary, strerror(errno));
        _exit(127);
    }
    close(outfd);
    close(errfd);
    d->pid = pid;

    int64_t end = now_ms() + start_timeout_ms;
    while (now_ms() < end) {
        if (scan_ready(d)) return 0;
        if (try_reap(d)) {
            fprintf(stderr, "harness: %s exited before ready (status %d)\n", binary,
                    status_of(d->wstatus));
            nudged_dump_log(d, 4000);
            d->pid = 0;
            drop_data_dir(d);
            return -1;
        }
        sleep_ms(10);
    }
    fprintf(stderr, "harness: %s not ready within %d ms\n", binary, start_timeout_ms);
    nudged_dump_log(d, 4000);
    nudged_kill(d);
    return -1;
}

int nudged_start_ex(struct nudged *d, const char *binary, int with_defaults,
                    const char *const *extra_args)
{
    return start_common(d, binary, with_defaults, extra_args, 0);
}

int nudged_start(struct nudged *d, const char *const *extra_args)
{
    return nudged_start_nofile(d, extra_args, 0);
}

int nudged_start_nofile(struct nudged *d, const char *const *extra_args, unsigned nofile)
{
    char path[512];
    if (nudge_bin_path("nudged", path, sizeof path) != 0) return -1;
    return start_common(d, path, 1, extra_args, nofile);
}

int64_t nudged_cpu_ms(const struct nudged *d)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)d->pid);
    FILE *f = d->pid > 0 ? fopen(path, "r") : NULL;
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* Fields after "(comm)": state is field 3, utime 14, stime 15 (proc(5)). */
    char *p = strrchr(buf, ')');
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    long hz = sysconf(_SC_CLK_TCK);
    return (int64_t)((ut + st) * 1000ULL / (unsigned long long)(hz > 0 ? hz : 100));
}

size_t nudged_log_count(const struct nudged *d, const char *needle, size_t *bytes)
{
    FILE *f = fopen(d->err_path, "r");
    size_t hits = 0, total = 0;
    if (f) {
        char line[2048];
        while (fgets(line, sizeof line, f)) {
            total += strlen(line);
            if (strstr(line, needle)) hits++;
        }
        fclose(f);
    }
    if (bytes) *bytes = total;
    return hits;
}

int nudged_wait_log(const struct nudged *d, const char *needle, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        if (nudged_log_count(d, needle, NULL) > 0) return 1;
        if (now_ms() >= end) return 0;
        sleep_ms(20);
    }
}

int nudged_stop(struct nudged *d)
{
    if (d->pid <= 0) return -1;
    if (!try_reap(d)) kill(d->pid, SIGTERM);
    if (!reap_within(d, stop_timeout_ms)) {
        fprintf(stderr, "harness: nudged %d did not exit within %d ms of SIGTERM; SIGKILL\n",
                (int)d->pid, stop_timeout_ms);
        kill(d->pid, SIGKILL);
        if (!reap_within(d, 5000)) return -1;
        d->pid = 0;
        nudged_dump_log(d, 4000);
        return -1;
    }
    d->pid = 0;
    drop_data_dir(d);
    int st = status_of(d->wstatus);
    if (st != 0) {
        fprintf(stderr, "harness: nudged exited with status %d; its stderr ends with:\n", st);
        nudged_dump_log(d, 8000);
    } else {
        unlink(d->out_path);
        unlink(d->err_path);
    }
    return st;
}

int nudged_signal(struct nudged *d, int sig)
{
    if (d->pid <= 0 || try_reap(d)) return -1;
    return kill(d->pid, sig) == 0 ? 0 : -1;
}

int nudged_wait(struct nudged *d, int timeout_ms)
{
    if (d->pid <= 0) return -1;
    if (!reap_within(d, timeout_ms)) return -2;
    d->pid = 0;
    drop_data_dir(d);
    int st = status_of(d->wstatus);
    if (st != 0) {
        fprintf(stderr, "harness: nudged exited with status %d; its stderr ends with:\n", st);
        nudged_dump_log(d, 8000);
    } else {
        unlink(d->out_path);
        unlink(d->err_path);
    }
    return st;
}

int nudged_kill(struct nudged *d)
{
    if (d->pid <= 0) return -1;
    if (!try_reap(d)) kill(d->pid, SIGKILL);
    reap_within(d, 5000);
    d->pid = 0;
    drop_data_dir(d);
    unlink(d->out_path);
    unlink(d->err_path);
    return 0;
}

int nudged_alive(struct nudged *d)
{
    if (d->pid <= 0) return 0;
    return try_reap(d) ? 0 : 1;
}

void nudged_dump_log(const struct nudged *d, size_t max_bytes)
{
    FILE *f = fopen(d->err_path, "r");
    if (!f) return;
    struct stat stt;
    if (fstat(fileno(f), &stt) == 0 && (size_t)stt.st_size > max_bytes)
        fseek(f, (long)((size_t)stt.st_size - max_bytes), SEEK_SET);
    char buf[4096];
    size_t r;
    fprintf(stderr, "----- %s -----\n", d->err_path);
    while ((r = fread(buf, 1, sizeof buf, f)) > 0)
        fwrite(buf, 1, r, stderr);
    fprintf(stderr, "----- end -----\n");
    fclose(f);
}

/* ---- end-to-end probe ---------------------------------------------------------------------- */

int nudged_probe(const struct nudged *d, int timeout_ms, char *why, size_t cap)
{
    static unsigned probe_n;
    char topic[64], addr[64], scratch[8];
    struct wsc w;
    nudge_client_t *c = NULL;
    int rc = -1;
    if (!why) {
        why = scratch;
        cap = sizeof scratch;
    }
    snprintf(why, cap, "ok");
    snprintf(topic, sizeof topic, "probe/%d/%u", (int)getpid(), probe_n++);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)d->pub_port);

    int wrc = wsc_open(&w, d->ws_port, SUB_PROTO_JSON);
    if (wrc != WSC_OK) {
        snprintf(why, cap, "probe: WebSocket connect+hello failed (%d)", wrc);
        return -1;
    }
    const char *ts[1] = {topic};
    uint64_t sseq = 99;
    wrc = wsc_subscribe(&w, ts, 1, &sseq);
    if (wrc != WSC_OK || sseq != 0) {
        snprintf(why, cap, "probe: subscribe failed (%d, error %d, seq %llu)", wrc,
                 (int)w.last_error, (unsigned long long)sseq);
        goto out;
    }
    struct nudge_opts o = {.client_name = "nudge-probe", .timeout_ms = timeout_ms};
    int nrc = nudge_connect(addr, &o, &c);
    if (nrc != NUDGE_OK) {
        snprintf(why, cap, "probe: nudge_connect failed (%s)", nudge_strerror(nrc));
        goto out;
    }
    uint64_t seq = 0;
    nrc = nudge_publish(c, ts, 1, "{\"probe\":true}", &seq);
    if (nrc != NUDGE_OK || seq != 1) {
        snprintf(why, cap, "probe: publish failed (%s: %s, seq %llu)", nudge_strerror(nrc),
                 nudge_last_error(c), (unsigned long long)seq);
        goto out;
    }
    struct sub_msg m;
    wrc = wsc_recv_msg(&w, &m, timeout_ms);
    if (wrc != WSC_OK) {
        snprintf(why, cap, "probe: no hint within %d ms (%d)", timeout_ms, wrc);
        goto out;
    }
    int good = m.type == SUB_HINT && wstr_eq(m.topic, topic) && m.seq == 1 && m.data != NULL;
    snprintf(why, cap, "probe: got message type %d seq %llu instead of hint seq 1", (int)m.type,
             (unsigned long long)m.seq);
    sub_msg_clear(&m);
    if (good) {
        snprintf(why, cap, "ok");
        rc = 0;
    }
out:
    nudge_close(c);
    wsc_close(&w, 1000);
    return rc;
}

/* ---- sockets ------------------------------------------------------------------------------- */

int tcp_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc;
    do {
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    } while (rc == -1 && errno == EINTR);
    if (rc != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

int send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    int64_t end = now_ms() + 30000;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                if (now_ms() > end) return -1;
                struct pollfd pfd = {fd, POLLOUT, 0};
                poll(&pfd, 1, 100);
                continue;
            }
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

int wait_closed(int fd, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    char buf[8192];
    for (;;) {
        int64_t left = end - now_ms();
        if (left <= 0) return 0;
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return 0;
        ssize_t got = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (got == 0) return 1;
        if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return 1;
    }
}

/* ---- HTTP ---------------------------------------------------------------------------------- */

char *http_raw(uint16_t port, const void *req, size_t len, size_t *len_out, int timeout_ms)
{
    int fd = tcp_connect(port);
    if (fd < 0) return NULL;
    if (send_all(fd, req, len) != 0) {
        close(fd);
        return NULL;
    }
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return NULL;
    }
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        int64_t left = end - now_ms();
        if (left <= 0) break;
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (cap - n < 4096) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) break;
            buf = nb;
            cap *= 2;
        }
        ssize_t got = recv(fd, buf + n, cap - n - 1, 0);
        if (got <= 0) {
            if (got < 0 && errno == EINTR) continue;
            break;
        }
        n += (size_t)got;
    }
    close(fd);
    buf[n] = '\0';
    if (len_out) *len_out = n;
    return buf;
}

/* Decode a chunked body in place. Returns the new length. */
static size_t dechunk(char *b, size_t n)
{
    size_t in = 0, out = 0;
    while (in < n) {
        char *endp;
        unsigned long sz = strtoul(b + in, &endp, 16);
        char *crlf = strstr(b + in, "\r\n");
        if (!crlf || endp == b + in) break;
        in = (size_t)(crlf - b) + 2;
        if (sz == 0 || in + sz > n) break;
        memmove(b + out, b + in, sz);
        out += sz;
        in += sz + 2;
    }
    b[out] = '\0';
    return out;
}

const char *harness_admin_token;

char *http_get(uint16_t port, const char *path, int *status)
{
    char req[1024];
    const char *t = harness_admin_token;
    int rl = snprintf(
        req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n%s%s%sConnection: close\r\n\r\n",
        path, (unsigned)port, t ? "Authorization: Bearer " : "", t ? t : "", t ? "\r\n" : "");
    if (status) *status = -1;
    if (rl < 0 || (size_t)rl >= sizeof req) return NULL;
    size_t n;
    char *resp = http_raw(port, req, (size_t)rl, &n, 10000);
    if (!resp) return NULL;
    int st = -1;
    if (sscanf(resp, "HTTP/1.%*d %d", &st) != 1) {
        free(resp);
        return NULL;
    }
    char *hdr_end = strstr(resp, "\r\n\r\n");
    if (!hdr_end) {
        free(resp);
        return NULL;
    }
    *hdr_end = '\0';
    int chunked = 0;
    for (char *h = resp; *h; h++) {
        if (strncasecmp(h, "\ntransfer-encoding:", 19) == 0 && strstr(h, "chunked")) chunked = 1;
    }
    char *body = hdr_end + 4;
    size_t blen = n - (size_t)(body - resp);
    memmove(resp, body, blen + 1);
    if (chunked) dechunk(resp, blen);
    if (status) *status = st;
    return resp;
}

json_t *nudged_stats(const struct nudged *d)
{
    int st;
    char *body = http_get(d->admin_port, "/stats", &st);
    if (!body) return NULL;
    json_t *j = NULL;
    if (st == 200) j = json_loads(body, 0, NULL);
    free(body);
    return j;
}

int64_t stats_int(const json_t *stats, const char *path)
{
    const json_t *cur = stats;
    char key[128];
    const char *p = path;
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t kl = dot ? (size_t)(dot - p) : strlen(p);
        if (kl >= sizeof key) return -1;
        memcpy(key, p, kl);
        key[kl] = '\0';
        cur = json_object_get(cur, key);
        p += kl + (dot ? 1 : 0);
    }
    if (!cur) return -1;
    if (json_is_integer(cur)) return (int64_t)json_integer_value(cur);
    if (json_is_real(cur)) return (int64_t)json_real_value(cur);
    return -1;
}

int64_t nudged_wait_stat(const struct nudged *d, const char *path, int64_t want, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms, v = -1;
    for (;;) {
        json_t *j = nudged_stats(d);
        if (j) {
            v = stats_int(j, path);
            json_decref(j);
        }
        if (v == want || now_ms() >= end) return v;
        sleep_ms(20);
    }
}

/* ---- raw publisher ------------------------------------------------------------------------- */

int pubraw_connect(struct pubraw *p, uint16_t port, int do_hello)
{
    memset(p, 0, sizeof *p);
    wire_limits_default(&p->lim);
    p->lim.max_frame = WIRE_FRAME_MAX;
    p->lim.max_topics = WIRE_TOPICS_MAX;
    p->lim.max_data = WIRE_DATA_MAX;
    p->lim.max_topic = WIRE_TOPIC_LEN_MAX;
    p->fd = tcp_connect(port);
    if (p->fd < 0) return PUBRAW_EIO;
    if (!do_hello) return PUBRAW_OK;
    struct wire_buf b = {0};
    if (pub_encode_hello(&b, WIRE_VERSION, "nudge-tests") != 0 ||
        pubraw_send(p, b.data, b.len) != 0) {
        wire_buf_free(&b);
        pubraw_close(p, 0);
        return PUBRAW_EIO;
    }
    wire_buf_free(&b);
    struct pub_msg m;
    int rc = pubraw_recv(p, &m, 5000);
    if (rc != PUBRAW_OK) {
        pubraw_close(p, 0);
        return rc;
    }
    int ok = m.type == PUB_WELCOME;
    pub_msg_clear(&m);
    if (!ok) {
        pubraw_close(p, 0);
        return PUBRAW_EPROTO;
    }
    return PUBRAW_OK;
}

int pubraw_send(struct pubraw *p, const void *bytes, size_t n)
{
    return send_all(p->fd, bytes, n) == 0 ? PUBRAW_OK : PUBRAW_EIO;
}

int pubraw_publish(struct pubraw *p, uint64_t id, const char *const *topics, uint32_t n,
                   const uint8_t *data, size_t data_len)
{
    struct wire_str ts[WIRE_TOPICS_MAX];
    if (n > WIRE_TOPICS_MAX) return PUBRAW_EIO;
    for (uint32_t i = 0; i < n; i++) {
        ts[i].p = topics[i];
        ts[i].len = (uint32_t)strlen(topics[i]);
    }
    struct wire_buf b = {0};
    int rc = pub_encode_publish(&b, id, ts, n, data, data_len, NULL);
    if (rc == 0)
        rc = pubraw_send(p, b.data, b.len);
    else
        rc = PUBRAW_EIO;
    wire_buf_free(&b);
    return rc;
}

int pubraw_recv(struct pubraw *p, struct pub_msg *out, int timeout_ms)
{
    memset(out, 0, sizeof *out);
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        const uint8_t *body;
        uint32_t blen;
        size_t used;
        int rc = pub_frame_next(p->in.data, p->in.len, p->lim.max_frame, &body, &blen, &used);
        if (rc == WIRE_OK) {
            free(p->body);
            p->body = malloc(blen ? blen : 1);
            if (!p->body) return PUBRAW_EIO;
            memcpy(p->body, body, blen);
            p->body_len = blen;
            memmove(p->in.data, p->in.data + used, p->in.len - used);
            p->in.len -= used;
            if (pub_decode(p->body, p->body_len, &p->lim, out) != 0) {
                memset(out, 0, sizeof *out);
                return PUBRAW_EPROTO;
            }
            return PUBRAW_OK;
        }
        if (rc != WIRE_EAGAIN) return PUBRAW_EPROTO;
        int64_t left = end - now_ms();
        if (left < 0) left = 0;
        struct pollfd pfd = {p->fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return PUBRAW_TIMEOUT;
        if (r < 0) return PUBRAW_EIO;
        if (wire_buf_reserve(&p->in, 65536) != 0) return PUBRAW_EIO;
        ssize_t got = recv(p->fd, p->in.data + p->in.len, 65536, 0);
        if (got == 0) return PUBRAW_EOF;
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return errno == ECONNRESET ? PUBRAW_EOF : PUBRAW_EIO;
        }
        p->in.len += (size_t)got;
    }
}

void pubraw_close(struct pubraw *p, int abort)
{
    if (p->fd >= 0) {
        if (abort) {
            struct linger lg = {1, 0};
            setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(p->fd);
    }
    p->fd = -1;
    wire_buf_free(&p->in);
    free(p->body);
    p->body = NULL;
    p->body_len = 0;
}

/* ---- running a command --------------------------------------------------------------------- */

int run_cmd(const char *const *argv, const char *stdin_text, char **out, char **err, int timeout_ms)
{
    int inp[2], outp[2], errp[2];
    if (out) *out = NULL;
    if (err) *err = NULL;
    signal(SIGPIPE, SIG_IGN);
    if (pipe2(inp, O_CLOEXEC) != 0) return -1;
    if (pipe2(outp, O_CLOEXEC) != 0) {
        close(inp[0]);
        close(inp[1]);
        return -1;
    }
    if (pipe2(errp, O_CLOEXEC) != 0) {
        close(inp[0]);
        close(inp[1]);
        close(outp[0]);
        close(outp[1]);
        return -1;
    }
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(inp[0]);
        close(inp[1]);
        close(outp[0]);
        close(outp[1]);
        close(errp[0]);
        close(errp[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        signal(SIGPIPE, SIG_DFL);
        dup2(inp[0], 0);
        dup2(outp[1], 1);
        dup2(errp[1], 2);
        close_range(3, ~0U, 0);
        execv(argv[0], (char *const *)argv);
        dprintf(2, "run_cmd: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(inp[0]);
    close(outp[1]);
    close(errp[1]);
    if (stdin_text) (void)!write(inp[1], stdin_text, strlen(stdin_text)); /* small inputs only */
    close(inp[1]);

    struct wire_buf bufs[2] = {{0}, {0}};
    int fds[2] = {outp[0], errp[0]};
    int open_n = 2, timed_out = 0;
    int64_t end = now_ms() + timeout_ms;
    while (open_n > 0) {
        int64_t left = end - now_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd pfd[2];
        nfds_t np = 0;
        int which[2];
        for (int i = 0; i < 2; i++)
            if (fds[i] >= 0) {
                pfd[np].fd = fds[i];
                pfd[np].events = POLLIN;
                pfd[np].revents = 0;
                which[np++] = i;
            }
        int r = poll(pfd, np, (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            timed_out = r == 0;
            break;
        }
        for (nfds_t k = 0; k < np; k++) {
            if (!pfd[k].revents) continue;
            int i = which[k];
            if (wire_buf_reserve(&bufs[i], 4097) != 0) {
                timed_out = 1;
                break;
            }
            ssize_t got = read(fds[i], bufs[i].data + bufs[i].len, 4096);
            if (got <= 0) {
                if (got < 0 && errno == EINTR) continue;
                close(fds[i]);
                fds[i] = -1;
                open_n--;
            } else {
                bufs[i].len += (size_t)got;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0) close(fds[i]);
    int st = -1;
    if (timed_out) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        st = -1;
    } else {
        int64_t wend = now_ms() + 10000;
        for (;;) {
            pid_t r = waitpid(pid, &st, WNOHANG);
            if (r == pid) {
                st = status_of(st);
                break;
            }
            if (now_ms() > wend) {
                kill(pid, SIGKILL);
                waitpid(pid, &st, 0);
                st = -1;
                break;
            }
            sleep_ms(5);
        }
    }
    char **dst[2] = {out, err};
    for (int i = 0; i < 2; i++) {
        if (dst[i]) {
            if (wire_buf_reserve(&bufs[i], 1) == 0) {
                bufs[i].data[bufs[i].len] = '\0';
                *dst[i] = (char *)bufs[i].data;
                continue;
            }
        }
        wire_buf_free(&bufs[i]);
    }
    return st;
}
