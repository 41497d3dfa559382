/* SPDX-License-Identifier: MIT */
/* bencode: a bounded writer into a caller buffer (BEP 3 encoding).
 *
 * Writes never run past cap; once something does not fit, the writer remembers the overflow and
 * every later call is a no-op, so a caller checks once at the end. Dictionary keys must be given
 * in sorted order by the caller (BEP 3 requires it); the writer does not reorder. */
#ifndef SHOAL_BENCODE_H
#define SHOAL_BENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *buf;
    size_t cap;
    size_t len;
    bool overflow;
} bencode_t;

void bencode_init(bencode_t *b, char *buf, size_t cap);
void bencode_dict(bencode_t *b);                           /* 'd' */
void bencode_list(bencode_t *b);                           /* 'l' */
void bencode_end(bencode_t *b);                            /* 'e' */
void bencode_int(bencode_t *b, int64_t v);                 /* i<v>e */
void bencode_str(bencode_t *b, const void *s, size_t len); /* <len>:<bytes> */
void bencode_cstr(bencode_t *b, const char *s);            /* NUL-terminated string */
/* A dictionary entry "key" -> integer, and "key" -> string: the common shapes. */
void bencode_kv_int(bencode_t *b, const char *key, int64_t v);
void bencode_kv_str(bencode_t *b, const char *key, const void *s, size_t len);
/* Bytes written so far, or 0 if anything overflowed. */
size_t bencode_done(const bencode_t *b);

#endif
