/* SPDX-License-Identifier: MIT */
/* pset: a set of partitions, one bit per partition (PARTITION_COUNT bits in 64-bit words): what
 * a node owns, holds, has dirty, must export. Plain data, inline operations; the caller decides
 * who may touch it (the repository's dirty set is atomic and has its own calls). */
#ifndef SHOAL_PSET_H
#define SHOAL_PSET_H

#include "partition.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define PSET_WORDS (PARTITION_COUNT / 64)

typedef struct {
    uint64_t w[PSET_WORDS];
} pset_t;

static inline bool pset_has(const pset_t *s, uint32_t p)
{
    return (s->w[p >> 6] >> (p & 63)) & 1;
}

static inline void pset_add(pset_t *s, uint32_t p)
{
    s->w[p >> 6] |= UINT64_C(1) << (p & 63);
}

static inline void pset_del(pset_t *s, uint32_t p)
{
    s->w[p >> 6] &= ~(UINT64_C(1) << (p & 63));
}

static inline void pset_clear(pset_t *s)
{
    memset(s->w, 0, sizeof(s->w));
}

static inline void pset_fill(pset_t *s)
{
    memset(s->w, 0xff, sizeof(s->w));
}

static inline bool pset_empty(const pset_t *s)
{
    for (unsigned i = 0; i < PSET_WORDS; i++)
        if (s->w[i])
            return false;
    return true;
}

static inline uint32_t pset_count(const pset_t *s)
{
    uint32_t n = 0;
    for (unsigned i = 0; i < PSET_WORDS; i++)
        n += (uint32_t)__builtin_popcountll(s->w[i]);
    return n;
}

#endif
