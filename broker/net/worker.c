/* worker: see worker.h. A worker's loop runs, once per turn before it sleeps, hub_drain (hints
 * the engine released, from any thread) then hub_flush (one batched write per connection with
 * output). Other threads wake it through a uv_async when its inbox goes from empty to non-empty,
 * and to stop it.
 *
 * Drain (SIGINT/SIGTERM; docs/operations.md §Stop): worker 0 gets the signal and asks every
 * worker to stop. Each closes its listeners at once (new connections are refused) and closes its
 * WebSockets with 1012 ("restart: reconnect now") evenly over --drain-window — the k-th of N at
 * k/N of the window — so that the clients do not all reconnect to the next broker in the same
 * second. Publishers are still served meanwhile, so hints still reach the WebSockets not closed
 * yet (and are in the journal for the others' resume); at the window's end, or once no
 * subscriber is left, every publisher finishes (what it sent is acked, then it is closed:
 * conn_ops.finish). A worker finishes (destroys its lws context, the first of the two calls,
 * and lets its loop end) once its connections are gone, or at --drain-deadline, when what is
 * left is cut; worker 0 last, since the store's acks reach the others through its loop, and its
 * admin port answers /readyz 503 until then. A second signal cuts every worker at once. Worker
 * 0 then joins the others, and main frees hubs and the engine once no thread can publish. */
#include "worker.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin.h"
#include "log.h"
#include "reload.h"
#include "http.h"
#include "tcp.h"
#include "ws.h"

#define DRAIN_TICK_MS 20 /* drain: how often the next WebSockets are closed */
/* RFC 6455 "Service Restart": docs/protocol.md §WebSocket close codes */
#define CLOSE_RESTART 1012

struct worker {
    struct server srv;
    uv_loop_t loop;
    uv_prepare_t before_sleep;
    uv_async_t wake;
    uv_timer_t drain;
    uv_timer_t expiry;                 /* closes connections whose token expired (session_expire) */
    uv_timer_t tick;                   /* worker 0: engine windows and history ages */
    uv_async_t poll;                   /* worker 0: the store has finished appends (engine_poll) */
    uv_signal_t sigint, sigterm;       /* worker 0 */
    uv_signal_t sighup;                /* worker 0: reload (reload.h) */
    _Atomic(struct reload *) reload;   /* a reload for this worker to apply */
    _Atomic(struct reload *) reloaded; /* worker 0: a reload every worker applied */
    uv_thread_t thread;
    uv_sem_t started;
    int start_rc;
    int pub_fd, ws_fd, http_fd;
    atomic_int stop; /* asked to stop (by worker 0) */
    atomic_int cut;  /* a second stop signal: end the drain now */
    atomic_int done; /* finish() ran (worker 0 finishes after every other) */
    int began, finished, threaded, handles;
    uint64_t drain_start;
    uint64_t subs0;  /* subscribers open when the drain began */
    uint64_t closed; /* of them, closed by the drain so far */
    uint64_t log_ms; /* last progress line */
    int pubs_done;   /* hub_finish_pubs ran */
};

struct server *worker_server(struct worker *w)
{
    return &w->srv;
}

uint64_t server_conns(const struct server *s)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < s->broker->nworkers; i++) {
        const struct server *w = server_of(s->broker, i);
        n += stat_get(&w->hub.st.conns[CONN_PUB]) + stat_get(&w->hub.st.conns[CONN_SUB]) +
             stat_get(&w->ws_pending);
    }
    return n;
}

