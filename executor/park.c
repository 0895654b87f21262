/*
 * Parking. With nothing ready the executor sets `sleeping` under `mu` and
 * parks in its driver until the next timer deadline. A remote wake claims
 * the wake-up only if `sleeping` is set, and clears it, so a busy executor
 * costs its wakers no system call and a parked one gets exactly one
 * unpark, sent with `mu` released (unparking under mu would wake the
 * executor only for it to block on mu again). The driver is the futex
 * driver until a future asks for I/O, then the I/O driver (executor.c).
 */
#include "executor/internal/executor.h"

cx_driver *cx__claim_unpark_locked(cx_executor *ex) {
  if (!ex->sleeping) return NULL;
  ex->sleeping = false;
  /* Once mu is released the woken task may run and be freed, and with it
   * the task's reference to ex: keep ex (and its drivers) alive until the
   * unpark is sent. */
  cx__ex_ref(ex);
  return ex->driver;
}

void cx__unpark(cx_executor *ex, cx_driver *d) {
  /* An unpark that arrives after the park ended (timeout) leaves a token
   * that makes the next park return at once: a spurious wake-up, which
   * cx__park's callers tolerate. */
  cx_driver_unpark(d);
  cx__ex_unref(ex);
}

/* True when something can still happen without the owner's help: a timer,
 * a spawner, a queued wake, or an unfinished task that a waker points at
 * (I/O registrations hold wakers too). */
bool cx__can_progress(cx_executor *ex) {
  if (ex->local_head || ex->timers.count > 0) return true;
  pthread_mutex_lock(&ex->mu);
  bool remote = ex->spawners > 0 || ex->remote_head || ex->spawned_head;
  pthread_mutex_unlock(&ex->mu);
  if (remote) return true;
  for (cx__task *t = ex->owned; t; t = t->owned_next) {
    /* Acquire: a waker clone made on another thread is a reference we
     * must see. */
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    uint64_t refs = (s >> CX__REF_SHIFT) & CX__REF_MASK;
    uint64_t fixed = 1 + ((s & CX__JOIN_INTEREST) ? 1 : 0);
    if ((s & (CX__SCHEDULED | CX__RUNNING)) || refs > fixed) return true;
  }
  return false;
}

/* Parks until the next timer deadline, a remote wake or an I/O event. */
void cx__park(cx_executor *ex) {
  uint64_t deadline = cx_timers_next_deadline(&ex->timers);
  uint64_t timeout = CX_DRIVER_FOREVER;
  if (deadline != CX_DEADLINE_NONE) {
    uint64_t now = cx_timers_now(&ex->timers);
    if (deadline <= now) return;
    timeout = deadline - now;
  }
  pthread_mutex_lock(&ex->mu);
  if (ex->remote_head == NULL && ex->spawned_head == NULL &&
      !ex->spawners_gone && ex->obs_requests == NULL) {
    ex->sleeping = true;
    ex->stats.parks++;
    cx_driver *d = ex->driver;
    pthread_mutex_unlock(&ex->mu);
    /* A waker that saw `sleeping` unparks d after this point, or did before
     * it (the token then makes this park return at once). */
    cx_driver_park(d, timeout);
    ex->io_just_parked = d == ex->io_driver;
    pthread_mutex_lock(&ex->mu);
    ex->sleeping = false; /* timed out or spurious: no waker cleared it */
  }
  ex->spawners_gone = false;
  pthread_mutex_unlock(&ex->mu);
}
