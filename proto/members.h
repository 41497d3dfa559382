/* SPDX-License-Identifier: MIT */
/* members: the cluster's member list as every process must read it: the static list syntax
 * (--nodes), what a valid id and endpoint are, and the epoch of a member set (a content hash that
 * travels in "moved" replies). Pure code: runtime/membership.c reads the live set from Redis and
 * calls these; gateways and nodes must agree on every byte of it.
 *
 * Epoch. The epoch of a member set is SipHash-2-4 with the fixed public key MEMBERS_EPOCH_KEY
 * over "id\0endpoint\0" of every member in id order (bytewise), read as a little-endian 64-bit
 * number, with 0 mapped to 1 (0 means "no table"). So every process that sees the same member
 * set computes the same epoch without asking anyone, a static list and a Redis cluster with the
 * same members agree, and a Redis restart cannot reset or fork it. Epochs are not ordered, only
 * equal or not. */
#ifndef SHOAL_MEMBERS_H
#define SHOAL_MEMBERS_H

#include "partition.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The 16-byte SipHash key of the epoch hash: ASCII "shoal/epoch/v1..". Part of the wire contract
 * (epochs travel in "moved" replies). */
#define MEMBERS_EPOCH_KEY "shoal/epoch/v1.."

/* A member id: 1..PARTITION_ID_MAX-1 bytes, no control characters, spaces, '=' or ','. */
bool members_valid_id(const char *id, size_t len);

/* An endpoint: 1..PARTITION_ENDPOINT_MAX-1 bytes, no control characters, spaces or ','. */
bool members_valid_endpoint(const char *ep, size_t len);

/* The advert: what a node publishes in place of its endpoint (in Redis and in a static list
 * alike) is "ENDPOINT", "ENDPOINT|workers=N", "ENDPOINT|curve=KEY" or
 * "ENDPOINT|workers=N|curve=KEY", tags in that order and no other. '|' appears neither in a
 * ZeroMQ tcp endpoint nor in Z85, so the endpoint ends at the first '|'.
 *
 * - workers=N (2..MEMBERS_WORKERS_MAX; "workers=1" is read but never written): the node has N
 *   serving sockets, worker i's at ENDPOINT's port + i (consecutive ports, same host), so a
 *   gateway can reach each worker without a proxy in the node. Without the tag: one socket.
 * - curve=KEY: the node runs CURVE, KEY being its 40-character Z85 public key.
 *
 * Both are part of the member's endpoint text, so they are in the epoch too: a node that changes
 * its key or its worker count is a changed member set for everyone. */
#define MEMBERS_WORKERS_TAG   "|workers="
#define MEMBERS_WORKERS_MAX   1024
#define MEMBERS_CURVE_TAG     "|curve="
#define MEMBERS_CURVE_KEY_LEN 40

/* An advert taken apart. */
typedef struct {
    char endpoint[PARTITION_ENDPOINT_MAX]; /* worker 0's ZeroMQ endpoint */
    char key[MEMBERS_CURVE_KEY_LEN + 1];   /* the CURVE key, "" without CURVE */
    unsigned workers;                      /* sockets, 1..MEMBERS_WORKERS_MAX */
} members_advert_t;

/* Split an advert adv (NUL-terminated, < PARTITION_ENDPOINT_MAX) into *out. Returns 0, or -1 if
 * what follows the endpoint is not one of the forms above, or its workers do not fit its port
 * (no numeric port, or port + N - 1 > 65535); then out->endpoint is still the text before the
 * first '|' (for messages), out->key "" and out->workers 1. */
int members_split(const char *adv, members_advert_t *out);

/* Join a->endpoint, a->key ("": none) and a->workers (1: no tag) into out[outlen], the inverse of
 * members_split(). Returns 0, or -1 if it does not fit, the key is not 40 Z85 characters, the
 * endpoint holds a '|', or the workers are out of range or do not fit the endpoint's port. */
int members_join(const members_advert_t *a, char *out, size_t outlen);

/* Worker i's endpoint: ep (tcp://HOST:PORT) with PORT + i, into out[outlen]. Returns 0, or -1 if
 * ep has no numeric port, PORT + i > 65535 or out is too small. */
int members_worker_endpoint(const char *ep, unsigned i, char *out, size_t outlen);

/* Parse a static member list "ID=ENDPOINT,ID=ENDPOINT" (whitespace around items is ignored) into
 * out[0..max), the count into *n. Returns 0, or -1 and why in err: an empty list, an item
 * without '=', an empty or too long id or endpoint, a duplicate id, more than max items. */
int members_parse(const char *list, partition_member_t *out, size_t max, size_t *n, char *err,
                  size_t errlen);

/* The epoch of a member set (see above): order-independent, never 0. Members must have unique,
 * NUL-terminated ids. Allocates a sorted copy; returns 0 only if memory runs out. */
uint64_t members_epoch(const partition_member_t *members, size_t n);

#endif
