/*
 * BENCHMARKS.md workloads on the multi-threaded runtime (runtime/runtime.h),
 * peer "cexec_mtN" for N workers. Each does the work its single-threaded
 * twin does (bench/w*.c), with shared counters made atomic, and checks its
 * result. The runtime is created before the clock starts and shut down
 * after it stops; the root task's spawns and the run are timed.
 *
 *   W1  a root task spawns N tasks that each bump a counter and complete
 *   W2  T tasks that each yield Y times (wake_by_ref + Pending)
 *   W3  P pairs ping-pong M round trips over two capacity-1 async channels
 *   W5  a plain thread and a task ping-pong; the thread parks (futex)
 *   W10 fan-out: a root task spawns 1,000 tasks of ~100 us of arithmetic
 *       each and awaits their handles; run with 1 worker and with N, speedup
 *   W11 100 chains of 1,000 tasks: each, once woken, wakes the next of its
 *       chain (on whatever worker it lives) and completes; ns per hop
 */
#define _GNU_SOURCE

#include "bench/mt.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench/bench.h"
#include "executor/async_channel.h"
#include "executor/executor.h"
#include "runtime/runtime.h"
#include "waker/alloc.h"

/* ---- a one-shot event and a thread parker (futex) ---------------------- */

typedef struct mt_event {
  _Atomic uint32_t set;
} mt_event;

