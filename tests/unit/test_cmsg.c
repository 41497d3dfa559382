/* SPDX-License-Identifier: MIT */
/* test_cmsg: the gateway <-> node batches. Byte-exact vectors written out by hand for each
 * message shape in both directions, round trips of every shape (announce v4 and v6, scrapes of
 * 1 and 256 hashes, full batches, moved, error, empty batches), the encoders' capacity and
 * validity checks, and the decoders' rejections: every proper prefix of a valid message, trailing
 * bytes, wrong version and message type, wrong field counts, each field replaced by values of
 * the wrong msgpack type or out of range, oversized counts and lengths. Malformed inputs are
 * built with msgpack-c's own packer, independently of the encoder under test. Lookups (their own
 * request and reply messages) get the same treatment, plus random damage to valid ones. */
#include "cmsg.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#define ARENA_CAP (CMSG_BATCH_MAX * SHOAL_SCRAPE_MAX)

static uint8_t buf[CMSG_REQUEST_BATCH_BOUND];
static cmsg_request_batch_t qb, qd;
static cmsg_reply_batch_t rb, rd;
static swarm_stats_t arena[ARENA_CAP];
static uint8_t hashes[CMSG_BATCH_MAX][SHOAL_SCRAPE_MAX * SHOAL_HASH_LEN];
static uint8_t peers[CMSG_BATCH_MAX][SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
static swarm_stats_t stats_in[CMSG_BATCH_MAX][SHOAL_SCRAPE_MAX];

/* --- sample messages --- */

static void fill_announce4(cmsg_request_t *q, uint32_t id)
{
    memset(q, 0, sizeof(*q));
    q->id = id;
    q->kind = CMSG_ANNOUNCE;
    announce_t *a = &q->announce;
    for (int i = 0; i < 20; i++)
        a->info_hash[i] = (uint8_t)(0x10 + i);
    memcpy(a->peer_id, "-SH0001-abcdefghijkl", 20);
    a->peer.family = 4;
    memcpy(a->peer.addr, "\xc0\x00\x02\x01", 4);
    a->peer.port = 6881;
    a->event = ANNOUNCE_STARTED;
    a->left = 0x8000000000000003ULL;
    a->downloaded = 1;
    a->uploaded = 4096;
    a->numwant = -1;
    a->key = 0xcafebabe;
}

static void fill_announce6(cmsg_request_t *q, uint32_t id)
{
    fill_announce4(q, id);
    announce_t *a = &q->announce;
    a->peer.family = 6;
    memcpy(a->peer.addr, "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01", 16);
    a->event = ANNOUNCE_STOPPED;
    a->left = 0;
    a->downloaded = UINT64_MAX;
    a->uploaded = 0;
    a->numwant = 200;
    a->key = 0;
    a->peer.port = 65535;
}

static void fill_scrape(cmsg_request_t *q, uint32_t id, size_t n, size_t slot)
{
    memset(q, 0, sizeof(*q));
    q->id = id;
    q->kind = CMSG_SCRAPE;
    for (size_t i = 0; i < n * SHOAL_HASH_LEN; i++)
        hashes[slot][i] = (uint8_t)(i * 7 + slot);
    q->hashes = hashes[slot];
    q->n_hashes = n;
}

static void fill_ok_announce(cmsg_reply_t *r, uint32_t id, uint8_t family, size_t n, size_t slot)
{
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->status = CMSG_STATUS_OK;
    r->kind = CMSG_ANNOUNCE;
    r->stats = (swarm_stats_t){.seeders = 10, .leechers = 20, .downloaded = UINT32_MAX};
    r->family = family;
    size_t rec = family == 6 ? SHOAL_PEER6_LEN : SHOAL_PEER4_LEN;
    for (size_t i = 0; i < n * rec; i++)
        peers[slot][i] = (uint8_t)(i * 13 + slot);
    r->peers = peers[slot];
    r->n_peers = n;
}

static void fill_ok_scrape(cmsg_reply_t *r, uint32_t id, size_t n, size_t slot)
{
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->status = CMSG_STATUS_OK;
    r->kind = CMSG_SCRAPE;
    for (size_t i = 0; i < n; i++)
        stats_in[slot][i] = (swarm_stats_t){(uint32_t)i, (uint32_t)(i * 3 + slot), UINT32_MAX};
    r->scrape = stats_in[slot];
    r->n_scrape = n;
}

static void fill_moved(cmsg_reply_t *r, uint32_t id, uint64_t epoch)
{
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->status = CMSG_STATUS_MOVED;
    r->epoch = epoch;
}

static void fill_error(cmsg_reply_t *r, uint32_t id, const char *msg)
{
    memset(r, 0, sizeof(*r));
    r->id = id;
    r->status = CMSG_STATUS_ERROR;
    strcpy(r->error, msg);
}

/* --- comparisons --- */

static void assert_announce_equal(const announce_t *a, const announce_t *b)
{
    assert_memory_equal(a->info_hash, b->info_hash, 20);
    assert_memory_equal(a->peer_id, b->peer_id, 20);
    assert_int_equal(a->peer.family, b->peer.family);
    assert_memory_equal(a->peer.addr, b->peer.addr, a->peer.family == 4 ? 4 : 16);
    assert_int_equal(a->peer.port, b->peer.port);
    assert_int_equal(a->event, b->event);
    assert_int_equal(a->left, b->left);
    assert_int_equal(a->downloaded, b->downloaded);
    assert_int_equal(a->uploaded, b->uploaded);
    assert_int_equal(a->numwant, b->numwant);
    assert_int_equal(a->key, b->key);
}

static void assert_requests_equal(const cmsg_request_batch_t *a, const cmsg_request_batch_t *b)
{
    assert_int_equal(a->epoch, b->epoch);
    assert_int_equal(a->batch_id, b->batch_id);
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const cmsg_request_t *x = &a->req[i], *y = &b->req[i];
        assert_int_equal(x->id, y->id);
        assert_int_equal(x->kind, y->kind);
        if (x->kind == CMSG_ANNOUNCE) {
            assert_announce_equal(&x->announce, &y->announce);
        } else {
            assert_int_equal(x->n_hashes, y->n_hashes);
            assert_memory_equal(x->hashes, y->hashes, x->n_hashes * SHOAL_HASH_LEN);
        }
    }
}

static void assert_replies_equal(const cmsg_reply_batch_t *a, const cmsg_reply_batch_t *b)
{
    assert_int_equal(a->batch_id, b->batch_id);
    assert_int_equal(a->epoch, b->epoch);
    assert_int_equal(a->n, b->n);
    for (size_t i = 0; i < a->n; i++) {
        const cmsg_reply_t *x = &a->rep[i], *y = &b->rep[i];
        assert_int_equal(x->id, y->id);
        assert_int_equal(x->status, y->status);
        if (x->status == CMSG_STATUS_MOVED) {
            assert_int_equal(x->epoch, y->epoch);
        } else if (x->status == CMSG_STATUS_ERROR) {
            assert_string_equal(x->error, y->error);
        } else if (x->kind == CMSG_SCRAPE) {
            assert_int_equal(y->kind, CMSG_SCRAPE);
            assert_int_equal(x->n_scrape, y->n_scrape);
            assert_memory_equal(x->scrape, y->scrape, x->n_scrape * sizeof(swarm_stats_t));
        } else {
            assert_int_equal(y->kind, CMSG_ANNOUNCE);
            assert_memory_equal(&x->stats, &y->stats, sizeof(x->stats));
            assert_int_equal(x->family, y->family);
            assert_int_equal(x->n_peers, y->n_peers);
            size_t rec = x->family == 6 ? SHOAL_PEER6_LEN : SHOAL_PEER4_LEN;
            assert_memory_equal(x->peers, y->peers, x->n_peers * rec);
        }
    }
}

static size_t encode_requests(void)
{
    ssize_t n = cmsg_encode_requests(&qb, buf, sizeof(buf));
    assert_true(n > 0);
    return (size_t)n;
}

static size_t encode_replies(void)
{
    ssize_t n = cmsg_encode_replies(&rb, buf, sizeof(buf));
    assert_true(n > 0);
    return (size_t)n;
}

static void round_trip_requests(void)
{
    size_t n = encode_requests();
    assert_int_equal(cmsg_decode_requests(buf, n, &qd), CMSG_OK);
    assert_requests_equal(&qb, &qd);
}

static void round_trip_replies(void)
{
    size_t n = encode_replies();
    memset(arena, 0, sizeof(arena));
    assert_int_equal(cmsg_decode_replies(buf, n, &rd, arena, ARENA_CAP), CMSG_OK);
    assert_replies_equal(&rb, &rd);
}

/* --- byte-exact vectors --- */

static const uint8_t empty_request_bytes[] = {0x95, 0x01, 0x01, 0x05, 0x07, 0x90};

static const uint8_t announce4_request_bytes[] = {
    0x95, 0x01, 0x01, 0x05, 0x07,                               /* v1, request, epoch 5, batch 7 */
    0x91,                                                       /* one request */
    0x9d,                                                       /* 13 fields */
    0xce, 0x01, 0x02, 0x03, 0x04,                               /* id */
    0x00,                                                       /* announce */
    0xc4, 0x14,                                                 /* info_hash: bin 20 */
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, /* */
    0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, /* */
    0xc4, 0x14,                                                 /* peer_id: bin 20 */
    '-',  'S',  'H',  '0',  '0',  '0',  '1',  '-',  'a',  'b',  /* */
    'c',  'd',  'e',  'f',  'g',  'h',  'i',  'j',  'k',  'l',  /* */
    0x04,                                                       /* family 4 */
    0xc4, 0x04, 0xc0, 0x00, 0x02, 0x01,                         /* 192.0.2.1 */
    0xcd, 0x1a, 0xe1,                                           /* port 6881 */
    0x02,                                                       /* started */
    0xcf, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,       /* left */
    0x01,                                                       /* downloaded */
    0xcd, 0x10, 0x00,                                           /* uploaded 4096 */
    0xff,                                                       /* numwant -1 */
    0xce, 0xca, 0xfe, 0xba, 0xbe,                               /* key */
};

static const uint8_t scrape_request_head[] = {
    0x95, 0x01, 0x01, 0x05, 0x07, /* v1, request, epoch 5, batch 7 */
    0x91, 0x93, 0x09, 0x01,       /* one request of 3 fields: id 9, scrape */
    0xc4, 0x28,                   /* bin 40: two hashes follow */
};

static const uint8_t reply_bytes[] = {
    0x95, 0x01, 0x02, 0x07, 0x09,       /* v1, reply, batch 7, epoch 9 */
    0x93,                               /* three replies */
    0x98, 0xce, 0x01, 0x02, 0x03, 0x04, /* 8 fields, id */
    0x00, 0x00,                         /* ok, announce */
    0x0a, 0x14, 0xcd, 0x01, 0x2c,       /* seeders 10, leechers 20, downloaded 300 */
    0x04, 0xc4, 0x0c,                   /* family 4, bin 12 */
    0x7f, 0x00, 0x00, 0x01, 0x1a, 0xe1, /* 127.0.0.1:6881 */
    0x0a, 0x00, 0x00, 0x02, 0x1a, 0xe2, /* 10.0.0.2:6882 */
    0x93, 0x05, 0x01, 0x09,             /* id 5 moved, epoch 9 */
    0x93, 0x06, 0x02,                   /* id 6 error */
    0xa4, 'b',  'u',  's',  'y',        /* "busy" */
};

static const uint8_t scrape_reply_bytes[] = {
    0x95, 0x01, 0x02, 0x07, 0x09, /* v1, reply, batch 7, epoch 9 */
    0x91, 0x94, 0x09, 0x00, 0x01, /* one reply of 4 fields: id 9, ok, scrape */
    0x92, 0x93, 0x01, 0x02, 0x03, /* two entries: (1, 2, 3) */
    0x93, 0x04, 0x05, 0x06,       /* (4, 5, 6) */
};

