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

static void stub_submit(void *self, const backend_req_t *reqs, size_t n, backend_done_fn done,
                        void *arg)
{
    (void)self;
    for (size_t i = 0; i < n; i++) {
        backend_reply_t r = {.failure = "stub"};
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
#undef SUM
    frontend_destroy(&fe);
    assert_int_equal(a.live, 0);
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
    };
    return cmocka_run_group_tests_name("fe_worker", tests, NULL, NULL);
}
