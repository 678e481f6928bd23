#!/usr/bin/env bash
# The whole game day on this machine: installs Prometheus if it is missing (Debian/Ubuntu),
# then runs `shakedown demo` on the built-in sandbox cluster. Extra args go to `demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v prometheus >/dev/null 2>&1; then
  echo "demo.sh: installing prometheus" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends prometheus >/dev/null
fi
exec cargo run --release --quiet -- demo "$@"
