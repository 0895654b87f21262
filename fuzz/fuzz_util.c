#include "fuzz/fuzz_util.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "waker/alloc.h"

void fz_fail(const char *harness, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "cexec fuzz invariant: %s: ", harness);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  abort();
}

static _Atomic uint64_t fz__attempts, fz__allocs, fz__frees, fz__failed;
static _Atomic int64_t fz__live_bytes;
static _Atomic uint64_t fz__fail_at;   /* absolute attempt index, 0: none */
static _Atomic uint64_t fz__fail_next; /* absolute attempt index, 0: none */

enum { FZ_TRACK_MAX = 1024 };
static bool fz__track_on, fz__track_overflow;
static struct {
  void *ptr;
  uint64_t serial;
} fz__track[FZ_TRACK_MAX];
static size_t fz__ntrack;
/* Liveness by serial, for O(1) queries (serials beyond: overflow). */
enum { FZ_SERIAL_MAX = 1 << 16 };
static uint8_t fz__live_serial[FZ_SERIAL_MAX / 8];

static void fz__track_add(void *p, uint64_t serial) {
  if (fz__ntrack == FZ_TRACK_MAX || serial >= FZ_SERIAL_MAX) {
    fz__track_overflow = true;
    return;
  }
  fz__live_serial[serial / 8] |= (uint8_t)(1u << (serial % 8));
  fz__track[fz__ntrack].ptr = p;
  fz__track[fz__ntrack].serial = serial;
  fz__ntrack++;
}

static void fz__track_del(void *p) {
  if (!fz__track_on) return;
  for (size_t i = 0; i < fz__ntrack; i++)
    if (fz__track[i].ptr == p) {
      uint64_t serial = fz__track[i].serial;
      fz__live_serial[serial / 8] &= (uint8_t) ~(1u << (serial % 8));
      fz__track[i] = fz__track[--fz__ntrack];
      return;
    }
}

void fz_alloc_track(bool on) {
  fz__track_on = on;
  fz__track_overflow = false;
  fz__ntrack = 0;
  memset(fz__live_serial, 0, sizeof fz__live_serial);
}

int fz_alloc_is_live(uint64_t serial) {
  if (!fz__track_on || fz__track_overflow) return -1;
  if (serial >= FZ_SERIAL_MAX) return -1;
  return (fz__live_serial[serial / 8] >> (serial % 8)) & 1;
}

static void *fz__alloc(void *ctx, size_t size, size_t align) {
  (void)ctx;
  uint64_t n = atomic_fetch_add(&fz__attempts, 1) + 1;
  if (n == atomic_load(&fz__fail_at) || n == atomic_load(&fz__fail_next)) {
    atomic_fetch_add(&fz__failed, 1);
    return NULL;
  }
  void *p;
  if (align <= _Alignof(max_align_t)) {
    p = malloc(size);
  } else {
    size_t rounded = (size + align - 1) & ~(align - 1);
    p = aligned_alloc(align, rounded);
  }
  if (p == NULL) return NULL;
  atomic_fetch_add(&fz__allocs, 1);
  atomic_fetch_add(&fz__live_bytes, (int64_t)size);
  if (fz__track_on) fz__track_add(p, n);
  return p;
}

static void fz__free(void *ctx, void *ptr, size_t size, size_t align) {
  (void)ctx;
  (void)align;
  atomic_fetch_add(&fz__frees, 1);
  atomic_fetch_sub(&fz__live_bytes, (int64_t)size);
  if (fz__track_on) fz__track_del(ptr);
  free(ptr);
}

void fz_alloc_install(uint64_t fail_at) {
  atomic_store(&fz__attempts, 0);
  atomic_store(&fz__allocs, 0);
  atomic_store(&fz__frees, 0);
  atomic_store(&fz__failed, 0);
  atomic_store(&fz__live_bytes, 0);
  atomic_store(&fz__fail_at, fail_at);
  atomic_store(&fz__fail_next, 0);
  fz_alloc_track(false);
  cx_allocator a = {fz__alloc, fz__free, NULL};
  if (cx_set_allocator(&a) != 0) fz_fail("alloc", "cx_set_allocator refused");
}

void fz_alloc_uninstall(void) {
  cx_set_allocator(NULL);
  atomic_store(&fz__fail_at, 0);
  atomic_store(&fz__fail_next, 0);
}

void fz_finish_items_and_memory(const char *harness, uint64_t sent,
                                uint64_t received, uint64_t dropped) {
  if (sent != received + dropped)
    fz_fail(harness, "%llu items sent, %llu received, %llu dropped",
            (unsigned long long)sent, (unsigned long long)received,
            (unsigned long long)dropped);
  fz_alloc_stats as = fz_alloc_stats_get();
  if (as.live != 0 || as.live_bytes != 0)
    fz_fail(harness, "%lld blocks leaked", (long long)as.live);
  fz_alloc_uninstall();
}

void fz_alloc_fail_in(uint64_t k) {
  atomic_store(&fz__fail_next, k == 0 ? 0 : atomic_load(&fz__attempts) + k);
}

fz_alloc_stats fz_alloc_stats_get(void) {
  fz_alloc_stats s;
  s.attempts = atomic_load(&fz__attempts);
  s.allocs = atomic_load(&fz__allocs);
  s.frees = atomic_load(&fz__frees);
  s.failed = atomic_load(&fz__failed);
  s.live = (int64_t)(s.allocs - s.frees);
  s.live_bytes = atomic_load(&fz__live_bytes);
  return s;
}
