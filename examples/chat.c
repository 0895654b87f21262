/*
 * A line-based chat server: every line a client sends goes to every other
 * client, as "<id>: <line>". Broadcast runs through async channels
 * (executor/async_channel.h):
 *
 *   client task --JOIN/LINE/LEAVE--> [hub channel] --> hub task
 *   hub task --"<id>: line"--> [each client's inbox] --> that client task
 *
 * A client task waits on two things at once with cx_select: bytes from its
 * socket, or a line in its inbox. The hub never waits on a slow client: it
 * try_sends, and a client whose inbox is full misses that line.
 *
 *   chat [ADDR]     default 127.0.0.1:0; prints "listening on A:P";
 *                   SIGINT / SIGTERM shut it down.
 *
 * Try it: bazel run //examples:chat, then `nc 127.0.0.1 PORT` twice.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "executor/cexec.h"
#include "io/io.h"
#include "net/net.h"

#define MAX_CLIENTS 64
#define LINE_MAX_LEN 256

enum { JOIN, LINE, LEAVE };

typedef struct hub_msg {
  int kind, id;
  cx_achan_tx *inbox; /* JOIN: where the hub sends this client's lines */
  char text[LINE_MAX_LEN];
} hub_msg;

typedef struct line {
  char text[LINE_MAX_LEN + 16];
} line;

/* A JOIN the hub never received still owns its inbox sender. */
static void hub_msg_drop(void *item) {
  hub_msg *m = item;
  if (m->kind == JOIN) cx_achan_tx_drop(m->inbox);
}

/* ---- the hub ---------------------------------------------------------------
 */

typedef struct hub {
  cx_coro co;
  cx_achan_rx *rx; /* owned */
  cx_achan_tx *clients[MAX_CLIENTS + 1];
  cx_achan_recv recv;
  hub_msg msg;
  int rc;
} hub;

static void broadcast(hub *f) {
  line l;
  snprintf(l.text, sizeof l.text, "%d: %s\n", f->msg.id, f->msg.text);
  for (int i = 1; i <= MAX_CLIENTS; i++)
    if (f->clients[i] != NULL && i != f->msg.id)
      cx_achan_try_send(f->clients[i], &l); /* full: this one misses it */
}

static cx_poll hub_poll(void *self, cx_context *cx, void *out) {
  hub *f = self;
  (void)out;
  CX_CORO_BEGIN(&f->co);
  for (;;) {
    cx_achan_recv_init(&f->recv, f->rx, &f->msg);
    CX_AWAIT(&f->co, cx_achan_recv_poll(&f->recv, cx, &f->rc));
    if (f->rc != CX_OK) break; /* every sender gone */
    if (f->msg.kind == JOIN) {
      cx_achan_tx_drop(f->clients[f->msg.id]); /* an id reused: 64 max */
      f->clients[f->msg.id] = f->msg.inbox;
    } else if (f->msg.kind == LINE) {
      broadcast(f);
    } else {
      cx_achan_tx_drop(f->clients[f->msg.id]); /* its inbox ends */
      f->clients[f->msg.id] = NULL;
    }
  }
  CX_CORO_END(&f->co);
}

static void hub_drop(void *self) {
  hub *f = self;
  cx_achan_recv_drop(&f->recv);
  for (int i = 0; i <= MAX_CLIENTS; i++) cx_achan_tx_drop(f->clients[i]);
  cx_achan_rx_drop(f->rx);
}

static const cx_future_vtable hub_vt = {
    .poll = hub_poll,
    .drop = hub_drop,
    .state_size = sizeof(hub),
    .state_align = _Alignof(hub),
};

/* ---- one client
 * -------------------------------------------------------------- */

