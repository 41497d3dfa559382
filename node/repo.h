/* SPDX-License-Identifier: MIT */
/* repo: the swarm repository, info-hash -> swarm, the hot data structure of every node and of
 * the standalone tracker.
 *
 * Swarms are spread over 2^stripe_bits stripes picked from a keyed hash of the info-hash; each
 * stripe has its own lock, its own hash table of swarms and its own random state, so writers to
 * different stripes never wait for each other (the DashMap idea). Every repo_ call takes and
 * releases at most one stripe lock and never allocates while holding a lock it does not own.
 *
 * A peer is identified by its address and port (as opentracker and aquatic do); IPv4 and IPv6
 * peers of one swarm are kept apart and only handed to clients of the same family. Peers are
 * returned in compact form (announce.h). Time is whatever monotonic seconds the caller passes as
 * now; the repository never reads a clock, so tests drive it.
 *
 * Bounds (repo_limits_t) and what happens when they are hit:
 *   - max_torrents or memory_budget reached: an announce for a new swarm is refused with
 *     REPO_ERR_FULL (the server turns it into a protocol error); existing swarms keep working.
 *   - max_peers_per_swarm reached, or memory_budget reached while a swarm would grow: the
 *     announcing peer is served peers and counts but not stored (res->stored = false).
 * Nothing is evicted to make room; the expiry sweep frees peers not heard from for
 * peer_timeout_s, and a swarm left with no peers is removed (its downloaded count with it). */
#ifndef SHOAL_REPO_H
#define SHOAL_REPO_H

#include "announce.h"
#include "cmsg.h"
#include "partition.h"
#include "snapshot.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct repo repo_t;

typedef struct {
    uint32_t max_torrents;        /* swarms in the whole repository */
    uint32_t max_peers_per_swarm; /* per address family */
    uint64_t memory_budget;       /* bytes of swarm and peer storage, approximately */
    uint32_t peer_timeout_s;      /* a peer not heard from for this long is expired */
} repo_limits_t;

/* 5M torrents, 100k peers per swarm, 4 GiB, 45 minutes: the daemons' defaults too (repoopts). */
#define REPO_STRIPE_BITS_DEFAULT 8
extern const repo_limits_t repo_default_limits;

typedef enum {
    REPO_OK = 0,
    REPO_ERR_FULL, /* the announce would create a swarm and a bound forbids it */
} repo_err_t;

typedef struct {
    swarm_stats_t stats; /* of the swarm after this announce, both families together */
    size_t n_peers;      /* records written to peers_out */
    bool stored;         /* false if the peer was not kept (swarm full, or event stopped) */
} repo_result_t;

/* Create an empty repository with 2^stripe_bits stripes (stripe_bits <= 16). limits NULL means
 * repo_default_limits. Returns NULL if memory runs out or stripe_bits is out of range. */
repo_t *repo_new(unsigned stripe_bits, const repo_limits_t *limits);

/* Free the repository and all its swarms, then set *self_p to NULL. NULL-safe. Must not race
 * with any other repo_ call. */
void repo_destroy(repo_t **self_p);

/* Apply one announce at time now: started/none/completed add or refresh the peer (left == 0 is a
 * seeder), completed bumps the swarm's downloaded count once per peer, stopped removes the peer
 * (and does not create a swarm). Then copy up to numwant peers of req->peer.family, never the
 * announcing peer itself, into peers_out (room for numwant records of 6 or 18 bytes, the
 * caller's memory): a leecher gets a random selection of seeders and leechers, a seeder gets
 * leechers only. A stopped peer gets no peers. numwant must already be capped by the caller.
 * Keeps no pointer into req or peers_out. */
repo_err_t repo_announce(repo_t *self, const announce_t *req, uint32_t now, size_t numwant,
                         uint8_t *peers_out, repo_result_t *res);

/* The stats of one swarm; all zero if it is unknown. */
void repo_scrape(repo_t *self, const uint8_t info_hash[SHOAL_HASH_LEN], swarm_stats_t *out);

/* Expire, in stripe `stripe` only, peers last heard before now - peer_timeout_s, and remove
 * swarms left empty. Returns the number of peers removed. The expiry sweep calls it stripe by
 * stripe, so requests to other stripes are never held up. Times are exact to the second for
 * timeouts up to 16384 s; above that they are kept in ticks of 2^k s (at most 16384 ticks per
 * timeout) and a peer may outlive its timeout by up to two ticks, never expire before it. */
size_t repo_expire_stripe(repo_t *self, size_t stripe, uint32_t now);

/* repo_expire_stripe() over every stripe in turn. */
size_t repo_expire(repo_t *self, uint32_t now);

size_t repo_stripes(const repo_t *self);

typedef struct {
    uint64_t torrents;
    uint64_t peers;    /* both families */
    uint64_t peers4;   /* of which IPv4 */
    uint64_t peers6;   /* of which IPv6 */
    uint64_t seeders;  /* both families */
    uint64_t leechers; /* peers - seeders */
    uint64_t bytes;    /* what memory_budget is measured against */
} repo_totals_t;

/* Totals over all stripes (each stripe read under its lock, so roughly consistent across stripes;
 * within a stripe the split by family and by seeding is exact). Gauges. */
