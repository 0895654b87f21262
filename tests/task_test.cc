// The task state machine (executor/task.c), driven through the internal API
// with a fake scheduler: no executor is involved, so each transition of the
// table at the top of task.c is checked on its own, with exact reference
// counts, flags, schedule calls, drops and frees.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "executor/internal/task.h"
#include "tests/testutil.h"
#include "waker/error.h"
#include "waker/internal/current.h"
#include "waker/waker.h"

namespace {

using cxtest::CountingWaker;

// The task header must stay small: it is one per spawned future, and the
// executor touches it on every poll. Measured: 56 bytes on x86-64 (8 for
// the state word, 5 pointers, two 32-bit fields); the join-waker slot lives
// after the output, only in tasks spawned with a handle (W6's 64-byte
// budget per task includes malloc's own overhead).
static_assert(sizeof(cx__task) <= 56, "cx__task header grew past 56 bytes");

TEST(TaskLayout, HeaderSize) {
  EXPECT_EQ(sizeof(cx__task), 56u) << "update the comment above";
}

// Records what the task asks of its scheduler. Thread-safe: tasks may be
// scheduled from any thread.
struct FakeScheduler : cx__scheduler {
  FakeScheduler() {
    schedule = &FakeScheduler::Schedule;
    task_freed = &FakeScheduler::TaskFreed;
    task_extra = 0;
  }

  static void Schedule(cx__scheduler *s, cx__task *t) {
    auto *self = static_cast<FakeScheduler *>(s);
    std::lock_guard<std::mutex> lock(self->mu);
    // A task is never queued twice: its SCHEDULED bit guards the queue.
    for (cx__task *q : self->queue)
      if (q == t) self->double_queued++;
    self->queue.push_back(t);
    self->schedules++;
  }
  static void TaskFreed(cx__scheduler *s) {
    static_cast<FakeScheduler *>(s)->freed++;
  }

  // The task the executor would poll next, or nullptr.
  cx__task *Pop() {
    std::lock_guard<std::mutex> lock(mu);
    if (queue.empty()) return nullptr;
    cx__task *t = queue.front();
    queue.pop_front();
    return t;
  }
  // The poller's re-queue (CX__IDLE_NOTIFIED): not a schedule() call.
  void Requeue(cx__task *t) {
    std::lock_guard<std::mutex> lock(mu);
    queue.push_back(t);
  }
  size_t QueueLen() {
    std::lock_guard<std::mutex> lock(mu);
    return queue.size();
  }

  std::mutex mu;
  std::deque<cx__task *> queue;
  std::atomic<int> schedules{0};
  std::atomic<int> freed{0};
  std::atomic<int> double_queued{0};
};

// The future under test: an int output, a probe counting drops.
struct Probe {
  std::atomic<int> drops{0};
  std::atomic<int> polls{0};
};
struct TestFuture {
  Probe *probe;
  int value;   // the output when ready
  bool ready;  // what the next poll returns
};

// drop_output gets only the output, so its count is global (reset per test).
std::atomic<int> g_output_drops{0};
std::atomic<int> g_last_dropped_output{0};

cx_poll TestPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<TestFuture *>(self);
  f->probe->polls++;
  EXPECT_NE(cx->waker, nullptr);
  if (!f->ready) return CX_PENDING;
  *static_cast<int *>(out) = f->value;
  return CX_READY;
}
void TestDrop(void *self) {
  static_cast<TestFuture *>(self)->probe->drops++;
}
void TestDropOutput(void *out) {
  g_output_drops++;
  g_last_dropped_output = *static_cast<int *>(out);
}

const cx_future_vtable kTestVtable = {.poll = TestPoll,
                                      .drop = TestDrop,
                                      .drop_output = TestDropOutput,
                                      .state_size = sizeof(TestFuture),
                                      .state_align = alignof(TestFuture),
                                      .output_size = sizeof(int)};

class TaskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_output_drops = 0;
    g_last_dropped_output = 0;
  }
  void TearDown() override {
    // Every test frees what it made, through the allocator cexec uses.
    EXPECT_EQ(alloc.live(), 0u);
    EXPECT_EQ(alloc.bad_frees(), 0u);
    EXPECT_EQ(sched.double_queued, 0);
  }

  // A new task, queued as cx_spawn would do (create hands over the queue's
  // reference; the caller must queue it).
  cx__task *Spawn(bool with_handle, int value = 42) {
    TestFuture f = {&probe, value, false};
    cx__task *t = cx__task_create(&kTestVtable, &f, &sched, with_handle, false);
    if (t != nullptr) sched.Requeue(t);
    return t;
  }
  TestFuture *State(cx__task *t) {
    return static_cast<TestFuture *>(cx__task_state(t));
  }

  // Pops t (it must be the next queued task) and makes it RUNNING.
  cx__run_result PopAndRun(cx__task *t) {
    cx__task *popped = sched.Pop();
    EXPECT_EQ(popped, t);
    return cx__task_transition_to_running(t);
  }

  // Calls the future's poll as the executor does (t RUNNING); on READY
  // finishes the task with its output, on PENDING goes idle and re-queues
  // on CX__IDLE_NOTIFIED. Returns the poll's result.
  cx_poll Poll(cx__task *t) {
    cx_waker w = cx__task_waker_ref(t);
    cx_context cx = cx_context_from_waker(&w);
    if (kTestVtable.poll(cx__task_state(t), &cx, cx__task_output(t)) ==
        CX_READY) {
      cx__task_complete(t, true);
      return CX_READY;
    }
    cx__idle_result act = cx__task_transition_to_idle(t);
    if (act == CX__IDLE_NOTIFIED) sched.Requeue(t);
    if (act == CX__IDLE_CANCELLED) cx__task_complete(t, false);
    return CX_PENDING;
  }

  // One executor pass over t: pop, run, poll. Leaves t idle (or requeued).
  void PollOnceIdle(cx__task *t) {
    ASSERT_EQ(PopAndRun(t), CX__RUN_POLL);
    ASSERT_EQ(Poll(t), CX_PENDING);
  }

  // Completes a queued task with its output, as a successful poll would.
  void Complete(cx__task *t) {
    ASSERT_EQ(PopAndRun(t), CX__RUN_POLL);
    State(t)->ready = true;
    ASSERT_EQ(Poll(t), CX_READY);
  }

  // Ends a task through cancellation (works from idle or queued).
  void CancelAndFinish(cx__task *t) {
    ASSERT_EQ(cx__task_cancel(t), CX_OK);
    ASSERT_EQ(PopAndRun(t), CX__RUN_CANCEL);
    cx__task_complete(t, false);
  }

  static cx_poll Join(cx__task *t, const cx_waker *w, int *result, int *out) {
    return cx__task_join_poll(t, w, result, out, out ? sizeof *out : 0);
  }

  cxtest::ScopedCountingAllocator alloc;  // first: outlives the tasks
  FakeScheduler sched;
  Probe probe;
};

