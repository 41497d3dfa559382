/* SPDX-License-Identifier: MIT */
/* shoal-node-bench: node-only throughput. Sends request batches of announces to one shoal-node
 * over a DEALER socket as fast as the node answers, keeping `window` batches in flight, and
 * reports requests/s over the measured interval (after a warm-up).
 *
 *   shoal-node-bench --endpoint tcp://127.0.0.1:7000 [--batch 64] [--window 8] [--duration 10]
 *                    [--warmup 1] [--torrents 100000] [--peers 1000000] [--numwant 50]
 *                    [--seed-percent 10] [--scrape-percent 0] [--check 64] [--workers 1]
 *                    [--popular 0|1]
 * --workers N: the node has N workers, worker i's socket at the endpoint's port + i (nodesrv.h);
 * the DEALER connects to all N and deals the batches round-robin, as gateways spread partitions.
 * The node must own every partition (run it with --nodes ITSELF=...), or the figure counts
 * "moved" replies: every --check'th reply is decoded and its statuses counted.
 * Output: one human line on stderr and one JSON line on stdout.
 *
 * Workload: torrents drawn uniformly from --torrents random info-hashes, peers from --peers
 * random IPv4 addresses (port and peer id fixed per peer), event none, a --seed-percent share
 * of seeders: after the first pass this is a steady state of re-announces, as on a live tracker.
 * --popular 1: shoal-load's workload instead (tests/loadgen/lgwork.h with its defaults and seed
 * 1: torrents by popularity, each peer in its own swarm, events, 1 scrape per 100 announces of
 * 1..10 hashes, peers spread over 127.0.0.1-4 as shoal-load's four sockets), so a node core
 * compares with a standalone core under the same requests; --torrents, --peers and --numwant
 * still apply, --seed-percent and --scrape-percent do not. */
#include "cmsg.h"
#include "lgwork.h"
#include "members.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

typedef struct {
    const char *endpoint;
    unsigned batch, window, duration, warmup, torrents, peers, numwant, seed_pct, scrape_pct, check,
        workers, popular;
} args_t;

/* shoal-load's UDP sockets per worker: peer p announces from 127.0.0.(1 + p % 4). */
#define POPULAR_SOCKETS 4

static uint64_t rng_state = 0x243f6a8885a308d3ULL;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_args(int argc, char **argv, args_t *a)
{
    *a = (args_t){.batch = 64,
                  .window = 8,
                  .duration = 10,
                  .warmup = 1,
                  .torrents = 100000,
                  .peers = 1000000,
                  .numwant = 50,
                  .seed_pct = 10,
                  .check = 64,
                  .workers = 1};
    struct {
        const char *name;
        unsigned *v;
    } nums[] = {{"--batch", &a->batch},
                {"--window", &a->window},
                {"--duration", &a->duration},
                {"--warmup", &a->warmup},
                {"--torrents", &a->torrents},
                {"--peers", &a->peers},
                {"--numwant", &a->numwant},
                {"--seed-percent", &a->seed_pct},
                {"--scrape-percent", &a->scrape_pct},
                {"--check", &a->check},
                {"--workers", &a->workers},
                {"--popular", &a->popular}};
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            return -1;
        if (strcmp(argv[i], "--endpoint") == 0) {
            a->endpoint = argv[++i];
            continue;
        }
        bool found = false;
        for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
            if (strcmp(argv[i], nums[k].name) == 0) {
                *nums[k].v = (unsigned)strtoul(argv[++i], NULL, 10);
                found = true;
            }
        }
        if (!found)
            return -1;
    }
    if (!a->endpoint || a->batch < 1 || a->batch > CMSG_BATCH_MAX || a->window < 1 ||
        a->torrents < 1 || a->peers < 1 || a->numwant > SHOAL_NUMWANT_MAX || a->check < 1 ||
        a->workers < 1 || a->workers > MEMBERS_WORKERS_MAX || a->popular > 1 ||
        (a->popular && (a->numwant < 1 || a->numwant > 200)))
        return -1;
    return 0;
}

static cmsg_request_batch_t batch;
static uint8_t out[CMSG_REQUEST_BATCH_BOUND];
static cmsg_reply_batch_t replies;
static swarm_stats_t arena[CMSG_BATCH_MAX * SHOAL_SCRAPE_MAX];

static lgwork_t wl;
static lgwork_rng_t wl_rng;
static uint8_t scrape_hashes[CMSG_BATCH_MAX][LGWORK_SCRAPE_MAX * SHOAL_HASH_LEN];

