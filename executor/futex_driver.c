/*
 * The futex driver (see executor/internal/futex_driver.h).
 *
 * Orders. unpark's exchange is a release and park's exchanges are acquires:
 * everything the unparking thread wrote before unpark (a task pushed on a
 * queue) is visible once the park that consumes the token returns, which is
 * the driver.h contract. The futex syscalls themselves order nothing we rely
 * on: they only sleep and wake.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, condattr_setclock */
#define _DEFAULT_SOURCE         /* syscall() */

#include "executor/internal/futex_driver.h"

#include <time.h>

#include "waker/error.h"

#define CX__NSEC_PER_SEC UINT64_C(1000000000)

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

static void cx__futex_park(cx_driver *base, uint64_t timeout_ns) {
  cx__futex_driver *d = (cx__futex_driver *)base;
  /* acquire: pairs with unpark's release exchange (a pending token). */
  if (atomic_exchange_explicit(&d->token, 0, memory_order_acquire) != 0) return;
  if (timeout_ns == 0) return;
  struct timespec rel, *timeout = NULL;
  if (timeout_ns != CX_DRIVER_FOREVER) {
    rel.tv_sec = (time_t)(timeout_ns / CX__NSEC_PER_SEC);
    rel.tv_nsec = (long)(timeout_ns % CX__NSEC_PER_SEC);
    timeout = &rel; /* FUTEX_WAIT: relative, on CLOCK_MONOTONIC */
  }
  /* Sleeps only while the token is still 0: an unpark between the exchange
   * above and this call makes it return at once (EAGAIN). EINTR and
   * timeouts are spurious returns, which the contract allows. */
  syscall(SYS_futex, &d->token, FUTEX_WAIT_PRIVATE, 0, timeout, NULL, 0);
  /* acquire: as above; consumes the token that woke us, if any. */
  atomic_exchange_explicit(&d->token, 0, memory_order_acquire);
}

static void cx__futex_unpark(cx_driver *base) {
  cx__futex_driver *d = (cx__futex_driver *)base;
  /* release: publishes our writes to the park that consumes the token
   * (its acquire exchange). Only the 0 -> 1 edge needs the syscall. */
  if (atomic_exchange_explicit(&d->token, 1, memory_order_release) == 0)
    syscall(SYS_futex, &d->token, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void cx__futex_destroy(cx_driver *base) {
  (void)base;
}

int cx__futex_driver_init(cx__futex_driver *d) {
  static const cx_driver_vtable vtable = {
      .park = cx__futex_park,
      .unpark = cx__futex_unpark,
      .destroy = cx__futex_destroy,
  };
  d->base.vtable = &vtable;
  atomic_init(&d->token, 0);
  return CX_OK;
}

#else /* a mutex and a condition variable */

static void cx__futex_park(cx_driver *base, uint64_t timeout_ns) {
  cx__futex_driver *d = (cx__futex_driver *)base;
  pthread_mutex_lock(&d->mu);
  /* The token loads below are relaxed: token is only written under mu,
   * which orders it with unpark (the mutex pairs the two sides). */
  if (timeout_ns == CX_DRIVER_FOREVER) {
    while (atomic_load_explicit(&d->token, memory_order_relaxed) == 0)
      pthread_cond_wait(&d->cv, &d->mu);
  } else if (timeout_ns > 0 &&
             atomic_load_explicit(&d->token, memory_order_relaxed) == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t at = (uint64_t)ts.tv_sec * CX__NSEC_PER_SEC +
                  (uint64_t)ts.tv_nsec + timeout_ns;
    ts.tv_sec = (time_t)(at / CX__NSEC_PER_SEC);
    ts.tv_nsec = (long)(at % CX__NSEC_PER_SEC);
    /* Relaxed: the mutex orders the token with unpark. */
    while (atomic_load_explicit(&d->token, memory_order_relaxed) == 0)
      if (pthread_cond_timedwait(&d->cv, &d->mu, &ts) != 0) break;
  }
  atomic_store_explicit(&d->token, 0, memory_order_relaxed); /* under mu */
  pthread_mutex_unlock(&d->mu);
}

static void cx__futex_unpark(cx_driver *base) {
  cx__futex_driver *d = (cx__futex_driver *)base;
  pthread_mutex_lock(&d->mu);
  atomic_store_explicit(&d->token, 1, memory_order_relaxed); /* under mu */
  pthread_cond_signal(&d->cv);
  pthread_mutex_unlock(&d->mu);
}

static void cx__futex_destroy(cx_driver *base) {
  cx__futex_driver *d = (cx__futex_driver *)base;
  pthread_cond_destroy(&d->cv);
  pthread_mutex_destroy(&d->mu);
}

int cx__futex_driver_init(cx__futex_driver *d) {
  static const cx_driver_vtable vtable = {
      .park = cx__futex_park,
      .unpark = cx__futex_unpark,
      .destroy = cx__futex_destroy,
  };
  d->base.vtable = &vtable;
  atomic_init(&d->token, 0);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&d->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (rc != 0) return CX_ENOMEM;
  if (pthread_mutex_init(&d->mu, NULL) != 0) {
    pthread_cond_destroy(&d->cv);
    return CX_ENOMEM;
  }
  return CX_OK;
}

#endif
