/*
 * The allocator cexec uses for every allocation it makes (tasks, channels,
 * parkers, executors).
 *
 * It is process-wide, like libuv's uv_replace_allocator(): tests install a
 * counting or failing allocator to prove that allocation failure is reported
 * and that nothing leaks. cexec never calls malloc() directly.
 */
#ifndef CEXEC_ALLOC_H
#define CEXEC_ALLOC_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cx_allocator {
  /* Returns `size` bytes aligned to `align` (a power of two, at most 64), or
   * NULL on failure. `size` is never 0. */
  void *(*alloc)(void *ctx, size_t size, size_t align);
  /* Frees a block returned by alloc; `size` and `align` are the values given
   * to alloc. `ptr` is never NULL. */
  void (*free)(void *ctx, void *ptr, size_t size, size_t align);
  void *ctx;
} cx_allocator;

/* Installs `a` (copied) as the allocator for every later allocation; NULL
 * restores the default (malloc/aligned_alloc). Returns CX_EINVAL if `a` lacks
 * a function.
 *
 * Not thread-safe: call it only while no cexec object is alive, because a
 * block must be freed by the allocator that made it. */
int cx_set_allocator(const cx_allocator *a);

/* The allocator in force (a copy). */
cx_allocator cx_get_allocator(void);

/* Allocate through the installed allocator. Exposed so that futures written
 * against cexec can share its accounting; `align` must be a power of two <= 64.
 * Returns NULL on failure or for size 0. */
void *cx_alloc(size_t size, size_t align);

/* Free a block from cx_alloc() with the same size and align. NULL is a no-op.
 */
void cx_free(void *ptr, size_t size, size_t align);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_ALLOC_H */
