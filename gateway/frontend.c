/* SPDX-License-Identifier: MIT */
/* frontend: UDP and HTTP tracker servers over a backend.
 *
 * Each worker thread owns one epoll loop and everything it touches: its sockets (one UDP and one
 * TCP listener per address, all SO_REUSEPORT), its connection table, its connection-id checker,
 * its pending-request table and its backend. Workers share only the immutable configuration and
 * the stop eventfd, so the request path takes no lock of the front end's own.
 *
 * A request that needs the backend gets a pending slot (tag) holding how to answer it: the UDP
 * source address and transaction id, or the HTTP connection (index + generation, so an answer
 * for a connection closed meanwhile is dropped) and the request's number on it. The backend's
 * done() callback turns the reply into bytes: UDP replies are queued and sent in one sendmmsg;
 * HTTP replies are gathered per connection (wbuf) and written with one send per read or per
 * backend poll.
 *
 * HTTP pipelining: up to FE_ORDER_DEPTH requests of one connection are at the backend at once.
 * Invariant: answers leave in request order (fe_order.h). An answer whose turn has come is
 * written at once (always the case with an in-process backend, which answers during submit); one
 * that overtook an earlier answer waits in the connection's order store, allocated only then,
 * bounded together with the unsent backlog by CONN_BACKLOG_MAX. */
#include "frontend.h"

#include "bep15.h"
#include "fe_order.h"
#include "httpreq.h"
#include "httpresp.h"
#include "query.h"
#include "slog.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_ADDRS        8
#define UDP_BATCH        64
#define UDP_BUF          2048 /* larger datagrams are truncated and refused */
#define UDP_ROUNDS       8    /* recvmmsg batches per wake-up, so HTTP is not starved */
#define PENDING_MAX      4096 /* in-flight backend requests per worker; power of two */
#define PENDING_PROBES   16   /* slots pending_alloc looks at before it gives up */
#define ACCEPT_ROUNDS    64
#define EPOLL_EVENTS     128
#define WBUF_CAP         (64 * 1024)
#define CONN_BACKLOG_MAX (256 * 1024) /* unsent bytes a slow reader may hold before it is cut */
#define NO_CONN          UINT32_MAX

enum { EV_STOP = 0, EV_UDP = 1, EV_LISTEN = 2, EV_CONN = 3, EV_BACKEND = 4 };
enum { PEND_FREE = 0, PEND_UDP = 1, PEND_HTTP = 2 };

static inline uint64_t ev_data(uint32_t kind, uint32_t index)
{
    return ((uint64_t)kind << 32) | index;
}

typedef struct {
    struct sockaddr_storage addr;
    socklen_t len;
    bool udp;
} listen_addr_t;

typedef struct {
    int fd;
    uint32_t gen;
    bool open;
    bool closing;    /* read no further request; close once every answer is out */
    bool eof;        /* the client shut its side: answer what it sent, then close */
    bool want_write; /* EPOLLOUT armed, EPOLLIN off: the client is not reading */
    bool dirty;      /* on the worker's settle list (next_dirty) */
    uint32_t events; /* armed in epoll */
    uint32_t next_dirty;
    endpoint_t peer;
    uint32_t last_active;
    char *in; /* http_max_request bytes, kept across connections of this slot */
    uint32_t in_len;
    char *out; /* unsent backlog, allocated only when the socket would block */
    size_t out_len, out_off;
    fe_order_t order; /* request numbers, and answers waiting for an earlier one */
} conn_t;

typedef struct {
    uint8_t transport;
    uint8_t kind;
    uint8_t family;
    bool compact;
    bool keep_alive;
    uint32_t tid;
    int fd;
    socklen_t addr_len;
    union {
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } addr;
    uint32_t conn;
    uint32_t conn_gen;
    uint32_t seq; /* HTTP: the request's number on its connection */
} pending_t;

/* Per-worker counters, written by the worker only; published once a second. */
enum {
    C_UDP_CONNECT,
    C_UDP_ANNOUNCE,
    C_UDP_SCRAPE,
    C_UDP_ERRORS,
    C_UDP_DROPPED,
    C_HTTP_ANNOUNCE,
    C_HTTP_SCRAPE,
    C_HTTP_ERRORS,
    C_HTTP_ACCEPTED,
    C_HTTP_REFUSED,
    C_COUNT
};

typedef struct worker {
    struct frontend *fe;
    unsigned index;
    pthread_t thread;
    bool started;
    int epfd;
    int udp_fds[MAX_ADDRS];
    int tcp_fds[MAX_ADDRS];
    connid_t *connid;
    backend_t backend;
    bool has_backend;
    uint64_t rng;
    uint32_t now_mono;
    uint64_t now_wall;

    /* UDP batch state. */
    struct mmsghdr in_msgs[UDP_BATCH];
    struct iovec in_iov[UDP_BATCH];
    struct sockaddr_in6 in_addr[UDP_BATCH];
    uint8_t in_buf[UDP_BATCH][UDP_BUF];
    announce_t in_announce[UDP_BATCH];
    struct mmsghdr out_msgs[UDP_BATCH];
    struct iovec out_iov[UDP_BATCH];
    uint8_t out_buf[UDP_BATCH][BEP15_MAX_REPLY];
    size_t n_out;
    int out_fd;

    pending_t pending[PENDING_MAX];
    uint32_t pending_next;

    /* HTTP state. */
    conn_t *conns;
    uint32_t *free_conns; /* stack of free slot indices */
    uint32_t n_free;
    uint32_t max_conns; /* table size; the process-wide limit is fe->open_conns */
    int spare_fd;       /* given up to accept-and-close when out of descriptors */
    uint32_t last_fd_warning;
    conn_t *processing;  /* connection whose input is being parsed: its answers are not late */
    conn_t *batch_conn;  /* connection whose responses wbuf is gathering */
    uint32_t dirty_head; /* connections that got late answers, to settle after the poll */
    size_t wlen;
    char wbuf[WBUF_CAP];
    char scratch[HTTPRESP_MAX];

    uint64_t c[C_COUNT];
    _Atomic uint64_t published[C_COUNT]; /* c, copied out once a second for frontend_stats */
} worker_t;

