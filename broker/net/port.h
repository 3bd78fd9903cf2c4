/* port: what a connection transport of one worker (tcp for publishers, http for HTTP publish)
 * holds for its listening socket — the worker's server, the listener shared with the other
 * workers' on that port, the TLS context when the port has TLS, and how many of its connections
 * are not freed yet — and the start/stop/free life cycle they all had a copy of. A transport
 * embeds a struct port as its FIRST member: the port frees the whole transport (with free())
 * once it is stopped, its listener closed and its last connection freed. */
#ifndef NUDGE_PORT_H
#define NUDGE_PORT_H

#include <stddef.h>
#include <stdint.h>

#include "listen.h"

struct server;
struct ssl_ctx_st;

struct port {
    struct server *srv;
    struct listener listener;
    struct ssl_ctx_st *tls; /* NULL = plain */
    int listening;
    int stopping;
    uint64_t nconns; /* connections not yet freed */
};

/* Start p (the first member of a calloc'ed transport) for srv on fd: a TLS context from the
 * server's --tls-cert/--tls-key when with_tls, the listener shared through shared, accepting
 * with on_conn(p, fd). fd is owned from now on (closed on failure). Returns 0, -EINVAL (the
 * TLS files failed: logged) or listen_watch's error; on failure nothing is kept and the caller
 * frees the transport. */
int port_start(struct port *p, struct server *srv, int fd, int with_tls,
               struct listen_shared *shared, const char *name, listen_accept_cb on_conn);
/* Connections accepted from now on use the certificate cert and key key (PEM paths); open ones
 * keep theirs. A port without TLS (or NULL) is left alone. 0, or -1 with err (nothing changed). */
int port_tls_reload(struct port *p, const char *cert, const char *key, char *err, size_t errlen);
/* Stop accepting; the transport is freed once its connections are (port_conn_freed). */
void port_stop(struct port *p);
/* A connection of p was freed (count it in with p->nconns++ when it is accepted). */
void port_conn_freed(struct port *p);

#endif
