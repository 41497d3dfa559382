/* SPDX-License-Identifier: MIT */
/* feopts: the front-end options every client-facing binary shares (shoal, shoal-gateway), so
 * they are spelled, checked and documented once.
 *
 * A binary embeds a feopts_t in its config struct, adds feopts_spec() to its option table
 * (daemon_options(), offsets relative to the feopts_t), and after parsing calls feopts_apply()
 * to turn the values into a frontend_config_t (everything but the backend). */
#ifndef SHOAL_FEOPTS_H
#define SHOAL_FEOPTS_H

#include "access.h"
#include "frontend.h"
#include "opts.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *udp;
    const char *http;
    uint32_t workers;
    uint32_t interval;
    uint32_t min_interval;
    uint32_t numwant;
    uint32_t max_numwant;
    uint32_t scrape_max;
    uint32_t http_max_conns;
    uint32_t http_max_request;
    uint32_t http_idle_timeout;
    const char *trust_proxy;
    const char *proxy_protocol; /* --proxy-protocol CIDR list, parsed by feopts_apply too */
    const char *secret;
    const char *secret_file;
    uint32_t connid_grace;
    bool share_port;           /* --share-port: other processes may bind the same addresses */
    const char *access_mode;   /* "off", "allow" or "deny" */
    const char *access_list;   /* file of 40-hex info-hashes, or "" (the list starts empty) */
    uint32_t rate_limit;       /* requests a second per address (IPv6 /64); 0: off */
    uint32_t rate_limit_burst; /* 0: twice rate_limit */
    uint32_t rate_limit_table; /* slots of the shared bucket table */
    uint32_t connid_ban;       /* invalid connection ids that ban an address; 0: off */
    uint32_t connid_ban_window;
    uint32_t connid_ban_time;
    uint32_t connid_ban_table;
} feopts_t;

/* The defaults: dual-stack port 6969 for both protocols, one worker per core, interval 1800 s. */
void feopts_defaults(feopts_t *o);

/* The option specs, offsets relative to a feopts_t. Static storage. */
opts_table_t feopts_spec(void);

/* Check the listen lists and contradictory values (--numwant above --max-numwant, --min-interval
 * above --interval, --rate-limit-burst without --rate-limit), parse --trust-proxy and the secret
 * (--secret or --secret-file, not both; random when neither: *random_secret says so), and fill fc
 * except its backend fields. Returns 0, or -1 with a reason in err (a configuration error: exit 2).
 * Warnings (a secret file others may read) are logged. */
int feopts_apply(const feopts_t *o, frontend_config_t *fc, bool *random_secret, char *err,
                 size_t errlen);

/* The access list --access-mode and --access-list describe, for `workers` front-end workers (set
 * it as fc.access; destroy it after the front end). Reads the list file if one is given: mode
 * allow or deny without a file starts with an empty list (allow then refuses every torrent until
 * a list is installed, e.g. by a cluster store); mode off with a file keeps the list loaded but
 * unused. Returns NULL with a reason ("--access-list FILE: line N: ...") in err. */
access_t *feopts_access_new(const feopts_t *o, unsigned workers, char *err, size_t errlen);

/* Raise the soft open-file limit to the hard one, and warn if it is still below what
 * http_max_conns connections need. */
void feopts_raise_fd_limit(uint32_t http_max_conns);

#endif
