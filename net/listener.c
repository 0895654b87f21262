/* Listeners and the accept future (see net/listener.h). */
#include "net/listener.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/internal/sock.h"
#include "waker/error.h"

#define CX__DEFAULT_BACKOFF (50 * CX_NSEC_PER_MSEC)

int cx__sock_name(const cx__sock *s, cx_addr *out, bool peer);

int cx_listen(const cx_addr *addr, int backlog, cx_listener **out) {
  if (out != NULL) *out = NULL;
  int fam = cx_addr_family(addr);
  if (out == NULL || (fam != AF_INET && fam != AF_INET6 && fam != AF_UNIX))
    return CX_EINVAL;
  int fd = cx__socket(fam, SOCK_STREAM);
  if (fd < 0) return fd;
  int rc = CX_OK;
  if (fam != AF_UNIX) {
    /* Rebinding a port whose old connections linger in TIME_WAIT is what a
     * restarted server needs; a port with a live listener still fails with
     * EADDRINUSE. */
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0)
      rc = cx__errno_code(errno);
  }
  if (rc == CX_OK && bind(fd, &addr->u.sa, addr->len) != 0)
    rc = cx__errno_code(errno);
  bool bound = rc == CX_OK;
  if (rc == CX_OK && listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0)
    rc = cx__errno_code(errno);
  cx__sock *s = NULL;
  if (rc == CX_OK) rc = cx__sock_create(fd, fam, sizeof(cx_listener), &s);
  if (rc != CX_OK) {
    if (bound && fam == AF_UNIX) unlink(addr->u.un.sun_path);
    close(fd);
    return rc;
  }
  cx_listener *l = (cx_listener *)s;
  l->backoff_ns = CX__DEFAULT_BACKOFF;
  l->backoffs = 0;
  l->unix_path[0] = '\0';
  if (fam == AF_UNIX)
    memcpy(l->unix_path, addr->u.un.sun_path, sizeof l->unix_path);
  *out = l;
  return CX_OK;
}

int cx_listener_local_addr(const cx_listener *l, cx_addr *out) {
  return cx__sock_name(l ? &l->sock : NULL, out, false);
}

int cx_listener_fd(const cx_listener *l) {
  return l ? l->sock.fd : -1;
}

void cx_listener_set_backoff(cx_listener *l, uint64_t ns) {
  if (l != NULL) l->backoff_ns = ns ? ns : CX__DEFAULT_BACKOFF;
}

uint64_t cx_listener_backoffs(const cx_listener *l) {
  return l ? l->backoffs : 0;
}

void cx_listener_close(cx_listener *l) {
  if (l == NULL) return;
  if (l->unix_path[0] != '\0' && l->sock.fd >= 0) unlink(l->unix_path);
  cx__sock_close(&l->sock);
  cx__sock_unref(&l->sock);
}

/* ---- accept -------------------------------------------------------------- */

typedef struct accept_try {
  cx_accept *a;
  int fd;
} accept_try;

static ssize_t try_accept(int fd, void *arg) {
  accept_try *t = arg;
  cx_addr peer;
  memset(&peer, 0, sizeof peer);
  socklen_t len = sizeof peer.u;
  for (;;) {
    int c = accept4(fd, &peer.u.sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) {
      peer.len = len;
      if (t->a->peer) *t->a->peer = peer;
      t->fd = c;
      return 0;
    }
    /* A connection reset while queued, or a signal: take the next one. */
    if (errno == ECONNABORTED || errno == EINTR) continue;
    return cx__errno_code(errno);
  }
}

void cx_accept_init(cx_accept *a, cx_listener *l, cx_stream **out,
                    cx_addr *peer) {
  memset(a, 0, sizeof *a);
  cx_sleep_init_for(&a->backoff, 0);
  if (l == NULL || out == NULL) return; /* polls as CX_EINVAL */
  a->sock = cx__sock_ref(&l->sock);
  a->out = out;
  a->peer = peer;
}

static void accept_release(cx_accept *a) {
  cx_sleep_drop(&a->backoff);
  a->backing_off = false;
  if (a->sock == NULL) return;
  cx__sock_withdraw(a->sock, CX__DIR_READ, &a->waiting);
  cx__sock_unref(a->sock);
  a->sock = NULL;
}

static bool out_of_fds(int rc) {
  return rc == CX_EMFILE || rc == CX_ENFILE || rc == CX_ENOBUFS ||
         rc == CX_ENOMEM;
}

cx_poll cx_accept_poll(cx_accept *a, cx_context *cx, int *result) {
  int rc;
  if (a->sock == NULL) {
    rc = CX_EINVAL;
    goto done;
  }
  cx_listener *l = (cx_listener *)a->sock;
  for (;;) {
    if (a->backing_off) {
      int src;
      if (cx_sleep_poll(&a->backoff, cx, &src) == CX_PENDING) return CX_PENDING;
      a->backing_off = false;
    }
    accept_try t = {a, -1};
    ssize_t r;
    if (cx__sock_poll_io(a->sock, cx, CX__DIR_READ, try_accept, &t, &a->waiting,
                         &r) == CX_PENDING)
      return CX_PENDING;
    rc = (int)r;
    if (rc == CX_OK) {
      cx__sock *s;
      rc = cx__sock_create(t.fd, a->sock->family, sizeof(cx_stream), &s);
      if (rc == CX_OK) {
        *a->out = (cx_stream *)s;
        goto done;
      }
      close(t.fd); /* no memory for it: the client sees a reset */
    }
    if (!out_of_fds(rc) || cx->timers == NULL) goto done;
    /* The queued connection is still there and the fd stays readable, so
     * asking again now would spin: wait, serving the rest meanwhile. */
    l->backoffs++;
    a->backing_off = true;
    cx_sleep_init_for(&a->backoff, l->backoff_ns);
  }
done:
  accept_release(a);
  if (result) *result = rc;
  return CX_READY;
}

void cx_accept_drop(cx_accept *a) {
  if (a != NULL) accept_release(a);
}

static cx_poll accept_vt_poll(void *self, cx_context *cx, void *out) {
  return cx_accept_poll(self, cx, out);
}
static void accept_vt_drop(void *self) {
  cx_accept_drop(self);
}

const cx_future_vtable cx_accept_vtable = {
    .poll = accept_vt_poll,
    .drop = accept_vt_drop,
    .state_size = sizeof(cx_accept),
    .state_align = _Alignof(cx_accept),
    .output_size = sizeof(int),
    .output_align = _Alignof(int),
};
