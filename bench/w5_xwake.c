/*
 * W5 xwake: one plain OS thread and one task ping-pong M = 200,000 times
 * (BENCHMARKS.md). Figure: ns per round trip.
 *
 * The task publishes a clone of its waker on its first poll. Each round the
 * thread stores ping = i and wakes the task through that waker, then PARKS
 * (a futex, like Rust's std::thread::park) until pong >= i; the task, when
 * polled, sees ping == i, stores pong = i and unparks the thread. Both sides
 * block, so a round trip is two futex hand-offs (the executor's park and the
 * thread's): the figure other executors are measured on.
 *
 * W5 --limit (peer "cexec_limit"): the floor, two bare threads doing the
 * same hand-off with the same park/unpark and no executor.
 *
 * W5spin (the project's former W5): the thread spins on `pong` (a CPU pause
 * per try, sched_yield every 256 tries) instead of parking, so every futex
 * call of the round trip is the executor's.
 *
 * W5busy (not a BENCHMARKS.md workload: a check of the "no system call when
 * busy" target): W5spin plus a second task that yields (wake_by_ref,
 * Pending) until the ping-pong is over, so the executor never parks. Run it
 * under `strace -c -f` to count futex calls.
 */
#define _GNU_SOURCE

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "executor/cexec.h"

#include "bench/bench.h"

/* ---- a thread parker, as Rust's std::thread::park on Linux ------------ */

/* One word per parkable thread: EMPTY, PARKED (its owner sleeps or is about
 * to) or NOTIFIED (an unpark is pending; the next park returns at once). */
enum { W5_EMPTY = 0, W5_PARKED = -1, W5_NOTIFIED = 1 };
typedef struct w5_parker {
  _Atomic int32_t state;
} w5_parker;

static void w5_futex(_Atomic int32_t *addr, int op, int32_t val) {
  syscall(SYS_futex, (int32_t *)addr, op, val, NULL, NULL, 0);
}

/* Only the owner thread parks. Returns after an unpark (or spuriously: the
 * callers re-check their condition). */
static void w5_park(w5_parker *p) {
  /* acq_rel: acquire pairs with w5_unpark's release exchange (a consumed
   * NOTIFIED makes the unparker's writes visible); EMPTY -> PARKED. */
  if (atomic_fetch_sub_explicit(&p->state, 1, memory_order_acq_rel) ==
      W5_NOTIFIED)
    return;
  for (;;) {
    w5_futex(&p->state, FUTEX_WAIT_PRIVATE, W5_PARKED);
    int32_t want = W5_NOTIFIED;
    /* acquire: pairs with w5_unpark's release exchange. */
    if (atomic_compare_exchange_strong_explicit(&p->state, &want, W5_EMPTY,
                                                memory_order_acquire,
                                                memory_order_relaxed))
      return;
  }
}

static void w5_unpark(w5_parker *p) {
  /* release: pairs with the acquire in w5_park, publishing the writes made
   * before the unpark. */
  if (atomic_exchange_explicit(&p->state, W5_NOTIFIED, memory_order_release) ==
      W5_PARKED)
    w5_futex(&p->state, FUTEX_WAKE_PRIVATE, 1);
}

typedef struct w5_shared {
  _Atomic uint64_t ping, pong;
  _Atomic bool waker_ready, done;
  cx_waker waker; /* the task's, cloned; written before waker_ready */
  bool park;      /* W5: the thread parks (else it spins: W5spin, W5busy) */
  w5_parker thread_parker;
} w5_shared;

typedef struct w5_task {
  w5_shared *shared;
  uint64_t answered;
  bool published;
} w5_task;

static cx_poll w5_poll(void *self, cx_context *cx, void *out) {
  (void)out;
  w5_task *t = self;
  w5_shared *sh = t->shared;
  if (!t->published) {
    t->published = true;
    if (cx_waker_clone(cx->waker, &sh->waker) != CX_OK) {
      atomic_store_explicit(&sh->done, true, memory_order_release);
      return CX_READY; /* the thread sees no waker and reports failure */
    }
    atomic_store_explicit(&sh->waker_ready, true, memory_order_release);
  }
  uint64_t ping = atomic_load_explicit(&sh->ping, memory_order_acquire);
  if (ping != t->answered) {
    t->answered = ping;
    /* release: pairs with the thread's acquire load of pong. */
    atomic_store_explicit(&sh->pong, ping, memory_order_release);
    if (sh->park) w5_unpark(&sh->thread_parker);
  }
  return t->answered == W5_M ? CX_READY : CX_PENDING;
}

static const cx_future_vtable w5_vtable = {.poll = w5_poll,
                                           .state_size = sizeof(w5_task),
                                           .state_align = _Alignof(w5_task),
                                           .output_size = 0};

/* W5busy's second task: keeps the executor busy until the thread is done. */
static cx_poll w5_spin_poll(void *self, cx_context *cx, void *out) {
  (void)out;
  w5_shared *sh = *(w5_shared **)self;
  if (atomic_load_explicit(&sh->done, memory_order_acquire)) return CX_READY;
  cx_waker_wake_by_ref(cx->waker);
  return CX_PENDING;
}

static const cx_future_vtable w5_spin_vtable = {
    .poll = w5_spin_poll,
    .state_size = sizeof(w5_shared *),
    .state_align = _Alignof(w5_shared *),
    .output_size = 0};

static inline void w5_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ volatile("yield");
#endif
}

