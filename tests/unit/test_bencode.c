/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/bencode: byte-exact encodings and the sticky overflow. */
#include "bencode.h"

#include <stdint.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

/* Assert that b produced exactly the literal lit. */
#define assert_encoded(b, lit)                                                                     \
    do {                                                                                           \
        assert_int_equal(bencode_done(b), sizeof(lit) - 1);                                        \
        assert_memory_equal((b)->buf, lit, sizeof(lit) - 1);                                       \
    } while (0)

static void int_positive_zero_negative(void **state)
{
    (void)state;
    char buf[64];
    bencode_t b;
    bencode_init(&b, buf, sizeof(buf));
    bencode_int(&b, 42);
    bencode_int(&b, 0);
    bencode_int(&b, -3);
    assert_encoded(&b, "i42ei0ei-3e");
}

static void int_extremes(void **state)
{
    (void)state;
    char buf[64];
    bencode_t b;
    bencode_init(&b, buf, sizeof(buf));
    bencode_int(&b, INT64_MAX);
    bencode_int(&b, INT64_MIN);
    assert_encoded(&b, "i9223372036854775807ei-9223372036854775808e");
}

static void string_with_binary_bytes(void **state)
{
    (void)state;
    char buf[64];
    bencode_t b;
    bencode_init(&b, buf, sizeof(buf));
    bencode_str(&b, "a\0b", 3);
    bencode_str(&b, "", 0);
    bencode_cstr(&b, "spam");
    assert_encoded(&b, "3:a\0b0:4:spam");
}

static void nested_dict_and_list(void **state)
{
    (void)state;
    char buf[128];
    bencode_t b;
    bencode_init(&b, buf, sizeof(buf));
    bencode_dict(&b);
    bencode_kv_int(&b, "complete", 5);
    bencode_cstr(&b, "list");
    bencode_list(&b);
    bencode_int(&b, 1);
    bencode_cstr(&b, "x");
    bencode_end(&b);
    bencode_kv_str(&b, "z", "yy", 2);
    bencode_end(&b);
    assert_encoded(&b, "d8:completei5e4:listli1e1:xe1:z2:yye");
}

static void long_string_length_prefix(void **state)
{
    (void)state;
    char src[1000];
    memset(src, 'q', sizeof(src));
    char buf[1100];
    bencode_t b;
    bencode_init(&b, buf, sizeof(buf));
    bencode_str(&b, src, sizeof(src));
    assert_int_equal(bencode_done(&b), 1005);
    assert_memory_equal(buf, "1000:qq", 7);
    assert_int_equal(buf[1004], 'q');
}

static void exact_fit_succeeds(void **state)
{
    (void)state;
    char buf[8];
    bencode_t b;
    bencode_init(&b, buf, 8); /* "4:spam" + "e" + "e": exactly 8 bytes */
    bencode_cstr(&b, "spam");
    bencode_end(&b);
    bencode_end(&b);
    assert_encoded(&b, "4:spamee");
}

static void overflow_returns_zero(void **state)
{
    (void)state;
    char buf[16];
    memset(buf, '#', sizeof(buf));
    bencode_t b;
    bencode_init(&b, buf, 5);
    bencode_cstr(&b, "spam"); /* 6 bytes: does not fit */
    assert_true(b.overflow);
    assert_int_equal(bencode_done(&b), 0);
    /* Nothing of the item that did not fit was written. */
    assert_int_equal(buf[0], '#');
}

static void overflow_is_sticky(void **state)
{
    (void)state;
    char buf[16];
    memset(buf, '#', sizeof(buf));
    bencode_t b;
    bencode_init(&b, buf, 4);
    bencode_int(&b, 12345); /* 7 bytes: overflows */
    bencode_end(&b);        /* would fit, but the writer stays stopped */
    assert_int_equal(b.len, 0);
    assert_int_equal(buf[0], '#');
    assert_int_equal(bencode_done(&b), 0);
}

static void writes_never_pass_cap(void **state)
{
    (void)state;
    char buf[16];
    memset(buf, '#', sizeof(buf));
    bencode_t b;
    bencode_init(&b, buf, 10);
    bencode_dict(&b);
    bencode_kv_int(&b, "ab", 1); /* "d2:abi1e": 8 bytes */
    bencode_kv_int(&b, "c", 2);  /* "1:c" would make 11: overflows */
    bencode_end(&b);
    assert_int_equal(bencode_done(&b), 0);
    assert_true(b.len <= 10);
    for (size_t i = 10; i < sizeof(buf); i++)
        assert_int_equal(buf[i], '#');
}

static void zero_capacity(void **state)
{
    (void)state;
    bencode_t b;
    bencode_init(&b, NULL, 0);
    bencode_dict(&b);
    assert_int_equal(bencode_done(&b), 0);
    assert_true(b.overflow);
}

static void nothing_written_is_zero(void **state)
{
    (void)state;
    char buf[4];
    bencode_t b;
    bencode_init(&b, buf, sizeof(buf));
    assert_int_equal(bencode_done(&b), 0);
    assert_false(b.overflow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(int_positive_zero_negative), cmocka_unit_test(int_extremes),
        cmocka_unit_test(string_with_binary_bytes),   cmocka_unit_test(nested_dict_and_list),
        cmocka_unit_test(long_string_length_prefix),  cmocka_unit_test(exact_fit_succeeds),
        cmocka_unit_test(overflow_returns_zero),      cmocka_unit_test(overflow_is_sticky),
        cmocka_unit_test(writes_never_pass_cap),      cmocka_unit_test(zero_capacity),
        cmocka_unit_test(nothing_written_is_zero),
    };
    return cmocka_run_group_tests_name("bencode", tests, NULL, NULL);
}
