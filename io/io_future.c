/*
 * Futures over registered fds: wait, read, write, read_exact, write_all,
 * and the signal future. Each is cx_io_poll_op (or cx_io_poll_ready) plus
 * the bookkeeping of "which waker did I leave in the source", so that drop
 * can withdraw exactly that one.
 */
#define _GNU_SOURCE /* signalfd, sigisemptyset, MSG_NOSIGNAL */

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "io/internal/io.h"
#include "io/io.h"
#include "waker/error.h"

/* After a poll: remember the waker left in the source (an identity copy,
 * owning nothing) when pending, forget it when done. */
static cx_poll cx__track(cx_poll p, cx_context *cx, cx_waker *waiting) {
  *waiting = p == CX_PENDING ? *cx->waker : CX_WAKER_EMPTY;
  return p;
}

static void cx__untrack(cx_io_source *s, unsigned interest, cx_waker *waiting) {
  if (!cx_waker_is_empty(waiting)) cx_io_withdraw(s, interest, waiting);
  *waiting = CX_WAKER_EMPTY;
}

/* ---- the syscalls ------------------------------------------------------- */

typedef struct cx__io_buf {
  cx_io_source *src;
  void *buf;
  size_t len;
} cx__io_buf;

static ssize_t cx__op_read(int fd, void *arg) {
  cx__io_buf *b = arg;
  return read(fd, b->buf, b->len);
}

/* write(2) that never raises SIGPIPE at the process: sockets use
 * MSG_NOSIGNAL; other fds (pipes) block SIGPIPE in this thread for the
 * call, and consume the SIGPIPE the call raised (not one that was already
 * pending), as the write is then reported as CX_EPIPE. */
