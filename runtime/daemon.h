/* SPDX-License-Identifier: MIT */
/* daemon: the skeleton every shoal binary shares, so each main is a short composition of the
 * layers below it:
 *
 *     my_config_t cfg = {...};                    // embeds a daemon_opts_t, feopts_t, ...
 *     daemon_t d;
 *     daemon_init(&d, "shoal-x", offsetof(my_config_t, daemon));
 *     daemon_options(&d, feopts_spec(), offsetof(my_config_t, fe));   // and the others
 *     int rc = daemon_parse(&d, about, usage, &cfg, sizeof(cfg), argc, argv);
 *     if (rc >= 0) return rc;                     // --help, --version, or a bad option
 *     daemon_block_signals(&d);                   // before any thread starts
 *     ... start the parts ...
 *     while (daemon_wait(&d, tick_ms) != DAEMON_STOP) ... periodic work ...
 *     ... stop the parts ...
 *
 * Options: every option is a flag --name and an environment variable SHOAL_NAME (flags win);
 * --log-level is the daemon's own. Signals: SIGTERM and SIGINT stop (a planned stop); SIGHUP
 * never stops a process: it calls the reload hook, or logs that there is nothing to reload;
 * SIGPIPE is ignored. They are blocked in every thread and taken by daemon_wait() only. */
#ifndef SHOAL_DAEMON_H
#define SHOAL_DAEMON_H

#include "opts.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DAEMON_SPECS_MAX 64

/* The options every binary has, embedded in its config struct. */
typedef struct {
    const char *log_level;
} daemon_opts_t;

typedef void (*daemon_reload_fn)(void *arg);

typedef struct {
    const char *prog;
    size_t opts_base; /* offset of the daemon_opts_t in the config struct */
    opts_spec_t spec[DAEMON_SPECS_MAX];
    size_t n_spec;
    sigset_t sigs;
    int last_signal; /* of the last daemon_wait() that returned DAEMON_STOP */
    daemon_reload_fn reload;
    void *reload_arg;
} daemon_t;

typedef enum {
    DAEMON_TICK = 0, /* the timeout passed */
    DAEMON_STOP = 1, /* SIGTERM or SIGINT: d->last_signal says which */
} daemon_event_t;

/* Start an option table for program prog whose config struct has a daemon_opts_t at byte
 * offset opts_base (defaults: log level info). */
void daemon_init(daemon_t *d, const char *prog, size_t opts_base);

/* The defaults of a daemon_opts_t. */
void daemon_opts_defaults(daemon_opts_t *o);

/* Append the specs of t, whose offsets are relative to a struct at byte offset base in the
 * config. Aborts (a programmer error) if DAEMON_SPECS_MAX is exceeded. */
void daemon_options(daemon_t *d, opts_table_t t, size_t base);

/* Parse the environment and argv into cfg (cfg_size bytes; --help shows cfg as it is now as the
 * defaults) and set the log level. Returns -1 when the program should go on, else its exit code:
 * 0 after --help or --version, 2 after an error (already printed as "prog: reason"). */
int daemon_parse(daemon_t *d, const char *about, const char *usage, void *cfg, size_t cfg_size,
                 int argc, char **argv);

/* Print "prog: <message>" on stderr and return code (for `return daemon_fail(...)`). */
int daemon_fail(const daemon_t *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Block SIGTERM, SIGINT and SIGHUP in the calling thread (every thread started afterwards
 * inherits the mask) and ignore SIGPIPE. Call before starting any thread. */
void daemon_block_signals(daemon_t *d);

/* What SIGHUP does: call fn(arg) on the thread that calls daemon_wait(). NULL: log that there is
 * nothing to reload. */
void daemon_on_reload(daemon_t *d, daemon_reload_fn fn, void *arg);

/* Wait for a stop signal for up to timeout_ms (0: without end). SIGHUP is handled here (the
 * reload hook) and the wait goes on. Returns DAEMON_STOP (and logs "signal N (NAME): shutting
 * down") or DAEMON_TICK. */
daemon_event_t daemon_wait(daemon_t *d, uint32_t timeout_ms);

#endif
