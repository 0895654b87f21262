/*
 * Harness 4: a multi-threaded stress test (run it under --config=tsan too).
 *
 * The main thread runs an executor (cx_executor_run) while worker threads,
 * each with its own spawner, take task wakers from a shared pool and wake
 * them (by value or by reference), clone them or drop them; spawn tasks
 * from their thread; and cancel, try-join, block-join (cx_join_handle_wait)
 * or detach join handles. The tasks pend a few times each, publishing clones
 * of their waker to the pool, yielding, sleeping on real timers (so the
 * executor parks and is woken from other threads), or spawning children.
 *
 * With --runtime the same threads drive the multi-threaded runtime
 * (runtime/runtime.h, 2 workers) instead: tasks are polled on its workers
 * and checked to be, wakes land on whichever worker, tasks spawn children
 * with cx_runtime_spawn, sleeps report CX_ENOTSUP (no timers there yet),
 * and the end is a cx_runtime_shutdown with a short grace period that
 * cancels what is left, with the same accounting.
 *
 * After CX_THREADS_SECONDS (default 2) a controller thread stops the
 * workers, drains the pools and drops the last spawner, which lets run()
 * return. Then, with no other thread active, the executor's invariants are
 * checked (cx_executor_debug_check), it is destroyed, and the accounting
 * must balance: every future dropped exactly once (drops == spawns), every
 * output either taken by a join or released by drop_output, and no block
 * left in the counting allocator. CX_THREADS_SEED fixes the random seed.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "executor/debug.h"
#include "executor/executor.h"
#include "fuzz/fuzz_util.h"
#include "runtime/runtime.h"
#include "timer/timer.h"
#include "waker/error.h"

#define H "threads"
#define CHECK(cond, ...)                  \
  do {                                    \
    if (!(cond)) fz_fail(H, __VA_ARGS__); \
  } while (0)

enum { N_WORKERS = 3, POOL_MAX = 256, HANDLES_MAX = 128, MAX_LIVE = 2000 };
enum { K_EXTERNAL, K_YIELD, K_SLEEP, K_PARENT, K_COUNT };

#define FUT_MAGIC 0x54485244u

/* ---- shared state ------------------------------------------------------- */

static cx_executor *g_ex;
static cx_runtime *g_rt; /* --runtime: the multi-threaded runtime instead */

/* True on the thread that may poll and drop our futures now. */
static bool on_our_scheduler(void) {
  return g_rt ? cx_runtime_current() == g_rt : cx_executor_current() == g_ex;
}

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static cx_waker g_pool[POOL_MAX];
static int g_npool;
static struct {
  cx_join_handle *h;
  int kind;
} g_handles[HANDLES_MAX];
static int g_nhandles;
static bool g_closing; /* guarded by g_mu: pools closed, futures yield */

static atomic_bool g_stop;
static atomic_long g_spawned, g_drops, g_polls, g_outputs_made,
    g_outputs_dropped, g_outputs_taken, g_wakes, g_joins_waited,
    g_cancels;

typedef struct rng {
  uint64_t s;
} rng;
static uint32_t rnd(rng *r) {
  r->s ^= r->s << 13;
  r->s ^= r->s >> 7;
  r->s ^= r->s << 17;
  return (uint32_t)(r->s >> 11);
}

/* ---- pools -------------------------------------------------------------- */

static bool pool_push(cx_waker *w) {
  pthread_mutex_lock(&g_mu);
  bool ok = !g_closing && g_npool < POOL_MAX;
  if (ok) {
    g_pool[g_npool++] = *w;
    *w = CX_WAKER_EMPTY;
  }
  pthread_mutex_unlock(&g_mu);
  return ok;
}

static bool pool_pop(rng *r, cx_waker *out) {
  pthread_mutex_lock(&g_mu);
  bool ok = g_npool > 0;
  if (ok) {
    int k = (int)(rnd(r) % (uint32_t)g_npool);
    *out = g_pool[k];
    g_pool[k] = g_pool[--g_npool];
  }
  pthread_mutex_unlock(&g_mu);
  return ok;
}