// ---- create / discard -------------------------------------------------------

TEST_F(TaskTest, CreateWithoutHandle) {
  cx__task *t = Spawn(false, 7);
  ASSERT_NE(t, nullptr);
  // Owner + queue; SCHEDULED because the creator must queue it.
  EXPECT_EQ(cx__task_refs(t), 2u);
  EXPECT_EQ(cx__task_flags(t), CX__SCHEDULED);
  EXPECT_EQ(t->vtable, &kTestVtable);
  EXPECT_EQ(t->sched, &sched);
  EXPECT_EQ(State(t)->value, 7);
  EXPECT_EQ(State(t)->probe, &probe);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(cx__task_output(t)) %
                alignof(std::max_align_t),
            0u);
  EXPECT_GE(static_cast<char *>(cx__task_output(t)),
            static_cast<char *>(cx__task_state(t)) + sizeof(TestFuture));
  EXPECT_EQ(alloc.live(), 1u);    // one allocation per task
  EXPECT_EQ(sched.schedules, 0);  // create does not call schedule
  CancelAndFinish(t);
  EXPECT_EQ(sched.freed, 1);
  EXPECT_EQ(probe.drops, 1);
}

TEST_F(TaskTest, CreateWithHandle) {
  cx__task *t = Spawn(true);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(cx__task_refs(t), 3u);
  EXPECT_EQ(cx__task_flags(t), CX__SCHEDULED | CX__JOIN_INTEREST);
  ASSERT_NE(cx__task_join_slot(t), nullptr);
  EXPECT_TRUE(cx_waker_is_empty(cx__task_join_slot(t)));
  EXPECT_EQ(cx_join_handle_poll_count(cx__task_to_handle(t)), 0u);
  CancelAndFinish(t);
  EXPECT_EQ(sched.freed, 0);  // the handle still holds it
  cx__task_join_drop(t);
  EXPECT_EQ(sched.freed, 1);
}

TEST_F(TaskTest, OverAlignedStateIsPlacedAtItsAlignment) {
  struct alignas(64) Big {
    char bytes[100];
  };
  static const cx_future_vtable vt = {.poll = TestPoll,
                                      .state_size = sizeof(Big),
                                      .state_align = alignof(Big),
                                      .output_size = sizeof(int)};
  Big b;
  for (size_t i = 0; i < sizeof b.bytes; i++) b.bytes[i] = static_cast<char>(i);
  cx__task *t = cx__task_create(&vt, &b, &sched, false, false);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(cx__task_state(t)) % 64, 0u);
  EXPECT_EQ(std::memcmp(cx__task_state(t), &b, sizeof b), 0);
  EXPECT_GE(static_cast<char *>(cx__task_output(t)),
            static_cast<char *>(cx__task_state(t)) + sizeof(Big));
  cx__task_discard(t);
}

TEST_F(TaskTest, CreateFailsCleanlyWithoutMemory) {
  alloc.FailAt(1);
  TestFuture f = {&probe, 0, false};
  EXPECT_EQ(cx__task_create(&kTestVtable, &f, &sched, true, false), nullptr);
  EXPECT_EQ(alloc.failures(), 1u);
  EXPECT_EQ(probe.drops, 0);  // the caller still owns the state
}

TEST_F(TaskTest, DiscardFreesWithoutDropOrSchedulerCallback) {
  TestFuture f = {&probe, 0, false};
  cx__task *t = cx__task_create(&kTestVtable, &f, &sched, true, false);
  ASSERT_NE(t, nullptr);
  cx__task_discard(t);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(probe.drops, 0);  // spawn refused: the caller keeps the state
  EXPECT_EQ(sched.freed, 0);  // never handed to the scheduler
}

// ---- wake_by_ref
// ---------------------------------------------------------------

TEST_F(TaskTest, WakeByRefIdleQueuesWithANewReference) {
  cx__task *t = Spawn(false);
  PollOnceIdle(t);
  EXPECT_EQ(cx__task_refs(t), 1u);  // the owner's only
  EXPECT_EQ(cx__task_flags(t), 0u);
  cx__task_wake_by_ref(t);
  EXPECT_EQ(cx__task_flags(t), CX__SCHEDULED);
  EXPECT_EQ(cx__task_refs(t), 2u);  // + the queue's
  EXPECT_EQ(sched.schedules, 1);
  EXPECT_EQ(sched.QueueLen(), 1u);
  CancelAndFinish(t);
  EXPECT_EQ(sched.freed, 1);
}

TEST_F(TaskTest, WakeByRefScheduledDoesNothing) {
  cx__task *t = Spawn(false);
  cx__task_wake_by_ref(t);  // already SCHEDULED by create
  cx__task_wake_by_ref(t);
  EXPECT_EQ(cx__task_refs(t), 2u);
  EXPECT_EQ(sched.schedules, 0);
  EXPECT_EQ(sched.QueueLen(), 1u);
  // Also when scheduled by an earlier wake.
  PollOnceIdle(t);
  cx__task_wake_by_ref(t);
  cx__task_wake_by_ref(t);
  EXPECT_EQ(sched.schedules, 1);
  EXPECT_EQ(cx__task_refs(t), 2u);
  CancelAndFinish(t);
}

