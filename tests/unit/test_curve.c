/* SPDX-License-Identifier: MIT */
/* test_curve: certificates and trust dirs as shoal-keygen (czmq's zcert_save) writes them, in a
 * private temp dir: what loads, what is refused at start, what a reload changes, and how a
 * gateway judges a node's advertised endpoint. */
#include "curve.h"
#include "members.h"

#include <czmq.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

typedef struct {
    char dir[256];
    char cert[300];  /* the node's secret part */
    char pub[300];   /* its public part */
    char trust[300]; /* a trust dir with one gateway's public certificate */
    char gw_key[CURVE_KEY_TXT];
} fix_t;

/* A new certificate pair at path (path and path_secret); its public key into key. */
static void make_cert(const char *path, char *key)
{
    zcert_t *c = zcert_new();
    assert_non_null(c);
    assert_int_equal(zcert_save(c, path), 0);
    if (key)
        snprintf(key, CURVE_KEY_TXT, "%s", zcert_public_txt(c));
    zcert_destroy(&c);
}

static int setup(void **state)
{
    fix_t *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/shoal-test-curve-XXXXXX");
    if (!f || !mkdtemp(f->dir))
        return -1;
    snprintf(f->pub, sizeof(f->pub), "%s/node", f->dir);
    snprintf(f->cert, sizeof(f->cert), "%s/node_secret", f->dir);
    snprintf(f->trust, sizeof(f->trust), "%s/trust", f->dir);
    make_cert(f->pub, NULL);
    mkdir(f->trust, 0700);
    char gw[400];
    snprintf(gw, sizeof(gw), "%s/gw1", f->trust);
    zcert_t *c = zcert_new();
    zcert_save_public(c, gw); /* the public part only, as a trust dir holds */
    snprintf(f->gw_key, sizeof(f->gw_key), "%s", zcert_public_txt(c));
    zcert_destroy(&c);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix_t *f = *state;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static curve_t *load(const fix_t *f, const char *cert, const char *trust, char *err, size_t len)
{
    (void)f;
    curveopts_t o = {.cert = cert, .trust = trust};
    return curve_new(&o, err, len);
}

static void loads_cert_and_trust(void **state)
{
    fix_t *f = *state;
    char err[512] = "";
    curve_t *c = load(f, f->cert, f->trust, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(curve_trusted(c, NULL), 1);
    assert_true(curve_trusts(c, f->gw_key));
    char pub[CURVE_KEY_TXT], sec[CURVE_KEY_TXT];
    curve_keys(c, pub, sec);
    assert_int_equal(strlen(pub), 40);
    assert_int_equal(strlen(sec), 40);
    assert_false(curve_trusts(c, pub)); /* its own key is not in the dir */
    assert_false(curve_trusts(c, "short"));
    curve_destroy(&c);
    assert_null(c);
}

static void refuses_bad_options(void **state)
{
    fix_t *f = *state;
    char err[512], missing[400], empty[400], notcert[520];
    snprintf(missing, sizeof(missing), "%s/nope", f->dir);
    snprintf(empty, sizeof(empty), "%s/empty", f->dir);
    mkdir(empty, 0700);
    snprintf(notcert, sizeof(notcert), "%s/readme", empty);
    FILE *fp = fopen(notcert, "w");
    fputs("not a certificate\n", fp);
    fclose(fp);

    assert_null(load(f, "", f->trust, err, sizeof(err)));
    assert_non_null(strstr(err, "--curve-trust needs --curve-cert"));
    assert_null(load(f, f->cert, "", err, sizeof(err)));
    assert_non_null(strstr(err, "--curve-cert needs --curve-trust"));
    assert_null(load(f, missing, f->trust, err, sizeof(err)));
    assert_non_null(strstr(err, "No such file"));
    /* The public part, with no _secret beside it, holds no secret key. */
    char lone[400];
    snprintf(lone, sizeof(lone), "%s/gw1", f->trust);
    assert_null(load(f, lone, f->trust, err, sizeof(err)));
    assert_non_null(strstr(err, "only a public key"));
    assert_null(load(f, notcert, f->trust, err, sizeof(err)));
    assert_non_null(strstr(err, "not a CURVE certificate"));
    assert_null(load(f, f->cert, missing, err, sizeof(err)));
    assert_non_null(strstr(err, "--curve-trust"));
    assert_null(load(f, f->cert, empty, err, sizeof(err)));
    assert_non_null(strstr(err, "no public certificate"));
    if (geteuid() != 0) { /* root reads anything */
        chmod(f->cert, 0);
        assert_null(load(f, f->cert, f->trust, err, sizeof(err)));
        assert_non_null(strstr(err, "Permission denied"));
        chmod(f->cert, 0600);
    }
}

static void skips_files_that_are_not_certificates(void **state)
{
    fix_t *f = *state;
    char path[400], err[512];
    snprintf(path, sizeof(path), "%s/README", f->trust);
    FILE *fp = fopen(path, "w");
    fputs("gateway keys live here\n", fp);
    fclose(fp);
    curve_t *c = load(f, f->cert, f->trust, err, sizeof(err));
    assert_non_null(c);
    size_t skipped = 0;
    assert_int_equal(curve_trusted(c, &skipped), 1);
    assert_int_equal(skipped, 1);
    curve_destroy(&c);
}

static void reload_adds_and_removes_keys(void **state)
{
    fix_t *f = *state;
    char err[512], path[400], key2[CURVE_KEY_TXT];
    curve_t *c = load(f, f->cert, f->trust, err, sizeof(err));
    assert_non_null(c);
    uint64_t v = curve_version(c), g = curve_generation(c);
    snprintf(path, sizeof(path), "%s/gw2", f->trust);
    make_cert(path, key2); /* public and secret part: both name the same key */
    assert_false(curve_trusts(c, key2));
    bool changed = true;
    assert_int_equal(curve_reload(c, &changed, err, sizeof(err)), 2);
    assert_false(changed);
    assert_true(curve_trusts(c, key2));
    assert_true(curve_version(c) != v);
    assert_int_equal(curve_generation(c), g);
    /* The old key goes: the next reload refuses it. */
    snprintf(path, sizeof(path), "%s/gw1", f->trust);
    unlink(path);
    assert_int_equal(curve_reload(c, NULL, err, sizeof(err)), 1);
    assert_false(curve_trusts(c, f->gw_key));
    /* A failed reload (the dir emptied) keeps the previous set. */
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -f '%s'/*", f->trust);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(curve_reload(c, NULL, err, sizeof(err)), -1);
    assert_true(curve_trusts(c, key2));
    curve_destroy(&c);
}

static void reload_takes_a_new_certificate(void **state)
{
    fix_t *f = *state;
    char err[512], before[CURVE_KEY_TXT], after[CURVE_KEY_TXT];
    curve_t *c = load(f, f->cert, f->trust, err, sizeof(err));
    assert_non_null(c);
    curve_public(c, before);
    uint64_t g = curve_generation(c);
    unlink(f->pub);
    unlink(f->cert);
    make_cert(f->pub, NULL);
    bool changed = false;
    assert_int_equal(curve_reload(c, &changed, err, sizeof(err)), 1);
    assert_true(changed);
    curve_public(c, after);
    assert_string_not_equal(before, after);
    assert_true(curve_generation(c) != g);
    curve_destroy(&c);
}

static void judges_advertised_endpoints(void **state)
{
    fix_t *f = *state;
    char err[512], adv[PARTITION_ENDPOINT_MAX];
    members_advert_t in = {.endpoint = "tcp://127.0.0.1:7000", .workers = 2}, a;
    curve_t *c = load(f, f->cert, f->trust, err, sizeof(err));
    assert_non_null(c);
    snprintf(in.key, sizeof(in.key), "%s", f->gw_key);
    assert_int_equal(members_join(&in, adv, sizeof(adv)), 0);
    assert_int_equal(curve_check_node(c, adv, &a), CURVE_NODE_OK);
    assert_string_equal(a.endpoint, "tcp://127.0.0.1:7000");
    assert_string_equal(a.key, f->gw_key);
    assert_int_equal(a.workers, 2);
    assert_int_equal(curve_check_node(NULL, adv, &a), CURVE_NODE_NEEDS_CURVE);
    assert_int_equal(curve_check_node(c, "tcp://127.0.0.1:7000", &a), CURVE_NODE_NO_KEY);
    assert_int_equal(curve_check_node(NULL, "tcp://127.0.0.1:7000", &a), CURVE_NODE_OK);
    assert_int_equal(curve_check_node(NULL, "tcp://127.0.0.1:7000|workers=3", &a), CURVE_NODE_OK);
    assert_int_equal(a.workers, 3);
    assert_int_equal(curve_check_node(c, "tcp://127.0.0.1:7000|workers=3", &a), CURVE_NODE_NO_KEY);
    in = (members_advert_t){.endpoint = "tcp://h:1", .workers = 1};
    curve_public(c, in.key);
    assert_int_equal(members_join(&in, adv, sizeof(adv)), 0);
    assert_int_equal(curve_check_node(c, adv, &a), CURVE_NODE_UNTRUSTED);
    assert_int_equal(curve_check_node(c, "tcp://h:1|curve=short", &a), CURVE_NODE_BAD_KEY);
    assert_int_equal(curve_check_node(NULL, "tcp://h:1|x", &a), CURVE_NODE_BAD_KEY);
    assert_string_equal(a.endpoint, "tcp://h:1");
    assert_int_equal(curve_check_node(NULL, "tcp://h:1|workers=0", &a), CURVE_NODE_BAD_KEY);
    assert_string_not_equal(curve_node_strerror(CURVE_NODE_UNTRUSTED), "");
    curve_destroy(&c);
}

/* A DEALER on port toward the server, CURVE with the certificate at cert (NULL: plaintext). */
static zsock_t *client(int port, const char *server_key, const char *cert)
{
    zsock_t *d = zsock_new(ZMQ_DEALER);
    assert_non_null(d);
    zsock_set_linger(d, 0);
    zsock_set_rcvtimeo(d, 1500);
    if (cert) {
        zcert_t *c = zcert_load(cert);
        assert_non_null(c);
        zcert_apply(c, d);
        zcert_destroy(&c);
        zsock_set_curve_serverkey(d, server_key);
    }
    assert_int_equal(zsock_connect(d, "tcp://127.0.0.1:%d", port), 0);
    return d;
}

/* Send "ping" from d; true if the server (echoing) answered "ping" within the timeout. */
static bool echoed(zsock_t *d, zsock_t *server)
{
    zstr_send(d, "ping");
    zpoller_t *p = zpoller_new(server, NULL);
    bool got = false;
    if (zpoller_wait(p, 1500) == server) {
        zmsg_t *m = zmsg_recv(server); /* [identity][ping]: sent back as is */
        zmsg_send(&m, server);
        char *back = zstr_recv(d);
        got = back && strcmp(back, "ping") == 0;
        zstr_free(&back);
    }
    zpoller_destroy(&p);
    return got;
}

static void server_serves_trusted_clients_only(void **state)
{
    fix_t *f = *state;
    char err[512], gw_cert[400], other[400], pub[CURVE_KEY_TXT];
    /* The trusted gateway needs its secret part: make a pair and trust its public part. */
    snprintf(gw_cert, sizeof(gw_cert), "%s/gw", f->dir);
    char gw_key[CURVE_KEY_TXT], trusted[400];
    make_cert(gw_cert, gw_key);
    snprintf(trusted, sizeof(trusted), "%s/gw", f->trust);
    zcert_t *c = zcert_load(gw_cert);
    zcert_save_public(c, trusted);
    zcert_destroy(&c);
    snprintf(other, sizeof(other), "%s/other", f->dir);
    make_cert(other, NULL);
    strcat(gw_cert, "_secret");
    strcat(other, "_secret");

    curve_t *cv = load(f, f->cert, f->trust, err, sizeof(err));
    assert_non_null(cv);
    assert_int_equal(curve_server_start(cv, err, sizeof(err)), 0);
    curve_public(cv, pub);
    zsock_t *server = zsock_new(ZMQ_ROUTER);
    zsock_set_linger(server, 0);
    assert_int_equal(curve_server_socket(cv, zsock_resolve(server), err, sizeof(err)), 0);
    int port = zsock_bind(server, "tcp://127.0.0.1:*");
    assert_true(port > 0);

    zsock_t *good = client(port, pub, gw_cert);
    assert_true(echoed(good, server));
    zsock_t *bad = client(port, pub, other);
    assert_false(echoed(bad, server));
    zsock_t *plain = client(port, NULL, NULL);
    assert_false(echoed(plain, server));
    curve_refusals_t r;
    for (int i = 0; i < 100; i++) { /* the monitor's events arrive asynchronously */
        curve_refusals(cv, &r);
        if (r.auth >= 1 && r.protocol >= 1)
            break;
        zclock_sleep(20);
    }
    assert_true(r.auth >= 1);
    assert_true(r.protocol >= 1);
    assert_string_equal(r.last_address, "127.0.0.1");
    assert_int_equal(strlen(r.last_key), 40);
    assert_true(echoed(good, server)); /* still served */
    zsock_destroy(&good);
    zsock_destroy(&bad);
    zsock_destroy(&plain);
    zsock_destroy(&server);
    curve_destroy(&cv);
}

/* The handler cannot take the ZAP endpoint (something else holds it): the server does not start,
 * rather than running CURVE sockets nobody checks keys for. */
static void server_start_fails_when_the_zap_endpoint_is_taken(void **state)
{
    fix_t *f = *state;
    char err[512];
    zsock_t *squatter = zsock_new_rep("inproc://zeromq.zap.01");
    assert_non_null(squatter);
    curve_t *cv = load(f, f->cert, f->trust, err, sizeof(err));
    assert_non_null(cv);
    assert_int_equal(curve_server_start(cv, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "authenticator"));
    zsock_t *server = zsock_new(ZMQ_ROUTER);
    assert_int_equal(curve_server_socket(cv, zsock_resolve(server), err, sizeof(err)), -1);
    zsock_destroy(&server);
    zsock_destroy(&squatter);
    curve_destroy(&cv);
}

static void opts_both_or_neither(void **state)
{
    (void)state;
    curveopts_t o;
    curveopts_defaults(&o);
    assert_false(curveopts_on(&o));
    o.trust = "/x";
    assert_true(curveopts_on(&o));
    opts_table_t t = curveopts_spec();
    assert_int_equal(t.n, 2);
    assert_string_equal(t.spec[0].name, "curve-cert");
    assert_string_equal(t.spec[1].name, "curve-trust");
}

int main(void)
{
    zsys_handler_set(NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(loads_cert_and_trust, setup, teardown),
        cmocka_unit_test_setup_teardown(refuses_bad_options, setup, teardown),
        cmocka_unit_test_setup_teardown(skips_files_that_are_not_certificates, setup, teardown),
        cmocka_unit_test_setup_teardown(reload_adds_and_removes_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(reload_takes_a_new_certificate, setup, teardown),
        cmocka_unit_test_setup_teardown(judges_advertised_endpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(server_serves_trusted_clients_only, setup, teardown),
        cmocka_unit_test_setup_teardown(server_start_fails_when_the_zap_endpoint_is_taken, setup,
                                        teardown),
        cmocka_unit_test(opts_both_or_neither),
    };
    return cmocka_run_group_tests_name("curve", tests, NULL, NULL);
}
