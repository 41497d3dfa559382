/* SPDX-License-Identifier: MIT */
/* test_partition: the partition function on byte-exact vectors, member-set validation, and the
 * three properties the design requires of the assignment, each for every member count 1..64:
 * deterministic for a set in any order, balanced (max/mean <= 1.10), and stable (one join or
 * leave moves at most 1/n + 5 % of partitions), with ids "node-0".."node-63" and random ids. A
 * pinned table guards against any change of the procedure, which would reshuffle live clusters
 * mixing versions. */
#include "partition.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#define P     PARTITION_COUNT
#define MAX_N 64

/* Worst figures seen across the tests, printed at the end. */
static double worst_balance;
static double worst_excess; /* moved / P - 1 / n */
static int worst_excess_n;

/* A deterministic xorshift64 stream, so random-id runs repeat exactly. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void set_member(partition_member_t *m, const char *id, const char *endpoint)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->id, sizeof(m->id), "%s", id);
    snprintf(m->endpoint, sizeof(m->endpoint), "%s", endpoint);
}

static void node_ids(partition_member_t *m, size_t n)
{
    char id[32], ep[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "node-%zu", i);
        snprintf(ep, sizeof(ep), "tcp://10.0.0.%zu:7000", i);
        set_member(&m[i], id, ep);
    }
}

/* Random ids of 1..63 printable bytes (all distinct with overwhelming odds; checked). */
static void random_ids(partition_member_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        memset(&m[i], 0, sizeof(m[i]));
        size_t len = 1 + rng() % (PARTITION_ID_MAX - 1);
        for (size_t k = 0; k < len; k++)
            m[i].id[k] = (char)(33 + rng() % 94);
        snprintf(m[i].endpoint, sizeof(m[i].endpoint), "tcp://127.0.0.1:%zu", 7000 + i);
    }
}

static partition_table_t *build(const partition_member_t *m, size_t n)
{
    partition_err_t err = PARTITION_ERR_NOMEM;
    partition_table_t *t = partition_table_new(m, n, 1, &err);
    assert_non_null(t);
    assert_int_equal(err, PARTITION_OK);
    return t;
}

static void shuffle(partition_member_t *m, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = rng() % i;
        partition_member_t tmp = m[i - 1];
        m[i - 1] = m[j];
        m[j] = tmp;
    }
}

/* --- partition_of --- */

static void partition_of_takes_top_12_bits(void **state)
{
    (void)state;
    uint8_t h[20] = {0};
    assert_int_equal(partition_of(h), 0);
    h[0] = 0x12;
    h[1] = 0x34;
    assert_int_equal(partition_of(h), 0x123);
    h[0] = 0xab;
    h[1] = 0xcd;
    assert_int_equal(partition_of(h), 0xabc);
    h[0] = 0xff;
    h[1] = 0xff;
    assert_int_equal(partition_of(h), PARTITION_COUNT - 1);
}

static void partition_of_ignores_later_bits(void **state)
{
    (void)state;
    uint8_t h[20];
    memset(h, 0xff, sizeof(h));
    h[0] = 0x80;
    h[1] = 0x0f; /* low nibble of byte 1 and bytes 2..19 all set: still 0x800 */
    assert_int_equal(partition_of(h), 0x800);
}

/* --- validation --- */

static void expect_invalid(const partition_member_t *m, size_t n, partition_err_t want)
{
    partition_err_t err = PARTITION_OK;
    partition_table_t *t = partition_table_new(m, n, 7, &err);
    assert_null(t);
    assert_int_equal(err, want);
    assert_string_not_equal(partition_strerror(err), "ok");
}

static void empty_set_is_rejected(void **state)
{
    (void)state;
    partition_member_t m[1];
    node_ids(m, 1);
    expect_invalid(m, 0, PARTITION_ERR_NO_MEMBERS);
}

static void empty_id_is_rejected(void **state)
{
    (void)state;
    partition_member_t m[3];
    node_ids(m, 3);
    m[1].id[0] = '\0';
    expect_invalid(m, 3, PARTITION_ERR_ID_EMPTY);
}

static void unterminated_id_is_rejected(void **state)
{
    (void)state;
    partition_member_t m[2];
    node_ids(m, 2);
    memset(m[1].id, 'a', sizeof(m[1].id));
    expect_invalid(m, 2, PARTITION_ERR_ID_LONG);
}

