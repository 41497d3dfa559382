/* SPDX-License-Identifier: MIT */
/* shoal-node: one partition-owning node of a shoal cluster. Serves gateways' request batches over
 * ZeroMQ from its swarm repository, registers itself in Redis (or reads a static member list),
 * answers "moved" for partitions it does not own, and expires peers.
 *
 * Threads: the main thread parses options, starts everything, then waits for SIGTERM/SIGINT and
 * once a second logs garbage counters (with backoff); the membership actor (Redis only); the
 * server's worker (and proxy) actors; one sweeper thread; with Redis and --snapshot-interval > 0,
 * the keeper thread (snapshots, restore, handover: keeper.h). Signals are blocked in every thread
 * and taken by sigtimedwait() in main. A clean exit hands the partitions over, deregisters from
 * Redis and returns 0. */
#include "cmsg.h"
#include "keeper.h"
#include "log.h"
#include "membership.h"
#include "nodesrv.h"
#include "opts.h"
#include "repo.h"
#include "sweeper.h"

#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* czmq.h pulls in <syslog.h>, whose LOG_INFO and LOG_DEBUG macros would shadow log.h's levels. */
#undef LOG_INFO
#undef LOG_DEBUG

extern char **environ;

typedef struct {
    const char *id;
    const char *bind;
    const char *advertise;
    const char *redis;
    const char *nodes;
    uint32_t workers;
    uint32_t heartbeat_ms;
    uint32_t member_ttl_ms;
    uint32_t snapshot_ms;
    uint32_t numwant;
    uint32_t peer_timeout;
    uint32_t max_torrents;
    uint32_t max_peers;
    uint32_t memory_mib;
    uint32_t stripe_bits;
    const char *log_level;
} node_config_t;

#define OPT(name, meta, type, field, lo, hi, help)                                                 \
    {                                                                                              \
        name, meta, type, offsetof(node_config_t, field), lo, hi, help                             \
    }

static const opts_spec_t node_opts[] = {
    OPT("id", "ID", OPTS_STRING, id, 0, 0,
        "this node's id, stable across restarts (e.g. the pod name); required"),
    OPT("bind", "tcp://ADDR:PORT", OPTS_STRING, bind, 0, 0, "ZeroMQ ROUTER endpoint to bind"),
    OPT("advertise", "tcp://HOST:PORT", OPTS_STRING, advertise, 0, 0,
        "endpoint gateways connect to (default: --bind)"),
    OPT("redis", "redis://HOST:PORT", OPTS_STRING, redis, 0, 0,
        "membership in Redis (or give --nodes)"),
    OPT("nodes", "ID=tcp://HOST:PORT,..", OPTS_STRING, nodes, 0, 0,
        "static member list, this node included (no Redis)"),
    OPT("workers", "N", OPTS_UINT, workers, 1, 1024, "serving threads"),
    OPT("heartbeat-interval", "MS", OPTS_UINT, heartbeat_ms, 10, 600000,
        "membership heartbeat and poll period"),
    OPT("member-ttl", "MS", OPTS_UINT, member_ttl_ms, 20, 3600000,
        "a member not heard from for this long is dropped"),
    OPT("snapshot-interval", "MS", OPTS_UINT, snapshot_ms, 0, 3600000,
        "write changed partitions to Redis this often, for failover (0: never; needs --redis)"),
    OPT("numwant", "N", OPTS_UINT, numwant, 0, SHOAL_NUMWANT_MAX,
        "peers per reply when the request does not say"),
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
    OPT("log-level", "LEVEL", OPTS_STRING, log_level, 0, 0, "error, warn, info or debug"),
};
#define N_OPTS (sizeof(node_opts) / sizeof(node_opts[0]))

/* Membership and keeper lines go to the daemon log. */
static void module_log(void *arg, int level, const char *msg)
{
    (void)arg;
    log_msg((log_level_t)level, "%s", msg);
}

static void report_expired(void *arg, size_t removed)
{
    (void)arg;
    log_msg(LOG_DEBUG, "expired %zu peers", removed);
}

/* ---- the keeper's view of the membership ----------------------------------------------------- */

typedef struct {
    membership_t *members;
    const char *self_id;
    keeper_t *keeper; /* set once the keeper exists */
} node_ctx_t;

static bool view_owned(void *arg, uint64_t mine[REPO_DIRTY_WORDS])
{
    node_ctx_t *c = arg;
    const partition_table_t *t = membership_current(c->members);
    if (!t)
        return false;
    int me = partition_table_find(t, c->self_id);
    for (uint32_t p = 0; me >= 0 && p < PARTITION_COUNT; p++)
        if (partition_owner(t, p) == (uint16_t)me)
            mine[p >> 6] |= UINT64_C(1) << (p & 63);
    membership_release(c->members, &t);
    return true;
}

static uint64_t view_version(void *arg)
{
    node_ctx_t *c = arg;
    return membership_version(c->members);
}

