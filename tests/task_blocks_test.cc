// Task blocks (executor/internal/task_blocks.h): slots for tasks carved from
// large cx_alloc blocks; and the executor's task_memory option that uses
// them.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "executor/cexec.h"
#include "executor/debug.h"
#include "executor/internal/task_blocks.h"
#include "tests/testutil.h"

namespace {

using namespace cxtest;

size_t ClassOf(size_t size) {
  return cx__task_blocks_class(size);
}

struct Blocks {
  cx__task_blocks tb;
  Blocks() { cx__task_blocks_init(&tb); }
  ~Blocks() { cx__task_blocks_destroy(&tb); }
};

TEST(TaskBlocks, FitsOnlySmallAndLittleAligned) {
  EXPECT_TRUE(cx__task_blocks_fits(1, 1));
  EXPECT_TRUE(cx__task_blocks_fits(256, 16));
  EXPECT_FALSE(cx__task_blocks_fits(0, 8));
  EXPECT_FALSE(cx__task_blocks_fits(257, 8));
  EXPECT_FALSE(cx__task_blocks_fits(64, 32));
  EXPECT_EQ(ClassOf(1), 0u);
  EXPECT_EQ(ClassOf(16), 0u);
  EXPECT_EQ(ClassOf(17), 1u);
  EXPECT_EQ(ClassOf(256), 15u);
}

// Slots are distinct, 16-aligned, as large as their class, and a freed slot
// is the next one handed out (LIFO); memory comes in few, growing blocks.
TEST(TaskBlocks, SlotsAreDistinctAndReused) {
  ScopedCountingAllocator alloc;
  {
    Blocks b;
    const size_t kN = 5000;
    std::vector<unsigned char *> p(kN);
    for (size_t i = 0; i < kN; i++) {
      size_t ci = ClassOf(64 + 16 * (i % 3));
      p[i] = static_cast<unsigned char *>(cx__task_blocks_alloc(&b.tb, ci));
      ASSERT_NE(p[i], nullptr);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p[i]) % 16, 0u);
      std::memset(p[i], static_cast<int>(i & 0xff), (ci + 1) * 16);
    }
    for (size_t i = 0; i < kN; i++) {  // nothing overwrote anything
      size_t ci = ClassOf(64 + 16 * (i % 3));
      for (size_t k = 0; k < (ci + 1) * 16; k++)
        ASSERT_EQ(p[i][k], static_cast<unsigned char>(i & 0xff)) << i;
    }
    EXPECT_EQ(std::set<unsigned char *>(p.begin(), p.end()).size(), kN);
    EXPECT_EQ(b.tb.live, kN);
    // 5000 slots of about 80 bytes: a handful of doubling blocks, not 5000.
    EXPECT_LE(b.tb.block_count, 3u * 6u);
    EXPECT_EQ(alloc.live(), b.tb.block_count);
    size_t blocks = b.tb.block_count;
    cx__task_blocks_free(&b.tb, p[7], ClassOf(64 + 16 * (7 % 3)), true);
    EXPECT_EQ(cx__task_blocks_alloc(&b.tb, ClassOf(64 + 16 * (7 % 3))), p[7]);
    for (size_t i = 0; i < kN; i++)
      cx__task_blocks_free(&b.tb, p[i], ClassOf(64 + 16 * (i % 3)), true);
    EXPECT_EQ(b.tb.live, 0u);
    for (size_t i = 0; i < kN; i++)  // all reused: no new block
      ASSERT_NE(cx__task_blocks_alloc(&b.tb, ClassOf(64 + 16 * (i % 3))),
                nullptr);
    EXPECT_EQ(b.tb.block_count, blocks);
  }
  EXPECT_EQ(alloc.live(), 0u);  // destroy freed every block
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

