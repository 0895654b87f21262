/*
 * Combinators: futures made of futures (the seed's Join and AndThen, plus
 * join-all, select and timeout).
 *
 * Design: no allocation. A combinator holds its children as cx_future
 * values (vtable + pointer to the child's state) and writes their outputs
 * into buffers the caller provides. The children's *storage* belongs to the
 * caller, normally fields of the same state struct as the combinator (e.g. a
 * coroutine's state), so everything moves together and nothing is freed.
 *
 * Ownership of the children's *drop*: from a successful init on, the
 * combinator owns it. It drops every child exactly once, on the thread that
 * polls it: as soon as the child completes (right after its CX_READY), when
 * the combinator decides the child is no longer wanted (the losers of a
 * select, the inner future of a timed-out timeout), or, for children still
 * pending, when the combinator itself is dropped. The caller must not drop
 * the children itself, nor poll them. If init fails nothing is taken.
 *
 * Every combinator is a future in two forms:
 *   - as functions: cx_X_poll(&x, cx, ...) / cx_X_drop(&x), to use with
 *     CX_AWAIT inside a coroutine (executor/coro.h) or by hand;
 *   - as a vtable (cx_X_vtable, state = the combinator struct), to use in
 *     CX_AWAIT_FUTURE, inside another combinator, or with cx_spawn. Spawning
 *     copies only the combinator struct: its children and output buffers
 *     must then live elsewhere and stay put until it is dropped.
 * Every drop is idempotent and safe on a zeroed struct, so a coroutine's
 * drop function may drop a combinator whatever state it reached.
 *
 * Rules shared by all: children must not move after init; output buffers
 * must stay valid until the combinator completes or is dropped; a child's
 * output buffer may be NULL only if its output_size is 0. Polling goes
 * through the cx_context given (its waker is registered by the children);
 * polling after CX_READY returns CX_READY again and does nothing else.
 *
 * Thread-safety: like any future, a combinator is polled and dropped by one
 * thread at a time (the executor's).
 *
 * NULL arguments (the same rule in every cexec header): no function crashes
 * on a NULL pointer. A function returning int returns CX_EINVAL; a poll
 * function returns CX_READY at once, polling nothing, with CX_EINVAL in its
 * int result if it has one (a NULL result pointer is simply not written); a
 * drop, detach or other release function does nothing; a void init does
 * nothing (the poll then reports CX_EINVAL); a query returns the neutral
 * value its comment names. A pointer that may be NULL on purpose (an
 * optional output) says what NULL means at the function. Exceptions are
 * inline hot-path helpers, marked "must not be NULL".
 */
#ifndef CEXEC_COMBINATORS_H
#define CEXEC_COMBINATORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "executor/coro.h"
#include "timer/timer.h"
#include "waker/waker.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- join of two ------------------------------------------------------- */

/* Runs a and b concurrently; ready when both are. Output: none (each
 * child's output is in its buffer). Fields are private. */
typedef struct cx_join2 {
  cx_future a, b; /* a child is {NULL, NULL} once done and dropped */
  void *out_a, *out_b;
} cx_join2;

/* Takes over dropping a and b. CX_OK, or CX_EINVAL (j NULL, a bad child
 * vtable, a NULL output buffer for a child with output); nothing is taken on
 * error (and *j is zeroed, so dropping it is harmless). */
int cx_join2_init(cx_join2 *j, cx_future a, void *out_a, cx_future b,
                  void *out_b);

/* Polls each unfinished child (a first). CX_READY once both completed. A
 * join has no error output: for NULL j, cx or cx->waker it returns CX_READY
 * without polling anything or changing j (the outputs are not written). */
cx_poll cx_join2_poll(cx_join2 *j, cx_context *cx);

/* Drops the children still pending. Idempotent; NULL is a no-op. */
void cx_join2_drop(cx_join2 *j);

/* cx_join2 as a future: state cx_join2, no output. */
extern const cx_future_vtable cx_join2_vtable;

/* ---- join of N ---------------------------------------------------------- */

/* Runs n futures concurrently; ready when all are (the fan-in of a fan-out).
 * Borrows two caller arrays: futures[i] is set to {NULL, NULL} once child i
 * completed and was dropped; outputs[i] receives its output. */
typedef struct cx_join_all {
  cx_future *futures;
  void **outputs;
  size_t n;
  size_t remaining;
} cx_join_all;

/* Takes over dropping every futures[i]. `outputs` may be NULL if no child
 * has an output. n may be 0 (ready at once). CX_OK or CX_EINVAL (as
 * cx_join2_init, or futures NULL with n > 0). */
int cx_join_all_init(cx_join_all *j, cx_future *futures, void **outputs,
                     size_t n);

/* Polls every unfinished child in index order. CX_READY once all are. For
 * NULL j, cx or cx->waker: CX_READY without polling anything or changing j
 * (cx_join_all_remaining() then still counts the unfinished children). */
cx_poll cx_join_all_poll(cx_join_all *j, cx_context *cx);

/* Drops the children still pending. Idempotent; NULL is a no-op. */
void cx_join_all_drop(cx_join_all *j);