TEST_F(TaskTest, WakeByRefWhileRunningIsKeptForThePoller) {
  cx__task *t = Spawn(false);
  ASSERT_EQ(PopAndRun(t), CX__RUN_POLL);
  EXPECT_EQ(cx__task_flags(t), CX__RUNNING);
  EXPECT_EQ(cx__task_refs(t), 2u);  // owner + running
  cx__task_wake_by_ref(t);
  // Only the flag: no reference, no schedule call while RUNNING.
  EXPECT_EQ(cx__task_flags(t), CX__RUNNING | CX__SCHEDULED);
  EXPECT_EQ(cx__task_refs(t), 2u);
  EXPECT_EQ(sched.schedules, 0);
  // The poller sees the wake: the running reference becomes the queue's.
  EXPECT_EQ(cx__task_transition_to_idle(t), CX__IDLE_NOTIFIED);
  EXPECT_EQ(cx__task_flags(t), CX__SCHEDULED);
  EXPECT_EQ(cx__task_refs(t), 2u);
  sched.Requeue(t);
  // And the next pop polls it again.
  PollOnceIdle(t);
  EXPECT_EQ(cx__task_refs(t), 1u);
  cx__task_wake_by_ref(t);
  CancelAndFinish(t);
  EXPECT_EQ(sched.freed, 1);
}

TEST_F(TaskTest, WakeByRefCompleteDoesNothing) {
  cx__task *t = Spawn(true);
  cx_waker w;
  cx_waker tw = cx__task_waker_ref(t);
  ASSERT_EQ(cx_waker_clone(&tw, &w), CX_OK);  // keeps t alive after finish
  Complete(t);
  EXPECT_EQ(cx__task_refs(t), 2u);  // handle + waker
  cx_waker_wake_by_ref(&w);
  EXPECT_EQ(cx__task_refs(t), 2u);
  EXPECT_EQ(sched.schedules, 0);
  EXPECT_EQ(sched.QueueLen(), 0u);
  cx_waker_drop(&w);
  cx__task_join_drop(t);
  EXPECT_EQ(sched.freed, 1);
}

// ---- wake_by_val
// -------------------------------------------------------------

TEST_F(TaskTest, WakeByValIdleTransfersTheReference) {
  cx__task *t = Spawn(false);
  PollOnceIdle(t);
  cx_waker tw = cx__task_waker_ref(t), w;
  ASSERT_EQ(cx_waker_clone(&tw, &w), CX_OK);
  EXPECT_EQ(cx__task_refs(t), 2u);  // owner + waker
  cx_waker_wake(&w);
  EXPECT_TRUE(cx_waker_is_empty(&w));
  // The waker's reference became the queue's: the count did not move.
  EXPECT_EQ(cx__task_refs(t), 2u);
  EXPECT_EQ(cx__task_flags(t), CX__SCHEDULED);
  EXPECT_EQ(sched.schedules, 1);
  CancelAndFinish(t);
  EXPECT_EQ(sched.freed, 1);
}

TEST_F(TaskTest, WakeByValScheduledDropsTheReference) {
  cx__task *t = Spawn(false);
  cx_waker tw = cx__task_waker_ref(t), w;
  ASSERT_EQ(cx_waker_clone(&tw, &w), CX_OK);
  EXPECT_EQ(cx__task_refs(t), 3u);
  cx_waker_wake(&w);
  EXPECT_EQ(cx__task_refs(t), 2u);
  EXPECT_EQ(sched.schedules, 0);
  EXPECT_EQ(sched.QueueLen(), 1u);
  CancelAndFinish(t);
}

TEST_F(TaskTest, WakeByValWhileRunningDropsTheReferenceAndNotifies) {
  cx__task *t = Spawn(false);
  ASSERT_EQ(PopAndRun(t), CX__RUN_POLL);
  cx_waker tw = cx__task_waker_ref(t), w;
  ASSERT_EQ(cx_waker_clone(&tw, &w), CX_OK);
  EXPECT_EQ(cx__task_refs(t), 3u);
  cx_waker_wake(&w);
  EXPECT_EQ(cx__task_flags(t), CX__RUNNING | CX__SCHEDULED);
  EXPECT_EQ(cx__task_refs(t), 2u);
  EXPECT_EQ(sched.schedules, 0);
  EXPECT_EQ(cx__task_transition_to_idle(t), CX__IDLE_NOTIFIED);
  sched.Requeue(t);
  CancelAndFinish(t);
  EXPECT_EQ(sched.freed, 1);
}

TEST_F(TaskTest, WakeByValOnCompleteTaskWithLastReferenceFreesIt) {
  cx__task *t = Spawn(false);
  cx_waker tw = cx__task_waker_ref(t), w;
  ASSERT_EQ(cx_waker_clone(&tw, &w), CX_OK);
  Complete(t);
  // Owner and running references are gone; the waker keeps t alive.
  EXPECT_EQ(cx__task_refs(t), 1u);
  EXPECT_EQ(sched.freed, 0);
  EXPECT_EQ(probe.drops, 1);
  cx_waker_wake(&w);
  EXPECT_EQ(sched.freed, 1);
  EXPECT_EQ(sched.schedules, 0);
  // The output nobody could take was dropped with the task.
  EXPECT_EQ(g_output_drops, 1);
  EXPECT_EQ(g_last_dropped_output, 42);
}

TEST_F(TaskTest, WakerDropReleasesTheReference) {
  cx__task *t = Spawn(false);
  cx_waker tw = cx__task_waker_ref(t), w1, w2;
  ASSERT_EQ(cx_waker_clone(&tw, &w1), CX_OK);
  ASSERT_EQ(cx_waker_clone(&w1, &w2), CX_OK);
  EXPECT_EQ(w2.vtable, &cx__task_waker_vtable);
  EXPECT_EQ(w2.data, t);
  EXPECT_EQ(cx__task_refs(t), 4u);
  cx_waker_drop(&w1);
  EXPECT_EQ(cx__task_refs(t), 3u);
  CancelAndFinish(t);
  EXPECT_EQ(sched.freed, 0);
  cx_waker_drop(&w2);  // the last reference
  EXPECT_EQ(sched.freed, 1);
}

// ---- transition_to_running / transition_to_idle --------------------------

TEST_F(TaskTest, RunThenIdleDropsTheRunningReference) {
  cx__task *t = Spawn(true);
  EXPECT_EQ(PopAndRun(t), CX__RUN_POLL);
  EXPECT_EQ(cx__task_flags(t), CX__RUNNING | CX__JOIN_INTEREST);
  EXPECT_EQ(cx__task_refs(t), 3u);  // queue ref became the running ref
  EXPECT_EQ(cx__task_transition_to_idle(t), CX__IDLE_DONE);
  EXPECT_EQ(cx__task_flags(t), CX__JOIN_INTEREST);
  EXPECT_EQ(cx__task_refs(t), 2u);
  CancelAndFinish(t);
  cx__task_join_drop(t);
  EXPECT_EQ(sched.freed, 1);
}