static bool handle_push(cx_join_handle *h, int kind) {
  pthread_mutex_lock(&g_mu);
  bool ok = !g_closing && g_nhandles < HANDLES_MAX;
  if (ok) {
    g_handles[g_nhandles].h = h;
    g_handles[g_nhandles].kind = kind;
    g_nhandles++;
  }
  pthread_mutex_unlock(&g_mu);
  return ok;
}

static bool handle_pop(rng *r, cx_join_handle **h, int *kind) {
  pthread_mutex_lock(&g_mu);
  bool ok = g_nhandles > 0;
  if (ok) {
    int k = (int)(rnd(r) % (uint32_t)g_nhandles);
    *h = g_handles[k].h;
    *kind = g_handles[k].kind;
    g_handles[k] = g_handles[--g_nhandles];
  }
  pthread_mutex_unlock(&g_mu);
  return ok;
}

/* ---- the futures -------------------------------------------------------- */

/* Tasks keep being spawned for the whole run, at most MAX_LIVE at once. */
static bool room_for_a_task(void) {
  return atomic_load(&g_spawned) - atomic_load(&g_drops) < MAX_LIVE;
}

typedef struct th_fut {
  uint32_t magic;
  int kind;
  int pends;
  uint64_t seed;
  bool sleeping;
  cx_sleep sleep;
} th_fut;

static cx_poll th_poll(void *self, cx_context *cx, void *out);
static void th_drop(void *self);
static void th_drop_output(void *out) {
  uint64_t v;
  memcpy(&v, out, sizeof v);
  CHECK(v == 0x5eed0000u + 7, "drop_output of a bad output");
  atomic_fetch_add(&g_outputs_dropped, 1);
}
static const cx_future_vtable th_vt = {.poll = th_poll, .drop = th_drop, .drop_output = th_drop_output, .state_size = sizeof(th_fut), .state_align = 0, .output_size = sizeof(uint64_t)};

static th_fut th_make(rng *r, int kind) {
  th_fut f;
  memset(&f, 0, sizeof f);
  f.magic = FUT_MAGIC;
  f.kind = kind;
  f.pends = 1 + (int)(rnd(r) % 6);
  f.seed = ((uint64_t)rnd(r) << 32) | rnd(r) | 1;
  cx_sleep_init_for(&f.sleep, 0);
  return f;
}

static cx_poll th_yield(cx_context *cx) {
  cx_waker_wake_by_ref(cx->waker);
  return CX_PENDING;
}

