/* SPDX-License-Identifier: MIT */
/* test_connid: connection ids agree across gateways, expire on time, survive key rotation, and
 * follow the documented derivation exactly (recomputed here with libsodium directly). */
#include "announce.h"
#include "connid.h"

#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

static const uint8_t secret_a[CONNID_SECRET_LEN] = {
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
static const uint8_t secret_b[CONNID_SECRET_LEN] = {0x42};

/* ::ffff:192.0.2.1, ::ffff:192.0.2.2, 2001:db8::1 */
static const uint8_t addr_v4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
static const uint8_t addr_v4b[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 2};
static const uint8_t addr_v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

/* A time at the start of a bucket, far from a rotation (86400 * 19000 + 3000). */
#define T0 ((uint64_t)1641600000 + 3000)

/* Fixture: two gateways sharing secret_a, default config. */
typedef struct {
    connid_t *a;
    connid_t *b;
} pair_t;

static int setup_pair(void **state)
{
    static pair_t p;
    p.a = connid_new(secret_a, NULL);
    p.b = connid_new(secret_a, NULL);
    *state = &p;
    return p.a && p.b ? 0 : -1;
}

static int teardown_pair(void **state)
{
    pair_t *p = *state;
    connid_destroy(&p->a);
    connid_destroy(&p->b);
    return 0;
}

static void same_secret_gives_same_id_on_two_gateways(void **state)
{
    pair_t *p = *state;
    uint64_t id = connid_issue(p->a, addr_v4, T0);
    assert_true(id == connid_issue(p->b, addr_v4, T0));
    assert_true(connid_check(p->b, id, addr_v4, T0 + 1));
}

static void same_bucket_gives_same_id(void **state)
{
    pair_t *p = *state;
    assert_true(connid_issue(p->a, addr_v6, T0) == connid_issue(p->a, addr_v6, T0 + 29));
    assert_true(connid_issue(p->a, addr_v6, T0) != connid_issue(p->a, addr_v6, T0 + 30));
}

static void different_address_gives_different_id(void **state)
{
    pair_t *p = *state;
    uint64_t id = connid_issue(p->a, addr_v4, T0);
    assert_true(id != connid_issue(p->a, addr_v4b, T0));
    assert_true(id != connid_issue(p->a, addr_v6, T0));
    assert_false(connid_check(p->a, id, addr_v4b, T0));
}

static void port_does_not_change_id(void **state)
{
    pair_t *p = *state;
    /* The same client from two source ports: the 16-byte form, hence the id, is the same. */
    endpoint_t e1 = {.family = 4, .addr = {192, 0, 2, 1}, .port = 6881};
    endpoint_t e2 = {.family = 4, .addr = {192, 0, 2, 1}, .port = 40000};
    uint8_t a1[16], a2[16];
    announce_endpoint_to16(&e1, a1);
    announce_endpoint_to16(&e2, a2);
    uint64_t id = connid_issue(p->a, a1, T0);
    assert_true(connid_check(p->b, id, a2, T0));
    assert_memory_equal(a1, addr_v4, 16);
}

static void id_is_valid_for_lifetime_and_grace(void **state)
{
    pair_t *p = *state;
    uint64_t id = connid_issue(p->a, addr_v4, T0);
    assert_true(connid_check(p->b, id, addr_v4, T0));
    assert_true(connid_check(p->b, id, addr_v4, T0 + 120));
    assert_true(connid_check(p->b, id, addr_v4, T0 + 120 + 180));
}

static void id_is_valid_one_bucket_past_grace_at_most(void **state)
{
    pair_t *p = *state;
    /* Issued at a bucket's start: accepted until lifetime + grace + one bucket, not a second
     * later. */
    uint64_t id = connid_issue(p->a, addr_v4, T0);
    assert_true(connid_check(p->b, id, addr_v4, T0 + 330));
    assert_false(connid_check(p->b, id, addr_v4, T0 + 331));
}

static void id_issued_late_in_bucket_is_valid_full_window(void **state)
{
    pair_t *p = *state;
    uint64_t id = connid_issue(p->a, addr_v4, T0 + 29);
    assert_true(connid_check(p->b, id, addr_v4, T0 + 29 + 300));
}

static void id_is_rejected_well_past_expiry(void **state)
{
    pair_t *p = *state;
    uint64_t id = connid_issue(p->a, addr_v4, T0);
    assert_false(connid_check(p->b, id, addr_v4, T0 + 400));
    assert_false(connid_check(p->b, id, addr_v4, T0 + 3600));
    assert_false(connid_check(p->b, id, addr_v4, T0 + 86400));
}

static void id_from_next_bucket_is_accepted(void **state)
{
    pair_t *p = *state;
    /* The issuing gateway's clock runs up to one bucket ahead of the checker's. */
    uint64_t id = connid_issue(p->a, addr_v4, T0 + 30);
    assert_true(connid_check(p->b, id, addr_v4, T0));
}

static void id_from_two_buckets_ahead_is_rejected(void **state)
{
    pair_t *p = *state;
    uint64_t id = connid_issue(p->a, addr_v4, T0 + 60);
    assert_false(connid_check(p->b, id, addr_v4, T0));
}

static void tampered_id_is_rejected(void **state)
{
    pair_t *p = *state;
    uint64_t id = connid_issue(p->a, addr_v4, T0);
    for (int bit = 0; bit < 64; bit++)
        assert_false(connid_check(p->b, id ^ ((uint64_t)1 << bit), addr_v4, T0));
}

static void id_survives_key_rotation(void **state)
{
    pair_t *p = *state;
    /* Issued in the last second of epoch 19001, checked after the rotation by a gateway that
     * has only seen the new epoch (its cache cannot hold the old key by accident). */
    uint64_t rot = (uint64_t)86400 * 19001;
    connid_t *fresh = connid_new(secret_a, NULL);
    assert_non_null(fresh);
    uint64_t id = connid_issue(p->a, addr_v6, rot - 1);
    assert_true(connid_check(fresh, id, addr_v6, rot + 1));
    assert_true(connid_check(fresh, id, addr_v6, rot + 299));
    assert_false(connid_check(fresh, id, addr_v6, rot + 400));
    connid_destroy(&fresh);
}

static void id_from_next_epoch_is_accepted(void **state)
{
    pair_t *p = *state;
    uint64_t rot = (uint64_t)86400 * 19001;
    uint64_t id = connid_issue(p->a, addr_v6, rot);
    assert_true(connid_check(p->b, id, addr_v6, rot - 1));
}

static void key_changes_with_epoch(void **state)
{
    (void)state;
    /* In epoch 0 of both configs the key is key(0); at t = 7200 one config is still in epoch 0
     * and the other in epoch 2, so the ids differ only because the key rotated. */
    connid_config_t hourly = connid_default_config;
    hourly.rotate_s = 3600;
    connid_t *daily = connid_new(secret_a, NULL);
    connid_t *h = connid_new(secret_a, &hourly);
    assert_non_null(daily);
    assert_non_null(h);
    assert_true(connid_issue(daily, addr_v4, 60) == connid_issue(h, addr_v4, 60));
    assert_true(connid_issue(daily, addr_v4, 7200) != connid_issue(h, addr_v4, 7200));
    connid_destroy(&daily);
    connid_destroy(&h);
}

static void different_secret_rejects(void **state)
{
    pair_t *p = *state;
    connid_t *other = connid_new(secret_b, NULL);
    assert_non_null(other);
    uint64_t id = connid_issue(other, addr_v4, T0);
    assert_true(id != connid_issue(p->a, addr_v4, T0));
    assert_false(connid_check(p->a, id, addr_v4, T0));
    connid_destroy(&other);
}

static void id_matches_documented_derivation(void **state)
{
    pair_t *p = *state;
    assert_true(sodium_init() >= 0);
    uint64_t now = T0 + 17;
    uint64_t bucket = now / 30, epoch = bucket * 30 / 86400;
    uint8_t msg[8], key[crypto_shorthash_KEYBYTES];
    for (int i = 0; i < 8; i++)
        msg[i] = (uint8_t)(epoch >> (56 - 8 * i));
    assert_int_equal(crypto_generichash(key, sizeof(key), msg, 8, secret_a, sizeof(secret_a)), 0);
    uint8_t in[24], out[8];
    memcpy(in, addr_v6, 16);
    for (int i = 0; i < 8; i++)
        in[16 + i] = (uint8_t)(bucket >> (56 - 8 * i));
    crypto_shorthash(out, in, sizeof(in), key);
    uint64_t want = 0;
    for (int i = 7; i >= 0; i--)
        want = want << 8 | out[i];
    assert_true(connid_issue(p->a, addr_v6, now) == want);
}

static void ids_stay_right_when_every_bucket_is_an_epoch(void **state)
{
    (void)state;
    /* rotate == bucket: a check walks a dozen epochs and the two-slot cache keeps evicting;
     * results must not depend on what is cached. */
    connid_config_t cfg = connid_default_config;
    cfg.rotate_s = cfg.bucket_s;
    connid_t *a = connid_new(secret_a, &cfg);
    connid_t *b = connid_new(secret_a, &cfg);
    assert_non_null(a);
    assert_non_null(b);
    uint64_t ids[12];
    for (int i = 0; i < 12; i++)
        ids[i] = connid_issue(a, addr_v4, T0 + 30 * (uint64_t)i);
    uint64_t now = T0 + 330;
    for (int i = 11; i >= 0; i--) /* each id was issued at most 330 s before now */
        assert_true(connid_check(b, ids[i], addr_v4, now));
    for (int i = 0; i < 12; i++)
        assert_true(connid_issue(b, addr_v4, T0 + 30 * (uint64_t)i) == ids[i]);
    assert_false(connid_check(b, ids[0], addr_v4, now + 1));
    assert_true(connid_check(b, ids[1], addr_v4, now + 1));
    connid_destroy(&a);
    connid_destroy(&b);
}

static void works_near_time_zero(void **state)
{
    pair_t *p = *state;
    uint64_t id = connid_issue(p->a, addr_v4, 0);
    assert_true(connid_check(p->b, id, addr_v4, 0));
    assert_true(connid_check(p->b, id, addr_v4, 330));
    assert_false(connid_check(p->b, id, addr_v4, 331));
}

static void works_at_end_of_time(void **state)
{
    (void)state;
    connid_config_t cfg = {.lifetime_s = 2, .grace_s = 1, .bucket_s = 1, .rotate_s = 1};
    connid_t *c = connid_new(secret_a, &cfg);
    assert_non_null(c);
    uint64_t id = connid_issue(c, addr_v4, UINT64_MAX);
    assert_true(connid_check(c, id, addr_v4, UINT64_MAX));
    uint64_t old = connid_issue(c, addr_v4, UINT64_MAX - 4);
    assert_true(connid_check(c, old, addr_v4, UINT64_MAX));
    assert_false(connid_check(c, connid_issue(c, addr_v4, UINT64_MAX - 5), addr_v4, UINT64_MAX));
    connid_destroy(&c);
}

static void day_long_grace_accepts_day_old_id(void **state)
{
    (void)state;
    /* The gateway's --connid-grace goes up to a day; the window then spans a key rotation. */
    connid_config_t cfg = connid_default_config;
    cfg.grace_s = 86400;
    connid_t *c = connid_new(secret_a, &cfg);
    assert_non_null(c);
    uint64_t id = connid_issue(c, addr_v6, T0);
    assert_true(connid_check(c, id, addr_v6, T0 + 120 + 86400));
    assert_false(connid_check(c, id, addr_v6, T0 + 120 + 86400 + 31));
    connid_destroy(&c);
}

static void bad_configs_are_refused(void **state)
{
    (void)state;
    const connid_config_t bad[] = {
        {.lifetime_s = 120, .grace_s = 180, .bucket_s = 0, .rotate_s = 86400},
        {.lifetime_s = 120, .grace_s = 180, .bucket_s = 30, .rotate_s = 0},
        {.lifetime_s = 120, .grace_s = 180, .bucket_s = 30, .rotate_s = 86401},
        {.lifetime_s = 120, .grace_s = 180, .bucket_s = 60, .rotate_s = 30},
        /* a window of millions of buckets: each rejected id would cost that many hashes */
        {.lifetime_s = UINT32_MAX, .grace_s = UINT32_MAX, .bucket_s = 1, .rotate_s = 1},
        {.lifetime_s = 4094, .grace_s = 1, .bucket_s = 1, .rotate_s = 60},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(connid_new(secret_a, &bad[i]));
}

static void good_configs_are_accepted(void **state)
{
    (void)state;
    const connid_config_t good[] = {
        connid_default_config,
        {.lifetime_s = 120, .grace_s = 86400, .bucket_s = 30, .rotate_s = 86400},
        {.lifetime_s = 0, .grace_s = 0, .bucket_s = 1, .rotate_s = 1},
        {.lifetime_s = 4093, .grace_s = 1, .bucket_s = 1, .rotate_s = 60},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        connid_t *c = connid_new(secret_a, &good[i]);
        assert_non_null(c);
        connid_destroy(&c);
    }
}

static void default_config_is_documented_one(void **state)
{
    (void)state;
    assert_int_equal(connid_default_config.lifetime_s, 120);
    assert_int_equal(connid_default_config.grace_s, 180);
    assert_int_equal(connid_default_config.bucket_s, 30);
    assert_int_equal(connid_default_config.rotate_s, 86400);
}

static void destroy_nulls_pointer_and_is_null_safe(void **state)
{
    (void)state;
    connid_t *c = connid_new(secret_a, NULL);
    assert_non_null(c);
    connid_destroy(&c);
    assert_null(c);
    connid_destroy(&c);
    connid_destroy(NULL);
}

static void secret_is_copied(void **state)
{
    (void)state;
    uint8_t s[CONNID_SECRET_LEN];
    memcpy(s, secret_a, sizeof(s));
    connid_t *c = connid_new(s, NULL);
    connid_t *ref = connid_new(secret_a, NULL);
    assert_non_null(c);
    assert_non_null(ref);
    memset(s, 0, sizeof(s));
    assert_true(connid_issue(c, addr_v4, T0) == connid_issue(ref, addr_v4, T0));
    connid_destroy(&c);
    connid_destroy(&ref);
}

static void hex_secret_parses(void **state)
{
    (void)state;
    uint8_t out[CONNID_SECRET_LEN];
    assert_int_equal(connid_secret_from_hex(
                         "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", out),
                     0);
    assert_memory_equal(out, secret_a, sizeof(out));
    assert_int_equal(connid_secret_from_hex(
                         "000102030405060708090A0B0C0D0E0F101112131415161718191a1B1c1D1e1F", out),
                     0);
    assert_memory_equal(out, secret_a, sizeof(out));
    assert_int_equal(connid_secret_from_hex(
                         "FFffFFffFFffFFffFFffFFffFFffFFffFFffFFffFFffFFffFFffFFffFFffFFff", out),
                     0);
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(out[i], 0xff);
}

static void bad_hex_secret_is_refused_and_out_untouched(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "00",
        /* 63 and 65 digits */
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f0",
        /* a non-hex digit first, in the middle, last */
        "g00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "000102030405060708090a0b0c0d0e0f1011121314151617:8191a1b1c1d1e1f",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1G",
        /* prefix, whitespace */
        "0x0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        " 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
        "000102030405060708090a0b0c0d0e0f 101112131415161718191a1b1c1d1e1f",
    };
    uint8_t out[CONNID_SECRET_LEN];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(out, 0xaa, sizeof(out));
        assert_int_equal(connid_secret_from_hex(bad[i], out), -1);
        for (size_t j = 0; j < sizeof(out); j++)
            assert_int_equal(out[j], 0xaa);
    }
    assert_int_equal(connid_secret_from_hex(NULL, out), -1);
}

