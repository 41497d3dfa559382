/* SPDX-License-Identifier: MIT */
/* fe_internal: what the pieces of the front end share, and nothing outside gateway/fe_*.c and
 * frontend.c may include (unit tests of those pieces aside).
 *
 * The pieces, one concern each:
 *   frontend.c    the public API (frontend.h), worker construction and the worker event loop
 *   fe_listen.c   listen-address lists and socket setup
 *   fe_udp.c      the UDP path: recvmmsg, BEP 15 requests to the backend, replies by sendmmsg
 *   fe_http.c     HTTP connections: accept, read, write, backlog, answers in request order
 *   fe_order.c    the pipeline order store of one connection (its own header, fe_order.h)
 *   fe_dispatch.c HTTP requests to the backend, and the backend's answers to their transport
 *   fe_proxy.c    PROXY protocol v2 headers (--proxy-protocol) before a connection or datagram
 *
 * Each worker thread owns one epoll loop and everything it touches: its sockets (one UDP and one
 * TCP listener per address, all SO_REUSEPORT), its connection table, its connection-id checker,
 * its pending-request table and its backend. Workers share only the immutable configuration,
 * the stop eventfd and the open-connection counter, so the request path takes no lock of the
 * front end's own.
 *
 * A request that needs the backend gets a pending slot (tag) holding how to answer it: the UDP
 * source address and transaction id, or the HTTP connection (index + generation, so an answer
 * for a connection closed meanwhile is dropped) and the request's number on it. The backend's
 * done() callback (fe_dispatch_done, or fe_udp.c's own copy of it with the UDP answer inline)
 * turns the reply into bytes: UDP replies are queued and sent in one sendmmsg; HTTP replies are
 * gathered per connection (wbuf) and written with one send per read or per backend poll.
 *
 * The helpers every request calls are static inline here, so splitting the front end over
 * several files adds no call on the per-packet path. */
#ifndef SHOAL_FE_INTERNAL_H
#define SHOAL_FE_INTERNAL_H

#include "access.h"
#include "addrtab.h"
#include "bep15.h"
#include "connban.h"
#include "fe_order.h"
#include "frontend.h"
#include "httpreq.h"
#include "httpresp.h"
#include "mono.h"
#include "ratelimit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_ADDRS        8
#define UDP_BATCH        64
#define UDP_BUF          2048 /* larger datagrams are truncated and refused */
#define UDP_ROUNDS       8    /* recvmmsg batches per wake-up, so HTTP is not starved */
#define PENDING_MAX      4096 /* in-flight backend requests per worker; power of two */
#define PENDING_PROBES   16   /* slots pending_alloc looks at before it gives up */
#define ACCEPT_ROUNDS    64   /* accept4 calls per wake-up of a listener */
#define EPOLL_BATCH      128  /* events one epoll_wait returns */
#define WBUF_CAP         (64 * 1024)
#define CONN_BACKLOG_MAX (256 * 1024) /* unsent bytes a slow reader may hold before it is cut */
#define NO_CONN          UINT32_MAX
#define BAN_LOG_S        10 /* a worker logs at most one ban line this often */

/* What an epoll event's data names: kind in the high half, an index in the low half. */
enum { EV_STOP = 0, EV_UDP = 1, EV_LISTEN = 2, EV_CONN = 3, EV_BACKEND = 4 };
enum { PEND_FREE = 0, PEND_UDP = 1, PEND_HTTP = 2 };

typedef struct {
    struct sockaddr_storage addr;
    socklen_t len;
    bool udp;
} listen_addr_t;

/* One HTTP connection slot of a worker's table. */
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
    uint8_t proxy;    /* FE_PROXY_*: what the first bytes are checked for (fe_proxy.c) */
} conn_t;

/* How to answer one request at the backend. */
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

/* Per-worker counters, written by the worker only; published once a second. The one list names
 * each counter and its frontend_stats_t field, so publishing (every counter below C_COUNT) and
 * frontend_stats() cannot fall out of step with it: a counter without a field does not compile. */
