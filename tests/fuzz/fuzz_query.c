/* SPDX-License-Identifier: MIT */
/* libFuzzer target for proto/query, and proto/httpresp fed with what it decodes.
 *
 * The first byte selects announce (even) or scrape (odd) and a few response options; the rest is
 * the query string. Checked: the decoder's invariants on success, and that every response built
 * from its output (or from its error) is non-empty, fits HTTPRESP_MAX, carries a correct
 * Content-Length, and has a well-formed bencoded body with strictly sorted dictionary keys and,
 * for scrape, exactly one entry per distinct info-hash. */
#include "httpresp.h"
#include "query.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Skip one bencoded value at p; NULL if malformed. Dictionary keys must strictly increase. */
static const char *bskip(const char *p, const char *end, int depth)
{
    if (p >= end || depth > 8)
        return NULL;
    if (*p == 'i') {
        p++;
        if (p < end && *p == '-')
            p++;
        const char *d = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == d || p >= end || *p != 'e' || (*d == '0' && p - d > 1))
            return NULL;
        return p + 1;
    }
    if (*p >= '0' && *p <= '9') {
        size_t n = 0;
        while (p < end && *p >= '0' && *p <= '9')
            n = n * 10 + (size_t)(*p++ - '0');
        if (p >= end || *p != ':' || (size_t)(end - p - 1) < n)
            return NULL;
        return p + 1 + n;
    }
    if (*p == 'l') {
        p++;
        while (p < end && *p != 'e')
            if (!(p = bskip(p, end, depth + 1)))
                return NULL;
        return p < end ? p + 1 : NULL;
    }
    if (*p == 'd') {
        p++;
        const char *prev = NULL;
        size_t prev_len = 0;
        while (p < end && *p != 'e') {
            if (*p < '0' || *p > '9')
                return NULL;
            const char *k = p;
            const char *v = bskip(p, end, depth + 1);
            if (!v)
                return NULL;
            const char *colon = memchr(k, ':', (size_t)(v - k));
            const char *key = colon + 1;
            size_t key_len = (size_t)(v - key);
            if (prev) {
                size_t m = prev_len < key_len ? prev_len : key_len;
                int c = memcmp(prev, key, m);
                if (c > 0 || (c == 0 && prev_len >= key_len))
                    return NULL;
            }
            prev = key;
            prev_len = key_len;
            if (!(p = bskip(v, end, depth + 1)))
                return NULL;
        }
        return p < end ? p + 1 : NULL;
    }
    return NULL;
}

/* Check the head (Content-Length) and that the body is one bencoded value; return the body. */
static const char *check_response(const char *out, size_t n, size_t *body_len)
{
    CHECK(n > 0 && n <= HTTPRESP_MAX);
    CHECK(n > 17 && memcmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    const char *sep = memmem(out, n, "\r\n\r\n", 4);
    CHECK(sep);
    const char *body = sep + 4;
    *body_len = n - (size_t)(body - out);
    const char *cl = memmem(out, (size_t)(sep - out), "\r\nContent-Length: ", 18);
    CHECK(cl);
    CHECK((size_t)strtoul(cl + 18, NULL, 10) == *body_len);
    CHECK(bskip(body, body + *body_len, 0) == body + *body_len);
    return body;
}

static int cmp_hash(const void *a, const void *b)
{
    return memcmp(a, b, SHOAL_HASH_LEN);
}

static void fuzz_announce(uint8_t sel, const char *q, size_t n, char *out)
{
    query_announce_t qa;
    query_err_t err = query_parse_announce(q, n, &qa);
    const char *reason = query_strerror(err);
    CHECK(reason && reason[0]);
    size_t len, body_len;
    if (err != QUERY_OK) {
        len = httpresp_failure(out, HTTPRESP_MAX, reason, sel >> 4, sel & 2);
        check_response(out, len, &body_len);
        return;
    }
    const announce_t *a = &qa.announce;
    CHECK(a->peer.port != 0);
    CHECK(a->numwant >= -1 && a->numwant <= SHOAL_NUMWANT_MAX);
    CHECK(a->event <= ANNOUNCE_STOPPED);

    /* Fake peers made of the decoded bytes: the most a reply can carry. */
    static uint8_t recs[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    size_t want = a->numwant < 0 ? SHOAL_NUMWANT_DEF : (size_t)a->numwant;
    for (size_t i = 0; i < sizeof(recs); i++)
        recs[i] = (uint8_t)(a->info_hash[i % 20] ^ a->peer_id[(i / 20) % 20] ^ (uint8_t)i);
    httpresp_announce_t r = {
        .interval = (uint32_t)a->key,
        .min_interval = (uint32_t)(a->left & 0xffffffff),
        .stats = {(uint32_t)a->uploaded, (uint32_t)a->downloaded, a->key},
        .peers = recs,
        .n_peers = want,
        .family = (sel & 4) ? 6 : 4,
        .compact = qa.compact,
        .keep_alive = sel & 2,
    };
    len = httpresp_announce(out, HTTPRESP_MAX, &r);
    check_response(out, len, &body_len);
}

static void fuzz_scrape(uint8_t sel, const char *q, size_t n, char *out)
{
    static uint8_t hashes[SHOAL_SCRAPE_MAX][SHOAL_HASH_LEN];
    static swarm_stats_t stats[SHOAL_SCRAPE_MAX];
    size_t max = (sel & 0x80) ? SHOAL_SCRAPE_MAX + 1 : (size_t)(sel >> 2) & 0x1f;
    size_t cnt = 0;
    query_err_t err = query_parse_scrape(q, n, hashes, max, &cnt);
    size_t len, body_len;
    CHECK(cnt <= max && cnt <= SHOAL_SCRAPE_MAX);
    if (err != QUERY_OK) {
        len = httpresp_failure(out, HTTPRESP_MAX, query_strerror(err), 0, sel & 2);
        check_response(out, len, &body_len);
        return;
    }
    for (size_t i = 0; i < cnt; i++)
        stats[i] = (swarm_stats_t){(uint32_t)i, UINT32_MAX - (uint32_t)i, (uint32_t)i * 7919u};
    len = httpresp_scrape(out, HTTPRESP_MAX, (const uint8_t(*)[SHOAL_HASH_LEN])hashes, stats, cnt,
                          sel & 2);
    const char *body = check_response(out, len, &body_len);

    /* One entry per distinct hash. */
    static uint8_t sorted[SHOAL_SCRAPE_MAX][SHOAL_HASH_LEN];
    memcpy(sorted, hashes, cnt * SHOAL_HASH_LEN);
    qsort(sorted, cnt, SHOAL_HASH_LEN, cmp_hash);
    size_t distinct = 0;
    for (size_t i = 0; i < cnt; i++)
        distinct += i == 0 || memcmp(sorted[i], sorted[i - 1], SHOAL_HASH_LEN) != 0;
    CHECK(body_len >= 11 && memcmp(body, "d5:filesd", 9) == 0);
    const char *p = body + 9, *end = body + body_len;
    size_t entries = 0;
    while (*p != 'e') {
        CHECK(end - p > 23 && memcmp(p, "20:", 3) == 0);
        p = bskip(p + 23, end, 0);
        CHECK(p);
        entries++;
    }
    CHECK(entries == distinct);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static char out[HTTPRESP_MAX];
    const char *q = (const char *)data + 1;
    if (data[0] & 1)
        fuzz_scrape(data[0], q, size - 1, out);
    else
        fuzz_announce(data[0], q, size - 1, out);
    return 0;
}
