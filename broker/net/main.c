/* main: nudged's entry point. Parses flags, brings up the engine, binds the shared listening
 * sockets and starts --workers workers (worker 0 on this thread, the others on their own;
 * worker.c), prints the ready line, and on SIGINT/SIGTERM drains (worker.c): listeners close,
 * WebSockets get 1012 spread over --drain-window, publishers finish, lws is destroyed in its two
 * calls around the last uv_run, threads are joined and the process exits 0 with every resource
 * freed (make valgrind checks that). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "cluster.h"
#include "config.h"
#include "engine.h"
#include "log.h"
#include "listen.h"
#include "redis.h"
#include "reload.h"
#include "server.h"
#include "worker.h"

static void raise_nofile(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            LOGF(LOG_DEBUG, "open-files limit raised to %llu", (unsigned long long)rl.rlim_cur);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (uint64_t)cfg->max_conns + 64 > rl.rlim_cur)
        LOGF(LOG_WARN,
             "--max-conns %u exceeds the open-files limit %llu (minus 64 for the broker): "
             "connections beyond it will be refused by the kernel",
             cfg->max_conns, (unsigned long long)rl.rlim_cur);
}

/* A cluster node's link: what is on its way completes or fails, then the link stops, so nothing
 * reaches the hubs once they are freed. */
static void stop_cluster(struct broker *b)
{
    if (!b->redis) return;
    engine_lock(&b->engine);
    engine_poll(&b->engine, 1);
    engine_unlock(&b->engine);
    redis_stop(b->redis);
    redis_free(b->redis);
    b->redis = NULL;
}

/* The running credentials, and those of a reload that never finished (loops have ended). */
static void free_auth(struct broker *b)
{
    reload_abandon(b);
    if (b->auth) auth_free(b->auth);
    free(b->auth);
    b->auth = NULL;
    revoke_free(&b->revoked);
}

/* A cluster node: the engine on the Redis link, and no client served before the first
 * synchronisation gave the node Redis's epoch and every position (bounded wait). Returns 0 or the
 * exit status. */
static int start_cluster(struct broker *b, const uint8_t seed[32])
{
    struct cluster_link link;
    const struct redis_config *rc = &b->cfg.redis;
    if (!(b->redis = redis_new(rc, &link)) ||
        engine_init_cluster(&b->engine, &b->cfg.engine, seed, &link) < 0) {
        redis_free(b->redis);
        b->redis = NULL;
        fprintf(stderr, "nudged: out of memory\n");
        return 1;
    }
    int err = redis_start(b->redis, b->engine.store);
    uint64_t waited = 0, limit = 2000 + 3 * (uint64_t)rc->timeout_ms;
    for (int ready = 0; err == 0 && !ready; waited += 5) {
        engine_lock(&b->engine);
        engine_poll(&b->engine, 0);
        ready = cluster_ready(b->engine.store);
        engine_unlock(&b->engine);
        if (!ready && waited >= limit) err = -ETIMEDOUT;
        if (!ready && err == 0) uv_sleep(5);
    }
    if (err < 0) {
        fprintf(stderr, "nudged: --engine redis://%s:%u: %s\n", rc->host, rc->port,
                err == -ETIMEDOUT ? "no synchronisation with Redis (is it running? see the log)"
                                  : uv_strerror(err));
        stop_cluster(b);
        engine_close(&b->engine);
        return 1;
    }
    const struct store_stats *st = &b->engine.store->st;
    LOGF(LOG_INFO, "cluster on redis %s:%u (prefix %s): epoch %s, %llu topics read in %llu ms",
         rc->host, rc->port, rc->prefix, engine_epoch(&b->engine),
         (unsigned long long)st->positions, (unsigned long long)waited);
    return 0;
}

