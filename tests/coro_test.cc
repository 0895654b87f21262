// executor/coro.h: futures written as coroutines. A coroutine that awaits a
// dozen different kinds of futures in a row (sleep, channel recv and send,
// a join handle as a leaf, a join future, join2, select, and_then, timeout
// around another coroutine, oneshot, yield, join_all); yield; return values;
// nested coroutines through CX_AWAIT_FUTURE; cancellation in the middle of
// a coroutine (its state is dropped, nothing leaks).
//
// The coroutines are written in C++ here, which also checks that the macros
// compile as C++ (their main users write C: see examples/).
//
// Misuse (an await inside a switch of one's own, a top-level break, a poll
// after the end) is trapped by the macros and reported through
// CX_CORO_ON_MISUSE; this file defines that hook to record the reports
// instead of the default (stderr, then abort() in debug builds), so that the
// tests can check them. It must be defined before the first cexec header.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

struct cx_coro;
namespace misuse {
int count;      // reports so far
int last_kind;  // the last report's cx_coro_misuse_kind
const char *last_file;
int last_line;
void Record(const cx_coro *co, int kind, const char *file, int line);
}  // namespace misuse
#define CX_CORO_ON_MISUSE(co, kind, file, line) \
  misuse::Record((co), (kind), (file), (line))

#include "executor/cexec.h"
#include "executor/debug.h"
#include "tests/testutil.h"

namespace misuse {
void Record(const cx_coro *co, int kind, const char *file, int line) {
  (void)co;
  count++;
  last_kind = kind;
  last_file = file;
  last_line = line;
}
// Resets the record; every test that expects no misuse checks count == 0.
void Reset() {
  count = 0;
  last_kind = CX_CORO_MISUSE_NONE;
  last_file = nullptr;
  last_line = 0;
}
}  // namespace misuse

namespace {

using cxtest::Countdown;
using cxtest::kCountdownVt;
using cxtest::kNeverVt;
using cxtest::ManualClock;
using cxtest::Never;
using cxtest::ScopedCountingAllocator;
using cxtest::Stats;

constexpr uint64_t kMs = CX_NSEC_PER_MSEC;

// Runs whatever is ready; when nothing is, moves the manual clock 1 ms.
// Returns CX_OK once h finished, CX_ETIMEDOUT after max_ms virtual ms.
int DriveUntil(cx_executor *ex, ManualClock &clock, cx_join_handle *h,
               int max_ms = 100000) {
  for (int i = 0; i < max_ms; i++) {
    int n = cx_executor_run_until_idle(ex);
    if (n < 0) return n;
    if (cx_join_handle_is_finished(h)) return CX_OK;
    clock.Advance(kMs);
  }
  return CX_ETIMEDOUT;
}

cx_executor *NewExecutor(ManualClock &clock) {
  cx_executor_options opts = {clock.fn(), clock.ctx()};
  cx_executor *ex = nullptr;
  EXPECT_EQ(cx_executor_create(&opts, &ex), CX_OK);
  return ex;
}

// ---- small futures used below -----------------------------------------------

int SpawnCountdown(cx_context *cx, int remaining, int value,
                   cx_join_handle **h) {
  Countdown c = {remaining, value, nullptr};
  return cx_spawn(cx->executor, &kCountdownVt, &c, h);
}

// A coroutine: sleeps 1 ms twice, returns 77.
struct Inner {
  cx_coro co;
  cx_sleep nap;
  int i, rc;
  Stats *stats;
};

cx_poll InnerPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<Inner *>(self);
  if (f->stats) f->stats->polls++;
  CX_CORO_BEGIN(&f->co);
  for (f->i = 0; f->i < 2; f->i++) {
    cx_sleep_init_for(&f->nap, kMs);
    CX_AWAIT(&f->co, cx_sleep_poll(&f->nap, cx, &f->rc));
  }
  CX_RETURN(&f->co, static_cast<int *>(out), 77);
  CX_CORO_END(&f->co);
}
void InnerDrop(void *self) {
  auto *f = static_cast<Inner *>(self);
  if (f->stats) f->stats->drops++;
  cx_sleep_drop(&f->nap);
  cx_coro_drop(&f->co);
}
const cx_future_vtable kInnerVt = {.poll = InnerPoll,
                                   .drop = InnerDrop,
                                   .state_size = sizeof(Inner),
                                   .state_align = alignof(Inner),
                                   .output_size = sizeof(int)};

// Sleeps 1 ms, then sends `value` on a oneshot it owns.
struct DelayedOneshot {
  cx_coro co;
  cx_sleep nap;
  int rc;
  int value;
  cx_oneshot_tx *tx;
};

cx_poll DelayedOneshotPoll(void *self, cx_context *cx, void *out) {
  (void)out;
  auto *f = static_cast<DelayedOneshot *>(self);
  CX_CORO_BEGIN(&f->co);
  cx_sleep_init_for(&f->nap, kMs);
  CX_AWAIT(&f->co, cx_sleep_poll(&f->nap, cx, &f->rc));
  cx_oneshot_send(f->tx, &f->value);
  f->tx = nullptr;
  CX_CORO_END(&f->co);
}
void DelayedOneshotDrop(void *self) {
  auto *f = static_cast<DelayedOneshot *>(self);
  cx_sleep_drop(&f->nap);
  cx_oneshot_tx_drop(f->tx);
}
const cx_future_vtable kDelayedOneshotVt = {
    .poll = DelayedOneshotPoll,
    .drop = DelayedOneshotDrop,
    .state_size = sizeof(DelayedOneshot),
    .state_align = alignof(DelayedOneshot),
    .output_size = 0};

// Owns a receiver: sleeps 2 ms, then receives until the channel
// disconnects. Output: how many items it got.
struct Drainer {
  cx_coro co;
  cx_sleep nap;
  cx_achan_rx *rx;
  cx_achan_recv recv;
  int item, rc, count;
};

