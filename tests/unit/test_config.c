/* SPDX-License-Identifier: MIT */
/* test_config: the config file (runtime/config.c) and its place among the option layers
 * (runtime/daemon.c): syntax, each error with its exact "FILE:LINE:" text, print -> parse round
 * trips, precedence through daemon_parse(), and the reload primitives. */
#include "config.h"
#include "daemon.h"
#include "slog.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct {
    daemon_opts_t daemon;
    const char *udp;
    const char *name; /* NULL unless set */
    uint32_t workers;
    uint32_t peer_timeout;
    bool verbose;
    bool quiet;
} cfg_t;

static const opts_spec_t spec[] = {
    OPTS_SPEC(cfg_t, "udp", "ADDR:PORT", OPTS_STRING, udp, 0, 0, "udp address"),
    OPTS_SPEC(cfg_t, "name", "NAME", OPTS_STRING, name, 0, 0, "a name\nover two lines"),
    OPTS_SPEC(cfg_t, "workers", "N", OPTS_UINT, workers, 1, 64, "workers"),
    OPTS_SPEC(cfg_t, "peer-timeout", "S", OPTS_UINT, peer_timeout, 1, 4294967295u, "timeout"),
    OPTS_SPEC(cfg_t, "verbose", NULL, OPTS_FLAG, verbose, 0, 0, "verbose"),
    OPTS_SPEC(cfg_t, "quiet", NULL, OPTS_FLAG, quiet, 0, 0, "quiet"),
};
#define N_SPEC (sizeof(spec) / sizeof(spec[0]))

static cfg_t defaults(void)
{
    cfg_t c = {.udp = "[::]:6969", .workers = 2, .peer_timeout = 2700, .quiet = true};
    daemon_opts_defaults(&c.daemon);
    return c;
}

static int setup(void **state)
{
    *state = config_arena_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    config_arena_t *arena = *state;
    config_arena_destroy(&arena);
    return 0;
}

static int parse(void **state, cfg_t *cfg, const char *text, char *err)
{
    err[0] = '\0';
    return config_parse_string("t.conf", text, spec, N_SPEC, cfg, *state, err, 256);
}

static void good_file(void **state)
{
    cfg_t cfg = defaults();
    char err[256];
    const char *text = "# a comment\n"
                       "; another\n"
                       "\n"
                       "   \t\n"
                       "udp = 127.0.0.1:7000 ; an inline comment\n"
                       "\tworkers=7\r\n"
                       "  peer-timeout   =   600   \n"
                       "verbose = yes\n"
                       "quiet = false\n"
                       "name = \"  spaced \\;#\\\" \\\\ \\t\\x41 \"";
    assert_int_equal(parse(state, &cfg, text, err), 0);
    assert_string_equal(err, "");
    assert_string_equal(cfg.udp, "127.0.0.1:7000");
    assert_int_equal(cfg.workers, 7);
    assert_int_equal(cfg.peer_timeout, 600);
    assert_true(cfg.verbose);
    assert_false(cfg.quiet);
    assert_string_equal(cfg.name, "  spaced ;#\" \\ \tA ");
    assert_string_equal(cfg.daemon.log_level, "info"); /* untouched */
}

static void strings_are_owned_by_the_arena(void **state)
{
    cfg_t cfg = defaults();
    char err[256];
    char text[] = "udp = a:1\n";
    assert_int_equal(parse(state, &cfg, text, err), 0);
    memset(text, 'x', sizeof(text) - 1); /* the text is the caller's to reuse */
    assert_string_equal(cfg.udp, "a:1");
    cfg_t again = defaults();
    assert_int_equal(parse(state, &again, "udp=a:1", err), 0);
    assert_ptr_equal(again.udp, cfg.udp); /* interned: a reload adds nothing */
}

static void indented_line_is_a_key_not_a_continuation(void **state)
{
    cfg_t cfg = defaults();
    char err[256];
    assert_int_equal(parse(state, &cfg, "udp = a:1\n    workers = 9\n", err), 0);
    assert_string_equal(cfg.udp, "a:1");
    assert_int_equal(cfg.workers, 9);
}

