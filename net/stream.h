/*
 * Byte streams: connected TCP (IPv4/IPv6) and Unix-domain stream sockets,
 * the connect future, and the read / read_exact / write / write_all futures.
 *
 *   cx_connect_init(&f->conn, &addr, &f->s);         // any cx_addr family
 *   CX_AWAIT(&f->co, cx_connect_poll(&f->conn, cx, &f->rc));
 *   cx_stream_write_all_init(&f->w, f->s, "ping", 4);
 *   CX_AWAIT(&f->co, cx_stream_write_all_poll(&f->w, cx, &f->rc));
 *   cx_stream_read_init(&f->r, f->s, f->buf, sizeof f->buf);
 *   CX_AWAIT(&f->co, cx_stream_read_poll(&f->r, cx, &f->n));  // 0: EOF
 *   cx_stream_close(f->s);
 *
 * Ownership. A cx_stream comes from cx_connect or cx_accept (net/listener.h)
 * and belongs to whoever received it, who closes it with cx_stream_close,
 * exactly once. The stream owns its fd (non-blocking, close-on-exec): never
 * close cx_stream_fd() yourself. Each I/O future holds a reference on the
 * stream from init to completion or drop, so closing a stream while futures
 * are pending is allowed: they wake and complete with CX_EBADF, and the
 * memory goes when the last of them is dropped. Buffers are borrowed: they
 * must stay valid until the future completes or is dropped.
 *
 * Results. Futures whose output is ssize_t return a byte count (>= 0) or a
 * negative CX_E* code; the others an int, CX_OK or a CX_E* code. Common
 * codes: CX_ECONNRESET (peer reset), CX_EPIPE (write after the peer closed;
 * sends use MSG_NOSIGNAL, so no SIGPIPE is ever raised), CX_EBADF (the
 * stream was closed), CX_ENOTSUP (had to wait, but the context has no I/O
 * driver: poll it from an executor), CX_EINVAL (NULL stream or buffer).
 * End of stream is a read of 0 bytes.
 *
 * Dropping or cancelling a pending future (cx_timeout, cx_select, task
 * cancellation) withdraws its waker from the stream; bytes already moved by
 * a partial read_exact / write_all stay moved (the counts say how many).
 *
 * Thread-safety: a stream and its futures are used by one thread at a time
 * (the executor polling them); hand a stream to another thread only with no
 * future alive on it. The first future that waits registers the fd with the
 * I/O driver of the executor polling it; every later future on the stream
 * must be polled by that same executor (once that executor is destroyed,
 * another one may take the stream over: it registers again). At most one
 * read-side future (read, read_exact) and one write-side future (write,
 * write_all) should wait at a time: the stream keeps one reader and one writer
 * waker (a second waiter replaces the first, which would then not be woken).
 */
#ifndef CEXEC_NET_STREAM_H
#define CEXEC_NET_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "net/addr.h"
#include "waker/waker.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_stream cx_stream;
struct cx__sock;

/* Sets TCP_NODELAY (on = true: send small segments at once, no Nagle).
 * CX_OK, CX_EINVAL (NULL, or a Unix stream), CX_EBADF (closed). */
int cx_stream_set_nodelay(cx_stream *s, bool on);

/* Shuts down one or both directions (how: SHUT_RD, SHUT_WR, SHUT_RDWR of
 * <sys/socket.h>). Synchronous: shutdown(2) never blocks. After SHUT_WR the
 * peer reads end of stream. CX_OK, CX_EINVAL, CX_EBADF, CX_ENOTCONN. */
int cx_stream_shutdown(cx_stream *s, int how);

/* Local / peer address. CX_OK, CX_EINVAL, CX_EBADF, CX_ENOTCONN. */
int cx_stream_local_addr(const cx_stream *s, cx_addr *out);
int cx_stream_peer_addr(const cx_stream *s, cx_addr *out);

/* The fd (borrowed, e.g. for setsockopt), or -1 once closed. */
int cx_stream_fd(const cx_stream *s);

/* Closes the fd and gives up the caller's handle: call it exactly once.
 * Pending futures wake and complete with CX_EBADF. The kernel sends what is
 * still buffered, then FIN (or RST if unread input remains, or SO_LINGER 0
 * was set). NULL is a no-op. */
void cx_stream_close(cx_stream *s);

/* ---- connect ------------------------------------------------------------ */

