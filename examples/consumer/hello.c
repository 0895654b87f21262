/* A consumer of @cexec//executor: one task that sleeps 10 ms, then adds. */
#include <stdio.h>

#include "executor/cexec.h"

typedef struct {
  cx_sleep nap;
  int a, b;
} add_later;

static cx_poll add_later_poll(void *self, cx_context *cx, void *out) {
  add_later *s = self;
  int rc;
  if (cx_sleep_poll(&s->nap, cx, &rc) == CX_PENDING) return CX_PENDING;
  *(int *)out = rc == CX_OK ? s->a + s->b : rc;
  return CX_READY;
}

static void add_later_drop(void *self) {
  cx_sleep_drop(&((add_later *)self)->nap);
}

static const cx_future_vtable add_later_vtable = {
    .poll = add_later_poll,
    .drop = add_later_drop,
    .state_size = sizeof(add_later),
    .state_align = _Alignof(add_later),
    .output_size = sizeof(int)};

int main(void) {
  add_later f = {.a = 40, .b = 2};
  cx_sleep_init_for(&f.nap, 10 * CX_NSEC_PER_MSEC);
  int sum = 0;
  int rc = cx_block_on(&add_later_vtable, &f, &sum, sizeof sum);
  if (rc != CX_OK) {
    fprintf(stderr, "block_on: %s\n", cx_strerror(rc));
    return 1;
  }
  printf("consumer: 40 + 2 = %d\n", sum);
  return sum == 42 ? 0 : 1;
}
