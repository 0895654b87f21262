/*
 * Corpus replay: the plain regression test behind every harness (gcc or
 * clang, no libFuzzer). Runs the harness named by -DCX_FUZZ_HARNESS on
 * every file under -DCX_FUZZ_CORPUS (a directory relative to the runfiles
 * root, e.g. "fuzz/corpus/timer"), or on the files and directories given as
 * arguments (relative arguments are taken from the directory `bazel run`
 * was called in), so a crash found by the fuzzer reproduces with:
 *
 *   bazel run //fuzz:<name>_replay -- path/to/crash-file
 *
 * With -DCX_FUZZ_SWEEP (task_lifecycle) every input is then run again once
 * for each allocation it makes, with that allocation failing: the harness
 * checks that the failing call reports CX_ENOMEM and nothing leaks.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz/fuzz_harnesses.h"

#ifndef CX_FUZZ_HARNESS
#error "define CX_FUZZ_HARNESS"
#endif

#define CX__STR2(x) #x
#define CX__STR(x) CX__STR2(x)

static int files_run;
static uint64_t sweep_runs;

static void run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
    exit(1);
  }
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) {
      cap *= 2;
      buf = realloc(buf, cap);
    }
  }
  fclose(f);
  if (buf == NULL) {
    fprintf(stderr, "replay: out of memory\n");
    exit(1);
  }
  /* Heap copy of the exact size, so ASan sees reads past the end. */
  uint8_t *data = malloc(n ? n : 1);
  memcpy(data, buf, n);
  free(buf);
  fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
#ifndef CX_FUZZ_SWEEP
  CX_FUZZ_HARNESS(data, n);
#else
  /* The clean run counts the allocation attempts; then each one fails. */
  uint64_t attempts = 0;
  cx_fuzz_task_lifecycle_fail_at(data, n, 0, &attempts);
  for (uint64_t k = 1; k <= attempts; k++) {
    cx_fuzz_task_lifecycle_fail_at(data, n, k, NULL);
    sweep_runs++;
  }
#endif
  free(data);
  files_run++;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_path(const char *path) {
  struct stat st;
  if (stat(path, &st) != 0) {
    fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
    exit(1);
  }
  if (!S_ISDIR(st.st_mode)) {
    run_file(path);
    return;
  }
  DIR *d = opendir(path);
  if (d == NULL) {
    fprintf(stderr, "replay: cannot open directory %s\n", path);
    exit(1);
  }
  char **names = NULL;
  size_t count = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    if (count == cap) {
      cap = cap ? cap * 2 : 64;
      names = realloc(names, cap * sizeof *names);
    }
    size_t len = strlen(path) + strlen(e->d_name) + 2;
    names[count] = malloc(len);
    snprintf(names[count], len, "%s/%s", path, e->d_name);
    count++;
  }
  closedir(d);
  if (count) qsort(names, count, sizeof *names, cmp_str);
  for (size_t i = 0; i < count; i++) {
    run_path(names[i]);
    free(names[i]);
  }
  free(names);
}

/* A relative path: from `bazel run`'s directory if given, else as is (the
 * runfiles root under `bazel test`), else under $TEST_SRCDIR/cexec. */
static void run_arg(const char *arg, int from_user) {
  const char *bwd = getenv("BUILD_WORKING_DIRECTORY");
  char buf[4096];
  if (arg[0] != '/' && from_user && bwd) {
    snprintf(buf, sizeof buf, "%s/%s", bwd, arg);
    run_path(buf);
    return;
  }
  struct stat st;
  const char *srcdir = getenv("TEST_SRCDIR");
  if (arg[0] != '/' && stat(arg, &st) != 0 && srcdir) {
    snprintf(buf, sizeof buf, "%s/cexec/%s", srcdir, arg);
    run_path(buf);
    return;
  }
  run_path(arg);
}

int main(int argc, char **argv) {
  if (argc > 1) {
    for (int i = 1; i < argc; i++) run_arg(argv[i], 1);
  } else {
    run_arg(CX__STR(CX_FUZZ_CORPUS), 0);
  }
  if (files_run == 0) {
    fprintf(stderr, "replay: no input found\n");
    return 1;
  }
  fprintf(stderr, "replay: %d inputs passed", files_run);
  if (sweep_runs)
    fprintf(stderr, " (plus %llu runs with one allocation failing)",
            (unsigned long long)sweep_runs);
  fprintf(stderr, "\n");
  return 0;
}
