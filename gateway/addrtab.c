/* SPDX-License-Identifier: MIT */
/* addrtab: fixed tables of atomic slots keyed by client address (addrtab.h). */
#include "addrtab.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int addrtab_init(addrtab_t *t, uint32_t slots)
{
    memset(t, 0, sizeof(*t));
    uint32_t n = ADDRTAB_MIN_SLOTS;
    while (n < slots && n < ADDRTAB_MAX_SLOTS)
        n <<= 1;
    t->slots = aligned_alloc(64, (size_t)n * sizeof(*t->slots));
    if (!t->slots)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        atomic_init(&t->slots[i], 0);
    t->mask = (n - 1) & ~(uint32_t)(ADDRTAB_PROBES - 1);
    randombytes_buf(&t->seed, sizeof(t->seed));
    return 0;
}

void addrtab_free(addrtab_t *t)
{
    free(t->slots);
    t->slots = NULL;
    t->mask = 0;
}

uint32_t addrtab_slots(const addrtab_t *t)
{
    return t->slots ? (t->mask | (ADDRTAB_PROBES - 1)) + 1 : 0;
}
