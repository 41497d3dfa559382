/* SPDX-License-Identifier: MIT */
/* test_router: the cluster gateway's backend against fake nodes. Each test plays the nodes
 * itself: ROUTER sockets on inproc endpoints in the router's own ZeroMQ context, reading the
 * request batches the router sends (decoded with cmsg) and answering exactly what the test
 * wants (a reply, "moved", an error, garbage, nothing). The table source is a fake too, so a
 * test swaps tables when it likes and counts refresh requests. The router is driven the way
 * frontend.c drives it: submit, flush, poll, tick. */
#include "cmsg.h"
#include "router.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include <setjmp.h>

#include <cmocka.h>

/* Scheduling slack for the one check that a deadline passes on time: ThreadSanitizer slows every
 * memory access (and its pass shares the machine), so it gets more. */
#if defined(__SANITIZE_THREAD__)
#define SLACK_MS 400
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SLACK_MS 400
#endif
#endif
#ifndef SLACK_MS
#define SLACK_MS 20
#endif

#define MAX_DONE 9000

/* ---- fakes ---------------------------------------------------------------------------------- */

typedef struct {
    const partition_table_t *table;
    uint64_t version;
    int refreshes;
} source_t;

static const partition_table_t *src_current(void *arg)
{
    return ((source_t *)arg)->table;
}

static void src_release(void *arg, const partition_table_t **table_p)
{
    (void)arg;
    *table_p = NULL;
}

static uint64_t src_version(void *arg)
{
    return ((source_t *)arg)->version;
}

static void src_refresh(void *arg)
{
    ((source_t *)arg)->refreshes++;
}

typedef struct {
    uint32_t tag;
    char failure[160];
    uint32_t retry_in;
    swarm_stats_t stats;
    size_t n_peers;
    uint8_t peers[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    size_t n_scrape;
    swarm_stats_t scrape[SHOAL_SCRAPE_MAX];
    uint8_t hashes[SHOAL_SCRAPE_MAX][SHOAL_HASH_LEN];
} answer_t;

typedef struct {
    void *ctx;
    void *node_a, *node_b;
    partition_table_t *ab, *only_a, *only_b;
    source_t src;
    router_counters_t counters;
    router_config_t cfg;
    backend_t be;
    size_t n_done;
    answer_t done[MAX_DONE];
    uint8_t hash_a[4][SHOAL_HASH_LEN]; /* owned by "a" in the a+b table */
    uint8_t hash_b[4][SHOAL_HASH_LEN];
    /* the last batch a fake node read */
    uint8_t ident[256];
    size_t ident_len;
    uint8_t payload[CMSG_REQUEST_BATCH_BOUND];
    cmsg_request_batch_t batch;
} fixture_t;

static void on_done(void *arg, uint32_t tag, const backend_reply_t *r)
{
    fixture_t *f = arg;
    assert_true(f->n_done < MAX_DONE);
    answer_t *a = &f->done[f->n_done++];
    memset(a, 0, sizeof(*a));
    a->tag = tag;
    if (r->failure)
        snprintf(a->failure, sizeof(a->failure), "%s", r->failure);
    a->retry_in = r->retry_in;
    a->stats = r->stats;
    a->n_peers = r->n_peers;
    if (r->n_peers)
        memcpy(a->peers, r->peers, r->n_peers * SHOAL_PEER4_LEN);
    a->n_scrape = r->n_scrape;
    for (size_t i = 0; i < r->n_scrape; i++) {
        a->scrape[i] = r->scrape[i];
        memcpy(a->hashes[i], r->hashes + i * SHOAL_HASH_LEN, SHOAL_HASH_LEN);
    }
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One turn of the front end's loop: poll (as for a readable fd), flush, poll, tick. */
static void turn(fixture_t *f)
{
    f->be.ops->poll(f->be.self, on_done, f);
    f->be.ops->flush(f->be.self);
    f->be.ops->poll(f->be.self, on_done, f);
    f->be.ops->tick(f->be.self, on_done, f);
}

/* Turn the loop until n answers arrived or ms passed. */
static void pump_until(fixture_t *f, size_t n, uint64_t ms)
{
    uint64_t end = mono_ms() + ms;
    while (f->n_done < n && mono_ms() < end) {
        turn(f);
        zmq_pollitem_t it = {NULL, f->be.ops->fd(f->be.self), ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 2);
    }
}

/* A fake node reads one request batch (waiting up to ms). Returns false if none came. */
static bool node_read(fixture_t *f, void *sock, uint64_t ms)
{
    uint64_t end = mono_ms() + ms;
    for (;;) {
        turn(f);
        int n = zmq_recv(sock, f->ident, sizeof(f->ident), ZMQ_DONTWAIT);
        if (n >= 0) {
            f->ident_len = (size_t)n;
            int more = 0;
            size_t more_len = sizeof(more);
            zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &more_len);
            assert_int_equal(more, 1);
            int len = zmq_recv(sock, f->payload, sizeof(f->payload), 0);
            assert_true(len > 0);
            assert_int_equal(cmsg_decode_requests(f->payload, (size_t)len, &f->batch), CMSG_OK);
            return true;
        }
        if (mono_ms() >= end)
            return false;
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 2);
    }
}

/* A fake node takes the batch that is already queued to it (inproc: a sent batch is there at
 * once). Returns false if nothing came within a second. */
static bool node_take(fixture_t *f, void *sock)
{
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 1000) != 1)
        return false;
    int n = zmq_recv(sock, f->ident, sizeof(f->ident), 0);
    assert_true(n > 0);
    f->ident_len = (size_t)n;
    int len = zmq_recv(sock, f->payload, sizeof(f->payload), 0);
    assert_true(len > 0);
    assert_int_equal(cmsg_decode_requests(f->payload, (size_t)len, &f->batch), CMSG_OK);
    return true;
}

