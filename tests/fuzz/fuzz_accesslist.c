/* SPDX-License-Identifier: MIT */
/* fuzz_accesslist: aset_builder_parse() over arbitrary list text, then the set built from it.
 * Beyond "no crash": a refused text names its line and leaves the builder as it was; an accepted
 * one builds a set whose every listed hash is found, each exactly once (no more entries than
 * hashes added), and removing one with aset_with() leaves exactly the others. */
#include "accesslist.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            abort();                                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aset_builder_t *b = aset_builder_new();
    CHECK(b);
    static const uint8_t first[ASET_HASH_LEN] = {1, 2, 3};
    CHECK(aset_builder_add(b, first) == 0);
    char err[160] = "";
    if (aset_builder_parse(b, (const char *)data, size, err, sizeof(err)) != 0) {
        CHECK(strncmp(err, "line ", 5) == 0 || strcmp(err, "out of memory") == 0);
        CHECK(aset_builder_count(b) == 1);
        aset_builder_destroy(&b);
        return 0;
    }
    size_t added = aset_builder_count(b);
    uint64_t seed = 0;
    memcpy(&seed, data, size < sizeof(seed) ? size : sizeof(seed));
    aset_t *s = aset_build(&b, seed);
    CHECK(s && !b);
    size_t n = aset_count(s);
    CHECK(n >= 1 && n <= added);
    uint8_t h[ASET_HASH_LEN], g[ASET_HASH_LEN];
    for (size_t i = 0; i < n; i++) {
        CHECK(aset_get(s, i, h) == 0);
        CHECK(aset_contains(s, h));
        for (size_t j = 0; j < i && n <= 64; j++) { /* distinct (quadratic: small sets only) */
            CHECK(aset_get(s, j, g) == 0);
            CHECK(memcmp(g, h, ASET_HASH_LEN) != 0);
        }
    }
    CHECK(aset_get(s, n, h) == -1);
    CHECK(aset_get(s, 0, h) == 0 && memcmp(h, first, ASET_HASH_LEN) == 0);
    aset_t *less = aset_with(s, first, false, seed + 1);
    CHECK(less && aset_count(less) == n - 1 && !aset_contains(less, first));
    for (size_t i = 1; i < n; i++) {
        CHECK(aset_get(s, i, h) == 0);
        CHECK(aset_contains(less, h));
    }
    aset_free(&less);
    aset_free(&s);
    return 0;
}
