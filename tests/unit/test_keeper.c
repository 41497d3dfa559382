/* SPDX-License-Identifier: MIT */
/* test_keeper: the keeper (node/keeper.c with snapstore.c and rconn.c) against a real
 * redis-server started here on a free loopback port. Two keepers run in this one process, each
 * with its own repository and a scripted ownership view (owned bitmap, a version the test bumps,
 * an alive() set, a lease() whose gap count the test sets, and a gate that can park the keeper
 * thread inside version() so that "before the keeper's next step" is a fact, not a race).
 *
 * Covered: restore after a crash (same counts and peers, restored_peers), fencing of a node that
 * lost its partitions (its writes refused, its partitions blocked, the new owner's snapshot
 * intact) and its taking them back after a release, a planned handover (the acquirer waits for
 * the release, then gets everything, late announces included), a rebalance that moves half the
 * partitions, the leaving mark, the handover timeout, lease gaps (with and without a takeover
 * meanwhile), the merge of a snapshot into swarms announced during the acquisition, Redis
 * refusing connections or never answering, and Redis losing its data (FLUSHALL, a restart
 * without persistence after an outage, during a lease gap, and the epoch it then hands out
 * again).
 *
 * Exits 77 (skipped) only when redis-server is not installed. Every wait is a bounded poll of
 * keeper_stats() or of Redis; a few checks that something does NOT happen watch it for a bounded
 * time (several keeper rounds). Set KEEPER_TEST_LOG=1 to see the keepers' log lines, and
 * KEEPER_TEST_FILTER=pattern to run only some tests. */
#include "keeper.h"
#include "redis_fixture.h"
#include "repo.h"
#include "snapshot.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#define INTERVAL_MS 50
#define HANDOVER_MS 500
#define LONG_MS     30000 /* a handover no test waits for */
#define RTIMEOUT_MS 500
#define WAIT_MS     10000 /* bound of every poll that should succeed */
#define QUIET_MS    300   /* how long "does not happen" is watched: six keeper rounds */
#define NOW         1000u /* the repositories' clock: peers never age here */
#define ALL         PARTITION_COUNT

/* The workload: NSW swarms over NPART partitions (swarms sw and sw + NPART share one), swarm sw
 * with 1 + sw % 6 peers per round; peer k is IPv6 if k % 3 == 2, a seeder if k is even, and
 * peer 0 announces "completed" (downloaded + 1 per round). Rounds use distinct addresses. */
#define NSW   64
#define NPART 48

/* Connections time out after 1 s (connect and commands); the server has WAIT_MS to start. */
static redis_fixture_t redis = {
    .connect_ms = 1000, .command_ms = 1000, .start_ms = WAIT_MS, .pid = -1};

/* ---- time ----------------------------------------------------------------------------------- */

/* True as soon as cond holds, polled every 5 ms; false if it still does not after ms. */
#define POLL(ms, cond)                                                                             \
    ({                                                                                             \
        bool ok_ = false;                                                                          \
        for (int64_t end_ = redis_fixture_now_ms() + (ms);; redis_fixture_sleep_ms(5)) {           \
            if (cond) {                                                                            \
                ok_ = true;                                                                        \
                break;                                                                             \
            }                                                                                      \
            if (redis_fixture_now_ms() >= end_)                                                    \
                break;                                                                             \
        }                                                                                          \
        ok_;                                                                                       \
    })

/* True if cond holds at every look for ms (a bounded watch that something does not happen). */
#define HOLDS(ms, cond)                                                                            \
    ({                                                                                             \
        bool ok_ = true;                                                                           \
        for (int64_t end_ = redis_fixture_now_ms() + (ms); redis_fixture_now_ms() < end_;          \
             redis_fixture_sleep_ms(5)) {                                                          \
            if (!(cond)) {                                                                         \
                ok_ = false;                                                                       \
                break;                                                                             \
            }                                                                                      \
        }                                                                                          \
        ok_;                                                                                       \
    })

static uint32_t test_clock(void)
{
    return NOW;
}

/* ---- redis-server --------------------------------------------------------------------------- */

/* An integer (or integer-valued string) reply, -1 for nil or a failure. */
static long long raw_int(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redis_fixture_vcommand(&redis, fmt, ap);
    va_end(ap);
    long long v = -1;
    if (r && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r && r->type == REDIS_REPLY_STRING)
        v = strtoll(r->str, NULL, 10);
    if (r)
        freeReplyObject(r);
    return v;
}

/* ---- the workload --------------------------------------------------------------------------- */

static uint32_t sw_part(uint32_t sw)
{
    return (sw % NPART) * 83 + 5;
}

static uint32_t sw_peers(uint32_t sw)
{
    return 1 + sw % 6;
}

static void sw_hash(uint32_t sw, uint8_t ih[SHOAL_HASH_LEN])
{
    uint32_t p = sw_part(sw);
    memset(ih, 0x5c, SHOAL_HASH_LEN);
    ih[0] = (uint8_t)(p >> 4);
    ih[1] = (uint8_t)((p & 15) << 4);
    ih[2] = (uint8_t)sw;
}

/* Peer k of swarm sw in round `round`: 10.round.sw.k or 2001:db8::round:sw:k. */
static announce_t peer_req(uint32_t sw, uint32_t round, uint32_t k)
{
    announce_t r;
    memset(&r, 0, sizeof(r));
    sw_hash(sw, r.info_hash);
    r.peer_id[0] = (uint8_t)round;
    r.peer_id[1] = (uint8_t)sw;
    r.peer_id[2] = (uint8_t)k;
    r.left = k % 2 == 0 ? 0 : 1000;
    r.event = k == 0 ? ANNOUNCE_COMPLETED : ANNOUNCE_STARTED;
    r.numwant = 0;
    r.peer.port = (uint16_t)(6881 + k);
    if (k % 3 == 2) {
        r.peer.family = 6;
        r.peer.addr[0] = 0x20;
        r.peer.addr[1] = 0x01;
        r.peer.addr[2] = 0x0d;
        r.peer.addr[3] = 0xb8;
        r.peer.addr[13] = (uint8_t)round;
        r.peer.addr[14] = (uint8_t)sw;
        r.peer.addr[15] = (uint8_t)k;
    } else {
        r.peer.family = 4;
        r.peer.addr[0] = 10;
        r.peer.addr[1] = (uint8_t)round;
        r.peer.addr[2] = (uint8_t)sw;
        r.peer.addr[3] = (uint8_t)k;
    }
    return r;
}

static void compact_of(const announce_t *r, uint8_t *out)
{
    size_t al = r->peer.family == 6 ? 16 : 4;
    memcpy(out, r->peer.addr, al);
    out[al] = (uint8_t)(r->peer.port >> 8);
    out[al + 1] = (uint8_t)r->peer.port;
}

