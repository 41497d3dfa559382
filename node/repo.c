/* SPDX-License-Identifier: MIT */
/* repo: the striped swarm repository (see repo.h for the contract).
 *
 * Layout, chosen for bytes per peer first and cache misses per announce second:
 *
 *   repo -> stripes[2^bits], one cache line pair each: lock, swarm table, RNG, counters.
 *   stripe table: open addressing, linear probing, power-of-two size, at most 3/4 full,
 *     backward-shift deletion (no tombstones). A slot is one 64-bit word: the swarm block's
 *     address in the low 48 bits and 16 bits of the info-hash's keyed hash above them, so a
 *     probe rejects foreign swarms without touching their memory. 8 bytes a slot instead of an
 *     inline 40-byte swarm keeps the table ~1.5 bytes per peer at 10 peers a swarm.
 *   swarm block (one malloc): info-hash, downloaded, IPv6 set pointer, IPv4 set header, then
 *     the IPv4 set's arrays. The common swarm (IPv4 only) is a single allocation whose header
 *     shares a cache line with its first peers.
 *   peer set (IPv4 in the swarm block, IPv6 in a block of its own), structure of arrays:
 *     addr[cap] compact records (6 or 18 bytes, wire form, so a reply is a memcpy of a run),
 *     meta[cap] 16 bits (bit 15: this peer's `completed` was counted; bits 0..14: last seen, in
 *     ticks after the set's base), and, once cap exceeds SMALL_MAX, idx[] an open-addressing
 *     index of positions + 1 keyed by a keyed multiply hash of the record (attackers pick ports).
 *     An IPv4 peer costs 8 bytes, an IPv6 peer 20, plus ~2.7 bytes of index in large sets.
 *
 * Invariants of a peer set: leechers occupy [0, nl), seeders [nl, n); each record appears once;
 * idx (if any) holds exactly the positions [0, n), each under its record's hash; every meta
 * offset is base-relative and a peer's last-seen tick is base + offset (mod 2^32). A tick is
 * now >> tshift, with tshift 0 (exact seconds) for timeouts up to 4.5 hours. Expiry and the
 * announce path rebase a set before offsets could overflow 15 bits, so times never wrap
 * whatever the sweep period.
 *
 * Memory accounting: every block size is rounded to glibc's chunk sizes and the chunk size
 * (with malloc's 8-byte header) is added to self->bytes when it is allocated or resized, never
 * per request. Growth asks the budget first.
 *
 * Snapshots: a bitmap of partitions (one bit each, atomic words on cache lines of their own)
 * records which partitions an announce or import touched. Marking happens after the stripe lock
 * is released and the taker clears words with an atomic exchange before it locks stripes to
 * export them, so through the lock either the export sees the change or the mark lands after the
 * clear: no change is ever unmarked and unexported. Export and import work in seconds of age;
 * the tick arithmetic is kept here so an age never makes a peer expire earlier than it would
 * have on the node that wrote it. */
#include "repo.h"

#include <pthread.h>
#include <sodium.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* 1M torrents, 100k peers per swarm, 2 GiB, 45 minutes. */
const repo_limits_t repo_default_limits = {
    .max_torrents = 5000000,
    .max_peers_per_swarm = 100000,
    .memory_budget = UINT64_C(4) << 30,
    .peer_timeout_s = 45 * 60,
};

#define NONE UINT32_MAX
/* Sets up to this capacity are scanned, larger ones indexed. Scanning costs ~3.5 instructions a
 * record (callgrind), so the index wins on instructions from ~8 peers; but it costs ~2.7 bytes a
 * record and one more cache line per lookup in a cold swarm, while a 24-peer IPv4 scan reads 3
 * adjacent lines, so small sets stay unindexed. */
#define SMALL_MAX 24
#define META_DONE 0x8000u
#define META_OFF  0x7fffu
#define TICKS_MAX 0x4000u /* a timeout is at most this many ticks */
#define SLOT_PTR  ((UINT64_C(1) << 48) - 1)
#define TABLE_MIN 8
#define SWARM_HDR 48 /* offsetof(struct swarm, data) */
#define PSET6_HDR 16

/* Spin or sleep: measured on 2 cores with 1-8 threads announcing into 4 hot swarms or 100k
 * small ones, a test-and-test-and-set spinlock (pause, then sched_yield) was never faster than
 * the glibc mutex (one CAS to lock, one atomic to unlock when uncontended) beyond noise, and
 * fell to half its throughput once threads outnumbered cores (a preempted holder makes everyone
 * spin). Workers plus the sweeper may well outnumber cores, so it is a mutex. */
typedef pthread_mutex_t lock_t;

struct pset {
    uint32_t n;    /* peers */
    uint32_t nl;   /* leechers, in [0, nl) */
    uint32_t cap;  /* records the arrays have room for */
    uint32_t base; /* tick that meta offsets count from */
};

struct pset6 {
    struct pset h;
    uint8_t data[]; /* addr[cap * 18], meta[cap], idx */
};

struct swarm {
    uint8_t ih[SHOAL_HASH_LEN];
    uint32_t downloaded;
    struct pset6 *v6; /* NULL until the first IPv6 peer */
    struct pset v4;
    uint8_t data[]; /* addr[cap * 6], meta[cap], idx */
};
_Static_assert(offsetof(struct swarm, data) == SWARM_HDR, "swarm header size");
_Static_assert(offsetof(struct pset6, data) == PSET6_HDR, "pset6 header size");

struct stripe {
    alignas(64) lock_t lock;
    uint64_t *slots; /* NULL while empty */
    size_t mask;     /* slots - 1 */
    size_t count;    /* swarms */
    uint64_t rng;
    uint64_t peers;  /* both families */
    uint64_t peers6; /* of which IPv6: same cache line as peers, so counting it costs no miss */
    uint64_t seeders;
};

struct repo {
    repo_limits_t lim;
    unsigned bits;
    size_t nstripes;
    unsigned tshift; /* tick = now >> tshift */
    uint32_t tticks; /* a peer is expired after this many ticks */
    uint8_t sipkey[crypto_shorthash_KEYBYTES];
    uint64_t pkey[4]; /* peer index hash key */
    struct stripe *stripes;
    alignas(64) _Atomic uint64_t bytes;
    _Atomic uint64_t torrents;
    /* Read on every announce, written about once per partition per snapshot period: kept off
     * the lines of the counters above, which change on every new swarm or block. */
    alignas(64) _Atomic uint64_t dirty[REPO_DIRTY_WORDS];
};
_Static_assert(REPO_DIRTY_WORDS * 64 == PARTITION_COUNT, "one dirty bit per partition");

/* A peer set's arrays, resolved once per call. */
typedef struct {
    struct pset *h;
    uint8_t *addr;
    uint16_t *meta;
    void *idx;    /* NULL for small sets */
    uint32_t isz; /* index slots */
    bool wide;    /* uint32_t entries, else uint16_t */
    const repo_t *r;
} view_t;

/* ---- helpers: hashing, random, sizes ------------------------------------------------------ */

static inline uint64_t mum(uint64_t a, uint64_t b)
{
    unsigned __int128 p = (unsigned __int128)a * b;
    return (uint64_t)p ^ (uint64_t)(p >> 64);
}

static uint64_t swarm_hash(const repo_t *r, const uint8_t ih[SHOAL_HASH_LEN])
{
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, ih, SHOAL_HASH_LEN, r->sipkey);
    uint64_t h;
    memcpy(&h, out, sizeof(h));
    return h;
}

