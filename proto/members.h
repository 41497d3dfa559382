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

/* A node with CURVE advertises "ENDPOINT|curve=KEY" in place of its endpoint (in Redis and in a
 * static list alike), KEY being its 40-character Z85 public key; a record without it is a node
 * without CURVE. '|' appears neither in a ZeroMQ tcp endpoint nor in Z85, so the split is at the
 * first '|'. The key is part of the member's endpoint text, so it is in the epoch too: a node
 * that changes its key is a changed member set for everyone. */
#define MEMBERS_CURVE_TAG     "|curve="
#define MEMBERS_CURVE_KEY_LEN 40

typedef enum {
    MEMBERS_PLAIN = 0,    /* no key: ep is the whole text */
    MEMBERS_CURVE = 1,    /* ep and key filled */
    MEMBERS_BAD_KEY = -1, /* a '|' not followed by a well-formed "curve=KEY": ep filled, no key */
} members_advert_t;

/* Split an advertised endpoint adv (NUL-terminated, < PARTITION_ENDPOINT_MAX) into the ZeroMQ
 * endpoint ep[PARTITION_ENDPOINT_MAX] and key[MEMBERS_CURVE_KEY_LEN + 1] ("" without one). */
members_advert_t members_split(const char *adv, char *ep, char *key);

/* Join endpoint and key (NULL or "": none) into out[outlen]. Returns 0, or -1 if it does not fit
 * or the key is not 40 Z85 characters. */
int members_join(const char *ep, const char *key, char *out, size_t outlen);

/* Parse a static member list "ID=ENDPOINT,ID=ENDPOINT" (whitespace around items is ignored) into
 * out[0..max), the count into *n. Returns 0, or -1 and why in err: an empty list, an item
 * without '=', an empty or too long id or endpoint, a duplicate id, more than max items. */
int members_parse(const char *list, partition_member_t *out, size_t max, size_t *n, char *err,
                  size_t errlen);

/* The epoch of a member set (see above): order-independent, never 0. Members must have unique,
 * NUL-terminated ids. Allocates a sorted copy; returns 0 only if memory runs out. */
uint64_t members_epoch(const partition_member_t *members, size_t n);

#endif
