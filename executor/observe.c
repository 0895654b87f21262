/*
 * Observability (executor/observe.h): the task dump, metrics and their
 * Prometheus export, the slow-poll warning and the tracing hooks.
 *
 * Design. Nothing here touches a task or the poll loop unless it was asked
 * for. The executor holds `obs`, NULL unless cx_executor_options.observe
 * enabled something; the poll loop makes one test of it per poll and, when
 * set, polls through cx__obs_poll (timing, hooks, slow-poll check) instead
 * of calling the future directly. Per-task data (name, spawn site,
 * timestamps) lives in a block at the end of a tracked task's own
 * allocation. Tracked tasks are spawned on a second scheduler of the
 * executor, `sched_tracked`, which asks for that block (task_extra) and
 * stamps wake times; so untracked tasks keep their size, the 56-byte
 * header never grows and has no flag for it, and the wake path of
 * untracked tasks has no test for it.
 *
 * Threads. The dump and metrics read owner-thread state without locks, so
 * they run on the owner thread; another thread queues a request on
 * ex->obs_requests (under mu) and sets remote_pending, like a remote wake:
 * the executor serves it in cx__take_remote at its next tick, at no cost to
 * a busy executor's hot path (the flag is already tested there).
 */
#define _POSIX_C_SOURCE 200809L /* pthread_condattr_setclock */

#include "executor/internal/observe.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "timer/timer.h"
#include "waker/alloc.h"

_Static_assert(sizeof(cx__debug_block) <= CX__DEBUG_BLOCK_SIZE,
               "debug block larger than the space tasks reserve for it");
_Static_assert(_Alignof(cx__debug_block) <= 8, "debug block alignment");

/* ---- the observer -------------------------------------------------------- */

int cx__obs_create(const cx_observe_options *opts, cx__observer **out) {
  *out = NULL;
  if (opts == NULL) return CX_OK;
  const cx_hooks *h = &opts->hooks;
  bool hooks = h->on_spawn || h->before_poll || h->after_poll || h->on_complete;
  if (!opts->track_tasks && !opts->metrics && !opts->slow_poll && !hooks)
    return CX_OK;
  cx__observer *o = cx_alloc(sizeof *o, _Alignof(cx__observer));
  if (o == NULL) return CX_ENOMEM;
  memset(o, 0, sizeof *o);
  o->track = opts->track_tasks;
  if (opts->slow_poll)
    o->slow_ns =
        opts->slow_poll_ns ? opts->slow_poll_ns : CX_SLOW_POLL_DEFAULT_NS;
  o->slow_fn = opts->on_slow_poll;
  o->slow_ctx = opts->slow_poll_ctx;
  o->hooks = *h;
  *out = o;
  return CX_OK;
}

void cx__obs_destroy(cx__observer *o) {
  if (o) cx_free(o, sizeof *o, _Alignof(cx__observer));
}

/* ---- per task ------------------------------------------------------------ */

void cx__obs_task_init(cx__task *t, const char *name, const char *file,
                       int line) {
  cx__debug_block *d = cx__task_debug(t);
  d->file = file;
  d->line = line;
  d->spawn_ns = cx_clock_now();
  d->queued_ns = d->spawn_ns;
  if (name) {
    size_t n = strlen(name);
    if (n > CX_TASK_NAME_MAX) n = CX_TASK_NAME_MAX;
    memcpy(d->name, name, n);
    d->name[n] = '\0';
  }
}

static void cx__obs_view(cx__task *t, cx_task_view *v) {
  cx__debug_block *d = cx__task_debug(t);
  v->id = d ? d->id : 0;
  v->task = t;
  v->name = d && d->name[0] ? d->name : NULL;
  v->spawn_file = d ? d->file : NULL;
  v->spawn_line = d ? d->line : 0;
  v->worker = 0;
}

void cx__obs_accept(cx_executor *ex, cx__task *t) {
  cx__debug_block *d = cx__task_debug(t);
  if (d) d->id = ++ex->next_task_id;
  cx__observer *o = ex->obs;
  if (o && o->hooks.on_spawn) {
    cx_task_view v;
    cx__obs_view(t, &v);
    o->hooks.on_spawn(o->hooks.ctx, &v);
  }
}

/* The tracked scheduler: the executor's own callbacks, plus the wake time.
 * schedule runs on the thread that won t's SCHEDULED transition, the only
 * one that may touch t until it is popped. */
