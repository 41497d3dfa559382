/* SPDX-License-Identifier: MIT */
/* test_ratelimit: per-address token buckets (gateway/ratelimit.c over addrtab): exact token
 * arithmetic with an injected clock, IPv4 and IPv6 /64 keys, a table that stays at its size
 * however many addresses come, and threads taking tokens of one address at once (run under
 * ThreadSanitizer by tests/run.sh: label threads). */
#include "addrtab.h"
#include "ratelimit.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define T0 1000000000ull /* an arbitrary clock origin, in us */

static void v4(uint8_t out[16], uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    memcpy(out, prefix, 12);
    out[12] = a;
    out[13] = b;
    out[14] = c;
    out[15] = d;
}

static uint64_t key4(uint8_t d)
{
    uint8_t a[16];
    v4(a, 127, 0, 0, d);
    return addrtab_key(a);
}

static ratelimit_t *limiter(uint32_t rate, uint32_t burst, uint32_t slots)
{
    ratelimit_config_t c = {.rate = rate, .burst = burst, .slots = slots};
    return ratelimit_new(&c, T0);
}

/* Requests allowed for key at now out of n. */
static unsigned take_n(ratelimit_t *rl, uint64_t key, uint64_t now, unsigned n)
{
    unsigned ok = 0;
    for (unsigned i = 0; i < n; i++)
        ok += ratelimit_take(rl, key, now);
    return ok;
}

static void a_new_address_gets_exactly_its_burst(void **state)
{
    (void)state;
    ratelimit_t *rl = limiter(10, 5, 1024);
    assert_non_null(rl);
    assert_int_equal(take_n(rl, key4(2), T0, 100), 5);
    ratelimit_destroy(&rl);
    assert_null(rl);
}

static void tokens_come_back_at_the_rate_exactly(void **state)
{
    (void)state;
    ratelimit_t *rl = limiter(10, 5, 1024); /* one token per 100000 us */
    uint64_t k = key4(2);
    assert_int_equal(take_n(rl, k, T0, 5), 5);
    assert_false(ratelimit_take(rl, k, T0 + 99999));
    assert_true(ratelimit_take(rl, k, T0 + 100000));
    assert_false(ratelimit_take(rl, k, T0 + 100000));
    /* 0.35 s later: 3 tokens (not 3.5, and not more than the burst). */
    assert_int_equal(take_n(rl, k, T0 + 450000, 10), 3);
    /* Idle for an hour: a full bucket, no more. */
    assert_int_equal(take_n(rl, k, T0 + 3600000000ull, 100), 5);
    ratelimit_destroy(&rl);
}

static void a_steady_client_at_the_rate_is_never_refused(void **state)
{
    (void)state;
    ratelimit_t *rl = limiter(100, 1, 1024);
    uint64_t k = key4(3);
    for (unsigned i = 0; i < 10000; i++)
        assert_true(ratelimit_take(rl, k, T0 + (uint64_t)i * 10000));
    ratelimit_destroy(&rl);
}

static void a_flood_gets_the_rate_and_no_more(void **state)
{
    (void)state;
    ratelimit_t *rl = limiter(50, 10, 1024);
    uint64_t k = key4(2);
    unsigned ok = 0;
    /* 10x the rate for 10 s: burst + 10 s * rate. */
    for (unsigned i = 0; i < 5000; i++)
        ok += ratelimit_take(rl, k, T0 + (uint64_t)i * 2000);
    assert_int_equal(ok, 10 + 500 - 1); /* the last request is at 9.998 s */
    ratelimit_destroy(&rl);
}

static void one_address_does_not_spend_anothers_tokens(void **state)
{
    (void)state;
    ratelimit_t *rl = limiter(10, 3, 1024);
    assert_int_equal(take_n(rl, key4(2), T0, 1000), 3);
    assert_int_equal(take_n(rl, key4(3), T0, 1000), 3);
    ratelimit_destroy(&rl);
}

static void ipv6_addresses_of_one_64_share_a_bucket(void **state)
{
    (void)state;
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1};
    uint8_t b[16], c[16];
    memcpy(b, a, 16);
    b[15] = 0x99;
    b[9] = 0x77; /* same /64, other interface id */
    memcpy(c, a, 16);
    c[7] = 3; /* the next /64 */
    assert_true(addrtab_key(a) == addrtab_key(b));
    assert_true(addrtab_key(a) != addrtab_key(c));
    ratelimit_t *rl = limiter(10, 4, 1024);
    assert_int_equal(take_n(rl, addrtab_key(a), T0, 3), 3);
    assert_int_equal(take_n(rl, addrtab_key(b), T0, 3), 1);
    assert_int_equal(take_n(rl, addrtab_key(c), T0, 10), 4);
    ratelimit_destroy(&rl);
}

