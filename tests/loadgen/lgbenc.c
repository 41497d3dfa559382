/* SPDX-License-Identifier: MIT */
/* lgbenc: bencode validation; see lgbenc.h. A cursor walks the body; every reader either
 * consumes bytes or fails, which bounds all loops by the body length. */
#include "lgbenc.h"

#include <string.h>

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} cursor_t;

#define MAX_COUNT 0x7fffffffLL

static lgbenc_verdict_t read_int(cursor_t *c, int64_t *v)
{
    if (c->p >= c->end || *c->p != 'i')
        return LGBENC_MALFORMED;
    c->p++;
    bool neg = false;
    if (c->p < c->end && *c->p == '-') {
        neg = true;
        c->p++;
    }
    const uint8_t *digits = c->p;
    uint64_t acc = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (c->p - digits >= 18)
            return LGBENC_MALFORMED; /* beyond what a tracker sends; avoids overflow */
        acc = acc * 10 + (uint64_t)(*c->p - '0');
        c->p++;
    }
    size_t nd = (size_t)(c->p - digits);
    if (nd == 0 || c->p >= c->end || *c->p != 'e')
        return LGBENC_MALFORMED;
    if (digits[0] == '0' && (nd > 1 || neg))
        return LGBENC_MALFORMED; /* leading zero or -0 */
    c->p++;
    *v = neg ? -(int64_t)acc : (int64_t)acc;
    return LGBENC_OK;
}

static lgbenc_verdict_t read_str(cursor_t *c, const uint8_t **s, size_t *n)
{
    const uint8_t *digits = c->p;
    size_t acc = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (c->p - digits >= 9)
            return LGBENC_MALFORMED;
        acc = acc * 10 + (size_t)(*c->p - '0');
        c->p++;
    }
    size_t nd = (size_t)(c->p - digits);
    if (nd == 0 || c->p >= c->end || *c->p != ':')
        return LGBENC_MALFORMED;
    if (digits[0] == '0' && nd > 1)
        return LGBENC_MALFORMED;
    c->p++;
    if (acc > (size_t)(c->end - c->p))
        return LGBENC_MALFORMED;
    *s = c->p;
    *n = acc;
    c->p += acc;
    return LGBENC_OK;
}

/* Strict byte order, a proper prefix first. */
static int key_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int r = memcmp(a, b, n);
    if (r != 0)
        return r;
    return an < bn ? -1 : an > bn ? 1 : 0;
}

static bool key_is(const uint8_t *k, size_t kn, const char *name)
{
    size_t n = strlen(name);
    return kn == n && memcmp(k, name, n) == 0;
}

static lgbenc_verdict_t skip_value(cursor_t *c, unsigned depth);

/* Read the next key of a dictionary, enforcing order against *prev; false at the 'e'. */
static lgbenc_verdict_t next_key(cursor_t *c, const uint8_t **prev, size_t *prev_n,
                                 const uint8_t **k, size_t *kn, bool *more)
{
    if (c->p >= c->end)
        return LGBENC_MALFORMED;
    if (*c->p == 'e') {
        c->p++;
        *more = false;
        return LGBENC_OK;
    }
    lgbenc_verdict_t v = read_str(c, k, kn);
    if (v != LGBENC_OK)
        return v;
    if (*prev != NULL && key_cmp(*prev, *prev_n, *k, *kn) >= 0)
        return LGBENC_UNSORTED;
    *prev = *k;
    *prev_n = *kn;
    *more = true;
    return LGBENC_OK;
}

static lgbenc_verdict_t skip_value(cursor_t *c, unsigned depth)
{
    if (depth > LGBENC_MAX_DEPTH)
        return LGBENC_TOO_DEEP;
    if (c->p >= c->end)
        return LGBENC_MALFORMED;
    uint8_t t = *c->p;
    if (t == 'i') {
        int64_t v;
        return read_int(c, &v);
    }
    if (t >= '0' && t <= '9') {
        const uint8_t *s;
        size_t n;
        return read_str(c, &s, &n);
    }
    if (t == 'l') {
        c->p++;
        for (;;) {
            if (c->p >= c->end)
                return LGBENC_MALFORMED;
            if (*c->p == 'e') {
                c->p++;
                return LGBENC_OK;
            }
            lgbenc_verdict_t v = skip_value(c, depth + 1);
            if (v != LGBENC_OK)
                return v;
        }
    }
    if (t == 'd') {
        c->p++;
        const uint8_t *prev = NULL, *k;
        size_t prev_n = 0, kn;
        for (;;) {
            bool more;
            lgbenc_verdict_t v = next_key(c, &prev, &prev_n, &k, &kn, &more);
            if (v != LGBENC_OK || !more)
                return v;
            v = skip_value(c, depth + 1);
            if (v != LGBENC_OK)
                return v;
        }
    }
    return LGBENC_MALFORMED;
}