static bool view_alive(void *arg, const char *id)
{
    node_ctx_t *c = arg;
    const partition_table_t *t = membership_current(c->members);
    bool alive = t && partition_table_find(t, id) >= 0;
    membership_release(c->members, &t);
    return alive;
}

static bool view_lease(void *arg, uint64_t *gaps)
{
    node_ctx_t *c = arg;
    return membership_lease(c->members, gaps);
}

static void on_table(void *arg, const partition_table_t *table)
{
    (void)table;
    node_ctx_t *c = arg;
    keeper_t *k = __atomic_load_n(&c->keeper, __ATOMIC_ACQUIRE);
    if (k)
        keeper_notify(k);
}

/* ---- helpers -------------------------------------------------------------------------------- */

/* A wildcard address (*, 0.0.0.0, [::]): nobody can connect to that. */
static bool wildcard_endpoint(const char *ep)
{
    return strncmp(ep, "tcp://*:", 8) == 0 || strncmp(ep, "tcp://0.0.0.0:", 14) == 0 ||
           strncmp(ep, "tcp://[::]:", 11) == 0;
}

/* Garbage on the socket: logged when it grows, at most once per doubling interval (1 s .. 64 s)
 * while it keeps coming, back to 1 s after a quiet interval. */
typedef struct {
    uint64_t logged;
    time_t next;
    time_t interval;
} garbage_log_t;

static void log_garbage(garbage_log_t *g, const nodesrv_stats_t *st)
{
    time_t now = (time_t)sweeper_now();
    if (st->garbage == g->logged) {
        if (now >= g->next + g->interval)
            g->interval = 1;
        return;
    }
    if (now < g->next)
        return;
    const char *why = st->last_garbage < 0 ? "not [identity][payload]"
                                           : cmsg_strerror((cmsg_err_t)st->last_garbage);
    log_msg(LOG_WARN, "dropped %llu garbage messages on the socket (%llu total; last: %s)",
            (unsigned long long)(st->garbage - g->logged), (unsigned long long)st->garbage, why);
    g->logged = st->garbage;
    g->next = now + g->interval;
    g->interval = g->interval >= 64 ? 64 : g->interval * 2;
}

