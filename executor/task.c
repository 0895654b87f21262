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
 * Flags and transitions: one function each below (the full table, with
 * every case and its references, is in docs/design.md):
 *   transition_to_notified_by_ref / _by_val (wake): idle -> SCHEDULED and
 *       queued (+1 ref, or the waker's ref becomes the queue's); SCHEDULED
 *       or RUNNING -> SCHEDULED written back (a release: the wake
 *       happens-before the poll it causes); COMPLETE -> nothing
 *   transition_to_running (pop): -SCHEDULED +RUNNING -> POLL or CANCEL;
 *       COMPLETE -> GONE (a safety net: drops the queue's ref)
 *   transition_to_idle (PENDING): CANCELLED -> CANCELLED (wins over
 *       SCHEDULED); SCHEDULED -> NOTIFIED (queue again); else DONE
 *   carried (PENDING after waking itself by reference, on a single-threaded
 *       executor): no transition, the word is not written; the task is
 *       queued again still RUNNING, with the running ref as the queue's.
 *       transition_carried_to_running (its pop, only when another thread
 *       set SCHEDULED or CANCELLED meanwhile): -SCHEDULED -> POLL or CANCEL
 *   transition_to_complete: -RUNNING -SCHEDULED +COMPLETE (+OUTPUT), the
 *       running and owner refs dropped in the same CAS unless a joiner's
 *       waker must be woken first (then join_waker_done, then the refs)
 *   transition_to_cancelled: idle -> +CANCELLED +SCHEDULED, queued so that
 *       the executor's thread drops the future; queued or RUNNING ->
 *       +CANCELLED (the next holder of RUNNING acts); twice -> nothing
 *   take_output, set/unset_join_waker, drop_join_interest: the join side.
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
 * fences). State CASes are acq_rel (cx__state_cas): the flags publish the
 * future's state and output between threads, and a wake's writes to the
 * poll it causes.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, condattr_setclock */

#include "executor/internal/task.h"

#include <assert.h>
#include <pthread.h>
#include <string.h>

#include "executor/internal/copy.h"
#include "waker/alloc.h"
#include "waker/error.h"
#include "waker/internal/current.h"

/* Debug checks of each transition's precondition: internal invariants, not
 * user input, so they are assertions (compiled out with -DNDEBUG, as in
 * `bazel build -c opt`). */
#define CX__CHECK(cond) assert(cond)

/* The one compare-and-swap every transition goes through. acq_rel on
 * success: the release publishes what the caller wrote before (the future's
 * state, its output, a wake's data) to whoever next reads the word with
 * acquire, and the acquire makes the writes published by earlier
 * transitions (by any thread) visible to the caller. acquire on failure:
 * the caller recomputes from the fresh value and may act on it. */
static inline bool cx__state_cas(cx__task *t, uint64_t *cur, uint64_t next) {
  return atomic_compare_exchange_weak_explicit(
      &t->state, cur, next, memory_order_acq_rel, memory_order_acquire);
}

/* Acquire: pairs with the release of the CAS that wrote the value. */
static inline uint64_t cx__state_load(cx__task *t) {
  return atomic_load_explicit(&t->state, memory_order_acquire);
}

static inline uint64_t cx__refs_of(uint64_t s) {
  return (s >> CX__REF_SHIFT) & CX__REF_MASK;
}

/* Bytes of a task's allocation: its layout, plus the scheduler's extra
 * block if it keeps one. */
static size_t cx__task_alloc_size(const cx__task_layout *l,
                                  const cx__scheduler *sched) {
  if (sched->task_extra == 0) return l->size;
  return cx__task_extra_off(l) + sched->task_extra;
}

