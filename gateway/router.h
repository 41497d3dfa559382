/* SPDX-License-Identifier: MIT */
/* router: the cluster gateway's backend. It sends each announce and scrape to the node that owns
 * its info-hash's partition, over ZeroMQ, in msgpack batches (proto/cmsg.h), and answers the front
 * end when the node's reply comes back.
 *
 * One router per front-end worker thread (backend.h), with its own DEALER socket per node worker
 * (a node advertising "|workers=N" listens on N consecutive ports: members.h; partition p goes
 * to worker p % N of its owner) and its own copy of the partition -> socket map; routers share only
 * the table source and the counters. Requests gathered while the worker handles its ready events go
 * out as one request batch per node when the worker calls flush() (cut earlier at CMSG_BATCH_MAX
 * requests or ROUTER_SEND_CAP bytes). A scrape is split by owner and its parts merged back into
 * request order.
 *
 * Every request sent to a node holds one in-flight slot until its reply, its deadline
 * (timeout_ms after the client's request arrived) or a membership change that drops its node.
 * Slots (ROUTER_SLOTS per router, at most ROUTER_NODE_INFLIGHT of them toward one node) and
 * scrapes being merged (ROUTER_SCRAPES) are fixed tables allocated once: when one is full, a new
 * request fails at once with a retryable reason, so a node that stops answering costs bounded
 * memory and leaves room for the others. A "moved" reply asks the table source for a
 * refresh and re-routes the request with the newer table (or after a short pause), at most
 * ROUTER_ROUTES times in all. Nothing on the request path allocates.
 *
 * Invariant: done() runs exactly once per submitted request; each slot in use is in exactly one
 * of three states (queued for a node, sent to it, parked waiting for a newer table); a slot's id
 * carries a generation, so a reply that arrives after its slot was failed and reused is ignored. */
#ifndef SHOAL_ROUTER_H
#define SHOAL_ROUTER_H

#include "backend.h"
#include "curve.h"
#include "partition.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROUTER_SLOTS_BITS 13
#define ROUTER_SLOTS      (1u << ROUTER_SLOTS_BITS) /* node requests in flight per router */
#define ROUTER_SCRAPES    256                       /* client scrapes being merged per router */
/* Slots one node may hold per router, over all its worker sockets: a node that stops answering
 * fills this, not the whole table, so the other nodes' partitions keep being served (the front
 * end's own pending table, 4096 per worker, is shared by all nodes). Per node, not per socket: a
 * dead node with N workers must not take N times the share, and the node is what fails (its
 * workers share one process and one repository). */
#define ROUTER_NODE_INFLIGHT (ROUTER_SLOTS / 4)
#define ROUTER_ROUTES        4            /* times one request may be routed (1 + re-routes) */
#define ROUTER_SEND_CAP      (256 * 1024) /* bytes of one encoded request batch */
#define ROUTER_TICK_MS       10 /* the worker wakes at least this often to check deadlines */
#define ROUTER_PARK_MS       50 /* after "moved" with no newer table: wait this long, then retry */
/* Pacing (router.c, conn_may_send()): batches toward one node socket that may be unanswered
 * before its next requests wait for a reply, and how long a silent node may hold them back. */
#define ROUTER_BATCHES_OUT   1
#define ROUTER_HOLD_MS       2
#define ROUTER_TIMEOUT_MS    500 /* default deadline */
#define ROUTER_SNDHWM        256 /* batches queued toward one node before sends fail */
#define ROUTER_FAIL_TIMEOUT  "tracker node not answering, retry later"
#define ROUTER_FAIL_BUSY     "tracker busy, retry later"
#define ROUTER_FAIL_MOVED    "tracker cluster is rebalancing, retry later"
#define ROUTER_FAIL_NO_NODES "no tracker nodes known yet, retry later"
#define ROUTER_FAIL_REPLY    "tracker node sent a bad reply, retry later"

/* Where routers get the partition table (node/membership.h in the daemon; a seam for tests).
 * All four are called from worker threads and must be thread-safe. */
typedef struct {
    /* A counted reference to the current table, or NULL if there is none yet. */
    const partition_table_t *(*current)(void *arg);
    /* Give back a reference from current() and set *table_p to NULL. */
    void (*release)(void *arg, const partition_table_t **table_p);
    /* A number that changes whenever current() would return another table; cheap (it is read
     * once per loop iteration). */
    uint64_t (*version)(void *arg);
    /* Ask for a fresh read of the member set soon (after "moved"); must not block. May be NULL. */
    void (*refresh)(void *arg);
    void *arg;
} router_tables_t;

