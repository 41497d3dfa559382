/* SPDX-License-Identifier: MIT */
/* backoff: when to log a condition that keeps happening (Redis failing, garbage on a socket):
 * the first occurrence at once, then at most one line per interval, doubling from first_ms up to
 * max_ms while it lasts, until the owner says it is over. Plain data, one owner thread. */
#ifndef SHOAL_BACKOFF_H
#define SHOAL_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int64_t first_ms, max_ms; /* set by the owner; zero-initialise the rest */
    bool active;              /* in a streak: something happened and no backoff_ok() since */
    int64_t interval_ms;      /* the current interval */
    int64_t next_ms;          /* no line before this */
    int64_t last_ms;          /* the last occurrence */
    uint64_t count;           /* occurrences in this streak */
    uint64_t unlogged;        /* occurrences since the last line */
} backoff_t;

/* It happened (again) at now_ms. Returns true when a line is due now: the first occurrence of a
 * streak, or the first one past the current interval (which then doubles, up to max_ms). */
bool backoff_due(backoff_t *b, int64_t now_ms);

/* True if a streak is going on but nothing happened for a whole interval before now_ms (for
 * conditions that have no "ok" event of their own: call backoff_ok() then). */
bool backoff_quiet(const backoff_t *b, int64_t now_ms);

/* The condition is over. Returns true if a streak was going on (say so once), and resets. */
bool backoff_ok(backoff_t *b);

#endif
