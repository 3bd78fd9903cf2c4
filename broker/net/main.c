/* main: nudged's entry point. Parses flags, brings up the engine and one worker (loop + hub +
 * session + transports),
 * prints the ready line, and on SIGINT/SIGTERM drains: listeners close, every WebSocket gets a
 * 1001 close frame, then lws is destroyed in its two calls around the last uv_run and the
 * process exits 0 with every resource freed (make valgrind checks that). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "admin.h"
#include "config.h"
#include "engine.h"
#include "hub.h"
#include "session.h"
#include "log.h"
#include "server.h"
#include "tcp.h"
#include "ws.h"

#define DRAIN_MS 2000 /* longest wait for WebSocket close handshakes at shutdown */

struct main_ctx {
    struct engine engine;
    struct server srv;
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    uv_prepare_t before_sleep;
    uv_timer_t drain;
    uv_timer_t tick;
    uint64_t drain_start;
    int finished;
};

static void on_before_sleep(uv_prepare_t *p)
{
    struct main_ctx *m = p->data;
    hub_flush(&m->srv.hub);
}

static void on_tick(uv_timer_t *t)
{
    struct main_ctx *m = t->data;
    uint64_t next = engine_tick(&m->engine, uv_now(&m->loop));
    hub_flush(&m->srv.hub);
    uv_timer_start(t, on_tick, next, 0);
}

static void finish(struct main_ctx *m)
{
    if (m->finished) return;
    m->finished = 1;
    ws_destroy(m->srv.ws);
    uv_close((uv_handle_t *)&m->sigint, NULL);
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->before_sleep, NULL);
    uv_close((uv_handle_t *)&m->drain, NULL);
    uv_close((uv_handle_t *)&m->tick, NULL);
}

static void on_drain_tick(uv_timer_t *t)
{
    struct main_ctx *m = t->data;
    struct hub_stats *st = &m->srv.hub.st;
    if (st->conns[CONN_SUB] == 0 || uv_now(&m->loop) - m->drain_start >= DRAIN_MS) finish(m);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct main_ctx *m = s->data;
    struct server *srv = &m->srv;
    if (srv->stopping) return;
    srv->stopping = 1;
    LOGF(srv->cfg.log_level, LOG_INFO, "%s: shutting down",
         signum == SIGINT ? "SIGINT" : "SIGTERM");
    tcp_stop(srv->tcp);
    admin_stop(srv->admin);
    ws_stop_listening(srv->ws);
    hub_close_all(&srv->hub, 1001, "broker shutting down");
    hub_flush(&srv->hub);
    m->drain_start = uv_now(&m->loop);
    uv_timer_start(&m->drain, on_drain_tick, 0, 20);
}

static void raise_nofile(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            LOGF(cfg->log_level, LOG_DEBUG, "open-files limit raised to %llu",
                 (unsigned long long)rl.rlim_cur);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (uint64_t)cfg->max_conns + 64 > rl.rlim_cur)
        LOGF(cfg->log_level, LOG_WARN,
             "--max-conns %u exceeds the open-files limit %llu (minus 64 for the broker): "
             "connections beyond it will be refused by the kernel",
             cfg->max_conns, (unsigned long long)rl.rlim_cur);
}

int main(int argc, char **argv)
{
    static struct main_ctx m; /* zeroed; lives for the whole process, not shared state */
    struct server *srv = &m.srv;
    char err[256], pub[300] = "", ws[300] = "", adm[300] = "";
    int rc;

    config_default(&srv->cfg);
    rc = config_parse(&srv->cfg, argc, argv, stdout, err, sizeof(err));
    if (rc == 1) return 0;
    if (rc < 0) {
        fprintf(stderr, "nudged: %s\n", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(&srv->cfg);

    uint8_t seed[32];
    if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
        fprintf(stderr, "nudged: getrandom: %s\n", strerror(errno));
        return 1;
    }
    if (uv_loop_init(&m.loop) != 0) return 1;
    srv->loop = &m.loop;
    srv->start_ms = uv_now(&m.loop);
    srv->engine = &m.engine;
    if (engine_init(&m.engine, &srv->cfg.engine, seed) < 0 ||
        hub_init(&srv->hub, &srv->cfg.hub, &m.engine) < 0 ||
        session_init(&srv->session, &srv->hub) < 0) {
        fprintf(stderr, "nudged: out of memory\n");
        return 1;
    }
    uv_signal_init(&m.loop, &m.sigint);
    uv_signal_init(&m.loop, &m.sigterm);
    uv_prepare_init(&m.loop, &m.before_sleep);
    uv_timer_init(&m.loop, &m.drain);
    uv_timer_init(&m.loop, &m.tick);
    m.sigint.data = m.sigterm.data = m.before_sleep.data = m.drain.data = m.tick.data = &m;

    const char *what = "pub";
    if ((rc = tcp_start(srv, srv->cfg.pub, &srv->tcp, pub, sizeof(pub))) < 0) goto fail;
    what = "ws";
    if ((rc = ws_start(srv, srv->cfg.ws, &srv->ws, ws, sizeof(ws))) < 0) goto fail;
    what = "admin";
    if ((rc = admin_start(srv, srv->cfg.admin, &srv->admin, adm, sizeof(adm))) < 0) goto fail;

    uv_signal_start(&m.sigint, on_signal, SIGINT);
    uv_signal_start(&m.sigterm, on_signal, SIGTERM);
    uv_prepare_start(&m.before_sleep, on_before_sleep);
    uv_timer_start(&m.tick, on_tick, 10, 0);
    printf("nudged ready pub=%s ws=%s admin=%s\n", pub, ws, adm);
    fflush(stdout);
    LOGF(srv->cfg.log_level, LOG_INFO, "epoch %s, pid %d", engine_epoch(&m.engine), (int)getpid());

    uv_run(&m.loop, UV_RUN_DEFAULT);
    ws_free(srv->ws);
    session_close(&srv->session);
    hub_close(&srv->hub);
    engine_close(&m.engine);
    rc = uv_loop_close(&m.loop);
    if (rc != 0)
        LOGF(srv->cfg.log_level, LOG_WARN, "loop closed with handles open: %s", uv_strerror(rc));
    LOGF(srv->cfg.log_level, LOG_INFO, "stopped");
    return 0;

fail:
    fprintf(stderr, "nudged: cannot listen on --%s %s: %s\n", what,
            !strcmp(what, "pub")  ? srv->cfg.pub
            : !strcmp(what, "ws") ? srv->cfg.ws
                                  : srv->cfg.admin,
            uv_strerror(rc));
    srv->stopping = 1;
    tcp_stop(srv->tcp);
    admin_stop(srv->admin);
    m.finished = 0;
    finish(&m);
    uv_run(&m.loop, UV_RUN_DEFAULT);
    ws_free(srv->ws);
    session_close(&srv->session);
    hub_close(&srv->hub);
    engine_close(&m.engine);
    uv_loop_close(&m.loop);
    return 1;
}
