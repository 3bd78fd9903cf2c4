/* nudged's own command line and process contract: --help/--version, flag errors (exit 2), a
 * listener that cannot bind (exit 1, naming the flag), and --max-conns refusing connections past
 * the limit while /stats still answers, and a SIGTERM during start-up (a clean stop, exit 0). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "nudge.h"
#include "wsc.h"

#define RUN_MS 15000

static const char *nudged_path(char *buf, size_t cap)
{
    cr_assert_eq(nudge_bin_path("nudged", buf, cap), 0);
    return buf;
}

Test(nudged, help_lists_every_flag_and_exits_0)
{
    char bin[512];
    const char *argv[] = {nudged_path(bin, sizeof bin), "--help", NULL};
    char *out = NULL, *err = NULL;
    cr_assert_eq(run_cmd(argv, NULL, &out, &err, RUN_MS), 0, "%s", err);
    static const char *const flags[] = {
        "--pub",
        "--ws",
        "--admin",
        "--http",
        "--http-max-body",
        "--http-timeout",
        "--max-frame",
        "--max-topic",
        "--max-data",
        "--max-topics",
        "--max-subs",
        "--max-queue",
        "--max-conns",
        "--hist-per-topic",
        "--hist-bytes",
        "--hist-age",
        "--coalesce",
        "--log-level",
        "--version",
        "--hello-timeout",
        "--pub-idle",
        "--data-dir",
        "--memory",
        "--fsync",
        "--fsync-ms",
        "--disk-max",
        "--disk-segment",
        "--horizon",
        "--max-positions",
        "--max-conns-per-ip",
        "--allow-origin",
        "--max-sub-bytes",
        "--replay-rate",
        "--sub-rate",
        "--msg-rate",
        "--max-pattern-segments",
        "--max-pattern-stars",
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        cr_expect(strstr(out, flags[i]), "--help does not mention %s", flags[i]);
    free(out);
    free(err);
    const char *vargv[] = {bin, "--version", NULL};
    cr_assert_eq(run_cmd(vargv, NULL, &out, &err, RUN_MS), 0);
    cr_expect(strncmp(out, "nudged ", 7) == 0, "version line: %s", out);
    free(out);
    free(err);
}

Test(nudged, bad_flags_exit_2_with_a_message)
{
    char bin[512];
    nudged_path(bin, sizeof bin);
    const char *cases[][6] = {
        {bin, "--fsync", "sometimes", NULL},
        {bin, "--disk-segment", "65537", NULL},
        {bin, "--disk-max", "100000", NULL}, /* less than two segments */
        {bin, "--max-data", "1048576", "--disk-segment", "65536", NULL},
        {bin, "--horizon", "0", NULL},
        {bin, "--no-such-flag", NULL},
        {bin, "--max-frame", "12k", NULL},
        {bin, "--max-queue", "-5", NULL},
        {bin, "--pub", "nocolon", NULL},
        {bin, "--ws", "127.0.0.1:99999", NULL},
        {bin, "--coalesce", "pro*=100", NULL},
        {bin, "--coalesce", "hot:*=0", NULL},
        {bin, "--hist-bytes", "10", NULL},
        {bin, "--log-level", "loud", NULL},
        {bin, "--max-subs", NULL},
        {bin, "--hello-timeout", "0", NULL},
        {bin, "--pub-idle", "1s", NULL},
        {bin, "--http", "localhost", NULL},
        {bin, "--http-max-body", "10", NULL},
        {bin, "--http-timeout", "0", NULL},
        {bin, "--tls-listeners", "ws,smtp", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL, *err = NULL;
        int rc = run_cmd(cases[i], NULL, &out, &err, RUN_MS);
        cr_expect_eq(rc, 2, "%s %s: exit %d", cases[i][1], cases[i][2] ? cases[i][2] : "", rc);
        cr_expect(strncmp(err, "nudged: ", 8) == 0, "%s: stderr '%s'", cases[i][1], err);
        cr_expect_str_eq(out, "", "%s: nothing on stdout (no ready line)", cases[i][1]);
        free(out);
        free(err);
    }
}

