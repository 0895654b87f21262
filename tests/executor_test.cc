// executor/: the executor driving tasks, join handles, cancellation, wakes
// from the executor's thread and from others, spawners, shutdown, error
// reporting (bad arguments, allocation failure) and timers.
//
// The first four tests are the seed's (001, "Executor Basics"); the next
// ones its exercises (spawn from inside a task, per-task poll counts,
// block_on). Futures here are `Script`s: a C++ callable behind a C vtable,
// so each test writes its future's poll inline.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "executor/cexec.h"
#include "executor/debug.h"
#include "tests/testutil.h"

namespace {

using cxtest::ManualClock;
using cxtest::ScopedCountingAllocator;

constexpr cx_waker kEmptyWaker = {nullptr, nullptr};

// ---- a scriptable future ---------------------------------------------------

// The future's state (copied into the task) is a pointer to a Script the
// test owns; the Script must outlive the task. `fn` is called on every poll
// after `polls` was incremented. Output: an int.
struct Script {
  std::function<cx_poll(Script &, cx_context *, int *)> fn;
  std::atomic<int> polls{0};
  std::atomic<int> drops{0};
  // A waker the future may keep (e.g. a clone of its own); dropped with the
  // future.
  cx_waker held = kEmptyWaker;
  cx_join_handle *handle = nullptr;  // optional, for tests that need it

