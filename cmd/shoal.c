/* SPDX-License-Identifier: MIT */
/* shoal: the standalone tracker. The gateway's UDP and HTTP front ends with the node's swarm
 * repository plugged in as an in-process backend (inproc.h): no ZeroMQ hop, one process, and no
 * Redis unless --redis is given: then the keeper (node/keeper.h) snapshots the swarms there, as
 * a node owning every partition, and restores them at the next start, so a restart loses nothing.
 *
 * Threads: the main thread parses options, opens the sockets, then only waits for signals; N
 * front-end workers serve clients; one sweeper expires peers stripe by stripe; with --redis, the
 * keeper thread. */
#include "daemon.h"
#include "feopts.h"
#include "frontend.h"
#include "inproc.h"
#include "keeper.h"
#include "memberstore.h"
#include "ops.h"
#include "ops_access.h"
#include "ops_fe.h"
#include "ops_repo.h"
#include "redisopts.h"
#include "repo.h"
#include "repoopts.h"
#include "slog.h"
#include "sweeper.h"

#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    daemon_opts_t daemon;
    feopts_t fe;     /* shared with shoal-gateway */
    repoopts_t repo; /* shared with shoal-node */
    redisopts_t redis;
    opsopts_t ops; /* --admin, --admin-token-file */
    uint32_t snapshot_ms;
} shoal_config_t;

#define OPT(...) OPTS_SPEC(shoal_config_t, __VA_ARGS__)

static const opts_spec_t own_opts[] = {
    OPT("snapshot-interval", "MS", OPTS_UINT, snapshot_ms, 1, 3600000,
        "with --redis: write changed swarms this often"),
};
/* How long clients may wait for the restore at start while Redis answers (it takes ~0.15 s per
 * million peers); with Redis unreachable, serving starts at once. */
#define RESTORE_WAIT_MS 30000

/* How long the check for a live cluster may wait for Redis, and how long the restore may wait for
 * a Redis that has not answered at all: together under a second, so clients are answered within
 * a second of the start whatever Redis does. (A Redis that answers makes the restore wait for the
 * snapshots, up to RESTORE_WAIT_MS.) */
#define LIVE_CHECK_MS 300
#define NO_ANSWER_MS  400

/* The admin listener's default: loopback (its reads are open), one above the tracker's port. */
#define ADMIN_DEFAULT "127.0.0.1:6970"

/* A front-end worker that has not gone round its loop in this long is stuck: /healthz fails
 * (workers turn at least once a second). */
#define STALL_MS 10000

/* The owner id written into snapshots and fences. */
#define STANDALONE_ID "standalone"

static void report_expired(void *arg, size_t removed)
{
    (void)arg;
    slog_msg(SLOG_DEBUG, "expired %zu peers", removed);
}

static void log_served(const frontend_t *fe, repo_t *repo)
{
    frontend_stats_t st;
    frontend_stats(fe, &st);
    repo_totals_t tot;
    repo_totals(repo, &tot);
    slog_msg(SLOG_INFO,
             "served udp connect=%llu announce=%llu scrape=%llu errors=%llu dropped=%llu, "
             "http announce=%llu scrape=%llu errors=%llu connections=%llu refused=%llu; "
             "%llu torrents, %llu peers",
             (unsigned long long)st.udp_connect, (unsigned long long)st.udp_announce,
             (unsigned long long)st.udp_scrape, (unsigned long long)st.udp_errors,
             (unsigned long long)st.udp_dropped, (unsigned long long)st.http_announce,
             (unsigned long long)st.http_scrape, (unsigned long long)st.http_errors,
             (unsigned long long)st.http_accepted, (unsigned long long)st.http_refused,
             (unsigned long long)tot.torrents, (unsigned long long)tot.peers);
}

/* A standalone tracker must not share a namespace with a live cluster (an operator who meant to
 * start a node, or gave the wrong Redis): refuse to start (printed, -1); so too when Redis refuses
 * the credentials. If Redis cannot be reached now, say so and go on: the standalone's keys are its
 * own, it cannot disturb a cluster. */