/* Keyed multiply-fold hash of a compact record: a few ns, and without the key an attacker
 * choosing ports cannot aim at one index slot. */
static inline uint64_t peer_hash(const repo_t *r, const uint8_t *rec, unsigned rl)
{
    if (rl == SHOAL_PEER4_LEN) {
        uint32_t a;
        uint16_t p;
        memcpy(&a, rec, 4);
        memcpy(&p, rec + 4, 2);
        return mum(a ^ r->pkey[0], p ^ r->pkey[1]);
    }
    uint64_t w0, w1;
    uint16_t w2;
    memcpy(&w0, rec, 8);
    memcpy(&w1, rec + 8, 8);
    memcpy(&w2, rec + 16, 2);
    return mum(mum(w0 ^ r->pkey[0], w1 ^ r->pkey[1]) ^ w2, r->pkey[2]);
}

/* wyrand: one add and one multiply. */
static inline uint32_t rand_below(uint64_t *s, uint32_t n)
{
    *s += UINT64_C(0xa0761d6478bd642f);
    uint64_t x = mum(*s, *s ^ UINT64_C(0xe7037ed1a0b428db));
    return (uint32_t)(((x & 0xffffffffu) * n) >> 32);
}

/* glibc hands out chunks of 16k bytes holding 16k - 8 usable ones (at least 24): sizing blocks
 * to that fills the slack with records instead of wasting it. */
static inline size_t usable_round(size_t n)
{
    if (n < 24)
        n = 24;
    return ((n + 8 + 15) & ~(size_t)15) - 8;
}

/* What a block of n bytes costs, counted against the budget. */
static inline size_t alloc_cost(size_t n)
{
    return usable_round(n) + 8;
}

/* Index slots for cap records: at most 3/4 full. Not a power of two (slots are picked by
 * multiply-shift), and 16-bit entries while positions fit: ~2.7 bytes a record. */
static inline uint32_t idx_slots(uint32_t cap)
{
    return cap <= SMALL_MAX ? 0 : cap + cap / 3 + 1;
}

static inline bool idx_wide(uint32_t cap)
{
    return cap >= UINT16_MAX; /* entries hold positions + 1 */
}

static inline size_t meta_off(uint32_t cap, unsigned rl)
{
    return (size_t)cap * rl;
}

static inline size_t idx_off(uint32_t cap, unsigned rl)
{
    return ((size_t)cap * rl + 2 * (size_t)cap + 3) & ~(size_t)3;
}

static inline size_t data_size(uint32_t cap, unsigned rl)
{
    return idx_off(cap, rl) + (size_t)idx_slots(cap) * (idx_wide(cap) ? 4 : 2);
}

/* The capacity to allocate for at least want records: small sets take all the room their
 * malloc chunk has anyway. */
static uint32_t fit_cap(uint32_t want, unsigned rl, size_t hdr)
{
    if (want > SMALL_MAX)
        return want;
    size_t usable = usable_round(hdr + data_size(want, rl));
    uint32_t cap = want;
    while (cap < SMALL_MAX && hdr + data_size(cap + 1, rl) <= usable)
        cap++;
    return cap;
}

static bool mem_reserve(repo_t *r, size_t n)
{
    uint64_t cur = atomic_load_explicit(&r->bytes, memory_order_relaxed);
    if (cur + n > r->lim.memory_budget)
        return false;
    atomic_fetch_add_explicit(&r->bytes, n, memory_order_relaxed);
    return true;
}

static void mem_release(repo_t *r, size_t n)
{
    atomic_fetch_sub_explicit(&r->bytes, n, memory_order_relaxed);
}

/* Table slots keep a pointer in 48 bits: Linux on x86-64 and arm64 never maps user memory
 * above 2^47 (2^48 with 52-bit VA) unless asked to by an mmap hint, which malloc never gives.
 * Should that ever break, failing loudly beats corrupting the table. */
static inline uint64_t ptr_bits(const void *p)
{
    uint64_t v = (uint64_t)(uintptr_t)p;
    if (v & ~SLOT_PTR)
        abort();
    return v;
}

static inline struct swarm *slot_swarm(uint64_t e)
{
    return (struct swarm *)(uintptr_t)(e & SLOT_PTR);
}

static inline uint64_t slot_tag(uint64_t h)
{
    return (h & UINT64_C(0x0000ffff00000000)) << 16;
}

static inline uint32_t tick_of(const repo_t *r, uint32_t now)
{
    return now >> r->tshift;
}

/* Mark partition p dirty: a relaxed load, and the atomic OR (a cache line taken exclusive) only
 * for the first touch of p since the last take. */
static inline void mark_dirty(repo_t *r, uint32_t p)
{
    _Atomic uint64_t *w = &r->dirty[p / 64];
    const uint64_t bit = UINT64_C(1) << (p % 64);
    if (!(atomic_load_explicit(w, memory_order_relaxed) & bit))
        atomic_fetch_or_explicit(w, bit, memory_order_relaxed);
}

static inline uint16_t time_off(uint32_t tick, uint32_t base)
{
    int32_t d = (int32_t)(tick - base);
    return d < 0 ? 0 : d > (int32_t)META_OFF ? META_OFF : (uint16_t)d;
}

/* ---- peer sets ---------------------------------------------------------------------------- */

static inline view_t view_make(const repo_t *r, struct pset *h, uint8_t *data, unsigned rl)
{
    view_t v = {
        .h = h,
        .addr = data,
        .meta = (uint16_t *)(void *)(data + meta_off(h->cap, rl)),
        .r = r,
    };
    v.isz = idx_slots(h->cap);
    v.idx = v.isz ? data + idx_off(h->cap, rl) : NULL;
    v.wide = idx_wide(h->cap);
    return v;
}

static inline uint32_t idx_get(const view_t *v, uint32_t j)
{
    return v->wide ? ((const uint32_t *)v->idx)[j] : ((const uint16_t *)v->idx)[j];
}

static inline void idx_set(const view_t *v, uint32_t j, uint32_t e)
{
    if (v->wide)
        ((uint32_t *)v->idx)[j] = e;
    else
        ((uint16_t *)v->idx)[j] = (uint16_t)e;
}

static inline uint32_t idx_home(const view_t *v, uint64_t h)
{
    return (uint32_t)(((h & 0xffffffffu) * v->isz) >> 32);
}

static inline uint32_t idx_next(const view_t *v, uint32_t j)
{
    return ++j == v->isz ? 0 : j;
}

/* Slots from a to b, going forward. */
static inline uint32_t idx_dist(const view_t *v, uint32_t a, uint32_t b)
{
    return b >= a ? b - a : b + v->isz - a;
}

static inline view_t view4(const repo_t *r, struct swarm *s)
{
    return view_make(r, &s->v4, s->data, SHOAL_PEER4_LEN);
}

static inline view_t view6(const repo_t *r, struct pset6 *p)
{
    return view_make(r, &p->h, p->data, SHOAL_PEER6_LEN);
}

static inline uint32_t set_find(const view_t *v, const uint8_t *key, uint64_t kh, unsigned rl)
{
    if (!v->idx) {
        const uint32_t n = v->h->n;
        for (uint32_t i = 0; i < n; i++)
            if (memcmp(v->addr + (size_t)i * rl, key, rl) == 0)
                return i;
        return NONE;
    }
    for (uint32_t j = idx_home(v, kh);; j = idx_next(v, j)) {
        uint32_t e = idx_get(v, j);
        if (!e)
            return NONE;
        if (memcmp(v->addr + (size_t)(e - 1) * rl, key, rl) == 0)
            return e - 1;
    }
}

