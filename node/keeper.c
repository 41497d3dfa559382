/* SPDX-License-Identifier: MIT */
/* keeper: snapshots, restore, handover and fencing of a node's partitions (see keeper.h).
 *
 * Threads: the keeper thread owns everything below except what the comments mark as shared.
 * Shared: `blocked` and `verified_gaps`/`block_all` (read by workers, atomics), `stats` (under
 * `lock`), the command flags (under `lock`, signalled by `cond`).
 *
 * Invariants (keeper thread): held[p] != 0 iff we acquired p and have not lost or released it;
 * a blocked partition is not held; wait_since[p] != 0 only for owned, unheld partitions. */
#include "keeper.h"

#include "backoff.h"
#include "mono.h"
#include "pset.h"
#include "rconn.h"
#include "snapstore.h"

#include "err.h"
#include "slog.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKOFF_MAX_MS 60000
#define ACQUIRE_POLL   50 /* ms between looks at a partition waiting for its release */
#define PROBE_CHUNK    64 /* held partitions whose fences an idle cycle reads */
#define DUTY_PERCENT   10 /* most of the time the snapshot cycles may take */

/* The repository's dirty set is PARTITION_COUNT bits in words, as a pset_t: passed as .w. */
_Static_assert(sizeof(pset_t) == REPO_DIRTY_WORDS * sizeof(uint64_t), "dirty set is a pset");

/* What one table change did, for its summary line. */
typedef struct {
    bool open;            /* a change whose acquisitions are not all done */
    int64_t t0_ms;        /* when the table changed */
    uint32_t kept;        /* owned before and after */
    uint32_t released;    /* handed over */
    uint32_t free;        /* acquired with no previous owner */
    uint32_t handed_over; /* acquired after the previous owner released it */
    uint32_t departed;    /* acquired from an owner that is no longer a member */
    uint32_t forced;      /* acquired from a live owner that did not release in time */
    uint32_t refused;     /* claims refused: another node had acquired first (looked again) */
    uint64_t peers, swarms;
} change_t;

struct keeper {
    /* configuration */
    char self_id[PARTITION_ID_MAX];
    repo_t *repo;
    keeper_view_t view;
    uint32_t interval_ms, handover_ms;
    uint32_t (*clock)(void);
    slog_fn log;
    void *log_arg;
    snapstore_t *store;

    /* shared with workers */
    _Atomic uint64_t blocked[PSET_WORDS]; /* a pset_t, but atomic word by word */
    _Atomic uint64_t verified_gaps;
    _Atomic bool block_all;
    _Atomic int64_t turned_ms; /* mono_ms() of the thread's last loop turn; 0 while not running */

    /* commands and stats */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool started, stop, release, leave, left, woken;
    keeper_stats_t stats;
    uint64_t restore_pending; /* acquisitions wanted for keeper_wait_restored() */

    /* keeper thread */
    uint64_t held[PARTITION_COUNT];
    int64_t wait_since[PARTITION_COUNT];
    pset_t owned;
    bool have_table;
    uint64_t version;
    bool version_seen;
    snap_enc_t *enc[PARTITION_COUNT];
    pset_t pick;         /* partitions being exported */
    pset_t kept;         /* lost partitions whose swarms we keep to merge: counts overlap */
    backoff_t failing;   /* Redis calls failing: active while they do, and when to say so */
    int64_t retry_ms;    /* while failing: no Redis work before this */
    uint32_t probe_next; /* the next held partition whose fence an idle cycle reads */
    uint64_t server_changes_seen; /* snapstore's server changes already checked (check_server) */
    change_t change;              /* since the last table change (one summary line when settled) */
    /* acquire_round()'s owners of this round (scratch, kept here: 70 KB is no stack frame) */
    char owner_ids[PARTITION_MEMBERS_MAX][PARTITION_ID_MAX];
    bool owner_live[PARTITION_MEMBERS_MAX];
    uint32_t owner_forced[PARTITION_MEMBERS_MAX];
};

/* ---- helpers -------------------------------------------------------------------------------- */

#define say(self, level, ...) slog_to((self)->log, (self)->log_arg, (level), __VA_ARGS__)

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Relaxed: after a lease gap, the release of verified_gaps orders these before serving resumes. */
static void block(keeper_t *self, uint32_t p, bool on)
{
    uint64_t m = UINT64_C(1) << (p & 63);
    if (on)
        atomic_fetch_or_explicit(&self->blocked[p >> 6], m, memory_order_relaxed);
    else
        atomic_fetch_and_explicit(&self->blocked[p >> 6], ~m, memory_order_relaxed);
}

/* The store's counters into the shared stats (under lock). */
static void store_stats(keeper_t *self)
{
    snapstore_stats_t ss;
    snapstore_stats(self->store, &ss);
    self->stats.server_changes = ss.server_changes;
    self->stats.unreplicated = ss.unreplicated;
}

