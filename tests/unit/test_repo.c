/* SPDX-License-Identifier: MIT */
/* test_repo: the swarm repository through its public contract, single-threaded: events and
 * counts, seeder/leecher moves, peer selection (self-exclusion, seeders get leechers, numwant,
 * randomness, byte-exact compact records), family separation, expiry at the exact boundary,
 * every bound, a swarm large enough to use the side index, and admin lookups (counts, pages
 * across both families, bounds, no side effects). */
#include "repo.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

typedef struct {
    repo_t *repo;
    uint8_t out[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
} fx_t;

static const repo_limits_t small_limits = {
    .max_torrents = 100,
    .max_peers_per_swarm = 100000,
    .memory_budget = 64u << 20,
    .peer_timeout_s = 60,
};

static int setup_with(void **state, unsigned bits, const repo_limits_t *lim)
{
    fx_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->repo = repo_new(bits, lim);
    if (!f->repo) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, 4, &small_limits);
}

static int teardown(void **state)
{
    fx_t *f = *state;
    repo_destroy(&f->repo);
    assert_null(f->repo);
    free(f);
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void ih_of(uint32_t id, uint8_t ih[SHOAL_HASH_LEN])
{
    memset(ih, 0x5a, SHOAL_HASH_LEN);
    ih[0] = (uint8_t)(id >> 24);
    ih[1] = (uint8_t)(id >> 16);
    ih[2] = (uint8_t)(id >> 8);
    ih[3] = (uint8_t)id;
}

/* IPv4 peer 10.x.y.z where x.y.z is the low 24 bits of a. */
static announce_t req4(uint32_t swarm, uint32_t a, uint16_t port, uint64_t left,
                       announce_event_t ev)
{
    announce_t r;
    memset(&r, 0, sizeof(r));
    ih_of(swarm, r.info_hash);
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

/* IPv6 peer 2001:db8::a (a in the last 4 bytes). */
static announce_t req6(uint32_t swarm, uint32_t a, uint16_t port, uint64_t left,
                       announce_event_t ev)
{
    announce_t r = req4(swarm, 0, port, left, ev);
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

/* The compact record a request's peer should appear as. */
static void compact_of(const announce_t *r, uint8_t *rec)
{
    size_t al = r->peer.family == 6 ? 16 : 4;
    memcpy(rec, r->peer.addr, al);
    rec[al] = (uint8_t)(r->peer.port >> 8);
    rec[al + 1] = (uint8_t)r->peer.port;
}

static repo_result_t ann(fx_t *f, const announce_t *r, uint32_t now, size_t numwant)
{
    repo_result_t res;
    memset(f->out, 0xee, sizeof(f->out));
    assert_int_equal(repo_announce(f->repo, r, now, numwant, f->out, &res), REPO_OK);
    assert_true(res.n_peers <= numwant);
    return res;
}

static swarm_stats_t scrape(fx_t *f, uint32_t swarm)
{
    uint8_t ih[SHOAL_HASH_LEN];
    ih_of(swarm, ih);
    swarm_stats_t s;
    memset(&s, 0xff, sizeof(s));
    repo_scrape(f->repo, ih, &s);
    return s;
}

static void assert_stats(swarm_stats_t s, uint32_t seeders, uint32_t leechers, uint32_t done)
{
    assert_int_equal(s.seeders, seeders);
    assert_int_equal(s.leechers, leechers);
    assert_int_equal(s.downloaded, done);
}

static repo_totals_t totals(fx_t *f)
{
    repo_totals_t t;
    repo_totals(f->repo, &t);
    return t;
}

/* Does rec (rl bytes) occur among the n records of out? */
static size_t count_rec(const uint8_t *out, size_t n, const uint8_t *rec, size_t rl)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += memcmp(out + i * rl, rec, rl) == 0;
    return c;
}

/* ---- life cycle --------------------------------------------------------------------------- */

static void new_repo_has_requested_stripes(void **state)
{
    fx_t *f = *state;
    assert_int_equal(repo_stripes(f->repo), 16);
}

static void new_refuses_more_than_16_stripe_bits(void **state)
{
    (void)state;
    assert_null(repo_new(17, NULL));
    repo_t *r = repo_new(0, NULL);
    assert_non_null(r);
    assert_int_equal(repo_stripes(r), 1);
    repo_destroy(&r);
    assert_null(r);
    repo_destroy(&r); /* NULL-safe */
    repo_destroy(NULL);
}

static void default_limits_are_documented_values(void **state)
{
    (void)state;
    assert_int_equal(repo_default_limits.max_torrents, 5000000);
    assert_int_equal(repo_default_limits.max_peers_per_swarm, 100000);
    assert_int_equal(repo_default_limits.memory_budget, UINT64_C(4) << 30);
    assert_int_equal(repo_default_limits.peer_timeout_s, 45 * 60);
}

static void empty_repo_has_zero_totals(void **state)
{
    fx_t *f = *state;
    repo_totals_t t = totals(f);
    assert_int_equal(t.torrents, 0);
    assert_int_equal(t.peers, 0);
    assert_int_equal(t.seeders, 0);
    assert_stats(scrape(f, 1), 0, 0, 0);
}

/* ---- events and counts -------------------------------------------------------------------- */

static void started_with_left_adds_leecher(void **state)
{
    fx_t *f = *state;
    announce_t r = req4(1, 1, 6881, 100, ANNOUNCE_STARTED);
    repo_result_t res = ann(f, &r, 1000, 50);
    assert_true(res.stored);
    assert_stats(res.stats, 0, 1, 0);
    assert_stats(scrape(f, 1), 0, 1, 0);
    repo_totals_t t = totals(f);
    assert_int_equal(t.torrents, 1);
    assert_int_equal(t.peers, 1);
    assert_int_equal(t.seeders, 0);
    assert_true(t.bytes > 0);
}

static void started_with_left_zero_adds_seeder(void **state)
{
    fx_t *f = *state;
    announce_t r = req4(1, 1, 6881, 0, ANNOUNCE_STARTED);
    repo_result_t res = ann(f, &r, 1000, 50);
    assert_true(res.stored);
    assert_stats(res.stats, 1, 0, 0);
    assert_int_equal(totals(f).seeders, 1);
}

static void none_event_on_unknown_peer_adds_it(void **state)
{
    fx_t *f = *state;
    announce_t r = req4(1, 1, 6881, 5, ANNOUNCE_NONE);
    repo_result_t res = ann(f, &r, 1000, 50);
    assert_true(res.stored);
    assert_stats(res.stats, 0, 1, 0);
}

static void reannounce_does_not_duplicate(void **state)
{
    fx_t *f = *state;
    announce_t r = req4(1, 1, 6881, 5, ANNOUNCE_STARTED);
    ann(f, &r, 1000, 50);
    r.event = ANNOUNCE_NONE;
    repo_result_t res = ann(f, &r, 1001, 50);
    assert_true(res.stored);
    assert_stats(res.stats, 0, 1, 0);
    r.event = ANNOUNCE_STARTED;
    res = ann(f, &r, 1002, 50);
    assert_stats(res.stats, 0, 1, 0);
    assert_int_equal(totals(f).peers, 1);
}

static void leecher_becomes_seeder(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 3; i++) {
        announce_t r = req4(1, i, 6881, 10, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 50);
    }
    announce_t r = req4(1, 1, 6881, 0, ANNOUNCE_NONE);
    repo_result_t res = ann(f, &r, 1001, 50);
    assert_stats(res.stats, 1, 2, 0);
    assert_int_equal(totals(f).seeders, 1);
    assert_int_equal(totals(f).peers, 3);
}

static void seeder_becomes_leecher(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 3; i++) {
        announce_t r = req4(1, i, 6881, 0, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 50);
    }
    announce_t r = req4(1, 2, 6881, 7, ANNOUNCE_NONE);
    repo_result_t res = ann(f, &r, 1001, 50);
    assert_stats(res.stats, 2, 1, 0);
    assert_int_equal(totals(f).seeders, 2);
    /* and back */
    r.left = 0;
    res = ann(f, &r, 1002, 50);
    assert_stats(res.stats, 3, 0, 0);
    assert_int_equal(totals(f).seeders, 3);
}

