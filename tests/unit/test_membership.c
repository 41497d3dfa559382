/* SPDX-License-Identifier: MIT */
/* test_membership: table publication and reference counting, and the
 * Redis protocol against a real redis-server started here on a free loopback port: a node
 * registers and a reader sees it, two nodes and two readers agree on table and epoch, a member
 * that stops heartbeating is dropped after its ttl, a clean stop deregisters, a Redis outage
 * (stopped 2 s, restarted empty) keeps the last table while the node re-registers, and every
 * reader call runs concurrently with table changes and an outage (for TSan).
 *
 * Exits 77 (skipped) only when redis-server is not installed. Every wait is a bounded poll. */
#include "members.h"
#include "membership.h"
#include "redis_fixture.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

/* Short periods keep the suite quick; the ratios are the defaults' (ttl = 3 heartbeats). */
#define HB_MS   100
#define TTL_MS  300
#define WAIT_MS 5000

/* Connections time out after 300 ms (connect only); the server has WAIT_MS to start. */
static redis_fixture_t redis = {.connect_ms = 300, .command_ms = 0, .start_ms = WAIT_MS, .pid = -1};

/* ---- helpers -------------------------------------------------------------------------------- */

static long long raw_int(const char *fmt, const char *a, const char *b)
{
    redisReply *r = redis_fixture_command(&redis, fmt, a, b);
    long long v = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r)
        freeReplyObject(r);
    return v;
}

static membership_t *start_member(const char *id, const char *endpoint)
{
    membership_config_t cfg = {
        .redis_url = redis.url,
        .self_id = id,
        .self_endpoint = endpoint,
        .heartbeat_ms = HB_MS,
        .ttl_ms = TTL_MS,
    };
    char err[256];
    membership_t *m = membership_new(&cfg, err, sizeof(err));
    if (!m) {
        fprintf(stderr, "membership_new: %s\n", err);
        return NULL;
    }
    if (membership_start(m) != 0)
        membership_destroy(&m);
    return m;
}

static membership_t *start_reader(void)
{
    return start_member(NULL, NULL);
}

/* Members in m's current table, or -1 if none. */
static int member_count(membership_t *m)
{
    const partition_table_t *t = membership_current(m);
    int n = t ? (int)partition_table_count(t) : -1;
    membership_release(m, &t);
    return n;
}

static bool wait_count(membership_t *m, int n)
{
    for (int64_t end = redis_fixture_now_ms() + WAIT_MS; redis_fixture_now_ms() < end;
         redis_fixture_sleep_ms(10)) {
        if (member_count(m) == n)
            return true;
    }
    return false;
}

static bool wait_int(const char *fmt, const char *a, const char *b, long long want)
{
    for (int64_t end = redis_fixture_now_ms() + WAIT_MS; redis_fixture_now_ms() < end;
         redis_fixture_sleep_ms(10)) {
        if (raw_int(fmt, a, b) == want)
            return true;
    }
    return false;
}

static void set_member(partition_member_t *m, const char *id, const char *endpoint)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->id, sizeof(m->id), "%s", id);
    snprintf(m->endpoint, sizeof(m->endpoint), "%s", endpoint);
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

static int changes_seen;

static void count_change(void *arg, const partition_table_t *t)
{
    (void)arg;
    assert_non_null(t);
    changes_seen++;
}

static void static_list_publishes_at_once(void **state)
{
    (void)state;
    changes_seen = 0;
    membership_config_t cfg = {
        .static_nodes = "n2=tcp://h:2,n1=tcp://h:1",
        .self_id = "n1",
        .self_endpoint = "tcp://h:1",
        .on_change = count_change,
    };
    char err[128];
    membership_t *m = membership_new(&cfg, err, sizeof(err));
    assert_non_null(m);
    assert_int_equal(changes_seen, 1);
    assert_int_equal(membership_version(m), 1);
    assert_int_equal(membership_start(m), 0);
    assert_true(membership_wait(m, 0));
    const partition_table_t *t = membership_current(m);
    assert_non_null(t);
    assert_int_equal(partition_table_count(t), 2);
    assert_string_equal(partition_table_member(t, 0)->id, "n1");
    partition_member_t want[2];
    set_member(&want[0], "n1", "tcp://h:1");
    set_member(&want[1], "n2", "tcp://h:2");
    assert_int_equal(partition_table_epoch(t), members_epoch(want, 2));
    membership_release(m, &t);
    assert_null(t);
    membership_stats_t st;
    membership_stats(m, &st);
    assert_true(st.connected);
    assert_int_equal(st.members, 2);
    assert_int_equal(membership_loop_age_ms(m), 0); /* a static list runs no loop */
    membership_destroy(&m);
    assert_null(m);
}