/* A Redis call failed: log it with backoff. */
static void redis_failed(keeper_t *self, const char *what)
{
    int64_t now = mono_ms();
    pthread_mutex_lock(&self->lock);
    store_stats(self);
    self->stats.errors++;
    self->stats.connected = false;
    pthread_mutex_unlock(&self->lock);
    self->retry_ms = now + 500;
    bool first = !self->failing.active;
    if (!backoff_due(&self->failing, now))
        return;
    if (first)
        say(self, SLOG_WARN, "snapshots: %s: %s; serving from memory and retrying", what,
            snapstore_error(self->store));
    else
        say(self, SLOG_WARN, "snapshots: redis still failing (%llu calls): %s",
            (unsigned long long)self->failing.count, snapstore_error(self->store));
}

static void redis_ok(keeper_t *self)
{
    pthread_mutex_lock(&self->lock);
    store_stats(self);
    self->stats.connected = true;
    pthread_mutex_unlock(&self->lock);
    uint64_t failed = self->failing.count;
    if (backoff_ok(&self->failing))
        say(self, SLOG_INFO, "snapshots: redis is back after %llu failed calls",
            (unsigned long long)failed);
}

/* ---- export and write ----------------------------------------------------------------------- */

static snap_enc_t *pick_enc(void *arg, uint32_t p)
{
    keeper_t *self = arg;
    return pset_has(&self->pick, p) ? self->enc[p] : NULL;
}

static bool drop_pred(void *arg, uint32_t p)
{
    keeper_t *self = arg;
    return !pset_has(&self->owned, p) && self->held[p] == 0;
}

/* A held partition turned out to belong to someone else now. */
static void lose(keeper_t *self, uint32_t p)
{
    block(self, p, true);
    self->held[p] = 0;
    pset_add(&self->kept, p);
    /* The swarms kept for the merge may be the only copy: write them once p is ours again. */
    pset_t m = {0};
    pset_add(&m, p);
    repo_mark_dirty(self->repo, m.w);
    pthread_mutex_lock(&self->lock);
    self->stats.lost++;
    pthread_mutex_unlock(&self->lock);
}

/* Redis has no fences any more (restarted empty): acquire every held partition again. */
static void fences_gone(keeper_t *self)
{
    size_t n = 0;
    pset_t all = {0};
    for (uint32_t p = 0; p < PARTITION_COUNT; p++) {
        if (self->held[p]) {
            self->held[p] = 0;
            pset_add(&all, p);
            n++;
        }
    }
    /* Their snapshots are gone too: rewrite each in full once it is acquired again. */
    repo_mark_dirty(self->repo, all.w);
    pthread_mutex_lock(&self->lock);
    self->stats.gone++;
    pthread_mutex_unlock(&self->lock);
    say(self, SLOG_WARN,
        "snapshots: redis lost the ownership records; acquiring %zu partitions again", n);
}

/* Export the partitions in ps[0..n) (all held) and write them with the fence, with the release
 * mark if release. With full not NULL, a partition not in it has not changed since its last
 * snapshot: only the release mark is written. Partitions whose write did not get through are
 * marked dirty again. */
static void write_partitions(keeper_t *self, const uint32_t *ps, size_t n, bool release,
                             const pset_t *full)
{
    if (n == 0)
        return;
    int64_t t0 = mono_us();
    uint64_t wall = wall_ms();
    pset_clear(&self->pick);
    pset_t redo = {0};
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t p = ps[i];
        if (full && !pset_has(full, p))
            continue;
        if (!self->enc[p])
            self->enc[p] = snap_enc_new();
        if (!self->enc[p] ||
            snap_enc_begin(self->enc[p], p, self->self_id, self->held[p], wall) != SNAP_OK) {
            pset_add(&redo, p);
            continue;
        }
        pset_add(&self->pick, p);
        ok++;
    }
    uint32_t now = self->clock();
    size_t stripes = repo_stripes(self->repo);
    /* An encoder that ran out of memory says so at snap_enc_finish() below. */
    for (size_t s = 0; s < stripes; s++)
        (void)repo_export_stripe(self->repo, s, now, pick_enc, self);
    int64_t t1 = mono_us();

    snapstore_write_t *ws = calloc(n, sizeof(*ws));
    int *res = calloc(n, sizeof(*res));
    uint32_t *wp = calloc(n, sizeof(*wp));
    size_t k = 0;
    uint64_t peers = 0, bytes = 0, written = 0, fenced = 0, failed = 0;
    if (!ws || !res || !wp) {
        for (size_t i = 0; i < n; i++)
            pset_add(&redo, ps[i]);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t p = ps[i];
        if (release && full && !pset_has(full, p)) {
            ws[k] = (snapstore_write_t){.partition = p, .epoch = self->held[p], .release = true};
            wp[k++] = p;
            continue;
        }
        if (!pset_has(&self->pick, p))
            continue;
        const uint8_t *data;
        size_t len;
        if (snap_enc_finish(self->enc[p], &data, &len) != SNAP_OK) {
            /* Out of memory while exporting: skip this one, try again next cycle. */
            pset_add(&redo, p);
            continue;
        }
        peers += snap_enc_peers(self->enc[p]);
        ws[k] = (snapstore_write_t){
            .partition = p, .epoch = self->held[p], .data = data, .len = len, .release = release};
        wp[k++] = p;
    }
    int rc = snapstore_write(self->store, ws, k, res);
    if (rc != 0)
        redis_failed(self, "writing snapshots");
    else
        redis_ok(self);
    bool gone = false;
    for (size_t i = 0; i < k; i++) {
        uint32_t p = wp[i];
        switch (res[i]) {
        case SNAPSTORE_WRITTEN:
            written++;
            bytes += ws[i].len;
            if (release) {
                self->held[p] = 0;
                pthread_mutex_lock(&self->lock);
                self->stats.released++;
                pthread_mutex_unlock(&self->lock);
            }
            break;
        case SNAPSTORE_FENCED:
            fenced++;
            lose(self, p);
            break;
        case SNAPSTORE_GONE:
            gone = true;
            break;
        default:
            failed++;
            pset_add(&redo, p);
            break;
        }
    }
    if (gone)
        fences_gone(self);
