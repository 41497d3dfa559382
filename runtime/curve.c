/* SPDX-License-Identifier: MIT */
/* curve: certificates, the trust set and the node's ZAP handler (curve.h).
 *
 * The trust set is a sorted array of Z85 keys, replaced whole at reload under the lock; a lookup
 * is a binary search. The ZAP handler is a czmq actor with a REP socket at inproc://zeromq.zap.01
 * and the PAIR ends of the servers' socket monitors. */
#include "curve.h"

#include "err.h"
#include "members.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
/* ZMQ_ZAP_ENFORCE_DOMAIN: only under ZMQ_BUILD_DRAFT_API in zmq.h (libzmq 4.3). */
#define SHOAL_ZMQ_ZAP_ENFORCE_DOMAIN 93
#define KEYLEN                       (CURVE_KEY_TXT - 1)

struct curve {
    char cert_path[4096];
    char trust_dir[4096];
    pthread_mutex_t lock;
    /* Under lock: */
    char pub[CURVE_KEY_TXT], sec[CURVE_KEY_TXT];
    char (*keys)[CURVE_KEY_TXT]; /* sorted */
    size_t n_keys, skipped;
    char last_address[64];
    char last_key[CURVE_KEY_TXT];
    /* Atomics, read without the lock: */
    _Atomic uint64_t generation, version;
    _Atomic uint64_t refused_auth, refused_protocol;
    _Atomic bool zap_bound; /* the handler holds the ZAP endpoint (set before its start signal) */
    zactor_t *zap;
    unsigned monitors;
};

void curveopts_defaults(curveopts_t *o)
{
    *o = (curveopts_t){.cert = "", .trust = ""};
}

static const opts_spec_t specs[] = {
    OPTS_SPEC(curveopts_t, "curve-cert", "FILE", OPTS_STRING, cert, 0, 0,
              "CURVE between gateways and nodes: this process's certificate, its secret part (as "
              "shoal-keygen writes it); needs --curve-trust"),
    OPTS_SPEC(curveopts_t, "curve-trust", "DIR", OPTS_STRING, trust, 0, 0,
              "public certificates allowed to talk to this process (a node: the gateways'; a "
              "gateway: the nodes'); re-read on SIGHUP"),
};

opts_table_t curveopts_spec(void)
{
    return OPTS_TABLE(specs);
}

bool curveopts_on(const curveopts_t *o)
{
    return (o->cert && *o->cert) || (o->trust && *o->trust);
}

/* ---- loading -------------------------------------------------------------------------------- */

static int cmp_key(const void *a, const void *b)
{
    return memcmp(a, b, KEYLEN);
}

/* A certificate file is small: a few hundred bytes of ZPL (czmq's zconfig text). */
#define CERT_FILE_MAX 65536

/* The keys of the certificate file at path: pub always, sec ("" if absent). Returns 0; 1 if the
 * file is not a certificate; -1 if it cannot be read (errno set). zcert_load() is not used: it
 * reads PATH_secret first (so a public part would pass as a secret certificate) and leaks when
 * the file is not ZPL (czmq 4.2). */
static int read_cert(const char *path, char *pub, char *sec)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *text = malloc(CERT_FILE_MAX + 1);
    if (!text) {
        fclose(f);
        errno = ENOMEM;
        return -1;
    }
    size_t n = fread(text, 1, CERT_FILE_MAX + 1, f);
    bool bad = ferror(f) != 0;
    fclose(f);
    int rc = 1;
    if (bad) {
        rc = -1;
    } else if (n <= CERT_FILE_MAX && memchr(text, '\0', n) == NULL) {
        text[n] = '\0';
        /* Only text that names a key goes to the parser (which prints what it cannot parse). */
        zconfig_t *root = strstr(text, "public-key") ? zconfig_str_load(text) : NULL;
        const char *p = root ? zconfig_get(root, "/curve/public-key", NULL) : NULL;
        const char *s = root ? zconfig_get(root, "/curve/secret-key", NULL) : NULL;
        byte bin[32];
        if (p && strlen(p) == KEYLEN && zmq_z85_decode(bin, p)) {
            snprintf(pub, CURVE_KEY_TXT, "%s", p);
            sec[0] = '\0';
            if (s && strlen(s) == KEYLEN && zmq_z85_decode(bin, s))
                snprintf(sec, CURVE_KEY_TXT, "%s", s);
            rc = 0;
        }
        sodium_memzero(bin, sizeof(bin));
        zconfig_destroy(&root);
    }
    sodium_memzero(text, n < CERT_FILE_MAX ? n : CERT_FILE_MAX);
    free(text);
    return rc;
}