cx__task *cx__task_create(const cx_future_vtable *vt, const void *state,
                          cx__scheduler *sched, bool with_handle, bool local) {
  cx__task_layout l = cx__task_layout_of(vt, with_handle);
  size_t size = cx__task_alloc_size(&l, sched);
  cx__task *t = NULL;
  bool fallback = true;
  unsigned tag = 0;
  if (local && sched->mem_alloc)
    t = sched->mem_alloc(sched, size, l.align, &tag, &fallback);
  CX__CHECK(tag <= CX__MEM_TAG_MAX);
  uint64_t from_sched =
      t ? CX__FROM_SCHED | (uint64_t)tag << CX__MEM_TAG_SHIFT : 0;
  if (t == NULL && fallback) t = cx_alloc(size, l.align);
  if (t == NULL) return NULL;
  uint64_t refs = 2 + (with_handle ? 1 : 0);
  uint64_t flags =
      CX__SCHEDULED | (with_handle ? CX__JOIN_INTEREST : 0) | from_sched;
  /* Not yet shared: the scheduler's queue push publishes it. */
  atomic_init(&t->state, refs * CX__REF_ONE | flags);
  t->next = NULL;
  t->vtable = vt;
  t->sched = sched;
  t->owned_prev = NULL;
  t->owned_next = NULL;
  atomic_init(&t->polls, 0);
  t->layout = (uint32_t)l.output_off | (with_handle ? CX__TASK_JOIN_SLOT : 0);
  if (with_handle) *cx__task_join_slot(t) = CX_WAKER_EMPTY;
  if (sched->task_extra) memset(cx__task_extra(t), 0, sched->task_extra);
  /* Inline for the commonest sizes: a call to memcpy costs more than the
   * copy (W1). */
  cx__copy_small(cx__task_state(t), state, vt->state_size);
  return t;
}

static void cx__task_free_memory(cx__task *t) {
  /* Relaxed: the bits never change after creation, and the caller owns t
   * alone now (last reference, or never shared). */
  uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
  if (s & CX__FROM_SCHED) {
    unsigned tag = (unsigned)(s >> CX__MEM_TAG_SHIFT) & CX__MEM_TAG_MAX;
    t->sched->mem_free(t->sched, t, tag);
    return;
  }
  cx__task_layout l = cx__task_layout_of(t->vtable, cx__task_has_join_slot(t));
  cx_free(t, cx__task_alloc_size(&l, t->sched), l.align);
}

static void cx__task_dealloc(cx__task *t) {
  /* Relaxed: the caller's acq_rel decrement to zero already made every
   * other owner's writes visible. */
  uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
  const cx_future_vtable *vt = t->vtable;
  if ((s & CX__OUTPUT) && !(s & CX__OUTPUT_TAKEN) && vt->drop_output)
    vt->drop_output(cx__task_output(t));
  cx_waker_drop(cx__task_join_slot(t)); /* NULL (no slot) is a no-op */
  cx__scheduler *sched = t->sched;
  cx__task_free_memory(t);
  /* Last: the scheduler may be freed by this call. */
  sched->task_freed(sched);
}

void cx__task_discard(cx__task *t) {
  cx__task_free_memory(t);
}

/* ---- references ---------------------------------------------------------- */

int cx__task_ref_inc(cx__task *t) {
  /* Relaxed: the caller holds a reference, so t cannot be freed meanwhile,
   * and a new reference publishes nothing (as Arc::clone). */
  uint64_t old =
      atomic_fetch_add_explicit(&t->state, CX__REF_ONE, memory_order_relaxed);
  if (cx__refs_of(old) >= CX__REF_MAX) {
    /* Relaxed: undoes our own increment, see above. */
    atomic_fetch_sub_explicit(&t->state, CX__REF_ONE, memory_order_relaxed);
    return CX_EOVERFLOW;
  }
  return CX_OK;
}

void cx__task_ref_dec_n(cx__task *t, uint64_t n) {
  /* acq_rel: release publishes this owner's writes to whoever frees t; the
   * acquire half makes the one that reaches zero see every other owner's
   * (release plus an acquire fence would do, but ThreadSanitizer does not
   * model fences). Pairs with every other decrement. */
  uint64_t old = atomic_fetch_sub_explicit(&t->state, n * CX__REF_ONE,
                                           memory_order_acq_rel);
  CX__CHECK(cx__refs_of(old) >= n);
  if (cx__refs_of(old) == n) cx__task_dealloc(t);
}

void cx__task_ref_dec(cx__task *t) {
  cx__task_ref_dec_n(t, 1);
}

void cx__task_debug_add_refs(cx__task *t, uint64_t refs) {
  /* Relaxed: a test hook on a task the caller holds. */
  atomic_fetch_add_explicit(&t->state, refs * CX__REF_ONE,
                            memory_order_relaxed);
}

/* ---- waking -------------------------------------------------------------- */

