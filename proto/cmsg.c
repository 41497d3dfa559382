/* SPDX-License-Identifier: MIT */
/* cmsg: gateway <-> node batches in msgpack (format in cmsg.h).
 *
 * Encoding is the writer of mpwrite.h storing straight into the caller's buffer (the incremental
 * cmsg_req_* calls let a gateway encode each request from its own records); the first value
 * that does not fit fails the whole message. Decoding is the strict cursor of mpread.h, shared with
 * snapshot.c: each value's header is read and checked against the field's type and limits, and only
 * then is its body stepped over, so no count or length taken from the input is trusted before it is
 * checked against both its limit and the bytes left. The reader's results become cmsg_err_t here,
 * where each field is read.
 *
 * Invariant of the reader: r->p <= r->end at all times; every read first checks that the bytes
 * it needs lie before end. */
#include "cmsg.h"

#include "mpread.h"
#include "mpwrite.h"

#include <stdbool.h>
#include <string.h>

_Static_assert(CMSG_SCRAPE_REPLY_BOUND(SHOAL_SCRAPE_MAX) >=
                   CMSG_ANNOUNCE_REPLY_BOUND(SHOAL_NUMWANT_MAX, 6),
               "CMSG_REPLY_BATCH_BOUND takes the largest reply");
_Static_assert(CMSG_SCRAPE_REPLY_BOUND(SHOAL_SCRAPE_MAX) >= CMSG_ERROR_REPLY_BOUND,
               "CMSG_REPLY_BATCH_BOUND takes the largest reply");
_Static_assert(CMSG_LOOKUP_PEERS_MAX *CMSG_LOOKUP_PEER_LEN < 65536,
               "a lookup page's bin header is at most 3 bytes in the bound");
_Static_assert(CMSG_LOOKUP_REPLY_BOUND(0) >= 19 && CMSG_LOOKUP_REPLY_MAX >= 17 + CMSG_ERROR_MAX,
               "CMSG_LOOKUP_REPLY_MAX takes moved and error replies");
_Static_assert(CMSG_BATCH_MAX < 65536 && SHOAL_SCRAPE_MAX < 65536,
               "array headers are at most 3 bytes in the bounds");
_Static_assert((SHOAL_SCRAPE_MAX * SHOAL_HASH_LEN < 65536) &&
                   (SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN < 65536),
               "bin headers are at most 3 bytes in the bounds");

#define HEADER_FIELDS     5
#define ANNOUNCE_FIELDS   13
#define SCRAPE_FIELDS     3
#define OK_ANN_FIELDS     8
#define OK_SCR_FIELDS     4
#define STATUS_FIELDS     3 /* moved and error */
#define LOOKUP_REQ_FIELDS 7
#define LOOKUP_OK_FIELDS  12
#define LOOKUP_MOV_FIELDS 5
#define LOOKUP_ERR_FIELDS 6

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

/* Writer errors are not checked call by call: the cursor latches the first one. */
static void put_announce(mpwrite_t *w, uint32_t id, const announce_t *a, int32_t numwant)
{
    mpwrite_array(w, ANNOUNCE_FIELDS);
    mpwrite_uint(w, id);
    mpwrite_uint(w, CMSG_ANNOUNCE);
    mpwrite_bin(w, a->info_hash, SHOAL_HASH_LEN);
    mpwrite_bin(w, a->peer_id, SHOAL_HASH_LEN);
    mpwrite_uint(w, a->peer.family);
    mpwrite_bin(w, a->peer.addr, a->peer.family == 4 ? 4 : 16);
    mpwrite_uint(w, a->peer.port);
    mpwrite_uint(w, (uint8_t)a->event);
    mpwrite_uint(w, a->left);
    mpwrite_uint(w, a->downloaded);
    mpwrite_uint(w, a->uploaded);
    mpwrite_int(w, numwant);
    mpwrite_uint(w, a->key);
}

