/* SPDX-License-Identifier: MIT */
/* bencode: a bounded BEP 3 writer into a caller buffer.
 *
 * Invariant: len <= cap at all times, and each call writes its whole item or nothing; the first
 * item that does not fit sets overflow, after which nothing is written again. */
#include "bencode.h"

#include <string.h>

/* Room for one item of n bytes; sets overflow if there is none. */
static bool room(bencode_t *b, size_t n)
{
    if (b->overflow)
        return false;
    if (n > b->cap - b->len) {
        b->overflow = true;
        return false;
    }
    return true;
}

/* Decimal digits of v, written backwards ending at end; returns the first digit. */
static char *utoa_back(char *end, uint64_t v)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static void put(bencode_t *b, const void *s, size_t n)
{
    if (room(b, n)) {
        memcpy(b->buf + b->len, s, n);
        b->len += n;
    }
}

void bencode_init(bencode_t *b, char *buf, size_t cap)
{
    b->buf = buf;
    b->cap = buf ? cap : 0;
    b->len = 0;
    b->overflow = false;
}

void bencode_dict(bencode_t *b)
{
    put(b, "d", 1);
}

void bencode_list(bencode_t *b)
{
    put(b, "l", 1);
}

void bencode_end(bencode_t *b)
{
    put(b, "e", 1);
}

void bencode_int(bencode_t *b, int64_t v)
{
    char tmp[24]; /* "i" + "-" + 19 digits + "e" */
    char *end = tmp + sizeof(tmp);
    *--end = 'e';
    /* The magnitude in unsigned arithmetic, so INT64_MIN does not overflow. */
    uint64_t mag = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    char *p = utoa_back(end, mag);
    if (v < 0)
        *--p = '-';
    *--p = 'i';
    put(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void bencode_str(bencode_t *b, const void *s, size_t len)
{
    char tmp[24];
    char *end = tmp + sizeof(tmp);
    *--end = ':';
    char *p = utoa_back(end, len);
    size_t plen = (size_t)(tmp + sizeof(tmp) - p);
    if (len > SIZE_MAX - plen) {
        b->overflow = true;
        return;
    }
    if (!room(b, plen + len))
        return;
    memcpy(b->buf + b->len, p, plen);
    if (len)
        memcpy(b->buf + b->len + plen, s, len);
    b->len += plen + len;
}

void bencode_cstr(bencode_t *b, const char *s)
{
    bencode_str(b, s, strlen(s));
}

void bencode_kv_int(bencode_t *b, const char *key, int64_t v)
{
    bencode_cstr(b, key);
    bencode_int(b, v);
}

void bencode_kv_str(bencode_t *b, const char *key, const void *s, size_t len)
{
    bencode_cstr(b, key);
    bencode_str(b, s, len);
}

size_t bencode_done(const bencode_t *b)
{
    return b->overflow ? 0 : b->len;
}