  Script() = default;
  explicit Script(std::function<cx_poll(Script &, cx_context *, int *)> f)
      : fn(std::move(f)) {}
};

cx_poll ScriptPoll(void *self, cx_context *cx, void *out) {
  Script *s = *static_cast<Script **>(self);
  s->polls++;
  return s->fn(*s, cx, static_cast<int *>(out));
}

void ScriptDrop(void *self) {
  Script *s = *static_cast<Script **>(self);
  s->drops++;
  cx_waker_drop(&s->held);
}

const cx_future_vtable kScriptVt = {.poll = ScriptPoll,
                                    .drop = ScriptDrop,
                                    .state_size = sizeof(Script *),
                                    .state_align = alignof(Script *),
                                    .output_size = sizeof(int)};

int Spawn(cx_executor *ex, Script *s, cx_join_handle **h = nullptr) {
  return cx_spawn(ex, &kScriptVt, &s, h);
}

int SpawnVia(cx_spawner *sp, Script *s, cx_join_handle **h = nullptr) {
  return cx_spawner_spawn(sp, &kScriptVt, &s, h);
}

// Ready with `value` on its n-th poll; before that it wakes itself and
// pends (a task that yields n - 1 times).
std::function<cx_poll(Script &, cx_context *, int *)> ReadyAfter(int n,
                                                                 int value) {
  return [n, value](Script &s, cx_context *cx, int *out) {
    if (s.polls < n) {
      cx_waker_wake_by_ref(cx->waker);
      return CX_PENDING;
    }
    *out = value;
    return CX_READY;
  };
}

// Pends forever, keeping a clone of its own waker (so the executor knows it
// could be woken: no deadlock) until the future is dropped.
cx_poll PendHoldingWaker(Script &s, cx_context *cx, int *) {
  EXPECT_EQ(cx_waker_store(&s.held, cx->waker), CX_OK);
  return CX_PENDING;
}

// Pends forever and keeps no waker: nobody can ever wake it.
cx_poll PendWithoutWaker(Script &, cx_context *, int *) {
  return CX_PENDING;
}

cx_executor *NewExecutor(const cx_executor_options *opts = nullptr) {
  cx_executor *ex = nullptr;
  EXPECT_EQ(cx_executor_create(opts, &ex), CX_OK);
  return ex;
}

cx_executor_stats Stats(const cx_executor *ex) {
  cx_executor_stats s;
  std::memset(&s, 0xff, sizeof s);
  EXPECT_EQ(cx_executor_get_stats(ex, &s), CX_OK);
  return s;
}

// The executor's invariants hold (see executor/debug.h).
void ExpectConsistent(cx_executor *ex) {
  const char *why = nullptr;
  EXPECT_EQ(cx_executor_debug_check(ex, &why), CX_OK) << (why ? why : "");
}

cx_task_debug_info Info(const cx_join_handle *h) {
  cx_task_debug_info info;
  std::memset(&info, 0, sizeof info);
  EXPECT_EQ(cx_join_handle_debug_info(h, &info), CX_OK);
  return info;
}

// ---- the seed's tests ------------------------------------------------------

TEST(Seed, RunsSingleTask) {
  std::atomic<int> counter{0};
  cx_executor *ex = NewExecutor();
  Script s([&](Script &, cx_context *, int *out) {
    counter++;
    *out = 0;
    return CX_READY;
  });
  ASSERT_EQ(Spawn(ex, &s), CX_OK);
  EXPECT_EQ(counter, 0);  // futures are lazy: nothing runs before run()
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(counter, 1);
  EXPECT_EQ(s.polls, 1);
  EXPECT_EQ(s.drops, 1);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

TEST(Seed, RunsMultipleTasks) {
  std::atomic<int> counter{0};
  cx_executor *ex = NewExecutor();
  std::vector<Script> scripts(5);
  for (Script &s : scripts) {
    s.fn = [&](Script &, cx_context *, int *out) {
      counter++;
      *out = 0;
      return CX_READY;
    };
    ASSERT_EQ(Spawn(ex, &s), CX_OK);
  }
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(counter, 5);
  for (Script &s : scripts) EXPECT_EQ(s.drops, 1);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

TEST(Seed, EmptyExecutor) {
  cx_executor *ex = NewExecutor();
  EXPECT_EQ(cx_executor_run(ex), CX_OK);  // returns at once
  cx_executor_stats st = Stats(ex);
  EXPECT_EQ(st.polls, 0u);
  EXPECT_EQ(st.parks, 0u);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

TEST(Seed, TasksRunToCompletion) {
  std::vector<int> values;  // owner thread only
  cx_executor *ex = NewExecutor();
  std::vector<Script> scripts(3);
  for (int i = 0; i < 3; i++) {
    // Each task yields i times before pushing: completion is not spawn order.
    scripts[i].fn = [&values, i](Script &s, cx_context *cx, int *out) {
      if (s.polls <= 2 - i) {
        cx_waker_wake_by_ref(cx->waker);
        return CX_PENDING;
      }
      values.push_back(i);
      *out = i;
      return CX_READY;
    };
    ASSERT_EQ(Spawn(ex, &scripts[i]), CX_OK);
  }
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  std::vector<int> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(values, (std::vector<int>{2, 1, 0}));
  EXPECT_EQ(Stats(ex).live, 0u);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

// ---- the seed's exercises --------------------------------------------------

TEST(Exercise, SpawnFromInsideRunningTask) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  std::atomic<int> leaves{0};
  Script leaf([&](Script &, cx_context *cx, int *out) {
    EXPECT_EQ(cx_executor_current(), cx->executor);
    leaves++;
    *out = 0;
    return CX_READY;
  });
  // Each child spawns one leaf; the root spawns three children and waits
  // for them through their join handles (a join as a future).
  Script child([&](Script &, cx_context *cx, int *out) {
    EXPECT_EQ(Spawn(cx->executor, &leaf), CX_OK);
    *out = 7;
    return CX_READY;
  });
  std::vector<cx_join_handle *> kids;
  std::vector<bool> joined;
  int sum_so_far = 0;
  Script root([&](Script &s, cx_context *cx, int *out) {
    EXPECT_EQ(cx->executor, ex);
    EXPECT_EQ(cx_executor_current(), ex);
    if (s.polls == 1) {
      for (int i = 0; i < 3; i++) {
        cx_join_handle *h = nullptr;
        EXPECT_EQ(Spawn(cx->executor, &child, &h), CX_OK);
        kids.push_back(h);
        joined.push_back(false);
      }
    }
    for (size_t i = 0; i < kids.size(); i++) {
      if (joined[i]) continue;
      int result = 1, v = 0;
      if (cx_join_handle_poll(kids[i], cx, &result, &v, sizeof v) == CX_PENDING)
        return CX_PENDING;
      EXPECT_EQ(result, CX_OK);
      joined[i] = true;
      sum_so_far += v;
      // The output was taken: joining again reports EALREADY.
      EXPECT_EQ(cx_join_handle_poll(kids[i], cx, &result, &v, sizeof v),
                CX_READY);
      EXPECT_EQ(result, CX_EALREADY);
    }
    *out = sum_so_far;
    return CX_READY;
  });
  cx_join_handle *rh = nullptr;
  ASSERT_EQ(Spawn(ex, &root, &rh), CX_OK);
  EXPECT_EQ(cx_executor_current(), nullptr);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(cx_executor_current(), nullptr);
  int sum = 0;
  EXPECT_EQ(cx_join_handle_try_join(rh, &sum, sizeof sum), CX_OK);
  EXPECT_EQ(sum, 21);
  EXPECT_EQ(leaves, 3);
  EXPECT_EQ(child.polls, 3);
  // Polled once to spawn (then pending on the first child), and once more
  // after the first child's completion woke it: by then (FIFO) all three
  // children had run.
  EXPECT_EQ(root.polls, 2);
  cx_executor_stats st = Stats(ex);
  EXPECT_EQ(st.spawned, 7u);
  EXPECT_EQ(st.completed, 7u);
  EXPECT_EQ(st.live, 0u);
  cx_join_handle_detach(rh);
  for (cx_join_handle *h : kids) cx_join_handle_detach(h);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

TEST(Exercise, PollCountsArePerTaskAndExact) {
  cx_executor *ex = NewExecutor();
  std::vector<Script> scripts(6);
  std::vector<cx_join_handle *> hs(6);
  for (int i = 0; i < 6; i++) {
    scripts[i].fn = ReadyAfter(i + 1, i * 10);
    ASSERT_EQ(Spawn(ex, &scripts[i], &hs[i]), CX_OK);
    EXPECT_EQ(cx_join_handle_poll_count(hs[i]), 0u);
  }
  // One step polls one task: the first spawned (FIFO).
  EXPECT_EQ(cx_executor_step(ex), 1);
  EXPECT_EQ(cx_join_handle_poll_count(hs[0]), 1u);
  EXPECT_EQ(cx_join_handle_poll_count(hs[1]), 0u);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  uint64_t total = 0;
  for (int i = 0; i < 6; i++) {
    EXPECT_EQ(cx_join_handle_poll_count(hs[i]), uint64_t(i + 1)) << i;
    EXPECT_EQ(Info(hs[i]).polls, uint32_t(i + 1));
    EXPECT_EQ(scripts[i].polls, i + 1);
    int v = -1;
    EXPECT_EQ(cx_join_handle_try_join(hs[i], &v, sizeof v), CX_OK);
    EXPECT_EQ(v, i * 10);
    total += uint64_t(i + 1);
    cx_join_handle_detach(hs[i]);
  }
  EXPECT_EQ(Stats(ex).polls, total);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

TEST(Exercise, BlockOnAnExistingExecutor) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  // A task spawned earlier runs too while block_on drives the executor.
  Script other(ReadyAfter(3, 0));
  cx_join_handle *oh = nullptr;
  ASSERT_EQ(Spawn(ex, &other, &oh), CX_OK);
  // The blocked-on future spawns a helper and awaits it.
  Script helper(ReadyAfter(4, 40));
  cx_join_handle *hh = nullptr;
  Script main_future([&](Script &s, cx_context *cx, int *out) {
    if (s.polls == 1) {
      EXPECT_EQ(Spawn(cx->executor, &helper, &hh), CX_OK);
    }
    int result = 0, v = 0;
    if (cx_join_handle_poll(hh, cx, &result, &v, sizeof v) == CX_PENDING)
      return CX_PENDING;
    EXPECT_EQ(result, CX_OK);
    *out = v + 2;
    return CX_READY;
  });
  int out = 0;
  Script *mp = &main_future;
  EXPECT_EQ(cx_executor_block_on(ex, &kScriptVt, &mp, &out, sizeof out), CX_OK);
  EXPECT_EQ(out, 42);
  EXPECT_EQ(helper.polls, 4);
  EXPECT_EQ(main_future.drops, 1);
  EXPECT_TRUE(cx_join_handle_is_finished(oh));
  EXPECT_EQ(cx_join_handle_poll_count(oh), 3u);
  // Output discarded by block_on when out is NULL.
  Script again(ReadyAfter(2, 5));
  Script *ap = &again;
  EXPECT_EQ(cx_executor_block_on(ex, &kScriptVt, &ap, nullptr, 0), CX_OK);
  EXPECT_EQ(again.polls, 2);
  cx_join_handle_detach(oh);
  cx_join_handle_detach(hh);
  EXPECT_EQ(Stats(ex).live, 0u);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(Exercise, BlockOnAFreshExecutor) {
  ScopedCountingAllocator alloc;
  // A child that never finishes is cancelled when cx_block_on's executor
  // is destroyed; the block_on future itself completes.
  Script forever(PendHoldingWaker);
  Script yielder(ReadyAfter(5, 99));
  Script main_future([&](Script &s, cx_context *cx, int *out) {
    EXPECT_NE(cx->executor, nullptr);
    EXPECT_EQ(cx_executor_current(), cx->executor);
    if (s.polls == 1) {
      EXPECT_EQ(Spawn(cx->executor, &forever), CX_OK);
      cx_waker_wake_by_ref(cx->waker);
      return CX_PENDING;
    }
    *out = 1234;
    return CX_READY;
  });
  Script *mp = &main_future;
  int out = 0;
  EXPECT_EQ(cx_block_on(&kScriptVt, &mp, &out, sizeof out), CX_OK);
  EXPECT_EQ(out, 1234);
  EXPECT_EQ(main_future.polls, 2);
  EXPECT_EQ(main_future.drops, 1);
  EXPECT_EQ(forever.polls, 1);
  EXPECT_EQ(forever.drops, 1);
  Script *yp = &yielder;
  EXPECT_EQ(cx_block_on(&kScriptVt, &yp, &out, sizeof out), CX_OK);
  EXPECT_EQ(out, 99);
  EXPECT_EQ(yielder.polls, 5);
  // A future that can never finish: deadlock is reported, not waited on.
  Script stuck(PendWithoutWaker);
  Script *sp = &stuck;
  EXPECT_EQ(cx_block_on(&kScriptVt, &sp, &out, sizeof out), CX_EDEADLK);
  EXPECT_EQ(stuck.drops, 1);
  EXPECT_EQ(cx_executor_current(), nullptr);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

// ---- join ------------------------------------------------------------------

// An output that owns heap memory, to see who releases it.
std::atomic<int> g_box_drops{0};
struct BoxState {
  int value;
  int polls;
};
cx_poll BoxPoll(void *self, cx_context *cx, void *out) {
  BoxState *s = static_cast<BoxState *>(self);
  if (s->polls++ == 0) {
    cx_waker_wake_by_ref(cx->waker);
    return CX_PENDING;
  }
  *static_cast<int **>(out) = new int(s->value);
  return CX_READY;
}
void BoxDropOutput(void *out) {
  g_box_drops++;
  delete *static_cast<int **>(out);
}
const cx_future_vtable kBoxVt = {.poll = BoxPoll,
                                 .drop_output = BoxDropOutput,
                                 .state_size = sizeof(BoxState),
                                 .state_align = alignof(BoxState),
                                 .output_size = sizeof(int *)};

TEST(Join, OutputIsTakenOnceAndOwnershipMoves) {
  ScopedCountingAllocator alloc;
  g_box_drops = 0;
  cx_executor *ex = NewExecutor();
  BoxState a = {11, 0}, b = {22, 0}, c = {33, 0};
  cx_join_handle *ha, *hb, *hc;
  ASSERT_EQ(cx_spawn(ex, &kBoxVt, &a, &ha), CX_OK);
  ASSERT_EQ(cx_spawn(ex, &kBoxVt, &b, &hb), CX_OK);
  ASSERT_EQ(cx_spawn(ex, &kBoxVt, &c, &hc), CX_OK);
  int *p = nullptr;
  EXPECT_EQ(cx_join_handle_try_join(ha, &p, sizeof p), CX_EAGAIN);
  EXPECT_FALSE(cx_join_handle_is_finished(ha));
  // Wrong size is refused before anything else.
  EXPECT_EQ(cx_join_handle_try_join(ha, &p, sizeof p + 1), CX_EINVAL);
  EXPECT_EQ(cx_executor_join(ex, ha, &p, sizeof p), CX_OK);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 11);
  delete p;  // the join moved ownership to us
  EXPECT_EQ(cx_executor_join(ex, ha, &p, sizeof p), CX_EALREADY);
  EXPECT_EQ(cx_join_handle_try_join(ha, &p, sizeof p), CX_EALREADY);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  // Discarding: out == NULL runs drop_output.
  EXPECT_EQ(cx_join_handle_try_join(hb, nullptr, 0), CX_OK);
  EXPECT_EQ(g_box_drops, 1);
  EXPECT_EQ(cx_join_handle_try_join(hb, nullptr, 0), CX_EALREADY);
  EXPECT_EQ(g_box_drops, 1);
  // Never joined: dropped with the task when the handle goes.
  cx_join_handle_detach(hc);
  EXPECT_EQ(g_box_drops, 2);
  cx_join_handle_detach(ha);
  cx_join_handle_detach(hb);
  EXPECT_EQ(g_box_drops, 2);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(Join, CancelledTaskJoinsWithECANCELED) {
  cx_executor *ex = NewExecutor();
  Script s(PendHoldingWaker);
  cx_join_handle *h = nullptr;
  ASSERT_EQ(Spawn(ex, &s, &h), CX_OK);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 1);
  EXPECT_EQ(cx_join_handle_cancel(h), CX_OK);
  int v = 0;
  EXPECT_EQ(cx_executor_join(ex, h, &v, sizeof v), CX_ECANCELED);
  EXPECT_EQ(cx_join_handle_try_join(h, &v, sizeof v), CX_ECANCELED);
  EXPECT_EQ(cx_join_handle_try_join(h, nullptr, 0), CX_ECANCELED);
  EXPECT_TRUE(cx_join_handle_is_finished(h));
  EXPECT_TRUE(Info(h).cancelled);
  EXPECT_FALSE(Info(h).has_output);
  EXPECT_EQ(s.drops, 1);
  cx_join_handle_detach(h);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

TEST(Join, WaitFromAnotherThread) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  constexpr int kTasks = 4;
  std::vector<Script> scripts(kTasks);
  std::vector<cx_join_handle *> hs(kTasks);
  for (int i = 0; i < kTasks; i++) {
    scripts[i].fn = ReadyAfter(50 * (i + 1), 100 + i);
    ASSERT_EQ(Spawn(ex, &scripts[i], &hs[i]), CX_OK);
  }
  std::vector<int> got(kTasks, 0), rc(kTasks, 1);
  std::vector<std::thread> waiters;
  for (int i = 0; i < kTasks; i++)
    waiters.emplace_back([&, i] {
      rc[i] = cx_join_handle_wait(hs[i], &got[i], sizeof got[i]);
      cx_join_handle_detach(hs[i]);  // the waiting thread owns the handle
    });
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  for (std::thread &t : waiters) t.join();
  for (int i = 0; i < kTasks; i++) {
    EXPECT_EQ(rc[i], CX_OK);
    EXPECT_EQ(got[i], 100 + i);
  }
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- cancellation ----------------------------------------------------------

TEST(Cancel, IdleTask) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  Script s(PendHoldingWaker);
  cx_join_handle *h = nullptr;
  ASSERT_EQ(Spawn(ex, &s, &h), CX_OK);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 1);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 0u);
  EXPECT_FALSE(Info(h).scheduled);
  EXPECT_EQ(cx_join_handle_cancel(h), CX_OK);
  // The idle task is queued so the executor's thread drops the future.
  EXPECT_TRUE(Info(h).cancelled);
  EXPECT_TRUE(Info(h).scheduled);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 1u);
  ExpectConsistent(ex);
  EXPECT_EQ(s.drops, 0);  // not on this call: on the executor's next run
  EXPECT_EQ(cx_join_handle_cancel(h), CX_OK);  // already requested
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 1u);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(s.drops, 1);
  EXPECT_EQ(s.polls, 1);  // dropped, not polled again
  EXPECT_EQ(cx_join_handle_poll_count(h), 1u);
  EXPECT_EQ(cx_join_handle_try_join(h, nullptr, 0), CX_ECANCELED);
  EXPECT_EQ(cx_join_handle_cancel(h), CX_EALREADY);
  cx_executor_stats st = Stats(ex);
  EXPECT_EQ(st.cancelled, 1u);
  EXPECT_EQ(st.completed, 0u);
  EXPECT_EQ(st.live, 0u);
  cx_join_handle_detach(h);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(Cancel, ScheduledTaskIsNeverPolled) {
  cx_executor *ex = NewExecutor();
  Script s(ReadyAfter(1, 5));
  cx_join_handle *h = nullptr;
  ASSERT_EQ(Spawn(ex, &s, &h), CX_OK);
  EXPECT_TRUE(Info(h).scheduled);
  EXPECT_EQ(cx_join_handle_cancel(h), CX_OK);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 1u);  // still queued once
  ExpectConsistent(ex);
  // Finished by cancellation: step counts it, without a poll.
  EXPECT_EQ(cx_executor_step(ex), 1);
  EXPECT_EQ(s.polls, 0);
  EXPECT_EQ(s.drops, 1);
  EXPECT_EQ(cx_join_handle_poll_count(h), 0u);
  EXPECT_EQ(cx_join_handle_try_join(h, nullptr, 0), CX_ECANCELED);
  EXPECT_EQ(Stats(ex).polls, 0u);
  EXPECT_EQ(Stats(ex).cancelled, 1u);
  EXPECT_EQ(cx_executor_step(ex), 0);
  cx_join_handle_detach(h);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

TEST(Cancel, FromInsideItsOwnPoll) {
  cx_executor *ex = NewExecutor();
  // Cancels itself and pends: the future is dropped right after the poll.
  Script pend([](Script &s, cx_context *cx, int *) {
    EXPECT_EQ(cx_join_handle_cancel(s.handle), CX_OK);
    EXPECT_TRUE(Info(s.handle).running);
    EXPECT_TRUE(Info(s.handle).cancelled);
    EXPECT_EQ(s.drops, 0);
    cx_waker_wake_by_ref(cx->waker);  // a wake does not save it
    return CX_PENDING;
  });
  // Cancels itself and completes in the same poll: the output is kept.
  Script ready([](Script &s, cx_context *, int *out) {
    EXPECT_EQ(cx_join_handle_cancel(s.handle), CX_OK);
    *out = 77;
    return CX_READY;
  });
  ASSERT_EQ(Spawn(ex, &pend, &pend.handle), CX_OK);
  ASSERT_EQ(Spawn(ex, &ready, &ready.handle), CX_OK);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(pend.polls, 1);
  EXPECT_EQ(pend.drops, 1);
  EXPECT_EQ(cx_join_handle_try_join(pend.handle, nullptr, 0), CX_ECANCELED);
  EXPECT_EQ(ready.polls, 1);
  EXPECT_EQ(ready.drops, 1);
  int v = 0;
  EXPECT_EQ(cx_join_handle_try_join(ready.handle, &v, sizeof v), CX_OK);
  EXPECT_EQ(v, 77);
  EXPECT_EQ(cx_join_handle_cancel(ready.handle), CX_EALREADY);
  cx_executor_stats st = Stats(ex);
  EXPECT_EQ(st.completed, 1u);
  EXPECT_EQ(st.cancelled, 1u);
  EXPECT_EQ(st.polls, 2u);
  cx_join_handle_detach(pend.handle);
  cx_join_handle_detach(ready.handle);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

TEST(Cancel, FromAnotherThreadWhileTheExecutorRuns) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  Script s(PendHoldingWaker);
  cx_join_handle *h = nullptr;
  ASSERT_EQ(Spawn(ex, &s, &h), CX_OK);
  std::atomic<bool> polled{false};
  Script marker([&](Script &, cx_context *, int *out) {
    polled = true;
    *out = 0;
    return CX_READY;
  });
  ASSERT_EQ(Spawn(ex, &marker), CX_OK);
  int cancel_rc = 1, wait_rc = 1;
  // The handle moves to the thread: it cancels, then waits for the end.
  std::thread canceller([&] {
    while (!polled) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    cancel_rc = cx_join_handle_cancel(h);
    wait_rc = cx_join_handle_wait(h, nullptr, 0);
    cx_join_handle_detach(h);
  });
  // run() parks (the task holds its own waker), is woken by the cancel,
  // drops the future and returns once nothing is left.
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  canceller.join();
  EXPECT_EQ(cancel_rc, CX_OK);
  EXPECT_EQ(wait_rc, CX_ECANCELED);
  EXPECT_EQ(s.polls, 1);
  EXPECT_EQ(s.drops, 1);
  cx_executor_stats st = Stats(ex);
  EXPECT_EQ(st.cancelled, 1u);
  EXPECT_EQ(st.completed, 1u);
  EXPECT_GE(st.parks, 1u);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- wakes -----------------------------------------------------------------

TEST(Wake, AfterCompletionIsHarmless) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  cx_waker kept = kEmptyWaker;
  Script s([&](Script &, cx_context *cx, int *out) {
    EXPECT_EQ(cx_waker_clone(cx->waker, &kept), CX_OK);
    *out = 3;
    return CX_READY;
  });
  cx_join_handle *h = nullptr;
  ASSERT_EQ(Spawn(ex, &s, &h), CX_OK);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  ASSERT_FALSE(cx_waker_is_empty(&kept));
  // The task is finished; its waker still keeps the allocation alive.
  cx_join_handle_detach(h);
  EXPECT_GT(alloc.live(), 1u);
  for (int i = 0; i < 3; i++) {
    cx_waker_wake_by_ref(&kept);
    EXPECT_EQ(cx_executor_debug_ready_len(ex), 0u);
    ExpectConsistent(ex);
  }
  EXPECT_EQ(cx_executor_run_until_idle(ex), 0);
  cx_waker_wake(&kept);  // consumes the last reference: the task is freed
  EXPECT_TRUE(cx_waker_is_empty(&kept));
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(s.polls, 1);
  EXPECT_EQ(Stats(ex).polls, 1u);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(Wake, DuringPollReschedulesAfterThePollReturns) {
  cx_executor *ex = NewExecutor();
  // First poll: wakes itself by reference, and also wakes (consuming) a
  // clone; then pends. Nothing else would ever wake it, so a lost wake
  // would show as CX_EDEADLK and a poll count of 1.
  Script s([](Script &self, cx_context *cx, int *out) {
    if (self.polls == 1) {
      cx_waker_wake_by_ref(cx->waker);
      cx_task_debug_info info = Info(self.handle);
      EXPECT_TRUE(info.running);
      // The self-wake fast path: noted on this thread, the state word is
      // not written, and nothing is queued yet.
      EXPECT_FALSE(info.scheduled);
      EXPECT_EQ(cx_executor_debug_ready_len(cx->executor), 0u);
      cx_waker c = kEmptyWaker;
      EXPECT_EQ(cx_waker_clone(cx->waker, &c), CX_OK);
      cx_waker_wake(&c);
      // By value: the atomic path marks it; the poller queues it on the
      // way out.
      EXPECT_TRUE(Info(self.handle).scheduled);
      EXPECT_EQ(cx_executor_debug_ready_len(cx->executor), 0u);
      return CX_PENDING;
    }
    *out = 1;
    return CX_READY;
  });
  ASSERT_EQ(Spawn(ex, &s, &s.handle), CX_OK);
  EXPECT_EQ(cx_executor_step(ex), 1);
  // After the poll: queued exactly once for the second poll.
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 1u);
  EXPECT_TRUE(Info(s.handle).scheduled);
  EXPECT_FALSE(Info(s.handle).running);
  ExpectConsistent(ex);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(s.polls, 2);
  EXPECT_EQ(cx_join_handle_poll_count(s.handle), 2u);
  cx_join_handle_detach(s.handle);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

// ---- the self-wake fast path (poll.c: "carried" tasks) ----------------------
// A task that wakes itself by reference during its poll on a single-threaded
// executor is queued again still RUNNING, with no write to its state word.

TEST(SelfWake, ByRefIsQueuedAgainStillRunning) {
  cx_executor *ex = NewExecutor();
  Script s([](Script &self, cx_context *cx, int *out) {
    if (self.polls < 3) {
      cx_waker_wake_by_ref(cx->waker);
      cx_waker_wake_by_ref(cx->waker);  // twice: still queued once
      return CX_PENDING;
    }
    *out = 3;
    return CX_READY;
  });
  ASSERT_EQ(Spawn(ex, &s, &s.handle), CX_OK);
  EXPECT_EQ(cx_executor_step(ex), 1);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 1u);
  cx_task_debug_info info = Info(s.handle);
  EXPECT_TRUE(info.running);  // carried: other threads see it being polled
  EXPECT_FALSE(info.scheduled);
  EXPECT_EQ(info.refs, 3u);  // owner, handle, the running (now queue) ref
  ExpectConsistent(ex);
  EXPECT_EQ(cx_executor_step(ex), 1);
  EXPECT_EQ(s.polls, 2);
  ExpectConsistent(ex);
  int out = 0;
  EXPECT_EQ(cx_executor_join(ex, s.handle, &out, sizeof out), CX_OK);
  EXPECT_EQ(out, 3);
  EXPECT_EQ(s.polls, 3);
  EXPECT_EQ(cx_join_handle_poll_count(s.handle), 3u);
  EXPECT_EQ(Stats(ex).polls, 3u);
  cx_join_handle_detach(s.handle);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

TEST(SelfWake, CancelWhileCarriedDropsWithoutAPoll) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  Script s([](Script &, cx_context *cx, int *) {
    cx_waker_wake_by_ref(cx->waker);
    return CX_PENDING;
  });
  ASSERT_EQ(Spawn(ex, &s, &s.handle), CX_OK);
  EXPECT_EQ(cx_executor_step(ex), 1);
  EXPECT_EQ(cx_join_handle_cancel(s.handle), CX_OK);
  EXPECT_TRUE(Info(s.handle).cancelled);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 1u);  // not queued twice
  ExpectConsistent(ex);
  EXPECT_EQ(cx_executor_step(ex), 1);  // the pop drops it
  EXPECT_EQ(s.polls, 1);
  EXPECT_EQ(s.drops, 1);
  int out = 0;
  EXPECT_EQ(cx_join_handle_try_join(s.handle, &out, sizeof out), CX_ECANCELED);
  EXPECT_EQ(Stats(ex).cancelled, 1u);
  ExpectConsistent(ex);
  cx_join_handle_detach(s.handle);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(SelfWake, WakeWhileCarriedIsConsumedByTheNextPoll) {
  cx_executor *ex = NewExecutor();
  Script s([](Script &self, cx_context *cx, int *) {
    if (self.polls == 1) {
      EXPECT_EQ(cx_waker_clone(cx->waker, &self.held), CX_OK);
      cx_waker_wake_by_ref(cx->waker);
    }
    return CX_PENDING;  // the second poll arranges no wake
  });
  ASSERT_EQ(Spawn(ex, &s, &s.handle), CX_OK);
  EXPECT_EQ(cx_executor_step(ex), 1);
  cx_waker_wake_by_ref(&s.held);  // outside any poll: the atomic path
  cx_task_debug_info info = Info(s.handle);
  EXPECT_TRUE(info.running);
  EXPECT_TRUE(info.scheduled);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 1u);
  ExpectConsistent(ex);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 1);  // one poll, not two
  EXPECT_EQ(s.polls, 2);
  info = Info(s.handle);
  EXPECT_FALSE(info.running);
  EXPECT_FALSE(info.scheduled);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 0u);
  ExpectConsistent(ex);
  EXPECT_EQ(cx_join_handle_cancel(s.handle), CX_OK);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 1);
  cx_join_handle_detach(s.handle);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

