/* SPDX-License-Identifier: MIT */
/* test_nodesrv: the node's ZeroMQ server with several workers, each on its own ROUTER socket at
 * consecutive loopback ports: a real repository and a static membership (the node owns every
 * partition), real DEALER clients on each port, batches encoded and replies decoded with cmsg.
 * Also the start-time errors: a taken neighbour port, ports past 65535, a non-tcp endpoint. */
#include "cmsg.h"
#include "nodesrv.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define BATCHES 5 /* per worker socket */
#define PER     20

typedef struct {
    repo_t *repo;
    membership_t *members;
    nodesrv_t *srv;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char err[256];
    if (!f)
        return -1;
    f->repo = repo_new(4, &repo_default_limits);
    membership_config_t mc = {.static_nodes = "n1=tcp://127.0.0.1:1",
                              .self_id = "n1",
                              .self_endpoint = "tcp://127.0.0.1:1"};
    f->members = membership_new(&mc, err, sizeof(err));
    *state = f;
    return f->repo && f->members ? 0 : -1;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    nodesrv_destroy(&f->srv);
    membership_destroy(&f->members);
    repo_destroy(&f->repo);
    free(f);
    return 0;
}

static nodesrv_t *server(fixture_t *f, const char *bind, unsigned workers, char *err, size_t errlen)
{
    nodesrv_config_t cfg = {.bind = bind,
                            .workers = workers,
                            .repo = f->repo,
                            .membership = f->members,
                            .self_id = "n1",
                            .numwant_default = 50};
    return nodesrv_new(&cfg, err, errlen);
}

static int port_of(const char *endpoint)
{
    return atoi(strrchr(endpoint, ':') + 1);
}

/* One batch of PER announces (distinct swarms, batch number b) for a worker's socket. */
static size_t encode_batch(uint64_t b, uint8_t *out, size_t cap)
{
    static cmsg_request_batch_t batch;
    memset(&batch, 0, sizeof(batch));
    batch.batch_id = b;
    batch.n = PER;
    for (size_t i = 0; i < PER; i++) {
        cmsg_request_t *r = &batch.req[i];
        r->id = (uint32_t)i;
        r->kind = CMSG_ANNOUNCE;
        memset(r->announce.info_hash, (int)(b * PER + i), SHOAL_HASH_LEN);
        r->announce.info_hash[1] = (uint8_t)b;
        memset(r->announce.peer_id, 'p', SHOAL_HASH_LEN);
        r->announce.peer.family = 4;
        memcpy(r->announce.peer.addr, "\x0a\x00\x00\x01", 4);
        r->announce.peer.port = 6881;
        r->announce.numwant = 10;
        r->announce.left = 1;
        r->announce.event = ANNOUNCE_STARTED;
    }
    ssize_t len = cmsg_encode_requests(&batch, out, cap);
    assert_true(len > 0);
    return (size_t)len;
}

/* Every worker's socket answers every batch sent to it, on that socket, and counts it as its
 * own: no proxy deals them elsewhere. */
