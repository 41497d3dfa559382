/* SPDX-License-Identifier: MIT */
/* router: the gateway backend that forwards requests to partition owners (contract in router.h).
 *
 * Layout. slots[] is the in-flight table: a slot is one request toward one node (an announce, or
 * the part of a scrape that one node owns). Free slots sit on a stack; a slot's wire id is
 * (generation << ROUTER_SLOTS_BITS) | index, and the generation moves on every free, so ids of
 * failed requests are never mistaken for live ones. scrapes[] holds a client scrape while its
 * parts are out: its hashes in request order, order[] (the hash indices grouped part by part,
 * each part a range of it) and the stats gathered so far.
 *
 * Sockets. One DEALER per node worker of the current table: a node advertising "|workers=N"
 * (members.h) listens on N consecutive ports, one ROUTER per worker thread, and gets N DEALERs
 * here, worker w's at its port + w; partition p goes to worker p % N of its owner, so one swarm's
 * requests stay on one socket and in order. The sockets of one node (one advert) form a group
 * whose lead (its first open socket) counts the node's in-flight requests. A group is kept across
 * table changes while the advertised endpoint stays (the advert: a node's CURVE key and worker
 * count are part of it, so a new key or count is a new group; a new certificate of this
 * gateway's, after a reload, reconnects them all).
 * Their ZMQ_FDs sit in a private epoll set whose descriptor is the backend's fd(). ZMQ_FD only
 * signals a change of state, and any zmq call on the socket (a send included) may consume that
 * signal, so poll() drains every socket that was signalled or used since the last poll until it
 * says it has nothing, and the front end calls poll() after each flush().
 *
 * Deadlines. Every slot has its client's deadline. next_due is a lower bound of every deadline
 * and retry time in the table; tick() scans the table (8192 slots) only once it has passed, and
 * sets it to the earliest time still pending. A batch a node's queue refused gets deadline 0,
 * so the next tick fails its requests: flush() has no done() to answer with.
 *
 * Re-entrancy. done() may call submit() again (the front end serves a pipelined HTTP request
 * when an answer arrives), so every path finishes its own bookkeeping before it calls done(),
 * and submit() only queues: it never reads sockets or changes the table. */
#include "router.h"

#include "cmsg.h"
#include "mono.h"

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <zmq.h>

/* Sockets of one router, over every node worker, the old table's and the new one's while a table
 * changes. Beyond it a worker's socket is not opened and its partitions go to its node's lead
 * socket (any worker serves any partition its node owns). */
#define CONNS_MAX 8192
#define NO_CONN   0xffffu
#define SLOT_MASK (ROUTER_SLOTS - 1)
#define ARENA_N   (ROUTER_SEND_CAP / SHOAL_HASH_LEN) /* scrape stats one reply batch can hold */
#define DRAIN_MAX 1024                               /* messages read from one socket per poll */
#define EPOLL_N   64 /* sockets one poll() learns are readable; the rest stay readable */
/* Local counters reach the shared ones this often: fresh enough for /metrics, and one set of
 * atomic adds per 100 ms costs nothing on the request path. */
#define PUBLISH_MS 100
/* Rounds of draining per poll(): a socket that stopped at DRAIN_MAX, or that done() touched
 * again, is read again, up to POLL_ROUNDS * DRAIN_MAX messages; the rest waits for the next
 * poll(), so one busy node cannot keep the worker from its clients. */
#define POLL_ROUNDS 4

/* ZeroMQ options of the DEALER toward each node. */
/* Closing drops unsent batches at once: their requests are failed through their deadlines
 * anyway, and a router being destroyed (or a node dropped from the table) must not wait on a
 * node that may be dead. */
#define DEALER_LINGER_MS 0
/* No receive limit: replies are bounded by the requests in flight (ROUTER_NODE_INFLIGHT slots per
 * node), and a limit would only drop replies whose requests then time out. */
#define DEALER_RCVHWM 0
/* First reconnect after a node's connection drops: soon, so a node restarted on the same
 * endpoint is reached again within ~100 ms of listening (its requests fail at their deadlines
 * meanwhile); libzmq doubles the wait from here on each failed attempt. */
#define DEALER_RECONNECT_MS 100
/* Reconnect backoff ceiling: a node gone for good costs each router one connect attempt every
 * 2 s at most until membership drops it from the table (MEMBERSHIP_TTL_MS_DEFAULT, 3 s). */
#define DEALER_RECONNECT_MAX_MS 2000
/* ZMTP PING this often, so a connection whose peer vanished without a FIN or RST (host down,
 * network cut) is noticed without waiting for TCP; once a second, like the membership heartbeat
 * (MEMBERSHIP_HEARTBEAT_MS_DEFAULT). */
#define DEALER_HEARTBEAT_MS 1000
/* Nothing heard for this long after a PING: the connection is dropped and reconnected. Above the
 * membership TTL (3 s), so a dead node normally leaves the table first; tolerant of a node that
 * stalls a few seconds (a snapshot, a paused VM). */
#define DEALER_HEARTBEAT_TIMEOUT_MS 5000

_Static_assert(ROUTER_SLOTS <= 65536, "slot indices are 16 bits");
_Static_assert(CONNS_MAX < NO_CONN, "connection indices are 16 bits");
_Static_assert(ROUTER_SEND_CAP >= CMSG_HEADER_BOUND + CMSG_SCRAPE_REQUEST_BOUND(SHOAL_SCRAPE_MAX),
               "the largest request fits one batch");

/* HELD: in use and being routed right now (inside route()); never seen between calls. */
enum { SLOT_FREE = 0, SLOT_QUEUED = 1, SLOT_SENT = 2, SLOT_PARKED = 3, SLOT_HELD = 4 };

typedef struct {
    uint8_t state;
    uint8_t kind;   /* backend_kind_t */
    uint8_t routes; /* times routed so far */
    uint16_t conn;  /* QUEUED, SENT: the node's connection */
    uint16_t off;   /* SCRAPE part: its range of the scrape's order[] */
    uint16_t cnt;
    uint32_t gen;
    uint32_t owner; /* ANNOUNCE: the front end's tag; SCRAPE: the index in scrapes[] */
    uint32_t numwant;
    uint64_t deadline; /* ms, CLOCK_MONOTONIC_COARSE */
    uint64_t retry_at; /* PARKED */
    uint64_t version;  /* of the table it was routed with */
    announce_t announce;
} slot_t;

