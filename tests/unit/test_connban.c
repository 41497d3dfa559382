/* SPDX-License-Identifier: MIT */
/* test_connban: bans for invalid connection ids (gateway/connban.c): the N-th strike within the
 * window bans, strikes spread wider do not, the ban ends on time, IPv6 bans cover the /64, the
 * table keeps its size, and threads striking one address start exactly one ban (run under
 * ThreadSanitizer by tests/run.sh: label threads). */
#include "addrtab.h"
#include "connban.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define S0 5000u /* an arbitrary clock origin, in seconds */

static uint64_t key4(uint8_t c, uint8_t d)
{
    uint8_t a[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, c, d};
    return addrtab_key(a);
}

static connban_t *banlist(uint32_t strikes, uint32_t window, uint32_t ban, uint32_t slots)
{
    connban_config_t c = {.strikes = strikes, .window_s = window, .ban_s = ban, .slots = slots};
    return connban_new(&c, S0);
}

static void the_nth_strike_within_the_window_bans(void **state)
{
    (void)state;
    connban_t *b = banlist(3, 10, 60, 1024);
    assert_non_null(b);
    uint64_t k = key4(0, 2);
    assert_false(connban_strike(b, k, S0));
    assert_false(connban_strike(b, k, S0 + 5));
    assert_false(connban_banned(b, k, S0 + 5));
    assert_true(connban_strike(b, k, S0 + 9)); /* the third within 10 s */
    assert_true(connban_banned(b, k, S0 + 9));
    assert_false(connban_banned(b, key4(0, 3), S0 + 9));
    /* Strikes while banned start nothing new and do not lengthen it. */
    assert_false(connban_strike(b, k, S0 + 30));
    assert_true(connban_banned(b, k, S0 + 68));
    assert_false(connban_banned(b, k, S0 + 69)); /* 60 s after the ban began */
    connban_destroy(&b);
    assert_null(b);
}

static void strikes_spread_wider_than_the_window_do_not_ban(void **state)
{
    (void)state;
    connban_t *b = banlist(3, 10, 60, 1024);
    uint64_t k = key4(0, 2);
    for (uint32_t t = 0; t < 1000; t += 5) /* two per window at most */
        assert_false(connban_strike(b, k, S0 + t));
    assert_false(connban_banned(b, k, S0 + 1000));
    connban_destroy(&b);
}

static void after_a_ban_the_count_starts_again(void **state)
{
    (void)state;
    connban_t *b = banlist(2, 10, 20, 1024);
    uint64_t k = key4(0, 2);
    connban_strike(b, k, S0);
    assert_true(connban_strike(b, k, S0));
    assert_false(connban_banned(b, k, S0 + 20));
    assert_false(connban_strike(b, k, S0 + 20));
    assert_true(connban_strike(b, k, S0 + 21));
    assert_true(connban_banned(b, k, S0 + 21));
    connban_destroy(&b);
}

static void an_ipv6_ban_covers_the_64(void **state)
{
    (void)state;
    connban_t *b = banlist(1, 10, 60, 1024);
    uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8};
    uint8_t same[16], next[16];
    memcpy(same, a, 16);
    same[15] = 9;
    memcpy(next, a, 16);
    next[7] = 8;
    assert_true(connban_strike(b, addrtab_key(a), S0));
    assert_true(connban_banned(b, addrtab_key(same), S0 + 1));
    assert_false(connban_banned(b, addrtab_key(next), S0 + 1));
    connban_destroy(&b);
}

static void the_table_keeps_its_size(void **state)
{
    (void)state;
    connban_t *b = banlist(1, 10, 3, 64);
    assert_int_equal(connban_slots(b), 64);
    /* A ban per address, each over before the table would need the slot again. */
    unsigned bans = 0;
    for (uint32_t i = 0; i < 100000; i++)
        bans += connban_strike(b, key4((uint8_t)(i >> 8), (uint8_t)i) ^ ((uint64_t)i << 32),
                               S0 + i / 16);
    assert_true(bans >= 100000 - 100); /* a few tag collisions with a live ban */
    assert_int_equal(connban_slots(b), 64);
    connban_destroy(&b);
}

static void bad_configurations_are_refused(void **state)
{
    (void)state;
    assert_null(banlist(0, 10, 10, 64));
    assert_null(banlist(CONNBAN_MAX_STRIKES + 1, 10, 10, 64));
    assert_null(banlist(1, 0, 10, 64));
    assert_null(banlist(1, 10, 0, 64));
    connban_destroy(NULL);
}

#define THREADS 4

typedef struct {
    connban_t *b;
    unsigned bans;
} striker_t;

static void *striker(void *arg)
{
    striker_t *s = arg;
    for (unsigned i = 0; i < 5000; i++) {
        s->bans += connban_strike(s->b, key4(0, 2), S0);
        (void)connban_banned(s->b, key4(0, 2), S0);
    }
    return NULL;
}

static void threads_striking_one_address_start_one_ban(void **state)
{
    (void)state;
    connban_t *b = banlist(1000, 10, 60, 1024);
    striker_t s[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        s[i] = (striker_t){.b = b};
        assert_int_equal(pthread_create(&t[i], NULL, striker, &s[i]), 0);
    }
    unsigned bans = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        bans += s[i].bans;
    }
    assert_int_equal(bans, 1);
    assert_true(connban_banned(b, key4(0, 2), S0));
    connban_destroy(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_nth_strike_within_the_window_bans),
        cmocka_unit_test(strikes_spread_wider_than_the_window_do_not_ban),
        cmocka_unit_test(after_a_ban_the_count_starts_again),
        cmocka_unit_test(an_ipv6_ban_covers_the_64),
        cmocka_unit_test(the_table_keeps_its_size),
        cmocka_unit_test(bad_configurations_are_refused),
        cmocka_unit_test(threads_striking_one_address_start_one_ban),
    };
    return cmocka_run_group_tests_name("connban", tests, NULL, NULL);
}
