/* SPDX-License-Identifier: MIT */
/* shoal-gateway: the stateless cluster gateway. The same UDP and HTTP front ends as `shoal`, with
 * the router (router.h) as backend: each request goes to the node owning its partition, found in
 * the membership table (node/membership.h), read from Redis (--redis) or a static list (--nodes).
 *
 * Threads: the main thread parses options, opens the sockets, then waits for SIGTERM or SIGINT
 * (and logs counters now and then); N front-end workers each run one router with one ZeroMQ
 * DEALER per node; with --redis, one membership actor polls Redis and publishes tables. */
#include "feopts.h"
#include "frontend.h"
#include "log.h"
#include "membership.h"
#include "opts.h"
#include "router.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

extern char **environ;

typedef struct {
    feopts_t fe; /* the front-end options shared with shoal */
    const char *redis;
    const char *nodes;
    uint32_t membership_poll_ms;
    uint32_t node_timeout_ms;
    uint32_t stats_interval;
} gw_config_t;

#define OPT(name, meta, type, field, lo, hi, help)                                                 \
    {                                                                                              \
        name, meta, type, offsetof(gw_config_t, field), lo, hi, help                               \
    }

/* The cluster's options; the front end's come from feopts_spec(). */
static const opts_spec_t gw_opts[] = {
    OPT("redis", "URL", OPTS_STRING, redis, 0, 0,
        "read the cluster's members from Redis, redis://HOST:PORT[/DB]"),
    OPT("nodes", "ID=tcp://HOST:PORT[,..]", OPTS_STRING, nodes, 0, 0,
        "a static member list instead of --redis"),
    OPT("membership-interval", "MS", OPTS_UINT, membership_poll_ms, 10, 600000,
        "read the member set from Redis this often"),
    OPT("node-timeout", "MS", OPTS_UINT, node_timeout_ms, 10, 60000,
        "fail a request (retryable) when its node has not answered in this time"),
    OPT("stats-interval", "S", OPTS_UINT, stats_interval, 0, 86400,
        "log the counters this often (0: only at exit)"),
};

#define N_GW_OPTS (sizeof(gw_opts) / sizeof(gw_opts[0]))
#define N_OPTS    (FEOPTS_N_SPECS + N_GW_OPTS)

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

static void membership_log(void *arg, int level, const char *msg)
{
    (void)arg;
    log_msg((log_level_t)level, "%s", msg);
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
    log_msg(LOG_INFO, "table: %zu nodes, epoch %016llx: %s", n,
            (unsigned long long)partition_table_epoch(table), list);
}

/* ---- main ----------------------------------------------------------------------------------- */

static void log_counters(const frontend_stats_t *fst, router_counters_t *rc, const char *when)
{
    const frontend_stats_t st = *fst;
#define LD(x) (unsigned long long)atomic_load_explicit(&rc->x, memory_order_relaxed)
    log_msg(LOG_INFO,
            "%s udp connect=%llu announce=%llu scrape=%llu errors=%llu dropped=%llu, "
            "http announce=%llu scrape=%llu errors=%llu connections=%llu refused=%llu; "
            "router requests=%llu answered=%llu failed=%llu timeouts=%llu busy=%llu moved=%llu "
            "batches=%llu send_failures=%llu bad_replies=%llu tables=%llu",
            when, (unsigned long long)st.udp_connect, (unsigned long long)st.udp_announce,
            (unsigned long long)st.udp_scrape, (unsigned long long)st.udp_errors,
            (unsigned long long)st.udp_dropped, (unsigned long long)st.http_announce,
            (unsigned long long)st.http_scrape, (unsigned long long)st.http_errors,
            (unsigned long long)st.http_accepted, (unsigned long long)st.http_refused, LD(requests),
            LD(answered), LD(failed), LD(timeouts), LD(busy), LD(moved), LD(batches),
            LD(send_failures), LD(bad_replies), LD(tables));
#undef LD
}

