/* SPDX-License-Identifier: MIT */
/* test_repo_snapshot: the repository's snapshot side through its public contract: the dirty
 * bitmap (what marks it, what does not, take and mark, and that no mark is lost to a concurrent
 * take), export of chosen partitions through the real encoder, decoder and import into a second
 * repository (same counts, same peer sets, same flags, ages that expire at the right sweep, for
 * both families, indexed sets and coarse ticks), import's merge rules and bounds, and dropping
 * partitions with every counter and byte given back.
 *
 * With SHOAL_SNAP_BENCH set in the environment the program instead times an export of 1M peers
 * in 100k swarms over every stripe and prints the result (no tests run). */
#include "repo.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>

#include <cmocka.h>

static const repo_limits_t lim60 = {
    .max_torrents = 10000,
    .max_peers_per_swarm = 100000,
    .memory_budget = 64u << 20,
    .peer_timeout_s = 60,
};

typedef struct {
    uint8_t *buf;
    size_t len;
} blob_t;

typedef struct {
    snap_enc_t *enc[PARTITION_COUNT]; /* NULL: partition not exported */
    unsigned picks_null;              /* swarms pick() turned away */
} picker_t;

/* ---- helpers ------------------------------------------------------------------------------ */

/* An info-hash in partition p (its first 12 bits), told apart by id. */
static void ih_part(uint32_t p, uint32_t id, uint8_t ih[SHOAL_HASH_LEN])
{
    memset(ih, 0x77, SHOAL_HASH_LEN);
    ih[0] = (uint8_t)(p >> 4);
    ih[1] = (uint8_t)((p & 15) << 4 | (id >> 28));
    ih[2] = (uint8_t)(id >> 20);
    ih[3] = (uint8_t)(id >> 12);
    ih[4] = (uint8_t)(id >> 4);
    ih[5] = (uint8_t)(id << 4);
}

/* IPv4 peer 10.x.y.z (low 24 bits of a). */
static announce_t req4(uint32_t p, uint32_t id, uint32_t a, uint16_t port, uint64_t left,
                       announce_event_t ev)
{
    announce_t r;
    memset(&r, 0, sizeof(r));
    ih_part(p, id, r.info_hash);
    r.left = left;
    r.event = ev;
    r.numwant = -1;
    r.peer.family = 4;
    r.peer.addr[0] = 10;
    r.peer.addr[1] = (uint8_t)(a >> 16);
    r.peer.addr[2] = (uint8_t)(a >> 8);
    r.peer.addr[3] = (uint8_t)a;
    r.peer.port = port;
    return r;
}

/* IPv6 peer 2001:db8::a. */
static announce_t req6(uint32_t p, uint32_t id, uint32_t a, uint16_t port, uint64_t left,
                       announce_event_t ev)
{
    announce_t r = req4(p, id, 0, port, left, ev);
    memset(r.peer.addr, 0, sizeof(r.peer.addr));
    r.peer.family = 6;
    r.peer.addr[0] = 0x20;
    r.peer.addr[1] = 0x01;
    r.peer.addr[2] = 0x0d;
    r.peer.addr[3] = 0xb8;
    r.peer.addr[12] = (uint8_t)(a >> 24);
    r.peer.addr[13] = (uint8_t)(a >> 16);
    r.peer.addr[14] = (uint8_t)(a >> 8);
    r.peer.addr[15] = (uint8_t)a;
    return r;
}

