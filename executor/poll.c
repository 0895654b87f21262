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

/* Pops t: the transition that makes the caller its poller. A task queued
 * again by the self-wake fast path is still RUNNING (carried) and, unless
 * another thread woke or cancelled it meanwhile, needs no atomic write.
 * Relaxed load: RUNNING was written by this thread (only the poller sets or
 * clears it); when SCHEDULED or CANCELLED shows, the transition's CAS is the
 * acquire that pairs with that waker's or canceller's release. */
CX__INLINE cx__run_result cx__pop_transition(cx__task *t) {
  uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
  if (s & CX__RUNNING) {
    if (__builtin_expect((s & (CX__SCHEDULED | CX__CANCELLED)) == 0, 1))
      return CX__RUN_POLL;
    return cx__task_transition_carried_to_running(t);
  }
  return cx__task_transition_to_running(t);
}

/* After a CX_PENDING poll in which t woke itself by reference (only the
 * thread-local record knows: the state word was not written), t is queued
 * again without a transition, still RUNNING, when nothing else happened to
 * it. Relaxed load: a clean RUNNING word (our own write) is all it acts on;
 * if another thread set SCHEDULED or CANCELLED, transition_to_idle's CAS
 * takes over, and acquires. Keeps "cancelled during its poll: finished right
 * after it". */
CX__INLINE bool cx__carry(cx_executor *ex, cx__task *t) {
  uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
  if (s & (CX__SCHEDULED | CX__CANCELLED)) return false;
  cx__local_push(ex, t);
  return true;
}

CX__INLINE void cx__run_task_impl(cx_executor *ex, cx__task *t, bool observed) {
  switch (cx__pop_transition(t)) {
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
  cx_poll r;
  bool self_woken = false;
  if (observed) {
    r = cx__obs_poll(ex, t, &cx, out);
  } else {
    /* The self-wake fast path (task.h). The record is cleared after the
     * poll: a wake by reference of t from anything else this thread runs
     * (timers, I/O, another task) must take the atomic path. Whoever runs
     * this saves and restores the whole record around it (cx__tick,
     * cx__run_task_plain): a poll may drive another executor on this
     * thread, whose polls must not erase this poll's `woken`. */
    cx__polling *p = &cx__tls_polling;
    p->task = t;
    p->woken = false;
    r = vt->poll(cx__task_state(t), &cx, out);
    self_woken = p->woken;
    p->task = NULL;
  }
  if (r == CX_READY) {
    cx__finish(ex, t, true, observed);
    return;
  }
  /* A self-wake that cx__carry declines needs no write of its own: it saw
   * SCHEDULED (transition_to_idle queues t again) or CANCELLED (t is
   * finished), and only this thread could clear either. */
  if (self_woken && cx__carry(ex, t)) return;
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
  cx__polling saved = cx__tls_polling; /* see cx__run_task_impl */
  cx__run_task_impl(ex, t, false);
  cx__tls_polling = saved;
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
  cx__polling saved = cx__tls_polling; /* see cx__run_task_impl */
  cx__gather(ex);
  while (n < limit) {
    cx__task *t = cx__local_pop(ex);
    if (t == NULL) break;
    /* The plain run is inlined here: the loop that runs every poll pays
     * no call for it (W2 in docs/performance.md). */
    if (observed)
      cx__run_task_observed(ex, t);
    else
      cx__run_task_impl(ex, t, false);
    n++;
    if (n % CX__CHECK_INTERVAL == 0) cx__gather(ex);
  }
  cx__tls_polling = saved;
  return n;
}

size_t cx__tick(cx_executor *ex, size_t limit) {
  if (__builtin_expect(ex->obs != NULL, 0))
    return cx__tick_impl(ex, limit, true);
  return cx__tick_impl(ex, limit, false);
}