static void transitions_keep_partition_consistent(void **state)
{
    fx_t *f = *state;
    /* Flip peers back and forth in a mixed swarm; a seeder must then get exactly the
     * leechers. */
    for (uint32_t i = 0; i < 20; i++) {
        announce_t r = req4(1, i, 1, i % 2 ? 0 : 9, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 50);
    }
    for (uint32_t round = 0; round < 5; round++)
        for (uint32_t i = 0; i < 20; i += 3) {
            announce_t r = req4(1, i, 1, (i + round) % 2 ? 0 : 9, ANNOUNCE_NONE);
            ann(f, &r, 1000, 50);
        }
    /* Final state: i in 0,3,..,18 has left by (i + 4) % 2, the others by i % 2. */
    uint32_t leechers = 0;
    for (uint32_t i = 0; i < 20; i++)
        leechers += (i % 3 == 0 ? (i + 4) % 2 : i % 2) == 0;
    announce_t q = req4(1, 100, 1, 0, ANNOUNCE_STARTED); /* a new seeder */
    repo_result_t res = ann(f, &q, 1000, 50);
    assert_stats(res.stats, 21 - leechers, leechers, 0);
    assert_int_equal(res.n_peers, leechers);
    for (uint32_t i = 0; i < 20; i++) {
        announce_t r = req4(1, i, 1, 0, ANNOUNCE_NONE);
        uint8_t rec[6];
        compact_of(&r, rec);
        bool leech = (i % 3 == 0 ? (i + 4) % 2 : i % 2) == 0;
        assert_int_equal(count_rec(f->out, res.n_peers, rec, 6), leech ? 1 : 0);
    }
}

static void completed_counts_once_per_peer(void **state)
{
    fx_t *f = *state;
    announce_t a = req4(1, 1, 6881, 0, ANNOUNCE_COMPLETED);
    repo_result_t res = ann(f, &a, 1000, 50);
    assert_true(res.stored);
    assert_stats(res.stats, 1, 0, 1);
    res = ann(f, &a, 1001, 50); /* repeated completed from the same peer */
    assert_stats(res.stats, 1, 0, 1);
    announce_t b = req4(1, 2, 6881, 10, ANNOUNCE_STARTED);
    ann(f, &b, 1002, 50);
    b.event = ANNOUNCE_COMPLETED;
    b.left = 0;
    res = ann(f, &b, 1003, 50);
    assert_stats(res.stats, 2, 0, 2);
    assert_stats(scrape(f, 1), 2, 0, 2);
}

static void completed_flag_survives_moves(void **state)
{
    fx_t *f = *state;
    /* Peer 5 completes, then many others come and go around it (swaps move records). */
    announce_t p = req4(1, 5, 1, 0, ANNOUNCE_COMPLETED);
    ann(f, &p, 1000, 0);
    for (uint32_t i = 10; i < 60; i++) {
        announce_t r = req4(1, i, 1, i % 2, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 0);
    }
    for (uint32_t i = 10; i < 60; i += 2) {
        announce_t r = req4(1, i, 1, 1, ANNOUNCE_STOPPED);
        ann(f, &r, 1000, 0);
    }
    repo_result_t res = ann(f, &p, 1001, 0);
    assert_int_equal(res.stats.downloaded, 1);
}

static void completed_counts_again_after_stop(void **state)
{
    fx_t *f = *state;
    announce_t a = req4(1, 1, 6881, 0, ANNOUNCE_COMPLETED);
    ann(f, &a, 1000, 50);
    a.event = ANNOUNCE_STOPPED;
    ann(f, &a, 1001, 50);
    a.event = ANNOUNCE_COMPLETED;
    repo_result_t res = ann(f, &a, 1002, 50);
    assert_stats(res.stats, 1, 0, 2);
}

static void stopped_removes_peer(void **state)
{
    fx_t *f = *state;
    announce_t a = req4(1, 1, 6881, 0, ANNOUNCE_STARTED);
    announce_t b = req4(1, 2, 6881, 3, ANNOUNCE_STARTED);
    ann(f, &a, 1000, 50);
    ann(f, &b, 1000, 50);
    a.event = ANNOUNCE_STOPPED;
    repo_result_t res = ann(f, &a, 1001, 50);
    assert_false(res.stored);
    assert_int_equal(res.n_peers, 0);
    assert_stats(res.stats, 0, 1, 0);
    assert_int_equal(totals(f).peers, 1);
    assert_int_equal(totals(f).seeders, 0);
    /* stopping twice changes nothing */
    res = ann(f, &a, 1002, 50);
    assert_stats(res.stats, 0, 1, 0);
}

static void stopped_peer_gets_no_peers(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 5; i++) {
        announce_t r = req4(1, i, 6881, 3, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 50);
    }
    announce_t s = req4(1, 77, 6881, 3, ANNOUNCE_STOPPED); /* never announced before */
    repo_result_t res = ann(f, &s, 1000, 50);
    assert_false(res.stored);
    assert_int_equal(res.n_peers, 0);
    assert_stats(res.stats, 0, 5, 0);
}

static void stopped_on_unknown_swarm_does_not_create_it(void **state)
{
    fx_t *f = *state;
    announce_t a = req4(9, 1, 6881, 0, ANNOUNCE_STOPPED);
    repo_result_t res = ann(f, &a, 1000, 50);
    assert_false(res.stored);
    assert_int_equal(res.n_peers, 0);
    assert_stats(res.stats, 0, 0, 0);
    assert_stats(scrape(f, 9), 0, 0, 0);
    repo_totals_t t = totals(f);
    assert_int_equal(t.torrents, 0);
    assert_int_equal(t.bytes, 0);
}

/* ---- selection ---------------------------------------------------------------------------- */

static void lone_peer_gets_no_peers(void **state)
{
    fx_t *f = *state;
    announce_t a = req4(1, 1, 6881, 5, ANNOUNCE_STARTED);
    repo_result_t res = ann(f, &a, 1000, 50);
    assert_int_equal(res.n_peers, 0);
    res = ann(f, &a, 1001, 50);
    assert_int_equal(res.n_peers, 0);
    a.left = 0; /* alone as a seeder too */
    res = ann(f, &a, 1002, 50);
    assert_int_equal(res.n_peers, 0);
}

static void two_peers_see_each_other_byte_exact(void **state)
{
    fx_t *f = *state;
    announce_t a = req4(1, 0x000102, 6881, 5, ANNOUNCE_STARTED);  /* 10.0.1.2:6881 */
    announce_t b = req4(1, 0x030405, 51413, 5, ANNOUNCE_STARTED); /* 10.3.4.5:51413 */
    ann(f, &a, 1000, 50);
    repo_result_t res = ann(f, &b, 1000, 50);
    assert_int_equal(res.n_peers, 1);
    static const uint8_t want_a[6] = {10, 0, 1, 2, 0x1a, 0xe1};
    assert_memory_equal(f->out, want_a, 6);
    res = ann(f, &a, 1001, 50);
    assert_int_equal(res.n_peers, 1);
    static const uint8_t want_b[6] = {10, 3, 4, 5, 0xc8, 0xd5};
    assert_memory_equal(f->out, want_b, 6);
}

static void seeder_gets_only_leechers(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 30; i++) {
        announce_t r = req4(1, i, 6881, i < 10 ? 5 : 0, ANNOUNCE_STARTED); /* 10 leechers */
        ann(f, &r, 1000, 0);
    }
    for (int k = 0; k < 50; k++) {
        announce_t s = req4(1, 15, 6881, 0, ANNOUNCE_NONE);
        repo_result_t res = ann(f, &s, 1001, 200);
        assert_int_equal(res.n_peers, 10);
        for (uint32_t i = 0; i < 30; i++) {
            announce_t r = req4(1, i, 6881, 0, ANNOUNCE_NONE);
            uint8_t rec[6];
            compact_of(&r, rec);
            assert_int_equal(count_rec(f->out, res.n_peers, rec, 6), i < 10 ? 1 : 0);
        }
    }
}

static void seeder_with_no_leechers_gets_nothing(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 5; i++) {
        announce_t r = req4(1, i, 6881, 0, ANNOUNCE_STARTED);
        repo_result_t res = ann(f, &r, 1000, 50);
        assert_int_equal(res.n_peers, 0);
    }
}