struct frontend {
    frontend_config_t cfg;
    listen_addr_t addrs[2 * MAX_ADDRS];
    size_t n_addrs;
    int stop_fd;
    _Atomic uint32_t open_conns; /* HTTP connections over all workers, for http_max_conns */
    worker_t **workers;
    unsigned n_workers;
};

/* ---- small helpers ---------------------------------------------------------------------- */

static uint64_t next_rand(uint64_t *s)
{
    /* xorshift64*: cheap and good enough for jitter. */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static uint32_t jittered_interval(worker_t *w)
{
    uint32_t base = w->fe->cfg.interval;
    uint32_t j = base / 20;
    if (j == 0)
        return base;
    return base - j + (uint32_t)(next_rand(&w->rng) % (2 * j + 1));
}

static void update_clocks(worker_t *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    w->now_mono = (uint32_t)ts.tv_sec;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    w->now_wall = (uint64_t)ts.tv_sec;
}

static void sockaddr_to_endpoint(const struct sockaddr *sa, endpoint_t *ep)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
        memset(ep->addr, 0, sizeof(ep->addr));
        memcpy(ep->addr, &sin->sin_addr, 4);
        ep->family = 4;
        ep->port = ntohs(sin->sin_port);
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
        announce_endpoint_from16(ep, sin6->sin6_addr.s6_addr);
        ep->port = ntohs(sin6->sin6_port);
    }
}

static uint32_t cap_numwant(const frontend_config_t *cfg, int32_t asked, uint32_t hard_cap)
{
    uint32_t n = asked < 0 ? cfg->numwant_default : (uint32_t)asked;
    if (n > cfg->numwant_max)
        n = cfg->numwant_max;
    return n > hard_cap ? hard_cap : n;
}

/* A pending slot for a new backend request, or NULL if the next PENDING_PROBES are in flight.
 * An in-process backend frees every slot before the next request, so the first probe finds one;
 * with a backend that answers later, long-held slots (a node that stopped answering) are
 * stepped over instead of refusing requests for the healthy ones. */
static pending_t *pending_alloc(worker_t *w, uint32_t *tag)
{
    for (int probe = 0; probe < PENDING_PROBES; probe++) {
        uint32_t t = w->pending_next++ & (PENDING_MAX - 1);
        pending_t *p = &w->pending[t];
        if (p->transport == PEND_FREE) {
            *tag = t;
            return p;
        }
    }
    return NULL;
}

/* ---- UDP ---------------------------------------------------------------------------------- */

static void udp_flush(worker_t *w)
{
    size_t sent = 0;
    /* Bounded: each round sends at least one message or gives up. */
    while (sent < w->n_out) {
        int r = sendmmsg(w->out_fd, w->out_msgs + sent, (unsigned)(w->n_out - sent), MSG_DONTWAIT);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            /* The socket buffer is full or the destination is unreachable: UDP clients
             * retry, so the rest of the batch is dropped rather than waited for. */
            w->c[C_UDP_DROPPED] += w->n_out - sent;
            break;
        }
        sent += (size_t)r;
    }
    w->n_out = 0;
}

/* The next reply buffer toward addr on fd; flushes first if the batch is full or the socket
 * changes. */
static uint8_t *udp_slot(worker_t *w, int fd, const void *addr, socklen_t addr_len)
{
    if (w->n_out == UDP_BATCH || (w->n_out > 0 && w->out_fd != fd))
        udp_flush(w);
    w->out_fd = fd;
    struct msghdr *h = &w->out_msgs[w->n_out].msg_hdr;
    h->msg_name = (void *)addr;
    h->msg_namelen = addr_len;
    return w->out_buf[w->n_out];
}

static void udp_commit(worker_t *w, size_t len)
{
    if (len == 0)
        return;
    w->out_iov[w->n_out].iov_len = len;
    w->n_out++;
}

static void udp_error(worker_t *w, int fd, const void *addr, socklen_t addr_len, uint32_t tid,
                      const char *msg)
{
    uint8_t *out = udp_slot(w, fd, addr, addr_len);
    udp_commit(w, bep15_write_error(out, BEP15_MAX_REPLY, tid, msg));
    w->c[C_UDP_ERRORS]++;
}

static void udp_answer(worker_t *w, pending_t *p, const backend_reply_t *r)
{
    uint8_t *out = udp_slot(w, p->fd, &p->addr, p->addr_len);
    if (r->failure) {
        udp_commit(w, bep15_write_error(out, BEP15_MAX_REPLY, p->tid, r->failure));
        w->c[C_UDP_ERRORS]++;
        return;
    }
    if (p->kind == BACKEND_SCRAPE) {
        udp_commit(w, bep15_write_scrape(out, BEP15_MAX_REPLY, p->tid, r->scrape, r->n_scrape));
        return;
    }
    bep15_announce_reply_t a = {.transaction_id = p->tid,
                                .interval = jittered_interval(w),
                                .stats = r->stats,
                                .family = p->family,
                                .peers = r->peers,
                                .n_peers = r->n_peers};
    udp_commit(w, bep15_write_announce(out, BEP15_MAX_REPLY, &a));
}