static void flags_take_every_spelling(void **state)
{
    const char *on[] = {"true", "yes", "1"}, *off[] = {"false", "no", "0"};
    char err[256], text[64];
    for (size_t i = 0; i < 3; i++) {
        cfg_t cfg = defaults();
        snprintf(text, sizeof(text), "verbose = %s\nquiet = %s\n", on[i], off[i]);
        assert_int_equal(parse(state, &cfg, text, err), 0);
        assert_true(cfg.verbose);
        assert_false(cfg.quiet);
    }
}

static void empty_and_quoted_values(void **state)
{
    cfg_t cfg = defaults();
    char err[256];
    assert_int_equal(parse(state, &cfg, "udp = \"\"\nname =\nworkers = \"12\"\n", err), 0);
    assert_string_equal(cfg.udp, "");
    assert_string_equal(cfg.name, "");
    assert_int_equal(cfg.workers, 12);
}

static void each_error_names_file_and_line(void **state)
{
    static const struct {
        const char *text;
        const char *err;
    } cases[] = {
        {"workers = 3\nnope = 1\n", "t.conf:2: unknown key 'nope'"},
        {"workers = 3\n\n  workers = 4\n", "t.conf:3: duplicate key 'workers' (first on line 1)"},
        {"peer-timeout = 0\n", "t.conf:1: peer-timeout: 0 is out of range 1..4294967295"},
        {"\nworkers = 65", "t.conf:2: workers: 65 is out of range 1..64"},
        {"workers = 3x\n", "t.conf:1: workers: '3x' is not a number in 1..64"},
        {"workers = 99999999999\n", "t.conf:1: workers: '99999999999' is not a number in 1..64"},
        {"workers =\n", "t.conf:1: workers: expected a number"},
        {"verbose = maybe\n", "t.conf:1: verbose: expected 1/0, true/false or yes/no, got 'maybe'"},
        {"workers = 3\n[main]\nudp = x\n",
         "t.conf:3: 'udp' is under [main]: keys belong at the top level (no sections)"},
        {"workers 3\n", "t.conf:1: expected 'name = value'"},
        {"[broken\n", "t.conf:1: expected 'name = value'"},
        {"x\nnope = 1\n", "t.conf:1: expected 'name = value'"}, /* the first error wins */
        {"nope = 1\nx\n", "t.conf:1: unknown key 'nope'"},
        {"config = other.conf\n", "t.conf:1: 'config' cannot be set in a config file"},
        {"print-config = true\n", "t.conf:1: 'print-config' cannot be set in a config file"},
        {"udp = \"a ;b\"\n",
         "t.conf:1: udp: the quoted value has no closing '\"' (inside quotes, write ';' as \\;)"},
        {"udp = \"a\" b\n", "t.conf:1: udp: text after the closing '\"' (quote the whole value)"},
        {"udp = \"a\\q\"\n",
         "t.conf:1: udp: unknown escape (inside quotes: \\\" \\\\ \\; \\n \\r \\t \\xHH)"},
        {"udp = \"\\x00\"\n", "t.conf:1: udp: \\x takes two hex digits, not 00"},
        {"udp = \"\\x4\"\n", "t.conf:1: udp: \\x takes two hex digits, not 00"},
        {"udp = \"\\", "t.conf:1: udp: unknown escape (inside quotes: \\\" \\\\ \\; \\n \\r \\t "
                       "\\xHH)"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cfg_t cfg = defaults();
        assert_int_equal(parse(state, &cfg, cases[i].text, err), -1);
        assert_string_equal(err, cases[i].err);
    }
}

static void long_line_is_refused(void **state)
{
    size_t n = CONFIG_LINE_MAX + 16;
    char *text = malloc(n + 1);
    assert_non_null(text);
    memcpy(text, "workers = 1\nudp = ", 18);
    memset(text + 18, 'a', n - 18);
    text[n] = '\0';
    cfg_t cfg = defaults();
    char err[256];
    assert_int_equal(parse(state, &cfg, text, err), -1);
    assert_string_equal(err, "t.conf:2: line too long (longer than 4094 bytes)");
    /* The longest line that fits is read whole. */
    text[CONFIG_LINE_MAX - 2 + 12] = '\0'; /* line 2 is now CONFIG_LINE_MAX - 2 bytes */
    cfg = defaults();
    assert_int_equal(parse(state, &cfg, text, err), 0);
    assert_int_equal(strlen(cfg.udp), CONFIG_LINE_MAX - 2 - 6);
    free(text);
}

static void unreadable_file(void **state)
{
    cfg_t cfg = defaults();
    char err[256];
    assert_int_equal(
        config_parse_file("/nonexistent/shoal.conf", spec, N_SPEC, &cfg, *state, err, sizeof(err)),
        -1);
    assert_string_equal(err, "/nonexistent/shoal.conf: cannot read: No such file or directory");
}

/* A file in /tmp holding text; its path in path (64 bytes). */
static void write_file(char *path, const char *text, size_t len)
{
    strcpy(path, "/tmp/test_config.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

static void rewrite_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void file_with_nul_byte(void **state)
{
    char path[64];
    write_file(path, "workers = 3\nudp = a\0b\n", 22);
    cfg_t cfg = defaults();
    char err[256], want[128];
    assert_int_equal(config_parse_file(path, spec, N_SPEC, &cfg, *state, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:2: a NUL byte (is this a text file?)", path);
    assert_string_equal(err, want);
    unlink(path);
}

static bool same_cfg(const cfg_t *a, const cfg_t *b)
{
    bool names = a->name == b->name || (a->name && b->name && !strcmp(a->name, b->name));
    return !strcmp(a->udp, b->udp) && names && a->workers == b->workers &&
           a->peer_timeout == b->peer_timeout && a->verbose == b->verbose && a->quiet == b->quiet;
}

/* Print cfg with config_print() and parse the text onto the defaults. */
static void round_trip(void **state, const cfg_t *cfg, cfg_t *back, char **text_out)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    config_print(out, spec, N_SPEC, cfg, "test");
    assert_int_equal(fclose(out), 0);
    *back = defaults();
    char err[256];
    if (parse(state, back, text, err) != 0)
        fail_msg("%s in:\n%s", err, text);
    *text_out = text;
}

static void print_parse_round_trip(void **state)
{
    static const char *const strings[] = {
        "",         " lead",          "trail ",   "a;b",       "a ;b",         "#x",  "x#",
        "\"quoted", "in\"side",       "back\\sl", "tab\tnl\n", "\x01\x1f\x7f", "[b]", "=eq",
        "k = v",    "unicod\xc3\xa9", ";",        "\\x41",     " ; ",          "\"",  "a\r",
    };
    for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
        cfg_t cfg = defaults(), back;
        cfg.udp = strings[i];
        cfg.name = strings[(i + 1) % (sizeof(strings) / sizeof(strings[0]))];
        cfg.workers = 64;
        cfg.peer_timeout = 4294967295u;
        cfg.verbose = i % 2;
        cfg.quiet = !(i % 2);
        char *text;
        round_trip(state, &cfg, &back, &text);
        if (!same_cfg(&cfg, &back))
            fail_msg("string %zu did not come back from:\n%s", i, text);
        free(text);
    }
}

static void print_format(void **state)
{
    cfg_t cfg = defaults(), back;
    cfg.workers = 7;
    char *text;
    round_trip(state, &cfg, &back, &text);
    assert_true(same_cfg(&cfg, &back));
    assert_non_null(strstr(text, "# test configuration"));
    assert_non_null(
        strstr(text, "\n# workers\n# (--workers N, SHOAL_WORKERS; 1..64)\nworkers = 7\n"));
    assert_non_null(strstr(text, "\n# a name\n# over two lines\n# (--name NAME, SHOAL_NAME)\n"
                                 "# name = (not set)\n"));
    assert_non_null(strstr(text, "\nverbose = false\n"));
    assert_non_null(strstr(text, "\nquiet = true\n"));
    assert_non_null(strstr(text, "\nudp = [::]:6969\n"));
    assert_null(back.name); /* "(not set)" is a comment */
    free(text);
}

/* ---- daemon_parse(): the file among the layers ---------------------------------------------- */

static void clear_env(void)
{
    unsetenv("SHOAL_CONFIG");
    unsetenv("SHOAL_WORKERS");
    unsetenv("SHOAL_PEER_TIMEOUT");
    unsetenv("SHOAL_UDP");
    unsetenv("SHOAL_LOG_LEVEL");
}

static void init(daemon_t *d)
{
    daemon_init(d, "test", offsetof(cfg_t, daemon));
    daemon_options(d, OPTS_TABLE(spec), 0);
}

static int run_parse(daemon_t *d, cfg_t *cfg, char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    return daemon_parse(d, "about", "test [options]", cfg, sizeof(*cfg), argc, argv);
}

static void precedence_file_env_argv(void **state)
{
    (void)state;
    clear_env();
    char path[64];
    const char *text = "udp = file:1\nworkers = 3\npeer-timeout = 100\nverbose = true\n";
    write_file(path, text, strlen(text));
    setenv("SHOAL_PEER_TIMEOUT", "200", 1);
    setenv("SHOAL_UDP", "env:1", 1);
    daemon_t d;
    init(&d);
    cfg_t cfg = defaults();
    char *argv[] = {"test", "--udp", "argv:1", "--config", path, NULL};
    assert_int_equal(run_parse(&d, &cfg, argv), -1);
    assert_string_equal(cfg.udp, "argv:1");  /* argv > env > file */
    assert_int_equal(cfg.peer_timeout, 200); /* env > file */
    assert_int_equal(cfg.workers, 3);        /* file > default */
    assert_true(cfg.verbose);
    assert_true(cfg.quiet); /* default */
    assert_string_equal(d.config_path, path);

    /* SHOAL_CONFIG names the file as well. */
    clear_env();
    setenv("SHOAL_CONFIG", path, 1);
    init(&d);
    cfg = defaults();
    char *argv2[] = {"test", NULL};
    assert_int_equal(run_parse(&d, &cfg, argv2), -1);
    assert_string_equal(cfg.udp, "file:1");
    assert_int_equal(cfg.peer_timeout, 100);
    clear_env();
    unlink(path);
}

static void file_error_stops_the_start(void **state)
{
    (void)state;
    clear_env();
    char path[64];
    write_file(path, "workers = 3\nbogus = 1\n", 22);
    daemon_t d;
    init(&d);
    cfg_t cfg = defaults();
    char *argv[] = {"test", "--config", path, NULL};
    assert_int_equal(run_parse(&d, &cfg, argv), 2);
    char *argv2[] = {"test", "--config", "/nonexistent/x.conf", NULL};
    init(&d);
    cfg = defaults();
    assert_int_equal(run_parse(&d, &cfg, argv2), 2);
    unlink(path);
}

/* daemon_parse() with --print-config, stdout captured in a file; the text in *text. */
static int parse_printing(daemon_t *d, cfg_t *cfg, char **argv, char **text)
{
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), STDOUT_FILENO) >= 0);
    int rc = run_parse(d, cfg, argv);
    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    assert_int_equal(fseek(tmp, 0, SEEK_END), 0); /* the offset fd 1 shared */
    long len = ftell(tmp);
    assert_true(len > 0);
    rewind(tmp);
    *text = calloc(1, (size_t)len + 1);
    assert_non_null(*text);
    assert_int_equal(fread(*text, 1, (size_t)len, tmp), (size_t)len);
    fclose(tmp);
    return rc;
}

