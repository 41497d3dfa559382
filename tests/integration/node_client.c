/* SPDX-License-Identifier: MIT */
/* shoal-node-client: a line-driven DEALER client for shoal-node, used by test_node.py. It encodes
 * request batches with cmsg (the same encoder a gateway uses), sends raw frames for garbage
 * tests, and prints each reply batch as one JSON line.
 *
 *   shoal-node-client tcp://HOST:PORT [timeout_ms]
 * stdin, one command a line:
 *   send BATCH_ID [REQ[;REQ...]]     one request batch; prints its reply (or {"timeout":true})
 *     REQ = a ID HASH40 PEERID40 IP PORT EVENT LEFT NUMWANT      (announce; IP v4 or v6)
 *         | s ID HASH40[,HASH40...]                              (scrape)
 *   raw HEX|-                        one frame with these bytes; prints {"sent":true}
 *   frames HEX|- HEX|- ...           one message of several frames; prints {"sent":true}
 *   zeros N                          one frame of N zero bytes; prints {"sent":true}
 *   wait MS                          prints the next reply within MS, or {"timeout":true}
 *   lookup HASH40 [OFFSET [MAX]]     one admin lookup through lookup_remote() (its own socket);
 *                                    prints {"status":"ok","found":..,"peers":[..]}, moved,
 *                                    error, {"timeout":true} or {"failed":"..."}
 * Anything malformed prints {"bad":"..."}; the tool never guesses. */
#include "cmsg.h"
#include "lookup.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static cmsg_request_batch_t req_batch;
static cmsg_reply_batch_t rep_batch;
static uint8_t hashes[CMSG_BATCH_MAX][SHOAL_SCRAPE_MAX * SHOAL_HASH_LEN];
static uint8_t out[CMSG_REQUEST_BATCH_BOUND];
static swarm_stats_t arena[CMSG_BATCH_MAX * SHOAL_SCRAPE_MAX];

static int unhex(const char *s, uint8_t *dst, size_t cap, size_t *n)
{
    size_t len = strlen(s);
    if (strcmp(s, "-") == 0) {
        *n = 0;
        return 0;
    }
    if (len % 2 || len / 2 > cap)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        dst[i] = (uint8_t)v;
    }
    *n = len / 2;
    return 0;
}

static int parse_request(char *text, cmsg_request_t *r, uint8_t *hbuf)
{
    char *save = NULL;
    char *kind = strtok_r(text, " ", &save);
    char *id = strtok_r(NULL, " ", &save);
    if (!kind || !id)
        return -1;
    memset(r, 0, sizeof(*r));
    r->id = (uint32_t)strtoul(id, NULL, 10);
    size_t n;
    if (strcmp(kind, "s") == 0) {
        char *list = strtok_r(NULL, " ", &save);
        if (!list)
            return -1;
        r->kind = CMSG_SCRAPE;
        size_t k = 0;
        char *s2 = NULL;
        for (char *h = strtok_r(list, ",", &s2); h; h = strtok_r(NULL, ",", &s2)) {
            if (k >= SHOAL_SCRAPE_MAX || unhex(h, hbuf + k * SHOAL_HASH_LEN, SHOAL_HASH_LEN, &n) ||
                n != SHOAL_HASH_LEN)
                return -1;
            k++;
        }
        r->hashes = hbuf;
        r->n_hashes = k;
        return 0;
    }
    if (strcmp(kind, "a") != 0)
        return -1;
    char *f[7];
    for (int i = 0; i < 7; i++) {
        f[i] = strtok_r(NULL, " ", &save);
        if (!f[i])
            return -1;
    }
    announce_t *a = &r->announce;
    r->kind = CMSG_ANNOUNCE;
    if (unhex(f[0], a->info_hash, SHOAL_HASH_LEN, &n) || n != SHOAL_HASH_LEN)
        return -1;
    if (unhex(f[1], a->peer_id, SHOAL_HASH_LEN, &n) || n != SHOAL_HASH_LEN)
        return -1;
    if (inet_pton(AF_INET, f[2], a->peer.addr) == 1) {
        a->peer.family = 4;
    } else if (inet_pton(AF_INET6, f[2], a->peer.addr) == 1) {
        a->peer.family = 6;
    } else {
        return -1;
    }
    a->peer.port = (uint16_t)strtoul(f[3], NULL, 10);
    a->event = (announce_event_t)strtoul(f[4], NULL, 10);
    a->left = strtoull(f[5], NULL, 10);
    a->numwant = (int32_t)strtol(f[6], NULL, 10);
    return 0;
}

