// executor/observe.h: the task dump (direct, as an iterator, and requested
// from another thread while the executor is parked), metrics and their
// Prometheus text, the slow-poll warning, and the tracing hooks. Plus what
// tracking costs in memory, and allocation failure.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "executor/cexec.h"
#include "executor/debug.h"
#include "executor/observe.h"
#include "tests/testutil.h"

namespace {

using cxtest::Countdown;
using cxtest::kCountdownVt;
using cxtest::ScopedCountingAllocator;

constexpr uint64_t kMs = CX_NSEC_PER_MSEC;
constexpr uint64_t kLongWait = 10000 * kMs;  // watchdog: fail, never hang

// ---- a gate: a leaf future opened by the test, from any thread -------------

struct Gate {
  std::mutex mu;
  bool open = false;
  cx_waker waker = CX_WAKER_EMPTY;

  cx_poll Poll(cx_context *cx) {
    std::lock_guard<std::mutex> g(mu);
    if (open) return CX_READY;
    EXPECT_EQ(cx_waker_store(&waker, cx->waker), CX_OK);
    return CX_PENDING;
  }
  void Open() {
    cx_waker w;
    {
      std::lock_guard<std::mutex> g(mu);
      open = true;
      w = waker;
      waker = CX_WAKER_EMPTY;
    }
    cx_waker_wake(&w);
  }
  ~Gate() { cx_waker_drop(&waker); }
};

// The line of the await a coroutine pended at, as the test expects it.
int g_await_line = 0;
#define AWAIT_AND_RECORD(co, e) \
  do {                          \
    g_await_line = __LINE__;    \
    CX_AWAIT(co, e);            \
  } while (0)

// A coroutine that waits at a gate twice, then returns.
struct Waiter {
  cx_coro co;
  Gate *gate;
};

cx_poll WaiterPoll(void *self, cx_context *cx, void *out) {
  (void)out;
  Waiter *w = static_cast<Waiter *>(self);
  CX_CORO_BEGIN(&w->co);
  AWAIT_AND_RECORD(&w->co, w->gate->Poll(cx));
  CX_CORO_END(&w->co);
}

CX_CORO_DEBUG_LOCATION(WaiterLocation, Waiter, co)

const cx_future_vtable kWaiterVt = {
    .poll = WaiterPoll,
    .state_size = sizeof(Waiter),
    .state_align = alignof(Waiter),
    .debug_location = WaiterLocation,
};

// The same coroutine without a debug_location.
const cx_future_vtable kWaiterNoLocVt = {
    .poll = WaiterPoll,
    .state_size = sizeof(Waiter),
    .state_align = alignof(Waiter),
};

std::string ThisFile() {
  return __FILE__;
}

// Captures what a FILE* receives.
class MemFile {
 public:
  MemFile() : f_(open_memstream(&buf_, &len_)) {}
  ~MemFile() {
    if (f_) fclose(f_);
    free(buf_);
  }
  FILE *f() { return f_; }
  std::string str() {
    fflush(f_);
    return std::string(buf_, len_);
  }

