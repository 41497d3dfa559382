/* SPDX-License-Identifier: MIT */
/* fuzz_proxyv2: proxyv2_parse() over arbitrary bytes. Beyond "no crash": an accepted header lies
 * inside the input and the cap; a PROXY (not local) header has a family-4 or -6 source; feeding
 * the same bytes one prefix at a time (as TCP reads may split them) gives NEED_MORE on every
 * shorter prefix that a longer one accepts, and the same result once the whole header is there;
 * and a smaller cap never accepts what a larger one refuses. */
#include "proxyv2.h"

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
    /* The first byte picks a cap, so callers' smaller buffers are covered too. */
    if (size == 0)
        return 0;
    size_t cap = 16 + (size_t)data[0] * 2;
    data++;
    size--;
    proxyv2_t h;
    proxyv2_err_t err = proxyv2_parse(data, size, PROXYV2_MAX_LEN, &h);
    if (err == PROXYV2_OK) {
        CHECK(h.header_len >= PROXYV2_HEAD_LEN && h.header_len <= size);
        CHECK(h.header_len <= PROXYV2_MAX_LEN);
        CHECK(proxyv2_has_signature(data, size));
        if (!h.local)
            CHECK(h.src.family == 4 || h.src.family == 6);
        for (size_t cut = 0; cut < h.header_len; cut++) {
            proxyv2_t p;
            CHECK(proxyv2_parse(data, cut, PROXYV2_MAX_LEN, &p) == PROXYV2_NEED_MORE);
        }
        proxyv2_t again;
        CHECK(proxyv2_parse(data, h.header_len, PROXYV2_MAX_LEN, &again) == PROXYV2_OK);
        CHECK(again.header_len == h.header_len && again.local == h.local);
        CHECK(memcmp(&again.src, &h.src, sizeof(h.src)) == 0);
    }
    proxyv2_t small;
    proxyv2_err_t e2 = proxyv2_parse(data, size, cap, &small);
    if (e2 == PROXYV2_OK)
        CHECK(err == PROXYV2_OK && small.header_len <= cap);
    CHECK(proxyv2_strerror(err)[0] != '\0');
    return 0;
}