static void node_send(fixture_t *f, void *sock, const void *data, size_t len)
{
    assert_int_equal(zmq_send(sock, f->ident, f->ident_len, ZMQ_SNDMORE), (int)f->ident_len);
    assert_int_equal(zmq_send(sock, data, len, 0), (int)len);
}

static void node_reply(fixture_t *f, void *sock, const cmsg_reply_batch_t *rb)
{
    static uint8_t out[CMSG_REPLY_BATCH_BOUND];
    ssize_t len = cmsg_encode_replies(rb, out, sizeof(out));
    assert_true(len > 0);
    node_send(f, sock, out, (size_t)len);
}

/* Answer every request of the last batch read: announces with two peers and stats that encode
 * the request's port, scrapes with stats that encode the hash's first two bytes. */
static void node_answer_all(fixture_t *f, void *sock)
{
    static cmsg_reply_batch_t rb;
    static uint8_t peers[CMSG_BATCH_MAX][2 * SHOAL_PEER4_LEN];
    static swarm_stats_t st[CMSG_BATCH_MAX][SHOAL_SCRAPE_MAX];
    memset(&rb, 0, sizeof(rb));
    rb.batch_id = f->batch.batch_id;
    rb.epoch = 7;
    rb.n = f->batch.n;
    for (size_t i = 0; i < f->batch.n; i++) {
        const cmsg_request_t *q = &f->batch.req[i];
        cmsg_reply_t *r = &rb.rep[i];
        r->id = q->id;
        r->status = CMSG_STATUS_OK;
        r->kind = q->kind;
        if (q->kind == CMSG_ANNOUNCE) {
            r->family = q->announce.peer.family;
            r->stats = (swarm_stats_t){q->announce.peer.port, 2, 3};
            memcpy(peers[i], "\x0a\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x1a\xe2", 12);
            r->peers = peers[i];
            r->n_peers = 2;
        } else {
            for (size_t k = 0; k < q->n_hashes; k++) {
                const uint8_t *h = q->hashes + k * SHOAL_HASH_LEN;
                st[i][k] = (swarm_stats_t){h[0], h[1], 9};
            }
            r->scrape = st[i];
            r->n_scrape = q->n_hashes;
        }
    }
    node_reply(f, sock, &rb);
}

static void node_moved_all(fixture_t *f, void *sock)
{
    static cmsg_reply_batch_t rb;
    memset(&rb, 0, sizeof(rb));
    rb.batch_id = f->batch.batch_id;
    rb.epoch = 99;
    rb.n = f->batch.n;
    for (size_t i = 0; i < f->batch.n; i++) {
        rb.rep[i].id = f->batch.req[i].id;
        rb.rep[i].status = CMSG_STATUS_MOVED;
        rb.rep[i].epoch = 99;
    }
    node_reply(f, sock, &rb);
}

/* ---- fixture -------------------------------------------------------------------------------- */

static partition_table_t *table_of(const char *ids)
{
    partition_member_t m[4];
    size_t n = 0;
    memset(m, 0, sizeof(m));
    for (const char *p = ids; *p; p++) {
        snprintf(m[n].id, sizeof(m[n].id), "%c", *p);
        snprintf(m[n].endpoint, sizeof(m[n].endpoint), "inproc://node-%c", *p);
        n++;
    }
    return partition_table_new(m, n, (uint64_t)ids[0] * 31 + n, NULL);
}

/* The k-th hash (in a fixed sequence) that member id owns in table t. */
static void hash_owned_by(const partition_table_t *t, const char *id, unsigned k,
                          uint8_t out[SHOAL_HASH_LEN])
{
    int m = partition_table_find(t, id);
    assert_true(m >= 0);
    for (unsigned v = 0; v < 65536; v++) {
        memset(out, 0x33, SHOAL_HASH_LEN);
        out[0] = (uint8_t)(v >> 8);
        out[1] = (uint8_t)v;
        if (partition_owner(t, partition_of(out)) == m && k-- == 0)
            return;
    }
    fail_msg("no hash owned by %s", id);
}

static void find_hashes(fixture_t *f)
{
    size_t na = 0, nb = 0;
    int a = partition_table_find(f->ab, "a");
    for (unsigned v = 0; v < 65536 && (na < 4 || nb < 4); v += 97) {
        uint8_t h[SHOAL_HASH_LEN];
        memset(h, 0x5a, sizeof(h));
        h[0] = (uint8_t)(v >> 8);
        h[1] = (uint8_t)v;
        bool is_a = partition_owner(f->ab, partition_of(h)) == a;
        if (is_a && na < 4)
            memcpy(f->hash_a[na++], h, SHOAL_HASH_LEN);
        else if (!is_a && nb < 4)
            memcpy(f->hash_b[nb++], h, SHOAL_HASH_LEN);
    }
    assert_int_equal(na, 4);
    assert_int_equal(nb, 4);
}

