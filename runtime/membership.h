/* SPDX-License-Identifier: MIT */
/* membership: the live member set of a cluster and the partition table built from it, shared by
 * nodes (which register themselves) and gateways (which read it, and register their secret's
 * fingerprint so that gateways with different secrets find each other out).
 *
 * Sources. Either Redis (hiredis; the keys and scripts are runtime/memberstore.h's) or a static
 * list "ID=tcp://HOST:PORT,...":
 *   - Redis, node side: membership_register() at start, then every heartbeat_ms, one script sets
 *     <prefix>:member:<id> = <endpoint> with the member ttl and adds the id to <prefix>:members,
 *     unless the key holds another endpoint (another process runs with our id: a conflict, see
 *     membership_conflict()). membership_stop() removes the key and the id if they are ours.
 *   - Redis, gateway side: the same with <prefix>:gateway:<gateway id> = its secret fingerprint
 *     in <prefix>:gateways; each cycle also reads the other gateways' fingerprints.
 *   - Redis, reader side (nodes and gateways): every poll_ms, SMEMBERS <prefix>:members, then MGET
 *     of the member keys. An id whose key has expired is left out of the set, and SREM'd by a
 *     small Lua script that removes it only if its key still does not exist (so it cannot race a
 *     node that re-registers in between).
 *   - Static: the table is built once, in membership_new(); no thread, no Redis.
 *
 * Epoch. A table's epoch is members_epoch() of its member set (proto/members.h): a content
 * hash, so every process that sees the same members agrees on it without asking anyone. Epochs
 * are only equal or not; a "moved" reply means "the node's table differs from yours", which is
 * all a gateway needs: refresh (membership_refresh()) and retry.
 *
 * Failures. When Redis cannot be reached or answers with an error, the last table stays
 * published (it is never replaced by an empty one), the connection is retried every poll, and a
 * node re-registers as soon as Redis is back (also after Redis restarted empty). For one member
 * ttl after Redis comes back, or after a connection finds another Redis server than the last
 * one (a Sentinel failover, a restart: INFO's identity, rconn.h), no new table is published, so
 * members whose keys expired or were lost meanwhile have time to register again instead of being
 * dropped and their partitions moved.
 * Errors go to the optional log callback with backoff: the first failure, then at most one line per
 * doubling interval (1 s, 2 s, ... 60 s) while it lasts, and one line when Redis is back.
 *
 * Threads. With Redis, one czmq actor does the heartbeats and reads; it builds a table only when
 * the epoch changes and publishes it by swapping a pointer under a mutex. Readers take a counted
 * reference with membership_current() and give it back with membership_release(); a table is
 * freed when it is neither current nor referenced. membership_version() is one atomic load, so a
 * worker can keep its reference across batches and re-take it only when the version moves.
 *
 * Invariant: the published table, once there is one, was built from a member set read in full
 * from one source, and its epoch is members_epoch() of that set. */
#ifndef SHOAL_MEMBERSHIP_H
#define SHOAL_MEMBERSHIP_H

#include "partition.h"
#include "slog.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEMBERSHIP_HEARTBEAT_MS_DEFAULT 1000
#define MEMBERSHIP_TTL_MS_DEFAULT       3000
#define MEMBERSHIP_PREFIX_DEFAULT       "shoal"
#define MEMBERSHIP_REDIS_TIMEOUT_MS     500 /* connect and per-command timeout */

typedef struct membership membership_t;

/* Called on the membership thread (or in membership_new() for a static list) right after a new
 * table is published. table is borrowed for the call only; take membership_current() to keep
 * one. Must not call membership_stop()/_destroy(). */
typedef void (*membership_change_fn)(void *arg, const partition_table_t *table);

typedef struct {
    /* Exactly one of redis_url and static_nodes is set (non-NULL, non-empty). */
    const char *redis_url;           /* "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]" (rconn.h) */
    const char *redis_password_file; /* NULL, or the password's file (rconn_parse_auth()) */
    const char *static_nodes;        /* "ID=tcp://HOST:PORT,ID=...": the whole cluster, no Redis */
    const char *prefix;              /* Redis key prefix; NULL means MEMBERSHIP_PREFIX_DEFAULT */
    /* A node sets both (and registers); a gateway leaves both NULL. */
    const char *self_id;       /* < PARTITION_ID_MAX bytes, no '=' ',' or whitespace */
    const char *self_endpoint; /* < PARTITION_ENDPOINT_MAX bytes */
    /* A gateway may set both: it then registers under PREFIX:gateway:ID with the fingerprint of
     * its connection-id secret (connid_fingerprint()) and compares the other gateways' with it
     * (a mismatch is logged and counted). */
    const char *gateway_id;
    const char *gateway_fingerprint;
    uint32_t heartbeat_ms; /* 0 means MEMBERSHIP_HEARTBEAT_MS_DEFAULT */
    uint32_t ttl_ms;       /* 0 means MEMBERSHIP_TTL_MS_DEFAULT; must exceed heartbeat_ms */
    uint32_t poll_ms;      /* reader period; 0 means heartbeat_ms */
    membership_change_fn on_change; /* optional */
    void *change_arg;
    slog_fn log; /* optional; called on the membership thread */
    void *log_arg;
} membership_config_t;

