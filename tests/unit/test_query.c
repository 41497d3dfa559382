/* SPDX-License-Identifier: MIT */
/* Unit tests for proto/query: announce and scrape query strings, every error class. */
#include "query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* 20 bytes, percent-encoded, mixing upper- and lower-case hex digits. */
#define IH    "%12%34%56%78%9a%bc%de%f1%23%45%67%89%AB%CD%EF%12%34%56%78%9A"
#define IH_19 "%12%34%56%78%9a%bc%de%f1%23%45%67%89%AB%CD%EF%12%34%56%78"
#define IH_21 IH "%00"
#define PID   "-qB4500-abcdefghijkl" /* 20 plain bytes */

static const uint8_t ih_bytes[20] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf1, 0x23, 0x45,
                                     0x67, 0x89, 0xab, 0xcd, 0xef, 0x12, 0x34, 0x56, 0x78, 0x9a};

/* The required parameters, valid. */
#define BASE "info_hash=" IH "&peer_id=" PID "&port=6881&left=0"

static query_err_t announce(const char *q, query_announce_t *out)
{
    return query_parse_announce(q, strlen(q), out);
}

static query_err_t announce_err(const char *q)
{
    query_announce_t out;
    return announce(q, &out);
}

/* ---- announce: decoding ---- */

static void announce_decodes_every_field(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(announce("info_hash=" IH "&peer_id=" PID "&port=6881&uploaded=5"
                              "&downloaded=7&left=1000&event=started&numwant=30&compact=0"
                              "&no_peer_id=1&key=abcd&ip=1.2.3.4",
                              &out),
                     QUERY_OK);
    assert_memory_equal(out.announce.info_hash, ih_bytes, 20);
    assert_memory_equal(out.announce.peer_id, PID, 20);
    assert_int_equal(out.announce.peer.port, 6881);
    assert_int_equal(out.announce.uploaded, 5);
    assert_int_equal(out.announce.downloaded, 7);
    assert_int_equal(out.announce.left, 1000);
    assert_int_equal(out.announce.event, ANNOUNCE_STARTED);
    assert_int_equal(out.announce.numwant, 30);
    assert_false(out.compact);
    assert_true(out.no_peer_id);
    assert_int_not_equal(out.announce.key, 0);
    /* ip is not read: the address is the server's to fill. */
    assert_int_equal(out.announce.peer.family, 0);
}

static void announce_defaults(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(announce(BASE, &out), QUERY_OK);
    assert_true(out.compact);
    assert_false(out.no_peer_id);
    assert_int_equal(out.announce.numwant, -1);
    assert_int_equal(out.announce.event, ANNOUNCE_NONE);
    assert_int_equal(out.announce.uploaded, 0);
    assert_int_equal(out.announce.downloaded, 0);
    assert_int_equal(out.announce.key, 0);
}

static void plus_decodes_to_space(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(
        announce("info_hash=" IH "&peer_id=-XX0000-+abc+defghi%2B&port=1&left=0", &out), QUERY_OK);
    assert_memory_equal(out.announce.peer_id, "-XX0000- abc defghi+", 20);
}

static void encoded_key_name_is_recognised(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(announce("info%5Fhash=" IH "&peer_id=" PID "&port=1&left=0", &out), QUERY_OK);
    assert_memory_equal(out.announce.info_hash, ih_bytes, 20);
}

static void unknown_parameters_ignored(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(
        announce("supportcrypto=1&" BASE "&corrupt=0&ip=::1&ipv6=x&redundant&&trackerid=", &out),
        QUERY_OK);
}

static void repeated_parameter_keeps_last(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(announce(BASE "&port=7000&numwant=5&numwant=9", &out), QUERY_OK);
    assert_int_equal(out.announce.peer.port, 7000);
    assert_int_equal(out.announce.numwant, 9);
}

static void left_full_uint64_range(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(announce("info_hash=" IH "&peer_id=" PID
                              "&port=1&left=18446744073709551615&uploaded=00042",
                              &out),
                     QUERY_OK);
    assert_true(out.announce.left == UINT64_MAX);
    assert_int_equal(out.announce.uploaded, 42);
}