static void cx__tracked_schedule(cx__scheduler *s, cx__task *t) {
  cx_executor *ex = cx__ex_of_tracked(s);
  cx__task_debug(t)->queued_ns = cx_clock_now();
  ex->sched.schedule(&ex->sched, t);
}

static void cx__tracked_task_freed(cx__scheduler *s) {
  cx_executor *ex = cx__ex_of_tracked(s);
  ex->sched.task_freed(&ex->sched);
}

void cx__obs_sched_init(cx_executor *ex) {
  ex->sched_tracked.schedule = cx__tracked_schedule;
  ex->sched_tracked.task_freed = cx__tracked_task_freed;
  ex->sched_tracked.task_extra = CX__DEBUG_BLOCK_SIZE;
}

/* ---- histograms ---------------------------------------------------------- */

static unsigned cx__hist_bucket(uint64_t ns) {
  if (ns < 1024) return 0;
  unsigned log2 = 63u - (unsigned)__builtin_clzll(ns); /* >= 10 */
  unsigned b = log2 - 9;
  return b < CX_HIST_BUCKETS ? b : CX_HIST_BUCKETS - 1;
}

uint64_t cx_histogram_bucket_upper_ns(unsigned i) {
  if (i >= CX_HIST_BUCKETS - 1) return UINT64_MAX;
  return (uint64_t)1 << (i + 10);
}

static void cx__hist_add(cx_histogram *h, uint64_t ns) {
  h->count++;
  h->sum_ns += ns;
  h->buckets[cx__hist_bucket(ns)]++;
}

/* ---- the timed poll --------------------------------------------------------
 */

static void cx__slow_poll_stderr(const cx_slow_poll_report *r) {
  char id[32] = "-";
  if (r->task.id) snprintf(id, sizeof id, "#%" PRIu64, r->task.id);
  fprintf(stderr,
          "cexec: slow poll: task %s%s%s%s spawned at %s:%d took %.3f ms "
          "(threshold %.3f ms): blocking the executor?\n",
          id, r->task.name ? " \"" : "", r->task.name ? r->task.name : "",
          r->task.name ? "\"" : "",
          r->task.spawn_file ? r->task.spawn_file : "?", r->task.spawn_line,
          (double)r->duration_ns / 1e6, (double)r->threshold_ns / 1e6);
}

cx_poll cx__obs_poll(cx_executor *ex, cx__task *t, cx_context *cx, void *out) {
  cx__observer *o = ex->obs;
  cx__debug_block *d = cx__task_debug(t);
  cx_task_view v;
  bool view = o->hooks.before_poll || o->hooks.after_poll || o->slow_ns;
  if (view) cx__obs_view(t, &v);
  if (ex->local_len > o->local_max) o->local_max = ex->local_len;
  if (o->hooks.before_poll) o->hooks.before_poll(o->hooks.ctx, &v);
  uint64_t t0 = cx_clock_now();
  if (d) {
    if (d->queued_ns && t0 >= d->queued_ns)
      cx__hist_add(&o->wake_hist, t0 - d->queued_ns);
    d->queued_ns = 0;
    d->last_poll_ns = t0;
  }
  cx_poll r = t->vtable->poll(cx__task_state(t), cx, out);
  uint64_t t1 = cx_clock_now();
  uint64_t dur = t1 - t0;
  cx__hist_add(&o->poll_hist, dur);
  /* A wake during the poll re-queues the task right after it (poll.c):
   * this is then its queue time. Otherwise the wake that comes later
   * overwrites it (cx__obs_stamp_queued). The task is RUNNING: no other
   * thread may schedule it now. */
  if (d && r == CX_PENDING) d->queued_ns = t1;
  if (o->slow_ns && dur >= o->slow_ns) {
    o->slow_polls++;
    cx_slow_poll_report rep = {v, dur, o->slow_ns, r};
    if (o->slow_fn)
      o->slow_fn(o->slow_ctx, &rep);
    else
      cx__slow_poll_stderr(&rep);
  }
  if (o->hooks.after_poll) o->hooks.after_poll(o->hooks.ctx, &v, r, dur);
  return r;
}

