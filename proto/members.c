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

members_advert_t members_split(const char *adv, char *ep, char *key)
{
    size_t n = strnlen(adv, PARTITION_ENDPOINT_MAX - 1);
    const char *bar = memchr(adv, '|', n);
    size_t eplen = bar ? (size_t)(bar - adv) : n;
    memcpy(ep, adv, eplen);
    ep[eplen] = '\0';
    key[0] = '\0';
    if (!bar)
        return MEMBERS_PLAIN;
    const size_t tag = sizeof(MEMBERS_CURVE_TAG) - 1;
    size_t rest = n - eplen;
    if (rest != tag + MEMBERS_CURVE_KEY_LEN || memcmp(bar, MEMBERS_CURVE_TAG, tag) != 0 ||
        !z85_key(bar + tag, MEMBERS_CURVE_KEY_LEN))
        return MEMBERS_BAD_KEY;
    memcpy(key, bar + tag, MEMBERS_CURVE_KEY_LEN);
    key[MEMBERS_CURVE_KEY_LEN] = '\0';
    return MEMBERS_CURVE;
}

int members_join(const char *ep, const char *key, char *out, size_t outlen)
{
    if (!key || !*key) {
        int k = snprintf(out, outlen, "%s", ep);
        return k < 0 || (size_t)k >= outlen ? -1 : 0;
    }
    if (!z85_key(key, strlen(key)) || strchr(ep, '|'))
        return -1;
    int k = snprintf(out, outlen, "%s%s%s", ep, MEMBERS_CURVE_TAG, key);
    return k < 0 || (size_t)k >= outlen ? -1 : 0;
}