int server_admit(struct server *s, int fd, const char *what, struct peer_key *peer)
{
    if (server_conns(s) >= s->cfg.max_conns) {
        LOGF(s->cfg.log_level, LOG_WARN, "%s refused: %u connections open (--max-conns)", what,
             s->cfg.max_conns);
        return 0;
    }
    peers_key(fd, peer);
    int rc = peers_add(&s->broker->peers, peer, s->cfg.max_conns_per_ip);
    if (rc == -EBUSY) {
        metrics_add(&s->hub.metrics, METRICS_LIMIT_IP, 1);
        LOGF(s->cfg.log_level, LOG_DEBUG, "%s refused: --max-conns-per-ip reached", what);
        return 0;
    }
    if (rc < 0) peer->valid = 0; /* not counted (no memory): let it in, never uncount it */
    return 1;
}

const struct server *server_of(const struct broker *b, uint32_t i)
{
    return &b->workers[i]->srv;
}

struct worker *worker_new(struct broker *b, uint32_t index, int pub_fd, int ws_fd, int http_fd)
{
    struct worker *w = calloc(1, sizeof(*w));
    if (!w) goto fail;
    w->srv.broker = b;
    w->srv.index = index;
    w->srv.engine = &b->engine;
    w->srv.cfg = b->cfg;
    w->pub_fd = pub_fd;
    w->ws_fd = ws_fd;
    w->http_fd = http_fd;
    atomic_init(&w->stop, 0);
    atomic_init(&w->cut, 0);
    atomic_init(&w->done, 0);
    if (hub_init(&w->srv.hub, &b->cfg.hub, &b->engine) < 0) goto fail;
    session_init(&w->srv.session, &w->srv.hub, b->auth);
    return w;
fail:
    free(w);
    close(pub_fd);
    close(ws_fd);
    if (http_fd >= 0) close(http_fd);
    return NULL;
}

static void wake_me(void *arg)
{
    struct worker *w = arg;
    uv_async_send(&w->wake);
}

static void on_before_sleep(uv_prepare_t *p)
{
    struct worker *w = p->data;
    hub_drain(&w->srv.hub);
    hub_flush(&w->srv.hub);
}

static void on_closed(uv_handle_t *h)
{
    struct worker *w = h->data;
    w->handles--;
}

static void close_handle(struct worker *w, uv_handle_t *h)
{
    h->data = w;
    w->handles++;
    uv_close(h, on_closed);
}

static void finish(struct worker *w)
{
    if (w->finished) return;
    w->finished = 1;
    hub_own(&w->srv.hub, NULL, NULL); /* no more wakes: the async handle closes now */
    admin_stop(w->srv.admin); /* open through the drain: /readyz said 503; it frees itself */
    w->srv.admin = NULL;
    ws_destroy(w->srv.ws);
    close_handle(w, (uv_handle_t *)&w->before_sleep);
    close_handle(w, (uv_handle_t *)&w->wake);
    close_handle(w, (uv_handle_t *)&w->drain);
    close_handle(w, (uv_handle_t *)&w->expiry);
    if (w->srv.index == 0) {
        /* Closing the signal handles gives SIGINT/SIGTERM back their default action (death by
         * signal, 143) while the rest of the stop runs (joins, the journal's last commit, frees):
         * block them on this thread, as they are on every other, so a repeated stop signal waits
         * pending and the broker still exits 0. */
        sigset_t stops;
        sigemptyset(&stops);
        sigaddset(&stops, SIGINT);
        sigaddset(&stops, SIGTERM);
        sigaddset(&stops, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &stops, NULL);
        engine_on_wake(w->srv.engine, NULL, NULL); /* no more wakes: the poll handle closes */
        close_handle(w, (uv_handle_t *)&w->poll);
        close_handle(w, (uv_handle_t *)&w->tick);
        close_handle(w, (uv_handle_t *)&w->sigint);
        close_handle(w, (uv_handle_t *)&w->sigterm);
        close_handle(w, (uv_handle_t *)&w->sighup);
    }
    atomic_store(&w->done, 1);
}

static uint64_t open_conns(const struct worker *w, enum conn_role role)
{
    return stat_get(&w->srv.hub.st.conns[role]);
}

