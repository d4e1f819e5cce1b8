#!/usr/bin/env bash
# tests/chaos/run.sh: the chaos suite (tests/chaos/chaos.py; DESIGN.md section 10). Starts an
# isolated topology (scripts/topology.sh start --isolated: its own broker and databases on this
# clone's stack), runs the workload while injecting faults, checks the invariants, stops it.
#
#   bash tests/chaos/run.sh                      short profile: 20 kills in about 60 s (CI)
#   bash tests/chaos/run.sh --kills 500          long profile (about 21 min of faults)
#   bash tests/chaos/run.sh --seed S [--kills N] replay a run's workload and fault schedule
#   --bin PATH   the ticketing binary (default: build/release, built as topology.sh does)
#   --window S   EXPIRATION_WINDOW_SECONDS of the topology (default 3)
# Other options (--duration, --workers) go to chaos.py. Exit 0 when every invariant held.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$root/scripts/env.sh"

bin="" window=3 args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$(readlink -f "${2:?}"); shift ;;
    --window) window=${2:?}; shift ;;
    *) args+=("$1") ;;
  esac
  shift
done
# shellcheck source=tests/support/suite.sh
. "$root/tests/support/suite.sh"
suite_venv quiet
trap 'suite_topology_stop || true' EXIT
suite_topology_start ${bin:+--bin "$bin"} --window "$window"
export E2E_BASE_URL=$TOPOLOGY_INGRESS
export E2E_TICKETING_BIN="${bin:-$(cat "$TK_VAR/topology/bin")}"
rc=0
"$venv/bin/python" -u "$here/chaos.py" --window "$window" "${args[@]}" || rc=1
suite_topology_stop || rc=1
exit $rc
