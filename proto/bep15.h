/* SPDX-License-Identifier: MIT */
/* bep15: the UDP tracker protocol (BEP 15) as pure functions over caller buffers.
 *
 * bep15_parse() validates and decodes one datagram without copying it (a scrape's info-hashes
 * stay in the packet); the bep15_write_*() functions encode replies into the caller's buffer and
 * return the bytes written, or 0 when the buffer is too small (an announce reply instead carries
 * only the peers that fit). Nothing here allocates, locks or
 * touches a socket. All integers on the wire are big-endian. */
#ifndef SHOAL_BEP15_H
#define SHOAL_BEP15_H

#include "announce.h"

#define BEP15_PROTOCOL_ID  0x41727101980ULL
#define BEP15_CONNECT_LEN  16
#define BEP15_ANNOUNCE_LEN 98 /* BEP 41 options may follow; they are tolerated, not read */
#define BEP15_SCRAPE_MIN   16 /* header only; each info-hash adds 20 bytes */
#define BEP15_SCRAPE_MAX   74 /* info-hashes per scrape, as BEP 15 says */
#define BEP15_ANNOUNCE_HDR 20 /* announce reply before the peers */
#define BEP15_SCRAPE_HDR   8
#define BEP15_SCRAPE_ENTRY 12
#define BEP15_ERROR_HDR    8
#define BEP15_MAX_REPLY    1500

typedef enum {
    BEP15_CONNECT = 0,
    BEP15_ANNOUNCE = 1,
    BEP15_SCRAPE = 2,
    BEP15_ERROR = 3,
} bep15_action_t;

/* Parse results. BEP15_ERR_SHORT means the datagram is too short to carry a transaction id and
 * must be dropped silently; every other error can be answered with bep15_write_error() using
 * bep15_strerror() as the message. */
typedef enum {
    BEP15_OK = 0,
    BEP15_ERR_SHORT,           /* < 16 bytes: drop */
    BEP15_ERR_MAGIC,           /* connect without the protocol id */
    BEP15_ERR_ACTION,          /* unknown action, or an error/reply sent to us */
    BEP15_ERR_LENGTH,          /* wrong length for the action */
    BEP15_ERR_EVENT,           /* event not 0..3 */
    BEP15_ERR_PORT,            /* announced port 0 */
    BEP15_ERR_SCRAPE_EMPTY,    /* scrape without info-hashes */
    BEP15_ERR_SCRAPE_TOO_MANY, /* more than BEP15_SCRAPE_MAX info-hashes */
} bep15_err_t;

/* One decoded request. For connect only action and transaction_id are meaningful (and
 * connection_id holds the protocol id). The scrape's hashes point into the parsed packet and live
 * as long as it does. After BEP15_ERR_ACTION, action is BEP15_ERROR. */
typedef struct {
    bep15_action_t action;
    uint32_t transaction_id;
    uint64_t connection_id;
    announce_t announce; /* BEP15_ANNOUNCE; announce.peer.family/addr left zero */
    struct {
        const uint8_t *hashes; /* n * 20 bytes inside the packet */
        size_t n;
    } scrape; /* BEP15_SCRAPE */
} bep15_request_t;

/* Decode one datagram. On any error other than BEP15_ERR_SHORT, out->transaction_id is set so
 * the caller can answer with an error. Keeps no pointer to pkt except out->scrape.hashes. */
bep15_err_t bep15_parse(const uint8_t *pkt, size_t len, bep15_request_t *out);

/* A short, client-facing message for err (static storage), e.g. "invalid event". */
const char *bep15_strerror(bep15_err_t err);

/* Connect reply (16 bytes). */
size_t bep15_write_connect(uint8_t *out, size_t cap, uint32_t transaction_id,
                           uint64_t connection_id);

/* The 20-byte head of an announce reply alone; bep15_write_announce() writes the whole reply. */
size_t bep15_write_announce_header(uint8_t *out, size_t cap, uint32_t transaction_id,
                                   uint32_t interval, uint32_t leechers, uint32_t seeders);

/* What an announce reply carries. peers are n_peers compact records of the announcing peer's
 * family (4: SHOAL_PEER4_LEN bytes each, 6: SHOAL_PEER6_LEN), as the repository stores them;
 * borrowed for the call only. */
typedef struct {
    uint32_t transaction_id;
    uint32_t interval;
    swarm_stats_t stats; /* leechers and seeders go on the wire */
    uint8_t family;      /* 4 or 6 */
    const uint8_t *peers;
    size_t n_peers;
} bep15_announce_reply_t;

/* Whole announce reply: the 20-byte head, then the peer records copied as they are (one memcpy).
 * Only whole records that fit in cap are written: the reply carries the first
 * (cap - 20) / record-length peers when n_peers is more. Returns the bytes written, or 0 (nothing
 * written) when cap is under 20 bytes or family is neither 4 nor 6. */
size_t bep15_write_announce(uint8_t *out, size_t cap, const bep15_announce_reply_t *r);

/* Whole scrape reply: the 8-byte head and one 12-byte entry (seeders, completed, leechers) per
 * element of stats. */
size_t bep15_write_scrape(uint8_t *out, size_t cap, uint32_t transaction_id,
                          const swarm_stats_t *stats, size_t n);

/* Error reply: action 3, the transaction id, then msg without its NUL. */
size_t bep15_write_error(uint8_t *out, size_t cap, uint32_t transaction_id, const char *msg);

#endif
