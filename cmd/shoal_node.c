/* SPDX-License-Identifier: MIT */
/* shoal-node: one partition-owning node of a shoal cluster. Serves gateways' request batches over
 * ZeroMQ from its swarm repository, registers itself in Redis (or reads a static member list),
 * answers "moved" for partitions it does not own, and expires peers.
 *
 * Threads: the main thread parses options, starts everything, then waits for signals and once a
 * second logs garbage counters (with backoff); the membership actor (Redis only); the
 * server's worker (and proxy) actors; one sweeper thread; with Redis and --snapshot-interval > 0,
 * the keeper thread (snapshots, restore, handover: keeper.h). Signals are blocked in every thread
 * and taken by daemon_wait() in main. A clean exit hands the partitions over, deregisters from
 * Redis and returns 0. */
#include "backoff.h"
#include "cmsg.h"
#include "curve.h"
#include "daemon.h"
#include "keeper.h"
#include "members.h"
#include "membership.h"
#include "mono.h"
#include "nodesrv.h"
#include "ops.h"
#include "ops_cluster.h"
#include "ops_curve.h"
#include "ops_repo.h"
#include "rconn.h"
#include "redisopts.h"
#include "repo.h"
#include "repoopts.h"
#include "slog.h"
#include "sweeper.h"

#include <czmq.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    daemon_opts_t daemon;
    repoopts_t repo; /* shared with shoal */
    const char *id;
    const char *bind;
    const char *advertise;
    redisopts_t redis;
    const char *nodes;
    uint32_t workers;
    uint32_t heartbeat_ms;
    uint32_t member_ttl_ms;
    uint32_t snapshot_ms;
    uint32_t numwant;
    opsopts_t ops;     /* --admin, --admin-token-file */
    curveopts_t curve; /* --curve-cert, --curve-trust */
} node_config_t;

#define OPT(...) OPTS_SPEC(node_config_t, __VA_ARGS__)

static const opts_spec_t node_opts[] = {
    OPT("id", "ID", OPTS_STRING, id, 0, 0,
        "this node's id, stable across restarts (e.g. the pod name); required"),
    OPT("bind", "tcp://ADDR:PORT", OPTS_STRING, bind, 0, 0,
        "worker 0's ZeroMQ endpoint; worker i binds PORT + i"),
    OPT("advertise", "tcp://HOST:PORT", OPTS_STRING, advertise, 0, 0,
        "endpoint gateways connect to (default: --bind)"),
    OPT("nodes", "ID=tcp://HOST:PORT,..", OPTS_STRING, nodes, 0, 0,
        "static member list, this node included (no Redis); \"|workers=N\" after an endpoint: "
        "N ports"),
    OPT("workers", "N", OPTS_UINT, workers, 1, 1024,
        "serving threads, one port each (the default is the number of cores)"),
    OPT("heartbeat-interval", "MS", OPTS_UINT, heartbeat_ms, 10, 600000,
        "membership heartbeat and poll period"),
    OPT("member-ttl", "MS", OPTS_UINT, member_ttl_ms, 20, 3600000,
        "a member not heard from for this long is dropped"),
    OPT("snapshot-interval", "MS", OPTS_UINT, snapshot_ms, 0, 3600000,
        "write changed partitions to Redis this often, for failover (0: never; needs --redis)"),
    OPT("numwant", "N", OPTS_UINT, numwant, 0, SHOAL_NUMWANT_MAX,
        "peers per reply when the request does not say"),
};

/* --admin's default: loopback, the --bind port + 1000 (7001 -> 8001), so nodes sharing a host
 * (the README's local cluster) do not clash. */
#define ADMIN_AUTO        "auto"
#define ADMIN_PORT_OFFSET 1000

static void report_expired(void *arg, size_t removed)
{
    (void)arg;
    slog_msg(SLOG_DEBUG, "expired %zu peers", removed);
}

/* ---- the keeper's view of the membership ----------------------------------------------------- */

typedef struct {
    membership_t *members;
    const char *self_id;
    _Atomic(keeper_t *) keeper; /* set once the keeper exists */
} node_ctx_t;

