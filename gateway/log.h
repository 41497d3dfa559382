/* SPDX-License-Identifier: MIT */
/* log: leveled, timestamped lines on stderr. Only daemon loops log; library code returns errors.
 * The level is process-wide and read without a lock (a relaxed atomic). */
#ifndef SHOAL_LOG_H
#define SHOAL_LOG_H

typedef enum {
    LOG_ERROR = 0,
    LOG_WARN = 1,
    LOG_INFO = 2,
    LOG_DEBUG = 3,
} log_level_t;

/* Parse "error", "warn", "info" or "debug" into *out. Returns 0, or -1 if text is none of them. */
int log_level_parse(const char *text, log_level_t *out);

void log_set_level(log_level_t level);
log_level_t log_get_level(void);

/* Write one line "<ISO time> <level> <message>\n" if level is enabled. One write(2) per line, so
 * lines from different threads do not interleave. */
void log_msg(log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
