/* SPDX-License-Identifier: MIT */
/* bench_repo: drives the swarm repository directly with T threads through the four scenarios
 * trackers use to choose a swarm store, for several stripe counts. One stripe (--stripes 0 in
 * bits) is the single-lock baseline: the same code with one lock, so the benefit of striping is
 * measured rather than assumed.
 *
 *   add-one      one thread adds N new torrents, one peer each (sequential)
 *   update-one   T threads re-announce their own peers to one shared swarm
 *   add-many     T threads add new torrents (disjoint sets), one peer each
 *   update-many  T threads re-announce random peers of a pre-filled set of torrents
 *
 * Output: one line per (scenario, stripe bits) with ns/op and ops/s, then a RESULT line per pair.
 * Every loop runs a fixed number of operations, so the program stops by itself. */
#include "repo.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    unsigned threads;
    unsigned long ops;      /* per thread, per scenario */
    unsigned long torrents; /* pre-filled torrents for update-many */
    unsigned peers_per;     /* peers per pre-filled torrent */
} bench_cfg_t;

typedef enum { ADD_ONE, UPDATE_ONE, ADD_MANY, UPDATE_MANY, N_SCENARIOS } scenario_t;
static const char *const scenario_names[] = {"add-one", "update-one", "add-many", "update-many"};

typedef struct {
    repo_t *repo;
    const bench_cfg_t *cfg;
    scenario_t scenario;
    unsigned index;
    pthread_barrier_t *start;
    uint64_t rng;
} thread_arg_t;

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* A well-spread info-hash for torrent number n (SHA-1 outputs look like this). */
static void torrent_hash(uint64_t n, uint8_t out[SHOAL_HASH_LEN])
{
    uint64_t s = n * 0x9E3779B97F4A7C15ULL + 0x1234567ULL;
    for (int i = 0; i < SHOAL_HASH_LEN; i += 8) {
        uint64_t v = rnd(&s);
        memcpy(out + i, &v, SHOAL_HASH_LEN - i < 8 ? (size_t)(SHOAL_HASH_LEN - i) : 8);
    }
}

static void make_announce(announce_t *a, uint64_t torrent, uint32_t peer)
{
    memset(a, 0, sizeof(*a));
    torrent_hash(torrent, a->info_hash);
    a->event = ANNOUNCE_NONE;
    a->left = peer % 4 == 0 ? 0 : 1000; /* a quarter seeders */
    a->numwant = 30;
    a->peer.family = 4;
    a->peer.addr[0] = 10;
    a->peer.addr[1] = (uint8_t)(peer >> 16);
    a->peer.addr[2] = (uint8_t)(peer >> 8);
    a->peer.addr[3] = (uint8_t)peer;
    a->peer.port = (uint16_t)(6881 + (peer >> 24));
}

