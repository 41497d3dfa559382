/* SPDX-License-Identifier: MIT */
/* test_announce: address normalisation between the 16-byte form (sockets, connection ids) and
 * endpoint_t, above all the IPv4-mapped range and its near misses. */
#include "announce.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

/* ::ffff:192.0.2.1 */
static const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
/* 2001:db8::1 */
static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

static void assert_is_v6(const uint8_t addr16[16])
{
    endpoint_t ep;
    announce_endpoint_from16(&ep, addr16);
    assert_int_equal(ep.family, 6);
    assert_memory_equal(ep.addr, addr16, 16);
}

static void mapped_address_becomes_ipv4(void **state)
{
    (void)state;
    static const uint8_t want[16] = {192, 0, 2, 1};
    endpoint_t ep;
    announce_endpoint_from16(&ep, mapped);
    assert_int_equal(ep.family, 4);
    assert_memory_equal(ep.addr, want, 16);
}

static void mapped_extremes_become_ipv4(void **state)
{
    (void)state;
    uint8_t a[16];
    memcpy(a, mapped, 16);
    memset(a + 12, 0, 4); /* ::ffff:0.0.0.0 */
    endpoint_t ep;
    announce_endpoint_from16(&ep, a);
    assert_int_equal(ep.family, 4);
    memset(a + 12, 0xff, 4); /* ::ffff:255.255.255.255 */
    announce_endpoint_from16(&ep, a);
    assert_int_equal(ep.family, 4);
    assert_int_equal(ep.addr[3], 0xff);
}

static void native_ipv6_stays_ipv6(void **state)
{
    (void)state;
    assert_is_v6(v6);
}

static void near_misses_of_mapped_prefix_stay_ipv6(void **state)
{
    (void)state;
    /* ::fffe:192.0.2.1, ::1:ffff:192.0.2.1, ::ffff:0:192.0.2.1 (SIIT), ::192.0.2.1
     * (IPv4-compatible, deprecated), ::, ::1, 8000::ffff:192.0.2.1 */
    static const uint8_t cases[][16] = {
        {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe, 192, 0, 2, 1},
        {0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 192, 0, 2, 1},
        {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 192, 0, 2, 1},
        {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1},
        {0},
        {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
        {0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_is_v6(cases[i]);
}

static void from16_clears_stale_bytes_and_keeps_port(void **state)
{
    (void)state;
    endpoint_t ep;
    memset(&ep, 0xaa, sizeof(ep));
    ep.port = 6881;
    announce_endpoint_from16(&ep, mapped);
    for (size_t i = 4; i < 16; i++)
        assert_int_equal(ep.addr[i], 0);
    assert_int_equal(ep.port, 6881);
}

static void to16_maps_ipv4(void **state)
{
    (void)state;
    endpoint_t ep = {.family = 4, .addr = {192, 0, 2, 1}, .port = 1};
    uint8_t out[16];
    announce_endpoint_to16(&ep, out);
    assert_memory_equal(out, mapped, 16);
}

static void to16_ignores_ipv4_tail_bytes(void **state)
{
    (void)state;
    endpoint_t ep;
    memset(&ep, 0x55, sizeof(ep));
    ep.family = 4;
    memcpy(ep.addr, mapped + 12, 4);
    uint8_t out[16];
    announce_endpoint_to16(&ep, out);
    assert_memory_equal(out, mapped, 16);
}

static void to16_copies_ipv6(void **state)
{
    (void)state;
    endpoint_t ep = {.family = 6};
    memcpy(ep.addr, v6, 16);
    uint8_t out[16];
    announce_endpoint_to16(&ep, out);
    assert_memory_equal(out, v6, 16);
}

static void round_trips_both_ways(void **state)
{
    (void)state;
    const uint8_t *inputs[] = {mapped, v6};
    for (size_t i = 0; i < 2; i++) {
        endpoint_t ep, back;
        uint8_t out[16];
        announce_endpoint_from16(&ep, inputs[i]);
        announce_endpoint_to16(&ep, out);
        assert_memory_equal(out, inputs[i], 16);
        announce_endpoint_from16(&back, out);
        assert_int_equal(back.family, ep.family);
        assert_memory_equal(back.addr, ep.addr, 16);
    }
}

static void from16_works_in_place(void **state)
{
    (void)state;
    /* A server copies sin6_addr into ep.addr, then normalises it there. */
    static const uint8_t want[16] = {192, 0, 2, 1};
    endpoint_t ep = {.port = 7};
    memcpy(ep.addr, mapped, 16);
    announce_endpoint_from16(&ep, ep.addr);
    assert_int_equal(ep.family, 4);
    assert_memory_equal(ep.addr, want, 16);
}

static void to16_works_in_place(void **state)
{
    (void)state;
    endpoint_t ep = {.family = 4, .addr = {192, 0, 2, 1}};
    announce_endpoint_to16(&ep, ep.addr);
    assert_memory_equal(ep.addr, mapped, 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mapped_address_becomes_ipv4),
        cmocka_unit_test(mapped_extremes_become_ipv4),
        cmocka_unit_test(native_ipv6_stays_ipv6),
        cmocka_unit_test(near_misses_of_mapped_prefix_stay_ipv6),
        cmocka_unit_test(from16_clears_stale_bytes_and_keeps_port),
        cmocka_unit_test(to16_maps_ipv4),
        cmocka_unit_test(to16_ignores_ipv4_tail_bytes),
        cmocka_unit_test(to16_copies_ipv6),
        cmocka_unit_test(round_trips_both_ways),
        cmocka_unit_test(from16_works_in_place),
        cmocka_unit_test(to16_works_in_place),
    };
    return cmocka_run_group_tests_name("announce", tests, NULL, NULL);
}
