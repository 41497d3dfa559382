/* SPDX-License-Identifier: MIT */
/* daemon: options, signals and logging set-up shared by the three binaries (daemon.h). */
#include "daemon.h"

#include "config.h"
#include "mono.h"
#include "slog.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern char **environ;

/* The daemon's own options, first in d->spec and listed last by --help and --print-config. */
static const opts_spec_t own_spec[] = {
    OPTS_SPEC(daemon_opts_t, "log-level", "LEVEL", OPTS_STRING, log_level, 0, 0,
              "error, warn, info or debug (changes on SIGHUP)"),
    OPTS_SPEC(daemon_opts_t, "log-format", "FMT", OPTS_STRING, log_format, 0, 0,
              "log lines as text or json (changes on SIGHUP)"),
    OPTS_SPEC(daemon_opts_t, "config", "FILE", OPTS_STRING, config, 0, 0,
              "read options from FILE (flags and SHOAL_* variables win over it)"),
    OPTS_SPEC(daemon_opts_t, "print-config", NULL, OPTS_FLAG, print_config, 0, 0,
              "print the effective configuration as a config file and exit"),
};
#define N_OWN (sizeof(own_spec) / sizeof(own_spec[0]))

/* Where config strings, the defaults and the file's path live: kept for the process, since the
 * running config and the configs of every reload may point into it. Main thread only. */
static config_arena_t *kept;

static config_arena_t *kept_arena(void)
{
    if (!kept)
        kept = config_arena_new();
    return kept;
}

static const daemon_opts_t *own_opts(const daemon_t *d, const void *cfg)
{
    return (const daemon_opts_t *)(const void *)((const char *)cfg + d->opts_base);
}

void daemon_opts_defaults(daemon_opts_t *o)
{
    *o = (daemon_opts_t){.log_level = "info", .log_format = "text"};
}

void daemon_init(daemon_t *d, const char *prog, size_t opts_base)
{
    memset(d, 0, sizeof(*d));
    d->prog = prog;
    d->opts_base = opts_base;
    daemon_options(d, OPTS_TABLE(own_spec), opts_base);
    slog_set_role(prog);
}

void daemon_options(daemon_t *d, opts_table_t t, size_t base)
{
    if (d->n_spec + t.n > DAEMON_SPECS_MAX) {
        fprintf(stderr, "%s: more than %d options: raise DAEMON_SPECS_MAX\n", d->prog,
                DAEMON_SPECS_MAX);
        abort();
    }
    for (size_t i = 0; i < t.n; i++) {
        d->spec[d->n_spec] = t.spec[i];
        d->spec[d->n_spec].offset += base;
        d->n_spec++;
    }
}

int daemon_fail(const daemon_t *d, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", d->prog, msg);
    return code;
}

/* Check the daemon's own values in cfg: 0, or -1 with the reason in err. */
static int check_own(const daemon_t *d, const void *cfg, slog_level_t *level, slog_format_t *format,
                     char *err, size_t errlen)
{
    const daemon_opts_t *o = own_opts(d, cfg);
    if (!o->log_level || slog_level_parse(o->log_level, level) != 0) {
        snprintf(err, errlen, "--log-level must be error, warn, info or debug");
        return -1;
    }
    if (!o->log_format || slog_format_parse(o->log_format, format) != 0) {
        snprintf(err, errlen, "--log-format must be text or json");
        return -1;
    }
    return 0;
}

/* The config file that the environment and argv name (argv wins), or NULL: a pass over a scratch
 * copy of cfg. NULL too if they hold an error, --help or --version: the real pass says so. */
static const char *find_config(const daemon_t *d, const void *cfg, size_t cfg_size, int argc,
                               char **argv)
{
    void *scratch = malloc(cfg_size);
    if (!scratch)
        return NULL;
    memcpy(scratch, cfg, cfg_size);
    char err[256];
    const char *path = NULL;
    if (opts_parse(d->spec, d->n_spec, scratch, argc, argv, environ, err, sizeof(err)) == OPTS_RUN)
        path = own_opts(d, scratch)->config;
    free(scratch);
    return path && *path ? path : NULL;
}

/* Warn about SHOAL_* variables that are no option of this program: a misspelt one
 * (SHOAL_MEMROY) would otherwise be ignored without a word. Variables of the project's scripts
 * (tests/run.sh and the test suites) are SHOAL_ too: they are named in the line, not refused. */
