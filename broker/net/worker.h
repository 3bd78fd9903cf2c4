/* worker: one thread with its own libuv loop, hub, session and transports (a publisher TCP
 * listener and a WebSocket listener of its own on the shared ports, SO_REUSEPORT, so the kernel
 * spreads connections). Worker 0 runs on the main thread and also serves the admin endpoint,
 * the signals and the engine's timers. */
#ifndef NUDGE_WORKER_H
#define NUDGE_WORKER_H

#include <stdint.h>

#include "server.h"

/* Allocate worker index of broker b, with its hub registered as an engine sink; pub_fd, ws_fd
 * and http_fd (-1 when --http is off) are listening sockets it takes over. NULL on failure (the
 * fds are then closed). */
struct worker *worker_new(struct broker *b, uint32_t index, int pub_fd, int ws_fd, int http_fd);
/* Start worker w's thread (index > 0). Returns 0 once its transports are up, or < 0. */
int worker_spawn(struct worker *w);
/* Worker 0: bring up the transports (and admin at admin_addr, bound address into adm) on the
 * calling thread. Returns 0 or a negative uv error. */
int worker_start_main(struct worker *w, const char *admin_addr, char *adm, size_t admlen);
/* Worker 0: run the loop until every worker stopped (SIGINT/SIGTERM), then join the others. */
void worker_run_main(struct worker *w);
/* Ask every worker to stop (any thread; worker 0 must be running its loop to act on it). */
void worker_stop_all(struct broker *b);
/* Have worker w apply reload r on its thread (any thread may ask; reload.h). */
void worker_reload(struct worker *w, struct reload *r);
/* Free a worker whose loop has ended (after every worker stopped: hubs are engine sinks). */
void worker_free(struct worker *w);
/* The worker's server context. */
struct server *worker_server(struct worker *w);

#endif
