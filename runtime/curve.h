/* SPDX-License-Identifier: MIT */
/* curve: CurveZMQ between gateways and nodes (--curve-cert, --curve-trust).
 *
 * A process's certificate is a czmq certificate pair (zcert_save: public part at PATH, secret part
 * at PATH_secret); --curve-cert names the secret part. The trust dir holds public certificates
 * (files holding a ZPL "curve/public-key"; others are skipped and counted): on a node, the gateways
 * allowed to connect; on a gateway, the nodes it may send to (matched against the key each node
 * advertises in the membership, members.h).
 *
 * A node serves CURVE through curve_server_start() (a ZAP handler actor bound at ZeroMQ's
 * well-known inproc://zeromq.zap.01 in czmq's context, so it must run before the ROUTER accepts
 * anything) and curve_server_socket() (the ROUTER's server options and a socket monitor). The
 * handler accepts a CURVE client whose long-term key is in the trust set and refuses everything
 * else; refusals (a wrong key at ZAP, a peer speaking no CURVE or no ZMTP at all, seen by the
 * monitor) are counted and the last one is kept for the daemon's loop to log.
 *
 * Thread safety: every call may come from any thread. The trust set and the keys sit under one
 * mutex, taken at reload, at a ZAP request (a connection's handshake) and when a gateway's router
 * opens a connection: never per request. curve_reload() swaps the trust set (and the certificate,
 * if its files changed) atomically for those readers. */
#ifndef SHOAL_CURVE_H
#define SHOAL_CURVE_H

#include "members.h"
#include "opts.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CURVE_KEY_TXT    41   /* a Z85 key: 40 characters and the NUL */
#define CURVE_TRUST_MAX  4096 /* files read from a trust dir (keys beyond are refused at load) */
#define CURVE_ZAP_DOMAIN "shoal"

/* The options every cluster role shares; "" is unset. */
typedef struct {
    const char *cert;  /* --curve-cert: this process's secret certificate */
    const char *trust; /* --curve-trust: directory of trusted public certificates */
} curveopts_t;

void curveopts_defaults(curveopts_t *o);

/* --curve-cert and --curve-trust, offsets relative to a curveopts_t. Static storage. */
opts_table_t curveopts_spec(void);

/* True if CURVE is configured (either option given). */
bool curveopts_on(const curveopts_t *o);

typedef struct curve curve_t;

/* Load the certificate and the trust dir of o (both must be given). Returns NULL and why in err
 * (the path named, never a key): either option without the other, an unreadable file, a
 * certificate without its secret key, a missing or unreadable dir, a dir with no certificate, a
 * dir with more than CURVE_TRUST_MAX files. Copies o's strings. */
curve_t *curve_new(const curveopts_t *o, char *err, size_t errlen);

/* Stop the ZAP handler if started, wipe the secret key, free, set *self_p to NULL. NULL-safe. */
void curve_destroy(curve_t **self_p);

/* Read the certificate and the trust dir again. On success the new set replaces the old one at
 * once (handshakes from then on are checked against it); *cert_changed (may be NULL) says whether
 * the certificate's public key changed. On failure nothing changes and err says why. Returns the
 * number of trusted keys, or -1. */
int curve_reload(curve_t *self, bool *cert_changed, char *err, size_t errlen);

/* This process's public key (Z85) into out[CURVE_KEY_TXT]. */
void curve_public(curve_t *self, char *out);

/* The public and secret keys (Z85) into pub and sec (each CURVE_KEY_TXT; the caller wipes sec)
 * and the certificate's generation (moves when curve_reload() loads another certificate). */
uint64_t curve_keys(curve_t *self, char *pub, char *sec);

/* The certificate's generation alone (see curve_keys()); cheap. */
uint64_t curve_generation(curve_t *self);

/* A number that moves at every successful curve_reload() (trust set or certificate); cheap. */
uint64_t curve_version(curve_t *self);

/* True if the Z85 key (40 characters) is in the trust set. */
bool curve_trusts(curve_t *self, const char *z85);

/* Keys in the trust set, and files the last load skipped (not certificates). */
size_t curve_trusted(curve_t *self, size_t *skipped);

/* What a gateway makes of a node's advertised endpoint (members.h), with CURVE (self) or without
 * (self NULL): a CURVE gateway talks only to nodes advertising a trusted key, a plaintext gateway
 * only to nodes advertising none. */
typedef enum {
    CURVE_NODE_OK = 0,      /* go ahead: plaintext, or CURVE with a trusted key */
    CURVE_NODE_UNTRUSTED,   /* its key is not in --curve-trust */
    CURVE_NODE_NO_KEY,      /* it advertises no key (a node without CURVE) */
    CURVE_NODE_NEEDS_CURVE, /* it advertises a key but this gateway has no --curve-cert */
    CURVE_NODE_BAD_KEY,     /* a malformed advert: members_split() refuses it (a bad key, a bad
                             * worker count, an unknown tag) */
} curve_node_t;

/* Split advert into *out (members_split()) and judge it. */
curve_node_t curve_check_node(curve_t *self, const char *advert, members_advert_t *out);

/* A short reason for a refused node ("" for CURVE_NODE_OK); static storage. */
const char *curve_node_strerror(curve_node_t v);

/* Make sock (a libzmq socket, before connect) a CURVE client of the server whose public key is
 * server_key (Z85), with this certificate. Returns 0, or -1. */
int curve_client_socket(curve_t *self, void *sock, const char *server_key);

/* Start the ZAP handler (node side). Call once, before any CURVE server socket is bound. Returns
 * 0, or -1 and why in err (the endpoint is taken: another ZAP handler in this process). */
int curve_server_start(curve_t *self, char *err, size_t errlen);

/* Make sock (a libzmq socket, before bind) a CURVE server with this certificate, in the ZAP domain
 * CURVE_ZAP_DOMAIN, and watch its failed handshakes (at most MEMBERS_WORKERS_MAX sockets). The
 * caller keeps the socket and closes it before curve_destroy(). Returns 0, or -1 and why in err. */
int curve_server_socket(curve_t *self, void *sock, char *err, size_t errlen);

/* Refusals so far. */
typedef struct {
    uint64_t auth;     /* CURVE clients whose key is not trusted (ZAP said no) */
    uint64_t protocol; /* peers that failed the handshake otherwise: no CURVE, not ZMTP, bad box */
    char last_address[64];        /* the last refused ZAP peer's address ("" if none yet) */
    char last_key[CURVE_KEY_TXT]; /* ... and its key */
} curve_refusals_t;

void curve_refusals(curve_t *self, curve_refusals_t *out);

#endif