static cx_poll th_poll(void *self, cx_context *cx, void *out) {
  th_fut *f = self;
  CHECK(f->magic == FUT_MAGIC, "poll of a dropped or corrupt future");
  CHECK(on_our_scheduler(), "polled off the executor's threads");
  atomic_fetch_add(&g_polls, 1);
  rng r = {f->seed};
  f->seed = rnd(&r) | ((uint64_t)rnd(&r) << 32) | 1;
  if (f->sleeping) {
    int res;
    if (cx_sleep_poll(&f->sleep, cx, &res) == CX_PENDING) return CX_PENDING;
    CHECK(res == CX_OK, "sleep gave %s", cx_err_name(res));
    f->sleeping = false;
  }
  if (f->pends-- <= 0) {
    uint64_t v = 0x5eed0000u + 7;
    memcpy(out, &v, sizeof v);
    atomic_fetch_add(&g_outputs_made, 1);
    return CX_READY;
  }
  switch (f->kind) {
    case K_EXTERNAL: {
      cx_waker c;
      CHECK(cx_waker_clone(cx->waker, &c) == CX_OK, "clone");
      if (pool_push(&c)) return CX_PENDING;
      cx_waker_drop(&c);
      return th_yield(cx);
    }
    case K_SLEEP:
      cx_sleep_init_for(&f->sleep, 20000 + rnd(&r) % 200000);
      f->sleeping = true;
      {
        int res;
        if (cx_sleep_poll(&f->sleep, cx, &res) == CX_PENDING)
          return CX_PENDING;
        /* The runtime has no timer driver (cx->timers NULL). */
        CHECK(!g_rt || res == CX_ENOTSUP, "sleep on the runtime gave %s",
              cx_err_name(res));
        f->sleeping = false;
      }
      return th_yield(cx);
    case K_PARENT:
      if (room_for_a_task()) {
        th_fut child = th_make(&r, (int)(rnd(&r) % K_COUNT));
        cx_join_handle *h = NULL;
        bool keep = rnd(&r) & 1;
        int rc = g_rt ? cx_runtime_spawn(cx_runtime_current(), &th_vt, &child,
                                         keep ? &h : NULL)
                      : cx_spawn(cx->executor, &th_vt, &child, keep ? &h : NULL);
        /* The runtime refuses spawns once its shutdown has begun. */
        if (g_rt && rc == CX_ESHUTDOWN) return th_yield(cx);
        CHECK(rc == CX_OK, "spawn from a task: %s", cx_err_name(rc));
        atomic_fetch_add(&g_spawned, 1);
        if (keep && !handle_push(h, child.kind)) cx_join_handle_detach(h);
      }
      return th_yield(cx);
    default:
      return th_yield(cx);
  }
}

static void th_drop(void *self) {
  th_fut *f = self;
  CHECK(f->magic == FUT_MAGIC, "future dropped twice or corrupt");
  CHECK(on_our_scheduler(), "future dropped off the executor's threads");
  cx_sleep_drop(&f->sleep);
  f->magic = 0;
  atomic_fetch_add(&g_drops, 1);
}

/* ---- workers ------------------------------------------------------------ */

typedef struct worker {
  pthread_t th;
  int idx;
  uint64_t seed;
  cx_spawner *sp;
  cx_runtime_spawner *rsp; /* --runtime */
} worker;

static void take_output(int rc, uint64_t v, const char *how) {
  if (rc == CX_OK) {
    CHECK(v == 0x5eed0000u + 7, "%s gave a wrong output %llx", how,
          (unsigned long long)v);
    atomic_fetch_add(&g_outputs_taken, 1);
  } else {
    CHECK(rc == CX_ECANCELED || rc == CX_EALREADY || rc == CX_EAGAIN,
          "join gave %s", cx_err_name(rc));
  }
}

