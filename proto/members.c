/* SPDX-License-Identifier: MIT */
/* members: static list parsing, id and endpoint rules, and the member-set epoch (members.h). */
#include "members.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(sizeof(MEMBERS_EPOCH_KEY) - 1 == crypto_shorthash_KEYBYTES, "16-byte key");

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

bool members_valid_id(const char *id, size_t len)
{
    if (len == 0 || len >= PARTITION_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (c <= ' ' || c == '=' || c == ',' || c == 0x7f)
            return false;
    }
    return true;
}

bool members_valid_endpoint(const char *ep, size_t len)
{
    if (len == 0 || len >= PARTITION_ENDPOINT_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)ep[i];
        if (c <= ' ' || c == ',' || c == 0x7f)
            return false;
    }
    return true;
}

static int cmp_member_ptr(const void *a, const void *b)
{
    const partition_member_t *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

uint64_t members_epoch(const partition_member_t *members, size_t n)
{
    const partition_member_t **sorted = malloc((n ? n : 1) * sizeof(*sorted));
    if (!sorted)
        return 0;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        sorted[i] = &members[i];
        total += strnlen(members[i].id, PARTITION_ID_MAX) +
                 strnlen(members[i].endpoint, PARTITION_ENDPOINT_MAX) + 2;
    }
    qsort(sorted, n, sizeof(*sorted), cmp_member_ptr);
    uint8_t *buf = malloc(total ? total : 1);
    if (!buf) {
        free(sorted);
        return 0;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t a = strnlen(sorted[i]->id, PARTITION_ID_MAX);
        size_t b = strnlen(sorted[i]->endpoint, PARTITION_ENDPOINT_MAX);
        memcpy(buf + off, sorted[i]->id, a);
        buf[off + a] = 0;
        off += a + 1;
        memcpy(buf + off, sorted[i]->endpoint, b);
        buf[off + b] = 0;
        off += b + 1;
    }
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, buf, off, (const unsigned char *)MEMBERS_EPOCH_KEY);
    free(buf);
    free(sorted);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | out[i];
    return v ? v : 1;
}

int members_parse(const char *list, partition_member_t *out, size_t max, size_t *n, char *err,
                  size_t errlen)
{
    *n = 0;
    const char *p = list ? list : "";
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *last = end;
        while (last > p && (last[-1] == ' ' || last[-1] == '\t'))
            last--;
        if (last == p) {
            seterr(err, errlen,
                   *n == 0 && *end == '\0' ? "empty member list" : "empty item in the member list");
            return -1;
        }
        const char *eq = memchr(p, '=', (size_t)(last - p));
        if (!eq) {
            seterr(err, errlen, "'%.*s' is not ID=ENDPOINT", (int)(last - p), p);
            return -1;
        }
        size_t idlen = (size_t)(eq - p), eplen = (size_t)(last - eq - 1);
        if (!members_valid_id(p, idlen)) {
            seterr(err, errlen, "bad member id '%.*s' (1..%d bytes, no spaces, '=' or ',')",
                   (int)idlen, p, PARTITION_ID_MAX - 1);
            return -1;
        }
        if (!members_valid_endpoint(eq + 1, eplen)) {
            seterr(err, errlen, "bad endpoint for '%.*s' (1..%d bytes, no spaces)", (int)idlen, p,
                   PARTITION_ENDPOINT_MAX - 1);
            return -1;
        }
        if (*n >= max) {
            seterr(err, errlen, "more than %zu members", max);
            return -1;
        }
        partition_member_t *m = &out[*n];
        memset(m, 0, sizeof(*m));
        memcpy(m->id, p, idlen);
        memcpy(m->endpoint, eq + 1, eplen);
        for (size_t i = 0; i < *n; i++) {
            if (strcmp(out[i].id, m->id) == 0) {
                seterr(err, errlen, "member id '%s' appears twice", m->id);
                return -1;
            }
        }
        (*n)++;
        if (*end == '\0')
            return 0;
        p = end + 1;
    }
}

/* Z85's alphabet (ZeroMQ RFC 32). */
static bool z85_key(const char *k, size_t len)
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   ".-:+=^!/*?&<>()[]{}@%$#";
    if (len != MEMBERS_CURVE_KEY_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (k[i] == '\0' || !strchr(alphabet, k[i]))
            return false;
    }
    return true;
}

/* The port of a tcp endpoint: the digits after its last ':' (1..65535, no sign, no leading zero);
 * its offset in *at. Returns -1 if there is none ("*", a name, ipc://). */
