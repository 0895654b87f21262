// executor/channel: the bounded blocking MPSC channel. Order, capacity,
// disconnection from either side (including threads blocked at the time),
// item ownership, argument checks, allocation failure, and a multi-producer
// stress run.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "executor/channel.h"
#include "tests/testutil.h"
#include "waker/error.h"

namespace {

// Every test creates its channels under a counting allocator and checks that
// the channel's memory is gone once both sides are dropped.
class ChannelTest : public ::testing::Test {
 protected:
  void TearDown() override {
    EXPECT_EQ(alloc.live(), 0u);
    EXPECT_EQ(alloc.bad_frees(), 0u);
  }
  cxtest::ScopedCountingAllocator alloc;
};

// Gives a thread time to reach a blocking call. The tests stay correct if
// it has not got there yet (the call then does not block at all).
void LetItBlock() {
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

TEST_F(ChannelTest, FifoOrder) {
  cx_sender *tx;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(int), 4, nullptr, &tx, &rx), CX_OK);
  ASSERT_NE(tx, nullptr);
  ASSERT_NE(rx, nullptr);
  EXPECT_EQ(alloc.live(), 2u);  // the channel and its ring
  // Wrap around the ring several times.
  int next_in = 0, next_out = 0;
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < 3; i++, next_in++)
      ASSERT_EQ(cx_channel_send(tx, &next_in), CX_OK);
    EXPECT_EQ(cx_channel_len(rx), 3u);
    for (int i = 0; i < 3; i++) {
      int v = -1;
      ASSERT_EQ(cx_channel_recv(rx, &v), CX_OK);
      EXPECT_EQ(v, next_out++);
    }
  }
  EXPECT_EQ(cx_channel_len(rx), 0u);
  cx_sender_drop(tx);
  cx_receiver_drop(rx);
}

TEST_F(ChannelTest, ItemsAreCopiedByValue) {
  struct Item {
    uint64_t a;
    char text[20];
  };
  cx_sender *tx;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(Item), 2, nullptr, &tx, &rx), CX_OK);
  Item in = {0x1122334455667788u, "hello channel"};
  ASSERT_EQ(cx_channel_send(tx, &in), CX_OK);
  in.a = 0;  // the channel holds its own copy
  Item out = {};
  ASSERT_EQ(cx_channel_recv(rx, &out), CX_OK);
  EXPECT_EQ(out.a, 0x1122334455667788u);
  EXPECT_STREQ(out.text, "hello channel");
  cx_receiver_drop(rx);
  cx_sender_drop(tx);
}

TEST_F(ChannelTest, TrySendFailsWhenFull) {
  cx_sender *tx;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(int), 2, nullptr, &tx, &rx), CX_OK);
  int a = 1, b = 2, c = 3;
  EXPECT_EQ(cx_channel_try_send(tx, &a), CX_OK);
  EXPECT_EQ(cx_channel_try_send(tx, &b), CX_OK);
  EXPECT_EQ(cx_channel_try_send(tx, &c), CX_EAGAIN);
  EXPECT_EQ(cx_channel_len(rx), 2u);
  int v = 0;
  ASSERT_EQ(cx_channel_try_recv(rx, &v), CX_OK);
  EXPECT_EQ(v, 1);
  EXPECT_EQ(cx_channel_try_send(tx, &c), CX_OK);  // room again
  ASSERT_EQ(cx_channel_try_recv(rx, &v), CX_OK);
  EXPECT_EQ(v, 2);
  ASSERT_EQ(cx_channel_try_recv(rx, &v), CX_OK);
  EXPECT_EQ(v, 3);  // the refused item was never enqueued
  cx_sender_drop(tx);
  cx_receiver_drop(rx);
}

TEST_F(ChannelTest, TryRecvFailsWhenEmpty) {
  cx_sender *tx;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(int), 2, nullptr, &tx, &rx), CX_OK);
  int v = 42;
  EXPECT_EQ(cx_channel_try_recv(rx, &v), CX_EAGAIN);
  EXPECT_EQ(v, 42);  // untouched
  cx_sender_drop(tx);
  cx_receiver_drop(rx);
}

