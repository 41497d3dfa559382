/* SPDX-License-Identifier: MIT */
/* mpwrite: the msgpack writer cmsg.c and snapshot.c encode with. Internal to proto/: no public
 * header includes it. The counterpart of mpread.h.
 *
 * Two layers:
 *   - mpwrite_put_*(p, ...) store one value at p, which the caller has made room for, and return
 *     the position after it (snapshot.c reserves a whole swarm at once and uses these);
 *   - mpwrite_t is a cursor over the caller's buffer whose writers check the room first: the
 *     first value that does not fit sets full, writes nothing, and every later write is refused
 *     too, so nothing lands out of order and the caller checks once at the end (cmsg.c).
 * Numbers take their shortest msgpack form (positive fixint, uint 8..64; negative fixint,
 * int 8..32 for negatives), arrays, bins and strs their shortest header: byte for byte what
 * msgpack-c's packer writes for the same calls.
 *
 * Why not msgpack-c's packer: it hands every field to a write callback (on the cluster's request
 * path that callback alone was 860 of 4,330 instructions per request, docs/profile-cluster.md),
 * and its buffer type grows with malloc. These writers are inlined and store straight into the
 * batch buffer. Nothing allocates, nothing is global. */
#ifndef SHOAL_MPWRITE_H
#define SHOAL_MPWRITE_H

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MPWRITE_INLINE static inline __attribute__((always_inline))

/* ---- stores into reserved room ---- */

MPWRITE_INLINE uint8_t *mpwrite_put_be16(uint8_t *p, uint16_t v)
{
    v = htobe16(v);
    memcpy(p, &v, 2);
    return p + 2;
}

MPWRITE_INLINE uint8_t *mpwrite_put_be32(uint8_t *p, uint32_t v)
{
    v = htobe32(v);
    memcpy(p, &v, 4);
    return p + 4;
}

MPWRITE_INLINE uint8_t *mpwrite_put_be64(uint8_t *p, uint64_t v)
{
    v = htobe64(v);
    memcpy(p, &v, 8);
    return p + 8;
}

/* Bytes of v's shortest form. */
MPWRITE_INLINE size_t mpwrite_uint_len(uint64_t v)
{
    return v <= 0x7f ? 1 : v <= UINT8_MAX ? 2 : v <= UINT16_MAX ? 3 : v <= UINT32_MAX ? 5 : 9;
}

/* A non-negative integer, shortest form: at most 9 bytes. */
MPWRITE_INLINE uint8_t *mpwrite_put_uint(uint8_t *p, uint64_t v)
{
    if (v <= 0x7f) {
        *p = (uint8_t)v;
        return p + 1;
    }
    if (v <= UINT8_MAX) {
        p[0] = 0xcc;
        p[1] = (uint8_t)v;
        return p + 2;
    }
    if (v <= UINT16_MAX) {
        *p = 0xcd;
        return mpwrite_put_be16(p + 1, (uint16_t)v);
    }
    if (v <= UINT32_MAX) {
        *p = 0xce;
        return mpwrite_put_be32(p + 1, (uint32_t)v);
    }
    *p = 0xcf;
    return mpwrite_put_be64(p + 1, v);
}

/* Bytes of a 32-bit signed integer's shortest form. */
MPWRITE_INLINE size_t mpwrite_int_len(int32_t v)
{
    if (v >= 0)
        return mpwrite_uint_len((uint64_t)v);
    return v >= -32 ? 1 : v >= INT8_MIN ? 2 : v >= INT16_MIN ? 3 : 5;
}

/* A 32-bit signed integer, shortest form (uint forms for non-negative values): at most 5 bytes. */
MPWRITE_INLINE uint8_t *mpwrite_put_int(uint8_t *p, int32_t v)
{
    if (v >= 0)
        return mpwrite_put_uint(p, (uint64_t)v);
    if (v >= -32) {
        *p = (uint8_t)(int8_t)v; /* negative fixint: 0xe0..0xff */
        return p + 1;
    }
    if (v >= INT8_MIN) {
        p[0] = 0xd0;
        p[1] = (uint8_t)(int8_t)v;
        return p + 2;
    }
    if (v >= INT16_MIN) {
        *p = 0xd1;
        return mpwrite_put_be16(p + 1, (uint16_t)(int16_t)v);
    }
    *p = 0xd2;
    return mpwrite_put_be32(p + 1, (uint32_t)v);
}

/* Header lengths: array (fixarray < 16, array 16, array 32), bin (8, 16, 32), str (fixstr < 32,
 * str 8, 16, 32). */
MPWRITE_INLINE size_t mpwrite_array_len(uint32_t n)
{
    return n < 16 ? 1 : n <= UINT16_MAX ? 3 : 5;
}