/* Close the subscribers due by `elapsed` ms into the drain: the k-th of subs0 at k/subs0 of
 * the window (all at once with a window of 0). What is queued for them is written first. */
static void spread(struct worker *w, uint64_t elapsed)
{
    struct hub *hub = &w->srv.hub;
    uint64_t win = w->srv.cfg.drain_window_ms;
    uint64_t due = win == 0 || elapsed >= win ? w->subs0 : w->subs0 * elapsed / win;
    if (w->closed >= due) return;
    hub_drain(hub);
    hub_flush(hub);
    struct conn *next;
    for (struct conn *c = hub->conns; c && w->closed < due; c = next) {
        next = c->next;
        if (c->role != CONN_SUB || c->closing) continue;
        hub_conn_close(hub, c, CLOSE_RESTART, "broker restarting: reconnect now");
        w->closed++;
    }
    if (w->closed < due) w->closed = due; /* the others left by themselves */
}

static int others_done(const struct worker *w)
{
    const struct broker *b = w->srv.broker;
    for (uint32_t i = 1; i < b->nworkers; i++)
        if (b->workers[i]->threaded && !atomic_load(&b->workers[i]->done)) return 0;
    return 1;
}

static void on_drain_tick(uv_timer_t *t)
{
    struct worker *w = t->data;
    struct server *srv = &w->srv;
    int level = srv->cfg.log_level;
    uint64_t now = uv_now(&w->loop), elapsed = now - w->drain_start;
    if (atomic_load(&w->cut) || elapsed >= srv->cfg.drain_deadline_ms) {
        uint64_t left = open_conns(w, CONN_SUB) + open_conns(w, CONN_PUB);
        if (left)
            LOGF(level, LOG_WARN, "drain: worker %u: %s after %llu ms: cutting %llu connections",
                 srv->index, atomic_load(&w->cut) ? "second stop signal" : "--drain-deadline",
                 (unsigned long long)elapsed, (unsigned long long)left);
        hub_close_all(&srv->hub, CLOSE_RESTART, "broker restarting: reconnect now");
        if (srv->index == 0)
            LOGF(level, LOG_INFO, "drain: ended after %llu ms", (unsigned long long)elapsed);
        finish(w);
        return;
    }
    spread(w, elapsed);
    if (!w->pubs_done && (elapsed >= srv->cfg.drain_window_ms || open_conns(w, CONN_SUB) == 0)) {
        w->pubs_done = 1;
        hub_finish_pubs(&srv->hub);
    }
    if (open_conns(w, CONN_SUB) == 0 && open_conns(w, CONN_PUB) == 0 &&
        (srv->index != 0 || others_done(w))) {
        if (srv->index == 0)
            LOGF(level, LOG_INFO, "drain: done in %llu ms: every connection closed",
                 (unsigned long long)elapsed);
        finish(w);
        return;
    }
    if (srv->index == 0 && now - w->log_ms >= 1000) {
        w->log_ms = now;
        LOGF(level, LOG_INFO, "drain: %llu ms in: %llu connections still open",
             (unsigned long long)elapsed, (unsigned long long)server_conns(srv));
    }
}

/* Stop accepting on every listener and start closing the WebSockets; the drain timer does the
 * rest (top of file). The admin port stays open. */
static void begin_stop(struct worker *w)
{
    struct server *srv = &w->srv;
    if (w->began) return;
    w->began = 1;
    srv->stopping = 1;
    tcp_stop(srv->tcp);
    http_stop(srv->http);
    ws_stop_listening(srv->ws);
    w->subs0 = open_conns(w, CONN_SUB);
    w->drain_start = w->log_ms = uv_now(&w->loop);
    spread(w, 0);
    hub_flush(&srv->hub);
    uv_timer_start(&w->drain, on_drain_tick, DRAIN_TICK_MS, DRAIN_TICK_MS);
}

static void on_expiry(uv_timer_t *t)
{
    struct worker *w = t->data;
    if (session_expire(&w->srv.session)) hub_flush(&w->srv.hub);
}

