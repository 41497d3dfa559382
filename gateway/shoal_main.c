/* SPDX-License-Identifier: MIT */
/* shoal: the standalone tracker. The gateway's UDP and HTTP front ends with the node's swarm
 * repository plugged in as an in-process backend: no ZeroMQ hop, no Redis, one process.
 *
 * Threads: the main thread parses options, opens the sockets, then only waits for SIGTERM or
 * SIGINT; N front-end workers serve clients; one sweeper expires peers stripe by stripe. */
#include "frontend.h"
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
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct {
    const char *udp;
    const char *http;
    uint32_t workers;
    uint32_t interval;
    uint32_t min_interval;
    uint32_t peer_timeout;
    uint32_t numwant;
    uint32_t max_numwant;
    uint32_t scrape_max;
    uint32_t max_torrents;
    uint32_t max_peers;
    uint32_t memory_mib;
    uint32_t stripe_bits;
    uint32_t http_max_conns;
    uint32_t http_max_request;
    uint32_t http_idle_timeout;
    const char *trust_proxy;
    const char *secret;
    uint32_t connid_grace;
    const char *log_level;
} shoal_config_t;

#define OPT(name, meta, type, field, lo, hi, help)                                                 \
    {                                                                                              \
        name, meta, type, offsetof(shoal_config_t, field), lo, hi, help                            \
    }

static const opts_spec_t shoal_opts[] = {
    OPT("udp", "ADDR:PORT[,..]", OPTS_STRING, udp, 0, 0, "UDP (BEP 15) listen addresses, or off"),
    OPT("http", "ADDR:PORT[,..]", OPTS_STRING, http, 0, 0,
        "HTTP (BEP 3/23/7/48) listen addresses, or off"),
    OPT("workers", "N", OPTS_UINT, workers, 1, 1024, "worker threads (default: one per core)"),
    OPT("interval", "S", OPTS_UINT, interval, 1, 86400, "announce interval in seconds"),
    OPT("min-interval", "S", OPTS_UINT, min_interval, 0, 86400,
        "min interval in seconds (0: half the interval)"),
    OPT("peer-timeout", "S", OPTS_UINT, peer_timeout, 1, 604800,
        "forget a peer not heard from for this long"),
    OPT("numwant", "N", OPTS_UINT, numwant, 0, SHOAL_NUMWANT_MAX,
        "peers per reply when the client does not say"),
    OPT("max-numwant", "N", OPTS_UINT, max_numwant, 1, SHOAL_NUMWANT_MAX,
        "most peers per reply (UDP: at most 200 IPv4 / 66 IPv6)"),
    OPT("scrape-max", "N", OPTS_UINT, scrape_max, 1, SHOAL_SCRAPE_MAX,
        "most info_hashes in one HTTP scrape (UDP: 74)"),
    OPT("max-torrents", "N", OPTS_UINT, max_torrents, 1, 0xffffffffu,
        "most swarms kept; announces for new ones are refused beyond it"),
    OPT("max-peers", "N", OPTS_UINT, max_peers, 1, 0xffffffffu,
        "most peers kept per swarm and address family"),
    OPT("memory", "MIB", OPTS_UINT, memory_mib, 16, 1048576,
        "memory budget for swarms and peers, MiB"),
    OPT("stripes", "BITS", OPTS_UINT, stripe_bits, 0, 16,
        "the repository has 2^BITS independently locked stripes"),
    OPT("http-max-conns", "N", OPTS_UINT, http_max_conns, 1, 1000000, "most open HTTP connections"),
    OPT("http-max-request", "BYTES", OPTS_UINT, http_max_request, 256, 1048576,
        "largest HTTP request head"),
    OPT("http-idle-timeout", "S", OPTS_UINT, http_idle_timeout, 1, 3600,
        "close HTTP connections idle this long"),
    OPT("trust-proxy", "CIDR[,..]", OPTS_STRING, trust_proxy, 0, 0,
        "honour X-Forwarded-For / X-Real-IP only from these networks"),
    OPT("secret", "HEX64", OPTS_STRING, secret, 0, 0,
        "connection-id secret, 64 hex digits (default: random at start)"),
    OPT("connid-grace", "S", OPTS_UINT, connid_grace, 0, 3600,
        "accept UDP connection ids this long past their 2 minutes"),
    OPT("log-level", "LEVEL", OPTS_STRING, log_level, 0, 0, "error, warn, info or debug"),
};

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

