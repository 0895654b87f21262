/*
 * The floor of W7-W9 ("cexec_limit"): a raw edge-triggered epoll server in
 * C, one thread, no executor, no futures, no wakers. It serves the same two
 * protocols as the cexec server (io_cexec.c) with the same per-connection
 * state: a 4 KiB read buffer allocated when the connection is accepted.
 *
 * Each connection is registered once for EPOLLIN | EPOLLOUT | EPOLLRDHUP,
 * edge-triggered, and on every event it is driven until the kernel says
 * EAGAIN or a read comes back short: read, answer (echo the bytes; or one
 * response per complete HTTP request), read again. A write that does not
 * complete (full send buffer) leaves the rest pending and reading stops until
 * the writable edge comes; for echo the pending bytes are still in the read
 * buffer, for HTTP they are a count of responses (all responses are the same
 * bytes).
 */
#define _GNU_SOURCE

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/io_bench.h"

typedef struct lconn {
  int fd;
  uint32_t len;      /* HTTP: bytes of an incomplete request kept in buf */
  uint32_t pend_off; /* echo: bytes of buf[pend_off..pend_end) not sent */
  uint32_t pend_end;
  size_t pend_http; /* HTTP: response bytes still to send */
  char *buf;        /* BENCH_IO_BUF bytes, allocated at accept */
} lconn;

static void lconn_close(lconn *c) {
  close(c->fd); /* also removes it from the epoll set */
  free(c->buf);
  free(c);
}

/* Writes what is pending. 1: all sent; 0: EAGAIN (wait for EPOLLOUT);
 * -1: the connection failed. */
static int flush_echo(lconn *c) {
  while (c->pend_off < c->pend_end) {
    ssize_t n = write(c->fd, c->buf + c->pend_off, c->pend_end - c->pend_off);
    if (n > 0) {
      c->pend_off += (uint32_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return 0;
    } else {
      return -1;
    }
  }
  c->pend_off = c->pend_end = 0;
  return 1;
}

static int flush_http(lconn *c) {
  const size_t block = BENCH_HTTP_BLOCK * BENCH_HTTP_RESPONSE_LEN;
  while (c->pend_http > 0) {
    /* Responses are all the same bytes: send from the shared block, at the
     * right phase if an earlier write stopped inside a response. */
    size_t phase =
        (BENCH_HTTP_RESPONSE_LEN - c->pend_http % BENCH_HTTP_RESPONSE_LEN) %
        BENCH_HTTP_RESPONSE_LEN;
    size_t want = c->pend_http < block - phase ? c->pend_http : block - phase;
    ssize_t n = write(c->fd, bench_http_block + phase, want);
    if (n > 0) {
      c->pend_http -= (size_t)n;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      return 0;
    } else {
      return -1;
    }
  }
  return 1;
}

/* Drives c until EAGAIN, or until a short read has been answered: a read
 * that returned less than it asked for drained the socket, and any byte
 * that arrives later makes a new edge (Linux signals one per arrival), so
 * reading again would only fetch the EAGAIN. cexec's net/ does the same.
 * Each call (each edge) reads at least once. Returns -1 when c must be
 * closed. */
static int drive(lconn *c, bench_proto proto) {
  int drained = 0;
  for (;;) {
    int f = proto == BENCH_PROTO_ECHO ? flush_echo(c) : flush_http(c);
    if (f <= 0) return f; /* blocked on writing, or failed */
    if (drained) return 0;
    size_t room = BENCH_IO_BUF - c->len;
    ssize_t n = read(c->fd, c->buf + c->len, room);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 0;
    if (n <= 0) return -1; /* end of stream or error */
    drained = (size_t)n < room;
    if (proto == BENCH_PROTO_ECHO) {
      c->pend_off = 0;
      c->pend_end = (uint32_t)n;
    } else {
      size_t have = c->len + (size_t)n, used;
      size_t reqs = bench_http_requests(c->buf, have, &used);
      if (used < have && reqs == 0 && have == BENCH_IO_BUF)
        return -1; /* one request larger than the buffer: refuse */
      memmove(c->buf, c->buf + used, have - used);
      c->len = (uint32_t)(have - used);
      c->pend_http = reqs * BENCH_HTTP_RESPONSE_LEN;
    }
  }
}

int bench_io_serve_limit(bench_proto proto, int ready_fd) {
  int port, lfd = bench_io_listen(&port);
  if (lfd < 0) return perror("listen"), 1;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) return perror("epoll_create1"), 1;
  /* The listener's event carries NULL: connections carry their lconn. */
  struct epoll_event lev = {.events = EPOLLIN | EPOLLET, .data.ptr = NULL};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) != 0)
    return perror("epoll_ctl"), 1;
  if (bench_io_ready(ready_fd, port) != 0) return 1;
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return perror("epoll_wait"), 1;
    }
    for (int i = 0; i < n; i++) {
      lconn *c = evs[i].data.ptr;
      if (c == NULL) {
        for (;;) { /* accept until EAGAIN (edge-triggered) */
          int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EAGAIN) break;
            perror("accept4"); /* EMFILE and the like: drop this edge */
            break;
          }
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          lconn *nc = calloc(1, sizeof *nc);
          char *buf = malloc(BENCH_IO_BUF);
          if (nc == NULL || buf == NULL) {
            free(nc);
            free(buf);
            close(fd);
            continue;
          }
          nc->fd = fd;
          nc->buf = buf;
          struct epoll_event ev = {
              .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
              .data.ptr = nc};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
            lconn_close(nc);
            continue;
          }
          /* Registration reports the current state as an edge: nothing to
           * do until it comes. */
        }
        continue;
      }
      if (drive(c, proto) < 0) lconn_close(c);
    }
  }
}
