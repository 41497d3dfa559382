/* SPDX-License-Identifier: MIT */
/* ops_swarms: torrents/{info-hash} as JSON (ops_swarms.h). */
#include "ops_swarms.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A query number within [0, max]; absent gives 0. Returns 0, or -1. */
static int query_uint(const admin_req_t *req, const char *key, uint32_t max, uint32_t *out)
{
    const char *v = admin_req_query(req, key);
    *out = 0;
    if (!v)
        return 0;
    if (*v < '0' || *v > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || n > max)
        return -1;
    *out = (uint32_t)n;
    return 0;
}

int ops_torrent_request(const admin_req_t *req, admin_reply_t *reply, uint8_t hash[20],
                        uint32_t *offset, uint32_t *max_peers)
{
    const char *rest = admin_req_rest(req);
    if (ops_parse_hash(rest, hash) != 0) {
        admin_reply_error(reply, 400, "torrents/{info-hash}: want 40 hex digits, got '%.64s'",
                          rest);
        return -1;
    }
    if (query_uint(req, "peers", CMSG_LOOKUP_PEERS_MAX, max_peers) != 0) {
        admin_reply_error(reply, 400, "peers: want a number from 0 to %d", CMSG_LOOKUP_PEERS_MAX);
        return -1;
    }
    if (query_uint(req, "offset", UINT32_MAX, offset) != 0) {
        admin_reply_error(reply, 400, "offset: want a number from 0 to %u", UINT32_MAX);
        return -1;
    }
    return 0;
}

static json_t *peer_json(const cmsg_lookup_peer_t *p)
{
    char ip[INET6_ADDRSTRLEN] = "";
    inet_ntop(p->family == 4 ? AF_INET : AF_INET6, p->addr, ip, sizeof(ip));
    return json_pack("{s:s,s:i,s:b,s:I}", "ip", ip, "port", (int)p->port, "seeder", p->seeder,
                     "age_seconds", (json_int_t)p->age_s);
}

void ops_torrent_reply(admin_reply_t *reply, const uint8_t hash[20], const cmsg_lookup_result_t *r)
{
    char hex[41];
    ops_hash_hex(hash, hex);
    if (!r->found) {
        admin_reply_error(reply, 404, "no swarm for info-hash %s", hex);
        return;
    }
    json_t *peers = json_array();
    for (size_t i = 0; peers && i < r->n_peers; i++)
        json_array_append_new(peers, peer_json(&r->peers[i]));
    json_t *j = json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:o*}", "info_hash", hex, "seeders",
                          (json_int_t)r->stats.seeders, "leechers", (json_int_t)r->stats.leechers,
                          "downloaded", (json_int_t)r->stats.downloaded, "peers_total",
                          (json_int_t)r->total, "offset", (json_int_t)r->offset, "peers", peers);
    ops_reply_json(reply, 200, j);
}
