/*
 * The multi-threaded runtime: N workers, work stealing.
 *
 *   spawn / wake from a worker          spawn / wake from any other thread
 *            |                                         |
 *            v                                         v
 *   +-- worker i -------------+              +- injection queue --+
 *   | LIFO slot (1 task)      |  overflow    | mutex, FIFO list   |
 *   | ring (256, lock-free)   | -----------> | + atomic length    |
 *   +-------------------------+   half       +--------------------+
 *        ^  steal half                          | every 61 ticks, and
 *        |  (idle workers)                      | when the ring is empty
 *
 * Tasks are cexec's tasks (executor/internal/task.h): the state word
 * decides who may poll (RUNNING), and a queue holds a task only while it
 * is SCHEDULED, with one reference. A worker pops a task, calls
 * transition_to_running (acquire on the state word: it sees every write
 * made before the wake that queued it), polls it, and transition_to_idle
 * tells it whether to queue it again. So a task moves between workers
 * freely but is never polled on two at once.
 *
 * Queues, in the order a worker looks (next_task, then search):
 *   - the LIFO slot: the task woken last by the task this worker is
 *     polling; polled right after it (message-passing pairs stay on one
 *     core, their data in its cache), at most CX__LIFO_MAX times in a row,
 *     then pushed to the ring so the pair cannot starve the rest. Only its
 *     worker touches it (no atomics); not stealable.
 *   - the ring (runtime/internal/ring.h): FIFO for its owner, half stolen
 *     by idle workers; full -> half of it goes to the injection queue.
 *   - the injection queue, looked at first every CX__INJECT_INTERVAL ticks
 *     so that a busy worker cannot starve remote spawns and wakes, and
 *     whenever the ring is empty (taking a batch into the ring).
 *   - other workers' rings (stealing), when this worker may search.
 *
 * Idle workers (Tokio's idle.rs, rewritten): one atomic word `idle` packs
 * the number of searching workers (low 16 bits) with the number of
 * unparked ones (high 16 bits). At most half of the workers search at
 * once (stealing is a burst of cache misses on others' rings). Work made
 * visible where others must find it is followed by notify_one(), which
 * wakes a parked worker only if none is searching. The race "worker parks
 * while work arrives" is settled by read-modify-writes on `idle` (the
 * producer's fetch_add(0) after its push, the worker's decrements before
 * its last look): they are totally ordered, so either the producer sees the
 * worker parked (and wakes one) or the worker's look sees the work. Every
 * worker about to park looks at the injection queue after its decrement;
 * the last searcher also looks at every ring. docs/runtime.md has the
 * argument in full.
 *
 * Parking: each worker sleeps on its own futex word (EMPTY / NOTIFIED /
 * PARKED, as a thread parker): a wake that comes before the sleep is not
 * lost. The list of sleeping workers is guarded by `sleep_mu`. A parking
 * worker sleeps at most until the runtime's earliest timer, then fires
 * what is due (docs/runtime.md, "Timers"); one parked worker at a time
 * sleeps in the I/O driver instead of its futex ("I/O").
 *
 * Task list and shutdown: every unfinished task is on one of several
 * mutex-guarded lists (shards, picked by the task's address, so spawns and
 * completions on different workers rarely share a lock). Shutdown closes
 * every shard (spawns fail from then on), waits for the lists to empty
 * until its deadline, cancels what is left through them, waits again, and
 * only then stops the workers: every task finishes, and its future is
 * dropped, on a worker, exactly once.
 *
 * Lifetime: `refs` counts the owner (until destroy), every spawner and every
 * task allocation; the last one frees the runtime.
 */
#define _GNU_SOURCE /* syscall(), sysconf */

#include "runtime/runtime.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if !defined(__linux__)
#error "the runtime parks its workers on a Linux futex"
#endif
#include <linux/futex.h>
#include <sys/syscall.h>

#include "executor/driver.h"
#include "executor/internal/task.h"
#include "io/io.h"
#include "runtime/internal/ring.h"
#include "runtime/internal/runtime_debug.h"
#include "timer/timer.h"
#include "waker/internal/current.h"

/* Consecutive polls of LIFO-slot tasks before the slot's task goes to the
 * back of the ring (Tokio uses 3 too). */
#define CX__LIFO_MAX 3
/* A worker looks at the injection queue first once every this many ticks:
 * prime, so that it does not fall into step with periodic task patterns. */
#define CX__INJECT_INTERVAL 61

#define CX__IDLE_SEARCHING_MASK 0xffffu
#define CX__IDLE_UNPARKED_ONE (1u << 16)

/* ---- structures --------------------------------------------------------- */

/* Counters written by their worker only: relaxed load + store, read by
 * anyone with relaxed loads (a snapshot). */
typedef struct cx__counters {
  _Atomic uint64_t polls, lifo_polls, completed, cancelled, steals, stolen,
      injected, overflows, parks;
} cx__counters;

/* A worker's own counter: only that worker writes it, so a relaxed load
 * plus store (no RMW) suffices; readers (stats) take relaxed snapshots and
 * pair with nothing. */
#define CX__COUNT(w, field, n)                                                \
  atomic_store_explicit(                                                      \
      &(w)->counters.field,                                                   \
      atomic_load_explicit(&(w)->counters.field, memory_order_relaxed) + (n), \
      memory_order_relaxed)

typedef struct cx__worker {
  _Alignas(64) cx__ring ring; /* shared with thieves */
  /* Its futex word: EMPTY, NOTIFIED, PARKED or PARKED_IO. */
  _Alignas(64) _Atomic uint32_t park;
  /* Owner thread only, from here. */
  _Alignas(64) struct cx_runtime *rt;
  size_t index;
  cx__task *lifo;
  uint32_t tick;
  uint32_t rng;
  bool searching; /* counted in rt->idle's searching part */
  bool in_poll;   /* a wake on this thread may use the LIFO slot */
  bool sleeping;  /* guarded by rt->sleep_mu: on the sleepers list */
  bool started;   /* its thread was created (create's cleanup) */
  pthread_t thread;
  cx__counters counters;
} cx__worker;

typedef struct cx__shard {
  _Alignas(64) pthread_mutex_t mu;
  cx__task *head; /* unfinished tasks, through owned_prev/owned_next */
  uint64_t live, spawned;
  bool closed;
} cx__shard;

struct cx_runtime {
  cx__scheduler sched; /* first: tasks see the runtime through this */
  size_t nworkers;
  cx__worker *workers;
  size_t nshards; /* a power of two */
  cx__shard *shards;
  cx_runtime_options opts;

  _Alignas(64) _Atomic size_t refs;

