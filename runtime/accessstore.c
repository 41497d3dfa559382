/* SPDX-License-Identifier: MIT */
/* accessstore: the access list's Redis protocol (accessstore.h). */
#include "accessstore.h"

#include "err.h"
#include "rconn.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define LOAD_TRIES   4 /* reads of the whole set before giving up on a list that keeps changing */
#define PIPE_WINDOW  8 /* SADD chunks in flight during a replace */
#define STAGE_SUFFIX 16

void accessstore_set_key(const char *prefix, char *out, size_t cap)
{
    snprintf(out, cap, "%s:access:set", prefix);
}

void accessstore_version_key(const char *prefix, char *out, size_t cap)
{
    snprintf(out, cap, "%s:access:version", prefix);
}

void accessstore_log_key(const char *prefix, char *out, size_t cap)
{
    snprintf(out, cap, "%s:access:log", prefix);
}

/* A version as Redis holds it (decimal digits only). 0, or -1 if text is not one. */
static int parse_version(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* SADD or SREM (ARGV[2]) KEYS[1] ARGV[1]; only if that changed the set, INCR KEYS[2] and log the
 * change in KEYS[3] as ARGV[3] ('+' or '-') .. hash .. version, keeping the last LOG_MAX.
 * Returns {changed, version}. The version is checked first: a script is not rolled back by a
 * later error, so a failing INCR must not follow a change of the set. */
static const char edit_lua[] =
    "local cur = redis.call('GET', KEYS[2]) "
    "if cur and not tonumber(cur) then return redis.error_reply('ERR access version is not a "
    "number') end "
    "if redis.call(ARGV[2], KEYS[1], ARGV[1]) == 0 then return {0, tonumber(cur or '0')} end "
    "local v = redis.call('INCR', KEYS[2]) "
    "redis.call('RPUSH', KEYS[3], ARGV[3] .. ARGV[1] .. string.format('%d', v)) "
    "redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1) "
    "return {1, v}";

/* Commit a replace: KEYS = set, version, staging, log; ARGV = n ('0': delete the set), if_absent
 * ('1': only when the version key is absent), floor. The old set is UNLINKed before the RENAME:
 * RENAME would free a large old set on Redis's main thread (~0.5 s for 1 M members here), UNLINK
 * frees it in the background. The change log is cleared: a replace is no list of changes, so a
 * reader behind it reads the list in full. The new version is max(old + 1, floor + 1), written with
 * %d because Lua's tostring() would write large numbers as 1e+15. */
static const char commit_lua[] =
    "local cur = redis.call('GET', KEYS[2]) "
    "if cur and not tonumber(cur) then redis.call('DEL', KEYS[3]) "
    "return redis.error_reply('ERR access version is not a number') end "
    "if ARGV[2] == '1' and cur then redis.call('DEL', KEYS[3]) return {0, tonumber(cur)} end "
    "if ARGV[1] == '0' then redis.call('UNLINK', KEYS[1], KEYS[3]) "
    "elseif redis.call('EXISTS', KEYS[3]) == 0 then "
    "return redis.error_reply('ERR the staged list expired before it was committed') "
    "else redis.call('UNLINK', KEYS[1]) redis.call('RENAME', KEYS[3], KEYS[1]) "
    "redis.call('PERSIST', KEYS[1]) end "
    "redis.call('DEL', KEYS[4]) "
    "local v = (tonumber(cur) or 0) + 1 "
    "local f = tonumber(ARGV[3]) + 1 "
    "if f > v then v = f end "
    "redis.call('SET', KEYS[2], string.format('%d', v)) "
    "return {1, v}";

/* GET the version and SCARD the set in one step. Returns {version or '', card}. */
/* GET the version and the last ARGV[1] logged changes in one step. */
static const char changes_lua[] =
    "return {redis.call('GET', KEYS[1]) or '', redis.call('LRANGE', KEYS[2], -tonumber(ARGV[1]), "
    "-1)}";

static const char head_lua[] =
    "return {redis.call('GET', KEYS[2]) or '', redis.call('SCARD', KEYS[1])}";

/* Frees r (NULL-safe) and returns rc: keeps the error paths short. */
static int done_with(redisReply *r, int rc)
{
    if (r)
        freeReplyObject(r);
    return rc;
}

/* An integer element of a script's array reply, as a version. */
static int reply_u64(const redisReply *e, uint64_t *out)
{
    if (e->type != REDIS_REPLY_INTEGER || e->integer < 0)
        return -1;
    *out = (uint64_t)e->integer;
    return 0;
}

/* Run an edit script (cmd = "SADD" or "SREM"). */
static int edit(redisContext *c, const char *prefix, const uint8_t h[ASET_HASH_LEN],
                const char *cmd, uint64_t *version_out, char *err, size_t errlen)
{
    char set[ACCESSSTORE_KEY_MAX], ver[ACCESSSTORE_KEY_MAX], log[ACCESSSTORE_KEY_MAX];
    accessstore_set_key(prefix, set, sizeof(set));
    accessstore_version_key(prefix, ver, sizeof(ver));
    accessstore_log_key(prefix, log, sizeof(log));
    char keep[16];
    snprintf(keep, sizeof(keep), "%d", ACCESSSTORE_LOG_MAX);
    const char *op = strcmp(cmd, "SADD") == 0 ? "+" : "-";
    const char *argv[] = {"EVAL", edit_lua, "3", set, ver, log, (const char *)h, cmd, op, keep};
    size_t argl[10];
    for (int i = 0; i < 10; i++) /* h (argv[6]) is 20 raw bytes: never strlen() it */
        argl[i] = i == 6 ? ASET_HASH_LEN : i == 1 ? sizeof(edit_lua) - 1 : strlen(argv[i]);
    redisReply *r = redisCommandArgv(c, 10, argv, argl);
    if (rconn_failed(c, r, cmd, err, errlen))
        return done_with(r, -1);
    uint64_t changed, v;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || reply_u64(r->element[0], &changed) ||
        reply_u64(r->element[1], &v)) {
        err_set(err, errlen, "%s: unexpected reply", cmd);
        return done_with(r, -1);
    }
    if (version_out)
        *version_out = v;
    return done_with(r, changed ? 1 : 0);
}