static int refuse_live_cluster(const daemon_t *d, const redisopts_t *r)
{
    char cluster[REDISOPTS_PREFIX_MAX], ids[256], err[512];
    redisopts_cluster_prefix(r, cluster);
    const char *pwfile = redisopts_password_file(r);
    /* Credentials Redis refuses are a configuration error; a Redis that does not answer is not
     * (and the check below would wait for it again). */
    int up = ops_redis_setup(r, LIVE_CHECK_MS, err, sizeof(err));
    if (up != 0) {
        if (up < 0)
            daemon_fail(d, 2, "%s", err);
        return up < 0 ? -1 : 0;
    }
    int n = memberstore_probe(r->redis, pwfile, cluster, LIVE_CHECK_MS, ids, sizeof(ids), err,
                              sizeof(err));
    if (n < 0) {
        slog_msg(SLOG_WARN, "--redis: cannot check for a live cluster '%s' now: %s", r->cluster,
                 err);
        return 0;
    }
    if (n == 0)
        return 0;
    daemon_fail(d, 2,
                "--redis: cluster '%s' has %d live nodes in this Redis (%s): a standalone tracker "
                "does not share a cluster's namespace; give --cluster another name (or use another "
                "Redis or DB), or start shoal-node instead",
                r->cluster, n, ids);
    return -1;
}

/* Everything main starts; stop_all() stops and frees what is there, in reverse order. */
typedef struct {
    repo_t *repo;
    keeper_t *keeper;
    frontend_t *fe;
    bool serving; /* frontend_start() succeeded */
    sweeper_t *sweeper;
    access_t *access;         /* the front end's access list; outlives it */
    ops_access_t *access_api; /* its API, reload and (with --redis) Redis store */
    ops_t *ops;               /* the admin listener; reads the parts above, set before it started */
    sentinelwatch_t *watch;   /* with a redis-sentinel:// URL: follows the master's switches */
    atomic_bool ready;    /* serving, with the snapshots restored (or Redis found unreachable) */
    uint32_t snapshot_ms; /* the keeper's period, for /healthz */
} parts_t;

static void collect(void *arg, metrics_t *m)
{
    parts_t *p = arg;
    ops_fe_metrics(m, p->fe);
    ops_access_metrics(m, p->access_api);
    ops_repo_metrics(m, p->repo);
    if (p->keeper)
        ops_keeper_metrics(m, p->keeper);
    ops_redis_sentinel(m, p->watch);
}

static bool alive(void *arg, char *why, size_t len)
{
    parts_t *p = arg;
    if (p->keeper && !ops_keeper_alive(p->keeper, p->snapshot_ms, why, len))
        return false;
    if (!atomic_load(&p->ready))
        return true; /* restoring: the workers have not started */
    return ops_fe_alive(p->fe, STALL_MS, why, len);
}

static bool ready(void *arg, char *why, size_t len)
{
    parts_t *p = arg;
    if (atomic_load(&p->ready))
        return true;
    snprintf(why, len, "%s", p->keeper ? "restoring the snapshots" : "starting");
    return false;
}

static int stop_all(parts_t *p, int rc)
{
    ops_destroy(&p->ops); /* first: its handlers read the other parts */
    sweeper_stop(&p->sweeper);
    frontend_destroy(&p->fe);
    ops_access_destroy(&p->access_api);
    access_destroy(&p->access);
    keeper_destroy(&p->keeper);
    sentinelwatch_destroy(&p->watch);
    repo_destroy(&p->repo);
    return rc;
}

/* Restore before answering (the sockets are open: clients wait, nothing is lost), unless Redis
 * cannot be reached: then serve at once; the keeper merges the snapshots when it comes back.
 * Returns false if a stop signal came meanwhile (it is honoured at once). */
