/* config: the broker's settings, from built-in defaults and command-line flags (nudged --help). */
#ifndef NUDGE_CONFIG_H
#define NUDGE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "auth.h"
#include "engine.h"
#include "hub.h"

#define NUDGE_WORKERS_MAX 64
#define CONFIG_ORIGINS_MAX 16 /* --allow-origin values */
#define CONFIG_ORIGIN_LEN 256

struct config {
    char pub[256];   /* publisher TCP listener, HOST:PORT; default 127.0.0.1:7400 */
    char ws[256];    /* WebSocket listener; default 127.0.0.1:7401 */
    char admin[256]; /* admin HTTP listener; default 127.0.0.1:7402 */
    char http[256];  /* HTTP publish listener; default 127.0.0.1:7403; "" = off (--http off) */
    int http_given;  /* --http was on the command line (else a busy default port is skipped) */
    uint32_t http_max_body;   /* bytes of one HTTP publish body; default 65536 (413 past it) */
    uint32_t http_timeout_ms; /* an HTTP request's head and body, from its first byte (and the
                                 first request, from the accept); default 5000 */
    struct engine_config engine;
    struct hub_config hub;
    uint32_t workers;          /* worker threads; default: the number of online CPUs */
    uint32_t max_conns;        /* open connections (all transports); default 10000 */
    uint32_t max_conns_per_ip; /* open publisher + WebSocket connections from one address;
                                  0 = no bound; default 1024 */
    char allow_origin[CONFIG_ORIGINS_MAX][CONFIG_ORIGIN_LEN]; /* --allow-origin, repeatable:
                                  a WebSocket upgrade with an Origin header not listed gets 403;
                                  none listed = any origin */
    uint32_t nallow_origin;
    uint32_t hello_timeout_ms; /* accept -> WebSocket upgrade done / publisher hello; 10000 */
    uint32_t pub_idle_ms;      /* publisher silent (or mid-frame) this long is dropped; 0 = never */
    uint32_t ws_ping;          /* seconds without proof of life before a subscriber is pinged; it is
                                  dropped ws_ping / 3 (at least 1) seconds later; default 30 */
    int log_level;             /* enum log_level; default info */
    char data_dir[4096];       /* --data-dir, default "nudge-data"; "" = in memory (--memory) */
    struct store_disk disk;    /* --fsync, --fsync-ms, --disk-max, --disk-segment */
    struct auth_config auth;   /* security flags (auth.h, docs/security.md) */
    char tls_cert[4096];       /* --tls-cert PEM path; "" = no TLS */
    char tls_key[4096];        /* --tls-key PEM path (checked against the cert at start) */
    unsigned tls;              /* CONFIG_TLS_*: listeners that speak TLS (0 without a cert) */

    /* SIGTERM (docs/operations.md §Stop): WebSockets get their close (1012) spread over
     * drain_window_ms (0 = all at once; default 10000); what is still open drain_deadline_ms
     * after the signal is cut and the process exits (>= the window; default 30000). */
    uint32_t drain_window_ms;
    uint32_t drain_deadline_ms;
};

/* --tls-listeners: a comma-separated set of ws, pub, http (default all three) */
enum { CONFIG_TLS_WS = 1, CONFIG_TLS_PUB = 2, CONFIG_TLS_HTTP = 4 };

void config_default(struct config *cfg);
/* Parse argv. Returns 0 to run, 1 when --help/--version was printed to out (exit 0), or -1 with
 * a message in err (exit 2). */
int config_parse(struct config *cfg, int argc, char **argv, FILE *out, char *err, size_t errlen);

#endif
