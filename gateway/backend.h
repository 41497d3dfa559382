/* SPDX-License-Identifier: MIT */
/* backend: what the front ends call to serve an announce or a scrape.
 *
 * The front ends (frontend.c) speak the client protocols; a backend holds or reaches the swarms.
 * The standalone `shoal` plugs in the node repository in-process and answers during submit();
 * the cluster gateway plugs in a router that batches requests toward the owning nodes and answers
 * later. Both are driven through this one interface, so the front ends do not know which they
 * have. A backend instance belongs to one front-end worker thread and is only called from it.
 *
 * Order: a backend may call done() in any order, also for requests of the same HTTP connection.
 * The front end keeps up to 32 pipelined requests of one connection at the backend at once and
 * writes their answers in request order itself, holding any answer that overtakes an earlier
 * one. The front end does not submit() from inside done(): requests that waited for room in
 * their connection's pipeline are submitted once poll() or tick() has returned. */
#ifndef SHOAL_BACKEND_H
#define SHOAL_BACKEND_H

#include "announce.h"

typedef enum {
    BACKEND_ANNOUNCE = 0,
    BACKEND_SCRAPE = 1,
} backend_kind_t;

/* One request. Everything it points to is borrowed for the duration of submit() only: a backend
 * that answers later copies what it needs (into its outgoing batch). */
typedef struct {
    backend_kind_t kind;
    uint32_t tag;               /* the front end's; handed back with the reply */
    const announce_t *announce; /* ANNOUNCE: peer.family/addr/port filled in */
    uint32_t numwant;           /* ANNOUNCE: already defaulted and capped */
    const uint8_t *hashes;      /* SCRAPE: n_hashes * 20 bytes */
    size_t n_hashes;
} backend_req_t;

/* One answer. Borrowed: valid only during the done() call that carries it. */
typedef struct {
    const char *failure; /* non-NULL: the request failed; a client-facing reason */
    uint32_t retry_in;   /* with failure: minutes after which a retry makes sense, 0 if never */
    swarm_stats_t stats; /* ANNOUNCE */
    const uint8_t *peers;
    size_t n_peers; /* ANNOUNCE: compact records of the announcing peer's family */
    const swarm_stats_t *scrape;
    const uint8_t *hashes; /* SCRAPE: the requested hashes, n_scrape * 20 bytes, in order */
    size_t n_scrape;       /* SCRAPE: one stats entry per requested hash */
} backend_reply_t;

/* Called exactly once per submitted request, with the request's tag. */
typedef void (*backend_done_fn)(void *arg, uint32_t tag, const backend_reply_t *reply);

typedef struct {
    /* Serve reqs[0..n). done(arg, tag, reply) runs once per request, either during this call or
     * later from the backend's own event handling. */
    void (*submit)(void *self, const backend_req_t *reqs, size_t n, backend_done_fn done,
                   void *arg);
    /* Free the instance. */
    void (*destroy)(void *self);

    /* The rest is for backends that answer later; an in-process backend leaves them NULL. */

    /* A descriptor the worker watches for readability (level-triggered); when it is readable,
     * or after flush(), the worker calls poll(), which must handle everything ready (a ZeroMQ
     * ZMQ_FD only signals changes) and call done() for each answered request. */
    int (*fd)(void *self);
    void (*poll)(void *self, backend_done_fn done, void *arg);
    /* Called once per loop iteration after the worker has handled its ready events: send what
     * submit() gathered (one message per destination per receive cycle). */
    void (*flush)(void *self);
    /* Called at least every tick_ms: fail requests past their deadline through done(). */
    void (*tick)(void *self, backend_done_fn done, void *arg);
    unsigned tick_ms;
} backend_ops_t;

typedef struct {
    const backend_ops_t *ops;
    void *self;
} backend_t;

/* How a front end gets one backend per worker thread. Returns 0 and fills *out, or -1. */
typedef int (*backend_open_fn)(void *arg, unsigned worker, backend_t *out);

#endif