/* This process's certificate at path into pub and sec. */
static int load_cert(const char *path, char *pub, char *sec, char *err, size_t errlen)
{
    int rc = read_cert(path, pub, sec);
    if (rc < 0) {
        err_set(err, errlen, "--curve-cert %s: %s", path, strerror(errno));
        return -1;
    }
    if (rc > 0) {
        err_set(err, errlen, "--curve-cert %s: not a CURVE certificate (shoal-keygen writes one)",
                path);
        return -1;
    }
    if (!*sec) {
        err_set(err, errlen,
                "--curve-cert %s holds only a public key: give the secret part (PATH_secret, as "
                "shoal-keygen writes it)",
                path);
        return -1;
    }
    return 0;
}

/* The public keys of the certificates in dir into *keys (malloc'd, sorted, unique). */
static int load_trust(const char *dir, char (**keys)[CURVE_KEY_TXT], size_t *n, size_t *skipped,
                      char *err, size_t errlen)
{
    *keys = NULL;
    *n = *skipped = 0;
    DIR *d = opendir(dir);
    if (!d) {
        err_set(err, errlen, "--curve-trust %s: %s", dir, strerror(errno));
        return -1;
    }
    char(*out)[CURVE_KEY_TXT] = calloc(CURVE_TRUST_MAX, CURVE_KEY_TXT);
    if (!out) {
        closedir(d);
        err_set(err, errlen, "--curve-trust %s: out of memory", dir);
        return -1;
    }
    size_t k = 0, files = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[8192];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (++files > CURVE_TRUST_MAX) {
            err_set(err, errlen, "--curve-trust %s: more than %d files", dir, CURVE_TRUST_MAX);
            rc = -1;
            break;
        }
        char sec[CURVE_KEY_TXT];
        if (read_cert(path, out[k], sec) != 0) {
            (*skipped)++; /* unreadable, or not a certificate */
            continue;
        }
        sodium_memzero(sec, sizeof(sec));
        k++;
    }
    closedir(d);
    if (rc == 0 && k == 0) {
        err_set(err, errlen, "--curve-trust %s: no public certificate in it", dir);
        rc = -1;
    }
    if (rc != 0) {
        free(out);
        return -1;
    }
    qsort(out, k, CURVE_KEY_TXT, cmp_key);
    size_t u = 0;
    for (size_t i = 0; i < k; i++) {
        if (u == 0 || memcmp(out[u - 1], out[i], KEYLEN) != 0)
            memmove(out[u++], out[i], CURVE_KEY_TXT);
    }
    *keys = out;
    *n = u;
    return 0;
}

curve_t *curve_new(const curveopts_t *o, char *err, size_t errlen)
{
    const char *cert = o->cert ? o->cert : "", *trust = o->trust ? o->trust : "";
    if (!*cert || !*trust) {
        err_set(err, errlen, "%s",
                *cert ? "--curve-cert needs --curve-trust DIR (the peers allowed)"
                      : "--curve-trust needs --curve-cert FILE (this process's "
                        "secret certificate)");
        return NULL;
    }
    if (strlen(cert) >= sizeof(((curve_t *)0)->cert_path) ||
        strlen(trust) >= sizeof(((curve_t *)0)->trust_dir)) {
        err_set(err, errlen, "--curve-cert or --curve-trust: path too long");
        return NULL;
    }
    curve_t *self = calloc(1, sizeof(*self));
    if (!self) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(self->cert_path, sizeof(self->cert_path), "%s", cert);
    snprintf(self->trust_dir, sizeof(self->trust_dir), "%s", trust);
    pthread_mutex_init(&self->lock, NULL);
    if (load_cert(cert, self->pub, self->sec, err, errlen) != 0 ||
        load_trust(trust, &self->keys, &self->n_keys, &self->skipped, err, errlen) != 0) {
        curve_destroy(&self);
        return NULL;
    }
    atomic_store(&self->generation, 1);
    atomic_store(&self->version, 1);
    return self;
}

