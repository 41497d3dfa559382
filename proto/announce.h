/* SPDX-License-Identifier: MIT */
/* announce: the plain data every part of shoal agrees on for one announce or scrape, whatever
 * wire it came from (BEP 15 UDP, HTTP query, and later the gateway->node msgpack batch).
 *
 * Peers travel in compact form everywhere: 6 bytes for IPv4 (address, port, network order) and
 * 18 bytes for IPv6, exactly as BEP 23 / BEP 7 / BEP 15 put them on the wire, so a reply is built
 * by copying records, never by re-encoding them. */
#ifndef SHOAL_ANNOUNCE_H
#define SHOAL_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHOAL_HASH_LEN    20
#define SHOAL_PEER4_LEN   6   /* compact IPv4 peer: 4 address bytes + 2 port bytes, big-endian */
#define SHOAL_PEER6_LEN   18  /* compact IPv6 peer: 16 address bytes + 2 port bytes */
#define SHOAL_SCRAPE_MAX  256 /* hard ceiling on info-hashes in one scrape, any transport */
#define SHOAL_NUMWANT_MAX 200 /* hard ceiling on peers in one reply, any transport */
#define SHOAL_UDP_PEERS4  200 /* a BEP 15 IPv4 reply with this many peers still fits 1500 B */
#define SHOAL_UDP_PEERS6  66  /* likewise for IPv6: 20 + 66 * 18 = 1208 B */
#define SHOAL_NUMWANT_DEF 50

/* Event numbers are BEP 15's, so the UDP codec needs no mapping. */
typedef enum {
    ANNOUNCE_NONE = 0,
    ANNOUNCE_COMPLETED = 1,
    ANNOUNCE_STARTED = 2,
    ANNOUNCE_STOPPED = 3,
} announce_event_t;

/* A peer's transport address. family is 4 or 6; an IPv4 address sits in addr[0..3]. An
 * IPv4-mapped IPv6 address (::ffff:a.b.c.d) is always stored as family 4. */
typedef struct {
    uint8_t family;
    uint8_t addr[16];
    uint16_t port; /* host order */
} endpoint_t;

/* One announce, decoded. The codecs fill everything but peer.family and peer.addr, which the
 * server takes from the packet's source (or a trusted proxy header); peer.port is the announced
 * port. numwant < 0 means "the tracker's default". */
typedef struct {
    uint8_t info_hash[SHOAL_HASH_LEN];
    uint8_t peer_id[SHOAL_HASH_LEN];
    uint64_t downloaded;
    uint64_t left;
    uint64_t uploaded;
    announce_event_t event;
    uint32_t key;
    int32_t numwant;
    endpoint_t peer;
} announce_t;

/* What a tracker knows of one swarm: the three numbers of a scrape. */
typedef struct {
    uint32_t seeders;
    uint32_t leechers;
    uint32_t downloaded;
} swarm_stats_t;

/* Normalise an address given as 16 bytes (IPv6, possibly IPv4-mapped) into ep (family, addr);
 * port is left as it is. addr16 may be ep->addr itself. */
void announce_endpoint_from16(endpoint_t *ep, const uint8_t addr16[16]);

/* Write ep's address as 16 bytes (IPv4 as ::ffff:a.b.c.d) into out: the form keyed hashes and
 * the connection-id scheme use, so an IPv4 client gets the same id on a dual-stack socket and on
 * an IPv4 one. Any family but 4 is copied as 16 bytes. out may be ep->addr itself. */
void announce_endpoint_to16(const endpoint_t *ep, uint8_t out[16]);

#endif
