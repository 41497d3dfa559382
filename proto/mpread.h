/* SPDX-License-Identifier: MIT */
/* mpread: the strict msgpack reader that cmsg.c and snapshot.c decode with. Internal to proto/:
 * no public header includes it.
 *
 * A cursor over the caller's bytes. Each reader checks one value's header against the type the
 * field wants and against the bytes left, then reads the number (or the length or count) it
 * carries; a bin or str body is taken only by mpread_body(), once the caller has checked the
 * length against the field's limit, so no length from the input is trusted before that and a
 * wrong length is the caller's error rather than a truncation.
 *
 * Results are mpread_err_t, which each codec maps to its own error enum where it calls (with
 * MPREAD_TRY). Every reader is always inlined: they are called per field on the node's request
 * path, where a call costs more than the read. Nothing allocates, nothing is global.
 *
 * Invariant: r->p <= r->end at all times; every read first checks that the bytes it needs lie
 * before end. After an error the cursor is somewhere inside the value and the outputs may have
 * been written: callers stop there and use neither. */
#ifndef SHOAL_MPREAD_H
#define SHOAL_MPREAD_H

#include <endian.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MPREAD_INLINE static inline __attribute__((always_inline))

typedef struct {
    const uint8_t *p;   /* the next byte to read */
    const uint8_t *end; /* one past the last byte */
} mpread_t;

typedef enum {
    MPREAD_OK = 0,
    MPREAD_TRUNCATED, /* the input ends inside the value */
    MPREAD_TYPE,      /* a value of another msgpack type than the one asked for */
    MPREAD_RANGE,     /* an integer outside the range asked for (negative ones included) */
} mpread_err_t;

/* Return from the enclosing function if expr, an mpread_* call, fails: with truncated, type or
 * range, the caller's own error values for MPREAD_TRUNCATED, MPREAD_TYPE and MPREAD_RANGE. Where
 * a reader fails with a constant, as inlined they all do, the mapping folds away. */
#define MPREAD_TRY(expr, truncated, type, range)                                                   \
    do {                                                                                           \
        mpread_err_t mpread_e_ = (expr);                                                           \
        if (mpread_e_ == MPREAD_TRUNCATED)                                                         \
            return (truncated);                                                                    \
        if (mpread_e_ == MPREAD_TYPE)                                                              \
            return (type);                                                                         \
        if (mpread_e_ == MPREAD_RANGE)                                                             \
            return (range);                                                                        \
    } while (0)

/* Bytes left to read. */
MPREAD_INLINE size_t mpread_left(const mpread_t *r)
{
    return (size_t)(r->end - r->p);
}

/* The big-endian number of n = 1, 2, 4 or 8 bytes at p (fixed-size loads, no loop). */
MPREAD_INLINE uint64_t mpread_load_be(const uint8_t *p, size_t n)
{
    uint16_t v16;
    uint32_t v32;
    uint64_t v64;
    switch (n) {
    case 1:
        return p[0];
    case 2:
        memcpy(&v16, p, 2);
        return be16toh(v16);
    case 4:
        memcpy(&v32, p, 4);
        return be32toh(v32);
    default:
        memcpy(&v64, p, 8);
        return be64toh(v64);
    }
}

/* A header byte (of a type the caller has checked) and the n-byte big-endian number after it,
 * into *v. MPREAD_TRUNCATED if fewer than 1 + n bytes are left. */
MPREAD_INLINE mpread_err_t mpread_head(mpread_t *r, size_t n, uint64_t *v)
{
    if (mpread_left(r) < 1 + n)
        return MPREAD_TRUNCATED;
    *v = mpread_load_be(r->p + 1, n);
    r->p += 1 + n;
    return MPREAD_OK;
}

/* An array header (fixarray, array 16, array 32); *n gets its element count, unchecked. */
MPREAD_INLINE mpread_err_t mpread_array(mpread_t *r, uint64_t *n)
{
    if (mpread_left(r) < 1)
        return MPREAD_TRUNCATED;
    uint8_t b = *r->p;
    if ((b & 0xf0) == 0x90) {
        *n = b & 0x0f;
        r->p++;
        return MPREAD_OK;
    }
    if (b == 0xdc)
        return mpread_head(r, 2, n);
    if (b == 0xdd)
        return mpread_head(r, 4, n);
    return MPREAD_TYPE;
}

/* Any msgpack integer no greater than max, in any of its encodings (int 8..64 included when
 * the value is not negative). A negative one, or one above max, is MPREAD_RANGE. */
