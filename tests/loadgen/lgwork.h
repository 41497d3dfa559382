/* SPDX-License-Identifier: MIT */
/* lgwork: the load generator's workload, modelled on the method of aquatic_udp_load_test: a
 * pool of torrents, a pool of peers, a weighted mix of connect/announce/scrape requests and a
 * popularity distribution with a few very hot swarms and a long tail.
 *
 * Invariant: every attribute of a torrent (its info-hash) and of a peer (peer id, port, key,
 * swarm, seeder or leecher) is a pure function of (seed, index), so nothing is stored per
 * torrent or per peer, two runs with the same --seed agree, and --print-hashes can write the
 * whitelist a tracker needs before the run. Every index this module returns is below its pool
 * size. Pure code: no I/O, no globals, no allocation. */
#ifndef SHOAL_LGWORK_H
#define SHOAL_LGWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LGWORK_HASH_LEN   20
#define LGWORK_SCRAPE_MAX 74 /* hashes in one BEP 15 scrape that fit a 1500-byte datagram */

/* BEP 15 event numbering (HTTP uses the names). */
typedef enum {
    LGWORK_EVENT_NONE = 0,
    LGWORK_EVENT_COMPLETED = 1,
    LGWORK_EVENT_STARTED = 2,
    LGWORK_EVENT_STOPPED = 3,
} lgwork_event_t;

typedef enum {
    LGWORK_CONNECT = 0,
    LGWORK_ANNOUNCE = 1,
    LGWORK_SCRAPE = 2,
} lgwork_kind_t;

/* xoshiro256**: small, fast, good enough for a workload; one per worker thread. */
typedef struct {
    uint64_t s[4];
} lgwork_rng_t;

typedef struct {
    uint64_t seed;           /* derives every torrent and peer */
    uint32_t torrents;       /* info-hash pool size, >= 1 */
    uint32_t peers;          /* peer pool size, >= 1 */
    double pareto_shape;     /* popularity tail exponent a, (0, 10] */
    double pareto_head;      /* popularity scale as a fraction of torrents, (0, 1] */
    unsigned weight_connect; /* request mix; their sum must be > 0 */
    unsigned weight_announce;
    unsigned weight_scrape;
    int32_t numwant;     /* peers asked for in each announce, 1..200 */
    unsigned scrape_max; /* a scrape asks for 1..scrape_max hashes, <= LGWORK_SCRAPE_MAX */
    double seeder_ratio; /* share of peers that are seeders, [0, 1] */
} lgwork_config_t;

/* The validated configuration plus precomputed constants. Plain data: copy it to each thread. */
typedef struct {
    lgwork_config_t cfg;
    double pareto_s;   /* scale in ranks: pareto_head * torrents */
    double pareto_c;   /* 1 - (1 + torrents / s)^-a */
    double pareto_inv; /* -1 / a */
    unsigned weight_sum;
} lgwork_t;

/* A peer of the pool; every field is a function of (seed, peer index). */
typedef struct {
    uint8_t peer_id[LGWORK_HASH_LEN];
    uint16_t port; /* 1024..65023 */
    uint32_t key;
    uint32_t torrent; /* its swarm, picked once by popularity */
    bool seeder;
    uint64_t left; /* 0 for a seeder */
} lgwork_peer_t;

/* One announce to send: the peer's identity plus this request's event and counters. */
typedef struct {
    uint32_t peer_index;
    lgwork_peer_t peer;
    uint8_t info_hash[LGWORK_HASH_LEN];
    lgwork_event_t event;
    uint64_t downloaded;
    uint64_t uploaded;
    uint64_t left;
    int32_t numwant;
} lgwork_announce_t;

typedef struct {
    unsigned n; /* 1..scrape_max */
    uint8_t hashes[LGWORK_SCRAPE_MAX][LGWORK_HASH_LEN];
} lgwork_scrape_t;

/* Seed the generator; any seed (even 0) gives a usable, distinct stream. */
void lgwork_rng_seed(lgwork_rng_t *rng, uint64_t seed);
/* Next 64 random bits. */
uint64_t lgwork_rng_next(lgwork_rng_t *rng);
/* Uniform in [0, n); n must be > 0. */
uint32_t lgwork_rng_below(lgwork_rng_t *rng, uint32_t n);
/* Uniform in [0, 1), 53 bits. */
double lgwork_rng_unit(lgwork_rng_t *rng);

/* Check cfg and precompute. Returns 0, or -1 (and *why set to a static message) if a field is
 * out of its documented range; wl is then unusable. */
int lgwork_init(lgwork_t *wl, const lgwork_config_t *cfg, const char **why);

/* The info-hash of torrent index i (< torrents). Torrent 0 is the most popular. */
void lgwork_info_hash(const lgwork_t *wl, uint32_t i, uint8_t out[LGWORK_HASH_LEN]);

/* Popularity: the torrent at quantile u in [0, 1) of a Pareto type II (Lomax) law over
 * popularity rank, truncated to the N torrents:
 *     P(rank >= k) = ((1 + k/s)^-a - (1 + N/s)^-a) / (1 - (1 + N/s)^-a),  s = head * N,
 * so the density falls as (1 + k/s)^-(a + 1): about flat over the s hottest torrents, then a
 * power-law tail. Defaults a = 0.5, head = 0.002 (aquatic's weights fall by e every N/500
 * ranks): the hottest 1 % of torrents get ~60 % of picks, the coldest 90 % ~10 %. Always
 * < torrents. */
uint32_t lgwork_torrent_at(const lgwork_t *wl, double u);
/* A torrent drawn from the popularity distribution. */
uint32_t lgwork_pick_torrent(const lgwork_t *wl, lgwork_rng_t *rng);

/* Fill out with peer index p (< peers). */
void lgwork_peer(const lgwork_t *wl, uint32_t p, lgwork_peer_t *out);

/* A peer of the slice owned by socket `slot` of `slots` (peer p belongs to slot p % slots), so
 * a peer always announces from the same source address. Always < peers; if slot >= peers the
 * slice is empty and any peer is returned. */
uint32_t lgwork_pick_peer(const lgwork_t *wl, lgwork_rng_t *rng, uint32_t slot, uint32_t slots);

/* A request type drawn with the configured weights. */
lgwork_kind_t lgwork_pick_kind(const lgwork_t *wl, lgwork_rng_t *rng);

/* An announce by peer p: the peer's swarm, an event (about 91 % none, 5 % started, 2 %
 * stopped, 2 % completed for seeders), left = 0 for seeders. */
void lgwork_make_announce(const lgwork_t *wl, lgwork_rng_t *rng, uint32_t p,
                          lgwork_announce_t *out);

/* A scrape of 1..min(scrape_max, torrents) distinct torrents drawn by popularity (distinct, as
 * an HTTP scrape reply cannot repeat a key). */
void lgwork_make_scrape(const lgwork_t *wl, lgwork_rng_t *rng, lgwork_scrape_t *out);

#endif