static void port_bounds_accepted(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(announce(BASE "&port=65535", &out), QUERY_OK);
    assert_int_equal(out.announce.peer.port, 65535);
    assert_int_equal(announce(BASE "&port=1", &out), QUERY_OK);
    assert_int_equal(out.announce.peer.port, 1);
}

static void events_map_to_bep15_numbers(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(announce(BASE "&event=completed", &out), QUERY_OK);
    assert_int_equal(out.announce.event, ANNOUNCE_COMPLETED);
    assert_int_equal(announce(BASE "&event=stopped", &out), QUERY_OK);
    assert_int_equal(out.announce.event, ANNOUNCE_STOPPED);
    assert_int_equal(announce(BASE "&event=%73tarted", &out), QUERY_OK);
    assert_int_equal(out.announce.event, ANNOUNCE_STARTED);
}

static void paused_and_empty_event_are_none(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(announce(BASE "&event=started&event=paused", &out), QUERY_OK);
    assert_int_equal(out.announce.event, ANNOUNCE_NONE);
    assert_int_equal(announce(BASE "&event=started&event=", &out), QUERY_OK);
    assert_int_equal(out.announce.event, ANNOUNCE_NONE);
}

static void numwant_above_max_is_capped(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(announce(BASE "&numwant=500", &out), QUERY_OK);
    assert_int_equal(out.announce.numwant, SHOAL_NUMWANT_MAX);
    assert_int_equal(announce(BASE "&numwant=200", &out), QUERY_OK);
    assert_int_equal(out.announce.numwant, 200);
    assert_int_equal(announce(BASE "&numwant=0", &out), QUERY_OK);
    assert_int_equal(out.announce.numwant, 0);
}

static void numwant_huge_is_capped_not_rejected(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(announce(BASE "&numwant=99999999999999999999999999999", &out), QUERY_OK);
    assert_int_equal(out.announce.numwant, SHOAL_NUMWANT_MAX);
    assert_int_equal(announce(BASE "&numwant=4294967346", &out), QUERY_OK); /* 2^32 + 50 */
    assert_int_equal(out.announce.numwant, SHOAL_NUMWANT_MAX);
}

static void numwant_negative_is_default(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(announce(BASE "&numwant=-5", &out), QUERY_OK);
    assert_int_equal(out.announce.numwant, -1);
    assert_int_equal(announce(BASE "&numwant=-99999999999999999999999", &out), QUERY_OK);
    assert_int_equal(out.announce.numwant, -1);
}

static void compact_one_and_zero(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(announce(BASE "&compact=0", &out), QUERY_OK);
    assert_false(out.compact);
    assert_int_equal(announce(BASE "&compact=1", &out), QUERY_OK);
    assert_true(out.compact);
}

static void no_peer_id_other_values_ignored(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(announce(BASE "&no_peer_id=0", &out), QUERY_OK);
    assert_false(out.no_peer_id);
    assert_int_equal(announce(BASE "&no_peer_id=yes", &out), QUERY_OK);
    assert_false(out.no_peer_id);
}

static void key_hash_is_of_decoded_bytes(void **state)
{
    (void)state;
    query_announce_t a, b, c;
    assert_int_equal(announce(BASE "&key=A1b2", &a), QUERY_OK);
    assert_int_equal(announce(BASE "&key=%41%31b%32", &b), QUERY_OK);
    assert_int_equal(announce(BASE "&key=A1b3", &c), QUERY_OK);
    assert_int_equal(a.announce.key, b.announce.key);
    assert_int_not_equal(a.announce.key, c.announce.key);
}

