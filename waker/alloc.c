#include "waker/alloc.h"

#include <stdlib.h>

#include "waker/error.h"
#include "waker/internal/alloc.h"

static void *cx__default_alloc(void *ctx, size_t size, size_t align) {
  (void)ctx;
  if (align <= _Alignof(max_align_t)) return malloc(size);
  /* aligned_alloc wants size to be a multiple of align. */
  size_t rounded = (size + align - 1) & ~(align - 1);
  return aligned_alloc(align, rounded);
}

static void cx__default_free(void *ctx, void *ptr, size_t size, size_t align) {
  (void)ctx;
  (void)size;
  (void)align;
  free(ptr);
}

static cx_allocator cx__allocator = {cx__default_alloc, cx__default_free, NULL};

int cx_set_allocator(const cx_allocator *a) {
  if (a == NULL) {
    cx__allocator.alloc = cx__default_alloc;
    cx__allocator.free = cx__default_free;
    cx__allocator.ctx = NULL;
    return CX_OK;
  }
  if (a->alloc == NULL || a->free == NULL) return CX_EINVAL;
  cx__allocator = *a;
  return CX_OK;
}

bool cx__allocator_is_default(void) {
  return cx__allocator.alloc == cx__default_alloc;
}

cx_allocator cx_get_allocator(void) {
  return cx__allocator;
}

void *cx_alloc(size_t size, size_t align) {
  if (size == 0 || align == 0 || (align & (align - 1)) != 0 || align > 64)
    return NULL;
  return cx__allocator.alloc(cx__allocator.ctx, size, align);
}

void cx_free(void *ptr, size_t size, size_t align) {
  if (ptr == NULL) return;
  cx__allocator.free(cx__allocator.ctx, ptr, size, align);
}