static void print_config_prints_every_layer(void **state)
{
    clear_env();
    char path[64];
    const char *file = "workers = 3\nname = \" from file \"\n";
    write_file(path, file, strlen(file));
    setenv("SHOAL_PEER_TIMEOUT", "200", 1);
    daemon_t d;
    init(&d);
    cfg_t cfg = defaults();
    char *argv[] = {"test",  "--config",       path, "--udp", "argv:1", "--log-level",
                    "debug", "--print-config", NULL};
    char *text;
    assert_int_equal(parse_printing(&d, &cfg, argv, &text), 0);
    assert_non_null(strstr(text, "# test configuration"));
    assert_null(strstr(text, "\nconfig ="));
    assert_null(strstr(text, "\nprint-config ="));
    /* --config reads it back into the same configuration. */
    cfg_t back = defaults();
    char err[256];
    if (config_parse_string("printed", text, d.spec, d.n_spec, &back, *state, err, sizeof(err)))
        fail_msg("%s in:\n%s", err, text);
    assert_true(same_cfg(&cfg, &back));
    assert_string_equal(back.name, " from file ");
    assert_int_equal(back.peer_timeout, 200);
    assert_string_equal(back.udp, "argv:1");
    assert_string_equal(back.daemon.log_level, "debug");
    assert_string_equal(back.daemon.log_format, "text");
    free(text);
    clear_env();
    unlink(path);
}

