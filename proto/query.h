/* SPDX-License-Identifier: MIT */
/* query: the query strings of GET /announce and GET /scrape (BEP 3, 23, 7, 48), decoded.
 *
 * Parameters are '&'-separated key=value pairs, percent-decoded ('+' is a space). info_hash and
 * peer_id must decode to exactly 20 bytes. Unknown parameters are ignored, as clients add their
 * own; a known parameter given twice keeps its last value, except scrape's info_hash which
 * repeats. Every rejected input has its own error whose query_strerror() is the bencoded
 * `failure reason` the client gets. When several things are wrong, the first bad parameter from
 * the left is reported (a bad escape counts wherever it is, even in an ignored parameter); only
 * then missing ones, in the order info_hash, peer_id, port, left. */
#ifndef SHOAL_QUERY_H
#define SHOAL_QUERY_H

#include "announce.h"

typedef enum {
    QUERY_OK = 0,
    QUERY_ERR_ESCAPE, /* bad percent escape anywhere */
    QUERY_ERR_INFO_HASH_MISSING,
    QUERY_ERR_INFO_HASH_LENGTH, /* not exactly 20 bytes */
    QUERY_ERR_PEER_ID_MISSING,
    QUERY_ERR_PEER_ID_LENGTH,
    QUERY_ERR_PORT_MISSING,
    QUERY_ERR_PORT, /* not a number in 1..65535 */
    QUERY_ERR_LEFT_MISSING,
    QUERY_ERR_LEFT, /* not a non-negative 64-bit number */
    QUERY_ERR_UPLOADED,
    QUERY_ERR_DOWNLOADED,
    QUERY_ERR_EVENT,           /* not started, stopped, completed, paused or empty */
    QUERY_ERR_NUMWANT,         /* not an integer (huge values are capped, not rejected) */
    QUERY_ERR_COMPACT,         /* not 0 or 1 */
    QUERY_ERR_KEY,             /* longer than 64 bytes */
    QUERY_ERR_SCRAPE_TOO_MANY, /* more info_hash values than the caller allows */
} query_err_t;

/* An announce as HTTP gives it. */
typedef struct {
    announce_t announce; /* announce.peer.port set; family/addr are the server's to fill */
    bool compact;        /* default true (BEP 23); compact=0 asks for the dictionary model */
    bool no_peer_id;     /* no_peer_id=1 */
} query_announce_t;

/* Decode an announce query (the part after '?', not including it). numwant absent is -1; a
 * numwant above SHOAL_NUMWANT_MAX is capped to it; a negative one becomes -1. "paused" (BEP 21)
 * counts as no event. key, which clients send as hex or decimal text, is kept as a 32-bit hash
 * of its bytes. */
query_err_t query_parse_announce(const char *q, size_t len, query_announce_t *out);

/* Decode a scrape query: every info_hash value into hashes[*n_out], at most max (<=
 * SHOAL_SCRAPE_MAX). Zero info_hash values is not an error here: *n_out is 0 and the server
 * decides (shoal refuses full scrapes). */
query_err_t query_parse_scrape(const char *q, size_t len, uint8_t (*hashes)[SHOAL_HASH_LEN],
                               size_t max, size_t *n_out);

/* The failure reason for err (static storage), e.g. "invalid info_hash: must be 20 bytes". */
const char *query_strerror(query_err_t err);

#endif