static void mt_event_set(mt_event *e) {
  /* release: the waiter sees what the setter did. */
  atomic_store_explicit(&e->set, 1, memory_order_release);
  syscall(SYS_futex, &e->set, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void mt_event_wait(mt_event *e) {
  /* acquire: pairs with mt_event_set. */
  while (atomic_load_explicit(&e->set, memory_order_acquire) == 0)
    syscall(SYS_futex, &e->set, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
}

/* EMPTY 0, NOTIFIED 1, PARKED 2: std::thread::park's protocol. */
static void mt_park(_Atomic uint32_t *p) {
  uint32_t e = 0;
  /* acquire: pairs with mt_unpark's release exchange. */
  if (!atomic_compare_exchange_strong_explicit(p, &e, 2, memory_order_acquire,
                                               memory_order_acquire)) {
    atomic_exchange_explicit(p, 0, memory_order_acquire); /* was NOTIFIED */
    return;
  }
  for (;;) {
    syscall(SYS_futex, p, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
    e = 1;
    /* acquire: as above. */
    if (atomic_compare_exchange_strong_explicit(p, &e, 0, memory_order_acquire,
                                                memory_order_relaxed))
      return;
  }
}

static void mt_unpark(_Atomic uint32_t *p) {
  /* release: pairs with mt_park's acquire. */
  if (atomic_exchange_explicit(p, 1, memory_order_release) == 2)
    syscall(SYS_futex, p, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* ---- helpers ------------------------------------------------------------- */

static char g_peer[32];

static cx_runtime *mt_runtime(unsigned workers, const char *w) {
  cx_runtime_options o = {0};
  o.workers = workers;
  cx_runtime *rt = NULL;
  int rc = cx_runtime_create(&o, &rt);
  if (rc != CX_OK) {
    bench_fail(w, "cx_runtime_create: %d", rc);
    return NULL;
  }
  return rt;
}

/* A root task: calls fn(arg) on a worker, once. */
typedef struct mt_root {
  void (*fn)(void *);
  void *arg;
} mt_root;

static cx_poll mt_root_poll(void *self, cx_context *cx, void *out) {
  (void)cx;
  (void)out;
  mt_root *r = self;
  r->fn(r->arg);
  return CX_READY;
}

static const cx_future_vtable mt_root_vt = {.poll = mt_root_poll,
                                            .state_size = sizeof(mt_root),
                                            .state_align = _Alignof(mt_root)};

/* ---- W1 --------------------------------------------------------------------
 */

typedef struct w1_shared {
  _Atomic uint64_t counter;
  _Atomic uint64_t failed;
  mt_event done;
} w1_shared;

static cx_poll w1_poll(void *self, cx_context *cx, void *out) {
  (void)cx;
  (void)out;
  w1_shared *sh = *(w1_shared **)self;
  /* relaxed would do for the count; acq_rel so that the last one's signal
   * follows every other increment. */
  if (atomic_fetch_add_explicit(&sh->counter, 1, memory_order_acq_rel) + 1 ==
      W1_N)
    mt_event_set(&sh->done);
  return CX_READY;
}

static const cx_future_vtable w1_vt = {.poll = w1_poll,
                                       .state_size = sizeof(w1_shared *),
                                       .state_align = _Alignof(w1_shared *)};

static void w1_root(void *arg) {
  w1_shared *sh = arg;
  cx_runtime *rt = cx_runtime_current();
  for (uint32_t i = 0; i < W1_N; i++) {
    if (cx_runtime_spawn(rt, &w1_vt, &sh, NULL) != CX_OK) {
      atomic_fetch_add(&sh->failed, 1);
      mt_event_set(&sh->done);
      return;
    }
  }
}

static int mt_w1(unsigned workers) {
  cx_runtime *rt = mt_runtime(workers, "W1");
  if (!rt) return BENCH_FAIL;
  w1_shared sh;
  atomic_init(&sh.counter, 0);
  atomic_init(&sh.failed, 0);
  atomic_init(&sh.done.set, 0);
  mt_root root = {w1_root, &sh};
  uint64_t t0 = bench_now_ns();
  int rc = cx_runtime_spawn(rt, &mt_root_vt, &root, NULL);
  if (rc == CX_OK) mt_event_wait(&sh.done);
  uint64_t wall = bench_now_ns() - t0;
  cx_runtime_shutdown(rt, CX_RUNTIME_NO_DEADLINE);
  cx_runtime_stats st;
  cx_runtime_get_stats(rt, &st);
  cx_runtime_destroy(rt);
  if (rc != CX_OK || atomic_load(&sh.failed))
    return bench_fail("W1", "spawn failed");
  if (atomic_load(&sh.counter) != W1_N || st.completed != W1_N + 1)
    return bench_fail("W1", "counter %llu completed %llu",
                      (unsigned long long)atomic_load(&sh.counter),
                      (unsigned long long)st.completed);
  char extra[96];
  snprintf(extra, sizeof extra, ",\"steals\":%llu",
           (unsigned long long)st.steals);
  bench_print(g_peer, "W1", W1_N, (double)wall / W1_N, wall / 1e6, extra);
  return 0;
}

/* ---- W2 --------------------------------------------------------------------
 */

typedef struct w2_shared {
  _Atomic uint64_t polls;
  _Atomic uint32_t finished;
  _Atomic uint64_t failed;
  mt_event done;
} w2_shared;

typedef struct w2_task {
  w2_shared *sh;
  uint32_t left;
  uint64_t polls;
} w2_task;

static cx_poll w2_poll(void *self, cx_context *cx, void *out) {
  (void)out;
  w2_task *t = self;
  t->polls++;
  if (t->left > 0) {
    t->left--;
    cx_waker_wake_by_ref(cx->waker);
    return CX_PENDING;
  }
  /* relaxed: the acq_rel on finished below publishes it. */
  atomic_fetch_add_explicit(&t->sh->polls, t->polls, memory_order_relaxed);
  if (atomic_fetch_add_explicit(&t->sh->finished, 1, memory_order_acq_rel) +
          1 ==
      W2_T)
    mt_event_set(&t->sh->done);
  return CX_READY;
}

static const cx_future_vtable w2_vt = {.poll = w2_poll,
                                       .state_size = sizeof(w2_task),
                                       .state_align = _Alignof(w2_task)};

static void w2_root(void *arg) {
  w2_shared *sh = arg;
  w2_task t = {sh, W2_Y, 0};
  for (uint32_t i = 0; i < W2_T; i++) {
    if (cx_runtime_spawn(cx_runtime_current(), &w2_vt, &t, NULL) != CX_OK) {
      atomic_fetch_add(&sh->failed, 1);
      mt_event_set(&sh->done);
      return;
    }
  }
}

static int mt_w2(unsigned workers) {
  cx_runtime *rt = mt_runtime(workers, "W2");
  if (!rt) return BENCH_FAIL;
  w2_shared sh;
  atomic_init(&sh.polls, 0);
  atomic_init(&sh.finished, 0);
  atomic_init(&sh.failed, 0);
  atomic_init(&sh.done.set, 0);
  mt_root root = {w2_root, &sh};
  uint64_t t0 = bench_now_ns();
  int rc = cx_runtime_spawn(rt, &mt_root_vt, &root, NULL);
  if (rc == CX_OK) mt_event_wait(&sh.done);
  uint64_t wall = bench_now_ns() - t0;
  cx_runtime_shutdown(rt, CX_RUNTIME_NO_DEADLINE);
  cx_runtime_stats st;
  cx_runtime_get_stats(rt, &st);
  cx_runtime_destroy(rt);
  uint64_t want = (uint64_t)W2_T * (W2_Y + 1);
  if (rc != CX_OK || atomic_load(&sh.failed))
    return bench_fail("W2", "spawn failed");
  if (atomic_load(&sh.polls) != want || st.polls != want + 1)
    return bench_fail("W2", "polls %llu (runtime %llu), want %llu",
                      (unsigned long long)atomic_load(&sh.polls),
                      (unsigned long long)st.polls, (unsigned long long)want);
  uint64_t ops = (uint64_t)W2_T * W2_Y;
  char extra[96];
  snprintf(extra, sizeof extra, ",\"steals\":%llu",
           (unsigned long long)st.steals);
  bench_print(g_peer, "W2", ops, (double)wall / (double)ops, wall / 1e6, extra);
  return 0;
}

/* ---- W3 --------------------------------------------------------------------
 */

typedef struct w3_shared {
  _Atomic uint64_t received, errors;
  _Atomic uint32_t finished;
  mt_event done;
} w3_shared;

typedef struct w3_side {
  cx_achan_tx *tx;
  cx_achan_rx *rx;
  w3_shared *shared;
  uint64_t base;
  uint32_t round;
  bool sends_first, receiving, op_started;
  uint64_t out_item, in_item;
  union {
    cx_achan_send send;
    cx_achan_recv recv;
  } op;
} w3_side;

static void w3_finish(w3_shared *sh) {
  /* acq_rel: the last one's signal follows every other side's counts. */
  if (atomic_fetch_add_explicit(&sh->finished, 1, memory_order_acq_rel) + 1 ==
      2 * W3_P)
    mt_event_set(&sh->done);
}

static cx_poll w3_poll(void *self, cx_context *cx, void *out) {
  (void)out;
  w3_side *s = self;
  w3_shared *sh = s->shared;
  for (;;) {
    if (s->round == W3_M) {
      w3_finish(sh);
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
        atomic_fetch_add(&sh->errors, 1);
        w3_finish(sh);
        return CX_READY;
      }
      if (!s->sends_first) s->round++;
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
        atomic_fetch_add(&sh->errors, 1);
        w3_finish(sh);
        return CX_READY;
      }
      /* relaxed: published by w3_finish's acq_rel. */
      atomic_fetch_add_explicit(&sh->received, 1, memory_order_relaxed);
      if (s->sends_first) s->round++;
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

static const cx_future_vtable w3_vt = {.poll = w3_poll,
                                       .drop = w3_drop,
                                       .state_size = sizeof(w3_side),
                                       .state_align = _Alignof(w3_side)};

static void w3_root(void *arg) {
  w3_shared *sh = arg;
  for (uint32_t k = 0; k < W3_P; k++) {
    cx_achan_tx *ab_tx, *ba_tx;
    cx_achan_rx *ab_rx, *ba_rx;
    if (cx_achan_create(sizeof(uint64_t), 1, NULL, &ab_tx, &ab_rx) != CX_OK ||
        cx_achan_create(sizeof(uint64_t), 1, NULL, &ba_tx, &ba_rx) != CX_OK) {
      atomic_fetch_add(&sh->errors, 1);
      mt_event_set(&sh->done);
      return;
    }
    w3_side a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.tx = ab_tx;
    a.rx = ba_rx;
    a.shared = sh;
    a.base = (uint64_t)k * W3_M;
    a.sends_first = true;
    b.tx = ba_tx;
    b.rx = ab_rx;
    b.shared = sh;
    b.base = (uint64_t)k * W3_M;
    b.receiving = true;
    cx_runtime *rt = cx_runtime_current();
    if (cx_runtime_spawn(rt, &w3_vt, &a, NULL) != CX_OK ||
        cx_runtime_spawn(rt, &w3_vt, &b, NULL) != CX_OK) {
      atomic_fetch_add(&sh->errors, 1);
      mt_event_set(&sh->done);
      return;
    }
  }
}

static int mt_w3(unsigned workers) {
  cx_runtime *rt = mt_runtime(workers, "W3");
  if (!rt) return BENCH_FAIL;
  w3_shared sh;
  atomic_init(&sh.received, 0);
  atomic_init(&sh.errors, 0);
  atomic_init(&sh.finished, 0);
  atomic_init(&sh.done.set, 0);
  mt_root root = {w3_root, &sh};
  uint64_t t0 = bench_now_ns();
  int rc = cx_runtime_spawn(rt, &mt_root_vt, &root, NULL);
  if (rc == CX_OK) mt_event_wait(&sh.done);
  uint64_t wall = bench_now_ns() - t0;
  cx_runtime_destroy(rt);
  uint64_t msgs = (uint64_t)W3_P * W3_M * 2;
  if (rc != CX_OK || atomic_load(&sh.errors) != 0 ||
      atomic_load(&sh.received) != msgs)
    return bench_fail("W3", "errors %llu, received in order %llu of %llu",
                      (unsigned long long)atomic_load(&sh.errors),
                      (unsigned long long)atomic_load(&sh.received),
                      (unsigned long long)msgs);
  bench_print(g_peer, "W3", msgs, (double)wall / (double)msgs, wall / 1e6,
              NULL);
  return 0;
}

/* ---- W5 --------------------------------------------------------------------
 */

typedef struct w5_shared {
  _Atomic uint64_t ping, pong;
  _Atomic uint32_t park; /* the thread's parker */
  mt_event waker_ready;
  _Atomic bool failed;
  cx_waker waker; /* the task's, cloned; written before waker_ready */
} w5_shared;

typedef struct w5_task {
  w5_shared *sh;
  uint64_t answered;
  bool published;
} w5_task;

static cx_poll w5_poll(void *self, cx_context *cx, void *out) {
  (void)out;
  w5_task *t = self;
  w5_shared *sh = t->sh;
  if (!t->published) {
    t->published = true;
    if (cx_waker_clone(cx->waker, &sh->waker) != CX_OK)
      atomic_store(&sh->failed, true);
    mt_event_set(&sh->waker_ready);
    if (atomic_load(&sh->failed)) return CX_READY;
  }
  /* acquire: pairs with the thread's release store of ping. */
  uint64_t ping = atomic_load_explicit(&sh->ping, memory_order_acquire);
  if (ping != t->answered) {
    t->answered = ping;
    /* release: pairs with the thread's acquire load of pong. */
    atomic_store_explicit(&sh->pong, ping, memory_order_release);
    mt_unpark(&sh->park);
  }
  return t->answered == W5_M ? CX_READY : CX_PENDING;
}

static const cx_future_vtable w5_vt = {.poll = w5_poll,
                                       .state_size = sizeof(w5_task),
                                       .state_align = _Alignof(w5_task)};

static int mt_w5(unsigned workers) {
  cx_runtime *rt = mt_runtime(workers, "W5");
  if (!rt) return BENCH_FAIL;
  w5_shared sh;
  atomic_init(&sh.ping, 0);
  atomic_init(&sh.pong, 0);
  atomic_init(&sh.park, 0);
  atomic_init(&sh.waker_ready.set, 0);
  atomic_init(&sh.failed, false);
  sh.waker = CX_WAKER_EMPTY;
  w5_task st = {&sh, 0, false};
  cx_join_handle *h;
  uint64_t t0 = bench_now_ns();
  int rc = cx_runtime_spawn(rt, &w5_vt, &st, &h);
  if (rc != CX_OK) {
    cx_runtime_destroy(rt);
    return bench_fail("W5", "spawn: %d", rc);
  }
  /* This thread is W5's plain OS thread. */
  mt_event_wait(&sh.waker_ready);
  if (!atomic_load(&sh.failed)) {
    for (uint64_t i = 1; i <= W5_M; i++) {
      /* release: pairs with the task's acquire load of ping. */
      atomic_store_explicit(&sh.ping, i, memory_order_release);
      cx_waker_wake_by_ref(&sh.waker);
      /* acquire: pairs with the task's release store of pong. */
      while (atomic_load_explicit(&sh.pong, memory_order_acquire) < i)
        mt_park(&sh.park);
    }
  }
  rc = cx_join_handle_wait(h, NULL, 0);
  uint64_t wall = bench_now_ns() - t0;
  cx_join_handle_detach(h);
  cx_waker_drop(&sh.waker);
  cx_runtime_destroy(rt);
  if (rc != CX_OK || atomic_load(&sh.pong) != W5_M)
    return bench_fail("W5", "join %d, pong %llu", rc,
                      (unsigned long long)atomic_load(&sh.pong));
  bench_print(g_peer, "W5", W5_M, (double)wall / W5_M, wall / 1e6, NULL);
  return 0;
}

/* W5's reference: the same task and the same parking thread, on the
 * single-threaded executor (run by a second thread), peer "cexec". For a
 * same-protocol comparison while bench/w5_xwake.c's thread spins. */
typedef struct w5_exec_arg {
  cx_executor *ex;
  int rc;
} w5_exec_arg;

static void *w5_exec_main(void *arg) {
  w5_exec_arg *a = arg;
  a->rc = cx_executor_run(a->ex);
  return NULL;
}

static int mt_w5_executor(void) {
  cx_executor *ex;
  if (cx_executor_create(NULL, &ex) != CX_OK)
    return bench_fail("W5", "cx_executor_create");
  w5_shared sh;
  atomic_init(&sh.ping, 0);
  atomic_init(&sh.pong, 0);
  atomic_init(&sh.park, 0);
  atomic_init(&sh.waker_ready.set, 0);
  atomic_init(&sh.failed, false);
  sh.waker = CX_WAKER_EMPTY;
  w5_task st = {&sh, 0, false};
  uint64_t t0 = bench_now_ns();
  if (cx_spawn(ex, &w5_vt, &st, NULL) != CX_OK)
    return bench_fail("W5", "cx_spawn");
  w5_exec_arg a = {ex, CX_OK};
  pthread_t th;
  if (pthread_create(&th, NULL, w5_exec_main, &a) != 0)
    return bench_fail("W5", "pthread_create");
  mt_event_wait(&sh.waker_ready);
  if (!atomic_load(&sh.failed)) {
    for (uint64_t i = 1; i <= W5_M; i++) {
      /* release / acquire: as in mt_w5. */
      atomic_store_explicit(&sh.ping, i, memory_order_release);
      cx_waker_wake_by_ref(&sh.waker);
      while (atomic_load_explicit(&sh.pong, memory_order_acquire) < i)
        mt_park(&sh.park);
    }
  }
  cx_waker_drop(&sh.waker); /* the executor's run() can end now */
  pthread_join(th, NULL);
  uint64_t wall = bench_now_ns() - t0;
  cx_executor_destroy(ex);
  if (a.rc != CX_OK || atomic_load(&sh.pong) != W5_M)
    return bench_fail("W5", "run %d, pong %llu", a.rc,
                      (unsigned long long)atomic_load(&sh.pong));
  bench_print("cexec", "W5", W5_M, (double)wall / W5_M, wall / 1e6,
              ",\"thread\":\"parks\"");
  return 0;
}

/* ---- W10: fan-out ----------------------------------------------------------
 */

#define W10_TASKS 1000u
/* Iterations of the dependent multiply-add chain below: about 100 us on
 * this machine (2-core KVM guest, -c opt). */
#define W10_ITERS 60000u

static uint64_t w10_work(uint64_t seed) {
  uint64_t x = seed;
  for (uint32_t i = 0; i < W10_ITERS; i++)
    x = x * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
  return x;
}

typedef struct w10_kid {
  uint64_t seed;
} w10_kid;

static cx_poll w10_kid_poll(void *self, cx_context *cx, void *out) {
  (void)cx;
  *(uint64_t *)out = w10_work(((w10_kid *)self)->seed);
  return CX_READY;
}

static const cx_future_vtable w10_kid_vt = {.poll = w10_kid_poll,
                                            .state_size = sizeof(w10_kid),
                                            .state_align = _Alignof(w10_kid),
                                            .output_size = sizeof(uint64_t)};

typedef struct w10_root {
  cx_join_handle **kids;
  uint32_t spawned, joined;
  uint64_t sum;
  int error;
} w10_root;

static cx_poll w10_root_poll(void *self, cx_context *cx, void *out) {
  w10_root *r = *(w10_root **)self;
  while (r->spawned < W10_TASKS) {
    w10_kid k = {r->spawned + 1};
    int rc = cx_runtime_spawn(cx_runtime_current(), &w10_kid_vt, &k,
                              &r->kids[r->spawned]);
    if (rc != CX_OK) {
      r->error = rc;
      *(uint64_t *)out = 0;
      return CX_READY;
    }
    r->spawned++;
  }
  while (r->joined < W10_TASKS) {
    int res;
    uint64_t v;
    if (cx_join_handle_poll(r->kids[r->joined], cx, &res, &v, sizeof v) ==
        CX_PENDING)
      return CX_PENDING;
    if (res != CX_OK) r->error = res;
    cx_join_handle_detach(r->kids[r->joined]);
    r->sum += v;
    r->joined++;
  }
  *(uint64_t *)out = r->sum;
  return CX_READY;
}

static const cx_future_vtable w10_root_vt = {
    .poll = w10_root_poll,
    .state_size = sizeof(w10_root *),
    .state_align = _Alignof(w10_root *),
    .output_size = sizeof(uint64_t)};

/* One fan-out on a fresh runtime; returns wall ns, 0 on failure. */
static uint64_t w10_once(unsigned workers, uint64_t want, uint64_t *steals) {
  cx_runtime *rt = mt_runtime(workers, "W10");
  if (!rt) return 0;
  cx_join_handle *kids[W10_TASKS];
  w10_root r = {kids, 0, 0, 0, CX_OK};
  w10_root *rp = &r;
  uint64_t sum = 0;
  uint64_t t0 = bench_now_ns();
  int rc = cx_runtime_block_on(rt, &w10_root_vt, &rp, &sum, sizeof sum);
  uint64_t wall = bench_now_ns() - t0;
  cx_runtime_stats st;
  cx_runtime_get_stats(rt, &st);
  *steals = st.steals;
  cx_runtime_destroy(rt);
  if (rc != CX_OK || r.error != CX_OK || sum != want) {
    bench_fail("W10", "rc %d error %d sum %llu want %llu", rc, r.error,
               (unsigned long long)sum, (unsigned long long)want);
    return 0;
  }
  return wall;
}

static int mt_w10(unsigned workers) {
  uint64_t want = 0;
  for (uint32_t i = 1; i <= W10_TASKS; i++) want += w10_work(i);
  uint64_t steals1, steals = 0;
  uint64_t one = w10_once(1, want, &steals1);
  uint64_t many = workers == 1 ? one : w10_once(workers, want, &steals);
  if (one == 0 || many == 0) return BENCH_FAIL;
  char extra[160];
  snprintf(extra, sizeof extra,
           ",\"speedup\":%.3f,\"wall_ms_1worker\":%.3f,\"steals\":%llu",
           (double)one / (double)many, one / 1e6, (unsigned long long)steals);
  bench_print(g_peer, "W10", W10_TASKS, (double)many / W10_TASKS, many / 1e6,
              extra);
  return 0;
}

/* ---- W11: chains -----------------------------------------------------------
 */

#define W11_CHAINS 100u
#define W11_HOPS 1000u
#define W11_TASKS (W11_CHAINS * W11_HOPS)

typedef struct w11_shared {
  cx_waker *wakers;        /* task i's waker, stored by its first poll */
  _Atomic uint32_t ready;  /* tasks that stored their waker */
  _Atomic uint32_t chains; /* chains whose last task completed */
  _Atomic uint32_t hops;
  mt_event all_ready, done;
} w11_shared;

typedef struct w11_task {
  w11_shared *sh;
  uint32_t index;
  bool armed;
} w11_task;

static cx_poll w11_poll(void *self, cx_context *cx, void *out) {
  (void)out;
  w11_task *t = self;
  w11_shared *sh = t->sh;
  if (!t->armed) {
    t->armed = true;
    if (cx_waker_clone(cx->waker, &sh->wakers[t->index]) != CX_OK)
      return CX_READY; /* the count below never completes: reported */
    /* acq_rel: the last one's event publishes every stored waker. */
    if (atomic_fetch_add_explicit(&sh->ready, 1, memory_order_acq_rel) + 1 ==
        W11_TASKS)
      mt_event_set(&sh->all_ready);
    return CX_PENDING;
  }
  /* Woken by the previous task of the chain (or the kick): pass it on. */
  atomic_fetch_add_explicit(&sh->hops, 1, memory_order_relaxed);
  if ((t->index + 1) % W11_HOPS != 0) {
    cx_waker_wake(&sh->wakers[t->index + 1]);
  } else if (atomic_fetch_add_explicit(&sh->chains, 1, memory_order_acq_rel) +
                 1 ==
             W11_CHAINS) {
    mt_event_set(&sh->done);
  }
  return CX_READY;
}

static const cx_future_vtable w11_vt = {.poll = w11_poll,
                                        .state_size = sizeof(w11_task),
                                        .state_align = _Alignof(w11_task)};

static int mt_w11(unsigned workers) {
  cx_runtime *rt = mt_runtime(workers, "W11");
  if (!rt) return BENCH_FAIL;
  w11_shared sh;
  sh.wakers = cx_alloc(W11_TASKS * sizeof(cx_waker), _Alignof(cx_waker));
  if (!sh.wakers) return bench_fail("W11", "alloc");
  atomic_init(&sh.ready, 0);
  atomic_init(&sh.chains, 0);
  atomic_init(&sh.hops, 0);
  atomic_init(&sh.all_ready.set, 0);
  atomic_init(&sh.done.set, 0);
  for (uint32_t i = 0; i < W11_TASKS; i++) {
    w11_task t = {&sh, i, false};
    if (cx_runtime_spawn(rt, &w11_vt, &t, NULL) != CX_OK)
      return bench_fail("W11", "spawn");
  }
  mt_event_wait(&sh.all_ready);
  uint64_t t0 = bench_now_ns();
  for (uint32_t c = 0; c < W11_CHAINS; c++)
    cx_waker_wake(&sh.wakers[c * W11_HOPS]);
  mt_event_wait(&sh.done);
  uint64_t wall = bench_now_ns() - t0;
  cx_runtime_stats st;
  cx_runtime_shutdown(rt, CX_RUNTIME_NO_DEADLINE);
  cx_runtime_get_stats(rt, &st);
  cx_runtime_destroy(rt);
  cx_free(sh.wakers, W11_TASKS * sizeof(cx_waker), _Alignof(cx_waker));
  if (atomic_load(&sh.hops) != W11_TASKS || st.completed != W11_TASKS)
    return bench_fail("W11", "hops %u completed %llu, want %u",
                      atomic_load(&sh.hops), (unsigned long long)st.completed,
                      W11_TASKS);
  char extra[96];
  snprintf(extra, sizeof extra, ",\"steals\":%llu",
           (unsigned long long)st.steals);
  bench_print(g_peer, "W11", W11_TASKS, (double)wall / W11_TASKS, wall / 1e6,
              extra);
  return 0;
}

int bench_mt(const char *w, unsigned workers) {
  if (workers == 0 && strcmp(w, "W5") == 0) return mt_w5_executor();
  if (workers == 0) workers = 2;
  snprintf(g_peer, sizeof g_peer, "cexec_mt%u", workers);
  if (strcmp(w, "W1") == 0) return mt_w1(workers);
  if (strcmp(w, "W2") == 0) return mt_w2(workers);
  if (strcmp(w, "W3") == 0) return mt_w3(workers);
  if (strcmp(w, "W5") == 0) return mt_w5(workers);
  if (strcmp(w, "W10") == 0) return mt_w10(workers);
  if (strcmp(w, "W11") == 0) return mt_w11(workers);
  return 2;
}
