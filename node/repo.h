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

/* 1M torrents, 100k peers per swarm, 2 GiB, 45 minutes. */
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
    uint64_t peers; /* both families */
    uint64_t seeders;
    uint64_t bytes; /* what memory_budget is measured against */
} repo_totals_t;

/* Totals over all stripes (each stripe read under its lock, so roughly consistent). */
void repo_totals(repo_t *self, repo_totals_t *out);

#endif
