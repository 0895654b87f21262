#!/usr/bin/env bash
# Fails (with the difference) unless the two files are identical.
set -euo pipefail
diff -u "$1" "$2"
