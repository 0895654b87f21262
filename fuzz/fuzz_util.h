/*
 * Shared by the fuzz harnesses: an input reader, a counting (and failing)
 * allocator for cx_set_allocator(), and the invariant-failure report.
 *
 * A harness is `int cx_fuzz_<name>(const uint8_t *data, size_t size)`. It
 * returns 0, or aborts (after printing "cexec fuzz invariant: ...") when the
 * library breaks a rule the harness checks. libFuzzer reports the abort as a
 * crash; the corpus replay tests report it as a failed test.
 */
#ifndef CEXEC_FUZZ_UTIL_H
#define CEXEC_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The harnesses' own bookkeeping (model checks) need no coverage feedback:
 * uninstrumented, it stops dominating the fuzzers' time. */
#if defined(__clang__)
#define FZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define FZ_NO_COVERAGE
#endif

/* ---- input -------------------------------------------------------------- */

/* Reads the fuzz input front to back; past the end every read gives 0, so
 * a harness never needs to check for exhaustion (0 must mean "benign"). */
typedef struct fz_input {
  const uint8_t *data;
  size_t size, pos;
} fz_input;

static inline void fz_input_init(fz_input *in, const uint8_t *d, size_t n) {
  in->data = d;
  in->size = n;
  in->pos = 0;
}
static inline bool fz_more(const fz_input *in) { return in->pos < in->size; }
static inline uint8_t fz_u8(fz_input *in) {
  return in->pos < in->size ? in->data[in->pos++] : 0;
}
static inline uint16_t fz_u16(fz_input *in) {
  uint16_t lo = fz_u8(in);
  return (uint16_t)(lo | (uint16_t)fz_u8(in) << 8);
}

/* ---- failure ------------------------------------------------------------ */

/* Prints "cexec fuzz invariant: <harness>: <message>" and aborts. */
#if defined(__GNUC__)
__attribute__((noreturn, format(printf, 2, 3)))
#endif
void fz_fail(const char *harness, const char *fmt, ...);

/* ---- counting allocator ------------------------------------------------- */

/* Counts every block cexec allocates and frees (atomically: the threads
 * stress test allocates from several threads). Fails on request:
 *   - the allocation whose 1-based index equals fail_at (0: never);
 *   - the next allocation after fz_alloc_fail_next() was called.
 * A failed allocation still counts in `attempts` but not in `allocs`. */
typedef struct fz_alloc_stats {
  uint64_t attempts; /* calls to alloc, failed ones included */
  uint64_t allocs;   /* successful allocations */
  uint64_t frees;
  uint64_t failed;
  int64_t live;      /* allocs - frees */
  int64_t live_bytes;
} fz_alloc_stats;

/* Installs the counting allocator with all counters zeroed. fail_at: the
 * 1-based index of an allocation attempt to fail (0: none). */
void fz_alloc_install(uint64_t fail_at);
/* Restores cexec's default allocator. */
void fz_alloc_uninstall(void);
/* The end of a channel harness's run: checks sent == received + dropped
 * and that no block is live, then uninstalls the allocator. Fails (through
 * fz_fail, under `harness`) on a mismatch. */
void fz_finish_items_and_memory(const char *harness, uint64_t sent,
                                uint64_t received, uint64_t dropped);
/* Fails the allocation attempt `k` attempts from now (k = 1: the next one);
 * 0 cancels. */
void fz_alloc_fail_in(uint64_t k);
fz_alloc_stats fz_alloc_stats_get(void);

/* Block tracking, for single-threaded harnesses: while on, the allocator
 * remembers every live block by the serial number of its allocation (the
 * 1-based attempt index, as counted in `attempts`), so a harness can ask
 * whether a given block was freed (else: a leaked reference) or not (else:
 * an early free). fz_alloc_install() turns it off. */
void fz_alloc_track(bool on);
/* 1 if the block of allocation attempt `serial` is live, 0 if it was freed
 * (or that attempt failed), -1 if tracking is off or overflowed. */
int fz_alloc_is_live(uint64_t serial);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_FUZZ_UTIL_H */
