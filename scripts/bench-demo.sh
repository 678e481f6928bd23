#!/usr/bin/env bash
# Times `shakedown demo`, wall clock, against the issue's bar (45 s in a release build).
# Needs `prometheus` on PATH (scripts/demo.sh installs it); with Alertmanager installed
# (`prometheus-alertmanager`) the demo starts it too, and its time is part of the figure.
# PROFILE=dev times a debug build instead (quicker to build; slower to run). Exits 1
# over the bar.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${PROFILE:-release}"
case "$profile" in
  release) cargo build --release --quiet; dir=release ;;
  dev) cargo build --quiet; dir=debug ;;
  *) echo "bench-demo.sh: PROFILE must be release or dev, not $profile" >&2; exit 2 ;;
esac
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
start=$(date +%s.%N)
"${CARGO_TARGET_DIR:-target}/$dir/shakedown" --output-dir "$out" demo >/dev/null 2>&1
end=$(date +%s.%N)
secs=$(echo "$end - $start" | bc)
echo "shakedown demo ($profile): ${secs} s wall (bar: 45 s, release)"
awk -v s="$secs" 'BEGIN { exit !(s <= 45) }'
