/* `nudge top` and `nudge tail` in a real terminal: each test runs them inside its own tmux
 * server (tmux -L <unique socket>, no config file), types with send-keys and reads the screen
 * with capture-pane, against the real nudged on ephemeral ports.
 *
 * What a terminal shows is the point: top must draw in place (one frame on the alternate
 * screen, not a scrolling log), cut its lines to the width (capture-pane -J joins wrapped rows,
 * so a line that wrapped shows up longer than the pane), and on q or Ctrl-C give the shell its
 * screen and its terminal settings back (stty -g before and after). Every wait polls the pane
 * with a deadline; each test kills only its own tmux server, by its socket name. */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "nudge.h"
#include "wsc.h"

#define TMUX "/usr/bin/tmux"
#define WAIT_MS 15000

struct term {
    char sock[64];
    char stty_file[96];
};

static int term_seq;

static int tmux_run(struct term *t, const char *const *args, char **out)
{
    const char *argv[24] = {TMUX, "-L", t->sock, "-f", "/dev/null"};
    size_t k = 5;
    for (size_t i = 0; args[i] && k < 23; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    char *err = NULL;
    int rc = run_cmd(argv, NULL, out, &err, 10000);
    if (rc != 0) fprintf(stderr, "tmux %s: exit %d: %s\n", args[0], rc, err ? err : "");
    free(err);
    return rc;
}

/* A tmux server of our own with one session of width x height running cmd (a shell command). */
static void term_start(struct term *t, int width, int height, const char *cmd)
{
    cr_assert_eq(access(TMUX, X_OK), 0, "tmux is not installed (make deps-test installs it)");
    snprintf(t->sock, sizeof t->sock, "nudge-top-%d-%d", (int)getpid(), ++term_seq);
    snprintf(t->stty_file, sizeof t->stty_file, "/tmp/%s.stty", t->sock);
    char w[16], h[16];
    snprintf(w, sizeof w, "%d", width);
    snprintf(h, sizeof h, "%d", height);
    const char *args[] = {"new-session", "-d", "-x", w, "-y", h, cmd, NULL};
    cr_assert_eq(tmux_run(t, args, NULL), 0, "tmux new-session failed");
}

static void term_stop(struct term *t)
{
    const char *args[] = {"kill-server", NULL};
    char *out = NULL;
    tmux_run(t, args, &out); /* fails harmlessly when the server already ended */
    free(out);
    unlink(t->stty_file);
}

/* Type keys: literal text when literal is 1 (send-keys -l), else tmux key names ("Enter",
 * "C-c", "q"). */
static void term_keys(struct term *t, const char *keys, int literal)
{
    const char *a1[] = {"send-keys", "-l", keys, NULL};
    const char *a2[] = {"send-keys", keys, NULL};
    cr_assert_eq(tmux_run(t, literal ? a1 : a2, NULL), 0, "send-keys %s", keys);
}

static void term_line(struct term *t, const char *line)
{
    term_keys(t, line, 1);
    term_keys(t, "Enter", 0);
}

/* The visible screen, wrapped rows joined (-J), trailing spaces dropped. Caller frees. */
static char *term_screen(struct term *t)
{
    const char *args[] = {"capture-pane", "-p", "-J", NULL};
    char *out = NULL;
    if (tmux_run(t, args, &out) != 0) {
        free(out);
        return strdup("");
    }
    /* -J keeps trailing spaces: drop them so a line's length is what it shows. */
    char *r = out, *w = out;
    while (*r) {
        char *eol = strchr(r, '\n');
        size_t n = eol ? (size_t)(eol - r) : strlen(r);
        size_t m = n;
        while (m && r[m - 1] == ' ')
            m--;
        memmove(w, r, m);
        w += m;
        if (eol) *w++ = '\n';
        r += n + (eol ? 1 : 0);
    }
    *w = '\0';
    return out;
}

/* Wait until the screen shows needle; returns the screen (caller frees) or NULL on timeout
 * (the last screen printed for the failure message). */
static char *term_wait(struct term *t, const char *needle, int timeout_ms)
{
    int64_t end = now_ms() + timeout_ms;
    for (;;) {
        char *s = term_screen(t);
        if (strstr(s, needle)) return s;
        if (now_ms() >= end) {
            fprintf(stderr, "---- waited %d ms for \"%s\"; the screen:\n%s\n----\n", timeout_ms,
                    needle, s);
            free(s);
            return NULL;
        }
        free(s);
        sleep_ms(100);
    }
}

static size_t count_of(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void bin(const char *name, char *buf, size_t cap)
{
    cr_assert_eq(nudge_bin_path(name, buf, cap), 0);
}

static void publish(const struct nudged *d, const char *data, const char *topic)
{
    char nudge[512], addr[64];
    bin("nudge", nudge, sizeof nudge);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)d->pub_port);
    const char *argv[8] = {nudge, "pub", "--addr", addr};
    size_t k = 4;
    if (data) {
        argv[k++] = "--data";
        argv[k++] = data;
    }
    argv[k++] = topic;
    argv[k] = NULL;
    char *out = NULL, *err = NULL;
    int rc = run_cmd(argv, NULL, &out, &err, 10000);
    cr_assert_eq(rc, 0, "nudge pub %s exited %d: %s", topic, rc, err ? err : "");
    free(out);
    free(err);
}