cx_poll DrainerPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<Drainer *>(self);
  CX_CORO_BEGIN(&f->co);
  cx_sleep_init_for(&f->nap, 2 * kMs);
  CX_AWAIT(&f->co, cx_sleep_poll(&f->nap, cx, &f->rc));
  for (;;) {
    cx_achan_recv_init(&f->recv, f->rx, &f->item);
    CX_AWAIT(&f->co, cx_achan_recv_poll(&f->recv, cx, &f->rc));
    if (f->rc != CX_OK) break;
    f->count++;
  }
  CX_RETURN(&f->co, static_cast<int *>(out), f->count);
  CX_CORO_END(&f->co);
}
void DrainerDrop(void *self) {
  auto *f = static_cast<Drainer *>(self);
  cx_sleep_drop(&f->nap);
  cx_achan_recv_drop(&f->recv);
  cx_achan_rx_drop(f->rx);
}
const cx_future_vtable kDrainerVt = {.poll = DrainerPoll,
                                     .drop = DrainerDrop,
                                     .state_size = sizeof(Drainer),
                                     .state_align = alignof(Drainer),
                                     .output_size = sizeof(int)};

// ---- the coroutine that awaits everything --------------------------------

struct Ten {
  cx_coro co;
  int step;
  int log[16];
  int rc;
  uint64_t timers_after_select;
  // Owned channel ends.
  cx_achan_rx *in_rx;
  cx_achan_tx *out_tx;
  cx_oneshot_rx *os_rx;
  cx_oneshot_tx *os_tx;
  // 1. sleep
  cx_sleep nap;
  // 2, 3. channel recv and send
  cx_achan_recv recv;
  cx_achan_send send;
  int item;
  // 4, 5. join handle as a leaf, join future
  cx_join_handle *h1, *h2;
  int child_out;
  cx_join_future jf;
  // 6. join2
  cx_sleep s1, s2;
  int r1, r2;
  cx_join2 j2;
  // 7. select
  cx_sleep long_nap;
  cx_achan_recv sel_recv;
  int r_long, r_sel, sel_item;
  cx_future sel_f[2];
  void *sel_o[2];
  size_t winner;
  cx_select sel;
  // 8. and_then
  cx_sleep at_nap;
  int at_r, at_item, at_recv_rc;
  cx_achan_recv at_recv;
  cx_and_then at;
  // 9. timeout around a coroutine
  Inner inner;
  int inner_out;
  cx_timeout to;
  // 10. oneshot
  cx_oneshot_recv os_recv;
  int os_item;
  // 12. join_all
  Countdown cd[3];
  cx_future all_f[3];
  int all_out[3];
  void *all_o[3];
  cx_join_all all;
};

int TenBuildRecv(void *ctx, void *first_output, cx_future *second) {
  auto *f = static_cast<Ten *>(ctx);
  int slept = *static_cast<int *>(first_output);
  if (slept != CX_OK) return slept;
  cx_achan_recv_init(&f->at_recv, f->in_rx, &f->at_item);
  *second = cx_future_of(&cx_achan_recv_vtable, &f->at_recv);
  return CX_OK;
}

cx_poll TenPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<Ten *>(self);
  CX_CORO_BEGIN(&f->co);

  // 1. A sleep, awaited through its leaf poll function.
  cx_sleep_init_for(&f->nap, 2 * kMs);
  CX_AWAIT(&f->co, cx_sleep_poll(&f->nap, cx, &f->rc));
  f->log[f->step++] = f->rc == CX_OK ? 1 : f->rc;

  // 2. A channel receive (an item is waiting).
  cx_achan_recv_init(&f->recv, f->in_rx, &f->item);
  CX_AWAIT(&f->co, cx_achan_recv_poll(&f->recv, cx, &f->rc));
  f->log[f->step++] = f->rc == CX_OK ? f->item : f->rc;

  // 3. A channel send into a full channel that the Drainer empties later.
  f->item = 500;
  cx_achan_send_init(&f->send, f->out_tx, &f->item);
  CX_AWAIT(&f->co, cx_achan_send_poll(&f->send, cx, &f->rc));
  f->log[f->step++] = f->rc == CX_OK ? 3 : f->rc;

  // 4. Another task's output, through cx_join_handle_poll.
  f->rc = SpawnCountdown(cx, 3, 44, &f->h1);
  if (f->rc != CX_OK) CX_RETURN(&f->co, static_cast<int *>(out), f->rc);
  CX_AWAIT(&f->co,
           cx_join_handle_poll(f->h1, cx, &f->rc, &f->child_out, sizeof(int)));
  f->log[f->step++] = f->rc == CX_OK ? f->child_out : f->rc;
  cx_join_handle_detach(f->h1);
  f->h1 = nullptr;

  // 5. Another task's output, through a join future (it owns the handle).
  f->rc = SpawnCountdown(cx, 5, 55, &f->h2);
  if (f->rc != CX_OK) CX_RETURN(&f->co, static_cast<int *>(out), f->rc);
  cx_join_future_init(&f->jf, f->h2, &f->child_out, sizeof(int), true);
  f->h2 = nullptr;
  CX_AWAIT_FUTURE(&f->co, cx, cx_future_of(&cx_join_future_vtable, &f->jf),
                  &f->rc);
  f->log[f->step++] = f->rc == CX_OK ? f->child_out : f->rc;

  // 6. Two sleeps joined.
  cx_sleep_init_for(&f->s1, kMs);
  cx_sleep_init_for(&f->s2, 3 * kMs);
  cx_join2_init(&f->j2, cx_future_of(&cx_sleep_vtable, &f->s1), &f->r1,
                cx_future_of(&cx_sleep_vtable, &f->s2), &f->r2);
  CX_AWAIT(&f->co, cx_join2_poll(&f->j2, cx));
  f->log[f->step++] = (f->r1 == CX_OK && f->r2 == CX_OK) ? 6 : -6;

  // 7. Select: a 1 s sleep against a receive that is ready.
  cx_sleep_init_for(&f->long_nap, CX_NSEC_PER_SEC);
  cx_achan_recv_init(&f->sel_recv, f->in_rx, &f->sel_item);
  f->sel_f[0] = cx_future_of(&cx_sleep_vtable, &f->long_nap);
  f->sel_o[0] = &f->r_long;
  f->sel_f[1] = cx_future_of(&cx_achan_recv_vtable, &f->sel_recv);
  f->sel_o[1] = &f->r_sel;
  cx_select_init(&f->sel, f->sel_f, f->sel_o, 2);
  CX_AWAIT(&f->co, cx_select_poll(&f->sel, cx, &f->winner));
  f->log[f->step++] = static_cast<int>(f->winner) * 1000 + f->sel_item;
  {
    cx_executor_stats st;
    cx_executor_get_stats(cx->executor, &st);
    f->timers_after_select = st.timers;
  }

  // 8. and_then: a sleep, then a receive built from the sleep's result.
  cx_sleep_init_for(&f->at_nap, kMs);
  cx_and_then_init(&f->at, cx_future_of(&cx_sleep_vtable, &f->at_nap), &f->at_r,
                   TenBuildRecv, f, &f->at_recv_rc);
  CX_AWAIT(&f->co, cx_and_then_poll(&f->at, cx, &f->rc));
  f->log[f->step++] = f->rc == CX_OK ? f->at_item : f->rc;

  // 9. A user coroutine under a timeout.
  std::memset(&f->inner, 0, sizeof f->inner);
  cx_timeout_init(&f->to, cx_future_of(&kInnerVt, &f->inner), &f->inner_out,
                  CX_NSEC_PER_SEC);
  CX_AWAIT(&f->co, cx_timeout_poll(&f->to, cx, &f->rc));
  f->log[f->step++] = f->rc == CX_OK ? f->inner_out : f->rc;

  // 10. A oneshot, filled by a task spawned here.
  {
    DelayedOneshot d;
    std::memset(&d, 0, sizeof d);
    d.value = 99;
    d.tx = f->os_tx;
    f->rc = cx_spawn(cx->executor, &kDelayedOneshotVt, &d, nullptr);
  }
  if (f->rc != CX_OK) CX_RETURN(&f->co, static_cast<int *>(out), f->rc);
  f->os_tx = nullptr; /* the task owns it now */
  cx_oneshot_recv_init(&f->os_recv, f->os_rx, &f->os_item);
  CX_AWAIT(&f->co, cx_oneshot_recv_poll(&f->os_recv, cx, &f->rc));
  f->log[f->step++] = f->rc == CX_OK ? f->os_item : f->rc;

  // 11. A yield.
  CX_YIELD(&f->co, cx);
  f->log[f->step++] = 11;

  // 12. join_all over three countdowns.
  for (int i = 0; i < 3; i++) {
    f->cd[i] = Countdown{3 - i, i + 1, nullptr};
    f->all_f[i] = cx_future_of(&kCountdownVt, &f->cd[i]);
    f->all_o[i] = &f->all_out[i];
  }
  cx_join_all_init(&f->all, f->all_f, f->all_o, 3);
  CX_AWAIT(&f->co, cx_join_all_poll(&f->all, cx));
  f->log[f->step++] = f->all_out[0] * 100 + f->all_out[1] * 10 + f->all_out[2];

  CX_RETURN(&f->co, static_cast<int *>(out), f->step);
  CX_CORO_END(&f->co);
}

