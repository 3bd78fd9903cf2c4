/* harness: start and stop the real nudged for integration tests, and small blocking helpers
 * around it (HTTP GET, /stats, raw publisher sockets, running a CLI binary).
 *
 * Every wait here is bounded. Only PIDs the harness started are signalled. A broker started by
 * nudged_start() gets PR_SET_PDEATHSIG=SIGKILL, so a test process that dies (Criterion timeout,
 * crash) does not leave brokers behind. nudged_start() also ignores SIGPIPE in the test process:
 * tests write to sockets the broker may have closed, and expect EPIPE, not death.
 *
 * The broker's stdout goes to a file (/tmp/nudge-test-*.out), scanned for the ready line; its
 * stderr goes to /tmp/nudge-test-*.err. When nudged_stop() sees a non-zero exit (an ASan leak
 * report, a crash), it copies the tail of that log to the test's stderr.
 *
 * The API is shared with other test files (tests/integration/test_cli.c): keep it stable. */
#ifndef NUDGE_TEST_HARNESS_H
#define NUDGE_TEST_HARNESS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pub.h"

/* One broker process. Zero-initialise, then nudged_start(). */
struct nudged {
    pid_t pid; /* 0 when not running */
    uint16_t pub_port, ws_port, admin_port;
    uint16_t http_port;   /* 0 when the broker runs with --http off */
    char ready_line[256]; /* "nudged ready pub=127.0.0.1:P1 ws=127.0.0.1:P2 admin=127.0.0.1:P3
                             http=127.0.0.1:P4" */
    char out_path[128];   /* broker stdout */
    char err_path[128];   /* broker stderr */
    char data_dir[128];   /* the --data-dir the harness made for it ("" when the test gave
                             --data-dir or --memory itself); removed when it is stopped */
    int reaped;           /* 1 once waitpid() collected it */
    int wstatus;          /* raw waitpid() status once reaped */
};

/* Remove a data directory and everything in it (test cleanup). */
void nudged_rm_dir(const char *dir);

/* Directory holding nudged/nudge: $NUDGE_BIN, else "build/asan". Static storage. */
const char *nudge_bin_dir(void);
/* Write "<nudge_bin_dir()>/<name>" into buf. Returns 0, or -1 when it does not fit. */
int nudge_bin_path(const char *name, char *buf, size_t cap);

/* Fork/exec <bin>/nudged --pub 127.0.0.1:0 --ws 127.0.0.1:0 --admin 127.0.0.1:0 --http 127.0.0.1:0
 * [--workers $NUDGE_WORKERS] [--drain-window 0, unless extra_args give --drain-window]
 * [--data-dir /tmp/nudge-test-PID-K.data --fsync $NUDGE_FSYNC]
 * [extra_args] (the data directory only when extra_args give neither --data-dir nor --memory;
 * it is removed when the broker is stopped, killed or waited for)
 * (extra_args: NULL-terminated array, or NULL). Waits up to 15 s for the ready line and parses
 * the four ports. Returns 0, or -1 (the child, if any, is killed and reaped). */
int nudged_start(struct nudged *d, const char *const *extra_args);
/* Same, with an explicit binary path (e.g. "build/nudged") and no default listen arguments
 * when with_defaults is 0 (then extra_args must give --pub/--ws/--admin). */
int nudged_start_ex(struct nudged *d, const char *binary, int with_defaults,
                    const char *const *extra_args);
/* nudged_start() with RLIMIT_NOFILE (soft and hard) set to nofile in the child before exec, so
 * tests can run the broker out of descriptors; nofile 0 = inherit. */
int nudged_start_nofile(struct nudged *d, const char *const *extra_args, unsigned nofile);
/* CPU time (user + system) the broker has used so far, in ms, from /proc/<pid>/stat; -1 when
 * it cannot be read. */
int64_t nudged_cpu_ms(const struct nudged *d);
/* Lines of the broker's stderr log containing needle; *bytes (may be NULL) gets the log's size. */
size_t nudged_log_count(const struct nudged *d, const char *needle, size_t *bytes);
/* Wait up to timeout_ms for a stderr line containing needle. 1 when seen, else 0. */
int nudged_wait_log(const struct nudged *d, const char *needle, int timeout_ms);
/* SIGTERM, wait up to 15 s (then SIGKILL and wait). Returns the exit status (0..255), 128+signal
 * when it died of a signal, or -1 when it was not running / could not be reaped. */
int nudged_stop(struct nudged *d);
/* Send sig to the broker (our child only). Returns 0, or -1 when it is not running. */
int nudged_signal(struct nudged *d, int sig);
/* Wait up to timeout_ms for the broker to exit, without signalling it. Returns the exit status as
 * nudged_stop() does, or -2 on timeout (still running), -1 when it was not running. */