/* In the pane's shell: remember the terminal's settings, run top, then say how it ended and
 * whether the settings are back. */
static void run_top_in_shell(struct term *t, const struct nudged *d, uint16_t admin_port)
{
    char nudge[512], line[1024];
    bin("nudge", nudge, sizeof nudge);
    (void)d;
    snprintf(line, sizeof line,
             "stty -g > %s; %s top --interval 0.3 --admin 127.0.0.1:%u; echo TOP-EXIT=$?; "
             "stty -g | cmp -s - %s && echo TTY-\"\"SAME || echo TTY-\"\"CHANGED",
             t->stty_file, nudge, (unsigned)admin_port, t->stty_file);
    term_line(t, line);
}

/* top has ended: it said so with status 0, and the shell has its terminal back as it was. */
static void assert_top_ended_cleanly(struct term *t)
{
    char *s = term_wait(t, "\nTTY-", WAIT_MS); /* the output, not the typed command */
    cr_assert_not_null(s, "top did not end, or the shell ended with it (a terminal left "
                          "non-canonical with VMIN 0 reads as EOF)");
    cr_assert(strstr(s, "\nTOP-EXIT=0\n"), "top did not exit 0:\n%s", s);
    cr_assert(strstr(s, "\nTTY-SAME"), "terminal settings not restored:\n%s", s);
    /* The shell's own screen is back (the alternate screen was left): the command line typed
     * before top is on it again. */
    cr_assert(strstr(s, "top --interval"), "the shell's screen did not come back:\n%s", s);
    cr_assert(!strstr(s, "Connections"), "top's frame is still on the screen:\n%s", s);
    free(s);
}

