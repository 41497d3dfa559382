/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/httpresp: byte-exact responses, sizing, and buffers too small. */
#include "httpresp.h"

#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define HEAD_KA(len)                                                                               \
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " len                          \
    "\r\nConnection: keep-alive\r\n\r\n"
#define HEAD_CLOSE(len)                                                                            \
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " len                          \
    "\r\nConnection: close\r\n\r\n"
#define COUNTS "d8:completei3e10:downloadedi7e10:incompletei2e8:intervali1800e12:min intervali900e"

/* Compare a written response with a literal (which may hold NUL bytes). */
#define assert_response(n, buf, lit)                                                               \
    do {                                                                                           \
        assert_int_equal((n), sizeof(lit) - 1);                                                    \
        assert_memory_equal((buf), (lit), sizeof(lit) - 1);                                        \
    } while (0)

/* 10.0.0.1:6881 and 192.168.1.2:80 */
static const uint8_t peers4[12] = {10, 0, 0, 1, 0x1a, 0xe1, 192, 168, 1, 2, 0, 80};
/* [2001:db8::1]:443 */
static const uint8_t peer6[18] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,    0,
                                  0,    0,    0,    0,    0, 0, 1, 0x01, 0xbb};

static httpresp_announce_t base_announce(void)
{
    httpresp_announce_t a = {
        .interval = 1800,
        .min_interval = 900,
        .stats = {.seeders = 3, .leechers = 2, .downloaded = 7},
        .family = 4,
        .compact = true,
        .keep_alive = true,
    };
    return a;
}

/* ---- announce ---- */

static void announce_compact_ipv4(void **state)
{
    (void)state;
    httpresp_announce_t a = base_announce();
    a.peers = peers4;
    a.n_peers = 2;
    char out[HTTPRESP_MAX];
    size_t n = httpresp_announce(out, sizeof(out), &a);
    assert_response(n, out,
                    HEAD_KA("115") COUNTS "5:peers12:\x0a\x00\x00\x01\x1a\xe1\xc0\xa8\x01\x02"
                                          "\x00\x50"
                                          "6:peers60:e");
}

static void announce_compact_ipv6(void **state)
{
    (void)state;
    httpresp_announce_t a = base_announce();
    a.peers = peer6;
    a.n_peers = 1;
    a.family = 6;
    a.keep_alive = false;
    char out[HTTPRESP_MAX];
    size_t n = httpresp_announce(out, sizeof(out), &a);
    assert_response(n, out,
                    HEAD_CLOSE("121") COUNTS "5:peers0:6:peers618:\x20\x01\x0d\xb8\0\0\0\0\0\0\0"
                                             "\0\0\0\0\x01\x01\xbb"
                                             "e");
}

static void announce_compact_no_peers(void **state)
{
    (void)state;
    httpresp_announce_t a = base_announce();
    char out[HTTPRESP_MAX];
    size_t n = httpresp_announce(out, sizeof(out), &a);
    assert_response(n, out, HEAD_KA("102") COUNTS "5:peers0:6:peers60:e");
}

static void announce_dictionary_ipv4(void **state)
{
    (void)state;
    httpresp_announce_t a = base_announce();
    a.peers = peers4;
    a.n_peers = 2;
    a.compact = false;
    char out[HTTPRESP_MAX];
    size_t n = httpresp_announce(out, sizeof(out), &a);
    assert_response(n, out,
                    HEAD_KA("150") COUNTS
                    "5:peersld2:ip8:10.0.0.14:porti6881eed2:ip11:192.168.1.24:porti80eeee");
}

static void announce_dictionary_ipv6_in_peers(void **state)
{
    (void)state;
    httpresp_announce_t a = base_announce();
    a.peers = peer6;
    a.n_peers = 1;
    a.family = 6;
    a.compact = false;
    char out[HTTPRESP_MAX];
    size_t n = httpresp_announce(out, sizeof(out), &a);
    assert_response(n, out, HEAD_KA("123") COUNTS "5:peersld2:ip11:2001:db8::14:porti443eeee");
}

