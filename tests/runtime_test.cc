// runtime/: the multi-threaded work-stealing runtime. Every test that runs
// tasks is parametrized over 1, 2 and 4 workers. The ring (the per-worker
// queue) is tested on its own with real threads. Heavy tests keep a
// watchdog that fails the test instead of hanging it.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "executor/internal/task.h"
#include "runtime/internal/ring.h"
#include "runtime/internal/runtime_debug.h"
#include "runtime/runtime.h"
#include "tests/testutil.h"

namespace {

using cxtest::ScopedCountingAllocator;

constexpr cx_waker kEmptyWaker = {nullptr, nullptr};

// Fails the test (exits the process with a message) if not disarmed within
// `seconds`: a lost wake shows up as a failure, not as a hung test.
class Watchdog {
 public:
  explicit Watchdog(int seconds, const char *what)
      : th_([this, seconds, what] {
          std::unique_lock<std::mutex> l(mu_);
          if (!cv_.wait_for(l, std::chrono::seconds(seconds),
                            [this] { return done_; })) {
            fprintf(stderr, "WATCHDOG: %s did not finish in %d s\n", what,
                    seconds);
            fflush(stderr);
            _exit(3);
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> l(mu_);
      done_ = true;
    }
    cv_.notify_all();
    th_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread th_;
};

// Waits (polling) until pred() or `seconds` pass; returns pred().
template <typename P>
bool WaitUntil(P pred, int seconds = 20) {
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

// ---- a future around a C++ callable -----------------------------------------

// The task's state is a pointer to a Fn the future owns (deleted by the
// drop, which counts in *drops). Output: an int.
struct Fn {
  std::function<cx_poll(Fn &, cx_context *, int *)> poll;
  std::atomic<int> *drops = nullptr;
  int polls = 0;  // touched only by the task's polls: no two at once
  cx_waker held = kEmptyWaker;
  cx_join_handle *child = nullptr;  // for futures that await a child
};

cx_poll FnPoll(void *self, cx_context *cx, void *out) {
  Fn *f = *static_cast<Fn **>(self);
  f->polls++;
  return f->poll(*f, cx, static_cast<int *>(out));
}

void FnDrop(void *self) {
  Fn *f = *static_cast<Fn **>(self);
  cx_waker_drop(&f->held);
  if (f->drops) f->drops->fetch_add(1);
  delete f;
}

const cx_future_vtable kFnVt = {.poll = FnPoll,
                                .drop = FnDrop,
                                .state_size = sizeof(Fn *),
                                .state_align = alignof(Fn *),
                                .output_size = sizeof(int)};

int SpawnFn(cx_runtime *rt, std::function<cx_poll(Fn &, cx_context *, int *)> p,
            cx_join_handle **h = nullptr, std::atomic<int> *drops = nullptr) {
  Fn *f = new Fn;
  f->poll = std::move(p);
  f->drops = drops;
  int rc = cx_runtime_spawn(rt, &kFnVt, &f, h);
  if (rc != CX_OK) delete f;
  return rc;
}

// Ready with `v` at once.
std::function<cx_poll(Fn &, cx_context *, int *)> Ready(int v) {
  return [v](Fn &, cx_context *, int *out) {
    *out = v;
    return CX_READY;
  };
}

int Join(cx_join_handle *h) {
  int v = -1;
  int rc = cx_join_handle_wait(h, &v, sizeof v);
  cx_join_handle_detach(h);
  return rc == CX_OK ? v : rc;
}

cx_runtime *NewRuntime(size_t workers) {
  cx_runtime_options o = {};
  o.workers = workers;
  cx_runtime *rt = nullptr;
  EXPECT_EQ(cx_runtime_create(&o, &rt), CX_OK);
  return rt;
}

// ---- the ring, alone
// ---------------------------------------------------------

void *Item(uintptr_t i) {
  return reinterpret_cast<void *>((i + 1) << 4);
}
uintptr_t Index(void *p) {
  return (reinterpret_cast<uintptr_t>(p) >> 4) - 1;
}

TEST(Ring, PushPopFifoFullAndTakeHalf) {
  auto r = std::make_unique<cx__ring>();
  cx__ring_init(r.get());
  EXPECT_EQ(cx__ring_pop(r.get()), nullptr);
  for (uintptr_t i = 0; i < CX__RING_CAP; i++)
    ASSERT_TRUE(cx__ring_push(r.get(), Item(i)));
  EXPECT_FALSE(cx__ring_push(r.get(), Item(999)));
  EXPECT_EQ(cx__ring_len(r.get()), CX__RING_CAP);
  void *half[CX__RING_HALF];
  ASSERT_EQ(cx__ring_take_half(r.get(), half), CX__RING_HALF);
  for (uintptr_t i = 0; i < CX__RING_HALF; i++) EXPECT_EQ(Index(half[i]), i);
  // Not full any more: take_half refuses, push works.
  EXPECT_EQ(cx__ring_take_half(r.get(), half), 0u);
  EXPECT_TRUE(cx__ring_push(r.get(), Item(CX__RING_CAP)));
  for (uintptr_t i = CX__RING_HALF; i <= CX__RING_CAP; i++)
    EXPECT_EQ(Index(cx__ring_pop(r.get())), i);
  EXPECT_EQ(cx__ring_pop(r.get()), nullptr);
}

TEST(Ring, StealTakesHalfRoundedUpAndNeedsRoom) {
  auto a = std::make_unique<cx__ring>(), b = std::make_unique<cx__ring>();
  cx__ring_init(a.get());
  cx__ring_init(b.get());
  uint32_t moved = 0;
  EXPECT_EQ(cx__ring_steal_into(a.get(), b.get(), &moved), nullptr);
  for (uintptr_t i = 0; i < 5; i++) cx__ring_push(a.get(), Item(i));
  void *t = cx__ring_steal_into(a.get(), b.get(), &moved);
  EXPECT_EQ(moved, 3u);     // 5 - 5/2
  EXPECT_EQ(Index(t), 2u);  // the newest taken is returned
  EXPECT_EQ(cx__ring_len(b.get()), 2u);
  EXPECT_EQ(Index(cx__ring_pop(b.get())), 0u);
  EXPECT_EQ(Index(cx__ring_pop(b.get())), 1u);
  EXPECT_EQ(cx__ring_len(a.get()), 2u);
  // A thief with less than half a ring free takes nothing.
  for (uintptr_t i = 0; i < CX__RING_HALF + 1; i++)
    cx__ring_push(b.get(), Item(100 + i));
  moved = 0;
  EXPECT_EQ(cx__ring_steal_into(a.get(), b.get(), &moved), nullptr);
  EXPECT_EQ(moved, 0u);
  EXPECT_EQ(cx__ring_len(a.get()), 2u);
}

// One owner pushes and pops N distinct items while thieves steal from it
// (and pop what they stole): every item is taken exactly once.
TEST(Ring, ConcurrentStealsNeverLoseOrDuplicate) {
  Watchdog dog(60, "Ring.ConcurrentStealsNeverLoseOrDuplicate");
  constexpr uintptr_t kItems = 200000;
  constexpr int kThieves = 3;
  auto owner = std::make_unique<cx__ring>();
  cx__ring_init(owner.get());
  std::vector<std::atomic<uint8_t>> seen(kItems);
  for (auto &s : seen) s.store(0);
  std::atomic<uintptr_t> taken{0};
  std::atomic<bool> done{false};
  auto record = [&](void *p) {
    uintptr_t i = Index(p);
    ASSERT_LT(i, kItems);
    seen[i].fetch_add(1);
    taken.fetch_add(1);
  };
  std::vector<std::thread> thieves;
  for (int k = 0; k < kThieves; k++) {
    thieves.emplace_back([&] {
      auto mine = std::make_unique<cx__ring>();
      cx__ring_init(mine.get());
      while (!done.load() || cx__ring_len(owner.get()) > 0) {
        uint32_t moved = 0;
        void *t = cx__ring_steal_into(owner.get(), mine.get(), &moved);
        if (t == nullptr) {
          std::this_thread::yield();
          continue;
        }
        record(t);
        void *u;
        while ((u = cx__ring_pop(mine.get())) != nullptr) record(u);
      }
    });
  }
  uintptr_t next = 0;
  void *half[CX__RING_HALF];
  while (next < kItems) {
    // Push a burst (taking half out on overflow, as a worker does), then
    // pop a few.
    for (int b = 0; b < 7 && next < kItems; b++) {
      void *it = Item(next++);
      while (!cx__ring_push(owner.get(), it)) {
        uint32_t n = cx__ring_take_half(owner.get(), half);
        for (uint32_t i = 0; i < n; i++) record(half[i]);
      }
    }
    for (int b = 0; b < 3; b++) {
      void *t = cx__ring_pop(owner.get());
      if (t) record(t);
    }
  }
  void *t;
  while ((t = cx__ring_pop(owner.get())) != nullptr) record(t);
  done.store(true);
  for (auto &th : thieves) th.join();
  EXPECT_EQ(taken.load(), kItems);
  uintptr_t bad = 0;
  for (uintptr_t i = 0; i < kItems; i++)
    if (seen[i].load() != 1) bad++;
  EXPECT_EQ(bad, 0u);
}

// Two owners steal from each other while pushing: a ring is at once a
// victim and a thief.
TEST(Ring, MutualStealing) {
  Watchdog dog(60, "Ring.MutualStealing");
  constexpr uintptr_t kPer = 100000;
  std::vector<std::atomic<uint8_t>> seen(2 * kPer);
  for (auto &s : seen) s.store(0);
  std::unique_ptr<cx__ring> rings[2] = {std::make_unique<cx__ring>(),
                                        std::make_unique<cx__ring>()};
  cx__ring_init(rings[0].get());
  cx__ring_init(rings[1].get());
  std::atomic<uintptr_t> taken{0};
  auto worker = [&](int me) {
    cx__ring *mine = rings[me].get(), *other = rings[1 - me].get();
    uintptr_t next = 0;
    void *half[CX__RING_HALF];
    auto take = [&](void *p) {
      seen[Index(p)].fetch_add(1);
      taken.fetch_add(1);
    };
    while (taken.load() < 2 * kPer) {
      if (next < kPer) {
        void *it = Item(me * kPer + next++);
        while (!cx__ring_push(mine, it)) {
          uint32_t n = cx__ring_take_half(mine, half);
          for (uint32_t i = 0; i < n; i++) take(half[i]);
        }
        if (next % 3) continue;
      }
      void *t = cx__ring_pop(mine);
      if (t == nullptr) {
        uint32_t moved = 0;
        t = cx__ring_steal_into(other, mine, &moved);
      }
      if (t) take(t);
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();
  EXPECT_EQ(taken.load(), 2 * kPer);
  uintptr_t bad = 0;
  for (auto &s : seen)
    if (s.load() != 1) bad++;
  EXPECT_EQ(bad, 0u);
}

// ---- create / destroy / arguments ------------------------------------------

TEST(RuntimeCreate, DefaultsAndBadArguments) {
  ScopedCountingAllocator alloc;
  EXPECT_EQ(cx_runtime_create(nullptr, nullptr), CX_EINVAL);
  cx_runtime_options o = {};
  o.workers = CX_RUNTIME_MAX_WORKERS + 1;
  cx_runtime *rt = nullptr;
  EXPECT_EQ(cx_runtime_create(&o, &rt), CX_EINVAL);
  EXPECT_EQ(rt, nullptr);
  ASSERT_EQ(cx_runtime_create(nullptr, &rt), CX_OK);
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  EXPECT_EQ(cx_runtime_workers(rt), static_cast<size_t>(cpus > 0 ? cpus : 1));
  EXPECT_EQ(cx_runtime_current(), nullptr);
  EXPECT_EQ(cx_runtime_current_worker(), -1);
  // Bad arguments everywhere.
  int st = 0;
  EXPECT_EQ(cx_runtime_spawn(nullptr, &kFnVt, &st, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_runtime_spawn(rt, nullptr, &st, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_runtime_spawn(rt, &kFnVt, nullptr, nullptr), CX_EINVAL);
  cx_future_vtable bad = kFnVt;
  bad.poll = nullptr;
  EXPECT_EQ(cx_runtime_spawn(rt, &bad, &st, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_runtime_block_on(nullptr, &kFnVt, &st, nullptr, 0), CX_EINVAL);
  EXPECT_EQ(cx_runtime_block_on(rt, &kFnVt, &st, &st, 3), CX_EINVAL);
  EXPECT_EQ(cx_runtime_shutdown(nullptr, 0), CX_EINVAL);
  EXPECT_EQ(cx_runtime_destroy(nullptr), CX_OK);
  cx_runtime_spawner *sp = nullptr;
  EXPECT_EQ(cx_runtime_spawner_create(nullptr, &sp), CX_EINVAL);
  EXPECT_EQ(cx_runtime_spawner_create(rt, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_runtime_spawner_clone(nullptr, &sp), CX_EINVAL);
  EXPECT_EQ(cx_runtime_spawner_spawn(nullptr, &kFnVt, &st, nullptr), CX_EINVAL);
  cx_runtime_spawner_drop(nullptr);
  cx_runtime_stats s;
  cx_runtime_worker_stats ws;
  EXPECT_EQ(cx_runtime_get_stats(nullptr, &s), CX_EINVAL);
  EXPECT_EQ(cx_runtime_get_stats(rt, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_runtime_get_worker_stats(rt, cx_runtime_workers(rt), &ws),
            CX_EINVAL);
  EXPECT_EQ(cx_runtime_get_worker_stats(rt, 0, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_runtime_workers(nullptr), 0u);
  EXPECT_EQ(cx_runtime_destroy(rt), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

TEST(RuntimeCreate, EveryAllocationFailureIsReportedAndLeaksNothing) {
  ScopedCountingAllocator alloc;
  cx_runtime_options o = {};
  o.workers = 2;
  size_t failures = 0;
  for (size_t k = 1; k < 20; k++) {
    alloc.FailAt(k);
    cx_runtime *rt = nullptr;
    int rc = cx_runtime_create(&o, &rt);
    if (rc == CX_OK) {
      // Creation is done: the failure lands on a spawn, which reports it.
      int rc2 = SpawnFn(rt, Ready(1));
      EXPECT_TRUE(rc2 == CX_OK || rc2 == CX_ENOMEM) << rc2;
      EXPECT_EQ(cx_runtime_destroy(rt), CX_OK);
      alloc.FailNever();
      if (rc2 == CX_OK) break;
      continue;
    }
    failures++;
    EXPECT_EQ(rc, CX_ENOMEM);
    EXPECT_EQ(rt, nullptr);
    EXPECT_EQ(alloc.live(), 0u) << "k=" << k;
  }
  alloc.FailNever();
  EXPECT_GE(failures, 1u);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

std::atomic<int> g_started{0}, g_stopped{0};

TEST(RuntimeCreate, AWorkerThatCannotBeCreatedIsAnErrorAndLeaksNothing) {
  ScopedCountingAllocator alloc;
  for (unsigned k = 1; k <= 4; k++) {
    g_started = 0;
    g_stopped = 0;
    cx_runtime_options o = {};
    o.workers = 4;
    o.on_worker_start = [](void *, size_t) { g_started++; };
    o.on_worker_stop = [](void *, size_t) { g_stopped++; };
    cx__runtime_debug_fail_thread_create_at(k);
    cx_runtime *rt = nullptr;
    EXPECT_EQ(cx_runtime_create(&o, &rt), CX_EAGAIN);
    cx__runtime_debug_fail_thread_create_at(0);
    EXPECT_EQ(rt, nullptr);
    // The k-1 workers started were stopped and joined.
    EXPECT_EQ(g_started.load(), static_cast<int>(k - 1));
    EXPECT_EQ(g_stopped.load(), static_cast<int>(k - 1));
    EXPECT_EQ(alloc.live(), 0u);
  }
}

// ---- parametrized over the number of workers --------------------------------

class Runtime : public ::testing::TestWithParam<size_t> {
 protected:
  size_t workers() const { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Workers, Runtime, ::testing::Values(1, 2, 4),
                         [](const ::testing::TestParamInfo<size_t> &i) {
                           return std::to_string(i.param) + "w";
                         });

struct HookLog {
  std::mutex mu;
  std::vector<size_t> started, stopped;
  std::set<std::thread::id> threads;
  bool on_worker = true;
};

TEST_P(Runtime, HooksRunOnEveryWorkerThread) {
  ScopedCountingAllocator alloc;
  HookLog log;
  cx_runtime_options o = {};
  o.workers = workers();
  o.hook_ctx = &log;
  o.on_worker_start = [](void *ctx, size_t i) {
    auto *l = static_cast<HookLog *>(ctx);
    std::lock_guard<std::mutex> g(l->mu);
    l->started.push_back(i);
    l->threads.insert(std::this_thread::get_id());
    if (cx_runtime_current_worker() != static_cast<long>(i))
      l->on_worker = false;
  };
  o.on_worker_stop = [](void *ctx, size_t i) {
    auto *l = static_cast<HookLog *>(ctx);
    std::lock_guard<std::mutex> g(l->mu);
    l->stopped.push_back(i);
    if (cx_runtime_current() == nullptr) l->on_worker = false;
  };
  cx_runtime *rt = nullptr;
  ASSERT_EQ(cx_runtime_create(&o, &rt), CX_OK);
  EXPECT_EQ(cx_runtime_workers(rt), workers());
  EXPECT_EQ(cx_runtime_destroy(rt), CX_OK);
  std::sort(log.started.begin(), log.started.end());
  std::sort(log.stopped.begin(), log.stopped.end());
  std::vector<size_t> all(workers());
  for (size_t i = 0; i < workers(); i++) all[i] = i;
  EXPECT_EQ(log.started, all);
  EXPECT_EQ(log.stopped, all);
  EXPECT_EQ(log.threads.size(), workers());
  EXPECT_EQ(log.threads.count(std::this_thread::get_id()), 0u);
  EXPECT_TRUE(log.on_worker);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST_P(Runtime, SpawnFromAThreadAndJoinEveryOutput) {
  ScopedCountingAllocator alloc;
  Watchdog dog(60, "SpawnFromAThreadAndJoinEveryOutput");
  cx_runtime *rt = NewRuntime(workers());
  constexpr int kTasks = 2000;
  std::vector<cx_join_handle *> hs(kTasks);
  std::atomic<int> drops{0};
  for (int i = 0; i < kTasks; i++) {
    // Some complete at once, some after a few self-wakes.
    int n = i % 4;
    ASSERT_EQ(SpawnFn(
                  rt,
                  [i, n](Fn &f, cx_context *cx, int *out) {
                    if (f.polls <= n) {
                      cx_waker_wake_by_ref(cx->waker);
                      return CX_PENDING;
                    }
                    *out = i;
                    return CX_READY;
                  },
                  &hs[i], &drops),
              CX_OK);
  }
  for (int i = 0; i < kTasks; i++) EXPECT_EQ(Join(hs[i]), i);
  EXPECT_EQ(drops.load(), kTasks);
  cx_runtime_stats s;
  ASSERT_EQ(cx_runtime_get_stats(rt, &s), CX_OK);
  EXPECT_EQ(s.spawned, static_cast<uint64_t>(kTasks));
  EXPECT_EQ(s.live, 0u);
  EXPECT_EQ(s.completed, static_cast<uint64_t>(kTasks));
  // 1 + 2 + 3 + 4 polls for each group of four.
  EXPECT_EQ(s.polls, static_cast<uint64_t>(kTasks / 4 * 10));
  EXPECT_EQ(s.workers, workers());
  uint64_t polls = 0;
  for (size_t i = 0; i < workers(); i++) {
    cx_runtime_worker_stats ws;
    ASSERT_EQ(cx_runtime_get_worker_stats(rt, i, &ws), CX_OK);
    polls += ws.polls;
  }
  EXPECT_EQ(polls, s.polls);
  EXPECT_EQ(cx_runtime_shutdown(rt, CX_RUNTIME_NO_DEADLINE), CX_OK);
  EXPECT_EQ(cx_runtime_destroy(rt), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

TEST_P(Runtime, BlockOnReturnsTheOutputAndIsRefusedOnAWorker) {
  ScopedCountingAllocator alloc;
  Watchdog dog(60, "BlockOn");
  cx_runtime *rt = NewRuntime(workers());
  int v = 0;
  Fn *f = new Fn;
  f->poll = Ready(42);
  ASSERT_EQ(cx_runtime_block_on(rt, &kFnVt, &f, &v, sizeof v), CX_OK);
  EXPECT_EQ(v, 42);
  // From inside a task: refused, nothing spawned.
  std::atomic<int> inner{0};
  f = new Fn;
  f->poll = [&inner](Fn &, cx_context *, int *out) {
    Fn *g = new Fn;
    g->poll = Ready(1);
    int x;
    inner = cx_runtime_block_on(cx_runtime_current(), &kFnVt, &g, &x, sizeof x);
    delete g;
    // Shutdown and destroy from a worker would join the worker itself.
    if (cx_runtime_shutdown(cx_runtime_current(), 0) != CX_EBUSY) inner = 99;
    if (cx_runtime_destroy(cx_runtime_current()) != CX_EBUSY) inner = 98;
    *out = 7;
    return CX_READY;
  };
  ASSERT_EQ(cx_runtime_block_on(rt, &kFnVt, &f, nullptr, 0), CX_OK);
  EXPECT_EQ(inner.load(), CX_EBUSY);
  cx_runtime_stats s;
  cx_runtime_get_stats(rt, &s);
  EXPECT_EQ(s.spawned, 2u);
  EXPECT_EQ(cx_runtime_destroy(rt), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

// A root task spawns children from its poll (they go to its worker's ring
// and are stolen by the others) and awaits their join handles as futures.
TEST_P(Runtime, SpawnFromTasksAndAwaitTheirHandles) {
  ScopedCountingAllocator alloc;
  Watchdog dog(60, "SpawnFromTasks");
  cx_runtime *rt = NewRuntime(workers());
  constexpr int kKids = 1000;
  std::atomic<int> drops{0};
  std::vector<cx_join_handle *> kids;
  std::set<long> kid_workers;
  std::mutex kw_mu;
  size_t next = 0;
  long sum = 0;
  cx_join_handle *root = nullptr;
  ASSERT_EQ(
      SpawnFn(
          rt,
          [&](Fn &f, cx_context *cx, int *out) {
            if (f.polls == 1) {
              EXPECT_EQ(cx->executor, nullptr);
              EXPECT_EQ(cx->timers, nullptr);
              cx_runtime *me = cx_runtime_current();
              EXPECT_EQ(me, rt);
              for (int i = 0; i < kKids; i++) {
                cx_join_handle *h;
                int rc = SpawnFn(
                    me,
                    [i, &kw_mu, &kid_workers](Fn &, cx_context *, int *o) {
                      // A little work, so that thieves get a share.
                      volatile long x = 0;
                      for (int k = 0; k < 2000; k++) x = x + k;
                      {
                        std::lock_guard<std::mutex> g(kw_mu);
                        kid_workers.insert(cx_runtime_current_worker());
                      }
                      *o = i;
                      return CX_READY;
                    },
                    &h, &drops);
                EXPECT_EQ(rc, CX_OK);
                kids.push_back(h);
              }
            }
            while (next < kids.size()) {
              int r, v;
              if (cx_join_handle_poll(kids[next], cx, &r, &v, sizeof v) ==
                  CX_PENDING)
                return CX_PENDING;
              EXPECT_EQ(r, CX_OK);
              sum += v;
              cx_join_handle_detach(kids[next]);
              next++;
            }
            *out = 1;
            return CX_READY;
          },
          &root, &drops),
      CX_OK);
  EXPECT_EQ(Join(root), 1);
  EXPECT_EQ(sum, static_cast<long>(kKids) * (kKids - 1) / 2);
  EXPECT_EQ(drops.load(), kKids + 1);
  {
    std::lock_guard<std::mutex> g(kw_mu);
    for (long w : kid_workers) {
      EXPECT_GE(w, 0);
      EXPECT_LT(w, static_cast<long>(workers()));
    }
  }
  EXPECT_EQ(cx_runtime_destroy(rt), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

// Tasks hand a clone of their waker to foreign threads, which wake them;
// each task counts the wakes it was polled for.
TEST_P(Runtime, WakesFromOtherThreadsAreNeverLost) {
  ScopedCountingAllocator alloc;
  Watchdog dog(90, "WakesFromOtherThreads");
  cx_runtime *rt = NewRuntime(workers());
  constexpr int kTasks = 8, kRounds = 2000;
  struct Slot {
    std::mutex mu;
    cx_waker w = kEmptyWaker;
    std::atomic<int> round{0};  // written by the thread before waking
    int seen = 0;               // task only
  };
  std::vector<Slot> slots(kTasks);
  std::vector<cx_join_handle *> hs(kTasks);
  for (int i = 0; i < kTasks; i++) {
    Slot *s = &slots[i];
    ASSERT_EQ(SpawnFn(
                  rt,
                  [s](Fn &, cx_context *cx, int *out) {
                    // Read the round and store the waker under one lock:
                    // a thread that stores a newer round after our read
                    // then wakes the waker we stored (reading it before the
                    // lock lost a wake when the thread finished between the
                    // read and the first store).
                    std::lock_guard<std::mutex> g(s->mu);
                    int r = s->round.load();
                    if (r == kRounds) {
                      *out = r;
                      return CX_READY;
                    }
                    s->seen = r;
                    EXPECT_EQ(cx_waker_store(&s->w, cx->waker), CX_OK);
                    return CX_PENDING;
                  },
                  &hs[i]),
              CX_OK);
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kTasks; i++) {
    threads.emplace_back([&, i] {
      Slot &s = slots[i];
      for (int r = 1; r <= kRounds; r++) {
        s.round.store(r);
        std::lock_guard<std::mutex> g(s.mu);
        cx_waker_wake_by_ref(&s.w);  // empty until the first poll, which
                                     // then reads this round under mu
      }
    });
  }
  for (auto &t : threads) t.join();
  // The last wake came after round = kRounds: the task must finish.
  for (int i = 0; i < kTasks; i++) EXPECT_EQ(Join(hs[i]), kRounds);
  for (auto &s : slots) {
    std::lock_guard<std::mutex> g(s.mu);
    cx_waker_drop(&s.w);
  }
  EXPECT_EQ(cx_runtime_destroy(rt), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST_P(Runtime, CancelIdleRunningAndQueuedTasks) {
  ScopedCountingAllocator alloc;
  Watchdog dog(60, "Cancel");
  cx_runtime *rt = NewRuntime(workers());
  std::atomic<int> drops{0};
  // Idle: pends with no waker anywhere; cancelled from this thread.
  cx_join_handle *idle = nullptr;
  std::atomic<bool> polled{false};
  ASSERT_EQ(SpawnFn(
                rt,
                [&](Fn &, cx_context *, int *) {
                  polled = true;
                  return CX_PENDING;
                },
                &idle, &drops),
            CX_OK);
  ASSERT_TRUE(WaitUntil([&] { return polled.load(); }));
  EXPECT_EQ(cx_join_handle_cancel(idle), CX_OK);
  EXPECT_EQ(cx_join_handle_wait(idle, nullptr, 0), CX_ECANCELED);
  EXPECT_EQ(cx_join_handle_cancel(idle), CX_EALREADY);
  cx_join_handle_detach(idle);
  // Running: cancelled from its own poll; the poll completes as Pending and
  // the task ends as cancelled without another poll.
  cx_join_handle *self = nullptr;
  std::atomic<int> self_polls{0};
  std::atomic<cx_join_handle *> self_h{nullptr};
  ASSERT_EQ(SpawnFn(
                rt,
                [&](Fn &, cx_context *cx, int *) {
                  self_polls++;
                  while (self_h.load() == nullptr) std::this_thread::yield();
                  EXPECT_EQ(cx_join_handle_cancel(self_h.load()), CX_OK);
                  cx_waker_wake_by_ref(cx->waker);
                  return CX_PENDING;
                },
                &self, &drops),
            CX_OK);
  self_h = self;
  EXPECT_EQ(cx_join_handle_wait(self, nullptr, 0), CX_ECANCELED);
  EXPECT_EQ(self_polls.load(), 1);
  cx_join_handle_detach(self);
  // A task that completes wins over a later cancel.
  cx_join_handle *done = nullptr;
  ASSERT_EQ(SpawnFn(rt, Ready(5), &done, &drops), CX_OK);
  int v = 0;
  EXPECT_EQ(cx_join_handle_wait(done, &v, sizeof v), CX_OK);
  EXPECT_EQ(v, 5);
  EXPECT_EQ(cx_join_handle_cancel(done), CX_EALREADY);
  cx_join_handle_detach(done);
  EXPECT_EQ(drops.load(), 3);
  cx_runtime_stats s;
  cx_runtime_get_stats(rt, &s);
  EXPECT_EQ(s.cancelled, 2u);
  EXPECT_EQ(s.completed, 1u);
  EXPECT_EQ(cx_runtime_destroy(rt), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

// Detached tasks run to completion; a task that holds its own handle and
// its only waker drops both from inside its poll.
TEST_P(Runtime, DetachedTasksAndLastReferencesDroppedInsidePoll) {
  ScopedCountingAllocator alloc;
  Watchdog dog(60, "Detach");
  cx_runtime *rt = NewRuntime(workers());
  std::atomic<int> done{0}, drops{0};
  constexpr int kTasks = 500;
  for (int i = 0; i < kTasks; i++) {
    ASSERT_EQ(SpawnFn(
                  rt,
                  [&done](Fn &f, cx_context *cx, int *out) {
                    if (f.polls == 1) {
                      cx_waker_wake_by_ref(cx->waker);
                      return CX_PENDING;
                    }
                    done++;
                    *out = 0;
                    return CX_READY;
                  },
                  nullptr, &drops),
              CX_OK);
  }
  // Owns its handle and a clone of its waker; gives up both inside poll.
  struct Own {
    std::atomic<cx_join_handle *> h{nullptr};
  } own;
  cx_join_handle *h = nullptr;
  ASSERT_EQ(SpawnFn(
                rt,
                [&own, &done](Fn &f, cx_context *cx, int *out) {
                  if (f.polls == 1) {
                    EXPECT_EQ(cx_waker_clone(cx->waker, &f.held), CX_OK);
                    while (own.h.load() == nullptr) std::this_thread::yield();
                    cx_waker_wake_by_ref(&f.held);
                    return CX_PENDING;
                  }
                  cx_waker_drop(&f.held);
                  cx_join_handle_detach(own.h.load());
                  done++;
                  *out = 0;
                  return CX_READY;
                },
                &h, &drops),
            CX_OK);
  own.h = h;
  ASSERT_TRUE(WaitUntil([&] { return drops.load() == kTasks + 1; }));
  EXPECT_EQ(done.load(), kTasks + 1);
  EXPECT_EQ(cx_runtime_shutdown(rt, CX_RUNTIME_NO_DEADLINE), CX_OK);
  EXPECT_EQ(cx_runtime_destroy(rt), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

// The threading contract: a plain (non-atomic) write made before a wake is
// visible to the poll that wake causes, whichever worker runs it. The only
// synchronisation from the writer to the task is the wake itself (the flag
// is relaxed), so ThreadSanitizer reports a race if the runtime's queues or
// the task's transitions fail to carry it.
long g_plain_data = 0;

TEST_P(Runtime, WritesBeforeAWakeAreVisibleToThePollItCauses) {
  ScopedCountingAllocator alloc;
  Watchdog dog(60, "WakeOrdering");
  cx_runtime *rt = NewRuntime(workers());
  constexpr long kRounds = 2000;
  std::atomic<long> flag{0};  // relaxed only: not a synchronisation
  std::atomic<long> seen{0};  // task -> thread (release / acquire)
  std::atomic<bool> armed{false};
  std::mutex mu;
  cx_waker w = kEmptyWaker;
  long bad = 0;  // task only
  g_plain_data = 0;
  cx_join_handle *h = nullptr;
  ASSERT_EQ(SpawnFn(
                rt,
                [&](Fn &f, cx_context *cx, int *out) {
                  if (f.polls == 1) {
                    std::lock_guard<std::mutex> g(mu);
                    EXPECT_EQ(cx_waker_clone(cx->waker, &w), CX_OK);
                    armed.store(true, std::memory_order_release);
                    return CX_PENDING;
                  }
                  long k = flag.load(std::memory_order_relaxed);
                  if (k != seen.load(std::memory_order_relaxed)) {
                    if (g_plain_data != k) bad++;  // the contract's read
                    seen.store(k, std::memory_order_release);
                  }
                  if (k == kRounds) {
                    *out = static_cast<int>(bad);
                    return CX_READY;
                  }
                  return CX_PENDING;
                },
                &h),
            CX_OK);
  ASSERT_TRUE(WaitUntil([&] { return armed.load(); }));
  std::thread writer([&] {
    cx_waker mine;
    {
      std::lock_guard<std::mutex> g(mu);
      EXPECT_EQ(cx_waker_clone(&w, &mine), CX_OK);
    }
    for (long k = 1; k <= kRounds; k++) {
      g_plain_data = k;                          // plain write...
      flag.store(k, std::memory_order_relaxed);  // ...announced, relaxed
      cx_waker_wake_by_ref(&mine);               // the only release
      while (seen.load(std::memory_order_acquire) != k)
        std::this_thread::yield();
    }
    cx_waker_drop(&mine);
  });
  writer.join();
  EXPECT_EQ(Join(h), 0);  // no poll saw a stale value
  {
    std::lock_guard<std::mutex> g(mu);
    cx_waker_drop(&w);
  }
  EXPECT_EQ(cx_runtime_destroy(rt), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

// A task that yields forever (wakes itself, returns Pending) must not keep
// others from running, on any number of workers; nor must a pair of tasks
// that wake each other forever (the LIFO slot is bounded).
TEST_P(Runtime, YieldingForeverAndPingPongPairsDoNotStarveOthers) {
  ScopedCountingAllocator alloc;
  Watchdog dog(60, "Starvation");
  cx_runtime *rt = NewRuntime(workers());
  std::atomic<bool> stop{false};
  std::atomic<int> drops{0};
  // One yielder per worker, so every worker is busy.
  for (size_t i = 0; i < workers(); i++) {
    ASSERT_EQ(SpawnFn(
                  rt,
                  [&stop](Fn &, cx_context *cx, int *out) {
                    if (stop.load()) {
                      *out = 0;
                      return CX_READY;
                    }
                    cx_waker_wake_by_ref(cx->waker);
                    return CX_PENDING;
                  },
                  nullptr, &drops),
              CX_OK);
  }
  // A ping-pong pair: each wakes the other (LIFO slot) and pends.
  struct Pair {
    std::mutex mu;
    cx_waker w[2] = {kEmptyWaker, kEmptyWaker};
  } pair;
  for (int side = 0; side < 2; side++) {
    ASSERT_EQ(SpawnFn(
                  rt,
                  [&stop, &pair, side](Fn &, cx_context *cx, int *out) {
                    std::lock_guard<std::mutex> g(pair.mu);
                    if (stop.load()) {
                      cx_waker_drop(&pair.w[side]);
                      cx_waker_wake(&pair.w[1 - side]);
                      *out = 0;
                      return CX_READY;
                    }
                    EXPECT_EQ(cx_waker_store(&pair.w[side], cx->waker), CX_OK);
                    cx_waker_wake_by_ref(&pair.w[1 - side]);
                    return CX_PENDING;
                  },
                  nullptr, &drops),
              CX_OK);
  }
  // Others, spawned from outside and from a task, complete.
  for (int i = 0; i < 50; i++) {
    cx_join_handle *h;
    ASSERT_EQ(SpawnFn(rt, Ready(i), &h), CX_OK);
    EXPECT_EQ(Join(h), i);
  }
  cx_join_handle *outer;
  ASSERT_EQ(SpawnFn(
                rt,
                [](Fn &f, cx_context *cx, int *out) {
                  if (f.polls == 1) {
                    EXPECT_EQ(SpawnFn(cx_runtime_current(), Ready(3), &f.child),
                              CX_OK);
                  }
                  int r, v;
                  if (cx_join_handle_poll(f.child, cx, &r, &v, sizeof v) ==
                      CX_PENDING)
                    return CX_PENDING;
                  cx_join_handle_detach(f.child);
                  f.child = nullptr;
                  *out = r == CX_OK ? v : r;
                  return CX_READY;
                },
                &outer),
            CX_OK);
  EXPECT_EQ(Join(outer), 3);
  stop = true;
  ASSERT_TRUE(WaitUntil(
      [&] { return drops.load() == static_cast<int>(workers()) + 2; }));
  EXPECT_EQ(cx_runtime_destroy(rt), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

// The stress test: chains of tasks that wake each other across workers,
// plus foreign threads waking them, with a count of every wake consumed.
// A lost wake leaves a task pending forever and trips the watchdog.
TEST_P(Runtime, StressManyWakesAcrossWorkersAndThreadsNoneLost) {
  ScopedCountingAllocator alloc;
  Watchdog dog(120, "Stress");
  cx_runtime *rt = NewRuntime(workers());
  constexpr int kTasks = 64;
  constexpr int kHops = 5000;  // wakes from tasks, per task
  constexpr int kForeign = 2;  // foreign threads
  constexpr int kForeignWakes = 200000;
  struct Node {
    std::mutex mu;
    cx_waker w = kEmptyWaker;
    std::atomic<int> credits{0};  // wakes owed to this task
    int consumed = 0;             // task only
  };
  std::vector<Node> nodes(kTasks);
  std::atomic<long> total_consumed{0};
  std::vector<cx_join_handle *> hs(kTasks);
  auto give = [&](int to) {
    nodes[to].credits.fetch_add(1);
    std::lock_guard<std::mutex> g(nodes[to].mu);
    cx_waker_wake_by_ref(&nodes[to].w);
  };
  for (int i = 0; i < kTasks; i++) {
    ASSERT_EQ(SpawnFn(
                  rt,
                  [&, i](Fn &, cx_context *cx, int *out) {
                    Node &n = nodes[i];
                    {
                      std::lock_guard<std::mutex> g(n.mu);
                      EXPECT_EQ(cx_waker_store(&n.w, cx->waker), CX_OK);
                    }
                    // Consume the credits given so far; pass each on to the
                    // next task (a hop) until this task has made kHops.
                    int c = n.credits.exchange(0);
                    for (int k = 0; k < c; k++) {
                      n.consumed++;
                      total_consumed.fetch_add(1);
                      if (n.consumed <= kHops)
                        give((i + 1 + n.consumed) % kTasks);
                    }
                    (void)out;  // never ready: shutdown cancels it
                    return CX_PENDING;
                  },
                  &hs[i]),
              CX_OK);
  }
  // Seed: one credit each, and the foreign threads add theirs.
  for (int i = 0; i < kTasks; i++) give(i);
  std::vector<std::thread> threads;
  for (int t = 0; t < kForeign; t++) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kForeignWakes; k++) give((t * 7 + k) % kTasks);
    });
  }
  for (auto &th : threads) th.join();
  // Total credits: kTasks seeds + kTasks * kHops hops + foreign wakes. A
  // task stops passing after kHops, so credits drain; every credit given
  // is consumed (nothing lost) once every task has been polled after its
  // last credit. The tasks never finish: shutdown cancels them.
  const long expect = kTasks + static_cast<long>(kTasks) * kHops +
                      static_cast<long>(kForeign) * kForeignWakes;
  EXPECT_TRUE(WaitUntil([&] { return total_consumed.load() == expect; }, 60))
      << total_consumed.load() << " of " << expect;
  // (On failure, still shut down: the tasks point into this frame.)
  EXPECT_EQ(cx_runtime_shutdown(rt, 0), CX_ETIMEDOUT);
  for (int i = 0; i < kTasks; i++) cx_join_handle_detach(hs[i]);
  for (auto &n : nodes) {
    std::lock_guard<std::mutex> g(n.mu);
    cx_waker_drop(&n.w);
  }
  cx_runtime_stats s;
  cx_runtime_get_stats(rt, &s);
  EXPECT_EQ(s.live, 0u);
  EXPECT_EQ(s.cancelled, static_cast<uint64_t>(kTasks));
  EXPECT_EQ(cx_runtime_destroy(rt), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

// Shutdown while tasks run on every worker, others are idle and queued, and
// foreign threads hold wakers and join handles and keep using them: every
// future is dropped exactly once, joiners see the outcome, nothing leaks.
TEST_P(Runtime, ShutdownWhileTasksRunAndThreadsHoldWakersAndHandles) {
  ScopedCountingAllocator alloc;
  Watchdog dog(60, "Shutdown");
  cx_runtime *rt = NewRuntime(workers());
  std::atomic<int> drops{0};
  std::atomic<int> running{0};
  std::atomic<bool> threads_stop{false};
  constexpr int kIdle = 200;
  struct Shared {
    std::mutex mu;
    std::vector<cx_waker> wakers;
  } sh;
  // Busy: one per worker, yielding while counting as running.
  std::vector<cx_join_handle *> handles;
  for (size_t i = 0; i < workers(); i++) {
    cx_join_handle *h;
    ASSERT_EQ(SpawnFn(
                  rt,
                  [&running](Fn &f, cx_context *cx, int *) {
                    if (f.polls == 1) running++;
                    volatile int x = 0;
                    for (int k = 0; k < 1000; k++) x = x + k;
                    cx_waker_wake_by_ref(cx->waker);
                    return CX_PENDING;
                  },
                  &h, &drops),
              CX_OK);
    handles.push_back(h);
  }
  // Idle: pend, handing a clone of their waker to the foreign threads.
  for (int i = 0; i < kIdle; i++) {
    cx_join_handle *h;
    ASSERT_EQ(SpawnFn(
                  rt,
                  [&sh](Fn &f, cx_context *cx, int *) {
                    if (f.polls == 1) {
                      cx_waker w;
                      EXPECT_EQ(cx_waker_clone(cx->waker, &w), CX_OK);
                      std::lock_guard<std::mutex> g(sh.mu);
                      sh.wakers.push_back(w);
                    }
                    return CX_PENDING;
                  },
                  &h, &drops),
              CX_OK);
    handles.push_back(h);
  }
  // Finishing ones, detached.
  std::atomic<int> ready_done{0};
  for (int i = 0; i < 100; i++)
    ASSERT_EQ(SpawnFn(
                  rt,
                  [&ready_done](Fn &, cx_context *, int *out) {
                    ready_done++;
                    *out = 0;
                    return CX_READY;
                  },
                  nullptr, &drops),
              CX_OK);
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard<std::mutex> g(sh.mu);
    return sh.wakers.size() == static_cast<size_t>(kIdle) &&
           ready_done.load() == 100 &&
           running.load() == static_cast<int>(workers());
  }));
  // Foreign threads: keep waking the idle tasks, and join-poll half of the
  // handles (the other half belongs to this thread).
  size_t half = handles.size() / 2;
  std::vector<int> results(handles.size(), 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; t++) {
    threads.emplace_back([&, t] {
      size_t k = t;
      while (!threads_stop.load()) {
        std::lock_guard<std::mutex> g(sh.mu);
        cx_waker_wake_by_ref(&sh.wakers[k++ % sh.wakers.size()]);
      }
    });
  }
  std::thread joiner([&] {
    for (size_t i = 0; i < half; i++)
      results[i] = cx_join_handle_wait(handles[i], nullptr, 0);
  });
  EXPECT_EQ(cx_runtime_shutdown(rt, 20 * 1000 * 1000), CX_ETIMEDOUT);
  joiner.join();
  for (size_t i = half; i < handles.size(); i++)
    results[i] = cx_join_handle_wait(handles[i], nullptr, 0);
  threads_stop = true;
  for (auto &t : threads) t.join();
  for (int r : results) EXPECT_EQ(r, CX_ECANCELED);
  EXPECT_EQ(drops.load(), static_cast<int>(workers()) + kIdle + 100);
  // Spawning is refused now; wakes of finished tasks do nothing.
  EXPECT_EQ(SpawnFn(rt, Ready(1)), CX_ESHUTDOWN);
  {
    std::lock_guard<std::mutex> g(sh.mu);
    for (auto &w : sh.wakers) cx_waker_wake(&w);
  }
  cx_runtime_stats s;
  cx_runtime_get_stats(rt, &s);
  EXPECT_EQ(s.live, 0u);
  EXPECT_EQ(s.cancelled, workers() + kIdle);
  EXPECT_EQ(s.completed, 100u);
  // A second shutdown is a no-op.
  EXPECT_EQ(cx_runtime_shutdown(rt, 0), CX_OK);
  for (auto *h : handles) cx_join_handle_detach(h);
  EXPECT_EQ(cx_runtime_destroy(rt), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

TEST_P(Runtime, GracefulShutdownLetsTasksFinishAndSpawnersOutliveDestroy) {
  ScopedCountingAllocator alloc;
  Watchdog dog(60, "Graceful");
  cx_runtime *rt = NewRuntime(workers());
  cx_runtime_spawner *sp = nullptr, *sp2 = nullptr;
  ASSERT_EQ(cx_runtime_spawner_create(rt, &sp), CX_OK);
  ASSERT_EQ(cx_runtime_spawner_clone(sp, &sp2), CX_OK);
  // Tasks that finish after a foreign thread lets them: shutdown waits.
  std::atomic<bool> go{false};
  std::atomic<int> drops{0};
  std::vector<cx_join_handle *> hs;
  for (int i = 0; i < 20; i++) {
    cx_join_handle *h;
    Fn *f = new Fn;
    f->drops = &drops;
    f->poll = [&go, i](Fn &, cx_context *cx, int *out) {
      if (!go.load()) {
        cx_waker_wake_by_ref(cx->waker);
        std::this_thread::yield();
        return CX_PENDING;
      }
      *out = i;
      return CX_READY;
    };
    ASSERT_EQ(cx_runtime_spawner_spawn(sp, &kFnVt, &f, &h), CX_OK);
    hs.push_back(h);
  }
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    go = true;
  });
  EXPECT_EQ(cx_runtime_shutdown(rt, CX_RUNTIME_NO_DEADLINE), CX_OK);
  t.join();
  for (int i = 0; i < 20; i++) EXPECT_EQ(Join(hs[i]), i);
  EXPECT_EQ(drops.load(), 20);
  EXPECT_EQ(cx_runtime_destroy(rt), CX_OK);
  // The spawners outlive the runtime: spawning fails cleanly.
  Fn *f = new Fn;
  f->poll = Ready(0);
  EXPECT_EQ(cx_runtime_spawner_spawn(sp2, &kFnVt, &f, nullptr), CX_ESHUTDOWN);
  delete f;
  cx_runtime_spawner_drop(sp);
  EXPECT_GT(alloc.live(), 0u);  // sp2 still holds the runtime
  cx_runtime_spawner_drop(sp2);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST_P(Runtime, SpawnAllocationFailureIsENOMEM) {
  ScopedCountingAllocator alloc;
  cx_runtime *rt = NewRuntime(workers());
  alloc.FailAfter(0);
  EXPECT_EQ(SpawnFn(rt, Ready(1)), CX_ENOMEM);
  alloc.FailNever();
  cx_join_handle *h;
  ASSERT_EQ(SpawnFn(rt, Ready(2), &h), CX_OK);
  // cx_join_handle_wait allocates its parker.
  alloc.FailAfter(0);
  int rc = cx_join_handle_wait(h, nullptr, 0);
  alloc.FailNever();
  EXPECT_TRUE(rc == CX_ENOMEM || rc == CX_OK) << rc;  // CX_OK if done first
  cx_join_handle_detach(h);
  EXPECT_EQ(cx_runtime_destroy(rt), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

}  // namespace
