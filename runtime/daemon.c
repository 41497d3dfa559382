/* SPDX-License-Identifier: MIT */
/* daemon: options, signals and logging set-up shared by the three binaries (daemon.h). */
#include "daemon.h"

#include "mono.h"
#include "slog.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void daemon_opts_defaults(daemon_opts_t *o)
{
    *o = (daemon_opts_t){.log_level = "info"};
}

void daemon_init(daemon_t *d, const char *prog, size_t opts_base)
{
    memset(d, 0, sizeof(*d));
    d->prog = prog;
    d->opts_base = opts_base;
    static const opts_spec_t own[] = {
        OPTS_SPEC(daemon_opts_t, "log-level", "LEVEL", OPTS_STRING, log_level, 0, 0,
                  "error, warn, info or debug"),
    };
    daemon_options(d, OPTS_TABLE(own), opts_base);
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

int daemon_parse(daemon_t *d, const char *about, const char *usage, void *cfg, size_t cfg_size,
                 int argc, char **argv)
{
    /* The options after the daemon's own are listed first in --help: rotate them. */
    opts_spec_t shown[DAEMON_SPECS_MAX];
    size_t own = 1;
    memcpy(shown, d->spec + own, (d->n_spec - own) * sizeof(opts_spec_t));
    memcpy(shown + d->n_spec - own, d->spec, own * sizeof(opts_spec_t));
    int rc = opts_cli(d->prog, about, usage, shown, d->n_spec, cfg, cfg_size, argc, argv);
    if (rc >= 0)
        return rc;
    const daemon_opts_t *o =
        (const daemon_opts_t *)(const void *)((const char *)cfg + d->opts_base);
    slog_level_t level;
    if (slog_level_parse(o->log_level, &level) != 0)
        return daemon_fail(d, 2, "--log-level must be error, warn, info or debug");
    slog_set_level(level);
    return -1;
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
            if (d->reload)
                d->reload(d->reload_arg);
            else
                slog_msg(SLOG_INFO, "signal %d (SIGHUP): nothing to reload", sig);
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