void cx__obs_complete(cx_executor *ex, cx__task *t, bool cancelled) {
  cx__observer *o = ex->obs;
  if (o->hooks.on_complete) {
    cx_task_view v;
    cx__obs_view(t, &v);
    o->hooks.on_complete(o->hooks.ctx, &v, cancelled);
  }
}

/* ---- the task dump ------------------------------------------------------- */

const char *cx_task_run_state_name(cx_task_run_state s) {
  switch (s) {
    case CX_TASK_SCHEDULED:
      return "scheduled";
    case CX_TASK_RUNNING:
      return "running";
    case CX_TASK_IDLE:
      return "idle";
    case CX_TASK_CANCELLING:
      return "cancelling";
  }
  return "?";
}

/* carried_ok: the executor runs without observability, so a RUNNING task
 * that this thread is not polling is one poll.c queued again still RUNNING
 * (the self-wake fast path; observed executors never do that). */
static void cx__dump_entry(cx__task *t, uint64_t now, bool carried_ok,
                           cx_task_dump_entry *e) {
  memset(e, 0, sizeof *e);
  cx__obs_view(t, &e->task);
  unsigned f = cx__task_flags(t);
  if (f & CX__CANCELLED)
    e->state = CX_TASK_CANCELLING;
  else if ((f & CX__RUNNING) && carried_ok && t != cx__tls_polling.task)
    e->state = CX_TASK_SCHEDULED; /* carried (poll.c): queued to poll again */
  else if (f & CX__RUNNING)
    e->state = CX_TASK_RUNNING;
  else if (f & CX__SCHEDULED)
    e->state = CX_TASK_SCHEDULED;
  else
    e->state = CX_TASK_IDLE;
  /* Relaxed: a statistic, written by this (the owner) thread. */
  e->polls = atomic_load_explicit(&t->polls, memory_order_relaxed);
  cx__debug_block *d = cx__task_debug(t);
  e->since_spawn_ns =
      d && now >= d->spawn_ns ? now - d->spawn_ns : CX_NS_UNKNOWN;
  e->since_poll_ns = d && d->last_poll_ns && now >= d->last_poll_ns
                         ? now - d->last_poll_ns
                         : CX_NS_UNKNOWN;
  /* A running task's state is mid-poll: its resume point means nothing. */
  if (e->state != CX_TASK_RUNNING && t->vtable->debug_location) {
    const char *file = NULL;
    int line = t->vtable->debug_location(cx__task_state(t), &file);
    if (line > 0 && file) {
      e->await_file = file;
      e->await_line = line;
    }
  }
}

int cx_executor_foreach_task(cx_executor *ex, cx_task_visit_fn fn, void *ctx) {
  if (ex == NULL || fn == NULL) return CX_EINVAL;
  uint64_t now = cx_clock_now();
  int n = 0;
  for (cx__task *t = ex->owned; t; t = t->owned_next) {
    cx_task_dump_entry e;
    cx__dump_entry(t, now, ex->obs == NULL, &e);
    if (n < INT32_MAX) n++;
    if (fn(ctx, &e)) break;
  }
  return n;
}

/* "850 ns", "12.3 us", "4.56 ms", "1.23 s", or "-". */
static void cx__fmt_ns(char *buf, size_t cap, uint64_t ns) {
  if (ns == CX_NS_UNKNOWN)
    snprintf(buf, cap, "-");
  else if (ns < 1000)
    snprintf(buf, cap, "%" PRIu64 " ns", ns);
  else if (ns < 1000000)
    snprintf(buf, cap, "%.1f us", (double)ns / 1e3);
  else if (ns < 1000000000)
    snprintf(buf, cap, "%.2f ms", (double)ns / 1e6);
  else
    snprintf(buf, cap, "%.2f s", (double)ns / 1e9);
}

static int cx__dump_line(void *ctx, const cx_task_dump_entry *e) {
  FILE *out = ctx;
  char id[24], spawned[24], polled[24], site[160], at[160];
  if (e->task.id)
    snprintf(id, sizeof id, "#%" PRIu64, e->task.id);
  else
    snprintf(id, sizeof id, "%p", e->task.task);
  cx__fmt_ns(spawned, sizeof spawned, e->since_spawn_ns);
  cx__fmt_ns(polled, sizeof polled, e->since_poll_ns);
  if (e->task.spawn_file)
    snprintf(site, sizeof site, "%s:%d", e->task.spawn_file,
             e->task.spawn_line);
  else
    snprintf(site, sizeof site, "-");
  if (e->await_file)
    snprintf(at, sizeof at, "%s:%d", e->await_file, e->await_line);
  else
    snprintf(at, sizeof at, "-");
  fprintf(out, "%-16s %-10s %8" PRIu64 " %10s %10s  %-20s %-28s %s\n", id,
          cx_task_run_state_name(e->state), e->polls, spawned, polled,
          e->task.name ? e->task.name : "-", site, at);
  return 0;
}

