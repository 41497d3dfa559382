/* SPDX-License-Identifier: MIT */
/* ops_fe: the front ends' metrics (ops_fe.h). */
#include "ops_fe.h"

#include <stdio.h>

static void requests(metrics_t *m, const char *proto, const char *action, uint64_t ok,
                     uint64_t failed)
{
    metrics_addu(m, "shoal_requests_total", ok, "protocol", proto, "action", action, "result", "ok",
                 NULL);
    metrics_addu(m, "shoal_requests_total", failed, "protocol", proto, "action", action, "result",
                 "failed", NULL);
}

void ops_fe_metrics(metrics_t *m, const frontend_t *fe)
{
    frontend_stats_t s;
    frontend_errors_t e;
    frontend_stats(fe, &s);
    frontend_errors(fe, &e);
    metrics_family(m, "shoal_requests_total", METRICS_COUNTER,
                   "client requests answered, by protocol, action and result (failed: the "
                   "tracker's failure reply or a refusal)");
    metrics_addu(m, "shoal_requests_total", s.udp_connect, "protocol", "udp", "action", "connect",
                 "result", "ok", NULL);
    requests(m, "udp", "announce", s.udp_announce_ok, s.udp_announce_failed);
    requests(m, "udp", "scrape", s.udp_scrape_ok, s.udp_scrape_failed);
    requests(m, "http", "announce", s.http_announce_ok, s.http_announce_failed);
    requests(m, "http", "scrape", s.http_scrape_ok, s.http_scrape_failed);

    metrics_family(m, "shoal_errors_total", METRICS_COUNTER,
                   "requests refused or failed, by protocol and reason");
    static const char *const protos[2] = {"udp", "http"};
    for (unsigned p = 0; p < 2; p++)
        for (unsigned r = 0; r < FRONTEND_ERR_COUNT; r++)
            metrics_addu(m, "shoal_errors_total", e.n[p][r], "protocol", protos[p], "reason",
                         frontend_err_name((frontend_err_t)r), NULL);
    metrics_family(m, "shoal_proxy_headers_total", METRICS_COUNTER,
                   "PROXY v2 headers (--proxy-protocol), by protocol and result (refused: "
                   "missing or invalid from a listed balancer, or sent by anyone else)");
    for (unsigned p = 0; p < 2; p++) {
        metrics_addu(m, "shoal_proxy_headers_total",
                     p == FRONTEND_UDP ? s.udp_proxy_accepted : s.http_proxy_accepted, "protocol",
                     protos[p], "result", "accepted", NULL);
        metrics_addu(m, "shoal_proxy_headers_total", e.n[p][FRONTEND_ERR_PROXY_PROTOCOL],
                     "protocol", protos[p], "result", "refused", NULL);
    }
    metrics_family(m, "shoal_udp_dropped_total", METRICS_COUNTER,
                   "UDP requests dropped unanswered (no pending slot free)");
    metrics_addu(m, "shoal_udp_dropped_total", s.udp_dropped, NULL);

    metrics_family(m, "shoal_udp_bans_total", METRICS_COUNTER,
                   "client addresses banned from UDP for invalid connection ids (--connid-ban)");
    metrics_addu(m, "shoal_udp_bans_total", s.udp_bans, NULL);

    metrics_family(m, "shoal_reply_peers_total", METRICS_COUNTER,
                   "peers handed out in announce replies, by protocol");
    metrics_addu(m, "shoal_reply_peers_total", s.udp_peers, "protocol", "udp", NULL);
    metrics_addu(m, "shoal_reply_peers_total", s.http_peers, "protocol", "http", NULL);

    metrics_family(m, "shoal_http_connections", METRICS_GAUGE, "HTTP connections open now");
    metrics_addu(m, "shoal_http_connections", frontend_http_open(fe), NULL);
    metrics_family(m, "shoal_http_connections_total", METRICS_COUNTER,
                   "HTTP connections accepted, and refused at accept (over --http-max-conns or "
                   "out of descriptors)");
    metrics_addu(m, "shoal_http_connections_total", s.http_accepted, "result", "accepted", NULL);
    metrics_addu(m, "shoal_http_connections_total", s.http_refused, "result", "refused", NULL);

    ops_loop_age(m, "frontend", frontend_loop_age_ms(fe));
}

bool ops_fe_alive(const frontend_t *fe, uint32_t max_ms, char *why, size_t len)
{
    uint32_t age = frontend_loop_age_ms(fe);
    if (age <= max_ms)
        return true;
    snprintf(why, len, "a front-end worker has not turned its loop in %u ms", age);
    return false;
}
