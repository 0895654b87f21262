/* Placeholder until the epoll driver lands: no I/O driver yet. */
#include "io/io.h"

#include <stddef.h>

#include "waker/error.h"

int cx_io_driver_create(cx_driver **out) {
  if (out != NULL) *out = NULL;
  return CX_ENOTSUP;
}
