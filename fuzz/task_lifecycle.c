/*
 * Fuzz harness: the task lifecycle on one executor with a manual clock.
 *
 * The input is a program. Its first byte chooses the set-up and the final
 * teardown order; every later byte pair or triple is one operation:
 * spawning tasks (from the owner or through a spawner), stepping the
 * executor or running it until idle, cloning / waking / dropping wakers the
 * harness holds, cancelling, detaching and joining tasks through their
 * handles, waking wakers that futures keep in their own state, advancing the
 * clock, arming an allocation failure, driving the executor with run / join
 * / block_on, and destroying it. The futures are programmable too: each poll
 * reads bytes that make it run operations of its own (spawn children, wake
 * or cancel other tasks, join them, re-enter the executor) and then either
 * complete or pend after arranging a wake-up: yielding, handing a clone of
 * its waker to the harness, storing one in its own state, sleeping on the
 * executor's timers, or awaiting another task's join handle.
 *
 * The harness keeps a model of every task: the flags it must carry
 * (SCHEDULED, RUNNING, COMPLETE, CANCELLED, OUTPUT, JOIN_WAKER) and every
 * reference that must exist: the executor's (the owner's while unfinished,
 * the queue's while SCHEDULED and idle, the poller's while RUNNING, also
 * when a task that woke itself by reference is queued again still RUNNING:
 * "carried", executor/poll.c), the
 * harness's (handle, wakers), the futures' (a waker stored in the task's own
 * state, a registered sleep), and joiners' wakers in join slots. After every
 * operation, and at the start of every poll, it checks through the
 * library's debug API (executor/debug.h) that:
 *   - each task's reference count and flags equal the model's;
 *   - cx_executor_debug_check() passes (no task queued twice, queues match
 *     their counts and the SCHEDULED flags) and the ready queue holds
 *     exactly the tasks the model says are scheduled;
 *   - a task is only polled when scheduled, never after it completed or
 *     was cancelled (its poll count is frozen), and its future is dropped
 *     exactly once;
 *   - the statistics and join results are the model's;
 *   - the counting allocator sees exactly the allocations the model
 *     predicts (tasks, outputs, the executor) and fails the ones it was
 *     told to, and each call whose allocation failed reports CX_ENOMEM and
 *     changes nothing.
 * At the end everything is dropped and the allocator must have no live
 * block: every task, future and output was freed exactly once.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "executor/debug.h"
#include "executor/executor.h"
#include "fuzz/fuzz_harnesses.h"
#include "fuzz/fuzz_util.h"
#include "timer/timer.h"
#include "waker/alloc.h"
#include "waker/error.h"

#define H "task_lifecycle"
#define FAIL(...) fz_fail(H, __VA_ARGS__)
#define CHECK(cond, ...)          \
  do {                            \
    if (!(cond)) FAIL(__VA_ARGS__); \
  } while (0)

enum { MAX_TASKS = 48, MAX_POOL = 64, MAX_SPAWNERS = 4, MAX_OPS_PER_POLL = 3 };

#define FUT_MAGIC 0x46555421u /* live future state */
#define FUT_DEAD 0xdeadf00du  /* dropped */
#define OUT_MAGIC 0x4f555421u

/* ---- the model ----------------------------------------------------------- */

typedef struct fz_task {
  bool used;
  bool freed;              /* the model's reference count reached zero */
  int kind;                /* 0: pointer output; 1: no output, 64-aligned */
  const cx_join_handle *dbg; /* for debug_info (NULL until known) */
  cx_join_handle *handle;  /* held by the harness, or NULL */
  bool hidden_handle;      /* block_on holds a handle to it */
  bool remote_new;         /* spawned through a spawner, not yet taken in */
  /* predicted flags */
  bool scheduled, running, finished, completed, cancel_req, output_taken;
  bool join_armed;
  /* The self-wake fast path (executor/poll.c): self_woken, the task woke
   * itself by reference during its current poll (the state word is not
   * written); carried, it was queued again after that poll still RUNNING. */
  bool self_woken, carried;
  int join_holder; /* task whose waker sits in this task's join slot, or -1 */
  /* references held outside the executor */
  uint32_t pool;   /* harness-held wakers */
  bool slot;       /* the future holds its own waker in its state */
  bool timer;      /* the future's sleep is registered */
  uint64_t deadline;
  cx_waker *slot_ptr; /* inside the future state (never moves) */
  /* accounting */
  uint32_t polls;
  uint32_t drops;
  bool output_alloc, output_freed;
  uint64_t serial; /* the allocation attempt that made the task */
} fz_task;

typedef struct fz_pooled {
  cx_waker w;
  int id;
} fz_pooled;

typedef struct fz_world {
  fz_input in;
  cx_executor *ex;
  bool destroyed;
  uint64_t now;
  fz_task t[MAX_TASKS];
  int ntasks;
  fz_pooled pool[MAX_POOL];
  int npool;
  cx_spawner *sp[MAX_SPAWNERS];
  int nsp;
  int cur;       /* task whose poll returned last and is not settled, or -1 */
  bool in_poll;  /* inside a future's poll */
  bool cur_ready;
  bool driving;  /* inside run / join / block_on: futures restricted */
  bool destroying;
  int join_target; /* task whose handle cx_executor_join is using, or -1 */
  uint64_t pops; /* tasks popped: polls + cancellations at pop */
  /* allocation mirror */
  uint64_t attempts, fail_at, fail_next;
  /* statistics mirror */
  uint64_t st_spawned, st_polls, st_completed, st_cancelled;
} fz_world;

static fz_world *g_w;

/* CX_FUZZ_TRACE=1 in the environment prints every operation and event:
 * for reading what a crashing input does. */
static int g_trace = -1;
#define TRACE(...)                                                      \
  do {                                                                  \
    if (g_trace) {                                                      \
      fprintf(stderr, "  [%s] ", g_w && g_w->in_poll ? "poll" : "top"); \
      fprintf(stderr, __VA_ARGS__);                                     \
      fputc('\n', stderr);                                              \
    }                                                                   \
  } while (0)

/* ---- the futures -------------------------------------------------------- */

typedef struct fz_fut {
  uint32_t magic;
  int id;
  uint8_t pends_left;
  bool sleeping;
  int awaiting; /* task id whose handle we join, or -1 */
  cx_waker slot;
  cx_sleep sleep;
} fz_fut;

