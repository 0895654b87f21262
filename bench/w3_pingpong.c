/*
 * W3 pingpong: P = 1,000 pairs of tasks; each pair does M = 100 round trips
 * over two bounded async channels of capacity 1 (a sends, b receives and
 * answers); check every message arrived in order. Figure: ns per one-way
 * message = wall / (P*M*2).
 *
 * Pair k: a sends k*M + i on `ab` and waits for the answer on `ba`; b
 * receives on `ab`, checks it is the next number, and sends it back on
 * `ba`; a checks the answer. Channel creation, spawning and running are
 * timed.
 */
#define _GNU_SOURCE

#include <stdio.h>
#include <string.h>

#include "executor/async_channel.h"
#include "executor/cexec.h"

#include "bench/bench.h"

typedef struct w3_shared {
  uint64_t received; /* messages that arrived in order, both directions */
  uint64_t errors;
  uint32_t finished; /* tasks that completed all M round trips */
} w3_shared;

/* One side of a pair. `a` sends first; `b` receives first. */
typedef struct w3_side {
  cx_achan_tx *tx;
  cx_achan_rx *rx;
  w3_shared *shared;
  uint64_t base; /* first message number of this pair */
  uint32_t round;
  bool sends_first;
  bool receiving; /* current op: recv (else send) */
  bool op_started;
  uint64_t out_item, in_item;
  union {
    cx_achan_send send;
    cx_achan_recv recv;
  } op;
} w3_side;

static cx_poll w3_poll(void *self, cx_context *cx, void *out) {
  (void)out;
  w3_side *s = self;
  w3_shared *sh = s->shared;
  for (;;) {
    if (s->round == W3_M) {
      sh->finished++;
      return CX_READY;
    }
    int rc;
    if (!s->receiving) {
      if (!s->op_started) {
        s->out_item = s->base + s->round;
        cx_achan_send_init(&s->op.send, s->tx, &s->out_item);
        s->op_started = true;
      }
      if (cx_achan_send_poll(&s->op.send, cx, &rc) == CX_PENDING)
        return CX_PENDING;
      s->op_started = false;
      if (rc != CX_OK) {
        sh->errors++;
        return CX_READY;
      }
      if (!s->sends_first) s->round++; /* b: the answer completes a round */
      s->receiving = true;
    } else {
      if (!s->op_started) {
        cx_achan_recv_init(&s->op.recv, s->rx, &s->in_item);
        s->op_started = true;
      }
      if (cx_achan_recv_poll(&s->op.recv, cx, &rc) == CX_PENDING)
        return CX_PENDING;
      s->op_started = false;
      if (rc != CX_OK || s->in_item != s->base + s->round) {
        sh->errors++;
        return CX_READY;
      }
      sh->received++;
      if (s->sends_first) s->round++; /* a: the answer completes a round */
      s->receiving = false;
    }
  }
}

static void w3_drop(void *self) {
  w3_side *s = self;
  if (s->op_started) {
    if (s->receiving)
      cx_achan_recv_drop(&s->op.recv);
    else
      cx_achan_send_drop(&s->op.send);
  }
  cx_achan_tx_drop(s->tx);
  cx_achan_rx_drop(s->rx);
}

static const cx_future_vtable w3_vtable = {.poll = w3_poll,
                                           .drop = w3_drop,
                                           .state_size = sizeof(w3_side),
                                           .state_align = _Alignof(w3_side),
                                           .output_size = 0};

int bench_w3_pingpong(void) {
  cx_executor *ex;
  if (cx_executor_create(NULL, &ex) != CX_OK)
    return bench_fail("W3", "cx_executor_create");
  w3_shared sh = {0, 0, 0};

  uint64_t t0 = bench_now_ns();
  for (uint32_t k = 0; k < W3_P; k++) {
    cx_achan_tx *ab_tx, *ba_tx;
    cx_achan_rx *ab_rx, *ba_rx;
    if (cx_achan_create(sizeof(uint64_t), 1, NULL, &ab_tx, &ab_rx) != CX_OK)
      return bench_fail("W3", "cx_achan_create");
    if (cx_achan_create(sizeof(uint64_t), 1, NULL, &ba_tx, &ba_rx) != CX_OK)
      return bench_fail("W3", "cx_achan_create");
    w3_side a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.tx = ab_tx;
    a.rx = ba_rx;
    a.shared = &sh;
    a.base = (uint64_t)k * W3_M;
    a.sends_first = true;
    a.receiving = false;
    b.tx = ba_tx;
    b.rx = ab_rx;
    b.shared = &sh;
    b.base = (uint64_t)k * W3_M;
    b.sends_first = false;
    b.receiving = true;
    if (cx_spawn(ex, &w3_vtable, &a, NULL) != CX_OK ||
        cx_spawn(ex, &w3_vtable, &b, NULL) != CX_OK)
      return bench_fail("W3", "cx_spawn");
  }
  int rc = cx_executor_run(ex);
  uint64_t wall = bench_now_ns() - t0;
  cx_executor_destroy(ex);

  uint64_t msgs = (uint64_t)W3_P * W3_M * 2;
  if (rc != CX_OK) return bench_fail("W3", "cx_executor_run: %d", rc);
  if (sh.errors != 0 || sh.received != msgs || sh.finished != 2 * W3_P)
    return bench_fail("W3",
                      "errors %llu, received in order %llu of %llu, "
                      "finished %u of %u",
                      (unsigned long long)sh.errors,
                      (unsigned long long)sh.received, (unsigned long long)msgs,
                      sh.finished, 2 * W3_P);
  bench_print("cexec", "W3", msgs, (double)wall / (double)msgs, wall / 1e6,
              NULL);
  return 0;
}