lgbenc_verdict_t lgbenc_value(const uint8_t *buf, size_t len, size_t *end)
{
    cursor_t c = {buf, buf + len};
    lgbenc_verdict_t v = skip_value(&c, 1);
    *end = (size_t)(c.p - buf);
    return v;
}

static void info_init(lgbenc_info_t *out)
{
    memset(out, 0, sizeof(*out));
    out->complete = -1;
    out->incomplete = -1;
}

/* A typed integer value for a known key; the type error wins over a syntax check of a
 * different type, so "interval" holding a string is BAD_TYPE, not a silent skip. */
static lgbenc_verdict_t typed_int(cursor_t *c, int64_t *v)
{
    if (c->p >= c->end)
        return LGBENC_MALFORMED;
    if (*c->p != 'i') {
        lgbenc_verdict_t r = skip_value(c, 2);
        return r == LGBENC_OK ? LGBENC_BAD_TYPE : r;
    }
    return read_int(c, v);
}

static lgbenc_verdict_t typed_str(cursor_t *c, const uint8_t **s, size_t *n)
{
    if (c->p >= c->end)
        return LGBENC_MALFORMED;
    if (!(*c->p >= '0' && *c->p <= '9')) {
        lgbenc_verdict_t r = skip_value(c, 2);
        return r == LGBENC_OK ? LGBENC_BAD_TYPE : r;
    }
    return read_str(c, s, n);
}

/* A peer dictionary of a non-compact list: needs "ip" (string) and "port" (1..65535). */
static lgbenc_verdict_t peer_dict(cursor_t *c)
{
    if (c->p >= c->end || *c->p != 'd') {
        lgbenc_verdict_t r = skip_value(c, 3);
        return r == LGBENC_OK ? LGBENC_BAD_PEERS : r;
    }
    c->p++;
    const uint8_t *prev = NULL, *k;
    size_t prev_n = 0, kn;
    bool have_ip = false, have_port = false, bad_type = false;
    for (;;) {
        bool more;
        lgbenc_verdict_t v = next_key(c, &prev, &prev_n, &k, &kn, &more);
        if (v != LGBENC_OK)
            return v;
        if (!more)
            break;
        if (key_is(k, kn, "ip")) {
            const uint8_t *s;
            size_t n;
            v = typed_str(c, &s, &n);
            have_ip = v == LGBENC_OK && n > 0;
        } else if (key_is(k, kn, "port")) {
            int64_t port = 0;
            v = typed_int(c, &port);
            have_port = v == LGBENC_OK && port >= 1 && port <= 65535;
        } else {
            v = skip_value(c, 4);
        }
        if (v == LGBENC_BAD_TYPE) {
            bad_type = true; /* the value was consumed: read on to the dictionary's end */
            v = LGBENC_OK;
        }
        if (v != LGBENC_OK)
            return v;
    }
    return have_ip && have_port && !bad_type ? LGBENC_OK : LGBENC_BAD_PEERS;
}

/* A list of peer dictionaries. A bad peer is remembered and the list read to its end, so
 * the caller can go on checking the rest of the reply. */
static lgbenc_verdict_t peer_list(cursor_t *c, size_t *n)
{
    lgbenc_verdict_t semantic = LGBENC_OK;
    c->p++; /* 'l' */
    for (;;) {
        if (c->p >= c->end)
            return LGBENC_MALFORMED;
        if (*c->p == 'e') {
            c->p++;
            return semantic;
        }
        lgbenc_verdict_t v = peer_dict(c);
        if (v == LGBENC_BAD_PEERS)
            semantic = v;
        else if (v != LGBENC_OK)
            return v;
        (*n)++;
    }
}

/* Walk the top-level dictionary; per-key handling by the reply kind. Keeps the first error
 * that matters: syntax errors win over semantic ones because they are found first. */
typedef enum { KIND_ANNOUNCE, KIND_SCRAPE } kind_t;

/* Scrape "files": at most FILES_TRACKED keys are checked for repeats; a reply with more is
 * implausible anyway (a scrape asks for at most 74). */
