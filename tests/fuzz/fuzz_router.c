/* SPDX-License-Identifier: MIT */
/* fuzz_router: the gateway's router against nodes that answer anything. The input is a script
 * of operations: submit announces and scrapes, turn the worker loop, let the fake nodes read
 * what was sent and answer it (correctly, with the wrong shape, the wrong id, "moved", an error,
 * twice, from the wrong node) or send raw bytes, and swap the membership table. The nodes are
 * ROUTER sockets on inproc endpoints in the router's context.
 *
 * Checked beyond "no crash, no leak, no undefined behaviour": done() runs at most once per
 * submitted request and never for an unknown tag; an announce answer has at most the numwant
 * asked; a scrape answer has exactly the hashes asked, in request order. */
#include "cmsg.h"
#include "router.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

#define MAX_TAGS   256
#define MAX_SEEN   512 /* requests the fake nodes remember */
#define N_HASHES   8   /* 4 owned by a and 4 by b in the a+b table */
#define MAX_SCRAPE 8

typedef struct {
    bool submitted, done;
    bool scrape;
    uint32_t numwant;
    size_t n_hashes;
    uint8_t hashes[MAX_SCRAPE][SHOAL_HASH_LEN];
} tag_t;

typedef struct {
    int node; /* 0: a, 1: b */
    uint32_t id;
    cmsg_kind_t kind;
    size_t n_hashes;
    uint8_t family;
} seen_t;

typedef struct {
    const partition_table_t *table;
    uint64_t version;
} source_t;

