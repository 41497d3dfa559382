/* SPDX-License-Identifier: MIT */
/* Unit tests of proto/members: the static member list, ids and endpoints, the epoch. */
#include "members.h"

#include <stdio.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void set_member(partition_member_t *m, const char *id, const char *endpoint)
{
    memset(m, 0, sizeof(*m));
    snprintf(m->id, sizeof(m->id), "%s", id);
    snprintf(m->endpoint, sizeof(m->endpoint), "%s", endpoint);
}

static void ids_and_endpoints(void **state)
{
    (void)state;
    assert_true(members_valid_id("node-1", 6));
    assert_false(members_valid_id("", 0));
    assert_false(members_valid_id("a=b", 3));
    assert_false(members_valid_id("a b", 3));
    assert_false(members_valid_id("a,b", 3));
    assert_true(members_valid_endpoint("tcp://[::1]:7000", 16));
    assert_false(members_valid_endpoint("tcp://h:1,x", 11));
    assert_false(members_valid_endpoint("", 0));
}

/* ---- tests ------------------------------------------------------------------------------- */

static void parse_nodes_accepts_a_list(void **state)
{
    (void)state;
    partition_member_t m[4];
    size_t n;
    char err[128];
    assert_int_equal(members_parse(" a=tcp://h:1 , b=tcp://[::1]:2", m, 4, &n, err, sizeof(err)),
                     0);
    assert_int_equal(n, 2);
    assert_string_equal(m[0].id, "a");
    assert_string_equal(m[0].endpoint, "tcp://h:1");
    assert_string_equal(m[1].id, "b");
    assert_string_equal(m[1].endpoint, "tcp://[::1]:2");
}

static void parse_nodes_rejects_bad_lists(void **state)
{
    (void)state;
    partition_member_t m[2];
    size_t n;
    char err[128];
    const char *bad[] = {"",        "a",           "=tcp://h:1", "a=",    "a=tcp://h:1,",
                         "a=x,a=y", "a=x,b=y,c=z", "a b=x",      "a=x y", ",a=x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(members_parse(bad[i], m, 2, &n, err, sizeof(err)), -1);
        assert_true(err[0] != '\0');
    }
    char longid[PARTITION_ID_MAX + 8];
    memset(longid, 'x', PARTITION_ID_MAX);
    snprintf(longid + PARTITION_ID_MAX, 8, "=tcp");
    assert_int_equal(members_parse(longid, m, 2, &n, err, sizeof(err)), -1);
}

/* Vectors from a reference SipHash-2-4 written in Python (checked against the SipHash paper's
 * vector: key 00..0f, empty message -> 0x726fdb47dd0e0e31). */
static void epoch_matches_vectors(void **state)
{
    (void)state;
    partition_member_t m[3];
    set_member(&m[0], "node-a", "tcp://127.0.0.1:7001");
    assert_int_equal(members_epoch(m, 1), 0xd65cfd3daa0caf0bULL);
    set_member(&m[1], "node-b", "tcp://127.0.0.1:7002");
    assert_int_equal(members_epoch(m, 2), 0xcff030c03fb09c17ULL);
    set_member(&m[0], "b", "tcp://h:2");
    set_member(&m[1], "a", "tcp://h:1");
    set_member(&m[2], "c", "tcp://h:3");
    assert_int_equal(members_epoch(m, 3), 0x923d1109a936900cULL);
}

static void epoch_ignores_order_but_not_endpoints(void **state)
{
    (void)state;
    partition_member_t a[3], b[3];
    set_member(&a[0], "x", "tcp://h:1");
    set_member(&a[1], "y", "tcp://h:2");
    set_member(&a[2], "z", "tcp://h:3");
    b[0] = a[2];
    b[1] = a[0];
    b[2] = a[1];
    assert_int_equal(members_epoch(a, 3), members_epoch(b, 3));
    set_member(&b[0], "z", "tcp://h:4");
    assert_int_not_equal(members_epoch(a, 3), members_epoch(b, 3));
    /* "ab"+"c" must not collide with "a"+"bc": the NULs separate fields. */
    set_member(&a[0], "ab", "c");
    set_member(&b[0], "a", "bc");
    assert_int_not_equal(members_epoch(a, 1), members_epoch(b, 1));
}

static const char key[] = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

static members_advert_t advert(const char *ep, const char *k, unsigned workers)
{
    members_advert_t a = {.workers = workers};
    snprintf(a.endpoint, sizeof(a.endpoint), "%s", ep);
    snprintf(a.key, sizeof(a.key), "%s", k ? k : "");
    return a;
}

