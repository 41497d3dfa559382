/* SPDX-License-Identifier: MIT */
/* snapshot: one partition's swarms in msgpack, for failover (format in snapshot.h).
 *
 * Encoding writes the msgpack headers by hand into a buffer the encoder owns. The encoder is a
 * small state machine: idle (new, or after snap_enc_finish()), open (after snap_enc_begin()),
 * failed (after any error; only snap_enc_begin() leaves it). snap_enc_swarm() reserves room for
 * the swarm's whole peers bin, so snap_enc_peer() only stores the record.
 *
 * Invariants of the encoder: len <= cap; left4 and left6 (the peers the open swarm still
 * expects) are zero unless the state is open; while open, cap - len >= 11 * left4 + 23 * left6,
 * so a peer always fits without growing.
 *
 * Decoding is the strict cursor of mpread.h, shared with cmsg.c: each value's header is read and
 * checked against the field's type and limits, then its body against the bytes left, and only
 * then is the body stepped over; the reader's results become snap_err_t where each field is
 * read. Invariant of the reader: r->p <= r->end at all times. */
#include "snapshot.h"

#include "mpread.h"
#include "mpwrite.h"
#include "partition.h"

#include <endian.h>
#include <stdlib.h>
#include <string.h>

#define TOP_FIELDS   6
#define SWARM_FIELDS 3
/* The smallest encoding of a swarm: fixarray, bin 8 header and 20 bytes, positive fixint, empty
 * bin 8. A swarm count above (bytes left) / SWARM_MIN cannot be honest. */
#define SWARM_MIN (1 + 2 + SHOAL_HASH_LEN + 1 + 2)
/* A swarm's encoding without its records, at most: fixarray, hash, uint 32, bin 32 header. */
#define SWARM_HEAD_MAX (1 + 2 + SHOAL_HASH_LEN + 5 + 5)
/* The header of a snapshot, at most: fixarray, version, uint 32 partition, str 8 owner, two
 * uint 64, array 32 header. */
#define HEADER_MAX  (1 + 1 + 5 + 2 + SNAP_OWNER_MAX + 9 + 9 + 5)
#define FLAGS_KNOWN (SNAP_FLAG_SEEDER | SNAP_FLAG_COMPLETED | SNAP_FLAG_V6)

_Static_assert(SNAP_PEER4_LEN == 1 + 4 + SHOAL_PEER4_LEN, "flags, age, compact IPv4 peer");
_Static_assert(SNAP_PEER6_LEN == 1 + 4 + SHOAL_PEER6_LEN, "flags, age, compact IPv6 peer");
_Static_assert(SNAP_OWNER_MAX < 256, "the owner fits a str 8");
_Static_assert(PARTITION_COUNT <= 65536, "a partition fits a uint 16");

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        snap_err_t err_ = (expr);                                                                  \
        if (err_ != SNAP_OK)                                                                       \
            return err_;                                                                           \
    } while (0)

/* The writers are tiny and called per value: inlining them keeps the encoder's inner loop free
 * of calls (the reader's are inlined in mpread.h). */

/* --- encoding --- */

typedef enum {
    ENC_IDLE = 0,
    ENC_OPEN,
    ENC_FAILED,
} enc_state_t;

struct snap_enc {
    uint8_t *buf;
    size_t len, cap;
    size_t count_at; /* offset of the swarm array's 4-byte count, patched by finish */
    enc_state_t state;
    uint32_t left4, left6; /* peers of each family the open swarm still expects */
    uint32_t swarms;
    uint64_t peers;
};

snap_enc_t *snap_enc_new(void)
{
    return calloc(1, sizeof(snap_enc_t));
}

void snap_enc_destroy(snap_enc_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free((*self_p)->buf);
    free(*self_p);
    *self_p = NULL;
}

/* Any error leaves the encoder refusing everything but begin. */
static snap_err_t fail(snap_enc_t *self, snap_err_t err)
{
    self->state = ENC_FAILED;
    self->left4 = self->left6 = 0;
    return err;
}

