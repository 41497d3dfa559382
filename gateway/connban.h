/* SPDX-License-Identifier: MIT */
/* connban: addresses that sent too many invalid UDP connection ids are ignored for a while
 * (--connid-ban N within --connid-ban-window S bans for --connid-ban-time S), in one fixed table
 * every front-end worker shares without a lock (addrtab.h; IPv6 by /64).
 *
 * A slot's payload: a banned bit, a strike count (15 bits) and a time in seconds since the
 * table's epoch (32 bits): the window's start while counting, the end of the ban once banned.
 * Checking is one load; a strike is a compare-and-swap. A full table replaces the entry of the
 * group that expires first (a window or ban already over costs nothing; replacing a live one
 * forgets its strikes or lifts its ban early).
 *
 * A UDP source address can be forged: whoever can spoof an address can get it banned for the
 * ban time (on UDP only; the front end never applies the ban to HTTP, whose addresses TCP has
 * checked). Keep the ban time short. */
#ifndef SHOAL_CONNBAN_H
#define SHOAL_CONNBAN_H

#include <stdbool.h>
#include <stdint.h>

typedef struct connban connban_t;

#define CONNBAN_MAX_STRIKES 32767u

typedef struct {
    uint32_t strikes;  /* invalid ids that ban, 1..CONNBAN_MAX_STRIKES */
    uint32_t window_s; /* ... counted within this many seconds, >= 1 */
    uint32_t ban_s;    /* how long a ban lasts, >= 1 */
    uint32_t slots;    /* table size (addrtab_init rounds it) */
} connban_config_t;

/* A ban list whose clock starts at now_s (any seconds clock the caller keeps passing, e.g.
 * mono_s()). Returns NULL if the configuration is out of range or memory runs out. */
connban_t *connban_new(const connban_config_t *cfg, uint32_t now_s);

/* Whether key (addrtab_key()) is banned at now_s. Any thread; one load. */
bool connban_banned(const connban_t *self, uint64_t key, uint32_t now_s);

/* Count an invalid connection id from key at now_s. Returns true if this strike started a ban
 * (exactly one strike per ban does). Any thread. */
bool connban_strike(connban_t *self, uint64_t key, uint32_t now_s);

/* Slots in the table (8 bytes each). */
uint32_t connban_slots(const connban_t *self);

/* Free everything; no thread may be using it. NULL-safe. */
void connban_destroy(connban_t **self_p);

#endif
