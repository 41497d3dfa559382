/* SPDX-License-Identifier: MIT */
/* httpresp: whole HTTP/1.1 tracker responses written into one caller buffer.
 *
 * A bencoded body is written first at the start of out, which measures it; the head, whose
 * length depends only on the status and the body length, is then made room for by one memmove
 * and written in front. So nothing is allocated, the body is built once, and a response fits
 * exactly when head + body <= cap. Invariant: nothing is ever written at or past out + cap. */
#include "httpresp.h"

#include "bencode.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>

/* Largest head of a 200 (Content-Length below 100000), a scrape's "d5:filesd" + "ee", and one
 * scrape entry "20:<hash>d8:completei<u32>e10:downloadedi<u32>e10:incompletei<u32>ee". */
#define HEAD_200_MAX     92
#define SCRAPE_FRAME     11
#define SCRAPE_ENTRY_MAX 97
_Static_assert(HTTPRESP_MAX >= HEAD_200_MAX + SCRAPE_FRAME + SHOAL_SCRAPE_MAX * SCRAPE_ENTRY_MAX,
               "HTTPRESP_MAX must hold the largest scrape response");

typedef struct {
    int code;
    const char *line; /* whole status line, with the 405's Allow header after it */
} status_t;

static const status_t statuses[] = {
    {200, "HTTP/1.1 200 OK\r\n"},
    {400, "HTTP/1.1 400 Bad Request\r\n"},
    {404, "HTTP/1.1 404 Not Found\r\n"},
    {405, "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\n"},
    {431, "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
    {500, "HTTP/1.1 500 Internal Server Error\r\n"},
    {503, "HTTP/1.1 503 Service Unavailable\r\n"},
    {505, "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
};

static const char hdr_type_len[] = "Content-Type: text/plain\r\nContent-Length: ";
static const char hdr_keep[] = "\r\nConnection: keep-alive\r\n\r\n";
static const char hdr_close[] = "\r\nConnection: close\r\n\r\n";

static const status_t *find_status(int code)
{
    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        if (statuses[i].code == code)
            return &statuses[i];
    }
    return NULL;
}

/* The head for a body of blen bytes, built in a small stack buffer (well under 160 bytes). */
typedef struct {
    char buf[192];
    size_t len;
} head_t;

static void append(head_t *h, const char *s, size_t n)
{
    memcpy(h->buf + h->len, s, n);
    h->len += n;
}

static void make_head(head_t *h, const status_t *st, size_t blen, bool keep_alive)
{
    h->len = 0;
    append(h, st->line, strlen(st->line));
    append(h, hdr_type_len, sizeof(hdr_type_len) - 1);
    char digits[24];
    char *end = digits + sizeof(digits);
    char *p = end;
    do {
        *--p = (char)('0' + blen % 10);
        blen /= 10;
    } while (blen);
    append(h, p, (size_t)(end - p));
    if (keep_alive)
        append(h, hdr_keep, sizeof(hdr_keep) - 1);
    else
        append(h, hdr_close, sizeof(hdr_close) - 1);
}

/* out[0..blen) holds the body: slide it behind a 200 head. Returns the total, or 0. */
static size_t finish_200(char *out, size_t cap, size_t blen, bool keep_alive)
{
    if (blen == 0)
        return 0;
    head_t h;
    make_head(&h, &statuses[0], blen, keep_alive);
    if (h.len > cap - blen)
        return 0;
    memmove(out + h.len, out, blen);
    memcpy(out, h.buf, h.len);
    return h.len + blen;
}

static void peer_dict(bencode_t *b, const uint8_t *rec, int af)
{
    char text[INET6_ADDRSTRLEN];
    size_t alen = af == AF_INET ? 4 : 16;
    if (!inet_ntop(af, rec, text, sizeof(text)))
        text[0] = '\0'; /* cannot fail for these sizes; keeps the body well-formed anyway */
    unsigned port = (unsigned)rec[alen] << 8 | rec[alen + 1];
    bencode_dict(b);
    bencode_kv_str(b, "ip", text, strlen(text));
    bencode_kv_int(b, "port", port);
    bencode_end(b);
}

size_t httpresp_announce(char *out, size_t cap, const httpresp_announce_t *a)
{
    size_t n = a->n_peers;
    if (a->family != 4 && a->family != 6 && n > 0)
        return 0;
    size_t rec_len = a->family == 6 ? SHOAL_PEER6_LEN : SHOAL_PEER4_LEN;
    if (n > cap / rec_len) /* cannot fit, and n * rec_len below cannot overflow */
        return 0;

    bencode_t b;
    bencode_init(&b, out, cap);
    bencode_dict(&b);
    bencode_kv_int(&b, "complete", a->stats.seeders);
    bencode_kv_int(&b, "downloaded", a->stats.downloaded);
    bencode_kv_int(&b, "incomplete", a->stats.leechers);
    bencode_kv_int(&b, "interval", a->interval);
    bencode_kv_int(&b, "min interval", a->min_interval);
    if (a->compact) {
        bool v6 = a->family == 6;
        bencode_kv_str(&b, "peers", a->peers, v6 ? 0 : n * rec_len);
        bencode_kv_str(&b, "peers6", a->peers, v6 ? n * rec_len : 0);
    } else {
        /* BEP 3 dictionary model: every peer, whatever its family, in one "peers" list. */
        int af = a->family == 6 ? AF_INET6 : AF_INET;
        bencode_cstr(&b, "peers");
        bencode_list(&b);
        for (size_t i = 0; i < n && !b.overflow; i++)
            peer_dict(&b, a->peers + i * rec_len, af);
        bencode_end(&b);
    }
    bencode_end(&b);
    return finish_200(out, cap, bencode_done(&b), a->keep_alive);
}

/* Stable bottom-up merge sort of idx[0..n) by the hashes they point at. */
static void sort_by_hash(uint16_t *idx, uint16_t *tmp, size_t n,
                         const uint8_t (*hashes)[SHOAL_HASH_LEN])
{
    for (size_t w = 1; w < n; w *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * w) {
            size_t mid = lo + w < n ? lo + w : n;
            size_t hi = lo + 2 * w < n ? lo + 2 * w : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                if (memcmp(hashes[idx[j]], hashes[idx[i]], SHOAL_HASH_LEN) < 0)
                    tmp[k++] = idx[j++];
                else
                    tmp[k++] = idx[i++];
            }
            while (i < mid)
                tmp[k++] = idx[i++];
            while (j < hi)
                tmp[k++] = idx[j++];
        }
        memcpy(idx, tmp, n * sizeof(idx[0]));
    }
}

