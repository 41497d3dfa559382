/* SPDX-License-Identifier: MIT */
/* ratelimit: per-address token buckets as GCRA over a shared atomic table (ratelimit.h).
 *
 * Invariant: a slot's payload is the time (us since epoch) at which its address's bucket is
 * full again; the bucket holds burst - (tat - now) / period tokens at time now (full when
 * tat <= now). A request is allowed iff max(tat, now) - now <= (burst - 1) * period, and then tat
 * becomes max(tat, now) + period. */
#include "ratelimit.h"

#include "addrtab.h"

#include <stdlib.h>

#define CAS_TRIES 8 /* a slot updated by so many other threads in a row: let the request go */

struct ratelimit {
    addrtab_t tab;
    uint64_t epoch;
    uint64_t period; /* us per token */
    uint64_t tau;    /* (burst - 1) * period: how far ahead of now tat may be */
    _Atomic uint64_t evictions;
};

ratelimit_t *ratelimit_new(const ratelimit_config_t *cfg, uint64_t now_us)
{
    if (cfg->rate < 1 || cfg->rate > RATELIMIT_MAX_RATE || cfg->burst < 1 ||
        cfg->burst > RATELIMIT_MAX_RATE)
        return NULL;
    ratelimit_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    if (addrtab_init(&self->tab, cfg->slots) != 0) {
        free(self);
        return NULL;
    }
    self->epoch = now_us;
    self->period = (1000000u + cfg->rate / 2) / cfg->rate;
    self->tau = (uint64_t)(cfg->burst - 1) * self->period;
    atomic_init(&self->evictions, 0);
    return self;
}

bool ratelimit_take(ratelimit_t *self, uint64_t key, uint64_t now_us)
{
    uint64_t now = now_us > self->epoch ? now_us - self->epoch : 0;
    if (now > ADDRTAB_PAYLOAD_MASK - self->tau - self->period)
        return true; /* 8.9 years up: the clock no longer fits a slot; stop limiting */
    uint64_t tag;
    _Atomic uint64_t *group = addrtab_group(&self->tab, key, &tag);
    for (int attempt = 0; attempt < CAS_TRIES; attempt++) {
        /* Our slot, or else the one full soonest (an empty slot is full at time 0). */
        _Atomic uint64_t *slot = NULL, *victim = group;
        bool fresh = false;
        uint64_t seen = 0, victim_seen = 0, victim_tat = UINT64_MAX;
        for (int i = 0; i < ADDRTAB_PROBES; i++) {
            uint64_t v = atomic_load_explicit(&group[i], memory_order_relaxed);
            if (addrtab_tag(v) == tag) {
                slot = &group[i];
                seen = v;
                break;
            }
            uint64_t t = addrtab_tag(v) ? addrtab_payload(v) : 0;
            if (t < victim_tat) {
                victim_tat = t;
                victim = &group[i];
                victim_seen = v;
            }
        }
        uint64_t tat = now;
        if (slot) {
            uint64_t t = addrtab_payload(seen);
            if (t > now)
                tat = t;
            if (tat - now > self->tau)
                return false;
        } else {
            slot = victim;
            seen = victim_seen;
            fresh = true;
        }
        if (atomic_compare_exchange_weak_explicit(slot, &seen,
                                                  addrtab_make(tag, tat + self->period),
                                                  memory_order_relaxed, memory_order_relaxed)) {
            if (fresh && addrtab_tag(victim_seen) && victim_tat > now)
                atomic_fetch_add_explicit(&self->evictions, 1, memory_order_relaxed);
            return true;
        }
    }
    return true;
}

uint64_t ratelimit_evictions(const ratelimit_t *self)
{
    return atomic_load_explicit(&self->evictions, memory_order_relaxed);
}

uint32_t ratelimit_slots(const ratelimit_t *self)
{
    return addrtab_slots(&self->tab);
}

void ratelimit_destroy(ratelimit_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    addrtab_free(&(*self_p)->tab);
    free(*self_p);
    *self_p = NULL;
}
