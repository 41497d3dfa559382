/* SPDX-License-Identifier: MIT */
/* memberstore: the member set's Redis protocol (memberstore.h). */
#include "memberstore.h"

#include "err.h"
#include "members.h"
#include "rconn.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void memberstore_key(const char *prefix, memberstore_kind_t kind, const char *id, char *out,
                     size_t cap)
{
    snprintf(out, cap, "%s:%s:%s", prefix, kind == MEMBERSTORE_GATEWAYS ? "gateway" : "member", id);
}

void memberstore_set_key(const char *prefix, memberstore_kind_t kind, char *out, size_t cap)
{
    snprintf(out, cap, "%s:%s", prefix, kind == MEMBERSTORE_GATEWAYS ? "gateways" : "members");
}

/* Register ARGV[3] in the set KEYS[2] with its key KEYS[1] = ARGV[1] for ARGV[2] ms, unless the
 * key holds another value (another process registered the same id): then return that value,
 * and change nothing. One script, so two processes starting with one id cannot both win. */
static const char register_lua[] = "local cur = redis.call('GET', KEYS[1]) "
                                   "if cur and cur ~= ARGV[1] then return cur end "
                                   "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) "
                                   "redis.call('SADD', KEYS[2], ARGV[3]) return ''";

/* Remove ARGV[2] from the set KEYS[2] and its key KEYS[1], only if the key is still ours
 * (= ARGV[1]): a refused duplicate must not deregister the live holder of its id. */
static const char deregister_lua[] = "if redis.call('GET', KEYS[1]) == ARGV[1] then "
                                     "redis.call('DEL', KEYS[1]) "
                                     "redis.call('SREM', KEYS[2], ARGV[2]) end return 0";