/* ---- reload ------------------------------------------------------------------------------- */

typedef struct {
    const char *names[8];
    size_t n;
} changes_t;

static void collect(void *arg, const opts_spec_t *s)
{
    changes_t *c = arg;
    if (c->n < 8)
        c->names[c->n++] = s->name;
}

static void reparse_and_diff(void **state)
{
    (void)state;
    clear_env();
    char path[64];
    const char *text = "workers = 3\nname = n1\n";
    write_file(path, text, strlen(text));
    daemon_t d;
    init(&d);
    cfg_t cfg = defaults();
    char *argv[] = {"test", "--config", path, "--peer-timeout", "50", NULL};
    assert_int_equal(run_parse(&d, &cfg, argv), -1);

    cfg_t fresh;
    char err[256];
    changes_t c = {0};
    assert_int_equal(daemon_reparse(&d, &fresh, err, sizeof(err)), 0);
    daemon_config_diff(&d, &cfg, &fresh, collect, &c);
    assert_int_equal(c.n, 0);

    rewrite_file(path, "workers = 5\nname = n1\nlog-level = debug\npeer-timeout = 9\n");
    assert_int_equal(daemon_reparse(&d, &fresh, err, sizeof(err)), 0);
    c.n = 0;
    daemon_config_diff(&d, &cfg, &fresh, collect, &c);
    assert_int_equal(c.n, 2); /* peer-timeout: argv still wins */
    assert_string_equal(c.names[0], "log-level");
    assert_string_equal(c.names[1], "workers");
    assert_int_equal(fresh.workers, 5);
    assert_int_equal(fresh.peer_timeout, 50);

    /* Strings compare by content: the same text at another address is no change. */
    char same[] = "n1";
    cfg_t copy = cfg;
    copy.name = same;
    c.n = 0;
    daemon_config_diff(&d, &cfg, &copy, collect, &c);
    assert_int_equal(c.n, 0);
    copy.name = NULL;
    daemon_config_diff(&d, &cfg, &copy, collect, &c);
    assert_int_equal(c.n, 1);

    rewrite_file(path, "workers = 5\nworkers = 6\n");
    char want[128];
    snprintf(want, sizeof(want), "%s:2: duplicate key 'workers' (first on line 1)", path);
    assert_int_equal(daemon_reparse(&d, &fresh, err, sizeof(err)), -1);
    assert_string_equal(err, want);
    rewrite_file(path, "log-level = loud\n");
    assert_int_equal(daemon_reparse(&d, &fresh, err, sizeof(err)), -1);
    assert_string_equal(err, "--log-level must be error, warn, info or debug");
    unlink(path);
}

