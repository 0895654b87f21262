/*
 * W4 timers: N = 100,000 tasks; `start` is read once before the first spawn;
 * task i sleeps until start + 250 ms + ((i*7919) % 200) ms + (i % 1000) us,
 * then records now - deadline.
 *
 * Fields: wall_ms (start until run() returns), setup_ms (start until the
 * N-th sleep is registered, i.e. the N-th task's first poll returned
 * Pending), p50/p99/max_late_us, early (count woken before their deadline:
 * must be 0), cpu_ms (process CPU, user + system, over the same interval)
 * and ns_per_op = cpu_ms / N: the CPU cost per timer; fire_cpu_ns: the CPU
 * after setup_end (firing, the second polls, task frees) per timer.
 *
 * W4io (a named variant, not a BENCHMARKS.md workload): the same, on an
 * executor that parks in its epoll driver (issue 9: "W4 p99 lateness must
 * stay under 1 ms with the epoll driver active"). A first task registers an
 * eventfd, which makes the executor create its I/O driver and park there
 * for good, then closes it and completes.
 *
 * The floor (W4 --limit, peer "cexec_limit", BENCHMARKS.md "The floor"): one
 * thread, no executor, the same N deadlines in a sorted array; it sleeps
 * with clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) until the earliest
 * unfired deadline, then records now - deadline for every deadline that has
 * passed, and repeats. Same fields, same checks.
 */
#define _GNU_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "executor/cexec.h"

#include "bench/bench.h"

typedef struct w4_shared {
  int64_t *late_ns; /* per task: now - deadline */
  uint32_t registered, done, early, errors;
  uint64_t setup_end;
  uint64_t setup_cpu; /* process CPU at setup_end */
} w4_shared;

typedef struct w4_task {
  cx_sleep sleep;
  w4_shared *shared;
  uint32_t index;
  bool registered;
} w4_task;

static cx_poll w4_poll(void *self, cx_context *cx, void *out) {
  (void)out;
  w4_task *t = self;
  int rc;
  if (cx_sleep_poll(&t->sleep, cx, &rc) == CX_PENDING) {
    if (!t->registered) {
      t->registered = true;
      if (++t->shared->registered == W4_N) {
        t->shared->setup_end = cx_clock_now();
        t->shared->setup_cpu = bench_cpu_ns();
      }
    }
    return CX_PENDING;
  }
  uint64_t now = cx_clock_now();
  uint64_t deadline = cx_sleep_deadline(&t->sleep);
  w4_shared *sh = t->shared;
  if (rc != CX_OK) sh->errors++;
  if (!t->registered)
    sh->errors++; /* ready on its first poll: setup too slow */
  if (now < deadline) sh->early++;
  sh->late_ns[t->index] = (int64_t)(now - deadline);
  sh->done++;
  return CX_READY;
}

static void w4_drop(void *self) {
  cx_sleep_drop(&((w4_task *)self)->sleep);
}

static const cx_future_vtable w4_vtable = {.poll = w4_poll,
                                           .drop = w4_drop,
                                           .state_size = sizeof(w4_task),
                                           .state_align = _Alignof(w4_task),
                                           .output_size = 0};

/* W4io's first task: asks for the I/O driver through cx_context.host. */
static cx_poll w4_io_probe_poll(void *self, cx_context *cx, void *out) {
  int *rc = out;
  (void)self;
  int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  cx_io_source *src = NULL;
  *rc = fd < 0 ? CX_EIO : cx_io_register(cx, fd, &src);
  if (*rc == CX_OK)
    cx_io_close(src);
  else if (fd >= 0)
    close(fd);
  return CX_READY;
}

static const cx_future_vtable w4_io_probe_vtable = {.poll = w4_io_probe_poll,
                                                    .output_size = sizeof(int)};

