/*
 * Debug introspection, for tests and fuzz harnesses: read-only views of the
 * invariants the executor keeps. Not for production logic: values can change
 * the moment they are read if other threads are active.
 */
#ifndef CEXEC_DEBUG_H
#define CEXEC_DEBUG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "executor/executor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_task_debug_info {
  uint64_t refs; /* owner + queue + wakers + handle, as counted */
  bool scheduled, running, complete, cancelled, has_output, join_waker;
  uint32_t polls;
} cx_task_debug_info;

/* A task's state, through its join handle. CX_OK or CX_EINVAL. The flags
 * are the state word's: a task that woke itself by reference in its last
 * poll and waits in the ready queue for the next one (the self-wake fast
 * path, docs/design.md) shows running and not scheduled. */
int cx_join_handle_debug_info(const cx_join_handle *h, cx_task_debug_info *out);

/* If w is a task waker, the task as a handle pointer (for debug_info only:
 * it carries no reference). CX_EINVAL otherwise. */
int cx_waker_debug_handle(const cx_waker *w, const cx_join_handle **out);

/* Tasks waiting in the ready queues (local and remote). Owner thread (the
 * local count is the owner's, read without a lock). */
size_t cx_executor_debug_ready_len(cx_executor *ex);

/*
 * Checks the executor's invariants: queues are acyclic, hold no task twice,
 * hold only tasks flagged SCHEDULED (and not RUNNING), and match their
 * counts; every SCHEDULED idle task is queued; the unfinished-task list
 * matches the live count; no task's reference count is below what the
 * executor and handle hold. Owner thread, while no other thread is waking.
 * Returns CX_OK, or CX_EINVAL with *why (if why != NULL) naming the breach.
 */
int cx_executor_debug_check(cx_executor *ex, const char **why);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_DEBUG_H */