/* Room for n more bytes; grows by doubling, so a snapshot costs O(log size) reallocations and
 * none once the buffer has been through one snapshot of that size. */
static bool reserve(snap_enc_t *self, size_t n)
{
    if (n <= self->cap - self->len)
        return true;
    if (n > SIZE_MAX - self->len)
        return false;
    size_t need = self->len + n;
    size_t cap = self->cap ? self->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *buf = realloc(self->buf, cap);
    if (!buf)
        return false;
    self->buf = buf;
    self->cap = cap;
    return true;
}

snap_err_t snap_enc_begin(snap_enc_t *self, uint32_t partition, const char *owner, uint64_t epoch,
                          uint64_t wall_ms)
{
    self->len = 0;
    self->swarms = 0;
    self->peers = 0;
    self->left4 = self->left6 = 0;
    size_t olen = owner ? strnlen(owner, SNAP_OWNER_MAX + 1) : 0;
    if (partition >= PARTITION_COUNT || olen < 1 || olen > SNAP_OWNER_MAX)
        return fail(self, SNAP_ERR_RANGE);
    if (!reserve(self, HEADER_MAX))
        return fail(self, SNAP_ERR_NOMEM);
    uint8_t *p = self->buf;
    *p++ = 0x90 | TOP_FIELDS;
    p = mpwrite_put_uint(p, SNAP_VERSION);
    p = mpwrite_put_uint(p, partition);
    p = mpwrite_put_str_head(p, (uint32_t)olen);
    memcpy(p, owner, olen);
    p += olen;
    p = mpwrite_put_uint(p, epoch);
    p = mpwrite_put_uint(p, wall_ms);
    *p++ = 0xdd;
    self->count_at = (size_t)(p - self->buf);
    p = mpwrite_put_be32(p, 0);
    self->len = (size_t)(p - self->buf);
    self->state = ENC_OPEN;
    return SNAP_OK;
}

snap_err_t snap_enc_swarm(snap_enc_t *self, const uint8_t info_hash[SHOAL_HASH_LEN],
                          uint32_t downloaded, uint32_t n4, uint32_t n6)
{
    if (self->state != ENC_OPEN || self->left4 || self->left6)
        return fail(self, SNAP_ERR_STATE);
    /* Beyond these the bin 32 length or the array 32 count would not hold the value: memory
     * could not hold such a snapshot anyway. At most 34 * 2^32, so no overflow in 64 bits. */
    uint64_t body = (uint64_t)n4 * SNAP_PEER4_LEN + (uint64_t)n6 * SNAP_PEER6_LEN;
    if (body > UINT32_MAX || self->swarms == UINT32_MAX || body > SIZE_MAX - SWARM_HEAD_MAX)
        return fail(self, SNAP_ERR_NOMEM);
    if (!reserve(self, SWARM_HEAD_MAX + (size_t)body))
        return fail(self, SNAP_ERR_NOMEM);
    uint8_t *p = self->buf + self->len;
    p[0] = 0x90 | SWARM_FIELDS;
    p[1] = 0xc4;
    p[2] = SHOAL_HASH_LEN;
    memcpy(p + 3, info_hash, SHOAL_HASH_LEN);
    p = mpwrite_put_uint(p + 3 + SHOAL_HASH_LEN, downloaded);
    *p++ = 0xc6;
    p = mpwrite_put_be32(p, (uint32_t)body);
    self->len = (size_t)(p - self->buf);
    self->left4 = n4;
    self->left6 = n6;
    self->swarms++;
    return SNAP_OK;
}