done:
    repo_mark_dirty(self->repo, redo.w);
    free(ws);
    free(res);
    free(wp);
    int64_t t2 = mono_us();
    pthread_mutex_lock(&self->lock);
    if (written) {
        self->stats.cycles++;
        self->stats.partitions += written;
        self->stats.bytes += bytes;
        self->stats.peers += peers;
    }
    self->stats.fenced += fenced;
    self->stats.write_failures += failed;
    self->stats.last_cycle_us = (uint64_t)(t2 - t0);
    self->stats.last_export_us = (uint64_t)(t1 - t0);
    if ((uint64_t)(t2 - t0) > self->stats.max_cycle_us)
        self->stats.max_cycle_us = (uint64_t)(t2 - t0);
    pthread_mutex_unlock(&self->lock);
}

/* An idle cycle (nothing written, so no write can find out): read the fences of the next
 * PROBE_CHUNK held partitions, round robin (a whole 4096 in 64 idle cycles), so an idle node finds
 * out that Redis restarted empty or that a partition was taken from it. */
static void probe_fence(keeper_t *self)
{
    uint32_t ps[PROBE_CHUNK];
    snapstore_owner_t own[PROBE_CHUNK];
    size_t n = 0;
    uint32_t p = self->probe_next;
    for (uint32_t k = 0; k < PARTITION_COUNT && n < PROBE_CHUNK; k++, p = (p + 1) % PARTITION_COUNT)
        if (self->held[p])
            ps[n++] = p;
    self->probe_next = p;
    if (n == 0)
        return;
    if (snapstore_owners(self->store, ps, n, own) != 0) {
        redis_failed(self, "reading fences");
        return;
    }
    redis_ok(self);
    size_t lost = 0;
    for (size_t i = 0; i < n; i++) {
        if (own[i].epoch == 0) {
            fences_gone(self);
            return;
        }
        if (own[i].epoch != self->held[ps[i]] || strcmp(own[i].owner, self->self_id) != 0) {
            lose(self, ps[i]);
            lost++;
        }
    }
    if (lost)
        say(self, SLOG_WARN,
            "ownership: %zu held partitions were taken by another node; "
            "acquiring them again where the table still gives them to us",
            lost);
}

/* Step 4: write what changed since the last snapshot. */
static void snapshot_cycle(keeper_t *self)
{
    pset_t dirty, later = {0};
    repo_take_dirty(self->repo, dirty.w);
    uint32_t *ps = malloc(PARTITION_COUNT * sizeof(*ps));
    if (!ps) {
        repo_mark_dirty(self->repo, dirty.w);
        return;
    }
    size_t n = 0;
    for (uint32_t p = 0; p < PARTITION_COUNT; p++) {
        if (!pset_has(&dirty, p))
            continue;
        if (self->held[p])
            ps[n++] = p;
        else if (pset_has(&self->owned, p))
            pset_add(&later, p); /* being acquired: written once it is ours */
    }
    repo_mark_dirty(self->repo, later.w);
    write_partitions(self, ps, n, false, NULL);
    free(ps);
    if (n == 0)
        probe_fence(self);
}

/* Hand over the held partitions ps[0..n): those changed since their last snapshot are written in
 * full, the others get only the release mark. Dirty marks of other partitions are kept. */
static void release_partitions(keeper_t *self, const uint32_t *ps, size_t n)
{
    pset_t dirty;
    repo_take_dirty(self->repo, dirty.w);
    write_partitions(self, ps, n, true, &dirty);
    for (size_t i = 0; i < n; i++)
        pset_del(&dirty, ps[i]);
    repo_mark_dirty(self->repo, dirty.w);
}

/* ---- ownership ------------------------------------------------------------------------------ */

/* Read the fences of every held partition: those another node took (or whose claim Redis lost)
 * are lost, and if Redis has no fences at all they are acquired again (fences_gone()). 0 (how
 * many were checked and lost in *n, *lost) or -1 (Redis failed: logged). */