static void announce(repo_t *repo, const announce_t *r)
{
    static _Thread_local uint8_t out[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    repo_result_t res;
    assert_int_equal(repo_announce(repo, r, NOW, 0, out, &res), REPO_OK);
}

/* Announce every peer of round `round` of the swarms whose partition index (sw % NPART) is
 * below `below` into repo. */
static void announce_some(repo_t *repo, uint32_t round, uint32_t below)
{
    for (uint32_t sw = 0; sw < NSW; sw++)
        for (uint32_t k = 0; sw % NPART < below && k < sw_peers(sw); k++) {
            announce_t r = peer_req(sw, round, k);
            announce(repo, &r);
        }
}

static void announce_round(repo_t *repo, uint32_t round)
{
    announce_some(repo, round, NPART);
}

/* An info-hash in partition p, told apart by tag (the workload never uses tag's byte 0x11). */
static void hash_in(uint32_t p, uint8_t tag, uint8_t ih[SHOAL_HASH_LEN])
{
    memset(ih, 0x11, SHOAL_HASH_LEN);
    ih[0] = (uint8_t)(p >> 4);
    ih[1] = (uint8_t)((p & 15) << 4);
    ih[2] = tag;
}

/* Announce peer k of a swarm outside the workload (hash_in(p, tag)) into repo. */
static void announce_in(repo_t *repo, uint32_t p, uint8_t tag, uint32_t k)
{
    announce_t r = peer_req(0, 200u + tag, k);
    hash_in(p, tag, r.info_hash);
    announce(repo, &r);
}

static uint64_t round_peers(void)
{
    uint64_t n = 0;
    for (uint32_t sw = 0; sw < NSW; sw++)
        n += sw_peers(sw);
    return n;
}

/* The scrape of swarm sw after rounds[0..nr) were announced. */
static swarm_stats_t expected_stats(uint32_t sw, size_t nr)
{
    uint32_t n = sw_peers(sw);
    swarm_stats_t s = {.seeders = (uint32_t)nr * ((n + 1) / 2),
                       .leechers = (uint32_t)nr * (n / 2),
                       .downloaded = (uint32_t)nr};
    return s;
}

static int cmp_rec4(const void *a, const void *b)
{
    return memcmp(a, b, SHOAL_PEER4_LEN);
}

static int cmp_rec6(const void *a, const void *b)
{
    return memcmp(a, b, SHOAL_PEER6_LEN);
}

/* The peers repo hands a new leecher of swarm sw and `family` (numwant 200), sorted, into out;
 * their count. The asking peer is removed again (event stopped) so the repo is left as it was. */
static size_t peers_of(repo_t *repo, uint32_t sw, uint8_t family, uint8_t *out)
{
    announce_t q = peer_req(sw, 250, family == 6 ? 2 : 1);
    q.left = 1;
    q.event = ANNOUNCE_STARTED;
    repo_result_t res;
    assert_int_equal(repo_announce(repo, &q, NOW, SHOAL_NUMWANT_MAX, out, &res), REPO_OK);
    size_t rl = family == 6 ? SHOAL_PEER6_LEN : SHOAL_PEER4_LEN;
    qsort(out, res.n_peers, rl, family == 6 ? cmp_rec6 : cmp_rec4);
    uint8_t none[SHOAL_PEER6_LEN];
    repo_result_t res2;
    q.event = ANNOUNCE_STOPPED;
    assert_int_equal(repo_announce(repo, &q, NOW, 0, none, &res2), REPO_OK);
    return res.n_peers;
}

/* The peers of `family` announced to swarm sw in rounds[0..nr), sorted, into out; their count. */
static size_t expected_peers(uint32_t sw, const uint32_t *rounds, size_t nr, uint8_t family,
                             uint8_t *out)
{
    size_t n = 0, rl = family == 6 ? SHOAL_PEER6_LEN : SHOAL_PEER4_LEN;
    for (size_t i = 0; i < nr; i++)
        for (uint32_t k = 0; k < sw_peers(sw); k++) {
            announce_t r = peer_req(sw, rounds[i], k);
            if (r.peer.family == family)
                compact_of(&r, out + rl * n++);
        }
    qsort(out, n, rl, family == 6 ? cmp_rec6 : cmp_rec4);
    return n;
}

/* Swarm sw in repo has exactly the scrape and the peers of rounds[0..nr) (nr 0: no peers, no
 * completions). With exact_dl false the downloaded count may be higher than those rounds'. */
static void assert_swarm(repo_t *repo, uint32_t sw, const uint32_t *rounds, size_t nr,
                         bool exact_dl)
{
    static _Thread_local uint8_t got[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    static _Thread_local uint8_t want[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    uint8_t ih[SHOAL_HASH_LEN];
    sw_hash(sw, ih);
    swarm_stats_t s, e = expected_stats(sw, nr);
    repo_scrape(repo, ih, &s);
    assert_int_equal(s.seeders, e.seeders);
    assert_int_equal(s.leechers, e.leechers);
    if (exact_dl)
        assert_int_equal(s.downloaded, e.downloaded);
    else
        assert_true(s.downloaded >= e.downloaded);
    for (uint8_t family = 4; family <= 6; family += 2) {
        size_t rl = family == 6 ? SHOAL_PEER6_LEN : SHOAL_PEER4_LEN;
        size_t ng = peers_of(repo, sw, family, got);
        size_t nw = expected_peers(sw, rounds, nr, family, want);
        assert_int_equal(ng, nw);
        if (ng)
            assert_memory_equal(got, want, ng * rl);
    }
}

/* Every swarm of the workload in repo has exactly the scrape and the peers of rounds[0..nr). */
static void assert_repo_has(repo_t *repo, const uint32_t *rounds, size_t nr)
{
    for (uint32_t sw = 0; sw < NSW; sw++)
        assert_swarm(repo, sw, rounds, nr, true);
}

/* ---- snapshots in Redis --------------------------------------------------------------------- */

typedef struct {
    bool present;         /* a valid snapshot is stored */
    snap_header_t h;      /* its header */
    long swarm_peers;     /* peers of the asked swarm in it, -1 if the swarm is not there */
    uint32_t swarm_dl;    /* its downloaded count */
    uint64_t total_peers; /* peers in the whole snapshot */
} snapinfo_t;

/* The stored snapshot of partition p, and what it holds of the swarm info_hash. */
static snapinfo_t snap_info(redisContext *c, uint32_t p, const uint8_t *info_hash)
{
    snapinfo_t si = {.swarm_peers = -1};
    redisReply *r = redisCommand(c, "GET shoal:{p%u}:snap", p);
    if (r && r->type == REDIS_REPLY_STRING) {
        const uint8_t *d = (const uint8_t *)r->str;
        if (snap_check(d, r->len, &si.h) == SNAP_OK) {
            si.present = true;
            snap_iter_t it;
            snap_iter_init(&it, d, r->len);
            snap_swarm_t sw;
            while (snap_iter_next(&it, &sw) == SNAP_OK) {
                si.total_peers += sw.n4 + sw.n6;
                if (info_hash && memcmp(sw.info_hash, info_hash, SHOAL_HASH_LEN) == 0) {
                    si.swarm_peers = sw.n4 + sw.n6;
                    si.swarm_dl = sw.downloaded;
                }
            }
        }
    }
    if (r)
        freeReplyObject(r);
    return si;
}

/* snap_info() on a connection of its own. */
static snapinfo_t snap_info1(uint32_t p, const uint8_t *info_hash)
{
    snapinfo_t si = {.swarm_peers = -1};
    redisContext *c = redis_fixture_connect(&redis);
    if (c) {
        si = snap_info(c, p, info_hash);
        redisFree(c);
    }
    return si;
}

/* True if every swarm of the workload is stored with `per_round` rounds of peers (and one extra
 * peer in swarm 0 if extra0), in a snapshot written by `owner`. */
static bool snaps_hold(unsigned per_round, bool extra0, const char *owner)
{
    redisContext *c = redis_fixture_connect(&redis);
    if (!c)
        return false;
    bool ok = true;
    for (uint32_t sw = 0; ok && sw < NSW; sw++) {
        uint8_t ih[SHOAL_HASH_LEN];
        sw_hash(sw, ih);
        snapinfo_t si = snap_info(c, sw_part(sw), ih);
        long want = (long)(per_round * sw_peers(sw)) + (extra0 && sw == 0);
        ok = si.present && si.swarm_peers == want && strcmp(si.h.owner, owner) == 0;
    }
    redisFree(c);
    return ok;
}

/* ---- scripted view -------------------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pset_t mine;
    uint64_t version;
    char alive[4][PARTITION_ID_MAX];
    size_t nalive;
    bool gate_closed; /* version() parks the keeper thread until it is opened */
    bool parked;
    _Atomic bool lease_held;
    _Atomic uint64_t gaps;
} tview_t;

static bool v_owned(void *arg, pset_t *mine)
{
    tview_t *v = arg;
    pthread_mutex_lock(&v->lock);
    *mine = v->mine;
    pthread_mutex_unlock(&v->lock);
    return true;
}

static uint64_t v_version(void *arg)
{
    tview_t *v = arg;
    pthread_mutex_lock(&v->lock);
    while (v->gate_closed) {
        v->parked = true;
        pthread_cond_broadcast(&v->cond);
        pthread_cond_wait(&v->cond, &v->lock);
    }
    v->parked = false;
    uint64_t n = v->version;
    pthread_mutex_unlock(&v->lock);
    return n;
}

static bool v_alive(void *arg, const char *id)
{
    tview_t *v = arg;
    pthread_mutex_lock(&v->lock);
    bool yes = false;
    for (size_t i = 0; i < v->nalive; i++)
        yes = yes || strcmp(v->alive[i], id) == 0;
    pthread_mutex_unlock(&v->lock);
    return yes;
}

static bool v_lease(void *arg, uint64_t *gaps)
{
    tview_t *v = arg;
    *gaps = atomic_load(&v->gaps);
    return atomic_load(&v->lease_held);
}

static void view_init(tview_t *v)
{
    memset(v, 0, sizeof(*v));
    pthread_mutex_init(&v->lock, NULL);
    pthread_cond_init(&v->cond, NULL);
    atomic_store(&v->lease_held, true);
    v->version = 1;
}

/* Own partitions [first, first + count) and nothing else; a new version. */
static void view_own(tview_t *v, uint32_t first, uint32_t count)
{
    pthread_mutex_lock(&v->lock);
    pset_clear(&v->mine);
    for (uint32_t p = first; p < first + count; p++)
        pset_add(&v->mine, p);
    v->version++;
    pthread_mutex_unlock(&v->lock);
}

static void view_set_alive(tview_t *v, const char *id, bool alive)
{
    pthread_mutex_lock(&v->lock);
    size_t j = 0;
    for (size_t i = 0; i < v->nalive; i++)
        if (strcmp(v->alive[i], id) != 0)
            memmove(v->alive[j++], v->alive[i], PARTITION_ID_MAX);
    v->nalive = j;
    if (alive && v->nalive < 4)
        snprintf(v->alive[v->nalive++], PARTITION_ID_MAX, "%s", id);
    pthread_mutex_unlock(&v->lock);
}

/* Close the gate and wait (bounded) until the keeper thread is parked in version(): it has done
 * this round's lease check and will follow the table, acquire and snapshot only once opened. */
static bool view_park(tview_t *v)
{
    pthread_mutex_lock(&v->lock);
    v->gate_closed = true;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    while (!v->parked) {
        if (pthread_cond_timedwait(&v->cond, &v->lock, &ts) == ETIMEDOUT)
            break;
    }
    bool parked = v->parked;
    pthread_mutex_unlock(&v->lock);
    return parked;
}

static void view_open(tview_t *v)
{
    pthread_mutex_lock(&v->lock);
    v->gate_closed = false;
    pthread_cond_broadcast(&v->cond);
    pthread_mutex_unlock(&v->lock);
}

/* ---- nodes ---------------------------------------------------------------------------------- */

typedef struct {
    char id[16];
    repo_t *repo;
    tview_t view;
    bool has_view;
    keeper_t *k;
} node_t;

typedef struct {
    node_t n[3];
} fixture_t;

static const repo_limits_t limits = {
    .max_torrents = 100000,
    .max_peers_per_swarm = 10000,
    .memory_budget = 64u << 20,
    .peer_timeout_s = 2700,
};

static void keeper_log(void *arg, slog_level_t level, const char *msg)
{
    fprintf(stderr, "[%s %d] %s\n", (const char *)arg, (int)level, msg);
}

/* A node with an empty repository that owns partitions [first, first + count). */
static node_t *node_init(fixture_t *f, int i, const char *id, uint32_t first, uint32_t count)
{
    node_t *n = &f->n[i];
    snprintf(n->id, sizeof(n->id), "%s", id);
    n->repo = repo_new(4, &limits);
    assert_non_null(n->repo);
    view_init(&n->view);
    n->has_view = true;
    view_own(&n->view, first, count);
    return n;
}

/* Create and start n's keeper on url. */
static void node_keeper(node_t *n, const char *url, uint32_t handover_ms, bool lease)
{
    keeper_config_t cfg = {
        .redis_url = url,
        .self_id = n->id,
        .repo = n->repo,
        .view = {.arg = &n->view,
                 .owned = v_owned,
                 .version = v_version,
                 .alive = v_alive,
                 .lease = lease ? v_lease : NULL},
        .interval_ms = INTERVAL_MS,
        .handover_ms = handover_ms,
        .clock = test_clock,
        .redis_timeout_ms = RTIMEOUT_MS,
        .log = getenv("KEEPER_TEST_LOG") ? keeper_log : NULL,
        .log_arg = n->id,
    };
    char err[256] = "";
    n->k = keeper_new(&cfg, err, sizeof(err));
    if (!n->k)
        fprintf(stderr, "keeper_new: %s\n", err);
    assert_non_null(n->k);
    assert_int_equal(keeper_start(n->k), 0);
}

/* True if k blocks no partition. */
static bool serves_all(const keeper_t *k)
{
    for (uint32_t p = 0; p < ALL; p++)
        if (!keeper_may_serve(k, p))
            return false;
    return true;
}

static keeper_stats_t stats(const node_t *n)
{
    keeper_stats_t s;
    keeper_stats(n->k, &s);
    return s;
}

static int setup(void **state)
{
    if (redis_fixture_flush(&redis) != 0)
        return -1;
    *state = calloc(1, sizeof(fixture_t));
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    for (int i = 0; i < 3; i++) {
        node_t *n = &f->n[i];
        if (n->has_view)
            view_open(&n->view); /* a failed test may have left the thread parked */
        keeper_destroy(&n->k);
        repo_destroy(&n->repo);
        if (n->has_view) {
            pthread_cond_destroy(&n->view.cond);
            pthread_mutex_destroy(&n->view.lock);
        }
    }
    free(f);
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    return redis_fixture_setup(&redis);
}

static int group_teardown(void **state)
{
    (void)state;
    redis_fixture_stop(&redis);
    return 0;
}

/* A started node that owns (and holds) every partition, with round 0 announced and stored. */
static node_t *owner_with_round0(fixture_t *f, int i, const char *id, uint32_t handover_ms,
                                 bool lease)
{
    node_t *a = node_init(f, i, id, 0, ALL);
    node_keeper(a, redis.url, handover_ms, lease);
    assert_true(keeper_wait_restored(a->k, WAIT_MS));
    assert_int_equal(stats(a).held, ALL);
    announce_round(a->repo, 0);
    assert_true(POLL(WAIT_MS, snaps_hold(1, false, id)));
    return a;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void config_errors_are_refused(void **state)
{
    (void)state;
    repo_t *repo = repo_new(2, &limits);
    assert_non_null(repo);
    tview_t v;
    view_init(&v);
    keeper_config_t good = {
        .redis_url = redis.url,
        .self_id = "A",
        .repo = repo,
        .view = {.arg = &v, .owned = v_owned, .version = v_version},
        .interval_ms = INTERVAL_MS,
    };
    char err[256];
    keeper_config_t c = good;
    c.redis_url = "http://127.0.0.1:1";
    err[0] = '\0';
    assert_null(keeper_new(&c, err, sizeof(err)));
    assert_true(err[0] != '\0');
    c = good;
    c.interval_ms = 0;
    assert_null(keeper_new(&c, err, sizeof(err)));
    c = good;
    c.self_id = "";
    assert_null(keeper_new(&c, err, sizeof(err)));
    c = good;
    c.self_id = "0123456789012345678901234567890123456789012345678901234567890123"; /* 64 */
    assert_null(keeper_new(&c, err, sizeof(err)));
    c = good;
    c.repo = NULL;
    assert_null(keeper_new(&c, err, sizeof(err)));
    c = good;
    c.view.owned = NULL;
    assert_null(keeper_new(&c, err, sizeof(err)));
    keeper_t *k = keeper_new(&good, err, sizeof(err));
    assert_non_null(k);
    keeper_stop(k, true); /* never started: nothing to do */
    keeper_destroy(&k);
    assert_null(k);
    keeper_destroy(&k); /* NULL-safe */
    repo_destroy(&repo);
    pthread_cond_destroy(&v.cond);
    pthread_mutex_destroy(&v.lock);
}

/* 1. A crashes after writing its snapshots; B, which owns everything and sees A dead, gets
 * exactly A's swarms. */
static void restore_after_crash(void **state)
{
    fixture_t *f = *state;
    node_t *a = owner_with_round0(f, 0, "A", HANDOVER_MS, false);
    keeper_stop(a->k, false); /* a crash: no release */
    /* Stopped: no loop to watch. */
    assert_int_equal(keeper_loop_age_ms(a->k), 0);
    assert_int_equal(raw_int("EXISTS shoal:{p%u}:owner", sw_part(0)), 1);

    node_t *b = node_init(f, 1, "B", 0, ALL);
    node_keeper(b, redis.url, HANDOVER_MS, false);
    assert_true(keeper_wait_restored(b->k, WAIT_MS));
    keeper_stats_t s = stats(b);
    assert_int_equal(s.acquired, ALL);
    assert_int_equal(s.held, ALL);
    assert_int_equal(s.restored_peers, round_peers());
    assert_int_equal(s.restored_swarms, NSW);
    assert_int_equal(s.restore_expired, 0);
    assert_int_equal(s.claims_refused, 0);
    assert_true(s.connected);
    /* B's epoch fenced A's: every partition's epoch is 2, its owner B. */
    for (uint32_t sw = 0; sw < NSW; sw += 7)
        assert_int_equal(raw_int("GET shoal:{p%u}:epoch", sw_part(sw)), 2);
    /* The import marked B's partitions dirty: B rewrites them under its own epoch. (Checked
     * before the peers: the test's own announces would mark them dirty too.) */
    assert_true(POLL(WAIT_MS, snaps_hold(1, false, "B")));
    const uint32_t r0[] = {0};
    assert_repo_has(b->repo, r0, 1);
}

/* 2. B takes A's partitions while A still runs: A's next writes are refused, A blocks those
 * partitions, and B's snapshots stay B's. */
static void fenced_writer_loses_and_cannot_overwrite(void **state)
{
    fixture_t *f = *state;
    node_t *a = owner_with_round0(f, 0, "A", LONG_MS, false);
    view_set_alive(&a->view, "B", true); /* A would wait (LONG_MS) before taking anything back */

    node_t *b = node_init(f, 1, "B", 0, ALL);
    node_keeper(b, redis.url, HANDOVER_MS, false);
    assert_true(keeper_wait_restored(b->k, WAIT_MS));
    assert_int_equal(stats(b).restored_peers, round_peers());
    assert_true(POLL(WAIT_MS, snaps_hold(1, false, "B")));
    /* A learns of the others one idle fence probe per cycle; the written ones at once. */
    announce_round(a->repo, 1); /* A writes these partitions now, with its old epoch */
    assert_true(POLL(WAIT_MS, stats(a).lost >= NPART));
    for (uint32_t sw = 0; sw < NPART; sw++)
        assert_true(POLL(WAIT_MS, !keeper_may_serve(a->k, sw_part(sw))));
    assert_true(keeper_serving(a->k));
    /* The refused writes are counted as such: part of what A found lost (the rest its idle
     * probes found), none of them failures; B, the fence holder, had none refused. */
    keeper_stats_t sa = stats(a);
    assert_true(sa.fenced >= 1 && sa.fenced <= sa.lost);
    assert_int_equal(sa.write_failures, 0);
    assert_int_equal(sa.errors, 0);
    assert_int_equal(stats(b).fenced, 0);
    /* Both threads turn at least every INTERVAL_MS: an age of seconds would mean stuck. */
    assert_true(keeper_loop_age_ms(a->k) < 2000);
    assert_true(keeper_loop_age_ms(b->k) < 2000);
    /* A waits for B (alive) before acquiring them again, and keeps their swarms for the merge. */
    assert_true(POLL(WAIT_MS, stats(a).waiting >= NPART));
    assert_int_equal(stats(a).acquired, ALL);
    uint8_t ih[SHOAL_HASH_LEN];
    sw_hash(5, ih);
    swarm_stats_t sc;
    repo_scrape(a->repo, ih, &sc);
    assert_int_equal(sc.seeders + sc.leechers, 2 * sw_peers(5));
    /* Redis still has B's snapshots, B's epoch, B as owner, and none of round 1. */
    assert_true(HOLDS(QUIET_MS, snaps_hold(1, false, "B")));
    redisContext *c = redis_fixture_connect(&redis);
    assert_non_null(c);
    for (uint32_t sw = 0; sw < NSW; sw++) {
        sw_hash(sw, ih);
        snapinfo_t si = snap_info(c, sw_part(sw), ih);
        assert_true(si.present);
        assert_string_equal(si.h.owner, "B");
        assert_int_equal(si.h.epoch, 2);
    }
    redisFree(c);
    assert_int_equal(raw_int("GET shoal:{p%u}:epoch", sw_part(3)), 2);
    redisReply *r = redis_fixture_command(&redis, "GET shoal:{p%u}:owner", sw_part(3));
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "B");
    freeReplyObject(r);
    assert_int_equal(stats(b).lost, 0);
}

/* 3. A planned handover: B waits for A's release while A is alive, then gets everything A had,
 * including what was announced to A after its last periodic snapshot (in LATE of the NPART
 * partitions: those go in full with the release, the others as a release mark over the stored
 * snapshot). */
#define LATE 8
static void planned_handover(void **state)
{
    fixture_t *f = *state;
    node_t *a = owner_with_round0(f, 0, "A", HANDOVER_MS, false);

    node_t *b = node_init(f, 1, "B", 0, ALL);
    view_set_alive(&b->view, "A", true);
    int64_t b_start = redis_fixture_now_ms();
    node_keeper(b, redis.url, 5000, false);
    assert_true(POLL(WAIT_MS, stats(b).waiting == ALL));
    assert_true(HOLDS(QUIET_MS, stats(b).acquired == 0 && stats(b).held == 0));

    /* Park A between its lease check and its table step: no snapshot can run until the table
     * step has handed over, so round 1 reaches Redis only through the release. */
    assert_true(view_park(&a->view));
    keeper_stats_t before = stats(a);
    announce_some(a->repo, 1, LATE);
    view_own(&a->view, 0, 0);
    view_open(&a->view);
    keeper_notify(a->k);

    assert_true(POLL(WAIT_MS, stats(b).held == ALL));
    int64_t waited = redis_fixture_now_ms() - b_start;
    assert_true(waited < 4000); /* B's own deadline (5000 ms) did not make it acquire */
    keeper_stats_t sa = stats(a);
    assert_int_equal(sa.released, ALL);
    assert_int_equal(sa.lost, 0);
    uint64_t late_peers = 0;
    for (uint32_t sw = 0; sw < NSW; sw++)
        late_peers += sw % NPART < LATE ? sw_peers(sw) : 0;
    assert_int_equal(sa.partitions - before.partitions, ALL);
    assert_int_equal(sa.peers - before.peers, 2 * late_peers); /* only LATE went in full */
    repo_totals_t t;
    repo_totals(a->repo, &t);
    assert_int_equal(t.torrents, 0); /* A dropped what it no longer owns */
    assert_int_equal(t.peers, 0);

    keeper_stats_t sb = stats(b);
    assert_int_equal(sb.acquired, ALL);
    assert_int_equal(sb.restored_peers, round_peers() + late_peers);
    const uint32_t r01[] = {0, 1};
    for (uint32_t sw = 0; sw < NSW; sw++)
        assert_swarm(b->repo, sw, r01, sw % NPART < LATE ? 2 : 1, true);
    /* B did not need to take anything by the timeout: each partition was fenced once. */
    assert_int_equal(raw_int("GET shoal:{p%u}:epoch", sw_part(1)), 2);
    assert_int_equal(raw_int("GET shoal:{p%u}:epoch", sw_part(NPART - 1)), 2);
}

/* 4. A marks itself leaving; B no longer sees A as a member but still waits for its release. */
static void leaving_mark_makes_acquirer_wait(void **state)
{
    fixture_t *f = *state;
    node_t *a = owner_with_round0(f, 0, "A", 5000, false);
    keeper_leave(a->k);
    assert_int_equal(raw_int("EXISTS shoal:leaving:A"), 1);
    long long ttl = raw_int("PTTL shoal:leaving:A");
    assert_true(ttl > 5000 && ttl <= 10000); /* 2 x A's handover_ms */

    node_t *b = node_init(f, 1, "B", 0, ALL); /* alive(A) false: A has deregistered */
    int64_t b_start = redis_fixture_now_ms();
    node_keeper(b, redis.url, 5000, false);
    assert_true(POLL(WAIT_MS, stats(b).waiting == ALL));
    assert_true(HOLDS(QUIET_MS, stats(b).acquired == 0 && stats(b).held == 0));

    announce_round(a->repo, 1); /* after the leave, still A's to hand over */
    keeper_stop(a->k, true);
    assert_true(POLL(WAIT_MS, stats(b).held == ALL));
    assert_true(redis_fixture_now_ms() - b_start < 4000);
    assert_int_equal(stats(a).released, ALL);
    assert_false(keeper_serving(a->k)); /* a released keeper serves nothing */
    assert_int_equal(stats(b).restored_peers, 2 * round_peers());
    const uint32_t r01[] = {0, 1};
    assert_repo_has(b->repo, r01, 2);
}

/* 5. B waits for a live A that never releases, then takes over after handover_ms. */
static void handover_times_out(void **state)
{
    fixture_t *f = *state;
    node_t *a = owner_with_round0(f, 0, "A", HANDOVER_MS, false);
    keeper_stop(a->k, false);

    node_t *b = node_init(f, 1, "B", 0, ALL);
    view_set_alive(&b->view, "A", true);
    int64_t b_start = redis_fixture_now_ms();
    node_keeper(b, redis.url, HANDOVER_MS, false);
    assert_true(POLL(WAIT_MS, stats(b).waiting == ALL || stats(b).held == ALL));
    assert_int_equal(stats(b).held, 0);
    assert_int_equal(stats(b).waiting, ALL);
    assert_true(POLL(WAIT_MS, stats(b).held == ALL));
    int64_t waited = redis_fixture_now_ms() - b_start;
    assert_true(waited >= HANDOVER_MS);
    assert_true(waited < HANDOVER_MS + 1500);
    keeper_stats_t s = stats(b);
    assert_int_equal(s.waiting, 0);
    assert_int_equal(s.restored_peers, round_peers());
    const uint32_t r0[] = {0};
    assert_repo_has(b->repo, r0, 1);
}

/* 6. Redis restarts empty (FLUSHALL): A's next write finds no epoch, A acquires everything again
 * and rewrites every partition, so a crash right after still loses nothing. */
static void redis_data_loss_rewrites_everything(void **state)
{
    fixture_t *f = *state;
    node_t *a = owner_with_round0(f, 0, "A", HANDOVER_MS, false);
    redisReply *r = redis_fixture_command(&redis, "FLUSHALL");
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(raw_int("EXISTS shoal:{p%u}:snap", sw_part(0)), 0);

    announce_t extra = peer_req(0, 9, 1); /* one change: A's next write */
    announce(a->repo, &extra);
    assert_true(POLL(WAIT_MS, stats(a).gone >= 1));
    assert_true(POLL(WAIT_MS, snaps_hold(1, true, "A")));
    assert_true(POLL(WAIT_MS, stats(a).acquired == 2 * ALL && stats(a).held == ALL));
    assert_int_equal(stats(a).lost, 0);
    assert_int_equal(raw_int("GET shoal:{p%u}:epoch", sw_part(0)), 1);
    /* Every partition, empty ones included, was rewritten under the new epoch. */
    assert_true(POLL(WAIT_MS, raw_int("EXISTS shoal:{p%u}:snap", ALL - 1) == 1));

    keeper_stop(a->k, false);
    node_t *b = node_init(f, 1, "B", 0, ALL);
    node_keeper(b, redis.url, HANDOVER_MS, false);
    assert_true(keeper_wait_restored(b->k, WAIT_MS));
    assert_int_equal(stats(b).restored_peers, round_peers() + 1);
    uint8_t ih[SHOAL_HASH_LEN];
    sw_hash(0, ih);
    swarm_stats_t sc;
    repo_scrape(b->repo, ih, &sc);
    assert_int_equal(sc.seeders + sc.leechers, sw_peers(0) + 1);
    for (uint32_t sw = 1; sw < NSW; sw++) {
        sw_hash(sw, ih);
        repo_scrape(b->repo, ih, &sc);
        swarm_stats_t e = expected_stats(sw, 1);
        assert_int_equal(sc.seeders, e.seeders);
        assert_int_equal(sc.leechers, e.leechers);
        assert_int_equal(sc.downloaded, e.downloaded);
    }
}

/* 7a. A lease gap with nobody taking anything: not serving until re-checked, then serving,
 * nothing lost. */
static void lease_gap_blocks_until_rechecked(void **state)
{
    fixture_t *f = *state;
    node_t *a = owner_with_round0(f, 0, "A", HANDOVER_MS, true);
    assert_true(keeper_serving(a->k));
    atomic_store(&a->view.lease_held, false);
    assert_false(keeper_serving(a->k)); /* no lease, no serving */
    atomic_store(&a->view.lease_held, true);
    assert_true(keeper_serving(a->k));

    assert_true(view_park(&a->view)); /* past this round's lease check */
    atomic_store(&a->view.gaps, 1);
    assert_false(keeper_serving(a->k));
    assert_true(HOLDS(50, !keeper_serving(a->k)));
    view_open(&a->view);
    assert_true(POLL(WAIT_MS, keeper_serving(a->k)));
    keeper_stats_t s = stats(a);
    assert_int_equal(s.lost, 0);
    assert_int_equal(s.held, ALL);
    for (uint32_t p = 0; p < ALL; p++)
        assert_true(keeper_may_serve(a->k, p));
    const uint32_t r0[] = {0};
    assert_repo_has(a->repo, r0, 1);
}

/* 7b. A lease gap during which B acquired some of A's partitions: A's re-check blocks exactly
 * those and counts them lost; the swarms stay for a later merge. */
static void lease_gap_finds_partitions_taken(void **state)
{
    fixture_t *f = *state;
    node_t *a = owner_with_round0(f, 0, "A", LONG_MS, true);
    view_set_alive(&a->view, "B", true);
    /* Parked, A's idle fence probe cannot find B's takeover before the gap does. */
    assert_true(view_park(&a->view));

    const uint32_t taken = 512;
    node_t *b = node_init(f, 1, "B", 0, taken);
    node_keeper(b, redis.url, HANDOVER_MS, false);
    assert_true(keeper_wait_restored(b->k, WAIT_MS));
    assert_int_equal(stats(b).held, taken);
    assert_int_equal(stats(a).lost, 0);

    atomic_store(&a->view.gaps, 7);
    assert_false(keeper_serving(a->k));
    view_open(&a->view);
    assert_true(POLL(WAIT_MS, keeper_serving(a->k)));
    keeper_stats_t s = stats(a);
    assert_int_equal(s.lost, taken);
    for (uint32_t p = 0; p < ALL; p++) {
        if (p < taken)
            assert_false(keeper_may_serve(a->k, p));
        else
            assert_true(keeper_may_serve(a->k, p));
    }
    assert_true(POLL(WAIT_MS, stats(a).held == ALL - taken && stats(a).waiting == taken));
    /* Swarms of lost partitions are kept (to merge when acquired again). */
    const uint32_t r0[] = {0};
    assert_repo_has(a->repo, r0, 1);
    assert_int_equal(stats(b).lost, 0);
}

/* 8a. Redis refuses connections: the keeper keeps running and serving from memory, counts
 * errors, and stops promptly. */
static void redis_unreachable_keeps_serving(void **state)
{
    fixture_t *f = *state;
    int port = redis_fixture_free_port();
    assert_true(port > 0);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", port);
    node_t *a = node_init(f, 0, "A", 0, ALL);
    node_keeper(a, url, HANDOVER_MS, false);
    announce_round(a->repo, 0);
    assert_true(POLL(WAIT_MS, stats(a).errors >= 3));
    assert_true(keeper_serving(a->k));
    for (uint32_t p = 0; p < ALL; p += 17)
        assert_true(keeper_may_serve(a->k, p));
    keeper_stats_t s = stats(a);
    assert_false(s.connected);
    assert_int_equal(s.held, 0);
    assert_int_equal(s.partitions, 0);
    assert_false(keeper_wait_restored(a->k, 100));
    const uint32_t r0[] = {0};
    assert_repo_has(a->repo, r0, 1); /* served from memory */
    int64_t t0 = redis_fixture_now_ms();
    keeper_stop(a->k, true);
    assert_true(redis_fixture_now_ms() - t0 < 2 * RTIMEOUT_MS + 1000);
}

/* 8b. A Redis that accepts connections and never answers: every call ends at the timeout; the
 * keeper keeps serving and stops within a bound. */
static void redis_silent_is_bounded(void **state)
{
    fixture_t *f = *state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 64), 0); /* never accepted: the kernel completes the handshake */
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    char url[64];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%d", ntohs(sa.sin_port));
    node_t *a = node_init(f, 0, "A", 0, ALL);
    node_keeper(a, url, HANDOVER_MS, false);
    announce_round(a->repo, 0);
    assert_true(POLL(WAIT_MS, stats(a).errors >= 2));
    assert_true(keeper_serving(a->k));
    assert_int_equal(stats(a).held, 0);
    int64_t t0 = redis_fixture_now_ms();
    keeper_stop(a->k, true);
    assert_true(redis_fixture_now_ms() - t0 < 2 * RTIMEOUT_MS + 1000);
    close(fd);
}

