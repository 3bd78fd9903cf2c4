/* session: the protocol state machines of a client — hello, then requests — for publishers
 * (msgpack frames, docs/protocol.md §Publishers) and subscribers (JSON or msgpack messages,
 * §Subscribers). A transport hands a session every complete frame or message; the session
 * decodes it into the session's own scratch (no allocation per frame), checks the hello and the
 * credentials, and calls the engine and the hub with decoded values. Replies are wire bytes:
 * publisher replies are appended to conn->out, subscriber replies queued on the connection.
 *
 * One session context per hub (per worker thread). Credentials are checked at hello and on every
 * subscription and publish against the broker's struct auth (auth.h, docs/security.md); the
 * session keeps its token connections on a list to close them when their token expires. */
#ifndef NUDGE_SESSION_H
#define NUDGE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "hub.h"
#include "pub.h"
#include "sub.h"

struct session {
    struct hub *hub;
    struct engine *engine;
    struct auth *auth;      /* shared by every session, read-only but for its counters */
    int64_t next_exp;       /* no token of this session's connections expires before (seconds;
                               0 = none known): session_expire walks the connections only then */
    int64_t (*now_s)(void); /* wall clock, seconds; a test may replace it */
    struct pub_msg pm;      /* decode scratch, reused for every frame */
    struct sub_msg sm;      /* decode scratch, reused for every message */
    struct pubreq *spare;   /* publish contexts to reuse */
    uint32_t nspare;
    struct wire_buf tmp; /* scratch for encoding replies */
};

/* A publisher with this many publishes in flight (waiting for the store) should not be read
 * until it is below SESSION_PUBS_LOW: a bound on what one connection holds. */
#define SESSION_PUBS_HIGH 1024
#define SESSION_PUBS_LOW 256

/* Initialise for hub (and its engine) and the broker's auth (kept, not owned; it must outlive
 * the session); the session runs the hub's posted jobs (publishes the store completed on
 * another thread). Returns 0. */
int session_init(struct session *s, struct hub *hub, struct auth *auth);
/* Free the session. Every connection must be gone and every publish completed (the engine's
 * store polled with wait) first. */
void session_close(struct session *s);

/* Publisher: one frame body, at time now_ms (monotonic, ms). Replies are appended to c->out and
 * the hub is asked to have them written; a publish's ack comes when the store completed it, at
 * once in memory, later (through the hub's job queue, then c->ops->flush) when persisted;
 * c->npubs counts those in flight. Returns 0, or -EPROTO when the connection must be
 * closed once its replies are written. */
int session_pub_frame(struct session *s, struct conn *c, const uint8_t *body, size_t len,
                      uint64_t now_ms);
/* Publisher connection c is gone: publishes still in flight complete without an ack. Call
 * before hub_conn_gone. */
void session_pub_gone(struct session *s, struct conn *c);
/* Publisher: the frame stream itself is broken (err from pub_frame_next); appends the error
 * frame to c->out. The caller closes after writing it. */
void session_pub_stream_error(struct session *s, struct conn *c, int err);

/* HTTP publisher (broker/net/http.c; c->http set): one POST /publish with its bearer key
 * key[0..key_len) (NULL: no Authorization header), checked on every request as a TCP hello's
 * (auth_pub_key), and its JSON body (protocol/hpub.h). The answer, one JSON body, is appended to
 * c->out with its wire code in c->code (0 = ok): at once, or, when a persisted store completes
 * the publish later, through the hub's job queue and c->ops->flush as for TCP (c->npubs is 1
 * until then). One request in flight per connection: call again only once the answer came.
 * Nothing of body is kept after the call. */
void session_pub_http(struct session *s, struct conn *c, const char *key, size_t key_len,
                      const uint8_t *body, size_t len, uint64_t now_ms);

/* Connection c (either role) is gone: its credentials are released. Call before
 * hub_conn_gone (after session_pub_gone for publishers). */
void session_conn_gone(struct session *s, struct conn *c);
/* The broker's credentials changed (a reload): use a from now on (kept, not owned; it must
 * outlive the session or the next session_reload), and hold every connection to it: a publisher
 * whose key is gone (or that has none, where keys are now required) gets an unauthorized error
 * and is closed; a subscriber of a development-mode broker that now wants tokens gets one and
 * is closed (4003); other subscribers lose (unsubscribed, without an id) the subscriptions the
 * new rules do not let them read. */
void session_reload(struct session *s, struct auth *a);
/* Close, with error token_expired and close code 4002, every connection whose token expired
 * (exp + leeway) by the wall clock. Call about once a second. Returns how many were closed. */
uint32_t session_expire(struct session *s);

/* Close code of a connection whose user's tokens the operator revoked (session_user,
 * docs/protocol.md §WebSocket close codes): get a new token, then reconnect. */
#define SESSION_CLOSE_REVOKED 4010

/* One subscriber connection of a user (session_user). */
struct session_uconn {
    char id[24];       /* its connection id, as its welcome said ("conn") */
    char peer[64];     /* the client's address:port */
    uint64_t since_ms; /* wall clock when it connected (ms since the epoch) */
    uint32_t subs;     /* its subscriptions (topics and patterns) */
};
/* The connections of this session (the calling thread's) whose token names user[0..len) as its
 * sub, not already closing: appended to *out (grown with realloc, owned by the caller, who frees
 * it; *n counts them). With revoke, each is sent `error` unauthorized and closed with
 * SESSION_CLOSE_REVOKED as well. Returns 0, or -ENOMEM (what was found so far is kept, and
 * closed when revoking). */
int session_user(struct session *s, const char *user, size_t len, int revoke,
                 struct session_uconn **out, uint32_t *n);

/* Subscriber: one complete message (binary: the frame opcode was binary). */
void session_sub_message(struct session *s, struct conn *c, const uint8_t *p, size_t len,
                         int binary, uint64_t now_ms);

#endif
