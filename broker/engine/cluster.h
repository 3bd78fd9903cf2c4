/* cluster: the store of one node of a cluster (docs/cluster.md). Redis numbers the hints: a
 * publish goes to Redis through a link (struct cluster_link: broker/net/redis.c is the one
 * over hiredis), and every node, the publishing one included, learns each hint from the
 * cluster's channel, in the one order Redis published them. The node keeps what it learns in
 * the in-memory store (store.c: positions, history, the changed list), so a client resumes on
 * any node as on a single broker, with no round trip.
 *
 * What the link reads arrives on the link's own thread (cluster_msg and the rest below): it is
 * queued and the owner woken (store.wake), and poll, under the engine's lock, applies it in
 * arrival order:
 *   - a message of this node completes the append it answers (matched by the request number
 *     in its origin, relay.h), so appends complete in channel order;
 *   - a message of another node reaches the engine through store.arrived, which holds the
 *     topic and calls store_ops.adopt to record it, then releases the hint like a local one;
 *   - a topic's record read from Redis while the node synchronises (at start, and after the
 *     link was lost) raises the local record to it: history from the stream, and a catch-up
 *     hint to the subscribers when the record moved while the node was not listening.
 * A message is applied once: one whose global position its topic has already seen is a
 * duplicate (the channel and a synchronisation can both bring it).
 *
 * When Redis lost its data (a restart without persistence), its epoch key is gone: the first
 * node back sets a new one, a publish of a node still on the old one is refused, and a node
 * seeing another epoch synchronises again, which adopts the new one (store.reset: the engine
 * tells the hubs, whose subscribers reconnect and get a reset "epoch"). */
#ifndef NUDGE_CLUSTER_H
#define NUDGE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* What the store needs of the link to Redis. Called under the engine's lock, from any thread:
 * must neither block nor call back into the store. */
struct cluster_link {
    /* Send one publish: the topic, its data (NULL: none) and the origin (relay_origin, with
     * the request number req the store matches its message to; cluster_failed names it). Returns 0
     * when it was queued, or a negative errno the append then fails with at once: -EIO while Redis
     * is not reachable, -ENOMEM. */
    int (*publish)(void *arg, uint64_t req, const char *topic, size_t tlen, const uint8_t *data,
                   size_t dlen, const char *origin, size_t olen);
    /* Synchronise again (any thread): the store saw a gap in the global positions, a message or
     * a refusal of another epoch, or lost what the link handed it for lack of memory. The link
     * reconnects (so that the epoch script runs again) and synchronises. */
    void (*resync)(void *arg);
    /* Redis is behind what this node saw (it came back from older data): replace its epoch,
     * when it is still `epoch`, with a new one, then synchronise again (any thread). */
    void (*retire)(void *arg, const char *epoch);
    void *arg;
};

/* What the node has seen of the cluster (docs/operations.md's /stats "cluster"). */
struct cluster_stats {
    uint64_t remote;    /* hints of other nodes applied */
    uint64_t own;       /* hints of this node completed from the channel */
    uint64_t dups;      /* messages already applied (a synchronisation and the channel) */
    uint64_t bad;       /* messages refused: not a relay message, another epoch's, or not
                           recorded for lack of memory (a synchronisation follows) */
    uint64_t gaps;      /* jumps in the global position seen on the channel */
    uint64_t syncs;     /* synchronisations completed */
    uint64_t records;   /* records read by the last synchronisation */
    uint64_t caught_up; /* records found ahead of what the node had seen (catch-up hints) */
    uint64_t failed;    /* publishes that failed (Redis unreachable, refused, timed out) */
    uint64_t pending;   /* publishes on their way now */
    uint64_t epochs;    /* new epochs adopted (Redis lost its data) */
    uint64_t behind;    /* times Redis was found behind what the node saw (its epoch retired) */
    int up;             /* 1: the link is connected and synchronised */
};

/* The store of a cluster node: positions and history in memory (cfg's bounds), numbered by
 * Redis through link (copied). node: this node's random id, in the origin of its publishes.
 * The epoch is empty until the first synchronisation (cluster_synced): the caller waits for it
 * (cluster_ready) before it serves clients. k0, k1: the table key (engine.h). NULL on OOM. The
 * caller owns it (free with ops->free, after the link stopped calling in). */
struct store *store_cluster_new(const struct store_config *cfg, const struct cluster_link *link,
                                uint64_t node, uint64_t k0, uint64_t k1);

/* ---- from the link's thread (any thread): queued for poll, the owner woken ---------------- */

/* One message read from the channel, p[0..n) (copied). */
void cluster_msg(struct store *s, const uint8_t *p, size_t n);
/* A synchronisation begins: the link subscribed to the channel and will now read every record;
 * epoch: Redis's now (the node's until the first synchronisation ends). */
void cluster_sync_begin(struct store *s, const char *epoch);
/* A record read while synchronising (relay_range_lua's reply for the topic): base, seq and the
 * global position of its last publish, and its stream's messages (msgs[i][0..lens[i]), oldest
 * first; copied). */
void cluster_record(struct store *s, const char *topic, size_t tlen, uint64_t base, uint64_t seq,
                    uint64_t gpos, const uint8_t *const *msgs, const size_t *lens, size_t nmsgs);
/* The synchronisation is complete: Redis's epoch, global position and floor when it ended. */
void cluster_synced(struct store *s, const char *epoch, uint64_t gpos, uint64_t floor);
/* The publish with origin request number req failed in Redis (its message will never come);
 * err: -EIO, or -ESTALE when Redis's epoch is not the node's (epoch_now, may be ""): the node
 * then synchronises again (link.resync). */
void cluster_failed(struct store *s, uint64_t req, int err, const char *epoch_now);
/* The link lost Redis: every publish still on its way fails (-EIO), and the node counts as not
 * synchronised until the next cluster_synced. */
void cluster_down(struct store *s);

/* ---- owner's side (the engine's lock held, or before any worker runs) --------------------- */

/* 1 once the first synchronisation was applied (the epoch is known). */
int cluster_ready(const struct store *s);
/* A copy of the node's counters. */
void cluster_stats(const struct store *s, struct cluster_stats *out);

#endif