static void print_peers(const uint8_t *p, size_t n, int family)
{
    char ip[INET6_ADDRSTRLEN];
    size_t rec = family == 6 ? SHOAL_PEER6_LEN : SHOAL_PEER4_LEN;
    for (size_t i = 0; i < n; i++, p += rec) {
        inet_ntop(family == 6 ? AF_INET6 : AF_INET, p, ip, sizeof(ip));
        unsigned port = (unsigned)p[rec - 2] << 8 | p[rec - 1];
        printf("%s\"%s%s%s:%u\"", i ? "," : "", family == 6 ? "[" : "", ip, family == 6 ? "]" : "",
               port);
    }
}

static void print_reply(const uint8_t *buf, size_t len)
{
    cmsg_err_t e = cmsg_decode_replies(buf, len, &rep_batch, arena, sizeof(arena) / 12);
    if (e != CMSG_OK) {
        printf("{\"undecodable\":\"%s\"}\n", cmsg_strerror(e));
        return;
    }
    printf("{\"batch_id\":%" PRIu64 ",\"epoch\":%" PRIu64 ",\"replies\":[", rep_batch.batch_id,
           rep_batch.epoch);
    for (size_t i = 0; i < rep_batch.n; i++) {
        const cmsg_reply_t *r = &rep_batch.rep[i];
        printf("%s{\"id\":%" PRIu32 ",", i ? "," : "", r->id);
        if (r->status == CMSG_STATUS_MOVED) {
            printf("\"status\":\"moved\",\"epoch\":%" PRIu64 "}", r->epoch);
        } else if (r->status == CMSG_STATUS_ERROR) {
            printf("\"status\":\"error\",\"error\":\"");
            for (const char *c = r->error; *c; c++)
                printf(*c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
            printf("\"}");
        } else if (r->kind == CMSG_ANNOUNCE) {
            printf("\"status\":\"ok\",\"kind\":\"announce\",\"seeders\":%u,\"leechers\":%u,"
                   "\"downloaded\":%u,\"family\":%u,\"peers\":[",
                   r->stats.seeders, r->stats.leechers, r->stats.downloaded, r->family);
            print_peers(r->peers, r->n_peers, r->family);
            printf("]}");
        } else {
            printf("\"status\":\"ok\",\"kind\":\"scrape\",\"stats\":[");
            for (size_t k = 0; k < r->n_scrape; k++)
                printf("%s[%u,%u,%u]", k ? "," : "", r->scrape[k].seeders, r->scrape[k].leechers,
                       r->scrape[k].downloaded);
            printf("]}");
        }
    }
    printf("]}\n");
}

static cmsg_lookup_reply_t lookup_rep;

static void do_lookup(void *ctx, const char *endpoint, char *save, int timeout_ms)
{
    char *hex = strtok_r(NULL, " ", &save);
    char *off = strtok_r(NULL, " ", &save);
    char *max = strtok_r(NULL, " ", &save);
    uint8_t ih[SHOAL_HASH_LEN];
    size_t n;
    if (!hex || unhex(hex, ih, sizeof(ih), &n) || n != SHOAL_HASH_LEN) {
        printf("{\"bad\":\"lookup needs a 40-hex info-hash\"}\n");
        return;
    }
    char err[256] = "";
    lookup_status_t st =
        lookup_remote(ctx, NULL, endpoint, ih, off ? (uint32_t)strtoul(off, NULL, 10) : 0,
                      max ? (uint32_t)strtoul(max, NULL, 10) : 50, (uint32_t)timeout_ms,
                      &lookup_rep, err, sizeof(err));
    const cmsg_lookup_result_t *x = &lookup_rep.result;
    switch (st) {
    case LOOKUP_OK:
        printf("{\"status\":\"ok\",\"epoch\":%" PRIu64 ",\"found\":%s,\"seeders\":%u,"
               "\"leechers\":%u,\"downloaded\":%u,\"total\":%u,\"offset\":%u,\"peers\":[",
               lookup_rep.epoch, x->found ? "true" : "false", x->stats.seeders, x->stats.leechers,
               x->stats.downloaded, x->total, x->offset);
        for (size_t i = 0; i < x->n_peers; i++) {
            const cmsg_lookup_peer_t *p = &x->peers[i];
            char ip[INET6_ADDRSTRLEN];
            inet_ntop(p->family == 6 ? AF_INET6 : AF_INET, p->addr, ip, sizeof(ip));
            printf("%s{\"addr\":\"%s%s%s:%u\",\"seeder\":%s,\"age\":%" PRIu32 "}", i ? "," : "",
                   p->family == 6 ? "[" : "", ip, p->family == 6 ? "]" : "", p->port,
                   p->seeder ? "true" : "false", p->age_s);
        }
        printf("]}\n");
        break;
    case LOOKUP_MOVED:
        printf("{\"status\":\"moved\",\"epoch\":%" PRIu64 "}\n", lookup_rep.epoch);
        break;
    case LOOKUP_NODE_ERROR:
        printf("{\"status\":\"error\"}\n");
        break;
    case LOOKUP_TIMEOUT:
        printf("{\"timeout\":true}\n");
        break;
    case LOOKUP_FAILED:
        printf("{\"failed\":\"");
        for (const char *c = err; *c; c++)
            printf(*c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
        printf("\"}\n");
        break;
    }
}

static void wait_reply(void *sock, int timeout_ms)
{
    zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0) {
        printf("{\"timeout\":true}\n");
        return;
    }
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, sock, 0) < 0) {
        printf("{\"timeout\":true}\n");
        zmq_msg_close(&msg);
        return;
    }
    if (zmq_msg_more(&msg)) {
        printf("{\"undecodable\":\"more than one frame\"}\n");
        while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, sock, 0) >= 0)
            ;
    } else {
        print_reply(zmq_msg_data(&msg), zmq_msg_size(&msg));
    }
    zmq_msg_close(&msg);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: shoal-node-client tcp://HOST:PORT [timeout_ms] < commands\n");
        return 2;
    }
    int timeout_ms = argc > 2 ? atoi(argv[2]) : 3000;
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
    if (zmq_connect(sock, argv[1]) != 0) {
        fprintf(stderr, "connect %s: %s\n", argv[1], zmq_strerror(zmq_errno()));
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    static char line[1 << 20];
    static uint8_t frame[1 << 16];
    while (fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\r\n")] = '\0';
        char *save = NULL;
        char *cmd = strtok_r(line, " ", &save);
        if (!cmd)
            continue;
        if (strcmp(cmd, "send") == 0) {
            char *bid = strtok_r(NULL, " ", &save);
            char *rest = save && *save ? save : NULL;
            if (!bid) {
                printf("{\"bad\":\"send needs a batch id\"}\n");
                continue;
            }
            memset(&req_batch, 0, sizeof(req_batch));
            req_batch.batch_id = strtoull(bid, NULL, 10);
            bool ok = true;
            char *s2 = NULL;
            for (char *r = rest ? strtok_r(rest, ";", &s2) : NULL; r && ok;
                 r = strtok_r(NULL, ";", &s2)) {
                if (req_batch.n >= CMSG_BATCH_MAX ||
                    parse_request(r, &req_batch.req[req_batch.n], hashes[req_batch.n]) != 0)
                    ok = false;
                else
                    req_batch.n++;
            }
            ssize_t len = ok ? cmsg_encode_requests(&req_batch, out, sizeof(out)) : -1;
            if (len < 0) {
                printf("{\"bad\":\"request\"}\n");
                continue;
            }
            zmq_send(sock, out, (size_t)len, 0);
            wait_reply(sock, timeout_ms);
        } else if (strcmp(cmd, "raw") == 0 || strcmp(cmd, "frames") == 0) {
            char *parts[16];
            int np = 0;
            for (char *p = strtok_r(NULL, " ", &save); p && np < 16; p = strtok_r(NULL, " ", &save))
                parts[np++] = p;
            /* Check every part first: a half-sent multipart message would glue onto the next. */
            bool ok = np > 0;
            size_t n;
            for (int i = 0; i < np && ok; i++)
                ok = unhex(parts[i], frame, sizeof(frame), &n) == 0;
            for (int i = 0; i < np && ok; i++) {
                unhex(parts[i], frame, sizeof(frame), &n);
                zmq_send(sock, frame, n, i + 1 < np ? ZMQ_SNDMORE : 0);
            }
            printf(ok ? "{\"sent\":true}\n" : "{\"bad\":\"hex\"}\n");
        } else if (strcmp(cmd, "zeros") == 0) {
            char *num = strtok_r(NULL, " ", &save);
            size_t n = num ? strtoull(num, NULL, 10) : 0;
            uint8_t *z = calloc(1, n ? n : 1);
            if (!z || zmq_send(sock, z, n, 0) < 0)
                printf("{\"bad\":\"send\"}\n");
            else
                printf("{\"sent\":true}\n");
            free(z);
        } else if (strcmp(cmd, "lookup") == 0) {
            do_lookup(ctx, argv[1], save, timeout_ms);
        } else if (strcmp(cmd, "wait") == 0) {
            char *ms = strtok_r(NULL, " ", &save);
            wait_reply(sock, ms ? atoi(ms) : timeout_ms);
        } else {
            printf("{\"bad\":\"unknown command\"}\n");
        }
    }
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return 0;
}
