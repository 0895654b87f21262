/*
 * The per-worker run queue of the multi-threaded runtime: a bounded ring of
 * pointers that its owner pushes and pops without locks and that other
 * workers steal half of. Private to cexec (runtime.c, tests/runtime_test.cc).
 *
 *   slots:  [ ... | head ... tail) ...]   (indices mod CX__RING_CAP)
 *
 *   - `tail` is written by the owner only (push); it is read by stealers.
 *   - `head` is advanced by compare-and-swap, by the owner (pop, and taking
 *     half out on overflow) and by stealers (steal), so a slot between head
 *     and tail is claimed by exactly one of them: whoever moves head past
 *     it. A steal moves half of the items with ONE CAS, after copying them.
 *   - Every slot is written by the owner only, and only outside [head, tail)
 *     as the owner last saw head, so a stealer's copy of a slot can only be
 *     stale if head moved meanwhile, and then its CAS fails and nothing is
 *     taken. Slots are relaxed atomics so that such a stale read is not a
 *     data race (ThreadSanitizer sees none); the tail/head orders below make
 *     the values read in a successful claim the ones pushed.
 *   - Indices are free-running 32-bit counters: tail - head is the length.
 *     Wrapping would need 2^32 operations between a stealer's load of head
 *     and its CAS, which cannot happen while it copies at most 128 slots.
 *
 * Memory orders are named, and paired, at each operation in ring.c and in
 * docs/runtime.md.
 */
#ifndef CEXEC_RUNTIME_INTERNAL_RING_H
#define CEXEC_RUNTIME_INTERNAL_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The ring is used from C (runtime.c) and from the C++ tests, which see the
 * atomics as std::atomic<T> (same size and behaviour as C11's _Atomic T). */
#ifdef __cplusplus
#include <atomic>
#define CX__RING_ATOMIC(T) std::atomic<T>
extern "C" {
#else
#include <stdatomic.h>
#define CX__RING_ATOMIC(T) _Atomic(T)
#endif

#define CX__RING_CAP 256u /* a power of two */
#define CX__RING_HALF (CX__RING_CAP / 2)

typedef struct cx__ring {
  CX__RING_ATOMIC(uint32_t) head; /* next item to pop or steal (CAS) */
  CX__RING_ATOMIC(uint32_t) tail; /* next free slot (owner stores) */
  CX__RING_ATOMIC(void *) slots[CX__RING_CAP];
} cx__ring;

/* Empty ring. Before any other thread sees it. */
void cx__ring_init(cx__ring *r);

/* Owner. Appends `item` (not NULL); false, and nothing changed, when the
 * ring is full. */
bool cx__ring_push(cx__ring *r, void *item);

/* Owner. Takes the oldest item, or NULL when empty. */
void *cx__ring_pop(cx__ring *r);

/* Owner, when a push found the ring full: takes the CX__RING_HALF oldest
 * items out into out[] and returns CX__RING_HALF; returns 0 (nothing taken)
 * when a stealer made room meanwhile: push again. */
uint32_t cx__ring_take_half(cx__ring *r, void **out);

/* A thief that owns `dst` (and only it) takes half of `src` (rounded up,
 * at most CX__RING_HALF): returns one of them (the newest taken) and puts
 * the others on dst, adding their count plus one to *moved. NULL (nothing
 * taken) when src is empty or dst has less than CX__RING_HALF free slots. */
void *cx__ring_steal_into(cx__ring *src, cx__ring *dst, uint32_t *moved);

/* Items in the ring: exact for the owner when no thief is active, a
 * snapshot otherwise. Any thread. */
uint32_t cx__ring_len(const cx__ring *r);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_RUNTIME_INTERNAL_RING_H */
