#include "waker/waker.h"

#include "waker/error.h"
#include "waker/internal/current.h"

int cx_waker_vtable_check(const cx_waker_vtable *vt) {
  if (vt == NULL || vt->clone == NULL || vt->wake == NULL ||
      vt->wake_by_ref == NULL || vt->drop == NULL)
    return CX_EINVAL;
  return CX_OK;
}

int cx_waker_clone(const cx_waker *w, cx_waker *out) {
  if (out == NULL) return CX_EINVAL;
  *out = CX_WAKER_EMPTY;
  if (w == NULL) return CX_EINVAL;
  if (w->vtable == NULL) return CX_OK;
  /* Every waker cexec keeps was cloned here: refusing a broken vtable now
   * is what keeps a NULL function from being called later, far away. */
  if (cx_waker_vtable_check(w->vtable) != CX_OK) return CX_EINVAL;
  int rc = w->vtable->clone(w->data, out);
  if (rc != CX_OK) {
    *out = CX_WAKER_EMPTY;
    return rc;
  }
  if (out->vtable != NULL && cx_waker_vtable_check(out->vtable) != CX_OK) {
    *out = CX_WAKER_EMPTY; /* cannot be dropped: its reference is lost */
    return CX_EINVAL;
  }
  return CX_OK;
}

/* The wake and drop calls below test the one function they call: a waker
 * made by hand with a broken vtable is a no-op there, never a crash. */

void cx_waker_wake(cx_waker *w) {
  if (w == NULL || w->vtable == NULL) return;
  /* Empty the slot first: the wake may free memory that holds *w. */
  cx_waker taken = *w;
  *w = CX_WAKER_EMPTY;
  if (taken.vtable->wake != NULL) taken.vtable->wake(taken.data);
}

void cx_waker_wake_by_ref(const cx_waker *w) {
  if (w == NULL || w->vtable == NULL || w->vtable->wake_by_ref == NULL) return;
  w->vtable->wake_by_ref(w->data);
}

void cx_waker_drop(cx_waker *w) {
  if (w == NULL || w->vtable == NULL) return;
  cx_waker taken = *w;
  *w = CX_WAKER_EMPTY;
  if (taken.vtable->drop != NULL) taken.vtable->drop(taken.data);
}

bool cx_waker_will_wake(const cx_waker *a, const cx_waker *b) {
  if (a == NULL || b == NULL) return false;
  if (a->vtable != b->vtable) return false;
  /* Empty wakers (vtable NULL) are all equal, whatever their data holds. */
  return a->vtable == NULL || a->data == b->data;
}

int cx_waker_store(cx_waker *slot, const cx_waker *w) {
  if (slot == NULL || w == NULL) return CX_EINVAL;
  /* Checked before the will_wake shortcut: a broken waker is refused even
   * when the slot already holds the same one. */
  if (w->vtable != NULL && cx_waker_vtable_check(w->vtable) != CX_OK)
    return CX_EINVAL;
  if (cx_waker_will_wake(slot, w)) return CX_OK;
  cx_waker fresh;
  int rc = cx_waker_clone(w, &fresh);
  if (rc != CX_OK) return rc;
  cx_waker_drop(slot);
  *slot = fresh;
  return CX_OK;
}

static int cx__noop_clone(const void *data, cx_waker *out);
static void cx__noop_fn(const void *data) {
  (void)data;
}

static const cx_waker_vtable cx__noop_vtable = {.clone = cx__noop_clone,
                                                .wake = cx__noop_fn,
                                                .wake_by_ref = cx__noop_fn,
                                                .drop = cx__noop_fn};

static int cx__noop_clone(const void *data, cx_waker *out) {
  out->vtable = &cx__noop_vtable;
  out->data = data;
  return CX_OK;
}

cx_waker cx_waker_noop(void) {
  cx_waker w = {&cx__noop_vtable, NULL};
  return w;
}

int cx_future_vtable_check(const cx_future_vtable *vt) {
  if (vt == NULL || vt->poll == NULL) return CX_EINVAL;
  size_t a = vt->state_align, oa = vt->output_align;
  if (a != 0 && ((a & (a - 1)) != 0 || a > 64)) return CX_EINVAL;
  if (oa != 0 && ((oa & (oa - 1)) != 0 || oa > 64)) return CX_EINVAL;
  /* A task keeps its layout in 31 bits: 1 GiB of state and of output at
   * most. */
  if (vt->state_size > 0x3fffffffu || vt->output_size > 0x3fffffffu)
    return CX_EINVAL;
  return CX_OK;
}

/* One per thread: plain loads and stores, never shared between threads. */
static _Thread_local void *cx__current_ex;

void *cx__current_executor(void) {
  return cx__current_ex;
}

void *cx__set_current_executor(void *ex) {
  void *prev = cx__current_ex;
  cx__current_ex = ex;
  return prev;
}
