/* SPDX-License-Identifier: MIT */
/* mono: the monotonic clocks every daemon module reads, in the units each one keeps. Inline: the
 * coarse ones are read on the request path (once per batch). */
#ifndef SHOAL_MONO_H
#define SHOAL_MONO_H

#include <stdint.h>
#include <time.h>

/* Whole seconds of CLOCK_MONOTONIC_COARSE: the clock every repository caller passes as now. */
static inline uint32_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)ts.tv_sec;
}

/* Milliseconds of CLOCK_MONOTONIC_COARSE (a few ms of resolution, ~10 ns a read). */
static inline uint64_t mono_coarse_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Microseconds of CLOCK_MONOTONIC. */
static inline int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Milliseconds of CLOCK_MONOTONIC. */
static inline int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The CLOCK_MONOTONIC time ms milliseconds from now, for pthread_cond_timedwait() on a condition
 * whose attribute was set to CLOCK_MONOTONIC. */
static inline struct timespec mono_deadline(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ms < 0)
        ms = 0;
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

#endif
