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
            members_advert_t a;
            char back[PARTITION_ENDPOINT_MAX], ep[PARTITION_ENDPOINT_MAX];
            int rc = members_split(members[i].endpoint, &a);
            if (strlen(a.endpoint) > strlen(members[i].endpoint) || a.workers < 1 ||
                a.workers > MEMBERS_WORKERS_MAX)
                abort();
            if (rc != 0 && (a.key[0] || a.workers != 1))
                abort();
            /* What parses joins back to itself, but for a "|workers=1" written out (not kept). */
            if (rc == 0 && (members_join(&a, back, sizeof(back)) != 0 ||
                            (strcmp(back, members[i].endpoint) != 0 &&
                             !strstr(members[i].endpoint, MEMBERS_WORKERS_TAG "1"))))
                abort();
            if (rc == 0 && !strchr(members[i].endpoint, '|') &&
                (a.key[0] || strcmp(a.endpoint, members[i].endpoint) != 0))
                abort();
            for (unsigned w = 0; rc == 0 && w < a.workers; w += 97) {
                if (a.workers > 1 && members_worker_endpoint(a.endpoint, w, ep, sizeof(ep)) != 0)
                    abort();
            }
        }
    }
    free(z);
    return 0;
}