static void unterminated_endpoint_is_rejected(void **state)
{
    (void)state;
    partition_member_t m[2];
    node_ids(m, 2);
    memset(m[0].endpoint, 'e', sizeof(m[0].endpoint));
    expect_invalid(m, 2, PARTITION_ERR_ENDPOINT_LONG);
}

static void duplicate_id_is_rejected(void **state)
{
    (void)state;
    partition_member_t m[4];
    node_ids(m, 4);
    set_member(&m[3], "node-1", "tcp://elsewhere:1"); /* same id, other endpoint */
    expect_invalid(m, 4, PARTITION_ERR_DUPLICATE);
}

static void too_many_members_are_rejected(void **state)
{
    (void)state;
    static partition_member_t m[PARTITION_MEMBERS_MAX + 1];
    node_ids(m, PARTITION_MEMBERS_MAX + 1);
    expect_invalid(m, PARTITION_MEMBERS_MAX + 1, PARTITION_ERR_TOO_MANY);
}

static void err_may_be_null(void **state)
{
    (void)state;
    partition_member_t m[1];
    node_ids(m, 1);
    assert_null(partition_table_new(m, 0, 0, NULL));
    partition_table_t *t = partition_table_new(m, 1, 0, NULL);
    assert_non_null(t);
    partition_table_destroy(&t);
    assert_null(t);
    partition_table_destroy(&t); /* NULL-safe */
}

/* --- accessors --- */

static void members_are_sorted_and_copied(void **state)
{
    (void)state;
    partition_member_t m[3];
    set_member(&m[0], "zeta", "tcp://z:1");
    set_member(&m[1], "alpha", "tcp://a:1");
    set_member(&m[2], "Mid", "tcp://m:1"); /* bytewise: 'M' < 'a' */
    partition_table_t *t = partition_table_new(m, 3, 42, NULL);
    assert_non_null(t);
    memset(m, 0, sizeof(m)); /* the table keeps its own copy */
    assert_int_equal(partition_table_count(t), 3);
    assert_int_equal(partition_table_epoch(t), 42);
    assert_string_equal(partition_table_member(t, 0)->id, "Mid");
    assert_string_equal(partition_table_member(t, 1)->id, "alpha");
    assert_string_equal(partition_table_member(t, 2)->id, "zeta");
    assert_string_equal(partition_table_member(t, 2)->endpoint, "tcp://z:1");
    partition_table_destroy(&t);
}

static void find_gives_sorted_index(void **state)
{
    (void)state;
    partition_member_t m[5];
    node_ids(m, 5);
    shuffle(m, 5);
    partition_table_t *t = build(m, 5);
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(partition_table_find(t, partition_table_member(t, i)->id), (int)i);
    assert_int_equal(partition_table_find(t, "node-5"), -1);
    assert_int_equal(partition_table_find(t, ""), -1);
    char long_id[100];
    memset(long_id, 'x', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(partition_table_find(t, long_id), -1);
    partition_table_destroy(&t);
}

static void loads_match_owners(void **state)
{
    (void)state;
    partition_member_t m[7];
    node_ids(m, 7);
    partition_table_t *t = build(m, 7);
    uint32_t count[7] = {0};
    for (uint32_t p = 0; p < P; p++) {
        uint16_t o = partition_owner(t, p);
        assert_true(o < 7);
        count[o]++;
    }
    uint32_t sum = 0;
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(partition_table_load(t, i), count[i]);
        sum += count[i];
    }
    assert_int_equal(sum, P);
    partition_table_destroy(&t);
}

static void single_member_owns_everything(void **state)
{
    (void)state;
    partition_member_t m[1];
    set_member(&m[0], "solo", "");
    partition_table_t *t = build(m, 1);
    for (uint32_t p = 0; p < P; p++)
        assert_int_equal(partition_owner(t, p), 0);
    assert_int_equal(partition_table_load(t, 0), P);
    partition_table_destroy(&t);
}

/* The procedure is part of the wire contract: these owners were computed once and must never
 * change (a different key, cap or order would reshuffle every cluster). The first eight were
 * also checked against an independent SipHash written from the paper: partition p goes to the
 * id with the highest SipHash-2-4(SipHash-2-4-128("shoal/partition1", id), p as 4 LE bytes). */
#define PINNED_0     "node-2"
#define PINNED_1     "node-1"
#define PINNED_2     "node-0"
#define PINNED_3     "node-1"
#define PINNED_4     "node-1"
#define PINNED_5     "node-1"
#define PINNED_6     "node-1"
#define PINNED_7     "node-1"
#define PINNED_LAST  0
#define PINNED_LOAD0 1345
#define PINNED_LOAD1 1360
#define PINNED_LOAD2 1391

