/* Shared helpers of the benchmark runner: clocks, memory figures, JSON. */
#define _GNU_SOURCE

#include <stdarg.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench.h"

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_cpu_ns(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  uint64_t us =
      (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
      (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
  return us * 1000u;
}

uint64_t bench_rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL) return 0;
  unsigned long size = 0, resident = 0;
  int got = fscanf(f, "%lu %lu", &size, &resident);
  fclose(f);
  if (got != 2) return 0;
  return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

long bench_max_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

void bench_print(const char *peer, const char *workload, uint64_t n,
                 double ns_per_op, double wall_ms, const char *extra) {
  printf(
      "{\"peer\":\"%s\",\"workload\":\"%s\",\"n\":%llu,\"ns_per_op\":%.2f,"
      "\"wall_ms\":%.3f,\"max_rss_kb\":%ld%s}\n",
      peer, workload, (unsigned long long)n, ns_per_op, wall_ms,
      bench_max_rss_kb(), extra ? extra : "");
  fflush(stdout);
}

int bench_fail(const char *workload, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "bench %s: FAILED: ", workload);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return BENCH_FAIL;
}
