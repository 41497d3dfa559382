/* SPDX-License-Identifier: MIT */
/* shoal-gateway: the stateless cluster gateway. The same UDP and HTTP front ends as `shoal`, with
 * the router (router.h) as backend: each request goes to the node owning its partition, found in
 * the membership table (node/membership.h), read from Redis (--redis) or a static list (--nodes).
 *
 * Threads: the main thread parses options, opens the sockets, then waits for signals (and logs
 * counters now and then); N front-end workers each run one router with one ZeroMQ
 * DEALER per node; with --redis, one membership actor polls Redis and publishes tables. */
#include "curve.h"
#include "daemon.h"
#include "feopts.h"
#include "frontend.h"
#include "lookup.h"
#include "membership.h"
#include "ops.h"
#include "ops_access.h"
#include "ops_cluster.h"
#include "ops_curve.h"
#include "ops_fe.h"
#include "ops_swarms.h"
#include "rconn.h"
#include "redisopts.h"
#include "router.h"
#include "slog.h"

#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

typedef struct {
    daemon_opts_t daemon;
    feopts_t fe; /* the front-end options shared with shoal */
    redisopts_t redis;
    const char *nodes;
    uint32_t membership_poll_ms;
    uint32_t node_timeout_ms;
    uint32_t stats_interval;
    opsopts_t ops;     /* --admin, --admin-token-file */
    curveopts_t curve; /* --curve-cert, --curve-trust */
} gw_config_t;

#define OPT(...) OPTS_SPEC(gw_config_t, __VA_ARGS__)

/* The cluster's options; the front end's come from feopts_spec(). */
static const opts_spec_t gw_opts[] = {
    OPT("nodes", "ID=tcp://HOST:PORT[,..]", OPTS_STRING, nodes, 0, 0,
        "a static member list instead of --redis"),
    OPT("membership-interval", "MS", OPTS_UINT, membership_poll_ms, 10, 600000,
        "read the member set from Redis this often"),
    OPT("node-timeout", "MS", OPTS_UINT, node_timeout_ms, 10, 60000,
        "fail a request (retryable) when its node has not answered in this time"),
    OPT("stats-interval", "S", OPTS_UINT, stats_interval, 0, 86400,
        "log the counters this often (0: only at exit)"),
};

/* The admin listener's default: loopback (its reads are open), two above the tracker's port, so
 * a gateway and a standalone tracker (6970) can share a host. */
#define ADMIN_DEFAULT "127.0.0.1:6971"

/* A front-end worker that has not gone round its loop in this long is stuck: /healthz fails. */
#define STALL_MS 10000

/* ---- the table source: membership ---------------------------------------------------------- */

static const partition_table_t *tables_current(void *arg)
{
    return membership_current(arg);
}

static void tables_release(void *arg, const partition_table_t **table_p)
{
    membership_release(arg, table_p);
}

static uint64_t tables_version(void *arg)
{
    return membership_version(arg);
}

static void tables_refresh(void *arg)
{
    membership_refresh(arg);
}

static void membership_changed(void *arg, const partition_table_t *table)
{
    ops_curve_table(arg, table);
    size_t n = partition_table_count(table);
    char list[1024];
    size_t used = 0;
    list[0] = '\0';
    for (size_t i = 0; i < n && used < sizeof(list); i++) {
        const partition_member_t *m = partition_table_member(table, i);
        int k =
            snprintf(list + used, sizeof(list) - used, "%s%s=%s", i ? "," : "", m->id, m->endpoint);
        if (k < 0)
            break;
        used += (size_t)k;
    }
    slog_msg(SLOG_INFO, "table: %zu nodes, epoch %016llx: %s", n,
             (unsigned long long)partition_table_epoch(table), list);
}

/* ---- main ----------------------------------------------------------------------------------- */