void TenDrop(void *self) {
  auto *f = static_cast<Ten *>(self);
  // Every sub-future's drop is idempotent and safe when never used.
  cx_sleep_drop(&f->nap);
  cx_achan_recv_drop(&f->recv);
  cx_achan_send_drop(&f->send);
  cx_join_handle_detach(f->h1);
  cx_join_handle_detach(f->h2);
  cx_join2_drop(&f->j2);
  cx_select_drop(&f->sel);
  cx_and_then_drop(&f->at);
  cx_timeout_drop(&f->to);
  cx_oneshot_recv_drop(&f->os_recv);
  cx_join_all_drop(&f->all);
  cx_coro_drop(&f->co); /* the join future, if dropped while awaiting it */
  cx_achan_rx_drop(f->in_rx);
  cx_achan_tx_drop(f->out_tx);
  cx_oneshot_rx_drop(f->os_rx);
  cx_oneshot_tx_drop(f->os_tx);
}

const cx_future_vtable kTenVt = {.poll = TenPoll,
                                 .drop = TenDrop,
                                 .state_size = sizeof(Ten),
                                 .state_align = alignof(Ten),
                                 .output_size = sizeof(int)};

TEST(Coro, AwaitsTenDifferentThingsInARow) {
  ScopedCountingAllocator alloc;
  ManualClock clock;
  cx_executor *ex = NewExecutor(clock);
  ASSERT_NE(ex, nullptr);

  Ten t;
  std::memset(&t, 0, sizeof t);
  cx_achan_tx *in_tx;
  ASSERT_EQ(cx_achan_create(sizeof(int), 4, nullptr, &in_tx, &t.in_rx), CX_OK);
  for (int v : {101, 102, 103}) ASSERT_EQ(cx_achan_try_send(in_tx, &v), CX_OK);
  cx_achan_tx_drop(in_tx);

  Drainer dr;
  std::memset(&dr, 0, sizeof dr);
  ASSERT_EQ(cx_achan_create(sizeof(int), 1, nullptr, &t.out_tx, &dr.rx), CX_OK);
  int first = 1;
  ASSERT_EQ(cx_achan_try_send(t.out_tx, &first), CX_OK); /* now full */
  ASSERT_EQ(cx_oneshot_create(sizeof(int), nullptr, &t.os_tx, &t.os_rx), CX_OK);

  cx_join_handle *drain_h, *ten_h;
  ASSERT_EQ(cx_spawn(ex, &kDrainerVt, &dr, &drain_h), CX_OK);
  ASSERT_EQ(cx_spawn(ex, &kTenVt, &t, &ten_h), CX_OK);

  ASSERT_EQ(DriveUntil(ex, clock, ten_h), CX_OK);
  int steps = 0;
  ASSERT_EQ(cx_join_handle_try_join(ten_h, &steps, sizeof steps), CX_OK);
  EXPECT_EQ(steps, 12); /* the log is checked by the next test */
  ASSERT_EQ(DriveUntil(ex, clock, drain_h), CX_OK);
  int drained = 0;
  ASSERT_EQ(cx_join_handle_try_join(drain_h, &drained, sizeof drained), CX_OK);
  EXPECT_EQ(drained, 2); /* the pre-filled item and Ten's 500 */

  cx_executor_stats st;
  ASSERT_EQ(cx_executor_get_stats(ex, &st), CX_OK);
  EXPECT_EQ(st.timers, 0u);
  EXPECT_EQ(st.live, 0u);
  EXPECT_EQ(st.cancelled, 0u);
  EXPECT_EQ(cx_executor_debug_check(ex, nullptr), CX_OK);

  cx_join_handle_detach(ten_h);
  cx_join_handle_detach(drain_h);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

// The same coroutine, but its log is checked: a wrapper future whose state
// points at a Ten the test owns (so it can be read afterwards).
struct TenProbe {
  Ten *ten;
};
cx_poll TenProbePoll(void *self, cx_context *cx, void *out) {
  return TenPoll(static_cast<TenProbe *>(self)->ten, cx, out);
}
void TenProbeDrop(void *self) {
  TenDrop(static_cast<TenProbe *>(self)->ten);
}
const cx_future_vtable kTenProbeVt = {.poll = TenProbePoll,
                                      .drop = TenProbeDrop,
                                      .state_size = sizeof(TenProbe),
                                      .state_align = alignof(TenProbe),
                                      .output_size = sizeof(int)};

TEST(Coro, TenAwaitsLogTheirResultsInOrder) {
  ScopedCountingAllocator alloc;
  ManualClock clock;
  cx_executor *ex = NewExecutor(clock);
  ASSERT_NE(ex, nullptr);

  static Ten t; /* large: not on the stack; must not move once polled */
  std::memset(&t, 0, sizeof t);
  cx_achan_tx *in_tx;
  ASSERT_EQ(cx_achan_create(sizeof(int), 4, nullptr, &in_tx, &t.in_rx), CX_OK);
  for (int v : {101, 102, 103}) ASSERT_EQ(cx_achan_try_send(in_tx, &v), CX_OK);
  cx_achan_tx_drop(in_tx);
  Drainer dr;
  std::memset(&dr, 0, sizeof dr);
  ASSERT_EQ(cx_achan_create(sizeof(int), 1, nullptr, &t.out_tx, &dr.rx), CX_OK);
  int first = 1;
  ASSERT_EQ(cx_achan_try_send(t.out_tx, &first), CX_OK);
  ASSERT_EQ(cx_oneshot_create(sizeof(int), nullptr, &t.os_tx, &t.os_rx), CX_OK);
  ASSERT_EQ(cx_spawn(ex, &kDrainerVt, &dr, nullptr), CX_OK);

  TenProbe probe = {&t};
  cx_join_handle *h;
  ASSERT_EQ(cx_spawn(ex, &kTenProbeVt, &probe, &h), CX_OK);
  ASSERT_EQ(DriveUntil(ex, clock, h), CX_OK);
  int steps = 0;
  ASSERT_EQ(cx_join_handle_try_join(h, &steps, sizeof steps), CX_OK);
  ASSERT_EQ(steps, 12);
  const int expected[12] = {1, 101, 3, 44, 55, 6, 1102, 103, 77, 99, 11, 123};
  for (int i = 0; i < 12; i++) EXPECT_EQ(t.log[i], expected[i]) << "step " << i;
  // Only the select's loser (the 1 s sleep) was registered besides the
  // drainer's; it was cancelled by the select itself.
  EXPECT_EQ(t.timers_after_select, 0u);
  // Several polls, never a busy loop: each await pended at most a few times.
  EXPECT_LT(cx_join_handle_poll_count(h), 60u);

  cx_join_handle_detach(h);
  ASSERT_EQ(cx_executor_run_until_idle(ex) >= 0, true);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- yield, return, end
// -------------------------------------------------------

struct Yielder {
  cx_coro co;
  int i, n;
};
cx_poll YielderPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<Yielder *>(self);
  CX_CORO_BEGIN(&f->co);
  for (f->i = 0; f->i < f->n; f->i++) CX_YIELD(&f->co, cx);
  CX_RETURN(&f->co, static_cast<int *>(out), f->i);
  CX_CORO_END(&f->co);
}
const cx_future_vtable kYielderVt = {.poll = YielderPoll,
                                     .state_size = sizeof(Yielder),
                                     .state_align = alignof(Yielder),
                                     .output_size = sizeof(int)};

TEST(Coro, YieldPendsOnceAndWakesItself) {
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Yielder y = {CX_CORO_INIT, 0, 5};
  cx_join_handle *h;
  ASSERT_EQ(cx_spawn(ex, &kYielderVt, &y, &h), CX_OK);
  int out = -1;
  ASSERT_EQ(cx_executor_join(ex, h, &out, sizeof out), CX_OK);
  EXPECT_EQ(out, 5);
  EXPECT_EQ(cx_join_handle_poll_count(h), 6u); /* 5 yields + the last poll */
  cx_join_handle_detach(h);
  cx_executor_destroy(ex);
}

TEST(Coro, YieldsInterleaveTwoTasks) {
  // Two yielding tasks alternate: each yield lets the other one run.
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Yielder a = {CX_CORO_INIT, 0, 3}, b = {CX_CORO_INIT, 0, 3};
  cx_join_handle *ha, *hb;
  ASSERT_EQ(cx_spawn(ex, &kYielderVt, &a, &ha), CX_OK);
  ASSERT_EQ(cx_spawn(ex, &kYielderVt, &b, &hb), CX_OK);
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(cx_executor_step(ex), 1);
    EXPECT_EQ(cx_executor_step(ex), 1);
    EXPECT_EQ(cx_join_handle_poll_count(ha), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(cx_join_handle_poll_count(hb), static_cast<uint64_t>(i + 1));
  }
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  cx_join_handle_detach(ha);
  cx_join_handle_detach(hb);
  cx_executor_destroy(ex);
}

// Falls off the end: CX_CORO_END finishes it (no output).
struct Plain {
  cx_coro co;
  int *counter;
};
cx_poll PlainPoll(void *self, cx_context *cx, void *out) {
  (void)out;
  auto *f = static_cast<Plain *>(self);
  CX_CORO_BEGIN(&f->co);
  (*f->counter)++;
  CX_YIELD(&f->co, cx);
  (*f->counter)++;
  CX_CORO_END(&f->co);
}

TEST(Coro, ReachingEndFinishesAndIsDone) {
  misuse::Reset();
  int counter = 0;
  Plain p = {CX_CORO_INIT, &counter};
  cx_waker w = cx_waker_noop();
  cx_context cx = cx_context_from_waker(&w);
  EXPECT_FALSE(cx_coro_is_done(&p.co));
  EXPECT_EQ(PlainPoll(&p, &cx, nullptr), CX_PENDING);
  EXPECT_EQ(counter, 1);
  EXPECT_EQ(PlainPoll(&p, &cx, nullptr), CX_READY);
  EXPECT_EQ(counter, 2);
  EXPECT_TRUE(cx_coro_is_done(&p.co));
  EXPECT_EQ(cx_coro_misuse(&p.co), CX_CORO_MISUSE_NONE);
  EXPECT_EQ(misuse::count, 0); /* reaching CX_CORO_END is no misuse */
}

// ---- misuse is trapped and reported
// -----------------------------------------

// Polled again after the end (a contract breach): reported as such, stays
// done, runs nothing. Before the trap this returned CX_READY silently.
TEST(CoroMisuse, PollAfterDoneIsReported) {
  misuse::Reset();
  int counter = 0;
  Plain p = {CX_CORO_INIT, &counter};
  cx_waker w = cx_waker_noop();
  cx_context cx = cx_context_from_waker(&w);
  EXPECT_EQ(PlainPoll(&p, &cx, nullptr), CX_PENDING);
  EXPECT_EQ(PlainPoll(&p, &cx, nullptr), CX_READY);
  ASSERT_EQ(misuse::count, 0);
  EXPECT_EQ(PlainPoll(&p, &cx, nullptr), CX_READY);
  EXPECT_EQ(counter, 2);
  EXPECT_EQ(misuse::count, 1);
  EXPECT_EQ(misuse::last_kind, CX_CORO_MISUSE_POLLED_AFTER_DONE);
  EXPECT_EQ(cx_coro_misuse(&p.co), CX_CORO_MISUSE_POLLED_AFTER_DONE);
  EXPECT_TRUE(cx_coro_is_done(&p.co));
  ASSERT_NE(misuse::last_file, nullptr);
  EXPECT_NE(std::strstr(misuse::last_file, "coro_test.cc"), nullptr);
  EXPECT_GT(misuse::last_line, 0);
  // And again: each poll is reported.
  EXPECT_EQ(PlainPoll(&p, &cx, nullptr), CX_READY);
  EXPECT_EQ(misuse::count, 2);
}

// Returns CX_PENDING (after waking) the first time, then CX_READY.
cx_poll PendOnce(int *pended, cx_context *cx) {
  if (*pended) return CX_READY;
  *pended = 1;
  cx_waker_wake_by_ref(cx->waker);
  return CX_PENDING;
}

// Rule 3 broken: an await inside a switch of its own. The await's `case`
// label belongs to the user's switch, so the resumed poll finds no label in
// the coroutine's dispatch.
struct InSwitch {
  cx_coro co;
  int mode, pended, after;
  int *drops;
};
cx_poll InSwitchPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<InSwitch *>(self);
  CX_CORO_BEGIN(&f->co);
  switch (f->mode) {
    case 1:
      CX_AWAIT(&f->co, PendOnce(&f->pended, cx));
      f->after = 1;
      break;
    default:
      break;
  }
  CX_RETURN(&f->co, static_cast<int *>(out), 11);
  CX_CORO_END(&f->co);
}
void InSwitchDrop(void *self) {
  (*static_cast<InSwitch *>(self)->drops)++;
}
const cx_future_vtable kInSwitchVt = {.poll = InSwitchPoll,
                                      .drop = InSwitchDrop,
                                      .state_size = sizeof(InSwitch),
                                      .state_align = alignof(InSwitch),
                                      .output_size = sizeof(int)};

