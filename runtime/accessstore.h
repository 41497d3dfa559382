/* SPDX-License-Identifier: MIT */
/* accessstore: the cluster-wide access list's protocol in Redis, shared by every gateway (the
 * poller in accesssync.h reads it, the admin API edits it). Synchronous hiredis calls on the
 * caller's connection (rconn_open()), each wait bounded by that connection's timeout; no state.
 *
 * Keys, under a prefix (the cluster name, redisopts_cluster_prefix()):
 *   PREFIX:access:set      a Redis SET of raw 20-byte info-hashes (absent when the list is empty)
 *   PREFIX:access:version  an integer; absent means no list was ever stored in this Redis
 *   PREFIX:access:log      a Redis LIST of the last ACCESSSTORE_LOG_MAX changes made by add and
 *                          remove, each '+' or '-', the 20 bytes, then the version it made (in
 *                          decimal); a replace clears it
 *   PREFIX:access:staging:<16 hex>  a replace being written (expires after 5 minutes)
 *
 * Invariant: every change of PREFIX:access:set happens in one script together with an INCR of
 * PREFIX:access:version, so a reader that sees the same version before and after reading the
 * set has read one consistent list; and a reader at version V that finds the log's entries for
 * exactly V+1 .. W can apply them to its copy instead of reading the whole set again (with a
 * million hashes, a full read costs Redis about a second of work per gateway). add/remove bump the
 * version only when the set changed (an idempotent retry makes no churn); replace always bumps it.
 * A version key that is present with no set key is a list that was emptied on purpose, not a
 * missing one.
 *
 * (Like the member keys, the scripts' keys are not hash-tagged: a single Redis, not Redis
 * Cluster.) */
#ifndef SHOAL_ACCESSSTORE_H
#define SHOAL_ACCESSSTORE_H

#include "accesslist.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct redisContext;

#define ACCESSSTORE_KEY_MAX  (64 + 48)
#define ACCESSSTORE_CHUNK    10000  /* hashes per SADD (replace) and per SSCAN (load) */
#define ACCESSSTORE_STAGE_MS 300000 /* a replace's staging key expires after this */
#define ACCESSSTORE_LOG_MAX  1024   /* changes kept in PREFIX:access:log */

/* One logged change: hash added (present) or removed. */
typedef struct {
    uint8_t hash[ASET_HASH_LEN];
    bool present;
} accessstore_change_t;

/* The set's, the version's and the change log's keys under prefix, into out[cap]. */
void accessstore_set_key(const char *prefix, char *out, size_t cap);
void accessstore_version_key(const char *prefix, char *out, size_t cap);
void accessstore_log_key(const char *prefix, char *out, size_t cap);

/* Add h to the list, and increment the version if it was not in it yet (one script). Returns 1
 * (added), 0 (already there: nothing changed), or -1 and why in err. *version_out (may be NULL)
 * gets the version after the call (0 if no list was ever stored and nothing changed). */
int accessstore_add(struct redisContext *c, const char *prefix, const uint8_t h[ASET_HASH_LEN],
                    uint64_t *version_out, char *err, size_t errlen);

/* Remove h from the list, and increment the version if it was in it. Returns 1 (removed), 0
 * (was not there: nothing changed), or -1 and why in err. *version_out as for add. */
int accessstore_remove(struct redisContext *c, const char *prefix, const uint8_t h[ASET_HASH_LEN],
                       uint64_t *version_out, char *err, size_t errlen);

/* Replace the whole list with hashes[0 .. n*20) (repeats allowed), atomically for readers: the
 * hashes go into a staging key in pipelined SADDs of ACCESSSTORE_CHUNK, then one script renames
 * it over the set (or deletes the set when n == 0) and increments the version. The version is
 * incremented even if the contents are the same. At most ASET_MAX hashes. Returns 0 and the new
 * version in *version_out (may be NULL), or -1 and why in err; on -1 the list is unchanged (the
 * staging key is deleted, or expires if the connection is gone). */
int accessstore_replace(struct redisContext *c, const char *prefix, const uint8_t *hashes, size_t n,
                        uint64_t *version_out, char *err, size_t errlen);

/* As accessstore_replace(), but only if no list exists (the version key is absent): for seeding
 * a fresh cluster, or restoring a Redis that restarted empty, where another gateway may do the
 * same at the same moment (exactly one of them stores). The stored list's version is
 * max(1, floor + 1), so a gateway restoring the list it knew at version V publishes V + 1 and
 * no gateway mistakes the restored list for an older one. Returns 1 (stored; its version in
 * *version_out), 0 (a list exists: nothing changed, its version in *version_out), or -1 and why
 * in err. */
int accessstore_store_if_absent(struct redisContext *c, const char *prefix, const uint8_t *hashes,
                                size_t n, uint64_t floor, uint64_t *version_out, char *err,
                                size_t errlen);

/* The list's version into *version_out: 0 if the version key is absent (no list was ever
 * stored). Returns 0, or -1 and why in err (also when the key holds no unsigned integer). */
int accessstore_version(struct redisContext *c, const char *prefix, uint64_t *version_out,
                        char *err, size_t errlen);

/* Read the whole list and its version consistently: SSCAN in chunks of ACCESSSTORE_CHUNK (Redis
 * is never blocked for the whole set), with the version read before and after; if it moved, try
 * again (up to 4 times in all). On 0, *hashes_out is a malloc'd array of *n_out hashes (20
 * bytes each; NULL when empty; repeats possible if Redis rehashed the set during the scan) and
 * *version_out the version (0: no list was ever stored). Members that are not 20 bytes long are
 * not ours and are skipped. Returns 0, or -1 and why in err (*hashes_out is then NULL). */
int accessstore_load_raw(struct redisContext *c, const char *prefix, uint8_t **hashes_out,
                         size_t *n_out, uint64_t *version_out, char *err, size_t errlen);

/* accessstore_load_raw(), the hashes added to b (which drops repeats when built). On -1 from
 * Redis nothing was added to b; if b refuses a hash (memory, ASET_MAX) it holds those before. */
int accessstore_load(struct redisContext *c, const char *prefix, aset_builder_t *b,
                     uint64_t *version_out, char *err, size_t errlen);

/* The changes from version since to the current one, if the log holds each of them and there
 * are at most max (the version and the log read in one step). Returns 0 with the changes in
 * order in out[0 .. *n_out) and the version in *version_out (*n_out is 0 when the version is
 * still since), 1 if the log cannot say (a replace, a restart, more than max or
 * ACCESSSTORE_LOG_MAX changes, a version older than since: read the list in full; *version_out
 * holds the version), or -1 and why in err. */
int accessstore_changes(struct redisContext *c, const char *prefix, uint64_t since,
                        accessstore_change_t *out, size_t max, size_t *n_out, uint64_t *version_out,
                        char *err, size_t errlen);

#endif
