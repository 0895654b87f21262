/*
 * Join handles as futures: a task awaits another task's output.
 *
 * cx_join_handle_poll() (executor/task.h) already behaves as a leaf poll
 * function; cx_join_future packages it as a proper future, with a vtable
 * (so it works in combinators and with CX_AWAIT_FUTURE) and a drop that
 * withdraws the awaiting task's waker from the joined task, so a join that
 * loses a select or times out leaves nothing behind. On completion the
 * waker is taken back too, so a handle kept after the join does not keep
 * the awaiting task alive.
 *
 * Output: an int, the join result of cx_join_handle_poll():
 *   CX_OK        the task completed; its output is in `out`
 *   CX_ECANCELED the task was cancelled (e.g. cx_join_handle_cancel() from
 *                another task) or its executor destroyed before it finished
 *   CX_EALREADY  its output was taken by an earlier join
 *   CX_EINVAL    out_size differs from the task's output size, or a NULL
 *                handle
 *   other        registering the waker failed (e.g. CX_EOVERFLOW)
 *
 * Ownership: the future borrows the handle, unless initialised with
 * detach_on_drop, in which case dropping the future (completed or not)
 * detaches the handle: the usual choice for fan-out, where the join future
 * is the only holder of the handle. Either way the handle's owner (the
 * future, while it exists) is the only one that may join through it.
 *
 * Cancelling: cx_join_handle_cancel(h) works from any task or thread; the
 * joined task's future is dropped on its executor's thread, and a pending
 * join future then completes with CX_ECANCELED.
 *
 * Thread-safety: the joined task may run on any executor or thread; the
 * join future itself is polled and dropped by one thread at a time.
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
#ifndef CEXEC_JOIN_FUTURE_H
#define CEXEC_JOIN_FUTURE_H

#include <stdbool.h>
#include <stddef.h>

#include "executor/task.h"
#include "waker/waker.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fields are private. A zeroed value is valid to drop. */
typedef struct cx_join_future {
  cx_join_handle *handle;
  void *out; /* borrowed: receives the output, or NULL to discard it */
  size_t out_size;
  bool detach_on_drop;
  bool waiting; /* a poll returned CX_PENDING: our waker may be armed */
  bool done;
  int result;
} cx_join_future;

/* Prepares a join of h into out (out_size bytes, the task's output size;
 * out NULL discards the output, running its drop_output). With
 * detach_on_drop the future takes over the handle and detaches it when
 * dropped; otherwise the caller keeps it (and detaches it after the future
 * is dropped). f NULL: no-op; h NULL: the poll completes with CX_EINVAL. */
void cx_join_future_init(cx_join_future *f, cx_join_handle *h, void *out,
                         size_t out_size, bool detach_on_drop);

/* CX_READY with *result (may be NULL) set as listed above, or CX_PENDING
 * with cx->waker registered to be woken when the task ends. CX_EINVAL (in
 * *result) for NULL f, its handle, cx or cx->waker. */
cx_poll cx_join_future_poll(cx_join_future *f, cx_context *cx, int *result);

/* Withdraws a registered waker (if the task has not finished) and, with
 * detach_on_drop, detaches the handle. Idempotent; zeroed or NULL: no-op. */
void cx_join_future_drop(cx_join_future *f);

/* cx_join_future as a future: state cx_join_future, output int. */
extern const cx_future_vtable cx_join_future_vtable;

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_JOIN_FUTURE_H */