static void *run_thread(void *p)
{
    thread_arg_t *t = p;
    const bench_cfg_t *cfg = t->cfg;
    uint8_t peers[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    repo_result_t res;
    announce_t a;
    pthread_barrier_wait(t->start);
    for (unsigned long i = 0; i < cfg->ops; i++) {
        switch (t->scenario) {
        case ADD_ONE:
        case ADD_MANY:
            make_announce(&a, 1000000000ULL + (uint64_t)t->index * cfg->ops + i, 1);
            break;
        case UPDATE_ONE:
            make_announce(&a, 42, t->index * 1000000u + (uint32_t)(i % 1000));
            break;
        case UPDATE_MANY: {
            uint64_t r = rnd(&t->rng);
            make_announce(&a, r % cfg->torrents, (uint32_t)((r >> 32) % cfg->peers_per));
            break;
        }
        default:
            break;
        }
        repo_announce(t->repo, &a, 1000, 30, peers, &res);
    }
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run(const bench_cfg_t *cfg, unsigned bits, scenario_t sc, double *ops_per_s)
{
    repo_limits_t limits = repo_default_limits;
    limits.max_torrents = 0xffffffffu;
    limits.memory_budget = 16ULL << 30;
    repo_t *repo = repo_new(bits, &limits);
    if (!repo)
        return -1;
    if (sc == UPDATE_MANY) {
        uint8_t peers[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
        repo_result_t res;
        announce_t a;
        for (unsigned long t = 0; t < cfg->torrents; t++) {
            for (unsigned p = 0; p < cfg->peers_per; p++) {
                make_announce(&a, t, p);
                repo_announce(repo, &a, 1000, 0, peers, &res);
            }
        }
    }
    unsigned n = sc == ADD_ONE ? 1 : cfg->threads;
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, n + 1);
    pthread_t th[64];
    thread_arg_t args[64];
    for (unsigned i = 0; i < n; i++) {
        args[i] = (thread_arg_t){.repo = repo,
                                 .cfg = cfg,
                                 .scenario = sc,
                                 .index = i,
                                 .start = &start,
                                 .rng = 0x853c49e6748fea9bULL * (i + 1)};
        pthread_create(&th[i], NULL, run_thread, &args[i]);
    }
    pthread_barrier_wait(&start);
    double t0 = now_s();
    for (unsigned i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    double elapsed = now_s() - t0;
    pthread_barrier_destroy(&start);
    repo_destroy(&repo);
    *ops_per_s = (double)cfg->ops * n / elapsed;
    return 0;
}

static void usage(void)
{
    printf("usage: shoal-bench-repo [--threads T] [--ops N] [--torrents N] [--peers-per N]\n"
           "                        [--stripes B1,B2,...]\n"
           "defaults: --threads 2 --ops 1000000 --torrents 100000 --peers-per 10 "
           "--stripes 0,4,8,10,12\n"
           "Stripe bits 0 is the single-lock baseline.\n");
}

int main(int argc, char **argv)
{
    bench_cfg_t cfg = {.threads = 2, .ops = 1000000, .torrents = 100000, .peers_per = 10};
    unsigned bits[16] = {0, 4, 8, 10, 12};
    unsigned n_bits = 5;
    for (int i = 1; i < argc; i += 2) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--help")) {
            usage();
            return 0;
        } else if (!strcmp(argv[i], "--threads") && v) {
            cfg.threads = (unsigned)strtoul(v, NULL, 10);
        } else if (!strcmp(argv[i], "--ops") && v) {
            cfg.ops = strtoul(v, NULL, 10);
        } else if (!strcmp(argv[i], "--torrents") && v) {
            cfg.torrents = strtoul(v, NULL, 10);
        } else if (!strcmp(argv[i], "--peers-per") && v) {
            cfg.peers_per = (unsigned)strtoul(v, NULL, 10);
        } else if (!strcmp(argv[i], "--stripes") && v) {
            n_bits = 0;
            char *save = NULL, *copy = strdup(v);
            for (char *tok = strtok_r(copy, ",", &save); tok && n_bits < 16;
                 tok = strtok_r(NULL, ",", &save))
                bits[n_bits++] = (unsigned)strtoul(tok, NULL, 10);
            free(copy);
        } else {
            usage();
            return 2;
        }
    }
    if (cfg.threads < 1 || cfg.threads > 64 || cfg.ops < 1 || cfg.torrents < 1 ||
        cfg.peers_per < 1) {
        fprintf(stderr, "shoal-bench-repo: threads 1..64, ops/torrents/peers-per >= 1\n");
        return 2;
    }
    printf("%-12s %6s %8s %12s %14s\n", "scenario", "bits", "threads", "ns/op", "ops/s");
    for (int sc = 0; sc < N_SCENARIOS; sc++) {
        for (unsigned b = 0; b < n_bits; b++) {
            double ops;
            if (run(&cfg, bits[b], (scenario_t)sc, &ops) != 0) {
                fprintf(stderr, "repo_new(%u) failed\n", bits[b]);
                return 1;
            }
            unsigned t = sc == ADD_ONE ? 1 : cfg.threads;
            printf("%-12s %6u %8u %12.1f %14.0f\n", scenario_names[sc], bits[b], t, 1e9 / ops * t,
                   ops);
            printf("RESULT scenario=%s stripe_bits=%u threads=%u ns_per_op=%.1f ops_per_s=%.0f\n",
                   scenario_names[sc], bits[b], t, 1e9 / ops * t, ops);
            fflush(stdout);
        }
    }
    return 0;
}