/* An apply function that takes workers live. */
static bool apply_workers(void *arg, const opts_spec_t *s, const void *fresh)
{
    daemon_t *d = arg;
    if (strcmp(s->name, "workers") != 0)
        return false;
    daemon_config_adopt(d, fresh, s);
    return true;
}

static void reload_applies_own_options_and_reports_the_rest(void **state)
{
    (void)state;
    clear_env();
    char path[64];
    const char *text = "workers = 3\n";
    write_file(path, text, strlen(text));
    daemon_t d;
    init(&d);
    cfg_t cfg = defaults();
    char *argv[] = {"test", "--config", path, NULL};
    assert_int_equal(run_parse(&d, &cfg, argv), -1);
    assert_int_equal(slog_get_level(), SLOG_INFO);

    assert_int_equal(daemon_reload(&d, NULL, NULL), 0); /* "reload: nothing changed" */

    rewrite_file(path, "workers = 4\nlog-level = warn\nlog-format = json\n");
    assert_int_equal(daemon_reload(&d, NULL, NULL), 3);
    assert_int_equal(slog_get_level(), SLOG_WARN);
    assert_int_equal(slog_get_format(), SLOG_JSON);
    assert_string_equal(cfg.daemon.log_level, "warn");
    assert_string_equal(cfg.daemon.log_format, "json");
    assert_int_equal(cfg.workers, 3); /* needs a restart: not adopted */
    /* Still different from the running config, so still reported. */
    assert_int_equal(daemon_reload(&d, NULL, NULL), 1);
    /* A role that takes it live adopts it. */
    assert_int_equal(daemon_reload(&d, apply_workers, &d), 1);
    assert_int_equal(cfg.workers, 4);
    assert_int_equal(daemon_reload(&d, apply_workers, &d), 0);

    /* A broken file keeps the running configuration. */
    rewrite_file(path, "workers = 0\nlog-level = debug\n");
    assert_int_equal(daemon_reload(&d, NULL, NULL), -1);
    assert_int_equal(slog_get_level(), SLOG_WARN);
    assert_int_equal(cfg.workers, 4);

    slog_set_level(SLOG_INFO);
    slog_set_format(SLOG_TEXT);
    unlink(path);
}

