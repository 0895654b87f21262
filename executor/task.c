/*
 * Tasks.
 *
 * A task is ONE allocation:
 *
 *   +-----------------+----------------------+----------------+-----------+
 *   | cx__task header | future state (inline)| output (inline)| join slot |
 *   +-----------------+----------------------+----------------+-----------+
 *
 * (the join-waker slot only for a task spawned with a join handle: the
 * 56-byte header stays small for detached tasks; W6 in docs/performance.md)
 *
 * and ONE atomic 64-bit word, `state`, that packs the flags (low byte) with
 * the reference count (above bit 8). Every transition is a compare-and-swap
 * on that word, so "is it queued?", "is it running?" and "how many owners?"
 * are always answered together, and no lock is ever taken.
 *
 * References. Each of these owns exactly one:
 *   - the executor, from spawn until the task finishes (the "owner" ref);
 *   - the ready queue, while SCHEDULED and not RUNNING (the "queue" ref);
 *     when the executor pops the task the queue ref becomes the "running"
 *     ref, given back when the poll ends unless the task is queued again;
 *   - every cx_waker made by cloning the task's waker;
 *   - the join handle, while JOIN_INTEREST.
 * The task is freed by whoever drops the last reference, on any thread.
 *
 * Flags and transitions:
 *   wake (idle)         -> SCHEDULED, +1 ref, pushed onto the ready queue
 *   wake (SCHEDULED)    -> nothing: a task is never queued twice
 *   wake (RUNNING)      -> SCHEDULED only; the poller queues it again when the
 *                          poll returns, so a wake during poll is not lost
 *   wake (COMPLETE)     -> nothing
 *   pop from queue      -> clear SCHEDULED, set RUNNING (or cancel / nothing)
 *   poll -> PENDING     -> clear RUNNING; re-queue if SCHEDULED; cancel if
 *                          CANCELLED; else drop the running ref
 *   poll -> READY       -> drop the future, set COMPLETE|OUTPUT
 *   cancel (idle)       -> CANCELLED|SCHEDULED, +1 ref, queued so that the
 *                          executor's thread drops the future
 *   cancel (otherwise)  -> CANCELLED; the executor acts on it when it next
 *                          holds RUNNING
 * The future is dropped exactly once, by the thread holding RUNNING, which is
 * always the executor's: futures never need to be thread-safe.
 *
 * JOIN_WAKER protocol (the slot holding the joiner's waker):
 *   - only the handle's owner writes the slot, and only while JOIN_WAKER is
 *     clear and COMPLETE is not set; it arms the slot by setting JOIN_WAKER
 *     with a CAS that fails if COMPLETE appeared meanwhile;
 *   - to replace an armed waker the owner first clears JOIN_WAKER with a CAS
 *     (failing if COMPLETE appeared: the completer owns the slot then);
 *   - the completer sets COMPLETE and, if JOIN_WAKER was set in the same
 *     CAS's old value, wakes the slot by reference, then clears JOIN_WAKER
 *     (it is done with the slot) before dropping its own references;
 *   - after COMPLETE the slot belongs to the handle: dropping the handle
 *     drops the waker, unless JOIN_WAKER is still set (the completer is
 *     waking it), in which case the completer drops it when it clears
 *     JOIN_WAKER and finds JOIN_INTEREST gone. So a joiner's waker never
 *     outlives both the handle and the completion: tasks that join each
 *     other (or themselves) do not keep each other alive once their handles
 *     are dropped (found by fuzz/task_lifecycle). Whatever is left in the
 *     slot is dropped when the task is freed.
 *
 * Memory orders: reference increments are relaxed (the caller already holds
 * a reference, so the task cannot vanish); decrements are acq_rel, so the
 * one reaching zero sees every write made by other owners (release plus an
 * acquire fence would be enough, but ThreadSanitizer does not model
 * fences). State CASes are acq_rel: the flags publish the future's state and
 * output between threads.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, condattr_setclock */

#include "executor/internal/task.h"

