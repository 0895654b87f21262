/* libFuzzer entry point for one harness, chosen at compile time with
 * -DCX_FUZZ_HARNESS=cx_fuzz_<name> (see fuzz/BUILD.bazel). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz/fuzz_harnesses.h"

#ifndef CX_FUZZ_HARNESS
#error "define CX_FUZZ_HARNESS"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return CX_FUZZ_HARNESS(data, size);
}
