/* cli: what the `nudge` command's files share (cli.c: main, pub and helpers; subscribe.c: sub;
 * tail.c: tail; watch.c: the WebSocket subscriber both use; stats.c: stats and the admin HTTP
 * client; top.c: top). Internal to the CLI, not part of libnudge. */
#ifndef NUDGE_CLI_H
#define NUDGE_CLI_H

#include <stddef.h>

#include "version.h"

#define CLI_VERSION NUDGE_VERSION
#define CLI_ADMIN_ADDR "127.0.0.1:7402" /* admin endpoint unless --addr or $NUDGE_ADMIN */

/* Exit codes of every subcommand. */
enum cli_exit {
    CLI_OK = 0,    /* success */
    CLI_FAIL = 1,  /* runtime error: connection, broker error, timeout */
    CLI_USAGE = 2, /* bad command line */
};

/* Subcommands: argv[0] is the subcommand's name. Return an enum cli_exit. */
int cli_pub(int argc, char **argv);
int cli_sub(int argc, char **argv);
int cli_stats(int argc, char **argv);
int cli_top(int argc, char **argv);
int cli_tail(int argc, char **argv);

/* "nudge: <message>\n" on stderr. */
void cli_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report a usage error for subcommand cmd (NULL = top level) and return CLI_USAGE. */
int cli_usage_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Option parsing. If argv[*i] is `--name VALUE` or `--name=VALUE`, store VALUE in *val, advance
 * *i past what was used and return 1. Return 0 when argv[*i] is something else, -1 when the
 * value is missing (a usage error has been reported for cmd). */
int cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name, const char **val);
/* 1 when argv[i] is -h or --help. */
int cli_is_help(const char *arg);
/* Parse seconds ("2", "0.5") > 0 into milliseconds. 0 or -1. */
int cli_parse_seconds(const char *s, int *ms_out);
/* Parse a positive integer <= max. 0 or -1. */
int cli_parse_count(const char *s, long max, long *out);
/* Check a topic given on the command line; on error report a usage error and return -1. */
int cli_check_topic(const char *cmd, const char *topic);
/* A credential for cmd: the contents of file (one trailing newline dropped) when file is not
 * NULL, else environment variable env, else none. Returns a malloc'd string (free it), NULL
 * with *err 0 when there is none, NULL with *err 1 after reporting why the file failed. */
char *cli_secret(const char *cmd, const char *file, const char *env, int *err);
/* Value of environment variable name if set and non-empty, else def. */
const char *cli_env_or(const char *name, const char *def);

/* One answer of the admin endpoint. */
struct cli_http {
    int status;     /* e.g. 200, 404 */
    char line[128]; /* the status line, e.g. "HTTP/1.1 404 Not Found" */
    char *body;     /* NUL-terminated, de-chunked; malloc'd, the caller frees it */
    size_t len;     /* bytes of body */
};
/* GET path from the admin endpoint addr (HOST:PORT or [v6]:PORT), one request with "Connection:
 * close", sending token (NULL = none) as a bearer token, all within timeout_ms. 0 with *res
 * filled (any status: a 404 is an answer), -1 when no HTTP answer came (cannot connect, timed
 * out, not HTTP), -2 when addr is malformed; the reason is in err. *res holds nothing to free
 * unless 0 is returned. */
int cli_admin_get(const char *addr, const char *path, const char *token, int timeout_ms,
                  struct cli_http *res, char *err, size_t cap);
/* 0 when addr is HOST:PORT or [v6]:PORT, else -1. */
int cli_addr_check(const char *addr);

#endif
