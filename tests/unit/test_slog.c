/* SPDX-License-Identifier: MIT */
/* test_slog: log lines as text and as json (runtime/slog.c). stderr is captured through a pipe;
 * json lines are parsed back with jansson, which also rejects invalid UTF-8. */
#include "slog.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define CAP 8192 /* more than any line: the pipe never fills */

/* slog_msg(level, "%s", msg) with stderr going into buf (CAP bytes); returns the bytes written. */
static size_t capture(char *buf, slog_level_t level, const char *msg)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(p[1], STDERR_FILENO) >= 0);
    slog_msg(level, "%s", msg);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    close(p[1]);
    size_t len = 0;
    for (;;) { /* ends at EOF: every write end is closed */
        assert_true(len < CAP - 1);
        ssize_t n = read(p[0], buf + len, CAP - 1 - len);
        assert_true(n >= 0);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(p[0]);
    buf[len] = '\0';
    return len;
}

static int setup(void **state)
{
    (void)state;
    slog_set_level(SLOG_INFO);
    slog_set_format(SLOG_JSON);
    slog_set_role("shoal-node");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    slog_set_format(SLOG_TEXT);
    slog_set_role(NULL);
    return 0;
}

/* The one json line in buf, parsed; checks its shape and returns the object (caller decrefs). */
static json_t *parse_line(const char *buf, size_t len)
{
    assert_true(len > 0);
    assert_int_equal(buf[len - 1], '\n');
    assert_ptr_equal(strchr(buf, '\n'), buf + len - 1); /* one line */
    json_error_t error;
    json_t *obj = json_loadb(buf, len - 1, 0, &error);
    if (!obj)
        fail_msg("not JSON (%s at %d): %s", error.text, error.position, buf);
    assert_true(json_is_object(obj));
    assert_int_equal(json_object_size(obj), 5);
    const char *time = json_string_value(json_object_get(obj, "time"));
    assert_non_null(time);
    int y, mo, d, h, mi, s, ms;
    char z;
    assert_int_equal(
        sscanf(time, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &s, &ms, &z), 8);
    assert_int_equal(z, 'Z');
    assert_int_equal(strlen(time), 24);
    json_t *fields = json_object_get(obj, "fields");
    assert_true(json_is_object(fields));
    assert_int_equal(json_object_size(fields), 0);
    return obj;
}

static void json_line_has_every_field(void **state)
{
    (void)state;
    char buf[CAP];
    size_t len = capture(buf, SLOG_WARN, "listening on 127.0.0.1:6969");
    json_t *obj = parse_line(buf, len);
    assert_string_equal(json_string_value(json_object_get(obj, "level")), "warn");
    assert_string_equal(json_string_value(json_object_get(obj, "role")), "shoal-node");
    assert_string_equal(json_string_value(json_object_get(obj, "msg")),
                        "listening on 127.0.0.1:6969");
    json_decref(obj);
    /* The keys come in this order, for people reading the raw lines. */
    assert_true(strncmp(buf, "{\"time\":\"", 9) == 0);
    assert_non_null(strstr(buf, "\",\"level\":\"warn\",\"role\":\"shoal-node\",\"msg\":\"listening "
                                "on 127.0.0.1:6969\",\"fields\":{}}\n"));
}

static void json_escapes_quotes_backslashes_and_controls(void **state)
{
    (void)state;
    const char msg[] = "a \"quoted\" \\path\\ tab\there\nnew line \x01\x1f\x7f end";
    char buf[CAP];
    size_t len = capture(buf, SLOG_ERROR, msg);
    json_t *obj = parse_line(buf, len);
    assert_string_equal(json_string_value(json_object_get(obj, "msg")), msg);
    assert_string_equal(json_string_value(json_object_get(obj, "level")), "error");
    json_decref(obj);
    assert_non_null(strstr(buf, "\\u0009here\\u000anew line \\u0001\\u001f\x7f end"));
}

