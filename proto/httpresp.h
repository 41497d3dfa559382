/* SPDX-License-Identifier: MIT */
/* httpresp: whole HTTP/1.1 responses (status line, headers, bencoded body) for the tracker.
 *
 * Each function writes one complete response into out and returns its length, or 0 if cap is
 * too small (the caller then answers with httpresp_status(500)). Responses carry
 * Content-Length and "Connection: keep-alive" or "Connection: close" by keep_alive. */
#ifndef SHOAL_HTTPRESP_H
#define SHOAL_HTTPRESP_H

#include "announce.h"

/* Enough for any response shoal builds: 200 IPv6 peers in the dictionary model, or
 * SHOAL_SCRAPE_MAX scrape entries with every count at UINT32_MAX (92 + 11 + 256 * 97 = 24935
 * bytes, the largest; checked by a static assertion in httpresp.c). */
#define HTTPRESP_MAX 25600

typedef struct {
    uint32_t interval;
    uint32_t min_interval;
    swarm_stats_t stats;  /* complete = seeders, incomplete = leechers, downloaded */
    const uint8_t *peers; /* n_peers compact records of `family` (6 or 18 bytes each) */
    size_t n_peers;
    uint8_t family; /* 4: records go in "peers"; 6: in "peers6" (BEP 7) */
    bool compact;   /* false: the BEP 3 dictionary model, "peers" a list of dicts */
    bool keep_alive;
} httpresp_announce_t;

/* 200 with d8:completei..e10:downloadedi..e10:incompletei..e8:intervali..e12:min intervali..e
 * 5:peers..6:peers6..e. Compact: the address family not served gets an empty string, so
 * clients that expect "peers" always find it. Dictionary model: each peer is d2:ip..4:porti..ee
 * (no "peer id": shoal does not keep peer ids, as BEP 23's no_peer_id allows). */
size_t httpresp_announce(char *out, size_t cap, const httpresp_announce_t *a);

/* 200 with d5:filesd<20-byte hash>d8:completei..e10:downloadedi..e10:incompletei..eeee, one
 * entry per hash (BEP 48); hashes are sorted by the writer as bencode requires, and a hash given
 * twice appears once. hashes are n * 20 bytes. */
size_t httpresp_scrape(char *out, size_t cap, const uint8_t (*hashes)[SHOAL_HASH_LEN],
                       const swarm_stats_t *stats, size_t n, bool keep_alive);

/* 200 with d14:failure reason<len>:<reason>e (BEP 3: a failure is a normal 200 response).
 * retry_in > 0 adds BEP 31's "retry in" (minutes) for transient failures. */
size_t httpresp_failure(char *out, size_t cap, const char *reason, uint32_t retry_in,
                        bool keep_alive);

/* A plain-text response with the given status (400, 404, 405, 431, 500, 503, 505) and body. */
size_t httpresp_status(char *out, size_t cap, int status, const char *body, bool keep_alive);

#endif
