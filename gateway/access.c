/* SPDX-License-Identifier: MIT */
/* access: the access list the front end consults (contract and safety argument in access.h).
 *
 * Invariant: cur is never NULL; every set this object owns is either cur or on the retired list,
 * and a retired set is freed only after a sweep saw no hazard slot holding it. At most n_workers
 * sets can be held at once (one slot each), so after a sweep at most n_workers stay retired and
 * the retired array (n_workers + 1 places, allocated up front) always has room for one more:
 * a replace never allocates and never fails. */
#include "access.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Sweeps of the retired list a replace makes, yielding between them, before it leaves a set
 * still held for a later sweep. A reader holds a set for one lookup (~100 ns), so the first
 * sweep nearly always frees it. */
#define RECLAIM_ROUNDS 1000

/* A list file larger than this is refused (16.7 M lines of 41 bytes is 690 MB). */
#define FILE_MAX ((off_t)1 << 30)

/* One worker's hazard slot and counters, on a cache line of its own. */
typedef struct {
    _Alignas(64) _Atomic(aset_t *) hazard;
    _Atomic uint64_t allowed, refused; /* written by the worker only */
} slot_t;

struct access {
    _Atomic(aset_t *) cur;
    _Atomic int mode;
    _Atomic uint64_t version;
    unsigned n_workers;
    slot_t *slots;
    pthread_mutex_t lock; /* writers only: replace, edit, count, list */
    aset_t **retired;     /* n_workers + 1 places */
    size_t n_retired;
};

int access_mode_parse(const char *text, access_mode_t *out)
{
    static const char *const names[] = {"off", "allow", "deny"};
    for (int m = 0; m < 3; m++) {
        if (strcmp(text, names[m]) == 0) {
            *out = (access_mode_t)m;
            return 0;
        }
    }
    return -1;
}

const char *access_mode_name(access_mode_t mode)
{
    return mode == ACCESS_ALLOW ? "allow" : mode == ACCESS_DENY ? "deny" : "off";
}

