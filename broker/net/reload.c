/* reload: see reload.h. Everything that can fail — the file, the flags, the credentials, the
 * certificate — is read and loaded on worker 0 before anything changes, so a refusal leaves the
 * broker exactly as it was. The switch itself cannot fail: each worker, on its own thread
 * between two loop turns (worker_reload wakes it), copies the reloadable settings into its
 * struct server, points its session at the new struct auth (session_reload re-checks its
 * connections against it) and loads the certificate into its TLS contexts. Workers never see
 * each other's settings, so there is no lock; the old struct auth is freed by worker 0 once the
 * last worker has switched, when no thread can read it any more. The counters of struct auth
 * live in the broker (b->auth_st), so /stats and /metrics keep counting across reloads. */
#include "reload.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "server.h"
#include "tcp.h"
#include "worker.h"
#include "ws.h"

struct reload {
    struct config cfg; /* the new configuration (its strings: cfg.kept) */
    struct auth *auth; /* the new credentials */
    struct auth *old;  /* the running ones, freed by reload_finish */
    int tls;           /* reload the TLS certificate and key */
    atomic_uint left;  /* workers that have not applied it yet */
    char restart[512]; /* settings that changed but need a restart */
};

/* Names of the settings that changed in n against o but only a restart applies. */
static void restart_only(const struct config *o, const struct config *n, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
#define CHANGED(name, differs)                                                                     \
    do {                                                                                           \
        if ((differs) && used < cap)                                                               \
            used += (size_t)snprintf(out + used, cap - used, "%s%s", used ? ", " : "", name);      \
    } while (0)
    CHANGED("pub", strcmp(o->pub, n->pub));
    CHANGED("ws", strcmp(o->ws, n->ws));
    CHANGED("admin", strcmp(o->admin, n->admin));
    CHANGED("http", strcmp(o->http, n->http));
    CHANGED("workers", o->workers != n->workers);
    CHANGED("data-dir/memory", strcmp(o->data_dir, n->data_dir));
    CHANGED("fsync", o->disk.sync != n->disk.sync || o->disk.batch_ms != n->disk.batch_ms);
    CHANGED("disk-max", o->disk.max_bytes != n->disk.max_bytes);
    CHANGED("disk-segment", o->disk.segment_bytes != n->disk.segment_bytes);
    CHANGED("tls-listeners (or TLS on/off)", o->tls != n->tls);
    CHANGED("max-frame", o->engine.lim.max_frame != n->engine.lim.max_frame);
    CHANGED("max-topic", o->engine.lim.max_topic != n->engine.lim.max_topic);
    CHANGED("max-data", o->engine.lim.max_data != n->engine.lim.max_data);
    CHANGED("max-topics", o->engine.lim.max_topics != n->engine.lim.max_topics);
    CHANGED("max-topics-total", o->engine.max_topics != n->engine.max_topics);
    CHANGED("history (hist-*, horizon, max-positions)",
            memcmp(&o->engine.hist, &n->engine.hist, sizeof(o->engine.hist)));
    CHANGED("coalesce", o->engine.nwindows != n->engine.nwindows ||
                            memcmp(o->engine.windows, n->engine.windows,
                                   n->engine.nwindows * sizeof(n->engine.windows[0])));
    CHANGED("ws-ping", o->ws_ping != n->ws_ping);
    CHANGED("ws-sndbuf", o->ws_sndbuf != n->ws_sndbuf);
#undef CHANGED
}

static void refuse(struct broker *b, const char *why)
{
    stat_add(&b->reloads_failed, 1);
    LOGF(LOG_ERROR, "SIGHUP: reload refused, the running configuration stays: %s", why);
}

int reload_begin(struct broker *b)
{
    if (b->reloading) {
        b->reload_again = 1;
        return 1;
    }
    char err[1024];
    struct reload *r = calloc(1, sizeof(*r));
    if (!r || !(r->auth = calloc(1, sizeof(*r->auth)))) {
        free(r);
        refuse(b, "out of memory");
        return -1;
    }
    config_default(&r->cfg);
    int rc = config_parse(&r->cfg, b->argc, b->argv, environ, NULL, err, sizeof(err));
    if (rc == 0 && (auth_load(r->auth, &r->cfg.auth, err, sizeof(err)) < 0 ||
                    config_exposure(&r->cfg, r->auth, 0, err, sizeof(err)) < 0))
        rc = -1;
    if (rc != 0) {
        refuse(b, rc < 0 ? err : "--help or --version in the configuration");
        auth_free(r->auth);
        free(r->auth);
        config_free(&r->cfg);
        free(r);
        return -1;
    }
    r->auth->st = &b->auth_st;
    r->auth->revoked = &b->revoked;
    /* a certificate renewed in place has the same paths: always load it again */
    r->tls = r->cfg.tls && b->cfg.tls;
    restart_only(&b->cfg, &r->cfg, r->restart, sizeof(r->restart));
    r->old = b->auth;
    b->reloading = r;
    atomic_init(&r->left, b->nworkers);
    LOGF(LOG_INFO, "SIGHUP: reloading the configuration%s%s", b->cfg.file[0] ? " from " : "",
         b->cfg.file);
    for (uint32_t i = 0; i < b->nworkers; i++)
        worker_reload(b->workers[i], r);
    return 0;
}

