/* SPDX-License-Identifier: MIT */
/* access: the tracker's access list (allow or deny by info-hash) as the front end consults it on
 * every announce and scrape, and as operators change it while it serves.
 *
 * The list is an immutable aset_t (proto/accesslist.h) behind an atomic pointer. A worker looks a
 * hash up without a lock: it publishes the set it is about to read in its own hazard slot (a
 * seq_cst store), re-reads the pointer (retrying if a replace came in between), looks up, and
 * clears the slot. access_replace() swaps the pointer, then frees the old set once no worker's
 * slot holds it: it polls the slots (a reader holds one for a single lookup) a bounded number of
 * times; a set still held then (its reader descheduled mid-lookup) waits on a retired list that
 * every later replace and access_destroy() sweep again. So a set is never freed while a worker
 * can still read it, and the request path never waits for a replace.
 *
 * Why it is safe: the reader's slot store and re-read, and the swapper's exchange and slot reads,
 * are all seq_cst, so in their single total order either the re-read comes after the exchange
 * (the reader sees the new pointer and never touches the old set) or the slot store comes before
 * it (the swapper sees the slot holding the old set and does not free it). The reader clears the
 * slot with a release store after its last read of the set, which the swapper's load acquires.
 *
 * Modes: off (every hash allowed, the set is not even read), allow (only listed hashes), deny
 * (every hash but the listed ones). allow with an empty list refuses everything. Writers
 * (replace, edit, listing) are serialised by a mutex that the request path never takes. */
#ifndef SHOAL_ACCESS_H
#define SHOAL_ACCESS_H

#include "accesslist.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a refused announce or scrape is told (BEP 15 error text, HTTP failure reason). */
#define ACCESS_REFUSED_MSG "torrent not allowed on this tracker"

typedef enum {
    ACCESS_OFF = 0,
    ACCESS_ALLOW = 1, /* only listed info-hashes are served */
    ACCESS_DENY = 2,  /* listed info-hashes are refused */
} access_mode_t;

typedef struct access access_t;

/* Decisions made against the list, summed over the workers (mode off decides nothing). */
typedef struct {
    uint64_t allowed, refused;
} access_stats_t;

/* "off", "allow" or "deny" into *out. Returns 0, or -1 (out unchanged). */
int access_mode_parse(const char *text, access_mode_t *out);

/* The mode's name: "off", "allow" or "deny". */
const char *access_mode_name(access_mode_t mode);

/* An access list in mode with an empty set, for workers 0..n_workers-1 (each calls
 * access_allows() with its own index only). Returns NULL if memory runs out or n_workers is 0. */
access_t *access_new(access_mode_t mode, unsigned n_workers);

/* Free the list and every set it holds, then set *self_p to NULL. No worker may be calling
 * access_allows() any more. NULL-safe. */
void access_destroy(access_t **self_p);

/* Whether worker (0..n_workers-1, the caller's own index; one thread per index at a time) may
 * serve info-hash h. Mode off: true without touching the set. Lock-free, allocates nothing. */
bool access_allows(access_t *self, unsigned worker, const uint8_t h[ASET_HASH_LEN]);

/* Whether worker may serve every one of the n info-hashes at hashes (n * 20 bytes, as a scrape
 * carries them): one hazard publication for all, stopping at the first refused (each decision
 * made is counted). Mode off: true. */
bool access_allows_all(access_t *self, unsigned worker, const uint8_t *hashes, size_t n);

/* The number of worker slots given to access_new(). */
unsigned access_workers(const access_t *self);

/* Serve with set from now on (takes it: *set_p is set to NULL); the old set is freed once no
 * worker reads it (see the header). Thread-safe against other writers; returns once the swap is
 * visible to every later access_allows(). */
void access_replace(access_t *self, aset_t **set_p);

/* Add (present) or remove (!present) one hash: a new set from the current one plus the change
 * (copy-on-write, O(count)), swapped in as access_replace() does. Returns 0, or -1 if memory
 * runs out or the list is full (ASET_MAX); then nothing changed. */
int access_edit(access_t *self, const uint8_t h[ASET_HASH_LEN], bool present);

/* Change the mode (atomic; requests already past the check are not recalled). */
void access_set_mode(access_t *self, access_mode_t mode);
access_mode_t access_mode(const access_t *self);

/* Bumped by every replace and edit (0 for the empty set access_new() starts with). */
uint64_t access_version(const access_t *self);

/* Distinct hashes in the current set. */
size_t access_count(access_t *self);

/* Whether h is in the current set, whatever the mode (an operator's query from any thread: takes
 * the writers' lock, not a worker slot). */
bool access_listed(access_t *self, const uint8_t h[ASET_HASH_LEN]);

/* Copy up to max hashes of the current set, starting at its offset-th (same order as
 * aset_get()), into out; returns how many were copied. Pages of one listing may come from
 * different sets if a replace comes in between (compare access_version() around it). */
size_t access_list(access_t *self, size_t offset, uint8_t (*out)[ASET_HASH_LEN], size_t max);

/* Counters summed over the workers; approximate while they run. */
void access_stats(const access_t *self, access_stats_t *out);

/* A random seed for aset_build() (getrandom; never fails: falls back to clocks and addresses). */
uint64_t access_seed(void);

/* Read and parse list file path (format in proto/accesslist.h) into a new set in *out. Returns 0,
 * or -1 with "PATH: line N: reason" or "PATH: <system error>" in err. */
int access_load_file(const char *path, aset_t **out, char *err, size_t errlen);

#endif
