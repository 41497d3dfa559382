/* SPDX-License-Identifier: MIT */
/* lghttp: HTTP request writing and response framing; see lghttp.h. */
#include "lghttp.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    char *p;
    size_t len;
    size_t cap;
    bool overflow;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(out_t *o, const char *s)
{
    put(o, s, strlen(s));
}

static void putu(out_t *o, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    put(o, tmp, (size_t)n);
}

/* Percent-encode all but RFC 3986 unreserved bytes, as clients do. */
static void put_escaped(out_t *o, const uint8_t *b, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        uint8_t c = b[i];
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_' || c == '~';
        if (plain) {
            put(o, (const char *)&c, 1);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            put(o, e, 3);
        }
    }
}

static void put_tail(out_t *o, const char *host_port, bool close)
{
    puts_(o, " HTTP/1.1\r\nHost: ");
    puts_(o, host_port);
    puts_(o, close ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n");
}

size_t lghttp_announce(char *buf, size_t cap, const lgwork_announce_t *a, const char *host_port,
                       bool close)
{
    static const char *const events[] = {NULL, "completed", "started", "stopped"};
    out_t o = {buf, 0, cap, false};
    puts_(&o, "GET /announce?info_hash=");
    put_escaped(&o, a->info_hash, LGWORK_HASH_LEN);
    puts_(&o, "&peer_id=");
    put_escaped(&o, a->peer.peer_id, LGWORK_HASH_LEN);
    puts_(&o, "&port=");
    putu(&o, a->peer.port);
    puts_(&o, "&uploaded=");
    putu(&o, a->uploaded);
    puts_(&o, "&downloaded=");
    putu(&o, a->downloaded);
    puts_(&o, "&left=");
    putu(&o, a->left);
    if ((unsigned)a->event < 4 && events[a->event] != NULL) {
        puts_(&o, "&event=");
        puts_(&o, events[a->event]);
    }
    puts_(&o, "&key=");
    char key[9];
    snprintf(key, sizeof(key), "%08" PRIX32, a->peer.key);
    puts_(&o, key);
    puts_(&o, "&numwant=");
    putu(&o, (uint64_t)(a->numwant > 0 ? a->numwant : 0));
    puts_(&o, "&compact=1");
    put_tail(&o, host_port, close);
    return o.overflow ? 0 : o.len;
}

size_t lghttp_scrape(char *buf, size_t cap, const lgwork_scrape_t *s, const char *host_port,
                     bool close)
{
    out_t o = {buf, 0, cap, false};
    puts_(&o, "GET /scrape");
    for (unsigned i = 0; i < s->n && i < LGWORK_SCRAPE_MAX; i++) {
        puts_(&o, i == 0 ? "?info_hash=" : "&info_hash=");
        put_escaped(&o, s->hashes[i], LGWORK_HASH_LEN);
    }
    put_tail(&o, host_port, close);
    return o.overflow ? 0 : o.len;
}

static bool ieq(const uint8_t *a, size_t an, const char *b)
{
    size_t bn = strlen(b);
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++) {
        uint8_t c = a[i];
        if (c >= 'A' && c <= 'Z')
            c = (uint8_t)(c - 'A' + 'a');
        if (c != (uint8_t)b[i])
            return false;
    }
    return true;
}

/* Does the comma-separated header value contain token (case-insensitive)? */
static bool has_token(const uint8_t *v, size_t n, const char *token)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end > start && ieq(v + start, end - start, token))
            return true;
    }
    return false;
}

