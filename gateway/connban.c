/* SPDX-License-Identifier: MIT */
/* connban: bans for invalid connection ids over a shared atomic table (connban.h).
 *
 * Invariant: a slot's payload is BANNED | strikes << 32 | t, t in seconds since epoch: while not
 * banned, strikes (>= 1) counted since window start t; while banned, the ban ends at t. An entry
 * whose window or ban is over is as good as empty. */
#include "connban.h"

#include "addrtab.h"

#include <stdlib.h>

#define BANNED    (UINT64_C(1) << 47)
#define STRIKES_S 32
#define CAS_TRIES 8

struct connban {
    addrtab_t tab;
    uint32_t epoch;
    connban_config_t cfg;
    /* The latest end of any ban (seconds since epoch): before it nobody can be banned, so the
     * check of every datagram is this one load while no ban is running. Only grows. */
    _Atomic uint64_t bans_until;
};

connban_t *connban_new(const connban_config_t *cfg, uint32_t now_s)
{
    if (cfg->strikes < 1 || cfg->strikes > CONNBAN_MAX_STRIKES || cfg->window_s < 1 ||
        cfg->ban_s < 1)
        return NULL;
    connban_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    if (addrtab_init(&self->tab, cfg->slots) != 0) {
        free(self);
        return NULL;
    }
    self->epoch = now_s;
    self->cfg = *cfg;
    atomic_init(&self->bans_until, 0);
    return self;
}

static uint64_t rel(const connban_t *self, uint32_t now_s)
{
    return now_s > self->epoch ? now_s - self->epoch : 0;
}

static uint64_t slot_time(uint64_t v)
{
    return v & UINT32_MAX;
}

static uint64_t slot_strikes(uint64_t v)
{
    return (addrtab_payload(v) & ~BANNED) >> STRIKES_S;
}

/* When the entry v stops mattering: the end of its ban, or of its window. */
static uint64_t expiry(const connban_t *self, uint64_t v)
{
    if (!addrtab_tag(v))
        return 0;
    return (v & BANNED) ? slot_time(v) : slot_time(v) + self->cfg.window_s;
}

bool connban_banned(const connban_t *self, uint64_t key, uint32_t now_s)
{
    uint64_t now = rel(self, now_s), tag;
    if (now >= atomic_load_explicit(&self->bans_until, memory_order_relaxed))
        return false;
    _Atomic uint64_t *group = addrtab_group(&self->tab, key, &tag);
    for (int i = 0; i < ADDRTAB_PROBES; i++) {
        uint64_t v = atomic_load_explicit(&group[i], memory_order_relaxed);
        if (addrtab_tag(v) == tag)
            return (v & BANNED) && now < slot_time(v);
    }
    return false;
}

bool connban_strike(connban_t *self, uint64_t key, uint32_t now_s)
{
    uint64_t now = rel(self, now_s), tag;
    _Atomic uint64_t *group = addrtab_group(&self->tab, key, &tag);
    for (int attempt = 0; attempt < CAS_TRIES; attempt++) {
        _Atomic uint64_t *slot = NULL;
        uint64_t seen = 0, soonest = UINT64_MAX;
        bool found = false;
        for (int i = 0; i < ADDRTAB_PROBES; i++) {
            uint64_t v = atomic_load_explicit(&group[i], memory_order_relaxed);
            if (addrtab_tag(v) == tag) {
                slot = &group[i];
                seen = v;
                found = true;
                break;
            }
            uint64_t e = expiry(self, v);
            if (e < soonest) {
                soonest = e;
                slot = &group[i];
                seen = v;
            }
        }
        uint64_t strikes = 1, start = now;
        if (found && (seen & BANNED) && now < slot_time(seen))
            return false; /* banned already: nothing to count */
        if (found && !(seen & BANNED) && now < slot_time(seen) + self->cfg.window_s) {
            strikes = slot_strikes(seen) + 1;
            start = slot_time(seen);
        }
        bool ban = strikes >= self->cfg.strikes;
        uint64_t payload = ban ? BANNED | (now + self->cfg.ban_s) : strikes << STRIKES_S | start;
        if (!atomic_compare_exchange_weak_explicit(slot, &seen, addrtab_make(tag, payload),
                                                   memory_order_relaxed, memory_order_relaxed))
            continue;
        if (ban) {
            uint64_t until = atomic_load_explicit(&self->bans_until, memory_order_relaxed);
            /* Bounded: each failed exchange means another ban raised it meanwhile. */
            while (until < now + self->cfg.ban_s &&
                   !atomic_compare_exchange_weak_explicit(
                       &self->bans_until, &until, now + self->cfg.ban_s, memory_order_relaxed,
                       memory_order_relaxed))
                ;
        }
        return ban;
    }
    return false;
}

uint32_t connban_slots(const connban_t *self)
{
    return addrtab_slots(&self->tab);
}

void connban_destroy(connban_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    addrtab_free(&(*self_p)->tab);
    free(*self_p);
    *self_p = NULL;
}