#define FILES_TRACKED 128

static lgbenc_verdict_t files_dict(cursor_t *c, size_t *n_files, bool *unsorted)
{
    if (c->p >= c->end || *c->p != 'd') {
        lgbenc_verdict_t r = skip_value(c, 2);
        return r == LGBENC_OK ? LGBENC_BAD_TYPE : r;
    }
    c->p++;
    const uint8_t *k, *seen[FILES_TRACKED]; /* the 20-byte keys so far, in order */
    size_t kn, n_seen = 0;
    lgbenc_verdict_t semantic = LGBENC_OK;
    for (;;) {
        /* Keys in any order (opentracker writes them in request order), but never twice. */
        if (c->p >= c->end)
            return LGBENC_MALFORMED;
        if (*c->p == 'e') {
            c->p++;
            break;
        }
        lgbenc_verdict_t v = read_str(c, &k, &kn);
        if (v != LGBENC_OK)
            return v;
        if (kn != 20 && semantic == LGBENC_OK)
            semantic = LGBENC_BAD_TYPE;
        if (kn == 20) {
            for (size_t i = 0; i < n_seen; i++)
                if (memcmp(seen[i], k, 20) == 0)
                    return LGBENC_UNSORTED; /* a repeated key */
            if (n_seen > 0 && memcmp(seen[n_seen - 1], k, 20) > 0)
                *unsorted = true;
            if (n_seen < FILES_TRACKED)
                seen[n_seen++] = k;
        }
        (*n_files)++;
        bool more;
        /* Each value: a dictionary with integer complete and incomplete counts. */
        if (c->p >= c->end)
            return LGBENC_MALFORMED;
        if (*c->p != 'd') {
            v = skip_value(c, 3);
            if (v != LGBENC_OK)
                return v;
            if (semantic == LGBENC_OK)
                semantic = LGBENC_BAD_TYPE;
            continue;
        }
        c->p++;
        const uint8_t *fprev = NULL, *fk;
        size_t fprev_n = 0, fkn;
        bool have_complete = false, have_incomplete = false;
        for (;;) {
            v = next_key(c, &fprev, &fprev_n, &fk, &fkn, &more);
            if (v != LGBENC_OK)
                return v;
            if (!more)
                break;
            bool is_c = key_is(fk, fkn, "complete"), is_i = key_is(fk, fkn, "incomplete");
            if (is_c || is_i || key_is(fk, fkn, "downloaded")) {
                int64_t x = 0;
                v = typed_int(c, &x);
                if (v == LGBENC_BAD_TYPE || (v == LGBENC_OK && (x < 0 || x > MAX_COUNT))) {
                    if (semantic == LGBENC_OK)
                        semantic = v == LGBENC_OK ? LGBENC_IMPLAUSIBLE : v;
                    v = LGBENC_OK;
                } else if (v == LGBENC_OK) {
                    have_complete |= is_c;
                    have_incomplete |= is_i;
                }
            } else {
                v = skip_value(c, 4);
            }
            if (v != LGBENC_OK)
                return v;
        }
        if ((!have_complete || !have_incomplete) && semantic == LGBENC_OK)
            semantic = LGBENC_MISSING_KEY;
    }
    return semantic;
}

