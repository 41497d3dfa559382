/* SPDX-License-Identifier: MIT */
/* rconn: redis:// URL parsing and bounded connection setup (see rconn.h). */
#include "rconn.h"

#include "err.h"
#include "mono.h"
#include "redact.h"
#include "secretfile.h"
#include "slog.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Process-wide (rconn.h): the sentinels' password file, the sentinel generation, and which
 * sentinel answered last (asked first next time). */
static char sentinel_pw_path[RCONN_PATH_MAX];
static _Atomic(const char *) sentinel_pw_file;
static _Atomic uint64_t generation;
static _Atomic unsigned sentinel_first;

void rconn_set_sentinel_password_file(const char *path)
{
    if (!path || !*path) {
        atomic_store_explicit(&sentinel_pw_file, NULL, memory_order_release);
        return;
    }
    snprintf(sentinel_pw_path, sizeof(sentinel_pw_path), "%s", path);
    atomic_store_explicit(&sentinel_pw_file, sentinel_pw_path, memory_order_release);
}

uint64_t rconn_generation(void)
{
    return atomic_load_explicit(&generation, memory_order_acquire);
}

void rconn_note_switch(void)
{
    atomic_fetch_add_explicit(&generation, 1, memory_order_acq_rel);
}

bool rconn_outdated(uint64_t gen)
{
    return gen != rconn_generation();
}

bool rconn_moved(const char *reason)
{
    static const char *const words[] = {"READONLY", "NOREPLICAS", "MASTERDOWN", "LOADING"};
    if (!reason)
        return false;
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (strstr(reason, words[i]))
            return true;
    return false;
}

char *rconn_redact(const char *url, char *out, size_t outlen)
{
    return redact_url(url, out, outlen);
}

/* "HOST[:PORT]" or "[V6][:PORT]" at p, ending at NUL or one of `stops`; *end is where it ended. */
static int parse_hostport(const char *p, const char *stops, int defport, rconn_addr_t *out,
                          const char **end, char *err, size_t errlen)
{
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
        char set[8] = ":";
        snprintf(set + 1, sizeof(set) - 1, "%s", stops);
        host_end = p + strcspn(p, set);
        rest = host_end;
    }
    size_t hlen = (size_t)(host_end - p);
    if (hlen == 0 || hlen >= sizeof(out->host)) {
        err_set(err, errlen, "redis url: missing or too long host");
        return -1;
    }
    memcpy(out->host, p, hlen);
    out->host[hlen] = '\0';
    out->port = defport;
    if (*rest == ':') {
        char *e;
        errno = 0;
        long v = strtol(rest + 1, &e, 10);
        if (e == rest + 1 || errno || v < 1 || v > 65535 || (*e != '\0' && !strchr(stops, *e))) {
            err_set(err, errlen, "redis url: bad port");
            return -1;
        }
        out->port = (int)v;
        rest = e;
    }
    *end = rest;
    return 0;
}