static inline void idx_put(const view_t *v, uint32_t pos, unsigned rl)
{
    uint32_t j = idx_home(v, peer_hash(v->r, v->addr + (size_t)pos * rl, rl));
    while (idx_get(v, j))
        j = idx_next(v, j);
    idx_set(v, j, pos + 1);
}

/* The index entry holding pos, found through the record at pos. */
static inline uint32_t idx_slot_of(const view_t *v, uint32_t pos, unsigned rl)
{
    uint32_t j = idx_home(v, peer_hash(v->r, v->addr + (size_t)pos * rl, rl));
    while (idx_get(v, j) != pos + 1)
        j = idx_next(v, j);
    return j;
}

/* Drop pos from the index (its record must still be in place), shifting the cluster back. */
static void idx_del(const view_t *v, uint32_t pos, unsigned rl)
{
    uint32_t j = idx_slot_of(v, pos, rl);
    for (uint32_t k = idx_next(v, j);; k = idx_next(v, k)) {
        uint32_t e = idx_get(v, k);
        if (!e)
            break;
        uint32_t home = idx_home(v, peer_hash(v->r, v->addr + (size_t)(e - 1) * rl, rl));
        if (idx_dist(v, home, k) >= idx_dist(v, j, k)) {
            idx_set(v, j, e);
            j = k;
        }
    }
    idx_set(v, j, 0);
}

static void idx_rebuild(const view_t *v, unsigned rl)
{
    if (!v->idx)
        return;
    memset(v->idx, 0, (size_t)v->isz * (v->wide ? 4 : 2));
    for (uint32_t i = 0; i < v->h->n; i++)
        idx_put(v, i, rl);
}

/* Copy the record at src over the free position dst (not in the index). */
static inline void rec_move(const view_t *v, uint32_t src, uint32_t dst, unsigned rl)
{
    if (v->idx)
        idx_set(v, idx_slot_of(v, src, rl), dst + 1);
    memcpy(v->addr + (size_t)dst * rl, v->addr + (size_t)src * rl, rl);
    v->meta[dst] = v->meta[src];
}

static inline void rec_swap(const view_t *v, uint32_t a, uint32_t b, unsigned rl)
{
    if (a == b)
        return;
    if (v->idx) {
        uint32_t ea = idx_slot_of(v, a, rl), eb = idx_slot_of(v, b, rl);
        idx_set(v, ea, b + 1);
        idx_set(v, eb, a + 1);
    }
    uint8_t t[SHOAL_PEER6_LEN];
    memcpy(t, v->addr + (size_t)a * rl, rl);
    memcpy(v->addr + (size_t)a * rl, v->addr + (size_t)b * rl, rl);
    memcpy(v->addr + (size_t)b * rl, t, rl);
    uint16_t m = v->meta[a];
    v->meta[a] = v->meta[b];
    v->meta[b] = m;
}

/* Insert a new record (room must exist) in its part; returns its position. */
static inline uint32_t set_add(const view_t *v, const uint8_t *key, bool seeder, uint16_t meta,
                               unsigned rl)
{
    struct pset *h = v->h;
    uint32_t pos = h->n;
    if (!seeder) {
        pos = h->nl;
        if (h->n > h->nl)
            rec_move(v, h->nl, h->n, rl); /* first seeder to the end */
        h->nl++;
    }
    memcpy(v->addr + (size_t)pos * rl, key, rl);
    v->meta[pos] = meta;
    h->n++;
    if (v->idx)
        idx_put(v, pos, rl);
    return pos;
}

static inline void set_remove(const view_t *v, uint32_t pos, unsigned rl)
{
    struct pset *h = v->h;
    if (v->idx)
        idx_del(v, pos, rl);
    if (pos < h->nl) {
        /* The hole moves to the last leecher's place, which becomes the seeders' first. */
        uint32_t last_l = h->nl - 1;
        if (pos != last_l)
            rec_move(v, last_l, pos, rl);
        pos = last_l;
        h->nl--;
    }
    uint32_t last = h->n - 1;
    if (pos != last)
        rec_move(v, last, pos, rl);
    h->n--;
}

/* Move the peer at pos to the other part; returns its new position. */
static inline uint32_t set_flip(const view_t *v, uint32_t pos, unsigned rl)
{
    struct pset *h = v->h;
    if (pos < h->nl) {
        rec_swap(v, pos, h->nl - 1, rl);
        return --h->nl;
    }
    rec_swap(v, pos, h->nl, rl);
    return h->nl++;
}

static inline uint8_t *copy_run(const view_t *v, uint32_t a, uint32_t b, uint32_t self, uint8_t *o,
                                unsigned rl)
{
    if (self >= a && self < b) {
        memcpy(o, v->addr + (size_t)a * rl, (size_t)(self - a) * rl);
        o += (size_t)(self - a) * rl;
        a = self + 1;
    }
    memcpy(o, v->addr + (size_t)a * rl, (size_t)(b - a) * rl);
    return o + (size_t)(b - a) * rl;
}

/* Up to want records from [0, pool), a window starting at a random position and wrapping,
 * without self: one or two memcpy runs per reply. */
static inline size_t set_select(const view_t *v, uint32_t pool, uint32_t self, size_t want,
                                uint64_t *rng, uint8_t *out, unsigned rl)
{
    uint32_t avail = pool - (self < pool ? 1 : 0);
    uint32_t k = want < avail ? (uint32_t)want : avail;
    if (k == 0)
        return 0;
    uint32_t start = rand_below(rng, pool);
    uint32_t len = k;
    if (self < pool) {
        uint32_t d = self >= start ? self - start : self + pool - start;
        if (d < k)
            len++;
    }
    uint32_t end = start + len; /* len <= pool, so end < 2 * pool */
    if (end <= pool) {
        copy_run(v, start, end, self, out, rl);
    } else {
        uint8_t *o = copy_run(v, start, pool, self, out, rl);
        copy_run(v, 0, end - pool, self, o, rl);
    }
    return k;
}

/* Drop expired peers and rebase the others on tick - tticks; fix the stripe's counters.
 * Returns the number of peers removed. O(n), sequential; the index is rebuilt if any left. */
static uint32_t set_sweep(const repo_t *r, struct stripe *st, const view_t *v, uint32_t tick,
                          unsigned rl)
{
    struct pset *h = v->h;
    const uint32_t base = h->base, nbase = tick - r->tticks;
    uint32_t w = 0, nl = 0;
    for (uint32_t i = 0; i < h->n; i++) {
        if (i == h->nl)
            nl = w;
        uint16_t m = v->meta[i];
        uint32_t seen = base + (m & META_OFF);
        if ((int32_t)(tick - seen) >= (int32_t)r->tticks)
            continue;
        if (w != i)
            memcpy(v->addr + (size_t)w * rl, v->addr + (size_t)i * rl, rl);
        v->meta[w] = (uint16_t)((m & META_DONE) | time_off(seen, nbase));
        w++;
    }
    if (h->nl == h->n)
        nl = w;
    uint32_t removed = h->n - w;
    st->peers -= removed;
    if (rl == SHOAL_PEER6_LEN)
        st->peers6 -= removed;
    st->seeders -= (h->n - h->nl) - (w - nl);
    h->n = w;
    h->nl = nl;
    h->base = nbase;
    if (removed)
        idx_rebuild(v, rl);
    return removed;
}

/* Resize the set whose header sits at blk + hoff and whose arrays start at blk + hdr to newcap
 * (>= n) records. Returns false, with the block untouched, if the budget or malloc refuses. */