int memberstore_register(redisContext *ctx, const char *prefix, memberstore_kind_t kind,
                         const char *id, const char *value, uint32_t ttl_ms, char *other,
                         size_t otherlen, char *err, size_t errlen)
{
    char key[MEMBERSTORE_KEY_MAX], set[MEMBERSTORE_KEY_MAX];
    memberstore_key(prefix, kind, id, key, sizeof(key));
    memberstore_set_key(prefix, kind, set, sizeof(set));
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%u", ttl_ms);
    const char *argv[] = {"EVAL", register_lua, "2", key, set, value, ttl, id};
    size_t argl[8];
    for (int i = 0; i < 8; i++)
        argl[i] = strlen(argv[i]);
    redisReply *r = redisCommandArgv(ctx, 8, argv, argl);
    if (rconn_failed(ctx, r, "register", err, errlen)) {
        if (r)
            freeReplyObject(r);
        return -1;
    }
    int rc = 0;
    if (r->type == REDIS_REPLY_STRING && r->len > 0) {
        snprintf(other, otherlen, "%.*s", (int)r->len, r->str);
        rc = 1;
    } else if (r->type != REDIS_REPLY_STRING) {
        err_set(err, errlen, "register: unexpected reply");
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

void memberstore_deregister(redisContext *ctx, const char *prefix, memberstore_kind_t kind,
                            const char *id, const char *value)
{
    char key[MEMBERSTORE_KEY_MAX], set[MEMBERSTORE_KEY_MAX];
    memberstore_key(prefix, kind, id, key, sizeof(key));
    memberstore_set_key(prefix, kind, set, sizeof(set));
    const char *argv[] = {"EVAL", deregister_lua, "2", key, set, value, id};
    size_t argl[7];
    for (int i = 0; i < 7; i++)
        argl[i] = strlen(argv[i]);
    redisReply *r = redisCommandArgv(ctx, 7, argv, argl);
    if (r)
        freeReplyObject(r);
}

/* Removes ARGV[1] from the set KEYS[2] only if its key KEYS[1] still does not exist, so a node
 * that re-registered between our MGET and this call is not dropped. */
static const char srem_if_expired[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[1]) "
    "end return 0";

int memberstore_read(redisContext *ctx, const char *prefix, memberstore_kind_t kind,
                     partition_member_t **out, size_t *n, uint64_t *expired, char *err,
                     size_t errlen)
{
    *out = NULL;
    *n = 0;
    char set[MEMBERSTORE_KEY_MAX];
    memberstore_set_key(prefix, kind, set, sizeof(set));
    redisReply *ids = redisCommand(ctx, "SMEMBERS %s", set);
    if (rconn_failed(ctx, ids, "SMEMBERS", err, errlen) || ids->type != REDIS_REPLY_ARRAY) {
        if (ids && ids->type != REDIS_REPLY_ERROR)
            err_set(err, errlen, "SMEMBERS: not an array");
        if (ids)
            freeReplyObject(ids);
        return -1;
    }
    size_t k = ids->elements;
    if (k == 0) {
        freeReplyObject(ids);
        return 0;
    }
    /* argv for MGET: "MGET" and k keys; one block for the pointers, lengths and key texts. */
    const char **argv = calloc(k + 1, sizeof(*argv));
    size_t *argl = calloc(k + 1, sizeof(*argl));
    char *keys = calloc(k, MEMBERSTORE_KEY_MAX);
    partition_member_t *members = calloc(k, sizeof(*members));
    int rc = -1;
    redisReply *vals = NULL;
    if (!argv || !argl || !keys || !members) {
        err_set(err, errlen, "out of memory reading %zu members", k);
        goto done;
    }
    argv[0] = "MGET";
    argl[0] = 4;
    for (size_t i = 0; i < k; i++) {
        redisReply *e = ids->element[i];
        char *key = keys + i * MEMBERSTORE_KEY_MAX;
        if (e->type == REDIS_REPLY_STRING && members_valid_id(e->str, e->len)) {
            char id[PARTITION_ID_MAX];
            snprintf(id, sizeof(id), "%.*s", (int)e->len, e->str);
            memberstore_key(prefix, kind, id, key, MEMBERSTORE_KEY_MAX);
        } else {
            /* A foreign or broken entry: ask for a key that cannot exist, skip its answer. */
            snprintf(key, MEMBERSTORE_KEY_MAX, "%s:member:", prefix);
        }
        argv[i + 1] = key;
        argl[i + 1] = strlen(key);
    }
    vals = redisCommandArgv(ctx, (int)(k + 1), argv, argl);
    if (rconn_failed(ctx, vals, "MGET", err, errlen))
        goto done;
    if (vals->type != REDIS_REPLY_ARRAY || vals->elements != k) {
        err_set(err, errlen, "MGET: unexpected reply shape");
        goto done;
    }
    size_t live = 0, gone = 0;
    for (size_t i = 0; i < k; i++) {
        redisReply *e = ids->element[i], *v = vals->element[i];
        if (e->type != REDIS_REPLY_STRING || !members_valid_id(e->str, e->len))
            continue;
        if (v->type == REDIS_REPLY_STRING && members_valid_endpoint(v->str, v->len)) {
            if (live >= PARTITION_MEMBERS_MAX)
                continue;
            memcpy(members[live].id, e->str, e->len);
            memcpy(members[live].endpoint, v->str, v->len);
            live++;
        } else if (v->type == REDIS_REPLY_NIL) {
            const char *eargv[] = {"EVAL", srem_if_expired, "2", argv[i + 1], set, e->str};
            size_t eargl[] = {4, sizeof(srem_if_expired) - 1, 1, argl[i + 1], strlen(set), e->len};
            redisAppendCommandArgv(ctx, 6, eargv, eargl);
            gone++;
        }
    }
    for (size_t i = 0; i < gone; i++) {
        redisReply *r = NULL;
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK || !r) {
            err_set(err, errlen, "EVAL: %s", ctx->errstr);
            goto done;
        }
        if (r->type == REDIS_REPLY_INTEGER && r->integer > 0 && expired)
            (*expired)++;
        freeReplyObject(r);
    }
    *out = members;
    members = NULL;
    *n = live;
    rc = 0;
done:
    if (vals)
        freeReplyObject(vals);
    freeReplyObject(ids);
    free(members);
    free(keys);
    free(argl);
    free(argv);
    return rc;
}

int memberstore_probe(const char *redis_url, const char *password_file, const char *prefix,
                      uint32_t timeout_ms, char *ids, size_t idslen, char *err, size_t errlen)
{
    rconn_url_t url;
    if (rconn_parse_auth(redis_url, password_file, &url, err, errlen) != 0)
        return -1;
    redisContext *ctx = rconn_open(&url, timeout_ms, err, errlen);
    if (!ctx)
        return -1;
    partition_member_t *members = NULL;
    size_t n = 0;
    int rc = -1;
    if (memberstore_read(ctx, prefix, MEMBERSTORE_NODES, &members, &n, NULL, err, errlen) == 0) {
        rc = (int)n;
        size_t used = 0;
        if (idslen)
            ids[0] = '\0';
        for (size_t i = 0; i < n && used < idslen; i++) {
            int k = snprintf(ids + used, idslen - used, "%s%s", i ? ", " : "", members[i].id);
            if (k < 0)
                break;
            used += (size_t)k;
        }
    }
    free(members);
    redisFree(ctx);
    return rc;
}
