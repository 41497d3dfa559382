/* SPDX-License-Identifier: MIT */
/* accesssync: the access list's poller and admin edits (accesssync.h).
 *
 * Threads: the poller thread owns ctx, last*, delivered, seed* (after start) and failing; the
 * admin mutex guards the admin connection; mu guards stop, poke and stats, and is never held
 * across Redis I/O or a callback. */
#include "accesssync.h"

#include "accessstore.h"
#include "backoff.h"
#include "err.h"
#include "mono.h"
#include "rconn.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define PREFIX_MAX    64
#define DELTA_MAX     64 /* changes applied to the last list before reading it in full instead */
#define IMMEDIATE_MAX 4  /* cycles in a row that may run again without waiting a poll */
#define LOG_FIRST_MS  1000
#define LOG_MAX_MS    60000

struct accesssync {
    /* Configuration, fixed after accesssync_new(). */
    char prefix[PREFIX_MAX];
    rconn_url_t url;
    uint32_t poll_ms, timeout_ms;
    uint64_t hash_seed;
    accesssync_set_fn on_set;
    void *set_arg;
    slog_fn log;
    void *log_arg;

    /* The poller's own (set before start, then only the poller thread touches them). */
    struct redisContext *ctx;
    uint64_t ctx_gen; /* rconn_generation() when ctx was opened */
    uint8_t *seed;
    size_t seed_n;
    bool has_seed;
    uint8_t *last; /* the hashes of the last set handed over (for a restore) */
    size_t last_n;
    uint64_t last_version;
    bool delivered;
    backoff_t failing;

    /* Shared with the other threads, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop, poke;
    accesssync_stats_t stats;
    pthread_t thread;
    bool started;

    /* The admin connection, under admin_mu. */
    pthread_mutex_t admin_mu;
    struct redisContext *admin;
    uint64_t admin_gen; /* rconn_generation() when admin was opened */
};

#define say(self, level, ...) slog_to((self)->log, (self)->log_arg, (level), __VA_ARGS__)

accesssync_t *accesssync_new(const accesssync_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->redis_url || !cfg->redis_url[0] || !cfg->prefix || !cfg->prefix[0] || !cfg->on_set) {
        err_set(err, errlen, "access sync: redis_url, prefix and on_set are required");
        return NULL;
    }
    if (strlen(cfg->prefix) >= PREFIX_MAX) {
        err_set(err, errlen, "access sync: key prefix longer than %d bytes", PREFIX_MAX - 1);
        return NULL;
    }
    accesssync_t *self = calloc(1, sizeof(*self));
    if (!self) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    if (rconn_parse_auth(cfg->redis_url, cfg->redis_password_file, &self->url, err, errlen) != 0) {
        free(self);
        return NULL;
    }
    memcpy(self->prefix, cfg->prefix, strlen(cfg->prefix) + 1);
    self->poll_ms = cfg->poll_ms ? cfg->poll_ms : ACCESSSYNC_POLL_MS_DEFAULT;
    self->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : ACCESSSYNC_TIMEOUT_MS_DEFAULT;
    self->hash_seed = cfg->hash_seed;
    self->on_set = cfg->on_set;
    self->set_arg = cfg->set_arg;
    self->log = cfg->log;
    self->log_arg = cfg->log_arg;
    self->failing.first_ms = LOG_FIRST_MS;
    self->failing.max_ms = LOG_MAX_MS;
    pthread_condattr_t ca;
    bool ok = pthread_condattr_init(&ca) == 0;
    ok = ok && pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0;
    ok = ok && pthread_cond_init(&self->cond, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!ok) {
        free(self);
        err_set(err, errlen, "access sync: cannot make a condition variable");
        return NULL;
    }
    pthread_mutex_init(&self->mu, NULL);
    pthread_mutex_init(&self->admin_mu, NULL);
    return self;
}