static void key_of_64_bytes_accepted(void **state)
{
    (void)state;
    query_announce_t out;
    assert_int_equal(
        announce(BASE "&key=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                 &out),
        QUERY_OK);
}

/* ---- announce: errors ---- */

static void bad_escape_truncated_at_end(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&info_hash=%"), QUERY_ERR_ESCAPE);
    assert_int_equal(announce_err(BASE "&info_hash=%4"), QUERY_ERR_ESCAPE);
}

static void bad_escape_one_hex_digit(void **state)
{
    (void)state;
    /* "%4&" must not borrow the separator as its second digit. */
    assert_int_equal(announce_err("peer_id=%4&" BASE), QUERY_ERR_ESCAPE);
}

static void bad_escape_non_hex(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&peer_id=%zz"), QUERY_ERR_ESCAPE);
    assert_int_equal(announce_err(BASE "&port=%4g"), QUERY_ERR_ESCAPE);
}

static void bad_escape_in_unknown_parameter(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&foo=%%41"), QUERY_ERR_ESCAPE);
}

static void bad_escape_in_key_name(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&fo%x=1"), QUERY_ERR_ESCAPE);
}

static void bad_escape_in_ignored_ip(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&ip=%g1"), QUERY_ERR_ESCAPE);
}

static void bad_escape_after_bad_number_still_escape(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&left=x%"), QUERY_ERR_ESCAPE);
    assert_int_equal(announce_err(BASE "&compact=2%"), QUERY_ERR_ESCAPE);
}

static void info_hash_19_bytes(void **state)
{
    (void)state;
    assert_int_equal(announce_err("info_hash=" IH_19 "&peer_id=" PID "&port=1&left=0"),
                     QUERY_ERR_INFO_HASH_LENGTH);
}

static void info_hash_21_bytes(void **state)
{
    (void)state;
    assert_int_equal(announce_err("info_hash=" IH_21 "&peer_id=" PID "&port=1&left=0"),
                     QUERY_ERR_INFO_HASH_LENGTH);
}

static void info_hash_empty(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&info_hash="), QUERY_ERR_INFO_HASH_LENGTH);
    assert_int_equal(announce_err(BASE "&info_hash"), QUERY_ERR_INFO_HASH_LENGTH);
}

static void peer_id_wrong_length(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&peer_id=-qB4500-abcdefghijk"), QUERY_ERR_PEER_ID_LENGTH);
    assert_int_equal(announce_err(BASE "&peer_id=-qB4500-abcdefghijklm"), QUERY_ERR_PEER_ID_LENGTH);
}

static void missing_info_hash(void **state)
{
    (void)state;
    assert_int_equal(announce_err("peer_id=" PID "&port=1&left=0"), QUERY_ERR_INFO_HASH_MISSING);
}

static void missing_peer_id(void **state)
{
    (void)state;
    assert_int_equal(announce_err("info_hash=" IH "&port=1&left=0"), QUERY_ERR_PEER_ID_MISSING);
}

static void missing_port(void **state)
{
    (void)state;
    assert_int_equal(announce_err("info_hash=" IH "&peer_id=" PID "&left=0"),
                     QUERY_ERR_PORT_MISSING);
}

static void missing_left(void **state)
{
    (void)state;
    assert_int_equal(announce_err("info_hash=" IH "&peer_id=" PID "&port=1"),
                     QUERY_ERR_LEFT_MISSING);
}

static void missing_reported_in_fixed_order(void **state)
{
    (void)state;
    assert_int_equal(announce_err(""), QUERY_ERR_INFO_HASH_MISSING);
    assert_int_equal(announce_err("left=0&port=1"), QUERY_ERR_INFO_HASH_MISSING);
    assert_int_equal(announce_err("left=0&info_hash=" IH), QUERY_ERR_PEER_ID_MISSING);
    assert_int_equal(announce_err("left=0&peer_id=" PID "&info_hash=" IH), QUERY_ERR_PORT_MISSING);
}

static void bad_value_reported_before_missing(void **state)
{
    (void)state;
    assert_int_equal(announce_err("port=0"), QUERY_ERR_PORT);
    assert_int_equal(announce_err("event=bogus&peer_id=" PID), QUERY_ERR_EVENT);
}

static void first_bad_value_from_the_left_wins(void **state)
{
    (void)state;
    assert_int_equal(announce_err("port=0&info_hash=abc&peer_id=" PID "&left=0"), QUERY_ERR_PORT);
    assert_int_equal(announce_err("info_hash=abc&port=0&peer_id=" PID "&left=0"),
                     QUERY_ERR_INFO_HASH_LENGTH);
}

static void port_zero(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&port=0"), QUERY_ERR_PORT);
}

static void port_65536(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&port=65536"), QUERY_ERR_PORT);
}

static void port_not_a_number(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&port=abc"), QUERY_ERR_PORT);
    assert_int_equal(announce_err(BASE "&port="), QUERY_ERR_PORT);
    assert_int_equal(announce_err(BASE "&port=-1"), QUERY_ERR_PORT);
    assert_int_equal(announce_err(BASE "&port=+80"), QUERY_ERR_PORT);
    assert_int_equal(announce_err(BASE "&port=80x"), QUERY_ERR_PORT);
    assert_int_equal(announce_err(BASE "&port=18446744073709551617"), QUERY_ERR_PORT);
}

static void left_invalid(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&left=-1"), QUERY_ERR_LEFT);
    assert_int_equal(announce_err(BASE "&left="), QUERY_ERR_LEFT);
    assert_int_equal(announce_err(BASE "&left=1.5"), QUERY_ERR_LEFT);
}

static void left_overflow(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&left=18446744073709551616"), QUERY_ERR_LEFT);
}

static void uploaded_invalid(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&uploaded=-5"), QUERY_ERR_UPLOADED);
    assert_int_equal(announce_err(BASE "&uploaded=99999999999999999999"), QUERY_ERR_UPLOADED);
}

static void downloaded_invalid(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&downloaded=1k"), QUERY_ERR_DOWNLOADED);
}

static void event_invalid(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&event=bogus"), QUERY_ERR_EVENT);
    assert_int_equal(announce_err(BASE "&event=STARTED"), QUERY_ERR_EVENT);
    assert_int_equal(announce_err(BASE "&event=start"), QUERY_ERR_EVENT);
    assert_int_equal(announce_err(BASE "&event=startedx"), QUERY_ERR_EVENT);
}

static void numwant_not_a_number(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&numwant=abc"), QUERY_ERR_NUMWANT);
    assert_int_equal(announce_err(BASE "&numwant="), QUERY_ERR_NUMWANT);
    assert_int_equal(announce_err(BASE "&numwant=-"), QUERY_ERR_NUMWANT);
    assert_int_equal(announce_err(BASE "&numwant=+5"), QUERY_ERR_NUMWANT);
    assert_int_equal(announce_err(BASE "&numwant=1e3"), QUERY_ERR_NUMWANT);
}

static void compact_two(void **state)
{
    (void)state;
    assert_int_equal(announce_err(BASE "&compact=2"), QUERY_ERR_COMPACT);
    assert_int_equal(announce_err(BASE "&compact="), QUERY_ERR_COMPACT);
    assert_int_equal(announce_err(BASE "&compact=01"), QUERY_ERR_COMPACT);
}

static void key_of_65_bytes_rejected(void **state)
{
    (void)state;
    assert_int_equal(
        announce_err(BASE "&key=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdefX"),
        QUERY_ERR_KEY);
}

static void strerror_texts_are_specific(void **state)
{
    (void)state;
    assert_string_equal(query_strerror(QUERY_ERR_INFO_HASH_MISSING), "missing info_hash");
    assert_string_equal(query_strerror(QUERY_ERR_INFO_HASH_LENGTH),
                        "invalid info_hash: must be 20 bytes");
    assert_string_equal(query_strerror(QUERY_ERR_PORT), "invalid port: must be 1-65535");
    assert_string_equal(query_strerror(QUERY_ERR_PORT_MISSING), "missing port");
    assert_string_equal(query_strerror(QUERY_ERR_LEFT_MISSING), "missing left");
    assert_string_equal(query_strerror(QUERY_ERR_PEER_ID_MISSING), "missing peer_id");
}

static void strerror_texts_are_distinct(void **state)
{
    (void)state;
    for (int i = QUERY_ERR_ESCAPE; i <= QUERY_ERR_SCRAPE_TOO_MANY; i++) {
        const char *a = query_strerror((query_err_t)i);
        assert_non_null(a);
        assert_string_not_equal(a, "unknown error");
        for (int j = QUERY_OK; j < i; j++)
            assert_string_not_equal(a, query_strerror((query_err_t)j));
    }
}

/* ---- scrape ---- */

#define IH2 "aaaaaaaaaaaaaaaaaaaa"
#define IH3 "bbbbbbbbbbbbbbbbbbbb"

static void scrape_decodes_each_hash_in_order(void **state)
{
    (void)state;
    uint8_t h[4][20];
    size_t n = 99;
    const char *q = "info_hash=" IH2 "&x=1&info_hash=" IH "&info_hash=" IH3;
    assert_int_equal(query_parse_scrape(q, strlen(q), h, 4, &n), QUERY_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(h[0], IH2, 20);
    assert_memory_equal(h[1], ih_bytes, 20);
    assert_memory_equal(h[2], IH3, 20);
}

static void scrape_without_hashes_is_empty(void **state)
{
    (void)state;
    uint8_t h[1][20];
    size_t n = 99;
    assert_int_equal(query_parse_scrape("", 0, h, 1, &n), QUERY_OK);
    assert_int_equal(n, 0);
    assert_int_equal(query_parse_scrape("foo=bar", 7, h, 1, &n), QUERY_OK);
    assert_int_equal(n, 0);
}

static void scrape_hash_19_bytes(void **state)
{
    (void)state;
    uint8_t h[2][20];
    size_t n;
    const char *q = "info_hash=" IH2 "&info_hash=" IH_19;
    assert_int_equal(query_parse_scrape(q, strlen(q), h, 2, &n), QUERY_ERR_INFO_HASH_LENGTH);
}

static void scrape_hash_21_bytes(void **state)
{
    (void)state;
    uint8_t h[2][20];
    size_t n;
    const char *q = "info_hash=" IH_21;
    assert_int_equal(query_parse_scrape(q, strlen(q), h, 2, &n), QUERY_ERR_INFO_HASH_LENGTH);
}

static void scrape_exactly_max_accepted(void **state)
{
    (void)state;
    uint8_t h[2][20];
    size_t n;
    const char *q = "info_hash=" IH2 "&info_hash=" IH3;
    assert_int_equal(query_parse_scrape(q, strlen(q), h, 2, &n), QUERY_OK);
    assert_int_equal(n, 2);
}

static void scrape_too_many(void **state)
{
    (void)state;
    uint8_t h[2][20];
    size_t n;
    const char *q = "info_hash=" IH2 "&info_hash=" IH3 "&info_hash=" IH;
    assert_int_equal(query_parse_scrape(q, strlen(q), h, 2, &n), QUERY_ERR_SCRAPE_TOO_MANY);
    assert_true(n <= 2);
}

static void scrape_max_is_clamped_to_hard_ceiling(void **state)
{
    (void)state;
    size_t count = SHOAL_SCRAPE_MAX + 1;
    size_t qcap = count * 32;
    char *q = malloc(qcap);
    uint8_t(*h)[20] = calloc(count, 20);
    assert_non_null(q);
    assert_non_null(h);
    size_t len = 0;
    for (size_t i = 0; i < count; i++)
        len += (size_t)snprintf(q + len, qcap - len, "%sinfo_hash=%020zu", i ? "&" : "", i);
    size_t n;
    assert_int_equal(query_parse_scrape(q, len, h, count, &n), QUERY_ERR_SCRAPE_TOO_MANY);
    free(q);
    free(h);
}

static void scrape_bad_escape_elsewhere(void **state)
{
    (void)state;
    uint8_t h[2][20];
    size_t n;
    const char *q = "info_hash=" IH2 "&passkey=%ZZ";
    assert_int_equal(query_parse_scrape(q, strlen(q), h, 2, &n), QUERY_ERR_ESCAPE);
}

static void scrape_bad_escape_in_hash(void **state)
{
    (void)state;
    uint8_t h[2][20];
    size_t n;
    const char *q = "info_hash=aaaaaaaaaaaaaaaaaaa%a";
    assert_int_equal(query_parse_scrape(q, strlen(q), h, 2, &n), QUERY_ERR_ESCAPE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(announce_decodes_every_field),
        cmocka_unit_test(announce_defaults),
        cmocka_unit_test(plus_decodes_to_space),
        cmocka_unit_test(encoded_key_name_is_recognised),
        cmocka_unit_test(unknown_parameters_ignored),
        cmocka_unit_test(repeated_parameter_keeps_last),
        cmocka_unit_test(left_full_uint64_range),
        cmocka_unit_test(port_bounds_accepted),
        cmocka_unit_test(events_map_to_bep15_numbers),
        cmocka_unit_test(paused_and_empty_event_are_none),
        cmocka_unit_test(numwant_above_max_is_capped),
        cmocka_unit_test(numwant_huge_is_capped_not_rejected),
        cmocka_unit_test(numwant_negative_is_default),
        cmocka_unit_test(compact_one_and_zero),
        cmocka_unit_test(no_peer_id_other_values_ignored),
        cmocka_unit_test(key_hash_is_of_decoded_bytes),
        cmocka_unit_test(key_of_64_bytes_accepted),
        cmocka_unit_test(bad_escape_truncated_at_end),
        cmocka_unit_test(bad_escape_one_hex_digit),
        cmocka_unit_test(bad_escape_non_hex),
        cmocka_unit_test(bad_escape_in_unknown_parameter),
        cmocka_unit_test(bad_escape_in_key_name),
        cmocka_unit_test(bad_escape_in_ignored_ip),
        cmocka_unit_test(bad_escape_after_bad_number_still_escape),
        cmocka_unit_test(info_hash_19_bytes),
        cmocka_unit_test(info_hash_21_bytes),
        cmocka_unit_test(info_hash_empty),
        cmocka_unit_test(peer_id_wrong_length),
        cmocka_unit_test(missing_info_hash),
        cmocka_unit_test(missing_peer_id),
        cmocka_unit_test(missing_port),
        cmocka_unit_test(missing_left),
        cmocka_unit_test(missing_reported_in_fixed_order),
        cmocka_unit_test(bad_value_reported_before_missing),
        cmocka_unit_test(first_bad_value_from_the_left_wins),
        cmocka_unit_test(port_zero),
        cmocka_unit_test(port_65536),
        cmocka_unit_test(port_not_a_number),
        cmocka_unit_test(left_invalid),
        cmocka_unit_test(left_overflow),
        cmocka_unit_test(uploaded_invalid),
        cmocka_unit_test(downloaded_invalid),
        cmocka_unit_test(event_invalid),
        cmocka_unit_test(numwant_not_a_number),
        cmocka_unit_test(compact_two),
        cmocka_unit_test(key_of_65_bytes_rejected),
        cmocka_unit_test(strerror_texts_are_specific),
        cmocka_unit_test(strerror_texts_are_distinct),
        cmocka_unit_test(scrape_decodes_each_hash_in_order),
        cmocka_unit_test(scrape_without_hashes_is_empty),
        cmocka_unit_test(scrape_hash_19_bytes),
        cmocka_unit_test(scrape_hash_21_bytes),
        cmocka_unit_test(scrape_exactly_max_accepted),
        cmocka_unit_test(scrape_too_many),
        cmocka_unit_test(scrape_max_is_clamped_to_hard_ceiling),
        cmocka_unit_test(scrape_bad_escape_elsewhere),
        cmocka_unit_test(scrape_bad_escape_in_hash),
    };
    return cmocka_run_group_tests_name("query", tests, NULL, NULL);
}