static int open_router(fixture_t *f, uint32_t timeout_ms)
{
    f->cfg.timeout_ms = timeout_ms;
    return router_open(&f->cfg, 0, &f->be);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    f->ctx = zmq_ctx_new();
    f->node_a = zmq_socket(f->ctx, ZMQ_ROUTER);
    f->node_b = zmq_socket(f->ctx, ZMQ_ROUTER);
    if (zmq_bind(f->node_a, "inproc://node-a") != 0 || zmq_bind(f->node_b, "inproc://node-b") != 0)
        return -1;
    f->ab = table_of("ab");
    f->only_a = table_of("a");
    f->only_b = table_of("b");
    f->src = (source_t){.table = f->ab, .version = 1};
    f->cfg = (router_config_t){
        .zmq_ctx = f->ctx,
        .tables = {src_current, src_release, src_version, src_refresh, &f->src},
        .counters = &f->counters,
    };
    find_hashes(f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    if (f->be.ops)
        f->be.ops->destroy(f->be.self);
    zmq_close(f->node_a);
    zmq_close(f->node_b);
    zmq_ctx_term(f->ctx);
    partition_table_destroy(&f->ab);
    partition_table_destroy(&f->only_a);
    partition_table_destroy(&f->only_b);
    free(f);
    return 0;
}

static announce_t sample_announce(const uint8_t *hash, uint16_t port)
{
    announce_t a;
    memset(&a, 0, sizeof(a));
    memcpy(a.info_hash, hash, SHOAL_HASH_LEN);
    memcpy(a.peer_id, "-XX0001-abcdefghijkl", SHOAL_HASH_LEN);
    a.peer.family = 4;
    memcpy(a.peer.addr, "\x7f\x00\x00\x01", 4);
    a.peer.port = port;
    a.numwant = -1;
    a.event = ANNOUNCE_STARTED;
    return a;
}

static void submit_announce(fixture_t *f, const uint8_t *hash, uint32_t tag, uint32_t numwant)
{
    announce_t a = sample_announce(hash, (uint16_t)(1000 + tag));
    backend_req_t r = {.kind = BACKEND_ANNOUNCE, .tag = tag, .announce = &a, .numwant = numwant};
    f->be.ops->submit(f->be.self, &r, 1, on_done, f);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void announce_goes_to_its_owner_and_the_reply_comes_back(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 1000), 0);
    submit_announce(f, f->hash_b[0], 42, 50);
    assert_true(node_read(f, f->node_b, 1000));
    assert_int_equal(f->batch.n, 1);
    assert_int_equal(f->batch.req[0].kind, CMSG_ANNOUNCE);
    assert_memory_equal(f->batch.req[0].announce.info_hash, f->hash_b[0], SHOAL_HASH_LEN);
    assert_int_equal(f->batch.req[0].announce.numwant, 50); /* the capped numwant travels */
    assert_int_equal(f->batch.req[0].announce.peer.port, 1042);
    node_answer_all(f, f->node_b);
    pump_until(f, 1, 1000);
    assert_int_equal(f->n_done, 1);
    assert_int_equal(f->done[0].tag, 42);
    assert_string_equal(f->done[0].failure, "");
    assert_int_equal(f->done[0].stats.seeders, 1042);
    assert_int_equal(f->done[0].stats.leechers, 2);
    assert_int_equal(f->done[0].n_peers, 2);
    assert_memory_equal(f->done[0].peers, "\x0a\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x1a\xe2", 12);
}

static void requests_of_one_cycle_go_as_one_batch_per_node(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 1000), 0);
    for (uint32_t i = 0; i < 4; i++) {
        submit_announce(f, f->hash_a[i], i, 10);
        submit_announce(f, f->hash_b[i], 10 + i, 10);
    }
    assert_true(node_read(f, f->node_a, 1000));
    assert_int_equal(f->batch.n, 4);
    node_answer_all(f, f->node_a);
    assert_false(node_read(f, f->node_a, 50)); /* nothing more for a */
    assert_true(node_read(f, f->node_b, 1000));
    assert_int_equal(f->batch.n, 4);
    node_answer_all(f, f->node_b);
    pump_until(f, 8, 1000);
    assert_int_equal(f->n_done, 8);
}

static void a_full_batch_is_sent_at_once(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 1000), 0);
    for (uint32_t i = 0; i < CMSG_BATCH_MAX + 1; i++)
        submit_announce(f, f->hash_a[i % 4], i, 10);
    /* The 257th request pushed the first 256 out without a flush. */
    int n = zmq_recv(f->node_a, f->ident, sizeof(f->ident), 0);
    assert_true(n > 0);
    f->ident_len = (size_t)n;
    int len = zmq_recv(f->node_a, f->payload, sizeof(f->payload), 0);
    assert_int_equal(cmsg_decode_requests(f->payload, (size_t)len, &f->batch), CMSG_OK);
    assert_int_equal(f->batch.n, CMSG_BATCH_MAX);
    assert_true(node_read(f, f->node_a, 1000));
    assert_int_equal(f->batch.n, 1);
}

/* Pacing: a lone request goes at once; while its batch is unanswered, the next requests for that
 * node wait (other nodes are not held by it) and go as one batch when the reply comes. */
/* Drop whatever a fake node has not read yet (bounded). */
static void node_drain(fixture_t *f, void *sock)
{
    for (int i = 0; i < 10000 && zmq_recv(sock, f->payload, sizeof(f->payload), ZMQ_DONTWAIT) >= 0;
         i++)
        ;
}

/* One try of the scenario below with a fresh router. Returns false if it could not be timed:
 * the hold time had passed before the check (a preempted or sanitized run). */
static bool pacing_attempt(fixture_t *f)
{
    if (f->be.ops)
        f->be.ops->destroy(f->be.self);
    f->be.ops = NULL;
    f->n_done = 0;
    node_drain(f, f->node_a);
    node_drain(f, f->node_b);
    assert_int_equal(open_router(f, 5000), 0);
    submit_announce(f, f->hash_a[0], 0, 10);
    uint64_t t0 = mono_ms(); /* before the send, so the router's own clock has seen less */
    f->be.ops->flush(f->be.self);
    assert_true(node_take(f, f->node_a)); /* sent at the first flush, no waiting */
    assert_int_equal(f->batch.n, 1);
    static cmsg_request_batch_t first;
    first = f->batch;
    uint8_t ident_a[sizeof(f->ident)];
    size_t ident_a_len = f->ident_len;
    memcpy(ident_a, f->ident, sizeof(ident_a));
    for (uint32_t i = 1; i <= 3; i++)
        submit_announce(f, f->hash_a[i], i, 10);
    submit_announce(f, f->hash_b[0], 10, 10);
    f->be.ops->flush(f->be.self);
    /* b is not held by a's unanswered batch. */
    assert_true(node_take(f, f->node_b));
    assert_int_equal(f->batch.n, 1);
    if (mono_ms() - t0 >= ROUTER_HOLD_MS)
        return false;
    /* a's three are held... */
    char probe[8];
    assert_int_equal(zmq_recv(f->node_a, probe, sizeof(probe), ZMQ_DONTWAIT), -1);
    node_answer_all(f, f->node_b);
    /* ...until a answers its first batch: then they go, together. */
    f->batch = first;
    memcpy(f->ident, ident_a, sizeof(ident_a)); /* b's read replaced the identity */
    f->ident_len = ident_a_len;
    node_answer_all(f, f->node_a);
    pump_until(f, 2, 1000);
    assert_int_equal(f->n_done, 2);
    assert_true(node_read(f, f->node_a, 1000));
    assert_int_equal(f->batch.n, 3);
    node_answer_all(f, f->node_a);
    pump_until(f, 5, 1000);
    assert_int_equal(f->n_done, 5);
    return true;
}

