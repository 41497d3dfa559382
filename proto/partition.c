/* SPDX-License-Identifier: MIT */
/* partition: the partition function and the partition -> member table (see partition.h for the
 * procedure and its measured properties).
 *
 * Invariant: a built table is never written again; members[] is sorted by id with no
 * duplicates, load[i] is the number of p with owner[p] == i, and load[i] <= the cap. */
#include "partition.h"

#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(PARTITION_COUNT == 1u << PARTITION_BITS, "PARTITION_COUNT is 2^PARTITION_BITS");
_Static_assert(PARTITION_MEMBERS_MAX <= UINT16_MAX, "owner indices are uint16_t");
_Static_assert(sizeof(PARTITION_HASH_KEY) - 1 == crypto_shorthash_siphashx24_KEYBYTES, "16 bytes");
_Static_assert(crypto_shorthash_siphashx24_BYTES == crypto_shorthash_KEYBYTES, "derived keys");

struct partition_table {
    uint64_t epoch;
    size_t n;
    uint16_t owner[PARTITION_COUNT];
    uint32_t load[PARTITION_MEMBERS_MAX];
    partition_member_t members[]; /* n, sorted by id */
};

static int member_cmp(const void *a, const void *b)
{
    const partition_member_t *x = a, *y = b;
    return strcmp(x->id, y->id);
}

static partition_err_t check_member(const partition_member_t *m)
{
    if (!memchr(m->id, '\0', sizeof(m->id)))
        return PARTITION_ERR_ID_LONG;
    if (m->id[0] == '\0')
        return PARTITION_ERR_ID_EMPTY;
    if (!memchr(m->endpoint, '\0', sizeof(m->endpoint)))
        return PARTITION_ERR_ENDPOINT_LONG;
    return PARTITION_OK;
}

/* Copy up to the NUL and zero the rest, so two equal members are equal byte for byte. */
static void copy_member(partition_member_t *dst, const partition_member_t *src)
{
    memset(dst, 0, sizeof(*dst));
    memcpy(dst->id, src->id, strlen(src->id));
    memcpy(dst->endpoint, src->endpoint, strlen(src->endpoint));
}

static size_t load_cap(size_t n)
{
    size_t cap = (size_t)PARTITION_CAP_PERCENT * PARTITION_COUNT / (100 * n);
    size_t even = (PARTITION_COUNT + n - 1) / n;
    return cap > even ? cap : even;
}

/* score(m, p) = SipHash-2-4(key_m, p as 4 little-endian bytes), read little-endian. */
static uint64_t score(const uint8_t key[crypto_shorthash_KEYBYTES], uint32_t p)
{
    uint8_t msg[4] = {(uint8_t)p, (uint8_t)(p >> 8), (uint8_t)(p >> 16), (uint8_t)(p >> 24)};
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, msg, sizeof(msg), key);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | out[i];
    return v;
}

/* Rendezvous with bounded loads, partitions in increasing order (see partition.h). Each
 * member's key is derived once, so a score hashes 4 bytes whatever the id's length. Returns 0,
 * or -1 if memory runs out. */
static int assign(partition_table_t *t)
{
    typedef uint8_t member_key_t[crypto_shorthash_siphashx24_BYTES];
    member_key_t *keys = malloc(t->n * sizeof(*keys));
    if (!keys)
        return -1;
    for (size_t m = 0; m < t->n; m++)
        crypto_shorthash_siphashx24(keys[m], (const unsigned char *)t->members[m].id,
                                    strlen(t->members[m].id),
                                    (const unsigned char *)PARTITION_HASH_KEY);
    size_t cap = load_cap(t->n);
    for (uint32_t p = 0; p < PARTITION_COUNT; p++) {
        size_t best = SIZE_MAX;
        uint64_t best_score = 0;
        for (size_t m = 0; m < t->n; m++) {
            if (t->load[m] >= cap)
                continue; /* a full member costs no hash */
            uint64_t s = score(keys[m], p);
            if (best == SIZE_MAX || s > best_score) { /* a tie goes to the member sorting first */
                best = m;
                best_score = s;
            }
        }
        /* cap * n >= P, so some member always has room. */
        assert(best != SIZE_MAX);
        t->owner[p] = (uint16_t)best;
        t->load[best]++;
    }
    free(keys);
    return 0;
}

