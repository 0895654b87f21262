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

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "bench/io_bench.h"
#include "executor/cexec.h"
#include "net/net.h"

/* ---- a connection ---- */

/* Kept small: W9 measures it (at most 112 bytes keeps the task in a
 * 176-byte malloc chunk; 120 takes it to 192). The read and the write are never
 * pending at the same time, so they share their storage; `op` says which one is
 * initialised (for drop). */
typedef struct conn_task {
  cx_coro co;
  cx_stream *s;  /* owned; NULL once closed */
  char *buf;     /* BENCH_IO_BUF bytes, owned */
  uint32_t todo; /* HTTP: bytes of the answer still to write */
  uint16_t len;  /* HTTP: bytes of an incomplete request kept in buf */
  uint8_t proto; /* bench_proto */
  uint8_t op;    /* CONN_OP_*: which member of io is initialised */
  union {
    cx_stream_read rd;
    cx_stream_write_all wr;
  } io;
} conn_task;

_Static_assert(BENCH_IO_BUF <= UINT16_MAX, "conn_task.len is 16 bits");

enum { CONN_OP_NONE, CONN_OP_READ, CONN_OP_WRITE };

static void conn_op_drop(conn_task *t) {
  if (t->op == CONN_OP_READ) cx_stream_read_drop(&t->io.rd);
  if (t->op == CONN_OP_WRITE) cx_stream_write_all_drop(&t->io.wr);
  t->op = CONN_OP_NONE;
}

static void conn_release(conn_task *t) {
  conn_op_drop(t);
  if (t->s) cx_stream_close(t->s);
  t->s = NULL;
  if (t->buf) cx_free(t->buf, BENCH_IO_BUF, 1);
  t->buf = NULL;
}

/* Starts writing buf[0..len). */
static void conn_write(conn_task *t, const char *buf, size_t len) {
  conn_op_drop(t);
  cx_stream_write_all_init(&t->io.wr, t->s, buf, len);
  t->op = CONN_OP_WRITE;
}

static cx_poll conn_poll(void *self, cx_context *cx, void *out) {
  (void)out;
  conn_task *t = self;
  /* The futures' results are used only in the poll that produced them
   * (right after the await), so they need not live in the state. */
  ssize_t n = 0;
  int rc = CX_OK;
  CX_CORO_BEGIN(&t->co);
  for (;;) {
    conn_op_drop(t);
    cx_stream_read_init(&t->io.rd, t->s, t->buf + t->len,
                        BENCH_IO_BUF - t->len);
    t->op = CONN_OP_READ;
    CX_AWAIT(&t->co, cx_stream_read_poll(&t->io.rd, cx, &n));
    if (n <= 0) break; /* end of stream, or an error */
    if (t->proto == BENCH_PROTO_ECHO) {
      conn_write(t, t->buf, (size_t)n);
      CX_AWAIT(&t->co, cx_stream_write_all_poll(&t->io.wr, cx, &rc));
      if (rc != CX_OK) break;
      continue;
    }
    {
      size_t have = t->len + (size_t)n, used;
      size_t reqs = bench_http_requests(t->buf, have, &used);
      if (reqs == 0 && have == BENCH_IO_BUF) break; /* request too large */
      memmove(t->buf, t->buf + used, have - used);
      t->len = (uint16_t)(have - used); /* < BENCH_IO_BUF */
      t->todo = (uint32_t)(reqs * BENCH_HTTP_RESPONSE_LEN);
    }
    while (t->todo > 0) {
      /* All responses are the same bytes: whole blocks of them. */
      conn_write(t, bench_http_block,
                 t->todo < BENCH_HTTP_BLOCK * BENCH_HTTP_RESPONSE_LEN
                     ? t->todo
                     : BENCH_HTTP_BLOCK * BENCH_HTTP_RESPONSE_LEN);
      CX_AWAIT(&t->co, cx_stream_write_all_poll(&t->io.wr, cx, &rc));
      if (rc != CX_OK) break;
      t->todo -= (uint32_t)cx_stream_write_all_count(&t->io.wr);
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
      conn_task t = {.proto = (uint8_t)a->proto, .s = a->s};
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