static void empty_request_batch_encodes_exactly(void **state)
{
    (void)state;
    memset(&qb, 0, sizeof(qb));
    qb.epoch = 5;
    qb.batch_id = 7;
    size_t n = encode_requests();
    assert_int_equal(n, sizeof(empty_request_bytes));
    assert_memory_equal(buf, empty_request_bytes, n);
    assert_int_equal(cmsg_decode_requests(buf, n, &qd), CMSG_OK);
    assert_requests_equal(&qb, &qd);
}

static void announce4_request_encodes_exactly(void **state)
{
    (void)state;
    memset(&qb, 0, sizeof(qb));
    qb.epoch = 5;
    qb.batch_id = 7;
    qb.n = 1;
    fill_announce4(&qb.req[0], 0x01020304);
    size_t n = encode_requests();
    assert_int_equal(n, sizeof(announce4_request_bytes));
    assert_memory_equal(buf, announce4_request_bytes, n);
}

static void announce4_request_decodes_exactly(void **state)
{
    (void)state;
    assert_int_equal(
        cmsg_decode_requests(announce4_request_bytes, sizeof(announce4_request_bytes), &qd),
        CMSG_OK);
    assert_int_equal(qd.epoch, 5);
    assert_int_equal(qd.batch_id, 7);
    assert_int_equal(qd.n, 1);
    cmsg_request_t want;
    fill_announce4(&want, 0x01020304);
    assert_int_equal(qd.req[0].id, 0x01020304);
    assert_int_equal(qd.req[0].kind, CMSG_ANNOUNCE);
    assert_announce_equal(&qd.req[0].announce, &want.announce);
    assert_null(qd.req[0].hashes);
    for (int i = 4; i < 16; i++)
        assert_int_equal(qd.req[0].announce.peer.addr[i], 0);
}

static void scrape_request_points_into_input(void **state)
{
    (void)state;
    uint8_t msg[sizeof(scrape_request_head) + 40];
    memcpy(msg, scrape_request_head, sizeof(scrape_request_head));
    for (int i = 0; i < 40; i++)
        msg[sizeof(scrape_request_head) + i] = (uint8_t)i;
    assert_int_equal(cmsg_decode_requests(msg, sizeof(msg), &qd), CMSG_OK);
    assert_int_equal(qd.req[0].kind, CMSG_SCRAPE);
    assert_int_equal(qd.req[0].id, 9);
    assert_int_equal(qd.req[0].n_hashes, 2);
    assert_ptr_equal(qd.req[0].hashes, msg + sizeof(scrape_request_head));
    /* and the encoder gives the same bytes back */
    ssize_t n = cmsg_encode_requests(&qd, buf, sizeof(buf));
    assert_int_equal(n, sizeof(msg));
    assert_memory_equal(buf, msg, sizeof(msg));
}

static void reply_batch_encodes_exactly(void **state)
{
    (void)state;
    static const uint8_t two_peers[12] = {0x7f, 0, 0, 1, 0x1a, 0xe1, 0x0a, 0, 0, 2, 0x1a, 0xe2};
    memset(&rb, 0, sizeof(rb));
    rb.batch_id = 7;
    rb.epoch = 9;
    rb.n = 3;
    fill_ok_announce(&rb.rep[0], 0x01020304, 4, 0, 0);
    rb.rep[0].stats = (swarm_stats_t){.seeders = 10, .leechers = 20, .downloaded = 300};
    rb.rep[0].peers = two_peers;
    rb.rep[0].n_peers = 2;
    fill_moved(&rb.rep[1], 5, 9);
    fill_error(&rb.rep[2], 6, "busy");
    size_t n = encode_replies();
    assert_int_equal(n, sizeof(reply_bytes));
    assert_memory_equal(buf, reply_bytes, n);
}

static void reply_batch_decodes_exactly(void **state)
{
    (void)state;
    assert_int_equal(cmsg_decode_replies(reply_bytes, sizeof(reply_bytes), &rd, arena, 0), CMSG_OK);
    assert_int_equal(rd.batch_id, 7);
    assert_int_equal(rd.epoch, 9);
    assert_int_equal(rd.n, 3);
    const cmsg_reply_t *a = &rd.rep[0];
    assert_int_equal(a->id, 0x01020304);
    assert_int_equal(a->status, CMSG_STATUS_OK);
    assert_int_equal(a->kind, CMSG_ANNOUNCE);
    assert_int_equal(a->stats.seeders, 10);
    assert_int_equal(a->stats.leechers, 20);
    assert_int_equal(a->stats.downloaded, 300);
    assert_int_equal(a->family, 4);
    assert_int_equal(a->n_peers, 2);
    assert_ptr_equal(a->peers, reply_bytes + 22);
    assert_int_equal(rd.rep[1].id, 5);
    assert_int_equal(rd.rep[1].status, CMSG_STATUS_MOVED);
    assert_int_equal(rd.rep[1].epoch, 9);
    assert_int_equal(rd.rep[2].id, 6);
    assert_int_equal(rd.rep[2].status, CMSG_STATUS_ERROR);
    assert_string_equal(rd.rep[2].error, "busy");
}

static void scrape_reply_decodes_into_arena(void **state)
{
    (void)state;
    assert_int_equal(
        cmsg_decode_replies(scrape_reply_bytes, sizeof(scrape_reply_bytes), &rd, arena, 2),
        CMSG_OK);
    assert_int_equal(rd.rep[0].kind, CMSG_SCRAPE);
    assert_int_equal(rd.rep[0].n_scrape, 2);
    assert_ptr_equal(rd.rep[0].scrape, arena);
    assert_int_equal(arena[0].seeders, 1);
    assert_int_equal(arena[0].leechers, 2);
    assert_int_equal(arena[0].downloaded, 3);
    assert_int_equal(arena[1].seeders, 4);
    assert_int_equal(arena[1].leechers, 5);
    assert_int_equal(arena[1].downloaded, 6);
    ssize_t n = cmsg_encode_replies(&rd, buf, sizeof(buf));
    assert_int_equal(n, sizeof(scrape_reply_bytes));
    assert_memory_equal(buf, scrape_reply_bytes, sizeof(scrape_reply_bytes));
}

static void scrape_reply_needs_room_in_arena(void **state)
{
    (void)state;
    assert_int_equal(
        cmsg_decode_replies(scrape_reply_bytes, sizeof(scrape_reply_bytes), &rd, arena, 1),
        CMSG_ERR_ARENA);
}

/* --- round trips --- */

static void announce6_round_trips(void **state)
{
    (void)state;
    memset(&qb, 0, sizeof(qb));
    qb.epoch = UINT64_MAX;
    qb.batch_id = 0;
    qb.n = 2;
    fill_announce6(&qb.req[0], UINT32_MAX);
    fill_announce6(&qb.req[1], 0);
    qb.req[1].announce.numwant = INT32_MIN;
    qb.req[1].announce.event = ANNOUNCE_NONE;
    round_trip_requests();
}

static void scrapes_of_1_and_256_hashes_round_trip(void **state)
{
    (void)state;
    memset(&qb, 0, sizeof(qb));
    qb.n = 2;
    fill_scrape(&qb.req[0], 1, 1, 0);
    fill_scrape(&qb.req[1], 2, SHOAL_SCRAPE_MAX, 1);
    round_trip_requests();
    assert_int_equal(qd.req[1].n_hashes, SHOAL_SCRAPE_MAX);
}

/* The largest request batch there can be fits the bound, and so does every request in it. */
static void full_batch_of_largest_scrapes_fits_bound(void **state)
{
    (void)state;
    memset(&qb, 0, sizeof(qb));
    qb.epoch = UINT64_MAX;
    qb.batch_id = UINT64_MAX;
    qb.n = CMSG_BATCH_MAX;
    for (size_t i = 0; i < CMSG_BATCH_MAX; i++)
        fill_scrape(&qb.req[i], UINT32_MAX - (uint32_t)i, SHOAL_SCRAPE_MAX, i);
    size_t n = encode_requests();
    assert_true(n <= CMSG_REQUEST_BATCH_BOUND);
    assert_int_equal(cmsg_decode_requests(buf, n, &qd), CMSG_OK);
    assert_requests_equal(&qb, &qd);
}

static void mixed_full_batch_round_trips(void **state)
{
    (void)state;
    memset(&qb, 0, sizeof(qb));
    qb.epoch = 3;
    qb.batch_id = 1ULL << 40;
    qb.n = CMSG_BATCH_MAX;
    size_t bound = CMSG_HEADER_BOUND;
    for (size_t i = 0; i < CMSG_BATCH_MAX; i++) {
        if (i % 3 == 0)
            fill_announce4(&qb.req[i], (uint32_t)i);
        else if (i % 3 == 1)
            fill_announce6(&qb.req[i], (uint32_t)i << 20);
        else
            fill_scrape(&qb.req[i], (uint32_t)i, 1 + i % 74, i);
        bound += cmsg_request_bound(&qb.req[i]);
    }
    size_t n = encode_requests();
    assert_true(n <= bound);
    assert_int_equal(cmsg_decode_requests(buf, n, &qd), CMSG_OK);
    assert_requests_equal(&qb, &qd);
}

static void reply_shapes_round_trip(void **state)
{
    (void)state;
    memset(&rb, 0, sizeof(rb));
    rb.batch_id = UINT64_MAX;
    rb.epoch = 12345678901ULL;
    rb.n = 7;
    fill_ok_announce(&rb.rep[0], 1, 4, SHOAL_NUMWANT_MAX, 0);
    fill_ok_announce(&rb.rep[1], 2, 6, SHOAL_NUMWANT_MAX, 1);
    fill_ok_announce(&rb.rep[2], 3, 6, 0, 2); /* no peers */
    fill_ok_scrape(&rb.rep[3], 4, 1, 3);
    fill_ok_scrape(&rb.rep[4], 5, SHOAL_SCRAPE_MAX, 4);
    fill_moved(&rb.rep[5], 6, UINT64_MAX);
    char longest[CMSG_ERROR_MAX + 1];
    memset(longest, 'x', CMSG_ERROR_MAX);
    longest[CMSG_ERROR_MAX] = '\0';
    fill_error(&rb.rep[6], UINT32_MAX, longest);
    round_trip_replies();
    /* scrape stats are laid out in the arena one reply after another */
    assert_ptr_equal(rd.rep[3].scrape, arena);
    assert_ptr_equal(rd.rep[4].scrape, arena + 1);
}

static void empty_error_and_empty_reply_batch_round_trip(void **state)
{
    (void)state;
    memset(&rb, 0, sizeof(rb));
    round_trip_replies();
    rb.n = 1;
    fill_error(&rb.rep[0], 1, "");
    round_trip_replies();
}

static void full_batch_of_largest_replies_fits_bound(void **state)
{
    (void)state;
    memset(&rb, 0, sizeof(rb));
    rb.batch_id = UINT64_MAX;
    rb.epoch = UINT64_MAX;
    rb.n = CMSG_BATCH_MAX;
    size_t bound = CMSG_HEADER_BOUND;
    for (size_t i = 0; i < CMSG_BATCH_MAX; i++) {
        fill_ok_scrape(&rb.rep[i], UINT32_MAX, SHOAL_SCRAPE_MAX, i);
        for (size_t k = 0; k < SHOAL_SCRAPE_MAX; k++)
            stats_in[i][k] = (swarm_stats_t){UINT32_MAX, UINT32_MAX, UINT32_MAX};
        bound += cmsg_reply_bound(&rb.rep[i]);
    }
    assert_int_equal(bound, CMSG_REPLY_BATCH_BOUND);
    size_t n = encode_replies();
    assert_int_equal(n, CMSG_REPLY_BATCH_BOUND); /* the bound is tight */
    memset(arena, 0, sizeof(arena));
    assert_int_equal(cmsg_decode_replies(buf, n, &rd, arena, ARENA_CAP), CMSG_OK);
    assert_replies_equal(&rb, &rd);
}