static void report_expired(void *arg, size_t removed)
{
    (void)arg;
    log_msg(LOG_DEBUG, "expired %zu peers", removed);
}

/* ---- main ----------------------------------------------------------------------------------- */

/* Each HTTP connection is a descriptor; Debian's default soft limit (1024) is far below the
 * default --http-max-conns, so take the hard limit and say if even that is short. */
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

static void usage(FILE *out, const shoal_config_t *defaults)
{
    fprintf(out,
            "shoal %s: a fast BitTorrent tracker (UDP BEP 15, HTTP BEP 3/23/7/48)\n\n"
            "usage: shoal [options]\n\n",
            SHOAL_VERSION);
    opts_help(out, shoal_opts, sizeof(shoal_opts) / sizeof(shoal_opts[0]), defaults);
    fprintf(out, "  %-28s this text\n  %-28s print the version\n", "--help", "--version");
}

int main(int argc, char **argv)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    shoal_config_t cfg = {
        .udp = "[::]:6969",
        .http = "[::]:6969",
        .workers = cores > 0 ? (uint32_t)cores : 1,
        .interval = 1800,
        .min_interval = 0,
        .peer_timeout = 2700,
        .numwant = SHOAL_NUMWANT_DEF,
        .max_numwant = SHOAL_NUMWANT_MAX,
        .scrape_max = 128,
        .max_torrents = 5000000,
        .max_peers = 100000,
        .memory_mib = 4096,
        .stripe_bits = 8,
        .http_max_conns = 10000,
        .http_max_request = 8192,
        .http_idle_timeout = 30,
        .trust_proxy = "",
        .secret = "",
        .connid_grace = 180,
        .log_level = "info",
    };
    shoal_config_t defaults = cfg;
    char err[256];
    switch (opts_parse(shoal_opts, sizeof(shoal_opts) / sizeof(shoal_opts[0]), &cfg, argc, argv,
                       environ, err, sizeof(err))) {
    case OPTS_HELP:
        usage(stdout, &defaults);
        return 0;
    case OPTS_VERSION:
        printf("shoal %s\n", SHOAL_VERSION);
        return 0;
    case OPTS_ERROR:
        fprintf(stderr, "shoal: %s\n", err);
        return 2;
    case OPTS_RUN:
        break;
    }
    log_level_t level;
    if (log_level_parse(cfg.log_level, &level) != 0) {
        fprintf(stderr, "shoal: --log-level must be error, warn, info or debug\n");
        return 2;
    }
    log_set_level(level);
    if (frontend_check_listen(cfg.udp, cfg.http, err, sizeof(err)) != 0) {
        fprintf(stderr, "shoal: %s\n", err);
        return 2;
    }
    raise_fd_limit(cfg.http_max_conns);
    if (sodium_init() < 0) {
        fprintf(stderr, "shoal: libsodium failed to initialise\n");
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
        .backend_open = local_open,
    };
    fc.connid.grace_s = cfg.connid_grace;
    if (netaddr_parse_list(cfg.trust_proxy, &fc.trusted_proxies, err, sizeof(err)) != 0) {
        fprintf(stderr, "shoal: --trust-proxy: %s\n", err);
        return 2;
    }
    if (*cfg.secret) {
        if (connid_secret_from_hex(cfg.secret, fc.secret) != 0) {
            fprintf(stderr, "shoal: --secret must be 64 hex digits\n");
            return 2;
        }
    } else {
        randombytes_buf(fc.secret, sizeof(fc.secret));
    }

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

    frontend_t *fe = frontend_new(&fc, err, sizeof(err));
    sodium_memzero(fc.secret, sizeof(fc.secret));
    if (!fe) {
        fprintf(stderr, "shoal: %s\n", err);
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
        repo_destroy(&repo);
        return 1;
    }
    if (frontend_start(fe, err, sizeof(err)) != 0) {
        fprintf(stderr, "shoal: %s\n", err);
        sweeper_stop(&sweeper);
        frontend_destroy(&fe);
        repo_destroy(&repo);
        return 1;
    }
    char where[512];
    frontend_describe(fe, where, sizeof(where));
    log_msg(LOG_INFO, "shoal %s serving %s with %u workers, %zu stripes", SHOAL_VERSION, where,
            cfg.workers, repo_stripes(repo));

    int sig = 0;
    while (sigwait(&sigs, &sig) != 0)
        ;
    log_msg(LOG_INFO, "signal %d: shutting down", sig);
    frontend_stop(fe);
    sweeper_stop(&sweeper);

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
    repo_destroy(&repo);
    return 0;
}
