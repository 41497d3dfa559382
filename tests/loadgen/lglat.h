/* SPDX-License-Identifier: MIT */
/* lglat: a latency histogram with log-linear buckets (HdrHistogram's shape): values below 32
 * have a bucket each, above that every power of two is cut into 32 equal buckets, so a
 * quantile is within 1/64 of the true value. Fixed size, no allocation: one per worker thread,
 * merged at the end.
 *
 * Invariant: count == sum of bucket[]; min_ns <= every recorded value <= max_ns. */
#ifndef SHOAL_LGLAT_H
#define SHOAL_LGLAT_H

#include <stdint.h>

#define LGLAT_SUB_BITS 5
#define LGLAT_SUB      (1u << LGLAT_SUB_BITS)
#define LGLAT_BUCKETS  ((64 - LGLAT_SUB_BITS + 1) * LGLAT_SUB)

typedef struct {
    uint64_t count;
    uint64_t sum_ns;
    uint64_t min_ns;
    uint64_t max_ns;
    uint64_t bucket[LGLAT_BUCKETS];
} lglat_t;

/* Empty the histogram. */
void lglat_init(lglat_t *h);
/* Record one value in nanoseconds. O(1). */
void lglat_record(lglat_t *h, uint64_t ns);
/* Add src's counts into dst. */
void lglat_merge(lglat_t *dst, const lglat_t *src);
/* The value at quantile q in [0, 1]: the midpoint of the bucket holding the ceil(q * count)-th
 * smallest value, clamped to [min, max]; exactly max when that is the largest value; 0 if
 * empty. */
uint64_t lglat_quantile(const lglat_t *h, double q);
/* Bucket index of a value, and the lowest value of a bucket (exposed for tests). */
unsigned lglat_bucket(uint64_t ns);
uint64_t lglat_bucket_low(unsigned b);

#endif
