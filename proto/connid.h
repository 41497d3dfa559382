/* SPDX-License-Identifier: MIT */
/* connid: BEP 15 connection ids that any gateway holding the same secret can check, with no
 * shared state.
 *
 * id = SipHash-2-4(key(epoch), client address as 16 bytes || time bucket). The client's port is
 * left out on purpose: clients and load testers reuse one id across source ports. The key of a
 * bucket is derived from the secret and the rotation epoch the bucket falls in (BLAKE2b keyed by
 * the secret), so keys rotate on every gateway at the same moment without talking, and an id
 * minted just before a rotation is checked with the previous key. An id is accepted while
 * now - issue_time <= lifetime + grace (bucket granularity: it can be up to one bucket older).
 *
 * A connid_t caches the derived keys and is therefore not thread-safe: one per worker. */
#ifndef SHOAL_CONNID_H
#define SHOAL_CONNID_H

#include <stdbool.h>
#include <stdint.h>

#define CONNID_SECRET_LEN 32

typedef struct connid connid_t;

typedef struct {
    uint32_t lifetime_s; /* how long an id is good for; BEP 15 says 2 minutes (120) */
    uint32_t grace_s;    /* extra time accepted for clients that keep ids longer (default 180) */
    uint32_t bucket_s;   /* time bucket length (default 30) */
    uint32_t rotate_s;   /* key rotation period (default 86400); a multiple of bucket_s */
} connid_config_t;

/* Defaults: lifetime 120, grace 180, bucket 30, rotate 86400. */
extern const connid_config_t connid_default_config;

/* Create a checker from a 32-byte secret (copied). cfg NULL means the defaults. Returns NULL if
 * memory runs out, libsodium cannot start, or cfg is inconsistent (zero bucket, zero rotate,
 * rotate not a multiple of bucket, or (lifetime + grace) / bucket + 2 > 4096: a check tries every
 * bucket of its window, so the window is bounded to keep rejecting a bad id cheap). */
connid_t *connid_new(const uint8_t secret[CONNID_SECRET_LEN], const connid_config_t *cfg);

/* Free and set *self_p to NULL. NULL-safe. The secret is wiped. */
void connid_destroy(connid_t **self_p);

/* The id for a client at addr16 (IPv6 or IPv4-mapped) at time now (seconds, any epoch shared by
 * the cluster, normally wall-clock time). */
uint64_t connid_issue(connid_t *self, const uint8_t addr16[16], uint64_t now);

/* True if id was issued to addr16 at most lifetime + grace seconds before now. */
bool connid_check(connid_t *self, uint64_t id, const uint8_t addr16[16], uint64_t now);

/* Parse a secret given as 64 hex digits into out. Returns 0, or -1 if text is not exactly that. */
int connid_secret_from_hex(const char *text, uint8_t out[CONNID_SECRET_LEN]);

/* The fingerprint of a secret, for gateways to compare theirs without revealing it: BLAKE2b-64
 * keyed by the secret over the ASCII text CONNID_FINGERPRINT_MSG, as 16 lowercase hex digits and
 * a NUL. Equal secrets give equal fingerprints; the fingerprint says nothing usable about the
 * secret (a keyed hash of a 256-bit key). */
#define CONNID_FINGERPRINT_MSG "shoal connection-id secret fingerprint v1"
#define CONNID_FINGERPRINT_LEN 17
void connid_fingerprint(const uint8_t secret[CONNID_SECRET_LEN], char out[CONNID_FINGERPRINT_LEN]);

#endif