typedef struct fz_out {
  uint32_t magic;
  int id;
} fz_out;

static cx_poll fz_fut_poll(void *self, cx_context *cx, void *out);
static void fz_fut_drop(void *self);
static void fz_out_drop(void *out);

static const cx_future_vtable fz_vt[2] = {
    {.poll = fz_fut_poll,
     .drop = fz_fut_drop,
     .drop_output = fz_out_drop,
     .state_size = sizeof(fz_fut),
     .output_size = sizeof(fz_out *)},
    {.poll = fz_fut_poll,
     .drop = fz_fut_drop,
     .state_size = sizeof(fz_fut),
     .state_align = 64},
};

/* ---- model helpers ------------------------------------------------------- */

static bool m_alloc(fz_world *w) {
  w->attempts++;
  return !(w->attempts == w->fail_at || w->attempts == w->fail_next);
}

/* How many join slots of live tasks hold a waker of each task. */
FZ_NO_COVERAGE static void m_slot_refs(const fz_world *w, uint32_t *sr) {
  memset(sr, 0, sizeof(uint32_t) * MAX_TASKS);
  for (int j = 0; j < w->ntasks; j++)
    if (w->t[j].used && !w->t[j].freed && w->t[j].join_holder >= 0)
      sr[w->t[j].join_holder]++;
}

/* Task i's references, given the join-slot counts. */
FZ_NO_COVERAGE static uint64_t m_refs_with(const fz_world *w, int i, const uint32_t *sr) {
  const fz_task *T = &w->t[i];
  uint64_t r = T->pool + (T->handle ? 1 : 0) + (T->hidden_handle ? 1 : 0) +
               (T->slot ? 1 : 0) + (T->timer ? 1 : 0) + sr[i];
  if (!T->finished) {
    r += 1; /* owner */
    if (T->running) r += 1;
    else if (T->scheduled) r += 1; /* queue */
  }
  return r;
}

FZ_NO_COVERAGE static uint64_t m_refs(const fz_world *w, int i) {
  uint32_t sr[MAX_TASKS];
  m_slot_refs(w, sr);
  return m_refs_with(w, i, sr);
}

/* Marks tasks whose references are all gone as freed (a freed task drops
 * the waker in its join slot, which may free its holder: loop). */
FZ_NO_COVERAGE static void m_settle_frees(fz_world *w) {
  bool changed = true;
  uint32_t sr[MAX_TASKS];
  while (changed) {
    changed = false;
    m_slot_refs(w, sr);
    for (int i = 0; i < w->ntasks; i++) {
      fz_task *T = &w->t[i];
      if (!T->used || T->freed) continue;
      if (m_refs_with(w, i, sr) == 0) {
        CHECK(T->finished, "model: task %d unreferenced but unfinished", i);
        T->freed = true;
        changed = true;
      }
    }
  }
}

/* Any wake (by value or by reference) of task i. The reference a by-value
 * wake consumes is removed by the caller (pool, slot, timer). */
static void m_wake(fz_world *w, int i) {
  fz_task *T = &w->t[i];
  if (T->finished) return;
  T->scheduled = true; /* idle: queued; RUNNING: re-queued after the poll */
}

/* A wake by reference of task i: during i's own poll it takes the
 * self-wake fast path (no SCHEDULED; the poller queues i again). */
static void m_wake_ref(fz_world *w, int i) {
  if (w->in_poll && w->cur == i) {
    w->t[i].self_woken = true;
    return;
  }
  m_wake(w, i);
}

static int m_cancel(fz_world *w, int i) {
  fz_task *T = &w->t[i];
  if (T->finished) return CX_EALREADY;
  if (!T->cancel_req) {
    T->cancel_req = true;
    if (!T->running) T->scheduled = true;
  }
  return CX_OK;
}

FZ_NO_COVERAGE static bool m_ex_alive(const fz_world *w) {
  if (!w->destroyed || w->nsp > 0) return true;
  for (int i = 0; i < w->ntasks; i++)
    if (w->t[i].used && !w->t[i].freed) return true;
  return false;
}

FZ_NO_COVERAGE static int64_t m_live_blocks(const fz_world *w) {
  int64_t n = m_ex_alive(w) ? 1 : 0;
  for (int i = 0; i < w->ntasks; i++) {
    const fz_task *T = &w->t[i];
    if (!T->used) continue;
    if (!T->freed) n++;
    if (T->output_alloc && !T->output_freed) n++;
  }
  return n;
}

/* ---- the check ----------------------------------------------------------- */

