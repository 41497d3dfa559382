/* SPDX-License-Identifier: MIT */
/* test_bep15: the BEP 15 codec against byte-exact packets written out by hand, both directions,
 * every malformed class the parser names, and the writers' capacity checks. */
#include "bep15.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

/* A connect request: protocol id 0x41727101980, action 0, transaction id 0xdeadbeef. */
static const uint8_t connect_req[16] = {
    0x00, 0x00, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, /* protocol id */
    0x00, 0x00, 0x00, 0x00,                         /* action: connect */
    0xde, 0xad, 0xbe, 0xef,                         /* transaction id */
};

/* An announce request with a distinct value in every field. */
static const uint8_t announce_req[98] = {
    0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,             /* connection id */
    0x00, 0x00, 0x00, 0x01,                                     /* action: announce */
    0x0a, 0x0b, 0x0c, 0x0d,                                     /* transaction id */
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, /* info_hash */
    0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, /* */
    '-',  'S',  'H',  '0',  '0',  '0',  '1',  '-',  'a',  'b',  /* peer_id */
    'c',  'd',  'e',  'f',  'g',  'h',  'i',  'j',  'k',  'l',  /* */
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,             /* downloaded */
    0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,             /* left */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,             /* uploaded */
    0x00, 0x00, 0x00, 0x02,                                     /* event: started */
    0xc0, 0x00, 0x02, 0x01,                                     /* ip 192.0.2.1: ignored */
    0xca, 0xfe, 0xba, 0xbe,                                     /* key */
    0x00, 0x00, 0x00, 0x32,                                     /* num_want 50 */
    0x1a, 0xe1,                                                 /* port 6881 */
};

#define OFF_EVENT   80
#define OFF_NUMWANT 92
#define OFF_PORT    96

/* A scrape header: connection id, action 2, transaction id 0x01020304. */
static const uint8_t scrape_hdr[16] = {
    0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, /* connection id */
    0x00, 0x00, 0x00, 0x02,                         /* action: scrape */
    0x01, 0x02, 0x03, 0x04,                         /* transaction id */
};

static uint8_t pkt[2048];

/* scrape_hdr followed by n info-hashes (hash i is 20 bytes of value i + 1) and extra bytes. */
static size_t make_scrape(size_t n, size_t extra)
{
    memcpy(pkt, scrape_hdr, sizeof(scrape_hdr));
    for (size_t i = 0; i < n; i++)
        memset(pkt + 16 + 20 * i, (int)(i + 1), 20);
    memset(pkt + 16 + 20 * n, 0xee, extra);
    return 16 + 20 * n + extra;
}

/* announce_req with a 32-bit field at off replaced. */
static void announce_with_u32(uint8_t *out, size_t off, uint32_t v)
{
    memcpy(out, announce_req, sizeof(announce_req));
    out[off] = (uint8_t)(v >> 24);
    out[off + 1] = (uint8_t)(v >> 16);
    out[off + 2] = (uint8_t)(v >> 8);
    out[off + 3] = (uint8_t)v;
}

/* --- connect --- */

static void connect_request_parses(void **state)
{
    (void)state;
    bep15_request_t r;
    assert_int_equal(bep15_parse(connect_req, sizeof(connect_req), &r), BEP15_OK);
    assert_int_equal(r.action, BEP15_CONNECT);
    assert_int_equal(r.transaction_id, 0xdeadbeef);
    assert_true(r.connection_id == BEP15_PROTOCOL_ID);
}

static void connect_with_trailing_bytes_is_accepted(void **state)
{
    (void)state;
    uint8_t p[40];
    memcpy(p, connect_req, 16);
    memset(p + 16, 0x5a, sizeof(p) - 16);
    bep15_request_t r;
    assert_int_equal(bep15_parse(p, sizeof(p), &r), BEP15_OK);
    assert_int_equal(r.action, BEP15_CONNECT);
    assert_int_equal(r.transaction_id, 0xdeadbeef);
}

static void connect_with_wrong_magic_is_magic_error(void **state)
{
    (void)state;
    uint8_t p[16];
    memcpy(p, connect_req, 16);
    p[7] = 0x81;
    bep15_request_t r;
    assert_int_equal(bep15_parse(p, sizeof(p), &r), BEP15_ERR_MAGIC);
    assert_int_equal(r.transaction_id, 0xdeadbeef);
}

