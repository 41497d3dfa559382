/* SPDX-License-Identifier: MIT */
/* admin: the admin HTTP listener on libmicrohttpd (admin.h).
 *
 * We bind the listening socket ourselves and hand it to libmicrohttpd, so a bind failure comes
 * back with its errno ("address in use") and port 0 can be read back with getsockname().
 * libmicrohttpd calls on_request() several times per request: once with the headers (every
 * check that needs no body runs there, so a refusal is queued before any body is read and a 413
 * never reads the body), once per body chunk, and once more when the body is complete (the handler
 * runs then). The raw request URI, seen first by on_uri(), is checked for %00, which the decoded
 * path given to on_request() can no longer show.
 *
 * Invariant: routes change only before admin_start() (the thread reads them without a lock);
 * the token changes under token_lock while the thread runs (admin_reload_token). */
#include "admin.h"

#include "err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* A chunked body larger than ADMIN_MAX_BODY is read and dropped (the 413 can only be queued once
 * the body is complete) up to this much more; then the connection is closed without an answer. */
#define DISCARD_MAX (8u << 20)

typedef struct {
    char method[8];
    char *path;
    size_t path_len;
    unsigned flags;
    admin_handler_fn fn;
    void *arg;
} route_t;

struct admin {
    bool enabled, started;
    char *listen;
    char *token_file; /* NULL when none */
    char *role;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool any6; /* "[::]": one socket for both families */
    uint16_t port;
    struct MHD_Daemon *daemon;
    route_t routes[ADMIN_MAX_ROUTES];
    size_t nroutes;
    pthread_mutex_t token_lock;
    char token[ADMIN_MAX_TOKEN + 1];
    size_t token_len;
};

struct admin_req {
    struct MHD_Connection *conn;
    bool bad_uri; /* a %00 or an over-long path in the raw URI */
    bool headers_done;
    bool too_big;
    const char *method;
    const char *path;
    const char *rest;
    const route_t *route;
    char *body;
    size_t len, cap, discarded;
};

static const char *const methods[] = {"GET", "PUT", "POST", "DELETE"};

/* ---- configuration ---- */

static int parse_port(const char *s, uint16_t *out)
{
    unsigned long v = 0;
    if (!*s || strlen(s) > 5)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned long)(*s - '0');
    }
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

static int parse_listen(admin_t *a, const char *s, char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *port;
    memset(&a->addr, 0, sizeof(a->addr));
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host))
            goto bad;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        port = close + 2;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->addr;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1 || parse_port(port, &a->port) != 0)
            goto bad;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(a->port);
        a->addrlen = sizeof(*sin6);
        a->any6 = IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr);
        return 0;
    }
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host))
        goto bad;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    if (strchr(host, ':')) {
        err_set(err, errlen, "--admin %s: an IPv6 address goes in brackets, [ADDR]:PORT", s);
        return -1;
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->addr;
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1 || parse_port(colon + 1, &a->port) != 0)
        goto bad;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(a->port);
    a->addrlen = sizeof(*sin);
    return 0;
bad:
    err_set(err, errlen, "--admin %s: expected ADDR:PORT, [V6ADDR]:PORT or off (numeric addresses)",
            s);
    return -1;
}

/* Read the token: the file's first line, trimmed of blanks. The token is wiped from every buffer
 * that held it and never appears in err. */
static int read_token(const char *path, char *out, size_t *len_out, char *err, size_t errlen)
{
    char buf[ADMIN_MAX_TOKEN + 64];
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        err_set(err, errlen, "--admin-token-file %s: %s", path, strerror(errno));
        return -1;
    }
    size_t n = 0;
    int rc = 0;
    /* Only the first line matters, so read at most one buffer of the file. */
    while (n < sizeof(buf) && !memchr(buf, '\n', n)) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            err_set(err, errlen, "--admin-token-file %s: %s", path, strerror(errno));
            rc = -1;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    char *nl = memchr(buf, '\n', n);
    if (rc == 0 && !nl && n == sizeof(buf)) {
        err_set(err, errlen, "--admin-token-file %s: first line longer than %d bytes", path,
                ADMIN_MAX_TOKEN);
        rc = -1;
    }
    size_t end = nl ? (size_t)(nl - buf) : n, start = 0;
    while (start < end && (buf[start] == ' ' || buf[start] == '\t' || buf[start] == '\r'))
        start++;
    while (end > start && (buf[end - 1] == ' ' || buf[end - 1] == '\t' || buf[end - 1] == '\r'))
        end--;
    if (rc == 0 && end == start) {
        err_set(err, errlen, "--admin-token-file %s: empty", path);
        rc = -1;
    }
    if (rc == 0 && end - start > ADMIN_MAX_TOKEN) {
        err_set(err, errlen, "--admin-token-file %s: token longer than %d bytes", path,
                ADMIN_MAX_TOKEN);
        rc = -1;
    }
    for (size_t i = start; rc == 0 && i < end; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c < 0x21 || c == 0x7f) {
            /* It could never be sent in a header as it stands. */
            err_set(err, errlen, "--admin-token-file %s: token holds a blank or control byte",
                    path);
            rc = -1;
        }
    }
    if (rc == 0) {
        memcpy(out, buf + start, end - start);
        out[end - start] = '\0';
        *len_out = end - start;
    }
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

