// Helpers shared by cexec's GoogleTest suites (//tests:testutil).
//
//   ScopedCountingAllocator  installs a counting, optionally failing,
//                            allocator with cx_set_allocator() for its
//                            lifetime, then restores the default.
//   ManualClock              a cx_clock_fn over a number the test sets.
//   Countdown, Never         test futures (kCountdownVt, kNeverVt) with Stats.
//   CountingWaker            a reference-counted waker target that counts
//                            every vtable call (and can refuse clones).
//
// Typical use:
//
//   cxtest::ScopedCountingAllocator alloc;   // first line of the test
//   ... create and destroy cexec objects ...
//   EXPECT_EQ(alloc.live(), 0u);             // nothing leaked
//   EXPECT_EQ(alloc.bad_frees(), 0u);        // every free matched its alloc
//
//   alloc.FailAt(2);     // the 2nd allocation from now returns NULL
//   alloc.FailAfter(0);  // every allocation from now on returns NULL
//
//   cxtest::ManualClock clock;               // reads 0
//   cx_timers_init(&timers, clock.fn(), clock.ctx());
//   clock.Advance(5 * CX_NSEC_PER_MSEC);
//
//   cxtest::CountingWaker target;
//   cx_waker w = target.Make();              // owns one reference
//   cx_waker_wake(&w);                       // target.wakes() == 1, refs() 0
#ifndef CEXEC_TESTS_TESTUTIL_H
#define CEXEC_TESTS_TESTUTIL_H

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "timer/timer.h"
#include "waker/alloc.h"
#include "waker/waker.h"

struct cx_executor;

namespace cxtest {

// Counts every block cexec allocates through cx_alloc(). Installed by the
// constructor, the default allocator is put back by the destructor. Only one
// may exist at a time (the allocator is process-wide), and it must outlive
// every cexec object made while it is installed: create it first in a test.
//
// Thread-safe: the counters may be read, and allocations made, from any
// thread. Frees are checked against the allocation (same pointer, size and
// align); mismatches are counted in bad_frees() rather than crashing.
class ScopedCountingAllocator {
 public:
  ScopedCountingAllocator();
  ~ScopedCountingAllocator();
  ScopedCountingAllocator(const ScopedCountingAllocator &) = delete;
  ScopedCountingAllocator &operator=(const ScopedCountingAllocator &) = delete;

  // Blocks allocated and not yet freed, and their bytes.
  size_t live() const;
  size_t live_bytes() const;
  // Successful allocations, calls to alloc (including refused ones), and
  // calls refused because of FailAt / FailAfter, since installation.
  size_t allocs() const;
  size_t attempts() const;
  size_t failures() const;
  // Frees of an unknown pointer or with a size/align differing from alloc.
  size_t bad_frees() const;

  // Makes the k-th allocation attempt counted from this call (k >= 1) fail,
  // and only that one. Replaces any earlier failure plan.
  void FailAt(size_t k);
  // Lets the next k attempts succeed and makes every later one fail (k = 0:
  // fail everything from now on). Replaces any earlier failure plan.
  void FailAfter(size_t k);
  // Cancels the failure plan: every allocation succeeds again.
  void FailNever();

 private:
  static void *Alloc(void *ctx, size_t size, size_t align);
  static void Free(void *ctx, void *ptr, size_t size, size_t align);
  bool ShouldFail();  // mu_ held

  struct Block {
    size_t size, align;
  };
  mutable std::mutex mu_;
  std::map<void *, Block> blocks_;  // live blocks
  size_t live_bytes_ = 0;
  size_t allocs_ = 0, attempts_ = 0, failures_ = 0, bad_frees_ = 0;
  // Failure plan, in attempts counted from the last Fail* call.
  enum class Plan { kNever, kAt, kAfter } plan_ = Plan::kNever;
  size_t plan_k_ = 0;
  size_t since_plan_ = 0;
};

// A clock for cx_timers_init / cx_executor_options: reads `now`, which only
// the test moves. Reading and moving are atomic, so another thread may
// advance it while an executor reads it.
class ManualClock {
 public:
  explicit ManualClock(uint64_t start_ns = 0) : now_(start_ns) {}
  cx_clock_fn fn() const { return &ManualClock::Read; }
  void *ctx() { return this; }
  uint64_t now() const { return now_.load(); }
  void Set(uint64_t ns) { now_.store(ns); }
  void Advance(uint64_t ns) { now_.fetch_add(ns); }

