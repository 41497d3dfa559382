/* SPDX-License-Identifier: MIT */
/* keeper: a node's side of failover. It keeps the partitions this node owns backed by snapshots
 * in Redis, takes over the snapshots of partitions it acquires, and hands over the ones it loses.
 * The standalone tracker uses it too (with --redis), as a node that owns every partition.
 *
 * One thread (a plain pthread, not a czmq actor: the standalone binary links no ZeroMQ) loops:
 *   1. Lease. If the membership lease saw a gap (the process was stopped or starved past its
 *      member ttl), re-read the fence of every held partition; those another node acquired
 *      meanwhile are lost: they are blocked (answered "moved") until acquired again, and their
 *      swarms are kept to be merged with the new owner's snapshot then.
 *   2. Ownership. When the table changes: every held partition the table no longer gives us is
 *      handed over (a last snapshot written with the release mark, then its swarms dropped);
 *      swarms of partitions we neither own nor hold are dropped.
 *   3. Acquisition. Every partition the table gives us that we do not hold is acquired: if its
 *      fence names another node that is still a member (or announced it is leaving), we wait up
 *      to handover_ms for that node's release; then we INCR its epoch (fencing the previous
 *      holder out), load its snapshot and merge it into the repository (repo_import_swarm: peers
 *      announced to us meanwhile win, expired ones are dropped; the import marks what it added
 *      dirty, so our next snapshot rewrites it under our epoch). While a partition is being
 *      acquired it is served
 *      (what is announced meanwhile is kept and merged), so a takeover costs no unanswered time
 *      beyond the gateways' view of the membership.
 *   4. Snapshot, every interval_ms: the partitions marked dirty in the repository
 *      (repo_take_dirty) that we hold are exported stripe by stripe (repo_export_stripe, under
 *      each stripe's lock in turn, never all at once) into per-partition encoders and written
 *      with the fence. A write refused by the fence means the partition was lost (as in 1); a
 *      write that finds no epoch means Redis lost its data (restarted empty): every held
 *      partition is acquired again and rewritten. Writes that failed are retried next time.
 *      Duty cap: after a cycle that used T of this thread's CPU time, the next starts no sooner
 *      than 9 T later, so snapshots take at most 10 % of a core (Redis's share grows with the
 *      bytes, about as much again); under a load that changes everything all the time, the
 *      interval stretches rather than the cost. Time blocked on Redis or stopped is not counted.
 *      A cycle with nothing to write reads one held partition's fence (round robin), so an idle
 *      node also finds out that Redis restarted empty or that a partition was taken.
 * Redis unreachable: the loop keeps going, serving from memory; failures are logged at the first
 * one, then with doubling intervals (1 s .. 60 s), and once when Redis is back.
 *
 * Workers ask keeper_serving() once per batch and keeper_may_serve() per partition: two atomic
 * loads and a clock read, no lock.
 *
 * Invariant: a partition's snapshot in Redis is written only under an epoch this node obtained by
 * acquiring it, after its previous snapshot was loaded and merged; so a node never overwrites a
 * snapshot with less than it read. */
#ifndef SHOAL_KEEPER_H
#define SHOAL_KEEPER_H

#include "pset.h"
#include "repo.h"
#include "slog.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct keeper keeper_t;

/* What the keeper needs to know about ownership; all called on the keeper thread (lease also on
 * workers). */
typedef struct {
    void *arg;
    /* Add to *mine (empty on entry) each partition this node owns now. Returns false if there
     * is no table yet (then nothing is owned). */
    bool (*owned)(void *arg, pset_t *mine);
    /* A number that changes whenever owned() may answer differently. */
    uint64_t (*version)(void *arg);
    /* True if node `id` is a member now. NULL: nobody else is (standalone). */
    bool (*alive)(void *arg, const char *id);
    /* membership_lease(); NULL: the lease is always held, with no gaps (standalone). */
    bool (*lease)(void *arg, uint64_t *gaps);
} keeper_view_t;

/* The view of a process that owns every partition and shares them with nobody (the standalone
 * tracker, benchmarks): no lease, no other members, one table forever. */
keeper_view_t keeper_view_all(void);

typedef struct {
    const char *redis_url;           /* redis://... */
    const char *redis_password_file; /* NULL, or the password's file (rconn_parse_auth()) */
    const char *prefix;              /* key prefix; NULL: "shoal" */
    const char *self_id;             /* this node's id (the standalone passes its own) */
    repo_t *repo;                    /* borrowed; outlives the keeper */
    keeper_view_t view;
    uint32_t interval_ms;      /* snapshot period, > 0 */
    uint32_t handover_ms;      /* longest wait for a live previous owner's release; 0: 3000 */
    uint32_t (*clock)(void);   /* the repository's seconds; NULL: mono_s() */
    uint32_t redis_timeout_ms; /* connect and command timeout; 0: 1000 */
    slog_fn log;               /* optional; called on the keeper thread */
    void *log_arg;
} keeper_config_t;

