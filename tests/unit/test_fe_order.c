/* SPDX-License-Identifier: MIT */
/* test_fe_order: the pipeline order store of one HTTP connection (gateway/fe_order.h): answers in
 * order go out at once, answers that overtake an earlier one are held and released in request
 * order, the byte bound, the answer that ends the connection, a connection closed with answers
 * held, the 32-deep window with its places reused and its numbers wrapping, and a store that
 * cannot grow (through the front end's allocation seam, fe_internal.h). */
#include "fe_internal.h" /* the allocation seam */
#include "fe_order.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>

#include <cmocka.h>

#define ROOM (256 * 1024) /* the front end's CONN_BACKLOG_MAX, with no backlog unsent */

static int setup(void **state)
{
    fe_order_t *o = calloc(1, sizeof(*o));
    if (!o)
        return -1;
    fe_order_init(o);
    *state = o;
    return 0;
}

static int teardown(void **state)
{
    fe_order_t *o = *state;
    fe_order_clear(o);
    free(o);
    return 0;
}

/* Take n request numbers, checking they come in sequence from the first. */
static void take(fe_order_t *o, unsigned n)
{
    uint32_t first = o->seq_next;
    for (unsigned i = 0; i < n; i++)
        assert_int_equal(fe_order_take(o), first + i);
}

static fe_order_put_t put(fe_order_t *o, uint32_t seq, const char *text, bool last)
{
    return fe_order_put(o, seq, text, strlen(text), last, ROOM);
}

/* The next answer fe_order_next gives is want[0..n) (and ends the connection if last). */
static void expect_next_bytes(fe_order_t *o, const char *want, size_t n, bool last)
{
    const char *data = NULL;
    size_t len = 0;
    bool ends = !last;
    assert_true(fe_order_next(o, &data, &len, &ends));
    assert_int_equal(len, n);
    assert_memory_equal(data, want, n);
    assert_int_equal(ends, last);
}

static void expect_next(fe_order_t *o, const char *text, bool last)
{
    expect_next_bytes(o, text, strlen(text), last);
}

static void expect_nothing_due(fe_order_t *o)
{
    const char *data;
    size_t len;
    bool last;
    assert_false(fe_order_next(o, &data, &len, &last));
}

static void answers_in_order_go_out_at_once(void **state)
{
    fe_order_t *o = *state;
    take(o, 3);
    assert_int_equal(put(o, 0, "a", false), FE_ORDER_NOW);
    assert_int_equal(put(o, 1, "b", false), FE_ORDER_NOW);
    assert_int_equal(put(o, 2, "c", false), FE_ORDER_NOW);
    assert_int_equal(fe_order_in_flight(o), 0);
}

static void answers_in_order_allocate_nothing(void **state)
{
    fe_order_t *o = *state;
    take(o, 2);
    put(o, 0, "a", false);
    put(o, 1, "b", false);
    assert_null(o->store);
    assert_int_equal(fe_order_held(o), 0);
}

static void answer_ahead_of_its_turn_is_held(void **state)
{
    fe_order_t *o = *state;
    take(o, 2);
    assert_int_equal(put(o, 1, "second", false), FE_ORDER_HELD);
    assert_int_equal(fe_order_held(o), strlen("second"));
    expect_nothing_due(o); /* 0 has not come */
    assert_int_equal(fe_order_in_flight(o), 2);
}

static void held_answers_are_released_in_request_order(void **state)
{
    fe_order_t *o = *state;
    take(o, 4);
    assert_int_equal(put(o, 3, "d", false), FE_ORDER_HELD);
    assert_int_equal(put(o, 1, "b", false), FE_ORDER_HELD);
    assert_int_equal(put(o, 2, "c", false), FE_ORDER_HELD);
    assert_int_equal(put(o, 0, "a", false), FE_ORDER_NOW);
    expect_next(o, "b", false);
    expect_next(o, "c", false);
    expect_next(o, "d", false);
    expect_nothing_due(o);
    assert_int_equal(fe_order_in_flight(o), 0);
}