/* How many children have not completed yet. 0 for NULL. */
static inline size_t cx_join_all_remaining(const cx_join_all *j) {
  return j == NULL ? 0 : j->remaining;
}

/* cx_join_all as a future: state cx_join_all, no output. */
extern const cx_future_vtable cx_join_all_vtable;

/* ---- select ------------------------------------------------------------- */

/* Runs n futures (n >= 1) concurrently until the first completes; the
 * others are then dropped at once (their drop functions run: a cx_sleep is
 * unregistered, a channel future unregisters its waker). Children are
 * polled in index order, so when several are ready in the same poll the
 * lowest index wins. Output: the winner's index (size_t); its output is in
 * outputs[winner]; the losers produce none. */
typedef struct cx_select {
  cx_future *futures;
  void **outputs;
  size_t n;
  size_t winner; /* SIZE_MAX until one completed */
} cx_select;

/* Takes over dropping every futures[i]. CX_OK or CX_EINVAL (n == 0, bad
 * arrays or vtables). */
int cx_select_init(cx_select *s, cx_future *futures, void **outputs, size_t n);

/* Polls the children in order. CX_READY when one completed: *winner (may be
 * NULL) is its index and every child has been dropped. For NULL s, cx or
 * cx->waker: CX_READY with *winner = SIZE_MAX, nothing polled, s unchanged. */
cx_poll cx_select_poll(cx_select *s, cx_context *cx, size_t *winner);

/* Drops every child not yet dropped. Idempotent; NULL is a no-op. */
void cx_select_drop(cx_select *s);

/* cx_select as a future: state cx_select, output size_t (the winner). */
extern const cx_future_vtable cx_select_vtable;

/* ---- and_then ----------------------------------------------------------- */

/*
 * Builds the second future from the first one's output. Called once, on the
 * polling thread, right after `first` completed (and was dropped) with its
 * output in `first_output`. It must either write the second future to
 * *second (its state in storage that outlives the and_then, usually the
 * ctx) and return CX_OK, or return a negative code, which becomes the
 * and_then's result (then *second is ignored).
 */
typedef int (*cx_and_then_fn)(void *ctx, void *first_output, cx_future *second);

/* Runs `first`, then the future `then` builds from its output. Output: an
 * int, CX_OK when the second future completed (its output in second_out)
 * or the error `then` returned. */
typedef struct cx_and_then {
  cx_future first, second;
  void *first_out, *second_out;
  cx_and_then_fn then;
  void *ctx;
  int stage; /* 0 first, 1 second, 2 done */
  int result;
} cx_and_then;

/* Takes over dropping `first` (and later the second future). second_out
 * may be NULL if the second future has no output. CX_OK or CX_EINVAL (NULL
 * a or then, bad vtable, NULL first_out for a first future with output). */
int cx_and_then_init(cx_and_then *a, cx_future first, void *first_out,
                     cx_and_then_fn then, void *ctx, void *second_out);

/* CX_READY with *result (may be NULL) set as described above. A second
 * future with an invalid vtable, or with output but no second_out, gives
 * CX_EINVAL (it is not polled; it is still dropped). NULL a, cx or
 * cx->waker: CX_READY with CX_EINVAL, nothing polled, a unchanged. */
cx_poll cx_and_then_poll(cx_and_then *a, cx_context *cx, int *result);

/* Drops whichever future is pending. Idempotent; NULL is a no-op. */
void cx_and_then_drop(cx_and_then *a);

/* cx_and_then as a future: state cx_and_then, output int. */
extern const cx_future_vtable cx_and_then_vtable;

/* ---- timeout ------------------------------------------------------------ */

/* Runs `inner` with a deadline. Output: an int, CX_OK when inner completed
 * first (its output in inner_out), CX_ETIMEDOUT when the deadline passed
 * first (inner is dropped at that moment, so it is cancelled), or the timer's
 * error (CX_ENOTSUP when polled without a timer driver; inner is dropped
 * too). Inner is polled before the timer, so an inner future that is ready
 * on the poll where the deadline passes wins. */
typedef struct cx_timeout {
  cx_future inner;
  void *inner_out;
  cx_sleep sleep;
  bool done;
  int result;
} cx_timeout;

/* Times out `ns` nanoseconds after the first poll. Takes over dropping
 * inner. CX_OK or CX_EINVAL. */
int cx_timeout_init(cx_timeout *t, cx_future inner, void *inner_out,
                    uint64_t ns);

/* Times out when the timer driver's clock reaches `deadline_ns`. CX_OK or
 * CX_EINVAL, as cx_timeout_init. */
int cx_timeout_init_until(cx_timeout *t, cx_future inner, void *inner_out,
                          uint64_t deadline_ns);

/* CX_READY with *result (may be NULL) set as described above. NULL t, cx or
 * cx->waker: CX_READY with CX_EINVAL, nothing polled, t unchanged. */
cx_poll cx_timeout_poll(cx_timeout *t, cx_context *cx, int *result);

/* Drops inner if pending and cancels the timer. Idempotent; NULL no-op. */
void cx_timeout_drop(cx_timeout *t);

/* cx_timeout as a future: state cx_timeout, output int. */
extern const cx_future_vtable cx_timeout_vtable;

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_COMBINATORS_H */