FZ_NO_COVERAGE static void fz_check(fz_world *w, const char *where) {
  m_settle_frees(w);
  uint32_t sr[MAX_TASKS];
  m_slot_refs(w, sr);
  size_t scheduled = 0, timers = 0, owned = 0;
  for (int i = 0; i < w->ntasks; i++) {
    fz_task *T = &w->t[i];
    if (!T->used) continue;
    CHECK(T->drops <= 1, "%s: task %d future dropped %u times", where, i,
          T->drops);
    int live = fz_alloc_is_live(T->serial);
    if (T->freed) {
      CHECK(live != 1,
            "%s: task %d is still allocated although every reference the "
            "model knows of is gone (a reference leaked)",
            where, i);
      CHECK(!T->output_alloc || T->output_freed,
            "%s: task %d freed but its output was never released", where, i);
      continue;
    }
    CHECK(live != 0,
          "%s: task %d was freed although the model counts %llu references",
          where, i, (unsigned long long)m_refs_with(w, i, sr));
    if (!T->finished) {
      if (T->carried || (T->scheduled && !T->running)) scheduled++;
      owned++; /* remote spawns count as live from their spawn call */
    }
    if (T->timer) timers++;
    if (T->dbg == NULL) continue;
    cx_task_debug_info d;
    CHECK(cx_join_handle_debug_info(T->dbg, &d) == CX_OK, "debug_info");
    uint64_t refs = m_refs_with(w, i, sr);
    CHECK(d.refs == refs,
          "%s: task %d has %llu references, the model counts %llu (pool %u, "
          "handle %d, slot %d, timer %d, finished %d, scheduled %d, running "
          "%d)",
          where, i, (unsigned long long)d.refs, (unsigned long long)refs,
          T->pool, T->handle != NULL, T->slot, T->timer, T->finished,
          T->scheduled, T->running);
    CHECK(d.scheduled == (T->scheduled && !T->finished),
          "%s: task %d SCHEDULED is %d, model %d", where, i, d.scheduled,
          T->scheduled);
    CHECK(d.running == T->running, "%s: task %d RUNNING is %d, model %d",
          where, i, d.running, T->running);
    CHECK(d.complete == T->finished, "%s: task %d COMPLETE is %d, model %d",
          where, i, d.complete, T->finished);
    CHECK(d.cancelled == T->cancel_req, "%s: task %d CANCELLED is %d, model %d",
          where, i, d.cancelled, T->cancel_req);
    CHECK(d.has_output == T->completed, "%s: task %d OUTPUT is %d, model %d",
          where, i, d.has_output, T->completed);
    CHECK(d.join_waker == T->join_armed,
          "%s: task %d JOIN_WAKER is %d, model %d", where, i, d.join_waker,
          T->join_armed);
    CHECK(d.polls == T->polls,
          "%s: task %d polled %u times, the model saw %u polls", where, i,
          d.polls, T->polls);
    if (T->handle) {
      CHECK(cx_join_handle_is_finished(T->handle) == T->finished,
            "%s: task %d is_finished wrong", where, i);
      CHECK(cx_join_handle_poll_count(T->handle) == T->polls,
            "%s: task %d poll_count wrong", where, i);
    }
  }
  for (int k = 0; k < w->npool; k++) {
    const cx_join_handle *h = NULL;
    CHECK(cx_waker_debug_handle(&w->pool[k].w, &h) == CX_OK,
          "%s: pool waker %d is not a task waker", where, k);
    int id = w->pool[k].id;
    CHECK(w->t[id].dbg == NULL || h == w->t[id].dbg,
          "%s: pool waker %d points at the wrong task", where, k);
  }
  if (!w->destroyed) {
    const char *why = NULL;
    if (cx_executor_debug_check(w->ex, &why) != CX_OK)
      FAIL("%s: cx_executor_debug_check: %s", where, why ? why : "?");
    size_t len = cx_executor_debug_ready_len(w->ex);
    CHECK(len == scheduled,
          "%s: ready queue holds %zu tasks, %zu are flagged scheduled", where,
          len, scheduled);
    cx_executor_stats st;
    CHECK(cx_executor_get_stats(w->ex, &st) == CX_OK, "stats");
    CHECK(st.spawned == w->st_spawned, "%s: stats.spawned %llu, model %llu",
          where, (unsigned long long)st.spawned,
          (unsigned long long)w->st_spawned);
    CHECK(st.polls == w->st_polls, "%s: stats.polls %llu, model %llu", where,
          (unsigned long long)st.polls, (unsigned long long)w->st_polls);
    CHECK(st.completed == w->st_completed && st.cancelled == w->st_cancelled,
          "%s: stats completed/cancelled %llu/%llu, model %llu/%llu", where,
          (unsigned long long)st.completed, (unsigned long long)st.cancelled,
          (unsigned long long)w->st_completed,
          (unsigned long long)w->st_cancelled);
    CHECK(st.live == owned, "%s: stats.live %llu, model %zu", where,
          (unsigned long long)st.live, owned);
    CHECK(st.timers == timers, "%s: stats.timers %llu, model %zu", where,
          (unsigned long long)st.timers, timers);
  }
  fz_alloc_stats as = fz_alloc_stats_get();
  CHECK(as.attempts == w->attempts,
        "%s: %llu allocation attempts, the model predicts %llu", where,
        (unsigned long long)as.attempts, (unsigned long long)w->attempts);
  int64_t live = m_live_blocks(w);
  CHECK(as.live == live, "%s: %lld live blocks, the model predicts %lld",
        where, (long long)as.live, (long long)live);
}

/* ---- poll / drop events --------------------------------------------------- */

/* The last polled task returned CX_PENDING and was not dropped: it is idle
 * again (queued again if woken meanwhile). */
static void m_settle(fz_world *w) {
  if (w->cur < 0) return;
  fz_task *T = &w->t[w->cur];
  CHECK(!w->cur_ready, "task %d returned CX_READY but was not dropped",
        w->cur);
  CHECK(!T->cancel_req,
        "task %d was cancelled during its poll but not dropped after it",
        w->cur);
  /* Woke itself by reference, and nobody else woke or cancelled it during
   * the poll: queued again still RUNNING (carried). Otherwise the
   * transition to idle: a SCHEDULED set by another wake queues it again
   * (the self-wake is subsumed). */
  if (T->self_woken && !T->scheduled)
    T->carried = true;
  else
    T->running = false;
  T->self_woken = false;
  w->cur = -1;
}

static void m_spawned(fz_world *w, int id, int kind, cx_join_handle *h,
                      bool remote) {
  fz_task *T = &w->t[id];
  memset(T, 0, sizeof *T);
  T->used = true;
  T->kind = kind;
  T->handle = h;
  T->dbg = h;
  T->scheduled = true;
  T->join_holder = -1;
  T->remote_new = remote;
  T->serial = w->attempts; /* its allocation was the last one */
  /* Remote spawns count as accepted from their spawn call on. */
  w->st_spawned++;
}

static void fz_fut_init(fz_fut *f, int id, uint8_t pends) {
  memset(f, 0, sizeof *f);
  f->magic = FUT_MAGIC;
  f->id = id;
  f->pends_left = pends;
  f->awaiting = -1;
  f->slot = CX_WAKER_EMPTY;
  cx_sleep_init_for(&f->sleep, 0);
}