static void release_stops_at_a_gap(void **state)
{
    fe_order_t *o = *state;
    take(o, 4);
    put(o, 1, "b", false);
    put(o, 3, "d", false);
    assert_int_equal(put(o, 0, "a", false), FE_ORDER_NOW);
    expect_next(o, "b", false);
    expect_nothing_due(o); /* 2 is still at the backend */
    assert_int_equal(fe_order_held(o), 1);
    assert_int_equal(put(o, 2, "c", false), FE_ORDER_NOW);
    expect_next(o, "d", false);
    expect_nothing_due(o);
}

static void store_is_freed_once_it_empties(void **state)
{
    fe_order_t *o = *state;
    take(o, 2);
    put(o, 1, "b", false);
    assert_non_null(o->store);
    put(o, 0, "a", false);
    expect_next(o, "b", false);
    expect_nothing_due(o);
    assert_null(o->store);
}

static void answer_over_the_byte_bound_is_refused(void **state)
{
    fe_order_t *o = *state;
    char big[100];
    memset(big, 'x', sizeof(big));
    take(o, 3);
    assert_int_equal(fe_order_put(o, 1, big, sizeof(big), false, 150), FE_ORDER_HELD);
    /* 100 held + 100 more > 150: refused, and nothing changed. */
    assert_int_equal(fe_order_put(o, 2, big, sizeof(big), false, 150), FE_ORDER_FULL);
    assert_int_equal(fe_order_held(o), sizeof(big));
    assert_int_equal(fe_order_in_flight(o), 3);
}

static void answer_exactly_at_the_byte_bound_is_held(void **state)
{
    fe_order_t *o = *state;
    char big[100];
    memset(big, 'x', sizeof(big));
    take(o, 3);
    assert_int_equal(fe_order_put(o, 1, big, 50, false, 150), FE_ORDER_HELD);
    assert_int_equal(fe_order_put(o, 2, big, 100, false, 150), FE_ORDER_HELD);
    assert_int_equal(fe_order_held(o), 150);
}

static void answer_due_now_is_not_bounded_by_the_store(void **state)
{
    fe_order_t *o = *state;
    char big[100];
    memset(big, 'x', sizeof(big));
    take(o, 1);
    /* Written at once, never copied: the caller's backlog bound applies to it. */
    assert_int_equal(fe_order_put(o, 0, big, sizeof(big), false, 10), FE_ORDER_NOW);
}

static void answers_after_the_last_are_dropped(void **state)
{
    fe_order_t *o = *state;
    take(o, 2);
    assert_int_equal(put(o, 0, "bye", true), FE_ORDER_NOW);
    assert_true(o->finished);
    assert_int_equal(put(o, 1, "late", false), FE_ORDER_DROP);
    assert_null(o->store);
}

static void held_answers_behind_the_last_are_dropped(void **state)
{
    fe_order_t *o = *state;
    take(o, 3);
    put(o, 2, "c", false);
    put(o, 1, "bye", true);
    assert_int_equal(put(o, 0, "a", false), FE_ORDER_NOW);
    expect_next(o, "bye", true);
    expect_nothing_due(o); /* "c" is dropped on the way */
    assert_true(o->finished);
    assert_int_equal(o->seq_out, 3);
    assert_null(o->store);
}

static void connection_closed_with_answers_held_frees_them(void **state)
{
    fe_order_t *o = *state;
    take(o, 4);
    put(o, 1, "b", false);
    put(o, 3, "d", false);
    fe_order_clear(o); /* the leak checker (ASan) sees whether the store went */
    assert_null(o->store);
    assert_int_equal(fe_order_held(o), 0);
    expect_nothing_due(o);
}

static void slot_reused_after_close_starts_afresh(void **state)
{
    fe_order_t *o = *state;
    take(o, 2);
    put(o, 1, "b", true);
    fe_order_clear(o);
    fe_order_init(o);
    assert_int_equal(fe_order_in_flight(o), 0);
    assert_false(o->finished);
    take(o, 1);
    assert_int_equal(put(o, 0, "a", false), FE_ORDER_NOW);
}