// A failed block allocation is reported (NULL) and changes nothing: the
// next attempt succeeds once memory is back.
TEST(TaskBlocks, BlockAllocationFailureIsNullAndRecoverable) {
  ScopedCountingAllocator alloc;
  {
    Blocks b;
    alloc.FailAfter(0);
    EXPECT_EQ(cx__task_blocks_alloc(&b.tb, ClassOf(64)), nullptr);
    EXPECT_EQ(b.tb.block_count, 0u);
    EXPECT_EQ(b.tb.live, 0u);
    alloc.FailNever();
    void *p = cx__task_blocks_alloc(&b.tb, ClassOf(64));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(b.tb.live, 1u);
    // Fill the first block, then fail the second: still NULL, still sane.
    std::vector<void *> held;
    size_t blocks = b.tb.block_count;
    while (b.tb.block_count == blocks) {
      alloc.FailAfter(0);
      void *q = cx__task_blocks_alloc(&b.tb, ClassOf(64));
      alloc.FailNever();
      if (q == nullptr) break;
      held.push_back(q);
    }
    EXPECT_EQ(b.tb.block_count, blocks);
    EXPECT_GT(held.size(), 100u);  // 16 KiB of 64-byte slots
    EXPECT_NE(cx__task_blocks_alloc(&b.tb, ClassOf(64)), nullptr);
    EXPECT_EQ(b.tb.block_count, blocks + 1);
  }
  EXPECT_EQ(alloc.live(), 0u);
}

// Slots freed by other threads go to the remote stack; the owner takes them
// back before it asks for a new block. Run under TSan in CI.
TEST(TaskBlocks, RemoteFreesAreReusedBeforeANewBlock) {
  ScopedCountingAllocator alloc;
  {
    Blocks b;
    const size_t kN = 4000, ci = ClassOf(64);
    std::vector<void *> p(kN);
    for (size_t i = 0; i < kN; i++) {
      p[i] = cx__task_blocks_alloc(&b.tb, ci);
      ASSERT_NE(p[i], nullptr);
      std::memset(p[i], 0xab, 64);  // the owner's last use of the slot
    }
    size_t blocks = b.tb.block_count;
    std::vector<std::thread> threads;
    for (int k = 0; k < 4; k++)
      threads.emplace_back([&, k] {
        for (size_t i = k; i < kN; i += 4)
          cx__task_blocks_free(&b.tb, p[i], ci, false);
      });
    for (auto &t : threads) t.join();
    EXPECT_EQ(b.tb.live, kN);  // not back with the owner yet
    // The newest block's unused tail first, then the freed slots: kN more
    // slots without a new block.
    std::set<void *> again;
    for (size_t i = 0; i < kN; i++) {
      void *q = cx__task_blocks_alloc(&b.tb, ci);
      ASSERT_NE(q, nullptr);
      again.insert(q);
    }
    EXPECT_EQ(b.tb.block_count, blocks);
    EXPECT_EQ(again.size(), kN);
    size_t reused = 0;
    for (void *q : p) reused += again.count(q);
    EXPECT_GT(reused, 0u);
  }
  EXPECT_EQ(alloc.live(), 0u);
}