static void announce_exact_cap_fits(void **state)
{
    (void)state;
    httpresp_announce_t a = base_announce();
    a.peers = peers4;
    a.n_peers = 2;
    char big[HTTPRESP_MAX];
    size_t need = httpresp_announce(big, sizeof(big), &a);
    assert_int_not_equal(need, 0);
    char out[HTTPRESP_MAX];
    assert_int_equal(httpresp_announce(out, need, &a), need);
    assert_memory_equal(out, big, need);
}

static void announce_cap_one_short_is_zero(void **state)
{
    (void)state;
    httpresp_announce_t a = base_announce();
    a.peers = peers4;
    a.n_peers = 2;
    char out[HTTPRESP_MAX];
    size_t need = httpresp_announce(out, sizeof(out), &a);
    memset(out, '#', sizeof(out));
    assert_int_equal(httpresp_announce(out, need - 1, &a), 0);
    for (size_t i = need - 1; i < sizeof(out); i++)
        assert_int_equal(out[i], '#');
}

static void announce_cap_too_small_for_head_is_zero(void **state)
{
    (void)state;
    httpresp_announce_t a = base_announce();
    char out[HTTPRESP_MAX];
    /* The 102-byte body fits, its head does not. */
    assert_int_equal(httpresp_announce(out, 110, &a), 0);
    assert_int_equal(httpresp_announce(out, 0, &a), 0);
}

static void announce_bad_family_is_zero(void **state)
{
    (void)state;
    httpresp_announce_t a = base_announce();
    a.peers = peers4;
    a.n_peers = 1;
    a.family = 5;
    char out[HTTPRESP_MAX];
    assert_int_equal(httpresp_announce(out, sizeof(out), &a), 0);
}

static void announce_worst_case_fits_max(void **state)
{
    (void)state;
    static uint8_t recs[SHOAL_NUMWANT_MAX * SHOAL_PEER6_LEN];
    memset(recs, 0xff, sizeof(recs)); /* longest text form, port 65535 */
    for (size_t i = 0; i < SHOAL_NUMWANT_MAX; i++)
        recs[i * SHOAL_PEER6_LEN] = 0xfe; /* not ::ffff:..., which prints shorter anyway */
    httpresp_announce_t a = base_announce();
    a.stats = (swarm_stats_t){UINT32_MAX, UINT32_MAX, UINT32_MAX};
    a.interval = UINT32_MAX;
    a.min_interval = UINT32_MAX;
    a.peers = recs;
    a.n_peers = SHOAL_NUMWANT_MAX;
    a.family = 6;
    a.compact = false;
    char out[HTTPRESP_MAX];
    assert_int_not_equal(httpresp_announce(out, sizeof(out), &a), 0);
    a.compact = true;
    assert_int_not_equal(httpresp_announce(out, sizeof(out), &a), 0);
}

/* ---- scrape ---- */

#define HA "AAAAAAAAAAAAAAAAAAAA"
#define HB "BBBBBBBBBBBBBBBBBBBB"

static void scrape_sorted_and_deduplicated(void **state)
{
    (void)state;
    uint8_t hashes[3][20];
    memcpy(hashes[0], HB, 20);
    memcpy(hashes[1], HA, 20);
    memcpy(hashes[2], HB, 20);
    const swarm_stats_t stats[3] = {{4, 6, 5}, {1, 3, 2}, {9, 9, 9}};
    char out[HTTPRESP_MAX];
    size_t n = httpresp_scrape(out, sizeof(out), (const uint8_t(*)[20])hashes, stats, 3, true);
    assert_response(n, out,
                    HEAD_KA("151") "d5:filesd20:" HA "d8:completei1e10:downloadedi2e10:incomplete"
                                   "i3ee20:" HB
                                   "d8:completei4e10:downloadedi5e10:incompletei6eeee");
}

static void scrape_empty(void **state)
{
    (void)state;
    char out[256];
    size_t n = httpresp_scrape(out, sizeof(out), NULL, NULL, 0, false);
    assert_response(n, out, HEAD_CLOSE("11") "d5:filesdee");
}

