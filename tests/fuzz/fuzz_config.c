/* SPDX-License-Identifier: MIT */
/* fuzz_config: arbitrary bytes as a config file (runtime/config.c) against a table with every
 * option type (the text ends at its first NUL, as config_parse_string() takes it). Checked
 * beyond "no crash, no leak, no undefined behaviour": a failed parse says why as
 * "fuzz.conf:LINE: ..."; a parsed config printed with config_print() reads back into the same
 * values. */
#include "config.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

typedef struct {
    const char *udp;
    const char *name;
    uint32_t workers;
    uint32_t timeout;
    bool verbose;
    bool quiet;
} cfg_t;

static const opts_spec_t spec[] = {
    OPTS_SPEC(cfg_t, "udp", "ADDR:PORT", OPTS_STRING, udp, 0, 0, "udp address"),
    OPTS_SPEC(cfg_t, "name", "NAME", OPTS_STRING, name, 0, 0, "name"),
    OPTS_SPEC(cfg_t, "workers", "N", OPTS_UINT, workers, 1, 64, "workers"),
    OPTS_SPEC(cfg_t, "peer-timeout", "S", OPTS_UINT, timeout, 0, 4294967295u, "timeout"),
    OPTS_SPEC(cfg_t, "verbose", NULL, OPTS_FLAG, verbose, 0, 0, "verbose"),
    OPTS_SPEC(cfg_t, "quiet", NULL, OPTS_FLAG, quiet, 0, 0, "quiet"),
};
#define N_SPEC (sizeof(spec) / sizeof(spec[0]))

static const cfg_t defaults = {.udp = "[::]:6969", .workers = 2, .timeout = 2700};

static bool same_string(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Short enough that its printed form (at most 4 bytes per byte) fits in a line. */
static bool printable(const char *s)
{
    return !s || strlen(s) < (CONFIG_LINE_MAX - 64) / 4;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    config_arena_t *arena = config_arena_new();
    CHECK(arena);
    cfg_t cfg = defaults;
    char err[512] = "";
    int rc = config_parse_string("fuzz.conf", text, spec, N_SPEC, &cfg, arena, err, sizeof(err));
    free(text);
    if (rc != 0) {
        CHECK(rc == -1);
        CHECK(strncmp(err, "fuzz.conf:", 10) == 0);
    } else if (printable(cfg.udp) && printable(cfg.name)) {
        char *printed = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&printed, &len);
        CHECK(out);
        config_print(out, spec, N_SPEC, &cfg, "fuzz");
        CHECK(fclose(out) == 0);
        cfg_t back = defaults;
        CHECK(config_parse_string("printed", printed, spec, N_SPEC, &back, arena, err,
                                  sizeof(err)) == 0);
        CHECK(same_string(cfg.udp, back.udp) && same_string(cfg.name, back.name));
        CHECK(cfg.workers == back.workers && cfg.timeout == back.timeout);
        CHECK(cfg.verbose == back.verbose && cfg.quiet == back.quiet);
        free(printed);
    }
    config_arena_destroy(&arena);
    return 0;
}
