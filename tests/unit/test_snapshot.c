/* SPDX-License-Identifier: MIT */
/* test_snapshot: the partition snapshot codec. Byte-exact vectors written out by hand (an empty
 * partition and a one-swarm snapshot with an IPv4 and an IPv6 peer), round trips (empty, one
 * swarm, thousands of swarms, mixed families in any order, every flag, extreme values), the
 * decoder's rejections (every proper prefix, wrong types and shapes, versions, ranges, owners,
 * peer records, flags, trailing bytes, forged counts and lengths), the encoder's state machine
 * and its buffer reuse. Malformed inputs are built with msgpack-c's own packer, independently of
 * the encoder under test.
 *
 * `test_snapshot --write-seeds DIR` writes the fuzzer's seed corpus (tests/fuzz/seeds/snapshot)
 * instead of running the tests. */
#include "snapshot.h"

#include <msgpack.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

/* --- the hand-written vectors --- */

/* begin(7, "n1", 3, 1000); swarm(01..14, downloaded 2, n4 1, n6 1); a seeder at 10.0.0.1:6881
 * aged 5 s; a completed peer at [2001:db8::1]:443 aged 0x01020304 s. */
static const uint8_t tiny[] = {
    0x96,                                           /* [6 fields */
    0x01,                                           /* version 1 */
    0x07,                                           /* partition 7 */
    0xa2, 'n',  '1',                                /* owner "n1" */
    0x03,                                           /* epoch 3 */
    0xcd, 0x03, 0xe8,                               /* wall_ms 1000 */
    0xdd, 0x00, 0x00, 0x00, 0x01,                   /* [1 swarm (array 32) */
    0x93,                                           /* [3 fields */
    0xc4, 0x14, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, /* info_hash bin 20 */
    0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, /* */
    0x0f, 0x10, 0x11, 0x12, 0x13, 0x14,             /* */
    0x02,                                           /* downloaded 2 */
    0xc6, 0x00, 0x00, 0x00, 0x22,                   /* peers bin 32, 11 + 23 bytes */
    0x01, 0x05, 0x00, 0x00, 0x00,                   /* seeder, age 5 (little-endian) */
    0x0a, 0x00, 0x00, 0x01, 0x1a, 0xe1,             /* 10.0.0.1:6881 */
    0x06, 0x04, 0x03, 0x02, 0x01,                   /* completed | v6, age 0x01020304 */
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, /* 2001:db8::1 */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, /* */
    0x01, 0xbb,                                     /* :443 */
};

/* begin(0, "a", 0, 0), no swarm. */
static const uint8_t empty_vec[] = {0x96, 0x01, 0x00, 0xa1, 'a',  0x00,
                                    0x00, 0xdd, 0x00, 0x00, 0x00, 0x00};

static const uint8_t tiny_hash[20] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10,
                                      11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
static const uint8_t tiny_c4[6] = {10, 0, 0, 1, 0x1a, 0xe1};
static const uint8_t tiny_c6[18] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,    0,
                                    0,    0,    0,    0,    0, 0, 1, 0x01, 0xbb};
/* The peers bin of tiny, for the malformed-input builder. */
#define TINY_PEERS_AT  44
#define TINY_PEERS_LEN 34

static uint8_t big[1 << 20]; /* inputs built by the tests */

/* --- helpers --- */

static int setup_enc(void **state)
{
    *state = snap_enc_new();
    return *state ? 0 : -1;
}

static int teardown_enc(void **state)
{
    snap_enc_t *enc = *state;
    snap_enc_destroy(&enc);
    return 0;
}

static snap_peer_t mkpeer(uint8_t family, bool seeder, bool completed, uint32_t age,
                          const uint8_t *compact)
{
    snap_peer_t p = {.family = family,
                     .seeder = seeder,
                     .completed = completed,
                     .age_s = age,
                     .compact = compact};
    return p;
}

static void encode_tiny(snap_enc_t *enc, const uint8_t **data, size_t *len)
{
    snap_peer_t p4 = mkpeer(4, true, false, 5, tiny_c4);
    snap_peer_t p6 = mkpeer(6, false, true, 0x01020304, tiny_c6);
    assert_int_equal(snap_enc_begin(enc, 7, "n1", 3, 1000), SNAP_OK);
    assert_int_equal(snap_enc_swarm(enc, tiny_hash, 2, 1, 1), SNAP_OK);
    assert_int_equal(snap_enc_peer(enc, &p4), SNAP_OK);
    assert_int_equal(snap_enc_peer(enc, &p6), SNAP_OK);
    assert_int_equal(snap_enc_finish(enc, data, len), SNAP_OK);
}

/* msgpack-c agrees that buf is exactly one msgpack array. */
static void assert_msgpack(const uint8_t *buf, size_t len)
{
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, (const char *)buf, len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, len);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(u.data.via.array.size, 6);
    msgpack_unpacked_destroy(&u);
}

/* A deterministic swarm population: swarm i has i % 9 peers; peer j's family, flags, age and
 * address follow from (i, j), so the reader can recompute what it should find. */
static void gen_hash(uint32_t i, uint8_t hash[20])
{
    for (int k = 0; k < 20; k++)
        hash[k] = (uint8_t)(i * 31 + (uint32_t)k * 7);
}

static uint32_t gen_npeers(uint32_t i)
{
    return i % 9;
}

static void gen_peer(uint32_t i, uint32_t j, snap_peer_t *p, uint8_t compact[18])
{
    p->family = (i + j) % 3 == 0 ? 6 : 4;
    p->seeder = (i + j) & 1;
    p->completed = (i * j) & 2;
    p->age_s = i * 1000003u + j * 17u;
    size_t n = p->family == 6 ? 18 : 6;
    for (size_t k = 0; k < n; k++)
        compact[k] = (uint8_t)(i ^ (j << 3) ^ (uint32_t)k * 13);
    p->compact = compact;
}

static void gen_counts(uint32_t i, uint32_t *n4, uint32_t *n6)
{
    snap_peer_t p;
    uint8_t c[18];
    *n4 = *n6 = 0;
    for (uint32_t j = 0; j < gen_npeers(i); j++) {
        gen_peer(i, j, &p, c);
        if (p.family == 6)
            (*n6)++;
        else
            (*n4)++;
    }
}

static void encode_gen(snap_enc_t *enc, uint32_t nswarms)
{
    uint8_t hash[20], c[18];
    snap_peer_t p;
    assert_int_equal(snap_enc_begin(enc, 4095, "node-b", 77, 1700000000123ULL), SNAP_OK);
    for (uint32_t i = 0; i < nswarms; i++) {
        uint32_t n4, n6;
        gen_hash(i, hash);
        gen_counts(i, &n4, &n6);
        assert_int_equal(snap_enc_swarm(enc, hash, i * 3, n4, n6), SNAP_OK);
        for (uint32_t j = 0; j < gen_npeers(i); j++) {
            gen_peer(i, j, &p, c);
            assert_int_equal(snap_enc_peer(enc, &p), SNAP_OK);
        }
    }
}

