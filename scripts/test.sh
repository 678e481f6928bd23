#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need when it is missing:
#   - Prometheus (Debian package `prometheus`) for the tests that scrape the sandbox,
#   - Alertmanager (Debian package `prometheus-alertmanager`) for the alert tests,
#   - the Pushgateway (Debian package `prometheus-pushgateway`) for the push tests,
#   - kubectl (Debian package `kubernetes-client`) for the real-client tests,
#   - Python's jsonschema, which checks `shakedown schema` independently,
#   - Python's junitparser and xmlschema, which read and validate junit.xml,
#   - cmark-gfm (Debian package), which renders report.md as GitHub would.
# Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v prometheus-pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
command -v cmark-gfm >/dev/null 2>&1 || missing+=(cmark-gfm)
if ((${#missing[@]})); then
  echo "test.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! python3 -c 'import jsonschema' >/dev/null 2>&1; then
  echo "test.sh: installing python jsonschema" >&2
  python3 -m pip install --quiet jsonschema
fi

if ! python3 -c 'import junitparser, xmlschema' >/dev/null 2>&1; then
  echo "test.sh: installing python junitparser and xmlschema" >&2
  python3 -m pip install --quiet junitparser xmlschema
fi

bash scripts/check-layers.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace "$@"