/* Pacing: a lone request goes at once; while its batch is unanswered, the next requests for that
 * node wait (other nodes are not held by it) and go as one batch when the reply comes. The check
 * that they wait must happen within ROUTER_HOLD_MS of the send: tried until one run is quick
 * enough, which in a build without ThreadSanitizer must happen (a try takes microseconds). */
static void the_reply_releases_the_queue_as_one_batch(void **state)
{
    fixture_t *f = *state;
    bool timed = false;
    for (int i = 0; i < 50 && !timed; i++)
        timed = pacing_attempt(f);
#if SLACK_MS == 20
    assert_true(timed);
#endif
}

/* A node that does not answer holds its queue back for ROUTER_HOLD_MS only. */
static void a_silent_node_holds_the_queue_only_briefly(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 5000), 0);
    submit_announce(f, f->hash_a[0], 0, 10);
    assert_true(node_read(f, f->node_a, 1000));
    uint64_t read_at = mono_ms();
    submit_announce(f, f->hash_a[1], 1, 10);
    assert_true(node_read(f, f->node_a, 1000)); /* unanswered, released by the hold time */
    assert_int_equal(f->batch.n, 1);
    assert_true(mono_ms() - read_at < 1000);
}

static void scrape_is_split_by_owner_and_merged_in_request_order(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 1000), 0);
    uint8_t hashes[5][SHOAL_HASH_LEN];
    memcpy(hashes[0], f->hash_b[0], SHOAL_HASH_LEN);
    memcpy(hashes[1], f->hash_a[0], SHOAL_HASH_LEN);
    memcpy(hashes[2], f->hash_b[1], SHOAL_HASH_LEN);
    memcpy(hashes[3], f->hash_a[1], SHOAL_HASH_LEN);
    memcpy(hashes[4], f->hash_b[2], SHOAL_HASH_LEN);
    backend_req_t r = {.kind = BACKEND_SCRAPE, .tag = 5, .hashes = &hashes[0][0], .n_hashes = 5};
    f->be.ops->submit(f->be.self, &r, 1, on_done, f);
    memset(hashes, 0, sizeof(hashes)); /* borrowed for submit() only */
    assert_true(node_read(f, f->node_a, 1000));
    assert_int_equal(f->batch.n, 1);
    assert_int_equal(f->batch.req[0].n_hashes, 2);
    assert_memory_equal(f->batch.req[0].hashes, f->hash_a[0], SHOAL_HASH_LEN);
    assert_memory_equal(f->batch.req[0].hashes + SHOAL_HASH_LEN, f->hash_a[1], SHOAL_HASH_LEN);
    node_answer_all(f, f->node_a);
    pump_until(f, 1, 30);
    assert_int_equal(f->n_done, 0); /* half a scrape is no answer */
    assert_true(node_read(f, f->node_b, 1000));
    assert_int_equal(f->batch.req[0].n_hashes, 3);
    node_answer_all(f, f->node_b);
    pump_until(f, 1, 1000);
    assert_int_equal(f->n_done, 1);
    answer_t *a = &f->done[0];
    assert_int_equal(a->tag, 5);
    assert_string_equal(a->failure, "");
    assert_int_equal(a->n_scrape, 5);
    const uint8_t *want[5] = {f->hash_b[0], f->hash_a[0], f->hash_b[1], f->hash_a[1], f->hash_b[2]};
    for (int i = 0; i < 5; i++) {
        assert_memory_equal(a->hashes[i], want[i], SHOAL_HASH_LEN);
        assert_int_equal(a->scrape[i].seeders, want[i][0]);
        assert_int_equal(a->scrape[i].leechers, want[i][1]);
    }
}

static void unanswered_request_fails_retryably_at_its_deadline(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 60), 0);
    uint64_t t0 = mono_ms();
    submit_announce(f, f->hash_a[0], 3, 10);
    assert_true(node_read(f, f->node_a, 1000)); /* read, never answered */
    pump_until(f, 1, 1000);
    uint64_t took = mono_ms() - t0;
    assert_int_equal(f->n_done, 1);
    assert_string_equal(f->done[0].failure, ROUTER_FAIL_TIMEOUT);
    assert_int_equal(f->done[0].retry_in, 1);
    assert_true(took >= 50); /* not before the deadline (coarse clock) */
    assert_true(took <= 60 + 3 * ROUTER_TICK_MS + SLACK_MS); /* nor long after */
}