static void verify_gen(const uint8_t *buf, size_t len, uint32_t nswarms)
{
    snap_header_t h;
    snap_iter_t it;
    snap_swarm_t sw;
    uint8_t hash[20], c[18];
    snap_peer_t want, got;
    assert_int_equal(snap_check(buf, len, &h), SNAP_OK);
    assert_int_equal(h.partition, 4095);
    assert_string_equal(h.owner, "node-b");
    assert_int_equal(h.epoch, 77);
    assert_int_equal(h.wall_ms, 1700000000123ULL);
    assert_int_equal(h.swarms, nswarms);
    snap_iter_init(&it, buf, len);
    for (uint32_t i = 0; i < nswarms; i++) {
        uint32_t n4, n6;
        assert_int_equal(snap_iter_next(&it, &sw), SNAP_OK);
        gen_hash(i, hash);
        gen_counts(i, &n4, &n6);
        assert_memory_equal(sw.info_hash, hash, 20);
        assert_int_equal(sw.downloaded, i * 3);
        assert_int_equal(sw.n4, n4);
        assert_int_equal(sw.n6, n6);
        assert_int_equal(sw.peers_len, n4 * SNAP_PEER4_LEN + n6 * SNAP_PEER6_LEN);
        size_t off = 0;
        for (uint32_t j = 0; j < gen_npeers(i); j++) {
            gen_peer(i, j, &want, c);
            assert_true(snap_swarm_peer(&sw, &off, &got));
            assert_int_equal(got.family, want.family);
            assert_int_equal(got.seeder, want.seeder);
            assert_int_equal(got.completed, want.completed);
            assert_int_equal(got.age_s, want.age_s);
            assert_memory_equal(got.compact, c, want.family == 6 ? 18 : 6);
        }
        assert_false(snap_swarm_peer(&sw, &off, &got));
        assert_int_equal(off, sw.peers_len);
    }
    assert_int_equal(snap_iter_next(&it, &sw), SNAP_END);
}

/* --- a builder of malformed snapshots, on msgpack-c's packer --- */

/* The positions of tiny's values, in order. build() writes tiny's header with a count of 2,
 * then tiny's swarm twice; at one position of the header or the first swarm the test's emitter
 * writes something else instead. */
enum {
    F_TOP,
    F_VERSION,
    F_PARTITION,
    F_OWNER,
    F_EPOCH,
    F_WALL,
    F_SWARMS,
    F_SWARM,
    F_HASH,
    F_DOWNLOADED,
    F_PEERS,
    F_COUNT,
};

typedef void (*emit_fn)(msgpack_packer *pk);

static void raw(msgpack_packer *pk, const void *p, size_t n)
{
    pk->callback(pk->data, p, n);
}

static size_t build(int field, emit_fn emit)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (int f = 0; f < F_COUNT; f++) {
        if (f == field) {
            emit(&pk);
            continue;
        }
        switch (f) {
        case F_TOP:
            msgpack_pack_array(&pk, 6);
            break;
        case F_VERSION:
            msgpack_pack_uint8(&pk, 1);
            break;
        case F_PARTITION:
            msgpack_pack_uint32(&pk, 7);
            break;
        case F_OWNER:
            msgpack_pack_str_with_body(&pk, "n1", 2);
            break;
        case F_EPOCH:
            msgpack_pack_uint64(&pk, 3);
            break;
        case F_WALL:
            msgpack_pack_uint64(&pk, 1000);
            break;
        case F_SWARMS:
            msgpack_pack_array(&pk, 2);
            break;
        case F_SWARM:
            msgpack_pack_array(&pk, 3);
            break;
        case F_HASH:
            msgpack_pack_bin_with_body(&pk, tiny_hash, 20);
            break;
        case F_DOWNLOADED:
            msgpack_pack_uint32(&pk, 2);
            break;
        case F_PEERS:
            msgpack_pack_bin_with_body(&pk, tiny + TINY_PEERS_AT, TINY_PEERS_LEN);
            break;
        }
    }
    /* A second, valid swarm: the count check (swarms * the smallest swarm <= bytes left) must
     * not hide the error under test in the first one. */
    msgpack_pack_array(&pk, 3);
    msgpack_pack_bin_with_body(&pk, tiny_hash, 20);
    msgpack_pack_uint32(&pk, 2);
    msgpack_pack_bin_with_body(&pk, tiny + TINY_PEERS_AT, TINY_PEERS_LEN);
    assert_true(sb.size <= sizeof(big));
    memcpy(big, sb.data, sb.size);
    size_t n = sb.size;
    msgpack_sbuffer_destroy(&sb);
    return n;
}

static snap_err_t check_built(int field, emit_fn emit)
{
    snap_header_t h;
    return snap_check(big, build(field, emit), &h);
}

static void emit_nil(msgpack_packer *pk)
{
    msgpack_pack_nil(pk);
}
static void emit_true(msgpack_packer *pk)
{
    msgpack_pack_true(pk);
}
static void emit_double(msgpack_packer *pk)
{
    msgpack_pack_double(pk, 1.0);
}
static void emit_str1(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "1", 1);
}
static void emit_bin2(msgpack_packer *pk)
{
    msgpack_pack_bin_with_body(pk, "n1", 2);
}
static void emit_str20(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, tiny_hash, 20);
}
static void emit_map0(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 0);
}
static void emit_array0(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 0);
}
static void emit_never_used(msgpack_packer *pk)
{
    raw(pk, "\xc1", 1);
}
static void emit_ext(msgpack_packer *pk)
{
    msgpack_pack_ext_with_body(pk, "\x01", 1, 1);
}
static void emit_uint_1(msgpack_packer *pk)
{
    msgpack_pack_uint8(pk, 1);
}
static void emit_neg1(msgpack_packer *pk)
{
    msgpack_pack_int8(pk, -1);
}
static void emit_neg_big(msgpack_packer *pk)
{
    msgpack_pack_int64(pk, INT64_MIN);
}
static void emit_u64max(msgpack_packer *pk)
{
    msgpack_pack_uint64(pk, UINT64_MAX);
}
static void emit_2p32(msgpack_packer *pk)
{
    msgpack_pack_uint64(pk, (uint64_t)1 << 32);
}

/* --- vectors --- */

static void encodes_tiny_vector(void **state)
{
    const uint8_t *data;
    size_t len;
    encode_tiny(*state, &data, &len);
    assert_int_equal(len, sizeof(tiny));
    assert_memory_equal(data, tiny, sizeof(tiny));
}

static void encodes_empty_vector(void **state)
{
    const uint8_t *data;
    size_t len;
    assert_int_equal(snap_enc_begin(*state, 0, "a", 0, 0), SNAP_OK);
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_OK);
    assert_int_equal(len, sizeof(empty_vec));
    assert_memory_equal(data, empty_vec, sizeof(empty_vec));
}