/* A scrape's head and the room for its n hashes, or NULL. */
static uint8_t *put_scrape(mpwrite_t *w, uint32_t id, size_t n)
{
    mpwrite_array(w, SCRAPE_FIELDS);
    mpwrite_uint(w, id);
    mpwrite_uint(w, CMSG_SCRAPE);
    mpwrite_bin_head(w, (uint32_t)(n * SHOAL_HASH_LEN));
    uint8_t *p = mpwrite_room(w, n * SHOAL_HASH_LEN);
    if (p)
        w->p = p + n * SHOAL_HASH_LEN;
    return p;
}

static void put_reply(mpwrite_t *w, const cmsg_reply_t *r)
{
    if (r->status == CMSG_STATUS_MOVED) {
        mpwrite_array(w, STATUS_FIELDS);
        mpwrite_uint(w, r->id);
        mpwrite_uint(w, CMSG_STATUS_MOVED);
        mpwrite_uint(w, r->epoch);
        return;
    }
    if (r->status == CMSG_STATUS_ERROR) {
        mpwrite_array(w, STATUS_FIELDS);
        mpwrite_uint(w, r->id);
        mpwrite_uint(w, CMSG_STATUS_ERROR);
        mpwrite_str(w, r->error, (uint32_t)strlen(r->error));
        return;
    }
    if (r->kind == CMSG_SCRAPE) {
        mpwrite_array(w, OK_SCR_FIELDS);
        mpwrite_uint(w, r->id);
        mpwrite_uint(w, CMSG_STATUS_OK);
        mpwrite_uint(w, CMSG_SCRAPE);
        mpwrite_array(w, (uint32_t)r->n_scrape);
        for (size_t i = 0; i < r->n_scrape; i++) {
            mpwrite_array(w, 3);
            mpwrite_uint(w, r->scrape[i].seeders);
            mpwrite_uint(w, r->scrape[i].leechers);
            mpwrite_uint(w, r->scrape[i].downloaded);
        }
        return;
    }
    mpwrite_array(w, OK_ANN_FIELDS);
    mpwrite_uint(w, r->id);
    mpwrite_uint(w, CMSG_STATUS_OK);
    mpwrite_uint(w, CMSG_ANNOUNCE);
    mpwrite_uint(w, r->stats.seeders);
    mpwrite_uint(w, r->stats.leechers);
    mpwrite_uint(w, r->stats.downloaded);
    mpwrite_uint(w, r->family);
    mpwrite_bin(w, r->peers, (uint32_t)(r->n_peers * peer_len(r->family)));
}

static void put_header(mpwrite_t *w, cmsg_type_t type, uint64_t a, uint64_t b, size_t n)
{
    mpwrite_array(w, HEADER_FIELDS);
    mpwrite_uint(w, CMSG_VERSION);
    mpwrite_uint(w, (uint8_t)type);
    mpwrite_uint(w, a);
    mpwrite_uint(w, b);
    mpwrite_array(w, (uint32_t)n);
}

/* The writer's state lives in the caller's cmsg_req_writer_t (public, so it can sit on a
 * stack); these two convert. */
static mpwrite_t wr_load(const cmsg_req_writer_t *x)
{
    return (mpwrite_t){.p = x->p, .end = x->end, .full = x->failed != 0};
}

static void wr_store(cmsg_req_writer_t *x, const mpwrite_t *w)
{
    x->p = w->p;
    if (w->full && !x->failed)
        x->failed = -1;
}

void cmsg_req_begin(cmsg_req_writer_t *x, uint8_t *out, size_t cap, uint64_t epoch,
                    uint64_t batch_id, size_t n)
{
    x->start = out;
    x->p = out;
    x->end = out + cap;
    x->left = n;
    x->failed = n > CMSG_BATCH_MAX ? -2 : 0;
    mpwrite_t w = wr_load(x);
    put_header(&w, CMSG_REQUEST_BATCH, epoch, batch_id, n);
    wr_store(x, &w);
}

void cmsg_req_announce(cmsg_req_writer_t *x, uint32_t id, const announce_t *a, int32_t numwant)
{
    if (x->failed)
        return;
    if (x->left == 0 || (a->peer.family != 4 && a->peer.family != 6) || (unsigned)a->event > 3) {
        x->failed = -2;
        return;
    }
    x->left--;
    mpwrite_t w = wr_load(x);
    put_announce(&w, id, a, numwant);
    wr_store(x, &w);
}