  /* The injection queue. inject_len mirrors inject_n for lock-free looks. */
  _Alignas(64) pthread_mutex_t inject_mu;
  cx__task *inject_head, *inject_tail; /* guarded by inject_mu */
  size_t inject_n;                     /* guarded by inject_mu */
  _Atomic size_t inject_len;

  /* Idle workers. */
  _Alignas(64) _Atomic uint32_t idle; /* searching | unparked << 16 */
  pthread_mutex_t sleep_mu;
  cx__worker **sleepers; /* guarded by sleep_mu */
  size_t nsleepers;      /* guarded by sleep_mu */

  /* Lifecycle. */
  _Alignas(64) _Atomic bool stop; /* workers exit their loop */
  pthread_mutex_t life_mu;        /* serializes shutdown / destroy */
  bool shut_down;                 /* guarded by life_mu */
  bool destroyed;                 /* guarded by life_mu */
  pthread_mutex_t done_mu;        /* shutdown's wait for the lists */
  pthread_cond_t done_cv;

  /* Timers: one driver for the whole runtime, every operation under
   * timer_mu (timer.h's lock hook), so a sleep may be registered on one
   * worker and re-polled, dropped or fired on another. */
  _Alignas(64) pthread_mutex_t timer_mu;
  cx_timers timers;

  /* I/O: one epoll driver, created by the first future that asks
   * (cx_context.host), under io_mu; then read without the lock. The worker
   * that takes io_token parks in it (or polls it with timeout 0): the
   * driver's park is called by one thread at a time. */
  _Alignas(64) _Atomic(cx_driver *) io;
  _Atomic bool io_token;
  pthread_mutex_t io_mu;
  cx_driver_host host;
};

static _Thread_local cx__worker *cx__current_worker;

/* ---- lifetime ------------------------------------------------------------ */

static void cx__rt_free(cx_runtime *rt) {
  for (size_t i = 0; i < rt->nshards; i++)
    pthread_mutex_destroy(&rt->shards[i].mu);
  pthread_mutex_destroy(&rt->inject_mu);
  pthread_mutex_destroy(&rt->sleep_mu);
  pthread_mutex_destroy(&rt->life_mu);
  pthread_mutex_destroy(&rt->done_mu);
  pthread_cond_destroy(&rt->done_cv);
  /* The driver is empty: each registered sleep's waker holds a task, and
   * each task a reference to rt. */
  pthread_mutex_destroy(&rt->timer_mu);
  /* relaxed: the last reference; the workers are joined. */
  cx_driver *io = atomic_load_explicit(&rt->io, memory_order_relaxed);
  if (io) io->vtable->destroy(io);
  pthread_mutex_destroy(&rt->io_mu);
  cx_free(rt->sleepers, rt->nworkers * sizeof *rt->sleepers,
          _Alignof(cx__worker *));
  cx_free(rt->shards, rt->nshards * sizeof *rt->shards, _Alignof(cx__shard));
  cx_free(rt->workers, rt->nworkers * sizeof *rt->workers,
          _Alignof(cx__worker));
  cx_free(rt, sizeof *rt, _Alignof(cx_runtime));
}

static void cx__rt_unref(cx_runtime *rt) {
  /* acq_rel: the last owner sees every other owner's writes before freeing
   * (ThreadSanitizer does not model the release + acquire-fence idiom). */
  if (atomic_fetch_sub_explicit(&rt->refs, 1, memory_order_acq_rel) == 1)
    cx__rt_free(rt);
}

static void cx__rt_task_freed(cx__scheduler *s) {
  cx__rt_unref((cx_runtime *)s);
}

/* ---- parking --------------------------------------------------------------
 * A thread parker on a futex word. Only the worker moves it away from
 * NOTIFIED; unparkers only set NOTIFIED. */
enum {
  CX__PARK_EMPTY = 0,
  CX__PARK_NOTIFIED = 1,
  CX__PARK_PARKED = 2,    /* asleep on the futex word */
  CX__PARK_PARKED_IO = 3, /* asleep in the runtime's I/O driver */
};

static void cx__parker_park(_Atomic uint32_t *p) {
  uint32_t expect = CX__PARK_EMPTY;
  /* acquire on both outcomes: pairs with the release exchange in unpark,
   * so a NOTIFIED we consume carries the unparker's writes. */
  if (!atomic_compare_exchange_strong_explicit(p, &expect, CX__PARK_PARKED,
                                               memory_order_acquire,
                                               memory_order_acquire)) {
    /* NOTIFIED already: consume it. acquire: as above. */
    atomic_exchange_explicit(p, CX__PARK_EMPTY, memory_order_acquire);
    return;
  }
  for (;;) {
    /* Sleeps only while the word still reads PARKED. */
    syscall(SYS_futex, p, FUTEX_WAIT_PRIVATE, CX__PARK_PARKED, NULL, NULL, 0);
    expect = CX__PARK_NOTIFIED;
    /* acquire: pairs with unpark's release exchange. */
    if (atomic_compare_exchange_strong_explicit(p, &expect, CX__PARK_EMPTY,
                                                memory_order_acquire,
                                                memory_order_relaxed))
      return;
    /* Spurious (EINTR, or a stale wake): still PARKED, sleep again. */
  }
}

/* As cx__parker_park, but gives up at `deadline` (CLOCK_MONOTONIC ns;
 * CX_DEADLINE_NONE: never). Returns true if it was unparked, false if the
 * deadline passed first (then the word is EMPTY again). */