typedef struct {
    bool used;
    bool failed;          /* done() already ran with a failure; parts still out are dropped */
    uint16_t n;           /* hashes */
    uint16_t outstanding; /* parts holding a slot */
    uint32_t tag;
    uint8_t hashes[SHOAL_SCRAPE_MAX][SHOAL_HASH_LEN];
    uint16_t order[SHOAL_SCRAPE_MAX];
    swarm_stats_t stats[SHOAL_SCRAPE_MAX];
} scrape_t;

typedef struct {
    void *sock;
    int fd;
    bool keep;         /* table change scratch: the new table uses it */
    bool dirty;        /* listed in dirty[]: its queue goes out at flush() */
    bool touched;      /* listed in touched[]: drain it at the next poll() */
    uint16_t worker;   /* the node worker this socket reaches (its port offset) */
    uint16_t lead;     /* the connection counting its node's in-flight requests (maybe itself) */
    uint32_t inflight; /* slots QUEUED or SENT here */
    uint32_t node_inflight; /* lead only: inflight summed over its group, <= ROUTER_NODE_INFLIGHT */
    uint32_t batches_out;   /* batches sent and not answered yet (pacing, see router_flush()) */
    uint64_t sent_at;       /* ms, CLOCK_MONOTONIC: when the last batch went out */
    /* Its node's share of the counters: the slot in cfg.counters->nodes (-1: none), what was
     * counted here, and what of it was published (publish_node()). */
    int node;
    uint64_t requests, timeouts, moved;
    uint64_t pub_requests, pub_timeouts, pub_moved;
    uint32_t pub_inflight;
    char node_id[PARTITION_ID_MAX];
    uint16_t n_queue;
    size_t queue_bytes; /* encoded bound of the queue, header included */
    uint32_t queue[CMSG_BATCH_MAX];
    char endpoint[PARTITION_ENDPOINT_MAX]; /* the node's advert (every socket of the group) */
} conn_t;

/* Local counters, published to the shared ones every PUBLISH_MS. */
typedef struct {
    uint64_t requests, answered, failed, timeouts, busy, moved, batches, send_failures, bad_replies,
        tables;
} counts_t;

struct router {
    router_config_t cfg;
    int epfd;
    const partition_table_t *table;
    uint64_t version;
    uint64_t curve_version; /* of cfg.curve when the table was last (re)adopted */
    uint64_t cert_gen;      /* of cfg.curve's certificate the connections were made with */
    uint64_t epoch;
    uint64_t now;
    uint64_t next_due; /* no slot's deadline or retry time is earlier than this */
    uint64_t next_publish;
    bool flushed; /* flush() ran since the last poll() */
    uint64_t batch_id;
    size_t n_parked;
    counts_t c, published;

    uint16_t part_conn[PARTITION_COUNT];
    conn_t *conns[CONNS_MAX];
    uint16_t dirty[CONNS_MAX];
    size_t n_dirty;
    uint16_t touched[CONNS_MAX];
    size_t n_touched;

    slot_t slots[ROUTER_SLOTS];
    uint16_t free_slots[ROUTER_SLOTS];
    size_t n_free;
    scrape_t scrapes[ROUTER_SCRAPES];
    uint16_t free_scrapes[ROUTER_SCRAPES];
    size_t n_free_scrapes;

    /* Codec scratch. sendbuf serves sending; in, arena and errtext receiving, so a
     * send from inside a done() called while a reply batch is being read touches neither. */
    uint8_t sendbuf[ROUTER_SEND_CAP];
    cmsg_reply_batch_t in;
    swarm_stats_t arena[ARENA_N];
    char errtext[CMSG_ERROR_MAX + 1];
};

typedef struct router router_t;

/* ---- slots and scrapes --------------------------------------------------------------------- */

static uint32_t slot_id(const router_t *self, const slot_t *s)
{
    return (s->gen << ROUTER_SLOTS_BITS) | (uint32_t)(s - self->slots);
}

/* Every state change goes through here, which keeps n_parked and the connections' in-flight
 * counts. s->conn must name the connection before a change to QUEUED. */
static void set_state(router_t *self, slot_t *s, uint8_t state)
{
    bool was_out = s->state == SLOT_QUEUED || s->state == SLOT_SENT;
    bool is_out = state == SLOT_QUEUED || state == SLOT_SENT;
    if (was_out != is_out) {
        conn_t *c = self->conns[s->conn], *lead = self->conns[c->lead];
        c->inflight += is_out ? 1 : -1;
        lead->node_inflight += is_out ? 1 : -1;
    }
    if (s->state == SLOT_PARKED)
        self->n_parked--;
    if (state == SLOT_PARKED)
        self->n_parked++;
    s->state = state;
}

/* Note a deadline or retry time: tick() scans the slots when the earliest one comes. */
static void due(router_t *self, uint64_t when)
{
    if (when < self->next_due)
        self->next_due = when;
}

static slot_t *slot_alloc(router_t *self)
{
    if (self->n_free == 0)
        return NULL;
    return &self->slots[self->free_slots[--self->n_free]];
}

static void slot_free(router_t *self, slot_t *s)
{
    set_state(self, s, SLOT_FREE);
    s->gen++;
    self->free_slots[self->n_free++] = (uint16_t)(s - self->slots);
}

/* The slot a wire id names, if it is still in the given state. */
static slot_t *slot_find(router_t *self, uint32_t id, uint8_t state)
{
    slot_t *s = &self->slots[id & SLOT_MASK];
    return s->state == state && slot_id(self, s) == id ? s : NULL;
}

static void scrape_free(router_t *self, scrape_t *sc)
{
    sc->used = false;
    self->free_scrapes[self->n_free_scrapes++] = (uint16_t)(sc - self->scrapes);
}

static void answer_failure(router_t *self, uint32_t tag, const char *reason, uint32_t retry_in,
                           backend_done_fn done, void *arg)
{
    backend_reply_t reply = {.failure = reason, .retry_in = retry_in};
    self->c.failed++;
    done(arg, tag, &reply);
}

/* Fail a client scrape (once) and free it when no part holds a slot any more. */
static void scrape_fail(router_t *self, scrape_t *sc, const char *reason, backend_done_fn done,
                        void *arg)
{
    bool answer = !sc->failed;
    sc->failed = true;
    if (answer)
        answer_failure(self, sc->tag, reason, 1, done, arg);
    if (sc->outstanding == 0)
        scrape_free(self, sc);
}