static void config_errors_are_refused(void **state)
{
    (void)state;
    char err[128];
    membership_config_t none = {0};
    assert_null(membership_new(&none, err, sizeof(err)));
    membership_config_t both = {.redis_url = "redis://h", .static_nodes = "a=b"};
    assert_null(membership_new(&both, err, sizeof(err)));
    membership_config_t ttl = {.redis_url = "redis://h", .heartbeat_ms = 1000, .ttl_ms = 1000};
    assert_null(membership_new(&ttl, err, sizeof(err)));
    const char *urls[] = {"http://h:1",   "redis://",     "redis://h:0", "redis://h:99999",
                          "redis://h:1x", "redis://[::1", "redis://h/x", "redis://pw@h"};
    for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        membership_config_t c = {.redis_url = urls[i]};
        err[0] = '\0';
        assert_null(membership_new(&c, err, sizeof(err)));
        assert_true(err[0] != '\0');
    }
    membership_config_t outsider = {
        .static_nodes = "a=tcp://h:1", .self_id = "b", .self_endpoint = "tcp://h:2"};
    assert_null(membership_new(&outsider, err, sizeof(err)));
    assert_non_null(strstr(err, "not in the member list"));
    membership_config_t badid = {
        .redis_url = "redis://h", .self_id = "a,b", .self_endpoint = "tcp://h:2"};
    assert_null(membership_new(&badid, err, sizeof(err)));
    /* Valid forms parse (nothing connects before start). */
    const char *good[] = {"redis://h", "redis://h:1/2", "redis://[::1]:6379", "redis://:pw@h:1",
                          "redis://u:pw@h/"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        membership_config_t c = {.redis_url = good[i]};
        membership_t *m = membership_new(&c, err, sizeof(err));
        assert_non_null(m);
        assert_null(membership_current(m));
        assert_int_equal(membership_version(m), 0);
        membership_destroy(&m);
    }
}

/* A reference taken before a change stays valid after it, until released. */
static void old_table_outlives_change_while_referenced(void **state)
{
    (void)state;
    membership_t *node = start_member("n1", "tcp://127.0.0.1:1");
    membership_t *reader = start_reader();
    assert_non_null(node);
    assert_non_null(reader);
    assert_true(wait_count(reader, 1));
    const partition_table_t *old = membership_current(reader);
    uint64_t v = membership_version(reader);
    membership_t *node2 = start_member("n2", "tcp://127.0.0.1:2");
    assert_true(wait_count(reader, 2));
    assert_true(membership_version(reader) > v);
    /* Still readable: ASan would flag a freed table. */
    assert_int_equal(partition_table_count(old), 1);
    assert_string_equal(partition_table_member(old, 0)->id, "n1");
    membership_release(reader, &old);
    membership_destroy(&node2);
    membership_destroy(&node);
    membership_destroy(&reader);
}

/* ---- Redis ---------------------------------------------------------------------------------- */

static void node_registers_and_reader_sees_it(void **state)
{
    (void)state;
    membership_t *node = start_member("node-a", "tcp://127.0.0.1:7001");
    assert_non_null(node);
    assert_true(wait_int("SISMEMBER %s %s", "shoal:members", "node-a", 1));
    redisReply *r = redis_fixture_command(&redis, "GET shoal:member:node-a");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "tcp://127.0.0.1:7001");
    freeReplyObject(r);
    long long pttl = raw_int("PTTL %s", "shoal:member:node-a", NULL);
    assert_true(pttl > 0 && pttl <= TTL_MS);

    membership_t *reader = start_reader();
    assert_non_null(reader);
    assert_true(membership_wait(reader, WAIT_MS));
    const partition_table_t *t = membership_current(reader);
    assert_non_null(t);
    assert_int_equal(partition_table_count(t), 1);
    assert_string_equal(partition_table_member(t, 0)->id, "node-a");
    assert_string_equal(partition_table_member(t, 0)->endpoint, "tcp://127.0.0.1:7001");
    assert_int_equal(partition_table_epoch(t), 0xd65cfd3daa0caf0bULL);
    assert_int_equal(partition_table_load(t, 0), PARTITION_COUNT);
    membership_release(reader, &t);
    membership_destroy(&reader);
    membership_destroy(&node);
}

