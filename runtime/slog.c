/* SPDX-License-Identifier: MIT */
/* slog: stderr lines with an ISO-8601 UTC timestamp and a level name, as text or as json. A json
 * line is built in a fixed buffer with no allocation; the escaper never splits an escape or a
 * UTF-8 sequence when it cuts, so a cut line is still valid JSON. */
#include "slog.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int current_level = SLOG_INFO;
static _Atomic int current_format = SLOG_TEXT;
static _Atomic(const char *) current_role = NULL;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

#define LINE_MAX_BYTES 1024 /* a text line, and a json line's message before escaping */
#define JSON_MAX_BYTES 2048

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

int slog_format_parse(const char *text, slog_format_t *out)
{
    if (strcmp(text, "text") == 0) {
        *out = SLOG_TEXT;
        return 0;
    }
    if (strcmp(text, "json") == 0) {
        *out = SLOG_JSON;
        return 0;
    }
    return -1;
}

void slog_set_format(slog_format_t format)
{
    atomic_store_explicit(&current_format, (int)format, memory_order_relaxed);
}

slog_format_t slog_get_format(void)
{
    return (slog_format_t)atomic_load_explicit(&current_format, memory_order_relaxed);
}

void slog_set_role(const char *role)
{
    atomic_store_explicit(&current_role, role, memory_order_relaxed);
}

/* The length of the valid UTF-8 sequence at s (s[0] >= 0x80), or 0 if it is not one. Reads no
 * further than the first byte that does not fit, so a NUL ends it. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0];
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    }
    return len;
}

/* Append s to out[*at..cap) as the inside of a JSON string. Stops (cutting s) before an escape or
 * a UTF-8 sequence that would not fit whole. */
static void json_escape(char *out, size_t *at, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char esc[6];
        const unsigned char *src = p;
        size_t n = 1, used = 1;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            n = 2;
            src = (const unsigned char *)esc;
        } else if (*p < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 0xf];
            n = 6;
            src = (const unsigned char *)esc;
        } else if (*p >= 0x80) {
            n = used = utf8_len(p);
            if (n == 0) {
                memcpy(esc, "\\ufffd", 6);
                n = 6;
                used = 1;
                src = (const unsigned char *)esc;
            }
        }
        if (*at + n > cap)
            return;
        memcpy(out + *at, src, n);
        *at += n;
        p += used;
    }
}

/* If vsnprintf() cut s (len bytes) inside a UTF-8 sequence, drop the sequence's start. */
static void drop_cut_sequence(char *s, size_t len)
{
    size_t i = len, cont = 0;
    while (i > 0 && cont < 3 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) {
        i--;
        cont++;
    }
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (need > cont + 1)
        s[i - 1] = '\0';
}

static void append(char *out, size_t *at, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (*at + n > cap)
        n = cap - *at;
    memcpy(out + *at, s, n);
    *at += n;
}

void slog_msg(slog_level_t level, const char *fmt, ...)
{
    if ((int)level > atomic_load_explicit(&current_level, memory_order_relaxed))
        return;
    char stamp[128]; /* the bound gcc sees for any int in the fields; 24 are used */
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
    va_list ap;
    va_start(ap, fmt);
    if (atomic_load_explicit(&current_format, memory_order_relaxed) == SLOG_JSON) {
        char msg[LINE_MAX_BYTES], line[JSON_MAX_BYTES];
        int m = vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        if (m >= (int)sizeof(msg))
            drop_cut_sequence(msg, sizeof(msg) - 1);
        static const char tail[] = "\",\"fields\":{}}\n";
        size_t cap = sizeof(line) - (sizeof(tail) - 1), len = 0;
        const char *role = atomic_load_explicit(&current_role, memory_order_relaxed);
        append(line, &len, cap, "{\"time\":\"");
        append(line, &len, cap, stamp);
        append(line, &len, cap, "\",\"level\":\"");
        append(line, &len, cap, level_names[level]);
        append(line, &len, cap, "\",\"role\":\"");
        json_escape(line, &len, cap, role ? role : "");
        append(line, &len, cap, "\",\"msg\":\"");
        json_escape(line, &len, cap, msg);
        memcpy(line + len, tail, sizeof(tail) - 1);
        len += sizeof(tail) - 1;
        /* A failed or short write to stderr has nowhere to be reported. */
        ssize_t w = write(STDERR_FILENO, line, len);
        (void)w;
        return;
    }
    char line[LINE_MAX_BYTES];
    int n = snprintf(line, sizeof(line), "%s %-5s ", stamp, level_names[level]);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
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
