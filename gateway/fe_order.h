/* SPDX-License-Identifier: MIT */
/* fe_order: puts the answers of one HTTP connection's pipelined requests back in request order.
 *
 * Requests of a connection are numbered as they are read (fe_order_take). Their answers may come
 * back in any order (a backend that answers later), but go out on the wire in number order. An
 * answer whose turn has come goes out at once and is never copied (always the case with an
 * in-process backend, which answers during submit); one that overtook an earlier answer is copied
 * into the connection's store until its turn. The store is allocated on the first such answer
 * and freed once it empties, so a connection whose answers come in order never allocates.
 *
 * Invariant: seq_out <= every number in flight < seq_next, at most FE_ORDER_DEPTH apart; each
 * held answer sits at place seq % FE_ORDER_DEPTH. After an answer that ends the connection
 * (`last`) has gone out, every later answer is dropped.
 *
 * fe_order_t is plain data embedded in the connection (its fields are read by the caller, and
 * written only here); the store behind it is private. Not thread-safe: one connection, one
 * thread. */
#ifndef SHOAL_FE_ORDER_H
#define SHOAL_FE_ORDER_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Requests of one connection in flight at once; a power of two, at most 32 (a bit per place). */
#define FE_ORDER_DEPTH 32

typedef struct fe_order_store fe_order_store_t;

typedef struct {
    uint32_t seq_next;       /* the number the next request read gets */
    uint32_t seq_out;        /* the request whose answer goes out next */
    bool finished;           /* an answer that ends the connection went out */
    fe_order_store_t *store; /* answers waiting for an earlier one; NULL when none */
} fe_order_t;

typedef enum {
    FE_ORDER_NOW,   /* its turn: the caller writes it now, then drains with fe_order_next() */
    FE_ORDER_HELD,  /* copied into the store until its turn */
    FE_ORDER_DROP,  /* an earlier answer ended the connection: drop it */
    FE_ORDER_FULL,  /* holding it would take the store past room bytes: close the connection */
    FE_ORDER_NOMEM, /* the store could not grow: close the connection */
} fe_order_put_t;

/* Start a connection: nothing in flight. The store must be empty (a fresh fe_order_t, or after
 * fe_order_clear). */
void fe_order_init(fe_order_t *self);

/* Requests taken and not answered yet. */
static inline uint32_t fe_order_in_flight(const fe_order_t *self)
{
    return self->seq_next - self->seq_out;
}

/* True when FE_ORDER_DEPTH requests are in flight: read no further request until one is
 * answered. */
static inline bool fe_order_full(const fe_order_t *self)
{
    return fe_order_in_flight(self) >= FE_ORDER_DEPTH;
}

/* The number of a request just read. Must not be called when fe_order_full(). */
static inline uint32_t fe_order_take(fe_order_t *self)
{
    assert(!fe_order_full(self));
    return self->seq_next++;
}

/* Bytes held in the store now (answers that wait for their turn). */
size_t fe_order_held(const fe_order_t *self);

/* The store's slow path of fe_order_put(): hold an answer that is not due yet. */
fe_order_put_t fe_order_hold(fe_order_t *self, uint32_t seq, const char *data, size_t len,
                             bool last, size_t room);

/* The answer (len bytes at data) to request seq, a number from fe_order_take() not answered
 * yet; last says it ends the connection. Returns:
 * - FE_ORDER_NOW when seq is the next due: the caller writes data now (it is not copied), then
 *   calls fe_order_next() until it returns false, writing each answer it gives;
 * - FE_ORDER_HELD when data was copied into the store, to come out of fe_order_next() in turn;
 * - FE_ORDER_DROP when an earlier answer ended the connection;
 * - FE_ORDER_FULL when the store would hold more than room bytes with it, FE_ORDER_NOMEM when the
 *   store cannot grow: nothing changed, and the caller closes the connection (fe_order_clear).
 * Inline: the in-order case, every answer with an in-process backend, is two compares. */
static inline fe_order_put_t fe_order_put(fe_order_t *self, uint32_t seq, const char *data,
                                          size_t len, bool last, size_t room)
{
    if (self->finished)
        return FE_ORDER_DROP;
    if (seq != self->seq_out)
        return fe_order_hold(self, seq, data, len, last, room);
    self->seq_out++;
    self->finished = last;
    return FE_ORDER_NOW;
}

/* The next held answer if its turn has come: sets *data, *len, *last and returns true. The bytes
 * stay valid until the next fe_order_ call on self. Held answers behind one that ended the
 * connection are dropped on the way. Returns false when the next answer due has not come yet, or
 * nothing is held; the store is freed once it is empty. */
bool fe_order_next(fe_order_t *self, const char **data, size_t *len, bool *last);

/* The connection is closed: free every held answer. Numbers and `finished` stay as they are
 * until fe_order_init. */
void fe_order_clear(fe_order_t *self);

#endif
