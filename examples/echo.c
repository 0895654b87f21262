/*
 * A TCP echo server and client, written with the coroutine macros.
 *
 *   echo server [ADDR]          listens (default 127.0.0.1:0: the kernel
 *                               picks a port), prints "listening on A:P",
 *                               echoes every connection until SIGINT or
 *                               SIGTERM, then shuts down gracefully.
 *   echo client ADDR WORD...    sends each word, prints what comes back.
 *
 * The server is three kinds of task: `serve` accepts connections and spawns
 * one `echo_conn` per connection, which reads and writes back until end of
 * stream; `shutdown` awaits SIGINT/SIGTERM and closes the listener, so the
 * pending accept completes with CX_EBADF and `serve` returns. main then
 * destroys the executor, which drops the connection tasks still running
 * (each closes its stream in its drop).
 *
 * Run: bazel run //examples:echo -- server
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "executor/cexec.h"
#include "io/io.h"
#include "net/net.h"

/* ---- one connection ------------------------------------------------------ */

typedef struct echo_conn {
  cx_coro co;
  cx_stream *s; /* owned: closed in the drop */
  cx_stream_read rd;
  cx_stream_write_all wr;
  char buf[4096];
  ssize_t n;
  int rc;
} echo_conn;

static cx_poll echo_conn_poll(void *self, cx_context *cx, void *out) {
  echo_conn *f = self;
  (void)out;
  CX_CORO_BEGIN(&f->co);
  for (;;) {
    cx_stream_read_init(&f->rd, f->s, f->buf, sizeof f->buf);
    CX_AWAIT(&f->co, cx_stream_read_poll(&f->rd, cx, &f->n));
    if (f->n <= 0) break; /* 0: the client closed; < 0: an error */
    cx_stream_write_all_init(&f->wr, f->s, f->buf, (size_t)f->n);
    CX_AWAIT(&f->co, cx_stream_write_all_poll(&f->wr, cx, &f->rc));
    if (f->rc != CX_OK) break;
  }
  CX_CORO_END(&f->co);
}

static void echo_conn_drop(void *self) {
  echo_conn *f = self;
  cx_stream_read_drop(&f->rd);
  cx_stream_write_all_drop(&f->wr);
  cx_stream_close(f->s);
}

static const cx_future_vtable echo_conn_vt = {
    .poll = echo_conn_poll,
    .drop = echo_conn_drop,
    .state_size = sizeof(echo_conn),
    .state_align = _Alignof(echo_conn),
};

/* ---- the accept loop
 * ------------------------------------------------------------ */

typedef struct serve {
  cx_coro co;
  cx_listener *l; /* borrowed: `shutdown` owns and closes it */
  cx_accept accept;
  cx_stream *conn;
  int rc;
} serve;

