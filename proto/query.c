/* SPDX-License-Identifier: MIT */
/* query: announce and scrape query strings, decoded in one left-to-right pass.
 *
 * Keys and values are percent-decoded on the fly by a cursor, so nothing is copied except into
 * the fixed-size fields of the result. The first problem met from the left (a bad escape
 * anywhere, or a bad value of a known parameter) is the one reported; only after the whole
 * string has been read are missing parameters reported, in the order info_hash, peer_id, port,
 * left. Invariant: on QUERY_OK every required field was present and valid. */
#include "query.h"

#include "hex.h"

#include <string.h>

#define KEY_MAX_LEN 64

/* A percent-decoding reader over s[0..n). */
typedef struct {
    const char *p;
    const char *end;
} cursor_t;

#define CUR_END (-1)
#define CUR_BAD (-2)

/* The next decoded byte, CUR_END at the end, or CUR_BAD for '%' not followed by two hex
 * digits. */
static inline int cur_next(cursor_t *c)
{
    if (c->p == c->end)
        return CUR_END;
    char ch = *c->p++;
    if (ch == '+')
        return ' ';
    if (ch != '%')
        return (unsigned char)ch;
    if (c->end - c->p < 2)
        return CUR_BAD;
    int hi = hex_digit(c->p[0]);
    int lo = hex_digit(c->p[1]);
    if ((hi | lo) < 0)
        return CUR_BAD;
    c->p += 2;
    return hi << 4 | lo;
}

/* True if every '%' in s[0..n) starts a valid escape. */
static bool escapes_ok(const char *s, size_t n)
{
    const char *end = s + n;
    while ((s = memchr(s, '%', (size_t)(end - s))) != NULL) {
        if (end - s < 3 || hex_digit(s[1]) < 0 || hex_digit(s[2]) < 0)
            return false;
        s += 3;
    }
    return true;
}

/* Decode s[0..n) into out[0..cap). Returns the full decoded length (which may exceed cap; only
 * cap bytes are stored), or -1 on a bad escape. */
static long decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    cursor_t c = {s, s + n};
    long len = 0;
    int b;
    while ((b = cur_next(&c)) >= 0) {
        if ((size_t)len < cap)
            out[len] = (uint8_t)b;
        len++;
    }
    return b == CUR_BAD ? -1 : len;
}

typedef enum { NUM_OK, NUM_BAD, NUM_ESCAPE, NUM_OVERFLOW } num_res_t;

/* A non-empty run of decimal digits into *out. On NUM_OVERFLOW the rest was still digits. */
static num_res_t parse_u64(const char *s, size_t n, uint64_t *out)
{
    cursor_t c = {s, s + n};
    uint64_t v = 0;
    bool any = false, over = false;
    int b;
    while ((b = cur_next(&c)) >= 0) {
        if (b < '0' || b > '9')
            return escapes_ok(c.p, (size_t)(c.end - c.p)) ? NUM_BAD : NUM_ESCAPE;
        unsigned d = (unsigned)(b - '0');
        if (v > (UINT64_MAX - d) / 10)
            over = true;
        else
            v = v * 10 + d;
        any = true;
    }
    if (b == CUR_BAD)
        return NUM_ESCAPE;
    if (!any)
        return NUM_BAD;
    *out = v;
    return over ? NUM_OVERFLOW : NUM_OK;
}

/* A bad value of a parameter: reported as ESCAPE if the value also holds a bad escape, as
 * escapes are checked first wherever they are. */
static query_err_t value_err(const char *v, size_t n, query_err_t err)
{
    return escapes_ok(v, n) ? err : QUERY_ERR_ESCAPE;
}

/* decoded value == lit (NUL-terminated, no escapes needed to spell it). */
static bool value_is(const char *v, size_t n, const char *lit)
{
    cursor_t c = {v, v + n};
    for (; *lit; lit++) {
        if (cur_next(&c) != (unsigned char)*lit)
            return false;
    }
    return cur_next(&c) == CUR_END;
}

