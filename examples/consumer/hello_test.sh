#!/usr/bin/env bash
set -euo pipefail
out="$(./hello)"
echo "$out"
[ "$out" = "consumer: 40 + 2 = 42" ]
