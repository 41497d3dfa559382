/* SPDX-License-Identifier: MIT */
/* fuzz_loadgen: libFuzzer target for the load generator's reply parsers: the BEP 15 reply
 * check (lgudp), HTTP framing (lghttp) and the bencode checks (lgbenc). Every input goes
 * through all of them; the invariants asserted are the ones their headers promise (no read
 * past len, lengths they report stay inside the input). */
#include "lgbenc.h"
#include "lghttp.h"
#include "lgudp.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A heap copy of exactly size bytes, so ASan sees any read past the end. */
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);

    uint32_t tid = 0;
    if (lgudp_peek_tid(buf, size, &tid)) {
        for (uint32_t action = 0; action < 3; action++) {
            lgudp_expect_t e = {.action = action,
                                .tid = tid,
                                .n_scrape = size > 8 ? (unsigned)(buf[size - 1] % 75) : 1,
                                .numwant = 30,
                                .ipv6 = (size & 1) != 0};
            lgudp_reply_t r;
            lgudp_verdict_t v = lgudp_check(buf, size, &e, &r);
            if (v == LGUDP_ERROR_REPLY && r.message + r.message_len != buf + size)
                abort();
            if (v == LGUDP_OK && action == 1 && 20 + r.n_peers * (e.ipv6 ? 18 : 6) != size)
                abort();
        }
    }

    /* HTTP: frame pipelined replies until the input runs out. */
    size_t off = 0;
    for (int k = 0; k < 64 && off < size; k++) {
        lghttp_response_t resp;
        lghttp_frame_t f = lghttp_frame(buf + off, size - off, true, &resp);
        if (f != LGHTTP_COMPLETE)
            break;
        if (resp.total_len > size - off || resp.body_off + resp.body_len != resp.total_len)
            abort();
        lgbenc_info_t info;
        (void)lgbenc_check_announce(buf + off + resp.body_off, resp.body_len, 30, &info);
        (void)lgbenc_check_scrape(buf + off + resp.body_off, resp.body_len, 10, &info);
        off += resp.total_len;
        if (resp.total_len == 0)
            break;
    }

    /* Bencode directly on the input. */
    size_t end = 0;
    if (lgbenc_value(buf, size, &end) == LGBENC_OK && end > size)
        abort();
    lgbenc_info_t info;
    lgbenc_verdict_t v = lgbenc_check_announce(buf, size, 30, &info);
    if (v == LGBENC_FAILURE && (info.failure < buf || info.failure + info.failure_len > buf + size))
        abort();
    (void)lgbenc_check_scrape(buf, size, 74, &info);
    free(buf);
    return 0;
}
