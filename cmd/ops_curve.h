/* SPDX-License-Identifier: MIT */
/* ops_curve: what shoal-node and shoal-gateway say about CURVE (curve.h): refusals logged with a
 * rate limit and counted in shoal_curve_refused_total, the trust set's size as a gauge, and the
 * SIGHUP reload of the certificate and trust dir.
 *
 * A node's refusals are peers that failed the handshake (curve_refusals()); they are logged from
 * the main loop (ops_curve_tick(), once a second) when their count grew, at most once per
 * doubling interval (1 s .. 64 s) while they keep coming. A gateway's refusals are nodes it will
 * not talk to (curve_check_node()): each node is logged and counted once per distinct advertised
 * endpoint and verdict, from ops_curve_table() (the membership's change hook) and again after a
 * reload; at most PARTITION_MEMBERS_MAX nodes are remembered. */
#ifndef SHOAL_OPS_CURVE_H
#define SHOAL_OPS_CURVE_H

#include "curve.h"
#include "metrics.h"
#include "partition.h"

typedef struct ops_curve ops_curve_t;

/* curve may be NULL (CURVE off: a gateway still refuses nodes that require it). Borrowed; it
 * outlives the result. Returns NULL if memory runs out. */
ops_curve_t *ops_curve_new(curve_t *curve, const char *role);
void ops_curve_destroy(ops_curve_t **self_p);

/* A node's main loop, once a second: log refusals (see above). */
void ops_curve_tick(ops_curve_t *self);

/* A gateway: judge every member of table, log and count the newly refused ones (and a refused
 * node accepted again). Any thread (a mutex inside). */
void ops_curve_table(ops_curve_t *self, const partition_table_t *table);

/* SIGHUP: read the certificate and trust dir again, log the outcome; a gateway then passes its
 * current table (may be NULL) for ops_curve_table(). A node's certificate does not change on a
 * running socket: a changed one is reported as needing a restart. No-op with CURVE off. */
void ops_curve_reload(ops_curve_t *self, const partition_table_t *table);

/* shoal_curve_refused_total and shoal_curve_trusted_keys. */
void ops_curve_metrics(metrics_t *m, ops_curve_t *self);

#endif
