/* SPDX-License-Identifier: MIT */
/* Unit tests of gateway/access: the three modes, whole-scrape refusal, counters, edits and
 * listing, list files and their errors, and replaces and edits racing readers on several threads
 * (run under ASan and TSan: a set freed while a reader still holds it is a use after free). */
#include "access.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define READERS 4

static void hash_of(uint32_t i, uint8_t h[ASET_HASH_LEN])
{
    memset(h, 0xA5, ASET_HASH_LEN);
    memcpy(h, &i, sizeof(i));
    h[10] = (uint8_t)(i * 31);
}

/* A set of hashes lo..hi-1, plus extra if not NULL. */
static aset_t *range_set(uint32_t lo, uint32_t hi, const uint8_t *extra)
{
    aset_builder_t *b = aset_builder_new();
    uint8_t h[ASET_HASH_LEN];
    for (uint32_t i = lo; i < hi; i++) {
        hash_of(i, h);
        assert_int_equal(aset_builder_add(b, h), 0);
    }
    if (extra)
        assert_int_equal(aset_builder_add(b, extra), 0);
    aset_t *s = aset_build(&b, access_seed());
    assert_non_null(s);
    return s;
}

static void modes_parse_and_name(void **state)
{
    (void)state;
    access_mode_t m = ACCESS_DENY;
    assert_int_equal(access_mode_parse("off", &m), 0);
    assert_int_equal(m, ACCESS_OFF);
    assert_int_equal(access_mode_parse("allow", &m), 0);
    assert_int_equal(m, ACCESS_ALLOW);
    assert_int_equal(access_mode_parse("deny", &m), 0);
    assert_int_equal(m, ACCESS_DENY);
    assert_int_equal(access_mode_parse("Allow", &m), -1);
    assert_int_equal(access_mode_parse("", &m), -1);
    assert_int_equal(m, ACCESS_DENY);
    assert_string_equal(access_mode_name(ACCESS_ALLOW), "allow");
    assert_string_equal(access_mode_name(ACCESS_OFF), "off");
    assert_null(access_new(ACCESS_ALLOW, 0));
}

static void off_allows_everything_and_counts_nothing(void **state)
{
    (void)state;
    access_t *a = access_new(ACCESS_OFF, 1);
    aset_t *s = range_set(0, 10, NULL);
    access_replace(a, &s);
    assert_null(s);
    uint8_t h[ASET_HASH_LEN];
    hash_of(99, h);
    assert_true(access_allows(a, 0, h));
    hash_of(3, h);
    assert_true(access_allows(a, 0, h));
    access_stats_t st;
    access_stats(a, &st);
    assert_int_equal(st.allowed + st.refused, 0);
    access_destroy(&a);
    assert_null(a);
}

static void allow_and_deny_are_opposites(void **state)
{
    (void)state;
    access_t *a = access_new(ACCESS_ALLOW, 2);
    uint8_t in[ASET_HASH_LEN], out[ASET_HASH_LEN];
    hash_of(5, in);
    hash_of(500, out);
    assert_false(access_allows(a, 0, in)); /* allow with an empty list refuses everything */
    aset_t *s = range_set(0, 100, NULL);
    access_replace(a, &s);
    assert_true(access_allows(a, 0, in));
    assert_false(access_allows(a, 1, out));
    access_set_mode(a, ACCESS_DENY);
    assert_int_equal(access_mode(a), ACCESS_DENY);
    assert_false(access_allows(a, 1, in));
    assert_true(access_allows(a, 0, out));
    access_stats_t st;
    access_stats(a, &st);
    assert_int_equal(st.allowed, 2);
    assert_int_equal(st.refused, 3);
    access_destroy(&a);
}

