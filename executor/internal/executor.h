/*
 * The executor's private parts, shared by the files it is split into:
 *
 *   executor.c      lifetime, the public run/step/join/block_on calls, the
 *                   I/O host (cx_context.host)
 *   queue.c         the local ready queue, the remote (mutex) queues, the
 *                   owned list, taking remote wakes and spawns in
 *   poll.c          the poll loop: one task's poll, a tick, due timers
 *   park.c          parking through the driver, unparking, "can anything
 *                   still happen?"
 *   spawner.c       spawners: spawning from any thread
 *   debug.c         statistics and debug introspection
 *
 * Threads. Fields under "owner" are touched only by the thread driving the
 * executor (run, step, join, destroy, and the tasks it polls). Fields under
 * "shared" are guarded by `mu` or are atomics, as marked.
 */
#ifndef CEXEC_INTERNAL_EXECUTOR_H
#define CEXEC_INTERNAL_EXECUTOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "executor/driver.h"
#include "executor/executor.h"
#include "executor/internal/futex_driver.h"
#include "executor/internal/task.h"
#include "executor/internal/task_blocks.h"
#include "waker/internal/current.h"

struct cx_executor {
  cx__scheduler sched; /* first: tasks see the executor through this */
  cx_driver_host host; /* offered to futures as cx_context.host */

  /* Owner thread only. */
  cx__task *local_head, *local_tail;
  size_t local_len;
  cx__task *owned; /* unfinished tasks, doubly linked */
  size_t live;
  bool running;
  bool destroyed;
  cx_timers timers;
  cx_executor_stats stats;
  cx_driver *io_driver; /* NULL until a future first asks for I/O */
  /* The last park was in io_driver and dispatched its events: the next
   * gather need not poll it again at once. */
  bool io_just_parked;
  /* Observability (observe.c): NULL when off. Set at create, then read
   * only (so other threads may read the pointer). */
  struct cx__observer *obs;
  /* The scheduler of tracked tasks (observe.c): the same queues, plus a
   * debug block per task and a wake timestamp. Set at create. */
  cx__scheduler sched_tracked;
  uint64_t next_task_id; /* ids of tracked tasks */
  /* Task memory when blocks are on (the schedulers' mem_alloc is set):
   * allocation on this thread, frees from any (task_blocks.h). */
  cx__task_blocks blocks;

  /* Shared. */
  _Atomic size_t refs;
  _Atomic bool remote_pending; /* something waits on the remote queues */
  pthread_mutex_t mu;
  cx__futex_driver futex; /* parks the executor until io_driver exists */
  cx_driver *driver;      /* guarded by mu: what the executor parks on */
  cx__task *remote_head, *remote_tail; /* guarded by mu */
  cx__task *spawned_head, *spawned_tail;
  size_t remote_len;     /* guarded by mu: both remote lists */
  size_t remote_spawned; /* guarded by mu: tasks on the spawned list */
  size_t spawners;       /* guarded by mu */
  bool sleeping;         /* guarded by mu */
  bool closed;           /* guarded by mu */
  /* Guarded by mu: the last spawner went since the last park. Makes the
   * next park return at once, so a drop that lands between run()'s checks
   * and cx__park() (when `sleeping` is not yet set) is not lost. */
  bool spawners_gone;
  /* Guarded by mu: dump/metrics requests from other threads (observe.c),
   * served by cx__take_remote; they also set remote_pending. */
  struct cx__obs_request *obs_requests;
};

/* True when the calling thread is driving ex (the marker of
 * waker/internal/current.h): the check on every wake's scheduling path.
 * One read of the marker; the runtime's worker marker, which
 * cx_executor_current filters out, never equals an executor. */
static inline bool cx__ex_is_current(const cx_executor *ex) {
  return cx__current_executor() == (const void *)ex;
}

/* The executor whose scheduler s is: ex->sched (first member) or, for
 * tracked tasks, ex->sched_tracked (observe.c; the one with a nonzero
 * task_extra). */
