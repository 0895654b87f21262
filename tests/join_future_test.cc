// executor/join_future.h: a task awaiting another task's output. Output and
// errors (cancelled, output already taken, wrong size), the waker withdrawn
// when a pending join future is dropped (a join that loses a select), the
// handle detached by an owning join future, and a join across executors
// running on different threads.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "executor/cexec.h"
#include "executor/debug.h"
#include "tests/testutil.h"

namespace {

using cxtest::CountingWaker;
using cxtest::ManualClock;
using cxtest::ScopedCountingAllocator;

constexpr uint64_t kMs = CX_NSEC_PER_MSEC;

// Ready with `value` after `remaining` pending polls (it wakes itself).
struct Countdown {
  int remaining;
  int value;
};
cx_poll CountdownPoll(void *self, cx_context *cx, void *out) {
  auto *c = static_cast<Countdown *>(self);
  if (c->remaining <= 0) {
    *static_cast<int *>(out) = c->value;
    return CX_READY;
  }
  c->remaining--;
  cx_waker_wake_by_ref(cx->waker);
  return CX_PENDING;
}
const cx_future_vtable kCountdownVt = {.poll = CountdownPoll,
                                       .state_size = sizeof(Countdown),
                                       .state_align = alignof(Countdown),
                                       .output_size = sizeof(int)};

// Pends until woken through the waker it keeps (never, unless cancelled).
struct Never {
  cx_waker waker;
};
cx_poll NeverPoll(void *self, cx_context *cx, void *out) {
  (void)out;
  cx_waker_store(&static_cast<Never *>(self)->waker, cx->waker);
  return CX_PENDING;
}
void NeverDrop(void *self) {
  cx_waker_drop(&static_cast<Never *>(self)->waker);
}
const cx_future_vtable kNeverVt = {.poll = NeverPoll,
                                   .drop = NeverDrop,
                                   .state_size = sizeof(Never),
                                   .state_align = alignof(Never),
                                   .output_size = sizeof(int)};

// Awaits a join future on `target` and returns its result; the output goes
// to `out`.
struct Awaiter {
  cx_coro co;
  cx_join_future jf;
  cx_join_handle *target;
  bool owning;
  int value, rc;
};
cx_poll AwaiterPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<Awaiter *>(self);
  CX_CORO_BEGIN(&f->co);
  cx_join_future_init(&f->jf, f->target, &f->value, sizeof f->value, f->owning);
  CX_AWAIT(&f->co, cx_join_future_poll(&f->jf, cx, &f->rc));
  static_cast<int *>(out)[0] = f->rc;
  static_cast<int *>(out)[1] = f->value;
  CX_RETURN_VOID(&f->co);
  CX_CORO_END(&f->co);
}
void AwaiterDrop(void *self) {
  cx_join_future_drop(&static_cast<Awaiter *>(self)->jf);
}
const cx_future_vtable kAwaiterVt = {.poll = AwaiterPoll,
                                     .drop = AwaiterDrop,
                                     .state_size = sizeof(Awaiter),
                                     .state_align = alignof(Awaiter),
                                     .output_size = 2 * sizeof(int)};

TEST(JoinFuture, AwaitsAnotherTasksOutput) {
  ScopedCountingAllocator alloc;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Countdown c = {4, 123};
  cx_join_handle *target;
  ASSERT_EQ(cx_spawn(ex, &kCountdownVt, &c, &target), CX_OK);
  Awaiter a;
  std::memset(&a, 0, sizeof a);
  a.target = target;
  a.owning = true; /* the join future detaches the handle */
  int out[2] = {99, 99};
  ASSERT_EQ(cx_executor_block_on(ex, &kAwaiterVt, &a, out, sizeof out), CX_OK);
  EXPECT_EQ(out[0], CX_OK);
  EXPECT_EQ(out[1], 123);
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u); /* the target's handle was detached */
}

