/*
 * The poll loop: one task's poll, a tick over the ready queue, due timers
 * and I/O events.
 */
#include <stdint.h>

#include "executor/internal/executor.h"
#include "executor/internal/observe.h"

/*
 * Observability (observe.c) is decided once per tick, not per poll:
 * ex->obs never changes after create, so the loop and the task run are
 * written once, with `observed` as a compile-time constant, and compiled
 * twice. With observability off the poll path is the plain one, branch
 * free; with it on, polls go through cx__obs_poll and finishes through
 * cx__obs_complete.
 */
#define CX__INLINE static inline __attribute__((always_inline))

CX__INLINE void cx__finish(cx_executor *ex, cx__task *t, bool has_output,
                           bool observed) {
  if (observed) cx__obs_complete(ex, t, !has_output);
  cx__owned_unlink(ex, t);
  if (has_output)
    ex->stats.completed++;
  else
    ex->stats.cancelled++;
  cx__task_complete(t, has_output);
}

CX__INLINE void cx__run_task_impl(cx_executor *ex, cx__task *t, bool observed) {
  switch (cx__task_transition_to_running(t)) {
    case CX__RUN_GONE:
      return;
    case CX__RUN_CANCEL:
      cx__finish(ex, t, false, observed);
      return;
    case CX__RUN_POLL:
      break;
  }
  /* Relaxed: the count is only read for statistics; RUNNING makes us its
   * only writer. */
  uint32_t polls = atomic_load_explicit(&t->polls, memory_order_relaxed);
  if (polls != UINT32_MAX)
    atomic_store_explicit(&t->polls, polls + 1, memory_order_relaxed);
  ex->stats.polls++;
  cx_waker waker = cx__task_waker_ref(t);
  cx_context cx = {&waker, ex, &ex->timers, &ex->host};
  const cx_future_vtable *vt = t->vtable;
  void *out = vt->output_size ? cx__task_output(t) : NULL;
  cx_poll r = observed ? cx__obs_poll(ex, t, &cx, out)
                       : vt->poll(cx__task_state(t), &cx, out);
  if (r == CX_READY) {
    cx__finish(ex, t, true, observed);
    return;
  }
  switch (cx__task_transition_to_idle(t)) {
    case CX__IDLE_DONE:
      break;
    case CX__IDLE_NOTIFIED:
      cx__local_push(ex, t);
      break;
    case CX__IDLE_CANCELLED:
      cx__finish(ex, t, false, observed);
      break;
  }
}

static __attribute__((noinline)) void cx__run_task_plain(cx_executor *ex,
                                                         cx__task *t) {
  cx__run_task_impl(ex, t, false);
}

static __attribute__((noinline)) void cx__run_task_observed(cx_executor *ex,
                                                            cx__task *t) {
  cx__run_task_impl(ex, t, true);
}

void cx__run_task(cx_executor *ex, cx__task *t) {
  if (__builtin_expect(ex->obs != NULL, 0))
    cx__run_task_observed(ex, t);
  else
    cx__run_task_plain(ex, t);
}

static void cx__fire_timers(cx_executor *ex) {
  if (ex->timers.count == 0) return;
  if (cx_timers_next_deadline(&ex->timers) > ex->timers.now &&
      cx_timers_next_deadline(&ex->timers) > cx_timers_now(&ex->timers))
    return;
  cx_timers_fire(&ex->timers, ex->timers.now);
}

/* Everything that can make tasks ready without a poll: remote wakes and
 * spawns, due timers, and (once the executor has an I/O driver) fd events,
 * collected without blocking. Right after a park in the I/O driver, which
 * has just dispatched its events, the I/O poll is skipped: it would be a
 * second epoll call finding nothing (the next park or gather sees anything
 * that arrives meanwhile). */
static void cx__gather(cx_executor *ex) {
  cx__take_remote(ex);
  cx__fire_timers(ex);
  if (ex->io_driver && !ex->io_just_parked) cx_driver_park(ex->io_driver, 0);
  ex->io_just_parked = false;
}

CX__INLINE size_t cx__tick_impl(cx_executor *ex, size_t limit, bool observed) {
  size_t n = 0;
  cx__gather(ex);
  while (n < limit) {
    cx__task *t = cx__local_pop(ex);
    if (t == NULL) break;
    if (observed)
      cx__run_task_observed(ex, t);
    else
      cx__run_task_plain(ex, t);
    n++;
    if (n % CX__CHECK_INTERVAL == 0) cx__gather(ex);
  }
  return n;
}

size_t cx__tick(cx_executor *ex, size_t limit) {
  if (__builtin_expect(ex->obs != NULL, 0))
    return cx__tick_impl(ex, limit, true);
  return cx__tick_impl(ex, limit, false);
}