/* Fail the request a slot holds, freeing the slot. */
static void slot_fail(router_t *self, slot_t *s, const char *reason, backend_done_fn done,
                      void *arg)
{
    if (s->kind == BACKEND_ANNOUNCE) {
        uint32_t tag = s->owner;
        slot_free(self, s);
        answer_failure(self, tag, reason, 1, done, arg);
        return;
    }
    scrape_t *sc = &self->scrapes[s->owner];
    slot_free(self, s);
    sc->outstanding--;
    scrape_fail(self, sc, reason, done, arg);
}

/* ---- per-node counters ---------------------------------------------------------------------- */

static void nodes_lock(router_counters_t *rc)
{
    /* Held for a scan of the table and a copy: short, and only at table changes and scrapes. */
    while (atomic_exchange_explicit(&rc->nodes_lock, true, memory_order_acquire))
        sched_yield();
}

static void nodes_unlock(router_counters_t *rc)
{
    atomic_store_explicit(&rc->nodes_lock, false, memory_order_release);
}

/* Add what c counted since its last publish to its node's slot. */
static void publish_node(router_t *self, conn_t *c)
{
    if (c->node < 0)
        return;
    router_node_slot_t *n = &self->cfg.counters->nodes[c->node];
    if (c->requests != c->pub_requests)
        atomic_fetch_add_explicit(&n->requests, c->requests - c->pub_requests,
                                  memory_order_relaxed);
    if (c->timeouts != c->pub_timeouts)
        atomic_fetch_add_explicit(&n->timeouts, c->timeouts - c->pub_timeouts,
                                  memory_order_relaxed);
    if (c->moved != c->pub_moved)
        atomic_fetch_add_explicit(&n->moved, c->moved - c->pub_moved, memory_order_relaxed);
    if (c->inflight != c->pub_inflight)
        atomic_fetch_add_explicit(&n->in_flight, (int64_t)c->inflight - (int64_t)c->pub_inflight,
                                  memory_order_relaxed);
    c->pub_requests = c->requests;
    c->pub_timeouts = c->timeouts;
    c->pub_moved = c->moved;
    c->pub_inflight = c->inflight;
}

/* Stop counting c toward its node: publish what is left, take back its in-flight share, and give
 * up the router's reference to the slot. */
static void node_detach(router_t *self, conn_t *c)
{
    if (c->node < 0)
        return;
    router_counters_t *rc = self->cfg.counters;
    router_node_slot_t *n = &rc->nodes[c->node];
    publish_node(self, c);
    atomic_fetch_sub_explicit(&n->in_flight, (int64_t)c->pub_inflight, memory_order_relaxed);
    c->pub_inflight = 0;
    nodes_lock(rc);
    atomic_fetch_sub_explicit(&n->routers, 1, memory_order_relaxed);
    nodes_unlock(rc);
    c->node = -1;
    c->node_id[0] = '\0';
}

/* Count c toward node id (at endpoint): the id's slot, or a new one (see router.h). */
static void node_attach(router_t *self, conn_t *c, const char *id)
{
    router_counters_t *rc = self->cfg.counters;
    if (!rc || (c->node >= 0 && strcmp(c->node_id, id) == 0))
        return;
    node_detach(self, c);
    int found = -1, fresh = -1, reuse = -1;
    nodes_lock(rc);
    for (int i = 0; i < PARTITION_MEMBERS_MAX; i++) {
        router_node_slot_t *n = &rc->nodes[i];
        if (!n->used) {
            fresh = i; /* slots are taken in order and never given up: none used after it */
            break;
        }
        if (strcmp(n->id, id) == 0) {
            found = i;
            break;
        }
        if (reuse < 0 && atomic_load_explicit(&n->routers, memory_order_relaxed) == 0 &&
            atomic_load_explicit(&n->in_flight, memory_order_relaxed) == 0)
            reuse = i;
    }
    int pick = found >= 0 ? found : fresh >= 0 ? fresh : reuse;
    if (pick >= 0) {
        router_node_slot_t *n = &rc->nodes[pick];
        if (pick != found) {
            /* Nobody publishes to a slot no router holds: a new id starts from zero. */
            atomic_store_explicit(&n->requests, 0, memory_order_relaxed);
            atomic_store_explicit(&n->timeouts, 0, memory_order_relaxed);
            atomic_store_explicit(&n->moved, 0, memory_order_relaxed);
            atomic_store_explicit(&n->in_flight, 0, memory_order_relaxed);
            snprintf(n->id, sizeof(n->id), "%s", id);
            n->used = true;
        }
        snprintf(n->endpoint, sizeof(n->endpoint), "%s", c->endpoint);
        atomic_fetch_add_explicit(&n->routers, 1, memory_order_relaxed);
        c->node = pick;
        snprintf(c->node_id, sizeof(c->node_id), "%s", id);
        c->pub_requests = c->requests;
        c->pub_timeouts = c->timeouts;
        c->pub_moved = c->moved;
        c->pub_inflight = 0; /* the next publish adds what is in flight now */
    }
    nodes_unlock(rc);
}

size_t router_node_stats(router_counters_t *c, router_node_stat_t *out, size_t max)
{
    size_t k = 0;
    nodes_lock(c);
    for (size_t i = 0; i < PARTITION_MEMBERS_MAX && k < max && c->nodes[i].used; i++) {
        const router_node_slot_t *n = &c->nodes[i];
        router_node_stat_t *o = &out[k++];
        snprintf(o->id, sizeof(o->id), "%s", n->id);
        snprintf(o->endpoint, sizeof(o->endpoint), "%s", n->endpoint);
        o->current = atomic_load_explicit(&n->routers, memory_order_relaxed) > 0;
        int64_t f = atomic_load_explicit(&n->in_flight, memory_order_relaxed);
        o->in_flight = f > 0 ? (uint64_t)f : 0;
        o->requests = atomic_load_explicit(&n->requests, memory_order_relaxed);
        o->timeouts = atomic_load_explicit(&n->timeouts, memory_order_relaxed);
        o->moved = atomic_load_explicit(&n->moved, memory_order_relaxed);
    }
    nodes_unlock(c);
    return k;
}

/* ---- connections --------------------------------------------------------------------------- */

static void list_add(uint16_t *list, size_t *n, bool *flag, uint16_t ci)
{
    if (*flag)
        return;
    *flag = true;
    list[(*n)++] = ci;
}

static int set_int(void *sock, int opt, int value)
{
    return zmq_setsockopt(sock, opt, &value, sizeof(value));
}

/* A DEALER toward worker `worker` of the node advertising advert (ep: that worker's endpoint;
 * key: with CURVE, the node's key), watched by the private epoll set. Returns its index or
 * NO_CONN. */
