/* SPDX-License-Identifier: MIT */
/* fuzz_bep15: bep15_parse() over arbitrary datagrams. Beyond "no crash", every accepted request
 * must re-encode to the bytes it came from (the ignored ip field and BEP 41 options aside), every
 * answerable error must carry the packet's transaction id and fit an error reply, and a scrape's
 * hashes must lie inside the packet. */
#include "bep15.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Rebuild the request's first bytes from the decoded form; returns how many. */
static size_t encode_request(const bep15_request_t *r, uint8_t *out)
{
    put_be(out, r->connection_id, 8);
    put_be(out + 8, (uint32_t)r->action, 4);
    put_be(out + 12, r->transaction_id, 4);
    switch (r->action) {
    case BEP15_ANNOUNCE: {
        const announce_t *a = &r->announce;
        memcpy(out + 16, a->info_hash, 20);
        memcpy(out + 36, a->peer_id, 20);
        put_be(out + 56, a->downloaded, 8);
        put_be(out + 64, a->left, 8);
        put_be(out + 72, a->uploaded, 8);
        put_be(out + 80, (uint32_t)a->event, 4);
        put_be(out + 84, 0, 4); /* ip: not decoded */
        put_be(out + 88, a->key, 4);
        put_be(out + 92, (uint32_t)a->numwant, 4);
        put_be(out + 96, a->peer.port, 2);
        return BEP15_ANNOUNCE_LEN;
    }
    case BEP15_SCRAPE:
        memcpy(out + 16, r->scrape.hashes, r->scrape.n * SHOAL_HASH_LEN);
        return BEP15_SCRAPE_MIN + r->scrape.n * SHOAL_HASH_LEN;
    default:
        return BEP15_CONNECT_LEN;
    }
}

static void check_ok(const uint8_t *data, size_t size, const bep15_request_t *r)
{
    static uint8_t enc[BEP15_SCRAPE_MIN + BEP15_SCRAPE_MAX * SHOAL_HASH_LEN];
    static uint8_t reply[BEP15_MAX_REPLY];
    static const swarm_stats_t zero_stats[BEP15_SCRAPE_MAX];
    size_t n = encode_request(r, enc);
    CHECK(n <= size);
    switch (r->action) {
    case BEP15_CONNECT:
        CHECK(r->connection_id == BEP15_PROTOCOL_ID);
        CHECK(memcmp(enc, data, n) == 0);
        CHECK(bep15_write_connect(reply, sizeof(reply), r->transaction_id, 1) == 16);
        break;
    case BEP15_ANNOUNCE:
        CHECK(r->announce.event <= ANNOUNCE_STOPPED);
        CHECK(r->announce.peer.port != 0);
        CHECK(r->announce.peer.family == 0);
        CHECK(memcmp(enc, data, 84) == 0 && memcmp(enc + 88, data + 88, 10) == 0);
        CHECK(bep15_write_announce_header(reply, sizeof(reply), r->transaction_id, 1, 2, 3) ==
              BEP15_ANNOUNCE_HDR);
        break;
    case BEP15_SCRAPE:
        CHECK(r->scrape.n >= 1 && r->scrape.n <= BEP15_SCRAPE_MAX);
        CHECK(r->scrape.hashes == data + BEP15_SCRAPE_MIN);
        CHECK(n == size);
        CHECK(memcmp(enc, data, n) == 0);
        CHECK(bep15_write_scrape(reply, sizeof(reply), r->transaction_id, zero_stats,
                                 r->scrape.n) == BEP15_SCRAPE_HDR + r->scrape.n * 12);
        break;
    default:
        CHECK(0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bep15_request_t r;
    bep15_err_t err = bep15_parse(data, size, &r);
    if (err == BEP15_ERR_SHORT) {
        CHECK(size < BEP15_CONNECT_LEN);
        return 0;
    }
    CHECK(size >= BEP15_CONNECT_LEN);
    CHECK(r.transaction_id == get_be32(data + 12));
    if (err == BEP15_OK) {
        check_ok(data, size, &r);
        return 0;
    }
    uint8_t reply[BEP15_MAX_REPLY];
    const char *msg = bep15_strerror(err);
    size_t n = bep15_write_error(reply, sizeof(reply), r.transaction_id, msg);
    CHECK(n == BEP15_ERROR_HDR + strlen(msg));
    CHECK(get_be32(reply) == BEP15_ERROR && get_be32(reply + 4) == r.transaction_id);
    return 0;
}