static void reply_after_the_deadline_is_ignored(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 40), 0);
    submit_announce(f, f->hash_a[0], 3, 10);
    assert_true(node_read(f, f->node_a, 1000));
    pump_until(f, 1, 1000);
    assert_int_equal(f->n_done, 1);
    node_answer_all(f, f->node_a);           /* too late */
    submit_announce(f, f->hash_b[0], 4, 10); /* may reuse the slot: ids must not collide */
    assert_true(node_read(f, f->node_b, 1000));
    node_answer_all(f, f->node_b);
    pump_until(f, 3, 200);
    assert_int_equal(f->n_done, 2);
    assert_int_equal(f->done[1].tag, 4);
    assert_string_equal(f->done[1].failure, "");
}

static void moved_refreshes_and_reroutes_with_the_new_table(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 2000), 0);
    submit_announce(f, f->hash_a[0], 8, 10);
    assert_true(node_read(f, f->node_a, 1000));
    node_moved_all(f, f->node_a);
    pump_until(f, 1, 30);
    assert_int_equal(f->n_done, 0);
    assert_true(f->src.refreshes >= 1);
    f->src.table = f->only_b; /* the refresh found that b owns everything now */
    f->src.version++;
    assert_true(node_read(f, f->node_b, 1000));
    assert_memory_equal(f->batch.req[0].announce.info_hash, f->hash_a[0], SHOAL_HASH_LEN);
    node_answer_all(f, f->node_b);
    pump_until(f, 1, 1000);
    assert_int_equal(f->n_done, 1);
    assert_int_equal(f->done[0].tag, 8);
    assert_string_equal(f->done[0].failure, "");
}

static void moved_without_a_new_table_is_retried_then_fails(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 3000), 0);
    submit_announce(f, f->hash_a[0], 8, 10);
    int reads = 0;
    while (node_read(f, f->node_a, 500)) {
        reads++;
        node_moved_all(f, f->node_a);
    }
    assert_int_equal(reads, ROUTER_ROUTES);
    pump_until(f, 1, 500);
    assert_int_equal(f->n_done, 1);
    assert_string_equal(f->done[0].failure, ROUTER_FAIL_MOVED);
}

static void moved_scrape_part_is_regrouped_under_the_new_table(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 2000), 0);
    uint8_t hashes[3][SHOAL_HASH_LEN];
    memcpy(hashes[0], f->hash_a[0], SHOAL_HASH_LEN);
    memcpy(hashes[1], f->hash_b[0], SHOAL_HASH_LEN);
    memcpy(hashes[2], f->hash_a[1], SHOAL_HASH_LEN);
    backend_req_t r = {.kind = BACKEND_SCRAPE, .tag = 1, .hashes = &hashes[0][0], .n_hashes = 3};
    f->be.ops->submit(f->be.self, &r, 1, on_done, f);
    assert_true(node_read(f, f->node_a, 1000));
    node_moved_all(f, f->node_a);
    assert_true(node_read(f, f->node_b, 1000));
    node_answer_all(f, f->node_b);
    f->src.table = f->only_b;
    f->src.version++;
    assert_true(node_read(f, f->node_b, 1000));
    assert_int_equal(f->batch.req[0].n_hashes, 2);
    node_answer_all(f, f->node_b);
    pump_until(f, 1, 1000);
    assert_int_equal(f->n_done, 1);
    assert_int_equal(f->done[0].n_scrape, 3);
    for (int i = 0; i < 3; i++) {
        assert_memory_equal(f->done[0].hashes[i], hashes[i], SHOAL_HASH_LEN);
        assert_int_equal(f->done[0].scrape[i].seeders, hashes[i][0]);
    }
}

static void requests_of_a_dropped_node_go_to_the_new_owner(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 2000), 0);
    submit_announce(f, f->hash_a[0], 11, 10);
    assert_true(node_read(f, f->node_a, 1000)); /* a took it and went away */
    f->src.table = f->only_b;
    f->src.version++;
    assert_true(node_read(f, f->node_b, 1000));
    assert_memory_equal(f->batch.req[0].announce.info_hash, f->hash_a[0], SHOAL_HASH_LEN);
    node_answer_all(f, f->node_b);
    pump_until(f, 1, 1000);
    assert_int_equal(f->n_done, 1);
    assert_string_equal(f->done[0].failure, "");
}

static void garbage_from_a_node_is_ignored(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 2000), 0);
    submit_announce(f, f->hash_a[0], 1, 10);
    assert_true(node_read(f, f->node_a, 1000));
    node_send(f, f->node_a, "\x95\x01\x02\xff", 4);
    node_send(f, f->node_a, "", 0);
    pump_until(f, 1, 50);
    assert_int_equal(f->n_done, 0);
    node_answer_all(f, f->node_a);
    pump_until(f, 1, 1000);
    assert_int_equal(f->n_done, 1);
    assert_string_equal(f->done[0].failure, "");
}

static void node_error_text_reaches_the_client(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 2000), 0);
    submit_announce(f, f->hash_a[0], 1, 10);
    assert_true(node_read(f, f->node_a, 1000));
    static cmsg_reply_batch_t rb;
    memset(&rb, 0, sizeof(rb));
    rb.n = 1;
    rb.rep[0].id = f->batch.req[0].id;
    rb.rep[0].status = CMSG_STATUS_ERROR;
    snprintf(rb.rep[0].error, sizeof(rb.rep[0].error), "tracker is full");
    node_reply(f, f->node_a, &rb);
    pump_until(f, 1, 1000);
    assert_int_equal(f->n_done, 1);
    assert_string_equal(f->done[0].failure, "tracker is full");
}

static void reply_of_the_wrong_shape_fails_the_request(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 2000), 0);
    submit_announce(f, f->hash_a[0], 1, 10);
    assert_true(node_read(f, f->node_a, 1000));
    static cmsg_reply_batch_t rb;
    static swarm_stats_t st[1];
    memset(&rb, 0, sizeof(rb));
    rb.n = 1;
    rb.rep[0].id = f->batch.req[0].id;
    rb.rep[0].status = CMSG_STATUS_OK;
    rb.rep[0].kind = CMSG_SCRAPE; /* a scrape reply to an announce */
    rb.rep[0].scrape = st;
    rb.rep[0].n_scrape = 1;
    node_reply(f, f->node_a, &rb);
    pump_until(f, 1, 1000);
    assert_int_equal(f->n_done, 1);
    assert_string_equal(f->done[0].failure, ROUTER_FAIL_REPLY);
}

