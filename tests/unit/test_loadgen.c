/* SPDX-License-Identifier: MIT */
/* test_loadgen: the load generator's pure parts (tests/loadgen/): BEP 15 request encoding and
 * reply checking, HTTP framing and bencode checking, the workload (popularity sampler, peers,
 * request mix), the latency histogram and the loopback-only target check. */
#include "lgbenc.h"
#include "lghttp.h"
#include "lglat.h"
#include "lgtarget.h"
#include "lgudp.h"
#include "lgwork.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

/* ---- helpers ---- */

static const uint32_t TID = 0xdeadbeef;

static lgudp_expect_t expect(uint32_t action)
{
    lgudp_expect_t e = {.action = action, .tid = TID, .n_scrape = 2, .numwant = 30};
    return e;
}

static lgudp_verdict_t check(const uint8_t *pkt, size_t len, lgudp_expect_t e)
{
    lgudp_reply_t r;
    return lgudp_check(pkt, len, &e, &r);
}

static lgwork_config_t default_cfg(void)
{
    lgwork_config_t c = {
        .seed = 1,
        .torrents = 10000,
        .peers = 20000,
        .pareto_shape = 0.5,
        .pareto_head = 0.002,
        .weight_connect = 1,
        .weight_announce = 100,
        .weight_scrape = 1,
        .numwant = 30,
        .scrape_max = 10,
        .seeder_ratio = 0.75,
    };
    return c;
}

static lgwork_t make_wl(lgwork_config_t c)
{
    lgwork_t wl;
    assert_int_equal(lgwork_init(&wl, &c, NULL), 0);
    return wl;
}

#define BODY(s) (const uint8_t *)(s), sizeof(s) - 1

static lgbenc_verdict_t announce_body(const char *s, size_t len)
{
    lgbenc_info_t info;
    return lgbenc_check_announce((const uint8_t *)s, len, 30, &info);
}
#define ANNOUNCE(s) announce_body((s), sizeof(s) - 1)

static lghttp_frame_t frame(const char *s, size_t len, bool eof, lghttp_response_t *out)
{
    return lghttp_frame((const uint8_t *)s, len, eof, out);
}
#define FRAME(s, eof, out) frame((s), sizeof(s) - 1, (eof), (out))

/* ---- BEP 15 requests ---- */

static void udp_connect_request_is_byte_exact(void **state)
{
    (void)state;
    static const uint8_t want[16] = {0x00, 0x00, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80,
                                     0x00, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef};
    uint8_t buf[32];
    assert_int_equal(lgudp_connect(buf, sizeof(buf), TID), 16);
    assert_memory_equal(buf, want, 16);
}

static void udp_announce_request_is_byte_exact(void **state)
{
    (void)state;
    lgwork_announce_t a;
    memset(&a, 0, sizeof(a));
    for (int i = 0; i < 20; i++) {
        a.info_hash[i] = (uint8_t)(0xa0 + i);
        a.peer.peer_id[i] = (uint8_t)(0x10 + i);
    }
    a.downloaded = 0x0102030405060708ULL;
    a.left = 0x1112131415161718ULL;
    a.uploaded = 0x2122232425262728ULL;
    a.event = LGWORK_EVENT_STARTED;
    a.peer.key = 0xcafef00d;
    a.numwant = 30;
    a.peer.port = 6881;
    uint8_t want[98] = {
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* connection id */
        0x00, 0x00, 0x00, 0x01,                         /* action announce */
        0xde, 0xad, 0xbe, 0xef,                         /* transaction id */
    };
    for (int i = 0; i < 20; i++) {
        want[16 + i] = (uint8_t)(0xa0 + i);
        want[36 + i] = (uint8_t)(0x10 + i);
    }
    static const uint8_t tail[42] = {
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, /* downloaded */
        0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, /* left */
        0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, /* uploaded */
        0x00, 0x00, 0x00, 0x02,                         /* event started */
        0x00, 0x00, 0x00, 0x00,                         /* ip: source address */
        0xca, 0xfe, 0xf0, 0x0d,                         /* key */
        0x00, 0x00, 0x00, 0x1e,                         /* numwant 30 */
        0x1a, 0xe1,                                     /* port 6881 */
    };
    memcpy(want + 56, tail, sizeof(tail));
    uint8_t buf[128];
    assert_int_equal(lgudp_announce(buf, sizeof(buf), 0x0102030405060708ULL, TID, &a), 98);
    assert_memory_equal(buf, want, 98);
}

static void udp_scrape_request_is_byte_exact(void **state)
{
    (void)state;
    lgwork_scrape_t s;
    s.n = 2;
    memset(s.hashes[0], 0x11, 20);
    memset(s.hashes[1], 0x22, 20);
    uint8_t want[56] = {0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef};
    memset(want + 16, 0x11, 20);
    memset(want + 36, 0x22, 20);
    uint8_t buf[64];
    assert_int_equal(lgudp_scrape(buf, sizeof(buf), 9, TID, &s), 56);
    assert_memory_equal(buf, want, 56);
}

static void udp_request_refuses_small_buffer(void **state)
{
    (void)state;
    uint8_t buf[15];
    assert_int_equal(lgudp_connect(buf, sizeof(buf), TID), 0);
}

/* ---- BEP 15 replies ---- */

static void udp_connect_reply_accepted(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0,    0,    0,    0,    0xde, 0xad, 0xbe, 0xef,
                                  0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};
    lgudp_expect_t e = expect(LGUDP_ACTION_CONNECT);
    lgudp_reply_t r;
    assert_int_equal(lgudp_check(pkt, sizeof(pkt), &e, &r), LGUDP_OK);
    assert_true(r.connection_id == 0x0011223344556677ULL);
}

