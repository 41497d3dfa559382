/* SPDX-License-Identifier: MIT */
/* nerr: error and log formatting for node modules (see nerr.h). */
#include "nerr.h"

#include <stdarg.h>
#include <stdio.h>

void nerr_set(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void nerr_log(nerr_log_fn fn, void *arg, int level, const char *fmt, ...)
{
    if (!fn)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fn(arg, level, msg);
}