Test(top, shows_connections_and_the_busiest_topic_and_redraws_in_place, .timeout = 120)
{
    struct nudged d = {0};
    cr_assert_eq(nudged_start(&d, NULL), 0);
    struct wsc ws;
    cr_assert_eq(wsc_open(&ws, d.ws_port, NULL), 0);
    struct term t;
    term_start(&t, 100, 30, "sh");
    run_top_in_shell(&t, &d, d.admin_port);

    char *s = term_wait(&t, "Connections  ws 1 ", WAIT_MS);
    cr_assert_not_null(s, "top never showed the one WebSocket connection");
    free(s);
    publish(&d, "{\"by\":42}", "busy:topic");
    s = term_wait(&t, "publishes 1  hints 1", WAIT_MS);
    cr_assert_not_null(s, "top never showed the publish");
    free(s);
    s = term_wait(&t, "busy:topic", WAIT_MS);
    cr_assert_not_null(s, "the published topic never appeared in the top list");
    free(s);

    /* A second publish changes the figure in place: still one frame, its first line on the
     * screen's first row, nothing scrolled. */
    publish(&d, NULL, "busy:topic");
    s = term_wait(&t, "publishes 2  hints 2", WAIT_MS);
    cr_assert_not_null(s, "top never showed the second publish");
    cr_assert(strncmp(s, "nudge top - 127.0.0.1:", 22) == 0, "first row is not top's header:\n%s",
              s);
    cr_assert_eq(count_of(s, "nudge top - "), 1, "more than one frame on the screen:\n%s", s);
    cr_assert_eq(count_of(s, "Connections  "), 1, "more than one frame on the screen:\n%s", s);
    cr_assert_eq(count_of(s, "publishes 1  hints 1"), 0, "the old figure is still shown:\n%s", s);
    const char *row = strstr(s, "\nbusy:topic ");
    cr_assert_not_null(row, "no row for busy:topic:\n%s", s);
    int seq = 0, subs = -1;
    double rate = 0;
    cr_assert_eq(sscanf(row, "\nbusy:topic %lf %d %d", &rate, &seq, &subs), 3, "%s", s);
    cr_assert_eq(seq, 2, "seq column:\n%s", s);
    cr_assert(rate > 0, "rate column:\n%s", s);
    free(s);

    term_keys(&t, "q", 0);
    assert_top_ended_cleanly(&t);
    term_stop(&t);
    wsc_free(&ws, 0);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(top, fits_a_narrow_window_and_ends_on_ctrl_c, .timeout = 120)
{
    struct nudged d = {0};
    cr_assert_eq(nudged_start(&d, NULL), 0);
    char longname[120];
    memset(longname, 'x', sizeof longname - 1);
    memcpy(longname, "long:", 5);
    longname[sizeof longname - 1] = '\0';
    publish(&d, NULL, longname);
    struct term t;
    term_start(&t, 50, 30, "sh");
    run_top_in_shell(&t, &d, d.admin_port);

    char *s = term_wait(&t, "long:xxx", WAIT_MS);
    cr_assert_not_null(s, "the long topic never appeared");
    free(s);
    s = term_wait(&t, "Resets", WAIT_MS);
    cr_assert_not_null(s);
    cr_assert(strncmp(s, "nudge top - ", 12) == 0, "first row is not top's header:\n%s", s);
    int row = 0;
    for (char *line = s; *line; row++) {
        char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        cr_expect(n <= 50, "row %d is %zu wide (wrapped):\n%.*s", row, n, (int)n, line);
        line += n + (eol ? 1 : 0);
    }
    cr_assert_eq(count_of(s, "nudge top - "), 1, "%s", s);
    free(s);

    term_keys(&t, "C-c", 0);
    assert_top_ended_cleanly(&t);
    term_stop(&t);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(top, says_the_broker_is_not_answering_and_keeps_trying, .timeout = 120)
{
    struct nudged d = {0};
    cr_assert_eq(nudged_start(&d, NULL), 0);
    uint16_t admin = d.admin_port;
    struct term t;
    term_start(&t, 100, 30, "sh");
    run_top_in_shell(&t, &d, admin);
    char *s = term_wait(&t, "Connections", WAIT_MS);
    cr_assert_not_null(s);
    free(s);
    cr_assert_eq(nudged_stop(&d), 0);
    s = term_wait(&t, "BROKER NOT ANSWERING", WAIT_MS);
    cr_assert_not_null(s, "top did not say the broker went away");
    cr_assert(strstr(s, "figures as of"), "%s", s);
    cr_assert(!strstr(s, "TOP-EXIT"), "top ended instead of retrying:\n%s", s);
    free(s);
    term_keys(&t, "q", 0);
    assert_top_ended_cleanly(&t);
    term_stop(&t);
}

Test(top, prints_one_plain_view_when_stdout_is_not_a_terminal, .timeout = 60)
{
    struct nudged d = {0};
    cr_assert_eq(nudged_start(&d, NULL), 0);
    publish(&d, NULL, "plain:1");
    char nudge[512], addr[64];
    bin("nudge", nudge, sizeof nudge);
    snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)d.admin_port);
    const char *argv[] = {nudge, "top", "--admin", addr, "--interval", "0.2", NULL};
    char *out = NULL, *err = NULL;
    int rc = run_cmd(argv, NULL, &out, &err, 10000);
    cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
    cr_assert(strncmp(out, "nudge top - ", 12) == 0, "%s", out);
    cr_assert(strstr(out, "Totals       publishes 1  hints 1"), "%s", out);
    cr_assert(strstr(out, "\nplain:1 "), "%s", out);
    cr_assert_null(strchr(out, '\x1b'), "terminal escapes in a pipe: %s", out);
    free(out);
    free(err);
    cr_assert_eq(nudged_stop(&d), 0);

    rc = run_cmd(argv, NULL, &out, &err, 10000); /* the broker is gone */
    cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
    cr_assert(strstr(err, "nudge: top: cannot connect"), "%s", err);
    free(out);
    free(err);
}

Test(tail, shows_the_hints_of_matching_topics_only, .timeout = 120)
{
    struct nudged d = {0};
    cr_assert_eq(nudged_start(&d, NULL), 0);
    char nudge[512], cmd[1024];
    bin("nudge", nudge, sizeof nudge);
    snprintf(cmd, sizeof cmd, "exec %s tail --url ws://127.0.0.1:%u/ 'app:*' exact:1", nudge,
             (unsigned)d.ws_port);
    struct term t;
    term_start(&t, 100, 30, cmd);
    char *s = term_wait(&t, "nudge: subscribed exact:1", WAIT_MS);
    cr_assert_not_null(s, "tail never subscribed");
    free(s);
    publish(&d, "{\"by\":42}", "app:1");
    publish(&d, NULL, "other:1");
    publish(&d, NULL, "app:2:deep"); /* '*' is one segment: not a match */
    publish(&d, NULL, "exact:1");
    s = term_wait(&t, " exact:1 seq=1", WAIT_MS);
    cr_assert_not_null(s, "the hint for exact:1 never showed");
    cr_assert(strstr(s, " app:1 seq=1 data={\"by\":42}\n"), "%s", s);
    cr_assert(!strstr(s, "other:1"), "a topic no pattern matches was shown:\n%s", s);
    cr_assert(!strstr(s, "app:2:deep"), "a topic no pattern matches was shown:\n%s", s);
    /* Each hint line starts with the local time. */
    const char *at = strstr(s, " app:1 seq=1");
    cr_assert(at - s >= 12 && at[-4] == '.' && at[-7] == ':' && at[-10] == ':', "%s", s);
    free(s);
    term_stop(&t);
    cr_assert_eq(nudged_stop(&d), 0);
}