static void udp_announce_reply_accepted(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0,    0, 0,    1,    0xde, 0xad, 0xbe, 0xef, 0,    0,   0x07,
                                  0x08, 0, 0,    0,    1,    0,    0,    0,    2,    127, 0,
                                  0,    1, 0x1a, 0xe1, 127,  0,    0,    2,    0x1a, 0xe2};
    lgudp_expect_t e = expect(LGUDP_ACTION_ANNOUNCE);
    lgudp_reply_t r;
    assert_int_equal(lgudp_check(pkt, sizeof(pkt), &e, &r), LGUDP_OK);
    assert_int_equal(r.interval, 1800);
    assert_int_equal(r.leechers, 1);
    assert_int_equal(r.seeders, 2);
    assert_int_equal(r.n_peers, 2);
}

static void udp_announce_reply_ipv6_accepted(void **state)
{
    (void)state;
    uint8_t pkt[20 + 18] = {0,    0,    0, 1, 0xde, 0xad, 0xbe, 0xef, 0, 0,
                            0x07, 0x08, 0, 0, 0,    0,    0,    0,    0, 1};
    pkt[20 + 15] = 1;
    pkt[20 + 17] = 80;
    lgudp_expect_t e = expect(LGUDP_ACTION_ANNOUNCE);
    e.ipv6 = true;
    lgudp_reply_t r;
    assert_int_equal(lgudp_check(pkt, sizeof(pkt), &e, &r), LGUDP_OK);
    assert_int_equal(r.n_peers, 1);
}

static void udp_scrape_reply_accepted(void **state)
{
    (void)state;
    uint8_t pkt[8 + 24] = {0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef};
    pkt[11] = 5; /* seeders of the first torrent */
    assert_int_equal(check(pkt, sizeof(pkt), expect(LGUDP_ACTION_SCRAPE)), LGUDP_OK);
}

static void udp_error_reply_reported_with_message(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef, 'b', 'a', 'd'};
    lgudp_expect_t e = expect(LGUDP_ACTION_ANNOUNCE);
    lgudp_reply_t r;
    assert_int_equal(lgudp_check(pkt, sizeof(pkt), &e, &r), LGUDP_ERROR_REPLY);
    assert_int_equal(r.message_len, 3);
    assert_memory_equal(r.message, "bad", 3);
}

static void udp_truncated_reply_flagged(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3};
    assert_int_equal(check(pkt, 7, expect(LGUDP_ACTION_CONNECT)), LGUDP_TRUNCATED);
    assert_int_equal(check(pkt, sizeof(pkt), expect(LGUDP_ACTION_CONNECT)), LGUDP_TRUNCATED);
}

static void udp_truncated_announce_header_flagged(void **state)
{
    (void)state;
    static const uint8_t pkt[19] = {0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef};
    assert_int_equal(check(pkt, sizeof(pkt), expect(LGUDP_ACTION_ANNOUNCE)), LGUDP_TRUNCATED);
}

static void udp_wrong_action_flagged(void **state)
{
    (void)state;
    uint8_t pkt[8 + 24] = {0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef};
    assert_int_equal(check(pkt, sizeof(pkt), expect(LGUDP_ACTION_ANNOUNCE)), LGUDP_BAD_ACTION);
    pkt[3] = 7;
    assert_int_equal(check(pkt, sizeof(pkt), expect(LGUDP_ACTION_SCRAPE)), LGUDP_BAD_ACTION);
}

static void udp_wrong_tid_flagged(void **state)
{
    (void)state;
    static const uint8_t pkt[] = {0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xee, 0, 0, 0, 0, 0, 0, 0, 1};
    assert_int_equal(check(pkt, sizeof(pkt), expect(LGUDP_ACTION_CONNECT)), LGUDP_BAD_TID);
}

static void udp_odd_peer_block_flagged(void **state)
{
    (void)state;
    uint8_t pkt[20 + 7] = {0,    0,    0, 1, 0xde, 0xad, 0xbe, 0xef, 0, 0,
                           0x07, 0x08, 0, 0, 0,    0,    0,    0,    0, 9};
    assert_int_equal(check(pkt, sizeof(pkt), expect(LGUDP_ACTION_ANNOUNCE)), LGUDP_BAD_PEERS);
}

static void udp_ipv4_peers_over_ipv6_flagged(void **state)
{
    (void)state;
    uint8_t pkt[20 + 12] = {0,    0,    0, 1, 0xde, 0xad, 0xbe, 0xef, 0, 0,
                            0x07, 0x08, 0, 0, 0,    0,    0,    0,    0, 9};
    lgudp_expect_t e = expect(LGUDP_ACTION_ANNOUNCE);
    e.ipv6 = true;
    assert_int_equal(check(pkt, sizeof(pkt), e), LGUDP_BAD_PEERS);
}

static void udp_wrong_scrape_length_flagged(void **state)
{
    (void)state;
    uint8_t pkt[8 + 36] = {0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef};
    /* The request asked for 2 hashes: 3 entries, 1 entry, or a partial entry are all wrong. */
    assert_int_equal(check(pkt, 8 + 36, expect(LGUDP_ACTION_SCRAPE)), LGUDP_BAD_LENGTH);
    assert_int_equal(check(pkt, 8 + 12, expect(LGUDP_ACTION_SCRAPE)), LGUDP_TRUNCATED);
    assert_int_equal(check(pkt, 8 + 25, expect(LGUDP_ACTION_SCRAPE)), LGUDP_BAD_LENGTH);
}

static void udp_long_connect_reply_flagged(void **state)
{
    (void)state;
    static const uint8_t pkt[17] = {0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef};
    assert_int_equal(check(pkt, sizeof(pkt), expect(LGUDP_ACTION_CONNECT)), LGUDP_BAD_LENGTH);
}

static void udp_more_peers_than_numwant_implausible(void **state)
{
    (void)state;
    uint8_t pkt[20 + 6 * 3] = {0,    0,    0, 1, 0xde, 0xad, 0xbe, 0xef, 0, 0,
                               0x07, 0x08, 0, 0, 0,    0,    0,    0,    0, 50};
    lgudp_expect_t e = expect(LGUDP_ACTION_ANNOUNCE);
    e.numwant = 2;
    assert_int_equal(check(pkt, sizeof(pkt), e), LGUDP_IMPLAUSIBLE);
}

