/* SPDX-License-Identifier: MIT */
/* ratelimit: per-address token buckets (--rate-limit, --rate-limit-burst) in one fixed table that
 * every front-end worker shares without a lock (addrtab.h).
 *
 * Each client address (IPv6 by /64) has a bucket of `burst` tokens refilled at `rate` tokens a
 * second; a request takes one token or is refused. The bucket is kept as the time it will be
 * full again (GCRA, the "theoretical arrival time"), so a slot is one 48-bit number of
 * microseconds since the limiter's epoch (8.9 years) and a request is one load plus, if allowed,
 * one compare-and-swap: a refused request writes nothing. One shared table, not one per worker:
 * the kernel spreads one client's flows over the workers, and per-worker buckets would multiply
 * its limit by their number.
 *
 * A table that is full replaces the entry of its probe group that will be full soonest: an entry
 * already full again (an address idle for burst/rate seconds) is lost at no cost; replacing one
 * still limited gives that address a full bucket back (counted, ratelimit_evictions()).
 * Exactness: the refill is 1e6/rate microseconds per token rounded to the microsecond (exact when
 * rate divides 1,000,000; otherwise off by under 0.5 us a token). */
#ifndef SHOAL_RATELIMIT_H
#define SHOAL_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ratelimit ratelimit_t;

#define RATELIMIT_MAX_RATE 1000000u /* tokens a second */

typedef struct {
    uint32_t rate;  /* tokens a second, 1..RATELIMIT_MAX_RATE */
    uint32_t burst; /* bucket size, 1..RATELIMIT_MAX_RATE */
    uint32_t slots; /* table size (addrtab_init rounds it) */
} ratelimit_config_t;

/* A limiter whose clock starts at now_us (any microsecond clock the caller keeps passing, e.g.
 * mono_us()). Returns NULL if the configuration is out of range or memory runs out. */
ratelimit_t *ratelimit_new(const ratelimit_config_t *cfg, uint64_t now_us);

/* Take a token for key (addrtab_key()) at now_us: true if the request may go on. Any thread. */
bool ratelimit_take(ratelimit_t *self, uint64_t key, uint64_t now_us);

/* Entries replaced while their address was still limited (relaxed; any thread). */
uint64_t ratelimit_evictions(const ratelimit_t *self);

/* Slots in the table (its memory is 8 bytes each). */
uint32_t ratelimit_slots(const ratelimit_t *self);

/* Free everything; no thread may be using it. NULL-safe. */
void ratelimit_destroy(ratelimit_t **self_p);

#endif
