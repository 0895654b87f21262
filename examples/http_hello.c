/*
 * An HTTP/1.1 "hello" server: every request gets
 *
 *   HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!
 *
 * with keep-alive (a connection serves requests until the client closes it
 * or sends "Connection: close") and pipelining (all the requests that
 * arrived together are answered with one write). GET-style requests only:
 * a request body would be taken for the next request.
 *
 *   http_hello [ADDR]    default 127.0.0.1:0; prints "listening on A:P";
 *                        SIGINT / SIGTERM shut it down.
 *
 * Same shape as examples/echo.c: an accept loop, a task per connection, a
 * shutdown task that closes the listener on a signal.
 *
 * Run: bazel run //examples:http_hello -- 127.0.0.1:8080
 */
#define _POSIX_C_SOURCE 200809L

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "executor/cexec.h"
#include "io/io.h"
#include "net/net.h"

static const char kResponse[] =
    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, world!";
#define RESPONSE_LEN (sizeof kResponse - 1)

/* The shortest request, "GET / HTTP/1.1\r\n\r\n", is 18 bytes: a full read
 * buffer holds at most this many. */
#define MAX_PIPELINED (4096 / 18 + 1)

/* Where the header block of the request at buf[0..len) ends (just past
 * "\r\n\r\n"), or 0 if it is not all there yet. */
static size_t header_end(const char *buf, size_t len) {
  for (size_t i = 3; i < len; i++)
    if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' &&
        buf[i - 3] == '\r')
      return i + 1;
  return 0;
}

/* True if the headers ask to close ("Connection: close", any case). */
static int wants_close(const char *h, size_t len) {
  static const char kNeedle[] = "connection: close";
  size_t n = sizeof kNeedle - 1;
  for (size_t i = 0; i + n <= len; i++) {
    size_t j = 0;
    while (j < n && tolower((unsigned char)h[i + j]) == kNeedle[j]) j++;
    if (j == n) return 1;
  }
  return 0;
}

/* ---- one connection ------------------------------------------------------ */

typedef struct http_conn {
  cx_coro co;
  cx_stream *s; /* owned */
  cx_stream_read rd;
  cx_stream_write_all wr;
  char in[4096];
  size_t used;
  char out[MAX_PIPELINED * RESPONSE_LEN];
  size_t out_len;
  int closing;
  ssize_t n;
  int rc;
} http_conn;

/* Answers every complete request in f->in, keeps the incomplete rest. */
static void take_requests(http_conn *f) {
  size_t start = 0, end;
  f->out_len = 0;
  while (!f->closing &&
         (end = header_end(f->in + start, f->used - start)) != 0) {
    memcpy(f->out + f->out_len, kResponse, RESPONSE_LEN);
    f->out_len += RESPONSE_LEN;
    f->closing = wants_close(f->in + start, end);
    start += end;
  }
  memmove(f->in, f->in + start, f->used - start);
  f->used -= start;
}

static cx_poll http_conn_poll(void *self, cx_context *cx, void *out) {
  http_conn *f = self;
  (void)out;
  CX_CORO_BEGIN(&f->co);
  while (!f->closing) {
    if (f->used == sizeof f->in) break; /* a header over 4 KiB: drop it */
    cx_stream_read_init(&f->rd, f->s, f->in + f->used, sizeof f->in - f->used);
    CX_AWAIT(&f->co, cx_stream_read_poll(&f->rd, cx, &f->n));
    if (f->n <= 0) break;
    f->used += (size_t)f->n;
    take_requests(f);
    if (f->out_len == 0) continue; /* only part of a request so far */
    cx_stream_write_all_init(&f->wr, f->s, f->out, f->out_len);
    CX_AWAIT(&f->co, cx_stream_write_all_poll(&f->wr, cx, &f->rc));
    if (f->rc != CX_OK) break;
  }
  CX_CORO_END(&f->co);
}

static void http_conn_drop(void *self) {
  http_conn *f = self;
  cx_stream_read_drop(&f->rd);
  cx_stream_write_all_drop(&f->wr);
  cx_stream_close(f->s);
}