#include <pthread.h>
#include <string.h>

#include "waker/alloc.h"
#include "waker/error.h"
#include "waker/internal/current.h"

static size_t cx__align_up(size_t n, size_t a) {
  return (n + a - 1) & ~(a - 1);
}

static size_t cx__state_align(const cx_future_vtable *vt) {
  return vt->state_align ? vt->state_align : _Alignof(max_align_t);
}

/* Layout: returns total size and writes the output offset. */
static size_t cx__task_layout(const cx_future_vtable *vt, bool join_slot,
                              size_t *out_off, size_t *align) {
  size_t sa = cx__state_align(vt);
  size_t state_off = cx__align_up(sizeof(cx__task), sa);
  size_t end = state_off + vt->state_size;
  size_t oa = vt->output_align ? vt->output_align : _Alignof(max_align_t);
  size_t output_off = cx__align_up(end, oa);
  if (vt->output_size == 0) output_off = end;
  *out_off = output_off;
  *align = sa > oa ? sa : oa;
  size_t total = output_off + vt->output_size;
  if (join_slot)
    total = cx__align_up(total, _Alignof(cx_waker)) + sizeof(cx_waker);
  return total;
}

cx__task *cx__task_create(const cx_future_vtable *vt, const void *state,
                          cx__scheduler *sched, bool with_handle) {
  size_t output_off, align;
  size_t size = cx__task_layout(vt, with_handle, &output_off, &align);
  cx__task *t = cx_alloc(size, align);
  if (t == NULL) return NULL;
  uint64_t refs = 2 + (with_handle ? 1 : 0);
  uint64_t flags = CX__SCHEDULED | (with_handle ? CX__JOIN_INTEREST : 0);
  atomic_init(&t->state, refs * CX__REF_ONE | flags);
  t->next = NULL;
  t->vtable = vt;
  t->sched = sched;
  t->owned_prev = NULL;
  t->owned_next = NULL;
  atomic_init(&t->polls, 0);
  t->layout = (uint32_t)output_off | (with_handle ? CX__LAYOUT_JOIN_SLOT : 0);
  if (with_handle) *cx__task_join_slot(t) = CX_WAKER_EMPTY;
  if (vt->state_size > 0) memcpy(cx__task_state(t), state, vt->state_size);
  return t;
}

static void cx__task_dealloc(cx__task *t) {
  uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
  const cx_future_vtable *vt = t->vtable;
  if ((s & CX__OUTPUT) && !(s & CX__OUTPUT_TAKEN) && vt->drop_output)
    vt->drop_output(cx__task_output(t));
  cx_waker_drop(cx__task_join_slot(t)); /* NULL (no slot) is a no-op */
  cx__scheduler *sched = t->sched;
  size_t output_off, align;
  size_t size = cx__task_layout(vt, (t->layout & CX__LAYOUT_JOIN_SLOT) != 0,
                                &output_off, &align);
  cx_free(t, size, align);
  /* Last: the scheduler may be freed by this call. */
  sched->task_freed(sched);
}

void cx__task_discard(cx__task *t) {
  size_t output_off, align;
  size_t size = cx__task_layout(
      t->vtable, (t->layout & CX__LAYOUT_JOIN_SLOT) != 0, &output_off, &align);
  cx_free(t, size, align);
}

int cx__task_ref_inc(cx__task *t) {
  uint64_t old =
      atomic_fetch_add_explicit(&t->state, CX__REF_ONE, memory_order_relaxed);
  if ((old >> CX__REF_SHIFT) >= CX__REF_MAX) {
    atomic_fetch_sub_explicit(&t->state, CX__REF_ONE, memory_order_relaxed);
    return CX_EOVERFLOW;
  }
  return CX_OK;
}

void cx__task_ref_dec_n(cx__task *t, uint64_t n) {
  /* acq_rel rather than release + an acquire fence when reaching zero: the
   * same instruction on x86, and ThreadSanitizer does not model fences. */
  uint64_t old = atomic_fetch_sub_explicit(&t->state, n * CX__REF_ONE,
                                           memory_order_acq_rel);
  if ((old >> CX__REF_SHIFT) == n) {
    cx__task_dealloc(t);
  }
}

