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
#include "memberstore.h"
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
    char gw_id[PARTITION_ID_MAX];                /* a gateway's own id, "" on a node */
    char gw_fingerprint[PARTITION_ENDPOINT_MAX]; /* its connection-id secret's fingerprint */
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
    _Atomic uint64_t polls, errors, heartbeats, changes, expired, server_changes;
    _Atomic bool actor_done;     /* set by the actor as it ends (see actor_main()) */
    _Atomic bool conflict;       /* our id is registered by another endpoint */
    _Atomic uint64_t mismatches; /* gateways found with another secret (each time one appears) */
    _Atomic uint32_t mismatched; /* gateways with another secret in the last read */
    _Atomic uint32_t gateways;   /* gateways in the last read, this one included */
    char conflict_endpoint[PARTITION_ENDPOINT_MAX]; /* under lock */
    char mismatch_seen[PARTITION_MEMBERS_MAX > 64 ? 64 : PARTITION_MEMBERS_MAX]
                      [PARTITION_ID_MAX]; /* actor only: mismatching gateways already reported */
    size_t n_mismatch_seen;
    _Atomic bool connected;

    /* lease (see membership_lease()) */
    _Atomic int64_t last_cycle_ms; /* monotonic end of the last cycle, 0 before the first */
    _Atomic int64_t turned_ms; /* mono_ms() of the actor's last loop turn, 0 while not running */
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
    uint64_t gen;                 /* rconn_generation() when ctx was opened */
    char server_id[RCONN_ID_MAX]; /* the identity of the last server connected to (rconn.h) */
    backoff_t failing;            /* cycles failing: active while they do, and when to say so */
    char last_err[512];
} conn_t;

static void drop_conn(conn_t *c)
{
    if (c->ctx) {
        redisFree(c->ctx);
        c->ctx = NULL;
    }
}

/* The epoch of the current table, 0 if none (a published epoch is never 0). */
static uint64_t current_epoch(membership_t *self)
{
    pthread_mutex_lock(&self->lock);
    uint64_t e = self->current ? partition_table_epoch(self->current->table) : 0;
    pthread_mutex_unlock(&self->lock);
    return e;
}

/* Members' keys may be missing or stale on a Redis that was away, restarted, or took over from
 * another (a failover may lose the last heartbeats): give every node a member ttl to register
 * again before believing a smaller set. */
static void settle(membership_t *self)
{
    if (current_epoch(self) != 0)
        self->settle_until_ms = mono_ms() + self->ttl_ms;
}

static int ensure_conn(membership_t *self, conn_t *c)
{
    if (c->ctx && rconn_outdated(c->gen))
        drop_conn(c); /* the sentinels moved the master since it was opened */
    if (c->ctx)
        return 0;
    rconn_info_t info;
    c->ctx = rconn_open_info(&self->redis, MEMBERSHIP_REDIS_TIMEOUT_MS, &info, NULL, c->last_err,
                             sizeof(c->last_err));
    if (!c->ctx)
        return -1;
    c->gen = info.generation;
    if (info.id[0] && c->server_id[0] && strcmp(info.id, c->server_id) != 0) {
        settle(self);
        atomic_fetch_add_explicit(&self->server_changes, 1, memory_order_relaxed);
        say(self, SLOG_INFO,
            "membership: redis is another server now (%s: a failover or a restart); keeping the "
            "table for %u ms while nodes register there",
            info.addr, self->ttl_ms);
    }
    if (info.id[0])
        memcpy(c->server_id, info.id, sizeof(c->server_id));
    return 0;
}

/* The kind, id and value this process registers (a node, or a gateway with an id). */
static memberstore_kind_t own_kind(const membership_t *self, const char **id, const char **value)
{
    if (self->self_id[0]) {
        *id = self->self_id;
        *value = self->self_endpoint;
        return MEMBERSTORE_NODES;
    }
    *id = self->gw_id;
    *value = self->gw_fingerprint;
    return MEMBERSTORE_GATEWAYS;
}

/* A node's heartbeat (its endpoint under its id) or a gateway's (its secret fingerprint).
 * Returns 0, 1 if a node's id is registered by another endpoint (a conflict: said once, kept in
 * the stats for membership_conflict(); our key is not refreshed), or -1. */
static int heartbeat(membership_t *self, conn_t *c)
{
    const char *id, *value;
    memberstore_kind_t kind = own_kind(self, &id, &value);
    char other[PARTITION_ENDPOINT_MAX];
    int rc = memberstore_register(c->ctx, self->prefix, kind, id, value, self->ttl_ms, other,
                                  sizeof(other), c->last_err, sizeof(c->last_err));
    if (rc < 0)
        return -1;
    if (rc > 0 && kind == MEMBERSTORE_NODES) {
        if (!atomic_load_explicit(&self->conflict, memory_order_relaxed))
            say(self, SLOG_ERROR,
                "membership: id %s is registered by another node at %s: two nodes run with one "
                "--id; stop one of them, or give each node its own --id",
                id, other);
        pthread_mutex_lock(&self->lock);
        snprintf(self->conflict_endpoint, sizeof(self->conflict_endpoint), "%s", other);
        pthread_mutex_unlock(&self->lock);
        atomic_store_explicit(&self->conflict, true, memory_order_release);
        return 1;
    }
    atomic_fetch_add_explicit(&self->heartbeats, 1, memory_order_relaxed);
    return 0;
}

