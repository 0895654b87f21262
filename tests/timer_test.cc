// timer/: the array-heap driver over a manual clock, checked against a
// sorted model, and the sleep future polled by hand.
#include <gtest/gtest.h>

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "executor/combinators.h"
#include "tests/testutil.h"
#include "timer/timer.h"
#include "waker/error.h"
#include "waker/waker.h"

namespace {

using cxtest::CountingWaker;
using cxtest::ManualClock;

// Walks the driver and checks its shape: the near heap (ticks at or before
// the cursor's), the calendar (one tick per bucket, within CX__CAL_BUCKETS
// ticks after the cursor, busy bits right, chunks full but the last) and the
// far heap, no heap node before its parent, the near heap empty only if the
// calendar is, positions and slots agree both ways, every node's entry
// belongs to t with its key, the free slots and chunks are free, the count
// is right, and an empty driver holds no memory. Returns a description of the
// first breach, or "".
std::string CheckNode(const cx_timers &t, const cx__timer_node &n,
                      uint32_t tagged,
                      std::unordered_set<const cx_timer_entry *> *seen) {
  if (n.slot >= t.used_slots) return "slot out of range";
  if (t.pos[n.slot] != tagged) return "pos does not point back";
  const cx_timer_entry *e = t.slots[n.slot];
  if (e == nullptr) return "node of a free slot";
  if (!seen->insert(e).second) return "entry twice";
  if (e->driver != &t) return "node of another driver";
  if (e->slot != n.slot) return "entry has another slot";
  if (e->fired) return "registered node marked fired";
  return "";
}

std::string CheckHeapOrder(const cx__timer_node *h, size_t n) {
  for (size_t i = 1; i < n; i++) {
    const cx__timer_node &c = h[i], &p = h[(i - 1) / 4];
    if (std::tie(c.deadline, c.seq) < std::tie(p.deadline, p.seq))
      return "child before parent";
  }
  return "";
}

std::string CheckHeap(const cx_timers &t) {
  if (t.count > t.cap) return "count beyond capacity";
  if (t.count == 0 && t.block != nullptr) return "empty driver holds memory";
  bool inline_ = t.block == nullptr;
  if (inline_ && (t.fcount != 0 || t.cal_summary != 0 || t.cnode != nullptr ||
                  t.run_end != 0))
    return "inline driver with a calendar, run or far heap";
  std::unordered_set<const cx_timer_entry *> seen;
  std::string err;
  size_t nrun = 0;
  if (t.run_head > t.run_end || t.run_end > t.cap) return "run out of range";
  if (t.run_head < t.run_end && t.run[t.run_head].slot == CX__HOLE)
    return "run starts with a hole";
  const cx__timer_node *prev = nullptr;
  for (size_t i = t.run_head; i < t.run_end; i++) {
    const cx__timer_node &n = t.run[i];
    if (n.slot == CX__HOLE) continue;
    if (!(err = CheckNode(t, n, CX__IN_RUN | uint32_t(i), &seen)).empty())
      return "run: " + err;
    if ((n.deadline >> t.tick_shift) > t.cursor) return "run after the cursor";
    if (prev &&
        std::tie(n.deadline, n.seq) < std::tie(prev->deadline, prev->seq))
      return "run out of order";
    prev = &n;
    nrun++;
  }
  for (size_t i = 0; i < t.hcount; i++) {
    if (!(err = CheckNode(t, t.heap[i], uint32_t(i), &seen)).empty())
      return "near heap: " + err;
    if (!inline_ && (t.heap[i].deadline >> t.tick_shift) > t.cursor)
      return "near heap node after the cursor";
  }
  if (!(err = CheckHeapOrder(t.heap, t.hcount)).empty()) return "near: " + err;
  for (size_t i = 0; i < t.fcount; i++)
    if (!(err = CheckNode(t, t.far[i], CX__IN_FAR | uint32_t(i), &seen))
             .empty())
      return "far heap: " + err;
  if (!(err = CheckHeapOrder(t.far, t.fcount)).empty()) return "far: " + err;
  size_t ncal = 0, used_chunks = 0;
  for (uint32_t b = 0; !inline_ && b < CX__CAL_BUCKETS; b++) {
    bool busy = (t.cal_bits[b / 64] >> (b % 64)) & 1;
    if (busy != (t.ctail[b] != UINT32_MAX)) return "busy bit wrong";
    uint32_t fill = t.cfill[b];
    for (uint32_t c = t.ctail[b]; c != UINT32_MAX; c = t.cprev[c]) {
      if (c >= t.chunks_seen || t.cbucket[c] != b) return "foreign chunk";
      if (fill < 1 || fill > CX__CHUNK) return "bad chunk fill";
      if (++used_chunks > t.chunks_seen) return "chunk list loops";
      for (uint32_t k = 0; k < fill; k++) {
        uint32_t g = c * CX__CHUNK + k;
        const cx__timer_node &n = t.cnode[g];
        if (!(err = CheckNode(t, n, CX__IN_CAL | g, &seen)).empty())
          return "calendar: " + err;
        uint64_t tick = n.deadline >> t.tick_shift;
        if (tick <= t.cursor || tick - t.cursor >= CX__CAL_BUCKETS ||
            (tick & (CX__CAL_BUCKETS - 1)) != b)
          return "calendar node in the wrong bucket";
        ncal++;
      }
      fill = CX__CHUNK;
    }
  }
  for (uint32_t w = 0; !inline_ && w < CX__CAL_WORDS; w++)
    if (((t.cal_summary >> w) & 1) != (t.cal_bits[w] != 0))
      return "summary bit wrong";
  if (ncal > 0 && t.hcount == 0 && nrun == 0)
    return "calendar busy, run and near heap empty";
  if (t.hcount + t.fcount + ncal + nrun != t.count) return "count wrong";
  size_t free_chunks = 0;
  for (uint32_t c = t.free_chunk; c != UINT32_MAX; c = t.cprev[c])
    if (c >= t.chunks_seen || ++free_chunks > t.chunks_seen)
      return "bad free chunk";
  if (free_chunks + used_chunks != t.chunks_seen || t.chunks_seen > t.nchunks)
    return "chunks lost";
  size_t free_slots = 0;
  for (uint32_t f = t.free_slot; f != UINT32_MAX; f = t.pos[f]) {
    if (f >= t.used_slots || t.slots[f] != nullptr) return "bad free slot";
    if (++free_slots > t.used_slots) return "free list loops";
  }
  if (free_slots + t.count != t.used_slots) return "slots lost";
  return "";
}

// A fixture with a driver on a manual clock and a log of fired ids.
class TimerTest : public ::testing::Test {
 protected:
  void SetUp() override { cx_timers_init(&timers, clock.fn(), clock.ctx()); }

  // Registers e with a fresh waker of `target` (which logs its id).
  void Register(cx_timer_entry *e, uint64_t deadline, CountingWaker *target) {
    cx_waker w = target->Make();
    ASSERT_EQ(cx_timers_register(&timers, e, deadline, &w), CX_OK);
    EXPECT_TRUE(cx_waker_is_empty(&w));  // moved in
  }

