/* SPDX-License-Identifier: MIT */
/* libFuzzer target for proto/httpreq: arbitrary bytes as a request buffer.
 *
 * The first byte picks max_head (so the TOO_LARGE edge is reached with short inputs), the rest
 * is the buffer. Checked: no out-of-bounds read (every parse sees an exact-size heap copy), the
 * result's pointers lie inside the head, the head is not OK on any shorter prefix, and the
 * result does not depend on bytes after the head. */
#include "httpreq.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse an exact-size copy of buf[0..len), so any read past len is an ASan report. */
static httpreq_err_t parse_copy(const char *buf, size_t len, size_t max_head, httpreq_t *out,
                                char **copy)
{
    *copy = malloc(len ? len : 1);
    CHECK(*copy);
    memcpy(*copy, buf, len);
    return httpreq_parse(*copy, len, max_head, out);
}

static bool inside(const char *p, size_t n, const char *base, size_t len)
{
    return p >= base && n <= len && (size_t)(p - base) <= len - n;
}

static void check_ok(const char *buf, size_t len, size_t max_head, const httpreq_t *r)
{
    CHECK(r->head_len > 0 && r->head_len <= len && r->head_len <= max_head);
    CHECK(buf[r->head_len - 1] == '\n');
    CHECK(r->minor_version == 0 || r->minor_version == 1);
    CHECK(r->path && r->path_len > 0 && inside(r->path, r->path_len, buf, r->head_len));
    CHECK(r->path[0] == '/');
    CHECK(!memchr(r->path, '?', r->path_len));
    if (r->query) {
        CHECK(r->query == r->path + r->path_len + 1 && r->query[-1] == '?');
        CHECK(inside(r->query, r->query_len, buf, r->head_len));
    } else {
        CHECK(r->query_len == 0);
    }
    /* Target bytes: no SP, control byte, NUL or DEL got through. */
    size_t tlen = r->path_len + (r->query ? 1 + r->query_len : 0);
    for (size_t i = 0; i < tlen; i++)
        CHECK((uint8_t)r->path[i] > 0x20 && (uint8_t)r->path[i] != 0x7f);
    if (r->forwarded_for) {
        CHECK(r->forwarded_for_len > 0);
        CHECK(inside(r->forwarded_for, r->forwarded_for_len, buf, r->head_len));
    } else {
        CHECK(r->forwarded_for_len == 0);
    }
    if (r->minor_version == 0 && r->keep_alive)
        CHECK(memchr(buf, ':', r->head_len)); /* 1.0 keeps alive only when a header says so */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max_head = data[0] == 0 ? 8192 : (size_t)data[0] * 4 - 4; /* 0..1016 or 8192 */
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;

    httpreq_t r;
    char *copy;
    httpreq_err_t err = parse_copy(buf, len, max_head, &r, &copy);
    CHECK(httpreq_strerror(err) != NULL);
    int status = httpreq_status(err);
    if (err == HTTPREQ_OK || err == HTTPREQ_INCOMPLETE)
        CHECK(status == 0);
    else
        CHECK(status == 400 || status == 405 || status == 431 || status == 505);
    if (err == HTTPREQ_INCOMPLETE)
        CHECK(len < max_head);

    if (err == HTTPREQ_OK) {
        check_ok(copy, len, max_head, &r);
        size_t head_len = r.head_len;
        bool keep_alive = r.keep_alive;
        size_t path_off = (size_t)(r.path - copy);
        free(copy);

        /* The head alone parses the same: nothing after it was looked at. */
        CHECK(parse_copy(buf, head_len, max_head, &r, &copy) == HTTPREQ_OK);
        CHECK(r.head_len == head_len && r.keep_alive == keep_alive);
        CHECK((size_t)(r.path - copy) == path_off);
        free(copy);
        /* Shorter prefixes are incomplete (lines are judged only once complete). */
        size_t cuts[2] = {head_len - 1, head_len / 2};
        for (size_t i = 0; i < 2; i++) {
            CHECK(parse_copy(buf, cuts[i], max_head, &r, &copy) == HTTPREQ_INCOMPLETE);
            free(copy);
        }
        /* One byte less room and the same head is too large. */
        CHECK(parse_copy(buf, len, head_len - 1, &r, &copy) == HTTPREQ_ERR_TOO_LARGE);
    }
    free(copy);
    return 0;
}