int cx_executor_dump(cx_executor *ex, FILE *out) {
  if (ex == NULL || out == NULL) return CX_EINVAL;
  fprintf(out, "cexec task dump: executor %p, worker 0, %zu live tasks\n",
          (void *)ex, ex->live);
  fprintf(out, "%-16s %-10s %8s %10s %10s  %-20s %-28s %s\n", "ID", "STATE",
          "POLLS", "SPAWNED", "POLLED", "NAME", "SPAWNED AT", "WAITING AT");
  int n = cx_executor_foreach_task(ex, cx__dump_line, out);
  fflush(out);
  return n;
}

/* ---- requests from other threads ----------------------------------------- */

void cx__obs_serve(cx_executor *ex, cx__obs_request *reqs) {
  while (reqs) {
    cx__obs_request *r = reqs;
    reqs = r->next; /* before `done`: r lives on the requester's stack */
    r->fn(ex, r->arg);
    pthread_mutex_lock(&ex->mu);
    r->done = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&ex->mu);
  }
}

static int cx__obs_request_run(cx_executor *ex,
                               void (*fn)(cx_executor *, void *), void *arg,
                               uint64_t timeout_ns) {
  if (cx__ex_is_current(ex)) {
    fn(ex, arg);
    return CX_OK;
  }
  cx__obs_request r;
  memset(&r, 0, sizeof r);
  r.fn = fn;
  r.arg = arg;
  pthread_condattr_t ca;
  if (pthread_condattr_init(&ca) != 0) return CX_ENOMEM;
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int err = pthread_cond_init(&r.cv, &ca);
  pthread_condattr_destroy(&ca);
  if (err != 0) return CX_ENOMEM;
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  uint64_t ns = (uint64_t)deadline.tv_nsec + timeout_ns % CX_NSEC_PER_SEC;
  uint64_t secs = timeout_ns / CX_NSEC_PER_SEC + ns / CX_NSEC_PER_SEC;
  /* Clamp far deadlines (UINT64_MAX: "forever") to ~100 years. */
  if (secs > 3153600000u) secs = 3153600000u;
  deadline.tv_sec += (time_t)secs;
  deadline.tv_nsec = (long)(ns % CX_NSEC_PER_SEC);

  int rc = CX_OK;
  pthread_mutex_lock(&ex->mu);
  if (ex->closed) {
    rc = CX_ESHUTDOWN;
  } else {
    r.next = ex->obs_requests;
    ex->obs_requests = &r;
    /* Release: pairs with cx__take_remote's acquire load, which then locks
     * mu and finds the request (the same path as a remote wake). */
    atomic_store_explicit(&ex->remote_pending, true, memory_order_release);
    cx_driver *d = cx__claim_unpark_locked(ex);
    if (d) {
      pthread_mutex_unlock(&ex->mu);
      cx__unpark(ex, d);
      pthread_mutex_lock(&ex->mu);
    }
    while (!r.done) {
      if (r.taken) {
        /* The owner is running it now and will signal: wait for that
         * without a deadline (r is on our stack). */
        pthread_cond_wait(&r.cv, &ex->mu);
        continue;
      }
      int w = pthread_cond_timedwait(&r.cv, &ex->mu, &deadline);
      if (w == ETIMEDOUT && !r.done && !r.taken) {
        /* Not taken: withdraw it. */
        for (cx__obs_request **p = &ex->obs_requests; *p; p = &(*p)->next)
          if (*p == &r) {
            *p = r.next;
            break;
          }
        rc = CX_ETIMEDOUT;
        break;
      }
    }
  }
  pthread_mutex_unlock(&ex->mu);
  pthread_cond_destroy(&r.cv);
  return rc;
}

typedef struct cx__foreach_req {
  cx_task_visit_fn fn;
  void *ctx;
  int rc;
} cx__foreach_req;

