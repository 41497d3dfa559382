/* SPDX-License-Identifier: MIT */
/* ops_cluster: what a cluster member (shoal-node, shoal-gateway) shows of the membership: the
 * membership metrics, and the body of GET /api/v1/cluster. */
#ifndef SHOAL_OPS_CLUSTER_H
#define SHOAL_OPS_CLUSTER_H

#include "membership.h"
#include "ops.h"

/* Table epoch and size, changes, polls, heartbeats, Redis errors, gateways seen. */
void ops_membership_metrics(metrics_t *m, membership_t *members);

/* {"role", "epoch" (16 hex digits, null without a table), "partitions" (the count),
 *  "members": [{"id", "endpoint", "partitions"}], "membership": {"source", "connected", ...}}
 * for the role to add its own "view" to. NULL if memory runs out. */
json_t *ops_cluster_json(membership_t *members, const char *role, bool from_redis);

/* Reply to GET /api/v1/cluster with ops_cluster_json() and the role's view (taken; may be
 * NULL). */
void ops_cluster_reply(admin_reply_t *reply, membership_t *members, const char *role,
                       bool from_redis, json_t *view);

/* The loop-age check for /healthz: false with a reason if the membership actor, which turns
 * every period_ms (its poll or heartbeat period), has not turned in twice that plus 10 s. */
bool ops_membership_alive(membership_t *members, uint32_t period_ms, char *why, size_t len);

#endif