TEST_F(TaskTest, WakeDuringPollIsNotLost) {
  // The future wakes itself from inside poll (a yield): the poller must
  // re-queue it, and the scheduler must not be called from inside poll.
  struct Yield {
    int polls;
  };
  static const cx_future_vtable vt = {
      [](void *self, cx_context *cx, void *) -> cx_poll {
        if (++static_cast<Yield *>(self)->polls == 3) return CX_READY;
        cx_waker_wake_by_ref(cx->waker);
        return CX_PENDING;
      },
      nullptr,
      nullptr,
      sizeof(Yield),
      alignof(Yield),
      0};
  Yield y = {0};
  cx__task *t = cx__task_create(&vt, &y, &sched, false, false);
  ASSERT_NE(t, nullptr);
  sched.Requeue(t);
  int rounds = 0;
  while (cx__task *popped = sched.Pop()) {
    ASSERT_EQ(popped, t);
    ASSERT_EQ(cx__task_transition_to_running(t), CX__RUN_POLL);
    cx_waker w = cx__task_waker_ref(t);
    cx_context cx = cx_context_from_waker(&w);
    rounds++;
    if (vt.poll(cx__task_state(t), &cx, nullptr) == CX_READY) {
      cx__task_complete(t, true);
      break;
    }
    ASSERT_EQ(cx__task_transition_to_idle(t), CX__IDLE_NOTIFIED);
    sched.Requeue(t);
  }
  EXPECT_EQ(rounds, 3);
  EXPECT_EQ(sched.schedules, 0);
  EXPECT_EQ(sched.freed, 1);
}

TEST_F(TaskTest, PopOfACompletedTaskOnlyDropsTheQueueReference) {
  // Not reachable through the public protocol (a wake never queues a
  // complete task); the branch is a safety net for shutdown. Forge the
  // state: queued with its queue reference, yet COMPLETE.
  cx__task *t = Spawn(false);
  t->state.fetch_or(CX__COMPLETE);
  EXPECT_EQ(PopAndRun(t), CX__RUN_GONE);
  EXPECT_EQ(cx__task_refs(t), 1u);
  EXPECT_EQ(cx__task_flags(t), CX__COMPLETE);
  EXPECT_EQ(sched.freed, 0);
  cx__task_ref_dec(t);  // the owner's: frees it
  EXPECT_EQ(sched.freed, 1);
  EXPECT_EQ(probe.drops, 0);     // the forged task's future was never dropped
  EXPECT_EQ(g_output_drops, 0);  // no OUTPUT flag: nothing to drop
}

TEST_F(TaskTest, PopOfACompletedTaskHoldingTheLastReferenceFreesIt) {
  cx__task *t = Spawn(false);
  t->state.fetch_or(CX__COMPLETE);
  cx__task_ref_dec(t);  // owner gone: only the queue's remains
  EXPECT_EQ(sched.freed, 0);
  EXPECT_EQ(PopAndRun(t), CX__RUN_GONE);
  EXPECT_EQ(sched.freed, 1);
}

// ---- cancel
// ------------------------------------------------------------------

TEST_F(TaskTest, CancelIdleQueuesItForTheExecutorToDrop) {
  cx__task *t = Spawn(true);
  PollOnceIdle(t);
  EXPECT_EQ(cx__task_refs(t), 2u);
  EXPECT_EQ(cx__task_cancel(t), CX_OK);
  EXPECT_EQ(cx__task_flags(t),
            CX__CANCELLED | CX__SCHEDULED | CX__JOIN_INTEREST);
  EXPECT_EQ(cx__task_refs(t), 3u);  // + queue
  EXPECT_EQ(sched.schedules, 1);
  EXPECT_EQ(probe.drops, 0);             // not dropped on the cancelling thread
  EXPECT_EQ(cx__task_cancel(t), CX_OK);  // again: already requested
  EXPECT_EQ(sched.schedules, 1);
  EXPECT_EQ(cx__task_refs(t), 3u);
  cx__task_wake_by_ref(t);  // SCHEDULED already: no second queueing
  EXPECT_EQ(sched.schedules, 1);

  EXPECT_EQ(PopAndRun(t), CX__RUN_CANCEL);
  EXPECT_EQ(cx__task_flags(t) & CX__RUNNING, CX__RUNNING);
  cx__task_complete(t, false);
  EXPECT_EQ(probe.drops, 1);
  EXPECT_EQ(cx__task_flags(t),
            CX__COMPLETE | CX__CANCELLED | CX__JOIN_INTEREST);
  EXPECT_EQ(cx__task_refs(t), 1u);  // the handle's
  int result = 0, out = -1;
  EXPECT_EQ(Join(t, nullptr, &result, &out), CX_READY);
  EXPECT_EQ(result, CX_ECANCELED);
  EXPECT_EQ(out, -1);
  cx__task_join_drop(t);
  EXPECT_EQ(sched.freed, 1);
  EXPECT_EQ(g_output_drops, 0);
}

TEST_F(TaskTest, CancelWhileScheduledIsSeenAtPop) {
  cx__task *t = Spawn(false);
  EXPECT_EQ(cx__task_cancel(t), CX_OK);
  EXPECT_EQ(cx__task_flags(t), CX__CANCELLED | CX__SCHEDULED);
  EXPECT_EQ(cx__task_refs(t), 2u);  // already queued: no new reference
  EXPECT_EQ(sched.schedules, 0);
  EXPECT_EQ(PopAndRun(t), CX__RUN_CANCEL);
  cx__task_complete(t, false);
  EXPECT_EQ(probe.drops, 1);
  EXPECT_EQ(probe.polls, 0);  // cancelled before its first poll
  EXPECT_EQ(sched.freed, 1);
}