int main(int argc, char **argv)
{
    gw_config_t cfg = {
        .redis = "",
        .nodes = "",
        .membership_poll_ms = MEMBERSHIP_HEARTBEAT_MS_DEFAULT,
        .node_timeout_ms = ROUTER_TIMEOUT_MS,
        .stats_interval = 0,
    };
    feopts_defaults(&cfg.fe);
    opts_spec_t spec[N_OPTS];
    size_t n_spec = feopts_spec(spec, offsetof(gw_config_t, fe));
    memcpy(spec + n_spec, gw_opts, sizeof(gw_opts));
    char err[256];
    int cli = opts_cli("shoal-gateway",
                       "the stateless gateway of a shoal tracker cluster (UDP BEP 15, HTTP BEP "
                       "3/23/7/48); routes each request to the node owning its info-hash",
                       "shoal-gateway (--redis URL | --nodes ID=tcp://HOST:PORT,...) [options]",
                       spec, N_OPTS, &cfg, sizeof(cfg), argc, argv);
    if (cli >= 0)
        return cli;
    if (!*cfg.redis == !*cfg.nodes) {
        fprintf(stderr, "shoal-gateway: give exactly one of --redis URL and --nodes LIST\n");
        return 2;
    }
    frontend_config_t fc;
    bool random_secret;
    if (feopts_apply(&cfg.fe, &fc, &random_secret, err, sizeof(err)) != 0) {
        fprintf(stderr, "shoal-gateway: %s\n", err);
        return 2;
    }
    fc.backend_open = router_open;

    /* Signals are taken by sigwait() in this thread only; every thread started from here on
     * (workers, the membership actor, ZeroMQ's I/O threads) inherits the mask, so the handlers
     * czmq installs when the membership actor starts never run. (czmq.h is not included here:
     * its <syslog.h> would redefine LOG_INFO and LOG_DEBUG.) */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    membership_config_t mc = {
        .redis_url = *cfg.redis ? cfg.redis : NULL,
        .static_nodes = *cfg.nodes ? cfg.nodes : NULL,
        .poll_ms = cfg.membership_poll_ms,
        .on_change = membership_changed,
        .log = membership_log,
    };
    membership_t *members = membership_new(&mc, err, sizeof(err));
    if (!members) {
        fprintf(stderr, "shoal-gateway: %s: %s\n", *cfg.redis ? "--redis" : "--nodes", err);
        return 2;
    }
    feopts_raise_fd_limit(cfg.fe.http_max_conns);
    if (membership_start(members) != 0) {
        fprintf(stderr, "shoal-gateway: could not start the membership thread\n");
        membership_destroy(&members);
        return 1;
    }
    /* Connect to the nodes before serving when Redis answers quickly; if it does not, serve
     * anyway: requests fail with a retryable reason until the first table comes. */
    if (!membership_wait(members, 2000))
        log_msg(LOG_WARN, "no member table yet (Redis not answering, or no node registered): "
                          "requests fail until one comes");

    void *zctx = zmq_ctx_new();
    if (!zctx) {
        fprintf(stderr, "shoal-gateway: zmq_ctx_new: %s\n", zmq_strerror(zmq_errno()));
        membership_destroy(&members);
        return 1;
    }
    /* libzmq moves the bytes in its own I/O threads; one keeps up with a few workers. */
    zmq_ctx_set(zctx, ZMQ_IO_THREADS, (int)(1 + cfg.fe.workers / 4));
    router_counters_t counters = {0};
    router_config_t rc = {
        .zmq_ctx = zctx,
        .tables =
            {
                .current = tables_current,
                .release = tables_release,
                .version = tables_version,
                .refresh = tables_refresh,
                .arg = members,
            },
        .timeout_ms = cfg.node_timeout_ms,
        .counters = &counters,
    };
    fc.backend_arg = &rc;

    frontend_t *fe = frontend_new(&fc, err, sizeof(err));
    sodium_memzero(fc.secret, sizeof(fc.secret));
    if (!fe) {
        fprintf(stderr, "shoal-gateway: %s\n", err);
        zmq_ctx_term(zctx);
        membership_destroy(&members);
        return 1;
    }
    if (frontend_start(fe, err, sizeof(err)) != 0) {
        fprintf(stderr, "shoal-gateway: %s\n", err);
        frontend_destroy(&fe);
        zmq_ctx_term(zctx);
        membership_destroy(&members);
        return 1;
    }
    if (random_secret)
        log_msg(LOG_WARN, "no --secret: UDP connection ids from this gateway are refused by the "
                          "others (give every gateway the same --secret)");
    char where[512];
    frontend_describe(fe, where, sizeof(where));
    log_msg(LOG_INFO, "shoal-gateway %s serving %s with %u workers, members from %s", SHOAL_VERSION,
            where, cfg.fe.workers, *cfg.redis ? cfg.redis : "--nodes");

    int sig = 0;
    for (;;) {
        if (cfg.stats_interval == 0) {
            if (sigwait(&sigs, &sig) == 0)
                break;
            continue;
        }
        struct timespec ts = {.tv_sec = cfg.stats_interval};
        sig = sigtimedwait(&sigs, NULL, &ts);
        if (sig > 0)
            break;
        if (errno == EAGAIN) {
            frontend_stats_t st;
            frontend_stats(fe, &st);
            log_counters(&st, &counters, "so far:");
        }
    }
    log_msg(LOG_INFO, "signal %d: shutting down", sig);
    frontend_stop(fe);
    frontend_stats_t st;
    frontend_stats(fe, &st);
    frontend_destroy(&fe); /* closes the routers' sockets, publishes their last counts */
    log_counters(&st, &counters, "served");
    zmq_ctx_term(zctx);
    membership_stop(members);
    membership_destroy(&members);
    return 0;
}