static void leecher_gets_seeders_and_leechers(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 8; i++) {
        announce_t r = req4(1, i, 6881, i < 4 ? 5 : 0, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 0);
    }
    announce_t l = req4(1, 2, 6881, 5, ANNOUNCE_NONE);
    repo_result_t res = ann(f, &l, 1001, 50);
    assert_int_equal(res.n_peers, 7);
    for (uint32_t i = 0; i < 8; i++) {
        announce_t r = req4(1, i, 6881, 0, ANNOUNCE_NONE);
        uint8_t rec[6];
        compact_of(&r, rec);
        assert_int_equal(count_rec(f->out, res.n_peers, rec, 6), i == 2 ? 0 : 1);
    }
}

static void numwant_is_respected(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 50; i++) {
        announce_t r = req4(1, i, 6881, 5, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 0);
    }
    announce_t l = req4(1, 3, 6881, 5, ANNOUNCE_NONE);
    assert_int_equal(ann(f, &l, 1001, 7).n_peers, 7);
    assert_int_equal(f->out[7 * 6], 0xee); /* nothing written past numwant records */
    assert_int_equal(ann(f, &l, 1001, 0).n_peers, 0);
    assert_int_equal(ann(f, &l, 1001, 1).n_peers, 1);
    assert_int_equal(ann(f, &l, 1001, 49).n_peers, 49);
    assert_int_equal(ann(f, &l, 1001, 200).n_peers, 49);
    repo_result_t res;
    assert_int_equal(repo_announce(f->repo, &l, 1001, 0, NULL, &res), REPO_OK);
    assert_int_equal(res.n_peers, 0);
}

static void selection_is_random_and_covers_every_peer(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 100; i++) {
        announce_t r = req4(1, i, 6881, 5, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 0);
    }
    unsigned seen[100] = {0};
    unsigned first_changes = 0;
    uint8_t first[6] = {0};
    for (int k = 0; k < 500; k++) {
        announce_t l = req4(1, 42, 6881, 5, ANNOUNCE_NONE);
        repo_result_t res = ann(f, &l, 1001, 10);
        assert_int_equal(res.n_peers, 10);
        if (k > 0 && memcmp(first, f->out, 6) != 0)
            first_changes++;
        memcpy(first, f->out, 6);
        for (size_t j = 0; j < res.n_peers; j++) {
            const uint8_t *p = f->out + j * 6;
            assert_int_equal(p[0], 10);
            uint32_t id = (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            assert_true(id < 100);
            seen[id]++;
        }
    }
    for (uint32_t i = 0; i < 100; i++)
        if (i != 42)
            assert_true(seen[i] > 0);
    assert_int_equal(seen[42], 0);
    assert_true(first_changes > 400);
}

static void reply_records_are_real_distinct_peers(void **state)
{
    fx_t *f = *state;
    /* 300 peers, mixed; a leecher asking for 200 gets 200 distinct real records. */
    for (uint32_t i = 0; i < 300; i++) {
        announce_t r = req4(1, i * 7919, (uint16_t)(1000 + i), i % 3 ? 5 : 0, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 0);
    }
    for (int k = 0; k < 20; k++) {
        announce_t l = req4(1, 11 * 7919, 1011, 5, ANNOUNCE_NONE);
        repo_result_t res = ann(f, &l, 1001, 200);
        assert_int_equal(res.n_peers, 200);
        for (size_t j = 0; j < res.n_peers; j++) {
            const uint8_t *p = f->out + j * 6;
            assert_int_equal(count_rec(f->out, res.n_peers, p, 6), 1);
            uint32_t a = (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            uint16_t port = (uint16_t)(p[4] << 8 | p[5]);
            assert_int_equal(p[0], 10);
            assert_int_equal(a % 7919, 0);
            assert_int_equal(port, 1000 + a / 7919);
            assert_int_not_equal(a / 7919, 11);
        }
    }
}

/* ---- identity and families ---------------------------------------------------------------- */

static void same_address_different_port_is_another_peer(void **state)
{
    fx_t *f = *state;
    announce_t a = req4(1, 1, 6881, 5, ANNOUNCE_STARTED);
    announce_t b = req4(1, 1, 6882, 5, ANNOUNCE_STARTED);
    ann(f, &a, 1000, 50);
    repo_result_t res = ann(f, &b, 1000, 50);
    assert_stats(res.stats, 0, 2, 0);
    assert_int_equal(res.n_peers, 1);
    uint8_t rec[6];
    compact_of(&a, rec);
    assert_memory_equal(f->out, rec, 6);
}

static void peer_id_is_not_identity(void **state)
{
    fx_t *f = *state;
    announce_t a = req4(1, 1, 6881, 5, ANNOUNCE_STARTED);
    memset(a.peer_id, 1, sizeof(a.peer_id));
    ann(f, &a, 1000, 50);
    memset(a.peer_id, 2, sizeof(a.peer_id));
    repo_result_t res = ann(f, &a, 1000, 50);
    assert_stats(res.stats, 0, 1, 0);
}

static void families_are_kept_apart(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 5; i++) {
        announce_t r = req4(1, i, 6881, i % 2, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 0);
    }
    for (uint32_t i = 0; i < 4; i++) {
        announce_t r = req6(1, i, 6881, 5, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 0);
    }
    /* v4: 3 seeders (i = 0, 2, 4 have left 0), 2 leechers; v6: 4 leechers */
    announce_t q6 = req6(1, 99, 7000, 5, ANNOUNCE_STARTED);
    repo_result_t res = ann(f, &q6, 1001, 50);
    assert_int_equal(res.n_peers, 4);
    assert_stats(res.stats, 3, 7, 0);
    for (uint32_t i = 0; i < 4; i++) {
        announce_t r = req6(1, i, 6881, 5, ANNOUNCE_NONE);
        uint8_t rec[18];
        compact_of(&r, rec);
        assert_int_equal(count_rec(f->out, res.n_peers, rec, 18), 1);
    }
    announce_t q4 = req4(1, 99, 7000, 5, ANNOUNCE_STARTED);
    res = ann(f, &q4, 1001, 50);
    assert_int_equal(res.n_peers, 5);
    assert_stats(res.stats, 3, 8, 0);
    for (size_t j = 0; j < res.n_peers; j++)
        assert_int_equal(f->out[j * 6], 10);
    assert_stats(scrape(f, 1), 3, 8, 0);
    assert_int_equal(totals(f).peers, 11);
}

static void ipv6_seeder_gets_only_ipv6_leechers(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 6; i++) {
        announce_t r = req6(1, i, 6881, i < 2 ? 5 : 0, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 0);
        announce_t r4 = req4(1, i, 6881, 5, ANNOUNCE_STARTED);
        ann(f, &r4, 1000, 0);
    }
    announce_t s = req6(1, 4, 6881, 0, ANNOUNCE_NONE);
    repo_result_t res = ann(f, &s, 1001, 50);
    assert_int_equal(res.n_peers, 2);
    uint8_t rec[18];
    announce_t l0 = req6(1, 0, 6881, 5, ANNOUNCE_NONE);
    compact_of(&l0, rec);
    assert_int_equal(count_rec(f->out, 2, rec, 18), 1);
    static const uint8_t want1[18] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,    0,
                                      0,    0,    0,    0,    0, 0, 1, 0x1a, 0xe1};
    assert_int_equal(count_rec(f->out, 2, want1, 18), 1);
}

static void ipv6_only_swarm_and_stop(void **state)
{
    fx_t *f = *state;
    announce_t a = req6(3, 1, 1, 0, ANNOUNCE_COMPLETED);
    repo_result_t res = ann(f, &a, 1000, 50);
    assert_true(res.stored);
    assert_stats(res.stats, 1, 0, 1);
    a.event = ANNOUNCE_STOPPED;
    res = ann(f, &a, 1001, 50);
    assert_stats(res.stats, 0, 0, 1);
    assert_int_equal(totals(f).peers, 0);
    assert_int_equal(repo_expire(f->repo, 1002), 0);
    assert_stats(scrape(f, 3), 0, 0, 0); /* empty swarm removed by the sweep */
    assert_int_equal(totals(f).torrents, 0);
}

/* ---- expiry ------------------------------------------------------------------------------- */

