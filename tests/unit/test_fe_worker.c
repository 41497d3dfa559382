/* SPDX-License-Identifier: MIT */
/* test_fe_worker: building and stopping the front end's workers (gateway/frontend.c) through its
 * internal header: every allocation failure while frontend_new() builds them fails it cleanly
 * (NULL, a reason, nothing left allocated or open), as do a connection-id checker or a backend
 * that cannot be set up; and every counter a worker keeps reaches frontend_stats(). Sockets are
 * real, on a free loopback port; the backend is a stub. */
#include "fe_internal.h"

#include <dirent.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

#define K_MAX 64 /* bound on the allocations one frontend_new() makes with two workers */

/* ---- an allocator that fails the k-th call and counts what is live --------------------------- */

static struct {
    long countdown; /* allocations left before the one that fails; < 0: never fail */
    bool failed;    /* the failing allocation happened */
    long live;      /* allocations not freed yet */
} a;

static void *counted(void *p)
{
    if (p)
        a.live++;
    return p;
}

static bool fail_now(void)
{
    if (a.countdown < 0)
        return false;
    if (a.countdown-- > 0)
        return false;
    a.failed = true;
    return true;
}

static void *seam_malloc(size_t size)
{
    return fail_now() ? NULL : counted(malloc(size));
}

static void *seam_calloc(size_t n, size_t size)
{
    return fail_now() ? NULL : counted(calloc(n, size));
}

static void seam_free(void *p)
{
    if (p)
        a.live--;
    free(p);
}

static const frontend_alloc_t libc_alloc = {malloc, calloc, free};
static const frontend_alloc_t test_alloc = {seam_malloc, seam_calloc, seam_free};

/* Fail allocation k (0-based) from now on; k < 0: none. */
static void fail_allocation(long k)
{
    a.countdown = k;
    a.failed = false;
    a.live = 0;
}

/* ---- a stub backend ----------------------------------------------------------------------- */

/* What the stub answers: a failure, or (stub_ok) an announce with STUB_PEERS peers of the
 * announcer's family and a scrape with zeroes. Set before the front end starts. */
#define STUB_PEERS 3
static bool stub_ok;

static void stub_submit(void *self, const backend_req_t *reqs, size_t n, backend_done_fn done,
                        void *arg)
{
    (void)self;
    static const uint8_t peers[STUB_PEERS * SHOAL_PEER6_LEN];
    static const swarm_stats_t scrape[SHOAL_SCRAPE_MAX];
    for (size_t i = 0; i < n; i++) {
        backend_reply_t r = {.failure = "stub"};
        if (stub_ok && reqs[i].kind == BACKEND_ANNOUNCE)
            r = (backend_reply_t){.peers = peers, .n_peers = STUB_PEERS};
        else if (stub_ok)
            r = (backend_reply_t){
                .scrape = scrape, .hashes = reqs[i].hashes, .n_scrape = reqs[i].n_hashes};
        done(arg, reqs[i].tag, &r);
    }
}

static int backends_open;

static void stub_destroy(void *self)
{
    (void)self;
    backends_open--;
}

static const backend_ops_t stub_ops = {.submit = stub_submit, .destroy = stub_destroy};

static int stub_open(void *arg, unsigned worker, backend_t *out)
{
    (void)arg;
    (void)worker;
    out->ops = &stub_ops;
    out->self = NULL;
    backends_open++;
    return 0;
}

static int stub_refuse(void *arg, unsigned worker, backend_t *out)
{
    (void)arg;
    (void)worker;
    (void)out;
    return -1;
}

/* ---- fixture ----------------------------------------------------------------------------------
 */

typedef struct {
    char addr[32];
    frontend_config_t cfg;
    char err[256];
} fixture_t;

