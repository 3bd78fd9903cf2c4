/* listen: make a listening socket from "HOST:PORT" ("[::1]:0" for IPv6; port 0 = ephemeral).
 * One accept design for every transport: the socket is made by hand, then handed to libuv
 * (uv_tcp_open) or watched with uv_poll for libwebsockets' adoption. SO_REUSEPORT is asked for
 * only when several workers of one process will share the port (share != 0): set by default it
 * would let a second nudged start on a port already in use and silently take half its
 * connections. */
#ifndef NUDGE_LISTEN_H
#define NUDGE_LISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <uv.h>

/* Parse "HOST:PORT" into host (NUL-terminated, brackets stripped) and port. 0 or -EINVAL. */
int listen_parse(const char *addr, char *host, size_t hostlen, unsigned *port);
/* Whether every address HOST (of "HOST:PORT", or a bare host) stands for is a loopback address
 * (127.0.0.0/8, ::1, ::ffff:127.x): 1 if so, 0 when any is not (0.0.0.0, [::], a LAN or public
 * address, a name that resolves elsewhere), -1 when it does not parse or resolve (its bind will
 * fail with its own message). No side effects; main's secure-defaults check uses it (a listener
 * off loopback needs its secrets, docs/security.md). */
int listen_is_loopback(const char *addr);
/* Open, bind and listen (non-blocking, close-on-exec). On success *fd is the socket (owned by
 * the caller) and bound holds "HOST:PORT" with the real port. Returns 0 or -errno. When share is
 * 0 and the address is not loopback (listen_is_loopback), a warning line says the port is
 * reachable from other machines (once per listener: listen_open_group binds its probe with
 * share 0, the workers' sockets with share 1). */
int listen_open(const char *addr, int backlog, int share, int *fd, char *bound, size_t boundlen);
/* n listening sockets on one address for n workers (SO_REUSEPORT when n > 1). The address is
 * first bound without SO_REUSEPORT, so a port that anything else holds — another nudged
 * included — fails loudly; port 0 is resolved once and shared. fds[0..n) are owned by the
 * caller. Returns 0 or -errno (nothing left open). */
int listen_open_group(const char *addr, int backlog, int n, int *fds, char *bound, size_t boundlen);

/* Accepting: a uv_poll on the listening socket, accept4() in a loop. When the process (or the
 * system) is out of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM) the listener pauses: it stops
 * watching the socket (which stays readable, so watching it would spin), retries after
 * LISTEN_BACKOFF_MS, and warns once per pause (at most once per LISTEN_WARN_MS); connections
 * meanwhile wait in the kernel's backlog and are accepted once descriptors are free again. */
enum { LISTEN_BACKOFF_MS = 250, LISTEN_WARN_MS = 10000 };

/* Called with each accepted fd (non-blocking, close-on-exec); the callee owns fd. */
typedef void (*listen_accept_cb)(void *data, int fd);

/* What the listeners of one port on every worker share: one warning per pause for the port, not
 * one per worker. */
struct listen_shared {
    atomic_int warned;        /* the port's current pause was announced */
    _Atomic uint64_t warn_ms; /* uv_now() of the last announcement */
};

struct listener {
    struct listen_shared *shared; /* own, unless listen_share gave another */
    struct listen_shared own;
    uv_poll_t poll;
    uv_timer_t backoff;
    int fd;
    const char *name; /* "pub", "ws", "admin": static storage */
    listen_accept_cb cb;
    void *data;
    void (*on_closed)(struct listener *l);
    int open_handles;
    int closing;
    int paused;
    int warned;      /* this listener is in a pause (announced for the port, or rate-limited) */
    uint64_t pauses; /* times accepting was paused */
};

/* Start accepting on fd (owned by l from now on, closed by listen_close) on loop. name is used in
 * log lines. Returns 0 or a negative libuv error (fd is then still the caller's). */
int listen_watch(struct listener *l, uv_loop_t *loop, int fd, const char *name, listen_accept_cb cb,
                 void *data);
/* Share the warning of l with the other workers' listeners of its port (before listen_watch). */
void listen_share(struct listener *l, struct listen_shared *shared);
/* Stop accepting and close the socket; on_closed (may be NULL) runs once both handles are
 * closed, after which l may be freed. Safe to call twice. */
void listen_close(struct listener *l, void (*on_closed)(struct listener *l));

#endif
