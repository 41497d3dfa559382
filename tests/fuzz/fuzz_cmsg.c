/* SPDX-License-Identifier: MIT */
/* fuzz_cmsg: cmsg_decode_requests(), cmsg_decode_replies() and the two lookup decoders over
 * arbitrary bytes. Beyond "no crash, no leak": whatever decodes must point only inside the input
 * (or the arena), stay within every limit, be valid msgpack by msgpack-c's own unpacker,
 * re-encode within the size bounds, decode again to an equal message, and re-encode to the same
 * bytes (the encoding is canonical). */
#include "cmsg.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define ARENA_CAP (CMSG_BATCH_MAX * SHOAL_SCRAPE_MAX)

static cmsg_request_batch_t q1, q2;
static cmsg_reply_batch_t r1, r2;
static swarm_stats_t arena1[ARENA_CAP], arena2[ARENA_CAP];
static uint8_t enc1[CMSG_REQUEST_BATCH_BOUND], enc2[CMSG_REQUEST_BATCH_BOUND];

static bool inside(const void *p, size_t n, const void *base, size_t size)
{
    const uint8_t *b = base, *q = p;
    return q >= b && n <= size && (size_t)(q - b) <= size - n;
}

/* msgpack-c agrees that buf holds exactly one msgpack object. Only called on input the decoder
 * accepted, whose counts are already bounded, so msgpack-c's up-front allocation is too. */
static void check_msgpack(const uint8_t *buf, size_t len)
{
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    CHECK(msgpack_unpack_next(&u, (const char *)buf, len, &off) == MSGPACK_UNPACK_SUCCESS);
    CHECK(off == len);
    CHECK(u.data.type == MSGPACK_OBJECT_ARRAY);
    msgpack_unpacked_destroy(&u);
}

static bool announce_equal(const announce_t *a, const announce_t *b)
{
    return memcmp(a->info_hash, b->info_hash, 20) == 0 && memcmp(a->peer_id, b->peer_id, 20) == 0 &&
           a->peer.family == b->peer.family && memcmp(a->peer.addr, b->peer.addr, 16) == 0 &&
           a->peer.port == b->peer.port && a->event == b->event && a->left == b->left &&
           a->downloaded == b->downloaded && a->uploaded == b->uploaded &&
           a->numwant == b->numwant && a->key == b->key;
}

static bool requests_equal(const cmsg_request_batch_t *a, const cmsg_request_batch_t *b)
{
    if (a->epoch != b->epoch || a->batch_id != b->batch_id || a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const cmsg_request_t *x = &a->req[i], *y = &b->req[i];
        if (x->id != y->id || x->kind != y->kind)
            return false;
        if (x->kind == CMSG_ANNOUNCE && !announce_equal(&x->announce, &y->announce))
            return false;
        if (x->kind == CMSG_SCRAPE &&
            (x->n_hashes != y->n_hashes || memcmp(x->hashes, y->hashes, x->n_hashes * 20) != 0))
            return false;
    }
    return true;
}

static bool replies_equal(const cmsg_reply_batch_t *a, const cmsg_reply_batch_t *b)
{
    if (a->epoch != b->epoch || a->batch_id != b->batch_id || a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        const cmsg_reply_t *x = &a->rep[i], *y = &b->rep[i];
        if (x->id != y->id || x->status != y->status || x->kind != y->kind ||
            x->epoch != y->epoch || strcmp(x->error, y->error) != 0 ||
            memcmp(&x->stats, &y->stats, sizeof(x->stats)) != 0 || x->family != y->family ||
            x->n_peers != y->n_peers || x->n_scrape != y->n_scrape)
            return false;
        size_t rec = x->family == 6 ? SHOAL_PEER6_LEN : SHOAL_PEER4_LEN;
        if (x->n_peers && memcmp(x->peers, y->peers, x->n_peers * rec) != 0)
            return false;
        if (x->n_scrape && memcmp(x->scrape, y->scrape, x->n_scrape * sizeof(swarm_stats_t)) != 0)
            return false;
    }
    return true;
}

static void fuzz_requests(const uint8_t *data, size_t size)
{
    if (cmsg_decode_requests(data, size, &q1) != CMSG_OK)
        return;
    CHECK(q1.n <= CMSG_BATCH_MAX);
    size_t bound = CMSG_HEADER_BOUND;
    for (size_t i = 0; i < q1.n; i++) {
        const cmsg_request_t *q = &q1.req[i];
        if (q->kind == CMSG_SCRAPE) {
            CHECK(q->n_hashes >= 1 && q->n_hashes <= SHOAL_SCRAPE_MAX);
            CHECK(inside(q->hashes, q->n_hashes * SHOAL_HASH_LEN, data, size));
        } else {
            CHECK(q->kind == CMSG_ANNOUNCE);
            CHECK(q->announce.peer.family == 4 || q->announce.peer.family == 6);
            CHECK((unsigned)q->announce.event <= ANNOUNCE_STOPPED);
        }
        bound += cmsg_request_bound(q);
    }
    check_msgpack(data, size);
    ssize_t n1 = cmsg_encode_requests(&q1, enc1, sizeof(enc1));
    CHECK(n1 > 0 && (size_t)n1 <= bound && (size_t)n1 <= size);
    CHECK(cmsg_decode_requests(enc1, (size_t)n1, &q2) == CMSG_OK);
    CHECK(requests_equal(&q1, &q2));
    ssize_t n2 = cmsg_encode_requests(&q2, enc2, sizeof(enc2));
    CHECK(n2 == n1 && memcmp(enc1, enc2, (size_t)n1) == 0);
}

