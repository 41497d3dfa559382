/* SPDX-License-Identifier: MIT */
/* Unit tests for runtime/metrics: names and labels checked, escaping, number formatting, family
 * order, bounds, and the JSON shape parsed back with jansson.
 *
 * `test_metrics --dump FILE` writes a rendered sample collector to FILE and exits (ctest's
 * unit.metrics_promtool runs `promtool check metrics` on it). */
#include "metrics.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

static int setup(void **state)
{
    *state = metrics_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    metrics_t *m = *state;
    metrics_destroy(&m);
    assert_null(m);
    return 0;
}

/* Render and compare with the expected text exactly. */
static void assert_prom(const metrics_t *m, const char *want)
{
    size_t len = 12345;
    char *text = metrics_prometheus(m, &len);
    assert_non_null(text);
    assert_string_equal(text, want);
    assert_int_equal(len, strlen(want));
    free(text);
}

static void empty_collector_renders_empty(void **state)
{
    assert_prom(*state, "");
    size_t len;
    char *json = metrics_json(*state, &len);
    assert_non_null(json);
    assert_string_equal(json, "{}");
    assert_int_equal(len, 2);
    free(json);
}

static void destroy_is_null_safe(void **state)
{
    (void)state;
    metrics_destroy(NULL);
    metrics_t *m = NULL;
    metrics_destroy(&m);
    metrics_reset(NULL);
}

static void families_in_declaration_order_with_help_and_type(void **state)
{
    metrics_t *m = *state;
    assert_int_equal(metrics_family(m, "shoal_zeta_total", METRICS_COUNTER, "Last letter."), 0);
    assert_int_equal(metrics_family(m, "shoal_alpha", METRICS_GAUGE, "First letter."), 0);
    assert_int_equal(metrics_family(m, "shoal_empty", METRICS_GAUGE, NULL), 0);
    assert_int_equal(metrics_addu(m, "shoal_alpha", 7, NULL), 0);
    assert_int_equal(metrics_addu(m, "shoal_zeta_total", 1, NULL), 0);
    assert_int_equal(metrics_addu(m, "shoal_zeta_total", 2, "k", "v", NULL), 0);
    assert_prom(m, "# HELP shoal_zeta_total Last letter.\n"
                   "# TYPE shoal_zeta_total counter\n"
                   "shoal_zeta_total 1\n"
                   "shoal_zeta_total{k=\"v\"} 2\n"
                   "# HELP shoal_alpha First letter.\n"
                   "# TYPE shoal_alpha gauge\n"
                   "shoal_alpha 7\n"
                   "# HELP shoal_empty \n"
                   "# TYPE shoal_empty gauge\n");
}

static void redeclaring_same_type_is_noop_other_type_fails(void **state)
{
    metrics_t *m = *state;
    assert_int_equal(metrics_family(m, "x_total", METRICS_COUNTER, "first"), 0);
    assert_int_equal(metrics_family(m, "x_total", METRICS_COUNTER, "second"), 0);
    assert_int_equal(metrics_family(m, "x_total", METRICS_GAUGE, "first"), -1);
    assert_prom(m, "# HELP x_total first\n# TYPE x_total counter\n");
}

