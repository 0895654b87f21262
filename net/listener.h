/*
 * Listening sockets (TCP over IPv4/IPv6, and Unix-domain stream sockets) and
 * the accept future.
 *
 *   cx_listener *l;
 *   cx_addr a;
 *   cx_addr_parse("127.0.0.1:0", &a);        // port 0: the kernel picks
 *   cx_listen(&a, 128, &l);                  // bind + listen, synchronous
 *   ...in a coroutine:
 *   cx_accept_init(&f->acc, l, &f->conn, NULL);
 *   CX_AWAIT(&f->co, cx_accept_poll(&f->acc, cx, &f->rc));
 *   // f->rc == CX_OK: f->conn is a new cx_stream, yours to close
 *
 * Ownership. cx_listen gives the caller the listener; cx_listener_close
 * closes its fd and releases it, exactly once. Futures on it keep its
 * memory alive until they are dropped, so closing with an accept pending is
 * allowed: the accept wakes and completes with CX_EBADF.
 *
 * Accepted streams are non-blocking and close-on-exec (accept4 with
 * SOCK_NONBLOCK | SOCK_CLOEXEC), owned by the caller (net/stream.h).
 *
 * Running out of fds. When accept fails with EMFILE, ENFILE, ENOBUFS or
 * ENOMEM the pending connection stays in the kernel's queue, so the listener
 * stays readable: retrying at once would spin. The accept future instead
 * waits (a cx_sleep, 50 ms by default, cx_listener_set_backoff) and tries
 * again, staying pending meanwhile; the executor keeps serving the
 * connections it has, and as soon as one of them closes, accepting resumes.
 * Each such wait is counted (cx_listener_backoffs). Without a timer driver
 * (cx->timers NULL) the error is returned instead.
 *
 * Thread-safety: a listener and its futures are used by one thread at a time
 * (the thread of the executor polling them); hand a listener to another
 * thread only with no future alive on it. The accept future registers the
 * listener with the I/O driver of the executor polling it (on first wait);
 * from then on every future on it must be polled by that executor, until
 * that executor is destroyed (then another one may take it over).
 * At most one accept future should wait at a time (the listener keeps one
 * reader waker; a second one replaces the first).
 */
#ifndef CEXEC_NET_LISTENER_H
#define CEXEC_NET_LISTENER_H

#include <stdbool.h>
#include <stdint.h>

#include "net/addr.h"
#include "net/stream.h"
#include "timer/timer.h"
#include "waker/waker.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_listener cx_listener;

/* Creates a socket for addr's family (AF_INET, AF_INET6: TCP with
 * SO_REUSEADDR; AF_UNIX: a stream socket at that path, which must not exist),
 * binds and listens with `backlog` (<= 0: SOMAXCONN). Synchronous, never
 * blocks; callable outside an executor. CX_OK and *out, or CX_EINVAL (NULL
 * argument, no address), CX_EADDRINUSE, CX_EACCES, CX_EADDRNOTAVAIL,
 * CX_EMFILE, CX_ENFILE, CX_ENOMEM, CX_ENOENT (Unix path's directory), ...;
 * on error *out is NULL and nothing is left open. */
int cx_listen(const cx_addr *addr, int backlog, cx_listener **out);

/* The address actually bound (the kernel's port when 0 was asked for).
 * CX_OK, CX_EINVAL, CX_EBADF (closed). */
int cx_listener_local_addr(const cx_listener *l, cx_addr *out);

/* The listening fd (borrowed: do not close it), or -1 once closed. */
int cx_listener_fd(const cx_listener *l);

/* The wait after an accept failed for lack of fds or memory (default
 * 50 ms; 0 restores the default). NULL: no-op. */
void cx_listener_set_backoff(cx_listener *l, uint64_t ns);

/* How many times accept waited for that reason since cx_listen. */
uint64_t cx_listener_backoffs(const cx_listener *l);

/* Closes the fd (a Unix socket's path is unlinked) and gives up the
 * caller's handle: call it exactly once. Pending accepts wake and complete
 * with CX_EBADF (one waiting out an EMFILE backoff does so when its wait
 * ends). NULL is a no-op. */
void cx_listener_close(cx_listener *l);

/* ---- the accept future ------------------------------------------------- */

/* Accepts one connection. Output: int, CX_OK (then *out is the new stream,
 * owned by the caller, and *peer, if given, its address), CX_EBADF (the
 * listener was closed), CX_ECONNABORTED is retried internally, CX_ENOTSUP
 * (it had to wait but the context has no I/O driver), or another CX_E*.
 * Fields are private; a zeroed value may be dropped. */
typedef struct cx_accept {
  struct cx__sock *sock; /* the listener, referenced; NULL once done */
  cx_stream **out;
  cx_addr *peer;
  cx_sleep backoff;
  bool backing_off;
  cx_waker waiting; /* identity of the waker we left (owns nothing) */
} cx_accept;

/* Prepares an accept on l into *out (and *peer, may be NULL): both
 * borrowed, written only on CX_OK. Takes a reference on l, so the future
 * must be polled to completion or dropped. l NULL: the future completes with
 * CX_EINVAL. */
void cx_accept_init(cx_accept *a, cx_listener *l, cx_stream **out,
                    cx_addr *peer);

/* CX_READY with *result (may be NULL) set, or CX_PENDING. */
cx_poll cx_accept_poll(cx_accept *a, cx_context *cx, int *result);

/* Withdraws a pending accept and gives its reference back. Idempotent;
 * zeroed or NULL: no-op. */
void cx_accept_drop(cx_accept *a);

/* cx_accept as a future: state cx_accept, output int. Spawning copies the
 * struct: out and peer must outlive the task. */
extern const cx_future_vtable cx_accept_vtable;

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_NET_LISTENER_H */