static void fz_poll_begin(fz_world *w, int id, cx_context *cx) {
  CHECK(!w->in_poll, "task %d polled inside the poll of task %d", id, w->cur);
  m_settle(w);
  CHECK(id >= 0 && id < w->ntasks && w->t[id].used, "poll of unknown task");
  fz_task *T = &w->t[id];
  CHECK(!T->finished, "task %d polled after it %s", id,
        T->completed ? "completed" : "was cancelled");
  CHECK(!T->cancel_req, "task %d polled although cancelled", id);
  CHECK(T->carried || (T->scheduled && !T->running),
        "task %d polled without being scheduled", id);
  CHECK(cx_executor_current() == w->ex && cx->executor == w->ex,
        "poll outside its executor");
  CHECK(cx->timers != NULL && cx->waker != NULL, "poll context incomplete");
  const cx_join_handle *h = NULL;
  CHECK(cx_waker_debug_handle(cx->waker, &h) == CX_OK,
        "poll context waker is not a task waker");
  if (T->dbg == NULL) T->dbg = h;
  CHECK(h == T->dbg, "task %d polled with another task's waker", id);
  TRACE("poll task %d (poll %u)", id, T->polls + 1);
  T->scheduled = false; /* a carried task's pop clears it too */
  T->running = true;
  T->carried = false;
  T->self_woken = false;
  T->remote_new = false;
  T->polls++;
  w->st_polls++;
  w->pops++;
  fz_check(w, "poll");
  w->cur = id;
  w->in_poll = true;
}

static void fz_poll_end(fz_world *w, cx_poll r) {
  w->in_poll = false;
  w->cur_ready = (r == CX_READY);
}

static void fz_drop_event(fz_world *w, int id) {
  CHECK(!w->in_poll, "future %d dropped during a poll", id);
  CHECK(id >= 0 && id < w->ntasks && w->t[id].used, "drop of unknown task");
  fz_task *T = &w->t[id];
  TRACE("drop task %d", id);
  T->drops++;
  CHECK(T->drops == 1, "future of task %d dropped twice", id);
  CHECK(!T->finished, "task %d dropped after it finished", id);
  if (w->cur == id) {
    /* Right after its poll: completed, or cancelled during the poll. */
    if (w->cur_ready) {
      T->completed = true;
      w->st_completed++;
    } else {
      CHECK(T->cancel_req, "task %d dropped after CX_PENDING, not cancelled",
            id);
      w->st_cancelled++;
    }
    w->cur = -1;
  } else {
    m_settle(w);
    CHECK(T->cancel_req && (T->carried || (T->scheduled && !T->running)),
          "task %d dropped although not cancelled and queued", id);
    w->pops++;
    w->st_cancelled++;
  }
  T->finished = true;
  T->running = false;
  T->scheduled = false;
  T->carried = false;
  T->self_woken = false;
  T->slot = false;
  T->timer = false;
  T->remote_new = false;
  /* A joiner's waker in the slot is woken by reference; then the slot is
   * disarmed (the waker stays until the handle goes). */
  if (T->join_armed && T->join_holder >= 0 && T->join_holder != id)
    m_wake(w, T->join_holder);
  T->join_armed = false;
}

static void fz_out_drop(void *out) {
  fz_world *w = g_w;
  fz_out *o = *(fz_out **)out;
  if (o == NULL) return;
  CHECK(o->magic == OUT_MAGIC, "drop_output of a bad output");
  fz_task *T = &w->t[o->id];
  CHECK(T->output_alloc && !T->output_freed,
        "output of task %d released twice", o->id);
  T->output_freed = true;
  o->magic = 0;
  cx_free(o, sizeof *o, _Alignof(fz_out));
}

/* ---- operations shared by the harness and the futures -------------------- */

static const cx_future_vtable *fz_vt_of(int kind) { return &fz_vt[kind]; }

/* Spawns a task from byte p. how: 0 cx_spawn, 1 a spawner. */
static void op_spawn(fz_world *w, cx_executor *ex, int how) {
  uint8_t p = fz_u8(&w->in);
  if (w->ntasks >= MAX_TASKS) return;
  if (how == 1 && w->nsp == 0) return;
  if (how == 0 && (w->destroyed || ex == NULL)) return;
  bool with_handle = p & 1;
  int kind = (p >> 1) & 1;
  uint8_t pends = (uint8_t)((p >> 2) & 15);
  int id = w->ntasks;
  fz_fut f;
  fz_fut_init(&f, id, pends);
  cx_join_handle *h = (cx_join_handle *)&f; /* must be overwritten */
  bool ok = m_alloc(w);
  int rc;
  if (how == 0) {
    rc = cx_spawn(ex, fz_vt_of(kind), &f, with_handle ? &h : NULL);
  } else {
    cx_spawner *sp = w->sp[(p >> 6) % w->nsp];
    rc = cx_spawner_spawn(sp, fz_vt_of(kind), &f, with_handle ? &h : NULL);
  }
  int want = !ok ? CX_ENOMEM : (w->destroyed ? CX_ESHUTDOWN : CX_OK);
  CHECK(rc == want, "spawn returned %s, expected %s", cx_err_name(rc),
        cx_err_name(want));
  if (rc != CX_OK) {
    CHECK(!with_handle || h == NULL, "failed spawn left a handle");
    return;
  }
  w->ntasks++;
  m_spawned(w, id, kind, with_handle ? h : NULL,
            how == 1 && !w->in_poll);
  TRACE("spawned task %d (kind %d, %d pends, handle %d, %s)", id, kind, pends,
        with_handle, how ? "spawner" : "cx_spawn");
}

static int pick_pool(fz_world *w) {
  uint8_t b = fz_u8(&w->in);
  if (w->npool == 0) return -1;
  return b % w->npool;
}

static void pool_remove(fz_world *w, int k) {
  w->pool[k] = w->pool[--w->npool];
}

static void op_pool(fz_world *w, int what) {
  int k = pick_pool(w);
  if (k < 0) return;
  int id = w->pool[k].id;
  fz_task *T = &w->t[id];
  switch (what) {
    case 0: { /* clone */
      if (w->npool >= MAX_POOL) return;
      cx_waker c;
      CHECK(cx_waker_clone(&w->pool[k].w, &c) == CX_OK, "waker clone failed");
      CHECK(cx_waker_will_wake(&c, &w->pool[k].w), "clone wakes elsewhere");
      w->pool[w->npool].w = c;
      w->pool[w->npool].id = id;
      w->npool++;
      T->pool++;
      break;
    }
    case 1: { /* wake (consumes) */
      cx_waker wk = w->pool[k].w;
      pool_remove(w, k);
      T->pool--;
      m_wake(w, id);
      cx_waker_wake(&wk);
      CHECK(cx_waker_is_empty(&wk), "wake left the waker set");
      break;
    }
    case 2: /* wake_by_ref */
      m_wake_ref(w, id);
      cx_waker_wake_by_ref(&w->pool[k].w);
      break;
    default: { /* drop */
      cx_waker wk = w->pool[k].w;
      pool_remove(w, k);
      T->pool--;
      cx_waker_drop(&wk);
      CHECK(cx_waker_is_empty(&wk), "drop left the waker set");
      break;
    }
  }
}

