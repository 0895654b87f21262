/*
 * The executor: runs tasks (futures) to completion on one thread.
 *
 * Model (the async book's channel executor, made production-shaped):
 *   - cx_spawn() turns a future into a task (one allocation) and queues it;
 *   - the executor pops ready tasks and polls them; a task's waker, when
 *     woken, puts the task back on the ready queue (never twice);
 *   - sleeping futures register with the executor's timer driver; when
 *     nothing is ready the executor parks until the next deadline or until a
 *     wake arrives from another thread, whichever comes first.
 *
 * Threads. One thread at a time drives an executor (run, run_until_idle,
 * step, join, block_on, destroy): its "owner". cx_spawn() is for the owner
 * and for tasks running on it. Other threads use a cx_spawner, and may wake
 * any waker and use join handles at any time. Wakes on the executor's own
 * thread take a lock-free path; wakes from elsewhere take a short mutex and
 * signal the executor only if it is parked.
 *
 * Errors are returned, never aborted on: see waker/error.h.
 */
#ifndef CEXEC_EXECUTOR_H
#define CEXEC_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "executor/task.h"
#include "timer/timer.h"
#include "waker/alloc.h"
#include "waker/error.h"
#include "waker/waker.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_executor cx_executor;
typedef struct cx_spawner cx_spawner;

/* Where the memory of the tasks an executor spawns comes from. Either way
 * a spawn allocates its task (CX_ENOMEM when it cannot) and a task's memory
 * is released when its last reference goes. */
typedef enum cx_task_memory {
  /* BLOCKS with the default allocator, EACH when a program installed its
   * own (cx_set_allocator: it sees every task) or in AddressSanitizer
   * builds (which cannot see a use after free inside a block). */
  CX_TASK_MEMORY_AUTO = 0,
  /* Slots of large blocks obtained through cx_alloc (task blocks): a spawn
   * is a pop or a bump, a free a push. Blocks go back to the allocator when
   * the executor is freed, so memory follows the peak number of tasks. Tasks
   * spawned from other threads (spawners), and tasks over 256 bytes or
   * aligned beyond 16, are cx_allocs of their own. */
  CX_TASK_MEMORY_BLOCKS,
  /* One cx_alloc per task: what memory checkers such as valgrind need to
   * see a use after free of a task. */
  CX_TASK_MEMORY_EACH,
} cx_task_memory;

typedef struct cx_executor_options {
  /* Clock for the timer driver, in nanoseconds (NULL: cx_clock_now). With a
   * custom clock, parking converts "deadline - now" to a real duration. */
  cx_clock_fn clock;
  void *clock_ctx;
  /* Task dump tracking, metrics, slow-poll warning, hooks
   * (executor/observe.h); copied at create. NULL: all off, and no cost
   * beyond one branch per poll. */
  const struct cx_observe_options *observe;
  /* CX_TASK_MEMORY_AUTO (0) unless set; other values: CX_EINVAL. */
  cx_task_memory task_memory;
} cx_executor_options;

/* Creates an executor. opts may be NULL. Returns CX_OK, CX_EINVAL (out
 * NULL, or an unknown task_memory), CX_ENOMEM. */
int cx_executor_create(const cx_executor_options *opts, cx_executor **out);

/*
 * Destroys the executor: every unfinished task is cancelled (its future
 * dropped, its joiners see CX_ECANCELED), then the executor is released.
 * Spawners and join handles stay valid (spawning then fails with
 * CX_ESHUTDOWN); memory shared with them is freed when the last one goes.
 * Must not be called from inside a task or while running. If another thread
 * woke a task just before, destroy waits for that wake to land. NULL is a
 * no-op. Returns CX_EBUSY (and does nothing) if the executor is running.
 */
int cx_executor_destroy(cx_executor *ex);

/*
 * Spawns a task running the future described by `vtable`, with its state
 * copied from `state` (vtable->state_size bytes; the executor owns the copy
 * from now on and will call vtable->drop on it exactly once).
 * If `handle` is not NULL, *handle receives a join handle (see
 * executor/task.h) that must be detached eventually; with NULL the task is
 * detached from the start.
 * Owner thread, or a task of this executor. Errors (nothing was taken: the
 * caller still owns `state`): CX_EINVAL (ex or vtable NULL, bad vtable,
 * state NULL with a nonzero size), CX_ENOMEM, CX_ESHUTDOWN.
 */
