/* SPDX-License-Identifier: MIT */
/* membership: Redis heartbeats and reads on a czmq actor, tables published by pointer swap (see
 * membership.h for the protocol and the epoch).
 *
 * Invariant: every holder on the `holders` list owns one table; the current holder is on the
 * list; a holder other than the current one is on the list only while refs > 0. The list, refs
 * and `current` are only touched under `lock` (the actor, which alone replaces `current`, too),
 * except by membership_destroy(), when nobody else may call in any more. */
#include "membership.h"

#include "backoff.h"
#include "members.h"
#include "mono.h"
#include "rconn.h"

#include "err.h"
#include "slog.h"

#include <czmq.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define REFRESH_MIN_MS 50    /* forced polls are at most this frequent */
#define BACKOFF_MAX_MS 60000 /* longest silence while Redis keeps failing */
#define GAP_SLACK_MS   500   /* lateness of a cycle that is not yet a gap */
#define KEY_MAX        (64 + PARTITION_ID_MAX + 16)

typedef struct holder {
    partition_table_t *table;
    size_t refs; /* references handed out by membership_current() */
    struct holder *next;
} holder_t;

struct membership {
    /* configuration, copied */
    bool is_static;
    rconn_url_t redis;
    char prefix[64];
    char self_id[PARTITION_ID_MAX];
    char self_endpoint[PARTITION_ENDPOINT_MAX];
    uint32_t heartbeat_ms, ttl_ms, poll_ms;
    membership_change_fn on_change;
    void *change_arg;
    slog_fn log;
    void *log_arg;

    /* publication */
    pthread_mutex_t lock;
    pthread_cond_t published;
    holder_t *holders;
    holder_t *current;
    _Atomic uint64_t version;

    /* the actor */
    zactor_t *actor;
    int wake_fd; /* eventfd: membership_refresh() writes, the actor reads */

    /* counters */
    _Atomic uint64_t polls, errors, heartbeats, changes, expired;
    _Atomic bool connected;

    /* lease (see membership_lease()) */
    _Atomic int64_t last_cycle_ms; /* monotonic end of the last cycle, 0 before the first */
    _Atomic uint64_t gaps;
    int64_t last_beat_ms;    /* actor only: start of the last successful heartbeat */
    int64_t settle_until_ms; /* actor only: no table changes before this (Redis just came back) */
};

/* ---- helpers -------------------------------------------------------------------------------- */

#define say(self, level, ...) slog_to((self)->log, (self)->log_arg, (level), __VA_ARGS__)

/* ---- publication ---------------------------------------------------------------------------- */

/* Make table current; the previous current table is freed now if nobody holds it. Takes
 * ownership of table. Returns -1 (and frees table) if memory runs out. */
static int publish(membership_t *self, partition_table_t *table)
{
    holder_t *h = calloc(1, sizeof(*h));
    if (!h) {
        partition_table_destroy(&table);
        return -1;
    }
    h->table = table;
    pthread_mutex_lock(&self->lock);
    holder_t *old = self->current;
    h->next = self->holders;
    self->holders = h;
    self->current = h;
    holder_t *dead = NULL;
    if (old && old->refs == 0) {
        for (holder_t **pp = &self->holders; *pp; pp = &(*pp)->next) {
            if (*pp == old) {
                *pp = old->next;
                dead = old;
                break;
            }
        }
    }
    atomic_fetch_add_explicit(&self->version, 1, memory_order_release);
    pthread_cond_broadcast(&self->published);
    pthread_mutex_unlock(&self->lock);
    atomic_fetch_add_explicit(&self->changes, 1, memory_order_relaxed);
    if (dead) {
        partition_table_destroy(&dead->table);
        free(dead);
    }
    if (self->on_change)
        self->on_change(self->change_arg, table);
    return 0;
}

