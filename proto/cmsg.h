/* SPDX-License-Identifier: MIT */
/* cmsg: the messages between a gateway and a node, msgpack-encoded, version 1.
 *
 * A gateway sends a node one request batch (a ZeroMQ message) holding up to CMSG_BATCH_MAX
 * announces and scrapes for partitions the gateway believes the node owns; the node answers
 * with one reply batch holding one reply per request, matched by request id (the gateway's).
 *
 * Wire format. Every message is one msgpack array; fields are positional, so a change of shape
 * is a change of CMSG_VERSION. Integers may use any msgpack integer format that holds their value
 * (encoders here use the shortest); binaries are msgpack bin, the error text is msgpack str.
 *
 *   request batch: [version = 1, type = 1, epoch u64, batch_id u64, [request, ...]]
 *     epoch: the membership epoch of the table the gateway routed with
 *     announce: [id u32, 0, info_hash bin 20, peer_id bin 20, family 4|6, addr bin 4|16,
 *                port u16, event 0..3, left u64, downloaded u64, uploaded u64, numwant i32,
 *                key u32]
 *     scrape:   [id u32, 1, hashes bin 20*n]            1 <= n <= SHOAL_SCRAPE_MAX (256)
 *   reply batch:   [version = 1, type = 2, batch_id u64, epoch u64, [reply, ...]]
 *     epoch: the node's membership epoch
 *     announce: [id u32, 0 (ok), 0, seeders u32, leechers u32, downloaded u32, family 4|6,
 *                peers bin 6*n (family 4) or 18*n (family 6)]  0 <= n <= SHOAL_NUMWANT_MAX
 *     scrape:   [id u32, 0 (ok), 1, [[seeders u32, leechers u32, downloaded u32], ...]]
 *                one entry per requested hash, in request order, 1 <= n <= SHOAL_SCRAPE_MAX
 *     moved:    [id u32, 1, epoch u64]   the node does not own the partition at this epoch
 *     error:    [id u32, 2, message str] 0..CMSG_ERROR_MAX bytes, no NUL byte
 *   A batch holds 0..CMSG_BATCH_MAX requests or replies. An empty request batch is valid: it
 *   asks for an empty reply batch, i.e. the node's epoch.
 *
 * Lookups (the admin API's torrents/{info-hash}: one swarm's counts and a page of its peers)
 * travel as messages of their own, one lookup each, not inside batches: a page of up to
 * CMSG_LOOKUP_PEERS_MAX peers is 24 KB, and keeping it out leaves the batches' shapes, bounds and
 * buffers as they were. They are version 1 too: new message types, no existing shape changed (a
 * node that predates them drops a lookup as undecodable, like any unknown message, so the asker
 * times out).
 *   lookup request: [version = 1, type = 3, epoch u64, id u32, info_hash bin 20, offset u32,
 *                    max_peers u32]                           max_peers <= CMSG_LOOKUP_PEERS_MAX
 *   lookup reply:   [version = 1, type = 4, id u32, epoch u64, status, ...]   epoch: the node's
 *     ok:    ..., 0, found 0|1, seeders u32, leechers u32, downloaded u32, total u32,
 *                 offset u32, peers bin 24*n]   0 <= n <= CMSG_LOOKUP_PEERS_MAX, and
 *                 offset + n <= total unless n = 0 (a page past the end is empty);
 *                 not found: every number and n are 0
 *     moved: ..., 1]
 *     error: ..., 2, message str]   0..CMSG_ERROR_MAX bytes, no NUL byte
 *   A peer record is 24 bytes: family (4|6), flags (bit 0: seeder; no other bit), port u16
 *   big-endian, age in seconds u32 big-endian, address 16 bytes (IPv4: 4 bytes then 12 zeros).
 *
 * A scrape travels as one bin of concatenated hashes rather than an array of 20-byte bins, so a
 * decoded scrape points straight into the message (as bep15_parse does with a datagram). Scrapes
 * carry up to SHOAL_SCRAPE_MAX hashes, not BEP 15's 74: an HTTP scrape may hold more, and a
 * gateway forwards each client scrape to a node in one piece (split only by owner).
 *
 * Decoding is a hand-written strict reader over the input, not msgpack_unpack_next(): msgpack-c
 * allocates an array's declared size before reading it (6 bytes claiming a 2^28-element array
 * allocate 8 GiB). The decoders here allocate nothing, read each byte at most once, check every
 * count against its limit before reading the elements, and reject anything but the exact shape
 * above, including bytes after the message. Encoding writes the same msgpack by hand into the
 * caller's buffer (proto/mpwrite.h: msgpack-c's packer calls a function per field). Nothing here
 * locks or keeps state between calls. */
