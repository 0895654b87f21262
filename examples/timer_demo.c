/*
 * The timer demo of the async book's "Applied: Build an Executor", in C.
 *
 * The Rust original:
 *
 *   let (executor, spawner) = new_executor_and_spawner();
 *   spawner.spawn(async {
 *       println!("howdy!");
 *       TimerFuture::new(Duration::new(2, 0)).await;
 *       println!("done!");
 *   });
 *   drop(spawner);
 *   executor.run();
 *
 * Here the async block is a coroutine (executor/coro.h: the awaits are
 * resume points kept in the future's state), the TimerFuture is cexec's
 * cx_sleep, and no thread is started for the timer: the executor parks
 * until the deadline. Prints "howdy!", pauses two seconds, prints "done!".
 *
 * Run: bazel run //examples:timer_demo
 */
#include <stdio.h>

#include "executor/cexec.h"

/* The async block's state: its resume point, and what lives across the
 * await. */
typedef struct howdy {
  cx_coro co;
  cx_sleep timer;
  int rc;
} howdy;

static cx_poll howdy_poll(void *self, cx_context *cx, void *out) {
  howdy *h = self;
  (void)out; /* no output */
  CX_CORO_BEGIN(&h->co);
  printf("howdy!\n");
  fflush(stdout);
  cx_sleep_init_for(&h->timer, 2 * CX_NSEC_PER_SEC);
  CX_AWAIT(&h->co, cx_sleep_poll(&h->timer, cx, &h->rc));
  if (h->rc != CX_OK) fprintf(stderr, "sleep: %s\n", cx_strerror(h->rc));
  printf("done!\n");
  CX_CORO_END(&h->co);
}

/* Called once, whether the task finished or was cancelled: the sleep's drop
 * is idempotent and safe on a zeroed value. */
static void howdy_drop(void *self) {
  howdy *h = self;
  cx_sleep_drop(&h->timer);
}

static const cx_future_vtable howdy_vtable = {.poll = howdy_poll,
                                              .drop = howdy_drop,
                                              .state_size = sizeof(howdy),
                                              .state_align = _Alignof(howdy),
                                              .output_size = 0};

int main(void) {
  cx_executor *executor;
  cx_spawner *spawner;
  int rc = cx_executor_create(NULL, &executor);
  if (rc != CX_OK) {
    fprintf(stderr, "cx_executor_create: %s\n", cx_strerror(rc));
    return 1;
  }
  rc = cx_executor_spawner(executor, &spawner);
  if (rc == CX_OK) {
    howdy task = {0}; /* zeroed: not started, nothing to drop */
    rc = cx_spawner_spawn(spawner, &howdy_vtable, &task, NULL);
    /* Drop the spawner so that the executor knows it is finished and won't
     * receive more incoming tasks to run. */
    cx_spawner_drop(spawner);
  }
  /* Run the executor until the task queue is empty. */
  if (rc == CX_OK) rc = cx_executor_run(executor);
  if (rc != CX_OK) fprintf(stderr, "timer_demo: %s\n", cx_strerror(rc));
  cx_executor_destroy(executor);
  return rc == CX_OK ? 0 : 1;
}
