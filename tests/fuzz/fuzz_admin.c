/* SPDX-License-Identifier: MIT */
/* libFuzzer target for runtime/admin: a real listener on 127.0.0.1, fed over loopback.
 *
 * The first byte picks the mode:
 *   even: the rest is sent as raw bytes (then the write side is shut), so libmicrohttpd's parser,
 *         our URI checks and routing see anything at all;
 *   odd:  a well-formed request is built: the second byte picks the method and the credentials
 *         (none, right, wrong), the rest is "path\nbody" with the path's unsafe bytes
 *         percent-encoded, so the route matcher, path checks, rest, query arguments, the token
 *         check and the JSON handlers are reached on most inputs.
 * Checked: every answer is an HTTP/1.x status line; every application/json body (not for HEAD)
 * parses as JSON and, for an error status, holds a string "error"; in the built mode only
 * statuses the admin gives appear. The path is also fed to admin_reply_error directly and its JSON
 * parsed back. */
#include "admin.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

#define TOKEN   "fuzz-token"
#define WAIT_MS 2000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static admin_t *admin;
static uint16_t port;

/* Echo what the handler sees. */
static void echo(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    (void)arg;
    size_t blen;
    const char *body = admin_req_body(req, &blen);
    const char *q = admin_req_query(req, "q");
    CHECK(body && body[blen] == '\0');
    CHECK(admin_req_path(req)[0] == '/' && !strstr(admin_req_path(req), ".."));
    /* Paths and queries may be any bytes: go through admin_reply_error's scrubbing for them. */
    admin_reply_error(reply, 200, "%s %s rest=%s q=%s len=%zu", admin_req_method(req),
                      admin_req_path(req), admin_req_rest(req), q ? q : "(none)", blen);
}

/* Parse the body as JSON and answer it back, or a 400. */
static void json_in(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    (void)arg;
    size_t blen;
    const char *body = admin_req_body(req, &blen);
    json_error_t jerr;
    json_t *o = json_loadb(body, blen, JSON_REJECT_DUPLICATES, &jerr);
    if (!o) {
        admin_reply_error(reply, 400, "bad JSON: %s", jerr.text);
        return;
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(o);
    admin_reply_take(reply, 200, NULL, text, text ? strlen(text) : 0);
}

static void start(void)
{
    char path[] = "/tmp/fuzz_admin_token.XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, TOKEN "\n", sizeof(TOKEN)) == (ssize_t)sizeof(TOKEN));
    close(fd);
    char err[256];
    admin_config_t cfg = {.listen = "127.0.0.1:0", .token_file = path, .role = "shoal"};
    admin = admin_new(&cfg, err, sizeof(err));
    unlink(path);
    CHECK(admin);
    CHECK(admin_route(admin, "GET", "/healthz", 0, echo, NULL) == 0);
    CHECK(admin_route(admin, "GET", "/api/v1", ADMIN_PREFIX, echo, NULL) == 0);
    CHECK(admin_route(admin, "GET", "/api/v1/swarms", ADMIN_PREFIX, echo, NULL) == 0);
    CHECK(admin_route(admin, "POST", "/api/v1/swarms", ADMIN_PREFIX | ADMIN_WRITE, json_in, NULL) ==
          0);
    CHECK(admin_route(admin, "PUT", "/api/v1/config", ADMIN_WRITE, json_in, NULL) == 0);
    CHECK(admin_route(admin, "DELETE", "/api/v1/config/", ADMIN_PREFIX | ADMIN_WRITE, echo, NULL) ==
          0);
    CHECK(admin_route(admin, "PUT", "/open", 0, json_in, NULL) == 0);
    CHECK(admin_start(admin, err, sizeof(err)) == 0);
    port = admin_port(admin);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Send, shut the write side, read until the server closes, or (idle_ms > 0) until nothing came
 * for idle_ms: libmicrohttpd keeps a half-closed connection with an incomplete or keep-alive
 * request until its timeout. Bounded by WAIT_MS. The socket is reset, not closed, so the server
 * drops its side at once and no TIME_WAIT piles up. Returns the bytes read, malloc'ed and
 * NUL-terminated. */
static char *exchange(const char *raw, size_t len, int idle_ms, size_t *out_len)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    size_t cap = 1 << 16, got = 0, sent = 0;
    char *buf = malloc(cap);
    CHECK(buf);
    bool shut = false;
    long deadline = now_ms() + WAIT_MS, last = now_ms();
    while (now_ms() < deadline && !(idle_ms > 0 && shut && now_ms() - last > idle_ms)) {
        if (sent == len && !shut) {
            shutdown(fd, SHUT_WR);
            shut = true;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < len ? POLLOUT : 0)};
        if (poll(&p, 1, 5) <= 0)
            continue;
        if ((p.revents & POLLOUT) && sent < len) {
            ssize_t w = send(fd, raw + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0)
                sent = len; /* the server closed early: read what it said */
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (got + 4096 > cap) {
                cap *= 2;
                buf = realloc(buf, cap);
                CHECK(buf);
            }
            ssize_t r = recv(fd, buf + got, cap - got - 1, MSG_DONTWAIT);
            if (r <= 0)
                break;
            got += (size_t)r;
            last = now_ms();
        }
    }
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(fd);
    buf[got] = '\0';
    *out_len = got;
    return buf;
}

