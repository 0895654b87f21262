/*
 * Statistics and debug introspection (executor/debug.h): checks of the
 * queues, the owned list and the reference counts that the fuzz harnesses
 * run after every step.
 */
#include "executor/debug.h"

#include "executor/internal/executor.h"

int cx_executor_get_stats(const cx_executor *ex, cx_executor_stats *out) {
  if (ex == NULL || out == NULL) return CX_EINVAL;
  *out = ex->stats;
  out->live = ex->live;
  /* Tasks accepted from other threads count from their spawn call on, not
   * from when the executor takes them in. */
  pthread_mutex_lock((pthread_mutex_t *)&ex->mu);
  out->spawned += ex->remote_spawned;
  out->live += ex->remote_spawned;
  pthread_mutex_unlock((pthread_mutex_t *)&ex->mu);
  out->timers = ex->timers.count;
  return CX_OK;
}

/* Walks a queue: every task SCHEDULED and not RUNNING (or, in the local
 * queue, `carried`: RUNNING, queued again by the self-wake fast path of
 * poll.c), no cycle, no task twice (pairwise for small queues). Returns its
 * length or -1. */
static long cx__check_queue(cx__task *head, size_t expect, bool carried,
                            const char **why) {
  size_t n = 0;
  for (cx__task *t = head; t; t = t->next) {
    if (n++ > expect) {
      *why = "queue longer than its count (cycle or duplicate)";
      return -1;
    }
    unsigned f = cx__task_flags(t);
    bool ok = (f & CX__RUNNING) ? carried && t != cx__tls_polling.task
                                : (f & CX__SCHEDULED) != 0;
    if (!ok || (f & CX__COMPLETE)) {
      *why = "queued task not flagged SCHEDULED, or RUNNING";
      return -1;
    }
    if (expect <= 4096) {
      for (cx__task *u = t->next; u; u = u->next)
        if (u == t) {
          *why = "task queued twice";
          return -1;
        }
    }
  }
  if (n != expect) {
    *why = "queue length differs from its count";
    return -1;
  }
  return (long)n;
}

size_t cx_executor_debug_ready_len(cx_executor *ex) {
  if (ex == NULL) return 0;
  pthread_mutex_lock(&ex->mu);
  size_t n = ex->local_len + ex->remote_len;
  pthread_mutex_unlock(&ex->mu);
  return n;
}

int cx_executor_debug_check(cx_executor *ex, const char **why) {
  const char *dummy;
  if (why == NULL) why = &dummy;
  *why = NULL;
  if (ex == NULL) {
    *why = "NULL executor";
    return CX_EINVAL;
  }
  if (cx__check_queue(ex->local_head, ex->local_len, true, why) < 0)
    return CX_EINVAL;
  pthread_mutex_lock(&ex->mu);
  size_t remote_woken = 0, remote_spawned = 0;
  /* Bounded walks: a cycle must not hang the check. */
  for (cx__task *t = ex->remote_head; t && remote_woken <= ex->remote_len;
       t = t->next)
    remote_woken++;
  for (cx__task *t = ex->spawned_head; t && remote_spawned <= ex->remote_len;
       t = t->next)
    remote_spawned++;
  long r1 = cx__check_queue(ex->remote_head, remote_woken, false, why);
  long r2 = r1 < 0
                ? -1
                : cx__check_queue(ex->spawned_head, remote_spawned, false, why);
  bool len_ok = remote_woken + remote_spawned == ex->remote_len &&
                remote_spawned == ex->remote_spawned;
  pthread_mutex_unlock(&ex->mu);
  if (r1 < 0 || r2 < 0) return CX_EINVAL;
  if (!len_ok) {
    *why = "remote queue length differs from its count";
    return CX_EINVAL;
  }
  size_t owned = 0, owned_scheduled = 0;
  cx__task *prev = NULL;
  for (cx__task *t = ex->owned; t; t = t->owned_next) {
    if (t->owned_prev != prev) {
      *why = "owned list links broken";
      return CX_EINVAL;
    }
    prev = t;
    if (++owned > ex->live) {
      *why = "more owned tasks than live count";
      return CX_EINVAL;
    }
    unsigned f = cx__task_flags(t);
    if (f & CX__COMPLETE) {
      *why = "finished task still owned";
      return CX_EINVAL;
    }
    if (cx__task_refs(t) < 1u + ((f & CX__JOIN_INTEREST) ? 1u : 0u) +
                               ((f & CX__SCHEDULED) ? 1u : 0u)) {
      *why = "reference count below the references known to be held";
      return CX_EINVAL;
    }
    /* Queued: SCHEDULED and idle, or carried (RUNNING but not the task
     * this thread is polling now, if the check runs inside a poll). */
    if ((f & CX__RUNNING) ? t != cx__tls_polling.task
                          : (f & CX__SCHEDULED) != 0)
      owned_scheduled++;
  }
  if (owned != ex->live) {
    *why = "owned list length differs from live count";
    return CX_EINVAL;
  }
  /* Every queued owned task is SCHEDULED or carried (checked above);
   * conversely every SCHEDULED idle task, and every RUNNING one that is not
   * being polled (carried), must be queued exactly once. Remote spawns are
   * not owned yet. Holds when no other thread is mid-wake, and on the
   * executor's thread (or with it stopped). */
  if (owned_scheduled != ex->local_len + remote_woken) {
    *why = "scheduled tasks differ from queued tasks";
    return CX_EINVAL;
  }
  return CX_OK;
}

int cx_join_handle_debug_info(const cx_join_handle *h,
                              cx_task_debug_info *out) {
  if (h == NULL || out == NULL) return CX_EINVAL;
  const cx__task *t = cx__task_from_handle(h);
  /* Acquire: a snapshot consistent with what the flags publish. */
  uint64_t s =
      atomic_load_explicit(&((cx__task *)t)->state, memory_order_acquire);
  out->refs = s >> CX__REF_SHIFT;
  out->scheduled = (s & CX__SCHEDULED) != 0;
  out->running = (s & CX__RUNNING) != 0;
  out->complete = (s & CX__COMPLETE) != 0;
  out->cancelled = (s & CX__CANCELLED) != 0;
  out->has_output = (s & CX__OUTPUT) != 0;
  out->join_waker = (s & CX__JOIN_WAKER) != 0;
  /* Relaxed: a statistic. */
  out->polls =
      atomic_load_explicit(&((cx__task *)t)->polls, memory_order_relaxed);
  return CX_OK;
}

int cx_waker_debug_handle(const cx_waker *w, const cx_join_handle **out) {
  if (w == NULL || out == NULL) return CX_EINVAL;
  if (w->vtable != &cx__task_waker_vtable) return CX_EINVAL;
  *out = cx__task_to_handle((cx__task *)w->data);
  return CX_OK;
}
