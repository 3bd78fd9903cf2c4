/* reload: SIGHUP. The broker reads its configuration again — the same command line and
 * environment, the config file as it is now — and, when all of it loads, every worker takes the
 * new settings over on its own thread without dropping a connection: credentials (token keys,
 * publisher keys, the admin token, the public and anonymous patterns), the per-connection
 * limits, the connection caps, the timeouts, the allowed origins, the log level and the TLS
 * certificate. A configuration that does not load is refused with a message and the running
 * one stays. Settings only a restart can change (listeners, workers, storage, history, message
 * sizes, coalescing windows, --ws-ping) keep their running values and are named in the log.
 * docs/operations.md §Reload. */
#ifndef NUDGE_RELOAD_H
#define NUDGE_RELOAD_H

struct broker;
struct server;
struct reload;

/* Worker 0, on SIGHUP: read and load the configuration; hand it to every worker (their
 * worker_reload). Returns 0 when handed over, 1 when a reload is under way already (another
 * follows it), -1 when refused (logged; nothing changed). */
int reload_begin(struct broker *b);
/* On srv's own thread: take r's settings over. Returns 1 when srv was the last worker to do so
 * (then reload_finish(r) must run on worker 0's thread), else 0. */
int reload_apply(struct server *srv, struct reload *r);
/* Worker 0, once every worker applied r: free what the old configuration held, log the
 * outcome, and start the next reload if a SIGHUP came meanwhile. */
void reload_finish(struct broker *b, struct reload *r);
/* At exit (every loop ended): free a reload that never finished. */
void reload_abandon(struct broker *b);

#endif