static void peer_expires_exactly_at_timeout(void **state)
{
    fx_t *f = *state;
    announce_t a = req4(1, 1, 6881, 5, ANNOUNCE_STARTED);
    announce_t b = req4(1, 2, 6881, 0, ANNOUNCE_STARTED);
    ann(f, &a, 1000, 0);
    ann(f, &b, 1010, 0);
    assert_int_equal(repo_expire(f->repo, 1059), 0); /* 1000 + 60 > 1059 */
    assert_stats(scrape(f, 1), 1, 1, 0);
    assert_int_equal(repo_expire(f->repo, 1060), 1); /* 1000 + 60 <= 1060 */
    assert_stats(scrape(f, 1), 1, 0, 0);
    assert_int_equal(totals(f).peers, 1);
    assert_int_equal(repo_expire(f->repo, 1069), 0);
    assert_int_equal(repo_expire(f->repo, 1070), 1);
    assert_int_equal(totals(f).peers, 0);
    assert_int_equal(totals(f).seeders, 0);
}

static void reannounce_postpones_expiry(void **state)
{
    fx_t *f = *state;
    announce_t a = req4(1, 1, 6881, 5, ANNOUNCE_STARTED);
    ann(f, &a, 1000, 0);
    a.event = ANNOUNCE_NONE;
    ann(f, &a, 1050, 0);
    assert_int_equal(repo_expire(f->repo, 1100), 0);
    assert_int_equal(repo_expire(f->repo, 1110), 1);
}

static void empty_swarm_is_removed_by_expiry(void **state)
{
    fx_t *f = *state;
    announce_t a = req4(1, 1, 6881, 0, ANNOUNCE_COMPLETED);
    ann(f, &a, 1000, 0);
    announce_t b = req4(2, 1, 6881, 0, ANNOUNCE_STARTED);
    ann(f, &b, 1030, 0);
    assert_int_equal(totals(f).torrents, 2);
    uint64_t bytes2 = totals(f).bytes;
    assert_int_equal(repo_expire(f->repo, 1060), 1);
    assert_stats(scrape(f, 1), 0, 0, 0);
    assert_stats(scrape(f, 2), 1, 0, 0);
    repo_totals_t t = totals(f);
    assert_int_equal(t.torrents, 1);
    assert_int_equal(t.peers, 1);
    assert_true(t.bytes < bytes2);
    assert_int_equal(repo_expire(f->repo, 1090), 1);
    t = totals(f);
    assert_int_equal(t.torrents, 0);
    assert_int_equal(t.peers, 0);
    assert_int_equal(t.bytes, 0);
}

static void expire_stripe_out_of_range_does_nothing(void **state)
{
    fx_t *f = *state;
    announce_t a = req4(1, 1, 6881, 0, ANNOUNCE_STARTED);
    ann(f, &a, 1000, 0);
    assert_int_equal(repo_expire_stripe(f->repo, 16, 5000), 0);
    assert_int_equal(repo_expire_stripe(f->repo, SIZE_MAX, 5000), 0);
    size_t removed = 0;
    for (size_t i = 0; i < repo_stripes(f->repo); i++)
        removed += repo_expire_stripe(f->repo, i, 5000);
    assert_int_equal(removed, 1);
}

static void expiry_spares_fresh_peers_in_big_swarm(void **state)
{
    fx_t *f = *state;
    /* 1000 peers, the odd ones refreshed later: expiry keeps exactly those, the index stays
     * right (re-announcing them does not duplicate) and seeder counts follow. */
    for (uint32_t i = 0; i < 1000; i++) {
        announce_t r = req4(1, i, 6881, i % 4 ? 5 : 0, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 0);
    }
    for (uint32_t i = 1; i < 1000; i += 2) {
        announce_t r = req4(1, i, 6881, i % 4 ? 5 : 0, ANNOUNCE_NONE);
        ann(f, &r, 1030, 0);
    }
    assert_int_equal(repo_expire(f->repo, 1060), 500);
    assert_stats(scrape(f, 1), 0, 500, 0); /* odd i: i % 4 != 0, all leechers */
    for (uint32_t i = 0; i < 1000; i++) {
        announce_t r = req4(1, i, 6881, 0, ANNOUNCE_NONE);
        ann(f, &r, 1061, 0);
    }
    assert_stats(scrape(f, 1), 1000, 0, 0);
    assert_int_equal(totals(f).seeders, 1000);
}

static void long_gap_without_sweep_still_expires(void **state)
{
    fx_t *f = *state;
    /* No sweep for far longer than 2^15 ticks: the stored times must not wrap. */
    announce_t a = req4(1, 1, 6881, 5, ANNOUNCE_STARTED);
    ann(f, &a, 1000, 0);
    assert_int_equal(repo_expire(f->repo, 1000 + 40000), 1);
    ann(f, &a, 2000000, 0);
    announce_t b = req4(1, 2, 6881, 5, ANNOUNCE_STARTED);
    repo_result_t res = ann(f, &b, 2000000 + 70000, 50);
    /* a had expired long ago; the announce path drops it rather than hand it out */
    assert_int_equal(res.n_peers, 0);
    assert_stats(res.stats, 0, 1, 0);
    assert_int_equal(totals(f).peers, 1);
    assert_int_equal(repo_expire(f->repo, 2000000 + 70059), 0);
    assert_int_equal(repo_expire(f->repo, 2000000 + 70060), 1);
}

static void late_now_from_another_thread_does_not_expire_early(void **state)
{
    fx_t *f = *state;
    /* Workers read the clock before locking: a slightly older now may arrive after a newer. */
    announce_t a = req4(1, 1, 6881, 5, ANNOUNCE_STARTED);
    ann(f, &a, 1000, 0);
    announce_t b = req4(1, 2, 6881, 5, ANNOUNCE_STARTED);
    ann(f, &b, 999, 0);
    assert_int_equal(repo_expire(f->repo, 1058), 0);
    assert_int_equal(repo_expire(f->repo, 1059), 1);
    assert_int_equal(repo_expire(f->repo, 1060), 1);
}

static void zero_timeout_expires_at_next_sweep(void **state)
{
    (void)state;
    repo_limits_t lim = small_limits;
    lim.peer_timeout_s = 0;
    repo_t *r = repo_new(2, &lim);
    assert_non_null(r);
    announce_t a = req4(1, 1, 6881, 5, ANNOUNCE_STARTED);
    repo_result_t res;
    assert_int_equal(repo_announce(r, &a, 1000, 0, NULL, &res), REPO_OK);
    assert_true(res.stored);
    assert_int_equal(repo_expire(r, 1000), 1);
    repo_destroy(&r);
}

static void coarse_ticks_never_expire_before_timeout(void **state)
{
    (void)state;
    /* A timeout beyond 2^14 s uses coarser ticks: expiry may be late by two ticks, never
     * early. */
    repo_limits_t lim = small_limits;
    lim.peer_timeout_s = 100000;
    repo_t *r = repo_new(2, &lim);
    assert_non_null(r);
    repo_result_t res;
    for (uint32_t i = 0; i < 64; i++) {
        announce_t a = req4(1, i, 6881, 5, ANNOUNCE_STARTED);
        assert_int_equal(repo_announce(r, &a, 1000 + i, 0, NULL, &res), REPO_OK);
    }
    assert_int_equal(repo_expire(r, 1000 + 100000 - 1), 0);
    assert_int_equal(repo_expire(r, 1000 + 100000 + 63 + 64), 64);
    repo_destroy(&r);
}

/* ---- bounds ------------------------------------------------------------------------------- */

static int setup_max_torrents(void **state)
{
    repo_limits_t lim = small_limits;
    lim.max_torrents = 3;
    return setup_with(state, 1, &lim);
}

static void max_torrents_refuses_new_swarm_only(void **state)
{
    fx_t *f = *state;
    for (uint32_t s = 0; s < 3; s++) {
        announce_t r = req4(s, 1, 6881, 5, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 0);
    }
    announce_t n = req4(3, 1, 6881, 5, ANNOUNCE_STARTED);
    repo_result_t res;
    assert_int_equal(repo_announce(f->repo, &n, 1000, 50, f->out, &res), REPO_ERR_FULL);
    assert_false(res.stored);
    assert_int_equal(res.n_peers, 0);
    assert_stats(scrape(f, 3), 0, 0, 0);
    assert_int_equal(totals(f).torrents, 3);
    /* existing swarms keep working */
    announce_t e = req4(1, 2, 6881, 5, ANNOUNCE_STARTED);
    res = ann(f, &e, 1000, 50);
    assert_true(res.stored);
    assert_int_equal(res.n_peers, 1);
    /* a stop for an unknown swarm is still fine */
    n.event = ANNOUNCE_STOPPED;
    assert_int_equal(repo_announce(f->repo, &n, 1000, 50, f->out, &res), REPO_OK);
    /* room again once a swarm expires */
    announce_t keep = req4(0, 1, 6881, 5, ANNOUNCE_NONE);
    ann(f, &keep, 1050, 0);
    announce_t keep2 = req4(1, 1, 6881, 5, ANNOUNCE_NONE);
    ann(f, &keep2, 1050, 0);
    assert_int_equal(repo_expire(f->repo, 1060), 2); /* swarm 2's peer, swarm 1's peer 2 */
    assert_int_equal(totals(f).torrents, 2);
    n.event = ANNOUNCE_STARTED;
    assert_int_equal(repo_announce(f->repo, &n, 1060, 50, f->out, &res), REPO_OK);
    assert_true(res.stored);
}

