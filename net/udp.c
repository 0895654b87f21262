/* UDP sockets and their futures (see net/udp.h). */
#include "net/udp.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/internal/sock.h"
#include "waker/error.h"

int cx__sock_name(const cx__sock *s, cx_addr *out, bool peer);

int cx_udp_bind(const cx_addr *addr, cx_udp **out) {
  if (out != NULL) *out = NULL;
  int fam = cx_addr_family(addr);
  if (out == NULL || (fam != AF_INET && fam != AF_INET6)) return CX_EINVAL;
  int fd = cx__socket(fam, SOCK_DGRAM);
  if (fd < 0) return fd;
  int rc = CX_OK;
  if (bind(fd, &addr->u.sa, addr->len) != 0) rc = cx__errno_code(errno);
  cx__sock *s = NULL;
  if (rc == CX_OK) rc = cx__sock_create(fd, fam, sizeof(cx_udp), &s);
  if (rc != CX_OK) {
    close(fd);
    return rc;
  }
  *out = (cx_udp *)s;
  return CX_OK;
}

int cx_udp_local_addr(const cx_udp *u, cx_addr *out) {
  return cx__sock_name(u ? &u->sock : NULL, out, false);
}

int cx_udp_fd(const cx_udp *u) {
  return u ? u->sock.fd : -1;
}

void cx_udp_close(cx_udp *u) {
  if (u == NULL) return;
  cx__sock_close(&u->sock);
  cx__sock_unref(&u->sock);
}

/* ---- send_to ---------------------------------------------------------------
 */

static ssize_t try_send_to(int fd, void *arg) {
  cx_udp_send_to *s = arg;
  for (;;) {
    ssize_t n =
        sendto(fd, s->buf, s->len, MSG_NOSIGNAL, &s->to.u.sa, s->to.len);
    if (n >= 0) return n;
    if (errno != EINTR) return cx__errno_code(errno);
  }
}

void cx_udp_send_to_init(cx_udp_send_to *s, cx_udp *u, const void *buf,
                         size_t len, const cx_addr *to) {
  memset(s, 0, sizeof *s);
  if (u == NULL || (buf == NULL && len > 0) || cx_addr_family(to) == 0) {
    s->error = CX_EINVAL;
    return;
  }
  s->sock = cx__sock_ref(&u->sock);
  s->buf = buf;
  s->len = len;
  s->to = *to;
}

static void send_release(cx_udp_send_to *s) {
  if (s->sock == NULL) return;
  cx__sock_withdraw(s->sock, CX__DIR_WRITE, &s->waiting);
  cx__sock_unref(s->sock);
  s->sock = NULL;
}

cx_poll cx_udp_send_to_poll(cx_udp_send_to *s, cx_context *cx,
                            ssize_t *result) {
  ssize_t n;
  if (s->sock == NULL) {
    n = s->error ? s->error : CX_EINVAL;
  } else if (cx__sock_poll_io(s->sock, cx, CX__DIR_WRITE, try_send_to, s,
                              &s->waiting, &n) == CX_PENDING) {
    return CX_PENDING;
  }
  send_release(s);
  s->error = n < 0 ? (int)n : 0;
  if (result) *result = n;
  return CX_READY;
}

void cx_udp_send_to_drop(cx_udp_send_to *s) {
  if (s != NULL) send_release(s);
}

static cx_poll send_vt_poll(void *self, cx_context *cx, void *out) {
  return cx_udp_send_to_poll(self, cx, out);
}
static void send_vt_drop(void *self) {
  cx_udp_send_to_drop(self);
}

const cx_future_vtable cx_udp_send_to_vtable = {
    .poll = send_vt_poll,
    .drop = send_vt_drop,
    .state_size = sizeof(cx_udp_send_to),
    .state_align = _Alignof(cx_udp_send_to),
    .output_size = sizeof(ssize_t),
    .output_align = _Alignof(ssize_t),
};

/* ---- recv_from -------------------------------------------------------------
 */

static ssize_t try_recv_from(int fd, void *arg) {
  cx_udp_recv_from *r = arg;
  cx_addr from;
  memset(&from, 0, sizeof from);
  for (;;) {
    socklen_t len = sizeof from.u;
    ssize_t n = recvfrom(fd, r->buf, r->len, 0, &from.u.sa, &len);
    if (n >= 0) {
      from.len = len;
      if (r->from) *r->from = from;
      return n;
    }
    if (errno != EINTR) return cx__errno_code(errno);
  }
}

void cx_udp_recv_from_init(cx_udp_recv_from *r, cx_udp *u, void *buf,
                           size_t len, cx_addr *from) {
  memset(r, 0, sizeof *r);
  if (u == NULL || (buf == NULL && len > 0)) {
    r->error = CX_EINVAL;
    return;
  }
  r->sock = cx__sock_ref(&u->sock);
  r->buf = buf;
  r->len = len;
  r->from = from;
}

static void recv_release(cx_udp_recv_from *r) {
  if (r->sock == NULL) return;
  cx__sock_withdraw(r->sock, CX__DIR_READ, &r->waiting);
  cx__sock_unref(r->sock);
  r->sock = NULL;
}

cx_poll cx_udp_recv_from_poll(cx_udp_recv_from *r, cx_context *cx,
                              ssize_t *result) {
  ssize_t n;
  if (r->sock == NULL) {
    n = r->error ? r->error : CX_EINVAL;
  } else if (cx__sock_poll_io(r->sock, cx, CX__DIR_READ, try_recv_from, r,
                              &r->waiting, &n) == CX_PENDING) {
    return CX_PENDING;
  }
  recv_release(r);
  r->error = n < 0 ? (int)n : 0;
  if (result) *result = n;
  return CX_READY;
}

void cx_udp_recv_from_drop(cx_udp_recv_from *r) {
  if (r != NULL) recv_release(r);
}

static cx_poll recv_vt_poll(void *self, cx_context *cx, void *out) {
  return cx_udp_recv_from_poll(self, cx, out);
}
static void recv_vt_drop(void *self) {
  cx_udp_recv_from_drop(self);
}

const cx_future_vtable cx_udp_recv_from_vtable = {
    .poll = recv_vt_poll,
    .drop = recv_vt_drop,
    .state_size = sizeof(cx_udp_recv_from),
    .state_align = _Alignof(cx_udp_recv_from),
    .output_size = sizeof(ssize_t),
    .output_align = _Alignof(ssize_t),
};
