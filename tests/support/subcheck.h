/* subcheck: checks shared by the scenario and integration tests that drive a real nudged —
 * starting it, a libnudge publisher, WebSocket subscribers (a small receive buffer, raw "sub"
 * messages with resume positions) and what a subscriber must or must not receive next.
 *
 * Every check fails the running Criterion test with cr_assert (cr_expect where noted) and a
 * message naming what was expected and what arrived; nothing here returns an error code. Every
 * receive is bounded (5 s unless a timeout is given). */
#ifndef NUDGE_TEST_SUBCHECK_H
#define NUDGE_TEST_SUBCHECK_H

#include <stdint.h>

#include "harness.h"
#include "nudge.h"
#include "sub.h"
#include "wsc.h"

/* Start d (see nudged_start) with extra args (NULL-terminated, or NULL); asserts it started. */
void subcheck_start(struct nudged *d, const char *const *args);
/* Probe d with fresh clients (nudged_probe, 5 s); cr_expect: a failure is reported and the test
 * goes on. */
void subcheck_probe(struct nudged *d);

/* A libnudge publisher connected to d's publisher port, saying hello as name with a 10 s timeout
 * per call (name NULL: no options, the library's defaults). Asserts it connected. The caller
 * owns the client and frees it with nudge_close(). */
nudge_client_t *subcheck_publisher(const struct nudged *d, const char *name);

/* A TCP socket connected to 127.0.0.1:port whose 4 KiB SO_RCVBUF is set before connect(), so
 * the window the broker sees stays small and its writes stall as soon as the client stops
 * reading. Asserts it connected. The caller owns the fd (close it, or hand it to
 * wsc_handshake(), which takes it over). */
int subcheck_small_rcvbuf_socket(uint16_t port);

/* Send one "sub" for topics[0..n) (n <= 16) with request id, in w's format; with epoch (not
 * NULL), resume positions for the topics whose pos[i] >= 0 (seq = pos[i]; pos may be NULL). Does
 * not wait for the answer. Nothing is kept: epoch, topics and pos stay the caller's. */
void subcheck_send_sub(struct wsc *w, uint64_t id, const char *const *topics, uint32_t n,
                       const char *epoch, const int64_t *pos);
/* The same, asking for "replay":"all" in the resume when replay_all (one hint per missed seq
 * from history instead of one catch-up hint per changed topic). */
void subcheck_send_sub_mode(struct wsc *w, uint64_t id, const char *const *topics, uint32_t n,
                            const char *epoch, const int64_t *pos, int replay_all);

/* Name of a subscriber message type ("hint", "reset", ...; "?" when unknown). Static storage. */
const char *subcheck_type_name(enum sub_type t);

/* 1 when the message's data is {"i":<its seq>} (what the seq-numbering publishers send), else
 * 0 (no data, other data). */
int subcheck_data_is_seq(const struct sub_msg *m);

/* Receive the next message on w (within 5 s), which must be of type want; what names it in
 * failure messages. On return *m refers to w's receive buffer: the caller calls sub_msg_clear(m)
 * and is done with it before the next receive on w. */
void subcheck_expect_type(struct wsc *w, enum sub_type want, struct sub_msg *m, const char *what);

/* The next message is the hint of topic with seq, not coalesced (n absent or 1), and its own
 * flag is own (0 or 1). */
void subcheck_expect_hint_own(struct wsc *w, const char *topic, uint64_t seq, int own);
/* The next message is the hint of topic with seq, not coalesced (n absent or 1), with data
 * {"i":seq} (subcheck_data_is_seq). */
void subcheck_expect_hint_data(struct wsc *w, const char *topic, uint64_t seq);
/* The next message is a hint of topic with seq and n ("n" absent = 1); with data, its data is
 * {"i":seq} (the newest change's, from publishers that number their data). */
void subcheck_expect_hint_n(struct wsc *w, const char *topic, uint64_t seq, uint32_t n, int data);
/* The next message is "subscribed" for topic with seq. */
void subcheck_expect_subscribed(struct wsc *w, const char *topic, uint64_t seq);
/* The next message is a reset of topic with seq and reason. */
void subcheck_expect_reset(struct wsc *w, const char *topic, uint64_t seq, const char *reason);

/* Nothing arrives on w for ms milliseconds: a message fails the test, and so does anything
 * else than a timeout (the connection closing, bad bytes). */
void subcheck_expect_silence(struct wsc *w, int ms, const char *what);

#endif
