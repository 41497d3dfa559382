/* SPDX-License-Identifier: MIT */
/* ops_curve: CURVE's logs, metrics and reload for the daemons (ops_curve.h). */
#include "ops_curve.h"

#include "backoff.h"
#include "mono.h"
#include "slog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char id[PARTITION_ID_MAX];
    char advert[PARTITION_ENDPOINT_MAX];
    curve_node_t verdict;
} seen_t;

struct ops_curve {
    curve_t *curve;
    const char *role;
    bool node;
    /* A node's refusal log (main thread only). */
    backoff_t backoff;
    uint64_t logged;
    /* A gateway's judged nodes, under lock. */
    pthread_mutex_t lock;
    seen_t *seen;
    size_t n_seen;
    _Atomic uint64_t refused_nodes[CURVE_NODE_BAD_KEY + 1];
};

ops_curve_t *ops_curve_new(curve_t *curve, const char *role)
{
    ops_curve_t *self = calloc(1, sizeof(*self));
    if (!self)
        return NULL;
    self->curve = curve;
    self->role = role;
    self->node = strcmp(role, "shoal-node") == 0;
    self->backoff = (backoff_t){.first_ms = 1000, .max_ms = 64000};
    pthread_mutex_init(&self->lock, NULL);
    if (!self->node && !(self->seen = calloc(PARTITION_MEMBERS_MAX, sizeof(*self->seen)))) {
        ops_curve_destroy(&self);
        return NULL;
    }
    return self;
}

void ops_curve_destroy(ops_curve_t **self_p)
{
    ops_curve_t *self = *self_p;
    if (!self)
        return;
    pthread_mutex_destroy(&self->lock);
    free(self->seen);
    free(self);
    *self_p = NULL;
}

void ops_curve_tick(ops_curve_t *self)
{
    if (!self->curve)
        return;
    curve_refusals_t r;
    curve_refusals(self->curve, &r);
    uint64_t total = r.auth + r.protocol;
    int64_t now = mono_ms();
    if (total == self->logged) {
        if (backoff_quiet(&self->backoff, now))
            backoff_ok(&self->backoff);
        return;
    }
    if (!backoff_due(&self->backoff, now))
        return;
    char last[160] = "";
    if (r.auth > 0)
        snprintf(last, sizeof(last), "; last untrusted key %s from %s", r.last_key, r.last_address);
    slog_msg(SLOG_WARN,
             "CURVE: refused %llu connections (%llu total: %llu with an untrusted key, %llu "
             "without CURVE or not ZeroMQ)%s",
             (unsigned long long)(total - self->logged), (unsigned long long)total,
             (unsigned long long)r.auth, (unsigned long long)r.protocol, last);
    self->logged = total;
}

/* The remembered slot of id, a free one, or NULL when the table is full. Under lock. */
static seen_t *seen_slot(ops_curve_t *self, const char *id)
{
    for (size_t i = 0; i < self->n_seen; i++) {
        if (strcmp(self->seen[i].id, id) == 0)
            return &self->seen[i];
    }
    if (self->n_seen == PARTITION_MEMBERS_MAX)
        return NULL;
    seen_t *s = &self->seen[self->n_seen++];
    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%s", id);
    return s;
}

void ops_curve_table(ops_curve_t *self, const partition_table_t *table)
{
    if (self->node || !table)
        return;
    pthread_mutex_lock(&self->lock);
    size_t n = partition_table_count(table);
    for (size_t i = 0; i < n; i++) {
        const partition_member_t *m = partition_table_member(table, i);
        members_advert_t a;
        curve_node_t v = curve_check_node(self->curve, m->endpoint, &a);
        const char *ep = a.endpoint, *key = a.key;
        seen_t *s = seen_slot(self, m->id);
        bool fresh = !s || strcmp(s->advert, m->endpoint) != 0 || s->verdict != v;
        if (!fresh)
            continue;
        if (v != CURVE_NODE_OK) {
            atomic_fetch_add_explicit(&self->refused_nodes[v], 1, memory_order_relaxed);
            slog_msg(SLOG_ERROR, "CURVE: not connecting to node %s at %s: %s%s%s", m->id, ep,
                     curve_node_strerror(v), *key ? "; its key: " : "", key);
        } else if (s && *s->advert && s->verdict != CURVE_NODE_OK) {
            slog_msg(SLOG_INFO, "CURVE: node %s at %s accepted now", m->id, ep);
        }
        if (s) {
            snprintf(s->advert, sizeof(s->advert), "%s", m->endpoint);
            s->verdict = v;
        }
    }
    pthread_mutex_unlock(&self->lock);
}

void ops_curve_reload(ops_curve_t *self, const partition_table_t *table)
{
    if (!self->curve)
        return;
    char err[512];
    bool changed = false;
    int n = curve_reload(self->curve, &changed, err, sizeof(err));
    if (n < 0) {
        slog_msg(SLOG_ERROR, "CURVE reload failed, keeping the previous keys: %s", err);
        return;
    }
    size_t skipped = 0;
    curve_trusted(self->curve, &skipped);
    char pub[CURVE_KEY_TXT];
    curve_public(self->curve, pub);
    slog_msg(SLOG_INFO, "CURVE reload: %d trusted keys (%zu files skipped: not certificates)%s%s",
             n, skipped,
             changed ? (self->node ? "; a new certificate " : "; new certificate ") : "",
             changed ? pub : "");
    if (changed && self->node)
        slog_msg(SLOG_WARN, "CURVE: the certificate changed on disk: a node takes it at its next "
                            "restart (its socket keeps the old key until then)");
    ops_curve_table(self, table);
}

void ops_curve_metrics(metrics_t *m, ops_curve_t *self)
{
    metrics_family(m, "shoal_curve_refused_total", METRICS_COUNTER,
                   self->node ? "connections refused by CURVE, by reason (key: an untrusted "
                                "CURVE key; handshake: no CURVE, or not ZeroMQ at all)"
                              : "nodes this gateway refused to connect to, by reason (counted "
                                "once per node and advertised endpoint)");
    if (self->node) {
        curve_refusals_t r = {0};
        if (self->curve)
            curve_refusals(self->curve, &r);
        metrics_addu(m, "shoal_curve_refused_total", r.auth, "reason", "key", NULL);
        metrics_addu(m, "shoal_curve_refused_total", r.protocol, "reason", "handshake", NULL);
    } else {
        static const char *const reasons[] = {
            [CURVE_NODE_UNTRUSTED] = "untrusted",
            [CURVE_NODE_NO_KEY] = "no_key",
            [CURVE_NODE_NEEDS_CURVE] = "curve_required",
            [CURVE_NODE_BAD_KEY] = "bad_key",
        };
        for (int v = CURVE_NODE_UNTRUSTED; v <= CURVE_NODE_BAD_KEY; v++)
            metrics_addu(m, "shoal_curve_refused_total",
                         atomic_load_explicit(&self->refused_nodes[v], memory_order_relaxed),
                         "reason", reasons[v], NULL);
    }
    metrics_family(m, "shoal_curve_trusted_keys", METRICS_GAUGE,
                   "keys in --curve-trust (0: CURVE off)");
    metrics_addu(m, "shoal_curve_trusted_keys", self->curve ? curve_trusted(self->curve, NULL) : 0,
                 NULL);
}