static void window_is_full_at_32_in_flight(void **state)
{
    fe_order_t *o = *state;
    take(o, FE_ORDER_DEPTH - 1);
    assert_false(fe_order_full(o));
    take(o, 1);
    assert_true(fe_order_full(o));
    assert_int_equal(fe_order_in_flight(o), 32);
    assert_int_equal(put(o, 0, "a", false), FE_ORDER_NOW);
    assert_false(fe_order_full(o)); /* the first answer frees a place */
}

static void full_window_answered_backwards_comes_out_in_order(void **state)
{
    fe_order_t *o = *state;
    char text[FE_ORDER_DEPTH][8];
    take(o, FE_ORDER_DEPTH);
    for (unsigned i = FE_ORDER_DEPTH - 1; i > 0; i--) {
        snprintf(text[i], sizeof(text[i]), "r%u", i);
        assert_int_equal(put(o, i, text[i], false), FE_ORDER_HELD);
    }
    assert_int_equal(put(o, 0, "r0", false), FE_ORDER_NOW);
    for (unsigned i = 1; i < FE_ORDER_DEPTH; i++)
        expect_next(o, text[i], false);
    expect_nothing_due(o);
}

static void places_are_reused_as_the_window_slides(void **state)
{
    fe_order_t *o = *state;
    char text[16];
    /* Request k and k + 32 share a place: each round answers the window's second half first. */
    for (unsigned round = 0; round < 5; round++) {
        uint32_t base = o->seq_next;
        take(o, FE_ORDER_DEPTH);
        for (unsigned i = FE_ORDER_DEPTH / 2; i < FE_ORDER_DEPTH; i++) {
            snprintf(text, sizeof(text), "%u", base + i);
            assert_int_equal(put(o, base + i, text, false), FE_ORDER_HELD);
        }
        for (unsigned i = 0; i < FE_ORDER_DEPTH / 2; i++) {
            snprintf(text, sizeof(text), "%u", base + i);
            assert_int_equal(put(o, base + i, text, false), FE_ORDER_NOW);
            if (i + 1 < FE_ORDER_DEPTH / 2)
                expect_nothing_due(o);
        }
        for (unsigned i = FE_ORDER_DEPTH / 2; i < FE_ORDER_DEPTH; i++) {
            snprintf(text, sizeof(text), "%u", base + i);
            expect_next(o, text, false);
        }
        expect_nothing_due(o);
    }
    assert_int_equal(o->seq_out, 5 * FE_ORDER_DEPTH);
}

static void numbers_wrap_around(void **state)
{
    fe_order_t *o = *state;
    o->seq_next = o->seq_out = UINT32_MAX - 1; /* a long-lived keep-alive connection */
    take(o, 4);                                /* UINT32_MAX - 1, UINT32_MAX, 0, 1 */
    assert_int_equal(fe_order_in_flight(o), 4);
    assert_int_equal(put(o, 1, "d", false), FE_ORDER_HELD);
    assert_int_equal(put(o, 0, "c", false), FE_ORDER_HELD);
    assert_int_equal(put(o, UINT32_MAX, "b", false), FE_ORDER_HELD);
    assert_int_equal(put(o, UINT32_MAX - 1, "a", false), FE_ORDER_NOW);
    expect_next(o, "b", false);
    expect_next(o, "c", false);
    expect_next(o, "d", false);
    expect_nothing_due(o);
    assert_int_equal(o->seq_out, 2);
}

static void store_grows_and_keeps_every_byte(void **state)
{
    fe_order_t *o = *state;
    /* 31 answers of 1000 bytes: past the first block (4 KiB), compacted into larger ones. */
    static char body[FE_ORDER_DEPTH][1000];
    take(o, FE_ORDER_DEPTH);
    for (unsigned i = 1; i < FE_ORDER_DEPTH; i++) {
        memset(body[i], 'A' + (int)(i % 26), sizeof(body[i]));
        body[i][0] = (char)i;
        assert_int_equal(fe_order_put(o, i, body[i], sizeof(body[i]), false, ROOM), FE_ORDER_HELD);
    }
    assert_int_equal(fe_order_held(o), 31 * 1000);
    assert_int_equal(put(o, 0, "a", false), FE_ORDER_NOW);
    for (unsigned i = 1; i < FE_ORDER_DEPTH; i++)
        expect_next_bytes(o, body[i], sizeof(body[i]), false);
    expect_nothing_due(o);
}