#define FE_COUNTERS(X)                                                                             \
    X(C_UDP_CONNECT, udp_connect)                                                                  \
    X(C_UDP_ANNOUNCE, udp_announce)                                                                \
    X(C_UDP_SCRAPE, udp_scrape)                                                                    \
    X(C_UDP_ERRORS, udp_errors)                                                                    \
    X(C_UDP_DROPPED, udp_dropped)                                                                  \
    X(C_UDP_ANNOUNCE_OK, udp_announce_ok)                                                          \
    X(C_UDP_ANNOUNCE_FAILED, udp_announce_failed)                                                  \
    X(C_UDP_SCRAPE_OK, udp_scrape_ok)                                                              \
    X(C_UDP_SCRAPE_FAILED, udp_scrape_failed)                                                      \
    X(C_UDP_PEERS, udp_peers)                                                                      \
    X(C_HTTP_ANNOUNCE, http_announce)                                                              \
    X(C_HTTP_SCRAPE, http_scrape)                                                                  \
    X(C_HTTP_ERRORS, http_errors)                                                                  \
    X(C_HTTP_ACCEPTED, http_accepted)                                                              \
    X(C_HTTP_REFUSED, http_refused)                                                                \
    X(C_HTTP_ANNOUNCE_OK, http_announce_ok)                                                        \
    X(C_HTTP_ANNOUNCE_FAILED, http_announce_failed)                                                \
    X(C_HTTP_SCRAPE_OK, http_scrape_ok)                                                            \
    X(C_HTTP_SCRAPE_FAILED, http_scrape_failed)                                                    \
    X(C_HTTP_PEERS, http_peers)                                                                    \
    X(C_UDP_ACCESS_REFUSED, udp_access_refused)                                                    \
    X(C_HTTP_ACCESS_REFUSED, http_access_refused)                                                  \
    X(C_UDP_PROXY_ACCEPTED, udp_proxy_accepted)                                                    \
    X(C_HTTP_PROXY_ACCEPTED, http_proxy_accepted)                                                  \
    X(C_UDP_BANS, udp_bans)

#define FE_COUNTER_ID(id, field) id,
enum { FE_COUNTERS(FE_COUNTER_ID) C_COUNT };
#undef FE_COUNTER_ID

_Static_assert(sizeof(frontend_stats_t) == C_COUNT * sizeof(uint64_t),
               "frontend_stats_t has one field per counter, and no other");

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
    uint64_t now_us;        /* CLOCK_MONOTONIC, for the rate limiter */
    uint32_t ban_logged;    /* now_mono of the last ban logged */
    uint32_t bans_unlogged; /* bans since then not logged (one line per BAN_LOG_S) */

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
    uint64_t errs[2][FRONTEND_ERR_COUNT]; /* [FRONTEND_UDP/_HTTP][reason], as c */
    _Atomic uint64_t published[C_COUNT];  /* c, copied out once a second for frontend_stats */
    _Atomic uint64_t published_errs[2][FRONTEND_ERR_COUNT]; /* errs, likewise */
    _Atomic uint64_t turned_ms; /* mono_coarse_ms() at its last loop turn; 0 while not running */
} worker_t;

struct frontend {
    frontend_config_t cfg;
    listen_addr_t addrs[2 * MAX_ADDRS];
    size_t n_addrs;
    int stop_fd;
    _Atomic uint32_t open_conns; /* HTTP connections over all workers, for http_max_conns */
    ratelimit_t *rl;             /* NULL: no rate limit; shared by the workers, lock-free */
    connban_t *ban;              /* NULL: no connection-id bans; likewise */
    worker_t **workers;
    unsigned n_workers;
};

/* ---- frontend.c: the allocation seam -------------------------------------------------------- */

/* Every allocation the front end makes goes through frontend_alloc (libc's functions unless a
 * unit test swaps them, as hiredis's allocator hooks allow, to fail the k-th allocation). Swap
 * them only while no front end exists; nothing but a test changes them. */
typedef struct {
    void *(*malloc_fn)(size_t size);
    void *(*calloc_fn)(size_t n, size_t size);
    void (*free_fn)(void *p);
} frontend_alloc_t;

extern frontend_alloc_t frontend_alloc;

static inline void *fe_malloc(size_t size)
{
    return frontend_alloc.malloc_fn(size);
}

static inline void *fe_calloc(size_t n, size_t size)
{
    return frontend_alloc.calloc_fn(n, size);
}

static inline void fe_free(void *p)
{
    frontend_alloc.free_fn(p);
}

/* ---- fe_listen.c: listen addresses and sockets ---------------------------------------------- */

