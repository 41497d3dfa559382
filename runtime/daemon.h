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
 * Options: every option is a flag --name, an environment variable SHOAL_NAME and a key "name"
 * of the config file (config.h). Precedence: flags > environment > file > the defaults the
 * caller put in cfg. The daemon's own options, which every binary has:
 *   --log-level LEVEL   error, warn, info or debug (changes on reload)
 *   --log-format FMT    text or json (slog.h; changes on reload)
 *   --config FILE       read options from FILE first (SHOAL_CONFIG=FILE does the same; empty:
 *                       none). An error in it is printed "prog: FILE:LINE: reason" and the
 *                       process does not start (exit 2).
 *   --print-config      print the effective configuration (every layer applied) on stdout as a
 *                       commented file that --config reads back, and exit 0.
 *
 * Signals: SIGTERM and SIGINT stop (a planned stop); SIGHUP never stops a process: it logs
 * "signal 1 (SIGHUP): reloading the configuration" and calls the reload hook, or, with none,
 * daemon_reload(d, NULL, NULL): the file, environment and flags are read again and compared with
 * the running configuration; --log-level and --log-format change live, every other change is
 * logged as needing a restart, and no change is logged as "reload: nothing changed". SIGPIPE is
 * ignored. They are blocked in every thread and taken by daemon_wait() only.
 *
 * A role's reload hook is typically:
 *
 *     static bool apply(void *arg, const opts_spec_t *s, const void *fresh) {
 *         role_t *r = arg;                        // holds the daemon_t and the running parts
 *         if (strcmp(s->name, "peer-timeout") != 0) return false;   // not live: restart
 *         ... hand the new value to the running part ...
 *         daemon_config_adopt(r->d, fresh, s);    // the running config now has it
 *         return true;
 *     }
 *     static void on_reload(void *arg) { daemon_reload(((role_t *)arg)->d, apply, arg); }
 *     ...
 *     daemon_on_reload(&d, on_reload, &role);
 *
 * Memory: strings read from the config file, the copy of the defaults and the file's path are
 * kept for the life of the process (one arena in daemon.c, interned, so reloading an unchanged
 * file adds nothing). */
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
    const char *log_format;
    const char *config; /* the config file; NULL or "" for none */
    bool print_config;
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
    /* Set by daemon_parse(), for daemon_reparse() and daemon_reload(): */
    void *cfg;               /* the running config (the caller's, borrowed) */
    size_t cfg_size;         /* its size */
    const void *defaults;    /* a copy of cfg as daemon_parse() found it */
    const char *config_path; /* the config file read, or NULL */
    int argc;
    char **argv; /* borrowed: main's */
} daemon_t;

typedef enum {
    DAEMON_TICK = 0, /* the timeout passed */
    DAEMON_STOP = 1, /* SIGTERM or SIGINT: d->last_signal says which */
} daemon_event_t;

/* Start an option table for program prog whose config struct has a daemon_opts_t at byte
 * offset opts_base (defaults: daemon_opts_defaults()), and name the json log lines' role prog
 * (prog must live as long as the process). */
void daemon_init(daemon_t *d, const char *prog, size_t opts_base);

/* The defaults of a daemon_opts_t: log level info, log format text, no config file. */
void daemon_opts_defaults(daemon_opts_t *o);

/* Append the specs of t, whose offsets are relative to a struct at byte offset base in the
 * config. Aborts (a programmer error) if DAEMON_SPECS_MAX is exceeded. */
void daemon_options(daemon_t *d, opts_table_t t, size_t base);

/* Parse the config file (if --config or SHOAL_CONFIG names one), then the environment, then argv
 * into cfg (cfg_size bytes, filled with the defaults; --help shows cfg as it is now as the
 * defaults), and set the log level and format. Keeps a copy of the defaults, cfg (the running
 * config, which must live as long as d), argc, argv and the file's path for daemon_reparse().
 * Returns -1 when the program should go on, else its exit code: 0 after --help, --version or
 * --print-config, 2 after an error (already printed as "prog: reason", or "prog: FILE:LINE:
 * reason" for the file), 1 if memory runs out. */