static void udp_packet(worker_t *w, int fd, unsigned i, backend_req_t *reqs, size_t *n_reqs)
{
    const struct mmsghdr *m = &w->in_msgs[i];
    const void *addr = &w->in_addr[i];
    socklen_t addr_len = m->msg_hdr.msg_namelen;
    const uint8_t *pkt = w->in_buf[i];
    size_t len = m->msg_len;
    endpoint_t src;
    uint8_t addr16[16];
    sockaddr_to_endpoint(addr, &src);
    announce_endpoint_to16(&src, addr16);

    bep15_request_t req;
    bep15_err_t err = bep15_parse(pkt, len, &req);
    if (err == BEP15_OK && (m->msg_hdr.msg_flags & MSG_TRUNC))
        err = BEP15_ERR_LENGTH;
    if (err == BEP15_ERR_SHORT) {
        w->c[C_UDP_DROPPED]++;
        return;
    }
    if (err != BEP15_OK) {
        udp_error(w, fd, addr, addr_len, req.transaction_id, bep15_strerror(err));
        return;
    }
    if (req.action == BEP15_CONNECT) {
        uint8_t *out = udp_slot(w, fd, addr, addr_len);
        uint64_t id = connid_issue(w->connid, addr16, w->now_wall);
        udp_commit(w, bep15_write_connect(out, BEP15_MAX_REPLY, req.transaction_id, id));
        w->c[C_UDP_CONNECT]++;
        return;
    }
    if (!connid_check(w->connid, req.connection_id, addr16, w->now_wall)) {
        udp_error(w, fd, addr, addr_len, req.transaction_id, "invalid connection id");
        return;
    }
    uint32_t tag;
    pending_t *p = pending_alloc(w, &tag);
    if (!p) {
        w->c[C_UDP_DROPPED]++;
        return;
    }
    p->transport = PEND_UDP;
    p->family = src.family;
    p->tid = req.transaction_id;
    p->fd = fd;
    p->addr_len = addr_len;
    memcpy(&p->addr, addr, addr_len < sizeof(p->addr) ? addr_len : sizeof(p->addr));
    backend_req_t *b = &reqs[(*n_reqs)++];
    b->tag = tag;
    if (req.action == BEP15_ANNOUNCE) {
        announce_t *a = &w->in_announce[i];
        *a = req.announce;
        a->peer.family = src.family;
        memcpy(a->peer.addr, src.addr, sizeof(a->peer.addr));
        p->kind = BACKEND_ANNOUNCE;
        b->kind = BACKEND_ANNOUNCE;
        b->announce = a;
        b->numwant = cap_numwant(&w->fe->cfg, a->numwant,
                                 src.family == 4 ? SHOAL_UDP_PEERS4 : SHOAL_UDP_PEERS6);
        b->hashes = NULL;
        b->n_hashes = 0;
        w->c[C_UDP_ANNOUNCE]++;
    } else {
        p->kind = BACKEND_SCRAPE;
        b->kind = BACKEND_SCRAPE;
        b->announce = NULL;
        b->numwant = 0;
        b->hashes = req.scrape.hashes;
        b->n_hashes = req.scrape.n;
        w->c[C_UDP_SCRAPE]++;
    }
}

static void on_done(void *arg, uint32_t tag, const backend_reply_t *reply);

static void udp_readable(worker_t *w, int fd)
{
    backend_req_t reqs[UDP_BATCH];
    for (int round = 0; round < UDP_ROUNDS; round++) {
        for (unsigned i = 0; i < UDP_BATCH; i++) {
            w->in_msgs[i].msg_hdr.msg_namelen = sizeof(w->in_addr[i]);
            w->in_msgs[i].msg_hdr.msg_flags = 0;
        }
        int n = recvmmsg(fd, w->in_msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
        if (n <= 0)
            return;
        update_clocks(w);
        size_t n_reqs = 0;
        for (unsigned i = 0; i < (unsigned)n; i++)
            udp_packet(w, fd, i, reqs, &n_reqs);
        if (n_reqs > 0)
            w->backend.ops->submit(w->backend.self, reqs, n_reqs, on_done, w);
        udp_flush(w);
        if (n < UDP_BATCH)
            return;
    }
}

/* ---- HTTP --------------------------------------------------------------------------------- */

static void conn_close(worker_t *w, conn_t *c)
{
    if (!c->open)
        return;
    close(c->fd); /* also removes it from the epoll set */
    atomic_fetch_sub_explicit(&w->fe->open_conns, 1, memory_order_relaxed);
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    fe_order_clear(&c->order);
    if (w->batch_conn == c) {
        w->batch_conn = NULL;
        w->wlen = 0;
    }
    c->open = false;
    c->gen++; /* answers still at the backend are dropped */
    c->in_len = 0;
    /* c->dirty stays: the slot may be on the settle list, which checks c->open. */
    w->free_conns[w->n_free++] = (uint32_t)(c - w->conns);
}

/* Arm the events the connection's state asks for; one epoll_ctl only when they change. Reading
 * stops while a backlog is unsent (the client is not reading), once no further request will be
 * served (closing, end of input), and while the input buffer is full of requests waiting for a
 * free place in the pipeline window. */
static void conn_update_events(worker_t *w, conn_t *c)
{
    uint32_t want = EPOLLIN;
    if (c->want_write)
        want = EPOLLOUT;
    else if (c->closing || c->eof || c->in_len == w->fe->cfg.http_max_request)
        want = 0;
    if (want == c->events)
        return;
    c->events = want;
    struct epoll_event ev = {.events = want,
                             .data.u64 = ev_data(EV_CONN, (uint32_t)(c - w->conns))};
    epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Queue bytes the socket would not take; the client must read them before we read more. */
static void conn_backlog(worker_t *w, conn_t *c, const char *data, size_t len)
{
    size_t pending = c->out_len - c->out_off;
    if (pending + fe_order_held(&c->order) + len > CONN_BACKLOG_MAX) {
        conn_close(w, c);
        return;
    }
    char *buf = malloc(pending + len);
    if (!buf) {
        conn_close(w, c);
        return;
    }
    if (pending)
        memcpy(buf, c->out + c->out_off, pending);
    memcpy(buf + pending, data, len);
    free(c->out);
    c->out = buf;
    c->out_len = pending + len;
    c->out_off = 0;
    if (!c->want_write) {
        c->want_write = true;
        conn_update_events(w, c);
    }
}

static void conn_write(worker_t *w, conn_t *c, const char *data, size_t len)
{
    if (!c->open || len == 0)
        return;
    if (c->out_len > c->out_off) {
        conn_backlog(w, c, data, len);
        return;
    }
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            conn_close(w, c);
            return;
        }
        n = 0;
    }
    if ((size_t)n < len)
        conn_backlog(w, c, data + n, len - (size_t)n);
}

/* Write what wbuf gathered for w->batch_conn. */
static void wbuf_flush(worker_t *w)
{
    conn_t *c = w->batch_conn;
    size_t len = w->wlen;
    w->batch_conn = NULL;
    w->wlen = 0;
    if (c && len > 0)
        conn_write(w, c, w->wbuf, len);
}

/* Send response bytes: gathered in wbuf, one connection at a time, so the responses a
 * connection gets from one read or one backend poll leave with one send. Switching to another
 * connection writes the previous one's first. data may live in c's order store: nothing here
 * frees it unless c is closed, which the caller checks. */