MPREAD_INLINE mpread_err_t mpread_uint(mpread_t *r, uint64_t max, uint64_t *v)
{
    if (mpread_left(r) < 1)
        return MPREAD_TRUNCATED;
    uint8_t b = *r->p;
    if (b <= 0x7f) { /* positive fixint */
        *v = b;
        r->p++;
        return b <= max ? MPREAD_OK : MPREAD_RANGE;
    }
    if (b >= 0xe0) { /* negative fixint */
        r->p++;
        return MPREAD_RANGE;
    }
    mpread_err_t e;
    if (b >= 0xcc && b <= 0xcf) { /* uint 8, 16, 32, 64 */
        e = mpread_head(r, (size_t)1 << (b - 0xcc), v);
    } else if (b >= 0xd0 && b <= 0xd3) { /* int 8, 16, 32, 64: the sign bit is the top one read */
        size_t n = (size_t)1 << (b - 0xd0);
        e = mpread_head(r, n, v);
        if (e == MPREAD_OK && *v >> (8 * n - 1))
            return MPREAD_RANGE;
    } else {
        return MPREAD_TYPE;
    }
    if (e != MPREAD_OK)
        return e;
    return *v <= max ? MPREAD_OK : MPREAD_RANGE;
}

MPREAD_INLINE mpread_err_t mpread_u32(mpread_t *r, uint32_t *v)
{
    uint64_t x;
    mpread_err_t e = mpread_uint(r, UINT32_MAX, &x);
    if (e == MPREAD_OK)
        *v = (uint32_t)x;
    return e;
}

MPREAD_INLINE mpread_err_t mpread_u64(mpread_t *r, uint64_t *v)
{
    return mpread_uint(r, UINT64_MAX, v);
}

/* An integer that must equal want (a version, a message type): MPREAD_RANGE for any other
 * integer, negative ones included. */
MPREAD_INLINE mpread_err_t mpread_expect(mpread_t *r, uint64_t want)
{
    uint64_t v;
    mpread_err_t e = mpread_uint(r, UINT64_MAX, &v);
    return e == MPREAD_OK && v != want ? MPREAD_RANGE : e;
}

/* The head of a message that is an array whose first element is its version: the array header
 * (its element count into *fields) and then, unless the array is empty, the version, which must
 * equal want (MPREAD_RANGE for any other integer). The version comes before the shape, since
 * another version may have another shape: the caller checks *fields only after this, and an
 * empty array, which has no version, is its shape error. */
MPREAD_INLINE mpread_err_t mpread_versioned(mpread_t *r, uint64_t want, uint64_t *fields)
{
    mpread_err_t e = mpread_array(r, fields);
    if (e != MPREAD_OK || *fields == 0)
        return e;
    return mpread_expect(r, want);
}

/* Any msgpack integer from INT32_MIN to INT32_MAX, in any of its encodings. */
MPREAD_INLINE mpread_err_t mpread_i32(mpread_t *r, int32_t *v)
{
    if (mpread_left(r) < 1)
        return MPREAD_TRUNCATED;
    uint8_t b = *r->p;
    if (b <= 0x7f || b >= 0xe0) { /* positive and negative fixint */
        *v = (int8_t)b;
        r->p++;
        return MPREAD_OK;
    }
    if (b >= 0xcc && b <= 0xcf) { /* uint 8, 16, 32, 64 */
        uint64_t u;
        mpread_err_t e = mpread_uint(r, INT32_MAX, &u);
        if (e == MPREAD_OK)
            *v = (int32_t)u;
        return e;
    }
    if (b >= 0xd0 && b <= 0xd3) { /* int 8, 16, 32, 64: sign-extended from n bytes */
        size_t n = (size_t)1 << (b - 0xd0);
        uint64_t raw;
        mpread_err_t e = mpread_head(r, n, &raw);
        if (e != MPREAD_OK)
            return e;
        unsigned shift = (unsigned)(64 - 8 * n);
        int64_t s = (int64_t)(raw << shift) >> shift;
        if (s < INT32_MIN || s > INT32_MAX)
            return MPREAD_RANGE;
        *v = (int32_t)s;
        return MPREAD_OK;
    }
    return MPREAD_TYPE;
}

/* A bin header (bin 8, 16, 32); *n gets its length, unchecked. The body is the caller's to take
 * with mpread_body(). */
MPREAD_INLINE mpread_err_t mpread_bin_head(mpread_t *r, uint64_t *n)
{
    if (mpread_left(r) < 1)
        return MPREAD_TRUNCATED;
    uint8_t b = *r->p;
    if (b >= 0xc4 && b <= 0xc6)
        return mpread_head(r, (size_t)1 << (b - 0xc4), n);
    return MPREAD_TYPE;
}

/* A str header (fixstr, str 8, 16, 32); as mpread_bin_head(). */
MPREAD_INLINE mpread_err_t mpread_str_head(mpread_t *r, uint64_t *n)
{
    if (mpread_left(r) < 1)
        return MPREAD_TRUNCATED;
    uint8_t b = *r->p;
    if ((b & 0xe0) == 0xa0) {
        *n = b & 0x1f;
        r->p++;
        return MPREAD_OK;
    }
    if (b >= 0xd9 && b <= 0xdb)
        return mpread_head(r, (size_t)1 << (b - 0xd9), n);
    return MPREAD_TYPE;
}

/* The next n bytes, left in the input: *body points at them. */
MPREAD_INLINE mpread_err_t mpread_body(mpread_t *r, uint64_t n, const uint8_t **body)
{
    if (mpread_left(r) < n)
        return MPREAD_TRUNCATED;
    *body = r->p;
    r->p += n;
    return MPREAD_OK;
}

#endif