uint8_t *cmsg_req_scrape(cmsg_req_writer_t *x, uint32_t id, size_t n_hashes)
{
    if (x->failed)
        return NULL;
    if (x->left == 0 || n_hashes < 1 || n_hashes > SHOAL_SCRAPE_MAX) {
        x->failed = -2;
        return NULL;
    }
    x->left--;
    mpwrite_t w = wr_load(x);
    uint8_t *p = put_scrape(&w, id, n_hashes);
    wr_store(x, &w);
    return p;
}

ssize_t cmsg_req_end(const cmsg_req_writer_t *x)
{
    if (x->failed)
        return x->failed;
    if (x->left != 0)
        return -2;
    return (ssize_t)(x->p - x->start);
}

ssize_t cmsg_encode_requests(const cmsg_request_batch_t *b, uint8_t *out, size_t cap)
{
    if (b->n > CMSG_BATCH_MAX)
        return -2;
    for (size_t i = 0; i < b->n; i++)
        if (!request_valid(&b->req[i]))
            return -2;
    cmsg_req_writer_t x;
    cmsg_req_begin(&x, out, cap, b->epoch, b->batch_id, b->n);
    for (size_t i = 0; i < b->n && !x.failed; i++) {
        const cmsg_request_t *q = &b->req[i];
        if (q->kind == CMSG_ANNOUNCE) {
            cmsg_req_announce(&x, q->id, &q->announce, q->announce.numwant);
        } else {
            uint8_t *dst = cmsg_req_scrape(&x, q->id, q->n_hashes);
            if (dst)
                memcpy(dst, q->hashes, q->n_hashes * SHOAL_HASH_LEN);
        }
    }
    return cmsg_req_end(&x);
}

ssize_t cmsg_encode_replies(const cmsg_reply_batch_t *b, uint8_t *out, size_t cap)
{
    if (b->n > CMSG_BATCH_MAX)
        return -2;
    for (size_t i = 0; i < b->n; i++)
        if (!reply_valid(&b->rep[i]))
            return -2;
    mpwrite_t w;
    mpwrite_init(&w, out, cap);
    put_header(&w, CMSG_REPLY_BATCH, b->batch_id, b->epoch, b->n);
    for (size_t i = 0; i < b->n && !w.full; i++)
        put_reply(&w, &b->rep[i]);
    return w.full ? -1 : (ssize_t)(w.p - out);
}

/* --- decoding --- */

/* Return from the enclosing function if a reader fails, with this codec's error for it. */
#define RD(expr) MPREAD_TRY(expr, CMSG_ERR_TRUNCATED, CMSG_ERR_TYPE, CMSG_ERR_RANGE)

/* A bin of exactly n bytes, copied to dst. Inlined: called per field, on the request path. */
MPREAD_INLINE cmsg_err_t rd_bin_exact(mpread_t *r, uint64_t n, uint8_t *dst)
{
    uint64_t len;
    const uint8_t *body;
    RD(mpread_bin_head(r, &len));
    if (len != n)
        return CMSG_ERR_LENGTH;
    RD(mpread_body(r, len, &body));
    memcpy(dst, body, n);
    return CMSG_OK;
}

/* A bin of n records of rec bytes each, min_n <= n <= max_n, left in the input. */
static cmsg_err_t rd_records(mpread_t *r, size_t rec, size_t min_n, size_t max_n, const uint8_t **p,
                             size_t *n)
{
    uint64_t len;
    RD(mpread_bin_head(r, &len));
    if (len % rec != 0)
        return CMSG_ERR_LENGTH;
    if (len / rec < min_n || len / rec > max_n)
        return CMSG_ERR_COUNT;
    RD(mpread_body(r, len, p));
    *n = (size_t)(len / rec);
    return CMSG_OK;
}