static void conn_respond(worker_t *w, conn_t *c, const char *data, size_t len)
{
    if (c != w->batch_conn || w->wlen + len > WBUF_CAP) {
        wbuf_flush(w);
        if (!c->open)
            return;
        if (len > WBUF_CAP) {
            conn_write(w, c, data, len);
            return;
        }
        w->batch_conn = c;
    }
    memcpy(w->wbuf + w->wlen, data, len);
    w->wlen += len;
}

/* Write an answer whose turn has come. One that ends the connection (Connection: close, or an
 * error that closes) stops reading. */
static void conn_emit(worker_t *w, conn_t *c, const char *data, size_t len, bool last)
{
    if (last)
        c->closing = true;
    conn_respond(w, c, data, len);
}

/* The answer to request seq of c: written now if every earlier one is out, held otherwise
 * (bounded together with the unsent backlog by CONN_BACKLOG_MAX). */
static void http_put(worker_t *w, conn_t *c, uint32_t seq, const char *data, size_t len, bool last)
{
    size_t room = CONN_BACKLOG_MAX - (c->out_len - c->out_off);
    switch (fe_order_put(&c->order, seq, data, len, last, room)) {
    case FE_ORDER_NOW:
        conn_emit(w, c, data, len, last);
        break;
    case FE_ORDER_HELD:
    case FE_ORDER_DROP:
        return;
    case FE_ORDER_FULL:
    case FE_ORDER_NOMEM:
        conn_close(w, c);
        return;
    }
    /* Held answers now next in line; their bytes live in the store until the next fe_order_
     * call, and conn_emit copies them (wbuf or backlog) or closes c, which clears the store. */
    const char *held;
    size_t n;
    while (c->open && c->order.store && fe_order_next(&c->order, &held, &n, &last))
        conn_emit(w, c, held, n, last);
}

static void http_answer_now(worker_t *w, conn_t *c, const pending_t *p, const backend_reply_t *r);

static void http_status(worker_t *w, conn_t *c, uint32_t seq, int status, const char *body,
                        bool keep_alive)
{
    size_t n = httpresp_status(w->scratch, sizeof(w->scratch), status, body, keep_alive);
    w->c[C_HTTP_ERRORS]++;
    http_put(w, c, seq, w->scratch, n, !keep_alive);
}

static void http_failure(worker_t *w, conn_t *c, uint32_t seq, const char *reason,
                         uint32_t retry_in, bool keep_alive)
{
    size_t n = httpresp_failure(w->scratch, sizeof(w->scratch), reason, retry_in, keep_alive);
    if (n == 0) {
        http_status(w, c, seq, 500, "response too large", false);
        return;
    }
    w->c[C_HTTP_ERRORS]++;
    http_put(w, c, seq, w->scratch, n, !keep_alive);
}

/* Push c on the list of connections to settle once the backend's answers are handled. */
static void conn_mark(worker_t *w, conn_t *c)
{
    if (c->dirty)
        return;
    c->dirty = true;
    c->next_dirty = w->dirty_head;
    w->dirty_head = (uint32_t)(c - w->conns);
}

static void http_answer(worker_t *w, pending_t *p, const backend_reply_t *r)
{
    conn_t *c = &w->conns[p->conn];
    if (!c->open || c->gen != p->conn_gen)
        return; /* the client went away meanwhile */
    http_answer_now(w, c, p, r);
    /* A late answer frees a place in the pipeline window: serve what the client pipelined
     * meanwhile, after this poll's answers have been gathered (conns_settle). */
    if (c != w->processing && c->open)
        conn_mark(w, c);
}

static void http_answer_now(worker_t *w, conn_t *c, const pending_t *p, const backend_reply_t *r)
{
    if (r->failure) {
        http_failure(w, c, p->seq, r->failure, r->retry_in, p->keep_alive);
        return;
    }
    size_t n;
    if (p->kind == BACKEND_SCRAPE) {
        n = httpresp_scrape(w->scratch, sizeof(w->scratch),
                            (const uint8_t(*)[SHOAL_HASH_LEN])r->hashes, r->scrape, r->n_scrape,
                            p->keep_alive);
    } else {
        httpresp_announce_t a = {
            .interval = jittered_interval(w),
            .min_interval = w->fe->cfg.min_interval,
            .stats = r->stats,
            .peers = r->peers,
            .n_peers = r->n_peers,
            .family = p->family,
            .compact = p->compact,
            .keep_alive = p->keep_alive,
        };
        n = httpresp_announce(w->scratch, sizeof(w->scratch), &a);
    }
    if (n == 0) {
        http_status(w, c, p->seq, 500, "response too large", false);
        return;
    }
    http_put(w, c, p->seq, w->scratch, n, !p->keep_alive);
}

/* The client's address: the socket's peer, or what a trusted proxy says it is. */
static int http_client(worker_t *w, const conn_t *c, const httpreq_t *req, endpoint_t *ep)
{
    *ep = c->peer;
    const netaddr_list_t *trusted = &w->fe->cfg.trusted_proxies;
    if (!req->forwarded_for || trusted->n == 0 || !netaddr_list_contains(trusted, &c->peer))
        return 0;
    return netaddr_forwarded_client(req->forwarded_for, req->forwarded_for_len, trusted, ep);
}

static bool path_is(const httpreq_t *req, const char *path)
{
    size_t n = strlen(path);
    return req->path_len == n && memcmp(req->path, path, n) == 0;
}

