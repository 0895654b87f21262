/*
 * Task blocks: slots for tasks carved from large cx_alloc blocks. The
 * contract is in executor/internal/task_blocks.h.
 */
#include "executor/internal/task_blocks.h"

#include <assert.h>

#include "waker/alloc.h"

/* A block's header, at its start; slots follow. */
typedef struct cx__tb_block {
  struct cx__tb_block *next;
  size_t bytes;
} cx__tb_block;

#define CX__TB_HEADER                                  \
  ((sizeof(cx__tb_block) + CX__TASK_BLOCK_GRAIN - 1) & \
   ~(size_t)(CX__TASK_BLOCK_GRAIN - 1))
#define CX__TB_ALIGN 64 /* blocks start on a cache line */

void cx__task_blocks_init(cx__task_blocks *tb) {
  for (size_t i = 0; i < CX__TASK_BLOCK_CLASSES; i++) {
    tb->cls[i].free = NULL;
    tb->cls[i].bump = tb->cls[i].end = NULL;
    tb->cls[i].next_block = CX__TASK_BLOCK_FIRST;
  }
  tb->blocks = NULL;
  atomic_init(&tb->remote, NULL);
  tb->block_count = tb->block_bytes = tb->live = 0;
}

/* Takes every slot other threads freed back onto the class lists. Returns
 * whether there was any. */
static bool cx__tb_drain_remote(cx__task_blocks *tb) {
  /* Relaxed first look: an empty stack is the common case, and a push that
   * this load misses is taken at the next drain. */
  if (atomic_load_explicit(&tb->remote, memory_order_relaxed) == NULL)
    return false;
  /* Acquire: pairs with the release CAS of every push, so the `next` and
   * `cls` words the pushers wrote (and their last uses of the slots) are
   * visible before the slots are handed out again. Taking the whole stack
   * at once leaves no ABA window (pushers only ever add on top). */
  cx__tb_slot *s =
      atomic_exchange_explicit(&tb->remote, NULL, memory_order_acquire);
  while (s) {
    cx__tb_slot *next = s->next;
    cx__tb_class *c = &tb->cls[s->cls];
    s->next = c->free;
    c->free = s;
    tb->live--;
    s = next;
  }
  return true;
}

/* A new block for class c: the tail of the old one, smaller than a slot,
 * is left unused. Every block holds many slots (16 KiB at least, slots of
 * 256 bytes at most). */
static bool cx__tb_grow(cx__task_blocks *tb, cx__tb_class *c) {
  size_t bytes = c->next_block;
  cx__tb_block *b = cx_alloc(bytes, CX__TB_ALIGN);
  if (b == NULL) return false;
  b->next = tb->blocks;
  b->bytes = bytes;
  tb->blocks = b;
  tb->block_count++;
  tb->block_bytes += bytes;
  c->bump = (char *)b + CX__TB_HEADER;
  c->end = (char *)b + bytes;
  if (c->next_block < CX__TASK_BLOCK_MAX) c->next_block *= 2;
  return true;
}

void *cx__task_blocks_refill(cx__task_blocks *tb, size_t ci) {
  assert(ci < CX__TASK_BLOCK_CLASSES);
  cx__tb_class *c = &tb->cls[ci];
  /* Slots freed elsewhere first: no new block while memory waits there. */
  if (!(cx__tb_drain_remote(tb) && c->free) && !cx__tb_grow(tb, c)) return NULL;
  /* Now a slot is free or the new block has room: the fast path serves. */
  return cx__task_blocks_alloc(tb, ci);
}

void cx__task_blocks_free_remote(cx__task_blocks *tb, void *p, size_t ci) {
  cx__tb_slot *s = p;
  s->cls = ci;
  /* Relaxed: only a starting guess for the CAS below. */
  cx__tb_slot *head = atomic_load_explicit(&tb->remote, memory_order_relaxed);
  do {
    s->next = head;
    /* Release on success: publishes s->next, s->cls and everything this
     * thread did with the slot before freeing it to the owner's acquire
     * exchange in cx__tb_drain_remote. Relaxed on failure: retried with the
     * fresh head. */
  } while (!atomic_compare_exchange_weak_explicit(
      &tb->remote, &head, s, memory_order_release, memory_order_relaxed));
}

void cx__task_blocks_destroy(cx__task_blocks *tb) {
  cx__tb_block *b = tb->blocks;
  while (b) {
    cx__tb_block *next = b->next;
    cx_free(b, b->bytes, CX__TB_ALIGN);
    b = next;
  }
  tb->blocks = NULL;
}