// Cancelled during the poll that woke itself: finished right after that
// poll, as without the fast path.
TEST(SelfWake, CancelledDuringThePollIsFinishedAfterIt) {
  cx_executor *ex = NewExecutor();
  Script s([](Script &self, cx_context *cx, int *) {
    cx_waker_wake_by_ref(cx->waker);
    EXPECT_EQ(cx_join_handle_cancel(self.handle), CX_OK);
    return CX_PENDING;
  });
  ASSERT_EQ(Spawn(ex, &s, &s.handle), CX_OK);
  EXPECT_EQ(cx_executor_step(ex), 1);
  EXPECT_EQ(s.drops, 1);
  EXPECT_TRUE(cx_join_handle_is_finished(s.handle));
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 0u);
  ExpectConsistent(ex);
  cx_join_handle_detach(s.handle);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

// A poll that drives another executor (whose task also wakes itself) after
// waking itself: the inner polls must not erase the outer self-wake.
TEST(SelfWake, SurvivesANestedExecutorStep) {
  cx_executor *ex = NewExecutor();
  cx_executor *inner = NewExecutor();
  // Wakes itself in its first poll only: the inner executor's last poll
  // ends with no self-wake, which must not erase the outer one.
  Script in([](Script &self, cx_context *cx, int *) {
    if (self.polls == 1) cx_waker_wake_by_ref(cx->waker);
    return CX_PENDING;
  });
  ASSERT_EQ(Spawn(inner, &in, &in.handle), CX_OK);
  Script out([&](Script &self, cx_context *cx, int *o) {
    if (self.polls == 1) {
      cx_waker_wake_by_ref(cx->waker);
      EXPECT_EQ(cx_executor_step(inner), 1);
      EXPECT_EQ(cx_executor_step(inner), 1);
      return CX_PENDING;
    }
    *o = 7;
    return CX_READY;
  });
  ASSERT_EQ(Spawn(ex, &out, &out.handle), CX_OK);
  EXPECT_EQ(cx_executor_step(ex), 1);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 1u);  // the outer wake kept
  EXPECT_EQ(cx_executor_debug_ready_len(inner), 0u);
  ExpectConsistent(ex);
  ExpectConsistent(inner);
  int o = 0;
  EXPECT_EQ(cx_executor_join(ex, out.handle, &o, sizeof o), CX_OK);
  EXPECT_EQ(o, 7);
  EXPECT_EQ(in.polls, 2);
  cx_join_handle_detach(out.handle);
  cx_join_handle_detach(in.handle);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(cx_executor_destroy(inner), CX_OK);
  EXPECT_EQ(in.drops, 1);
}