/* "/DB" at rest (or nothing, or "/"). */
static int parse_db(const char *rest, rconn_url_t *out, char *err, size_t errlen)
{
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

/* "SENTINEL[,SENTINEL...]/MASTER[/DB]" at p. */
static int parse_sentinels(const char *p, rconn_url_t *out, char *err, size_t errlen)
{
    for (;;) {
        if (out->n_sentinels == RCONN_SENTINELS_MAX) {
            err_set(err, errlen, "redis url: more than %d sentinels", RCONN_SENTINELS_MAX);
            return -1;
        }
        const char *end;
        if (parse_hostport(p, ",/", RCONN_SENTINEL_PORT, &out->sentinels[out->n_sentinels], &end,
                           err, errlen) != 0)
            return -1;
        out->n_sentinels++;
        p = end;
        if (*p != ',')
            break;
        p++;
    }
    size_t n = *p == '/' ? strcspn(p + 1, "/") : 0;
    bool ok = n >= 1 && n < sizeof(out->master);
    for (size_t i = 0; ok && i < n; i++) {
        char c = p[1 + i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == '-';
    }
    if (!ok) {
        err_set(
            err, errlen,
            "redis-sentinel url: the master's name must follow the sentinels: "
            "redis-sentinel://HOST:PORT[,HOST:PORT...]/MASTER[/DB] (1..%d of A-Z a-z 0-9 _ . -)",
            RCONN_NAME_MAX - 1);
        return -1;
    }
    memcpy(out->master, p + 1, n);
    out->master[n] = '\0';
    return parse_db(p + 1 + n, out, err, errlen);
}

/* rconn_parse(); user_only: "USER@" names a user (its password comes from a file). */
static int parse_url_fields(const char *url, bool user_only, rconn_url_t *out, char *err,
                            size_t errlen)
{
    static const char plain[] = "redis://", sentinel[] = "redis-sentinel://";
    memset(out, 0, sizeof(*out));
    bool is_sentinel = url && strncmp(url, sentinel, sizeof(sentinel) - 1) == 0;
    if (!url || (!is_sentinel && strncmp(url, plain, sizeof(plain) - 1) != 0)) {
        char shown[RCONN_URL_MAX + 4];
        err_set(err, errlen, "redis url '%s' does not start with redis:// or redis-sentinel://",
                rconn_redact(url ? url : "", shown, sizeof(shown)));
        return -1;
    }
    if (strlen(url) > RCONN_URL_MAX) {
        err_set(err, errlen, "redis url longer than %d bytes", RCONN_URL_MAX);
        return -1;
    }
    rconn_redact(url, out->redacted, sizeof(out->redacted));
    const char *p = url + (is_sentinel ? sizeof(sentinel) : sizeof(plain)) - 1;
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
    if (is_sentinel) {
        out->port = 6379;
        if (parse_sentinels(p, out, err, errlen) != 0)
            return -1;
        const char *pw = atomic_load_explicit(&sentinel_pw_file, memory_order_acquire);
        snprintf(out->sentinel_password_file, sizeof(out->sentinel_password_file), "%s",
                 pw ? pw : "");
        return 0;
    }
    rconn_addr_t a;
    const char *rest;
    if (parse_hostport(p, "/", 6379, &a, &rest, err, errlen) != 0)
        return -1;
    memcpy(out->host, a.host, sizeof(out->host));
    out->port = a.port;
    return parse_db(rest, out, err, errlen);
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

/* Milliseconds left until deadline (mono), at least 1 so every step still gets a try. */
static uint32_t left_ms(int64_t deadline)
{
    int64_t left = deadline - mono_ms();
    return left < 1 ? 1 : (uint32_t)left;
}

/* The value of "FIELD:" in an INFO text, as a number (0 if absent). */
static int info_int(const char *text, const char *field)
{
    const char *k = strstr(text, field);
    return k ? atoi(k + strlen(field)) : 0;
}

int rconn_replicas(redisContext *c, int *replicas)
{
    redisReply *r = redisCommand(c, "INFO replication");
    if (!r)
        return -1;
    *replicas = r->type == REDIS_REPLY_STRING ? info_int(r->str, "connected_slaves:") : 0;
    freeReplyObject(r);
    return 0;
}

/* The identity and replica count of the server behind c, from INFO (see rconn_info_t). A user
 * without +info gets "" and 0, not an error: it only loses the detection of a server change. */
static int server_info(redisContext *c, rconn_info_t *info, char *err, size_t errlen)
{
    redisReply *r = redisCommand(c, "INFO replication");
    redisReply *s = r && r->type == REDIS_REPLY_STRING ? redisCommand(c, "INFO server") : NULL;
    int rc = 0;
    info->id[0] = '\0';
    info->replicas = 0;
    if (!r || (r->type == REDIS_REPLY_STRING && !s)) {
        rconn_failed(c, NULL, "INFO", err, errlen);
        rc = -1;
    } else if (r->type == REDIS_REPLY_STRING && s->type == REDIS_REPLY_STRING) {
        const char *replid = strstr(r->str, "master_replid:");
        const char *runid = strstr(s->str, "run_id:");
        if (replid && runid)
            snprintf(info->id, sizeof(info->id), "%.40s/%.40s", runid + 7, replid + 14);
        info->id[strcspn(info->id, "\r\n")] = '\0';
        info->replicas = info_int(r->str, "connected_slaves:");
    } else if (r->type == REDIS_REPLY_ERROR && !refusal(r->str) && strncmp(r->str, "NOPERM", 6)) {
        rconn_failed(c, r, "INFO", err, errlen);
        rc = -1;
    }
    if (r)
        freeReplyObject(r);
    if (s)
        freeReplyObject(s);
    return rc;
}

/* One server at host:port: connect, AUTH, (master: ROLE must be "master"), SELECT, (info: INFO).
 * The rest as rconn_open_why(). */
static redisContext *open_server(const rconn_url_t *url, const char *host, int port,
                                 uint32_t timeout_ms, bool master, rconn_info_t *info,
                                 bool *refused, char *err, size_t errlen)
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
    c = redisConnectWithTimeout(host, port, tv_ms(timeout_ms));
    if (!c || c->err) {
        err_set(err, errlen, "connect %.200s:%d: %s", host, port, c ? c->errstr : "out of memory");
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
    if (master) {
        r = redisCommand(c, "ROLE");
        if (rconn_failed(c, r, "ROLE", why, sizeof(why))) {
            no = r && refusal(r->str);
            err_set(err, errlen, "%.200s:%d: %s", host, port, why);
            goto fail;
        }
        bool is_master = r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                         r->element[0]->type == REDIS_REPLY_STRING &&
                         strcmp(r->element[0]->str, "master") == 0;
        if (!is_master) {
            err_set(err, errlen, "%.200s:%d is not a master (ROLE says %s)", host, port,
                    r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
                            r->element[0]->type == REDIS_REPLY_STRING
                        ? r->element[0]->str
                        : "something else");
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
    if (info) {
        snprintf(info->addr, sizeof(info->addr), "%.256s:%d", host, port);
        if (server_info(c, info, err, errlen) != 0)
            goto fail;
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

redisContext *rconn_sentinel_connect(const rconn_url_t *url, const rconn_addr_t *s,
                                     uint32_t timeout_ms, bool *refused, char *err, size_t errlen)
{
    char pw[RCONN_PASS_MAX] = "", why[256];
    redisContext *c = NULL;
    redisReply *r = NULL;
    *refused = false;
    if (url->sentinel_password_file[0] &&
        secretfile_read(url->sentinel_password_file, pw, sizeof(pw), NULL, why, sizeof(why)) != 0) {
        err_set(err, errlen, "--redis-sentinel-password-file %s", why);
        *refused = true;
        return NULL;
    }
    c = redisConnectWithTimeout(s->host, s->port, tv_ms(timeout_ms));
    if (!c || c->err) {
        err_set(err, errlen, "%s", c ? c->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(c, tv_ms(timeout_ms)) != REDIS_OK) {
        err_set(err, errlen, "setting the timeout failed");
        goto fail;
    }
    if (pw[0]) {
        r = redisCommand(c, "AUTH %s", pw);
        if (rconn_failed(c, r, "AUTH", err, errlen)) {
            *refused = r && refusal(r->str);
            goto fail;
        }
        freeReplyObject(r);
    }
    explicit_bzero(pw, sizeof(pw));
    return c;
fail:
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    explicit_bzero(pw, sizeof(pw));
    return NULL;
}

/* Ask the sentinel s for the master's address. 0 (address in *out), 1 (it does not know the
 * master), or -1 (no answer; *refused if it refused our password); why in err. */
static int ask_sentinel(const rconn_url_t *url, const rconn_addr_t *s, uint32_t timeout_ms,
                        rconn_addr_t *out, bool *refused, char *err, size_t errlen)
{
    redisReply *r = NULL;
    int rc = -1;
    redisContext *c = rconn_sentinel_connect(url, s, timeout_ms, refused, err, errlen);
    if (!c)
        return -1;
    r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", url->master);
    if (rconn_failed(c, r, "SENTINEL get-master-addr-by-name", err, errlen)) {
        *refused = r && refusal(r->str);
        goto out;
    }
    if (r->type == REDIS_REPLY_NIL) {
        err_set(err, errlen, "does not know a master named %s", url->master);
        rc = 1;
        goto out;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        r->element[0]->len >= sizeof(out->host)) {
        err_set(err, errlen, "an unexpected answer to SENTINEL get-master-addr-by-name");
        goto out;
    }
    memcpy(out->host, r->element[0]->str, r->element[0]->len + 1);
    out->port = atoi(r->element[1]->str);
    if (out->port < 1 || out->port > 65535) {
        err_set(err, errlen, "a bad port in the master's address");
        goto out;
    }
    rc = 0;
out:
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

/* Appends "; text" (or "text") to a bounded message. */
static void add_why(char *buf, size_t cap, const char *text)
{
    size_t n = strlen(buf);
    if (n + 3 >= cap)
        return;
    if (n) {
        memcpy(buf + n, "; ", 3);
        n += 2;
    }
    size_t k = strlen(text);
    if (k > cap - n - 1)
        k = cap - n - 1;
    memcpy(buf + n, text, k);
    buf[n + k] = '\0';
}

/* The master through the sentinels (see rconn.h): each sentinel in turn, from the one that
 * answered last; all within about 2 * timeout_ms. */
static redisContext *open_sentinel(const rconn_url_t *url, uint32_t timeout_ms, rconn_info_t *info,
                                   bool *refused, char *err, size_t errlen)
{
    int64_t deadline = mono_ms() + 2 * (int64_t)timeout_ms;
    unsigned first = atomic_load_explicit(&sentinel_first, memory_order_relaxed);
    size_t n = url->n_sentinels, unknown = 0, denied = 0, asked = 0;
    char whys[1024] = "";
    rconn_addr_t tried[RCONN_SENTINELS_MAX];
    size_t n_tried = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = (first + k) % n;
        const rconn_addr_t *s = &url->sentinels[i];
        uint32_t budget = left_ms(deadline);
        if (k > 0 && mono_ms() >= deadline)
            break;
        asked++;
        rconn_addr_t m;
        bool no = false;
        char why[300], line[800];
        int rc = ask_sentinel(url, s, budget < timeout_ms ? budget : timeout_ms, &m, &no, why,
                              sizeof(why));
        if (rc != 0) {
            unknown += rc == 1;
            denied += no;
            snprintf(line, sizeof(line), "sentinel %.100s:%d: %.300s", s->host, s->port, why);
            add_why(whys, sizeof(whys), line);
            continue;
        }
        bool seen = false; /* a master another sentinel named and that failed already */
        for (size_t j = 0; j < n_tried && !seen; j++)
            seen = strcmp(tried[j].host, m.host) == 0 && tried[j].port == m.port;
        if (seen)
            continue;
        if (n_tried < RCONN_SENTINELS_MAX)
            tried[n_tried++] = m;
        budget = left_ms(deadline);
        redisContext *c =
            open_server(url, m.host, m.port, budget < timeout_ms ? budget : timeout_ms, true, info,
                        &no, why, sizeof(why));
        if (c) {
            atomic_store_explicit(&sentinel_first, (unsigned)i, memory_order_relaxed);
            if (refused)
                *refused = false;
            return c;
        }
        if (no) { /* the master refused our credentials: asking others changes nothing */
            err_set(err, errlen, "master %s at %.200s:%d: %s", url->master, m.host, m.port, why);
            if (refused)
                *refused = true;
            return NULL;
        }
        snprintf(line, sizeof(line), "master %s at %.100s:%d (named by sentinel %.100s:%d): %.300s",
                 url->master, m.host, m.port, s->host, s->port, why);
        add_why(whys, sizeof(whys), line);
    }
    err_set(err, errlen, "no master %s: %s", url->master, whys);
    /* A configuration error only if every sentinel answered and refused or did not know it. */
    if (refused)
        *refused = asked == n && unknown + denied == n;
    return NULL;
}

redisContext *rconn_open_info(const rconn_url_t *url, uint32_t timeout_ms, rconn_info_t *info,
                              bool *refused, char *err, size_t errlen)
{
    uint64_t gen = rconn_generation();
    redisContext *c = url->n_sentinels ? open_sentinel(url, timeout_ms, info, refused, err, errlen)
                                       : open_server(url, url->host, url->port, timeout_ms, false,
                                                     info, refused, err, errlen);
    if (c && info)
        info->generation = gen;
    return c;
}

redisContext *rconn_open_why(const rconn_url_t *url, uint32_t timeout_ms, bool *refused, char *err,
                             size_t errlen)
{
    return rconn_open_info(url, timeout_ms, NULL, refused, err, errlen);
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
