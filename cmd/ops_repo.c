/* SPDX-License-Identifier: MIT */
/* ops_repo: a swarm holder's metrics and torrents route (ops_repo.h). */
#include "ops_repo.h"

#include "mono.h"
#include "ops_swarms.h"

#include <stdio.h>
#include <stdlib.h>

#define FAMILY(m, name, type, help) metrics_family(m, name, type, help)

void ops_repo_metrics(metrics_t *m, repo_t *repo)
{
    repo_totals_t t;
    repo_totals(repo, &t);
    FAMILY(m, "shoal_swarms", METRICS_GAUGE, "swarms (torrents with at least one peer) held");
    metrics_addu(m, "shoal_swarms", t.torrents, NULL);
    FAMILY(m, "shoal_peers", METRICS_GAUGE, "peers held, by address family");
    metrics_addu(m, "shoal_peers", t.peers4, "family", "ipv4", NULL);
    metrics_addu(m, "shoal_peers", t.peers6, "family", "ipv6", NULL);
    FAMILY(m, "shoal_seeders", METRICS_GAUGE, "peers held that have the whole torrent");
    metrics_addu(m, "shoal_seeders", t.seeders, NULL);
    FAMILY(m, "shoal_leechers", METRICS_GAUGE, "peers held that are still downloading");
    metrics_addu(m, "shoal_leechers", t.leechers, NULL);
    FAMILY(m, "shoal_repository_bytes", METRICS_GAUGE,
           "memory the swarms take, as --max-memory counts it");
    metrics_addu(m, "shoal_repository_bytes", t.bytes, NULL);
}