/* The batch header up to and including the item count: [version, type, a, b, [... */
static cmsg_err_t rd_header(mpread_t *r, cmsg_type_t want, uint64_t *a, uint64_t *b, size_t *n)
{
    uint64_t fields, items;
    mpread_err_t e = mpread_versioned(r, CMSG_VERSION, &fields);
    if (e == MPREAD_RANGE)
        return CMSG_ERR_VERSION; /* any other integer, negative ones included */
    RD(e);
    if (fields < 2) /* the empty array included */
        return CMSG_ERR_SHAPE;
    e = mpread_expect(r, (uint64_t)want);
    if (e == MPREAD_RANGE)
        return CMSG_ERR_MSG_TYPE;
    RD(e);
    if (fields != HEADER_FIELDS)
        return CMSG_ERR_SHAPE;
    RD(mpread_u64(r, a));
    RD(mpread_u64(r, b));
    RD(mpread_array(r, &items));
    if (items > CMSG_BATCH_MAX)
        return CMSG_ERR_TOO_MANY;
    *n = (size_t)items;
    return CMSG_OK;
}

static cmsg_err_t rd_announce(mpread_t *r, announce_t *a)
{
    uint64_t v;
    memset(a, 0, sizeof(*a));
    TRY(rd_bin_exact(r, SHOAL_HASH_LEN, a->info_hash));
    TRY(rd_bin_exact(r, SHOAL_HASH_LEN, a->peer_id));
    RD(mpread_uint(r, UINT8_MAX, &v));
    if (v != 4 && v != 6)
        return CMSG_ERR_RANGE;
    a->peer.family = (uint8_t)v;
    TRY(rd_bin_exact(r, v == 4 ? 4 : 16, a->peer.addr));
    RD(mpread_uint(r, UINT16_MAX, &v));
    a->peer.port = (uint16_t)v;
    RD(mpread_uint(r, ANNOUNCE_STOPPED, &v));
    a->event = (announce_event_t)v;
    RD(mpread_u64(r, &a->left));
    RD(mpread_u64(r, &a->downloaded));
    RD(mpread_u64(r, &a->uploaded));
    RD(mpread_i32(r, &a->numwant));
    RD(mpread_u32(r, &a->key));
    return CMSG_OK;
}

static cmsg_err_t rd_request(mpread_t *r, cmsg_request_t *q)
{
    uint64_t fields, kind;
    RD(mpread_array(r, &fields));
    if (fields < 2)
        return CMSG_ERR_SHAPE;
    RD(mpread_u32(r, &q->id));
    RD(mpread_uint(r, CMSG_SCRAPE, &kind));
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
    mpread_t r = {.p = buf, .end = buf + len};
    TRY(rd_header(&r, CMSG_REQUEST_BATCH, &out->epoch, &out->batch_id, &out->n));
    for (size_t i = 0; i < out->n; i++)
        TRY(rd_request(&r, &out->req[i]));
    return r.p == r.end ? CMSG_OK : CMSG_ERR_TRAILING;
}

/* The stats of a scrape reply, appended to the arena (*used entries taken so far). */
static cmsg_err_t rd_scrape_stats(mpread_t *r, cmsg_reply_t *q, swarm_stats_t *arena, size_t cap,
                                  size_t *used)
{
    uint64_t n, fields;
    RD(mpread_array(r, &n));
    if (n < 1 || n > SHOAL_SCRAPE_MAX)
        return CMSG_ERR_COUNT;
    if (n > cap - *used)
        return CMSG_ERR_ARENA;
    swarm_stats_t *st = arena + *used;
    for (size_t i = 0; i < n; i++) {
        RD(mpread_array(r, &fields));
        if (fields != 3)
            return CMSG_ERR_SHAPE;
        RD(mpread_u32(r, &st[i].seeders));
        RD(mpread_u32(r, &st[i].leechers));
        RD(mpread_u32(r, &st[i].downloaded));
    }
    *used += (size_t)n;
    q->scrape = st;
    q->n_scrape = (size_t)n;
    return CMSG_OK;
}