static void two_nodes_and_readers_agree(void **state)
{
    (void)state;
    membership_t *a = start_member("node-a", "tcp://127.0.0.1:7001");
    membership_t *b = start_member("node-b", "tcp://127.0.0.1:7002");
    membership_t *r1 = start_reader();
    membership_t *r2 = start_reader();
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(r1);
    assert_non_null(r2);
    membership_t *all[] = {a, b, r1, r2};
    for (size_t i = 0; i < 4; i++)
        assert_true(wait_count(all[i], 2));
    const partition_table_t *t[4];
    for (size_t i = 0; i < 4; i++)
        t[i] = membership_current(all[i]);
    for (size_t i = 1; i < 4; i++) {
        assert_int_equal(partition_table_epoch(t[i]), partition_table_epoch(t[0]));
        assert_true(partition_table_same_members(t[i], t[0]));
        assert_int_equal(partition_diff(t[i], t[0]), 0);
    }
    assert_int_equal(partition_table_epoch(t[0]), 0xcff030c03fb09c17ULL);
    /* The same set given as a static list gives the same epoch and owners. */
    membership_config_t cfg = {.static_nodes =
                                   "node-b=tcp://127.0.0.1:7002,node-a=tcp://127.0.0.1:7001"};
    char err[128];
    membership_t *st = membership_new(&cfg, err, sizeof(err));
    assert_non_null(st);
    const partition_table_t *ts = membership_current(st);
    assert_int_equal(partition_table_epoch(ts), partition_table_epoch(t[0]));
    assert_int_equal(partition_diff(ts, t[0]), 0);
    membership_release(st, &ts);
    membership_destroy(&st);
    for (size_t i = 0; i < 4; i++) {
        membership_release(all[i], &t[i]);
        membership_destroy(&all[i]);
    }
}

/* A member registered once (like a node killed with SIGKILL) is dropped after its ttl and
 * removed from the set. */
static void silent_member_is_dropped_after_ttl(void **state)
{
    (void)state;
    membership_t *a = start_member("node-a", "tcp://127.0.0.1:7001");
    assert_non_null(a);
    redisReply *r =
        redis_fixture_command(&redis, "SET shoal:member:ghost tcp://127.0.0.1:7009 PX %d", TTL_MS);
    assert_non_null(r);
    freeReplyObject(r);
    r = redis_fixture_command(&redis, "SADD shoal:members ghost");
    assert_non_null(r);
    freeReplyObject(r);
    membership_t *reader = start_reader();
    assert_non_null(reader);
    assert_true(wait_count(reader, 2));
    int64_t seen = redis_fixture_now_ms();
    assert_true(wait_count(reader, 1));
    /* Dropped no sooner than the key could expire, and not long after (2 polls of slack). */
    int64_t took = redis_fixture_now_ms() - seen;
    assert_true(took <= TTL_MS + 4 * HB_MS + 200);
    const partition_table_t *t = membership_current(reader);
    assert_string_equal(partition_table_member(t, 0)->id, "node-a");
    membership_release(reader, &t);
    assert_true(wait_int("SISMEMBER %s %s", "shoal:members", "ghost", 0));
    membership_destroy(&reader);
    membership_destroy(&a);
}