typedef struct {
    uint64_t polls;               /* read cycles that completed */
    uint64_t errors;              /* read or heartbeat cycles that failed */
    uint64_t heartbeats;          /* registrations written */
    uint64_t changes;             /* tables published */
    uint64_t expired;             /* ids dropped because their key had expired */
    uint64_t server_changes;      /* connections that found another Redis server than the last */
    bool connected;               /* the last cycle reached Redis (always true for a static list) */
    uint64_t epoch;               /* of the current table, 0 if none */
    size_t members;               /* in the current table, 0 if none */
    bool conflict;                /* a node: our id is registered by another endpoint */
    uint64_t secret_mismatches;   /* a gateway: gateways found with another secret, each time */
    uint32_t gateways_mismatched; /* a gateway: of those seen in the last read */
    uint32_t gateways;            /* a gateway: gateways seen in the last read, itself included */
} membership_stats_t;

#define MEMBERSHIP_CONFLICT (-2)

/* Check cfg and copy what it points to. For a static list, parse it and publish its table now
 * (on_change runs before this returns). Connects to nothing. Returns NULL and says why in err
 * (when errlen > 0) if cfg is invalid (no or both sources, bad URL or list, bad id or endpoint,
 * ttl_ms <= heartbeat_ms) or memory runs out. */
membership_t *membership_new(const membership_config_t *cfg, char *err, size_t errlen);

/* A node with Redis: register now, on the calling thread (call before membership_start()), so
 * a second process started with a live node's id finds out before it serves. One script both
 * checks and registers, so of two processes starting with one id at once exactly one wins. While
 * the id's key holds another endpoint, try again every heartbeat for up to wait_ms (the key of a
 * node that died expires within the member ttl; a live node refreshes its key). Returns 0
 * (registered; a no-op for a gateway or a static list), MEMBERSHIP_CONFLICT (the id is held by
 * the endpoint named in err), or -1 (Redis unreachable: the actor keeps trying). */
int membership_register(membership_t *self, uint32_t wait_ms, char *err, size_t errlen);

/* True, with the other endpoint, if our id was found registered by another endpoint (at
 * membership_register() or by a later heartbeat: the actor then stops refreshing our key and
 * logs an error once). The daemon should stop: two processes serve one id. */
bool membership_conflict(membership_t *self, char *endpoint, size_t len);

/* Start the membership actor (Redis only; a no-op returning 0 for a static list). Returns as
 * soon as the thread runs, without waiting for Redis: the first cycle (register, then read) runs
 * at once, and membership_wait() waits for its table. Returns 0, or -1 if the thread could not
 * be created. Call once. */
int membership_start(membership_t *self);

/* Wait up to timeout_ms for a table to be published. Returns true if there is one. */
bool membership_wait(membership_t *self, uint32_t timeout_ms);

/* A counted reference to the current table, or NULL if none has been built yet. Thread-safe,
 * a mutex held for a pointer copy and an increment. Give it back with membership_release(). */
const partition_table_t *membership_current(membership_t *self);

/* Give back a reference from membership_current() and set *table_p to NULL. NULL-safe. */
void membership_release(membership_t *self, const partition_table_t **table_p);

/* A number that changes every time a new table is published (0: none yet). One atomic load: a
 * reader keeps its reference while the version it took it at is still current. */
uint64_t membership_version(const membership_t *self);

/* The node's lease on what its table says it owns. False when the actor has not completed a
 * cycle for longer than the member ttl (plus Redis timeouts): the process was stopped or starved,
 * others may have dropped it and taken its partitions, so it must not serve until the next cycle.
 * *gaps counts the cycles that found such a gap after our registration could have expired; a
 * node serves only once it has re-checked its ownership (keeper.h) for the current count. A
 * static list always holds the lease (gaps 0). Redis being unreachable is not a gap: nobody can
 * take over through it. One clock read and two atomic loads. */
bool membership_lease(const membership_t *self, uint64_t *gaps);

/* Milliseconds since the actor last went round its loop (0 for a static list, before
 * membership_start() and once the actor has ended: no loop is expected then). A gauge for a
 * liveness check; one clock read and one atomic load, any thread. The actor turns at least every
 * min(poll_ms, heartbeat_ms) for a node or gateway that registers, poll_ms otherwise, later only by
 * one cycle's Redis calls (each bounded by MEMBERSHIP_REDIS_TIMEOUT_MS): an age above the period
 * plus a few Redis timeouts means it is stuck. */
uint32_t membership_loop_age_ms(const membership_t *self);

/* Ask the actor to poll Redis now instead of at its next period (after a "moved" whose epoch
 * differs from ours). Cheap and non-blocking; a no-op for a static list or before start. */
void membership_refresh(membership_t *self);

/* Stop the actor. A node first deregisters (DEL its key, SREM its id; best effort, bounded by
 * MEMBERSHIP_REDIS_TIMEOUT_MS). The current table stays readable. Idempotent; returns when the
 * thread has ended. */
void membership_stop(membership_t *self);

/* Stop (if running) and free everything, then set *self_p to NULL. NULL-safe. Every reference
 * from membership_current() must have been released. */
void membership_destroy(membership_t **self_p);

/* Counters and state, read without stopping the actor (each field is consistent, not the whole). */
void membership_stats(membership_t *self, membership_stats_t *out);

#endif