static int verify_held(keeper_t *self, const char *doing, size_t *n_out, size_t *lost_out)
{
    uint32_t *ps = malloc(PARTITION_COUNT * sizeof(*ps));
    snapstore_owner_t *own = malloc(PARTITION_COUNT * sizeof(*own));
    size_t n = 0, lost = 0;
    int rc = -1;
    if (!ps || !own)
        goto out;
    for (uint32_t p = 0; p < PARTITION_COUNT; p++)
        if (self->held[p])
            ps[n++] = p;
    if (snapstore_owners(self->store, ps, n, own) != 0) {
        redis_failed(self, doing);
        goto out;
    }
    redis_ok(self);
    bool gone = false;
    for (size_t i = 0; i < n; i++) {
        if (own[i].epoch == 0) {
            gone = true; /* no fence at all: Redis lost its data, nobody took p */
        } else if (own[i].epoch != self->held[ps[i]] || strcmp(own[i].owner, self->self_id) != 0) {
            lose(self, ps[i]);
            lost++;
        }
    }
    if (gone)
        fences_gone(self);
    rc = 0;
out:
    *n_out = n;
    *lost_out = lost;
    free(ps);
    free(own);
    return rc;
}

/* Step 0: the snapshot connection found another Redis server (a failover, or a restart): it may
 * lack the last claims and snapshots the old one acknowledged. Check every held partition's
 * fence (a claim that went back is lost and claimed again) and rewrite everything held in full. */
static void check_server(keeper_t *self)
{
    snapstore_stats_t ss;
    snapstore_stats(self->store, &ss);
    if (ss.server_changes == self->server_changes_seen)
        return;
    size_t n, lost;
    if (verify_held(self, "checking ownership on a new redis server", &n, &lost) != 0)
        return;
    self->server_changes_seen = ss.server_changes;
    pset_t all = {0};
    for (uint32_t p = 0; p < PARTITION_COUNT; p++)
        if (self->held[p] || pset_has(&self->kept, p))
            pset_add(&all, p);
    repo_mark_dirty(self->repo, all.w);
    say(self, lost ? SLOG_WARN : SLOG_INFO,
        "snapshots: redis is another server now (%s: a failover or a restart); %zu of %zu held "
        "partitions had lost their claim and are claimed again; rewriting all of them",
        ss.server, lost, n);
}

/* Step 1: after a lease gap, check that every held partition is still ours. */
static void check_gap(keeper_t *self)
{
    if (!self->view.lease)
        return;
    uint64_t gaps;
    self->view.lease(self->view.arg, &gaps);
    if (gaps == atomic_load_explicit(&self->verified_gaps, memory_order_relaxed))
        return;
    size_t n, lost;
    if (verify_held(self, "checking ownership after a pause", &n, &lost) != 0)
        return;
    say(self, lost ? SLOG_WARN : SLOG_INFO,
        "snapshots: resumed after a pause past the member ttl; %zu of %zu partitions were taken "
        "over meanwhile",
        lost, n);
    /* Release: a worker that sees the count sees the partitions lost meanwhile blocked. */
    atomic_store_explicit(&self->verified_gaps, gaps, memory_order_release);
}

/* One line for what the current change did (how, in log_change's words, it ended). */
static void log_change(keeper_t *self, const char *how)
{
    change_t *c = &self->change;
    uint32_t acquired = c->free + c->handed_over + c->departed + c->forced;
    uint32_t own = 0;
    for (uint32_t p = 0; p < PARTITION_COUNT; p++)
        own += self->held[p] != 0;
    say(self, SLOG_INFO,
        "ownership: %s %lld ms: own %u partitions (%u kept, %u acquired: %u free, %u handed "
        "over, %u from departed nodes, %u forced; %u claims found taken and retried), %u "
        "released; restored %llu peers in %llu swarms",
        how, (long long)(mono_ms() - c->t0_ms), own, c->kept, acquired, c->free, c->handed_over,
        c->departed, c->forced, c->refused, c->released, (unsigned long long)c->peers,
        (unsigned long long)c->swarms);
    c->open = false;
}

/* Step 2: follow the table. */
static void follow_table(keeper_t *self)
{
    uint64_t v = self->view.version(self->view.arg);
    if (self->version_seen && v == self->version)
        return;
    pset_t mine = {0};
    bool have = self->view.owned(self->view.arg, &mine);
    if (!have)
        return; /* no table yet: nothing to do, look again next time */
    self->version = v;
    self->version_seen = true;
    self->have_table = true;
    self->owned = mine;
    uint32_t *ps = malloc(PARTITION_COUNT * sizeof(*ps));
    if (!ps) {
        self->version_seen = false;
        return;
    }
    size_t n = 0;
    uint32_t kept = 0;
    for (uint32_t p = 0; p < PARTITION_COUNT; p++) {
        if (!pset_has(&mine, p)) {
            self->wait_since[p] = 0;
            if (self->held[p])
                ps[n++] = p;
        } else if (self->held[p]) {
            kept++;
        }
    }
    if (self->change.open)
        log_change(self, "superseded by a newer table after");
    self->change =
        (change_t){.open = true, .t0_ms = mono_ms(), .kept = kept, .released = (uint32_t)n};
    if (n)
        say(self, SLOG_INFO, "snapshots: handing over %zu partitions", n);
    release_partitions(self, ps, n);
    /* A handover that did not get through (Redis away) is dropped all the same: the table says
     * another node serves these now, and it will restore from the last snapshot written. */
    for (size_t i = 0; i < n; i++)
        self->held[ps[i]] = 0;
    free(ps);
    size_t stripes = repo_stripes(self->repo);
    size_t dropped = 0;
    for (size_t s = 0; s < stripes; s++)
        dropped += repo_drop_stripe(self->repo, s, drop_pred, self);
    for (uint32_t p = 0; p < PARTITION_COUNT; p++) {
        if (!pset_has(&mine, p)) {
            block(self, p, false); /* not ours: the table alone answers "moved" */
            pset_del(&self->kept, p);
        }
    }
    if (dropped)
        say(self, SLOG_DEBUG, "snapshots: dropped %zu peers of partitions owned elsewhere",
            dropped);
}