static void curve_key_rides_with_the_endpoint(void **state)
{
    (void)state;
    char adv[PARTITION_ENDPOINT_MAX];
    members_advert_t in = advert("tcp://[::1]:7000", key, 1), out;
    assert_int_equal(members_join(&in, adv, sizeof(adv)), 0);
    assert_string_equal(adv, "tcp://[::1]:7000|curve=rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
    assert_true(members_valid_endpoint(adv, strlen(adv)));
    assert_int_equal(members_split(adv, &out), 0);
    assert_string_equal(out.endpoint, "tcp://[::1]:7000");
    assert_string_equal(out.key, key);
    assert_int_equal(out.workers, 1);
    /* A static list carries it too ('=' in the key is after the id's '='). */
    partition_member_t m[2];
    size_t n;
    char err[128], list[300];
    snprintf(list, sizeof(list), "a=%s,b=tcp://h:2", adv);
    assert_int_equal(members_parse(list, m, 2, &n, err, sizeof(err)), 0);
    assert_string_equal(m[0].endpoint, adv);
    /* Without a key and one worker: the whole text, exactly what a node wrote before workers. */
    in = advert("tcp://h:1", NULL, 1);
    assert_int_equal(members_join(&in, adv, sizeof(adv)), 0);
    assert_string_equal(adv, "tcp://h:1");
    assert_int_equal(members_split("tcp://h:1", &out), 0);
    assert_string_equal(out.endpoint, "tcp://h:1");
    assert_string_equal(out.key, "");
    assert_int_equal(out.workers, 1);
    /* Malformed tails: no key taken, the endpoint still split off. */
    const char *bad[] = {"tcp://h:1|",
                         "tcp://h:1|curve=",
                         "tcp://h:1|curve=short",
                         "tcp://h:1|key=rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7",
                         "tcp://h:1|curve=rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7x",
                         "tcp://h:1|curve=rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(members_split(bad[i], &out), -1);
        assert_string_equal(out.endpoint, "tcp://h:1");
        assert_string_equal(out.key, "");
        assert_int_equal(out.workers, 1);
    }
    in = advert("tcp://h:1", "short", 1);
    assert_int_equal(members_join(&in, adv, sizeof(adv)), -1);
    in = advert("tcp://h:1|x", key, 1);
    assert_int_equal(members_join(&in, adv, sizeof(adv)), -1);
    in = advert("tcp://h:1", key, 1);
    assert_int_equal(members_join(&in, adv, 20), -1);
}

static void worker_count_round_trips(void **state)
{
    (void)state;
    char adv[PARTITION_ENDPOINT_MAX];
    members_advert_t out;
    const struct {
        const char *ep, *key;
        unsigned workers;
        const char *text;
    } ok[] = {
        {"tcp://10.0.0.7:7000", NULL, 2, "tcp://10.0.0.7:7000|workers=2"},
        {"tcp://[::1]:7000", key, 3,
         "tcp://[::1]:7000|workers=3|curve=rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"},
        {"tcp://h:64512", NULL, 1024, "tcp://h:64512|workers=1024"},
        {"tcp://h:65534", NULL, 2, "tcp://h:65534|workers=2"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        members_advert_t in = advert(ok[i].ep, ok[i].key, ok[i].workers);
        assert_int_equal(members_join(&in, adv, sizeof(adv)), 0);
        assert_string_equal(adv, ok[i].text);
        assert_true(members_valid_endpoint(adv, strlen(adv)));
        assert_int_equal(members_split(adv, &out), 0);
        assert_string_equal(out.endpoint, ok[i].ep);
        assert_string_equal(out.key, ok[i].key ? ok[i].key : "");
        assert_int_equal(out.workers, ok[i].workers);
    }
    /* "workers=1" is read (an operator may write it in a static list), never written. */
    assert_int_equal(members_split("tcp://h:1|workers=1", &out), 0);
    assert_int_equal(out.workers, 1);
    /* A static list takes the same syntax. */
    partition_member_t m[2];
    size_t n;
    char err[128];
    assert_int_equal(
        members_parse("a=tcp://h:7000|workers=2,b=tcp://g:7000", m, 2, &n, err, sizeof(err)), 0);
    assert_int_equal(members_split(m[0].endpoint, &out), 0);
    assert_string_equal(out.endpoint, "tcp://h:7000");
    assert_int_equal(out.workers, 2);
}

static void bad_worker_counts_are_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "tcp://h:7000|workers=0",
        "tcp://h:7000|workers=1025",
        "tcp://h:7000|workers=x",
        "tcp://h:7000|workers=",
        "tcp://h:7000|workers=02",
        "tcp://h:7000|workers=-2",
        "tcp://h:7000|workers=2 ",
        "tcp://h:7000|workers=99999",
        "tcp://h:7000|workers=2|workers=2",
        "tcp://h:7000|workers=2|",
        "tcp://h:7000|Workers=2",
        "tcp://h:7000|worker=2",
        /* wrong order, or a key twice */
        "tcp://h:7000|curve=rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7|workers=2",
        ("tcp://h:7000|curve=rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7|curve=rq:rM>}U?@Lns47E1%kR."
         "o@n%FcmmsL/@{H8]yf7"),
        /* ports past 65535, or none to add to */
        "tcp://h:65535|workers=2",
        "tcp://h:*|workers=2",
        "tcp://h|workers=2",
        "ipc:///tmp/x|workers=2",
    };
    members_advert_t out;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (members_split(bad[i], &out) != -1)
            fail_msg("accepted %s", bad[i]);
        assert_string_equal(out.key, "");
        assert_int_equal(out.workers, 1);
    }
    char adv[PARTITION_ENDPOINT_MAX];
    members_advert_t in = advert("tcp://h:7000", NULL, 0);
    assert_int_equal(members_join(&in, adv, sizeof(adv)), -1);
    in = advert("tcp://h:7000", NULL, 1025);
    assert_int_equal(members_join(&in, adv, sizeof(adv)), -1);
    in = advert("tcp://h:65000", NULL, 1000);
    assert_int_equal(members_join(&in, adv, sizeof(adv)), -1);
    in = advert("tcp://h:*", NULL, 2);
    assert_int_equal(members_join(&in, adv, sizeof(adv)), -1);
    /* The longest endpoint that still carries 1024 workers and a key fits; one byte more not. */
    char ep[PARTITION_ENDPOINT_MAX];
    size_t room = PARTITION_ENDPOINT_MAX - 1 - strlen("|workers=1024|curve=") - 40;
    memset(ep, 'a', room);
    memcpy(ep, "tcp://", 6);
    memcpy(ep + room - 5, ":7000", 5);
    ep[room] = '\0';
    in = advert(ep, key, 1024);
    assert_int_equal(members_join(&in, adv, sizeof(adv)), 0);
    assert_int_equal(strlen(adv), PARTITION_ENDPOINT_MAX - 1);
    assert_int_equal(members_split(adv, &out), 0);
    assert_int_equal(out.workers, 1024);
    memmove(ep + 1, ep, room + 1);
    memcpy(ep, "tcp://a", 7);
    in = advert(ep, key, 1024);
    assert_int_equal(members_join(&in, adv, sizeof(adv)), -1);
}