static void *worker_main(void *arg) {
  worker *wk = arg;
  rng r = {wk->seed};
  while (!atomic_load(&g_stop)) {
    uint32_t x = rnd(&r) % 100;
    if (x < 70) { /* a waker */
      cx_waker w;
      if (!pool_pop(&r, &w)) {
        sched_yield();
        continue;
      }
      uint32_t a = rnd(&r) % 10;
      if (a < 5) {
        cx_waker_wake(&w);
        atomic_fetch_add(&g_wakes, 1);
      } else if (a < 7) {
        cx_waker_wake_by_ref(&w);
        atomic_fetch_add(&g_wakes, 1);
        if (!pool_push(&w)) cx_waker_drop(&w);
      } else if (a < 9) {
        cx_waker c;
        CHECK(cx_waker_clone(&w, &c) == CX_OK, "clone on a worker");
        if (!pool_push(&c)) cx_waker_drop(&c);
        if (!pool_push(&w)) cx_waker_drop(&w);
      } else {
        cx_waker_drop(&w);
      }
    } else if (x < 82) { /* spawn from this thread */
      if (!room_for_a_task()) continue;
      int kind = (int)(rnd(&r) % K_COUNT);
      th_fut f = th_make(&r, kind);
      bool keep = rnd(&r) % 3 != 0;
      cx_join_handle *h = NULL;
      int rc = g_rt ? cx_runtime_spawner_spawn(wk->rsp, &th_vt, &f,
                                               keep ? &h : NULL)
                    : cx_spawner_spawn(wk->sp, &th_vt, &f, keep ? &h : NULL);
      CHECK(rc == CX_OK, "spawner_spawn: %s", cx_err_name(rc));
      atomic_fetch_add(&g_spawned, 1);
      if (keep && !handle_push(h, kind)) cx_join_handle_detach(h);
    } else { /* a join handle */
      cx_join_handle *h;
      int kind;
      if (!handle_pop(&r, &h, &kind)) continue;
      uint32_t a = rnd(&r) % 10;
      uint64_t v = 0;
      if (a < 2) {
        int rc = cx_join_handle_cancel(h);
        CHECK(rc == CX_OK || rc == CX_EALREADY, "cancel: %s", cx_err_name(rc));
        atomic_fetch_add(&g_cancels, 1);
        if (!handle_push(h, -1)) cx_join_handle_detach(h); /* -1: cancelled */
      } else if (a < 5) {
        int rc = cx_join_handle_try_join(h, &v, sizeof v);
        /* (rc first: argument evaluation order is unspecified) */
        take_output(rc, v, "try_join");
        if (!handle_push(h, kind)) cx_join_handle_detach(h);
      } else if (a < 7 && kind != K_EXTERNAL) {
        /* Finishes on its own (or was cancelled): block until it ends. */
        int rc = cx_join_handle_wait(h, &v, sizeof v);
        take_output(rc, v, "wait");
        CHECK(rc != CX_EAGAIN, "wait returned before the end");
        CHECK(cx_join_handle_is_finished(h), "waited but not finished");
        atomic_fetch_add(&g_joins_waited, 1);
        cx_join_handle_detach(h);
      } else {
        (void)cx_join_handle_is_finished(h);
        (void)cx_join_handle_poll_count(h);
        cx_join_handle_detach(h);
      }
    }
  }
  cx_spawner_drop(wk->sp);
  cx_runtime_spawner_drop(wk->rsp);
  return NULL;
}

/* ---- controller ---------------------------------------------------------- */

typedef struct controller {
  pthread_t th;
  double seconds;
  cx_spawner *sp;
  worker workers[N_WORKERS];
} controller;

static void *controller_main(void *arg) {
  controller *c = arg;
  struct timespec ts = {(time_t)c->seconds,
                        (long)((c->seconds - (double)(time_t)c->seconds) * 1e9)};
  nanosleep(&ts, NULL);
  atomic_store(&g_stop, true);
  for (int i = 0; i < N_WORKERS; i++) pthread_join(c->workers[i].th, NULL);
  /* Close the pools: from now on futures yield instead of publishing. */
  pthread_mutex_lock(&g_mu);
  g_closing = true;
  int n = g_npool, m = g_nhandles;
  cx_waker wakers[POOL_MAX];
  cx_join_handle *hs[HANDLES_MAX];
  memcpy(wakers, g_pool, sizeof(cx_waker) * (size_t)n);
  for (int i = 0; i < m; i++) hs[i] = g_handles[i].h;
  g_npool = g_nhandles = 0;
  pthread_mutex_unlock(&g_mu);
  /* Half of the wakers are woken, so most tasks finish. */
  for (int i = 0; i < n; i++) {
    if (i & 1)
      cx_waker_wake(&wakers[i]);
    else
      cx_waker_drop(&wakers[i]);
  }
  for (int i = 0; i < m; i++) cx_join_handle_detach(hs[i]);
  cx_spawner_drop(c->sp); /* the last one: run() may return */
  return NULL;
}