static int setup_max_peers(void **state)
{
    repo_limits_t lim = small_limits;
    lim.max_peers_per_swarm = 4;
    return setup_with(state, 2, &lim);
}

static void max_peers_per_swarm_stops_storing(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 4; i++) {
        announce_t r = req4(1, i, 6881, i ? 5 : 0, ANNOUNCE_STARTED);
        assert_true(ann(f, &r, 1000, 0).stored);
    }
    announce_t x = req4(1, 50, 6881, 5, ANNOUNCE_STARTED);
    repo_result_t res = ann(f, &x, 1000, 50);
    assert_false(res.stored);
    assert_int_equal(res.n_peers, 4); /* still answered, with all four */
    assert_stats(res.stats, 1, 3, 0);
    assert_int_equal(totals(f).peers, 4);
    /* an unstored seeder gets the leechers only */
    x.left = 0;
    res = ann(f, &x, 1000, 50);
    assert_false(res.stored);
    assert_int_equal(res.n_peers, 3);
    /* known peers still refresh, and a stop makes room */
    announce_t k = req4(1, 2, 6881, 0, ANNOUNCE_NONE);
    res = ann(f, &k, 1001, 50);
    assert_true(res.stored);
    assert_stats(res.stats, 2, 2, 0);
    k.event = ANNOUNCE_STOPPED;
    ann(f, &k, 1001, 50);
    x.left = 5;
    res = ann(f, &x, 1001, 50);
    assert_true(res.stored);
    assert_stats(res.stats, 1, 3, 0);
}

static void max_peers_applies_per_family(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 4; i++) {
        announce_t r = req4(1, i, 6881, 5, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 0);
    }
    for (uint32_t i = 0; i < 5; i++) {
        announce_t r = req6(1, i, 6881, 5, ANNOUNCE_STARTED);
        assert_int_equal(ann(f, &r, 1000, 0).stored, i < 4);
    }
    assert_stats(scrape(f, 1), 0, 8, 0);
}

static void unstored_completed_still_counts(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 4; i++) {
        announce_t r = req4(1, i, 6881, 5, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 0);
    }
    announce_t x = req4(1, 50, 6881, 0, ANNOUNCE_COMPLETED);
    repo_result_t res = ann(f, &x, 1000, 50);
    assert_false(res.stored);
    assert_stats(res.stats, 0, 4, 1);
}

static int setup_tiny_budget(void **state)
{
    repo_limits_t lim = small_limits;
    lim.memory_budget = 4096;
    lim.max_torrents = 1000;
    return setup_with(state, 0, &lim);
}

static void memory_budget_refuses_new_swarms(void **state)
{
    fx_t *f = *state;
    uint32_t s = 0;
    repo_result_t res;
    repo_err_t err = REPO_OK;
    for (; s < 1000; s++) {
        announce_t r = req4(s, 1, 6881, 5, ANNOUNCE_STARTED);
        err = repo_announce(f->repo, &r, 1000, 50, f->out, &res);
        if (err != REPO_OK)
            break;
    }
    assert_int_equal(err, REPO_ERR_FULL);
    assert_true(s > 5);
    repo_totals_t t = totals(f);
    assert_int_equal(t.torrents, s);
    assert_true(t.bytes <= 4096);
    /* existing swarms still answer */
    announce_t r = req4(0, 2, 6881, 5, ANNOUNCE_NONE);
    assert_int_equal(repo_announce(f->repo, &r, 1000, 50, f->out, &res), REPO_OK);
    assert_int_equal(res.n_peers, 1);
}

static void memory_budget_stops_swarm_growth(void **state)
{
    fx_t *f = *state;
    uint32_t stored = 0;
    for (uint32_t i = 0; i < 2000; i++) {
        announce_t r = req4(1, i, 6881, 5, ANNOUNCE_STARTED);
        repo_result_t res = ann(f, &r, 1000, 10);
        stored += res.stored;
        if (i > 0)
            assert_true(res.n_peers > 0);
    }
    assert_true(stored > 10);
    assert_true(stored < 2000);
    assert_stats(scrape(f, 1), 0, stored, 0);
    assert_true(totals(f).bytes <= 4096);
}

/* ---- a large swarm (side index) ----------------------------------------------------------- */

static void large_swarm_counts_stay_exact(void **state)
{
    fx_t *f = *state;
    const uint32_t n = 5000;
    for (uint32_t i = 0; i < n; i++) {
        announce_t r = req4(7, i, (uint16_t)(i % 3 + 1), i % 5 ? 5 : 0, ANNOUNCE_STARTED);
        assert_true(ann(f, &r, 1000, 0).stored);
    }
    assert_stats(scrape(f, 7), n / 5, n - n / 5, 0);
    /* every peer again, swapping seeder and leecher for every other one */
    uint32_t seeders = 0;
    for (uint32_t i = 0; i < n; i++) {
        bool seed = (i % 5 == 0) != (i % 2 == 0);
        announce_t r = req4(7, i, (uint16_t)(i % 3 + 1), seed ? 0 : 5, ANNOUNCE_NONE);
        assert_true(ann(f, &r, 1001, 0).stored);
        seeders += seed;
    }
    assert_stats(scrape(f, 7), seeders, n - seeders, 0);
    assert_int_equal(totals(f).peers, n);
    /* stop half of them */
    for (uint32_t i = 0; i < n; i += 2) {
        bool seed = (i % 5 == 0) != (i % 2 == 0);
        announce_t r = req4(7, i, (uint16_t)(i % 3 + 1), 5, ANNOUNCE_STOPPED);
        ann(f, &r, 1002, 0);
        seeders -= seed;
    }
    assert_stats(scrape(f, 7), seeders, n / 2 - seeders, 0);
    /* the remaining half is still found (no duplicates), the stopped one is not */
    for (uint32_t i = 0; i < n; i++) {
        bool seed = (i % 5 == 0) != (i % 2 == 0);
        announce_t r = req4(7, i, (uint16_t)(i % 3 + 1), seed ? 0 : 5, ANNOUNCE_NONE);
        if (i % 2)
            ann(f, &r, 1003, 0);
    }
    assert_stats(scrape(f, 7), seeders, n / 2 - seeders, 0);
    repo_totals_t t = totals(f);
    assert_int_equal(t.peers, n / 2);
    assert_int_equal(t.seeders, seeders);
}

static void large_swarm_reply_is_distinct_real_peers(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 3000; i++) {
        announce_t r = req4(7, i, 6881, i % 2 ? 5 : 0, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 0);
    }
    for (uint32_t i = 0; i < 3000; i += 3) {
        announce_t r = req4(7, i, 6881, 5, ANNOUNCE_STOPPED);
        ann(f, &r, 1000, 0);
    }
    for (int k = 0; k < 10; k++) {
        announce_t q = req4(7, 1, 6881, 0, ANNOUNCE_NONE); /* a seeder: leechers only */
        repo_result_t res = ann(f, &q, 1001, 200);
        assert_int_equal(res.n_peers, 200);
        for (size_t j = 0; j < res.n_peers; j++) {
            const uint8_t *p = f->out + j * 6;
            uint32_t id = (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
            assert_int_equal(id % 2, 1);     /* a leecher */
            assert_int_not_equal(id % 3, 0); /* not stopped */
            assert_int_not_equal(id, 1);
            assert_int_equal(count_rec(f->out, res.n_peers, p, 6), 1);
        }
    }
}