static ssize_t cx__op_write(int fd, void *arg) {
  cx__io_buf *b = arg;
  if (cx__io_source_is_socket(b->src))
    return send(fd, b->buf, b->len, MSG_NOSIGNAL);
  sigset_t pipe_set, old, pending;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
  sigpending(&pending);
  int was_pending = sigismember(&pending, SIGPIPE);
  ssize_t n = write(fd, b->buf, b->len);
  int e = errno;
  if (n < 0 && e == EPIPE && !was_pending) {
    struct timespec zero = {0, 0};
    (void)sigtimedwait(&pipe_set, NULL, &zero);
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  errno = e;
  return n;
}

/* ---- wait --------------------------------------------------------------- */

void cx_io_wait_init(cx_io_wait *f, cx_io_source *s, unsigned interest) {
  cx_io_source_retain(s);
  f->src = s;
  f->interest = interest;
  f->waiting = CX_WAKER_EMPTY;
}

cx_poll cx_io_wait_poll(cx_io_wait *f, cx_context *cx, int *result) {
  cx_io_ready r;
  cx_poll p =
      cx__track(cx_io_poll_ready(f->src, cx, f->interest, &r), cx, &f->waiting);
  if (p == CX_READY && result != NULL)
    *result = (r.bits & CX_IO_SHUTDOWN) ? CX_EBADF : CX_OK;
  return p;
}

void cx_io_wait_drop(cx_io_wait *f) {
  if (f == NULL || f->src == NULL) return;
  cx__untrack(f->src, f->interest, &f->waiting);
  cx_io_source_release(f->src);
  f->src = NULL;
}

static cx_poll cx__wait_vpoll(void *self, cx_context *cx, void *out) {
  return cx_io_wait_poll(self, cx, out);
}
static void cx__wait_vdrop(void *self) {
  cx_io_wait_drop(self);
}

const cx_future_vtable cx_io_wait_vtable = {
    .poll = cx__wait_vpoll,
    .drop = cx__wait_vdrop,
    .state_size = sizeof(cx_io_wait),
    .state_align = _Alignof(cx_io_wait),
    .output_size = sizeof(int),
    .output_align = _Alignof(int),
};

/* ---- read / write ------------------------------------------------------- */

void cx_io_read_init(cx_io_read *f, cx_io_source *s, void *buf, size_t len) {
  cx_io_source_retain(s);
  f->src = s;
  f->buf = buf;
  f->len = len;
  f->waiting = CX_WAKER_EMPTY;
}

cx_poll cx_io_read_poll(cx_io_read *f, cx_context *cx, ssize_t *result) {
  cx__io_buf b = {f->src, f->buf, f->len};
  ssize_t r = 0;
  cx_poll p =
      cx__track(cx_io_poll_op(f->src, cx, CX_IO_READ, cx__op_read, &b, &r), cx,
                &f->waiting);
  if (p == CX_READY && result != NULL) *result = r;
  return p;
}

void cx_io_read_drop(cx_io_read *f) {
  if (f == NULL || f->src == NULL) return;
  cx__untrack(f->src, CX_IO_READ, &f->waiting);
  cx_io_source_release(f->src);
  f->src = NULL;
}

static cx_poll cx__read_vpoll(void *self, cx_context *cx, void *out) {
  return cx_io_read_poll(self, cx, out);
}
static void cx__read_vdrop(void *self) {
  cx_io_read_drop(self);
}

const cx_future_vtable cx_io_read_vtable = {
    .poll = cx__read_vpoll,
    .drop = cx__read_vdrop,
    .state_size = sizeof(cx_io_read),
    .state_align = _Alignof(cx_io_read),
    .output_size = sizeof(ssize_t),
    .output_align = _Alignof(ssize_t),
};

void cx_io_write_init(cx_io_write *f, cx_io_source *s, const void *buf,
                      size_t len) {
  cx_io_source_retain(s);
  f->src = s;
  f->buf = buf;
  f->len = len;
  f->waiting = CX_WAKER_EMPTY;
}

cx_poll cx_io_write_poll(cx_io_write *f, cx_context *cx, ssize_t *result) {
  cx__io_buf b = {f->src, (void *)f->buf, f->len};
  ssize_t r = 0;
  cx_poll p =
      cx__track(cx_io_poll_op(f->src, cx, CX_IO_WRITE, cx__op_write, &b, &r),
                cx, &f->waiting);
  if (p == CX_READY && result != NULL) *result = r;
  return p;
}

void cx_io_write_drop(cx_io_write *f) {
  if (f == NULL || f->src == NULL) return;
  cx__untrack(f->src, CX_IO_WRITE, &f->waiting);
  cx_io_source_release(f->src);
  f->src = NULL;
}

static cx_poll cx__write_vpoll(void *self, cx_context *cx, void *out) {
  return cx_io_write_poll(self, cx, out);
}
static void cx__write_vdrop(void *self) {
  cx_io_write_drop(self);
}

const cx_future_vtable cx_io_write_vtable = {
    .poll = cx__write_vpoll,
    .drop = cx__write_vdrop,
    .state_size = sizeof(cx_io_write),
    .state_align = _Alignof(cx_io_write),
    .output_size = sizeof(ssize_t),
    .output_align = _Alignof(ssize_t),
};

/* ---- read_exact / write_all --------------------------------------------- */

static void cx__transfer_init(cx_io_transfer *f, cx_io_source *s, void *buf,
                              size_t len) {
  cx_io_source_retain(s);
  f->src = s;
  f->buf = buf;
  f->len = len;
  f->done = 0;
  f->interest = 0;
  f->waiting = CX_WAKER_EMPTY;
}

void cx_io_read_exact_init(cx_io_transfer *f, cx_io_source *s, void *buf,
                           size_t len) {
  cx__transfer_init(f, s, buf, len);
  f->interest = CX_IO_READ;
}

void cx_io_write_all_init(cx_io_transfer *f, cx_io_source *s, const void *buf,
                          size_t len) {
  cx__transfer_init(f, s, (void *)buf, len);
  f->interest = CX_IO_WRITE;
}

static cx_poll cx__transfer_poll(cx_io_transfer *f, cx_context *cx,
                                 unsigned interest, cx_io_op_fn op,
                                 ssize_t *result) {
  while (f->done < f->len) {
    cx__io_buf b = {f->src, (char *)f->buf + f->done, f->len - f->done};
    ssize_t r = 0;
    if (cx__track(cx_io_poll_op(f->src, cx, interest, op, &b, &r), cx,
                  &f->waiting) == CX_PENDING)
      return CX_PENDING;
    if (r < 0) {
      if (result != NULL) *result = r;
      return CX_READY;
    }
    if (r == 0) break; /* end of stream (read), or a 0-byte write */
    f->done += (size_t)r;
  }
  if (result != NULL) *result = (ssize_t)f->done;
  return CX_READY;
}

cx_poll cx_io_read_exact_poll(cx_io_transfer *f, cx_context *cx,
                              ssize_t *result) {
  return cx__transfer_poll(f, cx, CX_IO_READ, cx__op_read, result);
}

cx_poll cx_io_write_all_poll(cx_io_transfer *f, cx_context *cx,
                             ssize_t *result) {
  return cx__transfer_poll(f, cx, CX_IO_WRITE, cx__op_write, result);
}

void cx_io_transfer_drop(cx_io_transfer *f) {
  if (f == NULL || f->src == NULL) return;
  cx__untrack(f->src, f->interest, &f->waiting);
  cx_io_source_release(f->src);
  f->src = NULL;
}

static cx_poll cx__read_exact_vpoll(void *self, cx_context *cx, void *out) {
  return cx_io_read_exact_poll(self, cx, out);
}
static cx_poll cx__write_all_vpoll(void *self, cx_context *cx, void *out) {
  return cx_io_write_all_poll(self, cx, out);
}
static void cx__transfer_vdrop(void *self) {
  cx_io_transfer_drop(self);
}

const cx_future_vtable cx_io_read_exact_vtable = {
    .poll = cx__read_exact_vpoll,
    .drop = cx__transfer_vdrop,
    .state_size = sizeof(cx_io_transfer),
    .state_align = _Alignof(cx_io_transfer),
    .output_size = sizeof(ssize_t),
    .output_align = _Alignof(ssize_t),
};

const cx_future_vtable cx_io_write_all_vtable = {
    .poll = cx__write_all_vpoll,
    .drop = cx__transfer_vdrop,
    .state_size = sizeof(cx_io_transfer),
    .state_align = _Alignof(cx_io_transfer),
    .output_size = sizeof(ssize_t),
    .output_align = _Alignof(ssize_t),
};

/* ---- signals ------------------------------------------------------------ */

int cx_signal_init(cx_signal *s, const sigset_t *set) {
  if (s == NULL) return CX_EINVAL;
  s->sfd = -1;
  s->open = 0;
  s->src = NULL;
  s->waiting = CX_WAKER_EMPTY;
  sigset_t def;
  if (set == NULL) {
    sigemptyset(&def);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGTERM);
    set = &def;
  }
  if (sigisemptyset(set)) return CX_EINVAL;
  /* Block first: from here on the signals wait for the signalfd instead
   * of running their default action. */
  int rc = pthread_sigmask(SIG_BLOCK, set, NULL);
  if (rc != 0) return cx_error_from_errno(rc);
  int fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return cx_error_from_errno(errno);
  s->sfd = fd;
  s->open = 1;
  return CX_OK;
}