int nudged_wait(struct nudged *d, int timeout_ms);
/* SIGKILL and reap. Returns 0, or -1 when it was not running. */
int nudged_kill(struct nudged *d);
/* 1 while the process exists and has not exited, else 0 (reaps it when it has exited). */
int nudged_alive(struct nudged *d);
/* Copy the last max_bytes of the broker's stderr log to our stderr (debugging aid). */
void nudged_dump_log(const struct nudged *d, size_t max_bytes);

/* Prove the broker serves fresh clients end to end: a new WebSocket subscriber (JSON) says
 * hello and subscribes to a fresh topic, a new libnudge publisher publishes one hint with data
 * to it, the ack says seq 1 and the hint arrives with seq 1; each step bounded by timeout_ms.
 * Returns 0, or -1 with the failing step described in why (may be NULL). */
int nudged_probe(const struct nudged *d, int timeout_ms, char *why, size_t cap);

/* Milliseconds from a monotonic clock. */
int64_t now_ms(void);
/* Sleep ms milliseconds. */
void sleep_ms(int ms);

/* Blocking TCP connect to 127.0.0.1:port (TCP_NODELAY). Returns the fd or -1. */
int tcp_connect(uint16_t port);
/* Write all n bytes (MSG_NOSIGNAL). Returns 0 or -1. */
int send_all(int fd, const void *p, size_t n);
/* Wait up to timeout_ms for the peer to close fd (EOF or ECONNRESET), discarding any bytes.
 * Returns 1 when closed, 0 on timeout. */
int wait_closed(int fd, int timeout_ms);

/* When set, http_get (and so nudged_stats) sends it as "Authorization: Bearer" (for brokers
 * started with --admin-token-file). Not owned. */
extern const char *harness_admin_token;
/* GET http://127.0.0.1:port<path> with "Connection: close"; waits up to 10 s. Returns the body
 * (malloc'd, NUL-terminated, caller frees; chunked bodies are decoded) and the status in
 * *status (may be NULL), or NULL on I/O failure (status -1). */
char *http_get(uint16_t port, const char *path, int *status);
/* Send raw request bytes and read the whole response until EOF or timeout_ms. Returns the full
 * response (headers + body, malloc'd, NUL-terminated; *len_out its length, may be NULL), or
 * NULL when nothing could be sent. */
char *http_raw(uint16_t port, const void *req, size_t len, size_t *len_out, int timeout_ms);

/* GET /stats on the admin port, parsed. Caller owns the result (json_decref). NULL on failure. */
json_t *nudged_stats(const struct nudged *d);
/* Integer at a dotted path ("connections.ws", "publishes") of a stats object; floats are
 * truncated. Returns -1 when missing or not a number. */
int64_t stats_int(const json_t *stats, const char *path);
/* Fetch /stats until stats_int(path) == want or timeout_ms passes. Returns the last value seen
 * (-1 when stats could not be fetched). */
int64_t nudged_wait_stat(const struct nudged *d, const char *path, int64_t want, int timeout_ms);

/* A raw publisher connection: a plain socket speaking the publisher framing, for tests that
 * must send malformed bytes. */
struct pubraw {
    int fd;
    struct wire_buf in; /* bytes received, not yet consumed */
    uint8_t *body;      /* body of the last frame returned by pubraw_recv (owned here) */
    size_t body_len;
    struct wire_limits lim;
};
enum pubraw_rc {
    PUBRAW_OK = 0,
    PUBRAW_TIMEOUT = -1,
    PUBRAW_EOF = -2,    /* peer closed (or reset) the connection */
    PUBRAW_EPROTO = -3, /* bytes from the broker did not decode */
    PUBRAW_EIO = -4,
};
/* Connect; with do_hello, send hello and wait up to 5 s for welcome. Returns 0 or a pubraw_rc. */
int pubraw_connect(struct pubraw *p, uint16_t port, int do_hello);
/* Write raw bytes. Returns 0 or PUBRAW_EIO. */
int pubraw_send(struct pubraw *p, const void *bytes, size_t n);
/* Encode and send one publish to topics[0..n) (data: raw msgpack or NULL). */
int pubraw_publish(struct pubraw *p, uint64_t id, const char *const *topics, uint32_t n,
                   const uint8_t *data, size_t data_len);
/* Receive and decode one frame. *out is valid until the next pubraw_recv/pubraw_close; the
 * caller calls pub_msg_clear(out) when done. */
int pubraw_recv(struct pubraw *p, struct pub_msg *out, int timeout_ms);
/* Close the socket (abortive with RST when abort is 1) and free buffers. */
void pubraw_close(struct pubraw *p, int abort);

/* Run argv[0] (a path) with argv, optional stdin text, capturing stdout/stderr (malloc'd,
 * NUL-terminated; pass NULL to discard). Kills it after timeout_ms. Returns its exit status,
 * 128+signal, or -1 when it could not run / timed out. */
int run_cmd(const char *const *argv, const char *stdin_text, char **out, char **err,
            int timeout_ms);

#endif
