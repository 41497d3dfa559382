/* SPDX-License-Identifier: MIT */
/* addrtab: a fixed table of 64-bit atomic slots keyed by client address, shared by every worker
 * thread without a lock. The per-address rate limiter (ratelimit.h) and the connection-id ban
 * list (connban.h) are built on it; each gives the 48-bit payload of a slot its own meaning.
 *
 * A client address becomes a 64-bit key: an IPv4 address on its own, an IPv6 address by its /64
 * (one subscriber usually holds a whole /64, so its addresses share one entry). The key, mixed
 * with a random seed (so a client cannot choose which slots its addresses land in), names a
 * group of ADDRTAB_PROBES neighbouring slots (one cache line) and a 16-bit tag; a slot is
 * `tag << 48 | payload`, tag 0 meaning empty. A user looks for its tag in the group and, when it
 * is not there, replaces the group's least useful slot (its own rule): the table never grows, so
 * memory is slots * 8 bytes, fixed at creation.
 *
 * Two keys with the same group and tag share a slot (1 in 65536 per neighbour, and the seed
 * keeps a client from choosing its neighbours): they then share one bucket (a rate limit) or
 * one strike count (a ban), so for those two the limit is stricter than configured, each paying
 * for the other's requests. Two threads adding the same key at once may, rarely, each take a
 * slot of the group, which makes that key's limit slightly looser for a while. */
#ifndef SHOAL_ADDRTAB_H
#define SHOAL_ADDRTAB_H

#include <endian.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define ADDRTAB_PROBES       4 /* slots per group: 32 bytes, within one 64-byte line */
#define ADDRTAB_PAYLOAD_BITS 48
#define ADDRTAB_PAYLOAD_MASK ((UINT64_C(1) << ADDRTAB_PAYLOAD_BITS) - 1)
#define ADDRTAB_MIN_SLOTS    64
#define ADDRTAB_MAX_SLOTS    (UINT32_C(1) << 28) /* 2 GiB: more is a configuration error */

typedef struct {
    _Atomic uint64_t *slots; /* n slots, page-aligned */
    uint32_t mask;           /* n - 1, with the low bits of a group index clear */
    uint64_t seed;
} addrtab_t;

/* The key of a client address given as 16 bytes (IPv4 as ::ffff:a.b.c.d): an IPv4 address, or
 * the /64 of an IPv6 one. IPv4 keys have the top 16 bits set, which no IPv6 source /64 has
 * (ffff::/16 is multicast), so the two families never share a key. */
static inline uint64_t addrtab_key(const uint8_t addr16[16])
{
    uint64_t hi, lo;
    memcpy(&hi, addr16, 8);
    memcpy(&lo, addr16 + 8, 8);
    hi = be64toh(hi);
    lo = be64toh(lo);
    if (hi == 0 && lo >> 32 == 0xffff) /* ::ffff:a.b.c.d */
        return UINT64_C(0xffff) << 48 | (lo & UINT32_MAX);
    return hi;
}

/* Allocate slots (rounded up to a power of two, at least ADDRTAB_MIN_SLOTS, at most
 * ADDRTAB_MAX_SLOTS), all empty, with a random seed. Returns 0, or -1 out of memory (t then holds
 * nothing). */
int addrtab_init(addrtab_t *t, uint32_t slots);

/* Free the slots. Safe on a zeroed or freed table. */
void addrtab_free(addrtab_t *t);

/* The number of slots, and the bytes they take. */
uint32_t addrtab_slots(const addrtab_t *t);

/* The group of key (its first slot) and its tag, never 0. */
static inline _Atomic uint64_t *addrtab_group(const addrtab_t *t, uint64_t key, uint64_t *tag)
{
    /* murmur3's 64-bit finaliser over the seeded key: every key bit moves every hash bit. */
    uint64_t h = key ^ t->seed;
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    uint64_t g = h >> 48;
    *tag = g ? g : 1;
    return &t->slots[(uint32_t)h & t->mask];
}

static inline uint64_t addrtab_tag(uint64_t slot)
{
    return slot >> ADDRTAB_PAYLOAD_BITS;
}

static inline uint64_t addrtab_payload(uint64_t slot)
{
    return slot & ADDRTAB_PAYLOAD_MASK;
}

static inline uint64_t addrtab_make(uint64_t tag, uint64_t payload)
{
    return tag << ADDRTAB_PAYLOAD_BITS | (payload & ADDRTAB_PAYLOAD_MASK);
}

#endif
