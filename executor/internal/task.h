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
} cx__scheduler;

struct cx__task {
  CX__ATOMIC(uint64_t) state;
  cx__task *next; /* ready-queue link: owned by whichever queue holds t */
  const cx_future_vtable *vtable;
  cx__scheduler *sched;
  cx__task *owned_prev; /* the executor's list of unfinished tasks */
  cx__task *owned_next;
  CX__ATOMIC(uint32_t) polls;
  uint32_t layout; /* output offset | CX__LAYOUT_JOIN_SLOT */
  /* future state follows at cx__task_state(t), then the output, then, for
   * a task spawned with a join handle, the join-waker slot (see the
   * JOIN_WAKER protocol in task.c): detached tasks do not pay for it. */
};

/* In cx__task.layout: the task has a join-waker slot (spawned with a
 * handle). Below it, the output's offset. Sizes are capped (see
 * cx_future_vtable_check) so the offset never reaches this bit. */
#define CX__LAYOUT_JOIN_SLOT (1u << 31)

/* What the executor does after a transition. */
typedef enum cx__action {
  CX__ACT_NONE = 0,   /* nothing more */
  CX__ACT_POLL,       /* poll the future */
  CX__ACT_CANCEL,     /* drop the future and finish the task as cancelled */
  CX__ACT_RESCHEDULE, /* notified while running: queue it again */
} cx__action;

/* Allocates a task holding a copy of `state` (vtable->state_size bytes; NULL
 * allowed when the size is 0). The new task is SCHEDULED and holds
 * 2 references (the owner's and the queue's) plus one for a join handle when
 * `with_handle`. Returns NULL on allocation failure. The caller must queue
 * it (the queue's reference). */
cx__task *cx__task_create(const cx_future_vtable *vtable, const void *state,
                          cx__scheduler *sched, bool with_handle);

static inline void *cx__task_state(cx__task *t) {
  size_t a = t->vtable->state_align ? t->vtable->state_align
                                    : CX__ALIGNOF(max_align_t);
  size_t off = (sizeof(cx__task) + a - 1) & ~(a - 1);
  return (char *)t + off;
}
static inline void *cx__task_output(cx__task *t) {
  return (char *)t + (t->layout & ~CX__LAYOUT_JOIN_SLOT);
}
/* The join-waker slot, or NULL for a task spawned without a handle. */
static inline cx_waker *cx__task_join_slot(cx__task *t) {
  if (!(t->layout & CX__LAYOUT_JOIN_SLOT)) return NULL;
  size_t end = (t->layout & ~CX__LAYOUT_JOIN_SLOT) + t->vtable->output_size;
  size_t a = CX__ALIGNOF(cx_waker);
  return (cx_waker *)((char *)t + ((end + a - 1) & ~(a - 1)));
}

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
cx_waker cx__task_waker_ref(cx__task *t);
extern const cx_waker_vtable cx__task_waker_vtable;

void cx__task_wake_by_ref(cx__task *t);
void cx__task_wake_by_val(cx__task *t); /* consumes one reference */

/* Executor side. Called on the executor thread only. */
/* Popped from a queue (consumes SCHEDULED, the queue's ref becomes the
 * running ref): CX__ACT_POLL, CX__ACT_CANCEL, or CX__ACT_NONE when t already
 * completed (the queue's reference was dropped). */
cx__action cx__task_transition_to_running(cx__task *t);
/* Poll returned CX_PENDING: CX__ACT_NONE (running ref dropped),
 * CX__ACT_RESCHEDULE (ref kept: queue it) or CX__ACT_CANCEL. */
cx__action cx__task_transition_to_idle(cx__task *t);
/* The task (RUNNING) finished: drops the future, records the outcome, wakes
 * a joiner and drops the running reference and the owner's. `has_output`:
 * the future returned CX_READY and wrote its output. */
void cx__task_finish(cx__task *t, bool has_output);

/* Any thread. CX_OK, CX_EALREADY (complete). */
int cx__task_cancel(cx__task *t);

/* Join handle side (the handle's owner only). */
cx_poll cx__task_join_poll(cx__task *t, const cx_waker *waker, int *result,
                           void *out, size_t out_size);
void cx__task_join_drop(cx__task *t);
/* Takes the joiner's waker back out of the slot without giving up the
 * handle: what cx__task_join_drop does to the slot. Handle owner only. */
void cx__task_join_withdraw(cx__task *t);

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
