/* SPDX-License-Identifier: MIT */
/* fuzz_snapshot: snap_check() over arbitrary bytes. Beyond "no crash, no leak": an accepted
 * snapshot must be valid msgpack by msgpack-c's own unpacker, satisfy every limit of its header,
 * iterate to exactly the declared swarms with records inside the input and counts that match
 * them, and re-encode (through the encoder, peer by peer) to a snapshot that passes snap_check()
 * with the same header, the same swarms and byte-identical peer records. Re-encoding that again
 * gives the same bytes: the encoder's output is canonical. One encoder serves every input, so
 * buffer reuse across snap_enc_begin() is exercised too. */
#include "snapshot.h"

#include "partition.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

static snap_enc_t *enc;
static uint8_t *first; /* a copy of the first re-encoding */
static size_t first_cap;

static bool inside(const void *p, size_t n, const void *base, size_t size)
{
    const uint8_t *b = base, *q = p;
    return q >= b && n <= size && (size_t)(q - b) <= size - n;
}

/* msgpack-c agrees that buf holds exactly one msgpack array. Only called on accepted input,
 * whose counts are bounded by its size, so msgpack-c's up-front allocation is too. */
static void check_msgpack(const uint8_t *buf, size_t len)
{
    msgpack_unpacked u;
    size_t off = 0;
    msgpack_unpacked_init(&u);
    CHECK(msgpack_unpack_next(&u, (const char *)buf, len, &off) == MSGPACK_UNPACK_SUCCESS);
    CHECK(off == len);
    CHECK(u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size == 6);
    msgpack_unpacked_destroy(&u);
}

/* Walk every swarm and peer of a checked snapshot, checking what the iterators give, and
 * re-encode it all into enc. */
static void walk_and_encode(const uint8_t *buf, size_t len, const snap_header_t *h)
{
    snap_iter_t it;
    snap_swarm_t sw;
    snap_peer_t p;
    uint32_t swarms = 0;
    CHECK(snap_enc_begin(enc, h->partition, h->owner, h->epoch, h->wall_ms) == SNAP_OK);
    snap_iter_init(&it, buf, len);
    while (snap_iter_next(&it, &sw) == SNAP_OK) {
        swarms++;
        CHECK(inside(sw.info_hash, SHOAL_HASH_LEN, buf, len));
        CHECK(sw.peers_len == 0 || inside(sw.peers, sw.peers_len, buf, len));
        CHECK(sw.peers_len == (size_t)sw.n4 * SNAP_PEER4_LEN + (size_t)sw.n6 * SNAP_PEER6_LEN);
        CHECK(snap_enc_swarm(enc, sw.info_hash, sw.downloaded, sw.n4, sw.n6) == SNAP_OK);
        size_t off = 0, prev = 0;
        uint32_t n4 = 0, n6 = 0;
        while (snap_swarm_peer(&sw, &off, &p)) {
            CHECK(p.family == 4 || p.family == 6);
            CHECK(off - prev == (p.family == 6 ? SNAP_PEER6_LEN : SNAP_PEER4_LEN));
            CHECK(p.compact == sw.peers + prev + 5);
            prev = off;
            if (p.family == 6)
                n6++;
            else
                n4++;
            CHECK(snap_enc_peer(enc, &p) == SNAP_OK);
        }
        CHECK(off == sw.peers_len && n4 == sw.n4 && n6 == sw.n6);
    }
    CHECK(snap_iter_next(&it, &sw) == SNAP_END);
    CHECK(swarms == h->swarms);
}

/* Both snapshots hold the same swarms, with byte-identical records. */
static void check_same_swarms(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    snap_iter_t ia, ib;
    snap_swarm_t sa, sb;
    snap_iter_init(&ia, a, alen);
    snap_iter_init(&ib, b, blen);
    while (snap_iter_next(&ia, &sa) == SNAP_OK) {
        CHECK(snap_iter_next(&ib, &sb) == SNAP_OK);
        CHECK(memcmp(sa.info_hash, sb.info_hash, SHOAL_HASH_LEN) == 0);
        CHECK(sa.downloaded == sb.downloaded && sa.n4 == sb.n4 && sa.n6 == sb.n6);
        CHECK(sa.peers_len == sb.peers_len);
        CHECK(sa.peers_len == 0 || memcmp(sa.peers, sb.peers, sa.peers_len) == 0);
    }
    CHECK(snap_iter_next(&ib, &sb) == SNAP_END);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    snap_header_t h, h2;
    const uint8_t *out;
    size_t out_len;

    if (snap_check(data, size, &h) != SNAP_OK)
        return 0;
    CHECK(h.partition < PARTITION_COUNT);
    CHECK(strlen(h.owner) >= 1 && strlen(h.owner) <= SNAP_OWNER_MAX);
    check_msgpack(data, size);

    if (!enc)
        CHECK((enc = snap_enc_new()) != NULL);
    walk_and_encode(data, size, &h);
    CHECK(snap_enc_swarms(enc) == h.swarms);
    CHECK(snap_enc_finish(enc, &out, &out_len) == SNAP_OK);
    CHECK(snap_check(out, out_len, &h2) == SNAP_OK);
    CHECK(h2.partition == h.partition && strcmp(h2.owner, h.owner) == 0);
    CHECK(h2.epoch == h.epoch && h2.wall_ms == h.wall_ms && h2.swarms == h.swarms);
    check_same_swarms(data, size, out, out_len);

    /* Re-encode the re-encoding: the same bytes. The first is copied out, since the encoder's
     * buffer is reused. */
    if (out_len > first_cap) {
        free(first);
        CHECK((first = malloc(out_len)) != NULL);
        first_cap = out_len;
    }
    memcpy(first, out, out_len);
    size_t first_len = out_len;
    walk_and_encode(first, first_len, &h2);
    CHECK(snap_enc_finish(enc, &out, &out_len) == SNAP_OK);
    CHECK(out_len == first_len && memcmp(out, first, first_len) == 0);
    return 0;
}
