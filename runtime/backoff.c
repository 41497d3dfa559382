/* SPDX-License-Identifier: MIT */
/* backoff: doubling intervals between log lines of a repeated condition (backoff.h). */
#include "backoff.h"

bool backoff_due(backoff_t *b, int64_t now_ms)
{
    b->last_ms = now_ms;
    b->unlogged++;
    if (!b->active) {
        b->active = true;
        b->count = 1;
        b->interval_ms = b->first_ms > 0 ? b->first_ms : 1000;
        b->next_ms = now_ms + b->interval_ms;
        b->unlogged = 0;
        return true;
    }
    b->count++;
    if (now_ms < b->next_ms)
        return false;
    int64_t max = b->max_ms > 0 ? b->max_ms : 60000;
    b->interval_ms = b->interval_ms * 2 > max ? max : b->interval_ms * 2;
    b->next_ms = now_ms + b->interval_ms;
    b->unlogged = 0;
    return true;
}

bool backoff_quiet(const backoff_t *b, int64_t now_ms)
{
    return b->active && now_ms - b->last_ms > b->interval_ms;
}

bool backoff_ok(backoff_t *b)
{
    bool was = b->active;
    b->active = false;
    b->count = 0;
    b->unlogged = 0;
    return was;
}
