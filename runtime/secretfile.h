/* SPDX-License-Identifier: MIT */
/* secretfile: a secret (a connection-id secret, a password, a token) read from a file, so it stays
 * out of argv, the environment and `ps`. The file holds the secret alone; one trailing newline
 * (or CR LF) is allowed, as editors and `echo` write it. */
#ifndef SHOAL_SECRETFILE_H
#define SHOAL_SECRETFILE_H

#include <stdbool.h>
#include <stddef.h>

/* Read the secret in path into out (NUL-terminated; the caller wipes it after use). Refuses an
 * empty secret, one of outlen bytes or more, and NUL bytes in it. *world_readable (may be NULL) is
 * set when others than the owner and group may read the file (the caller warns). Returns 0, or
 * -1 and why in err (naming the path, never the content). */
int secretfile_read(const char *path, char *out, size_t outlen, bool *world_readable, char *err,
                    size_t errlen);

#endif