// Destroying an executor with a carried task drops it once.
TEST(SelfWake, DestroyDropsACarriedTask) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  Script s([](Script &, cx_context *cx, int *) {
    cx_waker_wake_by_ref(cx->waker);
    return CX_PENDING;
  });
  ASSERT_EQ(Spawn(ex, &s, nullptr), CX_OK);
  EXPECT_EQ(cx_executor_step(ex), 1);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(s.polls, 1);
  EXPECT_EQ(s.drops, 1);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(Wake, NeverQueuedTwice) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  cx_waker target_waker = kEmptyWaker;
  Script target([&](Script &s, cx_context *cx, int *out) {
    if (s.polls == 1) {
      EXPECT_EQ(cx_waker_clone(cx->waker, &target_waker), CX_OK);
      return CX_PENDING;
    }
    if (s.polls < 4) return CX_PENDING;
    *out = 0;
    return CX_READY;
  });
  cx_join_handle *h = nullptr;
  ASSERT_EQ(Spawn(ex, &target, &h), CX_OK);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 1);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 0u);
  ExpectConsistent(ex);

  // From a thread that is not running the executor (the remote path).
  for (int i = 0; i < 5; i++) {
    cx_waker_wake_by_ref(&target_waker);
    EXPECT_EQ(cx_executor_debug_ready_len(ex), 1u) << i;
    EXPECT_TRUE(Info(h).scheduled);
    ExpectConsistent(ex);
  }
  EXPECT_EQ(cx_executor_run_until_idle(ex), 1);  // exactly one extra poll
  EXPECT_EQ(target.polls, 2);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 0u);
  ExpectConsistent(ex);

  // From another task (the executor's own thread: the local path).
  Script waker_task([&](Script &, cx_context *cx, int *out) {
    for (int i = 0; i < 5; i++) {
      cx_waker_wake_by_ref(&target_waker);
      EXPECT_EQ(cx_executor_debug_ready_len(cx->executor), 1u) << i;
      ExpectConsistent(cx->executor);
    }
    *out = 0;
    return CX_READY;
  });
  ASSERT_EQ(Spawn(ex, &waker_task), CX_OK);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 2);  // waker_task + target once
  EXPECT_EQ(target.polls, 3);
  ExpectConsistent(ex);

  // Both at once: a remote wake, then the same task woken locally.
  cx_waker_wake_by_ref(&target_waker);
  Script waker_task2([&](Script &, cx_context *cx, int *out) {
    cx_waker_wake_by_ref(&target_waker);
    EXPECT_EQ(cx_executor_debug_ready_len(cx->executor), 1u);
    *out = 0;
    return CX_READY;
  });
  ASSERT_EQ(Spawn(ex, &waker_task2), CX_OK);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 2u);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 2);
  EXPECT_EQ(target.polls, 4);
  EXPECT_TRUE(cx_join_handle_is_finished(h));
  cx_waker_drop(&target_waker);
  cx_join_handle_detach(h);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(Wake, LastWakerAndHandleDroppedInsidePoll) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  // A task that owns its only handle and a clone of its own waker, and
  // gives up both from inside its poll before completing.
  Script self_owner([](Script &s, cx_context *cx, int *out) {
    if (s.polls == 1) {
      EXPECT_EQ(cx_waker_clone(cx->waker, &s.held), CX_OK);
      cx_waker_wake_by_ref(&s.held);
      return CX_PENDING;
    }
    cx_waker_drop(&s.held);
    cx_join_handle_detach(s.handle);
    s.handle = nullptr;
    *out = 0;
    return CX_READY;
  });
  ASSERT_EQ(Spawn(ex, &self_owner, &self_owner.handle), CX_OK);

  // B pends and hands its only waker to A. A wakes B by value on its first
  // poll (consuming the last waker) and drops a second clone on its second.
  cx_waker b_wakers[2] = {kEmptyWaker, kEmptyWaker};
  Script b([&](Script &s, cx_context *cx, int *out) {
    if (s.polls == 1) {
      EXPECT_EQ(cx_waker_clone(cx->waker, &b_wakers[0]), CX_OK);
      EXPECT_EQ(cx_waker_clone(cx->waker, &b_wakers[1]), CX_OK);
      return CX_PENDING;
    }
    *out = 0;
    return CX_READY;
  });
  Script a([&](Script &s, cx_context *cx, int *out) {
    if (s.polls == 1) {
      cx_waker_wake(&b_wakers[0]);
      cx_waker_wake_by_ref(cx->waker);
      return CX_PENDING;
    }
    cx_waker_drop(&b_wakers[1]);
    *out = 0;
    return CX_READY;
  });
  ASSERT_EQ(Spawn(ex, &b), CX_OK);
  ASSERT_EQ(Spawn(ex, &a), CX_OK);

  // C: pends; A2 drops C's only waker without waking it: C can never run
  // again, which run() reports.
  cx_waker c_waker = kEmptyWaker;
  Script c([&](Script &, cx_context *cx, int *) {
    EXPECT_EQ(cx_waker_clone(cx->waker, &c_waker), CX_OK);
    return CX_PENDING;
  });
  Script a2([&](Script &, cx_context *, int *out) {
    cx_waker_drop(&c_waker);
    *out = 0;
    return CX_READY;
  });
  cx_join_handle *ch = nullptr;
  ASSERT_EQ(Spawn(ex, &c, &ch), CX_OK);
  ASSERT_EQ(Spawn(ex, &a2), CX_OK);

  EXPECT_EQ(cx_executor_run(ex), CX_EDEADLK);
  EXPECT_EQ(self_owner.polls, 2);
  EXPECT_EQ(self_owner.drops, 1);
  EXPECT_EQ(b.polls, 2);
  EXPECT_EQ(a.polls, 2);
  EXPECT_EQ(c.polls, 1);
  EXPECT_EQ(Stats(ex).live, 1u);
  ExpectConsistent(ex);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(c.drops, 1);
  EXPECT_EQ(cx_join_handle_try_join(ch, nullptr, 0), CX_ECANCELED);
  cx_join_handle_detach(ch);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

// A hand-off slot for one waker between a task and a thread.
struct Mailbox {
  std::mutex mu;
  std::condition_variable cv;
  cx_waker w = kEmptyWaker;
  bool has = false;
  bool done = false;
};

TEST(Wake, ThreadWakesWhileTheExecutorPolls) {
  ScopedCountingAllocator alloc;
  constexpr int kTasks = 4;
  constexpr int kRounds = 500;
  cx_executor *ex = NewExecutor();
  std::vector<Mailbox> boxes(kTasks);
  std::vector<Script> scripts(kTasks);
  std::vector<cx_join_handle *> hs(kTasks);
  for (int i = 0; i < kTasks; i++) {
    Mailbox &box = boxes[i];
    // Each poll but the last hands a fresh waker to the thread *before*
    // returning, so the thread's wake often lands while the task is still
    // being polled. Exactly one wake per hand-off: exactly kRounds polls.
    scripts[i].fn = [&box](Script &s, cx_context *cx, int *out) {
      std::lock_guard<std::mutex> lock(box.mu);
      if (s.polls == kRounds) {
        box.done = true;
        box.cv.notify_one();
        *out = s.polls;
        return CX_READY;
      }
      EXPECT_FALSE(box.has);
      EXPECT_EQ(cx_waker_clone(cx->waker, &box.w), CX_OK);
      box.has = true;
      box.cv.notify_one();
      return CX_PENDING;
    };
    ASSERT_EQ(Spawn(ex, &scripts[i], &hs[i]), CX_OK);
  }
  std::vector<std::thread> wakers;
  for (int i = 0; i < kTasks; i++)
    wakers.emplace_back([&box = boxes[i], i] {
      for (int n = 0;; n++) {
        std::unique_lock<std::mutex> lock(box.mu);
        box.cv.wait(lock, [&] { return box.has || box.done; });
        if (!box.has) break;
        cx_waker w = box.w;
        box.w = kEmptyWaker;
        box.has = false;
        lock.unlock();
        if ((n + i) % 3 == 0) std::this_thread::yield();
        if (n % 2 == 0) {
          cx_waker_wake(&w);
        } else {
          cx_waker_wake_by_ref(&w);
          cx_waker_drop(&w);
        }
      }
    });
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  for (std::thread &t : wakers) t.join();
  for (int i = 0; i < kTasks; i++) {
    EXPECT_EQ(scripts[i].polls, kRounds);
    EXPECT_EQ(cx_join_handle_poll_count(hs[i]), uint64_t(kRounds));
    int v = 0;
    EXPECT_EQ(cx_join_handle_try_join(hs[i], &v, sizeof v), CX_OK);
    EXPECT_EQ(v, kRounds);
    cx_join_handle_detach(hs[i]);
  }
  cx_executor_stats st = Stats(ex);
  EXPECT_EQ(st.polls, uint64_t(kTasks * kRounds));
  EXPECT_EQ(st.completed, uint64_t(kTasks));
  EXPECT_EQ(st.live, 0u);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

// ---- spawners --------------------------------------------------------------

struct CounterState {
  std::atomic<int> *counter;
};
cx_poll CounterPoll(void *self, cx_context *, void *) {
  (*static_cast<CounterState *>(self)->counter)++;
  return CX_READY;
}
const cx_future_vtable kCounterVt = {.poll = CounterPoll,
                                     .state_size = sizeof(CounterState),
                                     .state_align = alignof(CounterState),
                                     .output_size = 0};

TEST(Spawner, ManyThreadsSpawnAndRunWaitsForEverySpawner) {
  ScopedCountingAllocator alloc;
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1000;
  cx_executor *ex = NewExecutor();
  cx_spawner *sp = nullptr;
  ASSERT_EQ(cx_executor_spawner(ex, &sp), CX_OK);
  std::vector<cx_spawner *> mine(kThreads);
  for (int i = 0; i < kThreads; i++)
    ASSERT_EQ(cx_spawner_clone(sp, &mine[i]), CX_OK);
  cx_spawner_drop(sp);
  std::atomic<int> counter{0};
  std::atomic<int> dropping{0};
  std::vector<int> last_rc(kThreads, 1);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++)
    threads.emplace_back([&, i] {
      CounterState st = {&counter};
      for (int n = 0; n < kPerThread - 1; n++) {
        EXPECT_EQ(cx_spawner_spawn(mine[i], &kCounterVt, &st, nullptr), CX_OK);
        // Pauses let the executor run dry and park while spawners live.
        if (n % 250 == 249)
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      // The last one with a handle, joined from this thread.
      cx_join_handle *h = nullptr;
      EXPECT_EQ(cx_spawner_spawn(mine[i], &kCounterVt, &st, &h), CX_OK);
      last_rc[i] = cx_join_handle_wait(h, nullptr, 0);
      cx_join_handle_detach(h);
      std::this_thread::sleep_for(std::chrono::milliseconds(2 * i));
      dropping++;
      cx_spawner_drop(mine[i]);
    });
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  // run() returned, so every spawner was dropped; had it returned earlier,
  // tasks spawned afterwards would not have run.
  EXPECT_EQ(dropping, kThreads);
  EXPECT_EQ(counter, kThreads * kPerThread);
  for (std::thread &t : threads) t.join();
  for (int i = 0; i < kThreads; i++) EXPECT_EQ(last_rc[i], CX_OK);
  cx_executor_stats st = Stats(ex);
  EXPECT_EQ(st.spawned, uint64_t(kThreads * kPerThread));
  EXPECT_EQ(st.completed, uint64_t(kThreads * kPerThread));
  EXPECT_EQ(st.polls, uint64_t(kThreads * kPerThread));
  EXPECT_EQ(st.live, 0u);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 0);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(Spawner, SpawnFromTheOwnerThreadAndFromATask) {
  cx_executor *ex = NewExecutor();
  cx_spawner *sp = nullptr;
  ASSERT_EQ(cx_executor_spawner(ex, &sp), CX_OK);
  std::atomic<int> counter{0};
  CounterState st = {&counter};
  // Outside run(): queued remotely until the executor takes it in.
  ASSERT_EQ(cx_spawner_spawn(sp, &kCounterVt, &st, nullptr), CX_OK);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 1u);
  ExpectConsistent(ex);
  Script spawner_user([&](Script &, cx_context *, int *out) {
    EXPECT_EQ(cx_spawner_spawn(sp, &kCounterVt, &st, nullptr), CX_OK);
    cx_spawner_drop(sp);  // the last spawner goes from inside a task
    *out = 0;
    return CX_READY;
  });
  ASSERT_EQ(Spawn(ex, &spawner_user), CX_OK);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(counter, 2);
  cx_executor_stats s = Stats(ex);
  EXPECT_EQ(s.spawned, 3u);
  EXPECT_EQ(s.completed, 3u);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

TEST(Spawner, SpawnAfterDestroyIsShutdown) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  cx_spawner *sp = nullptr;
  ASSERT_EQ(cx_executor_spawner(ex, &sp), CX_OK);
  std::atomic<int> counter{0};
  CounterState st = {&counter};
  // Spawned but never run: destroy cancels it (no poll).
  cx_join_handle *h = nullptr;
  ASSERT_EQ(cx_spawner_spawn(sp, &kCounterVt, &st, &h), CX_OK);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(counter, 0);
  EXPECT_EQ(cx_join_handle_try_join(h, nullptr, 0), CX_ECANCELED);
  cx_join_handle_detach(h);
  // The spawner outlives the executor; spawning fails cleanly, here and
  // from another thread, and hands back no handle.
  cx_join_handle *h2 = reinterpret_cast<cx_join_handle *>(&counter);
  EXPECT_EQ(cx_spawner_spawn(sp, &kCounterVt, &st, &h2), CX_ESHUTDOWN);
  EXPECT_EQ(h2, nullptr);
  cx_spawner *sp2 = nullptr;
  ASSERT_EQ(cx_spawner_clone(sp, &sp2), CX_OK);
  int rc = 1;
  std::thread t([&] {
    rc = cx_spawner_spawn(sp2, &kCounterVt, &st, nullptr);
    cx_spawner_drop(sp2);
  });
  t.join();
  EXPECT_EQ(rc, CX_ESHUTDOWN);
  EXPECT_EQ(counter, 0);
  EXPECT_GT(alloc.live(), 0u);  // the spawner keeps the shared part alive
  cx_spawner_drop(sp);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

// Regression: the last spawner dropped (on another thread) right after a
// wake, while run() is between its "anything left?" checks and parking.
// run() used to park forever (the drop's signal was lost) or return
// CX_EDEADLK with nothing left to run.
TEST(Spawner, LastDropRacesWithRunEnding) {
  struct Shared {
    cx_waker w = kEmptyWaker;
    std::atomic<bool> ready{false};
  };
  // A lost wake shows as run() never returning: a watchdog turns that
  // into a failure with a message rather than a test timeout.
  std::atomic<int> progress{0};
  std::atomic<bool> finished{false};
  std::thread watchdog([&] {
    int seen = -1;
    auto last = std::chrono::steady_clock::now();
    while (!finished) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (progress != seen) {
        seen = progress;
        last = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - last >
                 std::chrono::seconds(5)) {
        std::fprintf(stderr,
                     "run() parked forever after the last spawner was "
                     "dropped (iteration %d): a lost wake\n",
                     seen);
        std::abort();
      }
    }
  });
  // The drop must land just as run() reaches its checks after the task's
  // last poll, a moment that depends on the machine (the executor's wake-up
  // latency). Each iteration measures wake -> end of the last poll, and the
  // next ones aim the drop around that, sweeping an offset.
  using Clock = std::chrono::steady_clock;
  int64_t latency_ns = 20000;  // refined from the first iteration on
  auto start = Clock::now();
  int iterations = 0;
  while (Clock::now() - start < std::chrono::milliseconds(500) &&
         iterations < 5000) {
    iterations++;
    progress = iterations;
    cx_executor *ex = NewExecutor();
    cx_spawner *sp = nullptr;
    ASSERT_EQ(cx_executor_spawner(ex, &sp), CX_OK);
    Shared sh;
    Clock::time_point woke_at, done_at;
    Script s([&](Script &self, cx_context *cx, int *out) {
      if (self.polls == 1) {
        EXPECT_EQ(cx_waker_clone(cx->waker, &sh.w), CX_OK);
        sh.ready = true;
        return CX_PENDING;
      }
      done_at = Clock::now();
      *out = 0;
      return CX_READY;
    });
    ASSERT_EQ(Spawn(ex, &s), CX_OK);
    int64_t offset = (iterations * 37) % 3000 - 1000;  // -1 us .. +2 us
    auto delay =
        std::chrono::nanoseconds(std::max<int64_t>(0, latency_ns + offset));
    std::thread t([&] {
      while (!sh.ready) std::this_thread::yield();
      woke_at = Clock::now();
      cx_waker_wake(&sh.w);
      auto until = woke_at + delay;
      while (Clock::now() < until) {
      }
      cx_spawner_drop(sp);
    });
    ASSERT_EQ(cx_executor_run(ex), CX_OK) << "iteration " << iterations;
    t.join();
    EXPECT_EQ(s.polls, 2);
    EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
    int64_t seen =
        std::chrono::duration_cast<std::chrono::nanoseconds>(done_at - woke_at)
            .count();
    if (seen > 0 && seen < 10000000) latency_ns += (seen - latency_ns) / 8;
  }
  finished = true;
  watchdog.join();
  RecordProperty("iterations", iterations);
  EXPECT_GT(iterations, 0);
}

