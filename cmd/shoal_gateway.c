/* SPDX-License-Identifier: MIT */
/* shoal-gateway: the stateless cluster gateway. The same UDP and HTTP front ends as `shoal`, with
 * the router (router.h) as backend: each request goes to the node owning its partition, found in
 * the membership table (node/membership.h), read from Redis (--redis) or a static list (--nodes).
 *
 * Threads: the main thread parses options, opens the sockets, then waits for signals (and logs
 * counters now and then); N front-end workers each run one router with one ZeroMQ
 * DEALER per node; with --redis, one membership actor polls Redis and publishes tables. */
#include "daemon.h"
#include "feopts.h"
#include "frontend.h"
#include "membership.h"
#include "rconn.h"
#include "redisopts.h"
#include "router.h"
#include "slog.h"

#include <sodium.h>
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
    (void)arg;
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
    access_t *access; /* the front end's access list; outlives it */
} parts_t;

static int stop_all(parts_t *p, int rc)
{
    frontend_destroy(&p->fe);
    access_destroy(&p->access);
    if (p->zctx)
        zmq_ctx_term(p->zctx);
    p->zctx = NULL;
    membership_destroy(&p->members);
    return rc;
}

int main(int argc, char **argv)
{
    gw_config_t cfg = {
        .nodes = "",
        .membership_poll_ms = MEMBERSHIP_HEARTBEAT_MS_DEFAULT,
        .node_timeout_ms = ROUTER_TIMEOUT_MS,
        .stats_interval = 0,
    };
    daemon_opts_defaults(&cfg.daemon);
    feopts_defaults(&cfg.fe);
    redisopts_defaults(&cfg.redis);
    daemon_t d;
    daemon_init(&d, "shoal-gateway", offsetof(gw_config_t, daemon));
    daemon_options(&d, feopts_spec(), offsetof(gw_config_t, fe));
    daemon_options(&d, redisopts_spec(), offsetof(gw_config_t, redis));
    daemon_options(&d, OPTS_TABLE(gw_opts), 0);
    int rc = daemon_parse(&d,
                          "the stateless gateway of a shoal tracker cluster (UDP BEP 15, HTTP BEP "
                          "3/23/7/48); routes each request to the node owning its info-hash",
                          "shoal-gateway (--redis URL | --nodes ID=tcp://HOST:PORT,...) [options]",
                          &cfg, sizeof(cfg), argc, argv);
    if (rc >= 0)
        return rc;
    if (!*cfg.redis.redis == !*cfg.nodes)
        return daemon_fail(&d, 2, "give exactly one of --redis URL and --nodes LIST");
    char err[256];
    frontend_config_t fc;
    bool random_secret;
    if (feopts_apply(&cfg.fe, &fc, &random_secret, err, sizeof(err)) != 0 ||
        redisopts_check(&cfg.redis, err, sizeof(err)) != 0)
        return daemon_fail(&d, 2, "%s", err);
    char prefix[REDISOPTS_PREFIX_MAX];
    redisopts_cluster_prefix(&cfg.redis, prefix);
    fc.backend_open = router_open;

    /* Every thread started from here on (workers, the membership actor, ZeroMQ's I/O threads)
     * inherits the mask, so the handlers czmq installs when the membership actor starts never
     * run. */
    daemon_block_signals(&d);
    parts_t p = {0};
    /* The gateway's id in the membership: host name and pid, unique per process. */
    char host[64] = "gateway", gw_id[PARTITION_ID_MAX], fingerprint[CONNID_FINGERPRINT_LEN];
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(gw_id, sizeof(gw_id), "%.40s-%ld", host, (long)getpid());
    connid_fingerprint(fc.secret, fingerprint);
    membership_config_t mc = {
        .redis_url = *cfg.redis.redis ? cfg.redis.redis : NULL,
        .static_nodes = *cfg.nodes ? cfg.nodes : NULL,
        .prefix = prefix,
        .gateway_id = *cfg.redis.redis ? gw_id : NULL,
        .gateway_fingerprint = fingerprint,
        .poll_ms = cfg.membership_poll_ms,
        .on_change = membership_changed,
        .log = slog_sink,
    };
    if (!(p.members = membership_new(&mc, err, sizeof(err))))
        return daemon_fail(&d, 2, "%s: %s", *cfg.redis.redis ? "--redis" : "--nodes", err);
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
    router_counters_t counters = {0};
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
    };
    fc.backend_arg = &rc_;
    p.fe = frontend_new(&fc, err, sizeof(err));
    sodium_memzero(fc.secret, sizeof(fc.secret));
    if (!p.fe || frontend_start(p.fe, err, sizeof(err)) != 0)
        return stop_all(&p, daemon_fail(&d, 1, "%s", err));
    if (random_secret)
        slog_msg(SLOG_WARN, "no --secret: UDP connection ids from this gateway are refused by the "
                            "others (give every gateway the same --secret)");
    char where[512], shown[RCONN_URL_MAX + 4];
    frontend_describe(p.fe, where, sizeof(where));
    slog_msg(SLOG_INFO,
             "shoal-gateway %s serving %s with %u workers, members from %s, gateway id %s, secret "
             "fingerprint %s",
             SHOAL_VERSION, where, cfg.fe.workers,
             *cfg.redis.redis ? rconn_redact(cfg.redis.redis, shown, sizeof(shown)) : "--nodes",
             gw_id, fingerprint);

    frontend_stats_t st;
    while (daemon_wait(&d, cfg.stats_interval * 1000u) != DAEMON_STOP) {
        frontend_stats(p.fe, &st);
        log_counters(&st, &counters, p.members, "so far:");
    }
    frontend_stop(p.fe);
    frontend_stats(p.fe, &st);
    frontend_destroy(&p.fe); /* closes the routers' sockets, publishes their last counts */
    log_counters(&st, &counters, p.members, "served");
    membership_stop(p.members);
    return stop_all(&p, 0);
}