TEST_F(ChannelTest, BlockedSendResumesWhenRoomAppears) {
  cx_sender *tx;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(int), 1, nullptr, &tx, &rx), CX_OK);
  int first = 1, second = 2;
  ASSERT_EQ(cx_channel_send(tx, &first), CX_OK);
  std::atomic<int> rc{1};
  std::thread sender([&] { rc = cx_channel_send(tx, &second); });
  LetItBlock();
  EXPECT_EQ(rc, 1);  // still blocked: the channel is full
  int v = 0;
  ASSERT_EQ(cx_channel_recv(rx, &v), CX_OK);
  EXPECT_EQ(v, 1);
  sender.join();
  EXPECT_EQ(rc, CX_OK);
  ASSERT_EQ(cx_channel_recv(rx, &v), CX_OK);
  EXPECT_EQ(v, 2);
  cx_sender_drop(tx);
  cx_receiver_drop(rx);
}

// ---- disconnection -------------------------------------------------------

TEST_F(ChannelTest, RecvDrainsThenReportsDisconnect) {
  cx_sender *tx;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(int), 4, nullptr, &tx, &rx), CX_OK);
  for (int i = 0; i < 3; i++) ASSERT_EQ(cx_channel_send(tx, &i), CX_OK);
  cx_sender_drop(tx);
  EXPECT_EQ(alloc.live(), 2u);  // the receiver keeps the channel
  int v = -1;
  for (int i = 0; i < 3; i++) {
    ASSERT_EQ(cx_channel_recv(rx, &v), CX_OK);
    EXPECT_EQ(v, i);
  }
  EXPECT_EQ(cx_channel_recv(rx, &v), CX_EPIPE);
  EXPECT_EQ(cx_channel_try_recv(rx, &v), CX_EPIPE);  // not EAGAIN: no sender
  EXPECT_EQ(v, 2);
  cx_receiver_drop(rx);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST_F(ChannelTest, SendAfterReceiverDropIsBrokenPipe) {
  cx_sender *tx;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(int), 4, nullptr, &tx, &rx), CX_OK);
  cx_receiver_drop(rx);
  EXPECT_EQ(alloc.live(), 2u);  // the sender keeps the channel
  int v = 1;
  EXPECT_EQ(cx_channel_send(tx, &v), CX_EPIPE);
  EXPECT_EQ(cx_channel_try_send(tx, &v), CX_EPIPE);
  cx_sender_drop(tx);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST_F(ChannelTest, BlockedRecvIsReleasedByLastSenderDrop) {
  cx_sender *tx, *tx2;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(int), 4, nullptr, &tx, &rx), CX_OK);
  ASSERT_EQ(cx_sender_clone(tx, &tx2), CX_OK);
  std::atomic<int> rc{1};
  std::thread receiver([&] {
    int v;
    rc = cx_channel_recv(rx, &v);
  });
  LetItBlock();
  cx_sender_drop(tx);  // one sender left: recv keeps waiting
  LetItBlock();
  EXPECT_EQ(rc, 1);
  cx_sender_drop(tx2);  // the last one: recv must return
  receiver.join();
  EXPECT_EQ(rc, CX_EPIPE);
  cx_receiver_drop(rx);
}

TEST_F(ChannelTest, BlockedSendIsReleasedByReceiverDrop) {
  cx_sender *tx;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(int), 1, nullptr, &tx, &rx), CX_OK);
  int v = 1;
  ASSERT_EQ(cx_channel_send(tx, &v), CX_OK);  // full now
  std::atomic<int> rc{1};
  std::thread sender([&] {
    int w = 2;
    rc = cx_channel_send(tx, &w);
  });
  LetItBlock();
  EXPECT_EQ(rc, 1);
  cx_receiver_drop(rx);
  sender.join();
  EXPECT_EQ(rc, CX_EPIPE);
  cx_sender_drop(tx);
}