MPWRITE_INLINE size_t mpwrite_bin_len(uint32_t n)
{
    return n <= UINT8_MAX ? 2 : n <= UINT16_MAX ? 3 : 5;
}

MPWRITE_INLINE size_t mpwrite_str_len(uint32_t n)
{
    return n < 32 ? 1 : n <= UINT8_MAX ? 2 : n <= UINT16_MAX ? 3 : 5;
}

MPWRITE_INLINE uint8_t *mpwrite_put_array(uint8_t *p, uint32_t n)
{
    if (n < 16) {
        *p = (uint8_t)(0x90 | n);
        return p + 1;
    }
    if (n <= UINT16_MAX) {
        *p = 0xdc;
        return mpwrite_put_be16(p + 1, (uint16_t)n);
    }
    *p = 0xdd;
    return mpwrite_put_be32(p + 1, n);
}

MPWRITE_INLINE uint8_t *mpwrite_put_bin_head(uint8_t *p, uint32_t n)
{
    if (n <= UINT8_MAX) {
        p[0] = 0xc4;
        p[1] = (uint8_t)n;
        return p + 2;
    }
    if (n <= UINT16_MAX) {
        *p = 0xc5;
        return mpwrite_put_be16(p + 1, (uint16_t)n);
    }
    *p = 0xc6;
    return mpwrite_put_be32(p + 1, n);
}

MPWRITE_INLINE uint8_t *mpwrite_put_str_head(uint8_t *p, uint32_t n)
{
    if (n < 32) {
        *p = (uint8_t)(0xa0 | n);
        return p + 1;
    }
    if (n <= UINT8_MAX) {
        p[0] = 0xd9;
        p[1] = (uint8_t)n;
        return p + 2;
    }
    if (n <= UINT16_MAX) {
        *p = 0xda;
        return mpwrite_put_be16(p + 1, (uint16_t)n);
    }
    *p = 0xdb;
    return mpwrite_put_be32(p + 1, n);
}

/* ---- the checked cursor ---- */

typedef struct {
    uint8_t *p;   /* the next byte to write */
    uint8_t *end; /* one past the buffer */
    bool full;    /* a write did not fit; every later one is refused */
} mpwrite_t;

/* Invariant: p <= end; after full is set, p no longer moves. */
MPWRITE_INLINE void mpwrite_init(mpwrite_t *w, uint8_t *buf, size_t cap)
{
    w->p = buf;
    w->end = buf + cap;
    w->full = false;
}

/* The position to write n bytes at, or NULL (and full set) if they do not fit. */
MPWRITE_INLINE uint8_t *mpwrite_room(mpwrite_t *w, size_t n)
{
    if (w->full || n > (size_t)(w->end - w->p)) {
        w->full = true;
        return NULL;
    }
    return w->p;
}

MPWRITE_INLINE void mpwrite_uint(mpwrite_t *w, uint64_t v)
{
    uint8_t *p = mpwrite_room(w, mpwrite_uint_len(v));
    if (p)
        w->p = mpwrite_put_uint(p, v);
}

MPWRITE_INLINE void mpwrite_int(mpwrite_t *w, int32_t v)
{
    uint8_t *p = mpwrite_room(w, mpwrite_int_len(v));
    if (p)
        w->p = mpwrite_put_int(p, v);
}

MPWRITE_INLINE void mpwrite_array(mpwrite_t *w, uint32_t n)
{
    uint8_t *p = mpwrite_room(w, mpwrite_array_len(n));
    if (p)
        w->p = mpwrite_put_array(p, n);
}

/* A bin header for n bytes, which the caller then stores at mpwrite_room(w, n). */
MPWRITE_INLINE void mpwrite_bin_head(mpwrite_t *w, uint32_t n)
{
    uint8_t *p = mpwrite_room(w, mpwrite_bin_len(n));
    if (p)
        w->p = mpwrite_put_bin_head(p, n);
}

/* A header of hlen bytes (put stores it) and n bytes of body, checked as one. */
MPWRITE_INLINE void mpwrite_head_body(mpwrite_t *w, size_t hlen,
                                      uint8_t *(*put)(uint8_t *, uint32_t), const void *src,
                                      uint32_t n)
{
    uint8_t *p = mpwrite_room(w, hlen + n);
    if (p) {
        p = put(p, n);
        if (n)
            memcpy(p, src, n);
        w->p = p + n;
    }
}

/* A whole bin: header and body. */
MPWRITE_INLINE void mpwrite_bin(mpwrite_t *w, const void *src, uint32_t n)
{
    mpwrite_head_body(w, mpwrite_bin_len(n), mpwrite_put_bin_head, src, n);
}

/* A whole str: header and body. */
MPWRITE_INLINE void mpwrite_str(mpwrite_t *w, const char *src, uint32_t n)
{
    mpwrite_head_body(w, mpwrite_str_len(n), mpwrite_put_str_head, src, n);
}

#endif
