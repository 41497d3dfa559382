/* SPDX-License-Identifier: MIT */
/* memberstore: the member set's protocol in Redis, shared by membership (the actor that keeps a
 * node or gateway registered and reads the set) and by one-shot readers (the standalone tracker
 * checks that no cluster lives in its namespace). Synchronous hiredis calls on the caller's
 * connection; no state.
 *
 * Keys, under a prefix (the cluster name):
 *   PREFIX:member:ID    a node's endpoint (with "|curve=KEY" if it runs CURVE: members.h), with
 *                       the member ttl; PREFIX:members  the set of ids
 *   PREFIX:gateway:ID   a gateway's secret fingerprint, with the ttl; PREFIX:gateways  the set
 * A key is set only while it is missing or already holds the same value (one script), so two
 * processes with one id cannot both register; an id whose key expired is removed from its set
 * only if the key is still missing (so a re-registration in between is not undone). */
#ifndef SHOAL_MEMBERSTORE_H
#define SHOAL_MEMBERSTORE_H

#include "partition.h"

#include <stddef.h>
#include <stdint.h>

struct redisContext;

#define MEMBERSTORE_KEY_MAX (64 + PARTITION_ID_MAX + 16)

typedef enum {
    MEMBERSTORE_NODES = 0,    /* values are ZeroMQ endpoints */
    MEMBERSTORE_GATEWAYS = 1, /* values are connection-id secret fingerprints */
} memberstore_kind_t;

/* The key of id, and the key of the set, into out[cap]. */
void memberstore_key(const char *prefix, memberstore_kind_t kind, const char *id, char *out,
                     size_t cap);
void memberstore_set_key(const char *prefix, memberstore_kind_t kind, char *out, size_t cap);

/* Register (or refresh) id with value for ttl_ms. Returns 0 (registered), 1 (the id's key holds
 * another value: copied into other; nothing changed), or -1 (why in err). */
int memberstore_register(struct redisContext *ctx, const char *prefix, memberstore_kind_t kind,
                         const char *id, const char *value, uint32_t ttl_ms, char *other,
                         size_t otherlen, char *err, size_t errlen);

/* Remove id and its key, if the key still holds value. Best effort: errors are ignored. */
void memberstore_deregister(struct redisContext *ctx, const char *prefix, memberstore_kind_t kind,
                            const char *id, const char *value);

/* Read the live ids with their values (in partition_member_t.endpoint) into *out (malloc'd, *n
 * entries; at most PARTITION_MEMBERS_MAX); ids whose keys expired are removed from the set and
 * counted into *expired (may be NULL). Returns 0, or -1 and why in err. */
int memberstore_read(struct redisContext *ctx, const char *prefix, memberstore_kind_t kind,
                     partition_member_t **out, size_t *n, uint64_t *expired, char *err,
                     size_t errlen);

/* Connect to redis_url (with the password in password_file if not NULL; bounded by timeout_ms),
 * read the live nodes under prefix, and put their ids ("a, b") into ids. Returns their number, or
 * -1 and why in err (the URL's password never in it). */
int memberstore_probe(const char *redis_url, const char *password_file, const char *prefix,
                      uint32_t timeout_ms, char *ids, size_t idslen, char *err, size_t errlen);

#endif