static void *w5_thread(void *arg) {
  w5_shared *sh = arg;
  while (!atomic_load_explicit(&sh->waker_ready, memory_order_acquire)) {
    if (atomic_load_explicit(&sh->done, memory_order_acquire)) return NULL;
    sched_yield();
  }
  for (uint64_t i = 1; i <= W5_M; i++) {
    atomic_store_explicit(&sh->ping, i, memory_order_release);
    cx_waker_wake_by_ref(&sh->waker);
    if (sh->park) {
      /* acquire: pairs with the task's release store of pong. */
      while (atomic_load_explicit(&sh->pong, memory_order_acquire) < i)
        w5_park(&sh->thread_parker);
      continue;
    }
    unsigned spins = 0;
    while (atomic_load_explicit(&sh->pong, memory_order_acquire) != i) {
      if (++spins == 256) {
        spins = 0;
        sched_yield();
      } else {
        w5_pause();
      }
    }
  }
  atomic_store_explicit(&sh->done, true, memory_order_release);
  cx_waker_drop(&sh->waker);
  return NULL;
}

int bench_w5_xwake(int mode) {
  static const char *const names[] = {"W5", "W5spin", "W5busy"};
  const char *name = names[mode];
  int busy = mode == W5_BUSY;
  cx_executor *ex;
  if (cx_executor_create(NULL, &ex) != CX_OK)
    return bench_fail(name, "cx_executor_create");
  w5_shared sh;
  atomic_init(&sh.ping, 0);
  atomic_init(&sh.pong, 0);
  atomic_init(&sh.waker_ready, false);
  atomic_init(&sh.done, false);
  sh.waker = CX_WAKER_EMPTY;
  sh.park = mode == W5_PARK;
  atomic_init(&sh.thread_parker.state, W5_EMPTY);
  w5_task st = {&sh, 0, false};
  w5_shared *shp = &sh;

  uint64_t t0 = bench_now_ns();
  pthread_t th;
  if (pthread_create(&th, NULL, w5_thread, &sh) != 0)
    return bench_fail(name, "pthread_create");
  int rc = cx_spawn(ex, &w5_vtable, &st, NULL);
  if (rc == CX_OK && busy) rc = cx_spawn(ex, &w5_spin_vtable, &shp, NULL);
  if (rc != CX_OK) {
    atomic_store_explicit(&sh.done, true, memory_order_release);
    pthread_join(th, NULL);
    return bench_fail(name, "cx_spawn: %d", rc);
  }
  rc = cx_executor_run(ex);
  pthread_join(th, NULL);
  uint64_t wall = bench_now_ns() - t0;

  cx_executor_stats stats;
  cx_executor_get_stats(ex, &stats);
  cx_executor_destroy(ex);
  if (rc != CX_OK) return bench_fail(name, "cx_executor_run: %d", rc);
  uint64_t ping = atomic_load(&sh.ping), pong = atomic_load(&sh.pong);
  if (ping != W5_M || pong != W5_M)
    return bench_fail(name, "ping %llu pong %llu, want %u",
                      (unsigned long long)ping, (unsigned long long)pong, W5_M);
  char extra[160];
  snprintf(extra, sizeof extra, ",\"parks\":%llu,\"polls\":%llu",
           (unsigned long long)stats.parks, (unsigned long long)stats.polls);
  bench_print("cexec", name, W5_M, (double)wall / W5_M, wall / 1e6, extra);
  return 0;
}

/* ---- the floor: two bare threads, the same hand-off ---------------------- */

typedef struct w5_limit {
  _Atomic uint64_t ping, pong;
  w5_parker a, b; /* the pinging thread's and the answering thread's */
} w5_limit;

static void *w5_limit_answer(void *arg) {
  w5_limit *l = arg;
  uint64_t answered = 0;
  while (answered < W5_M) {
    /* acquire: pairs with the pinger's release store of ping. */
    uint64_t ping = atomic_load_explicit(&l->ping, memory_order_acquire);
    if (ping == answered) {
      w5_park(&l->b);
      continue;
    }
    answered = ping;
    /* release: pairs with the pinger's acquire load of pong. */
    atomic_store_explicit(&l->pong, answered, memory_order_release);
    w5_unpark(&l->a);
  }
  return NULL;
}

int bench_limit_w5(void) {
  w5_limit l;
  atomic_init(&l.ping, 0);
  atomic_init(&l.pong, 0);
  atomic_init(&l.a.state, W5_EMPTY);
  atomic_init(&l.b.state, W5_EMPTY);
  uint64_t t0 = bench_now_ns();
  pthread_t th;
  if (pthread_create(&th, NULL, w5_limit_answer, &l) != 0)
    return bench_fail("W5", "limit: pthread_create");
  for (uint64_t i = 1; i <= W5_M; i++) {
    /* release: pairs with the answerer's acquire load of ping. */
    atomic_store_explicit(&l.ping, i, memory_order_release);
    w5_unpark(&l.b);
    /* acquire: pairs with the answerer's release store of pong. */
    while (atomic_load_explicit(&l.pong, memory_order_acquire) < i)
      w5_park(&l.a);
  }
  pthread_join(th, NULL);
  uint64_t wall = bench_now_ns() - t0;
  uint64_t ping = atomic_load(&l.ping), pong = atomic_load(&l.pong);
  if (ping != W5_M || pong != W5_M)
    return bench_fail("W5", "limit: ping %llu pong %llu, want %u",
                      (unsigned long long)ping, (unsigned long long)pong, W5_M);
  bench_print("cexec_limit", "W5", W5_M, (double)wall / W5_M, wall / 1e6, NULL);
  return 0;
}
