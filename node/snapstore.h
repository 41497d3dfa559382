/* SPDX-License-Identifier: MIT */
/* snapstore: the partition snapshots in Redis and the fence that guards them. Synchronous
 * hiredis calls with bounded waits, pipelined; used by one thread (the keeper's).
 *
 * Keys, for partition P (the {pP} hash tag keeps a partition's keys in one Redis Cluster slot,
 * so the scripts below may touch them together):
 *   PREFIX:{pP}:epoch   integer: the partition's ownership epoch, INCR'd by every acquisition
 *   PREFIX:{pP}:owner   the id of the node that holds that epoch, "" once it released it
 *   PREFIX:{pP}:snap    the latest snapshot (proto/snapshot.h)
 *   PREFIX:leaving:ID   set (with an expiry) by a node that is shutting down and will release
 *                       its partitions in a moment
 *
 * Fence. Acquiring P is one script: if the owner is still the one the acquirer saw (none, a node
 * that died or released, or itself), epoch = INCR epoch; SET owner ID; otherwise nothing (another
 * node acquired P since: the acquirer looks again). From then on a write of P
 * is one script that stores the snapshot only if the epoch key still holds the writer's epoch, so
 * a node that lost P (stopped, partitioned away, slow) can never overwrite the snapshot of the
 * node that took P after it: its epoch is older. The epoch key only grows while Redis keeps its
 * data; if Redis restarts empty the key is missing, the write says so (SNAPSTORE_GONE), and the
 * writer acquires again and rewrites.
 *
 * Replication (Redis with replicas, Sentinel). The owner check makes the fence hold when a
 * failover loses the last writes: a record that went back names an older (epoch, owner) pair, and
 * a write passes only if both match the writer's, so two nodes can never both write one
 * partition; a node whose claim was lost is fenced and claims again. Every connection reads the
 * server's identity (rconn_info_t.id); a connection that finds another server than the last one
 * counts a server change (snapstore_stats_t.server_changes) for the keeper to re-check what it
 * holds and rewrite it. Acquisitions and write rounds end with WAIT 1 100 while the master has
 * replicas (re-read every 5 s): a replica has them when the call returns, or the call counts
 * `unreplicated`.
 *
 * Errors: every call returns -1 when Redis cannot be reached or answers with an error, with the
 * text in snapstore_error(), and drops the connection; the next call reconnects (through the
 * sentinels with redis-sentinel://). A connection opened before a +switch-master
 * (rconn_outdated()) is dropped before the next call. */
#ifndef SHOAL_SNAPSTORE_H
#define SHOAL_SNAPSTORE_H

#include "partition.h"
#include "rconn.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct snapstore snapstore_t;

/* Results of a fenced write. */
#define SNAPSTORE_WRITTEN 1  /* stored */
#define SNAPSTORE_FENCED  0  /* another node holds a newer epoch: not stored */
#define SNAPSTORE_GONE    -1 /* no epoch in Redis (it lost its data): not stored */
#define SNAPSTORE_UNKNOWN -2 /* the call failed before this write's answer came */

typedef struct {
    uint32_t partition;
    uint64_t epoch;      /* the writer's, from snapstore_acquire() */
    const uint8_t *data; /* the snapshot; NULL with len 0: release only, keep the stored one */
    size_t len;
    bool release; /* also set the owner to "": the writer hands the partition over */
} snapstore_write_t;

typedef struct {
    char owner[PARTITION_ID_MAX]; /* "" if none, or released */
    uint64_t epoch;               /* 0 if none */
} snapstore_owner_t;

/* Called by snapstore_load() for each partition, data NULL if it has no snapshot. data is
 * borrowed for the call. */
typedef void (*snapstore_load_fn)(void *arg, uint32_t partition, const uint8_t *data, size_t len);

/* A store for node self_id under key prefix `prefix` (< 64 bytes). Copies what it needs;
 * connects on first use. NULL if memory runs out or an argument is too long. */
snapstore_t *snapstore_new(const rconn_url_t *url, const char *prefix, const char *self_id,
                           uint32_t timeout_ms);

/* Close and free, set *self_p to NULL. NULL-safe. */
void snapstore_destroy(snapstore_t **self_p);

/* The reason of the last failure. */
const char *snapstore_error(const snapstore_t *self);

/* Connect if not connected. 0 or -1. */
int snapstore_connect(snapstore_t *self);

/* The owner and epoch of partitions ps[0..n) into out[0..n). One round trip. 0 or -1. */
int snapstore_owners(snapstore_t *self, const uint32_t *ps, size_t n, snapstore_owner_t *out);

/* Whether node id is a live member (its membership key exists) and whether it announced it is
 * leaving (snapstore_leave()), in one round trip. 0, or -1. */
int snapstore_presence(snapstore_t *self, const char *id, bool *member, bool *leaving);

/* Announce that this node is shutting down and will release its partitions within ttl_ms. */
int snapstore_leave(snapstore_t *self, uint32_t ttl_ms);

/* A claim on a partition: acquire it if its owner is still `seen`. */
typedef struct {
    uint32_t partition;
    const char *seen; /* the owner read before deciding ("" for none) */
} snapstore_claim_t;

/* Acquire partitions claims[0..n) for this node: their new epochs into epochs[0..n), 0 for a
 * claim refused because another node owns the partition now. Pipelined. 0 or -1 (then none,
 * some or all may have been acquired: acquire them again). */
int snapstore_acquire(snapstore_t *self, const snapstore_claim_t *claims, size_t n,
                      uint64_t *epochs);

/* Fetch the snapshots of ps[0..n), calling fn for each in order. Pipelined in rounds of at
 * most 64 partitions, so memory stays bounded by 64 snapshots. 0 or -1 (fn may have been called
 * for some partitions). */
int snapstore_load(snapstore_t *self, const uint32_t *ps, size_t n, snapstore_load_fn fn,
                   void *arg);

/* Fenced writes ws[0..n), the result of each into results[0..n) (SNAPSTORE_WRITTEN, _FENCED,
 * _GONE). Pipelined in rounds of about 4 MB of snapshots. 0, or -1 when Redis failed: then the
 * writes whose answers did not come are SNAPSTORE_UNKNOWN (they may or may not be stored). */
int snapstore_write(snapstore_t *self, const snapstore_write_t *ws, size_t n, int *results);

/* Counters. */
typedef struct {
    uint64_t writes;         /* snapshots stored */
    uint64_t fenced;         /* writes refused by the fence */
    uint64_t gone;           /* writes that found no epoch */
    uint64_t bytes;          /* snapshot bytes stored */
    uint64_t acquired;       /* partitions acquired */
    uint64_t refused;        /* claims refused: another node had acquired the partition meanwhile */
    uint64_t loaded;         /* snapshots fetched (present) */
    uint64_t errors;         /* calls that failed */
    uint64_t server_changes; /* connections that found another Redis server than the last one */
    uint64_t unreplicated;   /* WAITs no replica acknowledged in time */
    char server[300];        /* "HOST:PORT" of the server of the last connection, "" before */
} snapstore_stats_t;

void snapstore_stats(const snapstore_t *self, snapstore_stats_t *out);

#endif