static void json_keeps_utf8_and_replaces_invalid_bytes(void **state)
{
    (void)state;
    char buf[CAP];
    size_t len = capture(buf, SLOG_INFO, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x9f");
    json_t *obj = parse_line(buf, len);
    assert_string_equal(json_string_value(json_object_get(obj, "msg")),
                        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x90\x9f");
    json_decref(obj);
    /* A lone continuation byte, a cut sequence, an overlong '/', a surrogate, 0xff. */
    len = capture(buf, SLOG_INFO, "a\x80 b\xc3 c\xc0\xaf d\xed\xa0\x80 e\xff");
    obj = parse_line(buf, len);
    const char *fffd = "\xef\xbf\xbd";
    char want[128];
    snprintf(want, sizeof(want), "a%s b%s c%s%s d%s%s%s e%s", fffd, fffd, fffd, fffd, fffd, fffd,
             fffd, fffd);
    assert_string_equal(json_string_value(json_object_get(obj, "msg")), want);
    json_decref(obj);
}

static void json_long_message_is_cut_but_valid(void **state)
{
    (void)state;
    char msg[3000], buf[CAP];
    /* Quotes take two bytes each escaped, controls six: the cut must fall between escapes. */
    for (size_t i = 0; i < sizeof(msg) - 1; i++)
        msg[i] = i % 3 == 0 ? '"' : i % 3 == 1 ? '\x02' : 'x';
    msg[sizeof(msg) - 1] = '\0';
    size_t len = capture(buf, SLOG_INFO, msg);
    assert_true(len <= 2048);
    json_decref(parse_line(buf, len));
    /* Two-byte UTF-8 characters: never split. */
    for (size_t i = 0; i + 1 < sizeof(msg) - 1; i += 2) {
        msg[i] = '\xc3';
        msg[i + 1] = '\xa9';
    }
    msg[sizeof(msg) - 2] = '\0';
    len = capture(buf, SLOG_INFO, msg);
    json_t *obj = parse_line(buf, len);
    const char *got = json_string_value(json_object_get(obj, "msg"));
    assert_true(strlen(got) > 1000 && strlen(got) % 2 == 0);
    assert_null(strstr(got, "\xef\xbf\xbd")); /* the cut is not at a broken sequence */
    json_decref(obj);
}

static void json_role_unset_is_empty(void **state)
{
    (void)state;
    slog_set_role(NULL);
    char buf[CAP];
    size_t len = capture(buf, SLOG_INFO, "x");
    json_t *obj = parse_line(buf, len);
    assert_string_equal(json_string_value(json_object_get(obj, "role")), "");
    json_decref(obj);
}

static void level_filter_applies_to_json(void **state)
{
    (void)state;
    char buf[CAP];
    assert_int_equal(capture(buf, SLOG_DEBUG, "hidden"), 0);
    slog_set_level(SLOG_DEBUG);
    json_t *obj = parse_line(buf, capture(buf, SLOG_DEBUG, "shown"));
    assert_string_equal(json_string_value(json_object_get(obj, "level")), "debug");
    json_decref(obj);
    slog_set_level(SLOG_INFO);
}

static void text_format_is_unchanged(void **state)
{
    (void)state;
    slog_set_format(SLOG_TEXT);
    char buf[CAP];
    size_t len = capture(buf, SLOG_WARN, "plain \"text\"");
    /* "2026-12-06T01:02:03.456Z warn  plain \"text\"\n" */
    assert_int_equal(len, 24 + 1 + 5 + 1 + strlen("plain \"text\"") + 1);
    assert_int_equal(buf[23], 'Z');
    assert_string_equal(buf + 24, " warn  plain \"text\"\n");
}

static void format_names(void **state)
{
    (void)state;
    slog_format_t f = SLOG_TEXT;
    assert_int_equal(slog_format_parse("json", &f), 0);
    assert_int_equal(f, SLOG_JSON);
    assert_int_equal(slog_format_parse("text", &f), 0);
    assert_int_equal(f, SLOG_TEXT);
    assert_int_equal(slog_format_parse("JSON", &f), -1);
    assert_int_equal(slog_format_parse("", &f), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(json_line_has_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(json_escapes_quotes_backslashes_and_controls, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(json_keeps_utf8_and_replaces_invalid_bytes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(json_long_message_is_cut_but_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(json_role_unset_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(level_filter_applies_to_json, setup, teardown),
        cmocka_unit_test_setup_teardown(text_format_is_unchanged, setup, teardown),
        cmocka_unit_test(format_names),
    };
    return cmocka_run_group_tests_name("slog", tests, NULL, NULL);
}
