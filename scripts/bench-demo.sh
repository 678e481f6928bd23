#!/usr/bin/env bash
# Times `shakedown demo` in a release build, wall clock, against the issue's bar (45 s).
# Needs `prometheus` on PATH (scripts/demo.sh installs it). Exits 1 over the bar.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
start=$(date +%s.%N)
"${CARGO_TARGET_DIR:-target}/release/shakedown" --output-dir "$out" demo >/dev/null 2>&1
end=$(date +%s.%N)
secs=$(echo "$end - $start" | bc)
echo "shakedown demo (release): ${secs} s wall (bar: 45 s)"
awk -v s="$secs" 'BEGIN { exit !(s <= 45) }'
