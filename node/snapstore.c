/* SPDX-License-Identifier: MIT */
/* snapstore: fenced partition snapshots in Redis (see snapstore.h for the keys and the fence).
 *
 * Scripts go as EVAL with their text: Redis caches compiled scripts by their digest, so this
 * costs a few hundred bytes per call and never meets NOSCRIPT after a Redis restart.
 *
 * Invariant: ctx is NULL or a connection whose pipeline is empty between calls (a failed call
 * drops it, since answers may still be in flight). */
#include "snapstore.h"

#include "mono.h"

#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_MAX       (64 + 32)
#define LOAD_ROUND    64
#define WRITE_ROUND_B (4u << 20)
#define WAIT_MS       100  /* how long a WAIT waits for a replica */
#define REPLICAS_MS   5000 /* how often the master's replica count is read again */

/* KEYS: epoch, owner. ARGV: id, the owner the caller saw ("" for none). Acquires only if the
 * owner is still the one seen, none, or the caller: another node that acquired since the caller
 * looked is never overwritten (the caller looks again). Returns the new epoch, or 0. */
static const char acquire_lua[] = "local o = redis.call('GET', KEYS[2]) or '' "
                                  "if o ~= '' and o ~= ARGV[1] and o ~= ARGV[2] then return 0 end "
                                  "local e = redis.call('INCR', KEYS[1]) "
                                  "redis.call('SET', KEYS[2], ARGV[1]) return e";

/* KEYS: epoch, owner, snap. ARGV: epoch, snapshot ("" keeps the stored one), release "1"/"0",
 * writer id. */
static const char write_lua[] = "local e = redis.call('GET', KEYS[1]) "
                                "if not e then return -1 end "
                                "if e ~= ARGV[1] or redis.call('GET', KEYS[2]) ~= ARGV[4] then "
                                "return 0 end "
                                "if ARGV[2] ~= '' then redis.call('SET', KEYS[3], ARGV[2]) end "
                                "if ARGV[3] == '1' then redis.call('SET', KEYS[2], '') end "
                                "return 1";

struct snapstore {
    rconn_url_t url;
    char prefix[64];
    char self_id[PARTITION_ID_MAX];
    uint32_t timeout_ms;
    redisContext *ctx;
    rconn_info_t info;          /* of ctx's server */
    char last_id[RCONN_ID_MAX]; /* the identity of the last server connected to */
    int64_t replicas_read_ms;   /* mono_ms() when info.replicas was read */
    char err[512];
    snapstore_stats_t st;
};

