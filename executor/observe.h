/*
 * Seeing inside a running executor: a task dump, metrics (with a Prometheus
 * text export), a slow-poll warning and tracing hooks. docs/observability.md
 * shows what each prints and what it costs.
 *
 * Scope: the single-threaded executor (cx_executor). Every record carries a
 * `worker` number (0 here) so that the multi-threaded runtime can report one
 * record per worker through the same types later; the runtime does not
 * implement these calls yet.
 *
 * Costs, in short:
 *   - nothing enabled (the default): one predictable branch per tick of the
 *     poll loop (`ex->obs != NULL`; the loop is compiled plain and
 *     observed), one or two per spawn; no memory per task;
 *   - a task spawned through the named path (CX_SPAWN, cx_spawn_named) or
 *     on an executor with `track_tasks` carries a 96-byte debug block at the
 *     end of its allocation (name, spawn site, timestamps); other tasks do
 *     not (the 56-byte task header never grows);
 *   - any option of cx_observe_options enabled: two clock reads per poll
 *     (poll duration), plus one per wake of a tracked task (wake-to-poll).
 *
 * Threads. Options are fixed when the executor is created. Hooks and the
 * slow-poll callback run on the executor's thread, between or around polls.
 * cx_executor_foreach_task, cx_executor_dump and cx_executor_get_metrics are
 * for the owner thread (any time, also from inside a task). From any other
 * thread use the request variants: they queue a request that the executor
 * serves on its own thread at its next tick (unparking it if it sleeps) and
 * wait for it, bounded by a timeout. A signal handler must not call them
 * (they lock a mutex): let it set a flag or write to a pipe that a watcher
 * thread turns into a request (the "deferred path").
 */
#ifndef CEXEC_OBSERVE_H
#define CEXEC_OBSERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "executor/coro.h"
#include "executor/executor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- naming tasks: the tracked spawn path ------------------------------ */

/* Longest name kept (longer names are truncated). */
#define CX_TASK_NAME_MAX 47

/*
 * cx_spawn with a name (NULL for none; copied, truncated to
 * CX_TASK_NAME_MAX bytes) and a spawn site (`file` must outlive the task:
 * pass __FILE__, as the macros below do; NULL for none). The task carries a
 * debug block (96 bytes) whatever the executor's options. Errors as
 * cx_spawn.
 */
int cx_spawn_named(cx_executor *ex, const char *name, const char *file,
                   int line, const cx_future_vtable *vtable, const void *state,
                   cx_join_handle **handle);

/* cx_spawner_spawn with a name and a spawn site (any thread). */
int cx_spawner_spawn_named(cx_spawner *sp, const char *name, const char *file,
                           int line, const cx_future_vtable *vtable,
                           const void *state, cx_join_handle **handle);

/* Spawn with the caller's file:line recorded (and a name). */
#define CX_SPAWN(ex, vtable, state, handle) \
  cx_spawn_named((ex), NULL, __FILE__, __LINE__, (vtable), (state), (handle))
#define CX_SPAWN_NAMED(ex, name, vtable, state, handle) \
  cx_spawn_named((ex), (name), __FILE__, __LINE__, (vtable), (state), (handle))
#define CX_SPAWNER_SPAWN(sp, vtable, state, handle)                         \
  cx_spawner_spawn_named((sp), NULL, __FILE__, __LINE__, (vtable), (state), \
                         (handle))
#define CX_SPAWNER_SPAWN_NAMED(sp, name, vtable, state, handle)               \
  cx_spawner_spawn_named((sp), (name), __FILE__, __LINE__, (vtable), (state), \
                         (handle))

/* ---- where a coroutine waits --------------------------------------------- */

/*
 * The line a coroutine is suspended at (its cx_coro keeps the line of the
 * await that pended), with `file` (the file of its poll function) in
 * *file_out. If it awaits a child with CX_AWAIT_FUTURE whose vtable has a
 * debug_location, the child's (innermost) location wins. 0 when not
 * suspended (not started, finished).
 */
static inline int cx_coro_debug_location(const cx_coro *co, const char *file,
                                         const char **file_out) {
  if (co->child.vtable && co->child.vtable->debug_location) {
    int l = co->child.vtable->debug_location(co->child.state, file_out);
    if (l > 0) return l;
  }
  if (co->line <= 0) return 0;
  *file_out = file;
  return co->line;
}

