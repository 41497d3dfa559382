/* SPDX-License-Identifier: MIT */
/* ops_repo: the metrics and the torrents/{info-hash} route of a process that holds swarms (shoal,
 * shoal-node): its repository, and its keeper when it snapshots to Redis. */
#ifndef SHOAL_OPS_REPO_H
#define SHOAL_OPS_REPO_H

#include "keeper.h"
#include "ops.h"
#include "repo.h"

/* The repository's gauges: swarms, peers by family, seeders and leechers, bytes. */
void ops_repo_metrics(metrics_t *m, repo_t *repo);

/* The keeper's: snapshots, restores, partitions by state, fence refusals, Redis errors. */
void ops_keeper_metrics(metrics_t *m, keeper_t *keeper);

/* For /healthz: false with a reason if the keeper's loop has not turned for much longer than its
 * snapshot interval (interval_ms) and its longest cycle allow. */
bool ops_keeper_alive(keeper_t *keeper, uint32_t interval_ms, char *why, size_t len);

/* GET /api/v1/torrents/{info-hash} answered from repo (borrowed; outlives the admin listener).
 * Returns 0, or -1 if the route table is full. */
int ops_repo_routes(admin_t *admin, repo_t *repo);

#endif