static void log_counters(const frontend_stats_t *fst, router_counters_t *rc, membership_t *members,
                         const char *when)
{
    const frontend_stats_t st = *fst;
    membership_stats_t ms;
    membership_stats(members, &ms);
#define LD(x) (unsigned long long)atomic_load_explicit(&rc->x, memory_order_relaxed)
    slog_msg(SLOG_INFO,
             "%s udp connect=%llu announce=%llu scrape=%llu errors=%llu dropped=%llu, "
             "http announce=%llu scrape=%llu errors=%llu connections=%llu refused=%llu; "
             "router requests=%llu answered=%llu failed=%llu timeouts=%llu busy=%llu moved=%llu "
             "batches=%llu send_failures=%llu bad_replies=%llu tables=%llu; gateways=%u with "
             "another secret=%u (seen %llu times)",
             when, (unsigned long long)st.udp_connect, (unsigned long long)st.udp_announce,
             (unsigned long long)st.udp_scrape, (unsigned long long)st.udp_errors,
             (unsigned long long)st.udp_dropped, (unsigned long long)st.http_announce,
             (unsigned long long)st.http_scrape, (unsigned long long)st.http_errors,
             (unsigned long long)st.http_accepted, (unsigned long long)st.http_refused,
             LD(requests), LD(answered), LD(failed), LD(timeouts), LD(busy), LD(moved), LD(batches),
             LD(send_failures), LD(bad_replies), LD(tables), ms.gateways, ms.gateways_mismatched,
             (unsigned long long)ms.secret_mismatches);
#undef LD
}

/* Everything main starts; stop_all() stops and frees what is there, in reverse order. */
typedef struct {
    membership_t *members;
    void *zctx;
    frontend_t *fe;
    access_t *access;         /* the front end's access list; outlives it */
    ops_access_t *access_api; /* its API, reload and (with --redis) Redis store */
    ops_t *ops;               /* the admin listener; reads the parts above */
    router_counters_t *counters;
    atomic_bool serving; /* the front end's workers run (so their loops must turn) */
    bool from_redis;
    uint32_t poll_ms;       /* membership period, for /healthz */
    uint32_t lookup_ms;     /* a torrents/{hash} lookup's wait for its node */
    curve_t *curve;         /* NULL: CURVE off */
    ops_curve_t *curve_ops; /* refused nodes: logs, metrics */
    sentinelwatch_t *watch; /* with a redis-sentinel:// URL: follows the master's switches */
} parts_t;

/* ---- the admin listener --------------------------------------------------------------------- */

static void router_metrics(metrics_t *m, router_counters_t *c)
{
#define LD(x) atomic_load_explicit(&c->x, memory_order_relaxed)
    metrics_family(m, "shoal_router_requests_total", METRICS_COUNTER,
                   "client requests routed toward nodes, by outcome (answered by a node, failed "
                   "for any reason, refused as busy)");
    metrics_addu(m, "shoal_router_requests_total", LD(answered), "outcome", "answered", NULL);
    metrics_addu(m, "shoal_router_requests_total", LD(failed), "outcome", "failed", NULL);
    metrics_addu(m, "shoal_router_requests_total", LD(busy), "outcome", "busy", NULL);
    metrics_family(m, "shoal_router_batches_total", METRICS_COUNTER,
                   "request batches sent to nodes, and those a node's queue would not take");
    metrics_addu(m, "shoal_router_batches_total", LD(batches), "result", "sent", NULL);
    metrics_addu(m, "shoal_router_batches_total", LD(send_failures), "result", "refused", NULL);
    metrics_family(m, "shoal_router_bad_replies_total", METRICS_COUNTER,
                   "reply messages from nodes that were refused (undecodable or unexpected)");
    metrics_addu(m, "shoal_router_bad_replies_total", LD(bad_replies), NULL);
    metrics_family(m, "shoal_router_tables_total", METRICS_COUNTER,
                   "member tables adopted, summed over the workers' routers");
    metrics_addu(m, "shoal_router_tables_total", LD(tables), NULL);
#undef LD
    router_node_stat_t nodes[PARTITION_MEMBERS_MAX];
    size_t n = router_node_stats(c, nodes, PARTITION_MEMBERS_MAX);
    metrics_family(m, "shoal_node_in_flight", METRICS_GAUGE,
                   "requests sent or queued toward each node and not answered yet");
    metrics_family(m, "shoal_node_forwarded_total", METRICS_COUNTER,
                   "requests sent toward each node");
    metrics_family(m, "shoal_node_timeouts_total", METRICS_COUNTER,
                   "requests toward each node that passed their deadline (--node-timeout)");
    metrics_family(m, "shoal_node_moved_total", METRICS_COUNTER,
                   "\"moved\" replies from each node (it did not own the partition)");
    for (size_t i = 0; i < n; i++) {
        const router_node_stat_t *ns = &nodes[i];
        if (!ns->current && ns->in_flight == 0)
            continue; /* a node that left: its series end */
        metrics_addu(m, "shoal_node_in_flight", ns->in_flight, "node", ns->id, NULL);
        metrics_addu(m, "shoal_node_forwarded_total", ns->requests, "node", ns->id, NULL);
        metrics_addu(m, "shoal_node_timeouts_total", ns->timeouts, "node", ns->id, NULL);
        metrics_addu(m, "shoal_node_moved_total", ns->moved, "node", ns->id, NULL);
    }
}

