/* Streams, connect, read and write futures (see net/stream.h). */
#include "net/stream.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/internal/sock.h"
#include "waker/error.h"

/* ---- synchronous calls ----------------------------------------------------
 */

int cx_stream_set_nodelay(cx_stream *s, bool on) {
  if (s == NULL) return CX_EINVAL;
  if (s->sock.fd < 0) return CX_EBADF;
  if (s->sock.family == AF_UNIX) return CX_EINVAL;
  int v = on ? 1 : 0;
  if (setsockopt(s->sock.fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) != 0)
    return cx__errno_code(errno);
  return CX_OK;
}

int cx_stream_shutdown(cx_stream *s, int how) {
  if (s == NULL || (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR))
    return CX_EINVAL;
  if (s->sock.fd < 0) return CX_EBADF;
  if (shutdown(s->sock.fd, how) != 0) return cx__errno_code(errno);
  return CX_OK;
}

static int sock_name(const cx__sock *s, cx_addr *out, bool peer) {
  if (out != NULL) memset(out, 0, sizeof *out);
  if (s == NULL || out == NULL) return CX_EINVAL;
  if (s->fd < 0) return CX_EBADF;
  socklen_t len = sizeof out->u;
  int rc = peer ? getpeername(s->fd, &out->u.sa, &len)
                : getsockname(s->fd, &out->u.sa, &len);
  if (rc != 0) return cx__errno_code(errno);
  out->len = len;
  return CX_OK;
}

int cx__sock_name(const cx__sock *s, cx_addr *out, bool peer) {
  return sock_name(s, out, peer);
}

int cx_stream_local_addr(const cx_stream *s, cx_addr *out) {
  return sock_name(s ? &s->sock : NULL, out, false);
}

int cx_stream_peer_addr(const cx_stream *s, cx_addr *out) {
  return sock_name(s ? &s->sock : NULL, out, true);
}

int cx_stream_fd(const cx_stream *s) {
  return s ? s->sock.fd : -1;
}

void cx_stream_close(cx_stream *s) {
  if (s == NULL) return;
  cx__sock_close(&s->sock);
  cx__sock_unref(&s->sock);
}

/* ---- connect ----------------------------------------------------------------
 *
 * Non-blocking connect(2) returns EINPROGRESS (TCP) or EAGAIN (a Unix socket
 * whose backlog is full); completion shows as writability, and SO_ERROR then
 * tells how it went. A Unix connect usually succeeds at once. */

static ssize_t try_connect_done(int fd, void *arg) {
  cx_connect *c = arg;
  if (c->addr.u.sa.sa_family == AF_UNIX) {
    /* EAGAIN from a full backlog: nothing is in progress, so try again. */
    if (connect(fd, &c->addr.u.sa, c->addr.len) == 0) return 0;
    return cx__errno_code(errno);
  }
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    return cx__errno_code(errno);
  if (err != 0) return cx__errno_code(err);
  /* SO_ERROR 0 and writable: connected. A spurious wake before the end of
   * the handshake would also read 0, so check that a peer exists. */
  struct sockaddr_storage peer;
  socklen_t plen = sizeof peer;
  if (getpeername(fd, (struct sockaddr *)&peer, &plen) != 0) {
    if (errno == ENOTCONN) return CX_EAGAIN;
    return cx__errno_code(errno);
  }
  return 0;
}

void cx_connect_init(cx_connect *c, const cx_addr *addr, cx_stream **out) {
  memset(c, 0, sizeof *c);
  if (addr != NULL) c->addr = *addr;
  c->out = out;
}

static cx_poll connect_finish(cx_connect *c, int rc, int *result) {
  if (rc == CX_OK) {
    *c->out = (cx_stream *)c->sock;
  } else {
    cx__sock_withdraw(c->sock, CX__DIR_WRITE, &c->waiting);
    cx__sock_close(c->sock);
    cx__sock_unref(c->sock);
  }
  c->sock = NULL;
  c->started = false;
  c->addr.len = 0; /* polled again by mistake: CX_EINVAL, no new socket */
  if (result) *result = rc;
  return CX_READY;
}

cx_poll cx_connect_poll(cx_connect *c, cx_context *cx, int *result) {
  if (!c->started) {
    int fam = c->addr.len ? c->addr.u.sa.sa_family : 0;
    if (c->out == NULL ||
        (fam != AF_INET && fam != AF_INET6 && fam != AF_UNIX)) {
      if (result) *result = CX_EINVAL;
      return CX_READY;
    }
    int fd = cx__socket(fam, SOCK_STREAM);
    if (fd < 0) {
      if (result) *result = fd;
      return CX_READY;
    }
    cx__sock *s;
    int rc = cx__sock_create(fd, fam, sizeof(cx_stream), &s);
    if (rc != CX_OK) {
      close(fd);
      if (result) *result = rc;
      return CX_READY;
    }
    c->sock = s;
    c->started = true;
    if (connect(fd, &c->addr.u.sa, c->addr.len) == 0)
      return connect_finish(c, CX_OK, result);
    if (errno != EINPROGRESS && errno != EAGAIN && errno != EINTR)
      return connect_finish(c, cx__errno_code(errno), result);
  }
  ssize_t r;
  if (cx__sock_poll_io(c->sock, cx, CX__DIR_WRITE, try_connect_done, c,
                       &c->waiting, &r) == CX_PENDING)
    return CX_PENDING;
  return connect_finish(c, (int)r, result);
}