#ifndef SHOAL_CMSG_H
#define SHOAL_CMSG_H

#include "announce.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CMSG_VERSION   1
#define CMSG_BATCH_MAX 256 /* requests (or replies) in one batch */
#define CMSG_ERROR_MAX 128 /* bytes of an error message, NUL excluded */

/* Worst-case encoded sizes, for sizing buffers and cutting batches (the encoders never exceed
 * them; tests check it). */
#define CMSG_HEADER_BOUND            24 /* a batch without its requests or replies */
#define CMSG_ANNOUNCE_REQUEST_BOUND  111
#define CMSG_SCRAPE_REQUEST_BOUND(n) (10 + 20 * (size_t)(n))
#define CMSG_ANNOUNCE_REPLY_BOUND(n, family)                                                       \
    (27 + (size_t)(n) * ((family) == 6 ? SHOAL_PEER6_LEN : SHOAL_PEER4_LEN))
#define CMSG_SCRAPE_REPLY_BOUND(n) (11 + 16 * (size_t)(n))
#define CMSG_MOVED_REPLY_BOUND     16
#define CMSG_ERROR_REPLY_BOUND     (9 + CMSG_ERROR_MAX)
/* Any valid batch fits these: 1313304 and 1051416 bytes. */
#define CMSG_REQUEST_BATCH_BOUND                                                                   \
    (CMSG_HEADER_BOUND + CMSG_BATCH_MAX * CMSG_SCRAPE_REQUEST_BOUND(SHOAL_SCRAPE_MAX))
#define CMSG_REPLY_BATCH_BOUND                                                                     \
    (CMSG_HEADER_BOUND + CMSG_BATCH_MAX * CMSG_SCRAPE_REPLY_BOUND(SHOAL_SCRAPE_MAX))

typedef enum {
    CMSG_REQUEST_BATCH = 1,
    CMSG_REPLY_BATCH = 2,
    CMSG_LOOKUP_REQUEST = 3,
    CMSG_LOOKUP_REPLY = 4,
} cmsg_type_t;

/* Same numbers as backend_kind_t. */
typedef enum {
    CMSG_ANNOUNCE = 0,
    CMSG_SCRAPE = 1,
} cmsg_kind_t;

typedef enum {
    CMSG_STATUS_OK = 0,
    CMSG_STATUS_MOVED = 1, /* not this node's partition at the node's epoch: refresh and retry */
    CMSG_STATUS_ERROR = 2, /* the node could not serve it; error says why */
} cmsg_status_t;

typedef enum {
    CMSG_OK = 0,
    CMSG_ERR_TRUNCATED, /* the input ends inside the message */
    CMSG_ERR_TRAILING,  /* bytes after the message */
    CMSG_ERR_TYPE,      /* a value of the wrong msgpack type (or the never-used byte 0xc1) */
    CMSG_ERR_VERSION,   /* a version other than CMSG_VERSION */
    CMSG_ERR_MSG_TYPE,  /* not the message type asked for */
    CMSG_ERR_SHAPE,     /* an array with the wrong number of elements */
    CMSG_ERR_RANGE,     /* an integer out of its field's range (kind, status, event, family...) */
    CMSG_ERR_TOO_MANY,  /* more than CMSG_BATCH_MAX requests or replies */
    CMSG_ERR_LENGTH,    /* a bin or str of the wrong length (hash, peer id, address, peers...) */
    CMSG_ERR_COUNT,     /* scrape hashes or stats not in 1..SHOAL_SCRAPE_MAX, or too many peers */
    CMSG_ERR_TEXT,      /* an error message holding a NUL byte */
    CMSG_ERR_ARENA,     /* the caller's scrape-stats arena is too small for this batch */
} cmsg_err_t;

/* One request. For CMSG_ANNOUNCE, announce is complete, peer.family/addr/port included. */
typedef struct {
    uint32_t id; /* the gateway's; echoed in the reply */
    cmsg_kind_t kind;
    announce_t announce;   /* CMSG_ANNOUNCE */
    const uint8_t *hashes; /* CMSG_SCRAPE: n_hashes * 20 bytes */
    size_t n_hashes;
} cmsg_request_t;

typedef struct {
    uint64_t epoch; /* the gateway's membership epoch */
    uint64_t batch_id;
    size_t n;
    cmsg_request_t req[CMSG_BATCH_MAX];
} cmsg_request_batch_t;

/* One reply. Fields that do not belong to its status and kind are zero after decoding and
 * ignored by the encoder. */
