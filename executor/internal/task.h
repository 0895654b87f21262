/*
 * The task: private header. See the design comment at the top of task.c.
 *
 * Not part of the public API: used by the executor, by the task unit tests
 * and by the fuzz harnesses' introspection.
 */
#ifndef CEXEC_INTERNAL_TASK_H
#define CEXEC_INTERNAL_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "executor/task.h"
#include "waker/waker.h"

/* The task unit tests are C++. g++ before C++23 knows neither _Atomic nor
 * _Alignof, so C++ sees the atomics as std::atomic<T>, which has the size,
 * alignment and behaviour of C11's _Atomic T (the guarantee C++23's
 * <stdatomic.h> is built on). */
#ifdef __cplusplus
#include <atomic>
#define CX__ATOMIC(T) std::atomic<T>
#define CX__ALIGNOF(T) alignof(T)
#define CX__LOAD_ACQUIRE(p) ((p)->load(std::memory_order_acquire))
#else
#include <stdatomic.h>
#define CX__ATOMIC(T) _Atomic(T)
#define CX__ALIGNOF(T) _Alignof(T)
#define CX__LOAD_ACQUIRE(p) atomic_load_explicit((p), memory_order_acquire)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* State word: flags in the low byte, reference count above. */
#define CX__SCHEDULED (1u << 0)     /* queued, or notified while RUNNING */
#define CX__RUNNING (1u << 1)       /* being polled (or dropped) now */
#define CX__COMPLETE (1u << 2)      /* future finished and dropped */
#define CX__CANCELLED (1u << 3)     /* cancellation requested */
#define CX__OUTPUT (1u << 4)        /* output stored (only with COMPLETE) */
#define CX__JOIN_INTEREST (1u << 5) /* a join handle is alive */
#define CX__JOIN_WAKER (1u << 6)    /* join_waker slot is armed */
#define CX__OUTPUT_TAKEN (1u << 7)  /* a join took the output */
#define CX__FLAG_MASK 0xffu
#define CX__REF_SHIFT 8
#define CX__REF_ONE ((uint64_t)1 << CX__REF_SHIFT)
/* References beyond this are refused (CX_EOVERFLOW), far from wrapping. */
#define CX__REF_MAX ((uint64_t)1 << 40)

typedef struct cx__task cx__task;

/* What a task needs from whoever runs it (the executor implements this; the
 * task tests use a fake). */
typedef struct cx__scheduler {
  /* t's SCHEDULED bit was just set by the caller, who hands over one
   * reference (the queue's). Must queue t for polling; must not fail. May be
   * called from any thread. */
  void (*schedule)(struct cx__scheduler *s, cx__task *t);
  /* A task of this scheduler was freed. Any thread. */
  void (*task_freed)(struct cx__scheduler *s);
  /* Bytes the scheduler keeps at the end of each of its tasks (after the
   * join slot, 8-aligned; zeroed at create; cx__task_extra), or 0. The
   * executor's task tracking uses a second scheduler with a nonzero size
   * (executor/observe.c), so the task header has no flag for it. */
  size_t task_extra;
} cx__scheduler;

struct cx__task {
  CX__ATOMIC(uint64_t) state;
  cx__task *next; /* ready-queue link: owned by whichever queue holds t */
  const cx_future_vtable *vtable;
  cx__scheduler *sched;
  cx__task *owned_prev; /* the scheduler's list of unfinished tasks */
  cx__task *owned_next;
  CX__ATOMIC(uint32_t) polls;
  /* Set once at creation from cx__task_layout_of: the output's offset, and
   * CX__TASK_JOIN_SLOT when the task was spawned with a handle (the slot
   * exists). Kept so the poll path need not recompute the offset. */
  uint32_t layout;
  /* future state follows at cx__task_state(t), then the output, then, for
   * a task spawned with a join handle, the join-waker slot (see the
   * JOIN_WAKER protocol in task.c): detached tasks do not pay for it. */
};

/* The one place the task's layout is computed: offsets from the start of
 * the allocation, total size and alignment. Pure and inline: the accessors
 * below call it and the compiler keeps only the part each needs. Sizes are
 * capped by cx_future_vtable_check (1 GiB each), so nothing overflows. */
typedef struct cx__task_layout {
  size_t state_off, output_off, slot_off, size, align;
} cx__task_layout;

static inline size_t cx__align_up(size_t n, size_t a) {
  return (n + a - 1) & ~(a - 1);
}