 private:
  static uint64_t Read(void *ctx);
  std::atomic<uint64_t> now_;
};

// A waker target that counts what is done to it. Every cx_waker made by
// Make() or by cloning one owns a reference; refs() is how many are alive.
// Counters are atomic: wakers may be used from any thread. The object must
// outlive every waker pointing at it (tests check refs() == 0 at the end).
//
// If a log is given, every wake and wake_by_ref appends id to it (the log
// is not synchronised: single-threaded tests only).
class CountingWaker {
 public:
  explicit CountingWaker(int id = 0, std::vector<int> *log = nullptr)
      : id_(id), log_(log) {}
  CountingWaker(const CountingWaker &) = delete;
  CountingWaker &operator=(const CountingWaker &) = delete;

  // A new waker owning one reference (counted in refs(), not in clones()).
  cx_waker Make();
  // A waker value pointing here that owns nothing: for passing where a
  // borrowed waker is expected (a cx_context). Never drop or wake it.
  cx_waker Borrowed() const;

  // While set to a nonzero code, clone refuses with that code.
  void set_clone_error(int rc) { clone_error_ = rc; }

  int id() const { return id_; }
  long refs() const { return refs_; }
  long clones() const { return clones_; }
  long wakes() const { return wakes_; }  // by value (consuming)
  long wake_by_refs() const { return wake_by_refs_; }
  long drops() const { return drops_; }
  long woken() const { return wakes_ + wake_by_refs_; }  // either kind

  static const cx_waker_vtable kVtable;

 private:
  static int Clone(const void *data, cx_waker *out);
  static void Wake(const void *data);
  static void WakeByRef(const void *data);
  static void Drop(const void *data);

  int id_;
  std::vector<int> *log_;
  std::atomic<int> clone_error_{0};
  std::atomic<long> refs_{0}, clones_{0}, wakes_{0}, wake_by_refs_{0},
      drops_{0};
};

// Fails the test program instead of letting it hang: unless destroyed
// within `seconds`, prints `what` and aborts. For tests of calls that used
// to block forever (a regression then fails fast with a message).
class Watchdog {
 public:
  Watchdog(int seconds, const char *what);
  ~Watchdog();
  Watchdog(const Watchdog &) = delete;
  Watchdog &operator=(const Watchdog &) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

// Test futures shared by the async suites (output: an int).
struct Stats {
  int polls = 0;
  int drops = 0;
};

// Ready with `value` after `remaining` pending polls (it wakes itself).
struct Countdown {
  int remaining;
  int value;
  Stats *stats;
};
extern const cx_future_vtable kCountdownVt;

// Pends forever, holding a clone of the waker it was last polled with.
struct Never {
  cx_waker waker;
  Stats *stats;
};
extern const cx_future_vtable kNeverVt;

// Calls fn(ctx) on its first poll and is ready with the int fn returns: runs
// a piece of test code inside a task (cx_block_on(&kCallInTaskVt, ...)).
struct CallInTask {
  int (*fn)(void *ctx);
  void *ctx;
};
extern const cx_future_vtable kCallInTaskVt;

// Runs fn(ctx) inside a task and returns what it returned: on `ex` with
// cx_executor_block_on, or on a fresh executor (cx_block_on) when ex is
// NULL. Adds a test failure if the task cannot be run.
int RunInTask(int (*fn)(void *ctx), void *ctx, cx_executor *ex = nullptr);

// Checks the NULL rule on a poll function with a result output and on its
// vtable: NULL self, context or context waker make it return CX_READY with
// `invalid` in the result (and a NULL result pointer is not written); the
// vtable's poll and drop accept NULL. `good` is a valid context for self.
template <typename T, typename Out>
void ExpectPollRejectsNull(cx_poll (*poll)(T *, cx_context *, Out *),
                           const cx_future_vtable &vt, T *self,
                           cx_context *good, Out invalid) {
  cx_context no_waker = *good;
  no_waker.waker = nullptr;
  struct Case {
    T *self;
    cx_context *cx;
  } cases[] = {{nullptr, good}, {self, nullptr}, {self, &no_waker}};
  for (const Case &c : cases) {
    Out r{};
    EXPECT_EQ(poll(c.self, c.cx, &r), CX_READY);
    EXPECT_EQ(r, invalid);
    r = Out{};
    EXPECT_EQ(vt.poll(c.self, c.cx, &r), CX_READY);
    EXPECT_EQ(r, invalid);
  }
  EXPECT_EQ(poll(self, nullptr, nullptr), CX_READY);
  EXPECT_EQ(vt.poll(self, nullptr, nullptr), CX_READY);
  vt.drop(nullptr);
}

}  // namespace cxtest

#endif  // CEXEC_TESTS_TESTUTIL_H
