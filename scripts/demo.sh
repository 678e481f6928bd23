#!/usr/bin/env bash
# The whole game day on this machine: installs Prometheus and Alertmanager if they are
# missing (Debian/Ubuntu), then runs `shakedown demo` on the built-in sandbox cluster.
# Extra args go to `demo`. (The demo runs without Alertmanager too: it then reads the
# alerts from Prometheus and says how to install it.)
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
if [ ! -x /usr/bin/prometheus-alertmanager ] \
  && ! command -v prometheus-alertmanager >/dev/null 2>&1 \
  && ! command -v alertmanager >/dev/null 2>&1; then
  missing+=(prometheus-alertmanager)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "demo.sh: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi
exec cargo run --release --quiet -- demo "$@"
