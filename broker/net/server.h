/* server: one worker's context — its event loop, the engine it publishes into, its hub and
 * session, and its transports — and the broker (the process) that holds every worker. Transports
 * get a pointer to their worker's struct server; worker.c owns it. */
#ifndef NUDGE_SERVER_H
#define NUDGE_SERVER_H

#include <uv.h>

#include "config.h"
#include "listen.h"
#include "peers.h"
#include "engine.h"
#include "hub.h"
#include "session.h"

struct tcp;
struct ws;
struct admin;
struct http;
struct worker;
struct reload;

struct server {
    struct broker *broker;
    uint32_t index; /* worker number, 0 = the main thread's (admin, signals, engine timers) */
    uv_loop_t *loop;
    struct engine *engine;
    struct hub hub;
    struct session session;
    struct config cfg;
    struct tcp *tcp;
    struct ws *ws;
    struct http *http;    /* NULL when --http is off */
    struct admin *admin;  /* worker 0 only */
    uint64_t start_ms;    /* uv_now() at start, for uptime */
    stat_t ws_pending;    /* accepted WebSocket sockets whose upgrade is not done (ws.c) */
    stat_t tls_failures;  /* TLS handshakes that failed on the publisher listeners (tcp.c,
                             http.c) */
    stat_t http_conns;    /* open HTTP publisher connections (http.c; also hub CONN_PUB) */
    stat_t http_accepted; /* HTTP publisher connections accepted */
    int stopping;
};

/* The process: the shared engine and every worker. */
struct broker {
    struct config cfg;
    struct listen_shared pub_listen, ws_listen, http_listen; /* the workers' listeners of each
                                                                port */
    struct peers peers; /* open connections per client address (--max-conns-per-ip) */
    struct engine engine;
    struct redis *redis;       /* --engine redis://: the cluster node's link (redis.h), or NULL */
    struct auth *auth;         /* credentials and namespace rules: the running configuration's
                                  (worker 0's view; each session holds its own pointer, which a
                                  reload moves, reload.h) */
    struct auth_stats auth_st; /* auth's counters, kept across reloads */
    struct revoke revoked;     /* auth's revoked users, kept across reloads */
    int argc;                  /* the command line, read again by a reload */
    char **argv;
    struct reload *reloading; /* a reload under way (worker 0), or NULL */
    int reload_again;         /* a SIGHUP came during it */
    stat_t reloads_ok, reloads_failed;
    struct worker **workers;
    uint32_t nworkers;
};

/* Open publisher and subscriber connections over every worker (for --max-conns), WebSocket
 * handshakes in progress included: each holds a descriptor too. The admin endpoint has its own
 * small cap (admin.c) so that /stats still answers when the broker is full. Workers accept
 * concurrently, so the bound can be passed by at most nworkers - 1. */
uint64_t server_conns(const struct server *s);
/* A publisher connection (`what`, "pub" or "http", names its transport in the log) accepted on fd:
 * refused (0) over --max-conns or --max-conns-per-ip, else admitted (1) with its address counted in
 * *peer (peers_remove it when the connection ends; peer->valid is 0 when it could not be
 * counted). A refused fd is left open for the caller to close. */
int server_admit(struct server *s, int fd, const char *what, struct peer_key *peer);
/* Worker i's context (for /stats: its counters are read with stat_get). */
const struct server *server_of(const struct broker *b, uint32_t i);

#endif
