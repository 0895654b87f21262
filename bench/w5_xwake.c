/*
 * W5 xwake: one plain OS thread and one task ping-pong M = 200,000 times:
 * the thread wakes the task (through the task's waker, from that thread),
 * the task answers by signalling the thread. Figure: ns per round trip.
 *
 * The task publishes a clone of its waker on its first poll. Each round the
 * thread stores ping = i and wakes the task; the task, when polled, sees
 * ping == i and answers pong = i. The thread waits for the answer by
 * spinning on `pong` (a CPU pause per try, sched_yield every 256 tries), so
 * that every futex call the round trip makes is the executor's: with
 * nothing else to do the executor parks between rounds, and each wake costs
 * the one wake-up of that park transition.
 *
 * W5busy (not a BENCHMARKS.md workload: a check of the "no system call when
 * busy" target): the same, plus a second task that yields (wake_by_ref,
 * Pending) until the ping-pong is over, so the executor never parks. Run it
 * under `strace -c -f` to count futex calls.
 */
#define _GNU_SOURCE

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

#include "executor/cexec.h"

#include "bench/bench.h"

typedef struct w5_shared {
  _Atomic uint64_t ping, pong;
  _Atomic bool waker_ready, done;
  cx_waker waker; /* the task's, cloned; written before waker_ready */
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
    atomic_store_explicit(&sh->pong, ping, memory_order_release);
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

int bench_w5_xwake(int busy) {
  const char *name = busy ? "W5busy" : "W5";
  cx_executor *ex;
  if (cx_executor_create(NULL, &ex) != CX_OK)
    return bench_fail(name, "cx_executor_create");
  w5_shared sh;
  atomic_init(&sh.ping, 0);
  atomic_init(&sh.pong, 0);
  atomic_init(&sh.waker_ready, false);
  atomic_init(&sh.done, false);
  sh.waker = CX_WAKER_EMPTY;
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