static uint16_t conn_open(router_t *self, const char *advert, const char *ep, const char *key,
                          unsigned worker)
{
    uint16_t ci = 0;
    while (ci < CONNS_MAX && self->conns[ci])
        ci++;
    if (ci == CONNS_MAX)
        return NO_CONN;
    conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NO_CONN;
    c->node = -1;
    c->sock = zmq_socket(self->cfg.zmq_ctx, ZMQ_DEALER);
    if (!c->sock) {
        free(c);
        return NO_CONN;
    }
    size_t fd_len = sizeof(c->fd);
    /* No ZMQ_IMMEDIATE: batches sent before the connection is up (a node that just joined)
     * wait in its pipe instead of failing; SNDHWM and the deadlines bound them. */
    if (set_int(c->sock, ZMQ_LINGER, DEALER_LINGER_MS) != 0 ||
        set_int(c->sock, ZMQ_SNDHWM, ROUTER_SNDHWM) != 0 ||
        set_int(c->sock, ZMQ_RCVHWM, DEALER_RCVHWM) != 0 ||
        set_int(c->sock, ZMQ_RECONNECT_IVL, DEALER_RECONNECT_MS) != 0 ||
        set_int(c->sock, ZMQ_RECONNECT_IVL_MAX, DEALER_RECONNECT_MAX_MS) != 0 ||
        set_int(c->sock, ZMQ_HEARTBEAT_IVL, DEALER_HEARTBEAT_MS) != 0 ||
        set_int(c->sock, ZMQ_HEARTBEAT_TIMEOUT, DEALER_HEARTBEAT_TIMEOUT_MS) != 0 ||
        set_int(c->sock, ZMQ_IPV6, 1) != 0 || /* nodes at tcp://[v6]:PORT or v6-only names */
        (self->cfg.curve && curve_client_socket(self->cfg.curve, c->sock, key) != 0) ||
        zmq_connect(c->sock, ep) != 0 || zmq_getsockopt(c->sock, ZMQ_FD, &c->fd, &fd_len) != 0) {
        zmq_close(c->sock);
        free(c);
        return NO_CONN;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = ci};
    if (epoll_ctl(self->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        zmq_close(c->sock);
        free(c);
        return NO_CONN;
    }
    snprintf(c->endpoint, sizeof(c->endpoint), "%s", advert);
    c->worker = (uint16_t)worker;
    c->lead = ci;
    self->conns[ci] = c;
    return ci;
}

static void conn_close(router_t *self, uint16_t ci)
{
    conn_t *c = self->conns[ci];
    node_detach(self, c);
    epoll_ctl(self->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    zmq_close(c->sock);
    free(c);
    self->conns[ci] = NULL;
}

/* Drop indices of closed connections from a list. */
static void list_purge(router_t *self, uint16_t *list, size_t *n)
{
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        if (self->conns[list[i]])
            list[k++] = list[i];
    }
    *n = k;
}

/* Encode the connection's queue as one batch, straight from the slots into sendbuf (no request
 * is copied anywhere else), and hand it to its socket. */
static void conn_send(router_t *self, uint16_t ci)
{
    conn_t *c = self->conns[ci];
    /* Slots that failed while they waited are left out: count the rest first, the batch's
     * header carries the count. */
    size_t n = 0;
    for (size_t q = 0; q < c->n_queue; q++) {
        slot_t *s = slot_find(self, c->queue[q], SLOT_QUEUED);
        if (s)
            c->queue[n++] = c->queue[q];
    }
    c->n_queue = 0;
    c->queue_bytes = 0;
    if (n == 0)
        return;
    cmsg_req_writer_t x;
    cmsg_req_begin(&x, self->sendbuf, sizeof(self->sendbuf), self->epoch, ++self->batch_id, n);
    for (size_t q = 0; q < n; q++) {
        slot_t *s = &self->slots[c->queue[q] & SLOT_MASK];
        if (s->kind == BACKEND_ANNOUNCE) {
            cmsg_req_announce(&x, c->queue[q], &s->announce, (int32_t)s->numwant);
        } else {
            const scrape_t *sc = &self->scrapes[s->owner];
            uint8_t *dst = cmsg_req_scrape(&x, c->queue[q], s->cnt);
            for (size_t k = 0; dst && k < s->cnt; k++)
                memcpy(dst + k * SHOAL_HASH_LEN, sc->hashes[sc->order[s->off + k]], SHOAL_HASH_LEN);
        }
        set_state(self, s, SLOT_SENT);
    }
    ssize_t len = cmsg_req_end(&x);
    if (len < 0 || zmq_send(c->sock, self->sendbuf, (size_t)len, ZMQ_DONTWAIT) < 0) {
        /* The node's queue is full (it stopped reading) or, never expected, the batch did not
         * encode: its requests fail at the next tick, which has a done() to call. */
        for (size_t q = 0; q < n; q++)
            self->slots[c->queue[q] & SLOT_MASK].deadline = 0;
        due(self, 0);
        self->c.send_failures++;
    } else {
        self->c.batches++;
        c->requests += n;
        c->batches_out++;
        c->sent_at = (uint64_t)mono_ms();
    }
    list_add(self->touched, &self->n_touched, &c->touched, ci);
}

static size_t slot_bound(const slot_t *s)
{
    return s->kind == BACKEND_ANNOUNCE ? CMSG_ANNOUNCE_REQUEST_BOUND
                                       : CMSG_SCRAPE_REQUEST_BOUND(s->cnt);
}

/* Queue the slot toward connection ci; sends the queue first if the slot would overflow it. */
static void conn_enqueue(router_t *self, uint16_t ci, slot_t *s)
{
    conn_t *c = self->conns[ci];
    size_t bound = slot_bound(s);
    if (c->n_queue == CMSG_BATCH_MAX ||
        (c->n_queue > 0 && c->queue_bytes + bound > ROUTER_SEND_CAP))
        conn_send(self, ci);
    if (c->n_queue == 0)
        c->queue_bytes = CMSG_HEADER_BOUND;
    c->queue[c->n_queue++] = slot_id(self, s);
    c->queue_bytes += bound;
    s->conn = ci;
    set_state(self, s, SLOT_QUEUED);
    s->version = self->version;
    list_add(self->dirty, &self->n_dirty, &c->dirty, ci);
}

/* ---- routing ------------------------------------------------------------------------------- */

/* Whether the node behind connection ci holds its share of the slots (ROUTER_NODE_INFLIGHT). */
static bool node_full(const router_t *self, uint16_t ci)
{
    return self->conns[self->conns[ci]->lead]->node_inflight >= ROUTER_NODE_INFLIGHT;
}

/* Route part of a scrape: order[off, off + cnt) is regrouped by owning connection, one slot per
 * owner. `routes` is how often these hashes were routed before. */
static void route_range(router_t *self, scrape_t *sc, uint16_t off, uint16_t cnt, uint8_t routes,
                        uint64_t deadline, backend_done_fn done, void *arg)
{
    uint16_t conn_of[SHOAL_SCRAPE_MAX], grouped[SHOAL_SCRAPE_MAX];
    uint16_t run_off[SHOAL_SCRAPE_MAX], run_cnt[SHOAL_SCRAPE_MAX], run_conn[SHOAL_SCRAPE_MAX];
    bool taken[SHOAL_SCRAPE_MAX];
    if (routes >= ROUTER_ROUTES) {
        scrape_fail(self, sc, ROUTER_FAIL_MOVED, done, arg);
        return;
    }
    for (uint16_t k = 0; k < cnt; k++) {
        conn_of[k] = self->part_conn[partition_of(sc->hashes[sc->order[off + k]])];
        if (conn_of[k] == NO_CONN || node_full(self, conn_of[k])) {
            self->c.busy += conn_of[k] != NO_CONN;
            scrape_fail(self, sc, ROUTER_FAIL_TIMEOUT, done, arg);
            return;
        }
        taken[k] = false;
    }
    /* Stable grouping, O(cnt * owners): cnt <= 256. */
    uint16_t n_runs = 0, out = 0;
    for (uint16_t k = 0; k < cnt; k++) {
        if (taken[k])
            continue;
        run_off[n_runs] = out;
        run_conn[n_runs] = conn_of[k];
        for (uint16_t j = k; j < cnt; j++) {
            if (!taken[j] && conn_of[j] == conn_of[k]) {
                taken[j] = true;
                grouped[out++] = sc->order[off + j];
            }
        }
        run_cnt[n_runs] = (uint16_t)(out - run_off[n_runs]);
        n_runs++;
    }
    memcpy(&sc->order[off], grouped, cnt * sizeof(grouped[0]));
    for (uint16_t r = 0; r < n_runs; r++) {
        slot_t *s = slot_alloc(self);
        if (!s) {
            self->c.busy++;
            scrape_fail(self, sc, ROUTER_FAIL_BUSY, done, arg);
            return;
        }
        s->kind = BACKEND_SCRAPE;
        s->owner = (uint32_t)(sc - self->scrapes);
        s->off = (uint16_t)(off + run_off[r]);
        s->cnt = run_cnt[r];
        s->routes = (uint8_t)(routes + 1);
        s->deadline = deadline;
        due(self, deadline);
        sc->outstanding++;
        conn_enqueue(self, run_conn[r], s);
    }
}

/* Route a request again (it was parked, or it is new): an announce keeps its slot, a scrape part
 * gives its slot up and is regrouped under the current table. */
static void route(router_t *self, slot_t *s, backend_done_fn done, void *arg)
{
    set_state(self, s, SLOT_HELD);
    if (s->kind == BACKEND_SCRAPE) {
        scrape_t *sc = &self->scrapes[s->owner];
        uint16_t off = s->off, cnt = s->cnt;
        uint8_t routes = s->routes;
        uint64_t deadline = s->deadline;
        slot_free(self, s);
        sc->outstanding--;
        if (sc->failed) {
            if (sc->outstanding == 0)
                scrape_free(self, sc);
            return;
        }
        route_range(self, sc, off, cnt, routes, deadline, done, arg);
        return;
    }
    if (s->routes >= ROUTER_ROUTES) {
        slot_fail(self, s, ROUTER_FAIL_MOVED, done, arg);
        return;
    }
    uint16_t ci = self->part_conn[partition_of(s->announce.info_hash)];
    if (ci == NO_CONN || node_full(self, ci)) {
        self->c.busy += ci != NO_CONN;
        slot_fail(self, s, ROUTER_FAIL_TIMEOUT, done, arg);
        return;
    }
    s->routes++;
    conn_enqueue(self, ci, s);
}

/* Re-route every parked request (the table changed). */
static void route_parked(router_t *self, backend_done_fn done, void *arg)
{
    for (size_t i = 0; i < ROUTER_SLOTS && self->n_parked > 0; i++) {
        slot_t *s = &self->slots[i];
        if (s->state == SLOT_PARKED)
            route(self, s, done, arg);
    }
}

/* ---- the table ----------------------------------------------------------------------------- */

/* The open connections of the node advertising advert, by worker, into by_worker[0, workers)
 * (NO_CONN where there is none). */
static void conns_find(const router_t *self, const char *advert, unsigned workers,
                       uint16_t *by_worker)
{
    for (unsigned w = 0; w < workers; w++)
        by_worker[w] = NO_CONN;
    for (uint16_t ci = 0; ci < CONNS_MAX; ci++) {
        const conn_t *c = self->conns[ci];
        if (c && c->worker < workers && strcmp(c->endpoint, advert) == 0)
            by_worker[c->worker] = ci;
    }
}

/* Open (or keep) the sockets of member m's node, worker by worker, into conn_list[*used, ...):
 * its first entry's index goes into *first, the count into *count. */
static void adopt_member(router_t *self, const partition_table_t *t, size_t m, bool reuse,
                         uint16_t *conn_list, size_t *used, uint32_t *first, uint16_t *count)
{
    const char *advert = partition_table_member(t, m)->endpoint;
    members_advert_t a;
    *first = (uint32_t)*used;
    *count = 0;
    if (curve_check_node(self->cfg.curve, advert, &a) != CURVE_NODE_OK)
        return; /* refused: the daemon logs and counts it */
    if (a.workers > CONNS_MAX - *used)
        a.workers = (unsigned)(CONNS_MAX - *used); /* the rest go to the lead (CONNS_MAX) */
    uint16_t *mine = conn_list + *used;
    if (reuse)
        conns_find(self, advert, a.workers, mine);
    else
        for (unsigned w = 0; w < a.workers; w++)
            mine[w] = NO_CONN;
    uint16_t lead = NO_CONN;
    for (unsigned w = 0; w < a.workers; w++) {
        if (mine[w] == NO_CONN) {
            /* Worker 0 is the endpoint as advertised, whatever its form (inproc:// in tests). */
            char ep[PARTITION_ENDPOINT_MAX];
            if (w == 0)
                mine[w] = conn_open(self, advert, a.endpoint, a.key, w);
            else if (members_worker_endpoint(a.endpoint, w, ep, sizeof(ep)) == 0)
                mine[w] = conn_open(self, advert, ep, a.key, w);
        }
        if (mine[w] == NO_CONN)
            continue;
        conn_t *c = self->conns[mine[w]];
        c->keep = true;
        if (lead == NO_CONN)
            lead = mine[w];
        c->lead = lead;
        node_attach(self, c, partition_table_member(t, m)->id);
    }
    *used += a.workers;
    *count = (uint16_t)a.workers;
}

/* The connection partition p goes to: worker p % N of its owner, or the owner's lead socket if
 * that worker's could not be opened. */
static uint16_t part_target(const router_t *self, const uint16_t *conn_list, uint32_t first,
                            uint16_t count, uint32_t p)
{
    if (count == 0)
        return NO_CONN;
    uint16_t ci = conn_list[first + p % count];
    if (ci != NO_CONN)
        return ci;
    for (uint16_t w = 0; w < count; w++) {
        if (conn_list[first + w] != NO_CONN)
            return self->conns[conn_list[first + w]]->lead;
    }
    return NO_CONN;
}

/* Switch to table t (a reference this router now owns): connect to new endpoints, close the ones
 * gone, re-route what was queued or sent to them and everything parked. */
static void adopt(router_t *self, const partition_table_t *t, uint64_t version,
                  backend_done_fn done, void *arg)
{
    uint16_t conn_list[CONNS_MAX];
    uint32_t first[PARTITION_MEMBERS_MAX];
    uint16_t count[PARTITION_MEMBERS_MAX];
    size_t n = partition_table_count(t), used = 0;
    for (uint16_t ci = 0; ci < CONNS_MAX; ci++) {
        if (self->conns[ci])
            self->conns[ci]->keep = false;
    }
    /* A new certificate of ours: no connection made with the old one is kept. */
    uint64_t cert_gen = self->cfg.curve ? curve_generation(self->cfg.curve) : 0;
    bool reuse = cert_gen == self->cert_gen;
    self->cert_gen = cert_gen;
    for (size_t m = 0; m < n; m++)
        adopt_member(self, t, m, reuse, conn_list, &used, &first[m], &count[m]);
    /* Leads may have changed (a worker's socket that could not be opened before is open now):
     * recount every group's in-flight requests on its lead. */
    for (uint16_t ci = 0; ci < CONNS_MAX; ci++) {
        if (self->conns[ci])
            self->conns[ci]->node_inflight = 0;
    }
    for (uint16_t ci = 0; ci < CONNS_MAX; ci++) {
        conn_t *c = self->conns[ci];
        if (c)
            self->conns[c->lead]->node_inflight += c->inflight;
    }
    for (uint32_t p = 0; p < PARTITION_COUNT; p++) {
        uint16_t o = partition_owner(t, p);
        self->part_conn[p] = part_target(self, conn_list, first[o], count[o], p);
    }
    const partition_table_t *old = self->table;
    self->table = t;
    self->version = version;
    self->epoch = partition_table_epoch(t);
    if (self->cfg.counters) {
        atomic_store_explicit(&self->cfg.counters->table_epoch, self->epoch, memory_order_relaxed);
        atomic_store_explicit(&self->cfg.counters->table_members, (uint32_t)n,
                              memory_order_relaxed);
    }
    if (old)
        self->cfg.tables.release(self->cfg.tables.arg, &old);
    self->c.tables++;

    bool dropped = false;
    for (uint16_t ci = 0; ci < CONNS_MAX; ci++)
        dropped |= self->conns[ci] && !self->conns[ci]->keep;
    if (dropped) {
        for (size_t i = 0; i < ROUTER_SLOTS; i++) {
            slot_t *s = &self->slots[i];
            if ((s->state == SLOT_QUEUED || s->state == SLOT_SENT) && !self->conns[s->conn]->keep)
                set_state(self, s, SLOT_PARKED);
        }
        for (uint16_t ci = 0; ci < CONNS_MAX; ci++) {
            if (self->conns[ci] && !self->conns[ci]->keep)
                conn_close(self, ci);
        }
        list_purge(self, self->dirty, &self->n_dirty);
        list_purge(self, self->touched, &self->n_touched);
    }
    if (done)
        route_parked(self, done, arg);
}

/* Take the source's current table if it changed since ours. */
static void sync_table(router_t *self, backend_done_fn done, void *arg)
{
    const router_tables_t *src = &self->cfg.tables;
    uint64_t v = src->version(src->arg);
    uint64_t cv = self->cfg.curve ? curve_version(self->cfg.curve) : 0;
    if (v == self->version && cv == self->curve_version && self->table)
        return;
    self->curve_version = cv;
    const partition_table_t *t = src->current(src->arg);
    if (!t)
        return;
    adopt(self, t, v, done, arg);
}

/* ---- replies ------------------------------------------------------------------------------- */

static void on_moved(router_t *self, slot_t *s, backend_done_fn done, void *arg)
{
    self->c.moved++;
    self->conns[s->conn]->moved++; /* s is SENT: its connection is open */
    if (self->cfg.tables.refresh)
        self->cfg.tables.refresh(self->cfg.tables.arg);
    if (s->version != self->version) {
        route(self, s, done, arg); /* a newer table came meanwhile: use it */
        return;
    }
    set_state(self, s, SLOT_PARKED);
    s->retry_at = self->now + ROUTER_PARK_MS;
    due(self, s->retry_at);
}

static void on_ok(router_t *self, slot_t *s, const cmsg_reply_t *r, backend_done_fn done, void *arg)
{
    if (s->kind == BACKEND_ANNOUNCE) {
        if (r->kind != CMSG_ANNOUNCE || r->family != s->announce.peer.family) {
            self->c.bad_replies++;
            slot_fail(self, s, ROUTER_FAIL_REPLY, done, arg);
            return;
        }
        backend_reply_t reply = {
            .stats = r->stats,
            .peers = r->peers,
            .n_peers = r->n_peers < s->numwant ? r->n_peers : s->numwant,
        };
        uint32_t tag = s->owner;
        slot_free(self, s);
        self->c.answered++;
        done(arg, tag, &reply);
        return;
    }
    if (r->kind != CMSG_SCRAPE || r->n_scrape != s->cnt) {
        self->c.bad_replies++;
        slot_fail(self, s, ROUTER_FAIL_REPLY, done, arg);
        return;
    }
    scrape_t *sc = &self->scrapes[s->owner];
    for (size_t k = 0; k < s->cnt; k++)
        sc->stats[sc->order[s->off + k]] = r->scrape[k];
    slot_free(self, s);
    sc->outstanding--;
    if (sc->outstanding > 0)
        return;
    if (!sc->failed) {
        backend_reply_t reply = {
            .scrape = sc->stats,
            .hashes = &sc->hashes[0][0],
            .n_scrape = sc->n,
        };
        self->c.answered++;
        done(arg, sc->tag, &reply); /* sc stays in use until done() returns */
    }
    scrape_free(self, sc);
}

static void on_message(router_t *self, uint16_t ci, const uint8_t *data, size_t len,
                       backend_done_fn done, void *arg)
{
    cmsg_reply_batch_t *b = &self->in;
    if (cmsg_decode_replies(data, len, b, self->arena, ARENA_N) != CMSG_OK) {
        self->c.bad_replies++;
        return; /* its requests time out */
    }
    for (size_t i = 0; i < b->n; i++) {
        const cmsg_reply_t *r = &b->rep[i];
        slot_t *s = slot_find(self, r->id, SLOT_SENT);
        if (!s || s->conn != ci)
            continue; /* late (failed meanwhile) or not ours */
        switch (r->status) {
        case CMSG_STATUS_MOVED:
            on_moved(self, s, done, arg);
            break;
        case CMSG_STATUS_ERROR:
            memcpy(self->errtext, r->error, sizeof(self->errtext));
            slot_fail(self, s, self->errtext[0] ? self->errtext : ROUTER_FAIL_REPLY, done, arg);
            break;
        case CMSG_STATUS_OK:
            on_ok(self, s, r, done, arg);
            break;
        }
    }
}

/* Read everything the socket has. Returns false if it stopped at DRAIN_MAX messages. */
static bool conn_drain(router_t *self, uint16_t ci, backend_done_fn done, void *arg)
{
    void *sock = self->conns[ci]->sock;
    for (int n = 0; n < DRAIN_MAX; n++) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0) {
            /* Before saying EAGAIN, libzmq processed the socket's pending commands (an
             * activate_read among them), which also resets ZMQ_FD: nothing is left unseen. */
            zmq_msg_close(&msg);
            return true;
        }
        /* A node may put an empty delimiter frame first; the payload is the last frame. */
        bool frames_ok = true;
        while (zmq_msg_more(&msg)) {
            frames_ok = frames_ok && zmq_msg_size(&msg) == 0;
            zmq_msg_close(&msg);
            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) < 0)
                break;
        }
        if (frames_ok) {
            /* One reply batch per request batch: the pacing count goes down whatever it holds
             * (before done() may send on this connection again). */
            conn_t *c = self->conns[ci];
            if (c->batches_out > 0)
                c->batches_out--;
            on_message(self, ci, zmq_msg_data(&msg), zmq_msg_size(&msg), done, arg);
        } else
            self->c.bad_replies++;
        zmq_msg_close(&msg);
    }
    return false;
}

