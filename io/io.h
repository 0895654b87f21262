/*
 * I/O: the epoll driver, fd registrations, and futures over fds.
 *
 * Three layers, all in //io:io:
 *
 *   1. The driver (cx_io_driver_create): a cx_driver (executor/driver.h)
 *      whose park waits in epoll_pwait2 for registered fds, an unpark
 *      eventfd and the timeout, then updates the readiness of the fds that
 *      fired and wakes the futures waiting on them. An executor creates it
 *      lazily, the first time a future asks cx->host->io_driver().
 *
 *   2. Registrations (cx_io_source): an fd armed ONCE in the driver's epoll
 *      set, edge-triggered, for read, write and hang-up. Its readiness lives
 *      in one atomic word with a tick (generation), so clearing readiness
 *      after EAGAIN can never erase an event that arrived in between. It
 *      holds one reader waker and one writer waker. What epoll hands back
 *      names a slab slot and its generation, never the fd, so events of a
 *      deregistered (possibly reused) fd are ignored.
 *
 *   3. Futures: wait for readiness, read, write, write_all, read_exact on
 *      any non-blocking fd (pipes, eventfd, timerfd, stdin, sockets), and a
 *      signal future over signalfd.
 *
 * docs/io.md explains the driver, the readiness word and the fd lifecycle.
 *
 * THE FD LIFECYCLE. cexec never closes an fd it did not create, except
 * through cx_io_close(). The usual life of a user fd:
 *     fd = <open it>;                       user owns fd
 *     cx_io_register(cx, fd, &src);          src refers to fd (no dup)
 *     ... futures over src ...
 *     cx_io_close(src);                      deregister, then close(fd)
 * or cx_io_deregister(src) followed later by close(fd) by the user (the fd
 * can then be registered again, or used blocking elsewhere). Deregister
 * BEFORE closing: closing first lets the fd number be reused, and the
 * deregistration would then remove the new owner's epoll entry.
 *
 * SOURCE LIFETIME. A cx_io_source is reference counted: the registration
 * holds one reference (given up by cx_io_deregister / cx_io_close) and
 * every future built over it holds one (from its init to its drop). So a
 * source may be deregistered while futures over it are pending, in any
 * task or thread: they are woken and complete with CX_EBADF, and the memory
 * goes when the last of them is dropped.
 *
 * THREAD-SAFETY. Registering, polling, clearing, deregistering and dropping
 * may happen on any thread, concurrently with a park on another thread
 * (the multi-threaded runtime parks one worker in the driver while others
 * poll). Per source, at most one future waits for reading and one for
 * writing at a time: a second waiter in the same direction replaces the
 * first one's waker (the first is then never woken by the source), as with
 * Tokio's poll_read_ready. Two futures of the same task may share a
 * direction (they share the waker).
 */
#ifndef CEXEC_IO_H
#define CEXEC_IO_H

#include <signal.h>
#include <stddef.h>
#if defined(__GLIBC__)
/* sigset_t also for files compiled as strict C11 (-std=c11 without a POSIX
 * feature macro), where <signal.h> leaves it out. */
#include <bits/types/sigset_t.h>
#endif
#include <stdint.h>
#include <sys/types.h>

#include "executor/driver.h"
#include "waker/waker.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the driver --------------------------------------------------------- */

/* Creates the platform's I/O driver (epoll on Linux): a cx_driver whose
 * park also waits on registered fds and wakes their tasks, and whose unpark
 * writes an eventfd only when a thread is actually parked in it. Timeouts
 * are exact to the nanosecond (epoll_pwait2; rounded up to milliseconds on
 * kernels without it). Returns CX_OK, CX_ENOMEM, CX_EMFILE / CX_ENFILE (no
 * fd for epoll or the eventfd), or another CX_E* code from the kernel; *out
 * is NULL on error. Destroyed through its vtable: destroy shuts down every
 * registration still alive (its futures complete with CX_EBADF); the
 * memory and the epoll fd go when the last source is released. */
int cx_io_driver_create(cx_driver **out);

