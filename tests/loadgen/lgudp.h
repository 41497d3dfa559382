/* SPDX-License-Identifier: MIT */
/* lgudp: BEP 15 as the load generator sees it: encode connect/announce/scrape requests and
 * check every reply against the request it answers. Written independently of shoal's proto/
 * codec so the generator checks the tracker rather than agreeing with it.
 *
 * Invariant: lgudp_check reads only the len bytes it is given and returns LGUDP_OK only for a
 * reply that is exactly what BEP 15 allows for that request (length, action, transaction id,
 * peer block size, plausible counts). Pure code: no I/O, no globals, no allocation. */
#ifndef SHOAL_LGUDP_H
#define SHOAL_LGUDP_H

#include "lgwork.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LGUDP_PROTOCOL_ID  0x41727101980ULL
#define LGUDP_CONNECT_LEN  16
#define LGUDP_ANNOUNCE_LEN 98
#define LGUDP_MAX_REQUEST  (16 + 20 * LGWORK_SCRAPE_MAX)

enum {
    LGUDP_ACTION_CONNECT = 0,
    LGUDP_ACTION_ANNOUNCE = 1,
    LGUDP_ACTION_SCRAPE = 2,
    LGUDP_ACTION_ERROR = 3,
};

typedef enum {
    LGUDP_OK = 0,
    LGUDP_ERROR_REPLY, /* action 3: the tracker refused; message in out->message */
    LGUDP_TRUNCATED,   /* shorter than the fixed part of the reply */
    LGUDP_BAD_ACTION,  /* neither the request's action nor 3 */
    LGUDP_BAD_TID,     /* transaction id differs from the request's */
    LGUDP_BAD_LENGTH,  /* connect not 16 bytes, scrape not 8 + 12 n */
    LGUDP_BAD_PEERS,   /* announce peer block not a multiple of 6 (18 over IPv6) */
    LGUDP_IMPLAUSIBLE, /* counts out of range: more peers than asked or than the swarm has */
} lgudp_verdict_t;

/* What the reply must match: taken from the request when it was sent. */
typedef struct {
    uint32_t action; /* LGUDP_ACTION_CONNECT, _ANNOUNCE or _SCRAPE */
    uint32_t tid;
    unsigned n_scrape; /* hashes in the scrape request */
    int32_t numwant;   /* peers asked for in the announce */
    bool ipv6;         /* the request went over IPv6: 18-byte peers */
} lgudp_expect_t;

/* A checked reply. Pointers borrow the packet and live as long as it does. */
typedef struct {
    uint32_t action;
    uint32_t tid;
    uint64_t connection_id; /* connect */
    uint32_t interval;      /* announce */
    uint32_t leechers;
    uint32_t seeders;
    size_t n_peers;
    const uint8_t *message; /* error: not NUL-terminated */
    size_t message_len;
} lgudp_reply_t;

/* Write a request into buf (cap bytes). Each returns its length, or 0 if cap is too small. */
size_t lgudp_connect(uint8_t *buf, size_t cap, uint32_t tid);
size_t lgudp_announce(uint8_t *buf, size_t cap, uint64_t connection_id, uint32_t tid,
                      const lgwork_announce_t *a);
size_t lgudp_scrape(uint8_t *buf, size_t cap, uint64_t connection_id, uint32_t tid,
                    const lgwork_scrape_t *s);

/* The transaction id of a reply, to find its request; false if len < 8. */
bool lgudp_peek_tid(const uint8_t *pkt, size_t len, uint32_t *tid);

/* Check reply pkt[0..len) against exp; fill *out (also on LGUDP_ERROR_REPLY). */
lgudp_verdict_t lgudp_check(const uint8_t *pkt, size_t len, const lgudp_expect_t *exp,
                            lgudp_reply_t *out);

/* A short static name for the verdict. */
const char *lgudp_strverdict(lgudp_verdict_t v);

/* True if an error message says the connection id was refused (then reconnect). */
bool lgudp_is_connid_error(const uint8_t *msg, size_t len);

#endif
