/* SPDX-License-Identifier: MIT */
/* test_proxyv2: the PROXY protocol v2 header parser (proto/proxyv2). */
#include "proxyv2.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* A header: signature, ver/cmd, fam/transport, length, then body (len bytes). */
static size_t make(uint8_t *out, uint8_t vc, uint8_t ft, const uint8_t *body, uint16_t len)
{
    memcpy(out, sig, 12);
    out[12] = vc;
    out[13] = ft;
    out[14] = (uint8_t)(len >> 8);
    out[15] = (uint8_t)len;
    if (body)
        memcpy(out + 16, body, len);
    else
        memset(out + 16, 0, len);
    return 16u + len;
}

static const uint8_t inet_body[12] = {192, 0, 2, 7, 10, 0, 0, 1, 0x1A, 0xE1, 0x00, 0x50};

static void proxy_inet_stream(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = make(buf, 0x21, 0x11, inet_body, 12);
    memcpy(buf + n, "GET /", 5);
    proxyv2_t h;
    assert_int_equal(proxyv2_parse(buf, n + 5, PROXYV2_MAX_LEN, &h), PROXYV2_OK);
    assert_int_equal(h.header_len, 28);
    assert_false(h.local);
    assert_false(h.dgram);
    assert_int_equal(h.src.family, 4);
    assert_memory_equal(h.src.addr, ((uint8_t[]){192, 0, 2, 7}), 4);
    assert_int_equal(h.src.port, 6881);
    assert_memory_equal(h.dst.addr, ((uint8_t[]){10, 0, 0, 1}), 4);
    assert_int_equal(h.dst.port, 80);
}

static void proxy_inet6_dgram(void **state)
{
    (void)state;
    uint8_t body[36] = {
        0x20,        0x01,        0x0d,        0xb8,        [15] = 0x05, [16] = 0x20,
        [17] = 0x01, [31] = 0x01, [32] = 0x1A, [33] = 0xE1, [34] = 0x1B, [35] = 0x39};
    uint8_t buf[64];
    size_t n = make(buf, 0x21, 0x22, body, 36);
    proxyv2_t h;
    assert_int_equal(proxyv2_parse(buf, n, PROXYV2_MAX_LEN, &h), PROXYV2_OK);
    assert_true(h.dgram);
    assert_int_equal(h.src.family, 6);
    assert_memory_equal(h.src.addr, body, 16);
    assert_int_equal(h.src.port, 6881);
    assert_int_equal(h.dst.port, 6969);
}

static void mapped_ipv4_in_inet6_is_family_4(void **state)
{
    (void)state;
    uint8_t body[36] = {[10] = 0xff, [11] = 0xff, [12] = 127, [13] = 0, [14] = 0, [15] = 5};
    uint8_t buf[64];
    size_t n = make(buf, 0x21, 0x21, body, 36);
    proxyv2_t h;
    assert_int_equal(proxyv2_parse(buf, n, PROXYV2_MAX_LEN, &h), PROXYV2_OK);
    assert_int_equal(h.src.family, 4);
    assert_memory_equal(h.src.addr, ((uint8_t[]){127, 0, 0, 5}), 4);
}

static void tlvs_are_skipped(void **state)
{
    (void)state;
    uint8_t body[12 + 7];
    memcpy(body, inet_body, 12);
    memcpy(body + 12, ((uint8_t[]){0x04, 0x00, 0x04, 'a', 'b', 'c', 'd'}), 7); /* NOOP TLV */
    uint8_t buf[64];
    size_t n = make(buf, 0x21, 0x11, body, sizeof(body));
    proxyv2_t h;
    assert_int_equal(proxyv2_parse(buf, n, PROXYV2_MAX_LEN, &h), PROXYV2_OK);
    assert_int_equal(h.header_len, 16 + 19);
    assert_int_equal(h.src.port, 6881);
}

static void local_keeps_own_address(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = make(buf, 0x20, 0x00, NULL, 0);
    proxyv2_t h;
    assert_int_equal(proxyv2_parse(buf, n, PROXYV2_MAX_LEN, &h), PROXYV2_OK);
    assert_true(h.local);
    assert_int_equal(h.header_len, 16);
    /* LOCAL with addresses: still local. */
    n = make(buf, 0x20, 0x11, inet_body, 12);
    assert_int_equal(proxyv2_parse(buf, n, PROXYV2_MAX_LEN, &h), PROXYV2_OK);
    assert_true(h.local);
}

static void unspec_and_unix_are_local(void **state)
{
    (void)state;
    uint8_t buf[300];
    proxyv2_t h;
    size_t n = make(buf, 0x21, 0x00, NULL, 0);
    assert_int_equal(proxyv2_parse(buf, n, PROXYV2_MAX_LEN, &h), PROXYV2_OK);
    assert_true(h.local);
    n = make(buf, 0x21, 0x31, NULL, 216);
    assert_int_equal(proxyv2_parse(buf, n, PROXYV2_MAX_LEN, &h), PROXYV2_OK);
    assert_true(h.local);
    /* INET over an UNSPEC transport: the addresses mean nothing we can use. */
    n = make(buf, 0x21, 0x10, inet_body, 12);
    assert_int_equal(proxyv2_parse(buf, n, PROXYV2_MAX_LEN, &h), PROXYV2_OK);
    assert_true(h.local);
}