static void deregister(membership_t *self, conn_t *c)
{
    if (ensure_conn(self, c) != 0)
        return;
    const char *id, *value;
    memberstore_kind_t kind = own_kind(self, &id, &value);
    memberstore_deregister(c->ctx, self->prefix, kind, id, value);
}

/* Read the live nodes or gateways: memberstore_read() with our prefix, connection and counter. */
static int read_live(membership_t *self, conn_t *c, bool gateways, partition_member_t **out,
                     size_t *n)
{
    uint64_t expired = 0;
    int rc =
        memberstore_read(c->ctx, self->prefix, gateways ? MEMBERSTORE_GATEWAYS : MEMBERSTORE_NODES,
                         out, n, &expired, c->last_err, sizeof(c->last_err));
    if (expired)
        atomic_fetch_add_explicit(&self->expired, expired, memory_order_relaxed);
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

static void note_success(membership_t *self, conn_t *c)
{
    atomic_store_explicit(&self->connected, true, memory_order_relaxed);
    uint64_t failed = c->failing.count;
    if (backoff_ok(&c->failing)) {
        settle(self);
        say(self, SLOG_INFO, "membership: redis %s is back after %llu failed cycles",
            self->redis.redacted, (unsigned long long)failed);
    }
}

/* A gateway: read the other gateways' secret fingerprints; each gateway newly seen with another
 * fingerprint than ours is logged (naming both) and counted. 0, or -1. */
static int check_gateways(membership_t *self, conn_t *c)
{
    partition_member_t *gws;
    size_t n;
    if (read_live(self, c, true, &gws, &n) != 0)
        return -1;
    uint32_t mismatched = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(gws[i].endpoint, self->gw_fingerprint) == 0)
            continue;
        mismatched++;
        bool seen = false;
        for (size_t j = 0; j < self->n_mismatch_seen && !seen; j++)
            seen = strcmp(self->mismatch_seen[j], gws[i].id) == 0;
        if (seen)
            continue;
        atomic_fetch_add_explicit(&self->mismatches, 1, memory_order_relaxed);
        say(self, SLOG_ERROR,
            "membership: gateway %s has another connection-id secret than this gateway %s "
            "(fingerprints %s and %s): UDP clients moving between them get 'invalid connection "
            "id'; give every gateway the same --secret or --secret-file",
            gws[i].id, self->gw_id, gws[i].endpoint, self->gw_fingerprint);
        if (self->n_mismatch_seen < sizeof(self->mismatch_seen) / sizeof(self->mismatch_seen[0]))
            snprintf(self->mismatch_seen[self->n_mismatch_seen++], PARTITION_ID_MAX, "%s",
                     gws[i].id);
    }
    if (mismatched == 0)
        self->n_mismatch_seen = 0; /* all agree again: a new mismatch is news */
    atomic_store_explicit(&self->mismatched, mismatched, memory_order_relaxed);
    atomic_store_explicit(&self->gateways, (uint32_t)n, memory_order_relaxed);
    free(gws);
    return 0;
}

