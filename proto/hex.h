/* SPDX-License-Identifier: MIT */
/* hex: hexadecimal digits, for every parser that reads them (percent-escapes, info-hashes in
 * access lists and the admin API, secrets, config-file escapes) and every writer of them. */
#ifndef SHOAL_HEX_H
#define SHOAL_HEX_H

#include <stddef.h>
#include <stdint.h>

/* A digit's value (either case), or HEX_BAD for any other byte; HEX_BAD has a bit no value has,
 * so OR-ing a run of lookups tests them all at once. */
#define HEX_BAD 0x80
extern const uint8_t hex_values[256];

/* 0..15, or -1 if c is not a hex digit. */
static inline int hex_digit(char c)
{
    uint8_t v = hex_values[(unsigned char)c];
    return v & HEX_BAD ? -1 : v;
}

/* Decode exactly 2 n digits from text into out[0..n). Returns 0, or -1 if one of them is not a
 * hex digit (out is then partly written). Reads 2 n bytes: text need not be NUL-terminated. */
int hex_decode(const char *text, size_t n, uint8_t *out);

/* Write 2 n lowercase digits of in[0..n) and a NUL into out (2 n + 1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);

#endif