static void stop_deregisters(void **state)
{
    (void)state;
    membership_t *a = start_member("node-a", "tcp://127.0.0.1:7001");
    membership_t *b = start_member("node-b", "tcp://127.0.0.1:7002");
    membership_t *reader = start_reader();
    assert_true(wait_count(reader, 2));
    /* A running actor turns at least once a heartbeat (HB_MS): seconds would mean stuck. */
    assert_true(membership_loop_age_ms(b) < 2000);
    membership_stop(b);
    assert_int_equal(membership_loop_age_ms(b), 0); /* ended: no loop to watch */
    /* Gone at once, not after the ttl. */
    assert_int_equal(raw_int("EXISTS %s", "shoal:member:node-b", NULL), 0);
    assert_int_equal(raw_int("SISMEMBER %s %s", "shoal:members", "node-b"), 0);
    assert_true(wait_count(reader, 1));
    /* Stopped: the table stays readable; stop is idempotent. */
    assert_int_equal(member_count(b), 2);
    membership_stop(b);
    membership_destroy(&b);
    membership_destroy(&reader);
    membership_destroy(&a);
}

static void refresh_polls_early(void **state)
{
    (void)state;
    membership_config_t cfg = {
        .redis_url = redis.url, .heartbeat_ms = 1000, .ttl_ms = 3000, .poll_ms = 60000};
    char err[128];
    membership_t *reader = membership_new(&cfg, err, sizeof(err));
    assert_non_null(reader);
    membership_t *a = start_member("node-a", "tcp://127.0.0.1:7001");
    assert_true(wait_int("SISMEMBER %s %s", "shoal:members", "node-a", 1));
    assert_int_equal(membership_start(reader), 0);
    assert_true(wait_count(reader, 1));
    membership_t *b = start_member("node-b", "tcp://127.0.0.1:7002");
    assert_true(wait_int("SISMEMBER %s %s", "shoal:members", "node-b", 1));
    /* Without the refresh the reader would not look again for a minute. */
    membership_refresh(reader);
    assert_true(wait_count(reader, 2));
    membership_destroy(&b);
    membership_destroy(&a);
    membership_destroy(&reader);
}

/* Redis stops for 2 s and comes back empty: the reader keeps its table meanwhile, the node
 * registers again, and since the set is the same the table (and epoch) do not change. */
static void redis_outage_keeps_table_and_node_reregisters(void **state)
{
    (void)state;
    membership_t *a = start_member("node-a", "tcp://127.0.0.1:7001");
    membership_t *reader = start_reader();
    assert_true(wait_count(reader, 1));
    uint64_t version = membership_version(reader);
    membership_stats_t st;
    membership_stats(reader, &st);
    uint64_t epoch = st.epoch;
    assert_true(st.connected);

    redis_fixture_stop(&redis);
    redis_fixture_sleep_ms(2000);
    assert_int_equal(member_count(reader), 1);
    assert_int_equal(member_count(a), 1);
    membership_stats(reader, &st);
    assert_false(st.connected);
    assert_true(st.errors > 0);
    assert_int_equal(st.epoch, epoch);

    assert_int_equal(redis_fixture_start(&redis), 0);
    assert_true(wait_int("SISMEMBER %s %s", "shoal:members", "node-a", 1));
    assert_true(wait_int("EXISTS %s", "shoal:member:node-a", NULL, 1));
    for (int64_t end = redis_fixture_now_ms() + WAIT_MS; redis_fixture_now_ms() < end;
         redis_fixture_sleep_ms(10)) {
        membership_stats(reader, &st);
        if (st.connected)
            break;
    }
    assert_true(st.connected);
    assert_int_equal(st.epoch, epoch);
    assert_int_equal(membership_version(reader), version);
    membership_destroy(&reader);
    membership_destroy(&a);
}

/* Many threads taking and releasing references while tables change (for ASan/TSan). */
typedef struct {
    membership_t *m;
    _Atomic bool *stop;
    uint64_t reads;
} hammer_t;

static void *hammer(void *arg)
{
    hammer_t *h = arg;
    while (!atomic_load(h->stop)) {
        const partition_table_t *t = membership_current(h->m);
        if (t) {
            size_t n = partition_table_count(t);
            uint16_t o = partition_owner(t, (uint32_t)(h->reads % PARTITION_COUNT));
            if (o >= n)
                abort();
            h->reads++;
        }
        membership_release(h->m, &t);
    }
    return NULL;
}