int accessstore_add(redisContext *c, const char *prefix, const uint8_t h[ASET_HASH_LEN],
                    uint64_t *version_out, char *err, size_t errlen)
{
    return edit(c, prefix, h, "SADD", version_out, err, errlen);
}

int accessstore_remove(redisContext *c, const char *prefix, const uint8_t h[ASET_HASH_LEN],
                       uint64_t *version_out, char *err, size_t errlen)
{
    return edit(c, prefix, h, "SREM", version_out, err, errlen);
}

int accessstore_version(redisContext *c, const char *prefix, uint64_t *version_out, char *err,
                        size_t errlen)
{
    char ver[ACCESSSTORE_KEY_MAX];
    accessstore_version_key(prefix, ver, sizeof(ver));
    const char *argv[] = {"GET", ver};
    size_t argl[] = {3, strlen(ver)};
    redisReply *r = redisCommandArgv(c, 2, argv, argl);
    if (rconn_failed(c, r, "GET version", err, errlen))
        return done_with(r, -1);
    if (r->type == REDIS_REPLY_NIL) {
        *version_out = 0;
        return done_with(r, 0);
    }
    if (r->type != REDIS_REPLY_STRING || parse_version(r->str, r->len, version_out) != 0) {
        err_set(err, errlen, "GET version: %s does not hold an unsigned integer", ver);
        return done_with(r, -1);
    }
    return done_with(r, 0);
}

/* A staging key nobody else picks: the prefix and 64 random bits (pid and clock if getrandom()
 * fails, which it does not after boot). */
static void staging_key(const char *prefix, char *out, size_t cap)
{
    uint64_t r;
    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        r = (uint64_t)getpid() << 40 ^ (uint64_t)ts.tv_sec << 20 ^ (uint64_t)ts.tv_nsec;
    }
    snprintf(out, cap, "%s:access:staging:%0*" PRIx64, prefix, STAGE_SUFFIX, r);
}

/* Read one pipelined reply; remember the first Redis error in err (and *bad) but keep reading
 * so the connection stays in step. -1 only if the connection failed (it is then unusable). */
static int pipe_read(redisContext *c, const char *what, bool *bad, char *err, size_t errlen)
{
    redisReply *r = NULL;
    if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
        rconn_failed(c, NULL, what, err, errlen);
        *bad = true;
        return -1;
    }
    if (!*bad && rconn_failed(c, r, what, err, errlen))
        *bad = true;
    freeReplyObject(r);
    return 0;
}

/* SADD hashes into key in chunks, at most PIPE_WINDOW in flight, the key expiring after
 * ACCESSSTORE_STAGE_MS. Returns 0, -1 (a Redis error: the connection is fine), or -2 (the
 * connection failed). */
