/*
 * The executor.
 *
 * Queues. Tasks woken on the executor's own thread go on `local`, a plain
 * intrusive FIFO touched by that thread alone: no lock, no atomic beyond the
 * task's own state CAS. Tasks woken (or spawned) from other threads go on
 * `remote` / `spawned` under `mu`; `remote_pending` tells the executor
 * without locking that there is something to take in. A task is on at most
 * one queue at a time (its SCHEDULED bit), so one link field serves both.
 *
 * Parking. With nothing ready the executor sets `sleeping` under `mu` and
 * waits until the next timer deadline. A remote wake signals it only if
 * `sleeping` is set, and clears it, so a busy executor costs its wakers no
 * system call and a parked one gets exactly one signal. On Linux the wait
 * is a futex on `park_seq`, entered and signalled with `mu` released: one
 * FUTEX_WAIT and one FUTEX_WAKE per park, nothing else (a condition
 * variable also makes the woken executor relock `mu`, which glibc pays
 * with one more FUTEX_WAKE; docs/performance.md, W5). Elsewhere, `cv`.
 *
 * Lifetime. The struct is shared with tasks (their scheduler), spawners and
 * join handles: `refs` counts the owner (until destroy), every spawner and
 * every task allocation. The last one frees it.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, condattr_setclock */
#define _DEFAULT_SOURCE         /* syscall(): the park futex */

#include "executor/executor.h"
#include "io/io.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#define CX__PARK_FUTEX 1
#else
#define CX__PARK_FUTEX 0
#endif

#include "executor/debug.h"
#include "executor/internal/task.h"

struct cx_executor {
  cx__scheduler sched; /* first: tasks see the executor through this */

  /* Owner thread only. */
  cx__task *local_head, *local_tail;
  size_t local_len;
  cx__task *owned; /* unfinished tasks, doubly linked */
  size_t live;
  bool running;
  bool destroyed;
  cx_timers timers;
  cx_executor_stats stats;
  cx_driver_host host; /* TEMP(h5-net): lazy I/O driver */
  cx_driver *io;

  /* Shared. */
  _Atomic size_t refs;
  _Atomic bool remote_pending;
  pthread_mutex_t mu;
  pthread_cond_t cv;         /* the park, where there is no futex */
  _Atomic uint32_t park_seq; /* the park futex: bumped by every unpark */
  cx__task *remote_head, *remote_tail; /* guarded by mu */
  cx__task *spawned_head, *spawned_tail;
  size_t remote_len;
  size_t spawners; /* guarded by mu */
  bool sleeping;   /* guarded by mu */
  bool closed;     /* guarded by mu */
  /* Guarded by mu: the last spawner went since the last park. Makes the
   * next park return at once, so a drop that lands between run()'s checks
   * and cx__park() (when `sleeping` is not yet set) is not lost. */
  bool spawners_gone;
};

static _Thread_local cx_executor *cx__current;

static int cx__ex_io_driver(cx_driver_host *h, cx_driver **out) {
  cx_executor *ex = (cx_executor *)((char *)h - offsetof(cx_executor, host));
  if (ex->io == NULL) {
    int rc = cx_io_driver_create(&ex->io);
    if (rc != CX_OK) return rc;
  }
  *out = ex->io;
  return CX_OK;
}

cx_executor *cx_executor_current(void) {
  return cx__current;
}

/* ---- lifetime ---------------------------------------------------------- */

static void cx__ex_unref(cx_executor *ex) {
  /* acq_rel: the last owner sees every other owner's writes (a fence would
   * do, but ThreadSanitizer does not model fences). */
  if (atomic_fetch_sub_explicit(&ex->refs, 1, memory_order_acq_rel) == 1) {
    pthread_cond_destroy(&ex->cv);
    pthread_mutex_destroy(&ex->mu);
    cx_free(ex, sizeof *ex, _Alignof(cx_executor));
  }
}

static void cx__ex_task_freed(cx__scheduler *s) {
  cx__ex_unref((cx_executor *)s);
}

