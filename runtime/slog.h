/* SPDX-License-Identifier: MIT */
/* slog: leveled, timestamped log lines on stderr, and the one log callback type every module
 * takes. Only daemon loops write lines; library modules hand theirs to a slog_fn their owner gave
 * them (slog_sink() writes to stderr), so a test or another host program decides where they go.
 * The level is process-wide and read without a lock (a relaxed atomic).
 *
 * (Named slog, not log: <syslog.h>, which czmq.h includes, defines SLOG_INFO and SLOG_DEBUG.) */
#ifndef SHOAL_SLOG_H
#define SHOAL_SLOG_H

typedef enum {
    SLOG_ERROR = 0,
    SLOG_WARN = 1,
    SLOG_INFO = 2,
    SLOG_DEBUG = 3,
} slog_level_t;

/* Where a module's lines go: msg has no newline and is borrowed for the call. Called on the
 * module's own thread. */
typedef void (*slog_fn)(void *arg, slog_level_t level, const char *msg);

/* Parse "error", "warn" (or "warning"), "info" or "debug" into *out. Returns 0, or -1 if text is
 * none of them. */
int slog_level_parse(const char *text, slog_level_t *out);

void slog_set_level(slog_level_t level);
slog_level_t slog_get_level(void);

/* Write one line "<ISO time> <level> <message>\n" if level is enabled. One write(2) per line, so
 * lines from different threads do not interleave. */
void slog_msg(slog_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A slog_fn that writes msg with slog_msg(); arg is ignored. */
void slog_sink(void *arg, slog_level_t level, const char *msg);

/* Format a line of up to 1 KiB and hand it to fn(arg, level, line). No-op if fn is NULL. */
void slog_to(slog_fn fn, void *arg, slog_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
