/* SPDX-License-Identifier: MIT */
/* Unit tests for runtime/admin: a real listener on 127.0.0.1 port 0, spoken to with a small
 * HTTP/1.1 client (one request per connection, "Connection: close", every wait bounded by poll).
 * Routes, prefix and rest, query arguments, 400/404/405/413, HEAD, the bearer token (403 without a
 * token file, 401 missing or wrong, 200 right, reload), "off", and bind errors. */
#include "admin.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#define IO_TIMEOUT_MS 5000
#define TOKEN         "s3cret-token"

/* ---- a minimal HTTP/1.1 client ---- */

typedef struct {
    int status;
    char *head; /* status line and headers, NUL-terminated */
    char *body;
    size_t body_len;
} resp_t;

static void resp_free(resp_t *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int connect_to(int family, const char *addr, uint16_t port)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        inet_pton(AF_INET6, addr, &s6->sin6_addr);
        len = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(port);
        inet_pton(AF_INET, addr, &s4->sin_addr);
        len = sizeof(*s4);
    }
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Send raw bytes, then read the whole answer until the server closes; parse the status line.
 * Returns 0, or -1 on a socket error or when IO_TIMEOUT_MS passes. */
static int exchange_at(int family, const char *addr, uint16_t port, const char *raw, size_t rawlen,
                       resp_t *out)
{
    memset(out, 0, sizeof(*out));
    int fd = connect_to(family, addr, port);
    if (fd < 0)
        return -1;
    long deadline = now_ms() + IO_TIMEOUT_MS;
    size_t sent = 0;
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    int rc = -1;
    bool write_failed = false;
    while (buf && now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < rawlen ? POLLOUT : 0)};
        if (poll(&p, 1, 100) < 0 && errno != EINTR)
            break;
        if ((p.revents & POLLOUT) && sent < rawlen && !write_failed) {
            ssize_t w = send(fd, raw + sent, rawlen - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                write_failed = true; /* the server answered early and closed: read the answer */
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (len + 4096 > cap) {
                char *nb = realloc(buf, cap * 2);
                if (!nb)
                    break;
                buf = nb;
                cap *= 2;
            }
            ssize_t r = recv(fd, buf + len, cap - len - 1, MSG_DONTWAIT);
            if (r > 0) {
                len += (size_t)r;
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                rc = 0;
                break;
            }
        }
    }
    close(fd);
    if (rc != 0 || !buf) {
        free(buf);
        return -1;
    }
    buf[len] = '\0';
    char *end = strstr(buf, "\r\n\r\n");
    if (!end || sscanf(buf, "HTTP/1.%*d %d", &out->status) != 1) {
        free(buf);
        return -1;
    }
    size_t head_len = (size_t)(end - buf) + 2;
    out->head = strndup(buf, head_len);
    out->body_len = len - head_len - 2;
    out->body = malloc(out->body_len + 1);
    memcpy(out->body, end + 4, out->body_len);
    out->body[out->body_len] = '\0';
    free(buf);
    return 0;
}

static int exchange(uint16_t port, const char *raw, size_t rawlen, resp_t *out)
{
    return exchange_at(AF_INET, "127.0.0.1", port, raw, rawlen, out);
}

