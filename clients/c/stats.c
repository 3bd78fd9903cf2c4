/* stats: `nudge stats` — GET /stats from the broker's admin port and print the JSON; and the
 * admin HTTP client itself (cli_admin_get), which `nudge top` polls with.
 *
 * A plain blocking-with-deadline HTTP/1.1 client: one request with "Connection: close", read
 * until EOF (bounded in size and time), then status line, headers, and the body (de-chunked if
 * the server chose chunked encoding, cut at Content-Length otherwise). No HTTP library: the
 * admin port is ours and the exchange is one request. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

enum { STATS_MAX_RESPONSE = 16 << 20 };

static const char USAGE_STATS[] =
    "Usage: nudge stats [--addr HOST:PORT] [--json] [--token-file FILE] [--timeout SEC]\n"
    "\n"
    "Fetch GET /stats from the broker's admin HTTP port and print it as indented JSON.\n"
    "\n"
    "Options:\n"
    "  --addr HOST:PORT  admin address ([v6]:PORT for IPv6)\n"
    "                    (default $NUDGE_ADMIN, else 127.0.0.1:7402)\n"
    "  --json            print compact JSON on one line (for scripts)\n"
    "  --token-file FILE the admin token, when the broker wants one\n"
    "                    (default $NUDGE_ADMIN_TOKEN)\n"
    "  --timeout SEC     give up after SEC seconds (default 5)\n"
    "  -h, --help        show this help\n"
    "\n"
    "Example:\n"
    "  $ nudge stats\n"
    "  {\n"
    "    \"publishes\": 1042,\n"
    "    ...\n"
    "  }\n";

static int64_t stats__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int stats__left(int64_t deadline)
{
    int64_t l = deadline - stats__now_ms();
    return l < 0 ? 0 : (l > 0x7fffffff ? 0x7fffffff : (int)l);
}

/* Split "host:port" / "[v6]:port" (port required). 0 or -1. */
static int stats__split(const char *addr, char *host, size_t hcap, char *port, size_t pcap)
{
    const char *h = addr, *p;
    size_t hlen;
    if (addr[0] == '[') {
        const char *e = strchr(addr, ']');
        if (!e || e[1] != ':') return -1;
        h = addr + 1;
        hlen = (size_t)(e - h);
        p = e + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (!colon || strchr(addr, ':') != colon) return -1;
        hlen = (size_t)(colon - addr);
        p = colon + 1;
    }
    if (hlen == 0 || hlen >= hcap || *p == '\0' || strlen(p) >= pcap) return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    snprintf(port, pcap, "%s", p);
    return 0;
}

/* Connect with a deadline. Returns a non-blocking fd, or -1 with the reason in err. */
static int stats__connect(const char *host, const char *port, int64_t deadline, char *err,
                          size_t cap)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, cap, "cannot resolve %s: %s", host, gai_strerror(gai));
        return -1;
    }
    int fd = -1, e = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            e = errno;
        } else {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int n;
            while ((n = poll(&pfd, 1, stats__left(deadline))) < 0 && errno == EINTR) {
            }
            socklen_t sl = sizeof e;
            if (n <= 0)
                e = n == 0 ? ETIMEDOUT : errno;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &sl) != 0)
                e = errno;
            if (e == 0) break;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) snprintf(err, cap, "cannot connect to %s:%s: %s", host, port, strerror(e));
    return fd;
}

