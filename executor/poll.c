/*
 * The poll loop: one task's poll, a tick over the ready queue, due timers
 * and I/O events.
 */
#include <stdint.h>

#include "executor/internal/executor.h"

static void cx__finish(cx_executor *ex, cx__task *t, bool has_output) {
  cx__owned_unlink(ex, t);
  if (has_output)
    ex->stats.completed++;
  else
    ex->stats.cancelled++;
  cx__task_complete(t, has_output);
}

void cx__run_task(cx_executor *ex, cx__task *t) {
  switch (cx__task_transition_to_running(t)) {
    case CX__RUN_GONE:
      return;
    case CX__RUN_CANCEL:
      cx__finish(ex, t, false);
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
  if (vt->poll(cx__task_state(t), &cx, out) == CX_READY) {
    cx__finish(ex, t, true);
    return;
  }
  switch (cx__task_transition_to_idle(t)) {
    case CX__IDLE_DONE:
      break;
    case CX__IDLE_NOTIFIED:
      cx__local_push(ex, t);
      break;
    case CX__IDLE_CANCELLED:
      cx__finish(ex, t, false);
      break;
  }
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
 * collected without blocking. */
static void cx__gather(cx_executor *ex) {
  cx__take_remote(ex);
  cx__fire_timers(ex);
  if (ex->io_driver) cx_driver_park(ex->io_driver, 0);
}

size_t cx__tick(cx_executor *ex, size_t limit) {
  size_t n = 0;
  cx__gather(ex);
  while (n < limit) {
    cx__task *t = cx__local_pop(ex);
    if (t == NULL) break;
    cx__run_task(ex, t);
    n++;
    if (n % CX__CHECK_INTERVAL == 0) cx__gather(ex);
  }
  return n;
}
