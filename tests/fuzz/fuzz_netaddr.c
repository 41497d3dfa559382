/* SPDX-License-Identifier: MIT */
/* fuzz_netaddr: X-Forwarded-For values and network lists as an attacker or operator writes them.
 * The first byte picks the parser; the rest is the input. */
#include "netaddr.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    uint8_t mode = data[0];
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    char *z = malloc(len + 1); /* the list and listen parsers take NUL-terminated text */
    if (!z)
        return 0;
    memcpy(z, text, len);
    z[len] = '\0';
    char err[256];
    netaddr_list_t list;
    endpoint_t ep;
    switch (mode % 4) {
    case 0: {
        static const char trusted_text[] = "10.0.0.0/8,::1,fd00::/8";
        if (netaddr_parse_list(trusted_text, &list, err, sizeof(err)) != 0)
            abort();
        if (netaddr_forwarded_client(text, len, &list, &ep) == 0 && ep.family != 4 &&
            ep.family != 6)
            abort();
        break;
    }
    case 1:
        if (netaddr_parse_list(z, &list, err, sizeof(err)) == 0) {
            if (list.n > NETADDR_LIST_MAX)
                abort();
            for (size_t i = 0; i < list.n; i++) {
                if (list.nets[i].prefix > (list.nets[i].family == 4 ? 32 : 128))
                    abort();
            }
        }
        break;
    case 2: {
        struct sockaddr_storage ss;
        socklen_t sl;
        char out[96];
        if (netaddr_parse_listen(z, &ss, &sl, err, sizeof(err)) == 0)
            netaddr_format((struct sockaddr *)&ss, out, sizeof(out));
        break;
    }
    default:
        if (netaddr_parse_ip(text, len, &ep) == 0 && ep.family != 4 && ep.family != 6)
            abort();
        break;
    }
    free(z);
    return 0;
}