TEST(CoroMisuse, AwaitInsideOwnSwitchIsReported) {
  misuse::Reset();
  int drops = 0;
  InSwitch f = {CX_CORO_INIT, 1, 0, 0, &drops};
  cx_waker w = cx_waker_noop();
  cx_context cx = cx_context_from_waker(&w);
  int out = -1;
  EXPECT_EQ(InSwitchPoll(&f, &cx, &out), CX_PENDING); /* first pass is fine */
  EXPECT_EQ(misuse::count, 0);
  EXPECT_EQ(InSwitchPoll(&f, &cx, &out), CX_READY);
  EXPECT_EQ(misuse::count, 1);
  EXPECT_EQ(misuse::last_kind, CX_CORO_MISUSE_LOST_RESUME_POINT);
  EXPECT_EQ(cx_coro_misuse(&f.co), CX_CORO_MISUSE_LOST_RESUME_POINT);
  EXPECT_TRUE(cx_coro_is_done(&f.co));
  EXPECT_EQ(f.after, 0); /* the code after the await never ran */
  EXPECT_EQ(out, -1);    /* and the output was not written */
  // A switch without an await in the taken branch is fine.
  misuse::Reset();
  InSwitch g = {CX_CORO_INIT, 2, 0, 0, &drops};
  EXPECT_EQ(InSwitchPoll(&g, &cx, &out), CX_READY);
  EXPECT_EQ(out, 11);
  EXPECT_EQ(misuse::count, 0);
}