static void packet_under_16_bytes_is_short(void **state)
{
    (void)state;
    bep15_request_t r;
    for (size_t len = 0; len < 16; len++)
        assert_int_equal(bep15_parse(connect_req, len, &r), BEP15_ERR_SHORT);
}

static void connect_reply_is_byte_exact(void **state)
{
    (void)state;
    static const uint8_t want[16] = {
        0x00, 0x00, 0x00, 0x00,                         /* action: connect */
        0xde, 0xad, 0xbe, 0xef,                         /* transaction id */
        0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10, /* connection id */
    };
    uint8_t out[32];
    memset(out, 0xaa, sizeof(out));
    assert_int_equal(bep15_write_connect(out, sizeof(out), 0xdeadbeef, 0xfedcba9876543210ULL), 16);
    assert_memory_equal(out, want, sizeof(want));
    assert_int_equal(out[16], 0xaa);
}

static void connect_reply_needs_16_bytes(void **state)
{
    (void)state;
    uint8_t out[16];
    memset(out, 0xaa, sizeof(out));
    assert_int_equal(bep15_write_connect(out, 15, 1, 2), 0);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xaa);
    assert_int_equal(bep15_write_connect(out, 16, 1, 2), 16);
}

/* --- announce --- */

static void announce_request_parses_every_field(void **state)
{
    (void)state;
    static const uint8_t hash[20] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19,
                                     0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23};
    bep15_request_t r;
    assert_int_equal(bep15_parse(announce_req, sizeof(announce_req), &r), BEP15_OK);
    assert_int_equal(r.action, BEP15_ANNOUNCE);
    assert_true(r.connection_id == 0x0102030405060708ULL);
    assert_int_equal(r.transaction_id, 0x0a0b0c0d);
    assert_memory_equal(r.announce.info_hash, hash, 20);
    assert_memory_equal(r.announce.peer_id, "-SH0001-abcdefghijkl", 20);
    assert_true(r.announce.downloaded == 0x0000000100000002ULL);
    assert_true(r.announce.left == 0x8000000000000003ULL);
    assert_true(r.announce.uploaded == 4096);
    assert_int_equal(r.announce.event, ANNOUNCE_STARTED);
    assert_int_equal(r.announce.key, 0xcafebabe);
    assert_int_equal(r.announce.numwant, 50);
    assert_int_equal(r.announce.peer.port, 6881);
}

static void announce_ip_field_is_ignored(void **state)
{
    (void)state;
    static const uint8_t zero[16] = {0};
    bep15_request_t r;
    assert_int_equal(bep15_parse(announce_req, sizeof(announce_req), &r), BEP15_OK);
    assert_int_equal(r.announce.peer.family, 0);
    assert_memory_equal(r.announce.peer.addr, zero, 16);
}

static void announce_numwant_minus_one_stays_negative(void **state)
{
    (void)state;
    uint8_t p[98];
    bep15_request_t r;
    announce_with_u32(p, OFF_NUMWANT, 0xffffffff);
    assert_int_equal(bep15_parse(p, sizeof(p), &r), BEP15_OK);
    assert_int_equal(r.announce.numwant, -1);
    announce_with_u32(p, OFF_NUMWANT, 0x80000000);
    assert_int_equal(bep15_parse(p, sizeof(p), &r), BEP15_OK);
    assert_int_equal(r.announce.numwant, INT32_MIN);
    announce_with_u32(p, OFF_NUMWANT, 0x7fffffff);
    assert_int_equal(bep15_parse(p, sizeof(p), &r), BEP15_OK);
    assert_int_equal(r.announce.numwant, INT32_MAX);
}

static void announce_each_event_parses(void **state)
{
    (void)state;
    uint8_t p[98];
    bep15_request_t r;
    for (uint32_t ev = 0; ev <= 3; ev++) {
        announce_with_u32(p, OFF_EVENT, ev);
        assert_int_equal(bep15_parse(p, sizeof(p), &r), BEP15_OK);
        assert_int_equal(r.announce.event, ev);
    }
}

static void announce_event_over_3_is_event_error(void **state)
{
    (void)state;
    uint8_t p[98];
    bep15_request_t r;
    static const uint32_t bad[] = {4, 0x100, 0x01000000, 0xffffffff};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        announce_with_u32(p, OFF_EVENT, bad[i]);
        assert_int_equal(bep15_parse(p, sizeof(p), &r), BEP15_ERR_EVENT);
        assert_int_equal(r.transaction_id, 0x0a0b0c0d);
    }
}