typedef struct {
    uint32_t id; /* the request's */
    cmsg_status_t status;
    cmsg_kind_t kind;            /* CMSG_STATUS_OK */
    swarm_stats_t stats;         /* OK announce */
    uint8_t family;              /* OK announce: 4 or 6, the size of a peer record (6 or 18) */
    const uint8_t *peers;        /* OK announce: n_peers compact records */
    size_t n_peers;              /* <= SHOAL_NUMWANT_MAX */
    const swarm_stats_t *scrape; /* OK scrape: n_scrape entries, in request order */
    size_t n_scrape;
    uint64_t epoch;                 /* MOVED: the node's membership epoch */
    char error[CMSG_ERROR_MAX + 1]; /* ERROR: NUL-terminated */
} cmsg_reply_t;

typedef struct {
    uint64_t batch_id; /* the request batch's */
    uint64_t epoch;    /* the node's membership epoch */
    size_t n;
    cmsg_reply_t rep[CMSG_BATCH_MAX];
} cmsg_reply_batch_t;

/* Encode batch b into out[0..cap). Returns the bytes written; -1 if they do not fit in cap (out
 * then holds a partial message); -2 if b breaks a rule the decoder enforces (n, kind, family,
 * event, hash count, peer count, message length or NUL), which is a caller bug. Reads
 * everything b points to only during the call. Sizes never exceed the _BOUND macros above. */
ssize_t cmsg_encode_requests(const cmsg_request_batch_t *b, uint8_t *out, size_t cap);
ssize_t cmsg_encode_replies(const cmsg_reply_batch_t *b, uint8_t *out, size_t cap);

/* Encode a request batch one request at a time, straight from the caller's own records (a
 * gateway's in-flight slots), so no request is copied into a cmsg_request_t first:
 *
 *   cmsg_req_begin(&x, out, cap, epoch, batch_id, n);      n: the requests that will follow
 *   cmsg_req_announce(&x, id, &announce, numwant);          or
 *   uint8_t *h = cmsg_req_scrape(&x, id, n_hashes);         the caller writes n_hashes * 20
 *   if (h) ...                                              bytes of hashes at h
 *   ssize_t len = cmsg_req_end(&x);
 *
 * Exactly n requests must follow. Results as cmsg_encode_requests(): the length; -1 if it did
 * not fit in cap; -2 for a broken rule (n > CMSG_BATCH_MAX, a count other than n, a family,
 * event or hash count the decoder refuses). After a failure the later calls do nothing and
 * cmsg_req_scrape() returns NULL. The bytes are those cmsg_encode_requests() writes for the
 * same batch. The fields are the writer's; read none of them. */
typedef struct {
    uint8_t *start, *p, *end;
    size_t left; /* requests still to come */
    int failed;  /* 0, -1 (full) or -2 (a rule broken) */
} cmsg_req_writer_t;

void cmsg_req_begin(cmsg_req_writer_t *x, uint8_t *out, size_t cap, uint64_t epoch,
                    uint64_t batch_id, size_t n);
void cmsg_req_announce(cmsg_req_writer_t *x, uint32_t id, const announce_t *a, int32_t numwant);
uint8_t *cmsg_req_scrape(cmsg_req_writer_t *x, uint32_t id, size_t n_hashes);
ssize_t cmsg_req_end(const cmsg_req_writer_t *x);

/* Decode a request batch from buf[0..len) into *out (caller's memory; about 31 KB, so keep one
 * per worker rather than on a small stack). The scrape hash pointers point into buf and live as
 * long as it does; nothing else refers to buf. Allocates nothing. On error *out is partly
 * written and must not be used. */
cmsg_err_t cmsg_decode_requests(const uint8_t *buf, size_t len, cmsg_request_batch_t *out);

/* Decode a reply batch from buf[0..len) into *out (about 53 KB, caller's memory). Peer records
 * point into buf; scrape stats are written to arena[0..arena_cap) (caller's memory, 12 bytes an
 * entry; CMSG_BATCH_MAX * SHOAL_SCRAPE_MAX entries always suffice, as does the number of hashes
 * the batch asked about for a well-behaved node; CMSG_ERR_ARENA says the arena was too small)
 * and the replies point there. The decoder has no request to compare with: the caller checks
 * that each reply's id is in flight, and a scrape's n_scrape against its request. Allocates
 * nothing. On error *out and the arena are partly written and must not be used. */
cmsg_err_t cmsg_decode_replies(const uint8_t *buf, size_t len, cmsg_reply_batch_t *out,
                               swarm_stats_t *arena, size_t arena_cap);

/* The most bytes r can take once encoded (what the _BOUND macros give for it); for cutting a
 * batch before it outgrows a buffer. */
size_t cmsg_request_bound(const cmsg_request_t *r);
size_t cmsg_reply_bound(const cmsg_reply_t *r);

