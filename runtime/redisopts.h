/* SPDX-License-Identifier: MIT */
/* redisopts: the Redis options every role shares (--redis, --cluster), spelled, checked and
 * documented once, and the key prefixes they give.
 *
 * --cluster NAME namespaces one deployment's keys from another's in the same Redis: a cluster's
 * nodes and gateways use the prefix NAME ("NAME:member:ID", "NAME:{pP}:epoch", ...); a standalone
 * tracker uses "NAME:standalone", a key space no cluster uses (a cluster's keys after "NAME:" are
 * "member:", "members", "leaving:", "{p" and the access list's "access:"), so pointing one at a
 * cluster's Redis cannot disturb it. Names are 1..32 of [A-Za-z0-9_.-]. */
#ifndef SHOAL_REDISOPTS_H
#define SHOAL_REDISOPTS_H

#include "opts.h"

#include <stddef.h>

#define REDISOPTS_CLUSTER_DEFAULT "shoal"
#define REDISOPTS_CLUSTER_MAX     32
#define REDISOPTS_PREFIX_MAX      (REDISOPTS_CLUSTER_MAX + 16)

typedef struct {
    const char *redis;                  /* "" for none */
    const char *password_file;          /* "" for none: the Redis password, out of argv and env */
    const char *sentinel_password_file; /* "" for none: the sentinels' password */
    const char *cluster;                /* the namespace */
} redisopts_t;

void redisopts_defaults(redisopts_t *o);

/* The option specs (--redis, --redis-password-file, --redis-sentinel-password-file, --cluster),
 * offsets relative to a redisopts_t. Static storage. */
opts_table_t redisopts_spec(void);

/* Check the cluster name and the password files (given with --redis, the sentinels' with a
 * redis-sentinel:// URL only; readable, not empty, one line; a warning if every user may read
 * one). Returns 0, or -1 and why in err. (The URL is checked
 * by whoever connects: it knows what it needs; rconn_check() also refuses a URL that has a
 * password when the file is given.) */
int redisopts_check(const redisopts_t *o, char *err, size_t errlen);

/* The password file for rconn_parse_auth(): NULL when none is given. */
const char *redisopts_password_file(const redisopts_t *o);

/* The key prefix of a cluster member (node or gateway) into out[REDISOPTS_PREFIX_MAX]. */
void redisopts_cluster_prefix(const redisopts_t *o, char *out);

/* The key prefix of a standalone tracker into out[REDISOPTS_PREFIX_MAX]. */
void redisopts_standalone_prefix(const redisopts_t *o, char *out);

#endif