static void split_header_needs_more_at_every_cut(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = make(buf, 0x21, 0x11, inet_body, 12);
    proxyv2_t h;
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(proxyv2_parse(buf, cut, PROXYV2_MAX_LEN, &h), PROXYV2_NEED_MORE);
    assert_int_equal(proxyv2_parse(buf, n, PROXYV2_MAX_LEN, &h), PROXYV2_OK);
}

static void http_is_not_a_header(void **state)
{
    (void)state;
    const char *get = "GET /announce HTTP/1.1\r\n\r\n";
    proxyv2_t h;
    assert_int_equal(proxyv2_parse((const uint8_t *)get, strlen(get), PROXYV2_MAX_LEN, &h),
                     PROXYV2_ERR_SIGNATURE);
    assert_false(proxyv2_has_signature((const uint8_t *)get, 1));
    assert_true(proxyv2_has_signature(sig, 5));
    assert_true(proxyv2_has_signature(sig, 0));
    /* The v1 text form is refused: only v2 is spoken. */
    const char *v1 = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
    assert_int_equal(proxyv2_parse((const uint8_t *)v1, strlen(v1), PROXYV2_MAX_LEN, &h),
                     PROXYV2_ERR_SIGNATURE);
}

static void bad_version_command_family(void **state)
{
    (void)state;
    uint8_t buf[64];
    proxyv2_t h;
    size_t n = make(buf, 0x11, 0x11, inet_body, 12);
    assert_int_equal(proxyv2_parse(buf, n, PROXYV2_MAX_LEN, &h), PROXYV2_ERR_VERSION);
    /* Told as soon as the byte arrives, without the rest. */
    assert_int_equal(proxyv2_parse(buf, 13, PROXYV2_MAX_LEN, &h), PROXYV2_ERR_VERSION);
    n = make(buf, 0x22, 0x11, inet_body, 12);
    assert_int_equal(proxyv2_parse(buf, n, PROXYV2_MAX_LEN, &h), PROXYV2_ERR_COMMAND);
    n = make(buf, 0x21, 0x41, inet_body, 12);
    assert_int_equal(proxyv2_parse(buf, n, PROXYV2_MAX_LEN, &h), PROXYV2_ERR_FAMILY);
    n = make(buf, 0x21, 0x13, inet_body, 12);
    assert_int_equal(proxyv2_parse(buf, 14, PROXYV2_MAX_LEN, &h), PROXYV2_ERR_FAMILY);
}

static void short_address_block_is_refused(void **state)
{
    (void)state;
    uint8_t buf[64];
    proxyv2_t h;
    size_t n = make(buf, 0x21, 0x11, inet_body, 11);
    assert_int_equal(proxyv2_parse(buf, n, PROXYV2_MAX_LEN, &h), PROXYV2_ERR_ADDRESS);
    /* Known from the fixed part alone: no waiting for bytes that would not help. */
    assert_int_equal(proxyv2_parse(buf, 16, PROXYV2_MAX_LEN, &h), PROXYV2_ERR_ADDRESS);
    n = make(buf, 0x21, 0x21, NULL, 35);
    assert_int_equal(proxyv2_parse(buf, n, PROXYV2_MAX_LEN, &h), PROXYV2_ERR_ADDRESS);
}

static void over_the_cap_is_refused(void **state)
{
    (void)state;
    uint8_t buf[16];
    proxyv2_t h;
    make(buf, 0x21, 0x11, NULL, 0);
    buf[14] = 0xFF; /* 65535 bytes announced */
    buf[15] = 0xFF;
    assert_int_equal(proxyv2_parse(buf, 16, PROXYV2_MAX_LEN, &h), PROXYV2_ERR_TOO_LONG);
    /* A caller's smaller cap (its buffer) wins; a larger one is clamped. */
    buf[14] = 0;
    buf[15] = 100;
    assert_int_equal(proxyv2_parse(buf, 16, 64, &h), PROXYV2_ERR_TOO_LONG);
    buf[14] = 0x02;
    buf[15] = 0x00; /* 16 + 512 */
    assert_int_equal(proxyv2_parse(buf, 16, 100000, &h), PROXYV2_ERR_TOO_LONG);
    assert_string_equal(proxyv2_strerror(PROXYV2_ERR_TOO_LONG),
                        "PROXY v2 header longer than 512 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(proxy_inet_stream),
        cmocka_unit_test(proxy_inet6_dgram),
        cmocka_unit_test(mapped_ipv4_in_inet6_is_family_4),
        cmocka_unit_test(tlvs_are_skipped),
        cmocka_unit_test(local_keeps_own_address),
        cmocka_unit_test(unspec_and_unix_are_local),
        cmocka_unit_test(split_header_needs_more_at_every_cut),
        cmocka_unit_test(http_is_not_a_header),
        cmocka_unit_test(bad_version_command_family),
        cmocka_unit_test(short_address_block_is_refused),
        cmocka_unit_test(over_the_cap_is_refused),
    };
    return cmocka_run_group_tests_name("proxyv2", tests, NULL, NULL);
}