/* Request i of the batch from shoal-load's workload (--popular 1). */
static void fill_popular(cmsg_request_t *r, unsigned i)
{
    if (lgwork_pick_kind(&wl, &wl_rng) == LGWORK_SCRAPE) {
        lgwork_scrape_t sc;
        lgwork_make_scrape(&wl, &wl_rng, &sc);
        memcpy(scrape_hashes[i], sc.hashes, (size_t)sc.n * SHOAL_HASH_LEN);
        r->kind = CMSG_SCRAPE;
        r->hashes = scrape_hashes[i];
        r->n_hashes = sc.n;
        return;
    }
    lgwork_announce_t la;
    lgwork_make_announce(&wl, &wl_rng, lgwork_rng_below(&wl_rng, wl.cfg.peers), &la);
    static const announce_event_t events[] = {
        [LGWORK_EVENT_NONE] = ANNOUNCE_NONE,
        [LGWORK_EVENT_COMPLETED] = ANNOUNCE_COMPLETED,
        [LGWORK_EVENT_STARTED] = ANNOUNCE_STARTED,
        [LGWORK_EVENT_STOPPED] = ANNOUNCE_STOPPED,
    };
    r->kind = CMSG_ANNOUNCE;
    announce_t *an = &r->announce;
    memcpy(an->info_hash, la.info_hash, SHOAL_HASH_LEN);
    memcpy(an->peer_id, la.peer.peer_id, SHOAL_HASH_LEN);
    an->peer.family = 4;
    memset(an->peer.addr, 0, sizeof(an->peer.addr));
    an->peer.addr[0] = 127;
    an->peer.addr[3] = (uint8_t)(1 + la.peer_index % POPULAR_SOCKETS);
    an->peer.port = la.peer.port;
    an->event = events[la.event];
    an->left = la.left;
    an->numwant = la.numwant;
    an->downloaded = la.downloaded;
    an->uploaded = la.uploaded;
    an->key = la.peer.key;
}

static void fill_batch(const args_t *a, const uint8_t *hashes, uint64_t batch_id)
{
    batch.batch_id = batch_id;
    batch.epoch = 0;
    batch.n = a->batch;
    for (unsigned i = 0; i < a->batch; i++) {
        cmsg_request_t *r = &batch.req[i];
        r->id = i;
        if (a->popular) {
            fill_popular(r, i);
            continue;
        }
        uint64_t t = rng() % a->torrents;
        if (a->scrape_pct && rng() % 100 < a->scrape_pct) {
            r->kind = CMSG_SCRAPE;
            r->hashes = hashes + t * SHOAL_HASH_LEN;
            r->n_hashes = 1;
            continue;
        }
        uint32_t p = (uint32_t)(rng() % a->peers);
        r->kind = CMSG_ANNOUNCE;
        announce_t *an = &r->announce;
        memcpy(an->info_hash, hashes + t * SHOAL_HASH_LEN, SHOAL_HASH_LEN);
        memset(an->peer_id, 0, sizeof(an->peer_id));
        memcpy(an->peer_id, &p, sizeof(p));
        an->peer.family = 4;
        uint32_t ip = 0x0a000000u + p; /* 10.x.y.z */
        an->peer.addr[0] = (uint8_t)(ip >> 24);
        an->peer.addr[1] = (uint8_t)(ip >> 16);
        an->peer.addr[2] = (uint8_t)(ip >> 8);
        an->peer.addr[3] = (uint8_t)ip;
        an->peer.port = (uint16_t)(1024 + p % 60000);
        an->event = ANNOUNCE_NONE;
        an->left = p % 100 < a->seed_pct ? 0 : 1000;
        an->numwant = (int32_t)a->numwant;
        an->downloaded = an->uploaded = 0;
        an->key = p;
    }
}