static void drain_touched(router_t *self, backend_done_fn done, void *arg)
{
    uint16_t list[CONNS_MAX];
    for (int round = 0; round < POLL_ROUNDS && self->n_touched > 0; round++) {
        size_t n = self->n_touched;
        memcpy(list, self->touched, n * sizeof(list[0]));
        self->n_touched = 0;
        for (size_t i = 0; i < n; i++)
            self->conns[list[i]]->touched = false;
        /* done() may send (and so touch) again: those are drained in the next round. */
        for (size_t i = 0; i < n; i++) {
            if (!conn_drain(self, list[i], done, arg))
                list_add(self->touched, &self->n_touched, &self->conns[list[i]]->touched, list[i]);
        }
    }
}

static void publish(router_t *self, bool force)
{
    router_counters_t *out = self->cfg.counters;
    if (!out || (!force && self->now < self->next_publish))
        return;
    self->next_publish = self->now + PUBLISH_MS;
    counts_t *c = &self->c, *p = &self->published;
#define ADD(f) atomic_fetch_add_explicit(&out->f, c->f - p->f, memory_order_relaxed)
    ADD(requests);
    ADD(answered);
    ADD(failed);
    ADD(timeouts);
    ADD(busy);
    ADD(moved);
    ADD(batches);
    ADD(send_failures);
    ADD(bad_replies);
    ADD(tables);
#undef ADD
    *p = *c;
    for (uint16_t ci = 0; ci < CONNS_MAX; ci++) {
        if (self->conns[ci])
            publish_node(self, self->conns[ci]);
    }
}