static void collect(void *arg, metrics_t *m)
{
    parts_t *p = arg;
    ops_fe_metrics(m, p->fe);
    ops_access_metrics(m, p->access_api);
    router_metrics(m, p->counters);
    ops_membership_metrics(m, p->members);
    ops_curve_metrics(m, p->curve_ops);
    ops_redis_sentinel(m, p->watch);
}

static bool alive(void *arg, char *why, size_t len)
{
    parts_t *p = arg;
    if (p->from_redis && !ops_membership_alive(p->members, p->poll_ms, why, len))
        return false;
    return !atomic_load(&p->serving) || ops_fe_alive(p->fe, STALL_MS, why, len);
}

/* Ready: serving, with a member table that has at least one node. */
static bool ready(void *arg, char *why, size_t len)
{
    parts_t *p = arg;
    if (!atomic_load(&p->serving)) {
        snprintf(why, len, "not serving");
        return false;
    }
    const partition_table_t *t = membership_current(p->members);
    size_t n = t ? partition_table_count(t) : 0;
    membership_release(p->members, &t);
    if (n == 0) {
        snprintf(why, len, "no member table with a node yet");
        return false;
    }
    return true;
}

static void get_cluster(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    (void)req;
    parts_t *p = arg;
    membership_stats_t ms;
    membership_stats(p->members, &ms);
    json_t *view = json_pack(
        "{s:I,s:i,s:i}", "tables_adopted", (json_int_t)atomic_load(&p->counters->tables),
        "gateways", (int)ms.gateways, "gateways_with_another_secret", (int)ms.gateways_mismatched);
    ops_cluster_reply(reply, p->members, "shoal-gateway", p->from_redis, view);
}

/* torrents/{hash}: asked of the node that owns the partition, through ZeroMQ. */
static void get_torrent(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    parts_t *p = arg;
    uint8_t hash[20];
    uint32_t offset, max_peers;
    if (ops_torrent_request(req, reply, hash, &offset, &max_peers) != 0)
        return;
    char endpoint[PARTITION_ENDPOINT_MAX], id[PARTITION_ID_MAX], err[256];
    const partition_table_t *t = membership_current(p->members);
    int found = lookup_owner(t, hash, endpoint, sizeof(endpoint), id, sizeof(id));
    membership_release(p->members, &t);
    if (found != 0) {
        admin_reply_error(reply, 503, "no member table with a node yet");
        return;
    }
    cmsg_lookup_reply_t *r = malloc(sizeof(*r)); /* ~24 KB: not on the admin thread's stack */
    if (!r) {
        admin_reply_error(reply, 500, "out of memory");
        return;
    }
    lookup_status_t st = lookup_remote(p->zctx, p->curve, endpoint, hash, offset, max_peers,
                                       p->lookup_ms, r, err, sizeof(err));
    if (st == LOOKUP_OK)
        ops_torrent_reply(reply, hash, &r->result);
    else
        admin_reply_error(reply, st == LOOKUP_MOVED || st == LOOKUP_TIMEOUT ? 503 : 502,
                          "node %s (%s): %s", id, endpoint, err);
    free(r);
}