static bool restore_first(daemon_t *d, keeper_t *keeper)
{
    for (uint32_t waited = 0; waited < RESTORE_WAIT_MS; waited += 50) {
        if (keeper_wait_restored(keeper, 50))
            return true;
        keeper_stats_t ks;
        keeper_stats(keeper, &ks);
        if (!ks.connected && (ks.errors > 0 || waited >= NO_ANSWER_MS)) {
            slog_msg(SLOG_WARN, "redis %s: serving now, restoring the snapshots when it is back",
                     ks.errors > 0 ? "unreachable" : "not answering");
            return true;
        }
        if (daemon_wait(d, 1) == DAEMON_STOP)
            return false;
    }
    slog_msg(SLOG_WARN, "snapshots not restored within %u ms; serving, restoring later",
             RESTORE_WAIT_MS);
    return true;
}

/* The planned stop: no more requests, the last snapshot, the counters, then free everything. */
static int shut_down(parts_t *p)
{
    atomic_store(&p->ready, false); /* /readyz fails while the last snapshot is written */
    if (p->serving)
        frontend_stop(p->fe);
    sweeper_stop(&p->sweeper);
    if (p->keeper) {
        keeper_stop(p->keeper, true); /* the last changes, so the next start has everything */
        char line[512];
        keeper_describe(p->keeper, line, sizeof(line));
        slog_msg(SLOG_INFO, "%s", line);
    }
    log_served(p->fe, p->repo);
    return stop_all(p, 0);
}