int accesssync_seed(accesssync_t *self, const uint8_t *hashes, size_t n, char *err, size_t errlen)
{
    pthread_mutex_lock(&self->mu);
    bool started = self->started;
    pthread_mutex_unlock(&self->mu);
    if (started) {
        err_set(err, errlen, "access sync: seed after start");
        return -1;
    }
    uint8_t *copy = NULL;
    if (n > 0) {
        copy = malloc(n * ASET_HASH_LEN);
        if (!copy) {
            err_set(err, errlen, "out of memory copying %zu hashes", n);
            return -1;
        }
        memcpy(copy, hashes, n * ASET_HASH_LEN);
    }
    free(self->seed);
    self->seed = copy;
    self->seed_n = n;
    self->has_seed = true;
    return 0;
}

/* ---- the poller ---------------------------------------------------------------------------- */

static void drop_ctx(accesssync_t *self)
{
    if (self->ctx) {
        redisFree(self->ctx);
        self->ctx = NULL;
    }
}

/* Build a set of hashes[0..n) and hand it over as version v; keep hashes (ours now) as last.
 * from_log: built from the change log. The counters move together, before on_set, so a caller
 * that saw a set in on_set and then reads the stats finds it counted, and counted right. */
static int deliver(accesssync_t *self, uint8_t *hashes, size_t n, uint64_t v, bool from_log,
                   char *err, size_t errlen)
{
    aset_builder_t *b = aset_builder_new();
    for (size_t i = 0; b && i < n; i++) {
        if (aset_builder_add(b, hashes + i * ASET_HASH_LEN) != 0)
            aset_builder_destroy(&b);
    }
    aset_t *set = b ? aset_build(&b, self->hash_seed) : NULL;
    if (!set) {
        free(hashes);
        err_set(err, errlen, "out of memory building a set of %zu hashes", n);
        return -1;
    }
    free(self->last);
    self->last = hashes;
    self->last_n = n;
    self->last_version = v;
    self->delivered = true;
    size_t count = aset_count(set);
    pthread_mutex_lock(&self->mu);
    self->stats.loads++;
    if (from_log)
        self->stats.deltas++;
    self->stats.version = v;
    self->stats.entries = count;
    self->stats.loaded = true;
    pthread_mutex_unlock(&self->mu);
    self->on_set(self->set_arg, set, v);
    return 0;
}

static void drop_seed(accesssync_t *self)
{
    free(self->seed);
    self->seed = NULL;
    self->seed_n = 0;
    self->has_seed = false;
}

/* No list in Redis. Returns 1 (stored one, or lost the race to another gateway: read it at
 * once), 0 (nothing to do until the next poll), or -1. */
static int absent(accesssync_t *self, bool *need_load, char *err, size_t errlen)
{
    uint64_t v;
    if (self->delivered && self->last_version > 0) {
        int rc = accessstore_store_if_absent(self->ctx, self->prefix, self->last, self->last_n,
                                             self->last_version, &v, err, errlen);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            pthread_mutex_lock(&self->mu);
            self->stats.restores++;
            pthread_mutex_unlock(&self->mu);
            say(self, SLOG_WARN,
                "access list: none in Redis %s (restarted empty, or its keys were deleted): "
                "stored the last known list again (%zu entries, version %" PRIu64 ", was %" PRIu64
                ")",
                self->url.redacted, self->last_n, v, self->last_version);
        }
        return 1;
    }
    if (self->has_seed) {
        int rc = accessstore_store_if_absent(self->ctx, self->prefix, self->seed, self->seed_n, 0,
                                             &v, err, errlen);
        if (rc < 0)
            return -1;
        pthread_mutex_lock(&self->mu);
        if (rc == 1)
            self->stats.seeded = true;
        else
            self->stats.seed_refused = true;
        pthread_mutex_unlock(&self->mu);
        if (rc == 1)
            say(self, SLOG_INFO,
                "access list: the cluster had none; stored the --access-list file's %zu "
                "entries as version %" PRIu64,
                self->seed_n, v);
        else
            say(self, SLOG_INFO,
                "access list: the cluster's list (version %" PRIu64
                ") wins; the --access-list file is not stored",
                v);
        drop_seed(self);
        return 1;
    }
    if (!self->delivered) {
        if (deliver(self, NULL, 0, 0, false, err, errlen) != 0)
            return -1;
        *need_load = false; /* "no list" was read in full: the log starts from it */
    }
    return 0;
}