static void warn_unknown_env(const daemon_t *d)
{
    char unknown[512] = "";
    size_t used = 0, count = 0;
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "SHOAL_", 6) != 0)
            continue;
        size_t len = strcspn(*e, "=");
        bool known = false;
        for (size_t i = 0; i < d->n_spec && !known; i++) {
            char name[128];
            opts_env_name(d->spec[i].name, name, sizeof(name));
            known = strlen(name) == len && strncmp(*e, name, len) == 0;
        }
        if (known)
            continue;
        count++;
        int k = snprintf(unknown + used, sizeof(unknown) - used, "%s%.*s", used ? ", " : "",
                         (int)len, *e);
        if (k > 0 && (size_t)k < sizeof(unknown) - used)
            used += (size_t)k;
    }
    if (count)
        slog_msg(SLOG_WARN, "environment: %s %s no option of %s (ignored; see --help)", unknown,
                 count == 1 ? "is" : "are", d->prog);
}

int daemon_parse(daemon_t *d, const char *about, const char *usage, void *cfg, size_t cfg_size,
                 int argc, char **argv)
{
    /* The options after the daemon's own are listed first in --help: rotate them. */
    opts_spec_t shown[DAEMON_SPECS_MAX];
    memcpy(shown, d->spec + N_OWN, (d->n_spec - N_OWN) * sizeof(opts_spec_t));
    memcpy(shown + d->n_spec - N_OWN, d->spec, N_OWN * sizeof(opts_spec_t));

    config_arena_t *arena = kept_arena();
    d->cfg = cfg;
    d->cfg_size = cfg_size;
    d->argc = argc;
    d->argv = argv;
    d->config_path = NULL;
    if (!arena || !(d->defaults = config_arena_keep(arena, cfg, cfg_size)))
        return daemon_fail(d, 1, "out of memory");
    char err[1024];
    const char *path = find_config(d, cfg, cfg_size, argc, argv);
    if (path) {
        if (!(d->config_path = config_arena_intern(arena, path)))
            return daemon_fail(d, 1, "out of memory");
        if (config_parse_file(path, d->spec, d->n_spec, cfg, arena, err, sizeof(err)) != 0)
            return daemon_fail(d, 2, "%s", err);
    }
    int rc = opts_cli(d->prog, about, usage, shown, d->n_spec, cfg, cfg_size, argc, argv);
    if (rc >= 0)
        return rc;
    slog_level_t level;
    slog_format_t format;
    if (check_own(d, cfg, &level, &format, err, sizeof(err)) != 0)
        return daemon_fail(d, 2, "%s", err);
    if (own_opts(d, cfg)->print_config) {
        config_print(stdout, shown, d->n_spec, cfg, d->prog);
        return fflush(stdout) == 0 && !ferror(stdout)
                   ? 0
                   : daemon_fail(d, 1, "--print-config: cannot write: %s", strerror(errno));
    }
    slog_set_level(level);
    slog_set_format(format);
    warn_unknown_env(d);
    return -1;
}

int daemon_reparse(daemon_t *d, void *fresh_cfg, char *err, size_t errlen)
{
    if (!d->defaults) {
        snprintf(err, errlen, "no configuration to read again (daemon_parse() has not run)");
        return -1;
    }
    memcpy(fresh_cfg, d->defaults, d->cfg_size);
    if (d->config_path && config_parse_file(d->config_path, d->spec, d->n_spec, fresh_cfg,
                                            kept_arena(), err, errlen) != 0)
        return -1;
    switch (opts_parse(d->spec, d->n_spec, fresh_cfg, d->argc, d->argv, environ, err, errlen)) {
    case OPTS_RUN:
        break;
    case OPTS_ERROR:
        return -1;
    case OPTS_HELP:
    case OPTS_VERSION:
        snprintf(err, errlen, "--help or --version in the arguments");
        return -1;
    }
    slog_level_t level;
    slog_format_t format;
    return check_own(d, fresh_cfg, &level, &format, err, errlen);
}

/* The size of an option's field. */
static size_t field_size(const opts_spec_t *s)
{
    switch (s->type) {
    case OPTS_STRING:
        return sizeof(const char *);
    case OPTS_UINT:
        return sizeof(uint32_t);
    case OPTS_FLAG:
        return sizeof(bool);
    }
    return 0;
}

static bool same_value(const opts_spec_t *s, const void *a_cfg, const void *b_cfg)
{
    const char *a = (const char *)a_cfg + s->offset, *b = (const char *)b_cfg + s->offset;
    switch (s->type) {
    case OPTS_STRING: {
        const char *x = *(const char *const *)(const void *)a;
        const char *y = *(const char *const *)(const void *)b;
        return x == y || (x && y && strcmp(x, y) == 0);
    }
    case OPTS_UINT:
        return *(const uint32_t *)(const void *)a == *(const uint32_t *)(const void *)b;
    case OPTS_FLAG:
        return *(const bool *)(const void *)a == *(const bool *)(const void *)b;
    }
    return true;
}

void daemon_config_diff(const daemon_t *d, const void *old_cfg, const void *new_cfg,
                        void (*on_changed)(void *arg, const opts_spec_t *s), void *arg)
{
    for (size_t i = 0; i < d->n_spec; i++) {
        if (!same_value(&d->spec[i], old_cfg, new_cfg))
            on_changed(arg, &d->spec[i]);
    }
}

