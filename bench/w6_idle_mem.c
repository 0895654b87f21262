/*
 * W6 idle_mem: spawn N = 100,000 tasks that each park on a future that is
 * never woken during the measurement; after each has been polled once,
 * measure resident memory growth; then cancel/drop them all and check
 * nothing leaked.
 *
 * The parked future is a leaf that stores a clone of its waker in its own
 * state (what a future waiting on an event does) and returns Pending; nobody
 * wakes it. Resident memory (/proc/self/statm) is read after the executor
 * exists and before the first spawn, and again after run_until_idle has
 * polled every task once. Fields: bytes_per_task = growth / N (everything:
 * task header, future state, allocator overhead), state_bytes = the
 * future's state size (so bytes_per_task - state_bytes is what the executor
 * costs beyond the future's own state), ns_per_op = (spawn + first poll)
 * per task. Then cx_executor_destroy cancels them all; the check is that
 * every future was dropped exactly once and that cexec's allocator (a
 * counting wrapper installed for this run) ends with nothing outstanding.
 */
#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>

#include "executor/cexec.h"

#include "bench/bench.h"

/* Counting allocator: malloc/aligned_alloc underneath, like the default. */
typedef struct w6_counts {
  uint64_t live_blocks, live_bytes, allocs;
} w6_counts;

static void *w6_alloc(void *ctx, size_t size, size_t align) {
  w6_counts *c = ctx;
  void *p;
  if (align <= _Alignof(max_align_t))
    p = malloc(size);
  else
    p = aligned_alloc(align, (size + align - 1) & ~(align - 1));
  if (p) {
    c->live_blocks++;
    c->live_bytes += size;
    c->allocs++;
  }
  return p;
}

static void w6_free(void *ctx, void *ptr, size_t size, size_t align) {
  (void)align;
  w6_counts *c = ctx;
  c->live_blocks--;
  c->live_bytes -= size;
  free(ptr);
}

/* The parked future's whole state: the waker it would be woken through. */
typedef struct w6_task {
  cx_waker parked; /* the waker nobody will use */
} w6_task;

static uint64_t w6_drops; /* futures dropped (single-threaded run) */

static cx_poll w6_poll(void *self, cx_context *cx, void *out) {
  (void)out;
  w6_task *t = self;
  if (cx_waker_store(&t->parked, cx->waker) != CX_OK) return CX_READY;
  return CX_PENDING;
}

static void w6_drop(void *self) {
  w6_task *t = self;
  cx_waker_drop(&t->parked);
  w6_drops++;
}

static const cx_future_vtable w6_vtable = {.poll = w6_poll,
                                           .drop = w6_drop,
                                           .state_size = sizeof(w6_task),
                                           .state_align = _Alignof(w6_task),
                                           .output_size = 0};

int bench_w6_idle_mem(void) {
  static w6_counts counts;
  cx_allocator a = {w6_alloc, w6_free, &counts};
  if (cx_set_allocator(&a) != CX_OK) return bench_fail("W6", "allocator");
  /* Task memory as a program with the default allocator gets it (blocks):
   * AUTO would see this counting allocator and give each task its own. */
  cx_executor_options opts = {.task_memory = CX_TASK_MEMORY_BLOCKS};
  cx_executor *ex;
  if (cx_executor_create(&opts, &ex) != CX_OK)
    return bench_fail("W6", "cx_executor_create");
  w6_task st = {CX_WAKER_EMPTY};
  uint64_t blocks_before = counts.live_blocks;

  uint64_t rss0 = bench_rss_bytes();
  uint64_t t0 = bench_now_ns();
  for (uint32_t i = 0; i < W6_N; i++) {
    int rc = cx_spawn(ex, &w6_vtable, &st, NULL);
    if (rc != CX_OK) return bench_fail("W6", "cx_spawn #%u: %d", i, rc);
  }
  int polled = cx_executor_run_until_idle(ex);
  uint64_t wall = bench_now_ns() - t0;
  uint64_t rss1 = bench_rss_bytes();

  cx_executor_stats stats;
  cx_executor_get_stats(ex, &stats);
  uint64_t task_bytes = counts.live_bytes;
  cx_executor_destroy(ex);
  uint64_t leaked_blocks = counts.live_blocks;
  cx_set_allocator(NULL);

  if (polled != (int)W6_N || stats.live != W6_N || stats.polls != W6_N)
    return bench_fail("W6", "polled %d, live %llu, polls %llu; want %u", polled,
                      (unsigned long long)stats.live,
                      (unsigned long long)stats.polls, W6_N);
  if (w6_drops != W6_N)
    return bench_fail("W6", "%llu futures dropped, want %u",
                      (unsigned long long)w6_drops, W6_N);
  if (leaked_blocks != 0 || blocks_before != 1)
    return bench_fail("W6",
                      "%llu blocks still allocated after destroy "
                      "(%llu before spawning)",
                      (unsigned long long)leaked_blocks,
                      (unsigned long long)blocks_before);
  if (rss0 == 0 || rss1 < rss0)
    return bench_fail("W6", "cannot read resident memory");
  double per_task = (double)(rss1 - rss0) / W6_N;
  char extra[192];
  snprintf(extra, sizeof extra,
           ",\"bytes_per_task\":%.1f,\"state_bytes\":%zu,"
           "\"alloc_bytes_per_task\":%.1f",
           per_task, sizeof(w6_task), (double)task_bytes / W6_N);
  bench_print("cexec", "W6", W6_N, (double)wall / W6_N, wall / 1e6, extra);
  return 0;
}
