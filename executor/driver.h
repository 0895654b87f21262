/*
 * The driver seam: how an executor waits for something to happen.
 *
 * An executor with no ready task parks its thread through a driver: "park
 * for at most this long, or until unparked". The driver is also where
 * events from outside the executor come in: the futex driver
 * (executor/internal/futex_driver.h) watches nothing but its unpark token;
 * the epoll driver (io/) also waits on file descriptors and wakes the tasks
 * registered on them before park returns. One backend per platform behind
 * this one interface, as libuv's uv__io_poll.
 *
 * Contract of a driver d:
 *   - park(d, timeout_ns) is called by one thread at a time (the executor's
 *     owner; in the multi-threaded runtime, the worker holding the driver).
 *     It blocks for at most timeout_ns nanoseconds (CX_DRIVER_FOREVER: no
 *     limit; 0: never blocks, only dispatches events that are already
 *     there), or until an unpark. It may return early for no reason: the
 *     caller looks at its queues again and parks again.
 *   - unpark(d) may be called from any thread, at any time while d is alive.
 *     Unparks coalesce: any number of them before or during one park make
 *     that park (or the next one, if none is in progress) return once.
 *     Everything the unparking thread wrote before unpark happens-before the
 *     return of the park that it ends.
 *   - destroy(d) frees d; no park is in progress and no unpark may follow.
 *
 * Thread-safety: as above. Drivers never allocate in park or unpark.
 */
#ifndef CEXEC_DRIVER_H
#define CEXEC_DRIVER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* park's "no timeout". */
#define CX_DRIVER_FOREVER UINT64_MAX

typedef struct cx_driver cx_driver;

typedef struct cx_driver_vtable {
  void (*park)(cx_driver *d, uint64_t timeout_ns);
  void (*unpark)(cx_driver *d);
  void (*destroy)(cx_driver *d);
} cx_driver_vtable;

/* Embed as the first member of a driver's own struct. */
struct cx_driver {
  const cx_driver_vtable *vtable;
};

static inline void cx_driver_park(cx_driver *d, uint64_t timeout_ns) {
  d->vtable->park(d, timeout_ns);
}
static inline void cx_driver_unpark(cx_driver *d) {
  d->vtable->unpark(d);
}

/*
 * What whoever polls a future offers it, through cx_context.host, beyond
 * the waker: access to the I/O driver. An executor that never touches I/O
 * parks on a futex; the first future that asks for the I/O driver gets one
 * created (and from then on the executor parks in it).
 *
 * io_driver(h, &d): CX_OK and *d, the I/O driver of the executor polling
 * the future (created on first call); or CX_ENOMEM / a CX_E* code from
 * creating it; or CX_ENOTSUP where no I/O driver can exist. Called on the
 * thread polling the future.
 */
typedef struct cx_driver_host {
  int (*io_driver)(struct cx_driver_host *h, cx_driver **out);
} cx_driver_host;

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_DRIVER_H */