static bool set_resize(repo_t *r, void **blkp, size_t hoff, size_t hdr, unsigned rl,
                       uint32_t newcap)
{
    uint8_t *blk = *blkp;
    struct pset *h = (struct pset *)(void *)(blk + hoff);
    const uint32_t oldcap = h->cap, n = h->n;
    const size_t olds = alloc_cost(hdr + data_size(oldcap, rl));
    const size_t news = alloc_cost(hdr + data_size(newcap, rl));
    if (news > olds && !mem_reserve(r, news - olds))
        return false;
    if (newcap < oldcap)
        memmove(blk + hdr + meta_off(newcap, rl), blk + hdr + meta_off(oldcap, rl), 2 * (size_t)n);
    uint8_t *nb = realloc(blk, hdr + data_size(newcap, rl));
    if (!nb) {
        if (newcap < oldcap)
            memmove(blk + hdr + meta_off(oldcap, rl), blk + hdr + meta_off(newcap, rl),
                    2 * (size_t)n);
        else
            mem_release(r, news - olds);
        return false;
    }
    h = (struct pset *)(void *)(nb + hoff);
    if (newcap > oldcap)
        memmove(nb + hdr + meta_off(newcap, rl), nb + hdr + meta_off(oldcap, rl), 2 * (size_t)n);
    h->cap = newcap;
    view_t v = view_make(r, h, nb + hdr, rl);
    idx_rebuild(&v, rl);
    if (news < olds)
        mem_release(r, olds - news);
    *blkp = nb;
    return true;
}

static bool v4_resize(repo_t *r, uint64_t *slotp, uint32_t newcap)
{
    void *blk = slot_swarm(*slotp);
    if (!set_resize(r, &blk, offsetof(struct swarm, v4), SWARM_HDR, SHOAL_PEER4_LEN, newcap))
        return false;
    *slotp = (*slotp & ~SLOT_PTR) | ptr_bits(blk);
    return true;
}

static bool v6_resize(repo_t *r, struct swarm *s, uint32_t newcap)
{
    void *blk = s->v6;
    if (!set_resize(r, &blk, 0, PSET6_HDR, SHOAL_PEER6_LEN, newcap))
        return false;
    s->v6 = blk;
    return true;
}

/* Give back room when a set is less than half full (grown sets are 1.25x, so a set must lose
 * a good share of its peers before it is copied again). */
static void v4_maybe_shrink(repo_t *r, uint64_t *slotp)
{
    const struct pset *h = &slot_swarm(*slotp)->v4;
    if (h->n >= h->cap / 2)
        return;
    uint32_t nc = fit_cap(h->n + h->n / 4, SHOAL_PEER4_LEN, SWARM_HDR);
    if (nc < h->cap)
        v4_resize(r, slotp, nc);
}

static void v6_maybe_shrink(repo_t *r, struct swarm *s)
{
    const struct pset *h = &s->v6->h;
    if (h->n >= h->cap / 2)
        return;
    uint32_t nc = fit_cap(h->n + h->n / 4, SHOAL_PEER6_LEN, PSET6_HDR);
    if (nc < h->cap)
        v6_resize(r, s, nc);
}

/* Give swarm s an empty IPv6 set with room for cap records; *v becomes its view. False if the
 * budget or malloc refuses. */
static bool v6_create(repo_t *r, struct swarm *s, view_t *v, uint32_t cap, uint32_t tick)
{
    const size_t sz = PSET6_HDR + data_size(cap, SHOAL_PEER6_LEN);
    if (!mem_reserve(r, alloc_cost(sz)))
        return false;
    struct pset6 *p = malloc(sz);
    if (!p) {
        mem_release(r, alloc_cost(sz));
        return false;
    }
    p->h = (struct pset){.n = 0, .nl = 0, .cap = cap, .base = tick - r->tticks};
    s->v6 = p;
    *v = view6(r, p);
    idx_rebuild(v, SHOAL_PEER6_LEN); /* an index starts empty (nothing for small sets) */
    return true;
}

/* Make room for one more peer of the family, creating the IPv6 set if needed; *v is refreshed.
 * False if a bound or memory forbids it. */
static inline __attribute__((always_inline)) bool set_room(repo_t *r, uint64_t *slotp, view_t *v,
                                                           bool have, uint32_t tick, unsigned rl)
{
    struct swarm *s = slot_swarm(*slotp);
    const uint32_t n = have ? v->h->n : 0;
    if (n >= r->lim.max_peers_per_swarm)
        return false;
    if (!have)
        return v6_create(r, s, v, fit_cap(1, rl, PSET6_HDR), tick);
    if (n < v->h->cap)
        return true;
    uint64_t want = (uint64_t)n + n / 4 + 1;
    if (want > r->lim.max_peers_per_swarm)
        want = r->lim.max_peers_per_swarm;
    if (rl == SHOAL_PEER6_LEN) {
        if (!v6_resize(r, s, fit_cap((uint32_t)want, rl, PSET6_HDR)))
            return false;
        *v = view6(r, s->v6);
    } else {
        if (!v4_resize(r, slotp, fit_cap((uint32_t)want, rl, SWARM_HDR)))
            return false;
        *v = view4(r, slot_swarm(*slotp));
    }
    return true;
}

/* ---- the swarm table ---------------------------------------------------------------------- */

static void swarm_stats(const struct swarm *s, swarm_stats_t *o)
{
    uint32_t n = s->v4.n, nl = s->v4.nl;
    if (s->v6) {
        n += s->v6->h.n;
        nl += s->v6->h.nl;
    }
    o->seeders = n - nl;
    o->leechers = nl;
    o->downloaded = s->downloaded;
}

/* The slot holding info_hash, or NULL with *slot set to the empty slot ending its probe. */
static struct swarm *table_find(const struct stripe *st, const uint8_t *ih, uint64_t h,
                                size_t *slot)
{
    if (!st->slots)
        return NULL;
    const uint64_t tag = slot_tag(h);
    for (size_t i = h & st->mask;; i = (i + 1) & st->mask) {
        uint64_t e = st->slots[i];
        if (!e) {
            *slot = i;
            return NULL;
        }
        if ((e & ~SLOT_PTR) == tag && memcmp(slot_swarm(e)->ih, ih, SHOAL_HASH_LEN) == 0) {
            *slot = i;
            return slot_swarm(e);
        }
    }
}

/* Rehash into newcap slots. Hashes are recomputed (SipHash, ~20 ns each): an amortised cost
 * of growth that saves 4-8 bytes per swarm. */
static bool table_resize(repo_t *r, struct stripe *st, size_t newcap)
{
    const size_t oldcap = st->slots ? st->mask + 1 : 0;
    const size_t olds = oldcap ? alloc_cost(oldcap * 8) : 0, news = alloc_cost(newcap * 8);
    if (news > olds && !mem_reserve(r, news - olds))
        return false;
    uint64_t *ns = calloc(newcap, sizeof(uint64_t));
    if (!ns) {
        if (news > olds)
            mem_release(r, news - olds);
        return false;
    }
    for (size_t i = 0; i < oldcap; i++) {
        uint64_t e = st->slots[i];
        if (!e)
            continue;
        size_t j = swarm_hash(r, slot_swarm(e)->ih) & (newcap - 1);
        while (ns[j])
            j = (j + 1) & (newcap - 1);
        ns[j] = e;
    }
    free(st->slots);
    st->slots = ns;
    st->mask = newcap - 1;
    if (news < olds)
        mem_release(r, olds - news);
    return true;
}

