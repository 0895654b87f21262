// waker/: poll values, the waker operations and their ownership rules, the
// future vtable check, error names and messages, and the allocator hooks.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <string>

#include "tests/testutil.h"
#include "waker/alloc.h"
#include "waker/error.h"
#include "waker/waker.h"

namespace {

using cxtest::CountingWaker;

// ---- cx_poll -------------------------------------------------------------

TEST(Poll, ValuesAreFixed) {
  // Futures written elsewhere may return 0/1 or test truthiness of READY.
  EXPECT_EQ(CX_PENDING, 0);
  EXPECT_EQ(CX_READY, 1);
}

// ---- a counted, reference-counted waker -----------------------------------

TEST(Waker, CloneMakesASecondOwner) {
  CountingWaker target;
  cx_waker w = target.Make();
  cx_waker c = {nullptr, nullptr};
  ASSERT_EQ(cx_waker_clone(&w, &c), CX_OK);
  EXPECT_EQ(c.vtable, &CountingWaker::kVtable);
  EXPECT_EQ(c.data, &target);
  EXPECT_EQ(target.clones(), 1);
  EXPECT_EQ(target.refs(), 2);
  cx_waker_drop(&c);
  cx_waker_drop(&w);
  EXPECT_EQ(target.drops(), 2);
  EXPECT_EQ(target.refs(), 0);
}

TEST(Waker, WakeConsumesAndEmpties) {
  CountingWaker target;
  cx_waker w = target.Make();
  cx_waker_wake(&w);
  EXPECT_TRUE(cx_waker_is_empty(&w));
  EXPECT_EQ(target.wakes(), 1);
  EXPECT_EQ(target.wake_by_refs(), 0);
  EXPECT_EQ(target.drops(), 0);
  EXPECT_EQ(target.refs(), 0);
  // The value is empty now: waking it again must not reach the target.
  cx_waker_wake(&w);
  EXPECT_EQ(target.wakes(), 1);
}

TEST(Waker, WakeByRefKeepsTheReference) {
  CountingWaker target;
  cx_waker w = target.Make();
  cx_waker_wake_by_ref(&w);
  cx_waker_wake_by_ref(&w);
  EXPECT_FALSE(cx_waker_is_empty(&w));
  EXPECT_EQ(target.wake_by_refs(), 2);
  EXPECT_EQ(target.wakes(), 0);
  EXPECT_EQ(target.refs(), 1);
  cx_waker_drop(&w);
  EXPECT_TRUE(cx_waker_is_empty(&w));
  EXPECT_EQ(target.drops(), 1);
  EXPECT_EQ(target.refs(), 0);
  cx_waker_drop(&w);  // empty now: no second drop
  EXPECT_EQ(target.drops(), 1);
}

TEST(Waker, EmptyWakerOperationsAreNoOps) {
  cx_waker e = CX_WAKER_EMPTY;
  EXPECT_TRUE(cx_waker_is_empty(&e));
  EXPECT_TRUE(cx_waker_is_empty(nullptr));
  cx_waker c = {&CountingWaker::kVtable, &e};  // garbage to be overwritten
  EXPECT_EQ(cx_waker_clone(&e, &c), CX_OK);
  EXPECT_TRUE(cx_waker_is_empty(&c));
  cx_waker_wake(&e);
  cx_waker_wake_by_ref(&e);
  cx_waker_drop(&e);
  EXPECT_TRUE(cx_waker_is_empty(&e));
}

TEST(Waker, NullArguments) {
  CountingWaker target;
  cx_waker out = target.Borrowed();
  // A NULL source is an error, and out is still emptied.
  EXPECT_EQ(cx_waker_clone(nullptr, &out), CX_EINVAL);
  EXPECT_TRUE(cx_waker_is_empty(&out));
  cx_waker w = target.Make();
  EXPECT_EQ(cx_waker_clone(&w, nullptr), CX_EINVAL);
  EXPECT_EQ(target.clones(), 0);
  // The void operations accept NULL.
  cx_waker_wake(nullptr);
  cx_waker_wake_by_ref(nullptr);
  cx_waker_drop(nullptr);
  EXPECT_EQ(cx_waker_store(nullptr, &w), CX_EINVAL);
  cx_waker slot = CX_WAKER_EMPTY;
  EXPECT_EQ(cx_waker_store(&slot, nullptr), CX_EINVAL);
  EXPECT_TRUE(cx_waker_is_empty(&slot));
  EXPECT_EQ(target.woken(), 0);
  EXPECT_EQ(target.clones(), 0);
  cx_waker_drop(&w);
  EXPECT_EQ(target.refs(), 0);
}

TEST(Waker, CloneRefusalLeavesOutEmpty) {
  CountingWaker target;
  cx_waker w = target.Make();
  target.set_clone_error(CX_EOVERFLOW);
  cx_waker out = target.Borrowed();
  EXPECT_EQ(cx_waker_clone(&w, &out), CX_EOVERFLOW);
  EXPECT_TRUE(cx_waker_is_empty(&out));
  EXPECT_EQ(target.refs(), 1);
  cx_waker_drop(&w);
}

TEST(Waker, WillWake) {
  CountingWaker a, b;
  cx_waker wa = a.Borrowed(), wa2 = a.Borrowed(), wb = b.Borrowed();
  cx_waker e1 = CX_WAKER_EMPTY, e2 = CX_WAKER_EMPTY;
  EXPECT_TRUE(cx_waker_will_wake(&wa, &wa2));
  EXPECT_FALSE(cx_waker_will_wake(&wa, &wb));
  EXPECT_TRUE(cx_waker_will_wake(&e1, &e2));
  EXPECT_FALSE(cx_waker_will_wake(&wa, &e1));
  EXPECT_FALSE(cx_waker_will_wake(&e1, &wa));
  EXPECT_FALSE(cx_waker_will_wake(&wa, nullptr));
  EXPECT_FALSE(cx_waker_will_wake(nullptr, &wa));
  EXPECT_FALSE(cx_waker_will_wake(nullptr, nullptr));
  // Same data, different vtable: a different waker.
  cx_waker noop_at_a = {cx_waker_noop().vtable, &a};
  EXPECT_FALSE(cx_waker_will_wake(&wa, &noop_at_a));
  // An empty waker is empty whatever its data field holds (the header: a
  // waker is empty when its vtable is NULL, and two empty wakers are equal).
  cx_waker e_with_data = {nullptr, &a};
  EXPECT_TRUE(cx_waker_will_wake(&e1, &e_with_data));
}

// ---- cx_waker_store --------------------------------------------------------

TEST(WakerStore, StoresIntoEmptySlot) {
  CountingWaker a;
  cx_waker slot = CX_WAKER_EMPTY;
  cx_waker wa = a.Borrowed();
  ASSERT_EQ(cx_waker_store(&slot, &wa), CX_OK);
  EXPECT_TRUE(cx_waker_will_wake(&slot, &wa));
  EXPECT_EQ(a.clones(), 1);
  EXPECT_EQ(a.refs(), 1);
  cx_waker_drop(&slot);
  EXPECT_EQ(a.refs(), 0);
}

TEST(WakerStore, SameTargetIsNotReplaced) {
  CountingWaker a;
  cx_waker slot = a.Make();
  cx_waker wa = a.Borrowed();
  ASSERT_EQ(cx_waker_store(&slot, &wa), CX_OK);
  // Nothing cloned nor dropped: the slot already wakes the same target.
  EXPECT_EQ(a.clones(), 0);
  EXPECT_EQ(a.drops(), 0);
  EXPECT_EQ(a.refs(), 1);
  cx_waker_drop(&slot);
}

TEST(WakerStore, DifferentTargetReplaces) {
  CountingWaker a, b;
  cx_waker slot = a.Make();
  cx_waker wb = b.Borrowed();
  ASSERT_EQ(cx_waker_store(&slot, &wb), CX_OK);
  EXPECT_TRUE(cx_waker_will_wake(&slot, &wb));
  EXPECT_EQ(a.drops(), 1);  // the old waker was released
  EXPECT_EQ(a.refs(), 0);
  EXPECT_EQ(b.clones(), 1);
  EXPECT_EQ(b.refs(), 1);
  cx_waker_drop(&slot);
  EXPECT_EQ(b.refs(), 0);
}

TEST(WakerStore, StoringEmptyClearsTheSlot) {
  CountingWaker a;
  cx_waker slot = a.Make();
  cx_waker e = CX_WAKER_EMPTY;
  ASSERT_EQ(cx_waker_store(&slot, &e), CX_OK);
  EXPECT_TRUE(cx_waker_is_empty(&slot));
  EXPECT_EQ(a.refs(), 0);
}

TEST(WakerStore, CloneFailureLeavesSlotUnchanged) {
  CountingWaker a, b;
  cx_waker slot = a.Make();
  b.set_clone_error(CX_EOVERFLOW);
  cx_waker wb = b.Borrowed();
  EXPECT_EQ(cx_waker_store(&slot, &wb), CX_EOVERFLOW);
  EXPECT_EQ(slot.vtable, &CountingWaker::kVtable);
  EXPECT_EQ(slot.data, &a);
  EXPECT_EQ(a.drops(), 0);
  EXPECT_EQ(a.refs(), 1);
  EXPECT_EQ(b.refs(), 0);
  cx_waker_drop(&slot);
}

// ---- broken waker vtables ---------------------------------------------------

// A waker vtable missing one function is refused where wakers enter cexec
// (clone, store) and skipped where a hand-made one is used directly.

cx_waker_vtable Without(int which) {
  cx_waker_vtable vt = CountingWaker::kVtable;
  if (which == 0) vt.clone = nullptr;
  if (which == 1) vt.wake = nullptr;
  if (which == 2) vt.wake_by_ref = nullptr;
  if (which == 3) vt.drop = nullptr;
  return vt;
}

TEST(WakerVtable, CheckNamesEveryFunction) {
  EXPECT_EQ(cx_waker_vtable_check(&CountingWaker::kVtable), CX_OK);
  EXPECT_EQ(cx_waker_vtable_check(nullptr), CX_EINVAL);
  for (int which = 0; which < 4; which++) {
    cx_waker_vtable vt = Without(which);
    EXPECT_EQ(cx_waker_vtable_check(&vt), CX_EINVAL) << which;
  }
}

TEST(WakerVtable, CloneAndStoreRefuseABrokenVtable) {
  for (int which = 0; which < 4; which++) {
    CountingWaker target;
    cx_waker_vtable vt = Without(which);
    cx_waker broken = {&vt, &target};  // owns nothing: never dropped
    cx_waker out = target.Borrowed();
    EXPECT_EQ(cx_waker_clone(&broken, &out), CX_EINVAL) << which;
    EXPECT_TRUE(cx_waker_is_empty(&out));
    cx_waker slot = CX_WAKER_EMPTY;
    EXPECT_EQ(cx_waker_store(&slot, &broken), CX_EINVAL) << which;
    EXPECT_TRUE(cx_waker_is_empty(&slot));
    // Even when the slot already holds that very waker (will_wake is true).
    cx_waker same = broken;
    EXPECT_EQ(cx_waker_store(&same, &broken), CX_EINVAL) << which;
    EXPECT_EQ(target.clones(), 0) << which;
    EXPECT_EQ(target.refs(), 0) << which;
  }
}

TEST(WakerVtable, MissingFunctionsAreSkippedNotCalled) {
  CountingWaker target;
  cx_waker_vtable none = {.clone = nullptr,
                          .wake = nullptr,
                          .wake_by_ref = nullptr,
                          .drop = nullptr};
  cx_waker w = {&none, &target};
  cx_waker_wake_by_ref(&w);
  EXPECT_FALSE(cx_waker_is_empty(&w));
  cx_waker_wake(&w);
  EXPECT_TRUE(cx_waker_is_empty(&w));  // consumed all the same
  w = {&none, &target};
  cx_waker_drop(&w);
  EXPECT_TRUE(cx_waker_is_empty(&w));
  EXPECT_EQ(target.woken(), 0);
  EXPECT_EQ(target.drops(), 0);
}

// A clone function that hands back a waker with a broken vtable.
const cx_waker_vtable kNoWake = {
    .clone = nullptr, .wake = nullptr, .wake_by_ref = nullptr, .drop = nullptr};
int CloneToBroken(const void *data, cx_waker *out) {
  out->vtable = &kNoWake;
  out->data = data;
  return CX_OK;
}
void Nothing(const void *) {}

TEST(WakerVtable, CloneThatProducesABrokenWakerIsRefused) {
  const cx_waker_vtable liar = {.clone = CloneToBroken,
                                .wake = Nothing,
                                .wake_by_ref = Nothing,
                                .drop = Nothing};
  int target = 0;
  cx_waker w = {&liar, &target};
  cx_waker out;
  EXPECT_EQ(cx_waker_clone(&w, &out), CX_EINVAL);
  EXPECT_TRUE(cx_waker_is_empty(&out));
}

// ---- NULL arguments: the whole surface of waker.h, alloc.h, error.h ---------

TEST(WakerNull, EveryFunctionAcceptsNull) {
  CountingWaker target;
  cx_waker w = target.Make();
  cx_waker out = target.Borrowed();
  EXPECT_TRUE(cx_waker_is_empty(nullptr));
  EXPECT_EQ(cx_waker_vtable_check(nullptr), CX_EINVAL);
  EXPECT_EQ(cx_waker_clone(nullptr, &out), CX_EINVAL);
  EXPECT_TRUE(cx_waker_is_empty(&out));
  EXPECT_EQ(cx_waker_clone(&w, nullptr), CX_EINVAL);
  cx_waker_wake(nullptr);
  cx_waker_wake_by_ref(nullptr);
  cx_waker_drop(nullptr);
  EXPECT_FALSE(cx_waker_will_wake(nullptr, &w));
  EXPECT_FALSE(cx_waker_will_wake(&w, nullptr));
  EXPECT_FALSE(cx_waker_will_wake(nullptr, nullptr));
  cx_waker slot = CX_WAKER_EMPTY;
  EXPECT_EQ(cx_waker_store(nullptr, &w), CX_EINVAL);
  EXPECT_EQ(cx_waker_store(&slot, nullptr), CX_EINVAL);
  EXPECT_TRUE(cx_waker_is_empty(&slot));
  cx_context cx = cx_context_from_waker(nullptr);
  EXPECT_EQ(cx.waker, nullptr);
  EXPECT_EQ(cx_future_vtable_check(nullptr), CX_EINVAL);
  EXPECT_EQ(target.clones(), 0);
  EXPECT_EQ(target.woken(), 0);
  cx_waker_drop(&w);
  EXPECT_EQ(target.refs(), 0);
  // alloc.h: NULL restores the default allocator; freeing NULL is a no-op.
  EXPECT_EQ(cx_set_allocator(nullptr), CX_OK);
  cx_free(nullptr, 8, 8);
  // error.h takes no pointer; every int has a message and a name.
  EXPECT_NE(cx_strerror(12345), nullptr);
  EXPECT_NE(cx_err_name(12345), nullptr);
}

// ---- the noop waker --------------------------------------------------------

TEST(NoopWaker, EveryOperationIsHarmless) {
  cx_waker n = cx_waker_noop();
  EXPECT_FALSE(cx_waker_is_empty(&n));
  cx_waker c;
  ASSERT_EQ(cx_waker_clone(&n, &c), CX_OK);
  EXPECT_TRUE(cx_waker_will_wake(&n, &c));
  cx_waker_wake_by_ref(&c);
  cx_waker_wake(&c);
  EXPECT_TRUE(cx_waker_is_empty(&c));
  cx_waker n2 = cx_waker_noop();
  EXPECT_TRUE(cx_waker_will_wake(&n, &n2));
  cx_waker_drop(&n);
  EXPECT_TRUE(cx_waker_is_empty(&n));
  // A context over it polls a future by hand.
  cx_context cx = cx_context_from_waker(&n2);
  EXPECT_EQ(cx.waker, &n2);
  EXPECT_EQ(cx.executor, nullptr);
  EXPECT_EQ(cx.timers, nullptr);
}

// ---- cx_future_vtable_check ------------------------------------------------

cx_poll ReadyPoll(void *, cx_context *, void *) {
  return CX_READY;
}

TEST(FutureVtable, AcceptsValid) {
  cx_future_vtable vt = {
      .poll = ReadyPoll, .state_size = 0, .state_align = 0, .output_size = 0};
  EXPECT_EQ(cx_future_vtable_check(&vt), CX_OK);
  for (size_t align : {1, 2, 4, 8, 16, 32, 64}) {
    vt.state_align = align;
    EXPECT_EQ(cx_future_vtable_check(&vt), CX_OK) << align;
  }
  vt.state_size = 0x3fffffff;  // the largest size a task records (1 GiB - 1)
  vt.output_size = 0x3fffffff;
  EXPECT_EQ(cx_future_vtable_check(&vt), CX_OK);
}

TEST(FutureVtable, RejectsBadInputs) {
  EXPECT_EQ(cx_future_vtable_check(nullptr), CX_EINVAL);
  cx_future_vtable no_poll = {
      .poll = nullptr, .state_size = 8, .state_align = 8, .output_size = 8};
  EXPECT_EQ(cx_future_vtable_check(&no_poll), CX_EINVAL);
  for (size_t align : {3, 6, 12, 48, 128, 256}) {
    cx_future_vtable vt = {.poll = ReadyPoll,
                           .state_size = 8,
                           .state_align = align,
                           .output_size = 0};
    EXPECT_EQ(cx_future_vtable_check(&vt), CX_EINVAL) << align;
  }
  cx_future_vtable big_state = {.poll = ReadyPoll,
                                .state_size = 0x40000000u,
                                .state_align = 0,
                                .output_size = 0};
  EXPECT_EQ(cx_future_vtable_check(&big_state), CX_EINVAL);
  cx_future_vtable big_output = {.poll = ReadyPoll,
                                 .state_size = 0,
                                 .state_align = 0,
                                 .output_size = 0x40000000u};
  EXPECT_EQ(cx_future_vtable_check(&big_output), CX_EINVAL);
}

// ---- CX_FUTURE_TRAMPOLINES / CX_FUTURE_VTABLE_INIT --------------------------

struct alignas(32) demo_fut {
  int polls;
  int drops;
};
cx_poll demo_fut_poll(demo_fut *self, cx_context *cx, int64_t *out) {
  self->polls++;
  if (cx == nullptr) return CX_PENDING;
  *out = 7;
  return CX_READY;
}
void demo_fut_drop(demo_fut *self) {
  self->drops++;
}
CX_FUTURE_TRAMPOLINES(demo_fut, demo_fut, int64_t)
const cx_future_vtable demo_fut_vtable =
    CX_FUTURE_VTABLE_INIT(demo_fut, demo_fut, int64_t);

struct demo_unit {
  int polls;
  int drops;
};
cx_poll demo_unit_poll(demo_unit *self, cx_context *) {
  self->polls++;
  return CX_READY;
}
void demo_unit_drop(demo_unit *self) {
  self->drops++;
}
CX_FUTURE_TRAMPOLINES_NO_OUTPUT(demo_unit, demo_unit)
const cx_future_vtable demo_unit_vtable =
    CX_FUTURE_VTABLE_INIT_NO_OUTPUT(demo_unit, demo_unit);

TEST(FutureMacros, VtableFieldsComeFromTheTypes) {
  EXPECT_EQ(cx_future_vtable_check(&demo_fut_vtable), CX_OK);
  EXPECT_EQ(demo_fut_vtable.state_size, sizeof(demo_fut));
  EXPECT_EQ(demo_fut_vtable.state_align, 32u);
  EXPECT_EQ(demo_fut_vtable.output_size, sizeof(int64_t));
  EXPECT_EQ(demo_fut_vtable.output_align, alignof(int64_t));
  EXPECT_EQ(demo_fut_vtable.drop_output, nullptr);
  EXPECT_EQ(cx_future_vtable_check(&demo_unit_vtable), CX_OK);
  EXPECT_EQ(demo_unit_vtable.state_size, sizeof(demo_unit));
  EXPECT_EQ(demo_unit_vtable.output_size, 0u);
}

TEST(FutureMacros, TrampolinesCallPollAndDrop) {
  cx_waker n = cx_waker_noop();
  cx_context cx = cx_context_from_waker(&n);
  demo_fut f{};
  int64_t out = 0;
  EXPECT_EQ(demo_fut_vtable.poll(&f, &cx, &out), CX_READY);
  EXPECT_EQ(out, 7);
  EXPECT_EQ(demo_fut_vtable.poll(&f, nullptr, &out), CX_PENDING);
  demo_fut_vtable.drop(&f);
  EXPECT_EQ(f.polls, 2);
  EXPECT_EQ(f.drops, 1);
  demo_unit u{};
  EXPECT_EQ(demo_unit_vtable.poll(&u, &cx, nullptr), CX_READY);
  demo_unit_vtable.drop(&u);
  EXPECT_EQ(u.polls, 1);
  EXPECT_EQ(u.drops, 1);
}

// ---- errors ----------------------------------------------------------------

TEST(Errors, EveryCodeHasNameAndMessage) {
  struct Row {
    int code;
    const char *name, *msg;
  };
  const Row rows[] = {
#define ROW(name, value, msg) {CX_##name, #name, msg},
      CX_ERRNO_MAP(ROW)
#undef ROW
  };
  std::set<int> codes;
  std::set<std::string> messages;
  for (const Row &r : rows) {
    EXPECT_LT(r.code, 0) << r.name;
    EXPECT_STREQ(cx_err_name(r.code), r.name);
    EXPECT_STREQ(cx_strerror(r.code), r.msg);
    EXPECT_STRNE(cx_strerror(r.code), "unknown error") << r.name;
    codes.insert(r.code);
    messages.insert(r.msg);
  }
  // No two errors share a value or a message.
  EXPECT_EQ(codes.size(), sizeof rows / sizeof rows[0]);
  EXPECT_EQ(messages.size(), sizeof rows / sizeof rows[0]);
  EXPECT_STREQ(cx_err_name(CX_OK), "OK");
  EXPECT_STREQ(cx_strerror(CX_OK), "success");
}

TEST(Errors, ValuesAreNegatedErrno) {
  // Documented: the values equal the negated Linux errno.
  EXPECT_EQ(CX_EINVAL, -22);
  EXPECT_EQ(CX_ENOMEM, -12);
  EXPECT_EQ(CX_EAGAIN, -11);
  EXPECT_EQ(CX_EPIPE, -32);
  EXPECT_EQ(CX_ECANCELED, -125);
}

TEST(Errors, UnknownCodes) {
  for (int code : {1, -9998, -9999, 22, INT32_MIN}) {
    EXPECT_STREQ(cx_strerror(code), "unknown error") << code;
    EXPECT_STREQ(cx_err_name(code), "UNKNOWN") << code;
  }
}

// ---- the allocator
// -----------------------------------------------------------

void *NullAlloc(void *, size_t, size_t) {
  return nullptr;
}
void NullFree(void *, void *, size_t, size_t) {}

TEST(Allocator, HalfFilledAllocatorIsRejected) {
  cx_allocator before = cx_get_allocator();
  cx_allocator no_free = {NullAlloc, nullptr, nullptr};
  cx_allocator no_alloc = {nullptr, NullFree, nullptr};
  EXPECT_EQ(cx_set_allocator(&no_free), CX_EINVAL);
  EXPECT_EQ(cx_set_allocator(&no_alloc), CX_EINVAL);
  // The allocator in force is unchanged.
  cx_allocator after = cx_get_allocator();
  EXPECT_EQ(after.alloc, before.alloc);
  EXPECT_EQ(after.free, before.free);
  EXPECT_EQ(after.ctx, before.ctx);
  void *p = cx_alloc(16, 8);
  EXPECT_NE(p, nullptr);
  cx_free(p, 16, 8);
}

TEST(Allocator, InstallAndRestore) {
  cx_allocator def = cx_get_allocator();
  {
    cxtest::ScopedCountingAllocator alloc;
    EXPECT_EQ(cx_get_allocator().ctx, &alloc);
    EXPECT_NE(cx_get_allocator().alloc, def.alloc);
  }
  EXPECT_EQ(cx_get_allocator().alloc, def.alloc);
  EXPECT_EQ(cx_get_allocator().free, def.free);
  // NULL restores the default from any allocator.
  cx_allocator nulls = {NullAlloc, NullFree, nullptr};
  ASSERT_EQ(cx_set_allocator(&nulls), CX_OK);
  EXPECT_EQ(cx_alloc(8, 8), nullptr);
  ASSERT_EQ(cx_set_allocator(nullptr), CX_OK);
  EXPECT_EQ(cx_get_allocator().alloc, def.alloc);
}

TEST(Allocator, BadSizeOrAlignIsRefusedWithoutCallingTheAllocator) {
  cxtest::ScopedCountingAllocator alloc;
  EXPECT_EQ(cx_alloc(0, 8), nullptr);
  for (size_t align : {0, 3, 12, 128, 4096}) {
    EXPECT_EQ(cx_alloc(16, align), nullptr) << align;
  }
  EXPECT_EQ(alloc.attempts(), 0u);
  cx_free(nullptr, 16, 8);  // a no-op
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

TEST(Allocator, AlignmentsUpTo64AreHonoured) {
  cxtest::ScopedCountingAllocator alloc;
  for (size_t align = 1; align <= 64; align *= 2) {
    void *p = cx_alloc(24, align);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % align, 0u);
    std::memset(p, 0xab, 24);
    cx_free(p, 24, align);
  }
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

TEST(Allocator, DefaultAllocatorHonoursLargeAlignments) {
  // The default path uses aligned_alloc beyond max_align_t and must round
  // the size up to a multiple of the alignment itself.
  for (size_t size : {1, 63, 64, 65, 1000}) {
    void *p = cx_alloc(size, 64);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
    std::memset(p, 0xcd, size);
    cx_free(p, size, 64);
  }
}

// The test helper itself: its failure plans are what other suites rely on.
TEST(CountingAllocator, FailurePlans) {
  cxtest::ScopedCountingAllocator alloc;
  alloc.FailAt(2);
  void *a = cx_alloc(8, 8);
  void *b = cx_alloc(8, 8);
  void *c = cx_alloc(8, 8);
  EXPECT_NE(a, nullptr);
  EXPECT_EQ(b, nullptr);
  EXPECT_NE(c, nullptr);
  EXPECT_EQ(alloc.live(), 2u);
  EXPECT_EQ(alloc.live_bytes(), 16u);
  alloc.FailAfter(1);
  void *d = cx_alloc(8, 8);
  EXPECT_NE(d, nullptr);
  EXPECT_EQ(cx_alloc(8, 8), nullptr);
  EXPECT_EQ(cx_alloc(8, 8), nullptr);
  alloc.FailNever();
  void *e = cx_alloc(8, 8);
  EXPECT_NE(e, nullptr);
  EXPECT_EQ(alloc.attempts(), 7u);
  EXPECT_EQ(alloc.failures(), 3u);
  EXPECT_EQ(alloc.allocs(), 4u);
  cx_free(a, 8, 8);
  cx_free(c, 8, 8);
  cx_free(d, 8, 8);
  cx_free(e, 16, 8);  // wrong size: reported, still freed
  EXPECT_EQ(alloc.bad_frees(), 1u);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.live_bytes(), 0u);
}

}  // namespace
