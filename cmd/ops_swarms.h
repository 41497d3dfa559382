/* SPDX-License-Identifier: MIT */
/* ops_swarms: the admin view of swarms, shared by the roles that hold them (shoal, shoal-node) and
 * the one that routes to them (shoal-gateway): the torrents/{info-hash} request and reply as JSON,
 * and the repository's and keeper's metrics. */
#ifndef SHOAL_OPS_SWARMS_H
#define SHOAL_OPS_SWARMS_H

#include "cmsg.h"
#include "ops.h"

/* A parsed GET /api/v1/torrents/{hash}[?peers=N&offset=K] (peers: how many to list, 0..1000,
 * default 0; offset: where in the swarm's list, default 0). Returns 0, or -1 after filling reply
 * with a 400. */
int ops_torrent_request(const admin_req_t *req, admin_reply_t *reply, uint8_t hash[20],
                        uint32_t *offset, uint32_t *max_peers);

/* Reply with what a lookup found: 200 and the swarm, or 404 if there is none. */
void ops_torrent_reply(admin_reply_t *reply, const uint8_t hash[20], const cmsg_lookup_result_t *r);

#endif
