/* SPDX-License-Identifier: MIT */
/* Unit tests of runtime/secretfile: a secret read from a file, on files made in a temp dir. */
#include "secretfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

typedef struct {
    char dir[64];
    char path[96];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/shoal-secretfile-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/secret", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_file(const fixture_t *f, const void *data, size_t len, mode_t mode)
{
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    fclose(fp);
    assert_int_equal(chmod(f->path, mode), 0);
}

static void reads_a_secret_and_strips_one_newline(void **state)
{
    fixture_t *f = *state;
    char out[16], err[128];
    bool loose = true;
    write_file(f, "hunter2\n", 8, 0600);
    assert_int_equal(secretfile_read(f->path, out, sizeof(out), &loose, err, sizeof(err)), 0);
    assert_string_equal(out, "hunter2");
    assert_false(loose);
    write_file(f, "hunter2\r\n", 9, 0640);
    assert_int_equal(secretfile_read(f->path, out, sizeof(out), &loose, err, sizeof(err)), 0);
    assert_string_equal(out, "hunter2");
    write_file(f, "hunter2", 7, 0600);
    assert_int_equal(secretfile_read(f->path, out, sizeof(out), NULL, err, sizeof(err)), 0);
    assert_string_equal(out, "hunter2");
}

static void says_when_others_may_read_it(void **state)
{
    fixture_t *f = *state;
    char out[16], err[128];
    bool loose = false;
    write_file(f, "x", 1, 0644);
    assert_int_equal(secretfile_read(f->path, out, sizeof(out), &loose, err, sizeof(err)), 0);
    assert_true(loose);
}

static void a_secret_that_just_fits(void **state)
{
    fixture_t *f = *state;
    char out[8], err[128];
    write_file(f, "1234567\n", 8, 0600); /* 7 bytes + NUL fill out[8] */
    assert_int_equal(secretfile_read(f->path, out, sizeof(out), NULL, err, sizeof(err)), 0);
    assert_string_equal(out, "1234567");
}

static void refuses_long_empty_and_odd_files_without_echoing_them(void **state)
{
    fixture_t *f = *state;
    char out[8], err[128];
    struct {
        const char *data;
        size_t len;
    } bad[] = {
        {"12345678", 8},         /* one byte too long */
        {"1234567\nmore\n", 13}, /* a second line */
        {"", 0},
        {"\n", 1},
        {"ab\0cd", 5},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(f, bad[i].data, bad[i].len, 0600);
        err[0] = '\0';
        assert_int_equal(secretfile_read(f->path, out, sizeof(out), NULL, err, sizeof(err)), -1);
        assert_non_null(strstr(err, f->path));
        if (bad[i].len > 2)
            assert_null(strstr(err, "1234")); /* the content is never in the message */
    }
    unlink(f->path);
    assert_int_equal(secretfile_read(f->path, out, sizeof(out), NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(secretfile_read(f->dir, out, sizeof(out), NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not a regular file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(reads_a_secret_and_strips_one_newline, setup, teardown),
        cmocka_unit_test_setup_teardown(says_when_others_may_read_it, setup, teardown),
        cmocka_unit_test_setup_teardown(a_secret_that_just_fits, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_long_empty_and_odd_files_without_echoing_them,
                                        setup, teardown),
    };
    return cmocka_run_group_tests_name("secretfile", tests, NULL, NULL);
}
