/* SPDX-License-Identifier: MIT */
/* cmsg: gateway <-> node batches in msgpack (format in cmsg.h).
 *
 * Encoding drives msgpack-c's packer with a sink that writes into the caller's buffer and fails
 * once it is full. Decoding is a cursor over the input that reads each value's header, checks it
 * against the field's type and limits, and only then steps over its body, so no count or length
 * taken from the input is trusted before it is checked against both its limit and the bytes
 * left.
 *
 * Invariant of the reader: r->p <= r->end at all times; every read first checks that the bytes
 * it needs lie before end. */
#include "cmsg.h"

#include <endian.h>
#include <msgpack/pack.h>
#include <stdbool.h>
#include <string.h>

_Static_assert(CMSG_SCRAPE_REPLY_BOUND(SHOAL_SCRAPE_MAX) >=
                   CMSG_ANNOUNCE_REPLY_BOUND(SHOAL_NUMWANT_MAX, 6),
               "CMSG_REPLY_BATCH_BOUND takes the largest reply");
_Static_assert(CMSG_SCRAPE_REPLY_BOUND(SHOAL_SCRAPE_MAX) >= CMSG_ERROR_REPLY_BOUND,
               "CMSG_REPLY_BATCH_BOUND takes the largest reply");
_Static_assert(CMSG_BATCH_MAX < 65536 && SHOAL_SCRAPE_MAX < 65536,
               "array headers are at most 3 bytes in the bounds");
_Static_assert((SHOAL_SCRAPE_MAX * SHOAL_HASH_LEN < 65536) &&
                   (SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN < 65536),
               "bin headers are at most 3 bytes in the bounds");

#define HEADER_FIELDS   5
#define ANNOUNCE_FIELDS 13
#define SCRAPE_FIELDS   3
#define OK_ANN_FIELDS   8
#define OK_SCR_FIELDS   4
#define STATUS_FIELDS   3 /* moved and error */

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        cmsg_err_t err_ = (expr);                                                                  \
        if (err_ != CMSG_OK)                                                                       \
            return err_;                                                                           \
    } while (0)

/* --- validation shared by the encoders --- */

static size_t peer_len(uint8_t family)
{
    return family == 6 ? SHOAL_PEER6_LEN : SHOAL_PEER4_LEN;
}

static bool request_valid(const cmsg_request_t *q)
{
    if (q->kind == CMSG_ANNOUNCE) {
        const announce_t *a = &q->announce;
        return (a->peer.family == 4 || a->peer.family == 6) && (unsigned)a->event <= 3;
    }
    return q->kind == CMSG_SCRAPE && q->n_hashes >= 1 && q->n_hashes <= SHOAL_SCRAPE_MAX &&
           q->hashes;
}

static bool reply_valid(const cmsg_reply_t *r)
{
    switch (r->status) {
    case CMSG_STATUS_OK:
        if (r->kind == CMSG_ANNOUNCE)
            return (r->family == 4 || r->family == 6) && r->n_peers <= SHOAL_NUMWANT_MAX &&
                   (r->peers || r->n_peers == 0);
        return r->kind == CMSG_SCRAPE && r->n_scrape >= 1 && r->n_scrape <= SHOAL_SCRAPE_MAX &&
               r->scrape;
    case CMSG_STATUS_MOVED:
        return true;
    case CMSG_STATUS_ERROR:
        return memchr(r->error, '\0', sizeof(r->error)) != NULL;
    }
    return false;
}

size_t cmsg_request_bound(const cmsg_request_t *r)
{
    return r->kind == CMSG_SCRAPE ? CMSG_SCRAPE_REQUEST_BOUND(r->n_hashes)
                                  : CMSG_ANNOUNCE_REQUEST_BOUND;
}

size_t cmsg_reply_bound(const cmsg_reply_t *r)
{
    if (r->status == CMSG_STATUS_MOVED)
        return CMSG_MOVED_REPLY_BOUND;
    if (r->status == CMSG_STATUS_ERROR)
        return CMSG_ERROR_REPLY_BOUND;
    if (r->kind == CMSG_SCRAPE)
        return CMSG_SCRAPE_REPLY_BOUND(r->n_scrape);
    return CMSG_ANNOUNCE_REPLY_BOUND(r->n_peers, r->family);
}

/* --- encoding --- */

typedef struct {
    uint8_t *buf;
    size_t cap;
    size_t len;
    bool full; /* a write did not fit: refuse every later one, so nothing lands out of order */
} sink_t;