const partition_table_t *membership_current(membership_t *self)
{
    pthread_mutex_lock(&self->lock);
    const partition_table_t *t = NULL;
    if (self->current) {
        self->current->refs++;
        t = self->current->table;
    }
    pthread_mutex_unlock(&self->lock);
    return t;
}

void membership_release(membership_t *self, const partition_table_t **table_p)
{
    if (!table_p || !*table_p)
        return;
    holder_t *dead = NULL;
    pthread_mutex_lock(&self->lock);
    /* The list holds the current table plus the few old ones still referenced: short. */
    for (holder_t **pp = &self->holders; *pp; pp = &(*pp)->next) {
        holder_t *h = *pp;
        if (h->table == *table_p) {
            h->refs--;
            if (h->refs == 0 && h != self->current) {
                *pp = h->next;
                dead = h;
            }
            break;
        }
    }
    pthread_mutex_unlock(&self->lock);
    if (dead) {
        partition_table_destroy(&dead->table);
        free(dead);
    }
    *table_p = NULL;
}

uint64_t membership_version(const membership_t *self)
{
    return atomic_load_explicit(&self->version, memory_order_acquire);
}

bool membership_wait(membership_t *self, uint32_t timeout_ms)
{
    struct timespec deadline = mono_deadline(timeout_ms); /* `published` is on CLOCK_MONOTONIC */
    pthread_mutex_lock(&self->lock);
    while (!self->current) {
        if (pthread_cond_timedwait(&self->published, &self->lock, &deadline) == ETIMEDOUT)
            break;
    }
    bool have = self->current != NULL;
    pthread_mutex_unlock(&self->lock);
    return have;
}

/* ---- Redis ---------------------------------------------------------------------------------- */

typedef struct {
    redisContext *ctx;
    backoff_t failing; /* cycles failing: active while they do, and when to say so */
    char last_err[512];
} conn_t;

static void drop_conn(conn_t *c)
{
    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
}

/* A reply is an error, or missing: text into c->last_err. */
static bool reply_failed(conn_t *c, redisReply *r, const char *what)
{
    return rconn_failed(c->ctx, r, what, c->last_err, sizeof(c->last_err)) != 0;
}

static int ensure_conn(membership_t *self, conn_t *c)
{
    if (c->ctx)
        return 0;
    c->ctx =
        rconn_open(&self->redis, MEMBERSHIP_REDIS_TIMEOUT_MS, c->last_err, sizeof(c->last_err));
    return c->ctx ? 0 : -1;
}

static void member_key(const membership_t *self, const char *id, char *out, size_t cap)
{
    snprintf(out, cap, "%s:member:%s", self->prefix, id);
}

static void members_key(const membership_t *self, char *out, size_t cap)
{
    snprintf(out, cap, "%s:members", self->prefix);
}

/* SET key endpoint PX ttl; SADD members id. Pipelined: one round trip. */
static int heartbeat(membership_t *self, conn_t *c)
{
    char key[KEY_MAX], set[KEY_MAX], ttl[16];
    member_key(self, self->self_id, key, sizeof(key));
    members_key(self, set, sizeof(set));
    snprintf(ttl, sizeof(ttl), "%u", self->ttl_ms);
    redisAppendCommand(c->ctx, "SET %s %s PX %s", key, self->self_endpoint, ttl);
    redisAppendCommand(c->ctx, "SADD %s %s", set, self->self_id);
    int rc = 0;
    for (int i = 0; i < 2; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c->ctx, (void **)&r) != REDIS_OK)
            r = NULL;
        if (reply_failed(c, r, i == 0 ? "SET" : "SADD"))
            rc = -1;
        if (r)
            freeReplyObject(r);
        if (!r)
            return -1; /* the connection is gone: the second reply will not come */
    }
    if (rc == 0)
        atomic_fetch_add_explicit(&self->heartbeats, 1, memory_order_relaxed);
    return rc;
}

