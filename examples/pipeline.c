/*
 * A pipeline of three tasks connected by async channels, written with the
 * coroutine macros (executor/coro.h):
 *
 *   produce --[ch1: cap 2]--> square --[ch2: cap 1]--> sum
 *
 * `produce` sends 1..10, pausing now and then, and then stalls (it has
 * "lost its input") without closing its channel. `square` receives each
 * number under a timeout (cx_timeout around a channel receive): when nothing
 * arrives for 50 ms it gives up, drops its channel ends, and so shuts the
 * pipeline down: `sum` sees the disconnect (CX_EPIPE) after draining, and
 * the stalled producer, whose next send finds the receiver gone, ends with
 * CX_EPIPE too.
 *
 * Each task owns the channel ends it uses (dropped in its drop function)
 * and keeps every value that lives across an await in its state struct.
 *
 * Run: bazel run //examples:pipeline
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include "executor/cexec.h"

#define MS CX_NSEC_PER_MSEC

/* ---- stage 1: produce ---------------------------------------------------- */

typedef struct produce {
  cx_coro co;
  cx_achan_tx *out;
  cx_achan_send send;
  cx_sleep nap;
  int i, item, rc;
} produce;

static cx_poll produce_poll(void *self, cx_context *cx, void *output) {
  produce *f = self;
  CX_CORO_BEGIN(&f->co);
  for (f->i = 1; f->i <= 10; f->i++) {
    if (f->i % 4 == 0) { /* a pause now and then */
      cx_sleep_init_for(&f->nap, 5 * MS);
      CX_AWAIT(&f->co, cx_sleep_poll(&f->nap, cx, &f->rc));
    }
    f->item = f->i;
    cx_achan_send_init(&f->send, f->out, &f->item);
    CX_AWAIT(&f->co, cx_achan_send_poll(&f->send, cx, &f->rc));
    if (f->rc != CX_OK) CX_RETURN(&f->co, (int *)output, f->rc);
  }
  /* Stall: keep the channel open, send nothing for a long time. */
  cx_sleep_init_for(&f->nap, 200 * MS);
  CX_AWAIT(&f->co, cx_sleep_poll(&f->nap, cx, &f->rc));
  /* Try once more: the consumer gave up meanwhile. */
  f->item = 11;
  cx_achan_send_init(&f->send, f->out, &f->item);
  CX_AWAIT(&f->co, cx_achan_send_poll(&f->send, cx, &f->rc));
  CX_RETURN(&f->co, (int *)output, f->rc);
  CX_CORO_END(&f->co);
}

static void produce_drop(void *self) {
  produce *f = self;
  cx_achan_send_drop(&f->send);
  cx_sleep_drop(&f->nap);
  cx_achan_tx_drop(f->out);
}

static const cx_future_vtable produce_vtable = {
    .poll = produce_poll,
    .drop = produce_drop,
    .state_size = sizeof(produce),
    .state_align = _Alignof(produce),
    .output_size = sizeof(int)};

/* ---- stage 2: square, with an idle timeout --------------------------------
 */

typedef struct square {
  cx_coro co;
  cx_achan_rx *in;
  cx_achan_tx *out;
  cx_achan_recv recv;
  cx_timeout timeout; /* wraps `recv` */
  cx_achan_send send;
  int item, recv_rc, rc, squared;
} square;

static cx_poll square_poll(void *self, cx_context *cx, void *output) {
  square *f = self;
  CX_CORO_BEGIN(&f->co);
  for (;;) {
    cx_achan_recv_init(&f->recv, f->in, &f->item);
    cx_timeout_init(&f->timeout, cx_future_of(&cx_achan_recv_vtable, &f->recv),
                    &f->recv_rc, 50 * MS);
    CX_AWAIT(&f->co, cx_timeout_poll(&f->timeout, cx, &f->rc));
    if (f->rc == CX_ETIMEDOUT) {
      printf("square: no input for 50 ms, shutting the pipeline down\n");
      break;
    }
    if (f->recv_rc != CX_OK) break; /* producer gone */
    f->squared++;
    f->item *= f->item;
    cx_achan_send_init(&f->send, f->out, &f->item);
    CX_AWAIT(&f->co, cx_achan_send_poll(&f->send, cx, &f->rc));
    if (f->rc != CX_OK) break;
  }
  /* Close both ends now: the sink and the producer see the disconnect. */
  cx_achan_rx_drop(f->in);
  f->in = NULL;
  cx_achan_tx_drop(f->out);
  f->out = NULL;
  CX_RETURN(&f->co, (int *)output, f->squared);
  CX_CORO_END(&f->co);
}