static void a_scrape_is_refused_if_any_hash_is(void **state)
{
    (void)state;
    access_t *a = access_new(ACCESS_ALLOW, 1);
    aset_t *s = range_set(0, 10, NULL);
    access_replace(a, &s);
    uint8_t hs[3 * ASET_HASH_LEN];
    hash_of(1, hs);
    hash_of(2, hs + ASET_HASH_LEN);
    hash_of(3, hs + 2 * ASET_HASH_LEN);
    assert_true(access_allows_all(a, 0, hs, 3));
    hash_of(42, hs + ASET_HASH_LEN);
    assert_false(access_allows_all(a, 0, hs, 3));
    access_set_mode(a, ACCESS_DENY);
    assert_false(access_allows_all(a, 0, hs, 3)); /* 1 is listed: denied */
    hash_of(43, hs);
    hash_of(44, hs + 2 * ASET_HASH_LEN);
    assert_true(access_allows_all(a, 0, hs, 3));
    access_set_mode(a, ACCESS_OFF);
    assert_true(access_allows_all(a, 0, hs, 0));
    access_destroy(&a);
}

static void edits_versions_count_and_list(void **state)
{
    (void)state;
    access_t *a = access_new(ACCESS_ALLOW, 1);
    assert_int_equal(access_version(a), 0);
    assert_int_equal(access_count(a), 0);
    assert_int_equal(access_workers(a), 1);
    uint8_t h[ASET_HASH_LEN], got[4][ASET_HASH_LEN];
    for (uint32_t i = 0; i < 3; i++) {
        hash_of(i, h);
        assert_int_equal(access_edit(a, h, true), 0);
    }
    assert_int_equal(access_version(a), 3);
    assert_int_equal(access_count(a), 3);
    hash_of(1, h);
    assert_true(access_allows(a, 0, h));
    assert_true(access_listed(a, h));
    assert_int_equal(access_edit(a, h, false), 0);
    assert_false(access_listed(a, h));
    assert_false(access_allows(a, 0, h));
    assert_int_equal(access_count(a), 2);
    assert_int_equal(access_list(a, 0, got, 4), 2);
    hash_of(0, h);
    assert_memory_equal(got[0], h, ASET_HASH_LEN);
    hash_of(2, h);
    assert_memory_equal(got[1], h, ASET_HASH_LEN);
    assert_int_equal(access_list(a, 1, got, 4), 1);
    assert_memory_equal(got[0], h, ASET_HASH_LEN);
    assert_int_equal(access_list(a, 2, got, 4), 0);
    assert_int_equal(access_version(a), 4);
    access_destroy(&a);
}