TEST_F(TaskTest, CancelWhileRunningIsSeenWhenThePollEnds) {
  cx__task *t = Spawn(false);
  ASSERT_EQ(PopAndRun(t), CX__RUN_POLL);
  EXPECT_EQ(cx__task_cancel(t), CX_OK);
  EXPECT_EQ(cx__task_flags(t), CX__CANCELLED | CX__RUNNING);
  EXPECT_EQ(cx__task_refs(t), 2u);
  EXPECT_EQ(sched.schedules, 0);
  EXPECT_EQ(probe.drops, 0);
  // A wake during the same poll must not outvote the cancellation.
  cx__task_wake_by_ref(t);
  EXPECT_EQ(cx__task_transition_to_idle(t), CX__IDLE_CANCELLED);
  EXPECT_EQ(cx__task_flags(t) & CX__RUNNING, CX__RUNNING);  // still ours
  cx__task_complete(t, false);
  EXPECT_EQ(probe.drops, 1);
  EXPECT_EQ(sched.freed, 1);
  EXPECT_EQ(sched.QueueLen(), 0u);
}

TEST_F(TaskTest, CancelledTaskThatCompletesInThatPollKeepsItsOutput) {
  cx__task *t = Spawn(true, 99);
  ASSERT_EQ(PopAndRun(t), CX__RUN_POLL);
  EXPECT_EQ(cx__task_cancel(t), CX_OK);
  State(t)->ready = true;
  ASSERT_EQ(Poll(t), CX_READY);
  int result = 0, out = 0;
  EXPECT_EQ(Join(t, nullptr, &result, &out), CX_READY);
  EXPECT_EQ(result, CX_OK);
  EXPECT_EQ(out, 99);
  cx__task_join_drop(t);
  EXPECT_EQ(sched.freed, 1);
  EXPECT_EQ(g_output_drops, 0);  // taken, so not dropped
}

TEST_F(TaskTest, CancelCompleteIsAlready) {
  cx__task *t = Spawn(true);
  Complete(t);
  EXPECT_EQ(cx__task_cancel(t), CX_EALREADY);
  EXPECT_EQ(cx__task_flags(t) & CX__CANCELLED, 0u);
  EXPECT_EQ(sched.schedules, 0);
  cx__task_join_drop(t);
  EXPECT_EQ(sched.freed, 1);
}

// ---- finish and join
// -----------------------------------------------------------

TEST_F(TaskTest, FinishWithOutputThenJoin) {
  cx__task *t = Spawn(true, 1234);
  int result = 0, out = 0;
  EXPECT_EQ(cx_join_handle_try_join(cx__task_to_handle(t), &out, sizeof out),
            CX_EAGAIN);
  EXPECT_FALSE(cx_join_handle_is_finished(cx__task_to_handle(t)));
  Complete(t);
  EXPECT_EQ(probe.drops, 1);  // the future is dropped at completion
  EXPECT_EQ(cx__task_flags(t), CX__COMPLETE | CX__OUTPUT | CX__JOIN_INTEREST);
  EXPECT_EQ(cx__task_refs(t), 1u);
  EXPECT_TRUE(cx_join_handle_is_finished(cx__task_to_handle(t)));
  CountingWaker joiner;
  cx_waker jw = joiner.Borrowed();
  EXPECT_EQ(Join(t, &jw, &result, &out), CX_READY);
  EXPECT_EQ(result, CX_OK);
  EXPECT_EQ(out, 1234);
  EXPECT_EQ(joiner.clones(), 0);  // complete: no waker registered
  // The output is taken once.
  out = 0;
  EXPECT_EQ(Join(t, &jw, &result, &out), CX_READY);
  EXPECT_EQ(result, CX_EALREADY);
  EXPECT_EQ(out, 0);
  EXPECT_EQ(cx_join_handle_try_join(cx__task_to_handle(t), &out, sizeof out),
            CX_EALREADY);
  cx__task_join_drop(t);
  EXPECT_EQ(sched.freed, 1);
  EXPECT_EQ(g_output_drops, 0);  // taken: never dropped by cexec
  EXPECT_EQ(probe.drops, 1);
}

TEST_F(TaskTest, JoinWithWrongSizeIsInvalidAndTakesNothing) {
  cx__task *t = Spawn(true, 5);
  Complete(t);
  int64_t wide = 0;
  int result = 0;
  EXPECT_EQ(cx__task_join_poll(t, nullptr, &result, &wide, sizeof wide),
            CX_READY);
  EXPECT_EQ(result, CX_EINVAL);
  EXPECT_EQ(cx_join_handle_try_join(cx__task_to_handle(t), &wide, sizeof wide),
            CX_EINVAL);
  int out = 0;
  EXPECT_EQ(Join(t, nullptr, &result, &out), CX_READY);
  EXPECT_EQ(result, CX_OK);  // still there
  EXPECT_EQ(out, 5);
  cx__task_join_drop(t);
}

TEST_F(TaskTest, JoinDiscardingTheOutputDropsItOnce) {
  cx__task *t = Spawn(true, 77);
  Complete(t);
  int result = 0;
  EXPECT_EQ(cx__task_join_poll(t, nullptr, &result, nullptr, 0), CX_READY);
  EXPECT_EQ(result, CX_OK);
  EXPECT_EQ(g_output_drops, 1);
  EXPECT_EQ(g_last_dropped_output, 77);
  cx__task_join_drop(t);
  EXPECT_EQ(g_output_drops, 1);  // not again when the task is freed
  EXPECT_EQ(sched.freed, 1);
}

TEST_F(TaskTest, UntakenOutputIsDroppedWhenTheTaskIsFreed) {
  cx__task *t = Spawn(true, 31);
  Complete(t);
  EXPECT_EQ(g_output_drops, 0);
  cx__task_join_drop(t);  // detach without joining
  EXPECT_EQ(g_output_drops, 1);
  EXPECT_EQ(g_last_dropped_output, 31);
  EXPECT_EQ(sched.freed, 1);
}

TEST_F(TaskTest, DetachedTaskOutputIsDroppedAtCompletion) {
  cx__task *t = Spawn(false, 8);
  Complete(t);  // owner and running references go: freed right here
  EXPECT_EQ(sched.freed, 1);
  EXPECT_EQ(g_output_drops, 1);
  EXPECT_EQ(g_last_dropped_output, 8);
}

