/* SPDX-License-Identifier: MIT */
/* connid: stateless BEP 15 connection ids shared by every gateway holding the same secret.
 *
 * Time is cut into buckets of bucket_s seconds, numbered b = t / bucket_s; buckets are grouped
 * into rotation epochs e = b * bucket_s / rotate_s. The key of epoch e is
 * BLAKE2b-128(key = secret, message = e as 8 big-endian bytes), and
 *   id = SipHash-2-4(key(epoch(b)), addr16 || b as 8 big-endian bytes)
 * read as a little-endian 64-bit number (SipHash's own output order), so hosts of any byte order
 * agree on the value.
 *
 * Invariant: a cache slot marked valid holds exactly the key derived for its epoch; only the two
 * most useful epochs are kept, so a worker derives at most two keys per rotation. */
#include "connid.h"
#include "hex.h"

#include <endian.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* A check tries every bucket of its window, so rejecting a bad id costs one SipHash per bucket:
 * cap the window. 4096 still admits a day of grace with 30-second buckets (2886 buckets). */
#define MAX_WINDOW_BUCKETS 4096

typedef struct {
    bool valid;
    uint64_t epoch;
    uint8_t key[crypto_shorthash_KEYBYTES];
} epoch_key_t;

struct connid {
    uint8_t secret[CONNID_SECRET_LEN];
    connid_config_t cfg;
    uint64_t buckets_per_epoch;
    epoch_key_t cache[2];
};

const connid_config_t connid_default_config = {
    .lifetime_s = 120,
    .grace_s = 180,
    .bucket_s = 30,
    .rotate_s = 86400,
};

connid_t *connid_new(const uint8_t secret[CONNID_SECRET_LEN], const connid_config_t *cfg)
{
    if (!cfg)
        cfg = &connid_default_config;
    if (cfg->bucket_s == 0 || cfg->rotate_s == 0 || cfg->rotate_s % cfg->bucket_s != 0)
        return NULL;
    if (((uint64_t)cfg->lifetime_s + cfg->grace_s) / cfg->bucket_s + 2 > MAX_WINDOW_BUCKETS)
        return NULL;
    if (sodium_init() < 0)
        return NULL;
    connid_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    memcpy(self->secret, secret, CONNID_SECRET_LEN);
    self->cfg = *cfg;
    self->buckets_per_epoch = cfg->rotate_s / cfg->bucket_s;
    return self;
}

void connid_destroy(connid_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sodium_memzero(*self_p, sizeof(**self_p));
    free(*self_p);
    *self_p = NULL;
}

/* The key of epoch, from the cache or derived into the slot whose epoch is farthest from it
 * (normally the one before the previous epoch). */
static const uint8_t *epoch_key(connid_t *self, uint64_t epoch)
{
    for (int i = 0; i < 2; i++)
        if (self->cache[i].valid && self->cache[i].epoch == epoch)
            return self->cache[i].key;
    epoch_key_t *slot = &self->cache[0];
    if (self->cache[0].valid) {
        if (!self->cache[1].valid) {
            slot = &self->cache[1];
        } else {
            uint64_t e0 = self->cache[0].epoch, e1 = self->cache[1].epoch;
            uint64_t d0 = e0 > epoch ? e0 - epoch : epoch - e0;
            uint64_t d1 = e1 > epoch ? e1 - epoch : epoch - e1;
            if (d1 > d0)
                slot = &self->cache[1];
        }
    }
    uint8_t msg[8];
    uint64_t be = htobe64(epoch);
    memcpy(msg, &be, sizeof(msg));
    /* Cannot fail with these sizes (16-byte output, 32-byte key are within BLAKE2b's bounds). */
    crypto_generichash(slot->key, sizeof(slot->key), msg, sizeof(msg), self->secret,
                       sizeof(self->secret));
    slot->epoch = epoch;
    slot->valid = true;
    return slot->key;
}

static uint64_t id_for_bucket(connid_t *self, const uint8_t addr16[16], uint64_t bucket)
{
    uint8_t msg[16 + 8];
    memcpy(msg, addr16, 16);
    uint64_t be = htobe64(bucket);
    memcpy(msg + 16, &be, sizeof(be));
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, msg, sizeof(msg), epoch_key(self, bucket / self->buckets_per_epoch));
    uint64_t id;
    memcpy(&id, h, sizeof(id));
    return le64toh(id);
}

uint64_t connid_issue(connid_t *self, const uint8_t addr16[16], uint64_t now)
{
    return id_for_bucket(self, addr16, now / self->cfg.bucket_s);
}

bool connid_check(connid_t *self, uint64_t id, const uint8_t addr16[16], uint64_t now)
{
    uint64_t bs = self->cfg.bucket_s;
    uint64_t cur = now / bs;
    /* Oldest bucket b whose start b * bs is >= now - lifetime - grace - bs: its ids were issued
     * at most lifetime + grace + one bucket ago. */
    uint64_t span = (uint64_t)self->cfg.lifetime_s + self->cfg.grace_s + bs;
    uint64_t oldest = now > span ? (now - span + bs - 1) / bs : 0;
    /* Newest first: an id from the current bucket, the common case, costs one hash. */
    for (uint64_t b = cur;; b--) {
        if (id_for_bucket(self, addr16, b) == id)
            return true;
        if (b == oldest) /* oldest <= cur, as span >= bs */
            break;
    }
    /* Last, the next bucket: another gateway's clock may run slightly ahead of ours. */
    if (cur < UINT64_MAX && id_for_bucket(self, addr16, cur + 1) == id)
        return true;
    return false;
}

int connid_secret_from_hex(const char *text, uint8_t out[CONNID_SECRET_LEN])
{
    if (!text || strnlen(text, 2 * CONNID_SECRET_LEN + 1) != 2 * CONNID_SECRET_LEN)
        return -1;
    uint8_t tmp[CONNID_SECRET_LEN];
    if (hex_decode(text, CONNID_SECRET_LEN, tmp) != 0) {
        sodium_memzero(tmp, sizeof(tmp));
        return -1;
    }
    /* out is written only on success. */
    memcpy(out, tmp, sizeof(tmp));
    sodium_memzero(tmp, sizeof(tmp));
    return 0;
}

void connid_fingerprint(const uint8_t secret[CONNID_SECRET_LEN], char out[CONNID_FINGERPRINT_LEN])
{
    uint8_t h[8];
    crypto_generichash(h, sizeof(h), (const unsigned char *)CONNID_FINGERPRINT_MSG,
                       sizeof(CONNID_FINGERPRINT_MSG) - 1, secret, CONNID_SECRET_LEN);
    sodium_bin2hex(out, CONNID_FINGERPRINT_LEN, h, sizeof(h));
}
