/* SPDX-License-Identifier: MIT */
/* bench_snapshot: what failover costs, measured on the real code against a real Redis.
 *
 *   1. fill a repository with --swarms swarms of --peers-per IPv4 peers each (1M peers by
 *      default), as announces;
 *   2. snapshot: a keeper owning every partition acquires them (nothing to restore) and writes
 *      every partition once; reports the time of that cycle (the stripe walk and encoding, with
 *      each stripe locked in turn, then the fenced writes), the bytes, and Redis's memory;
 *   3. restore: the first keeper stops without handing over (a crash); a second keeper, with an
 *      empty repository, acquires every partition and merges the snapshots: reports the time of
 *      that round, the peers restored (must equal the peers filled) and a check by scrape.
 *   4. --announce-threads T: while step 2 runs again (everything marked dirty), T threads keep
 *      announcing into the repository; reports their rate against a run without the snapshot,
 *      so the cost on the request path is measured, not assumed.
 *
 * Exits 1 if anything restored differs from what was filled. Every loop is bounded. The Redis
 * server is the caller's (tests/bench/bench.py --failover starts one on loopback). */
#include "keeper.h"
#include "repo.h"
#include "snapstore.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    const char *redis;
    unsigned long swarms;
    unsigned peers_per;
    unsigned threads;
    unsigned seconds;     /* of announcing, for step 4 */
    unsigned interval_ms; /* snapshot period */
} cfg_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t clock_fixed(void)
{
    return 1000000;
}

static void torrent_hash(uint64_t n, uint8_t out[SHOAL_HASH_LEN])
{
    uint64_t s = n * 0x9E3779B97F4A7C15ULL + 0x1234567ULL;
    for (int i = 0; i < SHOAL_HASH_LEN; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out[i] = (uint8_t)((s * 0x2545F4914F6CDD1DULL) >> 56);
    }
}

static void make_announce(announce_t *a, uint64_t swarm, uint32_t peer)
{
    memset(a, 0, sizeof(*a));
    torrent_hash(swarm, a->info_hash);
    a->peer.family = 4;
    uint32_t ip = 0x0a000000u + peer;
    memcpy(a->peer.addr, &ip, 4);
    a->peer.port = (uint16_t)(1024 + peer % 50000);
    a->left = peer % 3 ? 100 : 0;
    a->event = ANNOUNCE_STARTED;
}

static void quiet(void *arg, slog_level_t level, const char *msg)
{
    (void)arg;
    if (level <= SLOG_WARN)
        fprintf(stderr, "keeper: %s\n", msg);
}

static keeper_t *keeper_for(const cfg_t *c, repo_t *repo, const char *id)
{
    keeper_config_t kc = {
        .redis_url = c->redis,
        .prefix = "shoal-bench",
        .self_id = id,
        .repo = repo,
        .view = keeper_view_all(),
        .interval_ms = c->interval_ms,
        .clock = clock_fixed,
        .redis_timeout_ms = 30000, /* big pipelines on a loaded machine */
        .log = quiet,
    };
    char err[256];
    keeper_t *k = keeper_new(&kc, err, sizeof(err));
    if (!k || keeper_start(k) != 0) {
        fprintf(stderr, "bench_snapshot: keeper: %s\n", k ? "thread" : err);
        exit(2);
    }
    return k;
}

/* Wait (bounded) until the keeper's stats satisfy done(); returns them. */
static keeper_stats_t wait_stats(keeper_t *k, bool (*done)(const keeper_stats_t *, uint64_t),
                                 uint64_t arg, double timeout)
{
    keeper_stats_t st;
    double end = now_s() + timeout;
    for (;;) {
        keeper_stats(k, &st);
        if (done(&st, arg))
            return st;
        if (now_s() > end) {
            fprintf(stderr, "bench_snapshot: timed out waiting for the keeper\n");
            exit(1);
        }
        usleep(2000);
    }
}

static bool cycles_above(const keeper_stats_t *st, uint64_t n)
{
    return st->cycles > n;
}

static bool acquired_all(const keeper_stats_t *st, uint64_t n)
{
    (void)n;
    return st->acquired >= PARTITION_COUNT;
}