static cmsg_err_t rd_reply(mpread_t *r, cmsg_reply_t *q, swarm_stats_t *arena, size_t cap,
                           size_t *used)
{
    uint64_t fields, v;
    memset(q, 0, sizeof(*q));
    RD(mpread_array(r, &fields));
    if (fields < 2)
        return CMSG_ERR_SHAPE;
    RD(mpread_u32(r, &q->id));
    RD(mpread_uint(r, CMSG_STATUS_ERROR, &v));
    q->status = (cmsg_status_t)v;
    if (q->status == CMSG_STATUS_MOVED) {
        if (fields != STATUS_FIELDS)
            return CMSG_ERR_SHAPE;
        RD(mpread_u64(r, &q->epoch));
        return CMSG_OK;
    }
    if (q->status == CMSG_STATUS_ERROR) {
        const uint8_t *text;
        if (fields != STATUS_FIELDS)
            return CMSG_ERR_SHAPE;
        RD(mpread_str_head(r, &v));
        if (v > CMSG_ERROR_MAX)
            return CMSG_ERR_LENGTH;
        RD(mpread_body(r, v, &text));
        if (memchr(text, '\0', (size_t)v))
            return CMSG_ERR_TEXT;
        memcpy(q->error, text, (size_t)v);
        return CMSG_OK;
    }
    if (fields < 3)
        return CMSG_ERR_SHAPE;
    RD(mpread_uint(r, CMSG_SCRAPE, &v));
    q->kind = (cmsg_kind_t)v;
    if (fields != (q->kind == CMSG_ANNOUNCE ? OK_ANN_FIELDS : OK_SCR_FIELDS))
        return CMSG_ERR_SHAPE;
    if (q->kind == CMSG_SCRAPE)
        return rd_scrape_stats(r, q, arena, cap, used);
    RD(mpread_u32(r, &q->stats.seeders));
    RD(mpread_u32(r, &q->stats.leechers));
    RD(mpread_u32(r, &q->stats.downloaded));
    RD(mpread_uint(r, UINT8_MAX, &v));
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
    mpread_t r = {.p = buf, .end = buf + len};
    size_t used = 0;
    TRY(rd_header(&r, CMSG_REPLY_BATCH, &out->batch_id, &out->epoch, &out->n));
    for (size_t i = 0; i < out->n; i++)
        TRY(rd_reply(&r, &out->rep[i], arena, arena_cap, &used));
    return r.p == r.end ? CMSG_OK : CMSG_ERR_TRAILING;
}

/* --- lookups --- */

static bool lookup_peer_valid(const cmsg_lookup_peer_t *p)
{
    if (p->family == 4) {
        static const uint8_t zero[12];
        return memcmp(p->addr + 4, zero, sizeof(zero)) == 0;
    }
    return p->family == 6;
}

static bool lookup_reply_valid(const cmsg_lookup_reply_t *r)
{
    const cmsg_lookup_result_t *x = &r->result;
    switch (r->status) {
    case CMSG_STATUS_OK:
        if (x->n_peers > CMSG_LOOKUP_PEERS_MAX ||
            (x->n_peers && (uint64_t)x->offset + x->n_peers > x->total))
            return false;
        if (!x->found && (x->stats.seeders || x->stats.leechers || x->stats.downloaded ||
                          x->total || x->offset || x->n_peers))
            return false;
        for (size_t i = 0; i < x->n_peers; i++)
            if (!lookup_peer_valid(&x->peers[i]))
                return false;
        return true;
    case CMSG_STATUS_MOVED:
        return true;
    case CMSG_STATUS_ERROR:
        return memchr(r->error, '\0', sizeof(r->error)) != NULL;
    }
    return false;
}

ssize_t cmsg_encode_lookup_request(const cmsg_lookup_request_t *q, uint8_t *out, size_t cap)
{
    if (q->max_peers > CMSG_LOOKUP_PEERS_MAX)
        return -2;
    mpwrite_t w;
    mpwrite_init(&w, out, cap);
    mpwrite_array(&w, LOOKUP_REQ_FIELDS);
    mpwrite_uint(&w, CMSG_VERSION);
    mpwrite_uint(&w, CMSG_LOOKUP_REQUEST);
    mpwrite_uint(&w, q->epoch);
    mpwrite_uint(&w, q->id);
    mpwrite_bin(&w, q->info_hash, SHOAL_HASH_LEN);
    mpwrite_uint(&w, q->offset);
    mpwrite_uint(&w, q->max_peers);
    return w.full ? -1 : (ssize_t)(w.p - out);
}

