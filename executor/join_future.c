/*
 * Join futures. See join_future.h.
 *
 * Withdrawing the waker follows the JOIN_WAKER protocol described at the
 * top of task.c, as the handle's owner (this future) may:
 *   - before COMPLETE, take the slot back by clearing JOIN_WAKER with a CAS
 *     that fails once COMPLETE appears, then drop the waker in it;
 *   - after COMPLETE, the slot belongs to the handle once the completer has
 *     cleared JOIN_WAKER (it is done waking it): drop the waker then; while
 *     JOIN_WAKER is still set the completer is using it, so leave it (it is
 *     released when the handle is detached or the task freed).
 * It is what cx__task_join_drop() does to the slot, without giving up the
 * handle.
 */
#include "executor/join_future.h"

#include <stdatomic.h>
#include <string.h>

#include "executor/internal/task.h"
#include "waker/error.h"

/* Takes the joiner's waker back out of the task's slot. Handle owner
 * only. */
static void cx__join_disarm(cx__task *t) {
  uint64_t cur = atomic_load_explicit(&t->state, memory_order_acquire);
  for (;;) {
    if (cur & CX__COMPLETE) {
      if (cur & CX__JOIN_WAKER) return; /* the completer is waking it */
      break;                            /* the slot is the handle's */
    }
    if (atomic_compare_exchange_weak_explicit(
            &t->state, &cur, cur & ~(uint64_t)CX__JOIN_WAKER,
            memory_order_acq_rel, memory_order_acquire))
      break; /* disarmed before completion: the slot is ours */
  }
  cx_waker_drop(cx__task_join_slot(t));
}

void cx_join_future_init(cx_join_future *f, cx_join_handle *h, void *out,
                         size_t out_size, bool detach_on_drop) {
  if (f == NULL) return;
  memset(f, 0, sizeof *f);
  f->handle = h;
  f->out = out;
  f->out_size = out_size;
  f->detach_on_drop = detach_on_drop;
  f->result = CX_OK;
}

cx_poll cx_join_future_poll(cx_join_future *f, cx_context *cx, int *result) {
  int rc;
  if (f == NULL || f->handle == NULL || cx == NULL || cx->waker == NULL) {
    rc = CX_EINVAL;
  } else if (f->done) {
    rc = f->result;
  } else if (cx_join_handle_poll(f->handle, cx, &rc, f->out, f->out_size) ==
             CX_PENDING) {
    f->waiting = true;
    return CX_PENDING;
  } else {
    /* Complete: take back the waker an earlier pending poll left in the
     * slot, so the joined task does not keep the awaiting one alive. */
    if (f->waiting) cx__join_disarm(cx__task_from_handle(f->handle));
    f->waiting = false;
    f->done = true;
    f->result = rc;
  }
  if (result) *result = rc;
  return CX_READY;
}

void cx_join_future_drop(cx_join_future *f) {
  if (f == NULL || f->handle == NULL) return;
  cx_join_handle *h = f->handle;
  if (f->waiting) {
    f->waiting = false;
    cx__join_disarm(cx__task_from_handle(h));
  }
  f->done = true;
  if (f->detach_on_drop) {
    f->handle = NULL;
    cx_join_handle_detach(h);
  }
}

static cx_poll cx__join_vt_poll(void *self, cx_context *cx, void *out) {
  return cx_join_future_poll((cx_join_future *)self, cx, (int *)out);
}
static void cx__join_vt_drop(void *self) {
  cx_join_future_drop((cx_join_future *)self);
}

const cx_future_vtable cx_join_future_vtable = {
    cx__join_vt_poll,       cx__join_vt_drop,         NULL,
    sizeof(cx_join_future), _Alignof(cx_join_future), sizeof(int)};