static void reload_without_a_file(void **state)
{
    (void)state;
    clear_env();
    setenv("SHOAL_WORKERS", "6", 1);
    daemon_t d;
    init(&d);
    cfg_t cfg = defaults();
    char *argv[] = {"test", "--udp", "x:1", NULL};
    assert_int_equal(run_parse(&d, &cfg, argv), -1);
    assert_null(d.config_path);
    assert_int_equal(cfg.workers, 6);
    assert_int_equal(daemon_reload(&d, NULL, NULL), 0);
    setenv("SHOAL_WORKERS", "7", 1); /* the environment is read again */
    assert_int_equal(daemon_reload(&d, NULL, NULL), 1);
    clear_env();

    daemon_t never;
    init(&never);
    cfg_t fresh;
    char err[256];
    assert_int_equal(daemon_reparse(&never, &fresh, err, sizeof(err)), -1);
    assert_int_equal(daemon_reload(&never, NULL, NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(good_file, setup, teardown),
        cmocka_unit_test_setup_teardown(strings_are_owned_by_the_arena, setup, teardown),
        cmocka_unit_test_setup_teardown(indented_line_is_a_key_not_a_continuation, setup, teardown),
        cmocka_unit_test_setup_teardown(flags_take_every_spelling, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_and_quoted_values, setup, teardown),
        cmocka_unit_test_setup_teardown(each_error_names_file_and_line, setup, teardown),
        cmocka_unit_test_setup_teardown(long_line_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(unreadable_file, setup, teardown),
        cmocka_unit_test_setup_teardown(file_with_nul_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(print_parse_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(print_format, setup, teardown),
        cmocka_unit_test(precedence_file_env_argv),
        cmocka_unit_test(file_error_stops_the_start),
        cmocka_unit_test_setup_teardown(print_config_prints_every_layer, setup, teardown),
        cmocka_unit_test(reparse_and_diff),
        cmocka_unit_test(reload_applies_own_options_and_reports_the_rest),
        cmocka_unit_test(reload_without_a_file),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