lghttp_frame_t lghttp_frame(const uint8_t *buf, size_t len, bool eof, lghttp_response_t *out)
{
    memset(out, 0, sizeof(*out));
    size_t scan = len < LGHTTP_MAX_HEAD ? len : LGHTTP_MAX_HEAD;
    size_t head = 0;
    for (size_t i = 0; i + 4 <= scan; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
            head = i + 4;
            break;
        }
    }
    if (head == 0) {
        /* A status line can be rejected before the head is complete. */
        if (len >= 5 && memcmp(buf, "HTTP/", 5) != 0)
            return LGHTTP_BAD_STATUS;
        if (len >= LGHTTP_MAX_HEAD)
            return LGHTTP_HEAD_TOO_LARGE;
        return eof ? LGHTTP_TRUNCATED : LGHTTP_NEED_MORE;
    }
    /* Status line: HTTP/1.0 or HTTP/1.1, a space, three digits, then a space or the CRLF. */
    if (head < 14 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
        buf[8] != ' ')
        return LGHTTP_BAD_STATUS;
    for (int i = 9; i < 12; i++)
        if (buf[i] < '0' || buf[i] > '9')
            return LGHTTP_BAD_STATUS;
    if (buf[12] != ' ' && buf[12] != '\r')
        return LGHTTP_BAD_STATUS;
    out->status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (out->status < 100)
        return LGHTTP_BAD_STATUS;
    bool http10 = buf[7] == '0';
    bool keep_alive = false, close = false;
    bool have_len = false;
    uint64_t clen = 0;
    size_t line = 0;
    while (line < head - 2 && !(buf[line] == '\r' && buf[line + 1] == '\n'))
        line++;
    line += 2; /* first header line */
    while (line < head - 2) {
        size_t eol = line;
        while (eol < head - 2 && !(buf[eol] == '\r' && buf[eol + 1] == '\n'))
            eol++;
        size_t colon = line;
        while (colon < eol && buf[colon] != ':')
            colon++;
        if (colon == eol || colon == line)
            return LGHTTP_BAD_HEADER;
        size_t vs = colon + 1, ve = eol;
        while (vs < ve && (buf[vs] == ' ' || buf[vs] == '\t'))
            vs++;
        while (ve > vs && (buf[ve - 1] == ' ' || buf[ve - 1] == '\t'))
            ve--;
        const uint8_t *name = buf + line, *val = buf + vs;
        size_t nn = colon - line, vn = ve - vs;
        if (ieq(name, nn, "content-length")) {
            if (vn == 0 || vn > 10)
                return LGHTTP_BAD_LENGTH;
            uint64_t v = 0;
            for (size_t i = 0; i < vn; i++) {
                if (val[i] < '0' || val[i] > '9')
                    return LGHTTP_BAD_LENGTH;
                v = v * 10 + (uint64_t)(val[i] - '0');
            }
            if (have_len && v != clen)
                return LGHTTP_BAD_LENGTH;
            if (v > LGHTTP_MAX_BODY)
                return LGHTTP_BAD_LENGTH;
            clen = v;
            have_len = true;
        } else if (ieq(name, nn, "transfer-encoding")) {
            return LGHTTP_BAD_HEADER; /* trackers send small bodies with a length */
        } else if (ieq(name, nn, "connection")) {
            close |= has_token(val, vn, "close");
            keep_alive |= has_token(val, vn, "keep-alive");
        }
        line = eol + 2;
    }
    if (!have_len)
        return LGHTTP_BAD_LENGTH;
    out->body_off = head;
    out->body_len = (size_t)clen;
    out->total_len = head + (size_t)clen;
    out->conn_close = close || (http10 && !keep_alive);
    if (len < out->total_len)
        return eof ? LGHTTP_TRUNCATED : LGHTTP_NEED_MORE;
    return LGHTTP_COMPLETE;
}

const char *lghttp_strframe(lghttp_frame_t f)
{
    switch (f) {
    case LGHTTP_COMPLETE:
        return "complete";
    case LGHTTP_NEED_MORE:
        return "need more";
    case LGHTTP_TRUNCATED:
        return "truncated";
    case LGHTTP_BAD_STATUS:
        return "bad status line";
    case LGHTTP_BAD_HEADER:
        return "bad header";
    case LGHTTP_BAD_LENGTH:
        return "bad content-length";
    case LGHTTP_HEAD_TOO_LARGE:
        return "header too large";
    }
    return "unknown";
}
