/* SPDX-License-Identifier: MIT */
/* rconn: redis:// URL parsing and bounded connection setup (see rconn.h). */
#include "rconn.h"

#include "err.h"
#include "slog.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rconn_parse(const char *url, rconn_url_t *out, char *err, size_t errlen)
{
    static const char scheme[] = "redis://";
    memset(out, 0, sizeof(*out));
    if (!url || strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        err_set(err, errlen, "redis url '%s' does not start with redis://", url ? url : "");
        return -1;
    }
    if (strlen(url) >= sizeof(out->url)) {
        err_set(err, errlen, "redis url longer than %zu bytes", sizeof(out->url) - 1);
        return -1;
    }
    snprintf(out->url, sizeof(out->url), "%s", url);
    const char *p = url + sizeof(scheme) - 1;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon || (size_t)(colon - p) >= sizeof(out->user) ||
            (size_t)(at - colon - 1) >= sizeof(out->password)) {
            err_set(err, errlen, "redis url: credentials must be [USER]:PASSWORD@");
            return -1;
        }
        memcpy(out->user, p, (size_t)(colon - p));
        memcpy(out->password, colon + 1, (size_t)(at - colon - 1));
        p = at + 1;
    }
    const char *host_end;
    const char *rest;
    if (*p == '[') {
        host_end = strchr(p, ']');
        if (!host_end) {
            err_set(err, errlen, "redis url: unterminated [IPv6 address]");
            return -1;
        }
        p++;
        rest = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/");
        rest = host_end;
    }
    size_t hlen = (size_t)(host_end - p);
    if (hlen == 0 || hlen >= sizeof(out->host)) {
        err_set(err, errlen, "redis url: missing or too long host");
        return -1;
    }
    memcpy(out->host, p, hlen);
    out->host[hlen] = '\0';
    out->port = 6379;
    if (*rest == ':') {
        char *e;
        errno = 0;
        long v = strtol(rest + 1, &e, 10);
        if (e == rest + 1 || errno || v < 1 || v > 65535 || (*e != '\0' && *e != '/')) {
            err_set(err, errlen, "redis url: bad port");
            return -1;
        }
        out->port = (int)v;
        rest = e;
    }
    if (*rest == '/' && rest[1] != '\0') {
        char *e;
        errno = 0;
        long v = strtol(rest + 1, &e, 10);
        if (e == rest + 1 || errno || v < 0 || v > 1000000 || *e != '\0') {
            err_set(err, errlen, "redis url: bad database number");
            return -1;
        }
        out->db = (int)v;
    } else if (*rest != '\0' && strcmp(rest, "/") != 0) {
        err_set(err, errlen, "redis url: unexpected '%s'", rest);
        return -1;
    }
    return 0;
}

int rconn_failed(redisContext *c, redisReply *r, const char *what, char *err, size_t errlen)
{
    if (!r) {
        err_set(err, errlen, "%s: %s", what, c && c->errstr[0] ? c->errstr : "no reply");
        return 1;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        err_set(err, errlen, "%s: %s", what, r->str);
        return 1;
    }
    return 0;
}

static struct timeval tv_ms(uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    return tv;
}

/* One setup command (AUTH, SELECT): 0, or -1 and why in err. */
static int setup_command(redisContext *c, char *err, size_t errlen, const char *what,
                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    int bad = rconn_failed(c, r, what, err, errlen);
    if (r)
        freeReplyObject(r);
    return bad ? -1 : 0;
}

redisContext *rconn_open(const rconn_url_t *url, uint32_t timeout_ms, char *err, size_t errlen)
{
    redisContext *c = redisConnectWithTimeout(url->host, url->port, tv_ms(timeout_ms));
    if (!c || c->err) {
        err_set(err, errlen, "connect %.200s:%d: %s", url->host, url->port,
                c ? c->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(c, tv_ms(timeout_ms)) != REDIS_OK) {
        err_set(err, errlen, "setting the timeout failed");
        goto fail;
    }
    if (url->password[0]) {
        int rc = url->user[0]
                     ? setup_command(c, err, errlen, "AUTH", "AUTH %s %s", url->user, url->password)
                     : setup_command(c, err, errlen, "AUTH", "AUTH %s", url->password);
        if (rc != 0)
            goto fail;
    }
    if (url->db && setup_command(c, err, errlen, "SELECT", "SELECT %d", url->db) != 0)
        goto fail;
    return c;
fail:
    if (c)
        redisFree(c);
    return NULL;
}
