/* relay: what the Redis engine (issue #19, docs/cluster.md) keeps in Redis and what every publish
 * relays to every node, without any I/O: the key names, the Lua script that publishes, and the
 * message it sends on the cluster's channel (the same bytes are the topic's stream entry, so a
 * live hint and a replayed one are read by one decoder). Pure functions over buffers; the
 * libFuzzer target tests/fuzz/fuzz_relay.c feeds arbitrary bytes to the decoder.
 *
 * Keys, all under one prefix (default "nudge") and one hash tag, so that the publish script's
 * keys share a slot: a Redis Cluster runs the whole deployment on one shard (hiredis 0.14, the
 * client in Debian 12, has no cluster client anyway; docs/cluster.md says how to grow past it):
 *   PREFIX{n}:epoch    string: the deployment's epoch, 16 lowercase hex characters
 *   PREFIX{n}:gpos     integer: the global position, one per topic-publish in the epoch
 *   PREFIX{n}:floor    integer: the highest seq given to any topic in the epoch; a topic whose
 *                      record is created (first publish, or again after its record expired)
 *                      starts there, so a seq is never given twice to a topic in an epoch
 *   PREFIX{n}:m:TOPIC  hash: b = the seq the record started from (store.h base), s = the
 *                      topic's seq, g = the global position of its last publish; expires
 *                      after the horizon without a publish
 *   PREFIX{n}:x:TOPIC  stream: the topic's history, entry ID "SEQ-0", one field "m" = the
 *                      message below; capped by count (per_topic), expires after max_age
 *                      without a publish
 *   PREFIX{n}:hints    the pub/sub channel every publish is sent on (not a key)
 *
 * The message (MessagePack, as Redis's cmsgpack packs it): an array of 8:
 *   [1 (version), topic (str), epoch (str, 16 hex), seq, gpos, time_ms (Redis's clock),
 *    data (str or bin: the publish's MessagePack data, empty when it has none),
 *    origin (str: the publishing node and connection, empty when none)] */
#ifndef NUDGE_RELAY_H
#define NUDGE_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include "wire.h"

#define RELAY_VERSION 1
#define RELAY_PREFIX_DEFAULT "nudge"
#define RELAY_PREFIX_MAX 64
#define RELAY_ORIGIN_MAX 256

/* The publish script. KEYS: epoch, gpos, floor, the topic's m and x keys (relay_key). ARGV: the
 * epoch the caller knows, topic, data, origin, per_topic (0: no stream entry), the stream's TTL
 * and the record's TTL in seconds (each >= 1), the channel. Replies [seq, gpos, time_ms, base],
 * or the error "NUDGE_EPOCH <epoch now, or empty when none>" when the epoch is not the caller's
 * (then nothing changed). One script call does everything a publish does, atomically, so that
 * publishes to one topic from any number of nodes are totally ordered by seq and each node
 * receives them on the channel in that order. */
extern const char relay_publish_lua[];

/* The range script: what a node needs to resume a client on a topic from Redis, read atomically.
 * KEYS: epoch, the topic's m and x keys. ARGV: after (a seq), count (at most this many entries).
 * Replies [epoch now ("" when none), known (0: the topic has no record; the rest is 0 and
 * empty), base, seq, gpos of its last publish, [the messages of the stream entries after
 * `after`, oldest first]]. The entries cover the gap exactly when the first is after + 1 and
 * the last is seq (or there are `count` of them): a trimmed or expired stream starts later, and
 * the caller then sends a catch-up hint or a reset, never a partial replay as if whole. */
extern const char relay_range_lua[];

/* The epoch script, run by a node when it starts and after the publish script said the epoch is
 * not its own: KEYS: epoch; ARGV: a fresh random epoch. Sets it when none is set and replies the
 * epoch now (the first node's, or the one a lost Redis left to whoever came first). */
extern const char relay_epoch_lua[];

/* The retire script, run by a node that found Redis behind what it had seen (a restart from an
 * older snapshot, a failover to a replica that missed writes: seqs would be given twice):
 * KEYS: epoch; ARGV: the epoch to retire, a fresh random one. Replaces the epoch when it is
 * still the one to retire, and replies the epoch now. */
extern const char relay_retire_lua[];

/* The state script, run when a node's synchronisation has read every record: KEYS: epoch, gpos,
 * floor. Replies [epoch ("" when none), gpos, floor] read atomically. */
extern const char relay_state_lua[];

/* The key of kind ("epoch", "gpos", "floor", "hints", "m" or "x") under prefix; for "m" and "x" the
 * topic name[0..len) is appended. Writes a NUL-terminated key into out (cap bytes) and returns
 * its length, or WIRE_ETOOBIG when it does not fit, WIRE_EFIELD for an unknown kind or a prefix
 * that is empty, longer than RELAY_PREFIX_MAX or holds '{' or '}'. */
int relay_key(char *out, size_t cap, const char *prefix, const char *kind, const char *name,
              size_t len);

/* One decoded message. topic, data and origin point into the decoded buffer. */
struct relay_msg {
    const char *topic;
    uint32_t topic_len; /* 1..WIRE_TOPIC_LEN_MAX */
    char epoch[17];     /* NUL-terminated */
    uint64_t seq;       /* >= 1 */
    uint64_t gpos;      /* >= 1 */
    uint64_t time_ms;
    const uint8_t *data; /* NULL when the publish had none */
    uint32_t data_len;   /* <= WIRE_DATA_MAX */
    const char *origin;
    uint32_t origin_len; /* <= RELAY_ORIGIN_MAX */
};

/* Decode p[0..len) (one whole message, nothing after it). Returns 0; WIRE_EMALFORMED when it is
 * not one MessagePack array of 8 (truncated, trailing bytes); WIRE_EFIELD for another version or
 * a field of the wrong type or out of bounds (an epoch that is not 16 lowercase hex characters,
 * seq or gpos 0, an origin too long); WIRE_ETOPIC for a topic wire_topic_check refuses;
 * WIRE_EDATA for data wire_data_check refuses (default limits but WIRE_DATA_MAX bytes). Allocates
 * nothing. */
int relay_decode(const uint8_t *p, size_t len, struct relay_msg *m);

/* The origin field of a message: which node sent it, its request number there (a node matches
 * its own messages to its publishes by it), whether the publisher asked not to be sent its own
 * change (skip_origin), and the connection id that caused the publish (may be empty):
 *   NODE (16 lowercase hex) REQ (16 lowercase hex) SKIP ('0' or '1') CONN (0..RELAY_CONN_MAX)
 * relay_origin writes it into out (cap >= RELAY_ORIGIN_HEAD + conn_len + 1, NUL-terminated) and
 * returns its length, or WIRE_ETOOBIG. relay_origin_parse reads one back: 0, or WIRE_EFIELD when
 * p[0..n) is not one (*conn points into p). */
#define RELAY_ORIGIN_HEAD 33
#define RELAY_CONN_MAX (RELAY_ORIGIN_MAX - RELAY_ORIGIN_HEAD)
int relay_origin(char *out, size_t cap, uint64_t node, uint64_t req, int skip, const char *conn,
                 size_t conn_len);
int relay_origin_parse(const char *p, size_t n, uint64_t *node, uint64_t *req, int *skip,
                       const char **conn, size_t *conn_len);

#endif
