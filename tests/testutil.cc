#include "tests/testutil.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "executor/executor.h"
#include "waker/error.h"

namespace cxtest {

namespace {
// The allocator is process-wide, so two live guards would silently steal
// each other's blocks: refuse loudly instead.
std::atomic<bool> g_installed{false};
}  // namespace

ScopedCountingAllocator::ScopedCountingAllocator() {
  if (g_installed.exchange(true)) {
    std::fprintf(stderr, "ScopedCountingAllocator: one is already installed\n");
    std::abort();
  }
  cx_allocator a = {&ScopedCountingAllocator::Alloc,
                    &ScopedCountingAllocator::Free, this};
  if (cx_set_allocator(&a) != CX_OK) std::abort();
}

ScopedCountingAllocator::~ScopedCountingAllocator() {
  cx_set_allocator(nullptr);
  g_installed.store(false);
}

size_t ScopedCountingAllocator::live() const {
  std::lock_guard<std::mutex> lock(mu_);
  return blocks_.size();
}
size_t ScopedCountingAllocator::live_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return live_bytes_;
}
size_t ScopedCountingAllocator::allocs() const {
  std::lock_guard<std::mutex> lock(mu_);
  return allocs_;
}
size_t ScopedCountingAllocator::attempts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return attempts_;
}
size_t ScopedCountingAllocator::failures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return failures_;
}
size_t ScopedCountingAllocator::bad_frees() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bad_frees_;
}

void ScopedCountingAllocator::FailAt(size_t k) {
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = Plan::kAt;
  plan_k_ = k;
  since_plan_ = 0;
}
void ScopedCountingAllocator::FailAfter(size_t k) {
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = Plan::kAfter;
  plan_k_ = k;
  since_plan_ = 0;
}
void ScopedCountingAllocator::FailNever() {
  std::lock_guard<std::mutex> lock(mu_);
  plan_ = Plan::kNever;
}

bool ScopedCountingAllocator::ShouldFail() {
  size_t n = ++since_plan_;  // this attempt's number under the plan
  switch (plan_) {
    case Plan::kNever:
      return false;
    case Plan::kAt:
      return n == plan_k_;
    case Plan::kAfter:
      return n > plan_k_;
  }
  return false;
}

void *ScopedCountingAllocator::Alloc(void *ctx, size_t size, size_t align) {
  auto *self = static_cast<ScopedCountingAllocator *>(ctx);
  std::lock_guard<std::mutex> lock(self->mu_);
  self->attempts_++;
  if (self->ShouldFail()) {
    self->failures_++;
    return nullptr;
  }
  // aligned_alloc wants a size that is a multiple of the alignment.
  size_t a =
      align < alignof(std::max_align_t) ? alignof(std::max_align_t) : align;
  void *p = std::aligned_alloc(a, (size + a - 1) / a * a);
  if (p == nullptr) return nullptr;
  self->blocks_[p] = Block{size, align};
  self->live_bytes_ += size;
  self->allocs_++;
  return p;
}

void ScopedCountingAllocator::Free(void *ctx, void *ptr, size_t size,
                                   size_t align) {
  auto *self = static_cast<ScopedCountingAllocator *>(ctx);
  std::lock_guard<std::mutex> lock(self->mu_);
  auto it = self->blocks_.find(ptr);
  if (it == self->blocks_.end()) {
    // Not ours (or freed twice): do not touch it.
    self->bad_frees_++;
    return;
  }
  if (it->second.size != size || it->second.align != align) self->bad_frees_++;
  self->live_bytes_ -= it->second.size;
  self->blocks_.erase(it);
  std::free(ptr);
}

uint64_t ManualClock::Read(void *ctx) {
  return static_cast<ManualClock *>(ctx)->now_.load();
}

const cx_waker_vtable CountingWaker::kVtable = {
    &CountingWaker::Clone, &CountingWaker::Wake, &CountingWaker::WakeByRef,
    &CountingWaker::Drop};

cx_waker CountingWaker::Make() {
  refs_++;
  return cx_waker{&kVtable, this};
}