static void large_ipv6_swarm_counts_stay_exact(void **state)
{
    fx_t *f = *state;
    for (uint32_t i = 0; i < 2000; i++) {
        announce_t r = req6(7, i, 6881, i % 2, ANNOUNCE_STARTED);
        ann(f, &r, 1000, 0);
    }
    for (uint32_t i = 0; i < 2000; i++) {
        announce_t r = req6(7, i, 6881, i % 2, i % 4 == 0 ? ANNOUNCE_STOPPED : ANNOUNCE_NONE);
        ann(f, &r, 1001, 0);
    }
    assert_stats(scrape(f, 7), 500, 1000, 0);
    assert_int_equal(repo_expire(f->repo, 1061), 1500);
    assert_stats(scrape(f, 7), 0, 0, 0);
    assert_int_equal(totals(f).bytes, 0);
}

static void huge_swarm_crosses_to_wide_index_and_back(void **state)
{
    fx_t *f = *state;
    /* Past 65535 records the index needs 32-bit entries; expiry shrinks it back to 16-bit. */
    const uint32_t n = 70000;
    for (uint32_t i = 0; i < n; i++) {
        announce_t r = req4(7, i, 6881, i % 2, ANNOUNCE_STARTED);
        assert_true(ann(f, &r, 1000, 0).stored);
    }
    for (uint32_t i = 0; i < n; i += 3) { /* every third refreshed later */
        announce_t r = req4(7, i, 6881, i % 2, ANNOUNCE_NONE);
        ann(f, &r, 1030, 0);
    }
    assert_stats(scrape(f, 7), n / 2, n / 2, 0);
    for (uint32_t i = 3; i < n; i += 6) { /* the odd refreshed ones (leechers) stop */
        announce_t r = req4(7, i, 6881, 5, ANNOUNCE_STOPPED);
        ann(f, &r, 1030, 0);
    }
    const uint32_t refreshed = (n + 2) / 3, survivors = (n + 5) / 6; /* i % 6 == 0: seeders */
    assert_stats(scrape(f, 7), n / 2, n / 2 - (refreshed - survivors), 0);
    assert_int_equal(repo_expire(f->repo, 1060), n - refreshed);
    assert_stats(scrape(f, 7), survivors, 0, 0);
    for (uint32_t i = 0; i < n; i += 6) { /* still found, not duplicated */
        announce_t r = req4(7, i, 6881, 0, ANNOUNCE_NONE);
        ann(f, &r, 1061, 0);
    }
    assert_stats(scrape(f, 7), survivors, 0, 0);
    assert_int_equal(totals(f).peers, survivors);
}

static void many_swarms_grow_and_shrink_table(void **state)
{
    (void)state;
    repo_limits_t lim = small_limits;
    lim.max_torrents = 5000;
    repo_t *r = repo_new(1, &lim);
    assert_non_null(r);
    repo_result_t res;
    for (uint32_t s = 0; s < 5000; s++) {
        announce_t a = req4(s, s, 6881, 5, ANNOUNCE_STARTED);
        assert_int_equal(repo_announce(r, &a, s % 2 ? 1000 : 1030, 0, NULL, &res), REPO_OK);
    }
    for (uint32_t s = 0; s < 5000; s++) {
        swarm_stats_t st;
        uint8_t ih[SHOAL_HASH_LEN];
        ih_of(s, ih);
        repo_scrape(r, ih, &st);
        assert_int_equal(st.leechers, 1);
    }
    assert_int_equal(repo_expire(r, 1060), 2500);
    repo_totals_t t;
    repo_totals(r, &t);
    assert_int_equal(t.torrents, 2500);
    for (uint32_t s = 0; s < 5000; s++) {
        swarm_stats_t st;
        uint8_t ih[SHOAL_HASH_LEN];
        ih_of(s, ih);
        repo_scrape(r, ih, &st);
        assert_int_equal(st.leechers, s % 2 ? 0 : 1);
    }
    assert_int_equal(repo_expire(r, 1090), 2500);
    repo_totals(r, &t);
    assert_int_equal(t.torrents, 0);
    assert_int_equal(t.bytes, 0);
    repo_destroy(&r);
}

/* ---- against a model ---------------------------------------------------------------------- */

#define M_SWARMS 3
#define M_PEERS  400 /* per swarm; every fifth is IPv6 */

typedef struct {
    bool present, seeder, done;
    uint32_t seen;
} mpeer_t;

typedef struct {
    bool exists;
    uint32_t downloaded;
    mpeer_t p[M_PEERS];
} mswarm_t;

static uint64_t lcg(uint64_t *s)
{
    *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return *s >> 33;
}

static announce_t mreq(uint32_t s, uint32_t i, uint64_t left, announce_event_t ev)
{
    return i % 5 == 0 ? req6(s, i, (uint16_t)(i % 7), left, ev)
                      : req4(s, i, (uint16_t)(i % 7), left, ev);
}

static swarm_stats_t mstats(const mswarm_t *m)
{
    swarm_stats_t st = {0, 0, m->exists ? m->downloaded : 0};
    for (uint32_t i = 0; i < M_PEERS; i++)
        if (m->p[i].present) {
            st.seeders += m->p[i].seeder;
            st.leechers += !m->p[i].seeder;
        }
    return st;
}

static void random_operations_match_a_model(void **state)
{
    fx_t *f = *state;
    static mswarm_t m[M_SWARMS];
    memset(m, 0, sizeof(m));
    const uint32_t timeout = small_limits.peer_timeout_s;
    uint64_t rng = 12345;
    uint32_t now = 5000;
    for (uint32_t op = 0; op < 100000; op++) {
        if (lcg(&rng) % 16 == 0)
            now++;
        if (lcg(&rng) % 200 == 0) { /* a sweep */
            size_t want = 0;
            for (uint32_t s = 0; s < M_SWARMS; s++) {
                bool any = false;
                for (uint32_t i = 0; i < M_PEERS; i++) {
                    mpeer_t *p = &m[s].p[i];
                    if (p->present && p->seen + timeout <= now) {
                        p->present = false;
                        want++;
                    }
                    any |= p->present;
                }
                if (!any)
                    m[s].exists = false;
            }
            assert_int_equal(repo_expire(f->repo, now), want);
            continue;
        }
        /* phases that fill swarms up and drain them, across the side index threshold */
        const unsigned stop_pct = (op / 4000) % 2 ? 95 : 8;
        uint32_t s = (uint32_t)(lcg(&rng) % M_SWARMS), i = (uint32_t)(lcg(&rng) % M_PEERS);
        unsigned r = (unsigned)(lcg(&rng) % 100);
        announce_event_t ev = r < stop_pct        ? ANNOUNCE_STOPPED
                              : r < stop_pct + 10 ? ANNOUNCE_COMPLETED
                              : r < stop_pct + 30 ? ANNOUNCE_STARTED
                                                  : ANNOUNCE_NONE;
        uint64_t left = lcg(&rng) % 3 == 0 ? 0 : 5;
        size_t numwant = (size_t)(lcg(&rng) % 61);
        announce_t q = mreq(s, i, left, ev);
        repo_result_t res = ann(f, &q, now, numwant);

        mswarm_t *ms = &m[s];
        mpeer_t *p = &ms->p[i];
        if (ev == ANNOUNCE_STOPPED) {
            p->present = false;
        } else {
            if (!ms->exists)
                *ms = (mswarm_t){.exists = true};
            if (!p->present)
                *p = (mpeer_t){.present = true};
            p->seen = now;
            p->seeder = left == 0;
            if (ev == ANNOUNCE_COMPLETED && !p->done) {
                ms->downloaded++;
                p->done = true;
            }
        }
        assert_int_equal(res.stored, ev != ANNOUNCE_STOPPED);
        swarm_stats_t want = mstats(ms);
        assert_stats(res.stats, want.seeders, want.leechers, want.downloaded);

        /* the reply: right count, distinct present peers of the family, never self, leechers
         * only for a seeder */
        const bool v6 = i % 5 == 0;
        const size_t rl = v6 ? 18 : 6;
        size_t pool = 0;
        for (uint32_t j = 0; j < M_PEERS && ev != ANNOUNCE_STOPPED; j++)
            pool +=
                j != i && (j % 5 == 0) == v6 && ms->p[j].present && (left != 0 || !ms->p[j].seeder);
        assert_int_equal(res.n_peers, pool < numwant ? pool : numwant);
        for (size_t k = 0; k < res.n_peers; k++) {
            const uint8_t *rec = f->out + k * rl;
            uint32_t j = v6 ? (uint32_t)rec[12] << 24 | (uint32_t)rec[13] << 16 |
                                  (uint32_t)rec[14] << 8 | rec[15]
                            : (uint32_t)rec[1] << 16 | (uint32_t)rec[2] << 8 | rec[3];
            assert_true(j < M_PEERS);
            assert_int_not_equal(j, i);
            assert_int_equal(j % 5 == 0, v6);
            assert_true(ms->p[j].present);
            if (left == 0)
                assert_false(ms->p[j].seeder);
            uint8_t exp[18];
            announce_t o = mreq(s, j, 0, ANNOUNCE_NONE);
            compact_of(&o, exp);
            assert_memory_equal(rec, exp, rl);
            assert_int_equal(count_rec(f->out, res.n_peers, rec, rl), 1);
        }
    }
    repo_totals_t t = totals(f);
    uint64_t peers = 0, seeders = 0, torrents = 0;
    for (uint32_t s = 0; s < M_SWARMS; s++) {
        swarm_stats_t st = mstats(&m[s]);
        peers += st.seeders + st.leechers;
        seeders += st.seeders;
        torrents += m[s].exists;
        swarm_stats_t got = scrape(f, s);
        assert_stats(got, st.seeders, st.leechers, st.downloaded);
    }
    assert_int_equal(t.peers, peers);
    assert_int_equal(t.seeders, seeders);
    assert_int_equal(t.torrents, torrents);
}

