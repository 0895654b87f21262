/*
 * W2 yield: T = 1,000 tasks; each returns Pending Y = 1,000 times, calling
 * wake_by_ref on its own waker before each Pending, then Ready; check total
 * polls == T*(Y+1). Figure: ns per poll = wall / (T*Y). Spawning the T tasks
 * and running them are timed.
 */
#define _GNU_SOURCE

#include "executor/cexec.h"

#include "bench/bench.h"

typedef struct w2_task {
  uint64_t *polls;
  uint32_t pending_left;
} w2_task;

static cx_poll w2_poll(void *self, cx_context *cx, void *out) {
  (void)out;
  w2_task *t = self;
  (*t->polls)++;
  if (t->pending_left == 0) return CX_READY;
  t->pending_left--;
  cx_waker_wake_by_ref(cx->waker);
  return CX_PENDING;
}

static const cx_future_vtable w2_vtable = {.poll = w2_poll,
                                           .state_size = sizeof(w2_task),
                                           .state_align = _Alignof(w2_task),
                                           .output_size = 0};

int bench_w2_yield(void) {
  cx_executor *ex;
  if (cx_executor_create(NULL, &ex) != CX_OK)
    return bench_fail("W2", "cx_executor_create");
  uint64_t polls = 0;
  w2_task st = {&polls, W2_Y};

  uint64_t t0 = bench_now_ns();
  for (uint32_t i = 0; i < W2_T; i++) {
    int rc = cx_spawn(ex, &w2_vtable, &st, NULL);
    if (rc != CX_OK) return bench_fail("W2", "cx_spawn #%u: %d", i, rc);
  }
  int rc = cx_executor_run(ex);
  uint64_t wall = bench_now_ns() - t0;

  cx_executor_stats stats;
  cx_executor_get_stats(ex, &stats);
  cx_executor_destroy(ex);
  uint64_t want = (uint64_t)W2_T * (W2_Y + 1);
  if (rc != CX_OK) return bench_fail("W2", "cx_executor_run: %d", rc);
  if (polls != want || stats.polls != want || stats.completed != W2_T)
    return bench_fail(
        "W2",
        "polls %llu (executor: %llu), completed %llu; "
        "want %llu polls, %u completed",
        (unsigned long long)polls, (unsigned long long)stats.polls,
        (unsigned long long)stats.completed, (unsigned long long)want, W2_T);
  uint64_t ops = (uint64_t)W2_T * W2_Y;
  bench_print("cexec", "W2", ops, (double)wall / (double)ops, wall / 1e6, NULL);
  return 0;
}
