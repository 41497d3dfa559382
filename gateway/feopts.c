/* SPDX-License-Identifier: MIT */
/* feopts: shared front-end options and their translation into a frontend_config_t. */
#include "feopts.h"

#include "addrtab.h"
#include "connban.h"
#include "ratelimit.h"
#include "secretfile.h"
#include "slog.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

void feopts_defaults(feopts_t *o)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    *o = (feopts_t){
        .udp = "[::]:6969",
        .http = "[::]:6969",
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
        .proxy_protocol = "",
        .secret = "",
        .secret_file = "",
        .connid_grace = 180,
        .access_mode = "off",
        .access_list = "",
        .rate_limit_table = 1u << 20,
        .connid_ban_window = 60,
        .connid_ban_time = 300,
        .connid_ban_table = 1u << 16,
    };
}

#define SPEC(...) OPTS_SPEC(feopts_t, __VA_ARGS__)

static const opts_spec_t specs[] = {
    SPEC("udp", "ADDR:PORT[,..]", OPTS_STRING, udp, 0, 0, "UDP (BEP 15) listen addresses, or off"),
    SPEC("http", "ADDR:PORT[,..]", OPTS_STRING, http, 0, 0,
         "HTTP (BEP 3/23/7/48) listen addresses, or off"),
    SPEC("workers", "N", OPTS_UINT, workers, 1, 1024,
         "worker threads (the default is the number of cores)"),
    SPEC("interval", "S", OPTS_UINT, interval, 1, 86400, "announce interval in seconds"),
    SPEC("min-interval", "S", OPTS_UINT, min_interval, 0, 86400,
         "min interval in seconds (0: half the interval)"),
    SPEC("numwant", "N", OPTS_UINT, numwant, 0, SHOAL_NUMWANT_MAX,
         "peers per reply when the client does not say"),
    SPEC("max-numwant", "N", OPTS_UINT, max_numwant, 1, SHOAL_NUMWANT_MAX,
         "most peers per reply (UDP: at most 200 IPv4 / 66 IPv6)"),
    SPEC("scrape-max", "N", OPTS_UINT, scrape_max, 1, SHOAL_SCRAPE_MAX,
         "most info_hashes in one HTTP scrape (UDP: 74)"),
    SPEC("http-max-conns", "N", OPTS_UINT, http_max_conns, 1, 1000000,
         "most open HTTP connections"),
    SPEC("http-max-request", "BYTES", OPTS_UINT, http_max_request, 256, 1048576,
         "largest HTTP request head"),
    SPEC("http-idle-timeout", "S", OPTS_UINT, http_idle_timeout, 1, 3600,
         "close HTTP connections idle this long"),
    SPEC("trust-proxy", "CIDR[,..]", OPTS_STRING, trust_proxy, 0, 0,
         "honour X-Forwarded-For / X-Real-IP only from these networks"),
    SPEC("proxy-protocol", "CIDR[,..]", OPTS_STRING, proxy_protocol, 0, 0,
         "load balancers that put a PROXY v2 header before each HTTP connection and UDP "
         "datagram: required from them, refused from anyone else"),
    SPEC("secret", "HEX64", OPTS_STRING, secret, 0, 0,
         "connection-id secret, 64 hex digits, the same on every tracker behind one name "
         "(default: random at start)"),
    SPEC("secret-file", "FILE", OPTS_STRING, secret_file, 0, 0,
         "read the connection-id secret from FILE instead (keeps it out of argv)"),
    SPEC("connid-grace", "S", OPTS_UINT, connid_grace, 0, 3600,
         "accept UDP connection ids this long past their 2 minutes"),
    SPEC("share-port", NULL, OPTS_FLAG, share_port, 0, 0,
         "let other processes bind the same --udp/--http addresses (the kernel spreads flows "
         "over them; give them one --secret); off: a held address is refused"),
    SPEC("access-mode", "off|allow|deny", OPTS_STRING, access_mode, 0, 0,
         "serve only the listed info-hashes (allow), all but them (deny), or all (off)"),
    SPEC("access-list", "FILE", OPTS_STRING, access_list, 0, 0,
         "info-hashes for --access-mode, 40 hex digits per line, # comments (allow with no list "
         "refuses everything)"),
    SPEC("rate-limit", "N", OPTS_UINT, rate_limit, 0, RATELIMIT_MAX_RATE,
         "requests a second per client address (IPv6: per /64) over UDP and HTTP; over it UDP is "
         "dropped and HTTP gets a retryable failure (0: off)"),
    SPEC("rate-limit-burst", "N", OPTS_UINT, rate_limit_burst, 0, RATELIMIT_MAX_RATE,
         "requests an address may send at once, the bucket size (0: twice --rate-limit)"),
    SPEC("rate-limit-table", "SLOTS", OPTS_UINT, rate_limit_table, ADDRTAB_MIN_SLOTS,
         ADDRTAB_MAX_SLOTS,
         "addresses the rate limit tracks at once, 8 bytes each, rounded up to a power of two"),
    SPEC("connid-ban", "N", OPTS_UINT, connid_ban, 0, CONNBAN_MAX_STRIKES,
         "ban a UDP client address (IPv6: its /64) that sends N invalid connection ids within "
         "--connid-ban-window (0: off)"),
    SPEC("connid-ban-window", "S", OPTS_UINT, connid_ban_window, 1, 86400,
         "seconds within which --connid-ban invalid connection ids ban"),
    SPEC("connid-ban-time", "S", OPTS_UINT, connid_ban_time, 1, 86400,
         "seconds a banned address gets no UDP reply at all"),
    SPEC("connid-ban-table", "SLOTS", OPTS_UINT, connid_ban_table, ADDRTAB_MIN_SLOTS,
         ADDRTAB_MAX_SLOTS,
         "addresses the connection-id ban list tracks at once, 8 bytes each, rounded up to a "
         "power of two"),
};