/* Connects to addr (AF_INET, AF_INET6: TCP; AF_UNIX: a path): creates a
 * non-blocking, close-on-exec socket, starts a non-blocking connect, waits
 * for writability and reads SO_ERROR. Output: int, CX_OK (*out is the new
 * stream, the caller's), CX_ECONNREFUSED, CX_ETIMEDOUT, CX_ENETUNREACH,
 * CX_EHOSTUNREACH, CX_ENOENT (no such Unix path), CX_EINVAL (NULL or no
 * address), CX_ENOMEM, CX_EMFILE, ... Dropping it before it completes
 * closes the half-made socket. Fields are private; zeroed may be dropped. */
typedef struct cx_connect {
  struct cx__sock *sock; /* the socket being connected, or NULL */
  cx_addr addr;
  cx_stream **out;
  bool started;     /* connect(2) was called */
  cx_waker waiting; /* identity of the waker we left (owns nothing) */
} cx_connect;

/* Prepares a connect to *addr (copied) into *out (borrowed, written only on
 * CX_OK). Nothing happens until the first poll. */
void cx_connect_init(cx_connect *c, const cx_addr *addr, cx_stream **out);
cx_poll cx_connect_poll(cx_connect *c, cx_context *cx, int *result);
void cx_connect_drop(cx_connect *c);
extern const cx_future_vtable cx_connect_vtable; /* output int */

/* ---- read ---------------------------------------------------------------- */

/* Reads at most len bytes (len 0: completes with 0 at once). Output:
 * ssize_t, bytes read (> 0), 0 at end of stream, or a CX_E* code. */
typedef struct cx_stream_read {
  struct cx__sock *sock; /* referenced until done; NULL after */
  void *buf;
  size_t len;
  cx_waker waiting; /* identity of the waker we left (owns nothing) */
  int error;        /* an init error to report, or 0 */
} cx_stream_read;

void cx_stream_read_init(cx_stream_read *r, cx_stream *s, void *buf,
                         size_t len);
cx_poll cx_stream_read_poll(cx_stream_read *r, cx_context *cx, ssize_t *result);
void cx_stream_read_drop(cx_stream_read *r);
extern const cx_future_vtable cx_stream_read_vtable; /* output ssize_t */

/* Reads exactly len bytes. Output: int, CX_OK, CX_EPIPE when the stream
 * ended first (the bytes that came are in buf: cx_stream_read_exact_count),
 * or another CX_E* code. */
typedef struct cx_stream_read_exact {
  cx_stream_read r;
  size_t filled;
} cx_stream_read_exact;

void cx_stream_read_exact_init(cx_stream_read_exact *r, cx_stream *s, void *buf,
                               size_t len);
cx_poll cx_stream_read_exact_poll(cx_stream_read_exact *r, cx_context *cx,
                                  int *result);
void cx_stream_read_exact_drop(cx_stream_read_exact *r);
static inline size_t cx_stream_read_exact_count(const cx_stream_read_exact *r) {
  return r->filled;
}
extern const cx_future_vtable cx_stream_read_exact_vtable; /* output int */

/* ---- write --------------------------------------------------------------- */

/* Writes at most len bytes (some, as soon as the socket takes any). Output:
 * ssize_t, bytes written (> 0; 0 only for len 0), or a CX_E* code. */
typedef struct cx_stream_write {
  struct cx__sock *sock;
  const void *buf;
  size_t len;
  cx_waker waiting; /* identity of the waker we left (owns nothing) */
  int error;
} cx_stream_write;

void cx_stream_write_init(cx_stream_write *w, cx_stream *s, const void *buf,
                          size_t len);
cx_poll cx_stream_write_poll(cx_stream_write *w, cx_context *cx,
                             ssize_t *result);
void cx_stream_write_drop(cx_stream_write *w);
extern const cx_future_vtable cx_stream_write_vtable; /* output ssize_t */

/* Writes all len bytes. Output: int, CX_OK or a CX_E* code (bytes written
 * before the error: cx_stream_write_all_count). */
typedef struct cx_stream_write_all {
  cx_stream_write w;
  size_t written;
} cx_stream_write_all;

void cx_stream_write_all_init(cx_stream_write_all *w, cx_stream *s,
                              const void *buf, size_t len);
cx_poll cx_stream_write_all_poll(cx_stream_write_all *w, cx_context *cx,
                                 int *result);
void cx_stream_write_all_drop(cx_stream_write_all *w);
static inline size_t cx_stream_write_all_count(const cx_stream_write_all *w) {
  return w->written;
}
extern const cx_future_vtable cx_stream_write_all_vtable; /* output int */

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_NET_STREAM_H */