static void announce_port_zero_is_port_error(void **state)
{
    (void)state;
    uint8_t p[98];
    memcpy(p, announce_req, sizeof(p));
    p[OFF_PORT] = 0;
    p[OFF_PORT + 1] = 0;
    bep15_request_t r;
    assert_int_equal(bep15_parse(p, sizeof(p), &r), BEP15_ERR_PORT);
    assert_int_equal(r.transaction_id, 0x0a0b0c0d);
}

static void announce_port_is_host_order(void **state)
{
    (void)state;
    uint8_t p[98];
    memcpy(p, announce_req, sizeof(p));
    p[OFF_PORT] = 0xff;
    p[OFF_PORT + 1] = 0x01;
    bep15_request_t r;
    assert_int_equal(bep15_parse(p, sizeof(p), &r), BEP15_OK);
    assert_int_equal(r.announce.peer.port, 0xff01);
}

static void announce_under_98_bytes_is_length_error(void **state)
{
    (void)state;
    bep15_request_t r;
    for (size_t len = 16; len < 98; len++) {
        assert_int_equal(bep15_parse(announce_req, len, &r), BEP15_ERR_LENGTH);
        assert_int_equal(r.transaction_id, 0x0a0b0c0d);
    }
}

static void announce_with_bep41_options_is_accepted(void **state)
{
    (void)state;
    /* BEP 41: option 2 (URLData) of length 9 carrying "/announce", then NOP and EndOfOptions. */
    static const uint8_t opts[] = {0x02, 0x09, '/', 'a', 'n',  'n', 'o',
                                   'u',  'n',  'c', 'e', 0x01, 0x00};
    uint8_t p[98 + sizeof(opts)];
    memcpy(p, announce_req, 98);
    memcpy(p + 98, opts, sizeof(opts));
    bep15_request_t plain, with_opts;
    assert_int_equal(bep15_parse(announce_req, sizeof(announce_req), &plain), BEP15_OK);
    assert_int_equal(bep15_parse(p, sizeof(p), &with_opts), BEP15_OK);
    assert_memory_equal(&plain, &with_opts, sizeof(plain));
}

static void announce_at_odd_address_parses(void **state)
{
    (void)state;
    /* Datagrams are not aligned: every field must be read bytewise (UBSan would catch it). */
    static uint8_t buf[99 + 8];
    uint8_t *p = buf + 1;
    memcpy(p, announce_req, 98);
    bep15_request_t r;
    assert_int_equal(bep15_parse(p, 98, &r), BEP15_OK);
    assert_true(r.announce.downloaded == 0x0000000100000002ULL);
    assert_int_equal(r.announce.peer.port, 6881);
}

static void announce_reply_header_is_byte_exact(void **state)
{
    (void)state;
    static const uint8_t want[20] = {
        0x00, 0x00, 0x00, 0x01, /* action: announce */
        0x0a, 0x0b, 0x0c, 0x0d, /* transaction id */
        0x00, 0x00, 0x07, 0x08, /* interval 1800 */
        0x00, 0x00, 0x00, 0x05, /* leechers */
        0x00, 0x01, 0x00, 0x00, /* seeders 65536 */
    };
    uint8_t out[20];
    assert_int_equal(bep15_write_announce_header(out, sizeof(out), 0x0a0b0c0d, 1800, 5, 65536), 20);
    assert_memory_equal(out, want, sizeof(want));
}

static void announce_reply_needs_20_bytes(void **state)
{
    (void)state;
    uint8_t out[20];
    memset(out, 0xaa, sizeof(out));
    assert_int_equal(bep15_write_announce_header(out, 19, 1, 2, 3, 4), 0);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xaa);
}

static void announce_reply_ipv6_peers_follow_header(void **state)
{
    (void)state;
    /* Two compact IPv6 peers, 2001:db8::1 port 6881 and 2001:db8::2 port 51413. */
    static const uint8_t want[20 + 2 * 18] = {
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07, /* announce, transaction id 7 */
        0x00, 0x00, 0x00, 0x78, 0x00, 0x00, 0x00, 0x01, /* interval 120, leechers 1 */
        0x00, 0x00, 0x00, 0x01,                         /* seeders 1 */
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x1a, 0xe1, /* peer 1 */
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc8, 0xd5, /* peer 2 */
    };
    uint8_t out[BEP15_MAX_REPLY];
    size_t n = bep15_write_announce_header(out, sizeof(out), 7, 120, 1, 1);
    assert_int_equal(n, BEP15_ANNOUNCE_HDR);
    memcpy(out + n, want + 20, 2 * SHOAL_PEER6_LEN);
    n += 2 * SHOAL_PEER6_LEN;
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
}

