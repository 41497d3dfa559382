/* SPDX-License-Identifier: MIT */
/* Unit tests of runtime/backoff: when a repeated condition is logged. */
#include "backoff.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void first_occurrence_logs_then_intervals_double(void **state)
{
    (void)state;
    backoff_t b = {.first_ms = 1000, .max_ms = 4000};
    assert_true(backoff_due(&b, 0));
    assert_false(backoff_due(&b, 500));
    assert_false(backoff_due(&b, 999));
    assert_true(backoff_due(&b, 1000)); /* 1 s after the first line; the interval becomes 2 s */
    assert_false(backoff_due(&b, 2999));
    assert_true(backoff_due(&b, 3000)); /* now 4 s, the cap */
    assert_false(backoff_due(&b, 6999));
    assert_true(backoff_due(&b, 7000));
    assert_false(backoff_due(&b, 10999));
    assert_true(backoff_due(&b, 11000)); /* still 4 s: capped */
    assert_int_equal(b.count, 10);
}

static void ok_ends_a_streak_once(void **state)
{
    (void)state;
    backoff_t b = {.first_ms = 1000, .max_ms = 60000};
    assert_false(backoff_ok(&b)); /* nothing was going on */
    assert_true(backoff_due(&b, 0));
    assert_true(backoff_ok(&b));
    assert_false(backoff_ok(&b));
    assert_true(backoff_due(&b, 10)); /* a new streak logs at once */
}

static void quiet_after_a_whole_interval(void **state)
{
    (void)state;
    backoff_t b = {.first_ms = 1000, .max_ms = 60000};
    assert_false(backoff_quiet(&b, 5000)); /* no streak */
    assert_true(backoff_due(&b, 0));
    assert_false(backoff_quiet(&b, 1000));
    assert_true(backoff_quiet(&b, 1001));
}

static void zero_config_uses_1s_to_60s(void **state)
{
    (void)state;
    backoff_t b = {0};
    assert_true(backoff_due(&b, 0));
    assert_false(backoff_due(&b, 999));
    assert_true(backoff_due(&b, 1000));
    int64_t t = 1000;
    for (int i = 0; i < 20; i++) { /* bounded: the interval reaches its cap well within 20 */
        t += b.interval_ms;
        assert_true(backoff_due(&b, t));
    }
    assert_int_equal(b.interval_ms, 60000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(first_occurrence_logs_then_intervals_double),
        cmocka_unit_test(ok_ends_a_streak_once),
        cmocka_unit_test(quiet_after_a_whole_interval),
        cmocka_unit_test(zero_config_uses_1s_to_60s),
    };
    return cmocka_run_group_tests_name("backoff", tests, NULL, NULL);
}