snap_err_t snap_enc_peer(snap_enc_t *self, const snap_peer_t *peer)
{
    /* left4 / left6 are non-zero only inside an open swarm, and the swarm reserved the room:
     * no state test, no growth, just the stores. */
    uint8_t flags = (uint8_t)((peer->seeder ? SNAP_FLAG_SEEDER : 0) |
                              (peer->completed ? SNAP_FLAG_COMPLETED : 0));
    uint32_t age = htole32(peer->age_s);
    uint8_t *p;
    if (peer->family == 4 && self->left4) {
        self->left4--;
        p = self->buf + self->len;
        p[0] = flags;
        memcpy(p + 1, &age, 4);
        memcpy(p + 5, peer->compact, SHOAL_PEER4_LEN);
        self->len += SNAP_PEER4_LEN;
    } else if (peer->family == 6 && self->left6) {
        self->left6--;
        p = self->buf + self->len;
        p[0] = flags | SNAP_FLAG_V6;
        memcpy(p + 1, &age, 4);
        memcpy(p + 5, peer->compact, SHOAL_PEER6_LEN);
        self->len += SNAP_PEER6_LEN;
    } else {
        return fail(self, SNAP_ERR_STATE);
    }
    self->peers++;
    return SNAP_OK;
}

snap_err_t snap_enc_finish(snap_enc_t *self, const uint8_t **data, size_t *len)
{
    if (self->state != ENC_OPEN || self->left4 || self->left6)
        return fail(self, SNAP_ERR_STATE);
    mpwrite_put_be32(self->buf + self->count_at, self->swarms);
    *data = self->buf;
    *len = self->len;
    self->state = ENC_IDLE;
    return SNAP_OK;
}

uint32_t snap_enc_swarms(const snap_enc_t *self)
{
    return self->swarms;
}

uint64_t snap_enc_peers(const snap_enc_t *self)
{
    return self->peers;
}

/* --- decoding --- */

/* Return from the enclosing function if a reader fails, with this codec's error for it. */
#define RD(expr) MPREAD_TRY(expr, SNAP_ERR_TRUNCATED, SNAP_ERR_TYPE, SNAP_ERR_RANGE)

/* Count the records of a peers bin, checking each one's flags and that the last one ends with
 * the bin. */
static snap_err_t count_peers(const uint8_t *p, size_t len, uint32_t *n4, uint32_t *n6)
{
    size_t off = 0;
    uint32_t c4 = 0, c6 = 0;
    while (off < len) {
        uint8_t flags = p[off];
        if (flags & ~FLAGS_KNOWN)
            return SNAP_ERR_PEERS;
        size_t rec = (flags & SNAP_FLAG_V6) ? SNAP_PEER6_LEN : SNAP_PEER4_LEN;
        if (rec > len - off)
            return SNAP_ERR_PEERS;
        off += rec;
        /* A bin holds at most 2^32 - 1 bytes, fewer than 2^32 records: no overflow. */
        if (flags & SNAP_FLAG_V6)
            c6++;
        else
            c4++;
    }
    *n4 = c4;
    *n6 = c6;
    return SNAP_OK;
}

/* One swarm, checked; out gets it. */
static snap_err_t rd_swarm(mpread_t *r, snap_swarm_t *out)
{
    uint64_t n;
    RD(mpread_array(r, &n));
    if (n != SWARM_FIELDS)
        return SNAP_ERR_TYPE;
    RD(mpread_bin_head(r, &n));
    if (n != SHOAL_HASH_LEN)
        return SNAP_ERR_TYPE;
    RD(mpread_body(r, n, &out->info_hash));
    RD(mpread_u32(r, &out->downloaded));
    RD(mpread_bin_head(r, &n));
    RD(mpread_body(r, n, &out->peers));
    out->peers_len = (size_t)n;
    return count_peers(out->peers, out->peers_len, &out->n4, &out->n6);
}

