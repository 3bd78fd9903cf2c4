/* listen: numeric or resolvable host, first address that binds wins; the bound address is read
 * back with getsockname so "port 0" callers learn the ephemeral port for the ready line.
 *
 * Accepting is one loop for every transport (listen_watch). It does not use libuv's uv_listen:
 * on EMFILE libuv 1.44 closes a spare descriptor, accepts every queued connection and closes it
 * again (its "emfile trick"), so clients are dropped without a word; we would rather leave them
 * in the backlog until descriptors are free, and say once that we are full. */
#include "listen.h"

#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int listen_parse(const char *addr, char *host, size_t hostlen, unsigned *port)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr) return -EINVAL;
    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    if (h[0] == '[') {
        if (hl < 2 || h[hl - 1] != ']') return -EINVAL;
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostlen) return -EINVAL;
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (errno || *end || colon[1] == '\0' || p > 65535) return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (unsigned)p;
    return 0;
}

static int sa_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a)) return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

int listen_is_loopback(const char *addr)
{
    char host[256];
    unsigned port;
    struct in6_addr a6;
    size_t n = strlen(addr);
    if (inet_pton(AF_INET6, addr, &a6) == 1) { /* a bare IPv6 literal: "::1" is no HOST:PORT */
        snprintf(host, sizeof(host), "%s", addr);
    } else if (listen_parse(addr, host, sizeof(host), &port) < 0) {
        if (n >= 2 && addr[0] == '[' && addr[n - 1] == ']') { /* a bare "[v6]" */
            addr++;
            n -= 2;
        }
        if (n == 0 || n >= sizeof(host)) return -1;
        memcpy(host, addr, n);
        host[n] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res) return -1;
    int lo = 1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if (!sa_is_loopback(ai->ai_addr)) lo = 0;
    freeaddrinfo(res);
    return lo;
}

int listen_open(const char *addr, int backlog, int share, int *fd_out, char *bound, size_t boundlen)
{
    char host[256], portstr[8];
    unsigned port;
    if (listen_parse(addr, host, sizeof(host), &port) < 0) return -EINVAL;
    snprintf(portstr, sizeof(portstr), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE},
                    *res = NULL;
    if (getaddrinfo(host, portstr, &hints, &res) != 0 || !res) return -EADDRNOTAVAIL;
    int err = -EADDRNOTAVAIL, fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            err = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (share) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (ai->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0) break;
        err = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) return err;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    unsigned bport = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
            bport = ntohs(s4->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
            bport = ntohs(s6->sin6_port);
        }
    }
    if (ss.ss_family == AF_INET6)
        snprintf(bound, boundlen, "[%s]:%u", ip, bport);
    else
        snprintf(bound, boundlen, "%s:%u", ip, bport);
    /* Loud, whatever --log-level: an exposed port should never be a surprise (issue #14). */
    if (!share && !sa_is_loopback((struct sockaddr *)&ss))
        log_emit(LOG_WARN,
                 "listening on %s (asked: %s): NOT loopback, reachable from other machines "
                 "(its credentials are configured: docs/security.md)",
                 bound, addr);
    *fd_out = fd;
    return 0;
}

int listen_open_group(const char *addr, int backlog, int n, int *fds, char *bound, size_t boundlen)
{
    int rc = listen_open(addr, backlog, 0, &fds[0], bound, boundlen);
    if (rc < 0 || n <= 1) return rc;
    /* The probe proved the port free; give it up and bind every worker's socket to it. */
    close(fds[0]);
    char host[256], again[300];
    unsigned port, bport;
    if (listen_parse(addr, host, sizeof(host), &port) < 0 ||
        listen_parse(bound, again, sizeof(again), &bport) < 0)
        return -EINVAL;
    snprintf(again, sizeof(again), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, bport);
    for (int i = 0; i < n; i++) {
        if ((rc = listen_open(again, backlog, 1, &fds[i], bound, boundlen)) < 0) {
            while (i--)
                close(fds[i]);
            return rc;
        }
    }
    return 0;
}
#define ACCEPTS_PER_WAKE 64