static int sink_write(void *data, const char *src, size_t n)
{
    sink_t *s = data;
    if (s->full || n > s->cap - s->len) {
        s->full = true;
        return -1;
    }
    uint8_t *dst = s->buf + s->len;
    /* msgpack-c writes headers and numbers of 1, 2, 3, 5 or 9 bytes and 20-byte hashes: copies
     * of a constant size compile to a move or two, a memcpy call costs more than the copy. */
    switch (n) {
    case 0: /* an empty body, src may be NULL */
        break;
    case 1:
        dst[0] = (uint8_t)src[0];
        break;
    case 2:
        memcpy(dst, src, 2);
        break;
    case 3:
        memcpy(dst, src, 3);
        break;
    case 5:
        memcpy(dst, src, 5);
        break;
    case 9:
        memcpy(dst, src, 9);
        break;
    case SHOAL_HASH_LEN:
        memcpy(dst, src, SHOAL_HASH_LEN);
        break;
    default:
        memcpy(dst, src, n);
    }
    s->len += n;
    return 0;
}

static void pack_bin(msgpack_packer *pk, const void *p, size_t n)
{
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, p, n);
}

/* Packer errors are not checked call by call: the sink latches the first one. */
static void pack_request(msgpack_packer *pk, const cmsg_request_t *q)
{
    if (q->kind == CMSG_SCRAPE) {
        msgpack_pack_array(pk, SCRAPE_FIELDS);
        msgpack_pack_uint32(pk, q->id);
        msgpack_pack_uint8(pk, CMSG_SCRAPE);
        pack_bin(pk, q->hashes, q->n_hashes * SHOAL_HASH_LEN);
        return;
    }
    const announce_t *a = &q->announce;
    msgpack_pack_array(pk, ANNOUNCE_FIELDS);
    msgpack_pack_uint32(pk, q->id);
    msgpack_pack_uint8(pk, CMSG_ANNOUNCE);
    pack_bin(pk, a->info_hash, SHOAL_HASH_LEN);
    pack_bin(pk, a->peer_id, SHOAL_HASH_LEN);
    msgpack_pack_uint8(pk, a->peer.family);
    pack_bin(pk, a->peer.addr, a->peer.family == 4 ? 4 : 16);
    msgpack_pack_uint16(pk, a->peer.port);
    msgpack_pack_uint8(pk, (uint8_t)a->event);
    msgpack_pack_uint64(pk, a->left);
    msgpack_pack_uint64(pk, a->downloaded);
    msgpack_pack_uint64(pk, a->uploaded);
    msgpack_pack_int32(pk, a->numwant);
    msgpack_pack_uint32(pk, a->key);
}

static void pack_reply(msgpack_packer *pk, const cmsg_reply_t *r)
{
    if (r->status == CMSG_STATUS_MOVED) {
        msgpack_pack_array(pk, STATUS_FIELDS);
        msgpack_pack_uint32(pk, r->id);
        msgpack_pack_uint8(pk, CMSG_STATUS_MOVED);
        msgpack_pack_uint64(pk, r->epoch);
        return;
    }
    if (r->status == CMSG_STATUS_ERROR) {
        size_t n = strlen(r->error);
        msgpack_pack_array(pk, STATUS_FIELDS);
        msgpack_pack_uint32(pk, r->id);
        msgpack_pack_uint8(pk, CMSG_STATUS_ERROR);
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, r->error, n);
        return;
    }
    if (r->kind == CMSG_SCRAPE) {
        msgpack_pack_array(pk, OK_SCR_FIELDS);
        msgpack_pack_uint32(pk, r->id);
        msgpack_pack_uint8(pk, CMSG_STATUS_OK);
        msgpack_pack_uint8(pk, CMSG_SCRAPE);
        msgpack_pack_array(pk, r->n_scrape);
        for (size_t i = 0; i < r->n_scrape; i++) {
            msgpack_pack_array(pk, 3);
            msgpack_pack_uint32(pk, r->scrape[i].seeders);
            msgpack_pack_uint32(pk, r->scrape[i].leechers);
            msgpack_pack_uint32(pk, r->scrape[i].downloaded);
        }
        return;
    }
    msgpack_pack_array(pk, OK_ANN_FIELDS);
    msgpack_pack_uint32(pk, r->id);
    msgpack_pack_uint8(pk, CMSG_STATUS_OK);
    msgpack_pack_uint8(pk, CMSG_ANNOUNCE);
    msgpack_pack_uint32(pk, r->stats.seeders);
    msgpack_pack_uint32(pk, r->stats.leechers);
    msgpack_pack_uint32(pk, r->stats.downloaded);
    msgpack_pack_uint8(pk, r->family);
    pack_bin(pk, r->peers, r->n_peers * peer_len(r->family));
}