static repo_result_t ann(repo_t *repo, const announce_t *r, uint32_t now)
{
    static uint8_t out[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    repo_result_t res;
    assert_int_equal(repo_announce(repo, r, now, 0, out, &res), REPO_OK);
    return res;
}

static swarm_stats_t scrape(repo_t *repo, uint32_t p, uint32_t id)
{
    uint8_t ih[SHOAL_HASH_LEN];
    ih_part(p, id, ih);
    swarm_stats_t s;
    memset(&s, 0xff, sizeof(s));
    repo_scrape(repo, ih, &s);
    return s;
}

static void assert_stats_equal(swarm_stats_t a, swarm_stats_t b)
{
    assert_int_equal(a.seeders, b.seeders);
    assert_int_equal(a.leechers, b.leechers);
    assert_int_equal(a.downloaded, b.downloaded);
}

static void assert_no_dirty(repo_t *repo)
{
    uint64_t d[REPO_DIRTY_WORDS];
    repo_take_dirty(repo, d);
    for (size_t i = 0; i < REPO_DIRTY_WORDS; i++)
        assert_int_equal(d[i], 0);
}

/* Take the bitmap and check it holds exactly the partitions ps[0..n). */
static void assert_dirty_exactly(repo_t *repo, const uint32_t *ps, size_t n)
{
    uint64_t want[REPO_DIRTY_WORDS] = {0}, got[REPO_DIRTY_WORDS];
    for (size_t i = 0; i < n; i++)
        want[ps[i] / 64] |= UINT64_C(1) << (ps[i] % 64);
    repo_take_dirty(repo, got);
    for (size_t i = 0; i < REPO_DIRTY_WORDS; i++)
        assert_int_equal(got[i], want[i]);
}

static snap_enc_t *pick(void *arg, uint32_t p)
{
    picker_t *pk = arg;
    assert_true(p < PARTITION_COUNT);
    if (!pk->enc[p])
        pk->picks_null++;
    return pk->enc[p];
}

/* Export partitions parts[0..n) of src at now, one snapshot each into blobs[i] (malloc'd).
 * Returns the swarms encoded. */
static long export_parts(repo_t *src, uint32_t now, const uint32_t *parts, size_t n, blob_t *blobs,
                         picker_t *pk)
{
    memset(pk, 0, sizeof(*pk));
    for (size_t i = 0; i < n; i++) {
        pk->enc[parts[i]] = snap_enc_new();
        assert_non_null(pk->enc[parts[i]]);
        assert_int_equal(snap_enc_begin(pk->enc[parts[i]], parts[i], "node-a", 7, 1000), SNAP_OK);
    }
    long total = 0;
    for (size_t s = 0; s < repo_stripes(src); s++) {
        long k = repo_export_stripe(src, s, now, pick, pk);
        assert_true(k >= 0);
        total += k;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *data;
        size_t len;
        assert_int_equal(snap_enc_finish(pk->enc[parts[i]], &data, &len), SNAP_OK);
        blobs[i].buf = malloc(len);
        assert_non_null(blobs[i].buf);
        memcpy(blobs[i].buf, data, len);
        blobs[i].len = len;
        snap_enc_destroy(&pk->enc[parts[i]]);
    }
    return total;
}

/* Validate a snapshot and import all its swarms into dst; returns its swarm count. */
static uint32_t import_blob(repo_t *dst, const blob_t *b, uint32_t now, uint32_t extra,
                            repo_import_stats_t *st)
{
    snap_header_t hdr;
    assert_int_equal(snap_check(b->buf, b->len, &hdr), SNAP_OK);
    snap_iter_t it;
    snap_iter_init(&it, b->buf, b->len);
    snap_swarm_t sw;
    uint32_t k = 0;
    while (snap_iter_next(&it, &sw) == SNAP_OK) {
        assert_int_equal(partition_of(sw.info_hash), hdr.partition);
        repo_import_swarm(dst, &sw, now, extra, REPO_MERGE_ADD, st);
        k++;
    }
    assert_int_equal(k, hdr.swarms);
    return k;
}

/* Copy src's partitions parts[0..n) into dst through snapshots; returns the swarms moved. */
static long transfer(repo_t *src, repo_t *dst, uint32_t export_now, uint32_t import_now,
                     uint32_t extra, const uint32_t *parts, size_t n, repo_import_stats_t *st)
{
    blob_t blobs[16];
    picker_t *pk = malloc(sizeof(*pk));
    assert_non_null(pk);
    assert_true(n <= 16);
    long k = export_parts(src, export_now, parts, n, blobs, pk);
    free(pk);
    long imported = 0;
    for (size_t i = 0; i < n; i++) {
        imported += import_blob(dst, &blobs[i], import_now, extra, st);
        free(blobs[i].buf);
    }
    assert_int_equal(imported, k);
    return k;
}

static size_t rec_len_cmp;
static int rec_cmp(const void *a, const void *b)
{
    return memcmp(a, b, rec_len_cmp);
}

/* The peers of one family a fresh observer peer gets (numwant 200, all of them when fewer),
 * sorted; the observer is a leecher (sees everyone) or a seeder (sees leechers). */
static size_t peer_set(repo_t *repo, uint32_t p, uint32_t id, uint8_t family, bool seeder,
                       uint32_t now, uint8_t *out)
{
    announce_t r = family == 6
                       ? req6(p, id, 0xfeed0000u + seeder, 9999, seeder ? 0 : 1, ANNOUNCE_STARTED)
                       : req4(p, id, 0xfe0000u + seeder, 9999, seeder ? 0 : 1, ANNOUNCE_STARTED);
    repo_result_t res;
    assert_int_equal(repo_announce(repo, &r, now, SHOAL_NUMWANT_MAX, out, &res), REPO_OK);
    rec_len_cmp = family == 6 ? SHOAL_PEER6_LEN : SHOAL_PEER4_LEN;
    qsort(out, res.n_peers, rec_len_cmp, rec_cmp);
    return res.n_peers;
}

/* Source and target give the same peer sets to observers of both kinds and families. */
static void assert_same_peers(repo_t *a, repo_t *b, uint32_t p, uint32_t id, uint32_t now)
{
    static uint8_t oa[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN], ob[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    for (int fam = 4; fam <= 6; fam += 2) {
        for (int seeder = 0; seeder <= 1; seeder++) {
            size_t na = peer_set(a, p, id, (uint8_t)fam, seeder, now, oa);
            size_t nb = peer_set(b, p, id, (uint8_t)fam, seeder, now, ob);
            assert_int_equal(na, nb);
            assert_memory_equal(oa, ob, na * (fam == 6 ? SHOAL_PEER6_LEN : SHOAL_PEER4_LEN));
        }
    }
}

/* ---- dirty bitmap ------------------------------------------------------------------------- */

static void new_repo_has_nothing_dirty(void **state)
{
    (void)state;
    repo_t *r = repo_new(2, &lim60);
    assert_no_dirty(r);
    repo_destroy(&r);
}

static void announce_marks_its_partition(void **state)
{
    (void)state;
    repo_t *r = repo_new(2, &lim60);
    announce_t a = req4(0x5a3, 1, 1, 1000, 1, ANNOUNCE_STARTED);
    ann(r, &a, 100);
    a = req4(4095, 2, 1, 1000, 0, ANNOUNCE_NONE);
    ann(r, &a, 100);
    a = req6(0, 3, 1, 1000, 0, ANNOUNCE_NONE);
    ann(r, &a, 100);
    const uint32_t want[] = {0x5a3, 4095, 0};
    assert_dirty_exactly(r, want, 3);
    repo_destroy(&r);
}

static void stopped_marks_its_partition(void **state)
{
    (void)state;
    repo_t *r = repo_new(2, &lim60);
    announce_t a = req4(77, 1, 1, 1000, 1, ANNOUNCE_STARTED);
    ann(r, &a, 100);
    assert_dirty_exactly(r, (const uint32_t[]){77}, 1);
    a.event = ANNOUNCE_STOPPED;
    repo_result_t res = ann(r, &a, 101);
    assert_false(res.stored);
    assert_int_equal(scrape(r, 77, 1).leechers, 0);
    assert_dirty_exactly(r, (const uint32_t[]){77}, 1);
    repo_destroy(&r);
}

static void scrape_and_expiry_mark_nothing(void **state)
{
    (void)state;
    repo_t *r = repo_new(2, &lim60);
    announce_t a = req4(300, 1, 1, 1000, 1, ANNOUNCE_STARTED);
    ann(r, &a, 100);
    assert_dirty_exactly(r, (const uint32_t[]){300}, 1);
    assert_int_equal(scrape(r, 300, 1).leechers, 1);
    assert_int_equal(scrape(r, 301, 1).leechers, 0);
    assert_int_equal(repo_expire(r, 160), 1);
    repo_totals_t t;
    repo_totals(r, &t);
    assert_int_equal(t.torrents, 0);
    assert_no_dirty(r);
    repo_destroy(&r);
}

static void take_clears_the_bitmap(void **state)
{
    (void)state;
    repo_t *r = repo_new(2, &lim60);
    announce_t a = req4(1, 1, 1, 1000, 1, ANNOUNCE_STARTED);
    ann(r, &a, 100);
    assert_dirty_exactly(r, (const uint32_t[]){1}, 1);
    assert_no_dirty(r);
    ann(r, &a, 101); /* a refresh marks again */
    assert_dirty_exactly(r, (const uint32_t[]){1}, 1);
    repo_destroy(&r);
}

static void mark_dirty_ors_bits_back(void **state)
{
    (void)state;
    repo_t *r = repo_new(2, &lim60);
    announce_t a = req4(9, 1, 1, 1000, 1, ANNOUNCE_STARTED);
    ann(r, &a, 100);
    uint64_t parts[REPO_DIRTY_WORDS] = {0};
    parts[0] = UINT64_C(1) << 3 | UINT64_C(1) << 9;
    parts[63] = UINT64_C(1) << 63;
    repo_mark_dirty(r, parts);
    assert_dirty_exactly(r, (const uint32_t[]){3, 9, 4095}, 3);
    assert_no_dirty(r);
    repo_destroy(&r);
}

/* Two threads announce every partition once per round (even and odd ones, so they share
 * bitmap words) while a third takes the bitmap in a loop; the takes of a round plus one after
 * it must hold every partition. A take that is not an atomic exchange loses marks here. */
#define CONC_ROUNDS 20

typedef struct {
    repo_t *repo;
    unsigned t, round;
} conc_ann_t;

typedef struct {
    repo_t *repo;
    _Atomic bool running;
    uint64_t seen[REPO_DIRTY_WORDS];
    unsigned takes;
} conc_take_t;

static void *conc_announcer(void *arg)
{
    conc_ann_t *c = arg;
    uint8_t out[SHOAL_PEER4_LEN];
    repo_result_t res;
    for (uint32_t p = c->t; p < PARTITION_COUNT; p += 2) {
        announce_t a = req4(p, 1, c->t, 1000, 1, ANNOUNCE_NONE);
        repo_announce(c->repo, &a, 100 + c->round, 1, out, &res);
    }
    return NULL;
}

static void *conc_taker(void *arg)
{
    conc_take_t *c = arg;
    uint64_t d[REPO_DIRTY_WORDS];
    while (atomic_load(&c->running)) {
        repo_take_dirty(c->repo, d);
        for (size_t i = 0; i < REPO_DIRTY_WORDS; i++)
            c->seen[i] |= d[i];
        c->takes++;
    }
    return NULL;
}

static void concurrent_take_loses_no_mark(void **state)
{
    (void)state;
    repo_t *r = repo_new(4, &lim60);
    unsigned takes = 0;
    for (unsigned round = 0; round < CONC_ROUNDS; round++) {
        conc_take_t tk = {.repo = r};
        atomic_init(&tk.running, true);
        conc_ann_t an[2] = {{r, 0, round}, {r, 1, round}};
        pthread_t th[3];
        assert_int_equal(pthread_create(&th[2], NULL, conc_taker, &tk), 0);
        assert_int_equal(pthread_create(&th[0], NULL, conc_announcer, &an[0]), 0);
        assert_int_equal(pthread_create(&th[1], NULL, conc_announcer, &an[1]), 0);
        pthread_join(th[0], NULL);
        pthread_join(th[1], NULL);
        atomic_store(&tk.running, false);
        pthread_join(th[2], NULL);
        uint64_t d[REPO_DIRTY_WORDS];
        repo_take_dirty(r, d);
        for (size_t i = 0; i < REPO_DIRTY_WORDS; i++)
            assert_int_equal(tk.seen[i] | d[i], UINT64_MAX);
        takes += tk.takes;
    }
    assert_true(takes >= CONC_ROUNDS);
    repo_totals_t t;
    repo_totals(r, &t);
    assert_int_equal(t.torrents, PARTITION_COUNT);
    assert_int_equal(t.peers, PARTITION_COUNT);
    repo_destroy(&r);
}

/* ---- export and import -------------------------------------------------------------------- */

/* Swarms id 1..3 in partitions 10, 11, 12 and 2000, of a few peers each. */
static void fill_small(repo_t *r, uint32_t now)
{
    const uint32_t parts[] = {10, 11, 12, 2000};
    for (size_t i = 0; i < 4; i++) {
        for (uint32_t id = 1; id <= 3; id++) {
            for (uint32_t k = 0; k < id + 2; k++) {
                announce_t a = req4(parts[i], id, k + 100 * id, (uint16_t)(6881 + k), k % 2,
                                    k == 0 ? ANNOUNCE_COMPLETED : ANNOUNCE_STARTED);
                ann(r, &a, now);
            }
        }
    }
}

static void export_encodes_chosen_partitions_only(void **state)
{
    (void)state;
    repo_t *src = repo_new(3, &lim60);
    fill_small(src, 1000);
    blob_t blobs[2];
    picker_t *pk = malloc(sizeof(*pk));
    assert_non_null(pk);
    const uint32_t parts[] = {11, 2000};
    assert_int_equal(export_parts(src, 1000, parts, 2, blobs, pk), 6);
    assert_int_equal(pk->picks_null, 6); /* partitions 10 and 12 were offered and refused */
    for (size_t i = 0; i < 2; i++) {
        snap_header_t hdr;
        assert_int_equal(snap_check(blobs[i].buf, blobs[i].len, &hdr), SNAP_OK);
        assert_int_equal(hdr.partition, parts[i]);
        assert_string_equal(hdr.owner, "node-a");
        assert_int_equal(hdr.swarms, 3);
        snap_iter_t it;
        snap_iter_init(&it, blobs[i].buf, blobs[i].len);
        snap_swarm_t sw;
        unsigned seen = 0;
        while (snap_iter_next(&it, &sw) == SNAP_OK) {
            assert_int_equal(partition_of(sw.info_hash), parts[i]);
            uint32_t id = (uint32_t)(sw.info_hash[1] & 15) << 28 | (uint32_t)sw.info_hash[2] << 20 |
                          (uint32_t)sw.info_hash[3] << 12 | (uint32_t)sw.info_hash[4] << 4 |
                          sw.info_hash[5] >> 4;
            assert_true(id >= 1 && id <= 3);
            seen |= 1u << id;
            assert_int_equal(sw.n4, id + 2);
            assert_int_equal(sw.n6, 0);
            assert_int_equal(sw.downloaded, 1);
            assert_int_equal(sw.peers_len, (size_t)(id + 2) * SNAP_PEER4_LEN);
        }
        assert_int_equal(seen, 0xe);
        free(blobs[i].buf);
    }
    free(pk);
    repo_destroy(&src);
}

static void export_with_no_encoder_encodes_nothing(void **state)
{
    (void)state;
    repo_t *src = repo_new(3, &lim60);
    fill_small(src, 1000);
    picker_t *pk = calloc(1, sizeof(*pk));
    assert_non_null(pk);
    for (size_t s = 0; s < repo_stripes(src); s++)
        assert_int_equal(repo_export_stripe(src, s, 1000, pick, pk), 0);
    assert_int_equal(pk->picks_null, 12);
    assert_int_equal(repo_export_stripe(src, repo_stripes(src), 1000, pick, pk), 0);
    free(pk);
    repo_destroy(&src);
}

/* An encoder that fails (here: never begun, so it refuses every call) makes the export return
 * -1; the other encoders still get all their swarms. */
static void failed_encoder_fails_export_but_not_the_others(void **state)
{
    (void)state;
    repo_t *src = repo_new(0, &lim60);
    fill_small(src, 1000);
    picker_t *pk = calloc(1, sizeof(*pk));
    assert_non_null(pk);
    pk->enc[10] = snap_enc_new();
    pk->enc[11] = snap_enc_new();
    assert_non_null(pk->enc[10]);
    assert_non_null(pk->enc[11]);
    assert_int_equal(snap_enc_begin(pk->enc[10], 10, "node-a", 1, 0), SNAP_OK);
    assert_int_equal(repo_export_stripe(src, 0, 1000, pick, pk), -1);
    const uint8_t *data;
    size_t len;
    assert_int_equal(snap_enc_finish(pk->enc[10], &data, &len), SNAP_OK);
    snap_header_t hdr;
    assert_int_equal(snap_check(data, len, &hdr), SNAP_OK);
    assert_int_equal(hdr.swarms, 3);
    snap_iter_t it;
    snap_iter_init(&it, data, len);
    snap_swarm_t sw;
    uint32_t peers = 0;
    while (snap_iter_next(&it, &sw) == SNAP_OK)
        peers += sw.n4 + sw.n6;
    assert_int_equal(peers, 3 + 4 + 5);
    snap_enc_destroy(&pk->enc[10]);
    snap_enc_destroy(&pk->enc[11]);
    free(pk);
    repo_destroy(&src);
}

/* One IPv4 leecher whose completion was counted, one IPv6 seeder, in swarms of their own: the
 * peers bins are exact records (flags, little-endian age, compact form). */
static void export_records_are_byte_exact(void **state)
{
    (void)state;
    repo_t *src = repo_new(1, &lim60);
    announce_t a = req4(0x123, 1, 0x000001, 0x1ae1, 5, ANNOUNCE_COMPLETED);
    ann(src, &a, 1000);
    a = req6(0x123, 2, 0xa1b2c3d4u, 0x0102, 0, ANNOUNCE_STARTED);
    ann(src, &a, 990);
    blob_t b;
    picker_t *pk = malloc(sizeof(*pk));
    assert_non_null(pk);
    assert_int_equal(export_parts(src, 1007, (const uint32_t[]){0x123}, 1, &b, pk), 2);
    free(pk);
    static const uint8_t rec4[SNAP_PEER4_LEN] = {0x02, 7, 0, 0, 0, 10, 0, 0, 1, 0x1a, 0xe1};
    static const uint8_t rec6[SNAP_PEER6_LEN] = {0x05, 17,   0,    0,    0,    0x20, 0x01, 0x0d,
                                                 0xb8, 0,    0,    0,    0,    0,    0,    0,
                                                 0,    0xa1, 0xb2, 0xc3, 0xd4, 0x01, 0x02};
    snap_header_t hdr;
    assert_int_equal(snap_check(b.buf, b.len, &hdr), SNAP_OK);
    snap_iter_t it;
    snap_iter_init(&it, b.buf, b.len);
    snap_swarm_t sw;
    unsigned seen = 0;
    while (snap_iter_next(&it, &sw) == SNAP_OK) {
        if (sw.n4) {
            assert_int_equal(sw.n6, 0);
            assert_int_equal(sw.downloaded, 1);
            assert_int_equal(sw.peers_len, sizeof(rec4));
            assert_memory_equal(sw.peers, rec4, sizeof(rec4));
            seen |= 1;
        } else {
            assert_int_equal(sw.n6, 1);
            assert_int_equal(sw.downloaded, 0);
            assert_int_equal(sw.peers_len, sizeof(rec6));
            assert_memory_equal(sw.peers, rec6, sizeof(rec6));
            seen |= 2;
        }
    }
    assert_int_equal(seen, 3);
    free(b.buf);
    repo_destroy(&src);
}

static void round_trip_keeps_counts_and_peers(void **state)
{
    (void)state;
    repo_t *src = repo_new(3, &lim60), *dst = repo_new(2, &lim60);
    fill_small(src, 1000);
    repo_import_stats_t st = {0};
    const uint32_t parts[] = {10, 11, 12, 2000};
    assert_int_equal(transfer(src, dst, 1010, 1010, 0, parts, 4, &st), 12);
    assert_int_equal(st.swarms, 12);
    assert_int_equal(st.peers, 4 * (3 + 4 + 5));
    assert_int_equal(st.present + st.expired + st.refused, 0);
    repo_totals_t ts, td;
    repo_totals(src, &ts);
    repo_totals(dst, &td);
    assert_int_equal(td.torrents, ts.torrents);
    assert_int_equal(td.peers, ts.peers);
    assert_int_equal(td.seeders, ts.seeders);
    for (size_t i = 0; i < 4; i++) {
        for (uint32_t id = 1; id <= 3; id++) {
            assert_stats_equal(scrape(dst, parts[i], id), scrape(src, parts[i], id));
            assert_same_peers(src, dst, parts[i], id, 1011);
        }
    }
    repo_destroy(&src);
    repo_destroy(&dst);
}

static void round_trip_keeps_completed_flag(void **state)
{
    (void)state;
    repo_t *src = repo_new(1, &lim60), *dst = repo_new(1, &lim60);
    announce_t a = req4(5, 1, 1, 1000, 7, ANNOUNCE_COMPLETED);
    ann(src, &a, 1000);
    repo_import_stats_t st = {0};
    transfer(src, dst, 1000, 1000, 0, (const uint32_t[]){5}, 1, &st);
    assert_int_equal(scrape(dst, 5, 1).downloaded, 1);
    ann(dst, &a, 1001); /* completed again by the same peer: counted already */
    assert_int_equal(scrape(dst, 5, 1).downloaded, 1);
    a.left = 0;
    ann(dst, &a, 1002);
    swarm_stats_t s = scrape(dst, 5, 1);
    assert_int_equal(s.downloaded, 1);
    assert_int_equal(s.seeders, 1);
    repo_destroy(&src);
    repo_destroy(&dst);
}

static void round_trip_ipv6_peers(void **state)
{
    (void)state;
    repo_t *src = repo_new(2, &lim60), *dst = repo_new(2, &lim60);
    for (uint32_t k = 0; k < 10; k++) {
        announce_t a = req6(700, 1, k, (uint16_t)(1000 + k), k % 3 ? 50 : 0, ANNOUNCE_STARTED);
        ann(src, &a, 1000);
        if (k < 4) {
            a = req4(700, 1, k, (uint16_t)(1000 + k), k % 2, ANNOUNCE_STARTED);
            ann(src, &a, 1000);
        }
    }
    announce_t only6 = req6(700, 2, 99, 5, 0, ANNOUNCE_STARTED);
    ann(src, &only6, 1000);
    repo_import_stats_t st = {0};
    assert_int_equal(transfer(src, dst, 1000, 1000, 0, (const uint32_t[]){700}, 1, &st), 2);
    assert_int_equal(st.peers, 15);
    assert_stats_equal(scrape(dst, 700, 1), scrape(src, 700, 1));
    assert_stats_equal(scrape(dst, 700, 2), scrape(src, 700, 2));
    assert_int_equal(scrape(dst, 700, 1).seeders, 4 + 2);
    assert_same_peers(src, dst, 700, 1, 1001);
    assert_same_peers(src, dst, 700, 2, 1001);
    repo_destroy(&src);
    repo_destroy(&dst);
}

/* 150 IPv4 and 60 IPv6 peers: indexed sets on both sides; the target's index must find every
 * imported peer (a re-announce does not duplicate it). */
static void round_trip_large_indexed_swarm(void **state)
{
    (void)state;
    repo_t *src = repo_new(0, &lim60), *dst = repo_new(4, &lim60);
    for (uint32_t k = 0; k < 150; k++) {
        announce_t a = req4(42, 1, k * 7919, (uint16_t)(k + 1), k % 5 ? 1 : 0, ANNOUNCE_STARTED);
        ann(src, &a, 1000 + k % 30);
        if (k < 60) {
            a = req6(42, 1, k * 104729, (uint16_t)(k + 1), k % 4 ? 0 : 1, ANNOUNCE_STARTED);
            ann(src, &a, 1000 + k % 20);
        }
    }
    repo_import_stats_t st = {0};
    transfer(src, dst, 1040, 1040, 0, (const uint32_t[]){42}, 1, &st);
    assert_int_equal(st.peers, 210);
    assert_stats_equal(scrape(dst, 42, 1), scrape(src, 42, 1));
    for (uint32_t k = 0; k < 150; k++) {
        announce_t a = req4(42, 1, k * 7919, (uint16_t)(k + 1), k % 5 ? 1 : 0, ANNOUNCE_NONE);
        ann(dst, &a, 1041);
        if (k < 60) {
            a = req6(42, 1, k * 104729, (uint16_t)(k + 1), k % 4 ? 0 : 1, ANNOUNCE_NONE);
            ann(dst, &a, 1041);
        }
    }
    assert_stats_equal(scrape(dst, 42, 1), scrape(src, 42, 1));
    assert_same_peers(src, dst, 42, 1, 1041);
    /* A second import of the same snapshot finds every peer present. */
    repo_import_stats_t st2 = {0};
    transfer(src, dst, 1041, 1041, 0, (const uint32_t[]){42}, 1, &st2);
    assert_int_equal(st2.peers, 0);
    assert_int_equal(st2.present, 214); /* the observers joined both repositories */
    repo_destroy(&src);
    repo_destroy(&dst);
}

/* Ages travel: peers 50, 1 and 0 s old at export, imported into a repository whose clock is
 * elsewhere, expire exactly 10, 59 and 60 s later there, as they would have at the source. */
static void imported_age_expires_at_the_right_sweep(void **state)
{
    (void)state;
    repo_t *src = repo_new(1, &lim60), *dst = repo_new(1, &lim60);
    announce_t old = req4(8, 1, 1, 1, 1, ANNOUNCE_STARTED);
    ann(src, &old, 1000);
    announce_t fresh = req4(8, 1, 2, 2, 0, ANNOUNCE_STARTED);
    ann(src, &fresh, 1049);
    announce_t now = req4(8, 1, 3, 3, 0, ANNOUNCE_STARTED);
    ann(src, &now, 1050);
    repo_import_stats_t st = {0};
    transfer(src, dst, 1050, 70000, 0, (const uint32_t[]){8}, 1, &st);
    assert_int_equal(st.peers, 3);
    assert_int_equal(repo_expire(dst, 70009), 0);
    assert_int_equal(repo_expire(dst, 70010), 1);
    swarm_stats_t s = scrape(dst, 8, 1);
    assert_int_equal(s.leechers, 0);
    assert_int_equal(s.seeders, 2);
    assert_int_equal(repo_expire(dst, 70058), 0);
    assert_int_equal(repo_expire(dst, 70059), 1);
    assert_int_equal(repo_expire(dst, 70060), 1); /* age 0 */
    /* The source agrees. */
    assert_int_equal(repo_expire(src, 1059), 0);
    assert_int_equal(repo_expire(src, 1060), 1);
    repo_destroy(&src);
    repo_destroy(&dst);
}

/* Importing into sets nobody swept for longer than 15 bits of ticks: the set is rebased first, so
 * the imported ages are kept, not clamped into the past. */
static void import_into_long_unswept_sets_keeps_ages(void **state)
{
    (void)state;
    repo_t *src = repo_new(1, &lim60), *dst = repo_new(1, &lim60);
    announce_t stale4 = req4(8, 1, 1, 1, 1, ANNOUNCE_STARTED);
    ann(dst, &stale4, 1000);
    announce_t stale6 = req6(8, 1, 1, 1, 1, ANNOUNCE_STARTED);
    ann(dst, &stale6, 1000);
    announce_t a = req4(8, 1, 2, 2, 1, ANNOUNCE_STARTED);
    ann(src, &a, 99990);
    a = req6(8, 1, 2, 2, 0, ANNOUNCE_STARTED);
    ann(src, &a, 99990);
    repo_import_stats_t st = {0};
    transfer(src, dst, 100000, 100000, 0, (const uint32_t[]){8}, 1, &st);
    assert_int_equal(st.peers, 2);
    swarm_stats_t s = scrape(dst, 8, 1);
    assert_int_equal(s.leechers, 1); /* the rebase swept the stale ones */
    assert_int_equal(s.seeders, 1);
    assert_int_equal(repo_expire(dst, 100049), 0);
    assert_int_equal(repo_expire(dst, 100050), 2);
    repo_destroy(&src);
    repo_destroy(&dst);
}

/* A small `now` (just after boot) with ages larger than it: tick arithmetic wraps, expiry is
 * still exact. */
static void imported_age_larger_than_now(void **state)
{
    (void)state;
    repo_t *src = repo_new(1, &lim60), *dst = repo_new(1, &lim60);
    announce_t a = req4(8, 1, 1, 1, 1, ANNOUNCE_STARTED);
    ann(src, &a, 1000);
    repo_import_stats_t st = {0};
    transfer(src, dst, 1040, 5, 0, (const uint32_t[]){8}, 1, &st);
    assert_int_equal(st.peers, 1);
    assert_int_equal(repo_expire(dst, 24), 0);
    assert_int_equal(repo_expire(dst, 25), 1);
    repo_destroy(&src);
    repo_destroy(&dst);
}

static void extra_age_expires_peers(void **state)
{
    (void)state;
    repo_t *src = repo_new(1, &lim60), *dst = repo_new(1, &lim60);
    announce_t a = req4(8, 1, 1, 1, 1, ANNOUNCE_STARTED);
    ann(src, &a, 1000);
    a = req4(8, 1, 2, 2, 1, ANNOUNCE_STARTED);
    ann(src, &a, 1040);
    repo_import_stats_t st = {0};
    /* Ages 50 and 10, plus 10: the first reaches the timeout. */
    transfer(src, dst, 1050, 500, 10, (const uint32_t[]){8}, 1, &st);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.peers, 1);
    assert_int_equal(scrape(dst, 8, 1).leechers, 1);
    assert_int_equal(repo_expire(dst, 539), 0);
    assert_int_equal(repo_expire(dst, 540), 1);
    repo_destroy(&src);
    repo_destroy(&dst);
}

static void swarm_with_nothing_live_is_not_created(void **state)
{
    (void)state;
    repo_t *src = repo_new(1, &lim60), *dst = repo_new(1, &lim60);
    announce_t a = req4(8, 1, 1, 1, 1, ANNOUNCE_STARTED);
    ann(src, &a, 1000);
    a = req4(8, 2, 1, 1, 0, ANNOUNCE_COMPLETED);
    ann(src, &a, 1000);
    repo_import_stats_t st = {0};
    transfer(src, dst, 1000, 1000, 60, (const uint32_t[]){8}, 1, &st);
    assert_int_equal(st.expired, 2);
    assert_int_equal(st.peers, 0);
    /* Swarm 1 had nothing left: not created; swarm 2 keeps its downloaded count. */
    assert_int_equal(st.swarms, 1);
    repo_totals_t t;
    repo_totals(dst, &t);
    assert_int_equal(t.torrents, 1);
    assert_int_equal(t.peers, 0);
    swarm_stats_t s = scrape(dst, 8, 2);
    assert_int_equal(s.downloaded, 1);
    assert_int_equal(s.seeders + s.leechers, 0);
    repo_destroy(&src);
    repo_destroy(&dst);
}

/* A peer the target already has keeps its own state and time; the others are added; the
 * downloaded counts add up. */
static void import_merges_without_overwriting(void **state)
{
    (void)state;
    repo_t *src = repo_new(1, &lim60), *dst = repo_new(1, &lim60);
    announce_t x = req4(8, 1, 1, 1, 5, ANNOUNCE_STARTED); /* a leecher at the source */
    ann(src, &x, 950);
    announce_t y = req4(8, 1, 2, 2, 0, ANNOUNCE_COMPLETED);
    ann(src, &y, 950);
    announce_t z = req4(8, 1, 3, 3, 0, ANNOUNCE_COMPLETED);
    ann(src, &z, 950);
    x.left = 0; /* a fresh seeder, completed, at the target */
    x.event = ANNOUNCE_COMPLETED;
    ann(dst, &x, 1000);
    repo_import_stats_t st = {0};
    transfer(src, dst, 1000, 1000, 0, (const uint32_t[]){8}, 1, &st);
    assert_int_equal(st.present, 1);
    assert_int_equal(st.peers, 2);
    assert_int_equal(st.swarms, 0);
    swarm_stats_t s = scrape(dst, 8, 1);
    assert_int_equal(s.seeders, 3);
    assert_int_equal(s.leechers, 0);
    assert_int_equal(s.downloaded, 3);
    /* y and z carry their 50 s age; x keeps its own, fresh time. */
    assert_int_equal(repo_expire(dst, 1009), 0);
    assert_int_equal(repo_expire(dst, 1010), 2);
    s = scrape(dst, 8, 1);
    assert_int_equal(s.seeders, 1);
    assert_int_equal(repo_expire(dst, 1060), 1);
    repo_destroy(&src);
    repo_destroy(&dst);
}

static void import_marks_partition_dirty(void **state)
{
    (void)state;
    repo_t *src = repo_new(1, &lim60), *dst = repo_new(1, &lim60);
    announce_t a = req4(3000, 1, 1, 1, 1, ANNOUNCE_STARTED);
    ann(src, &a, 1000);
    repo_import_stats_t st = {0};
    transfer(src, dst, 1000, 1000, 0, (const uint32_t[]){3000}, 1, &st);
    assert_dirty_exactly(dst, (const uint32_t[]){3000}, 1);
    repo_destroy(&src);
    repo_destroy(&dst);
}

static void import_respects_max_torrents(void **state)
{
    (void)state;
    repo_limits_t l = lim60;
    l.max_torrents = 2;
    repo_t *src = repo_new(1, &lim60), *dst = repo_new(1, &l);
    for (uint32_t id = 1; id <= 3; id++) {
        for (uint32_t k = 0; k < 3; k++) {
            announce_t a = req4(8, id, k, 1, 1, ANNOUNCE_STARTED);
            ann(src, &a, 1000);
        }
    }
    repo_import_stats_t st = {0};
    transfer(src, dst, 1000, 1000, 0, (const uint32_t[]){8}, 1, &st);
    assert_int_equal(st.swarms, 2);
    assert_int_equal(st.peers, 6);
    assert_int_equal(st.refused, 3); /* the third swarm's peers */
    /* A swarm with only a downloaded count is refused as one. */
    announce_t d = req4(9, 1, 1, 1, 0, ANNOUNCE_COMPLETED);
    ann(src, &d, 1000);
    d.event = ANNOUNCE_STOPPED;
    ann(src, &d, 1000);
    transfer(src, dst, 1000, 1000, 0, (const uint32_t[]){9}, 1, &st);
    assert_int_equal(st.swarms, 2);
    assert_int_equal(st.refused, 4);
    repo_totals_t t;
    repo_totals(dst, &t);
    assert_int_equal(t.torrents, 2);
    assert_int_equal(t.peers, 6);
    assert_int_equal(scrape(dst, 9, 1).downloaded, 0);
    repo_destroy(&src);
    repo_destroy(&dst);
}

static void import_respects_max_peers_per_swarm(void **state)
{
    (void)state;
    repo_limits_t l = lim60;
    l.max_peers_per_swarm = 30;
    repo_t *src = repo_new(1, &lim60), *dst = repo_new(1, &l);
    for (uint32_t k = 0; k < 40; k++) {
        announce_t a = req4(8, 1, k, 1, k % 2, ANNOUNCE_STARTED);
        ann(src, &a, 1000);
        a = req6(8, 1, k, 1, k % 2, ANNOUNCE_STARTED);
        ann(src, &a, 1000);
    }
    repo_import_stats_t st = {0};
    transfer(src, dst, 1000, 1000, 0, (const uint32_t[]){8}, 1, &st);
    assert_int_equal(st.peers, 60); /* 30 per family */
    assert_int_equal(st.refused, 20);
    swarm_stats_t s = scrape(dst, 8, 1);
    assert_int_equal(s.seeders + s.leechers, 60);
    repo_totals_t t;
    repo_totals(dst, &t);
    assert_int_equal(t.peers, 60);
    assert_int_equal(t.seeders, s.seeders);
    /* The stored peers are whole and findable: re-announcing them adds nobody. */
    uint8_t out[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    size_t n = peer_set(dst, 8, 1, 4, false, 1001, out);
    assert_int_equal(n, 30);
    for (size_t i = 0; i < n; i++) {
        announce_t a = req4(8, 1, 0, 0, 1, ANNOUNCE_NONE);
        memcpy(a.peer.addr, out + i * 6, 4);
        a.peer.port = (uint16_t)(out[i * 6 + 4] << 8 | out[i * 6 + 5]);
        repo_result_t res = ann(dst, &a, 1002);
        assert_true(res.stored);
    }
    s = scrape(dst, 8, 1);
    assert_int_equal(s.seeders + s.leechers, 60);
    repo_destroy(&src);
    repo_destroy(&dst);
}

/* A budget too small for everything: creation stops at the budget, every peer is accounted for,
 * the bytes never pass the budget. */
static void import_respects_memory_budget_for_swarms(void **state)
{
    (void)state;
    repo_limits_t l = lim60;
    l.memory_budget = 4096;
    repo_t *src = repo_new(1, &lim60), *dst = repo_new(0, &l);
    for (uint32_t id = 0; id < 100; id++) {
        announce_t a = req4(8, id, 1, 1, 1, ANNOUNCE_STARTED);
        ann(src, &a, 1000);
    }
    repo_import_stats_t st = {0};
    transfer(src, dst, 1000, 1000, 0, (const uint32_t[]){8}, 1, &st);
    assert_true(st.swarms > 0 && st.swarms < 100);
    assert_int_equal(st.peers, st.swarms);
    assert_int_equal(st.refused, 100 - st.swarms);
    repo_totals_t t;
    repo_totals(dst, &t);
    assert_int_equal(t.torrents, st.swarms);
    assert_true(t.bytes <= l.memory_budget);
    repo_destroy(&src);
    repo_destroy(&dst);
}

static void import_respects_memory_budget_for_growth(void **state)
{
    (void)state;
    repo_limits_t l = lim60;
    l.memory_budget = 1024;
    repo_t *src = repo_new(1, &lim60), *dst = repo_new(0, &l);
    for (uint32_t k = 0; k < 500; k++) {
        announce_t a = req4(8, 1, k, 1, k % 3 ? 1 : 0, ANNOUNCE_STARTED);
        ann(src, &a, 1000);
    }
    repo_import_stats_t st = {0};
    transfer(src, dst, 1000, 1000, 0, (const uint32_t[]){8}, 1, &st);
    assert_int_equal(st.swarms, 1);
    assert_true(st.peers > 0 && st.peers < 500);
    assert_int_equal(st.peers + st.refused, 500);
    swarm_stats_t s = scrape(dst, 8, 1);
    assert_int_equal(s.seeders + s.leechers, st.peers);
    repo_totals_t t;
    repo_totals(dst, &t);
    assert_true(t.bytes <= l.memory_budget);
    assert_int_equal(t.peers, st.peers);
    assert_int_equal(t.seeders, s.seeders);
    repo_destroy(&src);
    repo_destroy(&dst);
}

/* Timeouts above 16384 s use ticks of 2^k s, and the two clocks need not agree on where ticks
 * start. Whatever second the peer announced, the snapshot was taken and the target's clock
 * stands at, an imported peer is not expired before its timeout, and is gone within three ticks
 * after it (two at the source, plus the second of its announce that its tick hides). */
static void long_timeout_import_never_expires_early(void **state)
{
    (void)state;
    const uint32_t timeouts[] = {20000, 100000};
    for (size_t ti = 0; ti < 2; ti++) {
        repo_limits_t l = lim60;
        const uint32_t T = timeouts[ti], K = T == 20000 ? 2 : 8;
        l.peer_timeout_s = T;
        for (uint32_t ta = 100000; ta < 100000 + K; ta++) {
            for (uint32_t te = ta + 5000; te < ta + 5000 + K; te++) {
                for (uint32_t off = 0; off < K; off++) {
                    repo_t *src = repo_new(0, &l), *dst = repo_new(0, &l);
                    announce_t old = req4(8, 1, 1, 1, 1, ANNOUNCE_STARTED);
                    ann(src, &old, ta);
                    announce_t fresh = req4(8, 1, 2, 2, 1, ANNOUNCE_STARTED);
                    ann(src, &fresh, te);
                    /* The target's clock reads off seconds more than the source's. */
                    repo_import_stats_t st = {0};
                    transfer(src, dst, te, te + off, 0, (const uint32_t[]){8}, 1, &st);
                    assert_int_equal(st.peers, 2);
                    assert_int_equal(repo_expire(dst, ta + off + T - 1), 0);
                    assert_int_equal(repo_expire(dst, ta + off + T + 3 * K), 1);
                    assert_int_equal(repo_expire(dst, te + off + T - 1), 0);
                    assert_int_equal(repo_expire(dst, te + off + T + 3 * K), 1);
                    repo_destroy(&src);
                    repo_destroy(&dst);
                }
            }
        }
    }
}

/* A created swarm whose every peer is refused is removed again, with its table. */
static void swarm_with_every_peer_refused_is_not_kept(void **state)
{
    (void)state;
    repo_limits_t l = lim60;
    l.max_peers_per_swarm = 0;
    repo_t *src = repo_new(1, &lim60), *dst = repo_new(1, &l);
    announce_t a = req4(8, 1, 1, 1, 1, ANNOUNCE_STARTED);
    ann(src, &a, 1000);
    a = req6(8, 1, 1, 1, 1, ANNOUNCE_STARTED);
    ann(src, &a, 1000);
    repo_import_stats_t st = {0};
    transfer(src, dst, 1000, 1000, 0, (const uint32_t[]){8}, 1, &st);
    assert_int_equal(st.swarms, 0);
    assert_int_equal(st.refused, 2);
    repo_totals_t t;
    repo_totals(dst, &t);
    assert_int_equal(t.torrents, 0);
    assert_int_equal(t.peers, 0);
    assert_int_equal(t.bytes, 0);
    repo_destroy(&src);
    repo_destroy(&dst);
}

/* ---- drop --------------------------------------------------------------------------------- */

static bool drop_set(void *arg, uint32_t p)
{
    const uint64_t *set = arg;
    return set[p / 64] >> (p % 64) & 1;
}

static void drop_removes_chosen_partitions_only(void **state)
{
    (void)state;
    repo_t *r = repo_new(0, &lim60);
    /* Partitions 7 and 9 first, then 8 (mixed families, an indexed set). */
    for (uint32_t id = 1; id <= 3; id++) {
        for (uint32_t k = 0; k < 4; k++) {
            announce_t a = req4(id == 2 ? 9 : 7, id, k, 1, k % 2, ANNOUNCE_STARTED);
            ann(r, &a, 1000);
        }
    }
    repo_totals_t before;
    repo_totals(r, &before);
    for (uint32_t id = 1; id <= 2; id++) {
        for (uint32_t k = 0; k < 40; k++) {
            announce_t a = req4(8, id, k, 1, k % 3 ? 1 : 0, ANNOUNCE_STARTED);
            ann(r, &a, 1000);
            if (k % 4 == 0) {
                a = req6(8, id, k, 1, k % 8 ? 1 : 0, ANNOUNCE_STARTED);
                ann(r, &a, 1000);
            }
        }
    }
    repo_totals_t mid;
    repo_totals(r, &mid);
    assert_int_equal(mid.torrents, before.torrents + 2);
    assert_int_equal(mid.peers, before.peers + 100);
    uint64_t set[REPO_DIRTY_WORDS] = {0};
    set[0] = UINT64_C(1) << 8;
    assert_int_equal(repo_drop_stripe(r, 0, drop_set, set), 100);
    assert_int_equal(repo_drop_stripe(r, 1, drop_set, set), 0);
    repo_totals_t after;
    repo_totals(r, &after);
    assert_int_equal(after.torrents, before.torrents);
    assert_int_equal(after.peers, before.peers);
    assert_int_equal(after.seeders, before.seeders);
    assert_int_equal(after.bytes, before.bytes);
    assert_int_equal(scrape(r, 8, 1).leechers, 0);
    assert_int_equal(scrape(r, 7, 1).leechers, 2);
    assert_int_equal(scrape(r, 9, 2).seeders, 2);
    assert_int_equal(scrape(r, 7, 3).seeders, 2);
    /* Dropped swarms are really gone: announcing creates them anew. */
    announce_t a = req4(8, 1, 0, 1, 1, ANNOUNCE_STARTED);
    assert_int_equal(ann(r, &a, 1001).stats.leechers, 1);
    repo_destroy(&r);
}

static void drop_everything_returns_to_zero(void **state)
{
    (void)state;
    repo_t *r = repo_new(3, &lim60);
    fill_small(r, 1000);
    for (uint32_t k = 0; k < 30; k++) {
        announce_t a = req6(99, 1, k, 1, k % 2, ANNOUNCE_STARTED);
        ann(r, &a, 1000);
    }
    uint64_t set[REPO_DIRTY_WORDS];
    memset(set, 0xff, sizeof(set));
    size_t removed = 0;
    for (size_t s = 0; s < repo_stripes(r); s++)
        removed += repo_drop_stripe(r, s, drop_set, set);
    assert_int_equal(removed, 4 * 12 + 30);
    repo_totals_t t;
    repo_totals(r, &t);
    assert_int_equal(t.torrents, 0);
    assert_int_equal(t.peers, 0);
    assert_int_equal(t.seeders, 0);
    assert_int_equal(t.bytes, 0);
    repo_destroy(&r);
}

/* ---- timing helper (SHOAL_SNAP_BENCH) ----------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench(void)
{
    const uint32_t swarms = 100000, per = 10;
    repo_t *r = repo_new(8, NULL), *r2 = repo_new(8, NULL);
    picker_t *pk = calloc(1, sizeof(*pk));
    if (!r || !r2 || !pk)
        return 1;
    uint8_t out[SHOAL_PEER4_LEN];
    repo_result_t res;
    for (uint32_t i = 0; i < swarms; i++) {
        for (uint32_t k = 0; k < per; k++) {
            announce_t a = req4(i % PARTITION_COUNT, i, k, (uint16_t)(1000 + k), k % 4 ? 1 : 0,
                                ANNOUNCE_STARTED);
            repo_announce(r, &a, 1000 + k, 0, out, &res);
        }
    }
    for (uint32_t p = 0; p < PARTITION_COUNT; p++)
        if (!(pk->enc[p] = snap_enc_new()))
            return 1;
    static const uint8_t *data[PARTITION_COUNT];
    static size_t lens[PARTITION_COUNT];
    for (int round = 0; round < 5; round++) {
        for (uint32_t p = 0; p < PARTITION_COUNT; p++)
            snap_enc_begin(pk->enc[p], p, "bench", 1, 0);
        double t0 = now_s();
        long n = 0;
        for (size_t s = 0; s < repo_stripes(r); s++)
            n += repo_export_stripe(r, s, 1020, pick, pk);
        double t1 = now_s();
        size_t bytes = 0;
        for (uint32_t p = 0; p < PARTITION_COUNT; p++) {
            if (snap_enc_finish(pk->enc[p], &data[p], &lens[p]) != SNAP_OK)
                return 1;
            bytes += lens[p];
        }
        printf("export round %d: %ld swarms, %u peers, %zu bytes in %.1f ms (%.1f ns/peer)\n",
               round, n, swarms * per, bytes, (t1 - t0) * 1e3, (t1 - t0) * 1e9 / (swarms * per));
    }
    /* Import of everything into a second repository, for scale. */
    repo_import_stats_t st = {0};
    double t0 = now_s();
    for (uint32_t p = 0; p < PARTITION_COUNT; p++) {
        snap_iter_t it;
        snap_swarm_t sw;
        snap_header_t hdr;
        if (snap_check(data[p], lens[p], &hdr) != SNAP_OK)
            return 1;
        snap_iter_init(&it, data[p], lens[p]);
        while (snap_iter_next(&it, &sw) == SNAP_OK)
            repo_import_swarm(r2, &sw, 1020, 0, REPO_MERGE_ADD, &st);
    }
    double t1 = now_s();
    printf("import: %llu swarms, %llu peers in %.1f ms (%.1f ns/peer)\n",
           (unsigned long long)st.swarms, (unsigned long long)st.peers, (t1 - t0) * 1e3,
           (t1 - t0) * 1e9 / (double)st.peers);
    for (uint32_t p = 0; p < PARTITION_COUNT; p++)
        snap_enc_destroy(&pk->enc[p]);
    free(pk);
    repo_destroy(&r);
    repo_destroy(&r2);
    return 0;
}

int main(void)
{
    if (getenv("SHOAL_SNAP_BENCH"))
        return bench();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(new_repo_has_nothing_dirty),
        cmocka_unit_test(announce_marks_its_partition),
        cmocka_unit_test(stopped_marks_its_partition),
        cmocka_unit_test(scrape_and_expiry_mark_nothing),
        cmocka_unit_test(take_clears_the_bitmap),
        cmocka_unit_test(mark_dirty_ors_bits_back),
        cmocka_unit_test(concurrent_take_loses_no_mark),
        cmocka_unit_test(export_encodes_chosen_partitions_only),
        cmocka_unit_test(export_with_no_encoder_encodes_nothing),
        cmocka_unit_test(failed_encoder_fails_export_but_not_the_others),
        cmocka_unit_test(export_records_are_byte_exact),
        cmocka_unit_test(round_trip_keeps_counts_and_peers),
        cmocka_unit_test(round_trip_keeps_completed_flag),
        cmocka_unit_test(round_trip_ipv6_peers),
        cmocka_unit_test(round_trip_large_indexed_swarm),
        cmocka_unit_test(imported_age_expires_at_the_right_sweep),
        cmocka_unit_test(imported_age_larger_than_now),
        cmocka_unit_test(import_into_long_unswept_sets_keeps_ages),
        cmocka_unit_test(extra_age_expires_peers),
        cmocka_unit_test(swarm_with_nothing_live_is_not_created),
        cmocka_unit_test(import_merges_without_overwriting),
        cmocka_unit_test(import_marks_partition_dirty),
        cmocka_unit_test(import_respects_max_torrents),
        cmocka_unit_test(import_respects_max_peers_per_swarm),
        cmocka_unit_test(import_respects_memory_budget_for_swarms),
        cmocka_unit_test(import_respects_memory_budget_for_growth),
        cmocka_unit_test(long_timeout_import_never_expires_early),
        cmocka_unit_test(swarm_with_every_peer_refused_is_not_kept),
        cmocka_unit_test(drop_removes_chosen_partitions_only),
        cmocka_unit_test(drop_everything_returns_to_zero),
    };
    return cmocka_run_group_tests_name("repo_snapshot", tests, NULL, NULL);
}
