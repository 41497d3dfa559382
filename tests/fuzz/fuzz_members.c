/* SPDX-License-Identifier: MIT */
/* fuzz_members: static member lists (--nodes) and advertised endpoints with a CURVE key, as an
 * operator or a Redis record writes them. Every member that parses must split into an endpoint
 * no longer than itself and, with a key, a 40-character one that joins back to the same text. */
#include "members.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static partition_member_t members[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *z = malloc(size + 1);
    if (!z)
        return 0;
    memcpy(z, data, size);
    z[size] = '\0';
    size_t n = 0;
    char err[256];
    if (members_parse(z, members, 64, &n, err, sizeof(err)) == 0) {
        if (n == 0 || n > 64)
            abort();
        for (size_t i = 0; i < n; i++) {
            char ep[PARTITION_ENDPOINT_MAX], key[MEMBERS_CURVE_KEY_LEN + 1];
            char back[PARTITION_ENDPOINT_MAX];
            members_advert_t a = members_split(members[i].endpoint, ep, key);
            if (strlen(ep) > strlen(members[i].endpoint))
                abort();
            if (a == MEMBERS_CURVE && (strlen(key) != MEMBERS_CURVE_KEY_LEN ||
                                       members_join(ep, key, back, sizeof(back)) != 0 ||
                                       strcmp(back, members[i].endpoint) != 0))
                abort();
            if (a == MEMBERS_PLAIN && (key[0] || strcmp(ep, members[i].endpoint) != 0))
                abort();
        }
    }
    free(z);
    return 0;
}