admin_t *admin_new(const admin_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg || !cfg->listen) {
        err_set(err, errlen, "--admin: no address");
        return NULL;
    }
    admin_t *a = calloc(1, sizeof(*a));
    if (!a) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&a->token_lock, NULL);
    a->listen = strdup(cfg->listen);
    a->role = strdup(cfg->role ? cfg->role : "shoal");
    if (cfg->token_file && *cfg->token_file)
        a->token_file = strdup(cfg->token_file);
    if (!a->listen || !a->role || (cfg->token_file && *cfg->token_file && !a->token_file)) {
        err_set(err, errlen, "out of memory");
        goto fail;
    }
    a->enabled = strcmp(cfg->listen, "off") != 0;
    if (a->enabled && parse_listen(a, cfg->listen, err, errlen) != 0)
        goto fail;
    if (a->token_file && read_token(a->token_file, a->token, &a->token_len, err, errlen) != 0)
        goto fail;
    return a;
fail:
    admin_destroy(&a);
    return NULL;
}

bool admin_enabled(const admin_t *a)
{
    return a && a->enabled;
}

int admin_route(admin_t *a, const char *method, const char *path, unsigned flags,
                admin_handler_fn fn, void *arg)
{
    if (!a || a->started || !method || !path || !fn || path[0] != '/' ||
        strlen(path) > ADMIN_MAX_PATH || (flags & ~(ADMIN_PREFIX | ADMIN_WRITE)) ||
        a->nroutes == ADMIN_MAX_ROUTES)
        return -1;
    bool known = false;
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        known = known || strcmp(method, methods[i]) == 0;
    if (!known)
        return -1;
    for (size_t i = 0; i < a->nroutes; i++)
        if (strcmp(a->routes[i].method, method) == 0 && strcmp(a->routes[i].path, path) == 0)
            return -1;
    route_t *r = &a->routes[a->nroutes];
    *r = (route_t){.flags = flags, .fn = fn, .arg = arg, .path_len = strlen(path)};
    r->path = strdup(path);
    if (!r->path)
        return -1;
    snprintf(r->method, sizeof(r->method), "%s", method);
    a->nroutes++;
    return 0;
}

void admin_describe(const admin_t *a, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return;
    if (!a || !a->enabled) {
        snprintf(out, outlen, "off");
        return;
    }
    char host[INET6_ADDRSTRLEN];
    if (a->addr.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&a->addr)->sin6_addr, host,
                  sizeof(host));
        snprintf(out, outlen, "[%s]:%u", host, a->port);
    } else {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&a->addr)->sin_addr, host, sizeof(host));
        snprintf(out, outlen, "%s:%u", host, a->port);
    }
}

uint16_t admin_port(const admin_t *a)
{
    return a && a->started ? a->port : 0;
}

int admin_reload_token(admin_t *a, char *err, size_t errlen)
{
    if (!a || !a->token_file)
        return 0;
    char token[ADMIN_MAX_TOKEN + 1];
    size_t len;
    if (read_token(a->token_file, token, &len, err, errlen) != 0)
        return -1;
    pthread_mutex_lock(&a->token_lock);
    explicit_bzero(a->token, sizeof(a->token));
    memcpy(a->token, token, len + 1);
    a->token_len = len;
    pthread_mutex_unlock(&a->token_lock);
    explicit_bzero(token, sizeof(token));
    return 0;
}

