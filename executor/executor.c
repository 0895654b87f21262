/*
 * The executor: lifetime, the public calls that drive it, and the I/O host.
 *
 * How the parts fit (executor/internal/executor.h lists the files): tasks
 * are queued by cx__ex_schedule (queue.c) when woken; run/step/join drive
 * cx__tick (poll.c), which polls them; with nothing ready the executor
 * parks in its driver (park.c) until a timer is due or another thread
 * unparks it (a remote wake, a spawn, the last spawner going).
 *
 * Lifetime. The struct is shared with tasks (their scheduler), spawners and
 * join handles: `refs` counts the owner (until destroy), every spawner and
 * every task allocation. The last one frees it, and its drivers with it.
 *
 * Drivers. The executor parks on its embedded futex driver until a future
 * asks for I/O (cx_context.host->io_driver): then it creates the I/O driver
 * (io/io.h) and parks there for good. The switch happens on the owner
 * thread, during a poll, so never while parked; `driver` is read and
 * written under mu, so a waker that claims an unpark always gets the driver
 * the executor parks (or will park) on. The futex driver stays alive (it is
 * embedded) for a waker that claimed it just before the switch.
 */
#include "executor/executor.h"

#include <limits.h>
#include <string.h>

#include "executor/internal/executor.h"
#include "executor/internal/observe.h"
#include "io/io.h"
#include "waker/internal/alloc.h"
#include "waker/internal/current.h"

/* The per-thread marker lives in waker/ (waker/internal/current.h) so that
 * blocking calls below the executor can see it too. */
/* A runtime worker's marker is not an executor: report none there (callers
 * may dereference what cx_executor_current returns). */
cx_executor *cx_executor_current(void) {
  void *m = cx__current_executor();
  return m == cx__runtime_worker_marker() ? NULL : (cx_executor *)m;
}

/* ---- lifetime ------------------------------------------------------------ */

void cx__ex_ref(cx_executor *ex) {
  /* Relaxed: the caller holds a reference (or mu, under which the owner's
   * reference is known to be alive); a new reference publishes nothing. */
  atomic_fetch_add_explicit(&ex->refs, 1, memory_order_relaxed);
}

void cx__ex_unref(cx_executor *ex) {
  /* acq_rel: the last owner sees every other owner's writes (a fence would
   * do, but ThreadSanitizer does not model fences). Pairs with every other
   * decrement. */
  if (atomic_fetch_sub_explicit(&ex->refs, 1, memory_order_acq_rel) == 1) {
    if (ex->io_driver) ex->io_driver->vtable->destroy(ex->io_driver);
    ex->futex.base.vtable->destroy(&ex->futex.base);
    pthread_mutex_destroy(&ex->mu);
    cx__obs_destroy(ex->obs);
    /* Every task is gone (each held a reference), so every slot is free. */
    cx__task_blocks_destroy(&ex->blocks);
    cx_free(ex, sizeof *ex, _Alignof(cx_executor));
  }
}

static void cx__ex_task_freed(cx__scheduler *s) {
  cx__ex_unref((cx_executor *)s);
}

/* The scheduler's task memory hooks (task.h): task blocks, for both
 * schedulers (plain and tracked). */

/* The tag a task keeps is its slot's size class. */
static void *cx__ex_mem_alloc(cx__scheduler *s, size_t size, size_t align,
                              unsigned *tag, bool *fallback) {
  cx_executor *ex = cx__ex_of_sched(s);
  *fallback = !cx__task_blocks_fits(size, align);
  if (*fallback) return NULL;
  *tag = (unsigned)cx__task_blocks_class(size);
  return cx__task_blocks_alloc(&ex->blocks, *tag);
}

static void cx__ex_mem_free(cx__scheduler *s, void *p, unsigned tag) {
  cx_executor *ex = cx__ex_of_sched(s);
  /* The owner's plain push only while it drives ex (its marker): the owner
   * is then not inside an allocation, and only it allocates. */
  cx__task_blocks_free(&ex->blocks, p, tag, cx__ex_is_current(ex));
}

/* cx_driver_host.io_driver: the executor's I/O driver, created on first
 * use. Called by futures, on the owner thread, during a poll. */
static int cx__ex_io_driver(cx_driver_host *h, cx_driver **out) {
  cx_executor *ex = (cx_executor *)((char *)h - offsetof(cx_executor, host));
  if (out == NULL) return CX_EINVAL;
  *out = NULL;
  if (ex->io_driver == NULL) {
    cx_driver *d;
    int rc = cx_io_driver_create(&d);
    if (rc != CX_OK) return rc;
    ex->io_driver = d;
    pthread_mutex_lock(&ex->mu);
    ex->driver = d; /* not parked now: we are polling */
    pthread_mutex_unlock(&ex->mu);
  }
  *out = ex->io_driver;
  return CX_OK;
}

/* CX_TASK_MEMORY_AUTO's choice. */
static bool cx__auto_blocks(void) {
#if defined(__SANITIZE_ADDRESS__)
  return false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return false;
#else
  return cx__allocator_is_default();
#endif
#else
  return cx__allocator_is_default();
#endif
}

