/* SPDX-License-Identifier: MIT */
/* redact: a URL's password out of every text that may be shown (redact.h). */
#include "redact.h"

#include <string.h>

/* Appends to a bounded buffer; what does not fit is dropped, the text stays terminated. */
typedef struct {
    char *buf;
    size_t cap, len;
} outbuf_t;

static void put(outbuf_t *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n && o->len + 1 < o->cap; i++) {
        unsigned char c = (unsigned char)s[i];
        o->buf[o->len++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (o->cap)
        o->buf[o->len] = '\0';
}

char *redact_url(const char *url, char *out, size_t outlen)
{
    outbuf_t o = {.buf = out, .cap = outlen};
    if (outlen)
        out[0] = '\0';
    if (!url)
        return out;
    /* The same split as rconn_parse() (runtime/rconn.c): credentials end at the last '@', the user
     * at their first
     * ':'. Any other text is split alike, so a URL that does not parse keeps its secret too. */
    const char *scheme_end = strstr(url, "://");
    const char *p = scheme_end ? scheme_end + 3 : url;
    const char *at = strrchr(p, '@');
    if (!at) {
        put(&o, url, strlen(url));
        return out;
    }
    const char *colon = memchr(p, ':', (size_t)(at - p));
    const char *keep = colon ? colon + 1 : p;
    put(&o, url, (size_t)(keep - url));
    put(&o, "***", 3);
    put(&o, at, strlen(at));
    return out;
}