static query_err_t parse_count(const char *v, size_t n, uint64_t *out, query_err_t bad)
{
    switch (parse_u64(v, n, out)) {
    case NUM_OK:
        return QUERY_OK;
    case NUM_ESCAPE:
        return QUERY_ERR_ESCAPE;
    default:
        return bad;
    }
}

static query_err_t parse_hash(const char *v, size_t n, uint8_t out[SHOAL_HASH_LEN],
                              query_err_t bad_len)
{
    uint8_t tmp[SHOAL_HASH_LEN];
    long got = decode(v, n, tmp, sizeof(tmp));
    if (got < 0)
        return QUERY_ERR_ESCAPE;
    if (got != SHOAL_HASH_LEN)
        return bad_len;
    memcpy(out, tmp, SHOAL_HASH_LEN);
    return QUERY_OK;
}

static query_err_t parse_numwant(const char *v, size_t n, int32_t *out)
{
    bool neg = n > 0 && v[0] == '-';
    uint64_t x;
    switch (parse_u64(v + neg, n - neg, &x)) {
    case NUM_ESCAPE:
        return QUERY_ERR_ESCAPE;
    case NUM_BAD:
        return QUERY_ERR_NUMWANT;
    case NUM_OVERFLOW:
        x = UINT64_MAX;
        break;
    case NUM_OK:
        break;
    }
    if (neg && x > 0)
        *out = -1;
    else
        *out = x > SHOAL_NUMWANT_MAX ? SHOAL_NUMWANT_MAX : (int32_t)x;
    return QUERY_OK;
}

/* FNV-1a, 32 bits, of the decoded key. */
static query_err_t parse_key(const char *v, size_t n, uint32_t *out)
{
    uint8_t tmp[KEY_MAX_LEN];
    long got = decode(v, n, tmp, sizeof(tmp));
    if (got < 0)
        return QUERY_ERR_ESCAPE;
    if (got > KEY_MAX_LEN)
        return QUERY_ERR_KEY;
    uint32_t h = 2166136261u;
    for (long i = 0; i < got; i++) {
        h ^= tmp[i];
        h *= 16777619u;
    }
    *out = h;
    return QUERY_OK;
}

/* The parameters shoal reads. */
typedef enum {
    K_OTHER,
    K_INFO_HASH,
    K_PEER_ID,
    K_PORT,
    K_LEFT,
    K_UPLOADED,
    K_DOWNLOADED,
    K_EVENT,
    K_NUMWANT,
    K_COMPACT,
    K_NO_PEER_ID,
    K_KEY,
} param_t;

#define IS(lit) (n == sizeof(lit) - 1 && memcmp(k, lit, sizeof(lit) - 1) == 0)

/* Which parameter the decoded key k[0..n) names. */
static param_t key_of(const char *k, size_t n)
{
    switch (n) {
    case 3:
        return IS("key") ? K_KEY : K_OTHER;
    case 4:
        return IS("port") ? K_PORT : IS("left") ? K_LEFT : K_OTHER;
    case 5:
        return IS("event") ? K_EVENT : K_OTHER;
    case 7:
        return IS("peer_id")   ? K_PEER_ID
               : IS("numwant") ? K_NUMWANT
               : IS("compact") ? K_COMPACT
                               : K_OTHER;
    case 8:
        return IS("uploaded") ? K_UPLOADED : K_OTHER;
    case 9:
        return IS("info_hash") ? K_INFO_HASH : K_OTHER;
    case 10:
        return IS("downloaded") ? K_DOWNLOADED : IS("no_peer_id") ? K_NO_PEER_ID : K_OTHER;
    default:
        return K_OTHER;
    }
}

#undef IS

/* One '&'-separated pair: which parameter, and its raw (still encoded) value. */
typedef struct {
    param_t key;
    const char *val;
    size_t val_len;
} pair_t;