static void a_silent_node_holds_at_most_its_share_of_slots(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 5000), 0);
    for (uint32_t i = 0; i < ROUTER_NODE_INFLIGHT; i++)
        submit_announce(f, f->hash_a[i % 4], i, 10);
    assert_int_equal(f->n_done, 0);
    submit_announce(f, f->hash_a[0], 99999, 10);
    assert_int_equal(f->n_done, 1); /* during submit, no waiting */
    assert_int_equal(f->done[0].tag, 99999);
    assert_string_equal(f->done[0].failure, ROUTER_FAIL_TIMEOUT);
    submit_announce(f, f->hash_b[0], 7, 10); /* the other node is still served */
    assert_int_equal(f->n_done, 1);
    assert_true(node_read(f, f->node_b, 1000));
    assert_int_equal(f->batch.n, 1);
}

static void full_slot_table_fails_fast(void **state)
{
    fixture_t *f = *state;
    partition_table_t *abcd = table_of("abcd"); /* c and d are never bound: nobody reads them */
    f->src.table = abcd;
    assert_int_equal(open_router(f, 5000), 0);
    const char *ids[4] = {"a", "b", "c", "d"};
    uint8_t h[4][SHOAL_HASH_LEN];
    for (int m = 0; m < 4; m++)
        hash_owned_by(abcd, ids[m], 0, h[m]);
    uint32_t tag = 0;
    for (int m = 0; m < 4; m++) {
        for (uint32_t i = 0; i < ROUTER_NODE_INFLIGHT; i++)
            submit_announce(f, h[m], tag++, 10);
    }
    assert_int_equal(tag, ROUTER_SLOTS);
    assert_int_equal(f->n_done, 0);
    submit_announce(f, h[1], 99999, 10);
    assert_int_equal(f->n_done, 1);
    assert_int_equal(f->done[0].tag, 99999);
    assert_string_equal(f->done[0].failure, ROUTER_FAIL_BUSY);
    f->be.ops->destroy(f->be.self); /* before the table it holds */
    f->be.ops = NULL;
    partition_table_destroy(&abcd);
}

static void full_scrape_table_fails_fast(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 5000), 0);
    for (uint32_t i = 0; i <= ROUTER_SCRAPES; i++) {
        backend_req_t r = {.kind = BACKEND_SCRAPE, .tag = i, .hashes = f->hash_b[0], .n_hashes = 1};
        f->be.ops->submit(f->be.self, &r, 1, on_done, f);
    }
    assert_int_equal(f->n_done, 1);
    assert_int_equal(f->done[0].tag, ROUTER_SCRAPES);
    assert_string_equal(f->done[0].failure, ROUTER_FAIL_BUSY);
}

static void no_table_fails_with_no_nodes(void **state)
{
    fixture_t *f = *state;
    f->src.table = NULL;
    f->src.version = 0;
    assert_int_equal(open_router(f, 1000), 0);
    submit_announce(f, f->hash_a[0], 1, 10);
    assert_int_equal(f->n_done, 1);
    assert_string_equal(f->done[0].failure, ROUTER_FAIL_NO_NODES);
    f->src.table = f->only_a; /* a table arrives: the next request is served */
    f->src.version = 1;
    turn(f);
    submit_announce(f, f->hash_b[0], 2, 10);
    assert_true(node_read(f, f->node_a, 1000));
}

static void counters_are_published(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(open_router(f, 1000), 0);
    submit_announce(f, f->hash_a[0], 1, 10);
    assert_true(node_read(f, f->node_a, 1000));
    node_answer_all(f, f->node_a);
    pump_until(f, 1, 1000);
    f->be.ops->destroy(f->be.self); /* publishes what is left */
    f->be.ops = NULL;
    assert_int_equal(atomic_load(&f->counters.requests), 1);
    assert_int_equal(atomic_load(&f->counters.answered), 1);
    assert_int_equal(atomic_load(&f->counters.batches), 1);
    assert_int_equal(atomic_load(&f->counters.tables), 1);
}

/* Node id's counters as router_node_stats() gives them (fails if the id has none). */
static router_node_stat_t node_stat(fixture_t *f, const char *id)
{
    router_node_stat_t all[8];
    size_t n = router_node_stats(&f->counters, all, 8);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(all[i].id, id) == 0)
            return all[i];
    }
    fail_msg("no counters for node %s", id);
    return all[0];
}

/* Turn both routers until node id's published in-flight count is want, or 1 s passed (the
 * routers publish every 100 ms). */
static uint64_t in_flight_becomes(fixture_t *f, backend_t *other, const char *id, uint64_t want)
{
    uint64_t end = mono_ms() + 1000;
    uint64_t got;
    while ((got = node_stat(f, id).in_flight) != want && mono_ms() < end) {
        turn(f);
        other->ops->tick(other->self, on_done, f);
        zmq_pollitem_t it = {NULL, f->be.ops->fd(f->be.self), ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 5);
    }
    return got;
}

