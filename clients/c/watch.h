/* watch: the CLI's WebSocket subscriber, shared by `nudge sub` (subscribe.c) and `nudge tail`
 * (tail.c): connect, hello, sub, reassemble and decode what the broker sends, answer its pings,
 * and, for tail, reconnect and resume after a lost connection. What to show is the caller's:
 * every hint and reset goes to its on_msg; the connection's own story (connected, subscribed,
 * errors, lost, reconnecting, caught up) is written to stderr here as "nudge: ..." lines.
 * Internal to the CLI. */
#ifndef NUDGE_CLI_WATCH_H
#define NUDGE_CLI_WATCH_H

#include <stdint.h>

#include <libwebsockets.h>

#include "sub.h"
#include "wire.h"

#define WATCH_URL "ws://127.0.0.1:7401/" /* unless --url or $NUDGE_URL */

enum {
    WATCH_TXQ = 16, /* outgoing messages waiting for WRITEABLE */
};

struct watch;
/* A hint or a reset from the broker, after the watch noted the position it gives. m is valid
 * during the call only. May call watch_finish. */
typedef void watch_msg_fn(struct watch *w, const struct sub_msg *m);
/* --timeout expired. May call watch_finish; NULL = finish with exit 0. */
typedef void watch_timeout_fn(struct watch *w);

struct watch {
    /* Set by the caller (on a zeroed struct) before watch_run; nothing here is owned. */
    const char *cmd; /* the subcommand, for messages: "sub", "tail" */
    const char *url; /* ws:// or wss:// */
    enum sub_fmt fmt;
    const char *token;  /* sent in hello, or NULL */
    const char *cafile; /* or NULL */
    int tls;            /* --tls or --cafile */
    char *const *topics;
    uint32_t ntopics; /* 1..WIRE_TOPICS_MAX */
    int timeout_ms;   /* 0 = none */
    int reconnect;    /* 1: retry a refused or lost connection, then resume from the positions
                         seen (tail); 0: a lost connection ends with exit 1 (sub) */
    watch_msg_fn *on_msg;
    watch_timeout_fn *on_timeout;
    void *user;

    /* Read by on_msg. */
    int catching_up; /* 1 from a resumed sub until the pong that follows its answers: hints
                        and resets meanwhile are the catch-up, not live */
    int exit_code;

    /* Internal. */
    struct lws_context *ctx;
    struct lws *wsi; /* once ESTABLISHED, until CLOSED */
    struct wire_limits lim;
    struct wire_buf rx;             /* message being reassembled */
    struct wire_buf txq[WATCH_TXQ]; /* each: LWS_PRE bytes of headroom + payload */
    unsigned txhead, txlen;
    uint32_t answered, subscribed; /* per-topic answers to our sub, this connection */
    int closing, done, peer_closed;
    unsigned close_code;
    char close_reason[124];
    char host[256], authority[300];
    const char *path;
    int port, use_tls;
    unsigned retry_ms;   /* the last reconnect delay (0 once connected) */
    int retry_pending;   /* a reconnect is scheduled */
    int connected_once;  /* a welcome was seen on some connection */
    uint64_t next_id;    /* ids of our pings (1 is the sub) */
    uint64_t catchup_id; /* the ping after a resumed sub */
    char pos_epoch[40];  /* the epoch the positions below belong to */
    uint8_t is_pattern[WIRE_TOPICS_MAX];
    uint8_t has_pos[WIRE_TOPICS_MAX];
    uint64_t pos[WIRE_TOPICS_MAX]; /* exact topic: last seq seen; pattern: the global
                                      position (from subscribed, pong "g", reset) */
    lws_sorted_usec_list_t sul_timeout, sul_grace, sul_retry, sul_ping;
};

/* Run until the end (--timeout, watch_finish, SIGINT/SIGTERM, or without reconnect a failed or
 * lost connection). Installs handlers for SIGINT and SIGTERM and ignores SIGPIPE. Returns an
 * enum cli_exit: w->exit_code, CLI_USAGE for a bad URL. Frees what it allocated. */
int watch_run(struct watch *w);
/* End with exit code code: close the WebSocket gracefully when connected, else stop at once. */
void watch_finish(struct watch *w, int code);

#endif