/* Two compact IPv4 peers, 192.0.2.1 port 6881 and 198.51.100.7 port 51413. */
static const uint8_t peers4[2 * 6] = {
    0xc0, 0x00, 0x02, 0x01, 0x1a, 0xe1, /* peer 1 */
    0xc6, 0x33, 0x64, 0x07, 0xc8, 0xd5, /* peer 2 */
};

/* Two compact IPv6 peers, 2001:db8::1 port 6881 and 2001:db8::2 port 51413. */
static const uint8_t peers6[2 * 18] = {
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x1a, 0xe1, /* peer 1 */
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc8, 0xd5, /* peer 2 */
};

static void whole_announce_reply_ipv4_is_byte_exact(void **state)
{
    (void)state;
    static const uint8_t want[20 + 2 * 6] = {
        0x00, 0x00, 0x00, 0x01,             /* action: announce */
        0x0a, 0x0b, 0x0c, 0x0d,             /* transaction id */
        0x00, 0x00, 0x07, 0x08,             /* interval 1800 */
        0x00, 0x00, 0x00, 0x05,             /* leechers 5 */
        0x00, 0x01, 0x00, 0x00,             /* seeders 65536 */
        0xc0, 0x00, 0x02, 0x01, 0x1a, 0xe1, /* 192.0.2.1:6881 */
        0xc6, 0x33, 0x64, 0x07, 0xc8, 0xd5, /* 198.51.100.7:51413 */
    };
    bep15_announce_reply_t r = {.transaction_id = 0x0a0b0c0d,
                                .interval = 1800,
                                .stats = {.seeders = 65536, .leechers = 5, .downloaded = 9},
                                .family = 4,
                                .peers = peers4,
                                .n_peers = 2};
    uint8_t out[BEP15_MAX_REPLY];
    assert_int_equal(bep15_write_announce(out, sizeof(out), &r), sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
}

static void whole_announce_reply_ipv6_is_byte_exact(void **state)
{
    (void)state;
    static const uint8_t want[20 + 2 * 18] = {
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07, /* announce, transaction id 7 */
        0x00, 0x00, 0x00, 0x78, 0x00, 0x00, 0x00, 0x02, /* interval 120, leechers 2 */
        0x00, 0x00, 0x00, 0x03,                         /* seeders 3 */
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x1a, 0xe1, /* [2001:db8::1]:6881 */
        0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc8, 0xd5, /* [2001:db8::2]:51413 */
    };
    bep15_announce_reply_t r = {.transaction_id = 7,
                                .interval = 120,
                                .stats = {.seeders = 3, .leechers = 2},
                                .family = 6,
                                .peers = peers6,
                                .n_peers = 2};
    uint8_t out[BEP15_MAX_REPLY];
    assert_int_equal(bep15_write_announce(out, sizeof(out), &r), sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
}

static void whole_announce_reply_without_peers_is_header_only(void **state)
{
    (void)state;
    static const uint8_t want[20] = {
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, /* announce, transaction id 1 */
        0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, /* interval 2, leechers 0 */
        0x00, 0x00, 0x00, 0x00,                         /* seeders 0 */
    };
    bep15_announce_reply_t r = {.transaction_id = 1, .interval = 2, .family = 4};
    uint8_t out[BEP15_ANNOUNCE_HDR];
    assert_int_equal(bep15_write_announce(out, sizeof(out), &r), BEP15_ANNOUNCE_HDR);
    assert_memory_equal(out, want, sizeof(want));
}

static void whole_announce_reply_keeps_only_whole_records_that_fit(void **state)
{
    (void)state;
    bep15_announce_reply_t r = {.transaction_id = 7, .family = 6, .peers = peers6, .n_peers = 2};
    uint8_t out[20 + 18 + 17 + 1];
    memset(out, 0xaa, sizeof(out));
    /* Room for one record and 17 bytes of a second: the second is left out whole. */
    assert_int_equal(bep15_write_announce(out, 20 + 18 + 17, &r), 20 + 18);
    assert_memory_equal(out + 20, peers6, 18);
    for (size_t i = 20 + 18; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xaa);
}

static void whole_announce_reply_of_max_udp_peers_fits_in_max_reply(void **state)
{
    (void)state;
    static uint8_t many[SHOAL_UDP_PEERS4 * SHOAL_PEER4_LEN];
    for (size_t i = 0; i < sizeof(many); i++)
        many[i] = (uint8_t)(i * 7);
    bep15_announce_reply_t r = {.family = 4, .peers = many, .n_peers = SHOAL_UDP_PEERS4};
    uint8_t out[BEP15_MAX_REPLY];
    size_t n = bep15_write_announce(out, sizeof(out), &r);
    assert_int_equal(n, BEP15_ANNOUNCE_HDR + sizeof(many));
    assert_memory_equal(out + BEP15_ANNOUNCE_HDR, many, sizeof(many));
}

static void whole_announce_reply_needs_20_bytes(void **state)
{
    (void)state;
    bep15_announce_reply_t r = {.family = 4, .peers = peers4, .n_peers = 2};
    uint8_t out[20];
    memset(out, 0xaa, sizeof(out));
    assert_int_equal(bep15_write_announce(out, 19, &r), 0);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xaa);
}

static void whole_announce_reply_refuses_unknown_family(void **state)
{
    (void)state;
    bep15_announce_reply_t r = {.family = 5, .peers = peers4, .n_peers = 2};
    uint8_t out[BEP15_MAX_REPLY];
    memset(out, 0xaa, sizeof(out));
    assert_int_equal(bep15_write_announce(out, sizeof(out), &r), 0);
    assert_int_equal(out[0], 0xaa);
}

static void announce_reply_max_peers_fit_in_max_reply(void **state)
{
    (void)state;
    assert_true(BEP15_ANNOUNCE_HDR + SHOAL_UDP_PEERS4 * SHOAL_PEER4_LEN <= BEP15_MAX_REPLY);
    assert_true(BEP15_ANNOUNCE_HDR + SHOAL_UDP_PEERS6 * SHOAL_PEER6_LEN <= BEP15_MAX_REPLY);
}

/* --- scrape --- */

static void scrape_request_parses_hashes_in_place(void **state)
{
    (void)state;
    size_t len = make_scrape(2, 0);
    bep15_request_t r;
    assert_int_equal(bep15_parse(pkt, len, &r), BEP15_OK);
    assert_int_equal(r.action, BEP15_SCRAPE);
    assert_true(r.connection_id == 0x1122334455667788ULL);
    assert_int_equal(r.transaction_id, 0x01020304);
    assert_int_equal(r.scrape.n, 2);
    assert_ptr_equal(r.scrape.hashes, pkt + 16);
    assert_int_equal(r.scrape.hashes[0], 1);
    assert_int_equal(r.scrape.hashes[39], 2);
}

static void scrape_of_74_hashes_parses(void **state)
{
    (void)state;
    size_t len = make_scrape(74, 0);
    bep15_request_t r;
    assert_int_equal(bep15_parse(pkt, len, &r), BEP15_OK);
    assert_int_equal(r.scrape.n, 74);
}

static void scrape_of_75_hashes_is_too_many(void **state)
{
    (void)state;
    size_t len = make_scrape(75, 0);
    bep15_request_t r;
    assert_int_equal(bep15_parse(pkt, len, &r), BEP15_ERR_SCRAPE_TOO_MANY);
    assert_int_equal(r.transaction_id, 0x01020304);
}

static void scrape_without_hashes_is_empty(void **state)
{
    (void)state;
    size_t len = make_scrape(0, 0);
    bep15_request_t r;
    assert_int_equal(bep15_parse(pkt, len, &r), BEP15_ERR_SCRAPE_EMPTY);
    assert_int_equal(r.transaction_id, 0x01020304);
}

static void scrape_with_partial_hash_is_length_error(void **state)
{
    (void)state;
    bep15_request_t r;
    for (size_t extra = 1; extra < 20; extra++) {
        assert_int_equal(bep15_parse(pkt, make_scrape(1, extra), &r), BEP15_ERR_LENGTH);
        assert_int_equal(r.transaction_id, 0x01020304);
        assert_int_equal(bep15_parse(pkt, make_scrape(0, extra), &r), BEP15_ERR_LENGTH);
    }
}

static void scrape_reply_is_byte_exact(void **state)
{
    (void)state;
    static const uint8_t want[8 + 2 * 12] = {
        0x00, 0x00, 0x00, 0x02, 0x01, 0x02, 0x03, 0x04, /* scrape, transaction id */
        0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x1e, /* 10, 20, 30 */
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, /* max, 0, 256 */
    };
    /* Wire order is seeders, completed, leechers. */
    const swarm_stats_t st[2] = {
        {.seeders = 10, .downloaded = 20, .leechers = 30},
        {.seeders = 0xffffffff, .downloaded = 0, .leechers = 256},
    };
    uint8_t out[64];
    assert_int_equal(bep15_write_scrape(out, sizeof(out), 0x01020304, st, 2), sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
}

static void scrape_reply_with_no_entries_is_header_only(void **state)
{
    (void)state;
    static const uint8_t want[8] = {0, 0, 0, 2, 0, 0, 0, 9};
    uint8_t out[8];
    assert_int_equal(bep15_write_scrape(out, sizeof(out), 9, NULL, 0), 8);
    assert_memory_equal(out, want, sizeof(want));
}

static void scrape_reply_checks_cap(void **state)
{
    (void)state;
    swarm_stats_t st[3] = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}};
    uint8_t out[44];
    memset(out, 0xaa, sizeof(out));
    assert_int_equal(bep15_write_scrape(out, 8 + 3 * 12 - 1, 1, st, 3), 0);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xaa);
    assert_int_equal(bep15_write_scrape(out, 7, 1, st, 0), 0);
    assert_int_equal(bep15_write_scrape(out, 8 + 3 * 12, 1, st, 3), 44);
}