static void largest_announce_request_meets_its_bound(void **state)
{
    (void)state;
    memset(&qb, 0, sizeof(qb));
    qb.epoch = UINT64_MAX;
    qb.batch_id = UINT64_MAX;
    qb.n = 1;
    fill_announce6(&qb.req[0], UINT32_MAX);
    qb.req[0].announce.left = UINT64_MAX;
    qb.req[0].announce.uploaded = UINT64_MAX;
    qb.req[0].announce.numwant = INT32_MIN;
    qb.req[0].announce.key = UINT32_MAX;
    /* the items array header is 1 byte here, 3 in the bound */
    assert_int_equal(encode_requests(), CMSG_HEADER_BOUND - 2 + CMSG_ANNOUNCE_REQUEST_BOUND);
}

/* --- encoder limits --- */

static void encoder_reports_every_short_buffer(void **state)
{
    (void)state;
    memset(&rb, 0, sizeof(rb));
    rb.n = 3;
    fill_ok_announce(&rb.rep[0], 1, 6, 10, 0);
    fill_ok_scrape(&rb.rep[1], 2, 5, 1);
    fill_error(&rb.rep[2], 3, "out of memory");
    size_t n = encode_replies();
    for (size_t cap = 0; cap < n; cap++)
        assert_int_equal(cmsg_encode_replies(&rb, buf, cap), -1);
    assert_int_equal(cmsg_encode_replies(&rb, buf, n), (ssize_t)n);
    memset(&qb, 0, sizeof(qb));
    qb.n = 2;
    fill_announce4(&qb.req[0], 1);
    fill_scrape(&qb.req[1], 2, 3, 0);
    n = encode_requests();
    for (size_t cap = 0; cap < n; cap++)
        assert_int_equal(cmsg_encode_requests(&qb, buf, cap), -1);
}

static void encoder_refuses_invalid_requests(void **state)
{
    (void)state;
    memset(&qb, 0, sizeof(qb));
    qb.n = CMSG_BATCH_MAX + 1;
    assert_int_equal(cmsg_encode_requests(&qb, buf, sizeof(buf)), -2);
    qb.n = 1;
    fill_announce4(&qb.req[0], 1);
    qb.req[0].announce.peer.family = 0;
    assert_int_equal(cmsg_encode_requests(&qb, buf, sizeof(buf)), -2);
    fill_announce4(&qb.req[0], 1);
    qb.req[0].announce.event = 4;
    assert_int_equal(cmsg_encode_requests(&qb, buf, sizeof(buf)), -2);
    fill_announce4(&qb.req[0], 1);
    qb.req[0].kind = 2;
    assert_int_equal(cmsg_encode_requests(&qb, buf, sizeof(buf)), -2);
    fill_scrape(&qb.req[0], 1, 0, 0);
    assert_int_equal(cmsg_encode_requests(&qb, buf, sizeof(buf)), -2);
    fill_scrape(&qb.req[0], 1, 1, 0);
    qb.req[0].n_hashes = SHOAL_SCRAPE_MAX + 1;
    assert_int_equal(cmsg_encode_requests(&qb, buf, sizeof(buf)), -2);
    fill_scrape(&qb.req[0], 1, 1, 0);
    qb.req[0].hashes = NULL;
    assert_int_equal(cmsg_encode_requests(&qb, buf, sizeof(buf)), -2);
}

static void encoder_refuses_invalid_replies(void **state)
{
    (void)state;
    memset(&rb, 0, sizeof(rb));
    rb.n = CMSG_BATCH_MAX + 1;
    assert_int_equal(cmsg_encode_replies(&rb, buf, sizeof(buf)), -2);
    rb.n = 1;
    fill_ok_announce(&rb.rep[0], 1, 4, SHOAL_NUMWANT_MAX, 0);
    rb.rep[0].n_peers = SHOAL_NUMWANT_MAX + 1;
    assert_int_equal(cmsg_encode_replies(&rb, buf, sizeof(buf)), -2);
    fill_ok_announce(&rb.rep[0], 1, 5, 1, 0);
    assert_int_equal(cmsg_encode_replies(&rb, buf, sizeof(buf)), -2);
    fill_ok_scrape(&rb.rep[0], 1, 0, 0);
    assert_int_equal(cmsg_encode_replies(&rb, buf, sizeof(buf)), -2);
    fill_ok_scrape(&rb.rep[0], 1, 1, 0);
    rb.rep[0].n_scrape = SHOAL_SCRAPE_MAX + 1;
    assert_int_equal(cmsg_encode_replies(&rb, buf, sizeof(buf)), -2);
    fill_error(&rb.rep[0], 1, "x");
    memset(rb.rep[0].error, 'x', sizeof(rb.rep[0].error)); /* no NUL: 129 bytes */
    assert_int_equal(cmsg_encode_replies(&rb, buf, sizeof(buf)), -2);
    fill_moved(&rb.rep[0], 1, 1);
    rb.rep[0].status = 3;
    assert_int_equal(cmsg_encode_replies(&rb, buf, sizeof(buf)), -2);
}

/* --- rejection of malformed input --- */

/* Every proper prefix of a valid message is reported as truncated, nothing else. */
static void assert_prefixes_truncated(const uint8_t *msg, size_t len, bool reply)
{
    uint8_t *copy = malloc(len ? len : 1); /* exact size, so ASan sees any overread */
    assert_non_null(copy);
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(copy, msg, cut);
        cmsg_err_t e = reply ? cmsg_decode_replies(copy, cut, &rd, arena, ARENA_CAP)
                             : cmsg_decode_requests(copy, cut, &qd);
        if (e != CMSG_ERR_TRUNCATED)
            fail_msg("prefix of %zu of %zu bytes: %s", cut, len, cmsg_strerror(e));
    }
    free(copy);
}

static void every_prefix_of_a_request_batch_is_truncated(void **state)
{
    (void)state;
    memset(&qb, 0, sizeof(qb));
    qb.epoch = 1ULL << 33;
    qb.batch_id = 77;
    qb.n = 3;
    fill_announce4(&qb.req[0], 1);
    fill_announce6(&qb.req[1], 70000);
    fill_scrape(&qb.req[2], 3, 74, 0);
    size_t n = encode_requests();
    static uint8_t msg[4096];
    memcpy(msg, buf, n);
    assert_prefixes_truncated(msg, n, false);
    assert_prefixes_truncated(empty_request_bytes, sizeof(empty_request_bytes), false);
}

static void every_prefix_of_a_reply_batch_is_truncated(void **state)
{
    (void)state;
    memset(&rb, 0, sizeof(rb));
    rb.n = 5;
    fill_ok_announce(&rb.rep[0], 1, 4, 3, 0);
    fill_ok_announce(&rb.rep[1], 2, 6, 2, 1);
    fill_ok_scrape(&rb.rep[2], 3, 4, 2);
    fill_moved(&rb.rep[3], 4, 1ULL << 40);
    fill_error(&rb.rep[4], 5, "node shutting down");
    size_t n = encode_replies();
    static uint8_t msg[4096];
    memcpy(msg, buf, n);
    assert_prefixes_truncated(msg, n, true);
}

static void empty_input_is_truncated(void **state)
{
    (void)state;
    assert_int_equal(cmsg_decode_requests(NULL, 0, &qd), CMSG_ERR_TRUNCATED);
    assert_int_equal(cmsg_decode_replies(NULL, 0, &rd, NULL, 0), CMSG_ERR_TRUNCATED);
}

static void trailing_bytes_are_rejected(void **state)
{
    (void)state;
    uint8_t msg[sizeof(announce4_request_bytes) + 1];
    memcpy(msg, announce4_request_bytes, sizeof(announce4_request_bytes));
    msg[sizeof(msg) - 1] = 0xc0;
    assert_int_equal(cmsg_decode_requests(msg, sizeof(msg), &qd), CMSG_ERR_TRAILING);
    uint8_t rmsg[sizeof(reply_bytes) + 1];
    memcpy(rmsg, reply_bytes, sizeof(reply_bytes));
    rmsg[sizeof(rmsg) - 1] = 0x00;
    assert_int_equal(cmsg_decode_replies(rmsg, sizeof(rmsg), &rd, arena, ARENA_CAP),
                     CMSG_ERR_TRAILING);
}

static void wrong_versions_are_rejected(void **state)
{
    (void)state;
    uint8_t msg[sizeof(empty_request_bytes)];
    static const uint8_t versions[] = {0x00, 0x02, 0x7f, 0xff /* -1 */};
    for (size_t i = 0; i < sizeof(versions); i++) {
        memcpy(msg, empty_request_bytes, sizeof(msg));
        msg[1] = versions[i];
        assert_int_equal(cmsg_decode_requests(msg, sizeof(msg), &qd), CMSG_ERR_VERSION);
        msg[2] = CMSG_REPLY_BATCH;
        assert_int_equal(cmsg_decode_replies(msg, sizeof(msg), &rd, arena, 0), CMSG_ERR_VERSION);
    }
    /* a later version may have another shape: the version is judged first */
    static const uint8_t v2_other_shape[] = {0x92, 0x02, 0x01};
    assert_int_equal(cmsg_decode_requests(v2_other_shape, sizeof(v2_other_shape), &qd),
                     CMSG_ERR_VERSION);
}

static void wrong_message_types_are_rejected(void **state)
{
    (void)state;
    assert_int_equal(cmsg_decode_requests(reply_bytes, sizeof(reply_bytes), &qd),
                     CMSG_ERR_MSG_TYPE);
    assert_int_equal(cmsg_decode_replies(announce4_request_bytes, sizeof(announce4_request_bytes),
                                         &rd, arena, 0),
                     CMSG_ERR_MSG_TYPE);
    uint8_t msg[sizeof(empty_request_bytes)];
    memcpy(msg, empty_request_bytes, sizeof(msg));
    msg[2] = 3;
    assert_int_equal(cmsg_decode_requests(msg, sizeof(msg), &qd), CMSG_ERR_MSG_TYPE);
}

static void wrong_top_level_types_are_rejected(void **state)
{
    (void)state;
    static const uint8_t inputs[][2] = {
        {0x80, 0x00}, /* a map */
        {0xc0, 0x00}, /* nil */
        {0xc1, 0x00}, /* never used */
        {0x01, 0x00}, /* an integer */
        {0xa1, 'x'},  /* a string */
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        assert_int_equal(cmsg_decode_requests(inputs[i], 1 + (i == 4), &qd), CMSG_ERR_TYPE);
        assert_int_equal(cmsg_decode_replies(inputs[i], 1 + (i == 4), &rd, arena, 0),
                         CMSG_ERR_TYPE);
    }
}

static void wrong_header_shapes_are_rejected(void **state)
{
    (void)state;
    static const uint8_t four[] = {0x94, 0x01, 0x01, 0x05, 0x07};
    static const uint8_t six[] = {0x96, 0x01, 0x01, 0x05, 0x07, 0x90, 0x00};
    static const uint8_t none[] = {0x90};
    static const uint8_t version_only[] = {0x91, 0x01};
    assert_int_equal(cmsg_decode_requests(four, sizeof(four), &qd), CMSG_ERR_SHAPE);
    assert_int_equal(cmsg_decode_requests(six, sizeof(six), &qd), CMSG_ERR_SHAPE);
    assert_int_equal(cmsg_decode_requests(none, sizeof(none), &qd), CMSG_ERR_SHAPE);
    assert_int_equal(cmsg_decode_requests(version_only, sizeof(version_only), &qd), CMSG_ERR_SHAPE);
}