void admin_destroy(admin_t **a_p)
{
    if (!a_p || !*a_p)
        return;
    admin_t *a = *a_p;
    if (a->daemon)
        MHD_stop_daemon(a->daemon); /* joins the thread and closes the listening socket */
    for (size_t i = 0; i < a->nroutes; i++)
        free(a->routes[i].path);
    explicit_bzero(a->token, sizeof(a->token));
    pthread_mutex_destroy(&a->token_lock);
    free(a->listen);
    free(a->token_file);
    free(a->role);
    free(a);
    *a_p = NULL;
}

/* ---- replies ---- */

void admin_reply_take(admin_reply_t *out, int status, const char *content_type, char *body,
                      size_t len)
{
    if (!out) {
        free(body);
        return;
    }
    free(out->body);
    out->status = status;
    out->content_type = content_type;
    out->body = body;
    out->len = body ? len : 0;
}

void admin_reply_text(admin_reply_t *out, int status, const char *content_type, const char *text)
{
    size_t len = text ? strlen(text) : 0;
    char *body = malloc(len + 1);
    if (body)
        memcpy(body, text ? text : "", len + 1);
    admin_reply_take(out, status, content_type, body, len);
}

/* Replace what is not well-formed UTF-8 by '?', so jansson takes the text. */
static void utf8_scrub(char *s)
{
    unsigned char *p = (unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t len = c < 0x80                 ? 1
                     : c >= 0xC2 && c <= 0xDF ? 2
                     : c >= 0xE0 && c <= 0xEF ? 3
                     : c >= 0xF0 && c <= 0xF4 ? 4
                                              : 0;
        uint32_t cp = len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        bool ok = len > 0;
        for (size_t k = 1; ok && k < len; k++) {
            ok = (p[k] & 0xC0) == 0x80; /* also stops at the NUL */
            cp = (cp << 6) | (p[k] & 0x3F);
        }
        if (ok && ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
                   (len >= 3 && cp >= 0xD800 && cp <= 0xDFFF)))
            ok = false;
        if (!ok) {
            *p++ = '?';
            continue;
        }
        p += len;
    }
}

void admin_reply_error(admin_reply_t *out, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    utf8_scrub(msg);
    json_t *o = json_pack("{s:s}", "error", msg);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    admin_reply_take(out, status, NULL, body, body ? strlen(body) : 0);
}

/* ---- requests ---- */

const char *admin_req_method(const admin_req_t *r)
{
    return r->method;
}

const char *admin_req_path(const admin_req_t *r)
{
    return r->path;
}

const char *admin_req_rest(const admin_req_t *r)
{
    return r->rest;
}

const char *admin_req_query(const admin_req_t *r, const char *key)
{
    const char *v = NULL;
    size_t vlen;
    if (!key || MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, key, strlen(key), &v,
                                              &vlen) != MHD_YES)
        return NULL;
    return v ? v : "";
}

const char *admin_req_body(const admin_req_t *r, size_t *len)
{
    if (len)
        *len = r->len;
    return r->body ? r->body : "";
}

/* Does route p match path? Sets *rest to what follows "p/" for a prefix route. */
static bool route_matches(const route_t *rt, const char *path, size_t path_len, const char **rest)
{
    size_t n = rt->path_len;
    if (path_len == n && memcmp(path, rt->path, n) == 0) {
        *rest = "";
        return true;
    }
    if (!(rt->flags & ADMIN_PREFIX) || path_len < n || memcmp(path, rt->path, n) != 0)
        return false;
    if (rt->path[n - 1] == '/') { /* a prefix "/x/" already ends with its separator */
        *rest = path + n;
        return true;
    }
    if (path[n] != '/')
        return false;
    *rest = path + n + 1;
    return true;
}

/* Find the route for (method, path): the routes whose path equals it if any, else the prefix
 * routes with the longest matching path; among those, the one for this method. Returns it, or
 * NULL with *status 404 or 405 (and their methods in allow). */