typedef enum cx__notify_result {
  CX__NOTIFY_NONE,   /* nothing to queue */
  CX__NOTIFY_SUBMIT, /* now SCHEDULED with a queue reference: queue t */
  CX__NOTIFY_FREE,   /* (by value) our reference was the last: free t */
} cx__notify_result;

/* wake_by_ref's transition. The caller holds a reference. Every outcome
 * writes the word (with release), even the ones that change nothing
 * visible: when t is already SCHEDULED, writing the same value back is what
 * makes the waker's earlier writes visible to the poll that the queued
 * entry will cause (that poll's transition_to_running reads the word with
 * acquire, later in its modification order). Only COMPLETE skips the write:
 * no poll follows. */
static cx__notify_result cx__transition_to_notified_by_ref(cx__task *t) {
  uint64_t cur = cx__state_load(t);
  uint64_t next;
  cx__notify_result res;
  do {
    CX__CHECK(cx__refs_of(cur) >= 1);
    if (cur & CX__COMPLETE) return CX__NOTIFY_NONE;
    if (cur & (CX__SCHEDULED | CX__RUNNING)) {
      /* Queued already, or being polled: the poller re-queues it on the
       * way out (transition_to_idle sees SCHEDULED). */
      next = cur | CX__SCHEDULED;
      res = CX__NOTIFY_NONE;
    } else {
      /* Idle: the queue needs its own reference. The caller holds one, so
       * the count is far from the limit in any real program; a task at the
       * limit is still woken (the limit only guards clones). */
      next = (cur | CX__SCHEDULED) + CX__REF_ONE;
      res = CX__NOTIFY_SUBMIT;
    }
  } while (!cx__state_cas(t, &cur, next));
  return res;
}

/* wake (by value)'s transition: as by_ref, and the caller's reference goes
 * in the same CAS (or becomes the queue's). */
static cx__notify_result cx__transition_to_notified_by_val(cx__task *t) {
  uint64_t cur = cx__state_load(t);
  uint64_t next;
  cx__notify_result res;
  do {
    CX__CHECK(cx__refs_of(cur) >= 1);
    if (cur & CX__COMPLETE) {
      /* Nothing will run: just give up our reference. */
      next = cur - CX__REF_ONE;
      res = cx__refs_of(next) == 0 ? CX__NOTIFY_FREE : CX__NOTIFY_NONE;
    } else if (cur & (CX__SCHEDULED | CX__RUNNING)) {
      /* The queue's or the running reference keeps t alive, so ours can go
       * in the same CAS (it never reaches zero here). */
      next = (cur | CX__SCHEDULED) - CX__REF_ONE;
      res = CX__NOTIFY_NONE;
    } else {
      next = cur | CX__SCHEDULED; /* our reference becomes the queue's */
      res = CX__NOTIFY_SUBMIT;
    }
  } while (!cx__state_cas(t, &cur, next));
  return res;
}

void cx__task_wake_by_ref(cx__task *t) {
  if (cx__transition_to_notified_by_ref(t) == CX__NOTIFY_SUBMIT)
    t->sched->schedule(t->sched, t);
}