void cx__task_ref_dec(cx__task *t) {
  cx__task_ref_dec_n(t, 1);
}

void cx__task_debug_add_refs(cx__task *t, uint64_t refs) {
  atomic_fetch_add_explicit(&t->state, refs * CX__REF_ONE,
                            memory_order_relaxed);
}

/* ---- waking ------------------------------------------------------------ */

void cx__task_wake_by_ref(cx__task *t) {
  uint64_t cur = atomic_load_explicit(&t->state, memory_order_acquire);
  uint64_t next;
  do {
    if (cur & (CX__COMPLETE | CX__SCHEDULED)) return;
    if (cur & CX__RUNNING) {
      next = cur | CX__SCHEDULED;
    } else {
      /* The queue needs its own reference. The caller holds one, so the
       * count is at least 1 and far from the limit in any real program; a
       * task at the limit is still woken (the limit only guards clones). */
      next = (cur | CX__SCHEDULED) + CX__REF_ONE;
    }
  } while (!atomic_compare_exchange_weak_explicit(
      &t->state, &cur, next, memory_order_acq_rel, memory_order_acquire));
  if (!(cur & CX__RUNNING)) t->sched->schedule(t->sched, t);
}

void cx__task_wake_by_val(cx__task *t) {
  uint64_t cur = atomic_load_explicit(&t->state, memory_order_acquire);
  uint64_t next;
  for (;;) {
    if (cur & (CX__COMPLETE | CX__SCHEDULED)) {
      /* Nothing to do but give up our reference. */
      cx__task_ref_dec(t);
      return;
    }
    if (cur & CX__RUNNING) {
      /* The running reference keeps t alive; ours can go in the same CAS. */
      next = (cur | CX__SCHEDULED) - CX__REF_ONE;
    } else {
      next = cur | CX__SCHEDULED; /* our reference becomes the queue's */
    }
    if (atomic_compare_exchange_weak_explicit(
            &t->state, &cur, next, memory_order_acq_rel, memory_order_acquire))
      break;
  }
  if (!(cur & CX__RUNNING)) t->sched->schedule(t->sched, t);
}

static int cx__task_waker_clone(const void *data, cx_waker *out) {
  cx__task *t = (cx__task *)data;
  int rc = cx__task_ref_inc(t);
  if (rc != CX_OK) return rc;
  out->vtable = &cx__task_waker_vtable;
  out->data = t;
  return CX_OK;
}
static void cx__task_waker_wake(const void *data) {
  cx__task_wake_by_val((cx__task *)data);
}
static void cx__task_waker_wake_by_ref(const void *data) {
  cx__task_wake_by_ref((cx__task *)data);
}
static void cx__task_waker_drop(const void *data) {
  cx__task_ref_dec((cx__task *)data);
}

const cx_waker_vtable cx__task_waker_vtable = {
    cx__task_waker_clone, cx__task_waker_wake, cx__task_waker_wake_by_ref,
    cx__task_waker_drop};

cx_waker cx__task_waker_ref(cx__task *t) {
  cx_waker w = {&cx__task_waker_vtable, t};
  return w;
}

/* ---- executor side ----------------------------------------------------- */

cx__action cx__task_transition_to_running(cx__task *t) {
  uint64_t cur = atomic_load_explicit(&t->state, memory_order_acquire);
  uint64_t next;
  do {
    if (cur & CX__COMPLETE) {
      /* Finished while queued (executor shutdown): just drop the queue ref. */
      next = (cur & ~(uint64_t)CX__SCHEDULED) - CX__REF_ONE;
    } else {
      next = (cur & ~(uint64_t)CX__SCHEDULED) | CX__RUNNING;
    }
  } while (!atomic_compare_exchange_weak_explicit(
      &t->state, &cur, next, memory_order_acq_rel, memory_order_acquire));
  if (cur & CX__COMPLETE) {
    if ((next >> CX__REF_SHIFT) == 0) cx__task_dealloc(t);
    return CX__ACT_NONE;
  }
  return (cur & CX__CANCELLED) ? CX__ACT_CANCEL : CX__ACT_POLL;
}