/* True when d was made by cx_io_driver_create. */
int cx_io_driver_is_io(const cx_driver *d);

/* ---- registrations ------------------------------------------------------ */

typedef struct cx_io_source cx_io_source;

/* Interest: what a waiter waits for. */
#define CX_IO_READ 1u
#define CX_IO_WRITE 2u

/* Readiness bits (cx_io_ready.bits). */
#define CX_IO_READABLE 0x01u     /* EPOLLIN: a read may make progress */
#define CX_IO_WRITABLE 0x02u     /* EPOLLOUT: a write may make progress */
#define CX_IO_READ_CLOSED 0x04u  /* EPOLLRDHUP/HUP: peer stopped writing */
#define CX_IO_WRITE_CLOSED 0x08u /* EPOLLHUP: writes will fail */
#define CX_IO_ERROR 0x10u        /* EPOLLERR: the fd has a pending error */
#define CX_IO_SHUTDOWN 0x20u     /* deregistered (or driver destroyed) */

/* What cx_io_poll_ready saw: the readiness bits relevant to the interest
 * and the tick (generation) they were read at. Pass it back unchanged to
 * cx_io_clear_ready. */
typedef struct cx_io_ready {
  uint32_t bits;
  uint32_t tick;
} cx_io_ready;

/* Registers fd with the I/O driver of the executor polling the current
 * future (cx->host->io_driver(), created on first use), and puts fd in
 * non-blocking mode (O_NONBLOCK; note for stdin/terminals that this flag
 * belongs to the shared open file description). fd stays the caller's.
 * The registration starts with no readiness; epoll reports the fd's
 * current state (e.g. writable) at the next park.
 *
 * Returns CX_OK and *out (one reference, the registration's), or:
 *   CX_EINVAL   cx, out NULL, or fd < 0
 *   CX_ENOTSUP  no host / no I/O driver (cx->host NULL, or not epoll)
 *   CX_EBADF    fd is not an open fd
 *   CX_EPERM    fd does not support epoll (a regular file, a directory)
 *   CX_EEXIST   fd is already registered with this driver
 *   CX_ENOMEM   allocation failed (nothing registered)
 *   or another code from cx_error_from_errno. *out is NULL on error.
 * Call from a poll function (cx is the one it was given). */
int cx_io_register(cx_context *cx, int fd, cx_io_source **out);

/* The same, with the driver given directly (d from cx_io_driver_create;
 * CX_EINVAL if it is not an I/O driver). For tests and for code that owns
 * its driver. Any thread. */
int cx_io_register_on(cx_driver *d, int fd, cx_io_source **out);

/* The fd registered (also after deregistration). */
int cx_io_source_fd(const cx_io_source *s);

/* Polls readiness for `interest` (CX_IO_READ, CX_IO_WRITE or both).
 * CX_READY when any bit of the interest is set, where READ means
 * READABLE|READ_CLOSED|ERROR and WRITE means WRITABLE|WRITE_CLOSED|ERROR,
 * or when the source is shut down (bits has CX_IO_SHUTDOWN: fail the
 * operation with CX_EBADF); *ready then holds those bits and the tick.
 * CX_PENDING after storing a clone of cx->waker as the waiter of each
 * direction of the interest (replacing the waiter there, see above); the
 * driver wakes it on the next event in that direction or on shutdown.
 * If cloning the waker fails (a refcount overflow), it wakes cx->waker by
 * reference and returns CX_PENDING: the task is polled again at once.
 * ready may not be NULL. */
cx_poll cx_io_poll_ready(cx_io_source *s, cx_context *cx, unsigned interest,
                         cx_io_ready *ready);

/* Forgets the readiness bits in `ready` (a syscall returned EAGAIN after
 * cx_io_poll_ready said ready), unless an event arrived since `ready` was
 * read (its tick is stale): then nothing is cleared, so the next poll sees
 * the new event. READ_CLOSED, WRITE_CLOSED and SHUTDOWN are never cleared
 * (end of stream is permanent). Any thread. */
void cx_io_clear_ready(cx_io_source *s, cx_io_ready ready);