/* Serve request seq of c: answered at once, or handed to the backend. */
static void http_request(worker_t *w, conn_t *c, uint32_t seq, const httpreq_t *req)
{
    bool announce = path_is(req, "/announce");
    if (!announce && !path_is(req, "/scrape")) {
        http_status(w, c, seq, 404, "not found: this tracker serves /announce and /scrape",
                    req->keep_alive);
        return;
    }
    endpoint_t client;
    if (http_client(w, c, req, &client) != 0) {
        http_failure(w, c, seq, "invalid X-Forwarded-For or X-Real-IP from proxy", 0,
                     req->keep_alive);
        return;
    }
    uint32_t tag;
    backend_req_t b = {0};
    if (announce) {
        query_announce_t q;
        query_err_t err = query_parse_announce(req->query, req->query_len, &q);
        if (err != QUERY_OK) {
            http_failure(w, c, seq, query_strerror(err), 0, req->keep_alive);
            return;
        }
        q.announce.peer.family = client.family;
        memcpy(q.announce.peer.addr, client.addr, sizeof(client.addr));
        pending_t *p = pending_alloc(w, &tag);
        if (!p) {
            http_failure(w, c, seq, "tracker busy, retry later", 1, req->keep_alive);
            return;
        }
        *p = (pending_t){.transport = PEND_HTTP,
                         .kind = BACKEND_ANNOUNCE,
                         .family = client.family,
                         .compact = q.compact,
                         .keep_alive = req->keep_alive,
                         .conn = (uint32_t)(c - w->conns),
                         .conn_gen = c->gen,
                         .seq = seq};
        b.kind = BACKEND_ANNOUNCE;
        b.tag = tag;
        b.announce = &q.announce;
        b.numwant = cap_numwant(&w->fe->cfg, q.announce.numwant, SHOAL_NUMWANT_MAX);
        w->c[C_HTTP_ANNOUNCE]++;
        w->backend.ops->submit(w->backend.self, &b, 1, on_done, w);
        return;
    }
    uint8_t hashes[SHOAL_SCRAPE_MAX][SHOAL_HASH_LEN];
    size_t n = 0;
    query_err_t err =
        query_parse_scrape(req->query, req->query_len, hashes, w->fe->cfg.scrape_max, &n);
    if (err != QUERY_OK) {
        http_failure(w, c, seq, query_strerror(err), 0, req->keep_alive);
        return;
    }
    if (n == 0) {
        http_failure(w, c, seq, "full scrape is not supported: give one or more info_hash", 0,
                     req->keep_alive);
        return;
    }
    pending_t *p = pending_alloc(w, &tag);
    if (!p) {
        http_failure(w, c, seq, "tracker busy, retry later", 1, req->keep_alive);
        return;
    }
    *p = (pending_t){.transport = PEND_HTTP,
                     .kind = BACKEND_SCRAPE,
                     .family = client.family,
                     .keep_alive = req->keep_alive,
                     .conn = (uint32_t)(c - w->conns),
                     .conn_gen = c->gen,
                     .seq = seq};
    b.kind = BACKEND_SCRAPE;
    b.tag = tag;
    b.hashes = &hashes[0][0];
    b.n_hashes = n;
    w->c[C_HTTP_SCRAPE]++;
    w->backend.ops->submit(w->backend.self, &b, 1, on_done, w);
}

/* Serve every complete request in the connection's buffer while the pipeline window has room
 * (an in-process backend answers each at once, so its window never fills), write the gathered
 * responses with one send, then close the connection if it is done, or arm its events. */
static void conn_process(worker_t *w, conn_t *c)
{
    size_t off = 0;
    uint32_t max_head = w->fe->cfg.http_max_request;
    w->processing = c;
    while (off < c->in_len && !c->closing && c->open && !fe_order_full(&c->order)) {
        httpreq_t req;
        httpreq_err_t err = httpreq_parse(c->in + off, c->in_len - off, max_head, &req);
        if (err == HTTPREQ_INCOMPLETE)
            break;
        if (err != HTTPREQ_OK) {
            c->closing = true;
            http_status(w, c, fe_order_take(&c->order), httpreq_status(err), httpreq_strerror(err),
                        false);
            break;
        }
        if (!req.keep_alive)
            c->closing = true;
        http_request(w, c, fe_order_take(&c->order), &req);
        off += req.head_len;
    }
    w->processing = NULL;
    if (!c->open)
        return;
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= (uint32_t)off;
    }
    /* The client has shut its side: once nothing complete is left to read, the requests it
     * sent are all that will be answered. */
    if (c->eof && !fe_order_full(&c->order))
        c->closing = true;
    if (w->batch_conn == c)
        wbuf_flush(w);
    if (!c->open || c->want_write)
        return; /* conn_writable goes on once the client has read the backlog */
    if (c->order.finished || (c->closing && fe_order_in_flight(&c->order) == 0)) {
        conn_close(w, c);
        return;
    }
    conn_update_events(w, c);
}

/* Write what late answers gathered, then go on with each connection they came for: serve
 * requests that waited for the pipeline window, or close it once its last answer is out. */
static void conns_settle(worker_t *w)
{
    wbuf_flush(w);
    while (w->dirty_head != NO_CONN) {
        conn_t *c = &w->conns[w->dirty_head];
        w->dirty_head = c->next_dirty;
        c->dirty = false;
        if (c->open && !c->want_write)
            conn_process(w, c);
    }
}

static void conn_readable(worker_t *w, conn_t *c)
{
    uint32_t cap = w->fe->cfg.http_max_request;
    if (c->in_len == cap) {
        conn_update_events(w, c); /* full of requests waiting for the window: pause */
        return;
    }
    ssize_t n = recv(c->fd, c->in + c->in_len, cap - c->in_len, 0);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        conn_close(w, c);
        return;
    }
    if (n < 0)
        return;
    if (n == 0) {
        if (fe_order_in_flight(&c->order) == 0) {
            conn_close(w, c);
            return;
        }
        c->eof = true; /* answer what is at the backend, then close */
    }
    c->in_len += (uint32_t)n;
    c->last_active = w->now_mono;
    conn_process(w, c);
}

static void conn_writable(worker_t *w, conn_t *c)
{
    size_t left = c->out_len - c->out_off;
    ssize_t n = send(c->fd, c->out + c->out_off, left, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            conn_close(w, c);
        return;
    }
    c->last_active = w->now_mono;
    c->out_off += (size_t)n;
    if (c->out_off < c->out_len)
        return;
    free(c->out);
    c->out = NULL;
    c->out_len = c->out_off = 0;
    c->want_write = false;
    conn_process(w, c); /* requests that arrived while we waited; closes if done */
}

/* Out of file descriptors: the pending connection would keep the listener readable and the
 * loop spinning, so it is accepted with the spare descriptor and closed at once. */
