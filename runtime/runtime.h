/*
 * The multi-threaded runtime: N worker threads that run tasks (futures) and
 * steal work from each other. The single-threaded executor
 * (executor/executor.h) stays the tool for futures that must not change
 * threads; this one is for programs with more work than one core can do.
 *
 * Model. cx_runtime_spawn() turns a future into a task (the same task as
 * the executor's: one allocation, join handles from executor/task.h) and
 * queues it; any worker may poll it. Each worker keeps a bounded ring of
 * ready tasks plus a one-task "LIFO slot" for the task woken last by the
 * task it is polling; idle workers steal half of a busy worker's ring;
 * wakes and spawns from threads that are not workers go through a global
 * injection queue. docs/runtime.md has the algorithm.
 *
 * THE THREADING CONTRACT (what a future polled here must accept):
 *   - a task may be polled on a different worker thread each time, but never
 *     on two threads at once: one poll (or the drop) at a time, and each
 *     poll sees everything the previous poll wrote;
 *   - every write made before a wake (cx_waker_wake / wake_by_ref, from any
 *     thread) happens-before the poll that this wake causes;
 *   - the future's drop runs on a worker thread, exactly once;
 *   - so a future's state needs no lock of its own, but anything it shares
 *     with other tasks or threads must be thread-safe, and a future must not
 *     keep thread-local state between polls (thread-locals, a thread id, a
 *     non-thread-safe object owned by one thread). Futures that must stay on
 *     one thread belong on the single-threaded executor.
 *   - Polls get cx->executor == NULL (use cx_runtime_current() to spawn from
 *     a task), cx->timers == NULL (a cx_sleep completes with CX_ENOTSUP:
 *     timers are not driven by this runtime yet) and cx->host == NULL (no
 *     I/O driver yet).
 *   - A poll should not block its thread: it holds a worker (and the task
 *     in that worker's LIFO slot). Blocking calls (cx_join_handle_wait,
 *     cx_runtime_block_on, the blocking channel) belong to other threads;
 *     cx_runtime_block_on and cx_runtime_shutdown refuse on a worker.
 *
 * Errors are returned (waker/error.h), never aborted on; every allocation
 * goes through cx_alloc.
 */
#ifndef CEXEC_RUNTIME_H
#define CEXEC_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "executor/task.h"
#include "waker/alloc.h"
#include "waker/error.h"
#include "waker/waker.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_runtime cx_runtime;
typedef struct cx_runtime_spawner cx_runtime_spawner;

/* At most this many workers. */
#define CX_RUNTIME_MAX_WORKERS 1024u

/* cx_runtime_shutdown's "no deadline": wait for every task to finish. */
#define CX_RUNTIME_NO_DEADLINE UINT64_MAX

typedef struct cx_runtime_options {
  /* Worker threads; 0: the number of online CPUs. */
  size_t workers;
  /* Called on each worker thread, with its index (0 .. workers-1), before
   * it polls anything / after it polled its last task. Optional. They may
   * use any cexec function that is allowed on a worker. */
  void (*on_worker_start)(void *ctx, size_t worker);
  void (*on_worker_stop)(void *ctx, size_t worker);
  void *hook_ctx;
} cx_runtime_options;

/*
 * Creates a runtime and starts its workers. opts may be NULL (defaults).
 * Returns CX_OK, CX_EINVAL (out NULL, more than CX_RUNTIME_MAX_WORKERS),
 * CX_ENOMEM, or CX_EAGAIN when a worker thread cannot be created (the
 * workers already started are stopped and joined, everything is freed).
 */
int cx_runtime_create(const cx_runtime_options *opts, cx_runtime **out);

/* Number of workers. 0 for NULL. Any thread. */
size_t cx_runtime_workers(const cx_runtime *rt);

/*
 * Spawns a task running the future described by `vtable`, its state copied
 * from `state` (vtable->state_size bytes; the runtime owns the copy and calls
 * vtable->drop on it exactly once, on a worker). *handle, if handle is not
 * NULL, receives a join handle (executor/task.h), usable from any thread.
 * Any thread, including tasks of this runtime (the task then goes to the
 * calling worker's ring) and threads that are not workers (injection queue).
 * Errors (nothing was taken): CX_EINVAL (rt NULL, bad vtable, state NULL
 * with a nonzero size), CX_ENOMEM, CX_ESHUTDOWN (shutdown has begun).
 */
int cx_runtime_spawn(cx_runtime *rt, const cx_future_vtable *vtable,
                     const void *state, cx_join_handle **handle);

