/*
 * Task blocks: where a single-threaded executor gets the memory of the tasks
 * it spawns (private; executor/task_blocks.c).
 *
 * Why. Spawning is one allocation per task, and with malloc that allocation
 * (and its free) cost more than the rest of a spawn: W1 in
 * docs/performance.md. Task blocks keep the contract as users see it (each
 * task is allocated at its spawn, which fails with CX_ENOMEM when no memory
 * is to be had, and freed when its last reference goes) but take the memory
 * from large blocks obtained through cx_alloc, carved into fixed-size slots,
 * one free list per size class: a spawn is a pop or a bump, a free a push.
 *
 * What it costs. Blocks are returned to cx_alloc's allocator only when the
 * executor is freed: the memory of tasks that finished is kept for the
 * tasks spawned later (the peak, not the current, number of tasks sets the
 * footprint, as in most slab allocators). Executors whose tasks should each
 * be a cx_alloc of its own (to see them in a custom allocator, or under
 * AddressSanitizer, which cannot see a use after free inside a block) turn
 * blocks off: cx_executor_options.task_blocks.
 *
 * Threads. Allocation and destruction: the owner thread only. Free: any
 * thread. The owner pushes onto the class's free list; other threads push
 * onto one lock-free stack (`remote`) that the owner takes whole when a
 * class runs dry.
 *
 * Sizes. Slots of 16..256 bytes in steps of 16, aligned to 16; anything
 * larger or more aligned is not served (cx__task_blocks_fits) and the
 * caller uses cx_alloc directly. Each class grows its blocks from 16 KiB,
 * doubling, up to CX__TASK_BLOCK_MAX.
 */
#ifndef CEXEC_INTERNAL_TASK_BLOCKS_H
#define CEXEC_INTERNAL_TASK_BLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#include <atomic>
#define CX__TB_ATOMIC(T) std::atomic<T>
#else
#include <stdatomic.h>
#define CX__TB_ATOMIC(T) _Atomic(T)
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define CX__TASK_BLOCK_GRAIN 16u
#define CX__TASK_BLOCK_CLASSES 16u /* slots of 16, 32, ..., 256 bytes */
#define CX__TASK_BLOCK_FIRST ((size_t)16 << 10)
#define CX__TASK_BLOCK_MAX ((size_t)4 << 20)

/* A free slot: its first words. */
typedef struct cx__tb_slot {
  struct cx__tb_slot *next;
  size_t cls; /* on the remote stack only: the class to return it to */
} cx__tb_slot;

typedef struct cx__tb_class {
  cx__tb_slot *free; /* owner only */
  char *bump, *end;  /* the unused tail of this class's newest block */
  size_t next_block; /* bytes of the block it allocates next */
} cx__tb_class;

typedef struct cx__task_blocks {
  cx__tb_class cls[CX__TASK_BLOCK_CLASSES];
  struct cx__tb_block *blocks; /* every block, newest first (owner only) */
  CX__TB_ATOMIC(cx__tb_slot *) remote; /* freed by other threads */
  /* Statistics for tests and benchmarks (owner only). */
  size_t block_count, block_bytes, live;
} cx__task_blocks;

/* Whether a request of `size` bytes aligned to `align` is served here. */
static inline bool cx__task_blocks_fits(size_t size, size_t align) {
  return size > 0 && size <= CX__TASK_BLOCK_GRAIN * CX__TASK_BLOCK_CLASSES &&
         align <= CX__TASK_BLOCK_GRAIN;
}

void cx__task_blocks_init(cx__task_blocks *tb);

static inline size_t cx__task_blocks_class(size_t size) {
  return (size + CX__TASK_BLOCK_GRAIN - 1) / CX__TASK_BLOCK_GRAIN - 1;
}

/* The slow path of cx__task_blocks_alloc: remote frees, a new block. */
void *cx__task_blocks_refill(cx__task_blocks *tb, size_t ci);

/* Owner thread. A slot of class `ci` (cx__task_blocks_class of a size for
 * which cx__task_blocks_fits holds): (ci + 1) * 16 bytes, aligned to 16.
 * NULL when a new block was needed and cx_alloc failed. Inline: on every
 * spawn. */
static inline void *cx__task_blocks_alloc(cx__task_blocks *tb, size_t ci) {
  cx__tb_class *c = &tb->cls[ci];
  cx__tb_slot *s = c->free;
  if (s) {
    c->free = s->next;
    tb->live++;
    return s;
  }
  size_t slot = (ci + 1) * CX__TASK_BLOCK_GRAIN;
  if ((size_t)(c->end - c->bump) >= slot) {
    void *p = c->bump;
    c->bump += slot;
    tb->live++;
    return p;
  }
  return cx__task_blocks_refill(tb, ci);
}

/* Any thread other than the owner (or the owner outside its driving):
 * a lock-free push onto the remote stack. */
void cx__task_blocks_free_remote(cx__task_blocks *tb, void *p, size_t ci);

/* Any thread. `p` came from cx__task_blocks_alloc(tb, ci) and is not used
 * any more. `owner`: the caller is the owner thread, which is not inside an
 * allocation (a plain push); otherwise the remote stack. */
static inline void cx__task_blocks_free(cx__task_blocks *tb, void *p, size_t ci,
                                        bool owner) {
  if (!owner) {
    cx__task_blocks_free_remote(tb, p, ci);
    return;
  }
  cx__tb_class *c = &tb->cls[ci];
  cx__tb_slot *s = (cx__tb_slot *)p;
  s->next = c->free;
  c->free = s;
  tb->live--;
}

/* Frees every block. Every slot must be free (the executor is gone, and
 * so are its tasks), on any thread: the caller holds the last reference. */
void cx__task_blocks_destroy(cx__task_blocks *tb);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_INTERNAL_TASK_BLOCKS_H */