/* Apply ch[0..k) (in order) to the last list and hand the result over as version v: the hashes
 * whose last change removed them are filtered out in one pass, those whose last change added
 * them are appended (a repeat, if one was there already, is dropped by the builder). */
static int apply_changes(accesssync_t *self, const accessstore_change_t *ch, size_t k, uint64_t v,
                         char *err, size_t errlen)
{
    accessstore_change_t fin[DELTA_MAX];
    size_t nf = 0;
    for (size_t i = 0; i < k; i++) {
        size_t j = 0;
        while (j < nf && memcmp(fin[j].hash, ch[i].hash, ASET_HASH_LEN) != 0)
            j++;
        if (j == nf)
            nf++;
        fin[j] = ch[i];
    }
    aset_builder_t *rb = aset_builder_new();
    for (size_t j = 0; rb && j < nf; j++) {
        if (!fin[j].present && aset_builder_add(rb, fin[j].hash) != 0)
            aset_builder_destroy(&rb);
    }
    aset_t *removed = rb ? aset_build(&rb, self->hash_seed) : NULL;
    uint8_t *next = malloc((self->last_n + nf) * ASET_HASH_LEN + 1);
    if (!removed || !next) {
        aset_free(&removed);
        free(next);
        err_set(err, errlen, "out of memory applying %zu changes", k);
        return -1;
    }
    size_t m = 0;
    for (size_t i = 0; i < self->last_n; i++) {
        const uint8_t *h = self->last + i * ASET_HASH_LEN;
        if (!aset_contains(removed, h))
            memcpy(next + m++ * ASET_HASH_LEN, h, ASET_HASH_LEN);
    }
    for (size_t j = 0; j < nf; j++) {
        if (fin[j].present)
            memcpy(next + m++ * ASET_HASH_LEN, fin[j].hash, ASET_HASH_LEN);
    }
    aset_free(&removed);
    return deliver(self, next, m, v, true, err, errlen);
}

/* One poll. Returns 0 (wait a poll), 1 (run again at once), or -1 (why in err). */
static int cycle(accesssync_t *self, bool *need_load, char *err, size_t errlen)
{
    if (self->ctx && rconn_outdated(self->ctx_gen))
        drop_ctx(self); /* the sentinels moved the master since */
    if (!self->ctx) {
        self->ctx_gen = rconn_generation();
        self->ctx = rconn_open(&self->url, self->timeout_ms, err, errlen);
        if (!self->ctx)
            return -1;
        *need_load = true; /* whatever happened while we were away */
    }
    uint64_t v;
    if (accessstore_version(self->ctx, self->prefix, &v, err, errlen) != 0)
        return -1;
    pthread_mutex_lock(&self->mu);
    self->stats.polls++;
    self->stats.connected = true;
    pthread_mutex_unlock(&self->mu);
    if (v == 0)
        return absent(self, need_load, err, errlen);
    if (self->has_seed) {
        pthread_mutex_lock(&self->mu);
        self->stats.seed_refused = true;
        pthread_mutex_unlock(&self->mu);
        say(self, SLOG_INFO,
            "access list: the cluster's list (version %" PRIu64
            ") wins; the --access-list file is not stored",
            v);
        drop_seed(self);
    }
    if (!*need_load && self->delivered && v == self->last_version)
        return 0;
    /* From version 0 too: the empty "no list" set, which the log's first entries start from. */
    if (!*need_load && self->delivered && v > self->last_version &&
        v - self->last_version <= DELTA_MAX) {
        accessstore_change_t ch[DELTA_MAX];
        size_t k;
        int rc = accessstore_changes(self->ctx, self->prefix, self->last_version, ch, DELTA_MAX, &k,
                                     &v, err, errlen);
        if (rc < 0)
            return -1;
        if (rc == 0 && k == 0)
            return 0;
        if (rc == 0)
            return apply_changes(self, ch, k, v, err, errlen);
        /* rc == 1: the log cannot say; read the list in full. */
    }
    uint8_t *hashes;
    size_t n;
    int64_t t0 = mono_ms();
    if (accessstore_load_raw(self->ctx, self->prefix, &hashes, &n, &v, err, errlen) != 0)
        return -1;
    if (v == 0) { /* deleted between the two reads */
        free(hashes);
        return 1;
    }
    int64_t t1 = mono_ms();
    if (deliver(self, hashes, n, v, false, err, errlen) != 0)
        return -1;
    *need_load = false;
    say(self, SLOG_DEBUG,
        "access list: version %" PRIu64 ", %zu hashes read in %" PRId64 " ms, built in %" PRId64
        " ms",
        v, n, t1 - t0, mono_ms() - t1);
    return 0;
}