/* A peer's 24-byte wire record. */
static void lookup_peer_put(const cmsg_lookup_peer_t *p, uint8_t rec[CMSG_LOOKUP_PEER_LEN])
{
    rec[0] = p->family;
    rec[1] = p->seeder ? 1 : 0;
    rec[2] = (uint8_t)(p->port >> 8);
    rec[3] = (uint8_t)p->port;
    rec[4] = (uint8_t)(p->age_s >> 24);
    rec[5] = (uint8_t)(p->age_s >> 16);
    rec[6] = (uint8_t)(p->age_s >> 8);
    rec[7] = (uint8_t)p->age_s;
    memcpy(rec + 8, p->addr, 16);
}

static cmsg_err_t lookup_peer_get(const uint8_t rec[CMSG_LOOKUP_PEER_LEN], cmsg_lookup_peer_t *p)
{
    static const uint8_t zero[12];
    if ((rec[0] != 4 && rec[0] != 6) || rec[1] > 1 ||
        (rec[0] == 4 && memcmp(rec + 12, zero, sizeof(zero)) != 0))
        return CMSG_ERR_RANGE;
    p->family = rec[0];
    p->seeder = rec[1] != 0;
    p->port = (uint16_t)(rec[2] << 8 | rec[3]);
    p->age_s = (uint32_t)rec[4] << 24 | (uint32_t)rec[5] << 16 | (uint32_t)rec[6] << 8 | rec[7];
    memcpy(p->addr, rec + 8, 16);
    return CMSG_OK;
}

ssize_t cmsg_encode_lookup_reply(const cmsg_lookup_reply_t *r, uint8_t *out, size_t cap)
{
    if (!lookup_reply_valid(r))
        return -2;
    mpwrite_t w;
    mpwrite_init(&w, out, cap);
    const uint32_t fields = r->status == CMSG_STATUS_OK      ? LOOKUP_OK_FIELDS
                            : r->status == CMSG_STATUS_MOVED ? LOOKUP_MOV_FIELDS
                                                             : LOOKUP_ERR_FIELDS;
    mpwrite_array(&w, fields);
    mpwrite_uint(&w, CMSG_VERSION);
    mpwrite_uint(&w, CMSG_LOOKUP_REPLY);
    mpwrite_uint(&w, r->id);
    mpwrite_uint(&w, r->epoch);
    mpwrite_uint(&w, (uint8_t)r->status);
    if (r->status == CMSG_STATUS_ERROR) {
        mpwrite_str(&w, r->error, (uint32_t)strlen(r->error));
    } else if (r->status == CMSG_STATUS_OK) {
        const cmsg_lookup_result_t *x = &r->result;
        mpwrite_uint(&w, x->found ? 1 : 0);
        mpwrite_uint(&w, x->stats.seeders);
        mpwrite_uint(&w, x->stats.leechers);
        mpwrite_uint(&w, x->stats.downloaded);
        mpwrite_uint(&w, x->total);
        mpwrite_uint(&w, x->offset);
        mpwrite_bin_head(&w, (uint32_t)(x->n_peers * CMSG_LOOKUP_PEER_LEN));
        for (size_t i = 0; i < x->n_peers && !w.full; i++) {
            uint8_t *rec = mpwrite_room(&w, CMSG_LOOKUP_PEER_LEN);
            if (rec) {
                lookup_peer_put(&x->peers[i], rec);
                w.p = rec + CMSG_LOOKUP_PEER_LEN;
            }
        }
    }
    return w.full ? -1 : (ssize_t)(w.p - out);
}

/* [version, type, and the field count of a lookup message: type checked before the count, so
 * a batch is CMSG_ERR_MSG_TYPE whatever its shape. */
static cmsg_err_t rd_lookup_header(mpread_t *r, cmsg_type_t want, uint64_t *fields)
{
    mpread_err_t e = mpread_versioned(r, CMSG_VERSION, fields);
    if (e == MPREAD_RANGE)
        return CMSG_ERR_VERSION;
    RD(e);
    if (*fields < 2)
        return CMSG_ERR_SHAPE;
    e = mpread_expect(r, (uint64_t)want);
    if (e == MPREAD_RANGE)
        return CMSG_ERR_MSG_TYPE;
    RD(e);
    return CMSG_OK;
}