static void per_node_counters_sum_over_routers(void **state)
{
    fixture_t *f = *state;
    backend_t other;
    assert_int_equal(open_router(f, 300), 0);
    assert_int_equal(router_open(&f->cfg, 1, &other), 0); /* a second worker's router */
    assert_int_equal(atomic_load(&f->counters.table_epoch), partition_table_epoch(f->ab));
    assert_int_equal(atomic_load(&f->counters.table_members), 2);
    router_node_stat_t all[8];
    assert_int_equal(router_node_stats(&f->counters, all, 8), 2); /* one slot per id */
    assert_string_equal(node_stat(f, "a").endpoint, "inproc://node-a");
    assert_true(node_stat(f, "a").current);

    /* Three toward a from this router and one from the other; one toward b. */
    for (uint32_t i = 0; i < 3; i++)
        submit_announce(f, f->hash_a[i], i, 10);
    announce_t x = sample_announce(f->hash_a[3], 2000);
    backend_req_t r = {.kind = BACKEND_ANNOUNCE, .tag = 100, .announce = &x, .numwant = 10};
    other.ops->submit(other.self, &r, 1, on_done, f);
    other.ops->flush(other.self);
    submit_announce(f, f->hash_b[0], 3, 10);
    assert_int_equal(in_flight_becomes(f, &other, "a", 4), 4);
    assert_int_equal(in_flight_becomes(f, &other, "b", 1), 1);

    /* b answers; a's four pass their deadline; b says "moved" once for another, then answers. */
    assert_true(node_read(f, f->node_b, 1000));
    node_answer_all(f, f->node_b);
    pump_until(f, 1, 1000);
    submit_announce(f, f->hash_b[1], 4, 10);
    assert_true(node_read(f, f->node_b, 1000));
    node_moved_all(f, f->node_b);
    assert_true(node_read(f, f->node_b, 1000)); /* parked, then routed to b again */
    node_answer_all(f, f->node_b);
    pump_until(f, 5, 2000);
    uint64_t end = mono_ms() + 2000;
    while (f->n_done < 6 && mono_ms() < end) { /* the other router's one times out too */
        turn(f);
        other.ops->tick(other.self, on_done, f);
        zmq_pollitem_t it = {NULL, f->be.ops->fd(f->be.self), ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 5);
    }
    assert_int_equal(f->n_done, 6);
    other.ops->destroy(other.self); /* destroying publishes the rest and gives the slots up */
    f->be.ops->destroy(f->be.self);
    f->be.ops = NULL;

    router_node_stat_t a = node_stat(f, "a"), b = node_stat(f, "b");
    assert_int_equal(a.requests, 4);
    assert_int_equal(a.timeouts, 4);
    assert_int_equal(a.moved, 0);
    assert_int_equal(a.in_flight, 0);
    assert_false(a.current);
    assert_int_equal(b.requests, 3); /* 1, then 1 sent twice */
    assert_int_equal(b.timeouts, 0);
    assert_int_equal(b.moved, 1);
    assert_int_equal(b.in_flight, 0);
    assert_int_equal(atomic_load(&f->counters.timeouts), 4);
    assert_int_equal(atomic_load(&f->counters.moved), 1);
}

/* ---- nodes with several workers ------------------------------------------------------------ */

#define WORKERS_MAX 3

/* A node with n ROUTER sockets on consecutive loopback ports (as shoal-node binds them); returns
 * the first port, or -1 if no n free consecutive ports turned up in 20 tries. */
static int bind_workers(void *ctx, void **socks, unsigned n)
{
    for (int tries = 0; tries < 20; tries++) {
        char ep[64];
        size_t len = sizeof(ep);
        socks[0] = zmq_socket(ctx, ZMQ_ROUTER);
        if (!socks[0] || zmq_bind(socks[0], "tcp://127.0.0.1:*") != 0 ||
            zmq_getsockopt(socks[0], ZMQ_LAST_ENDPOINT, ep, &len) != 0)
            return -1;
        int port = atoi(strrchr(ep, ':') + 1);
        unsigned ok = 1;
        for (; ok < n; ok++) {
            snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", port + (int)ok);
            socks[ok] = zmq_socket(ctx, ZMQ_ROUTER);
            if (port + (int)ok > 65535 || zmq_bind(socks[ok], ep) != 0) {
                zmq_close(socks[ok]);
                break;
            }
        }
        if (ok == n)
            return port;
        for (unsigned k = 0; k < ok; k++)
            zmq_close(socks[k]);
    }
    return -1;
}

/* A one-member table: node "w" advertising n workers at port. */
static partition_table_t *workers_table(int port, unsigned n, uint64_t seed)
{
    partition_member_t m;
    memset(&m, 0, sizeof(m));
    snprintf(m.id, sizeof(m.id), "w");
    snprintf(m.endpoint, sizeof(m.endpoint), "tcp://127.0.0.1:%d|workers=%u", port, n);
    return partition_table_new(&m, 1, seed, NULL);
}

/* Hashes whose partitions cover every residue mod n, k of each, into h[n * k]. */
static void hashes_per_worker(unsigned n, unsigned k, uint8_t (*h)[SHOAL_HASH_LEN])
{
    unsigned have[WORKERS_MAX] = {0};
    size_t got = 0;
    for (unsigned v = 0; v < 65536 && got < n * k; v += 31) {
        uint8_t x[SHOAL_HASH_LEN];
        memset(x, 0x77, sizeof(x));
        x[0] = (uint8_t)(v >> 8);
        x[1] = (uint8_t)v;
        unsigned w = partition_of(x) % n;
        if (have[w] < k) {
            have[w]++;
            memcpy(h[got++], x, SHOAL_HASH_LEN);
        }
    }
    assert_int_equal(got, n * k);
}

/* Every worker socket gets exactly the partitions p % n == its index, each batch is answered
 * there, and the node's counters add up over its sockets; a new table with the same advert keeps
 * the connections (the node sees the same routing id). */
