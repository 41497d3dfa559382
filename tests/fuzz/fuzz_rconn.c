/* SPDX-License-Identifier: MIT */
/* fuzz_rconn: arbitrary bytes as a --redis URL (runtime/rconn.c, runtime/redact.c), up to the
 * first NUL (redis:// and redis-sentinel://). Checked beyond "no crash, no leak, no undefined
 * behaviour":
 *   - rconn_redact() always terminates its output and never writes past it;
 *   - a URL that parses: its redacted form (both rconn_redact() and the parsed field) is the URL
 *     with exactly the password's bytes replaced by "***" (control characters shown as '?'), so
 *     no byte of the password is in it;
 *   - with a password file, a URL that also has a password is refused;
 *   - a URL that does not parse: its error text does not hold the would-be password when that is
 *     a run of 8 or more upper-case hex digits found nowhere else in the URL (a run no fixed
 *     message text has). */
#include "rconn.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

/* The text rconn_redact() shows for [s, s + n): control characters as '?'. */
static size_t shown(const char *s, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    return n;
}

static bool is_upper_hex_run(const char *s, size_t n)
{
    if (n < 8)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

/* Whether [r, r + n) occurs in url anywhere but at r itself. */
static bool occurs_elsewhere(const char *url, const char *r, size_t n)
{
    size_t len = strlen(url);
    for (size_t i = 0; i + n <= len; i++)
        if (url + i != r && memcmp(url + i, r, n) == 0)
            return true;
    return false;
}

/* Does the NUL-terminated hay contain [r, r + n)? */
static bool contains(const char *hay, const char *r, size_t n)
{
    size_t len = strlen(hay);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(hay + i, r, n) == 0)
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024)
        return 0;
    char url[1025];
    memcpy(url, data, size);
    url[size] = '\0';

    /* Bounded output: a small buffer is filled and terminated, never overrun. */
    char small[9];
    memset(small, 'Z', sizeof(small));
    rconn_redact(url, small, 8);
    CHECK(memchr(small, '\0', 8) != NULL && small[8] == 'Z');
    char red[2 * 1024 + 8];
    rconn_redact(url, red, sizeof(red));

    rconn_url_t u;
    char err[512] = "";
    /* With a password file: no password from the URL, the file's path kept. */
    if (rconn_parse_auth(url, "/dev/null", &u, err, sizeof(err)) == 0)
        CHECK(u.password[0] == '\0' && strcmp(u.password_file, "/dev/null") == 0);
    err[0] = '\0';
    if (rconn_parse(url, &u, err, sizeof(err)) == 0) {
        CHECK(strcmp(u.redacted, red) == 0);
        CHECK(u.port >= 1 && u.port <= 65535);
        /* A server, or 1..RCONN_SENTINELS_MAX sentinels and a master's name. */
        CHECK((u.host[0] != '\0') != (u.n_sentinels > 0));
        CHECK(u.n_sentinels <= RCONN_SENTINELS_MAX);
        for (size_t i = 0; i < u.n_sentinels; i++)
            CHECK(u.sentinels[i].host[0] != '\0' && u.sentinels[i].port >= 1 &&
                  u.sentinels[i].port <= 65535);
        CHECK((u.n_sentinels > 0) == (u.master[0] != '\0'));
        const char *scheme_end = strstr(url, "://");
        const char *at = strrchr(scheme_end + 3, '@');
        if (at) {
            size_t n = strlen(u.password);
            const char *pw = at - n;
            CHECK(pw > scheme_end + 2 && pw[-1] == ':' && memcmp(pw, u.password, n) == 0);
            char want[2 * 1024 + 8];
            size_t k = shown(url, (size_t)(pw - url), want);
            memcpy(want + k, "***", 3);
            k += 3;
            k += shown(at, strlen(at), want + k);
            want[k] = '\0';
            CHECK(strcmp(want, red) == 0);
            /* With a password file, the URL's password is one too many. */
            rconn_url_t f;
            if (n > 0)
                CHECK(rconn_parse_auth(url, "/dev/null", &f, err, sizeof(err)) == -1);
        } else {
            char want[1025];
            want[shown(url, strlen(url), want)] = '\0';
            CHECK(strcmp(want, red) == 0);
        }
        return 0;
    }
    /* The would-be password: after the first ':' of the credentials up to the last '@'. */
    const char *scheme_end = strstr(url, "://");
    const char *p = scheme_end ? scheme_end + 3 : url;
    const char *at = strrchr(p, '@');
    if (!at)
        return 0;
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (!colon)
        return 0;
    const char *r = colon + 1;
    size_t n = (size_t)(at - r);
    if (is_upper_hex_run(r, n) && !occurs_elsewhere(url, r, n))
        CHECK(!contains(err, r, n) && !contains(red, r, n));
    return 0;
}