static void *ctx;
static void *nodes[2];
static partition_table_t *tables[3]; /* ab, a, b */
static uint8_t hashes[N_HASHES][SHOAL_HASH_LEN];
static source_t src;
static tag_t tags[MAX_TAGS];
static seen_t seen[MAX_SEEN];
static size_t n_seen;
static uint8_t ident[2][256];
static size_t ident_len[2];
static uint8_t buf[CMSG_REQUEST_BATCH_BOUND];
static cmsg_request_batch_t qb;
static cmsg_reply_batch_t rb;
static uint8_t peers[CMSG_BATCH_MAX][SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
static swarm_stats_t stats[CMSG_BATCH_MAX][SHOAL_SCRAPE_MAX];

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

static partition_table_t *table_of(const char *ids)
{
    partition_member_t m[2];
    size_t n = 0;
    memset(m, 0, sizeof(m));
    for (const char *p = ids; *p; p++, n++) {
        m[n].id[0] = *p;
        memcpy(m[n].endpoint, "inproc://fuzz-node-", 19);
        m[n].endpoint[19] = *p;
    }
    return partition_table_new(m, n, (uint64_t)n * 7 + (uint64_t)ids[0], NULL);
}

static void init(void)
{
    ctx = zmq_ctx_new();
    CHECK(ctx);
    for (int i = 0; i < 2; i++) {
        nodes[i] = zmq_socket(ctx, ZMQ_ROUTER);
        int zero = 0;
        zmq_setsockopt(nodes[i], ZMQ_LINGER, &zero, sizeof(zero));
        CHECK(zmq_bind(nodes[i], i ? "inproc://fuzz-node-b" : "inproc://fuzz-node-a") == 0);
    }
    tables[0] = table_of("ab");
    tables[1] = table_of("a");
    tables[2] = table_of("b");
    int a = partition_table_find(tables[0], "a");
    size_t na = 0, nb = 0;
    for (unsigned v = 0; v < 65536 && na + nb < N_HASHES; v += 13) {
        uint8_t h[SHOAL_HASH_LEN];
        memset(h, 0xa5, sizeof(h));
        h[0] = (uint8_t)(v >> 8);
        h[1] = (uint8_t)v;
        bool is_a = partition_owner(tables[0], partition_of(h)) == a;
        if (is_a && na < N_HASHES / 2)
            memcpy(hashes[na++], h, SHOAL_HASH_LEN);
        else if (!is_a && nb < N_HASHES / 2)
            memcpy(hashes[N_HASHES / 2 + nb++], h, SHOAL_HASH_LEN);
    }
    CHECK(na + nb == N_HASHES);
}

static void on_done(void *arg, uint32_t tag, const backend_reply_t *r)
{
    (void)arg;
    CHECK(tag < MAX_TAGS);
    tag_t *t = &tags[tag];
    CHECK(t->submitted && !t->done);
    t->done = true;
    if (r->failure) {
        CHECK(r->failure[0] != '\0');
        return;
    }
    if (!t->scrape) {
        CHECK(r->n_peers <= t->numwant);
        return;
    }
    CHECK(r->n_scrape == t->n_hashes);
    CHECK(memcmp(r->hashes, t->hashes, t->n_hashes * SHOAL_HASH_LEN) == 0);
}

typedef struct {
    const uint8_t *p, *end;
} reader_t;

static unsigned next(reader_t *r)
{
    return r->p < r->end ? *r->p++ : 0;
}

/* The fake nodes read everything queued to them and remember the requests. */
static void nodes_read(void)
{
    for (int i = 0; i < 2; i++) {
        for (;;) {
            int n = zmq_recv(nodes[i], ident[i], sizeof(ident[i]), ZMQ_DONTWAIT);
            if (n < 0)
                break;
            ident_len[i] = (size_t)n;
            int len = zmq_recv(nodes[i], buf, sizeof(buf), 0);
            CHECK(len > 0 && (size_t)len <= sizeof(buf));
            CHECK(cmsg_decode_requests(buf, (size_t)len, &qb) == CMSG_OK); /* the router's own */
            for (size_t k = 0; k < qb.n && n_seen < MAX_SEEN; k++) {
                seen[n_seen++] = (seen_t){i, qb.req[k].id, qb.req[k].kind, qb.req[k].n_hashes,
                                          qb.req[k].announce.peer.family};
            }
        }
    }
}

static void node_send(int i, const void *data, size_t len)
{
    if (ident_len[i] == 0)
        return;
    zmq_send(nodes[i], ident[i], ident_len[i], ZMQ_SNDMORE);
    zmq_send(nodes[i], data, len, ZMQ_DONTWAIT);
}

/* Answer up to 8 remembered requests in one batch, each as the script says. */
static void nodes_reply(reader_t *r)
{
    if (n_seen == 0)
        return;
    unsigned count = 1 + next(r) % 8;
    int from = -1;
    memset(&rb, 0, sizeof(rb));
    for (unsigned k = 0; k < count; k++) {
        const seen_t *s = &seen[next(r) % n_seen];
        unsigned how = next(r);
        if (from < 0)
            from = (how & 0x80) ? 1 - s->node : s->node;
        cmsg_reply_t *o = &rb.rep[rb.n];
        o->id = (how & 0x40) ? s->id ^ (uint32_t)next(r) : s->id;
        switch (how % 6) {
        case 0: /* as asked */
        case 1: /* as asked, with too many peers or the wrong count */
            o->status = CMSG_STATUS_OK;
            o->kind = s->kind;
            if (s->kind == CMSG_ANNOUNCE) {
                o->family = (how % 6 == 1 && (how & 0x20)) ? (uint8_t)(10 - s->family) : s->family;
                o->n_peers = how % 6 == 1 ? SHOAL_NUMWANT_MAX : next(r) % 4;
                o->peers = peers[rb.n];
            } else {
                o->n_scrape = how % 6 == 1 ? 1 + next(r) % SHOAL_SCRAPE_MAX : s->n_hashes;
                o->scrape = stats[rb.n];
            }
            break;
        case 2: /* the other kind */
            o->status = CMSG_STATUS_OK;
            o->kind = s->kind == CMSG_ANNOUNCE ? CMSG_SCRAPE : CMSG_ANNOUNCE;
            o->family = 4;
            o->n_scrape = 1;
            o->scrape = stats[rb.n];
            break;
        case 3:
        case 4:
            o->status = CMSG_STATUS_MOVED;
            o->epoch = next(r);
            break;
        default:
            o->status = CMSG_STATUS_ERROR;
            memcpy(o->error, "fuzz error", 11);
            break;
        }
        rb.n++;
    }
    ssize_t len = cmsg_encode_replies(&rb, buf, sizeof(buf));
    CHECK(len > 0);
    node_send(from, buf, (size_t)len);
}

static void turn(backend_t *be)
{
    be->ops->poll(be->self, on_done, NULL);
    be->ops->flush(be->self);
    be->ops->poll(be->self, on_done, NULL);
    be->ops->tick(be->self, on_done, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ctx)
        init();
    reader_t r = {data, data + size};
    memset(tags, 0, sizeof(tags));
    n_seen = 0;
    memset(ident_len, 0, sizeof(ident_len));
    src = (source_t){tables[0], 1};
    unsigned first = next(&r);
    router_config_t cfg = {
        .zmq_ctx = ctx,
        .tables = {src_current, src_release, src_version, NULL, &src},
        .timeout_ms = (first & 1) ? 1 : 60000,
    };
    backend_t be;
    CHECK(router_open(&cfg, 0, &be) == 0);
    uint32_t n_tags = 0;
    while (r.p < r.end) {
        unsigned op = next(&r);
        switch (op % 7) {
        case 0: { /* announce */
            if (n_tags == MAX_TAGS)
                break;
            tag_t *t = &tags[n_tags];
            announce_t a;
            memset(&a, 0, sizeof(a));
            memcpy(a.info_hash, hashes[next(&r) % N_HASHES], SHOAL_HASH_LEN);
            a.peer.family = (op & 0x80) ? 6 : 4;
            a.peer.port = 6881;
            t->numwant = next(&r) % (SHOAL_NUMWANT_MAX + 1);
            t->submitted = true;
            backend_req_t q = {
                .kind = BACKEND_ANNOUNCE, .tag = n_tags++, .announce = &a, .numwant = t->numwant};
            be.ops->submit(be.self, &q, 1, on_done, NULL);
            break;
        }
        case 1: { /* scrape */
            if (n_tags == MAX_TAGS)
                break;
            tag_t *t = &tags[n_tags];
            t->scrape = true;
            t->n_hashes = 1 + next(&r) % MAX_SCRAPE;
            for (size_t k = 0; k < t->n_hashes; k++)
                memcpy(t->hashes[k], hashes[next(&r) % N_HASHES], SHOAL_HASH_LEN);
            t->submitted = true;
            uint8_t copy[MAX_SCRAPE][SHOAL_HASH_LEN];
            memcpy(copy, t->hashes, sizeof(copy));
            backend_req_t q = {.kind = BACKEND_SCRAPE,
                               .tag = n_tags++,
                               .hashes = &copy[0][0],
                               .n_hashes = t->n_hashes};
            be.ops->submit(be.self, &q, 1, on_done, NULL);
            memset(copy, 0, sizeof(copy)); /* borrowed for submit() only */
            break;
        }
        case 2:
            turn(&be);
            break;
        case 3:
            turn(&be);
            nodes_read();
            break;
        case 4:
            nodes_reply(&r);
            turn(&be);
            break;
        case 5: { /* raw bytes from a node */
            uint8_t raw[64];
            size_t n = next(&r) % sizeof(raw);
            for (size_t k = 0; k < n; k++)
                raw[k] = (uint8_t)next(&r);
            node_send(op & 0x80 ? 1 : 0, raw, n);
            turn(&be);
            break;
        }
        default: /* the membership changes */
            src.table = tables[next(&r) % 3];
            src.version++;
            turn(&be);
            break;
        }
    }
    turn(&be);
    be.ops->destroy(be.self);
    /* Leave nothing queued for the next input. */
    nodes_read();
    return 0;
}