static bool view_owned(void *arg, pset_t *mine)
{
    node_ctx_t *c = arg;
    const partition_table_t *t = membership_current(c->members);
    if (!t)
        return false;
    int me = partition_table_find(t, c->self_id);
    for (uint32_t p = 0; me >= 0 && p < PARTITION_COUNT; p++)
        if (partition_owner(t, p) == (uint16_t)me)
            pset_add(mine, p);
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
    keeper_t *k = atomic_load_explicit(&c->keeper, memory_order_acquire);
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

/* A static list is the gateways' copy too: if it gives this node another worker count than it
 * runs, gateways reading it use that many of its sockets (fewer: some workers idle; more: some
 * partitions time out). Said once at start. */
static void check_static_workers(membership_t *members, const char *id, uint32_t workers)
{
    const partition_table_t *t = membership_current(members);
    int i = t ? partition_table_find(t, id) : -1;
    members_advert_t a;
    if (i >= 0 && members_split(partition_table_member(t, (size_t)i)->endpoint, &a) == 0 &&
        a.workers != workers)
        slog_msg(SLOG_WARN,
                 "--nodes gives %s %u worker%s but it runs --workers %u: write %s=%s|workers=%u "
                 "(and the CURVE key, if any, after it) in every process's list",
                 id, a.workers, a.workers == 1 ? "" : "s", workers, id, a.endpoint, workers);
    membership_release(members, &t);
}

/* Garbage on the socket: logged when it grows, at most once per doubling interval (1 s .. 64 s)
 * while it keeps coming, back to 1 s after a quiet interval. Called once a second. */
typedef struct {
    backoff_t backoff;
    uint64_t logged;
} garbage_log_t;

static void log_garbage(garbage_log_t *g, const nodesrv_stats_t *st)
{
    int64_t now = mono_ms();
    if (st->garbage == g->logged) {
        if (backoff_quiet(&g->backoff, now))
            backoff_ok(&g->backoff);
        return;
    }
    if (!backoff_due(&g->backoff, now))
        return;
    const char *why = st->last_garbage < 0 ? "not [identity][payload]"
                                           : cmsg_strerror((cmsg_err_t)st->last_garbage);
    slog_msg(SLOG_WARN, "dropped %llu garbage messages on the socket (%llu total; last: %s)",
             (unsigned long long)(st->garbage - g->logged), (unsigned long long)st->garbage, why);
    g->logged = st->garbage;
}

/* Everything main starts; stop_all() stops and frees what is there, in reverse order. */
typedef struct {
    membership_t *members;
    repo_t *repo;
    keeper_t *keeper;
    nodesrv_t *srv;
    sweeper_t *sweeper;
    ops_t *ops;             /* the admin listener; reads the parts above, set before it started */
    curve_t *curve;         /* NULL: CURVE off */
    ops_curve_t *curve_ops; /* its logs and metrics */
    sentinelwatch_t *watch; /* with a redis-sentinel:// URL: follows the master's switches */
    const char *id;
    bool from_redis;
    uint32_t heartbeat_ms, snapshot_ms; /* the loops' periods, for /healthz */
    atomic_bool leaving;                /* a planned stop began: not ready any more */
} parts_t;

static void node_metrics(metrics_t *m, nodesrv_t *srv)
{
    nodesrv_stats_t s;
    nodesrv_stats(srv, &s);
    metrics_family(m, "shoal_node_batches_total", METRICS_COUNTER,
                   "request batches served (from gateways)");
    metrics_addu(m, "shoal_node_batches_total", s.batches, NULL);
    /* One socket per worker (nodesrv.h): how the gateways' batches spread over them. */
    metrics_family(m, "shoal_node_worker_batches_total", METRICS_COUNTER,
                   "request batches served, by worker (worker i listens on the bind port + i)");
    for (unsigned i = 0; i < nodesrv_workers(srv); i++) {
        nodesrv_stats_t w;
        char label[16];
        nodesrv_worker_stats(srv, i, &w);
        snprintf(label, sizeof(label), "%u", i);
        metrics_addu(m, "shoal_node_worker_batches_total", w.batches, "worker", label, NULL);
    }
    metrics_family(m, "shoal_node_requests_total", METRICS_COUNTER,
                   "requests served from the batches, by kind and result");
    metrics_addu(m, "shoal_node_requests_total", s.announces, "kind", "announce", "result", "ok",
                 NULL);
    metrics_addu(m, "shoal_node_requests_total", s.scrapes, "kind", "scrape", "result", "ok", NULL);
    metrics_addu(m, "shoal_node_requests_total", s.moved, "kind", "any", "result", "moved", NULL);
    metrics_addu(m, "shoal_node_requests_total", s.errors, "kind", "any", "result", "error", NULL);
    metrics_addu(m, "shoal_node_requests_total", s.lookups, "kind", "lookup", "result", "ok", NULL);
    metrics_family(m, "shoal_node_garbage_total", METRICS_COUNTER,
                   "messages dropped on the node's socket: bad frames or undecodable");
    metrics_addu(m, "shoal_node_garbage_total", s.garbage, NULL);
    metrics_family(m, "shoal_node_replies_dropped_total", METRICS_COUNTER,
                   "reply batches that could not be queued toward their gateway");
    metrics_addu(m, "shoal_node_replies_dropped_total", s.replies_dropped, NULL);
}

static void collect(void *arg, metrics_t *m)
{
    parts_t *p = arg;
    node_metrics(m, p->srv);
    ops_curve_metrics(m, p->curve_ops);
    ops_repo_metrics(m, p->repo);
    ops_membership_metrics(m, p->members);
    if (p->keeper)
        ops_keeper_metrics(m, p->keeper);
    ops_redis_sentinel(m, p->watch);
}

static bool alive(void *arg, char *why, size_t len)
{
    parts_t *p = arg;
    return ops_membership_alive(p->members, p->heartbeat_ms, why, len) &&
           (!p->keeper || ops_keeper_alive(p->keeper, p->snapshot_ms, why, len));
}

/* Ready: a member of the table in use, and with snapshots, holding every partition the table
 * gives it (acquired and restored). */
static bool ready(void *arg, char *why, size_t len)
{
    parts_t *p = arg;
    if (atomic_load(&p->leaving)) {
        snprintf(why, len, "stopping");
        return false;
    }
    /* What the table in use gives this node, not what the keeper has seen so far: right after a
     * join the keeper may not have read the new table yet (it owns 0, holds 0). */
    const partition_table_t *t = membership_current(p->members);
    int me = t ? partition_table_find(t, p->id) : -1;
    uint32_t mine = me >= 0 ? partition_table_load(t, (size_t)me) : 0;
    membership_release(p->members, &t);
    if (me < 0) {
        snprintf(why, len, "not in the member table yet");
        return false;
    }
    if (!p->keeper)
        return true;
    keeper_stats_t ks;
    keeper_stats(p->keeper, &ks);
    if (ks.held < mine) {
        snprintf(why, len,
                 "holding %u of the %u partitions the table gives it (%u waiting for their "
                 "previous owner, %u taken by another node)",
                 ks.held, mine, ks.waiting, ks.blocked);
        return false;
    }
    return true;
}

static void get_cluster(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    (void)req;
    parts_t *p = arg;
    json_t *view = json_pack("{s:s}", "id", p->id);
    if (view && p->keeper) {
        keeper_stats_t ks;
        keeper_stats(p->keeper, &ks);
        json_object_set_new(view, "partitions",
                            json_pack("{s:i,s:i,s:i,s:i}", "owned", (int)ks.owned, "held",
                                      (int)ks.held, "waiting", (int)ks.waiting, "blocked",
                                      (int)ks.blocked));
    }
    ops_cluster_reply(reply, p->members, "shoal-node", p->from_redis, view);
}

/* "auto": 127.0.0.1 and the --bind port + ADMIN_PORT_OFFSET. Returns 0, or -1 with err. */
static int admin_auto(const char *bind, char *out, size_t outlen, char *err, size_t errlen)
{
    const char *colon = strrchr(bind, ':');
    char *end;
    unsigned long port = colon ? strtoul(colon + 1, &end, 10) : 0;
    if (!colon || *end || port == 0 || port + ADMIN_PORT_OFFSET > 65535) {
        snprintf(err, errlen,
                 "--admin auto: cannot derive a port from --bind %s (port + %d): give --admin "
                 "ADDR:PORT or off",
                 bind, ADMIN_PORT_OFFSET);
        return -1;
    }
    snprintf(out, outlen, "127.0.0.1:%lu", port + ADMIN_PORT_OFFSET);
    return 0;
}

/* SIGHUP: the config file again (log level and format apply live; the rest is reported as
 * needing a restart), then the admin token, then the CURVE trust dir. */
typedef struct {
    daemon_t *d;
    parts_t *p;
} reload_t;

static void on_reload(void *arg)
{
    reload_t *r = arg;
    daemon_reload(r->d, NULL, NULL);
    ops_reload(r->p->ops);
    ops_curve_reload(r->p->curve_ops, NULL);
}

static int stop_all(parts_t *p, int rc)
{
    ops_destroy(&p->ops); /* first: its handlers read the other parts */
    sweeper_stop(&p->sweeper);
    nodesrv_destroy(&p->srv);
    if (p->members)
        membership_stop(p->members);
    keeper_destroy(&p->keeper);
    membership_destroy(&p->members);
    sentinelwatch_destroy(&p->watch);
    repo_destroy(&p->repo);
    ops_curve_destroy(&p->curve_ops);
    curve_destroy(&p->curve); /* after the server: its socket is monitored by curve's actor */
    return rc;
}

int main(int argc, char **argv)
{
    /* Signals are ours (daemon_wait()), not czmq's. */
    zsys_handler_set(NULL);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    node_config_t cfg = {
        .id = "",
        .bind = "tcp://0.0.0.0:7000",
        .advertise = "",
        .nodes = "",
        .workers = cores > 0 ? (uint32_t)cores : 1,
        .heartbeat_ms = MEMBERSHIP_HEARTBEAT_MS_DEFAULT,
        .member_ttl_ms = MEMBERSHIP_TTL_MS_DEFAULT,
        .snapshot_ms = 1000,
        .numwant = SHOAL_NUMWANT_DEF,
        .ops = {.admin = ADMIN_AUTO, .admin_token_file = ""},
    };
    daemon_opts_defaults(&cfg.daemon);
    repoopts_defaults(&cfg.repo);
    redisopts_defaults(&cfg.redis);
    daemon_t d;
    daemon_init(&d, "shoal-node", offsetof(node_config_t, daemon));
    daemon_options(&d, OPTS_TABLE(node_opts), 0);
    daemon_options(&d, repoopts_spec(), offsetof(node_config_t, repo));
    daemon_options(&d, redisopts_spec(), offsetof(node_config_t, redis));
    daemon_options(&d, opsopts_spec(), offsetof(node_config_t, ops));
    curveopts_defaults(&cfg.curve);
    daemon_options(&d, curveopts_spec(), offsetof(node_config_t, curve));
    int rc = daemon_parse(
        &d, "a partition-owning node of a shoal tracker cluster",
        "shoal-node --id ID (--redis redis://HOST:PORT | --nodes ID=tcp://H:P,..) [options]", &cfg,
        sizeof(cfg), argc, argv);
    if (rc >= 0)
        return rc;
    /* Before anything that takes time or starts a thread: a SIGTERM that comes while the
     * process is still starting waits for daemon_wait() (a clean stop) instead of killing it,
     * and every thread inherits the mask (so the handlers czmq installs with its first socket
     * never run). */
    daemon_block_signals(&d);
    if (!*cfg.id)
        return daemon_fail(&d, 2, "--id is required (see --help)");
    char err[512];
    if (redisopts_check(&cfg.redis, err, sizeof(err)) != 0)
        return daemon_fail(&d, 2, "%s", err);
    char prefix[REDISOPTS_PREFIX_MAX];
    redisopts_cluster_prefix(&cfg.redis, prefix);
    if (!*cfg.redis.redis == !*cfg.nodes)
        return daemon_fail(&d, 2, "give exactly one of --redis and --nodes");
    const char *pwfile = redisopts_password_file(&cfg.redis);
    if (*cfg.redis.redis && ops_redis_setup(&cfg.redis, OPS_REDIS_CHECK_MS, err, sizeof(err)) < 0)
        return daemon_fail(&d, 2, "%s", err);
    if (strncmp(cfg.bind, "tcp://", 6) != 0)
        return daemon_fail(&d, 2, "--bind must be tcp://ADDR:PORT");
    const char *advertise = *cfg.advertise ? cfg.advertise : cfg.bind;
    if (*cfg.redis.redis && wildcard_endpoint(advertise))
        return daemon_fail(&d, 2,
                           "--bind %s is a wildcard address: give --advertise tcp://HOST:PORT "
                           "that gateways can reach",
                           cfg.bind);

    /* ZeroMQ keeps its one I/O thread for every worker's socket: it moves batches, not
     * requests, and one I/O thread per worker (up to the cores) measured no better with 2
     * workers on 2 cores and worse on 1 (issue 15, docs/architecture.md). */

    /* The advert (members.h): the worker count and, with CURVE, the key travel with the
     * endpoint; gateways learn them there. Worker i is at the advertised port + i. */
    curve_t *curve = NULL;
    char advertised[PARTITION_ENDPOINT_MAX];
    if (curveopts_on(&cfg.curve) && !(curve = curve_new(&cfg.curve, err, sizeof(err))))
        return daemon_fail(&d, 2, "%s", err);
    members_advert_t adv = {.workers = cfg.workers};
    if (curve)
        curve_public(curve, adv.key);
    snprintf(adv.endpoint, sizeof(adv.endpoint), "%s", advertise);
    /* A static list is not published (gateways read their own copy), so a port still to be
     * chosen ("*", tests) is fine there; the count must then be in the gateways' list. */
    size_t alen = strlen(advertise);
    if (!*cfg.redis.redis && alen >= 2 && strcmp(advertise + alen - 2, ":*") == 0)
        adv.workers = 1;
    if (strlen(advertise) >= sizeof(adv.endpoint) ||
        members_join(&adv, advertised, sizeof(advertised)) != 0) {
        bool with_key = curve != NULL;
        curve_destroy(&curve);
        char last[PARTITION_ENDPOINT_MAX];
        if (strlen(advertise) < sizeof(adv.endpoint) && adv.workers > 1 &&
            members_worker_endpoint(advertise, adv.workers - 1, last, sizeof(last)) != 0)
            return daemon_fail(&d, 2,
                               "--advertise %s: --workers %u needs a numeric port P with P + %u "
                               "<= 65535 (worker i is at P + i)",
                               advertise, cfg.workers, cfg.workers - 1);
        char tags[64] = "";
        if (adv.workers > 1)
            snprintf(tags, sizeof(tags), "|workers=%u", adv.workers);
        if (with_key)
            snprintf(tags + strlen(tags), sizeof(tags) - strlen(tags), "|curve=KEY");
        return daemon_fail(&d, 2, "--advertise %s%s: too long (%d bytes at most)", advertise, tags,
                           PARTITION_ENDPOINT_MAX - 1);
    }

    char admin_addr[64];
    if (strcmp(cfg.ops.admin, ADMIN_AUTO) == 0) {
        if (admin_auto(cfg.bind, admin_addr, sizeof(admin_addr), err, sizeof(err)) != 0) {
            curve_destroy(&curve);
            return daemon_fail(&d, 2, "%s", err);
        }
        cfg.ops.admin = admin_addr;
    }

    parts_t p = {.id = cfg.id,
                 .from_redis = *cfg.redis.redis != '\0',
                 .heartbeat_ms = cfg.heartbeat_ms,
                 .snapshot_ms = cfg.snapshot_ms,
                 .curve = curve};
    node_ctx_t ctx = {.self_id = cfg.id};
    membership_config_t mc = {
        .redis_url = *cfg.redis.redis ? cfg.redis.redis : NULL,
        .redis_password_file = pwfile,
        .static_nodes = *cfg.nodes ? cfg.nodes : NULL,
        .prefix = prefix,
        .self_id = cfg.id,
        .self_endpoint = advertised,
        .heartbeat_ms = cfg.heartbeat_ms,
        .ttl_ms = cfg.member_ttl_ms,
        .log = slog_sink,
        .on_change = on_table,
        .change_arg = &ctx,
    };
    if (!(p.curve_ops = ops_curve_new(p.curve, "shoal-node")))
        return stop_all(&p, daemon_fail(&d, 1, "out of memory"));
    if (ops_redis_watch(&cfg.redis, &p.watch, err, sizeof(err)) != 0)
        return stop_all(&p, daemon_fail(&d, 1, "--redis: %s", err));
    /* The authenticator runs before the socket is bound: no handshake may go unchecked. */
    if (p.curve && curve_server_start(p.curve, err, sizeof(err)) != 0)
        return stop_all(&p, daemon_fail(&d, 1, "%s", err));
    if (!(p.members = membership_new(&mc, err, sizeof(err))))
        return stop_all(&p, daemon_fail(&d, 2, "membership: %s", err));
    if (*cfg.nodes)
        check_static_workers(p.members, cfg.id, cfg.workers);
    if (!(p.repo = repoopts_new_repo(&cfg.repo)))
        return stop_all(&p, daemon_fail(&d, 1, "out of memory creating the repository"));
    ctx.members = p.members;
    if (*cfg.redis.redis && cfg.snapshot_ms > 0) {
        keeper_config_t kc = {
            .redis_url = cfg.redis.redis,
            .redis_password_file = pwfile,
            .prefix = prefix,
            .self_id = cfg.id,
            .repo = p.repo,
            .view = {.arg = &ctx,
                     .owned = view_owned,
                     .version = view_version,
                     .alive = view_alive,
                     .lease = view_lease},
            .interval_ms = cfg.snapshot_ms,
            .handover_ms = cfg.member_ttl_ms,
            .log = slog_sink,
        };
        if (!(p.keeper = keeper_new(&kc, err, sizeof(err))))
            return stop_all(&p, daemon_fail(&d, 2, "snapshots: %s", err));
        atomic_store_explicit(&ctx.keeper, p.keeper, memory_order_release);
    }
    nodesrv_config_t sc = {
        .keeper = p.keeper,
        .bind = cfg.bind,
        .workers = cfg.workers,
        .repo = p.repo,
        .membership = p.members,
        .self_id = cfg.id,
        .numwant_default = cfg.numwant,
        .curve = p.curve,
    };
    /* Mostly an operator's mistake (a port, or one of the workers' ports, taken): exit 2. */
    if (!(p.srv = nodesrv_new(&sc, err, sizeof(err))))
        return stop_all(&p, daemon_fail(&d, 2, "%s", err));
    /* With the port bound (a second process on this host fails there), claim the id: refused
     * if a live node at another endpoint holds it. A dead node's key expires within the ttl. */
    int reg =
        membership_register(p.members, cfg.member_ttl_ms + 2 * cfg.heartbeat_ms, err, sizeof(err));
    if (reg == MEMBERSHIP_CONFLICT)
        return stop_all(&p, daemon_fail(&d, 2, "%s", err));
    if (reg < 0)
        slog_msg(SLOG_WARN, "membership: cannot register yet (%s); retrying every heartbeat", err);
    ops_config_t oc = {
        .role = "shoal-node", .collect = collect, .alive = alive, .ready = ready, .arg = &p};
    if (!(p.ops = ops_new(&cfg.ops, &oc, err, sizeof(err))))
        return stop_all(&p, daemon_fail(&d, 2, "%s", err));
    if (ops_repo_routes(ops_admin(p.ops), p.repo) != 0 ||
        admin_route(ops_admin(p.ops), "GET", "/api/v1/cluster", 0, get_cluster, &p) != 0)
        return stop_all(&p, daemon_fail(&d, 1, "admin: route table full"));
    err[0] = '\0';
    if (ops_start(p.ops, err, sizeof(err)) != 0)
        return stop_all(&p, daemon_fail(&d, 2, "%s", err));
    reload_t reload = {.d = &d, .p = &p};
    daemon_on_reload(&d, on_reload, &reload);
    if (nodesrv_start(p.srv, err, sizeof(err)) != 0 || membership_start(p.members) != 0 ||
        (p.keeper && keeper_start(p.keeper) != 0) ||
        !(p.sweeper = sweeper_start(p.repo, cfg.repo.peer_timeout, report_expired, NULL)))
        return stop_all(&p,
                        daemon_fail(&d, 1, "could not start: %s", *err ? err : "thread creation"));
    char shown[RCONN_URL_MAX + 4], admin[128];
    ops_describe(p.ops, admin, sizeof(admin));
    slog_msg(SLOG_INFO,
             "shoal-node %s id %s serving %s (advertised %s) with %u workers (one port each), "
             "%zu stripes, "
             "membership %s, snapshots %s, admin %s, CURVE %s",
             SHOAL_VERSION, cfg.id, nodesrv_endpoint(p.srv), advertised, cfg.workers,
             repo_stripes(p.repo),
             *cfg.redis.redis ? rconn_redact(cfg.redis.redis, shown, sizeof(shown)) : "static",
             p.keeper ? "on" : "off", admin, p.curve ? adv.key : "off");
    if (p.curve) {
        size_t skipped = 0, trusted = curve_trusted(p.curve, &skipped);
        slog_msg(SLOG_INFO, "CURVE: %zu trusted gateway keys in %s (%zu files skipped)", trusted,
                 cfg.curve.trust, skipped);
    }

    garbage_log_t glog = {.backoff = {.first_ms = 1000, .max_ms = 64000}};
    char other[PARTITION_ENDPOINT_MAX];
    while (daemon_wait(&d, 1000) != DAEMON_STOP) {
        nodesrv_stats_t st;
        nodesrv_stats(p.srv, &st);
        log_garbage(&glog, &st);
        ops_curve_tick(p.curve_ops);
        if (membership_conflict(p.members, other, sizeof(other))) {
            /* Another process took our id (ours lapsed during a pause): it serves the id now.
             * Stop without a handover: its partitions are that process's to write. */
            slog_msg(SLOG_ERROR,
                     "id %s is now registered by another node at %s: stopping (exit 2); give "
                     "each node its own --id",
                     cfg.id, other);
            membership_stop(p.members);
            if (p.keeper)
                keeper_stop(p.keeper, false);
            return stop_all(&p, 2);
        }
    }
    /* A planned handover: say we are leaving (acquirers then wait for our snapshots), leave the
     * member set so gateways route elsewhere while we still answer, then write every partition
     * with the release mark (answering "moved" from then on), then stop. */
    atomic_store(&p.leaving, true);
    if (p.keeper)
        keeper_leave(p.keeper);
    membership_stop(p.members);
    if (p.keeper)
        keeper_stop(p.keeper, true);
    nodesrv_stop(p.srv);
    sweeper_stop(&p.sweeper);

    nodesrv_stats_t st;
    nodesrv_stats(p.srv, &st);
    repo_totals_t tot;
    repo_totals(p.repo, &tot);
    slog_msg(SLOG_INFO,
             "served %llu batches: %llu requests, %llu announces, %llu scrapes, %llu moved, "
             "%llu errors; %llu garbage, %llu replies dropped; %llu torrents, %llu peers",
             (unsigned long long)st.batches, (unsigned long long)st.requests,
             (unsigned long long)st.announces, (unsigned long long)st.scrapes,
             (unsigned long long)st.moved, (unsigned long long)st.errors,
             (unsigned long long)st.garbage, (unsigned long long)st.replies_dropped,
             (unsigned long long)tot.torrents, (unsigned long long)tot.peers);
    if (p.keeper) {
        char line[512];
        keeper_describe(p.keeper, line, sizeof(line));
        slog_msg(SLOG_INFO, "%s", line);
    }
    return stop_all(&p, 0);
}
