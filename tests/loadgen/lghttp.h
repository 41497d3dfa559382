/* SPDX-License-Identifier: MIT */
/* lghttp: HTTP tracker requests (BEP 3, 23, 48) as the load generator writes them, and the
 * framing of the replies: status line, headers, Content-Length, body. The body is checked by
 * lgbenc. Written independently of shoal's proto/.
 *
 * Invariant: lghttp_frame reads only [buf, buf + len), looks at no more than LGHTTP_MAX_HEAD
 * bytes of header and accepts no body above LGHTTP_MAX_BODY; it never consumes more than one
 * response. Pure code: no I/O, no globals, no allocation. */
#ifndef SHOAL_LGHTTP_H
#define SHOAL_LGHTTP_H

#include "lgwork.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LGHTTP_MAX_HEAD    8192
#define LGHTTP_MAX_BODY    (1u << 20)
#define LGHTTP_MAX_REQUEST (512 + 64 * LGWORK_SCRAPE_MAX * 2)

typedef enum {
    LGHTTP_COMPLETE = 0, /* one whole response is in the buffer */
    LGHTTP_NEED_MORE,    /* a prefix of a response: read more */
    LGHTTP_TRUNCATED,    /* eof before the response ended */
    LGHTTP_BAD_STATUS,   /* no "HTTP/1.x nnn" status line */
    LGHTTP_BAD_HEADER,   /* a header line without a colon, or Transfer-Encoding */
    LGHTTP_BAD_LENGTH,   /* Content-Length missing, not a number, repeated differently, huge */
    LGHTTP_HEAD_TOO_LARGE,
} lghttp_frame_t;

typedef struct {
    int status;       /* 100..999 */
    size_t body_off;  /* start of the body in the buffer */
    size_t body_len;  /* Content-Length */
    size_t total_len; /* body_off + body_len: the bytes this response used */
    bool conn_close;  /* "Connection: close", or HTTP/1.0 without keep-alive */
} lghttp_response_t;

/* Write "GET /announce?... HTTP/1.1" with compact=1, Host (host_port, e.g. "127.0.0.1:6969")
 * and, if close, "Connection: close". Returns the length, or 0 if cap is too small. */
size_t lghttp_announce(char *buf, size_t cap, const lgwork_announce_t *a, const char *host_port,
                       bool close);
/* Write "GET /scrape?info_hash=...&info_hash=... HTTP/1.1"; same conventions. */
size_t lghttp_scrape(char *buf, size_t cap, const lgwork_scrape_t *s, const char *host_port,
                     bool close);

/* Frame the response at buf[0..len); eof says the peer closed (no more bytes will come). On
 * LGHTTP_COMPLETE fills *out; the next response starts at buf + out->total_len. */
lghttp_frame_t lghttp_frame(const uint8_t *buf, size_t len, bool eof, lghttp_response_t *out);

/* A short static name for the result. */
const char *lghttp_strframe(lghttp_frame_t f);

#endif
