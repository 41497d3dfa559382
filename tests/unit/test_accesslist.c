/* SPDX-License-Identifier: MIT */
/* Unit tests of proto/accesslist: the list-file grammar and its errors with line numbers, repeats
 * dropped, membership for members and 100k strangers under several seeds, copy-on-write edits,
 * iteration, and the time to build a 1 M-entry set (printed). */
#include "accesslist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Hash number i, distinct for distinct i (splitmix64 output in all 20 bytes). */
static void hash_of(uint64_t i, uint8_t h[ASET_HASH_LEN])
{
    uint64_t x = i * 3 + 1;
    for (int k = 0; k < ASET_HASH_LEN; k += 8) {
        uint64_t z = (x += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        memcpy(h + k, &z, k + 8 <= ASET_HASH_LEN ? 8 : ASET_HASH_LEN - k);
    }
    memcpy(h, &i, 4); /* the low 32 bits of i up front: distinct below 2^32 */
}

static void hex_of(const uint8_t h[ASET_HASH_LEN], char out[2 * ASET_HASH_LEN + 1], bool upper)
{
    const char *d = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (int k = 0; k < ASET_HASH_LEN; k++) {
        out[2 * k] = d[h[k] >> 4];
        out[2 * k + 1] = d[h[k] & 15];
    }
    out[2 * ASET_HASH_LEN] = '\0';
}

static aset_t *parse_text(const char *text, uint64_t seed, char *err, size_t errlen)
{
    aset_builder_t *b = aset_builder_new();
    assert_non_null(b);
    if (aset_builder_parse(b, text, strlen(text), err, errlen) != 0) {
        aset_builder_destroy(&b);
        return NULL;
    }
    aset_t *s = aset_build(&b, seed);
    assert_null(b);
    return s;
}

static void empty_set_has_nothing(void **state)
{
    (void)state;
    aset_builder_t *b = aset_builder_new();
    aset_t *s = aset_build(&b, 1);
    assert_non_null(s);
    assert_int_equal(aset_count(s), 0);
    uint8_t h[ASET_HASH_LEN];
    for (uint64_t i = 0; i < 1000; i++) {
        hash_of(i, h);
        assert_false(aset_contains(s, h));
    }
    assert_int_equal(aset_get(s, 0, h), -1);
    aset_free(&s);
    assert_null(s);
}

static void grammar_accepts_spaces_comments_case_and_crlf(void **state)
{
    (void)state;
    uint8_t a[ASET_HASH_LEN], b[ASET_HASH_LEN], c[ASET_HASH_LEN];
    hash_of(1, a);
    hash_of(2, b);
    hash_of(3, c);
    char ha[41], hb[41], hc[41], text[512];
    hex_of(a, ha, false);
    hex_of(b, hb, true);
    hex_of(c, hc, false);
    snprintf(text, sizeof(text),
             "# allowed torrents\n\n   \t\n%s\r\n  \t%s   # ubuntu\n%s#no space before it", ha, hb,
             hc);
    char err[128] = "";
    aset_t *s = parse_text(text, 42, err, sizeof(err));
    assert_non_null(s);
    assert_int_equal(aset_count(s), 3);
    assert_true(aset_contains(s, a));
    assert_true(aset_contains(s, b));
    assert_true(aset_contains(s, c));
    uint8_t got[ASET_HASH_LEN];
    assert_int_equal(aset_get(s, 0, got), 0);
    assert_memory_equal(got, a, ASET_HASH_LEN); /* in the order added */
    assert_int_equal(aset_get(s, 2, got), 0);
    assert_memory_equal(got, c, ASET_HASH_LEN);
    aset_free(&s);
    /* No newline at the end, and a file of nothing but a comment. */
    s = parse_text(ha, 1, err, sizeof(err));
    assert_int_equal(aset_count(s), 1);
    aset_free(&s);
    s = parse_text("# nothing yet", 1, err, sizeof(err));
    assert_int_equal(aset_count(s), 0);
    aset_free(&s);
}

/* Parse text into a builder holding one hash already: -1, err says want, builder unchanged. */
static void expect_error(const char *text, const char *want)
{
    aset_builder_t *b = aset_builder_new();
    uint8_t h[ASET_HASH_LEN];
    hash_of(77, h);
    assert_int_equal(aset_builder_add(b, h), 0);
    char err[160] = "";
    assert_int_equal(aset_builder_parse(b, text, strlen(text), err, sizeof(err)), -1);
    if (!strstr(err, want))
        fail_msg("error for %s: got '%s', want '%s'", text, err, want);
    assert_int_equal(aset_builder_count(b), 1);
    aset_t *s = aset_build(&b, 5);
    assert_int_equal(aset_count(s), 1);
    assert_true(aset_contains(s, h));
    aset_free(&s);
}

static void bad_lines_are_reported_with_their_number(void **state)
{
    (void)state;
    const char *good = "0123456789abcdef0123456789abcdef01234567\n";
    char text[512];
    snprintf(text, sizeof(text), "%s# x\n%s0123456789abcdef0123456789abcdef0123456\n", good, good);
    expect_error(text, "line 4: an info-hash has exactly 40 hex digits");
    snprintf(text, sizeof(text), "%s0123456789abcdef0123456789abcdef012345678\n", good);
    expect_error(text, "line 2: an info-hash has exactly 40 hex digits");
    snprintf(text, sizeof(text), "%s%s\nubuntu.iso\n", good, good);
    expect_error(text, "line 4: expected an info-hash");
    expect_error("0123456789abcdef0123456789abcdef01234567 extra\n",
                 "line 1: unexpected text after the info-hash");
    expect_error("0123456789abcdef0123456789abcdef0123456g\n", "line 1: an info-hash has");
    expect_error("\n\n0x23456789abcdef0123456789abcdef01234567", "line 3: ");
    /* Every byte that is not a hex digit, in any of the 40 places, is refused. */
    for (int c = 1; c < 256; c++) {
        if (strchr("0123456789abcdefABCDEF", c))
            continue;
        char line[42] = "0123456789abcdef0123456789abcdef01234567";
        line[c % 40] = (char)c;
        expect_error(line, "line 1: ");
    }
    const char nul[] = "0123456789abcdef0123456789abcdef01234567\n\0\n";
    aset_builder_t *b = aset_builder_new();
    char err[160];
    assert_int_equal(aset_builder_parse(b, nul, sizeof(nul) - 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "line 2: expected an info-hash"));
    assert_int_equal(aset_builder_count(b), 0);
    aset_builder_destroy(&b);
    assert_null(b);
}

static void repeats_are_dropped(void **state)
{
    (void)state;
    aset_builder_t *b = aset_builder_new();
    uint8_t h[ASET_HASH_LEN];
    for (int round = 0; round < 3; round++) {
        for (uint64_t i = 0; i < 1000; i++) {
            hash_of(i, h);
            assert_int_equal(aset_builder_add(b, h), 0);
        }
    }
    assert_int_equal(aset_builder_count(b), 3000);
    aset_t *s = aset_build(&b, 9);
    assert_int_equal(aset_count(s), 1000);
    /* aset_get lists each exactly once, in first-added order. */
    for (uint64_t i = 0; i < 1000; i++) {
        uint8_t got[ASET_HASH_LEN];
        assert_int_equal(aset_get(s, i, got), 0);
        hash_of(i, h);
        assert_memory_equal(got, h, ASET_HASH_LEN);
    }
    assert_true(aset_memory(s) >= 1000 * ASET_HASH_LEN);
    aset_free(&s);
}

static void members_found_strangers_not_under_any_seed(void **state)
{
    (void)state;
    const uint64_t seeds[] = {0, 1, 0xDEADBEEF, UINT64_MAX};
    for (size_t k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++) {
        aset_builder_t *b = aset_builder_new();
        uint8_t h[ASET_HASH_LEN];
        for (uint64_t i = 0; i < 10000; i++) {
            hash_of(i, h);
            assert_int_equal(aset_builder_add(b, h), 0);
        }
        aset_t *s = aset_build(&b, seeds[k]);
        assert_int_equal(aset_count(s), 10000);
        for (uint64_t i = 0; i < 10000; i++) {
            hash_of(i, h);
            assert_true(aset_contains(s, h));
        }
        for (uint64_t i = 10000; i < 110000; i++) {
            hash_of(i, h);
            assert_false(aset_contains(s, h));
        }
        /* A member with one bit flipped is a stranger. */
        hash_of(5, h);
        h[19] ^= 1;
        assert_false(aset_contains(s, h));
        aset_free(&s);
    }
}

static void with_adds_and_removes_without_touching_the_original(void **state)
{
    (void)state;
    aset_builder_t *b = aset_builder_new();
    uint8_t h[ASET_HASH_LEN], x[ASET_HASH_LEN], got[ASET_HASH_LEN];
    for (uint64_t i = 0; i < 100; i++) {
        hash_of(i, h);
        aset_builder_add(b, h);
    }
    aset_t *s = aset_build(&b, 3);
    hash_of(500, x);
    aset_t *plus = aset_with(s, x, true, 4);
    assert_int_equal(aset_count(plus), 101);
    assert_true(aset_contains(plus, x));
    assert_false(aset_contains(s, x));
    assert_int_equal(aset_count(s), 100);
    aset_t *again = aset_with(plus, x, true, 5); /* already there: the same members */
    assert_int_equal(aset_count(again), 101);
    hash_of(40, h);
    aset_t *minus = aset_with(plus, h, false, 6);
    assert_int_equal(aset_count(minus), 100);
    assert_false(aset_contains(minus, h));
    assert_true(aset_contains(plus, h));
    assert_true(aset_contains(minus, x));
    for (uint64_t i = 0; i < 100; i++) {
        hash_of(i, h);
        assert_int_equal(aset_contains(minus, h), i != 40);
    }
    /* Order kept: 0..39, 41..99, then the added one. */
    assert_int_equal(aset_get(minus, 40, got), 0);
    hash_of(41, h);
    assert_memory_equal(got, h, ASET_HASH_LEN);
    assert_int_equal(aset_get(minus, 99, got), 0);
    assert_memory_equal(got, x, ASET_HASH_LEN);
    aset_t *none = aset_with(NULL, x, false, 7);
    assert_int_equal(aset_count(none), 0);
    aset_t *one = aset_with(NULL, x, true, 7);
    assert_int_equal(aset_count(one), 1);
    assert_true(aset_contains(one, x));
    aset_free(&s);
    aset_free(&plus);
    aset_free(&again);
    aset_free(&minus);
    aset_free(&none);
    aset_free(&one);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* 1 M hashes as list text, parsed and built; times printed (the claim is "well under a second"
 * in a Release build; a sanitizer build is several times slower, so the bound here is loose). */
static void million_entries_parse_and_build(void **state)
{
    (void)state;
    const size_t n = 1000000;
    char *text = malloc(n * 41 + 1);
    assert_non_null(text);
    uint8_t h[ASET_HASH_LEN];
    for (size_t i = 0; i < n; i++) {
        hash_of(i, h);
        hex_of(h, text + i * 41, (i & 1) != 0);
        text[i * 41 + 40] = '\n';
    }
    double t0 = now_s();
    aset_builder_t *b = aset_builder_new();
    char err[128];
    assert_int_equal(aset_builder_parse(b, text, n * 41, err, sizeof(err)), 0);
    double t1 = now_s();
    aset_t *s = aset_build(&b, 0x5eed);
    double t2 = now_s();
    assert_int_equal(aset_count(s), n);
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        hash_of(i, h);
        found += aset_contains(s, h);
    }
    double t3 = now_s();
    for (size_t i = n; i < 2 * n; i++) {
        hash_of(i, h);
        assert_false(aset_contains(s, h));
    }
    double t4 = now_s();
    assert_int_equal(found, n);
    printf("accesslist 1M: parse %.0f ms, build %.0f ms, %zu MiB; lookups %.1f ns (members), "
           "%.1f ns (strangers)\n",
           (t1 - t0) * 1e3, (t2 - t1) * 1e3, aset_memory(s) >> 20, (t3 - t2) * 1e9 / (double)n,
           (t4 - t3) * 1e9 / (double)n);
    assert_true(t2 - t0 < 10.0);
    aset_free(&s);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(empty_set_has_nothing),
        cmocka_unit_test(grammar_accepts_spaces_comments_case_and_crlf),
        cmocka_unit_test(bad_lines_are_reported_with_their_number),
        cmocka_unit_test(repeats_are_dropped),
        cmocka_unit_test(members_found_strangers_not_under_any_seed),
        cmocka_unit_test(with_adds_and_removes_without_touching_the_original),
        cmocka_unit_test(million_entries_parse_and_build),
    };
    return cmocka_run_group_tests_name("accesslist", tests, NULL, NULL);
}