static void fail(snapstore_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(snapstore_t *self, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(self->err, sizeof(self->err), fmt, ap);
    va_end(ap);
    self->st.errors++;
    if (self->ctx) {
        redisFree(self->ctx);
        self->ctx = NULL;
    }
}

/* A reply that is missing or a Redis error: the call fails. */
static bool bad_reply(snapstore_t *self, redisReply *r, const char *what)
{
    char why[400];
    if (!rconn_failed(self->ctx, r, what, why, sizeof(why)))
        return false;
    fail(self, "%s", why);
    return true;
}

static redisReply *next_reply(snapstore_t *self)
{
    redisReply *r = NULL;
    if (redisGetReply(self->ctx, (void **)&r) != REDIS_OK)
        return NULL;
    return r;
}

static void key_of(const snapstore_t *self, uint32_t p, const char *what, char *out)
{
    snprintf(out, KEY_MAX, "%s:{p%" PRIu32 "}:%s", self->prefix, p, what);
}

snapstore_t *snapstore_new(const rconn_url_t *url, const char *prefix, const char *self_id,
                           uint32_t timeout_ms)
{
    if (strlen(prefix) >= sizeof(((snapstore_t *)0)->prefix) ||
        strlen(self_id) >= PARTITION_ID_MAX || !self_id[0])
        return NULL;
    snapstore_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->url = *url;
    snprintf(self->prefix, sizeof(self->prefix), "%s", prefix);
    snprintf(self->self_id, sizeof(self->self_id), "%s", self_id);
    self->timeout_ms = timeout_ms;
    return self;
}

void snapstore_destroy(snapstore_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    snapstore_t *self = *self_p;
    if (self->ctx)
        redisFree(self->ctx);
    free(self);
    *self_p = NULL;
}

const char *snapstore_error(const snapstore_t *self)
{
    return self->err;
}

int snapstore_connect(snapstore_t *self)
{
    if (self->ctx && rconn_outdated(self->info.generation)) {
        redisFree(self->ctx); /* the sentinels moved the master since it was opened */
        self->ctx = NULL;
    }
    if (self->ctx)
        return 0;
    rconn_info_t info;
    self->ctx =
        rconn_open_info(&self->url, self->timeout_ms, &info, NULL, self->err, sizeof(self->err));
    if (!self->ctx) {
        self->st.errors++;
        return -1;
    }
    self->info = info;
    self->replicas_read_ms = mono_ms();
    snprintf(self->st.server, sizeof(self->st.server), "%s", info.addr);
    if (info.id[0]) {
        if (self->last_id[0] && strcmp(self->last_id, info.id) != 0)
            self->st.server_changes++;
        memcpy(self->last_id, info.id, sizeof(self->last_id));
    }
    return 0;
}

/* After writes: WAIT for one replica while the master has some (the count re-read every
 * REPLICAS_MS). 0, or -1 if the connection failed. */
static int wait_replicas(snapstore_t *self)
{
    int64_t now = mono_ms();
    if (now - self->replicas_read_ms >= REPLICAS_MS) {
        self->replicas_read_ms = now;
        if (rconn_replicas(self->ctx, &self->info.replicas) != 0) {
            fail(self, "INFO: %s", self->ctx->errstr);
            return -1;
        }
    }
    if (self->info.replicas <= 0)
        return 0;
    redisReply *r = redisCommand(self->ctx, "WAIT 1 %d", WAIT_MS);
    if (!r) {
        fail(self, "WAIT: %s", self->ctx->errstr);
        return -1;
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer < 1)
        self->st.unreplicated++;
    else if (r->type == REDIS_REPLY_ERROR)
        self->info.replicas = 0; /* not allowed (no +wait): writes go unconfirmed, as without */
    freeReplyObject(r);
    return 0;
}

int snapstore_owners(snapstore_t *self, const uint32_t *ps, size_t n, snapstore_owner_t *out)
{
    if (snapstore_connect(self) != 0)
        return -1;
    if (n == 0)
        return 0;
    /* MGET epoch owner epoch owner ...: one command per 256 partitions keeps argv small. */
    for (size_t base = 0; base < n; base += 256) {
        size_t k = n - base < 256 ? n - base : 256;
        char keys[512][KEY_MAX];
        const char *argv[513];
        size_t argl[513];
        argv[0] = "MGET";
        argl[0] = 4;
        for (size_t i = 0; i < k; i++) {
            key_of(self, ps[base + i], "epoch", keys[2 * i]);
            key_of(self, ps[base + i], "owner", keys[2 * i + 1]);
            for (int j = 0; j < 2; j++) {
                argv[1 + 2 * i + j] = keys[2 * i + j];
                argl[1 + 2 * i + j] = strlen(keys[2 * i + j]);
            }
        }
        redisReply *r = redisCommandArgv(self->ctx, (int)(1 + 2 * k), argv, argl);
        if (bad_reply(self, r, "MGET"))
            return -1;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 * k) {
            freeReplyObject(r);
            fail(self, "MGET: unexpected reply shape");
            return -1;
        }
        for (size_t i = 0; i < k; i++) {
            snapstore_owner_t *o = &out[base + i];
            redisReply *e = r->element[2 * i], *w = r->element[2 * i + 1];
            o->epoch = e->type == REDIS_REPLY_STRING ? strtoull(e->str, NULL, 10) : 0;
            o->owner[0] = '\0';
            if (w->type == REDIS_REPLY_STRING && w->len < PARTITION_ID_MAX) {
                memcpy(o->owner, w->str, w->len);
                o->owner[w->len] = '\0';
            }
        }
        freeReplyObject(r);
    }
    return 0;
}

int snapstore_presence(snapstore_t *self, const char *id, bool *member, bool *leaving)
{
    if (snapstore_connect(self) != 0)
        return -1;
    /* The member key is membership's (runtime/membership.h): PREFIX:member:ID, set with the
     * member ttl by every heartbeat. A node registers before it acquires anything, so an owner
     * record naming a node whose member key exists names a live node. */
    redisAppendCommand(self->ctx, "EXISTS %s:member:%s", self->prefix, id);
    redisAppendCommand(self->ctx, "EXISTS %s:leaving:%s", self->prefix, id);
    bool *out[2] = {member, leaving};
    for (int i = 0; i < 2; i++) {
        redisReply *r = next_reply(self);
        if (bad_reply(self, r, "EXISTS"))
            return -1;
        *out[i] = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
        freeReplyObject(r);
    }
    return 0;
}

int snapstore_leave(snapstore_t *self, uint32_t ttl_ms)
{
    if (snapstore_connect(self) != 0)
        return -1;
    redisReply *r = redisCommand(self->ctx, "SET %s:leaving:%s 1 PX %u", self->prefix,
                                 self->self_id, ttl_ms ? ttl_ms : 1);
    if (bad_reply(self, r, "SET leaving"))
        return -1;
    freeReplyObject(r);
    return 0;
}

