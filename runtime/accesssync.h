/* SPDX-License-Identifier: MIT */
/* accesssync: a gateway's copy of the cluster-wide access list (keys and scripts in
 * accessstore.h), kept within about one poll of Redis, and the admin API's edits of it.
 *
 * Poller. One plain thread with its own connection reads PREFIX:access:version every poll_ms
 * (default 250 ms, so every gateway applies an edit made anywhere well within a second), and at
 * once when poked (accesssync_poke(), and after every edit through this module). When the
 * version moved by up to 64 adds and removes that the change log still holds
 * (accessstore_changes()), it applies them to its copy of the last list; otherwise (at start,
 * after the connection was lost, after a replace or a longer gap) it reads the whole set
 * (accessstore_load_raw()). Either way it builds a new aset_t and hands it to on_set with its
 * version. It keeps the hashes of the last list (20 bytes each: 20 MB for a million) to apply
 * changes to and to restore them (below).
 *
 * No list in Redis (the version key is absent):
 *   - at start, with a seed (accesssync_seed(): the --access-list file), the seed is stored
 *     (accessstore_store_if_absent(): of several gateways starting at once, exactly one
 *     stores) and then loaded like any list; if the cluster already has a list, that list wins,
 *     the seed is dropped, and a line says so;
 *   - having handed over a list before (Redis restarted empty, or its keys were deleted), the
 *     poller stores the last list it had again, under version last + 1, and logs a warning: an
 *     operator expects the list they edited to survive a Redis restart, and the gateways keep
 *     enforcing it meanwhile anyway. Several gateways racing store one list (the first), all
 *     converge on it. To really empty the list, replace it with an empty one (version kept);
 *   - otherwise (no seed, nothing known) on_set gets an empty set with version 0, once.
 *
 * Failures. While Redis is unreachable or failing, the last set stays with the caller (on_set is
 * not called), the connection is retried after poll_ms, doubling up to 2 s, and lines go to the
 * log with backoff (the first failure, then at most one per doubling interval, one line when
 * Redis is back). After a reconnect the whole set is read again whatever the version says.
 *
 * Admin calls (accesssync_add/_remove/_replace) run on the caller's thread on a second
 * connection the module keeps (opened on first use, reopened after a failure), so an admin
 * request never waits for the poller nor the poller for it; concurrent admin calls take turns
 * on a mutex. After a successful change the poller is poked, so the editing gateway applies the
 * change at once (a version read, the change from the log, and a rebuild of its set).
 *
 * Invariant: a set handed to on_set is the list at its version: read from Redis in full at that
 * version, or a set that was, with the logged changes up to that version applied in order (or
 * it is the empty set of version 0: no list exists and none was known). */
#ifndef SHOAL_ACCESSSYNC_H
#define SHOAL_ACCESSSYNC_H

#include "accesslist.h"
#include "slog.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACCESSSYNC_POLL_MS_DEFAULT    250
#define ACCESSSYNC_TIMEOUT_MS_DEFAULT 500 /* connect and per-command timeout */
#define ACCESSSYNC_RETRY_MAX_MS       2000

typedef struct accesssync accesssync_t;

/* Called on the poller thread with a new set and its version; set belongs to the callee (free
 * it with aset_free() when done). Must not call accesssync_stop()/_destroy(). */
typedef void (*accesssync_set_fn)(void *arg, aset_t *set, uint64_t version);

typedef struct {
    const char *redis_url; /* "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]" (rconn.h); required */
    const char *redis_password_file; /* NULL, or the password's file (rconn_parse_auth()) */
    const char *prefix;       /* the cluster's key prefix (redisopts_cluster_prefix()); required */
    uint32_t poll_ms;         /* 0 means ACCESSSYNC_POLL_MS_DEFAULT */
    uint32_t timeout_ms;      /* 0 means ACCESSSYNC_TIMEOUT_MS_DEFAULT */
    uint64_t hash_seed;       /* the key of the sets' slot hash (aset_build()) */
    accesssync_set_fn on_set; /* required */
    void *set_arg;
    slog_fn log; /* optional; called on the poller thread */
    void *log_arg;
} accesssync_config_t;

typedef struct {
    uint64_t polls;    /* version reads that succeeded */
    uint64_t loads;    /* sets handed to on_set */
    uint64_t deltas;   /* of those, built from the change log instead of a full read */
    uint64_t errors;   /* connects, reads, loads or stores that failed (poller only) */
    uint64_t restores; /* times this poller stored its last list into a Redis that had none */
    uint64_t version;  /* of the last set handed over; 0 if none or the empty "no list" set */
    size_t entries;    /* in the last set handed over */
    bool connected;    /* the poller's last Redis call succeeded */
    bool loaded;       /* a set was handed over at least once */
    bool seeded;       /* this process stored its seed as the cluster's list */
    bool seed_refused; /* the cluster had a list: the seed was not stored */
} accesssync_stats_t;

/* Check cfg (URL parsed, prefix < 64 bytes, on_set set) and copy it. Connects to nothing.
 * Returns NULL and why in err (the URL's password never in it) if cfg is invalid or memory
 * runs out. */
accesssync_t *accesssync_new(const accesssync_config_t *cfg, char *err, size_t errlen);

/* Before accesssync_start(): the list to store if the cluster has none when the poller first
 * reaches Redis (the --access-list file's hashes, n * 20 bytes, copied). Returns 0, or -1 and
 * why in err (out of memory, or called after start). */
int accesssync_seed(accesssync_t *self, const uint8_t *hashes, size_t n, char *err, size_t errlen);

/* Start the poller thread. Returns 0, or -1 and why in err. */
int accesssync_start(accesssync_t *self, char *err, size_t errlen);

/* Ask the poller to check the version now instead of at its next poll. */
void accesssync_poke(accesssync_t *self);

/* Admin edits, on the module's admin connection (see above), each one atomic in Redis.
 * add/remove return 1 (changed), 0 (nothing to change) or -1; replace returns 0 or -1. The
 * version after the call goes into *version (may be NULL); why it failed into err. */
int accesssync_add(accesssync_t *self, const uint8_t h[ASET_HASH_LEN], uint64_t *version, char *err,
                   size_t errlen);
int accesssync_remove(accesssync_t *self, const uint8_t h[ASET_HASH_LEN], uint64_t *version,
                      char *err, size_t errlen);
int accesssync_replace(accesssync_t *self, const uint8_t *hashes, size_t n, uint64_t *version,
                       char *err, size_t errlen);

/* A snapshot of the counters. Any thread. A set is counted (loads, deltas if it came from the
 * change log, version, entries) before on_set gets it, all in one step: a snapshot taken after
 * on_set returned counts that set, and never a set without its kind. */
void accesssync_stats(accesssync_t *self, accesssync_stats_t *out);

/* Stop the poller and wait for it to finish its current poll (each of its Redis calls bounded by
 * timeout_ms; a full read of a big list is many calls). Idempotent. */
void accesssync_stop(accesssync_t *self);

/* Stop, close both connections, free, then set *self_p to NULL. NULL-safe. */
void accesssync_destroy(accesssync_t **self_p);

#endif