static int stage(redisContext *c, const char *key, const uint8_t *hashes, size_t n, char *err,
                 size_t errlen)
{
    size_t cap = (n < ACCESSSTORE_CHUNK ? n : ACCESSSTORE_CHUNK) + 2;
    const char **argv = malloc(cap * sizeof(*argv));
    size_t *argl = malloc(cap * sizeof(*argl));
    if (!argv || !argl) {
        free(argv);
        free(argl);
        err_set(err, errlen, "out of memory staging %zu hashes", n);
        return -1;
    }
    char ms[24];
    snprintf(ms, sizeof(ms), "%d", ACCESSSTORE_STAGE_MS);
    const char *eargv[] = {"PEXPIRE", key, ms};
    size_t eargl[] = {7, strlen(key), strlen(ms)};
    bool bad = false;
    size_t pending = 0;
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0; off += ACCESSSTORE_CHUNK) {
        size_t k = n - off < ACCESSSTORE_CHUNK ? n - off : ACCESSSTORE_CHUNK;
        argv[0] = "SADD";
        argl[0] = 4;
        argv[1] = key;
        argl[1] = strlen(key);
        for (size_t i = 0; i < k; i++) {
            argv[2 + i] = (const char *)hashes + (off + i) * ASET_HASH_LEN;
            argl[2 + i] = ASET_HASH_LEN;
        }
        /* hiredis copies the command into its output buffer, so argv is reused at once. */
        if (redisAppendCommandArgv(c, (int)(k + 2), argv, argl) != REDIS_OK) {
            err_set(err, errlen, "SADD: out of memory");
            rc = -2;
            break;
        }
        pending++;
        if (off == 0) {
            if (redisAppendCommandArgv(c, 3, eargv, eargl) != REDIS_OK) {
                err_set(err, errlen, "PEXPIRE: out of memory");
                rc = -2;
                break;
            }
            pending++;
        }
        while (pending > PIPE_WINDOW && rc == 0) {
            rc = pipe_read(c, "SADD", &bad, err, errlen) ? -2 : 0;
            pending--;
        }
    }
    while (pending > 0 && rc == 0) {
        rc = pipe_read(c, "SADD", &bad, err, errlen) ? -2 : 0;
        pending--;
    }
    free(argv);
    free(argl);
    if (rc == 0 && bad)
        rc = -1;
    return rc;
}

/* Stage and commit (if_absent: only when no list exists). Returns 1 (stored), 0 (a list existed;
 * only with if_absent), or -1. */
static int store(redisContext *c, const char *prefix, const uint8_t *hashes, size_t n,
                 bool if_absent, uint64_t floor, uint64_t *version_out, char *err, size_t errlen)
{
    char set[ACCESSSTORE_KEY_MAX], ver[ACCESSSTORE_KEY_MAX], stg[ACCESSSTORE_KEY_MAX];
    char log[ACCESSSTORE_KEY_MAX];
    accessstore_set_key(prefix, set, sizeof(set));
    accessstore_version_key(prefix, ver, sizeof(ver));
    accessstore_log_key(prefix, log, sizeof(log));
    staging_key(prefix, stg, sizeof(stg));
    if (n > ASET_MAX) { /* no gateway could load it */
        err_set(err, errlen, "%zu hashes: more than the %u a list may hold", n, ASET_MAX);
        return -1;
    }
    if (if_absent) {
        /* Skip staging a large list when a list is there already (the common case at start). */
        uint64_t v;
        if (accessstore_version(c, prefix, &v, err, errlen) != 0)
            return -1;
        if (v != 0) {
            if (version_out)
                *version_out = v;
            return 0;
        }
    }
    if (n > 0) {
        int s = stage(c, stg, hashes, n, err, errlen);
        if (s == -1) {
            redisReply *d = redisCommand(c, "DEL %b", stg, strlen(stg));
            return done_with(d, -1);
        }
        if (s != 0)
            return -1;
    }
    char nbuf[24], fbuf[24];
    snprintf(nbuf, sizeof(nbuf), "%zu", n);
    snprintf(fbuf, sizeof(fbuf), "%" PRIu64, floor);
    const char *argv[] = {"EVAL", commit_lua, "4", set, ver, stg, log, nbuf, if_absent ? "1" : "0",
                          fbuf};
    size_t argl[10];
    for (int i = 0; i < 10; i++)
        argl[i] = strlen(argv[i]);
    redisReply *r = redisCommandArgv(c, 10, argv, argl);
    if (rconn_failed(c, r, "commit", err, errlen))
        return done_with(r, -1);
    uint64_t stored, v;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || reply_u64(r->element[0], &stored) ||
        reply_u64(r->element[1], &v)) {
        err_set(err, errlen, "commit: unexpected reply");
        return done_with(r, -1);
    }
    if (version_out)
        *version_out = v;
    return done_with(r, stored ? 1 : 0);
}