/* A 5-byte array header claiming 2^32 - 1 requests is refused before anything is read or
 * allocated; so is 257. */
static void oversized_batches_are_rejected(void **state)
{
    (void)state;
    static const uint8_t huge[] = {0x95, 0x01, 0x01, 0x05, 0x07, 0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t over[] = {0x95, 0x01, 0x01, 0x05, 0x07, 0xdc, 0x01, 0x01};
    assert_int_equal(cmsg_decode_requests(huge, sizeof(huge), &qd), CMSG_ERR_TOO_MANY);
    assert_int_equal(cmsg_decode_requests(over, sizeof(over), &qd), CMSG_ERR_TOO_MANY);
    uint8_t rhuge[sizeof(huge)];
    memcpy(rhuge, huge, sizeof(huge));
    rhuge[2] = CMSG_REPLY_BATCH;
    assert_int_equal(cmsg_decode_replies(rhuge, sizeof(rhuge), &rd, arena, 0), CMSG_ERR_TOO_MANY);
}

/* Non-shortest integer and container encodings are valid msgpack and are accepted. */
static void longer_encodings_are_accepted(void **state)
{
    (void)state;
    static const uint8_t msg[] = {
        0xdd, 0x00, 0x00, 0x00, 0x05,                         /* array 32 of 5 */
        0xcf, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* version 1 as uint 64 */
        0xd0, 0x01,                                           /* type 1 as int 8 */
        0xd3, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, /* epoch 5 as int 64 */
        0xcc, 0x07,                                           /* batch 7 as uint 8 */
        0xdc, 0x00, 0x00,                                     /* array 16 of 0 */
    };
    assert_int_equal(cmsg_decode_requests(msg, sizeof(msg), &qd), CMSG_OK);
    assert_int_equal(qd.epoch, 5);
    assert_int_equal(qd.batch_id, 7);
    assert_int_equal(qd.n, 0);
}

/* --- field-by-field mutations, built with msgpack-c's packer --- */

typedef void (*alt_fn)(msgpack_packer *pk);

static void alt_nil(msgpack_packer *pk)
{
    msgpack_pack_nil(pk);
}
static void alt_str(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "abcdefghijklmnopqrst", 20);
}
static void alt_float(msgpack_packer *pk)
{
    msgpack_pack_double(pk, 1.0);
}
static void alt_map(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 0);
}
static void alt_true(msgpack_packer *pk)
{
    msgpack_pack_true(pk);
}

static size_t sbuf_take(msgpack_sbuffer *sb)
{
    assert_true(sb->size <= sizeof(buf));
    memcpy(buf, sb->data, sb->size);
    size_t n = sb->size;
    msgpack_sbuffer_destroy(sb);
    return n;
}

/* One announce request batch; announce field `field` (0..12) is written by alt instead. */
static size_t announce_with(int field, alt_fn alt)
{
    static const uint8_t ih[20] = {1}, pid[20] = {2}, addr[4] = {127, 0, 0, 1};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 13);
    for (int f = 0; f < 13; f++) {
        if (f == field) {
            alt(&pk);
            continue;
        }
        switch (f) {
        case 2:
            msgpack_pack_bin_with_body(&pk, ih, 20);
            break;
        case 3:
            msgpack_pack_bin_with_body(&pk, pid, 20);
            break;
        case 4:
            msgpack_pack_uint8(&pk, 4);
            break;
        case 5:
            msgpack_pack_bin_with_body(&pk, addr, 4);
            break;
        case 11:
            msgpack_pack_int32(&pk, -1);
            break;
        default:
            msgpack_pack_uint8(&pk, f == 1 ? 0 : 1); /* kind 0 (announce); others 1 */
        }
    }
    return sbuf_take(&sb);
}

/* One reply batch with an ok announce reply; field `field` (0..7) is written by alt. */
static size_t ok_announce_with(int field, alt_fn alt)
{
    static const uint8_t two[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 8);
    for (int f = 0; f < 8; f++) {
        if (f == field)
            alt(&pk);
        else if (f == 1 || f == 2)
            msgpack_pack_uint8(&pk, 0); /* ok, announce */
        else if (f == 6)
            msgpack_pack_uint8(&pk, 4);
        else if (f == 7)
            msgpack_pack_bin_with_body(&pk, two, 12);
        else
            msgpack_pack_uint32(&pk, 5);
    }
    return sbuf_take(&sb);
}

static cmsg_err_t decode_req(size_t n)
{
    return cmsg_decode_requests(buf, n, &qd);
}

static cmsg_err_t decode_rep(size_t n)
{
    return cmsg_decode_replies(buf, n, &rd, arena, ARENA_CAP);
}

static void mutation_builders_are_valid_unmutated(void **state)
{
    (void)state;
    assert_int_equal(decode_req(announce_with(-1, NULL)), CMSG_OK);
    assert_int_equal(qd.req[0].announce.numwant, -1);
    assert_int_equal(decode_rep(ok_announce_with(-1, NULL)), CMSG_OK);
    assert_int_equal(rd.rep[0].n_peers, 2);
}

static void wrong_typed_request_fields_are_rejected(void **state)
{
    (void)state;
    const alt_fn alts[] = {alt_nil, alt_str, alt_float, alt_map, alt_true};
    for (int f = 0; f < 13; f++) {
        for (size_t a = 0; a < sizeof(alts) / sizeof(alts[0]); a++) {
            cmsg_err_t e = decode_req(announce_with(f, alts[a]));
            if (e != CMSG_ERR_TYPE)
                fail_msg("announce field %d, alternative %zu: %s", f, a, cmsg_strerror(e));
        }
    }
}

static void wrong_typed_reply_fields_are_rejected(void **state)
{
    (void)state;
    const alt_fn alts[] = {alt_nil, alt_str, alt_float, alt_map, alt_true};
    for (int f = 0; f < 8; f++) {
        for (size_t a = 0; a < sizeof(alts) / sizeof(alts[0]); a++) {
            cmsg_err_t e = decode_rep(ok_announce_with(f, alts[a]));
            if (e != CMSG_ERR_TYPE)
                fail_msg("reply field %d, alternative %zu: %s", f, a, cmsg_strerror(e));
        }
    }
}

static void alt_u32_over(msgpack_packer *pk)
{
    msgpack_pack_uint64(pk, 1ULL << 32);
}
static void alt_negative(msgpack_packer *pk)
{
    msgpack_pack_int8(pk, -1);
}
static void alt_two(msgpack_packer *pk)
{
    msgpack_pack_uint8(pk, 2);
}
static void alt_three(msgpack_packer *pk)
{
    msgpack_pack_uint8(pk, 3);
}
static void alt_five(msgpack_packer *pk)
{
    msgpack_pack_uint8(pk, 5);
}
static void alt_port_over(msgpack_packer *pk)
{
    msgpack_pack_uint32(pk, 65536);
}
static void alt_int32_over(msgpack_packer *pk)
{
    msgpack_pack_uint32(pk, 1u << 31);
}
static void alt_int32_under(msgpack_packer *pk)
{
    msgpack_pack_int64(pk, (int64_t)INT32_MIN - 1);
}
static void alt_event_over(msgpack_packer *pk)
{
    msgpack_pack_uint8(pk, 4);
}
static void alt_bin19(msgpack_packer *pk)
{
    msgpack_pack_bin_with_body(pk, "0123456789012345678", 19);
}
static void alt_bin16(msgpack_packer *pk)
{
    msgpack_pack_bin_with_body(pk, "0123456789012345", 16);
}
static void alt_bin7(msgpack_packer *pk)
{
    msgpack_pack_bin_with_body(pk, "0123456", 7);
}
static void alt_peers_201(msgpack_packer *pk)
{
    static const uint8_t many[201 * 6];
    msgpack_pack_bin_with_body(pk, many, sizeof(many));
}

static void out_of_range_fields_are_rejected(void **state)
{
    (void)state;
    struct {
        int field;
        alt_fn alt;
        cmsg_err_t want;
    } const req_cases[] = {
        {0, alt_u32_over, CMSG_ERR_RANGE},     {0, alt_negative, CMSG_ERR_RANGE},
        {1, alt_two, CMSG_ERR_RANGE},          {2, alt_bin19, CMSG_ERR_LENGTH},
        {3, alt_bin16, CMSG_ERR_LENGTH},       {4, alt_five, CMSG_ERR_RANGE},
        {4, alt_negative, CMSG_ERR_RANGE},     {5, alt_bin16, CMSG_ERR_LENGTH},
        {6, alt_port_over, CMSG_ERR_RANGE},    {7, alt_event_over, CMSG_ERR_RANGE},
        {8, alt_negative, CMSG_ERR_RANGE},     {9, alt_negative, CMSG_ERR_RANGE},
        {10, alt_negative, CMSG_ERR_RANGE},    {11, alt_int32_over, CMSG_ERR_RANGE},
        {11, alt_int32_under, CMSG_ERR_RANGE}, {12, alt_u32_over, CMSG_ERR_RANGE},
    };
    for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
        cmsg_err_t e = decode_req(announce_with(req_cases[i].field, req_cases[i].alt));
        if (e != req_cases[i].want)
            fail_msg("request case %zu: %s", i, cmsg_strerror(e));
    }
    struct {
        int field;
        alt_fn alt;
        cmsg_err_t want;
    } const rep_cases[] = {
        {0, alt_u32_over, CMSG_ERR_RANGE},  {1, alt_three, CMSG_ERR_RANGE},
        {2, alt_two, CMSG_ERR_RANGE},       {3, alt_u32_over, CMSG_ERR_RANGE},
        {4, alt_negative, CMSG_ERR_RANGE},  {5, alt_u32_over, CMSG_ERR_RANGE},
        {6, alt_five, CMSG_ERR_RANGE},      {7, alt_bin7, CMSG_ERR_LENGTH},
        {7, alt_peers_201, CMSG_ERR_COUNT},
    };
    for (size_t i = 0; i < sizeof(rep_cases) / sizeof(rep_cases[0]); i++) {
        cmsg_err_t e = decode_rep(ok_announce_with(rep_cases[i].field, rep_cases[i].alt));
        if (e != rep_cases[i].want)
            fail_msg("reply case %zu: %s", i, cmsg_strerror(e));
    }
}

static void announce_with_v4_family_and_v6_address_is_rejected(void **state)
{
    (void)state;
    /* family 4 (field 4 as built) and a 16-byte address */
    assert_int_equal(decode_req(announce_with(5, alt_bin16)), CMSG_ERR_LENGTH);
}

/* A scrape request whose hashes bin holds len bytes. */
static size_t scrape_with_len(size_t len)
{
    static uint8_t zeros[(SHOAL_SCRAPE_MAX + 1) * SHOAL_HASH_LEN];
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_bin_with_body(&pk, zeros, len);
    return sbuf_take(&sb);
}

static void scrape_hash_counts_are_checked(void **state)
{
    (void)state;
    assert_int_equal(decode_req(scrape_with_len(0)), CMSG_ERR_COUNT);
    assert_int_equal(decode_req(scrape_with_len(20)), CMSG_OK);
    assert_int_equal(decode_req(scrape_with_len(30)), CMSG_ERR_LENGTH);
    assert_int_equal(decode_req(scrape_with_len(SHOAL_SCRAPE_MAX * 20)), CMSG_OK);
    assert_int_equal(decode_req(scrape_with_len((SHOAL_SCRAPE_MAX + 1) * 20)), CMSG_ERR_COUNT);
}

/* A reply batch with one ok scrape reply of n entries, each entry an array of `width`. */
static size_t scrape_reply_with(size_t n, size_t width)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_array(&pk, width);
        for (size_t k = 0; k < width; k++)
            msgpack_pack_uint8(&pk, 1);
    }
    return sbuf_take(&sb);
}