Test(nudged, a_port_already_in_use_exits_1_naming_the_flag)
{
    struct nudged d;
    cr_assert_eq(nudged_start(&d, NULL), 0);
    char bin[512], taken[32];
    nudged_path(bin, sizeof bin);
    snprintf(taken, sizeof taken, "127.0.0.1:%u", (unsigned)d.pub_port);
    /* A second broker on a busy port must fail loudly, not share it (no SO_REUSEPORT). */
    const char *argv[] = {bin,           "--pub",  taken, "--ws",     "127.0.0.1:0", "--admin",
                          "127.0.0.1:0", "--http", "off", "--memory", NULL};
    char *out = NULL, *err = NULL;
    int rc = run_cmd(argv, NULL, &out, &err, RUN_MS);
    cr_expect_eq(rc, 1, "exit %d: %s", rc, err);
    cr_expect(strstr(err, "--pub") && strstr(err, taken), "the message names the flag: %s", err);
    cr_expect_str_eq(out, "", "no ready line");
    free(out);
    free(err);
    const char *bad[] = {bin,           "--pub",    "127.0.0.1:0", "--ws",
                         "127.0.0.1:0", "--admin",  "256.0.0.1:1", "--http",
                         "off",         "--memory", NULL};
    rc = run_cmd(bad, NULL, &out, &err, RUN_MS);
    cr_expect_eq(rc, 1, "unresolvable admin address: exit %d: %s", rc, err);
    cr_expect(strstr(err, "--admin"), "the message names the flag: %s", err);
    free(out);
    free(err);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(nudged, max_conns_refuses_connections_past_the_limit_and_stats_still_answer, .timeout = 60)
{
    struct nudged d;
    const char *args[] = {"--max-conns", "3", NULL};
    cr_assert_eq(nudged_start(&d, args), 0);
    struct wsc w[4];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(wsc_open(&w[i], d.ws_port, NULL), WSC_OK, "ws %d", i);
    cr_expect_neq(wsc_open(&w[3], d.ws_port, NULL), WSC_OK, "a 4th WebSocket was accepted");
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)d.pub_port);
    struct nudge_opts o = {.timeout_ms = 3000};
    nudge_client_t *c = NULL;
    cr_expect_neq(nudge_connect(addr, &o, &c), NUDGE_OK, "a publisher was accepted past the limit");
    nudge_close(c);
    /* The operator's view still works while the broker is full. */
    json_t *st = nudged_stats(&d);
    cr_assert_not_null(st, "/stats refused while the broker is full");
    cr_expect_eq(stats_int(st, "connections.ws"), 3);
    json_decref(st);
    /* One leaves, one more gets in. */
    wsc_close(&w[0], 1000);
    cr_assert_eq(nudged_wait_stat(&d, "connections.ws", 2, 5000), 2);
    cr_expect_eq(nudge_connect(addr, &o, &c), NUDGE_OK, "a publisher was refused under the limit");
    nudge_close(c);
    for (int i = 1; i < 3; i++)
        wsc_close(&w[i], 1000);
    cr_assert_eq(nudged_stop(&d), 0);
}

/* 1 when /proc says pid blocks SIGTERM (its main thread's SigBlk mask has bit 15). */
static int blocks_sigterm(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    unsigned long long mask = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "SigBlk: %llx", &mask) == 1) break;
    fclose(f);
    return (mask >> (SIGTERM - 1)) & 1;
}

