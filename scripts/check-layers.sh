#!/usr/bin/env bash
# Fails when a lower layer imports a higher one (DESIGN.md, "Files"). The flow runs one
# way: commands → executor → faults/probes → run/cluster/journal. The pure layers
# (spec, plan, events, report, exit) are a crate of their own, crates/core, whose
# manifest has no kube, tokio or hyper, so the compiler keeps them pure; this script
# keeps the order among the modules of the shakedown crate itself.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
# forbid <directory or file> <module it must not import>...
forbid() {
  local where=$1
  shift
  for higher in "$@"; do
    # `crate::x` in code, not in comments.
    if hits=$(grep -rnE "^[^/]*crate::${higher}\b" "$where" 2>/dev/null); then
      echo "layering: $where imports crate::$higher (a higher layer):" >&2
      echo "$hits" >&2
      status=1
    fi
  done
}

forbid src/run executor faults probes commands demo cli
forbid src/cluster executor faults probes commands demo cli
forbid src/journal.rs executor faults probes commands demo cli cluster
forbid src/faults executor commands demo cli
forbid src/probes executor faults commands demo cli
forbid src/executor commands demo cli

# The pure crates may not name the binary crate, the sandbox, or an I/O stack.
for crate in crates/core crates/vocab; do
  if hits=$(grep -rnE "^[^/]*\b(shakedown::|shakedown_sandbox|kube::|tokio::|hyper::)" "$crate/src"); then
    echo "layering: $crate reaches a higher layer or an I/O stack:" >&2
    echo "$hits" >&2
    status=1
  fi
done
# The sandbox simulates a cluster; it knows nothing of shakedown but the shared words.
if hits=$(grep -rnE "^[^/]*\b(shakedown::|shakedown_core)" crates/sandbox/src); then
  echo "layering: crates/sandbox depends on shakedown:" >&2
  echo "$hits" >&2
  status=1
fi
if ((status == 0)); then
  echo "layering: ok"
fi
exit $status