// ---- run -------------------------------------------------------------------

TEST(Run, DeadlockWhenATaskPendsWithNoWakerAnywhere) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  Script stuck(PendWithoutWaker);
  Script fine(ReadyAfter(3, 0));
  cx_join_handle *h = nullptr;
  ASSERT_EQ(Spawn(ex, &stuck, &h), CX_OK);  // join handles do not count
  ASSERT_EQ(Spawn(ex, &fine), CX_OK);
  EXPECT_EQ(cx_executor_run(ex), CX_EDEADLK);
  EXPECT_EQ(stuck.polls, 1);
  EXPECT_EQ(fine.polls, 3);
  EXPECT_EQ(Stats(ex).live, 1u);
  EXPECT_EQ(Stats(ex).parks, 0u);  // reported, not waited on
  // Same answer from the other drivers.
  EXPECT_EQ(cx_executor_run(ex), CX_EDEADLK);
  EXPECT_EQ(cx_executor_join(ex, h, nullptr, 0), CX_EDEADLK);
  EXPECT_EQ(stuck.polls, 1);
  EXPECT_EQ(stuck.drops, 0);  // left in place
  EXPECT_FALSE(cx_join_handle_is_finished(h));
  // A live spawner could still spawn a waker-holder: not a deadlock.
  cx_spawner *sp = nullptr;
  ASSERT_EQ(cx_executor_spawner(ex, &sp), CX_OK);
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    cx_spawner_drop(sp);
  });
  EXPECT_EQ(cx_executor_run(ex), CX_EDEADLK);  // after the drop
  t.join();
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(stuck.drops, 1);
  EXPECT_EQ(cx_join_handle_try_join(h, nullptr, 0), CX_ECANCELED);
  cx_join_handle_detach(h);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(Run, ReentrantCallsFromInsideATaskAreBusy) {
  cx_executor *ex = NewExecutor();
  cx_join_handle *other = nullptr;
  Script sibling(PendHoldingWaker);
  ASSERT_EQ(Spawn(ex, &sibling, &other), CX_OK);
  Script s([&](Script &, cx_context *cx, int *out) {
    EXPECT_EQ(cx_executor_run(cx->executor), CX_EBUSY);
    EXPECT_EQ(cx_executor_run_until_idle(cx->executor), CX_EBUSY);
    EXPECT_EQ(cx_executor_step(cx->executor), CX_EBUSY);
    EXPECT_EQ(cx_executor_join(cx->executor, other, nullptr, 0), CX_EBUSY);
    EXPECT_EQ(cx_executor_destroy(cx->executor), CX_EBUSY);
    EXPECT_EQ(cx_join_handle_cancel(other), CX_OK);
    *out = 0;
    return CX_READY;
  });
  ASSERT_EQ(Spawn(ex, &s), CX_OK);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(s.polls, 1);
  EXPECT_EQ(sibling.drops, 1);  // the destroy attempt did nothing else
  EXPECT_EQ(cx_join_handle_try_join(other, nullptr, 0), CX_ECANCELED);
  cx_join_handle_detach(other);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

TEST(Run, UntilIdleAndStepReturnCounts) {
  cx_executor *ex = NewExecutor();
  EXPECT_EQ(cx_executor_step(ex), 0);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 0);
  std::vector<Script> scripts(3);
  for (int i = 0; i < 3; i++) {
    scripts[i].fn = ReadyAfter(i + 2, 0);  // 2, 3, 4 polls
    ASSERT_EQ(Spawn(ex, &scripts[i]), CX_OK);
  }
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 3u);
  EXPECT_EQ(cx_executor_step(ex), 1);
  EXPECT_EQ(scripts[0].polls, 1);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 3u);  // re-queued at the back
  EXPECT_EQ(cx_executor_step(ex), 1);
  EXPECT_EQ(scripts[1].polls, 1);
  EXPECT_EQ(Stats(ex).polls, 2u);
  // 9 polls in all; 2 made. run_until_idle polls the rest, including the
  // tasks made ready meanwhile.
  EXPECT_EQ(cx_executor_run_until_idle(ex), 7);
  EXPECT_EQ(Stats(ex).polls, 9u);
  EXPECT_EQ(Stats(ex).live, 0u);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 0);
  EXPECT_EQ(cx_executor_step(ex), 0);
  // A task pending with a waker held: idle, and step/run_until_idle return
  // without parking.
  Script holder(PendHoldingWaker);
  ASSERT_EQ(Spawn(ex, &holder), CX_OK);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 1);
  EXPECT_EQ(cx_executor_step(ex), 0);
  EXPECT_EQ(Stats(ex).parks, 0u);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(holder.drops, 1);
}