static void refuse_without_fd(worker_t *w, int lfd)
{
    int err = errno;
    if (w->spare_fd >= 0) {
        close(w->spare_fd);
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            close(fd);
        w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    w->c[C_HTTP_REFUSED]++;
    if (w->now_mono != w->last_fd_warning) {
        w->last_fd_warning = w->now_mono;
        slog_msg(SLOG_WARN, "worker %u: accept: %s: refusing HTTP connections (raise ulimit -n)",
                 w->index, strerror(err));
    }
}

static void tcp_acceptable(worker_t *w, int lfd)
{
    frontend_t *fe = w->fe;
    for (int i = 0; i < ACCEPT_ROUNDS; i++) {
        struct sockaddr_in6 sa;
        socklen_t len = sizeof(sa);
        int fd = accept4(lfd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                refuse_without_fd(w, lfd);
                continue;
            }
            if (errno == ECONNABORTED || errno == EINTR)
                continue;
            return;
        }
        uint32_t open_now = atomic_fetch_add_explicit(&fe->open_conns, 1, memory_order_relaxed);
        if (open_now >= fe->cfg.http_max_conns || w->n_free == 0) {
            atomic_fetch_sub_explicit(&fe->open_conns, 1, memory_order_relaxed);
            w->c[C_HTTP_REFUSED]++;
            close(fd);
            continue;
        }
        conn_t *c = &w->conns[w->free_conns[--w->n_free]];
        if (!c->in)
            c->in = malloc(w->fe->cfg.http_max_request);
        if (!c->in) {
            w->free_conns[w->n_free++] = (uint32_t)(c - w->conns);
            atomic_fetch_sub_explicit(&fe->open_conns, 1, memory_order_relaxed);
            w->c[C_HTTP_REFUSED]++;
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->open = true;
        c->closing = c->eof = false;
        c->want_write = false;
        c->events = EPOLLIN;
        fe_order_init(&c->order);
        c->in_len = 0;
        c->last_active = w->now_mono;
        sockaddr_to_endpoint((struct sockaddr *)&sa, &c->peer);
        struct epoll_event ev = {.events = EPOLLIN,
                                 .data.u64 = ev_data(EV_CONN, (uint32_t)(c - w->conns))};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            conn_close(w, c);
            continue;
        }
        w->c[C_HTTP_ACCEPTED]++;
        /* The request usually follows the handshake at once: read it now rather than after
         * another trip through epoll (a connection per request, as opentracker forces on its
         * clients, then costs one wake-up instead of two). */
        conn_readable(w, c);
    }
}

static void conns_sweep_idle(worker_t *w)
{
    uint32_t idle = w->fe->cfg.http_idle_timeout;
    for (uint32_t i = 0; i < w->max_conns; i++) {
        conn_t *c = &w->conns[i];
        if (c->open && w->now_mono - c->last_active >= idle)
            conn_close(w, c);
    }
}

/* ---- completion and the loop -------------------------------------------------------------- */

static void on_done(void *arg, uint32_t tag, const backend_reply_t *reply)
{
    worker_t *w = arg;
    pending_t *p = &w->pending[tag & (PENDING_MAX - 1)];
    if (p->transport == PEND_UDP)
        udp_answer(w, p, reply);
    else if (p->transport == PEND_HTTP)
        http_answer(w, p, reply);
    p->transport = PEND_FREE;
}

static void publish_counters(worker_t *w)
{
    const uint64_t *src = &w->c[C_UDP_CONNECT];
    for (size_t i = 0; i < 10; i++)
        atomic_store_explicit(&w->published[i], src[i], memory_order_relaxed);
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    struct epoll_event events[EPOLL_EVENTS];
    update_clocks(w);
    uint32_t last_sweep = w->now_mono;
    const backend_ops_t *ops = w->backend.ops;
    int timeout = ops->tick && ops->tick_ms ? (int)ops->tick_ms : 1000;
    for (;;) {
        int n = epoll_wait(w->epfd, events, EPOLL_EVENTS, timeout);
        if (n < 0 && errno != EINTR) {
            slog_msg(SLOG_ERROR, "worker %u: epoll_wait: %s", w->index, strerror(errno));
            break;
        }
        update_clocks(w);
        bool stop = false;
        for (int i = 0; i < n; i++) {
            uint32_t kind = (uint32_t)(events[i].data.u64 >> 32);
            uint32_t idx = (uint32_t)events[i].data.u64;
            switch (kind) {
            case EV_STOP:
                stop = true;
                break;
            case EV_UDP:
                udp_readable(w, w->udp_fds[idx]);
                break;
            case EV_LISTEN:
                tcp_acceptable(w, w->tcp_fds[idx]);
                break;
            case EV_BACKEND:
                ops->poll(w->backend.self, on_done, w);
                udp_flush(w);
                conns_settle(w);
                break;
            case EV_CONN: {
                conn_t *c = &w->conns[idx];
                if (!c->open)
                    break;
                if (events[i].events & (EPOLLERR | EPOLLHUP)) {
                    conn_close(w, c);
                } else if (c->want_write) {
                    conn_writable(w, c);
                } else {
                    conn_readable(w, c);
                }
                break;
            }
            }
        }
        if (stop)
            break;
        if (ops->flush) {
            ops->flush(w->backend.self);
            /* Sending may have made replies ready without the descriptor changing. */
            if (ops->poll)
                ops->poll(w->backend.self, on_done, w);
        }
        if (ops->tick)
            ops->tick(w->backend.self, on_done, w);
        udp_flush(w);
        conns_settle(w);
        if (w->now_mono != last_sweep) {
            last_sweep = w->now_mono;
            conns_sweep_idle(w);
            publish_counters(w);
        }
    }
    publish_counters(w);
    return NULL;
}

/* ---- setup -------------------------------------------------------------------------------- */

