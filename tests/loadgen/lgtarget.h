/* SPDX-License-Identifier: MIT */
/* lgtarget: the load generator's target address. It parses "A.B.C.D:PORT" or "[IPv6]:PORT"
 * (numeric only, no name lookup) and refuses anything that is not loopback, so the generator
 * can never be pointed at someone else's tracker.
 *
 * Invariant: lgtarget_parse returns LGTARGET_OK only for a loopback address (127.0.0.0/8, ::1,
 * or ::ffff:127.0.0.0/104) with a port in 1..65535. Pure code. */
#ifndef SHOAL_LGTARGET_H
#define SHOAL_LGTARGET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

typedef enum {
    LGTARGET_OK = 0,
    LGTARGET_SYNTAX,       /* not ADDR:PORT with a numeric address and port 1..65535 */
    LGTARGET_NOT_LOOPBACK, /* a valid address that is not loopback: refused */
} lgtarget_err_t;

typedef struct {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int family; /* AF_INET or AF_INET6 */
    uint16_t port;
    char host_port[64]; /* normalised, for the Host header and reports */
} lgtarget_t;

/* Parse text into *out. */
lgtarget_err_t lgtarget_parse(const char *text, lgtarget_t *out);

/* True if sa is an IPv4 address in 127.0.0.0/8, the IPv6 ::1, or IPv4-mapped loopback. */
bool lgtarget_is_loopback(const struct sockaddr *sa);

/* A short static description of err. */
const char *lgtarget_strerror(lgtarget_err_t err);

#endif
