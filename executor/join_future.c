/*
 * Join futures. See join_future.h.
 *
 * A join future that pended left the awaiting task's waker in the joined
 * task's slot; when it completes or is dropped it takes that waker back
 * (cx__task_join_withdraw, which follows the JOIN_WAKER protocol of
 * task.c), so the joined task does not keep the awaiting one alive.
 */
#include "executor/join_future.h"

#include <string.h>

#include "executor/internal/task.h"
#include "waker/error.h"

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
    if (f->waiting) cx__task_join_withdraw(cx__task_from_handle(f->handle));
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
    cx__task_join_withdraw(cx__task_from_handle(h));
  }
  f->done = true;
  if (f->detach_on_drop) {
    f->handle = NULL;
    cx_join_handle_detach(h);
  }
}

CX_FUTURE_TRAMPOLINES(cx_join_future, cx_join_future, int)
const cx_future_vtable cx_join_future_vtable =
    CX_FUTURE_VTABLE_INIT(cx_join_future, cx_join_future, int);
