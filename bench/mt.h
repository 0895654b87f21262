/*
 * The workloads on the multi-threaded runtime (bench/mt.c):
 *   bench <W1|W2|W3|W5|W10|W11> --workers=N   peer "cexec_mtN"
 * W10 runs the fan-out with 1 worker and with N in the same process and
 * prints the speedup; W10 and W11 default to --workers=2. W5 --workers=0
 * runs the same W5 code (the thread parks) on the single-threaded executor,
 * peer "cexec": the same-protocol reference for cexec_mtN.
 */
#ifndef CEXEC_BENCH_MT_H
#define CEXEC_BENCH_MT_H

/* Returns 0, BENCH_FAIL (check failed) or 2 (unknown workload). */
int bench_mt(const char *workload, unsigned workers);

#endif /* CEXEC_BENCH_MT_H */