int main(int argc, char **argv)
{
    shoal_config_t cfg = {
        .snapshot_ms = 1000,
        .ops = {.admin = ADMIN_DEFAULT, .admin_token_file = ""},
    };
    daemon_opts_defaults(&cfg.daemon);
    feopts_defaults(&cfg.fe);
    repoopts_defaults(&cfg.repo);
    redisopts_defaults(&cfg.redis);
    daemon_t d;
    daemon_init(&d, "shoal", offsetof(shoal_config_t, daemon));
    daemon_options(&d, feopts_spec(), offsetof(shoal_config_t, fe));
    daemon_options(&d, repoopts_spec(), offsetof(shoal_config_t, repo));
    daemon_options(&d, redisopts_spec(), offsetof(shoal_config_t, redis));
    daemon_options(&d, opsopts_spec(), offsetof(shoal_config_t, ops));
    daemon_options(&d, OPTS_TABLE(own_opts), 0);
    int rc = daemon_parse(&d, "a fast BitTorrent tracker (UDP BEP 15, HTTP BEP 3/23/7/48)",
                          "shoal [options]", &cfg, sizeof(cfg), argc, argv);
    if (rc >= 0)
        return rc;
    /* Before anything that takes time or starts a thread: a SIGTERM that comes while the
     * process is still starting waits for daemon_wait() (a clean stop) instead of killing it,
     * and every thread inherits the mask (so the handlers czmq installs with its first socket
     * never run). */
    daemon_block_signals(&d);

    char err[256];
    frontend_config_t fc;
    bool random_secret;
    if (feopts_apply(&cfg.fe, &fc, &random_secret, err, sizeof(err)) != 0 ||
        redisopts_check(&cfg.redis, err, sizeof(err)) != 0)
        return daemon_fail(&d, 2, "%s", err);
    /* Warned, not refused: tests (and demonstrations of expiry) use short timeouts on purpose. */
    if (cfg.repo.peer_timeout <= cfg.fe.interval)
        slog_msg(SLOG_WARN,
                 "--peer-timeout %u is not above --interval %u: peers expire before their next "
                 "announce, so swarms stay nearly empty",
                 cfg.repo.peer_timeout, cfg.fe.interval);
    else if ((uint64_t)cfg.repo.peer_timeout * 4 < (uint64_t)cfg.fe.interval * 5)
        slog_msg(SLOG_WARN,
                 "--peer-timeout %u is less than 1.25 x --interval %u: a client that announces a "
                 "little late is forgotten meanwhile",
                 cfg.repo.peer_timeout, cfg.fe.interval);
    feopts_raise_fd_limit(cfg.fe.http_max_conns);

    parts_t p = {.snapshot_ms = cfg.snapshot_ms};
    if (!(p.repo = repoopts_new_repo(&cfg.repo)))
        return daemon_fail(&d, 1, "out of memory creating the repository");
    fc.backend_open = inproc_open;
    fc.backend_arg = p.repo;
    if (!(p.access = feopts_access_new(&cfg.fe, cfg.fe.workers, err, sizeof(err))))
        return stop_all(&p, daemon_fail(&d, 2, "%s", err));
    fc.access = p.access;
    char prefix[REDISOPTS_PREFIX_MAX];
    redisopts_standalone_prefix(&cfg.redis, prefix);
    if (*cfg.redis.redis && refuse_live_cluster(&d, &cfg.redis) != 0)
        return stop_all(&p, 2);
    if (ops_redis_watch(&cfg.redis, &p.watch, err, sizeof(err)) != 0)
        return stop_all(&p, daemon_fail(&d, 1, "--redis: %s", err));
    if (*cfg.redis.redis) {
        keeper_config_t kc = {
            .redis_url = cfg.redis.redis,
            .redis_password_file = redisopts_password_file(&cfg.redis),
            .prefix = prefix,
            .self_id = STANDALONE_ID,
            .repo = p.repo,
            .view = keeper_view_all(),
            .interval_ms = cfg.snapshot_ms,
            .log = slog_sink,
        };
        if (!(p.keeper = keeper_new(&kc, err, sizeof(err))))
            return stop_all(&p, daemon_fail(&d, 2, "--redis: %s", err));
    }
    p.fe = frontend_new(&fc, err, sizeof(err));
    sodium_memzero(fc.secret, sizeof(fc.secret));
    if (!p.fe)
        return stop_all(&p, daemon_fail(&d, 1, "%s", err));

    if (!(p.sweeper = sweeper_start(p.repo, cfg.repo.peer_timeout, report_expired, NULL)))
        return stop_all(&p, daemon_fail(&d, 1, "could not start the expiry thread"));
    /* The admin listener answers from here on: /readyz says "restoring" until clients are. */
    ops_config_t oc = {
        .role = "shoal", .collect = collect, .alive = alive, .ready = ready, .arg = &p};
    if (!(p.ops = ops_new(&cfg.ops, &oc, err, sizeof(err))))
        return stop_all(&p, daemon_fail(&d, 2, "%s", err));
    if (!(p.access_api =
              ops_access_open(p.access, cfg.fe.access_list, cfg.redis.redis,
                              redisopts_password_file(&cfg.redis), prefix, err, sizeof(err))))
        return stop_all(&p, daemon_fail(&d, 2, "access list: %s", err));
    if (ops_repo_routes(ops_admin(p.ops), p.repo) != 0 ||
        ops_access_routes(ops_admin(p.ops), p.access_api) != 0)
        return stop_all(&p, daemon_fail(&d, 1, "admin: route table full"));
    if (ops_start(p.ops, err, sizeof(err)) != 0)
        return stop_all(&p, daemon_fail(&d, 2, "%s", err));
    ops_reload_t reload = {.d = &d, .ops = p.ops, .access = p.access_api};
    daemon_on_reload(&d, ops_access_on_reload, &reload);
    if (p.keeper) {
        if (keeper_start(p.keeper) != 0)
            return stop_all(&p, daemon_fail(&d, 1, "could not start the snapshot thread"));
        if (!restore_first(&d, p.keeper))
            return shut_down(&p);
    }
    if (frontend_start(p.fe, err, sizeof(err)) != 0)
        return stop_all(&p, daemon_fail(&d, 1, "%s", err));
    p.serving = true;
    atomic_store(&p.ready, true);
    char where[512], admin[128];
    frontend_describe(p.fe, where, sizeof(where));
    ops_describe(p.ops, admin, sizeof(admin));
    slog_msg(SLOG_INFO, "shoal %s serving %s with %u workers, %zu stripes%s; admin %s",
             SHOAL_VERSION, where, cfg.fe.workers, repo_stripes(p.repo),
             p.keeper ? ", snapshots in redis" : "", admin);

    while (daemon_wait(&d, 0) != DAEMON_STOP)
        ;
    return shut_down(&p);
}