/* ---- queues ------------------------------------------------------------ */

static void cx__local_push(cx_executor *ex, cx__task *t) {
  t->next = NULL;
  if (ex->local_tail)
    ex->local_tail->next = t;
  else
    ex->local_head = t;
  ex->local_tail = t;
  ex->local_len++;
}

static cx__task *cx__local_pop(cx_executor *ex) {
  cx__task *t = ex->local_head;
  if (t == NULL) return NULL;
  ex->local_head = t->next;
  if (ex->local_head == NULL) ex->local_tail = NULL;
  t->next = NULL;
  ex->local_len--;
  return t;
}

/* Appends to a mu-guarded list. Returns true when the executor was parked:
 * `sleeping` is cleared (so exactly one waker signals per park) and a
 * reference to ex is taken; the caller must call cx__unpark() once mu is
 * unlocked. */
static bool cx__remote_push_locked(cx_executor *ex, cx__task **head,
                                   cx__task **tail, cx__task *t) {
  t->next = NULL;
  if (*tail)
    (*tail)->next = t;
  else
    *head = t;
  *tail = t;
  ex->remote_len++;
  atomic_store_explicit(&ex->remote_pending, true, memory_order_release);
  if (!ex->sleeping) return false;
  ex->sleeping = false;
  /* Once mu is released the task may run and be freed, and with it the
   * task's reference to ex: keep ex alive until the signal is sent. */
  atomic_fetch_add_explicit(&ex->refs, 1, memory_order_relaxed);
  return true;
}

/* Signals the parked executor, after mu was unlocked: signalling with mu
 * held would wake the executor only for it to block on mu again (a futex
 * wait and a futex wake more per wake-up; docs/performance.md, W5). A
 * signal that arrives after the park ended (timeout) is a spurious wake-up,
 * which cx__park tolerates. Drops the reference cx__remote_push_locked
 * took. */
