/* SPDX-License-Identifier: MIT */
/* redisopts: --redis and --cluster (redisopts.h). */
#include "redisopts.h"

#include "err.h"
#include "secretfile.h"
#include "slog.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

void redisopts_defaults(redisopts_t *o)
{
    *o = (redisopts_t){.redis = "",
                       .password_file = "",
                       .sentinel_password_file = "",
                       .cluster = REDISOPTS_CLUSTER_DEFAULT};
}

static const opts_spec_t specs[] = {
    OPTS_SPEC(redisopts_t, "redis", "URL", OPTS_STRING, redis, OPTS_SECRET_URL, 0,
              "Redis for membership and snapshots, redis://[[USER]:PASSWORD@]HOST[:PORT][/DB], or "
              "through Sentinel: redis-sentinel://[[USER]:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]"
              "/MASTER[/DB] (sentinels' port 26379 by default; the credentials are the Redis "
              "servers')"),
    OPTS_SPEC(redisopts_t, "redis-password-file", "FILE", OPTS_STRING, password_file, 0, 0,
              "the Redis password, read from this file (first line) at each connection instead of "
              "the URL; the URL may still name the ACL user: redis://USER@HOST:PORT"),
    OPTS_SPEC(redisopts_t, "redis-sentinel-password-file", "FILE", OPTS_STRING,
              sentinel_password_file, 0, 0,
              "the sentinels' own password (their requirepass), read from this file (first line) "
              "at each connection to a sentinel; with a redis-sentinel:// URL only"),
    OPTS_SPEC(redisopts_t, "cluster", "NAME", OPTS_STRING, cluster, 0, 0,
              "the deployment's name: every Redis key is under it, so deployments sharing a Redis "
              "never meet"),
};

opts_table_t redisopts_spec(void)
{
    return OPTS_TABLE(specs);
}

int redisopts_check(const redisopts_t *o, char *err, size_t errlen)
{
    size_t n = strlen(o->cluster);
    bool ok = n >= 1 && n <= REDISOPTS_CLUSTER_MAX;
    for (size_t i = 0; ok && i < n; i++) {
        char c = o->cluster[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '_' || c == '.' || c == '-';
    }
    if (!ok) {
        err_set(err, errlen, "--cluster '%s': 1..%d of A-Z a-z 0-9 _ . -", o->cluster,
                REDISOPTS_CLUSTER_MAX);
        return -1;
    }
    if (*o->sentinel_password_file &&
        strncmp(o->redis, "redis-sentinel://", sizeof("redis-sentinel://") - 1) != 0) {
        err_set(err, errlen,
                "--redis-sentinel-password-file needs a redis-sentinel:// url in "
                "--redis");
        return -1;
    }
    if (*o->password_file && !*o->redis) {
        err_set(err, errlen, "--redis-password-file needs --redis");
        return -1;
    }
    const char *files[2][2] = {{"--redis-password-file", o->password_file},
                               {"--redis-sentinel-password-file", o->sentinel_password_file}};
    for (int i = 0; i < 2; i++) {
        if (!*files[i][1])
            continue;
        char pw[128], why[256];
        bool loose = false;
        int rc = secretfile_read(files[i][1], pw, sizeof(pw), &loose, why, sizeof(why));
        explicit_bzero(pw, sizeof(pw));
        if (rc != 0) {
            err_set(err, errlen, "%s %s", files[i][0], why);
            return -1;
        }
        if (loose)
            slog_msg(SLOG_WARN, "%s %s can be read by every user: chmod o-r it", files[i][0],
                     files[i][1]);
    }
    return 0;
}

const char *redisopts_password_file(const redisopts_t *o)
{
    return *o->password_file ? o->password_file : NULL;
}

void redisopts_cluster_prefix(const redisopts_t *o, char *out)
{
    snprintf(out, REDISOPTS_PREFIX_MAX, "%s", o->cluster);
}

void redisopts_standalone_prefix(const redisopts_t *o, char *out)
{
    snprintf(out, REDISOPTS_PREFIX_MAX, "%s:standalone", o->cluster);
}
