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

/* Appends to a bounded buffer; what does not fit is dropped, the text stays terminated. */
typedef struct {
    char *buf;
    size_t cap, len;
} outbuf_t;

static void put(outbuf_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && o->len + 1 < o->cap; i++) {
        unsigned char c = (unsigned char)s[i];
        o->buf[o->len++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (o->cap)
        o->buf[o->len] = '\0';
}

char *rconn_redact(const char *url, char *out, size_t outlen)
{
    outbuf_t o = {.buf = out, .cap = outlen};
    if (outlen)
        out[0] = '\0';
    if (!url)
        return out;
    /* The same split as rconn_parse(): credentials end at the last '@', the user at their first
     * ':'. Any other text is split alike, so a URL that does not parse keeps its secret too. */
    const char *scheme_end = strstr(url, "://");
    const char *p = scheme_end ? scheme_end + 3 : url;
    const char *at = strrchr(p, '@');
    if (!at) {
        put(&o, url, strlen(url));
        return out;
    }
    const char *colon = memchr(p, ':', (size_t)(at - p));
    const char *keep = colon ? colon + 1 : p;
    put(&o, url, (size_t)(keep - url));
    put(&o, "***", 3);
    put(&o, at, strlen(at));
    return out;
}

int rconn_parse(const char *url, rconn_url_t *out, char *err, size_t errlen)
{
    static const char scheme[] = "redis://";
    memset(out, 0, sizeof(*out));
    if (!url || strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        char shown[RCONN_URL_MAX + 4];
        err_set(err, errlen, "redis url '%s' does not start with redis://",
                rconn_redact(url ? url : "", shown, sizeof(shown)));
        return -1;
    }
    if (strlen(url) > RCONN_URL_MAX) {
        err_set(err, errlen, "redis url longer than %d bytes", RCONN_URL_MAX);
        return -1;
    }
    rconn_redact(url, out->redacted, sizeof(out->redacted));
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
        char shown[RCONN_URL_MAX + 4];
        err_set(err, errlen, "redis url: unexpected '%s'",
                rconn_redact(rest, shown, sizeof(shown)));
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