void curve_destroy(curve_t **self_p)
{
    curve_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy(&self->zap);
    sodium_memzero(self->sec, sizeof(self->sec));
    free(self->keys);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

int curve_reload(curve_t *self, bool *cert_changed, char *err, size_t errlen)
{
    char pub[CURVE_KEY_TXT], sec[CURVE_KEY_TXT];
    char(*keys)[CURVE_KEY_TXT] = NULL;
    size_t n = 0, skipped = 0;
    if (load_cert(self->cert_path, pub, sec, err, errlen) != 0 ||
        load_trust(self->trust_dir, &keys, &n, &skipped, err, errlen) != 0) {
        sodium_memzero(sec, sizeof(sec));
        return -1;
    }
    pthread_mutex_lock(&self->lock);
    bool changed = strcmp(pub, self->pub) != 0;
    if (changed) {
        memcpy(self->pub, pub, sizeof(pub));
        memcpy(self->sec, sec, sizeof(sec));
        atomic_fetch_add(&self->generation, 1);
    }
    atomic_fetch_add(&self->version, 1);
    char(*old)[CURVE_KEY_TXT] = self->keys;
    self->keys = keys;
    self->n_keys = n;
    self->skipped = skipped;
    pthread_mutex_unlock(&self->lock);
    free(old);
    sodium_memzero(sec, sizeof(sec));
    if (cert_changed)
        *cert_changed = changed;
    return (int)n;
}

void curve_public(curve_t *self, char *out)
{
    pthread_mutex_lock(&self->lock);
    memcpy(out, self->pub, CURVE_KEY_TXT);
    pthread_mutex_unlock(&self->lock);
}

uint64_t curve_keys(curve_t *self, char *pub, char *sec)
{
    pthread_mutex_lock(&self->lock);
    memcpy(pub, self->pub, CURVE_KEY_TXT);
    memcpy(sec, self->sec, CURVE_KEY_TXT);
    uint64_t g = atomic_load(&self->generation);
    pthread_mutex_unlock(&self->lock);
    return g;
}

uint64_t curve_generation(curve_t *self)
{
    return atomic_load_explicit(&self->generation, memory_order_relaxed);
}

uint64_t curve_version(curve_t *self)
{
    return atomic_load_explicit(&self->version, memory_order_relaxed);
}

curve_node_t curve_check_node(curve_t *self, const char *advert, members_advert_t *out)
{
    if (members_split(advert, out) != 0)
        return CURVE_NODE_BAD_KEY;
    if (!self)
        return out->key[0] ? CURVE_NODE_NEEDS_CURVE : CURVE_NODE_OK;
    if (!out->key[0])
        return CURVE_NODE_NO_KEY;
    return curve_trusts(self, out->key) ? CURVE_NODE_OK : CURVE_NODE_UNTRUSTED;
}

const char *curve_node_strerror(curve_node_t v)
{
    switch (v) {
    case CURVE_NODE_OK:
        return "";
    case CURVE_NODE_UNTRUSTED:
        return "its CURVE key is not in --curve-trust";
    case CURVE_NODE_NO_KEY:
        return "it runs without CURVE (no key advertised) and this gateway requires CURVE";
    case CURVE_NODE_NEEDS_CURVE:
        return "it requires CURVE and this gateway has no --curve-cert";
    case CURVE_NODE_BAD_KEY:
        return "its advertised endpoint is malformed (not ENDPOINT[|workers=N][|curve=KEY])";
    }
    return "?";
}

int curve_client_socket(curve_t *self, void *sock, const char *server_key)
{
    char pub[CURVE_KEY_TXT], sec[CURVE_KEY_TXT];
    curve_keys(self, pub, sec);
    int rc = zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server_key, KEYLEN);
    if (rc == 0)
        rc = zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, KEYLEN);
    if (rc == 0)
        rc = zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, KEYLEN);
    sodium_memzero(sec, sizeof(sec));
    return rc == 0 ? 0 : -1;
}

