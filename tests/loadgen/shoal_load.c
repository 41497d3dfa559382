/* SPDX-License-Identifier: MIT */
/* shoal-load: a BitTorrent tracker load generator (UDP BEP 15 and HTTP), modelled on the
 * method of aquatic_udp_load_test: many requests in flight per socket, a weighted
 * connect/announce/scrape mix, peers and torrents from fixed pools with Pareto popularity, and
 * every reply checked. It only ever talks to loopback. See README.md for flags and output.
 *
 * Invariant: the run ends by itself after warmup + duration seconds (both bounded); the main
 * thread reads worker statistics only after joining the workers. */
#include "lglat.h"
#include "lgtarget.h"
#include "lgwork.h"
#include "load.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DURATION 3600
#define MAX_WARMUP   600
#define EXIT_RUNTIME 1
#define EXIT_USAGE   2
#define EXIT_STRICT  3

typedef struct {
    load_config_t cfg;
    lgwork_config_t wc;
    unsigned duration;
    unsigned warmup;
    bool sockets_set, inflight_set;
    bool print_hashes;
    bool json;
    bool strict;
} opts_t;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shoal-load [options]\n"
            "Load a BitTorrent tracker on loopback over UDP (BEP 15) or HTTP, check every reply,\n"
            "and report replies/s and latency; the last line is a RESULT line (see README.md).\n"
            "\n"
            "  --mode udp|http          protocol (default udp)\n"
            "  --target ADDR:PORT       tracker, 127.0.0.0/8 or [::1] only (default "
            "127.0.0.1:6969)\n"
            "  --workers N              threads, each with own sockets and ids (default 1, "
            "max 64)\n"
            "  --duration S             measured seconds (default 10, max 3600)\n"
            "  --warmup S               seconds of load before measuring (default 1, max 600)\n"
            "  --sockets N              UDP sockets / HTTP connections per worker (default 4 udp,\n"
            "                           16 http; max 1024)\n"
            "  --inflight N             requests outstanding per socket (default 32 udp, max "
            "4096;\n"
            "                           1 http = no pipelining, max 64)\n"
            "  --timeout-ms MS          a request unanswered this long is a timeout and frees its\n"
            "                           slot (default 1000)\n"
            "  --rate R                 open loop: R requests/s over all workers (default 0 = as\n"
            "                           fast as replies allow)\n"
            "  --torrents N             info-hash pool (default 1000000)\n"
            "  --peers N                peer pool (default 2000000)\n"
            "  --pareto-shape A         popularity tail exponent: P(rank = k) ~ (1+k/s)^-(A+1)\n"
            "                           (default 0.5; larger = more skewed)\n"
            "  --pareto-head F          popularity scale s as a fraction of torrents: about\n"
            "                           flat over the s hottest (default 0.002)\n"
            "  --weights C:A:S          connect:announce:scrape mix (default 1:100:1; http\n"
            "                           ignores C)\n"
            "  --numwant N              peers asked for per announce (default 30, 1..200)\n"
            "  --scrape-max N           a scrape asks for 1..N hashes (default 10, max 74)\n"
            "  --seeder-ratio F         share of peers that are seeders (default 0.75)\n"
            "  --seed N                 derives torrents and peers (default 1)\n"
            "  --http-new-conn          HTTP: one connection per request\n"
            "  --single-ip              bind every socket to 127.0.0.1 (default: socket g uses\n"
            "                           its own 127.0.x.y, so peers look like many hosts)\n"
            "  --print-hashes           print the info-hash pool as 40-hex lines and exit\n"
            "  --json                   print the report as one JSON object instead of text\n"
            "  --strict                 exit 3 if any reply was an error or invalid\n"
            "  --help                   this text\n"
            "Exit: 0 ran, 1 could not run, 2 bad usage or non-loopback target, 3 --strict "
            "failed.\n");
}

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (s == NULL || *s == '\0' || *s == '-')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    if (s == NULL || *s == '\0')
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

