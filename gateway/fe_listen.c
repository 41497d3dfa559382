/* SPDX-License-Identifier: MIT */
/* fe_listen: the front end's listen addresses, from the --udp / --http lists to bound sockets.
 *
 * Every worker opens its own socket on every address with SO_REUSEPORT, so the kernel spreads
 * datagrams and connections over the workers; before that, one plain bind per address checks
 * that nobody else holds it. Invariant: a list holds at most MAX_ADDRS addresses per protocol,
 * each one parsed by netaddr_parse_listen. */
#include "fe_internal.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int fe_listen_parse(listen_addr_t *addrs, size_t *n, const char *text, bool udp, char *err,
                    size_t errlen)
{
    if (!text || !strcmp(text, "off") || !*text)
        return 0;
    const char *p = text;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char one[96];
        if (len >= sizeof(one)) {
            snprintf(err, errlen, "listen address too long: %.*s", (int)len, p);
            return -1;
        }
        memcpy(one, p, len);
        one[len] = '\0';
        if (len > 0) {
            size_t same = 0;
            for (size_t i = 0; i < *n; i++)
                same += addrs[i].udp == udp;
            if (same == MAX_ADDRS) {
                snprintf(err, errlen, "too many listen addresses (max %d per protocol)", MAX_ADDRS);
                return -1;
            }
            listen_addr_t *a = &addrs[*n];
            char why[160];
            if (netaddr_parse_listen(one, &a->addr, &a->len, why, sizeof(why)) != 0) {
                snprintf(err, errlen, "--%s %s", udp ? "udp" : "http", why);
                return -1;
            }
            a->udp = udp;
            (*n)++;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return 0;
}

int fe_listen_open(listen_addr_t *a, char *err, size_t errlen)
{
    int type = (a->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC;
    int fd = socket(a->addr.ss_family, type, 0);
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->addr;
    if (fd < 0 && errno == EAFNOSUPPORT && a->addr.ss_family == AF_INET6 &&
        IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr)) {
        /* No IPv6 on this host: the any-address default falls back to IPv4. */
        uint16_t port = sin6->sin6_port;
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->addr;
        memset(&a->addr, 0, sizeof(a->addr));
        sin->sin_family = AF_INET;
        sin->sin_port = port;
        a->len = sizeof(*sin);
        fd = socket(AF_INET, type, 0);
    }
    char name[80];
    netaddr_format((struct sockaddr *)&a->addr, name, sizeof(name));
    if (fd < 0) {
        snprintf(err, errlen, "%s %s: socket: %s", a->udp ? "udp" : "http", name, strerror(errno));
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        snprintf(err, errlen, "%s %s: SO_REUSEPORT: %s", a->udp ? "udp" : "http", name,
                 strerror(errno));
        close(fd);
        return -1;
    }
    if (a->addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    if (a->udp) {
        int size = 4 * 1024 * 1024; /* capped by net.core.rmem_max; best effort */
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    }
    if (bind(fd, (struct sockaddr *)&a->addr, a->len) != 0) {
        snprintf(err, errlen, "%s %s: bind: %s", a->udp ? "udp" : "http", name, strerror(errno));
        close(fd);
        return -1;
    }
    if (!a->udp && listen(fd, 1024) != 0) {
        snprintf(err, errlen, "http %s: listen: %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* SO_REUSEPORT lets any socket of the same user join a port, so a second tracker started by
 * mistake would silently take half the traffic. One bind without it first tells whether anybody
 * holds the address. */
int fe_listen_probe(const listen_addr_t *a, char *err, size_t errlen)
{
    int fd = socket(a->addr.ss_family, (a->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0; /* fe_listen_open reports it, with the IPv4 fallback applied */
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (a->addr.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
    int rc = bind(fd, (const struct sockaddr *)&a->addr, a->len);
    int e = errno;
    close(fd);
    if (rc != 0 && e == EADDRINUSE) {
        char name[80];
        netaddr_format((const struct sockaddr *)&a->addr, name, sizeof(name));
        snprintf(err, errlen, "%s %s: address already in use (is another tracker running?)",
                 a->udp ? "udp" : "http", name);
        return -1;
    }
    return 0;
}