int main(int argc, char **argv)
{
    /* Signals are ours (sigtimedwait below), not czmq's. */
    zsys_handler_set(NULL);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    node_config_t cfg = {
        .id = "",
        .bind = "tcp://0.0.0.0:7000",
        .advertise = "",
        .redis = "",
        .nodes = "",
        .workers = cores > 0 ? (uint32_t)cores : 1,
        .heartbeat_ms = MEMBERSHIP_HEARTBEAT_MS_DEFAULT,
        .member_ttl_ms = MEMBERSHIP_TTL_MS_DEFAULT,
        .snapshot_ms = 1000,
        .numwant = SHOAL_NUMWANT_DEF,
        .peer_timeout = 2700,
        .max_torrents = 5000000,
        .max_peers = 100000,
        .memory_mib = 4096,
        .stripe_bits = 8,
        .log_level = "info",
    };
    char err[512];
    int cli = opts_cli(
        "shoal-node", "a partition-owning node of a shoal tracker cluster",
        "shoal-node --id ID (--redis redis://HOST:PORT | --nodes ID=tcp://H:P,..) [options]",
        node_opts, N_OPTS, &cfg, sizeof(cfg), argc, argv);
    if (cli >= 0)
        return cli;
    log_level_t level;
    if (log_level_parse(cfg.log_level, &level) != 0) {
        fprintf(stderr, "shoal-node: --log-level must be error, warn, info or debug\n");
        return 2;
    }
    log_set_level(level);
    if (!*cfg.id) {
        fprintf(stderr, "shoal-node: --id is required (see --help)\n");
        return 2;
    }
    if (!*cfg.redis == !*cfg.nodes) {
        fprintf(stderr, "shoal-node: give exactly one of --redis and --nodes\n");
        return 2;
    }
    if (strncmp(cfg.bind, "tcp://", 6) != 0) {
        fprintf(stderr, "shoal-node: --bind must be tcp://ADDR:PORT\n");
        return 2;
    }
    const char *advertise = *cfg.advertise ? cfg.advertise : cfg.bind;
    if (*cfg.redis && wildcard_endpoint(advertise)) {
        fprintf(stderr,
                "shoal-node: --bind %s is a wildcard address: give --advertise "
                "tcp://HOST:PORT that gateways can reach\n",
                cfg.bind);
        return 2;
    }

    /* Block the signals before any thread starts, so every thread inherits the mask. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    node_ctx_t ctx = {.self_id = cfg.id};
    membership_config_t mc = {
        .redis_url = *cfg.redis ? cfg.redis : NULL,
        .static_nodes = *cfg.nodes ? cfg.nodes : NULL,
        .self_id = cfg.id,
        .self_endpoint = advertise,
        .heartbeat_ms = cfg.heartbeat_ms,
        .ttl_ms = cfg.member_ttl_ms,
        .log = module_log,
        .on_change = on_table,
        .change_arg = &ctx,
    };
    membership_t *members = membership_new(&mc, err, sizeof(err));
    if (!members) {
        fprintf(stderr, "shoal-node: membership: %s\n", err);
        return 2;
    }
    repo_limits_t limits = {
        .max_torrents = cfg.max_torrents,
        .max_peers_per_swarm = cfg.max_peers,
        .memory_budget = (uint64_t)cfg.memory_mib << 20,
        .peer_timeout_s = cfg.peer_timeout,
    };
    repo_t *repo = repo_new(cfg.stripe_bits, &limits);
    if (!repo) {
        fprintf(stderr, "shoal-node: out of memory creating the repository\n");
        membership_destroy(&members);
        return 1;
    }
    ctx.members = members;
    keeper_t *keeper = NULL;
    if (*cfg.redis && cfg.snapshot_ms > 0) {
        keeper_config_t kc = {
            .redis_url = cfg.redis,
            .self_id = cfg.id,
            .repo = repo,
            .view = {.arg = &ctx,
                     .owned = view_owned,
                     .version = view_version,
                     .alive = view_alive,
                     .lease = view_lease},
            .interval_ms = cfg.snapshot_ms,
            .handover_ms = cfg.member_ttl_ms,
            .log = module_log,
        };
        keeper = keeper_new(&kc, err, sizeof(err));
        if (!keeper) {
            fprintf(stderr, "shoal-node: snapshots: %s\n", err);
            repo_destroy(&repo);
            membership_destroy(&members);
            return 2;
        }
        __atomic_store_n(&ctx.keeper, keeper, __ATOMIC_RELEASE);
    }
    nodesrv_config_t sc = {
        .keeper = keeper,
        .bind = cfg.bind,
        .workers = cfg.workers,
        .repo = repo,
        .membership = members,
        .self_id = cfg.id,
        .numwant_default = cfg.numwant,
    };
    nodesrv_t *srv = nodesrv_new(&sc, err, sizeof(err));
    if (!srv) {
        fprintf(stderr, "shoal-node: %s\n", err);
        keeper_destroy(&keeper);
        repo_destroy(&repo);
        membership_destroy(&members);
        return 1;
    }
    sweeper_t *sweeper = NULL;
    err[0] = '\0';
    if (nodesrv_start(srv, err, sizeof(err)) != 0 || membership_start(members) != 0 ||
        (keeper && keeper_start(keeper) != 0) ||
        !(sweeper = sweeper_start(repo, cfg.peer_timeout, report_expired, NULL))) {
        fprintf(stderr, "shoal-node: could not start: %s\n", *err ? err : "thread creation");
        nodesrv_destroy(&srv);
        membership_stop(members);
        keeper_destroy(&keeper);
        membership_destroy(&members);
        repo_destroy(&repo);
        return 1;
    }
    log_msg(LOG_INFO,
            "shoal-node %s id %s serving %s (advertised %s) with %u workers, %zu stripes, "
            "membership %s, snapshots %s",
            SHOAL_VERSION, cfg.id, nodesrv_endpoint(srv), advertise, cfg.workers,
            repo_stripes(repo), *cfg.redis ? cfg.redis : "static", keeper ? "on" : "off");

    garbage_log_t glog = {.interval = 1};
    int sig;
    for (;;) {
        struct timespec tick = {.tv_sec = 1};
        sig = sigtimedwait(&sigs, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM)
            break;
        nodesrv_stats_t st;
        nodesrv_stats(srv, &st);
        log_garbage(&glog, &st);
    }
    log_msg(LOG_INFO, "signal %d: shutting down", sig);
    /* A planned handover: say we are leaving (acquirers then wait for our snapshots), leave the
     * member set so gateways route elsewhere while we still answer, then write every partition
     * with the release mark (answering "moved" from then on), then stop. */
    if (keeper)
        keeper_leave(keeper);
    membership_stop(members);
    if (keeper)
        keeper_stop(keeper, true);
    nodesrv_stop(srv);
    sweeper_stop(&sweeper);

    nodesrv_stats_t st;
    nodesrv_stats(srv, &st);
    repo_totals_t tot;
    repo_totals(repo, &tot);
    log_msg(LOG_INFO,
            "served %llu batches: %llu requests, %llu announces, %llu scrapes, %llu moved, "
            "%llu errors; %llu garbage, %llu replies dropped; %llu torrents, %llu peers",
            (unsigned long long)st.batches, (unsigned long long)st.requests,
            (unsigned long long)st.announces, (unsigned long long)st.scrapes,
            (unsigned long long)st.moved, (unsigned long long)st.errors,
            (unsigned long long)st.garbage, (unsigned long long)st.replies_dropped,
            (unsigned long long)tot.torrents, (unsigned long long)tot.peers);
    if (keeper) {
        char line[512];
        keeper_describe(keeper, line, sizeof(line));
        log_msg(LOG_INFO, "%s", line);
    }
    nodesrv_destroy(&srv);
    keeper_destroy(&keeper);
    membership_destroy(&members);
    repo_destroy(&repo);
    return 0;
}
