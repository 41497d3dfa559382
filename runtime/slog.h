/* SPDX-License-Identifier: MIT */
/* slog: leveled, timestamped log lines on stderr, and the one log callback type every module
 * takes. Only daemon loops write lines; library modules hand theirs to a slog_fn their owner gave
 * them (slog_sink() writes to stderr), so a test or another host program decides where they go.
 * The level, the format and the role are process-wide and read without a lock (relaxed atomics),
 * so a reload may change them while other threads log.
 *
 * Two formats. text (the default): "<ISO time> <level> <message>". json: one JSON object per
 * line, {"time":"2026-12-06T01:02:03.456Z","level":"info","role":"shoal-node","msg":"...",
 * "fields":{}}, with the message escaped (quote, backslash and control characters; bytes that
 * are not UTF-8 become U+FFFD) so every line is valid JSON whatever the message holds. "fields"
 * is always there, empty for now, so log collectors can rely on the shape.
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

typedef enum {
    SLOG_TEXT = 0,
    SLOG_JSON = 1,
} slog_format_t;

/* Parse "text" or "json" into *out. Returns 0, or -1 if text is neither. */
int slog_format_parse(const char *text, slog_format_t *out);

void slog_set_format(slog_format_t format);
slog_format_t slog_get_format(void);

/* The "role" of json lines: the program's name (daemon_init() sets it). role is borrowed and must
 * live as long as the process (a string literal); NULL gives "". */
void slog_set_role(const char *role);

/* Write one line "<ISO time> <level> <message>\n" (or its json object) if level is enabled. A
 * message is cut at about 1 KiB. One write(2) per line, so lines from different threads do not
 * interleave. */
void slog_msg(slog_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A slog_fn that writes msg with slog_msg(); arg is ignored. */
void slog_sink(void *arg, slog_level_t level, const char *msg);

/* Format a line of up to 1 KiB and hand it to fn(arg, level, line). No-op if fn is NULL. */
void slog_to(slog_fn fn, void *arg, slog_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