 private:
  char *buf_ = nullptr;
  size_t len_ = 0;
  FILE *f_;
};

std::vector<cx_task_dump_entry> Entries(cx_executor *ex) {
  std::vector<cx_task_dump_entry> v;
  int n = cx_executor_foreach_task(
      ex,
      [](void *ctx, const cx_task_dump_entry *e) {
        static_cast<std::vector<cx_task_dump_entry> *>(ctx)->push_back(*e);
        return 0;
      },
      &v);
  EXPECT_EQ(n, static_cast<int>(v.size()));
  return v;
}

// ---- the task dump
// -----------------------------------------------------------

TEST(Dump, NamesTheTaskItsSpawnSiteAndTheLineItWaitsAt) {
  ScopedCountingAllocator alloc;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Gate gate;
  Waiter w = {CX_CORO_INIT, &gate};
  const int spawn_line = __LINE__ + 1;
  ASSERT_EQ(CX_SPAWN_NAMED(ex, "reader", &kWaiterVt, &w, nullptr), CX_OK);
  Countdown c = {1000000, 0, nullptr};  // an untracked, busy task
  ASSERT_EQ(cx_spawn(ex, &kCountdownVt, &c, nullptr), CX_OK);
  ASSERT_EQ(cx_executor_step(ex), 1);  // polls the Waiter: pends at the gate
  ASSERT_GT(g_await_line, 0);

  MemFile mf;
  EXPECT_EQ(cx_executor_dump(ex, mf.f()), 2);
  std::string out = mf.str();
  fputs(out.c_str(), stdout);  // a sample, for docs/observability.md
  std::string site = ThisFile() + ":" + std::to_string(spawn_line);
  std::string at = ThisFile() + ":" + std::to_string(g_await_line);
  // The tracked task's line: id, state, polls, name, site, await.
  std::istringstream lines(out);
  std::string line, reader_line, other_line;
  while (std::getline(lines, line)) {
    if (line.find("reader") != std::string::npos) reader_line = line;
    if (line.find("scheduled") != std::string::npos) other_line = line;
  }
  ASSERT_FALSE(reader_line.empty()) << out;
  EXPECT_EQ(reader_line.rfind("#1 ", 0), 0u) << reader_line;
  EXPECT_NE(reader_line.find(" idle "), std::string::npos) << reader_line;
  EXPECT_NE(reader_line.find(site), std::string::npos) << reader_line;
  EXPECT_NE(reader_line.find(at), std::string::npos) << reader_line;
  // The untracked task: queued, no name, no site, no location.
  ASSERT_FALSE(other_line.empty()) << out;
  EXPECT_EQ(other_line.find(ThisFile()), std::string::npos) << other_line;
  EXPECT_NE(out.find("2 live tasks"), std::string::npos) << out;

  gate.Open();
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

TEST(Dump, IteratorReportsStatesPollsTimesAndStops) {
  ScopedCountingAllocator alloc;
  cx_observe_options obs = {};
  obs.track_tasks = true;
  cx_executor_options opts = {};
  opts.observe = &obs;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(&opts, &ex), CX_OK);
  Gate gate;
  Waiter w = {CX_CORO_INIT, &gate};
  cx_join_handle *h;
  ASSERT_EQ(cx_spawn(ex, &kWaiterNoLocVt, &w, &h), CX_OK);  // tracked: opts
  Waiter w2 = {CX_CORO_INIT, &gate};
  ASSERT_EQ(CX_SPAWN(ex, &kWaiterVt, &w2, nullptr), CX_OK);
  EXPECT_GE(cx_executor_run_until_idle(ex), 2);

  std::vector<cx_task_dump_entry> v = Entries(ex);
  ASSERT_EQ(v.size(), 2u);
  // Most recent first.
  EXPECT_EQ(v[0].task.id, 2u);
  EXPECT_EQ(v[1].task.id, 1u);
  EXPECT_EQ(v[1].task.spawn_file, nullptr);  // plain cx_spawn: no site
  EXPECT_EQ(v[1].task.name, nullptr);
  EXPECT_EQ(v[1].await_file, nullptr);  // no debug_location in its vtable
  EXPECT_STREQ(v[0].task.spawn_file, __FILE__);
  EXPECT_EQ(v[0].await_line, g_await_line);
  for (const cx_task_dump_entry &e : v) {
    EXPECT_EQ(e.state, CX_TASK_IDLE);
    EXPECT_EQ(e.polls, 1u);
    EXPECT_NE(e.since_spawn_ns, CX_NS_UNKNOWN);
    EXPECT_NE(e.since_poll_ns, CX_NS_UNKNOWN);  // timed: an observe option
    EXPECT_LE(e.since_poll_ns, e.since_spawn_ns);
    EXPECT_EQ(e.task.worker, 0u);
  }
  // Cancelling shows, until the executor drops the future.
  ASSERT_EQ(cx_join_handle_cancel(h), CX_OK);
  v = Entries(ex);
  EXPECT_EQ(v[1].state, CX_TASK_CANCELLING);
  // A visitor that returns nonzero stops the walk.
  int seen = 0;
  EXPECT_EQ(cx_executor_foreach_task(
                ex,
                [](void *ctx, const cx_task_dump_entry *) {
                  ++*static_cast<int *>(ctx);
                  return 1;
                },
                &seen),
            1);
  EXPECT_EQ(seen, 1);
  EXPECT_EQ(cx_executor_foreach_task(nullptr, nullptr, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_executor_dump(ex, nullptr), CX_EINVAL);
  EXPECT_STREQ(cx_task_run_state_name(CX_TASK_RUNNING), "running");

  cx_join_handle_detach(h);
  gate.Open();
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_TRUE(Entries(ex).empty());
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
}

// A task that lists the tasks from inside its own poll: it shows as running.
// The entries' strings point into the task: valid during the visit only,
// so the name is copied.
struct SelfDump {
  std::vector<cx_task_dump_entry> *out;
  std::vector<std::string> *names;
};
cx_poll SelfDumpPoll(void *self, cx_context *cx, void *) {
  auto *s = static_cast<SelfDump *>(self);
  cx_executor_foreach_task(
      cx->executor,
      [](void *ctx, const cx_task_dump_entry *e) {
        auto *sd = static_cast<SelfDump *>(ctx);
        sd->out->push_back(*e);
        sd->names->push_back(e->task.name ? e->task.name : "");
        return 0;
      },
      s);
  return CX_READY;
}
const cx_future_vtable kSelfDumpVt = {.poll = SelfDumpPoll,
                                      .state_size = sizeof(SelfDump),
                                      .state_align = alignof(SelfDump)};

TEST(Dump, FromInsideATaskShowsItRunning) {
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  std::vector<cx_task_dump_entry> v;
  std::vector<std::string> names;
  SelfDump s = {&v, &names};
  ASSERT_EQ(CX_SPAWN_NAMED(ex, "self", &kSelfDumpVt, &s, nullptr), CX_OK);
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].state, CX_TASK_RUNNING);
  EXPECT_EQ(names[0], "self");
  EXPECT_EQ(v[0].since_poll_ns, CX_NS_UNKNOWN);  // not timed: no options
  EXPECT_NE(v[0].since_spawn_ns, CX_NS_UNKNOWN);
  cx_executor_destroy(ex);
}