TEST(CoroMisuse, AwaitInsideOwnSwitchOnExecutorFinishesTheTask) {
  // On an executor: the task finishes (no hang), its state is dropped once,
  // nothing leaks, and the misuse is reported once.
  misuse::Reset();
  ScopedCountingAllocator alloc;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  int drops = 0;
  InSwitch f = {CX_CORO_INIT, 1, 0, 0, &drops};
  cx_join_handle *h;
  ASSERT_EQ(cx_spawn(ex, &kInSwitchVt, &f, &h), CX_OK);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_TRUE(cx_join_handle_is_finished(h));
  EXPECT_EQ(misuse::count, 1);
  EXPECT_EQ(misuse::last_kind, CX_CORO_MISUSE_LOST_RESUME_POINT);
  EXPECT_EQ(drops, 1);
  cx_join_handle_detach(h);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

// A top-level `break` (meant for a loop that is not there) leaves the
// coroutine's dispatch switch without CX_RETURN.
struct Breaker {
  cx_coro co;
  int stop, pended, after;
};
cx_poll BreakerPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<Breaker *>(self);
  CX_CORO_BEGIN(&f->co);
  CX_AWAIT(&f->co, PendOnce(&f->pended, cx));
  if (f->stop) break;
  f->after = 1;
  CX_RETURN(&f->co, static_cast<int *>(out), 5);
  CX_CORO_END(&f->co);
}

