/* SPDX-License-Identifier: MIT */
/* httpreq: the head of one HTTP/1.x request, parsed in place.
 *
 * Only what a tracker needs is read: the method (GET only), the target split into path and
 * query, the version, keep-alive, and the X-Forwarded-For / X-Real-IP headers (whether to trust
 * them is the server's decision, not the parser's). Pointers in the result point into the
 * caller's buffer and live as long as it does. No allocation, no copying. */
#ifndef SHOAL_HTTPREQ_H
#define SHOAL_HTTPREQ_H

#include <stdbool.h>
#include <stddef.h>

typedef enum {
    HTTPREQ_OK = 0,
    HTTPREQ_INCOMPLETE,    /* no "\r\n\r\n" yet and still under max_head: read more */
    HTTPREQ_ERR_TOO_LARGE, /* head longer than max_head: 431 */
    HTTPREQ_ERR_SYNTAX,    /* malformed request line or header: 400 */
    HTTPREQ_ERR_METHOD,    /* not GET (HEAD is not served either): 405 */
    HTTPREQ_ERR_VERSION,   /* not HTTP/1.0 or HTTP/1.1: 505 */
    HTTPREQ_ERR_BODY,      /* Content-Length > 0 or Transfer-Encoding: 400 */
} httpreq_err_t;

typedef struct {
    const char *path; /* e.g. "/announce", without the query */
    size_t path_len;
    const char *query; /* after '?', without it; NULL with query_len 0 when absent */
    size_t query_len;
    int minor_version; /* 0 or 1 */
    bool keep_alive;   /* HTTP/1.1 unless "Connection: close"; HTTP/1.0 only with keep-alive */
    const char *forwarded_for; /* X-Forwarded-For (first one seen) or else X-Real-IP; or NULL */
    size_t forwarded_for_len;
    size_t head_len; /* bytes the head takes, including the final "\r\n\r\n" */
} httpreq_t;

/* Parse the request head at the start of buf[0..len). Lines may end in "\r\n" or a bare "\n".
 * On HTTPREQ_OK, *out describes the request and out->head_len says where the next pipelined
 * request starts. Each line is judged once it is complete, so an error can come back before the
 * head's end has arrived; a partial line is never an error. forwarded_for is the header's whole
 * value (a list for a chain of proxies), without surrounding spaces. */
httpreq_err_t httpreq_parse(const char *buf, size_t len, size_t max_head, httpreq_t *out);

/* The HTTP status code that answers err (400, 405, 431, 505), 0 for OK/INCOMPLETE. */
int httpreq_status(httpreq_err_t err);

/* A short text for err (static storage). */
const char *httpreq_strerror(httpreq_err_t err);

#endif
