/* SPDX-License-Identifier: MIT */
/* nodesrv: one ROUTER socket per worker actor, serving cmsg batches from the repository (see
 * nodesrv.h for the threads, the ports and the rules).
 *
 * Invariant: each socket is used by exactly one thread after nodesrv_start(): worker i's ROUTER
 * by worker i. Worker buffers are only touched by their worker. */
#include "nodesrv.h"

#include "mono.h"

#include "cmsg.h"
#include "members.h"

#include "err.h"
#include "slog.h"

#include <czmq.h>
#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DRAIN_MAX 256 /* messages handled per wake-up before polling the pipe again */
/* With an ephemeral port ("*") and several workers: bases tried for worker 0 before giving up,
 * each followed by its consecutive ports (taken by someone else now and then). The bases are
 * drawn from BLOCK_LOW up to the system's range for outgoing connections (ip_local_port_range),
 * not from it: connect() takes even ports there and bind(0) odd ones, so every block of
 * consecutive ports in it has ports that connections in TIME_WAIT hold for a minute, and a busy
 * host (a test suite) fails most tries. */
#define BIND_TRIES 20
#define BLOCK_LOW  10000
/* An idle worker still turns its loop this often, so nodesrv_loop_age_ms() tells a
 * quiet server from a stuck one (a wake-up a second costs nothing). */
#define IDLE_WAKE_MS 1000

static const char full_text[] = "tracker is full: no new torrents accepted now";

typedef struct {
    _Atomic uint64_t batches, requests, announces, scrapes, lookups, moved, errors, garbage,
        garbage_frames, replies_dropped;
    _Atomic int last_garbage;
} counters_t;

typedef struct worker {
    nodesrv_t *srv;
    zsock_t *sock;      /* this worker's ROUTER */
    char endpoint[256]; /* where it is bound ("" while it is not) */
    zactor_t *actor;
    counters_t c;
    _Atomic uint64_t turned_ms; /* mono_coarse_ms() of its last loop turn, 0 while not running */
    /* the membership table this worker routes with, re-taken when the version moves */
    const partition_table_t *table;
    uint64_t version;
    int self_index;
    uint64_t epoch;
    /* buffers (allocated at start, see nodesrv.h) */
    cmsg_request_batch_t req;
    cmsg_reply_batch_t rep;
    uint8_t *peers;       /* CMSG_BATCH_MAX slots of SHOAL_NUMWANT_MAX IPv6 records */
    swarm_stats_t *arena; /* CMSG_BATCH_MAX * SHOAL_SCRAPE_MAX scrape entries */
    uint8_t *out;         /* CMSG_REPLY_BATCH_BOUND */
    cmsg_lookup_request_t lookup_req;
    cmsg_lookup_reply_t *lookup_rep; /* about 24 KB */
    uint8_t *lookup_out;             /* CMSG_LOOKUP_REPLY_MAX */
} worker_t;

struct nodesrv {
    char bind[256];
    char self_id[PARTITION_ID_MAX];
    unsigned n_workers;
    repo_t *repo;
    membership_t *membership;
    uint32_t numwant_default;
    keeper_t *keeper;
    uint32_t (*clock)(void);
    worker_t *workers;
    bool running;
};