static int stop_all(parts_t *p, int rc)
{
    ops_destroy(&p->ops); /* first: its handlers read the other parts */
    ops_access_destroy(&p->access_api);
    frontend_destroy(&p->fe);
    access_destroy(&p->access);
    if (p->zctx)
        zmq_ctx_term(p->zctx);
    p->zctx = NULL;
    membership_destroy(&p->members);
    sentinelwatch_destroy(&p->watch);
    ops_curve_destroy(&p->curve_ops);
    curve_destroy(&p->curve);
    return rc;
}

/* SIGHUP: what ops_access_on_reload() does, then the CURVE certificate and trust dir (the routers
 * re-check their nodes; a new certificate reconnects them all). */
typedef struct {
    ops_reload_t access;
    parts_t *p;
} gw_reload_t;

static void on_reload(void *arg)
{
    gw_reload_t *r = arg;
    ops_access_on_reload(&r->access);
    const partition_table_t *t = membership_current(r->p->members);
    ops_curve_reload(r->p->curve_ops, t);
    membership_release(r->p->members, &t);
}

int main(int argc, char **argv)
{
    gw_config_t cfg = {
        .nodes = "",
        .membership_poll_ms = MEMBERSHIP_HEARTBEAT_MS_DEFAULT,
        .node_timeout_ms = ROUTER_TIMEOUT_MS,
        .stats_interval = 0,
        .ops = {.admin = ADMIN_DEFAULT, .admin_token_file = ""},
    };
    daemon_opts_defaults(&cfg.daemon);
    feopts_defaults(&cfg.fe);
    redisopts_defaults(&cfg.redis);
    daemon_t d;
    daemon_init(&d, "shoal-gateway", offsetof(gw_config_t, daemon));
    daemon_options(&d, feopts_spec(), offsetof(gw_config_t, fe));
    daemon_options(&d, redisopts_spec(), offsetof(gw_config_t, redis));
    daemon_options(&d, opsopts_spec(), offsetof(gw_config_t, ops));
    daemon_options(&d, OPTS_TABLE(gw_opts), 0);
    curveopts_defaults(&cfg.curve);
    daemon_options(&d, curveopts_spec(), offsetof(gw_config_t, curve));
    int rc = daemon_parse(&d,
                          "the stateless gateway of a shoal tracker cluster (UDP BEP 15, HTTP BEP "
                          "3/23/7/48); routes each request to the node owning its info-hash",
                          "shoal-gateway (--redis URL | --nodes ID=tcp://HOST:PORT,...) [options]",
                          &cfg, sizeof(cfg), argc, argv);
    if (rc >= 0)
        return rc;
    /* Before anything that takes time or starts a thread: a SIGTERM that comes while the
     * process is still starting waits for daemon_wait() (a clean stop) instead of killing it,
     * and every thread inherits the mask (so the handlers czmq installs with its first socket
     * never run). */
    daemon_block_signals(&d);
    if (!*cfg.redis.redis == !*cfg.nodes)
        return daemon_fail(&d, 2, "give exactly one of --redis URL and --nodes LIST");
    char err[512];
    frontend_config_t fc;
    bool random_secret;
    if (feopts_apply(&cfg.fe, &fc, &random_secret, err, sizeof(err)) != 0 ||
        redisopts_check(&cfg.redis, err, sizeof(err)) != 0)
        return daemon_fail(&d, 2, "%s", err);
    char prefix[REDISOPTS_PREFIX_MAX];
    redisopts_cluster_prefix(&cfg.redis, prefix);
    const char *pwfile = redisopts_password_file(&cfg.redis);
    if (*cfg.redis.redis && ops_redis_setup(&cfg.redis, OPS_REDIS_CHECK_MS, err, sizeof(err)) < 0)
        return daemon_fail(&d, 2, "%s", err);
    fc.backend_open = router_open;
    curve_t *curve = NULL;
    if (curveopts_on(&cfg.curve) && !(curve = curve_new(&cfg.curve, err, sizeof(err)))) {
        sodium_memzero(fc.secret, sizeof(fc.secret));
        return daemon_fail(&d, 2, "%s", err);
    }

    router_counters_t counters = {0};
    parts_t p = {.counters = &counters,
                 .from_redis = *cfg.redis.redis != '\0',
                 .poll_ms = cfg.membership_poll_ms,
                 .lookup_ms = cfg.node_timeout_ms,
                 .curve = curve};
    if (!(p.curve_ops = ops_curve_new(curve, "shoal-gateway")))
        return stop_all(&p, daemon_fail(&d, 1, "out of memory"));
    if (ops_redis_watch(&cfg.redis, &p.watch, err, sizeof(err)) != 0)
        return stop_all(&p, daemon_fail(&d, 1, "--redis: %s", err));
    /* The gateway's id in the membership: host name, pid and a random part. */
    char host[64] = "gateway", gw_id[PARTITION_ID_MAX], fingerprint[CONNID_FINGERPRINT_LEN];
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    /* Host name and pid are not unique on their own: containers sharing the host's network
     * have its host name and are all pid 1. A random part makes them so. */
    uint32_t nonce = randombytes_random();
    snprintf(gw_id, sizeof(gw_id), "%.40s-%ld-%08x", host, (long)getpid(), nonce);
    connid_fingerprint(fc.secret, fingerprint);
    membership_config_t mc = {
        .redis_url = *cfg.redis.redis ? cfg.redis.redis : NULL,
        .redis_password_file = pwfile,
        .static_nodes = *cfg.nodes ? cfg.nodes : NULL,
        .prefix = prefix,
        .gateway_id = *cfg.redis.redis ? gw_id : NULL,
        .gateway_fingerprint = fingerprint,
        .poll_ms = cfg.membership_poll_ms,
        .on_change = membership_changed,
        .change_arg = p.curve_ops,
        .log = slog_sink,
    };
    if (!(p.members = membership_new(&mc, err, sizeof(err))))
        return stop_all(
            &p, daemon_fail(&d, 2, "%s: %s", *cfg.redis.redis ? "--redis" : "--nodes", err));
    if (!(p.access = feopts_access_new(&cfg.fe, cfg.fe.workers, err, sizeof(err))))
        return stop_all(&p, daemon_fail(&d, 2, "%s", err));
    fc.access = p.access;
    feopts_raise_fd_limit(cfg.fe.http_max_conns);
    if (membership_start(p.members) != 0)
        return stop_all(&p, daemon_fail(&d, 1, "could not start the membership thread"));
    /* Connect to the nodes before serving when Redis answers quickly; if it does not, serve
     * anyway: requests fail with a retryable reason until the first table comes. */
    if (!membership_wait(p.members, 2000))
        slog_msg(SLOG_WARN, "no member table yet (Redis not answering, or no node registered): "
                            "requests fail until one comes");

    if (!(p.zctx = zmq_ctx_new()))
        return stop_all(&p, daemon_fail(&d, 1, "zmq_ctx_new: %s", zmq_strerror(zmq_errno())));
    /* libzmq moves the bytes in its own I/O threads; one keeps up with a few workers. */
    zmq_ctx_set(p.zctx, ZMQ_IO_THREADS, (int)(1 + cfg.fe.workers / 4));
    router_config_t rc_ = {
        .zmq_ctx = p.zctx,
        .tables =
            {
                .current = tables_current,
                .release = tables_release,
                .version = tables_version,
                .refresh = tables_refresh,
                .arg = p.members,
            },
        .timeout_ms = cfg.node_timeout_ms,
        .counters = &counters,
        .curve = p.curve,
    };
    fc.backend_arg = &rc_;
    p.fe = frontend_new(&fc, err, sizeof(err));
    sodium_memzero(fc.secret, sizeof(fc.secret));
    if (!p.fe)
        return stop_all(&p, daemon_fail(&d, 1, "%s", err));
    if (!(p.access_api = ops_access_open(p.access, cfg.fe.access_list, cfg.redis.redis, pwfile,
                                         prefix, err, sizeof(err))))
        return stop_all(&p, daemon_fail(&d, 2, "access list: %s", err));
    ops_config_t oc = {
        .role = "shoal-gateway", .collect = collect, .alive = alive, .ready = ready, .arg = &p};
    if (!(p.ops = ops_new(&cfg.ops, &oc, err, sizeof(err))))
        return stop_all(&p, daemon_fail(&d, 2, "%s", err));
    admin_t *admin = ops_admin(p.ops);
    if (ops_access_routes(admin, p.access_api) != 0 ||
        admin_route(admin, "GET", "/api/v1/cluster", 0, get_cluster, &p) != 0 ||
        admin_route(admin, "GET", "/api/v1/torrents", ADMIN_PREFIX, get_torrent, &p) != 0)
        return stop_all(&p, daemon_fail(&d, 1, "admin: route table full"));
    if (ops_start(p.ops, err, sizeof(err)) != 0)
        return stop_all(&p, daemon_fail(&d, 2, "%s", err));
    gw_reload_t reload = {.access = {.d = &d, .ops = p.ops, .access = p.access_api}, .p = &p};
    daemon_on_reload(&d, on_reload, &reload);
    if (frontend_start(p.fe, err, sizeof(err)) != 0)
        return stop_all(&p, daemon_fail(&d, 1, "%s", err));
    atomic_store(&p.serving, true);
    if (random_secret)
        slog_msg(SLOG_WARN, "no --secret: UDP connection ids from this gateway are refused by the "
                            "others (give every gateway the same --secret)");
    char where[512], shown[RCONN_URL_MAX + 4], admin_at[128];
    frontend_describe(p.fe, where, sizeof(where));
    ops_describe(p.ops, admin_at, sizeof(admin_at));
    slog_msg(SLOG_INFO,
             "shoal-gateway %s serving %s with %u workers, members from %s, gateway id %s, secret "
             "fingerprint %s, admin %s, CURVE %s",
             SHOAL_VERSION, where, cfg.fe.workers,
             *cfg.redis.redis ? rconn_redact(cfg.redis.redis, shown, sizeof(shown)) : "--nodes",
             gw_id, fingerprint, admin_at, curve ? "on" : "off");
    if (curve) {
        char pub[CURVE_KEY_TXT];
        curve_public(curve, pub);
        size_t skipped = 0, trusted = curve_trusted(curve, &skipped);
        slog_msg(SLOG_INFO, "CURVE: key %s; %zu trusted node keys in %s (%zu files skipped)", pub,
                 trusted, cfg.curve.trust, skipped);
    }

    frontend_stats_t st;
    while (daemon_wait(&d, cfg.stats_interval * 1000u) != DAEMON_STOP) {
        frontend_stats(p.fe, &st);
        log_counters(&st, &counters, p.members, "so far:");
    }
    atomic_store(&p.serving, false);
    ops_destroy(&p.ops); /* its handlers read the front end and the ZeroMQ context */
    frontend_stop(p.fe);
    frontend_stats(p.fe, &st);
    frontend_destroy(&p.fe); /* closes the routers' sockets, publishes their last counts */
    log_counters(&st, &counters, p.members, "served");
    membership_stop(p.members);
    return stop_all(&p, 0);
}
