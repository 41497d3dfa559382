/* SPDX-License-Identifier: MIT */
/* lgudp: BEP 15 request encoding and reply checking; see lgudp.h. */
#include "lgudp.h"

#include <string.h>

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) << 32 | get32(p + 4);
}

size_t lgudp_connect(uint8_t *buf, size_t cap, uint32_t tid)
{
    if (cap < LGUDP_CONNECT_LEN)
        return 0;
    put64(buf, LGUDP_PROTOCOL_ID);
    put32(buf + 8, LGUDP_ACTION_CONNECT);
    put32(buf + 12, tid);
    return LGUDP_CONNECT_LEN;
}

size_t lgudp_announce(uint8_t *buf, size_t cap, uint64_t connection_id, uint32_t tid,
                      const lgwork_announce_t *a)
{
    if (cap < LGUDP_ANNOUNCE_LEN)
        return 0;
    put64(buf, connection_id);
    put32(buf + 8, LGUDP_ACTION_ANNOUNCE);
    put32(buf + 12, tid);
    memcpy(buf + 16, a->info_hash, 20);
    memcpy(buf + 36, a->peer.peer_id, 20);
    put64(buf + 56, a->downloaded);
    put64(buf + 64, a->left);
    put64(buf + 72, a->uploaded);
    put32(buf + 80, (uint32_t)a->event);
    put32(buf + 84, 0); /* ip: the tracker takes the source address */
    put32(buf + 88, a->peer.key);
    put32(buf + 92, (uint32_t)a->numwant);
    buf[96] = (uint8_t)(a->peer.port >> 8);
    buf[97] = (uint8_t)a->peer.port;
    return LGUDP_ANNOUNCE_LEN;
}

size_t lgudp_scrape(uint8_t *buf, size_t cap, uint64_t connection_id, uint32_t tid,
                    const lgwork_scrape_t *s)
{
    if (s->n < 1 || s->n > LGWORK_SCRAPE_MAX)
        return 0;
    size_t len = 16 + 20 * (size_t)s->n;
    if (cap < len)
        return 0;
    put64(buf, connection_id);
    put32(buf + 8, LGUDP_ACTION_SCRAPE);
    put32(buf + 12, tid);
    memcpy(buf + 16, s->hashes, 20 * (size_t)s->n);
    return len;
}

bool lgudp_peek_tid(const uint8_t *pkt, size_t len, uint32_t *tid)
{
    if (len < 8)
        return false;
    *tid = get32(pkt + 4);
    return true;
}

/* Counts travel as signed 32-bit in many implementations: above 2^31 is a sign bug. */
static bool plausible_count(uint32_t v)
{
    return v < 0x80000000u;
}

lgudp_verdict_t lgudp_check(const uint8_t *pkt, size_t len, const lgudp_expect_t *exp,
                            lgudp_reply_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len < 8)
        return LGUDP_TRUNCATED;
    out->action = get32(pkt);
    out->tid = get32(pkt + 4);
    if (out->tid != exp->tid)
        return LGUDP_BAD_TID;
    if (out->action == LGUDP_ACTION_ERROR) {
        out->message = pkt + 8;
        out->message_len = len - 8;
        return LGUDP_ERROR_REPLY;
    }
    if (out->action != exp->action)
        return LGUDP_BAD_ACTION;
    switch (out->action) {
    case LGUDP_ACTION_CONNECT:
        if (len < 16)
            return LGUDP_TRUNCATED;
        if (len != 16)
            return LGUDP_BAD_LENGTH;
        out->connection_id = get64(pkt + 8);
        return LGUDP_OK;
    case LGUDP_ACTION_ANNOUNCE: {
        if (len < 20)
            return LGUDP_TRUNCATED;
        size_t peer_len = exp->ipv6 ? 18 : 6;
        if ((len - 20) % peer_len != 0)
            return LGUDP_BAD_PEERS;
        out->interval = get32(pkt + 8);
        out->leechers = get32(pkt + 12);
        out->seeders = get32(pkt + 16);
        out->n_peers = (len - 20) / peer_len;
        if (out->interval == 0 || out->interval > 7 * 86400)
            return LGUDP_IMPLAUSIBLE;
        if (!plausible_count(out->leechers) || !plausible_count(out->seeders))
            return LGUDP_IMPLAUSIBLE;
        if (exp->numwant > 0 && out->n_peers > (size_t)exp->numwant)
            return LGUDP_IMPLAUSIBLE;
        if (out->n_peers > (size_t)out->leechers + out->seeders)
            return LGUDP_IMPLAUSIBLE;
        return LGUDP_OK;
    }
    case LGUDP_ACTION_SCRAPE:
        if (len < 8 + 12 * (size_t)exp->n_scrape)
            return LGUDP_TRUNCATED;
        if (len != 8 + 12 * (size_t)exp->n_scrape)
            return LGUDP_BAD_LENGTH;
        for (size_t i = 0; i < exp->n_scrape; i++) {
            const uint8_t *e = pkt + 8 + 12 * i;
            if (!plausible_count(get32(e)) || !plausible_count(get32(e + 4)) ||
                !plausible_count(get32(e + 8)))
                return LGUDP_IMPLAUSIBLE;
        }
        return LGUDP_OK;
    default:
        return LGUDP_BAD_ACTION;
    }
}

const char *lgudp_strverdict(lgudp_verdict_t v)
{
    switch (v) {
    case LGUDP_OK:
        return "ok";
    case LGUDP_ERROR_REPLY:
        return "error reply";
    case LGUDP_TRUNCATED:
        return "truncated";
    case LGUDP_BAD_ACTION:
        return "wrong action";
    case LGUDP_BAD_TID:
        return "wrong transaction id";
    case LGUDP_BAD_LENGTH:
        return "wrong length";
    case LGUDP_BAD_PEERS:
        return "peer block not a whole number of peers";
    case LGUDP_IMPLAUSIBLE:
        return "implausible counts";
    }
    return "unknown";
}

bool lgudp_is_connid_error(const uint8_t *msg, size_t len)
{
    static const char word[] = "connection";
    size_t wl = sizeof(word) - 1;
    for (size_t i = 0; i + wl <= len; i++) {
        size_t k = 0;
        while (k < wl) {
            uint8_t c = msg[i + k];
            if (c >= 'A' && c <= 'Z')
                c = (uint8_t)(c - 'A' + 'a');
            if (c != (uint8_t)word[k])
                break;
            k++;
        }
        if (k == wl)
            return true;
    }
    return false;
}
