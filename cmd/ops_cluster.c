/* SPDX-License-Identifier: MIT */
/* ops_cluster: the membership as metrics and JSON (ops_cluster.h). */
#include "ops_cluster.h"

#include <stdio.h>

void ops_membership_metrics(metrics_t *m, membership_t *members)
{
    membership_stats_t s;
    membership_stats(members, &s);
    char epoch[17];
    snprintf(epoch, sizeof(epoch), "%016llx", (unsigned long long)s.epoch);
    metrics_family(m, "shoal_cluster_table_info", METRICS_GAUGE,
                   "1 for the member table in use; its epoch (hex) as a label, since a 64-bit "
                   "epoch does not fit a float");
    if (s.epoch)
        metrics_add(m, "shoal_cluster_table_info", 1, "epoch", epoch, NULL);
    metrics_family(m, "shoal_cluster_nodes", METRICS_GAUGE, "nodes in the member table in use");
    metrics_addu(m, "shoal_cluster_nodes", s.members, NULL);
    metrics_family(m, "shoal_membership_changes_total", METRICS_COUNTER,
                   "member tables published (a node joined or left)");
    metrics_addu(m, "shoal_membership_changes_total", s.changes, NULL);
    metrics_family(m, "shoal_membership_polls_total", METRICS_COUNTER,
                   "reads of the member set that completed");
    metrics_addu(m, "shoal_membership_polls_total", s.polls, NULL);
    metrics_family(m, "shoal_membership_heartbeats_total", METRICS_COUNTER,
                   "registrations written (a node's or a gateway's heartbeat)");
    metrics_addu(m, "shoal_membership_heartbeats_total", s.heartbeats, NULL);
    metrics_family(m, "shoal_membership_expired_total", METRICS_COUNTER,
                   "members dropped because their registration expired");
    metrics_addu(m, "shoal_membership_expired_total", s.expired, NULL);
    ops_redis_master_changes(m, "membership", s.server_changes);
    ops_redis_health(m, "membership", s.errors, s.connected);
    metrics_family(m, "shoal_membership_id_conflict", METRICS_GAUGE,
                   "a node: 1 if another process holds this node's id");
    metrics_addu(m, "shoal_membership_id_conflict", s.conflict ? 1 : 0, NULL);
    metrics_family(m, "shoal_gateways", METRICS_GAUGE,
                   "a gateway: gateways registered, itself included, and of those how many use "
                   "another connection-id secret");
    metrics_addu(m, "shoal_gateways", s.gateways, "secret", "any", NULL);
    metrics_addu(m, "shoal_gateways", s.gateways_mismatched, "secret", "other", NULL);
    ops_loop_age(m, "membership", membership_loop_age_ms(members));
}

json_t *ops_cluster_json(membership_t *members, const char *role, bool from_redis)
{
    membership_stats_t s;
    membership_stats(members, &s);
    json_t *list = json_array();
    json_t *out = json_pack("{s:s,s:i,s:o,s:{s:s,s:b,s:I,s:I,s:I}}", "role", role, "partitions",
                            PARTITION_COUNT, "members", list, "membership", "source",
                            from_redis ? "redis" : "static", "connected", s.connected, "changes",
                            (json_int_t)s.changes, "polls", (json_int_t)s.polls, "errors",
                            (json_int_t)s.errors);
    if (!out)
        return NULL;
    const partition_table_t *t = membership_current(members);
    if (!t) {
        json_object_set_new(out, "epoch", json_null());
        return out;
    }
    char epoch[17];
    snprintf(epoch, sizeof(epoch), "%016llx", (unsigned long long)partition_table_epoch(t));
    json_object_set_new(out, "epoch", json_string(epoch));
    for (size_t i = 0; i < partition_table_count(t); i++) {
        const partition_member_t *pm = partition_table_member(t, i);
        json_array_append_new(list,
                              json_pack("{s:s,s:s,s:i}", "id", pm->id, "endpoint", pm->endpoint,
                                        "partitions", (int)partition_table_load(t, i)));
    }
    membership_release(members, &t);
    return out;
}

void ops_cluster_reply(admin_reply_t *reply, membership_t *members, const char *role,
                       bool from_redis, json_t *view)
{
    json_t *j = ops_cluster_json(members, role, from_redis);
    if (j && view)
        json_object_set_new(j, "view", view);
    else
        json_decref(view);
    ops_reply_json(reply, 200, j);
}

bool ops_membership_alive(membership_t *members, uint32_t period_ms, char *why, size_t len)
{
    uint32_t age = membership_loop_age_ms(members);
    if ((uint64_t)age <= 2 * (uint64_t)period_ms + 10000)
        return true;
    snprintf(why, len, "the membership loop has not turned in %u ms", age);
    return false;
}
