/*
 * The floor ("cexec_limit") for W1 and W2: the same work with everything an
 * executor pays for taken away. A preallocated ring buffer of
 * (function pointer, context) pairs; a tight loop pops one, calls it, and
 * drops it (W1) or pushes it back if it is not finished (W2). No atomics, no
 * locks, no allocation while timed (the ring is allocated and touched
 * before the clock starts).
 */
#define _GNU_SOURCE

#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"

/* Returns nonzero when the "task" is finished. */
typedef int (*limit_fn)(void *ctx);

typedef struct limit_item {
  limit_fn fn;
  void *ctx;
} limit_item;

typedef struct limit_ring {
  limit_item *items;
  size_t mask; /* capacity - 1, a power of two */
  size_t head, tail;
} limit_ring;

static int limit_ring_init(limit_ring *r, size_t min_capacity) {
  size_t cap = 1;
  while (cap < min_capacity) cap <<= 1;
  r->items = malloc(cap * sizeof *r->items);
  if (r->items == NULL) return -1;
  memset(r->items, 0, cap * sizeof *r->items); /* fault the pages in now */
  r->mask = cap - 1;
  r->head = r->tail = 0;
  return 0;
}

static inline void limit_push(limit_ring *r, limit_fn fn, void *ctx) {
  limit_item *it = &r->items[r->tail++ & r->mask];
  it->fn = fn;
  it->ctx = ctx;
}

static inline int limit_pop(limit_ring *r, limit_item *out) {
  if (r->head == r->tail) return 0;
  *out = r->items[r->head++ & r->mask];
  return 1;
}

/* ---- W1: each call increments the shared counter and finishes. --------- */

__attribute__((noinline)) static int limit_w1_fn(void *ctx) {
  (*(uint64_t *)ctx)++;
  return 1;
}

int bench_limit_w1(void) {
  limit_ring r;
  if (limit_ring_init(&r, W1_N) != 0) return bench_fail("W1", "ring alloc");
  uint64_t counter = 0;
  limit_fn fn = limit_w1_fn;
  bench_keep(&fn);

  uint64_t t0 = bench_now_ns();
  for (uint32_t i = 0; i < W1_N; i++) limit_push(&r, fn, &counter);
  limit_item it;
  while (limit_pop(&r, &it)) it.fn(it.ctx);
  uint64_t wall = bench_now_ns() - t0;

  free(r.items);
  if (counter != W1_N)
    return bench_fail("W1", "limit counter %llu != %u",
                      (unsigned long long)counter, W1_N);
  bench_print("cexec_limit", "W1", W1_N, (double)wall / W1_N, wall / 1e6, NULL);
  return 0;
}

/* ---- W2: each "task" yields Y times, then finishes. --------------------- */

typedef struct limit_w2_task {
  uint64_t *polls;
  uint32_t pending_left;
} limit_w2_task;

__attribute__((noinline)) static int limit_w2_fn(void *ctx) {
  limit_w2_task *t = ctx;
  (*t->polls)++;
  if (t->pending_left == 0) return 1;
  t->pending_left--;
  return 0;
}

int bench_limit_w2(void) {
  limit_ring r;
  if (limit_ring_init(&r, W2_T) != 0) return bench_fail("W2", "ring alloc");
  limit_w2_task *tasks = calloc(W2_T, sizeof *tasks);
  if (tasks == NULL) return bench_fail("W2", "tasks alloc");
  uint64_t polls = 0;
  limit_fn fn = limit_w2_fn;
  bench_keep(&fn);

  uint64_t t0 = bench_now_ns();
  for (uint32_t i = 0; i < W2_T; i++) {
    tasks[i].polls = &polls;
    tasks[i].pending_left = W2_Y;
    limit_push(&r, fn, &tasks[i]);
  }
  limit_item it;
  while (limit_pop(&r, &it))
    if (!it.fn(it.ctx)) limit_push(&r, it.fn, it.ctx);
  uint64_t wall = bench_now_ns() - t0;

  free(tasks);
  free(r.items);
  uint64_t want = (uint64_t)W2_T * (W2_Y + 1);
  if (polls != want)
    return bench_fail("W2", "limit polls %llu != %llu",
                      (unsigned long long)polls, (unsigned long long)want);
  uint64_t ops = (uint64_t)W2_T * W2_Y;
  bench_print("cexec_limit", "W2", ops, (double)wall / (double)ops, wall / 1e6,
              NULL);
  return 0;
}