static void fuzz_replies(const uint8_t *data, size_t size)
{
    if (cmsg_decode_replies(data, size, &r1, arena1, ARENA_CAP) != CMSG_OK)
        return;
    CHECK(r1.n <= CMSG_BATCH_MAX);
    size_t bound = CMSG_HEADER_BOUND;
    for (size_t i = 0; i < r1.n; i++) {
        const cmsg_reply_t *r = &r1.rep[i];
        CHECK(strlen(r->error) <= CMSG_ERROR_MAX);
        if (r->status == CMSG_STATUS_OK && r->kind == CMSG_ANNOUNCE) {
            CHECK(r->family == 4 || r->family == 6);
            CHECK(r->n_peers <= SHOAL_NUMWANT_MAX);
            size_t rec = r->family == 6 ? SHOAL_PEER6_LEN : SHOAL_PEER4_LEN;
            CHECK(inside(r->peers, r->n_peers * rec, data, size));
        } else if (r->status == CMSG_STATUS_OK) {
            CHECK(r->kind == CMSG_SCRAPE);
            CHECK(r->n_scrape >= 1 && r->n_scrape <= SHOAL_SCRAPE_MAX);
            CHECK(inside(r->scrape, r->n_scrape * sizeof(swarm_stats_t), arena1, sizeof(arena1)));
        } else {
            CHECK(r->status == CMSG_STATUS_MOVED || r->status == CMSG_STATUS_ERROR);
        }
        bound += cmsg_reply_bound(r);
    }
    check_msgpack(data, size);
    ssize_t n1 = cmsg_encode_replies(&r1, enc1, sizeof(enc1));
    CHECK(n1 > 0 && (size_t)n1 <= bound && (size_t)n1 <= size);
    CHECK(cmsg_decode_replies(enc1, (size_t)n1, &r2, arena2, ARENA_CAP) == CMSG_OK);
    CHECK(replies_equal(&r1, &r2));
    ssize_t n2 = cmsg_encode_replies(&r2, enc2, sizeof(enc2));
    CHECK(n2 == n1 && memcmp(enc1, enc2, (size_t)n1) == 0);
}

static cmsg_lookup_request_t lq1, lq2;
static cmsg_lookup_reply_t lr1, lr2;

static bool lookup_replies_equal(const cmsg_lookup_reply_t *a, const cmsg_lookup_reply_t *b)
{
    const cmsg_lookup_result_t *x = &a->result, *y = &b->result;
    if (a->id != b->id || a->epoch != b->epoch || a->status != b->status ||
        strcmp(a->error, b->error) != 0 || x->found != y->found ||
        memcmp(&x->stats, &y->stats, sizeof(x->stats)) != 0 || x->total != y->total ||
        x->offset != y->offset || x->n_peers != y->n_peers)
        return false;
    for (size_t i = 0; i < x->n_peers; i++) {
        const cmsg_lookup_peer_t *p = &x->peers[i], *q = &y->peers[i];
        if (p->family != q->family || p->seeder != q->seeder || p->port != q->port ||
            p->age_s != q->age_s || memcmp(p->addr, q->addr, 16) != 0)
            return false;
    }
    return true;
}

static void fuzz_lookups(const uint8_t *data, size_t size)
{
    if (cmsg_decode_lookup_request(data, size, &lq1) == CMSG_OK) {
        CHECK(lq1.max_peers <= CMSG_LOOKUP_PEERS_MAX);
        check_msgpack(data, size);
        ssize_t n1 = cmsg_encode_lookup_request(&lq1, enc1, sizeof(enc1));
        CHECK(n1 > 0 && (size_t)n1 <= CMSG_LOOKUP_REQUEST_BOUND && (size_t)n1 <= size);
        CHECK(cmsg_decode_lookup_request(enc1, (size_t)n1, &lq2) == CMSG_OK);
        CHECK(memcmp(&lq1, &lq2, sizeof(lq1)) == 0); /* both zeroed whole, padding included */
        ssize_t n2 = cmsg_encode_lookup_request(&lq2, enc2, sizeof(enc2));
        CHECK(n2 == n1 && memcmp(enc1, enc2, (size_t)n1) == 0);
    }
    if (cmsg_decode_lookup_reply(data, size, &lr1) != CMSG_OK)
        return;
    const cmsg_lookup_result_t *x = &lr1.result;
    CHECK(strlen(lr1.error) <= CMSG_ERROR_MAX);
    CHECK(x->n_peers <= CMSG_LOOKUP_PEERS_MAX);
    CHECK(x->n_peers == 0 || (uint64_t)x->offset + x->n_peers <= x->total);
    CHECK(x->found || (x->total == 0 && x->n_peers == 0 && x->stats.seeders == 0));
    for (size_t i = 0; i < x->n_peers; i++)
        CHECK(x->peers[i].family == 4 || x->peers[i].family == 6);
    check_msgpack(data, size);
    ssize_t n1 = cmsg_encode_lookup_reply(&lr1, enc1, sizeof(enc1));
    CHECK(n1 > 0 && (size_t)n1 <= CMSG_LOOKUP_REPLY_BOUND(x->n_peers) && (size_t)n1 <= size);
    CHECK(cmsg_decode_lookup_reply(enc1, (size_t)n1, &lr2) == CMSG_OK);
    CHECK(lookup_replies_equal(&lr1, &lr2));
    ssize_t n2 = cmsg_encode_lookup_reply(&lr2, enc2, sizeof(enc2));
    CHECK(n2 == n1 && memcmp(enc1, enc2, (size_t)n1) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_requests(data, size);
    fuzz_replies(data, size);
    fuzz_lookups(data, size);
    return 0;
}