static void cx__unpark(cx_executor *ex) {
  if (ex->io) cx_driver_unpark(ex->io);
#if CX__PARK_FUTEX
  /* Release: orders our push (made under mu) before the executor's
   * acquire load of park_seq in cx__park_wait. */
  atomic_fetch_add_explicit(&ex->park_seq, 1, memory_order_release);
  syscall(SYS_futex, &ex->park_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
#else
  /* The condition variable is used the classic way: signalled under mu, so
   * the signal cannot fall between the waiter's check and its wait. */
  pthread_mutex_lock(&ex->mu);
  pthread_cond_signal(&ex->cv);
  pthread_mutex_unlock(&ex->mu);
#endif
  cx__ex_unref(ex);
}

static void cx__ex_schedule(cx__scheduler *s, cx__task *t) {
  cx_executor *ex = (cx_executor *)s;
  if (cx__current == ex) {
    cx__local_push(ex, t);
    return;
  }
  pthread_mutex_lock(&ex->mu);
  bool parked =
      cx__remote_push_locked(ex, &ex->remote_head, &ex->remote_tail, t);
  pthread_mutex_unlock(&ex->mu);
  if (parked) cx__unpark(ex);
}

static void cx__owned_link(cx_executor *ex, cx__task *t) {
  t->owned_prev = NULL;
  t->owned_next = ex->owned;
  if (ex->owned) ex->owned->owned_prev = t;
  ex->owned = t;
  ex->live++;
}

static void cx__owned_unlink(cx_executor *ex, cx__task *t) {
  if (t->owned_prev)
    t->owned_prev->owned_next = t->owned_next;
  else
    ex->owned = t->owned_next;
  if (t->owned_next) t->owned_next->owned_prev = t->owned_prev;
  t->owned_prev = t->owned_next = NULL;
  ex->live--;
}

/* Takes in remote wakes and spawns. Spawned tasks join the owned list here,
 * on the owner thread, which is the only one that touches it. */
static void cx__take_remote(cx_executor *ex) {
  if (!atomic_load_explicit(&ex->remote_pending, memory_order_acquire)) return;
  pthread_mutex_lock(&ex->mu);
  cx__task *spawned = ex->spawned_head;
  cx__task *woken = ex->remote_head;
  ex->spawned_head = ex->spawned_tail = NULL;
  ex->remote_head = ex->remote_tail = NULL;
  ex->remote_len = 0;
  atomic_store_explicit(&ex->remote_pending, false, memory_order_relaxed);
  pthread_mutex_unlock(&ex->mu);
  while (spawned) {
    cx__task *t = spawned;
    spawned = t->next;
    cx__owned_link(ex, t);
    cx__local_push(ex, t);
    ex->stats.spawned++; /* counted here: stats are the owner's */
  }
  while (woken) {
    cx__task *t = woken;
    woken = t->next;
    cx__local_push(ex, t);
  }
}

/* ---- polling ----------------------------------------------------------- */

static void cx__finish(cx_executor *ex, cx__task *t, bool has_output) {
  cx__owned_unlink(ex, t);
  if (has_output)
    ex->stats.completed++;
  else
    ex->stats.cancelled++;
  cx__task_complete(t, has_output);
}

static void cx__run_task(cx_executor *ex, cx__task *t) {
  cx__run_result run = cx__task_transition_to_running(t);
  if (run == CX__RUN_GONE) return;
  if (run == CX__RUN_CANCEL) {
    cx__finish(ex, t, false);
    return;
  }
  uint32_t polls = atomic_load_explicit(&t->polls, memory_order_relaxed);
  if (polls != UINT32_MAX)
    atomic_store_explicit(&t->polls, polls + 1, memory_order_relaxed);
  ex->stats.polls++;
  cx_waker waker = cx__task_waker_ref(t);
  cx_context cx = {&waker, ex, &ex->timers, &ex->host};
  const cx_future_vtable *vt = t->vtable;
  void *out = vt->output_size ? cx__task_output(t) : NULL;
  if (vt->poll(cx__task_state(t), &cx, out) == CX_READY) {
    cx__finish(ex, t, true);
    return;
  }
  cx__idle_result idle = cx__task_transition_to_idle(t);
  if (idle == CX__IDLE_NOTIFIED)
    cx__local_push(ex, t);
  else if (idle == CX__IDLE_CANCELLED)
    cx__finish(ex, t, false);
}

static void cx__fire_timers(cx_executor *ex) {
  if (ex->timers.count == 0) return;
  if (cx_timers_next_deadline(&ex->timers) > ex->timers.now &&
      cx_timers_next_deadline(&ex->timers) > cx_timers_now(&ex->timers))
    return;
  cx_timers_fire(&ex->timers, ex->timers.now);
}

/* Timers and remote wakes are looked at once per this many polls, so a
 * busy executor cannot starve them, nor pay for a clock read per poll. */
#define CX__CHECK_INTERVAL 64

/* One pass: polls up to `limit` ready tasks. Returns the number polled. */
static size_t cx__tick(cx_executor *ex, size_t limit) {
  size_t n = 0;
  cx__take_remote(ex);
  cx__fire_timers(ex);
  while (n < limit) {
    cx__task *t = cx__local_pop(ex);
    if (t == NULL) break;
    cx__run_task(ex, t);
    n++;
    if (n % CX__CHECK_INTERVAL == 0) {
      cx__take_remote(ex);
      cx__fire_timers(ex);
    }
  }
  return n;
}

static bool cx__enter(cx_executor *ex, cx_executor **saved) {
  if (ex->running) return false;
  ex->running = true;
  *saved = cx__current;
  cx__current = ex;
  return true;
}

static void cx__leave(cx_executor *ex, cx_executor *saved) {
  cx__current = saved;
  ex->running = false;
}

/* True when something can still happen without the owner's help: a timer,
 * a spawner, a queued wake, or an unfinished task that a waker points at. */
static bool cx__can_progress(cx_executor *ex) {
  if (ex->local_head || ex->timers.count > 0) return true;
  pthread_mutex_lock(&ex->mu);
  bool remote = ex->spawners > 0 || ex->remote_head || ex->spawned_head;
  pthread_mutex_unlock(&ex->mu);
  if (remote) return true;
  for (cx__task *t = ex->owned; t; t = t->owned_next) {
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    uint64_t refs = s >> CX__REF_SHIFT;
    uint64_t fixed = 1 + ((s & CX__JOIN_INTEREST) ? 1 : 0);
    if ((s & (CX__SCHEDULED | CX__RUNNING)) || refs > fixed) return true;
  }
  return false;
}

/* Parks until the next timer deadline or a remote wake. */
static void cx__park(cx_executor *ex) {
  uint64_t deadline = cx_timers_next_deadline(&ex->timers);
  uint64_t now = 0;
  if (deadline != CX_DEADLINE_NONE) {
    /* Idle time: do now the heap work the pop at the deadline would do.
     * Before reading the clock, which the wait below is measured from. */
    cx_timers_compact(&ex->timers);
    now = cx_timers_now(&ex->timers);
    if (deadline <= now) return;
  }
  pthread_mutex_lock(&ex->mu);
  if (ex->remote_head == NULL && ex->spawned_head == NULL &&
      !ex->spawners_gone) {
    ex->sleeping = true;
    ex->stats.parks++;
    if (ex->io) {
      pthread_mutex_unlock(&ex->mu);
      cx_driver_park(ex->io, deadline == CX_DEADLINE_NONE ? CX_DRIVER_FOREVER
                                                          : deadline - now);
      pthread_mutex_lock(&ex->mu);
      ex->sleeping = false;
    } else {
#if CX__PARK_FUTEX
      /* Read under mu: an unpark that follows can only come from a waker that
       * saw `sleeping` after this point, and it bumps park_seq first, so the
       * futex wait below either sleeps before the bump (and is woken) or
       * sees the new value and returns at once. Any early return (EINTR, a
       * late unpark from an earlier park) is a spurious wake-up: the caller
       * looks again and parks again. */
      uint32_t seq = atomic_load_explicit(&ex->park_seq, memory_order_acquire);
      pthread_mutex_unlock(&ex->mu);
      struct timespec rel, *timeout = NULL;
      if (deadline != CX_DEADLINE_NONE) {
        uint64_t ns = deadline - now;
        rel.tv_sec = (time_t)(ns / CX_NSEC_PER_SEC);
        rel.tv_nsec = (long)(ns % CX_NSEC_PER_SEC);
        timeout = &rel; /* FUTEX_WAIT: relative, on CLOCK_MONOTONIC */
      }
      syscall(SYS_futex, &ex->park_seq, FUTEX_WAIT_PRIVATE, seq, timeout, NULL,
              0);
      pthread_mutex_lock(&ex->mu);
      ex->sleeping = false; /* timed out or spurious: no waker cleared it */
#else
      if (deadline == CX_DEADLINE_NONE) {
        while (ex->sleeping) pthread_cond_wait(&ex->cv, &ex->mu);
      } else {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t at = (uint64_t)ts.tv_sec * CX_NSEC_PER_SEC +
                      (uint64_t)ts.tv_nsec + (deadline - now);
        ts.tv_sec = (time_t)(at / CX_NSEC_PER_SEC);
        ts.tv_nsec = (long)(at % CX_NSEC_PER_SEC);
        while (ex->sleeping) {
          if (pthread_cond_timedwait(&ex->cv, &ex->mu, &ts) != 0) break;
        }
        ex->sleeping = false;
      }
#endif
    }
  }
  ex->spawners_gone = false;
  pthread_mutex_unlock(&ex->mu);
}

/* ---- public API -------------------------------------------------------- */

int cx_executor_create(const cx_executor_options *opts, cx_executor **out) {
  if (out == NULL) return CX_EINVAL;
  *out = NULL;
  cx_executor *ex = cx_alloc(sizeof *ex, _Alignof(cx_executor));
  if (ex == NULL) return CX_ENOMEM;
  memset(ex, 0, sizeof *ex);
  ex->sched.schedule = cx__ex_schedule;
  ex->sched.task_freed = cx__ex_task_freed;
  ex->host.io_driver = cx__ex_io_driver;
  cx_timers_init(&ex->timers, opts ? opts->clock : NULL,
                 opts ? opts->clock_ctx : NULL);
  atomic_init(&ex->refs, 1);
  atomic_init(&ex->remote_pending, false);
  atomic_init(&ex->park_seq, 0);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&ex->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (rc != 0) {
    cx_free(ex, sizeof *ex, _Alignof(cx_executor));
    return CX_ENOMEM;
  }
  if (pthread_mutex_init(&ex->mu, NULL) != 0) {
    pthread_cond_destroy(&ex->cv);
    cx_free(ex, sizeof *ex, _Alignof(cx_executor));
    return CX_ENOMEM;
  }
  *out = ex;
  return CX_OK;
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
      pthread_mutex_lock(&ex->mu);
      bool empty = ex->remote_head == NULL && ex->spawned_head == NULL;
      pthread_mutex_unlock(&ex->mu);
      if (empty) break;
      continue;
    }
    /* An owned task is SCHEDULED by another thread whose push has not
     * landed yet: wait for it. */
    if (ex->local_head == NULL) cx__park(ex);
  }
  if (ex->io) ex->io->vtable->destroy(ex->io);
  ex->io = NULL;
  cx__leave(ex, saved);
  cx__ex_unref(ex);
  return CX_OK;
}