/* Send the request and read the whole response. 0 or -1 (err set). */
static int stats__exchange(int fd, const char *req, size_t reqlen, int64_t deadline, char **resp,
                           size_t *resp_len, char *err, size_t cap)
{
    size_t off = 0, len = 0, alloc = 0;
    char *buf = NULL;
    while (off < reqlen) {
        ssize_t n = send(fd, req + off, reqlen - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int r = poll(&pfd, 1, stats__left(deadline));
            if (r == 0) goto timeout;
            continue;
        }
        snprintf(err, cap, "send: %s", strerror(errno));
        return -1;
    }
    for (;;) {
        if (alloc - len < 4096) {
            alloc = alloc ? alloc * 2 : 16384;
            char *nb = realloc(buf, alloc + 1);
            if (!nb) {
                free(buf);
                snprintf(err, cap, "out of memory");
                return -1;
            }
            buf = nb;
        }
        ssize_t n = recv(fd, buf + len, alloc - len, 0);
        if (n > 0) {
            len += (size_t)n;
            if (len > STATS_MAX_RESPONSE) {
                free(buf);
                snprintf(err, cap, "response larger than %d bytes", STATS_MAX_RESPONSE);
                return -1;
            }
            continue;
        }
        if (n == 0) break;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int r = poll(&pfd, 1, stats__left(deadline));
            if (r == 0) {
                free(buf);
                goto timeout;
            }
            continue;
        }
        if (errno == ECONNRESET && len > 0) break; /* some servers reset after the body */
        free(buf);
        snprintf(err, cap, "recv: %s", strerror(errno));
        return -1;
    }
    buf[len] = '\0';
    *resp = buf;
    *resp_len = len;
    return 0;
timeout:
    snprintf(err, cap, "timed out waiting for the admin server");
    return -1;
}

/* Case-insensitive search for header `name` in the header block; returns its value or NULL. */
static const char *stats__header(const char *hdrs, const char *end, const char *name, size_t *vlen)
{
    size_t n = strlen(name);
    const char *line = strstr(hdrs, "\r\n");
    while (line && line < end) {
        line += 2;
        const char *eol = strstr(line, "\r\n");
        if (!eol || eol > end) eol = end;
        if ((size_t)(eol - line) > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        line = eol;
    }
    return NULL;
}

/* Decode a chunked body in place. Returns the decoded length or -1. */
static long stats__dechunk(char *body, size_t len)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *end;
        if (in >= len) return -1;
        unsigned long sz = strtoul(body + in, &end, 16);
        if (end == body + in) return -1;
        char *crlf = strstr(end, "\r\n");
        if (!crlf) return -1;
        in = (size_t)(crlf - body) + 2;
        if (sz == 0) break;
        if (sz > len - in) return -1;
        memmove(body + out, body + in, sz);
        out += sz;
        in += sz + 2;
    }
    body[out] = '\0';
    return (long)out;
}

int cli_addr_check(const char *addr)
{
    char host[256], port[16];
    return stats__split(addr, host, sizeof host, port, sizeof port);
}

int cli_admin_get(const char *addr, const char *path, const char *token, int timeout_ms,
                  struct cli_http *res, char *err, size_t cap)
{
    char host[256], port[16];
    memset(res, 0, sizeof *res);
    if (stats__split(addr, host, sizeof host, port, sizeof port) != 0) {
        snprintf(err, cap, "bad address \"%s\" (want HOST:PORT or [v6]:PORT)", addr);
        return -2;
    }
    int64_t deadline = stats__now_ms() + timeout_ms;
    int fd = stats__connect(host, port, deadline, err, cap);
    if (fd < 0) return -1;
    char req[9216];
    int rl = snprintf(req, sizeof req,
                      "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: nudge/" CLI_VERSION
                      "\r\nAccept: application/json\r\n%s%s%sConnection: close\r\n\r\n",
                      path, addr, token ? "Authorization: Bearer " : "", token ? token : "",
                      token ? "\r\n" : "");
    if (rl < 0 || (size_t)rl >= sizeof req) {
        close(fd);
        snprintf(err, cap, "request too long");
        return -1;
    }
    char *resp = NULL;
    size_t len = 0;
    int r = stats__exchange(fd, req, (size_t)rl, deadline, &resp, &len, err, cap);
    close(fd);
    if (r != 0) return -1;
    char *hend = strstr(resp, "\r\n\r\n");
    char *eol = strstr(resp, "\r\n");
    if (!hend || !eol || sscanf(resp, "HTTP/%*d.%*d %d", &res->status) != 1) {
        snprintf(err, cap, "not an HTTP response from %s", addr);
        free(resp);
        return -1;
    }
    snprintf(res->line, sizeof res->line, "%.*s", (int)(eol - resp), resp);
    char *body = hend + 4;
    size_t blen = len - (size_t)(body - resp);
    size_t vlen = 0;
    const char *te = stats__header(resp, hend, "Transfer-Encoding", &vlen);
    const char *cl = stats__header(resp, hend, "Content-Length", &vlen);
    if (te && vlen >= 7 && strncasecmp(te, "chunked", 7) == 0) {
        long n = stats__dechunk(body, blen);
        if (n < 0) {
            snprintf(err, cap, "bad chunked body from %s", addr);
            free(resp);
            return -1;
        }
        blen = (size_t)n;
    } else if (cl) {
        unsigned long n = strtoul(cl, NULL, 10);
        if (n < blen) blen = n;
    }
    memmove(resp, body, blen); /* the body alone, NUL-terminated, in the same allocation */
    resp[blen] = '\0';
    res->body = resp;
    res->len = blen;
    return 0;
}