void cx_connect_drop(cx_connect *c) {
  if (c == NULL || c->sock == NULL) return;
  cx__sock_withdraw(c->sock, CX__DIR_WRITE, &c->waiting);
  cx__sock_close(c->sock);
  cx__sock_unref(c->sock);
  c->sock = NULL;
  c->started = false;
}

static cx_poll connect_vt_poll(void *self, cx_context *cx, void *out) {
  return cx_connect_poll(self, cx, out);
}
static void connect_vt_drop(void *self) {
  cx_connect_drop(self);
}

const cx_future_vtable cx_connect_vtable = {
    .poll = connect_vt_poll,
    .drop = connect_vt_drop,
    .state_size = sizeof(cx_connect),
    .state_align = _Alignof(cx_connect),
    .output_size = sizeof(int),
    .output_align = _Alignof(int),
};

/* ---- read ---------------------------------------------------------------- */

static ssize_t try_read(int fd, void *arg) {
  cx_stream_read *r = arg;
  ssize_t n = recv(fd, r->buf, r->len, 0);
  return n >= 0 ? n : cx__errno_code(errno);
}

void cx_stream_read_init(cx_stream_read *r, cx_stream *s, void *buf,
                         size_t len) {
  memset(r, 0, sizeof *r);
  if (s == NULL || (buf == NULL && len > 0)) {
    r->error = CX_EINVAL;
    return;
  }
  r->sock = cx__sock_ref(&s->sock);
  r->buf = buf;
  r->len = len;
}

static void read_release(cx_stream_read *r) {
  if (r->sock == NULL) return;
  cx__sock_withdraw(r->sock, CX__DIR_READ, &r->waiting);
  cx__sock_unref(r->sock);
  r->sock = NULL;
}

cx_poll cx_stream_read_poll(cx_stream_read *r, cx_context *cx,
                            ssize_t *result) {
  ssize_t n;
  if (r->sock == NULL) {
    n = r->error ? r->error : CX_EINVAL;
  } else if (r->len == 0) {
    n = 0;
  } else if (cx__sock_poll_io_ex(
                 r->sock, cx, CX__DIR_READ, try_read, r, &r->waiting, &n,
                 r->sock->family == AF_UNIX ? 0 : r->len) == CX_PENDING) {
    return CX_PENDING;
  }
  read_release(r);
  r->error = n < 0 ? (int)n : 0;
  if (result) *result = n;
  return CX_READY;
}

void cx_stream_read_drop(cx_stream_read *r) {
  if (r != NULL) read_release(r);
}

static cx_poll read_vt_poll(void *self, cx_context *cx, void *out) {
  return cx_stream_read_poll(self, cx, out);
}
static void read_vt_drop(void *self) {
  cx_stream_read_drop(self);
}

const cx_future_vtable cx_stream_read_vtable = {
    .poll = read_vt_poll,
    .drop = read_vt_drop,
    .state_size = sizeof(cx_stream_read),
    .state_align = _Alignof(cx_stream_read),
    .output_size = sizeof(ssize_t),
    .output_align = _Alignof(ssize_t),
};

/* read_exact: one reference held throughout; read's try function moves the
 * window forward. */

static ssize_t try_read_exact(int fd, void *arg) {
  cx_stream_read_exact *x = arg;
  for (;;) {
    ssize_t n = recv(fd, (char *)x->r.buf + x->filled, x->r.len - x->filled, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return cx__errno_code(errno);
    }
    if (n == 0) return CX_EPIPE; /* ended early */
    x->filled += (size_t)n;
    if (x->filled == x->r.len) return 0;
  }
}

void cx_stream_read_exact_init(cx_stream_read_exact *x, cx_stream *s, void *buf,
                               size_t len) {
  cx_stream_read_init(&x->r, s, buf, len);
  x->filled = 0;
}

cx_poll cx_stream_read_exact_poll(cx_stream_read_exact *x, cx_context *cx,
                                  int *result) {
  ssize_t rc;
  if (x->r.sock == NULL) {
    rc = x->r.error ? x->r.error : CX_EINVAL;
  } else if (x->filled == x->r.len) {
    rc = CX_OK;
  } else if (cx__sock_poll_io(x->r.sock, cx, CX__DIR_READ, try_read_exact, x,
                              &x->r.waiting, &rc) == CX_PENDING) {
    return CX_PENDING;
  }
  read_release(&x->r);
  x->r.error = (int)rc;
  if (result) *result = (int)rc;
  return CX_READY;
}