static void scrape_reply_huge_count_does_not_wrap(void **state)
{
    (void)state;
    /* n * 12 + 8 wraps to a small number for this n; the writer must still refuse. */
    uint8_t out[64];
    size_t n = SIZE_MAX / 12 + 1;
    assert_int_equal(bep15_write_scrape(out, sizeof(out), 1, NULL, n), 0);
}

static void scrape_reply_for_74_fits_in_max_reply(void **state)
{
    (void)state;
    swarm_stats_t st[BEP15_SCRAPE_MAX] = {{0}};
    uint8_t out[BEP15_MAX_REPLY];
    assert_int_equal(bep15_write_scrape(out, sizeof(out), 1, st, BEP15_SCRAPE_MAX),
                     8 + 12 * BEP15_SCRAPE_MAX);
}

/* --- actions and errors --- */

static void unknown_actions_are_action_error(void **state)
{
    (void)state;
    static const uint32_t bad[] = {3, 4, 0x100, 0xffffffff};
    uint8_t p[98];
    bep15_request_t r;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        announce_with_u32(p, 8, bad[i]);
        assert_int_equal(bep15_parse(p, sizeof(p), &r), BEP15_ERR_ACTION);
        assert_int_equal(r.transaction_id, 0x0a0b0c0d);
        assert_int_equal(r.action, BEP15_ERROR);
    }
}

