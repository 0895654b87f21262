/*
 * A short tour of cexec's API, one small scene at a time:
 *
 *   1. spawn a task and keep its join handle; join its output; poll count
 *   2. a task that spawns tasks (cx->executor) and awaits their handles
 *   3. wakes from another thread: a spawner used by a thread, and a task
 *      woken by a thread through a waker it handed over
 *   4. cancellation through a join handle
 *   5. block_on
 *   6. errors: every call returns CX_OK or a CX_E* code (cx_strerror)
 *
 * A future is a C type with a poll function (and optionally drop): see
 * waker/waker.h. Everything a future needs across a CX_PENDING lives in its
 * state struct, which the task owns.
 *
 * Run: bazel run //examples:tour
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "executor/cexec.h"

/* Fail loudly on an unexpected code: the tour checks every call. */
static void check(int rc, const char *what) {
  if (rc != CX_OK) {
    fprintf(stderr, "%s: %s (CX_%s)\n", what, cx_strerror(rc), cx_err_name(rc));
    exit(1);
  }
}

/* ---- a future: counts down, yielding to the executor at each step ------- */

typedef struct countdown {
  int from;
} countdown;

static cx_poll countdown_poll(void *self, cx_context *cx, void *out) {
  countdown *c = self;
  if (c->from > 0) {
    c->from--;
    cx_waker_wake_by_ref(cx->waker); /* "poll me again": a yield */
    return CX_PENDING;
  }
  *(int *)out = 42;
  return CX_READY;
}

static const cx_future_vtable countdown_vtable = {
    .poll = countdown_poll,
    .state_size = sizeof(countdown),
    .state_align = _Alignof(countdown),
    .output_size = sizeof(int)};

/* ---- a future that spawns children and awaits them ---------------------- */

typedef struct parent {
  int spawned;
  cx_join_handle *kids[3];
  int joined, sum;
} parent;

static cx_poll parent_poll(void *self, cx_context *cx, void *out) {
  parent *p = self;
  if (!p->spawned) {
    for (int i = 0; i < 3; i++) {
      countdown c = {i + 1};
      check(cx_spawn(cx->executor, &countdown_vtable, &c, &p->kids[i]),
            "spawn child");
    }
    p->spawned = 1;
  }
  /* Await each child in turn: a join handle polls like a future. */
  while (p->joined < 3) {
    int result, value;
    if (cx_join_handle_poll(p->kids[p->joined], cx, &result, &value,
                            sizeof value) == CX_PENDING)
      return CX_PENDING;
    check(result, "join child");
    p->sum += value;
    p->joined++;
  }
  *(int *)out = p->sum;
  return CX_READY;
}

static void parent_drop(void *self) {
  parent *p = self;
  for (int i = 0; i < 3; i++) cx_join_handle_detach(p->kids[i]);
}

static const cx_future_vtable parent_vtable = {.poll = parent_poll,
                                               .drop = parent_drop,
                                               .state_size = sizeof(parent),
                                               .state_align = _Alignof(parent),
                                               .output_size = sizeof(int)};

/* ---- cross-thread wakes ------------------------------------------------- */

/* A mailbox between a task and a worker thread: the task hands over a
 * clone of its waker, the thread computes, stores the answer and wakes it. */
typedef struct mailbox {
  pthread_mutex_t mu;
  cx_waker waker;
  int has_answer, answer;
} mailbox;

typedef struct asker {
  mailbox *box;
} asker;

static cx_poll asker_poll(void *self, cx_context *cx, void *out) {
  asker *a = self;
  pthread_mutex_lock(&a->box->mu);
  int ready = a->box->has_answer, answer = a->box->answer;
  /* Not there yet: leave (or refresh) our waker for the thread. */
  int rc = ready ? CX_OK : cx_waker_store(&a->box->waker, cx->waker);
  pthread_mutex_unlock(&a->box->mu);
  check(rc, "store waker");
  if (!ready) return CX_PENDING;
  *(int *)out = answer;
  return CX_READY;
}

static const cx_future_vtable asker_vtable = {.poll = asker_poll,
                                              .state_size = sizeof(asker),
                                              .state_align = _Alignof(asker),
                                              .output_size = sizeof(int)};

typedef struct worker_args {
  mailbox *box;
  cx_spawner *spawner; /* owned by the thread: dropped when it is done */
} worker_args;

static void *worker(void *arg) {
  worker_args *w = arg;
  /* Spawn onto the executor from this thread. */
  countdown c = {5};
  check(cx_spawner_spawn(w->spawner, &countdown_vtable, &c, NULL),
        "spawner spawn");
  /* "Compute" the answer, publish it, and wake the task that asked. */
  pthread_mutex_lock(&w->box->mu);
  w->box->answer = 6 * 7;
  w->box->has_answer = 1;
  cx_waker waker = w->box->waker;
  w->box->waker = CX_WAKER_EMPTY;
  pthread_mutex_unlock(&w->box->mu);
  cx_waker_wake(&waker); /* consumes it; a no-op if the task never pended */
  /* run() returns only once every spawner is gone. */
  cx_spawner_drop(w->spawner);
  return NULL;
}