TEST_F(ChannelTest, SenderClonesKeepTheChannelConnected) {
  cx_sender *tx;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(int), 8, nullptr, &tx, &rx), CX_OK);
  std::vector<cx_sender *> clones;
  for (int i = 0; i < 3; i++) {
    cx_sender *c = nullptr;
    ASSERT_EQ(cx_sender_clone(tx, &c), CX_OK);
    ASSERT_NE(c, nullptr);
    clones.push_back(c);
  }
  EXPECT_EQ(alloc.live(), 2u);  // cloning allocates nothing
  cx_sender_drop(tx);
  int v = 0;
  // While any clone is alive an empty channel is "try again", not
  // disconnected; every clone sends into the same channel.
  for (size_t i = 0; i < clones.size(); i++) {
    EXPECT_EQ(cx_channel_try_recv(rx, &v), CX_EAGAIN) << i;
    int item = static_cast<int>(i);
    ASSERT_EQ(cx_channel_send(clones[i], &item), CX_OK);
    cx_sender_drop(clones[i]);
    ASSERT_EQ(cx_channel_try_recv(rx, &v), CX_OK);
    EXPECT_EQ(v, item);
  }
  EXPECT_EQ(cx_channel_try_recv(rx, &v), CX_EPIPE);
  cx_receiver_drop(rx);
}

// ---- item ownership
// ----------------------------------------------------------

std::atomic<int> g_dropped_sum{0}, g_dropped_count{0};
void DropItem(void *item) {
  g_dropped_count++;
  g_dropped_sum += *static_cast<int *>(item);
}

TEST_F(ChannelTest, LeftoverItemsAreDroppedOnceWhenReceiverGoesFirst) {
  g_dropped_sum = g_dropped_count = 0;
  cx_sender *tx;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(int), 4, DropItem, &tx, &rx), CX_OK);
  for (int i = 1; i <= 4; i++) ASSERT_EQ(cx_channel_send(tx, &i), CX_OK);
  int v;
  ASSERT_EQ(cx_channel_recv(rx, &v), CX_OK);  // 1 is taken: not dropped
  cx_receiver_drop(rx);
  EXPECT_EQ(g_dropped_count, 3);
  EXPECT_EQ(g_dropped_sum, 2 + 3 + 4);
  cx_sender_drop(tx);  // frees the channel: nothing dropped twice
  EXPECT_EQ(g_dropped_count, 3);
}

TEST_F(ChannelTest, LeftoverItemsAreDroppedOnceWhenSendersGoFirst) {
  g_dropped_sum = g_dropped_count = 0;
  cx_sender *tx;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(int), 3, DropItem, &tx, &rx), CX_OK);
  // Wrap the ring so that the leftovers straddle its end.
  for (int i = 1; i <= 3; i++) ASSERT_EQ(cx_channel_send(tx, &i), CX_OK);
  int v;
  ASSERT_EQ(cx_channel_recv(rx, &v), CX_OK);
  ASSERT_EQ(cx_channel_recv(rx, &v), CX_OK);
  int ten = 10, twenty = 20;
  ASSERT_EQ(cx_channel_send(tx, &ten), CX_OK);
  ASSERT_EQ(cx_channel_send(tx, &twenty), CX_OK);
  cx_sender_drop(tx);
  EXPECT_EQ(g_dropped_count, 0);  // the receiver may still read them
  cx_receiver_drop(rx);
  EXPECT_EQ(g_dropped_count, 3);
  EXPECT_EQ(g_dropped_sum, 3 + 10 + 20);
}

TEST_F(ChannelTest, ItemRefusedWithBrokenPipeStaysWithTheCaller) {
  g_dropped_sum = g_dropped_count = 0;
  cx_sender *tx;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(int), 3, DropItem, &tx, &rx), CX_OK);
  cx_receiver_drop(rx);
  int v = 5;
  EXPECT_EQ(cx_channel_send(tx, &v), CX_EPIPE);
  cx_sender_drop(tx);
  EXPECT_EQ(g_dropped_count, 0);
}

// ---- arguments
// ---------------------------------------------------------------

