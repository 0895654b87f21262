// executor/combinators.h: join2, join_all, select, and_then, timeout.
//
// Most tests poll the combinators by hand, with a CountingWaker and a timer
// driver over a ManualClock, so every poll, drop and waker reference can be
// counted exactly. The last ones run them on an executor: select cancelling
// its losers' timers (executor stats .timers == 0), a fan-out / fan-in with
// join_all over join futures, and a combinator spawned as a task.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "executor/cexec.h"
#include "tests/testutil.h"

namespace {

using cxtest::Countdown;
using cxtest::CountingWaker;
using cxtest::kCountdownVt;
using cxtest::kNeverVt;
using cxtest::ManualClock;
using cxtest::Never;
using cxtest::ScopedCountingAllocator;
using cxtest::Stats;

constexpr uint64_t kMs = CX_NSEC_PER_MSEC;

// ---- test futures
// ------------------------------------------------------------

cx_future Fut(const cx_future_vtable *vt, void *state) {
  return cx_future_of(vt, state);
}

// A context over a counting waker and a manual-clock timer driver.
struct Harness {
  ManualClock clock;
  cx_timers timers;
  CountingWaker target;
  cx_waker waker;
  cx_context cx;
  Harness() {
    cx_timers_init(&timers, clock.fn(), clock.ctx());
    waker = target.Borrowed();
    cx = cx_context{&waker, nullptr, &timers, nullptr};
  }
  // Advances the clock and fires what is due.
  void Advance(uint64_t ns) {
    clock.Advance(ns);
    cx_timers_fire(&timers, cx_timers_now(&timers));
  }
};

// ---- join2
// --------------------------------------------------------------------

TEST(Join2, CompletesWhenBothDoneAndDropsEachOnce) {
  Harness h;
  Stats sa, sb;
  Countdown a = {0, 1, &sa}, b = {2, 2, &sb};
  int oa = 0, ob = 0;
  cx_join2 j;
  ASSERT_EQ(cx_join2_init(&j, Fut(&kCountdownVt, &a), &oa,
                          Fut(&kCountdownVt, &b), &ob),
            CX_OK);
  EXPECT_EQ(cx_join2_poll(&j, &h.cx), CX_PENDING);
  EXPECT_EQ(sa.drops, 1); /* a finished: dropped at once */
  EXPECT_EQ(oa, 1);
  EXPECT_EQ(cx_join2_poll(&j, &h.cx), CX_PENDING);
  EXPECT_EQ(cx_join2_poll(&j, &h.cx), CX_READY);
  EXPECT_EQ(ob, 2);
  EXPECT_EQ(sa.polls, 1); /* never polled after completing */
  EXPECT_EQ(sb.polls, 3);
  EXPECT_EQ(sb.drops, 1);
  cx_join2_drop(&j);
  cx_join2_drop(&j);
  EXPECT_EQ(sa.drops, 1);
  EXPECT_EQ(sb.drops, 1);
  EXPECT_EQ(cx_join2_poll(&j, &h.cx), CX_READY); /* after the end: no-op */
}

TEST(Join2, DropWhilePendingDropsOnlyTheUnfinished) {
  Harness h;
  Stats sa, sb;
  Countdown a = {0, 1, &sa};
  Never b = {{nullptr, nullptr}, &sb};
  int oa = 0, ob = 0;
  cx_join2 j;
  ASSERT_EQ(
      cx_join2_init(&j, Fut(&kCountdownVt, &a), &oa, Fut(&kNeverVt, &b), &ob),
      CX_OK);
  EXPECT_EQ(cx_join2_poll(&j, &h.cx), CX_PENDING);
  EXPECT_EQ(h.target.refs(), 1); /* b holds a clone */
  cx_join2_drop(&j);
  EXPECT_EQ(sa.drops, 1);
  EXPECT_EQ(sb.drops, 1);
  EXPECT_EQ(h.target.refs(), 0);
  cx_join2_drop(&j);
  EXPECT_EQ(sb.drops, 1);
}

TEST(Join2, TwoSleepsEndAtTheLaterDeadline) {
  Harness h;
  cx_sleep s1, s2;
  cx_sleep_init_for(&s1, kMs);
  cx_sleep_init_for(&s2, 3 * kMs);
  int r1 = -1, r2 = -1;
  cx_join2 j;
  ASSERT_EQ(cx_join2_init(&j, Fut(&cx_sleep_vtable, &s1), &r1,
                          Fut(&cx_sleep_vtable, &s2), &r2),
            CX_OK);
  EXPECT_EQ(cx_join2_poll(&j, &h.cx), CX_PENDING);
  EXPECT_EQ(cx_timers_count(&h.timers), 2u);
  h.Advance(kMs);
  EXPECT_EQ(cx_join2_poll(&j, &h.cx), CX_PENDING);
  EXPECT_EQ(r1, CX_OK);
  h.Advance(2 * kMs);
  EXPECT_EQ(cx_join2_poll(&j, &h.cx), CX_READY);
  EXPECT_EQ(r2, CX_OK);
  EXPECT_EQ(cx_timers_count(&h.timers), 0u);
  cx_join2_drop(&j);
  EXPECT_EQ(h.target.refs(), 0);
}

TEST(Join2, BadArguments) {
  Stats s;
  Countdown a = {0, 1, &s};
  int out = 0;
  cx_join2 j;
  EXPECT_EQ(cx_join2_init(nullptr, Fut(&kCountdownVt, &a), &out,
                          Fut(&kCountdownVt, &a), &out),
            CX_EINVAL);
  // A child without vtable, a child with output but no buffer, a child
  // with state_size but no state, a vtable without poll.
  EXPECT_EQ(
      cx_join2_init(&j, Fut(nullptr, &a), &out, Fut(&kCountdownVt, &a), &out),
      CX_EINVAL);
  EXPECT_EQ(cx_join2_init(&j, Fut(&kCountdownVt, &a), nullptr,
                          Fut(&kCountdownVt, &a), &out),
            CX_EINVAL);
  EXPECT_EQ(cx_join2_init(&j, Fut(&kCountdownVt, nullptr), &out,
                          Fut(&kCountdownVt, &a), &out),
            CX_EINVAL);
  cx_future_vtable no_poll = kCountdownVt;
  no_poll.poll = nullptr;
  EXPECT_EQ(
      cx_join2_init(&j, Fut(&kCountdownVt, &a), &out, Fut(&no_poll, &a), &out),
      CX_EINVAL);
  // Nothing was taken: dropping the failed combinator drops nothing.
  cx_join2_drop(&j);
  cx_join2_drop(nullptr);
  EXPECT_EQ(s.drops, 0);
  cx_join2 zero;
  std::memset(&zero, 0, sizeof zero);
  cx_join2_drop(&zero);
}

// ---- join_all
// -----------------------------------------------------------------

TEST(JoinAll, WaitsForEveryChildAndClearsThem) {
  Harness h;
  constexpr int kN = 5;
  Stats st[kN];
  Countdown c[kN];
  cx_future f[kN];
  int out[kN];
  void *o[kN];
  for (int i = 0; i < kN; i++) {
    c[i] = Countdown{(i * 3) % kN, 10 + i, &st[i]};
    f[i] = Fut(&kCountdownVt, &c[i]);
    o[i] = &out[i];
  }
  cx_join_all j;
  ASSERT_EQ(cx_join_all_init(&j, f, o, kN), CX_OK);
  EXPECT_EQ(cx_join_all_remaining(&j), 5u);
  int polls = 0;
  while (cx_join_all_poll(&j, &h.cx) == CX_PENDING) {
    polls++;
    ASSERT_LT(polls, 10);
  }
  EXPECT_EQ(polls, 4); /* the slowest needs 4 pending polls */
  EXPECT_EQ(cx_join_all_remaining(&j), 0u);
  for (int i = 0; i < kN; i++) {
    EXPECT_EQ(out[i], 10 + i);
    EXPECT_EQ(f[i].vtable, nullptr) << i;
    EXPECT_EQ(st[i].drops, 1);
    EXPECT_EQ(st[i].polls, (i * 3) % kN + 1);
  }
  cx_join_all_drop(&j);
  for (int i = 0; i < kN; i++) EXPECT_EQ(st[i].drops, 1);
}

TEST(JoinAll, EmptyIsReadyAndOutputsMayBeNullWithoutOutputs) {
  Harness h;
  cx_join_all j;
  ASSERT_EQ(cx_join_all_init(&j, nullptr, nullptr, 0), CX_OK);
  EXPECT_EQ(cx_join_all_poll(&j, &h.cx), CX_READY);
  cx_join_all_drop(&j);

  // Children without output: no outputs array needed.
  cx_future_vtable no_out = kNeverVt;
  no_out.output_size = 0;
  Stats s;
  Never n = {{nullptr, nullptr}, &s};
  cx_future f[1] = {Fut(&no_out, &n)};
  ASSERT_EQ(cx_join_all_init(&j, f, nullptr, 1), CX_OK);
  EXPECT_EQ(cx_join_all_poll(&j, &h.cx), CX_PENDING);
  cx_join_all_drop(&j);
  EXPECT_EQ(s.drops, 1);
  EXPECT_EQ(h.target.refs(), 0);
}

TEST(JoinAll, BadArguments) {
  Countdown c = {0, 0, nullptr};
  cx_future f[2] = {Fut(&kCountdownVt, &c), Fut(nullptr, nullptr)};
  int out[2];
  void *o[2] = {&out[0], &out[1]};
  cx_join_all j;
  EXPECT_EQ(cx_join_all_init(nullptr, f, o, 1), CX_EINVAL);
  EXPECT_EQ(cx_join_all_init(&j, nullptr, o, 2), CX_EINVAL);
  EXPECT_EQ(cx_join_all_init(&j, f, o, 2), CX_EINVAL);       /* f[1] bad */
  EXPECT_EQ(cx_join_all_init(&j, f, nullptr, 1), CX_EINVAL); /* output */
  cx_join_all_drop(&j);
  cx_join_all_drop(nullptr);
}

// ---- select
// -------------------------------------------------------------------

TEST(Select, FirstToCompleteWinsAndLosersAreDropped) {
  Harness h;
  Stats s0, s1, s2;
  Never n = {{nullptr, nullptr}, &s0};
  Countdown slow = {3, 1, &s1}, fast = {1, 2, &s2};
  cx_future f[3] = {Fut(&kNeverVt, &n), Fut(&kCountdownVt, &slow),
                    Fut(&kCountdownVt, &fast)};
  int out[3] = {0, 0, 0};
  void *o[3] = {&out[0], &out[1], &out[2]};
  cx_select s;
  ASSERT_EQ(cx_select_init(&s, f, o, 3), CX_OK);
  size_t winner = 99;
  EXPECT_EQ(cx_select_poll(&s, &h.cx, &winner), CX_PENDING);
  EXPECT_EQ(h.target.refs(), 1); /* the Never holds a clone */
  EXPECT_EQ(cx_select_poll(&s, &h.cx, &winner), CX_READY);
  EXPECT_EQ(winner, 2u);
  EXPECT_EQ(out[2], 2);
  EXPECT_EQ(out[1], 0); /* losers produce nothing */
  EXPECT_EQ(s0.drops, 1);
  EXPECT_EQ(s1.drops, 1);
  EXPECT_EQ(s2.drops, 1);
  EXPECT_EQ(h.target.refs(), 0); /* the loser's waker went with it */
  cx_select_drop(&s);
  EXPECT_EQ(s0.drops + s1.drops + s2.drops, 3);
  // Polled again after the end: same answer, nothing else.
  winner = 99;
  EXPECT_EQ(cx_select_poll(&s, &h.cx, &winner), CX_READY);
  EXPECT_EQ(winner, 2u);
}

TEST(Select, LowestIndexWinsWhenSeveralAreReady) {
  Harness h;
  Stats s0, s1;
  Countdown a = {0, 1, &s0}, b = {0, 2, &s1};
  cx_future f[2] = {Fut(&kCountdownVt, &a), Fut(&kCountdownVt, &b)};
  int out[2] = {0, 0};
  void *o[2] = {&out[0], &out[1]};
  cx_select s;
  ASSERT_EQ(cx_select_init(&s, f, o, 2), CX_OK);
  size_t winner = 99;
  EXPECT_EQ(cx_select_poll(&s, &h.cx, &winner), CX_READY);
  EXPECT_EQ(winner, 0u);
  EXPECT_EQ(s1.polls, 0); /* never polled, */
  EXPECT_EQ(s1.drops, 1); /* still dropped */
}

TEST(Select, LosingSleepsAreCancelled) {
  Harness h;
  cx_sleep a, b, c;
  cx_sleep_init_for(&a, 10 * kMs);
  cx_sleep_init_for(&b, kMs);
  cx_sleep_init_for(&c, CX_NSEC_PER_SEC);
  int r[3] = {-1, -1, -1};
  cx_future f[3] = {Fut(&cx_sleep_vtable, &a), Fut(&cx_sleep_vtable, &b),
                    Fut(&cx_sleep_vtable, &c)};
  void *o[3] = {&r[0], &r[1], &r[2]};
  cx_select s;
  ASSERT_EQ(cx_select_init(&s, f, o, 3), CX_OK);
  EXPECT_EQ(cx_select_poll(&s, &h.cx, nullptr), CX_PENDING);
  EXPECT_EQ(cx_timers_count(&h.timers), 3u);
  EXPECT_EQ(h.target.refs(), 3);
  h.Advance(kMs);
  size_t winner = 99;
  EXPECT_EQ(cx_select_poll(&s, &h.cx, &winner), CX_READY);
  EXPECT_EQ(winner, 1u);
  EXPECT_EQ(cx_timers_count(&h.timers), 0u);
  EXPECT_EQ(h.target.refs(), 0);
  cx_select_drop(&s);
}

TEST(Select, DropBeforeCompletionDropsEveryChildOnce) {
  Harness h;
  Stats s0, s1;
  Never a = {{nullptr, nullptr}, &s0}, b = {{nullptr, nullptr}, &s1};
  cx_future f[2] = {Fut(&kNeverVt, &a), Fut(&kNeverVt, &b)};
  int out[2];
  void *o[2] = {&out[0], &out[1]};
  cx_select s;
  ASSERT_EQ(cx_select_init(&s, f, o, 2), CX_OK);
  EXPECT_EQ(cx_select_poll(&s, &h.cx, nullptr), CX_PENDING);
  cx_select_drop(&s);
  cx_select_drop(&s);
  EXPECT_EQ(s0.drops, 1);
  EXPECT_EQ(s1.drops, 1);
  EXPECT_EQ(h.target.refs(), 0);
}

TEST(Select, BadArguments) {
  Countdown c = {0, 0, nullptr};
  cx_future f[1] = {Fut(&kCountdownVt, &c)};
  int out;
  void *o[1] = {&out};
  cx_select s;
  EXPECT_EQ(cx_select_init(nullptr, f, o, 1), CX_EINVAL);
  EXPECT_EQ(cx_select_init(&s, f, o, 0), CX_EINVAL);
  EXPECT_EQ(cx_select_init(&s, nullptr, o, 1), CX_EINVAL);
  EXPECT_EQ(cx_select_init(&s, f, nullptr, 1), CX_EINVAL);
  cx_select_drop(&s);
  cx_select_drop(nullptr);
}

// ---- and_then
// -----------------------------------------------------------------

struct Chain {
  Countdown second;
  Stats second_stats;
  int error; /* returned by the callback when nonzero */
  bool bad_second;
  int calls = 0;
  int seen = 0;
};

int BuildDouble(void *ctx, void *first_output, cx_future *second) {
  auto *c = static_cast<Chain *>(ctx);
  c->calls++;
  c->seen = *static_cast<int *>(first_output);
  if (c->error) return c->error;
  c->second = Countdown{1, c->seen * 2, &c->second_stats};
  *second = cx_future_of(c->bad_second ? nullptr : &kCountdownVt, &c->second);
  return CX_OK;
}

TEST(AndThen, SecondFutureIsBuiltFromTheFirstOutput) {
  Harness h;
  Stats s1;
  Countdown first = {1, 21, &s1};
  int first_out = 0, second_out = 0;
  Chain chain{};
  cx_and_then a;
  ASSERT_EQ(cx_and_then_init(&a, Fut(&kCountdownVt, &first), &first_out,
                             BuildDouble, &chain, &second_out),
            CX_OK);
  int rc = 99;
  EXPECT_EQ(cx_and_then_poll(&a, &h.cx, &rc), CX_PENDING);
  EXPECT_EQ(chain.calls, 0);
  EXPECT_EQ(cx_and_then_poll(&a, &h.cx, &rc), CX_PENDING);
  EXPECT_EQ(chain.calls, 1);
  EXPECT_EQ(chain.seen, 21);
  EXPECT_EQ(s1.drops, 1);
  EXPECT_EQ(cx_and_then_poll(&a, &h.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_OK);
  EXPECT_EQ(second_out, 42);
  EXPECT_EQ(chain.second_stats.drops, 1);
  cx_and_then_drop(&a);
  EXPECT_EQ(chain.second_stats.drops, 1);
  EXPECT_EQ(s1.drops, 1);
}

TEST(AndThen, CallbackErrorBecomesTheResult) {
  Harness h;
  Countdown first = {0, 5, nullptr};
  int first_out = 0, second_out = 0;
  Chain chain{};
  chain.error = CX_EPIPE;
  cx_and_then a;
  ASSERT_EQ(cx_and_then_init(&a, Fut(&kCountdownVt, &first), &first_out,
                             BuildDouble, &chain, &second_out),
            CX_OK);
  int rc = 0;
  EXPECT_EQ(cx_and_then_poll(&a, &h.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EPIPE);
  EXPECT_EQ(chain.second_stats.drops, 0); /* never built */
  cx_and_then_drop(&a);
}

TEST(AndThen, InvalidSecondFutureGivesEinval) {
  Harness h;
  Countdown first = {0, 5, nullptr};
  int first_out = 0, second_out = 0;
  Chain chain{};
  chain.bad_second = true;
  cx_and_then a;
  ASSERT_EQ(cx_and_then_init(&a, Fut(&kCountdownVt, &first), &first_out,
                             BuildDouble, &chain, &second_out),
            CX_OK);
  int rc = 0;
  EXPECT_EQ(cx_and_then_poll(&a, &h.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);

  // A valid second future with an output but no buffer: EINVAL, and it is
  // dropped (it was handed over).
  Chain chain2{};
  first = Countdown{0, 5, nullptr};
  ASSERT_EQ(cx_and_then_init(&a, Fut(&kCountdownVt, &first), &first_out,
                             BuildDouble, &chain2, nullptr),
            CX_OK);
  EXPECT_EQ(cx_and_then_poll(&a, &h.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);
  EXPECT_EQ(chain2.second_stats.drops, 1);
  EXPECT_EQ(chain2.second_stats.polls, 0);
}

TEST(AndThen, DropInEitherStageDropsThePendingFuture) {
  Harness h;
  Stats s1;
  Never first = {{nullptr, nullptr}, &s1};
  int first_out = 0, second_out = 0;
  Chain chain{};
  cx_and_then a;
  ASSERT_EQ(cx_and_then_init(&a, Fut(&kNeverVt, &first), &first_out,
                             BuildDouble, &chain, &second_out),
            CX_OK);
  EXPECT_EQ(cx_and_then_poll(&a, &h.cx, nullptr), CX_PENDING);
  cx_and_then_drop(&a);
  EXPECT_EQ(s1.drops, 1);
  EXPECT_EQ(h.target.refs(), 0);

  Countdown quick = {0, 3, nullptr};
  ASSERT_EQ(cx_and_then_init(&a, Fut(&kCountdownVt, &quick), &first_out,
                             BuildDouble, &chain, &second_out),
            CX_OK);
  EXPECT_EQ(cx_and_then_poll(&a, &h.cx, nullptr), CX_PENDING); /* 2nd: 1 */
  EXPECT_EQ(chain.second_stats.drops, 0);
  cx_and_then_drop(&a);
  cx_and_then_drop(&a);
  EXPECT_EQ(chain.second_stats.drops, 1);
}

TEST(AndThen, BadArguments) {
  Countdown first = {0, 5, nullptr};
  int out = 0;
  Chain chain{};
  cx_and_then a;
  EXPECT_EQ(cx_and_then_init(nullptr, Fut(&kCountdownVt, &first), &out,
                             BuildDouble, &chain, &out),
            CX_EINVAL);
  EXPECT_EQ(cx_and_then_init(&a, Fut(&kCountdownVt, &first), &out, nullptr,
                             &chain, &out),
            CX_EINVAL);
  EXPECT_EQ(cx_and_then_init(&a, Fut(&kCountdownVt, &first), nullptr,
                             BuildDouble, &chain, &out),
            CX_EINVAL);
  int rc = 0;
  Harness h;
  EXPECT_EQ(cx_and_then_poll(&a, &h.cx, &rc), CX_READY); /* failed init */
  EXPECT_EQ(rc, CX_EINVAL);
  cx_and_then_drop(&a);
  cx_and_then_drop(nullptr);
}

// ---- timeout
// ------------------------------------------------------------------

TEST(Timeout, InnerFinishingFirstCancelsTheTimer) {
  Harness h;
  Stats s;
  Countdown inner = {2, 8, &s};
  int out = 0, rc = 99;
  cx_timeout t;
  ASSERT_EQ(cx_timeout_init(&t, Fut(&kCountdownVt, &inner), &out, 5 * kMs),
            CX_OK);
  EXPECT_EQ(cx_timeout_poll(&t, &h.cx, &rc), CX_PENDING);
  EXPECT_EQ(cx_timers_count(&h.timers), 1u);
  EXPECT_EQ(cx_timeout_poll(&t, &h.cx, &rc), CX_PENDING);
  EXPECT_EQ(cx_timeout_poll(&t, &h.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_OK);
  EXPECT_EQ(out, 8);
  EXPECT_EQ(s.drops, 1);
  EXPECT_EQ(cx_timers_count(&h.timers), 0u);
  EXPECT_EQ(h.target.refs(), 0);
  cx_timeout_drop(&t);
  EXPECT_EQ(s.drops, 1);
}

TEST(Timeout, DeadlineFirstDropsTheInnerFuture) {
  Harness h;
  Stats s;
  Never inner = {{nullptr, nullptr}, &s};
  int out = 0, rc = 99;
  cx_timeout t;
  ASSERT_EQ(cx_timeout_init(&t, Fut(&kNeverVt, &inner), &out, 5 * kMs), CX_OK);
  EXPECT_EQ(cx_timeout_poll(&t, &h.cx, &rc), CX_PENDING);
  h.Advance(4 * kMs);
  EXPECT_EQ(cx_timeout_poll(&t, &h.cx, &rc), CX_PENDING);
  EXPECT_EQ(h.target.woken(), 0);
  h.Advance(kMs);
  EXPECT_EQ(h.target.wakes(), 1); /* the timer fired */
  EXPECT_EQ(cx_timeout_poll(&t, &h.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_ETIMEDOUT);
  EXPECT_EQ(s.drops, 1); /* cancelled at the deadline */
  EXPECT_EQ(h.target.refs(), 0);
  EXPECT_EQ(cx_timers_count(&h.timers), 0u);
  cx_timeout_drop(&t);
  EXPECT_EQ(s.drops, 1);
}

TEST(Timeout, InnerReadyOnTheDeadlinePollWins) {
  Harness h;
  Countdown inner = {1, 4, nullptr};
  int out = 0, rc = 99;
  cx_timeout t;
  ASSERT_EQ(
      cx_timeout_init_until(&t, Fut(&kCountdownVt, &inner), &out, 2 * kMs),
      CX_OK);
  EXPECT_EQ(cx_timeout_poll(&t, &h.cx, &rc), CX_PENDING);
  h.Advance(2 * kMs);
  EXPECT_EQ(cx_timeout_poll(&t, &h.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_OK);
  EXPECT_EQ(out, 4);
}

TEST(Timeout, ZeroDurationTimesOutAPendingFutureAtOnce) {
  Harness h;
  Stats s;
  Never inner = {{nullptr, nullptr}, &s};
  int out = 0, rc = 99;
  cx_timeout t;
  ASSERT_EQ(cx_timeout_init(&t, Fut(&kNeverVt, &inner), &out, 0), CX_OK);
  EXPECT_EQ(cx_timeout_poll(&t, &h.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_ETIMEDOUT);
  EXPECT_EQ(s.polls, 1);
  EXPECT_EQ(s.drops, 1);
  EXPECT_EQ(h.target.refs(), 0);
}

TEST(Timeout, TimerErrorsAreReportedAndInnerDropped) {
  // No timer driver in the context: CX_ENOTSUP.
  CountingWaker target;
  cx_waker w = target.Borrowed();
  cx_context cx = cx_context_from_waker(&w);
  Stats s;
  Never inner = {{nullptr, nullptr}, &s};
  int out = 0, rc = 99;
  cx_timeout t;
  ASSERT_EQ(cx_timeout_init(&t, Fut(&kNeverVt, &inner), &out, kMs), CX_OK);
  EXPECT_EQ(cx_timeout_poll(&t, &cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_ENOTSUP);
  EXPECT_EQ(s.drops, 1);
  EXPECT_EQ(target.refs(), 0);

  // The waker refuses to be cloned (the timer cannot register).
  Harness h;
  h.target.set_clone_error(CX_EOVERFLOW);
  cx_sleep dummy;
  cx_sleep_init_for(&dummy, kMs);
  ASSERT_EQ(cx_timeout_init(&t, Fut(&cx_sleep_vtable, &dummy), &out, kMs),
            CX_OK);
  EXPECT_EQ(cx_timeout_poll(&t, &h.cx, &rc), CX_READY);
  EXPECT_EQ(out, CX_EOVERFLOW); /* the inner sleep failed the same way... */
  EXPECT_EQ(rc, CX_OK);         /* ...and, being first, it "completed" */
  EXPECT_EQ(cx_timers_count(&h.timers), 0u);
}

TEST(Timeout, BadArguments) {
  Countdown c = {0, 0, nullptr};
  int out;
  cx_timeout t;
  EXPECT_EQ(cx_timeout_init(nullptr, Fut(&kCountdownVt, &c), &out, 1),
            CX_EINVAL);
  EXPECT_EQ(cx_timeout_init(&t, Fut(nullptr, &c), &out, 1), CX_EINVAL);
  EXPECT_EQ(cx_timeout_init_until(&t, Fut(&kCountdownVt, &c), nullptr, 1),
            CX_EINVAL);
  cx_timeout_drop(&t);
  cx_timeout_drop(nullptr);
  cx_timeout zero;
  std::memset(&zero, 0, sizeof zero);
  cx_timeout_drop(&zero);
}

// ---- combinators of combinators
// ---------------------------------------------------

TEST(Nesting, TimeoutOfSelectOfJoin2ThroughVtables) {
  Harness h;
  Stats sa, sb, sn;
  Countdown a = {1, 1, &sa}, b = {2, 2, &sb};
  int oa = 0, ob = 0;
  cx_join2 j;
  ASSERT_EQ(cx_join2_init(&j, Fut(&kCountdownVt, &a), &oa,
                          Fut(&kCountdownVt, &b), &ob),
            CX_OK);
  Never n = {{nullptr, nullptr}, &sn};
  int on = 0;
  cx_future f[2] = {Fut(&kNeverVt, &n), Fut(&cx_join2_vtable, &j)};
  void *o[2] = {&on, nullptr};
  cx_select s;
  ASSERT_EQ(cx_select_init(&s, f, o, 2), CX_OK);
  size_t winner = 99;
  cx_timeout t;
  ASSERT_EQ(cx_timeout_init(&t, Fut(&cx_select_vtable, &s), &winner, kMs),
            CX_OK);
  int rc = 99;
  int polls = 0;
  while (cx_timeout_poll(&t, &h.cx, &rc) == CX_PENDING) polls++;
  EXPECT_EQ(polls, 2);
  EXPECT_EQ(rc, CX_OK);
  EXPECT_EQ(winner, 1u);
  EXPECT_EQ(oa + ob, 3);
  EXPECT_EQ(sn.drops, 1);
  EXPECT_EQ(sa.drops, 1);
  EXPECT_EQ(sb.drops, 1);
  EXPECT_EQ(h.target.refs(), 0);
  EXPECT_EQ(cx_timers_count(&h.timers), 0u);
  cx_timeout_drop(&t);
}

TEST(Combinators, AllocateNothing) {
  ScopedCountingAllocator alloc;
  Harness h;
  cx_sleep s1, s2;
  cx_sleep_init_for(&s1, kMs);
  cx_sleep_init_for(&s2, 2 * kMs);
  int r1, r2;
  cx_future f[2] = {Fut(&cx_sleep_vtable, &s1), Fut(&cx_sleep_vtable, &s2)};
  void *o[2] = {&r1, &r2};
  cx_join_all j;
  ASSERT_EQ(cx_join_all_init(&j, f, o, 2), CX_OK);
  cx_timeout t;
  ASSERT_EQ(cx_timeout_init(&t, Fut(&cx_join_all_vtable, &j), nullptr,
                            CX_NSEC_PER_SEC),
            CX_OK);
  int rc;
  while (cx_timeout_poll(&t, &h.cx, &rc) == CX_PENDING) h.Advance(kMs);
  EXPECT_EQ(rc, CX_OK);
  EXPECT_EQ(alloc.attempts(), 0u);
}

// ---- on an executor
// --------------------------------------------------------------

// A coroutine that selects among three sleeps and a never-ready future and
// reports the executor's timer count right after the select.
struct SleepRace {
  cx_coro co;
  cx_sleep s[3];
  Never never;
  Stats *never_stats;
  int r[4];
  cx_future f[4];
  void *o[4];
  cx_select sel;
  size_t winner;
  uint64_t timers_after;
};
cx_poll SleepRacePoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<SleepRace *>(self);
  CX_CORO_BEGIN(&f->co);
  cx_sleep_init_for(&f->s[0], 10 * kMs);
  cx_sleep_init_for(&f->s[1], 2 * kMs);
  cx_sleep_init_for(&f->s[2], CX_NSEC_PER_SEC);
  f->never = Never{{nullptr, nullptr}, f->never_stats};
  for (int i = 0; i < 3; i++)
    f->f[i] = cx_future_of(&cx_sleep_vtable, &f->s[i]);
  f->f[3] = cx_future_of(&kNeverVt, &f->never);
  for (int i = 0; i < 4; i++) f->o[i] = &f->r[i];
  cx_select_init(&f->sel, f->f, f->o, 4);
  CX_AWAIT(&f->co, cx_select_poll(&f->sel, cx, &f->winner));
  {
    cx_executor_stats st;
    cx_executor_get_stats(cx->executor, &st);
    f->timers_after = st.timers;
  }
  CX_RETURN(&f->co, static_cast<int *>(out), static_cast<int>(f->winner));
  CX_CORO_END(&f->co);
}
void SleepRaceDrop(void *self) {
  cx_select_drop(&static_cast<SleepRace *>(self)->sel);
}
struct SleepRaceProbe {
  SleepRace *race;
};
cx_poll SleepRaceProbePoll(void *self, cx_context *cx, void *out) {
  return SleepRacePoll(static_cast<SleepRaceProbe *>(self)->race, cx, out);
}
void SleepRaceProbeDrop(void *self) {
  SleepRaceDrop(static_cast<SleepRaceProbe *>(self)->race);
}
const cx_future_vtable kSleepRaceProbeVt = {
    .poll = SleepRaceProbePoll,
    .drop = SleepRaceProbeDrop,
    .state_size = sizeof(SleepRaceProbe),
    .state_align = alignof(SleepRaceProbe),
    .output_size = sizeof(int)};

TEST(OnExecutor, SelectCancelsTheLosersTimers) {
  ScopedCountingAllocator alloc;
  ManualClock clock;
  cx_executor_options opts = {clock.fn(), clock.ctx()};
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(&opts, &ex), CX_OK);
  Stats never_stats;
  SleepRace race;
  std::memset(&race, 0, sizeof race);
  race.never_stats = &never_stats;
  SleepRaceProbe probe = {&race};
  cx_join_handle *h;
  ASSERT_EQ(cx_spawn(ex, &kSleepRaceProbeVt, &probe, &h), CX_OK);
  cx_executor_run_until_idle(ex);
  cx_executor_stats st;
  cx_executor_get_stats(ex, &st);
  EXPECT_EQ(st.timers, 3u);
  while (!cx_join_handle_is_finished(h)) {
    clock.Advance(kMs);
    cx_executor_run_until_idle(ex);
  }
  int winner = -1;
  ASSERT_EQ(cx_join_handle_try_join(h, &winner, sizeof winner), CX_OK);
  EXPECT_EQ(winner, 1);
  EXPECT_EQ(race.timers_after, 0u); /* cancelled by the select itself */
  EXPECT_EQ(never_stats.drops, 1);
  cx_executor_get_stats(ex, &st);
  EXPECT_EQ(st.timers, 0u);
  cx_join_handle_detach(h);
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
}

// Fan-out / fan-in: spawn N tasks, join_all over their join futures.
struct FanOut {
  cx_coro co;
  int n;
  Countdown work[8];
  cx_join_future jf[8];
  cx_future f[8];
  int rc[8];
  int out[8];
  void *o[8];
  cx_join_all all;
  int i, sum;
};
cx_poll FanOutPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<FanOut *>(self);
  CX_CORO_BEGIN(&f->co);
  for (f->i = 0; f->i < f->n; f->i++) {
    cx_join_handle *h = nullptr;
    f->work[f->i] = Countdown{f->i % 3, f->i * f->i, nullptr};
    int rc = cx_spawn(cx->executor, &kCountdownVt, &f->work[f->i], &h);
    if (rc != CX_OK) CX_RETURN(&f->co, static_cast<int *>(out), rc);
    cx_join_future_init(&f->jf[f->i], h, &f->out[f->i], sizeof(int), true);
    f->f[f->i] = cx_future_of(&cx_join_future_vtable, &f->jf[f->i]);
    f->o[f->i] = &f->rc[f->i];
  }
  cx_join_all_init(&f->all, f->f, f->o, static_cast<size_t>(f->n));
  CX_AWAIT(&f->co, cx_join_all_poll(&f->all, cx));
  for (f->i = 0; f->i < f->n; f->i++) {
    if (f->rc[f->i] != CX_OK)
      CX_RETURN(&f->co, static_cast<int *>(out), f->rc[f->i]);
    f->sum += f->out[f->i];
  }
  CX_RETURN(&f->co, static_cast<int *>(out), f->sum);
  CX_CORO_END(&f->co);
}
void FanOutDrop(void *self) {
  auto *f = static_cast<FanOut *>(self);
  cx_join_all_drop(&f->all);
}
const cx_future_vtable kFanOutVt = {.poll = FanOutPoll,
                                    .drop = FanOutDrop,
                                    .state_size = sizeof(FanOut),
                                    .state_align = alignof(FanOut),
                                    .output_size = sizeof(int)};

TEST(OnExecutor, FanOutFanInWithJoinAll) {
  ScopedCountingAllocator alloc;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  FanOut fo;
  std::memset(&fo, 0, sizeof fo);
  fo.n = 8;
  int sum = -1;
  ASSERT_EQ(cx_executor_block_on(ex, &kFanOutVt, &fo, &sum, sizeof sum), CX_OK);
  EXPECT_EQ(sum, 0 + 1 + 4 + 9 + 16 + 25 + 36 + 49);
  cx_executor_stats st;
  cx_executor_get_stats(ex, &st);
  EXPECT_EQ(st.completed, 9u);
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(OnExecutor, CombinatorSpawnedAsATask) {
  // Children and outputs outside the task: they must stay put.
  static Countdown c[3];
  static cx_future f[3];
  static int out[3];
  static void *o[3];
  for (int i = 0; i < 3; i++) {
    c[i] = Countdown{i, i + 1, nullptr};
    f[i] = Fut(&kCountdownVt, &c[i]);
    o[i] = &out[i];
  }
  cx_join_all j;
  ASSERT_EQ(cx_join_all_init(&j, f, o, 3), CX_OK);
  ASSERT_EQ(cx_block_on(&cx_join_all_vtable, &j, nullptr, 0), CX_OK);
  EXPECT_EQ(out[0] + out[1] + out[2], 6);
}

// ---- NULL arguments: the whole surface
// --------------------------------------- Polls given NULL return CX_READY at
// once (CX_EINVAL in an int result, SIZE_MAX as select's winner), poll nothing
// and leave the state as it was; drops are no-ops; inits return CX_EINVAL.
// Before, the polls crashed.

TEST(CombinatorsNull, EveryFunctionAndVtableAcceptsNull) {
  Harness h;
  cx_context no_waker = {nullptr, nullptr, &h.timers, nullptr};
  Stats st;
  Countdown a = {1, 10, &st}, b = {1, 20, &st};
  int oa = 0, ob = 0, rc = 0;
  size_t winner = 0;

  // join2
  cx_join2 j2;
  ASSERT_EQ(cx_join2_init(&j2, Fut(&kCountdownVt, &a), &oa,
                          Fut(&kCountdownVt, &b), &ob),
            CX_OK);
  EXPECT_EQ(cx_join2_poll(nullptr, &h.cx), CX_READY);
  EXPECT_EQ(cx_join2_poll(&j2, nullptr), CX_READY);
  EXPECT_EQ(cx_join2_poll(&j2, &no_waker), CX_READY);
  EXPECT_EQ(cx_join2_vtable.poll(nullptr, &h.cx, nullptr), CX_READY);
  EXPECT_EQ(cx_join2_vtable.poll(&j2, nullptr, nullptr), CX_READY);
  cx_join2_vtable.drop(nullptr);
  cx_join2_drop(nullptr);
  EXPECT_EQ(st.polls, 0);                            // nothing was polled
  EXPECT_EQ(cx_join2_poll(&j2, &h.cx), CX_PENDING);  // j2 is intact
  EXPECT_EQ(cx_join2_poll(&j2, &h.cx), CX_READY);
  EXPECT_EQ(oa + ob, 30);

  // join_all
  a = {1, 10, &st};
  st = Stats{};
  cx_future fs[1] = {Fut(&kCountdownVt, &a)};
  void *os[1] = {&oa};
  cx_join_all ja;
  ASSERT_EQ(cx_join_all_init(&ja, fs, os, 1), CX_OK);
  EXPECT_EQ(cx_join_all_poll(nullptr, &h.cx), CX_READY);
  EXPECT_EQ(cx_join_all_poll(&ja, nullptr), CX_READY);
  EXPECT_EQ(cx_join_all_poll(&ja, &no_waker), CX_READY);
  EXPECT_EQ(cx_join_all_vtable.poll(nullptr, &h.cx, nullptr), CX_READY);
  EXPECT_EQ(cx_join_all_vtable.poll(&ja, nullptr, nullptr), CX_READY);
  cx_join_all_vtable.drop(nullptr);
  cx_join_all_drop(nullptr);
  EXPECT_EQ(cx_join_all_remaining(nullptr), 0u);
  EXPECT_EQ(cx_join_all_remaining(&ja), 1u);
  EXPECT_EQ(st.polls, 0);
  cx_join_all_drop(&ja);
  EXPECT_EQ(st.drops, 1);

  // select
  a = {1, 10, &st};
  st = Stats{};
  cx_future fsel[1] = {Fut(&kCountdownVt, &a)};
  cx_select sel;
  ASSERT_EQ(cx_select_init(&sel, fsel, os, 1), CX_OK);
  cxtest::ExpectPollRejectsNull(cx_select_poll, cx_select_vtable, &sel, &h.cx,
                                SIZE_MAX);
  cx_select_drop(nullptr);
  EXPECT_EQ(st.polls, 0);
  EXPECT_EQ(cx_select_poll(&sel, &h.cx, &winner), CX_PENDING);  // intact
  cx_select_drop(&sel);

  // and_then
  a = {0, 10, &st};
  cx_and_then at;
  ASSERT_EQ(cx_and_then_init(
                &at, Fut(&kCountdownVt, &a), &oa,
                [](void *, void *, cx_future *) -> int { return CX_ECANCELED; },
                nullptr, nullptr),
            CX_OK);
  st = Stats{};
  cxtest::ExpectPollRejectsNull(cx_and_then_poll, cx_and_then_vtable, &at,
                                &h.cx, int{CX_EINVAL});
  cx_and_then_drop(nullptr);
  EXPECT_EQ(st.polls, 0);
  EXPECT_EQ(cx_and_then_poll(&at, &h.cx, &rc), CX_READY);  // intact
  EXPECT_EQ(rc, CX_ECANCELED);
  cx_and_then_drop(&at);

  // timeout
  Never n = {{nullptr, nullptr}, &st};
  cx_timeout to;
  EXPECT_EQ(cx_timeout_init(nullptr, Fut(&kNeverVt, &n), &oa, kMs), CX_EINVAL);
  EXPECT_EQ(cx_timeout_init_until(nullptr, Fut(&kNeverVt, &n), &oa, kMs),
            CX_EINVAL);
  ASSERT_EQ(cx_timeout_init(&to, Fut(&kNeverVt, &n), &oa, kMs), CX_OK);
  st = Stats{};
  cxtest::ExpectPollRejectsNull(cx_timeout_poll, cx_timeout_vtable, &to, &h.cx,
                                int{CX_EINVAL});
  cx_timeout_drop(nullptr);
  EXPECT_EQ(st.polls, 0);
  EXPECT_EQ(cx_timeout_poll(&to, &h.cx, &rc), CX_PENDING);  // intact
  h.Advance(kMs);
  EXPECT_EQ(cx_timeout_poll(&to, &h.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_ETIMEDOUT);
  cx_timeout_drop(&to);
  EXPECT_EQ(st.drops, 1);
  cx_waker_drop(&n.waker);
}

}  // namespace
