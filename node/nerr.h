/* SPDX-License-Identifier: MIT */
/* nerr: the two formatting helpers node modules share to report without printing: an error
 * text into the caller's buffer, and a log line through the caller's callback (only the daemon's
 * callback writes anywhere). */
#ifndef SHOAL_NERR_H
#define SHOAL_NERR_H

#include <stddef.h>

/* A log callback: level as log.h (0 error, 1 warn, 2 info, 3 debug), msg without newline. */
typedef void (*nerr_log_fn)(void *arg, int level, const char *msg);

/* Format into err[0..errlen) (truncated, always terminated). No-op if err is NULL or errlen 0. */
void nerr_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Format a line of up to 1 KiB and hand it to fn(arg, level, line). No-op if fn is NULL. */
void nerr_log(nerr_log_fn fn, void *arg, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
