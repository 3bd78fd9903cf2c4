/* crowd: many idle subscribed WebSocket connections held by one process, for memory tests and
 * measurements (the broker's RSS per idle subscriber, docs/bench.md §Memory per connection).
 *
 * One thread, non-blocking sockets on one epoll: each connection does the upgrade, sends its
 * hello (with a token, when given) and one "sub" in one write, waits for "subscribed", and is
 * then idle. crowd_serve() keeps them alive (answers the broker's pings). At most `window`
 * connections are in their handshake at once, so a broker's --hello-timeout and accept queue
 * are never the limit. JSON subprotocol; every wait is bounded by a deadline. */
#ifndef NUDGE_TEST_CROWD_H
#define NUDGE_TEST_CROWD_H

#include <stddef.h>
#include <stdint.h>

struct crowd_conn;

struct crowd_opts {
    uint16_t port;            /* the broker's WebSocket port on 127.0.0.1 */
    uint32_t n;               /* connections to open */
    uint32_t window;          /* handshakes in flight at once (0 = 256) */
    const char *topic;        /* every connection subscribes to this topic; NULL = its own,
                                 topic_prefix followed by its index */
    const char *topic_prefix; /* NULL = "t:" */
    uint32_t first;           /* connection i's own topic and token are numbered first + i */
    /* Optional: the token of connection first + i (NUL-terminated, the caller's storage until
       crowd_open returns), or NULL for none. */
    const char *(*token)(uint32_t i, void *arg);
    void *token_arg;
    /* Non-empty: the sub carries "resume":{"epoch":resume_epoch,"seqs":{topic:resume_seq}}. */
    const char *resume_epoch;
    uint64_t resume_seq;
    int timeout_ms; /* for the whole crowd_open (0 = 60000) */
};

struct crowd {
    int ep;
    struct crowd_conn *c; /* [n] */
    uint32_t n;
    uint32_t ready; /* subscribed */
    uint32_t failed;
    uint32_t pings; /* answered */
};

/* Open o->n connections as above. Returns how many got to "subscribed" (all of them on success;
 * the others are closed and counted in failed). *cr is then crowd_close'd by the caller. */
uint32_t crowd_open(struct crowd *cr, const struct crowd_opts *o);
/* Answer pings and drop whatever else arrives, for ms milliseconds. Returns the number of
 * connections the broker closed meanwhile. */
uint32_t crowd_serve(struct crowd *cr, int ms);
/* Close every connection (RST) and free. Safe on a zeroed or already closed crowd. */
void crowd_close(struct crowd *cr);

#endif