static void scrape_reply_counts_are_checked(void **state)
{
    (void)state;
    assert_int_equal(decode_rep(scrape_reply_with(0, 3)), CMSG_ERR_COUNT);
    assert_int_equal(decode_rep(scrape_reply_with(1, 3)), CMSG_OK);
    assert_int_equal(decode_rep(scrape_reply_with(SHOAL_SCRAPE_MAX, 3)), CMSG_OK);
    assert_int_equal(decode_rep(scrape_reply_with(SHOAL_SCRAPE_MAX + 1, 3)), CMSG_ERR_COUNT);
    assert_int_equal(decode_rep(scrape_reply_with(2, 2)), CMSG_ERR_SHAPE);
    assert_int_equal(decode_rep(scrape_reply_with(2, 4)), CMSG_ERR_SHAPE);
}

/* A reply batch with one reply: [id 1, status, then `extra` as packed by fn]. */
static size_t status_reply(int fields, int status, alt_fn extra)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, 2);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_uint8(&pk, 0);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, (size_t)fields);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_int32(&pk, status);
    for (int f = 2; f < fields; f++)
        extra(&pk);
    return sbuf_take(&sb);
}

static void alt_text_128(msgpack_packer *pk)
{
    char s[128];
    memset(s, 'm', sizeof(s));
    msgpack_pack_str_with_body(pk, s, sizeof(s));
}
static void alt_text_129(msgpack_packer *pk)
{
    char s[129];
    memset(s, 'm', sizeof(s));
    msgpack_pack_str_with_body(pk, s, sizeof(s));
}
static void alt_text_nul(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "a\0b", 3);
}
static void alt_bin_text(msgpack_packer *pk)
{
    msgpack_pack_bin_with_body(pk, "busy", 4);
}

static void moved_and_error_replies_are_checked(void **state)
{
    (void)state;
    assert_int_equal(decode_rep(status_reply(3, CMSG_STATUS_MOVED, alt_five)), CMSG_OK);
    assert_int_equal(rd.rep[0].epoch, 5);
    assert_int_equal(decode_rep(status_reply(2, CMSG_STATUS_MOVED, alt_five)), CMSG_ERR_SHAPE);
    assert_int_equal(decode_rep(status_reply(4, CMSG_STATUS_MOVED, alt_five)), CMSG_ERR_SHAPE);
    assert_int_equal(decode_rep(status_reply(3, CMSG_STATUS_MOVED, alt_str)), CMSG_ERR_TYPE);
    assert_int_equal(decode_rep(status_reply(3, CMSG_STATUS_MOVED, alt_negative)), CMSG_ERR_RANGE);
    assert_int_equal(decode_rep(status_reply(3, CMSG_STATUS_ERROR, alt_text_128)), CMSG_OK);
    assert_int_equal(strlen(rd.rep[0].error), 128);
    assert_int_equal(decode_rep(status_reply(3, CMSG_STATUS_ERROR, alt_text_129)), CMSG_ERR_LENGTH);
    assert_int_equal(decode_rep(status_reply(3, CMSG_STATUS_ERROR, alt_text_nul)), CMSG_ERR_TEXT);
    assert_int_equal(decode_rep(status_reply(3, CMSG_STATUS_ERROR, alt_bin_text)), CMSG_ERR_TYPE);
    assert_int_equal(decode_rep(status_reply(4, CMSG_STATUS_ERROR, alt_str)), CMSG_ERR_SHAPE);
    assert_int_equal(decode_rep(status_reply(3, -1, alt_five)), CMSG_ERR_RANGE);
    assert_int_equal(decode_rep(status_reply(1, CMSG_STATUS_OK, alt_five)), CMSG_ERR_SHAPE);
    assert_int_equal(decode_rep(status_reply(2, CMSG_STATUS_OK, alt_five)), CMSG_ERR_SHAPE);
}

static void wrong_request_shapes_are_rejected(void **state)
{
    (void)state;
    /* [1, 1, 0, 0, [[id, kind, ...]]] with a field count that does not fit the kind */
    static const uint8_t announce_12[] = {0x95, 0x01, 0x01, 0x00, 0x00, 0x91, 0x9c, 0x01, 0x00};
    static const uint8_t scrape_4[] = {0x95, 0x01, 0x01, 0x00, 0x00, 0x91, 0x94, 0x01, 0x01};
    static const uint8_t one_field[] = {0x95, 0x01, 0x01, 0x00, 0x00, 0x91, 0x91, 0x01};
    static const uint8_t not_array[] = {0x95, 0x01, 0x01, 0x00, 0x00, 0x91, 0x01};
    assert_int_equal(cmsg_decode_requests(announce_12, sizeof(announce_12), &qd), CMSG_ERR_SHAPE);
    assert_int_equal(cmsg_decode_requests(scrape_4, sizeof(scrape_4), &qd), CMSG_ERR_SHAPE);
    assert_int_equal(cmsg_decode_requests(one_field, sizeof(one_field), &qd), CMSG_ERR_SHAPE);
    assert_int_equal(cmsg_decode_requests(not_array, sizeof(not_array), &qd), CMSG_ERR_TYPE);
}

static void strerror_names_every_error(void **state)
{
    (void)state;
    for (int e = CMSG_ERR_TRUNCATED; e <= CMSG_ERR_ARENA; e++) {
        const char *s = cmsg_strerror((cmsg_err_t)e);
        assert_string_not_equal(s, "unknown error");
        for (int f = CMSG_OK; f < e; f++)
            assert_string_not_equal(s, cmsg_strerror((cmsg_err_t)f));
    }
    assert_string_equal(cmsg_strerror((cmsg_err_t)999), "unknown error");
}

/* --- lookups --- */

static cmsg_lookup_request_t lq, lqd;
static cmsg_lookup_reply_t lr, lrd;

static const uint8_t lookup_request_bytes[] = {
    0x97, 0x01, 0x03,                                           /* 7 fields, v1, lookup request */
    0xcf, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,       /* epoch */
    0x07,                                                       /* id 7 */
    0xc4, 0x14,                                                 /* info_hash: bin 20 */
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, /* */
    0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, /* */
    0xcd, 0x01, 0x2c,                                           /* offset 300 */
    0xcd, 0x03, 0xe8,                                           /* max_peers 1000 */
};

static const uint8_t lookup_reply_bytes[] = {
    0x9c, 0x01, 0x04,                               /* 12 fields, v1, lookup reply */
    0xcd, 0x01, 0x00,                               /* id 256 */
    0x09,                                           /* epoch 9 */
    0x00, 0x01,                                     /* ok, found */
    0x02, 0x03, 0xcd, 0x01, 0x2c,                   /* seeders 2, leechers 3, downloaded 300 */
    0x05, 0x03,                                     /* total 5, offset 3 */
    0xc4, 0x30,                                     /* bin 48: two records */
    0x04, 0x00, 0x1a, 0xe1,                         /* IPv4 leecher, port 6881 */
    0x00, 0x00, 0x00, 0x1e,                         /* age 30 */
    0xc0, 0x00, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, /* 192.0.2.1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* */
    0x06, 0x01, 0xff, 0xff,                         /* IPv6 seeder, port 65535 */
    0x00, 0x01, 0x00, 0x00,                         /* age 65536 */
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, /* 2001:db8::1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* */
};

static void fill_lookup_request(cmsg_lookup_request_t *q)
{
    memset(q, 0, sizeof(*q));
    q->epoch = 0x0102030405060708ULL;
    q->id = 7;
    for (int i = 0; i < 20; i++)
        q->info_hash[i] = (uint8_t)(0x10 + i);
    q->offset = 300;
    q->max_peers = CMSG_LOOKUP_PEERS_MAX;
}

static void fill_lookup_peer(cmsg_lookup_peer_t *p, size_t i)
{
    memset(p, 0, sizeof(*p));
    p->family = i % 3 ? 4 : 6;
    p->seeder = i % 2;
    p->port = (uint16_t)(i * 131);
    p->age_s = (uint32_t)(i * 2654435761u);
    for (int b = 0; b < (p->family == 4 ? 4 : 16); b++)
        p->addr[b] = (uint8_t)(i * 7 + b);
}

/* An ok reply with n peers of a swarm of total (>= offset + n) peers. */
static void fill_lookup_ok(cmsg_lookup_reply_t *r, size_t n, uint32_t offset, uint32_t total)
{
    memset(r, 0, sizeof(*r));
    r->id = 256;
    r->epoch = 9;
    r->status = CMSG_STATUS_OK;
    r->result.found = true;
    r->result.stats = (swarm_stats_t){.seeders = 2, .leechers = 3, .downloaded = 300};
    r->result.total = total;
    r->result.offset = offset;
    r->result.n_peers = n;
    for (size_t i = 0; i < n; i++)
        fill_lookup_peer(&r->result.peers[i], i);
}

static void assert_lookup_replies_equal(const cmsg_lookup_reply_t *a, const cmsg_lookup_reply_t *b)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->epoch, b->epoch);
    assert_int_equal(a->status, b->status);
    assert_string_equal(a->error, b->error);
    const cmsg_lookup_result_t *x = &a->result, *y = &b->result;
    assert_int_equal(x->found, y->found);
    assert_memory_equal(&x->stats, &y->stats, sizeof(x->stats));
    assert_int_equal(x->total, y->total);
    assert_int_equal(x->offset, y->offset);
    assert_int_equal(x->n_peers, y->n_peers);
    for (size_t i = 0; i < x->n_peers; i++) {
        const cmsg_lookup_peer_t *p = &x->peers[i], *q = &y->peers[i];
        assert_int_equal(p->family, q->family);
        assert_int_equal(p->seeder, q->seeder);
        assert_int_equal(p->port, q->port);
        assert_int_equal(p->age_s, q->age_s);
        assert_memory_equal(p->addr, q->addr, 16);
    }
}

static size_t round_trip_lookup_reply(void)
{
    ssize_t n = cmsg_encode_lookup_reply(&lr, buf, sizeof(buf));
    assert_true(n > 0);
    memset(&lrd, 0x5a, sizeof(lrd));
    assert_int_equal(cmsg_decode_lookup_reply(buf, (size_t)n, &lrd), CMSG_OK);
    assert_lookup_replies_equal(&lr, &lrd);
    return (size_t)n;
}

static void lookup_request_encodes_and_decodes_exactly(void **state)
{
    (void)state;
    fill_lookup_request(&lq);
    ssize_t n = cmsg_encode_lookup_request(&lq, buf, sizeof(buf));
    assert_int_equal(n, sizeof(lookup_request_bytes));
    assert_memory_equal(buf, lookup_request_bytes, sizeof(lookup_request_bytes));
    memset(&lqd, 0x5a, sizeof(lqd));
    assert_int_equal(
        cmsg_decode_lookup_request(lookup_request_bytes, sizeof(lookup_request_bytes), &lqd),
        CMSG_OK);
    assert_int_equal(lqd.epoch, lq.epoch);
    assert_int_equal(lqd.id, 7);
    assert_memory_equal(lqd.info_hash, lq.info_hash, 20);
    assert_int_equal(lqd.offset, 300);
    assert_int_equal(lqd.max_peers, 1000);
    /* The smallest: zeros everywhere. */
    memset(&lq, 0, sizeof(lq));
    n = cmsg_encode_lookup_request(&lq, buf, sizeof(buf));
    assert_int_equal(n, 7 + 22);
    assert_int_equal(cmsg_decode_lookup_request(buf, (size_t)n, &lqd), CMSG_OK);
    assert_int_equal(lqd.max_peers, 0);
}