static bool parse_weights(const char *s, lgwork_config_t *wc)
{
    uint64_t w[3];
    char buf[64];
    if (strlen(s) >= sizeof(buf))
        return false;
    strcpy(buf, s);
    char *save = NULL, *tok = strtok_r(buf, ":", &save);
    for (int i = 0; i < 3; i++) {
        if (tok == NULL || !parse_u64(tok, 0, 100000, &w[i]))
            return false;
        tok = strtok_r(NULL, ":", &save);
    }
    if (tok != NULL)
        return false;
    wc->weight_connect = (unsigned)w[0];
    wc->weight_announce = (unsigned)w[1];
    wc->weight_scrape = (unsigned)w[2];
    return true;
}

enum {
    OPT_MODE = 256,
    OPT_TARGET,
    OPT_WORKERS,
    OPT_DURATION,
    OPT_WARMUP,
    OPT_SOCKETS,
    OPT_INFLIGHT,
    OPT_TIMEOUT,
    OPT_RATE,
    OPT_TORRENTS,
    OPT_PEERS,
    OPT_PARETO,
    OPT_PARETO_HEAD,
    OPT_WEIGHTS,
    OPT_NUMWANT,
    OPT_SCRAPE_MAX,
    OPT_SEEDER,
    OPT_SEED,
    OPT_NEW_CONN,
    OPT_SINGLE_IP,
    OPT_PRINT_HASHES,
    OPT_JSON,
    OPT_STRICT,
    OPT_HELP,
};

static int bad(const char *opt, const char *val)
{
    fprintf(stderr, "shoal-load: bad value for %s: '%s' (see --help)\n", opt, val ? val : "");
    return EXIT_USAGE;
}