int cx_spawn(cx_executor *ex, const cx_future_vtable *vtable, const void *state,
             cx_join_handle **handle);

/*
 * Drives the executor until every task has finished and every spawner has
 * been dropped (the seed's `run`), parking between wakes and timers.
 * Returns CX_OK, CX_EBUSY (already running: re-entrant call), CX_EINVAL, or
 * CX_EDEADLK when no task can ever be woken again: nothing is ready, no
 * timer is pending, no spawner is alive and no waker of an unfinished task
 * exists (join handles do not count). The unfinished tasks are left in
 * place (destroy cancels them).
 */
int cx_executor_run(cx_executor *ex);

/* Polls every task that is ready, including those made ready meanwhile and
 * those whose timers are due, and returns when none is ready (it never
 * parks). Returns the number of tasks run (polled, or finished by a pending
 * cancellation; saturating at INT32_MAX), or CX_EBUSY / CX_EINVAL. */
int cx_executor_run_until_idle(cx_executor *ex);

/* Polls at most one ready task (after taking in remote wakes and due
 * timers). Returns 1 if a task was polled (or finished by cancellation),
 * 0 if none was ready, or CX_EBUSY / CX_EINVAL. */
int cx_executor_step(cx_executor *ex);

/*
 * Drives the executor until the task behind `h` has finished, then joins it
 * (see cx_join_handle_try_join; out may be NULL to discard). The handle stays
 * owned by the caller. Returns the join result, or CX_EDEADLK if the task
 * can never finish, CX_EBUSY, CX_EINVAL.
 */
int cx_executor_join(cx_executor *ex, cx_join_handle *h, void *out,
                     size_t out_size);

/* Spawns the future, drives the executor until it finishes, and copies its
 * output to `out` (the seed's block_on, on an existing executor: other tasks
 * run too). Errors as cx_spawn and cx_executor_join. */
int cx_executor_block_on(cx_executor *ex, const cx_future_vtable *vtable,
                         const void *state, void *out, size_t out_size);

/* block_on on a fresh executor that is destroyed afterwards (tasks the
 * future spawned and left unfinished are cancelled). */
int cx_block_on(const cx_future_vtable *vtable, const void *state, void *out,
                size_t out_size);

/* The executor driven by the calling thread right now, or NULL (also on a
 * worker of the multi-threaded runtime, which is not an executor). */
cx_executor *cx_executor_current(void);

/* ---- spawners: spawning from any thread ------------------------------- */

/* A new spawner for ex (the seed's Spawner). run() does not return while a
 * spawner is alive. Owner thread. CX_OK, CX_EINVAL, CX_ESHUTDOWN. */
int cx_executor_spawner(cx_executor *ex, cx_spawner **out);

/* Another spawner for the same executor. Any thread. */
int cx_spawner_clone(cx_spawner *sp, cx_spawner **out);

/* Drops a spawner. Any thread. NULL is a no-op. */
void cx_spawner_drop(cx_spawner *sp);

/* cx_spawn from any thread. The task is polled on the executor's thread.
 * Errors as cx_spawn (CX_ESHUTDOWN once the executor was destroyed). */
int cx_spawner_spawn(cx_spawner *sp, const cx_future_vtable *vtable,
                     const void *state, cx_join_handle **handle);

/* ---- statistics --------------------------------------------------------- */

typedef struct cx_executor_stats {
  uint64_t spawned;   /* tasks accepted */
  uint64_t polls;     /* future polls made */
  uint64_t completed; /* tasks whose future returned CX_READY */
  uint64_t cancelled; /* tasks finished by cancellation or shutdown */
  uint64_t parks;     /* times the executor parked its thread */
  uint64_t live;      /* tasks not yet finished */
  uint64_t timers;    /* timers registered now */
} cx_executor_stats;

/* Snapshot of the counters. Owner thread. CX_OK or CX_EINVAL. */
int cx_executor_get_stats(const cx_executor *ex, cx_executor_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_EXECUTOR_H */