static void lookup_reply_encodes_and_decodes_exactly(void **state)
{
    (void)state;
    memset(&lr, 0, sizeof(lr));
    lr.id = 256;
    lr.epoch = 9;
    lr.status = CMSG_STATUS_OK;
    lr.result = (cmsg_lookup_result_t){
        .found = true, .stats = {2, 3, 300}, .total = 5, .offset = 3, .n_peers = 2};
    cmsg_lookup_peer_t *p = lr.result.peers;
    p[0] = (cmsg_lookup_peer_t){.family = 4, .port = 6881, .age_s = 30, .addr = {192, 0, 2, 1}};
    p[1] = (cmsg_lookup_peer_t){.family = 6,
                                .seeder = true,
                                .port = 65535,
                                .age_s = 65536,
                                .addr = {0x20, 0x01, 0x0d, 0xb8, [15] = 1}};
    ssize_t n = cmsg_encode_lookup_reply(&lr, buf, sizeof(buf));
    assert_int_equal(n, sizeof(lookup_reply_bytes));
    assert_memory_equal(buf, lookup_reply_bytes, sizeof(lookup_reply_bytes));
    memset(&lrd, 0x5a, sizeof(lrd));
    assert_int_equal(cmsg_decode_lookup_reply(lookup_reply_bytes, sizeof(lookup_reply_bytes), &lrd),
                     CMSG_OK);
    assert_lookup_replies_equal(&lr, &lrd);
}

static void lookup_reply_shapes_round_trip(void **state)
{
    (void)state;
    fill_lookup_ok(&lr, 0, 0, 0); /* a swarm with no peers left (only its downloaded count) */
    round_trip_lookup_reply();
    fill_lookup_ok(&lr, 0, 1000, 5); /* a page past the end */
    round_trip_lookup_reply();
    fill_lookup_ok(&lr, 17, 4, 21); /* the last page, exactly */
    round_trip_lookup_reply();
    memset(&lr, 0, sizeof(lr)); /* not found */
    lr.id = 1;
    lr.status = CMSG_STATUS_OK;
    assert_int_equal(round_trip_lookup_reply(), 14);
    memset(&lr, 0, sizeof(lr));
    lr.id = 2;
    lr.epoch = UINT64_MAX;
    lr.status = CMSG_STATUS_MOVED;
    round_trip_lookup_reply();
    memset(&lr, 0, sizeof(lr));
    lr.id = 3;
    lr.status = CMSG_STATUS_ERROR;
    memset(lr.error, 'e', CMSG_ERROR_MAX);
    assert_true(round_trip_lookup_reply() <= CMSG_LOOKUP_REPLY_BOUND(0) + CMSG_ERROR_MAX);
    lr.error[0] = '\0';
    round_trip_lookup_reply();
}

static void largest_lookup_reply_meets_its_bound(void **state)
{
    (void)state;
    fill_lookup_ok(&lr, CMSG_LOOKUP_PEERS_MAX, UINT32_MAX - CMSG_LOOKUP_PEERS_MAX, UINT32_MAX);
    lr.id = UINT32_MAX;
    lr.epoch = UINT64_MAX;
    lr.result.stats = (swarm_stats_t){UINT32_MAX, UINT32_MAX, UINT32_MAX};
    assert_int_equal(round_trip_lookup_reply(), CMSG_LOOKUP_REPLY_MAX);
    /* And every buffer one byte short of it is reported, never overrun. */
    static uint8_t exact[CMSG_LOOKUP_REPLY_MAX];
    for (size_t cap = 0; cap < CMSG_LOOKUP_REPLY_MAX; cap += cap < 64 ? 1 : 997) {
        uint8_t *small = malloc(cap ? cap : 1); /* exact size, so ASan sees any overrun */
        assert_non_null(small);
        assert_int_equal(cmsg_encode_lookup_reply(&lr, small, cap), -1);
        free(small);
    }
    assert_int_equal(cmsg_encode_lookup_reply(&lr, exact, sizeof(exact)), sizeof(exact));
    fill_lookup_request(&lq); /* every field at its widest */
    lq.epoch = UINT64_MAX;
    lq.id = UINT32_MAX;
    lq.offset = UINT32_MAX;
    assert_int_equal(cmsg_encode_lookup_request(&lq, buf, sizeof(buf)), CMSG_LOOKUP_REQUEST_BOUND);
    for (size_t cap = 0; cap < CMSG_LOOKUP_REQUEST_BOUND; cap++)
        assert_int_equal(cmsg_encode_lookup_request(&lq, buf, cap), -1);
}

static void lookup_encoders_refuse_invalid_messages(void **state)
{
    (void)state;
    fill_lookup_request(&lq);
    lq.max_peers = CMSG_LOOKUP_PEERS_MAX + 1;
    assert_int_equal(cmsg_encode_lookup_request(&lq, buf, sizeof(buf)), -2);
    fill_lookup_ok(&lr, 3, 0, 3);
    assert_true(cmsg_encode_lookup_reply(&lr, buf, sizeof(buf)) > 0);
    lr.result.n_peers = CMSG_LOOKUP_PEERS_MAX + 1;
    lr.result.total = UINT32_MAX;
    assert_int_equal(cmsg_encode_lookup_reply(&lr, buf, sizeof(buf)), -2);
    fill_lookup_ok(&lr, 3, 1, 3); /* offset + n past total */
    assert_int_equal(cmsg_encode_lookup_reply(&lr, buf, sizeof(buf)), -2);
    fill_lookup_ok(&lr, 3, 0, 3);
    lr.result.peers[1].family = 5;
    assert_int_equal(cmsg_encode_lookup_reply(&lr, buf, sizeof(buf)), -2);
    fill_lookup_ok(&lr, 3, 0, 3);
    lr.result.peers[1].addr[15] = 1; /* an IPv4 peer with bytes past its address */
    assert_int_equal(lr.result.peers[1].family, 4);
    assert_int_equal(cmsg_encode_lookup_reply(&lr, buf, sizeof(buf)), -2);
    fill_lookup_ok(&lr, 0, 0, 0);
    lr.result.found = false; /* not found, but counts */
    assert_int_equal(cmsg_encode_lookup_reply(&lr, buf, sizeof(buf)), -2);
    memset(&lr, 0, sizeof(lr));
    lr.status = CMSG_STATUS_ERROR;
    memset(lr.error, 'x', sizeof(lr.error)); /* no NUL */
    assert_int_equal(cmsg_encode_lookup_reply(&lr, buf, sizeof(buf)), -2);
    lr.status = 3;
    assert_int_equal(cmsg_encode_lookup_reply(&lr, buf, sizeof(buf)), -2);
}

static void every_prefix_of_a_lookup_is_truncated(void **state)
{
    (void)state;
    fill_lookup_ok(&lr, 40, 0, 40);
    ssize_t n = cmsg_encode_lookup_reply(&lr, buf, sizeof(buf));
    assert_true(n > 0);
    static uint8_t msg[2048];
    memcpy(msg, buf, (size_t)n);
    const struct {
        const uint8_t *p;
        size_t len;
        bool reply;
    } msgs[] = {
        {lookup_request_bytes, sizeof(lookup_request_bytes), false},
        {lookup_reply_bytes, sizeof(lookup_reply_bytes), true},
        {msg, (size_t)n, true},
    };
    for (size_t m = 0; m < sizeof(msgs) / sizeof(msgs[0]); m++) {
        for (size_t cut = 0; cut < msgs[m].len; cut++) {
            uint8_t *copy = malloc(cut ? cut : 1);
            assert_non_null(copy);
            memcpy(copy, msgs[m].p, cut);
            cmsg_err_t e = msgs[m].reply ? cmsg_decode_lookup_reply(copy, cut, &lrd)
                                         : cmsg_decode_lookup_request(copy, cut, &lqd);
            free(copy);
            if (e != CMSG_ERR_TRUNCATED)
                fail_msg("message %zu, prefix of %zu bytes: %s", m, cut, cmsg_strerror(e));
        }
    }
    assert_int_equal(cmsg_decode_lookup_request(NULL, 0, &lqd), CMSG_ERR_TRUNCATED);
    assert_int_equal(cmsg_decode_lookup_reply(NULL, 0, &lrd), CMSG_ERR_TRUNCATED);
}

static void lookups_and_batches_are_told_apart(void **state)
{
    (void)state;
    /* Each decoder refuses the other messages by their type, whatever their shape. */
    assert_int_equal(cmsg_decode_requests(lookup_request_bytes, sizeof(lookup_request_bytes), &qd),
                     CMSG_ERR_MSG_TYPE);
    assert_int_equal(
        cmsg_decode_replies(lookup_reply_bytes, sizeof(lookup_reply_bytes), &rd, arena, ARENA_CAP),
        CMSG_ERR_MSG_TYPE);
    assert_int_equal(
        cmsg_decode_lookup_request(empty_request_bytes, sizeof(empty_request_bytes), &lqd),
        CMSG_ERR_MSG_TYPE);
    assert_int_equal(
        cmsg_decode_lookup_request(lookup_reply_bytes, sizeof(lookup_reply_bytes), &lqd),
        CMSG_ERR_MSG_TYPE);
    assert_int_equal(cmsg_decode_lookup_reply(reply_bytes, sizeof(reply_bytes), &lrd),
                     CMSG_ERR_MSG_TYPE);
    assert_int_equal(
        cmsg_decode_lookup_reply(lookup_request_bytes, sizeof(lookup_request_bytes), &lrd),
        CMSG_ERR_MSG_TYPE);
    /* Version first, trailing bytes last. */
    uint8_t msg[sizeof(lookup_reply_bytes) + 1];
    memcpy(msg, lookup_request_bytes, sizeof(lookup_request_bytes));
    msg[1] = 2;
    assert_int_equal(cmsg_decode_lookup_request(msg, sizeof(lookup_request_bytes), &lqd),
                     CMSG_ERR_VERSION);
    msg[1] = 1;
    msg[sizeof(lookup_request_bytes)] = 0x00;
    assert_int_equal(cmsg_decode_lookup_request(msg, sizeof(lookup_request_bytes) + 1, &lqd),
                     CMSG_ERR_TRAILING);
    memcpy(msg, lookup_reply_bytes, sizeof(lookup_reply_bytes));
    msg[sizeof(lookup_reply_bytes)] = 0xc0;
    assert_int_equal(cmsg_decode_lookup_reply(msg, sizeof(msg), &lrd), CMSG_ERR_TRAILING);
    msg[0] = 0x9b; /* 11 fields */
    assert_int_equal(cmsg_decode_lookup_reply(msg, sizeof(lookup_reply_bytes), &lrd),
                     CMSG_ERR_SHAPE);
    memcpy(msg, lookup_request_bytes, sizeof(lookup_request_bytes));
    msg[0] = 0x98; /* 8 fields */
    assert_int_equal(cmsg_decode_lookup_request(msg, sizeof(lookup_request_bytes), &lqd),
                     CMSG_ERR_SHAPE);
}

/* A lookup request; field f (0..6) is written by alt instead. */
static size_t lookup_request_with(int field, alt_fn alt)
{
    static const uint8_t ih[20] = {1};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 7);
    for (int f = 0; f < 7; f++) {
        if (f == field)
            alt(&pk);
        else if (f == 4)
            msgpack_pack_bin_with_body(&pk, ih, 20);
        else
            msgpack_pack_uint8(&pk, f == 0 ? 1 : f == 1 ? 3 : 1);
    }
    return sbuf_take(&sb);
}

static const uint8_t *lookup_peers_body; /* the records lookup_reply_with() packs */
static size_t lookup_peers_len;

/* An ok lookup reply: found, 1 seeder, 1 leecher, downloaded 1, total 2, offset 0, the records
 * lookup_peers_body (two by default); field f (0..11) is written by alt instead. */