static void assignment_is_pinned(void **state)
{
    (void)state;
    partition_member_t m[3];
    node_ids(m, 3);
    partition_table_t *t = build(m, 3);
    static const char *const want[8] = {PINNED_0, PINNED_1, PINNED_2, PINNED_3,
                                        PINNED_4, PINNED_5, PINNED_6, PINNED_7};
    for (uint32_t p = 0; p < 8; p++)
        assert_string_equal(partition_table_member(t, partition_owner(t, p))->id, want[p]);
    assert_int_equal(partition_owner(t, P - 1), PINNED_LAST);
    assert_int_equal(partition_table_load(t, 0), PINNED_LOAD0);
    assert_int_equal(partition_table_load(t, 1), PINNED_LOAD1);
    assert_int_equal(partition_table_load(t, 2), PINNED_LOAD2);
    partition_table_destroy(&t);
}

/* --- determinism --- */

static void same_owners(const partition_table_t *a, const partition_table_t *b)
{
    assert_int_equal(partition_table_count(a), partition_table_count(b));
    for (size_t i = 0; i < partition_table_count(a); i++)
        assert_string_equal(partition_table_member(a, i)->id, partition_table_member(b, i)->id);
    for (uint32_t p = 0; p < P; p++)
        assert_int_equal(partition_owner(a, p), partition_owner(b, p));
    assert_int_equal(partition_diff(a, b), 0);
}

static void check_deterministic(void (*ids)(partition_member_t *, size_t))
{
    partition_member_t m[MAX_N];
    for (size_t n = 1; n <= MAX_N; n++) {
        ids(m, n);
        partition_table_t *ref = build(m, n);
        for (int round = 0; round < 3; round++) {
            shuffle(m, n);
            partition_table_t *t = build(m, n);
            same_owners(ref, t);
            partition_table_destroy(&t);
        }
        partition_table_destroy(&ref);
    }
}

static void same_set_any_order_same_table_node_ids(void **state)
{
    (void)state;
    check_deterministic(node_ids);
}

static void same_set_any_order_same_table_random_ids(void **state)
{
    (void)state;
    check_deterministic(random_ids);
}

static void endpoints_do_not_change_owners(void **state)
{
    (void)state;
    partition_member_t m[9];
    node_ids(m, 9);
    partition_table_t *a = build(m, 9);
    snprintf(m[4].endpoint, sizeof(m[4].endpoint), "tcp://moved:9");
    partition_table_t *b = build(m, 9);
    assert_int_equal(partition_diff(a, b), 0);
    assert_false(partition_table_same_members(a, b));
    assert_true(partition_table_same_members(a, a));
    partition_table_destroy(&a);
    partition_table_destroy(&b);
}

/* --- balance --- */

static void check_balanced(void (*ids)(partition_member_t *, size_t))
{
    partition_member_t m[MAX_N];
    for (size_t n = 2; n <= MAX_N; n++) {
        ids(m, n);
        partition_table_t *t = build(m, n);
        uint32_t max = 0;
        for (size_t i = 0; i < n; i++)
            if (partition_table_load(t, i) > max)
                max = partition_table_load(t, i);
        double ratio = (double)max * (double)n / P;
        if (ratio > worst_balance)
            worst_balance = ratio;
        /* max / mean <= 1.10, in integers: max * n * 100 <= 110 * P */
        if ((uint64_t)max * n * 100 > 110ull * P)
            fail_msg("n=%zu: max %u partitions, mean %.1f: ratio %.4f", n, max, (double)P / n,
                     ratio);
        partition_table_destroy(&t);
    }
}

static void balanced_for_2_to_64_node_ids(void **state)
{
    (void)state;
    check_balanced(node_ids);
}

static void balanced_for_2_to_64_random_ids(void **state)
{
    (void)state;
    check_balanced(random_ids);
}

/* --- movement --- */

/* small has n - 1 members, big has n: one join (small -> big) or leave (big -> small). */
static void check_moved(const partition_table_t *small, const partition_table_t *big, size_t n)
{
    size_t moved = partition_diff(small, big);
    assert_int_equal(moved, partition_diff(big, small));
    double excess = (double)moved / P - 1.0 / (double)n;
    if (excess > worst_excess) {
        worst_excess = excess;
        worst_excess_n = (int)n;
    }
    /* moved / P <= 1/n + 5/100, in integers: moved * n * 100 <= P * (100 + 5 n) */
    if ((uint64_t)moved * n * 100 > (uint64_t)P * (100 + 5 * n))
        fail_msg("n=%zu: %zu of %u partitions moved (%.4f > 1/n + 0.05 = %.4f)", n, moved, P,
                 (double)moved / P, 1.0 / (double)n + 0.05);
}