opts_table_t feopts_spec(void)
{
    return OPTS_TABLE(specs);
}

int feopts_apply(const feopts_t *o, frontend_config_t *fc, bool *random_secret, char *err,
                 size_t errlen)
{
    if (frontend_check_listen(o->udp, o->http, err, errlen) != 0)
        return -1;
    if (o->numwant > o->max_numwant) {
        snprintf(err, errlen, "--numwant %u is above --max-numwant %u", o->numwant, o->max_numwant);
        return -1;
    }
    if (o->min_interval > o->interval) {
        snprintf(err, errlen,
                 "--min-interval %u is above --interval %u (clients would be told to wait longer "
                 "than the interval they are given)",
                 o->min_interval, o->interval);
        return -1;
    }
    access_mode_t mode;
    if (access_mode_parse(o->access_mode, &mode) != 0) {
        snprintf(err, errlen, "--access-mode must be off, allow or deny, not '%s'", o->access_mode);
        return -1;
    }
    if (o->rate_limit_burst && !o->rate_limit) {
        snprintf(err, errlen, "--rate-limit-burst needs --rate-limit (the rate limit is off)");
        return -1;
    }
    if (*o->secret && *o->secret_file) {
        snprintf(err, errlen, "give --secret or --secret-file, not both");
        return -1;
    }
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    memset(fc, 0, sizeof(*fc));
    fc->udp = o->udp;
    fc->http = o->http;
    fc->workers = o->workers;
    fc->interval = o->interval;
    fc->min_interval = o->min_interval ? o->min_interval : o->interval / 2;
    fc->numwant_default = o->numwant;
    fc->numwant_max = o->max_numwant;
    fc->scrape_max = o->scrape_max;
    fc->http_max_conns = o->http_max_conns;
    fc->http_max_request = o->http_max_request;
    fc->http_idle_timeout = o->http_idle_timeout;
    fc->connid = connid_default_config;
    fc->connid.grace_s = o->connid_grace;
    fc->share_port = o->share_port;
    fc->rate_limit = o->rate_limit;
    fc->rate_limit_burst = o->rate_limit_burst ? o->rate_limit_burst : o->rate_limit * 2;
    if (fc->rate_limit_burst > RATELIMIT_MAX_RATE)
        fc->rate_limit_burst = RATELIMIT_MAX_RATE;
    fc->rate_limit_table = o->rate_limit_table;
    fc->connid_ban = o->connid_ban;
    fc->connid_ban_window = o->connid_ban_window;
    fc->connid_ban_time = o->connid_ban_time;
    fc->connid_ban_table = o->connid_ban_table;
    char why[200];
    if (netaddr_parse_list(o->trust_proxy, &fc->trusted_proxies, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--trust-proxy: %s", why);
        return -1;
    }
    if (netaddr_parse_list(o->proxy_protocol, &fc->proxy_protocol, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--proxy-protocol: %s", why);
        return -1;
    }
    *random_secret = !*o->secret && !*o->secret_file;
    if (*random_secret) {
        randombytes_buf(fc->secret, sizeof(fc->secret));
        return 0;
    }
    if (*o->secret) {
        if (connid_secret_from_hex(o->secret, fc->secret) != 0) {
            snprintf(err, errlen, "--secret must be 64 hex digits");
            return -1;
        }
        return 0;
    }
    char hex[2 * CONNID_SECRET_LEN + 2];
    bool loose = false;
    if (secretfile_read(o->secret_file, hex, sizeof(hex), &loose, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--secret-file %s", why);
        return -1;
    }
    int bad = connid_secret_from_hex(hex, fc->secret);
    sodium_memzero(hex, sizeof(hex));
    if (bad) {
        snprintf(err, errlen, "--secret-file %s: must hold 64 hex digits", o->secret_file);
        return -1;
    }
    if (loose)
        slog_msg(SLOG_WARN, "--secret-file %s can be read by every user: chmod o-r it",
                 o->secret_file);
    return 0;
}

access_t *feopts_access_new(const feopts_t *o, unsigned workers, char *err, size_t errlen)
{
    access_mode_t mode;
    if (access_mode_parse(o->access_mode, &mode) != 0) {
        snprintf(err, errlen, "--access-mode must be off, allow or deny, not '%s'", o->access_mode);
        return NULL;
    }
    aset_t *set = NULL;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char why[256];
    if (*o->access_list && access_load_file(o->access_list, &set, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "--access-list %s", why);
        return NULL;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    access_t *a = access_new(mode, workers);
    if (!a) {
        aset_free(&set);
        snprintf(err, errlen, "out of memory for the access list");
        return NULL;
    }
    if (set) {
        size_t n = aset_count(set);
        access_replace(a, &set);
        slog_msg(SLOG_INFO, "access list: mode %s, %zu info-hashes from %s in %.0f ms",
                 access_mode_name(mode), n, o->access_list,
                 (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
    } else if (mode == ACCESS_ALLOW) {
        slog_msg(SLOG_WARN, "--access-mode allow without --access-list: every torrent is refused "
                            "until a list is installed");
    }
    return a;
}

void feopts_raise_fd_limit(uint32_t http_max_conns)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Each HTTP connection is a descriptor; Debian's default soft limit (1024) is far below the
     * default --http-max-conns. */
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)http_max_conns + 64)
        slog_msg(SLOG_WARN,
                 "open file limit %llu is below --http-max-conns %u: connections beyond it are "
                 "refused",
                 (unsigned long long)rl.rlim_cur, http_max_conns);
}
