/* SPDX-License-Identifier: MIT */
/* ops: what every role serves on its admin listener (runtime/admin.h), apart from its own routes.
 *
 *   GET /metrics        Prometheus text: the role's collector, then build info and process facts
 *   GET /api/v1/stats   the same numbers as JSON ({"name": {"type", "help", "samples"}})
 *   GET /healthz        200 while the process's loops turn, else 503 with the stalled loop
 *   GET /readyz         200 once the role can serve (its own rule), else 503 with why not
 *
 * The options --admin ADDR:PORT|off and --admin-token-file FILE come from opsopts_spec(); each
 * role picks its --admin default (docs/operations.md lists them). The collector and the probes
 * run on the admin thread, one call at a time: they may only read what is safe to read from
 * another thread (the modules' *_stats() functions, atomics). */
#ifndef SHOAL_OPS_H
#define SHOAL_OPS_H

#include "admin.h"
#include "metrics.h"
#include "opts.h"
#include "redisopts.h"
#include "sentinelwatch.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *admin;            /* "ADDR:PORT" or "off" */
    const char *admin_token_file; /* "" = write endpoints refused */
} opsopts_t;

/* --admin and --admin-token-file, relative to an opsopts_t. */
opts_table_t opsopts_spec(void);

/* Fill the role's metrics into m (families and samples; see metrics.h). */
typedef void (*ops_collect_fn)(void *arg, metrics_t *m);
/* true if fine; else false with a one-line reason in why. */
typedef bool (*ops_probe_fn)(void *arg, char *why, size_t len);

typedef struct {
    const char *role; /* "shoal", "shoal-gateway", "shoal-node" */
    ops_collect_fn collect;
    ops_probe_fn alive; /* NULL: always alive */
    ops_probe_fn ready; /* NULL: ready once started */
    void *arg;          /* for all three */
} ops_config_t;

typedef struct ops ops_t;

/* Check the options, read the token file and register the common routes. Binds nothing (so a
 * role can add its routes to ops_admin() first). NULL with a reason in err. */
ops_t *ops_new(const opsopts_t *o, const ops_config_t *cfg, char *err, size_t errlen);

/* The admin listener, for the role's own routes (before ops_start). */
admin_t *ops_admin(ops_t *self);

/* Bind and start serving (after the signals were blocked). Returns 0 or -1 with err. */
int ops_start(ops_t *self, char *err, size_t errlen);

/* Where it listens ("127.0.0.1:6970" or "off"). */
void ops_describe(const ops_t *self, char *out, size_t outlen);

/* SIGHUP: re-read the token file; a failure is logged and the old token stays. */
void ops_reload(ops_t *self);

/* Stop the listener and free. NULL-safe. */
void ops_destroy(ops_t **self_p);

/* ---- helpers for the roles' routes and collectors ------------------------------------------ */

/* Parse a 40-hex-digit info-hash (either case). Returns 0, or -1. */
int ops_parse_hash(const char *text, uint8_t out[20]);

/* 40 lowercase hex digits and a NUL. */
void ops_hash_hex(const uint8_t h[20], char out[41]);

/* shoal_loop_age_seconds{loop=...}: ms since that loop's slowest thread last turned. */
void ops_loop_age(metrics_t *m, const char *loop, uint32_t age_ms);

/* The start-up check of --redis (and --redis-password-file): one connection, AUTH and SELECT.
 * Returns 0 if Redis took the credentials, 1 if it did not answer (logged as a warning: the roles
 * keep retrying, as for an outage), or -1 if it refused them (wrong password, unknown or disabled
 * user, a bad DB, a URL or file that cannot be used; why in err: a configuration error, exit 2). */
#define OPS_REDIS_CHECK_MS 1000 /* the check's connect and command timeout (node, gateway) */
int ops_redis_check(const char *url, const char *password_file, uint32_t timeout_ms, char *err,
                    size_t errlen);

/* --redis's process-wide side, right after redisopts_check() and before anything parses the URL:
 * the sentinels' password file for every redis-sentinel:// URL (rconn_set_sentinel_password_file),
 * then ops_redis_check() of the URL (same returns). */
int ops_redis_setup(const redisopts_t *o, uint32_t timeout_ms, char *err, size_t errlen);

/* With a redis-sentinel:// URL, start the +switch-master watcher into *watch (the caller destroys
 * it after the parts that use Redis); *watch = NULL otherwise. 0, or -1 and why in err. */
int ops_redis_watch(const redisopts_t *o, sentinelwatch_t **watch, char *err, size_t errlen);

/* shoal_redis_sentinel_switches_total: the watcher's count (nothing without a watcher). */
void ops_redis_sentinel(metrics_t *m, const sentinelwatch_t *watch);

/* shoal_redis_master_changes_total{component}: connections that found another Redis server. */
void ops_redis_master_changes(metrics_t *m, const char *component, uint64_t changes);

/* shoal_redis_errors_total and shoal_redis_connected for one component's connection. */
void ops_redis_health(metrics_t *m, const char *component, uint64_t errors, bool connected);

/* Reply with a jansson value as JSON (takes the reference; NULL means out of memory: 500). */
void ops_reply_json(admin_reply_t *reply, int status, json_t *value);

#endif