void ops_keeper_metrics(metrics_t *m, keeper_t *keeper)
{
    keeper_stats_t s;
    keeper_stats(keeper, &s);
    FAMILY(m, "shoal_snapshot_cycles_total", METRICS_COUNTER,
           "snapshot cycles that wrote something");
    metrics_addu(m, "shoal_snapshot_cycles_total", s.cycles, NULL);
    FAMILY(m, "shoal_snapshot_writes_total", METRICS_COUNTER,
           "partition snapshots written to Redis");
    metrics_addu(m, "shoal_snapshot_writes_total", s.partitions, NULL);
    FAMILY(m, "shoal_snapshot_bytes_total", METRICS_COUNTER, "snapshot bytes written to Redis");
    metrics_addu(m, "shoal_snapshot_bytes_total", s.bytes, NULL);
    FAMILY(m, "shoal_snapshot_peers_total", METRICS_COUNTER, "peers in the snapshots written");
    metrics_addu(m, "shoal_snapshot_peers_total", s.peers, NULL);
    FAMILY(m, "shoal_snapshot_duration_seconds", METRICS_GAUGE,
           "duration of a snapshot cycle (export, encode, write): the last one and the longest");
    metrics_add(m, "shoal_snapshot_duration_seconds", (double)s.last_cycle_us / 1e6, "cycle",
                "last", NULL);
    metrics_add(m, "shoal_snapshot_duration_seconds", (double)s.max_cycle_us / 1e6, "cycle", "max",
                NULL);
    FAMILY(m, "shoal_snapshot_failures_total", METRICS_COUNTER,
           "partition writes that failed, by reason: redis (no answer or an error; retried) "
           "or fenced (another node holds the partition under a newer epoch)");
    metrics_addu(m, "shoal_snapshot_failures_total", s.write_failures, "reason", "redis", NULL);
    metrics_addu(m, "shoal_snapshot_failures_total", s.fenced, "reason", "fenced", NULL);
    FAMILY(m, "shoal_fence_refusals_total", METRICS_COUNTER,
           "fenced writes and acquisition claims refused because another node holds or took "
           "the partition");
    metrics_addu(m, "shoal_fence_refusals_total", s.fenced, "op", "write", NULL);
    metrics_addu(m, "shoal_fence_refusals_total", s.claims_refused, "op", "claim", NULL);
    FAMILY(m, "shoal_restored_swarms_total", METRICS_COUNTER, "swarms merged from snapshots");
    metrics_addu(m, "shoal_restored_swarms_total", s.restored_swarms, NULL);
    FAMILY(m, "shoal_restored_peers_total", METRICS_COUNTER, "peers merged from snapshots");
    metrics_addu(m, "shoal_restored_peers_total", s.restored_peers, NULL);
    FAMILY(m, "shoal_restore_expired_peers_total", METRICS_COUNTER,
           "peers in snapshots dropped at restore because they had expired");
    metrics_addu(m, "shoal_restore_expired_peers_total", s.restore_expired, NULL);
    FAMILY(m, "shoal_restore_duration_seconds", METRICS_GAUGE,
           "duration of the last acquisition round (fence, load, merge)");
    metrics_add(m, "shoal_restore_duration_seconds", (double)s.last_restore_us / 1e6, NULL);
    FAMILY(m, "shoal_partitions", METRICS_GAUGE,
           "partitions by state: owned by the table, held (acquired), waiting for a previous "
           "owner, blocked (taken by another node)");
    metrics_addu(m, "shoal_partitions", s.owned, "state", "owned", NULL);
    metrics_addu(m, "shoal_partitions", s.held, "state", "held", NULL);
    metrics_addu(m, "shoal_partitions", s.waiting, "state", "waiting", NULL);
    metrics_addu(m, "shoal_partitions", s.blocked, "state", "blocked", NULL);
    FAMILY(m, "shoal_partition_changes_total", METRICS_COUNTER,
           "partitions acquired, released (handed over) and lost (found taken by another node)");
    metrics_addu(m, "shoal_partition_changes_total", s.acquired, "change", "acquired", NULL);
    metrics_addu(m, "shoal_partition_changes_total", s.released, "change", "released", NULL);
    metrics_addu(m, "shoal_partition_changes_total", s.lost, "change", "lost", NULL);
    FAMILY(m, "shoal_redis_lost_data_total", METRICS_COUNTER,
           "times Redis was found to have lost the fences (restarted empty)");
    metrics_addu(m, "shoal_redis_lost_data_total", s.gone, NULL);
    ops_redis_master_changes(m, "keeper", s.server_changes);
    FAMILY(m, "shoal_snapshot_unreplicated_total", METRICS_COUNTER,
           "claims or snapshot rounds that no replica acknowledged within 100 ms (WAIT 1 100)");
    metrics_addu(m, "shoal_snapshot_unreplicated_total", s.unreplicated, NULL);
    ops_redis_health(m, "keeper", s.errors, s.connected);
    ops_loop_age(m, "keeper", keeper_loop_age_ms(keeper));
}

bool ops_keeper_alive(keeper_t *keeper, uint32_t interval_ms, char *why, size_t len)
{
    keeper_stats_t s;
    keeper_stats(keeper, &s);
    /* The keeper's own bound (keeper.h): its interval, ten times its longest cycle (the duty
     * cap), and a few Redis timeouts; doubled, and never under 10 s. */
    uint64_t limit = 2 * ((uint64_t)interval_ms + 10 * s.max_cycle_us / 1000) + 10000;
    uint32_t age = keeper_loop_age_ms(keeper);
    if (age <= limit)
        return true;
    snprintf(why, len, "the snapshot loop has not turned in %u ms", age);
    return false;
}

static void get_torrent(void *arg, const admin_req_t *req, admin_reply_t *reply)
{
    uint8_t hash[20];
    uint32_t offset, max_peers;
    if (ops_torrent_request(req, reply, hash, &offset, &max_peers) != 0)
        return;
    cmsg_lookup_result_t *r = malloc(sizeof(*r)); /* ~24 KB: not on the admin thread's stack */
    if (!r) {
        admin_reply_error(reply, 500, "out of memory");
        return;
    }
    repo_lookup(arg, hash, mono_s(), offset, max_peers, r);
    ops_torrent_reply(reply, hash, r);
    free(r);
}

int ops_repo_routes(admin_t *admin, repo_t *repo)
{
    return admin_route(admin, "GET", "/api/v1/torrents", ADMIN_PREFIX, get_torrent, repo);
}