static void error_reply_sent_to_us_is_action_error(void **state)
{
    (void)state;
    /* Another tracker's error reply reflected at us: its message lands where the action is
     * read ("inva"), which is no request. */
    uint8_t p[64];
    size_t n = bep15_write_error(p, sizeof(p), 5, bep15_strerror(BEP15_ERR_EVENT));
    assert_true(n >= 16);
    bep15_request_t r;
    assert_int_equal(bep15_parse(p, n, &r), BEP15_ERR_ACTION);
}

static void error_reply_is_byte_exact(void **state)
{
    (void)state;
    static const uint8_t want[8 + 13] = {
        0x00, 0x00, 0x00, 0x03, 0x0a, 0x0b, 0x0c, 0x0d, /* error, transaction id */
        'i',  'n',  'v',  'a',  'l',  'i',  'd',  ' ',  'e', 'v', 'e', 'n', 't',
    };
    uint8_t out[64];
    memset(out, 0xaa, sizeof(out));
    size_t n = bep15_write_error(out, sizeof(out), 0x0a0b0c0d, bep15_strerror(BEP15_ERR_EVENT));
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(out, want, sizeof(want));
    assert_int_equal(out[n], 0xaa); /* no NUL */
}

static void error_reply_checks_cap(void **state)
{
    (void)state;
    uint8_t out[16];
    memset(out, 0xaa, sizeof(out));
    assert_int_equal(bep15_write_error(out, 8 + 4, 1, "abcde"), 0);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xaa);
    assert_int_equal(bep15_write_error(out, 8 + 5, 1, "abcde"), 13);
    assert_int_equal(bep15_write_error(out, 7, 1, ""), 0);
    assert_int_equal(bep15_write_error(out, 8, 1, ""), 8);
}