static void udp_more_peers_than_swarm_implausible(void **state)
{
    (void)state;
    uint8_t pkt[20 + 6 * 3] = {0,    0,    0, 1, 0xde, 0xad, 0xbe, 0xef, 0, 0,
                               0x07, 0x08, 0, 0, 0,    1,    0,    0,    0, 1};
    assert_int_equal(check(pkt, sizeof(pkt), expect(LGUDP_ACTION_ANNOUNCE)), LGUDP_IMPLAUSIBLE);
}

static void udp_zero_interval_implausible(void **state)
{
    (void)state;
    uint8_t pkt[20] = {0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef};
    assert_int_equal(check(pkt, sizeof(pkt), expect(LGUDP_ACTION_ANNOUNCE)), LGUDP_IMPLAUSIBLE);
}

static void udp_negative_scrape_count_implausible(void **state)
{
    (void)state;
    uint8_t pkt[8 + 24] = {0, 0, 0, 2, 0xde, 0xad, 0xbe, 0xef};
    pkt[8 + 12 + 4] = 0xff; /* second torrent's "completed" as int32 is negative */
    assert_int_equal(check(pkt, sizeof(pkt), expect(LGUDP_ACTION_SCRAPE)), LGUDP_IMPLAUSIBLE);
}

static void udp_peek_tid_needs_eight_bytes(void **state)
{
    (void)state;
    static const uint8_t pkt[8] = {0, 0, 0, 1, 1, 2, 3, 4};
    uint32_t tid = 0;
    assert_false(lgudp_peek_tid(pkt, 7, &tid));
    assert_true(lgudp_peek_tid(pkt, 8, &tid));
    assert_int_equal(tid, 0x01020304);
}

static void udp_connid_error_detected(void **state)
{
    (void)state;
    static const char a[] = "Connection ID mismatch";
    static const char b[] = "invalid torrent";
    assert_true(lgudp_is_connid_error((const uint8_t *)a, sizeof(a) - 1));
    assert_false(lgudp_is_connid_error((const uint8_t *)b, sizeof(b) - 1));
}

/* ---- HTTP framing ---- */

