/* SPDX-License-Identifier: MIT */
/* rconn: redis:// URL parsing and bounded connection setup (see rconn.h). */
#include "rconn.h"

#include "err.h"
#include "redact.h"
#include "secretfile.h"
#include "slog.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *rconn_redact(const char *url, char *out, size_t outlen)
{
    return redact_url(url, out, outlen);
}

/* rconn_parse(); user_only: "USER@" names a user (its password comes from a file). */
static int parse_url_fields(const char *url, bool user_only, rconn_url_t *out, char *err,
                            size_t errlen)
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
        const char *user_end = colon ? colon : user_only ? at : NULL;
        if (!user_end || (size_t)(user_end - p) >= sizeof(out->user) ||
            (colon && (size_t)(at - colon - 1) >= sizeof(out->password))) {
            err_set(err, errlen, "redis url: credentials must be %s",
                    user_only ? "USER@ or [USER]:PASSWORD@" : "[USER]:PASSWORD@");
            return -1;
        }
        memcpy(out->user, p, (size_t)(user_end - p));
        if (colon)
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

/* parse_url_fields(), leaving no copy of a password behind when the URL is refused. */
static int parse_url(const char *url, bool user_only, rconn_url_t *out, char *err, size_t errlen)
{
    int rc = parse_url_fields(url, user_only, out, err, errlen);
    if (rc != 0)
        explicit_bzero(out->password, sizeof(out->password));
    return rc;
}

int rconn_parse(const char *url, rconn_url_t *out, char *err, size_t errlen)
{
    return parse_url(url, false, out, err, errlen);
}

int rconn_parse_auth(const char *url, const char *password_file, rconn_url_t *out, char *err,
                     size_t errlen)
{
    bool file = password_file && *password_file;
    if (parse_url(url, file, out, err, errlen) != 0)
        return -1;
    if (!file)
        return 0;
    if (out->password[0]) {
        memset(out, 0, sizeof(*out));
        err_set(err, errlen,
                "give the password once: the redis url has one and --redis-password-file is set");
        return -1;
    }
    if (strlen(password_file) >= sizeof(out->password_file)) {
        err_set(err, errlen, "--redis-password-file: path longer than %d bytes",
                RCONN_PATH_MAX - 1);
        return -1;
    }
    snprintf(out->password_file, sizeof(out->password_file), "%s", password_file);
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

/* Whether an error reply to AUTH or SELECT says the configuration is wrong (a retry gives the same
 * answer), rather than a passing state such as LOADING, BUSY or "ERR max number of clients". */
static bool refusal(const char *reason)
{
    static const char *const prefixes[] = {
        "WRONGPASS",            /* Redis 6+: wrong password, unknown or disabled user */
        "NOPERM",               /* a user without the right */
        "NOAUTH",               /* authentication required */
        "ERR AUTH",             /* AUTH without any password configured (Redis 6+) */
        "ERR Client sent AUTH", /* the same, Redis 5 */
        "ERR invalid password", /* requirepass, Redis 5 */
        "ERR invalid DB index", /* SELECT of a number Redis cannot take */
        "ERR DB index is out of range",
    };
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(reason, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    return false;
}

redisContext *rconn_open_why(const rconn_url_t *url, uint32_t timeout_ms, bool *refused, char *err,
                             size_t errlen)
{
    bool no = false;
    char why[256];
    char pw[RCONN_PASS_MAX] = "";
    redisContext *c = NULL;
    redisReply *r = NULL;
    /* Read first: a file that cannot be used is a refusal without a connection. */
    if (url->password_file[0] &&
        secretfile_read(url->password_file, pw, sizeof(pw), NULL, why, sizeof(why)) != 0) {
        err_set(err, errlen, "--redis-password-file %s", why);
        no = true;
        goto fail;
    }
    const char *password = url->password_file[0] ? pw : url->password;
    c = redisConnectWithTimeout(url->host, url->port, tv_ms(timeout_ms));
    if (!c || c->err) {
        err_set(err, errlen, "connect %.200s:%d: %s", url->host, url->port,
                c ? c->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(c, tv_ms(timeout_ms)) != REDIS_OK) {
        err_set(err, errlen, "setting the timeout failed");
        goto fail;
    }
    if (password[0]) {
        r = url->user[0] ? redisCommand(c, "AUTH %s %s", url->user, password)
                         : redisCommand(c, "AUTH %s", password);
        if (rconn_failed(c, r, "AUTH", why, sizeof(why))) {
            no = r && refusal(r->str);
            char who[160] = "";
            if (url->user[0])
                snprintf(who, sizeof(who), " (as user '%s')", url->user);
            err_set(err, errlen, "%s%s", why, who);
            goto fail;
        }
        freeReplyObject(r);
        r = NULL;
    }
    if (url->db) {
        r = redisCommand(c, "SELECT %d", url->db);
        if (rconn_failed(c, r, "SELECT", why, sizeof(why))) {
            no = r && refusal(r->str);
            err_set(err, errlen, "%s", why);
            goto fail;
        }
        freeReplyObject(r);
        r = NULL;
    }
    explicit_bzero(pw, sizeof(pw));
    if (refused)
        *refused = false;
    return c;
fail:
    if (r)
        freeReplyObject(r);
    explicit_bzero(pw, sizeof(pw));
    if (c)
        redisFree(c);
    if (refused)
        *refused = no;
    return NULL;
}

redisContext *rconn_open(const rconn_url_t *url, uint32_t timeout_ms, char *err, size_t errlen)
{
    return rconn_open_why(url, timeout_ms, NULL, err, errlen);
}

int rconn_check(const char *url, const char *password_file, uint32_t timeout_ms, char *err,
                size_t errlen)
{
    rconn_url_t u;
    if (rconn_parse_auth(url, password_file, &u, err, errlen) != 0)
        return RCONN_REFUSED;
    bool refused = false;
    char why[384];
    redisContext *c = rconn_open_why(&u, timeout_ms, &refused, why, sizeof(why));
    explicit_bzero(u.password, sizeof(u.password));
    if (!c) {
        err_set(err, errlen, "redis %s: %s", u.redacted, why);
        return refused ? RCONN_REFUSED : RCONN_DOWN;
    }
    redisFree(c);
    return 0;
}