static void serve_on_every_socket(fixture_t *f, unsigned n)
{
    char err[256];
    f->srv = server(f, "tcp://127.0.0.1:*", n, err, sizeof(err));
    assert_non_null(f->srv);
    assert_int_equal(nodesrv_workers(f->srv), n);
    assert_int_equal(nodesrv_start(f->srv, err, sizeof(err)), 0);
    int base = port_of(nodesrv_endpoint(f->srv));
    static uint8_t out[CMSG_REQUEST_BATCH_BOUND];
    static cmsg_reply_batch_t rep;
    static swarm_stats_t arena[CMSG_BATCH_MAX];
    for (unsigned w = 0; w < n; w++) {
        zsock_t *c = zsock_new_dealer(NULL);
        assert_non_null(c);
        zsock_set_rcvtimeo(c, 5000);
        assert_int_equal(zsock_connect(c, "tcp://127.0.0.1:%d", base + (int)w), 0);
        for (uint64_t b = 0; b < BATCHES; b++) {
            size_t len = encode_batch(w * 100 + b, out, sizeof(out));
            assert_int_equal(zmq_send(zsock_resolve(c), out, len, 0), (int)len);
        }
        for (uint64_t b = 0; b < BATCHES; b++) {
            zframe_t *fr = zframe_recv(c); /* bounded by the receive timeout */
            assert_non_null(fr);
            assert_int_equal(
                cmsg_decode_replies(zframe_data(fr), zframe_size(fr), &rep, arena, CMSG_BATCH_MAX),
                CMSG_OK);
            zframe_destroy(&fr);
            assert_int_equal(rep.batch_id, w * 100 + b); /* one socket, one worker: in order */
            assert_int_equal(rep.n, PER);
            for (size_t i = 0; i < PER; i++)
                assert_int_equal(rep.rep[i].status, CMSG_STATUS_OK);
        }
        zsock_destroy(&c);
    }
    nodesrv_stats_t all, one;
    nodesrv_stats(f->srv, &all);
    assert_int_equal(all.batches, (uint64_t)n * BATCHES);
    assert_int_equal(all.announces, (uint64_t)n * BATCHES * PER);
    for (unsigned w = 0; w < n; w++) {
        nodesrv_worker_stats(f->srv, w, &one);
        assert_int_equal(one.batches, BATCHES);
    }
    nodesrv_worker_stats(f->srv, n, &one);
    assert_int_equal(one.batches, 0);
}

static void two_workers_two_sockets(void **state)
{
    serve_on_every_socket(*state, 2);
}

static void three_workers_three_sockets(void **state)
{
    serve_on_every_socket(*state, 3);
}

/* A fixed port whose neighbour is taken: the error names the range and the port. */
static void taken_neighbour_is_named(void **state)
{
    fixture_t *f = *state;
    char err[256], want[128];
    zsock_t *other = zsock_new(ZMQ_ROUTER);
    assert_non_null(other);
    int taken = zsock_bind(other, "tcp://127.0.0.1:*");
    assert_true(taken > 1);
    char bind[64];
    snprintf(bind, sizeof(bind), "tcp://127.0.0.1:%d", taken - 1);
    f->srv = server(f, bind, 2, err, sizeof(err));
    assert_null(f->srv);
    /* The port below it may be someone's too: then that one is named, in the same words. */
    snprintf(want, sizeof(want),
             "--workers 2 needs ports %d-%d: cannot bind tcp://127.0.0.1:", taken - 1, taken);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("error: %s", err);
    zsock_destroy(&other);
}

static void ports_past_65535_are_refused(void **state)
{
    fixture_t *f = *state;
    char err[256];
    f->srv = server(f, "tcp://127.0.0.1:65535", 2, err, sizeof(err));
    assert_null(f->srv);
    if (!strstr(err, "--workers 2 needs ports 65535-65536"))
        fail_msg("error: %s", err);
}

static void several_workers_need_tcp(void **state)
{
    fixture_t *f = *state;
    char err[256];
    f->srv = server(f, "inproc://shoal-test-nodesrv", 2, err, sizeof(err));
    assert_null(f->srv);
    assert_non_null(strstr(err, "needs a tcp://HOST:PORT endpoint"));
    f->srv = server(f, "inproc://shoal-test-nodesrv", 1, err, sizeof(err));
    assert_non_null(f->srv); /* one worker: any endpoint, as before */
}

int main(void)
{
    zsys_handler_set(NULL);
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(two_workers_two_sockets),  T(three_workers_three_sockets),
        T(taken_neighbour_is_named), T(ports_past_65535_are_refused),
        T(several_workers_need_tcp),
    };
#undef T
    return cmocka_run_group_tests_name("nodesrv", tests, NULL, NULL);
}