/* ---- lookups (format above) ------------------------------------------------------------- */

#define CMSG_LOOKUP_PEERS_MAX      1000 /* peers in one page */
#define CMSG_LOOKUP_PEER_LEN       24   /* bytes of a peer record on the wire */
#define CMSG_LOOKUP_REQUEST_BOUND  47
#define CMSG_LOOKUP_REPLY_BOUND(n) (47 + (size_t)(n)*CMSG_LOOKUP_PEER_LEN)
/* Any valid lookup reply fits this: 24047 bytes. */
#define CMSG_LOOKUP_REPLY_MAX CMSG_LOOKUP_REPLY_BOUND(CMSG_LOOKUP_PEERS_MAX)

/* One peer of a swarm, as the admin API shows it. */
typedef struct {
    uint8_t family;   /* 4 or 6 */
    bool seeder;      /* else a leecher */
    uint16_t port;    /* host order */
    uint32_t age_s;   /* seconds since its last announce (or its import from a snapshot) */
    uint8_t addr[16]; /* IPv4 in addr[0..3], the rest zero */
} cmsg_lookup_peer_t;

/* What a lookup finds: filled by repo_lookup() on a node or in the standalone tracker, and by
 * the lookup reply's decoder on a gateway, so an admin handler formats one struct either way.
 * Plain data, about 24 KB: keep one per handler rather than on a small stack.
 *
 * A swarm's peers form one list, IPv4 before IPv6 and in each family leechers before seeders;
 * a page is peers[offset, offset + n_peers) of it. The list is reordered by announces (a peer
 * that becomes a seeder moves, one that stops leaves a hole filled from the end), so pages read
 * at different times may skip or repeat a peer: a view for operators, not a snapshot. */
typedef struct {
    bool found;          /* the swarm exists; if not, everything below is zero */
    swarm_stats_t stats; /* the numbers a scrape gives, both families */
    uint32_t total;      /* peers in the list (seeders + leechers), for paging */
    uint32_t offset;     /* index of peers[0] in the list, as asked (may be >= total: no peers) */
    size_t n_peers;      /* <= CMSG_LOOKUP_PEERS_MAX */
    cmsg_lookup_peer_t peers[CMSG_LOOKUP_PEERS_MAX]; /* [0, n_peers) set; the rest unspecified */
} cmsg_lookup_result_t;

typedef struct {
    uint64_t epoch; /* the asker's membership epoch (0 if it has none); not interpreted */
    uint32_t id;    /* the asker's; echoed in the reply */
    uint8_t info_hash[SHOAL_HASH_LEN];
    uint32_t offset;
    uint32_t max_peers; /* <= CMSG_LOOKUP_PEERS_MAX */
} cmsg_lookup_request_t;

/* Fields that do not belong to the status are zero after decoding and ignored by the encoder. */
typedef struct {
    uint32_t id;    /* the request's */
    uint64_t epoch; /* the node's membership epoch */
    cmsg_status_t status;
    cmsg_lookup_result_t result;    /* OK */
    char error[CMSG_ERROR_MAX + 1]; /* ERROR: NUL-terminated */
} cmsg_lookup_reply_t;

/* Encode one lookup request or reply into out[0..cap). Returns the bytes written (at most
 * CMSG_LOOKUP_REQUEST_BOUND, or CMSG_LOOKUP_REPLY_BOUND(n_peers)); -1 if they do not fit in cap;
 * -2 if the message breaks a rule the decoder enforces (max_peers; status; a peer's family or
 * IPv4 padding; n_peers; a non-empty page past total; a not-found result with numbers; error
 * text without a NUL), which is a caller bug. */
ssize_t cmsg_encode_lookup_request(const cmsg_lookup_request_t *q, uint8_t *out, size_t cap);
ssize_t cmsg_encode_lookup_reply(const cmsg_lookup_reply_t *r, uint8_t *out, size_t cap);

/* Decode one lookup request or reply from buf[0..len) into *out (caller's memory; the reply's
 * peers are copied, nothing points into buf). Strict as the batch decoders are; a batch given
 * to these (or a lookup to those) is CMSG_ERR_MSG_TYPE, so a server can tell them apart by
 * trying. Allocates nothing. On error *out is partly written and must not be used. */
cmsg_err_t cmsg_decode_lookup_request(const uint8_t *buf, size_t len, cmsg_lookup_request_t *out);
cmsg_err_t cmsg_decode_lookup_reply(const uint8_t *buf, size_t len, cmsg_lookup_reply_t *out);

/* A short text for err (static storage), e.g. "truncated message". */
const char *cmsg_strerror(cmsg_err_t err);

#endif