TEST_F(TaskTest, FinishWithoutOutputMeansCancelled) {
  cx__task *t = Spawn(true);
  ASSERT_EQ(PopAndRun(t), CX__RUN_POLL);
  cx__task_complete(t, false);  // e.g. executor shutdown
  EXPECT_EQ(cx__task_flags(t), CX__COMPLETE | CX__JOIN_INTEREST);
  int result = 0, out = 0;
  EXPECT_EQ(Join(t, nullptr, &result, &out), CX_READY);
  EXPECT_EQ(result, CX_ECANCELED);
  EXPECT_EQ(cx_join_handle_try_join(cx__task_to_handle(t), nullptr, 0),
            CX_ECANCELED);
  cx__task_join_drop(t);
  EXPECT_EQ(g_output_drops, 0);
  EXPECT_EQ(probe.drops, 1);
  EXPECT_EQ(sched.freed, 1);
}

TEST_F(TaskTest, JoinBeforeCompletionRegistersAndIsWokenExactlyOnce) {
  cx__task *t = Spawn(true, 3);
  CountingWaker joiner;
  cx_waker jw = joiner.Borrowed();
  int result = 12345, out = 0;
  EXPECT_EQ(Join(t, &jw, &result, &out), CX_PENDING);
  EXPECT_EQ(result, 12345);  // untouched while pending
  EXPECT_EQ(cx__task_flags(t) & CX__JOIN_WAKER, CX__JOIN_WAKER);
  EXPECT_EQ(joiner.clones(), 1);
  EXPECT_EQ(joiner.refs(), 1);  // the slot's
  // Polling again with the same waker registers nothing new.
  EXPECT_EQ(Join(t, &jw, &result, &out), CX_PENDING);
  EXPECT_EQ(joiner.clones(), 1);
  EXPECT_EQ(joiner.drops(), 0);

  PollOnceIdle(t);  // a pending poll does not wake the joiner
  EXPECT_EQ(joiner.woken(), 0);
  cx__task_wake_by_ref(t);
  Complete(t);
  EXPECT_EQ(joiner.wake_by_refs(), 1);
  EXPECT_EQ(joiner.wakes(), 0);
  EXPECT_EQ(Join(t, &jw, &result, &out), CX_READY);
  EXPECT_EQ(result, CX_OK);
  EXPECT_EQ(out, 3);
  EXPECT_EQ(joiner.woken(), 1);
  EXPECT_EQ(joiner.refs(), 1);  // the slot is dropped with the task
  cx__task_join_drop(t);
  EXPECT_EQ(sched.freed, 1);
  EXPECT_EQ(joiner.refs(), 0);
  EXPECT_EQ(joiner.woken(), 1);
}

TEST_F(TaskTest, JoinerIsWokenOnCancellationToo) {
  cx__task *t = Spawn(true);
  CountingWaker joiner;
  cx_waker jw = joiner.Borrowed();
  int result = 0;
  EXPECT_EQ(Join(t, &jw, &result, nullptr), CX_PENDING);
  CancelAndFinish(t);
  EXPECT_EQ(joiner.woken(), 1);
  EXPECT_EQ(Join(t, &jw, &result, nullptr), CX_READY);
  EXPECT_EQ(result, CX_ECANCELED);
  cx__task_join_drop(t);
  EXPECT_EQ(joiner.refs(), 0);
}

TEST_F(TaskTest, ReplacingTheJoinWaker) {
  cx__task *t = Spawn(true);
  CountingWaker a(1), b(2);
  cx_waker wa = a.Borrowed(), wb = b.Borrowed();
  int result = 0;
  EXPECT_EQ(Join(t, &wa, &result, nullptr), CX_PENDING);
  EXPECT_EQ(Join(t, &wb, &result, nullptr), CX_PENDING);
  // a's clone was released at once, b's is armed.
  EXPECT_EQ(a.refs(), 0);
  EXPECT_EQ(a.drops(), 1);
  EXPECT_EQ(b.refs(), 1);
  EXPECT_EQ(cx__task_flags(t) & CX__JOIN_WAKER, CX__JOIN_WAKER);
  Complete(t);
  EXPECT_EQ(a.woken(), 0);
  EXPECT_EQ(b.woken(), 1);
  cx__task_join_drop(t);
  EXPECT_EQ(b.refs(), 0);
  EXPECT_EQ(sched.freed, 1);
}

TEST_F(TaskTest, JoinWakerCloneFailureIsReported) {
  cx__task *t = Spawn(true);
  CountingWaker a(1), b(2);
  cx_waker wa = a.Borrowed(), wb = b.Borrowed();
  int result = 0;
  b.set_clone_error(CX_EOVERFLOW);
  EXPECT_EQ(Join(t, &wb, &result, nullptr), CX_READY);
  EXPECT_EQ(result, CX_EOVERFLOW);
  EXPECT_EQ(cx__task_flags(t) & CX__JOIN_WAKER, 0u);
  // Replacing an armed waker with one that cannot be cloned: reported, and
  // the old waker is not woken by completion (the slot was disarmed).
  EXPECT_EQ(Join(t, &wa, &result, nullptr), CX_PENDING);
  EXPECT_EQ(Join(t, &wb, &result, nullptr), CX_READY);
  EXPECT_EQ(result, CX_EOVERFLOW);
  EXPECT_EQ(cx__task_flags(t) & CX__JOIN_WAKER, 0u);
  Complete(t);
  EXPECT_EQ(a.woken(), 0);
  cx__task_join_drop(t);
  EXPECT_EQ(a.refs(), 0);
  EXPECT_EQ(b.refs(), 0);
}

TEST_F(TaskTest, JoinDropBeforeCompletionDropsTheJoinWakerNow) {
  cx__task *t = Spawn(true);
  CountingWaker joiner;
  cx_waker jw = joiner.Borrowed();
  int result = 0;
  EXPECT_EQ(Join(t, &jw, &result, nullptr), CX_PENDING);
  EXPECT_EQ(cx__task_refs(t), 3u);
  cx__task_join_drop(t);
  EXPECT_EQ(joiner.refs(), 0);  // released now, not when t is freed
  EXPECT_EQ(joiner.drops(), 1);
  EXPECT_EQ(cx__task_flags(t) & (CX__JOIN_INTEREST | CX__JOIN_WAKER), 0u);
  EXPECT_EQ(cx__task_refs(t), 2u);
  Complete(t);
  EXPECT_EQ(joiner.woken(), 0);  // nobody to wake
  EXPECT_EQ(sched.freed, 1);
  EXPECT_EQ(g_output_drops, 1);  // detached: output dropped with the task
}