int accessstore_replace(redisContext *c, const char *prefix, const uint8_t *hashes, size_t n,
                        uint64_t *version_out, char *err, size_t errlen)
{
    return store(c, prefix, hashes, n, false, 0, version_out, err, errlen) == 1 ? 0 : -1;
}

int accessstore_store_if_absent(redisContext *c, const char *prefix, const uint8_t *hashes,
                                size_t n, uint64_t floor, uint64_t *version_out, char *err,
                                size_t errlen)
{
    return store(c, prefix, hashes, n, true, floor, version_out, err, errlen);
}

/* The version and the set's cardinality, read in one step. */
static int head(redisContext *c, const char *set, const char *ver, uint64_t *version,
                uint64_t *card, char *err, size_t errlen)
{
    const char *argv[] = {"EVAL", head_lua, "2", set, ver};
    size_t argl[] = {4, sizeof(head_lua) - 1, 1, strlen(set), strlen(ver)};
    redisReply *r = redisCommandArgv(c, 5, argv, argl);
    if (rconn_failed(c, r, "read version", err, errlen))
        return done_with(r, -1);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || reply_u64(r->element[1], card)) {
        err_set(err, errlen, "read version: unexpected reply");
        return done_with(r, -1);
    }
    *version = 0;
    if (r->element[0]->len > 0 &&
        parse_version(r->element[0]->str, r->element[0]->len, version) != 0) {
        err_set(err, errlen, "read version: %s does not hold an unsigned integer", ver);
        return done_with(r, -1);
    }
    return done_with(r, 0);
}

/* One SSCAN pass over set into *arr (grown as needed; *n entries). Returns 0 (complete), 1 (gave
 * up: more calls or members than the set could give unless it changed meanwhile), or -1. */
static int scan(redisContext *c, const char *set, uint64_t card, uint8_t **arr, size_t *cap,
                size_t *n, char *err, size_t errlen)
{
    char cursor[24] = "0";
    char count[16];
    snprintf(count, sizeof(count), "%d", ACCESSSTORE_CHUNK);
    /* SSCAN visits at least COUNT buckets a call and the table has at most about 2 * card of
     * them, so an unchanged set needs far fewer calls than this. */
    uint64_t max_calls = card / 8 + 64, seen = 0;
    for (uint64_t calls = 0; calls < max_calls; calls++) {
        const char *argv[] = {"SSCAN", set, cursor, "COUNT", count};
        size_t argl[] = {5, strlen(set), strlen(cursor), 5, strlen(count)};
        redisReply *r = redisCommandArgv(c, 5, argv, argl);
        if (rconn_failed(c, r, "SSCAN", err, errlen))
            return done_with(r, -1);
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof(cursor) ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            err_set(err, errlen, "SSCAN: unexpected reply");
            return done_with(r, -1);
        }
        redisReply *m = r->element[1];
        seen += m->elements;
        if (seen > 2 * card + ACCESSSTORE_CHUNK)
            return done_with(r, 1);
        if (*n + m->elements > *cap) {
            size_t want = *cap * 2 > *n + m->elements ? *cap * 2 : *n + m->elements;
            uint8_t *grown = realloc(*arr, want * ASET_HASH_LEN);
            if (!grown) {
                err_set(err, errlen, "out of memory loading %zu hashes", want);
                return done_with(r, -1);
            }
            *arr = grown;
            *cap = want;
        }
        for (size_t i = 0; i < m->elements; i++) {
            const redisReply *e = m->element[i];
            if (e->type == REDIS_REPLY_STRING && e->len == ASET_HASH_LEN)
                memcpy(*arr + (*n)++ * ASET_HASH_LEN, e->str, ASET_HASH_LEN);
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        freeReplyObject(r);
        if (strcmp(cursor, "0") == 0)
            return 0;
    }
    return 1;
}

