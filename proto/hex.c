/* SPDX-License-Identifier: MIT */
/* hex: hexadecimal digits (hex.h). */
#include "hex.h"

#define H16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
#define B      HEX_BAD
const uint8_t hex_values[256] = {
    H16(B), H16(B), H16(B), /* 0x00 - 0x2f */
    0,      1,      2,      3,      4,      5,      6,      7,      8,
    9,      B,      B,      B,      B,      B,      B, /* '0' - '?' */
    B,      10,     11,     12,     13,     14,     15,     B,      B,
    B,      B,      B,      B,      B,      B,      B, /* '@' - 'O' */
    H16(B),                                            /* 'P' - '_' */
    B,      10,     11,     12,     13,     14,     15,     B,      B,
    B,      B,      B,      B,      B,      B,      B,                      /* '`' - 'o' */
    H16(B), H16(B), H16(B), H16(B), H16(B), H16(B), H16(B), H16(B), H16(B), /* 'p' - 0xff */
};
#undef B
#undef H16

int hex_decode(const char *text, size_t n, uint8_t *out)
{
    const unsigned char *d = (const unsigned char *)text;
    uint8_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t hi = hex_values[d[2 * i]], lo = hex_values[d[2 * i + 1]];
        bad |= hi | lo;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return bad & HEX_BAD ? -1 : 0;
}

void hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}