// A task that woke itself by reference in its last poll waits in the ready
// queue still flagged RUNNING (the self-wake fast path): the dump shows it
// scheduled, since nobody is polling it.
cx_poll YieldForeverPoll(void *, cx_context *cx, void *) {
  cx_waker_wake_by_ref(cx->waker);
  return CX_PENDING;
}
const cx_future_vtable kYieldForeverVt = {.poll = YieldForeverPoll};

TEST(Dump, ATaskThatYieldedShowsScheduled) {
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  cx_join_handle *h;
  ASSERT_EQ(CX_SPAWN_NAMED(ex, "yielder", &kYieldForeverVt, nullptr, &h),
            CX_OK);
  ASSERT_EQ(cx_executor_step(ex), 1);
  cx_task_debug_info info;
  ASSERT_EQ(cx_join_handle_debug_info(h, &info), CX_OK);
  EXPECT_TRUE(info.running);  // the state word: carried
  std::vector<cx_task_dump_entry> v = Entries(ex);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].state, CX_TASK_SCHEDULED);
  EXPECT_EQ(v[0].polls, 1u);
  EXPECT_EQ(cx_join_handle_cancel(h), CX_OK);
  v = Entries(ex);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].state, CX_TASK_CANCELLING);
  EXPECT_EQ(cx_executor_step(ex), 1);
  EXPECT_TRUE(Entries(ex).empty());
  cx_join_handle_detach(h);
  cx_executor_destroy(ex);
}

// The request form, called on the owner thread while it drives the
// executor (inside a task), runs directly instead of waiting for itself.
struct RequestInside {
  int *rc;
};
cx_poll RequestInsidePoll(void *self, cx_context *cx, void *) {
  *static_cast<RequestInside *>(self)->rc = cx_executor_request_foreach_task(
      cx->executor, [](void *, const cx_task_dump_entry *) { return 0; },
      nullptr, 0);
  return CX_READY;
}
const cx_future_vtable kRequestInsideVt = {
    .poll = RequestInsidePoll,
    .state_size = sizeof(RequestInside),
    .state_align = alignof(RequestInside)};

TEST(Dump, RequestFromInsideATaskRunsDirectly) {
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  int rc = -1;
  RequestInside r = {&rc};
  ASSERT_EQ(cx_spawn(ex, &kRequestInsideVt, &r, nullptr), CX_OK);
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(rc, 1);  // itself, served at once (timeout 0 would have failed)
  cx_executor_destroy(ex);
}

TEST(Dump, LongNamesAreTruncated) {
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Gate gate;
  Waiter w = {CX_CORO_INIT, &gate};
  std::string name(100, 'x');
  ASSERT_EQ(
      cx_spawn_named(ex, name.c_str(), nullptr, 0, &kWaiterVt, &w, nullptr),
      CX_OK);
  std::vector<cx_task_dump_entry> v = Entries(ex);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(std::string(v[0].task.name), name.substr(0, CX_TASK_NAME_MAX));
  EXPECT_EQ(v[0].task.spawn_file, nullptr);
  EXPECT_EQ(v[0].state, CX_TASK_SCHEDULED);
  EXPECT_EQ(v[0].await_file, nullptr);  // not started
  gate.Open();
  cx_executor_destroy(ex);
}

