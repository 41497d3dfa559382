/* SPDX-License-Identifier: MIT */
/* test_repo_threads: the repository under concurrent writers. Four threads announce with
 * deterministic per-thread sequences into swarms they share and swarms of their own, while a
 * fifth thread keeps sweeping every stripe with a `now` that expires nothing and a sixth
 * scrapes and reads totals. Each thread owns distinct peer addresses, so the final state is
 * fixed by the sequences alone: every count is checked against a single-threaded model, and
 * during the run each thread checks what only it can change (its own swarms' counts, that its
 * own peers in replies are really present). Run under ASan and TSan as well. */
#include "repo.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#define THREADS       4
#define SHARED        4  /* swarms every thread uses */
#define OWN           8  /* swarms per thread */
#define PEERS         64 /* per thread per swarm; every fourth is IPv6 */
#define OPS           200000
#define NOW0          100000
#define ANCHOR_THREAD 200

typedef struct {
    bool present, seeder, done;
} mpeer_t;

typedef struct {
    mpeer_t p[SHARED + OWN][PEERS];
    uint32_t downloaded[SHARED + OWN];
} model_t;

typedef struct {
    repo_t *repo;
    _Atomic bool stop;
} shared_t;

typedef struct {
    shared_t *sh;
    unsigned t;
    model_t model;
    uint8_t out[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    unsigned failures; /* cmocka's asserts are not thread-safe: count, assert in main */
} worker_t;

static const repo_limits_t limits = {
    .max_torrents = 1000,
    .max_peers_per_swarm = 100000,
    .memory_budget = 256u << 20,
    .peer_timeout_s = 3600,
};

/* Swarm ids: 0..SHARED-1 shared, then OWN per thread. */
static uint32_t swarm_id(unsigned t, unsigned k)
{
    return k < SHARED ? k : 1000 + t * OWN + (k - SHARED);
}

static announce_t req(uint32_t swarm, unsigned t, unsigned i, uint64_t left, announce_event_t ev)
{
    announce_t r;
    memset(&r, 0, sizeof(r));
    memset(r.info_hash, 0xc3, SHOAL_HASH_LEN);
    memcpy(r.info_hash, &swarm, sizeof(swarm));
    r.left = left;
    r.event = ev;
    r.numwant = -1;
    r.peer.port = (uint16_t)(6881 + i);
    if (i % 4 == 0) {
        r.peer.family = 6;
        r.peer.addr[0] = 0x20;
        r.peer.addr[1] = 0x01;
        r.peer.addr[14] = (uint8_t)t;
        r.peer.addr[15] = (uint8_t)i;
    } else {
        r.peer.family = 4;
        r.peer.addr[0] = 10;
        r.peer.addr[1] = (uint8_t)t;
        r.peer.addr[2] = 0;
        r.peer.addr[3] = (uint8_t)i;
    }
    return r;
}

/* The owning thread and peer index of a compact record (see req()). */
static void owner_of(const uint8_t *rec, bool v6, unsigned *t, unsigned *i)
{
    if (v6) {
        *t = rec[14];
        *i = rec[15];
    } else {
        *t = rec[1];
        *i = rec[3];
    }
}

static uint64_t lcg(uint64_t *s)
{
    *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return *s >> 33;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    model_t *m = &w->model;
    uint64_t rng = 0x9e3779b97f4a7c15u * (w->t + 1);
    for (unsigned op = 0; op < OPS; op++) {
        const unsigned k = (unsigned)(lcg(&rng) % (SHARED + OWN));
        const unsigned i = (unsigned)(lcg(&rng) % PEERS);
        const unsigned r = (unsigned)(lcg(&rng) % 100);
        /* alternate filling and draining phases */
        const unsigned stop_pct = (op / 3000) % 2 ? 60 : 10;
        const announce_event_t ev = r < stop_pct        ? ANNOUNCE_STOPPED
                                    : r < stop_pct + 10 ? ANNOUNCE_COMPLETED
                                    : r < stop_pct + 30 ? ANNOUNCE_STARTED
                                                        : ANNOUNCE_NONE;
        const uint64_t left = lcg(&rng) % 3 == 0 ? 0 : 1000;
        const size_t numwant = (size_t)(lcg(&rng) % 80);
        const uint32_t now = NOW0 + op / 1000; /* threads' clocks drift apart a little */
        announce_t q = req(swarm_id(w->t, k), w->t, i, left, ev);
        repo_result_t res;
        if (repo_announce(w->sh->repo, &q, now, numwant, w->out, &res) != REPO_OK) {
            w->failures++;
            continue;
        }

        mpeer_t *p = &m->p[k][i];
        if (ev == ANNOUNCE_STOPPED) {
            p->present = false;
            p->done = false;
        } else {
            if (!p->present)
                *p = (mpeer_t){.present = true};
            p->seeder = left == 0;
            if (ev == ANNOUNCE_COMPLETED && !p->done) {
                m->downloaded[k]++;
                p->done = true;
            }
        }
        if (res.stored != (ev != ANNOUNCE_STOPPED) || res.n_peers > numwant)
            w->failures++;

        const bool v6 = i % 4 == 0;
        const size_t rl = v6 ? SHOAL_PEER6_LEN : SHOAL_PEER4_LEN;
        for (size_t j = 0; j < res.n_peers; j++) {
            unsigned ot, oi;
            owner_of(w->out + j * rl, v6, &ot, &oi);
            if (ot == w->t && (oi == i || (oi % 4 == 0) != v6 || !m->p[k][oi].present ||
                               (left == 0 && m->p[k][oi].seeder)))
                w->failures++;
        }
        if (k >= SHARED) { /* only this thread (and the anchor) lives here */
            uint32_t seeders = 1, leechers = 0;
            for (unsigned j = 0; j < PEERS; j++)
                if (m->p[k][j].present) {
                    seeders += m->p[k][j].seeder;
                    leechers += !m->p[k][j].seeder;
                }
            if (res.stats.seeders != seeders || res.stats.leechers != leechers ||
                res.stats.downloaded != m->downloaded[k])
                w->failures++;
        }
    }
    return NULL;
}

/* Sweeps every stripe, over and over, at a time that expires nothing: only locking is tested.
 * Still, emptied IPv6 sets are freed and tables may shrink under the writers' feet. */
static void *sweeper_main(void *arg)
{
    shared_t *sh = arg;
    size_t removed = 0;
    while (!atomic_load(&sh->stop))
        for (size_t s = 0; s < repo_stripes(sh->repo); s++)
            removed += repo_expire_stripe(sh->repo, s, NOW0);
    return (void *)(uintptr_t)removed;
}

static void *reader_main(void *arg)
{
    shared_t *sh = arg;
    size_t bad = 0;
    while (!atomic_load(&sh->stop)) {
        repo_totals_t t;
        repo_totals(sh->repo, &t);
        bad += t.seeders > t.peers || t.torrents > limits.max_torrents;
        for (uint32_t k = 0; k < SHARED; k++) {
            uint8_t ih[SHOAL_HASH_LEN];
            memset(ih, 0xc3, SHOAL_HASH_LEN);
            memcpy(ih, &k, sizeof(k));
            swarm_stats_t st;
            repo_scrape(sh->repo, ih, &st);
            bad += st.seeders < 1 || st.seeders + st.leechers > 1 + THREADS * PEERS;
        }
    }
    return (void *)(uintptr_t)bad;
}

static int setup(void **state)
{
    shared_t *sh = calloc(1, sizeof(*sh));
    if (!sh)
        return -1;
    sh->repo = repo_new(4, &limits);
    if (!sh->repo) {
        free(sh);
        return -1;
    }
    *state = sh;
    return 0;
}

static int teardown(void **state)
{
    shared_t *sh = *state;
    repo_destroy(&sh->repo);
    free(sh);
    return 0;
}

static void concurrent_announces_end_in_the_implied_state(void **state)
{
    shared_t *sh = *state;
    atomic_init(&sh->stop, false);
    /* An anchor seeder in every swarm keeps the sweeper from removing swarms (and their
     * downloaded counts) that the workers empty for a moment. */
    for (unsigned t = 0; t < THREADS; t++)
        for (unsigned k = 0; k < SHARED + OWN; k++) {
            announce_t a = req(swarm_id(t, k), ANCHOR_THREAD, 1, 0, ANNOUNCE_STARTED);
            repo_result_t res;
            assert_int_equal(repo_announce(sh->repo, &a, NOW0, 0, NULL, &res), REPO_OK);
        }

    worker_t *w = calloc(THREADS, sizeof(*w));
    assert_non_null(w);
    pthread_t th[THREADS], sweeper, reader;
    assert_int_equal(pthread_create(&sweeper, NULL, sweeper_main, sh), 0);
    assert_int_equal(pthread_create(&reader, NULL, reader_main, sh), 0);
    for (unsigned t = 0; t < THREADS; t++) {
        w[t].sh = sh;
        w[t].t = t;
        assert_int_equal(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
    }
    for (unsigned t = 0; t < THREADS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    atomic_store(&sh->stop, true);
    void *swept, *bad;
    assert_int_equal(pthread_join(sweeper, &swept), 0);
    assert_int_equal(pthread_join(reader, &bad), 0);
    assert_int_equal((uintptr_t)swept, 0);
    assert_int_equal((uintptr_t)bad, 0);
    for (unsigned t = 0; t < THREADS; t++)
        assert_int_equal(w[t].failures, 0);

    /* The final state is the union of the threads' models, plus the anchors. */
    uint64_t peers = 0, seeders = 0;
    for (unsigned t = 0; t < THREADS; t++)
        for (unsigned k = 0; k < SHARED + OWN; k++) {
            if (k < SHARED && t > 0)
                continue; /* shared swarms: counted once, over all threads */
            swarm_stats_t want = {1, 0, 0};
            for (unsigned u = 0; u < THREADS; u++) {
                if (k >= SHARED && u != t)
                    continue;
                want.downloaded += w[u].model.downloaded[k];
                for (unsigned i = 0; i < PEERS; i++)
                    if (w[u].model.p[k][i].present) {
                        want.seeders += w[u].model.p[k][i].seeder;
                        want.leechers += !w[u].model.p[k][i].seeder;
                    }
            }
            uint8_t ih[SHOAL_HASH_LEN];
            announce_t a = req(swarm_id(t, k), 0, 1, 0, ANNOUNCE_NONE);
            memcpy(ih, a.info_hash, SHOAL_HASH_LEN);
            swarm_stats_t got;
            repo_scrape(sh->repo, ih, &got);
            assert_int_equal(got.seeders, want.seeders);
            assert_int_equal(got.leechers, want.leechers);
            assert_int_equal(got.downloaded, want.downloaded);
            peers += want.seeders + want.leechers;
            seeders += want.seeders;
        }
    repo_totals_t tot;
    repo_totals(sh->repo, &tot);
    assert_int_equal(tot.torrents, SHARED + THREADS * OWN);
    assert_int_equal(tot.peers, peers);
    assert_int_equal(tot.seeders, seeders);

    /* And everything goes once its time is up, in parallel with nothing. */
    assert_int_equal(repo_expire(sh->repo, NOW0 + OPS / 1000 + limits.peer_timeout_s), peers);
    repo_totals(sh->repo, &tot);
    assert_int_equal(tot.torrents, 0);
    assert_int_equal(tot.peers, 0);
    assert_int_equal(tot.bytes, 0);
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(concurrent_announces_end_in_the_implied_state, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("repo_threads", tests, NULL, NULL);
}