static inline cx_executor *cx__ex_of_tracked(cx__scheduler *s) {
  return (cx_executor *)((char *)s - offsetof(cx_executor, sched_tracked));
}
static inline cx_executor *cx__ex_of_sched(cx__scheduler *s) {
  return s->task_extra ? cx__ex_of_tracked(s) : (cx_executor *)s;
}

/* Lifetime: every task allocation, spawner and the owner hold a reference;
 * the last one frees the executor (and its drivers). */
void cx__ex_ref(cx_executor *ex);
void cx__ex_unref(cx_executor *ex);

/* queue.c; the local queue's two operations are inline: they are on every
 * poll's path. */
static inline void cx__local_push(cx_executor *ex, cx__task *t) {
  t->next = NULL;
  if (ex->local_tail)
    ex->local_tail->next = t;
  else
    ex->local_head = t;
  ex->local_tail = t;
  ex->local_len++;
}

static inline cx__task *cx__local_pop(cx_executor *ex) {
  cx__task *t = ex->local_head;
  if (t == NULL) return NULL;
  ex->local_head = t->next;
  if (ex->local_head == NULL) ex->local_tail = NULL;
  t->next = NULL;
  ex->local_len--;
  return t;
}

/* Appends t to one of the mu-guarded lists (`spawned`: the spawned list,
 * else the woken list). Returns the driver to unpark when the executor was
 * parked (a reference to ex is then held for the caller: pass both to
 * cx__unpark once mu is unlocked), else NULL. */
cx_driver *cx__remote_push_locked(cx_executor *ex, bool spawned, cx__task *t);
/* The owned list (unfinished tasks; owner thread). Inline: on every spawn
 * and every finish. */
static inline void cx__owned_link(cx_executor *ex, cx__task *t) {
  t->owned_prev = NULL;
  t->owned_next = ex->owned;
  if (ex->owned) ex->owned->owned_prev = t;
  ex->owned = t;
  ex->live++;
}

static inline void cx__owned_unlink(cx_executor *ex, cx__task *t) {
  if (t->owned_prev)
    t->owned_prev->owned_next = t->owned_next;
  else
    ex->owned = t->owned_next;
  if (t->owned_next) t->owned_next->owned_prev = t->owned_prev;
  t->owned_prev = t->owned_next = NULL;
  ex->live--;
}
void cx__take_remote(cx_executor *ex);
bool cx__remote_empty(cx_executor *ex); /* locks mu */
/* The scheduler callback: queue a woken task (any thread). */
void cx__ex_schedule(cx__scheduler *s, cx__task *t);

/* poll.c */
/* Polls up to `limit` ready tasks (after taking in remote work, due timers
 * and I/O events). Returns the number polled. */
size_t cx__tick(cx_executor *ex, size_t limit);
void cx__run_task(cx_executor *ex, cx__task *t);
/* Timers and remote wakes are looked at once per this many polls, so a
 * busy executor cannot starve them, nor pay for a clock read per poll. */
#define CX__CHECK_INTERVAL 64

/* Spawning (executor.c): cx_spawn with an optional name and site (file
 * NULL and name NULL: untracked unless the executor tracks all tasks). */
int cx__spawn(cx_executor *ex, const char *name, const char *file, int line,
              const cx_future_vtable *vtable, const void *state,
              cx_join_handle **handle);

/* park.c */
bool cx__can_progress(cx_executor *ex);
void cx__park(cx_executor *ex);
/* Ends a park (after mu was unlocked) and drops the reference that
 * cx__remote_push_locked took. */
void cx__unpark(cx_executor *ex, cx_driver *d);
/* Under mu: if the executor is parked, claims the wake-up (clears
 * `sleeping`, takes a reference to ex) and returns the driver to unpark. */
cx_driver *cx__claim_unpark_locked(cx_executor *ex);

#endif /* CEXEC_INTERNAL_EXECUTOR_H */
