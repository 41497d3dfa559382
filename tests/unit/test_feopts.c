/* SPDX-License-Identifier: MIT */
/* Unit tests of gateway/feopts: contradictory front-end options are refused with a clear reason,
 * and the secret comes from --secret or --secret-file. */
#include "feopts.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static feopts_t base(void)
{
    feopts_t o;
    feopts_defaults(&o);
    o.udp = "127.0.0.1:6969";
    o.http = "off";
    return o;
}

static int apply(const feopts_t *o, frontend_config_t *fc, char *err, size_t errlen)
{
    bool random_secret;
    return feopts_apply(o, fc, &random_secret, err, errlen);
}

static void defaults_apply(void **state)
{
    (void)state;
    feopts_t o = base();
    frontend_config_t fc;
    char err[256];
    bool random_secret = false;
    assert_int_equal(feopts_apply(&o, &fc, &random_secret, err, sizeof(err)), 0);
    assert_true(random_secret);
    assert_int_equal(fc.min_interval, o.interval / 2);
}

static void numwant_above_max_is_refused(void **state)
{
    (void)state;
    feopts_t o = base();
    frontend_config_t fc;
    char err[256];
    o.numwant = 80;
    o.max_numwant = 50;
    assert_int_equal(apply(&o, &fc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--numwant 80 is above --max-numwant 50"));
    o.max_numwant = 80;
    assert_int_equal(apply(&o, &fc, err, sizeof(err)), 0);
}

static void min_interval_above_interval_is_refused(void **state)
{
    (void)state;
    feopts_t o = base();
    frontend_config_t fc;
    char err[256];
    o.interval = 600;
    o.min_interval = 900;
    assert_int_equal(apply(&o, &fc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--min-interval 900 is above --interval 600"));
    o.min_interval = 600;
    assert_int_equal(apply(&o, &fc, err, sizeof(err)), 0);
}

static void secret_and_secret_file_exclude_each_other(void **state)
{
    (void)state;
    feopts_t o = base();
    frontend_config_t fc;
    char err[256];
    o.secret = "0000000000000000000000000000000000000000000000000000000000000001";
    o.secret_file = "/nonexistent";
    assert_int_equal(apply(&o, &fc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not both"));
}

static void secret_file_gives_the_same_secret_as_the_flag(void **state)
{
    (void)state;
    const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    char path[] = "/tmp/shoal-feopts-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, hex, 64), 64);
    assert_int_equal(write(fd, "\n", 1), 1);
    close(fd);
    feopts_t a = base(), b = base();
    a.secret = hex;
    b.secret_file = path;
    frontend_config_t fa, fb;
    char err[256];
    bool ra = true, rb = true;
    assert_int_equal(feopts_apply(&a, &fa, &ra, err, sizeof(err)), 0);
    assert_int_equal(feopts_apply(&b, &fb, &rb, err, sizeof(err)), 0);
    assert_false(ra);
    assert_false(rb);
    assert_memory_equal(fa.secret, fb.secret, sizeof(fa.secret));
    /* Not 64 hex digits: refused, and the message names the file, not its content. */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "deadbeef", 8), 8);
    close(fd);
    assert_int_equal(apply(&b, &fb, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    assert_null(strstr(err, "deadbeef"));
    unlink(path);
}

static void access_options_are_checked_and_loaded(void **state)
{
    (void)state;
    feopts_t o = base();
    frontend_config_t fc;
    char err[256];
    o.access_mode = "sometimes";
    assert_int_equal(apply(&o, &fc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--access-mode must be off, allow or deny"));
    assert_null(feopts_access_new(&o, 2, err, sizeof(err)));

    /* The default: off, empty, yet an access list the front end can be given. */
    o = base();
    assert_int_equal(apply(&o, &fc, err, sizeof(err)), 0);
    assert_null(fc.access);
    access_t *a = feopts_access_new(&o, 2, err, sizeof(err));
    assert_non_null(a);
    assert_int_equal(access_mode(a), ACCESS_OFF);
    assert_int_equal(access_count(a), 0);
    access_destroy(&a);

    char path[] = "/tmp/test_feopts_acl_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# two\n0123456789abcdef0123456789abcdef01234567\n"
                       "ffffffffffffffffffffffffffffffffffffffff\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    o.access_mode = "allow";
    o.access_list = path;
    assert_int_equal(apply(&o, &fc, err, sizeof(err)), 0);
    a = feopts_access_new(&o, 2, err, sizeof(err));
    assert_non_null(a);
    assert_int_equal(access_mode(a), ACCESS_ALLOW);
    assert_int_equal(access_count(a), 2);
    assert_int_equal(access_workers(a), 2);
    access_destroy(&a);

    fd = open(path, O_WRONLY | O_APPEND);
    assert_int_equal(write(fd, "nope\n", 5), 5);
    close(fd);
    assert_null(feopts_access_new(&o, 2, err, sizeof(err)));
    char want[128];
    snprintf(want, sizeof(want), "--access-list %s: line 4: expected an info-hash", path);
    assert_non_null(strstr(err, want));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_apply),
        cmocka_unit_test(access_options_are_checked_and_loaded),
        cmocka_unit_test(numwant_above_max_is_refused),
        cmocka_unit_test(min_interval_above_interval_is_refused),
        cmocka_unit_test(secret_and_secret_file_exclude_each_other),
        cmocka_unit_test(secret_file_gives_the_same_secret_as_the_flag),
    };
    return cmocka_run_group_tests_name("feopts", tests, NULL, NULL);
}