static bool cx__parker_park_until(_Atomic uint32_t *p, uint64_t deadline) {
  if (deadline == CX_DEADLINE_NONE) {
    cx__parker_park(p);
    return true;
  }
  uint32_t expect = CX__PARK_EMPTY;
  /* acquire on both outcomes: as in cx__parker_park. */
  if (!atomic_compare_exchange_strong_explicit(p, &expect, CX__PARK_PARKED,
                                               memory_order_acquire,
                                               memory_order_acquire)) {
    /* NOTIFIED already: consume it. acquire: as in cx__parker_park. */
    atomic_exchange_explicit(p, CX__PARK_EMPTY, memory_order_acquire);
    return true;
  }
  struct timespec ts = {.tv_sec = (time_t)(deadline / CX_NSEC_PER_SEC),
                        .tv_nsec = (long)(deadline % CX_NSEC_PER_SEC)};
  for (;;) {
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC time (the clock
     * of cx_clock_now, which the timers use). */
    syscall(SYS_futex, p, FUTEX_WAIT_BITSET_PRIVATE, CX__PARK_PARKED, &ts, NULL,
            FUTEX_BITSET_MATCH_ANY);
    expect = CX__PARK_NOTIFIED;
    /* acquire: pairs with unpark's release exchange. */
    if (atomic_compare_exchange_strong_explicit(p, &expect, CX__PARK_EMPTY,
                                                memory_order_acquire,
                                                memory_order_relaxed))
      return true;
    if (cx_clock_now() >= deadline) {
      expect = CX__PARK_PARKED;
      /* relaxed on success: nobody unparked us, nothing to receive; on
       * failure an unpark came in between (NOTIFIED): consume it with the
       * acquire exchange below, which pairs with unpark's release. */
      if (atomic_compare_exchange_strong_explicit(p, &expect, CX__PARK_EMPTY,
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
        return false;
      atomic_exchange_explicit(p, CX__PARK_EMPTY, memory_order_acquire);
      return true;
    }
    /* Spurious (EINTR, or a stale wake): still PARKED, sleep again. */
  }
}

static void cx__parker_unpark(cx_runtime *rt, _Atomic uint32_t *p) {
  /* release: pairs with the acquire in park (and in park_io); acquire: the
   * PARKED_IO we read was stored after the driver was published (below). */
  uint32_t old =
      atomic_exchange_explicit(p, CX__PARK_NOTIFIED, memory_order_acq_rel);
  if (old == CX__PARK_PARKED) {
    syscall(SYS_futex, p, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
  } else if (old == CX__PARK_PARKED_IO) {
    /* acquire: pairs with the release store that published the driver (the
     * parked worker read it before storing PARKED_IO). */
    cx_driver_unpark(atomic_load_explicit(&rt->io, memory_order_acquire));
  }
}

/* A park in the runtime's I/O driver d, for at most until `deadline`, by the
 * worker holding io_token. Returns true if it was unparked (NOTIFIED), false
 * on timeout, an I/O event (whose tasks the driver woke, onto this worker's
 * ring) or a spurious return. */
static bool cx__parker_park_io(_Atomic uint32_t *p, cx_driver *d,
                               uint64_t deadline) {
  uint32_t expect = CX__PARK_EMPTY;
  /* acquire on failure: consumes a NOTIFIED, pairs with unpark's release;
   * release on success: an unparker that reads PARKED_IO (acq_rel) then
   * also sees what we read of rt->io. */
  if (!atomic_compare_exchange_strong_explicit(p, &expect, CX__PARK_PARKED_IO,
                                               memory_order_acq_rel,
                                               memory_order_acquire)) {
    /* acquire: as above. */
    atomic_exchange_explicit(p, CX__PARK_EMPTY, memory_order_acquire);
    return true;
  }
  uint64_t timeout = CX_DRIVER_FOREVER;
  if (deadline != CX_DEADLINE_NONE) {
    uint64_t now = cx_clock_now();
    timeout = deadline > now ? deadline - now : 0;
  }
  /* An unpark between the CAS and here leaves the driver's token: this
   * park returns at once. */
  cx_driver_park(d, timeout);
  /* acquire: pairs with unpark's release exchange. */
  return atomic_exchange_explicit(p, CX__PARK_EMPTY, memory_order_acquire) ==
         CX__PARK_NOTIFIED;
}

/* ---- idle workers ---------------------------------------------------------
 */

static uint32_t cx__searching(uint32_t idle) {
  return idle & CX__IDLE_SEARCHING_MASK;
}
static uint32_t cx__unparked(uint32_t idle) {
  return idle / CX__IDLE_UNPARKED_ONE;
}

/* Wakes one parked worker if no worker is searching. Called after making
 * work visible (a push onto the injection queue, a ring push seen by the
 * hint below). The woken worker starts out searching. */
static void cx__notify_one(cx_runtime *rt) {
  /* seq_cst read-modify-write (adds 0): pairs with the workers' RMWs on
   * `idle` in transition_to_parked / to_searching. RMWs on one location are
   * totally ordered and each reads the previous one, so either a parking
   * worker's decrement comes first (we see it and wake someone) or ours
   * does (its later look at the queues sees the work we pushed before). */
  uint32_t s = atomic_fetch_add_explicit(&rt->idle, 0, memory_order_seq_cst);
  if (cx__searching(s) > 0 || cx__unparked(s) >= rt->nworkers) return;
  pthread_mutex_lock(&rt->sleep_mu);
  /* relaxed: under sleep_mu, which guards the unparked part; a searcher
   * that appeared meanwhile will find the work. */
  s = atomic_load_explicit(&rt->idle, memory_order_relaxed);
  if (cx__searching(s) > 0 || rt->nsleepers == 0) {
    pthread_mutex_unlock(&rt->sleep_mu);
    return;
  }
  cx__worker *w = rt->sleepers[--rt->nsleepers];
  w->sleeping = false;
  /* seq_cst: one more unparked and searching worker (the one we wake);
   * ordered with the other RMWs on `idle` as above. */
  atomic_fetch_add_explicit(&rt->idle, 1 + CX__IDLE_UNPARKED_ONE,
                            memory_order_seq_cst);
  pthread_mutex_unlock(&rt->sleep_mu);
  cx__parker_unpark(rt, &w->park);
}

/* After a push onto this worker's own ring: a cheap hint. A relaxed look
 * may miss a worker that just parked; that costs parallelism for a while,
 * never a task: the ring's owner is awake and will pop it. */
static void cx__notify_hint(cx_runtime *rt) {
  /* relaxed: a hint only (see above). */
  uint32_t s = atomic_load_explicit(&rt->idle, memory_order_relaxed);
  if (cx__searching(s) == 0 && cx__unparked(s) < rt->nworkers)
    cx__notify_one(rt);
}

/* Wakes every parked worker (shutdown). */
static void cx__notify_all(cx_runtime *rt) {
  pthread_mutex_lock(&rt->sleep_mu);
  while (rt->nsleepers > 0) {
    cx__worker *w = rt->sleepers[--rt->nsleepers];
    w->sleeping = false;
    cx__parker_unpark(rt, &w->park);
  }
  pthread_mutex_unlock(&rt->sleep_mu);
}

static bool cx__to_searching(cx__worker *w) {
  if (w->searching) return true;
  cx_runtime *rt = w->rt;
  /* relaxed: a limit, not a synchronization (a few too many searchers for
   * a moment is harmless). */
  uint32_t s = atomic_load_explicit(&rt->idle, memory_order_relaxed);
  if (2 * cx__searching(s) >= rt->nworkers) return false;
  /* seq_cst RMW: see cx__notify_one. */
  atomic_fetch_add_explicit(&rt->idle, 1, memory_order_seq_cst);
  w->searching = true;
  return true;
}

/* This searching worker found work. If it was the last searcher and more
 * work is visible (the rest of a steal in its ring, or the injection
 * queue), wake another worker to take it. Only for parallelism: the work is
 * not stranded without it (this worker is awake and looks again after its
 * task), so when nothing more is visible no one is woken; a message round
 * trip with a plain thread (W5) would otherwise wake a second worker for
 * nothing every time. */
static void cx__from_searching(cx__worker *w) {
  cx_runtime *rt = w->rt;
  w->searching = false;
  /* seq_cst RMW: see cx__notify_one. */
  uint32_t prev = atomic_fetch_sub_explicit(&rt->idle, 1, memory_order_seq_cst);
  if (cx__searching(prev) != 1) return;
  /* acquire: pairs with inject_push's release store of the length. */
  if (atomic_load_explicit(&rt->inject_len, memory_order_acquire) > 0 ||
      cx__ring_len(&w->ring) > 0)
    cx__notify_one(rt);
}

/* Puts w on the sleepers list. Returns true if w was the last searcher. */
static bool cx__to_parked(cx__worker *w) {
  cx_runtime *rt = w->rt;
  bool last = false;
  if (w->searching) {
    w->searching = false;
    /* seq_cst RMW: see cx__notify_one. */
    uint32_t prev =
        atomic_fetch_sub_explicit(&rt->idle, 1, memory_order_seq_cst);
    last = cx__searching(prev) == 1;
  }
  pthread_mutex_lock(&rt->sleep_mu);
  /* seq_cst RMW: see cx__notify_one; the look at the queues that follows
   * in cx__park comes after it. */
  atomic_fetch_sub_explicit(&rt->idle, CX__IDLE_UNPARKED_ONE,
                            memory_order_seq_cst);
  rt->sleepers[rt->nsleepers++] = w;
  w->sleeping = true;
  pthread_mutex_unlock(&rt->sleep_mu);
  return last;
}

/* ---- the injection queue ---------------------------------------------------
 */

/* Appends the list head..tail (n tasks, linked through next, each SCHEDULED
 * with its queue reference) and wakes a worker if needed. Any thread. */
static void cx__inject_push(cx_runtime *rt, cx__task *head, cx__task *tail,
                            size_t n) {
  tail->next = NULL;
  pthread_mutex_lock(&rt->inject_mu);
  if (rt->inject_tail)
    rt->inject_tail->next = head;
  else
    rt->inject_head = head;
  rt->inject_tail = tail;
  rt->inject_n += n;
  /* release: pairs with the acquire look in inject_pop (a worker that sees
   * the length also sees the list under the lock it then takes). */
  atomic_store_explicit(&rt->inject_len, rt->inject_n, memory_order_release);
  pthread_mutex_unlock(&rt->inject_mu);
  cx__notify_one(rt);
}

/* Takes a task from the injection queue, plus, when `batch`, a fair share
 * of what is left (into w's ring, so the lock is not taken per task). The
 * periodic fairness look takes one task only: a busy worker that pulled a
 * batch every 61 polls would keep trading tasks with the others through
 * the queue (their ring overflows), each trade a cache miss per task
 * (W2 with 2 workers). */
static cx__task *cx__inject_pop(cx__worker *w, bool batch) {
  cx_runtime *rt = w->rt;
  /* acquire: pairs with the release store in inject_push. */
  if (atomic_load_explicit(&rt->inject_len, memory_order_acquire) == 0)
    return NULL;
  uint32_t room = CX__RING_CAP - cx__ring_len(&w->ring);
  pthread_mutex_lock(&rt->inject_mu);
  cx__task *t = rt->inject_head;
  if (t == NULL) {
    pthread_mutex_unlock(&rt->inject_mu);
    return NULL;
  }
  size_t take = batch ? rt->inject_n / rt->nworkers + 1 : 1;
  if (take > CX__RING_HALF) take = CX__RING_HALF;
  if (take > room + 1) take = room + 1;
  if (take > rt->inject_n) take = rt->inject_n;
  cx__task *last = t;
  for (size_t i = 1; i < take; i++) last = last->next;
  rt->inject_head = last->next;
  if (rt->inject_head == NULL) rt->inject_tail = NULL;
  rt->inject_n -= take;
  /* relaxed: under inject_mu; a stale nonzero only costs a lock. */
  atomic_store_explicit(&rt->inject_len, rt->inject_n, memory_order_relaxed);
  pthread_mutex_unlock(&rt->inject_mu);
  last->next = NULL;
  for (cx__task *u = t->next; u;) {
    cx__task *next = u->next;
    u->next = NULL;
    /* Fits: thieves only ever shrink our ring, and take <= room + 1. */
    cx__ring_push(&w->ring, u);
    u = next;
  }
  t->next = NULL;
  CX__COUNT(w, injected, take);
  return t;
}

/* ---- scheduling -------------------------------------------------------------
 */

/* Pushes onto w's ring; when full, moves half of it plus t to the injection
 * queue. Worker w's thread only. */
static void cx__local_push(cx__worker *w, cx__task *t) {
  void *half[CX__RING_HALF];
  for (;;) {
    if (cx__ring_push(&w->ring, t)) {
      cx__notify_hint(w->rt);
      return;
    }
    uint32_t n = cx__ring_take_half(&w->ring, half);
    if (n == 0) continue; /* a thief made room */
    for (uint32_t i = 0; i + 1 < n; i++)
      ((cx__task *)half[i])->next = (cx__task *)half[i + 1];
    ((cx__task *)half[n - 1])->next = t;
    CX__COUNT(w, overflows, 1);
    cx__inject_push(w->rt, (cx__task *)half[0], t, n + 1);
    return;
  }
}

/* cx__scheduler.schedule: t was just made SCHEDULED by a wake or a cancel
 * and comes with the queue's reference. */
static void cx__rt_schedule(cx__scheduler *s, cx__task *t) {
  cx_runtime *rt = (cx_runtime *)s;
  cx__worker *w = cx__current_worker;
  if (w != NULL && w->rt == rt) {
    if (w->in_poll) {
      /* Woken by the task being polled: it runs next on this worker; the
       * task it displaces from the slot goes to the ring. */
      cx__task *prev = w->lifo;
      w->lifo = t;
      if (prev == NULL) return;
      t = prev;
    }
    cx__local_push(w, t);
    return;
  }
  t->next = NULL;
  cx__inject_push(rt, t, t, 1);
}

/* ---- the task list (shards) --------------------------------------------- */

static cx__shard *cx__shard_of(cx_runtime *rt, cx__task *t) {
  uint64_t h = (uint64_t)(uintptr_t)t >> 6;
  h *= UINT64_C(0x9E3779B97F4A7C15);
  return &rt->shards[(h >> 32) & (rt->nshards - 1)];
}

static uint64_t cx__live_total(cx_runtime *rt) {
  uint64_t live = 0;
  for (size_t i = 0; i < rt->nshards; i++) {
    pthread_mutex_lock(&rt->shards[i].mu);
    live += rt->shards[i].live;
    pthread_mutex_unlock(&rt->shards[i].mu);
  }
  return live;
}

/* The task (RUNNING on worker w) ends: off the list, then complete (drops
 * the future, wakes a joiner, drops the running and owner references). */
static void cx__finish(cx__worker *w, cx__task *t, bool has_output) {
  cx_runtime *rt = w->rt;
  cx__shard *sh = cx__shard_of(rt, t);
  pthread_mutex_lock(&sh->mu);
  if (t->owned_prev)
    t->owned_prev->owned_next = t->owned_next;
  else
    sh->head = t->owned_next;
  if (t->owned_next) t->owned_next->owned_prev = t->owned_prev;
  t->owned_prev = t->owned_next = NULL;
  sh->live--;
  bool signal = sh->closed && sh->live == 0;
  pthread_mutex_unlock(&sh->mu);
  if (has_output)
    CX__COUNT(w, completed, 1);
  else
    CX__COUNT(w, cancelled, 1);
  cx__task_complete(t, has_output);
  if (signal) {
    /* Shutdown may be waiting for the lists to empty. */
    pthread_mutex_lock(&rt->done_mu);
    pthread_cond_broadcast(&rt->done_cv);
    pthread_mutex_unlock(&rt->done_mu);
  }
}

/* ---- the worker ------------------------------------------------------------
 */

static void cx__run_one(cx__worker *w, cx__task *t) {
  cx__run_result r = cx__task_transition_to_running(t);
  if (r == CX__RUN_GONE) return;
  if (r == CX__RUN_CANCEL) {
    cx__finish(w, t, false);
    return;
  }
  /* relaxed: only the thread holding RUNNING writes polls; readers only
   * want a count. */
  uint32_t polls = atomic_load_explicit(&t->polls, memory_order_relaxed);
  if (polls != UINT32_MAX)
    atomic_store_explicit(&t->polls, polls + 1, memory_order_relaxed);
  CX__COUNT(w, polls, 1);
  cx_waker waker = cx__task_waker_ref(t);
  cx_context cx = {&waker, NULL, &w->rt->timers, &w->rt->host};
  const cx_future_vtable *vt = t->vtable;
  void *out = vt->output_size ? cx__task_output(t) : NULL;
  if (vt->poll(cx__task_state(t), &cx, out) == CX_READY) {
    cx__finish(w, t, true);
    return;
  }
  switch (cx__task_transition_to_idle(t)) {
    case CX__IDLE_NOTIFIED:
      /* Woken during its own poll (a yield): the back of the ring, not the
       * LIFO slot, so a task that yields forever cannot starve others. */
      cx__local_push(w, t);
      break;
    case CX__IDLE_CANCELLED:
      cx__finish(w, t, false);
      break;
    case CX__IDLE_DONE:
      break;
  }
}

static void cx__run(cx__worker *w, cx__task *t) {
  w->in_poll = true;
  cx__run_one(w, t);
  unsigned lifo = 0;
  while ((t = w->lifo) != NULL) {
    w->lifo = NULL;
    if (lifo++ == CX__LIFO_MAX) {
      cx__local_push(w, t); /* the pair had its turns */
      break;
    }
    CX__COUNT(w, lifo_polls, 1);
    cx__run_one(w, t);
  }
  w->in_poll = false;
}

/* Fires the runtime's due timers from this worker. The wakes schedule their
 * tasks through cx__rt_schedule: onto this worker's ring (not in a poll),
 * where thieves can take them. */
static void cx__fire_timers(cx__worker *w) {
  cx_timers_fire(&w->rt->timers, cx_clock_now());
}

/* Takes the I/O driver token if there is a driver and nobody holds it.
 * Returns the driver, or NULL. */
static cx_driver *cx__io_take(cx_runtime *rt) {
  /* acquire: pairs with the release store that published the driver. */
  cx_driver *d = atomic_load_explicit(&rt->io, memory_order_acquire);
  if (d == NULL) return NULL;
  /* acquire: pairs with the release store in cx__io_put (the previous
   * holder's park happens-before ours: one park at a time). relaxed (plain
   * load) first: a busy runtime mostly finds it taken by the parked
   * worker. */
  if (atomic_load_explicit(&rt->io_token, memory_order_relaxed) ||
      atomic_exchange_explicit(&rt->io_token, true, memory_order_acquire))
    return NULL;
  return d;
}

static void cx__io_put(cx_runtime *rt) {
  /* release: pairs with the acquire exchange in cx__io_take. */
  atomic_store_explicit(&rt->io_token, false, memory_order_release);
}

/* A busy worker dispatches I/O events now and then (nobody may be parked
 * in the driver when every worker is busy). */
static void cx__poll_io(cx__worker *w) {
  cx_driver *d = cx__io_take(w->rt);
  if (d == NULL) return;
  cx_driver_park(d, 0);
  cx__io_put(w->rt);
}

/* cx_driver_host.io_driver: the runtime's epoll driver, created by the
 * first future that asks, on whichever worker polls it. */
static int cx__rt_io_driver(cx_driver_host *h, cx_driver **out) {
  cx_runtime *rt = (cx_runtime *)((char *)h - offsetof(cx_runtime, host));
  if (out == NULL) return CX_EINVAL;
  /* acquire: pairs with the release store below. */
  cx_driver *d = atomic_load_explicit(&rt->io, memory_order_acquire);
  if (d == NULL) {
    pthread_mutex_lock(&rt->io_mu);
    /* relaxed: under io_mu, which every store holds. */
    d = atomic_load_explicit(&rt->io, memory_order_relaxed);
    if (d == NULL) {
      int rc = cx_io_driver_create(&d);
      if (rc != CX_OK) {
        pthread_mutex_unlock(&rt->io_mu);
        *out = NULL;
        return rc;
      }
      /* release: publishes the driver to the lock-free loads (io_take,
       * unpark, the check above). */
      atomic_store_explicit(&rt->io, d, memory_order_release);
    }
    pthread_mutex_unlock(&rt->io_mu);
  }
  *out = d;
  return CX_OK;
}

static cx__task *cx__next_task(cx__worker *w) {
  cx__task *t;
  if (++w->tick % CX__INJECT_INTERVAL == 0) {
    /* A busy runtime parks nobody, so its workers fire due timers now and
     * then (a clock read and an uncontended lock per interval). */
    cx__fire_timers(w);
    cx__poll_io(w);
    if ((t = cx__inject_pop(w, false))) return t;
  }
  if ((t = cx__ring_pop(&w->ring))) return t;
  return cx__inject_pop(w, true);
}

static uint32_t cx__rand(cx__worker *w) {
  /* xorshift32: victim choice only. */
  uint32_t x = w->rng;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return w->rng = x;
}

/* Steals half of another worker's ring, if this worker may search. */
static cx__task *cx__steal(cx__worker *w) {
  cx_runtime *rt = w->rt;
  if (rt->nworkers == 1 || !cx__to_searching(w)) return NULL;
  size_t start = cx__rand(w) % rt->nworkers;
  for (size_t i = 0; i < rt->nworkers; i++) {
    cx__worker *v = &rt->workers[(start + i) % rt->nworkers];
    if (v == w) continue;
    uint32_t moved = 0;
    cx__task *t = cx__ring_steal_into(&v->ring, &w->ring, &moved);
    if (t) {
      CX__COUNT(w, steals, 1);
      CX__COUNT(w, stolen, moved);
      return t;
    }
  }
  return cx__inject_pop(w, true);
}

static bool cx__any_ring_busy(cx_runtime *rt) {
  for (size_t i = 0; i < rt->nworkers; i++)
    if (cx__ring_len(&rt->workers[i].ring) > 0) return true;
  return false;
}

static void cx__park(cx__worker *w) {
  cx_runtime *rt = w->rt;
  CX__COUNT(w, parks, 1);
  bool last = cx__to_parked(w);
  /* The last look, after our RMW on `idle` (cx__notify_one says why it
   * cannot miss a push). acquire: pairs with inject_push's release. If
   * there is work, wake a worker, possibly ourselves. */
  if (atomic_load_explicit(&rt->inject_len, memory_order_acquire) > 0 ||
      (last && cx__any_ring_busy(rt)))
    cx__notify_one(rt);
  for (;;) {
    /* acquire: pairs with shutdown's release store of stop. */
    if (atomic_load_explicit(&rt->stop, memory_order_acquire)) return;
    /* Every parked worker sleeps until the earliest timer at most. The
     * deadline is read after this worker's last poll: a sleep registered
     * later is registered by a worker that is awake and reads it when it
     * parks in turn, so no deadline is missed. (All parked workers wake at
     * that deadline; one fires the timers, the others find nothing and
     * park again: a cost only at timer expiry.) */
    uint64_t deadline = cx_timers_next_deadline(&rt->timers);
    /* One parked worker at a time sleeps in the I/O driver (if there is
     * one): its events wake their tasks onto this worker's ring. The
     * others sleep on their futex. An awake holder of the token releases
     * it and takes it again when it parks (or polls the driver every 61
     * ticks), so events are never left undispatched for long. */
    cx_driver *io = cx__io_take(rt);
    bool unparked;
    if (io) {
      unparked = cx__parker_park_io(&w->park, io, deadline);
      cx__io_put(rt);
    } else {
      unparked = cx__parker_park_until(&w->park, deadline);
    }
    pthread_mutex_lock(&rt->sleep_mu);
    bool still = w->sleeping;
    if (still && !unparked) {
      /* Timed out, and nobody is waking us: leave the sleepers list
       * ourselves and count ourselves unparked (not searching). */
      for (size_t i = 0; i < rt->nsleepers; i++)
        if (rt->sleepers[i] == w) {
          rt->sleepers[i] = rt->sleepers[--rt->nsleepers];
          break;
        }
      w->sleeping = false;
      /* seq_cst RMW: see cx__notify_one (an unparked worker is awake and
       * will look at the queues again). */
      atomic_fetch_add_explicit(&rt->idle, CX__IDLE_UNPARKED_ONE,
                                memory_order_seq_cst);
      pthread_mutex_unlock(&rt->sleep_mu);
      cx__fire_timers(w);
      return;
    }
    pthread_mutex_unlock(&rt->sleep_mu);
    if (!still) {
      w->searching = true; /* counted so by whoever woke us */
      cx__fire_timers(w);
      return;
    }
  }
}

static void *cx__worker_main(void *arg) {
  cx__worker *w = arg;
  cx_runtime *rt = w->rt;
  cx__current_worker = w;
  /* The blocking-call marker (waker/internal/current.h): cx_join_handle_wait
   * and the blocking channels return CX_EDEADLK on a worker instead of
   * blocking it. */
  void *prev_marker = cx__set_current_executor(cx__runtime_worker_marker());
  if (rt->opts.on_worker_start)
    rt->opts.on_worker_start(rt->opts.hook_ctx, w->index);
  /* acquire: pairs with shutdown's release store of stop. */
  while (!atomic_load_explicit(&rt->stop, memory_order_acquire)) {
    cx__task *t = cx__next_task(w);
    if (t == NULL) t = cx__steal(w);
    if (t != NULL) {
      if (w->searching) cx__from_searching(w);
      cx__run(w, t);
      continue;
    }
    cx__park(w);
  }
  if (rt->opts.on_worker_stop)
    rt->opts.on_worker_stop(rt->opts.hook_ctx, w->index);
  cx__set_current_executor(prev_marker);
  cx__current_worker = NULL;
  return NULL;
}

/* ---- create / shutdown / destroy ------------------------------------------
 */

static _Atomic unsigned cx__fail_thread_at;

void cx__runtime_debug_fail_thread_create_at(unsigned k) {
  /* relaxed: a test hook set while no runtime is being created. */
  atomic_store_explicit(&cx__fail_thread_at, k, memory_order_relaxed);
}

static int cx__thread_create(pthread_t *th, cx__worker *w) {
  /* relaxed: test hook (above). */
  unsigned k = atomic_load_explicit(&cx__fail_thread_at, memory_order_relaxed);
  if (k > 0) {
    atomic_store_explicit(&cx__fail_thread_at, k - 1, memory_order_relaxed);
    if (k == 1) return EAGAIN;
  }
  return pthread_create(th, NULL, cx__worker_main, w);
}

/* Stops and joins the started workers. Nothing is queued any more. */
static void cx__stop_workers(cx_runtime *rt) {
  /* release: pairs with the workers' acquire loads of stop. */
  atomic_store_explicit(&rt->stop, true, memory_order_release);
  cx__notify_all(rt);
  for (size_t i = 0; i < rt->nworkers; i++)
    if (rt->workers[i].started) pthread_join(rt->workers[i].thread, NULL);
}

static size_t cx__pow2_at_least(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

int cx_runtime_create(const cx_runtime_options *opts, cx_runtime **out) {
  if (out == NULL) return CX_EINVAL;
  *out = NULL;
  cx_runtime_options o = {0};
  if (opts) o = *opts;
  if (o.workers == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    o.workers = n > 0 ? (size_t)n : 1;
    if (o.workers > CX_RUNTIME_MAX_WORKERS) o.workers = CX_RUNTIME_MAX_WORKERS;
  }
  if (o.workers > CX_RUNTIME_MAX_WORKERS) return CX_EINVAL;

  cx_runtime *rt = cx_alloc(sizeof *rt, _Alignof(cx_runtime));
  if (rt == NULL) return CX_ENOMEM;
  memset(rt, 0, sizeof *rt);
  rt->nworkers = o.workers;
  rt->nshards = cx__pow2_at_least(4 * o.workers);
  if (rt->nshards > 256) rt->nshards = 256;
  rt->workers =
      cx_alloc(rt->nworkers * sizeof *rt->workers, _Alignof(cx__worker));
  rt->shards = cx_alloc(rt->nshards * sizeof *rt->shards, _Alignof(cx__shard));
  rt->sleepers =
      cx_alloc(rt->nworkers * sizeof *rt->sleepers, _Alignof(cx__worker *));
  if (!rt->workers || !rt->shards || !rt->sleepers) {
    cx_free(rt->sleepers, rt->nworkers * sizeof *rt->sleepers,
            _Alignof(cx__worker *));
    cx_free(rt->shards, rt->nshards * sizeof *rt->shards, _Alignof(cx__shard));
    cx_free(rt->workers, rt->nworkers * sizeof *rt->workers,
            _Alignof(cx__worker));
    cx_free(rt, sizeof *rt, _Alignof(cx_runtime));
    return CX_ENOMEM;
  }
  rt->sched.schedule = cx__rt_schedule;
  rt->sched.task_freed = cx__rt_task_freed;
  rt->opts = o;
  atomic_init(&rt->refs, 1);
  atomic_init(&rt->inject_len, 0);
  atomic_init(&rt->idle, (uint32_t)rt->nworkers * CX__IDLE_UNPARKED_ONE);
  atomic_init(&rt->stop, false);
  /* Default mutexes and a CLOCK_MONOTONIC condvar cannot fail to initialize
   * on Linux (glibc allocates nothing for them). */
  pthread_mutex_init(&rt->inject_mu, NULL);
  pthread_mutex_init(&rt->sleep_mu, NULL);
  pthread_mutex_init(&rt->life_mu, NULL);
  pthread_mutex_init(&rt->done_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&rt->done_cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&rt->timer_mu, NULL);
  pthread_mutex_init(&rt->io_mu, NULL);
  atomic_init(&rt->io, NULL);
  atomic_init(&rt->io_token, false);
  rt->host.io_driver = cx__rt_io_driver;
  cx_timers_init(&rt->timers, NULL, NULL);
  cx_timers_set_lock(&rt->timers, &rt->timer_mu);
  for (size_t i = 0; i < rt->nshards; i++) {
    memset(&rt->shards[i], 0, sizeof rt->shards[i]);
    pthread_mutex_init(&rt->shards[i].mu, NULL);
  }
  for (size_t i = 0; i < rt->nworkers; i++) {
    cx__worker *w = &rt->workers[i];
    memset(w, 0, sizeof *w);
    cx__ring_init(&w->ring);
    atomic_init(&w->park, CX__PARK_EMPTY);
    w->rt = rt;
    w->index = i;
    w->rng = (uint32_t)(i * 0x9E3779B9u) | 1u;
  }
  for (size_t i = 0; i < rt->nworkers; i++) {
    cx__worker *w = &rt->workers[i];
    if (cx__thread_create(&w->thread, w) != 0) {
      cx__stop_workers(rt);
      cx__rt_free(rt);
      return CX_EAGAIN;
    }
    w->started = true;
  }
  *out = rt;
  return CX_OK;
}

size_t cx_runtime_workers(const cx_runtime *rt) {
  return rt ? rt->nworkers : 0;
}

cx_runtime *cx_runtime_current(void) {
  return cx__current_worker ? cx__current_worker->rt : NULL;
}

long cx_runtime_current_worker(void) {
  return cx__current_worker ? (long)cx__current_worker->index : -1;
}

static bool cx__on_worker_of(const cx_runtime *rt) {
  return cx__current_worker != NULL && cx__current_worker->rt == rt;
}

/* Waits on done_cv until no task is left or `deadline` (CLOCK_MONOTONIC
 * ns; UINT64_MAX: none) passes. True when none is left. */
static bool cx__wait_empty(cx_runtime *rt, uint64_t deadline) {
  pthread_mutex_lock(&rt->done_mu);
  bool empty;
  while (!(empty = cx__live_total(rt) == 0)) {
    if (deadline == UINT64_MAX) {
      pthread_cond_wait(&rt->done_cv, &rt->done_mu);
      continue;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t n = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    if (n >= deadline) break;
    struct timespec ts = {(time_t)(deadline / 1000000000u),
                          (long)(deadline % 1000000000u)};
    pthread_cond_timedwait(&rt->done_cv, &rt->done_mu, &ts);
  }
  pthread_mutex_unlock(&rt->done_mu);
  return empty;
}

int cx_runtime_shutdown(cx_runtime *rt, uint64_t timeout_ns) {
  if (rt == NULL) return CX_EINVAL;
  if (cx__on_worker_of(rt)) return CX_EBUSY;
  pthread_mutex_lock(&rt->life_mu);
  if (rt->shut_down) {
    pthread_mutex_unlock(&rt->life_mu);
    return CX_OK;
  }
  /* 1. Stop accepting: spawns check `closed` under their shard's lock. */
  for (size_t i = 0; i < rt->nshards; i++) {
    pthread_mutex_lock(&rt->shards[i].mu);
    rt->shards[i].closed = true;
    pthread_mutex_unlock(&rt->shards[i].mu);
  }
  /* 2. Grace period. */
  uint64_t deadline = UINT64_MAX;
  if (timeout_ns != CX_RUNTIME_NO_DEADLINE) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t n = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    deadline =
        timeout_ns > UINT64_MAX - 1 - n ? UINT64_MAX - 1 : n + timeout_ns;
  }
  bool on_time = cx__wait_empty(rt, deadline);
  if (!on_time) {
    /* 3. Cancel the rest. A task on a list is alive (its owner reference
     * goes only after cx__finish took it off, under the same lock). An idle
     * task is queued (injection queue: we are not a worker) and finished by
     * a worker; a running or queued one is finished when a worker next
     * holds it. Lock order: shard, then inject_mu / sleep_mu. */
    for (size_t i = 0; i < rt->nshards; i++) {
      pthread_mutex_lock(&rt->shards[i].mu);
      for (cx__task *t = rt->shards[i].head; t; t = t->owned_next)
        cx__task_cancel(t);
      pthread_mutex_unlock(&rt->shards[i].mu);
    }
    cx__wait_empty(rt, UINT64_MAX);
  }
  /* 4. Every task has finished: no wake can queue anything any more (a
   * finished task is never scheduled). Stop the workers. */
  cx__stop_workers(rt);
  rt->shut_down = true;
  pthread_mutex_unlock(&rt->life_mu);
  return on_time ? CX_OK : CX_ETIMEDOUT;
}

int cx_runtime_destroy(cx_runtime *rt) {
  if (rt == NULL) return CX_OK;
  if (cx__on_worker_of(rt)) return CX_EBUSY;
  cx_runtime_shutdown(rt, 0);
  pthread_mutex_lock(&rt->life_mu);
  bool again = rt->destroyed;
  rt->destroyed = true;
  pthread_mutex_unlock(&rt->life_mu);
  if (again) return CX_EINVAL;
  cx__rt_unref(rt);
  return CX_OK;
}

/* ---- spawning
 * ----------------------------------------------------------------- */

int cx_runtime_spawn(cx_runtime *rt, const cx_future_vtable *vtable,
                     const void *state, cx_join_handle **handle) {
  if (handle) *handle = NULL;
  if (rt == NULL || cx_future_vtable_check(vtable) != CX_OK) return CX_EINVAL;
  if (state == NULL && vtable->state_size > 0) return CX_EINVAL;
  cx__task *t =
      cx__task_create(vtable, state, &rt->sched, handle != NULL, false);
  if (t == NULL) return CX_ENOMEM;
  cx__shard *sh = cx__shard_of(rt, t);
  pthread_mutex_lock(&sh->mu);
  if (sh->closed) {
    pthread_mutex_unlock(&sh->mu);
    cx__task_discard(t);
    return CX_ESHUTDOWN;
  }
  /* relaxed: we hold a reference already (the caller's rt, or a spawner). */
  atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
  t->owned_prev = NULL;
  t->owned_next = sh->head;
  if (sh->head) sh->head->owned_prev = t;
  sh->head = t;
  sh->live++;
  sh->spawned++;
  pthread_mutex_unlock(&sh->mu);
  if (handle) *handle = cx__task_to_handle(t);
  /* The new task is SCHEDULED with the queue's reference. */
  cx__worker *w = cx__current_worker;
  if (w != NULL && w->rt == rt) {
    cx__local_push(w, t);
  } else {
    t->next = NULL;
    cx__inject_push(rt, t, t, 1);
  }
  return CX_OK;
}

int cx_runtime_block_on(cx_runtime *rt, const cx_future_vtable *vtable,
                        const void *state, void *out, size_t out_size) {
  if (rt == NULL || vtable == NULL) return CX_EINVAL;
  if (out != NULL && out_size != vtable->output_size) return CX_EINVAL;
  /* On any runtime's worker, waiting would hold that worker hostage. */
  if (cx__current_worker != NULL) return CX_EBUSY;
  cx_join_handle *h;
  int rc = cx_runtime_spawn(rt, vtable, state, &h);
  if (rc != CX_OK) return rc;
  rc = cx_join_handle_wait(h, out, out_size);
  cx_join_handle_detach(h);
  return rc;
}

/* A spawner is the runtime pointer under another type, with a reference. */
int cx_runtime_spawner_create(cx_runtime *rt, cx_runtime_spawner **out) {
  if (out) *out = NULL;
  if (rt == NULL || out == NULL) return CX_EINVAL;
  /* relaxed: the caller holds a reference. */
  atomic_fetch_add_explicit(&rt->refs, 1, memory_order_relaxed);
  *out = (cx_runtime_spawner *)rt;
  return CX_OK;
}

int cx_runtime_spawner_clone(cx_runtime_spawner *sp, cx_runtime_spawner **out) {
  if (out) *out = NULL;
  if (sp == NULL) return CX_EINVAL;
  return cx_runtime_spawner_create((cx_runtime *)sp, out);
}

void cx_runtime_spawner_drop(cx_runtime_spawner *sp) {
  if (sp) cx__rt_unref((cx_runtime *)sp);
}

int cx_runtime_spawner_spawn(cx_runtime_spawner *sp,
                             const cx_future_vtable *vtable, const void *state,
                             cx_join_handle **handle) {
  if (handle) *handle = NULL;
  if (sp == NULL) return CX_EINVAL;
  return cx_runtime_spawn((cx_runtime *)sp, vtable, state, handle);
}

/* ---- statistics -------------------------------------------------------------
 */

#define CX__READ(w, field) \
  atomic_load_explicit(&(w)->counters.field, memory_order_relaxed)

int cx_runtime_get_worker_stats(const cx_runtime *rt, size_t worker,
                                cx_runtime_worker_stats *out) {
  if (rt == NULL || out == NULL || worker >= rt->nworkers) return CX_EINVAL;
  cx__worker *w = &rt->workers[worker];
  /* relaxed: counters are snapshots (single writer). */
  out->polls = CX__READ(w, polls);
  out->lifo_polls = CX__READ(w, lifo_polls);
  out->completed = CX__READ(w, completed);
  out->cancelled = CX__READ(w, cancelled);
  out->steals = CX__READ(w, steals);
  out->stolen = CX__READ(w, stolen);
  out->injected = CX__READ(w, injected);
  out->overflows = CX__READ(w, overflows);
  out->parks = CX__READ(w, parks);
  return CX_OK;
}

int cx_runtime_get_stats(const cx_runtime *rt, cx_runtime_stats *out) {
  if (rt == NULL || out == NULL) return CX_EINVAL;
  memset(out, 0, sizeof *out);
  out->workers = rt->nworkers;
  for (size_t i = 0; i < rt->nshards; i++) {
    cx__shard *sh = &rt->shards[i];
    pthread_mutex_lock(&sh->mu);
    out->spawned += sh->spawned;
    out->live += sh->live;
    pthread_mutex_unlock(&sh->mu);
  }
  for (size_t i = 0; i < rt->nworkers; i++) {
    cx_runtime_worker_stats ws;
    cx_runtime_get_worker_stats(rt, i, &ws);
    out->polls += ws.polls;
    out->completed += ws.completed;
    out->cancelled += ws.cancelled;
    out->steals += ws.steals;
    out->parks += ws.parks;
  }
  return CX_OK;
}