/* One cycle: register (a node), read, publish a new table if the set changed. */
static void cycle(membership_t *self, conn_t *c)
{
    if (ensure_conn(self, c) != 0) {
        note_failure(self, c);
        return;
    }
    int64_t beat = mono_ms();
    int beat_rc = self->self_id[0] || self->gw_id[0] ? heartbeat(self, c) : 1;
    if (beat_rc < 0) {
        note_failure(self, c);
        return;
    }
    if (self->self_id[0] && beat_rc == 0)
        self->last_beat_ms = beat;
    if (self->gw_id[0] && check_gateways(self, c) != 0) {
        note_failure(self, c);
        return;
    }
    partition_member_t *members;
    size_t n;
    if (read_live(self, c, false, &members, &n) != 0) {
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
    if ((self->self_id[0] || self->gw_id[0]) && self->heartbeat_ms < period)
        period = self->heartbeat_ms; /* our key must be refreshed within its ttl */
    int64_t next = mono_ms();        /* the first cycle at once */
    int64_t last_cycle = next - REFRESH_MIN_MS;
    for (;;) {
        int64_t now = mono_ms();
        atomic_store_explicit(&self->turned_ms, now, memory_order_relaxed);
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
    if (self->self_id[0] || self->gw_id[0])
        deregister(self, &conn);
    drop_conn(&conn);
    atomic_store_explicit(&self->turned_ms, 0, memory_order_relaxed);
    /* The last touch of self on this thread. zactor_destroy() waits for the actor through
     * libzmq, whose synchronisation ThreadSanitizer cannot see (it is not instrumented); this
     * release, paired with membership_stop()'s acquire, is one it can. */
    atomic_store_explicit(&self->actor_done, true, memory_order_release);
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
    if (!node && cfg->gateway_id && cfg->gateway_id[0] &&
        (!members_valid_id(cfg->gateway_id, strlen(cfg->gateway_id)) || !cfg->gateway_fingerprint ||
         !members_valid_endpoint(cfg->gateway_fingerprint, strlen(cfg->gateway_fingerprint)))) {
        err_set(err, errlen, "bad gateway id '%s' or fingerprint", cfg->gateway_id);
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
    } else if (cfg->gateway_id && cfg->gateway_id[0]) {
        snprintf(self->gw_id, sizeof(self->gw_id), "%s", cfg->gateway_id);
        snprintf(self->gw_fingerprint, sizeof(self->gw_fingerprint), "%s",
                 cfg->gateway_fingerprint ? cfg->gateway_fingerprint : "");
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
        if (rconn_parse_auth(cfg->redis_url, cfg->redis_password_file, &self->redis, err, errlen) !=
            0)
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

uint32_t membership_loop_age_ms(const membership_t *self)
{
    int64_t turned = atomic_load_explicit(&self->turned_ms, memory_order_relaxed);
    if (turned == 0)
        return 0;
    int64_t age = mono_ms() - turned;
    return age <= 0 ? 0 : age > UINT32_MAX ? UINT32_MAX : (uint32_t)age;
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
    if (self->actor) {
        zactor_destroy(&self->actor);
        (void)atomic_load_explicit(&self->actor_done, memory_order_acquire);
    }
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
    out->server_changes = atomic_load_explicit(&self->server_changes, memory_order_relaxed);
    out->connected = atomic_load_explicit(&self->connected, memory_order_relaxed);
    out->conflict = atomic_load_explicit(&self->conflict, memory_order_acquire);
    out->secret_mismatches = atomic_load_explicit(&self->mismatches, memory_order_relaxed);
    out->gateways_mismatched = atomic_load_explicit(&self->mismatched, memory_order_relaxed);
    out->gateways = atomic_load_explicit(&self->gateways, memory_order_relaxed);
    pthread_mutex_lock(&self->lock);
    if (self->current) {
        out->epoch = partition_table_epoch(self->current->table);
        out->members = partition_table_count(self->current->table);
    }
    pthread_mutex_unlock(&self->lock);
}

bool membership_conflict(membership_t *self, char *endpoint, size_t len)
{
    if (!atomic_load_explicit(&self->conflict, memory_order_acquire))
        return false;
    pthread_mutex_lock(&self->lock);
    snprintf(endpoint, len, "%s", self->conflict_endpoint);
    pthread_mutex_unlock(&self->lock);
    return true;
}

int membership_register(membership_t *self, uint32_t wait_ms, char *err, size_t errlen)
{
    if (self->is_static || !self->self_id[0])
        return 0;
    redisContext *ctx = rconn_open(&self->redis, MEMBERSHIP_REDIS_TIMEOUT_MS, err, errlen);
    if (!ctx)
        return -1;
    char other[PARTITION_ENDPOINT_MAX] = "";
    /* A key left by a node that died (or by our own previous run at another address) expires
     * within the ttl; one a live node refreshes does not. Bounded: wait_ms, a poll per beat. */
    int64_t deadline = mono_ms() + wait_ms;
    int rc;
    for (;;) {
        rc = memberstore_register(ctx, self->prefix, MEMBERSTORE_NODES, self->self_id,
                                  self->self_endpoint, self->ttl_ms, other, sizeof(other), err,
                                  errlen);
        if (rc <= 0 || mono_ms() >= deadline)
            break;
        struct timespec ts = {.tv_sec = self->heartbeat_ms / 1000,
                              .tv_nsec = (long)(self->heartbeat_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    redisFree(ctx);
    if (rc == 1) {
        err_set(err, errlen,
                "id %s is held by a live node at %s (registered and refreshed for %u ms): give "
                "this node another --id, or stop the other one first",
                self->self_id, other, wait_ms);
        pthread_mutex_lock(&self->lock);
        snprintf(self->conflict_endpoint, sizeof(self->conflict_endpoint), "%s", other);
        pthread_mutex_unlock(&self->lock);
        atomic_store_explicit(&self->conflict, true, memory_order_release);
        return MEMBERSHIP_CONFLICT;
    }
    if (rc == 0)
        atomic_fetch_add_explicit(&self->heartbeats, 1, memory_order_relaxed);
    return rc;
}
