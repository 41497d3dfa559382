/* SPDX-License-Identifier: MIT */
/* httpreq: HTTP/1.x request heads, parsed in place (RFC 9112 syntax, tracker subset).
 *
 * The head is read line by line, each line found with memchr and then checked against a byte
 * class table, so the cost is two tight passes over the bytes and nothing is copied. A line is
 * judged as soon as it is complete: a bad request line or header is reported even before the
 * head's terminator has arrived, so garbage is turned away without waiting for max_head bytes.
 * Invariant: nothing at or past min(len, max_head) is ever read, and on HTTPREQ_OK every pointer
 * in the result lies inside buf[0..head_len). */
#include "httpreq.h"

#include <stdint.h>
#include <string.h>

/* tchar (RFC 9110 5.6.2): what methods and header names are made of. */
static const bool tchar[256] = {
    ['!'] = true,         ['#' ... '\''] = true, ['*' ... '+'] = true, ['-' ... '.'] = true,
    ['0' ... '9'] = true, ['A' ... 'Z'] = true,  ['^' ... '`'] = true, ['a' ... 'z'] = true,
    ['|'] = true,         ['~'] = true,
};

/* Per-head state that only decides keep_alive at the end. */
typedef struct {
    bool conn_close;
    bool conn_keep_alive;
    const char *real_ip;
    size_t real_ip_len;
} hdrstate_t;

/* True if p[0..n) holds no control byte (below 0x20, HTAB too unless allow_tab) and no DEL.
 * Eight bytes at a time: a word is looked at byte by byte only if the SWAR test (which flags
 * bytes below 0x20 or equal to 0x7f, and may flag a later byte falsely) says so. */
static bool no_ctl(const unsigned char *p, size_t n, bool allow_tab)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, p + i, 8);
        uint64_t del = x ^ (0x7f * ones);
        if ((((x - 0x20 * ones) & ~x) | ((del - ones) & ~del)) & highs) {
            for (size_t j = i; j < i + 8; j++) {
                if ((p[j] < 0x20 && !(allow_tab && p[j] == '\t')) || p[j] == 0x7f)
                    return false;
            }
        }
    }
    for (; i < n; i++) {
        if ((p[i] < 0x20 && !(allow_tab && p[i] == '\t')) || p[i] == 0x7f)
            return false;
    }
    return true;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* s[0..n) equals lower (n bytes, lower case letters and '-') ignoring ASCII case. Only called
 * on token bytes, where OR-ing 0x20 folds letters and leaves '-' alone. */
static bool eq_nocase(const char *s, const char *lower, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((s[i] | 0x20) != lower[i])
            return false;
    }
    return true;
}

/* Connection: a comma-separated list of tokens; only "close" and "keep-alive" matter. */
static void parse_connection(const char *v, size_t n, hdrstate_t *st)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t start = i;
        while (i < n && v[i] != ',' && !is_ows(v[i]))
            i++;
        size_t tlen = i - start;
        if (tlen == 5 && eq_nocase(v + start, "close", 5))
            st->conn_close = true;
        else if (tlen == 10 && eq_nocase(v + start, "keep-alive", 10))
            st->conn_keep_alive = true;
    }
}

/* One header line s[0..n) without its line end. */
static httpreq_err_t parse_header(const char *s, size_t n, httpreq_t *out, hdrstate_t *st)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t name_len = 0;
    while (name_len < n && tchar[u[name_len]])
        name_len++;
    /* Also rejects obs-fold (a line starting with SP/HTAB) and "Name : v" (RFC 9112 5.1). */
    if (name_len == 0 || name_len == n || s[name_len] != ':')
        return HTTPREQ_ERR_SYNTAX;
    size_t v = name_len + 1;
    if (!no_ctl(u + v, n - v, true))
        return HTTPREQ_ERR_SYNTAX;
    size_t e = n;
    while (v < e && is_ows(s[v]))
        v++;
    while (e > v && is_ows(s[e - 1]))
        e--;
    const char *val = s + v;
    size_t vlen = e - v;

    switch (name_len) {
    case 9:
        if (eq_nocase(s, "x-real-ip", 9) && !st->real_ip && vlen > 0) {
            st->real_ip = val;
            st->real_ip_len = vlen;
        }
        break;
    case 10:
        if (eq_nocase(s, "connection", 10))
            parse_connection(val, vlen, st);
        break;
    case 14:
        if (eq_nocase(s, "content-length", 14)) {
            if (vlen == 0)
                return HTTPREQ_ERR_SYNTAX;
            bool nonzero = false;
            for (size_t i = 0; i < vlen; i++) {
                if (val[i] < '0' || val[i] > '9')
                    return HTTPREQ_ERR_SYNTAX;
                nonzero |= val[i] != '0';
            }
            if (nonzero)
                return HTTPREQ_ERR_BODY;
        }
        break;
    case 15:
        if (eq_nocase(s, "x-forwarded-for", 15) && !out->forwarded_for && vlen > 0) {
            out->forwarded_for = val;
            out->forwarded_for_len = vlen;
        }
        break;
    case 17:
        if (eq_nocase(s, "transfer-encoding", 17))
            return HTTPREQ_ERR_BODY;
        break;
    default:
        break;
    }
    return HTTPREQ_OK;
}

