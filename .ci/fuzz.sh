#!/usr/bin/env bash
# Fuzzes every libFuzzer harness of fuzz/ for a bounded time; fails on any
# crash, leak, hang or invariant breach. Installs nothing: it needs clang
# and libclang-rt-14-dev (libFuzzer, sanitizers), which .ci/run / ./dev.sh
# deps install. docs/testing.md explains the harnesses.
#
#   .ci/fuzz.sh [harness ...]      default: all of them
#
# Environment:
#   FUZZ_SECONDS       seconds per harness (default 60)
#   BAZEL_OUTPUT_BASE  a Bazel --output_base of its own (optional)
#   FUZZ_OUT           where crash inputs and logs go (default: a temp dir)
#
# The checked-in corpus (fuzz/corpus/<name>/) seeds each run and is never
# modified; new inputs go to a scratch directory. A crash input is saved as
# $FUZZ_OUT/<name>/crash-*; reproduce it with (gcc, no libFuzzer needed):
#   bazel run //fuzz:<name>_replay -- <crash file>
# or with the fuzzer binary itself: bazel run --config=fuzz //fuzz:<name> -- <crash file>
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
HARNESSES=("$@")
if [ ${#HARNESSES[@]} -eq 0 ]; then
  HARNESSES=(task_lifecycle channel timer async_channel io task_blocks)
fi

# Longest input per harness: enough for a few hundred operations.
max_len() {
  case "$1" in
    task_lifecycle) echo 1024 ;;
    channel) echo 512 ;;
    timer) echo 1024 ;;
    async_channel) echo 1024 ;;
    io) echo 800 ;;
    task_blocks) echo 1024 ;;
    *) echo 1024 ;;
  esac
}

BAZEL=(bazel)
if [ -n "${BAZEL_OUTPUT_BASE:-}" ]; then
  BAZEL+=(--output_base="$BAZEL_OUTPUT_BASE")
fi
# --symlink_prefix=/: leave the workspace's bazel-* links alone.
# -O1: fastbuild compiles at -O0, several times slower to fuzz.
FLAGS=(--config=fuzz --copt=-O1 --symlink_prefix=/ --color=no --curses=no)

targets=()
for h in "${HARNESSES[@]}"; do targets+=("//fuzz:$h"); done
echo "fuzz.sh: building ${targets[*]} (--config=fuzz)"
"${BAZEL[@]}" build "${FLAGS[@]}" "${targets[@]}"
bin="$("${BAZEL[@]}" info "${FLAGS[@]}" bazel-bin 2>/dev/null)/fuzz"

out="${FUZZ_OUT:-$(mktemp -d -t cexec-fuzz.XXXXXX)}"
mkdir -p "$out"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

failed=()
summary=()
for h in "${HARNESSES[@]}"; do
  dir="$out/$h"
  mkdir -p "$dir/corpus"
  log="$dir/fuzz.log"
  echo
  echo "fuzz.sh: $h for ${FUZZ_SECONDS} s (max_len $(max_len "$h")), log $log"
  set +e
  "$bin/$h" \
    -max_total_time="$FUZZ_SECONDS" \
    -max_len="$(max_len "$h")" \
    -timeout=30 \
    -rss_limit_mb=2560 \
    -print_final_stats=1 \
    -artifact_prefix="$dir/" \
    "$dir/corpus" "fuzz/corpus/$h" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || true)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || true)
  line="$h: rc=$rc execs=${execs:-?} cov=${cov:-?}"
  summary+=("$line")
  if [ "$rc" -ne 0 ]; then
    failed+=("$h")
    echo "fuzz.sh: $h FAILED (rc=$rc). Last lines of the log:"
    grep -E 'cexec fuzz invariant|ERROR|SUMMARY|Test unit written|deadly signal' "$log" | head -20 || true
    tail -n 40 "$log"
    for a in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*; do
      [ -e "$a" ] || continue
      echo "fuzz.sh: reproduce with: bazel run //fuzz:${h}_replay -- $a"
      echo "fuzz.sh: input (base64): $(base64 -w0 "$a")"
    done
  else
    echo "fuzz.sh: $line"
  fi
done

echo
echo "fuzz.sh: summary (${FUZZ_SECONDS} s each)"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (artifacts in $out)"
  exit 1
fi
echo "fuzz.sh: all harnesses clean"
