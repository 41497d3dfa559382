/* SPDX-License-Identifier: MIT */
/* shoal-gateway: the stateless cluster gateway. The same UDP and HTTP front ends as `shoal`, with
 * the router (router.h) as backend: each request goes to the node owning its partition, found in
 * the membership table (node/membership.h), read from Redis (--redis) or a static list (--nodes).
 *
 * Threads: the main thread parses options, opens the sockets, then waits for SIGTERM or SIGINT
 * (and logs counters now and then); N front-end workers each run one router with one ZeroMQ
 * DEALER per node; with --redis, one membership actor polls Redis and publishes tables. */
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
    const char *udp;
    const char *http;
    const char *redis;
    const char *nodes;
    uint32_t membership_poll_ms;
    uint32_t node_timeout_ms;
    uint32_t workers;
    uint32_t interval;
    uint32_t min_interval;
    uint32_t numwant;
    uint32_t max_numwant;
    uint32_t scrape_max;
    uint32_t http_max_conns;
    uint32_t http_max_request;
    uint32_t http_idle_timeout;
    const char *trust_proxy;
    const char *secret;
    uint32_t connid_grace;
    uint32_t stats_interval;
    const char *log_level;
} gw_config_t;

#define OPT(name, meta, type, field, lo, hi, help)                                                 \
    {                                                                                              \
        name, meta, type, offsetof(gw_config_t, field), lo, hi, help                               \
    }

static const opts_spec_t gw_opts[] = {
    OPT("udp", "ADDR:PORT[,..]", OPTS_STRING, udp, 0, 0, "UDP (BEP 15) listen addresses, or off"),
    OPT("http", "ADDR:PORT[,..]", OPTS_STRING, http, 0, 0,
        "HTTP (BEP 3/23/7/48) listen addresses, or off"),
    OPT("redis", "URL", OPTS_STRING, redis, 0, 0,
        "read the cluster's members from Redis, redis://HOST:PORT[/DB]"),
    OPT("nodes", "ID=tcp://HOST:PORT[,..]", OPTS_STRING, nodes, 0, 0,
        "a static member list instead of --redis"),
    OPT("membership-interval", "MS", OPTS_UINT, membership_poll_ms, 10, 600000,
        "read the member set from Redis this often"),
    OPT("node-timeout", "MS", OPTS_UINT, node_timeout_ms, 10, 60000,
        "fail a request (retryable) when its node has not answered in this time"),
    OPT("workers", "N", OPTS_UINT, workers, 1, 1024, "worker threads (default: one per core)"),
    OPT("interval", "S", OPTS_UINT, interval, 1, 86400, "announce interval in seconds"),
    OPT("min-interval", "S", OPTS_UINT, min_interval, 0, 86400,
        "min interval in seconds (0: half the interval)"),
    OPT("numwant", "N", OPTS_UINT, numwant, 0, SHOAL_NUMWANT_MAX,
        "peers per reply when the client does not say"),
    OPT("max-numwant", "N", OPTS_UINT, max_numwant, 1, SHOAL_NUMWANT_MAX,
        "most peers per reply (UDP: at most 200 IPv4 / 66 IPv6)"),
    OPT("scrape-max", "N", OPTS_UINT, scrape_max, 1, SHOAL_SCRAPE_MAX,
        "most info_hashes in one HTTP scrape (UDP: 74)"),
    OPT("http-max-conns", "N", OPTS_UINT, http_max_conns, 1, 1000000, "most open HTTP connections"),
    OPT("http-max-request", "BYTES", OPTS_UINT, http_max_request, 256, 1048576,
        "largest HTTP request head"),
    OPT("http-idle-timeout", "S", OPTS_UINT, http_idle_timeout, 1, 3600,
        "close HTTP connections idle this long"),
    OPT("trust-proxy", "CIDR[,..]", OPTS_STRING, trust_proxy, 0, 0,
        "honour X-Forwarded-For / X-Real-IP only from these networks"),
    OPT("secret", "HEX64", OPTS_STRING, secret, 0, 0,
        "connection-id secret, the same on every gateway (default: random)"),
    OPT("connid-grace", "S", OPTS_UINT, connid_grace, 0, 3600,
        "accept UDP connection ids this long past their 2 minutes"),
    OPT("stats-interval", "S", OPTS_UINT, stats_interval, 0, 86400,
        "log the counters this often (0: only at exit)"),
    OPT("log-level", "LEVEL", OPTS_STRING, log_level, 0, 0, "error, warn, info or debug"),
};

#define N_OPTS (sizeof(gw_opts) / sizeof(gw_opts[0]))

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