static void spread_over_workers(fixture_t *f, unsigned n)
{
    void *socks[WORKERS_MAX];
    int port = bind_workers(f->ctx, socks, n);
    assert_true(port > 0);
    partition_table_t *t = workers_table(port, n, 5), *t2 = workers_table(port, n, 6);
    f->src = (source_t){.table = t, .version = 1};
    assert_int_equal(open_router(f, 3000), 0);
    enum { PER = 4 };
    uint8_t h[WORKERS_MAX * PER][SHOAL_HASH_LEN];
    hashes_per_worker(n, PER, h);
    for (uint32_t i = 0; i < n * PER; i++) {
        submit_announce(f, h[i], i, 10);
        submit_announce(f, h[i], 100 + i, 10); /* the same swarm again: same socket, after it */
    }
    uint8_t ident0[256];
    size_t ident0_len = 0;
    for (unsigned w = 0; w < n; w++) {
        size_t seen = 0;
        while (seen < 2 * PER) { /* bounded: node_read fails after 2 s */
            assert_true(node_read(f, socks[w], 2000));
            for (size_t q = 0; q < f->batch.n; q++) {
                const cmsg_request_t *r = &f->batch.req[q];
                assert_int_equal(r->kind, CMSG_ANNOUNCE);
                assert_int_equal(partition_of(r->announce.info_hash) % n, w);
                /* the second request of a swarm comes after its first, in the same batch */
                if (q > 0 && memcmp(r->announce.info_hash, f->batch.req[q - 1].announce.info_hash,
                                    SHOAL_HASH_LEN) == 0)
                    assert_true(r->announce.peer.port > f->batch.req[q - 1].announce.peer.port);
            }
            seen += f->batch.n;
            node_answer_all(f, socks[w]);
        }
        assert_int_equal(seen, 2 * PER);
        if (w == 0) {
            memcpy(ident0, f->ident, f->ident_len);
            ident0_len = f->ident_len;
        }
    }
    pump_until(f, 2 * n * PER, 2000);
    assert_int_equal(f->n_done, 2 * n * PER);
    for (size_t i = 0; i < f->n_done; i++)
        assert_string_equal(f->done[i].failure, "");

    /* Same advert in a new table: same sockets. */
    f->src.table = t2;
    f->src.version = 2;
    submit_announce(f, h[0], 500, 10); /* h[0]'s partition is worker 0's */
    assert_true(node_read(f, socks[0], 2000));
    assert_int_equal(f->ident_len, ident0_len);
    assert_memory_equal(f->ident, ident0, ident0_len);
    node_answer_all(f, socks[0]);
    pump_until(f, 2 * n * PER + 1, 2000);
    assert_int_equal(f->n_done, 2 * n * PER + 1);

    f->be.ops->destroy(f->be.self); /* publishes, and before the tables it holds */
    f->be.ops = NULL;
    router_node_stat_t st[2];
    assert_int_equal(router_node_stats(&f->counters, st, 2), 1);
    assert_string_equal(st[0].id, "w");
    assert_int_equal(st[0].requests, 2 * n * PER + 1);
    assert_int_equal(st[0].in_flight, 0);
    for (unsigned w = 0; w < n; w++)
        zmq_close(socks[w]);
    partition_table_destroy(&t);
    partition_table_destroy(&t2);
}

static void two_workers_share_the_partitions(void **state)
{
    spread_over_workers(*state, 2);
}

static void three_workers_share_the_partitions(void **state)
{
    spread_over_workers(*state, 3);
}

/* The in-flight limit is per node, over its sockets: a silent node with three workers holds
 * ROUTER_NODE_INFLIGHT slots in all, not three times that. */
static void a_silent_node_with_workers_holds_one_share(void **state)
{
    fixture_t *f = *state;
    void *socks[3];
    int port = bind_workers(f->ctx, socks, 3);
    assert_true(port > 0);
    partition_table_t *t = workers_table(port, 3, 5);
    f->src = (source_t){.table = t, .version = 1};
    assert_int_equal(open_router(f, 5000), 0);
    uint8_t h[3][SHOAL_HASH_LEN];
    hashes_per_worker(3, 1, h);
    for (uint32_t i = 0; i < ROUTER_NODE_INFLIGHT; i++)
        submit_announce(f, h[i % 3], i, 10);
    assert_int_equal(f->n_done, 0);
    for (uint32_t w = 0; w < 3; w++) {
        submit_announce(f, h[w], 99990 + w, 10);
        assert_int_equal(f->n_done, w + 1);
        assert_string_equal(f->done[w].failure, ROUTER_FAIL_TIMEOUT);
    }
    f->be.ops->destroy(f->be.self);
    f->be.ops = NULL;
    for (unsigned w = 0; w < 3; w++)
        zmq_close(socks[w]);
    partition_table_destroy(&t);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(announce_goes_to_its_owner_and_the_reply_comes_back),
        T(requests_of_one_cycle_go_as_one_batch_per_node),
        T(a_full_batch_is_sent_at_once),
        T(the_reply_releases_the_queue_as_one_batch),
        T(a_silent_node_holds_the_queue_only_briefly),
        T(scrape_is_split_by_owner_and_merged_in_request_order),
        T(unanswered_request_fails_retryably_at_its_deadline),
        T(reply_after_the_deadline_is_ignored),
        T(moved_refreshes_and_reroutes_with_the_new_table),
        T(moved_without_a_new_table_is_retried_then_fails),
        T(moved_scrape_part_is_regrouped_under_the_new_table),
        T(requests_of_a_dropped_node_go_to_the_new_owner),
        T(garbage_from_a_node_is_ignored),
        T(node_error_text_reaches_the_client),
        T(reply_of_the_wrong_shape_fails_the_request),
        T(a_silent_node_holds_at_most_its_share_of_slots),
        T(full_slot_table_fails_fast),
        T(full_scrape_table_fails_fast),
        T(no_table_fails_with_no_nodes),
        T(counters_are_published),
        T(per_node_counters_sum_over_routers),
        T(two_workers_share_the_partitions),
        T(three_workers_share_the_partitions),
        T(a_silent_node_with_workers_holds_one_share),
    };
#undef T
    return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