static void bump(_Atomic uint64_t *c, uint64_t n)
{
    if (n)
        atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---- serving -------------------------------------------------------------------------------- */

static void refresh_table(worker_t *w)
{
    membership_t *m = w->srv->membership;
    uint64_t v = membership_version(m);
    if (v == w->version && w->table)
        return;
    membership_release(m, &w->table);
    w->table = membership_current(m);
    w->version = v;
    w->self_index = w->table ? partition_table_find(w->table, w->srv->self_id) : -1;
    /* A node outside its own table owns nothing; its epoch still tells the gateway "differs". */
    w->epoch = w->table ? partition_table_epoch(w->table) : 0;
}

static bool owns(const worker_t *w, const uint8_t hash[SHOAL_HASH_LEN])
{
    uint32_t p = partition_of(hash);
    return w->self_index >= 0 && partition_owner(w->table, p) == (uint16_t)w->self_index &&
           (!w->srv->keeper || keeper_may_serve(w->srv->keeper, p));
}

/* Serve w->req into w->rep. */
static void serve(worker_t *w)
{
    const cmsg_request_batch_t *b = &w->req;
    cmsg_reply_batch_t *r = &w->rep;
    nodesrv_t *srv = w->srv;
    uint32_t now = srv->clock();
    uint64_t announces = 0, scrapes = 0, moved = 0, errors = 0;
    size_t arena_used = 0;
    refresh_table(w);
    /* Not serving at all (lease, pause, shutdown): everything is "moved". */
    bool serving = !srv->keeper || keeper_serving(srv->keeper);
    r->batch_id = b->batch_id;
    r->epoch = w->epoch;
    r->n = b->n;
    for (size_t i = 0; i < b->n; i++) {
        const cmsg_request_t *q = &b->req[i];
        cmsg_reply_t *a = &r->rep[i];
        a->id = q->id;
        a->kind = q->kind;
        bool mine;
        if (!serving) {
            mine = false;
        } else if (q->kind == CMSG_ANNOUNCE) {
            mine = owns(w, q->announce.info_hash);
        } else {
            mine = true;
            for (size_t h = 0; h < q->n_hashes && mine; h++)
                mine = owns(w, q->hashes + h * SHOAL_HASH_LEN);
        }
        if (!mine) {
            a->status = CMSG_STATUS_MOVED;
            a->epoch = w->epoch;
            moved++;
            continue;
        }
        if (q->kind == CMSG_ANNOUNCE) {
            int32_t want = q->announce.numwant;
            size_t numwant = want < 0                             ? srv->numwant_default
                             : (uint32_t)want > SHOAL_NUMWANT_MAX ? SHOAL_NUMWANT_MAX
                                                                  : (size_t)want;
            uint8_t *peers = w->peers + i * (size_t)SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN;
            repo_result_t res;
            if (repo_announce(srv->repo, &q->announce, now, numwant, peers, &res) != REPO_OK) {
                a->status = CMSG_STATUS_ERROR;
                memcpy(a->error, full_text, sizeof(full_text));
                errors++;
                continue;
            }
            a->status = CMSG_STATUS_OK;
            a->stats = res.stats;
            a->family = q->announce.peer.family;
            a->peers = peers;
            a->n_peers = res.n_peers;
            announces++;
        } else {
            /* The arena holds CMSG_BATCH_MAX full scrapes, so it never runs out. */
            swarm_stats_t *st = w->arena + arena_used;
            for (size_t h = 0; h < q->n_hashes; h++)
                repo_scrape(srv->repo, q->hashes + h * SHOAL_HASH_LEN, &st[h]);
            arena_used += q->n_hashes;
            a->status = CMSG_STATUS_OK;
            a->scrape = st;
            a->n_scrape = q->n_hashes;
            scrapes++;
        }
    }
    bump(&w->c.batches, 1);
    bump(&w->c.requests, b->n);
    bump(&w->c.announces, announces);
    bump(&w->c.scrapes, scrapes);
    bump(&w->c.moved, moved);
    bump(&w->c.errors, errors);
}

/* Serve w->lookup_req into *w->lookup_rep: like an announce, only for an owned partition. */
static void serve_lookup(worker_t *w)
{
    const cmsg_lookup_request_t *q = &w->lookup_req;
    cmsg_lookup_reply_t *a = w->lookup_rep;
    nodesrv_t *srv = w->srv;
    refresh_table(w);
    a->id = q->id;
    a->epoch = w->epoch;
    a->error[0] = '\0';
    if ((srv->keeper && !keeper_serving(srv->keeper)) || !owns(w, q->info_hash)) {
        a->status = CMSG_STATUS_MOVED;
        memset(&a->result, 0, offsetof(cmsg_lookup_result_t, peers));
        bump(&w->c.moved, 1);
        return;
    }
    a->status = CMSG_STATUS_OK;
    repo_lookup(srv->repo, q->info_hash, srv->clock(), q->offset, q->max_peers, &a->result);
    bump(&w->c.lookups, 1);
}

/* A payload that is not a request batch because of its type: a lookup, if it decodes as one.
 * Returns CMSG_OK with the reply's length in *len (-1 if it could not be encoded, which a valid
 * reply never is: the buffer takes the largest), or the lookup decoder's error. */
static cmsg_err_t handle_lookup(worker_t *w, const uint8_t *buf, size_t n, ssize_t *len)
{
    cmsg_err_t e = cmsg_decode_lookup_request(buf, n, &w->lookup_req);
    if (e != CMSG_OK)
        return e;
    serve_lookup(w);
    *len = cmsg_encode_lookup_reply(w->lookup_rep, w->lookup_out, CMSG_LOOKUP_REPLY_MAX);
    return CMSG_OK;
}

static void garbage(worker_t *w, int why)
{
    bump(&w->c.garbage, 1);
    if (why < 0)
        bump(&w->c.garbage_frames, 1);
    atomic_store_explicit(&w->c.last_garbage, why, memory_order_relaxed);
}

/* Receive and serve one message if there is one. Returns false when the socket is empty. */
static bool handle_one(worker_t *w, void *sock)
{
    zmq_msg_t id, body;
    zmq_msg_init(&id);
    if (zmq_msg_recv(&id, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&id);
        return false;
    }
    if (!zmq_msg_more(&id)) {
        zmq_msg_close(&id);
        garbage(w, -1);
        return true;
    }
    zmq_msg_init(&body);
    /* The rest of a multipart message is already here: no wait. */
    int rc = zmq_msg_recv(&body, sock, 0);
    if (rc < 0 || zmq_msg_more(&body)) {
        while (rc >= 0 && zmq_msg_more(&body))
            rc = zmq_msg_recv(&body, sock, 0);
        zmq_msg_close(&body);
        zmq_msg_close(&id);
        garbage(w, -1);
        return true;
    }
    cmsg_err_t e = cmsg_decode_requests(zmq_msg_data(&body), zmq_msg_size(&body), &w->req);
    const uint8_t *reply = w->out;
    ssize_t len = -1;
    if (e == CMSG_ERR_MSG_TYPE) { /* not a batch: a lookup, or garbage */
        cmsg_err_t le = handle_lookup(w, zmq_msg_data(&body), zmq_msg_size(&body), &len);
        zmq_msg_close(&body);
        if (le != CMSG_OK) {
            zmq_msg_close(&id);
            /* Of another type still: the batch decoder's word; else what the lookup lacked. */
            garbage(w, (int)(le == CMSG_ERR_MSG_TYPE ? e : le));
            return true;
        }
        reply = w->lookup_out;
    } else if (e != CMSG_OK) {
        zmq_msg_close(&body);
        zmq_msg_close(&id);
        garbage(w, (int)e);
        return true;
    } else {
        serve(w); /* reads scrape hashes borrowed from body */
        zmq_msg_close(&body);
        len = cmsg_encode_replies(&w->rep, w->out, CMSG_REPLY_BATCH_BOUND);
    }
    if (len < 0 || zmq_msg_send(&id, sock, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&id);
        bump(&w->c.replies_dropped, 1);
        return true;
    }
    /* zmq_msg_send took id. The first part went out, so the last one cannot fail on HWM. */
    if (zmq_send(sock, reply, (size_t)len, ZMQ_DONTWAIT) < 0)
        bump(&w->c.replies_dropped, 1);
    return true;
}

/* Whether the actor's pipe holds a message ($TERM, the only command). */
static bool pipe_ready(void *pipe)
{
    int ev = 0;
    size_t len = sizeof(ev);
    return zmq_getsockopt(pipe, ZMQ_EVENTS, &ev, &len) == 0 && (ev & ZMQ_POLLIN);
}

/* The loop sleeps in poll(2) on the two sockets' ZMQ_FDs, not in zmq_poll(): zmq_poll() asks
 * every socket for ZMQ_EVENTS before and after it sleeps, and each ask costs libzmq a getpid()
 * and a poll() of its own (about 20 syscalls per wake-up for two sockets, against 6 here).
 * ZMQ_FD only tells that the socket's state may have changed, so the rules are: the socket is
 * read until it says EAGAIN before every sleep (that read also processes its pending commands,
 * which is what re-arms the descriptor), and the pipe is asked only when its descriptor fired. */
static void worker_main(zsock_t *pipe, void *arg)
{
    worker_t *w = arg;
    void *sock = zsock_resolve(w->sock), *psock = zsock_resolve(pipe);
    int sfd = -1, pfd = -1;
    size_t len = sizeof(int);
    bool fds_ok = zmq_getsockopt(sock, ZMQ_FD, &sfd, &len) == 0;
    len = sizeof(int);
    fds_ok = fds_ok && zmq_getsockopt(psock, ZMQ_FD, &pfd, &len) == 0;
    zsock_signal(pipe, 0);
    struct pollfd fds[2] = {{.fd = pfd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
    bool ask_pipe = true; /* a $TERM may be there before the first sleep */
    while (fds_ok) {
        atomic_store_explicit(&w->turned_ms, mono_coarse_ms(), memory_order_relaxed);
        if (ask_pipe && pipe_ready(psock))
            break;
        int n = 0;
        while (n < DRAIN_MAX && handle_one(w, sock))
            n++;
        /* Stopped at DRAIN_MAX: more is waiting, so only look whether the pipe fired. */
        int rc = poll(fds, 2, n == DRAIN_MAX ? 0 : IDLE_WAKE_MS);
        if (rc < 0 && errno != EINTR)
            break;
        ask_pipe = rc > 0 && fds[0].revents != 0;
    }
    atomic_store_explicit(&w->turned_ms, 0, memory_order_relaxed);
    membership_release(w->srv->membership, &w->table);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

/* Worker i's ROUTER with every option a serving socket has, CURVE (before any bind: the first
 * connection must already meet the handshake) included. */
static zsock_t *new_router(const nodesrv_config_t *cfg, int hwm, char *err, size_t errlen)
{
    zsock_t *s = zsock_new(ZMQ_ROUTER);
    if (!s) {
        err_set(err, errlen, "cannot create a ZeroMQ socket: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    zsock_set_linger(s, 0);
    zsock_set_sndhwm(s, hwm);
    zsock_set_rcvhwm(s, hwm);
    /* No valid batch is larger; libzmq drops a peer that sends a larger frame instead of
     * buffering it, so a gateway (or anyone) cannot make the node allocate without bound. */
    zsock_set_maxmsgsize(s, (int)CMSG_REQUEST_BATCH_BOUND);
    /* An IPv6 endpoint (tcp://[::1]:7000; tcp://[::]:7000 for every address, dual-stack, as an
     * IPv6-only Kubernetes cluster needs) takes ZeroMQ's IPv6 option; without it the bind fails
     * with "No such device". IPv4 endpoints stay IPv4-only sockets. */
    if (strchr(cfg->bind, '['))
        zsock_set_ipv6(s, 1);
    if (cfg->curve && curve_server_socket(cfg->curve, zsock_resolve(s), err, errlen) != 0)
        zsock_destroy(&s);
    return s;
}

/* Bind worker w's socket at ep; its resolved endpoint goes into w->endpoint. */
static int bind_worker(worker_t *w, const char *ep)
{
    if (zsock_bind(w->sock, "%s", ep) < 0)
        return -1;
    char *last = zsock_last_endpoint(w->sock);
    snprintf(w->endpoint, sizeof(w->endpoint), "%s", last ? last : ep);
    zstr_free(&last);
    return 0;
}

static void unbind_all(nodesrv_t *self)
{
    for (unsigned i = 0; i < self->n_workers; i++) {
        worker_t *w = &self->workers[i];
        if (w->endpoint[0])
            zsock_unbind(w->sock, "%s", w->endpoint);
        w->endpoint[0] = '\0';
    }
}

/* One attempt at binding every worker: worker 0 at ep0 (self->bind, or a base picked for an
 * ephemeral one), worker i at its port + i. Returns 0; 1 if a port is taken or past 65535 and
 * ephemeral (worth another base); -1 and why in err otherwise. */
static int bind_once(nodesrv_t *self, const char *ep0, bool ephemeral, char *err, size_t errlen)
{
    unsigned n = self->n_workers;
    const char *colon = strrchr(self->bind, ':');
    long port0 = colon ? strtol(colon + 1, NULL, 10) : 0;
    if (bind_worker(&self->workers[0], ep0) < 0) {
        if (ephemeral && n > 1 && zmq_errno() == EADDRINUSE)
            return 1;
        if (n > 1 && !ephemeral)
            err_set(err, errlen, "--workers %u needs ports %ld-%ld: cannot bind %s: %s", n, port0,
                    port0 + (long)n - 1, self->bind, zmq_strerror(zmq_errno()));
        else
            err_set(err, errlen, "cannot bind %s: %s", self->bind, zmq_strerror(zmq_errno()));
        return -1;
    }
    const char *base = self->workers[0].endpoint;
    colon = strrchr(base, ':');
    port0 = colon ? strtol(colon + 1, NULL, 10) : 0;
    for (unsigned i = 1; i < n; i++) {
        char ep[sizeof(self->workers[i].endpoint)];
        int rc = members_worker_endpoint(base, i, ep, sizeof(ep));
        if (rc == 0)
            rc = bind_worker(&self->workers[i], ep);
        if (rc == 0)
            continue;
        if (ephemeral)
            return 1;
        if (port0 + (long)n - 1 > 65535)
            err_set(err, errlen, "--workers %u needs ports %ld-%ld: past 65535", n, port0,
                    port0 + (long)n - 1);
        else
            err_set(err, errlen, "--workers %u needs ports %ld-%ld: cannot bind %s: %s", n, port0,
                    port0 + (long)n - 1, ep, zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

/* Bind every worker's socket: consecutive ports from --bind's (nodesrv.h). */
static int bind_all(nodesrv_t *self, char *err, size_t errlen)
{
    size_t len = strlen(self->bind);
    bool ephemeral = len >= 2 && strcmp(self->bind + len - 2, ":*") == 0;
    long first = 0; /* the first port of the system's range for outgoing connections */
    FILE *f = ephemeral && self->n_workers > 1
                  ? fopen("/proc/sys/net/ipv4/ip_local_port_range", "r")
                  : NULL;
    if (f) {
        if (fscanf(f, "%ld", &first) != 1)
            first = 0;
        fclose(f);
    }
    /* Room below it for a spread of bases, or else the system's own pick (bind "*"). */
    long room = first - BLOCK_LOW - (long)self->n_workers;
    if (room < 1000 || sodium_init() < 0)
        room = 0;
    for (unsigned t = 0; t < (ephemeral && self->n_workers > 1 ? BIND_TRIES : 1); t++) {
        char ep0[sizeof(self->workers[0].endpoint)];
        if (room > 0)
            snprintf(ep0, sizeof(ep0), "%.*s%ld", (int)(len - 1), self->bind,
                     BLOCK_LOW + (long)randombytes_uniform((uint32_t)room));
        else
            snprintf(ep0, sizeof(ep0), "%s", self->bind);
        int rc = bind_once(self, ep0, ephemeral, err, errlen);
        if (rc <= 0)
            return rc;
        /* Unbinding keeps each socket (its options, CURVE and its handshake monitor). */
        unbind_all(self);
    }
    err_set(err, errlen, "--workers %u: no %u consecutive free ports from %s after %d tries",
            self->n_workers, self->n_workers, self->bind, BIND_TRIES);
    return -1;
}

nodesrv_t *nodesrv_new(const nodesrv_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->bind || !*cfg->bind || strlen(cfg->bind) >= sizeof(((nodesrv_t *)0)->bind)) {
        err_set(err, errlen, "a bind endpoint is required");
        return NULL;
    }
    if (cfg->workers < 1 || cfg->workers > MEMBERS_WORKERS_MAX || !cfg->repo || !cfg->membership ||
        !cfg->self_id || strlen(cfg->self_id) >= PARTITION_ID_MAX) {
        err_set(err, errlen, "invalid server configuration");
        return NULL;
    }
    if (cfg->workers > 1 && strncmp(cfg->bind, "tcp://", 6) != 0) {
        err_set(err, errlen,
                "--workers %u needs a tcp://HOST:PORT endpoint to bind (one port per "
                "worker), not %s",
                cfg->workers, cfg->bind);
        return NULL;
    }
    nodesrv_t *self = calloc(1, sizeof(*self));
    if (!self) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(self->bind, sizeof(self->bind), "%s", cfg->bind);
    snprintf(self->self_id, sizeof(self->self_id), "%s", cfg->self_id);
    self->n_workers = cfg->workers;
    self->repo = cfg->repo;
    self->membership = cfg->membership;
    self->numwant_default =
        cfg->numwant_default > SHOAL_NUMWANT_MAX ? SHOAL_NUMWANT_MAX : cfg->numwant_default;
    self->clock = cfg->clock ? cfg->clock : mono_s;
    self->keeper = cfg->keeper;
    int hwm = cfg->hwm > 0 ? cfg->hwm : 10000;

    self->workers = calloc(self->n_workers, sizeof(*self->workers));
    if (!self->workers) {
        err_set(err, errlen, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < self->n_workers; i++) {
        worker_t *w = &self->workers[i];
        w->srv = self;
        w->self_index = -1;
        w->peers = malloc((size_t)CMSG_BATCH_MAX * SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN);
        w->arena = malloc((size_t)CMSG_BATCH_MAX * SHOAL_SCRAPE_MAX * sizeof(swarm_stats_t));
        w->out = malloc(CMSG_REPLY_BATCH_BOUND);
        w->lookup_rep = malloc(sizeof(*w->lookup_rep));
        w->lookup_out = malloc(CMSG_LOOKUP_REPLY_MAX);
        if (!w->peers || !w->arena || !w->out || !w->lookup_rep || !w->lookup_out) {
            err_set(err, errlen, "out of memory");
            goto fail;
        }
        if (!(w->sock = new_router(cfg, hwm, err, errlen)))
            goto fail;
    }
    if (bind_all(self, err, errlen) != 0)
        goto fail;
    return self;
fail:
    nodesrv_destroy(&self);
    return NULL;
}

const char *nodesrv_endpoint(const nodesrv_t *self)
{
    return self->workers[0].endpoint;
}

unsigned nodesrv_workers(const nodesrv_t *self)
{
    return self->n_workers;
}

int nodesrv_start(nodesrv_t *self, char *err, size_t errlen)
{
    if (self->running)
        return 0;
    self->running = true;
    for (unsigned i = 0; i < self->n_workers; i++) {
        worker_t *w = &self->workers[i];
        w->actor = zactor_new(worker_main, w);
        if (!w->actor) {
            err_set(err, errlen, "cannot start worker %u", i);
            nodesrv_stop(self);
            return -1;
        }
    }
    return 0;
}

void nodesrv_stop(nodesrv_t *self)
{
    if (!self->running)
        return;
    for (unsigned i = 0; i < self->n_workers; i++)
        zactor_destroy(&self->workers[i].actor);
    self->running = false;
}

void nodesrv_destroy(nodesrv_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    nodesrv_t *self = *self_p;
    nodesrv_stop(self);
    for (unsigned i = 0; self->workers && i < self->n_workers; i++) {
        worker_t *w = &self->workers[i];
        zsock_destroy(&w->sock);
        free(w->peers);
        free(w->arena);
        free(w->out);
        free(w->lookup_rep);
        free(w->lookup_out);
    }
    free(self->workers);
    free(self);
    *self_p = NULL;
}

/* The age of one loop's last turn at now (0 if it is not running). */
static uint32_t turn_age(const _Atomic uint64_t *turned, uint64_t now)
{
    uint64_t t = atomic_load_explicit(turned, memory_order_relaxed);
    if (t == 0 || now <= t)
        return 0;
    return now - t > UINT32_MAX ? UINT32_MAX : (uint32_t)(now - t);
}

uint32_t nodesrv_loop_age_ms(nodesrv_t *self)
{
    uint64_t now = mono_coarse_ms();
    uint32_t age = 0;
    for (unsigned i = 0; self->workers && i < self->n_workers; i++) {
        uint32_t a = turn_age(&self->workers[i].turned_ms, now);
        if (a > age)
            age = a;
    }
    return age;
}

void nodesrv_worker_stats(nodesrv_t *self, unsigned i, nodesrv_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (i >= self->n_workers)
        return;
    counters_t *c = &self->workers[i].c;
    out->batches = atomic_load_explicit(&c->batches, memory_order_relaxed);
    out->requests = atomic_load_explicit(&c->requests, memory_order_relaxed);
    out->announces = atomic_load_explicit(&c->announces, memory_order_relaxed);
    out->scrapes = atomic_load_explicit(&c->scrapes, memory_order_relaxed);
    out->lookups = atomic_load_explicit(&c->lookups, memory_order_relaxed);
    out->moved = atomic_load_explicit(&c->moved, memory_order_relaxed);
    out->errors = atomic_load_explicit(&c->errors, memory_order_relaxed);
    out->garbage = atomic_load_explicit(&c->garbage, memory_order_relaxed);
    out->garbage_frames = atomic_load_explicit(&c->garbage_frames, memory_order_relaxed);
    out->replies_dropped = atomic_load_explicit(&c->replies_dropped, memory_order_relaxed);
    out->last_garbage = atomic_load_explicit(&c->last_garbage, memory_order_relaxed);
}

void nodesrv_stats(nodesrv_t *self, nodesrv_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned i = 0; i < self->n_workers; i++) {
        nodesrv_stats_t w;
        nodesrv_worker_stats(self, i, &w);
        out->batches += w.batches;
        out->requests += w.requests;
        out->announces += w.announces;
        out->scrapes += w.scrapes;
        out->lookups += w.lookups;
        out->moved += w.moved;
        out->errors += w.errors;
        out->garbage += w.garbage;
        out->garbage_frames += w.garbage_frames;
        out->replies_dropped += w.replies_dropped;
        if (w.last_garbage)
            out->last_garbage = w.last_garbage;
    }
}
