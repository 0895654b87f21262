/*
 * The socket core shared by listeners, streams and UDP sockets (private to
 * net/): an fd, its registration with the I/O driver, a reference count, and
 * the readiness loop every I/O future runs.
 *
 * References. The handle the user holds (cx_listener, cx_stream, cx_udp)
 * owns one; every initialised I/O future on the socket owns one more, given
 * back when it completes or is dropped. Closing the handle closes the fd
 * and deregisters it at once (pending futures wake and fail with CX_EBADF),
 * but the memory stays until the last future lets go, so a future woken by
 * the close can still look at its socket. The count is a plain integer: a
 * socket and its futures are used by one thread at a time (net/stream.h).
 *
 * Registration is lazy: sockets are created outside any executor (in main,
 * before cx_block_on), so the fd is registered with the I/O driver of the
 * executor polling the first future that has to wait on it.
 */
#ifndef CEXEC_NET_INTERNAL_SOCK_H
#define CEXEC_NET_INTERNAL_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "waker/waker.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Which readiness an operation waits for. */
typedef enum cx__dir { CX__DIR_READ = 0, CX__DIR_WRITE = 1 } cx__dir;

typedef struct cx__sock cx__sock;

struct cx__sock {
  int fd;      /* -1 once closed */
  int family;  /* AF_INET, AF_INET6, AF_UNIX */
  size_t refs; /* the handle's + one per live future */
  size_t size; /* bytes allocated (the handle type embedding the core) */
  struct cx_io_source *reg; /* registration (io/io.h), or NULL */
};

/* The public handles: each embeds the core first. */
struct cx_stream {
  cx__sock sock;
};
struct cx_udp {
  cx__sock sock;
};
struct cx_listener {
  cx__sock sock;
  uint64_t backoff_ns; /* wait after EMFILE & co. */
  uint64_t backoffs;   /* how many times that happened */
  char unix_path[108]; /* unlinked at close ("" for TCP) */
};

/* One non-blocking attempt at an operation: >= 0 on success, a CX_E* code
 * on failure, CX_EAGAIN when it would block (then the loop waits). */
typedef ssize_t (*cx__sock_try_fn)(int fd, void *arg);

/* Creates a socket core over fd (already non-blocking and close-on-exec),
 * owning it; refs = 1. `size` >= sizeof(cx__sock) lets the handle types
 * embed the core first and add fields. CX_OK or CX_ENOMEM (fd is then left
 * open: the caller closes it). */
int cx__sock_create(int fd, int family, size_t size, cx__sock **out);

/* A new non-blocking, close-on-exec socket(2). fd or a CX_E* code. */
int cx__socket(int family, int type);

/* A new reference for a future (never fails: a count of size_t cannot
 * overflow while each reference is held by a future in memory). */
cx__sock *cx__sock_ref(cx__sock *s);

/* Gives a reference back; the last one frees the memory (closing the fd if
 * it is still open). NULL is a no-op. */
void cx__sock_unref(cx__sock *s);

/* Closes the fd and deregisters it: every waker registered on it wakes, and
 * every later or pending operation fails with CX_EBADF. Idempotent. Does not
 * drop a reference. */
void cx__sock_close(cx__sock *s);

/* The fd, or -1 once closed. */
int cx__sock_fd(const cx__sock *s);
bool cx__sock_is_closed(const cx__sock *s);

/*
 * The readiness loop: runs try_fn until it does not return CX_EAGAIN.
 * CX_READY with *result = what it returned (or CX_EBADF when the socket is
 * closed, or the registration's error), or CX_PENDING with cx->waker
 * registered for `dir` and *waiting set to its identity (a copy of the
 * value that owns nothing: what cx_io_withdraw compares against). The loop
 * follows the readiness protocol of io/io.h: an EAGAIN clears only the
 * readiness observed before the attempt (its tick), so an event that arrives
 * meanwhile is never lost.
 */
cx_poll cx__sock_poll_io(cx__sock *s, cx_context *cx, cx__dir dir,
                         cx__sock_try_fn try_fn, void *arg, cx_waker *waiting,
                         ssize_t *result);

/* The same; and when try_fn returned 0 < n < drained_below (a short read
 * of a TCP stream, which means its receive queue is empty), clears the
 * readiness it saw, so the next read waits instead of trying first. */
cx_poll cx__sock_poll_io_ex(cx__sock *s, cx_context *cx, cx__dir dir,
                            cx__sock_try_fn try_fn, void *arg,
                            cx_waker *waiting, ssize_t *result,
                            size_t drained_below);

/* Withdraws the waker a pending operation left for `dir` (drop of a pending
 * future). No-op when *waiting is empty; empties it. */
void cx__sock_withdraw(cx__sock *s, cx__dir dir, cx_waker *waiting);

/* errno after a failed call as a CX_E* code (EWOULDBLOCK -> CX_EAGAIN). */
int cx__errno_code(int e);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_NET_INTERNAL_SOCK_H */