// The hung program: the executor parks in run() waiting for a gate nobody
// opens; another thread asks for the dump, which the executor serves on its
// own thread, then opens the gate. Run under TSan too.
TEST(Dump, RequestedFromAnotherThreadWhileParked) {
  ScopedCountingAllocator alloc;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  cx_spawner *sp;  // keeps ex allocated for the other thread
  ASSERT_EQ(cx_executor_spawner(ex, &sp), CX_OK);
  Gate gate;
  Waiter w = {CX_CORO_INIT, &gate};
  const int spawn_line = __LINE__ + 1;
  ASSERT_EQ(CX_SPAWN_NAMED(ex, "stuck", &kWaiterVt, &w, nullptr), CX_OK);
  std::atomic<std::thread::id> served_on{};

  std::thread watcher([&] {
    // Wait (bounded) until the task pended, so that the executor parks.
    std::vector<cx_task_dump_entry> v;
    for (int i = 0; i < 10000; i++) {
      v.clear();
      int n = cx_executor_request_foreach_task(
          ex,
          [](void *ctx, const cx_task_dump_entry *e) {
            static_cast<std::vector<cx_task_dump_entry> *>(ctx)->push_back(*e);
            return 0;
          },
          &v, kLongWait);
      ASSERT_EQ(n, static_cast<int>(v.size()));
      if (n == 1 && v[0].polls == 1 && v[0].state == CX_TASK_IDLE) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].await_line, g_await_line);
    MemFile mf;
    EXPECT_EQ(cx_executor_request_dump(ex, mf.f(), kLongWait), 1);
    std::string out = mf.str();
    EXPECT_NE(out.find("stuck"), std::string::npos) << out;
    EXPECT_NE(out.find(ThisFile() + ":" + std::to_string(spawn_line)),
              std::string::npos)
        << out;
    EXPECT_NE(out.find(ThisFile() + ":" + std::to_string(g_await_line)),
              std::string::npos)
        << out;
    // The visitor runs on the executor's thread.
    cx_executor_request_foreach_task(
        ex,
        [](void *ctx, const cx_task_dump_entry *) {
          static_cast<std::atomic<std::thread::id> *>(ctx)->store(
              std::this_thread::get_id());
          return 0;
        },
        &served_on, kLongWait);
    cx_executor_metrics m;
    EXPECT_EQ(cx_executor_request_metrics(ex, &m, kLongWait), CX_OK);
    EXPECT_EQ(m.stats.live, 1u);
    EXPECT_GE(m.stats.parks, 1u);
    gate.Open();
    cx_spawner_drop(sp);
  });
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  watcher.join();
  EXPECT_EQ(served_on.load(), std::this_thread::get_id());
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(Dump, RequestTimesOutWhenNobodyDrivesAndFailsAfterDestroy) {
  ScopedCountingAllocator alloc;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  cx_spawner *sp;
  ASSERT_EQ(cx_executor_spawner(ex, &sp), CX_OK);
  int rc = 1;
  std::thread t([&] {
    rc = cx_executor_request_foreach_task(
        ex, [](void *, const cx_task_dump_entry *) { return 0; }, nullptr,
        20 * kMs);
  });
  t.join();
  EXPECT_EQ(rc, CX_ETIMEDOUT);
  // The withdrawn request is gone: the executor runs normally.
  EXPECT_EQ(cx_executor_run_until_idle(ex), 0);
  // The owner thread while it does not drive the executor: nobody serves.
  EXPECT_EQ(cx_executor_request_dump(ex, stderr, 0), CX_ETIMEDOUT);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  std::thread t2([&] {
    MemFile mf;
    rc = cx_executor_request_dump(ex, mf.f(), kLongWait);
  });
  t2.join();
  EXPECT_EQ(rc, CX_ESHUTDOWN);
  EXPECT_EQ(cx_executor_request_dump(nullptr, stderr, 0), CX_EINVAL);
  cx_executor_metrics m;
  EXPECT_EQ(cx_executor_request_metrics(nullptr, &m, 0), CX_EINVAL);
  cx_spawner_drop(sp);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- memory: what tracking costs per task ----------------------------------

TEST(Memory, OnlyTrackedTasksCarryTheDebugBlock) {
  ScopedCountingAllocator alloc;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Gate gate;
  Waiter w = {CX_CORO_INIT, &gate};
  size_t before = alloc.live_bytes();
  ASSERT_EQ(cx_spawn(ex, &kWaiterVt, &w, nullptr), CX_OK);
  size_t plain = alloc.live_bytes() - before;
  before = alloc.live_bytes();
  ASSERT_EQ(CX_SPAWN(ex, &kWaiterVt, &w, nullptr), CX_OK);
  size_t tracked = alloc.live_bytes() - before;
  // 56-byte header + state, rounded to 8, then the 96-byte block.
  EXPECT_EQ(plain, (56 + sizeof(Waiter) + 7) / 8 * 8);
  EXPECT_EQ(tracked, plain + 96);
  gate.Open();
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

TEST(Memory, AllocationFailure) {
  ScopedCountingAllocator alloc;
  cx_observe_options obs = {};
  obs.metrics = true;
  cx_executor_options opts = {};
  opts.observe = &obs;
  cx_executor *ex = nullptr;
  // The executor, then (after the futex driver's, if any) the observer:
  // fail each allocation in turn until create succeeds.
  size_t k = 1;
  for (;; k++) {
    alloc.FailAt(k);
    int rc = cx_executor_create(&opts, &ex);
    if (rc == CX_OK) break;
    EXPECT_EQ(rc, CX_ENOMEM);
    EXPECT_EQ(alloc.live(), 0u) << "failing allocation " << k;
    ASSERT_LT(k, 10u);
  }
  EXPECT_GE(k, 2u);  // the observer is a separate allocation
  alloc.FailAfter(0);
  Countdown c = {0, 1, nullptr};
  EXPECT_EQ(CX_SPAWN_NAMED(ex, "x", &kCountdownVt, &c, nullptr), CX_ENOMEM);
  alloc.FailNever();
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- metrics and the Prometheus text ---------------------------------------

// Parses the exposition text: families (# TYPE) and samples.
struct Prom {
  std::map<std::string, std::string> types;  // family -> type
  std::map<std::string, double> samples;     // "name{labels}" -> value
  std::vector<std::pair<std::string, double>> ordered;
  bool ok = true;
  std::string error;
};

Prom Parse(const std::string &text) {
  Prom p;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream l(line.substr(7));
      std::string name, type;
      l >> name >> type;
      p.types[name] = type;
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    size_t sp = line.rfind(' ');
    if (line.empty() || line[0] == '#' || sp == std::string::npos) {
      p.ok = false;
      p.error = "bad line: " + line;
      continue;
    }
    std::string key = line.substr(0, sp);
    char *end;
    double v = strtod(line.c_str() + sp + 1, &end);
    if (*end != '\0') {
      p.ok = false;
      p.error = "bad value: " + line;
    }
    // The family must have been declared (histogram samples by suffix).
    std::string name = key.substr(0, key.find('{'));
    std::string fam = name;
    for (const char *suf : {"_bucket", "_sum", "_count"}) {
      size_t n = strlen(suf);
      if (!p.types.count(fam) && fam.size() > n &&
          fam.compare(fam.size() - n, n, suf) == 0)
        fam = fam.substr(0, fam.size() - n);
    }
    if (!p.types.count(fam)) {
      p.ok = false;
      p.error = "undeclared family: " + line;
    }
    p.samples[key] = v;
    p.ordered.push_back({key, v});
  }
  return p;
}

struct Sleeper {
  int pending;
};
cx_poll SleeperPoll(void *self, cx_context *cx, void *) {
  auto *s = static_cast<Sleeper *>(self);
  if (s->pending-- > 0) {
    cx_waker_wake_by_ref(cx->waker);
    return CX_PENDING;
  }
  return CX_READY;
}
const cx_future_vtable kSleeperVt = {.poll = SleeperPoll,
                                     .state_size = sizeof(Sleeper),
                                     .state_align = alignof(Sleeper)};

TEST(Metrics, PrometheusTextParsesAndMatchesTheStats) {
  ScopedCountingAllocator alloc;
  cx_observe_options obs = {};
  obs.metrics = true;
  obs.track_tasks = true;
  cx_executor_options opts = {};
  opts.observe = &obs;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(&opts, &ex), CX_OK);
  for (int i = 0; i < 10; i++) {
    Sleeper s = {i};
    ASSERT_EQ(cx_spawn(ex, &kSleeperVt, &s, nullptr), CX_OK);
  }
  Gate gate;
  Waiter w = {CX_CORO_INIT, &gate};
  cx_join_handle *h;
  ASSERT_EQ(cx_spawn(ex, &kWaiterVt, &w, &h), CX_OK);
  ASSERT_EQ(cx_join_handle_cancel(h), CX_OK);
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  cx_join_handle_detach(h);

  cx_executor_metrics m;
  ASSERT_EQ(cx_executor_get_metrics(ex, &m), CX_OK);
  cx_executor_stats st;
  ASSERT_EQ(cx_executor_get_stats(ex, &st), CX_OK);
  EXPECT_EQ(m.stats.polls, st.polls);
  EXPECT_EQ(st.polls, 55u);  // sum of (i + 1); the cancelled one never polled
  EXPECT_TRUE(m.timed);
  EXPECT_EQ(m.poll_duration.count, st.polls);
  EXPECT_EQ(m.wake_to_poll.count, st.polls);  // every task tracked
  uint64_t sum = 0;
  for (uint64_t b : m.poll_duration.buckets) sum += b;
  EXPECT_EQ(sum, m.poll_duration.count);
  EXPECT_GE(m.local_queue_max, 1u);

  std::vector<char> buf(64 * 1024);
  int len = cx_metrics_format_prometheus(&m, 1, buf.data(), buf.size());
  ASSERT_GT(len, 0);
  std::string text(buf.data(), static_cast<size_t>(len));
  EXPECT_EQ(strlen(buf.data()), static_cast<size_t>(len));
  Prom p = Parse(text);
  ASSERT_TRUE(p.ok) << p.error << "\n" << text;
  EXPECT_EQ(p.types["cexec_polls_total"], "counter");
  EXPECT_EQ(p.types["cexec_tasks_live"], "gauge");
  EXPECT_EQ(p.types["cexec_poll_duration_seconds"], "histogram");
  EXPECT_EQ(p.types["cexec_wake_to_poll_seconds"], "histogram");
  const std::string w0 = "{worker=\"0\"}";
  EXPECT_EQ(p.samples["cexec_polls_total" + w0], 55);
  EXPECT_EQ(p.samples["cexec_tasks_spawned_total" + w0], 11);
  EXPECT_EQ(p.samples["cexec_tasks_completed_total" + w0], 10);
  EXPECT_EQ(p.samples["cexec_tasks_cancelled_total" + w0], 1);
  EXPECT_EQ(p.samples["cexec_tasks_live" + w0], 0);
  EXPECT_EQ(p.samples["cexec_poll_duration_seconds_count" + w0], 55);
  EXPECT_EQ(p.samples["cexec_poll_duration_seconds_bucket{worker=\"0\","
                      "le=\"+Inf\"}"],
            55);
  EXPECT_GT(p.samples["cexec_poll_duration_seconds_sum" + w0], 0);
  // Buckets: cumulative, in increasing le order, CX_HIST_BUCKETS of them.
  double prev = 0, prev_le = 0;
  int buckets = 0;
  for (const auto &kv : p.ordered) {
    if (kv.first.rfind("cexec_poll_duration_seconds_bucket", 0) != 0) continue;
    buckets++;
    EXPECT_GE(kv.second, prev) << kv.first;
    prev = kv.second;
    size_t q = kv.first.find("le=\"") + 4;
    std::string le = kv.first.substr(q, kv.first.size() - q - 2);
    if (le != "+Inf") {
      double v = strtod(le.c_str(), nullptr);
      EXPECT_GT(v, prev_le);
      prev_le = v;
    }
  }
  EXPECT_EQ(buckets, CX_HIST_BUCKETS);
  EXPECT_EQ(cx_histogram_bucket_upper_ns(0), 1024u);
  EXPECT_EQ(cx_histogram_bucket_upper_ns(CX_HIST_BUCKETS - 1), UINT64_MAX);

  // Too small: CX_ENOSPC, with a NUL-terminated prefix.
  char small[64];
  EXPECT_EQ(cx_metrics_format_prometheus(&m, 1, small, sizeof small),
            CX_ENOSPC);
  EXPECT_LT(strlen(small), sizeof small);
  EXPECT_EQ(
      cx_metrics_format_prometheus(&m, 1, buf.data(), static_cast<size_t>(len)),
      CX_ENOSPC);  // no room for the NUL
  EXPECT_EQ(cx_metrics_format_prometheus(&m, 1, buf.data(),
                                         static_cast<size_t>(len) + 1),
            len);
  EXPECT_EQ(cx_metrics_format_prometheus(nullptr, 1, buf.data(), 10),
            CX_EINVAL);
  EXPECT_EQ(cx_metrics_format_prometheus(&m, 0, buf.data(), 10), CX_EINVAL);
  EXPECT_EQ(cx_metrics_format_prometheus(&m, 1, nullptr, 10), CX_EINVAL);
  EXPECT_EQ(cx_executor_get_metrics(nullptr, &m), CX_EINVAL);

  // Two workers (the runtime's shape): one sample per worker per family.
  cx_executor_metrics two[2] = {m, m};
  two[1].worker = 1;
  len = cx_metrics_format_prometheus(two, 2, buf.data(), buf.size());
  ASSERT_GT(len, 0);
  Prom p2 = Parse(std::string(buf.data(), static_cast<size_t>(len)));
  ASSERT_TRUE(p2.ok) << p2.error;
  EXPECT_EQ(p2.samples["cexec_polls_total{worker=\"1\"}"], 55);
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(Metrics, UntimedWithoutOptions) {
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Sleeper s = {3};
  ASSERT_EQ(cx_spawn(ex, &kSleeperVt, &s, nullptr), CX_OK);
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  cx_executor_metrics m;
  ASSERT_EQ(cx_executor_get_metrics(ex, &m), CX_OK);
  EXPECT_FALSE(m.timed);
  EXPECT_EQ(m.stats.polls, 4u);
  EXPECT_EQ(m.poll_duration.count, 0u);
  char buf[8192];
  int len = cx_metrics_format_prometheus(&m, 1, buf, sizeof buf);
  ASSERT_GT(len, 0);
  Prom p = Parse(buf);
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(p.samples["cexec_polls_total{worker=\"0\"}"], 4);
  EXPECT_EQ(p.types.count("cexec_poll_duration_seconds"), 0u);
  cx_executor_destroy(ex);
}

// ---- slow polls
// ----------------------------------------------------------------

struct Busy {
  int busy_ms;  // busy-waits this long in its first poll
  int pending;  // then pends (waking itself) this many times, quickly
};
cx_poll BusyPoll(void *self, cx_context *cx, void *) {
  auto *b = static_cast<Busy *>(self);
  if (b->busy_ms > 0) {
    auto until = std::chrono::steady_clock::now() +
                 std::chrono::milliseconds(b->busy_ms);
    while (std::chrono::steady_clock::now() < until) {
    }
    b->busy_ms = 0;
  }
  if (b->pending-- > 0) {
    cx_waker_wake_by_ref(cx->waker);
    return CX_PENDING;
  }
  return CX_READY;
}
const cx_future_vtable kBusyVt = {
    .poll = BusyPoll, .state_size = sizeof(Busy), .state_align = alignof(Busy)};

struct SlowLog {
  std::vector<cx_slow_poll_report> reports;
  std::vector<std::string> names, files;
  static void Fn(void *ctx, const cx_slow_poll_report *r) {
    auto *l = static_cast<SlowLog *>(ctx);
    l->reports.push_back(*r);
    l->names.push_back(r->task.name ? r->task.name : "");
    l->files.push_back(r->task.spawn_file ? r->task.spawn_file : "");
  }
};

cx_executor *SlowExecutor(SlowLog *log, uint64_t threshold_ns) {
  cx_observe_options obs = {};
  obs.slow_poll = true;
  obs.slow_poll_ns = threshold_ns;
  obs.on_slow_poll = log ? SlowLog::Fn : nullptr;
  obs.slow_poll_ctx = log;
  cx_executor_options opts = {};
  opts.observe = &obs;  // copied: may go out of scope
  cx_executor *ex = nullptr;
  EXPECT_EQ(cx_executor_create(&opts, &ex), CX_OK);
  return ex;
}

TEST(SlowPoll, FiresForABlockingPoll) {
  SlowLog log;
  cx_executor *ex = SlowExecutor(&log, 5 * kMs);
  Busy fast = {0, 20};
  ASSERT_EQ(CX_SPAWN_NAMED(ex, "fast", &kBusyVt, &fast, nullptr), CX_OK);
  Busy slow = {50, 0};  // one poll: busy 50 ms, then ready
  const int spawn_line = __LINE__ + 1;
  ASSERT_EQ(CX_SPAWN_NAMED(ex, "blocker", &kBusyVt, &slow, nullptr), CX_OK);
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  // The blocker's poll is reported once. A fast poll is reported only if
  // the machine preempted the thread for 5 ms in the middle of it (wall
  // time is what blocks an executor); HighThresholdNeverFires checks that
  // ordinary polls are not reported.
  size_t blocker = 0;
  for (size_t i = 0; i < log.reports.size(); i++) {
    if (log.names[i] != "blocker") {
      EXPECT_EQ(log.names[i], "fast");
      continue;
    }
    blocker++;
    EXPECT_EQ(log.files[i], ThisFile());
    EXPECT_EQ(log.reports[i].task.spawn_line, spawn_line);
    EXPECT_EQ(log.reports[i].task.id, 2u);
    EXPECT_GE(log.reports[i].duration_ns, 50 * kMs);
    EXPECT_EQ(log.reports[i].threshold_ns, 5 * kMs);
    EXPECT_EQ(log.reports[i].result, CX_READY);
  }
  EXPECT_EQ(blocker, 1u);
  cx_executor_metrics m;
  ASSERT_EQ(cx_executor_get_metrics(ex, &m), CX_OK);
  EXPECT_EQ(m.slow_polls, log.reports.size());
  // The slow poll landed in a bucket of at least 32 ms.
  uint64_t high = 0;
  for (unsigned i = 0; i < CX_HIST_BUCKETS; i++)
    if (cx_histogram_bucket_upper_ns(i) > 32 * kMs)
      high += m.poll_duration.buckets[i];
  EXPECT_GE(high, 1u);
  cx_executor_destroy(ex);
}

TEST(SlowPoll, HighThresholdNeverFires) {
  SlowLog log;
  cx_executor *ex = SlowExecutor(&log, 10000 * kMs);
  Busy slow = {50, 3};
  ASSERT_EQ(CX_SPAWN(ex, &kBusyVt, &slow, nullptr), CX_OK);
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_TRUE(log.reports.empty());
  cx_executor_destroy(ex);
}

TEST(SlowPoll, DefaultThresholdAndStderr) {
  SlowLog log;
  cx_executor *ex = SlowExecutor(&log, 0);  // 0: the 10 ms default
  Busy slow = {50, 0};
  ASSERT_EQ(CX_SPAWN_NAMED(ex, "dflt", &kBusyVt, &slow, nullptr), CX_OK);
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  ASSERT_EQ(log.reports.size(), 1u);
  EXPECT_EQ(log.reports[0].threshold_ns, CX_SLOW_POLL_DEFAULT_NS);
  EXPECT_EQ(log.reports[0].result, CX_READY);
  cx_executor_destroy(ex);

  ex = SlowExecutor(nullptr, 5 * kMs);  // no callback: stderr
  Busy slow2 = {50, 0};
  const int spawn_line = __LINE__ + 1;
  ASSERT_EQ(CX_SPAWN_NAMED(ex, "loud", &kBusyVt, &slow2, nullptr), CX_OK);
  testing::internal::CaptureStderr();
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("slow poll"), std::string::npos) << err;
  EXPECT_NE(err.find("\"loud\""), std::string::npos) << err;
  EXPECT_NE(err.find(ThisFile() + ":" + std::to_string(spawn_line)),
            std::string::npos)
      << err;
  cx_executor_destroy(ex);
}

// ---- hooks
// -----------------------------------------------------------------------

struct HookLog {
  std::vector<std::string> events;
  std::thread::id owner;
  bool wrong_thread = false;
  void Add(const char *what, const cx_task_view *t, const char *extra = "") {
    if (std::this_thread::get_id() != owner) wrong_thread = true;
    events.push_back(std::string(what) + ":" + (t->name ? t->name : "?") +
                     extra);
  }
};

cx_hooks Hooks(HookLog *log) {
  cx_hooks h = {};
  h.ctx = log;
  h.on_spawn = [](void *c, const cx_task_view *t) {
    static_cast<HookLog *>(c)->Add("spawn", t);
  };
  h.before_poll = [](void *c, const cx_task_view *t) {
    static_cast<HookLog *>(c)->Add("before", t);
  };
  h.after_poll = [](void *c, const cx_task_view *t, cx_poll r, uint64_t) {
    static_cast<HookLog *>(c)->Add("after", t, r == CX_READY ? "=ready" : "");
  };
  h.on_complete = [](void *c, const cx_task_view *t, bool cancelled) {
    static_cast<HookLog *>(c)->Add("complete", t, cancelled ? "=cancel" : "");
  };
  return h;
}

TEST(Hooks, CalledInOrderOnTheExecutorThread) {
  ScopedCountingAllocator alloc;
  HookLog log;
  log.owner = std::this_thread::get_id();
  cx_observe_options obs = {};
  obs.hooks = Hooks(&log);
  cx_executor_options opts = {};
  opts.observe = &obs;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(&opts, &ex), CX_OK);
  Sleeper a = {1};
  ASSERT_EQ(CX_SPAWN_NAMED(ex, "a", &kSleeperVt, &a, nullptr), CX_OK);
  Gate gate;
  Waiter w = {CX_CORO_INIT, &gate};
  cx_join_handle *h;
  ASSERT_EQ(CX_SPAWN_NAMED(ex, "w", &kWaiterVt, &w, &h), CX_OK);
  ASSERT_EQ(cx_executor_run_until_idle(ex), 3);
  ASSERT_EQ(cx_join_handle_cancel(h), CX_OK);
  // A spawn from another thread: its on_spawn runs on the executor's.
  cx_spawner *sp;
  ASSERT_EQ(cx_executor_spawner(ex, &sp), CX_OK);
  std::thread t([&] {
    Sleeper r = {0};
    EXPECT_EQ(CX_SPAWNER_SPAWN_NAMED(sp, "remote", &kSleeperVt, &r, nullptr),
              CX_OK);
    cx_spawner_drop(sp);
  });
  t.join();
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  cx_join_handle_detach(h);
  std::vector<std::string> want = {
      "spawn:a", "spawn:w", "before:a", "after:a", "before:w", "after:w",
      "before:a", "after:a=ready", "complete:a",
      // take-in order: remote spawns, then remote wakes (the cancel, made
      // from this thread while the executor was not running, is one)
      "spawn:remote", "before:remote", "after:remote=ready", "complete:remote",
      "complete:w=cancel"};
  EXPECT_EQ(log.events, want);
  EXPECT_FALSE(log.wrong_thread);
  cx_executor_stats st;
  ASSERT_EQ(cx_executor_get_stats(ex, &st), CX_OK);
  EXPECT_EQ(st.polls, 4u);  // as many as before/after pairs
  gate.Open();              // drops the cancelled task's waker
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(Hooks, UntrackedTasksHaveNoNameAndIdZero) {
  struct Seen {
    uint64_t id = 99;
    const char *name = "x";
    int spawns = 0;
  } seen;
  cx_observe_options obs = {};
  obs.hooks.ctx = &seen;
  obs.hooks.on_spawn = [](void *c, const cx_task_view *t) {
    auto *s = static_cast<Seen *>(c);
    s->id = t->id;
    s->name = t->name;
    s->spawns++;
  };
  cx_executor_options opts = {};
  opts.observe = &obs;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(&opts, &ex), CX_OK);
  Sleeper s = {0};
  ASSERT_EQ(cx_spawn(ex, &kSleeperVt, &s, nullptr), CX_OK);
  EXPECT_EQ(seen.spawns, 1);
  EXPECT_EQ(seen.id, 0u);
  EXPECT_EQ(seen.name, nullptr);
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  cx_executor_destroy(ex);
}

}  // namespace
