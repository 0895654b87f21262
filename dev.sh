#!/usr/bin/env bash
# cexec developer entry point. Installs what is missing (Debian packages),
# then runs Bazel. Usage:
#   ./dev.sh demo     run the timer demo (examples/timer_demo.c)
#   ./dev.sh test     bazel test //...           (gcc)
#   ./dev.sh asan     bazel test --config=asan //...  (ASan + UBSan + LSan)
#   ./dev.sh tsan     bazel test --config=tsan //...  (ThreadSanitizer, clang)
#   ./dev.sh fuzz     run every libFuzzer harness (FUZZ_SECONDS each, default 60)
#   ./dev.sh bench    run every benchmark 3 times, print medians
#   ./dev.sh deps     only install the dependencies
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

install_deps() {
  local need=()
  command -v bazel >/dev/null 2>&1 || need+=(bazel-bootstrap)
  [ -d /usr/src/googletest/googletest ] || need+=(googletest)
  command -v gcc >/dev/null 2>&1 || need+=(gcc)
  command -v g++ >/dev/null 2>&1 || need+=(g++)
  command -v clang >/dev/null 2>&1 || need+=(clang)
  # libFuzzer and the clang sanitizer runtimes.
  compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a" \
    >/dev/null || need+=(libclang-rt-14-dev)
  [ ${#need[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  echo "dev.sh: installing ${need[*]}" >&2
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${need[@]}"
}

cmd="${1:-test}"
shift || true
install_deps
case "$cmd" in
  deps) ;;
  demo) exec bazel run //examples:timer_demo "$@" ;;
  test) exec bazel test //... "$@" ;;
  asan) exec bazel test --config=asan //... "$@" ;;
  tsan) exec bazel test --config=tsan //... "$@" ;;
  fuzz) exec bash .ci/fuzz.sh "$@" ;;
  bench) exec bash bench/run_all "$@" ;;
  *) echo "usage: $0 demo|test|asan|tsan|fuzz|bench|deps" >&2; exit 2 ;;
esac