static size_t lookup_reply_with(int field, alt_fn alt)
{
    static const uint8_t two[48] = {4, 0,        0, 1, 0, 0, 0, 1, 10, 0,    0,
                                    1, [24] = 6, 1, 0, 2, 0, 0, 0, 2,  0x20, 1};
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 12);
    for (int f = 0; f < 12; f++) {
        if (f == field)
            alt(&pk);
        else if (f == 11)
            msgpack_pack_bin_with_body(&pk, lookup_peers_body ? lookup_peers_body : two,
                                       lookup_peers_body ? lookup_peers_len : sizeof(two));
        else if (f == 1)
            msgpack_pack_uint8(&pk, 4); /* lookup reply */
        else if (f == 4 || f == 10)
            msgpack_pack_uint8(&pk, 0); /* ok; offset 0 */
        else if (f == 9)
            msgpack_pack_uint8(&pk, 2); /* total */
        else
            msgpack_pack_uint8(&pk, 1);
    }
    return sbuf_take(&sb);
}

static cmsg_err_t decode_lreq(size_t n)
{
    return cmsg_decode_lookup_request(buf, n, &lqd);
}

static cmsg_err_t decode_lrep(size_t n)
{
    return cmsg_decode_lookup_reply(buf, n, &lrd);
}

static void alt_1001(msgpack_packer *pk)
{
    msgpack_pack_uint16(pk, CMSG_LOOKUP_PEERS_MAX + 1);
}
static void alt_one(msgpack_packer *pk)
{
    msgpack_pack_uint8(pk, 1);
}
static void alt_zero(msgpack_packer *pk)
{
    msgpack_pack_uint8(pk, 0);
}
static void alt_recs_25(msgpack_packer *pk)
{
    static const uint8_t r[25] = {4};
    msgpack_pack_bin_with_body(pk, r, sizeof(r));
}
static void alt_recs_1001(msgpack_packer *pk)
{
    static uint8_t r[(CMSG_LOOKUP_PEERS_MAX + 1) * CMSG_LOOKUP_PEER_LEN];
    for (size_t i = 0; i < sizeof(r); i += CMSG_LOOKUP_PEER_LEN)
        r[i] = 4;
    msgpack_pack_bin_with_body(pk, r, sizeof(r));
}

static void lookup_fields_are_checked(void **state)
{
    (void)state;
    assert_int_equal(decode_lreq(lookup_request_with(-1, NULL)), CMSG_OK);
    assert_int_equal(decode_lrep(lookup_reply_with(-1, NULL)), CMSG_OK);
    assert_int_equal(lrd.result.n_peers, 2);
    assert_int_equal(lrd.result.peers[0].family, 4);
    assert_int_equal(lrd.result.peers[1].family, 6);
    assert_true(lrd.result.peers[1].seeder);
    const alt_fn wrong_types[] = {alt_nil, alt_str, alt_float, alt_map, alt_true};
    for (size_t a = 0; a < sizeof(wrong_types) / sizeof(wrong_types[0]); a++) {
        for (int f = 2; f < 7; f++) /* version and type have their own errors */
            if (decode_lreq(lookup_request_with(f, wrong_types[a])) != CMSG_ERR_TYPE)
                fail_msg("lookup request field %d, alternative %zu", f, a);
        for (int f = 2; f < 12; f++)
            if (decode_lrep(lookup_reply_with(f, wrong_types[a])) != CMSG_ERR_TYPE)
                fail_msg("lookup reply field %d, alternative %zu", f, a);
    }
    struct {
        int field;
        alt_fn alt;
        cmsg_err_t want;
    } const req_cases[] = {
        {0, alt_two, CMSG_ERR_VERSION},    {1, alt_one, CMSG_ERR_MSG_TYPE},
        {2, alt_negative, CMSG_ERR_RANGE}, {3, alt_u32_over, CMSG_ERR_RANGE},
        {4, alt_bin19, CMSG_ERR_LENGTH},   {5, alt_u32_over, CMSG_ERR_RANGE},
        {6, alt_1001, CMSG_ERR_RANGE},     {6, alt_negative, CMSG_ERR_RANGE},
    };
    for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
        cmsg_err_t e = decode_lreq(lookup_request_with(req_cases[i].field, req_cases[i].alt));
        if (e != req_cases[i].want)
            fail_msg("lookup request case %zu: %s", i, cmsg_strerror(e));
    }
    const struct {
        int field;
        alt_fn alt;
        cmsg_err_t want;
    } rep_cases[] = {
        {0, alt_two, CMSG_ERR_VERSION},      {1, alt_three, CMSG_ERR_MSG_TYPE},
        {2, alt_u32_over, CMSG_ERR_RANGE},   {3, alt_negative, CMSG_ERR_RANGE},
        {4, alt_three, CMSG_ERR_RANGE},      {4, alt_one, CMSG_ERR_SHAPE},  /* moved: 5 fields */
        {5, alt_two, CMSG_ERR_RANGE},        {5, alt_zero, CMSG_ERR_RANGE}, /* not found */
        {6, alt_u32_over, CMSG_ERR_RANGE},   {9, alt_one, CMSG_ERR_COUNT},  /* past total */
        {10, alt_one, CMSG_ERR_COUNT},       {11, alt_recs_25, CMSG_ERR_LENGTH},
        {11, alt_recs_1001, CMSG_ERR_COUNT}, {11, alt_bin7, CMSG_ERR_LENGTH},
    };
    for (size_t i = 0; i < sizeof(rep_cases) / sizeof(rep_cases[0]); i++) {
        cmsg_err_t e = decode_lrep(lookup_reply_with(rep_cases[i].field, rep_cases[i].alt));
        if (e != rep_cases[i].want)
            fail_msg("lookup reply case %zu: %s", i, cmsg_strerror(e));
    }
    /* Peer records: family, flags and IPv4 padding. */
    uint8_t rec[24] = {4};
    lookup_peers_body = rec;
    lookup_peers_len = sizeof(rec);
    assert_int_equal(decode_lrep(lookup_reply_with(-1, NULL)), CMSG_OK);
    rec[0] = 5;
    assert_int_equal(decode_lrep(lookup_reply_with(-1, NULL)), CMSG_ERR_RANGE);
    rec[0] = 6;
    rec[23] = 1;
    assert_int_equal(decode_lrep(lookup_reply_with(-1, NULL)), CMSG_OK);
    rec[0] = 4;
    assert_int_equal(decode_lrep(lookup_reply_with(-1, NULL)), CMSG_ERR_RANGE);
    rec[23] = 0;
    rec[1] = 2;
    assert_int_equal(decode_lrep(lookup_reply_with(-1, NULL)), CMSG_ERR_RANGE);
    lookup_peers_body = NULL;
}

static void alt_moved_short(msgpack_packer *pk)
{
    msgpack_pack_uint8(pk, CMSG_STATUS_MOVED);
}

static void lookup_moved_and_error_replies_are_checked(void **state)
{
    (void)state;
    static const uint8_t moved[] = {0x95, 0x01, 0x04, 0x05, 0x07, 0x01};
    assert_int_equal(cmsg_decode_lookup_reply(moved, sizeof(moved), &lrd), CMSG_OK);
    assert_int_equal(lrd.status, CMSG_STATUS_MOVED);
    assert_int_equal(lrd.id, 5);
    assert_int_equal(lrd.epoch, 7);
    assert_false(lrd.result.found);
    static const uint8_t moved_6[] = {0x96, 0x01, 0x04, 0x05, 0x07, 0x01, 0x00};
    assert_int_equal(cmsg_decode_lookup_reply(moved_6, sizeof(moved_6), &lrd), CMSG_ERR_SHAPE);
    static const uint8_t error[] = {0x96, 0x01, 0x04, 0x05, 0x07, 0x02, 0xa2, 'n', 'o'};
    assert_int_equal(cmsg_decode_lookup_reply(error, sizeof(error), &lrd), CMSG_OK);
    assert_string_equal(lrd.error, "no");
    static const uint8_t error_nul[] = {0x96, 0x01, 0x04, 0x05, 0x07, 0x02, 0xa2, 'n', 0};
    assert_int_equal(cmsg_decode_lookup_reply(error_nul, sizeof(error_nul), &lrd), CMSG_ERR_TEXT);
    static const uint8_t error_bin[] = {0x96, 0x01, 0x04, 0x05, 0x07, 0x02, 0xc4, 0x01, 'n'};
    assert_int_equal(cmsg_decode_lookup_reply(error_bin, sizeof(error_bin), &lrd), CMSG_ERR_TYPE);
    static const uint8_t too_short[] = {0x94, 0x01, 0x04, 0x05, 0x07};
    assert_int_equal(cmsg_decode_lookup_reply(too_short, sizeof(too_short), &lrd), CMSG_ERR_SHAPE);
    /* An ok reply cut to a moved one's length, and a moved status in an ok reply's shape. */
    assert_int_equal(decode_lrep(lookup_reply_with(4, alt_moved_short)), CMSG_ERR_SHAPE);
    uint8_t long_text[6 + 2 + 129] = {0x96, 0x01, 0x04, 0x05, 0x07, 0x02, 0xd9, 129};
    memset(long_text + 8, 'm', 129);
    assert_int_equal(cmsg_decode_lookup_reply(long_text, sizeof(long_text), &lrd), CMSG_ERR_LENGTH);
}

/* Random damage to valid lookups: whatever decodes re-encodes to the same bytes, no more than
 * its bound, and nothing reads outside the input (ASan). Fixed seed, bounded. */
static void damaged_lookups_never_misdecode(void **state)
{
    (void)state;
    fill_lookup_ok(&lr, 30, 2, 40);
    ssize_t rn = cmsg_encode_lookup_reply(&lr, buf, sizeof(buf));
    assert_true(rn > 0);
    static uint8_t good_rep[1024], good_req[64], *copy;
    memcpy(good_rep, buf, (size_t)rn);
    fill_lookup_request(&lq);
    ssize_t qn = cmsg_encode_lookup_request(&lq, good_req, sizeof(good_req));
    assert_true(qn > 0);
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    size_t decoded = 0;
    for (int round = 0; round < 20000; round++) {
        const bool reply = round % 2;
        const size_t len = reply ? (size_t)rn : (size_t)qn;
        copy = malloc(len);
        assert_non_null(copy);
        memcpy(copy, reply ? good_rep : good_req, len);
        for (int k = 0; k < 1 + round % 3; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            copy[(seed >> 33) % len] = (uint8_t)(seed >> 17);
        }
        if (reply && cmsg_decode_lookup_reply(copy, len, &lrd) == CMSG_OK) {
            ssize_t n = cmsg_encode_lookup_reply(&lrd, buf, sizeof(buf));
            assert_true(n > 0 && (size_t)n <= CMSG_LOOKUP_REPLY_BOUND(lrd.result.n_peers));
            assert_true((size_t)n <= len);
            decoded++;
        } else if (!reply && cmsg_decode_lookup_request(copy, len, &lqd) == CMSG_OK) {
            ssize_t n = cmsg_encode_lookup_request(&lqd, buf, sizeof(buf));
            assert_true(n > 0 && (size_t)n <= CMSG_LOOKUP_REQUEST_BOUND && (size_t)n <= len);
            decoded++;
        }
        free(copy);
    }
    assert_true(decoded > 0); /* some damage lands in values, and those still decode */
}

/* --- the hand-written writer against msgpack-c, and the incremental request writer --- */