/* Check every response in buf (a pipelined raw input may get several). */
static void check_responses(const char *buf, size_t len, bool head, bool built)
{
    const char *p = buf, *end = buf + len;
    for (int n = 0; p < end && n < 64; n++) {
        int status;
        const char *hend = strstr(p, "\r\n\r\n");
        if (!hend && !built)
            return; /* cut off by the idle wait */
        CHECK(hend && end - p > 12 && memcmp(p, "HTTP/1.", 7) == 0);
        CHECK(sscanf(p + 9, "%3d", &status) == 1);
        bool json = false;
        long clen = -1;
        for (const char *l = strstr(p, "\r\n"); l && l < hend; l = strstr(l + 2, "\r\n")) {
            if (strncasecmp(l + 2, "Content-Type: application/json", 30) == 0)
                json = true;
            if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
                clen = strtol(l + 17, NULL, 10);
        }
        if (built)
            CHECK(status == 200 || status == 400 || status == 401 || status == 404 ||
                  status == 405 || status == 413);
        const char *body = hend + 4;
        size_t blen = head || clen < 0 ? 0 : (size_t)clen;
        if (clen < 0 || head || body + blen > end)
            return; /* chunked, a HEAD or a cut-off answer: nothing more to check in order */
        if (json) {
            json_t *o = json_loadb(body, blen, JSON_DECODE_ANY, NULL);
            CHECK(o);
            if (status >= 400)
                CHECK(json_is_string(json_object_get(o, "error")));
            json_decref(o);
        } else {
            CHECK(!built); /* everything the admin answers itself is JSON */
        }
        p = body + blen;
    }
}

static const char *const methods[] = {"GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!admin)
        start();
    if (size < 2 || size > 64 * 1024)
        return 0;
    if ((data[0] & 1) == 0) {
        size_t len;
        char *resp = exchange((const char *)data + 1, size - 1, 10, &len);
        /* A HEAD's answer announces a length it does not send, so where one may be in the input
         * only the first status line is checked. */
        bool head = memmem(data + 1, size - 1, "HEAD", 4) != NULL;
        check_responses(resp, len, head, false);
        free(resp);
        return 0;
    }
    const char *method = methods[data[1] % 6];
    unsigned auth = (data[1] / 6) % 3;
    const uint8_t *in = data + 2, *in_end = data + size;
    const uint8_t *nl = memchr(in, '\n', (size_t)(in_end - in));
    const uint8_t *path_end = nl ? nl : in_end;
    const uint8_t *body = nl ? nl + 1 : in_end;
    size_t plen = (size_t)(path_end - in), blen = (size_t)(in_end - body);
    if (plen > 4096)
        plen = 4096; /* encoded, it stays well inside libmicrohttpd's 64 KiB for the headers */

    /* The raw path, also straight into admin_reply_error. */
    char *path = malloc(plen + 1);
    CHECK(path);
    memcpy(path, in, plen);
    path[plen] = '\0';
    admin_reply_t rep = {0};
    admin_reply_error(&rep, 400, "%s", path);
    json_t *o = json_loadb(rep.body, rep.len, 0, NULL);
    CHECK(o && json_is_string(json_object_get(o, "error")));
    CHECK(json_string_length(json_object_get(o, "error")) ==
          (strlen(path) < 1024 ? strlen(path) : 1023));
    json_decref(o);
    free(rep.body);

    /* The request line: unsafe bytes of the path percent-encoded, '%' left alone so bad escapes
     * and %00 come through. */
    size_t cap = 3 * plen + blen + 256;
    char *req = malloc(cap);
    CHECK(req);
    size_t n = (size_t)snprintf(req, cap, "%s ", method);
    if (plen == 0 || path[0] != '/')
        req[n++] = '/';
    for (size_t i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c <= 0x20 || c >= 0x7f || c == '#')
            n += (size_t)snprintf(req + n, cap - n, "%%%02X", c);
        else
            req[n++] = (char)c;
    }
    n += (size_t)snprintf(
        req + n, cap - n,
        " HTTP/1.1\r\nHost: f\r\nConnection: close\r\n%sContent-Length: %zu\r\n\r\n",
        auth == 1   ? "Authorization: Bearer " TOKEN "\r\n"
        : auth == 2 ? "Authorization: Bearer wrong\r\n"
                    : "",
        blen);
    memcpy(req + n, body, blen);
    n += blen;
    size_t len;
    char *resp = exchange(req, n, 0, &len);
    CHECK(len > 0);
    check_responses(resp, len, strcmp(method, "HEAD") == 0, true);
    free(resp);
    free(req);
    free(path);
    return 0;
}