static void decodes_tiny_vector(void **state)
{
    (void)state;
    snap_header_t h;
    snap_iter_t it;
    snap_swarm_t sw;
    snap_peer_t p;
    size_t off = 0;
    assert_int_equal(snap_check(tiny, sizeof(tiny), &h), SNAP_OK);
    assert_int_equal(h.partition, 7);
    assert_string_equal(h.owner, "n1");
    assert_int_equal(h.epoch, 3);
    assert_int_equal(h.wall_ms, 1000);
    assert_int_equal(h.swarms, 1);
    snap_iter_init(&it, tiny, sizeof(tiny));
    assert_int_equal(snap_iter_next(&it, &sw), SNAP_OK);
    assert_ptr_equal(sw.info_hash, tiny + 18);
    assert_ptr_equal(sw.peers, tiny + TINY_PEERS_AT);
    assert_int_equal(sw.peers_len, TINY_PEERS_LEN);
    assert_int_equal(sw.downloaded, 2);
    assert_int_equal(sw.n4, 1);
    assert_int_equal(sw.n6, 1);
    assert_true(snap_swarm_peer(&sw, &off, &p));
    assert_int_equal(p.family, 4);
    assert_true(p.seeder);
    assert_false(p.completed);
    assert_int_equal(p.age_s, 5);
    assert_ptr_equal(p.compact, tiny + TINY_PEERS_AT + 5);
    assert_true(snap_swarm_peer(&sw, &off, &p));
    assert_int_equal(p.family, 6);
    assert_false(p.seeder);
    assert_true(p.completed);
    assert_int_equal(p.age_s, 0x01020304);
    assert_memory_equal(p.compact, tiny_c6, 18);
    assert_false(snap_swarm_peer(&sw, &off, &p));
    assert_int_equal(snap_iter_next(&it, &sw), SNAP_END);
}

static void encoder_output_is_msgpack(void **state)
{
    const uint8_t *data;
    size_t len;
    encode_gen(*state, 50);
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_OK);
    assert_msgpack(data, len);
    assert_msgpack(tiny, sizeof(tiny));
}

/* --- round trips --- */

static void round_trips_empty_partition(void **state)
{
    const uint8_t *data;
    size_t len;
    snap_header_t h;
    snap_iter_t it;
    snap_swarm_t sw;
    assert_int_equal(snap_enc_begin(*state, 12, "gw-0", 9, 5), SNAP_OK);
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_OK);
    assert_int_equal(snap_check(data, len, &h), SNAP_OK);
    assert_int_equal(h.partition, 12);
    assert_string_equal(h.owner, "gw-0");
    assert_int_equal(h.epoch, 9);
    assert_int_equal(h.wall_ms, 5);
    assert_int_equal(h.swarms, 0);
    snap_iter_init(&it, data, len);
    assert_int_equal(snap_iter_next(&it, &sw), SNAP_END);
    assert_int_equal(snap_iter_next(&it, &sw), SNAP_END);
}

static void round_trips_one_swarm(void **state)
{
    const uint8_t *data;
    size_t len;
    encode_gen(*state, 2); /* swarm 0 has no peer, swarm 1 one */
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_OK);
    verify_gen(data, len, 2);
    encode_gen(*state, 1);
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_OK);
    verify_gen(data, len, 1);
}

static void round_trips_many_swarms(void **state)
{
    const uint8_t *data;
    size_t len;
    encode_gen(*state, 5000);
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_OK);
    assert_int_equal(snap_enc_swarms(*state), 5000);
    verify_gen(data, len, 5000);
}

static void round_trips_mixed_families_in_any_order(void **state)
{
    static const uint8_t h[20] = {0};
    uint8_t c[8][18];
    snap_peer_t in[8];
    const uint8_t *data;
    size_t len;
    static const uint8_t fam[8] = {6, 4, 4, 6, 6, 4, 6, 4};
    for (int i = 0; i < 8; i++) {
        memset(c[i], 0x40 + i, sizeof(c[i]));
        in[i] = mkpeer(fam[i], false, false, (uint32_t)i, c[i]);
    }
    assert_int_equal(snap_enc_begin(*state, 1, "x", 1, 1), SNAP_OK);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 4, 4), SNAP_OK);
    for (int i = 0; i < 8; i++)
        assert_int_equal(snap_enc_peer(*state, &in[i]), SNAP_OK);
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_OK);

    snap_header_t hd;
    snap_iter_t it;
    snap_swarm_t sw;
    snap_peer_t p;
    size_t off = 0;
    assert_int_equal(snap_check(data, len, &hd), SNAP_OK);
    snap_iter_init(&it, data, len);
    assert_int_equal(snap_iter_next(&it, &sw), SNAP_OK);
    assert_int_equal(sw.n4, 4);
    assert_int_equal(sw.n6, 4);
    for (int i = 0; i < 8; i++) {
        assert_true(snap_swarm_peer(&sw, &off, &p));
        assert_int_equal(p.family, fam[i]);
        assert_int_equal(p.age_s, i);
        assert_memory_equal(p.compact, c[i], fam[i] == 6 ? 18 : 6);
    }
    assert_false(snap_swarm_peer(&sw, &off, &p));
}

static void round_trips_every_flag(void **state)
{
    static const uint8_t h[20] = {0};
    static const uint8_t c[18] = {0};
    const uint8_t *data;
    size_t len;
    assert_int_equal(snap_enc_begin(*state, 1, "x", 1, 1), SNAP_OK);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 4, 4), SNAP_OK);
    for (int fam = 4; fam <= 6; fam += 2)
        for (int f = 0; f < 4; f++) {
            snap_peer_t p = mkpeer((uint8_t)fam, f & 1, f & 2, 0, c);
            assert_int_equal(snap_enc_peer(*state, &p), SNAP_OK);
        }
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_OK);

    snap_header_t hd;
    snap_iter_t it;
    snap_swarm_t sw;
    snap_peer_t p;
    size_t off = 0;
    assert_int_equal(snap_check(data, len, &hd), SNAP_OK);
    snap_iter_init(&it, data, len);
    assert_int_equal(snap_iter_next(&it, &sw), SNAP_OK);
    for (int fam = 4; fam <= 6; fam += 2)
        for (int f = 0; f < 4; f++) {
            assert_int_equal(sw.peers[off], f | (fam == 6 ? SNAP_FLAG_V6 : 0));
            assert_true(snap_swarm_peer(&sw, &off, &p));
            assert_int_equal(p.family, fam);
            assert_int_equal(p.seeder, (f & 1) != 0);
            assert_int_equal(p.completed, (f & 2) != 0);
        }
}

