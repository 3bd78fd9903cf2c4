/* config: the broker's settings, from built-in defaults, a config file, NUDGE_* environment
 * variables and command-line flags, each overriding the one before (nudged --help,
 * docs/operations.md §Configuration). */
#ifndef NUDGE_CONFIG_H
#define NUDGE_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "auth.h"
#include "engine.h"
#include "hub.h"
#include "redis.h"

#define NUDGE_WORKERS_MAX 64
#define CONFIG_ORIGINS_MAX 16 /* --allow-origin values */
#define CONFIG_ORIGIN_LEN 256

/* A string a config keeps (a file's values, the environment's): freed by config_free. */
struct config_blk {
    struct config_blk *next;
    char data[];
};

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
    uint32_t ws_sndbuf;        /* SO_SNDBUF of each WebSocket (Linux doubles it); 0 = the kernel's
                                  autotuning; default 131072 */
    int log_level;             /* enum log_level; default info */
    int log_format;            /* enum log_format (--log-format); default text */
    uint32_t log_rate;         /* --log-rate: event lines a second per kind; 0 = no limit; 10 */
    char data_dir[4096];       /* --data-dir, default "nudge-data"; "" = in memory (--memory) */
    struct store_disk disk;    /* --fsync, --fsync-ms, --disk-max, --disk-segment */
    int data_dir_given;        /* --data-dir was given (flag, file or environment) */
    int cluster;               /* --engine redis://...: a node of a cluster (docs/cluster.md) */
    struct redis_config redis; /* its Redis: --engine, --redis-prefix, --redis-timeout */
    struct auth_config auth;   /* security flags (auth.h, docs/security.md) */
    char tls_cert[4096];       /* --tls-cert PEM path; "" = no TLS */
    char tls_key[4096];        /* --tls-key PEM path (checked against the cert at start) */
    unsigned tls;              /* CONFIG_TLS_*: listeners that speak TLS (0 without a cert) */
    char file[4096];           /* --config / --check-config / NUDGE_CONFIG; "" = none */
    int check_only;            /* --check-config: check, print, exit */
    struct config_blk *kept;   /* owned strings (auth_config points into them); a copy of the
                                  struct shares them: only the original is config_free'd */

    /* SIGTERM (docs/operations.md §Stop): WebSockets get their close (1012) spread over
     * drain_window_ms (0 = all at once; default 10000); what is still open drain_deadline_ms
     * after the signal is cut and the process exits (>= the window; default 30000). */
    uint32_t drain_window_ms;
    uint32_t drain_deadline_ms;
};

/* --tls-listeners: a comma-separated set of ws, pub, http (default all three) */
enum { CONFIG_TLS_WS = 1, CONFIG_TLS_PUB = 2, CONFIG_TLS_HTTP = 4 };

void config_default(struct config *cfg);
/* Read the config file (--config FILE, --check-config FILE, else $NUDGE_CONFIG), the NUDGE_*
 * variables of envp (NULL = none) and the flags of argv, in that order of precedence (a later
 * source overrides a single setting, and replaces a list setting's earlier values). Returns 0
 * to run, 1 when --help/--version was printed to out (exit 0), or -1 with a message in err that
 * starts with where the bad setting came from ("FILE:LINE: ", "NUDGE_X: ") (exit 2). cfg keeps
 * strings from argv (which must outlive it) and its own (config_free), also after an error. */
int config_parse(struct config *cfg, int argc, char **argv, char **envp, FILE *out, char *err,
                 size_t errlen);
/* Free the strings cfg keeps (not cfg itself). */
void config_free(struct config *cfg);
/* Secure defaults (docs/security.md): a listener others can reach needs its secrets; without
 * any, the broker is in development mode, and says so (when warn). Returns 0, or -1 with a
 * message. */
int config_exposure(const struct config *cfg, const struct auth *a, int warn, char *err,
                    size_t errlen);
/* Is name (a flag without its "--") a setting a config file or NUDGE_* variable may give? */
int config_known(const char *name);

#endif