/* ---- backend ops --------------------------------------------------------------------------- */

static void router_submit(void *opaque, const backend_req_t *reqs, size_t n, backend_done_fn done,
                          void *arg)
{
    router_t *self = opaque;
    uint64_t deadline = mono_coarse_ms() + self->cfg.timeout_ms;
    self->c.requests += n;
    for (size_t i = 0; i < n; i++) {
        const backend_req_t *r = &reqs[i];
        if (!self->table) {
            answer_failure(self, r->tag, ROUTER_FAIL_NO_NODES, 1, done, arg);
            continue;
        }
        if (r->kind == BACKEND_ANNOUNCE) {
            slot_t *s = slot_alloc(self);
            if (!s) {
                self->c.busy++;
                answer_failure(self, r->tag, ROUTER_FAIL_BUSY, 1, done, arg);
                continue;
            }
            s->kind = BACKEND_ANNOUNCE;
            s->owner = r->tag;
            s->routes = 0;
            s->numwant = r->numwant > SHOAL_NUMWANT_MAX ? SHOAL_NUMWANT_MAX : r->numwant;
            s->deadline = deadline;
            due(self, deadline);
            s->announce = *r->announce;
            set_state(self, s, SLOT_HELD);
            route(self, s, done, arg);
            continue;
        }
        if (r->n_hashes == 0 || r->n_hashes > SHOAL_SCRAPE_MAX) {
            answer_failure(self, r->tag, "invalid scrape", 0, done, arg);
            continue;
        }
        if (self->n_free_scrapes == 0) {
            self->c.busy++;
            answer_failure(self, r->tag, ROUTER_FAIL_BUSY, 1, done, arg);
            continue;
        }
        scrape_t *sc = &self->scrapes[self->free_scrapes[--self->n_free_scrapes]];
        sc->used = true;
        sc->failed = false;
        sc->tag = r->tag;
        sc->n = (uint16_t)r->n_hashes;
        sc->outstanding = 0;
        memcpy(sc->hashes, r->hashes, r->n_hashes * SHOAL_HASH_LEN);
        for (uint16_t k = 0; k < sc->n; k++)
            sc->order[k] = k;
        route_range(self, sc, 0, sc->n, 0, deadline, done, arg);
    }
}

