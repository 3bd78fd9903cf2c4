/* port: see port.h. The transport is freed by whichever comes last of its listener's close and
 * its last connection's free, so neither has to know about the other. */
#include "port.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "tls.h"

static void maybe_free(struct port *p)
{
    if (p->stopping && !p->listening && p->nconns == 0) {
        tls_ctx_free(p->tls);
        free(p); /* the transport: p is its first member */
    }
}

static void on_listener_closed(struct listener *l)
{
    struct port *p = l->data;
    p->listening = 0;
    maybe_free(p);
}

int port_start(struct port *p, struct server *srv, int fd, int with_tls,
               struct listen_shared *shared, const char *name, listen_accept_cb on_conn)
{
    p->srv = srv;
    if (with_tls) {
        char err[512];
        /* config_parse checked the files; they may have changed since */
        if (tls_ctx_new(srv->cfg.tls_cert, srv->cfg.tls_key, &p->tls, err, sizeof(err)) < 0) {
            log_emit(LOG_ERROR, "%s", err);
            close(fd);
            return -EINVAL;
        }
    }
    listen_share(&p->listener, shared);
    int rc = listen_watch(&p->listener, srv->loop, fd, name, srv->cfg.log_level, on_conn, p);
    if (rc < 0) {
        close(fd);
        tls_ctx_free(p->tls);
        p->tls = NULL;
        return rc;
    }
    p->listening = 1;
    return 0;
}

int port_tls_reload(struct port *p, const char *cert, const char *key, char *err, size_t errlen)
{
    struct ssl_ctx_st *ctx;
    if (!p || !p->tls) return 0;
    if (tls_ctx_new(cert, key, &ctx, err, errlen) < 0) return -1;
    /* a connection's SSL holds its own reference to the context it began with */
    tls_ctx_free(p->tls);
    p->tls = ctx;
    return 0;
}

void port_stop(struct port *p)
{
    if (!p || p->stopping) return;
    p->stopping = 1;
    listen_close(&p->listener, on_listener_closed);
}

void port_conn_freed(struct port *p)
{
    p->nconns--;
    maybe_free(p);
}