int accessstore_load_raw(redisContext *c, const char *prefix, uint8_t **hashes_out, size_t *n_out,
                         uint64_t *version_out, char *err, size_t errlen)
{
    *hashes_out = NULL;
    *n_out = 0;
    char set[ACCESSSTORE_KEY_MAX], ver[ACCESSSTORE_KEY_MAX];
    accessstore_set_key(prefix, set, sizeof(set));
    accessstore_version_key(prefix, ver, sizeof(ver));
    for (int attempt = 0; attempt < LOAD_TRIES; attempt++) {
        uint64_t v1, card;
        if (head(c, set, ver, &v1, &card, err, errlen) != 0)
            return -1;
        if (card > ASET_MAX) {
            err_set(err, errlen, "%s holds %" PRIu64 " members, more than %u", set, card, ASET_MAX);
            return -1;
        }
        if (card == 0) { /* both read in one step: nothing to scan */
            *version_out = v1;
            return 0;
        }
        size_t cap = (size_t)card, n = 0;
        uint8_t *arr = malloc(cap * ASET_HASH_LEN);
        if (!arr) {
            err_set(err, errlen, "out of memory loading %" PRIu64 " hashes", card);
            return -1;
        }
        int s = scan(c, set, card, &arr, &cap, &n, err, errlen);
        uint64_t v2 = 0;
        if (s == 0 && accessstore_version(c, prefix, &v2, err, errlen) != 0)
            s = -1;
        if (s == 0 && v2 == v1) {
            *hashes_out = arr;
            *n_out = n;
            *version_out = v1;
            return 0;
        }
        free(arr);
        if (s < 0)
            return -1;
    }
    err_set(err, errlen, "the access list changed during each of %d reads", LOAD_TRIES);
    return -1;
}

int accessstore_load(redisContext *c, const char *prefix, aset_builder_t *b, uint64_t *version_out,
                     char *err, size_t errlen)
{
    uint8_t *arr;
    size_t n;
    uint64_t v;
    if (accessstore_load_raw(c, prefix, &arr, &n, &v, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (aset_builder_add(b, arr + i * ASET_HASH_LEN) != 0) {
            /* The builder cannot take hashes back; say how far it got. */
            err_set(err, errlen, "the builder refused hash %zu of %zu (out of memory or full)",
                    i + 1, n);
            free(arr);
            return -1;
        }
    }
    free(arr);
    *version_out = v;
    return 0;
}

int accessstore_changes(redisContext *c, const char *prefix, uint64_t since,
                        accessstore_change_t *out, size_t max, size_t *n_out, uint64_t *version_out,
                        char *err, size_t errlen)
{
    *n_out = 0;
    char ver[ACCESSSTORE_KEY_MAX], log[ACCESSSTORE_KEY_MAX], count[24];
    accessstore_version_key(prefix, ver, sizeof(ver));
    accessstore_log_key(prefix, log, sizeof(log));
    size_t ask = max < ACCESSSTORE_LOG_MAX ? max : ACCESSSTORE_LOG_MAX;
    snprintf(count, sizeof(count), "%zu", ask);
    const char *argv[] = {"EVAL", changes_lua, "2", ver, log, count};
    size_t argl[6];
    for (int i = 0; i < 6; i++)
        argl[i] = strlen(argv[i]);
    redisReply *r = redisCommandArgv(c, 6, argv, argl);
    if (rconn_failed(c, r, "read changes", err, errlen))
        return done_with(r, -1);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
        err_set(err, errlen, "read changes: unexpected reply");
        return done_with(r, -1);
    }
    uint64_t v = 0;
    if (r->element[0]->len > 0 && parse_version(r->element[0]->str, r->element[0]->len, &v) != 0) {
        err_set(err, errlen, "read changes: %s does not hold an unsigned integer", ver);
        return done_with(r, -1);
    }
    *version_out = v;
    if (v < since || v - since > ask) /* restarted, or more changes than we may take */
        return done_with(r, v == since ? 0 : 1);
    /* The log's tail must hold exactly the versions since+1 .. v, one entry each. */
    const redisReply *log_r = r->element[1];
    uint64_t want = v - since;
    if (log_r->elements < want)
        return done_with(r, 1);
    for (size_t i = 0; i < want; i++) {
        const redisReply *e = log_r->element[log_r->elements - want + i];
        uint64_t ev;
        if (e->type != REDIS_REPLY_STRING || e->len <= 1 + ASET_HASH_LEN ||
            (e->str[0] != '+' && e->str[0] != '-') ||
            parse_version(e->str + 1 + ASET_HASH_LEN, e->len - 1 - ASET_HASH_LEN, &ev) != 0 ||
            ev != since + 1 + i)
            return done_with(r, 1);
        out[i].present = e->str[0] == '+';
        memcpy(out[i].hash, e->str + 1, ASET_HASH_LEN);
    }
    *n_out = (size_t)want;
    return done_with(r, 0);
}