static lgbenc_verdict_t check_reply(const uint8_t *body, size_t len, kind_t kind, int32_t numwant,
                                    unsigned n_requested, lgbenc_info_t *out)
{
    info_init(out);
    cursor_t c = {body, body + len};
    if (len == 0)
        return LGBENC_MALFORMED;
    if (*c.p != 'd') {
        size_t end;
        lgbenc_verdict_t v = lgbenc_value(body, len, &end);
        if (v != LGBENC_OK)
            return v;
        return end != len ? LGBENC_TRAILING : LGBENC_NOT_DICT;
    }
    c.p++;
    const uint8_t *prev = NULL, *k;
    size_t prev_n = 0, kn;
    lgbenc_verdict_t semantic = LGBENC_OK;
    bool have_interval = false, have_peers = false, have_files = false;
    for (;;) {
        bool more;
        lgbenc_verdict_t v = next_key(&c, &prev, &prev_n, &k, &kn, &more);
        if (v != LGBENC_OK)
            return v;
        if (!more)
            break;
        if (key_is(k, kn, "failure reason")) {
            v = typed_str(&c, &out->failure, &out->failure_len);
        } else if (kind == KIND_ANNOUNCE && key_is(k, kn, "interval")) {
            v = typed_int(&c, &out->interval);
            have_interval = v == LGBENC_OK;
        } else if (kind == KIND_ANNOUNCE && key_is(k, kn, "complete")) {
            v = typed_int(&c, &out->complete);
        } else if (kind == KIND_ANNOUNCE && key_is(k, kn, "incomplete")) {
            v = typed_int(&c, &out->incomplete);
        } else if (kind == KIND_ANNOUNCE && key_is(k, kn, "peers")) {
            if (c.p < c.end && *c.p == 'l') {
                v = peer_list(&c, &out->n_peers);
            } else {
                const uint8_t *s;
                size_t n = 0;
                v = typed_str(&c, &s, &n);
                if (v == LGBENC_OK && n % 6 != 0)
                    v = LGBENC_BAD_PEERS;
                out->n_peers = n / 6;
            }
            have_peers = v == LGBENC_OK;
        } else if (kind == KIND_ANNOUNCE && key_is(k, kn, "peers6")) {
            const uint8_t *s;
            size_t n = 0;
            v = typed_str(&c, &s, &n);
            if (v == LGBENC_OK && n % 18 != 0)
                v = LGBENC_BAD_PEERS;
            out->n_peers6 = n / 18;
        } else if (kind == KIND_SCRAPE && key_is(k, kn, "files")) {
            v = files_dict(&c, &out->n_files, &out->files_unsorted);
            have_files = v == LGBENC_OK;
        } else {
            v = skip_value(&c, 2);
        }
        if (v == LGBENC_MALFORMED || v == LGBENC_TOO_DEEP || v == LGBENC_UNSORTED)
            return v;
        if (v != LGBENC_OK && semantic == LGBENC_OK)
            semantic = v;
    }
    if (c.p != c.end)
        return LGBENC_TRAILING;
    if (semantic != LGBENC_OK)
        return semantic;
    if (out->failure != NULL)
        return LGBENC_FAILURE;
    if (kind == KIND_SCRAPE) {
        if (!have_files)
            return LGBENC_MISSING_KEY;
        return out->n_files > n_requested ? LGBENC_IMPLAUSIBLE : LGBENC_OK;
    }
    if (!have_interval || !have_peers)
        return LGBENC_MISSING_KEY;
    if (out->interval < 1 || out->interval > 7 * 86400)
        return LGBENC_IMPLAUSIBLE;
    if (out->complete > MAX_COUNT || out->incomplete > MAX_COUNT || out->complete < -1 ||
        out->incomplete < -1)
        return LGBENC_IMPLAUSIBLE;
    if (numwant > 0 && (out->n_peers > (size_t)numwant || out->n_peers6 > (size_t)numwant))
        return LGBENC_IMPLAUSIBLE;
    if (out->complete >= 0 && out->incomplete >= 0 &&
        out->n_peers + out->n_peers6 > (size_t)(out->complete + out->incomplete))
        return LGBENC_IMPLAUSIBLE;
    return LGBENC_OK;
}

lgbenc_verdict_t lgbenc_check_announce(const uint8_t *body, size_t len, int32_t numwant,
                                       lgbenc_info_t *out)
{
    return check_reply(body, len, KIND_ANNOUNCE, numwant, 0, out);
}

lgbenc_verdict_t lgbenc_check_scrape(const uint8_t *body, size_t len, unsigned n_requested,
                                     lgbenc_info_t *out)
{
    return check_reply(body, len, KIND_SCRAPE, 0, n_requested, out);
}

const char *lgbenc_strverdict(lgbenc_verdict_t v)
{
    switch (v) {
    case LGBENC_OK:
        return "ok";
    case LGBENC_FAILURE:
        return "failure reason";
    case LGBENC_MALFORMED:
        return "malformed bencode";
    case LGBENC_TOO_DEEP:
        return "nesting too deep";
    case LGBENC_TRAILING:
        return "trailing bytes";
    case LGBENC_UNSORTED:
        return "dictionary keys not sorted";
    case LGBENC_NOT_DICT:
        return "not a dictionary";
    case LGBENC_MISSING_KEY:
        return "missing key";
    case LGBENC_BAD_TYPE:
        return "key has wrong type";
    case LGBENC_BAD_PEERS:
        return "bad peers";
    case LGBENC_IMPLAUSIBLE:
        return "implausible counts";
    }
    return "unknown";
}