void cx_stream_read_exact_drop(cx_stream_read_exact *x) {
  if (x != NULL) read_release(&x->r);
}

static cx_poll read_exact_vt_poll(void *self, cx_context *cx, void *out) {
  return cx_stream_read_exact_poll(self, cx, out);
}
static void read_exact_vt_drop(void *self) {
  cx_stream_read_exact_drop(self);
}

const cx_future_vtable cx_stream_read_exact_vtable = {
    .poll = read_exact_vt_poll,
    .drop = read_exact_vt_drop,
    .state_size = sizeof(cx_stream_read_exact),
    .state_align = _Alignof(cx_stream_read_exact),
    .output_size = sizeof(int),
    .output_align = _Alignof(int),
};

/* ---- write --------------------------------------------------------------- */

/* send(2) with MSG_NOSIGNAL: a write to a closed peer is CX_EPIPE, never a
 * SIGPIPE that would kill the process. */
static ssize_t try_write(int fd, void *arg) {
  cx_stream_write *w = arg;
  ssize_t n = send(fd, w->buf, w->len, MSG_NOSIGNAL);
  return n >= 0 ? n : cx__errno_code(errno);
}

void cx_stream_write_init(cx_stream_write *w, cx_stream *s, const void *buf,
                          size_t len) {
  memset(w, 0, sizeof *w);
  if (s == NULL || (buf == NULL && len > 0)) {
    w->error = CX_EINVAL;
    return;
  }
  w->sock = cx__sock_ref(&s->sock);
  w->buf = buf;
  w->len = len;
}

static void write_release(cx_stream_write *w) {
  if (w->sock == NULL) return;
  cx__sock_withdraw(w->sock, CX__DIR_WRITE, &w->waiting);
  cx__sock_unref(w->sock);
  w->sock = NULL;
}

cx_poll cx_stream_write_poll(cx_stream_write *w, cx_context *cx,
                             ssize_t *result) {
  ssize_t n;
  if (w->sock == NULL) {
    n = w->error ? w->error : CX_EINVAL;
  } else if (w->len == 0) {
    n = 0;
  } else if (cx__sock_poll_io(w->sock, cx, CX__DIR_WRITE, try_write, w,
                              &w->waiting, &n) == CX_PENDING) {
    return CX_PENDING;
  }
  write_release(w);
  w->error = n < 0 ? (int)n : 0;
  if (result) *result = n;
  return CX_READY;
}

void cx_stream_write_drop(cx_stream_write *w) {
  if (w != NULL) write_release(w);
}

static cx_poll write_vt_poll(void *self, cx_context *cx, void *out) {
  return cx_stream_write_poll(self, cx, out);
}
static void write_vt_drop(void *self) {
  cx_stream_write_drop(self);
}

const cx_future_vtable cx_stream_write_vtable = {
    .poll = write_vt_poll,
    .drop = write_vt_drop,
    .state_size = sizeof(cx_stream_write),
    .state_align = _Alignof(cx_stream_write),
    .output_size = sizeof(ssize_t),
    .output_align = _Alignof(ssize_t),
};

static ssize_t try_write_all(int fd, void *arg) {
  cx_stream_write_all *x = arg;
  for (;;) {
    ssize_t n = send(fd, (const char *)x->w.buf + x->written,
                     x->w.len - x->written, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return cx__errno_code(errno);
    }
    x->written += (size_t)n;
    if (x->written == x->w.len) return 0;
  }
}

void cx_stream_write_all_init(cx_stream_write_all *x, cx_stream *s,
                              const void *buf, size_t len) {
  cx_stream_write_init(&x->w, s, buf, len);
  x->written = 0;
}

cx_poll cx_stream_write_all_poll(cx_stream_write_all *x, cx_context *cx,
                                 int *result) {
  ssize_t rc;
  if (x->w.sock == NULL) {
    rc = x->w.error ? x->w.error : CX_EINVAL;
  } else if (x->written == x->w.len) {
    rc = CX_OK;
  } else if (cx__sock_poll_io(x->w.sock, cx, CX__DIR_WRITE, try_write_all, x,
                              &x->w.waiting, &rc) == CX_PENDING) {
    return CX_PENDING;
  }
  write_release(&x->w);
  x->w.error = (int)rc;
  if (result) *result = (int)rc;
  return CX_READY;
}

void cx_stream_write_all_drop(cx_stream_write_all *x) {
  if (x != NULL) write_release(&x->w);
}

static cx_poll write_all_vt_poll(void *self, cx_context *cx, void *out) {
  return cx_stream_write_all_poll(self, cx, out);
}
static void write_all_vt_drop(void *self) {
  cx_stream_write_all_drop(self);
}

const cx_future_vtable cx_stream_write_all_vtable = {
    .poll = write_all_vt_poll,
    .drop = write_all_vt_drop,
    .state_size = sizeof(cx_stream_write_all),
    .state_align = _Alignof(cx_stream_write_all),
    .output_size = sizeof(int),
    .output_align = _Alignof(int),
};