static ssize_t cx__op_signal(int fd, void *arg) {
  struct signalfd_siginfo info;
  ssize_t n = read(fd, &info, sizeof info);
  if (n == (ssize_t)sizeof info) *(int *)arg = (int)info.ssi_signo;
  return n;
}

cx_poll cx_signal_poll(cx_signal *s, cx_context *cx, int *result) {
  int out;
  if (!s->open) {
    out = CX_EBADF; /* dropped, or init failed */
  } else {
    if (s->src == NULL) {
      int rc = cx_io_register(cx, s->sfd, &s->src);
      if (rc != CX_OK) {
        if (result != NULL) *result = rc;
        return CX_READY;
      }
    }
    int signo = 0;
    ssize_t r = 0;
    if (cx__track(
            cx_io_poll_op(s->src, cx, CX_IO_READ, cx__op_signal, &signo, &r),
            cx, &s->waiting) == CX_PENDING)
      return CX_PENDING;
    out = r < 0 ? (int)r : signo > 0 ? signo : CX_EIO;
  }
  if (result != NULL) *result = out;
  return CX_READY;
}

void cx_signal_drop(cx_signal *s) {
  if (s == NULL) return;
  if (s->src != NULL) {
    cx__untrack(s->src, CX_IO_READ, &s->waiting);
    cx_io_deregister(s->src);
    s->src = NULL;
  }
  if (s->open) close(s->sfd);
  s->open = 0;
  s->sfd = -1;
}

static cx_poll cx__signal_vpoll(void *self, cx_context *cx, void *out) {
  return cx_signal_poll(self, cx, out);
}
static void cx__signal_vdrop(void *self) {
  cx_signal_drop(self);
}

const cx_future_vtable cx_signal_vtable = {
    .poll = cx__signal_vpoll,
    .drop = cx__signal_vdrop,
    .state_size = sizeof(cx_signal),
    .state_align = _Alignof(cx_signal),
    .output_size = sizeof(int),
    .output_align = _Alignof(int),
};
