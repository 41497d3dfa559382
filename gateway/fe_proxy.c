/* SPDX-License-Identifier: MIT */
/* fe_proxy: the PROXY protocol v2 header (proto/proxyv2) at the start of HTTP connections and UDP
 * datagrams, from the load balancers --proxy-protocol lists.
 *
 * The specification says a receiver must not guess: from a listed source the header is required
 * (a connection or datagram without one is refused), and from any other source a header is
 * refused (anyone could otherwise claim any address). A LOCAL header (the balancer's own health
 * check) and the UNSPEC and UNIX families keep the socket's address. The header's address
 * replaces the client address before anything else reads it (connection ids, peer lists, access
 * list, X-Forwarded-For trust, rate limits); UDP replies still go to the datagram's source.
 *
 * Invariant: a connection's c->proxy leaves FE_PROXY_REQUIRED only with a header taken off c->in,
 * and leaves FE_PROXY_FORBIDDEN only once its first bytes cannot be a signature. */
#include "fe_internal.h"
#include "proxyv2.h"

#include <string.h>

/* "\r\n\r\n\0": no HTTP request starts so (a NUL is never in a request line), so a shorter
 * prefix of the signature from an unlisted source is waited on, this much is refused. */
#define SIG_TELLS 5

void fe_proxy_accept(worker_t *w, conn_t *c)
{
    c->proxy = netaddr_list_contains(&w->fe->cfg.proxy_protocol, &c->peer) ? FE_PROXY_REQUIRED
                                                                           : FE_PROXY_FORBIDDEN;
}

static int refuse_http(worker_t *w, conn_t *c)
{
    (void)c;
    fe_failed(w, FRONTEND_HTTP, FE_NO_KIND, FRONTEND_ERR_PROXY_PROTOCOL);
    return -1;
}

int fe_proxy_http(worker_t *w, conn_t *c)
{
    const uint8_t *in = (const uint8_t *)c->in;
    if (c->proxy == FE_PROXY_FORBIDDEN) {
        if (!proxyv2_has_signature(in, c->in_len)) {
            c->proxy = FE_PROXY_DONE;
            return 0;
        }
        return c->in_len >= SIG_TELLS ? refuse_http(w, c) : 1;
    }
    size_t cap = w->fe->cfg.http_max_request; /* the header must fit the input buffer */
    proxyv2_t h;
    proxyv2_err_t err = proxyv2_parse(in, c->in_len, cap, &h);
    if (err == PROXYV2_NEED_MORE)
        return 1;
    if (err != PROXYV2_OK)
        return refuse_http(w, c);
    if (!h.local)
        c->peer = h.src;
    c->in_len -= (uint32_t)h.header_len;
    memmove(c->in, c->in + h.header_len, c->in_len);
    c->proxy = FE_PROXY_DONE;
    w->c[C_HTTP_PROXY_ACCEPTED]++;
    return 0;
}

bool fe_proxy_udp_check(worker_t *w, const uint8_t **pkt, size_t *len, endpoint_t *src)
{
    bool listed = netaddr_list_contains(&w->fe->cfg.proxy_protocol, src);
    if (!listed) {
        if (*len < PROXYV2_SIG_LEN || !proxyv2_has_signature(*pkt, *len))
            return true;
        fe_failed(w, FRONTEND_UDP, FE_NO_KIND, FRONTEND_ERR_PROXY_PROTOCOL);
        return false;
    }
    proxyv2_t h;
    /* A datagram is whole: a header cut short is as invalid as a wrong one. */
    if (proxyv2_parse(*pkt, *len, PROXYV2_MAX_LEN, &h) != PROXYV2_OK) {
        fe_failed(w, FRONTEND_UDP, FE_NO_KIND, FRONTEND_ERR_PROXY_PROTOCOL);
        return false;
    }
    if (!h.local)
        *src = h.src;
    *pkt += h.header_len;
    *len -= h.header_len;
    w->c[C_UDP_PROXY_ACCEPTED]++;
    return true;
}