static void round_trips_extreme_values(void **state)
{
    static const uint8_t h[20] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t c[18] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    char owner[SNAP_OWNER_MAX + 1];
    memset(owner, 'o', SNAP_OWNER_MAX);
    owner[SNAP_OWNER_MAX] = '\0';
    const uint8_t *data;
    size_t len;
    snap_peer_t p4 = mkpeer(4, true, true, UINT32_MAX, c);
    snap_peer_t p6 = mkpeer(6, true, true, UINT32_MAX, c);
    assert_int_equal(snap_enc_begin(*state, 4095, owner, UINT64_MAX, UINT64_MAX), SNAP_OK);
    assert_int_equal(snap_enc_swarm(*state, h, UINT32_MAX, 1, 1), SNAP_OK);
    assert_int_equal(snap_enc_peer(*state, &p4), SNAP_OK);
    assert_int_equal(snap_enc_peer(*state, &p6), SNAP_OK);
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_OK);
    assert_msgpack(data, len);

    snap_header_t hd;
    snap_iter_t it;
    snap_swarm_t sw;
    snap_peer_t p;
    size_t off = 0;
    assert_int_equal(snap_check(data, len, &hd), SNAP_OK);
    assert_int_equal(hd.partition, 4095);
    assert_string_equal(hd.owner, owner);
    assert_true(hd.epoch == UINT64_MAX);
    assert_true(hd.wall_ms == UINT64_MAX);
    snap_iter_init(&it, data, len);
    assert_int_equal(snap_iter_next(&it, &sw), SNAP_OK);
    assert_int_equal(sw.downloaded, UINT32_MAX);
    assert_true(snap_swarm_peer(&sw, &off, &p));
    assert_int_equal(p.age_s, UINT32_MAX);
    assert_true(snap_swarm_peer(&sw, &off, &p));
    assert_int_equal(p.age_s, UINT32_MAX);
    assert_memory_equal(p.compact, c, 18);
}

/* tiny's content with integers in other formats that hold them, and bins, strs and arrays in
 * their longer forms. */
static const uint8_t long_forms[] = {
    0xdc, 0x00, 0x06,                                                 /* array 16 */
    0xcf, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,             /* version as uint 64 */
    0xd1, 0x0f, 0xff,                                                 /* partition 4095 as int 16 */
    0xdb, 0x00, 0x00, 0x00, 0x02, 'n',  '1',                          /* owner as str 32 */
    0xd3, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,             /* epoch as int 64 */
    0xd0, 0x7f,                                                       /* wall_ms 127 as int 8 */
    0x91,                                                             /* fixarray of swarms */
    0xdd, 0x00, 0x00, 0x00, 0x03,                                     /* swarm as array 32 */
    0xc5, 0x00, 0x14,                                                 /* hash as bin 16 */
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,       /* */
    0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14,       /* */
    0xce, 0x00, 0x00, 0x00, 0x02,                                     /* downloaded as uint 32 */
    0xc4, 0x22,                                                       /* peers as bin 8 */
    0x01, 0x05, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x01, 0x1a, 0xe1, /* tiny's records */
    0x06, 0x04, 0x03, 0x02, 0x01, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, /* */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x01, 0xbb, /* */
};

static void accepts_any_integer_and_length_format(void **state)
{
    (void)state;
    snap_header_t h;
    snap_iter_t it;
    snap_swarm_t sw;
    assert_int_equal(snap_check(long_forms, sizeof(long_forms), &h), SNAP_OK);
    assert_int_equal(h.partition, 4095);
    assert_string_equal(h.owner, "n1");
    assert_int_equal(h.epoch, 3);
    assert_int_equal(h.wall_ms, 127);
    assert_int_equal(h.swarms, 1);
    snap_iter_init(&it, long_forms, sizeof(long_forms));
    assert_int_equal(snap_iter_next(&it, &sw), SNAP_OK);
    assert_memory_equal(sw.info_hash, tiny_hash, 20);
    assert_int_equal(sw.downloaded, 2);
    assert_int_equal(sw.n4, 1);
    assert_int_equal(sw.n6, 1);
    assert_int_equal(sw.peers_len, TINY_PEERS_LEN);
    assert_memory_equal(sw.peers, tiny + TINY_PEERS_AT, TINY_PEERS_LEN);
    assert_int_equal(snap_iter_next(&it, &sw), SNAP_END);
}

/* --- decoder rejections --- */

static void rejects_every_proper_prefix(void **state)
{
    const uint8_t *data;
    size_t len;
    snap_header_t h;
    encode_gen(*state, 12);
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_OK);
    for (size_t n = 0; n < len; n++) {
        /* a copy of exactly n bytes, so ASan sees any over-read */
        uint8_t *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, data, n);
        assert_int_equal(snap_check(copy, n, &h), SNAP_ERR_TRUNCATED);
        free(copy);
    }
    for (size_t n = 0; n < sizeof(tiny); n++)
        assert_int_equal(snap_check(tiny, n, &h), SNAP_ERR_TRUNCATED);
}

static void rejects_empty_input(void **state)
{
    (void)state;
    snap_header_t h;
    assert_int_equal(snap_check(NULL, 0, &h), SNAP_ERR_TRUNCATED);
}

static void rejects_wrong_type_in_every_field(void **state)
{
    (void)state;
    static const struct {
        int field;
        emit_fn emit;
    } cases[] = {
        {F_TOP, emit_nil},          {F_TOP, emit_map0},         {F_TOP, emit_never_used},
        {F_VERSION, emit_nil},      {F_VERSION, emit_str1},     {F_VERSION, emit_double},
        {F_VERSION, emit_true},     {F_PARTITION, emit_nil},    {F_PARTITION, emit_str1},
        {F_PARTITION, emit_double}, {F_OWNER, emit_nil},        {F_OWNER, emit_bin2},
        {F_OWNER, emit_uint_1},     {F_EPOCH, emit_nil},        {F_EPOCH, emit_str1},
        {F_EPOCH, emit_ext},        {F_WALL, emit_nil},         {F_WALL, emit_double},
        {F_SWARMS, emit_nil},       {F_SWARMS, emit_map0},      {F_SWARM, emit_nil},
        {F_SWARM, emit_bin2},       {F_HASH, emit_nil},         {F_HASH, emit_str20},
        {F_HASH, emit_array0},      {F_DOWNLOADED, emit_nil},   {F_DOWNLOADED, emit_str1},
        {F_DOWNLOADED, emit_true},  {F_PEERS, emit_nil},        {F_PEERS, emit_array0},
        {F_PEERS, emit_str1},       {F_PEERS, emit_never_used},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snap_err_t e = check_built(cases[i].field, cases[i].emit);
        if (e != SNAP_ERR_TYPE)
            fail_msg("case %zu (field %d): %s", i, cases[i].field, snap_strerror(e));
    }
}

static void emit_top5(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 5);
}
static void emit_top7(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 7);
}
static void emit_swarm2(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 2);
}
static void emit_swarm4(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 4);
}