cx__action cx__task_transition_to_idle(cx__task *t) {
  uint64_t cur = atomic_load_explicit(&t->state, memory_order_acquire);
  uint64_t next;
  cx__action act;
  do {
    if (cur & CX__CANCELLED) return CX__ACT_CANCEL; /* keep RUNNING */
    if (cur & CX__SCHEDULED) {
      next = cur & ~(uint64_t)CX__RUNNING; /* running ref -> queue ref */
      act = CX__ACT_RESCHEDULE;
    } else {
      /* The owner's reference is still held, so this never reaches 0. */
      next = (cur & ~(uint64_t)CX__RUNNING) - CX__REF_ONE;
      act = CX__ACT_NONE;
    }
  } while (!atomic_compare_exchange_weak_explicit(
      &t->state, &cur, next, memory_order_acq_rel, memory_order_acquire));
  return act;
}

void cx__task_finish(cx__task *t, bool has_output) {
  if (t->vtable->drop) t->vtable->drop(cx__task_state(t));
  uint64_t cur = atomic_load_explicit(&t->state, memory_order_acquire);
  uint64_t next;
  bool drop_refs_now;
  do {
    next = (cur & ~(uint64_t)(CX__RUNNING | CX__SCHEDULED)) | CX__COMPLETE |
           (has_output ? CX__OUTPUT : 0);
    /* With no joiner to wake, the running and owner refs go in the same CAS;
     * otherwise they must outlive the wake below. */
    drop_refs_now = !(cur & CX__JOIN_WAKER);
    if (drop_refs_now) next -= 2 * CX__REF_ONE;
  } while (!atomic_compare_exchange_weak_explicit(
      &t->state, &cur, next, memory_order_acq_rel, memory_order_acquire));
  if (drop_refs_now) {
    if ((next >> CX__REF_SHIFT) == 0) cx__task_dealloc(t);
    return;
  }
  cx_waker_wake_by_ref(cx__task_join_slot(t));
  /* Done with the slot. If the handle is gone, its waker goes now. */
  uint64_t prev = atomic_fetch_and_explicit(
      &t->state, ~(uint64_t)CX__JOIN_WAKER, memory_order_acq_rel);
  if (!(prev & CX__JOIN_INTEREST)) cx_waker_drop(cx__task_join_slot(t));
  cx__task_ref_dec_n(t, 2);
}

int cx__task_cancel(cx__task *t) {
  uint64_t cur = atomic_load_explicit(&t->state, memory_order_acquire);
  uint64_t next;
  do {
    if (cur & CX__COMPLETE) return CX_EALREADY;
    if (cur & CX__CANCELLED) return CX_OK;
    next = cur | CX__CANCELLED;
    if (!(cur & (CX__RUNNING | CX__SCHEDULED)))
      next = (next | CX__SCHEDULED) + CX__REF_ONE;
  } while (!atomic_compare_exchange_weak_explicit(
      &t->state, &cur, next, memory_order_acq_rel, memory_order_acquire));
  if (!(cur & (CX__RUNNING | CX__SCHEDULED))) t->sched->schedule(t->sched, t);
  return CX_OK;
}

/* ---- join side --------------------------------------------------------- */

static int cx__task_take_output(cx__task *t, uint64_t state, void *out) {
  if (!(state & CX__OUTPUT)) return CX_ECANCELED;
  uint64_t prev = atomic_fetch_or_explicit(&t->state, CX__OUTPUT_TAKEN,
                                           memory_order_acq_rel);
  if (prev & CX__OUTPUT_TAKEN) return CX_EALREADY;
  const cx_future_vtable *vt = t->vtable;
  if (out == NULL) {
    if (vt->drop_output) vt->drop_output(cx__task_output(t));
  } else if (vt->output_size > 0) {
    memcpy(out, cx__task_output(t), vt->output_size);
  }
  return CX_OK;
}

