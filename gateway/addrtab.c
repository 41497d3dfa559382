/* SPDX-License-Identifier: MIT */
/* addrtab: fixed tables of atomic slots keyed by client address (addrtab.h).
 *
 * The slots are an anonymous mapping: page-aligned (so every group of 4 lies in one cache line)
 * and zero-filled by the kernel on first touch, so a table costs resident memory only for the
 * pages its addresses have used (at most slots * 8 bytes). All-zero bits are a valid empty
 * lock-free 64-bit atomic (checked below), so nothing writes the table at start. */
#include "addrtab.h"

#include <sodium.h>
#include <string.h>
#include <sys/mman.h>

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "64-bit atomics are lock-free, zero bits are 0");

static size_t table_bytes(const addrtab_t *t)
{
    return (size_t)addrtab_slots(t) * sizeof(*t->slots);
}

int addrtab_init(addrtab_t *t, uint32_t slots)
{
    memset(t, 0, sizeof(*t));
    uint32_t n = ADDRTAB_MIN_SLOTS;
    while (n < slots && n < ADDRTAB_MAX_SLOTS)
        n <<= 1;
    void *p = mmap(NULL, (size_t)n * sizeof(*t->slots), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
    t->slots = p;
    t->mask = (n - 1) & ~(uint32_t)(ADDRTAB_PROBES - 1);
    randombytes_buf(&t->seed, sizeof(t->seed));
    return 0;
}

void addrtab_free(addrtab_t *t)
{
    if (t->slots)
        munmap((void *)t->slots, table_bytes(t));
    t->slots = NULL;
    t->mask = 0;
}

uint32_t addrtab_slots(const addrtab_t *t)
{
    return t->slots ? (t->mask | (ADDRTAB_PROBES - 1)) + 1 : 0;
}