void repo_totals(repo_t *self, repo_totals_t *out);

/* ---- admin: one swarm's contents ---------------------------------------------------------- */

#define REPO_LOOKUP_MAX CMSG_LOOKUP_PEERS_MAX /* peers one repo_lookup() copies at most */

/* One swarm for the admin API (torrents/{info-hash}), read under its stripe lock like a scrape:
 * whether it exists, the counts a scrape gives, the number of its peers (total), and a page of
 * up to max_peers of them (capped at REPO_LOOKUP_MAX) from index offset of the swarm's list
 * (IPv4 then IPv6, leechers before seeders in each; see cmsg_lookup_result_t), each with its age
 * at now (a lower bound when the timeout is above 16384 s and times are kept in ticks). Peers
 * past their timeout but not yet swept are listed, as scrapes count them. Fills *out (caller's
 * memory, about 24 KB; only the page is written) and returns out->found. Allocates nothing and
 * changes nothing, but holds the stripe lock while it copies the page: an admin call, not one
 * for the request path. */
bool repo_lookup(repo_t *self, const uint8_t info_hash[SHOAL_HASH_LEN], uint32_t now,
                 uint32_t offset, uint32_t max_peers, cmsg_lookup_result_t *out);

/* ---- snapshots (failover): dirty partitions, export, import, drop ------------------------- */

/* Each repository keeps a bitmap of the partitions (partition_of() of the info-hash) touched by
 * an announce or an import since the last repo_take_dirty(): a snapshot writer copies only
 * those. Marking costs one relaxed load per announce, and an atomic OR only when the bit was
 * clear. Scrapes and expiry mark nothing (a snapshot's ages let a reader drop expired peers). */
#define REPO_DIRTY_WORDS (PARTITION_COUNT / 64)

/* Copy the dirty bitmap into out (bit p of word p / 64 is partition p) and clear it. A partition
 * marked while this runs is in out or stays marked, never lost. */
void repo_take_dirty(repo_t *self, uint64_t out[REPO_DIRTY_WORDS]);

/* Mark partitions dirty again (OR in the bits of parts), e.g. after a snapshot write failed. */
void repo_mark_dirty(repo_t *self, const uint64_t parts[REPO_DIRTY_WORDS]);

/* For repo_export_stripe(): the encoder that swarms of `partition` go into, or NULL to skip
 * them. Called under the stripe lock: no repo_ calls, nothing slow. */
typedef snap_enc_t *(*repo_pick_fn)(void *arg, uint32_t partition);

/* Encode, in stripe `stripe` only and under its lock, every swarm whose partition pick() maps to
 * an encoder: snap_enc_swarm() then snap_enc_peer() for each of its peers (ages relative to now,
 * in seconds; flags from the peer's state). The encoders must be between snap_enc_begin() and
 * snap_enc_finish(). Encoders may grow (realloc) under the lock; the writer keeps them across
 * snapshots, so in steady state nothing is allocated. Returns the number of swarms encoded, or
 * -1 if an encoder failed (out of memory; that encoder's snapshot is then unusable). */
long repo_export_stripe(repo_t *self, size_t stripe, uint32_t now, repo_pick_fn pick, void *arg);

typedef struct {
    uint64_t swarms;  /* swarms created by the import */
    uint64_t peers;   /* peers added */
    uint64_t present; /* peers skipped: already in the repository (theirs is fresher) */
    uint64_t expired; /* peers skipped: age + extra_age_s >= peer_timeout */
    uint64_t refused; /* peers (or a whole swarm) not added because a bound was hit */
} repo_import_stats_t;

/* How a snapshot's downloaded count combines with ours: ADD when ours counts only completions
 * the snapshot has not seen (we just started serving the partition), MAX when ours and the
 * snapshot's share their history (we held the partition before, lost it, and take it back from
 * an owner that restored our own snapshot). */
typedef enum {
    REPO_MERGE_ADD = 0,
    REPO_MERGE_MAX = 1,
} repo_merge_t;

/* Merge one swarm of a snapshot at time now: each peer not already present (same address, port
 * and family) is added as if it last announced age + extra_age_s seconds ago, with its seeder
 * and completed state; peers already present keep their own state; the swarm's downloaded count
 * becomes ours + sw->downloaded, or the larger of the two (see repo_merge_t). Peers whose
 * age + extra_age_s reaches the peer timeout are skipped; a swarm left with nothing to add (and
 * downloaded 0) is not created. The bounds apply as for announces (no new swarm beyond
 * max_torrents or the budget, no peer beyond max_peers_per_swarm). Adds to *st. Marks the
 * partition dirty. */
void repo_import_swarm(repo_t *self, const snap_swarm_t *sw, uint32_t now, uint32_t extra_age_s,
                       repo_merge_t merge, repo_import_stats_t *st);

/* For repo_drop_stripe(): true if swarms of this partition are to be removed. Called under the
 * stripe lock. */
typedef bool (*repo_part_fn)(void *arg, uint32_t partition);

/* Remove, in stripe `stripe` only, every swarm whose partition drop() accepts, freeing its
 * memory. Returns the number of peers removed. */
size_t repo_drop_stripe(repo_t *self, size_t stripe, repo_part_fn drop, void *arg);

#endif
