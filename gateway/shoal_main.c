/* SPDX-License-Identifier: MIT */
/* shoal: the standalone tracker. The gateway's UDP and HTTP front ends with the node's swarm
 * repository plugged in as an in-process backend: no ZeroMQ hop, one process, and no Redis
 * unless --redis is given: then the keeper (node/keeper.h) snapshots the swarms there, as a node
 * owning every partition, and restores them at the next start, so a restart loses nothing.
 *
 * Threads: the main thread parses options, opens the sockets, then only waits for SIGTERM or
 * SIGINT; N front-end workers serve clients; one sweeper expires peers stripe by stripe; with
 * --redis, the keeper thread. */
#include "feopts.h"
#include "frontend.h"
#include "keeper.h"
#include "log.h"
#include "opts.h"
#include "repo.h"
#include "sweeper.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct {
    feopts_t fe; /* the front-end options shared with shoal-gateway */
    uint32_t peer_timeout;
    uint32_t max_torrents;
    uint32_t max_peers;
    uint32_t memory_mib;
    uint32_t stripe_bits;
    const char *redis;
    uint32_t snapshot_ms;
} shoal_config_t;

#define OPT(name, meta, type, field, lo, hi, help)                                                 \
    {                                                                                              \
        name, meta, type, offsetof(shoal_config_t, field), lo, hi, help                            \
    }

/* The repository's options; the front end's come from feopts_spec(). */
static const opts_spec_t repo_opts[] = {
    OPT("peer-timeout", "S", OPTS_UINT, peer_timeout, 1, 604800,
        "forget a peer not heard from for this long"),
    OPT("max-torrents", "N", OPTS_UINT, max_torrents, 1, 0xffffffffu,
        "most swarms kept; announces for new ones are refused beyond it"),
    OPT("max-peers", "N", OPTS_UINT, max_peers, 1, 0xffffffffu,
        "most peers kept per swarm and address family"),
    OPT("memory", "MIB", OPTS_UINT, memory_mib, 16, 1048576,
        "memory budget for swarms and peers, MiB"),
    OPT("stripes", "BITS", OPTS_UINT, stripe_bits, 0, 16,
        "the repository has 2^BITS independently locked stripes"),
    OPT("redis", "redis://HOST:PORT", OPTS_STRING, redis, 0, 0,
        "keep snapshots of the swarms in Redis, so a restart loses none"),
    OPT("snapshot-interval", "MS", OPTS_UINT, snapshot_ms, 1, 3600000,
        "with --redis: write changed swarms this often"),
};
#define RESTORE_WAIT_MS 30000
#define N_REPO_OPTS     (sizeof(repo_opts) / sizeof(repo_opts[0]))
#define N_OPTS          (FEOPTS_N_SPECS + N_REPO_OPTS)

/* ---- the in-process backend --------------------------------------------------------------- */