/* Withdraws the waiter stored for `interest` if it wakes the same target as
 * *w (cx_waker_will_wake); otherwise leaves it (another future replaced
 * it). A pending future calls this from its drop with (an identity copy of)
 * the waker it registered. Any thread. */
void cx_io_withdraw(cx_io_source *s, unsigned interest, const cx_waker *w);

/* The "try the syscall, on EAGAIN clear and wait" loop. op(fd, arg) is a
 * non-blocking syscall returning >= 0 on success or -1 with errno set.
 * Polls readiness for `interest`; when ready, runs op: on success CX_READY
 * with *result = op's value; on EINTR runs it again; on EAGAIN clears the
 * readiness seen and polls again (CX_PENDING with the waker stored when
 * nothing is ready); on another errno CX_READY with *result =
 * cx_error_from_errno(errno) (negative). On a shut-down source CX_READY
 * with *result = CX_EBADF, without calling op. Any thread that polls.
 * After 64 EAGAINs in one call (readiness the kernel keeps reporting while
 * the syscall keeps refusing) it yields: wakes cx->waker, CX_PENDING. */
typedef ssize_t (*cx_io_op_fn)(int fd, void *arg);
cx_poll cx_io_poll_op(cx_io_source *s, cx_context *cx, unsigned interest,
                      cx_io_op_fn op, void *arg, ssize_t *result);

/* Deregisters: removes the fd from epoll (stale events are ignored), marks
 * the source shut down and wakes its waiters (they complete with
 * CX_EBADF), and gives up the registration's reference. Does NOT close the
 * fd (the caller does, after this call). Call it once per successful
 * register; NULL is a no-op. Any thread. */
void cx_io_deregister(cx_io_source *s);

/* cx_io_deregister(s), then close(fd). NULL is a no-op. */
void cx_io_close(cx_io_source *s);

/* An extra reference, for a future or an object that keeps s beyond the
 * registration's life; every retain needs one release. Any thread. */
void cx_io_source_retain(cx_io_source *s);
void cx_io_source_release(cx_io_source *s);

/* ---- futures over registered fds ---------------------------------------
 *
 * Each future: init (takes a reference on the source, cannot fail), then
 * poll as a function or through its vtable (spawnable; state = the struct),
 * then drop (idempotent, safe on a zeroed struct): withdraws the waker of a
 * pending future and releases the source. Output types are below; errors
 * are negative CX_E* codes (CX_EBADF if the source was deregistered). They
 * compose with cx_timeout / cx_select (executor/combinators.h) and
 * coroutines (executor/coro.h). A future is polled by one thread at a time.
 */

/* Waits for readiness (edge: completes when poll_ready says ready; does not
 * clear it). Output int: CX_OK, CX_EBADF (shut down), or a clone error. */
typedef struct cx_io_wait {
  cx_io_source *src;
  unsigned interest;
  cx_waker waiting; /* identity of the registered waker; owns nothing */
} cx_io_wait;
void cx_io_wait_init(cx_io_wait *f, cx_io_source *s, unsigned interest);
cx_poll cx_io_wait_poll(cx_io_wait *f, cx_context *cx, int *result);
void cx_io_wait_drop(cx_io_wait *f);
extern const cx_future_vtable cx_io_wait_vtable; /* output int */

/* One read(2) of up to len bytes into buf (which must stay valid until the
 * future completes or is dropped). Output ssize_t: bytes read, 0 at end of
 * stream (or len == 0), or a negative CX_E* code. */
typedef struct cx_io_read {
  cx_io_source *src;
  void *buf;
  size_t len;
  cx_waker waiting;
} cx_io_read;
void cx_io_read_init(cx_io_read *f, cx_io_source *s, void *buf, size_t len);
cx_poll cx_io_read_poll(cx_io_read *f, cx_context *cx, ssize_t *result);
void cx_io_read_drop(cx_io_read *f);
extern const cx_future_vtable cx_io_read_vtable; /* output ssize_t */