int snapstore_acquire(snapstore_t *self, const snapstore_claim_t *claims, size_t n,
                      uint64_t *epochs)
{
    if (snapstore_connect(self) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char ke[KEY_MAX], ko[KEY_MAX];
        key_of(self, claims[i].partition, "epoch", ke);
        key_of(self, claims[i].partition, "owner", ko);
        const char *argv[] = {"EVAL", acquire_lua, "2", ke, ko, self->self_id, claims[i].seen};
        size_t argl[7];
        for (int j = 0; j < 7; j++)
            argl[j] = strlen(argv[j]);
        redisAppendCommandArgv(self->ctx, 7, argv, argl);
    }
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = next_reply(self);
        if (!r) {
            fail(self, "acquire: %s", self->ctx ? self->ctx->errstr : "connection lost");
            return -1;
        }
        epochs[i] = 0;
        if (r->type == REDIS_REPLY_INTEGER && r->integer >= 0) {
            epochs[i] = (uint64_t)r->integer;
            if (r->integer > 0)
                self->st.acquired++;
            else
                self->st.refused++;
        } else {
            if (rc == 0)
                snprintf(self->err, sizeof(self->err), "acquire: %s",
                         r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            rc = -1;
        }
        freeReplyObject(r);
    }
    if (rc != 0) {
        char why[sizeof(self->err)]; /* fail() writes self->err: not from itself */
        memcpy(why, self->err, sizeof(why));
        fail(self, "%s", why);
        return rc;
    }
    return n ? wait_replicas(self) : 0;
}

int snapstore_load(snapstore_t *self, const uint32_t *ps, size_t n, snapstore_load_fn fn, void *arg)
{
    if (snapstore_connect(self) != 0)
        return -1;
    for (size_t base = 0; base < n; base += LOAD_ROUND) {
        size_t k = n - base < LOAD_ROUND ? n - base : LOAD_ROUND;
        for (size_t i = 0; i < k; i++) {
            char key[KEY_MAX];
            key_of(self, ps[base + i], "snap", key);
            redisAppendCommand(self->ctx, "GET %s", key);
        }
        for (size_t i = 0; i < k; i++) {
            redisReply *r = next_reply(self);
            if (bad_reply(self, r, "GET snapshot")) {
                if (r)
                    freeReplyObject(r);
                return -1;
            }
            if (r->type == REDIS_REPLY_STRING) {
                self->st.loaded++;
                fn(arg, ps[base + i], (const uint8_t *)r->str, r->len);
            } else {
                fn(arg, ps[base + i], NULL, 0);
            }
            freeReplyObject(r);
        }
    }
    return 0;
}

int snapstore_write(snapstore_t *self, const snapstore_write_t *ws, size_t n, int *results)
{
    for (size_t i = 0; i < n; i++)
        results[i] = SNAPSTORE_UNKNOWN;
    if (snapstore_connect(self) != 0)
        return -1;
    size_t i = 0;
    while (i < n) {
        size_t start = i, bytes = 0;
        for (; i < n && (i == start || bytes < WRITE_ROUND_B); i++) {
            const snapstore_write_t *w = &ws[i];
            char ke[KEY_MAX], ko[KEY_MAX], ks[KEY_MAX], ep[24];
            key_of(self, w->partition, "epoch", ke);
            key_of(self, w->partition, "owner", ko);
            key_of(self, w->partition, "snap", ks);
            snprintf(ep, sizeof(ep), "%" PRIu64, w->epoch);
            const char *argv[] = {"EVAL",
                                  write_lua,
                                  "3",
                                  ke,
                                  ko,
                                  ks,
                                  ep,
                                  w->data ? (const char *)w->data : "",
                                  w->release ? "1" : "0",
                                  self->self_id};
            size_t argl[] = {
                4,          sizeof(write_lua) - 1, 1, strlen(ke),           strlen(ko), strlen(ks),
                strlen(ep), w->data ? w->len : 0,  1, strlen(self->self_id)};
            if (redisAppendCommandArgv(self->ctx, 10, argv, argl) != REDIS_OK) {
                fail(self, "write: out of memory");
                return -1;
            }
            bytes += w->len;
        }
        for (size_t j = start; j < i; j++) {
            redisReply *r = next_reply(self);
            if (bad_reply(self, r, "write snapshot")) {
                if (r)
                    freeReplyObject(r);
                return -1;
            }
            if (r->type != REDIS_REPLY_INTEGER) {
                freeReplyObject(r);
                fail(self, "write snapshot: unexpected reply");
                return -1;
            }
            results[j] = r->integer > 0    ? SNAPSTORE_WRITTEN
                         : r->integer == 0 ? SNAPSTORE_FENCED
                                           : SNAPSTORE_GONE;
            if (results[j] == SNAPSTORE_WRITTEN) {
                self->st.writes += ws[j].data != NULL;
                self->st.bytes += ws[j].len;
            } else if (results[j] == SNAPSTORE_FENCED) {
                self->st.fenced++;
            } else {
                self->st.gone++;
            }
            freeReplyObject(r);
        }
    }
    return n ? wait_replicas(self) : 0;
}

void snapstore_stats(const snapstore_t *self, snapstore_stats_t *out)
{
    *out = self->st;
}
