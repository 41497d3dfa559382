/* SPDX-License-Identifier: MIT */
/* bep15: the UDP tracker protocol (BEP 15) codec.
 *
 * Requests (client -> tracker), all integers big-endian:
 *   connect   0: protocol_id u64, action u32 = 0, transaction_id u32                     (16 B)
 *   announce  0: connection_id u64, action u32 = 1, transaction_id u32, 16: info_hash[20],
 *            36: peer_id[20], 56: downloaded u64, 64: left u64, 72: uploaded u64, 80: event u32,
 *            84: ip u32, 88: key u32, 92: num_want i32, 96: port u16                    (98 B)
 *   scrape   0: connection_id u64, action u32 = 2, transaction_id u32, then info_hash[20] * n
 * Replies (tracker -> client):
 *   connect  action u32 = 0, transaction_id u32, connection_id u64
 *   announce action u32 = 1, transaction_id u32, interval u32, leechers u32, seeders u32, peers
 *   scrape   action u32 = 2, transaction_id u32, then (seeders, completed, leechers) u32 * n
 *   error    action u32 = 3, transaction_id u32, message
 *
 * Invariant: the parser reads only pkt[0..len) and every field through memcpy (datagrams are not
 * aligned); the writers never write past out[cap) and write nothing when the reply does not fit,
 * except that an announce reply leaves out the peer records that do not fit (whole records). */
#include "bep15.h"

#include <endian.h>
#include <string.h>

#define OFF_INFO_HASH  16
#define OFF_PEER_ID    36
#define OFF_DOWNLOADED 56
#define OFF_LEFT       64
#define OFF_UPLOADED   72
#define OFF_EVENT      80
#define OFF_KEY        88
#define OFF_NUMWANT    92
#define OFF_PORT       96

static uint64_t get64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return be64toh(v);
}

static uint32_t get32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return be32toh(v);
}

static uint16_t get16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof(v));
    return be16toh(v);
}

static void put64(uint8_t *p, uint64_t v)
{
    v = htobe64(v);
    memcpy(p, &v, sizeof(v));
}

static void put32(uint8_t *p, uint32_t v)
{
    v = htobe32(v);
    memcpy(p, &v, sizeof(v));
}

static bep15_err_t parse_announce(const uint8_t *pkt, size_t len, announce_t *a)
{
    /* Bytes past 98 are BEP 41 options (URL data, ...): tolerated, not read. */
    if (len < BEP15_ANNOUNCE_LEN)
        return BEP15_ERR_LENGTH;
    uint32_t event = get32(pkt + OFF_EVENT);
    if (event > ANNOUNCE_STOPPED)
        return BEP15_ERR_EVENT;
    uint16_t port = get16(pkt + OFF_PORT);
    if (port == 0)
        return BEP15_ERR_PORT;
    memcpy(a->info_hash, pkt + OFF_INFO_HASH, SHOAL_HASH_LEN);
    memcpy(a->peer_id, pkt + OFF_PEER_ID, SHOAL_HASH_LEN);
    a->downloaded = get64(pkt + OFF_DOWNLOADED);
    a->left = get64(pkt + OFF_LEFT);
    a->uploaded = get64(pkt + OFF_UPLOADED);
    a->event = (announce_event_t)event;
    /* The ip field (offset 84) is ignored: the server uses the datagram's source address. */
    a->key = get32(pkt + OFF_KEY);
    a->numwant = (int32_t)get32(pkt + OFF_NUMWANT);
    a->peer.port = port;
    return BEP15_OK;
}

static bep15_err_t parse_scrape(const uint8_t *pkt, size_t len, bep15_request_t *out)
{
    size_t body = len - BEP15_SCRAPE_MIN;
    if (body % SHOAL_HASH_LEN != 0)
        return BEP15_ERR_LENGTH;
    size_t n = body / SHOAL_HASH_LEN;
    if (n == 0)
        return BEP15_ERR_SCRAPE_EMPTY;
    if (n > BEP15_SCRAPE_MAX)
        return BEP15_ERR_SCRAPE_TOO_MANY;
    out->scrape.hashes = pkt + BEP15_SCRAPE_MIN;
    out->scrape.n = n;
    return BEP15_OK;
}