/* Parse a comma-separated list of listen addresses ("off" or empty: none) and append them to
 * addrs[*n..], at most MAX_ADDRS of one protocol in addrs[0..*n) altogether (addrs holds
 * 2 * MAX_ADDRS). Returns 0, or -1 with a reason in err (then some may have been appended). */
int fe_listen_parse(listen_addr_t *addrs, size_t *n, const char *text, bool udp, char *err,
                    size_t errlen);

/* Fail if somebody already holds a's address (SO_REUSEPORT would let us share it silently).
 * Returns 0, or -1 with a reason in err. */
int fe_listen_probe(const listen_addr_t *a, char *err, size_t errlen);

/* A non-blocking SO_REUSEPORT socket bound to a (listening, for TCP). Without IPv6 on the host,
 * the IPv6 any-address falls back to IPv4 and a is rewritten to say so. Returns the descriptor,
 * or -1 with a reason in err. */
int fe_listen_open(listen_addr_t *a, char *err, size_t errlen);

/* ---- fe_udp.c: the UDP path ----------------------------------------------------------------- */

/* Read and serve what fd has, up to UDP_ROUNDS batches. */
void fe_udp_readable(worker_t *w, int fd);

/* Queue the reply to a UDP request (p) from the backend's answer. */
void fe_udp_answer(worker_t *w, const pending_t *p, const backend_reply_t *r);

/* Send the queued replies with sendmmsg; what the socket will not take is dropped and counted. */
void fe_udp_flush(worker_t *w);

/* ---- fe_http.c: HTTP connections ------------------------------------------------------------ */

/* Accept what the listener lfd has, up to ACCEPT_ROUNDS, and read each new connection at once. */
void fe_http_accept(worker_t *w, int lfd);

/* Handle epoll events on an open connection: error, writable (backlog) or readable. */
void fe_http_event(worker_t *w, conn_t *c, uint32_t events);

/* Write what late answers gathered, then go on with each connection they came for. */
void fe_http_settle(worker_t *w);

/* Close the connections idle for http_idle_timeout. */
void fe_http_sweep(worker_t *w);

/* Close c (if open) and free its backlog and held answers; answers still at the backend for it
 * are dropped (its generation moves on). The slot goes back on the free list. */
void fe_http_close(worker_t *w, conn_t *c);

/* The answer (len bytes at data) to request seq of c: written now if every earlier one is out,
 * held otherwise; last says it ends the connection. data is copied or written before return. */
void fe_http_put(worker_t *w, conn_t *c, uint32_t seq, const char *data, size_t len, bool last);

/* Answer request seq of c with a plain-text status page (counted as an error). */
void fe_http_status(worker_t *w, conn_t *c, uint32_t seq, int status, const char *body,
                    bool keep_alive);

/* Answer request seq of c with a BEP 3 failure reason (counted as an error). */
void fe_http_failure(worker_t *w, conn_t *c, uint32_t seq, const char *reason, uint32_t retry_in,
                     bool keep_alive);

/* Put c on the list of connections fe_http_settle() goes on with. */
void fe_http_mark(worker_t *w, conn_t *c);

/* Count an invalid connection id from addr16 toward its ban (--connid-ban); a ban it starts is
 * counted and logged (at most one line per BAN_LOG_S per worker). */
void fe_connid_strike(worker_t *w, const uint8_t addr16[16]);

/* ---- fe_dispatch.c: requests to the backend, answers back --------------------------------- */

/* Serve request seq of c: answered at once (an error), or handed to the backend. */
void fe_dispatch_http(worker_t *w, conn_t *c, uint32_t seq, const httpreq_t *req);

/* The backend's done() for every request of worker arg: answer over the request's transport and
 * free its pending slot. */
void fe_dispatch_done(void *arg, uint32_t tag, const backend_reply_t *reply);

/* ---- fe_proxy.c: PROXY protocol v2 (--proxy-protocol) ------------------------------------- */

/* What an HTTP connection's first bytes are checked for: nothing (done, or plain HTTP), a header
 * that must come (a --proxy-protocol source), or a header that must not (any other source). */
enum { FE_PROXY_DONE = 0, FE_PROXY_REQUIRED = 1, FE_PROXY_FORBIDDEN = 2 };

/* At accept: set c->proxy from c->peer (the socket's peer). */
void fe_proxy_accept(worker_t *w, conn_t *c);