typedef struct {
    repo_t *repo;
    uint8_t peers[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    swarm_stats_t stats[SHOAL_SCRAPE_MAX];
} local_t;

static void local_submit(void *self, const backend_req_t *reqs, size_t n, backend_done_fn done,
                         void *arg)
{
    local_t *l = self;
    uint32_t now = sweeper_now();
    for (size_t i = 0; i < n; i++) {
        const backend_req_t *r = &reqs[i];
        backend_reply_t reply = {0};
        if (r->kind == BACKEND_ANNOUNCE) {
            repo_result_t res;
            size_t numwant = r->numwant > SHOAL_NUMWANT_MAX ? SHOAL_NUMWANT_MAX : r->numwant;
            if (repo_announce(l->repo, r->announce, now, numwant, l->peers, &res) != REPO_OK) {
                reply.failure = "tracker is full: no new torrents accepted now";
                reply.retry_in = 10;
            } else {
                reply.stats = res.stats;
                reply.peers = l->peers;
                reply.n_peers = res.n_peers;
            }
        } else {
            size_t k = r->n_hashes > SHOAL_SCRAPE_MAX ? SHOAL_SCRAPE_MAX : r->n_hashes;
            for (size_t h = 0; h < k; h++)
                repo_scrape(l->repo, r->hashes + h * SHOAL_HASH_LEN, &l->stats[h]);
            reply.scrape = l->stats;
            reply.hashes = r->hashes;
            reply.n_scrape = k;
        }
        done(arg, r->tag, &reply);
    }
}

static void local_destroy(void *self)
{
    free(self);
}

static const backend_ops_t local_ops = {.submit = local_submit, .destroy = local_destroy};

static int local_open(void *arg, unsigned worker, backend_t *out)
{
    (void)worker;
    local_t *l = calloc(1, sizeof(*l));
    if (!l)
        return -1;
    l->repo = arg;
    out->ops = &local_ops;
    out->self = l;
    return 0;
}

/* ---- snapshots (--redis): the keeper owns every partition ------------------------------------ */

/* The owner id written into snapshots and fences. */
#define STANDALONE_ID "standalone"

static void keeper_log(void *arg, int level, const char *msg)
{
    (void)arg;
    log_msg((log_level_t)level, "%s", msg);
}

static void report_expired(void *arg, size_t removed)
{
    (void)arg;
    log_msg(LOG_DEBUG, "expired %zu peers", removed);
}

/* ---- main ----------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    shoal_config_t cfg = {
        .peer_timeout = 2700,
        .max_torrents = 5000000,
        .max_peers = 100000,
        .memory_mib = 4096,
        .stripe_bits = 8,
        .redis = "",
        .snapshot_ms = 1000,
    };
    feopts_defaults(&cfg.fe);
    opts_spec_t spec[N_OPTS];
    size_t n = feopts_spec(spec, offsetof(shoal_config_t, fe));
    memcpy(spec + n, repo_opts, sizeof(repo_opts));
    char err[256];
    int cli = opts_cli("shoal", "a fast BitTorrent tracker (UDP BEP 15, HTTP BEP 3/23/7/48)",
                       "shoal [options]", spec, N_OPTS, &cfg, sizeof(cfg), argc, argv);
    if (cli >= 0)
        return cli;
    frontend_config_t fc;
    bool random_secret;
    if (feopts_apply(&cfg.fe, &fc, &random_secret, err, sizeof(err)) != 0) {
        fprintf(stderr, "shoal: %s\n", err);
        return 2;
    }
    fc.backend_open = local_open;
    feopts_raise_fd_limit(cfg.fe.http_max_conns);

    repo_limits_t limits = {
        .max_torrents = cfg.max_torrents,
        .max_peers_per_swarm = cfg.max_peers,
        .memory_budget = (uint64_t)cfg.memory_mib << 20,
        .peer_timeout_s = cfg.peer_timeout,
    };
    repo_t *repo = repo_new(cfg.stripe_bits, &limits);
    if (!repo) {
        fprintf(stderr, "shoal: out of memory creating the repository\n");
        return 1;
    }
    fc.backend_arg = repo;
    keeper_t *keeper = NULL;
    if (*cfg.redis) {
        keeper_config_t kc = {
            .redis_url = cfg.redis,
            .self_id = STANDALONE_ID,
            .repo = repo,
            .view = keeper_view_all(),
            .interval_ms = cfg.snapshot_ms,
            .log = keeper_log,
        };
        keeper = keeper_new(&kc, err, sizeof(err));
        if (!keeper) {
            fprintf(stderr, "shoal: --redis: %s\n", err);
            repo_destroy(&repo);
            return 2;
        }
    }

    frontend_t *fe = frontend_new(&fc, err, sizeof(err));
    sodium_memzero(fc.secret, sizeof(fc.secret));
    if (!fe) {
        fprintf(stderr, "shoal: %s\n", err);
        keeper_destroy(&keeper);
        repo_destroy(&repo);
        return 1;
    }

    /* Signals are taken by sigwait() in this thread only; workers inherit the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    sweeper_t *sweeper = sweeper_start(repo, cfg.peer_timeout, report_expired, NULL);
    if (!sweeper) {
        fprintf(stderr, "shoal: could not start the expiry thread\n");
        frontend_destroy(&fe);
        keeper_destroy(&keeper);
        repo_destroy(&repo);
        return 1;
    }
    if (keeper) {
        /* Restore before answering (the sockets are open: clients wait, nothing is lost). If
         * Redis is away, serve anyway; the keeper merges the snapshots when it comes back. */
        if (keeper_start(keeper) != 0) {
            fprintf(stderr, "shoal: could not start the snapshot thread\n");
            sweeper_stop(&sweeper);
            frontend_destroy(&fe);
            keeper_destroy(&keeper);
            repo_destroy(&repo);
            return 1;
        }
        if (!keeper_wait_restored(keeper, RESTORE_WAIT_MS))
            log_msg(LOG_WARN, "snapshots not restored within %u ms; serving, restoring later",
                    RESTORE_WAIT_MS);
    }
    if (frontend_start(fe, err, sizeof(err)) != 0) {
        fprintf(stderr, "shoal: %s\n", err);
        sweeper_stop(&sweeper);
        frontend_destroy(&fe);
        keeper_destroy(&keeper);
        repo_destroy(&repo);
        return 1;
    }
    char where[512];
    frontend_describe(fe, where, sizeof(where));
    log_msg(LOG_INFO, "shoal %s serving %s with %u workers, %zu stripes%s", SHOAL_VERSION, where,
            cfg.fe.workers, repo_stripes(repo), keeper ? ", snapshots in redis" : "");

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    log_msg(LOG_INFO, "signal %d: shutting down", sig);
    frontend_stop(fe);
    sweeper_stop(&sweeper);
    if (keeper) {
        keeper_stop(keeper, true); /* the last changes, so the next start has everything */
        char line[512];
        keeper_describe(keeper, line, sizeof(line));
        log_msg(LOG_INFO, "%s", line);
    }

    frontend_stats_t st;
    frontend_stats(fe, &st);
    repo_totals_t tot;
    repo_totals(repo, &tot);
    log_msg(LOG_INFO,
            "served udp connect=%llu announce=%llu scrape=%llu errors=%llu dropped=%llu, "
            "http announce=%llu scrape=%llu errors=%llu connections=%llu refused=%llu; "
            "%llu torrents, %llu peers",
            (unsigned long long)st.udp_connect, (unsigned long long)st.udp_announce,
            (unsigned long long)st.udp_scrape, (unsigned long long)st.udp_errors,
            (unsigned long long)st.udp_dropped, (unsigned long long)st.http_announce,
            (unsigned long long)st.http_scrape, (unsigned long long)st.http_errors,
            (unsigned long long)st.http_accepted, (unsigned long long)st.http_refused,
            (unsigned long long)tot.torrents, (unsigned long long)tot.peers);
    frontend_destroy(&fe);
    keeper_destroy(&keeper);
    repo_destroy(&repo);
    return 0;
}