void daemon_config_adopt(daemon_t *d, const void *fresh_cfg, const opts_spec_t *s)
{
    memcpy((char *)d->cfg + s->offset, (const char *)fresh_cfg + s->offset, field_size(s));
}

bool daemon_apply_own(daemon_t *d, const void *fresh_cfg, const opts_spec_t *s)
{
    /* Only these two options are read, and only as the strings they are (s may be any option:
     * a number's field is not a pointer). */
    const daemon_opts_t *o = own_opts(d, fresh_cfg);
    if (s->offset == d->opts_base + offsetof(daemon_opts_t, log_level)) {
        slog_level_t level;
        if (slog_level_parse(o->log_level, &level) != 0)
            return false; /* daemon_reparse() checked it */
        /* The line is info: written at whichever of the two levels shows it. */
        if (level < SLOG_INFO)
            slog_msg(SLOG_INFO, "reload: --%s is now %s", s->name, o->log_level);
        slog_set_level(level);
        if (level >= SLOG_INFO)
            slog_msg(SLOG_INFO, "reload: --%s is now %s", s->name, o->log_level);
    } else if (s->offset == d->opts_base + offsetof(daemon_opts_t, log_format)) {
        slog_format_t format;
        if (slog_format_parse(o->log_format, &format) != 0)
            return false;
        slog_set_format(format);
        slog_msg(SLOG_INFO, "reload: --%s is now %s", s->name, o->log_format);
    } else {
        return false;
    }
    daemon_config_adopt(d, fresh_cfg, s);
    return true;
}

void daemon_needs_restart(const daemon_t *d, const opts_spec_t *s)
{
    (void)d;
    slog_msg(SLOG_WARN, "reload: --%s changed; it needs a restart to take effect", s->name);
}

typedef struct {
    daemon_t *d;
    const void *fresh;
    daemon_apply_fn apply;
    void *arg;
    int changed;
} reload_t;

static void reload_one(void *arg, const opts_spec_t *s)
{
    reload_t *r = arg;
    r->changed++;
    if (daemon_apply_own(r->d, r->fresh, s))
        return;
    if (r->apply && r->apply(r->arg, s, r->fresh))
        return;
    daemon_needs_restart(r->d, s);
}

int daemon_reload(daemon_t *d, daemon_apply_fn apply, void *arg)
{
    char err[1024];
    void *fresh = d->cfg_size ? malloc(d->cfg_size) : NULL;
    if (!fresh) {
        slog_msg(SLOG_WARN, "reload: %s; the running configuration is kept",
                 d->cfg_size ? "out of memory" : "daemon_parse() has not run");
        return -1;
    }
    if (daemon_reparse(d, fresh, err, sizeof(err)) != 0) {
        slog_msg(SLOG_WARN, "reload: %s; the running configuration is kept", err);
        free(fresh);
        return -1;
    }
    reload_t r = {.d = d, .fresh = fresh, .apply = apply, .arg = arg};
    daemon_config_diff(d, d->cfg, fresh, reload_one, &r);
    if (r.changed == 0)
        slog_msg(SLOG_INFO, "reload: nothing changed");
    free(fresh);
    return r.changed;
}

void daemon_block_signals(daemon_t *d)
{
    sigemptyset(&d->sigs);
    sigaddset(&d->sigs, SIGINT);
    sigaddset(&d->sigs, SIGTERM);
    sigaddset(&d->sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &d->sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void daemon_on_reload(daemon_t *d, daemon_reload_fn fn, void *arg)
{
    d->reload = fn;
    d->reload_arg = arg;
}

daemon_event_t daemon_wait(daemon_t *d, uint32_t timeout_ms)
{
    int64_t until = mono_ms() + timeout_ms;
    for (;;) {
        int sig;
        if (timeout_ms == 0) {
            if (sigwait(&d->sigs, &sig) != 0)
                continue;
        } else {
            int64_t left = until - mono_ms();
            if (left <= 0)
                return DAEMON_TICK;
            struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000};
            sig = sigtimedwait(&d->sigs, NULL, &ts);
            if (sig < 0) {
                if (errno == EAGAIN)
                    return DAEMON_TICK;
                continue; /* EINTR */
            }
        }
        if (sig == SIGHUP) {
            slog_msg(SLOG_INFO, "signal %d (SIGHUP): reloading the configuration", sig);
            if (d->reload)
                d->reload(d->reload_arg);
            else
                daemon_reload(d, NULL, NULL);
            continue;
        }
        d->last_signal = sig;
        slog_msg(SLOG_INFO, "signal %d (%s): shutting down", sig,
                 sig == SIGTERM  ? "SIGTERM"
                 : sig == SIGINT ? "SIGINT"
                                 : "?");
        return DAEMON_STOP;
    }
}