  ManualClock clock;
  cx_timers timers;
  std::vector<int> log;  // ids of fired wakers, in order
};

// n entries, each with a waker that logs its index.
struct Entries {
  Entries(size_t n, std::vector<int> *log) : e(n) {
    for (size_t i = 0; i < n; i++) {
      cx_timer_entry_init(&e[i]);
      w.push_back(std::make_unique<CountingWaker>(static_cast<int>(i), log));
    }
  }
  std::vector<cx_timer_entry> e;
  std::vector<std::unique_ptr<CountingWaker>> w;
};

// ---- driver basics ---------------------------------------------------------

// The entry and the sleep are embedded in every future that sleeps: their
// size is a task's size (W4: a 64-byte state makes a 128-byte allocation).
TEST(TimerSizes, EntryAndSleepStaySmall) {
  if (sizeof(void *) != 8) GTEST_SKIP() << "sizes are for 64-bit targets";
  EXPECT_EQ(sizeof(cx_timer_entry), 40u);
  EXPECT_EQ(sizeof(cx_sleep), 48u);
}

TEST_F(TimerTest, InitAndClock) {
  EXPECT_EQ(cx_timers_count(&timers), 0u);
  EXPECT_EQ(cx_timers_next_deadline(&timers), CX_DEADLINE_NONE);
  EXPECT_EQ(timers.now, 0u);
  clock.Set(1234);
  EXPECT_EQ(timers.now, 0u);  // cached until read
  EXPECT_EQ(cx_timers_now(&timers), 1234u);
  EXPECT_EQ(timers.now, 1234u);
  EXPECT_EQ(cx_timers_fire(&timers, 1234), 0u);  // empty: nothing to do
}

TEST(TimerDefaultClock, IsMonotonicNanoseconds) {
  cx_timers t;
  cx_timers_init(&t, nullptr, nullptr);
  uint64_t a = t.now;
  EXPECT_GT(a, 0u);
  uint64_t b = cx_timers_now(&t);
  uint64_t c = cx_clock_now();
  EXPECT_LE(a, b);
  EXPECT_LE(b, c);
}

TEST_F(TimerTest, FiresByDeadlineThenRegistrationOrder) {
  Entries en(6, &log);
  const uint64_t deadlines[6] = {30, 10, 20, 10, 30, 10};
  for (size_t i = 0; i < 6; i++)
    Register(&en.e[i], deadlines[i], en.w[i].get());
  EXPECT_EQ(cx_timers_count(&timers), 6u);
  EXPECT_EQ(cx_timers_next_deadline(&timers), 10u);
  EXPECT_EQ(CheckHeap(timers), "");
  EXPECT_EQ(cx_timers_fire(&timers, 100), 6u);
  EXPECT_EQ(log, (std::vector<int>{1, 3, 5, 2, 0, 4}));
  for (size_t i = 0; i < 6; i++) {
    EXPECT_TRUE(en.e[i].fired) << i;
    EXPECT_EQ(en.e[i].driver, nullptr) << i;
    EXPECT_TRUE(cx_waker_is_empty(&en.e[i].waker)) << i;
    EXPECT_EQ(en.w[i]->wakes(), 1) << i;  // consumed: woken by value
    EXPECT_EQ(en.w[i]->refs(), 0) << i;
  }
  EXPECT_EQ(cx_timers_count(&timers), 0u);
  EXPECT_EQ(cx_timers_next_deadline(&timers), CX_DEADLINE_NONE);
}

TEST_F(TimerTest, NeverFiresEarly) {
  Entries en(3, &log);
  Register(&en.e[0], 20, en.w[0].get());
  Register(&en.e[1], 10, en.w[1].get());
  Register(&en.e[2], 30, en.w[2].get());
  EXPECT_EQ(cx_timers_fire(&timers, 9), 0u);
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(cx_timers_fire(&timers, 10), 1u);  // deadline == now is due
  EXPECT_EQ(log, std::vector<int>{1});
  EXPECT_EQ(cx_timers_next_deadline(&timers), 20u);
  EXPECT_EQ(cx_timers_fire(&timers, 19), 0u);
  EXPECT_FALSE(en.e[0].fired);
  EXPECT_EQ(cx_timers_fire(&timers, 29), 1u);
  EXPECT_EQ(cx_timers_next_deadline(&timers), 30u);
  EXPECT_EQ(cx_timers_count(&timers), 1u);
  EXPECT_EQ(cx_timers_fire(&timers, 1000), 1u);
  EXPECT_EQ(log, (std::vector<int>{1, 0, 2}));
}

TEST_F(TimerTest, RegisterRejectsNullsAndLeavesTheWaker) {
  CountingWaker target;
  cx_timer_entry e;
  cx_timer_entry_init(&e);
  cx_waker w = target.Make();
  EXPECT_EQ(cx_timers_register(nullptr, &e, 1, &w), CX_EINVAL);
  EXPECT_EQ(cx_timers_register(&timers, nullptr, 1, &w), CX_EINVAL);
  EXPECT_EQ(cx_timers_register(&timers, &e, 1, nullptr), CX_EINVAL);
  EXPECT_FALSE(cx_waker_is_empty(&w));  // still the caller's
  EXPECT_EQ(cx_timers_count(&timers), 0u);
  EXPECT_EQ(e.driver, nullptr);
  cx_waker_drop(&w);
  EXPECT_EQ(target.refs(), 0);
}

TEST_F(TimerTest, CancelOfUnregisteredEntries) {
  EXPECT_FALSE(cx_timer_entry_cancel(nullptr));
  cx_timer_entry e;
  cx_timer_entry_init(&e);
  EXPECT_FALSE(cx_timer_entry_cancel(&e));  // never registered
  CountingWaker target;
  Register(&e, 5, &target);
  EXPECT_EQ(cx_timers_fire(&timers, 5), 1u);
  EXPECT_FALSE(cx_timer_entry_cancel(&e));  // already fired
  EXPECT_EQ(target.drops(), 0);
  EXPECT_TRUE(e.fired);
}

// ---- cancellation in every position
// -------------------------------------------

// Builds a heap with depth: kN entries (beyond the inline storage, so the
// arrays were allocated) inserted in a scrambled order, then the earliest
// fired. Cancelling at an index then needs the last node moved there and
// sifted up or down.
class TimerCancelTest : public TimerTest {
 protected:
  static constexpr int kN = CX__TIMERS_INLINE + 36;  // coprime with 37
  void SetUp() override {
    TimerTest::SetUp();
    for (int k = 0; k < kN; k++) {
      int d = (k * 37) % kN;
      Register(&en.e[d], 100 + static_cast<uint64_t>(d), en.w[d].get());
    }
    ASSERT_EQ(cx_timers_fire(&timers, 100), 1u);  // entry 0
    log.clear();
    ASSERT_EQ(CheckHeap(timers), "");
    ASSERT_NE(timers.block, nullptr);
  }
  cx_timer_entry *AtIndex(size_t i) {
    return timers.slots[timers.heap[i].slot];
  }
  // Cancels n, then checks the heap and that every other entry still fires
  // in deadline order.
  void CancelAndCheck(cx_timer_entry *n) {
    int id = static_cast<int>(n - en.e.data());
    EXPECT_TRUE(cx_timer_entry_cancel(n));
    EXPECT_FALSE(cx_timer_entry_cancel(n));  // only once
    EXPECT_EQ(n->driver, nullptr);
    EXPECT_FALSE(n->fired);
    EXPECT_EQ(en.w[id]->drops(), 1);  // its waker was released, not woken
    EXPECT_EQ(en.w[id]->woken(), 0);
    EXPECT_EQ(cx_timers_count(&timers), size_t{kN - 2});
    EXPECT_EQ(CheckHeap(timers), "");
    EXPECT_EQ(cx_timers_fire(&timers, 1000), size_t{kN - 2});
    std::vector<int> expected;
    for (int i = 1; i < kN; i++)
      if (i != id) expected.push_back(i);
    EXPECT_EQ(log, expected);
    for (auto &w : en.w) EXPECT_EQ(w->refs(), 0);
    EXPECT_EQ(timers.block, nullptr);  // empty again: memory given back
  }
  Entries en{kN, &log};
};

TEST_F(TimerCancelTest, Root) {
  ASSERT_EQ(AtIndex(0), &en.e[1]);
  CancelAndCheck(AtIndex(0));
  EXPECT_EQ(log.front(), 2);
}

TEST_F(TimerCancelTest, MiddleNode) {
  // A node with a parent and children of its own.
  ASSERT_GT(timers.count, 4u * 1 + 1);
  CancelAndCheck(AtIndex(1));
}

TEST_F(TimerCancelTest, LastChildOfTheRoot) {
  CancelAndCheck(AtIndex(4));
}

TEST_F(TimerCancelTest, Leaf) {
  CancelAndCheck(AtIndex(timers.count - 1));
}

TEST_F(TimerCancelTest, EveryIndex) {
  // Whatever the position, the rest still fires in order.
  for (size_t i = 0; i < static_cast<size_t>(kN - 1); i++) {
    if (i > 0) {  // the driver is empty again: build the same heap anew
      for (auto &w : en.w) w = std::make_unique<CountingWaker>(w->id(), &log);
      log.clear();
      SetUp();
    }
    SCOPED_TRACE(i);
    CancelAndCheck(AtIndex(i));
  }
}

// ---- re-registration -------------------------------------------------------

TEST_F(TimerTest, ReRegisterMovesTheEntryAndReplacesItsWaker) {
  cx_timer_entry e, other;
  cx_timer_entry_init(&e);
  cx_timer_entry_init(&other);
  CountingWaker first(1, &log), second(2, &log), third(3, &log);
  Register(&e, 50, &first);
  Register(&other, 30, &third);
  Register(&e, 10, &second);                // earlier now, with a new waker
  EXPECT_EQ(cx_timers_count(&timers), 2u);  // still one registration
  EXPECT_EQ(first.drops(), 1);              // the old waker was released
  EXPECT_EQ(first.refs(), 0);
  EXPECT_EQ(cx_timers_next_deadline(&timers), 10u);
  EXPECT_EQ(CheckHeap(timers), "");
  EXPECT_EQ(cx_timers_fire(&timers, 100), 2u);
  EXPECT_EQ(log, (std::vector<int>{2, 3}));
  EXPECT_EQ(first.woken(), 0);
  // A fired entry can be registered again.
  Register(&e, 200, &first);
  EXPECT_FALSE(e.fired);
  EXPECT_EQ(cx_timers_fire(&timers, 200), 1u);
  EXPECT_TRUE(e.fired);
  EXPECT_EQ(log, (std::vector<int>{2, 3, 1}));
}

TEST_F(TimerTest, ReRegisterGoesToTheBackOfItsDeadline) {
  Entries en(2, &log);
  Register(&en.e[0], 10, en.w[0].get());
  Register(&en.e[1], 10, en.w[1].get());
  Register(&en.e[0], 10, en.w[0].get());  // same deadline, later order
  EXPECT_EQ(cx_timers_fire(&timers, 10), 2u);
  EXPECT_EQ(log, (std::vector<int>{1, 0}));
}

// ---- wakes that register timers
// -----------------------------------------------

// A waker whose wake registers `entry` at `deadline` (the shape of a periodic
// timer, or of a task polled inline by its wake).
struct Rearm {
  cx_timers *timers;
  cx_timer_entry *entry;
  uint64_t deadline;
  CountingWaker *next;  // the waker the new registration gets
  int wakes;
};
void RearmWake(const void *data) {
  auto *r = static_cast<Rearm *>(const_cast<void *>(data));
  r->wakes++;
  cx_waker w = r->next->Make();
  cx_timers_register(r->timers, r->entry, r->deadline, &w);
}
int RearmClone(const void *, cx_waker *) {
  return CX_ENOTSUP;
}
void RearmDrop(const void *) {}
const cx_waker_vtable kRearmVtable = {RearmClone, RearmWake, RearmWake,
                                      RearmDrop};

TEST_F(TimerTest, EntriesRegisteredByAWakeFireInTheSameCallWhenDue) {
  cx_timer_entry first, due, later;
  cx_timer_entry_init(&first);
  cx_timer_entry_init(&due);
  cx_timer_entry_init(&later);
  CountingWaker due_target(2, &log), later_target(3, &log);
  Rearm r = {&timers, &due, 15, &due_target, 0};
  cx_waker w = {&kRearmVtable, &r};
  ASSERT_EQ(cx_timers_register(&timers, &first, 10, &w), CX_OK);
  Register(&later, 20, &later_target);
  EXPECT_EQ(cx_timers_fire(&timers, 15), 2u);  // first, then due
  EXPECT_EQ(r.wakes, 1);
  EXPECT_EQ(log, std::vector<int>{2});
  EXPECT_TRUE(due.fired);
  EXPECT_FALSE(later.fired);
  EXPECT_EQ(cx_timers_count(&timers), 1u);
  EXPECT_TRUE(cx_timer_entry_cancel(&later));
}

TEST_F(TimerTest, AWakeMayReRegisterItsOwnEntry) {
  cx_timer_entry e;
  cx_timer_entry_init(&e);
  CountingWaker next_target(7, &log);
  Rearm r = {&timers, &e, 25, &next_target, 0};
  cx_waker w = {&kRearmVtable, &r};
  ASSERT_EQ(cx_timers_register(&timers, &e, 10, &w), CX_OK);
  // The entry is re-registered from inside its own wake: it fires once now
  // and stays registered for 25 with the new waker.
  EXPECT_EQ(cx_timers_fire(&timers, 20), 1u);
  EXPECT_EQ(r.wakes, 1);
  EXPECT_FALSE(e.fired);
  EXPECT_EQ(e.driver, &timers);
  EXPECT_EQ(cx_timers_next_deadline(&timers), 25u);
  EXPECT_EQ(cx_timers_fire(&timers, 25), 1u);
  EXPECT_EQ(log, std::vector<int>{7});
  EXPECT_EQ(next_target.refs(), 0);
}

// ---- compaction (a no-op kept for the executor) and growth -----------------

TEST_F(TimerTest, CompactChangesNothing) {
  cx_timers_compact(nullptr);  // no-ops
  cx_timers_compact(&timers);
  Entries en(100, &log);
  for (int i = 0; i < 100; i++)
    Register(&en.e[i], 1000 + static_cast<uint64_t>(i % 7), en.w[i].get());
  cx_timers_compact(&timers);
  EXPECT_EQ(cx_timers_count(&timers), 100u);
  EXPECT_EQ(cx_timers_next_deadline(&timers), 1000u);
  EXPECT_EQ(CheckHeap(timers), "");
  EXPECT_EQ(cx_timers_fire(&timers, 2000), 100u);
  std::vector<int> expected;  // by deadline (i % 7), ties by registration
  for (int d = 0; d < 7; d++)
    for (int i = d; i < 100; i += 7) expected.push_back(i);
  EXPECT_EQ(log, expected);
}

TEST(TimerMemory, InlineFirstThenGrowsAndGivesItAllBack) {
  cxtest::ScopedCountingAllocator alloc;
  ManualClock clock;
  cx_timers t;
  ASSERT_EQ(cx_timers_init(&t, clock.fn(), clock.ctx()), CX_OK);
  std::vector<int> log;
  Entries en(1000, &log);
  for (int i = 0; i < CX__TIMERS_INLINE; i++) {
    cx_waker w = en.w[i]->Make();
    ASSERT_EQ(cx_timers_register(&t, &en.e[i], 5, &w), CX_OK);
  }
  EXPECT_EQ(alloc.allocs(), 0u);  // a few timers: no allocation
  for (int i = CX__TIMERS_INLINE; i < 1000; i++) {
    cx_waker w = en.w[i]->Make();
    ASSERT_EQ(cx_timers_register(&t, &en.e[i], 1000 - i, &w), CX_OK);
  }
  EXPECT_EQ(alloc.live(), 1u);  // one block, grown in place of the last
  EXPECT_GE(t.cap, 1000u);
  EXPECT_EQ(CheckHeap(t), "");
  for (int i = 0; i < 1000; i += 2)
    EXPECT_TRUE(cx_timer_entry_cancel(&en.e[i]));
  EXPECT_EQ(CheckHeap(t), "");
  EXPECT_EQ(cx_timers_fire(&t, 2000), 500u);
  EXPECT_EQ(alloc.live(), 0u);  // empty: nothing held
  EXPECT_EQ(alloc.bad_frees(), 0u);
  EXPECT_EQ(t.cap, size_t{CX__TIMERS_INLINE});
  for (auto &w : en.w) EXPECT_EQ(w->refs(), 0);
}

TEST(TimerMemory, RegisterFailsWithENOMEMAndChangesNothing) {
  cxtest::ScopedCountingAllocator alloc;
  ManualClock clock;
  cx_timers t;
  ASSERT_EQ(cx_timers_init(&t, clock.fn(), clock.ctx()), CX_OK);
  std::vector<int> log;
  Entries en(CX__TIMERS_INLINE + 1, &log);
  for (int i = 0; i < CX__TIMERS_INLINE; i++) {
    cx_waker w = en.w[i]->Make();
    ASSERT_EQ(cx_timers_register(&t, &en.e[i], 10 + i, &w), CX_OK);
  }
  EXPECT_EQ(alloc.allocs(), 0u);
  alloc.FailAfter(0);
  cx_timer_entry &extra = en.e[CX__TIMERS_INLINE];
  cx_waker w = en.w[CX__TIMERS_INLINE]->Make();
  uint64_t seq = t.next_seq;
  EXPECT_EQ(cx_timers_register(&t, &extra, 1, &w), CX_ENOMEM);
  EXPECT_FALSE(cx_waker_is_empty(&w));  // still the caller's
  EXPECT_EQ(extra.driver, nullptr);
  EXPECT_EQ(t.next_seq, seq);
  EXPECT_EQ(cx_timers_count(&t), size_t{CX__TIMERS_INLINE});
  // Re-registering an entry already in the driver needs no memory.
  cx_waker w0 = en.w[0]->Make();
  EXPECT_EQ(cx_timers_register(&t, &en.e[0], 100, &w0), CX_OK);
  EXPECT_EQ(en.w[0]->drops(), 1);  // the old waker
  EXPECT_EQ(CheckHeap(t), "");
  // The sleep future reports it as its result.
  cx_sleep s;
  cx_sleep_init_until(&s, 50);
  CountingWaker task;
  cx_waker borrowed = task.Borrowed();
  cx_context cx = {&borrowed, nullptr, &t, nullptr};
  int result = 0;
  EXPECT_EQ(cx_sleep_poll(&s, &cx, &result), CX_READY);
  EXPECT_EQ(result, CX_ENOMEM);
  EXPECT_EQ(task.refs(), 0);  // its clone was dropped
  alloc.FailNever();
  EXPECT_EQ(cx_timers_register(&t, &extra, 1, &w), CX_OK);
  EXPECT_EQ(cx_timers_fire(&t, 1000), size_t{CX__TIMERS_INLINE + 1});
  std::vector<int> expected = {CX__TIMERS_INLINE};  // deadline 1
  for (int i = 1; i < CX__TIMERS_INLINE; i++) expected.push_back(i);
  expected.push_back(0);  // re-registered at 100
  EXPECT_EQ(log, expected);
  EXPECT_EQ(alloc.live(), 0u);
  for (auto &cw : en.w) EXPECT_EQ(cw->refs(), 0);
}

// ---- random operations against a model -------------------------------------

// 10000 random registrations, re-registrations, cancellations, compactions
// and fires on a pool of entries, checked after every step against a std::set
// ordered by (deadline, registration number), the order the driver promises.
// Run at several ticks (tick_shift) and deadline spreads, so that timers land
// in the near heap, the calendar (and move from it) and the far heap.
struct RandomOpsCase {
  unsigned tick_shift;
  uint64_t spread;     // deadlines: now + [0, spread)
  uint64_t step;       // each fire advances the clock by [0, step)
  bool calendar, far;  // timers are expected there at some point
};

class TimerRandomTest : public TimerTest,
                        public ::testing::WithParamInterface<RandomOpsCase> {};

INSTANTIATE_TEST_SUITE_P(
    Ticks, TimerRandomTest,
    ::testing::Values(
        RandomOpsCase{CX__TICK_SHIFT, 200, 100, false, false},  // near heap
        RandomOpsCase{3, 2000, 100, true, false},       // calendar, ties
        RandomOpsCase{2, 40000, 2000, true, true},      // calendar and far
        RandomOpsCase{8, 4000000, 100000, true, true},  // mostly far
        RandomOpsCase{4, 1u << 20, 30000, true, true}));

TEST_P(TimerRandomTest, RandomOperationsMatchASortedModel) {
  timers.tick_shift = GetParam().tick_shift;  // empty: allowed (timer.h)
  constexpr size_t kPool = 300;
  constexpr int kOps = 10000;
  Entries en(kPool, &log);
  std::set<std::pair<uint64_t, uint64_t>> model;  // (deadline, order)
  std::vector<std::pair<uint64_t, uint64_t>> key(kPool);
  std::vector<bool> in_model(kPool, false);
  std::vector<int> id_of_order;  // registration number -> entry index
  uint64_t now = 0;
  bool saw_calendar = false, saw_far = false, saw_run = false;
  std::mt19937 rng(20240601);  // fixed: the run is reproducible
  for (int op = 0; op < kOps; op++) {
    size_t i = rng() % kPool;
    unsigned kind = rng() % 10;
    if (kind < 5) {  // register (or re-register) at a close deadline
      uint64_t d = now + rng() % GetParam().spread;
      Register(&en.e[i], d, en.w[i].get());
      if (in_model[i]) model.erase(key[i]);
      key[i] = {d, id_of_order.size()};
      id_of_order.push_back(static_cast<int>(i));
      model.insert(key[i]);
      in_model[i] = true;
    } else if (kind < 8) {  // cancel
      EXPECT_EQ(cx_timer_entry_cancel(&en.e[i]), bool(in_model[i]));
      if (in_model[i]) model.erase(key[i]);
      in_model[i] = false;
    } else if (kind == 9) {  // a no-op now: nothing visible
      cx_timers_compact(&timers);
    } else {  // time passes; fire what is due
      now += rng() % GetParam().step;
      clock.Advance(now - cx_timers_now(&timers));  // the driver's cache too
      ASSERT_EQ(cx_timers_now(&timers), now);
      std::vector<int> expected;
      while (!model.empty() && model.begin()->first <= now) {
        int id = id_of_order[model.begin()->second];
        expected.push_back(id);
        in_model[id] = false;
        model.erase(model.begin());
      }
      log.clear();
      EXPECT_EQ(cx_timers_fire(&timers, now), expected.size());
      ASSERT_EQ(log, expected) << "op " << op;
    }
    ASSERT_EQ(cx_timers_count(&timers), model.size()) << "op " << op;
    ASSERT_EQ(cx_timers_next_deadline(&timers),
              model.empty() ? CX_DEADLINE_NONE : model.begin()->first)
        << "op " << op;
    ASSERT_EQ(CheckHeap(timers), "") << "op " << op;
    saw_calendar |= timers.cal_summary != 0;
    saw_run |= timers.run_head < timers.run_end;
    saw_far |= timers.fcount != 0;
  }
  EXPECT_EQ(saw_calendar, GetParam().calendar);
  EXPECT_EQ(saw_run, GetParam().calendar);  // each bucket becomes a run
  EXPECT_EQ(saw_far, GetParam().far);
  // Drain: everything left fires in model order.
  std::vector<int> expected;
  for (const auto &k : model) expected.push_back(id_of_order[k.second]);
  log.clear();
  EXPECT_EQ(cx_timers_fire(&timers, CX_DEADLINE_NONE - 1), expected.size());
  EXPECT_EQ(log, expected);
  for (auto &w : en.w) EXPECT_EQ(w->refs(), 0);
}

// One tick holding many timers: they reach the run (sorted by merges, not
// only by the insertion sort of small pieces) and fire by deadline, then
// registration order; cancels leave holes, at the front too, which never
// fire; timers registered for the current tick while the run is being
// taken join in order.
TEST_F(TimerTest, ABusyTickFiresInOrderWithHolesAndLateComers) {
  constexpr size_t kN = 1000;
  Entries en(kN + 10, &log);
  std::mt19937 rng(7);
  std::set<std::tuple<uint64_t, size_t, int>> model;  // deadline, order, id
  const uint64_t tick = uint64_t{1} << timers.tick_shift;
  size_t order = 0;
  // An early timer first: it becomes the current tick, so the busy tick
  // and a later one wait in the calendar until it has fired.
  Register(&en.e[kN + 8], tick + 5, en.w[kN + 8].get());
  model.insert({tick + 5, order++, int(kN + 8)});
  Register(&en.e[kN + 9], 100 * tick, en.w[kN + 9].get());
  model.insert({100 * tick, order++, int(kN + 9)});
  for (size_t i = 0; i < kN; i++) {
    uint64_t d = 3 * tick + rng() % 64;  // one tick, many ties
    Register(&en.e[i], d, en.w[i].get());
    model.insert({d, order++, int(i)});
  }
  ASSERT_EQ(CheckHeap(timers), "");
  EXPECT_NE(timers.cal_summary, 0u);
  // Fire up to the middle of the busy tick: the early one fires, then the
  // busy tick becomes the run and its first half fires.
  clock.Advance(3 * tick + 31);
  cx_timers_now(&timers);
  std::vector<int> expected;
  while (std::get<0>(*model.begin()) <= 3 * tick + 31) {
    expected.push_back(std::get<2>(*model.begin()));
    model.erase(model.begin());
  }
  log.clear();
  EXPECT_EQ(cx_timers_fire(&timers, 3 * tick + 31), expected.size());
  ASSERT_EQ(log, expected);
  ASSERT_GT(timers.run_end - timers.run_head, 100u);  // the rest: a run
  ASSERT_EQ(CheckHeap(timers), "");
  // Cancel the run's front, a few in the middle and its last.
  std::vector<int> cancel = {std::get<2>(*model.begin())};
  for (int k = 0; k < 20; k++) {
    auto it = model.begin();
    std::advance(it, 1 + rng() % (model.size() - 2));
    if (std::get<2>(*it) < int(kN)) cancel.push_back(std::get<2>(*it));
  }
  for (int id : cancel) {
    bool was = false;
    for (auto it = model.begin(); it != model.end(); ++it)
      if (std::get<2>(*it) == id) {
        model.erase(it);
        was = true;
        break;
      }
    EXPECT_EQ(cx_timer_entry_cancel(&en.e[id]), was);
    ASSERT_EQ(CheckHeap(timers), "");
  }
  // Late comers for the current tick (and an earlier one).
  for (size_t i = kN; i < kN + 8; i++) {
    uint64_t d = 3 * tick + 32 + rng() % 32 - (i == kN ? 40 : 0);
    Register(&en.e[i], d, en.w[i].get());
    model.insert({d, order++, int(i)});
  }
  ASSERT_EQ(CheckHeap(timers), "");
  ASSERT_EQ(cx_timers_next_deadline(&timers), std::get<0>(*model.begin()));
  expected.clear();
  for (const auto &m : model) expected.push_back(std::get<2>(m));
  log.clear();
  EXPECT_EQ(cx_timers_fire(&timers, CX_DEADLINE_NONE - 1), expected.size());
  EXPECT_EQ(log, expected);
  EXPECT_EQ(cx_timers_count(&timers), 0u);
  for (auto &w : en.w) EXPECT_EQ(w->refs(), 0);
}

// ---- the sleep future
// ------------------------------------------------------------

class SleepTest : public TimerTest {
 protected:
  // Polls s as the task owning `waker` would, inside an executor with our
  // driver (or without timers when `with_timers` is false).
  cx_poll Poll(cx_sleep *s, const CountingWaker &waker, int *result,
               bool with_timers = true) {
    cx_waker w = waker.Borrowed();
    cx_context cx = {&w, nullptr, with_timers ? &timers : nullptr, nullptr};
    return cx_sleep_poll(s, &cx, result);
  }
};

TEST_F(SleepTest, ReadyAtOnceWhenTheDeadlineHasPassed) {
  clock.Set(1000);
  cx_timers_now(&timers);  // the executor refreshes "now" every tick
  CountingWaker task;
  for (uint64_t deadline : {uint64_t{0}, uint64_t{999}, uint64_t{1000}}) {
    cx_sleep s;
    cx_sleep_init_until(&s, deadline);
    int result = 1;
    EXPECT_EQ(Poll(&s, task, &result), CX_READY) << deadline;
    EXPECT_EQ(result, CX_OK);
    cx_sleep_drop(&s);
  }
  EXPECT_EQ(task.clones(), 0);  // nothing was registered
  EXPECT_EQ(cx_timers_count(&timers), 0u);
  // A zero-length sleep_for is ready at its first poll too.
  cx_sleep s;
  cx_sleep_init_for(&s, 0);
  int result = 1;
  EXPECT_EQ(Poll(&s, task, &result), CX_READY);
  EXPECT_EQ(result, CX_OK);
}

TEST_F(SleepTest, NeedsATimerDriver) {
  CountingWaker task;
  cx_sleep s;
  cx_sleep_init_until(&s, 100);
  int result = 0;
  EXPECT_EQ(Poll(&s, task, &result, /*with_timers=*/false), CX_READY);
  EXPECT_EQ(result, CX_ENOTSUP);
  EXPECT_EQ(task.clones(), 0);
  cx_sleep_drop(&s);
}

TEST_F(SleepTest, InvalidArguments) {
  CountingWaker task;
  cx_sleep s;
  cx_sleep_init_until(&s, 100);
  int result = 0;
  cx_waker w = task.Borrowed();
  cx_context cx = {&w, nullptr, &timers, nullptr};
  EXPECT_EQ(cx_sleep_poll(nullptr, &cx, &result), CX_READY);
  EXPECT_EQ(result, CX_EINVAL);
  result = 0;
  EXPECT_EQ(cx_sleep_poll(&s, nullptr, &result), CX_READY);
  EXPECT_EQ(result, CX_EINVAL);
  cx_context no_waker = {nullptr, nullptr, &timers, nullptr};
  result = 0;
  EXPECT_EQ(cx_sleep_poll(&s, &no_waker, &result), CX_READY);
  EXPECT_EQ(result, CX_EINVAL);
  EXPECT_EQ(cx_sleep_poll(&s, nullptr, nullptr), CX_READY);  // result NULL
  EXPECT_EQ(cx_timers_count(&timers), 0u);
  cx_sleep_drop(nullptr);  // a no-op
}

TEST_F(SleepTest, RegistersTheWakerAndCompletesWhenFired) {
  CountingWaker task;
  cx_sleep s;
  cx_sleep_init_until(&s, 100);
  EXPECT_EQ(cx_sleep_deadline(&s), 100u);
  int result = 1;
  EXPECT_EQ(Poll(&s, task, &result), CX_PENDING);
  EXPECT_EQ(result, 1);  // untouched while pending
  EXPECT_EQ(cx_timers_count(&timers), 1u);
  EXPECT_EQ(cx_timers_next_deadline(&timers), 100u);
  EXPECT_EQ(task.clones(), 1);
  EXPECT_EQ(task.refs(), 1);
  // A spurious poll with the same waker registers nothing new.
  EXPECT_EQ(Poll(&s, task, &result), CX_PENDING);
  EXPECT_EQ(task.clones(), 1);
  EXPECT_EQ(cx_timers_count(&timers), 1u);

  clock.Set(99);
  EXPECT_EQ(cx_timers_fire(&timers, cx_timers_now(&timers)), 0u);
  EXPECT_EQ(task.woken(), 0);
  clock.Set(100);
  EXPECT_EQ(cx_timers_fire(&timers, cx_timers_now(&timers)), 1u);
  EXPECT_EQ(task.wakes(), 1);
  EXPECT_EQ(task.refs(), 0);
  EXPECT_EQ(Poll(&s, task, &result), CX_READY);
  EXPECT_EQ(result, CX_OK);
  EXPECT_EQ(Poll(&s, task, &result), CX_READY);  // stays ready
  EXPECT_EQ(task.clones(), 1);
  cx_sleep_drop(&s);
  EXPECT_EQ(task.refs(), 0);
}

TEST_F(SleepTest, PolledByAnotherTaskReplacesTheWaker) {
  CountingWaker a(1, &log), b(2, &log);
  cx_sleep s;
  cx_sleep_init_until(&s, 50);
  int result = 0;
  EXPECT_EQ(Poll(&s, a, &result), CX_PENDING);
  EXPECT_EQ(Poll(&s, b, &result), CX_PENDING);
  EXPECT_EQ(a.refs(), 0);  // released at once
  EXPECT_EQ(a.drops(), 1);
  EXPECT_EQ(b.refs(), 1);
  EXPECT_EQ(cx_timers_count(&timers), 1u);  // still one timer
  EXPECT_EQ(cx_timers_fire(&timers, 50), 1u);
  EXPECT_EQ(log, std::vector<int>{2});
  EXPECT_EQ(a.woken(), 0);
  EXPECT_EQ(Poll(&s, b, &result), CX_READY);
  EXPECT_EQ(result, CX_OK);
  cx_sleep_drop(&s);
}

TEST_F(SleepTest, WakerCloneFailureIsTheResult) {
  CountingWaker a, b;
  cx_sleep s;
  cx_sleep_init_until(&s, 50);
  int result = 0;
  a.set_clone_error(CX_EOVERFLOW);
  EXPECT_EQ(Poll(&s, a, &result), CX_READY);
  EXPECT_EQ(result, CX_EOVERFLOW);
  EXPECT_EQ(cx_timers_count(&timers), 0u);
  // Already registered: a refused replacement keeps the old waker.
  EXPECT_EQ(Poll(&s, b, &result), CX_PENDING);
  EXPECT_EQ(Poll(&s, a, &result), CX_READY);
  EXPECT_EQ(result, CX_EOVERFLOW);
  EXPECT_EQ(b.refs(), 1);
  cx_sleep_drop(&s);
  EXPECT_EQ(b.refs(), 0);
}

TEST_F(SleepTest, DropCancelsTheTimer) {
  CountingWaker task;
  cx_sleep s;
  cx_sleep_init_until(&s, 100);
  int result = 0;
  EXPECT_EQ(Poll(&s, task, &result), CX_PENDING);
  EXPECT_EQ(cx_timers_count(&timers), 1u);
  cx_sleep_drop(&s);
  EXPECT_EQ(cx_timers_count(&timers), 0u);
  EXPECT_EQ(cx_timers_next_deadline(&timers), CX_DEADLINE_NONE);
  EXPECT_EQ(task.refs(), 0);
  EXPECT_EQ(task.woken(), 0);
  cx_sleep_drop(&s);  // idempotent
  EXPECT_EQ(task.drops(), 1);
  EXPECT_EQ(cx_timers_fire(&timers, 1000), 0u);
}

TEST_F(SleepTest, SleepForResolvesItsDeadlineAtFirstPoll) {
  clock.Set(1000);
  CountingWaker task;
  cx_sleep s;
  cx_sleep_init_for(&s, 500);
  EXPECT_EQ(cx_sleep_deadline(&s), CX_DEADLINE_NONE);
  clock.Set(3000);  // time passes before the first poll
  int result = 0;
  EXPECT_EQ(Poll(&s, task, &result), CX_PENDING);
  EXPECT_EQ(cx_sleep_deadline(&s), 3500u);
  clock.Set(5000);  // later polls do not move it
  EXPECT_EQ(Poll(&s, task, &result), CX_PENDING);
  EXPECT_EQ(cx_sleep_deadline(&s), 3500u);
  EXPECT_EQ(cx_timers_fire(&timers, 3499), 0u);
  EXPECT_EQ(cx_timers_fire(&timers, 3500), 1u);
  EXPECT_EQ(Poll(&s, task, &result), CX_READY);
  EXPECT_EQ(result, CX_OK);
}

TEST_F(SleepTest, SleepForSaturatesInsteadOfWrapping) {
  clock.Set(1000);
  CountingWaker task;
  cx_sleep s;
  cx_sleep_init_for(&s, UINT64_MAX);
  int result = 0;
  EXPECT_EQ(Poll(&s, task, &result), CX_PENDING);
  EXPECT_EQ(cx_sleep_deadline(&s), CX_DEADLINE_NONE - 1);
  EXPECT_EQ(cx_timers_fire(&timers, 1u << 30), 0u);
  cx_sleep_drop(&s);
}

TEST_F(SleepTest, AsASpawnableFuture) {
  EXPECT_EQ(cx_future_vtable_check(&cx_sleep_vtable), CX_OK);
  EXPECT_EQ(cx_sleep_vtable.state_size, sizeof(cx_sleep));
  EXPECT_EQ(cx_sleep_vtable.output_size, sizeof(int));
  CountingWaker task;
  cx_waker w = task.Borrowed();
  cx_context cx = {&w, nullptr, &timers, nullptr};
  cx_sleep s;
  cx_sleep_init_until(&s, 10);
  int out = 1;
  EXPECT_EQ(cx_sleep_vtable.poll(&s, &cx, &out), CX_PENDING);
  EXPECT_EQ(cx_timers_count(&timers), 1u);
  cx_sleep_vtable.drop(&s);  // drop before firing cancels
  EXPECT_EQ(cx_timers_count(&timers), 0u);
  EXPECT_EQ(task.refs(), 0);
  // A second one, polled after its deadline: ready, output CX_OK.
  cx_sleep s2;
  cx_sleep_init_until(&s2, 10);
  clock.Set(10);
  cx_timers_now(&timers);
  EXPECT_EQ(cx_sleep_vtable.poll(&s2, &cx, &out), CX_READY);
  EXPECT_EQ(out, CX_OK);
  cx_sleep_vtable.drop(&s2);
}

// ---- "until no deadline"
// -----------------------------------------------------

TEST_F(SleepTest, UntilNoDeadlineNeverCompletes) {
  CountingWaker task;
  cx_sleep s;
  cx_sleep_init_until(&s, CX_DEADLINE_NONE);
  int result = 12345;
  for (uint64_t now : {uint64_t{0}, uint64_t{1} << 40, CX_DEADLINE_NONE - 1}) {
    clock.Set(now);
    cx_timers_now(&timers);
    EXPECT_EQ(Poll(&s, task, &result), CX_PENDING) << now;
    EXPECT_EQ(cx_timers_fire(&timers, now), 0u);
  }
  EXPECT_EQ(result, 12345);  // untouched: it never completed
  EXPECT_EQ(cx_sleep_deadline(&s), CX_DEADLINE_NONE);
  EXPECT_EQ(cx_timers_count(&timers), 0u);  // nothing to fire, ever
  EXPECT_EQ(task.clones(), 0);
  cx_sleep_drop(&s);
  cx_sleep_drop(&s);
}

TEST_F(SleepTest, ForTheLongestDurationStillEnds) {
  // sleep_for saturates one short of "no deadline": it is registered.
  CountingWaker task;
  cx_sleep s;
  cx_sleep_init_for(&s, CX_DEADLINE_NONE);
  int result = 1;
  EXPECT_EQ(Poll(&s, task, &result), CX_PENDING);
  EXPECT_EQ(cx_sleep_deadline(&s), CX_DEADLINE_NONE - 1);
  EXPECT_EQ(cx_timers_count(&timers), 1u);
  EXPECT_EQ(cx_timers_fire(&timers, CX_DEADLINE_NONE - 1), 1u);
  EXPECT_EQ(Poll(&s, task, &result), CX_READY);
  EXPECT_EQ(result, CX_OK);
}

TEST_F(SleepTest, TimeoutUntilNoDeadlineNeverTimesOut) {
  cxtest::Stats stats;
  cxtest::Never never = {CX_WAKER_EMPTY, &stats};
  int inner_out = 0;
  cx_timeout to;
  ASSERT_EQ(cx_timeout_init_until(&to, cx_future{&cxtest::kNeverVt, &never},
                                  &inner_out, CX_DEADLINE_NONE),
            CX_OK);
  CountingWaker task;
  cx_waker w = task.Borrowed();
  cx_context cx = {&w, nullptr, &timers, nullptr};
  int result = 12345;
  for (uint64_t now : {uint64_t{0}, uint64_t{1} << 50, CX_DEADLINE_NONE - 1}) {
    clock.Set(now);
    cx_timers_now(&timers);
    cx_timers_fire(&timers, now);
    EXPECT_EQ(cx_timeout_poll(&to, &cx, &result), CX_PENDING) << now;
  }
  EXPECT_EQ(result, 12345);
  EXPECT_EQ(stats.polls, 3);  // the inner future is still being polled
  cx_timeout_drop(&to);
  EXPECT_EQ(stats.drops, 1);
  EXPECT_EQ(task.refs(), 0);
}

// ---- NULL arguments: the whole surface
// ---------------------------------------

TEST(TimerNulls, EveryFunctionHandlesNull) {
  // One rule (timer.h): error-returning functions give CX_EINVAL, the
  // others act on NULL as on an empty driver or an unregistered entry.
  EXPECT_EQ(cx_timers_init(nullptr, nullptr, nullptr), CX_EINVAL);
  uint64_t before = cx_clock_now();
  uint64_t now = cx_timers_now(nullptr);  // the default clock
  EXPECT_LE(before, now);
  EXPECT_LE(now, cx_clock_now());
  cx_timer_entry_init(nullptr);
  cx_waker w = CX_WAKER_EMPTY;
  cx_timers t;
  ASSERT_EQ(cx_timers_init(&t, nullptr, nullptr), CX_OK);
  cx_timer_entry e;
  cx_timer_entry_init(&e);
  EXPECT_EQ(cx_timers_register(nullptr, &e, 1, &w), CX_EINVAL);
  EXPECT_EQ(cx_timers_register(&t, nullptr, 1, &w), CX_EINVAL);
  EXPECT_EQ(cx_timers_register(&t, &e, 1, nullptr), CX_EINVAL);
  EXPECT_FALSE(cx_timer_entry_cancel(nullptr));
  EXPECT_EQ(cx_timers_cancel_all(nullptr), 0u);
  EXPECT_EQ(cx_timers_next_deadline(nullptr), CX_DEADLINE_NONE);
  cx_timers_compact(nullptr);
  EXPECT_EQ(cx_timers_fire(nullptr, CX_DEADLINE_NONE - 1), 0u);
  EXPECT_EQ(cx_timers_count(nullptr), 0u);
  cx_sleep_init_for(nullptr, 5);
  cx_sleep_init_until(nullptr, 5);
  int result = 0;
  EXPECT_EQ(cx_sleep_poll(nullptr, nullptr, &result), CX_READY);
  EXPECT_EQ(result, CX_EINVAL);
  cx_sleep_drop(nullptr);
  EXPECT_EQ(cx_sleep_deadline(nullptr), CX_DEADLINE_NONE);
  EXPECT_EQ(cx_timers_count(&t), 0u);
}

// ---- cancel_all
// ------------------------------------------------------------------

// A registration whose waker owns the memory holding its entry, as a task
// does: dropping the waker frees the entry (ASan sees any later use). The
// drop may also cancel another holder's entry, or register a fresh one.
struct Holder {
  cx_timer_entry e;
  cx_timers *t = nullptr;
  Holder *cancel_on_drop = nullptr;
  Holder *register_on_drop = nullptr;
  int *drops = nullptr;
  int *wakes = nullptr;
  static int Clone(const void *, cx_waker *out) {
    *out = CX_WAKER_EMPTY;
    return CX_EOVERFLOW;  // never cloned by the driver
  }
  static void Wake(const void *data) {
    auto *h = static_cast<Holder *>(const_cast<void *>(data));
    ++*h->wakes;
    delete h;
  }
  static void WakeByRef(const void *) {}
  static void Drop(const void *data) {
    auto *h = static_cast<Holder *>(const_cast<void *>(data));
    ++*h->drops;
    Holder *c = h->cancel_on_drop, *r = h->register_on_drop;
    cx_timers *t = h->t;
    delete h;  // the entry goes with it
    if (c) cx_timer_entry_cancel(&c->e);
    if (r) {
      cx_waker w = r->Waker();
      EXPECT_EQ(cx_timers_register(t, &r->e, 7, &w), CX_OK);
    }
  }
  static const cx_waker_vtable kVt;
  cx_waker Waker() { return cx_waker{&kVt, this}; }
  Holder(cx_timers *timers, int *d, int *wk) : t(timers), drops(d), wakes(wk) {
    cx_timer_entry_init(&e);
  }
};
const cx_waker_vtable Holder::kVt = {Holder::Clone, Holder::Wake,
                                     Holder::WakeByRef, Holder::Drop};

TEST_F(TimerTest, CancelAllDropsEveryWakerAndFiresNone) {
  CountingWaker target;
  Entries en(10, &log);
  for (int i = 0; i < 10; i++)
    Register(&en.e[i], 100 + static_cast<uint64_t>(i % 3), en.w[i].get());
  EXPECT_EQ(cx_timers_cancel_all(&timers), 10u);
  EXPECT_EQ(cx_timers_count(&timers), 0u);
  EXPECT_EQ(cx_timers_next_deadline(&timers), CX_DEADLINE_NONE);
  EXPECT_EQ(timers.block, nullptr);  // memory given back
  EXPECT_TRUE(log.empty());          // nothing woken
  for (int i = 0; i < 10; i++) {
    EXPECT_EQ(en.e[i].driver, nullptr);
    EXPECT_FALSE(en.e[i].fired);
    EXPECT_EQ(en.w[i]->drops(), 1);
    EXPECT_EQ(en.w[i]->refs(), 0);
    EXPECT_FALSE(cx_timer_entry_cancel(&en.e[i]));
  }
  EXPECT_EQ(cx_timers_cancel_all(&timers), 0u);  // empty: nothing to do
  // The driver is usable again.
  Register(&en.e[0], 5, en.w[0].get());
  EXPECT_EQ(cx_timers_fire(&timers, 5), 1u);
  EXPECT_EQ(log, std::vector<int>{0});
}

TEST_F(TimerTest, CancelAllWhenDropsFreeEntriesAndReenter) {
  cxtest::ScopedCountingAllocator alloc;  // the driver's block must go too
  int drops = 0, wakes = 0;
  std::vector<Holder *> h;
  for (int i = 0; i < 40; i++) h.push_back(new Holder(&timers, &drops, &wakes));
  // Holder 39 is the last node (latest deadline): cancel_all drops it
  // first, and that drop cancels holder 0 (freeing it) and registers a
  // fresh holder, which the loop then cancels as well.
  Holder *fresh = new Holder(&timers, &drops, &wakes);
  h[39]->cancel_on_drop = h[0];
  h[39]->register_on_drop = fresh;
  for (int i = 0; i < 40; i++) {
    cx_waker w = h[i]->Waker();
    ASSERT_EQ(cx_timers_register(&timers, &h[i]->e, 100 + i, &w), CX_OK);
  }
  ASSERT_EQ(CheckHeap(timers), "");
  // 40 registered; holder 0 is cancelled from a drop (not counted), fresh
  // is registered from one (counted): 40 - 1 + 1.
  EXPECT_EQ(cx_timers_cancel_all(&timers), 40u);
  EXPECT_EQ(drops, 41);
  EXPECT_EQ(wakes, 0);
  EXPECT_EQ(cx_timers_count(&timers), 0u);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- the lock hook (a driver shared by threads: the runtime's)
// ----------------

TEST(TimersLock, SetLockArgumentsAndLockedOperationsBehaveAsUnlocked) {
  EXPECT_EQ(cx_timers_set_lock(nullptr, nullptr), CX_EINVAL);
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  ManualClock clock(100);
  cx_timers t;
  ASSERT_EQ(cx_timers_init(&t, clock.fn(), clock.ctx()), CX_OK);
  ASSERT_EQ(cx_timers_set_lock(&t, &mu), CX_OK);
  CountingWaker target;
  cx_timer_entry a, b;
  cx_timer_entry_init(&a);
  cx_timer_entry_init(&b);
  cx_waker w = target.Make();
  ASSERT_EQ(cx_timers_register(&t, &a, 200, &w), CX_OK);
  w = target.Make();
  ASSERT_EQ(cx_timers_register(&t, &b, 300, &w), CX_OK);
  EXPECT_EQ(cx_timers_next_deadline(&t), 200u);
  EXPECT_TRUE(cx_timer_entry_cancel(&a));
  EXPECT_FALSE(cx_timer_entry_cancel(&a));
  EXPECT_EQ(target.drops(), 1);
  EXPECT_EQ(cx_timers_fire(&t, 299), 0u);
  EXPECT_EQ(cx_timers_fire(&t, 300), 1u);
  EXPECT_TRUE(b.fired);
  EXPECT_FALSE(cx_timer_entry_cancel(&b));  // fired: the waker was woken
  EXPECT_EQ(target.wakes(), 1);
  EXPECT_EQ(target.refs(), 0);
  // The sleep future on a locked driver reads the clock itself.
  CountingWaker task;
  cx_waker tw = task.Borrowed();
  cx_context cx = {&tw, nullptr, &t, nullptr};
  cx_sleep s;
  cx_sleep_init_for(&s, 50);
  int rc = -1;
  clock.Set(1000);
  EXPECT_EQ(cx_sleep_poll(&s, &cx, &rc), CX_PENDING);
  EXPECT_EQ(cx_sleep_deadline(&s), 1050u);
  EXPECT_EQ(cx_sleep_poll(&s, &cx, &rc), CX_PENDING);  // same task: kept
  EXPECT_EQ(task.refs(), 1);
  clock.Set(1050);
  EXPECT_EQ(cx_sleep_poll(&s, &cx, &rc), CX_READY);  // due: no fire needed
  EXPECT_EQ(rc, CX_OK);
  EXPECT_EQ(task.refs(), 0);
  EXPECT_EQ(cx_timers_count(&t), 0u);
  // A clone failure is reported, and leaves nothing registered.
  cx_sleep_init_until(&s, 5000);
  task.set_clone_error(CX_ENOMEM);
  EXPECT_EQ(cx_sleep_poll(&s, &cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_ENOMEM);
  EXPECT_EQ(cx_timers_count(&t), 0u);
  cx_sleep_drop(&s);
  pthread_mutex_destroy(&mu);
}

// An unlocked driver may go away before its fired or cancelled entries:
// cancelling them afterwards must not look at it (ASan checks).
TEST(TimersLock, UnlockedEntryOutlivesItsDriver) {
  auto t = std::make_unique<cx_timers>();
  ASSERT_EQ(cx_timers_init(t.get(), nullptr, nullptr), CX_OK);
  CountingWaker target;
  cx_timer_entry e;
  cx_timer_entry_init(&e);
  cx_waker w = target.Make();
  ASSERT_EQ(cx_timers_register(t.get(), &e, 1, &w), CX_OK);
  EXPECT_EQ(cx_timers_fire(t.get(), 1), 1u);
  t.reset();
  EXPECT_FALSE(cx_timer_entry_cancel(&e));
  EXPECT_EQ(target.refs(), 0);
}

// A fire on one thread races with cancels on another: every entry's waker
// is consumed exactly once, woken (the entry fired) or dropped (the cancel
// returned true), never both, never neither.
TEST(TimersLock, ConcurrentFireAndCancelConsumeEachWakerOnce) {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  cx_timers t;
  ASSERT_EQ(cx_timers_init(&t, nullptr, nullptr), CX_OK);
  ASSERT_EQ(cx_timers_set_lock(&t, &mu), CX_OK);
  constexpr int kEntries = 3000;  // beyond the inline storage
  CountingWaker target;
  std::vector<cx_timer_entry> es(kEntries);
  for (int i = 0; i < kEntries; i++) {
    cx_timer_entry_init(&es[i]);
    cx_waker w = target.Make();
    ASSERT_EQ(cx_timers_register(&t, &es[i], static_cast<uint64_t>(i), &w),
              CX_OK);
  }
  std::atomic<bool> go{false};
  std::vector<char> cancelled(kEntries, 0);
  std::thread canceller([&] {
    while (!go.load()) {
    }
    for (int i = kEntries - 1; i >= 0; i--)
      cancelled[i] = cx_timer_entry_cancel(&es[i]) ? 1 : 0;
  });
  go = true;
  size_t fired = 0;
  for (uint64_t now = 0; now < kEntries; now += 7)
    fired += cx_timers_fire(&t, now);
  fired += cx_timers_fire(&t, kEntries);
  canceller.join();
  size_t n_cancelled = 0;
  for (int i = 0; i < kEntries; i++) {
    EXPECT_NE(es[i].fired, cancelled[i] == 1) << i;
    n_cancelled += cancelled[i];
  }
  EXPECT_EQ(fired + n_cancelled, static_cast<size_t>(kEntries));
  EXPECT_EQ(target.wakes(), static_cast<long>(fired));
  EXPECT_EQ(target.drops(), static_cast<long>(n_cancelled));
  EXPECT_EQ(target.refs(), 0);
  EXPECT_EQ(cx_timers_count(&t), 0u);
  pthread_mutex_destroy(&mu);
}

}  // namespace