static void compaction_keeps_answers_held_across_holes(void **state)
{
    fe_order_t *o = *state;
    static char one[3000], five[3000];
    memset(one, '1', sizeof(one));
    memset(five, '5', sizeof(five));
    take(o, 6);
    fe_order_put(o, 1, one, sizeof(one), false, ROOM);
    put(o, 3, "three", false);
    put(o, 0, "zero", false);
    expect_next_bytes(o, one, sizeof(one), false); /* leaves a 3000-byte hole before "three" */
    expect_nothing_due(o);
    /* No room after the hole: the live answer moves into a new block with this one. */
    assert_int_equal(fe_order_put(o, 5, five, sizeof(five), false, ROOM), FE_ORDER_HELD);
    assert_int_equal(fe_order_held(o), strlen("three") + sizeof(five));
    assert_int_equal(put(o, 2, "two", false), FE_ORDER_NOW);
    expect_next(o, "three", false);
    expect_nothing_due(o);
    assert_int_equal(put(o, 4, "four", false), FE_ORDER_NOW);
    expect_next_bytes(o, five, sizeof(five), false);
    expect_nothing_due(o);
}

static void *no_malloc(size_t size)
{
    (void)size;
    return NULL;
}

static void store_that_cannot_be_allocated_refuses_the_answer(void **state)
{
    fe_order_t *o = *state;
    take(o, 2);
    frontend_alloc.malloc_fn = no_malloc;
    fe_order_put_t r = put(o, 1, "b", false);
    frontend_alloc.malloc_fn = malloc;
    assert_int_equal(r, FE_ORDER_NOMEM);
    assert_null(o->store);
    assert_int_equal(fe_order_in_flight(o), 2);
}

static void store_that_cannot_grow_keeps_what_it_held(void **state)
{
    fe_order_t *o = *state;
    static char big[5000];
    memset(big, 'x', sizeof(big));
    take(o, 3);
    put(o, 1, "b", false);
    frontend_alloc.malloc_fn = no_malloc;
    fe_order_put_t r = fe_order_put(o, 2, big, sizeof(big), false, ROOM);
    frontend_alloc.malloc_fn = malloc;
    assert_int_equal(r, FE_ORDER_NOMEM);
    assert_int_equal(fe_order_held(o), 1);
    assert_int_equal(put(o, 0, "a", false), FE_ORDER_NOW);
    expect_next(o, "b", false);
    expect_nothing_due(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(answers_in_order_go_out_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(answers_in_order_allocate_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(answer_ahead_of_its_turn_is_held, setup, teardown),
        cmocka_unit_test_setup_teardown(held_answers_are_released_in_request_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(release_stops_at_a_gap, setup, teardown),
        cmocka_unit_test_setup_teardown(store_is_freed_once_it_empties, setup, teardown),
        cmocka_unit_test_setup_teardown(answer_over_the_byte_bound_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(answer_exactly_at_the_byte_bound_is_held, setup, teardown),
        cmocka_unit_test_setup_teardown(answer_due_now_is_not_bounded_by_the_store, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(answers_after_the_last_are_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(held_answers_behind_the_last_are_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(connection_closed_with_answers_held_frees_them, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(slot_reused_after_close_starts_afresh, setup, teardown),
        cmocka_unit_test_setup_teardown(window_is_full_at_32_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(full_window_answered_backwards_comes_out_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(places_are_reused_as_the_window_slides, setup, teardown),
        cmocka_unit_test_setup_teardown(numbers_wrap_around, setup, teardown),
        cmocka_unit_test_setup_teardown(store_grows_and_keeps_every_byte, setup, teardown),
        cmocka_unit_test_setup_teardown(compaction_keeps_answers_held_across_holes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(store_that_cannot_be_allocated_refuses_the_answer, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(store_that_cannot_grow_keeps_what_it_held, setup, teardown),
    };
    return cmocka_run_group_tests_name("fe_order", tests, NULL, NULL);
}
