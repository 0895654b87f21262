/*
 * The benchmark runner: bench <workload> [--limit]
 *   W1 W2 W3 W4 W5 W6   the workloads of BENCHMARKS.md, peer "cexec"
 *   W1|W2|W4|W5 --limit   the floor, peer "cexec_limit"
 *   W5spin              W5 with a spinning thread instead of a parked one
 *   W5busy              W5spin with a busy executor (the syscall check)
 *   W1 W2 W3 W5 W10 W11 --workers=N   on the multi-threaded runtime,
 *                       peer "cexec_mtN" (bench/mt.c; W10, W11 default N=2)
 * One JSON line per run on stdout; exit 1 when the result check fails.
 */
#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/io_bench.h"
#include "bench/mt.h"

static int usage(void) {
  fprintf(stderr,
          "usage: bench <W1|W2|W3|W4|W4io|W5|W5spin|W5busy|W6> [--limit]\n"
          "  --limit: the floor (peer cexec_limit), for W1, W2, W4, W5\n");
  return 2;
}

int main(int argc, char **argv) {
  /* W7-W9 take their own flags (io_bench.h). */
  if (argc > 1 && bench_io_is_workload(argv[1]))
    return bench_io_main(argc, argv);
  const char *w = NULL;
  int limit = 0;
  int workers = -1;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--limit") == 0)
      limit = 1;
    else if (strncmp(argv[i], "--workers=", 10) == 0)
      workers = atoi(argv[i] + 10);
    else if (w == NULL)
      w = argv[i];
    else
      return usage();
  }
  if (w == NULL) return usage();
  if (workers >= 0 || strcmp(w, "W10") == 0 || strcmp(w, "W11") == 0) {
    int rc = bench_mt(w, workers < 0 ? 0 : (unsigned)workers);
    return rc == 2 ? usage() : rc;
  }
  if (limit) {
    if (strcmp(w, "W1") == 0) return bench_limit_w1();
    if (strcmp(w, "W2") == 0) return bench_limit_w2();
    if (strcmp(w, "W4") == 0) return bench_limit_w4();
    if (strcmp(w, "W5") == 0) return bench_limit_w5();
    return usage();
  }
  if (strcmp(w, "W1") == 0) return bench_w1_spawn();
  if (strcmp(w, "W2") == 0) return bench_w2_yield();
  if (strcmp(w, "W3") == 0) return bench_w3_pingpong();
  if (strcmp(w, "W4") == 0) return bench_w4_timers(false);
  if (strcmp(w, "W4io") == 0) return bench_w4_timers(true);
  if (strcmp(w, "W5") == 0) return bench_w5_xwake(W5_PARK);
  if (strcmp(w, "W5spin") == 0) return bench_w5_xwake(W5_SPIN);
  if (strcmp(w, "W5busy") == 0) return bench_w5_xwake(W5_BUSY);
  if (strcmp(w, "W6") == 0) return bench_w6_idle_mem();
  return usage();
}