static void table_remove_at(const repo_t *r, struct stripe *st, size_t i)
{
    const size_t m = st->mask;
    for (size_t k = (i + 1) & m;; k = (k + 1) & m) {
        uint64_t e = st->slots[k];
        if (!e)
            break;
        size_t home = swarm_hash(r, slot_swarm(e)->ih) & m;
        if (((k - home) & m) >= ((k - i) & m)) {
            st->slots[i] = e;
            i = k;
        }
    }
    st->slots[i] = 0;
}

/* A new empty swarm with room for its first IPv4 peer; NULL if a bound forbids it. */
static inline __attribute__((always_inline)) struct swarm *
swarm_create(repo_t *r, struct stripe *st, const uint8_t *ih, uint64_t h, size_t *slot,
             uint32_t tick)
{
    if (atomic_fetch_add_explicit(&r->torrents, 1, memory_order_relaxed) >= r->lim.max_torrents) {
        atomic_fetch_sub_explicit(&r->torrents, 1, memory_order_relaxed);
        return NULL;
    }
    const size_t cap = st->slots ? st->mask + 1 : 0;
    if ((st->count + 1) * 4 > cap * 3) {
        if (!table_resize(r, st, cap ? cap * 2 : TABLE_MIN))
            goto refused;
        table_find(st, ih, h, slot);
    }
    const uint32_t pcap = fit_cap(1, SHOAL_PEER4_LEN, SWARM_HDR);
    const size_t sz = SWARM_HDR + data_size(pcap, SHOAL_PEER4_LEN);
    if (!mem_reserve(r, alloc_cost(sz)))
        goto refused;
    struct swarm *s = malloc(sz);
    if (!s) {
        mem_release(r, alloc_cost(sz));
        goto refused;
    }
    memcpy(s->ih, ih, SHOAL_HASH_LEN);
    s->downloaded = 0;
    s->v6 = NULL;
    s->v4 = (struct pset){.n = 0, .nl = 0, .cap = pcap, .base = tick - r->tticks};
    st->slots[*slot] = slot_tag(h) | ptr_bits(s);
    st->count++;
    return s;
refused:
    atomic_fetch_sub_explicit(&r->torrents, 1, memory_order_relaxed);
    return NULL;
}

static void swarm_free(repo_t *r, struct swarm *s)
{
    if (s->v6) {
        mem_release(r, alloc_cost(PSET6_HDR + data_size(s->v6->h.cap, SHOAL_PEER6_LEN)));
        free(s->v6);
    }
    mem_release(r, alloc_cost(SWARM_HDR + data_size(s->v4.cap, SHOAL_PEER4_LEN)));
    free(s);
}

/* After removals: free an emptied table, halve one at most a quarter full. */
static void table_fit(repo_t *r, struct stripe *st)
{
    const size_t old = st->mask + 1;
    size_t cap = old;
    while (cap > TABLE_MIN && st->count * 4 < cap)
        cap /= 2;
    if (st->count == 0) {
        mem_release(r, alloc_cost(old * 8));
        free(st->slots);
        st->slots = NULL;
        st->mask = 0;
    } else if (cap < old) {
        table_resize(r, st, cap);
    }
}

/* Remove the swarm in slot i (backward shift) and free it; the stripe's peer counters are the
 * caller's. */
static void swarm_remove_at(repo_t *r, struct stripe *st, size_t i)
{
    struct swarm *s = slot_swarm(st->slots[i]);
    table_remove_at(r, st, i);
    swarm_free(r, s);
    st->count--;
    atomic_fetch_sub_explicit(&r->torrents, 1, memory_order_relaxed);
}

/* ---- requests ----------------------------------------------------------------------------- */

static inline struct stripe *stripe_of(const repo_t *r, uint64_t h)
{
    return &r->stripes[r->bits ? h >> (64 - r->bits) : 0];
}

/* The announce once the swarm exists, for one family (rl constant after inlining, so record
 * compares and copies are fixed-size). */
/* The peer set of one address family of swarm s into *v; false if the swarm has none (IPv6 sets
 * are made on first use). A set not swept for hours is rebased first, before its offsets
 * overflow. */
static inline __attribute__((always_inline)) bool family_view(repo_t *r, struct stripe *st,
                                                              struct swarm *s, uint32_t tick,
                                                              view_t *v, const unsigned rl)
{
    if (rl == SHOAL_PEER6_LEN) {
        if (!s->v6)
            return false;
        *v = view6(r, s->v6);
    } else {
        *v = view4(r, s);
    }
    if (v->h->n && (int32_t)(tick - v->h->base) > (int32_t)META_OFF)
        set_sweep(r, st, v, tick, rl);
    return true;
}

static inline __attribute__((always_inline)) void
announce_in(repo_t *r, struct stripe *st, uint64_t *slotp, const announce_t *req,
            const uint8_t *key, uint64_t kh, uint32_t now, size_t numwant, uint8_t *out,
            repo_result_t *res, const unsigned rl)
{
    struct swarm *s = slot_swarm(*slotp);
    const uint32_t tick = tick_of(r, now);
    view_t v = {0};
    bool have = family_view(r, st, s, tick, &v, rl);
    uint32_t pos = have ? set_find(&v, key, kh, rl) : NONE;

    if (req->event == ANNOUNCE_STOPPED) {
        if (pos != NONE) {
            st->seeders -= pos >= v.h->nl;
            st->peers--;
            st->peers6 -= rl == SHOAL_PEER6_LEN; /* rl is a constant here: no branch */
            set_remove(&v, pos, rl);
            if (rl == SHOAL_PEER6_LEN)
                v6_maybe_shrink(r, s);
            else
                v4_maybe_shrink(r, slotp);
        }
        swarm_stats(slot_swarm(*slotp), &res->stats);
        return;
    }

    const bool seeder = req->left == 0;
    if (pos != NONE) {
        v.meta[pos] = (uint16_t)((v.meta[pos] & META_DONE) | time_off(tick, v.h->base));
        if (seeder != (pos >= v.h->nl)) {
            pos = set_flip(&v, pos, rl);
            st->seeders += seeder ? 1 : (uint64_t)-1;
        }
    } else if (set_room(r, slotp, &v, have, tick, rl)) {
        have = true;
        s = slot_swarm(*slotp);
        if (v.h->n == 0)
            v.h->base = tick - r->tticks;
        pos = set_add(&v, key, seeder, time_off(tick, v.h->base), rl);
        st->peers++;
        st->peers6 += rl == SHOAL_PEER6_LEN;
        st->seeders += seeder;
    }
    res->stored = pos != NONE;
    if (req->event == ANNOUNCE_COMPLETED && (pos == NONE || !(v.meta[pos] & META_DONE))) {
        if (s->downloaded != UINT32_MAX)
            s->downloaded++;
        if (pos != NONE)
            v.meta[pos] |= META_DONE;
    }
    if (have)
        res->n_peers = set_select(&v, seeder ? v.h->nl : v.h->n, pos, numwant, &st->rng, out, rl);
    swarm_stats(s, &res->stats);
}

