/* SPDX-License-Identifier: MIT */
/* lgtarget: parse and vet the target address; see lgtarget.h. */
#include "lgtarget.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

bool lgtarget_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *a = in6->sin6_addr.s6_addr;
        static const uint8_t v6_loop[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, v6_loop, 16) == 0)
            return true;
        return memcmp(a, mapped, 12) == 0 && a[12] == 127;
    }
    return false;
}

static bool parse_port(const char *s, uint16_t *port)
{
    if (*s == '\0' || strlen(s) > 5)
        return false;
    unsigned v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v < 1 || v > 65535)
        return false;
    *port = (uint16_t)v;
    return true;
}

lgtarget_err_t lgtarget_parse(const char *text, lgtarget_t *out)
{
    memset(out, 0, sizeof(*out));
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_text;
    size_t tl = strlen(text);
    if (tl == 0 || tl > 80)
        return LGTARGET_SYNTAX;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return LGTARGET_SYNTAX;
        size_t hl = (size_t)(close - text - 1);
        if (hl == 0 || hl >= sizeof(host))
            return LGTARGET_SYNTAX;
        memcpy(host, text + 1, hl);
        host[hl] = '\0';
        port_text = close + 2;
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->addr;
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
            return LGTARGET_SYNTAX;
        if (!parse_port(port_text, &out->port))
            return LGTARGET_SYNTAX;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(out->port);
        out->family = AF_INET6;
        out->addr_len = sizeof(*in6);
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL || strchr(text, ':') != colon)
            return LGTARGET_SYNTAX;
        size_t hl = (size_t)(colon - text);
        if (hl == 0 || hl >= sizeof(host))
            return LGTARGET_SYNTAX;
        memcpy(host, text, hl);
        host[hl] = '\0';
        port_text = colon + 1;
        struct sockaddr_in *in = (struct sockaddr_in *)&out->addr;
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1)
            return LGTARGET_SYNTAX;
        if (!parse_port(port_text, &out->port))
            return LGTARGET_SYNTAX;
        in->sin_family = AF_INET;
        in->sin_port = htons(out->port);
        out->family = AF_INET;
        out->addr_len = sizeof(*in);
    }
    if (!lgtarget_is_loopback((const struct sockaddr *)&out->addr))
        return LGTARGET_NOT_LOOPBACK;
    if (out->family == AF_INET6)
        snprintf(out->host_port, sizeof(out->host_port), "[%s]:%u", host, out->port);
    else
        snprintf(out->host_port, sizeof(out->host_port), "%s:%u", host, out->port);
    return LGTARGET_OK;
}

const char *lgtarget_strerror(lgtarget_err_t err)
{
    switch (err) {
    case LGTARGET_OK:
        return "ok";
    case LGTARGET_SYNTAX:
        return "expected A.B.C.D:PORT or [IPv6]:PORT with a numeric address and port 1..65535";
    case LGTARGET_NOT_LOOPBACK:
        return "target is not a loopback address (127.0.0.0/8 or ::1): refused";
    }
    return "unknown";
}