/* Vectors from Python's hashlib.blake2b(msg, digest_size=8, key=secret), computed apart. */
static void fingerprint_matches_vectors_and_differs_by_secret(void **state)
{
    (void)state;
    uint8_t a[CONNID_SECRET_LEN], b[CONNID_SECRET_LEN] = {0};
    for (int i = 0; i < CONNID_SECRET_LEN; i++)
        a[i] = (uint8_t)i;
    char fa[CONNID_FINGERPRINT_LEN], fb[CONNID_FINGERPRINT_LEN];
    connid_fingerprint(a, fa);
    connid_fingerprint(b, fb);
    assert_string_equal(fa, "e9a4116bce6d50f3");
    assert_string_equal(fb, "f625613002c5974d");
}

int main(void)
{
#define PAIR(t) cmocka_unit_test_setup_teardown(t, setup_pair, teardown_pair)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fingerprint_matches_vectors_and_differs_by_secret),
        PAIR(same_secret_gives_same_id_on_two_gateways),
        PAIR(same_bucket_gives_same_id),
        PAIR(different_address_gives_different_id),
        PAIR(port_does_not_change_id),
        PAIR(id_is_valid_for_lifetime_and_grace),
        PAIR(id_is_valid_one_bucket_past_grace_at_most),
        PAIR(id_issued_late_in_bucket_is_valid_full_window),
        PAIR(id_is_rejected_well_past_expiry),
        PAIR(id_from_next_bucket_is_accepted),
        PAIR(id_from_two_buckets_ahead_is_rejected),
        PAIR(tampered_id_is_rejected),
        PAIR(id_survives_key_rotation),
        PAIR(id_from_next_epoch_is_accepted),
        cmocka_unit_test(key_changes_with_epoch),
        PAIR(different_secret_rejects),
        PAIR(id_matches_documented_derivation),
        cmocka_unit_test(ids_stay_right_when_every_bucket_is_an_epoch),
        PAIR(works_near_time_zero),
        cmocka_unit_test(works_at_end_of_time),
        cmocka_unit_test(day_long_grace_accepts_day_old_id),
        cmocka_unit_test(bad_configs_are_refused),
        cmocka_unit_test(good_configs_are_accepted),
        cmocka_unit_test(default_config_is_documented_one),
        cmocka_unit_test(destroy_nulls_pointer_and_is_null_safe),
        cmocka_unit_test(secret_is_copied),
        cmocka_unit_test(hex_secret_parses),
        cmocka_unit_test(bad_hex_secret_is_refused_and_out_untouched),
    };
#undef PAIR
    return cmocka_run_group_tests_name("connid", tests, NULL, NULL);
}