/* ---- a future that never finishes by itself ----------------------------- */

typedef struct forever {
  cx_sleep nap;
} forever;

static cx_poll forever_poll(void *self, cx_context *cx, void *out) {
  forever *f = self;
  int rc;
  if (cx_sleep_poll(&f->nap, cx, &rc) == CX_PENDING) return CX_PENDING;
  *(int *)out = rc;
  return CX_READY;
}

static void forever_drop(void *self) {
  cx_sleep_drop(&((forever *)self)->nap);
  printf("  (the sleeping task's drop ran: its timer is gone)\n");
}

static const cx_future_vtable forever_vtable = {
    .poll = forever_poll,
    .drop = forever_drop,
    .state_size = sizeof(forever),
    .state_align = _Alignof(forever),
    .output_size = sizeof(int)};

int main(void) {
  cx_executor *ex;
  check(cx_executor_create(NULL, &ex), "create");

  printf("1. spawn, join, poll count\n");
  countdown c = {3};
  cx_join_handle *h;
  check(cx_spawn(ex, &countdown_vtable, &c, &h), "spawn");
  int value = 0;
  check(cx_executor_join(ex, h, &value, sizeof value), "join");
  printf("  output %d after %llu polls (3 yields + 1)\n", value,
         (unsigned long long)cx_join_handle_poll_count(h));
  cx_join_handle_detach(h);

  printf("2. a task spawning tasks\n");
  parent p = {0};
  check(cx_spawn(ex, &parent_vtable, &p, &h), "spawn parent");
  check(cx_executor_join(ex, h, &value, sizeof value), "join parent");
  printf("  sum of 3 children: %d\n", value);
  cx_join_handle_detach(h);

  printf("3. wakes from another thread\n");
  mailbox box = {PTHREAD_MUTEX_INITIALIZER, CX_WAKER_EMPTY, 0, 0};
  asker a = {&box};
  check(cx_spawn(ex, &asker_vtable, &a, &h), "spawn asker");
  worker_args args = {&box, NULL};
  check(cx_executor_spawner(ex, &args.spawner), "spawner");
  pthread_t thread;
  if (pthread_create(&thread, NULL, worker, &args) != 0) return 1;
  /* Runs until every task is done and the thread dropped its spawner. */
  check(cx_executor_run(ex), "run");
  pthread_join(thread, NULL);
  check(cx_join_handle_try_join(h, &value, sizeof value), "join asker");
  printf("  the thread answered %d\n", value);
  cx_join_handle_detach(h);
  cx_waker_drop(&box.waker); /* empty by now (the thread took it): a no-op */
  pthread_mutex_destroy(&box.mu);

  printf("4. cancellation\n");
  forever f;
  cx_sleep_init_for(&f.nap, 3600 * CX_NSEC_PER_SEC);
  check(cx_spawn(ex, &forever_vtable, &f, &h), "spawn sleeper");
  cx_executor_run_until_idle(ex); /* it starts its hour-long sleep */
  check(cx_join_handle_cancel(h), "cancel");
  int rc = cx_executor_join(ex, h, &value, sizeof value);
  printf("  join after cancel: %s (CX_%s)\n", cx_strerror(rc), cx_err_name(rc));
  cx_join_handle_detach(h);

  printf("5. block_on\n");
  c.from = 10;
  check(cx_executor_block_on(ex, &countdown_vtable, &c, &value, sizeof value),
        "block_on");
  printf("  on this executor: %d\n", value);
  check(cx_block_on(&countdown_vtable, &c, &value, sizeof value),
        "cx_block_on");
  printf("  on a fresh executor: %d\n", value);

  cx_executor_stats st;
  check(cx_executor_get_stats(ex, &st), "stats");
  printf("  stats: %llu spawned, %llu polls, %llu completed, %llu cancelled\n",
         (unsigned long long)st.spawned, (unsigned long long)st.polls,
         (unsigned long long)st.completed, (unsigned long long)st.cancelled);

  printf("6. errors\n");
  rc = cx_spawn(ex, NULL, NULL, NULL);
  printf("  spawn without a future: %s (CX_%s)\n", cx_strerror(rc),
         cx_err_name(rc));
  cx_spawner *late;
  check(cx_executor_spawner(ex, &late), "spawner");
  check(cx_executor_destroy(ex), "destroy");
  rc = cx_spawner_spawn(late, &countdown_vtable, &c, NULL);
  printf("  spawn after destroy: %s (CX_%s)\n", cx_strerror(rc),
         cx_err_name(rc));
  cx_spawner_drop(late);
  return 0;
}
