/*
 * The futex driver: parks a thread until a timeout or an unpark, and watches
 * nothing else. What an executor parks on until it first needs I/O.
 *
 * A one-bit token, as Rust's std::thread::park: unpark sets it (and wakes the
 * parked thread with FUTEX_WAKE if it was clear), park consumes it and
 * returns at once if it was set, else sleeps in FUTEX_WAIT until it is set
 * or the timeout passes. So an unpark that comes before the park is not
 * lost (the park returns at once), and unparks coalesce. Where there is no
 * futex (not Linux), a mutex and a condition variable do the same.
 *
 * Embedded in its owner (no allocation): cx_futex_driver_init, and
 * destroy through the vtable (which only tears down the fallback's mutex).
 */
#ifndef CEXEC_INTERNAL_FUTEX_DRIVER_H
#define CEXEC_INTERNAL_FUTEX_DRIVER_H

#include <stdatomic.h>
#include <stdint.h>

#include "executor/driver.h"

#if !defined(__linux__)
#include <pthread.h>
#endif

typedef struct cx__futex_driver {
  cx_driver base;         /* first: the driver is seen through it */
  _Atomic uint32_t token; /* 1: an unpark is pending */
#if !defined(__linux__)
  pthread_mutex_t mu;
  pthread_cond_t cv;
#endif
} cx__futex_driver;

/* Returns CX_OK, or CX_ENOMEM when the fallback's mutex or condition
 * variable cannot be created. */
int cx__futex_driver_init(cx__futex_driver *d);

#endif /* CEXEC_INTERNAL_FUTEX_DRIVER_H */