/* A port free for both UDP and TCP on 127.0.0.1, or 0. */
static uint16_t free_port(void)
{
    for (int tries = 0; tries < 50; tries++) {
        int t = socket(AF_INET, SOCK_STREAM, 0);
        int u = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
        socklen_t len = sizeof(sin);
        uint16_t port = 0;
        if (t >= 0 && u >= 0 && bind(t, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
            getsockname(t, (struct sockaddr *)&sin, &len) == 0 &&
            bind(u, (struct sockaddr *)&sin, sizeof(sin)) == 0)
            port = ntohs(sin.sin_port);
        close(t);
        close(u);
        if (port)
            return port;
    }
    return 0;
}

static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    uint16_t port = free_port();
    if (!f || port == 0) {
        free(f);
        return -1;
    }
    snprintf(f->addr, sizeof(f->addr), "127.0.0.1:%u", port);
    f->cfg = (frontend_config_t){
        .udp = f->addr,
        .http = f->addr,
        .workers = 2,
        .interval = 1800,
        .min_interval = 900,
        .numwant_default = 50,
        .numwant_max = 200,
        .scrape_max = 74,
        .http_max_conns = 16,
        .http_max_request = 1024,
        .http_idle_timeout = 30,
        .connid = connid_default_config,
        .backend_open = stub_open,
    };
    frontend_alloc = test_alloc;
    fail_allocation(-1);
    backends_open = 0;
    stub_ok = false;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    frontend_alloc = libc_alloc;
    free(*state);
    return 0;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void frontend_new_builds_every_worker(void **state)
{
    fixture_t *f = *state;
    frontend_t *fe = frontend_new(&f->cfg, f->err, sizeof(f->err));
    assert_non_null(fe);
    assert_int_equal(fe->n_workers, 2);
    for (unsigned i = 0; i < fe->n_workers; i++) {
        worker_t *w = fe->workers[i];
        assert_non_null(w->conns);
        assert_non_null(w->free_conns);
        assert_int_equal(w->n_free, f->cfg.http_max_conns);
        assert_non_null(w->connid);
        assert_true(w->epfd >= 0);
        assert_true(w->has_backend);
    }
    frontend_destroy(&fe);
    assert_int_equal(a.live, 0);
    assert_int_equal(backends_open, 0);
}

static void every_allocation_failure_fails_frontend_new_cleanly(void **state)
{
    fixture_t *f = *state;
    int fds = open_fds();
    long k;
    for (k = 0; k < K_MAX; k++) {
        fail_allocation(k);
        f->err[0] = '\0';
        frontend_t *fe = frontend_new(&f->cfg, f->err, sizeof(f->err));
        if (!a.failed) {
            /* k is past the last allocation: this one had to succeed, and ends the loop. */
            assert_non_null(fe);
            frontend_destroy(&fe);
            break;
        }
        if (fe)
            fail_msg("allocation %ld failed, yet frontend_new returned a front end", k);
        assert_true(f->err[0] != '\0');
        assert_int_equal(a.live, 0);
        assert_int_equal(backends_open, 0);
        assert_int_equal(open_fds(), fds);
    }
    /* At least the front end, its worker table and three per worker were tried. */
    assert_true(k >= 2 + 3 * (long)f->cfg.workers && k < K_MAX);
    assert_int_equal(a.live, 0);
}

static void connid_that_cannot_start_fails_frontend_new(void **state)
{
    fixture_t *f = *state;
    int fds = open_fds();
    f->cfg.connid.bucket_s = 0; /* connid_new refuses it */
    assert_null(frontend_new(&f->cfg, f->err, sizeof(f->err)));
    assert_non_null(strstr(f->err, "connection id"));
    assert_int_equal(a.live, 0);
    assert_int_equal(open_fds(), fds);
}

static void backend_that_cannot_open_fails_frontend_new(void **state)
{
    fixture_t *f = *state;
    int fds = open_fds();
    f->cfg.backend_open = stub_refuse;
    assert_null(frontend_new(&f->cfg, f->err, sizeof(f->err)));
    assert_non_null(strstr(f->err, "backend"));
    assert_int_equal(a.live, 0);
    assert_int_equal(open_fds(), fds);
}

static void every_counter_reaches_frontend_stats(void **state)
{
    fixture_t *f = *state;
    frontend_t *fe = frontend_new(&f->cfg, f->err, sizeof(f->err));
    assert_non_null(fe);
    /* Distinct values per worker and counter; the worker only adds to them on traffic. */
    for (unsigned i = 0; i < fe->n_workers; i++) {
        for (size_t k = 0; k < C_COUNT; k++)
            fe->workers[i]->c[k] = 1000 * (i + 1) + k + 1;
    }
    assert_int_equal(frontend_start(fe, f->err, sizeof(f->err)), 0);
    frontend_stop(fe); /* a stopping worker publishes its counters */
    for (unsigned i = 0; i < fe->n_workers; i++) {
        for (size_t k = 0; k < C_COUNT; k++)
            assert_int_equal(fe->workers[i]->published[k], 1000 * (i + 1) + k + 1);
    }
    frontend_stats_t st;
    frontend_stats(fe, &st);
    /* Each counter summed over the two workers: 3000 + 2 * (k + 1). */
#define SUM(k) (3000u + 2u * ((k) + 1u))
    assert_int_equal(st.udp_connect, SUM(C_UDP_CONNECT));
    assert_int_equal(st.udp_announce, SUM(C_UDP_ANNOUNCE));
    assert_int_equal(st.udp_scrape, SUM(C_UDP_SCRAPE));
    assert_int_equal(st.udp_errors, SUM(C_UDP_ERRORS));
    assert_int_equal(st.udp_dropped, SUM(C_UDP_DROPPED));
    assert_int_equal(st.http_announce, SUM(C_HTTP_ANNOUNCE));
    assert_int_equal(st.http_scrape, SUM(C_HTTP_SCRAPE));
    assert_int_equal(st.http_errors, SUM(C_HTTP_ERRORS));
    assert_int_equal(st.http_accepted, SUM(C_HTTP_ACCEPTED));
    assert_int_equal(st.http_refused, SUM(C_HTTP_REFUSED));
    assert_int_equal(st.udp_announce_ok, SUM(C_UDP_ANNOUNCE_OK));
    assert_int_equal(st.udp_announce_failed, SUM(C_UDP_ANNOUNCE_FAILED));
    assert_int_equal(st.udp_scrape_ok, SUM(C_UDP_SCRAPE_OK));
    assert_int_equal(st.udp_scrape_failed, SUM(C_UDP_SCRAPE_FAILED));
    assert_int_equal(st.udp_peers, SUM(C_UDP_PEERS));
    assert_int_equal(st.http_announce_ok, SUM(C_HTTP_ANNOUNCE_OK));
    assert_int_equal(st.http_announce_failed, SUM(C_HTTP_ANNOUNCE_FAILED));
    assert_int_equal(st.http_scrape_ok, SUM(C_HTTP_SCRAPE_OK));
    assert_int_equal(st.http_scrape_failed, SUM(C_HTTP_SCRAPE_FAILED));
    assert_int_equal(st.http_peers, SUM(C_HTTP_PEERS));
#undef SUM
    frontend_destroy(&fe);
    assert_int_equal(a.live, 0);
}

/* ---- traffic: each counter moves by exactly what the client did ---------------------------- */

static int udp_client(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    struct timeval tv = {.tv_sec = 5};
    if (fd >= 0 && (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
                    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Send one datagram and wait (bounded by SO_RCVTIMEO) for the reply; its length, or -1. */
static ssize_t udp_ask(int fd, const uint8_t *req, size_t len, uint8_t *rep, size_t cap)
{
    if (send(fd, req, len, 0) != (ssize_t)len)
        return -1;
    return recv(fd, rep, cap, 0);
}

/* A BEP 15 connect; the connection id, or 0. */
static uint64_t udp_connect(int fd)
{
    uint8_t req[16], rep[64];
    put64(req, 0x41727101980ULL);
    put32(req + 8, 0);
    put32(req + 12, 7);
    if (udp_ask(fd, req, sizeof(req), rep, sizeof(rep)) != 16 || get32(rep) != 0)
        return 0;
    uint64_t id = 0;
    for (int i = 8; i < 16; i++)
        id = id << 8 | rep[i];
    return id;
}

/* A BEP 15 announce; the reply's action (1 announce, 3 error), or -1. */
static int udp_announce(int fd, uint64_t connid)
{
    uint8_t req[98] = {0}, rep[512];
    put64(req, connid);
    put32(req + 8, 1);
    put32(req + 12, 9);
    memset(req + 16, 0xab, 20);   /* info_hash */
    memset(req + 36, 0xcd, 20);   /* peer_id */
    put32(req + 92, 0xffffffffu); /* num_want -1 */
    req[96] = 0x1a;               /* port 6881 */
    req[97] = 0xe1;
    ssize_t n = udp_ask(fd, req, sizeof(req), rep, sizeof(rep));
    return n >= 8 ? (int)get32(rep) : -1;
}

/* A BEP 15 scrape of one hash; the reply's action (2 scrape, 3 error), or -1. */
static int udp_scrape(int fd, uint64_t connid)
{
    uint8_t req[36] = {0}, rep[512];
    put64(req, connid);
    put32(req + 8, 2);
    put32(req + 12, 11);
    memset(req + 16, 0xab, 20);
    ssize_t n = udp_ask(fd, req, sizeof(req), rep, sizeof(rep));
    return n >= 8 ? (int)get32(rep) : -1;
}

/* One HTTP request on a new connection (Connection: close); the status code, or -1. */
static int http_get(uint16_t port, const char *target)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    struct timeval tv = {.tv_sec = 5};
    char buf[4096];
    int status = -1;
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int n = snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
                     target);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
        send(fd, buf, (size_t)n, 0) == n) {
        size_t got = 0;
        ssize_t r;
        /* Until the server closes (it does after a Connection: close answer) or the timeout. */
        while (got < sizeof(buf) - 1 && (r = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0)
            got += (size_t)r;
        buf[got] = '\0';
        if (got > 12 && strncmp(buf, "HTTP/1.1 ", 9) == 0)
            status = atoi(buf + 9);
    }
    close(fd);
    return status;
}

#define HASH_Q "info_hash=%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB%AB"
#define ANNOUNCE_Q                                                                                 \
    "/announce?" HASH_Q "&peer_id=-TT0001-abcdefghijkl&port=6881&left=0&uploaded=0&downloaded=0"

/* Start a one-worker front end on f->addr with the stub answering ok or failing. */
static frontend_t *start_one(fixture_t *f, bool ok)
{
    f->cfg.workers = 1;
    stub_ok = ok;
    frontend_t *fe = frontend_new(&f->cfg, f->err, sizeof(f->err));
    assert_non_null(fe);
    assert_int_equal(frontend_loop_age_ms(fe), 0); /* no loop runs yet */
    assert_int_equal(frontend_start(fe, f->err, sizeof(f->err)), 0);
    return fe;
}

static uint16_t port_of(const fixture_t *f)
{
    return (uint16_t)atoi(strchr(f->addr, ':') + 1);
}

static void answered_requests_count_by_result_and_peers(void **state)
{
    fixture_t *f = *state;
    frontend_t *fe = start_one(f, true);
    int u = udp_client(port_of(f));
    assert_true(u >= 0);
    uint64_t id = udp_connect(u);
    assert_true(id != 0);
    assert_int_equal(udp_announce(u, id), 1);
    assert_int_equal(udp_announce(u, id), 1);
    assert_int_equal(udp_scrape(u, id), 2);
    close(u);
    assert_int_equal(http_get(port_of(f), ANNOUNCE_Q), 200);
    assert_int_equal(http_get(port_of(f), "/scrape?" HASH_Q), 200);
    /* A worker turns at least once a second; a few seconds would mean it is stuck. */
    assert_true(frontend_loop_age_ms(fe) < 5000);
    frontend_stop(fe);
    assert_int_equal(frontend_loop_age_ms(fe), 0);
    assert_int_equal(frontend_http_open(fe), 0);
    frontend_stats_t st;
    frontend_stats(fe, &st);
    assert_int_equal(st.udp_connect, 1);
    assert_int_equal(st.udp_announce_ok, 2);
    assert_int_equal(st.udp_announce_failed, 0);
    assert_int_equal(st.udp_scrape_ok, 1);
    assert_int_equal(st.udp_scrape_failed, 0);
    assert_int_equal(st.udp_peers, 2 * STUB_PEERS);
    assert_int_equal(st.http_announce_ok, 1);
    assert_int_equal(st.http_announce_failed, 0);
    assert_int_equal(st.http_scrape_ok, 1);
    assert_int_equal(st.http_scrape_failed, 0);
    assert_int_equal(st.http_peers, STUB_PEERS);
    frontend_errors_t e;
    frontend_errors(fe, &e);
    for (int p = 0; p < 2; p++) {
        for (int r = 0; r < FRONTEND_ERR_COUNT; r++)
            assert_int_equal(e.n[p][r], 0);
    }
    frontend_destroy(&fe);
}

static void refusals_and_failures_count_by_reason(void **state)
{
    fixture_t *f = *state;
    frontend_t *fe = start_one(f, false); /* the backend fails everything */
    int u = udp_client(port_of(f));
    assert_true(u >= 0);
    uint64_t id = udp_connect(u);
    assert_true(id != 0);
    assert_int_equal(udp_announce(u, id), 3);     /* backend failure */
    assert_int_equal(udp_scrape(u, id), 3);       /* backend failure */
    assert_int_equal(udp_announce(u, id ^ 1), 3); /* invalid connection id */
    uint8_t bad[16] = {0}, rep[64];               /* a wrong protocol id: a parse error */
    put32(bad + 12, 5);
    assert_true(udp_ask(u, bad, sizeof(bad), rep, sizeof(rep)) > 0);
    close(u);
    assert_int_equal(http_get(port_of(f), ANNOUNCE_Q), 200);         /* backend failure */
    assert_int_equal(http_get(port_of(f), "/scrape?" HASH_Q), 200);  /* backend failure */
    assert_int_equal(http_get(port_of(f), "/announce?port=1"), 200); /* bad query */
    assert_int_equal(http_get(port_of(f), "/scrape"), 200);          /* full scrape */
    assert_int_equal(http_get(port_of(f), "/metrics"), 404);         /* not found */
    char big[1200];
    memset(big, 'a', sizeof(big) - 1);
    big[0] = '/';
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(http_get(port_of(f), big), 431); /* over http_max_request (1024) */
    frontend_stop(fe);
    frontend_stats_t st;
    frontend_stats(fe, &st);
    assert_int_equal(st.udp_connect, 1);
    assert_int_equal(st.udp_announce_ok, 0);
    assert_int_equal(st.udp_announce_failed, 2);
    assert_int_equal(st.udp_scrape_ok, 0);
    assert_int_equal(st.udp_scrape_failed, 1);
    assert_int_equal(st.udp_peers, 0);
    assert_int_equal(st.http_announce_ok, 0);
    assert_int_equal(st.http_announce_failed, 2);
    assert_int_equal(st.http_scrape_ok, 0);
    assert_int_equal(st.http_scrape_failed, 2);
    frontend_errors_t e;
    frontend_errors(fe, &e);
    const uint64_t udp[FRONTEND_ERR_COUNT] = {[FRONTEND_ERR_BAD_REQUEST] = 1,
                                              [FRONTEND_ERR_CONNECTION_ID] = 1,
                                              [FRONTEND_ERR_BACKEND] = 2};
    const uint64_t http[FRONTEND_ERR_COUNT] = {[FRONTEND_ERR_BAD_REQUEST] = 2,
                                               [FRONTEND_ERR_NOT_FOUND] = 1,
                                               [FRONTEND_ERR_BACKEND] = 2,
                                               [FRONTEND_ERR_TOO_LARGE] = 1};
    for (int r = 0; r < FRONTEND_ERR_COUNT; r++) {
        assert_int_equal(e.n[FRONTEND_UDP][r], udp[r]);
        assert_int_equal(e.n[FRONTEND_HTTP][r], http[r]);
    }
    assert_string_equal(frontend_err_name(FRONTEND_ERR_CONNECTION_ID), "connection_id");
    assert_string_equal(frontend_err_name(FRONTEND_ERR_COUNT), "unknown");
    frontend_destroy(&fe);
}

/* ---- abuse control: reflection, rate limits, connection-id bans ------------------------------ */

/* The reply's length to one datagram of len bytes (req), or -1 if none comes in 5 s. */
static ssize_t reply_len(int fd, const uint8_t *req, size_t len, int *action)
{
    uint8_t rep[2048];
    ssize_t n = udp_ask(fd, req, len, rep, sizeof(rep));
    *action = n >= 4 ? (int)get32(rep) : -1;
    return n;
}

static void unconnected_sources_get_no_more_bytes_than_they_sent(void **state)
{
    fixture_t *f = *state;
    frontend_t *fe = start_one(f, true);
    int u = udp_client(port_of(f));
    assert_true(u >= 0);
    int action;
    uint8_t req[98 + 20 * 74] = {0};
    /* Connect: exactly 16 bytes back. */
    put64(req, 0x41727101980ULL);
    put32(req + 8, 0);
    assert_int_equal(reply_len(u, req, 16, &action), 16);
    assert_int_equal(action, 0);
    /* Announce and scrape with a connection id never issued: a short error, no data. */
    const size_t lens[] = {98, 36, 16 + 20 * 74};
    for (size_t i = 0; i < 3; i++) {
        memset(req, 0, sizeof(req));
        put64(req, 0x1122334455667788ULL);
        put32(req + 8, i == 0 ? 1 : 2);
        memset(req + 16, 0xab, lens[i] - 16);
        if (i == 0) {
            req[96] = 0x1a; /* a valid port: only the id is wrong */
            put32(req + 80, 0);
        }
        ssize_t n = reply_len(u, req, lens[i], &action);
        assert_int_equal(action, 3);
        assert_true(n > 8 && (size_t)n <= lens[i]);
    }
    /* Malformed requests of the smallest size: errors cut to the request's length. */
    struct {
        uint32_t action;
        size_t len;
    } bad[] = {{0, 17} /* connect too long */, {2, 16} /* scrape of nothing */, {7, 16}, {3, 16}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(req, 0, sizeof(req));
        put64(req, 0x1122334455667788ULL); /* not the protocol id either */
        put32(req + 8, bad[i].action);
        ssize_t n = reply_len(u, req, bad[i].len, &action);
        assert_int_equal(action, 3);
        assert_true(n >= 8 && (size_t)n <= bad[i].len);
    }
    close(u);
    frontend_stop(fe);
    frontend_stats_t st;
    frontend_stats(fe, &st);
    /* Nothing without a valid id reached the backend. */
    assert_int_equal(st.udp_announce + st.udp_scrape, 0);
    assert_int_equal(st.udp_announce_failed, 1);
    assert_int_equal(st.udp_scrape_failed, 2);
    frontend_destroy(&fe);
}

/* Wait (at most 5 s) until the published count of reason why on proto reaches n. */
static bool errors_reach(frontend_t *fe, unsigned proto, frontend_err_t why, uint64_t n)
{
    for (int i = 0; i < 100; i++) {
        frontend_errors_t e;
        frontend_errors(fe, &e);
        if (e.n[proto][why] >= n)
            return e.n[proto][why] == n;
        usleep(50000);
    }
    return false;
}

/* Send a connect on u and check it is refused for why: counted (within 5 s), never answered. */
static void connect_unanswered(frontend_t *fe, int u, frontend_err_t why)
{
    uint8_t req[16], rep[64];
    put64(req, 0x41727101980ULL);
    put32(req + 8, 0);
    put32(req + 12, 1);
    assert_int_equal(send(u, req, sizeof(req), 0), 16);
    assert_true(errors_reach(fe, FRONTEND_UDP, why, 1));
    struct timeval tv = {.tv_usec = 200000};
    setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(recv(u, rep, sizeof(rep), 0), -1);
}

static void over_the_rate_limit_udp_is_dropped_and_http_told_to_retry(void **state)
{
    fixture_t *f = *state;
    f->cfg.rate_limit = 1; /* one token a second: the test is done long before a second one */
    f->cfg.rate_limit_burst = 3;
    f->cfg.rate_limit_table = 1024;
    frontend_t *fe = start_one(f, true);
    int u = udp_client(port_of(f));
    assert_true(u >= 0);
    assert_true(udp_connect(u) != 0);
    assert_true(udp_connect(u) != 0);
    assert_int_equal(http_get(port_of(f), ANNOUNCE_Q), 200); /* the third token */
    /* Out of tokens: UDP gets nothing back, HTTP a failure reason (status 200). */
    assert_int_equal(http_get(port_of(f), ANNOUNCE_Q), 200);
    connect_unanswered(fe, u, FRONTEND_ERR_RATE_LIMITED); /* sent within ms of the last token */
    close(u);
    frontend_stop(fe);
    frontend_stats_t st;
    frontend_stats(fe, &st);
    assert_int_equal(st.udp_connect, 2);
    assert_int_equal(st.http_announce_ok, 1);
    assert_int_equal(st.http_announce_failed, 1);
    frontend_errors_t e;
    frontend_errors(fe, &e);
    assert_int_equal(e.n[FRONTEND_UDP][FRONTEND_ERR_RATE_LIMITED], 1);
    assert_int_equal(e.n[FRONTEND_HTTP][FRONTEND_ERR_RATE_LIMITED], 1);
    assert_string_equal(frontend_err_name(FRONTEND_ERR_RATE_LIMITED), "rate_limited");
    frontend_destroy(&fe);
}

static void invalid_connection_ids_ban_the_address_from_udp(void **state)
{
    fixture_t *f = *state;
    f->cfg.connid_ban = 2;
    f->cfg.connid_ban_window = 60;
    f->cfg.connid_ban_time = 60;
    f->cfg.connid_ban_table = 64;
    frontend_t *fe = start_one(f, true);
    int u = udp_client(port_of(f));
    assert_true(u >= 0);
    uint64_t id = udp_connect(u);
    assert_true(id != 0);
    assert_int_equal(udp_announce(u, id), 1);
    assert_int_equal(udp_announce(u, id ^ 1), 3); /* strike one */
    assert_int_equal(udp_scrape(u, id ^ 2), 3);   /* strike two: banned */
    connect_unanswered(fe, u, FRONTEND_ERR_BANNED);
    close(u);
    /* HTTP from the same address is not banned (its address is not forged). */
    assert_int_equal(http_get(port_of(f), ANNOUNCE_Q), 200);
    frontend_stop(fe);
    frontend_stats_t st;
    frontend_stats(fe, &st);
    assert_int_equal(st.udp_bans, 1);
    assert_int_equal(st.http_announce_ok, 1);
    frontend_errors_t e;
    frontend_errors(fe, &e);
    assert_int_equal(e.n[FRONTEND_UDP][FRONTEND_ERR_CONNECTION_ID], 2);
    assert_int_equal(e.n[FRONTEND_UDP][FRONTEND_ERR_BANNED], 1);
    assert_string_equal(frontend_err_name(FRONTEND_ERR_BANNED), "banned");
    frontend_destroy(&fe);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(frontend_new_builds_every_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(every_allocation_failure_fails_frontend_new_cleanly, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(connid_that_cannot_start_fails_frontend_new, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(backend_that_cannot_open_fails_frontend_new, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(every_counter_reaches_frontend_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(answered_requests_count_by_result_and_peers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(refusals_and_failures_count_by_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(unconnected_sources_get_no_more_bytes_than_they_sent, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(over_the_rate_limit_udp_is_dropped_and_http_told_to_retry,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_connection_ids_ban_the_address_from_udp, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("fe_worker", tests, NULL, NULL);
}