static void scrape_sort_is_by_bytes_unsigned(void **state)
{
    (void)state;
    uint8_t hashes[2][20];
    memset(hashes[0], 0x80, 20); /* sorts after 0x7f, as bytes compare unsigned */
    memset(hashes[1], 0x7f, 20);
    const swarm_stats_t stats[2] = {{0, 0, 0}, {0, 0, 0}};
    char out[HTTPRESP_MAX];
    size_t n = httpresp_scrape(out, sizeof(out), (const uint8_t(*)[20])hashes, stats, 2, true);
    assert_int_not_equal(n, 0);
    const char *body = memmem(out, n, "d5:filesd20:", 12);
    assert_non_null(body);
    assert_int_equal((uint8_t)body[12], 0x7f);
}

static void scrape_max_entries_fit_max(void **state)
{
    (void)state;
    static uint8_t hashes[SHOAL_SCRAPE_MAX][20];
    static swarm_stats_t stats[SHOAL_SCRAPE_MAX];
    for (size_t i = 0; i < SHOAL_SCRAPE_MAX; i++) {
        memset(hashes[i], 0, 20);
        hashes[i][0] = (uint8_t)(SHOAL_SCRAPE_MAX - 1 - i); /* reverse order: sort works */
        stats[i] = (swarm_stats_t){UINT32_MAX, UINT32_MAX, UINT32_MAX};
    }
    char out[HTTPRESP_MAX];
    size_t n = httpresp_scrape(out, sizeof(out), (const uint8_t(*)[20])hashes, stats,
                               SHOAL_SCRAPE_MAX, true);
    /* head 92 + "d5:filesd" "ee" 11 + 97 per entry: the worst case HTTPRESP_MAX is sized for */
    assert_int_equal(n, 92 + 11 + SHOAL_SCRAPE_MAX * 97);
    /* First entry is the smallest hash, i.e. the last one given. */
    const char *body = memmem(out, n, "d5:filesd20:", 12);
    assert_non_null(body);
    assert_int_equal(body[12], 0);
    assert_int_equal(body[13], 0);
}

static void scrape_too_many_is_zero(void **state)
{
    (void)state;
    static uint8_t hashes[SHOAL_SCRAPE_MAX + 1][20];
    static swarm_stats_t stats[SHOAL_SCRAPE_MAX + 1];
    char out[HTTPRESP_MAX];
    assert_int_equal(httpresp_scrape(out, sizeof(out), (const uint8_t(*)[20])hashes, stats,
                                     SHOAL_SCRAPE_MAX + 1, true),
                     0);
}

static void scrape_cap_too_small_is_zero(void **state)
{
    (void)state;
    uint8_t hashes[1][20];
    memcpy(hashes[0], HA, 20);
    const swarm_stats_t stats[1] = {{1, 1, 1}};
    char out[HTTPRESP_MAX];
    size_t need = httpresp_scrape(out, sizeof(out), (const uint8_t(*)[20])hashes, stats, 1, true);
    assert_int_not_equal(need, 0);
    assert_int_equal(httpresp_scrape(out, need, (const uint8_t(*)[20])hashes, stats, 1, true),
                     need);
    assert_int_equal(httpresp_scrape(out, need - 1, (const uint8_t(*)[20])hashes, stats, 1, true),
                     0);
}

/* ---- failure ---- */

static void failure_exact(void **state)
{
    (void)state;
    char out[256];
    size_t n = httpresp_failure(out, sizeof(out), "missing info_hash", 0, true);
    assert_response(n, out, HEAD_KA("39") "d14:failure reason17:missing info_hashe");
}

static void failure_with_retry_in(void **state)
{
    (void)state;
    char out[256];
    size_t n = httpresp_failure(out, sizeof(out), "missing info_hash", 30, false);
    assert_response(n, out,
                    HEAD_CLOSE("53") "d14:failure reason17:missing info_hash8:retry ini30ee");
}

static void failure_cap_too_small_is_zero(void **state)
{
    (void)state;
    char out[256];
    size_t need = httpresp_failure(out, sizeof(out), "x", 0, true);
    assert_int_equal(httpresp_failure(out, need, "x", 0, true), need);
    assert_int_equal(httpresp_failure(out, need - 1, "x", 0, true), 0);
}

/* ---- status ---- */

