/* SPDX-License-Identifier: MIT */
/* nodesrv: the node's ZeroMQ server. Gateways (DEALER sockets) send request batches (cmsg.h) to
 * one ROUTER socket; worker threads serve them from the swarm repository and send back one reply
 * batch per request batch, to the gateway that sent it.
 *
 * Threads (czmq actors). With one worker, the worker owns the ROUTER socket: no extra hop. With
 * N > 1 workers, a proxy actor owns the ROUTER and an inproc DEALER; each worker has its own
 * DEALER connected to it, so batches are dealt round-robin to the workers and their replies
 * routed back by the identity frame. Each worker keeps its own decode/encode buffers (a few MB,
 * allocated at start): the request path allocates nothing.
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
    const char *bind; /* ZeroMQ endpoint, e.g. "tcp://0.0.0.0:7000" ("tcp://H:*": any port) */
    unsigned workers; /* serving threads, >= 1 */
    repo_t *repo;     /* borrowed; outlives the server */
    membership_t *membership; /* borrowed; outlives the server */
    const char *self_id;      /* this node's id in the membership table */
    uint32_t numwant_default; /* peers for an announce with numwant < 0 */
    uint32_t (*clock)(void);  /* monotonic seconds for the repository; NULL: CLOCK_MONOTONIC */
    int hwm;                  /* ZeroMQ high-water marks (messages); 0 means 10000 */
    keeper_t *keeper;         /* borrowed, optional: snapshots and fencing (keeper.h) */
    curve_t *curve; /* borrowed, optional: CURVE on the ROUTER (curve_server_start() first) */
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

/* Create the server and bind its socket (so a port in use fails here). Copies cfg's strings.
 * Returns NULL and says why in err if the endpoint cannot be bound, cfg is invalid, or memory
 * runs out. */
nodesrv_t *nodesrv_new(const nodesrv_config_t *cfg, char *err, size_t errlen);

/* The endpoint actually bound (a "*" port resolved), e.g. "tcp://127.0.0.1:7000". Lives as long
 * as the server. */
const char *nodesrv_endpoint(const nodesrv_t *self);

/* Start the worker (and proxy) actors; returns when they run. 0, or -1 and why in err. */
int nodesrv_start(nodesrv_t *self, char *err, size_t errlen);

/* Stop the actors (requests queued but not yet read are dropped). Idempotent. */
void nodesrv_stop(nodesrv_t *self);

/* Stop, close the socket, free everything, set *self_p to NULL. NULL-safe. */
void nodesrv_destroy(nodesrv_t **self_p);

/* Milliseconds since the slowest of the server's loops (its workers, and the proxy if any) last
 * went round; 0 while they do not run (before nodesrv_start(), after nodesrv_stop()). A gauge for
 * a liveness check: an idle loop still turns once a second and a busy one after every
 * DRAIN_MAX-message round, so an age of a few seconds means a loop is stuck. Any thread; a clock
 * read and one atomic load per loop. */
uint32_t nodesrv_loop_age_ms(nodesrv_t *self);

/* Counters summed over the workers (each read atomically, not all at one instant). */
void nodesrv_stats(nodesrv_t *self, nodesrv_stats_t *out);

#endif