static void pack_header(msgpack_packer *pk, cmsg_type_t type, uint64_t a, uint64_t b, size_t n)
{
    msgpack_pack_array(pk, HEADER_FIELDS);
    msgpack_pack_uint8(pk, CMSG_VERSION);
    msgpack_pack_uint8(pk, (uint8_t)type);
    msgpack_pack_uint64(pk, a);
    msgpack_pack_uint64(pk, b);
    msgpack_pack_array(pk, n);
}

ssize_t cmsg_encode_requests(const cmsg_request_batch_t *b, uint8_t *out, size_t cap)
{
    if (b->n > CMSG_BATCH_MAX)
        return -2;
    for (size_t i = 0; i < b->n; i++)
        if (!request_valid(&b->req[i]))
            return -2;
    sink_t s = {.buf = out, .cap = cap};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &s, sink_write);
    pack_header(&pk, CMSG_REQUEST_BATCH, b->epoch, b->batch_id, b->n);
    for (size_t i = 0; i < b->n && !s.full; i++)
        pack_request(&pk, &b->req[i]);
    return s.full ? -1 : (ssize_t)s.len;
}

ssize_t cmsg_encode_replies(const cmsg_reply_batch_t *b, uint8_t *out, size_t cap)
{
    if (b->n > CMSG_BATCH_MAX)
        return -2;
    for (size_t i = 0; i < b->n; i++)
        if (!reply_valid(&b->rep[i]))
            return -2;
    sink_t s = {.buf = out, .cap = cap};
    msgpack_packer pk;
    msgpack_packer_init(&pk, &s, sink_write);
    pack_header(&pk, CMSG_REPLY_BATCH, b->batch_id, b->epoch, b->n);
    for (size_t i = 0; i < b->n && !s.full; i++)
        pack_reply(&pk, &b->rep[i]);
    return s.full ? -1 : (ssize_t)s.len;
}

/* --- decoding --- */

/* The readers are small and called per field: inlined, a request decodes in less than half the
 * instructions. */
#define INLINE static inline __attribute__((always_inline))

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} rd_t;

/* A big-endian number of n = 1, 2, 4 or 8 bytes; fixed-size loads, no loop. */
INLINE uint64_t load_be(const uint8_t *p, size_t n)
{
    uint16_t v16;
    uint32_t v32;
    uint64_t v64;
    switch (n) {
    case 1:
        return p[0];
    case 2:
        memcpy(&v16, p, 2);
        return be16toh(v16);
    case 4:
        memcpy(&v32, p, 4);
        return be32toh(v32);
    default:
        memcpy(&v64, p, 8);
        return be64toh(v64);
    }
}

INLINE size_t left(const rd_t *r)
{
    return (size_t)(r->end - r->p);
}

/* Read a header byte plus an n-byte big-endian number after it; *v gets the number. */
INLINE cmsg_err_t rd_head(rd_t *r, size_t n, uint64_t *v)
{
    if (left(r) < 1 + n)
        return CMSG_ERR_TRUNCATED;
    *v = load_be(r->p + 1, n);
    r->p += 1 + n;
    return CMSG_OK;
}

INLINE cmsg_err_t rd_array(rd_t *r, uint64_t *n)
{
    if (left(r) < 1)
        return CMSG_ERR_TRUNCATED;
    uint8_t b = *r->p;
    if ((b & 0xf0) == 0x90) {
        *n = b & 0x0f;
        r->p++;
        return CMSG_OK;
    }
    if (b == 0xdc)
        return rd_head(r, 2, n);
    if (b == 0xdd)
        return rd_head(r, 4, n);
    return CMSG_ERR_TYPE;
}