int main(int argc, char **argv)
{
    args_t a;
    if (parse_args(argc, argv, &a) != 0) {
        fprintf(stderr, "usage: shoal-node-bench --endpoint tcp://HOST:PORT [--batch N] "
                        "[--window N] [--duration S] [--warmup S] [--torrents N] [--peers N] "
                        "[--numwant N] [--seed-percent P] [--scrape-percent P] [--check N] "
                        "[--workers N] [--popular 0|1]\n");
        return 2;
    }
    if (a.popular) {
        const lgwork_config_t cfg = {.seed = 1,
                                     .torrents = a.torrents,
                                     .peers = a.peers,
                                     .pareto_shape = 0.5,
                                     .pareto_head = 0.002,
                                     .weight_announce = 100,
                                     .weight_scrape = 1,
                                     .numwant = (int32_t)a.numwant,
                                     .scrape_max = 10,
                                     .seeder_ratio = 0.75};
        const char *why = NULL;
        if (lgwork_init(&wl, &cfg, &why) != 0) {
            fprintf(stderr, "shoal-node-bench: --popular: %s\n", why);
            return 2;
        }
        lgwork_rng_seed(&wl_rng, 1);
    }
    /* The uniform workload's info-hashes (--popular derives its own). */
    size_t n_hash_bytes = a.popular ? 0 : (size_t)a.torrents * SHOAL_HASH_LEN;
    uint8_t *hashes = malloc(n_hash_bytes + 1);
    if (!hashes)
        return 1;
    for (size_t i = 0; i < n_hash_bytes; i++)
        hashes[i] = (uint8_t)rng();

    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, hwm = 100000;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    for (unsigned w = 0; w < a.workers; w++) {
        char ep[PARTITION_ENDPOINT_MAX];
        if ((w == 0 ? snprintf(ep, sizeof(ep), "%s", a.endpoint) < 0
                    : members_worker_endpoint(a.endpoint, w, ep, sizeof(ep)) != 0) ||
            zmq_connect(sock, ep) != 0) {
            fprintf(stderr, "connect worker %u of %s: %s\n", w, a.endpoint,
                    zmq_strerror(zmq_errno()));
            return 1;
        }
    }

    uint64_t next_id = 0, in_flight = 0, replies_seen = 0, measured = 0;
    uint64_t checked = 0, ok = 0, moved = 0, errors = 0, undecodable = 0;
    double start = now_s(), measure_from = start + a.warmup, end = measure_from + a.duration;
    double measure_start = 0;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    for (;;) {
        double t = now_s();
        if (t >= end)
            break;
        while (in_flight < a.window) {
            fill_batch(&a, hashes, next_id++);
            ssize_t len = cmsg_encode_requests(&batch, out, sizeof(out));
            if (len < 0 || zmq_send(sock, out, (size_t)len, 0) < 0) {
                fprintf(stderr, "send failed\n");
                return 1;
            }
            in_flight++;
        }
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, 1000);
        if (rc <= 0) {
            if (now_s() - t >= 1.0) {
                fprintf(stderr, "no reply for 1 s (is the node up at %s?)\n", a.endpoint);
                in_flight = 0; /* resend a window: the node may have dropped them */
            }
            continue;
        }
        while (zmq_msg_recv(&msg, sock, ZMQ_DONTWAIT) >= 0) {
            in_flight--;
            replies_seen++;
            if (measure_start == 0 && now_s() >= measure_from)
                measure_start = now_s();
            if (measure_start > 0)
                measured++;
            if (replies_seen % a.check == 0) {
                checked++;
                if (cmsg_decode_replies(zmq_msg_data(&msg), zmq_msg_size(&msg), &replies, arena,
                                        sizeof(arena) / sizeof(arena[0])) != CMSG_OK) {
                    undecodable++;
                    continue;
                }
                for (size_t i = 0; i < replies.n; i++) {
                    if (replies.rep[i].status == CMSG_STATUS_OK)
                        ok++;
                    else if (replies.rep[i].status == CMSG_STATUS_MOVED)
                        moved++;
                    else
                        errors++;
                }
            }
        }
    }
    double elapsed = now_s() - measure_start;
    double rps = measure_start > 0 ? (double)measured * a.batch / elapsed : 0;
    fprintf(stderr,
            "shoal-node-bench: %.0f requests/s (%.0f batches/s of %u, window %u) over %.1f s; "
            "checked %" PRIu64 " replies: %" PRIu64 " ok, %" PRIu64 " moved, %" PRIu64
            " errors, %" PRIu64 " undecodable\n",
            rps, rps / a.batch, a.batch, a.window, elapsed, checked, ok, moved, errors,
            undecodable);
    printf("{\"requests_per_s\":%.0f,\"batch\":%u,\"window\":%u,\"seconds\":%.2f,\"ok\":%" PRIu64
           ",\"moved\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"undecodable\":%" PRIu64 "}\n",
           rps, a.batch, a.window, elapsed, ok, moved, errors, undecodable);
    zmq_msg_close(&msg);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    free(hashes);
    return moved || errors || undecodable ? 1 : 0;
}
