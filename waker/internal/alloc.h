/*
 * The allocator's private side (waker/alloc.c).
 */
#ifndef CEXEC_WAKER_INTERNAL_ALLOC_H
#define CEXEC_WAKER_INTERNAL_ALLOC_H

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Whether cx_alloc is the default (malloc) allocator right now, not one a
 * program installed with cx_set_allocator. */
bool cx__allocator_is_default(void);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_WAKER_INTERNAL_ALLOC_H */