Test(nudged, a_sigterm_during_start_up_is_a_clean_stop, .timeout = 60)
{
    char bin[512], dir[] = "/tmp/nudge-sigterm-XXXXXX";
    nudged_path(bin, sizeof bin);
    cr_assert_not_null(mkdtemp(dir));
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        /* many workers: start-up takes long enough to be interrupted */
        execl(bin, bin, "--pub", "127.0.0.1:0", "--ws", "127.0.0.1:0", "--admin", "127.0.0.1:0",
              "--http", "127.0.0.1:0", "--workers", "64", "--data-dir", dir, (char *)NULL);
        _exit(127);
    }
    int64_t end = now_ms() + 10000;
    while (!blocks_sigterm(pid) && now_ms() < end)
        sleep_ms(1);
    int blocked = blocks_sigterm(pid);
    kill(pid, SIGTERM); /* our own child */
    int st = 0;
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    nudged_rm_dir(dir);
    cr_assert(blocked, "nudged never held SIGTERM pending during start-up");
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d (signal %d), want 0",
              WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* An operator (or a supervisor) may send SIGTERM again while the broker stops: the stop goes on
 * and still ends with exit 0, whatever part of it the signals land in (the drain, the joins,
 * the journal's last commit). */
Test(nudged, repeated_sigterms_during_the_stop_still_exit_0, .timeout = 60)
{
    for (int round = 0; round < 5; round++) {
        struct nudged d;
        cr_assert_eq(nudged_start(&d, NULL), 0);
        int sent = 0;
        int64_t end = now_ms() + 10000;
        while (nudged_signal(&d, SIGTERM) == 0 && now_ms() < end) {
            sent++;
            usleep(200);
        }
        cr_assert_gt(sent, 1, "round %d: the broker stopped at the first signal", round);
        int st = nudged_wait(&d, 10000);
        cr_assert_eq(st, 0, "round %d: exit status %d after %d SIGTERMs (143: killed by one)",
                     round, st, sent);
    }
}

/* A file in a fresh temporary directory d (mkdtemp'd by the caller). */
static void put_file(const char *d, const char *name, const char *text, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", d, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

Test(nudged, check_config_passes_a_good_file_and_names_the_line_of_a_bad_one)
{
    char bin[512], d[] = "/tmp/nudge-checkcfg-XXXXXX", good[512], bad[512], nokey[512];
    nudged_path(bin, sizeof bin);
    cr_assert_not_null(mkdtemp(d));
    char secret[600];
    put_file(d, "jwt.key", "0123456789abcdef0123456789abcdef0123456789\n", secret, sizeof secret);
    put_file(d, "good.conf",
             "# a broker for the board app\n"
             "ws 127.0.0.1:0\n"
             "max-conns 20000\n"
             "token-secret-file jwt.key   # next to this file\n"
             "public board:*\n"
             "coalesce board:*=250\n",
             good, sizeof good);
    put_file(d, "bad.conf", "max-conns 20000\nmax-queue lots\n", bad, sizeof bad);
    put_file(d, "nokey.conf", "token-secret-file missing.key\n", nokey, sizeof nokey);
    char *out = NULL, *err = NULL;
    const char *ok[] = {bin, "--check-config", good, NULL};
    int rc = run_cmd(ok, NULL, &out, &err, RUN_MS);
    cr_expect_eq(rc, 0, "exit %d: %s", rc, err);
    char want[600];
    snprintf(want, sizeof want, "%s: configuration ok\n", good);
    cr_expect_str_eq(out, want, "no ready line: nothing was started");
    free(out);
    free(err);
    const char *no[] = {bin, "--check-config", bad, NULL};
    rc = run_cmd(no, NULL, &out, &err, RUN_MS);
    cr_expect_eq(rc, 2, "exit %d", rc);
    snprintf(want, sizeof want, "nudged: %s:2: --max-queue wants an integer", bad);
    cr_expect(strstr(err, want), "stderr: %s", err);
    cr_expect_str_eq(out, "");
    free(out);
    free(err);
    /* what a start would load: the secret file named in the config */
    const char *nk[] = {bin, "--check-config", nokey, NULL};
    rc = run_cmd(nk, NULL, &out, &err, RUN_MS);
    cr_expect_eq(rc, 2, "exit %d", rc);
    cr_expect(strstr(err, "missing.key"), "stderr: %s", err);
    free(out);
    free(err);
    /* and a flag of the command line over the file's value */
    const char *fl[] = {bin, "--check-config", bad, "--max-queue", "64", NULL};
    rc = run_cmd(fl, NULL, &out, &err, RUN_MS);
    cr_expect_eq(rc, 0, "the flag replaces the bad line: exit %d: %s", rc, err);
    free(out);
    free(err);
    nudged_rm_dir(d);
}

Test(nudged, a_broker_started_with_a_config_file_runs_on_its_settings, .timeout = 60)
{
    char d[] = "/tmp/nudge-cfgrun-XXXXXX", conf[512];
    cr_assert_not_null(mkdtemp(d));
    put_file(d, "n.conf",
             "max-subs 7\n"
             "max-queue 99\n"
             "max-conns 4321\n",
             conf, sizeof conf);
    setenv("NUDGE_MAX_QUEUE", "55", 1);
    struct nudged b;
    const char *args[] = {"--config", conf, "--memory", NULL};
    int rc = nudged_start(&b, args);
    unsetenv("NUDGE_MAX_QUEUE");
    cr_assert_eq(rc, 0);
    json_t *st = nudged_stats(&b);
    cr_assert_not_null(st);
    cr_expect_eq(stats_int(st, "limits.max_subs"), 7);
    cr_expect_eq(stats_int(st, "limits.max_queue"), 55, "NUDGE_MAX_QUEUE over the file");
    cr_expect_eq(stats_int(st, "limits.max_conns"), 4321);
    json_decref(st);
    cr_assert_eq(nudged_stop(&b), 0);
    nudged_rm_dir(d);
}