static char *write_file(const char *text)
{
    char *path = strdup("/tmp/test_access_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

static void load_file_reads_lists_and_names_errors(void **state)
{
    (void)state;
    char *good = write_file("# two\n0123456789abcdef0123456789abcdef01234567\n"
                            "0123456789ABCDEF0123456789ABCDEF01234567 # same\n"
                            "ffffffffffffffffffffffffffffffffffffffff\n");
    aset_t *s = NULL;
    char err[256] = "";
    assert_int_equal(access_load_file(good, &s, err, sizeof(err)), 0);
    assert_int_equal(aset_count(s), 2);
    aset_free(&s);

    char *bad = write_file("0123456789abcdef0123456789abcdef01234567\n\nnot a hash\n");
    assert_int_equal(access_load_file(bad, &s, err, sizeof(err)), -1);
    assert_null(s);
    char want[300];
    snprintf(want, sizeof(want), "%s: line 3: expected an info-hash", bad);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("got '%s', want '%s...'", err, want);

    assert_int_equal(access_load_file("/nonexistent/list", &s, err, sizeof(err)), -1);
    assert_string_equal(err, "/nonexistent/list: No such file or directory");
    assert_int_equal(access_load_file("/tmp", &s, err, sizeof(err)), -1);
    assert_string_equal(err, "/tmp: not a regular file");
    char *empty = write_file("");
    assert_int_equal(access_load_file(empty, &s, err, sizeof(err)), 0);
    assert_int_equal(aset_count(s), 0);
    aset_free(&s);
    unlink(good);
    unlink(bad);
    unlink(empty);
    free(good);
    free(bad);
    free(empty);
}

/* ---- replaces racing readers ------------------------------------------------------------------
 */

typedef struct {
    access_t *a;
    unsigned worker;
    atomic_bool *stop;
    uint64_t lookups;
    uint64_t wrong;
} reader_t;

static uint8_t always[ASET_HASH_LEN], never[ASET_HASH_LEN];

static void *reader_main(void *arg)
{
    reader_t *r = arg;
    uint8_t both[2 * ASET_HASH_LEN];
    memcpy(both, always, ASET_HASH_LEN);
    memcpy(both + ASET_HASH_LEN, always, ASET_HASH_LEN);
    /* Bounded: until the writers are done, or 3 M lookups. */
    while (!atomic_load(r->stop) && r->lookups < 3000000) {
        /* always is in every set ever installed, never in none: any other answer means a reader
         * saw a set half-built or already freed. */
        if (!access_allows(r->a, r->worker, always) || access_allows(r->a, r->worker, never) ||
            !access_allows_all(r->a, r->worker, both, 2))
            r->wrong++;
        r->lookups += 3;
    }
    return NULL;
}

typedef struct {
    access_t *a;
    int rounds;
    bool edit; /* access_edit instead of access_replace */
} writer_t;

static void *writer_main(void *arg)
{
    writer_t *wr = arg;
    uint8_t h[ASET_HASH_LEN];
    for (int i = 0; i < wr->rounds; i++) {
        if (wr->edit) {
            hash_of(100000 + (uint32_t)(i % 50), h);
            if (access_edit(wr->a, h, (i / 50) % 2 == 0) != 0)
                return (void *)1;
        } else {
            uint32_t lo = (uint32_t)(i % 7) * 1000;
            aset_t *s = range_set(lo, lo + 2000, always);
            access_replace(wr->a, &s);
        }
    }
    return NULL;
}

static void replaces_race_readers_safely(void **state)
{
    (void)state;
    hash_of(0xFFFFFF01, always);
    hash_of(0xFFFFFF02, never);
    access_t *a = access_new(ACCESS_ALLOW, READERS);
    aset_t *first = range_set(0, 10, always);
    access_replace(a, &first);
    atomic_bool stop = false;
    reader_t readers[READERS];
    pthread_t rt[READERS], wt[2];
    for (unsigned i = 0; i < READERS; i++) {
        readers[i] = (reader_t){.a = a, .worker = i, .stop = &stop};
        assert_int_equal(pthread_create(&rt[i], NULL, reader_main, &readers[i]), 0);
    }
    writer_t writers[2] = {{.a = a, .rounds = 300, .edit = false},
                           {.a = a, .rounds = 300, .edit = true}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&wt[i], NULL, writer_main, &writers[i]), 0);
    for (int i = 0; i < 2; i++) {
        void *rc;
        pthread_join(wt[i], &rc);
        assert_null(rc);
    }
    atomic_store(&stop, true);
    uint64_t lookups = 0;
    for (unsigned i = 0; i < READERS; i++) {
        pthread_join(rt[i], NULL);
        assert_int_equal(readers[i].wrong, 0);
        lookups += readers[i].lookups;
    }
    assert_int_equal(access_version(a), 1 + 600);
    access_stats_t st;
    access_stats(a, &st);
    /* Every lookup counted: per reader turn 1 + 1 refused + 2 allowed. */
    assert_int_equal(st.allowed + st.refused, lookups / 3 * 4);
    assert_int_equal(st.refused, lookups / 3);
    printf("access race: %llu lookups by %d readers over 600 swaps\n", (unsigned long long)lookups,
           READERS);
    access_destroy(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(modes_parse_and_name),
        cmocka_unit_test(off_allows_everything_and_counts_nothing),
        cmocka_unit_test(allow_and_deny_are_opposites),
        cmocka_unit_test(a_scrape_is_refused_if_any_hash_is),
        cmocka_unit_test(edits_versions_count_and_list),
        cmocka_unit_test(load_file_reads_lists_and_names_errors),
        cmocka_unit_test(replaces_race_readers_safely),
    };
    return cmocka_run_group_tests_name("access", tests, NULL, NULL);
}
