/*
 * Join handles: the spawner's view of a task.
 *
 * cx_spawn() (executor/executor.h) can hand back a cx_join_handle. The handle
 * owns one reference to the task; it lets its owner wait for the task's
 * output, cancel the task, read its poll count, or let it go (detach).
 * Every handle must end in exactly one cx_join_handle_detach(); after that
 * the pointer is dead, even if the task runs on.
 *
 * Thread-safety: a handle has one owner at a time, but that owner may be any
 * thread, and every function here may run concurrently with the task being
 * polled, woken or cancelled elsewhere.
 *
 * Output: when the future returns CX_READY its output (output_size bytes) is
 * kept in the task until a join copies it out. The first successful join
 * takes it (ownership of anything it points to passes to the caller); later
 * joins return CX_EALREADY. An output never taken is released with the
 * vtable's drop_output when the task is freed.
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
#ifndef CEXEC_TASK_H
#define CEXEC_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "waker/waker.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_join_handle cx_join_handle;

/*
 * Polls for the task's end, as a leaf future would: CX_PENDING after
 * registering cx->waker to be woken when the task ends, or CX_READY with
 * *result set to
 *   CX_OK        the task completed; its output was copied to `out`
 *   CX_ECANCELED the task was cancelled (or its executor destroyed) first
 *   CX_EALREADY  the output was already taken by an earlier join
 *   CX_EINVAL    out_size differs from the future's output_size (out != NULL)
 *   other        registering the waker failed (e.g. CX_EOVERFLOW)
 * Pass out == NULL to discard the output (drop_output runs on it).
 * Returns CX_READY with CX_EINVAL in *result when h, cx, cx->waker or result
 * is NULL (result NULL: nothing is written).
 */
cx_poll cx_join_handle_poll(cx_join_handle *h, cx_context *cx, int *result,
                            void *out, size_t out_size);

/* Non-blocking join: CX_EAGAIN while the task has not ended, otherwise the
 * *result values of cx_join_handle_poll() as the return value. CX_EINVAL
 * for NULL h; out NULL discards the output, as above. */
int cx_join_handle_try_join(cx_join_handle *h, void *out, size_t out_size);

/*
 * Blocks the calling thread until the task ends, then joins as above.
 * For plain threads: on a thread running an executor (inside a task) it
 * returns CX_EDEADLK if the task has not ended, rather than stall that
 * executor, which may be the one that must run the task (use a join future,
 * executor/join_future.h, or cx_executor_join() from outside). Returns
 * CX_ENOMEM if the thread parker cannot be allocated, CX_EINVAL for NULL h
 * (out NULL discards the output).
 */
int cx_join_handle_wait(cx_join_handle *h, void *out, size_t out_size);

/*
 * Asks for the task to be cancelled. The future is dropped on the executor's
 * thread the next time the executor runs (or right after the poll in
 * progress, if it is running now); a task that completes in that poll keeps
 * its output. Returns CX_OK when the request was registered (or was already),
 * CX_EALREADY when the task had already completed, CX_EINVAL for NULL.
 */
int cx_join_handle_cancel(cx_join_handle *h);

/* True once the task has ended (completed or cancelled). False for NULL. */
bool cx_join_handle_is_finished(const cx_join_handle *h);

/* How many times the task's future has been polled so far. 0 for NULL. */
uint64_t cx_join_handle_poll_count(const cx_join_handle *h);

/* Gives up the handle; the task runs on (detached) unless cancelled. An
 * output never taken is dropped with the task. NULL is a no-op. */
void cx_join_handle_detach(cx_join_handle *h);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_TASK_H */
