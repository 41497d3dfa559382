/* SPDX-License-Identifier: MIT */
/* config: the config file, a third source of the options of opts.h (precedence: flags >
 * environment > file > defaults; daemon.h puts the layers together).
 *
 * The format, read by libinih (Debian's libinih; we never split lines by hand):
 *
 *     # a comment (a line starting with # or ;)
 *     peer-timeout = 600          ; an inline comment: ';' after a space
 *     udp = [::]:6969
 *     log-level=debug
 *     secret-file = "/etc/shoal/my secret"
 *
 * - Keys are the long option names without "--", one per line, at the top level: a key under a
 *   [section] is an error. "config" and "print-config" (the options that name and print a file)
 *   cannot be set in a file.
 * - Values are checked exactly as on the command line (opts_set()): numbers in range, flags
 *   true/false, yes/no or 1/0, strings as they are. Space around key and value is dropped.
 * - A value may be quoted: "..." keeps leading and trailing spaces and '#', ';' and may be empty;
 *   inside quotes \" \\ \; \n \r \t and \xHH (not \x00) are escapes, and a bare '"' ends the
 *   string, which must end the value. An unquoted value is taken literally up to an inline
 *   comment (a ';' after a space).
 * - Each key at most once; a line is at most CONFIG_LINE_MAX bytes; a UTF-8 byte-order mark
 *   at the start is skipped.
 * - The first error stops the parse, and is reported as "FILE:LINE: reason" (FILE as given):
 *   "unknown key 'x'", "duplicate key 'x' (first on line N)", "peer-timeout: <reason of
 *   opts_set()>", "keys belong at the top level, not under a [section]", "expected 'name =
 *   value'", "line too long", or "FILE: cannot read: <strerror>". On error cfg may hold some
 *   of the file's values already: parse into a copy to keep a running config intact.
 *
 * Strings that the parse writes into cfg point into a config_arena_t, not into the text: they
 * live until the arena is destroyed. The arena interns them (one copy of each distinct text), so
 * reading the same file again (a reload) does not grow it. */
#ifndef SHOAL_CONFIG_H
#define SHOAL_CONFIG_H

#include "opts.h"

#include <stddef.h>
#include <stdio.h>

/* The longest line a file may have, newline included. */
#define CONFIG_LINE_MAX 4096

/* Owner of the strings parsed from config files (and of blocks kept with config_arena_keep()). */
typedef struct config_arena config_arena_t;

/* An empty arena. Returns NULL if memory runs out. */
config_arena_t *config_arena_new(void);

/* Free the arena and every string and block in it (the configs that point into it must no longer
 * be used), then set *self_p to NULL. NULL-safe. */
void config_arena_destroy(config_arena_t **self_p);

/* The arena's copy of s: the same pointer for the same text every time. NULL if memory runs out. */
const char *config_arena_intern(config_arena_t *self, const char *s);

/* A copy of size bytes at data, aligned for any type, freed with the arena. NULL if memory runs
 * out. */
void *config_arena_keep(config_arena_t *self, const void *data, size_t size);

/* Parse text (NUL-terminated; the contents of the file called name, used in errors) against the
 * n options of spec, writing each value at its offset in cfg. Strings go into arena. Returns 0,
 * or -1 with "name:LINE: reason" in err. */
int config_parse_string(const char *name, const char *text, const opts_spec_t *spec, size_t n,
                        void *cfg, config_arena_t *arena, char *err, size_t errlen);

/* config_parse_string() of the file at path (read with stdio; a NUL byte in it is an error). */
int config_parse_file(const char *path, const opts_spec_t *spec, size_t n, void *cfg,
                      config_arena_t *arena, char *err, size_t errlen);

/* Write cfg as a config file that config_parse_string() reads back into the same values: a
 * header naming prog, then for each option its help and where else it can be set as "# "
 * comment lines, and "name = value". Flags are true/false; strings are quoted (with the escapes
 * above) when they are empty, have space at either end, or hold '#', ';', '"', '\' or a control
 * character; a NULL string (never set) is a comment line "# name = (not set)"; a string marked
 * OPTS_SECRET_URL is printed with its password as "***" (not read back the same). The options named
 * config and print-config are left out. Write errors are the caller's to check (ferror(out)). */
void config_print(FILE *out, const opts_spec_t *spec, size_t n, const void *cfg, const char *prog);

#endif