static int pick_handle(fz_world *w) {
  uint8_t b = fz_u8(&w->in);
  if (w->ntasks == 0) return -1;
  int i = b % w->ntasks;
  return w->t[i].handle ? i : -1;
}

/* What joining task i now gives (out_mode 0: buffer, 1: discard). */
static int m_join_result(fz_world *w, int i) {
  fz_task *T = &w->t[i];
  if (!T->finished) return CX_EAGAIN;
  if (!T->completed) return CX_ECANCELED;
  if (T->output_taken) return CX_EALREADY;
  return CX_OK;
}

/* A join took the output into *o (NULL when discarded or kind 1). */
static void m_took_output(fz_world *w, int i, fz_out *o, bool discarded) {
  fz_task *T = &w->t[i];
  T->output_taken = true;
  if (T->kind != 0) return;
  if (discarded) {
    CHECK(!T->output_alloc || T->output_freed,
          "discarding join of task %d did not release the output", i);
    return;
  }
  if (!T->output_alloc) {
    CHECK(o == NULL, "join gave an output that was never made");
    return;
  }
  CHECK(o != NULL && o->magic == OUT_MAGIC && o->id == i,
        "join of task %d gave a wrong output", i);
  o->magic = 0;
  T->output_freed = true;
  cx_free(o, sizeof *o, _Alignof(fz_out));
}

static void op_try_join(fz_world *w) {
  uint8_t mode = fz_u8(&w->in) % 3;
  int i = pick_handle(w);
  if (i < 0) return;
  fz_task *T = &w->t[i];
  fz_out *o = NULL;
  int rc, want;
  if (mode == 2) { /* wrong size */
    char junk[3];
    rc = cx_join_handle_try_join(T->handle, junk, sizeof junk);
    want = CX_EINVAL;
    CHECK(rc == want, "try_join with a wrong size gave %s", cx_err_name(rc));
    return;
  }
  want = m_join_result(w, i);
  if (mode == 1)
    rc = cx_join_handle_try_join(T->handle, NULL, 0);
  else if (T->kind == 0)
    rc = cx_join_handle_try_join(T->handle, &o, sizeof o);
  else
    rc = cx_join_handle_try_join(T->handle, &o, 0);
  CHECK(rc == want, "try_join of task %d gave %s, expected %s", i,
        cx_err_name(rc), cx_err_name(want));
  if (rc == CX_OK) m_took_output(w, i, o, mode == 1);
}

static void op_cancel(fz_world *w) {
  int i = pick_handle(w);
  if (i < 0) return;
  int want = m_cancel(w, i);
  int rc = cx_join_handle_cancel(w->t[i].handle);
  CHECK(rc == want, "cancel of task %d gave %s, expected %s", i,
        cx_err_name(rc), cx_err_name(want));
}

static void op_detach(fz_world *w) {
  int i = pick_handle(w);
  if (i < 0 || i == w->join_target) return; /* lent to cx_executor_join */
  fz_task *T = &w->t[i];
  cx_join_handle *h = T->handle;
  T->handle = NULL;
  T->join_armed = false; /* the joiner's waker is dropped now */
  T->join_holder = -1;
  cx_join_handle_detach(h);
}

/* Wakes the waker a future keeps in its state (by value or by reference). */
static void op_slot(fz_world *w) {
  uint8_t b = fz_u8(&w->in);
  if (w->ntasks == 0) return;
  int i = (b >> 1) % w->ntasks;
  fz_task *T = &w->t[i];
  if (!T->used || T->finished || !T->slot) return;
  if (b & 1) {
    m_wake_ref(w, i);
    cx_waker_wake_by_ref(T->slot_ptr);
  } else {
    m_wake(w, i);
    T->slot = false;
    cx_waker_wake(T->slot_ptr);
    CHECK(cx_waker_is_empty(T->slot_ptr), "slot not emptied by wake");
  }
}

static void op_spawner(fz_world *w) {
  uint8_t b = fz_u8(&w->in);
  switch (b % 3) {
    case 0:
      if (w->destroyed || w->nsp >= MAX_SPAWNERS) return;
      {
        cx_spawner *sp = NULL;
        int rc = cx_executor_spawner(w->ex, &sp);
        CHECK(rc == CX_OK && sp != NULL, "cx_executor_spawner: %s",
              cx_err_name(rc));
        w->sp[w->nsp++] = sp;
      }
      return;
    case 1:
      if (w->nsp == 0 || w->nsp >= MAX_SPAWNERS) return;
      {
        cx_spawner *sp = NULL;
        int rc = cx_spawner_clone(w->sp[(b >> 2) % w->nsp], &sp);
        CHECK(rc == CX_OK && sp != NULL, "cx_spawner_clone: %s",
              cx_err_name(rc));
        w->sp[w->nsp++] = sp;
      }
      return;
    default:
      if (w->nsp == 0) return;
      {
        int k = (b >> 2) % w->nsp;
        cx_spawner *sp = w->sp[k];
        w->sp[k] = w->sp[--w->nsp];
        cx_spawner_drop(sp);
      }
      return;
  }
}

static void op_fail_alloc(fz_world *w) {
  uint8_t k = (uint8_t)(1 + fz_u8(&w->in) % 4);
  w->fail_next = w->attempts + k;
  fz_alloc_fail_in(k);
}

/* ---- the future's poll --------------------------------------------------- */

