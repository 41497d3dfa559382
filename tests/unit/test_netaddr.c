/* SPDX-License-Identifier: MIT */
/* test_netaddr: listen addresses, networks, and whom to believe in X-Forwarded-For. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static endpoint_t ip(const char *text)
{
    endpoint_t ep;
    assert_int_equal(netaddr_parse_ip(text, strlen(text), &ep), 0);
    return ep;
}

static void listen_ipv4(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    char err[128];
    assert_int_equal(netaddr_parse_listen("127.0.0.1:6969", &ss, &len, err, sizeof(err)), 0);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohs(sin->sin_port), 6969);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x7f000001);
    assert_int_equal(len, sizeof(struct sockaddr_in));
}

static void listen_ipv6_and_any(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    char err[128], text[80];
    assert_int_equal(netaddr_parse_listen("[::1]:7000", &ss, &len, err, sizeof(err)), 0);
    netaddr_format((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "[::1]:7000");
    assert_int_equal(netaddr_parse_listen(":6969", &ss, &len, err, sizeof(err)), 0);
    netaddr_format((struct sockaddr *)&ss, text, sizeof(text));
    assert_string_equal(text, "[::]:6969");
}

static void listen_rejects_bad_input(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    char err[128];
    const char *bad[] = {
        "127.0.0.1",   "127.0.0.1:0", "127.0.0.1:65536", "::1:6969", "localhost:6969",
        "1.2.3.4:69x", "[::1:6969",   "1.2.3.4:",        "[::1]:-1", "999.1.1.1:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(netaddr_parse_listen(bad[i], &ss, &len, err, sizeof(err)), -1);
        assert_true(strlen(err) > 0);
    }
}

static void ip_maps_v4_in_v6_to_v4(void **state)
{
    (void)state;
    endpoint_t ep = ip("::ffff:10.1.2.3");
    assert_int_equal(ep.family, 4);
    const uint8_t want[4] = {10, 1, 2, 3};
    assert_memory_equal(ep.addr, want, 4);
    assert_int_equal(ip(" 2001:db8::1 ").family, 6);
}

static void list_matches_prefixes(void **state)
{
    (void)state;
    netaddr_list_t l;
    char err[128];
    assert_int_equal(
        netaddr_parse_list("10.0.0.0/8, 192.168.1.7,fd00::/8, 172.16.0.0/12", &l, err, sizeof(err)),
        0);
    assert_int_equal(l.n, 4);
    endpoint_t in[] = {ip("10.200.3.4"), ip("192.168.1.7"), ip("fd12::1"), ip("172.31.255.255"),
                       ip("::ffff:10.0.0.1")};
    endpoint_t out[] = {ip("11.0.0.1"), ip("192.168.1.8"), ip("fe80::1"), ip("172.32.0.0")};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        assert_true(netaddr_list_contains(&l, &in[i]));
    for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
        assert_false(netaddr_list_contains(&l, &out[i]));
}

/* Prefix lengths at and next to the word boundaries the matcher works in. */
static void list_matches_at_word_boundaries(void **state)
{
    (void)state;
    static const struct {
        const char *net, *in, *out;
    } cases[] = {
        {"0.0.0.0/0", "203.0.113.9", "::1"},
        {"10.0.0.0/31", "10.0.0.1", "10.0.0.2"},
        {"10.0.0.7/32", "10.0.0.7", "10.0.0.6"},
        {"10.128.0.0/9", "10.255.0.1", "10.127.255.255"},
        {"::/0", "2001:db8::1", "10.0.0.1"},
        {"2001:db8:0:1::/64", "2001:db8:0:1:ffff::1", "2001:db8:0:2::1"},
        {"2001:db8:0:1:8000::/65", "2001:db8:0:1:8000::1", "2001:db8:0:1:7fff::1"},
        {"2001:db8::/127", "2001:db8::1", "2001:db8::2"},
        {"2001:db8::5/128", "2001:db8::5", "2001:db8::4"},
        {"fe00::/7", "ff02::1", "fc00::1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        netaddr_list_t l;
        char err[128];
        assert_int_equal(netaddr_parse_list(cases[i].net, &l, err, sizeof(err)), 0);
        endpoint_t in = ip(cases[i].in), out = ip(cases[i].out);
        assert_true(netaddr_list_contains(&l, &in));
        assert_false(netaddr_list_contains(&l, &out));
    }
}

static void list_rejects_host_bits_and_garbage(void **state)
{
    (void)state;
    netaddr_list_t l;
    char err[128];
    assert_int_equal(netaddr_parse_list("10.0.0.1/8", &l, err, sizeof(err)), -1);
    assert_int_equal(netaddr_parse_list("10.0.0.0/33", &l, err, sizeof(err)), -1);
    assert_int_equal(netaddr_parse_list("example.com", &l, err, sizeof(err)), -1);
    assert_int_equal(netaddr_parse_list("10.0.0.0/", &l, err, sizeof(err)), -1);
    assert_int_equal(netaddr_parse_list("", &l, err, sizeof(err)), 0);
    assert_int_equal(l.n, 0);
}

static void list_is_bounded(void **state)
{
    (void)state;
    char text[NETADDR_LIST_MAX * 16 + 32] = "";
    for (int i = 0; i <= NETADDR_LIST_MAX; i++) {
        char one[16];
        snprintf(one, sizeof(one), "10.0.%d.0/24,", i);
        strcat(text, one);
    }
    netaddr_list_t l;
    char err[128];
    assert_int_equal(netaddr_parse_list(text, &l, err, sizeof(err)), -1);
}

static void forwarded_takes_rightmost_untrusted(void **state)
{
    (void)state;
    netaddr_list_t trusted;
    char err[128];
    assert_int_equal(netaddr_parse_list("10.0.0.0/8", &trusted, err, sizeof(err)), 0);
    endpoint_t ep;
    const char *v = "6.6.6.6, 203.0.113.9, 10.0.0.2";
    assert_int_equal(netaddr_forwarded_client(v, strlen(v), &trusted, &ep), 0);
    endpoint_t want = ip("203.0.113.9");
    assert_memory_equal(ep.addr, want.addr, 16);
    const char *real = "2001:db8::5";
    assert_int_equal(netaddr_forwarded_client(real, strlen(real), &trusted, &ep), 0);
    assert_int_equal(ep.family, 6);
}

static void forwarded_garbage_is_refused(void **state)
{
    (void)state;
    netaddr_list_t trusted;
    char err[128];
    assert_int_equal(netaddr_parse_list("10.0.0.0/8", &trusted, err, sizeof(err)), 0);
    endpoint_t ep;
    const char *cases[] = {"", "unknown", "1.2.3.4, garbage, 10.0.0.1", ",,,"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(netaddr_forwarded_client(cases[i], strlen(cases[i]), &trusted, &ep), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(listen_ipv4),
        cmocka_unit_test(listen_ipv6_and_any),
        cmocka_unit_test(listen_rejects_bad_input),
        cmocka_unit_test(ip_maps_v4_in_v6_to_v4),
        cmocka_unit_test(list_matches_prefixes),
        cmocka_unit_test(list_matches_at_word_boundaries),
        cmocka_unit_test(list_rejects_host_bits_and_garbage),
        cmocka_unit_test(list_is_bounded),
        cmocka_unit_test(forwarded_takes_rightmost_untrusted),
        cmocka_unit_test(forwarded_garbage_is_refused),
    };
    return cmocka_run_group_tests_name("netaddr", tests, NULL, NULL);
}