/* After bytes were added to c->in while c->proxy is not FE_PROXY_DONE: 0 go on (a header was
 * taken off c->in and its address is now c->peer, or there was none to take); 1 wait for more
 * bytes; -1 refused (counted): the caller closes c. */
int fe_proxy_http(worker_t *w, conn_t *c);

/* A datagram whose source is *src, from a --proxy-protocol source or starting with the
 * signature: true to serve it, with *pkt and *len past the header and *src the header's address;
 * false to drop it (counted). */
bool fe_proxy_udp_check(worker_t *w, const uint8_t **pkt, size_t *len, endpoint_t *src);

/* Per datagram: only a listed source or a datagram starting with the signature's first byte
 * goes further (a BEP 15 request never carries the signature: its bytes 8..11 are an action,
 * 0..3, where the signature has "QUIT"). */
static inline bool fe_proxy_udp(worker_t *w, const uint8_t **pkt, size_t *len, endpoint_t *src)
{
    if (w->fe->cfg.proxy_protocol.n == 0 && (*len == 0 || (*pkt)[0] != 0x0D))
        return true;
    return fe_proxy_udp_check(w, pkt, len, src);
}

/* ---- helpers on the request path ------------------------------------------------------------ */

static inline uint64_t ev_data(uint32_t kind, uint32_t index)
{
    return ((uint64_t)kind << 32) | index;
}

static inline uint64_t next_rand(uint64_t *s)
{
    /* xorshift64*: cheap and good enough for jitter. */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* The announce interval with up to +-5 % jitter, so clients spread out. */
static inline uint32_t jittered_interval(worker_t *w)
{
    uint32_t base = w->fe->cfg.interval;
    uint32_t j = base / 20;
    if (j == 0)
        return base;
    return base - j + (uint32_t)(next_rand(&w->rng) % (2 * j + 1));
}

/* Read the clocks once per batch: now_mono for idle times, now_wall for connection ids. */
static inline void update_clocks(worker_t *w)
{
    w->now_mono = mono_s();
    if (w->fe->rl) /* only the rate limiter needs microseconds */
        w->now_us = (uint64_t)mono_us();
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    w->now_wall = (uint64_t)ts.tv_sec;
}

static inline void sockaddr_to_endpoint(const struct sockaddr *sa, endpoint_t *ep)
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

static inline uint32_t cap_numwant(const frontend_config_t *cfg, int32_t asked, uint32_t hard_cap)
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
static inline pending_t *pending_alloc(worker_t *w, uint32_t *tag)
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

#define FE_NO_KIND (-1) /* a request refused before its action was known */

/* Count a request refused or failed on protocol proto (FRONTEND_UDP or _HTTP) for reason why:
 * by reason, and, for an announce or a scrape (kind a backend_kind_t), as a failed result. */
static inline void fe_failed(worker_t *w, unsigned proto, int kind, frontend_err_t why)
{
    w->errs[proto][why]++;
    if (kind == BACKEND_ANNOUNCE)
        w->c[proto == FRONTEND_UDP ? C_UDP_ANNOUNCE_FAILED : C_HTTP_ANNOUNCE_FAILED]++;
    else if (kind == BACKEND_SCRAPE)
        w->c[proto == FRONTEND_UDP ? C_UDP_SCRAPE_FAILED : C_HTTP_SCRAPE_FAILED]++;
}

/* Abuse control for a request from addr16, the client's final address (after any proxy header):
 * FRONTEND_ERR_COUNT if it may go on, else why not (FRONTEND_ERR_BANNED, checked on UDP only;
 * FRONTEND_ERR_RATE_LIMITED). One relaxed load per table, plus a CAS if a token is taken. */
static inline frontend_err_t fe_abuse_check(worker_t *w, unsigned proto, const uint8_t addr16[16])
{
    const frontend_t *fe = w->fe;
    if (!fe->rl && !fe->ban)
        return FRONTEND_ERR_COUNT;
    uint64_t key = addrtab_key(addr16);
    if (proto == FRONTEND_UDP && fe->ban && connban_banned(fe->ban, key, w->now_mono))
        return FRONTEND_ERR_BANNED;
    if (fe->rl && !ratelimit_take(fe->rl, key, w->now_us))
        return FRONTEND_ERR_RATE_LIMITED;
    return FRONTEND_ERR_COUNT;
}

#endif