/* One operation run by a future from inside its poll. */
static void fz_poll_op(fz_world *w, fz_fut *f, cx_context *cx) {
  uint8_t op = fz_u8(&w->in) % 15;
  TRACE("poll op %d", op);
  if (w->driving) {
    /* Nothing that leaves a waker outside the executor: run() must end. */
    if (!(op == 1 || op == 7 || op == 8 || op == 9 || op == 12 || op == 13))
      return;
  }
  switch (op) {
    case 0: return;
    case 1: op_spawn(w, cx->executor, 0); return;
    case 2: op_spawn(w, cx->executor, 1); return;
    case 3: op_pool(w, 0); return;
    case 4: op_pool(w, 1); return;
    case 5: op_pool(w, 2); return;
    case 6: op_pool(w, 3); return;
    case 7: op_cancel(w); return;
    case 8: op_detach(w); return;
    case 9: op_try_join(w); return;
    case 10: op_slot(w); return;
    case 11: /* hand one more clone of our waker to the harness */
      if (w->npool < MAX_POOL) {
        cx_waker c;
        CHECK(cx_waker_clone(cx->waker, &c) == CX_OK, "clone in poll");
        w->pool[w->npool].w = c;
        w->pool[w->npool].id = f->id;
        w->npool++;
        w->t[f->id].pool++;
      }
      return;
    case 12: op_fail_alloc(w); return;
    case 13: { /* re-entering the executor from a task is refused */
      uint8_t b = fz_u8(&w->in) % 4;
      int rc;
      if (b == 0) rc = cx_executor_step(cx->executor);
      else if (b == 1) rc = cx_executor_run_until_idle(cx->executor);
      else if (b == 2) rc = cx_executor_run(cx->executor);
      else rc = cx_executor_destroy(cx->executor);
      CHECK(rc == CX_EBUSY, "re-entrant executor call %d gave %s", b,
            cx_err_name(rc));
      return;
    }
    default: op_spawner(w); return;
  }
}

static cx_poll fz_poll_sleep(fz_world *w, fz_fut *f, cx_context *cx) {
  fz_task *T = &w->t[f->id];
  int r = -1;
  cx_poll p = cx_sleep_poll(&f->sleep, cx, &r);
  if (p == CX_PENDING) {
    T->timer = true;
    T->deadline = cx_sleep_deadline(&f->sleep);
    CHECK(T->deadline > w->now, "sleep pending with a deadline already due");
    return CX_PENDING;
  }
  CHECK(r == CX_OK, "sleep finished with %s", cx_err_name(r));
  CHECK(cx_sleep_deadline(&f->sleep) <= w->now,
        "sleep of task %d ended before its deadline", f->id);
  CHECK(!T->timer, "sleep of task %d ended but its timer was not fired",
        f->id);
  f->sleeping = false;
  return CX_READY;
}

static cx_poll fz_poll_await(fz_world *w, fz_fut *f, cx_context *cx) {
  int i = f->awaiting;
  fz_task *J = &w->t[i];
  int want = m_join_result(w, i);
  /* The handle was detached meanwhile, or run() must not see a new waker
   * outside the executor: stop waiting. */
  if (J->handle == NULL || (w->driving && want == CX_EAGAIN)) {
    f->awaiting = -1;
    return CX_READY;
  }
  fz_out *o = NULL;
  int res = -1;
  cx_poll p = J->kind == 0
                  ? cx_join_handle_poll(J->handle, cx, &res, &o, sizeof o)
                  : cx_join_handle_poll(J->handle, cx, &res, NULL, 0);
  if (want == CX_EAGAIN) {
    CHECK(p == CX_PENDING, "join poll of unfinished task %d gave %s", i,
          cx_err_name(res));
    J->join_armed = true;
    J->join_holder = f->id;
    return CX_PENDING;
  }
  CHECK(p == CX_READY && res == want, "join poll of task %d gave %s, not %s",
        i, p == CX_READY ? cx_err_name(res) : "PENDING", cx_err_name(want));
  if (res == CX_OK) m_took_output(w, i, o, false);
  f->awaiting = -1;
  return CX_READY;
}

static cx_poll fz_poll_body(fz_world *w, fz_fut *f, cx_context *cx,
                            void *out) {
  fz_task *T = &w->t[f->id];
  if (f->sleeping && fz_poll_sleep(w, f, cx) == CX_PENDING) return CX_PENDING;
  if (f->awaiting >= 0 && fz_poll_await(w, f, cx) == CX_PENDING)
    return CX_PENDING;
  int nops = fz_u8(&w->in) % (MAX_OPS_PER_POLL + 1);
  for (int k = 0; k < nops; k++) fz_poll_op(w, f, cx);
  if (f->pends_left == 0) {
    if (T->kind == 0) {
      bool ok = m_alloc(w);
      fz_out *o = cx_alloc(sizeof *o, _Alignof(fz_out));
      CHECK((o != NULL) == ok, "output allocation: model and allocator "
                               "disagree");
      if (o) {
        o->magic = OUT_MAGIC;
        o->id = f->id;
      }
      T->output_alloc = ok;
      memcpy(out, &o, sizeof o);
    }
    return CX_READY;
  }
  f->pends_left--;
  uint8_t how = fz_u8(&w->in);
  uint8_t arg = fz_u8(&w->in);
  TRACE("task %d pends: how %d arg %d", f->id, how % 6, arg);
  switch (how % 6) {
    case 0: /* yield */
    yield:
      m_wake_ref(w, f->id);
      cx_waker_wake_by_ref(cx->waker);
      return CX_PENDING;
    case 1: /* a clone of our waker goes to the harness */
      if (w->driving || w->npool >= MAX_POOL) goto yield;
      {
        cx_waker c;
        CHECK(cx_waker_clone(cx->waker, &c) == CX_OK, "clone in poll");
        w->pool[w->npool].w = c;
        w->pool[w->npool].id = f->id;
        w->npool++;
        T->pool++;
      }
      return CX_PENDING;
    case 2: /* keep our waker in our own state */
      if (w->driving) goto yield;
      CHECK(cx_waker_store(&f->slot, cx->waker) == CX_OK, "waker_store");
      T->slot = true;
      T->slot_ptr = &f->slot;
      return CX_PENDING;
    case 3: /* sleep */
      if (w->driving) goto yield;
      cx_sleep_init_for(&f->sleep, (uint64_t)(arg % 64) * 1000);
      f->sleeping = true;
      return fz_poll_sleep(w, f, cx) == CX_PENDING ? CX_PENDING
                                                   : CX_PENDING /* no wake */;
    case 4: /* await another task (or our own handle: a cycle) */
      if (w->driving || w->ntasks == 0) goto yield;
      {
        int i = arg % w->ntasks;
        if (w->t[i].handle == NULL) goto yield;
        f->awaiting = i;
        if (fz_poll_await(w, f, cx) == CX_READY) goto yield;
      }
      return CX_PENDING;
    default: /* pend with no wake-up arranged */
      return CX_PENDING;
  }
}