TEST_F(ChannelTest, InvalidArguments) {
  cx_sender *tx = reinterpret_cast<cx_sender *>(&alloc);  // garbage to clear
  cx_receiver *rx = reinterpret_cast<cx_receiver *>(&alloc);
  EXPECT_EQ(cx_channel_create(0, 4, nullptr, &tx, &rx), CX_EINVAL);
  EXPECT_EQ(tx, nullptr);
  EXPECT_EQ(rx, nullptr);
  EXPECT_EQ(cx_channel_create(4, 0, nullptr, &tx, &rx), CX_EINVAL);
  EXPECT_EQ(cx_channel_create(4, 4, nullptr, nullptr, &rx), CX_EINVAL);
  EXPECT_EQ(rx, nullptr);
  EXPECT_EQ(cx_channel_create(4, 4, nullptr, &tx, nullptr), CX_EINVAL);
  EXPECT_EQ(tx, nullptr);
  // item_size * capacity would overflow.
  EXPECT_EQ(cx_channel_create(16, SIZE_MAX / 8, nullptr, &tx, &rx), CX_EINVAL);
  EXPECT_EQ(alloc.attempts(), 0u);  // refused before allocating

  ASSERT_EQ(cx_channel_create(sizeof(int), 2, nullptr, &tx, &rx), CX_OK);
  int v = 0;
  cx_sender *out = tx;
  EXPECT_EQ(cx_sender_clone(nullptr, &out), CX_EINVAL);
  EXPECT_EQ(out, nullptr);
  EXPECT_EQ(cx_sender_clone(tx, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_channel_send(nullptr, &v), CX_EINVAL);
  EXPECT_EQ(cx_channel_send(tx, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_channel_try_send(nullptr, &v), CX_EINVAL);
  EXPECT_EQ(cx_channel_try_send(tx, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_channel_recv(nullptr, &v), CX_EINVAL);
  EXPECT_EQ(cx_channel_recv(rx, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_channel_try_recv(nullptr, &v), CX_EINVAL);
  EXPECT_EQ(cx_channel_try_recv(rx, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_channel_len(nullptr), 0u);
  EXPECT_EQ(cx_channel_len(rx), 0u);  // nothing slipped in
  cx_sender_drop(nullptr);
  cx_receiver_drop(nullptr);
  // A failed clone took no sender count: one drop disconnects.
  cx_sender_drop(tx);
  EXPECT_EQ(cx_channel_try_recv(rx, &v), CX_EPIPE);
  cx_receiver_drop(rx);
}

// ---- allocation failure
// ------------------------------------------------------

TEST_F(ChannelTest, AllocationFailureOfEitherBlockIsReported) {
  for (size_t k = 1; k <= 2; k++) {
    alloc.FailAt(k);
    cx_sender *tx = nullptr;
    cx_receiver *rx = nullptr;
    EXPECT_EQ(cx_channel_create(sizeof(int), 4, nullptr, &tx, &rx), CX_ENOMEM)
        << "failing allocation " << k;
    EXPECT_EQ(tx, nullptr);
    EXPECT_EQ(rx, nullptr);
    EXPECT_EQ(alloc.live(), 0u) << "failing allocation " << k;
  }
  EXPECT_EQ(alloc.failures(), 2u);
  // Exactly two allocations: the third attempt is not needed.
  alloc.FailAt(3);
  cx_sender *tx;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(int), 4, nullptr, &tx, &rx), CX_OK);
  cx_sender_drop(tx);
  cx_receiver_drop(rx);
}

// ---- stress
// ------------------------------------------------------------------

// Four producers send (producer, sequence) pairs through a small channel so
// that they block often; the receiver checks each producer's items arrive
// in order, none lost or duplicated, then sees the disconnect.
TEST_F(ChannelTest, MultiProducerStress) {
  constexpr int kProducers = 4;
  constexpr int kItems = 10000;
  struct Item {
    int producer;
    int seq;
  };
  cx_sender *tx;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(Item), 16, nullptr, &tx, &rx), CX_OK);
  std::vector<std::thread> producers;
  std::atomic<int> send_errors{0};
  for (int p = 0; p < kProducers; p++) {
    cx_sender *mine;
    ASSERT_EQ(cx_sender_clone(tx, &mine), CX_OK);
    producers.emplace_back([mine, p, &send_errors] {
      for (int i = 0; i < kItems; i++) {
        Item it = {p, i};
        // Mix both sending calls: try_send falls back to blocking send.
        int rc = (i % 2) ? cx_channel_try_send(mine, &it) : CX_EAGAIN;
        if (rc == CX_EAGAIN) rc = cx_channel_send(mine, &it);
        if (rc != CX_OK) send_errors++;
      }
      cx_sender_drop(mine);
    });
  }
  cx_sender_drop(tx);  // only the producers' clones are left

  // On a mismatch keep draining (EXPECT, not ASSERT): producers blocked on
  // a full channel must be able to finish before they are joined.
  int next[kProducers] = {0, 0, 0, 0};
  long total = 0, out_of_order = 0, bad_producer = 0;
  Item it;
  int rc;
  while ((rc = cx_channel_recv(rx, &it)) == CX_OK) {
    total++;
    if (it.producer < 0 || it.producer >= kProducers) {
      bad_producer++;
      continue;
    }
    if (it.seq != next[it.producer]) out_of_order++;
    next[it.producer] = it.seq + 1;
  }
  EXPECT_EQ(bad_producer, 0);
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(rc, CX_EPIPE);
  for (std::thread &t : producers) t.join();
  EXPECT_EQ(send_errors, 0);
  EXPECT_EQ(total, long{kProducers} * kItems);
  for (int p = 0; p < kProducers; p++) EXPECT_EQ(next[p], kItems);
  cx_receiver_drop(rx);
}

// ---- blocking calls inside a task ----------------------------------------
// On an executor's thread a blocking call would wait for work only that
// thread can do: it returns CX_EDEADLK instead, but only when it would
// really block (the non-blocking path is tried first).

struct ChanPair {
  cx_sender *tx;
  cx_receiver *rx;
  int value;
};
int RecvValue(void *c) {
  auto *q = static_cast<ChanPair *>(c);
  return cx_channel_recv(q->rx, &q->value);
}
int SendValue(void *c) {
  auto *q = static_cast<ChanPair *>(c);
  return cx_channel_send(q->tx, &q->value);
}

TEST(ChannelInTask, BlockingCallsThatWouldBlockReturnEdeadlk) {
  cxtest::ScopedCountingAllocator alloc;
  cxtest::Watchdog dog(20, "blocking channel call inside a task");
  ChanPair p{};
  ASSERT_EQ(cx_channel_create(sizeof(int), 1, nullptr, &p.tx, &p.rx), CX_OK);
  // Empty: recv would block.
  EXPECT_EQ(cxtest::RunInTask(RecvValue, &p), CX_EDEADLK);
  // Not full: send goes through inside the task.
  p.value = 7;
  EXPECT_EQ(cxtest::RunInTask(SendValue, &p), CX_OK);
  // Full now: send would block.
  p.value = 8;
  EXPECT_EQ(cxtest::RunInTask(SendValue, &p), CX_EDEADLK);
  EXPECT_EQ(cx_channel_len(p.rx), 1u);  // the refused item was not taken
  // Not empty: recv works inside the task.
  p.value = 0;
  EXPECT_EQ(cxtest::RunInTask(RecvValue, &p), CX_OK);
  EXPECT_EQ(p.value, 7);
  // Disconnected beats deadlock: recv on an empty channel with no sender.
  cx_sender_drop(p.tx);
  EXPECT_EQ(cxtest::RunInTask(RecvValue, &p), CX_EPIPE);
  cx_receiver_drop(p.rx);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(ChannelInTask, PlainThreadStillBlocksAfterATaskRan) {
  cxtest::Watchdog dog(20, "blocking recv from a plain thread");
  cx_sender *tx;
  cx_receiver *rx;
  ASSERT_EQ(cx_channel_create(sizeof(int), 1, nullptr, &tx, &rx), CX_OK);
  // The marker is cleared when the executor returns.
  EXPECT_EQ(cxtest::RunInTask([](void *) { return 0; }, nullptr), 0);
  int got = 0, rc = 1;
  std::thread receiver([&] { rc = cx_channel_recv(rx, &got); });
  int v = 5;
  ASSERT_EQ(cx_channel_send(tx, &v), CX_OK);
  receiver.join();
  EXPECT_EQ(rc, CX_OK);
  EXPECT_EQ(got, 5);
  // And on this very thread, a blocking recv waits for another thread.
  std::thread sender([&] {
    int w = 6;
    EXPECT_EQ(cx_channel_send(tx, &w), CX_OK);
  });
  EXPECT_EQ(cx_channel_recv(rx, &got), CX_OK);
  EXPECT_EQ(got, 6);
  sender.join();
  cx_sender_drop(tx);
  cx_receiver_drop(rx);
}

}  // namespace
