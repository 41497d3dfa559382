/* SPDX-License-Identifier: MIT */
/* feopts: the front-end options every client-facing binary shares (shoal, shoal-gateway), so
 * they are spelled, checked and documented once.
 *
 * A binary embeds a feopts_t in its config struct, appends feopts_spec() to its own option
 * table (offsets relative to that struct), and after parsing calls feopts_apply() to turn the
 * values into a frontend_config_t (everything but the backend). */
#ifndef SHOAL_FEOPTS_H
#define SHOAL_FEOPTS_H

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
    const char *secret;
    uint32_t connid_grace;
    const char *log_level;
} feopts_t;

/* How many specs feopts_spec() writes. */
#define FEOPTS_N_SPECS 15

/* The defaults: dual-stack port 6969 for both protocols, one worker per core, interval 1800 s. */
void feopts_defaults(feopts_t *o);

/* Write the FEOPTS_N_SPECS option specs into out, for a feopts_t at byte offset `base` inside
 * the config struct that opts_parse() fills. Returns FEOPTS_N_SPECS. */
size_t feopts_spec(opts_spec_t *out, size_t base);

/* Set the log level, check the listen lists, parse --trust-proxy and --secret (random when
 * empty: *random_secret says so), and fill fc except its backend fields. Returns 0, or -1 with a
 * reason in err (a configuration error: exit 2). */
int feopts_apply(const feopts_t *o, frontend_config_t *fc, bool *random_secret, char *err,
                 size_t errlen);

/* Raise the soft open-file limit to the hard one, and warn if it is still below what
 * http_max_conns connections need. */
void feopts_raise_fd_limit(uint32_t http_max_conns);

#endif