static inline cx__task_layout cx__task_layout_of(const cx_future_vtable *vt,
                                                 bool join_slot) {
  cx__task_layout l;
  size_t sa = vt->state_align ? vt->state_align : CX__ALIGNOF(max_align_t);
  size_t oa = vt->output_align ? vt->output_align : CX__ALIGNOF(max_align_t);
  l.state_off = cx__align_up(sizeof(cx__task), sa);
  size_t end = l.state_off + vt->state_size;
  l.output_off = vt->output_size ? cx__align_up(end, oa) : end;
  end = l.output_off + vt->output_size;
  l.slot_off = join_slot ? cx__align_up(end, CX__ALIGNOF(cx_waker)) : end;
  l.size = join_slot ? l.slot_off + sizeof(cx_waker) : end;
  l.align = sa > oa ? sa : oa;
  if (l.align < CX__ALIGNOF(cx__task)) l.align = CX__ALIGNOF(cx__task);
  return l;
}

/* In cx__task.layout, above the output offset (sizes are capped at 1 GiB by
 * cx_future_vtable_check, so the offset never reaches this bit). */
#define CX__TASK_JOIN_SLOT (1u << 31)

static inline bool cx__task_has_join_slot(const cx__task *t) {
  return (t->layout & CX__TASK_JOIN_SLOT) != 0;
}
static inline void *cx__task_state(cx__task *t) {
  return (char *)t + cx__task_layout_of(t->vtable, false).state_off;
}
static inline void *cx__task_output(cx__task *t) {
  return (char *)t + (t->layout & ~CX__TASK_JOIN_SLOT);
}
/* The join-waker slot, or NULL for a task spawned without a handle. */
static inline cx_waker *cx__task_join_slot(cx__task *t) {
  if (!cx__task_has_join_slot(t)) return NULL;
  return (cx_waker *)((char *)t + cx__task_layout_of(t->vtable, true).slot_off);
}

/* Offset of the scheduler's extra block: after everything else. */
static inline size_t cx__task_extra_off(const cx__task_layout *l) {
  return cx__align_up(l->size, 8);
}

/* The scheduler's extra block (t->sched->task_extra bytes), or NULL when it
 * keeps none. Any thread (t->sched and the layout never change). */
static inline void *cx__task_extra(cx__task *t) {
  if (t->sched->task_extra == 0) return NULL;
  cx__task_layout l = cx__task_layout_of(t->vtable, cx__task_has_join_slot(t));
  return (char *)t + cx__task_extra_off(&l);
}

/* Allocates a task holding a copy of `state` (vtable->state_size bytes; NULL
 * allowed when the size is 0). The new task is SCHEDULED and holds
 * 2 references (the owner's and the queue's) plus one for a join handle when
 * `with_handle`. Returns NULL on allocation failure. The caller must queue
 * it (the queue's reference). */
cx__task *cx__task_create(const cx_future_vtable *vtable, const void *state,
                          cx__scheduler *sched, bool with_handle);

/* Frees a task that was never handed to anyone (spawn refused after the
 * allocation): no drop, no scheduler callback. */
void cx__task_discard(cx__task *t);

/* Reference counting. inc: CX_OK or CX_EOVERFLOW (nothing changed). dec
 * frees the task when the last reference goes. */
int cx__task_ref_inc(cx__task *t);
void cx__task_ref_dec(cx__task *t);
/* Drops `n` references at once (n >= 1). */
void cx__task_ref_dec_n(cx__task *t, uint64_t n);

/* The waker that points at t, borrowed (owns no reference). */
extern const cx_waker_vtable cx__task_waker_vtable;
static inline cx_waker cx__task_waker_ref(cx__task *t) {
  cx_waker w = {&cx__task_waker_vtable, t};
  return w;
}

/* The self-wake fast path (poll.c). While a single-threaded executor polls
 * t, its thread's record holds t: a wake by reference of t made on that
 * thread during the poll (the commonest wake there is: a future that yields)
 * only sets `woken`, with no atomic operation; the executor reads it when
 * the poll returns and queues t again still RUNNING ("carried", see
 * transition_carried_to_running). Thread-local: only the polling thread
 * reads or writes it, and no other thread can be polling t (RUNNING is
 * exclusive). Not declared for C++ (the tests do not use it, and a C++
 * extern thread_local would go through a wrapper). */
