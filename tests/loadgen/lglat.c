/* SPDX-License-Identifier: MIT */
/* lglat: log-linear latency histogram; see lglat.h. */
#include "lglat.h"

#include <string.h>

void lglat_init(lglat_t *h)
{
    memset(h, 0, sizeof(*h));
    h->min_ns = UINT64_MAX;
}

unsigned lglat_bucket(uint64_t ns)
{
    if (ns < LGLAT_SUB)
        return (unsigned)ns;
    unsigned e = 63u - (unsigned)__builtin_clzll(ns); /* >= LGLAT_SUB_BITS */
    unsigned sub = (unsigned)(ns >> (e - LGLAT_SUB_BITS)) & (LGLAT_SUB - 1);
    return (e - LGLAT_SUB_BITS + 1) * LGLAT_SUB + sub;
}

uint64_t lglat_bucket_low(unsigned b)
{
    if (b < LGLAT_SUB)
        return b;
    unsigned e = b / LGLAT_SUB + LGLAT_SUB_BITS - 1;
    uint64_t sub = b % LGLAT_SUB;
    return (1ULL << e) | (sub << (e - LGLAT_SUB_BITS));
}

void lglat_record(lglat_t *h, uint64_t ns)
{
    h->bucket[lglat_bucket(ns)]++;
    h->count++;
    h->sum_ns += ns;
    if (ns < h->min_ns)
        h->min_ns = ns;
    if (ns > h->max_ns)
        h->max_ns = ns;
}

void lglat_merge(lglat_t *dst, const lglat_t *src)
{
    for (unsigned i = 0; i < LGLAT_BUCKETS; i++)
        dst->bucket[i] += src->bucket[i];
    dst->count += src->count;
    dst->sum_ns += src->sum_ns;
    if (src->min_ns < dst->min_ns)
        dst->min_ns = src->min_ns;
    if (src->max_ns > dst->max_ns)
        dst->max_ns = src->max_ns;
}

uint64_t lglat_quantile(const lglat_t *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q < 0.0)
        q = 0.0;
    if (q > 1.0)
        q = 1.0;
    /* The rank-th smallest value, 1-based: ceil(q * count), at least 1. */
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if ((double)rank < q * (double)h->count)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank >= h->count)
        return h->max_ns; /* the largest value is known exactly */
    uint64_t seen = 0;
    for (unsigned b = 0; b < LGLAT_BUCKETS; b++) {
        seen += h->bucket[b];
        if (seen >= rank) {
            uint64_t lo = lglat_bucket_low(b);
            uint64_t hi = b + 1 < LGLAT_BUCKETS ? lglat_bucket_low(b + 1) - 1 : UINT64_MAX;
            uint64_t mid = lo + (hi - lo) / 2;
            if (mid < h->min_ns)
                mid = h->min_ns;
            if (mid > h->max_ns)
                mid = h->max_ns;
            return mid;
        }
    }
    return h->max_ns;
}