cmsg_err_t cmsg_decode_lookup_request(const uint8_t *buf, size_t len, cmsg_lookup_request_t *out)
{
    if (len == 0) /* before any arithmetic on buf, which may then be NULL */
        return CMSG_ERR_TRUNCATED;
    mpread_t r = {.p = buf, .end = buf + len};
    uint64_t fields, v;
    memset(out, 0, sizeof(*out));
    TRY(rd_lookup_header(&r, CMSG_LOOKUP_REQUEST, &fields));
    if (fields != LOOKUP_REQ_FIELDS)
        return CMSG_ERR_SHAPE;
    RD(mpread_u64(&r, &out->epoch));
    RD(mpread_u32(&r, &out->id));
    TRY(rd_bin_exact(&r, SHOAL_HASH_LEN, out->info_hash));
    RD(mpread_u32(&r, &out->offset));
    RD(mpread_uint(&r, CMSG_LOOKUP_PEERS_MAX, &v));
    out->max_peers = (uint32_t)v;
    return r.p == r.end ? CMSG_OK : CMSG_ERR_TRAILING;
}

static cmsg_err_t rd_lookup_result(mpread_t *r, cmsg_lookup_result_t *x)
{
    uint64_t v;
    const uint8_t *recs;
    size_t n;
    RD(mpread_uint(r, 1, &v));
    x->found = v != 0;
    RD(mpread_u32(r, &x->stats.seeders));
    RD(mpread_u32(r, &x->stats.leechers));
    RD(mpread_u32(r, &x->stats.downloaded));
    RD(mpread_u32(r, &x->total));
    RD(mpread_u32(r, &x->offset));
    TRY(rd_records(r, CMSG_LOOKUP_PEER_LEN, 0, CMSG_LOOKUP_PEERS_MAX, &recs, &n));
    if (n && (uint64_t)x->offset + n > x->total) /* a page past the end is empty */
        return CMSG_ERR_COUNT;
    if (!x->found &&
        (x->stats.seeders || x->stats.leechers || x->stats.downloaded || x->total || x->offset))
        return CMSG_ERR_RANGE;
    for (size_t i = 0; i < n; i++)
        TRY(lookup_peer_get(recs + i * CMSG_LOOKUP_PEER_LEN, &x->peers[i]));
    x->n_peers = n;
    return CMSG_OK;
}

cmsg_err_t cmsg_decode_lookup_reply(const uint8_t *buf, size_t len, cmsg_lookup_reply_t *out)
{
    if (len == 0)
        return CMSG_ERR_TRUNCATED;
    mpread_t r = {.p = buf, .end = buf + len};
    uint64_t fields, v;
    /* Not the whole 24 KB: the peers past n_peers are never read. */
    memset(out, 0, offsetof(cmsg_lookup_reply_t, result.peers));
    memset(out->error, 0, sizeof(out->error));
    TRY(rd_lookup_header(&r, CMSG_LOOKUP_REPLY, &fields));
    if (fields < LOOKUP_MOV_FIELDS)
        return CMSG_ERR_SHAPE;
    RD(mpread_u32(&r, &out->id));
    RD(mpread_u64(&r, &out->epoch));
    RD(mpread_uint(&r, CMSG_STATUS_ERROR, &v));
    out->status = (cmsg_status_t)v;
    const uint64_t want = out->status == CMSG_STATUS_OK      ? LOOKUP_OK_FIELDS
                          : out->status == CMSG_STATUS_MOVED ? LOOKUP_MOV_FIELDS
                                                             : LOOKUP_ERR_FIELDS;
    if (fields != want)
        return CMSG_ERR_SHAPE;
    if (out->status == CMSG_STATUS_OK) {
        TRY(rd_lookup_result(&r, &out->result));
    } else if (out->status == CMSG_STATUS_ERROR) {
        const uint8_t *text;
        RD(mpread_str_head(&r, &v));
        if (v > CMSG_ERROR_MAX)
            return CMSG_ERR_LENGTH;
        RD(mpread_body(&r, v, &text));
        if (memchr(text, '\0', (size_t)v))
            return CMSG_ERR_TEXT;
        memcpy(out->error, text, (size_t)v);
    }
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