uint64_t access_seed(void)
{
    uint64_t seed;
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
        return seed;
    /* No entropy yet (early boot): a clock and an address still differ between starts. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    seed = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ULL ^ (uint64_t)ts.tv_sec ^
           (uint64_t)(uintptr_t)&ts;
    return seed;
}

static aset_t *empty_set(void)
{
    aset_builder_t *b = aset_builder_new();
    return b ? aset_build(&b, access_seed()) : NULL;
}

access_t *access_new(access_mode_t mode, unsigned n_workers)
{
    if (n_workers == 0)
        return NULL;
    access_t *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->n_workers = n_workers;
    a->slots = aligned_alloc(_Alignof(slot_t), n_workers * sizeof(slot_t));
    a->retired = calloc(n_workers + 1, sizeof(*a->retired));
    aset_t *empty = empty_set();
    if (!a->slots || !a->retired || !empty || pthread_mutex_init(&a->lock, NULL) != 0) {
        aset_free(&empty);
        free(a->slots);
        free(a->retired);
        free(a);
        return NULL;
    }
    for (unsigned i = 0; i < n_workers; i++) {
        atomic_init(&a->slots[i].hazard, NULL);
        atomic_init(&a->slots[i].allowed, 0);
        atomic_init(&a->slots[i].refused, 0);
    }
    atomic_init(&a->cur, empty);
    atomic_init(&a->mode, (int)mode);
    atomic_init(&a->version, 0);
    return a;
}

void access_destroy(access_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    access_t *a = *self_p;
    aset_t *cur = atomic_load(&a->cur);
    aset_free(&cur);
    for (size_t i = 0; i < a->n_retired; i++)
        aset_free(&a->retired[i]);
    pthread_mutex_destroy(&a->lock);
    free(a->retired);
    free(a->slots);
    free(a);
    *self_p = NULL;
}

/* The current set, published in worker's hazard slot; the caller clears the slot after use. */
static inline aset_t *hold(access_t *a, slot_t *sl)
{
    aset_t *s = atomic_load_explicit(&a->cur, memory_order_relaxed);
    /* Repeats only if a replace swapped the pointer between the two loads; each repeat means a
     * replace completed its swap (lock-free). */
    for (;;) {
        atomic_store_explicit(&sl->hazard, s, memory_order_seq_cst);
        aset_t *again = atomic_load_explicit(&a->cur, memory_order_seq_cst);
        if (again == s)
            return s;
        s = again;
    }
}

static inline void bump(_Atomic uint64_t *c)
{
    /* One writer per slot: a plain increment, no locked instruction. */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

bool access_allows(access_t *self, unsigned worker, const uint8_t h[ASET_HASH_LEN])
{
    return access_allows_all(self, worker, h, 1);
}

bool access_allows_all(access_t *self, unsigned worker, const uint8_t *hashes, size_t n)
{
    int mode = atomic_load_explicit(&self->mode, memory_order_relaxed);
    if (mode == ACCESS_OFF)
        return true;
    assert(worker < self->n_workers);
    slot_t *sl = &self->slots[worker];
    const aset_t *s = hold(self, sl);
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        bool listed = aset_contains(s, hashes + i * ASET_HASH_LEN);
        ok = mode == ACCESS_ALLOW ? listed : !listed;
        bump(ok ? &sl->allowed : &sl->refused);
    }
    atomic_store_explicit(&sl->hazard, NULL, memory_order_release);
    return ok;
}

unsigned access_workers(const access_t *self)
{
    return self->n_workers;
}

/* Free the retired sets no slot holds. Caller holds the lock. */
static void sweep(access_t *a)
{
    size_t keep = 0;
    for (size_t i = 0; i < a->n_retired; i++) {
        aset_t *r = a->retired[i];
        bool held = false;
        for (unsigned w = 0; w < a->n_workers && !held; w++)
            held = atomic_load_explicit(&a->slots[w].hazard, memory_order_seq_cst) == r;
        if (held)
            a->retired[keep++] = r;
        else
            aset_free(&r);
    }
    a->n_retired = keep;
}

/* Swap set in and retire the old one. Caller holds the lock. */
static void swap_locked(access_t *a, aset_t *set)
{
    /* Room first: a sweep leaves at most n_workers retired (one held set per slot). */
    sweep(a);
    assert(a->n_retired <= a->n_workers);
    aset_t *old = atomic_exchange_explicit(&a->cur, set, memory_order_seq_cst);
    atomic_fetch_add_explicit(&a->version, 1, memory_order_relaxed);
    a->retired[a->n_retired++] = old;
    for (int round = 0; round < RECLAIM_ROUNDS && a->n_retired > 0; round++) {
        if (round > 0)
            sched_yield();
        sweep(a);
    }
}

void access_replace(access_t *self, aset_t **set_p)
{
    aset_t *set = *set_p;
    *set_p = NULL;
    if (!set)
        return;
    pthread_mutex_lock(&self->lock);
    swap_locked(self, set);
    pthread_mutex_unlock(&self->lock);
}

int access_edit(access_t *self, const uint8_t h[ASET_HASH_LEN], bool present)
{
    pthread_mutex_lock(&self->lock);
    /* The lock keeps cur from changing (writers swap under it), so it can be read in full. */
    aset_t *next = aset_with(atomic_load(&self->cur), h, present, access_seed());
    if (next)
        swap_locked(self, next);
    pthread_mutex_unlock(&self->lock);
    return next ? 0 : -1;
}

void access_set_mode(access_t *self, access_mode_t mode)
{
    atomic_store(&self->mode, (int)mode);
}

access_mode_t access_mode(const access_t *self)
{
    return (access_mode_t)atomic_load(&self->mode);
}

uint64_t access_version(const access_t *self)
{
    return atomic_load(&self->version);
}

size_t access_count(access_t *self)
{
    pthread_mutex_lock(&self->lock);
    size_t n = aset_count(atomic_load(&self->cur));
    pthread_mutex_unlock(&self->lock);
    return n;
}

bool access_listed(access_t *self, const uint8_t h[ASET_HASH_LEN])
{
    pthread_mutex_lock(&self->lock);
    bool listed = aset_contains(atomic_load(&self->cur), h);
    pthread_mutex_unlock(&self->lock);
    return listed;
}

size_t access_list(access_t *self, size_t offset, uint8_t (*out)[ASET_HASH_LEN], size_t max)
{
    pthread_mutex_lock(&self->lock);
    const aset_t *s = atomic_load(&self->cur);
    size_t n = 0;
    while (n < max && aset_get(s, offset + n, out[n]) == 0)
        n++;
    pthread_mutex_unlock(&self->lock);
    return n;
}

void access_stats(const access_t *self, access_stats_t *out)
{
    out->allowed = out->refused = 0;
    for (unsigned i = 0; i < self->n_workers; i++) {
        out->allowed += atomic_load_explicit(&self->slots[i].allowed, memory_order_relaxed);
        out->refused += atomic_load_explicit(&self->slots[i].refused, memory_order_relaxed);
    }
}

/* The whole file in a new buffer (*len bytes). Returns it, or NULL with the reason in err. */
static char *read_all(const char *path, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    const char *why = NULL;
    if (fstat(fd, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    else if (st.st_size > FILE_MAX)
        why = "larger than 1 GiB";
    if (why) {
        snprintf(err, errlen, "%s: %s", path, why);
        close(fd);
        return NULL;
    }
    size_t cap = (size_t)st.st_size;
    char *buf = malloc(cap + 1);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        close(fd);
        return NULL;
    }
    size_t got = 0;
    /* Bounded: each read adds bytes, and at most cap are taken (a file growing meanwhile is
     * read as it was when opened). */
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return buf;
}

int access_load_file(const char *path, aset_t **out, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = read_all(path, &len, err, errlen);
    if (!text)
        return -1;
    aset_builder_t *b = aset_builder_new();
    char why[160];
    int rc = -1;
    if (!b)
        snprintf(err, errlen, "%s: out of memory", path);
    else if (aset_builder_parse(b, text, len, why, sizeof(why)) != 0)
        snprintf(err, errlen, "%s: %s", path, why);
    else if (!(*out = aset_build(&b, access_seed())))
        snprintf(err, errlen, "%s: out of memory", path);
    else
        rc = 0;
    aset_builder_destroy(&b);
    free(text);
    return rc;
}