typedef struct {
    keeper_t *self;
    uint32_t now;
    uint64_t wall;
    repo_import_stats_t st;
    size_t bad;
} restore_t;

static void restore_one(void *arg, uint32_t p, const uint8_t *data, size_t len)
{
    restore_t *r = arg;
    if (!data)
        return;
    snap_header_t h;
    snap_err_t e = snap_check(data, len, &h);
    if (e != SNAP_OK || h.partition != p) {
        r->bad++;
        say(r->self, SLOG_WARN,
            "snapshots: the snapshot of partition %u is unreadable (%s); ignored", p,
            e != SNAP_OK ? snap_strerror(e) : "wrong partition");
        return;
    }
    uint64_t extra_ms = r->wall > h.wall_ms ? r->wall - h.wall_ms : 0;
    uint32_t extra = extra_ms / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(extra_ms / 1000);
    snap_iter_t it;
    snap_iter_init(&it, data, len);
    snap_swarm_t sw;
    repo_merge_t merge = pset_has(&r->self->kept, p) ? REPO_MERGE_MAX : REPO_MERGE_ADD;
    while (snap_iter_next(&it, &sw) == SNAP_OK)
        repo_import_swarm(r->self->repo, &sw, r->now, extra, merge, &r->st);
}

static bool unheld_owned(const keeper_t *self)
{
    if (!self->have_table)
        return false;
    for (uint32_t p = 0; p < PARTITION_COUNT; p++)
        if (pset_has(&self->owned, p) && !self->held[p])
            return true;
    return false;
}

enum { KIND_FREE, KIND_HANDED_OVER, KIND_DEPARTED, KIND_FORCED };

/* Step 3: acquire what the table gives us and we do not hold. A partition whose owner record
 * names another live node (a member key in Redis, a member of our table, or leaving) is waited
 * for until that node releases it, at most handover_ms; one whose owner is gone is taken. Each
 * claim acquires only if the owner is still the one we read, so two nodes with different views
 * never both believe they hold a partition: the one refused reads again. */