bool curve_trusts(curve_t *self, const char *z85)
{
    if (!z85 || strnlen(z85, CURVE_KEY_TXT) != KEYLEN)
        return false;
    pthread_mutex_lock(&self->lock);
    bool found = bsearch(z85, self->keys, self->n_keys, CURVE_KEY_TXT, cmp_key) != NULL;
    pthread_mutex_unlock(&self->lock);
    return found;
}

size_t curve_trusted(curve_t *self, size_t *skipped)
{
    pthread_mutex_lock(&self->lock);
    size_t n = self->n_keys;
    if (skipped)
        *skipped = self->skipped;
    pthread_mutex_unlock(&self->lock);
    return n;
}

void curve_refusals(curve_t *self, curve_refusals_t *out)
{
    memset(out, 0, sizeof(*out));
    out->auth = atomic_load_explicit(&self->refused_auth, memory_order_relaxed);
    out->protocol = atomic_load_explicit(&self->refused_protocol, memory_order_relaxed);
    pthread_mutex_lock(&self->lock);
    memcpy(out->last_address, self->last_address, sizeof(out->last_address));
    memcpy(out->last_key, self->last_key, sizeof(out->last_key));
    pthread_mutex_unlock(&self->lock);
}

/* ---- the ZAP handler (RFC 27) ---------------------------------------------------------------- */

/* Answer one ZAP request: [version][request id][domain][address][identity][mechanism][creds..]. */
static void zap_answer(curve_t *self, zsock_t *rep)
{
    zmsg_t *req = zmsg_recv(rep);
    if (!req)
        return;
    char *version = zmsg_popstr(req), *reqid = zmsg_popstr(req), *domain = zmsg_popstr(req),
         *address = zmsg_popstr(req), *identity = zmsg_popstr(req), *mech = zmsg_popstr(req);
    zframe_t *key = zmsg_pop(req);
    bool ok = false;
    char txt[CURVE_KEY_TXT] = "";
    if (mech && strcmp(mech, "CURVE") == 0 && key && zframe_size(key) == 32) {
        zmq_z85_encode(txt, zframe_data(key), 32);
        ok = curve_trusts(self, txt);
    }
    if (!ok) {
        atomic_fetch_add_explicit(&self->refused_auth, 1, memory_order_relaxed);
        pthread_mutex_lock(&self->lock);
        snprintf(self->last_address, sizeof(self->last_address), "%s", address ? address : "");
        memcpy(self->last_key, txt, sizeof(txt));
        pthread_mutex_unlock(&self->lock);
    }
    zmsg_t *rep_msg = zmsg_new();
    zmsg_addstr(rep_msg, version ? version : "1.0");
    zmsg_addstr(rep_msg, reqid ? reqid : "");
    zmsg_addstr(rep_msg, ok ? "200" : "400");
    zmsg_addstr(rep_msg, ok ? "OK" : "key not trusted");
    zmsg_addstr(rep_msg, ok ? txt : "");
    zmsg_addmem(rep_msg, NULL, 0);
    zmsg_send(&rep_msg, rep);
    zframe_destroy(&key);
    zstr_free(&version);
    zstr_free(&reqid);
    zstr_free(&domain);
    zstr_free(&address);
    zstr_free(&identity);
    zstr_free(&mech);
    zmsg_destroy(&req);
}

/* One socket monitor event: [uint16 event, uint32 value][address]. */
static void monitor_event(curve_t *self, zsock_t *mon)
{
    zmsg_t *m = zmsg_recv(mon);
    if (!m)
        return;
    zframe_t *f = zmsg_first(m);
    if (f && zframe_size(f) >= 2) {
        uint16_t ev;
        memcpy(&ev, zframe_data(f), sizeof(ev));
        /* An auth failure was counted by the ZAP handler already (with its address). */
        if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL || ev == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
            atomic_fetch_add_explicit(&self->refused_protocol, 1, memory_order_relaxed);
    }
    zmsg_destroy(&m);
}

/* Server sockets watched: a node has one per worker (nodesrv.h). */
#define MONITORS_MAX MEMBERS_WORKERS_MAX