static void deregister(membership_t *self, conn_t *c)
{
    if (ensure_conn(self, c) != 0)
        return;
    char key[KEY_MAX], set[KEY_MAX];
    member_key(self, self->self_id, key, sizeof(key));
    members_key(self, set, sizeof(set));
    redisAppendCommand(c->ctx, "DEL %s", key);
    redisAppendCommand(c->ctx, "SREM %s %s", set, self->self_id);
    for (int i = 0; i < 2; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c->ctx, (void **)&r) != REDIS_OK || !r)
            return;
        freeReplyObject(r);
    }
}

/* Removes ARGV[1] from the set KEYS[2] only if its key KEYS[1] still does not exist, so a node
 * that re-registered between our MGET and this call is not dropped. */
static const char srem_if_expired[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return redis.call('SREM', KEYS[2], ARGV[1]) "
    "end return 0";

/* Read the live member set into *out (malloc'd, *n entries). Returns 0 or -1. */
static int read_members(membership_t *self, conn_t *c, partition_member_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    char set[KEY_MAX];
    members_key(self, set, sizeof(set));
    redisReply *ids = redisCommand(c->ctx, "SMEMBERS %s", set);
    if (reply_failed(c, ids, "SMEMBERS") || ids->type != REDIS_REPLY_ARRAY) {
        if (ids && ids->type != REDIS_REPLY_ERROR)
            snprintf(c->last_err, sizeof(c->last_err), "SMEMBERS: not an array");
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
    char *keys = calloc(k, KEY_MAX);
    partition_member_t *members = calloc(k, sizeof(*members));
    int rc = -1;
    redisReply *vals = NULL;
    if (!argv || !argl || !keys || !members) {
        snprintf(c->last_err, sizeof(c->last_err), "out of memory reading %zu members", k);
        goto done;
    }
    argv[0] = "MGET";
    argl[0] = 4;
    for (size_t i = 0; i < k; i++) {
        redisReply *e = ids->element[i];
        char *key = keys + i * KEY_MAX;
        if (e->type == REDIS_REPLY_STRING && members_valid_id(e->str, e->len)) {
            member_key(self, e->str, key, KEY_MAX);
        } else {
            /* A foreign or broken entry: ask for a key that cannot exist, skip its answer. */
            snprintf(key, KEY_MAX, "%s:member:", self->prefix);
        }
        argv[i + 1] = key;
        argl[i + 1] = strlen(key);
    }
    vals = redisCommandArgv(c->ctx, (int)(k + 1), argv, argl);
    if (reply_failed(c, vals, "MGET"))
        goto done;
    if (vals->type != REDIS_REPLY_ARRAY || vals->elements != k) {
        snprintf(c->last_err, sizeof(c->last_err), "MGET: unexpected reply shape");
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
            redisAppendCommandArgv(c->ctx, 6, eargv, eargl);
            gone++;
        }
    }
    for (size_t i = 0; i < gone; i++) {
        redisReply *r = NULL;
        if (redisGetReply(c->ctx, (void **)&r) != REDIS_OK || !r) {
            snprintf(c->last_err, sizeof(c->last_err), "EVAL: %s", c->ctx->errstr);
            goto done;
        }
        if (r->type == REDIS_REPLY_INTEGER && r->integer > 0)
            atomic_fetch_add_explicit(&self->expired, 1, memory_order_relaxed);
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

static void note_failure(membership_t *self, conn_t *c)
{
    atomic_fetch_add_explicit(&self->errors, 1, memory_order_relaxed);
    atomic_store_explicit(&self->connected, false, memory_order_relaxed);
    drop_conn(c);
    bool first = !c->failing.active;
    if (!backoff_due(&c->failing, mono_ms()))
        return;
    if (first)
        say(self, SLOG_WARN, "membership: redis %s: %s; keeping the last table and retrying",
            self->redis.redacted, c->last_err);
    else
        say(self, SLOG_WARN, "membership: redis %s still failing (%llu cycles): %s",
            self->redis.redacted, (unsigned long long)c->failing.count, c->last_err);
}

/* The epoch of the current table, 0 if none (a published epoch is never 0). */
static uint64_t current_epoch(membership_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t e = self->current ? partition_table_epoch(self->current->table) : 0;
    pthread_mutex_unlock(&self->lock);
    return e;
}

static void note_success(membership_t *self, conn_t *c)
{
    atomic_store_explicit(&self->connected, true, memory_order_relaxed);
    uint64_t failed = c->failing.count;
    if (backoff_ok(&c->failing)) {
        /* Members' keys may have expired while Redis was away (or Redis restarted empty): give
         * every node a member ttl to register again before believing a smaller set. */
        if (current_epoch(self) != 0)
            self->settle_until_ms = mono_ms() + self->ttl_ms;
        say(self, SLOG_INFO, "membership: redis %s is back after %llu failed cycles",
            self->redis.redacted, (unsigned long long)failed);
    }
}

/* One cycle: register (a node), read, publish a new table if the set changed. */
static void cycle(membership_t *self, conn_t *c)
{
    if (ensure_conn(self, c) != 0) {
        note_failure(self, c);
        return;
    }
    int64_t beat = mono_ms();
    if (self->self_id[0] && heartbeat(self, c) != 0) {
        note_failure(self, c);
        return;
    }
    if (self->self_id[0])
        self->last_beat_ms = beat;
    partition_member_t *members;
    size_t n;
    if (read_members(self, c, &members, &n) != 0) {
        note_failure(self, c);
        return;
    }
    note_success(self, c);
    atomic_fetch_add_explicit(&self->polls, 1, memory_order_relaxed);
    if (n == 0) {
        /* Nobody alive: nothing to route to, so the last table is as good as none. */
        free(members);
        return;
    }
    if (mono_ms() < self->settle_until_ms) {
        free(members);
        return;
    }
    uint64_t epoch = members_epoch(members, n);
    if (epoch != 0 && epoch != current_epoch(self)) {
        partition_err_t perr;
        partition_table_t *t = partition_table_new(members, n, epoch, &perr);
        if (!t)
            say(self, SLOG_ERROR, "membership: cannot build a table of %zu members: %s", n,
                partition_strerror(perr));
        else if (publish(self, t) != 0)
            say(self, SLOG_ERROR, "membership: out of memory publishing a table");
        else
            say(self, SLOG_INFO, "membership: %zu members, epoch %016llx", n,
                (unsigned long long)epoch);
    }
    free(members);
}

static void actor_main(zsock_t *pipe, void *arg)
{
    membership_t *self = arg;
    conn_t conn = {.failing = {.first_ms = 1000, .max_ms = BACKOFF_MAX_MS}};
    zsock_signal(pipe, 0);
    uint32_t period = self->poll_ms;
    if (self->self_id[0] && self->heartbeat_ms < period)
        period = self->heartbeat_ms;
    int64_t next = mono_ms(); /* the first cycle at once */
    int64_t last_cycle = next - REFRESH_MIN_MS;
    for (;;) {
        int64_t now = mono_ms();
        long timeout = next > now ? (long)(next - now) : 0;
        zmq_pollitem_t items[2] = {
            {zsock_resolve(pipe), 0, ZMQ_POLLIN, 0},
            {NULL, self->wake_fd, ZMQ_POLLIN, 0},
        };
        int rc = zmq_poll(items, 2, timeout);
        if (rc < 0 && zmq_errno() != EINTR)
            break;
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN)) {
            char *cmd = zstr_recv(pipe);
            bool term = !cmd || strcmp(cmd, "$TERM") == 0;
            zstr_free(&cmd);
            if (term)
                break;
        }
        if (rc > 0 && (items[1].revents & ZMQ_POLLIN)) {
            uint64_t v;
            ssize_t r = read(self->wake_fd, &v, sizeof(v));
            (void)r;
            int64_t soonest = last_cycle + REFRESH_MIN_MS;
            if (soonest < next)
                next = soonest;
            continue;
        }
        now = mono_ms();
        if (now < next)
            continue;
        /* A late cycle after our registration could have expired (the process was stopped or
         * starved): others may have taken our partitions. Count it before the lease renews. */
        int64_t prev = atomic_load_explicit(&self->last_cycle_ms, memory_order_relaxed);
        if (prev && self->self_id[0] && now - prev > (int64_t)period + GAP_SLACK_MS &&
            now - self->last_beat_ms >= (int64_t)self->ttl_ms)
            atomic_fetch_add_explicit(&self->gaps, 1, memory_order_relaxed);
        cycle(self, &conn);
        last_cycle = mono_ms();
        /* Release: whoever sees this cycle's end also sees the gap counted before it. */
        atomic_store_explicit(&self->last_cycle_ms, last_cycle, memory_order_release);
        next = now + period;
        if (next <= last_cycle) /* a slow cycle: do not run back to back */
            next = last_cycle + period / 2;
    }
    if (self->self_id[0])
        deregister(self, &conn);
    drop_conn(&conn);
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

membership_t *membership_new(const membership_config_t *cfg, char *err, size_t errlen)
{
    bool have_redis = cfg->redis_url && cfg->redis_url[0];
    bool have_static = cfg->static_nodes && cfg->static_nodes[0];
    if (have_redis == have_static) {
        err_set(err, errlen, "give exactly one of a redis url and a static member list");
        return NULL;
    }
    bool node = cfg->self_id != NULL || cfg->self_endpoint != NULL;
    if (node && (!cfg->self_id || !members_valid_id(cfg->self_id, strlen(cfg->self_id)))) {
        err_set(err, errlen, "bad node id '%s' (1..%d bytes, no spaces, '=' or ',')",
                cfg->self_id ? cfg->self_id : "", PARTITION_ID_MAX - 1);
        return NULL;
    }
    if (node && (!cfg->self_endpoint ||
                 !members_valid_endpoint(cfg->self_endpoint, strlen(cfg->self_endpoint)))) {
        err_set(err, errlen, "bad node endpoint '%s'",
                cfg->self_endpoint ? cfg->self_endpoint : "");
        return NULL;
    }
    uint32_t hb = cfg->heartbeat_ms ? cfg->heartbeat_ms : MEMBERSHIP_HEARTBEAT_MS_DEFAULT;
    uint32_t ttl = cfg->ttl_ms ? cfg->ttl_ms : MEMBERSHIP_TTL_MS_DEFAULT;
    if (ttl <= hb) {
        err_set(err, errlen, "member ttl (%u ms) must exceed the heartbeat interval (%u ms)", ttl,
                hb);
        return NULL;
    }
    const char *prefix = cfg->prefix && cfg->prefix[0] ? cfg->prefix : MEMBERSHIP_PREFIX_DEFAULT;
    if (strlen(prefix) >= 64) {
        err_set(err, errlen, "redis key prefix longer than 63 bytes");
        return NULL;
    }

    membership_t *self = calloc(1, sizeof(*self));
    if (!self) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    self->wake_fd = -1;
    self->is_static = have_static;
    snprintf(self->prefix, sizeof(self->prefix), "%s", prefix);
    if (node) {
        snprintf(self->self_id, sizeof(self->self_id), "%s", cfg->self_id);
        snprintf(self->self_endpoint, sizeof(self->self_endpoint), "%s", cfg->self_endpoint);
    }
    self->heartbeat_ms = hb;
    self->ttl_ms = ttl;
    self->poll_ms = cfg->poll_ms ? cfg->poll_ms : hb;
    self->on_change = cfg->on_change;
    self->change_arg = cfg->change_arg;
    self->log = cfg->log;
    self->log_arg = cfg->log_arg;
    pthread_mutex_init(&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&self->published, &attr);
    pthread_condattr_destroy(&attr);

    if (have_redis) {
        if (rconn_parse(cfg->redis_url, &self->redis, err, errlen) != 0)
            goto fail;
        self->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (self->wake_fd < 0) {
            err_set(err, errlen, "eventfd: %s", strerror(errno));
            goto fail;
        }
        return self;
    }

    partition_member_t *members = calloc(PARTITION_MEMBERS_MAX, sizeof(*members));
    size_t n = 0;
    if (!members) {
        err_set(err, errlen, "out of memory");
        goto fail;
    }
    if (members_parse(cfg->static_nodes, members, PARTITION_MEMBERS_MAX, &n, err, errlen) != 0) {
        free(members);
        goto fail;
    }
    partition_err_t perr;
    uint64_t epoch = members_epoch(members, n);
    partition_table_t *t = epoch ? partition_table_new(members, n, epoch, &perr) : NULL;
    free(members);
    if (!t) {
        err_set(err, errlen, "member list: %s", epoch ? partition_strerror(perr) : "out of memory");
        goto fail;
    }
    if (node && partition_table_find(t, self->self_id) < 0) {
        err_set(err, errlen, "node id '%s' is not in the member list", self->self_id);
        partition_table_destroy(&t);
        goto fail;
    }
    if (publish(self, t) != 0) {
        err_set(err, errlen, "out of memory");
        goto fail;
    }
    atomic_store_explicit(&self->connected, true, memory_order_relaxed);
    return self;
fail:
    membership_destroy(&self);
    return NULL;
}

int membership_start(membership_t *self)
{
    if (self->is_static || self->actor)
        return 0;
    self->actor = zactor_new(actor_main, self);
    return self->actor ? 0 : -1;
}

bool membership_lease(const membership_t *self, uint64_t *gaps)
{
    if (self->is_static) {
        *gaps = 0;
        return true;
    }
    /* The cycle's end first: a fresh lease read with a count from before the cycle that found
     * a gap would let a worker serve before the keeper re-checked (the count is not stale once
     * the end that was stored after it is seen). */
    int64_t last = atomic_load_explicit(&self->last_cycle_ms, memory_order_acquire);
    *gaps = atomic_load_explicit(&self->gaps, memory_order_relaxed);
    /* A cycle is at most a period plus a connect and a command timeout late. */
    int64_t window = (int64_t)self->ttl_ms + 2 * MEMBERSHIP_REDIS_TIMEOUT_MS;
    return last != 0 && mono_ms() - last < window;
}

void membership_refresh(membership_t *self)
{
    if (self->wake_fd < 0)
        return;
    uint64_t one = 1;
    /* EAGAIN means the counter is already non-zero: a wake-up is pending anyway. */
    ssize_t r = write(self->wake_fd, &one, sizeof(one));
    (void)r;
}

void membership_stop(membership_t *self)
{
    if (self->actor)
        zactor_destroy(&self->actor);
}

void membership_destroy(membership_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    membership_t *self = *self_p;
    membership_stop(self);
    while (self->holders) {
        holder_t *h = self->holders;
        self->holders = h->next;
        partition_table_destroy(&h->table);
        free(h);
    }
    if (self->wake_fd >= 0)
        close(self->wake_fd);
    pthread_cond_destroy(&self->published);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

void membership_stats(membership_t *self, membership_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->polls = atomic_load_explicit(&self->polls, memory_order_relaxed);
    out->errors = atomic_load_explicit(&self->errors, memory_order_relaxed);
    out->heartbeats = atomic_load_explicit(&self->heartbeats, memory_order_relaxed);
    out->changes = atomic_load_explicit(&self->changes, memory_order_relaxed);
    out->expired = atomic_load_explicit(&self->expired, memory_order_relaxed);
    out->connected = atomic_load_explicit(&self->connected, memory_order_relaxed);
    pthread_mutex_lock(&self->lock);
    if (self->current) {
        out->epoch = partition_table_epoch(self->current->table);
        out->members = partition_table_count(self->current->table);
    }
    pthread_mutex_unlock(&self->lock);
}