Test(tail, reconnects_after_a_broker_restart_and_shows_what_it_missed, .timeout = 120)
{
    char dir[128];
    snprintf(dir, sizeof dir, "/tmp/nudge-test-%d-tail.data", (int)getpid());
    nudged_rm_dir(dir);
    const char *args[] = {"--data-dir", dir, "--http", "off", NULL};
    struct nudged d = {0};
    cr_assert_eq(nudged_start(&d, args), 0);
    char nudge[512], nudged[512], cmd[1024];
    bin("nudge", nudge, sizeof nudge);
    bin("nudged", nudged, sizeof nudged);
    snprintf(cmd, sizeof cmd, "exec %s tail --url ws://127.0.0.1:%u/ 'r:*' rx", nudge,
             (unsigned)d.ws_port);
    struct term t;
    term_start(&t, 120, 40, cmd);
    char *s = term_wait(&t, "nudge: subscribed rx", WAIT_MS);
    cr_assert_not_null(s, "tail never subscribed");
    free(s);
    publish(&d, NULL, "r:1");
    s = term_wait(&t, " r:1 seq=1", WAIT_MS);
    cr_assert_not_null(s);
    free(s);

    /* Stop the broker and let tail's backoff grow to 4 s (0.25, 0.5, 1, 2, 4), then restart it
     * on the same ports and data directory and publish at once, in process: tail is still
     * waiting, so these changes can only reach it as catch-up when it resumes. (SIGSTOP on tail
     * would be simpler, but tmux continues a stopped pane at once.) */
    char pub[32], ws[32], admin[32];
    snprintf(pub, sizeof pub, "127.0.0.1:%u", (unsigned)d.pub_port);
    snprintf(ws, sizeof ws, "127.0.0.1:%u", (unsigned)d.ws_port);
    snprintf(admin, sizeof admin, "127.0.0.1:%u", (unsigned)d.admin_port);
    cr_assert_eq(nudged_stop(&d), 0);
    s = term_wait(&t, "reconnecting in 4 s", WAIT_MS);
    cr_assert_not_null(s, "tail did not keep retrying with a growing delay");
    free(s);
    const char *again[] = {"--pub",  pub,   "--ws",       ws,  "--admin", admin,
                           "--http", "off", "--data-dir", dir, NULL};
    struct nudged d2 = {0};
    cr_assert_eq(nudged_start_ex(&d2, nudged, 0, again), 0,
                 "the broker did not start again on the same ports");
    nudge_client_t *c = NULL;
    cr_assert_eq(nudge_connect(pub, NULL, &c), NUDGE_OK);
    const char *r1[] = {"r:1"}, *rx[] = {"rx"};
    cr_assert_eq(nudge_publish(c, r1, 1, NULL, NULL), NUDGE_OK);
    cr_assert_eq(nudge_publish(c, r1, 1, NULL, NULL), NUDGE_OK);
    cr_assert_eq(nudge_publish(c, rx, 1, NULL, NULL), NUDGE_OK);
    nudge_close(c);
    s = term_screen(&t);
    cr_assert(!strstr(s, "nudge: reconnected"), "tail came back before the publishes:\n%s", s);
    free(s);

    s = term_wait(&t, "nudge: caught up", WAIT_MS);
    cr_assert_not_null(s, "tail never caught up after the restart");
    cr_assert(strstr(s, "nudge: connection closed by broker (code 1012"), "%s", s);
    cr_assert(strstr(s, "reconnecting in"), "%s", s);
    cr_assert(strstr(s, "nudge: resuming 2 of 2 topics from epoch"), "%s", s);
    cr_assert(strstr(s, "nudge: reconnected conn="), "%s", s);
    cr_assert(strstr(s, " r:1 seq=3 "), "missed changes of r:1 not shown:\n%s", s);
    cr_assert(strstr(s, " rx seq=1 catch-up\n"), "missed change of rx not shown:\n%s", s);
    free(s);
    publish(&d2, NULL, "r:2");
    s = term_wait(&t, " r:2 seq=1", WAIT_MS);
    cr_assert_not_null(s, "no live hint after the reconnect");
    cr_assert(strstr(s, " r:2 seq=1\n"), "a live hint is not tagged catch-up:\n%s", s);
    free(s);
    term_stop(&t);
    cr_assert_eq(nudged_stop(&d2), 0);
    nudged_rm_dir(dir);
}