static void bad_family_names_refused(void **state)
{
    metrics_t *m = *state;
    const char *bad[] = {"", "1abc", "a-b", "a b", "é", "a.b", "a{b}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(metrics_family(m, bad[i], METRICS_GAUGE, "h"), -1);
    assert_int_equal(metrics_family(m, NULL, METRICS_GAUGE, "h"), -1);
    assert_int_equal(metrics_family(m, "ok", (metrics_type_t)7, "h"), -1);
    assert_int_equal(metrics_family(m, "bad_help", METRICS_GAUGE, "\xff"), -1);
    char longname[METRICS_MAX_NAME + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(metrics_family(m, longname, METRICS_GAUGE, "h"), -1);
    assert_int_equal(metrics_family(m, "_ok:colon_9", METRICS_GAUGE, "h"), 0);
    assert_int_equal(metrics_family(m, ":a", METRICS_GAUGE, "h"), 0);
    assert_int_equal(metrics_family(NULL, "a", METRICS_GAUGE, "h"), -1);
}

static void sample_errors(void **state)
{
    metrics_t *m = *state;
    assert_int_equal(metrics_add(m, "undeclared", 1, NULL), -1);
    assert_int_equal(metrics_family(m, "g", METRICS_GAUGE, "h"), 0);
    assert_int_equal(metrics_add(m, "g", 1, "1bad", "v", NULL), -1);
    assert_int_equal(metrics_add(m, "g", 1, "a:b", "v", NULL), -1); /* no colon in labels */
    assert_int_equal(metrics_add(m, "g", 1, "__reserved", "v", NULL), -1);
    assert_int_equal(metrics_add(m, "g", 1, "k", "v", "k", "w", NULL), -1);  /* repeated */
    assert_int_equal(metrics_add(m, "g", 1, "k", "\xc3\x28", NULL), -1);     /* not UTF-8 */
    assert_int_equal(metrics_add(m, "g", 1, "k", "\xed\xa0\x80", NULL), -1); /* surrogate */
    assert_int_equal(metrics_add(m, "g", 1, "k", "\xc0\xaf", NULL), -1);     /* overlong */
    assert_int_equal(metrics_addu(NULL, "g", 1, NULL), -1);
    /* 17 pairs: one too many. */
    assert_int_equal(metrics_add(m, "g", 1, "a", "1", "b", "1", "c", "1", "d", "1", "e", "1", "f",
                                 "1", "g", "1", "h", "1", "i", "1", "j", "1", "k", "1", "l", "1",
                                 "m", "1", "n", "1", "o", "1", "p", "1", "q", "1", NULL),
                     -1);
    /* Nothing of the refused samples was kept. */
    assert_prom(m, "# HELP g h\n# TYPE g gauge\n");
    assert_int_equal(metrics_add(m, "g", 1, "k", "caf\xc3\xa9 \xf0\x9f\x90\x9f", NULL), 0);
    assert_prom(m, "# HELP g h\n# TYPE g gauge\ng{k=\"caf\xc3\xa9 \xf0\x9f\x90\x9f\"} 1\n");
}

static void escaping_of_label_values_and_help(void **state)
{
    metrics_t *m = *state;
    assert_int_equal(metrics_family(m, "e", METRICS_GAUGE, "back\\slash \"quoted\"\nsecond line"),
                     0);
    assert_int_equal(metrics_add(m, "e", 1, "path", "C:\\dir\\", "q", "say \"hi\"\nbye", NULL), 0);
    assert_prom(m, "# HELP e back\\\\slash \"quoted\"\\nsecond line\n"
                   "# TYPE e gauge\n"
                   "e{path=\"C:\\\\dir\\\\\",q=\"say \\\"hi\\\"\\nbye\"} 1\n");
}

static void number_formatting(void **state)
{
    metrics_t *m = *state;
    assert_int_equal(metrics_family(m, "n", METRICS_GAUGE, "h"), 0);
    const double values[] = {0.0,
                             -0.0,
                             42.0,
                             -17.0,
                             0.5,
                             0.1,
                             1e-300,
                             9007199254740991.0,  /* 2^53 - 1: exact integer */
                             9007199254740992.0,  /* 2^53: %.17g */
                             -9007199254740992.0, /* -2^53: %.17g */
                             1e20,
                             NAN,
                             INFINITY,
                             -INFINITY};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        assert_int_equal(metrics_add(m, "n", values[i], NULL), 0);
    assert_int_equal(metrics_addu(m, "n", UINT64_MAX, NULL), 0);
    assert_int_equal(metrics_addu(m, "n", 0, NULL), 0);
    assert_prom(m, "# HELP n h\n# TYPE n gauge\n"
                   "n 0\nn 0\nn 42\nn -17\nn 0.5\nn 0.10000000000000001\nn 1e-300\n"
                   "n 9007199254740991\nn 9007199254740992\nn -9007199254740992\nn 1e+20\n"
                   "n NaN\nn +Inf\nn -Inf\nn 18446744073709551615\nn 0\n");
}

static void reset_keeps_families_drops_samples(void **state)
{
    metrics_t *m = *state;
    assert_int_equal(metrics_family(m, "r", METRICS_GAUGE, "h"), 0);
    assert_int_equal(metrics_add(m, "r", 1, "a", "b", NULL), 0);
    metrics_reset(m);
    assert_prom(m, "# HELP r h\n# TYPE r gauge\n");
    assert_int_equal(metrics_add(m, "r", 2, NULL), 0);
    assert_prom(m, "# HELP r h\n# TYPE r gauge\nr 2\n");
}

static void family_bound(void **state)
{
    metrics_t *m = *state;
    char name[32];
    for (int i = 0; i < METRICS_MAX_FAMILIES; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        assert_int_equal(metrics_family(m, name, METRICS_GAUGE, ""), 0);
    }
    assert_int_equal(metrics_family(m, "one_more", METRICS_GAUGE, ""), -1);
    /* Redeclaring an existing one is still fine; every family is still found by name. */
    assert_int_equal(metrics_family(m, "f0", METRICS_GAUGE, ""), 0);
    for (int i = 0; i < METRICS_MAX_FAMILIES; i += 97) {
        snprintf(name, sizeof(name), "f%d", i);
        assert_int_equal(metrics_add(m, name, i, NULL), 0);
    }
}

static void sample_bound(void **state)
{
    metrics_t *m = *state;
    assert_int_equal(metrics_family(m, "a", METRICS_GAUGE, ""), 0);
    assert_int_equal(metrics_family(m, "b", METRICS_GAUGE, ""), 0);
    for (int i = 0; i < METRICS_MAX_SAMPLES; i++)
        assert_int_equal(metrics_addu(m, i % 2 ? "a" : "b", (uint64_t)i, NULL), 0);
    assert_int_equal(metrics_addu(m, "a", 1, NULL), -1);
    metrics_reset(m);
    assert_int_equal(metrics_addu(m, "a", 1, NULL), 0);
}

static void byte_bound(void **state)
{
    metrics_t *m = *state;
    assert_int_equal(metrics_family(m, "big", METRICS_GAUGE, ""), 0);
    char value[METRICS_MAX_TEXT + 1];
    memset(value, 'v', METRICS_MAX_TEXT);
    value[METRICS_MAX_TEXT] = '\0';
    /* Each sample stores about 16 KiB; the 16 MiB bound stops it long before the sample bound. */
    int added = 0;
    for (int i = 0; i < METRICS_MAX_SAMPLES; i++) {
        if (metrics_add(m, "big", 1, "a", value, "b", value, "c", value, "d", value, NULL) != 0)
            break;
        added++;
    }
    assert_true(added > 900 && added < 1100);
    value[METRICS_MAX_TEXT - 1] = '\0';
    metrics_reset(m);
    assert_int_equal(metrics_add(m, "big", 1, "a", value, NULL), 0);
    char toolong[METRICS_MAX_TEXT + 2];
    memset(toolong, 'x', sizeof(toolong) - 1);
    toolong[sizeof(toolong) - 1] = '\0';
    assert_int_equal(metrics_add(m, "big", 1, "a", toolong, NULL), -1);
}

static void json_shape_parses_back(void **state)
{
    metrics_t *m = *state;
    assert_int_equal(metrics_family(m, "shoal_requests_total", METRICS_COUNTER, "Requests \"x\""),
                     0);
    assert_int_equal(metrics_family(m, "shoal_ratio", METRICS_GAUGE, "A ratio."), 0);
    assert_int_equal(metrics_family(m, "shoal_none", METRICS_GAUGE, NULL), 0);
    assert_int_equal(
        metrics_add(m, "shoal_requests_total", 5, "protocol", "udp", "action", "announce", NULL),
        0);
    assert_int_equal(metrics_addu(m, "shoal_requests_total", UINT64_MAX, NULL), 0);
    assert_int_equal(metrics_add(m, "shoal_ratio", 0.25, "q", "a\"b\\c\n", NULL), 0);
    assert_int_equal(metrics_add(m, "shoal_ratio", NAN, NULL), 0);
    assert_int_equal(metrics_add(m, "shoal_ratio", -INFINITY, NULL), 0);
    size_t len;
    char *text = metrics_json(m, &len);
    assert_non_null(text);
    assert_int_equal(len, strlen(text));
    assert_null(strchr(text, '\n')); /* compact */
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    assert_non_null(root);
    assert_true(json_is_object(root));
    assert_int_equal(json_object_size(root), 3);
    /* Declaration order survives. */
    const char *order[] = {"shoal_requests_total", "shoal_ratio", "shoal_none"};
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        assert_true(i < 3);
        assert_string_equal(key, order[i++]);
    }

    json_t *req = json_object_get(root, "shoal_requests_total");
    assert_string_equal(json_string_value(json_object_get(req, "type")), "counter");
    assert_string_equal(json_string_value(json_object_get(req, "help")), "Requests \"x\"");
    json_t *samples = json_object_get(req, "samples");
    assert_int_equal(json_array_size(samples), 2);
    json_t *s0 = json_array_get(samples, 0);
    assert_int_equal(json_integer_value(json_object_get(s0, "value")), 5);
    assert_true(json_is_integer(json_object_get(s0, "value")));
    json_t *labels = json_object_get(s0, "labels");
    assert_int_equal(json_object_size(labels), 2);
    assert_string_equal(json_string_value(json_object_get(labels, "protocol")), "udp");
    assert_string_equal(json_string_value(json_object_get(labels, "action")), "announce");
    json_t *s1 = json_array_get(samples, 1);
    assert_int_equal(json_object_size(json_object_get(s1, "labels")), 0);
    assert_true(json_is_real(json_object_get(s1, "value"))); /* above INT64_MAX */
    assert_true(json_real_value(json_object_get(s1, "value")) > 1.8e19);

    json_t *ratio = json_object_get(root, "shoal_ratio");
    assert_string_equal(json_string_value(json_object_get(ratio, "type")), "gauge");
    samples = json_object_get(ratio, "samples");
    assert_int_equal(json_array_size(samples), 3);
    s0 = json_array_get(samples, 0);
    assert_true(json_is_real(json_object_get(s0, "value")));
    assert_true(json_real_value(json_object_get(s0, "value")) == 0.25);
    assert_string_equal(json_string_value(json_object_get(json_object_get(s0, "labels"), "q")),
                        "a\"b\\c\n");
    assert_string_equal(json_string_value(json_object_get(json_array_get(samples, 1), "value")),
                        "NaN");
    assert_string_equal(json_string_value(json_object_get(json_array_get(samples, 2), "value")),
                        "-Inf");

    json_t *none = json_object_get(root, "shoal_none");
    assert_string_equal(json_string_value(json_object_get(none, "help")), "");
    assert_int_equal(json_array_size(json_object_get(none, "samples")), 0);
    json_decref(root);
    free(text);
}

/* A collector like a role's: the --dump text promtool checks. */
static int fill_sample(metrics_t *m)
{
    int rc = 0;
    rc |= metrics_family(m, "shoal_requests_total", METRICS_COUNTER, "Requests answered.");
    rc |= metrics_family(m, "shoal_swarms", METRICS_GAUGE, "Swarms held \\ \"now\"\nper node.");
    rc |= metrics_family(m, "shoal_ratio", METRICS_GAUGE, "A ratio.");
    rc |= metrics_family(m, "shoal_unset", METRICS_GAUGE, "Nothing yet.");
    rc |= metrics_add(m, "shoal_requests_total", 5, "protocol", "udp", "action", "announce", NULL);
    rc |= metrics_addu(m, "shoal_requests_total", UINT64_MAX, "protocol", "http", "action",
                       "scrape", NULL);
    rc |= metrics_add(m, "shoal_swarms", 12, "node", "a\\b \"c\"\nd", NULL);
    rc |= metrics_add(m, "shoal_swarms", 1e300, "node", "caf\xc3\xa9", NULL);
    rc |= metrics_add(m, "shoal_ratio", 0.1, NULL);
    rc |= metrics_add(m, "shoal_ratio", NAN, "kind", "nan", NULL);
    rc |= metrics_add(m, "shoal_ratio", INFINITY, "kind", "inf", NULL);
    rc |= metrics_add(m, "shoal_ratio", -INFINITY, "kind", "minf", NULL);
    return rc;
}

static int dump(const char *path)
{
    metrics_t *m = metrics_new();
    if (!m || fill_sample(m) != 0)
        return 1;
    size_t len;
    char *text = metrics_prometheus(m, &len);
    metrics_destroy(&m);
    FILE *f = fopen(path, "w");
    if (!text || !f || fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        free(text);
        return 1;
    }
    free(text);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--dump") == 0)
        return dump(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(empty_collector_renders_empty, setup, teardown),
        cmocka_unit_test(destroy_is_null_safe),
        cmocka_unit_test_setup_teardown(families_in_declaration_order_with_help_and_type, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(redeclaring_same_type_is_noop_other_type_fails, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(bad_family_names_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(sample_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(escaping_of_label_values_and_help, setup, teardown),
        cmocka_unit_test_setup_teardown(number_formatting, setup, teardown),
        cmocka_unit_test_setup_teardown(reset_keeps_families_drops_samples, setup, teardown),
        cmocka_unit_test_setup_teardown(family_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(sample_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(byte_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(json_shape_parses_back, setup, teardown),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