static void acquire_round(keeper_t *self)
{
    if (!self->have_table)
        return;
    uint32_t *cand = malloc(PARTITION_COUNT * sizeof(*cand));
    snapstore_claim_t *claims = malloc(PARTITION_COUNT * sizeof(*claims));
    uint8_t *kinds = malloc(PARTITION_COUNT);
    uint32_t *got = malloc(PARTITION_COUNT * sizeof(*got));
    uint64_t *epochs = malloc(PARTITION_COUNT * sizeof(*epochs));
    snapstore_owner_t *own = malloc(PARTITION_COUNT * sizeof(*own));
    size_t n = 0, k = 0, waiting = 0;
    if (!cand || !claims || !kinds || !got || !epochs || !own)
        goto out;
    for (uint32_t p = 0; p < PARTITION_COUNT; p++)
        if (pset_has(&self->owned, p) && !self->held[p])
            cand[n++] = p;
    if (n == 0) {
        if (self->change.open)
            log_change(self, "settled in");
        goto out;
    }
    if (!self->change.open) { /* partitions lost and owned again, with no table change */
        uint32_t held = 0;
        for (uint32_t p = 0; p < PARTITION_COUNT; p++)
            held += self->held[p] != 0;
        self->change = (change_t){.open = true, .t0_ms = mono_ms(), .kept = held};
    }
    int64_t t0 = mono_us();
    if (snapstore_owners(self->store, cand, n, own) != 0) {
        redis_failed(self, "reading partition owners");
        goto out;
    }
    /* Owners seen this round, whether they are alive, and how many of their partitions we took
     * without their release: one presence read per owner, however many partitions it has (up
     * to a whole table's members; more would only cost a read per partition). */
    enum { IDS = PARTITION_MEMBERS_MAX };
    char(*ids)[PARTITION_ID_MAX] = self->owner_ids;
    bool *live = self->owner_live;
    uint32_t *forced = self->owner_forced;
    memset(forced, 0, IDS * sizeof(*forced));
    size_t nids = 0;
    int64_t now = mono_ms();
    for (size_t i = 0; i < n; i++) {
        uint32_t p = cand[i];
        const char *o = own[i].owner;
        uint8_t kind;
        if (!o[0]) {
            kind = self->wait_since[p] ? KIND_HANDED_OVER : KIND_FREE;
        } else if (strcmp(o, self->self_id) == 0) {
            kind = KIND_DEPARTED; /* our own record from before a restart (or a loss) */
        } else {
            size_t j = 0;
            while (j < nids && strcmp(ids[j], o) != 0)
                j++;
            bool alive;
            if (j < nids) {
                alive = live[j];
            } else {
                bool member = false, leaving = false;
                if (snapstore_presence(self->store, o, &member, &leaving) != 0) {
                    redis_failed(self, "reading an owner's presence");
                    goto out;
                }
                alive =
                    member || leaving || (self->view.alive && self->view.alive(self->view.arg, o));
                if (nids < IDS) {
                    snprintf(ids[nids], sizeof(ids[nids]), "%s", o);
                    live[nids] = alive;
                    j = nids++;
                }
            }
            kind = KIND_DEPARTED;
            if (alive) {
                if (!self->wait_since[p])
                    self->wait_since[p] = now;
                if (now - self->wait_since[p] < (int64_t)self->handover_ms) {
                    waiting++;
                    continue;
                }
                kind = KIND_FORCED;
                if (j < nids)
                    forced[j]++;
            }
        }
        claims[k] = (snapstore_claim_t){.partition = p, .seen = o};
        kinds[k++] = kind;
    }
    for (size_t j = 0; j < nids; j++)
        if (forced[j])
            say(self, SLOG_WARN,
                "ownership: %s did not hand %u partitions over within %u ms; taking them", ids[j],
                forced[j], self->handover_ms);
    if (k == 0)
        goto out;
    if (snapstore_acquire(self->store, claims, k, epochs) != 0) {
        redis_failed(self, "acquiring partitions");
        goto out;
    }
    size_t m = 0;
    uint32_t counts[4] = {0}, refused = 0;
    for (size_t i = 0; i < k; i++) {
        uint32_t p = claims[i].partition;
        if (epochs[i] == 0) { /* another node acquired it since we read: read again */
            self->change.refused++;
            refused++;
            if (!self->wait_since[p])
                self->wait_since[p] = now;
            waiting++;
            continue;
        }
        epochs[m] = epochs[i];
        got[m++] = p;
        counts[kinds[i]]++;
    }
    if (refused) {
        pthread_mutex_lock(&self->lock);
        self->stats.claims_refused += refused;
        pthread_mutex_unlock(&self->lock);
    }
    if (m == 0)
        goto out;
    restore_t r = {.self = self, .now = self->clock(), .wall = wall_ms()};
    if (snapstore_load(self->store, got, m, restore_one, &r) != 0) {
        /* Some snapshots may be merged, others not: acquire them all again next round (a new
         * epoch, the same snapshots; merging twice adds nothing but the downloaded counts). Our
         * owner record stays, so the next claim sees ourselves. */
        redis_failed(self, "loading snapshots");
        goto out;
    }
    redis_ok(self);
    /* Nothing to mark dirty: what the merge added is marked by the import, and what was
     * announced meanwhile by the announces. */
    for (size_t i = 0; i < m; i++) {
        uint32_t p = got[i];
        self->held[p] = epochs[i];
        self->wait_since[p] = 0;
        pset_del(&self->kept, p);
        block(self, p, false);
    }
    self->change.free += counts[KIND_FREE];
    self->change.handed_over += counts[KIND_HANDED_OVER];
    self->change.departed += counts[KIND_DEPARTED];
    self->change.forced += counts[KIND_FORCED];
    self->change.peers += r.st.peers;
    self->change.swarms += r.st.swarms;
    int64_t t1 = mono_us();
    pthread_mutex_lock(&self->lock);
    self->stats.acquired += m;
    self->stats.restored_swarms += r.st.swarms;
    self->stats.restored_peers += r.st.peers;
    self->stats.restore_expired += r.st.expired;
    self->stats.last_restore_us = (uint64_t)(t1 - t0);
    pthread_mutex_unlock(&self->lock);
    say(self, SLOG_DEBUG,
        "snapshots: acquired %zu partitions, restored %llu peers in %llu swarms (%llu expired, "
        "%llu already here) in %lld ms",
        m, (unsigned long long)r.st.peers, (unsigned long long)r.st.swarms,
        (unsigned long long)r.st.expired, (unsigned long long)r.st.present,
        (long long)((t1 - t0) / 1000));
    if (m == n)
        log_change(self, "settled in");
out:
    pthread_mutex_lock(&self->lock);
    self->stats.waiting = (uint32_t)waiting;
    uint32_t held = 0, lost = 0;
    for (uint32_t p = 0; p < PARTITION_COUNT; p++) {
        held += self->held[p] != 0;
        lost += !keeper_may_serve(self, p);
    }
    self->stats.held = held;
    self->stats.owned = pset_count(&self->owned);
    self->stats.blocked = lost;
    if (!unheld_owned(self))
        self->restore_pending = self->have_table ? 0 : self->restore_pending;
    pthread_cond_broadcast(&self->cond);
    pthread_mutex_unlock(&self->lock);
    free(cand);
    free(claims);
    free(kinds);
    free(got);
    free(epochs);
    free(own);
}