/*
 * Spawns the future and blocks the calling thread until it finishes, then
 * copies its output to `out` (NULL: drop it). Call it from a thread that is
 * not a worker of any runtime: on a worker it returns CX_EBUSY (it would
 * block that worker) and spawns nothing. Returns CX_OK, CX_ECANCELED (the
 * runtime was shut down first), CX_EINVAL (out_size differs from the
 * output size), the errors of cx_runtime_spawn, or CX_ENOMEM.
 */
int cx_runtime_block_on(cx_runtime *rt, const cx_future_vtable *vtable,
                        const void *state, void *out, size_t out_size);

/* The runtime whose worker is the calling thread, or NULL. */
cx_runtime *cx_runtime_current(void);

/* The index of the calling worker thread (0 .. workers-1), or -1 when the
 * caller is not a worker. */
long cx_runtime_current_worker(void);

/*
 * Graceful shutdown. Stops accepting spawns (CX_ESHUTDOWN from then on),
 * lets the tasks run until they have all finished or `timeout_ns`
 * nanoseconds have passed (CX_RUNTIME_NO_DEADLINE: no limit, 0: cancel at
 * once), then cancels the rest (their futures are dropped on the workers,
 * their joiners see CX_ECANCELED) and waits for that, then stops and joins
 * the workers (on_worker_stop runs). A task whose poll never returns keeps
 * shutdown waiting. Join handles, wakers and spawners stay valid afterwards
 * (waking a finished task does nothing). Returns CX_OK when every task had
 * finished on its own, CX_ETIMEDOUT when some were cancelled at the
 * deadline; a second call returns CX_OK at once. CX_EBUSY (nothing done) on
 * a worker of rt; CX_EINVAL for NULL. Any other thread; concurrent calls
 * are serialized.
 */
int cx_runtime_shutdown(cx_runtime *rt, uint64_t timeout_ns);

/*
 * Shuts down with no grace (cx_runtime_shutdown(rt, 0)) if that was not
 * done, then releases the caller's reference: memory shared with tasks,
 * join handles and spawners is freed when the last one goes. NULL: no-op.
 * CX_EBUSY (nothing done) on a worker of rt.
 */
int cx_runtime_destroy(cx_runtime *rt);

/* ---- spawners: spawning with a reference that outlives destroy --------- */

/* A spawner keeps the runtime's memory alive: spawning through it after
 * shutdown fails cleanly with CX_ESHUTDOWN instead of touching freed memory.
 * Any thread. CX_OK, CX_EINVAL. */
int cx_runtime_spawner_create(cx_runtime *rt, cx_runtime_spawner **out);
int cx_runtime_spawner_clone(cx_runtime_spawner *sp, cx_runtime_spawner **out);
/* NULL is a no-op. Any thread. */
void cx_runtime_spawner_drop(cx_runtime_spawner *sp);
/* cx_runtime_spawn through the spawner. */
int cx_runtime_spawner_spawn(cx_runtime_spawner *sp,
                             const cx_future_vtable *vtable, const void *state,
                             cx_join_handle **handle);

/* ---- statistics --------------------------------------------------------- */

/* Counters of one worker, written by that worker only (relaxed atomics):
 * a snapshot read from another thread may be a few events behind. */
typedef struct cx_runtime_worker_stats {
  uint64_t polls;      /* future polls made on this worker */
  uint64_t lifo_polls; /* of which of a task taken from the LIFO slot */
  uint64_t completed;  /* tasks whose future returned CX_READY here */
  uint64_t cancelled;  /* tasks finished by cancellation here */
  uint64_t steals;     /* successful steals (each takes half a ring) */
  uint64_t stolen;     /* tasks moved by those steals */
  uint64_t injected;   /* tasks taken from the injection queue */
  uint64_t overflows;  /* times half the ring went to the injection queue */
  uint64_t parks;      /* times the worker parked its thread */
} cx_runtime_worker_stats;

/* Worker `worker`'s counters. Any thread. CX_OK or CX_EINVAL (bad index). */
int cx_runtime_get_worker_stats(const cx_runtime *rt, size_t worker,
                                cx_runtime_worker_stats *out);

typedef struct cx_runtime_stats {
  uint64_t workers;
  uint64_t spawned;   /* tasks accepted */
  uint64_t live;      /* accepted and not finished */
  uint64_t polls;     /* sum over workers */
  uint64_t completed; /* sum over workers */
  uint64_t cancelled; /* sum over workers */
  uint64_t steals;    /* sum over workers */
  uint64_t parks;     /* sum over workers */
} cx_runtime_stats;

/* Totals. Any thread. spawned and live are exact at the moment each shard
 * of the task list is read; the sums are snapshots. CX_OK or CX_EINVAL. */
int cx_runtime_get_stats(const cx_runtime *rt, cx_runtime_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_RUNTIME_H */