static cx_poll fz_fut_poll(void *self, cx_context *cx, void *out) {
  fz_world *w = g_w;
  fz_fut *f = self;
  CHECK(f->magic == FUT_MAGIC, "poll of a %s future state",
        f->magic == FUT_DEAD ? "dropped" : "corrupt");
  fz_poll_begin(w, f->id, cx);
  cx_poll r = fz_poll_body(w, f, cx, out);
  fz_poll_end(w, r);
  return r;
}

static void fz_fut_drop(void *self) {
  fz_world *w = g_w;
  fz_fut *f = self;
  CHECK(f->magic == FUT_MAGIC, "drop of a %s future state",
        f->magic == FUT_DEAD ? "dropped" : "corrupt");
  fz_drop_event(w, f->id);
  cx_waker_drop(&f->slot);
  cx_sleep_drop(&f->sleep);
  f->magic = FUT_DEAD;
}

/* ---- executor-driving operations ----------------------------------------- */

static uint64_t fz_clock(void *ctx) { return ((fz_world *)ctx)->now; }

/* The executor fires every due timer when a tick starts. */
static void m_fire_timers(fz_world *w) {
  for (int i = 0; i < w->ntasks; i++) {
    fz_task *T = &w->t[i];
    if (T->used && T->timer && T->deadline <= w->now) {
      T->timer = false; /* its waker is consumed by the wake */
      m_wake(w, i);
    }
  }
}

/* A tick takes in the tasks spawned from other threads. */
static void m_taken_in(fz_world *w) {
  for (int i = 0; i < w->ntasks; i++) {
    if (!w->t[i].remote_new) continue;
    w->t[i].remote_new = false;
  }
}

static void op_step(fz_world *w, bool until_idle) {
  if (w->destroyed) return;
  m_fire_timers(w);
  m_taken_in(w);
  uint64_t pops = w->pops;
  int rc = until_idle ? cx_executor_run_until_idle(w->ex)
                      : cx_executor_step(w->ex);
  m_settle(w);
  CHECK(rc >= 0, "step/run_until_idle: %s", cx_err_name(rc));
  CHECK((uint64_t)rc == w->pops - pops,
        "%s returned %d but %llu tasks were popped",
        until_idle ? "run_until_idle" : "step", rc,
        (unsigned long long)(w->pops - pops));
  if (until_idle) {
    for (int i = 0; i < w->ntasks; i++)
      CHECK(!w->t[i].used || w->t[i].finished ||
                (!w->t[i].scheduled && !w->t[i].carried),
            "run_until_idle left task %d scheduled", i);
  }
}

/* run / join / block_on end only if no waker of an unfinished task exists
 * outside the executor; they are used only then. */
FZ_NO_COVERAGE static bool m_can_drive(fz_world *w) {
  if (w->destroyed || w->nsp > 0) return false;
  for (int i = 0; i < w->ntasks; i++) {
    fz_task *T = &w->t[i];
    if (!T->used || T->finished) continue;
    if (T->pool || T->slot || T->timer) return false;
    for (int j = 0; j < w->ntasks; j++)
      if (w->t[j].used && !w->t[j].freed && w->t[j].join_holder == i)
        return false;
  }
  return true;
}

static bool m_any_unfinished(fz_world *w) {
  for (int i = 0; i < w->ntasks; i++)
    if (w->t[i].used && !w->t[i].finished) return true;
  return false;
}

static void op_drive(fz_world *w) {
  uint8_t b = fz_u8(&w->in);
  if (!m_can_drive(w)) return;
  w->driving = true;
  switch (b % 3) {
    case 0: {
      m_taken_in(w);
      int rc = cx_executor_run(w->ex);
      w->driving = false;
      m_settle(w);
      if (m_any_unfinished(w)) {
        CHECK(rc == CX_EDEADLK, "run with stuck tasks gave %s",
              cx_err_name(rc));
      } else {
        CHECK(rc == CX_OK, "run gave %s", cx_err_name(rc));
      }
      break;
    }
    case 1: {
      int i = w->ntasks ? (b >> 2) % w->ntasks : 0;
      if (w->ntasks == 0 || w->t[i].handle == NULL) {
        w->driving = false;
        return;
      }
      fz_task *T = &w->t[i];
      if (!T->finished) m_taken_in(w); /* else join does not tick */
      w->join_target = i;
      fz_out *o = NULL;
      int rc = T->kind == 0 ? cx_executor_join(w->ex, T->handle, &o, sizeof o)
                            : cx_executor_join(w->ex, T->handle, NULL, 0);
      w->driving = false;
      w->join_target = -1;
      m_settle(w);
      int want = T->finished ? m_join_result(w, i) : CX_EDEADLK;
      CHECK(rc == want, "join of task %d gave %s, expected %s", i,
            cx_err_name(rc), cx_err_name(want));
      if (rc == CX_OK) m_took_output(w, i, o, false);
      break;
    }
    default: {
      if (w->ntasks >= MAX_TASKS) {
        w->driving = false;
        return;
      }
      uint8_t p = fz_u8(&w->in);
      int kind = (p >> 1) & 1;
      int id = w->ntasks;
      fz_fut f;
      fz_fut_init(&f, id, (uint8_t)((p >> 2) & 15));
      bool ok = m_alloc(w);
      if (ok) { /* block_on spawns with a handle it detaches at the end */
        m_taken_in(w);
        w->ntasks++;
        m_spawned(w, id, kind, NULL, false);
        w->t[id].hidden_handle = true;
      }
      fz_out *o = NULL;
      int rc = kind == 0 ? cx_executor_block_on(w->ex, fz_vt_of(kind), &f, &o,
                                                sizeof o)
                         : cx_executor_block_on(w->ex, fz_vt_of(kind), &f,
                                                NULL, 0);
      w->driving = false;
      m_settle(w);
      if (!ok) {
        CHECK(rc == CX_ENOMEM, "block_on without memory gave %s",
              cx_err_name(rc));
        break;
      }
      fz_task *T = &w->t[id];
      int want = T->finished ? m_join_result(w, id) : CX_EDEADLK;
      CHECK(rc == want, "block_on gave %s, expected %s", cx_err_name(rc),
            cx_err_name(want));
      if (rc == CX_OK) m_took_output(w, id, o, kind != 0);
      T->hidden_handle = false; /* detached by block_on */
      break;
    }
  }
}