TEST(Stats, CountersAreExact) {
  cx_executor *ex = NewExecutor();
  cx_executor_stats st = Stats(ex);
  EXPECT_EQ(st.spawned, 0u);
  EXPECT_EQ(st.polls, 0u);
  EXPECT_EQ(st.completed, 0u);
  EXPECT_EQ(st.cancelled, 0u);
  EXPECT_EQ(st.parks, 0u);
  EXPECT_EQ(st.live, 0u);
  EXPECT_EQ(st.timers, 0u);

  Script three(ReadyAfter(3, 0)), one(ReadyAfter(1, 0));
  Script forever(PendHoldingWaker), doomed(ReadyAfter(1, 0));
  cx_join_handle *fh = nullptr, *dh = nullptr;
  ASSERT_EQ(Spawn(ex, &three), CX_OK);
  ASSERT_EQ(Spawn(ex, &one), CX_OK);
  ASSERT_EQ(Spawn(ex, &forever, &fh), CX_OK);
  ASSERT_EQ(Spawn(ex, &doomed, &dh), CX_OK);
  EXPECT_EQ(cx_join_handle_cancel(dh), CX_OK);  // cancelled before a poll
  cx_spawner *sp = nullptr;
  ASSERT_EQ(cx_executor_spawner(ex, &sp), CX_OK);
  std::atomic<int> counter{0};
  CounterState cs = {&counter};
  ASSERT_EQ(cx_spawner_spawn(sp, &kCounterVt, &cs, nullptr), CX_OK);
  cx_spawner_drop(sp);
  cx_sleep sleep;
  cx_sleep_init_for(&sleep, 3600 * CX_NSEC_PER_SEC);
  cx_join_handle *sh = nullptr;
  ASSERT_EQ(cx_spawn(ex, &cx_sleep_vtable, &sleep, &sh), CX_OK);

  st = Stats(ex);
  // The spawner's task counts from its spawn call on, although the executor
  // has not taken it in yet (issue 8: "tasks accepted").
  EXPECT_EQ(st.spawned, 6u);
  EXPECT_EQ(st.live, 6u);
  EXPECT_EQ(st.polls, 0u);

  EXPECT_EQ(cx_executor_run_until_idle(ex), 3 + 1 + 1 + 1 + 1 + 1);
  st = Stats(ex);
  EXPECT_EQ(st.spawned, 6u);
  EXPECT_EQ(st.polls, 3u + 1 + 1 + 1 + 1);  // doomed was never polled
  EXPECT_EQ(st.completed, 3u);              // three, one, counter
  EXPECT_EQ(st.cancelled, 1u);              // doomed
  EXPECT_EQ(st.live, 2u);                   // forever, sleep
  EXPECT_EQ(st.timers, 1u);
  EXPECT_EQ(st.parks, 0u);
  EXPECT_EQ(st.spawned, st.completed + st.cancelled + st.live);

  EXPECT_EQ(cx_join_handle_cancel(sh), CX_OK);
  EXPECT_EQ(cx_join_handle_cancel(fh), CX_OK);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  st = Stats(ex);
  EXPECT_EQ(st.spawned, 6u);
  EXPECT_EQ(st.polls, 7u);
  EXPECT_EQ(st.completed, 3u);
  EXPECT_EQ(st.cancelled, 3u);
  EXPECT_EQ(st.live, 0u);
  EXPECT_EQ(st.timers, 0u);
  EXPECT_EQ(st.parks, 0u);
  cx_join_handle_detach(fh);
  cx_join_handle_detach(dh);
  cx_join_handle_detach(sh);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

// ---- destroy ---------------------------------------------------------------

TEST(Destroy, CancelsEveryUnfinishedTask) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  Script never_polled(ReadyAfter(1, 0));
  Script idle_holding(PendHoldingWaker);
  Script idle_stuck(PendWithoutWaker);
  Script yielding(ReadyAfter(1000, 0));  // queued when destroy comes
  Script detached(PendHoldingWaker);
  cx_join_handle *h[4] = {};
  ASSERT_EQ(Spawn(ex, &idle_holding, &h[0]), CX_OK);
  ASSERT_EQ(Spawn(ex, &idle_stuck, &h[1]), CX_OK);
  ASSERT_EQ(Spawn(ex, &detached), CX_OK);
  cx_sleep sleep;
  cx_sleep_init_for(&sleep, 3600 * CX_NSEC_PER_SEC);
  cx_join_handle *sh = nullptr;
  ASSERT_EQ(cx_spawn(ex, &cx_sleep_vtable, &sleep, &sh), CX_OK);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 4);
  ASSERT_EQ(Spawn(ex, &yielding, &h[2]), CX_OK);
  EXPECT_EQ(cx_executor_step(ex), 1);  // polled once, queued again
  ASSERT_EQ(Spawn(ex, &never_polled, &h[3]), CX_OK);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 2u);
  // A spawn through a spawner, not yet taken in by the executor.
  cx_spawner *sp = nullptr;
  ASSERT_EQ(cx_executor_spawner(ex, &sp), CX_OK);
  Script remote(ReadyAfter(1, 0));
  cx_join_handle *rh = nullptr;
  ASSERT_EQ(SpawnVia(sp, &remote, &rh), CX_OK);
  EXPECT_EQ(Stats(ex).timers, 1u);

  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  for (Script *s : {&never_polled, &idle_holding, &idle_stuck, &yielding,
                    &detached, &remote})
    EXPECT_EQ(s->drops, 1);
  EXPECT_EQ(never_polled.polls, 0);
  EXPECT_EQ(remote.polls, 0);
  EXPECT_EQ(yielding.polls, 1);
  EXPECT_EQ(idle_holding.polls, 1);
  for (cx_join_handle *hh : {h[0], h[1], h[2], h[3], sh, rh}) {
    EXPECT_TRUE(cx_join_handle_is_finished(hh));
    EXPECT_EQ(cx_join_handle_try_join(hh, nullptr, 0), CX_ECANCELED);
    int v = 0;
    EXPECT_EQ(cx_join_handle_wait(hh, &v, sizeof v), CX_ECANCELED);
    EXPECT_EQ(cx_join_handle_cancel(hh), CX_EALREADY);
  }
  EXPECT_GT(alloc.live(), 0u);
  for (cx_join_handle *hh : {h[0], h[1], h[2], h[3], sh, rh})
    cx_join_handle_detach(hh);
  EXPECT_GT(alloc.live(), 0u);  // the spawner still shares the executor
  cx_spawner_drop(sp);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