/* The request line s[0..n) without its line end: method SP target SP HTTP/d.d. */
static httpreq_err_t parse_request_line(const char *s, size_t n, httpreq_t *out)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t m = 0;
    while (m < n && tchar[u[m]])
        m++;
    if (m == 0 || m == n || s[m] != ' ')
        return HTTPREQ_ERR_SYNTAX;
    size_t t = m + 1;
    /* Target: any visible byte; obs-text is let through for clients that send raw binary
     * info-hashes. SP ends it; any other control byte, NUL or DEL is refused. */
    const char *sp = memchr(s + t, ' ', n - t);
    if (!sp)
        return HTTPREQ_ERR_SYNTAX;
    size_t te = (size_t)(sp - s);
    if (te == t || !no_ctl(u + t, te - t, false))
        return HTTPREQ_ERR_SYNTAX;
    const char *ver = s + te + 1;
    if (n - (te + 1) != 8 || memcmp(ver, "HTTP/", 5) != 0 || ver[5] < '0' || ver[5] > '9' ||
        ver[6] != '.' || ver[7] < '0' || ver[7] > '9')
        return HTTPREQ_ERR_SYNTAX;
    if (ver[5] != '1' || ver[7] > '1')
        return HTTPREQ_ERR_VERSION;
    if (m != 3 || memcmp(s, "GET", 3) != 0)
        return HTTPREQ_ERR_METHOD;
    if (s[t] != '/')
        return HTTPREQ_ERR_SYNTAX;

    out->minor_version = ver[7] - '0';
    size_t tlen = te - t;
    const char *q = memchr(s + t, '?', tlen);
    out->path = s + t;
    if (q) {
        out->path_len = (size_t)(q - (s + t));
        out->query = q + 1;
        out->query_len = tlen - out->path_len - 1;
    } else {
        out->path_len = tlen;
    }
    return HTTPREQ_OK;
}

httpreq_err_t httpreq_parse(const char *buf, size_t len, size_t max_head, httpreq_t *out)
{
    memset(out, 0, sizeof(*out));
    const size_t limit = len < max_head ? len : max_head;
    /* What to say when the head does not end inside buf[0..limit). */
    const httpreq_err_t short_err = len >= max_head ? HTTPREQ_ERR_TOO_LARGE : HTTPREQ_INCOMPLETE;

    /* RFC 9112 2.2: empty lines before the request line are ignored (a client's stray CRLF
     * after a previous request). */
    size_t p = 0;
    for (;;) {
        if (p < limit && buf[p] == '\n')
            p++;
        else if (p + 1 < limit && buf[p] == '\r' && buf[p + 1] == '\n')
            p += 2;
        else
            break;
    }
    if (p >= limit)
        return short_err;

    const char *nl = memchr(buf + p, '\n', limit - p);
    if (!nl)
        return short_err;
    size_t end = (size_t)(nl - buf);
    size_t line_end = end > p && buf[end - 1] == '\r' ? end - 1 : end;
    httpreq_err_t err = parse_request_line(buf + p, line_end - p, out);
    if (err != HTTPREQ_OK)
        return err;

    hdrstate_t st = {0};
    for (;;) {
        p = end + 1;
        if (p >= limit)
            return short_err;
        if (buf[p] == '\n') {
            out->head_len = p + 1;
            break;
        }
        if (buf[p] == '\r') {
            if (p + 1 >= limit)
                return short_err;
            if (buf[p + 1] == '\n') {
                out->head_len = p + 2;
                break;
            }
        }
        nl = memchr(buf + p, '\n', limit - p);
        if (!nl)
            return short_err;
        end = (size_t)(nl - buf);
        line_end = buf[end - 1] == '\r' ? end - 1 : end;
        err = parse_header(buf + p, line_end - p, out, &st);
        if (err != HTTPREQ_OK)
            return err;
    }

    if (!out->forwarded_for && st.real_ip) {
        out->forwarded_for = st.real_ip;
        out->forwarded_for_len = st.real_ip_len;
    }
    if (st.conn_close)
        out->keep_alive = false;
    else
        out->keep_alive = out->minor_version >= 1 || st.conn_keep_alive;
    return HTTPREQ_OK;
}

int httpreq_status(httpreq_err_t err)
{
    switch (err) {
    case HTTPREQ_OK:
    case HTTPREQ_INCOMPLETE:
        return 0;
    case HTTPREQ_ERR_TOO_LARGE:
        return 431;
    case HTTPREQ_ERR_SYNTAX:
    case HTTPREQ_ERR_BODY:
        return 400;
    case HTTPREQ_ERR_METHOD:
        return 405;
    case HTTPREQ_ERR_VERSION:
        return 505;
    }
    return 400;
}

const char *httpreq_strerror(httpreq_err_t err)
{
    switch (err) {
    case HTTPREQ_OK:
        return "ok";
    case HTTPREQ_INCOMPLETE:
        return "incomplete request head";
    case HTTPREQ_ERR_TOO_LARGE:
        return "request head too large";
    case HTTPREQ_ERR_SYNTAX:
        return "malformed request";
    case HTTPREQ_ERR_METHOD:
        return "only GET is served";
    case HTTPREQ_ERR_VERSION:
        return "only HTTP/1.0 and HTTP/1.1 are served";
    case HTTPREQ_ERR_BODY:
        return "request bodies are not accepted";
    }
    return "unknown error";
}