static void zap_actor(zsock_t *pipe, void *arg)
{
    curve_t *self = arg;
    zsock_t *rep = zsock_new(ZMQ_REP);
    if (!rep || zsock_bind(rep, ZAP_ENDPOINT) != 0) {
        zsock_destroy(&rep);
        zsock_signal(pipe, 1);
        return;
    }
    zsock_t *mons[MONITORS_MAX];
    size_t n_mons = 0;
    zpoller_t *poller = zpoller_new(pipe, rep, NULL);
    if (!poller) {
        zsock_destroy(&rep);
        zsock_signal(pipe, 1);
        return;
    }
    /* Only $TERM (or the context ending) stops the handler: a node whose handler stopped would
     * have no one to ask (its sockets enforce the ZAP domain, so they then refuse everyone). */
    zpoller_set_nonstop(poller, true);
    atomic_store(&self->zap_bound, true);
    zsock_signal(pipe, 0);
    while (poller) {
        void *which = zpoller_wait(poller, -1);
        if (which == rep) {
            zap_answer(self, rep);
        } else if (which == pipe) {
            char *cmd = NULL, *ep = NULL;
            if (zstr_recvx(pipe, &cmd, &ep, NULL) < 0 || !cmd || strcmp(cmd, "$TERM") == 0) {
                zstr_free(&cmd);
                zstr_free(&ep);
                break;
            }
            /* "MONITOR" endpoint: connect a PAIR to a server socket's monitor. */
            int rc = -1;
            if (strcmp(cmd, "MONITOR") == 0 && ep && n_mons < MONITORS_MAX) {
                zsock_t *m = zsock_new(ZMQ_PAIR);
                if (m && zsock_connect(m, "%s", ep) == 0 && zpoller_add(poller, m) == 0) {
                    mons[n_mons++] = m;
                    rc = 0;
                } else {
                    zsock_destroy(&m);
                }
            }
            zsock_signal(pipe, (byte)(rc == 0 ? 0 : 1));
            zstr_free(&cmd);
            zstr_free(&ep);
        } else if (which) {
            monitor_event(self, which);
        } else if (zpoller_terminated(poller) && zmq_errno() == ETERM) {
            break;
        }
    }
    zpoller_destroy(&poller);
    for (size_t i = 0; i < n_mons; i++)
        zsock_destroy(&mons[i]);
    zsock_destroy(&rep);
}

int curve_server_start(curve_t *self, char *err, size_t errlen)
{
    if (self->zap)
        return 0;
    /* zactor_new() waits for the handler's start signal but not for its value: the handler says
     * whether it holds the endpoint through zap_bound, stored before it signals. */
    self->zap = zactor_new(zap_actor, self);
    if (!self->zap || !atomic_load(&self->zap_bound)) {
        zactor_destroy(&self->zap);
        err_set(err, errlen, "cannot start the CURVE authenticator (%s taken?)", ZAP_ENDPOINT);
        return -1;
    }
    return 0;
}

int curve_server_socket(curve_t *self, void *sock, char *err, size_t errlen)
{
    if (!self->zap) {
        err_set(err, errlen, "CURVE: the authenticator is not running");
        return -1;
    }
    char pub[CURVE_KEY_TXT], sec[CURVE_KEY_TXT];
    curve_keys(self, pub, sec);
    const int one = 1;
    int rc = zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one));
    if (rc == 0)
        rc = zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, KEYLEN);
    if (rc == 0)
        rc = zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, CURVE_ZAP_DOMAIN, strlen(CURVE_ZAP_DOMAIN));
    /* Fail closed: without it, a CURVE server whose ZAP handler is gone accepts every client
     * key (libzmq 4.3's default, for compatibility). A draft option in the headers, accepted by
     * Debian's libzmq 4.3.4; a libzmq that refuses it refuses to run a CURVE node. */
    if (rc == 0)
        rc = zmq_setsockopt(sock, SHOAL_ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof(one));
    sodium_memzero(sec, sizeof(sec));
    if (rc != 0) {
        err_set(err, errlen, "CURVE server options: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    char ep[64];
    snprintf(ep, sizeof(ep), "inproc://shoal-curve-monitor-%p-%u", (void *)self, self->monitors++);
    if (zmq_socket_monitor(sock, ep,
                           ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0 ||
        zstr_sendx(self->zap, "MONITOR", ep, NULL) != 0 || zsock_wait(self->zap) != 0) {
        err_set(err, errlen, "CURVE: cannot monitor the server socket");
        return -1;
    }
    return 0;
}