bep15_err_t bep15_parse(const uint8_t *pkt, size_t len, bep15_request_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len < BEP15_CONNECT_LEN)
        return BEP15_ERR_SHORT;
    out->connection_id = get64(pkt);
    uint32_t action = get32(pkt + 8);
    out->transaction_id = get32(pkt + 12);
    switch (action) {
    case BEP15_CONNECT:
        out->action = BEP15_CONNECT;
        /* Extra bytes after the 16 are ignored, as other trackers do. */
        return out->connection_id == BEP15_PROTOCOL_ID ? BEP15_OK : BEP15_ERR_MAGIC;
    case BEP15_ANNOUNCE:
        out->action = BEP15_ANNOUNCE;
        return parse_announce(pkt, len, &out->announce);
    case BEP15_SCRAPE:
        out->action = BEP15_SCRAPE;
        return parse_scrape(pkt, len, out);
    default:
        /* Includes action 3: errors are sent by trackers, never to them. */
        out->action = BEP15_ERROR;
        return BEP15_ERR_ACTION;
    }
}

const char *bep15_strerror(bep15_err_t err)
{
    switch (err) {
    case BEP15_OK:
        return "ok";
    case BEP15_ERR_SHORT:
        return "packet too short";
    case BEP15_ERR_MAGIC:
        return "invalid protocol id";
    case BEP15_ERR_ACTION:
        return "unknown action";
    case BEP15_ERR_LENGTH:
        return "invalid packet length";
    case BEP15_ERR_EVENT:
        return "invalid event";
    case BEP15_ERR_PORT:
        return "invalid port";
    case BEP15_ERR_SCRAPE_EMPTY:
        return "no info_hash in scrape";
    case BEP15_ERR_SCRAPE_TOO_MANY:
        return "too many info_hashes in scrape (max 74)";
    }
    return "unknown error";
}

size_t bep15_write_connect(uint8_t *out, size_t cap, uint32_t transaction_id,
                           uint64_t connection_id)
{
    if (cap < BEP15_CONNECT_LEN)
        return 0;
    put32(out, BEP15_CONNECT);
    put32(out + 4, transaction_id);
    put64(out + 8, connection_id);
    return BEP15_CONNECT_LEN;
}

size_t bep15_write_announce_header(uint8_t *out, size_t cap, uint32_t transaction_id,
                                   uint32_t interval, uint32_t leechers, uint32_t seeders)
{
    if (cap < BEP15_ANNOUNCE_HDR)
        return 0;
    put32(out, BEP15_ANNOUNCE);
    put32(out + 4, transaction_id);
    put32(out + 8, interval);
    put32(out + 12, leechers);
    put32(out + 16, seeders);
    return BEP15_ANNOUNCE_HDR;
}

size_t bep15_write_announce(uint8_t *out, size_t cap, const bep15_announce_reply_t *r)
{
    size_t rec = r->family == 4 ? SHOAL_PEER4_LEN : r->family == 6 ? SHOAL_PEER6_LEN : 0;
    if (rec == 0 || cap < BEP15_ANNOUNCE_HDR)
        return 0;
    size_t fit = (cap - BEP15_ANNOUNCE_HDR) / rec;
    size_t n = r->n_peers < fit ? r->n_peers : fit;
    put32(out, BEP15_ANNOUNCE);
    put32(out + 4, r->transaction_id);
    put32(out + 8, r->interval);
    put32(out + 12, r->stats.leechers);
    put32(out + 16, r->stats.seeders);
    /* The records are stored in wire form already: one copy, no per-peer work. */
    if (n)
        memcpy(out + BEP15_ANNOUNCE_HDR, r->peers, n * rec);
    return BEP15_ANNOUNCE_HDR + n * rec;
}

size_t bep15_write_scrape(uint8_t *out, size_t cap, uint32_t transaction_id,
                          const swarm_stats_t *stats, size_t n)
{
    /* Division, not n * 12 + 8, so a huge n cannot wrap around and pass. */
    if (cap < BEP15_SCRAPE_HDR || n > (cap - BEP15_SCRAPE_HDR) / BEP15_SCRAPE_ENTRY)
        return 0;
    put32(out, BEP15_SCRAPE);
    put32(out + 4, transaction_id);
    uint8_t *p = out + BEP15_SCRAPE_HDR;
    for (size_t i = 0; i < n; i++, p += BEP15_SCRAPE_ENTRY) {
        put32(p, stats[i].seeders);
        put32(p + 4, stats[i].downloaded);
        put32(p + 8, stats[i].leechers);
    }
    return BEP15_SCRAPE_HDR + n * BEP15_SCRAPE_ENTRY;
}

size_t bep15_write_error(uint8_t *out, size_t cap, uint32_t transaction_id, const char *msg)
{
    size_t mlen = msg ? strlen(msg) : 0;
    if (cap < BEP15_ERROR_HDR || mlen > cap - BEP15_ERROR_HDR)
        return 0;
    put32(out, BEP15_ERROR);
    put32(out + 4, transaction_id);
    if (mlen)
        memcpy(out + BEP15_ERROR_HDR, msg, mlen);
    return BEP15_ERROR_HDR + mlen;
}