/* Any msgpack integer. A negative one sets *neg and leaves its value in *s; otherwise *u. */
INLINE cmsg_err_t rd_integer(rd_t *r, bool *neg, uint64_t *u, int64_t *s)
{
    if (left(r) < 1)
        return CMSG_ERR_TRUNCATED;
    uint8_t b = *r->p;
    *neg = false;
    if (b <= 0x7f) { /* positive fixint */
        *u = b;
        r->p++;
        return CMSG_OK;
    }
    if (b >= 0xe0) { /* negative fixint */
        *neg = true;
        *s = (int8_t)b;
        r->p++;
        return CMSG_OK;
    }
    if (b >= 0xcc && b <= 0xcf) /* uint 8, 16, 32, 64 */
        return rd_head(r, (size_t)1 << (b - 0xcc), u);
    if (b >= 0xd0 && b <= 0xd3) { /* int 8, 16, 32, 64 */
        size_t n = (size_t)1 << (b - 0xd0);
        uint64_t raw;
        TRY(rd_head(r, n, &raw));
        /* Sign-extend from n bytes. */
        unsigned shift = (unsigned)(64 - 8 * n);
        int64_t v = (int64_t)(raw << shift) >> shift;
        if (v < 0) {
            *neg = true;
            *s = v;
        } else {
            *u = (uint64_t)v;
        }
        return CMSG_OK;
    }
    return CMSG_ERR_TYPE;
}

INLINE cmsg_err_t rd_uint(rd_t *r, uint64_t max, uint64_t *v)
{
    bool neg;
    int64_t s;
    TRY(rd_integer(r, &neg, v, &s));
    return !neg && *v <= max ? CMSG_OK : CMSG_ERR_RANGE;
}

INLINE cmsg_err_t rd_u32(rd_t *r, uint32_t *v)
{
    uint64_t x;
    TRY(rd_uint(r, UINT32_MAX, &x));
    *v = (uint32_t)x;
    return CMSG_OK;
}

INLINE cmsg_err_t rd_u64(rd_t *r, uint64_t *v)
{
    return rd_uint(r, UINT64_MAX, v);
}

INLINE cmsg_err_t rd_i32(rd_t *r, int32_t *v)
{
    bool neg;
    uint64_t u = 0;
    int64_t s = 0;
    TRY(rd_integer(r, &neg, &u, &s));
    if (neg ? s < INT32_MIN : u > INT32_MAX)
        return CMSG_ERR_RANGE;
    *v = neg ? (int32_t)s : (int32_t)u;
    return CMSG_OK;
}

/* A bin (or str when want_str) header; the body is taken by rd_body once its length is checked,
 * so a wrong length is reported as such rather than as a truncation. */
INLINE cmsg_err_t rd_raw_head(rd_t *r, bool want_str, uint64_t *n)
{
    if (left(r) < 1)
        return CMSG_ERR_TRUNCATED;
    uint8_t b = *r->p;
    if (want_str) {
        if ((b & 0xe0) == 0xa0) {
            *n = b & 0x1f;
            r->p++;
            return CMSG_OK;
        }
        if (b >= 0xd9 && b <= 0xdb)
            return rd_head(r, (size_t)1 << (b - 0xd9), n);
    } else if (b >= 0xc4 && b <= 0xc6) {
        return rd_head(r, (size_t)1 << (b - 0xc4), n);
    }
    return CMSG_ERR_TYPE;
}

INLINE cmsg_err_t rd_body(rd_t *r, uint64_t n, const uint8_t **body)
{
    if (left(r) < n)
        return CMSG_ERR_TRUNCATED;
    *body = r->p;
    r->p += n;
    return CMSG_OK;
}

/* A bin of exactly n bytes, copied to dst. */
INLINE cmsg_err_t rd_bin_exact(rd_t *r, uint64_t n, uint8_t *dst)
{
    uint64_t len;
    const uint8_t *body;
    TRY(rd_raw_head(r, false, &len));
    if (len != n)
        return CMSG_ERR_LENGTH;
    TRY(rd_body(r, len, &body));
    memcpy(dst, body, n);
    return CMSG_OK;
}

/* A bin of n records of rec bytes each, min_n <= n <= max_n, left in the input. */
static cmsg_err_t rd_records(rd_t *r, size_t rec, size_t min_n, size_t max_n, const uint8_t **p,
                             size_t *n)
{
    uint64_t len;
    TRY(rd_raw_head(r, false, &len));
    if (len % rec != 0)
        return CMSG_ERR_LENGTH;
    if (len / rec < min_n || len / rec > max_n)
        return CMSG_ERR_COUNT;
    TRY(rd_body(r, len, p));
    *n = (size_t)(len / rec);
    return CMSG_OK;
}

