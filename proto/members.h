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

/* Parse a static member list "ID=ENDPOINT,ID=ENDPOINT" (whitespace around items is ignored) into
 * out[0..max), the count into *n. Returns 0, or -1 and why in err: an empty list, an item
 * without '=', an empty or too long id or endpoint, a duplicate id, more than max items. */
int members_parse(const char *list, partition_member_t *out, size_t max, size_t *n, char *err,
                  size_t errlen);

/* The epoch of a member set (see above): order-independent, never 0. Members must have unique,
 * NUL-terminated ids. Allocates a sorted copy; returns 0 only if memory runs out. */
uint64_t members_epoch(const partition_member_t *members, size_t n);

#endif