int reload_apply(struct server *srv, struct reload *r)
{
    struct config *c = &srv->cfg;
    const struct config *n = &r->cfg;
    c->max_conns = n->max_conns;
    c->max_conns_per_ip = n->max_conns_per_ip;
    memcpy(c->allow_origin, n->allow_origin, sizeof(c->allow_origin));
    c->nallow_origin = n->nallow_origin;
    c->hello_timeout_ms = n->hello_timeout_ms;
    c->pub_idle_ms = n->pub_idle_ms;
    c->http_timeout_ms = n->http_timeout_ms;
    c->http_max_body = n->http_max_body;
    if (srv->index == 0) { /* the log's settings are process-wide (log.h): set them once */
        log_set_level(n->log_level);
        log_set_format(n->log_format);
        if (n->log_rate != c->log_rate) log_set_rate(n->log_rate);
    }
    c->log_level = n->log_level;
    c->log_format = n->log_format;
    c->log_rate = n->log_rate;
    c->drain_window_ms = n->drain_window_ms;
    c->drain_deadline_ms = n->drain_deadline_ms;
    c->hub = n->hub;
    srv->hub.cfg = n->hub;
    session_reload(&srv->session, r->auth);
    if (r->tls) {
        char err[512];
        if (tcp_reload_tls(srv->tcp, n->tls_cert, n->tls_key, err, sizeof(err)) < 0 ||
            http_reload_tls(srv->http, n->tls_cert, n->tls_key, err, sizeof(err)) < 0 ||
            ws_reload_tls(srv->ws, n->tls_cert, n->tls_key, err, sizeof(err)) < 0)
            LOGF(LOG_ERROR, "worker %u: TLS certificate not reloaded: %s", srv->index, err);
    }
    hub_flush(&srv->hub); /* what session_reload queued (unsubscribes, closes) */
    return atomic_fetch_sub(&r->left, 1) == 1;
}

void reload_finish(struct broker *b, struct reload *r)
{
    /* The running configuration's settings are the new ones (the first struct config keeps
     * the strings the command line gave; the new strings replace the old ones'). */
    struct config_blk *old_kept = b->cfg.kept;
    char file[sizeof(b->cfg.file)];
    memcpy(file, b->cfg.file, sizeof(file));
    b->cfg.max_conns = r->cfg.max_conns;
    b->cfg.max_conns_per_ip = r->cfg.max_conns_per_ip;
    b->cfg.log_level = r->cfg.log_level;
    b->cfg.log_format = r->cfg.log_format;
    b->cfg.log_rate = r->cfg.log_rate;
    b->cfg.hub = r->cfg.hub;
    b->cfg.auth = r->cfg.auth;
    b->cfg.kept = r->cfg.kept;
    r->cfg.kept = old_kept;
    b->auth = r->auth;
    revoke_set_keep(&b->revoked, r->cfg.auth.revoke_keep_s);
    auth_free(r->old);
    free(r->old);
    config_free(&r->cfg);
    stat_add(&b->reloads_ok, 1);
    if (r->restart[0])
        LOGF(LOG_WARN,
             "SIGHUP: reloaded; changed settings that only a restart applies kept their running "
             "values: %s",
             r->restart);
    else
        LOGF(LOG_INFO, "SIGHUP: reloaded%s%s", file[0] ? " " : "", file);
    free(r);
    b->reloading = NULL;
    if (b->reload_again) {
        b->reload_again = 0;
        reload_begin(b);
    }
}

void reload_abandon(struct broker *b)
{
    struct reload *r = b->reloading;
    if (!r) return;
    b->reloading = NULL;
    auth_free(r->auth);
    free(r->auth);
    config_free(&r->cfg);
    free(r);
}
