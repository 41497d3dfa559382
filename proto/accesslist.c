/* SPDX-License-Identifier: MIT */
/* accesslist: immutable info-hash sets and their builder (contract in accesslist.h).
 *
 * Layout: keys[0..n) holds the distinct hashes densely, in the order first added; slots[] (a
 * power of two, at least twice n, so at most half full) holds 0 for empty or
 * (tag << 24) | (index + 1), tag being the top 8 bits of the slot hash. A lookup reads one slot
 * line and, only when a tag matches (1 in 256 for a stranger), the hash it names.
 *
 * Invariant: every set has an empty slot (load <= 0.5), so every probe sequence ends; the set is
 * never written after aset_build() returns it. */
#include "accesslist.h"

#include "hex.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_SLOTS  16u
#define INDEX_BITS 24
#define INDEX_MASK ((1u << INDEX_BITS) - 1)

struct aset_builder {
    uint8_t (*keys)[ASET_HASH_LEN];
    size_t n, cap;
};

struct aset {
    uint32_t *slots;
    size_t mask; /* slots - 1 */
    size_t n;
    uint8_t (*keys)[ASET_HASH_LEN];
    uint64_t k[4]; /* slot-hash key, from the seed */
};

/* ---- the keyed slot hash -------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* The 128-bit product folded to 64 bits: one multiply mixes every bit of both operands. */
static inline uint64_t mum(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static inline uint64_t slot_hash(const uint64_t k[4], const uint8_t h[ASET_HASH_LEN])
{
    uint32_t tail;
    memcpy(&tail, h + 16, sizeof(tail));
    uint64_t x = mum(load64(h) ^ k[0], load64(h + 8) ^ k[1]);
    return mum(x ^ k[2], (uint64_t)tail ^ k[3]);
}

/* ---- the builder ---------------------------------------------------------------------------- */

aset_builder_t *aset_builder_new(void)
{
    return calloc(1, sizeof(aset_builder_t));
}

void aset_builder_destroy(aset_builder_t **b_p)
{
    if (!b_p || !*b_p)
        return;
    free((*b_p)->keys);
    free(*b_p);
    *b_p = NULL;
}

/* Room for at least want hashes (want <= ASET_MAX). Returns 0 or -1 (out of memory). */
static int reserve(aset_builder_t *b, size_t want)
{
    if (want <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < want)
        cap *= 2;
    if (cap > ASET_MAX)
        cap = ASET_MAX;
    void *keys = realloc(b->keys, cap * ASET_HASH_LEN);
    if (!keys)
        return -1;
    b->keys = keys;
    b->cap = cap;
    return 0;
}

int aset_builder_add(aset_builder_t *b, const uint8_t h[ASET_HASH_LEN])
{
    if (b->n >= ASET_MAX || reserve(b, b->n + 1) != 0)
        return -1;
    memcpy(b->keys[b->n++], h, ASET_HASH_LEN);
    return 0;
}

size_t aset_builder_count(const aset_builder_t *b)
{
    return b->n;
}

static inline bool is_hex(char c)
{
    return hex_digit(c) >= 0;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* One line without its LF: 0 and *got = whether it held a hash (in out), or -1 with a reason. */
static int parse_line(const char *p, size_t len, uint8_t out[ASET_HASH_LEN], bool *got,
                      const char **why)
{
    size_t i = 0;
    while (i < len && is_space(p[i]))
        i++;
    *got = false;
    if (i == len || p[i] == '#')
        return 0;
    size_t start = i;
    /* The usual line: 40 digits, decoded with one check for all of them. */
    bool bad = len - start < 2 * ASET_HASH_LEN || hex_decode(p + start, ASET_HASH_LEN, out) != 0;
    if (bad || (len - start > 2 * ASET_HASH_LEN && is_hex(p[start + 2 * ASET_HASH_LEN]))) {
        while (i < len && is_hex(p[i]))
            i++;
        *why = i == start ? "expected an info-hash (40 hex digits), a # comment or a blank line"
                          : "an info-hash has exactly 40 hex digits";
        return -1;
    }
    i = start + 2 * ASET_HASH_LEN;
    while (i < len && is_space(p[i]))
        i++;
    if (i < len && p[i] != '#') {
        *why = "unexpected text after the info-hash (only a # comment may follow)";
        return -1;
    }
    *got = true;
    return 0;
}

int aset_builder_parse(aset_builder_t *b, const char *text, size_t len, char *err, size_t errlen)
{
    size_t n0 = b->n;
    /* A hash line takes 41 bytes with its LF: reserve once instead of doubling through 1 M. */
    size_t guess = len / (2 * ASET_HASH_LEN + 1) + 1;
    if (guess > ASET_MAX - b->n)
        guess = ASET_MAX - b->n;
    if (reserve(b, b->n + guess) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t line = 0;
    const char *p = text, *end = text + len;
    while (p < end) {
        line++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        uint8_t h[ASET_HASH_LEN];
        bool got;
        const char *why = NULL;
        if (parse_line(p, n, h, &got, &why) != 0) {
            snprintf(err, errlen, "line %zu: %s", line, why);
            b->n = n0;
            return -1;
        }
        if (got && aset_builder_add(b, h) != 0) {
            if (b->n >= ASET_MAX)
                snprintf(err, errlen, "line %zu: more than %u info-hashes", line, ASET_MAX);
            else
                snprintf(err, errlen, "out of memory");
            b->n = n0;
            return -1;
        }
        p += n + (nl ? 1 : 0);
    }
    return 0;
}

/* ---- the set -------------------------------------------------------------------------------- */

/* Where h is (its index in keys), or -1. */
static inline long find(const aset_t *s, const uint8_t h[ASET_HASH_LEN])
{
    uint64_t x = slot_hash(s->k, h);
    uint32_t tag = (uint32_t)(x >> 56);
    /* Bounded: the table is at most half full, so an empty slot ends the probe. */
    for (size_t i = x & s->mask;; i = (i + 1) & s->mask) {
        uint32_t v = s->slots[i];
        if (v == 0)
            return -1;
        if (v >> INDEX_BITS == tag && memcmp(s->keys[(v & INDEX_MASK) - 1], h, ASET_HASH_LEN) == 0)
            return (long)(v & INDEX_MASK) - 1;
    }
}

aset_t *aset_build(aset_builder_t **b_p, uint64_t seed)
{
    aset_builder_t *b = *b_p;
    *b_p = NULL;
    if (!b)
        return NULL;
    aset_t *s = calloc(1, sizeof(*s));
    size_t slots = MIN_SLOTS;
    while (slots < 2 * b->n)
        slots *= 2;
    if (s)
        s->slots = calloc(slots, sizeof(*s->slots));
    if (!s || !s->slots) {
        free(s);
        aset_builder_destroy(&b);
        return NULL;
    }
    s->mask = slots - 1;
    for (int i = 0; i < 4; i++)
        s->k[i] = splitmix64(&seed);
    /* The set takes the builder's array; repeats are squeezed out in place (out <= i). */
    s->keys = b->keys;
    size_t out = 0;
    for (size_t i = 0; i < b->n; i++) {
        uint64_t x = slot_hash(s->k, b->keys[i]);
        uint32_t tag = (uint32_t)(x >> 56);
        size_t j = x & s->mask;
        bool dup = false;
        for (;; j = (j + 1) & s->mask) {
            uint32_t v = s->slots[j];
            if (v == 0)
                break;
            if (v >> INDEX_BITS == tag &&
                memcmp(s->keys[(v & INDEX_MASK) - 1], b->keys[i], ASET_HASH_LEN) == 0) {
                dup = true;
                break;
            }
        }
        if (dup)
            continue;
        if (out != i)
            memcpy(s->keys[out], b->keys[i], ASET_HASH_LEN);
        s->slots[j] = tag << INDEX_BITS | (uint32_t)(out + 1);
        out++;
    }
    s->n = out;
    if (out < b->cap && out > 0) {
        void *keys = realloc(s->keys, out * ASET_HASH_LEN); /* give back what repeats took */
        if (keys)
            s->keys = keys;
    }
    free(b);
    return s;
}

aset_t *aset_with(const aset_t *s, const uint8_t h[ASET_HASH_LEN], bool present, uint64_t seed)
{
    size_t n = s ? s->n : 0;
    long at = s ? find(s, h) : -1;
    if (present && at < 0 && n >= ASET_MAX)
        return NULL;
    aset_builder_t *b = aset_builder_new();
    if (!b || reserve(b, n + (present && at < 0)) != 0) {
        aset_builder_destroy(&b);
        return NULL;
    }
    if (n > 0)
        memcpy(b->keys, s->keys, n * ASET_HASH_LEN);
    b->n = n;
    if (!present && at >= 0) {
        memmove(b->keys[at], b->keys[at + 1], (n - (size_t)at - 1) * ASET_HASH_LEN);
        b->n--;
    } else if (present && at < 0) {
        memcpy(b->keys[b->n++], h, ASET_HASH_LEN);
    }
    return aset_build(&b, seed);
}

bool aset_contains(const aset_t *s, const uint8_t h[ASET_HASH_LEN])
{
    return find(s, h) >= 0;
}

size_t aset_count(const aset_t *s)
{
    return s->n;
}

int aset_get(const aset_t *s, size_t i, uint8_t out[ASET_HASH_LEN])
{
    if (i >= s->n)
        return -1;
    memcpy(out, s->keys[i], ASET_HASH_LEN);
    return 0;
}

size_t aset_memory(const aset_t *s)
{
    return sizeof(*s) + (s->mask + 1) * sizeof(*s->slots) + s->n * ASET_HASH_LEN;
}

void aset_free(aset_t **s_p)
{
    if (!s_p || !*s_p)
        return;
    free((*s_p)->slots);
    free((*s_p)->keys);
    free(*s_p);
    *s_p = NULL;
}
