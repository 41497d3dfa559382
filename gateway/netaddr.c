/* SPDX-License-Identifier: MIT */
/* netaddr: listen addresses, IP networks and forwarded-for values, parsed with inet_pton. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *text, uint16_t *port)
{
    if (*text == '\0' || strlen(text) > 5)
        return -1;
    unsigned v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

int netaddr_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *err,
                         size_t errlen)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    if (!colon) {
        snprintf(err, errlen, "'%s': expected ADDR:PORT", text);
        return -1;
    }
    size_t hlen = (size_t)(colon - text);
    const char *h = text;
    if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    } else if (memchr(h, ':', hlen)) {
        snprintf(err, errlen, "'%s': put an IPv6 address in brackets, e.g. [::1]:6969", text);
        return -1;
    }
    if (hlen >= sizeof(host)) {
        snprintf(err, errlen, "'%s': address too long", text);
        return -1;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    uint16_t port;
    if (parse_port(colon + 1, &port) != 0) {
        snprintf(err, errlen, "'%s': port must be 1-65535", text);
        return -1;
    }
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    if (hlen == 0) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = in6addr_any;
        sin6->sin6_port = htons(port);
        *len = sizeof(*sin6);
    } else if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        *len = sizeof(*sin);
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        *len = sizeof(*sin6);
    } else {
        snprintf(err, errlen, "'%s': '%s' is not an IP address", text, host);
        return -1;
    }
    return 0;
}

void netaddr_format(const struct sockaddr *sa, char *out, size_t outlen)
{
    char host[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(out, outlen, "%s:%u", host, ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(out, outlen, "[%s]:%u", host, ntohs(sin6->sin6_port));
    } else {
        snprintf(out, outlen, "?");
    }
}

int netaddr_parse_ip(const char *text, size_t len, endpoint_t *ep)
{
    while (len > 0 && (*text == ' ' || *text == '\t')) {
        text++;
        len--;
    }
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    char buf[INET6_ADDRSTRLEN + 1];
    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    uint8_t a16[16];
    memset(ep->addr, 0, sizeof(ep->addr));
    if (inet_pton(AF_INET, buf, ep->addr) == 1) {
        ep->family = 4;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, a16) == 1) {
        announce_endpoint_from16(ep, a16);
        return 0;
    }
    return -1;
}

static int parse_net(const char *text, size_t len, netaddr_net_t *net, char *err, size_t errlen)
{
    const char *slash = memchr(text, '/', len);
    size_t alen = slash ? (size_t)(slash - text) : len;
    endpoint_t ep;
    if (netaddr_parse_ip(text, alen, &ep) != 0) {
        snprintf(err, errlen, "'%.*s' is not an IP network", (int)len, text);
        return -1;
    }
    unsigned max = ep.family == 4 ? 32 : 128;
    unsigned prefix = max;
    if (slash) {
        size_t plen = len - alen - 1;
        if (plen == 0 || plen > 3) {
            snprintf(err, errlen, "'%.*s': bad prefix length", (int)len, text);
            return -1;
        }
        prefix = 0;
        for (size_t i = 0; i < plen; i++) {
            char c = slash[1 + i];
            if (c < '0' || c > '9') {
                snprintf(err, errlen, "'%.*s': bad prefix length", (int)len, text);
                return -1;
            }
            prefix = prefix * 10 + (unsigned)(c - '0');
        }
        if (prefix > max) {
            snprintf(err, errlen, "'%.*s': prefix longer than %u", (int)len, text, max);
            return -1;
        }
    }
    unsigned bytes = max / 8;
    for (unsigned bit = prefix; bit < bytes * 8; bit++) {
        if (ep.addr[bit / 8] & (0x80u >> (bit % 8))) {
            snprintf(err, errlen, "'%.*s': address has bits set below the /%u prefix", (int)len,
                     text, prefix);
            return -1;
        }
    }
    net->family = ep.family;
    net->prefix = (uint8_t)prefix;
    memcpy(net->addr, ep.addr, sizeof(net->addr));
    return 0;
}

int netaddr_parse_list(const char *text, netaddr_list_t *out, char *err, size_t errlen)
{
    out->n = 0;
    const char *p = text;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len > 0) {
            if (out->n == NETADDR_LIST_MAX) {
                snprintf(err, errlen, "more than %d networks", NETADDR_LIST_MAX);
                return -1;
            }
            if (parse_net(p, len, &out->nets[out->n], err, errlen) != 0)
                return -1;
            out->n++;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

static uint64_t load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
    return be64toh(v);
}

/* The top `bits` bits of a 64-bit word (bits may be 0..64). */
static uint64_t top_mask(unsigned bits)
{
    return bits == 0 ? 0 : bits >= 64 ? ~(uint64_t)0 : ~(uint64_t)0 << (64 - bits);
}

/* Whole words under a mask rather than memcmp: this runs per datagram and per connection for
 * --proxy-protocol, and a memcmp call per network made a 32-network list cost more than the rest
 * of a UDP request. */
static bool net_contains(const netaddr_net_t *net, const endpoint_t *ep)
{
    if (net->family != ep->family)
        return false;
    unsigned prefix = net->prefix; /* IPv4: at most 32, so addr[4..7] never count */
    if ((load_be64(net->addr) ^ load_be64(ep->addr)) & top_mask(prefix))
        return false;
    if (net->family == 4 || prefix <= 64)
        return true;
    return ((load_be64(net->addr + 8) ^ load_be64(ep->addr + 8)) & top_mask(prefix - 64)) == 0;
}

bool netaddr_list_contains(const netaddr_list_t *list, const endpoint_t *ep)
{
    for (size_t i = 0; i < list->n; i++) {
        if (net_contains(&list->nets[i], ep))
            return true;
    }
    return false;
}

int netaddr_forwarded_client(const char *value, size_t len, const netaddr_list_t *trusted,
                             endpoint_t *ep)
{
    /* Bounded by the header's length: each step consumes at least one byte. */
    size_t end = len;
    bool found = false;
    /* An entry that does not parse makes the whole value unusable: falling back to a proxy's own
     * address would register the proxy as a peer. */
    while (end > 0) {
        size_t start = end;
        while (start > 0 && value[start - 1] != ',')
            start--;
        endpoint_t cand;
        if (netaddr_parse_ip(value + start, end - start, &cand) != 0)
            return -1;
        *ep = cand;
        found = true;
        if (!netaddr_list_contains(trusted, &cand))
            return 0;
        if (start == 0)
            break;
        end = start - 1;
    }
    return found ? 0 : -1;
}
