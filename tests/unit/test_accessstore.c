/* SPDX-License-Identifier: MIT */
/* test_accessstore: the cluster-wide access list in Redis (runtime/accessstore.c) and the
 * gateways' poller of it (runtime/accesssync.c), against a real redis-server started here on a
 * free loopback port: add/remove/version semantics, replace with 0, 3 and 1 M hashes (timed),
 * consistent loads while another connection replaces the list, missing and foreign keys, Redis
 * down; two pollers on one Redis (two gateways) converging on an edit, seeding only when no list
 * exists, a restarted poller picking the list up, Redis restarted empty (the last list is stored
 * again) and Redis down at start.
 *
 * Exits 77 (skipped) only when redis-server is not installed. Every wait is a bounded poll or a
 * bounded condition wait; the bounds are generous (CI runs this beside other tests on 2 cores).
 * Threads a test starts (pollers, a writer) are stopped by its teardown, so a failed assertion
 * leaves none running into the next test. */
#include "accesslist.h"
#include "accessstore.h"
#include "accesssync.h"
#include "rconn.h"
#include "redis_fixture.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>

#include <cmocka.h>

#define PREFIX  "t"
#define WAIT_MS 5000
/* A generous bound for one step on 1 M hashes (~1-3 s alone, the numbers are printed): CI
 * shares 2 cores among several tests, where a replace took 15 s; sanitizers slow the client's
 * side several times over. */
#if defined(__SANITIZE_THREAD__)
#define BIG      250000 /* ThreadSanitizer is ~5x slower here; the threads are what it checks */
#define BOUND_MS 60000
#elif defined(__SANITIZE_ADDRESS__)
#define BIG      1000000
#define BOUND_MS 60000
#else
#define BIG      1000000
#define BOUND_MS 45000
#endif
#define POLL_MS  ACCESSSYNC_POLL_MS_DEFAULT
#define CONVERGE 5000 /* an edit through one poller reaches the other within this (~1 poll) */
/* The same on a BIG list: the other poller applies it from the log, but rebuilding a set of BIG
 * takes ~0.2 s alone, 2-4 s on a loaded machine and over 20 s loaded under AddressSanitizer. */
#define CONVERGE_BIG    BOUND_MS
#define SYNC_TIMEOUT_MS 5000 /* the pollers' Redis timeout (new_sync()) */
#define SEED_HASH       0x5eed5eed5eed5eedull

/* Commands get 20 s: a FLUSHALL of a BIG list on a loaded machine takes seconds. */
static redis_fixture_t redis = {
    .connect_ms = 500, .command_ms = 20000, .start_ms = WAIT_MS, .pid = -1};

/* ---- helpers -------------------------------------------------------------------------------- */

/* Hash number i of family f: distinct for distinct (f, i). */
static void mkhash(uint8_t out[ASET_HASH_LEN], uint32_t f, uint32_t i)
{
    memset(out, 0, ASET_HASH_LEN);
    memcpy(out, &f, 4);
    memcpy(out + 4, &i, 4);
    out[19] = 0xA5;
}

static uint8_t *mkhashes(uint32_t f, size_t n)
{
    uint8_t *a = malloc(n * ASET_HASH_LEN + 1);
    for (size_t i = 0; a && i < n; i++)
        mkhash(a + i * ASET_HASH_LEN, f, (uint32_t)i);
    return a;
}

static redisContext *conn(void)
{
    rconn_url_t url;
    char err[256];
    assert_int_equal(rconn_parse(redis.url, &url, err, sizeof(err)), 0);
    /* 10 s a command: a pipelined SADD of a BIG replace waited over 2 s on a loaded machine. */
    redisContext *c = rconn_open(&url, 10000, err, sizeof(err));
    if (!c)
        fail_msg("rconn_open: %s", err);
    return c;
}

static long long raw_int(const char *fmt, const char *arg)
{
    redisReply *r = redis_fixture_command(&redis, fmt, arg);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return v;
}