// Frees from other threads while the owner allocates and frees.
TEST(TaskBlocks, ConcurrentRemoteFreesWhileTheOwnerAllocates) {
  ScopedCountingAllocator alloc;
  {
    Blocks b;
    const size_t ci = ClassOf(96);
    std::atomic<void *> handoff[64];
    for (auto &h : handoff) h.store(nullptr);
    std::atomic<bool> stop{false};
    std::thread freer([&] {
      while (!stop.load(std::memory_order_acquire))
        for (auto &h : handoff) {
          void *p = h.exchange(nullptr, std::memory_order_acquire);
          if (p) cx__task_blocks_free(&b.tb, p, ci, false);
        }
    });
    std::set<void *> live;
    for (int round = 0; round < 20000; round++) {
      void *p = cx__task_blocks_alloc(&b.tb, ci);
      ASSERT_NE(p, nullptr);
      std::memset(p, round & 0xff, 96);
      auto &h = handoff[round % 64];
      void *expected = nullptr;
      if (!h.compare_exchange_strong(expected, p, std::memory_order_release))
        cx__task_blocks_free(&b.tb, p, ci, true);  // slot busy: free here
    }
    stop.store(true, std::memory_order_release);
    freer.join();
    for (auto &h : handoff)
      if (void *p = h.exchange(nullptr))
        cx__task_blocks_free(&b.tb, p, ci, true);
    // 20000 allocations, at most 64 + a few in flight: a few blocks only.
    EXPECT_LE(b.tb.block_count, 3u);
  }
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- the executor's task_memory option -------------------------------------

struct Tiny {
  int *counter;
};
cx_poll TinyPoll(void *self, cx_context *, void *) {
  ++*static_cast<Tiny *>(self)->counter;
  return CX_READY;
}
const cx_future_vtable kTinyVt = {
    .poll = TinyPoll, .state_size = sizeof(Tiny), .state_align = alignof(Tiny)};

struct Big {
  int *counter;
  char pad[512];
};
cx_poll BigPoll(void *self, cx_context *, void *) {
  ++*static_cast<Big *>(self)->counter;
  return CX_READY;
}
const cx_future_vtable kBigVt = {
    .poll = BigPoll, .state_size = sizeof(Big), .state_align = alignof(Big)};

cx_executor *Create(cx_task_memory m) {
  cx_executor_options o = {};
  o.task_memory = m;
  cx_executor *ex = nullptr;
  EXPECT_EQ(cx_executor_create(&o, &ex), CX_OK);
  return ex;
}

TEST(TaskMemory, UnknownValueIsRefused) {
  cx_executor_options o = {};
  o.task_memory = static_cast<cx_task_memory>(7);
  cx_executor *ex = reinterpret_cast<cx_executor *>(1);
  EXPECT_EQ(cx_executor_create(&o, &ex), CX_EINVAL);
  EXPECT_EQ(ex, nullptr);
}

// EACH, and AUTO with a program's allocator: one cx_alloc per task.
TEST(TaskMemory, EachAndAutoWithACustomAllocatorAllocatePerTask) {
  for (cx_task_memory m : {CX_TASK_MEMORY_EACH, CX_TASK_MEMORY_AUTO}) {
    ScopedCountingAllocator alloc;
    cx_executor *ex = Create(m);
    int n = 0;
    Tiny t = {&n};
    size_t before = alloc.allocs();
    for (int i = 0; i < 100; i++)
      ASSERT_EQ(cx_spawn(ex, &kTinyVt, &t, nullptr), CX_OK);
    EXPECT_EQ(alloc.allocs() - before, 100u) << m;
    EXPECT_EQ(cx_executor_run(ex), CX_OK);
    EXPECT_EQ(n, 100);
    EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
    EXPECT_EQ(alloc.live(), 0u);
  }
}

// BLOCKS: spawns come from a few blocks, finished tasks' slots are reused,
// big tasks are allocated alone, and destroy returns everything.
TEST(TaskMemory, BlocksServeSpawnsAndAreFreedWithTheExecutor) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = Create(CX_TASK_MEMORY_BLOCKS);
  int n = 0;
  Tiny t = {&n};
  size_t before = alloc.allocs();
  for (int i = 0; i < 1000; i++)
    ASSERT_EQ(cx_spawn(ex, &kTinyVt, &t, nullptr), CX_OK);
  size_t first = alloc.allocs() - before;
  EXPECT_LT(first, 10u);  // blocks, not 1000 tasks
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(n, 1000);
  before = alloc.allocs();
  for (int i = 0; i < 1000; i++)
    ASSERT_EQ(cx_spawn(ex, &kTinyVt, &t, nullptr), CX_OK);
  EXPECT_EQ(alloc.allocs() - before, 0u);  // the finished tasks' slots
  Big big = {&n, {}};
  before = alloc.allocs();
  ASSERT_EQ(cx_spawn(ex, &kBigVt, &big, nullptr), CX_OK);
  EXPECT_EQ(alloc.allocs() - before, 1u);  // over 256 bytes: its own
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(n, 2001);
  EXPECT_GT(alloc.live(), 0u);  // the blocks, kept for later spawns
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

// A spawn that needs a new block while the allocator fails is CX_ENOMEM
// and leaves nothing behind; spawning works again afterwards.
TEST(TaskMemory, BlocksReportAllocationFailure) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = Create(CX_TASK_MEMORY_BLOCKS);
  int n = 0;
  Tiny t = {&n};
  alloc.FailAfter(0);
  cx_join_handle *h = reinterpret_cast<cx_join_handle *>(1);
  EXPECT_EQ(cx_spawn(ex, &kTinyVt, &t, &h), CX_ENOMEM);
  EXPECT_EQ(h, nullptr);
  cx_executor_stats st;
  ASSERT_EQ(cx_executor_get_stats(ex, &st), CX_OK);
  EXPECT_EQ(st.spawned, 0u);
  alloc.FailNever();
  ASSERT_EQ(cx_spawn(ex, &kTinyVt, &t, &h), CX_OK);
  int out;
  EXPECT_EQ(cx_executor_join(ex, h, &out, 0), CX_OK);
  cx_join_handle_detach(h);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

// The last reference of a task dropped on another thread (a waker clone):
// its slot goes back through the remote stack and is reused; the executor
// stays alive until that reference goes, blocks included. TSan in CI.
TEST(TaskMemory, TaskFreedOnAnotherThreadReturnsItsSlot) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = Create(CX_TASK_MEMORY_BLOCKS);
  Stats stats;
  Never never = {CX_WAKER_EMPTY, &stats};
  std::vector<cx_join_handle *> hs(200);
  for (auto &h : hs) ASSERT_EQ(cx_spawn(ex, &kNeverVt, &never, &h), CX_OK);
  EXPECT_EQ(cx_executor_run_until_idle(ex), 200);
  // Destroy cancels them; the handles keep the tasks (and so ex and its
  // blocks) alive until another thread drops them.
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(stats.drops, 200);
  EXPECT_GT(alloc.live(), 0u);
  std::thread other([&] {
    for (auto h : hs) cx_join_handle_detach(h);
  });
  other.join();
  EXPECT_EQ(alloc.live(), 0u);  // last task gone: executor and blocks too
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

// While the executor runs, tasks whose last reference another thread drops
// give their slots back for later spawns.
TEST(TaskMemory, RemoteFreesAreReusedBySpawns) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = Create(CX_TASK_MEMORY_BLOCKS);
  int n = 0;
  Tiny t = {&n};
  std::vector<cx_join_handle *> hs(500);
  for (auto &h : hs) ASSERT_EQ(cx_spawn(ex, &kTinyVt, &t, &h), CX_OK);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  std::thread other([&] {
    for (auto h : hs) cx_join_handle_detach(h);  // the last references
  });
  other.join();
  size_t before = alloc.allocs();
  for (auto &h : hs)  // with handles again: the same slot size
    ASSERT_EQ(cx_spawn(ex, &kTinyVt, &t, &h), CX_OK);
  EXPECT_EQ(alloc.allocs() - before, 0u);
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(n, 1000);
  for (auto h : hs) cx_join_handle_detach(h);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
}

// Spawners (other threads) allocate each task on its own, and the executor
// frees it correctly whichever thread drops it.
TEST(TaskMemory, SpawnerTasksAreSeparateAllocations) {
  ScopedCountingAllocator alloc;
  cx_executor *ex = Create(CX_TASK_MEMORY_BLOCKS);
  cx_spawner *sp;
  ASSERT_EQ(cx_executor_spawner(ex, &sp), CX_OK);
  int n = 0;
  Tiny t = {&n};
  std::thread other([&] {
    for (int i = 0; i < 50; i++)
      EXPECT_EQ(cx_spawner_spawn(sp, &kTinyVt, &t, nullptr), CX_OK);
    cx_spawner_drop(sp);
  });
  other.join();
  EXPECT_EQ(cx_executor_run(ex), CX_OK);
  EXPECT_EQ(n, 50);
  EXPECT_EQ(cx_executor_destroy(ex), CX_OK);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

}  // namespace
