/*
 * The per-worker ring: see runtime/internal/ring.h for the layout and the
 * ownership rules, docs/runtime.md for why each order suffices.
 */
#include "runtime/internal/ring.h"

#define CX__RING_MASK (CX__RING_CAP - 1)

void cx__ring_init(cx__ring *r) {
  atomic_init(&r->head, 0);
  atomic_init(&r->tail, 0);
  for (uint32_t i = 0; i < CX__RING_CAP; i++) atomic_init(&r->slots[i], NULL);
}

bool cx__ring_push(cx__ring *r, void *item) {
  /* relaxed: tail is written by this thread only. */
  uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  /* acquire: pairs with the release half of the head CAS of a steal, so the
   * thief's reads of the slots it took happen-before we write them again. */
  uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
  if (tail - head >= CX__RING_CAP) return false;
  /* relaxed: published by the tail store below. */
  atomic_store_explicit(&r->slots[tail & CX__RING_MASK], item,
                        memory_order_relaxed);
  /* release: pairs with the thieves' acquire load of tail, making the slot
   * written above (and the task behind it) visible to them. */
  atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
  return true;
}

void *cx__ring_pop(cx__ring *r) {
  /* acquire: as in push (a thief's CAS we must see before reusing). */
  uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
  /* relaxed: our own writes. */
  uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  for (;;) {
    if (head == tail) return NULL;
    /* relaxed: we wrote this slot ourselves; the CAS below decides whether
     * it is still ours to take. */
    void *item = atomic_load_explicit(&r->slots[head & CX__RING_MASK],
                                      memory_order_relaxed);
    /* acq_rel on success: competes with thieves' CAS on head (acquire their
     * claims, release ours); acquire on failure: the new head we retry
     * from. */
    if (atomic_compare_exchange_weak_explicit(&r->head, &head, head + 1,
                                              memory_order_acq_rel,
                                              memory_order_acquire))
      return item;
  }
}

uint32_t cx__ring_take_half(cx__ring *r, void **out) {
  /* relaxed: our own writes. */
  uint32_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
  /* acquire: pairs with a thief's head CAS (as in push). */
  uint32_t head = atomic_load_explicit(&r->head, memory_order_acquire);
  if (tail - head < CX__RING_CAP) return 0; /* room appeared: push again */
  for (uint32_t i = 0; i < CX__RING_HALF; i++)
    /* relaxed: our own slots; the CAS below decides. */
    out[i] = atomic_load_explicit(&r->slots[(head + i) & CX__RING_MASK],
                                  memory_order_relaxed);
  /* acq_rel: as in pop. Strong: a spurious failure would only cost a
   * retry, but this path is rare and a loop here is not worth it. */
  if (!atomic_compare_exchange_strong_explicit(
          &r->head, &head, head + CX__RING_HALF, memory_order_acq_rel,
          memory_order_relaxed))
    return 0; /* a thief took some: there is room now */
  return CX__RING_HALF;
}

void *cx__ring_steal_into(cx__ring *src, cx__ring *dst, uint32_t *moved) {
  /* relaxed: dst's tail is ours. */
  uint32_t dtail = atomic_load_explicit(&dst->tail, memory_order_relaxed);
  /* acquire: pairs with other thieves' CAS on dst's head (as in push),
   * since we are about to write dst's slots. */
  uint32_t dhead = atomic_load_explicit(&dst->head, memory_order_acquire);
  if (CX__RING_CAP - (dtail - dhead) < CX__RING_HALF) return NULL;

  /* acquire: pairs with the release half of other CASes on src->head. */
  uint32_t head = atomic_load_explicit(&src->head, memory_order_acquire);
  uint32_t n;
  for (;;) {
    /* acquire: pairs with the owner's release store of tail in push: every
     * slot below it, and the task it points at, is visible. */
    uint32_t tail = atomic_load_explicit(&src->tail, memory_order_acquire);
    uint32_t len = tail - head;
    if (len == 0) return NULL;
    if (len > CX__RING_CAP) {
      /* head moved on after we read it (pops, steals): reread. acquire:
       * as above. */
      head = atomic_load_explicit(&src->head, memory_order_acquire);
      continue;
    }
    n = len - len / 2;
    if (n > CX__RING_HALF) n = CX__RING_HALF;
    for (uint32_t i = 0; i < n; i++) {
      /* relaxed: possibly stale if src's owner reused the slot, but then
       * head moved and the CAS below fails. */
      void *item = atomic_load_explicit(&src->slots[(head + i) & CX__RING_MASK],
                                        memory_order_relaxed);
      /* relaxed: dst's slots beyond its tail are invisible to thieves until
       * the release store of dst's tail below. */
      atomic_store_explicit(&dst->slots[(dtail + i) & CX__RING_MASK], item,
                            memory_order_relaxed);
    }
    /* acq_rel on success: release orders our slot reads before src's owner
     * reuses them (its acquire load of head in push); acquire: other
     * claimants' CASes. On failure, acquire: the new head we retry from. */
    if (atomic_compare_exchange_weak_explicit(&src->head, &head, head + n,
                                              memory_order_acq_rel,
                                              memory_order_acquire))
      break;
  }
  *moved += n;
  n--; /* the newest taken is returned, the others stay on dst */
  /* relaxed: written by us just above. */
  void *ret = atomic_load_explicit(&dst->slots[(dtail + n) & CX__RING_MASK],
                                   memory_order_relaxed);
  if (n > 0)
    /* release: publishes the copied slots to dst's own thieves (their
     * acquire load of tail). */
    atomic_store_explicit(&dst->tail, dtail + n, memory_order_release);
  return ret;
}

uint32_t cx__ring_len(const cx__ring *r) {
  cx__ring *m = (cx__ring *)r;
  /* acquire both: a snapshot; head first so that tail - head is not
   * negative (head never passes the tail read after it). */
  uint32_t head = atomic_load_explicit(&m->head, memory_order_acquire);
  uint32_t tail = atomic_load_explicit(&m->tail, memory_order_acquire);
  uint32_t len = tail - head;
  return len > CX__RING_CAP ? CX__RING_CAP : len;
}
