/*
 * Fan-out / fan-in with join_all, written with the coroutine macros
 * (executor/coro.h):
 *
 *              +--> worker 0 --+
 *   fan_out ---+--> worker 1 --+--> join_all --> total
 *              +--> ...      --+
 *              +--> worker 7 --+
 *
 * `fan_out` spawns eight worker tasks, wraps each join handle in a join
 * future (which awaits the task's output and detaches the handle when
 * dropped), and awaits all of them at once with cx_join_all, the whole
 * under a 1 s timeout. Each worker "fetches" a value: it sleeps a few
 * milliseconds (longer for some) and returns its index squared. The workers
 * run concurrently, so the fan-in takes as long as the slowest one, not the
 * sum of all.
 *
 * No allocation besides the tasks: the join futures, their outputs and the
 * join_all bookkeeping are arrays in fan_out's state.
 *
 * Run: bazel run //examples:fanout
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "executor/cexec.h"

#define MS CX_NSEC_PER_MSEC
#define WORKERS 8

/* ---- a worker
 * ----------------------------------------------------------------- */

typedef struct worker {
  cx_coro co;
  cx_sleep nap;
  int index, rc;
} worker;

static cx_poll worker_poll(void *self, cx_context *cx, void *output) {
  worker *f = self;
  CX_CORO_BEGIN(&f->co);
  cx_sleep_init_for(&f->nap, (uint64_t)(2 + (f->index * 7) % 10) * MS);
  CX_AWAIT(&f->co, cx_sleep_poll(&f->nap, cx, &f->rc));
  CX_RETURN(&f->co, (int *)output, f->index * f->index);
  CX_CORO_END(&f->co);
}

static void worker_drop(void *self) {
  cx_sleep_drop(&((worker *)self)->nap);
}

static const cx_future_vtable worker_vtable = {.poll = worker_poll,
                                               .drop = worker_drop,
                                               .state_size = sizeof(worker),
                                               .state_align = _Alignof(worker),
                                               .output_size = sizeof(int)};

/* ---- fan out, fan in
 * ------------------------------------------------------------ */

typedef struct fan_out {
  cx_coro co;
  cx_join_future joins[WORKERS]; /* one per worker, owning its handle */
  cx_future futures[WORKERS];    /* the join futures, type-erased */
  int results[WORKERS];          /* join result of each worker */
  void *result_ptrs[WORKERS];
  int values[WORKERS]; /* each worker's output */
  cx_join_all all;
  cx_timeout deadline; /* wraps `all` */
  int i, rc, total;
  uint64_t started;
} fan_out;

static cx_poll fan_out_poll(void *self, cx_context *cx, void *output) {
  fan_out *f = self;
  int *total = output;
  CX_CORO_BEGIN(&f->co);
  f->started = cx_clock_now();
  for (f->i = 0; f->i < WORKERS; f->i++) {
    worker w;
    memset(&w, 0, sizeof w);
    w.index = f->i;
    cx_join_handle *h;
    f->rc = cx_spawn(cx->executor, &worker_vtable, &w, &h);
    if (f->rc != CX_OK) break;
    cx_join_future_init(&f->joins[f->i], h, &f->values[f->i], sizeof(int),
                        true);
    f->futures[f->i] = cx_future_of(&cx_join_future_vtable, &f->joins[f->i]);
    f->result_ptrs[f->i] = &f->results[f->i];
  }
  /* Await the workers spawned so far (all of them unless a spawn failed). */
  cx_join_all_init(&f->all, f->futures, f->result_ptrs, (size_t)f->i);
  cx_timeout_init(&f->deadline, cx_future_of(&cx_join_all_vtable, &f->all),
                  NULL, CX_NSEC_PER_SEC);
  if (f->rc != CX_OK) CX_RETURN(&f->co, total, f->rc);
  CX_AWAIT(&f->co, cx_timeout_poll(&f->deadline, cx, &f->rc));
  if (f->rc != CX_OK) CX_RETURN(&f->co, total, f->rc);
  for (f->i = 0; f->i < WORKERS; f->i++) {
    if (f->results[f->i] != CX_OK) CX_RETURN(&f->co, total, f->results[f->i]);
    printf("worker %d -> %d\n", f->i, f->values[f->i]);
    f->total += f->values[f->i];
  }
  printf("fan-in after %.1f ms (the slowest worker sleeps 11 ms)\n",
         (double)(cx_clock_now() - f->started) / (double)MS);
  CX_RETURN(&f->co, total, f->total);
  CX_CORO_END(&f->co);
}

static void fan_out_drop(void *self) {
  fan_out *f = self;
  /* The timeout owns the join_all, which owns the join futures, which own
   * the handles: one drop releases them all, in whatever state. */
  cx_timeout_drop(&f->deadline);
}

static const cx_future_vtable fan_out_vtable = {
    .poll = fan_out_poll,
    .drop = fan_out_drop,
    .state_size = sizeof(fan_out),
    .state_align = _Alignof(fan_out),
    .output_size = sizeof(int)};

int main(void) {
  fan_out f;
  memset(&f, 0, sizeof f);
  int total = 0;
  int rc = cx_block_on(&fan_out_vtable, &f, &total, sizeof total);
  if (rc != CX_OK) {
    fprintf(stderr, "block_on: %s\n", cx_strerror(rc));
    return 1;
  }
  if (total < 0) {
    fprintf(stderr, "fan-out failed: %s\n", cx_strerror(total));
    return 1;
  }
  printf("total = %d\n", total); /* 0 + 1 + 4 + ... + 49 = 140 */
  return total == 140 ? 0 : 1;
}