static void cx__foreach_serve(cx_executor *ex, void *arg) {
  cx__foreach_req *q = arg;
  q->rc = cx_executor_foreach_task(ex, q->fn, q->ctx);
}

int cx_executor_request_foreach_task(cx_executor *ex, cx_task_visit_fn fn,
                                     void *ctx, uint64_t timeout_ns) {
  if (ex == NULL || fn == NULL) return CX_EINVAL;
  cx__foreach_req q = {fn, ctx, CX_OK};
  int rc = cx__obs_request_run(ex, cx__foreach_serve, &q, timeout_ns);
  return rc == CX_OK ? q.rc : rc;
}

typedef struct cx__dump_req {
  FILE *out;
  int rc;
} cx__dump_req;

static void cx__dump_serve(cx_executor *ex, void *arg) {
  cx__dump_req *q = arg;
  q->rc = cx_executor_dump(ex, q->out);
}

int cx_executor_request_dump(cx_executor *ex, FILE *out, uint64_t timeout_ns) {
  if (ex == NULL || out == NULL) return CX_EINVAL;
  cx__dump_req q = {out, CX_OK};
  int rc = cx__obs_request_run(ex, cx__dump_serve, &q, timeout_ns);
  return rc == CX_OK ? q.rc : rc;
}

/* ---- metrics
 * ----------------------------------------------------------------- */

int cx_executor_get_metrics(cx_executor *ex, cx_executor_metrics *out) {
  if (ex == NULL || out == NULL) return CX_EINVAL;
  memset(out, 0, sizeof *out);
  int rc = cx_executor_get_stats(ex, &out->stats);
  if (rc != CX_OK) return rc;
  out->worker = 0;
  out->timers_started = ex->timers.next_seq;
  out->local_queue = ex->local_len;
  pthread_mutex_lock(&ex->mu);
  out->remote_queue = ex->remote_len;
  pthread_mutex_unlock(&ex->mu);
  cx__observer *o = ex->obs;
  if (o) {
    out->timed = true;
    out->local_queue_max = o->local_max;
    out->slow_polls = o->slow_polls;
    out->poll_duration = o->poll_hist;
    out->wake_to_poll = o->wake_hist;
  }
  return CX_OK;
}

typedef struct cx__metrics_req {
  cx_executor_metrics *out;
  int rc;
} cx__metrics_req;

static void cx__metrics_serve(cx_executor *ex, void *arg) {
  cx__metrics_req *q = arg;
  q->rc = cx_executor_get_metrics(ex, q->out);
}

int cx_executor_request_metrics(cx_executor *ex, cx_executor_metrics *out,
                                uint64_t timeout_ns) {
  if (ex == NULL || out == NULL) return CX_EINVAL;
  cx__metrics_req q = {out, CX_OK};
  int rc = cx__obs_request_run(ex, cx__metrics_serve, &q, timeout_ns);
  return rc == CX_OK ? q.rc : rc;
}

/* ---- Prometheus text format ------------------------------------------------
 */

typedef struct cx__buf {
  char *p;
  size_t cap, len; /* len counts what would have been written */
} cx__buf;

__attribute__((format(printf, 2, 3))) static void cx__put(cx__buf *b,
                                                          const char *fmt,
                                                          ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t room = b->len < b->cap ? b->cap - b->len : 0;
  int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
  va_end(ap);
  if (n > 0) b->len += (size_t)n;
}