static void raise_fd_limit(uint32_t http_max_conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)http_max_conns + 64)
        log_msg(LOG_WARN,
                "open file limit %llu is below --http-max-conns %u: connections beyond it are "
                "refused",
                (unsigned long long)rl.rlim_cur, http_max_conns);
}

static void usage(FILE *out, const gw_config_t *defaults)
{
    fprintf(out,
            "shoal-gateway %s: the stateless gateway of a shoal tracker cluster (UDP BEP 15,\n"
            "HTTP BEP 3/23/7/48); routes each request to the node owning its info-hash\n\n"
            "usage: shoal-gateway (--redis URL | --nodes ID=tcp://HOST:PORT,...) [options]\n\n",
            SHOAL_VERSION);
    opts_help(out, gw_opts, N_OPTS, defaults);
    fprintf(out, "  %-28s this text\n  %-28s print the version\n", "--help", "--version");
}

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
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    gw_config_t cfg = {
        .udp = "[::]:6969",
        .http = "[::]:6969",
        .redis = "",
        .nodes = "",
        .membership_poll_ms = MEMBERSHIP_HEARTBEAT_MS_DEFAULT,
        .node_timeout_ms = ROUTER_TIMEOUT_MS,
        .workers = cores > 0 ? (uint32_t)cores : 1,
        .interval = 1800,
        .min_interval = 0,
        .numwant = SHOAL_NUMWANT_DEF,
        .max_numwant = SHOAL_NUMWANT_MAX,
        .scrape_max = 128,
        .http_max_conns = 10000,
        .http_max_request = 8192,
        .http_idle_timeout = 30,
        .trust_proxy = "",
        .secret = "",
        .connid_grace = 180,
        .stats_interval = 0,
        .log_level = "info",
    };
    gw_config_t defaults = cfg;
    char err[256];
    switch (opts_parse(gw_opts, N_OPTS, &cfg, argc, argv, environ, err, sizeof(err))) {
    case OPTS_HELP:
        usage(stdout, &defaults);
        return 0;
    case OPTS_VERSION:
        printf("shoal-gateway %s\n", SHOAL_VERSION);
        return 0;
    case OPTS_ERROR:
        fprintf(stderr, "shoal-gateway: %s\n", err);
        return 2;
    case OPTS_RUN:
        break;
    }
    log_level_t level;
    if (log_level_parse(cfg.log_level, &level) != 0) {
        fprintf(stderr, "shoal-gateway: --log-level must be error, warn, info or debug\n");
        return 2;
    }
    log_set_level(level);
    if (!*cfg.redis == !*cfg.nodes) {
        fprintf(stderr, "shoal-gateway: give exactly one of --redis URL and --nodes LIST\n");
        return 2;
    }
    if (frontend_check_listen(cfg.udp, cfg.http, err, sizeof(err)) != 0) {
        fprintf(stderr, "shoal-gateway: %s\n", err);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "shoal-gateway: libsodium failed to initialise\n");
        return 1;
    }
    frontend_config_t fc = {
        .udp = cfg.udp,
        .http = cfg.http,
        .workers = cfg.workers,
        .interval = cfg.interval,
        .min_interval = cfg.min_interval ? cfg.min_interval : cfg.interval / 2,
        .numwant_default = cfg.numwant,
        .numwant_max = cfg.max_numwant,
        .scrape_max = cfg.scrape_max,
        .http_max_conns = cfg.http_max_conns,
        .http_max_request = cfg.http_max_request,
        .http_idle_timeout = cfg.http_idle_timeout,
        .connid = connid_default_config,
        .backend_open = router_open,
    };
    fc.connid.grace_s = cfg.connid_grace;
    if (netaddr_parse_list(cfg.trust_proxy, &fc.trusted_proxies, err, sizeof(err)) != 0) {
        fprintf(stderr, "shoal-gateway: --trust-proxy: %s\n", err);
        return 2;
    }
    bool random_secret = !*cfg.secret;
    if (!random_secret) {
        if (connid_secret_from_hex(cfg.secret, fc.secret) != 0) {
            fprintf(stderr, "shoal-gateway: --secret must be 64 hex digits\n");
            return 2;
        }
    } else {
        randombytes_buf(fc.secret, sizeof(fc.secret));
    }

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
    raise_fd_limit(cfg.http_max_conns);
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
    zmq_ctx_set(zctx, ZMQ_IO_THREADS, (int)(1 + cfg.workers / 4));
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
            where, cfg.workers, *cfg.redis ? cfg.redis : "--nodes");

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