static void rejects_wrong_field_counts(void **state)
{
    (void)state;
    assert_int_equal(check_built(F_TOP, emit_array0), SNAP_ERR_TYPE);
    assert_int_equal(check_built(F_TOP, emit_top5), SNAP_ERR_TYPE);
    assert_int_equal(check_built(F_TOP, emit_top7), SNAP_ERR_TYPE);
    assert_int_equal(check_built(F_SWARM, emit_array0), SNAP_ERR_TYPE);
    assert_int_equal(check_built(F_SWARM, emit_swarm2), SNAP_ERR_TYPE);
    assert_int_equal(check_built(F_SWARM, emit_swarm4), SNAP_ERR_TYPE);
}

static void emit_v0(msgpack_packer *pk)
{
    msgpack_pack_uint8(pk, 0);
}
static void emit_v2(msgpack_packer *pk)
{
    msgpack_pack_uint8(pk, 2);
}

static void rejects_other_versions(void **state)
{
    (void)state;
    assert_int_equal(check_built(F_VERSION, emit_v0), SNAP_ERR_VERSION);
    assert_int_equal(check_built(F_VERSION, emit_v2), SNAP_ERR_VERSION);
    assert_int_equal(check_built(F_VERSION, emit_neg1), SNAP_ERR_VERSION);
    assert_int_equal(check_built(F_VERSION, emit_neg_big), SNAP_ERR_VERSION);
    assert_int_equal(check_built(F_VERSION, emit_u64max), SNAP_ERR_VERSION);
}

/* A later version may have another shape: the version is read before the field count. */
static void rejects_other_version_before_shape(void **state)
{
    (void)state;
    static const uint8_t v2[] = {0x92, 0x02, 0xc0};
    snap_header_t h;
    assert_int_equal(snap_check(v2, sizeof(v2), &h), SNAP_ERR_VERSION);
}

static void emit_p4095(msgpack_packer *pk)
{
    msgpack_pack_uint16(pk, 4095);
}
static void emit_p4096(msgpack_packer *pk)
{
    msgpack_pack_uint16(pk, 4096);
}
static void emit_u32max(msgpack_packer *pk)
{
    msgpack_pack_uint32(pk, UINT32_MAX);
}

static void rejects_partition_out_of_range(void **state)
{
    (void)state;
    assert_int_equal(check_built(F_PARTITION, emit_p4095), SNAP_OK);
    assert_int_equal(check_built(F_PARTITION, emit_p4096), SNAP_ERR_RANGE);
    assert_int_equal(check_built(F_PARTITION, emit_u32max), SNAP_ERR_RANGE);
    assert_int_equal(check_built(F_PARTITION, emit_2p32), SNAP_ERR_RANGE);
    assert_int_equal(check_built(F_PARTITION, emit_neg1), SNAP_ERR_RANGE);
}

static void emit_owner_empty(msgpack_packer *pk)
{
    msgpack_pack_str(pk, 0);
}
static void emit_owner_63(msgpack_packer *pk)
{
    char s[63];
    memset(s, 'q', sizeof(s));
    msgpack_pack_str_with_body(pk, s, sizeof(s));
}
static void emit_owner_64(msgpack_packer *pk)
{
    char s[64];
    memset(s, 'q', sizeof(s));
    msgpack_pack_str_with_body(pk, s, sizeof(s));
}
static void emit_owner_nul(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "a\0b", 3);
}
static void emit_owner_huge(msgpack_packer *pk)
{
    raw(pk, "\xdb\xff\xff\xff\xff", 5);
}

static void accepts_owner_of_max_length(void **state)
{
    (void)state;
    snap_header_t h;
    size_t n = build(F_OWNER, emit_owner_63);
    assert_int_equal(snap_check(big, n, &h), SNAP_OK);
    assert_int_equal(strlen(h.owner), 63);
}

static void rejects_owner_empty(void **state)
{
    (void)state;
    assert_int_equal(check_built(F_OWNER, emit_owner_empty), SNAP_ERR_RANGE);
}

static void rejects_owner_too_long(void **state)
{
    (void)state;
    assert_int_equal(check_built(F_OWNER, emit_owner_64), SNAP_ERR_RANGE);
    assert_int_equal(check_built(F_OWNER, emit_owner_huge), SNAP_ERR_RANGE);
}

static void rejects_owner_with_nul(void **state)
{
    (void)state;
    assert_int_equal(check_built(F_OWNER, emit_owner_nul), SNAP_ERR_RANGE);
}

static void rejects_negative_epoch_and_wall_clock(void **state)
{
    (void)state;
    assert_int_equal(check_built(F_EPOCH, emit_neg1), SNAP_ERR_RANGE);
    assert_int_equal(check_built(F_EPOCH, emit_neg_big), SNAP_ERR_RANGE);
    assert_int_equal(check_built(F_WALL, emit_neg1), SNAP_ERR_RANGE);
    assert_int_equal(check_built(F_EPOCH, emit_u64max), SNAP_OK);
}

static void rejects_downloaded_out_of_range(void **state)
{
    (void)state;
    assert_int_equal(check_built(F_DOWNLOADED, emit_u32max), SNAP_OK);
    assert_int_equal(check_built(F_DOWNLOADED, emit_2p32), SNAP_ERR_RANGE);
    assert_int_equal(check_built(F_DOWNLOADED, emit_neg1), SNAP_ERR_RANGE);
}

static void emit_hash19(msgpack_packer *pk)
{
    msgpack_pack_bin_with_body(pk, tiny_hash, 19);
}
static void emit_hash21(msgpack_packer *pk)
{
    msgpack_pack_bin(pk, 21);
    msgpack_pack_bin_body(pk, tiny_hash, 20);
    msgpack_pack_bin_body(pk, "", 1);
}

static void rejects_hash_of_wrong_length(void **state)
{
    (void)state;
    assert_int_equal(check_built(F_HASH, emit_hash19), SNAP_ERR_TYPE);
    assert_int_equal(check_built(F_HASH, emit_hash21), SNAP_ERR_TYPE);
    assert_int_equal(check_built(F_HASH, emit_bin2), SNAP_ERR_TYPE);
}

static void emit_peers_v4_short(msgpack_packer *pk)
{
    msgpack_pack_bin_with_body(pk, tiny + TINY_PEERS_AT, SNAP_PEER4_LEN - 1);
}
static void emit_peers_v6_short(msgpack_packer *pk)
{
    /* the v6 record of tiny, one byte short */
    msgpack_pack_bin_with_body(pk, tiny + TINY_PEERS_AT + SNAP_PEER4_LEN, SNAP_PEER6_LEN - 1);
}
static void emit_peers_tail(msgpack_packer *pk)
{
    msgpack_pack_bin(pk, TINY_PEERS_LEN + 3);
    msgpack_pack_bin_body(pk, tiny + TINY_PEERS_AT, TINY_PEERS_LEN);
    msgpack_pack_bin_body(pk, "\x00\x00\x00", 3);
}
static void emit_peers_flag_only(msgpack_packer *pk)
{
    msgpack_pack_bin_with_body(pk, "\x04", 1);
}
static void emit_peers_empty(msgpack_packer *pk)
{
    msgpack_pack_bin(pk, 0);
}