TEST(Destroy, WakesAThreadWaitingOnAHandle) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  Script s(PendHoldingWaker);
  cx_join_handle *h = nullptr;
  ASSERT_EQ(Spawn(ex, &s, &h), CX_OK);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 1);
  int rc = 1;
  std::thread waiter([&] {
    rc = cx_join_handle_wait(h, nullptr, 0);
    cx_join_handle_detach(h);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  waiter.join();
  EXPECT_EQ(rc, CX_ECANCELED);
  EXPECT_EQ(s.drops, 1);
  EXPECT_EQ(alloc.live(), 0u);
}

// A future whose only job is to be dropped exactly once.
struct DropCountState {
  std::atomic<int> *drops;
};
cx_poll DropCountPoll(void *, cx_context *, void *) {
  return CX_PENDING;  // idle until destroyed
}
void DropCountDrop(void *self) {
  (*static_cast<DropCountState *>(self)->drops)++;
}
const cx_future_vtable kDropCountVt = {.poll = DropCountPoll,
                                       .drop = DropCountDrop,
                                       .state_size = sizeof(DropCountState),
                                       .state_align = alignof(DropCountState),
                                       .output_size = 0};

// destroy() while other threads keep spawning through spawners and waking
// tasks through wakers they hold: every accepted spawn is dropped exactly
// once, every refused one reports CX_ESHUTDOWN, late wakes are harmless,
// and the last thread to let go frees everything.
TEST(Destroy, RacesWithRemoteSpawnsAndWakes) {
  ScopedCountingAllocator alloc;
  constexpr int kSpawners = 2, kWakers = 2;
  cx_executor *ex = NewExecutor();
  std::atomic<int> drops{0};
  // Tasks that hand a clone of their waker to a waking thread.
  std::vector<Script> holders(kWakers);
  std::vector<std::atomic<bool>> published(kWakers);
  std::vector<cx_waker> handed(kWakers, kEmptyWaker);
  for (int i = 0; i < kWakers; i++) {
    published[i] = false;
    holders[i].fn = [&, i](Script &s, cx_context *cx, int *) {
      if (s.polls == 1) {
        EXPECT_EQ(cx_waker_clone(cx->waker, &handed[i]), CX_OK);
        published[i] = true;
      }
      return CX_PENDING;
    };
    ASSERT_EQ(Spawn(ex, &holders[i]), CX_OK);
  }
  std::vector<cx_spawner *> sps(kSpawners);
  for (cx_spawner *&sp : sps) ASSERT_EQ(cx_executor_spawner(ex, &sp), CX_OK);
  std::atomic<bool> stop{false};
  std::vector<int> accepted(kSpawners, 0), refused(kSpawners, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kSpawners; i++)
    threads.emplace_back([&, i] {
      // Spawns until refused, which must happen once destroy has run.
      DropCountState st = {&drops};
      for (;;) {
        int rc = cx_spawner_spawn(sps[i], &kDropCountVt, &st, nullptr);
        if (rc != CX_OK) {
          EXPECT_EQ(rc, CX_ESHUTDOWN);
          refused[i]++;
          break;
        }
        accepted[i]++;
        if (accepted[i] % 64 == 0) std::this_thread::yield();
      }
      cx_spawner_drop(sps[i]);
    });
  for (int i = 0; i < kWakers; i++)
    threads.emplace_back([&, i] {
      while (!published[i]) std::this_thread::yield();
      while (!stop) cx_waker_wake_by_ref(&handed[i]);
      cx_waker_wake(&handed[i]);
    });
  // Let it all run for a while, then shut down in the middle of it. (Not
  // run_until_idle: with wakes arriving nonstop it need never be idle.)
  for (int round = 0; round < 20; round++) {
    for (int k = 0; k < 200; k++) EXPECT_GE(cx_executor_step(ex), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (int i = 0; i < kWakers; i++) EXPECT_TRUE(published[i]);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  for (Script &h : holders) EXPECT_EQ(h.drops, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // late wakes
  stop = true;
  for (std::thread &t : threads) t.join();
  int total = 0;
  for (int i = 0; i < kSpawners; i++) {
    total += accepted[i];
    EXPECT_EQ(refused[i], 1);
  }
  EXPECT_GT(total, 0);
  EXPECT_EQ(drops, total);  // every accepted state dropped exactly once
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

TEST(Destroy, NullIsANoOp) {
  EXPECT_EQ(cx_executor_destroy(nullptr), CX_OK);
}

// ---- bad arguments ---------------------------------------------------------

TEST(InvalidArgs, EveryPublicFunction) {
  ScopedCountingAllocator alloc;
  EXPECT_EQ(cx_executor_create(nullptr, nullptr), CX_EINVAL);
  cx_executor *ex = NewExecutor();
  cx_executor *ex2 = NewExecutor();
  Script s(ReadyAfter(1, 9));
  Script *sp_state = &s;
  cx_join_handle *h = reinterpret_cast<cx_join_handle *>(&s);  // garbage

  // cx_spawn: NULL executor or vtable, bad vtables, NULL state; *handle is
  // cleared and nothing is taken.
  EXPECT_EQ(cx_spawn(nullptr, &kScriptVt, &sp_state, &h), CX_EINVAL);
  EXPECT_EQ(h, nullptr);
  EXPECT_EQ(cx_spawn(ex, nullptr, &sp_state, nullptr), CX_EINVAL);
  cx_future_vtable bad = kScriptVt;
  bad.poll = nullptr;
  EXPECT_EQ(cx_spawn(ex, &bad, &sp_state, nullptr), CX_EINVAL);
  bad = kScriptVt;
  bad.state_align = 3;
  EXPECT_EQ(cx_spawn(ex, &bad, &sp_state, nullptr), CX_EINVAL);
  bad.state_align = 128;
  EXPECT_EQ(cx_spawn(ex, &bad, &sp_state, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_spawn(ex, &kScriptVt, nullptr, nullptr), CX_EINVAL);
  EXPECT_EQ(s.drops, 0);
  EXPECT_EQ(Stats(ex).spawned, 0u);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 0u);

  // Drivers.
  EXPECT_EQ(cx_executor_run(nullptr), CX_EINVAL);
  EXPECT_EQ(cx_executor_run_until_idle(nullptr), CX_EINVAL);
  EXPECT_EQ(cx_executor_step(nullptr), CX_EINVAL);
  ASSERT_EQ(Spawn(ex, &s, &h), CX_OK);
  EXPECT_EQ(cx_executor_join(nullptr, h, nullptr, 0), CX_EINVAL);
  EXPECT_EQ(cx_executor_join(ex, nullptr, nullptr, 0), CX_EINVAL);
  EXPECT_EQ(cx_executor_join(ex2, h, nullptr, 0), CX_EINVAL);  // not its task
  int v = 0;
  EXPECT_EQ(cx_executor_join(ex, h, &v, sizeof v + 1), CX_EINVAL);
  EXPECT_EQ(cx_executor_join(ex, h, &v, sizeof v), CX_OK);
  EXPECT_EQ(v, 9);
  cx_join_handle_detach(h);
  EXPECT_EQ(cx_executor_block_on(nullptr, &kScriptVt, &sp_state, nullptr, 0),
            CX_EINVAL);
  EXPECT_EQ(cx_executor_block_on(ex, nullptr, &sp_state, nullptr, 0),
            CX_EINVAL);
  EXPECT_EQ(cx_executor_block_on(ex, &kScriptVt, nullptr, nullptr, 0),
            CX_EINVAL);
  EXPECT_EQ(cx_executor_block_on(ex, &kScriptVt, &sp_state, &v, 2), CX_EINVAL);
  EXPECT_EQ(cx_block_on(nullptr, &sp_state, nullptr, 0), CX_EINVAL);
  EXPECT_EQ(cx_block_on(&bad, &sp_state, nullptr, 0), CX_EINVAL);
  EXPECT_EQ(cx_block_on(&kScriptVt, &sp_state, &v, 1), CX_EINVAL);
  EXPECT_EQ(s.polls, 1);  // none of the refused calls ran the future

  // Spawners.
  cx_spawner *sp = reinterpret_cast<cx_spawner *>(&s);
  EXPECT_EQ(cx_executor_spawner(nullptr, &sp), CX_EINVAL);
  EXPECT_EQ(sp, nullptr);
  EXPECT_EQ(cx_executor_spawner(ex, nullptr), CX_EINVAL);
  ASSERT_EQ(cx_executor_spawner(ex, &sp), CX_OK);
  cx_spawner *sp2 = reinterpret_cast<cx_spawner *>(&s);
  EXPECT_EQ(cx_spawner_clone(nullptr, &sp2), CX_EINVAL);
  EXPECT_EQ(sp2, nullptr);
  EXPECT_EQ(cx_spawner_clone(sp, nullptr), CX_EINVAL);
  h = reinterpret_cast<cx_join_handle *>(&s);
  EXPECT_EQ(cx_spawner_spawn(nullptr, &kScriptVt, &sp_state, &h), CX_EINVAL);
  EXPECT_EQ(h, nullptr);
  EXPECT_EQ(cx_spawner_spawn(sp, nullptr, &sp_state, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_spawner_spawn(sp, &bad, &sp_state, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_spawner_spawn(sp, &kScriptVt, nullptr, nullptr), CX_EINVAL);
  cx_spawner_drop(nullptr);
  cx_spawner_drop(sp);
  EXPECT_EQ(cx_executor_debug_ready_len(ex), 0u);

  // Stats and debug.
  cx_executor_stats st;
  EXPECT_EQ(cx_executor_get_stats(nullptr, &st), CX_EINVAL);
  EXPECT_EQ(cx_executor_get_stats(ex, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_executor_debug_ready_len(nullptr), 0u);
  const char *why = nullptr;
  EXPECT_EQ(cx_executor_debug_check(nullptr, &why), CX_EINVAL);
  EXPECT_NE(why, nullptr);
  EXPECT_EQ(cx_executor_debug_check(nullptr, nullptr), CX_EINVAL);
  cx_task_debug_info info;
  EXPECT_EQ(cx_join_handle_debug_info(nullptr, &info), CX_EINVAL);
  const cx_join_handle *dh = nullptr;
  EXPECT_EQ(cx_waker_debug_handle(nullptr, &dh), CX_EINVAL);
  cx_waker noop = cx_waker_noop();
  EXPECT_EQ(cx_waker_debug_handle(&noop, &dh), CX_EINVAL);
  EXPECT_EQ(cx_waker_debug_handle(&noop, nullptr), CX_EINVAL);

  // Join handles.
  ASSERT_EQ(Spawn(ex, &s, &h), CX_OK);
  EXPECT_EQ(cx_join_handle_debug_info(h, nullptr), CX_EINVAL);
  cx_waker w = cx_waker_noop();
  cx_context cx = cx_context_from_waker(&w);
  int result = 1;
  EXPECT_EQ(cx_join_handle_poll(nullptr, &cx, &result, nullptr, 0), CX_READY);
  EXPECT_EQ(result, CX_EINVAL);
  result = 1;
  EXPECT_EQ(cx_join_handle_poll(h, nullptr, &result, nullptr, 0), CX_READY);
  EXPECT_EQ(result, CX_EINVAL);
  result = 1;
  cx_context no_waker = cx_context_from_waker(nullptr);
  EXPECT_EQ(cx_join_handle_poll(h, &no_waker, &result, nullptr, 0), CX_READY);
  EXPECT_EQ(result, CX_EINVAL);
  EXPECT_EQ(cx_join_handle_poll(h, &cx, nullptr, nullptr, 0), CX_READY);
  result = 1;
  EXPECT_EQ(cx_join_handle_poll(h, &cx, &result, &v, 3), CX_READY);
  EXPECT_EQ(result, CX_EINVAL);
  EXPECT_EQ(cx_join_handle_poll(h, &cx, &result, &v, sizeof v), CX_PENDING);
  EXPECT_EQ(cx_join_handle_try_join(nullptr, nullptr, 0), CX_EINVAL);
  EXPECT_EQ(cx_join_handle_try_join(h, &v, 1), CX_EINVAL);
  EXPECT_EQ(cx_join_handle_wait(nullptr, nullptr, 0), CX_EINVAL);
  EXPECT_EQ(cx_join_handle_wait(h, &v, 1), CX_EINVAL);
  EXPECT_EQ(cx_join_handle_cancel(nullptr), CX_EINVAL);
  EXPECT_FALSE(cx_join_handle_is_finished(nullptr));
  EXPECT_EQ(cx_join_handle_poll_count(nullptr), 0u);
  cx_join_handle_detach(nullptr);
  EXPECT_EQ(s.polls, 1);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(cx_join_handle_poll(h, &cx, &result, &v, sizeof v), CX_READY);
  EXPECT_EQ(result, CX_OK);
  cx_join_handle_detach(h);

  EXPECT_EQ(cx_executor_current(), nullptr);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(cx_executor_destroy(ex2), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

// ---- allocation failure ----------------------------------------------------

// The scenario: create, spawn 3 tasks with handles, a spawner and a spawn
// through it, run, join. With the k-th allocation failing, the call that
// made it reports CX_ENOMEM, everything else still works, and nothing leaks.
// Returns the number of failures seen (0: the scenario ran clean).
int AllocationScenario(ScopedCountingAllocator &alloc, size_t fail_at) {
  alloc.FailAt(fail_at);
  int enomem = 0;
  std::vector<Script> scripts(4);
  for (int i = 0; i < 4; i++) scripts[i].fn = ReadyAfter(i + 1, 10 * i);
  cx_executor *ex = reinterpret_cast<cx_executor *>(&alloc);
  int rc = cx_executor_create(nullptr, &ex);
  if (rc == CX_ENOMEM) {
    EXPECT_EQ(ex, nullptr);
    return 1;
  }
  EXPECT_EQ(rc, CX_OK);
  cx_join_handle *hs[4] = {};
  for (int i = 0; i < 3; i++) {
    rc = Spawn(ex, &scripts[i], &hs[i]);
    if (rc == CX_ENOMEM) {
      enomem++;
      EXPECT_EQ(hs[i], nullptr);
    } else {
      EXPECT_EQ(rc, CX_OK);
    }
  }
  cx_spawner *sp = nullptr;
  EXPECT_EQ(cx_executor_spawner(ex, &sp), CX_OK);
  rc = SpawnVia(sp, &scripts[3], &hs[3]);
  if (rc == CX_ENOMEM) {
    enomem++;
    EXPECT_EQ(hs[3], nullptr);
  } else {
    EXPECT_EQ(rc, CX_OK);
  }
  cx_spawner_drop(sp);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  for (int i = 0; i < 4; i++) {
    if (hs[i] == nullptr) {
      // Refused: the state was not taken (never polled, never dropped).
      EXPECT_EQ(scripts[i].polls, 0);
      EXPECT_EQ(scripts[i].drops, 0);
      continue;
    }
    int v = -1;
    EXPECT_EQ(cx_executor_join(ex, hs[i], &v, sizeof v), CX_OK);
    EXPECT_EQ(v, 10 * i);
    EXPECT_EQ(scripts[i].polls, i + 1);
    EXPECT_EQ(scripts[i].drops, 1);
    cx_join_handle_detach(hs[i]);
  }
  cx_executor_stats st = Stats(ex);
  EXPECT_EQ(st.spawned, uint64_t(4 - enomem));
  EXPECT_EQ(st.completed, uint64_t(4 - enomem));
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  return enomem;
}

TEST(AllocFailure, EveryAllocationFailureIsReportedAndLeaksNothing) {
  size_t k = 1;
  for (;; k++) {
    ASSERT_LT(k, 100u) << "the scenario never ran clean";
    ScopedCountingAllocator alloc;
    int failures = AllocationScenario(alloc, k);
    EXPECT_EQ(alloc.live(), 0u) << "k=" << k;
    EXPECT_EQ(alloc.bad_frees(), 0u) << "k=" << k;
    EXPECT_EQ(size_t(failures), alloc.failures()) << "k=" << k;
    if (alloc.failures() == 0) break;
  }
  // executor + 3 tasks + the spawner's task: every one was made to fail.
  EXPECT_EQ(k, 6u);
}

TEST(AllocFailure, BlockOnAndJoinWait) {
  Script s(ReadyAfter(2, 8));
  Script *sp = &s;
  int out = 0;
  {
    ScopedCountingAllocator alloc;
    alloc.FailAt(1);  // the executor
    EXPECT_EQ(cx_block_on(&kScriptVt, &sp, &out, sizeof out), CX_ENOMEM);
    alloc.FailAt(2);  // the task
    EXPECT_EQ(cx_block_on(&kScriptVt, &sp, &out, sizeof out), CX_ENOMEM);
    EXPECT_EQ(s.polls, 0);
    EXPECT_EQ(alloc.live(), 0u);
    alloc.FailNever();
    EXPECT_EQ(cx_block_on(&kScriptVt, &sp, &out, sizeof out), CX_OK);
    EXPECT_EQ(out, 8);
    EXPECT_EQ(alloc.live(), 0u);
  }
  {
    // cx_join_handle_wait allocates its parker only if it must block.
    ScopedCountingAllocator alloc;
    cx_executor *ex = NewExecutor();
    Script p(PendHoldingWaker);
    cx_join_handle *h = nullptr;
    ASSERT_EQ(Spawn(ex, &p, &h), CX_OK);
    alloc.FailAt(1);
    EXPECT_EQ(cx_join_handle_wait(h, nullptr, 0), CX_ENOMEM);
    EXPECT_EQ(cx_join_handle_cancel(h), CX_OK);
    EXPECT_EQ(cx_executor_run(ex), CX_OK);
    alloc.FailAfter(0);
    EXPECT_EQ(cx_join_handle_wait(h, nullptr, 0), CX_ECANCELED);
    cx_join_handle_detach(h);
    EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
    EXPECT_EQ(alloc.live(), 0u);
  }
}

// ---- timers ----------------------------------------------------------------

// Sleeps, then logs its id and when it woke.
struct SleeperState {
  cx_sleep sleep;
  int id;
  std::vector<int> *order;
  std::vector<uint64_t> *woke_at;
};
cx_poll SleeperPoll(void *self, cx_context *cx, void *out) {
  SleeperState *s = static_cast<SleeperState *>(self);
  int rc = 1;
  if (cx_sleep_poll(&s->sleep, cx, &rc) == CX_PENDING) return CX_PENDING;
  s->order->push_back(s->id);
  s->woke_at->push_back(cx_timers_now(cx->timers));
  *static_cast<int *>(out) = rc;
  return CX_READY;
}
void SleeperDrop(void *self) {
  cx_sleep_drop(&static_cast<SleeperState *>(self)->sleep);
}
const cx_future_vtable kSleeperVt = {.poll = SleeperPoll,
                                     .drop = SleeperDrop,
                                     .state_size = sizeof(SleeperState),
                                     .state_align = alignof(SleeperState),
                                     .output_size = sizeof(int)};

TEST(Timer, SleepsCompleteInDeadlineOrderAndRunParks) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  std::vector<int> order;
  std::vector<uint64_t> woke_at;
  const int ms[] = {30, 10, 20};
  cx_join_handle *hs[3];
  uint64_t start = cx_clock_now();
  for (int i = 0; i < 3; i++) {
    SleeperState st;
    cx_sleep_init_for(&st.sleep, uint64_t(ms[i]) * CX_NSEC_PER_MSEC);
    st.id = ms[i];
    st.order = &order;
    st.woke_at = &woke_at;
    ASSERT_EQ(cx_spawn(ex, &kSleeperVt, &st, &hs[i]), CX_OK);
  }
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  uint64_t end = cx_clock_now();
  EXPECT_EQ(order, (std::vector<int>{10, 20, 30}));
  ASSERT_EQ(woke_at.size(), 3u);
  for (int i = 0; i < 3; i++) {
    // Never early (the sleep starts at the first poll, after `start`).
    EXPECT_GE(woke_at[i] - start, uint64_t(order[i]) * CX_NSEC_PER_MSEC);
    int rc = 1;
    EXPECT_EQ(cx_join_handle_try_join(hs[i], &rc, sizeof rc), CX_OK);
    EXPECT_EQ(rc, CX_OK);
    EXPECT_EQ(cx_join_handle_poll_count(hs[i]), 2u);  // register, fire
    cx_join_handle_detach(hs[i]);
  }
  EXPECT_GE(end - start, 30 * CX_NSEC_PER_MSEC);
  cx_executor_stats st = Stats(ex);
  // Parked once per distinct deadline at most, never busy-polling.
  EXPECT_GE(st.parks, 1u);
  EXPECT_LE(st.parks, 3u);
  EXPECT_EQ(st.polls, 6u);
  EXPECT_EQ(st.timers, 0u);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(Timer, ManualClockFiresExactlyAtTheDeadline) {
  ManualClock clock(1000 * CX_NSEC_PER_SEC);
  cx_executor_options opts = {clock.fn(), clock.ctx()};
  cx_executor *ex = NewExecutor(&opts);
  std::vector<int> order;
  std::vector<uint64_t> woke_at;
  const int ms[] = {30, 10, 20, 10};
  for (int i = 0; i < 4; i++) {
    SleeperState st;
    cx_sleep_init_for(&st.sleep, uint64_t(ms[i]) * CX_NSEC_PER_MSEC);
    st.id = i;
    st.order = &order;
    st.woke_at = &woke_at;
    ASSERT_EQ(cx_spawn(ex, &kSleeperVt, &st, nullptr), CX_OK);
  }
  EXPECT_EQ(cx_executor_run_until_idle(ex), 4);
  EXPECT_EQ(Stats(ex).timers, 4u);
  clock.Advance(10 * CX_NSEC_PER_MSEC - 1);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 0);  // never early
  EXPECT_TRUE(order.empty());
  clock.Advance(1);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 2);  // equal deadlines: FIFO
  EXPECT_EQ(order, (std::vector<int>{1, 3}));
  EXPECT_EQ(Stats(ex).timers, 2u);
  clock.Advance(25 * CX_NSEC_PER_MSEC);  // past both remaining deadlines
  EXPECT_EQ(cx_executor_step(ex), 1);
  EXPECT_EQ(cx_executor_step(ex), 1);
  EXPECT_EQ(order, (std::vector<int>{1, 3, 2, 0}));
  EXPECT_EQ(cx_executor_step(ex), 0);
  EXPECT_EQ(Stats(ex).timers, 0u);
  EXPECT_EQ(Stats(ex).live, 0u);
  EXPECT_EQ(Stats(ex).parks, 0u);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

TEST(Timer, CancelledSleepLeavesNoTimer) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = NewExecutor();
  cx_sleep sleep;
  cx_sleep_init_for(&sleep, 3600 * CX_NSEC_PER_SEC);
  cx_join_handle *h = nullptr;
  ASSERT_EQ(cx_spawn(ex, &cx_sleep_vtable, &sleep, &h), CX_OK);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 1);
  EXPECT_EQ(Stats(ex).timers, 1u);
  EXPECT_EQ(cx_join_handle_cancel(h), CX_OK);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);  // would park for an hour if not
  EXPECT_EQ(Stats(ex).timers, 0u);
  int rc = 0;
  EXPECT_EQ(cx_join_handle_try_join(h, &rc, sizeof rc), CX_ECANCELED);
  cx_join_handle_detach(h);
  // A sleep inside a future that gives up on it (a timeout that lost).
  cx_sleep inner;
  cx_sleep_init_for(&inner, 3600 * CX_NSEC_PER_SEC);
  Script racer([&inner](Script &s, cx_context *cx, int *out) {
    int r = 1;
    if (s.polls == 1) {
      EXPECT_EQ(cx_sleep_poll(&inner, cx, &r), CX_PENDING);
      EXPECT_EQ(cx_timers_count(cx->timers), 1u);
      cx_waker_wake_by_ref(cx->waker);
      return CX_PENDING;
    }
    cx_sleep_drop(&inner);  // the other branch won
    EXPECT_EQ(cx_timers_count(cx->timers), 0u);
    *out = 0;
    return CX_READY;
  });
  ASSERT_EQ(Spawn(ex, &racer), CX_OK);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(racer.polls, 2);
  EXPECT_EQ(Stats(ex).timers, 0u);
  EXPECT_EQ(Stats(ex).parks, 0u);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- issue 8: a wake happens-before the poll it causes ----------------------

// Written by a waking thread with no synchronisation of its own: only the
// wake may publish it to the poll that the wake causes.
int g_wake_payload = 0;

// The task is already SCHEDULED (woken by the owner) when a second thread
// writes g_wake_payload and wakes it again. The owner learns that the thread
// is done through a relaxed flag only, so the one thing that orders the
// write before the next poll's read is the second wake itself. Before the
// fix, that wake was a plain load and ThreadSanitizer reported the race
// (this test runs under --config=tsan in CI).
void WakeOfScheduledTaskPublishes(bool by_value) {
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  g_wake_payload = 0;
  Script s([](Script &self, cx_context *cx, int *out) {
    if (self.polls == 1) {
      EXPECT_EQ(cx_waker_clone(cx->waker, &self.held), CX_OK);
      return CX_PENDING;
    }
    *out = g_wake_payload;
    return CX_READY;
  });
  cx_join_handle *h;
  ASSERT_EQ(Spawn(ex, &s, &h), CX_OK);
  ASSERT_EQ(cx_executor_run_until_idle(ex), 1);
  cx_waker_wake_by_ref(&s.held);  // now SCHEDULED, on the remote queue
  cx_waker mine;
  ASSERT_EQ(cx_waker_clone(&s.held, &mine), CX_OK);
  std::atomic<bool> done{false};
  std::thread other([&] {
    g_wake_payload = 42;
    if (by_value)
      cx_waker_wake(&mine);
    else
      cx_waker_wake_by_ref(&mine);
    done.store(true, std::memory_order_relaxed);
  });
  while (!done.load(std::memory_order_relaxed)) std::this_thread::yield();
  int out = 0;
  ASSERT_EQ(cx_executor_join(ex, h, &out, sizeof out), CX_OK);
  EXPECT_EQ(out, 42);
  other.join();
  cx_waker_drop(&mine);  // no-op after wake (by value)
  cx_join_handle_detach(h);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

// The same with the task carried (it woke itself by reference in its first
// poll, so it is queued still RUNNING and its pop normally writes nothing):
// the other thread's wake finds it RUNNING and sets SCHEDULED; the pop's CAS
// that clears it is the acquire that orders the payload before the poll.
TEST(ExecutorWakeOrder, WakeOfCarriedTaskPublishesWrites) {
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  g_wake_payload = 0;
  Script s([](Script &self, cx_context *cx, int *out) {
    if (self.polls == 1) {
      EXPECT_EQ(cx_waker_clone(cx->waker, &self.held), CX_OK);
      cx_waker_wake_by_ref(cx->waker);
      return CX_PENDING;
    }
    *out = g_wake_payload;
    return CX_READY;
  });
  cx_join_handle *h;
  ASSERT_EQ(Spawn(ex, &s, &h), CX_OK);
  ASSERT_EQ(cx_executor_step(ex), 1);
  ASSERT_TRUE(Info(h).running);  // carried
  std::atomic<bool> done{false};
  std::thread other([&] {
    g_wake_payload = 42;
    cx_waker_wake_by_ref(&s.held);
    done.store(true, std::memory_order_relaxed);
  });
  while (!done.load(std::memory_order_relaxed)) std::this_thread::yield();
  int out = 0;
  ASSERT_EQ(cx_executor_join(ex, h, &out, sizeof out), CX_OK);
  EXPECT_EQ(out, 42);
  other.join();
  cx_join_handle_detach(h);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
}

TEST(ExecutorWakeOrder, WakeByRefOfScheduledTaskPublishesWrites) {
  WakeOfScheduledTaskPublishes(false);
}

TEST(ExecutorWakeOrder, WakeByValueOfScheduledTaskPublishesWrites) {
  WakeOfScheduledTaskPublishes(true);
}

// ---- issue 8: findings on the executor's surface ----------------------------

// A future with no drop function that leaves a sleep registered (the
// README's coroutine did, before it gained a drop function). Cancelling it
// cannot unregister the timer, so the entry keeps a waker of its task;
// destroy must release it, or the task and the executor leak.
struct DroplessSleeper {
  cx_sleep nap;
};
cx_poll DroplessSleeperPoll(void *self, cx_context *cx, void *out) {
  auto *s = static_cast<DroplessSleeper *>(self);
  int rc;
  if (cx_sleep_poll(&s->nap, cx, &rc) == CX_PENDING) return CX_PENDING;
  *static_cast<int *>(out) = rc;
  return CX_READY;
}
const cx_future_vtable kDroplessSleeperVt = {
    .poll = DroplessSleeperPoll,
    .state_size = sizeof(DroplessSleeper),
    .state_align = alignof(DroplessSleeper),
    .output_size = sizeof(int)};

TEST(DestroyFindings, FutureWithoutDropLeavingATimerDoesNotLeak) {
  ScopedCountingAllocator alloc;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  DroplessSleeper a, b;
  cx_sleep_init_for(&a.nap, 3600 * CX_NSEC_PER_SEC);
  cx_sleep_init_for(&b.nap, 3600 * CX_NSEC_PER_SEC);
  cx_join_handle *h;
  ASSERT_EQ(cx_spawn(ex, &kDroplessSleeperVt, &a, &h), CX_OK);
  ASSERT_EQ(cx_spawn(ex, &kDroplessSleeperVt, &b, nullptr), CX_OK);
  ASSERT_EQ(cx_executor_run_until_idle(ex), 2);
  EXPECT_EQ(Stats(ex).timers, 2u);
  EXPECT_EQ(cx_join_handle_cancel(h), CX_OK);  // one cancelled, one left
  ASSERT_EQ(cx_executor_run_until_idle(ex), 1);
  int out = 0;
  EXPECT_EQ(cx_join_handle_try_join(h, &out, sizeof out), CX_ECANCELED);
  cx_join_handle_detach(h);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

// An output aligned beyond max_align_t (vtable.output_align) is written to
// an address of that alignment, and copied out intact.
struct alignas(64) Wide {
  unsigned char bytes[64];
};
cx_poll WidePoll(void *self, cx_context *cx, void *out) {
  (void)self;
  (void)cx;
  EXPECT_EQ(reinterpret_cast<uintptr_t>(out) % 64, 0u);
  Wide w;
  for (int i = 0; i < 64; i++) w.bytes[i] = static_cast<unsigned char>(i);
  std::memcpy(out, &w, sizeof w);
  return CX_READY;
}
TEST(VtableFindings, OutputAlignedBeyondMaxAlignIsHonoured) {
  ScopedCountingAllocator alloc;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  for (size_t state_size : {size_t{0}, size_t{1}, size_t{24}}) {
    const cx_future_vtable vt = {.poll = WidePoll,
                                 .state_size = state_size,
                                 .state_align = 1,
                                 .output_size = sizeof(Wide),
                                 .output_align = alignof(Wide)};
    unsigned char state[24] = {0};
    cx_join_handle *h;
    ASSERT_EQ(cx_spawn(ex, &vt, state, &h), CX_OK);
    ASSERT_EQ(cx_executor_run_until_idle(ex), 1);
    Wide got;
    ASSERT_EQ(cx_join_handle_try_join(h, &got, sizeof got), CX_OK);
    for (int i = 0; i < 64; i++) EXPECT_EQ(got.bytes[i], i);
    cx_join_handle_detach(h);
  }
  // Bad output alignments are refused, as bad state alignments are.
  for (size_t bad : {size_t{3}, size_t{128}}) {
    const cx_future_vtable vt = {
        .poll = WidePoll, .output_size = sizeof(Wide), .output_align = bad};
    EXPECT_EQ(cx_future_vtable_check(&vt), CX_EINVAL);
    EXPECT_EQ(cx_spawn(ex, &vt, nullptr, nullptr), CX_EINVAL);
  }
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

}  // namespace