static void square_drop(void *self) {
  square *f = self;
  cx_timeout_drop(&f->timeout); /* drops `recv` if it is pending */
  cx_achan_send_drop(&f->send);
  cx_achan_rx_drop(f->in);
  cx_achan_tx_drop(f->out);
}

static const cx_future_vtable square_vtable = {.poll = square_poll,
                                               .drop = square_drop,
                                               .state_size = sizeof(square),
                                               .state_align = _Alignof(square),
                                               .output_size = sizeof(int)};

/* ---- stage 3: sum
 * ------------------------------------------------------------ */

typedef struct sum {
  cx_coro co;
  cx_achan_rx *in;
  cx_achan_recv recv;
  int item, rc, total;
} sum;

static cx_poll sum_poll(void *self, cx_context *cx, void *output) {
  sum *f = self;
  CX_CORO_BEGIN(&f->co);
  for (;;) {
    cx_achan_recv_init(&f->recv, f->in, &f->item);
    CX_AWAIT(&f->co, cx_achan_recv_poll(&f->recv, cx, &f->rc));
    if (f->rc != CX_OK) break; /* CX_EPIPE: drained and disconnected */
    printf("sum: got %d\n", f->item);
    f->total += f->item;
  }
  CX_RETURN(&f->co, (int *)output, f->total);
  CX_CORO_END(&f->co);
}

static void sum_drop(void *self) {
  sum *f = self;
  cx_achan_recv_drop(&f->recv);
  cx_achan_rx_drop(f->in);
}

static const cx_future_vtable sum_vtable = {.poll = sum_poll,
                                            .drop = sum_drop,
                                            .state_size = sizeof(sum),
                                            .state_align = _Alignof(sum),
                                            .output_size = sizeof(int)};

/* ---- wiring
 * ------------------------------------------------------------------ */

int main(void) {
  cx_executor *ex;
  int rc = cx_executor_create(NULL, &ex);
  if (rc != CX_OK) {
    fprintf(stderr, "executor: %s\n", cx_strerror(rc));
    return 1;
  }
  produce p;
  square q;
  sum s;
  memset(&p, 0, sizeof p);
  memset(&q, 0, sizeof q);
  memset(&s, 0, sizeof s);
  if ((rc = cx_achan_create(sizeof(int), 2, NULL, &p.out, &q.in)) != CX_OK ||
      (rc = cx_achan_create(sizeof(int), 1, NULL, &q.out, &s.in)) != CX_OK) {
    fprintf(stderr, "channel: %s\n", cx_strerror(rc));
    return 1;
  }
  /* Spawning copies each state into its task: the tasks own the ends now. */
  cx_join_handle *hp, *hq, *hs;
  if ((rc = cx_spawn(ex, &produce_vtable, &p, &hp)) != CX_OK ||
      (rc = cx_spawn(ex, &square_vtable, &q, &hq)) != CX_OK ||
      (rc = cx_spawn(ex, &sum_vtable, &s, &hs)) != CX_OK) {
    fprintf(stderr, "spawn: %s\n", cx_strerror(rc));
    return 1;
  }
  rc = cx_executor_run(ex);
  int produced_rc = 0, squared = 0, total = 0;
  cx_join_handle_try_join(hp, &produced_rc, sizeof produced_rc);
  cx_join_handle_try_join(hq, &squared, sizeof squared);
  cx_join_handle_try_join(hs, &total, sizeof total);
  printf("run: %s; producer ended with %s; %d squared; total %d\n",
         cx_err_name(rc), cx_err_name(produced_rc), squared, total);
  cx_join_handle_detach(hp);
  cx_join_handle_detach(hq);
  cx_join_handle_detach(hs);
  cx_executor_destroy(ex);
  /* 1^2 + ... + 10^2 = 385 */
  return (rc == CX_OK && total == 385 && produced_rc == CX_EPIPE) ? 0 : 1;
}