cx_poll cx__task_join_poll(cx__task *t, const cx_waker *waker, int *result,
                           void *out, size_t out_size) {
  if (out != NULL && out_size != t->vtable->output_size) {
    *result = CX_EINVAL;
    return CX_READY;
  }
  uint64_t cur = atomic_load_explicit(&t->state, memory_order_acquire);
  if (cur & CX__COMPLETE) {
    *result = cx__task_take_output(t, cur, out);
    return CX_READY;
  }
  if (cur & CX__JOIN_WAKER) {
    if (cx_waker_will_wake(cx__task_join_slot(t), waker)) return CX_PENDING;
    /* Disarm to get the slot back. */
    while (!atomic_compare_exchange_weak_explicit(
        &t->state, &cur, cur & ~(uint64_t)CX__JOIN_WAKER, memory_order_acq_rel,
        memory_order_acquire)) {
      if (cur & CX__COMPLETE) {
        *result = cx__task_take_output(t, cur, out);
        return CX_READY;
      }
    }
  }
  /* The slot is ours: JOIN_WAKER is clear and COMPLETE was not set. */
  int rc = cx_waker_store(cx__task_join_slot(t), waker);
  if (rc != CX_OK) {
    *result = rc;
    return CX_READY;
  }
  cur = atomic_load_explicit(&t->state, memory_order_acquire);
  do {
    if (cur & CX__COMPLETE) {
      *result = cx__task_take_output(t, cur, out);
      return CX_READY;
    }
  } while (!atomic_compare_exchange_weak_explicit(
      &t->state, &cur, cur | CX__JOIN_WAKER, memory_order_acq_rel,
      memory_order_acquire));
  return CX_PENDING;
}

void cx__task_join_drop(cx__task *t) {
  uint64_t cur = atomic_load_explicit(&t->state, memory_order_acquire);
  uint64_t next;
  do {
    next = cur & ~(uint64_t)CX__JOIN_INTEREST;
    /* Before completion, disarming gives us the slot back to empty now
     * rather than keeping the joiner's waker alive until the task is freed. */
    if (!(cur & CX__COMPLETE)) next &= ~(uint64_t)CX__JOIN_WAKER;
  } while (!atomic_compare_exchange_weak_explicit(
      &t->state, &cur, next, memory_order_acq_rel, memory_order_acquire));
  /* The slot is ours (disarmed above, or the completer is done with it)
   * unless the completer is still waking it: it drops the waker then. */
  if (!(cur & CX__COMPLETE) || !(cur & CX__JOIN_WAKER))
    cx_waker_drop(cx__task_join_slot(t));
  cx__task_ref_dec(t);
}

void cx__task_join_withdraw(cx__task *t) {
  uint64_t cur = atomic_load_explicit(&t->state, memory_order_acquire);
  for (;;) {
    if (cur & CX__COMPLETE) {
      /* While JOIN_WAKER is set the completer is waking the slot: leave it
       * (released when the handle goes or the task is freed). Once it is
       * clear, the completer is done and the slot is the handle's. */
      if (cur & CX__JOIN_WAKER) return;
      break;
    }
    /* Before completion: disarm, with a CAS that fails if COMPLETE shows
     * up meanwhile. */
    if (atomic_compare_exchange_weak_explicit(
            &t->state, &cur, cur & ~(uint64_t)CX__JOIN_WAKER,
            memory_order_acq_rel, memory_order_acquire))
      break;
  }
  cx_waker_drop(cx__task_join_slot(t));
}

/* ---- public join handle API ------------------------------------------- */

cx_poll cx_join_handle_poll(cx_join_handle *h, cx_context *cx, int *result,
                            void *out, size_t out_size) {
  if (result == NULL) return CX_READY;
  if (h == NULL || cx == NULL || cx->waker == NULL) {
    *result = CX_EINVAL;
    return CX_READY;
  }
  return cx__task_join_poll(cx__task_from_handle(h), cx->waker, result, out,
                            out_size);
}

