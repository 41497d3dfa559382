/* SPDX-License-Identifier: MIT */
/* err: how runtime and daemon modules report a failure without printing: a text into the
 * caller's buffer (style: "Errors are returned, never printed deep inside"). */
#ifndef SHOAL_ERR_H
#define SHOAL_ERR_H

#include <stddef.h>

/* Format into err[0..errlen) (truncated, always terminated). No-op if err is NULL or errlen 0. */
void err_set(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
