/* SPDX-License-Identifier: MIT */
/* proxyv2: the PROXY protocol version 2 header (proxyv2.h). */
#include "proxyv2.h"

#include <string.h>

static const uint8_t signature[PROXYV2_SIG_LEN] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

enum { CMD_LOCAL = 0x0, CMD_PROXY = 0x1 };
enum { FAM_UNSPEC = 0x0, FAM_INET = 0x1, FAM_INET6 = 0x2, FAM_UNIX = 0x3 };
enum { TR_UNSPEC = 0x0, TR_STREAM = 0x1, TR_DGRAM = 0x2 };

bool proxyv2_has_signature(const uint8_t *buf, size_t len)
{
    size_t n = len < PROXYV2_SIG_LEN ? len : PROXYV2_SIG_LEN;
    return memcmp(buf, signature, n) == 0;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

proxyv2_err_t proxyv2_parse(const uint8_t *buf, size_t len, size_t max_len, proxyv2_t *out)
{
    if (!proxyv2_has_signature(buf, len))
        return PROXYV2_ERR_SIGNATURE;
    /* Version and command are checked as soon as their byte is there, so a stream that is not
     * a header is told so without waiting for bytes that may never come. */
    if (len > PROXYV2_SIG_LEN) {
        uint8_t vc = buf[12];
        if (vc >> 4 != 2)
            return PROXYV2_ERR_VERSION;
        if ((vc & 0x0F) != CMD_LOCAL && (vc & 0x0F) != CMD_PROXY)
            return PROXYV2_ERR_COMMAND;
    }
    if (len > PROXYV2_SIG_LEN + 1) {
        uint8_t ft = buf[13];
        if (ft >> 4 > FAM_UNIX || (ft & 0x0F) > TR_DGRAM)
            return PROXYV2_ERR_FAMILY;
    }
    if (max_len > PROXYV2_MAX_LEN)
        max_len = PROXYV2_MAX_LEN;
    if (len < PROXYV2_HEAD_LEN)
        return PROXYV2_NEED_MORE;
    size_t total = PROXYV2_HEAD_LEN + (size_t)be16(buf + 14);
    if (total > max_len)
        return PROXYV2_ERR_TOO_LONG;
    uint8_t cmd = buf[12] & 0x0F, fam = buf[13] >> 4, tr = buf[13] & 0x0F;
    size_t need = fam == FAM_INET ? 12 : fam == FAM_INET6 ? 36 : fam == FAM_UNIX ? 216 : 0;
    /* LOCAL may carry anything (the receiver ignores it), but a PROXY header whose length cannot
     * hold its own addresses is broken. */
    if (cmd == CMD_PROXY && total - PROXYV2_HEAD_LEN < need)
        return PROXYV2_ERR_ADDRESS;
    if (len < total)
        return PROXYV2_NEED_MORE;

    memset(out, 0, sizeof(*out));
    out->header_len = total;
    out->dgram = tr == TR_DGRAM;
    out->local = cmd == CMD_LOCAL || tr == TR_UNSPEC || (fam != FAM_INET && fam != FAM_INET6);
    if (out->local)
        return PROXYV2_OK;
    const uint8_t *a = buf + PROXYV2_HEAD_LEN;
    if (fam == FAM_INET) {
        out->src.family = out->dst.family = 4;
        memcpy(out->src.addr, a, 4);
        memcpy(out->dst.addr, a + 4, 4);
        out->src.port = be16(a + 8);
        out->dst.port = be16(a + 10);
    } else {
        announce_endpoint_from16(&out->src, a);
        announce_endpoint_from16(&out->dst, a + 16);
        out->src.port = be16(a + 32);
        out->dst.port = be16(a + 34);
    }
    return PROXYV2_OK;
}

const char *proxyv2_strerror(proxyv2_err_t err)
{
    switch (err) {
    case PROXYV2_OK:
        return "ok";
    case PROXYV2_NEED_MORE:
        return "incomplete PROXY v2 header";
    case PROXYV2_ERR_SIGNATURE:
        return "no PROXY v2 signature";
    case PROXYV2_ERR_VERSION:
        return "PROXY header version is not 2";
    case PROXYV2_ERR_COMMAND:
        return "PROXY v2 command is neither LOCAL nor PROXY";
    case PROXYV2_ERR_FAMILY:
        return "PROXY v2 address family or transport is invalid";
    case PROXYV2_ERR_ADDRESS:
        return "PROXY v2 length too short for its addresses";
    case PROXYV2_ERR_TOO_LONG:
        return "PROXY v2 header longer than 512 bytes";
    }
    return "unknown PROXY v2 error";
}
