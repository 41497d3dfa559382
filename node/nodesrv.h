/* SPDX-License-Identifier: MIT */
/* nodesrv: the node's ZeroMQ server. Gateways (DEALER sockets) send request batches (cmsg.h) to
 * the node's ROUTER sockets; worker threads serve them from the swarm repository and send back
 * one reply batch per request batch, to the gateway that sent it, on the socket it came on.
 *
 * Threads and sockets (czmq actors). Each of the N workers owns its own ROUTER socket: no proxy,
 * no hop between threads inside the node. Worker 0 binds the configured endpoint; worker i binds
 * the same host at port + i (consecutive ports). With an ephemeral port ("tcp://H:*", for tests)
 * and several workers, worker 0 takes a random free port between 10000 and the system's range for
 * outgoing connections (ip_local_port_range), where no connection in TIME_WAIT holds the ports
 * after it, and the others those ports; if one is taken, every socket is unbound and another base
 * is tried (a bounded number of times). With one worker the system picks the port. A fixed port
 * whose neighbours are taken is an error naming the port. The node advertises "|workers=N" with
 * its endpoint (proto/members.h) and gateways spread partitions over the sockets (partition
 * p to worker p % N, so one swarm's requests from one gateway stay in order). Any worker serves
 * any partition the node owns: the spread is for load, not for correctness. Each worker keeps its
 * own decode/encode buffers (a few MB, allocated at start): the request path allocates nothing.
 *
 * Ownership: a request is served only if this node owns its partition (every hash of a scrape)
 * under the current membership table, which a worker re-reads when membership_version() moves;
 * otherwise it gets "moved" with the node's epoch (0 if the node has no table yet, or is not in
 * it). The gateway's epoch in the batch is not compared: ownership alone decides. With a keeper
 * (failover), a node also answers "moved" for everything while keeper_serving() is false (its
 * lease lapsed, or a pause is not yet checked, or it is shutting down) and for a partition
 * another node took over while this one was away (keeper_may_serve()).
 *
 * Lookups (cmsg.h: one swarm's counts and a page of its peers, for a gateway's admin API) come
 * as single messages on the same socket and get one lookup reply each, under the same ownership
 * rule ("moved" otherwise); the worker serves them from buffers allocated at start too.
 *
 * Garbage: a message that is not exactly [identity][payload], or whose payload decodes neither
 * as a version-1 request batch nor as a lookup, is dropped without a reply and counted
 * (nodesrv_stats); nothing is logged here, the daemon's loop logs the counters.
 *
 * Invariant: every decoded request batch gets exactly one reply batch with one reply per
 * request, in request order, and every decoded lookup exactly one lookup reply, unless the reply
 * cannot be queued (counted as replies_dropped). */
#ifndef SHOAL_NODESRV_H
#define SHOAL_NODESRV_H

#include "curve.h"
#include "keeper.h"
#include "membership.h"
#include "repo.h"

#include <stddef.h>
#include <stdint.h>

typedef struct nodesrv nodesrv_t;

typedef struct {
    const char *bind; /* worker 0's endpoint, e.g. "tcp://0.0.0.0:7000" ("tcp://H:*": any port);
                       * tcp:// when workers > 1 */
    unsigned workers; /* serving threads and sockets, 1..MEMBERS_WORKERS_MAX */
    repo_t *repo;     /* borrowed; outlives the server */
    membership_t *membership; /* borrowed; outlives the server */
    const char *self_id;      /* this node's id in the membership table */
    uint32_t numwant_default; /* peers for an announce with numwant < 0 */
    uint32_t (*clock)(void);  /* monotonic seconds for the repository; NULL: CLOCK_MONOTONIC */
    int hwm;                  /* ZeroMQ high-water marks (messages); 0 means 10000 */
    keeper_t *keeper;         /* borrowed, optional: snapshots and fencing (keeper.h) */
    curve_t *curve; /* borrowed, optional: CURVE on every ROUTER (curve_server_start() first) */
} nodesrv_config_t;

typedef struct {
    uint64_t batches;         /* request batches served */
    uint64_t requests;        /* requests in them */
    uint64_t announces;       /* announces served (status ok) */
    uint64_t scrapes;         /* scrapes served (status ok) */
    uint64_t lookups;         /* admin lookups served (status ok; their own messages, no batch) */
    uint64_t moved;           /* requests answered "moved" */
    uint64_t errors;          /* requests answered "error" (repository full) */
    uint64_t garbage;         /* messages dropped: bad frames or undecodable */
    uint64_t garbage_frames;  /* of which: not [identity][payload] */
    uint64_t replies_dropped; /* reply batches that could not be queued */
    int last_garbage;         /* cmsg_err_t of the last undecodable payload, -1 for frames, 0 */
} nodesrv_stats_t;

/* Create the server and bind its sockets (so a port in use fails here). Copies cfg's strings.
 * Returns NULL and says why in err if an endpoint cannot be bound (with several workers: the
 * range of ports needed and the one that failed), cfg is invalid, or memory runs out. */
nodesrv_t *nodesrv_new(const nodesrv_config_t *cfg, char *err, size_t errlen);

/* Worker 0's endpoint as bound (a "*" port resolved), e.g. "tcp://127.0.0.1:7000"; worker i's
 * is at its port + i. Lives as long as the server. */
const char *nodesrv_endpoint(const nodesrv_t *self);

/* The number of workers (and sockets). */
unsigned nodesrv_workers(const nodesrv_t *self);

/* Start the worker actors; returns when they run. 0, or -1 and why in err. */
int nodesrv_start(nodesrv_t *self, char *err, size_t errlen);

/* Stop the actors (requests queued but not yet read are dropped). Idempotent. */
void nodesrv_stop(nodesrv_t *self);

/* Stop, close the sockets, free everything, set *self_p to NULL. NULL-safe. */
void nodesrv_destroy(nodesrv_t **self_p);

/* Milliseconds since the slowest of the server's loops (its workers) last went round; 0 while they
 * do not run (before nodesrv_start(), after nodesrv_stop()). A gauge for a liveness check: an idle
 * loop still turns once a second and a busy one after every DRAIN_MAX-message round, so an age of a
 * few seconds means a loop is stuck. Any thread; a clock read and one atomic load per loop. */
uint32_t nodesrv_loop_age_ms(nodesrv_t *self);

/* Counters summed over the workers (each read atomically, not all at one instant). */
void nodesrv_stats(nodesrv_t *self, nodesrv_stats_t *out);

/* Worker i's counters alone (all zero if i >= the worker count): how the load spreads over the
 * sockets. */
void nodesrv_worker_stats(nodesrv_t *self, unsigned i, nodesrv_stats_t *out);

#endif