/*
 * Defines `static int fn(const void *self, const char **file)` for a
 * coroutine whose state type is `type` with its cx_coro in field `member`;
 * set `.debug_location = fn` in its vtable. Use it in the file of the poll
 * function (__FILE__ is taken here). Costs nothing at run time: the dump
 * reads the resume point the coroutine keeps anyway.
 */
#define CX_CORO_DEBUG_LOCATION(fn, type, member)                           \
  static int fn(const void *self, const char **file) {                     \
    return cx_coro_debug_location(&((const type *)self)->member, __FILE__, \
                                  file);                                   \
  }

/* ---- the task dump ---------------------------------------------------------
 */

typedef enum cx_task_run_state {
  CX_TASK_SCHEDULED = 0, /* queued, waiting for its poll */
  CX_TASK_RUNNING = 1,   /* being polled now (the dump came from inside it) */
  CX_TASK_IDLE = 2,      /* waiting for a wake */
  CX_TASK_CANCELLING = 3 /* cancellation requested, not yet dropped */
} cx_task_run_state;

/* "scheduled", "running", "idle", "cancelling" (never NULL). */
const char *cx_task_run_state_name(cx_task_run_state s);

/* What hooks and reports know about a task. Pointers are valid during the
 * call only. Untracked tasks (no debug block) have id 0, no name, no site. */
typedef struct cx_task_view {
  uint64_t id;            /* 1, 2, ... in spawn order per executor; 0 */
  const void *task;       /* identity of the task (not a handle) */
  const char *name;       /* NULL: none */
  const char *spawn_file; /* NULL: unknown */
  int spawn_line;
  unsigned worker; /* 0 (the runtime's worker index, later) */
} cx_task_view;

#define CX_NS_UNKNOWN UINT64_MAX

/* One live task in a dump. Its strings (name) point into the task: valid
 * during the visit only; copy what you keep. */
typedef struct cx_task_dump_entry {
  cx_task_view task;
  cx_task_run_state state;
  uint64_t polls;
  uint64_t since_spawn_ns; /* CX_NS_UNKNOWN: untracked */
  uint64_t since_poll_ns;  /* since the start of its last poll; CX_NS_UNKNOWN:
                              never polled, or not timed (no observe option) */
  const char *await_file;  /* NULL: unknown (no debug_location, running, */
  int await_line;          /*       or not suspended at an await) */
} cx_task_dump_entry;

/* Called once per live task; return nonzero to stop the walk. */
typedef int (*cx_task_visit_fn)(void *ctx, const cx_task_dump_entry *e);

/*
 * Calls fn for every live task of ex (spawned and taken in, not finished;
 * tasks spawned from another thread appear once the executor took them in,
 * at its next tick), most recently spawned first. Owner thread, any time,
 * also from inside a task (which then shows as running); fn must not spawn,
 * cancel or finish tasks of ex. Returns the number of tasks visited, or
 * CX_EINVAL.
 */
int cx_executor_foreach_task(cx_executor *ex, cx_task_visit_fn fn, void *ctx);

/* Prints the live tasks as a table to out (a header line, one line per
 * task). Owner thread, as cx_executor_foreach_task. Returns the number of
 * tasks, CX_EINVAL. */
int cx_executor_dump(cx_executor *ex, FILE *out);

/*
 * From a thread other than the owner: asks the executor to run
 * cx_executor_foreach_task(ex, fn, ctx) on its own thread at its next tick
 * (unparking it), and waits for it. fn runs on the executor's thread.
 * Returns what foreach returned, CX_ETIMEDOUT when the executor did not
 * serve the request within timeout_ns (it is not being driven, or a poll
 * blocks: from the owner thread call the direct form), CX_ESHUTDOWN
 * (destroyed), CX_ENOMEM, CX_EINVAL. Called from the owner thread itself it
 * runs directly. ex must stay allocated during the call: hold a spawner of
 * it (destroy then makes the call fail with CX_ESHUTDOWN or time out).
 */
int cx_executor_request_foreach_task(cx_executor *ex, cx_task_visit_fn fn,
                                     void *ctx, uint64_t timeout_ns);

/* cx_executor_dump, from another thread, as above. */
int cx_executor_request_dump(cx_executor *ex, FILE *out, uint64_t timeout_ns);

/* ---- metrics ---------------------------------------------------------------
 */

/* A log2-scale histogram of durations. Bucket 0 counts [0, 1024) ns; bucket
 * i (1 <= i < CX_HIST_BUCKETS - 1) counts [2^(i+9), 2^(i+10)) ns; the last
 * one everything from 2^(CX_HIST_BUCKETS + 8) ns (about 4.3 s) up. */
