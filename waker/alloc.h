/*
 * The allocator cexec uses for every allocation it makes (tasks, channels,
 * parkers, executors).
 *
 * It is process-wide, like libuv's uv_replace_allocator(): tests install a
 * counting or failing allocator to prove that allocation failure is reported
 * and that nothing leaks. cexec never calls malloc() directly.
 *
 * NULL arguments (the same rule in every cexec header): no function crashes
 * on a NULL pointer. A function returning int returns CX_EINVAL; a poll
 * function returns CX_READY at once, polling nothing, with CX_EINVAL in its
 * int result if it has one (a NULL result pointer is simply not written); a
 * drop, detach or other release function does nothing; a void init does
 * nothing (the poll then reports CX_EINVAL); a query returns the neutral
 * value its comment names. A pointer that may be NULL on purpose (an
 * optional output) says what NULL means at the function. Exceptions are
 * inline hot-path helpers, marked "must not be NULL".
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

/* The allocator in force (a copy). Takes no pointer. */
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