static const route_t *find_route(const admin_t *a, const char *method, const char *path,
                                 const char **rest, int *status, char *allow, size_t allowlen)
{
    size_t path_len = strlen(path), best_len = 0;
    bool exact = false, any = false;
    const char *r;
    for (size_t i = 0; i < a->nroutes; i++) {
        const route_t *rt = &a->routes[i];
        if (rt->path_len == path_len && strcmp(rt->path, path) == 0)
            exact = true;
        else if (route_matches(rt, path, path_len, &r) && rt->path_len > best_len)
            best_len = rt->path_len;
    }
    const route_t *found = NULL;
    allow[0] = '\0';
    for (size_t i = 0; i < a->nroutes; i++) {
        const route_t *rt = &a->routes[i];
        if (exact ? rt->path_len != path_len || strcmp(rt->path, path) != 0
                  : rt->path_len != best_len || !route_matches(rt, path, path_len, &r))
            continue;
        any = true;
        if (strcmp(rt->method, method) == 0) {
            found = rt;
            *rest = exact ? "" : r;
        }
        size_t used = strlen(allow);
        snprintf(allow + used, allowlen - used, "%s%s%s", used ? ", " : "", rt->method,
                 strcmp(rt->method, "GET") == 0 ? ", HEAD" : "");
    }
    if (!found)
        *status = any ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND;
    return found;
}

/* The bearer token from an Authorization header, or NULL. */
static const char *bearer(const char *h, size_t *len)
{
    if (!h)
        return NULL;
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
        return NULL;
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    *len = n;
    return n ? h : NULL;
}

/* Constant time in the given token's content: every byte of the real token is compared whatever
 * differs first. */
static bool token_ok(admin_t *a, const char *given, size_t glen)
{
    pthread_mutex_lock(&a->token_lock);
    volatile unsigned char diff = glen != a->token_len;
    for (size_t i = 0; i < a->token_len; i++)
        diff |= (unsigned char)(a->token[i] ^ (i < glen ? given[i] : 0));
    bool ok = diff == 0;
    pthread_mutex_unlock(&a->token_lock);
    return ok;
}

static enum MHD_Result send_reply(admin_t *a, struct MHD_Connection *c, admin_reply_t *rep,
                                  const char *allow, bool challenge)
{
    if (rep->status == 0)
        admin_reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "handler gave no reply");
    else if (rep->status < 100 || rep->status > 599)
        admin_reply_error(rep, MHD_HTTP_INTERNAL_SERVER_ERROR, "handler gave status %d",
                          rep->status);
    struct MHD_Response *resp;
    if (rep->body)
        resp = MHD_create_response_from_buffer(rep->len, rep->body, MHD_RESPMEM_MUST_FREE);
    else
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(rep->body);
        return MHD_NO;
    }
    rep->body = NULL; /* the response owns it now */
    char server[64];
    snprintf(server, sizeof(server), "%s/%s", a->role, SHOAL_VERSION);
    bool ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                      rep->content_type ? rep->content_type : "application/json") ==
                  MHD_YES &&
              MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") == MHD_YES &&
              MHD_add_response_header(resp, MHD_HTTP_HEADER_SERVER, server) == MHD_YES &&
              (!allow || MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow) == MHD_YES) &&
              (!challenge || MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                                     "Bearer") == MHD_YES);
    /* A bad header (a content type with a newline) is the handler's bug: close, don't answer. */
    enum MHD_Result rc = ok ? MHD_queue_response(c, (unsigned)rep->status, resp) : MHD_NO;
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result send_error(admin_t *a, struct MHD_Connection *c, int status,
                                  const char *allow, bool challenge, const char *msg,
                                  const char *arg)
{
    admin_reply_t rep = {0};
    admin_reply_error(&rep, status, "%s%s", msg, arg ? arg : "");
    return send_reply(a, c, &rep, allow, challenge);
}

/* The first call for a request: every check that needs no body. */
static enum MHD_Result on_headers(admin_t *a, admin_req_t *r, struct MHD_Connection *c,
                                  const char *url, const char *method)
{
    r->conn = c;
    r->method = method;
    r->path = url;
    r->rest = "";
    size_t n = strnlen(url, ADMIN_MAX_PATH + 1);
    if (r->bad_uri || url[0] != '/' || n > ADMIN_MAX_PATH || strstr(url, ".."))
        return send_error(a, c, MHD_HTTP_BAD_REQUEST, NULL, false, "bad path", NULL);
    int status = 0;
    char allow[ADMIN_MAX_ROUTES * 16];
    const char *route_method = strcmp(method, "HEAD") == 0 ? "GET" : method;
    r->route = find_route(a, route_method, url, &r->rest, &status, allow, sizeof(allow));
    if (!r->route && status == MHD_HTTP_NOT_FOUND)
        return send_error(a, c, status, NULL, false, "no such endpoint: ", url);
    if (!r->route)
        return send_error(a, c, status, allow, false, "method not allowed: ", method);
    if (r->route->flags & ADMIN_WRITE) {
        if (!a->token_file)
            return send_error(a, c, MHD_HTTP_FORBIDDEN, NULL, false,
                              "writes disabled: no --admin-token-file", NULL);
        size_t glen = 0;
        const char *given = bearer(
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION), &glen);
        if (!given || !token_ok(a, given, glen))
            return send_error(a, c, MHD_HTTP_UNAUTHORIZED, NULL, true,
                              given ? "wrong bearer token" : "a bearer token is needed", NULL);
    }
    const char *cl =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl && strtoull(cl, NULL, 10) > ADMIN_MAX_BODY)
        return send_error(a, c, MHD_HTTP_CONTENT_TOO_LARGE, NULL, false, "request body over 1 MiB",
                          NULL);
    return MHD_YES;
}

