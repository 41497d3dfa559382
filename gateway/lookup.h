/* SPDX-License-Identifier: MIT */
/* lookup: the gateway's side of the admin API's torrents/{info-hash}. A swarm lives on the node
 * that owns its partition, so a gateway asks that node: lookup_owner() finds the node in the
 * partition table, lookup_remote() sends it one lookup (cmsg.h) and waits for the answer.
 *
 * Not on the request path: each call opens its own DEALER socket, sends one message, waits with
 * zmq_poll() and closes it, so it may run on any thread (an admin HTTP handler's) with any
 * ZeroMQ context, and shares nothing with the routers. The answer is the same
 * cmsg_lookup_result_t that repo_lookup() fills on a node or in the standalone tracker, so one
 * formatter serves all three. */
#ifndef SHOAL_LOOKUP_H
#define SHOAL_LOOKUP_H

#include "cmsg.h"
#include "curve.h"
#include "partition.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    LOOKUP_OK = 0,     /* the node answered: out->result holds the swarm (found or not) */
    LOOKUP_MOVED,      /* the node does not own the partition (out->epoch is its epoch): the
                        * caller's table is stale or the partition is moving; retry later */
    LOOKUP_NODE_ERROR, /* the node answered with an error; out->error and err say what */
    LOOKUP_TIMEOUT,    /* no matching answer within the timeout (node down, slow, or older than
                        * lookups: it drops them) */
    LOOKUP_FAILED, /* the socket could not be set up, or the answer did not decode; err says why */
} lookup_status_t;

/* The owner of info_hash's partition under table t: its endpoint into endpoint[0..len) and, if id
 * is not NULL, its id into id[0..idlen). Returns 0, or -1 (nothing written) if t is NULL or a
 * buffer is too small (PARTITION_ENDPOINT_MAX and PARTITION_ID_MAX always suffice). */
int lookup_owner(const partition_table_t *t, const uint8_t hash[SHOAL_HASH_LEN], char *endpoint,
                 size_t len, char *id, size_t idlen);

/* Ask the node at endpoint (as advertised: e.g. "tcp://10.0.0.7:7000", "tcp://[::1]:7000", with
 * "|workers=N" and "|curve=KEY" as members.h says; a node with several workers is asked on worker
 * 0's socket) for info_hash's swarm, over CURVE with curve's certificate
 * if curve is not NULL (a node curve_check_node() refuses is not asked: LOOKUP_FAILED):
 * its counts and up to max_peers (capped at CMSG_LOOKUP_PEERS_MAX) of its peers from index offset.
 * Opens a DEALER socket in zmq_ctx (borrowed; IPv6 on, linger 0), sends one lookup, waits up to
 * timeout_ms for the answer carrying its request id (anything else is skipped), closes the
 * socket. Fills *out (caller's memory, about 24 KB; its id, epoch and status always, its result
 * for LOOKUP_OK, its error text for LOOKUP_NODE_ERROR). Returns what happened; err gets a
 * sentence for every status but LOOKUP_OK. Blocks the calling thread up to timeout_ms. */
lookup_status_t lookup_remote(void *zmq_ctx, curve_t *curve, const char *endpoint,
                              const uint8_t info_hash[SHOAL_HASH_LEN], uint32_t offset,
                              uint32_t max_peers, uint32_t timeout_ms, cmsg_lookup_reply_t *out,
                              char *err, size_t errlen);

#endif