static void op_destroy(fz_world *w) {
  if (w->destroyed) return;
  m_settle(w);
  for (int i = 0; i < w->ntasks; i++)
    if (w->t[i].used && !w->t[i].finished) m_cancel(w, i);
  w->destroying = true;
  int rc = cx_executor_destroy(w->ex);
  w->destroying = false;
  m_settle(w);
  CHECK(rc == CX_OK, "destroy: %s", cx_err_name(rc));
  w->destroyed = true;
  for (int i = 0; i < w->ntasks; i++)
    CHECK(!w->t[i].used || w->t[i].finished,
          "task %d unfinished after destroy", i);
}

/* ---- the program --------------------------------------------------------- */

static void fz_teardown_holdings(fz_world *w) {
  while (w->npool > 0) {
    int k = w->npool - 1;
    int id = w->pool[k].id;
    cx_waker wk = w->pool[k].w;
    w->npool--;
    w->t[id].pool--;
    if (k & 1) {
      m_wake(w, id);
      cx_waker_wake(&wk);
    } else {
      cx_waker_drop(&wk);
    }
  }
  for (int i = 0; i < w->ntasks; i++) {
    fz_task *T = &w->t[i];
    if (!T->handle) continue;
    cx_join_handle *h = T->handle;
    T->handle = NULL;
    T->join_armed = false;
    T->join_holder = -1;
    cx_join_handle_detach(h);
  }
  fz_check(w, "teardown");
}

static int fz_run(const uint8_t *data, size_t size, uint64_t fail_at) {
  fz_world *w = calloc(1, sizeof *w);
  if (w == NULL) return 0;
  g_w = w;
  if (g_trace < 0) g_trace = getenv("CX_FUZZ_TRACE") != NULL;
  fz_input_init(&w->in, data, size);
  w->cur = -1;
  w->join_target = -1;
  w->now = 1000;
  w->fail_at = fail_at;
  fz_alloc_install(fail_at);
  fz_alloc_track(true);

  uint8_t setup = fz_u8(&w->in);
  cx_executor_options opts = {.clock = fz_clock, .clock_ctx = w};
  if (setup & 1) { /* creation fails first, leaving nothing behind */
    w->fail_next = w->attempts + 1;
    fz_alloc_fail_in(1);
  }
  for (;;) {
    bool ok = m_alloc(w);
    cx_executor *ex = (cx_executor *)w;
    int rc = cx_executor_create(&opts, &ex);
    if (ok) {
      CHECK(rc == CX_OK && ex != NULL, "create: %s", cx_err_name(rc));
      w->ex = ex;
      break;
    }
    CHECK(rc == CX_ENOMEM && ex == NULL, "create without memory gave %s",
          cx_err_name(rc));
    CHECK(fz_alloc_stats_get().live == 0, "failed create leaked");
  }
  fz_check(w, "create");

  while (fz_more(&w->in)) {
    uint8_t op = fz_u8(&w->in);
    TRACE("op %d at byte %zu", op % 17, w->in.pos - 1);
    switch (op % 17) {
      case 0: op_spawn(w, w->ex, 0); break;
      case 1: op_spawn(w, NULL, 1); break;
      case 2: op_step(w, false); break;
      case 3: op_step(w, true); break;
      case 4: op_pool(w, 0); break;
      case 5: op_pool(w, 1); break;
      case 6: op_pool(w, 2); break;
      case 7: op_pool(w, 3); break;
      case 8: op_cancel(w); break;
      case 9: op_detach(w); break;
      case 10: op_try_join(w); break;
      case 11: op_slot(w); break;
      case 12: w->now += (uint64_t)(fz_u8(&w->in) % 80) * 1000; break;
      case 13: op_spawner(w); break;
      case 14: op_fail_alloc(w); break;
      case 15: op_drive(w); break;
      default:
        if (fz_u8(&w->in) >= 200) op_destroy(w);
        break;
    }
    fz_check(w, "op");
  }

  /* Teardown: destroy first, or drop every holding first. */
  w->fail_next = 0;
  fz_alloc_fail_in(0);
  if (setup & 2) {
    op_destroy(w);
    fz_check(w, "destroy");
    fz_teardown_holdings(w);
  } else {
    fz_teardown_holdings(w);
    op_destroy(w);
    fz_check(w, "destroy");
  }
  while (w->nsp > 0) {
    /* A spawner outliving its executor refuses to spawn. */
    if (w->ntasks < MAX_TASKS && (setup & 4)) {
      fz_fut f;
      fz_fut_init(&f, w->ntasks, 0);
      bool ok = m_alloc(w);
      cx_join_handle *h = NULL;
      int rc = cx_spawner_spawn(w->sp[w->nsp - 1], &fz_vt[0], &f, &h);
      CHECK(rc == (ok ? CX_ESHUTDOWN : CX_ENOMEM) && h == NULL,
            "spawn after destroy gave %s", cx_err_name(rc));
    }
    cx_spawner_drop(w->sp[--w->nsp]);
    fz_check(w, "spawner drop");
  }
  for (int i = 0; i < w->ntasks; i++) {
    fz_task *T = &w->t[i];
    CHECK(T->freed,
          "task %d never freed (the model counts %llu references: pool %u, "
          "handle %d, slot %d, timer %d, finished %d)",
          i, (unsigned long long)m_refs(w, i), T->pool, T->handle != NULL,
          T->slot, T->timer, T->finished);
    CHECK(T->drops == 1, "future of task %d dropped %u times", i, T->drops);
  }
  fz_alloc_stats as = fz_alloc_stats_get();
  CHECK(as.live == 0 && as.live_bytes == 0,
        "%lld blocks (%lld bytes) leaked at the end", (long long)as.live,
        (long long)as.live_bytes);
  fz_alloc_uninstall();
  g_w = NULL;
  free(w);
  return 0;
}

int cx_fuzz_task_lifecycle(const uint8_t *data, size_t size) {
  return fz_run(data, size, 0);
}

int cx_fuzz_task_lifecycle_fail_at(const uint8_t *data, size_t size,
                                   uint64_t fail_at, uint64_t *attempts) {
  fz_run(data, size, fail_at);
  if (attempts) *attempts = fz_alloc_stats_get().attempts;
  return 0;
}