static long endpoint_port(const char *ep, size_t len, size_t *at)
{
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++) {
        if (ep[i] == ':')
            colon = ep + i;
    }
    if (!colon || colon + 1 == ep + len || colon[1] == '0' || len - (size_t)(colon + 1 - ep) > 5)
        return -1;
    long port = 0;
    for (const char *c = colon + 1; c < ep + len; c++) {
        if (*c < '0' || *c > '9')
            return -1;
        port = port * 10 + (*c - '0');
    }
    *at = (size_t)(colon + 1 - ep);
    return port <= 65535 ? port : -1;
}

/* Whether workers sockets from ep's port on all have a port. */
static bool workers_fit(const char *ep, size_t len, unsigned workers)
{
    size_t at;
    if (workers < 1 || workers > MEMBERS_WORKERS_MAX)
        return false;
    long port = workers > 1 ? endpoint_port(ep, len, &at) : 0;
    return port >= 0 && port + (long)workers - 1 <= 65535;
}

/* Read "workers=N" from t[0, len): N decimal, 1..MEMBERS_WORKERS_MAX, no leading zero. */
static bool parse_workers(const char *t, size_t len, unsigned *out)
{
    const size_t tag = sizeof(MEMBERS_WORKERS_TAG) - 2; /* without the '|' */
    if (len <= tag || len > tag + 4 || memcmp(t, &MEMBERS_WORKERS_TAG[1], tag) != 0 ||
        t[tag] == '0')
        return false;
    unsigned n = 0;
    for (size_t i = tag; i < len; i++) {
        if (t[i] < '0' || t[i] > '9')
            return false;
        n = n * 10 + (unsigned)(t[i] - '0');
    }
    if (n > MEMBERS_WORKERS_MAX)
        return false;
    *out = n;
    return true;
}

int members_split(const char *adv, members_advert_t *out)
{
    size_t n = strnlen(adv, PARTITION_ENDPOINT_MAX - 1);
    const char *bar = memchr(adv, '|', n);
    size_t eplen = bar ? (size_t)(bar - adv) : n;
    memcpy(out->endpoint, adv, eplen);
    out->endpoint[eplen] = '\0';
    out->key[0] = '\0';
    out->workers = 1;
    if (!bar)
        return 0;
    /* The tags: at most "|workers=N" then at most "|curve=KEY", each once. */
    const char *p = bar, *end = adv + n;
    unsigned workers = 1;
    const char *key = NULL;
    while (p < end) {
        const char *next = memchr(p + 1, '|', (size_t)(end - p - 1));
        if (!next)
            next = end;
        size_t len = (size_t)(next - p - 1);
        const size_t ctag = sizeof(MEMBERS_CURVE_TAG) - 2;
        if (p == bar && parse_workers(p + 1, len, &workers)) {
            /* the first tag only */
        } else if (!key && len == ctag + MEMBERS_CURVE_KEY_LEN &&
                   memcmp(p + 1, &MEMBERS_CURVE_TAG[1], ctag) == 0 &&
                   z85_key(p + 1 + ctag, MEMBERS_CURVE_KEY_LEN)) {
            key = p + 1 + ctag;
        } else {
            return -1;
        }
        p = next;
    }
    if (!workers_fit(adv, eplen, workers))
        return -1;
    out->workers = workers;
    if (key) {
        memcpy(out->key, key, MEMBERS_CURVE_KEY_LEN);
        out->key[MEMBERS_CURVE_KEY_LEN] = '\0';
    }
    return 0;
}

int members_join(const members_advert_t *a, char *out, size_t outlen)
{
    size_t eplen = strnlen(a->endpoint, sizeof(a->endpoint));
    if (eplen == sizeof(a->endpoint) || memchr(a->endpoint, '|', eplen) ||
        !workers_fit(a->endpoint, eplen, a->workers) ||
        (a->key[0] && !z85_key(a->key, strnlen(a->key, sizeof(a->key)))))
        return -1;
    char wtag[sizeof(MEMBERS_WORKERS_TAG) + 8] = "";
    if (a->workers > 1)
        snprintf(wtag, sizeof(wtag), "%s%u", MEMBERS_WORKERS_TAG, a->workers);
    int k = snprintf(out, outlen, "%s%s%s%s", a->endpoint, wtag, a->key[0] ? MEMBERS_CURVE_TAG : "",
                     a->key);
    return k < 0 || (size_t)k >= outlen ? -1 : 0;
}

int members_worker_endpoint(const char *ep, unsigned i, char *out, size_t outlen)
{
    size_t at, len = strlen(ep);
    long port = endpoint_port(ep, len, &at);
    if (port < 0 || port + (long)i > 65535)
        return -1;
    int k = snprintf(out, outlen, "%.*s%ld", (int)at, ep, port + (long)i);
    return k < 0 || (size_t)k >= outlen ? -1 : 0;
}
