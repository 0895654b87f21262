/*
 * Observability, private side (executor/observe.c): the per-task debug
 * block, the executor's observer, and the calls the poll loop, the queues
 * and spawning make into it. Every call site is behind `ex->obs != NULL` or
 * a task being tracked (its scheduler is ex->sched_tracked), so with
 * nothing enabled none of this runs.
 */
#ifndef CEXEC_INTERNAL_OBSERVE_H
#define CEXEC_INTERNAL_OBSERVE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "executor/internal/executor.h"
#include "executor/internal/task.h"
#include "executor/observe.h"

/* The debug block of a tracked task: its scheduler's extra block
 * (cx__task_extra, CX__DEBUG_BLOCK_SIZE bytes). Written on the spawning
 * thread before the task is published, then by the owner thread (id,
 * last_poll_ns, queued_ns while RUNNING) and by whichever thread schedules
 * the task (queued_ns, in the tracked scheduler's schedule callback: that
 * thread alone may touch the task then). */
typedef struct cx__debug_block {
  uint64_t id;      /* 0 until the executor accepted the task */
  const char *file; /* spawn site, NULL: unknown */
  int32_t line;
  uint32_t unused;
  uint64_t spawn_ns;     /* cx_clock_now() at spawn */
  uint64_t last_poll_ns; /* start of the last timed poll; 0: none */
  uint64_t queued_ns;    /* when last queued (spawn, wake); 0: unknown */
  char name[CX_TASK_NAME_MAX + 1];
} cx__debug_block;

#define CX__DEBUG_BLOCK_SIZE 96u

static inline cx__debug_block *cx__task_debug(cx__task *t) {
  return (cx__debug_block *)cx__task_extra(t);
}

typedef struct cx__observer {
  bool track;       /* every task gets a debug block */
  uint64_t slow_ns; /* 0: slow-poll warning off */
  cx_slow_poll_fn slow_fn;
  void *slow_ctx;
  cx_hooks hooks;
  /* Owner thread. */
  uint64_t slow_polls;
  uint64_t local_max;
  cx_histogram poll_hist, wake_hist;
} cx__observer;

/* A request from another thread, on the requester's stack; guarded by mu. */
typedef struct cx__obs_request {
  void (*fn)(cx_executor *ex, void *arg); /* runs on the owner thread */
  void *arg;
  struct cx__obs_request *next;
  bool taken; /* the owner took it off the list: it will finish it */
  bool done;
  pthread_cond_t cv;
} cx__obs_request;

/* *out = NULL when opts is NULL or enables nothing. CX_OK, CX_ENOMEM. */
int cx__obs_create(const cx_observe_options *opts, cx__observer **out);
void cx__obs_destroy(cx__observer *o); /* NULL: no-op */

/* Sets up ex->sched_tracked (at create). */
void cx__obs_sched_init(cx_executor *ex);
/* Fills t's debug block (t has one) before it is published. Any thread. */
void cx__obs_task_init(cx__task *t, const char *name, const char *file,
                       int line);
/* The executor accepted t (owner thread): gives a tracked task its id and
 * calls the on_spawn hook. */
void cx__obs_accept(cx_executor *ex, cx__task *t);
/* The timed poll: hooks, clock reads, histograms, slow-poll report. */
cx_poll cx__obs_poll(cx_executor *ex, cx__task *t, cx_context *cx, void *out);
/* t finished (owner thread), before cx__task_complete. */
void cx__obs_complete(cx_executor *ex, cx__task *t, bool cancelled);
/* Runs requests taken off ex->obs_requests (owner thread, mu not held). */
void cx__obs_serve(cx_executor *ex, cx__obs_request *reqs);

#endif /* CEXEC_INTERNAL_OBSERVE_H */
