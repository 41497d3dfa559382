/* SPDX-License-Identifier: MIT */
/* partition: which node owns which info-hash, computed the same way on every gateway and node.
 *
 * The info-hash space is cut into PARTITION_COUNT partitions by partition_of(). A
 * partition_table_t maps every partition to one member of a member set; it is built once per
 * membership change and then answers partition_owner() with one array load.
 *
 * Assignment: rendezvous hashing with bounded loads. Members are sorted by id (bytewise), so the
 * order of the input list never matters. Partitions are then taken in order 0, 1, ..., P - 1 and
 * each goes to the member with the highest score among those holding fewer than
 *   cap = max(floor(PARTITION_CAP_PERCENT * P / (100 * n)), ceil(P / n))
 * partitions, where
 *   key(member)      = SipHash-2-4-128(PARTITION_HASH_KEY, member id bytes, no NUL)
 *   score(member, p) = SipHash-2-4(key(member), p as 4 little-endian bytes)
 * (libsodium crypto_shorthash_siphashx24 and crypto_shorthash), the score read as a
 * little-endian 64-bit number; on a tie the member that sorts first wins. The key is a fixed
 * public constant, not a secret: it only has to be the same in every process of every version
 * that shares a cluster. Changing the key, the cap or the procedure reshuffles every cluster, so
 * they are part of the wire contract.
 *
 * Properties (tests/unit/test_partition.c checks each for every n in 1..64):
 *   - deterministic: the same member set in any order gives the same table;
 *   - balanced: max / mean partitions per member <= PARTITION_CAP_PERCENT / 100 = 1.05, by
 *     construction, for n <= 204 (beyond, ceil(P / n) takes over as the cap);
 *   - stable: one join or leave moves at most 1/n + 5 % of partitions (n the larger count);
 *     measured over every single leave for n = 2..64, the worst is 1/n + 1.6 % and the mean
 *     1/n + 0.55 % (plain rendezvous moves exactly the departed member's share but is not
 *     balanced: at 64 members its max/mean is about 1.34).
 *
 * Invariant of a table: members are sorted by id, ids are unique, non-empty and NUL-terminated,
 * and owner[p] < n for every p. A table is immutable once built, so any number of threads may
 * read it at once. */
#ifndef SHOAL_PARTITION_H
#define SHOAL_PARTITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PARTITION_BITS         12
#define PARTITION_COUNT        4096 /* 1 << PARTITION_BITS; a cluster-wide constant */
#define PARTITION_MEMBERS_MAX  1024 /* members in one table */
#define PARTITION_ID_MAX       64   /* bytes of a member id, NUL included */
#define PARTITION_ENDPOINT_MAX 128  /* bytes of an endpoint, NUL included */
#define PARTITION_CAP_PERCENT  105  /* load ceiling, in percent of the mean */
/* The 16-byte SipHash key of the assignment: ASCII "shoal/partition1". */
#define PARTITION_HASH_KEY "shoal/partition1"

/* One member of the set: a node's stable id (e.g. its StatefulSet pod name) and the endpoint a
 * gateway reaches it at (e.g. "tcp://10.0.0.7:7000"). Both are NUL-terminated within their
 * arrays. Only the id takes part in the assignment. */
typedef struct {
    char id[PARTITION_ID_MAX];
    char endpoint[PARTITION_ENDPOINT_MAX];
} partition_member_t;

typedef enum {
    PARTITION_OK = 0,
    PARTITION_ERR_NO_MEMBERS,    /* an empty member set */
    PARTITION_ERR_TOO_MANY,      /* more than PARTITION_MEMBERS_MAX members */
    PARTITION_ERR_ID_EMPTY,      /* a member with an empty id */
    PARTITION_ERR_ID_LONG,       /* an id without a NUL in its 64 bytes */
    PARTITION_ERR_ENDPOINT_LONG, /* an endpoint without a NUL in its 128 bytes */
    PARTITION_ERR_DUPLICATE,     /* two members with the same id */
    PARTITION_ERR_NOMEM,         /* memory ran out */
} partition_err_t;

typedef struct partition_table partition_table_t;

/* The partition of an info-hash: its first 12 bits, (h[0] << 4) | (h[1] >> 4). Info-hashes are
 * SHA-1 (or truncated SHA-256) digests, uniform over their whole range, so their top bits spread
 * swarms evenly over partitions without hashing again. Always < PARTITION_COUNT. */
static inline uint32_t partition_of(const uint8_t info_hash[20])
{
    return ((uint32_t)info_hash[0] << 4 | (uint32_t)info_hash[1] >> 4) & (PARTITION_COUNT - 1);
}

/* Build the table of a member set (members[0..n), copied; their order does not matter) for the
 * membership epoch `epoch` (stored, not interpreted). Costs up to P * n short SipHash calls: a few
 * milliseconds for 64 members; not for a request path. Returns NULL if the set is invalid or memory
 * runs out, and then, when err is not NULL, says why in *err. */
partition_table_t *partition_table_new(const partition_member_t *members, size_t n, uint64_t epoch,
                                       partition_err_t *err);

/* Free the table and set *self_p to NULL. NULL-safe. */
void partition_table_destroy(partition_table_t **self_p);

/* The index (into partition_table_member()) of the member that owns partition p. O(1).
 * p must be < PARTITION_COUNT. */
uint16_t partition_owner(const partition_table_t *self, uint32_t p);

/* Number of members, >= 1. */
size_t partition_table_count(const partition_table_t *self);

/* Member i (i < count), in id order, which is not the input order. Lives as long as the table. */
const partition_member_t *partition_table_member(const partition_table_t *self, size_t i);

/* The index of the member with this id, or -1 if it is not in the table. O(log n). A node uses
 * it to find itself, then owns p iff partition_owner(t, p) is that index. */
int partition_table_find(const partition_table_t *self, const char *id);

/* The number of partitions member i owns. */
uint32_t partition_table_load(const partition_table_t *self, size_t i);

uint64_t partition_table_epoch(const partition_table_t *self);

/* True if both tables hold the same ids with the same endpoints (epochs aside): a membership
 * reader uses it to skip rebuilding for an unchanged set. */
bool partition_table_same_members(const partition_table_t *a, const partition_table_t *b);

/* The number of partitions whose owner's id differs between old and next. A NULL table owns
 * nothing, so a diff against NULL is PARTITION_COUNT. */
size_t partition_diff(const partition_table_t *old, const partition_table_t *next);

/* A short text for err (static storage). */
const char *partition_strerror(partition_err_t err);

#endif