static void on_readable(uv_poll_t *p, int status, int events);

static void on_backoff(uv_timer_t *t)
{
    struct listener *l = t->data;
    if (l->closing) return;
    l->paused = 0;
    uv_poll_start(&l->poll, UV_READABLE, on_readable);
}

/* Out of descriptors (or kernel memory): stop watching the socket, which stays readable, and try
 * again later; the warning is rate-limited so a long shortage is one line per LISTEN_WARN_MS. */
static void pause_accepting(struct listener *l, int err)
{
    uint64_t now = uv_now(l->poll.loop);
    l->paused = 1;
    l->pauses++;
    uv_poll_stop(&l->poll);
    uv_timer_start(&l->backoff, on_backoff, LISTEN_BACKOFF_MS, 0);
    if (l->warned) return;
    l->warned = 1;
    struct listen_shared *sh = l->shared;
    uint64_t last = atomic_load(&sh->warn_ms);
    if (atomic_exchange(&sh->warned, 1) == 0 && (last == 0 || now - last >= LISTEN_WARN_MS)) {
        atomic_store(&sh->warn_ms, now ? now : 1);
        LOGF(LOG_WARN,
             "%s: out of file descriptors (accept: %s): not accepting new connections, "
             "retrying every %d ms",
             l->name, strerror(err), LISTEN_BACKOFF_MS);
    }
}

static void on_readable(uv_poll_t *p, int status, int events)
{
    struct listener *l = p->data;
    (void)events;
    if (l->closing) return;
    if (status < 0) {
        pause_accepting(l, -status);
        return;
    }
    for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == EAGAIN || e == EWOULDBLOCK) return;
            if (e == EINTR || e == ECONNABORTED || e == EPROTO || e == EPERM) continue;
            /* EMFILE, ENFILE, ENOBUFS, ENOMEM, or anything unexpected: never spin on it. */
            pause_accepting(l, e);
            return;
        }
        /* Every transport batches its own writes (one write per connection per loop turn), so
         * Nagle only adds delay: a small write behind unacknowledged data would wait for the
         * peer's delayed ACK (40 ms) — the first hints of a quiet connection did (#18). */
        static const int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (l->warned) {
            l->warned = 0;
            if (atomic_exchange(&l->shared->warned, 0) == 1)
                LOGF(LOG_INFO, "%s: accepting again", l->name);
        }
        l->cb(l->data, fd);
        if (l->closing) return;
    }
}

void listen_share(struct listener *l, struct listen_shared *shared)
{
    l->shared = shared;
}

int listen_watch(struct listener *l, uv_loop_t *loop, int fd, const char *name, listen_accept_cb cb,
                 void *data)
{
    int rc;
    struct listen_shared *shared = l->shared;
    memset(l, 0, sizeof(*l));
    l->shared = shared ? shared : &l->own;
    l->fd = fd;
    l->name = name;
    l->cb = cb;
    l->data = data;
    if ((rc = uv_poll_init(loop, &l->poll, fd)) < 0) return rc;
    uv_timer_init(loop, &l->backoff);
    l->poll.data = l->backoff.data = l;
    l->open_handles = 2;
    uv_poll_start(&l->poll, UV_READABLE, on_readable);
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct listener *l = h->data;
    if (--l->open_handles) return;
    close(l->fd);
    l->fd = -1;
    if (l->on_closed) l->on_closed(l);
}

void listen_close(struct listener *l, void (*on_closed)(struct listener *l))
{
    if (l->closing) return;
    l->closing = 1;
    l->on_closed = on_closed;
    uv_close((uv_handle_t *)&l->poll, on_handle_closed);
    uv_close((uv_handle_t *)&l->backoff, on_handle_closed);
}