typedef struct client {
  cx_coro co;
  int id;
  cx_stream *s;       /* owned */
  cx_achan_tx *hub;   /* owned (a clone) */
  cx_achan_rx *inbox; /* owned */
  cx_achan_send send; /* to the hub */
  hub_msg msg;
  cx_stream_write_all wr;
  line out;
  /* the select: read from the socket, or a line from the inbox */
  cx_stream_read rd;
  cx_achan_recv recv;
  cx_future arms[2];
  void *outs[2];
  cx_select sel;
  size_t winner;
  ssize_t n;
  int rc, recv_rc;
  char buf[LINE_MAX_LEN];
  size_t used;
  char *nl;
} client;

static cx_poll client_poll(void *self, cx_context *cx, void *out) {
  client *f = self;
  (void)out;
  CX_CORO_BEGIN(&f->co);
  { /* join: the hub gets our inbox's sender */
    cx_achan_tx *inbox_tx;
    if (cx_achan_create(sizeof(line), 32, NULL, &inbox_tx, &f->inbox) != CX_OK)
      CX_RETURN_VOID(&f->co);
    f->msg = (hub_msg){.kind = JOIN, .id = f->id, .inbox = inbox_tx};
  }
  cx_achan_send_init(&f->send, f->hub, &f->msg);
  CX_AWAIT(&f->co, cx_achan_send_poll(&f->send, cx, &f->rc));
  if (f->rc != CX_OK) { /* the hub is gone: the JOIN was not taken */
    cx_achan_tx_drop(f->msg.inbox);
    CX_RETURN_VOID(&f->co);
  }
  snprintf(f->out.text, sizeof f->out.text, "welcome %d\n", f->id);
  cx_stream_write_all_init(&f->wr, f->s, f->out.text, strlen(f->out.text));
  CX_AWAIT(&f->co, cx_stream_write_all_poll(&f->wr, cx, &f->rc));
  while (f->rc == CX_OK) {
    cx_stream_read_init(&f->rd, f->s, f->buf + f->used,
                        sizeof f->buf - 1 - f->used);
    cx_achan_recv_init(&f->recv, f->inbox, &f->out);
    f->arms[0] = cx_future_of(&cx_stream_read_vtable, &f->rd);
    f->arms[1] = cx_future_of(&cx_achan_recv_vtable, &f->recv);
    f->outs[0] = &f->n;
    f->outs[1] = &f->recv_rc;
    cx_select_init(&f->sel, f->arms, f->outs, 2);
    CX_AWAIT(&f->co, cx_select_poll(&f->sel, cx, &f->winner));
    if (f->winner == 1) { /* a line for us */
      if (f->recv_rc != CX_OK) break;
      cx_stream_write_all_init(&f->wr, f->s, f->out.text, strlen(f->out.text));
      CX_AWAIT(&f->co, cx_stream_write_all_poll(&f->wr, cx, &f->rc));
      continue;
    }
    if (f->n <= 0) break; /* the client left */
    f->used += (size_t)f->n;
    f->buf[f->used] = '\0';
    /* Every complete line goes to the hub; a line too long is cut. */
    while ((f->nl = strchr(f->buf, '\n')) != NULL ||
           f->used == sizeof f->buf - 1) {
      size_t len = f->nl ? (size_t)(f->nl - f->buf) : f->used;
      f->msg = (hub_msg){.kind = LINE, .id = f->id};
      memcpy(f->msg.text, f->buf, len);
      if (len > 0 && f->msg.text[len - 1] == '\r') len--;
      f->msg.text[len] = '\0';
      size_t eaten = f->nl ? len + 1 + (f->buf[len] == '\r') : f->used;
      memmove(f->buf, f->buf + eaten, f->used - eaten + 1);
      f->used -= eaten;
      cx_achan_send_init(&f->send, f->hub, &f->msg);
      CX_AWAIT(&f->co, cx_achan_send_poll(&f->send, cx, &f->rc));
      if (f->rc != CX_OK) break;
    }
  }
  f->msg = (hub_msg){.kind = LEAVE, .id = f->id};
  cx_achan_send_init(&f->send, f->hub, &f->msg);
  CX_AWAIT(&f->co, cx_achan_send_poll(&f->send, cx, &f->rc));
  CX_CORO_END(&f->co);
}