TEST_F(TaskTest, FutureDroppedExactlyOnceAcrossManyCycles) {
  cx__task *t = Spawn(true);
  for (int i = 0; i < 10; i++) {
    PollOnceIdle(t);
    cx__task_wake_by_ref(t);
  }
  Complete(t);
  EXPECT_EQ(probe.polls, 11);
  EXPECT_EQ(probe.drops, 1);
  cx__task_wake_by_ref(t);  // no effect once complete
  EXPECT_EQ(sched.QueueLen(), 0u);
  cx__task_join_drop(t);
  EXPECT_EQ(probe.drops, 1);
  EXPECT_EQ(sched.freed, 1);
}

// ---- the public join handle wrappers ------------------------------------

TEST_F(TaskTest, JoinHandleNullArguments) {
  int result = 0;
  cx_context cx = {nullptr, nullptr, nullptr, nullptr};
  EXPECT_EQ(cx_join_handle_poll(nullptr, &cx, &result, nullptr, 0), CX_READY);
  EXPECT_EQ(result, CX_EINVAL);
  cx__task *t = Spawn(true);
  cx_join_handle *h = cx__task_to_handle(t);
  result = 0;
  EXPECT_EQ(cx_join_handle_poll(h, nullptr, &result, nullptr, 0), CX_READY);
  EXPECT_EQ(result, CX_EINVAL);
  result = 0;
  EXPECT_EQ(cx_join_handle_poll(h, &cx, &result, nullptr, 0), CX_READY);
  EXPECT_EQ(result, CX_EINVAL);  // cx->waker NULL
  EXPECT_EQ(cx_join_handle_poll(h, &cx, nullptr, nullptr, 0), CX_READY);
  EXPECT_EQ(cx_join_handle_try_join(nullptr, nullptr, 0), CX_EINVAL);
  EXPECT_EQ(cx_join_handle_wait(nullptr, nullptr, 0), CX_EINVAL);
  EXPECT_EQ(cx_join_handle_cancel(nullptr), CX_EINVAL);
  EXPECT_FALSE(cx_join_handle_is_finished(nullptr));
  EXPECT_EQ(cx_join_handle_poll_count(nullptr), 0u);
  cx_join_handle_detach(nullptr);
  EXPECT_EQ(cx__task_flags(t) & CX__JOIN_WAKER, 0u);
  EXPECT_EQ(cx_join_handle_cancel(h), CX_OK);
  ASSERT_EQ(PopAndRun(t), CX__RUN_CANCEL);
  cx__task_complete(t, false);
  EXPECT_EQ(cx_join_handle_cancel(h), CX_EALREADY);
  cx_join_handle_detach(h);
  EXPECT_EQ(sched.freed, 1);
}

TEST_F(TaskTest, JoinHandleWaitBlocksUntilCompletion) {
  cx__task *t = Spawn(true, 2024);
  cx_join_handle *h = cx__task_to_handle(t);
  std::atomic<bool> returned{false};
  int rc = 1, out = 0;
  std::thread waiter([&] {
    rc = cx_join_handle_wait(h, &out, sizeof out);
    returned = true;
  });
  // Let the waiter park (it cannot return before completion either way).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(returned);
  Complete(t);
  waiter.join();
  EXPECT_EQ(rc, CX_OK);
  EXPECT_EQ(out, 2024);
  cx_join_handle_detach(h);
  EXPECT_EQ(sched.freed, 1);
  // The parker was freed too (checked by TearDown: no live allocation).
}

TEST_F(TaskTest, JoinHandleWaitReportsParkerAllocationFailure) {
  cx__task *t = Spawn(true);
  cx_join_handle *h = cx__task_to_handle(t);
  alloc.FailAt(1);  // the parker
  EXPECT_EQ(cx_join_handle_wait(h, nullptr, 0), CX_ENOMEM);
  alloc.FailNever();
  CancelAndFinish(t);
  EXPECT_EQ(cx_join_handle_wait(h, nullptr, 0), CX_ECANCELED);
  cx_join_handle_detach(h);
}

// ---- reference overflow ----------------------------------------------------

TEST_F(TaskTest, CloneRefusesPastTheReferenceLimit) {
  cx__task *t = Spawn(false);
  uint64_t base = cx__task_refs(t);
  // One below the limit: the next clone reaches it and is the last allowed.
  cx__task_debug_add_refs(t, CX__REF_MAX - 1 - base);
  cx_waker tw = cx__task_waker_ref(t), w1, w2;
  ASSERT_EQ(cx_waker_clone(&tw, &w1), CX_OK);
  EXPECT_EQ(cx__task_refs(t), CX__REF_MAX);
  w2 = tw;  // must be emptied by the refusal
  EXPECT_EQ(cx_waker_clone(&tw, &w2), CX_EOVERFLOW);
  EXPECT_TRUE(cx_waker_is_empty(&w2));
  EXPECT_EQ(cx__task_refs(t), CX__REF_MAX);  // nothing changed
  EXPECT_EQ(cx__task_flags(t), CX__SCHEDULED);
  cx_waker_drop(&w1);
  cx__task_ref_dec_n(t, CX__REF_MAX - 1 - base);
  EXPECT_EQ(cx__task_refs(t), base);
  EXPECT_EQ(sched.freed, 0);
  CancelAndFinish(t);
  EXPECT_EQ(sched.freed, 1);
}

TEST_F(TaskTest, WakeAtTheReferenceLimitStillSchedules) {
  cx__task *t = Spawn(false);
  PollOnceIdle(t);
  uint64_t extra = CX__REF_MAX - cx__task_refs(t);
  cx__task_debug_add_refs(t, extra);
  cx__task_wake_by_ref(t);  // the limit guards clones only
  EXPECT_EQ(sched.schedules, 1);
  EXPECT_EQ(cx__task_refs(t), CX__REF_MAX + 1);
  cx__task_ref_dec_n(t, extra);
  CancelAndFinish(t);
  EXPECT_EQ(sched.freed, 1);
}

// ---- threads ---------------------------------------------------------------