void cx__task_wake_by_val(cx__task *t) {
  switch (cx__transition_to_notified_by_val(t)) {
    case CX__NOTIFY_SUBMIT:
      t->sched->schedule(t->sched, t);
      break;
    case CX__NOTIFY_FREE:
      cx__task_dealloc(t);
      break;
    case CX__NOTIFY_NONE:
      break;
  }
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
_Thread_local cx__polling cx__tls_polling;

static void cx__task_waker_wake_by_ref(const void *data) {
  cx__task *t = (cx__task *)data;
  /* A task waking itself from its own poll, on the executor that set the
   * record (poll.c): a plain store; the executor queues it again once the
   * poll returns. Any other thread, task or executor takes the atomic path
   * (its record never holds t). */
  if (cx__tls_polling.task == t) {
    cx__tls_polling.woken = true;
    return;
  }
  cx__task_wake_by_ref(t);
}
static void cx__task_waker_drop(const void *data) {
  cx__task_ref_dec((cx__task *)data);
}

const cx_waker_vtable cx__task_waker_vtable = {
    .clone = cx__task_waker_clone,
    .wake = cx__task_waker_wake,
    .wake_by_ref = cx__task_waker_wake_by_ref,
    .drop = cx__task_waker_drop,
};

/* ---- the scheduler's side ------------------------------------------------ */

cx__run_result cx__task_transition_to_running(cx__task *t) {
  uint64_t cur = cx__state_load(t);
  uint64_t next;
  do {
    CX__CHECK((cur & CX__SCHEDULED) && !(cur & CX__RUNNING));
    if (cur & CX__COMPLETE) {
      /* Safety net: drop the queue's reference. */
      next = (cur & ~(uint64_t)CX__SCHEDULED) - CX__REF_ONE;
    } else {
      next = (cur & ~(uint64_t)CX__SCHEDULED) | CX__RUNNING;
    }
  } while (!cx__state_cas(t, &cur, next));
  if (cur & CX__COMPLETE) {
    if (cx__refs_of(next) == 0) cx__task_dealloc(t);
    return CX__RUN_GONE;
  }
  return (cur & CX__CANCELLED) ? CX__RUN_CANCEL : CX__RUN_POLL;
}

cx__run_result cx__task_transition_carried_to_running(cx__task *t) {
  uint64_t cur = cx__state_load(t);
  uint64_t next;
  do {
    CX__CHECK((cur & CX__RUNNING) && !(cur & CX__COMPLETE));
    next = cur & ~(uint64_t)CX__SCHEDULED;
  } while (!cx__state_cas(t, &cur, next));
  return (cur & CX__CANCELLED) ? CX__RUN_CANCEL : CX__RUN_POLL;
}

cx__idle_result cx__task_transition_to_idle(cx__task *t) {
  uint64_t cur = cx__state_load(t);
  uint64_t next;
  cx__idle_result res;
  do {
    CX__CHECK((cur & CX__RUNNING) && !(cur & CX__COMPLETE));
    /* CANCELLED wins over SCHEDULED: the task stays RUNNING and its poller
     * finishes it at once instead of queueing it again. No write: only the
     * poller acts on it, and the load above is an acquire. */
    if (cur & CX__CANCELLED) return CX__IDLE_CANCELLED;
    if (cur & CX__SCHEDULED) {
      next = cur & ~(uint64_t)CX__RUNNING; /* running ref -> queue ref */
      res = CX__IDLE_NOTIFIED;
    } else {
      /* The owner's reference is still held, so this never reaches 0. */
      next = (cur & ~(uint64_t)CX__RUNNING) - CX__REF_ONE;
      res = CX__IDLE_DONE;
    }
  } while (!cx__state_cas(t, &cur, next));
  return res;
}

typedef enum cx__complete_result {
  CX__COMPLETE_RELEASED, /* running and owner refs dropped (no joiner) */
  CX__COMPLETE_FREE,     /* ... and they were the last: free t */
  CX__COMPLETE_NOTIFY,   /* JOIN_WAKER armed: wake the slot, refs kept */
} cx__complete_result;

/* RUNNING -> COMPLETE (| OUTPUT). SCHEDULED is cleared too: a wake during
 * the final poll has nothing left to run. */
static cx__complete_result cx__transition_to_complete(cx__task *t,
                                                      bool has_output) {
  uint64_t cur = cx__state_load(t);
  uint64_t next;
  cx__complete_result res;
  do {
    CX__CHECK((cur & CX__RUNNING) && !(cur & CX__COMPLETE));
    next = (cur & ~(uint64_t)(CX__RUNNING | CX__SCHEDULED)) | CX__COMPLETE |
           (has_output ? CX__OUTPUT : 0);
    if (cur & CX__JOIN_WAKER) {
      /* The refs must outlive the wake of the slot. */
      res = CX__COMPLETE_NOTIFY;
    } else {
      next -= 2 * CX__REF_ONE;
      res = cx__refs_of(next) == 0 ? CX__COMPLETE_FREE : CX__COMPLETE_RELEASED;
    }
  } while (!cx__state_cas(t, &cur, next));
  return res;
}

/* The completer is done with the slot: clears JOIN_WAKER. Returns true when
 * the handle is gone, in which case the slot's waker is the completer's to
 * drop. */
static bool cx__transition_join_waker_done(cx__task *t) {
  /* acq_rel: release hands the slot (which we just read to wake it) back to
   * the handle, whose JOIN_WAKER-clear observation is an acquire; acquire
   * sees the handle's last write to the slot when JOIN_INTEREST is gone. */
  uint64_t prev = atomic_fetch_and_explicit(
      &t->state, ~(uint64_t)CX__JOIN_WAKER, memory_order_acq_rel);
  CX__CHECK((prev & CX__COMPLETE) && (prev & CX__JOIN_WAKER));
  return !(prev & CX__JOIN_INTEREST);
}

void cx__task_complete(cx__task *t, bool has_output) {
  if (t->vtable->drop) t->vtable->drop(cx__task_state(t));
  switch (cx__transition_to_complete(t, has_output)) {
    case CX__COMPLETE_RELEASED:
      return;
    case CX__COMPLETE_FREE:
      cx__task_dealloc(t);
      return;
    case CX__COMPLETE_NOTIFY:
      break;
  }
  cx_waker_wake_by_ref(cx__task_join_slot(t));
  if (cx__transition_join_waker_done(t)) cx_waker_drop(cx__task_join_slot(t));
  cx__task_ref_dec_n(t, 2); /* the running and the owner's references */
}

typedef enum cx__cancel_result {
  CX__CANCEL_COMPLETE, /* too late: the task finished */
  CX__CANCEL_REPEATED, /* already requested: nothing changed */
  CX__CANCEL_FLAGGED,  /* RUNNING or queued: its poller will act on it */
  CX__CANCEL_SUBMIT,   /* idle: now SCHEDULED with a queue reference */
} cx__cancel_result;

static cx__cancel_result cx__transition_to_cancelled(cx__task *t) {
  uint64_t cur = cx__state_load(t);
  uint64_t next;
  cx__cancel_result res;
  do {
    CX__CHECK(cx__refs_of(cur) >= 1);
    if (cur & CX__COMPLETE) return CX__CANCEL_COMPLETE;
    if (cur & CX__CANCELLED) return CX__CANCEL_REPEATED;
    next = cur | CX__CANCELLED;
    res = CX__CANCEL_FLAGGED;
    if (!(cur & (CX__RUNNING | CX__SCHEDULED))) {
      next = (next | CX__SCHEDULED) + CX__REF_ONE;
      res = CX__CANCEL_SUBMIT;
    }
  } while (!cx__state_cas(t, &cur, next));
  return res;
}

int cx__task_cancel(cx__task *t) {
  switch (cx__transition_to_cancelled(t)) {
    case CX__CANCEL_COMPLETE:
      return CX_EALREADY;
    case CX__CANCEL_SUBMIT:
      t->sched->schedule(t->sched, t);
      return CX_OK;
    case CX__CANCEL_REPEATED:
    case CX__CANCEL_FLAGGED:
      break;
  }
  return CX_OK;
}

/* ---- join side ----------------------------------------------------------- */

/* Sets OUTPUT_TAKEN. false: an earlier join took it. acq_rel: acquire pairs
 * with the completer's release of COMPLETE|OUTPUT (the output bytes);
 * release orders a concurrent try_join's attempt after ours. */
static bool cx__transition_take_output(cx__task *t) {
  uint64_t prev = atomic_fetch_or_explicit(&t->state, CX__OUTPUT_TAKEN,
                                           memory_order_acq_rel);
  CX__CHECK((prev & CX__COMPLETE) && (prev & CX__OUTPUT));
  return !(prev & CX__OUTPUT_TAKEN);
}

static int cx__task_take_output(cx__task *t, uint64_t state, void *out) {
  if (!(state & CX__OUTPUT)) return CX_ECANCELED;
  if (!cx__transition_take_output(t)) return CX_EALREADY;
  const cx_future_vtable *vt = t->vtable;
  if (out == NULL) {
    if (vt->drop_output) vt->drop_output(cx__task_output(t));
  } else if (vt->output_size > 0) {
    memcpy(out, cx__task_output(t), vt->output_size);
  }
  return CX_OK;
}

typedef enum cx__join_waker_result {
  CX__JOIN_WAKER_OK,       /* done */
  CX__JOIN_WAKER_COMPLETE, /* COMPLETE appeared first: nothing changed */
} cx__join_waker_result;

/* Arms the slot (the handle owner just stored a waker in it; JOIN_WAKER is
 * clear). Fails if COMPLETE appeared meanwhile: the completer never saw the
 * slot, so the handle keeps it. *cur: the last value seen. */
static cx__join_waker_result cx__transition_set_join_waker(cx__task *t,
                                                           uint64_t *cur) {
  *cur = cx__state_load(t);
  do {
    CX__CHECK(!(*cur & CX__JOIN_WAKER) && (*cur & CX__JOIN_INTEREST));
    if (*cur & CX__COMPLETE) return CX__JOIN_WAKER_COMPLETE;
  } while (!cx__state_cas(t, cur, *cur | CX__JOIN_WAKER));
  return CX__JOIN_WAKER_OK;
}

/* Disarms the slot to get it back before completion. Fails if COMPLETE
 * appeared: the completer owns the slot until it clears JOIN_WAKER. */
static cx__join_waker_result cx__transition_unset_join_waker(cx__task *t,
                                                             uint64_t *cur) {
  *cur = cx__state_load(t);
  do {
    CX__CHECK(*cur & CX__JOIN_INTEREST);
    if (*cur & CX__COMPLETE) return CX__JOIN_WAKER_COMPLETE;
  } while (!cx__state_cas(t, cur, *cur & ~(uint64_t)CX__JOIN_WAKER));
  return CX__JOIN_WAKER_OK;
}

/* Clears JOIN_INTEREST (and, before completion, JOIN_WAKER). Returns true
 * when the slot is the handle's to empty: before completion (disarmed here),
 * or after it once the completer cleared JOIN_WAKER. Otherwise the completer
 * is waking the slot and drops the waker itself when it sees the handle
 * gone (cx__transition_join_waker_done). */
static bool cx__transition_drop_join_interest(cx__task *t) {
  uint64_t cur = cx__state_load(t);
  uint64_t next;
  do {
    CX__CHECK(cur & CX__JOIN_INTEREST);
    next = cur & ~(uint64_t)CX__JOIN_INTEREST;
    if (!(cur & CX__COMPLETE)) next &= ~(uint64_t)CX__JOIN_WAKER;
  } while (!cx__state_cas(t, &cur, next));
  return !(cur & CX__COMPLETE) || !(cur & CX__JOIN_WAKER);
}

cx_poll cx__task_join_poll(cx__task *t, const cx_waker *waker, int *result,
                           void *out, size_t out_size) {
  if (out != NULL && out_size != t->vtable->output_size) {
    *result = CX_EINVAL;
    return CX_READY;
  }
  uint64_t cur = cx__state_load(t);
  if (cur & CX__COMPLETE) {
    *result = cx__task_take_output(t, cur, out);
    return CX_READY;
  }
  if (cur & CX__JOIN_WAKER) {
    if (cx_waker_will_wake(cx__task_join_slot(t), waker)) return CX_PENDING;
    if (cx__transition_unset_join_waker(t, &cur) == CX__JOIN_WAKER_COMPLETE) {
      *result = cx__task_take_output(t, cur, out);
      return CX_READY;
    }
  }
  /* The slot is ours: JOIN_WAKER is clear and COMPLETE was not set. */
  int rc = cx_waker_store(cx__task_join_slot(t), waker);
  if (rc != CX_OK) {
    *result = rc;
    return CX_READY;
  }
  if (cx__transition_set_join_waker(t, &cur) == CX__JOIN_WAKER_COMPLETE) {
    *result = cx__task_take_output(t, cur, out);
    return CX_READY;
  }
  return CX_PENDING;
}

void cx__task_join_drop(cx__task *t) {
  if (cx__transition_drop_join_interest(t))
    cx_waker_drop(cx__task_join_slot(t));
  cx__task_ref_dec(t);
}

void cx__task_join_withdraw(cx__task *t) {
  uint64_t cur;
  if (cx__transition_unset_join_waker(t, &cur) == CX__JOIN_WAKER_COMPLETE &&
      (cur & CX__JOIN_WAKER)) {
    /* The completer is waking the slot: leave it (released when the handle
     * goes or the task is freed). */
    return;
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
  uint64_t cur = cx__state_load(t); /* acquire: sees the output's bytes */
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
  /* Relaxed: the caller holds a reference; a new one publishes nothing
   * (pairs with nothing; the acq_rel decrement in cx__parker_unref frees). */
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
  /* Relaxed: a statistic; its only writer is the poller (cx__run_task). */
  return atomic_load_explicit(&t->polls, memory_order_relaxed);
}

void cx_join_handle_detach(cx_join_handle *h) {
  if (h == NULL) return;
  cx__task_join_drop(cx__task_from_handle(h));
}
