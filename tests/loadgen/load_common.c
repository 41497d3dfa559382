/* SPDX-License-Identifier: MIT */
/* load_common: helpers shared by shoal-load's workers; see load.h. */
#include "load.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t load_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t load_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void load_cpu_tick(load_cpu_t *c, const load_worker_t *w, uint64_t now, bool progress)
{
    if (!c->measuring) {
        if (now < w->cfg->measure_ns)
            return;
        c->measuring = true;
        c->start_cpu = load_thread_cpu_ns();
        c->idle = false;
    }
    /* The clock is read only when the worker switches between busy and idle. */
    if (!progress && !c->idle) {
        c->idle = true;
        c->idle_start_cpu = load_thread_cpu_ns();
    } else if (progress && c->idle) {
        c->idle = false;
        c->idle_cpu += load_thread_cpu_ns() - c->idle_start_cpu;
    }
}

void load_cpu_finish(load_cpu_t *c, load_worker_t *w)
{
    if (!c->measuring)
        return;
    uint64_t now = load_thread_cpu_ns();
    if (c->idle)
        c->idle_cpu += now - c->idle_start_cpu;
    uint64_t total = now - c->start_cpu;
    w->stats.cpu_ns = total > c->idle_cpu ? total - c->idle_cpu : 0;
}

load_stats_t *load_stats_at(load_worker_t *w, uint64_t now)
{
    return now >= w->cfg->measure_ns ? &w->stats : &w->scratch;
}

void load_sample(char (*samples)[LOAD_SAMPLE_LEN], unsigned *n, const char *prefix,
                 const uint8_t *msg, size_t len)
{
    if (*n >= LOAD_SAMPLES)
        return;
    char *out = samples[*n];
    size_t o = (size_t)snprintf(out, LOAD_SAMPLE_LEN, "%s", prefix);
    if (o >= LOAD_SAMPLE_LEN)
        o = LOAD_SAMPLE_LEN - 1;
    for (size_t i = 0; i < len && o + 1 < LOAD_SAMPLE_LEN; i++)
        out[o++] = (msg[i] >= 0x20 && msg[i] < 0x7f) ? (char)msg[i] : '.';
    out[o] = '\0';
    (*n)++;
}

void load_source_addr(const load_config_t *cfg, unsigned g, struct sockaddr_storage *out,
                      socklen_t *len)
{
    memset(out, 0, sizeof(*out));
    if (cfg->target.family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        *len = sizeof(*in6);
        return;
    }
    struct sockaddr_in *in = (struct sockaddr_in *)out;
    in->sin_family = AF_INET;
    /* 127.0.x.y with y in 1..250: each socket looks like its own host to the tracker. */
    uint32_t host = cfg->spread_ips ? ((g / 250) % 250) << 8 | (1 + g % 250) : 1;
    in->sin_addr.s_addr = htonl(0x7f000000u | host);
    *len = sizeof(*in);
}

uint32_t load_budget(const load_config_t *cfg, uint64_t now, uint64_t sent_so_far)
{
    if (cfg->rate <= 0.0)
        return UINT32_MAX;
    double per_worker = cfg->rate / cfg->workers;
    double due = (double)(now - cfg->start_ns) * 1e-9 * per_worker + 1.0;
    if (due <= (double)sent_so_far)
        return 0;
    double n = due - (double)sent_so_far;
    return n > 1e6 ? 1000000u : (uint32_t)n;
}

uint64_t load_next_due(const load_config_t *cfg, uint64_t now, uint64_t sent_so_far)
{
    if (cfg->rate <= 0.0)
        return UINT64_MAX;
    double per_worker = cfg->rate / cfg->workers;
    double at = (double)cfg->start_ns + (double)sent_so_far / per_worker * 1e9;
    return at <= (double)now ? 0 : (uint64_t)(at - (double)now);
}
