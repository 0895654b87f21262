/* cexec quickstart: tasks, join handles, timers, a spawn from a thread. */
#include <pthread.h>
#include <stdio.h>

#include "executor/cexec.h"

typedef struct job { /* a future: this state, a poll, a drop, a vtable */
  cx_sleep nap;      /* a timer (no thread per sleep), from its 1st poll */
  int id;
} job;
static cx_poll job_poll(void *self, cx_context *cx, void *out) {
  job *j = self;
  if (cx_sleep_poll(&j->nap, cx, NULL) == CX_PENDING) return CX_PENDING;
  printf("job %d: slept %d ms\n", j->id, j->id * 10);
  *(int *)out = j->id * 100; /* the task's output */
  return CX_READY;
}
static void job_drop(void *self) {
  cx_sleep_drop(&((job *)self)->nap);
}
static const cx_future_vtable job_vt = {.poll = job_poll,
                                        .drop = job_drop,
                                        .state_size = sizeof(job),
                                        .state_align = _Alignof(job),
                                        .output_size = sizeof(int)};

static void *other_thread(void *spawner) { /* any thread can use a spawner */
  job j = {.id = 2};
  cx_sleep_init_for(&j.nap, 20 * CX_NSEC_PER_MSEC);
  int rc = cx_spawner_spawn(spawner, &job_vt, &j, NULL); /* NULL: detached */
  printf("thread: spawned job 2: %s\n", cx_strerror(rc));
  cx_spawner_drop(spawner); /* run() returns once no spawner is left */
  return NULL;
}

int main(void) {
  cx_executor *ex;
  cx_spawner *sp;
  cx_join_handle *h;
  pthread_t t;
  job j = {.id = 1};
  cx_sleep_init_for(&j.nap, 10 * CX_NSEC_PER_MSEC);
  if (cx_executor_create(NULL, &ex) || cx_spawn(ex, &job_vt, &j, &h) ||
      cx_executor_spawner(ex, &sp))
    return 1; /* every call returns CX_OK (0) or a CX_E* code */
  pthread_create(&t, NULL, other_thread, sp);
  printf("run: %s\n", cx_strerror(cx_executor_run(ex))); /* all tasks done */
  pthread_join(t, NULL);
  int out = 0, rc = cx_join_handle_try_join(h, &out, sizeof out);
  printf("job 1 returned %d (%s)\n", out, cx_strerror(rc));
  cx_join_handle_detach(h);
  return cx_executor_destroy(ex);
}
