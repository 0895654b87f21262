/*
 * The cexec servers of W7-W9 (peer "cexec"): the same protocols as the
 * floor (io_limit.c), written on cexec's net/ API the way a user would,
 * coroutine style: one single-threaded executor; one acceptor task; one
 * task per connection, which owns the stream and a 4 KiB read buffer
 * allocated (cx_alloc) when the connection is accepted, exactly like the
 * floor's per-connection buffer.
 *
 * A connection task loops: read (whatever is there, up to the free room of
 * the buffer), answer with write_all (the bytes themselves for echo; one
 * response per complete HTTP request, from the shared response block), read
 * again; at end of stream or on any error it closes the stream and ends.
 */
#define _GNU_SOURCE

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "bench/io_bench.h"
#include "executor/cexec.h"
#include "net/net.h"

/* ---- a connection ---- */

typedef struct conn_task {
  cx_coro co;
  bench_proto proto;
  cx_stream *s; /* owned; NULL once closed */
  char *buf;    /* BENCH_IO_BUF bytes, owned */
  size_t len;   /* HTTP: bytes of an incomplete request kept in buf */
  size_t todo;  /* bytes of the answer still to write */
  size_t chunk; /* bytes of the write in progress */
  ssize_t n;    /* the last read's result */
  int rc;       /* the last write's result */
  cx_stream_read rd;
  cx_stream_write_all wr;
} conn_task;

static void conn_release(conn_task *t) {
  cx_stream_read_drop(&t->rd);
  cx_stream_write_all_drop(&t->wr);
  if (t->s) cx_stream_close(t->s);
  t->s = NULL;
  if (t->buf) cx_free(t->buf, BENCH_IO_BUF, 1);
  t->buf = NULL;
}

static cx_poll conn_poll(void *self, cx_context *cx, void *out) {
  (void)out;
  conn_task *t = self;
  CX_CORO_BEGIN(&t->co);
  for (;;) {
    cx_stream_read_init(&t->rd, t->s, t->buf + t->len, BENCH_IO_BUF - t->len);
    CX_AWAIT(&t->co, cx_stream_read_poll(&t->rd, cx, &t->n));
    if (t->n <= 0) break; /* end of stream, or an error */
    if (t->proto == BENCH_PROTO_ECHO) {
      cx_stream_write_all_init(&t->wr, t->s, t->buf, (size_t)t->n);
      CX_AWAIT(&t->co, cx_stream_write_all_poll(&t->wr, cx, &t->rc));
      if (t->rc != CX_OK) break;
      continue;
    }
    {
      size_t have = t->len + (size_t)t->n, used;
      size_t reqs = bench_http_requests(t->buf, have, &used);
      if (reqs == 0 && have == BENCH_IO_BUF) break; /* request too large */
      memmove(t->buf, t->buf + used, have - used);
      t->len = have - used;
      t->todo = reqs * BENCH_HTTP_RESPONSE_LEN;
    }
    while (t->todo > 0) {
      /* All responses are the same bytes: whole blocks of them. */
      t->chunk = BENCH_HTTP_BLOCK * BENCH_HTTP_RESPONSE_LEN;
      if (t->chunk > t->todo) t->chunk = t->todo;
      cx_stream_write_all_init(&t->wr, t->s, bench_http_block, t->chunk);
      CX_AWAIT(&t->co, cx_stream_write_all_poll(&t->wr, cx, &t->rc));
      if (t->rc != CX_OK) break;
      t->todo -= t->chunk;
    }
    if (t->todo > 0) break;
  }
  conn_release(t);
  CX_RETURN_VOID(&t->co);
  CX_CORO_END(&t->co);
}

static void conn_drop(void *self) {
  conn_release(self);
}

static const cx_future_vtable conn_vtable = {
    .poll = conn_poll,
    .drop = conn_drop,
    .state_size = sizeof(conn_task),
    .state_align = _Alignof(conn_task),
    .output_size = 0,
    .output_align = 1,
};

/* ---- the acceptor ---- */

typedef struct acceptor_task {
  cx_coro co;
  bench_proto proto;
  cx_listener *l; /* borrowed: lives as long as the process */
  cx_executor *ex;
  cx_stream *s; /* the connection just accepted */
  int rc;
  cx_accept acc;
} acceptor_task;

static cx_poll acceptor_poll(void *self, cx_context *cx, void *out) {
  acceptor_task *a = self;
  CX_CORO_BEGIN(&a->co);
  for (;;) {
    cx_accept_init(&a->acc, a->l, &a->s, NULL);
    CX_AWAIT(&a->co, cx_accept_poll(&a->acc, cx, &a->rc));
    if (a->rc != CX_OK) {
      /* Running out of fds or memory is retried inside accept; anything
       * else ends the server. */
      fprintf(stderr, "bench: accept: %s\n", cx_strerror(a->rc));
      CX_RETURN(&a->co, (int *)out, a->rc);
    }
    cx_stream_set_nodelay(a->s, true); /* as the floor does */
    {
      conn_task t = {.proto = a->proto, .s = a->s};
      t.buf = cx_alloc(BENCH_IO_BUF, 1);
      if (t.buf == NULL || cx_spawn(a->ex, &conn_vtable, &t, NULL) != CX_OK) {
        conn_release(&t); /* no memory: refuse this connection */
      }
    }
  }
  CX_CORO_END(&a->co);
}

static void acceptor_drop(void *self) {
  acceptor_task *a = self;
  cx_accept_drop(&a->acc);
}

static const cx_future_vtable acceptor_vtable = {
    .poll = acceptor_poll,
    .drop = acceptor_drop,
    .state_size = sizeof(acceptor_task),
    .state_align = _Alignof(acceptor_task),
    .output_size = sizeof(int),
    .output_align = _Alignof(int),
};

int bench_io_serve_cexec(bench_proto proto, int ready_fd) {
  cx_addr addr;
  cx_listener *l;
  cx_executor *ex;
  int rc = cx_addr_parse("127.0.0.1:0", &addr);
  if (rc == CX_OK) rc = cx_listen(&addr, 4096, &l);
  if (rc != CX_OK) {
    fprintf(stderr, "bench: cx_listen: %s\n", cx_strerror(rc));
    return 1;
  }
  cx_addr bound;
  if (cx_listener_local_addr(l, &bound) != CX_OK ||
      cx_executor_create(NULL, &ex) != CX_OK)
    return 1;
  if (bench_io_ready(ready_fd, cx_addr_port(&bound)) != 0) return 1;
  acceptor_task a = {.proto = proto, .l = l, .ex = ex};
  int out = CX_OK;
  rc = cx_executor_block_on(ex, &acceptor_vtable, &a, &out, sizeof out);
  fprintf(stderr, "bench: the cexec server stopped: %s / %s\n", cx_strerror(rc),
          cx_strerror(out));
  return 1;
}