/* The batch header up to and including the item count: [version, type, a, b, [... */
static cmsg_err_t rd_header(rd_t *r, cmsg_type_t want, uint64_t *a, uint64_t *b, size_t *n)
{
    uint64_t fields, version, type, items;
    TRY(rd_array(r, &fields));
    /* Version before shape: a later version may change the shape. */
    if (fields < 1)
        return CMSG_ERR_SHAPE;
    cmsg_err_t e = rd_uint(r, UINT64_MAX, &version);
    if (e == CMSG_ERR_RANGE || (e == CMSG_OK && version != CMSG_VERSION))
        return CMSG_ERR_VERSION; /* any other integer, negative ones included */
    TRY(e);
    if (fields < 2)
        return CMSG_ERR_SHAPE;
    e = rd_uint(r, UINT64_MAX, &type);
    if (e == CMSG_ERR_RANGE || (e == CMSG_OK && type != (uint64_t)want))
        return CMSG_ERR_MSG_TYPE;
    TRY(e);
    if (fields != HEADER_FIELDS)
        return CMSG_ERR_SHAPE;
    TRY(rd_u64(r, a));
    TRY(rd_u64(r, b));
    TRY(rd_array(r, &items));
    if (items > CMSG_BATCH_MAX)
        return CMSG_ERR_TOO_MANY;
    *n = (size_t)items;
    return CMSG_OK;
}

static cmsg_err_t rd_announce(rd_t *r, announce_t *a)
{
    uint64_t v;
    memset(a, 0, sizeof(*a));
    TRY(rd_bin_exact(r, SHOAL_HASH_LEN, a->info_hash));
    TRY(rd_bin_exact(r, SHOAL_HASH_LEN, a->peer_id));
    TRY(rd_uint(r, UINT8_MAX, &v));
    if (v != 4 && v != 6)
        return CMSG_ERR_RANGE;
    a->peer.family = (uint8_t)v;
    TRY(rd_bin_exact(r, v == 4 ? 4 : 16, a->peer.addr));
    TRY(rd_uint(r, UINT16_MAX, &v));
    a->peer.port = (uint16_t)v;
    TRY(rd_uint(r, ANNOUNCE_STOPPED, &v));
    a->event = (announce_event_t)v;
    TRY(rd_u64(r, &a->left));
    TRY(rd_u64(r, &a->downloaded));
    TRY(rd_u64(r, &a->uploaded));
    TRY(rd_i32(r, &a->numwant));
    return rd_u32(r, &a->key);
}

static cmsg_err_t rd_request(rd_t *r, cmsg_request_t *q)
{
    uint64_t fields, kind;
    TRY(rd_array(r, &fields));
    if (fields < 2)
        return CMSG_ERR_SHAPE;
    TRY(rd_u32(r, &q->id));
    TRY(rd_uint(r, CMSG_SCRAPE, &kind));
    q->kind = (cmsg_kind_t)kind;
    if (fields != (kind == CMSG_ANNOUNCE ? ANNOUNCE_FIELDS : SCRAPE_FIELDS))
        return CMSG_ERR_SHAPE;
    q->hashes = NULL;
    q->n_hashes = 0;
    if (kind == CMSG_ANNOUNCE)
        return rd_announce(r, &q->announce);
    memset(&q->announce, 0, sizeof(q->announce));
    return rd_records(r, SHOAL_HASH_LEN, 1, SHOAL_SCRAPE_MAX, &q->hashes, &q->n_hashes);
}

cmsg_err_t cmsg_decode_requests(const uint8_t *buf, size_t len, cmsg_request_batch_t *out)
{
    if (len == 0) /* before any arithmetic on buf, which may then be NULL */
        return CMSG_ERR_TRUNCATED;
    rd_t r = {.p = buf, .end = buf + len};
    TRY(rd_header(&r, CMSG_REQUEST_BATCH, &out->epoch, &out->batch_id, &out->n));
    for (size_t i = 0; i < out->n; i++)
        TRY(rd_request(&r, &out->req[i]));
    return r.p == r.end ? CMSG_OK : CMSG_ERR_TRAILING;
}

/* The stats of a scrape reply, appended to the arena (*used entries taken so far). */
static cmsg_err_t rd_scrape_stats(rd_t *r, cmsg_reply_t *q, swarm_stats_t *arena, size_t cap,
                                  size_t *used)
{
    uint64_t n, fields;
    TRY(rd_array(r, &n));
    if (n < 1 || n > SHOAL_SCRAPE_MAX)
        return CMSG_ERR_COUNT;
    if (n > cap - *used)
        return CMSG_ERR_ARENA;
    swarm_stats_t *st = arena + *used;
    for (size_t i = 0; i < n; i++) {
        TRY(rd_array(r, &fields));
        if (fields != 3)
            return CMSG_ERR_SHAPE;
        TRY(rd_u32(r, &st[i].seeders));
        TRY(rd_u32(r, &st[i].leechers));
        TRY(rd_u32(r, &st[i].downloaded));
    }
    *used += (size_t)n;
    q->scrape = st;
    q->n_scrape = (size_t)n;
    return CMSG_OK;
}