/* ---- the thread ----------------------------------------------------------------------------- */

static void *keeper_main(void *arg)
{
    keeper_t *self = arg;
    int64_t next_snap = mono_ms() + self->interval_ms;
    for (;;) {
        atomic_store_explicit(&self->turned_ms, mono_ms(), memory_order_relaxed);
        pthread_mutex_lock(&self->lock);
        bool stop = self->stop, release = self->release, leave = self->leave && !self->left;
        pthread_mutex_unlock(&self->lock);
        if (leave) {
            if (snapstore_leave(self->store, 2 * self->handover_ms) != 0)
                redis_failed(self, "marking this node as leaving");
            pthread_mutex_lock(&self->lock);
            self->left = true;
            pthread_cond_broadcast(&self->cond);
            pthread_mutex_unlock(&self->lock);
        }
        if (stop) {
            if (release) {
                atomic_store_explicit(&self->block_all, true, memory_order_relaxed);
                uint32_t *ps = malloc(PARTITION_COUNT * sizeof(*ps));
                size_t n = 0;
                for (uint32_t p = 0; ps && p < PARTITION_COUNT; p++)
                    if (self->held[p])
                        ps[n++] = p;
                if (ps)
                    release_partitions(self, ps, n);
                free(ps);
                say(self, SLOG_INFO, "snapshots: handed over %zu partitions", n);
            }
            break;
        }
        bool paced = self->failing.active && mono_ms() < self->retry_ms;
        if (!paced) {
            check_server(self);
            check_gap(self);
        }
        follow_table(self);
        if (!paced)
            acquire_round(self);
        int64_t now = mono_ms();
        if (now >= next_snap) {
            int64_t start = now;
            struct timespec c0, c1;
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
            if (!self->failing.active || now >= self->retry_ms)
                snapshot_cycle(self);
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
            now = mono_ms();
            int64_t busy = (c1.tv_sec - c0.tv_sec) * 1000 + (c1.tv_nsec - c0.tv_nsec) / 1000000;
            /* The duty cap: a cycle that took T is followed by at least T * (100 / DUTY - 1) of
             * rest, so snapshots never take more than DUTY_PERCENT of a core (and of Redis) even
             * when every partition changes every interval; the interval stretches instead. */
            int64_t rest = busy * (100 - DUTY_PERCENT) / DUTY_PERCENT;
            next_snap = start + self->interval_ms;
            if (next_snap < now + rest)
                next_snap = now + rest;
        }
        int64_t wake = next_snap;
        if (unheld_owned(self) && now + ACQUIRE_POLL < wake)
            wake = now + ACQUIRE_POLL;
        /* The lease may need checking sooner than the next snapshot. */
        if (self->view.lease && now + ACQUIRE_POLL < wake)
            wake = now + ACQUIRE_POLL;
        struct timespec ts = mono_deadline(wake - now); /* cond is on CLOCK_MONOTONIC */
        pthread_mutex_lock(&self->lock);
        while (!self->woken && !self->stop && !(self->leave && !self->left)) {
            if (pthread_cond_timedwait(&self->cond, &self->lock, &ts) == ETIMEDOUT)
                break;
        }
        self->woken = false;
        pthread_mutex_unlock(&self->lock);
    }
    atomic_store_explicit(&self->turned_ms, 0, memory_order_relaxed); /* no loop to watch now */
    return NULL;
}

/* ---- public --------------------------------------------------------------------------------- */

keeper_t *keeper_new(const keeper_config_t *cfg, char *err, size_t errlen)
{
    if (!cfg->repo || !cfg->view.owned || !cfg->view.version || !cfg->self_id || !cfg->self_id[0] ||
        strlen(cfg->self_id) > SNAP_OWNER_MAX || cfg->interval_ms == 0) {
        err_set(err, errlen, "keeper: bad configuration");
        return NULL;
    }
    rconn_url_t url;
    if (rconn_parse_auth(cfg->redis_url, cfg->redis_password_file, &url, err, errlen) != 0)
        return NULL;
    keeper_t *self = calloc(1, sizeof(*self));
    if (!self) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(self->self_id, sizeof(self->self_id), "%s", cfg->self_id);
    self->repo = cfg->repo;
    self->view = cfg->view;
    self->interval_ms = cfg->interval_ms;
    self->handover_ms = cfg->handover_ms ? cfg->handover_ms : 3000;
    self->clock = cfg->clock ? cfg->clock : mono_s;
    self->log = cfg->log;
    self->log_arg = cfg->log_arg;
    self->failing = (backoff_t){.first_ms = 1000, .max_ms = BACKOFF_MAX_MS};
    self->store = snapstore_new(&url, cfg->prefix ? cfg->prefix : "shoal", cfg->self_id,
                                cfg->redis_timeout_ms ? cfg->redis_timeout_ms : 1000);
    if (!self->store) {
        err_set(err, errlen, "keeper: bad prefix or id, or out of memory");
        free(self);
        return NULL;
    }
    pthread_mutex_init(&self->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&self->cond, &attr);
    pthread_condattr_destroy(&attr);
    self->restore_pending = 1;
    return self;
}