size_t httpresp_scrape(char *out, size_t cap, const uint8_t (*hashes)[SHOAL_HASH_LEN],
                       const swarm_stats_t *stats, size_t n, bool keep_alive)
{
    if (n > SHOAL_SCRAPE_MAX)
        return 0;
    uint16_t idx[SHOAL_SCRAPE_MAX], tmp[SHOAL_SCRAPE_MAX];
    for (size_t i = 0; i < n; i++)
        idx[i] = (uint16_t)i;
    sort_by_hash(idx, tmp, n, hashes);

    bencode_t b;
    bencode_init(&b, out, cap);
    bencode_dict(&b);
    bencode_cstr(&b, "files");
    bencode_dict(&b);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *h = hashes[idx[i]];
        /* Stable sort: the first of equal hashes is the one kept. */
        if (i > 0 && memcmp(h, hashes[idx[i - 1]], SHOAL_HASH_LEN) == 0)
            continue;
        const swarm_stats_t *s = &stats[idx[i]];
        bencode_str(&b, h, SHOAL_HASH_LEN);
        bencode_dict(&b);
        bencode_kv_int(&b, "complete", s->seeders);
        bencode_kv_int(&b, "downloaded", s->downloaded);
        bencode_kv_int(&b, "incomplete", s->leechers);
        bencode_end(&b);
    }
    bencode_end(&b);
    bencode_end(&b);
    return finish_200(out, cap, bencode_done(&b), keep_alive);
}

size_t httpresp_failure(char *out, size_t cap, const char *reason, uint32_t retry_in,
                        bool keep_alive)
{
    bencode_t b;
    bencode_init(&b, out, cap);
    bencode_dict(&b);
    bencode_kv_str(&b, "failure reason", reason ? reason : "", reason ? strlen(reason) : 0);
    if (retry_in > 0)
        bencode_kv_int(&b, "retry in", retry_in);
    bencode_end(&b);
    return finish_200(out, cap, bencode_done(&b), keep_alive);
}

size_t httpresp_status(char *out, size_t cap, int status, const char *body, bool keep_alive)
{
    const status_t *st = find_status(status);
    if (!st)
        return 0;
    size_t blen = body ? strlen(body) : 0;
    head_t h;
    make_head(&h, st, blen, keep_alive);
    if (h.len > cap || blen > cap - h.len)
        return 0;
    memcpy(out, h.buf, h.len);
    if (blen)
        memcpy(out + h.len, body, blen);
    return h.len + blen;
}
