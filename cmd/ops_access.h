/* SPDX-License-Identifier: MIT */
/* ops_access: the access list's admin API, reload and metrics, for the roles that enforce it
 * (shoal, shoal-gateway).
 *
 * Where the list lives: without Redis, in this process (the --access-list file, then the API's
 * edits, which last until the file is read again); with Redis, in Redis (runtime/accesssync.h):
 * edits through any process's API reach every process of the cluster within a poll (250 ms), a
 * restarted process reads it back, and the file only seeds a cluster that has no list yet. A
 * reload (SIGHUP, POST /api/v1/access/reload) reads the file again and makes it the list: this
 * process's, or with Redis the whole cluster's.
 *
 *   GET    /api/v1/access               mode, version, entries; ?offset=K&limit=N lists hashes
 *   GET    /api/v1/access/{hash}        whether it is listed and whether it would be served
 *   PUT    /api/v1/access/{hash}        list it                       (bearer token)
 *   DELETE /api/v1/access/{hash}        unlist it                     (bearer token)
 *   POST   /api/v1/access/reload        read --access-list again      (bearer token) */
#ifndef SHOAL_OPS_ACCESS_H
#define SHOAL_OPS_ACCESS_H

#include "access.h"
#include "daemon.h"
#include "ops.h"
#include "slog.h"

typedef struct ops_access ops_access_t;

typedef struct {
    access_t *access;                /* borrowed: outlives this */
    const char *list_file;           /* --access-list, "" if none */
    const char *redis_url;           /* NULL: the list is this process's */
    const char *redis_password_file; /* NULL, or the Redis password's file */
    const char *prefix;              /* with Redis: the key prefix */
    slog_fn log;                     /* the Redis poller's lines */
} ops_access_config_t;

/* With Redis, also start the poller (seeded with the file's list). NULL with a reason in err. */
ops_access_t *ops_access_new(const ops_access_config_t *cfg, char *err, size_t errlen);

/* ops_access_new() as a daemon does it: the list file of --access-list, Redis if redis_url is not
 * empty (the keys under prefix, the password in redis_password_file if not NULL), the poller's
 * lines to the log. */
ops_access_t *ops_access_open(access_t *access, const char *list_file, const char *redis_url,
                              const char *redis_password_file, const char *prefix, char *err,
                              size_t errlen);

/* Register the routes above. Returns 0, or -1 if the route table is full. */
int ops_access_routes(admin_t *admin, ops_access_t *self);

/* Read the file again and make it the list (this process's, or the cluster's). With force false
 * (SIGHUP), only if the file's hashes differ from those this process last read from it, so a
 * reload for another option (a log level) does not undo the API's edits, here or in the cluster;
 * with force true (POST /api/v1/access/reload), always. Returns the number of entries put in
 * force, 0 if nothing changed (or there is no file), or -1 with a reason in err (the list is
 * unchanged). */
long ops_access_reload(ops_access_t *self, bool force, char *err, size_t errlen);

/* For a role's daemon_apply_fn (SIGHUP): a changed --access-mode or --access-list applies live
 * and is adopted into the running config (d); false for any other option. */
bool ops_access_apply(ops_access_t *self, daemon_t *d, const opts_spec_t *s, const void *fresh);

/* ops_access_reload(self, false) with its outcome logged (for SIGHUP). */
void ops_access_reload_logged(ops_access_t *self);

/* The SIGHUP hook of a role with an access list (shoal, shoal-gateway), for daemon_on_reload()
 * with an ops_reload_t: the config file again (log level and format, the access mode and list
 * apply live; the rest is reported as needing a restart), then the access list file and the
 * admin token. */
typedef struct {
    daemon_t *d;
    ops_t *ops;
    ops_access_t *access;
} ops_reload_t;
void ops_access_on_reload(void *arg);

/* Mode, entries, version, checks allowed/refused, and the poller's loads and errors. */
void ops_access_metrics(metrics_t *m, ops_access_t *self);

/* Stop the poller, free. NULL-safe. */
void ops_access_destroy(ops_access_t **self_p);

#endif
