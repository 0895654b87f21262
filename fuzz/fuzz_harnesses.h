/*
 * The fuzz harnesses. Each takes one input (any bytes), runs it, and returns
 * 0; it aborts with a "cexec fuzz invariant: ..." message when the library
 * breaks a rule it checks. See docs/testing.md.
 */
#ifndef CEXEC_FUZZ_HARNESSES_H
#define CEXEC_FUZZ_HARNESSES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

int cx_fuzz_task_lifecycle(const uint8_t *data, size_t size);
int cx_fuzz_channel(const uint8_t *data, size_t size);
int cx_fuzz_timer(const uint8_t *data, size_t size);
int cx_fuzz_async_channel(const uint8_t *data, size_t size);
int cx_fuzz_io(const uint8_t *data, size_t size);
int cx_fuzz_task_blocks(const uint8_t *data, size_t size);

/* task_lifecycle with the allocation attempt number `fail_at` (1-based)
 * failing as well; *attempts (if not NULL) receives the number of
 * allocation attempts the run made. The allocation-failure sweep calls it
 * with every fail_at from 1 to the attempts of a clean run. */
int cx_fuzz_task_lifecycle_fail_at(const uint8_t *data, size_t size,
                                   uint64_t fail_at, uint64_t *attempts);

#ifdef __cplusplus
}
#endif

#endif /* CEXEC_FUZZ_HARNESSES_H */