/* ---- admin lookups ------------------------------------------------------------------------ */

static cmsg_lookup_result_t look, page;

static bool lookup(fx_t *f, uint32_t swarm, uint32_t now, uint32_t offset, uint32_t max,
                   cmsg_lookup_result_t *out)
{
    uint8_t ih[SHOAL_HASH_LEN];
    ih_of(swarm, ih);
    memset(out, 0xa5, sizeof(*out)); /* nothing may be left over from before */
    bool found = repo_lookup(f->repo, ih, now, offset, max, out);
    assert_int_equal(found, out->found);
    assert_true(out->n_peers <= max && out->n_peers <= REPO_LOOKUP_MAX);
    return found;
}

/* Where the peer of request r is in the result, or -1; it must appear at most once. */
static int find_peer(const cmsg_lookup_result_t *x, const announce_t *r)
{
    int at = -1;
    for (size_t i = 0; i < x->n_peers; i++) {
        const cmsg_lookup_peer_t *p = &x->peers[i];
        if (p->family == r->peer.family && p->port == r->peer.port &&
            memcmp(p->addr, r->peer.addr, 16) == 0) {
            assert_int_equal(at, -1);
            at = (int)i;
        }
    }
    return at;
}

static void lookup_of_missing_swarm_is_empty(void **state)
{
    fx_t *f = *state;
    ann(f, &(announce_t){0}, 1, 0); /* a swarm elsewhere (all-zero hash) */
    assert_false(lookup(f, 42, 10, 0, 50, &look));
    assert_int_equal(look.total, 0);
    assert_int_equal(look.offset, 0);
    assert_int_equal(look.n_peers, 0);
    assert_stats(look.stats, 0, 0, 0);
    /* A swarm whose last peer stopped is gone, lookup agrees with scrape. */
    announce_t a = req4(7, 1, 1000, 5, ANNOUNCE_STARTED);
    ann(f, &a, 10, 0);
    assert_true(lookup(f, 7, 10, 0, 50, &look));
    a.event = ANNOUNCE_STOPPED;
    ann(f, &a, 11, 0);
    repo_expire(f->repo, 12);
    assert_false(lookup(f, 7, 12, 0, 50, &look));
    assert_int_equal(look.n_peers, 0);
}

/* 3 IPv4 leechers, 2 IPv4 seeders, 2 IPv6 leechers, 1 IPv6 seeder, announced at known times. */
static void fill_mixed_swarm(fx_t *f, uint32_t swarm, announce_t reqs[8])
{
    for (uint32_t i = 0; i < 8; i++) {
        uint64_t left = (i >= 3 && i < 5) || i == 7 ? 0 : 100;
        reqs[i] = i < 5 ? req4(swarm, 0x10 + i, (uint16_t)(6000 + i), left, ANNOUNCE_STARTED)
                        : req6(swarm, 0x20 + i, (uint16_t)(7000 + i), left, ANNOUNCE_STARTED);
        ann(f, &reqs[i], 100 + i, 0);
    }
}

static void lookup_counts_match_scrape_and_list_every_peer(void **state)
{
    fx_t *f = *state;
    announce_t reqs[8];
    fill_mixed_swarm(f, 9, reqs);
    announce_t done = reqs[3];
    done.event = ANNOUNCE_COMPLETED;
    ann(f, &done, 110, 0); /* downloaded 1; refreshes peer 3 */
    assert_true(lookup(f, 9, 130, 0, 100, &look));
    swarm_stats_t sc = scrape(f, 9);
    assert_stats(look.stats, sc.seeders, sc.leechers, sc.downloaded);
    assert_stats(look.stats, 3, 5, 1);
    assert_int_equal(look.total, 8);
    assert_int_equal(look.offset, 0);
    assert_int_equal(look.n_peers, 8);
    for (uint32_t i = 0; i < 8; i++) {
        int at = find_peer(&look, &reqs[i]);
        assert_true(at >= 0);
        const cmsg_lookup_peer_t *p = &look.peers[at];
        assert_int_equal(p->seeder, reqs[i].left == 0);
        assert_int_equal(p->age_s, i == 3 ? 20 : 130 - (100 + i));
        if (p->family == 4) /* the rest of an IPv4 address is zero */
            for (int b = 4; b < 16; b++)
                assert_int_equal(p->addr[b], 0);
    }
    /* The list's order: IPv4 before IPv6, leechers before seeders within each family. */
    const uint8_t fam[8] = {4, 4, 4, 4, 4, 6, 6, 6};
    const bool seed[8] = {false, false, false, true, true, false, false, true};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(look.peers[i].family, fam[i]);
        assert_int_equal(look.peers[i].seeder, seed[i]);
    }
}

static void lookup_pages_through_both_families(void **state)
{
    fx_t *f = *state;
    announce_t reqs[8];
    fill_mixed_swarm(f, 11, reqs);
    assert_true(lookup(f, 11, 120, 0, REPO_LOOKUP_MAX, &look));
    assert_int_equal(look.n_peers, 8);
    /* Pages of every size concatenate to the whole list, across the IPv4/IPv6 boundary. */
    for (uint32_t size = 1; size <= 9; size++) {
        size_t seen = 0;
        for (uint32_t off = 0; off < 8; off += size) {
            assert_true(lookup(f, 11, 120, off, size, &page));
            assert_int_equal(page.total, 8);
            assert_int_equal(page.offset, off);
            assert_int_equal(page.n_peers, off + size <= 8 ? size : 8 - off);
            assert_memory_equal(page.peers, look.peers + off,
                                page.n_peers * sizeof(cmsg_lookup_peer_t));
            seen += page.n_peers;
        }
        assert_int_equal(seen, 8);
    }
    /* At and beyond the end: the counts, no peers, the offset as asked. */
    const uint32_t past[] = {8, 9, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof(past) / sizeof(past[0]); i++) {
        assert_true(lookup(f, 11, 120, past[i], 10, &page));
        assert_int_equal(page.n_peers, 0);
        assert_int_equal(page.total, 8);
        assert_int_equal(page.offset, past[i]);
        assert_stats(page.stats, 3, 5, 0);
    }
    /* max_peers 0: the counts only. */
    assert_true(lookup(f, 11, 120, 0, 0, &page));
    assert_int_equal(page.n_peers, 0);
    assert_int_equal(page.total, 8);
}

static void lookup_of_ipv6_only_swarm(void **state)
{
    fx_t *f = *state;
    announce_t a = req6(12, 1, 1, 0, ANNOUNCE_STARTED), b = req6(12, 2, 2, 9, ANNOUNCE_STARTED);
    ann(f, &a, 5, 0);
    ann(f, &b, 6, 0);
    assert_true(lookup(f, 12, 6, 1, 10, &look));
    assert_int_equal(look.total, 2);
    assert_int_equal(look.n_peers, 1);
    assert_int_equal(look.peers[0].family, 6);
    assert_true(look.peers[0].seeder); /* leecher b first, then seeder a */
    assert_int_equal(find_peer(&look, &a), 0);
    assert_int_equal(look.peers[0].age_s, 1);
}