TEST(CoroMisuse, TopLevelBreakIsReported) {
  misuse::Reset();
  cx_waker w = cx_waker_noop();
  cx_context cx = cx_context_from_waker(&w);
  Breaker f = {CX_CORO_INIT, 1, 0, 0};
  int out = -1;
  EXPECT_EQ(BreakerPoll(&f, &cx, &out), CX_PENDING);
  EXPECT_EQ(BreakerPoll(&f, &cx, &out), CX_READY);
  EXPECT_EQ(misuse::count, 1);
  EXPECT_EQ(misuse::last_kind, CX_CORO_MISUSE_BREAK);
  EXPECT_EQ(cx_coro_misuse(&f.co), CX_CORO_MISUSE_BREAK);
  EXPECT_TRUE(cx_coro_is_done(&f.co));
  EXPECT_EQ(f.after, 0);
  EXPECT_EQ(out, -1);
  // A poll after that is reported too (the coroutine is marked finished).
  EXPECT_EQ(BreakerPoll(&f, &cx, &out), CX_READY);
  EXPECT_EQ(misuse::count, 2);
  EXPECT_EQ(misuse::last_kind, CX_CORO_MISUSE_POLLED_AFTER_DONE);
  // Without the break: no report, output written.
  misuse::Reset();
  Breaker g = {CX_CORO_INIT, 0, 0, 0};
  EXPECT_EQ(BreakerPoll(&g, &cx, &out), CX_PENDING);
  EXPECT_EQ(BreakerPoll(&g, &cx, &out), CX_READY);
  EXPECT_EQ(out, 5);
  EXPECT_EQ(misuse::count, 0);
}

TEST(CoroMisuse, InitClearsTheRecordAndNamesAreDistinct) {
  cx_coro co = CX_CORO_INIT;
  EXPECT_EQ(cx_coro_misuse(&co), CX_CORO_MISUSE_NONE);
  co.misuse = CX_CORO_MISUSE_BREAK;
  co.line = CX_CORO_DONE;
  cx_coro_init(&co);
  EXPECT_EQ(cx_coro_misuse(&co), CX_CORO_MISUSE_NONE);
  EXPECT_FALSE(cx_coro_is_done(&co));
  const char *names[] = {cx_coro_misuse_str(CX_CORO_MISUSE_NONE),
                         cx_coro_misuse_str(CX_CORO_MISUSE_LOST_RESUME_POINT),
                         cx_coro_misuse_str(CX_CORO_MISUSE_BREAK),
                         cx_coro_misuse_str(CX_CORO_MISUSE_POLLED_AFTER_DONE),
                         cx_coro_misuse_str(99)};
  for (int i = 0; i < 5; i++) {
    ASSERT_NE(names[i], nullptr);
    for (int j = 0; j < i; j++) EXPECT_STRNE(names[i], names[j]);
  }
}

// The default report (what a program gets without its own hook): one line
// on stderr naming the coroutine's file:line and the mistake, then abort()
// in debug builds; in release builds (NDEBUG) it returns.
TEST(CoroMisuseDeathTest, DefaultReportAbortsInDebugBuildsOnly) {
  cx_coro co = CX_CORO_INIT;
#ifdef NDEBUG
  cx_coro_report_misuse(&co, CX_CORO_MISUSE_BREAK, "my_task.c", 42);
  SUCCEED();
#else
  // The default "fast" style (fork, no exec): the "threadsafe" style's
  // clone() crashes under ASan's detect_stack_use_after_return.
  EXPECT_DEATH(
      cx_coro_report_misuse(&co, CX_CORO_MISUSE_BREAK, "my_task.c", 42),
      "cexec: coroutine misuse in the coroutine at my_task.c:42: a top-level "
      "break");
#endif
}

TEST(Coro, SleepWithoutTimerDriverReportsNotSupported) {
  // Polled by hand, with no timers in the context: the awaited sleep
  // completes with CX_ENOTSUP, and the coroutine carries on.
  Inner f;
  std::memset(&f, 0, sizeof f);
  cx_waker w = cx_waker_noop();
  cx_context cx = cx_context_from_waker(&w);
  int out = 0;
  EXPECT_EQ(InnerPoll(&f, &cx, &out), CX_READY);
  EXPECT_EQ(f.rc, CX_ENOTSUP);
  EXPECT_EQ(out, 77);
  InnerDrop(&f);
}

// ---- nesting and CX_AWAIT_FUTURE
// ------------------------------------------------

struct Outer {
  cx_coro co;
  Inner inner;
  Stats *inner_stats;
  Never never;
  Stats *cd_stats;
  int a, b;
};
cx_poll OuterPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<Outer *>(self);
  CX_CORO_BEGIN(&f->co);
  std::memset(&f->inner, 0, sizeof f->inner);
  f->inner.stats = f->inner_stats;
  CX_AWAIT_FUTURE(&f->co, cx, cx_future_of(&kInnerVt, &f->inner), &f->a);
  f->never = Never{{nullptr, nullptr}, f->cd_stats};
  CX_AWAIT_FUTURE(&f->co, cx, cx_future_of(&kNeverVt, &f->never), &f->b);
  CX_RETURN(&f->co, static_cast<int *>(out), f->a + f->b);
  CX_CORO_END(&f->co);
}
void OuterDrop(void *self) {
  cx_coro_drop(&static_cast<Outer *>(self)->co);
}
const cx_future_vtable kOuterVt = {.poll = OuterPoll,
                                   .drop = OuterDrop,
                                   .state_size = sizeof(Outer),
                                   .state_align = alignof(Outer),
                                   .output_size = sizeof(int)};