static long long raw_version(void)
{
    redisReply *r = redis_fixture_command(&redis, "GET " PREFIX ":access:version");
    long long v = -1;
    if (r && r->type == REDIS_REPLY_NIL)
        v = 0;
    else if (r && r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    if (r)
        freeReplyObject(r);
    return v;
}

static long long staging_keys(void)
{
    redisReply *r = redis_fixture_command(&redis, "KEYS " PREFIX ":access:staging:*");
    long long n = r && r->type == REDIS_REPLY_ARRAY ? (long long)r->elements : -1;
    if (r)
        freeReplyObject(r);
    return n;
}

/* Milliseconds Redis spent in cmd (lower case) since CONFIG RESETSTAT, or -1. */
static long long redis_busy_ms(const char *cmd)
{
    redisReply *r = redis_fixture_command(&redis, "INFO commandstats");
    long long usec = -1;
    char key[64];
    snprintf(key, sizeof(key), "cmdstat_%s:", cmd);
    const char *p = r && r->type == REDIS_REPLY_STRING ? strstr(r->str, key) : NULL;
    if (p && (p = strstr(p, "usec=")))
        usec = atoll(p + 5);
    if (r)
        freeReplyObject(r);
    return usec < 0 ? -1 : usec / 1000;
}

/* ---- fixtures ------------------------------------------------------------------------------- */

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

static int flush(void **state)
{
    (void)state;
    return redis_fixture_flush(&redis);
}

/* ---- accessstore ---------------------------------------------------------------------------- */

static void add_and_remove_bump_the_version_only_on_change(void **state)
{
    (void)state;
    redisContext *c = conn();
    char err[256];
    uint8_t h1[20], h2[20];
    mkhash(h1, 1, 1);
    mkhash(h2, 1, 2);
    uint64_t v = 99;
    assert_int_equal(accessstore_version(c, PREFIX, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 0);

    assert_int_equal(accessstore_add(c, PREFIX, h1, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 1);
    assert_int_equal(accessstore_add(c, PREFIX, h1, &v, err, sizeof(err)), 0); /* no churn */
    assert_int_equal(v, 1);
    assert_int_equal(accessstore_add(c, PREFIX, h2, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 2);
    assert_int_equal(accessstore_remove(c, PREFIX, h1, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 3);
    assert_int_equal(accessstore_remove(c, PREFIX, h1, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 3);
    assert_int_equal(accessstore_version(c, PREFIX, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 3);
    assert_int_equal(raw_version(), 3);
    assert_int_equal(raw_int("SCARD %s", PREFIX ":access:set"), 1);

    /* The members are the raw 20 bytes. */
    redisReply *r =
        redis_fixture_command(&redis, "SISMEMBER " PREFIX ":access:set %b", h2, (size_t)20);
    assert_non_null(r);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);

    /* Removing the last one leaves an empty list that exists (version kept, set key gone). */
    assert_int_equal(accessstore_remove(c, PREFIX, h2, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 4);
    assert_int_equal(raw_int("EXISTS %s", PREFIX ":access:set"), 0);
    assert_int_equal(raw_version(), 4);
    redisFree(c);
}

static void the_change_log_says_what_changed_since_a_version(void **state)
{
    (void)state;
    redisContext *c = conn();
    char err[256];
    uint8_t h1[20], h2[20];
    mkhash(h1, 20, 1);
    mkhash(h2, 20, 2);
    uint64_t v;
    assert_int_equal(accessstore_add(c, PREFIX, h1, &v, err, sizeof(err)), 1);
    assert_int_equal(accessstore_add(c, PREFIX, h2, &v, err, sizeof(err)), 1);
    assert_int_equal(accessstore_add(c, PREFIX, h2, &v, err, sizeof(err)), 0); /* not logged */
    assert_int_equal(accessstore_remove(c, PREFIX, h1, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 3);

    accessstore_change_t ch[8];
    size_t n = 99;
    assert_int_equal(accessstore_changes(c, PREFIX, 0, ch, 8, &n, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 3);
    assert_int_equal(n, 3);
    assert_true(ch[0].present);
    assert_memory_equal(ch[0].hash, h1, 20);
    assert_true(ch[1].present);
    assert_memory_equal(ch[1].hash, h2, 20);
    assert_false(ch[2].present);
    assert_memory_equal(ch[2].hash, h1, 20);
    assert_int_equal(accessstore_changes(c, PREFIX, 2, ch, 8, &n, &v, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    assert_false(ch[0].present);
    assert_int_equal(accessstore_changes(c, PREFIX, 3, ch, 8, &n, &v, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    /* More than max, or a version from before a restart: read in full. */
    assert_int_equal(accessstore_changes(c, PREFIX, 0, ch, 2, &n, &v, err, sizeof(err)), 1);
    assert_int_equal(accessstore_changes(c, PREFIX, 9, ch, 8, &n, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 3);

    /* A replace clears the log: nobody can catch up over it. */
    assert_int_equal(accessstore_replace(c, PREFIX, h2, 1, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 4);
    assert_int_equal(accessstore_changes(c, PREFIX, 3, ch, 8, &n, &v, err, sizeof(err)), 1);
    assert_int_equal(accessstore_add(c, PREFIX, h1, &v, err, sizeof(err)), 1);
    assert_int_equal(accessstore_changes(c, PREFIX, 4, ch, 8, &n, &v, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v, 5);

    /* The log keeps the last ACCESSSTORE_LOG_MAX changes. */
    for (uint32_t i = 0; i < ACCESSSTORE_LOG_MAX + 10; i++) {
        uint8_t h[20];
        mkhash(h, 21, i);
        assert_int_equal(accessstore_add(c, PREFIX, h, &v, err, sizeof(err)), 1);
    }
    assert_int_equal(raw_int("LLEN %s", PREFIX ":access:log"), ACCESSSTORE_LOG_MAX);
    redisFree(c);
}

static void remove_from_no_list_changes_nothing(void **state)
{
    (void)state;
    redisContext *c = conn();
    char err[256];
    uint8_t h[20];
    mkhash(h, 2, 0);
    uint64_t v = 99;
    assert_int_equal(accessstore_remove(c, PREFIX, h, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 0);
    assert_int_equal(raw_int("EXISTS %s", PREFIX ":access:version"), 0);

    uint8_t *hashes = (uint8_t *)"x";
    size_t n = 7;
    assert_int_equal(accessstore_load_raw(c, PREFIX, &hashes, &n, &v, err, sizeof(err)), 0);
    assert_null(hashes);
    assert_int_equal(n, 0);
    assert_int_equal(v, 0);
    redisFree(c);
}

static void replace_with_three_then_none(void **state)
{
    (void)state;
    redisContext *c = conn();
    char err[256];
    uint8_t three[4 * 20];
    mkhash(three, 3, 0);
    mkhash(three + 20, 3, 1);
    mkhash(three + 40, 3, 2);
    mkhash(three + 60, 3, 1); /* a repeat */
    uint8_t stale[20];
    mkhash(stale, 3, 99);
    uint64_t v;
    assert_int_equal(accessstore_add(c, PREFIX, stale, &v, err, sizeof(err)), 1);

    assert_int_equal(accessstore_replace(c, PREFIX, three, 4, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 2);
    assert_int_equal(raw_int("SCARD %s", PREFIX ":access:set"), 3);
    assert_int_equal(raw_int("PTTL %s", PREFIX ":access:set"), -1); /* the staging ttl is gone */
    assert_int_equal(staging_keys(), 0);

    aset_builder_t *b = aset_builder_new();
    assert_int_equal(accessstore_load(c, PREFIX, b, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 2);
    aset_t *s = aset_build(&b, 1);
    assert_int_equal(aset_count(s), 3);
    assert_true(aset_contains(s, three + 40));
    assert_false(aset_contains(s, stale));
    aset_free(&s);

    /* The same contents again still count as a change (an explicit reload). */
    assert_int_equal(accessstore_replace(c, PREFIX, three, 3, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 3);

    assert_int_equal(accessstore_replace(c, PREFIX, NULL, 0, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 4);
    assert_int_equal(raw_int("EXISTS %s", PREFIX ":access:set"), 0);
    assert_int_equal(raw_version(), 4);
    uint8_t *hashes;
    size_t n;
    assert_int_equal(accessstore_load_raw(c, PREFIX, &hashes, &n, &v, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    assert_int_equal(v, 4); /* an empty list, not a missing one */
    free(hashes);
    redisFree(c);
}

static void store_if_absent_stores_once_above_the_floor(void **state)
{
    (void)state;
    redisContext *c = conn();
    char err[256];
    uint8_t *a = mkhashes(4, 5), *b = mkhashes(5, 2);
    uint64_t v;
    assert_int_equal(accessstore_store_if_absent(c, PREFIX, a, 5, 0, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 1);
    assert_int_equal(accessstore_store_if_absent(c, PREFIX, b, 2, 0, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 1);
    assert_int_equal(raw_int("SCARD %s", PREFIX ":access:set"), 5);
    assert_int_equal(staging_keys(), 0);

    /* Redis lost the keys; a gateway that knew version 7 stores its list as 8. */
    redisReply *r =
        redis_fixture_command(&redis, "DEL %s %s", PREFIX ":access:set", PREFIX ":access:version");
    freeReplyObject(r);
    assert_int_equal(accessstore_store_if_absent(c, PREFIX, b, 2, 7, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 8);
    assert_int_equal(raw_version(), 8);
    assert_int_equal(raw_int("SCARD %s", PREFIX ":access:set"), 2);
    free(a);
    free(b);
    redisFree(c);
}

static void replace_and_load_a_million(void **state)
{
    (void)state;
    redisContext *c = conn();
    char err[256];
    uint8_t *big = mkhashes(6, BIG);
    assert_non_null(big);
    uint64_t v;
    freeReplyObject(redis_fixture_command(&redis, "CONFIG RESETSTAT"));
    int64_t t0 = redis_fixture_now_ms();
    if (accessstore_replace(c, PREFIX, big, BIG, &v, err, sizeof(err)) != 0)
        fail_msg("replace: %s", err);
    int64_t t1 = redis_fixture_now_ms();
    assert_int_equal(v, 1);
    assert_int_equal(raw_int("SCARD %s", PREFIX ":access:set"), BIG);

    uint8_t *hashes;
    size_t n;
    if (accessstore_load_raw(c, PREFIX, &hashes, &n, &v, err, sizeof(err)) != 0)
        fail_msg("load: %s", err);
    int64_t t2 = redis_fixture_now_ms();
    assert_int_equal(v, 1);
    assert_true(n >= BIG); /* a rehash during the scan may repeat some */
    free(hashes);

    aset_builder_t *b = aset_builder_new();
    int64_t t3 = redis_fixture_now_ms();
    if (accessstore_load(c, PREFIX, b, &v, err, sizeof(err)) != 0)
        fail_msg("load: %s", err);
    int64_t t4 = redis_fixture_now_ms();
    aset_t *s = aset_build(&b, SEED_HASH);
    int64_t t5 = redis_fixture_now_ms();
    assert_non_null(s);
    assert_int_equal(aset_count(s), BIG);
    assert_true(aset_contains(s, big));
    assert_true(aset_contains(s, big + (size_t)(BIG - 1) * 20));
    printf("# %d hashes: replace %" PRId64 " ms, load_raw %" PRId64
           " ms, load into builder %" PRId64 " ms, aset_build %" PRId64 " ms\n",
           BIG, t1 - t0, t2 - t1, t4 - t3, t5 - t4);
    printf("# of which Redis itself was busy: SADD %lld ms, SSCAN %lld ms (both loads), EVAL %lld "
           "ms\n",
           redis_busy_ms("sadd"), redis_busy_ms("sscan"), redis_busy_ms("eval"));
    assert_true(t1 - t0 < BOUND_MS);
    assert_true(t2 - t1 < BOUND_MS);
    assert_true(t4 - t3 < BOUND_MS);
    aset_free(&s);

    /* And replace a million with a million more, then with none. */
    uint8_t *other = mkhashes(7, BIG);
    t0 = redis_fixture_now_ms();
    assert_int_equal(accessstore_replace(c, PREFIX, other, BIG, &v, err, sizeof(err)), 0);
    printf("# %d over %d: replace %" PRId64 " ms\n", BIG, BIG, redis_fixture_now_ms() - t0);
    assert_int_equal(v, 2);
    assert_int_equal(accessstore_replace(c, PREFIX, NULL, 0, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 3);
    assert_int_equal(raw_int("EXISTS %s", PREFIX ":access:set"), 0);
    assert_int_equal(staging_keys(), 0);
    free(other);
    free(big);
    redisFree(c);
}

/* A writer replacing the list with family k (LIST_N hashes, all of family k) over and over. */
#define LIST_N     20000
#define WRITER_MAX 2000
#define READS      40
static atomic_bool writer_stop;
static pthread_t writer_thread;
static bool writer_running;

/* No cmocka call in here: a failure off the main thread cannot leave a test. */
static void *writer(void *arg)
{
    (void)arg;
    rconn_url_t url;
    char err[256];
    redisContext *c = rconn_parse(redis.url, &url, err, sizeof(err)) == 0
                          ? rconn_open(&url, 10000, err, sizeof(err))
                          : NULL;
    uint8_t *lists[2] = {mkhashes(100, LIST_N), mkhashes(101, LIST_N)};
    for (int k = 0; c && lists[0] && lists[1] && k < WRITER_MAX && !atomic_load(&writer_stop);
         k++) {
        uint64_t v;
        if (accessstore_replace(c, PREFIX, lists[k % 2], LIST_N, &v, err, sizeof(err)) != 0)
            break;
    }
    free(lists[0]);
    free(lists[1]);
    if (c)
        redisFree(c);
    return NULL;
}

/* Stop and join the writer, also when the test failed while it ran. */
static int writer_teardown(void **state)
{
    (void)state;
    if (writer_running) {
        atomic_store(&writer_stop, true);
        pthread_join(writer_thread, NULL);
        writer_running = false;
    }
    return 0;
}

static void loads_are_consistent_while_the_list_is_replaced(void **state)
{
    (void)state;
    redisContext *c = conn();
    char err[256];
    uint8_t *first = mkhashes(100, LIST_N);
    uint64_t v;
    assert_int_equal(accessstore_replace(c, PREFIX, first, LIST_N, &v, err, sizeof(err)), 0);
    free(first);
    atomic_store(&writer_stop, false);
    assert_int_equal(pthread_create(&writer_thread, NULL, writer, NULL), 0);
    writer_running = true;
    int ok = 0, gave_up = 0;
    uint64_t last_v = 0;
    for (int i = 0; i < READS; i++) {
        uint8_t *hashes;
        size_t n;
        if (accessstore_load_raw(c, PREFIX, &hashes, &n, &v, err, sizeof(err)) != 0) {
            assert_non_null(strstr(err, "changed during"));
            gave_up++;
            continue;
        }
        /* One version's list: every hash of one family, all of it. */
        uint32_t fam;
        memcpy(&fam, hashes, 4);
        assert_true(fam == 100 || fam == 101);
        aset_builder_t *b = aset_builder_new();
        for (size_t j = 0; j < n; j++) {
            uint32_t f;
            memcpy(&f, hashes + j * 20, 4);
            assert_int_equal(f, fam);
            assert_int_equal(aset_builder_add(b, hashes + j * 20), 0);
        }
        aset_t *s = aset_build(&b, 3);
        assert_int_equal(aset_count(s), LIST_N);
        aset_free(&s);
        assert_true(v >= last_v);
        last_v = v;
        free(hashes);
        ok++;
    }
    assert_int_equal(writer_teardown(NULL), 0);
    printf("# %d consistent loads, %d gave up, during replaces up to version %" PRIu64 "\n", ok,
           gave_up, last_v);
    assert_true(ok > 0);
    redisFree(c);
}

static void foreign_members_and_bad_versions(void **state)
{
    (void)state;
    redisContext *c = conn();
    char err[256] = "";
    uint8_t h[20];
    mkhash(h, 8, 0);
    uint64_t v;
    assert_int_equal(accessstore_add(c, PREFIX, h, &v, err, sizeof(err)), 1);
    redisReply *r = redis_fixture_command(&redis, "SADD %s short", PREFIX ":access:set");
    freeReplyObject(r);
    uint8_t *hashes;
    size_t n;
    assert_int_equal(accessstore_load_raw(c, PREFIX, &hashes, &n, &v, err, sizeof(err)), 0);
    assert_int_equal(n, 1); /* not 20 bytes: skipped */
    assert_memory_equal(hashes, h, 20);
    free(hashes);

    r = redis_fixture_command(&redis, "SET %s banana", PREFIX ":access:version");
    freeReplyObject(r);
    assert_int_equal(accessstore_version(c, PREFIX, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unsigned integer"));
    err[0] = '\0';
    mkhash(h, 8, 1);
    assert_int_equal(accessstore_add(c, PREFIX, h, &v, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a number"));
    assert_int_equal(raw_int("SCARD %s", PREFIX ":access:set"), 2); /* nothing added */
    assert_int_equal(accessstore_replace(c, PREFIX, h, 1, &v, err, sizeof(err)), -1);
    assert_int_equal(staging_keys(), 0);
    assert_int_equal(accessstore_load_raw(c, PREFIX, &hashes, &n, &v, err, sizeof(err)), -1);
    assert_null(hashes);
    redisFree(c);
}

static void redis_down_is_an_error_with_a_reason(void **state)
{
    (void)state;
    redisContext *c = conn();
    redis_fixture_stop(&redis);
    char err[256] = "";
    uint8_t h[20];
    mkhash(h, 9, 0);
    uint64_t v;
    assert_int_equal(accessstore_add(c, PREFIX, h, &v, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');
    printf("# add with Redis down: %s\n", err);
    redisFree(c);

    /* A connection attempt says why, without the password. */
    char url[128];
    snprintf(url, sizeof(url), "redis://u:hunter2@127.0.0.1:%d", redis.port);
    rconn_url_t u;
    assert_int_equal(rconn_parse(url, &u, err, sizeof(err)), 0);
    err[0] = '\0';
    assert_null(rconn_open(&u, 300, err, sizeof(err)));
    assert_true(err[0] != '\0');
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(redis_fixture_start(&redis), 0);
}

/* ---- accesssync ----------------------------------------------------------------------------- */

/* What one poller handed over, and its log lines. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    aset_t *set;
    uint64_t version;
    int calls;
    int empty_after_list; /* sets of 0 entries handed over after a non-empty one */
    char log[8192];
} watch_t;

static void watch_init(watch_t *w)
{
    memset(w, 0, sizeof(*w));
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
}

static void watch_fini(watch_t *w)
{
    aset_free(&w->set);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
}

static void on_set(void *arg, aset_t *set, uint64_t version)
{
    watch_t *w = arg;
    pthread_mutex_lock(&w->mu);
    if (w->set && aset_count(w->set) > 0 && aset_count(set) == 0)
        w->empty_after_list++;
    aset_free(&w->set);
    w->set = set;
    w->version = version;
    w->calls++;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static void on_log(void *arg, slog_level_t level, const char *msg)
{
    watch_t *w = arg;
    pthread_mutex_lock(&w->mu);
    size_t used = strlen(w->log);
    snprintf(w->log + used, sizeof(w->log) - used, "%d %s\n", (int)level, msg);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

/* Wait up to ms for w to hold version >= v with h in it (h NULL: any contents; absent: h must
 * not be in it). Returns the milliseconds it took, or -1. */
static int64_t wait_version(watch_t *w, uint64_t v, const uint8_t *h, bool present, int64_t ms)
{
    int64_t t0 = redis_fixture_now_ms();
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    int64_t took = -1;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        if (w->calls > 0 && w->version >= v && (!h || aset_contains(w->set, h) == present)) {
            took = redis_fixture_now_ms() - t0;
            break;
        }
        if (pthread_cond_timedwait(&w->cond, &w->mu, &deadline) != 0)
            break;
    }
    pthread_mutex_unlock(&w->mu);
    return took;
}

static size_t watch_count(watch_t *w)
{
    pthread_mutex_lock(&w->mu);
    size_t n = w->set ? aset_count(w->set) : 0;
    pthread_mutex_unlock(&w->mu);
    return n;
}

static uint64_t watch_version(watch_t *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t v = w->version;
    pthread_mutex_unlock(&w->mu);
    return v;
}

static bool watch_has(watch_t *w, const uint8_t *h)
{
    pthread_mutex_lock(&w->mu);
    bool has = w->set && aset_contains(w->set, h);
    pthread_mutex_unlock(&w->mu);
    return has;
}

static bool log_has(watch_t *w, const char *text)
{
    pthread_mutex_lock(&w->mu);
    bool has = strstr(w->log, text) != NULL;
    pthread_mutex_unlock(&w->mu);
    return has;
}

/* Wait up to ms for a line with text in w's log. A poller logs some lines (a failure, Redis
 * answering again) after the poll that caused them, so after on_set or a counter moved. */
static bool wait_log(watch_t *w, const char *text, int64_t ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&w->mu);
    bool has;
    while (!(has = strstr(w->log, text) != NULL) &&
           pthread_cond_timedwait(&w->cond, &w->mu, &deadline) == 0)
        ;
    pthread_mutex_unlock(&w->mu);
    return has;
}

/* The running test's gateways and their watches. They live here, not on the test's stack, and
 * sync_teardown() stops every poller before it frees a watch: a failed assertion leaves the test
 * by longjmp, and a poller left running would go on calling on_set on a watch that is gone (seen
 * as a crash, or a deadlock on a mutex in reused memory, in a later test). */
#define GATEWAYS 2
static watch_t watches[GATEWAYS];
static accesssync_t *pollers[GATEWAYS];

static int sync_setup(void **state)
{
    for (int i = 0; i < GATEWAYS; i++) {
        watch_init(&watches[i]);
        pollers[i] = NULL;
    }
    return flush(state);
}

static int sync_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < GATEWAYS; i++)
        accesssync_destroy(&pollers[i]);
    for (int i = 0; i < GATEWAYS; i++)
        watch_fini(&watches[i]);
    return 0;
}

/* Stop the gateway that reports to w (one of watches[]) and clear w for its next start. */
static void stop_gateway(watch_t *w)
{
    accesssync_destroy(&pollers[w - watches]);
    watch_fini(w);
    watch_init(w);
}

/* A gateway reporting to w (one of watches[], with no gateway yet), started if start. Its
 * Redis timeout is generous: CI shares 2 cores among several tests, and a command timing out
 * there would be an error (and a full read) that these tests count as a bug. */
static accesssync_t *new_sync(watch_t *w, const char *url, const uint8_t *seed, size_t n,
                              bool start)
{
    ptrdiff_t i = w - watches;
    assert_true(i >= 0 && i < GATEWAYS);
    assert_null(pollers[i]);
    accesssync_config_t cfg = {
        .redis_url = url ? url : redis.url,
        .prefix = PREFIX,
        .timeout_ms = SYNC_TIMEOUT_MS,
        .hash_seed = SEED_HASH,
        .on_set = on_set,
        .set_arg = w,
        .log = on_log,
        .log_arg = w,
    };
    char err[256];
    accesssync_t *s = accesssync_new(&cfg, err, sizeof(err));
    if (!s)
        fail_msg("accesssync_new: %s", err);
    pollers[i] = s; /* the teardown's from here on */
    if (seed && accesssync_seed(s, seed, n, err, sizeof(err)) != 0)
        fail_msg("accesssync_seed: %s", err);
    if (start && accesssync_start(s, err, sizeof(err)) != 0)
        fail_msg("accesssync_start: %s", err);
    return s;
}

static void config_is_checked(void **state)
{
    (void)state;
    char err[256] = "";
    accesssync_config_t cfg = {.redis_url = "http://x", .prefix = PREFIX, .on_set = on_set};
    assert_null(accesssync_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "redis://"));
    cfg.redis_url = redis.url;
    cfg.on_set = NULL;
    assert_null(accesssync_new(&cfg, err, sizeof(err)));
    cfg.on_set = on_set;
    cfg.prefix = "";
    assert_null(accesssync_new(&cfg, err, sizeof(err)));
    cfg.prefix = PREFIX;
    accesssync_t *s = accesssync_new(&cfg, err, sizeof(err)); /* on_set is never called */
    assert_non_null(s);
    accesssync_destroy(&s); /* never started */
    assert_null(s);
    accesssync_destroy(&s); /* NULL-safe */
}

static void no_list_gives_an_empty_set_of_version_zero(void **state)
{
    (void)state;
    watch_t *w = &watches[0];
    accesssync_t *s = new_sync(w, NULL, NULL, 0, true);
    assert_true(wait_version(w, 0, NULL, true, WAIT_MS) >= 0);
    assert_int_equal(watch_count(w), 0);
    assert_int_equal(watch_version(w), 0);
    assert_int_equal(raw_int("EXISTS %s", PREFIX ":access:version"), 0); /* nothing stored */
    accesssync_stats_t st;
    accesssync_stats(s, &st);
    assert_true(st.loaded);
    assert_true(st.connected);
    assert_false(st.seeded);
}

static void an_edit_through_one_gateway_reaches_the_other(void **state)
{
    (void)state;
    watch_t *wa = &watches[0], *wb = &watches[1];
    accesssync_t *a = new_sync(wa, NULL, NULL, 0, true);
    accesssync_t *b = new_sync(wb, NULL, NULL, 0, true);
    assert_true(wait_version(wa, 0, NULL, true, WAIT_MS) >= 0);
    assert_true(wait_version(wb, 0, NULL, true, WAIT_MS) >= 0);

    uint8_t h[20];
    mkhash(h, 10, 1);
    char err[256];
    uint64_t v = 0;
    assert_int_equal(accesssync_add(a, h, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 1);
    int64_t own = wait_version(wa, 1, h, true, CONVERGE);
    int64_t other = wait_version(wb, 1, h, true, CONVERGE);
    printf("# add: the editing gateway applied it after %" PRId64 " ms, the other after %" PRId64
           " ms (poll %d ms)\n",
           own, other, POLL_MS);
    assert_true(own >= 0);
    assert_true(other >= 0);
    assert_int_equal(accesssync_add(a, h, &v, err, sizeof(err)), 0); /* already there */

    /* Remove through the other one. */
    assert_int_equal(accesssync_remove(b, h, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 2);
    assert_true(wait_version(wa, 2, h, false, CONVERGE) >= 0);
    assert_true(wait_version(wb, 2, h, false, CONVERGE) >= 0);

    /* A reload (replace) through one reaches both. */
    uint8_t *list = mkhashes(11, 1000);
    assert_int_equal(accesssync_replace(b, list, 1000, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 3);
    assert_true(wait_version(wa, 3, list + 999 * 20, true, CONVERGE) >= 0);
    assert_true(wait_version(wb, 3, list + 999 * 20, true, CONVERGE) >= 0);
    assert_int_equal(watch_count(wa), 1000);
    assert_int_equal(watch_count(wb), 1000);

    /* An edit made behind the pollers' backs (another tool) is seen by version too. */
    uint8_t h2[20];
    mkhash(h2, 10, 2);
    redisContext *c = conn();
    assert_int_equal(accessstore_add(c, PREFIX, h2, &v, err, sizeof(err)), 1);
    redisFree(c);
    assert_true(wait_version(wa, 4, h2, true, CONVERGE) >= 0);
    assert_true(wait_version(wb, 4, h2, true, CONVERGE) >= 0);

    accesssync_stats_t st;
    accesssync_stats(a, &st);
    assert_int_equal(st.version, 4);
    assert_int_equal(st.entries, 1001);
    assert_true(st.connected);
    assert_int_equal(st.errors, 0);
    /* The first set (no list: empty, version 0) and the replace were read in full; the adds and
     * the remove came from the change log. */
    assert_int_equal(st.deltas, 3);
    assert_int_equal(st.loads - st.deltas, 2);
    free(list);
}

static void an_edit_to_a_big_list_is_applied_from_the_log(void **state)
{
    (void)state;
    redisContext *c = conn();
    char err[256];
    uint8_t *big = mkhashes(22, BIG);
    uint64_t v;
    assert_int_equal(accessstore_replace(c, PREFIX, big, BIG, &v, err, sizeof(err)), 0);
    redisFree(c);
    watch_t *wa = &watches[0], *wb = &watches[1];
    accesssync_t *a = new_sync(wa, NULL, NULL, 0, true);
    accesssync_t *b = new_sync(wb, NULL, NULL, 0, true);
    /* Two full reads of BIG at once. Twice BOUND_MS, well inside ctest's 240 s for the whole
     * program: a poller that never delivers fails here with a line, not as a timeout. */
    assert_true(wait_version(wa, 1, big, true, 2 * BOUND_MS) >= 0);
    assert_true(wait_version(wb, 1, big, true, 2 * BOUND_MS) >= 0);
    assert_int_equal(watch_count(wb), BIG);

    uint8_t h[20];
    mkhash(h, 23, 0);
    assert_int_equal(accesssync_add(a, h, &v, err, sizeof(err)), 1);
    assert_int_equal(accesssync_remove(a, big, &v, err, sizeof(err)), 1);
    int64_t took = wait_version(wb, 3, big, false, CONVERGE_BIG);
    printf("# %d hashes: an add and a remove through one gateway reached the other after %" PRId64
           " ms\n",
           BIG, took);
    accesssync_stats_t st;
    accesssync_stats(b, &st);
    printf("# the other gateway: %" PRIu64 " sets, %" PRIu64 " from the change log, %" PRIu64
           " errors, version %" PRIu64 "\n",
           st.loads, st.deltas, st.errors, st.version);
    assert_true(took >= 0);
    assert_true(watch_has(wb, h));
    assert_int_equal(watch_count(wb), BIG);
    accesssync_stats(b, &st); /* the set seen above (or later) is counted */
    /* One full read at start; another only after a failure (a reconnect reads in full). The
     * poller counts a set before it hands it to on_set (accesssync_stats()), so the set just
     * seen is counted with its kind however late the poller's thread runs after on_set. */
    assert_true(st.loads - st.deltas <= 1 + st.errors);
    assert_true(st.deltas >= 1);
    free(big);
}

static void the_seed_is_stored_only_when_no_list_exists(void **state)
{
    (void)state;
    uint8_t *seed_a = mkhashes(12, 2), *seed_b = mkhashes(13, 3);
    watch_t *wa = &watches[0], *wb = &watches[1];
    accesssync_t *a = new_sync(wa, NULL, seed_a, 2, true);
    assert_true(wait_version(wa, 1, seed_a, true, WAIT_MS) >= 0);
    assert_int_equal(watch_count(wa), 2);
    accesssync_stats_t st;
    accesssync_stats(a, &st);
    assert_true(st.seeded);
    assert_true(log_has(wa, "stored the --access-list file's 2 entries"));

    /* A second gateway with another file: the cluster's list wins. */
    accesssync_t *b = new_sync(wb, NULL, seed_b, 3, true);
    assert_true(wait_version(wb, 1, seed_a, true, WAIT_MS) >= 0);
    assert_int_equal(watch_count(wb), 2);
    assert_false(watch_has(wb, seed_b));
    accesssync_stats(b, &st);
    assert_false(st.seeded);
    assert_true(st.seed_refused);
    assert_true(log_has(wb, "wins; the --access-list file is not stored"));
    assert_int_equal(raw_version(), 1);
    assert_int_equal(raw_int("SCARD %s", PREFIX ":access:set"), 2);
    stop_gateway(wa);
    stop_gateway(wb);

    /* Two gateways with different files starting at once: exactly one stores its file. */
    assert_int_equal(redis_fixture_flush(&redis), 0);
    a = new_sync(wa, NULL, seed_a, 2, false);
    b = new_sync(wb, NULL, seed_b, 3, false);
    char err[256];
    assert_int_equal(accesssync_start(a, err, sizeof(err)), 0);
    assert_int_equal(accesssync_start(b, err, sizeof(err)), 0);
    assert_true(wait_version(wa, 1, NULL, true, WAIT_MS) >= 0);
    assert_true(wait_version(wb, 1, NULL, true, WAIT_MS) >= 0);
    accesssync_stats_t sa, sb;
    accesssync_stats(a, &sa);
    accesssync_stats(b, &sb);
    assert_true(sa.seeded != sb.seeded);
    assert_int_equal(watch_version(wa), 1);
    assert_int_equal(watch_version(wb), 1);
    assert_int_equal(watch_count(wa), watch_count(wb));
    assert_int_equal(watch_count(wa), sa.seeded ? 2 : 3);
    free(seed_a);
    free(seed_b);
}

static void a_restarted_gateway_picks_the_list_up(void **state)
{
    (void)state;
    watch_t *w = &watches[0];
    accesssync_t *s = new_sync(w, NULL, NULL, 0, true);
    uint8_t h[20];
    mkhash(h, 14, 0);
    char err[256];
    uint64_t v;
    assert_int_equal(accesssync_add(s, h, &v, err, sizeof(err)), 1);
    assert_true(wait_version(w, v, h, true, CONVERGE) >= 0);
    stop_gateway(w);

    /* Restarted, with a file that differs: the cluster's list wins. */
    uint8_t *file = mkhashes(15, 4);
    s = new_sync(w, NULL, file, 4, true);
    assert_true(wait_version(w, v, h, true, WAIT_MS) >= 0);
    assert_int_equal(watch_version(w), v);
    assert_int_equal(watch_count(w), 1);
    free(file);
}

static void redis_restarted_empty_gets_the_last_list_back(void **state)
{
    (void)state;
    watch_t *wa = &watches[0], *wb = &watches[1];
    accesssync_t *a = new_sync(wa, NULL, NULL, 0, true);
    accesssync_t *b = new_sync(wb, NULL, NULL, 0, true);
    uint8_t *list = mkhashes(16, 500);
    char err[256];
    uint64_t v;
    assert_int_equal(accesssync_replace(a, list, 500, &v, err, sizeof(err)), 0);
    assert_int_equal(accesssync_remove(a, list, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 2);
    assert_true(wait_version(wa, 2, list, false, CONVERGE) >= 0);
    assert_true(wait_version(wb, 2, list, false, CONVERGE) >= 0);

    redis_fixture_stop(&redis);
    /* While it is down: errors counted, the last list kept (no callback at all). */
    accesssync_stats_t st = {0};
    for (int64_t end = redis_fixture_now_ms() + WAIT_MS;
         redis_fixture_now_ms() < end && st.errors == 0; redis_fixture_sleep_ms(20))
        accesssync_stats(a, &st);
    assert_true(st.errors > 0);
    assert_false(st.connected);
    assert_int_equal(accesssync_add(a, list, &v, err, sizeof(err)), -1);
    assert_true(err[0] != '\0');

    assert_int_equal(redis_fixture_start(&redis), 0); /* empty: no persistence */
    assert_true(wait_version(wa, 3, NULL, true, WAIT_MS) >= 0);
    assert_true(wait_version(wb, 3, NULL, true, WAIT_MS) >= 0);
    assert_int_equal(raw_version(), 3); /* stored once, as last + 1 */
    assert_int_equal(raw_int("SCARD %s", PREFIX ":access:set"), 499);
    assert_int_equal(watch_version(wa), 3);
    assert_int_equal(watch_count(wa), 499);
    assert_int_equal(watch_count(wb), 499);
    assert_int_equal(wa->empty_after_list + wb->empty_after_list, 0);
    accesssync_stats_t sa, sb;
    accesssync_stats(a, &sa);
    accesssync_stats(b, &sb);
    assert_int_equal(sa.restores + sb.restores, 1);
    assert_true(log_has(sa.restores ? wa : wb, "stored the last known list again"));
    assert_true(wait_log(wa, "answers again", WAIT_MS));

    /* The admin connection died with the server: the next edit reconnects by itself. */
    assert_int_equal(accesssync_add(a, list, &v, err, sizeof(err)), 1);
    assert_int_equal(v, 4);
    assert_true(wait_version(wb, 4, list, true, CONVERGE) >= 0);
    free(list);
}

static void redis_down_at_start_then_seeded_when_it_comes(void **state)
{
    (void)state;
    redis_fixture_stop(&redis);
    char url[128];
    /* A password in the URL: no line may show it. (The fixture's server has none, so this
     * poller never gets in; a second one without a password does the seeding.) */
    snprintf(url, sizeof(url), "redis://u:hunter2@127.0.0.1:%d", redis.port);
    watch_t *wp = &watches[0], *w = &watches[1];
    accesssync_t *p = new_sync(wp, url, NULL, 0, true);
    uint8_t *seed = mkhashes(17, 3);
    accesssync_t *s = new_sync(w, NULL, seed, 3, true);
    accesssync_stats_t st = {0}, stp = {0};
    for (int64_t end = redis_fixture_now_ms() + WAIT_MS;
         redis_fixture_now_ms() < end && (st.errors == 0 || stp.errors == 0);
         redis_fixture_sleep_ms(20)) {
        accesssync_stats(s, &st);
        accesssync_stats(p, &stp);
    }
    assert_true(st.errors > 0);
    assert_true(stp.errors > 0);
    assert_false(st.loaded);

    assert_int_equal(redis_fixture_start(&redis), 0);
    assert_true(wait_version(w, 1, seed + 40, true, WAIT_MS) >= 0);
    accesssync_stats(s, &st);
    assert_true(st.seeded);
    assert_true(wait_log(wp, "u:***@127.0.0.1", WAIT_MS));
    assert_false(log_has(wp, "hunter2"));
    assert_false(log_has(w, "hunter2"));
    free(seed);
}

int main(void)
{
    if (!redis_fixture_find(&redis)) {
        printf("SKIP: redis-server is not installed (apt-get install redis-server)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Line-buffered: the fixture forks redis-server, and a child would flush a full buffer. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(add_and_remove_bump_the_version_only_on_change, flush),
        cmocka_unit_test_setup(the_change_log_says_what_changed_since_a_version, flush),
        cmocka_unit_test_setup(remove_from_no_list_changes_nothing, flush),
        cmocka_unit_test_setup(replace_with_three_then_none, flush),
        cmocka_unit_test_setup(store_if_absent_stores_once_above_the_floor, flush),
        cmocka_unit_test_setup(replace_and_load_a_million, flush),
        cmocka_unit_test_setup_teardown(loads_are_consistent_while_the_list_is_replaced, flush,
                                        writer_teardown),
        cmocka_unit_test_setup(foreign_members_and_bad_versions, flush),
        cmocka_unit_test_setup(redis_down_is_an_error_with_a_reason, flush),
        cmocka_unit_test_setup(config_is_checked, flush),
        cmocka_unit_test_setup_teardown(no_list_gives_an_empty_set_of_version_zero, sync_setup,
                                        sync_teardown),
        cmocka_unit_test_setup_teardown(an_edit_through_one_gateway_reaches_the_other, sync_setup,
                                        sync_teardown),
        cmocka_unit_test_setup_teardown(an_edit_to_a_big_list_is_applied_from_the_log, sync_setup,
                                        sync_teardown),
        cmocka_unit_test_setup_teardown(the_seed_is_stored_only_when_no_list_exists, sync_setup,
                                        sync_teardown),
        cmocka_unit_test_setup_teardown(a_restarted_gateway_picks_the_list_up, sync_setup,
                                        sync_teardown),
        cmocka_unit_test_setup_teardown(redis_restarted_empty_gets_the_last_list_back, sync_setup,
                                        sync_teardown),
        cmocka_unit_test_setup_teardown(redis_down_at_start_then_seeded_when_it_comes, sync_setup,
                                        sync_teardown),
    };
    return cmocka_run_group_tests_name("accessstore", tests, group_setup, group_teardown);
}
