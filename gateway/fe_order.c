/* SPDX-License-Identifier: MIT */
/* fe_order: the pipeline order store of one HTTP connection (contract in fe_order.h).
 *
 * The store is one block: a bitmap of the places holding an answer, a bitmap of those that end
 * the connection, each place's offset and length, then the bytes. Answers are appended; one that
 * leaves leaves a hole, and when the bytes run out of room the live answers are compacted into a
 * new block twice their size. Invariant: bytes == the sum of len[i] over the places in ready, and
 * every ready answer lies inside data[0..used). */
#include "fe_order.h"
#include "fe_internal.h" /* fe_malloc, fe_free: the front end's allocation seam */

#include <string.h>

_Static_assert(FE_ORDER_DEPTH <= 32 && (FE_ORDER_DEPTH & (FE_ORDER_DEPTH - 1)) == 0,
               "one bit per place, in a u32");

#define STORE_MIN 4096 /* the first block's bytes: most answers are a few hundred */

struct fe_order_store {
    uint32_t ready; /* bit per place: an answer is held there */
    uint32_t last;  /* bit per place: that answer ends the connection */
    uint32_t off[FE_ORDER_DEPTH], len[FE_ORDER_DEPTH];
    uint32_t used, cap; /* data[0..used) written, of cap; answers gone leave holes */
    uint32_t bytes;     /* held now: sum of len over ready places */
    char data[];
};

static inline unsigned place(uint32_t seq)
{
    return seq & (FE_ORDER_DEPTH - 1);
}

void fe_order_init(fe_order_t *self)
{
    assert(!self->store);
    self->seq_next = self->seq_out = 0;
    self->finished = false;
}

size_t fe_order_held(const fe_order_t *self)
{
    return self->store ? self->store->bytes : 0;
}

/* A block of cap bytes holding the live answers of old (which may be NULL). */
static fe_order_store_t *store_new(const fe_order_store_t *old, size_t cap)
{
    fe_order_store_t *s = fe_malloc(sizeof(*s) + cap);
    if (!s)
        return NULL;
    s->ready = s->last = 0;
    s->used = s->bytes = 0;
    s->cap = (uint32_t)cap;
    if (!old)
        return s;
    for (unsigned i = 0; i < FE_ORDER_DEPTH; i++) {
        if (!(old->ready & (1u << i)))
            continue;
        memcpy(s->data + s->used, old->data + old->off[i], old->len[i]);
        s->off[i] = s->used;
        s->len[i] = old->len[i];
        s->used += old->len[i];
    }
    s->ready = old->ready;
    s->last = old->last;
    s->bytes = old->bytes;
    return s;
}

fe_order_put_t fe_order_hold(fe_order_t *self, uint32_t seq, const char *data, size_t len,
                             bool last, size_t room)
{
    /* A number not taken, or answered already, is the caller's bug. */
    assert(seq - self->seq_out < fe_order_in_flight(self));
    fe_order_store_t *s = self->store;
    size_t held = fe_order_held(self);
    if (held + len > room)
        return FE_ORDER_FULL;
    if (!s || s->used + len > s->cap) {
        size_t need = held + len;
        size_t cap = s ? 2 * need : (len < STORE_MIN ? STORE_MIN : len);
        fe_order_store_t *n = store_new(s, cap);
        if (!n)
            return FE_ORDER_NOMEM;
        fe_free(s);
        self->store = s = n;
    }
    unsigned i = place(seq);
    assert(!(s->ready & (1u << i)));
    memcpy(s->data + s->used, data, len);
    s->off[i] = s->used;
    s->len[i] = (uint32_t)len;
    s->used += (uint32_t)len;
    s->bytes += (uint32_t)len;
    s->ready |= 1u << i;
    if (last)
        s->last |= 1u << i;
    return FE_ORDER_HELD;
}

bool fe_order_next(fe_order_t *self, const char **data, size_t *len, bool *last)
{
    fe_order_store_t *s = self->store;
    while (s) {
        if (s->ready == 0) {
            /* Emptied by the previous call, whose bytes the caller has used by now. */
            fe_free(s);
            self->store = NULL;
            return false;
        }
        unsigned i = place(self->seq_out);
        uint32_t bit = 1u << i;
        if (!(s->ready & bit))
            return false;
        s->ready &= ~bit;
        s->bytes -= s->len[i];
        bool ends = (s->last & bit) != 0;
        s->last &= ~bit;
        self->seq_out++;
        if (self->finished)
            continue; /* behind an answer that ended the connection */
        self->finished = ends;
        *data = s->data + s->off[i];
        *len = s->len[i];
        *last = ends;
        return true;
    }
    return false;
}

void fe_order_clear(fe_order_t *self)
{
    fe_free(self->store);
    self->store = NULL;
}
