/* SPDX-License-Identifier: MIT */
/* lgbenc: a small, bounded bencode validator for tracker replies (BEP 3, 23, 48), written for
 * the load generator independently of shoal's own encoder.
 *
 * Invariant: never reads outside [body, body + len), recursion is capped at LGBENC_MAX_DEPTH,
 * every loop consumes at least one byte per turn, and LGBENC_OK means the whole body is one
 * canonical value (integers without leading zeros or -0, dictionary keys strictly sorted)
 * carrying the keys a tracker reply must have. Pure code: no I/O, no globals, no allocation. */
#ifndef SHOAL_LGBENC_H
#define SHOAL_LGBENC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LGBENC_MAX_DEPTH 16

typedef enum {
    LGBENC_OK = 0,
    LGBENC_FAILURE,     /* well-formed, with a "failure reason": the tracker refused */
    LGBENC_MALFORMED,   /* not bencode, or not canonical */
    LGBENC_TOO_DEEP,    /* nesting beyond LGBENC_MAX_DEPTH */
    LGBENC_TRAILING,    /* bytes after the top-level value */
    LGBENC_UNSORTED,    /* dictionary keys not strictly ascending, or repeated */
    LGBENC_NOT_DICT,    /* top level is not a dictionary */
    LGBENC_MISSING_KEY, /* announce without interval or peers, scrape without files */
    LGBENC_BAD_TYPE,    /* a known key holds the wrong type */
    LGBENC_BAD_PEERS,   /* compact peers not a multiple of 6 (peers6: 18), bad peer dict */
    LGBENC_IMPLAUSIBLE, /* counts out of range, more peers than asked, more files than asked */
} lgbenc_verdict_t;

/* What a checked reply carried. Pointers borrow the body. */
typedef struct {
    int64_t interval;
    int64_t complete;   /* -1 if absent */
    int64_t incomplete; /* -1 if absent */
    size_t n_peers;     /* IPv4 (compact or dictionary) */
    size_t n_peers6;
    size_t n_files;      /* scrape */
    bool files_unsorted; /* scrape "files" keys out of order: tolerated, see lgbenc_check_scrape */
    const uint8_t *failure;
    size_t failure_len;
} lgbenc_info_t;

/* Validate the single value that starts at buf[0]; *end receives its length. Does not require
 * the value to fill buf. */
lgbenc_verdict_t lgbenc_value(const uint8_t *buf, size_t len, size_t *end);

/* Check an announce reply body: a dictionary with "interval" (int) and "peers" (string whose
 * length is a multiple of 6, or a list of {ip, port} dictionaries), optional "peers6" (multiple
 * of 18), "complete", "incomplete"; or a "failure reason" (LGBENC_FAILURE). numwant bounds
 * the number of peers per family. */
lgbenc_verdict_t lgbenc_check_announce(const uint8_t *body, size_t len, int32_t numwant,
                                       lgbenc_info_t *out);

/* Check a scrape reply body: a dictionary with "files", a dictionary of at most n_requested
 * 20-byte keys each mapping to a dictionary with integer "complete" and "incomplete"; or a
 * "failure reason" (LGBENC_FAILURE). The one relaxation of canonical form: "files" keys may
 * come in any order (opentracker writes them in request order; clients accept it), which sets
 * out->files_unsorted; a repeated key is still LGBENC_UNSORTED. */
lgbenc_verdict_t lgbenc_check_scrape(const uint8_t *body, size_t len, unsigned n_requested,
                                     lgbenc_info_t *out);

/* A short static name for the verdict. */
const char *lgbenc_strverdict(lgbenc_verdict_t v);

#endif