static void ipv4_keys_are_whole_addresses_apart_from_ipv6(void **state)
{
    (void)state;
    uint8_t a[16], b[16];
    v4(a, 10, 0, 0, 1);
    v4(b, 10, 0, 0, 2);
    assert_true(addrtab_key(a) != addrtab_key(b));
    uint8_t six[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 10, 0, 0, 1};
    assert_true(addrtab_key(six) != addrtab_key(a));
    assert_int_equal(addrtab_key(a) >> 48, 0xffff);
}

static void the_table_keeps_its_size_and_evicts_idle_entries_first(void **state)
{
    (void)state;
    ratelimit_t *rl = limiter(1, 1, 100);
    assert_int_equal(ratelimit_slots(rl), 128);
    /* 100000 addresses, each once, a second apart: every entry is full again (idle) before the
     * next comes, so replacing it loses nothing and every address gets its token. */
    uint8_t a[16];
    unsigned ok = 0;
    for (uint32_t i = 0; i < 100000; i++) {
        v4(a, 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i);
        ok += ratelimit_take(rl, addrtab_key(a), T0 + (uint64_t)i * 1000000);
    }
    assert_int_equal(ok, 100000);
    assert_int_equal(ratelimit_evictions(rl), 0);
    assert_int_equal(ratelimit_slots(rl), 128);
    ratelimit_destroy(&rl);
}

static void many_addresses_at_once_evict_live_entries_and_say_so(void **state)
{
    (void)state;
    ratelimit_t *rl = limiter(1, 1, 64);
    uint8_t a[16];
    unsigned ok = 0;
    /* 10000 addresses within one instant in a 64-slot table: each is new (its bucket lost or
     * never kept), so each gets its token: the table cannot hold them, and says so. */
    for (uint32_t i = 0; i < 10000; i++) {
        v4(a, 10, 1, (uint8_t)(i >> 8), (uint8_t)i);
        ok += ratelimit_take(rl, addrtab_key(a), T0);
    }
    assert_true(ok >= 10000 - 64);
    assert_true(ratelimit_evictions(rl) >= 10000 - 64 * 2);
    ratelimit_destroy(&rl);
}

static void bad_configurations_are_refused(void **state)
{
    (void)state;
    assert_null(limiter(0, 1, 1024));
    assert_null(limiter(1, 0, 1024));
    assert_null(limiter(RATELIMIT_MAX_RATE + 1, 1, 1024));
    ratelimit_t *rl = limiter(RATELIMIT_MAX_RATE, RATELIMIT_MAX_RATE, 0);
    assert_non_null(rl);
    assert_int_equal(ratelimit_slots(rl), ADDRTAB_MIN_SLOTS);
    ratelimit_destroy(&rl);
    ratelimit_destroy(NULL);
}

/* ---- threads ----------------------------------------------------------------------------------
 */

#define THREADS 4
#define TRIES   20000

typedef struct {
    ratelimit_t *rl;
    uint64_t key;
    unsigned ok;
    unsigned other_ok;
} runner_t;

static void *runner(void *arg)
{
    runner_t *r = arg;
    for (unsigned i = 0; i < TRIES; i++) {
        r->ok += ratelimit_take(r->rl, r->key, T0);
        /* Other addresses land in other groups meanwhile, and some in this one. */
        r->other_ok += ratelimit_take(r->rl, key4((uint8_t)(i % 200 + 20)), T0 + 1);
    }
    return NULL;
}

static void threads_share_one_bucket_exactly(void **state)
{
    (void)state;
    ratelimit_t *rl = limiter(1000, 777, 4096);
    runner_t r[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        r[i] = (runner_t){.rl = rl, .key = key4(2)};
        assert_int_equal(pthread_create(&t[i], NULL, runner, &r[i]), 0);
    }
    unsigned ok = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        ok += r[i].ok;
    }
    /* The clock stands still: the address gets its burst over all threads, whoever takes it (a
     * lost compare-and-swap is retried, never counted twice). 200 other addresses share the
     * table: 4 of them in this address's group, which could push it out, is a 1e-4 chance. */
    assert_int_equal(ok, 777);
    ratelimit_destroy(&rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_new_address_gets_exactly_its_burst),
        cmocka_unit_test(tokens_come_back_at_the_rate_exactly),
        cmocka_unit_test(a_steady_client_at_the_rate_is_never_refused),
        cmocka_unit_test(a_flood_gets_the_rate_and_no_more),
        cmocka_unit_test(one_address_does_not_spend_anothers_tokens),
        cmocka_unit_test(ipv6_addresses_of_one_64_share_a_bucket),
        cmocka_unit_test(ipv4_keys_are_whole_addresses_apart_from_ipv6),
        cmocka_unit_test(the_table_keeps_its_size_and_evicts_idle_entries_first),
        cmocka_unit_test(many_addresses_at_once_evict_live_entries_and_say_so),
        cmocka_unit_test(bad_configurations_are_refused),
        cmocka_unit_test(threads_share_one_bucket_exactly),
    };
    return cmocka_run_group_tests_name("ratelimit", tests, NULL, NULL);
}