repo_err_t repo_announce(repo_t *self, const announce_t *req, uint32_t now, size_t numwant,
                         uint8_t *peers_out, repo_result_t *res)
{
    const bool v6 = req->peer.family == 6;
    const unsigned rl = v6 ? SHOAL_PEER6_LEN : SHOAL_PEER4_LEN;
    uint8_t key[SHOAL_PEER6_LEN];
    memcpy(key, req->peer.addr, rl - 2);
    key[rl - 2] = (uint8_t)(req->peer.port >> 8);
    key[rl - 1] = (uint8_t)req->peer.port;
    /* Hash before locking: the critical section is only the table and the set. */
    const uint64_t h = swarm_hash(self, req->info_hash);
    const uint64_t kh = peer_hash(self, key, rl);
    const uint32_t part = partition_of(req->info_hash);
    struct stripe *st = stripe_of(self, h);
    memset(res, 0, sizeof(*res));

    repo_err_t err = REPO_OK;
    pthread_mutex_lock(&st->lock);
    size_t slot = 0; /* set by table_find whenever it is used */
    struct swarm *s = table_find(st, req->info_hash, h, &slot);
    if (!s && req->event != ANNOUNCE_STOPPED) {
        s = swarm_create(self, st, req->info_hash, h, &slot, tick_of(self, now));
        if (!s)
            err = REPO_ERR_FULL;
    }
    if (s) {
        if (v6)
            announce_in(self, st, &st->slots[slot], req, key, kh, now, numwant, peers_out, res,
                        SHOAL_PEER6_LEN);
        else
            announce_in(self, st, &st->slots[slot], req, key, kh, now, numwant, peers_out, res,
                        SHOAL_PEER4_LEN);
    }
    pthread_mutex_unlock(&st->lock);
    /* After the unlock, never before the change: see the file comment. */
    mark_dirty(self, part);
    return err;
}

void repo_scrape(repo_t *self, const uint8_t info_hash[SHOAL_HASH_LEN], swarm_stats_t *out)
{
    const uint64_t h = swarm_hash(self, info_hash);
    struct stripe *st = stripe_of(self, h);
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&st->lock);
    size_t slot = 0;
    const struct swarm *s = table_find(st, info_hash, h, &slot);
    if (s)
        swarm_stats(s, out);
    pthread_mutex_unlock(&st->lock);
}

/* Sweep one swarm's sets; frees an emptied IPv6 set and shrinks what got sparse. */
static size_t swarm_sweep(repo_t *r, struct stripe *st, uint64_t *slotp, uint32_t tick)
{
    struct swarm *s = slot_swarm(*slotp);
    size_t removed = 0;
    if (s->v6) {
        view_t v = view6(r, s->v6);
        removed += set_sweep(r, st, &v, tick, SHOAL_PEER6_LEN);
        if (s->v6->h.n == 0) {
            mem_release(r, alloc_cost(PSET6_HDR + data_size(s->v6->h.cap, SHOAL_PEER6_LEN)));
            free(s->v6);
            s->v6 = NULL;
        } else {
            v6_maybe_shrink(r, s);
        }
    }
    view_t v = view4(r, s);
    removed += set_sweep(r, st, &v, tick, SHOAL_PEER4_LEN);
    v4_maybe_shrink(r, slotp);
    return removed;
}

/* Visit every swarm of the (locked) stripe once; visit() says through *gone whether to remove the
 * swarm. The walk starts after an empty slot so no cluster straddles the start: backward shifts
 * then only move not-yet-visited swarms into the slot being looked at. Returns the sum of what
 * visit() returned. Inlined, so the visitor is too. */
typedef size_t (*visit_fn)(repo_t *r, struct stripe *st, uint64_t *slotp, bool *gone, void *ctx);

static inline __attribute__((always_inline)) size_t stripe_walk(repo_t *r, struct stripe *st,
                                                                visit_fn visit, void *ctx)
{
    if (!st->slots || !st->count)
        return 0;
    size_t total = 0;
    const size_t m = st->mask;
    size_t i = 0;
    while (st->slots[i])
        i++;
    i = (i + 1) & m;
    for (size_t steps = m + 1; steps;) {
        if (st->slots[i]) {
            bool gone = false;
            total += visit(r, st, &st->slots[i], &gone, ctx);
            if (gone) {
                swarm_remove_at(r, st, i);
                continue; /* a later swarm may have shifted into slot i */
            }
        }
        i = (i + 1) & m;
        steps--;
    }
    table_fit(r, st);
    return total;
}

/* Expiry: sweep the swarm's peers; remove it once empty. */
static size_t visit_expire(repo_t *r, struct stripe *st, uint64_t *slotp, bool *gone, void *ctx)
{
    size_t removed = swarm_sweep(r, st, slotp, *(const uint32_t *)ctx);
    const struct swarm *s = slot_swarm(*slotp);
    *gone = s->v4.n == 0 && !s->v6;
    return removed;
}

size_t repo_expire_stripe(repo_t *self, size_t stripe, uint32_t now)
{
    if (stripe >= self->nstripes)
        return 0;
    struct stripe *st = &self->stripes[stripe];
    uint32_t tick = tick_of(self, now);
    pthread_mutex_lock(&st->lock);
    size_t removed = stripe_walk(self, st, visit_expire, &tick);
    pthread_mutex_unlock(&st->lock);
    return removed;
}

size_t repo_expire(repo_t *self, uint32_t now)
{
    size_t removed = 0;
    for (size_t i = 0; i < self->nstripes; i++)
        removed += repo_expire_stripe(self, i, now);
    return removed;
}

size_t repo_stripes(const repo_t *self)
{
    return self->nstripes;
}

void repo_totals(repo_t *self, repo_totals_t *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < self->nstripes; i++) {
        struct stripe *st = &self->stripes[i];
        pthread_mutex_lock(&st->lock);
        out->torrents += st->count;
        out->peers += st->peers;
        out->peers6 += st->peers6;
        out->seeders += st->seeders;
        pthread_mutex_unlock(&st->lock);
    }
    out->peers4 = out->peers - out->peers6;
    out->leechers = out->peers - out->seeders;
    out->bytes = atomic_load_explicit(&self->bytes, memory_order_relaxed);
}

/* ---- snapshots ---------------------------------------------------------------------------- */

void repo_take_dirty(repo_t *self, uint64_t out[REPO_DIRTY_WORDS])
{
    /* Relaxed is enough: the caller locks each stripe after this to export it, and announces
     * mark after their unlock (file comment). */
    for (size_t i = 0; i < REPO_DIRTY_WORDS; i++)
        out[i] = atomic_exchange_explicit(&self->dirty[i], 0, memory_order_relaxed);
}

void repo_mark_dirty(repo_t *self, const uint64_t parts[REPO_DIRTY_WORDS])
{
    for (size_t i = 0; i < REPO_DIRTY_WORDS; i++)
        if (parts[i])
            atomic_fetch_or_explicit(&self->dirty[i], parts[i], memory_order_relaxed);
}

/* Seconds since a peer's last-seen tick `seen`, at tick `tick`, as a lower bound. With ticks of
 * 2^k s the peer announced anywhere in its tick and now is anywhere in its own, so d ticks apart
 * mean at least (d - 1) * 2^k + 1 s. The lower bound keeps, through a snapshot, the guarantee
 * that a peer never expires before its timeout; the price is that an imported peer may outlive
 * it by up to three ticks instead of two. (d * 2^k, the middle estimate, would be off by up to a
 * tick either way, so a reader could expire a peer early.) Exact for k = 0. */
static uint32_t peer_age(const repo_t *r, uint32_t tick, uint32_t seen)
{
    const int32_t d = (int32_t)(tick - seen);
    if (d <= 0)
        return 0;
    if (r->tshift == 0)
        return (uint32_t)d;
    const uint64_t a = ((uint64_t)(d - 1) << r->tshift) + 1;
    return a > UINT32_MAX ? UINT32_MAX : (uint32_t)a;
}