int main(int argc, char **argv)
{
    static struct broker b; /* zeroed; lives for the whole process, not shared state */
    struct worker *w0 = NULL;
    char err[1024], pub[300] = "", ws[300] = "", adm[300] = "", http[300] = "";
    int rc, pubfds[NUDGE_WORKERS_MAX], wsfds[NUDGE_WORKERS_MAX], httpfds[NUDGE_WORKERS_MAX];
    const char *what = "pub";

    config_default(&b.cfg);
    rc = config_parse(&b.cfg, argc, argv, environ, stdout, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0) fprintf(stderr, "nudged: %s\n", err);
        config_free(&b.cfg);
        return rc < 0 ? 2 : 0;
    }
    b.argc = argc;
    b.argv = argv;
    log_set_level(b.cfg.log_level);
    log_set_format(b.cfg.log_format);
    log_set_rate(b.cfg.log_rate);
    if (!(b.auth = calloc(1, sizeof(*b.auth)))) {
        fprintf(stderr, "nudged: out of memory\n");
        config_free(&b.cfg);
        return 1;
    }
    if (auth_load(b.auth, &b.cfg.auth, err, sizeof(err)) < 0 ||
        config_exposure(&b.cfg, b.auth, 1, err, sizeof(err)) < 0) {
        fprintf(stderr, "nudged: %s\n", err);
        free_auth(&b);
        config_free(&b.cfg);
        return 2;
    }
    b.auth->st = &b.auth_st; /* counters and revocations that outlive a reload */
    if (revoke_init(&b.revoked, b.cfg.auth.revoke_keep_s) < 0) {
        fprintf(stderr, "nudged: out of memory\n");
        free_auth(&b);
        config_free(&b.cfg);
        return 1;
    }
    b.auth->revoked = &b.revoked;
    if (b.cfg.check_only) {
        /* what a start would check before it binds and opens the data directory */
        printf("%s: configuration ok\n", b.cfg.file);
        free_auth(&b);
        config_free(&b.cfg);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    /* SIGINT/SIGTERM stay pending until worker 0 handles them: a stop asked for during start-up
     * (before the handlers exist) is then a clean drain, not a death by signal. Threads inherit
     * the mask, so the signals only ever reach the main thread, once it unblocks them. */
    sigset_t stops;
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGHUP); /* reload: worker 0's too */
    pthread_sigmask(SIG_BLOCK, &stops, NULL);
    raise_nofile(&b.cfg);

    uint8_t seed[32];
    if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
        fprintf(stderr, "nudged: getrandom: %s\n", strerror(errno));
        free_auth(&b);
        config_free(&b.cfg);
        return 1;
    }
    if (b.cfg.cluster) {
        if (b.cfg.data_dir[0])
            LOGF(LOG_WARN,
                 "--data-dir %s is not used with --engine redis:// (Redis keeps the "
                 "positions; docs/cluster.md)",
                 b.cfg.data_dir);
        b.cfg.data_dir[0] = '\0';
        if ((rc = start_cluster(&b, seed)) != 0) {
            free_auth(&b);
            config_free(&b.cfg);
            return rc;
        }
    } else if (b.cfg.data_dir[0]) {
        b.cfg.disk.dir = b.cfg.data_dir;
        if ((rc = engine_init_disk(&b.engine, &b.cfg.engine, seed, &b.cfg.disk)) < 0) {
            fprintf(stderr, "nudged: --data-dir %s: %s\n", b.cfg.data_dir,
                    rc == -EBUSY ? "in use by another nudged" : strerror(-rc));
            free_auth(&b);
            config_free(&b.cfg);
            return 1;
        }
        const struct store_stats *st = &b.engine.store->st;
        LOGF(LOG_INFO, "data dir %s: %s epoch, %llu topics recovered in %llu ms%s", b.cfg.data_dir,
             st->new_epoch ? "new" : "same", (unsigned long long)st->recovered,
             (unsigned long long)st->recovery_ms, st->cut_bytes ? " (a corrupt tail was cut)" : "");
    } else if (engine_init(&b.engine, &b.cfg.engine, seed) < 0) {
        fprintf(stderr, "nudged: out of memory\n");
        free_auth(&b);
        config_free(&b.cfg);
        return 1;
    }
    uint32_t n = b.cfg.workers;
    if ((rc = listen_open_group(b.cfg.pub, 511, (int)n, pubfds, pub, sizeof(pub))) < 0) goto fail;
    what = "ws";
    if ((rc = listen_open_group(b.cfg.ws, 511, (int)n, wsfds, ws, sizeof(ws))) < 0) {
        for (uint32_t i = 0; i < n; i++)
            close(pubfds[i]);
        goto fail;
    }
    what = "http";
    for (uint32_t i = 0; i < n; i++)
        httpfds[i] = -1;
    if (b.cfg.http[0] &&
        (rc = listen_open_group(b.cfg.http, 511, (int)n, httpfds, http, sizeof(http))) < 0 &&
        !b.cfg.http_given) {
        /* The default port of a listener newer than the others: brokers and scripts that give
         * --pub, --ws and --admin for several brokers on one machine must not stop starting. */
        LOGF(LOG_WARN,
             "HTTP publish listener not started: the default %s: %s (give --http ADDR, or "
             "--http off)",
             b.cfg.http, uv_strerror(rc));
        b.cfg.http[0] = '\0';
        http[0] = '\0';
        for (uint32_t i = 0; i < n; i++)
            httpfds[i] = -1;
        rc = 0;
    }
    if (rc < 0) {
        for (uint32_t i = 0; i < n; i++) {
            close(pubfds[i]);
            close(wsfds[i]);
        }
        goto fail;
    }
    b.workers = calloc(n, sizeof(*b.workers));
    for (uint32_t i = 0; i < n; i++) {
        if (!b.workers || !(b.workers[i] = worker_new(&b, i, pubfds[i], wsfds[i], httpfds[i]))) {
            for (uint32_t j = b.workers ? i + 1 : 0; j < n; j++) {
                close(pubfds[j]);
                close(wsfds[j]);
                if (httpfds[j] >= 0) close(httpfds[j]);
            }
            fprintf(stderr, "nudged: out of memory\n");
            goto out;
        }
        b.nworkers = i + 1;
    }
    w0 = b.workers[0];
    what = "admin";
    if ((rc = worker_start_main(w0, b.cfg.admin, adm, sizeof(adm))) < 0) {
        worker_run_main(w0);
        goto fail;
    }
    for (uint32_t i = 1; i < n; i++) {
        if ((rc = worker_spawn(b.workers[i])) < 0) {
            fprintf(stderr, "nudged: worker %u failed to start: %s\n", i, uv_strerror(rc));
            worker_stop_all(&b);
            worker_run_main(w0);
            goto out;
        }
    }
    /* http= last: scripts parse the first three with patterns that must keep matching */
    printf("nudged ready pub=%s ws=%s admin=%s%s%s\n", pub, ws, adm, http[0] ? " http=" : "", http);
    fflush(stdout);
    LOGF(LOG_INFO, "epoch %s, pid %d, %u worker%s", engine_epoch(&b.engine), (int)getpid(), n,
         n == 1 ? "" : "s");
    pthread_sigmask(SIG_UNBLOCK, &stops, NULL); /* a pending stop is handled now */
    worker_run_main(w0);
    /* No thread publishes now: complete what the store still has on its way (its acks go to
     * connections already gone) before the hubs it releases hints to are freed. */
    engine_lock(&b.engine);
    engine_poll(&b.engine, 1);
    engine_unlock(&b.engine);
    stop_cluster(&b);
    for (uint32_t i = 0; i < b.nworkers; i++)
        worker_free(b.workers[i]);
    free(b.workers);
    engine_close(&b.engine);
    free_auth(&b);
    LOGF(LOG_INFO, "stopped");
    config_free(&b.cfg);
    return 0;

fail:
    fprintf(stderr, "nudged: cannot listen on --%s %s: %s\n", what,
            !strcmp(what, "pub")    ? b.cfg.pub
            : !strcmp(what, "ws")   ? b.cfg.ws
            : !strcmp(what, "http") ? b.cfg.http
                                    : b.cfg.admin,
            uv_strerror(rc));
out:
    engine_lock(&b.engine);
    engine_poll(&b.engine, 1);
    engine_unlock(&b.engine);
    stop_cluster(&b);
    for (uint32_t i = 0; i < b.nworkers; i++)
        worker_free(b.workers[i]);
    free(b.workers);
    engine_close(&b.engine);
    free_auth(&b);
    config_free(&b.cfg);
    return 1;
}