static void cx__family(cx__buf *b, const char *name, const char *type,
                       const char *help) {
  cx__put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

typedef uint64_t (*cx__field_fn)(const cx_executor_metrics *m);

static void cx__scalar(cx__buf *b, const cx_executor_metrics *m, size_t n,
                       const char *name, const char *type, const char *help,
                       cx__field_fn get) {
  cx__family(b, name, type, help);
  for (size_t i = 0; i < n; i++)
    cx__put(b, "%s{worker=\"%u\"} %" PRIu64 "\n", name, m[i].worker,
            get(&m[i]));
}

static void cx__histogram(cx__buf *b, const cx_executor_metrics *m, size_t n,
                          const char *name, const char *help,
                          size_t hist_offset) {
  cx__family(b, name, "histogram", help);
  for (size_t i = 0; i < n; i++) {
    const cx_histogram *h =
        (const cx_histogram *)((const char *)&m[i] + hist_offset);
    uint64_t cum = 0;
    for (unsigned k = 0; k < CX_HIST_BUCKETS; k++) {
      cum += h->buckets[k];
      if (k == CX_HIST_BUCKETS - 1)
        cx__put(b, "%s_bucket{worker=\"%u\",le=\"+Inf\"} %" PRIu64 "\n", name,
                m[i].worker, cum);
      else
        cx__put(b, "%s_bucket{worker=\"%u\",le=\"%.9g\"} %" PRIu64 "\n", name,
                m[i].worker, (double)cx_histogram_bucket_upper_ns(k) / 1e9,
                cum);
    }
    cx__put(b, "%s_sum{worker=\"%u\"} %.9f\n", name, m[i].worker,
            (double)h->sum_ns / 1e9);
    cx__put(b, "%s_count{worker=\"%u\"} %" PRIu64 "\n", name, m[i].worker,
            h->count);
  }
}

#define CX__GETTER(fname, expr)                         \
  static uint64_t fname(const cx_executor_metrics *m) { \
    return (expr);                                      \
  }
CX__GETTER(cx__m_spawned, m->stats.spawned)
CX__GETTER(cx__m_completed, m->stats.completed)
CX__GETTER(cx__m_cancelled, m->stats.cancelled)
CX__GETTER(cx__m_polls, m->stats.polls)
CX__GETTER(cx__m_parks, m->stats.parks)
CX__GETTER(cx__m_slow, m->slow_polls)
CX__GETTER(cx__m_timers_started, m->timers_started)
CX__GETTER(cx__m_live, m->stats.live)
CX__GETTER(cx__m_timers, m->stats.timers)
CX__GETTER(cx__m_local, m->local_queue)
CX__GETTER(cx__m_remote, m->remote_queue)
CX__GETTER(cx__m_local_max, m->local_queue_max)
#undef CX__GETTER

int cx_metrics_format_prometheus(const cx_executor_metrics *m, size_t n,
                                 char *buf, size_t cap) {
  if (m == NULL || n == 0 || (buf == NULL && cap > 0)) return CX_EINVAL;
  cx__buf b = {buf, cap, 0};
  cx__scalar(&b, m, n, "cexec_tasks_spawned_total", "counter",
             "Tasks accepted by the executor.", cx__m_spawned);
  cx__scalar(&b, m, n, "cexec_tasks_completed_total", "counter",
             "Tasks whose future returned ready.", cx__m_completed);
  cx__scalar(&b, m, n, "cexec_tasks_cancelled_total", "counter",
             "Tasks finished by cancellation or shutdown.", cx__m_cancelled);
  cx__scalar(&b, m, n, "cexec_polls_total", "counter", "Future polls made.",
             cx__m_polls);
  cx__scalar(&b, m, n, "cexec_parks_total", "counter",
             "Times the executor parked its thread.", cx__m_parks);
  cx__scalar(&b, m, n, "cexec_slow_polls_total", "counter",
             "Polls over the slow-poll threshold.", cx__m_slow);
  cx__scalar(&b, m, n, "cexec_timers_started_total", "counter",
             "Timer registrations.", cx__m_timers_started);
  cx__scalar(&b, m, n, "cexec_tasks_live", "gauge", "Tasks not yet finished.",
             cx__m_live);
  cx__scalar(&b, m, n, "cexec_timers", "gauge", "Timers registered now.",
             cx__m_timers);
  cx__scalar(&b, m, n, "cexec_local_queue_depth", "gauge",
             "Tasks in the local ready queue.", cx__m_local);
  cx__scalar(&b, m, n, "cexec_remote_queue_depth", "gauge",
             "Tasks woken or spawned by other threads, not yet taken in.",
             cx__m_remote);
  if (m[0].timed) {
    cx__scalar(&b, m, n, "cexec_local_queue_depth_max", "gauge",
               "Deepest local ready queue seen at a poll.", cx__m_local_max);
    cx__histogram(&b, m, n, "cexec_poll_duration_seconds",
                  "Time spent in each poll.",
                  offsetof(cx_executor_metrics, poll_duration));
    cx__histogram(&b, m, n, "cexec_wake_to_poll_seconds",
                  "Time from a tracked task's wake (or spawn) to its poll.",
                  offsetof(cx_executor_metrics, wake_to_poll));
  }
  if (b.len >= cap || b.len > INT32_MAX) return CX_ENOSPC;
  return (int)b.len;
}