/* Wait up to ms or until poked or stopped. Returns true if stopping. */
static bool wait_for(accesssync_t *self, int64_t ms)
{
    pthread_mutex_lock(&self->mu);
    struct timespec deadline = mono_deadline(ms);
    while (!self->stop && !self->poke) {
        if (pthread_cond_timedwait(&self->cond, &self->mu, &deadline) == ETIMEDOUT)
            break;
    }
    self->poke = false;
    bool stop = self->stop;
    pthread_mutex_unlock(&self->mu);
    return stop;
}

static void *run(void *arg)
{
    accesssync_t *self = arg;
    bool need_load = true;
    int64_t retry_ms = self->poll_ms;
    int immediate = 0;
    for (bool stop = wait_for(self, 0); !stop;) {
        char err[256] = "";
        int rc = cycle(self, &need_load, err, sizeof(err));
        int64_t wait = self->poll_ms;
        if (rc < 0) {
            drop_ctx(self);
            need_load = true;
            pthread_mutex_lock(&self->mu);
            self->stats.errors++;
            self->stats.connected = false;
            pthread_mutex_unlock(&self->mu);
            if (backoff_due(&self->failing, mono_ms()))
                say(self, SLOG_WARN,
                    "access list: Redis %s: %s (%" PRIu64 " failures; keeping the last list)",
                    self->url.redacted, err, self->failing.count);
            wait = retry_ms;
            retry_ms =
                retry_ms * 2 < ACCESSSYNC_RETRY_MAX_MS ? retry_ms * 2 : ACCESSSYNC_RETRY_MAX_MS;
            /* Through Sentinel an outage is usually a failover, over in a few seconds: look for
             * the new master every second. */
            if (self->url.n_sentinels && wait > 1000)
                wait = 1000;
            immediate = 0;
        } else {
            if (backoff_ok(&self->failing))
                say(self, SLOG_INFO, "access list: Redis %s answers again", self->url.redacted);
            retry_ms = self->poll_ms;
            if (rc == 1 && immediate < IMMEDIATE_MAX) {
                wait = 0;
                immediate++;
            } else {
                immediate = 0;
            }
        }
        stop = wait_for(self, wait);
    }
    drop_ctx(self);
    return NULL;
}

int accesssync_start(accesssync_t *self, char *err, size_t errlen)
{
    pthread_mutex_lock(&self->mu);
    bool started = self->started;
    pthread_mutex_unlock(&self->mu);
    if (started) {
        err_set(err, errlen, "access sync: already started");
        return -1;
    }
    int rc = pthread_create(&self->thread, NULL, run, self);
    if (rc != 0) {
        err_set(err, errlen, "access sync: cannot start a thread: %s", strerror(rc));
        return -1;
    }
    pthread_mutex_lock(&self->mu);
    self->started = true;
    pthread_mutex_unlock(&self->mu);
    return 0;
}

void accesssync_poke(accesssync_t *self)
{
    pthread_mutex_lock(&self->mu);
    self->poke = true;
    pthread_cond_signal(&self->cond);
    pthread_mutex_unlock(&self->mu);
}