int daemon_parse(daemon_t *d, const char *about, const char *usage, void *cfg, size_t cfg_size,
                 int argc, char **argv);

/* Build the configuration again as daemon_parse() did, into fresh_cfg (cfg_size bytes of the
 * caller's; no need to fill it: it starts from the copy of the defaults daemon_parse() kept):
 * defaults, the same config file read again, the environment as it is now, the same argv.
 * --log-level and --log-format are checked too. Returns 0, or -1 with the reason in err (a file
 * error as "FILE:LINE: reason"); fresh_cfg is then unspecified. Main thread only. */
int daemon_reparse(daemon_t *d, void *fresh_cfg, char *err, size_t errlen);

/* Call on_changed(arg, s) for each option s of d's table whose value differs between old_cfg
 * and new_cfg, in table order. Strings are compared by content (NULL differs from ""). */
void daemon_config_diff(const daemon_t *d, const void *old_cfg, const void *new_cfg,
                        void (*on_changed)(void *arg, const opts_spec_t *s), void *arg);

/* Copy the value of option s from fresh_cfg into the running config (the cfg daemon_parse()
 * got). Strings are copied as pointers (daemon_reparse() gives ones that live as long as the
 * process). The caller makes sure no other thread reads that field meanwhile. */
void daemon_config_adopt(daemon_t *d, const void *fresh_cfg, const opts_spec_t *s);

/* The daemon's own live changes: if s is --log-level or --log-format, apply fresh_cfg's value
 * (slog_set_level() or slog_set_format()), adopt it into the running config, log "reload:
 * --log-level is now debug" and return true; else return false. */
bool daemon_apply_own(daemon_t *d, const void *fresh_cfg, const opts_spec_t *s);

/* Log "reload: --NAME changed; it needs a restart to take effect". */
void daemon_needs_restart(const daemon_t *d, const opts_spec_t *s);

/* A role's decision on one changed option: apply it live and daemon_config_adopt() it, then
 * return true; or return false (it needs a restart). */
typedef bool (*daemon_apply_fn)(void *arg, const opts_spec_t *s, const void *fresh_cfg);

/* A whole reload, on the thread that runs daemon_wait() (what SIGHUP does without a hook, and
 * what a hook calls): daemon_reparse() into a fresh config, then for each changed option
 * daemon_apply_own(), else apply(arg, s, fresh) if apply is not NULL, else
 * daemon_needs_restart(). Logs "reload: nothing changed" if nothing did, and "reload: <reason>;
 * the running configuration is kept" (a warning) if the reparse fails. Returns the number of
 * changed options (applied or not), or -1 after a failed reparse or without memory. */
int daemon_reload(daemon_t *d, daemon_apply_fn apply, void *arg);

/* Print "prog: <message>" on stderr and return code (for `return daemon_fail(...)`). */
int daemon_fail(const daemon_t *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Block SIGTERM, SIGINT and SIGHUP in the calling thread (every thread started afterwards
 * inherits the mask) and ignore SIGPIPE. Call before starting any thread. */
void daemon_block_signals(daemon_t *d);

/* What SIGHUP does: call fn(arg) on the thread that calls daemon_wait() (fn would call
 * daemon_reload() with its own apply function). NULL: daemon_reload(d, NULL, NULL). */
void daemon_on_reload(daemon_t *d, daemon_reload_fn fn, void *arg);

/* Wait for a stop signal for up to timeout_ms (0: without end). SIGHUP is handled here (the
 * reload hook) and the wait goes on. Returns DAEMON_STOP (and logs "signal N (NAME): shutting
 * down") or DAEMON_TICK. */
daemon_event_t daemon_wait(daemon_t *d, uint32_t timeout_ms);

#endif