int cx_executor_create(const cx_executor_options *opts, cx_executor **out) {
  if (out == NULL) return CX_EINVAL;
  *out = NULL;
  cx_task_memory mem = opts ? opts->task_memory : CX_TASK_MEMORY_AUTO;
  if (mem != CX_TASK_MEMORY_AUTO && mem != CX_TASK_MEMORY_BLOCKS &&
      mem != CX_TASK_MEMORY_EACH)
    return CX_EINVAL;
  cx_executor *ex = cx_alloc(sizeof *ex, _Alignof(cx_executor));
  if (ex == NULL) return CX_ENOMEM;
  memset(ex, 0, sizeof *ex);
  ex->sched.schedule = cx__ex_schedule;
  ex->sched.task_freed = cx__ex_task_freed;
  cx__obs_sched_init(ex); /* ex->sched_tracked */
  cx__task_blocks_init(&ex->blocks);
  if (mem == CX_TASK_MEMORY_BLOCKS ||
      (mem == CX_TASK_MEMORY_AUTO && cx__auto_blocks())) {
    ex->sched.mem_alloc = ex->sched_tracked.mem_alloc = cx__ex_mem_alloc;
    ex->sched.mem_free = ex->sched_tracked.mem_free = cx__ex_mem_free;
  }
  ex->host.io_driver = cx__ex_io_driver;
  cx_timers_init(&ex->timers, opts ? opts->clock : NULL,
                 opts ? opts->clock_ctx : NULL);
  atomic_init(&ex->refs, 1);
  atomic_init(&ex->remote_pending, false);
  if (cx__futex_driver_init(&ex->futex) != CX_OK) {
    cx_free(ex, sizeof *ex, _Alignof(cx_executor));
    return CX_ENOMEM;
  }
  ex->driver = &ex->futex.base;
  if (pthread_mutex_init(&ex->mu, NULL) != 0) {
    ex->futex.base.vtable->destroy(&ex->futex.base);
    cx_free(ex, sizeof *ex, _Alignof(cx_executor));
    return CX_ENOMEM;
  }
  if (cx__obs_create(opts ? opts->observe : NULL, &ex->obs) != CX_OK) {
    pthread_mutex_destroy(&ex->mu);
    ex->futex.base.vtable->destroy(&ex->futex.base);
    cx_free(ex, sizeof *ex, _Alignof(cx_executor));
    return CX_ENOMEM;
  }
  *out = ex;
  return CX_OK;
}

static bool cx__enter(cx_executor *ex, cx_executor **saved) {
  if (ex->running) return false;
  ex->running = true;
  *saved = (cx_executor *)cx__set_current_executor(ex);
  return true;
}

static void cx__leave(cx_executor *ex, cx_executor *saved) {
  cx__set_current_executor(saved);
  ex->running = false;
}

int cx_executor_destroy(cx_executor *ex) {
  if (ex == NULL) return CX_OK;
  cx_executor *saved;
  if (ex->destroyed || !cx__enter(ex, &saved)) return CX_EBUSY;
  ex->destroyed = true;
  pthread_mutex_lock(&ex->mu);
  ex->closed = true;
  pthread_mutex_unlock(&ex->mu);
  for (;;) {
    cx__take_remote(ex);
    /* Cancelling an idle task queues it here (we are the current
     * executor); dropping futures may wake or cancel others: loop. */
    for (cx__task *t = ex->owned; t; t = t->owned_next) cx__task_cancel(t);
    cx__task *t;
    while ((t = cx__local_pop(ex)) != NULL) cx__run_task(ex, t);
    if (ex->owned == NULL) {
      if (cx__remote_empty(ex)) break;
      continue;
    }
    /* An owned task is SCHEDULED by another thread whose push has not
     * landed yet: wait for it. */
    if (ex->local_head == NULL) cx__park(ex);
  }
  /* Every future has been dropped. A future without a drop function (a
   * coroutine that left a sleep registered) leaves a timer entry holding
   * its task's waker: release them, or those tasks (and so the executor)
   * would never be freed. */
  cx_timers_cancel_all(&ex->timers);
  cx__leave(ex, saved);
  cx__ex_unref(ex);
  return CX_OK;
}

/* ---- spawning and running ------------------------------------------------ */

/* Inlined into cx_spawn, whose constant NULL name and file remove the
 * tracking branches from the commonest spawn (W1). */
static inline __attribute__((always_inline)) int cx__spawn_impl(
    cx_executor *ex, const char *name, const char *file, int line,
    const cx_future_vtable *vtable, const void *state,
    cx_join_handle **handle) {
  if (handle) *handle = NULL;
  if (ex == NULL) return CX_EINVAL;
  if (cx_future_vtable_check(vtable) != CX_OK) return CX_EINVAL;
  if (state == NULL && vtable->state_size > 0) return CX_EINVAL;
  if (ex->destroyed) return CX_ESHUTDOWN;
  /* Tracked (observe.c): named, or on an executor that tracks all. */
  bool debug = name || file || (ex->obs && ex->obs->track);
  /* local: spawning is the owner thread's (task blocks). */
  cx__task *t =
      cx__task_create(vtable, state, debug ? &ex->sched_tracked : &ex->sched,
                      handle != NULL, true);
  if (t == NULL) return CX_ENOMEM;
  if (debug) cx__obs_task_init(t, name, file, line);
  cx__ex_ref(ex); /* the task's */
  cx__owned_link(ex, t);
  cx__local_push(ex, t);
  ex->stats.spawned++;
  if (handle) *handle = cx__task_to_handle(t);
  if (debug || ex->obs) cx__obs_accept(ex, t);
  return CX_OK;
}

