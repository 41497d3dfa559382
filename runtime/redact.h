/* SPDX-License-Identifier: MIT */
/* redact: the text of a URL that may be logged or printed, its password replaced by "***". Used
 * by rconn (every Redis URL in a message) and by --help / --print-config (options marked
 * OPTS_SECRET_URL). No state. */
#ifndef SHOAL_REDACT_H
#define SHOAL_REDACT_H

#include <stddef.h>

/* url as it may be shown, into out[0..outlen) (truncated, always terminated when outlen > 0).
 * The credentials run from after "://" (or the start) to the last '@'; what follows their first
 * ':' (all of them if there is no ':') becomes "***", and control characters become '?'. Takes
 * any text, a URL that does not parse included, and never copies a byte of the password.
 * Returns out. */
char *redact_url(const char *url, char *out, size_t outlen);

#endif