/* A request with optional extra header lines ("K: V\r\n"...) and body. */
static int request(uint16_t port, const char *method, const char *target, const char *headers,
                   const char *body, resp_t *out)
{
    size_t blen = body ? strlen(body) : 0;
    char *raw = NULL;
    int n = asprintf(&raw,
                     "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, target, headers ? headers : "", blen, body ? body : "");
    if (n < 0)
        return -1;
    int rc = exchange(port, raw, (size_t)n, out);
    free(raw);
    return rc;
}

/* The value of header name in r (a static copy), or NULL. */
static const char *header(const resp_t *r, const char *name)
{
    static char value[512];
    size_t nlen = strlen(name);
    for (const char *line = strstr(r->head, "\r\n"); line && line[2];
         line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (strncasecmp(l, name, nlen) == 0 && l[nlen] == ':') {
            const char *v = l + nlen + 1;
            while (*v == ' ')
                v++;
            size_t vlen = strcspn(v, "\r");
            snprintf(value, sizeof(value), "%.*s", (int)vlen, v);
            return value;
        }
    }
    return NULL;
}

/* The string member key of a JSON body ("<null>" when null, NULL when absent or not JSON). */
static const char *json_member(const resp_t *r, const char *key)
{
    static char value[2048];
    json_t *o = json_loadb(r->body, r->body_len, 0, NULL);
    if (!o)
        return NULL;
    json_t *v = json_object_get(o, key);
    const char *res = NULL;
    if (json_is_string(v)) {
        snprintf(value, sizeof(value), "%s", json_string_value(v));
        res = value;
    } else if (json_is_null(v)) {
        res = "<null>";
    } else if (json_is_integer(v)) {
        snprintf(value, sizeof(value), "%lld", (long long)json_integer_value(v));
        res = value;
    }
    json_decref(o);
    return res;
}

static void assert_json_error(const resp_t *r, int status, const char *msg)
{
    assert_int_equal(r->status, status);
    assert_string_equal(header(r, "Content-Type"), "application/json");
    const char *e = json_member(r, "error");
    assert_non_null(e);
    if (msg)
        assert_string_equal(e, msg);
}

/* ---- handlers ---- */

/* Echo what the handler sees as JSON. */
static void echo(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    size_t blen;
    const char *body = admin_req_body(req, &blen);
    const char *q = admin_req_query(req, "q");
    const char *flag = admin_req_query(req, "flag");
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:o,s:o,s:s%,s:I}", "tag", (const char *)arg, "method",
                          admin_req_method(req), "path", admin_req_path(req), "rest",
                          admin_req_rest(req), "q", q ? json_string(q) : json_null(), "flag",
                          flag ? json_string(flag) : json_null(), "body", body, blen, "len",
                          (json_int_t)blen);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    admin_reply_take(reply, 200, NULL, text, text ? strlen(text) : 0);
}

static void plain(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    (void)arg;
    (void)req;
    admin_reply_text(reply, 200, "text/plain; version=0.0.4", "shoal_up 1\n");
}

static void nofill(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    (void)arg;
    (void)req;
    (void)reply;
}

static void teapot(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    (void)arg;
    admin_reply_error(reply, 418, "short and stout: %s", admin_req_rest(req));
}

/* ---- fixture ---- */

typedef struct {
    admin_t *admin;
    uint16_t port;
    char token_path[64];
} fixture_t;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static admin_t *make_admin(const char *listen, const char *token_file)
{
    char err[256] = "";
    admin_config_t cfg = {.listen = listen, .token_file = token_file, .role = "shoal-node"};
    admin_t *a = admin_new(&cfg, err, sizeof(err));
    if (!a)
        print_error("admin_new: %s\n", err);
    return a;
}

static int add_routes(admin_t *a)
{
    int rc = 0;
    rc |= admin_route(a, "GET", "/healthz", 0, echo, "healthz");
    rc |= admin_route(a, "GET", "/metrics", 0, plain, NULL);
    rc |= admin_route(a, "GET", "/api/v1", ADMIN_PREFIX, echo, "v1");
    rc |= admin_route(a, "GET", "/api/v1/swarms", ADMIN_PREFIX, echo, "swarms");
    rc |= admin_route(a, "POST", "/api/v1/swarms", ADMIN_PREFIX | ADMIN_WRITE, echo, "swarms-w");
    rc |= admin_route(a, "GET", "/api/v1/swarms/special", 0, echo, "special");
    rc |= admin_route(a, "PUT", "/api/v1/config", ADMIN_WRITE, echo, "config");
    rc |= admin_route(a, "DELETE", "/api/v1/config", ADMIN_WRITE, echo, "config-del");
    rc |= admin_route(a, "GET", "/nofill", 0, nofill, NULL);
    rc |= admin_route(a, "GET", "/teapot", ADMIN_PREFIX, teapot, NULL);
    return rc;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->token_path, sizeof(f->token_path), "/tmp/test_admin_token.XXXXXX");
    int fd = mkstemp(f->token_path);
    if (fd < 0)
        return -1;
    const char *text = "  " TOKEN " \r\nsecond line ignored\n";
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        return -1;
    close(fd);
    f->admin = make_admin("127.0.0.1:0", f->token_path);
    char err[256];
    if (!f->admin || add_routes(f->admin) != 0 || admin_start(f->admin, err, sizeof(err)) != 0)
        return -1;
    f->port = admin_port(f->admin);
    *state = f;
    return f->port ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    admin_destroy(&f->admin);
    unlink(f->token_path);
    free(f);
    return 0;
}