static void rejects_peers_not_whole_records(void **state)
{
    (void)state;
    assert_int_equal(check_built(F_PEERS, emit_peers_v4_short), SNAP_ERR_PEERS);
    assert_int_equal(check_built(F_PEERS, emit_peers_v6_short), SNAP_ERR_PEERS);
    assert_int_equal(check_built(F_PEERS, emit_peers_tail), SNAP_ERR_PEERS);
    assert_int_equal(check_built(F_PEERS, emit_peers_flag_only), SNAP_ERR_PEERS);
}

static void accepts_swarm_without_peers(void **state)
{
    (void)state;
    snap_header_t h;
    snap_iter_t it;
    snap_swarm_t sw;
    snap_peer_t p;
    size_t off = 0;
    size_t n = build(F_PEERS, emit_peers_empty);
    assert_int_equal(snap_check(big, n, &h), SNAP_OK);
    snap_iter_init(&it, big, n);
    assert_int_equal(snap_iter_next(&it, &sw), SNAP_OK);
    assert_int_equal(sw.peers_len, 0);
    assert_int_equal(sw.n4 + sw.n6, 0);
    assert_false(snap_swarm_peer(&sw, &off, &p));
    assert_int_equal(off, 0);
}

static void rejects_unknown_flag_bits(void **state)
{
    (void)state;
    uint8_t bad[sizeof(tiny)];
    snap_header_t h;
    for (int bit = 3; bit < 8; bit++) {
        for (size_t rec = 0; rec < 2; rec++) {
            memcpy(bad, tiny, sizeof(tiny));
            bad[TINY_PEERS_AT + rec * SNAP_PEER4_LEN] |= (uint8_t)(1u << bit);
            assert_int_equal(snap_check(bad, sizeof(bad), &h), SNAP_ERR_PEERS);
        }
    }
}

static void rejects_trailing_bytes(void **state)
{
    (void)state;
    snap_header_t h;
    memcpy(big, tiny, sizeof(tiny));
    big[sizeof(tiny)] = 0xc0;
    assert_int_equal(snap_check(big, sizeof(tiny) + 1, &h), SNAP_ERR_TRAILING);
    memcpy(big, empty_vec, sizeof(empty_vec));
    big[sizeof(empty_vec)] = 0x00;
    assert_int_equal(snap_check(big, sizeof(empty_vec) + 1, &h), SNAP_ERR_TRAILING);
}

/* tiny with the 4 bytes at off (a swarm count or a bin length) replaced by v. */
static snap_err_t check_tiny_with(size_t off, uint32_t v)
{
    uint8_t bad[sizeof(tiny)];
    snap_header_t h;
    memcpy(bad, tiny, sizeof(tiny));
    bad[off] = (uint8_t)(v >> 24);
    bad[off + 1] = (uint8_t)(v >> 16);
    bad[off + 2] = (uint8_t)(v >> 8);
    bad[off + 3] = (uint8_t)v;
    return snap_check(bad, sizeof(bad), &h);
}

static void emit_hash_huge(msgpack_packer *pk)
{
    raw(pk, "\xc6\xff\xff\xff\xff", 5);
}

static void rejects_counts_the_input_cannot_hold(void **state)
{
    (void)state;
    const size_t swarms_at = 11, peers_len_at = TINY_PEERS_AT - 4;
    assert_int_equal(check_tiny_with(swarms_at, UINT32_MAX), SNAP_ERR_TRUNCATED);
    assert_int_equal(check_tiny_with(swarms_at, 2), SNAP_ERR_TRUNCATED);
    assert_int_equal(check_tiny_with(peers_len_at, UINT32_MAX), SNAP_ERR_TRUNCATED);
    assert_int_equal(check_tiny_with(peers_len_at, TINY_PEERS_LEN + 1), SNAP_ERR_TRUNCATED);
    /* A hash's length is checked against 20 before against the input. */
    assert_int_equal(check_built(F_HASH, emit_hash_huge), SNAP_ERR_TYPE);
}

static void leaves_header_untouched_on_error(void **state)
{
    (void)state;
    snap_header_t h;
    memset(&h, 0x5a, sizeof(h));
    snap_header_t before = h;
    assert_int_equal(snap_check(tiny, sizeof(tiny) - 1, &h), SNAP_ERR_TRUNCATED);
    assert_memory_equal(&h, &before, sizeof(h));
}

/* --- encoder state --- */

static void new_encoder_refuses_all_but_begin(void **state)
{
    static const uint8_t h[20] = {0};
    static const uint8_t c[6] = {0};
    snap_peer_t p = mkpeer(4, false, false, 0, c);
    const uint8_t *data;
    size_t len;
    assert_int_equal(snap_enc_peer(*state, &p), SNAP_ERR_STATE);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 0, 0), SNAP_ERR_STATE);
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_ERR_STATE);
    assert_int_equal(snap_enc_swarms(*state), 0);
    assert_int_equal(snap_enc_peers(*state), 0);
}

static void begin_rejects_bad_partition_and_owner(void **state)
{
    char long_owner[SNAP_OWNER_MAX + 2];
    memset(long_owner, 'z', SNAP_OWNER_MAX + 1);
    long_owner[SNAP_OWNER_MAX + 1] = '\0';
    assert_int_equal(snap_enc_begin(*state, 4096, "a", 0, 0), SNAP_ERR_RANGE);
    assert_int_equal(snap_enc_begin(*state, UINT32_MAX, "a", 0, 0), SNAP_ERR_RANGE);
    assert_int_equal(snap_enc_begin(*state, 0, "", 0, 0), SNAP_ERR_RANGE);
    assert_int_equal(snap_enc_begin(*state, 0, NULL, 0, 0), SNAP_ERR_RANGE);
    assert_int_equal(snap_enc_begin(*state, 0, long_owner, 0, 0), SNAP_ERR_RANGE);
    long_owner[SNAP_OWNER_MAX] = '\0';
    assert_int_equal(snap_enc_begin(*state, 0, long_owner, 0, 0), SNAP_OK);
}

static void failed_begin_leaves_encoder_refusing(void **state)
{
    static const uint8_t h[20] = {0};
    const uint8_t *data;
    size_t len;
    assert_int_equal(snap_enc_begin(*state, 4096, "a", 0, 0), SNAP_ERR_RANGE);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 0, 0), SNAP_ERR_STATE);
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_ERR_STATE);
}

static void rejects_peer_before_swarm(void **state)
{
    static const uint8_t c[18] = {0};
    snap_peer_t p4 = mkpeer(4, false, false, 0, c);
    snap_peer_t p6 = mkpeer(6, false, false, 0, c);
    assert_int_equal(snap_enc_begin(*state, 0, "a", 0, 0), SNAP_OK);
    assert_int_equal(snap_enc_peer(*state, &p4), SNAP_ERR_STATE);
    assert_int_equal(snap_enc_begin(*state, 0, "a", 0, 0), SNAP_OK);
    assert_int_equal(snap_enc_peer(*state, &p6), SNAP_ERR_STATE);
}