/* For every n, the table of ids[0..n) against the tables without one member: the last one
 * (a join of ids[n-1]), the first, and one picked at random. */
static void check_join_leave(void (*ids)(partition_member_t *, size_t))
{
    partition_member_t all[MAX_N], fewer[MAX_N];
    for (size_t n = 1; n <= MAX_N; n++) {
        ids(all, n);
        partition_table_t *big = build(all, n);
        size_t gone[3] = {n - 1, 0, (size_t)(rng() % n)};
        for (size_t k = 0; k < 3; k++) {
            size_t f = 0;
            for (size_t i = 0; i < n; i++)
                if (i != gone[k])
                    fewer[f++] = all[i];
            partition_table_t *small = f ? build(fewer, f) : NULL;
            check_moved(small, big, n);
            partition_table_destroy(&small);
        }
        partition_table_destroy(&big);
    }
}

static void join_or_leave_moves_at_most_share_plus_5pct_node_ids(void **state)
{
    (void)state;
    check_join_leave(node_ids);
}

static void join_or_leave_moves_at_most_share_plus_5pct_random_ids(void **state)
{
    (void)state;
    check_join_leave(random_ids);
}

static void diff_of_a_table_with_itself_is_zero(void **state)
{
    (void)state;
    partition_member_t m[5];
    node_ids(m, 5);
    partition_table_t *t = build(m, 5);
    assert_int_equal(partition_diff(t, t), 0);
    assert_int_equal(partition_diff(NULL, t), P);
    assert_int_equal(partition_diff(t, NULL), P);
    assert_int_equal(partition_diff(NULL, NULL), 0);
    partition_table_destroy(&t);
}

static void diff_counts_changed_owners(void **state)
{
    (void)state;
    partition_member_t m[4];
    node_ids(m, 4);
    partition_table_t *a = build(m, 4);
    partition_table_t *b = build(m, 3); /* node-3 left */
    size_t want = 0;
    for (uint32_t p = 0; p < P; p++)
        want += strcmp(partition_table_member(a, partition_owner(a, p))->id,
                       partition_table_member(b, partition_owner(b, p))->id) != 0;
    assert_true(want >= partition_table_load(a, 3)); /* at least node-3's share moved */
    assert_int_equal(partition_diff(a, b), want);
    partition_table_destroy(&a);
    partition_table_destroy(&b);
}

static int print_worst(void **state)
{
    (void)state;
    print_message("worst max/mean %.4f; worst moved - 1/n %.4f (at n=%d)\n", worst_balance,
                  worst_excess, worst_excess_n);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(partition_of_takes_top_12_bits),
        cmocka_unit_test(partition_of_ignores_later_bits),
        cmocka_unit_test(empty_set_is_rejected),
        cmocka_unit_test(empty_id_is_rejected),
        cmocka_unit_test(unterminated_id_is_rejected),
        cmocka_unit_test(unterminated_endpoint_is_rejected),
        cmocka_unit_test(duplicate_id_is_rejected),
        cmocka_unit_test(too_many_members_are_rejected),
        cmocka_unit_test(err_may_be_null),
        cmocka_unit_test(members_are_sorted_and_copied),
        cmocka_unit_test(find_gives_sorted_index),
        cmocka_unit_test(loads_match_owners),
        cmocka_unit_test(single_member_owns_everything),
        cmocka_unit_test(assignment_is_pinned),
        cmocka_unit_test(same_set_any_order_same_table_node_ids),
        cmocka_unit_test(same_set_any_order_same_table_random_ids),
        cmocka_unit_test(endpoints_do_not_change_owners),
        cmocka_unit_test(balanced_for_2_to_64_node_ids),
        cmocka_unit_test(balanced_for_2_to_64_random_ids),
        cmocka_unit_test(join_or_leave_moves_at_most_share_plus_5pct_node_ids),
        cmocka_unit_test(join_or_leave_moves_at_most_share_plus_5pct_random_ids),
        cmocka_unit_test(diff_of_a_table_with_itself_is_zero),
        cmocka_unit_test(diff_counts_changed_owners),
    };
    return cmocka_run_group_tests_name("partition", tests, NULL, print_worst);
}