static int parse_addr_list(frontend_t *fe, const char *text, bool udp, char *err, size_t errlen)
{
    if (!text || !strcmp(text, "off") || !*text)
        return 0;
    const char *p = text;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char one[96];
        if (len >= sizeof(one)) {
            snprintf(err, errlen, "listen address too long: %.*s", (int)len, p);
            return -1;
        }
        memcpy(one, p, len);
        one[len] = '\0';
        if (len > 0) {
            size_t same = 0;
            for (size_t i = 0; i < fe->n_addrs; i++)
                same += fe->addrs[i].udp == udp;
            if (same == MAX_ADDRS) {
                snprintf(err, errlen, "too many listen addresses (max %d per protocol)", MAX_ADDRS);
                return -1;
            }
            listen_addr_t *a = &fe->addrs[fe->n_addrs];
            char why[160];
            if (netaddr_parse_listen(one, &a->addr, &a->len, why, sizeof(why)) != 0) {
                snprintf(err, errlen, "--%s %s", udp ? "udp" : "http", why);
                return -1;
            }
            a->udp = udp;
            fe->n_addrs++;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

int frontend_check_listen(const char *udp, const char *http, char *err, size_t errlen)
{
    frontend_t probe;
    memset(&probe, 0, sizeof(probe));
    if (parse_addr_list(&probe, udp, true, err, errlen) != 0 ||
        parse_addr_list(&probe, http, false, err, errlen) != 0)
        return -1;
    if (probe.n_addrs == 0) {
        snprintf(err, errlen, "both --udp and --http are off: nothing to serve");
        return -1;
    }
    return 0;
}

static int open_socket(listen_addr_t *a, char *err, size_t errlen)
{
    int type = (a->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
    int fd = socket(a->addr.ss_family, type, 0);
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->addr;
    if (fd < 0 && errno == EAFNOSUPPORT && a->addr.ss_family == AF_INET6 &&
        IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr)) {
        /* No IPv6 on this host: the any-address default falls back to IPv4. */
        uint16_t port = sin6->sin6_port;
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->addr;
        memset(&a->addr, 0, sizeof(a->addr));
        sin->sin_family = AF_INET;
        sin->sin_port = port;
        a->len = sizeof(*sin);
        fd = socket(AF_INET, type, 0);
    }
    char name[80];
    netaddr_format((struct sockaddr *)&a->addr, name, sizeof(name));
    if (fd < 0) {
        snprintf(err, errlen, "%s %s: socket: %s", a->udp ? "udp" : "http", name, strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        snprintf(err, errlen, "%s %s: SO_REUSEPORT: %s", a->udp ? "udp" : "http", name,
                 strerror(errno));
        close(fd);
        return -1;
    }
    if (a->addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (a->udp) {
        int size = 4 * 1024 * 1024; /* capped by net.core.rmem_max; best effort */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }
    if (bind(fd, (struct sockaddr *)&a->addr, a->len) != 0) {
        snprintf(err, errlen, "%s %s: bind: %s", a->udp ? "udp" : "http", name, strerror(errno));
        close(fd);
        return -1;
    }
    if (!a->udp && listen(fd, 1024) != 0) {
        snprintf(err, errlen, "http %s: listen: %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* SO_REUSEPORT lets any socket of the same user join a port, so a second tracker started by
 * mistake would silently take half the traffic. One bind without it first tells whether anybody
 * holds the address. */
static int probe_free(const listen_addr_t *a, char *err, size_t errlen)
{
    int fd = socket(a->addr.ss_family, (a->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0; /* open_socket reports it, with the IPv4 fallback applied */
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (a->addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    int rc = bind(fd, (const struct sockaddr *)&a->addr, a->len);
    int e = errno;
    close(fd);
    if (rc != 0 && e == EADDRINUSE) {
        char name[80];
        netaddr_format((const struct sockaddr *)&a->addr, name, sizeof(name));
        snprintf(err, errlen, "%s %s: address already in use (is another tracker running?)",
                 a->udp ? "udp" : "http", name);
        return -1;
    }
    return 0;
}

static int epoll_add(int epfd, int fd, uint32_t kind, uint32_t index)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = ev_data(kind, index)};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static worker_t *worker_new(frontend_t *fe, unsigned index, char *err, size_t errlen)
{
    worker_t *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->fe = fe;
    w->index = index;
    w->epfd = -1;
    w->spare_fd = -1;
    w->dirty_head = NO_CONN;
    for (size_t i = 0; i < MAX_ADDRS; i++)
        w->udp_fds[i] = w->tcp_fds[i] = -1;
    w->rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)index + 1) * 0xBF58476D1CE4E5B9ULL ^
             (uint64_t)time(NULL);
    for (unsigned i = 0; i < UDP_BATCH; i++) {
        w->in_iov[i] = (struct iovec){.iov_base = w->in_buf[i], .iov_len = UDP_BUF};
        w->in_msgs[i].msg_hdr = (struct msghdr){.msg_name = &w->in_addr[i],
                                                .msg_namelen = sizeof(w->in_addr[i]),
                                                .msg_iov = &w->in_iov[i],
                                                .msg_iovlen = 1};
        w->out_iov[i] = (struct iovec){.iov_base = w->out_buf[i], .iov_len = 0};
        w->out_msgs[i].msg_hdr = (struct msghdr){.msg_iov = &w->out_iov[i], .msg_iovlen = 1};
    }
    const frontend_config_t *cfg = &fe->cfg;
    /* Any worker may get any share of the connections: each table can hold them all; the limit
     * itself is the shared counter. Slots cost ~100 bytes until a connection uses them. */
    w->max_conns = cfg->http_max_conns;
    w->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    w->conns = calloc(w->max_conns, sizeof(*w->conns));
    w->free_conns = calloc(w->max_conns, sizeof(*w->free_conns));
    w->connid = connid_new(cfg->secret, &cfg->connid);
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!w->conns || !w->free_conns || !w->connid || w->epfd < 0) {
        snprintf(err, errlen, "worker %u: out of memory or epoll: %s", index, strerror(errno));
        return w; /* the caller destroys it */
    }
    for (uint32_t i = 0; i < w->max_conns; i++)
        w->free_conns[w->n_free++] = w->max_conns - 1 - i;
    return w;
}

static void worker_destroy(worker_t *w)
{
    if (!w)
        return;
    for (uint32_t i = 0; w->conns && i < w->max_conns; i++) {
        conn_close(w, &w->conns[i]);
        free(w->conns[i].in);
    }
    for (size_t i = 0; i < MAX_ADDRS; i++) {
        if (w->udp_fds[i] >= 0)
            close(w->udp_fds[i]);
        if (w->tcp_fds[i] >= 0)
            close(w->tcp_fds[i]);
    }
    if (w->epfd >= 0)
        close(w->epfd);
    if (w->spare_fd >= 0)
        close(w->spare_fd);
    if (w->has_backend)
        w->backend.ops->destroy(w->backend.self);
    connid_destroy(&w->connid);
    free(w->conns);
    free(w->free_conns);
    free(w);
}

frontend_t *frontend_new(const frontend_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->workers < 1 || cfg->workers > 1024) {
        snprintf(err, errlen, "--workers must be 1-1024");
        return NULL;
    }
    if (cfg->http_max_request < 256 || cfg->http_max_conns < 1 || !cfg->backend_open) {
        snprintf(err, errlen, "invalid HTTP limits");
        return NULL;
    }
    frontend_t *fe = calloc(1, sizeof(*fe));
    if (!fe) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    fe->cfg = *cfg;
    if (fe->cfg.scrape_max > SHOAL_SCRAPE_MAX)
        fe->cfg.scrape_max = SHOAL_SCRAPE_MAX;
    if (fe->cfg.numwant_max > SHOAL_NUMWANT_MAX)
        fe->cfg.numwant_max = SHOAL_NUMWANT_MAX;
    fe->stop_fd = -1;
    fe->n_workers = cfg->workers;
    if (parse_addr_list(fe, cfg->udp, true, err, errlen) != 0 ||
        parse_addr_list(fe, cfg->http, false, err, errlen) != 0)
        goto fail;
    if (fe->n_addrs == 0) {
        snprintf(err, errlen, "both --udp and --http are off: nothing to serve");
        goto fail;
    }
    for (size_t a = 0; a < fe->n_addrs; a++) {
        if (probe_free(&fe->addrs[a], err, errlen) != 0)
            goto fail;
    }
    fe->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    fe->workers = calloc(fe->n_workers, sizeof(*fe->workers));
    if (fe->stop_fd < 0 || !fe->workers) {
        snprintf(err, errlen, "eventfd/out of memory: %s", strerror(errno));
        goto fail;
    }
    for (unsigned i = 0; i < fe->n_workers; i++) {
        worker_t *w = worker_new(fe, i, err, errlen);
        fe->workers[i] = w;
        if (!w || w->epfd < 0 || !w->connid || !w->conns)
            goto fail;
        if (epoll_add(w->epfd, fe->stop_fd, EV_STOP, 0) != 0) {
            snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
            goto fail;
        }
        uint32_t n_udp = 0, n_tcp = 0;
        for (size_t a = 0; a < fe->n_addrs; a++) {
            int fd = open_socket(&fe->addrs[a], err, errlen);
            if (fd < 0)
                goto fail;
            bool udp = fe->addrs[a].udp;
            uint32_t idx = udp ? n_udp++ : n_tcp++;
            (udp ? w->udp_fds : w->tcp_fds)[idx] = fd;
            if (epoll_add(w->epfd, fd, udp ? EV_UDP : EV_LISTEN, idx) != 0) {
                snprintf(err, errlen, "epoll_ctl: %s", strerror(errno));
                goto fail;
            }
        }
        if (cfg->backend_open(cfg->backend_arg, i, &w->backend) != 0) {
            snprintf(err, errlen, "worker %u: could not open the backend", i);
            goto fail;
        }
        w->has_backend = true;
        const backend_ops_t *ops = w->backend.ops;
        if (ops->fd) {
            if (!ops->poll || epoll_add(w->epfd, ops->fd(w->backend.self), EV_BACKEND, 0) != 0) {
                snprintf(err, errlen, "worker %u: cannot watch the backend", i);
                goto fail;
            }
        }
    }
    return fe;
fail:
    frontend_destroy(&fe);
    return NULL;
}

int frontend_start(frontend_t *self, char *err, size_t errlen)
{
    for (unsigned i = 0; i < self->n_workers; i++) {
        worker_t *w = self->workers[i];
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            snprintf(err, errlen, "pthread_create: %s", strerror(rc));
            frontend_stop(self);
            return -1;
        }
        w->started = true;
    }
    return 0;
}

void frontend_stop(frontend_t *self)
{
    uint64_t one = 1;
    /* The eventfd stays readable (nobody reads it), so every worker sees it. */
    ssize_t r = write(self->stop_fd, &one, sizeof(one));
    (void)r;
    for (unsigned i = 0; i < self->n_workers; i++) {
        worker_t *w = self->workers[i];
        if (w && w->started) {
            pthread_join(w->thread, NULL);
            w->started = false;
        }
    }
}

void frontend_describe(const frontend_t *self, char *out, size_t outlen)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < self->n_addrs && used < outlen; i++) {
        char name[80];
        netaddr_format((const struct sockaddr *)&self->addrs[i].addr, name, sizeof(name));
        int n = snprintf(out + used, outlen - used, "%s%s %s", i ? ", " : "",
                         self->addrs[i].udp ? "udp" : "http", name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

void frontend_stats(const frontend_t *self, frontend_stats_t *out)
{
    uint64_t sum[C_COUNT] = {0};
    for (unsigned i = 0; i < self->n_workers; i++) {
        for (size_t k = 0; k < C_COUNT; k++)
            sum[k] += atomic_load_explicit(&self->workers[i]->published[k], memory_order_relaxed);
    }
    *out = (frontend_stats_t){
        .udp_connect = sum[C_UDP_CONNECT],
        .udp_announce = sum[C_UDP_ANNOUNCE],
        .udp_scrape = sum[C_UDP_SCRAPE],
        .udp_errors = sum[C_UDP_ERRORS],
        .udp_dropped = sum[C_UDP_DROPPED],
        .http_announce = sum[C_HTTP_ANNOUNCE],
        .http_scrape = sum[C_HTTP_SCRAPE],
        .http_errors = sum[C_HTTP_ERRORS],
        .http_accepted = sum[C_HTTP_ACCEPTED],
        .http_refused = sum[C_HTTP_REFUSED],
    };
}

void frontend_destroy(frontend_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    frontend_t *fe = *self_p;
    for (unsigned i = 0; fe->workers && i < fe->n_workers; i++)
        worker_destroy(fe->workers[i]);
    free(fe->workers);
    if (fe->stop_fd >= 0)
        close(fe->stop_fd);
    free(fe);
    *self_p = NULL;
}