int cx_join_handle_try_join(cx_join_handle *h, void *out, size_t out_size) {
  if (h == NULL) return CX_EINVAL;
  cx__task *t = cx__task_from_handle(h);
  if (out != NULL && out_size != t->vtable->output_size) return CX_EINVAL;
  uint64_t cur = atomic_load_explicit(&t->state, memory_order_acquire);
  if (!(cur & CX__COMPLETE)) return CX_EAGAIN;
  return cx__task_take_output(t, cur, out);
}

/* A thread parker: a waker whose wake signals a condition variable. It is
 * reference-counted because the task may still hold its clone (in the join
 * slot) after the waiting thread has returned. */
typedef struct cx__parker {
  _Atomic uint32_t refs;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool notified;
} cx__parker;

static void cx__parker_unref(const void *data) {
  cx__parker *p = (cx__parker *)data;
  /* acq_rel: see cx__task_ref_dec_n. */
  if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) == 1) {
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    cx_free(p, sizeof *p, _Alignof(cx__parker));
  }
}
static void cx__parker_wake_by_ref(const void *data) {
  cx__parker *p = (cx__parker *)data;
  pthread_mutex_lock(&p->mu);
  p->notified = true;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}
static void cx__parker_wake(const void *data) {
  cx__parker_wake_by_ref(data);
  cx__parker_unref(data);
}
static int cx__parker_clone(const void *data, cx_waker *out);
static const cx_waker_vtable cx__parker_vtable = {
    .clone = cx__parker_clone,
    .wake = cx__parker_wake,
    .wake_by_ref = cx__parker_wake_by_ref,
    .drop = cx__parker_unref};
static int cx__parker_clone(const void *data, cx_waker *out) {
  cx__parker *p = (cx__parker *)data;
  atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
  out->vtable = &cx__parker_vtable;
  out->data = p;
  return CX_OK;
}

int cx_join_handle_wait(cx_join_handle *h, void *out, size_t out_size) {
  if (h == NULL) return CX_EINVAL;
  cx__task *t = cx__task_from_handle(h);
  int rc = cx_join_handle_try_join(h, out, out_size);
  if (rc != CX_EAGAIN) return rc;
  /* Waiting on an executor's thread would stall the tasks that run there,
   * perhaps the very one we wait for: refuse (see task.h). */
  if (cx__current_executor() != NULL) return CX_EDEADLK;
  cx__parker *p = cx_alloc(sizeof *p, _Alignof(cx__parker));
  if (p == NULL) return CX_ENOMEM;
  atomic_init(&p->refs, 1);
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  p->notified = false;
  cx_waker w = {&cx__parker_vtable, p};
  int result;
  while (cx__task_join_poll(t, &w, &result, out, out_size) == CX_PENDING) {
    pthread_mutex_lock(&p->mu);
    while (!p->notified) pthread_cond_wait(&p->cv, &p->mu);
    p->notified = false;
    pthread_mutex_unlock(&p->mu);
  }
  cx__parker_unref(p);
  return result;
}

int cx_join_handle_cancel(cx_join_handle *h) {
  if (h == NULL) return CX_EINVAL;
  return cx__task_cancel(cx__task_from_handle(h));
}

bool cx_join_handle_is_finished(const cx_join_handle *h) {
  if (h == NULL) return false;
  return (cx__task_flags(cx__task_from_handle(h)) & CX__COMPLETE) != 0;
}

uint64_t cx_join_handle_poll_count(const cx_join_handle *h) {
  if (h == NULL) return 0;
  cx__task *t = cx__task_from_handle(h);
  return atomic_load_explicit(&t->polls, memory_order_relaxed);
}

void cx_join_handle_detach(cx_join_handle *h) {
  if (h == NULL) return;
  cx__task_join_drop(cx__task_from_handle(h));
}