static void rejects_too_many_ipv4_peers(void **state)
{
    static const uint8_t h[20] = {0};
    static const uint8_t c[18] = {0};
    snap_peer_t p4 = mkpeer(4, false, false, 0, c);
    assert_int_equal(snap_enc_begin(*state, 0, "a", 0, 0), SNAP_OK);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 1, 5), SNAP_OK);
    assert_int_equal(snap_enc_peer(*state, &p4), SNAP_OK);
    assert_int_equal(snap_enc_peer(*state, &p4), SNAP_ERR_STATE);
    assert_int_equal(snap_enc_peers(*state), 1);
}

static void rejects_too_many_ipv6_peers(void **state)
{
    static const uint8_t h[20] = {0};
    static const uint8_t c[18] = {0};
    snap_peer_t p6 = mkpeer(6, false, false, 0, c);
    assert_int_equal(snap_enc_begin(*state, 0, "a", 0, 0), SNAP_OK);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 5, 0), SNAP_OK);
    assert_int_equal(snap_enc_peer(*state, &p6), SNAP_ERR_STATE);
}

static void rejects_peer_of_unknown_family(void **state)
{
    static const uint8_t h[20] = {0};
    static const uint8_t c[18] = {0};
    snap_peer_t p = mkpeer(5, false, false, 0, c);
    assert_int_equal(snap_enc_begin(*state, 0, "a", 0, 0), SNAP_OK);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 3, 3), SNAP_OK);
    assert_int_equal(snap_enc_peer(*state, &p), SNAP_ERR_STATE);
    p.family = 0;
    assert_int_equal(snap_enc_begin(*state, 0, "a", 0, 0), SNAP_OK);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 3, 3), SNAP_OK);
    assert_int_equal(snap_enc_peer(*state, &p), SNAP_ERR_STATE);
}

static void rejects_swarm_before_previous_is_complete(void **state)
{
    static const uint8_t h[20] = {0};
    assert_int_equal(snap_enc_begin(*state, 0, "a", 0, 0), SNAP_OK);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 0, 1), SNAP_OK);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 0, 0), SNAP_ERR_STATE);
}

static void rejects_finish_with_incomplete_swarm(void **state)
{
    static const uint8_t h[20] = {0};
    static const uint8_t c[18] = {0};
    snap_peer_t p4 = mkpeer(4, false, false, 0, c);
    const uint8_t *data;
    size_t len;
    assert_int_equal(snap_enc_begin(*state, 0, "a", 0, 0), SNAP_OK);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 2, 0), SNAP_OK);
    assert_int_equal(snap_enc_peer(*state, &p4), SNAP_OK);
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_ERR_STATE);
}

static void refuses_everything_after_error_until_begin(void **state)
{
    static const uint8_t h[20] = {0};
    static const uint8_t c[18] = {0};
    snap_peer_t p4 = mkpeer(4, false, false, 0, c);
    const uint8_t *data;
    size_t len;
    snap_header_t hd;
    assert_int_equal(snap_enc_begin(*state, 0, "a", 0, 0), SNAP_OK);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 1, 0), SNAP_OK);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 0, 0), SNAP_ERR_STATE);
    /* The open swarm's expected peer is refused too: the encoder is failed, not just busy. */
    assert_int_equal(snap_enc_peer(*state, &p4), SNAP_ERR_STATE);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 0, 0), SNAP_ERR_STATE);
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_ERR_STATE);
    assert_int_equal(snap_enc_begin(*state, 0, "a", 0, 0), SNAP_OK);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 1, 0), SNAP_OK);
    assert_int_equal(snap_enc_peer(*state, &p4), SNAP_OK);
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_OK);
    assert_int_equal(snap_check(data, len, &hd), SNAP_OK);
    assert_int_equal(hd.swarms, 1);
}

static void refuses_swarm_after_finish(void **state)
{
    static const uint8_t h[20] = {0};
    const uint8_t *data;
    size_t len;
    assert_int_equal(snap_enc_begin(*state, 0, "a", 0, 0), SNAP_OK);
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_OK);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 0, 0), SNAP_ERR_STATE);
}

static void swarm_too_big_for_a_bin_is_nomem(void **state)
{
    static const uint8_t h[20] = {0};
    assert_int_equal(snap_enc_begin(*state, 0, "a", 0, 0), SNAP_OK);
    /* 23 * (2^32 - 1) bytes cannot be one msgpack bin: refused before any allocation. */
    assert_int_equal(snap_enc_swarm(*state, h, 0, 0, UINT32_MAX), SNAP_ERR_NOMEM);
    assert_int_equal(snap_enc_swarm(*state, h, 0, 0, 0), SNAP_ERR_STATE);
}

static void counts_swarms_and_peers_since_begin(void **state)
{
    const uint8_t *data;
    size_t len;
    encode_gen(*state, 20); /* 0 + 1 + ... + 8, twice, then 0 and 1 */
    assert_int_equal(snap_enc_swarms(*state), 20);
    assert_int_equal(snap_enc_peers(*state), 2 * 36 + 1);
    assert_int_equal(snap_enc_finish(*state, &data, &len), SNAP_OK);
    assert_int_equal(snap_enc_swarms(*state), 20);
    assert_int_equal(snap_enc_begin(*state, 0, "a", 0, 0), SNAP_OK);
    assert_int_equal(snap_enc_swarms(*state), 0);
    assert_int_equal(snap_enc_peers(*state), 0);
}

static void reuses_buffer_across_begin(void **state)
{
    const uint8_t *data1, *data2;
    size_t len1, len2;
    encode_gen(*state, 3000);
    assert_int_equal(snap_enc_finish(*state, &data1, &len1), SNAP_OK);
    encode_tiny(*state, &data2, &len2);
    assert_ptr_equal(data2, data1); /* the big buffer was kept: no reallocation */
    assert_int_equal(len2, sizeof(tiny));
    assert_memory_equal(data2, tiny, sizeof(tiny));
    encode_gen(*state, 3000);
    assert_int_equal(snap_enc_finish(*state, &data2, &len2), SNAP_OK);
    assert_ptr_equal(data2, data1);
    assert_int_equal(len2, len1);
    verify_gen(data2, len2, 3000);
}

static void destroy_is_null_safe(void **state)
{
    (void)state;
    snap_enc_t *enc = snap_enc_new();
    assert_non_null(enc);
    snap_enc_destroy(&enc);
    assert_null(enc);
    snap_enc_destroy(&enc);
    snap_enc_destroy(NULL);
}

static void strerror_names_every_code(void **state)
{
    (void)state;
    for (int e = SNAP_OK; e <= SNAP_ERR_STATE; e++) {
        const char *s = snap_strerror((snap_err_t)e);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
        assert_string_not_equal(s, "unknown error");
        for (int f = SNAP_OK; f < e; f++)
            assert_string_not_equal(s, snap_strerror((snap_err_t)f));
    }
    assert_string_equal(snap_strerror((snap_err_t)99), "unknown error");
}

