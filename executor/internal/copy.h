/*
 * A memcpy for small objects of a size known only at run time (private):
 * the common sizes (a word, a pointer, two) become copies of constant size,
 * which compile to plain moves instead of a call to memcpy. Used on the
 * channels' push/pop (ring.h) and on every spawn (the future's state,
 * task.c). n may be 0 (src and dst are then not touched, and may be NULL).
 */
#ifndef CEXEC_INTERNAL_COPY_H
#define CEXEC_INTERNAL_COPY_H

#include <stddef.h>
#include <string.h>

static inline void cx__copy_small(void *dst, const void *src, size_t n) {
  switch (n) {
    case 0:
      break;
    case 4:
      memcpy(dst, src, 4);
      break;
    case 8:
      memcpy(dst, src, 8);
      break;
    case 16:
      memcpy(dst, src, 16);
      break;
    default:
      memcpy(dst, src, n);
  }
}

#endif /* CEXEC_INTERNAL_COPY_H */