/* One write(2) of up to len bytes from buf. Output ssize_t: bytes written
 * or a negative code: CX_EPIPE when the reader is gone, and never a
 * SIGPIPE (sockets are written with send(MSG_NOSIGNAL); other fds with
 * SIGPIPE blocked in the writing thread for the call, and a SIGPIPE it
 * raised consumed; docs/io.md). */
typedef struct cx_io_write {
  cx_io_source *src;
  const void *buf;
  size_t len;
  cx_waker waiting;
} cx_io_write;
void cx_io_write_init(cx_io_write *f, cx_io_source *s, const void *buf,
                      size_t len);
cx_poll cx_io_write_poll(cx_io_write *f, cx_context *cx, ssize_t *result);
void cx_io_write_drop(cx_io_write *f);
extern const cx_future_vtable cx_io_write_vtable; /* output ssize_t */

/* read_exact: reads until len bytes are in buf or end of stream. Output
 * ssize_t: bytes read (== len, or fewer at end of stream), or a negative
 * code (bytes already read are then in buf; `done` says how many).
 * write_all: writes all len bytes. Output ssize_t: len, or a negative code
 * (`done` bytes were written). */
typedef struct cx_io_transfer {
  cx_io_source *src;
  void *buf;
  size_t len;
  size_t done;
  unsigned interest; /* CX_IO_READ (read_exact) or CX_IO_WRITE */
  cx_waker waiting;
} cx_io_transfer;
void cx_io_read_exact_init(cx_io_transfer *f, cx_io_source *s, void *buf,
                           size_t len);
cx_poll cx_io_read_exact_poll(cx_io_transfer *f, cx_context *cx,
                              ssize_t *result);
void cx_io_write_all_init(cx_io_transfer *f, cx_io_source *s, const void *buf,
                          size_t len);
cx_poll cx_io_write_all_poll(cx_io_transfer *f, cx_context *cx,
                             ssize_t *result);
void cx_io_transfer_drop(cx_io_transfer *f);
extern const cx_future_vtable cx_io_read_exact_vtable; /* output ssize_t */
extern const cx_future_vtable cx_io_write_all_vtable;  /* output ssize_t */

/* ---- signals ------------------------------------------------------------
 *
 * A future that completes when one of a set of signals is delivered to the
 * process, through a signalfd: for graceful shutdown on SIGINT/SIGTERM.
 *
 * cx_signal_init blocks the signals of the set in the CALLING thread
 * (pthread_sigmask) and opens the signalfd; the signalfd is registered on
 * the first poll. THREADING CAVEAT: a process-directed signal goes to any
 * thread that does not block it; if some other thread (one started before
 * init, or by a library) leaves it unblocked, the signal is delivered
 * there (and its default action may kill the process) instead of to the
 * signalfd. So call cx_signal_init on the main thread before starting any
 * thread (threads inherit the mask), or block the set in every thread.
 * Dropping the future closes the signalfd but does not unblock the signals
 * (a signal arriving after it would otherwise kill the process). */
typedef struct cx_signal {
  int sfd;           /* the signalfd, valid while `open` */
  int open;          /* 0 in a zeroed struct: drop is then a no-op */
  cx_io_source *src; /* registered on the first poll */
  cx_waker waiting;
} cx_signal;

/* set NULL means {SIGINT, SIGTERM}. Returns CX_OK, CX_EINVAL (s NULL, an
 * empty set), CX_EMFILE / CX_ENFILE / CX_ENOMEM, or another code; on error
 * *s is left dropped (dropping it again is harmless). */
int cx_signal_init(cx_signal *s, const sigset_t *set);
/* Output int: the signal number (> 0) delivered, or a negative CX_E* code
 * (CX_ENOTSUP without an I/O driver, registration errors). One delivered
 * signal completes the future; to wait for the next, drop it and init a
 * new one (signals arriving in between stay pending, since they stay
 * blocked, and the new signalfd reads them). */
cx_poll cx_signal_poll(cx_signal *s, cx_context *cx, int *result);
void cx_signal_drop(cx_signal *s);
extern const cx_future_vtable cx_signal_vtable; /* output int */

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_IO_H */