#define CX_HIST_BUCKETS 24
typedef struct cx_histogram {
  uint64_t count;
  uint64_t sum_ns;
  uint64_t buckets[CX_HIST_BUCKETS]; /* not cumulative */
} cx_histogram;

/* The exclusive upper bound of bucket i in ns (UINT64_MAX for the last). */
uint64_t cx_histogram_bucket_upper_ns(unsigned i);

typedef struct cx_executor_metrics {
  unsigned worker;            /* 0 (one record per worker, later) */
  cx_executor_stats stats;    /* spawned, polls, completed, cancelled, parks,
                                 live, timers (registered now) */
  uint64_t timers_started;    /* timer registrations since creation */
  uint64_t local_queue;       /* tasks in the local ready queue now */
  uint64_t remote_queue;      /* woken or spawned by other threads, not yet
                                 taken in */
  uint64_t local_queue_max;   /* deepest local queue seen at a poll (timed) */
  uint64_t slow_polls;        /* polls over the slow-poll threshold */
  bool timed;                 /* the fields below (and local_queue_max) are
                                 measured: some observe option is on */
  cx_histogram poll_duration; /* every poll */
  cx_histogram wake_to_poll;  /* tracked tasks: from the spawn, the wake
                                 (or the re-queue after a wake during their
                                 poll) to the start of their poll */
} cx_executor_metrics;

/* A snapshot of ex's metrics. Owner thread (any time). CX_OK, CX_EINVAL. */
int cx_executor_get_metrics(cx_executor *ex, cx_executor_metrics *out);

/* The same from another thread, served by the executor as
 * cx_executor_request_foreach_task. */
int cx_executor_request_metrics(cx_executor *ex, cx_executor_metrics *out,
                                uint64_t timeout_ns);

/*
 * Writes m[0..n) (one record per worker: label worker="<m[i].worker>") in
 * Prometheus' text exposition format (version 0.0.4) to buf, NUL-terminated.
 * Metric names start with "cexec_"; histograms are written only when
 * m[0].timed. Pure function, any thread. Returns the length written
 * (without the NUL), CX_ENOSPC when buf (cap bytes) is too small (buf then
 * holds a truncated, NUL-terminated prefix if cap > 0), CX_EINVAL.
 */
int cx_metrics_format_prometheus(const cx_executor_metrics *m, size_t n,
                                 char *buf, size_t cap);

/* ---- slow polls and hooks
 * ---------------------------------------------------- */

#define CX_SLOW_POLL_DEFAULT_NS (10 * CX_NSEC_PER_MSEC)

typedef struct cx_slow_poll_report {
  cx_task_view task;
  uint64_t duration_ns;
  uint64_t threshold_ns;
  cx_poll result;
} cx_slow_poll_report;

/* Called on the executor's thread right after the slow poll returned. */
typedef void (*cx_slow_poll_fn)(void *ctx, const cx_slow_poll_report *r);

/* Tracing hooks: each NULL by default; all run on the executor's thread. The
 * task view is valid during the call only. */
typedef struct cx_hooks {
  void *ctx;
  /* The executor accepted a task (a spawn on its thread: inside the spawn
   * call; from a spawner on another thread: when the executor takes it in). */
  void (*on_spawn)(void *ctx, const cx_task_view *t);
  void (*before_poll)(void *ctx, const cx_task_view *t);
  void (*after_poll)(void *ctx, const cx_task_view *t, cx_poll result,
                     uint64_t poll_ns);
  /* The task finished (after its last poll, or cancelled), before its
   * future is dropped. */
  void (*on_complete)(void *ctx, const cx_task_view *t, bool cancelled);
} cx_hooks;

/* cx_executor_options.observe points at one of these (copied at create). */
typedef struct cx_observe_options {
  /* Every task gets the debug block (not only named ones): ids, spawn
   * times, last-poll times, wake-to-poll times for all. */
  bool track_tasks;
  /* Time every poll into the histograms (also implied by any other
   * option). */
  bool metrics;
  /* Report polls that take slow_poll_ns or longer (0: the default, 10 ms)
   * through on_slow_poll (NULL: one line on stderr). */
  bool slow_poll;
  uint64_t slow_poll_ns;
  cx_slow_poll_fn on_slow_poll;
  void *slow_poll_ctx;
  cx_hooks hooks;
} cx_observe_options;

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_OBSERVE_H */