void worker_reload(struct worker *w, struct reload *r)
{
    atomic_store(&w->reload, r);
    uv_async_send(&w->wake);
}

static void on_wake(uv_async_t *a)
{
    struct worker *w = a->data;
    struct broker *b = w->srv.broker;
    struct reload *r = atomic_exchange(&w->reload, NULL);
    if (r && reload_apply(&w->srv, r)) {
        struct worker *w0 = b->workers[0];
        atomic_store(&w0->reloaded, r);
        uv_async_send(&w0->wake);
    }
    if (w->srv.index == 0 && (r = atomic_exchange(&w->reloaded, NULL))) reload_finish(b, r);
    if (atomic_load(&w->stop)) begin_stop(w);
    hub_drain(&w->srv.hub);
    hub_flush(&w->srv.hub);
}

/* The store's thread: appends are on disk. */
static void wake_poll(void *arg)
{
    struct worker *w = arg;
    uv_async_send(&w->poll);
}

static void on_poll(uv_async_t *a)
{
    struct worker *w = a->data;
    struct engine *e = w->srv.engine;
    engine_lock(e);
    engine_poll(e, 0); /* releases hints to every hub and posts acks to the publishers' hubs */
    engine_unlock(e);
    hub_drain(&w->srv.hub);
    hub_flush(&w->srv.hub);
}

static void on_tick(uv_timer_t *t)
{
    struct worker *w = t->data;
    struct engine *e = w->srv.engine;
    engine_lock(e);
    uint64_t next = engine_tick(e, uv_now(&w->loop));
    engine_unlock(e);
    uv_timer_start(t, on_tick, next, 0);
}