static void error_reply_with_null_message_is_header_only(void **state)
{
    (void)state;
    static const uint8_t want[8] = {0, 0, 0, 3, 0, 0, 0, 1};
    uint8_t out[8];
    assert_int_equal(bep15_write_error(out, sizeof(out), 1, NULL), 8);
    assert_memory_equal(out, want, sizeof(want));
}

static void strerror_names_each_error(void **state)
{
    (void)state;
    assert_string_equal(bep15_strerror(BEP15_ERR_MAGIC), "invalid protocol id");
    assert_string_equal(bep15_strerror(BEP15_ERR_ACTION), "unknown action");
    assert_string_equal(bep15_strerror(BEP15_ERR_LENGTH), "invalid packet length");
    assert_string_equal(bep15_strerror(BEP15_ERR_EVENT), "invalid event");
    assert_string_equal(bep15_strerror(BEP15_ERR_PORT), "invalid port");
    assert_string_equal(bep15_strerror(BEP15_ERR_SCRAPE_EMPTY), "no info_hash in scrape");
    assert_string_equal(bep15_strerror(BEP15_ERR_SCRAPE_TOO_MANY),
                        "too many info_hashes in scrape (max 74)");
    assert_string_equal(bep15_strerror((bep15_err_t)999), "unknown error");
}

static void strerror_messages_fit_an_error_reply(void **state)
{
    (void)state;
    uint8_t out[BEP15_MAX_REPLY];
    for (int e = BEP15_OK; e <= BEP15_ERR_SCRAPE_TOO_MANY; e++) {
        const char *m = bep15_strerror((bep15_err_t)e);
        assert_true(strlen(m) > 0);
        assert_int_equal(bep15_write_error(out, sizeof(out), 1, m), 8 + strlen(m));
    }
}

static void parse_clears_previous_result(void **state)
{
    (void)state;
    bep15_request_t r;
    assert_int_equal(bep15_parse(pkt, make_scrape(3, 0), &r), BEP15_OK);
    assert_int_equal(bep15_parse(connect_req, sizeof(connect_req), &r), BEP15_OK);
    assert_null(r.scrape.hashes);
    assert_int_equal(r.scrape.n, 0);
    assert_int_equal(r.announce.peer.port, 0);
}

/* --- round trips: a hand-written encoder for requests, a hand-written decoder for replies --- */

static void put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

static void announce_round_trips(void **state)
{
    (void)state;
    announce_t a;
    memset(&a, 0, sizeof(a)); /* padding too: the result is compared with memcmp */
    a.downloaded = 1234567890123ULL;
    a.left = 0;
    a.uploaded = UINT64_MAX;
    a.event = ANNOUNCE_STOPPED;
    a.key = 77;
    a.numwant = -200;
    a.peer.port = 65535;
    memset(a.info_hash, 0xab, 20);
    memset(a.peer_id, 0xcd, 20);
    uint8_t p[98];
    put_be(p, 0x0123456789abcdefULL, 8);
    put_be(p + 8, 1, 4);
    put_be(p + 12, 42, 4);
    memcpy(p + 16, a.info_hash, 20);
    memcpy(p + 36, a.peer_id, 20);
    put_be(p + 56, a.downloaded, 8);
    put_be(p + 64, a.left, 8);
    put_be(p + 72, a.uploaded, 8);
    put_be(p + 80, a.event, 4);
    put_be(p + 84, 0, 4);
    put_be(p + 88, a.key, 4);
    put_be(p + 92, (uint32_t)a.numwant, 4);
    put_be(p + 96, a.peer.port, 2);
    bep15_request_t r;
    assert_int_equal(bep15_parse(p, sizeof(p), &r), BEP15_OK);
    assert_true(r.connection_id == 0x0123456789abcdefULL);
    assert_int_equal(r.transaction_id, 42);
    assert_memory_equal(&r.announce, &a, sizeof(a));
}