/* Take the next pair from *q[0..*n), skipping empty ones. Returns 1 with *pr filled, 0 at the
 * end, -1 on a bad escape in the key. */
static int next_pair(const char **q, size_t *n, pair_t *pr)
{
    for (;;) {
        if (*n == 0)
            return 0;
        const char *s = *q;
        const char *amp = memchr(s, '&', *n);
        size_t plen = amp ? (size_t)(amp - s) : *n;
        *q = amp ? amp + 1 : s + *n;
        *n = amp ? *n - plen - 1 : 0;
        if (plen == 0)
            continue;
        size_t klen = 0;
        while (klen < plen && s[klen] != '=')
            klen++;
        pr->val = klen < plen ? s + klen + 1 : s + plen;
        pr->val_len = klen < plen ? plen - klen - 1 : 0;
        /* A known key is plain text, so the raw key is tried first; only a key that matches
         * nothing is checked for escapes and, if it has any, decoded and tried again. */
        pr->key = key_of(s, klen);
        if (pr->key == K_OTHER && (memchr(s, '%', klen) || memchr(s, '+', klen))) {
            char buf[16];
            long dl = decode(s, klen, (uint8_t *)buf, sizeof(buf));
            if (dl < 0)
                return -1;
            if ((size_t)dl <= sizeof(buf))
                pr->key = key_of(buf, (size_t)dl);
        }
        return 1;
    }
}

query_err_t query_parse_announce(const char *q, size_t len, query_announce_t *out)
{
    memset(out, 0, sizeof(*out));
    out->compact = true;
    out->announce.numwant = -1;
    out->announce.event = ANNOUNCE_NONE;
    bool have_hash = false, have_id = false, have_port = false, have_left = false;

    pair_t pr;
    int r;
    while ((r = next_pair(&q, &len, &pr)) > 0) {
        const char *v = pr.val;
        size_t n = pr.val_len;
        query_err_t err = QUERY_OK;
        announce_t *a = &out->announce;

        switch (pr.key) {
        case K_INFO_HASH:
            err = parse_hash(v, n, a->info_hash, QUERY_ERR_INFO_HASH_LENGTH);
            have_hash = true;
            break;
        case K_PEER_ID:
            err = parse_hash(v, n, a->peer_id, QUERY_ERR_PEER_ID_LENGTH);
            have_id = true;
            break;
        case K_PORT: {
            uint64_t port = 0;
            err = parse_count(v, n, &port, QUERY_ERR_PORT);
            if (err == QUERY_OK && (port == 0 || port > 65535))
                err = QUERY_ERR_PORT;
            a->peer.port = (uint16_t)port;
            have_port = true;
            break;
        }
        case K_LEFT:
            err = parse_count(v, n, &a->left, QUERY_ERR_LEFT);
            have_left = true;
            break;
        case K_UPLOADED:
            err = parse_count(v, n, &a->uploaded, QUERY_ERR_UPLOADED);
            break;
        case K_DOWNLOADED:
            err = parse_count(v, n, &a->downloaded, QUERY_ERR_DOWNLOADED);
            break;
        case K_EVENT:
            if (value_is(v, n, "started"))
                a->event = ANNOUNCE_STARTED;
            else if (value_is(v, n, "stopped"))
                a->event = ANNOUNCE_STOPPED;
            else if (value_is(v, n, "completed"))
                a->event = ANNOUNCE_COMPLETED;
            else if (value_is(v, n, "paused") || value_is(v, n, ""))
                a->event = ANNOUNCE_NONE;
            else
                err = value_err(v, n, QUERY_ERR_EVENT);
            break;
        case K_NUMWANT:
            err = parse_numwant(v, n, &a->numwant);
            break;
        case K_COMPACT:
            if (value_is(v, n, "1"))
                out->compact = true;
            else if (value_is(v, n, "0"))
                out->compact = false;
            else
                err = value_err(v, n, QUERY_ERR_COMPACT);
            break;
        case K_NO_PEER_ID:
            if (value_is(v, n, "1"))
                out->no_peer_id = true;
            else if (!escapes_ok(v, n))
                err = QUERY_ERR_ESCAPE;
            break;
        case K_KEY:
            err = parse_key(v, n, &a->key);
            break;
        case K_OTHER: /* ip and unknown parameters: only checked, never read */
            if (!escapes_ok(v, n))
                err = QUERY_ERR_ESCAPE;
            break;
        }
        if (err != QUERY_OK)
            return err;
    }
    if (r < 0)
        return QUERY_ERR_ESCAPE;
    if (!have_hash)
        return QUERY_ERR_INFO_HASH_MISSING;
    if (!have_id)
        return QUERY_ERR_PEER_ID_MISSING;
    if (!have_port)
        return QUERY_ERR_PORT_MISSING;
    if (!have_left)
        return QUERY_ERR_LEFT_MISSING;
    return QUERY_OK;
}

