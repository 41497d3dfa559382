/* SPDX-License-Identifier: MIT */
/* proxyv2: the binary PROXY protocol header (version 2) a load balancer puts in front of a TCP
 * stream or of each UDP datagram to tell the server whom it is relaying for.
 *
 * Layout (HAProxy's doc/proxy-protocol.txt, section 2.2): a 12-byte signature, one byte of
 * version (high nibble, must be 2) and command (low nibble: 0 LOCAL, 1 PROXY), one byte of address
 * family (high: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX) and transport (low: 0 UNSPEC, 1 STREAM,
 * 2 DGRAM), a 16-bit big-endian length of what follows, then the addresses (INET 12 bytes, INET6
 * 36, UNIX 216: source, destination, source port, destination port) and optional TLVs, which are
 * skipped here.
 *
 * What the header says is kept only for PROXY over INET or INET6 (STREAM or DGRAM); LOCAL (a
 * health check of the balancer itself), UNSPEC and UNIX headers say "keep the connection's own
 * address" (out->local). Pure code: the caller decides whom to believe.
 *
 * Invariant: proxyv2_parse() reads only buf[0..len) and never more than max_len bytes; it answers
 * PROXYV2_NEED_MORE only while every byte seen so far can still begin a valid header. */
#ifndef SHOAL_PROXYV2_H
#define SHOAL_PROXYV2_H

#include "announce.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROXYV2_SIG_LEN  12
#define PROXYV2_HEAD_LEN 16  /* signature, version/command, family/transport, length */
#define PROXYV2_MAX_LEN  512 /* whole header, TLVs included: anything longer is refused */

typedef enum {
    PROXYV2_OK = 0,
    PROXYV2_NEED_MORE,     /* a valid prefix: read more (TCP); a datagram this short is invalid */
    PROXYV2_ERR_SIGNATURE, /* not a PROXY v2 header */
    PROXYV2_ERR_VERSION,   /* the signature, but a version other than 2 */
    PROXYV2_ERR_COMMAND,   /* neither LOCAL nor PROXY */
    PROXYV2_ERR_FAMILY,    /* address family or transport outside the specification */
    PROXYV2_ERR_ADDRESS,   /* the length leaves no room for the family's addresses */
    PROXYV2_ERR_TOO_LONG,  /* the header is longer than max_len */
} proxyv2_err_t;

typedef struct {
    size_t header_len; /* bytes the header takes at the start of the buffer */
    bool local;        /* true: keep the connection's own address (src is unset) */
    bool dgram;        /* the balancer says the client spoke over a datagram transport */
    endpoint_t src;    /* the client's address and port (IPv4-mapped IPv6 becomes family 4) */
    endpoint_t dst;    /* the address the client connected to */
} proxyv2_t;

/* Parse the header at the start of buf[0..len), at most max_len bytes long (PROXYV2_MAX_LEN
 * at most; a smaller cap is honoured). On PROXYV2_OK *out is filled and the payload starts at
 * buf + out->header_len. On anything else *out is unspecified. */
proxyv2_err_t proxyv2_parse(const uint8_t *buf, size_t len, size_t max_len, proxyv2_t *out);

/* True if buf[0..len) begins with the signature, or with the first len bytes of it when len is
 * shorter: bytes that may be the start of a header. */
bool proxyv2_has_signature(const uint8_t *buf, size_t len);

/* A short lower-case reason, e.g. for a log line. Static storage. */
const char *proxyv2_strerror(proxyv2_err_t err);

#endif
