/* SPDX-License-Identifier: MIT */
/* snapshot: the encoding of one partition's swarms, as a node writes them to Redis so that the
 * next owner of the partition (another node after a failure, or the same one after a restart)
 * can restore them. Version 1.
 *
 * Wire format: one msgpack array, positional fields (a change of shape is a change of
 * SNAP_VERSION). Integers may use any msgpack integer format holding their value; the encoder
 * writes the array of swarms with a 32-bit header (0xdd) so it can fill the count in last, and
 * each peers bin with a 32-bit header (0xc6).
 *
 *   [version = 1, partition u32 (< PARTITION_COUNT), owner str (1..63 bytes, no NUL),
 *    epoch u64, wall_ms u64, [swarm, ...]]
 *   swarm: [info_hash bin 20, downloaded u32, peers bin]
 *   peers: records back to back, each
 *            flags u8    bit 0 seeder, bit 1 completed was counted, bit 2 IPv6; others zero
 *            age u32     little-endian: seconds since the peer's last announce, at wall_ms
 *            compact     address and port as on the wire: 6 bytes (IPv4) or 18 (IPv6)
 *          so a record is SNAP_PEER4_LEN (11) or SNAP_PEER6_LEN (23) bytes.
 *
 * owner and epoch say who wrote the snapshot under which ownership epoch (the fence itself is in
 * Redis; these are for logs and checks). wall_ms is the writer's CLOCK_REALTIME in milliseconds:
 * ages are relative to it, so a reader adds the time since wall_ms to every age and drops peers
 * whose age reaches its peer timeout.
 *
 * Decoding is a strict reader over the caller's buffer, as in cmsg.h: it allocates nothing,
 * checks every count and length against the bytes left before using it, and rejects anything but
 * the exact shape above (unknown flag bits, a partition out of range, a swarm whose peers bin is
 * not a whole number of records, bytes after the message). snap_check() validates a whole
 * snapshot in one pass; the iterators then walk it without failing.
 *
 * Encoding appends to a growable buffer owned by the encoder (malloc/realloc): a snapshot of a
 * partition is as big as its swarms. Nothing here locks or keeps state outside the encoder. */
#ifndef SHOAL_SNAPSHOT_H
#define SHOAL_SNAPSHOT_H

#include "announce.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAP_VERSION        1
#define SNAP_OWNER_MAX      63 /* bytes of the owner id, NUL excluded (PARTITION_ID_MAX - 1) */
#define SNAP_PEER4_LEN      11
#define SNAP_PEER6_LEN      23
#define SNAP_FLAG_SEEDER    0x01
#define SNAP_FLAG_COMPLETED 0x02
#define SNAP_FLAG_V6        0x04

typedef enum {
    SNAP_OK = 0,
    SNAP_END,           /* the iterator has no more swarms or peers (not an error) */
    SNAP_ERR_TRUNCATED, /* the input ends inside the message */
    SNAP_ERR_TYPE,      /* a field of the wrong msgpack type or shape */
    SNAP_ERR_VERSION,   /* a version other than SNAP_VERSION */
    SNAP_ERR_RANGE,     /* a value out of its range (partition, owner length, u32 fields) */
    SNAP_ERR_PEERS,     /* a peers bin that is not whole records, or a record with bad flags */
    SNAP_ERR_TRAILING,  /* bytes after the message */
    SNAP_ERR_NOMEM,     /* the encoder could not grow its buffer */
    SNAP_ERR_STATE,     /* encoder calls out of order (e.g. more peers than announced) */
} snap_err_t;

typedef struct {
    uint32_t partition;
    char owner[SNAP_OWNER_MAX + 1]; /* NUL-terminated */
    uint64_t epoch;
    uint64_t wall_ms;
    uint32_t swarms; /* in the snapshot */
} snap_header_t;

typedef struct {
    uint8_t family; /* 4 or 6 */
    bool seeder;
    bool completed;
    uint32_t age_s;
    const uint8_t *compact; /* 6 or 18 bytes (announce.h's compact form), borrowed */
} snap_peer_t;

typedef struct {
    const uint8_t *info_hash; /* 20 bytes, points into the snapshot */
    uint32_t downloaded;
    const uint8_t *peers; /* the records, points into the snapshot */
    size_t peers_len;     /* bytes */
    uint32_t n4, n6;      /* records of each family */
} snap_swarm_t;

/* ---- encoding ------------------------------------------------------------------------------ */

typedef struct snap_enc snap_enc_t;

/* An encoder with an empty buffer. NULL if memory runs out. */
snap_enc_t *snap_enc_new(void);

/* Free the encoder and its buffer, set *self_p to NULL. NULL-safe. */
void snap_enc_destroy(snap_enc_t **self_p);

/* Start a snapshot (discarding anything encoded before; the buffer is kept for reuse). owner is
 * 1..SNAP_OWNER_MAX bytes. SNAP_OK, SNAP_ERR_RANGE, or SNAP_ERR_NOMEM. */
snap_err_t snap_enc_begin(snap_enc_t *self, uint32_t partition, const char *owner, uint64_t epoch,
                          uint64_t wall_ms);

/* Start a swarm that will have exactly n4 IPv4 and n6 IPv6 peers (added next, in any order).
 * The previous swarm must be complete. SNAP_OK, SNAP_ERR_STATE, or SNAP_ERR_NOMEM. */
snap_err_t snap_enc_swarm(snap_enc_t *self, const uint8_t info_hash[SHOAL_HASH_LEN],
                          uint32_t downloaded, uint32_t n4, uint32_t n6);

/* Add one peer of the current swarm. SNAP_OK, SNAP_ERR_STATE (no swarm open, or that family's
 * count already reached, or family not 4/6), or SNAP_ERR_NOMEM. */
snap_err_t snap_enc_peer(snap_enc_t *self, const snap_peer_t *peer);

/* Finish: the last swarm must be complete. *data and *len then hold the snapshot, valid until
 * the next snap_enc_ call on this encoder. SNAP_OK or SNAP_ERR_STATE. After any error the
 * encoder refuses everything but snap_enc_begin(). */
snap_err_t snap_enc_finish(snap_enc_t *self, const uint8_t **data, size_t *len);

/* Swarms and peers added since snap_enc_begin(). */
uint32_t snap_enc_swarms(const snap_enc_t *self);
uint64_t snap_enc_peers(const snap_enc_t *self);

/* ---- decoding ------------------------------------------------------------------------------ */

/* Validate a whole snapshot and read its header. SNAP_OK or the first error. */
snap_err_t snap_check(const uint8_t *buf, size_t len, snap_header_t *hdr);

/* Iterator over the swarms of a snapshot that passed snap_check(). */
typedef struct {
    const uint8_t *p, *end;
    uint32_t left; /* swarms not yet read */
} snap_iter_t;

/* Position it at the first swarm (buf, len as given to snap_check(), which must have passed). */
void snap_iter_init(snap_iter_t *it, const uint8_t *buf, size_t len);

/* The next swarm: SNAP_OK, or SNAP_END after the last. */
snap_err_t snap_iter_next(snap_iter_t *it, snap_swarm_t *out);

/* Peer i (< n4 + n6, in record order) of a swarm from snap_iter_next(): records are not of one
 * size, so this walks from *off, which the caller starts at 0 and passes back unchanged; returns
 * false after the last. */
bool snap_swarm_peer(const snap_swarm_t *sw, size_t *off, snap_peer_t *out);

/* A short text for err (static storage). */
const char *snap_strerror(snap_err_t err);

#endif
