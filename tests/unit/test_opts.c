/* SPDX-License-Identifier: MIT */
/* test_opts: flags, environment variables, precedence and errors. */
#include "opts.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

typedef struct {
    const char *udp;
    uint32_t workers;
    uint32_t peer_timeout;
    bool verbose;
} cfg_t;

static const opts_spec_t spec[] = {
    {"udp", "ADDR:PORT", OPTS_STRING, offsetof(cfg_t, udp), 0, 0, "udp address"},
    {"workers", "N", OPTS_UINT, offsetof(cfg_t, workers), 1, 64, "workers"},
    {"peer-timeout", "S", OPTS_UINT, offsetof(cfg_t, peer_timeout), 1, 3600, "timeout"},
    {"verbose", NULL, OPTS_FLAG, offsetof(cfg_t, verbose), 0, 0, "verbose"},
};
#define N_SPEC (sizeof(spec) / sizeof(spec[0]))

static cfg_t defaults(void)
{
    return (cfg_t){.udp = "[::]:6969", .workers = 2, .peer_timeout = 2700, .verbose = false};
}

static opts_result_t parse(cfg_t *cfg, char **argv, char **envp, char *err)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    return opts_parse(spec, N_SPEC, cfg, argc, argv, envp, err, 160);
}

static void flags_both_forms(void **state)
{
    (void)state;
    cfg_t cfg = defaults();
    char err[160];
    char *argv[] = {"shoal", "--udp", "127.0.0.1:1", "--workers=7", "--verbose", NULL};
    assert_int_equal(parse(&cfg, argv, NULL, err), OPTS_RUN);
    assert_string_equal(cfg.udp, "127.0.0.1:1");
    assert_int_equal(cfg.workers, 7);
    assert_true(cfg.verbose);
    assert_int_equal(cfg.peer_timeout, 2700);
}

static void env_applies_and_flags_win(void **state)
{
    (void)state;
    cfg_t cfg = defaults();
    char err[160];
    char *envp[] = {"PATH=/bin", "SHOAL_PEER_TIMEOUT=60", "SHOAL_WORKERS=3", "SHOAL_VERBOSE=yes",
                    NULL};
    char *argv[] = {"shoal", "--workers", "5", NULL};
    assert_int_equal(parse(&cfg, argv, envp, err), OPTS_RUN);
    assert_int_equal(cfg.peer_timeout, 60);
    assert_int_equal(cfg.workers, 5);
    assert_true(cfg.verbose);
}

static void env_name_mapping(void **state)
{
    (void)state;
    char name[64];
    opts_env_name("peer-timeout", name, sizeof(name));
    assert_string_equal(name, "SHOAL_PEER_TIMEOUT");
}

static void errors_are_reported(void **state)
{
    (void)state;
    char err[160];
    struct {
        char *argv[4];
        const char *needle;
    } cases[] = {
        {{"shoal", "--nope", NULL}, "unknown option '--nope'"},
        {{"shoal", "--workers", "0", NULL}, "out of range"},
        {{"shoal", "--workers", "65", NULL}, "out of range"},
        {{"shoal", "--workers", "x", NULL}, "not a number"},
        {{"shoal", "--workers", "99999999999", NULL}, "not a number"},
        {{"shoal", "--udp", NULL}, "needs a value"},
        {{"shoal", "stray", NULL}, "unexpected argument"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cfg_t cfg = defaults();
        err[0] = '\0';
        assert_int_equal(parse(&cfg, cases[i].argv, NULL, err), OPTS_ERROR);
        assert_non_null(strstr(err, cases[i].needle));
    }
    cfg_t cfg = defaults();
    char *envp[] = {"SHOAL_VERBOSE=maybe", NULL};
    char *argv[] = {"shoal", NULL};
    assert_int_equal(parse(&cfg, argv, envp, err), OPTS_ERROR);
    assert_non_null(strstr(err, "SHOAL_VERBOSE"));
}

static void help_and_version(void **state)
{
    (void)state;
    cfg_t cfg = defaults();
    char err[160];
    char *a1[] = {"shoal", "--workers", "2", "--help", NULL};
    assert_int_equal(parse(&cfg, a1, NULL, err), OPTS_HELP);
    char *a2[] = {"shoal", "--version", NULL};
    assert_int_equal(parse(&cfg, a2, NULL, err), OPTS_VERSION);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flags_both_forms), cmocka_unit_test(env_applies_and_flags_win),
        cmocka_unit_test(env_name_mapping), cmocka_unit_test(errors_are_reported),
        cmocka_unit_test(help_and_version),
    };
    return cmocka_run_group_tests_name("opts", tests, NULL, NULL);
}