int cx__spawn(cx_executor *ex, const char *name, const char *file, int line,
              const cx_future_vtable *vtable, const void *state,
              cx_join_handle **handle) {
  return cx__spawn_impl(ex, name, file, line, vtable, state, handle);
}

int cx_spawn(cx_executor *ex, const cx_future_vtable *vtable, const void *state,
             cx_join_handle **handle) {
  return cx__spawn_impl(ex, NULL, NULL, 0, vtable, state, handle);
}

int cx_spawn_named(cx_executor *ex, const char *name, const char *file,
                   int line, const cx_future_vtable *vtable, const void *state,
                   cx_join_handle **handle) {
  return cx__spawn(ex, name, file, line, vtable, state, handle);
}

int cx_executor_run(cx_executor *ex) {
  if (ex == NULL) return CX_EINVAL;
  cx_executor *saved;
  if (ex->destroyed || !cx__enter(ex, &saved)) return CX_EBUSY;
  int rc = CX_OK;
  for (;;) {
    cx__tick(ex, SIZE_MAX);
    if (ex->local_head) continue;
    if (ex->owned == NULL) {
      pthread_mutex_lock(&ex->mu);
      bool done = ex->spawners == 0 && ex->remote_head == NULL &&
                  ex->spawned_head == NULL;
      pthread_mutex_unlock(&ex->mu);
      if (done) break;
    }
    if (!cx__can_progress(ex)) {
      /* No task left either: the last spawner went after the check above,
       * so this is the normal end, not a deadlock. */
      if (ex->owned == NULL) break;
      rc = CX_EDEADLK;
      break;
    }
    cx__park(ex);
  }
  cx__leave(ex, saved);
  return rc;
}

int cx_executor_run_until_idle(cx_executor *ex) {
  if (ex == NULL) return CX_EINVAL;
  cx_executor *saved;
  if (ex->destroyed || !cx__enter(ex, &saved)) return CX_EBUSY;
  uint64_t total = 0;
  size_t n;
  while ((n = cx__tick(ex, SIZE_MAX)) > 0) total += n;
  cx__leave(ex, saved);
  return total > INT32_MAX ? INT32_MAX : (int)total;
}

int cx_executor_step(cx_executor *ex) {
  if (ex == NULL) return CX_EINVAL;
  cx_executor *saved;
  if (ex->destroyed || !cx__enter(ex, &saved)) return CX_EBUSY;
  int n = (int)cx__tick(ex, 1);
  cx__leave(ex, saved);
  return n;
}

int cx_executor_join(cx_executor *ex, cx_join_handle *h, void *out,
                     size_t out_size) {
  if (ex == NULL || h == NULL) return CX_EINVAL;
  cx__scheduler *s = cx__task_from_handle(h)->sched;
  if (s != &ex->sched && s != &ex->sched_tracked) return CX_EINVAL;
  cx_executor *saved;
  if (ex->destroyed || !cx__enter(ex, &saved)) return CX_EBUSY;
  int rc = CX_OK;
  while (!cx_join_handle_is_finished(h)) {
    if (cx__tick(ex, CX__CHECK_INTERVAL) > 0) continue;
    if (cx_join_handle_is_finished(h)) break;
    if (!cx__can_progress(ex)) {
      rc = CX_EDEADLK;
      break;
    }
    cx__park(ex);
  }
  cx__leave(ex, saved);
  if (rc != CX_OK) return rc;
  return cx_join_handle_try_join(h, out, out_size);
}

int cx_executor_block_on(cx_executor *ex, const cx_future_vtable *vtable,
                         const void *state, void *out, size_t out_size) {
  if (ex == NULL || vtable == NULL) return CX_EINVAL;
  if (out != NULL && out_size != vtable->output_size) return CX_EINVAL;
  /* Refuse before spawning: a task left behind by a failed call would be a
   * surprise (e.g. block_on from inside one of ex's own tasks). */
  if (ex->running || ex->destroyed) return CX_EBUSY;
  cx_join_handle *h;
  int rc = cx_spawn(ex, vtable, state, &h);
  if (rc != CX_OK) return rc;
  rc = cx_executor_join(ex, h, out, out_size);
  cx_join_handle_detach(h);
  return rc;
}

int cx_block_on(const cx_future_vtable *vtable, const void *state, void *out,
                size_t out_size) {
  cx_executor *ex;
  int rc = cx_executor_create(NULL, &ex);
  if (rc != CX_OK) return rc;
  rc = cx_executor_block_on(ex, vtable, state, out, out_size);
  cx_executor_destroy(ex);
  return rc;
}
