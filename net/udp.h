/*
 * UDP sockets (IPv4 / IPv6): bind, and the send_to / recv_from futures.
 *
 *   cx_udp *u;
 *   cx_udp_bind(&addr, &u);                    // "127.0.0.1:0": any port
 *   cx_udp_send_to_init(&f->tx, u, msg, len, &peer);
 *   CX_AWAIT(&f->co, cx_udp_send_to_poll(&f->tx, cx, &f->n));
 *   cx_udp_recv_from_init(&f->rx, u, f->buf, sizeof f->buf, &f->from);
 *   CX_AWAIT(&f->co, cx_udp_recv_from_poll(&f->rx, cx, &f->n));
 *
 * Ownership, thread-safety, closing with futures pending, cancellation: as
 * for streams (net/stream.h). One recv_from and one send_to should wait at a
 * time. A datagram longer than the buffer is truncated (the rest is lost,
 * as with recvfrom(2)); the result is then the buffer's length.
 */
#ifndef CEXEC_NET_UDP_H
#define CEXEC_NET_UDP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "net/addr.h"
#include "waker/waker.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_udp cx_udp;
struct cx__sock;

/* Creates a non-blocking, close-on-exec UDP socket bound to addr (IPv4 or
 * IPv6; port 0: the kernel picks). Synchronous. CX_OK, CX_EINVAL (NULL, not
 * an IP address), CX_EADDRINUSE, CX_EACCES, CX_EMFILE, CX_ENOMEM, ... */
int cx_udp_bind(const cx_addr *addr, cx_udp **out);

/* The bound address. CX_OK, CX_EINVAL, CX_EBADF. */
int cx_udp_local_addr(const cx_udp *u, cx_addr *out);

/* The fd (borrowed), or -1 once closed. */
int cx_udp_fd(const cx_udp *u);

/* Closes the socket, exactly once; pending futures complete with CX_EBADF.
 * NULL is a no-op. */
void cx_udp_close(cx_udp *u);

/* Sends one datagram of len bytes to *to (copied at init). Output: ssize_t,
 * bytes sent (== len) or a CX_E* code (CX_EMSGSIZE, CX_EINVAL for a
 * different address family, CX_ECONNREFUSED from an earlier ICMP error...). */
typedef struct cx_udp_send_to {
  struct cx__sock *sock;
  const void *buf;
  size_t len;
  cx_addr to;
  cx_waker waiting; /* identity of the waker we left (owns nothing) */
  int error;
} cx_udp_send_to;

void cx_udp_send_to_init(cx_udp_send_to *s, cx_udp *u, const void *buf,
                         size_t len, const cx_addr *to);
cx_poll cx_udp_send_to_poll(cx_udp_send_to *s, cx_context *cx, ssize_t *result);
void cx_udp_send_to_drop(cx_udp_send_to *s);
extern const cx_future_vtable cx_udp_send_to_vtable; /* output ssize_t */

/* Receives one datagram into buf (at most len bytes) and its sender into
 * *from (may be NULL). Output: ssize_t, the datagram's length (truncated to
 * len; 0 for an empty datagram) or a CX_E* code. */
typedef struct cx_udp_recv_from {
  struct cx__sock *sock;
  void *buf;
  size_t len;
  cx_addr *from;
  cx_waker waiting; /* identity of the waker we left (owns nothing) */
  int error;
} cx_udp_recv_from;

void cx_udp_recv_from_init(cx_udp_recv_from *r, cx_udp *u, void *buf,
                           size_t len, cx_addr *from);
cx_poll cx_udp_recv_from_poll(cx_udp_recv_from *r, cx_context *cx,
                              ssize_t *result);
void cx_udp_recv_from_drop(cx_udp_recv_from *r);
extern const cx_future_vtable cx_udp_recv_from_vtable; /* output ssize_t */

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_NET_UDP_H */