static cmsg_err_t rd_reply(rd_t *r, cmsg_reply_t *q, swarm_stats_t *arena, size_t cap, size_t *used)
{
    uint64_t fields, v;
    memset(q, 0, sizeof(*q));
    TRY(rd_array(r, &fields));
    if (fields < 2)
        return CMSG_ERR_SHAPE;
    TRY(rd_u32(r, &q->id));
    TRY(rd_uint(r, CMSG_STATUS_ERROR, &v));
    q->status = (cmsg_status_t)v;
    if (q->status == CMSG_STATUS_MOVED) {
        if (fields != STATUS_FIELDS)
            return CMSG_ERR_SHAPE;
        return rd_u64(r, &q->epoch);
    }
    if (q->status == CMSG_STATUS_ERROR) {
        const uint8_t *text;
        if (fields != STATUS_FIELDS)
            return CMSG_ERR_SHAPE;
        TRY(rd_raw_head(r, true, &v));
        if (v > CMSG_ERROR_MAX)
            return CMSG_ERR_LENGTH;
        TRY(rd_body(r, v, &text));
        if (memchr(text, '\0', (size_t)v))
            return CMSG_ERR_TEXT;
        memcpy(q->error, text, (size_t)v);
        return CMSG_OK;
    }
    if (fields < 3)
        return CMSG_ERR_SHAPE;
    TRY(rd_uint(r, CMSG_SCRAPE, &v));
    q->kind = (cmsg_kind_t)v;
    if (fields != (q->kind == CMSG_ANNOUNCE ? OK_ANN_FIELDS : OK_SCR_FIELDS))
        return CMSG_ERR_SHAPE;
    if (q->kind == CMSG_SCRAPE)
        return rd_scrape_stats(r, q, arena, cap, used);
    TRY(rd_u32(r, &q->stats.seeders));
    TRY(rd_u32(r, &q->stats.leechers));
    TRY(rd_u32(r, &q->stats.downloaded));
    TRY(rd_uint(r, UINT8_MAX, &v));
    if (v != 4 && v != 6)
        return CMSG_ERR_RANGE;
    q->family = (uint8_t)v;
    return rd_records(r, peer_len(q->family), 0, SHOAL_NUMWANT_MAX, &q->peers, &q->n_peers);
}

cmsg_err_t cmsg_decode_replies(const uint8_t *buf, size_t len, cmsg_reply_batch_t *out,
                               swarm_stats_t *arena, size_t arena_cap)
{
    if (len == 0) /* before any arithmetic on buf, which may then be NULL */
        return CMSG_ERR_TRUNCATED;
    rd_t r = {.p = buf, .end = buf + len};
    size_t used = 0;
    TRY(rd_header(&r, CMSG_REPLY_BATCH, &out->batch_id, &out->epoch, &out->n));
    for (size_t i = 0; i < out->n; i++)
        TRY(rd_reply(&r, &out->rep[i], arena, arena_cap, &used));
    return r.p == r.end ? CMSG_OK : CMSG_ERR_TRAILING;
}

const char *cmsg_strerror(cmsg_err_t err)
{
    switch (err) {
    case CMSG_OK:
        return "ok";
    case CMSG_ERR_TRUNCATED:
        return "truncated message";
    case CMSG_ERR_TRAILING:
        return "bytes after the message";
    case CMSG_ERR_TYPE:
        return "field of the wrong type";
    case CMSG_ERR_VERSION:
        return "unsupported message version";
    case CMSG_ERR_MSG_TYPE:
        return "unexpected message type";
    case CMSG_ERR_SHAPE:
        return "wrong number of fields";
    case CMSG_ERR_RANGE:
        return "field out of range";
    case CMSG_ERR_TOO_MANY:
        return "too many items in batch";
    case CMSG_ERR_LENGTH:
        return "binary field of the wrong length";
    case CMSG_ERR_COUNT:
        return "item count out of range";
    case CMSG_ERR_TEXT:
        return "error message holds a NUL byte";
    case CMSG_ERR_ARENA:
        return "scrape arena too small";
    }
    return "unknown error";
}