static int router_fd(void *opaque)
{
    return ((router_t *)opaque)->epfd;
}

static void router_poll(void *opaque, backend_done_fn done, void *arg)
{
    router_t *self = opaque;
    self->now = mono_coarse_ms();
    sync_table(self, done, arg);
    struct epoll_event evs[EPOLL_N];
    /* Right after flush() only the sockets used since are in doubt (touched): one whose ZMQ_FD
     * fired meanwhile keeps the epoll set readable and gets its own poll() next turn. Otherwise
     * ask the set; level-triggered, so a socket not drained now is reported again. */
    int n = self->flushed ? 0 : epoll_wait(self->epfd, evs, EPOLL_N, 0);
    self->flushed = false;
    for (int i = 0; i < n; i++) {
        uint16_t ci = (uint16_t)evs[i].data.u32;
        if (ci < CONNS_MAX && self->conns[ci])
            list_add(self->touched, &self->n_touched, &self->conns[ci]->touched, ci);
    }
    drain_touched(self, done, arg);
}

/* Whether connection c may send its queue now. Pacing, as Nagle's algorithm does for TCP
 * segments: while ROUTER_BATCHES_OUT batches toward a node are unanswered, requests for it wait
 * in its queue, and the next batch goes out when a reply comes back (the worker flushes after
 * every event). An idle connection sends at once, so a lone request never waits; under load the
 * batches grow by themselves to what arrives during one round trip, and the fixed cost of a
 * batch (ZeroMQ's thread hand-offs, wake-ups and syscalls on both sides, docs/profile-cluster.md)
 * is paid that much less often. A node that has not answered for ROUTER_HOLD_MS (stalled, dead,
 * or a reply lost with its connection) stops holding anything back: its unanswered batches are
 * forgotten for pacing (their requests still fail at their deadlines), and the queue goes. */