TEST(Coro, AwaitFutureDropsChildOnCompletionAndOnCancel) {
  ScopedCountingAllocator alloc;
  ManualClock clock;
  cx_executor *ex = NewExecutor(clock);
  Stats inner_stats, cd_stats;
  Outer o;
  std::memset(&o, 0, sizeof o);
  o.inner_stats = &inner_stats;
  o.cd_stats = &cd_stats;
  cx_join_handle *h;
  ASSERT_EQ(cx_spawn(ex, &kOuterVt, &o, &h), CX_OK);
  // Run until the inner coroutine finished and the countdown started.
  for (int i = 0; i < 10 && cd_stats.polls == 0; i++) {
    cx_executor_run_until_idle(ex);
    clock.Advance(kMs);
  }
  EXPECT_EQ(inner_stats.drops, 1); /* dropped right after it completed */
  EXPECT_GE(cd_stats.polls, 1);
  EXPECT_EQ(cd_stats.drops, 0);
  // Cancel in the middle of the second await: cx_coro_drop drops it.
  ASSERT_EQ(cx_join_handle_cancel(h), CX_OK);
  cx_executor_step(ex);
  while (!cx_join_handle_is_finished(h)) cx_executor_step(ex);
  EXPECT_EQ(cd_stats.drops, 1);
  EXPECT_EQ(inner_stats.drops, 1);
  EXPECT_EQ(cx_join_handle_try_join(h, nullptr, 0), CX_ECANCELED);
  cx_join_handle_detach(h);
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(Coro, CoroDropIsIdempotent) {
  Stats s;
  Countdown c = {1, 1, &s};
  cx_coro co = CX_CORO_INIT;
  co.child = cx_future_of(&kCountdownVt, &c);
  cx_coro_drop(&co);
  cx_coro_drop(&co);
  cx_coro_drop(nullptr);
  EXPECT_EQ(s.drops, 1);
  cx_coro_init(&co);
  EXPECT_EQ(co.line, 0);
  EXPECT_EQ(co.child.vtable, nullptr);
}

// ---- cancellation in the middle of a coroutine
// ----------------------------------

// Owns a receiver and waits on select(recv, 1 s sleep) inside a loop, with
// a nested coroutine awaited through CX_AWAIT_FUTURE before it.
struct Waiter {
  cx_coro co;
  cx_achan_rx *rx;
  Inner inner;
  int inner_out;
  cx_achan_recv recv;
  cx_sleep nap;
  int item, r_recv, r_nap;
  cx_future f[2];
  void *o[2];
  cx_select sel;
  size_t winner;
  int *drops;
};
cx_poll WaiterPoll(void *self, cx_context *cx, void *out) {
  (void)out;
  auto *f = static_cast<Waiter *>(self);
  CX_CORO_BEGIN(&f->co);
  std::memset(&f->inner, 0, sizeof f->inner);
  CX_AWAIT_FUTURE(&f->co, cx, cx_future_of(&kInnerVt, &f->inner),
                  &f->inner_out);
  for (;;) {
    cx_achan_recv_init(&f->recv, f->rx, &f->item);
    cx_sleep_init_for(&f->nap, CX_NSEC_PER_SEC);
    f->f[0] = cx_future_of(&cx_achan_recv_vtable, &f->recv);
    f->o[0] = &f->r_recv;
    f->f[1] = cx_future_of(&cx_sleep_vtable, &f->nap);
    f->o[1] = &f->r_nap;
    cx_select_init(&f->sel, f->f, f->o, 2);
    CX_AWAIT(&f->co, cx_select_poll(&f->sel, cx, &f->winner));
  }
  CX_CORO_END(&f->co);
}
void WaiterDrop(void *self) {
  auto *f = static_cast<Waiter *>(self);
  (*f->drops)++;
  cx_select_drop(&f->sel);
  cx_coro_drop(&f->co);
  cx_achan_rx_drop(f->rx);
}
const cx_future_vtable kWaiterVt = {.poll = WaiterPoll,
                                    .drop = WaiterDrop,
                                    .state_size = sizeof(Waiter),
                                    .state_align = alignof(Waiter),
                                    .output_size = 0};

TEST(Coro, CancelledMidAwaitDropsStateAndLeaksNothing) {
  ScopedCountingAllocator alloc;
  ManualClock clock;
  cx_executor *ex = NewExecutor(clock);
  int drops = 0;
  Waiter w;
  std::memset(&w, 0, sizeof w);
  w.drops = &drops;
  cx_achan_tx *tx;
  ASSERT_EQ(cx_achan_create(sizeof(int), 2, nullptr, &tx, &w.rx), CX_OK);
  cx_join_handle *h;
  ASSERT_EQ(cx_spawn(ex, &kWaiterVt, &w, &h), CX_OK);
  for (int i = 0; i < 5; i++) {
    cx_executor_run_until_idle(ex);
    clock.Advance(kMs);
  }
  cx_executor_run_until_idle(ex);
  cx_executor_stats st;
  cx_executor_get_stats(ex, &st);
  EXPECT_EQ(st.timers, 1u); /* the select's 1 s sleep */
  EXPECT_FALSE(cx_join_handle_is_finished(h));

  ASSERT_EQ(cx_join_handle_cancel(h), CX_OK);
  cx_executor_run_until_idle(ex);
  EXPECT_TRUE(cx_join_handle_is_finished(h));
  EXPECT_EQ(drops, 1);
  cx_executor_get_stats(ex, &st);
  EXPECT_EQ(st.timers, 0u);
  EXPECT_EQ(st.cancelled, 1u);
  EXPECT_EQ(cx_join_handle_try_join(h, nullptr, 0), CX_ECANCELED);
  // The receiver went with the state: sending now fails.
  int v = 1;
  EXPECT_EQ(cx_achan_try_send(tx, &v), CX_EPIPE);
  cx_achan_tx_drop(tx);
  cx_join_handle_detach(h);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

TEST(Coro, CancelledDuringNestedAwaitDropsTheChild) {
  ScopedCountingAllocator alloc;
  ManualClock clock;
  cx_executor *ex = NewExecutor(clock);
  int drops = 0;
  Waiter w;
  std::memset(&w, 0, sizeof w);
  w.drops = &drops;
  cx_achan_tx *tx;
  ASSERT_EQ(cx_achan_create(sizeof(int), 2, nullptr, &tx, &w.rx), CX_OK);
  cx_join_handle *h;
  ASSERT_EQ(cx_spawn(ex, &kWaiterVt, &w, &h), CX_OK);
  cx_executor_run_until_idle(ex); /* now inside the nested Inner's sleep */
  cx_executor_stats st;
  cx_executor_get_stats(ex, &st);
  EXPECT_EQ(st.timers, 1u);
  ASSERT_EQ(cx_join_handle_cancel(h), CX_OK);
  cx_executor_run_until_idle(ex);
  EXPECT_EQ(drops, 1);
  cx_executor_get_stats(ex, &st);
  EXPECT_EQ(st.timers, 0u); /* Inner's sleep went with it */
  cx_achan_tx_drop(tx);
  cx_join_handle_detach(h);
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(Coro, ExecutorDestroyDropsPendingCoroutines) {
  ScopedCountingAllocator alloc;
  ManualClock clock;
  cx_executor *ex = NewExecutor(clock);
  int drops = 0;
  cx_achan_tx *tx[3];
  for (int i = 0; i < 3; i++) {
    Waiter w;
    std::memset(&w, 0, sizeof w);
    w.drops = &drops;
    ASSERT_EQ(cx_achan_create(sizeof(int), 1, nullptr, &tx[i], &w.rx), CX_OK);
    ASSERT_EQ(cx_spawn(ex, &kWaiterVt, &w, nullptr), CX_OK);
  }
  for (int i = 0; i < 4; i++) {
    cx_executor_run_until_idle(ex);
    clock.Advance(kMs);
  }
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(drops, 3);
  for (auto *t : tx) cx_achan_tx_drop(t);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- a task cancelling another, then awaiting it
// --------------------------------

struct Canceller {
  cx_coro co;
  cx_join_handle *victim;
  cx_join_future jf;
  cx_sleep nap;
  int rc, out;
};
cx_poll CancellerPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<Canceller *>(self);
  CX_CORO_BEGIN(&f->co);
  {
    Never n = {{nullptr, nullptr}, nullptr};
    f->rc = cx_spawn(cx->executor, &kNeverVt, &n, &f->victim);
  }
  if (f->rc != CX_OK) CX_RETURN(&f->co, static_cast<int *>(out), f->rc);
  cx_sleep_init_for(&f->nap, kMs);
  CX_AWAIT(&f->co, cx_sleep_poll(&f->nap, cx, &f->rc));
  f->rc = cx_join_handle_cancel(f->victim);
  if (f->rc != CX_OK) CX_RETURN(&f->co, static_cast<int *>(out), f->rc);
  cx_join_future_init(&f->jf, f->victim, &f->out, sizeof f->out, true);
  f->victim = nullptr;
  CX_AWAIT(&f->co, cx_join_future_poll(&f->jf, cx, &f->rc));
  CX_RETURN(&f->co, static_cast<int *>(out), f->rc);
  CX_CORO_END(&f->co);
}
void CancellerDrop(void *self) {
  auto *f = static_cast<Canceller *>(self);
  cx_sleep_drop(&f->nap);
  cx_join_future_drop(&f->jf);
  cx_join_handle_detach(f->victim);
}
const cx_future_vtable kCancellerVt = {.poll = CancellerPoll,
                                       .drop = CancellerDrop,
                                       .state_size = sizeof(Canceller),
                                       .state_align = alignof(Canceller),
                                       .output_size = sizeof(int)};

TEST(Coro, TaskCancelsAnotherAndSeesCancelled) {
  ScopedCountingAllocator alloc;
  ManualClock clock;
  cx_executor *ex = NewExecutor(clock);
  Canceller c;
  std::memset(&c, 0, sizeof c);
  cx_join_handle *h;
  ASSERT_EQ(cx_spawn(ex, &kCancellerVt, &c, &h), CX_OK);
  ASSERT_EQ(DriveUntil(ex, clock, h), CX_OK);
  int rc = 0;
  ASSERT_EQ(cx_join_handle_try_join(h, &rc, sizeof rc), CX_OK);
  EXPECT_EQ(rc, CX_ECANCELED);
  cx_executor_stats st;
  cx_executor_get_stats(ex, &st);
  EXPECT_EQ(st.cancelled, 1u);
  EXPECT_EQ(st.live, 0u);
  cx_join_handle_detach(h);
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- allocation failure inside a coroutine
// --------------------------------------

TEST(Coro, SpawnFailureInsideCoroutineIsReported) {
  ScopedCountingAllocator alloc;
  ManualClock clock;
  cx_executor *ex = NewExecutor(clock);
  Canceller c;
  std::memset(&c, 0, sizeof c);
  cx_join_handle *h;
  ASSERT_EQ(cx_spawn(ex, &kCancellerVt, &c, &h), CX_OK);
  alloc.FailAfter(0); /* the spawn inside the coroutine fails */
  cx_executor_run_until_idle(ex);
  alloc.FailNever();
  ASSERT_TRUE(cx_join_handle_is_finished(h));
  int rc = 0;
  ASSERT_EQ(cx_join_handle_try_join(h, &rc, sizeof rc), CX_OK);
  EXPECT_EQ(rc, CX_ENOMEM);
  cx_join_handle_detach(h);
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
}

}  // namespace