static const cx_future_vtable http_conn_vt = {
    .poll = http_conn_poll,
    .drop = http_conn_drop,
    .state_size = sizeof(http_conn),
    .state_align = _Alignof(http_conn),
};

/* ---- accept loop and shutdown (as in examples/echo.c) ----------------------
 */

typedef struct serve {
  cx_coro co;
  cx_listener *l; /* borrowed from `shutdown_task` */
  cx_accept accept;
  cx_stream *conn;
  http_conn init; /* the zeroed first state of every connection task */
  int rc;
} serve;

static cx_poll serve_poll(void *self, cx_context *cx, void *out) {
  serve *f = self;
  (void)out;
  CX_CORO_BEGIN(&f->co);
  for (;;) {
    cx_accept_init(&f->accept, f->l, &f->conn, NULL);
    CX_AWAIT(&f->co, cx_accept_poll(&f->accept, cx, &f->rc));
    if (f->rc != CX_OK) break; /* CX_EBADF: the listener was closed */
    cx_stream_set_nodelay(f->conn, true);
    f->init.s = f->conn;
    if (cx_spawn(cx->executor, &http_conn_vt, &f->init, NULL) != CX_OK)
      cx_stream_close(f->conn);
  }
  CX_CORO_END(&f->co);
}

static void serve_drop(void *self) {
  cx_accept_drop(&((serve *)self)->accept);
}

static const cx_future_vtable serve_vt = {
    .poll = serve_poll,
    .drop = serve_drop,
    .state_size = sizeof(serve),
    .state_align = _Alignof(serve),
};

typedef struct shutdown_task {
  cx_signal sig;
  cx_listener *l; /* owned */
  int signo;
} shutdown_task;

static cx_poll shutdown_poll(void *self, cx_context *cx, void *out) {
  shutdown_task *f = self;
  (void)out;
  if (cx_signal_poll(&f->sig, cx, &f->signo) == CX_PENDING) return CX_PENDING;
  printf("signal %d: shutting down\n", f->signo);
  cx_listener_close(f->l);
  f->l = NULL;
  return CX_READY;
}

static void shutdown_drop(void *self) {
  shutdown_task *f = self;
  cx_signal_drop(&f->sig);
  cx_listener_close(f->l);
}

static const cx_future_vtable shutdown_vt = {
    .poll = shutdown_poll,
    .drop = shutdown_drop,
    .state_size = sizeof(shutdown_task),
    .state_align = _Alignof(shutdown_task),
};

int main(int argc, char **argv) {
  const char *where = argc >= 2 ? argv[1] : "127.0.0.1:0";
  static shutdown_task sd;
  static serve s; /* large (a connection's buffers): not on the stack */
  int rc = cx_signal_init(&sd.sig, NULL); /* first: blocks SIGINT/SIGTERM */
  cx_addr addr, bound;
  char text[CX_ADDR_STRLEN];
  if (rc == CX_OK) rc = cx_addr_parse(where, &addr);
  if (rc == CX_OK) rc = cx_listen(&addr, 1024, &sd.l);
  if (rc == CX_OK) rc = cx_listener_local_addr(sd.l, &bound);
  if (rc == CX_OK) rc = cx_addr_format(&bound, text, sizeof text);
  cx_executor *ex = NULL;
  if (rc == CX_OK) rc = cx_executor_create(NULL, &ex);
  s.l = sd.l;
  if (rc == CX_OK) rc = cx_spawn(ex, &shutdown_vt, &sd, NULL);
  if (rc != CX_OK) {
    fprintf(stderr, "http_hello %s: %s\n", where, cx_strerror(rc));
    shutdown_drop(&sd);
    cx_executor_destroy(ex);
    return 1;
  }
  printf("listening on %s\n", text);
  fflush(stdout);
  rc = cx_executor_block_on(ex, &serve_vt, &s, NULL, 0);
  cx_executor_destroy(ex);
  printf("bye\n");
  return rc == CX_OK ? 0 : 1;
}
