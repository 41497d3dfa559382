/* SPDX-License-Identifier: MIT */
/* lgwork: workload generation; see lgwork.h. Attributes are hashed from (seed, domain, index)
 * with a splitmix64 finaliser, so they need no tables and no state. */
#include "lgwork.h"

#include <math.h>
#include <string.h>

enum {
    DOMAIN_INFO_HASH = 1,
    DOMAIN_PEER = 2,
};

static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t attr(uint64_t seed, uint64_t domain, uint64_t index, uint64_t k)
{
    return mix64(mix64(seed ^ (domain << 56)) ^ mix64((index << 8) | k));
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void lgwork_rng_seed(lgwork_rng_t *rng, uint64_t seed)
{
    uint64_t z = seed;
    for (int i = 0; i < 4; i++) {
        z += 0x9e3779b97f4a7c15ULL;
        rng->s[i] = mix64(z);
    }
}

uint64_t lgwork_rng_next(lgwork_rng_t *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t lgwork_rng_below(lgwork_rng_t *rng, uint32_t n)
{
    /* Lemire's multiply-shift; the bias (< n / 2^32) does not matter for a workload. */
    return (uint32_t)(((lgwork_rng_next(rng) >> 32) * (uint64_t)n) >> 32);
}

double lgwork_rng_unit(lgwork_rng_t *rng)
{
    return (double)(lgwork_rng_next(rng) >> 11) * 0x1.0p-53;
}

int lgwork_init(lgwork_t *wl, const lgwork_config_t *cfg, const char **why)
{
    static const char *unused;
    if (why == NULL)
        why = &unused;
    memset(wl, 0, sizeof(*wl));
    if (cfg->torrents < 1) {
        *why = "torrents must be >= 1";
        return -1;
    }
    if (cfg->peers < 1) {
        *why = "peers must be >= 1";
        return -1;
    }
    if (!(cfg->pareto_shape > 0.0 && cfg->pareto_shape <= 10.0)) {
        *why = "pareto shape must be in (0, 10]";
        return -1;
    }
    if (!(cfg->pareto_head > 0.0 && cfg->pareto_head <= 1.0)) {
        *why = "pareto head must be in (0, 1]";
        return -1;
    }
    unsigned long sum =
        (unsigned long)cfg->weight_connect + cfg->weight_announce + cfg->weight_scrape;
    if (sum == 0 || sum > 1000000) {
        *why = "weights must sum to 1..1000000";
        return -1;
    }
    if (cfg->numwant < 1 || cfg->numwant > 200) {
        *why = "numwant must be 1..200";
        return -1;
    }
    if (cfg->scrape_max < 1 || cfg->scrape_max > LGWORK_SCRAPE_MAX) {
        *why = "scrape max must be 1..74";
        return -1;
    }
    if (!(cfg->seeder_ratio >= 0.0 && cfg->seeder_ratio <= 1.0)) {
        *why = "seeder ratio must be in [0, 1]";
        return -1;
    }
    wl->cfg = *cfg;
    wl->weight_sum = (unsigned)sum;
    wl->pareto_s = cfg->pareto_head * cfg->torrents;
    wl->pareto_c = 1.0 - pow(1.0 + cfg->torrents / wl->pareto_s, -cfg->pareto_shape);
    wl->pareto_inv = -1.0 / cfg->pareto_shape;
    return 0;
}

void lgwork_info_hash(const lgwork_t *wl, uint32_t i, uint8_t out[LGWORK_HASH_LEN])
{
    uint8_t tmp[24];
    for (unsigned k = 0; k < 3; k++) {
        uint64_t w = attr(wl->cfg.seed, DOMAIN_INFO_HASH, i, k);
        memcpy(tmp + 8 * k, &w, 8);
    }
    memcpy(out, tmp, LGWORK_HASH_LEN);
}

uint32_t lgwork_torrent_at(const lgwork_t *wl, double u)
{
    if (!(u >= 0.0))
        u = 0.0;
    if (u >= 1.0)
        u = 0x1.fffffffffffffp-1;
    /* Inverse CDF of the truncated Lomax law; its floor is the rank. */
    double x = pow(1.0 - u * wl->pareto_c, wl->pareto_inv);
    double r = floor(wl->pareto_s * (x - 1.0));
    if (!(r >= 0.0))
        return 0;
    if (r >= (double)wl->cfg.torrents)
        return wl->cfg.torrents - 1;
    return (uint32_t)r;
}

uint32_t lgwork_pick_torrent(const lgwork_t *wl, lgwork_rng_t *rng)
{
    return lgwork_torrent_at(wl, lgwork_rng_unit(rng));
}

void lgwork_peer(const lgwork_t *wl, uint32_t p, lgwork_peer_t *out)
{
    uint64_t seed = wl->cfg.seed;
    /* A client-style prefix, then 12 bytes that need percent-encoding over HTTP. */
    memcpy(out->peer_id, "-SL0100-", 8);
    uint64_t a = attr(seed, DOMAIN_PEER, p, 0);
    uint64_t b = attr(seed, DOMAIN_PEER, p, 1);
    memcpy(out->peer_id + 8, &a, 8);
    memcpy(out->peer_id + 16, &b, 4);
    uint64_t c = attr(seed, DOMAIN_PEER, p, 2);
    out->port = (uint16_t)(1024 + (c & 0xffff) % 64000);
    out->key = (uint32_t)(c >> 32);
    uint64_t d = attr(seed, DOMAIN_PEER, p, 3);
    out->torrent = lgwork_torrent_at(wl, (double)(d >> 11) * 0x1.0p-53);
    uint64_t e = attr(seed, DOMAIN_PEER, p, 4);
    out->seeder = (double)(e >> 11) * 0x1.0p-53 < wl->cfg.seeder_ratio;
    out->left = out->seeder ? 0 : 1 + (e & ((1u << 30) - 1));
}

uint32_t lgwork_pick_peer(const lgwork_t *wl, lgwork_rng_t *rng, uint32_t slot, uint32_t slots)
{
    uint32_t n = wl->cfg.peers;
    if (slots == 0)
        slots = 1;
    slot %= slots;
    if (slot >= n)
        return lgwork_rng_below(rng, n);
    uint32_t per = (n - slot + slots - 1) / slots; /* count of p < n with p % slots == slot */
    uint64_t p = slot + (uint64_t)lgwork_rng_below(rng, per) * slots;
    return p < n ? (uint32_t)p : slot;
}

lgwork_kind_t lgwork_pick_kind(const lgwork_t *wl, lgwork_rng_t *rng)
{
    uint32_t r = lgwork_rng_below(rng, wl->weight_sum);
    if (r < wl->cfg.weight_connect)
        return LGWORK_CONNECT;
    if (r < wl->cfg.weight_connect + wl->cfg.weight_announce)
        return LGWORK_ANNOUNCE;
    return LGWORK_SCRAPE;
}

void lgwork_make_announce(const lgwork_t *wl, lgwork_rng_t *rng, uint32_t p, lgwork_announce_t *out)
{
    out->peer_index = p;
    lgwork_peer(wl, p, &out->peer);
    lgwork_info_hash(wl, out->peer.torrent, out->info_hash);
    uint32_t r = lgwork_rng_below(rng, 100);
    if (r < 2)
        out->event = LGWORK_EVENT_STOPPED;
    else if (r < 7)
        out->event = LGWORK_EVENT_STARTED;
    else if (r < 9 && out->peer.seeder)
        out->event = LGWORK_EVENT_COMPLETED;
    else
        out->event = LGWORK_EVENT_NONE;
    out->left = out->peer.left;
    out->downloaded = lgwork_rng_next(rng) & ((1ULL << 32) - 1);
    out->uploaded = lgwork_rng_next(rng) & ((1ULL << 32) - 1);
    out->numwant = wl->cfg.numwant;
}

void lgwork_make_scrape(const lgwork_t *wl, lgwork_rng_t *rng, lgwork_scrape_t *out)
{
    uint32_t n = 1 + lgwork_rng_below(rng, wl->cfg.scrape_max);
    if (n > wl->cfg.torrents)
        n = wl->cfg.torrents;
    uint32_t picked[LGWORK_SCRAPE_MAX];
    for (uint32_t i = 0; i < n; i++) {
        uint32_t t = lgwork_pick_torrent(wl, rng);
        /* Distinct hashes: a few redraws, then the next unused index; both loops are bounded
         * by n <= torrents, so an unused index always exists. */
        for (unsigned attempt = 0;; attempt++) {
            bool dup = false;
            for (uint32_t j = 0; j < i && !dup; j++)
                dup = picked[j] == t;
            if (!dup)
                break;
            t = attempt < 4 ? lgwork_pick_torrent(wl, rng) : (t + 1) % wl->cfg.torrents;
            if (attempt > LGWORK_SCRAPE_MAX + 8)
                break; /* unreachable: at most i < n indices are taken */
        }
        picked[i] = t;
        lgwork_info_hash(wl, t, out->hashes[i]);
    }
    out->n = n;
}