// N threads wake, clone+wake and clone+drop one task while this thread runs
// poll cycles. No wake may queue the task twice, and at the end every
// reference is accounted for: owner + handle, then exactly one free.
TEST_F(TaskTest, ConcurrentWakesClonesAndDrops) {
  constexpr int kThreads = 4;
  constexpr int kOpsPerThread = 20000;
  cx__task *t = Spawn(true);
  std::vector<cx_waker> own(kThreads);
  cx_waker tw = cx__task_waker_ref(t);
  for (cx_waker &w : own) ASSERT_EQ(cx_waker_clone(&tw, &w), CX_OK);

  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; i++) {
    threads.emplace_back([&, i] {
      std::minstd_rand rng(static_cast<unsigned>(i + 1));
      cx_waker mine = own[i];
      for (int k = 0; k < kOpsPerThread; k++) {
        cx_waker c;
        switch (rng() % 3) {
          case 0:
            cx_waker_wake_by_ref(&mine);
            break;
          case 1:
            if (cx_waker_clone(&mine, &c) == CX_OK) cx_waker_wake(&c);
            break;
          default:
            if (cx_waker_clone(&mine, &c) == CX_OK) cx_waker_drop(&c);
            break;
        }
      }
      cx_waker_drop(&mine);
      done++;
    });
  }

  // The executor's loop, with polls that sometimes wake the task themselves.
  int polls = 0;
  for (;;) {
    cx__task *p = sched.Pop();
    if (p == nullptr) {
      if (done == kThreads && sched.QueueLen() == 0) break;
      std::this_thread::yield();
      continue;
    }
    ASSERT_EQ(p, t);
    ASSERT_EQ(cx__task_transition_to_running(t), CX__RUN_POLL);
    EXPECT_EQ(cx__task_flags(t) & CX__RUNNING, CX__RUNNING);
    if (++polls % 7 == 0) cx__task_wake_by_ref(t);
    cx__idle_result act = cx__task_transition_to_idle(t);
    ASSERT_NE(act, CX__IDLE_CANCELLED);
    if (act == CX__IDLE_NOTIFIED) sched.Requeue(t);
  }
  for (std::thread &th : threads) th.join();

  EXPECT_GT(polls, 0);
  EXPECT_EQ(cx__task_flags(t), CX__JOIN_INTEREST);  // idle, not queued
  EXPECT_EQ(cx__task_refs(t), 2u);                  // owner + handle
  EXPECT_EQ(sched.freed, 0);
  CancelAndFinish(t);
  EXPECT_EQ(cx__task_refs(t), 1u);
  cx__task_join_drop(t);
  EXPECT_EQ(sched.freed, 1);
  EXPECT_EQ(probe.drops, 1);
}

// Busy-waits for roughly n short steps (no system call, unlike sleeping).
void Spin(unsigned n) {
  for (volatile unsigned i = 0; i < n; i = i + 1) {
  }
}

// The JOIN_WAKER handoff under a race: a joiner registers waker B, replaces
// it with A, then waits for A, while this thread completes the task at a
// random moment. B must never be woken after being replaced, A is woken
// exactly once if it was armed (no lost wake-up), and never twice.
TEST_F(TaskTest, JoinWakerReplacementRacesWithCompletion) {
  constexpr int kRounds = 500;
  std::minstd_rand rng(12345);
  int outcomes[3] = {0, 0, 0};  // ready at once / B woken / A armed
  for (int round = 0; round < kRounds; round++) {
    cx__task *t = Spawn(true, round);
    ASSERT_EQ(PopAndRun(t), CX__RUN_POLL);
    CountingWaker a(1), b(2);
    int result = 0, out = -1;
    bool a_armed = false;
    std::atomic<bool> started{false};
    // Random delays on both sides spread completion over the registrations.
    unsigned joiner_delay = rng() % 200, finisher_delay = rng() % 400;
    std::thread joiner([&] {
      cx_waker wa = a.Borrowed(), wb = b.Borrowed();
      started = true;
      if (Join(t, &wb, &result, &out) == CX_READY) return;
      Spin(joiner_delay);
      if (Join(t, &wa, &result, &out) == CX_READY) return;
      a_armed = true;
      auto deadline =
          std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (a.woken() == 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::yield();
      EXPECT_EQ(Join(t, &wa, &result, &out), CX_READY);
    });
    // Complete while the joiner is somewhere in its two registrations.
    while (!started) {
    }
    Spin(finisher_delay);
    *static_cast<int *>(cx__task_output(t)) = round;
    cx__task_complete(t, true);
    joiner.join();
    EXPECT_EQ(result, CX_OK);
    EXPECT_EQ(out, round);
    EXPECT_LE(a.woken(), 1);
    if (a_armed) {
      EXPECT_EQ(a.woken(), 1) << "lost wake-up";
    }
    // B may be woken only if completion came before its replacement.
    EXPECT_LE(b.woken(), 1);
    if (b.woken() == 1) {
      EXPECT_EQ(a.clones(), 0);
    }
    outcomes[a_armed ? 2 : b.woken() ? 1 : 0]++;
    cx__task_join_drop(t);
    EXPECT_EQ(a.refs(), 0);
    EXPECT_EQ(b.refs(), 0);
    ASSERT_EQ(sched.freed, round + 1);
  }
  // Which interleavings happened depends on the machine; shown, not checked.
  std::printf("ready at once %d, B woken %d, A armed %d\n", outcomes[0],
              outcomes[1], outcomes[2]);
}

// ---- cx_join_handle_wait on an executor's thread ----------------------------

TEST_F(TaskTest, JoinHandleWaitOnAnExecutorThreadReturnsEdeadlk) {
  cxtest::Watchdog dog(20, "cx_join_handle_wait with the executor marker set");
  cx__task *t = Spawn(true, 5);
  cx_join_handle *h = cx__task_to_handle(t);
  int marker = 0;  // any non-NULL value: "this thread runs an executor"
  void *prev = cx__set_current_executor(&marker);
  int out = 0;
  EXPECT_EQ(cx_join_handle_wait(h, &out, sizeof out), CX_EDEADLK);
  EXPECT_EQ(alloc.live(), 1u);  // no parker was allocated: only the task
  cx__set_current_executor(prev);
  Complete(t);
  prev = cx__set_current_executor(&marker);
  EXPECT_EQ(cx_join_handle_wait(h, &out, sizeof out), CX_OK);  // no block
  cx__set_current_executor(prev);
  EXPECT_EQ(out, 5);
  cx_join_handle_detach(h);
}

}  // namespace