int keeper_start(keeper_t *self)
{
    if (self->started)
        return 0;
    if (pthread_create(&self->thread, NULL, keeper_main, self) != 0)
        return -1;
    self->started = true;
    return 0;
}

void keeper_notify(keeper_t *self)
{
    pthread_mutex_lock(&self->lock);
    self->woken = true;
    pthread_cond_broadcast(&self->cond);
    pthread_mutex_unlock(&self->lock);
}

bool keeper_serving(keeper_t *self)
{
    if (atomic_load_explicit(&self->block_all, memory_order_relaxed))
        return false;
    if (!self->view.lease)
        return true;
    uint64_t gaps;
    if (!self->view.lease(self->view.arg, &gaps))
        return false;
    return gaps == atomic_load_explicit(&self->verified_gaps, memory_order_acquire);
}

bool keeper_may_serve(const keeper_t *self, uint32_t p)
{
    uint64_t w = atomic_load_explicit(&self->blocked[p >> 6], memory_order_relaxed);
    return !((w >> (p & 63)) & 1);
}

bool keeper_wait_restored(keeper_t *self, uint32_t timeout_ms)
{
    struct timespec ts = mono_deadline(timeout_ms);
    pthread_mutex_lock(&self->lock);
    while (self->restore_pending) {
        if (pthread_cond_timedwait(&self->cond, &self->lock, &ts) == ETIMEDOUT)
            break;
    }
    bool done = self->restore_pending == 0;
    pthread_mutex_unlock(&self->lock);
    return done;
}

void keeper_leave(keeper_t *self)
{
    if (!self->started)
        return;
    pthread_mutex_lock(&self->lock);
    self->leave = true;
    pthread_cond_broadcast(&self->cond);
    /* Bounded: the thread sets the mark within one Redis timeout of finishing its current step. */
    struct timespec ts = mono_deadline(5000);
    while (!self->left) {
        if (pthread_cond_timedwait(&self->cond, &self->lock, &ts) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&self->lock);
}

void keeper_stop(keeper_t *self, bool release)
{
    if (!self->started)
        return;
    pthread_mutex_lock(&self->lock);
    self->stop = true;
    self->release = release;
    pthread_cond_broadcast(&self->cond);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL);
    self->started = false;
}

void keeper_destroy(keeper_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    keeper_t *self = *self_p;
    keeper_stop(self, false);
    for (uint32_t p = 0; p < PARTITION_COUNT; p++)
        snap_enc_destroy(&self->enc[p]);
    snapstore_destroy(&self->store);
    pthread_cond_destroy(&self->cond);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

uint32_t keeper_loop_age_ms(const keeper_t *self)
{
    int64_t turned = atomic_load_explicit(&self->turned_ms, memory_order_relaxed);
    if (turned == 0)
        return 0;
    int64_t age = mono_ms() - turned;
    return age <= 0 ? 0 : age > UINT32_MAX ? UINT32_MAX : (uint32_t)age;
}

void keeper_stats(keeper_t *self, keeper_stats_t *out)
{
    pthread_mutex_lock(&self->lock);
    *out = self->stats;
    pthread_mutex_unlock(&self->lock);
}

static bool own_all(void *arg, pset_t *mine)
{
    (void)arg;
    pset_fill(mine);
    return true;
}

static uint64_t version_one(void *arg)
{
    (void)arg;
    return 1;
}

keeper_view_t keeper_view_all(void)
{
    return (keeper_view_t){.owned = own_all, .version = version_one};
}

void keeper_describe(keeper_t *self, char *buf, size_t len)
{
    keeper_stats_t stats;
    keeper_stats(self, &stats);
    const keeper_stats_t *st = &stats;
    uint32_t unheld = st->owned > st->held ? st->owned - st->held : 0;
    uint32_t waiting = st->waiting < unheld ? st->waiting : unheld;
    snprintf(buf, len,
             "ownership: owned %u, held %u, acquiring %u, waiting for release %u, lost %u; "
             "snapshots: %llu partition writes (%llu bytes, %llu peers; last cycle %llu us, "
             "longest %llu us), %llu acquired, %llu peers restored, %llu released, %llu lost, "
             "%llu redis errors",
             st->owned, st->held, unheld - waiting, waiting, st->blocked,
             (unsigned long long)st->partitions, (unsigned long long)st->bytes,
             (unsigned long long)st->peers, (unsigned long long)st->last_cycle_us,
             (unsigned long long)st->max_cycle_us, (unsigned long long)st->acquired,
             (unsigned long long)st->restored_peers, (unsigned long long)st->released,
             (unsigned long long)st->lost, (unsigned long long)st->errors);
}