TEST(JoinFuture, CancelledTaskReportsEcanceled) {
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Never n = {{nullptr, nullptr}};
  cx_join_handle *target, *h;
  ASSERT_EQ(cx_spawn(ex, &kNeverVt, &n, &target), CX_OK);
  Awaiter a;
  std::memset(&a, 0, sizeof a);
  a.target = target;
  ASSERT_EQ(cx_spawn(ex, &kAwaiterVt, &a, &h), CX_OK);
  cx_executor_run_until_idle(ex);
  cx_task_debug_info info;
  ASSERT_EQ(cx_join_handle_debug_info(target, &info), CX_OK);
  EXPECT_TRUE(info.join_waker); /* the awaiter is registered */
  ASSERT_EQ(cx_join_handle_cancel(target), CX_OK);
  int out[2] = {99, 99};
  ASSERT_EQ(cx_executor_join(ex, h, out, sizeof out), CX_OK);
  EXPECT_EQ(out[0], CX_ECANCELED);
  cx_join_handle_detach(h);
  cx_join_handle_detach(target); /* borrowed: ours to detach */
  cx_executor_destroy(ex);
}

TEST(JoinFuture, OutputTakenTwiceAndWrongSize) {
  CountingWaker w;
  cx_waker wk = w.Borrowed();
  cx_context cx = cx_context_from_waker(&wk);
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Countdown c = {0, 5};
  cx_join_handle *target;
  ASSERT_EQ(cx_spawn(ex, &kCountdownVt, &c, &target), CX_OK);
  cx_executor_run_until_idle(ex);

  long wrong = 0;
  int rc = 0;
  cx_join_future jf;
  cx_join_future_init(&jf, target, &wrong, sizeof wrong, false);
  EXPECT_EQ(cx_join_future_poll(&jf, &cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);
  cx_join_future_drop(&jf);

  int v = 0;
  cx_join_future_init(&jf, target, &v, sizeof v, false);
  EXPECT_EQ(cx_join_future_poll(&jf, &cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_OK);
  EXPECT_EQ(v, 5);
  rc = 0;
  EXPECT_EQ(cx_join_future_poll(&jf, &cx, &rc), CX_READY); /* again */
  EXPECT_EQ(rc, CX_OK);
  cx_join_future_drop(&jf);

  cx_join_future_init(&jf, target, &v, sizeof v, true);
  EXPECT_EQ(cx_join_future_poll(&jf, &cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EALREADY);
  cx_join_future_drop(&jf); /* detaches */
  cx_join_future_drop(&jf);
  EXPECT_EQ(w.refs(), 0);
  cx_executor_destroy(ex);
}

TEST(JoinFuture, DroppingAPendingJoinWithdrawsTheWaker) {
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Never n = {{nullptr, nullptr}};
  cx_join_handle *target;
  ASSERT_EQ(cx_spawn(ex, &kNeverVt, &n, &target), CX_OK);
  cx_executor_run_until_idle(ex);

  CountingWaker w;
  cx_waker wk = w.Borrowed();
  cx_context cx = cx_context_from_waker(&wk);
  int v = 0, rc = 0;
  cx_join_future jf;
  cx_join_future_init(&jf, target, &v, sizeof v, false);
  EXPECT_EQ(cx_join_future_poll(&jf, &cx, &rc), CX_PENDING);
  EXPECT_EQ(w.refs(), 1);
  cx_task_debug_info info;
  cx_join_handle_debug_info(target, &info);
  EXPECT_TRUE(info.join_waker);
  cx_join_future_drop(&jf);
  EXPECT_EQ(w.refs(), 0);
  cx_join_handle_debug_info(target, &info);
  EXPECT_FALSE(info.join_waker);
  // The target finishing later wakes nobody.
  cx_join_handle_cancel(target);
  cx_executor_run_until_idle(ex);
  EXPECT_TRUE(cx_join_handle_is_finished(target));
  EXPECT_EQ(w.woken(), 0);
  // The handle is still usable (the future borrowed it).
  EXPECT_EQ(cx_join_handle_try_join(target, &v, sizeof v), CX_ECANCELED);
  cx_join_handle_detach(target);
  cx_executor_destroy(ex);
}

TEST(JoinFuture, CompletionReleasesTheAwaitersWakerAtOnce) {
  // The join future borrows the handle, which stays alive afterwards: the
  // awaiting task's waker must not stay in the joined task's slot.
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Never n = {{nullptr, nullptr}};
  cx_join_handle *target;
  ASSERT_EQ(cx_spawn(ex, &kNeverVt, &n, &target), CX_OK);
  cx_executor_run_until_idle(ex);
  CountingWaker w;
  cx_waker wk = w.Borrowed();
  cx_context cx = cx_context_from_waker(&wk);
  int v = 0, rc = 0;
  cx_join_future jf;
  cx_join_future_init(&jf, target, &v, sizeof v, false);
  EXPECT_EQ(cx_join_future_poll(&jf, &cx, &rc), CX_PENDING);
  EXPECT_EQ(w.refs(), 1);
  cx_join_handle_cancel(target);
  cx_executor_run_until_idle(ex);
  EXPECT_EQ(w.woken(), 1);
  EXPECT_EQ(cx_join_future_poll(&jf, &cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_ECANCELED);
  EXPECT_EQ(w.refs(), 0); /* released on completion, handle still alive */
  cx_join_future_drop(&jf);
  cx_join_handle_detach(target);
  cx_executor_destroy(ex);
  EXPECT_EQ(w.refs(), 0);
}

TEST(JoinFuture, BadArgumentsAndZeroedDrop) {
  CountingWaker w;
  cx_waker wk = w.Borrowed();
  cx_context cx = cx_context_from_waker(&wk);
  cx_join_future zero;
  std::memset(&zero, 0, sizeof zero);
  int rc = 0;
  EXPECT_EQ(cx_join_future_poll(&zero, &cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);
  EXPECT_EQ(cx_join_future_poll(nullptr, &cx, &rc), CX_READY);
  cx_join_future_drop(&zero);
  cx_join_future_drop(nullptr);
  cx_join_future_init(nullptr, nullptr, nullptr, 0, false);
}

// A join racing a timeout: the target is slower, so the join loses and is
// dropped; its waker leaves the target task at once.
struct Impatient {
  cx_coro co;
  cx_join_handle *target;
  cx_join_future jf;
  cx_timeout to;
  int value, join_rc, rc;
};
cx_poll ImpatientPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<Impatient *>(self);
  CX_CORO_BEGIN(&f->co);
  cx_join_future_init(&f->jf, f->target, &f->value, sizeof f->value, false);
  cx_timeout_init(&f->to, cx_future_of(&cx_join_future_vtable, &f->jf),
                  &f->join_rc, 2 * kMs);
  CX_AWAIT(&f->co, cx_timeout_poll(&f->to, cx, &f->rc));
  CX_RETURN(&f->co, static_cast<int *>(out), f->rc);
  CX_CORO_END(&f->co);
}
void ImpatientDrop(void *self) {
  cx_timeout_drop(&static_cast<Impatient *>(self)->to);
}
const cx_future_vtable kImpatientVt = {.poll = ImpatientPoll,
                                       .drop = ImpatientDrop,
                                       .state_size = sizeof(Impatient),
                                       .state_align = alignof(Impatient),
                                       .output_size = sizeof(int)};

TEST(JoinFuture, JoinLosingATimeoutLeavesNothingBehind) {
  ScopedCountingAllocator alloc;
  ManualClock clock;
  cx_executor_options opts = {clock.fn(), clock.ctx()};
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(&opts, &ex), CX_OK);
  Never n = {{nullptr, nullptr}};
  cx_join_handle *target, *h;
  ASSERT_EQ(cx_spawn(ex, &kNeverVt, &n, &target), CX_OK);
  Impatient im;
  std::memset(&im, 0, sizeof im);
  im.target = target;
  ASSERT_EQ(cx_spawn(ex, &kImpatientVt, &im, &h), CX_OK);
  while (!cx_join_handle_is_finished(h)) {
    cx_executor_run_until_idle(ex);
    clock.Advance(kMs);
  }
  int rc = 0;
  ASSERT_EQ(cx_join_handle_try_join(h, &rc, sizeof rc), CX_OK);
  EXPECT_EQ(rc, CX_ETIMEDOUT);
  cx_task_debug_info info;
  cx_join_handle_debug_info(target, &info);
  EXPECT_FALSE(info.join_waker);
  // Only the executor, the target's own waker (held by Never) and our handle
  // reference the target now.
  EXPECT_EQ(info.refs, 3u);
  cx_join_handle_detach(h);
  cx_join_handle_detach(target);
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(JoinFuture, AwaitsATaskOnAnotherExecutorThread) {
  ScopedCountingAllocator alloc;
  cx_executor *ex1, *ex2;
  ASSERT_EQ(cx_executor_create(nullptr, &ex1), CX_OK);
  ASSERT_EQ(cx_executor_create(nullptr, &ex2), CX_OK);
  cx_spawner *sp;
  ASSERT_EQ(cx_executor_spawner(ex2, &sp), CX_OK);
  std::thread other([&] {
    EXPECT_EQ(cx_executor_run(ex2), CX_OK);
    cx_executor_destroy(ex2);
  });
  for (int round = 0; round < 20; round++) {
    Countdown c = {50, round};
    cx_join_handle *target;
    ASSERT_EQ(cx_spawner_spawn(sp, &kCountdownVt, &c, &target), CX_OK);
    Awaiter a;
    std::memset(&a, 0, sizeof a);
    a.target = target;
    a.owning = true;
    int out[2] = {99, 99};
    ASSERT_EQ(cx_executor_block_on(ex1, &kAwaiterVt, &a, out, sizeof out),
              CX_OK);
    EXPECT_EQ(out[0], CX_OK);
    EXPECT_EQ(out[1], round);
  }
  cx_spawner_drop(sp);
  other.join();
  cx_executor_destroy(ex1);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- cx_join_handle_wait inside a task -----------------------------------

struct WaitInTask {
  cx_join_handle *h;
  int value;
};

TEST(JoinHandleWait, InsideATaskReturnsEdeadlkOnlyIfItWouldBlock) {
  ScopedCountingAllocator alloc;
  cxtest::Watchdog dog(20, "cx_join_handle_wait inside a task");
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  cxtest::Countdown cd{2, 77, nullptr};
  WaitInTask w{nullptr, 0};
  ASSERT_EQ(cx_spawn(ex, &cxtest::kCountdownVt, &cd, &w.h), CX_OK);
  auto wait = [](void *c) {
    auto *q = static_cast<WaitInTask *>(c);
    return cx_join_handle_wait(q->h, &q->value, sizeof q->value);
  };
  // The countdown has not finished when the waiting task runs (it pends
  // twice): waiting would stall the only thread that can finish it.
  EXPECT_EQ(cxtest::RunInTask(wait, &w, ex), CX_EDEADLK);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);  // the countdown finishes
  ASSERT_TRUE(cx_join_handle_is_finished(w.h));
  // Finished: the wait does not block, so it works inside a task too.
  EXPECT_EQ(cxtest::RunInTask(wait, &w, ex), CX_OK);
  EXPECT_EQ(w.value, 77);
  cx_join_handle_detach(w.h);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- a broken waker is refused by the join registration -------------------

TEST(JoinFutureBrokenWaker, PendingJoinRefusesAVtableWithoutDrop) {
  ScopedCountingAllocator alloc;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Countdown cd{1, 5};
  cx_join_handle *h;
  ASSERT_EQ(cx_spawn(ex, &kCountdownVt, &cd, &h), CX_OK);
  CountingWaker target;
  cx_waker_vtable vt = CountingWaker::kVtable;
  vt.drop = nullptr;
  cx_waker broken = {&vt, &target};
  cx_context cx = cx_context_from_waker(&broken);
  cx_join_future f;
  cx_join_future_init(&f, h, nullptr, sizeof(int), false);
  int rc = 0;
  EXPECT_EQ(cx_join_future_poll(&f, &cx, &rc), CX_READY);  // would pend
  EXPECT_EQ(rc, CX_EINVAL);
  cx_join_future_drop(&f);
  EXPECT_EQ(target.clones(), 0);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  int v = 0;
  EXPECT_EQ(cx_join_handle_try_join(h, &v, sizeof v), CX_OK);
  EXPECT_EQ(v, 5);
  cx_join_handle_detach(h);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- NULL arguments: the whole surface
// ---------------------------------------

TEST(JoinFutureNull, EveryFunctionAndVtableAcceptsNull) {
  CountingWaker target;
  cx_waker w = target.Borrowed();
  cx_context cx = cx_context_from_waker(&w);
  int rc = 0;
  cx_join_future_init(nullptr, nullptr, nullptr, 0, false);  // no-op
  EXPECT_EQ(cx_join_future_poll(nullptr, &cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);
  cx_join_future f;
  cx_join_future_init(&f, nullptr, nullptr, 0, true);  // NULL handle
  rc = 0;
  EXPECT_EQ(cx_join_future_poll(&f, &cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);
  cxtest::ExpectPollRejectsNull(cx_join_future_poll, cx_join_future_vtable, &f,
                                &cx, int{CX_EINVAL});
  cx_join_future_drop(nullptr);
  cx_join_future_drop(&f);
  EXPECT_EQ(target.clones(), 0);
}

}  // namespace
