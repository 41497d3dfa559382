/* SPDX-License-Identifier: MIT */
/* announce: address normalisation shared by the codecs and the servers.
 *
 * Invariant: an endpoint of family 4 has its address in addr[0..3] and zeros in addr[4..15], so
 * two endpoints of the same address compare equal byte for byte. Both functions read their input
 * in full before writing, so they also work in place (addr16 == ep->addr, out == ep->addr). */
#include "announce.h"

#include <string.h>

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

void announce_endpoint_from16(endpoint_t *ep, const uint8_t addr16[16])
{
    uint8_t in[16];
    memcpy(in, addr16, sizeof(in));
    memset(ep->addr, 0, sizeof(ep->addr));
    if (memcmp(in, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
        ep->family = 4;
        memcpy(ep->addr, in + 12, 4);
    } else {
        ep->family = 6;
        memcpy(ep->addr, in, 16);
    }
}

void announce_endpoint_to16(const endpoint_t *ep, uint8_t out[16])
{
    uint8_t res[16];
    if (ep->family == 4) {
        memcpy(res, v4mapped_prefix, sizeof(v4mapped_prefix));
        memcpy(res + 12, ep->addr, 4);
    } else {
        memcpy(res, ep->addr, 16);
    }
    memcpy(out, res, sizeof(res));
}