static cx_poll serve_poll(void *self, cx_context *cx, void *out) {
  serve *f = self;
  (void)out;
  CX_CORO_BEGIN(&f->co);
  for (;;) {
    cx_accept_init(&f->accept, f->l, &f->conn, NULL);
    CX_AWAIT(&f->co, cx_accept_poll(&f->accept, cx, &f->rc));
    if (f->rc != CX_OK) break; /* CX_EBADF: closed by `shutdown` */
    echo_conn c = {.s = f->conn};
    if (cx_spawn(cx->executor, &echo_conn_vt, &c, NULL) != CX_OK)
      cx_stream_close(f->conn); /* no memory: refuse this one */
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

/* ---- graceful shutdown: SIGINT or SIGTERM closes the listener ---------------
 * The pending accept then wakes with CX_EBADF and `serve` returns. */

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

static int run_server(const char *where) {
  shutdown_task sd = {.l = NULL};
  /* First, before any thread exists: blocks SIGINT and SIGTERM, which then
   * arrive through the signal future (io/io.h). */
  int rc = cx_signal_init(&sd.sig, NULL);
  cx_addr addr;
  if (rc == CX_OK) rc = cx_addr_parse(where, &addr);
  if (rc == CX_OK) rc = cx_listen(&addr, 128, &sd.l);
  cx_addr bound;
  char text[CX_ADDR_STRLEN];
  if (rc == CX_OK) rc = cx_listener_local_addr(sd.l, &bound);
  if (rc == CX_OK) rc = cx_addr_format(&bound, text, sizeof text);
  cx_executor *ex = NULL;
  if (rc == CX_OK) rc = cx_executor_create(NULL, &ex);
  serve s = {.l = sd.l};
  if (rc == CX_OK) rc = cx_spawn(ex, &shutdown_vt, &sd, NULL);
  if (rc != CX_OK) {
    fprintf(stderr, "echo server %s: %s\n", where, cx_strerror(rc));
    shutdown_drop(&sd);
    cx_executor_destroy(ex);
    return 1;
  }
  printf("listening on %s\n", text);
  fflush(stdout);
  rc = cx_executor_block_on(ex, &serve_vt, &s, NULL, 0);
  cx_executor_destroy(ex); /* drops the connections still open */
  printf("bye\n");
  return rc == CX_OK ? 0 : 1;
}

/* ---- the client -------------------------------------------------------------
 */

typedef struct client {
  cx_coro co;
  cx_addr addr;
  char **words;
  int n, i, rc;
  cx_connect conn;
  cx_stream *s;
  cx_stream_write_all wr;
  cx_stream_read_exact rd;
  char buf[256];
} client;

static cx_poll client_poll(void *self, cx_context *cx, void *out) {
  client *f = self;
  CX_CORO_BEGIN(&f->co);
  cx_connect_init(&f->conn, &f->addr, &f->s);
  CX_AWAIT(&f->co, cx_connect_poll(&f->conn, cx, &f->rc));
  if (f->rc != CX_OK) CX_RETURN(&f->co, (int *)out, f->rc);
  for (f->i = 0; f->i < f->n; f->i++) {
    size_t len = strlen(f->words[f->i]);
    if (len > sizeof f->buf) len = sizeof f->buf;
    cx_stream_write_all_init(&f->wr, f->s, f->words[f->i], len);
    CX_AWAIT(&f->co, cx_stream_write_all_poll(&f->wr, cx, &f->rc));
    if (f->rc != CX_OK) break;
    cx_stream_read_exact_init(&f->rd, f->s, f->buf, len);
    CX_AWAIT(&f->co, cx_stream_read_exact_poll(&f->rd, cx, &f->rc));
    if (f->rc != CX_OK) break;
    printf("%.*s\n", (int)cx_stream_read_exact_count(&f->rd), f->buf);
  }
  CX_RETURN(&f->co, (int *)out, f->rc);
  CX_CORO_END(&f->co);
}

static void client_drop(void *self) {
  client *f = self;
  cx_connect_drop(&f->conn);
  cx_stream_write_all_drop(&f->wr);
  cx_stream_read_exact_drop(&f->rd);
  cx_stream_close(f->s);
}

static const cx_future_vtable client_vt = {
    .poll = client_poll,
    .drop = client_drop,
    .state_size = sizeof(client),
    .state_align = _Alignof(client),
    .output_size = sizeof(int),
    .output_align = _Alignof(int),
};

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "server") == 0)
    return run_server(argc >= 3 ? argv[2] : "127.0.0.1:0");
  if (argc >= 3 && strcmp(argv[1], "client") == 0) {
    client c = {.words = argv + 3, .n = argc - 3};
    if (cx_addr_parse(argv[2], &c.addr) != CX_OK) {
      fprintf(stderr, "bad address %s (numeric only: 127.0.0.1:80)\n", argv[2]);
      return 2;
    }
    int result = CX_OK;
    int rc = cx_block_on(&client_vt, &c, &result, sizeof result);
    if (rc == CX_OK) rc = result;
    if (rc != CX_OK) fprintf(stderr, "echo client: %s\n", cx_strerror(rc));
    return rc == CX_OK ? 0 : 1;
  }
  fprintf(stderr, "usage: echo server [ADDR] | echo client ADDR WORD...\n");
  return 2;
}