/* --runtime: the same threads against the multi-threaded runtime. */
static int main_runtime(double seconds, uint64_t seed) {
  cx_runtime_options o = {.workers = 2};
  CHECK(cx_runtime_create(&o, &g_rt) == CX_OK, "runtime create");
  rng r = {seed};
  controller c;
  memset(&c, 0, sizeof c);
  c.seconds = seconds;
  for (int i = 0; i < 64; i++) {
    int kind = i % K_COUNT;
    th_fut f = th_make(&r, kind);
    cx_join_handle *h = NULL;
    CHECK(cx_runtime_spawn(g_rt, &th_vt, &f, (i & 1) ? &h : NULL) == CX_OK,
          "spawn");
    atomic_fetch_add(&g_spawned, 1);
    if (h && !handle_push(h, kind)) cx_join_handle_detach(h);
  }
  for (int i = 0; i < N_WORKERS; i++) {
    worker *wk = &c.workers[i];
    wk->idx = i;
    wk->seed = seed * (uint64_t)(2 * i + 3) | 1;
    CHECK(cx_runtime_spawner_create(g_rt, &wk->rsp) == CX_OK, "spawner");
    CHECK(pthread_create(&wk->th, NULL, worker_main, wk) == 0, "thread");
  }
  CHECK(pthread_create(&c.th, NULL, controller_main, &c) == 0, "thread");
  pthread_join(c.th, NULL);
  /* Half the pooled wakers were dropped: those tasks never end. A short
   * grace period, then shutdown cancels the rest. */
  int rc = cx_runtime_shutdown(g_rt, 200 * 1000 * 1000);
  CHECK(rc == CX_OK || rc == CX_ETIMEDOUT, "shutdown gave %s",
        cx_err_name(rc));
  cx_runtime_stats st;
  CHECK(cx_runtime_get_stats(g_rt, &st) == CX_OK, "stats");
  long spawned = atomic_load(&g_spawned);
  CHECK((long)st.spawned == spawned, "stats.spawned %llu, spawned %ld",
        (unsigned long long)st.spawned, spawned);
  CHECK((long)st.polls == atomic_load(&g_polls), "stats.polls");
  CHECK(st.live == 0, "%llu live after shutdown", (unsigned long long)st.live);
  CHECK((long)(st.completed + st.cancelled) == spawned, "completed+cancelled");
  CHECK(cx_runtime_destroy(g_rt) == CX_OK, "destroy");
  long drops = atomic_load(&g_drops);
  CHECK(drops == spawned, "%ld futures dropped, %ld spawned", drops, spawned);
  long made = atomic_load(&g_outputs_made);
  long taken = atomic_load(&g_outputs_taken);
  long dropped_out = atomic_load(&g_outputs_dropped);
  CHECK(made == taken + dropped_out,
        "%ld outputs made, %ld taken by joins, %ld dropped", made, taken,
        dropped_out);
  fz_alloc_stats as = fz_alloc_stats_get();
  CHECK(as.live == 0 && as.live_bytes == 0, "%lld blocks leaked",
        (long long)as.live);
  fprintf(stderr,
          "threads --runtime: shutdown %s; %ld tasks, %ld polls, %ld wakes "
          "from threads, %ld cancels, %ld blocking joins, %llu steals, %llu "
          "parks; all freed\n",
          cx_err_name(rc), spawned, atomic_load(&g_polls),
          atomic_load(&g_wakes), atomic_load(&g_cancels),
          atomic_load(&g_joins_waited), (unsigned long long)st.steals,
          (unsigned long long)st.parks);
  fz_alloc_uninstall();
  return 0;
}

