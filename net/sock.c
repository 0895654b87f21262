/*
 * The socket core (net/internal/sock.h): reference counting, close, and the
 * readiness loop over the I/O driver's registrations (io/io.h).
 */
#include "net/internal/sock.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "io/io.h"
#include "waker/alloc.h"
#include "waker/error.h"

int cx__errno_code(int e) {
  if (e == EWOULDBLOCK || e == EAGAIN) return CX_EAGAIN;
  return cx_error_from_errno(e);
}

int cx__socket(int family, int type) {
  int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  return fd >= 0 ? fd : cx__errno_code(errno);
}

int cx__sock_create(int fd, int family, size_t size, cx__sock **out) {
  *out = NULL;
  cx__sock *s = cx_alloc(size, _Alignof(max_align_t));
  if (s == NULL) return CX_ENOMEM;
  memset(s, 0, size);
  s->fd = fd;
  s->family = family;
  s->refs = 1;
  s->size = size;
  s->reg = NULL;
  *out = s;
  return CX_OK;
}

cx__sock *cx__sock_ref(cx__sock *s) {
  s->refs++;
  return s;
}

void cx__sock_unref(cx__sock *s) {
  if (s == NULL || --s->refs > 0) return;
  cx__sock_close(s);
  cx_free(s, s->size, _Alignof(max_align_t));
}

int cx__sock_fd(const cx__sock *s) {
  return s->fd;
}
bool cx__sock_is_closed(const cx__sock *s) {
  return s->fd < 0;
}

/* ---- close and the readiness loop ------------------------------------------
 */

static unsigned interest_of(cx__dir dir) {
  return dir == CX__DIR_READ ? CX_IO_READ : CX_IO_WRITE;
}

void cx__sock_close(cx__sock *s) {
  if (s->fd < 0) return;
  /* Deregister before close(2): once closed, the fd number may be reused by
   * another open() at once, and the driver must not mistake it for ours.
   * Deregistering wakes whoever waits; they find fd == -1 (CX_EBADF). */
  if (s->reg != NULL) {
    cx_io_deregister(s->reg);
    s->reg = NULL;
  }
  close(s->fd);
  s->fd = -1;
}

/* After this many EAGAINs in one poll (readiness reported, the call still
 * refusing) give the executor back rather than loop. */
#define CX__MAX_RETRIES 32

cx_poll cx__sock_poll_io(cx__sock *s, cx_context *cx, cx__dir dir,
                         cx__sock_try_fn try_fn, void *arg, cx_waker *waiting,
                         ssize_t *result) {
  return cx__sock_poll_io_ex(s, cx, dir, try_fn, arg, waiting, result, 0);
}

cx_poll cx__sock_poll_io_ex(cx__sock *s, cx_context *cx, cx__dir dir,
                            cx__sock_try_fn try_fn, void *arg,
                            cx_waker *waiting, ssize_t *result,
                            size_t drained_below) {
  for (int round = 0;; round++) {
    if (s->fd < 0) {
      *result = CX_EBADF;
      break;
    }
    cx_io_ready ready = {0, 0};
    if (s->reg != NULL) {
      if (round == CX__MAX_RETRIES) {
        cx_waker_wake_by_ref(cx->waker);
        return CX_PENDING;
      }
      /* Registered: ask the driver first, so a socket known not to be ready
       * costs no system call. */
      if (cx_io_poll_ready(s->reg, cx, interest_of(dir), &ready) ==
          CX_PENDING) {
        *waiting = *cx->waker; /* identity only: owns nothing */
        return CX_PENDING;
      }
      if (ready.bits & CX_IO_SHUTDOWN) {
        /* Shut down while our fd is open: not our close, so the driver went
         * away (its executor was destroyed). Give that registration up and
         * register again with the driver polling us now. */
        cx_io_deregister(s->reg);
        s->reg = NULL;
        *waiting = CX_WAKER_EMPTY;
        continue;
      }
    }
    /* Not registered yet: try first, most operations complete at once. */
    ssize_t r = try_fn(s->fd, arg);
    if (r != CX_EAGAIN) {
      /* A short TCP read emptied the receive queue: forget the readiness
       * now rather than pay an EAGAIN on the next read (data arriving
       * meanwhile moved the tick, so it is not lost). */
      if (r > 0 && (size_t)r < drained_below && s->reg != NULL)
        cx_io_clear_ready(s->reg, ready);
      *result = r;
      break;
    }
    if (s->reg == NULL) {
      int rc = (cx == NULL || cx->host == NULL)
                   ? CX_ENOTSUP
                   : cx_io_register(cx, s->fd, &s->reg);
      if (rc != CX_OK) {
        s->reg = NULL;
        *result = rc;
        break;
      }
    } else {
      /* Clear only the readiness seen before the attempt (its tick): an
       * event that arrived since stays, and the next round sees it. */
      cx_io_clear_ready(s->reg, ready);
    }
  }
  /* Done: a waker left by an earlier pending poll must not keep the task
   * referenced until the next event. */
  cx__sock_withdraw(s, dir, waiting);
  return CX_READY;
}

void cx__sock_withdraw(cx__sock *s, cx__dir dir, cx_waker *waiting) {
  if (cx_waker_is_empty(waiting)) return;
  if (s->reg != NULL) cx_io_withdraw(s->reg, interest_of(dir), waiting);
  *waiting = CX_WAKER_EMPTY;
}