void worker_stop_all(struct broker *b)
{
    for (uint32_t i = 0; i < b->nworkers; i++) {
        atomic_store(&b->workers[i]->stop, 1);
        if (b->workers[i]->threaded || i == 0) uv_async_send(&b->workers[i]->wake);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct worker *w = s->data;
    struct broker *b = w->srv.broker;
    const char *name = signum == SIGINT ? "SIGINT" : "SIGTERM";
    if (w->began) {
        LOGF(w->srv.cfg.log_level, LOG_INFO, "%s again: cutting the drain short", name);
        for (uint32_t i = 0; i < b->nworkers; i++)
            atomic_store(&b->workers[i]->cut, 1); /* seen at each worker's next drain tick */
        return;
    }
    LOGF(w->srv.cfg.log_level, LOG_INFO,
         "%s: draining %llu connections: listeners closed; WebSockets closed with 1012 over "
         "%u ms (--drain-window), publishers finished at its end; exit by %u ms "
         "(--drain-deadline); a second signal cuts it short",
         name, (unsigned long long)server_conns(&w->srv), w->srv.cfg.drain_window_ms,
         w->srv.cfg.drain_deadline_ms);
    worker_stop_all(b);
    begin_stop(w);
}

static void on_sighup(uv_signal_t *s, int signum)
{
    struct worker *w = s->data;
    (void)signum;
    if (!w->began) reload_begin(w->srv.broker);
}

/* Loop, hub ownership, loop handles and transports, on the calling thread. */
static int start_common(struct worker *w)
{
    struct server *srv = &w->srv;
    int rc;
    if ((rc = uv_loop_init(&w->loop)) < 0) return rc;
    srv->loop = &w->loop;
    srv->start_ms = uv_now(&w->loop);
    uv_async_init(&w->loop, &w->wake, on_wake);
    uv_prepare_init(&w->loop, &w->before_sleep);
    uv_timer_init(&w->loop, &w->drain);
    uv_timer_init(&w->loop, &w->expiry);
    w->wake.data = w->before_sleep.data = w->drain.data = w->expiry.data = w;
    if (token_keys_count(srv->session.auth->keys))
        uv_timer_start(&w->expiry, on_expiry, 1000, 1000);
    hub_own(&srv->hub, wake_me, w);
    uv_prepare_start(&w->before_sleep, on_before_sleep);
    int pfd = w->pub_fd, wfd = w->ws_fd, hfd = w->http_fd;
    w->pub_fd = w->ws_fd = w->http_fd = -1;
    if ((rc = tcp_start(srv, pfd, &srv->tcp)) < 0) {
        close(wfd);
        if (hfd >= 0) close(hfd);
        return rc;
    }
    if (hfd >= 0 && (rc = http_start(srv, hfd, &srv->http)) < 0) {
        close(wfd);
        return rc;
    }
    return ws_start(srv, wfd, &srv->ws);
}

/* Run the loop to its end and release what lives on this thread. */
static void run_and_close(struct worker *w)
{
    uv_run(&w->loop, UV_RUN_DEFAULT);
    ws_free(w->srv.ws);
    w->srv.ws = NULL;
    int rc = uv_loop_close(&w->loop);
    if (rc != 0)
        LOGF(w->srv.cfg.log_level, LOG_WARN, "worker %u: loop closed with handles open: %s",
             w->srv.index, uv_strerror(rc));
}

/* A transport failed to start: stop what did, and let the loop end. */
static void abort_start(struct worker *w)
{
    w->srv.stopping = 1;
    w->began = 1;
    tcp_stop(w->srv.tcp);
    http_stop(w->srv.http);
    finish(w);
}

static void thread_main(void *arg)
{
    struct worker *w = arg;
    w->start_rc = start_common(w);
    if (w->start_rc < 0) abort_start(w);
    uv_sem_post(&w->started);
    run_and_close(w);
}

int worker_spawn(struct worker *w)
{
    if (uv_sem_init(&w->started, 0) != 0) return -ENOMEM;
    int rc = uv_thread_create(&w->thread, thread_main, w);
    if (rc < 0) {
        uv_sem_destroy(&w->started);
        return rc;
    }
    w->threaded = 1;
    uv_sem_wait(&w->started);
    uv_sem_destroy(&w->started);
    return w->start_rc;
}

int worker_start_main(struct worker *w, const char *admin_addr, char *adm, size_t admlen)
{
    struct server *srv = &w->srv;
    int rc = start_common(w);
    if (rc == 0) rc = admin_start(srv, admin_addr, &srv->admin, adm, admlen);
    uv_timer_init(&w->loop, &w->tick);
    uv_signal_init(&w->loop, &w->sigint);
    uv_signal_init(&w->loop, &w->sigterm);
    uv_signal_init(&w->loop, &w->sighup);
    uv_async_init(&w->loop, &w->poll, on_poll);
    w->tick.data = w->sigint.data = w->sigterm.data = w->sighup.data = w->poll.data = w;
    engine_on_wake(srv->engine, wake_poll, w);
    if (rc < 0) {
        abort_start(w);
        return rc;
    }
    uv_signal_start(&w->sigint, on_signal, SIGINT);
    uv_signal_start(&w->sigterm, on_signal, SIGTERM);
    uv_signal_start(&w->sighup, on_sighup, SIGHUP);
    uv_timer_start(&w->tick, on_tick, 10, 0);
    return 0;
}

void worker_run_main(struct worker *w)
{
    struct broker *b = w->srv.broker;
    run_and_close(w);
    for (uint32_t i = 1; i < b->nworkers; i++)
        if (b->workers[i] && b->workers[i]->threaded) uv_thread_join(&b->workers[i]->thread);
}

void worker_free(struct worker *w)
{
    if (!w) return;
    if (w->pub_fd >= 0) close(w->pub_fd);
    if (w->ws_fd >= 0) close(w->ws_fd);
    if (w->http_fd >= 0) close(w->http_fd);
    session_close(&w->srv.session);
    hub_close(&w->srv.hub);
    free(w);
}
