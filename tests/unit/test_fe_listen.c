/* SPDX-License-Identifier: MIT */
/* test_fe_listen: the front end's listen-address lists and sockets (gateway/fe_listen.c): "off"
 * and empty lists, IPv4 and bracketed IPv6, empty entries skipped, at most MAX_ADDRS per
 * protocol, errors that name the option; the probe that refuses an address somebody holds, and
 * SO_REUSEPORT sockets that every worker can open on one address. */
#include "fe_internal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <setjmp.h>

#include <cmocka.h>

typedef struct {
    listen_addr_t addrs[2 * MAX_ADDRS];
    size_t n;
    char err[256];
} fixture_t;

static int setup(void **state)
{
    *state = calloc(1, sizeof(fixture_t));
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static int parse(fixture_t *f, const char *text, bool udp)
{
    return fe_listen_parse(f->addrs, &f->n, text, udp, f->err, sizeof(f->err));
}

static uint16_t port_of(const listen_addr_t *a)
{
    if (a->addr.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&a->addr)->sin_port);
    return ntohs(((const struct sockaddr_in6 *)&a->addr)->sin6_port);
}

/* A TCP port on 127.0.0.1 that was free a moment ago, or 0. */
static uint16_t free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    uint16_t port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
        port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

static void off_and_empty_lists_add_nothing(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "off", true), 0);
    assert_int_equal(parse(f, "", false), 0);
    assert_int_equal(parse(f, NULL, true), 0);
    assert_int_equal(f->n, 0);
}

static void ipv4_and_ipv6_addresses_parse(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "127.0.0.1:6969,[::1]:6970", true), 0);
    assert_int_equal(f->n, 2);
    assert_int_equal(f->addrs[0].addr.ss_family, AF_INET);
    assert_int_equal(port_of(&f->addrs[0]), 6969);
    assert_true(f->addrs[0].udp);
    assert_int_equal(f->addrs[1].addr.ss_family, AF_INET6);
    assert_int_equal(port_of(&f->addrs[1]), 6970);
}

static void lists_append_and_keep_their_protocol(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "127.0.0.1:1", true), 0);
    assert_int_equal(parse(f, "127.0.0.1:2", false), 0);
    assert_int_equal(f->n, 2);
    assert_true(f->addrs[0].udp);
    assert_false(f->addrs[1].udp);
}

static void empty_entries_are_skipped(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, ",127.0.0.1:1,,127.0.0.1:2,", false), 0);
    assert_int_equal(f->n, 2);
}

static void ninth_address_of_one_protocol_is_refused(void **state)
{
    fixture_t *f = *state;
    char list[512] = "";
    for (int i = 1; i <= MAX_ADDRS + 1; i++) {
        char one[32];
        snprintf(one, sizeof(one), "%s127.0.0.1:%d", i > 1 ? "," : "", i);
        strcat(list, one);
    }
    assert_int_equal(parse(f, list, true), -1);
    assert_non_null(strstr(f->err, "too many listen addresses"));
}

static void each_protocol_has_its_own_limit(void **state)
{
    fixture_t *f = *state;
    char list[512] = "";
    for (int i = 1; i <= MAX_ADDRS; i++) {
        char one[32];
        snprintf(one, sizeof(one), "%s127.0.0.1:%d", i > 1 ? "," : "", i);
        strcat(list, one);
    }
    assert_int_equal(parse(f, list, true), 0);
    assert_int_equal(parse(f, list, false), 0);
    assert_int_equal(f->n, 2 * MAX_ADDRS);
}

static void too_long_entry_is_refused(void **state)
{
    fixture_t *f = *state;
    char list[200];
    memset(list, '1', sizeof(list) - 1);
    list[sizeof(list) - 1] = '\0';
    assert_int_equal(parse(f, list, false), -1);
    assert_non_null(strstr(f->err, "too long"));
}

static void bad_address_error_names_the_option(void **state)
{
    fixture_t *f = *state;
    assert_int_equal(parse(f, "127.0.0.1:1,nonsense:2", false), -1);
    assert_int_equal(strncmp(f->err, "--http ", 7), 0);
    assert_int_equal(parse(f, "127.0.0.1:0", true), -1);
    assert_int_equal(strncmp(f->err, "--udp ", 6), 0);
}

static void probe_refuses_an_address_in_use(void **state)
{
    fixture_t *f = *state;
    uint16_t port = free_tcp_port();
    assert_true(port != 0);
    char text[32];
    snprintf(text, sizeof(text), "127.0.0.1:%u", port);
    assert_int_equal(parse(f, text, false), 0);
    assert_int_equal(fe_listen_probe(&f->addrs[0], f->err, sizeof(f->err)), 0);
    int other = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(other, (struct sockaddr *)&f->addrs[0].addr, f->addrs[0].len), 0);
    assert_int_equal(listen(other, 1), 0);
    assert_int_equal(fe_listen_probe(&f->addrs[0], f->err, sizeof(f->err)), -1);
    assert_non_null(strstr(f->err, "already in use"));
    close(other);
}

static void every_worker_opens_its_own_socket_on_one_address(void **state)
{
    fixture_t *f = *state;
    uint16_t port = free_tcp_port();
    assert_true(port != 0);
    char text[32];
    snprintf(text, sizeof(text), "127.0.0.1:%u", port);
    assert_int_equal(parse(f, text, false), 0);
    int a = fe_listen_open(&f->addrs[0], f->err, sizeof(f->err));
    int b = fe_listen_open(&f->addrs[0], f->err, sizeof(f->err));
    assert_true(a >= 0);
    assert_true(b >= 0);
    close(a);
    close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(off_and_empty_lists_add_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(ipv4_and_ipv6_addresses_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(lists_append_and_keep_their_protocol, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_entries_are_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(ninth_address_of_one_protocol_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(each_protocol_has_its_own_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(too_long_entry_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_address_error_names_the_option, setup, teardown),
        cmocka_unit_test_setup_teardown(probe_refuses_an_address_in_use, setup, teardown),
        cmocka_unit_test_setup_teardown(every_worker_opens_its_own_socket_on_one_address, setup,
                                        teardown),
    };
    return cmocka_run_group_tests_name("fe_listen", tests, NULL, NULL);
}