static void worker_endpoints_are_consecutive_ports(void **state)
{
    (void)state;
    char ep[PARTITION_ENDPOINT_MAX];
    assert_int_equal(members_worker_endpoint("tcp://10.0.0.7:7000", 0, ep, sizeof(ep)), 0);
    assert_string_equal(ep, "tcp://10.0.0.7:7000");
    assert_int_equal(members_worker_endpoint("tcp://10.0.0.7:7000", 3, ep, sizeof(ep)), 0);
    assert_string_equal(ep, "tcp://10.0.0.7:7003");
    assert_int_equal(members_worker_endpoint("tcp://[::1]:7999", 1, ep, sizeof(ep)), 0);
    assert_string_equal(ep, "tcp://[::1]:8000");
    assert_int_equal(members_worker_endpoint("tcp://node-1.shoal:65534", 1, ep, sizeof(ep)), 0);
    assert_string_equal(ep, "tcp://node-1.shoal:65535");
    assert_int_equal(members_worker_endpoint("tcp://h:65535", 1, ep, sizeof(ep)), -1);
    assert_int_equal(members_worker_endpoint("tcp://h:*", 1, ep, sizeof(ep)), -1);
    assert_int_equal(members_worker_endpoint("tcp://h", 1, ep, sizeof(ep)), -1);
    assert_int_equal(members_worker_endpoint("tcp://h:7000", 1, ep, 12), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ids_and_endpoints),
        cmocka_unit_test(curve_key_rides_with_the_endpoint),
        cmocka_unit_test(worker_count_round_trips),
        cmocka_unit_test(bad_worker_counts_are_refused),
        cmocka_unit_test(worker_endpoints_are_consecutive_ports),
        cmocka_unit_test(parse_nodes_accepts_a_list),
        cmocka_unit_test(parse_nodes_rejects_bad_lists),
        cmocka_unit_test(epoch_matches_vectors),
        cmocka_unit_test(epoch_ignores_order_but_not_endpoints),
    };
    return cmocka_run_group_tests_name("members", tests, NULL, NULL);
}