static enum MHD_Result on_body(admin_req_t *r, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    if (!r->too_big && n > ADMIN_MAX_BODY - r->len) {
        r->too_big = true;
        free(r->body);
        r->body = NULL;
        r->len = r->cap = 0;
    }
    if (r->too_big) {
        r->discarded += n;
        return r->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *body = realloc(r->body, cap);
        if (!body)
            return MHD_NO;
        r->body = body;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    admin_t *a = cls;
    admin_req_t *r = *con_cls;
    if (!r) /* on_uri() ran out of memory */
        return MHD_NO;
    if (!r->headers_done) {
        r->headers_done = true;
        return on_headers(a, r, c, url, method);
    }
    if (*upload_data_size)
        return on_body(r, upload_data, upload_data_size);
    if (r->too_big)
        return send_error(a, c, MHD_HTTP_CONTENT_TOO_LARGE, NULL, false, "request body over 1 MiB",
                          NULL);
    admin_reply_t rep = {0};
    r->route->fn(r->route->arg, r, &rep);
    return send_reply(a, c, &rep, NULL, false);
}

/* Sees the raw URI before libmicrohttpd decodes it; what it returns becomes *con_cls. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    admin_req_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    size_t path_len = strcspn(uri, "?");
    const char *nul = strstr(uri, "%00");
    r->bad_uri = path_len > ADMIN_MAX_PATH || (nul && (size_t)(nul - uri) < path_len);
    return r;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode why)
{
    (void)cls;
    (void)c;
    (void)why;
    admin_req_t *r = *con_cls;
    if (r) {
        free(r->body);
        free(r);
    }
    *con_cls = NULL;
}

/* ---- start ---- */

int admin_start(admin_t *a, char *err, size_t errlen)
{
    if (!a || !a->enabled)
        return 0;
    if (a->started) {
        err_set(err, errlen, "--admin %s: already started", a->listen);
        return -1;
    }
    int fd = socket(a->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        err_set(err, errlen, "--admin %s: socket: %s", a->listen, strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    /* SO_REUSEADDR lets a restart bind over its predecessor's TIME_WAIT connections; a live
     * listener on the port still makes bind() fail. */
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (a->any6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (bind(fd, (const struct sockaddr *)&a->addr, a->addrlen) != 0 ||
        listen(fd, ADMIN_MAX_CONNECTIONS) != 0) {
        int e = errno;
        close(fd);
        err_set(err, errlen, "--admin %s: %s", a->listen,
                e == EADDRINUSE ? "address in use" : strerror(e));
        return -1;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof(bound);
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) == 0)
        a->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    if (a->addr.ss_family == AF_INET6)
        flags |= a->any6 ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;
    a->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, a, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)ADMIN_MAX_CONNECTIONS, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)ADMIN_TIMEOUT_S,
        /* Room for a request line and headers well over ADMIN_MAX_PATH, so an over-long path gets
         * our JSON 400 rather than libmicrohttpd's own 414. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_URI_LOG_CALLBACK,
        on_uri, a, MHD_OPTION_NOTIFY_COMPLETED, on_done, a, MHD_OPTION_END);
    if (!a->daemon) {
        /* The socket is not closed here: libmicrohttpd may already have closed it on its way out,
         * and a second close could hit a descriptor another thread just opened. */
        err_set(err, errlen, "--admin %s: cannot start the HTTP server", a->listen);
        return -1;
    }
    a->started = true;
    return 0;
}