static void status_400_exact(void **state)
{
    (void)state;
    char out[256];
    size_t n = httpresp_status(out, sizeof(out), 400, "bad request\n", false);
    assert_response(n, out,
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12"
                    "\r\nConnection: close\r\n\r\nbad request\n");
}

static void status_405_has_allow(void **state)
{
    (void)state;
    char out[256];
    size_t n = httpresp_status(out, sizeof(out), 405, "", true);
    assert_response(n, out,
                    "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Type: text/plain\r\n"
                    "Content-Length: 0\r\nConnection: keep-alive\r\n\r\n");
}

static void status_lines(void **state)
{
    (void)state;
    static const struct {
        int code;
        const char *line;
    } cases[] = {
        {404, "HTTP/1.1 404 Not Found\r\n"},
        {431, "HTTP/1.1 431 Request Header Fields Too Large\r\n"},
        {500, "HTTP/1.1 500 Internal Server Error\r\n"},
        {503, "HTTP/1.1 503 Service Unavailable\r\n"},
        {505, "HTTP/1.1 505 HTTP Version Not Supported\r\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[256];
        size_t n = httpresp_status(out, sizeof(out), cases[i].code, "x", false);
        size_t ll = strlen(cases[i].line);
        assert_true(n > ll);
        assert_memory_equal(out, cases[i].line, ll);
        static const char hdrs[] = "Content-Type: text/plain\r\nContent-Length: 1\r\n";
        assert_memory_equal(out + ll, hdrs, sizeof(hdrs) - 1);
        assert_int_equal(out[n - 1], 'x');
    }
}

static void status_null_body_is_empty(void **state)
{
    (void)state;
    char out[256];
    size_t n = httpresp_status(out, sizeof(out), 503, NULL, false);
    assert_response(n, out,
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                    "Content-Length: 0\r\nConnection: close\r\n\r\n");
}

static void status_unknown_code_is_zero(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(httpresp_status(out, sizeof(out), 418, "teapot", true), 0);
}

static void status_cap_too_small_is_zero(void **state)
{
    (void)state;
    char out[256];
    memset(out, '#', sizeof(out));
    size_t need = httpresp_status(out, sizeof(out), 500, "oops", true);
    assert_int_not_equal(need, 0);
    assert_int_equal(httpresp_status(out, need, 500, "oops", true), need);
    memset(out, '#', sizeof(out));
    assert_int_equal(httpresp_status(out, need - 1, 500, "oops", true), 0);
    assert_int_equal(out[0], '#');
    assert_int_equal(httpresp_status(out, 3, 500, "oops", true), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(announce_compact_ipv4),
        cmocka_unit_test(announce_compact_ipv6),
        cmocka_unit_test(announce_compact_no_peers),
        cmocka_unit_test(announce_dictionary_ipv4),
        cmocka_unit_test(announce_dictionary_ipv6_in_peers),
        cmocka_unit_test(announce_exact_cap_fits),
        cmocka_unit_test(announce_cap_one_short_is_zero),
        cmocka_unit_test(announce_cap_too_small_for_head_is_zero),
        cmocka_unit_test(announce_bad_family_is_zero),
        cmocka_unit_test(announce_worst_case_fits_max),
        cmocka_unit_test(scrape_sorted_and_deduplicated),
        cmocka_unit_test(scrape_empty),
        cmocka_unit_test(scrape_sort_is_by_bytes_unsigned),
        cmocka_unit_test(scrape_max_entries_fit_max),
        cmocka_unit_test(scrape_too_many_is_zero),
        cmocka_unit_test(scrape_cap_too_small_is_zero),
        cmocka_unit_test(failure_exact),
        cmocka_unit_test(failure_with_retry_in),
        cmocka_unit_test(failure_cap_too_small_is_zero),
        cmocka_unit_test(status_400_exact),
        cmocka_unit_test(status_405_has_allow),
        cmocka_unit_test(status_lines),
        cmocka_unit_test(status_null_body_is_empty),
        cmocka_unit_test(status_unknown_code_is_zero),
        cmocka_unit_test(status_cap_too_small_is_zero),
    };
    return cmocka_run_group_tests_name("httpresp", tests, NULL, NULL);
}
