/*
 * W1 spawn: spawn N = 1,000,000 tasks; each completes on its first poll by
 * incrementing a shared counter; run to completion; check counter == N.
 * Figure: ns per task = wall / N. The executor is created before the clock
 * starts and destroyed after it stops; spawning and running are timed.
 */
#define _GNU_SOURCE

#include "executor/cexec.h"

#include "bench/bench.h"

typedef struct w1_task {
  uint64_t *counter;
} w1_task;

static cx_poll w1_poll(void *self, cx_context *cx, void *out) {
  (void)cx;
  (void)out;
  (*((w1_task *)self)->counter)++;
  return CX_READY;
}

static const cx_future_vtable w1_vtable = {.poll = w1_poll,
                                           .state_size = sizeof(w1_task),
                                           .state_align = _Alignof(w1_task),
                                           .output_size = 0};

int bench_w1_spawn(void) {
  cx_executor *ex;
  if (cx_executor_create(NULL, &ex) != CX_OK)
    return bench_fail("W1", "cx_executor_create");
  uint64_t counter = 0;
  w1_task st = {&counter};

  uint64_t t0 = bench_now_ns();
  for (uint32_t i = 0; i < W1_N; i++) {
    int rc = cx_spawn(ex, &w1_vtable, &st, NULL);
    if (rc != CX_OK) return bench_fail("W1", "cx_spawn #%u: %d", i, rc);
  }
  int rc = cx_executor_run(ex);
  uint64_t wall = bench_now_ns() - t0;

  cx_executor_stats stats;
  cx_executor_get_stats(ex, &stats);
  cx_executor_destroy(ex);
  if (rc != CX_OK) return bench_fail("W1", "cx_executor_run: %d", rc);
  if (counter != W1_N)
    return bench_fail("W1", "counter %llu != %u", (unsigned long long)counter,
                      W1_N);
  if (stats.polls != W1_N || stats.completed != W1_N)
    return bench_fail("W1", "polls %llu completed %llu, want %u each",
                      (unsigned long long)stats.polls,
                      (unsigned long long)stats.completed, W1_N);
  bench_print("cexec", "W1", W1_N, (double)wall / W1_N, wall / 1e6, NULL);
  return 0;
}