query_err_t query_parse_scrape(const char *q, size_t len, uint8_t (*hashes)[SHOAL_HASH_LEN],
                               size_t max, size_t *n_out)
{
    if (max > SHOAL_SCRAPE_MAX)
        max = SHOAL_SCRAPE_MAX;
    *n_out = 0;
    pair_t pr;
    int r;
    while ((r = next_pair(&q, &len, &pr)) > 0) {
        if (pr.key == K_INFO_HASH) {
            uint8_t h[SHOAL_HASH_LEN];
            query_err_t err = parse_hash(pr.val, pr.val_len, h, QUERY_ERR_INFO_HASH_LENGTH);
            if (err != QUERY_OK)
                return err;
            if (*n_out >= max)
                return QUERY_ERR_SCRAPE_TOO_MANY;
            memcpy(hashes[(*n_out)++], h, SHOAL_HASH_LEN);
        } else if (!escapes_ok(pr.val, pr.val_len)) {
            return QUERY_ERR_ESCAPE;
        }
    }
    return r < 0 ? QUERY_ERR_ESCAPE : QUERY_OK;
}

const char *query_strerror(query_err_t err)
{
    switch (err) {
    case QUERY_OK:
        return "ok";
    case QUERY_ERR_ESCAPE:
        return "invalid percent-encoding in query";
    case QUERY_ERR_INFO_HASH_MISSING:
        return "missing info_hash";
    case QUERY_ERR_INFO_HASH_LENGTH:
        return "invalid info_hash: must be 20 bytes";
    case QUERY_ERR_PEER_ID_MISSING:
        return "missing peer_id";
    case QUERY_ERR_PEER_ID_LENGTH:
        return "invalid peer_id: must be 20 bytes";
    case QUERY_ERR_PORT_MISSING:
        return "missing port";
    case QUERY_ERR_PORT:
        return "invalid port: must be 1-65535";
    case QUERY_ERR_LEFT_MISSING:
        return "missing left";
    case QUERY_ERR_LEFT:
        return "invalid left: must be a non-negative integer";
    case QUERY_ERR_UPLOADED:
        return "invalid uploaded: must be a non-negative integer";
    case QUERY_ERR_DOWNLOADED:
        return "invalid downloaded: must be a non-negative integer";
    case QUERY_ERR_EVENT:
        return "invalid event: must be started, stopped, completed or empty";
    case QUERY_ERR_NUMWANT:
        return "invalid numwant: must be an integer";
    case QUERY_ERR_COMPACT:
        return "invalid compact: must be 0 or 1";
    case QUERY_ERR_KEY:
        return "invalid key: longer than 64 bytes";
    case QUERY_ERR_SCRAPE_TOO_MANY:
        return "too many info_hash values in one scrape";
    }
    return "unknown error";
}