cx_waker CountingWaker::Borrowed() const {
  return cx_waker{&kVtable, this};
}

int CountingWaker::Clone(const void *data, cx_waker *out) {
  auto *self = static_cast<CountingWaker *>(const_cast<void *>(data));
  int rc = self->clone_error_.load();
  if (rc != 0) {
    *out = CX_WAKER_EMPTY;
    return rc;
  }
  self->clones_++;
  self->refs_++;
  *out = cx_waker{&kVtable, self};
  return CX_OK;
}

void CountingWaker::Wake(const void *data) {
  auto *self = static_cast<CountingWaker *>(const_cast<void *>(data));
  self->wakes_++;
  if (self->log_) self->log_->push_back(self->id_);
  self->refs_--;
}

void CountingWaker::WakeByRef(const void *data) {
  auto *self = static_cast<CountingWaker *>(const_cast<void *>(data));
  self->wake_by_refs_++;
  if (self->log_) self->log_->push_back(self->id_);
}

void CountingWaker::Drop(const void *data) {
  auto *self = static_cast<CountingWaker *>(const_cast<void *>(data));
  self->drops_++;
  self->refs_--;
}

// ---- shared test futures ----

static cx_poll CountdownPoll(void *self, cx_context *cx, void *out) {
  auto *c = static_cast<Countdown *>(self);
  if (c->stats) c->stats->polls++;
  if (c->remaining <= 0) {
    *static_cast<int *>(out) = c->value;
    return CX_READY;
  }
  c->remaining--;
  cx_waker_wake_by_ref(cx->waker);
  return CX_PENDING;
}
static void CountdownDrop(void *self) {
  auto *c = static_cast<Countdown *>(self);
  if (c->stats) c->stats->drops++;
}
const cx_future_vtable kCountdownVt = {.poll = CountdownPoll,
                                       .drop = CountdownDrop,
                                       .state_size = sizeof(Countdown),
                                       .state_align = alignof(Countdown),
                                       .output_size = sizeof(int)};

static cx_poll NeverPoll(void *self, cx_context *cx, void *out) {
  (void)out;
  auto *n = static_cast<Never *>(self);
  if (n->stats) n->stats->polls++;
  cx_waker_store(&n->waker, cx->waker);
  return CX_PENDING;
}
static void NeverDrop(void *self) {
  auto *n = static_cast<Never *>(self);
  if (n->stats) n->stats->drops++;
  cx_waker_drop(&n->waker);
}
const cx_future_vtable kNeverVt = {.poll = NeverPoll,
                                   .drop = NeverDrop,
                                   .state_size = sizeof(Never),
                                   .state_align = alignof(Never),
                                   .output_size = sizeof(int)};

Watchdog::Watchdog(int seconds, const char *what) {
  thread_ = std::thread([this, seconds, what] {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::seconds(seconds),
                      [this] { return done_; })) {
      std::fprintf(stderr, "watchdog: still blocked after %d s: %s\n", seconds,
                   what);
      std::abort();
    }
  });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

static cx_poll CallInTaskPoll(void *self, cx_context *cx, void *out) {
  (void)cx;
  auto *c = static_cast<CallInTask *>(self);
  *static_cast<int *>(out) = c->fn(c->ctx);
  return CX_READY;
}

const cx_future_vtable kCallInTaskVt = {.poll = CallInTaskPoll,
                                        .drop = nullptr,
                                        .state_size = sizeof(CallInTask),
                                        .state_align = alignof(CallInTask),
                                        .output_size = sizeof(int)};

int RunInTask(int (*fn)(void *ctx), void *ctx, cx_executor *ex) {
  CallInTask call{fn, ctx};
  int rc = 1;
  int run = ex ? cx_executor_block_on(ex, &kCallInTaskVt, &call, &rc, sizeof rc)
               : cx_block_on(&kCallInTaskVt, &call, &rc, sizeof rc);
  EXPECT_EQ(run, CX_OK);
  return rc;
}

}  // namespace cxtest