static void lookup_page_is_bounded(void **state)
{
    fx_t *f = *state;
    const uint32_t n = REPO_LOOKUP_MAX + 500;
    for (uint32_t i = 0; i < n; i++) {
        announce_t r = req4(13, i, 6881, i % 2 ? 0 : 1, ANNOUNCE_STARTED);
        ann(f, &r, 50, 0);
    }
    assert_true(lookup(f, 13, 50, 0, UINT32_MAX, &look));
    assert_int_equal(look.total, n);
    assert_int_equal(look.n_peers, REPO_LOOKUP_MAX);
    assert_true(lookup(f, 13, 50, REPO_LOOKUP_MAX, UINT32_MAX, &page));
    assert_int_equal(page.n_peers, 500);
    /* The two pages hold every peer once. */
    for (uint32_t i = 0; i < n; i += 37) {
        announce_t r = req4(13, i, 6881, 0, ANNOUNCE_NONE);
        assert_int_equal((find_peer(&look, &r) >= 0) + (find_peer(&page, &r) >= 0), 1);
    }
}

static void lookup_changes_nothing(void **state)
{
    fx_t *f = *state;
    announce_t reqs[8];
    fill_mixed_swarm(f, 14, reqs);
    repo_totals_t before = totals(f);
    uint64_t dirty[REPO_DIRTY_WORDS], none[REPO_DIRTY_WORDS] = {0};
    repo_take_dirty(f->repo, dirty);
    /* Long after the last sweep: a lookup reads ages without rebasing or expiring anything. */
    assert_true(lookup(f, 14, 100 + 59, 0, 100, &look));
    assert_int_equal(look.n_peers, 8);
    assert_int_equal(look.peers[0].age_s, 59);
    assert_true(lookup(f, 14, 100 + 70000, 0, 100, &look));
    assert_int_equal(look.n_peers, 8); /* expired but not swept: listed, as scrape counts them */
    repo_totals_t after = totals(f);
    assert_int_equal(after.peers, before.peers);
    assert_int_equal(after.bytes, before.bytes);
    repo_take_dirty(f->repo, dirty);
    assert_memory_equal(dirty, none, sizeof(dirty));
    /* And the swarm still expires on schedule. */
    assert_int_equal(repo_expire(f->repo, 100 + 7 + 59), 7);
    assert_true(lookup(f, 14, 100 + 7 + 59, 0, 100, &look));
    assert_int_equal(look.n_peers, 1);
}

static bool drop_every_partition(void *arg, uint32_t partition)
{
    (void)arg;
    (void)partition;
    return true;
}

static void assert_split(fx_t *f, uint64_t p4, uint64_t p6, uint64_t seeders)
{
    repo_totals_t t = totals(f);
    assert_int_equal(t.peers4, p4);
    assert_int_equal(t.peers6, p6);
    assert_int_equal(t.peers, p4 + p6);
    assert_int_equal(t.seeders, seeders);
    assert_int_equal(t.leechers, p4 + p6 - seeders);
}

static void totals_split_peers_by_family_and_seeding(void **state)
{
    fx_t *f = *state;
    announce_t r4[2] = {req4(21, 1, 6881, 5, ANNOUNCE_STARTED),
                        req4(21, 2, 6881, 0, ANNOUNCE_NONE)};
    announce_t r6[3] = {req6(21, 1, 6881, 5, ANNOUNCE_STARTED), req6(21, 2, 6881, 5, ANNOUNCE_NONE),
                        req6(22, 3, 6881, 0, ANNOUNCE_STARTED)};
    for (int i = 0; i < 2; i++)
        ann(f, &r4[i], 100, 50);
    for (int i = 0; i < 3; i++)
        ann(f, &r6[i], 100, 50);
    assert_split(f, 2, 3, 2);
    ann(f, &r6[0], 100, 50); /* a re-announce adds nobody */
    assert_split(f, 2, 3, 2);
    r6[1].left = 0; /* an IPv6 leecher becomes a seeder */
    ann(f, &r6[1], 100, 50);
    assert_split(f, 2, 3, 3);
    r6[2].event = ANNOUNCE_STOPPED;
    ann(f, &r6[2], 100, 50);
    assert_split(f, 2, 2, 2);
    /* Expiry (the sweep) takes both families' peers off. */
    assert_int_equal(repo_expire(f->repo, 100 + 3600), 4);
    assert_split(f, 0, 0, 0);
    /* And dropping partitions (a handover) does too. */
    for (int i = 0; i < 2; i++)
        ann(f, &r4[i], 5000, 50);
    ann(f, &r6[0], 5000, 50);
    assert_split(f, 2, 1, 1);
    for (size_t s = 0; s < repo_stripes(f->repo); s++)
        repo_drop_stripe(f->repo, s, drop_every_partition, NULL);
    assert_split(f, 0, 0, 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(new_repo_has_requested_stripes),
        cmocka_unit_test(new_refuses_more_than_16_stripe_bits),
        cmocka_unit_test(default_limits_are_documented_values),
        T(empty_repo_has_zero_totals),
        T(totals_split_peers_by_family_and_seeding),
        T(started_with_left_adds_leecher),
        T(started_with_left_zero_adds_seeder),
        T(none_event_on_unknown_peer_adds_it),
        T(reannounce_does_not_duplicate),
        T(leecher_becomes_seeder),
        T(seeder_becomes_leecher),
        T(transitions_keep_partition_consistent),
        T(completed_counts_once_per_peer),
        T(completed_flag_survives_moves),
        T(completed_counts_again_after_stop),
        T(stopped_removes_peer),
        T(stopped_peer_gets_no_peers),
        T(stopped_on_unknown_swarm_does_not_create_it),
        T(lone_peer_gets_no_peers),
        T(two_peers_see_each_other_byte_exact),
        T(seeder_gets_only_leechers),
        T(seeder_with_no_leechers_gets_nothing),
        T(leecher_gets_seeders_and_leechers),
        T(numwant_is_respected),
        T(selection_is_random_and_covers_every_peer),
        T(reply_records_are_real_distinct_peers),
        T(same_address_different_port_is_another_peer),
        T(peer_id_is_not_identity),
        T(families_are_kept_apart),
        T(ipv6_seeder_gets_only_ipv6_leechers),
        T(ipv6_only_swarm_and_stop),
        T(peer_expires_exactly_at_timeout),
        T(reannounce_postpones_expiry),
        T(empty_swarm_is_removed_by_expiry),
        T(expire_stripe_out_of_range_does_nothing),
        T(expiry_spares_fresh_peers_in_big_swarm),
        T(long_gap_without_sweep_still_expires),
        T(late_now_from_another_thread_does_not_expire_early),
        cmocka_unit_test(zero_timeout_expires_at_next_sweep),
        cmocka_unit_test(coarse_ticks_never_expire_before_timeout),
        cmocka_unit_test_setup_teardown(max_torrents_refuses_new_swarm_only, setup_max_torrents,
                                        teardown),
        cmocka_unit_test_setup_teardown(max_peers_per_swarm_stops_storing, setup_max_peers,
                                        teardown),
        cmocka_unit_test_setup_teardown(max_peers_applies_per_family, setup_max_peers, teardown),
        cmocka_unit_test_setup_teardown(unstored_completed_still_counts, setup_max_peers, teardown),
        cmocka_unit_test_setup_teardown(memory_budget_refuses_new_swarms, setup_tiny_budget,
                                        teardown),
        cmocka_unit_test_setup_teardown(memory_budget_stops_swarm_growth, setup_tiny_budget,
                                        teardown),
        T(large_swarm_counts_stay_exact),
        T(large_swarm_reply_is_distinct_real_peers),
        T(large_ipv6_swarm_counts_stay_exact),
        T(huge_swarm_crosses_to_wide_index_and_back),
        cmocka_unit_test(many_swarms_grow_and_shrink_table),
        T(random_operations_match_a_model),
        T(lookup_of_missing_swarm_is_empty),
        T(lookup_counts_match_scrape_and_list_every_peer),
        T(lookup_pages_through_both_families),
        T(lookup_of_ipv6_only_swarm),
        T(lookup_page_is_bounded),
        T(lookup_changes_nothing),
    };
#undef T
    return cmocka_run_group_tests_name("repo", tests, NULL, NULL);
}