/* Returns -1 to go on, or an exit code. */
static int parse_args(int argc, char **argv, opts_t *o)
{
    static const struct option longs[] = {
        {"mode", required_argument, NULL, OPT_MODE},
        {"target", required_argument, NULL, OPT_TARGET},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"sockets", required_argument, NULL, OPT_SOCKETS},
        {"inflight", required_argument, NULL, OPT_INFLIGHT},
        {"timeout-ms", required_argument, NULL, OPT_TIMEOUT},
        {"rate", required_argument, NULL, OPT_RATE},
        {"torrents", required_argument, NULL, OPT_TORRENTS},
        {"peers", required_argument, NULL, OPT_PEERS},
        {"pareto-shape", required_argument, NULL, OPT_PARETO},
        {"pareto-head", required_argument, NULL, OPT_PARETO_HEAD},
        {"weights", required_argument, NULL, OPT_WEIGHTS},
        {"numwant", required_argument, NULL, OPT_NUMWANT},
        {"scrape-max", required_argument, NULL, OPT_SCRAPE_MAX},
        {"seeder-ratio", required_argument, NULL, OPT_SEEDER},
        {"seed", required_argument, NULL, OPT_SEED},
        {"http-new-conn", no_argument, NULL, OPT_NEW_CONN},
        {"single-ip", no_argument, NULL, OPT_SINGLE_IP},
        {"print-hashes", no_argument, NULL, OPT_PRINT_HASHES},
        {"json", no_argument, NULL, OPT_JSON},
        {"strict", no_argument, NULL, OPT_STRICT},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *target = "127.0.0.1:6969";
    uint64_t v;
    double d;
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
        const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        switch (c) {
        case OPT_MODE:
            if (strcmp(optarg, "udp") == 0)
                o->cfg.mode = LOAD_UDP;
            else if (strcmp(optarg, "http") == 0)
                o->cfg.mode = LOAD_HTTP;
            else
                return bad("--mode", optarg);
            break;
        case OPT_TARGET:
            target = optarg;
            break;
        case OPT_WORKERS:
            if (!parse_u64(optarg, 1, LOAD_MAX_WORKERS, &v))
                return bad("--workers", optarg);
            o->cfg.workers = (unsigned)v;
            break;
        case OPT_DURATION:
            if (!parse_u64(optarg, 1, MAX_DURATION, &v))
                return bad("--duration", optarg);
            o->duration = (unsigned)v;
            break;
        case OPT_WARMUP:
            if (!parse_u64(optarg, 0, MAX_WARMUP, &v))
                return bad("--warmup", optarg);
            o->warmup = (unsigned)v;
            break;
        case OPT_SOCKETS:
            if (!parse_u64(optarg, 1, 1024, &v))
                return bad("--sockets", optarg);
            o->cfg.sockets = (unsigned)v;
            o->sockets_set = true;
            break;
        case OPT_INFLIGHT:
            if (!parse_u64(optarg, 1, 4096, &v))
                return bad("--inflight", optarg);
            o->cfg.inflight = (unsigned)v;
            o->inflight_set = true;
            break;
        case OPT_TIMEOUT:
            if (!parse_u64(optarg, 10, 60000, &v))
                return bad("--timeout-ms", optarg);
            o->cfg.timeout_ms = (unsigned)v;
            break;
        case OPT_RATE:
            if (!parse_double(optarg, &d) || !(d >= 0.0 && d <= 1e8))
                return bad("--rate", optarg);
            o->cfg.rate = d;
            break;
        case OPT_TORRENTS:
            if (!parse_u64(optarg, 1, 100000000, &v))
                return bad("--torrents", optarg);
            o->wc.torrents = (uint32_t)v;
            break;
        case OPT_PEERS:
            if (!parse_u64(optarg, 1, 100000000, &v))
                return bad("--peers", optarg);
            o->wc.peers = (uint32_t)v;
            break;
        case OPT_PARETO:
            if (!parse_double(optarg, &d))
                return bad("--pareto-shape", optarg);
            o->wc.pareto_shape = d;
            break;
        case OPT_PARETO_HEAD:
            if (!parse_double(optarg, &d))
                return bad("--pareto-head", optarg);
            o->wc.pareto_head = d;
            break;
        case OPT_WEIGHTS:
            if (!parse_weights(optarg, &o->wc))
                return bad("--weights", optarg);
            break;
        case OPT_NUMWANT:
            if (!parse_u64(optarg, 1, 200, &v))
                return bad("--numwant", optarg);
            o->wc.numwant = (int32_t)v;
            break;
        case OPT_SCRAPE_MAX:
            if (!parse_u64(optarg, 1, LGWORK_SCRAPE_MAX, &v))
                return bad("--scrape-max", optarg);
            o->wc.scrape_max = (unsigned)v;
            break;
        case OPT_SEEDER:
            if (!parse_double(optarg, &d))
                return bad("--seeder-ratio", optarg);
            o->wc.seeder_ratio = d;
            break;
        case OPT_SEED:
            if (!parse_u64(optarg, 0, UINT64_MAX, &v))
                return bad("--seed", optarg);
            o->wc.seed = v;
            break;
        case OPT_NEW_CONN:
            o->cfg.http_new_conn = true;
            break;
        case OPT_SINGLE_IP:
            o->cfg.spread_ips = false;
            break;
        case OPT_PRINT_HASHES:
            o->print_hashes = true;
            break;
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_STRICT:
            o->strict = true;
            break;
        case OPT_HELP:
            usage(stdout);
            return 0;
        default:
            fprintf(stderr, "shoal-load: unknown or incomplete option '%s' (see --help)\n", name);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "shoal-load: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (o->cfg.mode == LOAD_HTTP) {
        o->wc.weight_connect = 0;
        if (!o->sockets_set)
            o->cfg.sockets = 16;
        if (!o->inflight_set)
            o->cfg.inflight = 1;
        if (o->cfg.inflight > 64)
            return bad("--inflight (http max 64)", "");
        if (o->cfg.http_new_conn)
            o->cfg.inflight = 1;
    }
    if (o->cfg.workers * o->cfg.sockets > 20000) {
        fprintf(stderr, "shoal-load: workers x sockets must be <= 20000\n");
        return EXIT_USAGE;
    }
    const char *why = NULL;
    if (lgwork_init(&o->cfg.wl, &o->wc, &why) != 0) {
        fprintf(stderr, "shoal-load: %s\n", why);
        return EXIT_USAGE;
    }
    if (o->print_hashes)
        return -1; /* needs no target */
    lgtarget_err_t te = lgtarget_parse(target, &o->cfg.target);
    if (te != LGTARGET_OK) {
        fprintf(stderr, "shoal-load: --target %s: %s\n", target, lgtarget_strerror(te));
        return EXIT_USAGE;
    }
    return -1;
}