static void replies_round_trip(void **state)
{
    (void)state;
    uint8_t out[BEP15_MAX_REPLY];
    assert_int_equal(bep15_write_connect(out, sizeof(out), 0x89abcdef, 0x0011223344556677ULL), 16);
    assert_int_equal(get_be(out, 4), BEP15_CONNECT);
    assert_int_equal(get_be(out + 4, 4), 0x89abcdef);
    assert_true(get_be(out + 8, 8) == 0x0011223344556677ULL);

    swarm_stats_t st[BEP15_SCRAPE_MAX];
    for (size_t i = 0; i < BEP15_SCRAPE_MAX; i++)
        st[i] = (swarm_stats_t){.seeders = (uint32_t)i * 3,
                                .leechers = (uint32_t)i * 3 + 1,
                                .downloaded = (uint32_t)i * 3 + 2};
    size_t n = bep15_write_scrape(out, sizeof(out), 99, st, BEP15_SCRAPE_MAX);
    assert_int_equal(n, 8 + 12 * BEP15_SCRAPE_MAX);
    assert_int_equal(get_be(out, 4), BEP15_SCRAPE);
    assert_int_equal(get_be(out + 4, 4), 99);
    for (size_t i = 0; i < BEP15_SCRAPE_MAX; i++) {
        const uint8_t *e = out + 8 + 12 * i;
        assert_int_equal(get_be(e, 4), st[i].seeders);
        assert_int_equal(get_be(e + 4, 4), st[i].downloaded);
        assert_int_equal(get_be(e + 8, 4), st[i].leechers);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(connect_request_parses),
        cmocka_unit_test(connect_with_trailing_bytes_is_accepted),
        cmocka_unit_test(connect_with_wrong_magic_is_magic_error),
        cmocka_unit_test(packet_under_16_bytes_is_short),
        cmocka_unit_test(connect_reply_is_byte_exact),
        cmocka_unit_test(connect_reply_needs_16_bytes),
        cmocka_unit_test(announce_request_parses_every_field),
        cmocka_unit_test(announce_ip_field_is_ignored),
        cmocka_unit_test(announce_numwant_minus_one_stays_negative),
        cmocka_unit_test(announce_each_event_parses),
        cmocka_unit_test(announce_event_over_3_is_event_error),
        cmocka_unit_test(announce_port_zero_is_port_error),
        cmocka_unit_test(announce_port_is_host_order),
        cmocka_unit_test(announce_under_98_bytes_is_length_error),
        cmocka_unit_test(announce_with_bep41_options_is_accepted),
        cmocka_unit_test(announce_at_odd_address_parses),
        cmocka_unit_test(announce_reply_header_is_byte_exact),
        cmocka_unit_test(announce_reply_needs_20_bytes),
        cmocka_unit_test(announce_reply_ipv6_peers_follow_header),
        cmocka_unit_test(announce_reply_max_peers_fit_in_max_reply),
        cmocka_unit_test(whole_announce_reply_ipv4_is_byte_exact),
        cmocka_unit_test(whole_announce_reply_ipv6_is_byte_exact),
        cmocka_unit_test(whole_announce_reply_without_peers_is_header_only),
        cmocka_unit_test(whole_announce_reply_keeps_only_whole_records_that_fit),
        cmocka_unit_test(whole_announce_reply_of_max_udp_peers_fits_in_max_reply),
        cmocka_unit_test(whole_announce_reply_needs_20_bytes),
        cmocka_unit_test(whole_announce_reply_refuses_unknown_family),
        cmocka_unit_test(scrape_request_parses_hashes_in_place),
        cmocka_unit_test(scrape_of_74_hashes_parses),
        cmocka_unit_test(scrape_of_75_hashes_is_too_many),
        cmocka_unit_test(scrape_without_hashes_is_empty),
        cmocka_unit_test(scrape_with_partial_hash_is_length_error),
        cmocka_unit_test(scrape_reply_is_byte_exact),
        cmocka_unit_test(scrape_reply_with_no_entries_is_header_only),
        cmocka_unit_test(scrape_reply_checks_cap),
        cmocka_unit_test(scrape_reply_huge_count_does_not_wrap),
        cmocka_unit_test(scrape_reply_for_74_fits_in_max_reply),
        cmocka_unit_test(unknown_actions_are_action_error),
        cmocka_unit_test(error_reply_sent_to_us_is_action_error),
        cmocka_unit_test(error_reply_is_byte_exact),
        cmocka_unit_test(error_reply_checks_cap),
        cmocka_unit_test(error_reply_with_null_message_is_header_only),
        cmocka_unit_test(strerror_names_each_error),
        cmocka_unit_test(strerror_messages_fit_an_error_reply),
        cmocka_unit_test(parse_clears_previous_result),
        cmocka_unit_test(announce_round_trips),
        cmocka_unit_test(replies_round_trip),
    };
    return cmocka_run_group_tests_name("bep15", tests, NULL, NULL);
}
