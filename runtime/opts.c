/* SPDX-License-Identifier: MIT */
/* opts: the option table walker. Unknown options and malformed values are errors, never
 * ignored: a typo in a flag must not silently run a tracker with defaults. */
#include "opts.h"
#include "redact.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

void opts_env_name(const char *name, char *out, size_t outlen)
{
    size_t j = 0;
    const char *prefix = "SHOAL_";
    for (; prefix[j] && j + 1 < outlen; j++)
        out[j] = prefix[j];
    for (const char *p = name; *p && j + 1 < outlen; p++)
        out[j++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[j] = '\0';
}

int opts_set(const opts_spec_t *s, void *cfg, const char *value, char *err, size_t errlen)
{
    char *field = (char *)cfg + s->offset;
    switch (s->type) {
    case OPTS_STRING:
        *(const char **)(void *)field = value;
        return 0;
    case OPTS_FLAG:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes")) {
            *(bool *)(void *)field = true;
            return 0;
        }
        if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no")) {
            *(bool *)(void *)field = false;
            return 0;
        }
        snprintf(err, errlen, "expected 1/0, true/false or yes/no, got '%s'", value);
        return -1;
    case OPTS_UINT: {
        unsigned long long v = 0;
        const char *p = value;
        if (*p == '\0') {
            snprintf(err, errlen, "expected a number");
            return -1;
        }
        for (; *p; p++) {
            if (*p < '0' || *p > '9' || v > 0xffffffffULL) {
                snprintf(err, errlen, "'%s' is not a number in %u..%u", value, s->min, s->max);
                return -1;
            }
            v = v * 10 + (unsigned)(*p - '0');
        }
        if (v < s->min || v > s->max) {
            snprintf(err, errlen, "%s is out of range %u..%u", value, s->min, s->max);
            return -1;
        }
        *(uint32_t *)(void *)field = (uint32_t)v;
        return 0;
    }
    }
    snprintf(err, errlen, "option type %d is unknown", (int)s->type);
    return -1;
}

/* opts_set() with the reason prefixed by where the value came from ("--workers: ..."). */
static int set_value(const opts_spec_t *o, void *cfg, const char *value, const char *source,
                     char *err, size_t errlen)
{
    char why[256];
    if (opts_set(o, cfg, value, why, sizeof(why)) == 0)
        return 0;
    snprintf(err, errlen, "%s: %s", source, why);
    return -1;
}

static const opts_spec_t *find(const opts_spec_t *spec, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(spec[i].name) == len && memcmp(spec[i].name, name, len) == 0)
            return &spec[i];
    }
    return NULL;
}

opts_result_t opts_parse(const opts_spec_t *spec, size_t n, void *cfg, int argc, char **argv,
                         char **envp, char *err, size_t errlen)
{
    char envname[96];
    for (size_t i = 0; envp && i < n; i++) {
        opts_env_name(spec[i].name, envname, sizeof(envname));
        size_t elen = strlen(envname);
        for (char **e = envp; *e; e++) {
            if (strncmp(*e, envname, elen) == 0 && (*e)[elen] == '=') {
                if (set_value(&spec[i], cfg, *e + elen + 1, envname, err, errlen) != 0)
                    return OPTS_ERROR;
            }
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
            return OPTS_HELP;
        if (!strcmp(arg, "--version") || !strcmp(arg, "-V"))
            return OPTS_VERSION;
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", arg);
            return OPTS_ERROR;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const opts_spec_t *o = find(spec, n, name, nlen);
        if (!o) {
            snprintf(err, errlen, "unknown option '--%.*s' (see --help)", (int)nlen, name);
            return OPTS_ERROR;
        }
        const char *value;
        if (o->type == OPTS_FLAG && !eq) {
            value = "1";
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errlen, "--%s needs a value (%s)", o->name, o->metavar);
            return OPTS_ERROR;
        }
        char source[80];
        snprintf(source, sizeof(source), "--%s", o->name);
        if (set_value(o, cfg, value, source, err, errlen) != 0)
            return OPTS_ERROR;
    }
    return OPTS_RUN;
}

void opts_help(FILE *out, const opts_spec_t *spec, size_t n, const void *cfg)
{
    char envname[96], left[96];
    for (size_t i = 0; i < n; i++) {
        const opts_spec_t *o = &spec[i];
        const char *field = (const char *)cfg + o->offset;
        snprintf(left, sizeof(left), "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        opts_env_name(o->name, envname, sizeof(envname));
        fprintf(out, "  %-28s %s\n", left, o->help);
        switch (o->type) {
        case OPTS_STRING: {
            const char *v = *(const char *const *)(const void *)field;
            char shown[1024];
            if (v && (o->min & OPTS_SECRET_URL))
                v = redact_url(v, shown, sizeof(shown));
            fprintf(out, "  %-28s (default: %s; env %s)\n", "", v && *v ? v : "none", envname);
            break;
        }
        case OPTS_UINT:
            fprintf(out, "  %-28s (default: %u; env %s)\n", "",
                    *(const uint32_t *)(const void *)field, envname);
            break;
        case OPTS_FLAG:
            fprintf(out, "  %-28s (default: %s; env %s)\n", "",
                    *(const bool *)(const void *)field ? "on" : "off", envname);
            break;
        }
    }
}

int opts_cli(const char *prog, const char *about, const char *usage, const opts_spec_t *spec,
             size_t n, void *cfg, size_t cfg_size, int argc, char **argv)
{
    void *defaults = malloc(cfg_size); /* --help shows the values from before parsing */
    if (!defaults) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return 1;
    }
    memcpy(defaults, cfg, cfg_size);
    char err[512];
    int rc = -1;
    switch (opts_parse(spec, n, cfg, argc, argv, environ, err, sizeof(err))) {
    case OPTS_HELP:
        printf("%s %s: %s\n\nusage: %s\n\n", prog, SHOAL_VERSION, about, usage);
        opts_help(stdout, spec, n, defaults);
        printf("  %-28s this text\n  %-28s print the version\n", "--help", "--version");
        rc = 0;
        break;
    case OPTS_VERSION:
        printf("%s %s\n", prog, SHOAL_VERSION);
        rc = 0;
        break;
    case OPTS_ERROR:
        fprintf(stderr, "%s: %s\n", prog, err);
        rc = 2;
        break;
    case OPTS_RUN:
        break;
    }
    free(defaults);
    return rc;
}
