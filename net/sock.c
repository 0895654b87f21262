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

/* ---- the registration adapter (io/io.h) ------------------------------------
 */

/* Registers s->fd with the I/O driver of whoever polls cx, once. */
static int reg_ensure(cx__sock *s, cx_context *cx) {
  (void)s;
  (void)cx;
  return CX_ENOTSUP;
}

/* Readiness for dir: CX_READY with *tick (what a later clear needs), or
 * CX_PENDING with cx->waker stored; *err set when the registration failed
 * for good. */
static cx_poll reg_poll_ready(cx__sock *s, cx_context *cx, cx__dir dir,
                              uint64_t *tick, int *err) {
  (void)s;
  (void)cx;
  (void)dir;
  *tick = 0;
  *err = CX_ENOTSUP;
  return CX_READY;
}

static void reg_clear(cx__sock *s, cx__dir dir, uint64_t tick) {
  (void)s;
  (void)dir;
  (void)tick;
}

static void reg_withdraw(cx__sock *s, cx__dir dir) {
  (void)s;
  (void)dir;
}

static void reg_deregister(cx__sock *s) {
  s->reg = NULL;
}

/* ---- close and the readiness loop ------------------------------------------
 */

void cx__sock_close(cx__sock *s) {
  if (s->fd < 0) return;
  /* Deregister before close(2): once closed, the fd number may be reused by
   * another open() at once, and the driver must not mistake it for ours.
   * Deregistering wakes whoever waits; they find fd == -1 (CX_EBADF). */
  reg_deregister(s);
  close(s->fd);
  s->fd = -1;
}

cx_poll cx__sock_poll_io(cx__sock *s, cx_context *cx, cx__dir dir,
                         cx__sock_try_fn try_fn, void *arg, bool *waiting,
                         ssize_t *result) {
  for (;;) {
    if (s->fd < 0) {
      *result = CX_EBADF;
      break;
    }
    uint64_t tick = 0;
    if (s->reg != NULL) {
      /* Registered: ask the driver first, so a socket known not to be ready
       * costs no system call. */
      int err = CX_OK;
      if (reg_poll_ready(s, cx, dir, &tick, &err) == CX_PENDING) {
        *waiting = true;
        return CX_PENDING;
      }
      if (err != CX_OK) {
        *result = err;
        break;
      }
    }
    /* Not registered yet: try first, most operations complete at once. */
    ssize_t r = try_fn(s->fd, arg);
    if (r != CX_EAGAIN) {
      *result = r;
      break;
    }
    if (s->reg == NULL) {
      int rc = cx == NULL ? CX_ENOTSUP : reg_ensure(s, cx);
      if (rc != CX_OK) {
        *result = rc;
        break;
      }
    } else {
      /* Clear only the readiness seen before the attempt (its tick): an
       * event that arrived since stays, and the next round sees it. */
      reg_clear(s, dir, tick);
    }
  }
  /* Done: a waker left from an earlier pending poll must not keep the task
   * referenced until the next event. */
  cx__sock_withdraw(s, dir, waiting);
  return CX_READY;
}

void cx__sock_withdraw(cx__sock *s, cx__dir dir, bool *waiting) {
  if (!*waiting) return;
  *waiting = false;
  if (s->reg != NULL) reg_withdraw(s, dir);
}
