/* SPDX-License-Identifier: MIT */
/* opts: table-driven command-line and environment options, shared by every shoal binary.
 *
 * Each option --some-name has an environment variable SHOAL_SOME_NAME. The caller fills a config
 * struct with defaults; opts_parse() then applies the environment, then the command line (which
 * wins), writing each value at its offset in the struct. Strings are borrowed from argv/environ
 * and live as long as the process. Values are checked for type and range here (opts_set(), which
 * the config file reader, config.h, shares); meaning (is this an address?) is the caller's to
 * check. */
#ifndef SHOAL_OPTS_H
#define SHOAL_OPTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    OPTS_STRING, /* const char * */
    OPTS_UINT,   /* uint32_t within [min, max] */
    OPTS_FLAG,   /* bool; no value on the command line; env "1/true/yes" or "0/false/no" */
} opts_type_t;

/* In an OPTS_STRING spec's min (unused by strings): the value is a URL that may hold a password;
 * --help and --print-config show it with the password as "***" (redact.h). */
#define OPTS_SECRET_URL 1u

typedef struct {
    const char *name;    /* without the leading "--" */
    const char *metavar; /* e.g. "ADDR:PORT"; NULL for flags */
    opts_type_t type;
    size_t offset; /* offsetof(config, field) */
    uint32_t min, max;
    const char *help;
} opts_spec_t;

/* One spec for field `field` of config type `type`: OPTS_SPEC(my_config_t, "peer-timeout", "S",
 * OPTS_UINT, peer_timeout, 1, 604800, "help"). */
#define OPTS_SPEC(type, name, meta, kind, field, lo, hi, help)                                     \
    {                                                                                              \
        name, meta, kind, offsetof(type, field), lo, hi, help                                      \
    }

/* A table of specs, e.g. a module's (feopts_spec()) or a static array (OPTS_TABLE). */
typedef struct {
    const opts_spec_t *spec;
    size_t n;
} opts_table_t;
#define OPTS_TABLE(array) ((opts_table_t){(array), sizeof(array) / sizeof((array)[0])})

typedef enum {
    OPTS_RUN = 0,     /* parsed: go on */
    OPTS_HELP = 1,    /* --help was given */
    OPTS_VERSION = 2, /* --version was given */
    OPTS_ERROR = -1,  /* err holds the reason */
} opts_result_t;

/* Check value against s (a string is taken as is; a flag takes 1/0, true/false or yes/no; a
 * number must be decimal digits within [min, max]) and store it at s->offset in cfg. A string
 * is stored as the pointer value, borrowed: it must live as long as cfg is used. Returns 0, or -1
 * with the reason in err (without the option's name: the caller says where the value came from)
 * and cfg unchanged. */
int opts_set(const opts_spec_t *s, void *cfg, const char *value, char *err, size_t errlen);

/* Apply envp (may be NULL) and then argv[1..argc) to cfg. "--name value" and "--name=value"
 * are both accepted. Stops at the first error. */
opts_result_t opts_parse(const opts_spec_t *spec, size_t n, void *cfg, int argc, char **argv,
                         char **envp, char *err, size_t errlen);

/* Print the options with their current values in cfg as defaults and their env variables. */
void opts_help(FILE *out, const opts_spec_t *spec, size_t n, const void *cfg);

/* The command line every shoal binary has: opts_parse() with the process environment; --help
 * prints "<prog> <version>: <about>", the usage line and the options with defaults (cfg as it was
 * before parsing), --version prints "<prog> <version>", and an error goes to stderr as
 * "<prog>: <reason>". Returns -1 when the program should go on, else its exit code (0 after
 * --help or --version, 2 after an error). */
int opts_cli(const char *prog, const char *about, const char *usage, const opts_spec_t *spec,
             size_t n, void *cfg, size_t cfg_size, int argc, char **argv);

/* The environment variable of an option name: "peer-timeout" -> "SHOAL_PEER_TIMEOUT". */
void opts_env_name(const char *name, char *out, size_t outlen);

#endif