/* 9. B serves (and keeps) announces while it waits to acquire; the snapshot is merged into them:
 * peers of both are there, B's own state wins for a peer in both, downloaded counts add, and B
 * writes the merged swarm under its own epoch. */
static void acquisition_merges_into_announced(void **state)
{
    fixture_t *f = *state;
    node_t *a = owner_with_round0(f, 0, "A", HANDOVER_MS, false);
    keeper_stop(a->k, false);

    node_t *b = node_init(f, 1, "B", 0, ALL);
    view_set_alive(&b->view, "A", true);
    node_keeper(b, redis.url, LONG_MS, false);
    assert_true(POLL(WAIT_MS, stats(b).waiting == ALL));
    const uint32_t sw = 5;                /* 6 peers in A's snapshot: k = 0..5 */
    announce_t mine = peer_req(sw, 3, 0); /* a new seeder, completed */
    announce_t dup = peer_req(sw, 0, 1);  /* A's leecher k = 1, now a seeder here */
    dup.left = 0;
    dup.event = ANNOUNCE_NONE;
    announce(b->repo, &mine);
    announce(b->repo, &dup);
    assert_true(HOLDS(QUIET_MS, stats(b).held == 0)); /* B's snapshot cycles run meanwhile */
    assert_true(snaps_hold(1, false, "A"));           /* and do not write unheld partitions */

    view_set_alive(&b->view, "A", false);
    keeper_notify(b->k);
    assert_true(POLL(WAIT_MS, stats(b).held == ALL));
    keeper_stats_t s = stats(b);
    assert_int_equal(s.restored_peers, round_peers() - 1); /* the duplicate is B's */

    uint8_t ih[SHOAL_HASH_LEN];
    sw_hash(sw, ih);
    swarm_stats_t sc, e = expected_stats(sw, 1);
    repo_scrape(b->repo, ih, &sc);
    assert_int_equal(sc.seeders, e.seeders + 2);
    assert_int_equal(sc.leechers, e.leechers - 1);
    assert_int_equal(sc.downloaded, e.downloaded + 1);
    /* B's next snapshot holds the merged swarm, under B's epoch. */
    bool merged = POLL(WAIT_MS, ({
                           snapinfo_t si = snap_info1(sw_part(sw), ih);
                           si.present &&strcmp(si.h.owner, "B") == 0 &&
                               si.swarm_peers == (long)sw_peers(sw) + 1 &&
                               si.swarm_dl == e.downloaded + 1;
                       }));
    assert_true(merged);
    uint8_t got[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN], want[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    const uint32_t r0[] = {0};
    size_t nw = expected_peers(sw, r0, 1, 4, want);
    compact_of(&mine, want + nw * SHOAL_PEER4_LEN);
    nw++;
    qsort(want, nw, SHOAL_PEER4_LEN, cmp_rec4);
    size_t ng = peers_of(b->repo, sw, 4, got);
    assert_int_equal(ng, nw);
    assert_memory_equal(got, want, ng * SHOAL_PEER4_LEN);
}

/* A partition lost to B (refused write) and then released by B is acquired back: B's snapshot is
 * merged into the swarms A kept (nothing added twice), the partition is served again and
 * rewritten under A's new epoch. */
static void lost_partitions_are_taken_back_after_release(void **state)
{
    fixture_t *f = *state;
    node_t *a = owner_with_round0(f, 0, "A", LONG_MS, false);
    view_set_alive(&a->view, "B", true);
    node_t *b = node_init(f, 1, "B", 0, ALL);
    node_keeper(b, redis.url, HANDOVER_MS, false);
    assert_true(keeper_wait_restored(b->k, WAIT_MS));
    assert_true(POLL(WAIT_MS, snaps_hold(1, false, "B")));
    announce_round(a->repo, 1);
    assert_true(POLL(WAIT_MS, stats(a).lost >= NPART));

    keeper_stop(b->k, true); /* B hands everything over; A's table still gives A everything */
    assert_int_equal(stats(b).released, ALL);
    /* Whatever A found lost (by refused writes, or by its idle fence probes), it takes back. */
    assert_true(POLL(WAIT_MS, stats(a).held == ALL && stats(a).acquired == ALL + stats(a).lost));
    for (uint32_t sw = 0; sw < NPART; sw++)
        assert_true(keeper_may_serve(a->k, sw_part(sw)));
    assert_int_equal(stats(a).restored_peers, 0); /* B's peers were all A's: nothing added */
    assert_true(POLL(WAIT_MS, snaps_hold(2, false, "A"))); /* before the test announces */
    /* B's snapshot was restored from A's: downloaded is the larger count, not the sum. */
    const uint32_t r01[] = {0, 1};
    for (uint32_t sw = 0; sw < NSW; sw++)
        assert_swarm(a->repo, sw, r01, 2, true);
    assert_int_equal(raw_int("GET shoal:{p%u}:epoch", sw_part(0)), 3);
}

/* A table change that moves half the partitions: A hands over exactly those (and drops their
 * swarms), keeps serving and snapshotting the rest; B acquires its half without waiting for the
 * timeout and rewrites it under its own name. */
static void rebalance_hands_over_only_moved_partitions(void **state)
{
    fixture_t *f = *state;
    node_t *a = owner_with_round0(f, 0, "A", HANDOVER_MS, false);
    const uint32_t half = ALL / 2;
    node_t *b = node_init(f, 1, "B", half, ALL - half);
    view_set_alive(&b->view, "A", true);
    int64_t b_start = redis_fixture_now_ms();
    node_keeper(b, redis.url, 5000, false);
    assert_true(POLL(WAIT_MS, stats(b).waiting == ALL - half));

    view_own(&a->view, 0, half);
    keeper_notify(a->k);
    assert_true(POLL(WAIT_MS, stats(b).held == ALL - half));
    assert_true(redis_fixture_now_ms() - b_start < 4000);
    assert_true(POLL(WAIT_MS, stats(a).held == half));
    keeper_stats_t sa = stats(a);
    assert_int_equal(sa.released, ALL - half);
    assert_int_equal(sa.lost, 0);
    for (uint32_t p = 0; p < ALL; p++)
        assert_true(keeper_may_serve(a->k, p)); /* not blocked: the table answers "moved" */
    uint64_t moved = 0;
    for (uint32_t sw = 0; sw < NSW; sw++)
        moved += sw_part(sw) >= half ? sw_peers(sw) : 0;
    assert_true(moved > 0 && moved < round_peers());
    assert_int_equal(stats(b).restored_peers, moved);
    /* Redis: A's half still A's, B's half rewritten by B (its import made it dirty). */
    bool split =
        POLL(WAIT_MS, ({
                 bool ok = true;
                 for (uint32_t sw = 0; ok && sw < NPART; sw++) {
                     snapinfo_t si = snap_info1(sw_part(sw), NULL);
                     ok = si.present && strcmp(si.h.owner, sw_part(sw) < half ? "A" : "B") == 0;
                 }
                 ok;
             }));
    assert_true(split);
    const uint32_t r0[] = {0};
    for (uint32_t sw = 0; sw < NSW; sw++) {
        bool stays = sw_part(sw) < half;
        assert_swarm(a->repo, sw, r0, stays, true);
        assert_swarm(b->repo, sw, r0, !stays, true);
    }
}

/* Redis goes away, A keeps serving and counting errors; Redis comes back empty (a restart
 * without persistence): A acquires everything again and rewrites it, the changes made during
 * the outage included. */
static void redis_restarted_empty_after_outage(void **state)
{
    fixture_t *f = *state;
    node_t *a = owner_with_round0(f, 0, "A", HANDOVER_MS, false);
    redis_fixture_stop(&redis);
    announce_round(a->repo, 1);
    assert_true(POLL(WAIT_MS, stats(a).errors >= 2));
    assert_true(keeper_serving(a->k));
    assert_false(stats(a).connected);
    assert_true(keeper_may_serve(a->k, sw_part(0)));

    assert_int_equal(redis_fixture_start(&redis), 0); /* no persistence: it comes back empty */
    assert_true(POLL(WAIT_MS, snaps_hold(2, false, "A")));
    assert_true(POLL(WAIT_MS, raw_int("EXISTS shoal:{p%u}:snap", ALL - 1) == 1));
    keeper_stats_t s = stats(a);
    assert_true(s.connected);
    assert_true(s.gone >= 1);
    assert_int_equal(s.lost, 0);
    assert_int_equal(s.held, ALL);
}

/* A lease gap during which Redis lost its data (restarted empty): nobody took anything, so A
 * keeps serving everything; and since every snapshot is gone, A must rewrite what it holds (as
 * after a write that finds no epoch), or a crash now would lose every swarm. */
static void lease_gap_over_redis_data_loss_rewrites(void **state)
{
    fixture_t *f = *state;
    node_t *a = owner_with_round0(f, 0, "A", HANDOVER_MS, true);
    assert_true(view_park(&a->view));
    redisReply *r = redis_fixture_command(&redis, "FLUSHALL");
    assert_non_null(r);
    freeReplyObject(r);
    atomic_store(&a->view.gaps, 1);
    view_open(&a->view);
    assert_true(POLL(WAIT_MS, keeper_serving(a->k) && serves_all(a->k)));
    assert_true(POLL(3000, snaps_hold(1, false, "A")));
    assert_int_equal(stats(a).lost, 0); /* nobody took anything */
}

/* A swarm only A has (announced after B took its partition, which held nothing) must reach
 * Redis once A acquires the partition back: the refused write consumed its dirty mark, and B's
 * release left no snapshot to import. */
static void reacquired_partition_keeps_what_only_the_loser_had(void **state)
{
    fixture_t *f = *state;
    node_t *a = owner_with_round0(f, 0, "A", LONG_MS, false);
    view_set_alive(&a->view, "B", true);
    node_t *b = node_init(f, 1, "B", 0, ALL);
    node_keeper(b, redis.url, HANDOVER_MS, false);
    assert_true(keeper_wait_restored(b->k, WAIT_MS));
    assert_true(POLL(WAIT_MS, snaps_hold(1, false, "B")));

    uint8_t ih[SHOAL_HASH_LEN];
    hash_in(0, 0xa0, ih); /* partition 0: empty in every snapshot */
    announce_in(a->repo, 0, 0xa0, 0);
    announce_in(a->repo, 0, 0xa0, 1);
    /* A learns it by the refused write, or earlier by its idle fence probe. */
    assert_true(POLL(WAIT_MS, stats(a).lost >= 1 && !keeper_may_serve(a->k, 0)));

    keeper_stop(b->k, true);
    assert_true(POLL(WAIT_MS, keeper_may_serve(a->k, 0) && stats(a).held == ALL));
    swarm_stats_t sc;
    repo_scrape(a->repo, ih, &sc);
    assert_int_equal(sc.seeders + sc.leechers, 2);
    bool stored = POLL(3000, ({
                           snapinfo_t si = snap_info1(0, ih);
                           si.present &&si.swarm_peers == 2 && strcmp(si.h.owner, "A") == 0;
                       }));
    assert_true(stored);
}

/* An epoch must never be handed out twice: after Redis lost its data, B acquires partition P
 * again and gets epoch 1, the epoch A (fenced out before the loss, and unaware of it) still
 * holds for P. A's write of P must still be refused. */
static void epoch_reused_after_data_loss_stays_fenced(void **state)
{
    fixture_t *f = *state;
    node_t *a = owner_with_round0(f, 0, "A", LONG_MS, false);
    view_set_alive(&a->view, "B", true);
    const uint32_t p = sw_part(0);
    /* Park A so its idle fence probe cannot notice B's takeover or the loss in between. */
    assert_true(view_park(&a->view));

    node_t *b = node_init(f, 1, "B", p, 1); /* B owns P only, and sees A dead */
    node_keeper(b, redis.url, HANDOVER_MS, false);
    assert_true(keeper_wait_restored(b->k, WAIT_MS));
    assert_int_equal(raw_int("GET shoal:{p%u}:epoch", p), 2);
    assert_int_equal(stats(a).lost, 0); /* A did not write P since: it does not know */

    redisReply *r = redis_fixture_command(&redis, "FLUSHALL");
    assert_non_null(r);
    freeReplyObject(r);
    announce_t nb = peer_req(0, 5, 1); /* B writes P: no epoch; B acquires P again (epoch 1) */
    announce(b->repo, &nb);
    assert_true(POLL(WAIT_MS, stats(b).gone >= 1 && stats(b).acquired >= 2 && stats(b).held == 1 &&
                                  raw_int("EXISTS shoal:{p%u}:snap", p) == 1));
    assert_int_equal(raw_int("GET shoal:{p%u}:epoch", p), 1);

    uint64_t written = stats(a).partitions;
    announce_t na = peer_req(0, 6, 1); /* A writes P with the epoch it got before the loss: 1 */
    announce(a->repo, &na);
    view_open(&a->view);
    assert_true(POLL(WAIT_MS, stats(a).lost >= 1 || stats(a).partitions > written));
    assert_int_equal(stats(a).partitions, written); /* refused, */
    assert_int_equal(stats(a).lost, 1);             /* so A knows P is lost */
    assert_false(keeper_may_serve(a->k, p));
    redisContext *c = redis_fixture_connect(&redis);
    assert_non_null(c);
    snapinfo_t si = snap_info(c, p, NULL);
    redisFree(c);
    assert_true(si.present);
    assert_string_equal(si.h.owner, "B"); /* A must not have overwritten B's snapshot */
}

int main(void)
{
    if (!redis_fixture_find(&redis)) {
        printf("SKIP: redis-server is not installed (apt-get install redis-server)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    if (getenv("KEEPER_TEST_FILTER"))
        cmocka_set_test_filter(getenv("KEEPER_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(config_errors_are_refused),
        cmocka_unit_test_setup_teardown(restore_after_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(fenced_writer_loses_and_cannot_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(planned_handover, setup, teardown),
        cmocka_unit_test_setup_teardown(leaving_mark_makes_acquirer_wait, setup, teardown),
        cmocka_unit_test_setup_teardown(handover_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(redis_data_loss_rewrites_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(lease_gap_blocks_until_rechecked, setup, teardown),
        cmocka_unit_test_setup_teardown(lease_gap_finds_partitions_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(redis_unreachable_keeps_serving, setup, teardown),
        cmocka_unit_test_setup_teardown(redis_silent_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(acquisition_merges_into_announced, setup, teardown),
        cmocka_unit_test_setup_teardown(lost_partitions_are_taken_back_after_release, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(rebalance_hands_over_only_moved_partitions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(redis_restarted_empty_after_outage, setup, teardown),
        cmocka_unit_test_setup_teardown(lease_gap_over_redis_data_loss_rewrites, setup, teardown),
        cmocka_unit_test_setup_teardown(reacquired_partition_keeps_what_only_the_loser_had, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(epoch_reused_after_data_loss_stays_fenced, setup, teardown),
    };
    return cmocka_run_group_tests_name("keeper", tests, group_setup, group_teardown);
}