/* The request batch as msgpack-c's packer writes it, field by field (cmsg.h's layout). */
static size_t reference_requests(const cmsg_request_batch_t *b, msgpack_sbuffer *sb)
{
    msgpack_sbuffer_init(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 5);
    msgpack_pack_uint8(&pk, CMSG_VERSION);
    msgpack_pack_uint8(&pk, CMSG_REQUEST_BATCH);
    msgpack_pack_uint64(&pk, b->epoch);
    msgpack_pack_uint64(&pk, b->batch_id);
    msgpack_pack_array(&pk, b->n);
    for (size_t i = 0; i < b->n; i++) {
        const cmsg_request_t *q = &b->req[i];
        if (q->kind == CMSG_SCRAPE) {
            msgpack_pack_array(&pk, 3);
            msgpack_pack_uint32(&pk, q->id);
            msgpack_pack_uint8(&pk, CMSG_SCRAPE);
            msgpack_pack_bin(&pk, q->n_hashes * SHOAL_HASH_LEN);
            msgpack_pack_bin_body(&pk, q->hashes, q->n_hashes * SHOAL_HASH_LEN);
            continue;
        }
        const announce_t *a = &q->announce;
        msgpack_pack_array(&pk, 13);
        msgpack_pack_uint32(&pk, q->id);
        msgpack_pack_uint8(&pk, CMSG_ANNOUNCE);
        msgpack_pack_bin(&pk, SHOAL_HASH_LEN);
        msgpack_pack_bin_body(&pk, a->info_hash, SHOAL_HASH_LEN);
        msgpack_pack_bin(&pk, SHOAL_HASH_LEN);
        msgpack_pack_bin_body(&pk, a->peer_id, SHOAL_HASH_LEN);
        msgpack_pack_uint8(&pk, a->peer.family);
        size_t alen = a->peer.family == 4 ? 4 : 16;
        msgpack_pack_bin(&pk, alen);
        msgpack_pack_bin_body(&pk, a->peer.addr, alen);
        msgpack_pack_uint16(&pk, a->peer.port);
        msgpack_pack_uint8(&pk, (uint8_t)a->event);
        msgpack_pack_uint64(&pk, a->left);
        msgpack_pack_uint64(&pk, a->downloaded);
        msgpack_pack_uint64(&pk, a->uploaded);
        msgpack_pack_int32(&pk, a->numwant);
        msgpack_pack_uint32(&pk, a->key);
    }
    return sb->size;
}

/* Every integer form boundary, in every numeric field of a request, encodes as msgpack-c's
 * packer does; so does a reply batch with boundary counts (checked against its decoder). */
static void writer_matches_msgpack_c_at_every_boundary(void **state)
{
    (void)state;
    static const uint64_t u[] = {0,          1,           0x7f,           0x80,
                                 0xff,       0x100,       0xffff,         0x10000,
                                 0xffffffff, 0x100000000, UINT64_MAX - 1, UINT64_MAX};
    static const int32_t i32[] = {INT32_MIN, -32769, -32768, -129, -128, -33,   -32,   -1,
                                  0,         127,    128,    255,  256,  65535, 65536, INT32_MAX};
    for (size_t k = 0; k < sizeof(u) / sizeof(u[0]); k++) {
        memset(&qb, 0, sizeof(qb));
        qb.epoch = u[k];
        qb.batch_id = u[(k + 3) % 12];
        qb.n = 17; /* an array 16 header for the items */
        for (size_t i = 0; i < qb.n; i++) {
            if (i % 5 == 4) {
                fill_scrape(&qb.req[i], (uint32_t)u[(k + i) % 12], 1 + (i * 37) % SHOAL_SCRAPE_MAX,
                            i);
                continue;
            }
            (i % 2 ? fill_announce6 : fill_announce4)(&qb.req[i], (uint32_t)u[(k + i) % 12]);
            announce_t *a = &qb.req[i].announce;
            a->peer.port = (uint16_t)u[(k + i + 1) % 12];
            a->left = u[(k + i + 2) % 12];
            a->downloaded = u[(k + i + 5) % 12];
            a->uploaded = u[(k + i + 7) % 12];
            a->numwant = i32[(k + i) % 16];
            a->key = (uint32_t)u[(k + i + 9) % 12];
        }
        msgpack_sbuffer sb;
        size_t want = reference_requests(&qb, &sb);
        size_t n = encode_requests();
        assert_int_equal(n, want);
        assert_memory_equal(buf, sb.data, n);
        msgpack_sbuffer_destroy(&sb);
    }
}

/* cmsg_req_*: the same bytes as cmsg_encode_requests(), and every rule and short buffer. */
static void incremental_writer_matches_and_refuses(void **state)
{
    (void)state;
    static uint8_t out[CMSG_REQUEST_BATCH_BOUND];
    memset(&qb, 0, sizeof(qb));
    qb.epoch = 77;
    qb.batch_id = 0x123456789ULL;
    qb.n = 3;
    fill_announce4(&qb.req[0], 1);
    fill_scrape(&qb.req[1], 2, 200, 1);
    fill_announce6(&qb.req[2], 3);
    size_t n = encode_requests();
    cmsg_req_writer_t x;
    /* A buffer one byte short anywhere fails with -1, the exact size succeeds. */
    for (size_t cap = 0; cap <= n; cap++) {
        cmsg_req_begin(&x, out, cap, qb.epoch, qb.batch_id, 3);
        cmsg_req_announce(&x, 1, &qb.req[0].announce, qb.req[0].announce.numwant);
        uint8_t *h = cmsg_req_scrape(&x, 2, 200);
        if (h)
            memcpy(h, qb.req[1].hashes, 200 * SHOAL_HASH_LEN);
        else
            assert_true(cap < n);
        cmsg_req_announce(&x, 3, &qb.req[2].announce, qb.req[2].announce.numwant);
        ssize_t len = cmsg_req_end(&x);
        if (cap < n) {
            assert_int_equal(len, -1);
            continue;
        }
        assert_int_equal(len, (ssize_t)n);
        assert_memory_equal(out, buf, n);
    }
    /* Fewer or more requests than announced, bad counts and fields: -2. */
    cmsg_req_begin(&x, out, sizeof(out), 1, 1, 2);
    cmsg_req_announce(&x, 1, &qb.req[0].announce, -1);
    assert_int_equal(cmsg_req_end(&x), -2);
    cmsg_req_begin(&x, out, sizeof(out), 1, 1, 1);
    cmsg_req_announce(&x, 1, &qb.req[0].announce, -1);
    assert_null(cmsg_req_scrape(&x, 2, 1));
    assert_int_equal(cmsg_req_end(&x), -2);
    cmsg_req_begin(&x, out, sizeof(out), 1, 1, CMSG_BATCH_MAX + 1);
    assert_int_equal(cmsg_req_end(&x), -2);
    cmsg_req_begin(&x, out, sizeof(out), 1, 1, 1);
    assert_null(cmsg_req_scrape(&x, 1, 0));
    assert_int_equal(cmsg_req_end(&x), -2);
    cmsg_req_begin(&x, out, sizeof(out), 1, 1, 1);
    assert_null(cmsg_req_scrape(&x, 1, SHOAL_SCRAPE_MAX + 1));
    assert_int_equal(cmsg_req_end(&x), -2);
    announce_t bad = qb.req[0].announce;
    bad.peer.family = 5;
    cmsg_req_begin(&x, out, sizeof(out), 1, 1, 1);
    cmsg_req_announce(&x, 1, &bad, -1);
    assert_int_equal(cmsg_req_end(&x), -2);
    bad = qb.req[0].announce;
    bad.event = (announce_event_t)4;
    cmsg_req_begin(&x, out, sizeof(out), 1, 1, 1);
    cmsg_req_announce(&x, 1, &bad, -1);
    assert_int_equal(cmsg_req_end(&x), -2);
    /* A full batch of the largest scrapes fits the bound exactly as the batch encoder's does. */
    memset(&qb, 0, sizeof(qb));
    qb.n = CMSG_BATCH_MAX;
    for (size_t i = 0; i < qb.n; i++)
        fill_scrape(&qb.req[i], (uint32_t)i, SHOAL_SCRAPE_MAX, i);
    n = encode_requests();
    assert_true(n <= CMSG_REQUEST_BATCH_BOUND);
    cmsg_req_begin(&x, out, sizeof(out), 0, 0, CMSG_BATCH_MAX);
    for (size_t i = 0; i < qb.n; i++)
        memcpy(cmsg_req_scrape(&x, (uint32_t)i, SHOAL_SCRAPE_MAX), qb.req[i].hashes,
               SHOAL_SCRAPE_MAX * SHOAL_HASH_LEN);
    assert_int_equal(cmsg_req_end(&x), (ssize_t)n);
    assert_memory_equal(out, buf, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_request_batch_encodes_exactly),
        cmocka_unit_test(writer_matches_msgpack_c_at_every_boundary),
        cmocka_unit_test(incremental_writer_matches_and_refuses),
        cmocka_unit_test(announce4_request_encodes_exactly),
        cmocka_unit_test(announce4_request_decodes_exactly),
        cmocka_unit_test(scrape_request_points_into_input),
        cmocka_unit_test(reply_batch_encodes_exactly),
        cmocka_unit_test(reply_batch_decodes_exactly),
        cmocka_unit_test(scrape_reply_decodes_into_arena),
        cmocka_unit_test(scrape_reply_needs_room_in_arena),
        cmocka_unit_test(announce6_round_trips),
        cmocka_unit_test(scrapes_of_1_and_256_hashes_round_trip),
        cmocka_unit_test(full_batch_of_largest_scrapes_fits_bound),
        cmocka_unit_test(mixed_full_batch_round_trips),
        cmocka_unit_test(reply_shapes_round_trip),
        cmocka_unit_test(empty_error_and_empty_reply_batch_round_trip),
        cmocka_unit_test(full_batch_of_largest_replies_fits_bound),
        cmocka_unit_test(largest_announce_request_meets_its_bound),
        cmocka_unit_test(encoder_reports_every_short_buffer),
        cmocka_unit_test(encoder_refuses_invalid_requests),
        cmocka_unit_test(encoder_refuses_invalid_replies),
        cmocka_unit_test(every_prefix_of_a_request_batch_is_truncated),
        cmocka_unit_test(every_prefix_of_a_reply_batch_is_truncated),
        cmocka_unit_test(empty_input_is_truncated),
        cmocka_unit_test(trailing_bytes_are_rejected),
        cmocka_unit_test(wrong_versions_are_rejected),
        cmocka_unit_test(wrong_message_types_are_rejected),
        cmocka_unit_test(wrong_top_level_types_are_rejected),
        cmocka_unit_test(wrong_header_shapes_are_rejected),
        cmocka_unit_test(oversized_batches_are_rejected),
        cmocka_unit_test(longer_encodings_are_accepted),
        cmocka_unit_test(mutation_builders_are_valid_unmutated),
        cmocka_unit_test(wrong_typed_request_fields_are_rejected),
        cmocka_unit_test(wrong_typed_reply_fields_are_rejected),
        cmocka_unit_test(out_of_range_fields_are_rejected),
        cmocka_unit_test(announce_with_v4_family_and_v6_address_is_rejected),
        cmocka_unit_test(scrape_hash_counts_are_checked),
        cmocka_unit_test(scrape_reply_counts_are_checked),
        cmocka_unit_test(moved_and_error_replies_are_checked),
        cmocka_unit_test(wrong_request_shapes_are_rejected),
        cmocka_unit_test(strerror_names_every_error),
        cmocka_unit_test(lookup_request_encodes_and_decodes_exactly),
        cmocka_unit_test(lookup_reply_encodes_and_decodes_exactly),
        cmocka_unit_test(lookup_reply_shapes_round_trip),
        cmocka_unit_test(largest_lookup_reply_meets_its_bound),
        cmocka_unit_test(lookup_encoders_refuse_invalid_messages),
        cmocka_unit_test(every_prefix_of_a_lookup_is_truncated),
        cmocka_unit_test(lookups_and_batches_are_told_apart),
        cmocka_unit_test(lookup_fields_are_checked),
        cmocka_unit_test(lookup_moved_and_error_replies_are_checked),
        cmocka_unit_test(damaged_lookups_never_misdecode),
    };
    return cmocka_run_group_tests_name("cmsg", tests, NULL, NULL);
}