static int w4_cmp(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int w4_cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

/* The deadline of task i (BENCHMARKS.md W4). */
static uint64_t w4_deadline(uint64_t start, uint32_t i) {
  return start + 250 * CX_NSEC_PER_MSEC +
         (((uint64_t)i * 7919) % 200) * CX_NSEC_PER_MSEC +
         (uint64_t)(i % 1000) * CX_NSEC_PER_USEC;
}

/* Sorts the lateness figures, prints the JSON line, checks `early`. */
static int w4_report(const char *peer, const char *workload, int64_t *late_ns,
                     uint64_t start, uint64_t setup_end, uint64_t end,
                     uint64_t cpu, uint64_t fire_cpu, uint32_t early) {
  for (uint32_t i = 0; i < W4_N; i++)
    if (late_ns[i] == INT64_MIN)
      return bench_fail(workload, "%s: timer %u recorded nothing", peer, i);
  qsort(late_ns, W4_N, sizeof *late_ns, w4_cmp);
  double p50 = late_ns[W4_N / 2] / 1e3;
  double p99 = late_ns[(size_t)W4_N * 99 / 100] / 1e3;
  double max = late_ns[W4_N - 1] / 1e3;
  char extra[256];
  snprintf(extra, sizeof extra,
           ",\"setup_ms\":%.3f,\"p50_late_us\":%.1f,\"p99_late_us\":%.1f,"
           "\"max_late_us\":%.1f,\"early\":%u,\"cpu_ms\":%.3f,"
           "\"fire_cpu_ns\":%.1f",
           (setup_end - start) / 1e6, p50, p99, max, early, cpu / 1e6,
           (double)fire_cpu / W4_N);
  bench_print(peer, workload, W4_N, (double)cpu / W4_N, (end - start) / 1e6,
              extra);
  if (early != 0)
    return bench_fail(workload, "%s: %u timers fired before their deadline",
                      peer, early);
  return 0;
}

int bench_limit_w4(void) {
  uint64_t *deadlines = malloc(W4_N * sizeof *deadlines);
  int64_t *late_ns = malloc(W4_N * sizeof *late_ns);
  if (deadlines == NULL || late_ns == NULL) return bench_fail("W4", "alloc");
  for (uint32_t i = 0; i < W4_N; i++) late_ns[i] = INT64_MIN;

  uint64_t cpu0 = bench_cpu_ns();
  uint64_t start = cx_clock_now();
  for (uint32_t i = 0; i < W4_N; i++) deadlines[i] = w4_deadline(start, i);
  qsort(deadlines, W4_N, sizeof *deadlines, w4_cmp_u64);
  uint64_t setup_end = cx_clock_now();
  uint64_t setup_cpu = bench_cpu_ns();
  uint32_t next = 0, early = 0;
  while (next < W4_N) {
    struct timespec ts = {.tv_sec = (time_t)(deadlines[next] / CX_NSEC_PER_SEC),
                          .tv_nsec = (long)(deadlines[next] % CX_NSEC_PER_SEC)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0) {
    }
    uint64_t now = cx_clock_now();
    if (now < deadlines[next]) early++;
    while (next < W4_N && deadlines[next] <= now) {
      late_ns[next] = (int64_t)(now - deadlines[next]);
      next++;
    }
  }
  uint64_t end = cx_clock_now();
  uint64_t cpu = bench_cpu_ns() - cpu0;
  int rc = w4_report("cexec_limit", "W4", late_ns, start, setup_end, end, cpu,
                     cpu0 + cpu - setup_cpu, early);
  free(deadlines);
  free(late_ns);
  return rc;
}

int bench_w4_timers(bool io) {
  const char *name = io ? "W4io" : "W4";
  cx_executor *ex;
  if (cx_executor_create(NULL, &ex) != CX_OK)
    return bench_fail(name, "cx_executor_create");
  if (io) {
    int probe_rc = CX_EIO;
    int rc = cx_executor_block_on(ex, &w4_io_probe_vtable, NULL, &probe_rc,
                                  sizeof probe_rc);
    if (rc != CX_OK || probe_rc != CX_OK)
      return bench_fail(name, "I/O driver: %d / %d", rc, probe_rc);
  }
  w4_shared sh = {0};
  sh.late_ns = calloc(W4_N, sizeof *sh.late_ns);
  if (sh.late_ns == NULL) return bench_fail(name, "alloc");
  for (uint32_t i = 0; i < W4_N; i++) sh.late_ns[i] = INT64_MIN;

  uint64_t cpu0 = bench_cpu_ns();
  uint64_t start = cx_clock_now();
  for (uint32_t i = 0; i < W4_N; i++) {
    w4_task st;
    uint64_t deadline = w4_deadline(start, i);
    cx_sleep_init_until(&st.sleep, deadline);
    st.shared = &sh;
    st.index = i;
    st.registered = false;
    int rc = cx_spawn(ex, &w4_vtable, &st, NULL);
    if (rc != CX_OK) return bench_fail(name, "cx_spawn #%u: %d", i, rc);
  }
  int rc = cx_executor_run(ex);
  uint64_t end = cx_clock_now();
  uint64_t cpu = bench_cpu_ns() - cpu0;
  cx_executor_destroy(ex);

  if (rc != CX_OK) return bench_fail(name, "cx_executor_run: %d", rc);
  if (sh.done != W4_N || sh.errors != 0)
    return bench_fail(name, "done %u of %u, errors %u", sh.done, W4_N,
                      sh.errors);
  rc = w4_report("cexec", name, sh.late_ns, start, sh.setup_end, end, cpu,
                 cpu0 + cpu - sh.setup_cpu, sh.early);
  free(sh.late_ns);
  return rc;
}
