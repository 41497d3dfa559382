/* SPDX-License-Identifier: MIT */
/* slog: stderr lines with an ISO-8601 UTC timestamp and a level name. */
#include "slog.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int current_level = SLOG_INFO;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

int slog_level_parse(const char *text, slog_level_t *out)
{
    for (int i = 0; i <= SLOG_DEBUG; i++) {
        if (strcmp(text, level_names[i]) == 0) {
            *out = (slog_level_t)i;
            return 0;
        }
    }
    if (strcmp(text, "warning") == 0) {
        *out = SLOG_WARN;
        return 0;
    }
    return -1;
}

void slog_set_level(slog_level_t level)
{
    atomic_store_explicit(&current_level, (int)level, memory_order_relaxed);
}

slog_level_t slog_get_level(void)
{
    return (slog_level_t)atomic_load_explicit(&current_level, memory_order_relaxed);
}

void slog_msg(slog_level_t level, const char *fmt, ...)
{
    if ((int)level > atomic_load_explicit(&current_level, memory_order_relaxed))
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    /* A failed or short write to stderr has nowhere to be reported. */
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void slog_sink(void *arg, slog_level_t level, const char *msg)
{
    (void)arg;
    slog_msg(level, "%s", msg);
}

void slog_to(slog_fn fn, void *arg, slog_level_t level, const char *fmt, ...)
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