typedef struct cx__polling {
  cx__task *task; /* being polled on this thread with the fast path, or NULL */
  bool woken;     /* task woke itself by reference during this poll */
} cx__polling;
#ifndef __cplusplus
extern _Thread_local cx__polling cx__tls_polling;
#endif

/* Waking (any thread). Both make every write the caller made before the
 * call visible to the poll the wake causes (the state word is written with
 * release even when the task was already SCHEDULED). by_val consumes one
 * reference. They call t->sched->schedule when the task must be queued. */
void cx__task_wake_by_ref(cx__task *t);
void cx__task_wake_by_val(cx__task *t);

/* ---- the scheduler's side: one function per transition ----------------- */

/* Popped from a queue (t SCHEDULED, not RUNNING; the queue's reference
 * becomes the running reference). */
typedef enum cx__run_result {
  CX__RUN_POLL,   /* now RUNNING: poll the future */
  CX__RUN_CANCEL, /* now RUNNING, cancellation requested: cx__task_complete
                     (t, false) without polling */
  CX__RUN_GONE,   /* t was already COMPLETE (not reachable through the
                     protocol; a safety net): the queue's reference was
                     dropped, t may be freed; do nothing more */
} cx__run_result;
cx__run_result cx__task_transition_to_running(cx__task *t);

/* Popped from the local queue while still RUNNING: the executor queued it
 * again after a poll in which it woke itself (the self-wake fast path), and
 * its state word was not written. Other threads saw a task being polled all
 * along: a wake set SCHEDULED without queueing it, a cancellation set
 * CANCELLED, and both are the poller's to act on, which is this call:
 * SCHEDULED is cleared (this poll is the one that wake asked for; the CAS's
 * acquire makes the waker's writes visible to it). POLL or CANCEL as
 * transition_to_running. Only called when SCHEDULED or CANCELLED is set: a
 * carried task with neither is polled with no atomic operation at all. */
cx__run_result cx__task_transition_carried_to_running(cx__task *t);

/* The poll returned CX_PENDING (t RUNNING). */
typedef enum cx__idle_result {
  CX__IDLE_DONE,      /* idle; the running reference was dropped */
  CX__IDLE_NOTIFIED,  /* woken during the poll: still SCHEDULED, the running
                         reference is now the queue's: queue t again */
  CX__IDLE_CANCELLED, /* cancelled: t is still RUNNING; cx__task_complete
                         (t, false) */
} cx__idle_result;
cx__idle_result cx__task_transition_to_idle(cx__task *t);

/* t (RUNNING) finished: drops the future, sets COMPLETE (and OUTPUT when
 * `has_output`: the future returned CX_READY and wrote its output), wakes a
 * joiner, and drops the running and the owner's references (t may be freed
 * on return). */
void cx__task_complete(cx__task *t, bool has_output);

/* Cancellation, any thread. CX_OK (requested now or before) or CX_EALREADY
 * (complete). An idle task is queued so that its scheduler drops it. */
int cx__task_cancel(cx__task *t);

/* ---- join handle side (the handle's owner only) ------------------------ */
cx_poll cx__task_join_poll(cx__task *t, const cx_waker *waker, int *result,
                           void *out, size_t out_size);
void cx__task_join_drop(cx__task *t);
/* Takes the joiner's waker back out of the slot without giving up the
 * handle: what cx__task_join_drop does to the slot. */
void cx__task_join_withdraw(cx__task *t);

/* Snapshots for checks and statistics. Acquire: pairs with the release of
 * the transition that wrote the value, so what it published is visible. */
static inline uint64_t cx__task_refs(const cx__task *t) {
  return CX__LOAD_ACQUIRE(&((cx__task *)t)->state) >> CX__REF_SHIFT;
}
static inline unsigned cx__task_flags(const cx__task *t) {
  return (unsigned)(CX__LOAD_ACQUIRE(&((cx__task *)t)->state) & CX__FLAG_MASK);
}

/* Test hook: adds `refs` references without the overflow check, to reach the
 * limit without 2^40 clones. */
void cx__task_debug_add_refs(cx__task *t, uint64_t refs);

static inline cx__task *cx__task_from_handle(const cx_join_handle *h) {
  return (cx__task *)h;
}
static inline cx_join_handle *cx__task_to_handle(cx__task *t) {
  return (cx_join_handle *)t;
}

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_INTERNAL_TASK_H */