static void flush_prefix(const char *url)
{
    rconn_url_t u;
    char err[256];
    if (rconn_parse(url, &u, err, sizeof(err)) != 0)
        return;
    redisContext *c = rconn_open(&u, 5000, err, sizeof(err));
    if (!c)
        return;
    redisReply *r = redisCommand(c, "EVAL %s 0",
                                 "for _, k in ipairs(redis.call('KEYS', "
                                 "'shoal-bench:*')) do redis.call('DEL', k) end "
                                 "return 0");
    if (r)
        freeReplyObject(r);
    r = redisCommand(c, "INFO memory");
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *m = strstr(r->str, "used_memory:");
        if (m)
            printf("redis %.*s before\n", (int)strcspn(m, "\r\n"), m);
    }
    if (r)
        freeReplyObject(r);
    redisFree(c);
}

typedef struct {
    repo_t *repo;
    const cfg_t *cfg;
    unsigned index;
    atomic_bool *stop;
    uint64_t ops;
} load_t;

static void *announcer(void *arg)
{
    load_t *l = arg;
    uint64_t s = 0x1234567 + l->index * 7919ULL, ops = 0;
    uint8_t peers[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    while (!atomic_load_explicit(l->stop, memory_order_relaxed)) {
        for (int i = 0; i < 256; i++) {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            uint64_t x = s * 0x2545F4914F6CDD1DULL;
            announce_t a;
            uint64_t sw = x % l->cfg->swarms;
            make_announce(&a, sw,
                          (uint32_t)(sw * l->cfg->peers_per + (x >> 32) % l->cfg->peers_per));
            a.event = ANNOUNCE_NONE;
            repo_result_t res;
            repo_announce(l->repo, &a, clock_fixed(), 30, peers, &res);
            ops++;
        }
    }
    l->ops = ops;
    return NULL;
}

/* Announce with cfg->threads threads for cfg->seconds; with k, a snapshot keeper runs too and
 * everything is re-marked dirty every cycle (the worst case: all 4096 partitions every time). */
static double announce_rate(const cfg_t *c, repo_t *repo, keeper_t *k, uint64_t *cycles)
{
    atomic_bool stop = false;
    load_t l[64];
    pthread_t th[64];
    unsigned n = c->threads > 64 ? 64 : c->threads;
    keeper_stats_t st0;
    if (k)
        keeper_stats(k, &st0);
    double t0 = now_s();
    for (unsigned i = 0; i < n; i++) {
        l[i] = (load_t){.repo = repo, .cfg = c, .index = i, .stop = &stop};
        pthread_create(&th[i], NULL, announcer, &l[i]);
    }
    while (now_s() - t0 < c->seconds)
        usleep(10000);
    atomic_store(&stop, true);
    uint64_t ops = 0;
    for (unsigned i = 0; i < n; i++) {
        pthread_join(th[i], NULL);
        ops += l[i].ops;
    }
    double dt = now_s() - t0;
    if (k) {
        keeper_stats_t st1;
        keeper_stats(k, &st1);
        *cycles = st1.cycles - st0.cycles;
    }
    return (double)ops / dt;
}

int main(int argc, char **argv)
{
    cfg_t c = {.redis = NULL,
               .swarms = 100000,
               .peers_per = 10,
               .threads = 0,
               .seconds = 5,
               .interval_ms = 1000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--redis") && v)
            c.redis = argv[++i];
        else if (!strcmp(a, "--swarms") && v)
            c.swarms = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--peers-per") && v)
            c.peers_per = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--announce-threads") && v)
            c.threads = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--interval") && v)
            c.interval_ms = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--seconds") && v)
            c.seconds = (unsigned)strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr,
                    "usage: shoal-bench-snapshot --redis redis://127.0.0.1:PORT [--swarms N] "
                    "[--peers-per N] [--interval MS] [--announce-threads T --seconds S]\n");
            return 2;
        }
    }
    if (!c.redis || c.swarms == 0 || c.peers_per == 0 || c.seconds == 0 || c.interval_ms == 0) {
        fprintf(stderr, "bench_snapshot: --redis is required (see --help)\n");
        return 2;
    }
    flush_prefix(c.redis);
    repo_limits_t lim = repo_default_limits;
    lim.max_torrents = (uint32_t)c.swarms * 2 + 16;
    lim.memory_budget = UINT64_C(16) << 30;
    repo_t *a = repo_new(8, &lim), *b = repo_new(8, &lim);
    if (!a || !b)
        return 2;
    uint8_t peers[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    double t0 = now_s();
    for (unsigned long s = 0; s < c.swarms; s++) {
        for (unsigned p = 0; p < c.peers_per; p++) {
            announce_t an;
            make_announce(&an, s, (uint32_t)(s * c.peers_per + p));
            repo_result_t res;
            repo_announce(a, &an, clock_fixed(), 0, peers, &res);
        }
    }
    repo_totals_t ta;
    repo_totals(a, &ta);
    printf("filled %llu swarms, %llu peers in %.2f s\n", (unsigned long long)ta.torrents,
           (unsigned long long)ta.peers, now_s() - t0);

    /* 2. snapshot */
    keeper_t *ka = keeper_for(&c, a, "bench-a");
    keeper_stats_t st = wait_stats(ka, cycles_above, 0, 600);
    printf("RESULT snapshot peers=%llu partitions=%llu bytes=%llu cycle_ms=%.1f export_ms=%.1f "
           "bytes_per_peer=%.2f\n",
           (unsigned long long)st.peers, (unsigned long long)st.partitions,
           (unsigned long long)st.bytes, st.last_cycle_us / 1000.0, st.last_export_us / 1000.0,
           st.peers ? (double)st.bytes / (double)st.peers : 0.0);

    /* 4. the request path while snapshots run (before the crash, same repository) */
    if (c.threads) {
        uint64_t cyc = 0;
        keeper_stop(ka, false);
        double off = announce_rate(&c, a, NULL, NULL);
        keeper_destroy(&ka);
        ka = keeper_for(&c, a, "bench-a");
        wait_stats(ka, acquired_all, 0, 600);
        /* Mark everything dirty all the time: every cycle rewrites every partition. */
        double on;
        {
            uint64_t all[REPO_DIRTY_WORDS];
            memset(all, 0xff, sizeof(all));
            repo_mark_dirty(a, all);
            on = announce_rate(&c, a, ka, &cyc);
        }
        printf("RESULT announce_rate off=%.0f on=%.0f ratio=%.3f snapshot_cycles=%llu\n", off, on,
               on / off, (unsigned long long)cyc);
    }

    /* 3. restore: A crashes (no handover), B takes everything */
    keeper_stop(ka, false);
    keeper_t *kb = keeper_for(&c, b, "bench-b");
    st = wait_stats(kb, acquired_all, 0, 600);
    repo_totals_t tb;
    repo_totals(b, &tb);
    printf("RESULT restore peers=%llu swarms=%llu restore_ms=%.1f expected_peers=%llu\n",
           (unsigned long long)st.restored_peers, (unsigned long long)st.restored_swarms,
           st.last_restore_us / 1000.0, (unsigned long long)ta.peers);
    int bad = 0;
    if (tb.peers != ta.peers || tb.torrents != ta.torrents)
        bad = 1;
    for (unsigned long s = 0; s < c.swarms && !bad; s += 97) {
        uint8_t ih[SHOAL_HASH_LEN];
        torrent_hash(s, ih);
        swarm_stats_t x, y;
        repo_scrape(a, ih, &x);
        repo_scrape(b, ih, &y);
        if (x.seeders != y.seeders || x.leechers != y.leechers)
            bad = 1;
    }
    if (bad)
        fprintf(stderr, "bench_snapshot: the restored repository differs (%llu vs %llu peers)\n",
                (unsigned long long)tb.peers, (unsigned long long)ta.peers);
    keeper_stop(kb, false);
    keeper_destroy(&kb);
    keeper_destroy(&ka);
    flush_prefix(c.redis);
    repo_destroy(&a);
    repo_destroy(&b);
    return bad;
}
