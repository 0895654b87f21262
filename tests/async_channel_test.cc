// executor/async_channel.h: the bounded async MPSC channel and the oneshot.
//
// By hand first (CountingWakers stand for tasks, so every registration,
// wake and withdrawal is counted): FIFO of waiting senders, turns handed on,
// disconnect both ways, futures dropped while pending, clone failures, bad
// arguments, allocation failure. Then on executors: capacity-1 ping-pong
// between two tasks, many producers, a receiver dropped while senders pend,
// and plain threads feeding tasks (blocking send) and draining them
// (blocking recv).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "executor/cexec.h"
#include "tests/testutil.h"

namespace {

using cxtest::CountingWaker;
using cxtest::ScopedCountingAllocator;

// A context whose waker counts (one per simulated task).
struct Ctx {
  CountingWaker target;
  cx_waker waker;
  cx_context cx;
  Ctx() : waker(target.Borrowed()), cx(cx_context_from_waker(&waker)) {}
};

struct Chan {
  cx_achan_tx *tx = nullptr;
  cx_achan_rx *rx = nullptr;
  explicit Chan(size_t cap, void (*drop_item)(void *) = nullptr) {
    EXPECT_EQ(cx_achan_create(sizeof(int), cap, drop_item, &tx, &rx), CX_OK);
  }
};

// ---- creation, try_send / try_recv
// ---------------------------------------------

TEST(AchanCreate, BadArguments) {
  cx_achan_tx *tx = reinterpret_cast<cx_achan_tx *>(1);
  cx_achan_rx *rx = reinterpret_cast<cx_achan_rx *>(1);
  EXPECT_EQ(cx_achan_create(4, 1, nullptr, nullptr, &rx), CX_EINVAL);
  EXPECT_EQ(rx, nullptr);
  EXPECT_EQ(cx_achan_create(4, 1, nullptr, &tx, nullptr), CX_EINVAL);
  EXPECT_EQ(tx, nullptr);
  EXPECT_EQ(cx_achan_create(0, 1, nullptr, &tx, &rx), CX_EINVAL);
  EXPECT_EQ(cx_achan_create(4, 0, nullptr, &tx, &rx), CX_EINVAL);
  EXPECT_EQ(cx_achan_create(4, SIZE_MAX / 2, nullptr, &tx, &rx), CX_EINVAL);
  EXPECT_EQ(cx_achan_create(SIZE_MAX, 2, nullptr, &tx, &rx), CX_EINVAL);
  EXPECT_EQ(tx, nullptr);
  EXPECT_EQ(rx, nullptr);
  int v = 0;
  cx_achan_tx *out = nullptr;
  EXPECT_EQ(cx_achan_try_send(nullptr, &v), CX_EINVAL);
  EXPECT_EQ(cx_achan_try_recv(nullptr, &v), CX_EINVAL);
  EXPECT_EQ(cx_achan_send_blocking(nullptr, &v), CX_EINVAL);
  EXPECT_EQ(cx_achan_recv_blocking(nullptr, &v), CX_EINVAL);
  EXPECT_EQ(cx_achan_tx_clone(nullptr, &out), CX_EINVAL);
  EXPECT_EQ(cx_achan_len(nullptr), 0u);
  EXPECT_TRUE(cx_achan_is_closed(nullptr));
  cx_achan_tx_drop(nullptr);
  cx_achan_rx_drop(nullptr);

  Chan ch(1);
  EXPECT_EQ(cx_achan_try_send(ch.tx, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_achan_try_recv(ch.rx, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_achan_send_blocking(ch.tx, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_achan_recv_blocking(ch.rx, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_achan_tx_clone(ch.tx, nullptr), CX_EINVAL);
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

TEST(AchanCreate, AllocationFailureLeaksNothing) {
  ScopedCountingAllocator alloc;
  cx_achan_tx *tx;
  cx_achan_rx *rx;
  alloc.FailAt(1);
  EXPECT_EQ(cx_achan_create(8, 4, nullptr, &tx, &rx), CX_ENOMEM);
  EXPECT_EQ(tx, nullptr);
  EXPECT_EQ(rx, nullptr);
  cx_oneshot_tx *otx;
  cx_oneshot_rx *orx;
  alloc.FailAt(1);
  EXPECT_EQ(cx_oneshot_create(8, nullptr, &otx, &orx), CX_ENOMEM);
  alloc.FailNever();
  EXPECT_EQ(alloc.live(), 0u);
  // One allocation per channel, whatever the capacity; none per clone.
  ASSERT_EQ(cx_achan_create(8, 100, nullptr, &tx, &rx), CX_OK);
  cx_achan_tx *tx2;
  ASSERT_EQ(cx_achan_tx_clone(tx, &tx2), CX_OK);
  EXPECT_EQ(alloc.allocs(), 1u);
  cx_achan_tx_drop(tx);
  cx_achan_tx_drop(tx2);
  cx_achan_rx_drop(rx);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

TEST(Achan, TrySendTryRecvKeepFifoOrder) {
  Chan ch(3);
  for (int v = 1; v <= 3; v++) EXPECT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  int v = 4;
  EXPECT_EQ(cx_achan_try_send(ch.tx, &v), CX_EAGAIN);
  EXPECT_EQ(cx_achan_len(ch.rx), 3u);
  for (int want = 1; want <= 3; want++) {
    EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_OK);
    EXPECT_EQ(v, want);
  }
  EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_EAGAIN);
  // Wrap around the ring a few times.
  for (int i = 0; i < 10; i++) {
    EXPECT_EQ(cx_achan_try_send(ch.tx, &i), CX_OK);
    EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_OK);
    EXPECT_EQ(v, i);
  }
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

TEST(Achan, AllSendersDroppedDrainsThenEpipe) {
  Chan ch(4);
  cx_achan_tx *tx2;
  ASSERT_EQ(cx_achan_tx_clone(ch.tx, &tx2), CX_OK);
  int v = 7;
  ASSERT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  ASSERT_EQ(cx_achan_try_send(tx2, &v), CX_OK);
  cx_achan_tx_drop(ch.tx);
  EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_OK);
  cx_achan_tx_drop(tx2);
  EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_OK); /* drains */
  EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_EPIPE);
  EXPECT_EQ(cx_achan_recv_blocking(ch.rx, &v), CX_EPIPE);
  Ctx c;
  cx_achan_recv r;
  cx_achan_recv_init(&r, ch.rx, &v);
  int rc = 0;
  EXPECT_EQ(cx_achan_recv_poll(&r, &c.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EPIPE);
  cx_achan_rx_drop(ch.rx);
}

std::atomic<int> g_dropped_items{0};
void CountItemDrop(void *item) {
  (void)item;
  g_dropped_items++;
}

TEST(Achan, ReceiverDroppedReleasesItemsAndRefusesSends) {
  g_dropped_items = 0;
  Chan ch(4, CountItemDrop);
  int v = 1;
  ASSERT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  ASSERT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  EXPECT_FALSE(cx_achan_is_closed(ch.tx));
  cx_achan_rx_drop(ch.rx);
  EXPECT_EQ(g_dropped_items, 2);
  EXPECT_TRUE(cx_achan_is_closed(ch.tx));
  EXPECT_EQ(cx_achan_try_send(ch.tx, &v), CX_EPIPE);
  EXPECT_EQ(cx_achan_send_blocking(ch.tx, &v), CX_EPIPE);
  Ctx c;
  cx_achan_send s;
  cx_achan_send_init(&s, ch.tx, &v);
  int rc = 0;
  EXPECT_EQ(cx_achan_send_poll(&s, &c.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EPIPE);
  cx_achan_tx_drop(ch.tx);
}

// ---- the send future
// -------------------------------------------------------------

TEST(AchanSend, PendsWhenFullAndIsWokenByRecv) {
  Chan ch(1);
  int v = 1;
  ASSERT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  Ctx a;
  int item = 2, rc = 99;
  cx_achan_send s;
  cx_achan_send_init(&s, ch.tx, &item);
  EXPECT_EQ(cx_achan_send_poll(&s, &a.cx, &rc), CX_PENDING);
  EXPECT_EQ(a.target.refs(), 1);
  EXPECT_EQ(cx_achan_send_poll(&s, &a.cx, &rc), CX_PENDING); /* same waker */
  EXPECT_EQ(a.target.refs(), 1);
  EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_OK);
  EXPECT_EQ(a.target.wakes(), 1);
  EXPECT_EQ(a.target.refs(), 0);
  EXPECT_EQ(cx_achan_send_poll(&s, &a.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_OK);
  EXPECT_EQ(cx_achan_send_poll(&s, &a.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EALREADY); /* polled after the end */
  EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_OK);
  EXPECT_EQ(v, 2);
  cx_achan_send_drop(&s);
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

TEST(AchanSend, NewWakerReplacesTheOld) {
  Chan ch(1);
  int v = 1;
  ASSERT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  Ctx a, b;
  cx_achan_send s;
  cx_achan_send_init(&s, ch.tx, &v);
  EXPECT_EQ(cx_achan_send_poll(&s, &a.cx, nullptr), CX_PENDING);
  EXPECT_EQ(cx_achan_send_poll(&s, &b.cx, nullptr), CX_PENDING);
  EXPECT_EQ(a.target.refs(), 0);
  EXPECT_EQ(b.target.refs(), 1);
  EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_OK);
  EXPECT_EQ(a.target.woken(), 0);
  EXPECT_EQ(b.target.wakes(), 1);
  cx_achan_send_drop(&s);
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

TEST(AchanSend, DroppingAPendingSendUnregistersItsWaker) {
  Chan ch(1);
  int v = 1;
  ASSERT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  Ctx a;
  cx_achan_send s;
  cx_achan_send_init(&s, ch.tx, &v);
  EXPECT_EQ(cx_achan_send_poll(&s, &a.cx, nullptr), CX_PENDING);
  EXPECT_EQ(a.target.refs(), 1);
  cx_achan_send_drop(&s);
  EXPECT_EQ(a.target.refs(), 0);
  cx_achan_send_drop(&s); /* idempotent */
  EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_OK);
  EXPECT_EQ(a.target.woken(), 0); /* nobody left to wake */
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

TEST(AchanSend, WaitingSendersAreServedInFifoOrder) {
  Chan ch(1);
  int v = 0;
  ASSERT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  Ctx c[3];
  int items[3] = {10, 11, 12};
  cx_achan_send s[3];
  for (int i = 0; i < 3; i++) {
    cx_achan_send_init(&s[i], ch.tx, &items[i]);
    EXPECT_EQ(cx_achan_send_poll(&s[i], &c[i].cx, nullptr), CX_PENDING);
  }
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_OK);
    for (int j = 0; j < 3; j++)
      EXPECT_EQ(c[j].target.wakes(), j <= i ? 1 : 0) << i << " " << j;
    int rc = 99;
    EXPECT_EQ(cx_achan_send_poll(&s[i], &c[i].cx, &rc), CX_READY);
    EXPECT_EQ(rc, CX_OK);
  }
  EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_OK);
  EXPECT_EQ(v, 12);
  for (auto &x : c) EXPECT_EQ(x.target.refs(), 0);
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

TEST(AchanSend, NotifiedSenderDroppedHandsItsTurnOn) {
  Chan ch(1);
  int v = 0;
  ASSERT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  Ctx a, b;
  cx_achan_send sa, sb;
  cx_achan_send_init(&sa, ch.tx, &v);
  cx_achan_send_init(&sb, ch.tx, &v);
  EXPECT_EQ(cx_achan_send_poll(&sa, &a.cx, nullptr), CX_PENDING);
  EXPECT_EQ(cx_achan_send_poll(&sb, &b.cx, nullptr), CX_PENDING);
  EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_OK);
  EXPECT_EQ(a.target.wakes(), 1);
  EXPECT_EQ(b.target.woken(), 0);
  cx_achan_send_drop(&sa); /* woken, but gone without sending */
  EXPECT_EQ(b.target.wakes(), 1);
  int rc = 99;
  EXPECT_EQ(cx_achan_send_poll(&sb, &b.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_OK);
  EXPECT_EQ(a.target.refs() + b.target.refs(), 0);
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

TEST(AchanSend, SenderWhoseTurnWasStolenKeepsItsPlace) {
  Chan ch(1);
  int v = 0;
  ASSERT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  Ctx a, b;
  cx_achan_send sa, sb;
  cx_achan_send_init(&sa, ch.tx, &v);
  cx_achan_send_init(&sb, ch.tx, &v);
  EXPECT_EQ(cx_achan_send_poll(&sa, &a.cx, nullptr), CX_PENDING);
  EXPECT_EQ(cx_achan_send_poll(&sb, &b.cx, nullptr), CX_PENDING);
  EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_OK);
  EXPECT_EQ(a.target.wakes(), 1);
  EXPECT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK); /* a thread was faster */
  EXPECT_EQ(cx_achan_send_poll(&sa, &a.cx, nullptr), CX_PENDING);
  EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_OK);
  EXPECT_EQ(a.target.wakes(), 2); /* a again, still ahead of b */
  EXPECT_EQ(b.target.woken(), 0);
  cx_achan_send_drop(&sa); /* hands the turn to b */
  EXPECT_EQ(b.target.wakes(), 1);
  cx_achan_send_drop(&sb);
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

TEST(AchanSend, ReceiverDroppedWhileSendersPendWakesThemWithEpipe) {
  Chan ch(1);
  int v = 0;
  ASSERT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  Ctx c[3];
  cx_achan_send s[3];
  for (int i = 0; i < 3; i++) {
    cx_achan_send_init(&s[i], ch.tx, &v);
    EXPECT_EQ(cx_achan_send_poll(&s[i], &c[i].cx, nullptr), CX_PENDING);
  }
  cx_achan_rx_drop(ch.rx);
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(c[i].target.wakes(), 1);
    int rc = 99;
    EXPECT_EQ(cx_achan_send_poll(&s[i], &c[i].cx, &rc), CX_READY);
    EXPECT_EQ(rc, CX_EPIPE);
    EXPECT_EQ(c[i].target.refs(), 0);
  }
  cx_achan_tx_drop(ch.tx);
}

TEST(AchanSend, CapacityLeftAfterASendWakesTheNextSender) {
  // Capacity 3, full, three senders waiting; three items taken at once
  // wake all three; each send goes through.
  Chan ch(3);
  int v = 0;
  for (int i = 0; i < 3; i++) ASSERT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  Ctx c[3];
  cx_achan_send s[3];
  for (int i = 0; i < 3; i++) {
    cx_achan_send_init(&s[i], ch.tx, &v);
    EXPECT_EQ(cx_achan_send_poll(&s[i], &c[i].cx, nullptr), CX_PENDING);
  }
  for (int i = 0; i < 3; i++) ASSERT_EQ(cx_achan_try_recv(ch.rx, &v), CX_OK);
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(c[i].target.wakes(), 1);
    int rc = 99;
    EXPECT_EQ(cx_achan_send_poll(&s[i], &c[i].cx, &rc), CX_READY);
    EXPECT_EQ(rc, CX_OK);
  }
  EXPECT_EQ(cx_achan_len(ch.rx), 3u);
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

TEST(AchanSend, CloneFailureIsReported) {
  Chan ch(1);
  int v = 0;
  ASSERT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  Ctx a;
  a.target.set_clone_error(CX_EOVERFLOW);
  cx_achan_send s;
  cx_achan_send_init(&s, ch.tx, &v);
  int rc = 0;
  EXPECT_EQ(cx_achan_send_poll(&s, &a.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EOVERFLOW);
  cx_achan_send_drop(&s);
  EXPECT_EQ(cx_achan_try_recv(ch.rx, &v), CX_OK);
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

TEST(AchanSend, BadArguments) {
  Ctx a;
  cx_achan_send zero;
  std::memset(&zero, 0, sizeof zero);
  int rc = 0;
  EXPECT_EQ(cx_achan_send_poll(&zero, &a.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);
  EXPECT_EQ(cx_achan_send_poll(nullptr, &a.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);
  cx_achan_send_drop(&zero);
  cx_achan_send_drop(nullptr);
  cx_achan_send_init(nullptr, nullptr, nullptr);
  Chan ch(1);
  int v = 0;
  cx_achan_send s;
  cx_achan_send_init(&s, ch.tx, &v);
  EXPECT_EQ(cx_achan_send_poll(&s, nullptr, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);
  cx_achan_send_init(&s, ch.tx, nullptr);
  EXPECT_EQ(cx_achan_send_poll(&s, &a.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

// ---- the recv future
// -------------------------------------------------------------

TEST(AchanRecv, PendsWhenEmptyAndIsWokenBySend) {
  Chan ch(2);
  Ctx r;
  int item = 0, rc = 99;
  cx_achan_recv rv;
  cx_achan_recv_init(&rv, ch.rx, &item);
  EXPECT_EQ(cx_achan_recv_poll(&rv, &r.cx, &rc), CX_PENDING);
  EXPECT_EQ(r.target.refs(), 1);
  EXPECT_EQ(cx_achan_recv_poll(&rv, &r.cx, &rc), CX_PENDING);
  EXPECT_EQ(r.target.refs(), 1);
  int v = 42;
  EXPECT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  EXPECT_EQ(r.target.wakes(), 1);
  EXPECT_EQ(r.target.refs(), 0);
  EXPECT_EQ(cx_achan_recv_poll(&rv, &r.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_OK);
  EXPECT_EQ(item, 42);
  EXPECT_EQ(cx_achan_recv_poll(&rv, &r.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EALREADY);
  cx_achan_recv_drop(&rv);
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

TEST(AchanRecv, DroppingAPendingRecvUnregistersItsWaker) {
  Chan ch(2);
  Ctx r;
  int item = 0;
  cx_achan_recv rv;
  cx_achan_recv_init(&rv, ch.rx, &item);
  EXPECT_EQ(cx_achan_recv_poll(&rv, &r.cx, nullptr), CX_PENDING);
  cx_achan_recv_drop(&rv);
  EXPECT_EQ(r.target.refs(), 0);
  cx_achan_recv_drop(&rv);
  int v = 1;
  EXPECT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  EXPECT_EQ(r.target.woken(), 0);
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

TEST(AchanRecv, LaterRecvTakesTheSlotOverAndEarlierDropLeavesIt) {
  Chan ch(2);
  Ctx a, b;
  int item = 0;
  cx_achan_recv r1, r2;
  cx_achan_recv_init(&r1, ch.rx, &item);
  cx_achan_recv_init(&r2, ch.rx, &item);
  EXPECT_EQ(cx_achan_recv_poll(&r1, &a.cx, nullptr), CX_PENDING);
  EXPECT_EQ(cx_achan_recv_poll(&r2, &b.cx, nullptr), CX_PENDING);
  EXPECT_EQ(a.target.refs(), 0);
  cx_achan_recv_drop(&r1); /* not its waker any more: leaves b's alone */
  EXPECT_EQ(b.target.refs(), 1);
  int v = 1;
  EXPECT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  EXPECT_EQ(b.target.wakes(), 1);
  cx_achan_recv_drop(&r2);
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

TEST(AchanRecv, LastSenderDroppedWakesAPendingRecv) {
  Chan ch(2);
  Ctx r;
  int item = 0, rc = 99;
  cx_achan_recv rv;
  cx_achan_recv_init(&rv, ch.rx, &item);
  EXPECT_EQ(cx_achan_recv_poll(&rv, &r.cx, &rc), CX_PENDING);
  cx_achan_tx_drop(ch.tx);
  EXPECT_EQ(r.target.wakes(), 1);
  EXPECT_EQ(cx_achan_recv_poll(&rv, &r.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EPIPE);
  EXPECT_EQ(r.target.refs(), 0);
  cx_achan_recv_drop(&rv);
  cx_achan_rx_drop(ch.rx);
}

TEST(AchanRecv, CloneFailureAndBadArguments) {
  Chan ch(1);
  Ctx r;
  r.target.set_clone_error(CX_EOVERFLOW);
  int item = 0, rc = 0;
  cx_achan_recv rv;
  cx_achan_recv_init(&rv, ch.rx, &item);
  EXPECT_EQ(cx_achan_recv_poll(&rv, &r.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EOVERFLOW);
  cx_achan_recv_drop(&rv);
  cx_achan_recv zero;
  std::memset(&zero, 0, sizeof zero);
  EXPECT_EQ(cx_achan_recv_poll(&zero, &r.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);
  EXPECT_EQ(cx_achan_recv_poll(nullptr, &r.cx, &rc), CX_READY);
  cx_achan_recv_init(&rv, ch.rx, nullptr);
  EXPECT_EQ(cx_achan_recv_poll(&rv, &r.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);
  cx_achan_recv_drop(&zero);
  cx_achan_recv_drop(nullptr);
  cx_achan_recv_init(nullptr, nullptr, nullptr);
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

TEST(AchanRecv, LosingASelectWithdrawsTheRecv) {
  Chan ch(1);
  Ctx c;
  int item = 0, rrc = 0, src = 0;
  cx_achan_recv rv;
  cx_achan_recv_init(&rv, ch.rx, &item);
  cx_sleep nap;
  cx_sleep_init_until(&nap, 0); /* already due */
  cx_timers timers;
  cx_timers_init(&timers, nullptr, nullptr);
  c.cx.timers = &timers;
  cx_future f[2] = {cx_future_of(&cx_achan_recv_vtable, &rv),
                    cx_future_of(&cx_sleep_vtable, &nap)};
  void *o[2] = {&rrc, &src};
  cx_select s;
  ASSERT_EQ(cx_select_init(&s, f, o, 2), CX_OK);
  size_t winner = 9;
  EXPECT_EQ(cx_select_poll(&s, &c.cx, &winner), CX_READY);
  EXPECT_EQ(winner, 1u);
  EXPECT_EQ(c.target.refs(), 0); /* the recv registered, then withdrew */
  int v = 5;
  EXPECT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  EXPECT_EQ(c.target.woken(), 0);
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

// ---- oneshot
// ----------------------------------------------------------------------

TEST(Oneshot, SendThenReceive) {
  ScopedCountingAllocator alloc;
  cx_oneshot_tx *tx;
  cx_oneshot_rx *rx;
  ASSERT_EQ(cx_oneshot_create(sizeof(int), nullptr, &tx, &rx), CX_OK);
  Ctx r;
  int item = 0, rc = 99;
  cx_oneshot_recv rv;
  cx_oneshot_recv_init(&rv, rx, &item);
  EXPECT_EQ(cx_oneshot_recv_poll(&rv, &r.cx, &rc), CX_PENDING);
  EXPECT_EQ(cx_oneshot_try_recv(rx, &item), CX_EAGAIN);
  EXPECT_FALSE(cx_oneshot_is_closed(tx));
  int v = 9;
  EXPECT_EQ(cx_oneshot_send(tx, &v), CX_OK); /* consumes tx */
  EXPECT_EQ(r.target.wakes(), 1);
  EXPECT_EQ(cx_oneshot_recv_poll(&rv, &r.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_OK);
  EXPECT_EQ(item, 9);
  EXPECT_EQ(cx_oneshot_try_recv(rx, &item), CX_EPIPE); /* only one */
  cx_oneshot_recv_drop(&rv);
  cx_oneshot_rx_drop(rx);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(Oneshot, SenderDroppedWithoutSendingGivesEpipe) {
  cx_oneshot_tx *tx;
  cx_oneshot_rx *rx;
  ASSERT_EQ(cx_oneshot_create(sizeof(int), nullptr, &tx, &rx), CX_OK);
  Ctx r;
  int item = 0, rc = 99;
  cx_oneshot_recv rv;
  cx_oneshot_recv_init(&rv, rx, &item);
  EXPECT_EQ(cx_oneshot_recv_poll(&rv, &r.cx, &rc), CX_PENDING);
  cx_oneshot_tx_drop(tx);
  EXPECT_EQ(r.target.wakes(), 1);
  EXPECT_EQ(cx_oneshot_recv_poll(&rv, &r.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EPIPE);
  cx_oneshot_rx_drop(rx);
}

TEST(Oneshot, ReceiverDroppedRefusesTheSend) {
  g_dropped_items = 0;
  cx_oneshot_tx *tx;
  cx_oneshot_rx *rx;
  ASSERT_EQ(cx_oneshot_create(sizeof(int), CountItemDrop, &tx, &rx), CX_OK);
  cx_oneshot_rx_drop(rx);
  EXPECT_TRUE(cx_oneshot_is_closed(tx));
  int v = 1;
  EXPECT_EQ(cx_oneshot_send(tx, &v), CX_EPIPE);
  EXPECT_EQ(g_dropped_items, 0); /* the item stayed with the caller */

  // Sent but never received: dropped with the channel.
  ASSERT_EQ(cx_oneshot_create(sizeof(int), CountItemDrop, &tx, &rx), CX_OK);
  EXPECT_EQ(cx_oneshot_send(tx, &v), CX_OK);
  cx_oneshot_rx_drop(rx);
  EXPECT_EQ(g_dropped_items, 1);
}

TEST(Oneshot, BadArguments) {
  cx_oneshot_tx *tx;
  cx_oneshot_rx *rx;
  EXPECT_EQ(cx_oneshot_create(0, nullptr, &tx, &rx), CX_EINVAL);
  EXPECT_EQ(cx_oneshot_create(4, nullptr, nullptr, &rx), CX_EINVAL);
  EXPECT_EQ(cx_oneshot_send(nullptr, &tx), CX_EINVAL);
  ASSERT_EQ(cx_oneshot_create(4, nullptr, &tx, &rx), CX_OK);
  EXPECT_EQ(cx_oneshot_send(tx, nullptr), CX_EINVAL); /* tx consumed */
  int v;
  EXPECT_EQ(cx_oneshot_try_recv(rx, &v), CX_EPIPE);
  cx_oneshot_rx_drop(rx);
  cx_oneshot_tx_drop(nullptr);
  cx_oneshot_rx_drop(nullptr);
}

TEST(Oneshot, ThreadWaitsForATask) {
  ScopedCountingAllocator alloc;
  cx_oneshot_tx *tx;
  cx_oneshot_rx *rx;
  ASSERT_EQ(cx_oneshot_create(sizeof(int), nullptr, &tx, &rx), CX_OK);
  int got = 0, rc = 99;
  std::thread waiter([&] { rc = cx_oneshot_recv_blocking(rx, &got); });
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  int v = 31;
  EXPECT_EQ(cx_oneshot_send(tx, &v), CX_OK);
  waiter.join();
  EXPECT_EQ(rc, CX_OK);
  EXPECT_EQ(got, 31);
  cx_oneshot_rx_drop(rx);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- tasks on an executor
// ----------------------------------------------------------

// Sends `n` items (base, base+1, ...) and reports how it ended: CX_OK once
// all went through, else the failing send's result. Owns its sender.
struct Producer {
  cx_coro co;
  cx_achan_tx *tx;
  cx_achan_send send;
  int n, i, item, rc, base;
};
cx_poll ProducerPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<Producer *>(self);
  CX_CORO_BEGIN(&f->co);
  for (f->i = 0; f->i < f->n; f->i++) {
    f->item = f->base + f->i;
    cx_achan_send_init(&f->send, f->tx, &f->item);
    CX_AWAIT(&f->co, cx_achan_send_poll(&f->send, cx, &f->rc));
    if (f->rc != CX_OK) CX_RETURN(&f->co, static_cast<int *>(out), f->rc);
  }
  CX_RETURN(&f->co, static_cast<int *>(out), CX_OK);
  CX_CORO_END(&f->co);
}
void ProducerDrop(void *self) {
  auto *f = static_cast<Producer *>(self);
  cx_achan_send_drop(&f->send);
  cx_achan_tx_drop(f->tx);
}
const cx_future_vtable kProducerVt = {.poll = ProducerPoll,
                                      .drop = ProducerDrop,
                                      .state_size = sizeof(Producer),
                                      .state_align = alignof(Producer),
                                      .output_size = sizeof(int)};

// Receives until the channel disconnects, or `limit` items (then drops the
// receiver on purpose). Checks that each producer's items (item / 1000000
// is the producer) arrive in order. Output: the number received, or -1 on
// an order violation.
struct Consumer {
  cx_coro co;
  cx_achan_rx *rx;
  cx_achan_recv recv;
  int item, rc, count, limit;
  int64_t sum;
  int last[8];
  bool disorder;
};
cx_poll ConsumerPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<Consumer *>(self);
  CX_CORO_BEGIN(&f->co);
  for (int i = 0; i < 8; i++) f->last[i] = -1;
  while (f->limit == 0 || f->count < f->limit) {
    cx_achan_recv_init(&f->recv, f->rx, &f->item);
    CX_AWAIT(&f->co, cx_achan_recv_poll(&f->recv, cx, &f->rc));
    if (f->rc != CX_OK) break;
    f->count++;
    f->sum += f->item;
    {
      int p = (f->item / 1000000) % 8, seq = f->item % 1000000;
      if (seq <= f->last[p]) f->disorder = true;
      f->last[p] = seq;
    }
  }
  cx_achan_rx_drop(f->rx); /* early, when limited: senders see CX_EPIPE */
  f->rx = nullptr;
  CX_RETURN(&f->co, static_cast<int *>(out), f->disorder ? -1 : f->count);
  CX_CORO_END(&f->co);
}
void ConsumerDrop(void *self) {
  auto *f = static_cast<Consumer *>(self);
  cx_achan_recv_drop(&f->recv);
  cx_achan_rx_drop(f->rx);
}
const cx_future_vtable kConsumerVt = {.poll = ConsumerPoll,
                                      .drop = ConsumerDrop,
                                      .state_size = sizeof(Consumer),
                                      .state_align = alignof(Consumer),
                                      .output_size = sizeof(int)};

TEST(AchanTasks, ReceiverDroppedWhileSendersPend) {
  ScopedCountingAllocator alloc;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Chan ch(1);
  cx_join_handle *hp[3];
  for (int p = 0; p < 3; p++) {
    Producer pr;
    std::memset(&pr, 0, sizeof pr);
    pr.n = 100;
    pr.base = p * 1000000;
    if (p == 0)
      pr.tx = ch.tx;
    else
      ASSERT_EQ(cx_achan_tx_clone(ch.tx, &pr.tx), CX_OK);
    ASSERT_EQ(cx_spawn(ex, &kProducerVt, &pr, &hp[p]), CX_OK);
  }
  Consumer co;
  std::memset(&co, 0, sizeof co);
  co.rx = ch.rx;
  co.limit = 5;
  cx_join_handle *hc;
  // Let the producers fill the channel and queue up first.
  cx_executor_run_until_idle(ex);
  for (auto *h : hp) EXPECT_FALSE(cx_join_handle_is_finished(h));
  ASSERT_EQ(cx_spawn(ex, &kConsumerVt, &co, &hc), CX_OK);
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  int got = 0;
  ASSERT_EQ(cx_join_handle_try_join(hc, &got, sizeof got), CX_OK);
  EXPECT_EQ(got, 5);
  for (auto *h : hp) {
    int rc = 0;
    ASSERT_EQ(cx_join_handle_try_join(h, &rc, sizeof rc), CX_OK);
    EXPECT_EQ(rc, CX_EPIPE);
    cx_join_handle_detach(h);
  }
  cx_join_handle_detach(hc);
  cx_executor_stats st;
  cx_executor_get_stats(ex, &st);
  EXPECT_EQ(st.completed, 4u);
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
  EXPECT_EQ(alloc.bad_frees(), 0u);
}

TEST(AchanTasks, ManyProducersOneConsumerInOrder) {
  ScopedCountingAllocator alloc;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Chan ch(2);
  constexpr int kProducers = 5, kItems = 200;
  for (int p = 0; p < kProducers; p++) {
    Producer pr;
    std::memset(&pr, 0, sizeof pr);
    pr.n = kItems;
    pr.base = p * 1000000;
    if (p == kProducers - 1)
      pr.tx = ch.tx;
    else
      ASSERT_EQ(cx_achan_tx_clone(ch.tx, &pr.tx), CX_OK);
    ASSERT_EQ(cx_spawn(ex, &kProducerVt, &pr, nullptr), CX_OK);
  }
  Consumer co;
  std::memset(&co, 0, sizeof co);
  co.rx = ch.rx;
  int got = 0;
  ASSERT_EQ(cx_executor_block_on(ex, &kConsumerVt, &co, &got, sizeof got),
            CX_OK);
  EXPECT_EQ(got, kProducers * kItems);
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
}

// Ping-pong over two capacity-1 channels: the pinger sends i and expects
// i + 1 back, `rounds` times; the ponger answers until disconnected.
struct Pinger {
  cx_coro co;
  cx_achan_tx *tx;
  cx_achan_rx *rx;
  cx_achan_send send;
  cx_achan_recv recv;
  int i, rounds, item, reply, rc;
};
cx_poll PingerPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<Pinger *>(self);
  CX_CORO_BEGIN(&f->co);
  for (f->i = 0; f->i < f->rounds; f->i++) {
    f->item = f->i;
    cx_achan_send_init(&f->send, f->tx, &f->item);
    CX_AWAIT(&f->co, cx_achan_send_poll(&f->send, cx, &f->rc));
    if (f->rc != CX_OK) break;
    cx_achan_recv_init(&f->recv, f->rx, &f->reply);
    CX_AWAIT(&f->co, cx_achan_recv_poll(&f->recv, cx, &f->rc));
    if (f->rc != CX_OK || f->reply != f->i + 1) break;
  }
  CX_RETURN(&f->co, static_cast<int *>(out), f->i);
  CX_CORO_END(&f->co);
}
void PingerDrop(void *self) {
  auto *f = static_cast<Pinger *>(self);
  cx_achan_send_drop(&f->send);
  cx_achan_recv_drop(&f->recv);
  cx_achan_tx_drop(f->tx);
  cx_achan_rx_drop(f->rx);
}
const cx_future_vtable kPingerVt = {.poll = PingerPoll,
                                    .drop = PingerDrop,
                                    .state_size = sizeof(Pinger),
                                    .state_align = alignof(Pinger),
                                    .output_size = sizeof(int)};

struct Ponger {
  cx_coro co;
  cx_achan_tx *tx;
  cx_achan_rx *rx;
  cx_achan_send send;
  cx_achan_recv recv;
  int item, rc, answered;
};
cx_poll PongerPoll(void *self, cx_context *cx, void *out) {
  auto *f = static_cast<Ponger *>(self);
  CX_CORO_BEGIN(&f->co);
  for (;;) {
    cx_achan_recv_init(&f->recv, f->rx, &f->item);
    CX_AWAIT(&f->co, cx_achan_recv_poll(&f->recv, cx, &f->rc));
    if (f->rc != CX_OK) break;
    f->item++;
    cx_achan_send_init(&f->send, f->tx, &f->item);
    CX_AWAIT(&f->co, cx_achan_send_poll(&f->send, cx, &f->rc));
    if (f->rc != CX_OK) break;
    f->answered++;
  }
  CX_RETURN(&f->co, static_cast<int *>(out), f->answered);
  CX_CORO_END(&f->co);
}
void PongerDrop(void *self) {
  auto *f = static_cast<Ponger *>(self);
  cx_achan_send_drop(&f->send);
  cx_achan_recv_drop(&f->recv);
  cx_achan_tx_drop(f->tx);
  cx_achan_rx_drop(f->rx);
}
const cx_future_vtable kPongerVt = {.poll = PongerPoll,
                                    .drop = PongerDrop,
                                    .state_size = sizeof(Ponger),
                                    .state_align = alignof(Ponger),
                                    .output_size = sizeof(int)};

TEST(AchanTasks, CapacityOnePingPongBetweenTwoTasks) {
  ScopedCountingAllocator alloc;
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  constexpr int kRounds = 1000;
  Pinger pi;
  Ponger po;
  std::memset(&pi, 0, sizeof pi);
  std::memset(&po, 0, sizeof po);
  pi.rounds = kRounds;
  ASSERT_EQ(cx_achan_create(sizeof(int), 1, nullptr, &pi.tx, &po.rx), CX_OK);
  ASSERT_EQ(cx_achan_create(sizeof(int), 1, nullptr, &po.tx, &pi.rx), CX_OK);
  cx_join_handle *hi, *ho;
  ASSERT_EQ(cx_spawn(ex, &kPingerVt, &pi, &hi), CX_OK);
  ASSERT_EQ(cx_spawn(ex, &kPongerVt, &po, &ho), CX_OK);
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  int rounds = 0, answered = 0;
  ASSERT_EQ(cx_join_handle_try_join(hi, &rounds, sizeof rounds), CX_OK);
  ASSERT_EQ(cx_join_handle_try_join(ho, &answered, sizeof answered), CX_OK);
  EXPECT_EQ(rounds, kRounds);
  EXPECT_EQ(answered, kRounds);
  // Each round trip costs each task about two polls: no busy looping.
  EXPECT_LE(cx_join_handle_poll_count(hi), 2u * kRounds + 2);
  EXPECT_LE(cx_join_handle_poll_count(ho), 2u * kRounds + 2);
  cx_join_handle_detach(hi);
  cx_join_handle_detach(ho);
  cx_executor_destroy(ex);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- plain threads and tasks
// ------------------------------------------------------

TEST(AchanThreads, ThreadFeedsATaskThroughBlockingSend) {
  for (size_t cap : {1u, 4u}) {
    ScopedCountingAllocator alloc;
    cx_executor *ex;
    ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
    Chan ch(cap);
    Consumer co;
    std::memset(&co, 0, sizeof co);
    co.rx = ch.rx;
    cx_join_handle *hc;
    ASSERT_EQ(cx_spawn(ex, &kConsumerVt, &co, &hc), CX_OK);
    constexpr int kItems = 2000;
    std::thread feeder([&] {
      for (int i = 0; i < kItems; i++)
        ASSERT_EQ(cx_achan_send_blocking(ch.tx, &i), CX_OK);
      cx_achan_tx_drop(ch.tx);
    });
    // run() parks while the consumer waits: its waker is in the channel.
    ASSERT_EQ(cx_executor_run(ex), CX_OK);
    feeder.join();
    int got = 0;
    ASSERT_EQ(cx_join_handle_try_join(hc, &got, sizeof got), CX_OK);
    EXPECT_EQ(got, kItems) << "capacity " << cap;
    cx_join_handle_detach(hc);
    cx_executor_destroy(ex);
    EXPECT_EQ(alloc.live(), 0u);
  }
}

TEST(AchanThreads, SeveralThreadsFeedOneTask) {
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Chan ch(2);
  Consumer co;
  std::memset(&co, 0, sizeof co);
  co.rx = ch.rx;
  cx_join_handle *hc;
  ASSERT_EQ(cx_spawn(ex, &kConsumerVt, &co, &hc), CX_OK);
  constexpr int kThreads = 4, kItems = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    cx_achan_tx *tx;
    ASSERT_EQ(cx_achan_tx_clone(ch.tx, &tx), CX_OK);
    threads.emplace_back([tx, t] {
      for (int i = 0; i < kItems; i++) {
        int v = t * 1000000 + i;
        // Alternate blocking sends with try_send retries.
        if (i % 2 == 0) {
          ASSERT_EQ(cx_achan_send_blocking(tx, &v), CX_OK);
        } else {
          int rc;
          while ((rc = cx_achan_try_send(tx, &v)) == CX_EAGAIN)
            std::this_thread::yield();
          ASSERT_EQ(rc, CX_OK);
        }
      }
      cx_achan_tx_drop(tx);
    });
  }
  cx_achan_tx_drop(ch.tx);
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  for (auto &t : threads) t.join();
  int got = 0;
  ASSERT_EQ(cx_join_handle_try_join(hc, &got, sizeof got), CX_OK);
  EXPECT_EQ(got, kThreads * kItems); /* and in order per thread (not -1) */
  cx_join_handle_detach(hc);
  cx_executor_destroy(ex);
}

TEST(AchanThreads, TaskFeedsAThreadThroughBlockingRecv) {
  cx_executor *ex;
  ASSERT_EQ(cx_executor_create(nullptr, &ex), CX_OK);
  Chan ch(1);
  Producer pr;
  std::memset(&pr, 0, sizeof pr);
  pr.tx = ch.tx;
  pr.n = 1000;
  cx_join_handle *hp;
  ASSERT_EQ(cx_spawn(ex, &kProducerVt, &pr, &hp), CX_OK);
  long sum = 0;
  int count = 0;
  std::thread drain([&] {
    int v;
    while (cx_achan_recv_blocking(ch.rx, &v) == CX_OK) {
      sum += v;
      count++;
    }
    cx_achan_rx_drop(ch.rx);
  });
  ASSERT_EQ(cx_executor_run(ex), CX_OK);
  drain.join();
  EXPECT_EQ(count, 1000);
  EXPECT_EQ(sum, 999L * 1000 / 2);
  int rc = 99;
  ASSERT_EQ(cx_join_handle_try_join(hp, &rc, sizeof rc), CX_OK);
  EXPECT_EQ(rc, CX_OK);
  cx_join_handle_detach(hp);
  cx_executor_destroy(ex);
}

// Threads only, capacity 1, blocked on both sides at once: the channel's
// lock is contended and its conditions signalled one waiter at a time, so a
// lost wakeup hangs (the watchdog fails the test) and a broken lock loses or
// duplicates items (the counts and per-sender order below).
TEST(AchanThreads, ManyBlockedSendersAndReceiversLoseNothing) {
  cxtest::Watchdog dog(60, "blocked async-channel threads on both sides");
  Chan ch(1);
  constexpr int kSenders = 4, kReceivers = 3, kItems = 3000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kSenders; t++) {
    cx_achan_tx *tx;
    ASSERT_EQ(cx_achan_tx_clone(ch.tx, &tx), CX_OK);
    threads.emplace_back([tx, t] {
      for (int i = 0; i < kItems; i++) {
        int v = t * kItems + i;
        ASSERT_EQ(cx_achan_send_blocking(tx, &v), CX_OK);
      }
      cx_achan_tx_drop(tx);
    });
  }
  cx_achan_tx_drop(ch.tx);
  std::atomic<long> count{0}, sum{0}, out_of_order{0};
  for (int r = 0; r < kReceivers; r++) {
    threads.emplace_back([&] {
      std::vector<int> last(kSenders, -1);  // per sender, seen by us
      int v;
      while (cx_achan_recv_blocking(ch.rx, &v) == CX_OK) {
        int sender = v / kItems;
        if (sender < 0 || sender >= kSenders || v % kItems <= last[sender])
          out_of_order++;
        else
          last[sender] = v % kItems;
        count++;
        sum += v;
      }
    });
  }
  for (auto &t : threads) t.join();
  const long n = long{kSenders} * kItems;
  EXPECT_EQ(count.load(), n);
  EXPECT_EQ(sum.load(), n * (n - 1) / 2);
  EXPECT_EQ(out_of_order.load(), 0);
  EXPECT_EQ(cx_achan_len(ch.rx), 0u);
  cx_achan_rx_drop(ch.rx);
}

TEST(AchanThreads, BlockedSenderSeesReceiverDrop) {
  Chan ch(1);
  int v = 0;
  ASSERT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);
  std::atomic<int> rc{99};
  std::thread t([&] { rc = cx_achan_send_blocking(ch.tx, &v); });
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  cx_achan_rx_drop(ch.rx);
  t.join();
  EXPECT_EQ(rc, CX_EPIPE);
  cx_achan_tx_drop(ch.tx);
}

TEST(AchanThreads, TasksOnTwoExecutorsTalkAcrossThreads) {
  // Pinger on this thread's executor, ponger on another thread's: every
  // wake crosses threads.
  ScopedCountingAllocator alloc;
  cx_executor *ex1, *ex2;
  ASSERT_EQ(cx_executor_create(nullptr, &ex1), CX_OK);
  ASSERT_EQ(cx_executor_create(nullptr, &ex2), CX_OK);
  Pinger pi;
  Ponger po;
  std::memset(&pi, 0, sizeof pi);
  std::memset(&po, 0, sizeof po);
  pi.rounds = 500;
  ASSERT_EQ(cx_achan_create(sizeof(int), 1, nullptr, &pi.tx, &po.rx), CX_OK);
  ASSERT_EQ(cx_achan_create(sizeof(int), 1, nullptr, &po.tx, &pi.rx), CX_OK);
  cx_join_handle *hi;
  ASSERT_EQ(cx_spawn(ex1, &kPingerVt, &pi, &hi), CX_OK);
  ASSERT_EQ(cx_spawn(ex2, &kPongerVt, &po, nullptr), CX_OK);
  int rc2 = 99;
  std::thread other([&] {
    rc2 = cx_executor_run(ex2);
    cx_executor_destroy(ex2);
  });
  ASSERT_EQ(cx_executor_run(ex1), CX_OK);
  other.join();
  EXPECT_EQ(rc2, CX_OK);
  int rounds = 0;
  ASSERT_EQ(cx_join_handle_try_join(hi, &rounds, sizeof rounds), CX_OK);
  EXPECT_EQ(rounds, 500);
  cx_join_handle_detach(hi);
  cx_executor_destroy(ex1);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- blocking calls inside a task ----------------------------------------

struct InTask {
  cx_achan_tx *tx;
  cx_achan_rx *rx;
  cx_oneshot_rx *orx;
  int value;
};

TEST(AchanInTask, BlockingCallsThatWouldBlockReturnEdeadlk) {
  ScopedCountingAllocator alloc;
  cxtest::Watchdog dog(20, "blocking async-channel call inside a task");
  Chan ch(1);
  InTask p{ch.tx, ch.rx, nullptr, 0};
  auto recv = [](void *c) {
    auto *q = static_cast<InTask *>(c);
    return cx_achan_recv_blocking(q->rx, &q->value);
  };
  auto send = [](void *c) {
    auto *q = static_cast<InTask *>(c);
    return cx_achan_send_blocking(q->tx, &q->value);
  };
  EXPECT_EQ(cxtest::RunInTask(recv, &p), CX_EDEADLK);  // empty
  p.value = 3;
  EXPECT_EQ(cxtest::RunInTask(send, &p), CX_OK);  // room: no blocking needed
  p.value = 4;
  EXPECT_EQ(cxtest::RunInTask(send, &p), CX_EDEADLK);  // full
  EXPECT_EQ(cx_achan_len(ch.rx), 1u);
  p.value = 0;
  EXPECT_EQ(cxtest::RunInTask(recv, &p), CX_OK);  // not empty
  EXPECT_EQ(p.value, 3);
  cx_achan_tx_drop(ch.tx);
  EXPECT_EQ(cxtest::RunInTask(recv, &p),
            CX_EPIPE);  // disconnected, not deadlock
  cx_achan_rx_drop(ch.rx);

  cx_oneshot_tx *otx;
  ASSERT_EQ(cx_oneshot_create(sizeof(int), nullptr, &otx, &p.orx), CX_OK);
  auto orecv = [](void *c) {
    auto *q = static_cast<InTask *>(c);
    return cx_oneshot_recv_blocking(q->orx, &q->value);
  };
  EXPECT_EQ(cxtest::RunInTask(orecv, &p), CX_EDEADLK);
  int v = 9;
  ASSERT_EQ(cx_oneshot_send(otx, &v), CX_OK);
  EXPECT_EQ(cxtest::RunInTask(orecv, &p), CX_OK);
  EXPECT_EQ(p.value, 9);
  cx_oneshot_rx_drop(p.orx);
  EXPECT_EQ(alloc.live(), 0u);
}

TEST(AchanInTask, PlainThreadStillBlocks) {
  cxtest::Watchdog dog(20, "blocking async-channel recv from a plain thread");
  Chan ch(1);
  EXPECT_EQ(cxtest::RunInTask([](void *) { return 0; }, nullptr), 0);
  std::thread sender([&] {
    int w = 6;
    EXPECT_EQ(cx_achan_send_blocking(ch.tx, &w), CX_OK);
  });
  int got = 0;
  EXPECT_EQ(cx_achan_recv_blocking(ch.rx, &got), CX_OK);
  EXPECT_EQ(got, 6);
  sender.join();
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
}

// ---- a broken waker is refused where it would be registered ---------------

TEST(AchanBrokenWaker, PendingPollsRefuseAVtableWithoutWake) {
  ScopedCountingAllocator alloc;
  CountingWaker target;
  cx_waker_vtable vt = CountingWaker::kVtable;
  vt.wake = nullptr;
  cx_waker broken = {&vt, &target};
  cx_context cx = cx_context_from_waker(&broken);
  Chan ch(1);
  int v = 1, rc = 0;
  cx_achan_recv r;
  cx_achan_recv_init(&r, ch.rx, &v);
  EXPECT_EQ(cx_achan_recv_poll(&r, &cx, &rc), CX_READY);  // would pend
  EXPECT_EQ(rc, CX_EINVAL);
  cx_achan_recv_drop(&r);
  ASSERT_EQ(cx_achan_try_send(ch.tx, &v), CX_OK);  // full now
  cx_achan_send s;
  cx_achan_send_init(&s, ch.tx, &v);
  EXPECT_EQ(cx_achan_send_poll(&s, &cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);
  cx_achan_send_drop(&s);
  EXPECT_EQ(target.clones(), 0);
  EXPECT_EQ(target.refs(), 0);
  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
  EXPECT_EQ(alloc.live(), 0u);
}

// ---- NULL arguments: the whole surface
// ---------------------------------------

TEST(AchanNull, EveryFunctionAndVtableAcceptsNull) {
  ScopedCountingAllocator alloc;
  Ctx c;
  Chan ch(1);
  int v = 0, rc = 0;
  cx_achan_tx *out = ch.tx;
  EXPECT_EQ(cx_achan_create(4, 1, nullptr, nullptr, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_achan_tx_clone(nullptr, &out), CX_EINVAL);
  EXPECT_EQ(out, nullptr);
  EXPECT_EQ(cx_achan_tx_clone(ch.tx, nullptr), CX_EINVAL);
  cx_achan_tx_drop(nullptr);
  cx_achan_rx_drop(nullptr);
  EXPECT_EQ(cx_achan_try_send(nullptr, &v), CX_EINVAL);
  EXPECT_EQ(cx_achan_try_send(ch.tx, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_achan_try_recv(nullptr, &v), CX_EINVAL);
  EXPECT_EQ(cx_achan_try_recv(ch.rx, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_achan_send_blocking(nullptr, &v), CX_EINVAL);
  EXPECT_EQ(cx_achan_send_blocking(ch.tx, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_achan_recv_blocking(nullptr, &v), CX_EINVAL);
  EXPECT_EQ(cx_achan_recv_blocking(ch.rx, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_achan_len(nullptr), 0u);
  EXPECT_TRUE(cx_achan_is_closed(nullptr));

  // The send future.
  cx_achan_send_init(nullptr, ch.tx, &v);
  EXPECT_EQ(cx_achan_send_poll(nullptr, &c.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);
  cx_achan_send s;
  for (int k = 0; k < 2; k++) {
    cx_achan_send_init(&s, k == 0 ? nullptr : ch.tx, k == 0 ? &v : nullptr);
    rc = 0;
    EXPECT_EQ(cx_achan_send_poll(&s, &c.cx, &rc), CX_READY);
    EXPECT_EQ(rc, CX_EINVAL);
    cx_achan_send_drop(&s);
  }
  cx_achan_send_init(&s, ch.tx, &v);
  cxtest::ExpectPollRejectsNull(cx_achan_send_poll, cx_achan_send_vtable, &s,
                                &c.cx, int{CX_EINVAL});
  cx_achan_send_drop(nullptr);
  cx_achan_send_drop(&s);

  // The recv future.
  cx_achan_recv_init(nullptr, ch.rx, &v);
  EXPECT_EQ(cx_achan_recv_poll(nullptr, &c.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);
  cx_achan_recv r;
  for (int k = 0; k < 2; k++) {
    cx_achan_recv_init(&r, k == 0 ? nullptr : ch.rx, k == 0 ? &v : nullptr);
    rc = 0;
    EXPECT_EQ(cx_achan_recv_poll(&r, &c.cx, &rc), CX_READY);
    EXPECT_EQ(rc, CX_EINVAL);
    cx_achan_recv_drop(&r);
  }
  cx_achan_recv_init(&r, ch.rx, &v);
  cxtest::ExpectPollRejectsNull(cx_achan_recv_poll, cx_achan_recv_vtable, &r,
                                &c.cx, int{CX_EINVAL});
  cx_achan_recv_drop(nullptr);
  cx_achan_recv_drop(&r);
  EXPECT_EQ(c.target.clones(), 0);  // nothing was registered

  // Oneshot.
  cx_oneshot_tx *otx = nullptr;
  cx_oneshot_rx *orx = nullptr;
  EXPECT_EQ(cx_oneshot_create(4, nullptr, nullptr, &orx), CX_EINVAL);
  EXPECT_EQ(cx_oneshot_create(4, nullptr, &otx, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_oneshot_send(nullptr, &v), CX_EINVAL);
  cx_oneshot_tx_drop(nullptr);
  EXPECT_TRUE(cx_oneshot_is_closed(nullptr));
  EXPECT_EQ(cx_oneshot_try_recv(nullptr, &v), CX_EINVAL);
  EXPECT_EQ(cx_oneshot_recv_blocking(nullptr, &v), CX_EINVAL);
  cx_oneshot_rx_drop(nullptr);
  cx_oneshot_recv_init(nullptr, nullptr, &v);
  EXPECT_EQ(cx_oneshot_recv_poll(nullptr, &c.cx, &rc), CX_READY);
  EXPECT_EQ(rc, CX_EINVAL);
  cx_oneshot_recv_drop(nullptr);
  ASSERT_EQ(cx_oneshot_create(sizeof(int), nullptr, &otx, &orx), CX_OK);
  EXPECT_EQ(cx_oneshot_try_recv(orx, nullptr), CX_EINVAL);
  EXPECT_EQ(cx_oneshot_send(otx, nullptr), CX_EINVAL);  // consumes otx
  cx_oneshot_rx_drop(orx);

  cx_achan_tx_drop(ch.tx);
  cx_achan_rx_drop(ch.rx);
  EXPECT_EQ(alloc.live(), 0u);
}

}  // namespace
