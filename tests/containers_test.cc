// The private building blocks of executor/internal/: the intrusive list
// (list.h) and the ring buffer (ring.h).

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "executor/internal/list.h"
#include "executor/internal/ring.h"

namespace {

struct Item {
  int id;
  cx__list_node link;
};

std::vector<int> Ids(const cx__list &l) {
  std::vector<int> out;
  for (cx__list_node *n = l.head; n != nullptr; n = n->next)
    out.push_back(CX__CONTAINER_OF(n, Item, link)->id);
  // The back links agree with the forward ones.
  std::vector<int> back;
  for (cx__list_node *n = l.tail; n != nullptr; n = n->prev)
    back.insert(back.begin(), CX__CONTAINER_OF(n, Item, link)->id);
  EXPECT_EQ(out, back);
  return out;
}

TEST(List, PushPopRemoveKeepOrderAndLinks) {
  Item a{1, {}}, b{2, {}}, c{3, {}}, d{4, {}};
  cx__list l = CX__LIST_INIT;
  EXPECT_TRUE(cx__list_is_empty(&l));
  EXPECT_EQ(cx__list_pop_front(&l), nullptr);
  cx__list_push_back(&l, &a.link);
  cx__list_push_back(&l, &b.link);
  cx__list_push_front(&l, &c.link);
  cx__list_push_back(&l, &d.link);
  EXPECT_EQ(Ids(l), (std::vector<int>{3, 1, 2, 4}));
  cx__list_remove(&l, &b.link);  // middle
  EXPECT_EQ(b.link.prev, nullptr);
  EXPECT_EQ(b.link.next, nullptr);
  EXPECT_EQ(Ids(l), (std::vector<int>{3, 1, 4}));
  cx__list_remove(&l, &d.link);  // tail
  EXPECT_EQ(Ids(l), (std::vector<int>{3, 1}));
  EXPECT_EQ(cx__list_front(&l), &c.link);
  EXPECT_EQ(cx__list_pop_front(&l), &c.link);  // head
  EXPECT_EQ(Ids(l), (std::vector<int>{1}));
  cx__list_remove(&l, &a.link);  // the only one
  EXPECT_TRUE(cx__list_is_empty(&l));
  EXPECT_EQ(l.tail, nullptr);
  cx__list_init(&l);
  cx__list_push_front(&l, &a.link);  // push_front into an empty list
  EXPECT_EQ(Ids(l), (std::vector<int>{1}));
}

int g_dropped_sum = 0;
void DropInt(void *p) {
  g_dropped_sum += *static_cast<int *>(p);
}

TEST(Ring, WrapsAroundAndDrains) {
  int storage[3];
  cx__ring r;
  cx__ring_init(&r, storage, sizeof(int), 3);
  EXPECT_TRUE(cx__ring_is_empty(&r));
  int next = 1, expect = 1;
  // Fill and empty in uneven steps so head wraps several times.
  for (int round = 0; round < 5; round++) {
    while (!cx__ring_is_full(&r)) cx__ring_push(&r, &next), next++;
    EXPECT_EQ(r.len, 3u);
    for (int k = 0; k < 2; k++) {
      int v = 0;
      cx__ring_pop(&r, &v);
      EXPECT_EQ(v, expect++);
    }
  }
  EXPECT_EQ(r.len, 1u);
  EXPECT_EQ(*reinterpret_cast<int *>(cx__ring_slot(&r, 0)), expect);
  cx__ring_push(&r, &next);
  g_dropped_sum = 0;
  cx__ring_drain(&r, DropInt);
  EXPECT_EQ(g_dropped_sum, expect + next);
  EXPECT_TRUE(cx__ring_is_empty(&r));
  cx__ring_push(&r, &next);
  cx__ring_drain(&r, nullptr);  // no drop function: just emptied
  EXPECT_TRUE(cx__ring_is_empty(&r));
}

TEST(Ring, SizeCheck) {
  EXPECT_TRUE(cx__ring_size_ok(4, 4, 0));
  EXPECT_TRUE(cx__ring_size_ok(1, SIZE_MAX / 2, 0));
  EXPECT_FALSE(cx__ring_size_ok(0, 4, 0));
  EXPECT_FALSE(cx__ring_size_ok(4, 0, 0));
  EXPECT_FALSE(cx__ring_size_ok(16, SIZE_MAX / 8, 0));
  EXPECT_FALSE(cx__ring_size_ok(1, SIZE_MAX / 2, 64));  // the header counts
  EXPECT_FALSE(cx__ring_size_ok(1, 1, SIZE_MAX));
  EXPECT_EQ(cx__ring_bytes(12, 5), 60u);
}

}  // namespace