typedef struct {
    uint64_t cycles;          /* snapshot cycles that wrote something */
    uint64_t partitions;      /* partition snapshots written */
    uint64_t write_failures;  /* partition writes that did not get through (Redis failed or gave
                               * no answer for them); retried in a later cycle */
    uint64_t fenced;          /* partition writes refused by the fence: another node holds the
                               * partition under a newer epoch (each also counts in `lost`) */
    uint64_t bytes;           /* snapshot bytes written */
    uint64_t peers;           /* peers in them */
    uint64_t last_cycle_us;   /* duration of the last snapshot cycle: export + encode + write */
    uint64_t max_cycle_us;    /* the longest so far */
    uint64_t last_export_us;  /* of which the stripe walk and encoding (locks held in turn) */
    uint64_t acquired;        /* partitions acquired */
    uint64_t claims_refused;  /* acquisition claims refused: another node acquired it first */
    uint64_t restored_swarms; /* swarms merged from snapshots */
    uint64_t restored_peers;  /* peers merged from snapshots */
    uint64_t restore_expired; /* peers dropped on restore because they had expired */
    uint64_t last_restore_us; /* duration of the last acquisition round (fence, load, merge) */
    uint64_t released;        /* partitions handed over */
    uint64_t lost;            /* partitions found taken by another node */
    uint64_t gone;            /* times Redis was found to have lost the fences */
    uint64_t server_changes;  /* connections that found another Redis server (a failover, a
                               * restart): every held partition re-checked and rewritten */
    uint64_t unreplicated;    /* claims or snapshot rounds no replica acknowledged in 100 ms */
    uint64_t errors;          /* Redis calls that failed (writes, reads, claims, probes) */
    uint32_t owned;           /* partitions the table gives this node now */
    uint32_t held;    /* partitions held now (acquired, snapshots written under our epoch) */
    uint32_t waiting; /* owned, not held: waiting for a previous owner's release */
    uint32_t blocked; /* found taken by another node, not acquired again yet ("lost") */
    bool connected;
} keeper_stats_t;

/* Check cfg and copy what it needs. Connects to nothing. NULL and why in err if the URL or an
 * argument is bad, or memory runs out. */
keeper_t *keeper_new(const keeper_config_t *cfg, char *err, size_t errlen);

/* Start the thread. 0, or -1 if it could not be created. */
int keeper_start(keeper_t *self);

/* Wake the thread now (the table changed). Cheap; any thread. */
void keeper_notify(keeper_t *self);

/* Per batch, on workers: false while the lease is not held or a gap has not been checked yet, or
 * once shutdown blocked everything. */
bool keeper_serving(keeper_t *self);

/* Per request, on workers: false if partition p was found taken by another node and is not
 * acquired again yet. */
bool keeper_may_serve(const keeper_t *self, uint32_t partition);

/* Wait up to timeout_ms until every partition owned when called has been acquired (restored)
 * once. True if so. */
bool keeper_wait_restored(keeper_t *self, uint32_t timeout_ms);

/* Planned shutdown, step 1: tell the cluster this node is leaving (so acquirers wait for its
 * release), before the membership deregisters. Bounded by the Redis timeout. */
void keeper_leave(keeper_t *self);

/* Stop the thread. With release: first block serving, write every held partition's snapshot
 * with the release mark (a planned handover), bounded by the Redis timeouts. Idempotent. */
void keeper_stop(keeper_t *self, bool release);

/* Stop (without release if still running) and free, set *self_p to NULL. NULL-safe. */
void keeper_destroy(keeper_t **self_p);

void keeper_stats(keeper_t *self, keeper_stats_t *out);

/* Milliseconds since the keeper thread last went round its loop (0 before keeper_start() and
 * after it stopped: no loop is expected then). A gauge for a liveness check, one clock read and
 * one atomic load, any thread. The thread turns at least every interval_ms (every 50 ms while it
 * waits to acquire partitions or follows a lease), later only by the length of one turn: a
 * snapshot cycle (last_cycle_us; the duty cap stretches the wait after it to 9 times the CPU time
 * it took) and Redis calls bounded by redis_timeout_ms each. So an age well above
 * interval_ms + 10 * max_cycle_us / 1000 + a few redis_timeout_ms means the thread is stuck. */
uint32_t keeper_loop_age_ms(const keeper_t *self);

/* One line of the keeper's view and counters for a log ("ownership: owned N, held N, acquiring
 * N, waiting for release N, lost N; snapshots: 12 partition writes (...), ..."), into buf. */
void keeper_describe(keeper_t *self, char *buf, size_t len);

#endif
