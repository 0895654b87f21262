#!/usr/bin/env bash
# Runs the quickstart (path in $1) and checks what it prints. The thread's
# line may come before or after the tasks' lines, so each line is checked on
# its own, and the count.
set -euo pipefail
out="$("$1")"
echo "$out"
expect() {
  grep -qxF "$1" <<<"$out" || {
    echo "quickstart_test: missing line: $1" >&2
    exit 1
  }
}
expect "thread: spawned job 2: success"
expect "job 1: slept 10 ms"
expect "job 2: slept 20 ms"
expect "run: success"
expect "job 1 returned 100 (success)"
[ "$(wc -l <<<"$out")" -eq 5 ] || {
  echo "quickstart_test: expected 5 lines" >&2
  exit 1
}
