/* SPDX-License-Identifier: MIT */
/* accesslist: an immutable set of 20-byte info-hashes (the tracker's allow or deny list), and the
 * builder that makes one from hashes or from the text of a list file.
 *
 * An aset_t never changes once built, so any number of threads may look hashes up in it at once
 * without a lock; a changed list is a new set (aset_with() for one hash), swapped in by whoever
 * owns the current one (gateway/access.h). Lookups are O(1) and allocate nothing: open
 * addressing with linear probing over a slot table at most half full, each slot 4 bytes (an
 * 8-bit tag of the hash and the entry's index), the hashes themselves in a dense array in
 * insertion order (which aset_get() walks). The slot hash is keyed by the seed given to
 * aset_build(): without the seed a client cannot choose info-hashes that land in one cluster
 * (the hash is a multiply-mix over the 20 bytes and 256 bits derived from the seed; fast and
 * keyed, not a cryptographic PRF).
 *
 * Bound: at most ASET_MAX entries (2^24 - 1, about 16.7 M): the slot stores index + 1 in 24 bits.
 * A builder counts repeats toward that bound too (they are dropped only by aset_build()).
 *
 * List text (aset_builder_parse): one info-hash per line as 40 hex digits in either case,
 * optional spaces or tabs before and after, optionally followed by a comment starting with '#';
 * blank lines and comment-only lines are ignored; lines end with LF or CRLF. Pure: no I/O. */
#ifndef SHOAL_ACCESSLIST_H
#define SHOAL_ACCESSLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ASET_HASH_LEN 20
#define ASET_MAX      16777215u /* entries of one set, and hashes (repeats included) of a builder */

typedef struct aset aset_t;
typedef struct aset_builder aset_builder_t;

/* An empty builder. Returns NULL if memory runs out. */
aset_builder_t *aset_builder_new(void);

/* Free a builder not given to aset_build(), then set *b_p to NULL. NULL-safe. */
void aset_builder_destroy(aset_builder_t **b_p);

/* Add one hash (repeats are allowed: aset_build() drops them). Returns 0, or -1 if memory runs
 * out or the builder already holds ASET_MAX hashes (then nothing is added). */
int aset_builder_add(aset_builder_t *b, const uint8_t h[ASET_HASH_LEN]);

/* Hashes added so far, repeats included. */
size_t aset_builder_count(const aset_builder_t *b);

/* Add every hash of a list text of len bytes (format in the header comment; text need not end
 * in NUL or a newline). Returns 0, or -1 with "line N: <reason>" in err (N counted from 1) or
 * "out of memory"; on -1 the builder is exactly as it was before the call. */
int aset_builder_parse(aset_builder_t *b, const char *text, size_t len, char *err, size_t errlen);

/* Build the set from the builder's hashes, dropping repeats (the first of each stays, in the
 * order added), its slot hash keyed by seed. Takes the builder: *b_p is freed and set to NULL
 * whether or not it succeeds. Returns NULL if memory runs out. */
aset_t *aset_build(aset_builder_t **b_p, uint64_t seed);

/* A new set holding s's hashes plus h (present) or without h (!present), keyed by seed; s is
 * not changed (copy-on-write: O(count)). s may be NULL (an empty set). Returns NULL if memory
 * runs out or h would be the ASET_MAX + 1st entry. */
aset_t *aset_with(const aset_t *s, const uint8_t h[ASET_HASH_LEN], bool present, uint64_t seed);

/* Whether h is in s. O(1) expected, allocates nothing; any number of threads at once. */
bool aset_contains(const aset_t *s, const uint8_t h[ASET_HASH_LEN]);

/* Distinct hashes in s. */
size_t aset_count(const aset_t *s);

/* Copy the i-th hash (0 <= i < aset_count(s)) into out: each hash exactly once over
 * 0..count-1, in the order they were first added. Returns 0, or -1 if i is out of range. */
int aset_get(const aset_t *s, size_t i, uint8_t out[ASET_HASH_LEN]);

/* Bytes the set holds (slot table and hashes), for reports. */
size_t aset_memory(const aset_t *s);

/* Free the set, then set *s_p to NULL. NULL-safe. Nobody may be looking up in it. */
void aset_free(aset_t **s_p);

#endif