static int cx__spawn_check(const cx_future_vtable *vt, const void *state) {
  if (cx_future_vtable_check(vt) != CX_OK) return CX_EINVAL;
  if (state == NULL && vt->state_size > 0) return CX_EINVAL;
  return CX_OK;
}

int cx_spawn(cx_executor *ex, const cx_future_vtable *vtable, const void *state,
             cx_join_handle **handle) {
  if (handle) *handle = NULL;
  if (ex == NULL) return CX_EINVAL;
  int rc = cx__spawn_check(vtable, state);
  if (rc != CX_OK) return rc;
  if (ex->destroyed) return CX_ESHUTDOWN;
  cx__task *t = cx__task_create(vtable, state, &ex->sched, handle != NULL);
  if (t == NULL) return CX_ENOMEM;
  atomic_fetch_add_explicit(&ex->refs, 1, memory_order_relaxed);
  cx__owned_link(ex, t);
  cx__local_push(ex, t);
  ex->stats.spawned++;
  if (handle) *handle = cx__task_to_handle(t);
  return CX_OK;
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
  if (ex->io) cx_driver_park(ex->io, 0);
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
  if (cx__task_from_handle(h)->sched != &ex->sched) return CX_EINVAL;
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

/* ---- spawners ---------------------------------------------------------- */

/* A spawner is the executor pointer under another type: the count of live
 * spawners is kept in the executor, so cloning allocates nothing. */
static cx_executor *cx__spawner_ex(cx_spawner *sp) {
  return (cx_executor *)sp;
}

int cx_executor_spawner(cx_executor *ex, cx_spawner **out) {
  if (out) *out = NULL;
  if (ex == NULL || out == NULL) return CX_EINVAL;
  pthread_mutex_lock(&ex->mu);
  bool closed = ex->closed;
  if (!closed) {
    ex->spawners++;
    atomic_fetch_add_explicit(&ex->refs, 1, memory_order_relaxed);
  }
  pthread_mutex_unlock(&ex->mu);
  if (closed) return CX_ESHUTDOWN;
  *out = (cx_spawner *)ex;
  return CX_OK;
}

int cx_spawner_clone(cx_spawner *sp, cx_spawner **out) {
  if (out) *out = NULL;
  if (sp == NULL || out == NULL) return CX_EINVAL;
  cx_executor *ex = cx__spawner_ex(sp);
  pthread_mutex_lock(&ex->mu);
  ex->spawners++;
  atomic_fetch_add_explicit(&ex->refs, 1, memory_order_relaxed);
  pthread_mutex_unlock(&ex->mu);
  *out = sp;
  return CX_OK;
}

void cx_spawner_drop(cx_spawner *sp) {
  if (sp == NULL) return;
  cx_executor *ex = cx__spawner_ex(sp);
  pthread_mutex_lock(&ex->mu);
  ex->spawners--;
  bool parked = false;
  if (ex->spawners == 0) {
    /* run() may be waiting only for spawners to go: wake it if parked, and
     * if it is about to park, make that park return (spawners_gone). */
    ex->spawners_gone = true;
    if (ex->sleeping) {
      ex->sleeping = false;
      atomic_fetch_add_explicit(&ex->refs, 1, memory_order_relaxed);
      parked = true; /* cx__unpark, outside mu, drops that reference */
    }
  }
  pthread_mutex_unlock(&ex->mu);
  if (parked) cx__unpark(ex);
  cx__ex_unref(ex);
}

int cx_spawner_spawn(cx_spawner *sp, const cx_future_vtable *vtable,
                     const void *state, cx_join_handle **handle) {
  if (handle) *handle = NULL;
  if (sp == NULL) return CX_EINVAL;
  cx_executor *ex = cx__spawner_ex(sp);
  if (cx__current == ex) return cx_spawn(ex, vtable, state, handle);
  int rc = cx__spawn_check(vtable, state);
  if (rc != CX_OK) return rc;
  cx__task *t = cx__task_create(vtable, state, &ex->sched, handle != NULL);
  if (t == NULL) return CX_ENOMEM;
  pthread_mutex_lock(&ex->mu);
  if (ex->closed) {
    pthread_mutex_unlock(&ex->mu);
    cx__task_discard(t);
    return CX_ESHUTDOWN;
  }
  atomic_fetch_add_explicit(&ex->refs, 1, memory_order_relaxed);
  if (handle) *handle = cx__task_to_handle(t);
  bool parked =
      cx__remote_push_locked(ex, &ex->spawned_head, &ex->spawned_tail, t);
  pthread_mutex_unlock(&ex->mu);
  if (parked) cx__unpark(ex);
  return CX_OK;
}

int cx_executor_get_stats(const cx_executor *ex, cx_executor_stats *out) {
  if (ex == NULL || out == NULL) return CX_EINVAL;
  *out = ex->stats;
  out->live = ex->live;
  out->timers = ex->timers.count;
  return CX_OK;
}

/* ---- debug introspection ------------------------------------------------ */

/* Walks a queue: every task SCHEDULED and not RUNNING, no cycle, no task
 * twice (pairwise for small queues). Returns its length or -1. */
static long cx__check_queue(cx__task *head, size_t expect, const char **why) {
  size_t n = 0;
  for (cx__task *t = head; t; t = t->next) {
    if (n++ > expect) {
      *why = "queue longer than its count (cycle or duplicate)";
      return -1;
    }
    unsigned f = cx__task_flags(t);
    if (!(f & CX__SCHEDULED) || (f & CX__RUNNING)) {
      *why = "queued task not flagged SCHEDULED, or RUNNING";
      return -1;
    }
    if (expect <= 4096) {
      for (cx__task *u = t->next; u; u = u->next)
        if (u == t) {
          *why = "task queued twice";
          return -1;
        }
    }
  }
  if (n != expect) {
    *why = "queue length differs from its count";
    return -1;
  }
  return (long)n;
}

size_t cx_executor_debug_ready_len(cx_executor *ex) {
  if (ex == NULL) return 0;
  pthread_mutex_lock(&ex->mu);
  size_t n = ex->local_len + ex->remote_len;
  pthread_mutex_unlock(&ex->mu);
  return n;
}

int cx_executor_debug_check(cx_executor *ex, const char **why) {
  const char *dummy;
  if (why == NULL) why = &dummy;
  *why = NULL;
  if (ex == NULL) {
    *why = "NULL executor";
    return CX_EINVAL;
  }
  if (cx__check_queue(ex->local_head, ex->local_len, why) < 0) return CX_EINVAL;
  pthread_mutex_lock(&ex->mu);
  size_t remote_woken = 0, remote_spawned = 0;
  /* Bounded walks: a cycle must not hang the check. */
  for (cx__task *t = ex->remote_head; t && remote_woken <= ex->remote_len;
       t = t->next)
    remote_woken++;
  for (cx__task *t = ex->spawned_head; t && remote_spawned <= ex->remote_len;
       t = t->next)
    remote_spawned++;
  long r1 = cx__check_queue(ex->remote_head, remote_woken, why);
  long r2 =
      r1 < 0 ? -1 : cx__check_queue(ex->spawned_head, remote_spawned, why);
  bool len_ok = remote_woken + remote_spawned == ex->remote_len;
  pthread_mutex_unlock(&ex->mu);
  if (r1 < 0 || r2 < 0) return CX_EINVAL;
  if (!len_ok) {
    *why = "remote queue length differs from its count";
    return CX_EINVAL;
  }
  size_t owned = 0, owned_scheduled = 0;
  cx__task *prev = NULL;
  for (cx__task *t = ex->owned; t; t = t->owned_next) {
    if (t->owned_prev != prev) {
      *why = "owned list links broken";
      return CX_EINVAL;
    }
    prev = t;
    if (++owned > ex->live) {
      *why = "more owned tasks than live count";
      return CX_EINVAL;
    }
    unsigned f = cx__task_flags(t);
    if (f & CX__COMPLETE) {
      *why = "finished task still owned";
      return CX_EINVAL;
    }
    if (cx__task_refs(t) < 1u + ((f & CX__JOIN_INTEREST) ? 1u : 0u) +
                               ((f & CX__SCHEDULED) ? 1u : 0u)) {
      *why = "reference count below the references known to be held";
      return CX_EINVAL;
    }
    if ((f & CX__SCHEDULED) && !(f & CX__RUNNING)) owned_scheduled++;
  }
  if (owned != ex->live) {
    *why = "owned list length differs from live count";
    return CX_EINVAL;
  }
  /* Every queued owned task is SCHEDULED (checked above); conversely every
   * SCHEDULED idle task must be queued exactly once. Remote spawns are not
   * owned yet. Holds when no other thread is mid-wake. */
  if (owned_scheduled != ex->local_len + remote_woken) {
    *why = "scheduled tasks differ from queued tasks";
    return CX_EINVAL;
  }
  return CX_OK;
}

int cx_join_handle_debug_info(const cx_join_handle *h,
                              cx_task_debug_info *out) {
  if (h == NULL || out == NULL) return CX_EINVAL;
  const cx__task *t = cx__task_from_handle(h);
  uint64_t s =
      atomic_load_explicit(&((cx__task *)t)->state, memory_order_acquire);
  out->refs = s >> CX__REF_SHIFT;
  out->scheduled = (s & CX__SCHEDULED) != 0;
  out->running = (s & CX__RUNNING) != 0;
  out->complete = (s & CX__COMPLETE) != 0;
  out->cancelled = (s & CX__CANCELLED) != 0;
  out->has_output = (s & CX__OUTPUT) != 0;
  out->join_waker = (s & CX__JOIN_WAKER) != 0;
  out->polls =
      atomic_load_explicit(&((cx__task *)t)->polls, memory_order_relaxed);
  return CX_OK;
}

int cx_waker_debug_handle(const cx_waker *w, const cx_join_handle **out) {
  if (w == NULL || out == NULL) return CX_EINVAL;
  if (w->vtable != &cx__task_waker_vtable) return CX_EINVAL;
  *out = cx__task_to_handle((cx__task *)w->data);
  return CX_OK;
}