/* --- the fuzzer's seeds --- */

static int write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

/* Run outside cmocka, so its checks are plain ones. */
static int write_seeds(const char *dir)
{
    snap_enc_t *enc = snap_enc_new();
    const uint8_t *data;
    size_t len;
    uint8_t buf[sizeof(tiny) + 1];
    int rc = 0;
    if (!enc)
        return 1;
    rc |= write_file(dir, "tiny", tiny, sizeof(tiny));
    rc |= write_file(dir, "empty", empty_vec, sizeof(empty_vec));
    rc |= write_file(dir, "long_forms", long_forms, sizeof(long_forms));
    rc |= write_file(dir, "truncated", tiny, sizeof(tiny) - 7);
    memcpy(buf, tiny, sizeof(tiny));
    buf[sizeof(tiny)] = 0x00;
    rc |= write_file(dir, "trailing", buf, sizeof(tiny) + 1);
    memcpy(buf, tiny, sizeof(tiny));
    buf[TINY_PEERS_AT] |= 0x80;
    rc |= write_file(dir, "bad_flags", buf, sizeof(tiny));
    memcpy(buf, tiny, sizeof(tiny));
    memcpy(buf + 11, "\xff\xff\xff\xff", 4);
    rc |= write_file(dir, "huge_count", buf, sizeof(tiny));
    uint8_t hash[20], c[18];
    snap_peer_t p;
    for (uint32_t n = 1; n <= 40; n *= 40) {
        if (snap_enc_begin(enc, 4095, "node-b", 77, 1700000000123ULL) != SNAP_OK)
            rc = -1;
        for (uint32_t i = 0; i < n; i++) {
            uint32_t n4 = 0, n6 = 0;
            gen_hash(i + 1, hash);
            for (uint32_t j = 0; j < gen_npeers(i + 1); j++) {
                gen_peer(i + 1, j, &p, c);
                if (p.family == 6)
                    n6++;
                else
                    n4++;
            }
            if (snap_enc_swarm(enc, hash, i, n4, n6) != SNAP_OK)
                rc = -1;
            for (uint32_t j = 0; j < gen_npeers(i + 1); j++) {
                gen_peer(i + 1, j, &p, c);
                if (snap_enc_peer(enc, &p) != SNAP_OK)
                    rc = -1;
            }
        }
        if (snap_enc_finish(enc, &data, &len) != SNAP_OK)
            rc = -1;
        else
            rc |= write_file(dir, n == 1 ? "one_swarm" : "swarms40", data, len);
    }
    snap_enc_destroy(&enc);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
        return write_seeds(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(encodes_tiny_vector, setup_enc, teardown_enc),
        cmocka_unit_test_setup_teardown(encodes_empty_vector, setup_enc, teardown_enc),
        cmocka_unit_test(decodes_tiny_vector),
        cmocka_unit_test_setup_teardown(encoder_output_is_msgpack, setup_enc, teardown_enc),
        cmocka_unit_test_setup_teardown(round_trips_empty_partition, setup_enc, teardown_enc),
        cmocka_unit_test_setup_teardown(round_trips_one_swarm, setup_enc, teardown_enc),
        cmocka_unit_test_setup_teardown(round_trips_many_swarms, setup_enc, teardown_enc),
        cmocka_unit_test_setup_teardown(round_trips_mixed_families_in_any_order, setup_enc,
                                        teardown_enc),
        cmocka_unit_test_setup_teardown(round_trips_every_flag, setup_enc, teardown_enc),
        cmocka_unit_test_setup_teardown(round_trips_extreme_values, setup_enc, teardown_enc),
        cmocka_unit_test(accepts_any_integer_and_length_format),
        cmocka_unit_test_setup_teardown(rejects_every_proper_prefix, setup_enc, teardown_enc),
        cmocka_unit_test(rejects_empty_input),
        cmocka_unit_test(rejects_wrong_type_in_every_field),
        cmocka_unit_test(rejects_wrong_field_counts),
        cmocka_unit_test(rejects_other_versions),
        cmocka_unit_test(rejects_other_version_before_shape),
        cmocka_unit_test(rejects_partition_out_of_range),
        cmocka_unit_test(accepts_owner_of_max_length),
        cmocka_unit_test(rejects_owner_empty),
        cmocka_unit_test(rejects_owner_too_long),
        cmocka_unit_test(rejects_owner_with_nul),
        cmocka_unit_test(rejects_negative_epoch_and_wall_clock),
        cmocka_unit_test(rejects_downloaded_out_of_range),
        cmocka_unit_test(rejects_hash_of_wrong_length),
        cmocka_unit_test(rejects_peers_not_whole_records),
        cmocka_unit_test(accepts_swarm_without_peers),
        cmocka_unit_test(rejects_unknown_flag_bits),
        cmocka_unit_test(rejects_trailing_bytes),
        cmocka_unit_test(rejects_counts_the_input_cannot_hold),
        cmocka_unit_test(leaves_header_untouched_on_error),
        cmocka_unit_test_setup_teardown(new_encoder_refuses_all_but_begin, setup_enc, teardown_enc),
        cmocka_unit_test_setup_teardown(begin_rejects_bad_partition_and_owner, setup_enc,
                                        teardown_enc),
        cmocka_unit_test_setup_teardown(failed_begin_leaves_encoder_refusing, setup_enc,
                                        teardown_enc),
        cmocka_unit_test_setup_teardown(rejects_peer_before_swarm, setup_enc, teardown_enc),
        cmocka_unit_test_setup_teardown(rejects_too_many_ipv4_peers, setup_enc, teardown_enc),
        cmocka_unit_test_setup_teardown(rejects_too_many_ipv6_peers, setup_enc, teardown_enc),
        cmocka_unit_test_setup_teardown(rejects_peer_of_unknown_family, setup_enc, teardown_enc),
        cmocka_unit_test_setup_teardown(rejects_swarm_before_previous_is_complete, setup_enc,
                                        teardown_enc),
        cmocka_unit_test_setup_teardown(rejects_finish_with_incomplete_swarm, setup_enc,
                                        teardown_enc),
        cmocka_unit_test_setup_teardown(refuses_everything_after_error_until_begin, setup_enc,
                                        teardown_enc),
        cmocka_unit_test_setup_teardown(refuses_swarm_after_finish, setup_enc, teardown_enc),
        cmocka_unit_test_setup_teardown(swarm_too_big_for_a_bin_is_nomem, setup_enc, teardown_enc),
        cmocka_unit_test_setup_teardown(counts_swarms_and_peers_since_begin, setup_enc,
                                        teardown_enc),
        cmocka_unit_test_setup_teardown(reuses_buffer_across_begin, setup_enc, teardown_enc),
        cmocka_unit_test(destroy_is_null_safe),
        cmocka_unit_test(strerror_names_every_code),
    };
    return cmocka_run_group_tests_name("snapshot", tests, NULL, NULL);
}