/* The header, up to and including the swarm count. */
static snap_err_t rd_header(mpread_t *r, snap_header_t *h)
{
    uint64_t fields, v;
    const uint8_t *owner;
    mpread_err_t e = mpread_versioned(r, SNAP_VERSION, &fields);
    if (e == MPREAD_RANGE)
        return SNAP_ERR_VERSION; /* any other integer, negative ones included */
    RD(e);
    if (fields != TOP_FIELDS) /* the empty array included */
        return SNAP_ERR_TYPE;
    RD(mpread_uint(r, PARTITION_COUNT - 1, &v));
    h->partition = (uint32_t)v;
    RD(mpread_str_head(r, &v));
    if (v < 1 || v > SNAP_OWNER_MAX)
        return SNAP_ERR_RANGE;
    RD(mpread_body(r, v, &owner));
    if (memchr(owner, '\0', (size_t)v))
        return SNAP_ERR_RANGE;
    memcpy(h->owner, owner, (size_t)v);
    h->owner[v] = '\0';
    RD(mpread_u64(r, &h->epoch));
    RD(mpread_u64(r, &h->wall_ms));
    RD(mpread_array(r, &v));
    /* Checked before any swarm is read, so a forged count costs nothing. */
    if (v > mpread_left(r) / SWARM_MIN)
        return SNAP_ERR_TRUNCATED;
    h->swarms = (uint32_t)v;
    return SNAP_OK;
}

snap_err_t snap_check(const uint8_t *buf, size_t len, snap_header_t *hdr)
{
    if (len == 0) /* before any arithmetic on buf, which may then be NULL */
        return SNAP_ERR_TRUNCATED;
    mpread_t r = {.p = buf, .end = buf + len};
    snap_header_t h;
    snap_swarm_t sw;
    TRY(rd_header(&r, &h));
    for (uint32_t i = 0; i < h.swarms; i++)
        TRY(rd_swarm(&r, &sw));
    if (r.p != r.end)
        return SNAP_ERR_TRAILING;
    *hdr = h;
    return SNAP_OK;
}

void snap_iter_init(snap_iter_t *it, const uint8_t *buf, size_t len)
{
    snap_header_t h;
    it->left = 0;
    it->p = it->end = buf;
    if (len == 0)
        return;
    /* The checked reader again: on input that passed snap_check() it cannot fail, and on
     * anything else the iterator is merely empty, never out of bounds. */
    mpread_t r = {.p = buf, .end = buf + len};
    if (rd_header(&r, &h) != SNAP_OK)
        return;
    it->p = r.p;
    it->end = r.end;
    it->left = h.swarms;
}

snap_err_t snap_iter_next(snap_iter_t *it, snap_swarm_t *out)
{
    if (it->left == 0)
        return SNAP_END;
    mpread_t r = {.p = it->p, .end = it->end};
    if (rd_swarm(&r, out) != SNAP_OK) {
        it->left = 0; /* only if the snapshot did not pass snap_check() */
        return SNAP_END;
    }
    it->p = r.p;
    it->left--;
    return SNAP_OK;
}

bool snap_swarm_peer(const snap_swarm_t *sw, size_t *off, snap_peer_t *out)
{
    size_t o = *off;
    if (o >= sw->peers_len)
        return false;
    const uint8_t *p = sw->peers + o;
    bool v6 = p[0] & SNAP_FLAG_V6;
    size_t rec = v6 ? SNAP_PEER6_LEN : SNAP_PEER4_LEN;
    if (rec > sw->peers_len - o) /* only if the snapshot did not pass snap_check() */
        return false;
    uint32_t age;
    memcpy(&age, p + 1, 4);
    out->family = v6 ? 6 : 4;
    out->seeder = p[0] & SNAP_FLAG_SEEDER;
    out->completed = p[0] & SNAP_FLAG_COMPLETED;
    out->age_s = le32toh(age);
    out->compact = p + 5;
    *off = o + rec;
    return true;
}

const char *snap_strerror(snap_err_t err)
{
    switch (err) {
    case SNAP_OK:
        return "ok";
    case SNAP_END:
        return "no more items";
    case SNAP_ERR_TRUNCATED:
        return "truncated snapshot";
    case SNAP_ERR_TYPE:
        return "field of the wrong type or shape";
    case SNAP_ERR_VERSION:
        return "unsupported snapshot version";
    case SNAP_ERR_RANGE:
        return "field out of range";
    case SNAP_ERR_PEERS:
        return "malformed peer records";
    case SNAP_ERR_TRAILING:
        return "bytes after the snapshot";
    case SNAP_ERR_NOMEM:
        return "out of memory";
    case SNAP_ERR_STATE:
        return "encoder calls out of order";
    }
    return "unknown error";
}
