#!/usr/bin/env bash
# cexec developer entry point. `./dev.sh` alone lists the commands; every
# command except `help` first installs what is missing (Debian packages,
# through apt-get: as root, or with sudo), then runs Bazel.
#
# Output bases. Bazel keeps one build cache per output base, and switching
# a build's flags (gcc, ASan, TSan, -c opt, libFuzzer) in one output base
# rebuilds everything each time. So `test`, `demo` and `quickstart` use
# Bazel's default output base (the one plain `bazel test //...` uses too),
# and asan, tsan, fuzz and bench each get their own, under
#   ${CEXEC_BAZEL_CACHE:-~/.cache/cexec-bazel}/<hash of this checkout>/<config>
# Switching back and forth then costs nothing but the first build of each;
# the price is disk (a few hundred MB per config) and one Bazel server per
# config (started on demand, gone after 10 idle minutes).
# Those runs create no bazel-* links (--symlink_prefix=/): a Bazel server
# skips its own links when it expands //..., not another output base's, so
# links into two output bases would break every //... of the other. The
# bazel-bin and bazel-testlogs links stay those of the default output base;
# dev.sh prints where the other runs' test logs are.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

usage() {
  cat <<'EOF'
usage: ./dev.sh <command> [arguments]
  (arguments: Bazel flags; for fuzz, harness names; for bench, workloads)

  demo        run the timer demo: prints, awaits a 2 s timer, prints again
              (bazel run //examples:timer_demo)
  quickstart  run the README's quickstart (bazel run //examples:quickstart)
  test        the whole test suite, gcc (bazel test //...)
  asan        the suite under ASan + UBSan + LeakSanitizer (--config=asan)
  tsan        the suite under ThreadSanitizer, clang (--config=tsan)
  fuzz        every libFuzzer harness, FUZZ_SECONDS each (default 60)
  bench       every benchmark workload, 3 runs each, medians (-c opt)
  deps        only install the dependencies (bazel-bootstrap, googletest,
              gcc, g++, clang, lld, libclang-rt-14-dev)
  help        this list (also: ./dev.sh with no command)

asan, tsan, fuzz and bench build in their own Bazel output base under
~/.cache/cexec-bazel/ (set CEXEC_BAZEL_CACHE to move it), so switching
between them and `test` does not rebuild everything.
EOF
}

install_deps() {
  local need=()
  command -v bazel >/dev/null 2>&1 || need+=(bazel-bootstrap)
  [ -d /usr/src/googletest/googletest ] || need+=(googletest)
  command -v gcc >/dev/null 2>&1 || need+=(gcc)
  command -v g++ >/dev/null 2>&1 || need+=(g++)
  command -v clang >/dev/null 2>&1 || need+=(clang)
  # The clang configs link with lld (tools/cexec.bazelrc says why).
  command -v ld.lld >/dev/null 2>&1 || need+=(lld)
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

# The output base of one configuration, keyed by this checkout's path (two
# checkouts never share one: a Bazel output base belongs to one workspace).
output_base() {
  local key
  key=$(printf '%s' "$PWD" | md5sum | cut -c1-12)
  echo "${CEXEC_BAZEL_CACHE:-$HOME/.cache/cexec-bazel}/$key/$1"
}
# The startup options of configuration $1: its output base; a bazelrc that
# turns off the bazel-* links (and still reads the user's ~/.bazelrc, which
# --bazelrc replaces); a server that goes away after 10 idle minutes (the
# default one stays 3 hours).
startup_opts() {
  local ob
  ob=$(output_base "$1")
  mkdir -p "$ob"
  printf 'try-import %s/.bazelrc\nbuild --symlink_prefix=/\n' "$HOME" >"$ob.bazelrc"
  echo "--output_base=$ob --bazelrc=$ob.bazelrc --max_idle_secs=600"
}
# What //... means, without the bazel-* links into the default output base
# (the other output bases' servers would descend into them): every
# top-level package directory, one by one.
all_targets() {
  local d
  echo "//:all"
  for d in */; do
    d=${d%/}
    [ -L "$d" ] && continue
    [ -n "$(find "$d" -name 'BUILD*' -print -quit)" ] && echo "//$d/..."
  done
}
# `bazel test` of everything, in configuration $1's output base, flags $2...
test_in() {
  local config=$1 startup
  shift
  read -r -a startup <<<"$(startup_opts "$config")"
  local targets
  mapfile -t targets < <(all_targets)
  local rc=0
  bazel "${startup[@]}" test --config="$config" "$@" -- "${targets[@]}" || rc=$?
  echo "dev.sh: $config test logs: $(output_base "$config")/execroot/cexec/bazel-out/k8-fastbuild/testlogs" >&2
  return "$rc"
}

cmd="${1:-help}"
shift || true
case "$cmd" in
  help | -h | --help)
    usage
    exit 0
    ;;
  demo | quickstart | test | asan | tsan | fuzz | bench | deps) ;;
  *)
    echo "dev.sh: unknown command '$cmd'" >&2
    usage >&2
    exit 2
    ;;
esac
install_deps
case "$cmd" in
  deps) ;;
  demo) exec bazel run //examples:timer_demo "$@" ;;
  quickstart) exec bazel run //examples:quickstart "$@" ;;
  test) exec bazel test //... "$@" ;;
  asan | tsan) test_in "$cmd" "$@" ;;
  fuzz)
    # .ci/fuzz.sh creates no bazel-* links itself (--symlink_prefix=/).
    BAZEL_OUTPUT_BASE="$(output_base fuzz)"
    mkdir -p "$BAZEL_OUTPUT_BASE"
    export BAZEL_OUTPUT_BASE
    exec bash .ci/fuzz.sh "$@"
    ;;
  bench)
    BAZEL_STARTUP="$(startup_opts opt)"
    export BAZEL_STARTUP
    exec bash bench/run_all "$@"
    ;;
esac
