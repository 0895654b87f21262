/*
 * cexec benchmarks: the workloads of BENCHMARKS.md (W1-W6) and the floor
 * ("cexec_limit"), run by one program:
 *
 *   bazel run -c opt //bench:bench -- <workload> [--limit]
 *
 * Each run prints ONE line of JSON on stdout and exits 0, or prints why on
 * stderr and exits 1 when the workload's own result check fails (a fast
 * wrong answer is a failure). bench/run_all runs everything 3 times and
 * prints the medians.
 *
 * These are programs, not tests: nothing here runs under `bazel test`.
 */
#ifndef CEXEC_BENCH_H
#define CEXEC_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit status of a run whose result check failed (or that could not run). */
#define BENCH_FAIL 1

/* Nanoseconds of CLOCK_MONOTONIC. */
uint64_t bench_now_ns(void);

/* CPU time (user + system) of the whole process so far, in nanoseconds. */
uint64_t bench_cpu_ns(void);

/* Current resident set size in bytes, from /proc/self/statm (0 if unknown). */
uint64_t bench_rss_bytes(void);

/* Peak resident set size in kilobytes, from getrusage. */
long bench_max_rss_kb(void);

/* Prints the JSON line: the common fields, then `extra` (already formatted
 * as `,"key":value...`, or NULL). */
void bench_print(const char *peer, const char *workload, uint64_t n,
                 double ns_per_op, double wall_ms, const char *extra);

/* Reports a failed check on stderr and returns BENCH_FAIL. */
int bench_fail(const char *workload, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Keeps the compiler from proving a value unused. */
static inline void bench_keep(const void *p) {
  __asm__ volatile("" ::"r"(p) : "memory");
}

/* The workloads. Each returns 0, or BENCH_FAIL after printing why. */
int bench_w1_spawn(void);
int bench_w2_yield(void);
int bench_w3_pingpong(void);
int bench_w4_timers(bool io); /* io: W4io, parked in the epoll driver */
/* W5 modes: the thread parks (W5), spins (W5spin), spins beside a busy
 * executor (W5busy). */
enum { W5_PARK = 0, W5_SPIN = 1, W5_BUSY = 2 };
int bench_w5_xwake(int mode);
int bench_w6_idle_mem(void);
int bench_limit_w1(void);
int bench_limit_w2(void);
int bench_limit_w4(void);
int bench_limit_w5(void);

/* The fixed sizes of BENCHMARKS.md. */
#define W1_N 1000000u
#define W2_T 1000u
#define W2_Y 1000u
#define W3_P 1000u
#define W3_M 100u
#define W4_N 100000u
#define W5_M 200000u
#define W6_N 100000u

#endif /* CEXEC_BENCH_H */