void accesssync_stats(accesssync_t *self, accesssync_stats_t *out)
{
    pthread_mutex_lock(&self->mu);
    *out = self->stats;
    pthread_mutex_unlock(&self->mu);
}

void accesssync_stop(accesssync_t *self)
{
    pthread_mutex_lock(&self->mu);
    bool started = self->started;
    self->stop = true;
    pthread_cond_signal(&self->cond);
    pthread_mutex_unlock(&self->mu);
    if (started) {
        pthread_join(self->thread, NULL);
        pthread_mutex_lock(&self->mu);
        self->started = false;
        pthread_mutex_unlock(&self->mu);
    }
}

void accesssync_destroy(accesssync_t **self_p)
{
    accesssync_t *self = *self_p;
    if (!self)
        return;
    accesssync_stop(self);
    drop_ctx(self);
    if (self->admin)
        redisFree(self->admin);
    free(self->last);
    free(self->seed);
    pthread_cond_destroy(&self->cond);
    pthread_mutex_destroy(&self->mu);
    pthread_mutex_destroy(&self->admin_mu);
    free(self);
    *self_p = NULL;
}

/* ---- admin edits --------------------------------------------------------------------------- */

typedef enum { OP_ADD, OP_REMOVE, OP_REPLACE } op_t;

static int run_op(accesssync_t *self, op_t op, const uint8_t *hashes, size_t n, uint64_t *version,
                  char *err, size_t errlen)
{
    switch (op) {
    case OP_ADD:
        return accessstore_add(self->admin, self->prefix, hashes, version, err, errlen);
    case OP_REMOVE:
        return accessstore_remove(self->admin, self->prefix, hashes, version, err, errlen);
    case OP_REPLACE:
        return accessstore_replace(self->admin, self->prefix, hashes, n, version, err, errlen) == 0
                   ? 1
                   : -1;
    }
    return -1;
}

/* Run op on the admin connection. A connection kept from an earlier call may have died since
 * (Redis restarted): then reconnect and try once more (each op is safe to repeat). */
static int admin(accesssync_t *self, op_t op, const uint8_t *hashes, size_t n, uint64_t *version,
                 char *err, size_t errlen)
{
    pthread_mutex_lock(&self->admin_mu);
    int rc = -1;
    for (int attempt = 0; attempt < 2; attempt++) {
        if (self->admin && rconn_outdated(self->admin_gen)) {
            redisFree(self->admin); /* the sentinels moved the master since */
            self->admin = NULL;
        }
        bool fresh = !self->admin;
        if (fresh) {
            self->admin_gen = rconn_generation();
            self->admin = rconn_open(&self->url, self->timeout_ms, err, errlen);
            if (!self->admin)
                break;
        }
        rc = run_op(self, op, hashes, n, version, err, errlen);
        /* A lost connection, or a server that is no master any more: reopen and try again. */
        if (rc >= 0 || (!self->admin->err && !rconn_moved(err)))
            break;
        redisFree(self->admin);
        self->admin = NULL;
        if (fresh)
            break;
    }
    pthread_mutex_unlock(&self->admin_mu);
    if (rc > 0)
        accesssync_poke(self);
    return rc;
}

int accesssync_add(accesssync_t *self, const uint8_t h[ASET_HASH_LEN], uint64_t *version, char *err,
                   size_t errlen)
{
    return admin(self, OP_ADD, h, 1, version, err, errlen);
}

int accesssync_remove(accesssync_t *self, const uint8_t h[ASET_HASH_LEN], uint64_t *version,
                      char *err, size_t errlen)
{
    return admin(self, OP_REMOVE, h, 1, version, err, errlen);
}

int accesssync_replace(accesssync_t *self, const uint8_t *hashes, size_t n, uint64_t *version,
                       char *err, size_t errlen)
{
    return admin(self, OP_REPLACE, hashes, n, version, err, errlen) > 0 ? 0 : -1;
}