static void references_survive_concurrent_changes(void **state)
{
    (void)state;
    membership_t *reader = start_member(NULL, NULL);
    membership_t *a = start_member("node-a", "tcp://127.0.0.1:7001");
    assert_true(wait_count(reader, 1));
    _Atomic bool stop = false;
    hammer_t h[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        h[i] = (hammer_t){.m = reader, .stop = &stop};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &h[i]), 0);
    }
    for (int round = 0; round < 3; round++) {
        membership_t *b = start_member("node-b", "tcp://127.0.0.1:7002");
        assert_true(wait_count(reader, 2));
        membership_destroy(&b);
        assert_true(wait_count(reader, 1));
    }
    atomic_store(&stop, true);
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_true(h[i].reads > 0);
    }
    membership_stats_t st;
    membership_stats(reader, &st);
    assert_true(st.changes >= 7);
    membership_destroy(&a);
    membership_destroy(&reader);
}

/* Every reader call (current/release, version, stats, lease, wait, refresh) from other threads
 * while the actor publishes tables and goes through a Redis outage and back with a table in hand:
 * for TSan, the accesses of the actor's failure and recovery paths against the readers'. */
typedef struct {
    membership_t *m;
    _Atomic bool *stop;
    uint64_t calls;
} reader_t;

static void *all_reader_calls(void *arg)
{
    reader_t *r = arg;
    while (!atomic_load(r->stop)) {
        uint64_t v = membership_version(r->m);
        const partition_table_t *t = membership_current(r->m);
        membership_stats_t st;
        membership_stats(r->m, &st);
        if (t && (membership_version(r->m) < v || st.epoch == 0 || st.members == 0))
            abort(); /* a table was published, so the version moved and the stats show one */
        membership_release(r->m, &t);
        uint64_t gaps;
        (void)membership_lease(r->m, &gaps);
        (void)membership_loop_age_ms(r->m); /* read while the actor stores it */
        (void)membership_wait(r->m, 0);
        if (r->calls % 64 == 0)
            membership_refresh(r->m);
        r->calls++;
    }
    return NULL;
}

static void readers_race_changes_and_an_outage(void **state)
{
    (void)state;
    membership_t *node = start_member("node-a", "tcp://127.0.0.1:7001");
    membership_t *reader = start_reader();
    assert_non_null(node);
    assert_non_null(reader);
    _Atomic bool stop = false;
    reader_t r[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (reader_t){.m = i % 2 ? node : reader, .stop = &stop};
        assert_int_equal(pthread_create(&th[i], NULL, all_reader_calls, &r[i]), 0);
    }
    assert_true(wait_count(reader, 1));
    membership_t *b = start_member("node-b", "tcp://127.0.0.1:7002");
    assert_true(wait_count(reader, 2));
    assert_true(wait_count(node, 2));
    /* node-b leaves; Redis goes down long enough for failed cycles on both, then comes back
     * empty: both recover holding a table (the settle path), then publish the smaller set. */
    membership_stop(b);
    redis_fixture_stop(&redis);
    redis_fixture_sleep_ms(700);
    assert_int_equal(redis_fixture_start(&redis), 0);
    assert_true(wait_count(reader, 1));
    assert_true(wait_count(node, 1));
    atomic_store(&stop, true);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_true(r[i].calls > 0);
    }
    membership_stats_t st;
    membership_stats(reader, &st);
    assert_true(st.errors > 0);
    assert_true(st.connected);
    membership_destroy(&b);
    membership_destroy(&reader);
    membership_destroy(&node);
}

int main(void)
{
    if (!redis_fixture_find(&redis)) {
        printf("SKIP: redis-server is not installed (apt-get install redis-server)\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(static_list_publishes_at_once),
        cmocka_unit_test(config_errors_are_refused),
        cmocka_unit_test_setup(node_registers_and_reader_sees_it, flush),
        cmocka_unit_test_setup(two_nodes_and_readers_agree, flush),
        cmocka_unit_test_setup(silent_member_is_dropped_after_ttl, flush),
        cmocka_unit_test_setup(stop_deregisters, flush),
        cmocka_unit_test_setup(refresh_polls_early, flush),
        cmocka_unit_test_setup(old_table_outlives_change_while_referenced, flush),
        cmocka_unit_test_setup(references_survive_concurrent_changes, flush),
        cmocka_unit_test_setup(redis_outage_keeps_table_and_node_reregisters, flush),
        cmocka_unit_test_setup(readers_race_changes_and_an_outage, flush),
    };
    return cmocka_run_group_tests_name("membership", tests, group_setup, group_teardown);
}