static void http_frame_complete(void **state)
{
    (void)state;
    static const char r[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                            "Content-Length: 5\r\n\r\nhello";
    lghttp_response_t out;
    assert_int_equal(FRAME(r, false, &out), LGHTTP_COMPLETE);
    assert_int_equal(out.status, 200);
    assert_int_equal(out.body_len, 5);
    assert_memory_equal(r + out.body_off, "hello", 5);
    assert_int_equal(out.total_len, sizeof(r) - 1);
    assert_false(out.conn_close);
}

static void http_frame_needs_more_for_partial_body(void **state)
{
    (void)state;
    static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel";
    lghttp_response_t out;
    assert_int_equal(FRAME(r, false, &out), LGHTTP_NEED_MORE);
}

static void http_frame_truncated_at_eof(void **state)
{
    (void)state;
    static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel";
    lghttp_response_t out;
    assert_int_equal(FRAME(r, true, &out), LGHTTP_TRUNCATED);
}

static void http_frame_bad_content_length(void **state)
{
    (void)state;
    lghttp_response_t out;
    assert_int_equal(FRAME("HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello", false, &out),
                     LGHTTP_BAD_LENGTH);
    assert_int_equal(FRAME("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, &out),
                     LGHTTP_BAD_LENGTH);
}

static void http_frame_missing_content_length(void **state)
{
    (void)state;
    lghttp_response_t out;
    assert_int_equal(FRAME("HTTP/1.1 200 OK\r\nServer: x\r\n\r\nhello", true, &out),
                     LGHTTP_BAD_LENGTH);
}

static void http_frame_conflicting_content_lengths(void **state)
{
    (void)state;
    lghttp_response_t out;
    assert_int_equal(
        FRAME("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", false,
              &out),
        LGHTTP_BAD_LENGTH);
}

static void http_frame_bad_status_line(void **state)
{
    (void)state;
    lghttp_response_t out;
    assert_int_equal(FRAME("HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", false, &out),
                     LGHTTP_BAD_STATUS);
    assert_int_equal(FRAME("d8:intervali1800e", false, &out), LGHTTP_BAD_STATUS);
    assert_int_equal(FRAME("HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", false, &out),
                     LGHTTP_BAD_STATUS);
}

static void http_frame_header_without_colon(void **state)
{
    (void)state;
    lghttp_response_t out;
    assert_int_equal(FRAME("HTTP/1.1 200 OK\r\nBroken\r\nContent-Length: 0\r\n\r\n", false, &out),
                     LGHTTP_BAD_HEADER);
}

static void http_frame_pipelined_replies_split(void **state)
{
    (void)state;
    static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab"
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 1\r\n\r\nc";
    lghttp_response_t a, b;
    assert_int_equal(FRAME(r, false, &a), LGHTTP_COMPLETE);
    assert_int_equal(
        lghttp_frame((const uint8_t *)r + a.total_len, sizeof(r) - 1 - a.total_len, false, &b),
        LGHTTP_COMPLETE);
    assert_int_equal(b.status, 404);
    assert_int_equal(a.total_len + b.total_len, sizeof(r) - 1);
}

static void http_frame_close_detected(void **state)
{
    (void)state;
    lghttp_response_t out;
    assert_int_equal(FRAME("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, &out),
                     LGHTTP_COMPLETE);
    assert_true(out.conn_close);
    assert_int_equal(
        FRAME("HTTP/1.1 200 OK\r\nconnection: Close\r\nContent-Length: 0\r\n\r\n", false, &out),
        LGHTTP_COMPLETE);
    assert_true(out.conn_close);
}

/* ---- bencode ---- */

static void benc_compact_announce_accepted(void **state)
{
    (void)state;
    static const char b[] = "d8:completei2e10:incompletei1e8:intervali1800e"
                            "12:min intervali900e5:peers12:\x7f\0\0\x01\x1a\xe1\x7f\0\0\x02\x1a\xe2"
                            "e";
    lgbenc_info_t info;
    assert_int_equal(lgbenc_check_announce(BODY(b), 30, &info), LGBENC_OK);
    assert_int_equal(info.interval, 1800);
    assert_int_equal(info.complete, 2);
    assert_int_equal(info.incomplete, 1);
    assert_int_equal(info.n_peers, 2);
}

static void benc_dict_peers_announce_accepted(void **state)
{
    (void)state;
    static const char b[] = "d8:intervali60e5:peersld2:ip9:127.0.0.14:porti6881eeee";
    lgbenc_info_t info;
    assert_int_equal(lgbenc_check_announce(BODY(b), 30, &info), LGBENC_OK);
    assert_int_equal(info.n_peers, 1);
}

static void benc_peers6_counted(void **state)
{
    (void)state;
    char b[128];
    int n = snprintf(b, sizeof(b), "d8:intervali60e5:peers0:6:peers618:");
    memset(b + n, 1, 18);
    memcpy(b + n + 18, "e", 1);
    lgbenc_info_t info;
    assert_int_equal(lgbenc_check_announce((const uint8_t *)b, (size_t)n + 19, 30, &info),
                     LGBENC_OK);
    assert_int_equal(info.n_peers6, 1);
}

static void benc_failure_reason_reported(void **state)
{
    (void)state;
    static const char b[] = "d14:failure reason17:torrent not founde";
    lgbenc_info_t info;
    assert_int_equal(lgbenc_check_announce(BODY(b), 30, &info), LGBENC_FAILURE);
    assert_int_equal(info.failure_len, 17);
    assert_memory_equal(info.failure, "torrent not found", 17);
}

static void benc_malformed_rejected(void **state)
{
    (void)state;
    assert_int_equal(ANNOUNCE("d8:intervali1800e5:peers0:"), LGBENC_MALFORMED);  /* no end */
    assert_int_equal(ANNOUNCE("d8:intervali01e5:peers0:e"), LGBENC_MALFORMED);   /* 01 */
    assert_int_equal(ANNOUNCE("d8:intervali-0e5:peers0:e"), LGBENC_MALFORMED);   /* -0 */
    assert_int_equal(ANNOUNCE("d8:intervali1e5:peers9:abce"), LGBENC_MALFORMED); /* long */
    assert_int_equal(ANNOUNCE("d8:intervalie5:peers0:e"), LGBENC_MALFORMED);     /* empty */
    assert_int_equal(ANNOUNCE("d8:intervali1e5:peers05:abcdee"), LGBENC_MALFORMED);
    assert_int_equal(ANNOUNCE("x"), LGBENC_MALFORMED);
    assert_int_equal(ANNOUNCE(""), LGBENC_MALFORMED);
}

static void benc_unsorted_keys_rejected(void **state)
{
    (void)state;
    assert_int_equal(ANNOUNCE("d5:peers0:8:intervali1800ee"), LGBENC_UNSORTED);
    assert_int_equal(ANNOUNCE("d8:intervali1e8:intervali1e5:peers0:e"), LGBENC_UNSORTED);
}

static void benc_trailing_bytes_rejected(void **state)
{
    (void)state;
    assert_int_equal(ANNOUNCE("d8:intervali1800e5:peers0:ee"), LGBENC_TRAILING);
}

static void benc_not_a_dict_rejected(void **state)
{
    (void)state;
    assert_int_equal(ANNOUNCE("li1ee"), LGBENC_NOT_DICT);
}

static void benc_too_deep_rejected(void **state)
{
    (void)state;
    char b[256];
    size_t n = 0;
    n += (size_t)snprintf(b, sizeof(b), "d1:x");
    for (int i = 0; i < 100; i++)
        b[n++] = 'l';
    for (int i = 0; i < 100; i++)
        b[n++] = 'e';
    b[n++] = 'e';
    assert_int_equal(announce_body(b, n), LGBENC_TOO_DEEP);
}

static void benc_missing_keys_rejected(void **state)
{
    (void)state;
    assert_int_equal(ANNOUNCE("d8:intervali1800ee"), LGBENC_MISSING_KEY);
    assert_int_equal(ANNOUNCE("d5:peers0:e"), LGBENC_MISSING_KEY);
}

static void benc_wrong_type_rejected(void **state)
{
    (void)state;
    assert_int_equal(ANNOUNCE("d8:interval4:18005:peers0:e"), LGBENC_BAD_TYPE);
}

static void benc_odd_compact_peers_rejected(void **state)
{
    (void)state;
    assert_int_equal(ANNOUNCE("d8:intervali1800e5:peers7:abcdefge"), LGBENC_BAD_PEERS);
}

static void benc_peer_dict_without_port_rejected(void **state)
{
    (void)state;
    assert_int_equal(ANNOUNCE("d8:intervali60e5:peersld2:ip9:127.0.0.1eee"), LGBENC_BAD_PEERS);
}

static void benc_too_many_peers_implausible(void **state)
{
    (void)state;
    static const char b[] = "d8:intervali1800e5:peers12:abcdefghijkle";
    lgbenc_info_t info;
    assert_int_equal(lgbenc_check_announce(BODY(b), 1, &info), LGBENC_IMPLAUSIBLE);
}

static void benc_more_peers_than_swarm_implausible(void **state)
{
    (void)state;
    assert_int_equal(
        ANNOUNCE("d8:completei0e10:incompletei1e8:intervali60e5:peers12:abcdefghijkle"),
        LGBENC_IMPLAUSIBLE);
}

static void benc_scrape_accepted(void **state)
{
    (void)state;
    static const char b[] = "d5:filesd20:aaaaaaaaaaaaaaaaaaaa"
                            "d8:completei1e10:downloadedi0e10:incompletei2eeee";
    lgbenc_info_t info;
    assert_int_equal(lgbenc_check_scrape(BODY(b), 2, &info), LGBENC_OK);
    assert_int_equal(info.n_files, 1);
    assert_false(info.files_unsorted);
}

static void benc_empty_scrape_accepted(void **state)
{
    (void)state;
    lgbenc_info_t info;
    assert_int_equal(lgbenc_check_scrape(BODY("d5:filesdee"), 2, &info), LGBENC_OK);
}

static void benc_scrape_without_files_rejected(void **state)
{
    (void)state;
    lgbenc_info_t info;
    assert_int_equal(lgbenc_check_scrape(BODY("d5:flagsdee"), 2, &info), LGBENC_MISSING_KEY);
}

static void benc_scrape_entry_without_counts_rejected(void **state)
{
    (void)state;
    static const char b[] = "d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei1eeee";
    lgbenc_info_t info;
    assert_int_equal(lgbenc_check_scrape(BODY(b), 2, &info), LGBENC_MISSING_KEY);
}

static void benc_scrape_more_files_than_asked_implausible(void **state)
{
    (void)state;
    static const char b[] = "d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei1e10:incompletei2ee"
                            "20:bbbbbbbbbbbbbbbbbbbbd8:completei1e10:incompletei2eeee";
    lgbenc_info_t info;
    assert_int_equal(lgbenc_check_scrape(BODY(b), 2, &info), LGBENC_OK);
    assert_int_equal(lgbenc_check_scrape(BODY(b), 1, &info), LGBENC_IMPLAUSIBLE);
}

static void benc_scrape_files_in_request_order_tolerated(void **state)
{
    (void)state;
    static const char b[] = "d5:filesd20:bbbbbbbbbbbbbbbbbbbbd8:completei1e10:incompletei2ee"
                            "20:aaaaaaaaaaaaaaaaaaaad8:completei1e10:incompletei2eeee";
    lgbenc_info_t info;
    assert_int_equal(lgbenc_check_scrape(BODY(b), 2, &info), LGBENC_OK);
    assert_true(info.files_unsorted);
}

static void benc_scrape_repeated_file_rejected(void **state)
{
    (void)state;
    static const char b[] = "d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei1e10:incompletei2ee"
                            "20:aaaaaaaaaaaaaaaaaaaad8:completei1e10:incompletei2eeee";
    lgbenc_info_t info;
    assert_int_equal(lgbenc_check_scrape(BODY(b), 2, &info), LGBENC_UNSORTED);
}

static void benc_scrape_short_key_then_file_rejected(void **state)
{
    (void)state;
    /* Found by fuzz_loadgen: a key of the wrong length, then a good one, read a stale pointer. */
    static const char b[] = "d5:filesd3:abcd8:completei1e10:incompletei2ee"
                            "20:aaaaaaaaaaaaaaaaaaaad8:completei1e10:incompletei2eeee";
    lgbenc_info_t info;
    assert_int_equal(lgbenc_check_scrape(BODY(b), 2, &info), LGBENC_BAD_TYPE);
    assert_int_equal(info.n_files, 2);
}

static void benc_value_reports_its_end(void **state)
{
    (void)state;
    size_t end = 0;
    assert_int_equal(lgbenc_value(BODY("li1e3:abce!!"), &end), LGBENC_OK);
    assert_int_equal(end, 10);
}

/* ---- HTTP requests ---- */

static void http_announce_request_is_exact(void **state)
{
    (void)state;
    lgwork_announce_t a;
    memset(&a, 0, sizeof(a));
    memset(a.info_hash, 'A', 20);
    a.info_hash[0] = 0x00;
    a.info_hash[19] = 0xff;
    memcpy(a.peer.peer_id, "-SL0100-abcdefghij~.", 20);
    a.peer.port = 6881;
    a.uploaded = 1;
    a.downloaded = 2;
    a.left = 0;
    a.event = LGWORK_EVENT_COMPLETED;
    a.peer.key = 0xab;
    a.numwant = 30;
    static const char want[] =
        "GET /announce?info_hash=%00AAAAAAAAAAAAAAAAAA%FF&peer_id=-SL0100-abcdefghij~."
        "&port=6881&uploaded=1&downloaded=2&left=0&event=completed&key=000000AB&numwant=30"
        "&compact=1 HTTP/1.1\r\nHost: 127.0.0.1:6969\r\n\r\n";
    char buf[LGHTTP_MAX_REQUEST];
    size_t n = lghttp_announce(buf, sizeof(buf), &a, "127.0.0.1:6969", false);
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(buf, want, n);
}

static void http_scrape_request_is_exact(void **state)
{
    (void)state;
    lgwork_scrape_t s;
    s.n = 2;
    memset(s.hashes[0], 'x', 20);
    memset(s.hashes[1], ' ', 20);
    char want[512];
    int w = snprintf(want, sizeof(want),
                     "GET /scrape?info_hash=xxxxxxxxxxxxxxxxxxxx&info_hash=%s HTTP/1.1\r\n"
                     "Host: [::1]:80\r\nConnection: close\r\n\r\n",
                     "%20%20%20%20%20%20%20%20%20%20%20%20%20%20%20%20%20%20%20%20");
    char buf[LGHTTP_MAX_REQUEST];
    size_t n = lghttp_scrape(buf, sizeof(buf), &s, "[::1]:80", true);
    assert_int_equal(n, (size_t)w);
    assert_memory_equal(buf, want, n);
}

static void http_request_refuses_small_buffer(void **state)
{
    (void)state;
    lgwork_scrape_t s = {.n = 1};
    char buf[20];
    assert_int_equal(lghttp_scrape(buf, sizeof(buf), &s, "127.0.0.1:1", false), 0);
}

/* ---- workload ---- */

static void pareto_stays_in_range(void **state)
{
    (void)state;
    lgwork_t wl = make_wl(default_cfg());
    lgwork_rng_t rng;
    lgwork_rng_seed(&rng, 7);
    for (int i = 0; i < 200000; i++)
        assert_true(lgwork_pick_torrent(&wl, &rng) < wl.cfg.torrents);
    assert_int_equal(lgwork_torrent_at(&wl, 0.0), 0);
    assert_true(lgwork_torrent_at(&wl, 0.9999999999) < wl.cfg.torrents);
    assert_true(lgwork_torrent_at(&wl, 1.0) < wl.cfg.torrents);
    assert_true(lgwork_torrent_at(&wl, -1.0) < wl.cfg.torrents);
    assert_true(lgwork_torrent_at(&wl, NAN) < wl.cfg.torrents);
}

static double top_share(double shape, uint32_t torrents, uint32_t top)
{
    lgwork_config_t c = default_cfg();
    c.pareto_shape = shape;
    c.torrents = torrents;
    lgwork_t wl = make_wl(c);
    lgwork_rng_t rng;
    lgwork_rng_seed(&rng, 11);
    unsigned hot = 0, n = 200000;
    for (unsigned i = 0; i < n; i++)
        hot += lgwork_pick_torrent(&wl, &rng) < top;
    return (double)hot / n;
}

static void pareto_hottest_percent_gets_most_picks(void **state)
{
    (void)state;
    /* Uniform would give the hottest 1 % of torrents 1 % of picks; the default gives ~60 %. */
    double share = top_share(0.5, 10000, 100);
    assert_true(share > 0.40);
    assert_true(share < 0.90); /* and still a long tail */
}

static void pareto_larger_shape_is_more_skewed(void **state)
{
    (void)state;
    assert_true(top_share(1.0, 10000, 100) > top_share(0.5, 10000, 100) + 0.1);
}

static void pareto_single_torrent_always_zero(void **state)
{
    (void)state;
    lgwork_config_t c = default_cfg();
    c.torrents = 1;
    lgwork_t wl = make_wl(c);
    lgwork_rng_t rng;
    lgwork_rng_seed(&rng, 3);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(lgwork_pick_torrent(&wl, &rng), 0);
}

static void info_hash_is_stable_for_a_seed(void **state)
{
    (void)state;
    /* Pinned: whitelists made with --print-hashes must keep matching later runs. */
    static const uint8_t want[20] = {0xe1, 0x66, 0x22, 0xe1, 0xf5, 0x20, 0xf8, 0x80, 0x33, 0x56,
                                     0x7e, 0x6b, 0x32, 0x01, 0x82, 0x9c, 0x06, 0x97, 0xb1, 0xf1};
    lgwork_config_t c = default_cfg();
    lgwork_t wl = make_wl(c);
    uint8_t h[20], h2[20];
    lgwork_info_hash(&wl, 0, h);
    assert_memory_equal(h, want, 20);
    c.seed = 2;
    lgwork_t wl2 = make_wl(c);
    lgwork_info_hash(&wl2, 0, h2);
    assert_memory_not_equal(h, h2, 20);
}

static void peers_have_valid_attributes(void **state)
{
    (void)state;
    lgwork_t wl = make_wl(default_cfg());
    unsigned seeders = 0, n = 20000;
    for (uint32_t p = 0; p < n; p++) {
        lgwork_peer_t peer;
        lgwork_peer(&wl, p, &peer);
        assert_true(peer.port >= 1024 && peer.port <= 65023);
        assert_true(peer.torrent < wl.cfg.torrents);
        assert_memory_equal(peer.peer_id, "-SL0100-", 8);
        assert_true(peer.seeder == (peer.left == 0));
        seeders += peer.seeder;
    }
    assert_true(fabs((double)seeders / n - 0.75) < 0.02);
}

static void peer_is_a_function_of_its_index(void **state)
{
    (void)state;
    lgwork_t wl = make_wl(default_cfg());
    lgwork_peer_t a, b, c;
    lgwork_peer(&wl, 42, &a);
    lgwork_peer(&wl, 42, &b);
    lgwork_peer(&wl, 43, &c);
    assert_memory_equal(a.peer_id, b.peer_id, 20);
    assert_int_equal(a.port, b.port);
    assert_int_equal(a.key, b.key);
    assert_int_equal(a.torrent, b.torrent);
    assert_int_equal(a.seeder, b.seeder);
    assert_int_equal(a.left, b.left);
    assert_memory_not_equal(a.peer_id, c.peer_id, 20);
}

static void pick_peer_stays_in_its_slice(void **state)
{
    (void)state;
    lgwork_config_t c = default_cfg();
    c.peers = 1003;
    lgwork_t wl = make_wl(c);
    lgwork_rng_t rng;
    lgwork_rng_seed(&rng, 5);
    for (int i = 0; i < 10000; i++) {
        uint32_t p = lgwork_pick_peer(&wl, &rng, 6, 7);
        assert_true(p < 1003);
        assert_int_equal(p % 7, 6);
    }
    c.peers = 3; /* fewer peers than sockets: still in range */
    wl = make_wl(c);
    for (int i = 0; i < 100; i++)
        assert_true(lgwork_pick_peer(&wl, &rng, 5, 8) < 3);
}

static void kinds_follow_weights(void **state)
{
    (void)state;
    lgwork_config_t c = default_cfg();
    lgwork_t wl = make_wl(c);
    lgwork_rng_t rng;
    lgwork_rng_seed(&rng, 9);
    unsigned n[3] = {0, 0, 0};
    for (int i = 0; i < 102000; i++)
        n[lgwork_pick_kind(&wl, &rng)]++;
    assert_true(n[LGWORK_CONNECT] > 700 && n[LGWORK_CONNECT] < 1300);
    assert_true(n[LGWORK_SCRAPE] > 700 && n[LGWORK_SCRAPE] < 1300);
    c.weight_connect = 0;
    c.weight_scrape = 0;
    wl = make_wl(c);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(lgwork_pick_kind(&wl, &rng), LGWORK_ANNOUNCE);
}

static void scrape_hashes_distinct_and_bounded(void **state)
{
    (void)state;
    lgwork_config_t c = default_cfg();
    c.torrents = 3;
    lgwork_t wl = make_wl(c);
    lgwork_rng_t rng;
    lgwork_rng_seed(&rng, 13);
    for (int i = 0; i < 1000; i++) {
        lgwork_scrape_t s;
        lgwork_make_scrape(&wl, &rng, &s);
        assert_true(s.n >= 1 && s.n <= 3);
        for (unsigned a = 0; a < s.n; a++)
            for (unsigned b = a + 1; b < s.n; b++)
                assert_memory_not_equal(s.hashes[a], s.hashes[b], 20);
    }
}

static void announce_events_are_plausible(void **state)
{
    (void)state;
    lgwork_t wl = make_wl(default_cfg());
    lgwork_rng_t rng;
    lgwork_rng_seed(&rng, 17);
    unsigned none = 0, n = 10000;
    for (unsigned i = 0; i < n; i++) {
        lgwork_announce_t a;
        lgwork_make_announce(&wl, &rng, lgwork_rng_below(&rng, wl.cfg.peers), &a);
        none += a.event == LGWORK_EVENT_NONE;
        if (a.event == LGWORK_EVENT_COMPLETED)
            assert_int_equal(a.left, 0);
        uint8_t h[20];
        lgwork_info_hash(&wl, a.peer.torrent, h);
        assert_memory_equal(a.info_hash, h, 20);
    }
    assert_true(none > n * 85 / 100); /* mostly no event */
}

static void init_rejects_bad_config(void **state)
{
    (void)state;
    lgwork_t wl;
    const char *why = NULL;
    lgwork_config_t c = default_cfg();
    c.numwant = 0;
    assert_int_equal(lgwork_init(&wl, &c, &why), -1);
    assert_non_null(why);
    c = default_cfg();
    c.pareto_shape = 0.0;
    assert_int_equal(lgwork_init(&wl, &c, NULL), -1);
    c = default_cfg();
    c.weight_connect = c.weight_announce = c.weight_scrape = 0;
    assert_int_equal(lgwork_init(&wl, &c, NULL), -1);
    c = default_cfg();
    c.scrape_max = LGWORK_SCRAPE_MAX + 1;
    assert_int_equal(lgwork_init(&wl, &c, NULL), -1);
    c = default_cfg();
    c.seeder_ratio = 1.5;
    assert_int_equal(lgwork_init(&wl, &c, NULL), -1);
}

/* ---- latency histogram ---- */

static void lat_bucket_bounds_contain_value(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < 100000; v += 7) {
        unsigned b = lglat_bucket(v);
        assert_true(lglat_bucket_low(b) <= v);
        assert_true(v < lglat_bucket_low(b + 1));
    }
    assert_true(lglat_bucket(UINT64_MAX) < LGLAT_BUCKETS);
}

static void lat_quantiles_within_bucket_error(void **state)
{
    (void)state;
    static lglat_t h;
    lglat_init(&h);
    for (uint64_t v = 1; v <= 100000; v++)
        lglat_record(&h, v * 1000); /* 1 us .. 100 ms */
    uint64_t p50 = lglat_quantile(&h, 0.5), p99 = lglat_quantile(&h, 0.99);
    assert_true(fabs((double)p50 / 50000000.0 - 1.0) < 0.02);
    assert_true(fabs((double)p99 / 99000000.0 - 1.0) < 0.02);
    assert_int_equal(lglat_quantile(&h, 1.0), 100000000);
    assert_int_equal(h.count, 100000);
}

static void lat_empty_quantile_is_zero(void **state)
{
    (void)state;
    static lglat_t h;
    lglat_init(&h);
    assert_int_equal(lglat_quantile(&h, 0.5), 0);
}

static void lat_merge_adds_counts(void **state)
{
    (void)state;
    static lglat_t a, b;
    lglat_init(&a);
    lglat_init(&b);
    lglat_record(&a, 10);
    lglat_record(&b, 1000000);
    lglat_record(&b, 5);
    lglat_merge(&a, &b);
    assert_int_equal(a.count, 3);
    assert_int_equal(a.min_ns, 5);
    assert_int_equal(a.max_ns, 1000000);
    assert_int_equal(a.sum_ns, 1000015);
}

/* ---- target ---- */

static void target_accepts_ipv4_loopback(void **state)
{
    (void)state;
    lgtarget_t t;
    assert_int_equal(lgtarget_parse("127.0.0.1:6969", &t), LGTARGET_OK);
    assert_int_equal(t.family, AF_INET);
    assert_int_equal(t.port, 6969);
    assert_string_equal(t.host_port, "127.0.0.1:6969");
    assert_int_equal(lgtarget_parse("127.200.3.4:1", &t), LGTARGET_OK);
}

static void target_accepts_ipv6_loopback(void **state)
{
    (void)state;
    lgtarget_t t;
    assert_int_equal(lgtarget_parse("[::1]:6969", &t), LGTARGET_OK);
    assert_int_equal(t.family, AF_INET6);
    assert_string_equal(t.host_port, "[::1]:6969");
    assert_int_equal(lgtarget_parse("[::ffff:127.0.0.1]:80", &t), LGTARGET_OK);
}

static void target_refuses_non_loopback(void **state)
{
    (void)state;
    static const char *const refused[] = {
        "10.0.0.1:80", "0.0.0.0:6969",     "128.0.0.1:1", "192.168.1.1:80",
        "[::]:6969",   "[2001:db8::1]:80", "[::2]:80",    "[::ffff:10.0.0.1]:80"};
    lgtarget_t t;
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_int_equal(lgtarget_parse(refused[i], &t), LGTARGET_NOT_LOOPBACK);
}

static void target_rejects_bad_syntax(void **state)
{
    (void)state;
    static const char *const bad[] = {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "localhost:80",
                                      "[::1]80",   "::1:80",      "127.0.0.1:80x",   "",
                                      "[::1]:"};
    lgtarget_t t;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(lgtarget_parse(bad[i], &t), LGTARGET_SYNTAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(udp_connect_request_is_byte_exact),
        cmocka_unit_test(udp_announce_request_is_byte_exact),
        cmocka_unit_test(udp_scrape_request_is_byte_exact),
        cmocka_unit_test(udp_request_refuses_small_buffer),
        cmocka_unit_test(udp_connect_reply_accepted),
        cmocka_unit_test(udp_announce_reply_accepted),
        cmocka_unit_test(udp_announce_reply_ipv6_accepted),
        cmocka_unit_test(udp_scrape_reply_accepted),
        cmocka_unit_test(udp_error_reply_reported_with_message),
        cmocka_unit_test(udp_truncated_reply_flagged),
        cmocka_unit_test(udp_truncated_announce_header_flagged),
        cmocka_unit_test(udp_wrong_action_flagged),
        cmocka_unit_test(udp_wrong_tid_flagged),
        cmocka_unit_test(udp_odd_peer_block_flagged),
        cmocka_unit_test(udp_ipv4_peers_over_ipv6_flagged),
        cmocka_unit_test(udp_wrong_scrape_length_flagged),
        cmocka_unit_test(udp_long_connect_reply_flagged),
        cmocka_unit_test(udp_more_peers_than_numwant_implausible),
        cmocka_unit_test(udp_more_peers_than_swarm_implausible),
        cmocka_unit_test(udp_zero_interval_implausible),
        cmocka_unit_test(udp_negative_scrape_count_implausible),
        cmocka_unit_test(udp_peek_tid_needs_eight_bytes),
        cmocka_unit_test(udp_connid_error_detected),
        cmocka_unit_test(http_frame_complete),
        cmocka_unit_test(http_frame_needs_more_for_partial_body),
        cmocka_unit_test(http_frame_truncated_at_eof),
        cmocka_unit_test(http_frame_bad_content_length),
        cmocka_unit_test(http_frame_missing_content_length),
        cmocka_unit_test(http_frame_conflicting_content_lengths),
        cmocka_unit_test(http_frame_bad_status_line),
        cmocka_unit_test(http_frame_header_without_colon),
        cmocka_unit_test(http_frame_pipelined_replies_split),
        cmocka_unit_test(http_frame_close_detected),
        cmocka_unit_test(benc_compact_announce_accepted),
        cmocka_unit_test(benc_dict_peers_announce_accepted),
        cmocka_unit_test(benc_peers6_counted),
        cmocka_unit_test(benc_failure_reason_reported),
        cmocka_unit_test(benc_malformed_rejected),
        cmocka_unit_test(benc_unsorted_keys_rejected),
        cmocka_unit_test(benc_trailing_bytes_rejected),
        cmocka_unit_test(benc_not_a_dict_rejected),
        cmocka_unit_test(benc_too_deep_rejected),
        cmocka_unit_test(benc_missing_keys_rejected),
        cmocka_unit_test(benc_wrong_type_rejected),
        cmocka_unit_test(benc_odd_compact_peers_rejected),
        cmocka_unit_test(benc_peer_dict_without_port_rejected),
        cmocka_unit_test(benc_too_many_peers_implausible),
        cmocka_unit_test(benc_more_peers_than_swarm_implausible),
        cmocka_unit_test(benc_scrape_accepted),
        cmocka_unit_test(benc_empty_scrape_accepted),
        cmocka_unit_test(benc_scrape_without_files_rejected),
        cmocka_unit_test(benc_scrape_entry_without_counts_rejected),
        cmocka_unit_test(benc_scrape_more_files_than_asked_implausible),
        cmocka_unit_test(benc_scrape_files_in_request_order_tolerated),
        cmocka_unit_test(benc_scrape_repeated_file_rejected),
        cmocka_unit_test(benc_scrape_short_key_then_file_rejected),
        cmocka_unit_test(benc_value_reports_its_end),
        cmocka_unit_test(http_announce_request_is_exact),
        cmocka_unit_test(http_scrape_request_is_exact),
        cmocka_unit_test(http_request_refuses_small_buffer),
        cmocka_unit_test(pareto_stays_in_range),
        cmocka_unit_test(pareto_hottest_percent_gets_most_picks),
        cmocka_unit_test(pareto_larger_shape_is_more_skewed),
        cmocka_unit_test(pareto_single_torrent_always_zero),
        cmocka_unit_test(info_hash_is_stable_for_a_seed),
        cmocka_unit_test(peers_have_valid_attributes),
        cmocka_unit_test(peer_is_a_function_of_its_index),
        cmocka_unit_test(pick_peer_stays_in_its_slice),
        cmocka_unit_test(kinds_follow_weights),
        cmocka_unit_test(scrape_hashes_distinct_and_bounded),
        cmocka_unit_test(announce_events_are_plausible),
        cmocka_unit_test(init_rejects_bad_config),
        cmocka_unit_test(lat_bucket_bounds_contain_value),
        cmocka_unit_test(lat_quantiles_within_bucket_error),
        cmocka_unit_test(lat_empty_quantile_is_zero),
        cmocka_unit_test(lat_merge_adds_counts),
        cmocka_unit_test(target_accepts_ipv4_loopback),
        cmocka_unit_test(target_accepts_ipv6_loopback),
        cmocka_unit_test(target_refuses_non_loopback),
        cmocka_unit_test(target_rejects_bad_syntax),
    };
    return cmocka_run_group_tests_name("loadgen", tests, NULL, NULL);
}
