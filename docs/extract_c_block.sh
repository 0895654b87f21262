#!/usr/bin/env bash
# Prints the N-th ```c code block (1-based) of a Markdown file, so that the
# C code shown in README.md and docs/*.md is compiled by //docs.
#   docs/extract_c_block.sh FILE.md N > out.c
set -euo pipefail
awk -v want="$2" '
  /^```/ { if (inside) { inside = 0; next } if ($0 == "```c") { n++; inside = (n == want); next } }
  inside { print }
  END { if (n < want) { print "extract_c_block: only " n " c blocks" > "/dev/stderr"; exit 1 } }
' "$1"