partition_table_t *partition_table_new(const partition_member_t *members, size_t n, uint64_t epoch,
                                       partition_err_t *err)
{
    partition_err_t e = PARTITION_OK;
    partition_table_t *t = NULL;
    if (n == 0) {
        e = PARTITION_ERR_NO_MEMBERS;
        goto out;
    }
    if (n > PARTITION_MEMBERS_MAX) {
        e = PARTITION_ERR_TOO_MANY;
        goto out;
    }
    for (size_t i = 0; i < n && e == PARTITION_OK; i++)
        e = check_member(&members[i]);
    if (e != PARTITION_OK)
        goto out;
    if (sodium_init() < 0) {
        e = PARTITION_ERR_NOMEM;
        goto out;
    }
    t = calloc(1, sizeof(*t) + n * sizeof(t->members[0]));
    if (!t) {
        e = PARTITION_ERR_NOMEM;
        goto out;
    }
    t->epoch = epoch;
    t->n = n;
    for (size_t i = 0; i < n; i++)
        copy_member(&t->members[i], &members[i]);
    qsort(t->members, n, sizeof(t->members[0]), member_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(t->members[i - 1].id, t->members[i].id) == 0) {
            e = PARTITION_ERR_DUPLICATE;
            free(t);
            t = NULL;
            goto out;
        }
    }
    if (assign(t) < 0) {
        e = PARTITION_ERR_NOMEM;
        partition_table_destroy(&t);
    }
out:
    if (err)
        *err = e;
    return t;
}

void partition_table_destroy(partition_table_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free(*self_p);
    *self_p = NULL;
}

uint16_t partition_owner(const partition_table_t *self, uint32_t p)
{
    assert(p < PARTITION_COUNT);
    return self->owner[p];
}

size_t partition_table_count(const partition_table_t *self)
{
    return self->n;
}

const partition_member_t *partition_table_member(const partition_table_t *self, size_t i)
{
    assert(i < self->n);
    return &self->members[i];
}

int partition_table_find(const partition_table_t *self, const char *id)
{
    partition_member_t key;
    size_t len = strnlen(id, sizeof(key.id));
    if (len == sizeof(key.id))
        return -1;
    memcpy(key.id, id, len + 1);
    const partition_member_t *m =
        bsearch(&key, self->members, self->n, sizeof(self->members[0]), member_cmp);
    return m ? (int)(m - self->members) : -1;
}

uint32_t partition_table_load(const partition_table_t *self, size_t i)
{
    assert(i < self->n);
    return self->load[i];
}

uint64_t partition_table_epoch(const partition_table_t *self)
{
    return self->epoch;
}

bool partition_table_same_members(const partition_table_t *a, const partition_table_t *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->members[i].id, b->members[i].id) != 0 ||
            strcmp(a->members[i].endpoint, b->members[i].endpoint) != 0)
            return false;
    }
    return true;
}

size_t partition_diff(const partition_table_t *old, const partition_table_t *next)
{
    if (!old || !next)
        return old == next ? 0 : PARTITION_COUNT;
    /* Map each old member to its index in next (-1 if it left), then compare indices: O(n log n
     * + P) instead of P string comparisons. */
    int map[PARTITION_MEMBERS_MAX];
    for (size_t i = 0; i < old->n; i++)
        map[i] = partition_table_find(next, old->members[i].id);
    size_t moved = 0;
    for (uint32_t p = 0; p < PARTITION_COUNT; p++)
        moved += map[old->owner[p]] != (int)next->owner[p];
    return moved;
}

const char *partition_strerror(partition_err_t err)
{
    switch (err) {
    case PARTITION_OK:
        return "ok";
    case PARTITION_ERR_NO_MEMBERS:
        return "no members";
    case PARTITION_ERR_TOO_MANY:
        return "too many members";
    case PARTITION_ERR_ID_EMPTY:
        return "empty member id";
    case PARTITION_ERR_ID_LONG:
        return "member id too long";
    case PARTITION_ERR_ENDPOINT_LONG:
        return "member endpoint too long";
    case PARTITION_ERR_DUPLICATE:
        return "duplicate member id";
    case PARTITION_ERR_NOMEM:
        return "out of memory";
    }
    return "unknown error";
}