/* ---- tests ---- */

static void exact_route_gets_handler(void **state)
{
    fixture_t *f = *state;
    resp_t r;
    assert_int_equal(request(f->port, "GET", "/healthz", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type"), "application/json");
    assert_string_equal(header(&r, "Server"), "shoal-node/" SHOAL_VERSION);
    assert_string_equal(json_member(&r, "tag"), "healthz");
    assert_string_equal(json_member(&r, "method"), "GET");
    assert_string_equal(json_member(&r, "path"), "/healthz");
    assert_string_equal(json_member(&r, "rest"), "");
    assert_string_equal(json_member(&r, "q"), "<null>");
    assert_string_equal(json_member(&r, "body"), "");
    resp_free(&r);

    assert_int_equal(request(f->port, "GET", "/metrics", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(header(&r, "Content-Type"), "text/plain; version=0.0.4");
    assert_string_equal(r.body, "shoal_up 1\n");
    resp_free(&r);
}

static void prefix_routes_and_rest(void **state)
{
    fixture_t *f = *state;
    struct {
        const char *target, *tag, *rest;
    } cases[] = {
        {"/api/v1/swarms/abc/def", "swarms", "abc/def"},
        {"/api/v1/swarms", "swarms", ""},
        {"/api/v1/swarms/", "swarms", ""},
        {"/api/v1/swarmsX", "v1", "swarmsX"}, /* "/api/v1/swarms" + 'X' is no match for it */
        {"/api/v1/swarms/special", "special", ""},
        {"/api/v1/swarms/special/x", "swarms", "special/x"},
        {"/api/v1/swarms/%41b%2Fc", "swarms", "Ab/c"}, /* decoded by libmicrohttpd */
        {"/api/v1", "v1", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        resp_t r;
        assert_int_equal(request(f->port, "GET", cases[i].target, NULL, NULL, &r), 0);
        assert_int_equal(r.status, 200);
        assert_string_equal(json_member(&r, "tag"), cases[i].tag);
        assert_string_equal(json_member(&r, "rest"), cases[i].rest);
        resp_free(&r);
    }
}

static void query_arguments(void **state)
{
    fixture_t *f = *state;
    resp_t r;
    assert_int_equal(request(f->port, "GET", "/healthz?x=1&q=a%20b%26c&flag", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_member(&r, "path"), "/healthz");
    assert_string_equal(json_member(&r, "q"), "a b&c");
    assert_string_equal(json_member(&r, "flag"), "");
    resp_free(&r);
    assert_int_equal(request(f->port, "GET", "/healthz?q=a+b", NULL, NULL, &r), 0);
    assert_string_equal(json_member(&r, "q"), "a b");
    resp_free(&r);
}

static void unknown_path_is_404_json(void **state)
{
    fixture_t *f = *state;
    resp_t r;
    assert_int_equal(request(f->port, "GET", "/x", NULL, NULL, &r), 0);
    assert_json_error(&r, 404, "no such endpoint: /x");
    assert_string_equal(r.body, "{\"error\":\"no such endpoint: /x\"}");
    resp_free(&r);
    assert_int_equal(request(f->port, "GET", "/healthz/more", NULL, NULL, &r), 0);
    assert_json_error(&r, 404, "no such endpoint: /healthz/more"); /* not a prefix route */
    resp_free(&r);
    /* A path that is not UTF-8 still gives a JSON error. */
    assert_int_equal(request(f->port, "GET", "/%FF%FE", NULL, NULL, &r), 0);
    assert_json_error(&r, 404, "no such endpoint: /??");
    resp_free(&r);
}

static void wrong_method_is_405_with_allow(void **state)
{
    fixture_t *f = *state;
    resp_t r;
    assert_int_equal(request(f->port, "DELETE", "/healthz", NULL, NULL, &r), 0);
    assert_json_error(&r, 405, NULL);
    assert_string_equal(header(&r, "Allow"), "GET, HEAD");
    resp_free(&r);
    assert_int_equal(request(f->port, "PATCH", "/healthz", NULL, NULL, &r), 0);
    assert_json_error(&r, 405, "method not allowed: PATCH");
    resp_free(&r);
    assert_int_equal(request(f->port, "DELETE", "/api/v1/swarms/x", NULL, NULL, &r), 0);
    assert_json_error(&r, 405, NULL);
    assert_string_equal(header(&r, "Allow"), "GET, HEAD, POST");
    resp_free(&r);
    assert_int_equal(request(f->port, "GET", "/api/v1/config", NULL, NULL, &r), 0);
    assert_json_error(&r, 405, NULL);
    assert_string_equal(header(&r, "Allow"), "PUT, DELETE");
    resp_free(&r);
}

static void bad_paths_are_400(void **state)
{
    fixture_t *f = *state;
    char longpath[1100];
    memset(longpath, 'a', sizeof(longpath) - 1);
    longpath[0] = '/';
    longpath[sizeof(longpath) - 1] = '\0';
    const char *bad[] = {"/api/v1/swarms/../../etc", "/api/v1/swarms/%2e%2e/x", "/healthz%00",
                         "/api/v1/swarms/a%00b", longpath};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        resp_t r;
        assert_int_equal(request(f->port, "GET", bad[i], NULL, NULL, &r), 0);
        assert_json_error(&r, 400, "bad path");
        resp_free(&r);
    }
}

static void head_is_get_without_body(void **state)
{
    fixture_t *f = *state;
    resp_t get, head;
    assert_int_equal(request(f->port, "GET", "/metrics", NULL, NULL, &get), 0);
    assert_int_equal(request(f->port, "HEAD", "/metrics", NULL, NULL, &head), 0);
    assert_int_equal(head.status, 200);
    assert_int_equal(head.body_len, 0);
    assert_string_equal(header(&head, "Content-Type"), "text/plain; version=0.0.4");
    char want[32];
    snprintf(want, sizeof(want), "%zu", get.body_len);
    assert_string_equal(header(&head, "Content-Length"), want);
    resp_free(&get);
    resp_free(&head);
    assert_int_equal(request(f->port, "HEAD", "/healthz", NULL, NULL, &head), 0);
    assert_int_equal(head.status, 200);
    assert_int_equal(head.body_len, 0);
    resp_free(&head);
}

static void handler_without_reply_is_500_and_custom_errors_pass(void **state)
{
    fixture_t *f = *state;
    resp_t r;
    assert_int_equal(request(f->port, "GET", "/nofill", NULL, NULL, &r), 0);
    assert_json_error(&r, 500, "handler gave no reply");
    resp_free(&r);
    assert_int_equal(request(f->port, "GET", "/teapot/%22quoted%22", NULL, NULL, &r), 0);
    assert_json_error(&r, 418, "short and stout: \"quoted\"");
    resp_free(&r);
}

#define AUTH_OK "Authorization: Bearer " TOKEN "\r\n"

static void write_route_needs_right_token(void **state)
{
    fixture_t *f = *state;
    resp_t r;
    assert_int_equal(request(f->port, "POST", "/api/v1/swarms/x", NULL, "{}", &r), 0);
    assert_json_error(&r, 401, NULL);
    assert_string_equal(header(&r, "WWW-Authenticate"), "Bearer");
    resp_free(&r);
    const char *wrong[] = {"Authorization: Bearer nope\r\n",
                           "Authorization: Bearer " TOKEN "x\r\n",
                           "Authorization: Bearer s3cret-toke\r\n",
                           "Authorization: Basic " TOKEN "\r\n",
                           "Authorization: Bearer\r\n",
                           "Authorization: " TOKEN "\r\n"};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        assert_int_equal(request(f->port, "PUT", "/api/v1/config", wrong[i], "{}", &r), 0);
        assert_json_error(&r, 401, NULL);
        assert_string_equal(header(&r, "WWW-Authenticate"), "Bearer");
        assert_null(strstr(r.body, TOKEN));
        resp_free(&r);
    }
    assert_int_equal(request(f->port, "POST", "/api/v1/swarms/x", AUTH_OK, "{\"a\":1}", &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_member(&r, "tag"), "swarms-w");
    assert_string_equal(json_member(&r, "method"), "POST");
    assert_string_equal(json_member(&r, "rest"), "x");
    assert_string_equal(json_member(&r, "body"), "{\"a\":1}");
    resp_free(&r);
    assert_int_equal(request(f->port, "DELETE", "/api/v1/config",
                             "Authorization: bearer   " TOKEN "  \r\n", NULL, &r),
                     0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_member(&r, "tag"), "config-del");
    resp_free(&r);
}

static void body_over_1mib_is_413(void **state)
{
    fixture_t *f = *state;
    resp_t r;
    /* Announced too large: refused before any body byte is sent. */
    char *raw = NULL;
    int n = asprintf(&raw,
                     "PUT /api/v1/config HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" AUTH_OK
                     "Content-Length: %u\r\n\r\n",
                     ADMIN_MAX_BODY + 1);
    assert_true(n > 0);
    assert_int_equal(exchange(f->port, raw, (size_t)n, &r), 0);
    free(raw);
    assert_json_error(&r, 413, NULL);
    resp_free(&r);

    /* Exactly 1 MiB is accepted and reaches the handler whole. */
    char *big = malloc(ADMIN_MAX_BODY + 1);
    assert_non_null(big);
    memset(big, 'b', ADMIN_MAX_BODY);
    big[ADMIN_MAX_BODY] = '\0';
    assert_int_equal(request(f->port, "PUT", "/api/v1/config", AUTH_OK, big, &r), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_member(&r, "len"), "1048576");
    resp_free(&r);

    /* Chunked, no length announced: read, dropped, then 413. */
    size_t chunk = 65536, nchunks = ADMIN_MAX_BODY / chunk + 1;
    size_t cap = 256 + nchunks * (chunk + 16);
    raw = malloc(cap);
    assert_non_null(raw);
    size_t len =
        (size_t)snprintf(raw, cap,
                         "PUT /api/v1/config HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" AUTH_OK
                         "Transfer-Encoding: chunked\r\n\r\n");
    for (size_t i = 0; i < nchunks; i++) {
        len += (size_t)snprintf(raw + len, cap - len, "%zx\r\n", chunk);
        memcpy(raw + len, big, chunk);
        len += chunk;
        len += (size_t)snprintf(raw + len, cap - len, "\r\n");
    }
    len += (size_t)snprintf(raw + len, cap - len, "0\r\n\r\n");
    assert_int_equal(exchange(f->port, raw, len, &r), 0);
    assert_json_error(&r, 413, NULL);
    resp_free(&r);
    free(raw);
    free(big);
}

static void writes_disabled_without_token_file(void **state)
{
    (void)state;
    admin_t *a = make_admin("127.0.0.1:0", "");
    assert_non_null(a);
    assert_int_equal(add_routes(a), 0);
    char err[256];
    assert_int_equal(admin_start(a, err, sizeof(err)), 0);
    resp_t r;
    assert_int_equal(request(admin_port(a), "PUT", "/api/v1/config", AUTH_OK, "{}", &r), 0);
    assert_json_error(&r, 403, "writes disabled: no --admin-token-file");
    resp_free(&r);
    assert_int_equal(request(admin_port(a), "GET", "/healthz", NULL, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_int_equal(admin_reload_token(a, err, sizeof(err)), 0); /* nothing to reload */
    admin_destroy(&a);
    assert_null(a);
}

static void token_reload(void **state)
{
    fixture_t *f = *state;
    char err[256];
    write_file(f->token_path, "new-token\n");
    assert_int_equal(admin_reload_token(f->admin, err, sizeof(err)), 0);
    resp_t r;
    assert_int_equal(request(f->port, "PUT", "/api/v1/config", AUTH_OK, "{}", &r), 0);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    assert_int_equal(
        request(f->port, "PUT", "/api/v1/config", "Authorization: Bearer new-token\r\n", "{}", &r),
        0);
    assert_int_equal(r.status, 200);
    resp_free(&r);

    /* A broken file keeps the old token. */
    write_file(f->token_path, " \n");
    err[0] = '\0';
    assert_int_equal(admin_reload_token(f->admin, err, sizeof(err)), -1);
    assert_non_null(strstr(err, f->token_path));
    assert_non_null(strstr(err, "empty"));
    unlink(f->token_path);
    assert_int_equal(admin_reload_token(f->admin, err, sizeof(err)), -1);
    assert_non_null(strstr(err, f->token_path));
    assert_null(strstr(err, "new-token"));
    assert_int_equal(
        request(f->port, "PUT", "/api/v1/config", "Authorization: Bearer new-token\r\n", "{}", &r),
        0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void off_is_valid_and_opens_nothing(void **state)
{
    (void)state;
    admin_t *a = make_admin("off", NULL);
    assert_non_null(a);
    assert_false(admin_enabled(a));
    assert_int_equal(admin_route(a, "GET", "/healthz", 0, echo, "x"), 0);
    char err[256];
    assert_int_equal(admin_start(a, err, sizeof(err)), 0);
    assert_int_equal(admin_port(a), 0);
    char desc[64];
    admin_describe(a, desc, sizeof(desc));
    assert_string_equal(desc, "off");
    admin_destroy(&a);
    admin_destroy(&a); /* NULL-safe */
    admin_destroy(NULL);
}

static void address_in_use_and_describe(void **state)
{
    fixture_t *f = *state;
    char desc[64], want[64], addr[64], err[256] = "";
    assert_true(admin_enabled(f->admin));
    admin_describe(f->admin, desc, sizeof(desc));
    snprintf(want, sizeof(want), "127.0.0.1:%u", f->port);
    assert_string_equal(desc, want);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", f->port);
    admin_t *b = make_admin(addr, NULL);
    assert_non_null(b);
    assert_int_equal(admin_port(b), 0); /* not started */
    assert_int_equal(admin_start(b, err, sizeof(err)), -1);
    char expect[128];
    snprintf(expect, sizeof(expect), "--admin %s: address in use", addr);
    assert_string_equal(err, expect);
    admin_destroy(&b);
}

static void bad_configurations(void **state)
{
    (void)state;
    const char *bad[] = {"1.2.3.4",       "[::1]",       "::1:80",  "localhost:80",
                         "1.2.3.4:99999", "1.2.3.4:",    "[::1]80", "[nope]:80",
                         ":80",           "1.2.3.4:80x", "",        "1.2.3.4:-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        admin_config_t cfg = {.listen = bad[i], .role = "shoal"};
        assert_null(admin_new(&cfg, err, sizeof(err)));
        assert_non_null(strstr(err, "--admin"));
    }
    char err[256] = "";
    admin_config_t cfg = {.listen = "127.0.0.1:0", .token_file = "/nonexistent/token"};
    assert_null(admin_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, "/nonexistent/token"));
    char path[] = "/tmp/test_admin_empty.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    cfg.token_file = path;
    assert_null(admin_new(&cfg, err, sizeof(err)));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "empty"));
    unlink(path);
    assert_null(admin_new(NULL, err, sizeof(err)));
}

static void route_table_rules(void **state)
{
    (void)state;
    admin_t *a = make_admin("127.0.0.1:0", NULL);
    assert_non_null(a);
    assert_int_equal(admin_route(a, "PATCH", "/x", 0, echo, NULL), -1);
    assert_int_equal(admin_route(a, "HEAD", "/x", 0, echo, NULL), -1);
    assert_int_equal(admin_route(a, "GET", "x", 0, echo, NULL), -1);
    assert_int_equal(admin_route(a, "GET", "/x", 0, NULL, NULL), -1);
    assert_int_equal(admin_route(a, "GET", "/x", 8u, echo, NULL), -1);
    assert_int_equal(admin_route(a, "GET", "/x", 0, echo, NULL), 0);
    assert_int_equal(admin_route(a, "GET", "/x", ADMIN_PREFIX, echo, NULL), -1); /* duplicate */
    assert_int_equal(admin_route(a, "POST", "/x", 0, echo, NULL), 0);
    char path[32];
    for (int i = 2; i < ADMIN_MAX_ROUTES; i++) {
        snprintf(path, sizeof(path), "/r%d", i);
        assert_int_equal(admin_route(a, "GET", path, 0, echo, NULL), 0);
    }
    assert_int_equal(admin_route(a, "GET", "/one-more", 0, echo, NULL), -1);
    admin_destroy(&a);

    a = make_admin("127.0.0.1:0", NULL);
    char err[256];
    assert_int_equal(admin_start(a, err, sizeof(err)), 0);
    assert_int_equal(admin_route(a, "GET", "/late", 0, echo, NULL), -1);
    assert_int_equal(admin_start(a, err, sizeof(err)), -1);
    admin_destroy(&a);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d) && n < 100000)
        n++;
    closedir(d);
    return n;
}

static void destroy_releases_port_and_descriptors(void **state)
{
    (void)state;
    int before = count_fds();
    admin_t *a = make_admin("127.0.0.1:0", NULL);
    assert_non_null(a);
    assert_int_equal(admin_route(a, "GET", "/healthz", 0, echo, "x"), 0);
    char err[256], addr[64];
    assert_int_equal(admin_start(a, err, sizeof(err)), 0);
    uint16_t port = admin_port(a);
    resp_t r;
    assert_int_equal(request(port, "GET", "/healthz", NULL, NULL, &r), 0);
    resp_free(&r);
    admin_destroy(&a);
    assert_int_equal(count_fds(), before);
    /* The same port binds again at once. */
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    a = make_admin(addr, NULL);
    assert_int_equal(admin_start(a, err, sizeof(err)), 0);
    assert_int_equal(admin_port(a), port);
    admin_destroy(&a);
}

/* "[::]:0" serves IPv4 and IPv6 on one socket; "[::1]:0" describes itself in brackets. Skipped
 * where the host has no IPv6 loopback. */
static void ipv6_listeners(void **state)
{
    (void)state;
    int probe = connect_to(AF_INET6, "::1", 1);
    int s = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool have6 = s >= 0 && bind(s, (struct sockaddr *)&s6, sizeof(s6)) == 0;
    if (s >= 0)
        close(s);
    if (probe >= 0)
        close(probe);
    if (!have6)
        skip();
    char err[256], desc[64], want[64];
    admin_t *a = make_admin("[::1]:0", NULL);
    assert_non_null(a);
    assert_int_equal(admin_route(a, "GET", "/healthz", 0, echo, "v6"), 0);
    assert_int_equal(admin_start(a, err, sizeof(err)), 0);
    admin_describe(a, desc, sizeof(desc));
    snprintf(want, sizeof(want), "[::1]:%u", admin_port(a));
    assert_string_equal(desc, want);
    resp_t r;
    const char *req = "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    assert_int_equal(exchange_at(AF_INET6, "::1", admin_port(a), req, strlen(req), &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    admin_destroy(&a);

    a = make_admin("[::]:0", NULL);
    assert_non_null(a);
    assert_int_equal(admin_route(a, "GET", "/healthz", 0, echo, "any"), 0);
    assert_int_equal(admin_start(a, err, sizeof(err)), 0);
    assert_int_equal(exchange_at(AF_INET6, "::1", admin_port(a), req, strlen(req), &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    assert_int_equal(exchange_at(AF_INET, "127.0.0.1", admin_port(a), req, strlen(req), &r), 0);
    assert_int_equal(r.status, 200);
    resp_free(&r);
    admin_destroy(&a);
}

static void reply_helpers(void **state)
{
    (void)state;
    admin_reply_t rep = {0};
    admin_reply_text(&rep, 201, "text/plain", "hello");
    assert_int_equal(rep.status, 201);
    assert_int_equal(rep.len, 5);
    assert_string_equal(rep.body, "hello");
    admin_reply_error(&rep, 400, "bad \"%s\" \xff", "x\n"); /* frees the previous body */
    assert_int_equal(rep.status, 400);
    assert_null(rep.content_type);
    json_t *o = json_loadb(rep.body, rep.len, 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "error")), "bad \"x\n\" ?");
    json_decref(o);
    admin_reply_take(&rep, 204, NULL, NULL, 99);
    assert_null(rep.body);
    assert_int_equal(rep.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(exact_route_gets_handler, setup, teardown),
        cmocka_unit_test_setup_teardown(prefix_routes_and_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(query_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_path_is_404_json, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_method_is_405_with_allow, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_paths_are_400, setup, teardown),
        cmocka_unit_test_setup_teardown(head_is_get_without_body, setup, teardown),
        cmocka_unit_test_setup_teardown(handler_without_reply_is_500_and_custom_errors_pass, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(write_route_needs_right_token, setup, teardown),
        cmocka_unit_test_setup_teardown(body_over_1mib_is_413, setup, teardown),
        cmocka_unit_test(writes_disabled_without_token_file),
        cmocka_unit_test_setup_teardown(token_reload, setup, teardown),
        cmocka_unit_test(off_is_valid_and_opens_nothing),
        cmocka_unit_test_setup_teardown(address_in_use_and_describe, setup, teardown),
        cmocka_unit_test(bad_configurations),
        cmocka_unit_test(route_table_rules),
        cmocka_unit_test(destroy_releases_port_and_descriptors),
        cmocka_unit_test(ipv6_listeners),
        cmocka_unit_test(reply_helpers),
    };
    return cmocka_run_group_tests_name("admin", tests, NULL, NULL);
}