static void client_drop(void *self) {
  client *f = self;
  cx_select_drop(&f->sel);
  cx_achan_send_drop(&f->send);
  cx_stream_write_all_drop(&f->wr);
  cx_achan_rx_drop(f->inbox);
  cx_achan_tx_drop(f->hub);
  cx_stream_close(f->s);
}

static const cx_future_vtable client_vt = {
    .poll = client_poll,
    .drop = client_drop,
    .state_size = sizeof(client),
    .state_align = _Alignof(client),
};

/* ---- accept loop and shutdown (as in examples/echo.c)
 * ------------------------ */

typedef struct serve {
  cx_coro co;
  cx_listener *l;   /* borrowed from `shutdown_task` */
  cx_achan_tx *hub; /* owned */
  cx_accept accept;
  cx_stream *conn;
  int rc, next_id;
} serve;

static cx_poll serve_poll(void *self, cx_context *cx, void *out) {
  serve *f = self;
  (void)out;
  CX_CORO_BEGIN(&f->co);
  for (;;) {
    cx_accept_init(&f->accept, f->l, &f->conn, NULL);
    CX_AWAIT(&f->co, cx_accept_poll(&f->accept, cx, &f->rc));
    if (f->rc != CX_OK) break; /* CX_EBADF: the listener was closed */
    client c = {.id = f->next_id % MAX_CLIENTS + 1, .s = f->conn};
    f->next_id++;
    if (cx_achan_tx_clone(f->hub, &c.hub) != CX_OK ||
        cx_spawn(cx->executor, &client_vt, &c, NULL) != CX_OK)
      client_drop(&c);
  }
  CX_CORO_END(&f->co);
}

static void serve_drop(void *self) {
  serve *f = self;
  cx_accept_drop(&f->accept);
  cx_achan_tx_drop(f->hub);
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
  shutdown_task sd = {.l = NULL};
  static hub h; /* 64 inbox pointers and a message: keep it off the stack */
  serve s = {.next_id = 0};
  int rc = cx_signal_init(&sd.sig, NULL); /* first: blocks SIGINT/SIGTERM */
  cx_addr addr, bound;
  char text[CX_ADDR_STRLEN];
  cx_executor *ex = NULL;
  if (rc == CX_OK) rc = cx_addr_parse(where, &addr);
  if (rc == CX_OK) rc = cx_listen(&addr, 128, &sd.l);
  if (rc == CX_OK) rc = cx_listener_local_addr(sd.l, &bound);
  if (rc == CX_OK) rc = cx_addr_format(&bound, text, sizeof text);
  if (rc == CX_OK)
    rc = cx_achan_create(sizeof(hub_msg), 256, hub_msg_drop, &s.hub, &h.rx);
  if (rc == CX_OK) rc = cx_executor_create(NULL, &ex);
  if (rc == CX_OK) rc = cx_spawn(ex, &hub_vt, &h, NULL);
  if (rc == CX_OK) h.rx = NULL; /* the hub task owns it now */
  s.l = sd.l;
  if (rc == CX_OK) rc = cx_spawn(ex, &shutdown_vt, &sd, NULL);
  if (rc != CX_OK) {
    fprintf(stderr, "chat %s: %s\n", where, cx_strerror(rc));
    cx_achan_tx_drop(s.hub);
    cx_achan_rx_drop(h.rx);
    cx_executor_destroy(ex);
    shutdown_drop(&sd);
    return 1;
  }
  printf("listening on %s\n", text);
  fflush(stdout);
  rc = cx_executor_block_on(ex, &serve_vt, &s, NULL, 0);
  cx_executor_destroy(ex); /* drops the clients and the hub */
  printf("bye\n");
  return rc == CX_OK ? 0 : 1;
}
