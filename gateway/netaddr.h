/* SPDX-License-Identifier: MIT */
/* netaddr: text forms of socket addresses and networks, as operators write them in flags.
 *
 *   listen address  "0.0.0.0:6969", "127.0.0.1:7000", "[::]:6969", "[::1]:6969", ":6969" (any,
 *                   dual-stack)
 *   network         "10.0.0.0/8", "192.168.1.7" (a /32), "fd00::/8", "::1" (a /128)
 *
 * Pure parsing and matching: no sockets are opened and no names are resolved (a host name is an
 * error: a tracker's listen and trust lists are addresses). IPv4-mapped IPv6 addresses match IPv4
 * networks. */
#ifndef SHOAL_NETADDR_H
#define SHOAL_NETADDR_H

#include "announce.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define NETADDR_LIST_MAX 32

/* Parse a listen address into *ss (AF_INET or AF_INET6) and *len. ":PORT" gives the IPv6 any
 * address. Returns 0, or -1 with a reason in err. */
int netaddr_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len, char *err,
                         size_t errlen);

/* "ADDR:PORT" text for a socket address ("[v6]:port" for IPv6). */
void netaddr_format(const struct sockaddr *sa, char *out, size_t outlen);

/* Parse a textual IP address (no port, no brackets) into ep->family and ep->addr; an
 * IPv4-mapped IPv6 address becomes family 4. Surrounding spaces and tabs are skipped.
 * Returns 0, or -1. */
int netaddr_parse_ip(const char *text, size_t len, endpoint_t *ep);

typedef struct {
    uint8_t family; /* 4 or 6 */
    uint8_t prefix; /* 0..32 or 0..128 */
    uint8_t addr[16];
} netaddr_net_t;

typedef struct {
    size_t n;
    netaddr_net_t nets[NETADDR_LIST_MAX];
} netaddr_list_t;

/* Parse a comma-separated list of networks (empty text: an empty list). Host bits below the
 * prefix must be zero ("10.0.0.1/8" is refused: it is almost always a typo). Returns 0, or -1
 * with a reason in err. */
int netaddr_parse_list(const char *text, netaddr_list_t *out, char *err, size_t errlen);

/* True if ep's address is inside one of the list's networks. */
bool netaddr_list_contains(const netaddr_list_t *list, const endpoint_t *ep);

/* The client address a trusted proxy reports in an X-Forwarded-For value ("a, b, c"): walking
 * from the right (the entry the nearest proxy added), the first address that is not itself in
 * `trusted`. X-Real-IP values are a one-element list. Returns 0 with *ep set, or -1 if the value
 * holds no parsable address. */
int netaddr_forwarded_client(const char *value, size_t len, const netaddr_list_t *trusted,
                             endpoint_t *ep);

#endif