static bool export_set(const repo_t *r, snap_enc_t *enc, const view_t *v, uint32_t tick,
                       uint8_t family, unsigned rl)
{
    const struct pset *h = v->h;
    snap_peer_t p = {.family = family};
    for (uint32_t i = 0; i < h->n; i++) {
        const uint16_t m = v->meta[i];
        p.seeder = i >= h->nl;
        p.completed = (m & META_DONE) != 0;
        p.age_s = peer_age(r, tick, h->base + (m & META_OFF));
        p.compact = v->addr + (size_t)i * rl;
        if (snap_enc_peer(enc, &p) != SNAP_OK)
            return false;
    }
    return true;
}

long repo_export_stripe(repo_t *self, size_t stripe, uint32_t now, repo_pick_fn pick, void *arg)
{
    if (stripe >= self->nstripes)
        return 0;
    struct stripe *st = &self->stripes[stripe];
    const uint32_t tick = tick_of(self, now);
    long done = 0;
    bool failed = false;
    pthread_mutex_lock(&st->lock);
    for (size_t i = 0; st->slots && i <= st->mask; i++) {
        if (!st->slots[i])
            continue;
        struct swarm *s = slot_swarm(st->slots[i]);
        snap_enc_t *enc = pick(arg, partition_of(s->ih));
        if (!enc)
            continue;
        /* A failed encoder refuses everything from here on; the others carry on. */
        const uint32_t n6 = s->v6 ? s->v6->h.n : 0;
        if (snap_enc_swarm(enc, s->ih, s->downloaded, s->v4.n, n6) != SNAP_OK) {
            failed = true;
            continue;
        }
        view_t v = view4(self, s);
        bool ok = export_set(self, enc, &v, tick, 4, SHOAL_PEER4_LEN);
        if (ok && s->v6) {
            v = view6(self, s->v6);
            ok = export_set(self, enc, &v, tick, 6, SHOAL_PEER6_LEN);
        }
        if (ok)
            done++;
        else
            failed = true;
    }
    pthread_mutex_unlock(&st->lock);
    return failed ? -1 : done;
}

/* The tick a peer a seconds old at now was last seen in: floor((now - a) / 2^k), counted from
 * now's tick so it stays in the same modulo-2^32 tick arithmetic as everything else (now - a
 * may be "before zero" soon after boot). Exact, so an imported peer expires at the same sweep
 * as it would have had it announced here. */
static uint32_t seen_tick(const repo_t *r, uint32_t now, uint32_t a)
{
    const uint32_t tick = tick_of(r, now);
    const uint32_t rem = now & ((UINT32_C(1) << r->tshift) - 1);
    if (a <= rem)
        return tick;
    const uint64_t back = ((uint64_t)a - rem + (UINT64_C(1) << r->tshift) - 1) >> r->tshift;
    return tick - (uint32_t)back;
}

static inline bool snap_live(const repo_t *r, const snap_peer_t *p, uint32_t extra)
{
    return (uint64_t)p->age_s + extra < r->lim.peer_timeout_s;
}

/* Before the first peer is added to a set: room for `more` peers in one resize (or the IPv6
 * set created at that size), instead of a series of 1.25x steps that each rebuild the index.
 * Best effort: if the budget refuses, set_room() grows step by step and enforces the bounds. */
static void import_reserve(repo_t *r, uint64_t *slotp, view_t *v, bool *have, uint32_t more,
                           uint32_t tick, unsigned rl)
{
    const uint32_t n = *have ? v->h->n : 0;
    uint64_t want = (uint64_t)n + more;
    if (want > r->lim.max_peers_per_swarm)
        want = r->lim.max_peers_per_swarm;
    if (want <= n)
        return;
    if (rl == SHOAL_PEER6_LEN) {
        struct swarm *s = slot_swarm(*slotp);
        const uint32_t cap = fit_cap((uint32_t)want, rl, PSET6_HDR);
        if (!*have)
            *have = v6_create(r, s, v, cap, tick);
        else if (want > v->h->cap && v6_resize(r, s, cap))
            *v = view6(r, s->v6);
    } else if (want > v->h->cap && v4_resize(r, slotp, fit_cap((uint32_t)want, rl, SWARM_HDR))) {
        *v = view4(r, slot_swarm(*slotp));
    }
}

/* Merge the peers of one family of sw (live of them not expired) into the swarm at *slotp. */
static void import_set(repo_t *r, struct stripe *st, uint64_t *slotp, const snap_swarm_t *sw,
                       uint32_t live, uint32_t now, uint32_t extra, repo_import_stats_t *out,
                       const unsigned rl)
{
    const uint8_t family = rl == SHOAL_PEER6_LEN ? 6 : 4;
    const uint32_t tick = tick_of(r, now);
    struct swarm *s = slot_swarm(*slotp);
    view_t v = {0};
    bool have = family_view(r, st, s, tick, &v, rl);
    bool reserved = false;
    size_t off = 0;
    snap_peer_t p;
    while (snap_swarm_peer(sw, &off, &p)) {
        if (p.family != family || !snap_live(r, &p, extra))
            continue;
        live--; /* now the live peers after this one */
        if (have && set_find(&v, p.compact, peer_hash(r, p.compact, rl), rl) != NONE) {
            out->present++;
            continue;
        }
        if (!reserved) {
            reserved = true;
            import_reserve(r, slotp, &v, &have, live + 1, tick, rl);
        }
        if (!set_room(r, slotp, &v, have, tick, rl)) {
            out->refused++;
            continue;
        }
        have = true;
        if (v.h->n == 0)
            v.h->base = tick - r->tticks;
        /* The seen tick is after tick - tticks (age < timeout), so after a fresh base the
         * offset fits; it can precede an older base only if now is behind a now this set
         * already saw (another thread's clock), and then time_off() clamps it to the base:
         * the peer lives that much longer, never shorter. */
        const uint32_t seen = seen_tick(r, now, p.age_s + extra);
        const uint16_t meta = (uint16_t)((p.completed ? META_DONE : 0) | time_off(seen, v.h->base));
        set_add(&v, p.compact, p.seeder, meta, rl);
        st->peers++;
        st->peers6 += rl == SHOAL_PEER6_LEN;
        st->seeders += p.seeder;
        out->peers++;
    }
    if (!reserved || !have)
        return;
    /* The reservation counted peers that turned out to be present. */
    s = slot_swarm(*slotp);
    if (rl == SHOAL_PEER6_LEN)
        v6_maybe_shrink(r, s);
    else
        v4_maybe_shrink(r, slotp);
}