/* One node's share of the counters, over every router (router_node_stats() reads it). */
typedef struct {
    _Atomic uint32_t routers;  /* sockets toward it (of every router) whose table has this node */
    _Atomic int64_t in_flight; /* requests queued for or sent to it now, not answered yet */
    _Atomic uint64_t requests; /* requests sent to it */
    _Atomic uint64_t timeouts; /* requests to it that passed their deadline */
    _Atomic uint64_t moved;    /* "moved" replies from it */
    bool used;                 /* under nodes_lock, as are id and endpoint */
    char id[PARTITION_ID_MAX];
    char endpoint[PARTITION_ENDPOINT_MAX];
} router_node_slot_t;

/* Totals over every router sharing them; relaxed atomics, added once per batch or event (a
 * router publishes what it counted every 100 ms and when it is destroyed, so the request path
 * writes only the router's own memory). All zero is the initial state: no init call. */
typedef struct {
    _Atomic uint64_t requests;      /* client requests submitted */
    _Atomic uint64_t answered;      /* ... answered from a node's reply */
    _Atomic uint64_t failed;        /* ... answered with a failure (any reason) */
    _Atomic uint64_t timeouts;      /* node requests past their deadline */
    _Atomic uint64_t busy;          /* client requests refused because a table was full */
    _Atomic uint64_t moved;         /* "moved" replies */
    _Atomic uint64_t batches;       /* request batches sent */
    _Atomic uint64_t send_failures; /* batches a node's queue would not take */
    _Atomic uint64_t bad_replies;   /* reply messages or replies that were refused */
    _Atomic uint64_t tables;        /* tables adopted, summed over the routers */
    _Atomic uint64_t table_epoch;   /* epoch of the table a router adopted last (gauge) */
    _Atomic uint32_t table_members; /* ... and its number of members (gauge) */
    /* Per node id: a slot is given to an id the first time a router's table names it, under
     * nodes_lock (a lock word, so that all-zero is unlocked; taken at table changes and by
     * router_node_stats(), never on the request path). Once PARTITION_MEMBERS_MAX ids were seen,
     * the slot of an id no router has any more (routers and in_flight 0) is reused; an id that
     * finds no slot is counted in the totals only. */
    _Atomic bool nodes_lock;
    router_node_slot_t nodes[PARTITION_MEMBERS_MAX];
} router_counters_t;

/* What router_node_stats() reports for one node. */
typedef struct {
    char id[PARTITION_ID_MAX];
    char endpoint[PARTITION_ENDPOINT_MAX]; /* the last one a router's table gave it */
    bool current;                          /* some router's current table has it */
    uint64_t in_flight;                    /* gauge: requests outstanding toward it now */
    uint64_t requests;                     /* counter: requests sent to it */
    uint64_t timeouts;                     /* counter: of those, past their deadline */
    uint64_t moved;                        /* counter: "moved" replies it sent */
} router_node_stat_t;

/* Copy up to max nodes' counters into out, in the order the ids were first seen; returns how
 * many were copied. Any thread; takes nodes_lock for the copy (a router adopting a table waits
 * that long). Counters are as fresh as the routers' last publish (100 ms); in_flight is the sum
 * of the routers' last published counts. */
size_t router_node_stats(router_counters_t *c, router_node_stat_t *out, size_t max);

typedef struct {
    void *zmq_ctx; /* a libzmq context that outlives every router */
    router_tables_t tables;
    uint32_t timeout_ms;         /* a request's deadline; 0 means ROUTER_TIMEOUT_MS */
    router_counters_t *counters; /* may be NULL */
    /* CURVE toward the nodes, or NULL for plaintext; borrowed, outlives the routers. A router
     * connects only to nodes curve_check_node() accepts; the partitions of the others fail as
     * "not answering". After curve_reload() (curve_version() moves) each router re-checks its
     * table, and reconnects every node if the certificate changed. */
    curve_t *curve;
} router_config_t;

/* A backend_open_fn: arg is a const router_config_t *, which must outlive the routers it opens.
 * Creates the router of worker `worker` and fills *out. If the table source has a table already,
 * the router takes it and opens a DEALER toward each of its nodes at once, so connections are
 * being set up before the first client request (zmq_connect is asynchronous: nothing waits for a
 * node here); otherwise the first poll() or tick() that finds a table does. A node that cannot
 * get a socket (descriptors run out) is not an error here: requests for its partitions fail as
 * not answering until the next table change. Returns 0, or -1 if memory or descriptors for the
 * router itself run out. */
int router_open(void *arg, unsigned worker, backend_t *out);

#endif