int cli_stats(int argc, char **argv)
{
    const char *addr = cli_env_or("NUDGE_ADMIN", CLI_ADMIN_ADDR), *tmo = NULL, *tfile = NULL;
    int compact = 0, timeout_ms = 5000, r;
    for (int i = 1; i < argc;) {
        if (cli_is_help(argv[i])) {
            fputs(USAGE_STATS, stdout);
            return CLI_OK;
        }
        if (strcmp(argv[i], "--json") == 0) {
            compact = 1;
            i++;
            continue;
        }
        if ((r = cli_opt("stats", argc, argv, &i, "--addr", &addr)) ||
            (r = cli_opt("stats", argc, argv, &i, "--token-file", &tfile)) ||
            (r = cli_opt("stats", argc, argv, &i, "--timeout", &tmo))) {
            if (r < 0) return CLI_USAGE;
            continue;
        }
        if (argv[i][0] == '-') return cli_usage_err("stats", "unknown option %s", argv[i]);
        return cli_usage_err("stats", "unexpected argument \"%s\"", argv[i]);
    }
    if (tmo && cli_parse_seconds(tmo, &timeout_ms) != 0)
        return cli_usage_err("stats", "--timeout wants a positive number of seconds");
    char host[256], port[16], err[512];
    if (stats__split(addr, host, sizeof host, port, sizeof port) != 0)
        return cli_usage_err("stats", "bad address \"%s\" (want HOST:PORT or [v6]:PORT)", addr);

    int terr = 0;
    char *token = cli_secret("stats", tfile, "NUDGE_ADMIN_TOKEN", &terr);
    if (terr) return CLI_USAGE;
    struct cli_http res;
    r = cli_admin_get(addr, "/stats", token, timeout_ms, &res, err, sizeof err);
    free(token);
    if (r != 0) {
        cli_err("stats: %s", err);
        return CLI_FAIL;
    }
    int rc = CLI_FAIL;
    if (res.status != 200) {
        cli_err("stats: %s", res.line);
        goto out;
    }
    json_error_t jerr;
    json_t *root = json_loadb(res.body, res.len, 0, &jerr);
    if (!root) {
        cli_err("stats: body is not JSON (%s)", jerr.text);
        goto out;
    }
    /* 15 digits: "6.256" stays 6.256 instead of jansson's default 17-digit 6.2560000000000002. */
    char *txt =
        json_dumps(root, (compact ? JSON_COMPACT : JSON_INDENT(2)) | JSON_REAL_PRECISION(15));
    json_decref(root);
    if (!txt) {
        cli_err("out of memory");
        goto out;
    }
    puts(txt);
    free(txt);
    rc = fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
out:
    free(res.body);
    return rc;
}
