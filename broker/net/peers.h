/* peers: open connections per client address, shared by every worker's publisher and WebSocket
 * transports, for --max-conns-per-ip. A transport asks at accept (peers_add) and gives the slot
 * back when the socket is gone (peers_remove); past the limit the connection is refused there,
 * before any buffer is allocated for it.
 *
 * IPv4 addresses are kept as IPv4-mapped IPv6, so one client is one key however it connects.
 * A chained hash table under one mutex (an accept or a close takes it once), keyed by SipHash
 * under a random key (clients choose their addresses: no flooding of one chain). Entries are
 * freed when their count drops to 0, and the bucket array when the table is empty, so the
 * table needs no init and no free: a zeroed struct peers is ready (glibc's zeroed mutex is
 * PTHREAD_MUTEX_INITIALIZER) and holds nothing once every connection is gone. */
#ifndef NUDGE_PEERS_H
#define NUDGE_PEERS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct peer;

struct peers {
    pthread_mutex_t lock;
    struct peer **b; /* nb buckets, or NULL while empty */
    size_t nb, n;    /* buckets, entries */
    uint64_t k0, k1; /* hash key, drawn with the bucket array */
};

/* A client address (16 bytes, IPv4-mapped for IPv4); valid 0 for a socket with no IP peer. */
struct peer_key {
    uint8_t a[16];
    uint8_t valid; /* a byte: struct wsconn keeps one per open WebSocket (ws.c) */
};

/* The peer address of connected socket fd. */
void peers_key(int fd, struct peer_key *k);
/* Count one more connection from k unless max (0 = no bound) are open from it already.
 * Returns 0 (counted: call peers_remove later), -EBUSY (over max, not counted) or -ENOMEM (not
 * counted; the caller lets the connection in: a full table is no reason to refuse). A key that
 * is not valid is always admitted and never counted. */
int peers_add(struct peers *p, const struct peer_key *k, uint32_t max);
/* One connection from k (counted by peers_add) is gone. */
void peers_remove(struct peers *p, const struct peer_key *k);
/* Connections counted from k now (tests, /stats). */
uint32_t peers_count(struct peers *p, const struct peer_key *k);

#endif