static int print_hashes(const lgwork_t *wl)
{
    static const char hex[] = "0123456789abcdef";
    char line[41 * 256];
    size_t used = 0;
    for (uint32_t i = 0; i < wl->cfg.torrents; i++) {
        uint8_t h[LGWORK_HASH_LEN];
        lgwork_info_hash(wl, i, h);
        for (int k = 0; k < LGWORK_HASH_LEN; k++) {
            line[used++] = hex[h[k] >> 4];
            line[used++] = hex[h[k] & 15];
        }
        line[used++] = '\n';
        if (used == sizeof(line) || i + 1 == wl->cfg.torrents) {
            if (fwrite(line, 1, used, stdout) != used)
                return EXIT_RUNTIME;
            used = 0;
        }
    }
    return fflush(stdout) == 0 ? 0 : EXIT_RUNTIME;
}

static void merge(load_stats_t *dst, const load_stats_t *src)
{
    for (int k = 0; k < 3; k++) {
        dst->sent[k] += src->sent[k];
        dst->ok[k] += src->ok[k];
    }
    dst->errors += src->errors;
    dst->invalid += src->invalid;
    dst->timeouts += src->timeouts;
    dst->late += src->late;
    dst->closed += src->closed;
    dst->send_fail += src->send_fail;
    dst->reconnects += src->reconnects;
    dst->peers += src->peers;
    dst->behind += src->behind;
    dst->unsorted += src->unsorted;
    dst->cpu_ns += src->cpu_ns;
    for (unsigned i = 0; i < src->n_error_samples && dst->n_error_samples < LOAD_SAMPLES; i++)
        memcpy(dst->error_samples[dst->n_error_samples++], src->error_samples[i], LOAD_SAMPLE_LEN);
    for (unsigned i = 0; i < src->n_invalid_samples && dst->n_invalid_samples < LOAD_SAMPLES; i++)
        memcpy(dst->invalid_samples[dst->n_invalid_samples++], src->invalid_samples[i],
               LOAD_SAMPLE_LEN);
    lglat_merge(&dst->lat, &src->lat);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void report(const opts_t *o, const load_stats_t *t)
{
    const load_config_t *cfg = &o->cfg;
    const lgwork_config_t *wc = &cfg->wl.cfg;
    double secs = o->duration;
    uint64_t ok = t->ok[0] + t->ok[1] + t->ok[2];
    uint64_t sent = t->sent[0] + t->sent[1] + t->sent[2];
    double rps = ok / secs;
    double ppa = t->ok[LGWORK_ANNOUNCE] ? (double)t->peers / t->ok[LGWORK_ANNOUNCE] : 0.0;
    double p50 = lglat_quantile(&t->lat, 0.50) / 1e3;
    double p99 = lglat_quantile(&t->lat, 0.99) / 1e3;
    double p999 = lglat_quantile(&t->lat, 0.999) / 1e3;
    double pmax = t->lat.count ? t->lat.max_ns / 1e3 : 0.0;
    double mean = t->lat.count ? (double)t->lat.sum_ns / t->lat.count / 1e3 : 0.0;
    const char *mode = cfg->mode == LOAD_UDP ? "udp" : "http";
    /* The generator's own cost: busy CPU per valid reply, and the rate one core could drive. */
    double gen_us = ok ? (double)t->cpu_ns / ok / 1e3 : 0.0;
    double gen_ceiling = gen_us > 0 ? 1e6 / gen_us : 0.0;
    if (o->json) {
        printf("{\"mode\":\"%s\",\"target\":", mode);
        json_string(stdout, cfg->target.host_port);
        printf(",\"workers\":%u,\"sockets\":%u,\"inflight\":%u,\"duration\":%u,\"warmup\":%u,"
               "\"rate\":%.0f,\"http_new_conn\":%s,\"torrents\":%" PRIu32 ",\"peers\":%" PRIu32
               ",\"pareto_shape\":%g,\"pareto_head\":%g,\"weights\":\"%u:%u:%u\",\"numwant\":%d,"
               "\"scrape_max\":%u,\"seeder_ratio\":%g,\"seed\":%" PRIu64 ",",
               cfg->workers, cfg->sockets, cfg->inflight, o->duration, o->warmup, cfg->rate,
               cfg->http_new_conn ? "true" : "false", wc->torrents, wc->peers, wc->pareto_shape,
               wc->pareto_head, wc->weight_connect, wc->weight_announce, wc->weight_scrape,
               wc->numwant, wc->scrape_max, wc->seeder_ratio, wc->seed);
        printf("\"rps\":%.1f,\"announce_rps\":%.1f,\"scrape_rps\":%.1f,\"connect_rps\":%.1f,"
               "\"sent_rps\":%.1f,\"errors\":%" PRIu64 ",\"invalid\":%" PRIu64
               ",\"timeouts\":%" PRIu64 ",\"late\":%" PRIu64 ",\"closed\":%" PRIu64
               ",\"send_fail\":%" PRIu64 ",\"reconnects\":%" PRIu64 ",\"behind\":%" PRIu64
               ",\"unsorted\":%" PRIu64
               ",\"peers_per_announce\":%.2f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
               "\"max_us\":%.1f,\"mean_us\":%.1f,\"gen_cpu_us\":%.2f,\"gen_ceiling_rps\":%.0f,"
               "\"error_samples\":[",
               rps, t->ok[LGWORK_ANNOUNCE] / secs, t->ok[LGWORK_SCRAPE] / secs,
               t->ok[LGWORK_CONNECT] / secs, sent / secs, t->errors, t->invalid, t->timeouts,
               t->late, t->closed, t->send_fail, t->reconnects, t->behind, t->unsorted, ppa, p50,
               p99, p999, pmax, mean, gen_us, gen_ceiling);
        for (unsigned i = 0; i < t->n_error_samples; i++) {
            if (i)
                putchar(',');
            json_string(stdout, t->error_samples[i]);
        }
        printf("],\"invalid_samples\":[");
        for (unsigned i = 0; i < t->n_invalid_samples; i++) {
            if (i)
                putchar(',');
            json_string(stdout, t->invalid_samples[i]);
        }
        printf("]}\n");
        return;
    }
    printf("shoal-load: mode=%s target=%s workers=%u sockets=%u inflight=%u duration=%us "
           "warmup=%us rate=%s%s\n",
           mode, cfg->target.host_port, cfg->workers, cfg->sockets, cfg->inflight, o->duration,
           o->warmup, cfg->rate > 0 ? "" : "max", cfg->http_new_conn ? " new-conn" : "");
    if (cfg->rate > 0)
        printf("  target rate %.0f requests/s\n", cfg->rate);
    printf("  torrents=%" PRIu32 " peers=%" PRIu32 " pareto-shape=%g pareto-head=%g "
           "weights=%u:%u:%u numwant=%d scrape-max=%u seeder-ratio=%g seed=%" PRIu64 "\n",
           wc->torrents, wc->peers, wc->pareto_shape, wc->pareto_head, wc->weight_connect,
           wc->weight_announce, wc->weight_scrape, wc->numwant, wc->scrape_max, wc->seeder_ratio,
           wc->seed);
    printf("replies/s        %.1f  (announce %.1f, scrape %.1f, connect %.1f)\n", rps,
           t->ok[LGWORK_ANNOUNCE] / secs, t->ok[LGWORK_SCRAPE] / secs,
           t->ok[LGWORK_CONNECT] / secs);
    printf("requests sent/s  %.1f\n", sent / secs);
    printf("errors           %" PRIu64 "\n", t->errors);
    printf("invalid          %" PRIu64 "\n", t->invalid);
    printf("timeouts         %" PRIu64 "  (late replies %" PRIu64 ", closed %" PRIu64
           ", send failures %" PRIu64 ", connid reconnects %" PRIu64 ", behind %" PRIu64 ")\n",
           t->timeouts, t->late, t->closed, t->send_fail, t->reconnects, t->behind);
    printf("peers/announce   %.2f\n", ppa);
    if (t->unsorted > 0)
        printf("tolerated        %" PRIu64 " scrape replies with \"files\" keys out of order\n",
               t->unsorted);
    printf("latency us       p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f  (%" PRIu64
           " replies)\n",
           p50, p99, p999, pmax, mean, t->lat.count);
    printf("generator        %.2f us CPU per reply (one core: ~%.0f replies/s)\n", gen_us,
           gen_ceiling);
    for (unsigned i = 0; i < t->n_error_samples; i++)
        printf("  error:   %s\n", t->error_samples[i]);
    for (unsigned i = 0; i < t->n_invalid_samples; i++)
        printf("  invalid: %s\n", t->invalid_samples[i]);
    printf("RESULT mode=%s rps=%.1f announce_rps=%.1f scrape_rps=%.1f connect_rps=%.1f "
           "errors=%" PRIu64 " invalid=%" PRIu64 " timeouts=%" PRIu64
           " peers_per_announce=%.2f p50_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f "
           "sent_rps=%.1f late=%" PRIu64 " closed=%" PRIu64 " duration=%u gen_cpu_us=%.2f\n",
           mode, rps, t->ok[LGWORK_ANNOUNCE] / secs, t->ok[LGWORK_SCRAPE] / secs,
           t->ok[LGWORK_CONNECT] / secs, t->errors, t->invalid, t->timeouts, ppa, p50, p99, p999,
           pmax, sent / secs, t->late, t->closed, o->duration, gen_us);
}

int main(int argc, char **argv)
{
    static opts_t o; /* large (samples); zeroed */
    o.cfg.mode = LOAD_UDP;
    o.cfg.workers = 1;
    o.cfg.sockets = 4;
    o.cfg.inflight = 32; /* 4 x 32 in flight fit a 208 KiB default socket buffer */
    o.cfg.timeout_ms = 1000;
    o.cfg.spread_ips = true;
    o.duration = 10;
    o.warmup = 1;
    o.wc = (lgwork_config_t){
        .seed = 1,
        .torrents = 1000000,
        .peers = 2000000,
        .pareto_shape = 0.5,
        .pareto_head = 0.002,
        .weight_connect = 1,
        .weight_announce = 100,
        .weight_scrape = 1,
        .numwant = 30,
        .scrape_max = 10,
        .seeder_ratio = 0.75,
    };
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;
    if (o.print_hashes)
        return print_hashes(&o.cfg.wl);

    load_worker_t *w = calloc(o.cfg.workers, sizeof(*w));
    pthread_t *th = calloc(o.cfg.workers, sizeof(*th));
    if (w == NULL || th == NULL) {
        fprintf(stderr, "shoal-load: out of memory\n");
        return EXIT_RUNTIME;
    }
    o.cfg.start_ns = load_now_ns();
    o.cfg.measure_ns = o.cfg.start_ns + (uint64_t)o.warmup * 1000000000ULL;
    o.cfg.end_ns = o.cfg.measure_ns + (uint64_t)o.duration * 1000000000ULL;
    unsigned started = 0;
    for (unsigned i = 0; i < o.cfg.workers; i++) {
        w[i].cfg = &o.cfg;
        w[i].index = i;
        lglat_init(&w[i].stats.lat);
        lglat_init(&w[i].scratch.lat);
        void *(*body)(void *) = o.cfg.mode == LOAD_UDP ? load_udp_worker : load_http_worker;
        if (pthread_create(&th[i], NULL, body, &w[i]) != 0) {
            fprintf(stderr, "shoal-load: cannot start worker %u\n", i);
            break;
        }
        started++;
    }
    static load_stats_t total;
    lglat_init(&total.lat);
    int failed = started < o.cfg.workers;
    for (unsigned i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        if (w[i].failed) {
            fprintf(stderr, "shoal-load: worker %u: %s\n", i, w[i].fail_msg);
            failed = 1;
        }
        merge(&total, &w[i].stats);
    }
    free(w);
    free(th);
    if (failed)
        return EXIT_RUNTIME;
    report(&o, &total);
    if (o.strict && (total.errors > 0 || total.invalid > 0))
        return EXIT_STRICT;
    return 0;
}