void repo_import_swarm(repo_t *self, const snap_swarm_t *sw, uint32_t now, uint32_t extra_age_s,
                       repo_merge_t merge, repo_import_stats_t *st_out)
{
    /* Classify before locking: the snapshot is the caller's memory. */
    uint32_t live4 = 0, live6 = 0;
    size_t off = 0;
    snap_peer_t p;
    while (snap_swarm_peer(sw, &off, &p)) {
        if (!snap_live(self, &p, extra_age_s))
            st_out->expired++;
        else if (p.family == 6)
            live6++;
        else
            live4++;
    }
    const uint8_t *ih = sw->info_hash;
    const uint64_t live = (uint64_t)live4 + live6;
    const uint32_t part = partition_of(ih);
    const uint64_t h = swarm_hash(self, ih);
    struct stripe *st = stripe_of(self, h);

    pthread_mutex_lock(&st->lock);
    size_t slot = 0;
    struct swarm *s = table_find(st, ih, h, &slot);
    const bool created = !s && (live || sw->downloaded);
    if (created) {
        s = swarm_create(self, st, ih, h, &slot, tick_of(self, now));
        if (!s)
            st_out->refused += live ? live : 1; /* a downloaded count alone counts as one */
    }
    if (s) {
        if (live4)
            import_set(self, st, &st->slots[slot], sw, live4, now, extra_age_s, st_out,
                       SHOAL_PEER4_LEN);
        if (live6)
            import_set(self, st, &st->slots[slot], sw, live6, now, extra_age_s, st_out,
                       SHOAL_PEER6_LEN);
        s = slot_swarm(st->slots[slot]);
        if (created && !sw->downloaded && s->v4.n == 0 && !s->v6) {
            swarm_remove_at(self, st, slot); /* every peer refused: leave no empty swarm */
            table_fit(self, st);
        } else {
            const uint64_t d =
                merge == REPO_MERGE_MAX
                    ? (s->downloaded > sw->downloaded ? s->downloaded : sw->downloaded)
                    : (uint64_t)s->downloaded + sw->downloaded;
            s->downloaded = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
            st_out->swarms += created;
        }
    }
    pthread_mutex_unlock(&st->lock);
    mark_dirty(self, part);
}

typedef struct {
    repo_part_fn drop;
    void *arg;
} drop_ctx_t;

/* Dropping: remove the swarm, with its peers, if its partition is to go. */
static size_t visit_drop(repo_t *r, struct stripe *st, uint64_t *slotp, bool *gone, void *ctx)
{
    (void)r;
    const drop_ctx_t *d = ctx;
    const struct swarm *s = slot_swarm(*slotp);
    if (!d->drop(d->arg, partition_of(s->ih)))
        return 0;
    uint32_t n = s->v4.n, nl = s->v4.nl;
    if (s->v6) {
        n += s->v6->h.n;
        nl += s->v6->h.nl;
        st->peers6 -= s->v6->h.n;
    }
    st->peers -= n;
    st->seeders -= n - nl;
    *gone = true;
    return n;
}

size_t repo_drop_stripe(repo_t *self, size_t stripe, repo_part_fn drop, void *arg)
{
    if (stripe >= self->nstripes)
        return 0;
    struct stripe *st = &self->stripes[stripe];
    drop_ctx_t d = {.drop = drop, .arg = arg};
    pthread_mutex_lock(&st->lock);
    size_t removed = stripe_walk(self, st, visit_drop, &d);
    pthread_mutex_unlock(&st->lock);
    return removed;
}

/* ---- admin lookups ------------------------------------------------------------------------ */

/* Up to k peers of one family's set from position `from`, as lookup records; returns how many. */
static size_t lookup_set(const repo_t *r, const view_t *v, uint32_t tick, uint32_t from, size_t k,
                         cmsg_lookup_peer_t *out, const unsigned rl)
{
    const struct pset *h = v->h;
    if (from >= h->n)
        return 0;
    if (k > h->n - from)
        k = h->n - from;
    for (size_t j = 0; j < k; j++) {
        const uint32_t i = from + (uint32_t)j;
        const uint8_t *rec = v->addr + (size_t)i * rl;
        cmsg_lookup_peer_t *p = &out[j];
        memset(p, 0, sizeof(*p));
        p->family = rl == SHOAL_PEER6_LEN ? 6 : 4;
        p->seeder = i >= h->nl;
        memcpy(p->addr, rec, rl - 2);
        p->port = (uint16_t)(rec[rl - 2] << 8 | rec[rl - 1]);
        p->age_s = peer_age(r, tick, h->base + (v->meta[i] & META_OFF));
    }
    return k;
}

bool repo_lookup(repo_t *self, const uint8_t info_hash[SHOAL_HASH_LEN], uint32_t now,
                 uint32_t offset, uint32_t max_peers, cmsg_lookup_result_t *out)
{
    const uint64_t h = swarm_hash(self, info_hash);
    struct stripe *st = stripe_of(self, h);
    const uint32_t tick = tick_of(self, now);
    const size_t want = max_peers < REPO_LOOKUP_MAX ? max_peers : REPO_LOOKUP_MAX;
    memset(out, 0, offsetof(cmsg_lookup_result_t, peers));
    pthread_mutex_lock(&st->lock);
    size_t slot = 0;
    struct swarm *s = table_find(st, info_hash, h, &slot);
    if (s) {
        out->found = true;
        swarm_stats(s, &out->stats);
        out->total = out->stats.seeders + out->stats.leechers;
        out->offset = offset;
        /* Read only: no rebase (family_view's), offsets stay valid against an old base. */
        const view_t v4 = view4(self, s);
        const uint32_t n4 = s->v4.n;
        size_t n = lookup_set(self, &v4, tick, offset, want, out->peers, SHOAL_PEER4_LEN);
        if (s->v6 && n < want) { /* the IPv4 part is used up: the page goes on into IPv6 */
            const view_t v6 = view6(self, s->v6);
            n += lookup_set(self, &v6, tick, offset > n4 ? offset - n4 : 0, want - n,
                            out->peers + n, SHOAL_PEER6_LEN);
        }
        out->n_peers = n;
    }
    pthread_mutex_unlock(&st->lock);
    return out->found;
}

/* ---- life cycle --------------------------------------------------------------------------- */

repo_t *repo_new(unsigned stripe_bits, const repo_limits_t *limits)
{
    if (stripe_bits > 16 || sodium_init() < 0)
        return NULL;
    repo_t *r = aligned_alloc(alignof(repo_t), (sizeof(repo_t) + 63) & ~(size_t)63);
    if (!r)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->lim = limits ? *limits : repo_default_limits;
    r->bits = stripe_bits;
    r->nstripes = (size_t)1 << stripe_bits;
    /* Smallest tick with the timeout within TICKS_MAX ticks. With coarse ticks a peer expires
     * between peer_timeout_s and that plus two ticks, never before. */
    for (unsigned s = 0;; s++) {
        uint64_t t = r->lim.peer_timeout_s;
        uint64_t ticks = s == 0 ? t : ((t + (UINT64_C(1) << s) - 1) >> s) + 1;
        if (ticks <= TICKS_MAX) {
            r->tshift = s;
            r->tticks = (uint32_t)ticks;
            break;
        }
    }
    crypto_shorthash_keygen(r->sipkey);
    randombytes_buf(r->pkey, sizeof(r->pkey));
    atomic_init(&r->bytes, 0);
    atomic_init(&r->torrents, 0);
    for (size_t i = 0; i < REPO_DIRTY_WORDS; i++)
        atomic_init(&r->dirty[i], 0);
    r->stripes = aligned_alloc(alignof(struct stripe), r->nstripes * sizeof(struct stripe));
    if (!r->stripes) {
        free(r);
        return NULL;
    }
    memset(r->stripes, 0, r->nstripes * sizeof(struct stripe));
    for (size_t i = 0; i < r->nstripes; i++) {
        pthread_mutex_init(&r->stripes[i].lock, NULL);
        randombytes_buf(&r->stripes[i].rng, sizeof(r->stripes[i].rng));
    }
    return r;
}

void repo_destroy(repo_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    repo_t *r = *self_p;
    for (size_t i = 0; i < r->nstripes; i++) {
        struct stripe *st = &r->stripes[i];
        for (size_t j = 0; st->slots && j <= st->mask; j++)
            if (st->slots[j])
                swarm_free(r, slot_swarm(st->slots[j]));
        free(st->slots);
        pthread_mutex_destroy(&st->lock);
    }
    free(r->stripes);
    free(r);
    *self_p = NULL;
}