static bool conn_may_send(conn_t *c, uint64_t now)
{
    if (c->batches_out < ROUTER_BATCHES_OUT)
        return true;
    if (now - c->sent_at < ROUTER_HOLD_MS)
        return false;
    c->batches_out = 0;
    return true;
}

static void router_flush(void *opaque)
{
    router_t *self = opaque;
    uint64_t now = (uint64_t)mono_ms(); /* not the coarse clock: its steps are 4 ms here */
    size_t held = 0;
    for (size_t i = 0; i < self->n_dirty; i++) {
        uint16_t ci = self->dirty[i];
        conn_t *c = self->conns[ci];
        if (!c || !c->dirty)
            continue;
        if (!conn_may_send(c, now)) {
            self->dirty[held++] = ci; /* stays dirty: the next flush looks again */
            continue;
        }
        c->dirty = false;
        conn_send(self, ci);
    }
    self->n_dirty = held;
    self->flushed = true;
}

static void router_tick(void *opaque, backend_done_fn done, void *arg)
{
    router_t *self = opaque;
    self->now = mono_coarse_ms();
    sync_table(self, done, arg);
    if (self->n_touched > 0)
        drain_touched(self, done, arg);
    /* Under normal load replies come long before deadlines, so this scan runs about once per
     * timeout (its earliest deadline found answered, the next one noted), not every tick. */
    if (self->now >= self->next_due) {
        self->next_due = UINT64_MAX;
        for (size_t i = 0; i < ROUTER_SLOTS; i++) {
            slot_t *s = &self->slots[i];
            if (s->state == SLOT_FREE)
                continue;
            if (self->now >= s->deadline) {
                self->c.timeouts++;
                if (s->state == SLOT_QUEUED || s->state == SLOT_SENT)
                    self->conns[s->conn]->timeouts++;
                slot_fail(self, s, ROUTER_FAIL_TIMEOUT, done, arg);
                continue;
            }
            if (s->state == SLOT_PARKED && self->now >= s->retry_at)
                route(self, s, done, arg); /* may free s (scrape) or queue it */
            if (s->state != SLOT_FREE) {
                due(self, s->deadline);
                if (s->state == SLOT_PARKED)
                    due(self, s->retry_at);
            }
        }
    }
    publish(self, false);
}

static void router_destroy(void *opaque)
{
    router_t *self = opaque;
    if (!self)
        return;
    publish(self, true);
    for (uint16_t ci = 0; ci < CONNS_MAX; ci++) {
        if (self->conns[ci])
            conn_close(self, ci);
    }
    if (self->table)
        self->cfg.tables.release(self->cfg.tables.arg, &self->table);
    if (self->epfd >= 0)
        close(self->epfd);
    free(self);
}

static const backend_ops_t router_ops = {
    .submit = router_submit,
    .destroy = router_destroy,
    .fd = router_fd,
    .poll = router_poll,
    .flush = router_flush,
    .tick = router_tick,
    .tick_ms = ROUTER_TICK_MS,
};

int router_open(void *arg, unsigned worker, backend_t *out)
{
    const router_config_t *cfg = arg;
    (void)worker;
    if (!cfg || !cfg->zmq_ctx || !cfg->tables.current || !cfg->tables.release ||
        !cfg->tables.version)
        return -1;
    router_t *self = calloc(1, sizeof(*self));
    if (!self)
        return -1;
    self->cfg = *cfg;
    if (self->cfg.timeout_ms == 0)
        self->cfg.timeout_ms = ROUTER_TIMEOUT_MS;
    self->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (self->epfd < 0) {
        free(self);
        return -1;
    }
    for (size_t i = 0; i < ROUTER_SLOTS; i++)
        self->free_slots[i] = (uint16_t)(ROUTER_SLOTS - 1 - i);
    self->n_free = ROUTER_SLOTS;
    for (size_t i = 0; i < ROUTER_SCRAPES; i++)
        self->free_scrapes[i] = (uint16_t)(ROUTER_SCRAPES - 1 - i);
    self->n_free_scrapes = ROUTER_SCRAPES;
    for (uint32_t p = 0; p < PARTITION_COUNT; p++)
        self->part_conn[p] = NO_CONN;
    self->now = mono_coarse_ms();
    self->next_due = UINT64_MAX;
    sync_table(self, NULL, NULL); /* connect now, before clients come */
    out->ops = &router_ops;
    out->self = self;
    return 0;
}