int main(int argc, char **argv) {
  bool runtime = argc > 1 && strcmp(argv[1], "--runtime") == 0;
  const char *secs = getenv("CX_THREADS_SECONDS");
  double seconds = secs ? atof(secs) : 2.0;
  const char *seed_s = getenv("CX_THREADS_SEED");
  uint64_t seed = seed_s ? strtoull(seed_s, NULL, 0)
                         : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 20);
  seed |= 1;
  fprintf(stderr, "threads: %.1f s, seed %llu (CX_THREADS_SEED)\n", seconds,
          (unsigned long long)seed);
  alarm((unsigned)(seconds + 120)); /* a hang fails the test */

  fz_alloc_install(0);
  if (runtime) return main_runtime(seconds, seed);
  CHECK(cx_executor_create(NULL, &g_ex) == CX_OK, "create");
  rng r = {seed};
  controller c;
  memset(&c, 0, sizeof c);
  c.seconds = seconds;
  CHECK(cx_executor_spawner(g_ex, &c.sp) == CX_OK, "spawner");
  for (int i = 0; i < 64; i++) {
    int kind = i % K_COUNT;
    th_fut f = th_make(&r, kind);
    cx_join_handle *h = NULL;
    CHECK(cx_spawn(g_ex, &th_vt, &f, (i & 1) ? &h : NULL) == CX_OK, "spawn");
    atomic_fetch_add(&g_spawned, 1);
    if (h && !handle_push(h, kind)) cx_join_handle_detach(h);
  }
  for (int i = 0; i < N_WORKERS; i++) {
    worker *wk = &c.workers[i];
    wk->idx = i;
    wk->seed = seed * (uint64_t)(2 * i + 3) | 1;
    CHECK(cx_spawner_clone(c.sp, &wk->sp) == CX_OK, "spawner clone");
    CHECK(pthread_create(&wk->th, NULL, worker_main, wk) == 0, "thread");
  }
  CHECK(pthread_create(&c.th, NULL, controller_main, &c) == 0, "thread");

  int rc = cx_executor_run(g_ex);
  CHECK(rc == CX_OK || rc == CX_EDEADLK, "run gave %s", cx_err_name(rc));
  pthread_join(c.th, NULL);

  /* Alone now: the executor's invariants, then the accounting. */
  const char *why = NULL;
  CHECK(cx_executor_debug_check(g_ex, &why) == CX_OK, "debug_check: %s", why);
  CHECK(cx_executor_debug_ready_len(g_ex) == 0, "ready tasks after run");
  cx_executor_stats st;
  cx_executor_get_stats(g_ex, &st);
  long spawned = atomic_load(&g_spawned);
  CHECK((long)st.spawned == spawned, "stats.spawned %llu, spawned %ld",
        (unsigned long long)st.spawned, spawned);
  CHECK((long)st.polls == atomic_load(&g_polls), "stats.polls");
  CHECK(rc == CX_OK ? st.live == 0 : st.live > 0, "run %s with %llu live",
        cx_err_name(rc), (unsigned long long)st.live);
  CHECK(cx_executor_destroy(g_ex) == CX_OK, "destroy");
  long drops = atomic_load(&g_drops);
  CHECK(drops == spawned, "%ld futures dropped, %ld spawned", drops, spawned);
  long made = atomic_load(&g_outputs_made);
  long taken = atomic_load(&g_outputs_taken);
  long dropped_out = atomic_load(&g_outputs_dropped);
  CHECK(made == taken + dropped_out,
        "%ld outputs made, %ld taken by joins, %ld dropped", made, taken,
        dropped_out);
  fz_alloc_stats as = fz_alloc_stats_get();
  CHECK(as.live == 0 && as.live_bytes == 0, "%lld blocks leaked",
        (long long)as.live);
  fprintf(stderr,
          "threads: run %s; %ld tasks, %ld polls, %ld wakes from workers, "
          "%ld cancels, %ld blocking joins, %llu parks, %llu allocations; "
          "all freed\n",
          cx_err_name(rc), spawned, atomic_load(&g_polls),
          atomic_load(&g_wakes), atomic_load(&g_cancels),
          atomic_load(&g_joins_waited), (unsigned long long)st.parks,
          (unsigned long long)as.allocs);
  fz_alloc_uninstall();
  return 0;
}
